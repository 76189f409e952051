#!/usr/bin/python3
"""The websocket /live against a real server, Redis and capture replaying generated traffic in
real time: hello, events and stats flow (checked against the generator's ground truth),
filters are honoured, malformed / oversized / binary / unknown messages close only their own
client, a client that falls behind skips events and is told, and a stalled client is cut off
without growing the server's memory."""
import asyncio
import datetime
import json
import os
import socket
import subprocess
import sys
import time

import websockets

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("serve live")
work = dslib.tmpdir()
redis = dslib.Redis()
# a small ring, so a client that cannot keep up is overtaken within seconds
srv = dslib.Serve(redis, extra=["--set", "web.stall_timeout=5", "--set", "web.ring_events=512"])
start = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
DURATION = 30
pcap, truth = dslib.gen(work, extra=["--seed", "3", "--rate", "4000", "--duration", str(DURATION),
                                     "--start", start])
darknet = sum((["--darknet", d] for d in truth["darknet"]), [])
cap = subprocess.Popen([dslib.DARKSCOPE, "capture", "--redis", redis.url, "--sensor", "live-1",
                        *darknet, "--read", pcap, "--speed", "realtime",
                        "--set", "live.max_events_per_second=3000", "--set", "bucket_seconds=10",
                        "--set", "capture.lateness=2"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
by_ip = {s["ip"]: s for s in truth["sources"]}
URL = srv.ws_base + "/live"


def metric(name):
    _, _, body = srv.get("/metrics")
    total = 0
    for line in body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def reader(name, seconds, subscribe=None, out=None):
    """Reads everything for `seconds`; returns the messages with their arrival times."""
    msgs = []
    async with websockets.connect(URL, max_size=None) as ws:
        if subscribe is not None:
            await ws.send(json.dumps({"type": "subscribe", "filters": subscribe}))
        end = time.time() + seconds
        while time.time() < end:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=max(0.1, end - time.time()))
            except asyncio.TimeoutError:
                break
            msgs.append((time.time(), json.loads(raw)))
    return msgs


async def hostile(payload, binary=False, delay=2.0):
    """Connects, waits, sends payload; returns (close code, reason, time of the close)."""
    async with websockets.connect(URL, max_size=None) as ws:
        await asyncio.sleep(delay)
        await ws.send(payload if not binary else payload.encode())
        try:
            while True:
                await asyncio.wait_for(ws.recv(), timeout=10)
        except websockets.ConnectionClosed as e:
            return e.code, e.reason, time.time()
        except asyncio.TimeoutError:
            return None, "not closed", time.time()


async def slow_reader(seconds):
    """A client whose socket takes little: small receive buffer, one message per 0.25 s; then
    it drains what the server queued for it, to read what the server told it."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", srv.port))
    msgs = []
    async with websockets.connect(URL, sock=s, max_size=None, max_queue=1) as ws:
        end = time.time() + seconds
        while time.time() < end:
            try:
                msgs.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=5)))
            except asyncio.TimeoutError:
                break
            await asyncio.sleep(0.25)
        end = time.time() + 15
        while time.time() < end:
            try:
                msgs.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=1)))
            except asyncio.TimeoutError:
                break
            m = msgs[-1]
            if m["type"] == "stats" and m["client"]["skipped"] > 0:
                break
    return msgs


def stalled_client():
    """Upgrades, then never reads a byte."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", srv.port))
    s.sendall(b"GET /live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    return s


async def main():
    time.sleep(1.5)
    rss0 = srv.rss_kib()
    stalled = stalled_client()
    tasks = {
        "all": asyncio.create_task(reader("all", 20)),
        "backscatter": asyncio.create_task(reader("bs", 12, {"class": ["backscatter"],
                                                             "proto": ["tcp"]})),
        "port23": asyncio.create_task(reader("p23", 12, {"port": [23]})),
        "slow": asyncio.create_task(slow_reader(14)),
        "bad_json": asyncio.create_task(hostile("this is not json")),
        "too_big": asyncio.create_task(hostile(json.dumps({"type": "subscribe", "x": "y" * 5000}))),
        "binary": asyncio.create_task(hostile("{}", binary=True)),
        "unknown": asyncio.create_task(hostile(json.dumps({"type": "hello"}))),
        "bad_filter": asyncio.create_task(hostile(json.dumps({"type": "subscribe",
                                                              "filters": {"class": ["nope"]}}))),
    }
    await asyncio.sleep(14)
    rss_mid = srv.rss_kib()
    stalled_closed = metric("darkscope_ws_closed_total{reason=\"stalled\"}")
    res = {k: await t for k, t in tasks.items()}
    stalled.close()
    return res, rss0, rss_mid, stalled_closed


res, rss0, rss_mid, stalled_closed = asyncio.run(main())
cap_err = cap.communicate(timeout=DURATION + 60)[1]
c.eq("capture exit status", cap.returncode, 0)
time.sleep(1.5)

# hello, stats, events for a plain client
allm = [m for _, m in res["all"]]
c.true("first message is hello", allm and allm[0]["type"] == "hello")
if allm:
    h = allm[0]
    c.eq("hello version", (h.get("v"), h.get("protocol")), (1, 1))
    c.true("hello names the server", h.get("server", "").startswith("darkscope "))
    c.eq("hello limits", h.get("limits", {}).get("max_message_bytes"), 4096)
events = [e for m in allm if m["type"] == "events" for e in m["events"]]
stats = [m for m in allm if m["type"] == "stats"]
c.true(f"events flow ({len(events)})", len(events) > 500)
c.true(f"stats about every second ({len(stats)} in 20 s)", 10 <= len(stats) <= 22)
c.true("every event comes from a source the generator wrote",
       all(e["src"] in by_ip for e in events))
c.true("every event's class is one its source sent",
       all(by_ip[e["src"]]["by_class"].get(e["class"], 0) > 0 for e in events if e["src"] in by_ip))
c.true("events carry GeoIP-less sources as cc null",
       all("cc" in e and "lat" not in e for e in events))
c.true("events name the sensor", all(e["sensor"] == "live-1" for e in events))
times = [t for t, m in res["all"] if m["type"] == "events"]
gaps = [b - a for a, b in zip(times, times[1:])]
c.true("events frames at most every ~100 ms", sum(1 for g in gaps if g < 0.08) <= len(gaps) * 0.1)
if stats:
    last = stats[-1]
    c.true(f"stats rate positive, bounded by the replay's ({last['packets_per_second']})",
           0 < last["packets_per_second"] < 3 * 4000)
    c.true("stats by class add up to the rate",
           abs(sum(last["by_class"].values()) - last["packets_per_second"]) < 1)
    c.true("stats top countries (none: no GeoIP)", last["top"]["countries"][0]["cc"] == "??")
    c.true("stats top ports has tcp/23 first (the generator's busiest)",
           (last["top"]["ports"][0]["proto"], last["top"]["ports"][0]["port"]) ==
           (truth["ports"][0]["proto"], truth["ports"][0]["port"]))
    c.true("stats bucket sources counted", last["bucket"]["sources"] > 0)
    c.true("stats sampling ratio", 0 < last["sampling_ratio"] <= 1)

# filters
bs = [m for _, m in res["backscatter"]]
c.true("subscribe acknowledged", any(m["type"] == "subscribed" and
                                     m["filters"] == {"class": ["backscatter"], "proto": ["tcp"]}
                                     for m in bs))
sub_at = next((i for i, m in enumerate(bs) if m["type"] == "subscribed"), len(bs))
bs_ev = [e for m in bs[sub_at:] if m["type"] == "events" for e in m["events"]]
c.true(f"filtered events arrive ({len(bs_ev)})", len(bs_ev) > 10)
c.true("only tcp backscatter after subscribing",
       all(e["class"] == "backscatter" and e["proto"] == "tcp" for e in bs_ev))
p23 = [m for _, m in res["port23"]]
sub_at = next((i for i, m in enumerate(p23) if m["type"] == "subscribed"), len(p23))
p_ev = [e for m in p23[sub_at:] if m["type"] == "events" for e in m["events"]]
c.true(f"port filter events arrive ({len(p_ev)})", len(p_ev) > 10)
c.true("only port 23", all(e["dport"] == 23 for e in p_ev))

# hostile clients are closed with the documented codes; the plain client did not notice
for k, code in [("bad_json", 1007), ("too_big", 1009), ("binary", 1003), ("unknown", 1008),
                ("bad_filter", 1008)]:
    got, reason, _ = res[k]
    c.eq(f"{k}: close code", got, code)
    c.true(f"{k}: close reason given ({reason!r})", bool(reason))
closed_at = max(res[k][2] for k in ["bad_json", "too_big", "binary", "unknown", "bad_filter"])
after = [t for t, m in res["all"] if m["type"] == "events" and t > closed_at + 0.5]
c.true(f"the plain client kept receiving after the hostile ones were closed ({len(after)})",
       len(after) >= 10)

# the slow client skipped, and was told
slow = res["slow"]
skipped = sum(m.get("skipped", 0) for m in slow if m["type"] == "events")
slow_stats = [m for m in slow if m["type"] == "stats"]
c.true(f"the slow client was told it skipped events ({skipped})", skipped > 0)
c.true("its stats count them too", slow_stats and slow_stats[-1]["client"]["skipped"] > 0)

# the stalled client was cut off; memory stayed bounded
c.true(f"the stalled client was closed ({stalled_closed})", stalled_closed >= 1)
c.true(f"server memory bounded with slow and stalled clients ({rss0} -> {rss_mid} KiB)",
       rss_mid - rss0 < 32 * 1024)

# exact counters: every packet capture counted reached the server
c.eq("live packet counters equal the generator's packets",
     metric("darkscope_live_packets_total"), truth["packets"])
# a late joiner's hello lists the sensor
async def late_hello():
    async with websockets.connect(URL) as ws:
        return json.loads(await ws.recv())
h = asyncio.run(late_hello())
names = [s["name"] for s in h.get("sensors", [])]
c.eq("hello lists the sensor", names, ["live-1"])
c.eq("with its darknet", h["sensors"][0]["darknet"] if names else None, truth["darknet"])
c.eq("server still up", srv.proc.poll(), None)
c.eq("SIGTERM stops it cleanly", srv.stop(), 0)
c.done()
