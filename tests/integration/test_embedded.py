#!/usr/bin/python3
"""Without a Redis URL every role uses darkscope's own redis-server on a unix socket in the state
directory, started on first use (AOF everysec, noeviction) and shared by later roles. Killed
while writing a transaction to its AOF, it is started again with the AOF cut back to before that
transaction (redis-check-aof --fix), so the next write does not complete and replay the cut
one."""
import glob
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("embedded redis")
state = dslib.tmpdir("ds-state-")
sock = os.path.join(state, "redis.sock")


def shutdown():
    subprocess.run(["redis-cli", "-s", sock, "shutdown", "nosave"], capture_output=True)


import atexit  # noqa: E402
atexit.register(shutdown)
pcap = os.path.join(dslib.PCAPS, "synscan.pcap")
dslib.run(["capture", "--set", f"state_dir={state}", *dslib.EVERYTHING, "--read", pcap])
c.true("socket created in the state directory", os.path.exists(sock))


def config(name):
    out = subprocess.run(["redis-cli", "-s", sock, "config", "get", name], capture_output=True,
                         text=True).stdout.split()
    return out[1] if len(out) == 2 else None


c.eq("appendonly", config("appendonly"), "yes")
c.eq("appendfsync", config("appendfsync"), "everysec")
c.eq("maxmemory-policy", config("maxmemory-policy"), "noeviction")
# a second role started separately finds the same server
s = dslib.json.loads(dslib.run(["query", "summary", "--set", f"state_dir={state}", "--from",
                                "2000-01-01T00:00:00Z", "--to", "2030-01-01T00:00:00Z"]).stdout)
c.eq("packets read back through the shared server", s["packets"], 2011)
c.eq("nmap packets", s["by_tool"]["nmap"], 1994)
top = s["top_sources"][0]
# a second capture reuses the running server rather than starting another
pid_before = open(os.path.join(state, "redis.pid")).read()
dslib.run(["capture", "--set", f"state_dir={state}", *dslib.EVERYTHING, "--read", pcap])
c.eq("same server process", open(os.path.join(state, "redis.pid")).read(), pid_before)
s = dslib.json.loads(dslib.run(["query", "summary", "--set", f"state_dir={state}", "--from",
                                "2000-01-01T00:00:00Z", "--to", "2030-01-01T00:00:00Z"]).stdout)
c.eq("two replays add up", s["packets"], 2 * 2011)
# the second capture wrote the same buckets again: its records are kept beside the first's (a
# part), not over them, so a source's record adds up like the totals
src = dslib.json.loads(dslib.run(["query", "source", top["ip"], "--set", f"state_dir={state}"]).stdout)
c.eq(f"{top['ip']}: both replays' packets in its records", src["packets"], 2 * top["packets"])


def packets():
    s = dslib.json.loads(dslib.run(["query", "summary", "--set", f"state_dir={state}", "--from",
                                    "2000-01-01T00:00:00Z", "--to",
                                    "2030-01-01T00:00:00Z"]).stdout)
    return s["packets"]


def hourly():
    keys = subprocess.run(["redis-cli", "-s", sock, "--scan", "--pattern", "ds:v1:{*:h*}:tot"],
                          capture_output=True, text=True).stdout.split()
    return sum(int(subprocess.run(["redis-cli", "-s", sock, "HGET", k, "packets"],
                                  capture_output=True, text=True).stdout.strip() or 0)
               for k in keys)


# kill -9 while the second replay's last transaction with added counters (a part: HINCRBY) was
# being written: its AOF ends inside it, in its guard SET (the transaction's last command)
pid = int(open(os.path.join(state, "redis.pid")).read())
os.kill(pid, signal.SIGKILL)
for _ in range(100):
    if subprocess.run(["redis-cli", "-s", sock, "ping"], capture_output=True).returncode != 0:
        break
    time.sleep(0.05)
incr = sorted(glob.glob(os.path.join(state, "appendonlydir", "*.incr.aof")),
              key=lambda p: int(p.split(".")[-3]))[-1]
data = open(incr, "rb").read()
end = data.rfind(b"HINCRBY")
multi = data.rfind(b"MULTI", 0, end)
exec_ = data.find(b"EXEC", end)
guard = data.rfind(b":flush:", multi, exec_)
c.true("the AOF's last transaction adds counters (HINCRBY) and has a guard",
       multi > 0 and exec_ > end and guard > end)
rollup = b":h" in data[data.rfind(b"ds:v1:{", multi, guard):guard]
os.truncate(incr, guard + 3)
r = dslib.run(["query", "summary", "--set", f"state_dir={state}", "--from",
               "2000-01-01T00:00:00Z", "--to", "2030-01-01T00:00:00Z"])
c.true("the unclean stop is noticed", "stopped uncleanly" in r.stderr)
log = open(os.path.join(state, "redis.log"), errors="replace").read()
c.true("the AOF was repaired with redis-check-aof --fix", "redis-check-aof --fix" in log and
       "Successfully truncated AOF" in log)
# the cut transaction is lost whole: the second replay's bucket part, or its roll-up part
want_buckets, want_hours = (2 * 2011, 2011) if rollup else (2011, 2 * 2011)
c.eq("after the repair: packets", packets(), want_buckets)
c.eq("after the repair: hourly packets", hourly(), want_hours)
# the next write and a clean restart: nothing of the cut transaction comes back
dslib.run(["capture", "--set", f"state_dir={state}", *dslib.EVERYTHING, "--read", pcap])
subprocess.run(["redis-cli", "-s", sock, "shutdown"], capture_output=True)
for _ in range(100):
    if not os.path.exists(os.path.join(state, "redis.pid")):
        break
    time.sleep(0.05)
c.eq("after another replay and a restart: packets", packets(), want_buckets + 2011)
c.eq("after another replay and a restart: hourly packets", hourly(), want_hours + 2011)

# roles started together on a fresh state directory share one server: they take turns under a
# lock, and the ones after the first find it answering
fresh = dslib.tmpdir("ds-state-")
fresh_sock = os.path.join(fresh, "redis.sock")
atexit.register(lambda: subprocess.run(["redis-cli", "-s", fresh_sock, "shutdown", "nosave"],
                                       capture_output=True))
procs = [subprocess.Popen([dslib.DARKSCOPE, "query", "summary", "--set", f"state_dir={fresh}",
                           "--from", "2000-01-01T00:00:00Z", "--to", "2030-01-01T00:00:00Z"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
         for _ in range(6)]
codes = [p.wait(60) for p in procs]
c.eq("six roles started together all ran", codes, [0] * 6)
servers = subprocess.run(["pgrep", "-f", f"redis-server unixsocket:{fresh_sock}"],
                         capture_output=True, text=True).stdout.split()
c.eq("one embedded redis-server among them", len(servers), 1)
c.done()
