#!/usr/bin/python3
"""The systemd units of dist/systemd/, rendered as `meson install` renders them but with this
build's binary: `systemd-analyze verify` accepts them without a word; every darkscope command
line a unit runs names a subcommand and options of `darkscope --help`, and the binary takes the
whole line (with the example configuration, dist/darkscope.example.json, as the unit's
/etc/darkscope/darkscope.json); the Redis unit's command line starts a redis-server that answers
with AOF on; the target pulls in every role; the hardening docs/deployment.md promises is there
(capture: CAP_NET_RAW only, ambient; the others: no capability). Exits 77 (skipped) without
systemd-analyze."""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

ANALYZE = shutil.which("systemd-analyze")
if not ANALYZE:
    print("systemd-analyze is not installed")
    sys.exit(77)

c = dslib.Checker("dist units")
SRC = os.path.join(dslib.ROOT, "dist", "systemd")
BIN = os.path.dirname(os.path.abspath(dslib.DARKSCOPE))
units_dir = dslib.tmpdir("ds-units-")
work = dslib.tmpdir("ds-units-run-")

templates = sorted(glob.glob(os.path.join(SRC, "*.service.in")))
services = {}
for path in templates:
    name = os.path.basename(path)[:-3]
    with open(path) as f:
        text = f.read().replace("@bindir@", BIN)
    with open(os.path.join(units_dir, name), "w") as f:
        f.write(text)
    services[name] = text
shutil.copy(os.path.join(SRC, "darkscope.target"), units_dir)
with open(os.path.join(SRC, "darkscope.target")) as f:
    target = f.read()
c.eq("the units", sorted(services),
     sorted(f"darkscope-{r}.service" for r in ("redis", "capture", "aggregate", "notify",
                                               "serve")))

# systemd's own reading of the files: unknown keys, bad values, a missing binary
r = subprocess.run([ANALYZE, "verify", "--man=no",
                    *sorted(glob.glob(os.path.join(units_dir, "*")))],
                   capture_output=True, text=True)
c.eq("systemd-analyze verify: no complaint", (r.returncode, r.stdout + r.stderr), (0, ""))


def keys(text):
    """Key → list of values, over every section."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


usage = dslib.run(["--help"]).stdout
commands = re.findall(r"^  ([a-z-]+)", usage.split("common options:")[0], re.M)
options = set(re.findall(r"(--[a-z-]+)", usage))

# each darkscope command line: its subcommand and options exist, and the binary takes it whole
confdir = os.path.join(work, "etc")
os.makedirs(confdir)
shutil.copy(os.path.join(dslib.ROOT, "dist", "darkscope.example.json"),
            os.path.join(confdir, "darkscope.json"))
c.eq("the example configuration is valid",
     dslib.run(["check-config", os.path.join(confdir, "darkscope.json")],
               check=False).returncode, 0)
roles = sorted(n for n in services if n != "darkscope-redis.service")


def exec_start(name):
    """The unit's ExecStart as argv, with the variables systemd would set for it."""
    k = keys(services[name])
    env = {"CONFIGURATION_DIRECTORY": confdir, "STATE_DIRECTORY": os.path.join(work, "state"),
           "LOGS_DIRECTORY": os.path.join(work, "log")}
    env.update(e.split("=", 1) for e in k.get("Environment", []))
    c.eq(f"{name}: one ExecStart", len(k.get("ExecStart", [])), 1)
    return [re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), "UNSET:" + m.group(1)), a)
            for a in shlex.split((k.get("ExecStart") or [""])[0])]


for name in roles:
    argv = exec_start(name)
    c.eq(f"{name}: runs this build's darkscope", argv[0], os.path.join(BIN, "darkscope"))
    sub, opts = argv[1], [a for a in argv[2:] if a.startswith("--")]
    c.true(f"{name}: subcommand {sub!r} is one `darkscope --help` lists", sub in commands)
    c.true(f"{name}: options {opts} are in `darkscope --help`",
           all(o in options for o in opts))
    c.true(f"{name}: every variable is set ({argv})", not any("UNSET:" in a for a in argv))
    r = subprocess.run([*argv, "--dump-config"], capture_output=True, text=True, timeout=30)
    c.eq(f"{name}: darkscope takes the command line ({r.stderr.strip()[-200:]})", r.returncode, 0)

# the Redis unit's command line, with its state directory moved here: it answers, AOF on
redis_argv = exec_start("darkscope-redis.service")
rdir = os.path.join(work, "redis")
os.makedirs(rdir)
redis_argv = [a.replace("/var/lib/darkscope", rdir) for a in redis_argv]
sock = os.path.join(rdir, "redis.sock")
env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
proc = subprocess.Popen(redis_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
try:
    answer = ""
    deadline = time.time() + 10
    while time.time() < deadline and answer != "PONG":
        time.sleep(0.1)
        answer = subprocess.run(["redis-cli", "-s", sock, "PING"], capture_output=True,
                                text=True).stdout.strip()
    c.eq("redis unit: its redis-server answers on the socket", answer, "PONG")
    cfg = subprocess.run(["redis-cli", "-s", sock, "CONFIG", "GET", "*"], capture_output=True,
                         text=True).stdout.split("\n")
    got = dict(zip(cfg[0::2], cfg[1::2]))
    c.eq("redis unit: AOF everysec, noeviction, no RDB, no TCP port",
         (got.get("appendonly"), got.get("appendfsync"), got.get("maxmemory-policy"),
          got.get("save"), got.get("port")), ("yes", "everysec", "noeviction", "", "0"))
finally:
    proc.terminate()
    proc.wait(30)

# the target pulls in every role; each role belongs to it
tk = keys(target)
wanted = " ".join(tk.get("Wants", [])).split()
c.eq("darkscope.target wants every unit", sorted(wanted), sorted(services))
for name, text in sorted(services.items()):
    k = keys(text)
    c.eq(f"{name}: part of and wanted by darkscope.target",
         (k.get("PartOf"), k.get("WantedBy")), (["darkscope.target"], ["darkscope.target"]))

# the hardening docs/deployment.md describes
def last(name):
    """Key → the last value set (what systemd uses for single-valued keys)."""
    return {key: values[-1] for key, values in keys(services[name]).items()}


for name in sorted(services):
    k, one = keys(services[name]), last(name)
    for key, want in (("User", "darkscope"), ("NoNewPrivileges", "yes"),
                      ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                      ("PrivateTmp", "yes"), ("PrivateDevices", "yes"),
                      ("ProtectKernelTunables", "yes"), ("ProtectKernelModules", "yes"),
                      ("ProtectControlGroups", "yes"), ("StateDirectory", "darkscope")):
        c.eq(f"{name}: {key}", one.get(key), want)
    c.true(f"{name}: SystemCallFilter=@system-service",
           "@system-service" in k.get("SystemCallFilter", []))
cap = last("darkscope-capture.service")
c.eq("capture: CAP_NET_RAW its only capability, ambient (it never has root)",
     (cap.get("CapabilityBoundingSet"), cap.get("AmbientCapabilities")),
     ("CAP_NET_RAW", "CAP_NET_RAW"))
c.true("capture: packet sockets allowed", "AF_PACKET" in cap.get("RestrictAddressFamilies", ""))
for name in sorted(n for n in services if n != "darkscope-capture.service"):
    one = last(name)
    c.eq(f"{name}: no capability at all",
         (one.get("CapabilityBoundingSet"), one.get("AmbientCapabilities")), ("", ""))
    c.true(f"{name}: no packet sockets",
           "AF_PACKET" not in one.get("RestrictAddressFamilies", "AF_PACKET"))

# systemd's exposure score of each (lower is better; 10 = unprotected)
for name in sorted(services):
    r = subprocess.run([ANALYZE, "security", "--offline=yes", "--no-pager",
                        os.path.join(units_dir, name)], capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    score = float(m.group(1)) if m else 10.0
    print(f"{name}: exposure {score}")
    c.true(f"{name}: systemd-analyze security exposure below 2.0 ({score})", score < 2.0)
c.done()
