#!/usr/bin/python3
"""Fault: redis-server killed with kill -9 again and again during a capture replay, and started
again from its AOF each time. With appendfsync always every bucket capture wrote is read back
equal to the generator's ground truth (darkscope-gen --truth): a flush whose answer never came
is retried, and its per-flush guard key makes the retry apply once. With appendfsync everysec
a lost bucket may only be one whose write was answered in the last two seconds before a kill
(Redis flushes and fsyncs the AOF once a second and may postpone the write by up to one more
second); the test measures how many were lost. The single-kill case with a shared capture is
tests/integration/test_redis_restart.py. Figures for docs/reliability.md are printed."""
import calendar
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import dslib  # noqa: E402

KILLS = 6           # per fsync mode
FIRST_KILL_S = 3.0  # into the replay
DOWN_S = 0.5        # Redis down for this long each time
BETWEEN_S = 3.0     # Redis up this long between kills
WINDOW_S = 2.0      # everysec: an answered write may be lost when this close to a kill

c = dslib.Checker("redis kill -9")
work = dslib.tmpdir()
# 300 s of packet time in 10 s buckets, replayed ten times faster: a flush about every second
pcap, truth = dslib.gen(work, extra=["--seed", "5", "--rate", "1000", "--duration", "300",
                                     "--bucket-seconds", "10"])
darknet = sum((["--darknet", d] for d in truth["darknet"]), [])


def epoch(rfc3339):
    return calendar.timegm(time.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ"))


def stamp(line):
    """The time of a log line ("2026-01-01T00:00:00.123Z LEVEL module: text")."""
    return epoch(line[:19] + "Z") + int(line[20:23]) / 1000


def replay_with_kills(fsync):
    """Returns (exit status, log lines, [(killed at, up again at)], redis)."""
    redis = dslib.Redis(appendonly=True, fsync=fsync)
    proc = subprocess.Popen([dslib.DARKSCOPE, "capture", "--redis", redis.url, "--sensor", "k",
                             *darknet, "--read", pcap, "--speed", "x10",
                             "--set", "bucket_seconds=10", "--set", "capture.lateness=1",
                             "--set", "redis.flush_timeout=60", "--set", "log.level=debug"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    outages = []
    time.sleep(FIRST_KILL_S)
    for _ in range(KILLS):
        redis.stop(signal.SIGKILL)
        killed = time.time()
        time.sleep(DOWN_S)
        redis.start()
        outages.append((killed, time.time()))
        time.sleep(BETWEEN_S)
    try:
        proc.wait(timeout=150)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    reader.join(10)
    return proc.returncode, lines, outages, redis


def per_bucket(redis):
    got = {}
    for b in truth["buckets"]:
        start = epoch(b["start"])
        v = redis.cli("HMGET", f"ds:v1:{{k:{start}}}:tot", "packets", "bytes").split("\n")
        got[start] = (int(v[0] or 0), int(v[1] or 0))
    return got


def last_writes(lines):
    """bucket start -> time of its last write (the debug line after each attempt)."""
    out = {}
    for line in lines:
        if " flush: bucket " in line and ": " in line.split(" flush: bucket ", 1)[1]:
            start = int(line.split(" flush: bucket ", 1)[1].split(":", 1)[0])
            out[start] = stamp(line)
    return out


def recovery(lines, outages):
    """Seconds from each restart to capture's "Redis ... is back" (None: nothing was waiting)."""
    backs = [stamp(x) for x in lines if "is back" in x]
    return [next((b - up for b in backs if b >= up - 0.01), None) for _, up in outages]


want = {epoch(b["start"]): (b["packets"], b["bytes"]) for b in truth["buckets"]}
figures = {}
for fsync in ("always", "everysec"):
    rc, lines, outages, redis = replay_with_kills(fsync)
    got = per_bucket(redis)
    c.eq(f"{fsync}: capture exit status", rc, 0)
    c.true(f"{fsync}: the outages were noticed and logged",
           any("unavailable" in x for x in lines))
    c.true(f"{fsync}: capture wrote after every restart ({[round(x[1], 1) for x in outages]})",
           all(any(t > up for t in last_writes(lines).values()) for _, up in outages))
    lost = sorted(b for b in want if got[b] != want[b])
    c.true(f"{fsync}: no bucket partly written: {[(b, got[b], want[b]) for b in lost]}",
           all(got[b] == (0, 0) for b in lost))
    if fsync == "always":
        c.eq("always: every bucket equals the truth", lost, [])
        s = dslib.summary(redis)
        c.eq("always: packets", s["packets"], truth["packets"])
        c.eq("always: bytes", s["bytes"], truth["bytes"])
        c.eq("always: by_class", {k: s["by_class"][k] for k in truth["by_class"]},
             truth["by_class"])
        c.eq("always: buckets", s["buckets"], len(truth["buckets"]))
    else:
        # the bound: only buckets answered in the last WINDOW_S before a kill may be gone
        written = last_writes(lines)
        near = {b for b, t in written.items()
                if any(k - WINDOW_S <= t <= k for k, _ in outages)}
        c.true(f"everysec: lost buckets {lost} were all answered within {WINDOW_S} s of a kill "
               f"({sorted(near)})", set(lost) <= near)
    rec = [r for r in recovery(lines, outages) if r is not None]
    figures[fsync] = {
        "kills": len(outages),
        "buckets": len(want),
        "buckets_lost": len(lost),
        "packets_lost": sum(want[b][0] for b in lost),
        "packets": truth["packets"],
        "writes_within_window_of_a_kill": len({b for b, t in last_writes(lines).items()
                                               if any(k - WINDOW_S <= t <= k
                                                      for k, _ in outages)}),
        "recovery_s_max": round(max(rec), 2) if rec else None,
        "recovery_s": [round(r, 2) for r in rec],
    }
    redis.stop()

for fsync, f in figures.items():
    print(f"figure {fsync}: {f}")
c.done()
