#!/usr/bin/python3
"""Webhooks: each digest is POSTed as JSON to the organisation's webhook, signed with
HMAC-SHA256 under its secret (X-Darkscope-Signature), retried while the receiver fails (here
HTTP 503 twice) and delivered once, with the same delivery id on every attempt."""
import hashlib
import hmac
import http.server
import json
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("notify webhook")
work = dslib.tmpdir()
os.chmod(work, 0o755)
redis = dslib.Redis()
SECRET = "whsec-test-4711"
secret_file = os.path.join(work, "secret")
with open(secret_file, "w") as f:
    f.write(SECRET + "\n")
os.chmod(secret_file, 0o644)
attempts = []
lock = threading.Lock()


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            attempts.append((self.path, dict(self.headers), body))
            n = len(attempts)
        self.send_response(503 if n <= 2 else 200)
        self.end_headers()

    def log_message(self, *a):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=server.serve_forever, daemon=True).start()
port = server.server_address[1]
subs = os.path.join(work, "subs.json")
with open(subs, "w") as f:
    json.dump({"organisations": [{"id": "city-a", "name": "City A", "livenet": ["45.67.89.0/24"],
                                  "contacts": [{"email": "soc@city-a.example"}],
                                  "webhooks": [{"url": f"http://127.0.0.1:{port}/hook",
                                                "secret_file": secret_file}]}]}, f)
for host in ("45.67.89.10", "45.67.89.11"):
    redis.cli("XADD", "ds:v1:alerts", "*", "alert", json.dumps(
        {"id": f"city-a:infected:{host}:1#1", "kind": "infected", "org": "city-a", "host": host,
         "packets": 9}))
closed = dslib.free_port()  # no SMTP server: the email fails on its own, dead-lettered
r = subprocess.run([dslib.DARKSCOPE, "notify", "--once", "--redis", redis.url, "--subscribers",
                    subs, "--set", f"notify.smtp.url=smtp://127.0.0.1:{closed}",
                    "--set", "notify.digest=0", "--set", "notify.max_attempts=4",
                    "--set", "notify.retry_max=1s", "--set", "state_dir=" + work],
                   capture_output=True, text=True, timeout=120)
server.shutdown()
c.eq("notify --once exits 0", r.returncode, 0)
c.eq("two refusals, then one delivery", len(attempts), 3)
deliveries = {a[1].get("X-Darkscope-Delivery") for a in attempts}
c.eq("the same delivery id on every attempt", len(deliveries), 1)
path, headers, body = attempts[-1] if attempts else ("", {}, b"")
want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
c.eq("signed with HMAC-SHA256 of the body", headers.get("X-Darkscope-Signature"), want)
c.true("JSON body", headers.get("Content-Type", "").startswith("application/json"))
doc = json.loads(body) if body else {}
c.eq("holding the digest's alerts", sorted(a["host"] for a in doc.get("alerts", [])),
     ["45.67.89.10", "45.67.89.11"])
c.eq("for the organisation", doc.get("org"), "city-a")
c.true("the secret is never logged", SECRET not in r.stderr + r.stdout)
dead = json.loads(dslib.run(["notify", "--dead-letters", "--redis", redis.url]).stdout)
c.eq("the email (no SMTP server) is a dead letter of its own; the webhook is not",
     [d.get("channel") for d in dead], ["email"])
c.done()
