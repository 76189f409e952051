#!/usr/bin/python3
"""Abuse of `darkscope serve` on loopback while capture replays generated traffic in real time
and three well-behaved websocket clients count events: thousands of malformed frames written by
hand (the websockets library refuses to send them), ping floods, slowloris connections (a
request line then one header byte a second, and connections that never send a byte), a flood
of connections and one of websocket upgrades from one address. Each attack comes from its own
loopback address (127.0.x.y), so the per-address limits meet only the attacker.

Asserted: every bad connection is closed within a bound, with the close code
docs/websocket-protocol.md gives ("Abuse limits"); the good clients receive events throughout
and are never disconnected; serve's memory stays flat; /healthz answers quickly at the end; the
rejections are in /metrics, and no HTTP connection is left counted. Also: a second server on
the same port exits 1."""
import asyncio
import base64
import datetime
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

import websockets

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

HEADER_TIMEOUT = 4     # web.header_timeout for this server
MAX_HTTP = 16          # web.max_http_connections_per_address
MAX_WS = 8             # web.max_clients_per_address
ROUNDS = 160           # connections per malformed-frame kind
WORKERS = 8            # malformed-frame senders at once, one source address each
CLOSE_WITHIN = 5.0     # seconds from the bad frame to the connection's end
SLOW_ADDRS, SLOW_PER_KIND = 6, 6
FLOOD = 60             # connections from one address
WS_FLOOD = 20          # websocket upgrades kept open from one address
PINGERS, PINGS = 2, 5000
GOOD = 3

c = dslib.Checker("serve abuse")
work = dslib.tmpdir()
redis = dslib.Redis()
srv = dslib.Serve(redis, extra=["--set", f"web.header_timeout={HEADER_TIMEOUT}",
                                "--set", f"web.max_http_connections_per_address={MAX_HTTP}",
                                "--set", f"web.max_clients_per_address={MAX_WS}"])
start = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
pcap, truth = dslib.gen(work, extra=["--seed", "5", "--rate", "1000", "--duration", "150",
                                     "--start", start])
darknet = sum((["--darknet", d] for d in truth["darknet"]), [])
cap = subprocess.Popen([dslib.DARKSCOPE, "capture", "--redis", redis.url, "--sensor", "abuse-1",
                        *darknet, "--read", pcap, "--speed", "realtime",
                        "--set", "live.max_events_per_second=300", "--set", "bucket_seconds=10",
                        "--set", "capture.lateness=2"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
URL = srv.ws_base + "/live"
with open(f"/proc/{srv.proc.pid}/maps") as f:
    ASAN = "libasan" in f.read()


def metrics():
    _, _, body = srv.get("/metrics")
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def healthz_timed():
    """GET /healthz timed by curl, a process of its own: this test's threads (one interpreter
    lock) would add their own waits to a time taken here."""
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-m", "30", "-w",
                        "%{http_code} %{time_total}", srv.base + "/healthz"],
                       capture_output=True, text=True, timeout=60)
    code, secs = (r.stdout.split() + ["0", "99"])[:2]
    return int(code), float(secs)


# ---------------------------------------------------------------- frames written by hand

def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
    """One RFC 6455 frame: FIN, RSV1-3, opcode; MASK bit and 7/16/64-bit length; masking key;
    payload. length: the declared payload length, when it is to differ from the payload's."""
    n = len(payload) if length is None else length
    hdr = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    m = 0x80 if mask else 0
    if n < 126:
        hdr += bytes([m | n])
    elif n < 65536:
        hdr += bytes([m | 126]) + struct.pack("!H", n)
    else:
        hdr += bytes([m | 127]) + struct.pack("!Q", n)
    if not mask:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def upgrade(src, timeout=10):
    """A websocket handshake from source address src; returns (socket, status, bytes after the
    answer's headers)."""
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", srv.port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
              f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
              f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise ConnectionError("closed during the handshake")
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    return s, int(head.split()[1]), rest


def until_closed(s, buf, deadline):
    """Reads server frames until the connection ends. Returns (how, close code, frames by
    opcode): how is "close" (a close frame arrived), "eof", "reset" or "timeout"."""
    ops = {}
    while True:
        while len(buf) >= 2:
            n, off = buf[1] & 0x7f, 2
            if n == 126:
                n, off = (struct.unpack("!H", buf[2:4])[0], 4) if len(buf) >= 4 else (None, 0)
            elif n == 127:
                n, off = (struct.unpack("!Q", buf[2:10])[0], 10) if len(buf) >= 10 else (None, 0)
            if n is None or len(buf) < off + n:
                break
            op, payload, buf = buf[0] & 0x0f, buf[off:off + n], buf[off + n:]
            ops[op] = ops.get(op, 0) + 1
            if op == 8:
                return "close", struct.unpack("!H", payload[:2])[0] if n >= 2 else 1005, ops
        left = deadline - time.time()
        if left <= 0:
            return "timeout", None, ops
        s.settimeout(left)
        try:
            d = s.recv(65536)
        except socket.timeout:
            return "timeout", None, ops
        except ConnectionError:
            return "reset", None, ops
        if not d:
            return "eof", None, ops
        buf += d


# kind: (frames sent, close codes allowed; None = the connection ends without a close frame)
TEXT_SUB = b'{"type":"subscribe","filters":{}}'
KINDS = {
    "bad_json": ([frame(1, b"{not json")], {1007}),
    "binary": ([frame(2, TEXT_SUB)], {1003}),
    "bad_opcode": ([frame(3, b"x")], {1002}),
    "reserved_bits": ([frame(1, TEXT_SUB, rsv=0b010)], {1002}),
    # lws 4.1.6 takes unmasked client frames (RFC 6455 wants 1002; later lws sends it): the
    # payload still meets every rule of the protocol
    "unmasked": ([frame(1, b"junk", mask=False)], {1002, 1007}),
    "invalid_utf8": ([frame(1, b'{"type":"\xff\xfe"}')], {1007}),
    "declared_2_40": ([frame(1, b"a" * 5000, length=1 << 40)], {1009}),
    "fragments": ([frame(1, b"[", fin=False)] + [frame(0, b" ", fin=False)] * 200, {1008}),
    "empty_fragments": ([frame(1, b"", fin=False)] + [frame(0, b"", fin=False)] * 200, {1008}),
    "lone_continuation": ([frame(0, b"x")], {1002}),
    "fragmented_ping": ([frame(9, b"p", fin=False)], {1002}),
    # lws 4.1.6 drops these without a close frame: it logs and closes the socket
    "ping_126_bytes": ([frame(9, b"p" * 126)], {None, 1002}),
    "length_bit_63": ([bytes([0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1]) + os.urandom(4) + b"x"],
                      {None, 1002}),
}


def malformed_worker(w, results):
    src = f"127.0.2.{w + 1}"
    for r in range(ROUNDS):
        for kind, (frames, _) in KINDS.items():
            if (r * len(KINDS) + list(KINDS).index(kind)) % WORKERS != w:
                continue
            try:
                s, status, rest = upgrade(src)
            except OSError as e:
                results.append((kind, "handshake: " + str(e), None, 0, 0))
                continue
            t0 = time.time()
            try:
                s.sendall(b"".join(frames))
            except OSError:
                pass  # closed while the rest was still being sent
            how, code, _ = until_closed(s, rest, t0 + 10)
            results.append((kind, how, code, time.time() - t0, len(frames) if status == 101 else 0))
            s.close()


def pinger(i, results):
    """A ping flood, then a proper close: pings are allowed, answered, and cost nothing kept."""
    s, status, rest = upgrade(f"127.0.6.{i + 1}")
    t0 = time.time()
    s.sendall(frame(9, b"ping") * PINGS)
    s.sendall(frame(8, struct.pack("!H", 1000)))
    how, code, ops = until_closed(s, rest, t0 + 20)
    results.append((status, how, code, ops.get(10, 0), time.time() - t0))
    s.close()


def slowloris(results):
    """From SLOW_ADDRS addresses: connections that send a request line then one header byte a
    second, and connections that never send anything. Records when each one ended."""
    conns = []
    for a in range(SLOW_ADDRS):
        for kind in ("drip", "silent"):
            for _ in range(SLOW_PER_KIND):
                s = socket.socket()
                s.bind((f"127.0.3.{a + 1}", 0))
                s.connect(("127.0.0.1", srv.port))
                if kind == "drip":
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                s.setblocking(False)
                conns.append([kind, s, time.time(), None])
    deadline = time.time() + HEADER_TIMEOUT + 30
    while time.time() < deadline and any(x[3] is None for x in conns):
        for x in conns:
            if x[3] is not None:
                continue
            try:
                if x[1].recv(4096) == b"":
                    x[3] = time.time()
                    continue
            except BlockingIOError:
                pass
            except OSError:
                x[3] = time.time()
                continue
            if x[0] == "drip":
                try:
                    x[1].send(b"X")
                except OSError:
                    x[3] = time.time()
        time.sleep(1)
    for kind, s, t0, t1 in conns:
        results.append((kind, None if t1 is None else t1 - t0))
        s.close()


def flood(results):
    """FLOOD connections at once from one address, sending nothing."""
    conns = []
    for _ in range(FLOOD):
        s = socket.socket()
        s.bind(("127.0.4.1", 0))
        s.connect(("127.0.0.1", srv.port))
        s.setblocking(False)
        conns.append([s, time.time(), None])
    deadline = time.time() + HEADER_TIMEOUT + 30
    while time.time() < deadline and any(x[2] is None for x in conns):
        for x in conns:
            if x[2] is None:
                try:
                    if x[0].recv(4096) == b"":
                        x[2] = time.time()
                except BlockingIOError:
                    pass
                except OSError:
                    x[2] = time.time()
        time.sleep(0.1)
    for s, t0, t1 in conns:
        results.append(None if t1 is None else t1 - t0)
        s.close()


def ws_flood(results):
    """WS_FLOOD websocket upgrades kept open from one address: MAX_WS get in, the rest 503."""
    kept = []
    for _ in range(WS_FLOOD):
        try:
            s, status, rest = upgrade("127.0.5.1")
        except OSError as e:
            results.append(str(e))
            continue
        results.append(status)
        if status == 101:
            kept.append((s, rest))
        else:
            s.close()
    time.sleep(2)
    for s, rest in kept:
        s.sendall(frame(8, struct.pack("!H", 1000)))
        until_closed(s, rest, time.time() + 10)
        s.close()


async def good_client(i, stop, out):
    """Counts events until stop is set, then closes; records every frame's arrival and how the
    connection ended."""
    times, closed_by_server = [], None
    async with websockets.connect(URL, max_size=None) as ws:
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except asyncio.TimeoutError:
                continue
            except websockets.ConnectionClosed as e:
                closed_by_server = (e.code, e.reason)
                break
            m = json.loads(raw)
            if m["type"] == "events":
                times.append((time.time(), len(m["events"])))
    out[i] = (times, closed_by_server)


def good_clients(stop, out):
    async def main():
        await asyncio.gather(*(good_client(i, stop, out) for i in range(GOOD)))
    asyncio.run(main())


# ---------------------------------------------------------------- the run

stop = threading.Event()
good = {}
good_thread = threading.Thread(target=good_clients, args=(stop, good))
good_thread.start()
# the good clients are in, events flow, and the sensor has written a bucket (/healthz 200)
deadline = time.time() + 40
while time.time() < deadline and srv.get("/healthz")[0] != 200:
    time.sleep(0.5)
time.sleep(1)
m0 = metrics()
rss0 = srv.rss_kib()
bad, pings, slow, flooded, ws_flooded = [], [], [], [], []
attack_start = time.time()
threads = [threading.Thread(target=malformed_worker, args=(w, bad)) for w in range(WORKERS)]
threads += [threading.Thread(target=pinger, args=(i, pings)) for i in range(PINGERS)]
threads += [threading.Thread(target=f, args=(r,)) for f, r in
            ((slowloris, slow), (flood, flooded), (ws_flood, ws_flooded))]
for t in threads:
    t.start()
time.sleep(1)
status_during, healthz_during = healthz_timed()
for t in threads:
    t.join()
attack_end = time.time()
time.sleep(2)  # the last closes are done
rss1 = srv.rss_kib()
status_end, healthz_end = healthz_timed()
m1 = metrics()
time.sleep(2)
stop.set()
good_thread.join()
cap.terminate()
cap.wait(30)


def delta(name):
    return m1.get(name, 0) - m0.get(name, 0)


# malformed frames: each connection closed, with its code, within the bound
frames_sent = sum(r[4] for r in bad)
print(f"malformed: {len(bad)} connections, {frames_sent} frames, in "
      f"{attack_end - attack_start:.1f} s")
c.eq("every malformed-frame connection was made", len(bad), ROUNDS * len(KINDS))
for kind, (_, codes) in KINDS.items():
    rs = [r for r in bad if r[0] == kind]
    got = sorted({(r[1], r[2]) for r in rs}, key=str)
    want_how = {"close" if code else "eof" for code in codes} | ({"reset"} if None in codes
                                                                else set())
    c.true(f"{kind}: closed with {sorted(codes, key=str)} (got {got})",
           all(r[1] in want_how and r[2] in codes for r in rs))
    slowest = max((r[3] for r in rs), default=99)
    c.true(f"{kind}: closed within {CLOSE_WITHIN} s (slowest {slowest:.3f} s)",
           slowest <= CLOSE_WITHIN)
print("malformed: slowest close %.3f s, median %.4f s" % (
    max(r[3] for r in bad), sorted(r[3] for r in bad)[len(bad) // 2]))

# ping floods: answered (one pong pending at most), and a clean close afterwards
for status, how, code, pongs, secs in pings:
    c.true(f"ping flood: upgraded, closed cleanly with 1000 ({status}, {how}, {code})",
           (status, how, code) == (101, "close", 1000))
    c.true(f"ping flood: answered, never more pongs than pings ({pongs})", 1 <= pongs <= PINGS)
c.eq("ping floods ran", len(pings), PINGERS)

# slowloris: closed once web.header_timeout is over (checked every second)
for kind in ("drip", "silent"):
    ts = [t for k, t in slow if k == kind]
    c.eq(f"slowloris {kind}: connections", len(ts), SLOW_ADDRS * SLOW_PER_KIND)
    c.true(f"slowloris {kind}: all closed within web.header_timeout + 3 s "
           f"(latest {max((t or 99) for t in ts):.1f} s)",
           all(t is not None and t <= HEADER_TIMEOUT + 3 for t in ts))
    done = [t for t in ts if t is not None]
    print(f"slowloris {kind}: closed after {min(done or [0]):.1f} – {max(done or [0]):.1f} s")

# one address: MAX_HTTP connections admitted (until the header timeout), the rest closed at once
# (well before the header timeout: this test's own threads can take a while to notice)
at_once = [t for t in flooded if t is not None and t < HEADER_TIMEOUT - 1]
c.true(f"connection flood: at least {FLOOD - MAX_HTTP} of {FLOOD} closed at once "
       f"({len(at_once)})", len(at_once) >= FLOOD - MAX_HTTP)
c.true("connection flood: the admitted ones closed by the header timeout",
       all(t is not None and t <= HEADER_TIMEOUT + 3 for t in flooded))
print(f"connection flood: {len(at_once)} of {FLOOD} closed at once, the rest after "
      f"{max((t or 0) for t in flooded):.1f} s; websocket flood: {sorted(ws_flooded)}")
c.eq("websocket flood: MAX_WS upgraded, the rest 503",
     sorted(ws_flooded), [101] * MAX_WS + [503] * (WS_FLOOD - MAX_WS))

# the good clients: never disconnected, events throughout
for i in range(GOOD):
    times, closed = good.get(i, ([], ("never ran", "")))
    c.eq(f"good client {i}: not disconnected by the server", closed, None)
    during = [t for t, _ in times if attack_start <= t <= attack_end]
    edges = [attack_start] + during + [attack_end]
    gap = max(b - a for a, b in zip(edges, edges[1:]))
    c.true(f"good client {i}: events throughout the attack ({len(during)} frames, "
           f"longest gap {gap:.2f} s)", len(during) >= 10 and gap < 3)
    print(f"good client {i}: {sum(n for _, n in times)} events, "
          f"{len(during)} frames during the attack, longest gap {gap:.2f} s")

# the server: memory flat, /healthz quick, rejections counted, nothing left counted
limit = 32 * 1024 if ASAN else 8 * 1024
print(f"serve RSS {rss0} -> {rss1} KiB ({'ASan' if ASAN else 'plain'}); "
      f"/healthz {healthz_during * 1000:.0f} ms during, {healthz_end * 1000:.0f} ms after")
c.true(f"serve memory flat ({rss0} -> {rss1} KiB, limit +{limit} KiB)", rss1 - rss0 < limit)
c.true(f"/healthz answered quickly during the attack ({status_during}, {healthz_during:.3f} s)",
       status_during != 0 and healthz_during < 1)
c.eq("/healthz at the end", status_end, 200)
c.true(f"/healthz answered quickly at the end ({healthz_end:.3f} s)", healthz_end < 1)
closed = {r: delta(f'darkscope_ws_closed_total{{reason="{r}"}}')
          for r in ("binary", "invalid_json", "policy", "too_big", "protocol", "dropped")}
print("closed by reason:", closed)
c.eq("each of our 1003 counted", closed["binary"], ROUNDS)
c.eq("each of our 1009 counted", closed["too_big"], ROUNDS)
c.eq("each of our 1008 counted", closed["policy"], 2 * ROUNDS)
c.true("1007 (not JSON) counted", closed["invalid_json"] >= ROUNDS)
c.true("lws's 1002 and bad UTF-8 counted", closed["protocol"] >= 5 * ROUNDS)
c.true("frames lws cannot parse counted as dropped", closed["dropped"] >= 2 * ROUNDS)
c.eq("every malformed-frame connection counted once", sum(closed.values()), ROUNDS * len(KINDS))
c.eq("refused upgrades counted", delta("darkscope_ws_refused_total"), WS_FLOOD - MAX_WS)
c.true("refused connections counted",
       delta("darkscope_http_connections_refused_total") >= FLOOD - MAX_HTTP)
c.eq("no HTTP connection left counted (only the /metrics request itself)",
     m1.get("darkscope_http_connections"), 1)
c.eq("the good clients still connected at the end", m1.get("darkscope_ws_clients"), GOOD)
c.true("lws's lines about broken frames are rate-limited in the log",
       "further lines not logged" in srv.output())
# a second server on the same port cannot listen: it says so and exits 1 (it used to carry on
# without a listener, since lws on a foreign loop returns a context it has begun to destroy)
second = dslib.run(["serve", "--redis", redis.url, "--listen", srv.listen], check=False,
                   timeout=30)
c.eq(f"a second serve on the port exits 1 ({second.stderr.strip()[-120:]!r})",
     (second.returncode, "cannot listen" in second.stderr), (1, True))
c.eq("server still up", srv.proc.poll(), None)
c.eq("SIGTERM stops it cleanly", srv.stop(), 0)
c.done()
