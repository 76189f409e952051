#!/usr/bin/python3
"""HTTPS and wss:// when web.tls.cert and web.tls.key are set (a self-signed certificate made by
openssl for the test); half a TLS configuration is refused with exit status 2."""
import asyncio
import json
import os
import ssl
import subprocess
import sys

import websockets

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("serve TLS")
work = dslib.tmpdir()
os.chmod(work, 0o755)
cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                "-days", "1", "-keyout", key, "-out", cert], check=True, capture_output=True)
redis = dslib.Redis()
srv = dslib.Serve(redis, scheme="https", extra=["--set", f"web.tls.cert={cert}",
                                                "--set", f"web.tls.key={key}"])
status, headers, body = srv.get("/api/v1/sensors")
c.eq("HTTPS API answers", status, 200)
c.eq("with JSON", json.loads(body), {"sensors": []})
c.true("strict CSP over TLS too", "default-src 'self'" in
       headers.get("content-security-policy", ""))
served = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", srv.port)))
c.eq("the configured certificate is served", served, ssl.PEM_cert_to_DER_cert(open(cert).read()))


async def hello():
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    async with websockets.connect(srv.ws_base + "/live", ssl=ctx) as ws:
        return json.loads(await ws.recv())
h = asyncio.run(hello())
c.eq("wss:// hello", (h.get("type"), h.get("v")), ("hello", 1))
r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                    f"http://127.0.0.1:{srv.port}/api/v1/sensors"], capture_output=True, text=True)
c.true(f"plain HTTP on the TLS port is not served ({r.stdout})", r.stdout != "200")
srv.stop()
r = dslib.run(["serve", "--redis", redis.url, "--listen", f"127.0.0.1:{dslib.free_port()}",
               "--set", f"web.tls.cert={cert}"], check=False, timeout=20)
c.eq("a certificate without a key exits 2", r.returncode, 2)
c.true("naming both keys", "web.tls.cert" in r.stderr and "web.tls.key" in r.stderr)
c.done()
