#!/usr/bin/python3
"""`darkscope run`: one supervisor starts the embedded Redis once and every role the configuration
enables — capture (a pcap written here: a Mirai-like host inside a subscriber's range), aggregate,
notify (to a real SMTP server, aiosmtpd) and serve — as separate processes. Checked: the
packets written are counted, the infected host becomes an incident and an email, the map
answers; a role killed with SIGKILL is restarted alone; SIGHUP reaches the aggregator; SIGTERM
stops every role and the supervisor exits 0; a bad configuration exits 2 before anything starts."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402
import pcapw  # noqa: E402

c = dslib.Checker("run")
work = dslib.tmpdir()
os.chmod(work, 0o755)
state = os.path.join(work, "state")
sock = os.path.join(state, "redis.sock")


def shutdown_redis():
    subprocess.run(["redis-cli", "-s", sock, "shutdown", "nosave"], capture_output=True)


import atexit  # noqa: E402
atexit.register(shutdown_redis)

# 60 Mirai SYNs from 45.67.89.10 to 12 darknet addresses, in two minutes of 2026-01-01
T0 = 1767225600
pcap = os.path.join(work, "infected.pcap")
w = pcapw.Writer(pcap)
for i in range(60):
    dst = f"198.18.{(i % 12) + 1}.9"
    w.tcp(T0 + 5 + i * 2, "45.67.89.10", dst, 40000 + i, 23, "S", seq=pcapw.mirai_seq(dst))
w.close()
subs = os.path.join(work, "subscribers.json")
with open(subs, "w") as f:
    json.dump({"organisations": [{"id": "city-a", "name": "City A", "livenet": ["45.67.89.0/24"],
                                  "contacts": [{"email": "soc@city-a.example", "lang": "en"}]}]}, f)
mail = os.path.join(work, "mail")
smtp_port = dslib.SmtpSink(mail).port

port = dslib.free_port()
conf = os.path.join(work, "darkscope.json")
with open(conf, "w") as f:
    json.dump({"state_dir": state, "darknet": ["198.18.0.0/16"],
               "sensor": {"name": "run-1"}, "sources": {"files": [pcap]},
               "aggregate": {"subscribers": subs, "wait": 1},
               "notify": {"smtp": {"url": f"smtp://127.0.0.1:{smtp_port}", "tls": "off"},
                          "from": "darkscope@telescope.example", "digest": 0},
               "web": {"listen": f"127.0.0.1:{port}"}}, f)

# a bad configuration: exit status 2, nothing started
bad = subprocess.run([dslib.DARKSCOPE, "run", "--config", conf, "--set", "web.max_clients=-1"],
                     capture_output=True, text=True, timeout=30)
c.eq("a bad configuration exits 2", bad.returncode, 2)
c.true(f"and names the key: {bad.stderr.strip()!r}", "web.max_clients" in bad.stderr)
c.true("nothing was started for it", not os.path.exists(sock))

log = open(os.path.join(work, "run.log"), "w")
run = subprocess.Popen([dslib.DARKSCOPE, "run", "--config", conf], stdout=log,
                       stderr=subprocess.STDOUT)
atexit.register(lambda: run.poll() is None and run.kill())


def output():
    return open(os.path.join(work, "run.log")).read()


def roles():
    """role → pid, from the supervisor's log (the latest start of each)."""
    out = {}
    for line in output().splitlines():
        for role in ("capture", "aggregate", "notify", "serve"):
            for word in ("started", "restarted"):
                tag = f"{role} {word} (pid "
                if tag in line:
                    out[role] = int(line.split(tag)[1].split(")")[0])
    return out


def healthz():
    """True when serve answers /healthz and reaches Redis (the replayed buckets are from 2026-01-01,
    so it reports "degraded": no sensor wrote a bucket lately)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            body = r.read()
    except urllib.error.HTTPError as e:
        body = e.read()
    except OSError:
        return False
    try:
        return json.loads(body).get("redis") is True
    except ValueError:
        return False


def page():
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
            return r.status == 200 and b"<html" in r.read().lower()
    except OSError:
        return False


def wait(cond, seconds):
    end = time.time() + seconds
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.2)
    return False


c.true("serve answers and reaches Redis", wait(healthz, 30))
c.true("the map page is served", page())
c.true("the embedded Redis was started in the state directory", os.path.exists(sock))
c.eq("every role enabled by the configuration started",
     sorted(roles()), ["aggregate", "capture", "notify", "serve"])
c.true(f"capture finished reading its file: {output()[-800:]!r}",
       wait(lambda: "capture finished" in output(), 30))
s = dslib.json.loads(dslib.run(["query", "summary", "--set", f"state_dir={state}", "--from",
                                "2026-01-01T00:00:00Z", "--to", "2026-01-02T00:00:00Z"]).stdout)
c.eq("packets counted", s["packets"], 60)
c.eq("Mirai packets", s["by_tool"]["mirai"], 60)


def incidents():
    r = dslib.run(["query", "alerts", "--set", f"state_dir={state}", "--org", "city-a"],
                  check=False)
    return json.loads(r.stdout) if r.returncode == 0 else []


c.true("the aggregator raised the infected-host incident",
       wait(lambda: any(a["host"] == "45.67.89.10" and a["kind"] == "infected"
                        for a in incidents()), 60))
c.true("notify delivered the email",
       wait(lambda: os.path.isdir(mail) and any(f.endswith(".eml") for f in os.listdir(mail)), 60))

# a role killed with SIGKILL is restarted alone
before = roles()
try:
    os.kill(before["serve"], signal.SIGKILL)
except ProcessLookupError:
    c.true(f"serve (pid {before['serve']}) was running before the kill", False)
c.true("serve is restarted after SIGKILL",
       wait(lambda: roles().get("serve") not in (None, before["serve"]) and healthz(), 30))
after = roles()
c.eq("the other roles kept their processes",
     {k: after[k] for k in ("aggregate", "notify")}, {k: before[k] for k in ("aggregate", "notify")})

# SIGHUP: the aggregator reloads its subscriber file
run.send_signal(signal.SIGHUP)
c.true("SIGHUP reaches the aggregator", wait(lambda: "reloads its subscribers" in output(), 10))

run.send_signal(signal.SIGTERM)
try:
    run.wait(30)
except subprocess.TimeoutExpired:
    run.kill()
c.eq("the supervisor exits 0 after SIGTERM", run.returncode, 0)
alive = [r for r, pid in roles().items() if os.path.exists(f"/proc/{pid}")
         and "zombie" not in open(f"/proc/{pid}/status").read().lower()]
c.eq("no role is left running", alive, [])
if c.failures:
    print(output()[-4000:])
c.done()
