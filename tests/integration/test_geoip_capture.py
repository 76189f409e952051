#!/usr/bin/python3
"""GeoIP in capture: sources of a real spoofed flood (pkt.TCP.synflood.spoofed.pcap, ~37.6k
random sources) looked up in fixture databases written by tests/fixtures/mkmmdb, in both the
flat DB-IP shape and MaxMind's nested shape. Expected countries come from tshark's list of
source addresses mapped through the same spec; darkscope must agree exactly (top_countries) and
per source (query source), with ASNs from an ASN database."""
import collections
import ipaddress
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("geoip capture")
d = dslib.tmpdir()
os.chmod(d, 0o755)
name = "pkt.TCP.synflood.spoofed.pcap"
pcap = os.path.join(dslib.PCAPS, name)

# every /8 from 1 to 223 gets one of a few countries, in a fixed pattern; a few /8s are left out
COUNTRIES = [("JP", 35.68, 139.76), ("US", 38.9, -77.04), ("BR", -23.55, -46.63),
             ("DE", 52.52, 13.40), ("IN", 28.61, 77.21), ("CN", 39.90, 116.40), ("RU", 55.75, 37.62)]
spec, asn_spec, table = [], [], {}
for first in range(1, 224):
    if first % 11 == 0:
        continue  # no answer: these sources count under "??"
    cc, lat, lon = COUNTRIES[first % len(COUNTRIES)]
    spec.append({"network": f"{first}.0.0.0/8", "cc": cc, "city": f"City{first}", "lat": lat,
                 "lon": lon})
    asn_spec.append({"network": f"{first}.0.0.0/8", "asn": 64500 + first, "as_org": f"AS {first}"})
    table[first] = cc
json.dump(spec, open(os.path.join(d, "city.json"), "w"))
json.dump(asn_spec, open(os.path.join(d, "asn.json"), "w"))
mkmmdb = os.path.join(dslib.ROOT, "tests", "fixtures", "mkmmdb")
for schema, spec_file in (("flat", "city.json"), ("maxmind", "city.json"), ("asn", "asn.json")):
    subprocess.run([mkmmdb, "--schema", schema, "--out", os.path.join(d, schema + ".mmdb"),
                    os.path.join(d, spec_file)], check=True)

# ground truth: tshark's outer source address of every IPv4 frame
tshark = subprocess.run(["tshark", "-n", "-r", pcap, "-T", "fields", "-E", "occurrence=f",
                         "-e", "ip.src"], capture_output=True, text=True, check=True).stdout.split()
packets = collections.Counter()
sources = collections.defaultdict(set)
for ip in tshark:
    cc = table.get(int(ip.split(".")[0]), "??")
    packets[cc] += 1
    sources[cc].add(ip)
want = sorted(((n, cc) for cc, n in packets.items()), key=lambda x: (-x[0], x[1]))

for schema in ("flat", "maxmind"):
    redis = dslib.Redis()
    dslib.capture(redis, [pcap], extra=["--set", f"geoip.city={os.path.join(d, schema + '.mmdb')}",
                                        "--set", f"geoip.asn={os.path.join(d, 'asn.mmdb')}"])
    s = dslib.summary(redis, top=20)
    got = [(x["packets"], x["cc"]) for x in s["top_countries"]]
    c.eq(f"{schema}: countries by packets", got, want[:20])
    c.true(f"{schema}: distinct sources per country within 2 % (HyperLogLog)",
           all(abs(x["sources"] - len(sources[x["cc"]])) <= 0.02 * len(sources[x["cc"]]) + 1
               for x in s["top_countries"]))
    first_src = tshark[0]
    rec = dslib.source(redis, first_src)
    first_octet = int(first_src.split(".")[0])
    c.eq(f"{schema}: country of {first_src}", rec["cc"], table.get(first_octet))
    c.eq(f"{schema}: ASN of {first_src}", rec["asn"],
         64500 + first_octet if first_octet in table else None)
    c.true(f"{schema}: location of {first_src}", "lat" in rec["records"][0] or first_octet not in table)
    redis.stop()
c.done()
