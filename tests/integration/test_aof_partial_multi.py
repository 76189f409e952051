#!/usr/bin/python3
"""A bucket write cut short in Redis's AOF is not counted twice once it is written again.

redis-server killed while it writes a bucket's MULTI/EXEC to its AOF leaves part of it in the
file. On the next start Redis (7.0 and others before the fix of valkey-io/valkey#4342) drops
only the cut command: the AOF keeps MULTI and the complete commands before the cut, with no
EXEC. The bucket is not there after that start, so capture writes it again (the guard key of its
flush was in the cut part); the next write appended to the file supplies an EXEC, and the start
after that replays the kept part and the new write together. The write guard cannot see that: a
bucket's first write has to come out the same when a prefix of it is replayed before it.

The test cuts the AOF inside the bucket's transaction (in its guard SET, its last command),
starts Redis, writes the bucket again with a second capture run, restarts Redis, and compares
the bucket and its roll-up with the generator's truth."""
import calendar
import glob
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("AOF cut inside a bucket write")
work = dslib.tmpdir()
# 10 s of traffic in one 10 s bucket
pcap, truth = dslib.gen(work, extra=["--seed", "11", "--rate", "500", "--duration", "10",
                                     "--bucket-seconds", "10"])
darknet = sum((["--darknet", d] for d in truth["darknet"]), [])
extra = ["--set", "bucket_seconds=10"]
start = calendar.timegm(time.strptime(truth["buckets"][0]["start"], "%Y-%m-%dT%H:%M:%SZ"))
hour = start - start % 3600
want = [str(truth["buckets"][0]["packets"]), str(truth["buckets"][0]["bytes"])]
c.eq("the pcap makes one bucket", len(truth["buckets"]), 1)


def tot(redis, key):
    return redis.cli("HMGET", key, "packets", "bytes").split("\n")[:2]


def incr_aof(redis):
    files = sorted(glob.glob(os.path.join(redis.dir, "appendonlydir", "*.incr.aof")),
                   key=lambda p: int(p.split(".")[-3]))
    return files[-1]


redis = dslib.Redis(appendonly=True, fsync="always")
dslib.capture(redis, [pcap], darknet, extra=extra, sensor="t")
redis.stop()

# cut the file inside the bucket write's last command, SET ds:v1:{t:<start>}:flush:<id>
aof = incr_aof(redis)
with open(aof, "rb") as f:
    data = f.read()
guards = list(re.finditer(rb"ds:v1:\{t:%d\}:flush:[0-9a-f]{16}" % start, data))
c.eq("the AOF holds the bucket's guard once", len(guards), 1)
os.truncate(aof, guards[0].start() + 8)

redis.start()
c.eq("after the cut the bucket is not there", tot(redis, f"ds:v1:{{t:{start}}}:tot"), ["", ""])
dslib.capture(redis, [pcap], darknet, extra=extra, sensor="t")
c.eq("written again", tot(redis, f"ds:v1:{{t:{start}}}:tot"), want)

redis.stop()
redis.start()
c.eq("after a restart: bucket totals", tot(redis, f"ds:v1:{{t:{start}}}:tot"), want)
c.eq("after a restart: hourly totals", tot(redis, f"ds:v1:{{t:h{hour}}}:tot"), want)
s = dslib.summary(redis, sensor="t")
c.eq("after a restart: packets", s["packets"], truth["packets"])
c.eq("after a restart: by_class", {k: s["by_class"][k] for k in truth["by_class"]},
     truth["by_class"])
redis.stop()
c.done()
