#!/usr/bin/python3
"""Generated darknet traffic against the generator's own ground truth (darkscope-gen --truth):
totals, every class/protocol/tool, ignored and malformed, per bucket, per port, per source, tool
attribution; then two files read at once (two workers merging the same buckets) add up."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("generated traffic")
d = dslib.tmpdir()
DARKNET = ["--darknet", "198.18.0.0/16", "--darknet", "2001:db8:d000::/48"]


def generate(seed, packets, rate):
    pcap, truth = os.path.join(d, f"g{seed}.pcap"), os.path.join(d, f"g{seed}.json")
    subprocess.run([dslib.GEN, "--out", pcap, "--truth", truth, "--seed", str(seed), "--packets",
                    str(packets), "--rate", str(rate), *DARKNET], check=True)
    return pcap, json.load(open(truth))


pcap, t = generate(11, 60000, 400)  # 150 s: three 60-second buckets
redis = dslib.Redis()
dslib.capture(redis, [pcap], darknet=DARKNET)
# a whole bucket's records are staged under keys of their own and renamed in its transaction
staged = redis.cli("--scan", "--pattern", "ds:v1:*:stage:*").split()
c.eq("no staged record keys left behind", staged, [])
c.true("the records are in place",
       len(redis.cli("--scan", "--pattern", "ds:v1:*:srcrec:*").split()) > 100)
s = dslib.summary(redis, top=25)
c.eq("frames accounted for", s["packets"] + s["ignored"]["total"] + s["malformed"]["total"],
     t["frames"])
for key in ("packets", "bytes"):
    c.eq(key, s[key], t[key])
for group in ("by_class", "by_proto", "by_tool", "truncated"):
    for k, v in t[group].items():
        c.eq(f"{group}.{k}", s[group][k], v)
for group in ("ignored", "malformed"):
    for k, v in t[group].items():
        c.eq(f"{group}.{k}", s[group][k], v)
c.near("distinct sources (HyperLogLog)", s["sources"], t["sources_distinct"], 0.02)
c.eq("buckets", s["buckets"], len(t["buckets"]))
for b in t["buckets"]:
    one = dslib.summary(redis, frm=b["start"], to=b["start"].replace(":00Z", ":59Z"))
    c.eq(f"bucket {b['start']} packets", one["packets"], b["packets"])
    c.eq(f"bucket {b['start']} by_class", one["by_class"], b["by_class"])
want_ports = [(p["proto"], p["port"], p["packets"]) for p in t["ports"][:25]]
c.eq("top ports by packets", [(p["proto"], p["port"], p["packets"]) for p in s["top_ports"]],
     want_ports)
for p, w in zip(s["top_ports"][:10], t["ports"][:10]):
    c.near(f"sources of {p['proto']}/{p['port']}", p["sources"], w["sources"], 0.03)
by_ip = {x["ip"]: x for x in t["sources"]}
for x in s["top_sources"]:
    w = by_ip[x["ip"]]
    c.eq(f"top source {x['ip']} packets", x["packets"], w["packets"])
    c.eq(f"top source {x['ip']} tool", x["tool"], w["tool"])
c.eq("top sources are the truth's busiest", [x["ip"] for x in s["top_sources"]],
     [x["ip"] for x in t["sources"][:25]])
tools = {}
for x in t["sources"]:
    tools.setdefault(x["tool"], x)
for tool, w in sorted(tools.items(), key=lambda kv: str(kv[0])):
    r = dslib.source(redis, w["ip"])
    c.eq(f"source {w['ip']} ({tool}) packets", r["packets"], w["packets"])
    c.eq(f"source {w['ip']} ({tool}) attribution", r["tool"], w["tool"])
    c.eq(f"source {w['ip']} first", r["first"], w["first"])
    c.eq(f"source {w['ip']} last", r["last"], w["last"])
    c.eq(f"source {w['ip']} by_class", r["by_class"], w["by_class"])
c.true("every tool and no-tool present among sources", set(tools) >= {None, "mirai", "zmap",
                                                                       "masscan", "nmap"})

# two files at once: two workers, the same buckets merged
pcap2, t2 = generate(12, 30000, 400)
redis2 = dslib.Redis()
dslib.capture(redis2, [pcap, pcap2], darknet=DARKNET)
s2 = dslib.summary(redis2)
for key in ("packets", "bytes"):
    c.eq(f"two files: {key}", s2[key], t[key] + t2[key])
for k in t["by_tool"]:
    c.eq(f"two files: by_tool.{k}", s2["by_tool"][k], t["by_tool"][k] + t2["by_tool"][k])
union = len({x["ip"] for x in t["sources"]} | {x["ip"] for x in t2["sources"]})
c.near("two files: distinct sources", s2["sources"], union, 0.02)
c.eq("two files: late packets", s2["late"], 0)
c.done()
