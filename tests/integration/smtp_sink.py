#!/usr/bin/python3
"""A real SMTP server for tests (Debian's python3-aiosmtpd) on loopback: every accepted message
is written to DIR/NNNN.eml with its envelope in DIR/NNNN.json. While DIR/reject exists, DATA is
answered with the code and text in that file (e.g. "451 try again later") instead of 250.

usage: smtp_sink.py DIR PORT   (runs until SIGTERM)"""
import json
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller

out, port = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)
lock = threading.Lock()


class Sink:
    async def handle_DATA(self, server, session, envelope):
        reject = os.path.join(out, "reject")
        if os.path.exists(reject):
            with open(reject) as f:
                return f.read().strip() or "451 try again later"
        with lock:
            n = len([f for f in os.listdir(out) if f.endswith(".eml")])
            base = os.path.join(out, "%04d" % n)
            with open(base + ".json", "w") as f:
                json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos}, f)
            with open(base + ".eml.tmp", "wb") as f:
                f.write(envelope.original_content or envelope.content)
            os.rename(base + ".eml.tmp", base + ".eml")
        return "250 OK"


controller = Controller(Sink(), hostname="127.0.0.1", port=port)
controller.start()
print("ready", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
signal.signal(signal.SIGINT, lambda *a: stop.set())
stop.wait()
controller.stop()
