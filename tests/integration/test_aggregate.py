#!/usr/bin/python3
"""darkscope aggregate against a real Redis, with ground truth from the packets the test writes
itself (pcapw) on top of generated background traffic: infected hosts (told to both
organisations when ranges overlap), internal-darknet spread, DDoS victims over Corsaro's
thresholds (and one under them), a research scanner and a bogon source that never alert, an
early warning on a threefold surge of sources on one port — exactly these incidents, none missed,
none extra, none duplicated across a kill -9 and restart."""
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402
import pcapw  # noqa: E402

c = dslib.Checker("aggregate")
work = dslib.tmpdir()
os.chmod(work, 0o755)
T0 = 1767225600  # 2026-01-01T00:00:00Z
BUCKETS = 10
background, truth = dslib.gen(work, "bg", ["--seed", "21", "--rate", "2000", "--duration",
                                           str(60 * BUCKETS), "--start", "2026-01-01T00:00:00Z",
                                           "--darknet", "198.18.0.0/16"])
ours = ipaddress.ip_network("45.67.88.0/22")
c.eq("no background source inside the subscribers' ranges",
     [s["ip"] for s in truth["sources"]
      if ipaddress.ip_address(s["ip"]).version == 4 and ipaddress.ip_address(s["ip"]) in ours], [])
DARKNET = ["--darknet", "198.18.0.0/16", "--darknet", "198.19.7.0/24"]

# the per-bucket distinct sources of tcp/445 in the background, measured by capture itself
scratch = dslib.Redis()
dslib.capture(scratch, [background], darknet=DARKNET, sensor="bg")
base445 = [int(scratch.cli("HGET", f"ds:v1:{{bg:{T0 + 60 * b}}}:port", "tcp/445:s").strip() or 0)
           for b in range(BUCKETS)]
scratch.stop()
SURGE_BUCKET = 8
surge_extra = 2 * max(base445[:SURGE_BUCKET]) + 30  # well over three times the baseline

inj = os.path.join(work, "inj.pcap")
w = pcapw.Writer(inj)
expect = {}
# 1. an infected host (Mirai) in the customer's range, which its ISP's range contains: 60 SYNs
#    to 12 darknet addresses over the first three buckets
for i in range(60):
    dst = f"198.18.{(i % 12) + 1}.9"
    w.tcp(T0 + 5 + i * 2.5, "45.67.89.10", dst, 40000 + i, 23, "S", seq=pcapw.mirai_seq(dst))
expect[("cust", "infected", "45.67.89.10")] = {"packets": 60, "dsts": 12, "tool": "mirai"}
expect[("isp", "infected", "45.67.89.10")] = {"packets": 60, "dsts": 12, "tool": "mirai"}
# 2. internal spread: 30 SYNs to 14 addresses of the customer's own darknet (monitored as
#    198.19.7.0/24; distinct addresses are exact up to 16)
for i in range(30):
    w.tcp(T0 + 130 + i, "45.67.89.20", f"198.19.7.{i % 14 + 1}", 50000 + i, 445, "S")
expect[("cust", "internal", "45.67.89.20")] = {"packets": 30, "dsts": 14}
expect[("isp", "infected", "45.67.89.20")] = {"packets": 30, "dsts": 14}  # external to the ISP
# 3. a DDoS victim: SYN-ACK backscatter for 180 s, 100 packets (over Corsaro's 25 / 60 s / 30)
for i in range(100):
    w.tcp(T0 + 200 + i * 1.8, "45.67.90.5", f"198.18.200.{i % 200 + 1}", 80, 30000 + i, "SA")
expect[("isp", "ddos_victim", "45.67.90.5")] = {"packets": 100}
# 4. a short one under the thresholds: 10 packets in 5 s — no alert
for i in range(10):
    w.tcp(T0 + 250 + i * 0.5, "45.67.90.6", f"198.18.201.{i + 1}", 80, 31000 + i, "SA")
# 5. a research scanner inside the ISP's range, and a bogon (private) source in the lab's
for i in range(40):
    w.tcp(T0 + 300 + i, "45.67.91.1", f"198.18.210.{i + 1}", 41000, 22, "S")
    w.tcp(T0 + 300 + i, "10.1.2.3", f"198.18.211.{i + 1}", 41000, 22, "S")
# 6. early warning: in bucket 8, tcp/445 from surge_extra new sources (one SYN each)
for i in range(surge_extra):
    src = str(ipaddress.IPv4Address(int(ipaddress.IPv4Address("61.0.0.1")) + i * 7))
    w.tcp(T0 + 60 * SURGE_BUCKET + 1 + (i % 50), src, f"198.18.99.{i % 250 + 1}", 60000, 445, "S")
w.close()

subs = os.path.join(work, "subs.json")
with open(subs, "w") as f:
    json.dump({"organisations": [
        {"id": "isp", "name": "ISP", "livenet": ["45.67.88.0/22"],
         "contacts": [{"email": "noc@isp.example"}]},
        {"id": "cust", "name": "Customer", "livenet": ["45.67.89.0/24"],
         "internal_darknet": ["198.19.7.0/24"], "contacts": [{"email": "soc@cust.example"}]},
        {"id": "lab", "name": "Lab", "livenet": ["10.0.0.0/8"],
         "contacts": [{"email": "lab@lab.example"}]}],
        "research_scanners": ["45.67.91.0/24"]}, f)

redis = dslib.Redis()
dslib.capture(redis, [background, inj], darknet=DARKNET, sensor="s1")
AGG = ["aggregate", "--redis", redis.url, "--subscribers", subs,
       "--set", "aggregate.early_warning.warmup=4", "--set", "aggregate.infected_min_packets=5",
       "--set", "state_dir=" + work]

# a first aggregator killed with SIGKILL part-way, then one that finishes (--once)
p = subprocess.Popen([dslib.DARKSCOPE, *AGG], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                     text=True)
deadline = time.time() + 30
while time.time() < deadline and redis.cli("GET", "ds:v1:agg:checkpoint").strip() == "":
    time.sleep(0.005)
p.send_signal(signal.SIGKILL)
p.wait()
killed_at = redis.cli("GET", "ds:v1:agg:checkpoint").strip()
c.true(f"the first aggregator was killed part-way (checkpoint {killed_at})",
       killed_at != "" and int(killed_at) < T0 + 60 * (BUCKETS - 1))
r = dslib.run(AGG + ["--once"], timeout=120)
c.eq("the checkpoint reached the last bucket",
     redis.cli("GET", "ds:v1:agg:checkpoint").strip(), str(T0 + 60 * (BUCKETS - 1)))

alerts = json.loads(dslib.run(["query", "alerts", "--redis", redis.url]).stdout)
ids = [a["id"] for a in alerts]
c.eq("no alert twice", len(ids), len(set(ids)))
got = {}
for a in alerts:
    if a["kind"] == "early_warning":
        continue
    got.setdefault((a["org"], a["kind"], a["host"]), []).append(a)
c.eq("exactly the expected incidents were alerted", sorted(got), sorted(expect))
for key, want in expect.items():
    a = got.get(key, [{}])[-1]
    c.true(f"{key}: alerted once ({len(got.get(key, []))})", len(got.get(key, [])) == 1)
    # evidence up to the bucket of the alert; the incident holds the full count
    inc = json.loads(redis.cli("HGET", "ds:v1:incidents", "|".join(key)) or "{}")
    c.eq(f"{key}: packets", inc.get("packets"), want["packets"])
    if "dsts" in want:
        c.eq(f"{key}: distinct darknet addresses", inc.get("darknet_addresses"), want["dsts"])
    if "tool" in want:
        c.eq(f"{key}: tool", a.get("tool"), want["tool"])
    c.true(f"{key}: first/last seen and sensors", a.get("first_seen") and a.get("last_seen") and
           a.get("sensors") == ["s1"])
ddos = got.get(("isp", "ddos_victim", "45.67.90.5"), [{}])[-1]
c.true("the DDoS alert scales the rate by the telescope's share",
       ddos.get("attack", {}).get("estimated_response_pps", 0) >
       100 * ddos.get("attack", {}).get("backscatter_pps", 1))
c.true("the infected alert lists port tcp/23", "tcp/23" in got.get(("cust", "infected",
                                                                  "45.67.89.10"), [{}])[-1].get(
    "ports", {}))
c.eq("internal spread is high severity",
     got.get(("cust", "internal", "45.67.89.20"), [{}])[-1].get("severity"), "high")

ew = [a for a in alerts if a["kind"] == "early_warning"]
c.eq("one early warning: tcp/445 in the surge bucket",
     [(a["port"], a["bucket"]) for a in ew],
     [("tcp/445", "2026-01-01T00:08:00Z")])
org_alerts = json.loads(dslib.run(["query", "alerts", "--redis", redis.url, "--org", "cust"]).stdout)
c.eq("the customer's own stream holds only its alerts",
     sorted((a["kind"], a["host"]) for a in org_alerts),
     sorted((k[1], k[2]) for k in expect if k[0] == "cust"))
kind = json.loads(dslib.run(["query", "alerts", "--redis", redis.url, "--kind", "ddos_victim"]).stdout)
c.eq("--kind filters", [a["host"] for a in kind], ["45.67.90.5"])

# running again changes nothing
before = redis.cli("XLEN", "ds:v1:alerts").strip()
dslib.run(AGG + ["--once"], timeout=60)
c.eq("a second run adds no alert", redis.cli("XLEN", "ds:v1:alerts").strip(), before)

# lookups and checks
lk = json.loads(dslib.run(["subscribers", "lookup", "45.67.89.10", "--subscribers", subs]).stdout)
c.eq("lookup names both organisations, longest prefix first",
     [(m["org"], m["prefix_len"]) for m in lk["matches"]], [("cust", 24), ("isp", 22)])
bad = os.path.join(work, "bad.json")
with open(bad, "w") as f:
    f.write('{"organisations": [{"id": "x", "name": "X", "livenet": ["45.67.0.1/16"], '
            '"contacts": [{"email": "a@b.example"}]}]}')
r = dslib.run(["subscribers", "check", bad], check=False)
c.eq("a bad subscriber file exits 2", r.returncode, 2)
c.true("naming file and key", bad in r.stderr and "organisations[0].livenet[0]" in r.stderr)
r = dslib.run(AGG[:3] + ["--subscribers", bad, "--once"], check=False)
c.eq("aggregate refuses it too", r.returncode, 2)
c.done()
