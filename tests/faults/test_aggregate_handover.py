#!/usr/bin/python3
"""Fault: a second aggregator commits a bucket while the first is stopped (SIGSTOP), then the
first goes on. The first keeps the open incidents it committed in memory so that a bucket only
reads back from Redis the incidents it has not seen (aggregator/aggregate.c, struct cache); that
memory is valid only while the checkpoint is the bucket it committed itself. Here it is not:
the first aggregator must notice and read everything back, and the end state must be
byte-identical to one uninterrupted aggregator's over the same data (a stale cache would miss
the other aggregator's bucket in every continuing incident)."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import dslib  # noqa: E402

WAIT_S = 120

c = dslib.Checker("aggregate handover")
work = dslib.tmpdir()
os.chmod(work, 0o755)
# three captures, one after the other: minutes 0-3, minute 4, minutes 5-7; a small population,
# so most hosts come back bucket after bucket and their incidents go on
parts = []
for i, (start, seconds) in enumerate((("00:00", 240), ("04:00", 60), ("05:00", 180))):
    pcap, truth = dslib.gen(work, name=f"p{i}",
                            extra=["--seed", "3", "--rate", "100", "--duration", str(seconds),
                                   "--sources", "3000", "--start", f"2026-01-01T00:{start}Z",
                                   "--no-source-truth"])
    parts.append(pcap)
darknet = sum((["--darknet", d] for d in truth["darknet"]), [])
subs = os.path.join(work, "subs.json")
with open(subs, "w") as f:
    json.dump({"organisations": [
        {"id": "west", "name": "West", "livenet": ["0.0.0.0/1"],
         "contacts": [{"email": "soc@west.example"}]},
        {"id": "east", "name": "East", "livenet": ["128.0.0.0/1"],
         "contacts": [{"email": "soc@east.example"}]}]}, f)


def agg_args(redis):
    return [dslib.DARKSCOPE, "aggregate", "--redis", redis.url, "--subscribers", subs,
            "--set", "aggregate.early_warning.warmup=2", "--set", "state_dir=" + work]


def checkpoint(redis):
    v = redis.cli("GET", "ds:v1:agg:checkpoint").strip()
    return int(v) if v else None


def last_bucket(redis):
    return int(redis.cli("ZRANGE", "ds:v1:idx:s1", "-1", "-1").strip())


def wait_until(cond, what):
    deadline = time.time() + WAIT_S
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    c.true(f"timed out waiting for {what}", False)
    return False


# the reference: everything captured, one aggregator
ref = dslib.Redis()
for p in parts:
    dslib.capture(ref, [p], darknet=darknet, sensor="s1")
r = subprocess.run(agg_args(ref) + ["--once"], capture_output=True, text=True, timeout=600)
c.eq("reference run exit status", r.returncode, 0)
LAST = last_bucket(ref)
c.eq("reference reached the last bucket", checkpoint(ref), LAST)

# the handover: the first aggregator runs through part 0 and is stopped; a second one commits
# part 1 (one bucket); the first goes on through part 2
store = dslib.Redis()
dslib.capture(store, [parts[0]], darknet=darknet, sensor="s1")
first_last = last_bucket(store)
log = open(os.path.join(work, "first.log"), "w")
first = subprocess.Popen(agg_args(store), stdout=subprocess.DEVNULL, stderr=log)
try:
    wait_until(lambda: checkpoint(store) == first_last, "the first aggregator through part 0")
    first.send_signal(signal.SIGSTOP)
    dslib.capture(store, [parts[1]], darknet=darknet, sensor="s1")
    second = subprocess.run(agg_args(store) + ["--once"], capture_output=True, text=True,
                            timeout=600)
    c.eq("the second aggregator exit status", second.returncode, 0)
    c.eq("the second aggregator committed part 1's bucket", checkpoint(store),
         last_bucket(store))
    c.true("part 1 is one bucket after part 0", last_bucket(store) == first_last + 60)
    dslib.capture(store, [parts[2]], darknet=darknet, sensor="s1")
    first.send_signal(signal.SIGCONT)
    wait_until(lambda: checkpoint(store) == LAST, "the first aggregator through part 2")
finally:
    first.send_signal(signal.SIGCONT)
    first.send_signal(signal.SIGTERM)
    first.wait(30)
c.eq("the first aggregator stops cleanly", first.returncode, 0)


def state(redis):
    return dslib.aggregator_state(redis, ["west", "east"])


want, got = state(ref), state(store)
for key in want:
    c.true(f"{key} identical to the uninterrupted run ({len(got[key])} / {len(want[key])} bytes)",
           got[key] == want[key])
incidents = [json.loads(v) for v in ref.cli("HVALS", "ds:v1:incidents").splitlines()]
going_on = sum(1 for i in incidents if i.get("buckets", 0) >= 6)
c.true(f"hundreds of incidents span the handover ({going_on})", going_on >= 100)
c.done()
