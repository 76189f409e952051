#!/usr/bin/python3
"""The real SYN-ACK reflection capture (../shared/pcaps/amp.TCP.reflection.SYNACK.pcap, 0.15 s):
its reflectors — the hosts answering the spoofed SYNs — are backscatter sources and recorded as
the victims, exactly the SYN-ACK/RST senders tshark lists; and, lasting 0.15 s, it raises no
DDoS alert under Corsaro's thresholds even with every address subscribed."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("reflection")
pcap = os.path.join(dslib.PCAPS, "amp.TCP.reflection.SYNACK.pcap")
work = dslib.tmpdir()
os.chmod(work, 0o755)
# the victims by docs/classification.md's backscatter rules, read from tshark's fields: the
# source of a TCP SYN+ACK or RST, of an ICMP echo/timestamp/info/mask reply or of a UDP packet
# from port 53, and the quoted packet's destination for an ICMP error (3, 4, 5, 11, 12)
rows = subprocess.run(["tshark", "-r", pcap, "-o", "ip.defragment:FALSE", "-Y", "ip.dst==10.10.10.10",
                       "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,", "-e", "ip.src",
                       "-e", "ip.dst", "-e", "ip.proto", "-e", "ip.frag_offset", "-e", "tcp.flags",
                       "-e", "icmp.type", "-e", "udp.srcport"],
                      capture_output=True, text=True, check=True).stdout.splitlines()
want = {}
for row in rows:
    src, dst, proto, frag, flags, icmp, sport = (row.split("\t") + [""] * 7)[:7]
    src, dsts, proto, frag = src.split(",")[0], dst.split(","), proto.split(",")[0], frag.split(",")[0]
    if frag not in ("", "0"):
        continue
    victim = None
    if proto == "6" and flags:
        f = int(flags.split(",")[0], 16)
        if (f & 0x12) == 0x12 or f & 0x04:
            victim = src
    elif proto == "1" and icmp:
        t = int(icmp.split(",")[0])
        if t in (0, 14, 16, 18):
            victim = src
        elif t in (3, 4, 5, 11, 12) and len(dsts) > 1:
            victim = dsts[1]
    elif proto == "17" and sport and sport.split(",")[0] == "53":
        victim = src
    if victim:
        want[victim] = want.get(victim, 0) + 1
c.true(f"tshark lists reflectors ({len(want)})", len(want) > 100)

redis = dslib.Redis()
dslib.capture(redis, [pcap], darknet=["--darknet", "10.10.10.10/32"], sensor="refl")
victims = {}
for start in redis.cli("ZRANGE", "ds:v1:idx:refl", "0", "-1").split():
    # every shard is a string of lines "address TAB record" (docs/redis-schema.md)
    keys = [f"ds:v1:{{refl:{start}}}:vicrec:{shard}" for shard in range(1024)]
    for line in redis.cli("--raw", "MGET", *keys).splitlines():
        if "\t" in line:
            ip, rec = line.split("\t", 1)
            victims[ip] = victims.get(ip, 0) + json.loads(rec)["packets"]
diff = {ip: (victims.get(ip), want.get(ip)) for ip in set(victims) | set(want) if victims.get(ip) != want.get(ip)}
c.eq("the victims are exactly the reflectors, with their packet counts", dict(list(diff.items())[:10]), {})
some = sorted(want, key=lambda ip: -want[ip])[:3]
for ip in some:
    recs = dslib.source(redis, ip)["records"]
    c.true(f"{ip} is a backscatter source",
           recs and all(r["by_class"].get("backscatter", 0) > 0 for r in recs))

subs = os.path.join(work, "subs.json")
with open(subs, "w") as f:
    json.dump({"organisations": [{"id": "all", "name": "Everyone", "livenet": ["0.0.0.0/0"],
                                  "contacts": [{"email": "a@b.example"}]}]}, f)
dslib.run(["aggregate", "--once", "--redis", redis.url, "--subscribers", subs,
           "--set", "state_dir=" + work])
alerts = json.loads(dslib.run(["query", "alerts", "--redis", redis.url]).stdout)
c.eq("0.15 s of reflection raises no DDoS alert", [a for a in alerts if a["kind"] == "ddos_victim"],
     [])
incidents = redis.cli("HLEN", "ds:v1:incidents").strip()
c.true(f"but the victims' incidents are open, waiting for more ({incidents})",
       int(incidents or 0) >= len(want))
c.done()
