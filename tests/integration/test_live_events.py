#!/usr/bin/python3
"""Live events: sampled packets published on ds:v1:live with exact counters beside them, bounded
by live.max_events_per_second."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("live events")
redis = dslib.Redis()
sub = subprocess.Popen(["redis-cli", "-s", redis.sock, "--raw", "SUBSCRIBE", "ds:v1:live"],
                       stdout=subprocess.PIPE, text=True)
time.sleep(0.5)
pcap = os.path.join(dslib.PCAPS, "pkt.TCP.synflood.spoofed.pcap")  # 37,841 frames over 23.7 s
t0 = time.time()
dslib.capture(redis, [pcap], extra=["--speed", "x8", "--set", "live.max_events_per_second=40"])
elapsed = time.time() - t0
time.sleep(0.5)
sub.terminate()
out = sub.communicate(timeout=10)[0]
batches = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
s = dslib.summary(redis)
seen = sum(b["seen"] for b in batches)
events = [e for b in batches for e in b["events"]]
c.true("batches arrived", len(batches) > 3)
c.eq("seen counters add up to the packets counted", seen, s["packets"])
c.eq("sampled counters equal the events sent", sum(b["sampled"] for b in batches), len(events))
c.true(f"events bounded by 40/s over {elapsed:.1f}s (+ one burst): {len(events)}",
       0 < len(events) <= 40 * elapsed + 40)
c.true("every event has its fields",
       all({"t", "src", "dport", "proto", "class", "tool", "cc"} <= e.keys() for e in events))
c.true("events are SYNs of the flood", all(e["class"] == "scan" and e["proto"] == "tcp" and
                                          e["dport"] == 25565 for e in events))
c.true("sensor named", all(b["sensor"] == "test" for b in batches))
c.true("each batch's classes add up to its packets",
       all(sum(b["by_class"].values()) == b["seen"] for b in batches))
c.eq("classes over all batches equal the summary's", {k: sum(b["by_class"][k] for b in batches)
                                                    for k in s["by_class"]}, s["by_class"])
c.true("batches name the open bucket and its sources so far",
       all(b["bucket"]["sources"] >= 1 for b in batches if "bucket" in b) and
       any("bucket" in b for b in batches))
c.done()
