#!/usr/bin/python3
"""Out-of-order input: a file whose second half is ten minutes older than its first (two
generated captures appended with mergecap -a). Buckets of the first half are written before the
older packets arrive, so those arrive late and go out as late parts of their buckets: nothing is
lost, the late packets are counted as such, and per-source records merge the parts."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("late packets")
d = dslib.tmpdir()
DARKNET = ["--darknet", "198.18.0.0/16", "--darknet", "2001:db8:d000::/48"]


def generate(seed, start):
    tag = start.replace(":", "")
    pcap, truth = os.path.join(d, f"g{tag}.pcap"), os.path.join(d, f"g{tag}.json")
    subprocess.run([dslib.GEN, "--out", pcap, "--truth", truth, "--seed", str(seed), "--packets",
                    "20000", "--rate", "400", "--sources", "500", "--start", start, *DARKNET],
                   check=True)
    return pcap, json.load(open(truth))


newer, tn = generate(21, "2026-03-01T00:10:00Z")
older, to = generate(21, "2026-03-01T00:00:00Z")  # same sources, ten minutes earlier
both = os.path.join(d, "both.pcap")
subprocess.run(["mergecap", "-a", "-F", "pcap", "-w", both, newer, older], check=True)
redis = dslib.Redis()
dslib.capture(redis, [both], darknet=DARKNET)
s = dslib.summary(redis)
c.eq("packets", s["packets"], tn["packets"] + to["packets"])
c.eq("bytes", s["bytes"], tn["bytes"] + to["bytes"])
c.eq("late packets: the older half", s["late"], to["packets"])
c.eq("scan", s["by_class"]["scan"], tn["by_class"]["scan"] + to["by_class"]["scan"])
early = dslib.summary(redis, frm="2026-03-01T00:00:00Z", to="2026-03-01T00:10:00Z")
c.eq("the older buckets hold the older packets", early["packets"], to["packets"])
busiest = to["sources"][0]
r = dslib.source(redis, busiest["ip"])
both_truth = {x["ip"]: x for x in tn["sources"]}
c.eq("per-source record merges the late part", r["packets"],
     busiest["packets"] + both_truth.get(busiest["ip"], {"packets": 0})["packets"])
c.eq("first seen comes from the late part", r["first"], busiest["first"])
c.done()
