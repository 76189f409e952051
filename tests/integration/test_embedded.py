#!/usr/bin/python3
"""Without a Redis URL every role uses darkscope's own redis-server on a unix socket in the state
directory, started on first use (AOF everysec, noeviction) and shared by later roles."""
import os
import subprocess
import sys

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
c.done()
