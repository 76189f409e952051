"""Helpers for darkscope's integration tests: a private redis-server, the real binary, queries.

Every test starts its own redis-server on a unix socket in a temporary directory (never a shared
port), and stops it at exit, also on failure. Paths come from the environment meson sets:
DARKSCOPE (the binary under test), DARKSCOPE_GEN (the generator), DS_SOURCE_ROOT, DS_SHARED.
"""
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

DARKSCOPE = os.environ.get("DARKSCOPE", "build/darkscope")
GEN = os.environ.get("DARKSCOPE_GEN", "build/tools/gen/darkscope-gen")
ROOT = os.environ.get("DS_SOURCE_ROOT", os.getcwd())
SHARED = os.environ.get("DS_SHARED", os.path.join(ROOT, "..", "shared"))
PCAPS = os.path.join(SHARED, "pcaps")
EVERYTHING = ["--darknet", "0.0.0.0/0", "--darknet", "::/0"]


def tmpdir(prefix="ds-test-"):
    d = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, d, True)
    return d


class Redis:
    """A redis-server of our own on a unix socket; AOF optional."""

    def __init__(self, appendonly=False, fsync="everysec", directory=None):
        self.dir = directory or tmpdir("ds-redis-")
        self.sock = os.path.join(self.dir, "redis.sock")
        self.appendonly = appendonly
        self.fsync = fsync
        self.proc = None
        self.start()
        atexit.register(self.stop)

    @property
    def url(self):
        return "unix:" + self.sock

    def start(self):
        # capture started as root switches to an unprivileged account: let it reach the socket
        os.chmod(self.dir, 0o755)
        args = ["redis-server", "--port", "0", "--unixsocket", self.sock, "--unixsocketperm", "777",
                "--dir", self.dir, "--save", "", "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", self.fsync, "--maxmemory-policy", "noeviction"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.cli("PING", check=False).strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cli(self, *args, check=True):
        r = subprocess.run(["redis-cli", "-s", self.sock, *args], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"redis-cli {args}: {r.stderr}")
        return r.stdout


def run(args, check=True, timeout=600, env=None):
    """Runs darkscope with args; returns CompletedProcess (text)."""
    r = subprocess.run([DARKSCOPE, *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"darkscope {' '.join(args)} exited {r.returncode}:\n{r.stderr}")
    return r


def capture(redis, files, darknet=EVERYTHING, extra=(), check=True, sensor="test"):
    args = ["capture", "--redis", redis.url, "--sensor", sensor, *darknet, *extra]
    for f in files:
        args += ["--read", f]
    return run(args, check=check)


def summary(redis, frm="1970-01-01T00:00:00Z", to="2100-01-01T00:00:00Z", top=10, sensor=None):
    args = ["query", "summary", "--redis", redis.url, "--from", frm, "--to", to, "--top", str(top)]
    if sensor:
        args += ["--sensor", sensor]
    return json.loads(run(args).stdout)


def source(redis, ip):
    return json.loads(run(["query", "source", ip, "--redis", redis.url]).stdout)


class Checker:
    """Collects failed comparisons so one run reports every difference, then exits 1."""

    def __init__(self, name):
        self.name = name
        self.failures = []
        self.checks = 0

    def eq(self, what, got, want):
        self.checks += 1
        if got != want:
            self.failures.append(f"{what}: got {got!r}, want {want!r}")

    def near(self, what, got, want, rel):
        self.checks += 1
        if abs(got - want) > rel * max(want, 1):
            self.failures.append(f"{what}: got {got!r}, want {want!r} ± {rel:.0%}")

    def true(self, what, cond):
        self.checks += 1
        if not cond:
            self.failures.append(what)

    def done(self):
        if self.failures:
            print(f"{self.name}: {len(self.failures)} of {self.checks} checks failed:")
            for f in self.failures:
                print("  " + f)
            sys.exit(1)
        if self.checks == 0:
            print(f"{self.name}: no checks ran")
            sys.exit(1)
        print(f"{self.name}: {self.checks} checks passed")


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


class VethPair:
    """Two network namespaces of the calling test ("<tag>-snd", "<tag>-cap") joined by a veth
    pair (veth-s, veth-c), with IPv6 off so the kernel adds no chatter. Deleted at exit, also
    on failure. Nothing here has a route anywhere else."""

    def __init__(self, tag):
        self.snd, self.cap = f"{tag}-snd", f"{tag}-cap"
        atexit.register(self.delete)
        self.delete()
        for ns in (self.snd, self.cap):
            sh("ip", "netns", "add", ns)
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
               "net.ipv6.conf.default.disable_ipv6=1")
        self.link_up()

    def delete(self):
        for ns in (self.snd, self.cap):
            sh("ip", "netns", "del", ns, check=False)

    def link_up(self):
        sh("ip", "link", "add", "veth-s", "netns", self.snd, "type", "veth", "peer", "name",
           "veth-c", "netns", self.cap)
        for ns, dev in ((self.snd, "veth-s"), (self.cap, "veth-c")):
            sh("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")

    def link_down(self):
        sh("ip", "netns", "exec", self.snd, "ip", "link", "del", "veth-s")  # both ends go

    def replay(self, name, pps=20000):
        """tcpreplay of a capture (a shared one by name, or a path) from the sender side, bounded
        in rate and time."""
        return sh("ip", "netns", "exec", self.snd, "timeout", "60", "tcpreplay", "-i", "veth-s",
                  "--pps", str(pps), os.path.join(PCAPS, name)).stdout


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpSink:
    """tests/integration/smtp_sink.py, a real SMTP server (aiosmtpd) storing messages in DIR
    (extra: its --starttls / --auth options), on a port it chose itself, so no parallel test can
    take it between choosing and binding; start() again after stop() listens on the same port."""

    def __init__(self, directory, extra=()):
        self.dir = directory
        self.extra = list(extra)
        self.port = 0
        self.proc = None
        self.start()
        atexit.register(self.kill)

    def start(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", os.path.join(os.path.dirname(__file__),
                                                                      "smtp_sink.py"),
                                      self.dir, str(self.port), *self.extra],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "ready":
            raise RuntimeError(f"the SMTP sink did not start: {line!r}")
        self.port = int(line[1])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Serve:
    """`darkscope serve` on a free loopback port, stopped at exit (SIGTERM, then kill)."""

    def __init__(self, redis, extra=(), listen=None, scheme="http", wait=True):
        # a port found free may be taken by a parallel test before serve binds it: when we chose
        # it and serve could not listen, choose another (a few times)
        for attempt in range(5):
            try:
                self._start(redis, extra, listen, scheme, wait)
                return
            except RuntimeError as e:
                if listen or attempt == 4 or "address in use" not in str(e):
                    raise

    def _start(self, redis, extra, listen, scheme, wait):
        self.port = free_port()
        self.listen = listen or f"127.0.0.1:{self.port}"
        self.base = f"{scheme}://{self.listen}"
        self.ws_base = f"{'wss' if scheme == 'https' else 'ws'}://{self.listen}"
        self.log = os.path.join(tmpdir("ds-serve-"), "serve.log")
        args = [DARKSCOPE, "serve", "--redis", redis.url, "--listen", self.listen, *extra]
        # under AddressSanitizer, freed memory waits in a 256 MB quarantine: keep it small so
        # the memory figures tests read are the program's, not the sanitizer's
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS", ""),
                                                     "quarantine_size_mb=4"]))
        self.proc = subprocess.Popen(args, stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
                                     env=env)
        atexit.register(self.stop)
        if wait:
            deadline = time.time() + 15
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"serve exited {self.proc.returncode}: {self.output()}")
                if "listening on" in self.output():
                    return
                time.sleep(0.05)
            raise RuntimeError("serve did not start: " + self.output())

    def output(self):
        with open(self.log) as f:
            return f.read()

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")

    def get(self, path, token=None, headers=None):
        """GET path; returns (status, headers dict lower-cased, body bytes)."""
        import ssl
        import urllib.error
        import urllib.request
        req = urllib.request.Request(self.base + path, headers=dict(headers or {}))
        if token:
            req.add_header("Authorization", "Bearer " + token)
        ctx = ssl._create_unverified_context() if self.base.startswith("https") else None
        try:
            with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()
        except ConnectionError:
            return 0, {}, b""  # the server closed the connection without an answer

    def get_json(self, path, token=None):
        status, headers, body = self.get(path, token)
        return status, json.loads(body)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None


def gen(out_dir, name="g", extra=()):
    """Runs darkscope-gen; returns (pcap path, truth dict)."""
    pcap = os.path.join(out_dir, name + ".pcap")
    truth = os.path.join(out_dir, name + ".json")
    subprocess.run([GEN, "--out", pcap, "--truth", truth, *extra], check=True,
                   capture_output=True)
    with open(truth) as f:
        return pcap, json.load(f)


def aggregator_state(redis, orgs):
    """Everything the aggregator writes (alert streams of the given organisations, incidents,
    early-warning baselines, checkpoint), as text that must be byte-identical between runs."""
    out = {}
    for key in ["ds:v1:alerts"] + [f"ds:v1:alerts:org:{o}" for o in orgs]:
        out[key] = redis.cli("XRANGE", key, "-", "+")
    out["ds:v1:incidents"] = "\n".join(sorted(redis.cli("HGETALL", "ds:v1:incidents")
                                              .splitlines()))
    out["ds:v1:incidents:open"] = redis.cli("ZRANGE", "ds:v1:incidents:open", "0", "-1",
                                            "WITHSCORES")
    out["ds:v1:ew"] = redis.cli("GET", "ds:v1:ew")
    out["ds:v1:agg:checkpoint"] = redis.cli("GET", "ds:v1:agg:checkpoint")
    return out
