#!/usr/bin/python3
"""Runs darkscope capture on one capture from ../shared/pcaps (the whole address space as darknet)
and compares the summary with the counts tshark reads from the same file
(tests/fixtures/pcaps/<name>.json, made by tools/tshark-expect; the commands are in the fixture).

usage: test_shared_pcap.py NAME
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

name = sys.argv[1]
fixture = json.load(open(os.path.join(dslib.ROOT, "tests", "fixtures", "pcaps", name + ".json")))
path = os.path.join(dslib.PCAPS, name)
c = dslib.Checker(f"shared pcap {name}")
c.eq("sha256 of the capture", hashlib.sha256(open(path, "rb").read()).hexdigest(), fixture["sha256"])

redis = dslib.Redis()
r = dslib.capture(redis, [path], check=False)
c.eq("exit status", r.returncode, fixture.get("exit_status", 0))
s = dslib.summary(redis)
want = fixture["expect"]
for key in ("packets", "bytes"):
    c.eq(key, s[key], want[key])
for group in ("by_class", "by_proto", "by_tool"):
    for k, v in want[group].items():
        c.eq(f"{group}.{k}", s[group][k], v)
c.eq("ignored.total", s["ignored"]["total"], want["ignored"]["total"])
c.eq("ignored.non_ip", s["ignored"]["non_ip"], want["ignored"]["non_ip"])
c.eq("malformed.total", s["malformed"]["total"], want["malformed"]["total"])
c.eq("frames accounted for", s["packets"] + s["ignored"]["total"] + s["malformed"]["total"],
     want["frames"])
c.done()
