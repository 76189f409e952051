#!/usr/bin/python3
"""Fault: forty websocket clients upgrade to /live and never read a byte while capture replays
generated traffic in real time. The server's memory stays bounded (at most the rest of one frame
per client, the rest waits in each socket's capped kernel buffer), each stalled client is closed
once it has taken no frame for web.stall_timeout, and a client that reads is not affected: it
skips nothing, keeps receiving frames through the stall, and every packet capture counted
reaches the server. The single stalled client among 1,000 is in docs/benchmarks.md, the one
among hostile and slow clients in tests/integration/test_serve_live.py. Figures for
docs/reliability.md are printed."""
import asyncio
import datetime
import json
import os
import socket
import subprocess
import sys
import time

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import dslib  # noqa: E402

STALLED = 40
STALL_TIMEOUT_S = 5
FRAME_KIB = 96  # the largest events frame: 500 events (docs/benchmarks.md)
SLACK_KIB = 16 * 1024
WAIT_S = 60

c = dslib.Checker("stalled websocket clients")
work = dslib.tmpdir()
redis = dslib.Redis()
srv = dslib.Serve(redis, extra=["--set", f"web.stall_timeout={STALL_TIMEOUT_S}",
                                "--set", f"web.max_clients_per_address={STALLED + 8}",
                                "--set", f"web.max_http_connections_per_address={STALLED + 8}"])
DURATION = 30
start = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
pcap, truth = dslib.gen(work, extra=["--seed", "6", "--rate", "4000", "--duration", str(DURATION),
                                     "--start", start])
darknet = sum((["--darknet", d] for d in truth["darknet"]), [])
cap = subprocess.Popen([dslib.DARKSCOPE, "capture", "--redis", redis.url, "--sensor", "stall",
                        *darknet, "--read", pcap, "--speed", "realtime",
                        "--set", "live.max_events_per_second=3000", "--set", "bucket_seconds=10",
                        "--set", "capture.lateness=2"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
URL = srv.ws_base + "/live"


def metric(name):
    _, _, body = srv.get("/metrics")
    return sum(float(x.rsplit(" ", 1)[1]) for x in body.decode().splitlines()
               if x.startswith(name + " ") or x.startswith(name + "{"))


def stalled_client():
    """Upgrades, reads the answer's status line, then never reads again; None when refused."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", srv.port))
    s.sendall(b"GET /live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    try:
        ok = s.recv(12) == b"HTTP/1.1 101"
    except OSError:
        ok = False
    return s if ok else s.close()


async def reader(seconds):
    """Reads every frame for `seconds`; returns (arrival time, message) pairs."""
    msgs = []
    async with websockets.connect(URL, max_size=None) as ws:
        end = time.time() + seconds
        while time.time() < end:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=max(0.1, end - time.time()))
            except asyncio.TimeoutError:
                break
            msgs.append((time.time(), json.loads(raw)))
    return msgs


async def main():
    await asyncio.sleep(1.5)
    task = asyncio.create_task(reader(DURATION - 3))
    await asyncio.sleep(1.5)
    rss0 = srv.rss_kib()
    attached = time.time()
    socks = [stalled_client() for _ in range(STALLED)]
    upgraded = sum(1 for x in socks if x)
    peak, closed_at = rss0, None
    deadline = time.time() + WAIT_S
    while time.time() < deadline:
        await asyncio.sleep(0.5)
        peak = max(peak, srv.rss_kib())
        if metric("darkscope_ws_closed_total{reason=\"stalled\"}") >= STALLED:
            closed_at = time.time()
            break
    await asyncio.sleep(1)
    rss_after = srv.rss_kib()
    msgs = await task
    for s in socks:
        if s:
            s.close()
    return msgs, rss0, peak, rss_after, attached, closed_at, upgraded


msgs, rss0, peak, rss_after, attached, closed_at, upgraded = asyncio.run(main())
cap.communicate(timeout=DURATION + 60)
c.eq("capture exit status", cap.returncode, 0)
time.sleep(1.5)

c.eq("every stalled client was upgraded", upgraded, STALLED)
closed = metric("darkscope_ws_closed_total{reason=\"stalled\"}")
c.eq("every stalled client was closed as stalled", closed, STALLED)
took = closed_at - attached if closed_at else None
c.true(f"closed after the stall time-out, not before ({took} s)",
       took is not None and took >= STALL_TIMEOUT_S)
bound = STALLED * FRAME_KIB + SLACK_KIB
c.true(f"server memory bounded: RSS {rss0} -> peak {peak} KiB (bound +{bound} KiB)",
       peak - rss0 <= bound)
events = [m for _, m in msgs if m["type"] == "events"]
c.true(f"the reading client received events ({len(events)} frames)", len(events) > 50)
c.eq("the reading client skipped nothing", sum(m.get("skipped", 0) for m in events), 0)
during = [t for t, m in msgs if m["type"] == "events" and attached <= t <= (closed_at or attached)]
c.true(f"it kept receiving frames while the stalled clients were attached ({len(during)})",
       len(during) >= 3 * STALL_TIMEOUT_S)
times = [t for t, m in msgs if m["type"] == "events"]
gap = max((b - a for a, b in zip(times, times[1:])), default=None)
c.eq("every packet capture counted reached the server", metric("darkscope_live_packets_total"),
     truth["packets"])
c.eq("server still up", srv.proc.poll(), None)
c.eq("SIGTERM stops it cleanly", srv.stop(), 0)
print("figure:", {"stalled_clients": STALLED, "stall_timeout_s": STALL_TIMEOUT_S,
                  "all_closed_after_s": round(took, 1) if took else None,
                  "rss_kib": [rss0, peak, rss_after], "rss_growth_kib": peak - rss0,
                  "reader_frames": len(events), "reader_frames_during_stall": len(during),
                  "reader_max_gap_s": round(gap, 3) if gap else None})
c.done()
