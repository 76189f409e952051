#!/usr/bin/python3
"""Access to /live: tokens (401 before the upgrade), scopes (alerts only to soc and admin),
the client caps (503 beyond web.max_clients and web.max_clients_per_address), and alerts pushed
from the aggregator's stream ds:v1:alerts as they are added."""
import asyncio
import hashlib
import json
import os
import sys

import websockets

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("serve access")
redis = dslib.Redis()
tokens = {"viewer": "tok-viewer-1", "soc": "tok-soc-2", "admin": "tok-admin-3"}
entries = [f"{scope}-user:{scope}:{hashlib.sha256(t.encode()).hexdigest()}"
           for scope, t in tokens.items()]
extra = ["--set", "web.require_token=true", "--set", "web.max_clients=6",
         "--set", "web.max_clients_per_address=5"]
for e in entries:
    extra += ["--set", "web.tokens=" + e]  # a list key given again appends
srv = dslib.Serve(redis, extra=extra)


async def status_of(url, headers=None):
    try:
        async with websockets.connect(url, extra_headers=headers or {}) as ws:
            await ws.recv()
            return 101
    except websockets.InvalidStatusCode as e:
        return e.status_code


async def main():
    live = srv.ws_base + "/live"
    res = {}
    res["none"] = await status_of(live)
    res["wrong"] = await status_of(live + "?token=nope")
    res["wrong_header"] = await status_of(live, {"Authorization": "Bearer nope"})
    res["viewer_url"] = await status_of(live + "?token=" + tokens["viewer"])
    res["soc_header"] = await status_of(live, {"Authorization": "Bearer " + tokens["soc"]})
    res["other_path"] = await status_of(srv.ws_base + "/elsewhere?token=" + tokens["viewer"])

    # scopes: the same alert reaches soc and admin, not the viewer
    conns = {s: await websockets.connect(live + "?token=" + t) for s, t in tokens.items()}
    hellos = {s: json.loads(await ws.recv()) for s, ws in conns.items()}
    res["scopes"] = {s: h.get("scope") for s, h in hellos.items()}
    await asyncio.sleep(1.5)  # the server learns the stream's last id before this alert
    alert = {"kind": "infected_host", "org": "city-a", "ip": "203.0.113.9"}
    redis.cli("XADD", "ds:v1:alerts", "*", "alert", json.dumps(alert))

    async def alerts_of(ws, seconds=4):
        got = []
        end = asyncio.get_event_loop().time() + seconds
        while asyncio.get_event_loop().time() < end:
            try:
                m = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
            except asyncio.TimeoutError:
                continue
            if m["type"] == "alert":
                got.append(m["alert"])
        return got
    got = await asyncio.gather(*(alerts_of(ws) for ws in conns.values()))
    res["alerts"] = dict(zip(conns.keys(), got))

    # caps: 3 open now; per address 5, total 6
    more = []
    for _ in range(2):
        more.append(await websockets.connect(live + "?token=" + tokens["viewer"]))
    res["over_per_address"] = await status_of(live + "?token=" + tokens["viewer"])
    for ws in list(conns.values()) + more:
        await ws.close()
    await asyncio.sleep(0.5)
    res["after_close"] = await status_of(live + "?token=" + tokens["viewer"])
    return res


r = asyncio.run(main())
c.eq("no token: 401", r["none"], 401)
c.eq("wrong token in the URL: 401", r["wrong"], 401)
c.eq("wrong bearer header: 401", r["wrong_header"], 401)
c.eq("viewer token in the URL: upgraded", r["viewer_url"], 101)
c.eq("soc bearer header: upgraded", r["soc_header"], 101)
c.eq("another path: 404", r["other_path"], 404)
c.eq("hello names each token's scope", r["scopes"],
     {"viewer": "viewer", "soc": "soc", "admin": "admin"})
c.eq("soc receives the alert", r["alerts"]["soc"],
     [{"kind": "infected_host", "org": "city-a", "ip": "203.0.113.9"}])
c.eq("admin receives the alert", r["alerts"]["admin"], r["alerts"]["soc"])
c.eq("viewer does not", r["alerts"]["viewer"], [])
c.eq("over the per-address cap: 503", r["over_per_address"], 503)
c.eq("room again once clients left", r["after_close"], 101)
_, _, body = srv.get("/metrics", token=tokens["viewer"])
c.true("refusals counted", "darkscope_ws_refused_total" in body.decode() and
       "darkscope_ws_refused_total 0" not in body.decode())
c.done()
