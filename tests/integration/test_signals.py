#!/usr/bin/python3
"""SIGTERM and SIGINT during a paced replay: capture flushes what it read and exits 0 within a
few seconds; every frame it says it read is accounted for in Redis, none twice."""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("signals")
pcap = os.path.join(dslib.PCAPS, "pkt.TCP.synflood.spoofed.pcap")  # 37,841 frames over 23.7 s
for sig in (signal.SIGTERM, signal.SIGINT):
    redis = dslib.Redis()
    proc = subprocess.Popen([dslib.DARKSCOPE, "capture", "--redis", redis.url, "--sensor", "sig",
                             *dslib.EVERYTHING, "--read", pcap, "--speed", "realtime",
                             "--set", "bucket_seconds=10"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    t0 = time.time()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    took = time.time() - t0
    c.eq(f"{sig.name}: exit status", proc.returncode, 0)
    c.true(f"{sig.name}: exits within 5 s ({took:.1f} s)", took < 5)
    m = re.search(r"(\d+) frames read", err)
    c.true(f"{sig.name}: says how many frames it read: {err!r}", m is not None)
    s = dslib.summary(redis)
    frames = int(m.group(1)) if m else -1
    c.true(f"{sig.name}: stopped part-way ({frames} of 37841 frames)", 0 < frames < 37841)
    c.eq(f"{sig.name}: every frame read is in Redis",
         s["packets"] + s["ignored"]["total"] + s["malformed"]["total"], frames)
    redis.stop()
c.done()
