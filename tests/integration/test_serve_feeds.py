#!/usr/bin/python3
"""The scanner feed (/api/v1/feeds/scanners) against ground truth: a partner CERT's token sees
exactly the generator's scanning sources located in its countries (GeoIP from the world
fixture), soc sees them all; JSON, CSV and STIX 2.1 — the bundle validated against the official
OASIS schemas in ../shared/stix2.1-schemas, its patterns parsed and every *_ref resolved."""
import csv
import hashlib
import io
import ipaddress
import json
import os
import re
import sys
import time

import jsonschema

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("serve feeds")
work = dslib.tmpdir()
os.chmod(work, 0o755)
world = os.environ.get("DS_GEOIP_WORLD", "build/tests/geoip-world.mmdb")
pcap, truth = dslib.gen(work, extra=["--seed", "17", "--rate", "300", "--duration", "120",
                                     "--start", "2026-01-01T00:00:00Z"])
with open(os.path.join(dslib.ROOT, "tests", "fixtures", "geoip", "world.json")) as f:
    blocks = [(ipaddress.ip_network(b["network"]), b["cc"]) for b in json.load(f)]


def cc_of(ip):
    a = ipaddress.ip_address(ip)
    best = None
    for net, cc in blocks:
        if a.version == net.version and a in net and (best is None or net.prefixlen > best[0]):
            best = (net.prefixlen, cc)
    return best[1] if best else None


scanners = {s["ip"]: s for s in truth["sources"] if s["by_class"]["scan"] > 0}
redis = dslib.Redis()
dslib.capture(redis, [pcap], darknet=sum((["--darknet", d] for d in truth["darknet"]), []),
              extra=["--set", f"geoip.city={world}"], sensor="tokyo-1")
some = sorted(scanners)[0]
own_net = str(ipaddress.ip_network(some + "/8", strict=False)) if ":" not in some else "45.0.0.0/8"
tok = {"p": "partner-token", "soc": "soc-token", "org": "org-token", "view": "viewer-token"}
h = {k: hashlib.sha256(v.encode()).hexdigest() for k, v in tok.items()}
subs = os.path.join(work, "subs.json")
with open(subs, "w") as f:
    json.dump({"organisations": [{"id": "o", "name": "O", "livenet": [own_net],
                                  "contacts": [{"email": "o@o.example"}], "token_sha256": h["org"]}],
               "partners": [{"name": "cn-cert", "countries": ["CN", "VN"],
                             "token_sha256": h["p"]}]}, f)
srv = dslib.Serve(redis, extra=["--subscribers", subs, "--set", f"web.tokens=soc:soc:{h['soc']}",
                                "--set", f"web.tokens=wall:viewer:{h['view']}",
                                "--set", f"web.audit_log={work}/audit.log"])
RANGE = "from=2026-01-01T00:00:00Z&to=2026-01-01T00:03:00Z"

status, body = srv.get_json(f"/api/v1/feeds/scanners?{RANGE}", token=tok["p"])
c.eq("partner: 200", status, 200)
got = {s["ip"]: s for s in body.get("scanners", [])}
want = {ip for ip in scanners if cc_of(ip) in ("CN", "VN")}
c.true(f"the generator made scanners in the partner's countries ({len(want)})", len(want) > 20)
c.eq("partner sees exactly the scanners in its countries", sorted(got), sorted(want))
c.eq("with their scan packets", {ip: s["packets"] for ip, s in got.items()},
     {ip: scanners[ip]["by_class"]["scan"] for ip in want})
status, body = srv.get_json(f"/api/v1/feeds/scanners?{RANGE}&cc=VN", token=tok["p"])
c.eq("partner narrowing to VN", sorted(s["ip"] for s in body["scanners"]),
     sorted(ip for ip in want if cc_of(ip) == "VN"))
status, body = srv.get_json(f"/api/v1/feeds/scanners?{RANGE}&cc=US", token=tok["p"])
c.eq("partner asking outside its grant gets nothing", body.get("scanners"), [])
status, body = srv.get_json(f"/api/v1/feeds/scanners?{RANGE}", token=tok["soc"])
c.eq("soc sees every scanner", sorted(s["ip"] for s in body["scanners"]), sorted(scanners))
for who, code in [("org", 403), ("view", 403)]:
    c.eq(f"{who} token: {code}", srv.get(f"/api/v1/feeds/scanners?{RANGE}", token=tok[who])[0],
         code)
c.eq("no token: 401", srv.get(f"/api/v1/feeds/scanners?{RANGE}")[0], 401)
# since: from then until now (a partner's incremental pull), not the default last hour
since = time.time() - 7200
status, body = srv.get_json(f"/api/v1/feeds/scanners?since={int(since)}", token=tok["soc"])
c.eq("since: 200", status, 200)
c.eq("since: the range starts then", body.get("from"),
     time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(since))))
c.eq("since: nothing was seen in the last two hours", body.get("scanners"), [])
c.eq("bad format: 400", srv.get(f"/api/v1/feeds/scanners?{RANGE}&format=xml",
                                token=tok["soc"])[0], 400)

# a partner's aggregates: its countries' packets and sources, from every country seen
status, body = srv.get_json(f"/api/v1/top/countries?{RANGE}", token=tok["p"])
c.eq("partner top countries: only its own", sorted(x["cc"] for x in body.get("countries", [])),
     ["CN", "VN"])
want_pk = {cc: sum(x["packets"] for x in truth["sources"] if cc_of(x["ip"]) == cc)
           for cc in ("CN", "VN")}
c.eq("with the packets the generator sent from them",
     {x["cc"]: x["packets"] for x in body.get("countries", [])}, want_pk)
c.eq("a partner may not read the global summary",
     srv.get(f"/api/v1/summary?{RANGE}", token=tok["p"])[0], 403)

# an organisation's hosts' history: its own hosts only, the same 403 for any other address
truth_ips = sorted(x["ip"] for x in truth["sources"])
mine = next(ip for ip in truth_ips
            if ":" not in ip and ipaddress.ip_address(ip) in ipaddress.ip_network(own_net))
other = next(ip for ip in truth_ips if ":" not in ip and
             ipaddress.ip_address(ip) not in ipaddress.ip_network(own_net))
status, body = srv.get_json(f"/api/v1/hosts/{mine}?{RANGE}", token=tok["org"])
c.eq("org reads its own host's history", status, 200)
c.eq("with the packets the generator sent",
     sum(r["packets"] for r in body.get("records", [])),
     next(x["packets"] for x in truth["sources"] if x["ip"] == mine))
s1, _, b1 = srv.get(f"/api/v1/hosts/{other}?{RANGE}", token=tok["org"])
s2, _, b2 = srv.get(f"/api/v1/hosts/192.0.2.200?{RANGE}", token=tok["org"])
c.eq("another organisation's (or nobody's) host: 403, the same answer", (s1, b1), (s2, b2))
c.eq("a partner may not read hosts", srv.get(f"/api/v1/hosts/{mine}", token=tok["p"])[0], 403)
c.eq("soc reads any host", srv.get(f"/api/v1/hosts/{other}?{RANGE}", token=tok["soc"])[0], 200)

# CSV
status, headers, raw = srv.get(f"/api/v1/feeds/scanners?{RANGE}&format=csv", token=tok["p"])
rows = list(csv.DictReader(io.StringIO(raw.decode())))
c.true("CSV content type", headers.get("content-type", "").startswith("text/csv"))
c.eq("CSV rows = the JSON feed", sorted(r["ip"] for r in rows), sorted(want))
c.true("CSV columns", rows and {"ip", "cc", "packets", "first_seen", "last_seen", "tool",
                               "ports"} <= set(rows[0]))

# STIX 2.1, validated against the OASIS schemas
status, bundle = srv.get_json(f"/api/v1/feeds/scanners?{RANGE}&format=stix", token=tok["p"])
c.eq("STIX: 200", status, 200)
root = os.path.join(dslib.SHARED, "stix2.1-schemas", "schemas")
store = {}
for d, _, files in os.walk(root):
    for fn in files:
        if fn.endswith(".json"):
            with open(os.path.join(d, fn)) as f:
                sch = json.load(f)
            store[sch["$id"]] = sch


def validate(obj, path):
    sch = store[f"http://raw.githubusercontent.com/oasis-open/cti-stix2-json-schemas/stix2.1/schemas/{path}"]
    resolver = jsonschema.RefResolver.from_schema(sch, store=store)
    jsonschema.Draft202012Validator(sch, resolver=resolver).validate(obj)


where = {"identity": "sdos/identity.json", "indicator": "sdos/indicator.json",
         "observed-data": "sdos/observed-data.json", "sighting": "sros/sighting.json",
         "ipv4-addr": "observables/ipv4-addr.json", "ipv6-addr": "observables/ipv6-addr.json"}
errors = []
try:
    validate(bundle, "common/bundle.json")
except jsonschema.ValidationError as e:
    errors.append(f"bundle: {e.message}")
objs = bundle.get("objects", [])
for o in objs:
    try:
        validate(o, where[o["type"]])
    except (jsonschema.ValidationError, KeyError) as e:
        errors.append(f"{o.get('type')} {o.get('id')}: {getattr(e, 'message', e)}")
c.eq("every object valid against the official schemas", errors[:5], [])
ids = {o["id"] for o in objs}
refs = []
for o in objs:
    for k, v in o.items():
        if k.endswith("_ref"):
            refs.append(v)
        elif k.endswith("_refs"):
            refs.extend(v)
c.eq("every *_ref resolves inside the bundle", [r for r in refs if r not in ids], [])
pat = re.compile(r"^\[(ipv4-addr|ipv6-addr):value = '([0-9a-fA-F:.]+)'\]$")
inds = [o for o in objs if o["type"] == "indicator"]
parsed = [pat.match(o["pattern"]) for o in inds]
c.true("every pattern parses as an address comparison", parsed and all(parsed))
c.eq("the indicators are the partner's scanners",
     sorted(m.group(2) for m in parsed if m), sorted(want))
c.eq("an identity, and per scanner an address, indicator, observed-data and sighting",
     sorted({o["type"] for o in objs}),
     ["identity", "indicator", "ipv4-addr", "observed-data", "sighting"] if
     all(":" not in ip for ip in want) else sorted({o["type"] for o in objs}))
# the partner's push channel: live events from its countries only, and no global statistics
import asyncio  # noqa: E402
import datetime  # noqa: E402
import subprocess  # noqa: E402

import websockets  # noqa: E402
live_pcap, _ = dslib.gen(work, "live", ["--seed", "18", "--rate", "1500", "--duration", "12",
                                        "--start", datetime.datetime.now(datetime.timezone.utc)
                                        .strftime("%Y-%m-%dT%H:%M:%SZ")])


async def partner_push():
    async with websockets.connect(srv.ws_base + "/live?token=" + tok["p"]) as ws:
        msgs = [json.loads(await ws.recv())]
        cap = subprocess.Popen([dslib.DARKSCOPE, "capture", "--redis", redis.url, "--sensor", "live",
                                *sum((["--darknet", d] for d in truth["darknet"]), []), "--read",
                                live_pcap, "--speed", "realtime", "--set", f"geoip.city={world}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = asyncio.get_event_loop().time() + 10
        while asyncio.get_event_loop().time() < end:
            try:
                msgs.append(json.loads(await asyncio.wait_for(ws.recv(), 0.5)))
            except asyncio.TimeoutError:
                pass
        cap.wait(60)
        return msgs
msgs = asyncio.run(partner_push())
evs = [e for m in msgs if m["type"] == "events" for e in m["events"]]
c.true(f"the partner's push channel carries events ({len(evs)})", len(evs) > 5)
c.eq("only from its countries", sorted({e["cc"] for e in evs} - {"CN", "VN"}), [])
c.eq("and no global statistics", [m["type"] for m in msgs if m["type"] == "stats"], [])
audit = [json.loads(l) for l in open(os.path.join(work, "audit.log"))]
c.true("feed accesses audited", sum(1 for l in audit if l["endpoint"] ==
                                    "/api/v1/feeds/scanners") >= 10)
c.done()
