#!/usr/bin/python3
"""The live map in real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core
from web/node_modules) against a running stack: a private redis-server, capture replaying
generated traffic in real time with a GeoIP fixture that places every IPv4 /8 in a country, and
serve. tests/browser/map.mjs asserts that the page connects, its counters rise, arcs are drawn,
the top-country list shows the countries the traffic came from, the timeline was filled from
/api/v1/timeline, and that no console error or CSP violation occurred; the screenshot is kept in
build/test-artifacts/map.png."""
import datetime
import hashlib
import ipaddress
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("browser map")
work = dslib.tmpdir()
os.chmod(work, 0o755)
world = os.environ.get("DS_GEOIP_WORLD", "build/tests/geoip-world.mmdb")
artifacts = os.environ.get("DS_ARTIFACTS", os.path.join(dslib.ROOT, "build", "test-artifacts"))
os.makedirs(artifacts, exist_ok=True)
node_modules = os.path.join(dslib.ROOT, "web", "node_modules")
if not os.path.isdir(os.path.join(node_modules, "playwright-core")):
    print("web/node_modules is missing: tools/setup installs it (npm ci in web/)")
    sys.exit(1)

redis = dslib.Redis()
start = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
DURATION = 180
pcap, truth = dslib.gen(work, extra=["--seed", "11", "--rate", "1500", "--duration",
                                     str(DURATION), "--start", start])
# where the traffic came from, by the fixture's /8 blocks (the ground truth for the top list)
with open(os.path.join(dslib.ROOT, "tests", "fixtures", "geoip", "world.json")) as f:
    blocks = {ipaddress.ip_network(b["network"]): b["cc"] for b in json.load(f)}
v4 = {n.network_address.packed[0]: cc for n, cc in blocks.items() if n.version == 4}
by_cc = {}
for s in truth["sources"]:
    a = ipaddress.ip_address(s["ip"])
    cc = v4.get(a.packed[0]) if a.version == 4 else None
    if cc:
        by_cc[cc] = by_cc.get(cc, 0) + s["packets"]
expected = [cc for cc, _ in sorted(by_cc.items(), key=lambda kv: -kv[1])[:3]]

darknet = sum((["--darknet", d] for d in truth["darknet"]), [])
common = ["--set", "bucket_seconds=10", "--set", "capture.lateness=2",
          "--set", "sensor.location.latitude=35.68", "--set", "sensor.location.longitude=139.76",
          "--set", "sensor.location.label=Tokyo"]
cap = subprocess.Popen([dslib.DARKSCOPE, "capture", "--redis", redis.url, "--sensor", "tokyo-1",
                        *darknet, "--read", pcap, "--speed", "realtime",
                        "--set", f"geoip.city={world}", *common],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
TOKEN = "soc-wall-token"
srv = dslib.Serve(redis, extra=common + [
    "--set", f"web.tokens=wall:soc:{hashlib.sha256(TOKEN.encode()).hexdigest()}"])
# history for the timeline: wait for the first buckets to be written
deadline = time.time() + 60
while time.time() < deadline and not redis.cli("ZRANGE", "ds:v1:idx:tokyo-1", "0", "-1").strip():
    time.sleep(0.5)
time.sleep(12)
# an alert as the aggregator writes them, added every 2 s while the pages are open (the server
# pushes only alerts that arrive while a client is connected), at most 120
stop = threading.Event()


def alerts():
    for n in range(120):
        if stop.wait(2):
            return
        a = {"kind": "infected", "org": "city-a", "org_name": "City A", "host": f"45.67.89.{n}",
             "tool": "mirai", "severity": "medium",
             "t": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        redis.cli("XADD", "ds:v1:alerts", "*", "alert", json.dumps(a))


feeder = threading.Thread(target=alerts)
feeder.start()
for lang, texts in [("en", ["Top countries"]), ("ja", ["感染ホスト"])]:
    shot = os.path.join(artifacts, f"map-{lang}.png" if lang != "en" else "map.png")
    r = subprocess.run(["node", os.path.join(dslib.ROOT, "tests", "browser", "map.mjs"),
                        "--url", f"{srv.base}/?token={TOKEN}&lang={lang}",
                        "--expect-countries", ",".join(expected), "--screenshot", shot,
                        "--timeout", "60", "--expect-timeline",
                        "--expect-alert", "45.67.89.",
                        *sum((["--expect-text", x] for x in texts), [])],
                       capture_output=True, text=True, timeout=180)
    print(r.stdout)
    print(r.stderr, file=sys.stderr)
    c.eq(f"map.mjs passed ({lang})", r.returncode, 0)
    c.true(f"screenshot saved ({shot})", os.path.exists(shot) and os.path.getsize(shot) > 50000)
stop.set()
feeder.join()
cap.terminate()
cap.wait(30)
c.eq("serve still up", srv.proc.poll(), None)
c.done()
