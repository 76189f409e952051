#!/usr/bin/python3
"""Scoped access to alerts on `darkscope serve`: organisation tokens (from the subscriber file)
read only their own organisation's alerts and nothing of the map; partner and viewer tokens
may not read alerts; soc reads all; wrong or missing tokens get 401. Every alert API access is
in the audit log, without the token."""
import asyncio
import hashlib
import json
import os
import sys

import websockets

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("serve scopes")
work = dslib.tmpdir()
os.chmod(work, 0o755)
redis = dslib.Redis()
T = {"a": "token-org-a", "b": "token-org-b", "p": "token-partner", "soc": "token-soc",
     "view": "token-viewer"}
h = {k: hashlib.sha256(v.encode()).hexdigest() for k, v in T.items()}
subs = os.path.join(work, "subs.json")
with open(subs, "w") as f:
    json.dump({"organisations": [
        {"id": "org-a", "name": "A", "livenet": ["45.67.89.0/24"],
         "contacts": [{"email": "a@a.example"}], "token_sha256": h["a"]},
        {"id": "org-b", "name": "B", "livenet": ["45.67.90.0/24"],
         "contacts": [{"email": "b@b.example"}], "token_sha256": h["b"]}],
        "partners": [{"name": "id-cert", "countries": ["ID"], "token_sha256": h["p"]}]}, f)
# alerts as the aggregator writes them: the global stream and each organisation's
n = 0
for org, host, kind in [("org-a", "45.67.89.1", "infected"), ("org-b", "45.67.90.1", "infected"),
                        ("org-a", "45.67.89.2", "ddos_victim"), (None, "tcp/445", "early_warning")]:
    n += 1
    a = {"id": f"{org}:{kind}:{host}#1", "kind": kind, "org": org, "host": host}
    sid = f"{1767225600000 + n}-0"
    redis.cli("XADD", "ds:v1:alerts", sid, "alert", json.dumps(a))
    if org:
        redis.cli("XADD", f"ds:v1:alerts:org:{org}", sid, "alert", json.dumps(a))
audit_log = os.path.join(work, "audit.log")
srv = dslib.Serve(redis, extra=["--subscribers", subs, "--set", f"web.audit_log={audit_log}",
                                "--set", f"web.tokens=soc:soc:{h['soc']}",
                                "--set", f"web.tokens=wall:viewer:{h['view']}"])


def hosts(token, q=""):
    status, body = srv.get_json("/api/v1/alerts" + q, token=token)
    return status, sorted(a["host"] for a in body.get("alerts", []))


c.eq("no token: 401", hosts(None)[0], 401)
c.eq("a wrong token: 401", hosts("nope")[0], 401)
c.eq("viewer: 403", hosts(T["view"])[0], 403)
c.eq("partner: 403", hosts(T["p"])[0], 403)
c.eq("org A reads only its own", hosts(T["a"]), (200, ["45.67.89.1", "45.67.89.2"]))
c.eq("org B reads only its own", hosts(T["b"]), (200, ["45.67.90.1"]))
c.eq("org A cannot ask for B's (the parameter means nothing)", hosts(T["a"], "?org=org-b"),
     (200, ["45.67.89.1", "45.67.89.2"]))
c.eq("soc reads every alert", hosts(T["soc"]),
     (200, ["45.67.89.1", "45.67.89.2", "45.67.90.1", "tcp/445"]))
c.eq("kind filter", hosts(T["a"], "?kind=ddos_victim"), (200, ["45.67.89.2"]))
c.eq("since filter", hosts(T["soc"], "?since=1767225600"), (200, ["45.67.89.1", "45.67.89.2",
                                                                 "45.67.90.1", "tcp/445"]))
c.eq("bad kind: 400", hosts(T["soc"], "?kind=all")[0], 400)
for path in ["/api/v1/summary", "/api/v1/timeline", "/api/v1/top/sources", "/api/v1/sensors",
             "/healthz", "/metrics"]:
    for who in ("a", "p"):
        status, _, body = srv.get(path, token=T[who])
        c.eq(f"{who} token on {path}: 403", status, 403)
s403 = [srv.get("/api/v1/summary", token=T["a"])[2], srv.get("/api/v1/alerts", token=T["p"])[2]]
c.true("403 bodies say nothing about what exists", all(b"org-b" not in b for b in s403))


async def live(token):
    try:
        async with websockets.connect(srv.ws_base + "/live?token=" + token) as ws:
            await ws.recv()
            return 101
    except websockets.InvalidStatusCode as e:
        return e.status_code
c.eq("viewer token on /live: upgraded", asyncio.run(live(T["view"])), 101)


async def org_push():
    """Organisation A's push channel: its own alerts, nothing of B's, no map data."""
    async with websockets.connect(srv.ws_base + "/live?token=" + T["a"]) as ws:
        hello = json.loads(await ws.recv())
        await asyncio.sleep(1.5)  # the server has learnt the stream's position
        for org, host in [("org-b", "45.67.90.77"), ("org-a", "45.67.89.77")]:
            redis.cli("XADD", "ds:v1:alerts", "*", "alert",
                      json.dumps({"kind": "infected", "org": org, "host": host}))
        got = []
        end = asyncio.get_event_loop().time() + 4
        while asyncio.get_event_loop().time() < end:
            try:
                got.append(json.loads(await asyncio.wait_for(ws.recv(), 0.5)))
            except asyncio.TimeoutError:
                pass
        return hello, got
hello, got = asyncio.run(org_push())
c.eq("org A's hello names its scope", hello.get("scope"), "org")
c.eq("org A's channel carries only its own alert",
     [(m["type"], m["alert"]["host"]) for m in got], [("alert", "45.67.89.77")])

lines = [json.loads(l) for l in open(audit_log)]
c.eq("every alert API access audited, refusals included", len(lines), 12)
c.true("audit lines name token, scope, endpoint, status and rows",
       all({"t", "token", "scope", "endpoint", "status", "rows"} <= l.keys() for l in lines))
c.eq("org A's reads are audited with its rows",
     [(l["token"], l["status"], l["rows"]) for l in lines if l["token"] == "org:org-a"][:2],
     [("org:org-a", 200, 2), ("org:org-a", 200, 2)])
text = open(audit_log).read()
c.true("no token in the audit log", not any(t in text for t in T.values()))
srv.stop()

# a per-token rate limit: 60/minute allows a burst of 11, then 429 with Retry-After
srv = dslib.Serve(redis, extra=["--subscribers", subs, "--set", "web.rate_limit=60",
                                "--set", f"web.tokens=soc:soc:{h['soc']}"])
codes = [srv.get("/api/v1/sensors", token=T["soc"]) for _ in range(15)]
statuses = [c_[0] for c_ in codes]
c.eq("a burst is served, then 429", (statuses.count(200), statuses.count(429)), (11, 4))
c.true("429 says when to retry", all(int(h_.get("retry-after", 0)) >= 1 for s_, h_, _ in codes
                                     if s_ == 429))
c.eq("another token is not affected", srv.get("/api/v1/alerts", token=T["a"])[0], 200)
c.done()
