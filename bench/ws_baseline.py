#!/usr/bin/python3
"""The baseline of bench/websocket: the smallest sensible websocket fan-out, for comparison.

One asyncio process with python3-websockets (10.x, Debian's): it subscribes to the Redis channel
ds:v1:live over a unix socket (a tiny RESP reader: SUBSCRIBE, then read pushed messages) and, for
every sensor batch, builds one `events` frame in darkscope's /live shape (each event gains its
`sensor`) and pushes it to every connected client with websockets.broadcast() (one encoding,
written to each connection; no per-client backpressure). Once a second it broadcasts a small
`stats` frame. A new client gets a `hello` frame. Slow or stalled clients are bounded only the
way the library recommends for broadcast(): keepalive pings (ping_interval / ping_timeout,
20 s each by default), after which the connection is closed.

GET /metrics answers its counters as Prometheus text (ws_clients, ws_frames_sent_total,
ws_events_sent_total, ws_closed_total), like darkscope serve's.

usage: bench/ws_baseline.py --redis-sock PATH --listen 127.0.0.1:PORT
Not part of darkscope: only bench/websocket runs it.
"""
import argparse
import asyncio
import datetime
import http
import json
import resource
import signal
import time

import websockets

ap = argparse.ArgumentParser()
ap.add_argument("--redis-sock", required=True)
ap.add_argument("--listen", required=True)
ap.add_argument("--channel", default="ds:v1:live")
ap.add_argument("--ping-interval", type=float, default=20)
ap.add_argument("--ping-timeout", type=float, default=20)
args = ap.parse_args()

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

CLIENTS = set()
M = {"frames": 0, "events": 0, "batches": 0, "closed": 0, "seen": 0}
seen_window = []  # (monotonic time, packets seen, events sampled) of recent batches


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def on_batch(payload):
    batch = json.loads(payload)
    sensor = batch.get("sensor", "")
    events = [{"t": e["t"], "sensor": sensor, **{k: v for k, v in e.items() if k != "t"}}
              for e in batch.get("events", [])]
    M["batches"] += 1
    seen_window.append((time.monotonic(), batch.get("seen", 0), len(events)))
    if not events or not CLIENTS:
        return
    frame = json.dumps({"type": "events", "v": 1, "t": now_rfc3339(), "skipped": 0,
                        "events": events}, separators=(",", ":"))
    targets = [ws for ws in CLIENTS if ws.open]
    websockets.broadcast(targets, frame)
    M["frames"] += len(targets)
    M["events"] += len(events) * len(targets)


async def read_item(reader):
    line = await reader.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"*":
        return [await read_item(reader) for _ in range(int(rest))]
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else (await reader.readexactly(n + 2))[:-2]
    if kind == b":":
        return int(rest)
    return rest  # + and -


async def subscriber():
    ch = args.channel.encode()
    while True:
        try:
            reader, writer = await asyncio.open_unix_connection(args.redis_sock, limit=1 << 20)
            writer.write(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(ch), ch))
            await writer.drain()
            while True:
                item = await read_item(reader)
                if isinstance(item, list) and len(item) == 3 and item[0] == b"message":
                    on_batch(item[2])
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            await asyncio.sleep(0.5)


async def stats_tick():
    while True:
        await asyncio.sleep(1)
        cut = time.monotonic() - 5
        while seen_window and seen_window[0][0] < cut:
            seen_window.pop(0)
        pps = sum(s for _, s, _ in seen_window) / 5
        eps = sum(e for _, _, e in seen_window) / 5
        frame = json.dumps({"type": "stats", "v": 1, "t": now_rfc3339(),
                            "packets_per_second": pps, "events_per_second": eps,
                            "sampling_ratio": eps / pps if pps else 1}, separators=(",", ":"))
        targets = [ws for ws in CLIENTS if ws.open]
        websockets.broadcast(targets, frame)
        M["frames"] += len(targets)


async def handler(ws, path=None):
    CLIENTS.add(ws)
    try:
        await ws.send(json.dumps({"type": "hello", "v": 1, "server": "ws_baseline",
                                  "protocol": 1}))
        await ws.wait_closed()
    finally:
        CLIENTS.discard(ws)
        M["closed"] += 1


async def process_request(path, headers):
    if path == "/metrics":
        body = "".join([
            f"ws_clients {len(CLIENTS)}\n",
            f"ws_frames_sent_total {M['frames']}\n",
            f"ws_events_sent_total {M['events']}\n",
            f"ws_batches_total {M['batches']}\n",
            f"ws_closed_total {M['closed']}\n",
        ]).encode()
        return http.HTTPStatus.OK, [("Content-Type", "text/plain")], body
    return None


async def main():
    host, port = args.listen.rsplit(":", 1)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or
                                                      stop.set_result(None))
    async with websockets.serve(handler, host, int(port), compression=None, max_size=4096,
                                ping_interval=args.ping_interval, ping_timeout=args.ping_timeout,
                                process_request=process_request, backlog=1024):
        print(f"ws_baseline: listening on ws://{args.listen}/", flush=True)
        tasks = [asyncio.create_task(subscriber()), asyncio.create_task(stats_tick())]
        await stop
        for t in tasks:
            t.cancel()


asyncio.run(main())
