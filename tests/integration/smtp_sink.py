#!/usr/bin/python3
"""A real SMTP server for tests (Debian's python3-aiosmtpd) on loopback: every accepted message
is written to DIR/NNNN.eml with its envelope in DIR/NNNN.json. While DIR/reject exists, DATA is
answered with the code and text in that file (e.g. "451 try again later") instead of 250.

While DIR/hold exists the answer to DATA is held back (a slow server): the sink writes
DIR/holding when a message waits, and answers once the file is gone (at most HOLD_MAX_S). A
message is stored at the moment its 250 is sent, as a real server takes responsibility for it
then (RFC 5321, 6.1): a client that goes away while its answer is held (killed, timed out)
delivers nothing, and the sink appends a line to DIR/aborted instead.

usage: smtp_sink.py DIR PORT [--starttls CERT KEY] [--auth USER PASSWORD_FILE]
(runs until SIGTERM; prints "ready PORT" once it listens)

--starttls offers STARTTLS with that certificate and requires it before MAIL; --auth requires
AUTH (PLAIN or LOGIN, over TLS only) with that user and password. Every AUTH attempt is a line
"ok USER" or "refused USER" in DIR/auth.log; each message's envelope records whether it came
over TLS and as which user.

PORT 0 chooses a free port: a port found free can be taken by a parallel test before the server
binds it, so the sink retries with another, and the test reads the port it got from "ready".
A restarted sink is given that port again.)"""
import asyncio
import json
import os
import signal
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

HOLD_MAX_S = 300

out, port = sys.argv[1], int(sys.argv[2])
opts = sys.argv[3:]
tls_context = None
if "--starttls" in opts:
    import ssl
    i = opts.index("--starttls")
    tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_context.load_cert_chain(opts[i + 1], opts[i + 2])
auth_user = auth_password = None
if "--auth" in opts:
    i = opts.index("--auth")
    auth_user = opts[i + 1].encode()
    with open(opts[i + 2], "rb") as f:
        auth_password = f.read().strip()
os.makedirs(out, exist_ok=True)
lock = threading.Lock()


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == auth_user and auth_data.password == auth_password
    with lock, open(os.path.join(out, "auth.log"), "a") as f:
        f.write(f"{'ok' if ok else 'refused'} {auth_data.login.decode(errors='replace')}\n")
    return AuthResult(success=ok, handled=False, auth_data=auth_data)  # not handled: 535


class Sink:
    async def handle_DATA(self, server, session, envelope):
        reject = os.path.join(out, "reject")
        if os.path.exists(reject):
            with open(reject) as f:
                return f.read().strip() or "451 try again later"
        hold = os.path.join(out, "hold")
        if os.path.exists(hold):
            with open(os.path.join(out, "holding"), "w") as f:
                f.write(str(time.time()))
            try:
                end = time.time() + HOLD_MAX_S
                while os.path.exists(hold) and time.time() < end:
                    await asyncio.sleep(0.02)
            except asyncio.CancelledError:  # the client went away before its answer
                with lock, open(os.path.join(out, "aborted"), "a") as f:
                    f.write(f"{time.time()} {len(envelope.original_content or b'')} bytes\n")
                raise
            finally:
                os.unlink(os.path.join(out, "holding"))
        with lock:
            n = len([f for f in os.listdir(out) if f.endswith(".eml")])
            base = os.path.join(out, "%04d" % n)
            with open(base + ".json", "w") as f:
                json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                           "t": time.time(), "tls": session.ssl is not None,
                           "user": session.auth_data.login.decode()
                           if session.authenticated else None}, f)
            with open(base + ".eml.tmp", "wb") as f:
                f.write(envelope.original_content or envelope.content)
            os.rename(base + ".eml.tmp", base + ".eml")
        return "250 OK"


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


for attempt in range(10):
    chosen = port or free_port()
    # aiosmtpd gives the server 1 s to start by default: too little on a busy two-core machine
    extra = {}
    if tls_context:
        extra.update(tls_context=tls_context, require_starttls=True)
    if auth_user is not None:
        extra.update(authenticator=authenticator, auth_required=True, auth_require_tls=True)
    controller = Controller(Sink(), hostname="127.0.0.1", port=chosen, ready_timeout=60, **extra)
    try:
        controller.start()
        break
    except (OSError, RuntimeError):
        if port or attempt == 9:
            raise
print("ready", chosen, flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
signal.signal(signal.SIGINT, lambda *a: stop.set())
stop.wait()
controller.stop()
