#!/usr/bin/python3
"""REST API of `darkscope serve` against a known replay: summary equals `darkscope query
summary`, the timeline and tops match the generator's ground truth, sensors, healthz, metrics,
page assets with their headers, tokens, masking and refusals."""
import hashlib
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("serve REST")
work = dslib.tmpdir()
redis = dslib.Redis()
# two whole minutes of traffic starting on a minute boundary, 60 s buckets
pcap, truth = dslib.gen(work, extra=["--seed", "7", "--rate", "500", "--duration", "120",
                                     "--start", "2026-01-01T00:00:00Z"])
dslib.capture(redis, [pcap], darknet=sum((["--darknet", d] for d in truth["darknet"]), []),
              sensor="rest-1")
srv = dslib.Serve(redis)
FROM, TO = "2026-01-01T00:00:00Z", "2026-01-01T00:03:00Z"

# summary: the same content as the CLI
status, body = srv.get_json(f"/api/v1/summary?from={FROM}&to={TO}&top=5")
cli = dslib.summary(redis, FROM, TO, top=5)
c.eq("summary status", status, 200)
c.eq("summary equals `darkscope query summary`", body, cli)
c.eq("summary packets equal the generator's", body.get("packets"), truth["packets"])

# timeline: one point per bucket, packets and classes per bucket from the ground truth
status, tl = srv.get_json(f"/api/v1/timeline?from={FROM}&to={TO}")
c.eq("timeline status", status, 200)
pts = tl.get("points", [])
c.eq("timeline step is the bucket length", tl.get("step"), 60)
c.eq("timeline has one point per bucket of the range", len(pts), 3)
want = {b["start"]: b for b in truth["buckets"]}
for p in pts:
    w = want.get(p["t"], {"packets": 0, "by_class": {k: 0 for k in p["by_class"]}})
    c.eq(f"timeline packets at {p['t']}", p["packets"], w["packets"])
    c.eq(f"timeline classes at {p['t']}", p["by_class"], w["by_class"])
c.true("timeline sources are counted", all(p["sources"] > 0 for p in pts[:2]))
status, tl2 = srv.get_json(f"/api/v1/timeline?from={FROM}&to={TO}&step=120")
c.eq("a 2-bucket step sums the buckets", [p["packets"] for p in tl2.get("points", [])],
     [pts[0]["packets"] + pts[1]["packets"], pts[2]["packets"]])

# tops: the busiest ports and countries as in the summary, ports against the ground truth
status, tp = srv.get_json(f"/api/v1/top/ports?from={FROM}&to={TO}&top=3")
c.eq("top ports status", status, 200)
c.eq("top ports = summary's", tp.get("ports"), dslib.summary(redis, FROM, TO, top=3)["top_ports"])
c.eq("busiest port is the generator's", (tp["ports"][0]["proto"], tp["ports"][0]["port"],
                                         tp["ports"][0]["packets"]),
     (truth["ports"][0]["proto"], truth["ports"][0]["port"], truth["ports"][0]["packets"]))
status, tc = srv.get_json(f"/api/v1/top/countries?from={FROM}&to={TO}&top=3")
c.eq("top countries = summary's", tc.get("countries"),
     dslib.summary(redis, FROM, TO, top=3)["top_countries"])
status, ts = srv.get_json(f"/api/v1/top/sources?from={FROM}&to={TO}&top=3")
top_truth = sorted(truth["sources"], key=lambda s: -s["packets"])[:3]
c.eq("top sources are the generator's busiest", [(s["ip"], s["packets"]) for s in ts["sources"]],
     [(s["ip"], s["packets"]) for s in top_truth])

# sensors and health (the replayed buckets are old: degraded, but Redis is up)
status, se = srv.get_json("/api/v1/sensors")
c.eq("sensors status", status, 200)
names = [s["name"] for s in se.get("sensors", [])]
c.eq("the sensor is listed", names, ["rest-1"])
c.eq("its darknet", se["sensors"][0]["darknet"], truth["darknet"])
status, hz = srv.get_json("/healthz")
c.eq("healthz with only old buckets is 503", status, 503)
c.eq("healthz says redis is up", hz.get("redis"), True)
c.true("healthz reports the last bucket age", hz.get("last_bucket_age", 0) > 3600)

# metrics: Prometheus text, every sample line well-formed
status, headers, body = srv.get("/metrics")
text = body.decode()
c.eq("metrics status", status, 200)
c.true("metrics content type", headers.get("content-type", "").startswith("text/plain"))
bad = [l for l in text.splitlines()
       if l and not l.startswith("#") and not re.match(r"^[a-z_]+(\{[a-z_]+=\"[^\"]*\"\})? \d+(\.\d+)?$", l)]
c.eq("metrics lines are name{label} value", bad, [])
c.true("metrics have the websocket gauge", "darkscope_ws_clients 0" in text)
c.true("metrics count HTTP answers", 'darkscope_http_requests_total{status="2xx"}' in text)

# parameters are checked, naming the parameter
for q, name in [("from=yesterday", "from"), ("step=7", "step"), ("top=0", "top"),
                ("sensor=a%20b", "sensor"), (f"from={TO}&to={FROM}", "from")]:
    status, e = srv.get_json("/api/v1/timeline?" + q)
    c.eq(f"bad {q}: 400", status, 400)
    c.true(f"bad {q}: error names '{name}'", f"'{name}'" in e.get("error", ""))
status, e = srv.get_json("/api/v1/nothing")
c.eq("unknown endpoint: 404", status, 404)

# the page's assets: MIME types, caching, strict CSP
status, headers, body = srv.get("/")
c.eq("page status", status, 200)
c.true("page is HTML", headers.get("content-type", "").startswith("text/html"))
c.true("strict CSP", "script-src 'self'" in headers.get("content-security-policy", "") and
       "default-src 'self'" in headers.get("content-security-policy", ""))
c.eq("nosniff", headers.get("x-content-type-options"), "nosniff")
c.true("cache headers on assets", "max-age" in headers.get("cache-control", ""))
status, headers, _ = srv.get("/api/v1/sensors")
c.eq("API answers are not cached", headers.get("cache-control"), "no-store")
# several requests on one kept-alive connection (browsers reuse connections)
import http.client  # noqa: E402
conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
answers = []
for path in ["/", "/js/map.js", "/favicon.svg", "/api/v1/sensors", "/js/util.js", "/healthz"]:
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    answers.append((path, r.status, len(body) == int(r.getheader("content-length", -1))))
conn.close()
c.eq("one connection carries every request", answers,
     [(p, 503 if p == "/healthz" else 200, True) for p, _, _ in answers])
for path in ["/server.c", "/web.h", "/meson.build", "/package.json", "/page/index.html"]:
    status, _, _ = srv.get(path)
    c.eq(f"{path} is not served", status, 404)
status, _, body = srv.get("/../../etc/passwd")
c.true(f"no path traversal ({status})", status in (0, 400, 403, 404) and b"root:" not in body)
srv.stop()

# tokens: required, wrong, right; masking of sources
token = "s3cret-viewer-token"
digest = hashlib.sha256(token.encode()).hexdigest()
srv = dslib.Serve(redis, extra=["--set", "web.require_token=true",
                                "--set", f"web.tokens=wall:viewer:{digest}",
                                "--set", "web.mask_sources=true"])
status, headers, _ = srv.get("/api/v1/sensors")
c.eq("no token: 401", status, 401)
c.true("401 asks for a bearer token", headers.get("www-authenticate", "").startswith("Bearer"))
status, _, _ = srv.get("/api/v1/sensors", token="wrong")
c.eq("wrong token: 401", status, 401)
status, _, _ = srv.get("/api/v1/sensors", token=token)
c.eq("right token: 200", status, 200)
status, _, _ = srv.get(f"/api/v1/sensors?token={token}")
c.eq("token in the URL: 200", status, 200)
status, ts = srv.get_json(f"/api/v1/top/sources?from={FROM}&to={TO}&top=3&token={token}")
c.true("masked sources end in .0", all(s["ip"].endswith(".0") for s in ts.get("sources", [])) and
       len(ts.get("sources", [])) == 3)
c.eq("masked sources are the /24s of the busiest",
     [s["ip"] for s in ts["sources"]],
     [".".join(s["ip"].split(".")[:3] + ["0"]) for s in top_truth])
srv.stop()

# a listener that is not loopback needs tokens: refused at start with a clear error
r = dslib.run(["serve", "--redis", redis.url, "--listen", "0.0.0.0:" + str(dslib.free_port())],
              check=False, timeout=20)
c.eq("non-loopback listener without tokens exits 2", r.returncode, 2)
c.true("and says why", "web.require_token" in r.stderr and "web.tokens" in r.stderr)
r = dslib.run(["serve", "--redis", redis.url, "--set", "web.tokens=bad"], check=False, timeout=20)
c.eq("a bad token entry exits 2", r.returncode, 2)
c.true("naming the key", "web.tokens" in r.stderr)
c.done()
