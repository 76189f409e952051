#!/usr/bin/python3
"""redis-server killed (kill -9) during a replay and started again from its AOF (appendfsync
always): capture keeps reading, queues finished buckets, retries them, and the totals read back
afterwards equal the packets in the file (tshark's count, tests/fixtures/pcaps)."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("redis restart")
redis = dslib.Redis(appendonly=True, fsync="always")
name = "pkt.TCP.synflood.spoofed.pcap"  # 37,841 frames over 23.7 s
want = json.load(open(os.path.join(dslib.ROOT, "tests", "fixtures", "pcaps", name + ".json")))
proc = subprocess.Popen([dslib.DARKSCOPE, "capture", "--redis", redis.url, "--sensor", "test",
                         *dslib.EVERYTHING, "--read", os.path.join(dslib.PCAPS, name),
                         "--speed", "x3", "--set", "bucket_seconds=10", "--set", "capture.lateness=1",
                         "--set", "redis.flush_timeout=60"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
time.sleep(2.5)
redis.stop(signal.SIGKILL)
down_at = time.time()
time.sleep(4)  # at x3 the replay moves on ~12 s of packet time: at least one bucket closes
c.true("capture keeps running while Redis is down", proc.poll() is None)
redis.start()
out, err = proc.communicate(timeout=120)
c.eq("exit status", proc.returncode, 0)
c.true(f"the outage was noticed and logged: {err!r}", "unavailable" in err)
s = dslib.summary(redis)
c.eq("packets after the restart", s["packets"], want["expect"]["packets"])
c.eq("bytes after the restart", s["bytes"], want["expect"]["bytes"])
c.eq("scan packets", s["by_class"]["scan"], want["expect"]["by_class"]["scan"])
c.eq("ignored", s["ignored"]["total"], want["expect"]["ignored"]["total"])
c.eq("buckets", s["buckets"], 3)
c.done()
