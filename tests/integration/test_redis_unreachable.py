#!/usr/bin/python3
"""Redis unreachable for redis.flush_timeout: capture flushes what it can, says how many buckets
were not written, and exits 3 — without blocking while reading."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("redis unreachable")
d = dslib.tmpdir()
pcap = os.path.join(dslib.PCAPS, "pkt.TCP.synflood.spoofed.pcap")
t0 = time.time()
r = dslib.run(["capture", "--redis", "unix:" + os.path.join(d, "nobody-listens.sock"),
               *dslib.EVERYTHING, "--read", pcap, "--set", "bucket_seconds=10",
               "--set", "redis.flush_timeout=2"], check=False)
elapsed = time.time() - t0
c.eq("exit status", r.returncode, 3)
c.true(f"names the unwritten buckets: {r.stderr!r}", "3 buckets were not written" in r.stderr)
c.true(f"gives up after the flush timeout, not before ({elapsed:.1f}s)", elapsed >= 2)
c.done()
