#!/usr/bin/python3
"""End to end with real scanners nobody here wrote. Two network namespaces of this test's own
("scan" and "dark") joined by a veth pair; `darkscope capture --interface` listens on the dark
side, where a blackhole route keeps the darknet prefix silent. From the scan side, Debian's
zmap, masscan and nmap -sS each scan the darknet /24 (bounded: 256 targets, at most 1,000
packets per second, a fixed number of probes), each from its own address, then tcpreplay sends
two real captures across the veth. Ground truth is each scanner's own report (zmap's metadata
file, masscan's packet trace, nmap's "Raw packets sent") and the captures' tshark fixtures.

Checked: packets counted per source and per tool, each scanner's source attributed to its tool,
an infected-host incident per scanner from `darkscope aggregate` (subscriber ranges cover the
scan side), the email `darkscope notify` delivers to a real SMTP server (aiosmtpd), and the
events a websocket client of `darkscope serve` saw. Nothing leaves the namespaces; they are
deleted at exit, also on failure. Needs root (CI runs as root); exits 77 (skipped) otherwise."""
import asyncio
import email
import email.policy
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import dslib  # noqa: E402

if os.geteuid() != 0:
    print("the real-scanner test needs root (network namespaces)")
    sys.exit(77)
for tool in ("zmap", "masscan", "nmap", "tcpreplay"):
    if shutil.which(tool) is None:  # tools/setup installs them: missing is a set-up error
        print(f"{tool} is not installed (tools/setup installs it)")
        sys.exit(1)

import websockets  # noqa: E402

DARKNET = "198.19.7.0/24"  # the telescope (RFC 2544 benchmarking space, only in our namespaces)
GATEWAY = "198.18.1.1"     # the dark side's address on the veth
SCANNERS = {"zmap": "198.18.1.10", "masscan": "198.18.1.11", "nmap": "198.18.1.12"}
REPLAYS = ["amp.TCP.reflection.SYNACK.pcap", "tcp_0_1000_20190821.pcap"]
RATE = 500  # packets per second, each scanner
BUCKET = 20  # seconds; the scans (about 8 s) start just after a bucket boundary, so each
             # scanner's probes share one bucket and its incident's distinct addresses are whole

c = dslib.Checker("e2e scanners")
work = dslib.tmpdir()
os.chmod(work, 0o755)
tag = f"dse{os.getpid() % 100000}"
SCAN, DARK = f"{tag}-scan", f"{tag}-dark"


def sh(*args, check=True, timeout=60):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {r.returncode}: {r.stderr}")
    return r


def netns(ns, *args, **kw):
    return sh("ip", "netns", "exec", ns, *args, **kw)


def delete_namespaces():
    for ns in (SCAN, DARK):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


# --- the namespaces ------------------------------------------------------------------------
import atexit  # noqa: E402
atexit.register(delete_namespaces)
delete_namespaces()
for ns in (SCAN, DARK):
    sh("ip", "netns", "add", ns)
    netns(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
          "net.ipv6.conf.default.disable_ipv6=1")
    netns(ns, "ip", "link", "set", "lo", "up")
sh("ip", "link", "add", "veth-s", "netns", SCAN, "type", "veth", "peer", "name", "veth-d",
   "netns", DARK)
netns(SCAN, "ip", "addr", "add", SCANNERS["nmap"] + "/24", "dev", "veth-s")
netns(DARK, "ip", "addr", "add", GATEWAY + "/24", "dev", "veth-d")
for ns, dev in ((SCAN, "veth-s"), (DARK, "veth-d")):
    netns(ns, "ip", "link", "set", dev, "up")
# the dark side forwards nothing and answers nothing for the darknet
netns(DARK, "sysctl", "-qw", "net.ipv4.ip_forward=0")
netns(DARK, "ip", "route", "add", "blackhole", DARKNET)
netns(SCAN, "ip", "route", "add", DARKNET, "via", GATEWAY)
# the scan side has no other route: nothing it sends can leave the namespaces
routes = netns(SCAN, "ip", "-4", "route", "show").stdout
c.eq("the scan side's only routes are the veth and the darknet",
     sorted(line.split()[0] for line in routes.splitlines()), ["198.18.1.0/24", DARKNET])
gw_mac = netns(DARK, "cat", "/sys/class/net/veth-d/address").stdout.strip()
scan_mac = netns(SCAN, "cat", "/sys/class/net/veth-s/address").stdout.strip()

# --- the servers ---------------------------------------------------------------------------
redis = dslib.Redis()
mail_dir = os.path.join(work, "mail")
smtp_port = dslib.SmtpSink(mail_dir).port

subs = os.path.join(work, "subscribers.json")
with open(subs, "w") as f:
    json.dump({"organisations": [
        {"id": "lab", "name": "Scanner Lab", "livenet": ["198.18.1.0/24"],
         "contacts": [{"email": "soc@lab.example", "lang": "en"}]}]}, f)
# 198.18.0.0/15 is reserved space, which the default bogon list never alerts on: this test's
# list is the default without it
bogons = os.path.join(work, "bogons.txt")
with open(os.path.join(dslib.ROOT, "aggregator", "bogons.txt")) as src, open(bogons, "w") as f:
    kept = [line for line in src if not line.startswith("198.18.")]
    f.writelines(kept)
c.eq("the test's bogon list drops exactly the benchmarking /15",
     sum(1 for line in open(os.path.join(dslib.ROOT, "aggregator", "bogons.txt"))) - len(kept), 1)

srv = dslib.Serve(redis, extra=["--set", "web.ring_events=65536"])
# everything the scan side sends counts (the replayed captures go anywhere); what the dark side
# itself sends to the scanners' addresses (the packet that ends masscan) does not
cap_conf = os.path.join(work, "capture.json")
with open(cap_conf, "w") as f:
    json.dump({"darknet": ["0.0.0.0/0"], "darknet_exclude": ["198.18.1.0/24"]}, f)
cap = subprocess.Popen(["ip", "netns", "exec", DARK, dslib.DARKSCOPE, "capture", "--config",
                        cap_conf, "--redis", redis.url, "--sensor", "e2e", "--interface", "veth-d",
                        "--set", f"bucket_seconds={BUCKET}",
                        "--set", "capture.lateness=1",
                        "--set", "live.max_events_per_second=20000",
                        "--set", "geoip.city=" + os.environ["DS_GEOIP_WORLD"]],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
atexit.register(cap.kill)

# live.max_events_per_second allows bursts of a quarter second of it (5,000): more than any of
# the scans, so the map shows every probe (the replays after them are sampled)
# a websocket client of serve, reading every event until told to stop
ws_events = []
ws_stats = []
ws_stop = threading.Event()
ws_ready = threading.Event()


async def ws_reader():
    async with websockets.connect(srv.ws_base + "/live", max_size=None) as ws:
        while not ws_stop.is_set():
            try:
                m = json.loads(await asyncio.wait_for(ws.recv(), timeout=0.5))
            except asyncio.TimeoutError:
                continue
            if m["type"] == "hello":
                ws_ready.set()
            elif m["type"] == "events":
                ws_events.extend(m["events"])
            elif m["type"] == "stats":
                ws_stats.append(m)


ws_thread = threading.Thread(target=lambda: asyncio.run(ws_reader()), daemon=True)
ws_thread.start()
c.true("the websocket client got its hello", ws_ready.wait(15))
time.sleep(2)  # capture has opened the interface
c.true(f"capture is running: {cap.stderr.read() if cap.poll() is not None else ''}",
       cap.poll() is None)

# --- the scans -----------------------------------------------------------------------------
sent = {}
empty = os.path.join(work, "empty-blocklist")  # zmap's default list covers 198.18.0.0/15
open(empty, "w").close()
meta = os.path.join(work, "zmap.json")
time.sleep(BUCKET - time.time() % BUCKET + 0.2)
t0 = time.time()
netns(SCAN, "timeout", "60", "zmap", "-p", "80", DARKNET, "-i", "veth-s", "-G", gw_mac,
      "-S", SCANNERS["zmap"], "-b", empty, "-r", str(RATE), "-c", "1", "-m", meta,
      "-o", os.path.join(work, "zmap.csv"), "-q", timeout=90)
sent["zmap"] = json.load(open(meta))["total_sent"]

# masscan 1.3.2 only leaves its wait loop when a packet arrives: one ARP for its address does
masscan_out = os.path.join(work, "masscan.txt")  # the packet trace (stdout)
masscan_err = os.path.join(work, "masscan.err")  # its status lines (stderr)
masscan = subprocess.Popen(["ip", "netns", "exec", SCAN, "timeout", "60", "masscan", DARKNET,
                            "-p", "443,8080", "--rate", str(RATE), "--adapter", "veth-s",
                            "--adapter-ip", SCANNERS["masscan"], "--adapter-mac", scan_mac,
                            "--router-mac", gw_mac, "--wait", "1", "--packet-trace"],
                           stdout=open(masscan_out, "w"), stderr=open(masscan_err, "w"))
deadline = time.time() + 60
while masscan.poll() is None and time.time() < deadline:
    time.sleep(1)
    if "100.00% done" in open(masscan_err, errors="replace").read():
        netns(DARK, "/usr/bin/python3", "-c", "import socket; socket.socket(socket.AF_INET, "
              f"socket.SOCK_DGRAM).sendto(b'x', ('{SCANNERS['masscan']}', 9))")
masscan.wait(70)
c.eq("masscan exit status", masscan.returncode, 0)
trace = open(masscan_out, errors="replace").read()
sent["masscan"] = len(re.findall(r"SENT \([\d.]+\) TCP +\[" + re.escape(SCANNERS["masscan"]) +
                                 r"\]:\d+ +> \[198\.19\.7\.\d+\]:\d+ +SYN", trace))

r = netns(SCAN, "timeout", "60", "nmap", "-sS", "-p", "22,23", "-Pn", "-n", "-e", "veth-s",
          "--max-retries", "0", "--min-rate", str(RATE), "--max-rate", "1000",
          "--initial-rtt-timeout", "50ms", "--max-rtt-timeout", "100ms", "-v", DARKNET,
          timeout=90)
m = re.search(r"Raw packets sent: (\d+)", r.stdout)
sent["nmap"] = int(m.group(1)) if m else -1
scan_seconds = time.time() - t0

skipped_before_replay = max((st["client"]["skipped"] for st in ws_stats), default=0)
replayed = {}
for name in REPLAYS:
    out = netns(SCAN, "timeout", "60", "tcpreplay", "-i", "veth-s", "--pps", "20000",
                os.path.join(dslib.PCAPS, name), timeout=90).stdout
    m = re.search(r"Successful packets:\s+(\d+)", out)
    replayed[name] = int(m.group(1)) if m else -1
    want = json.load(open(os.path.join(dslib.ROOT, "tests", "fixtures", "pcaps", name + ".json")))
    c.eq(f"tcpreplay sent every frame of {name}", replayed[name], want["expect"]["frames"])

# every scanner reported what the /24 and its ports make: 256 targets × ports
c.eq("zmap's own count of probes", sent["zmap"], 256)
c.eq("masscan's own trace of probes", sent["masscan"], 512)
c.eq("nmap's own count of raw packets", sent["nmap"], 512)

time.sleep(3)  # the last live batch reaches the websocket client
cap.send_signal(signal.SIGTERM)
try:
    _, cap_err = cap.communicate(timeout=30)
except subprocess.TimeoutExpired:
    cap.kill()
    _, cap_err = cap.communicate()
c.eq(f"capture exit status after SIGTERM ({cap_err[-500:]!r})", cap.returncode, 0)
time.sleep(1)
ws_stop.set()
ws_thread.join(10)

# --- what capture counted ------------------------------------------------------------------
s = dslib.summary(redis, top=20)
fixtures = [json.load(open(os.path.join(dslib.ROOT, "tests", "fixtures", "pcaps", n + ".json")))
            ["expect"] for n in REPLAYS]
scanned = sum(sent.values())
c.eq("packets: the scanners' reports plus the captures' tshark counts", s["packets"],
     scanned + sum(f["packets"] for f in fixtures))
c.eq("scan-class packets", s["by_class"]["scan"],
     scanned + sum(f["by_class"]["scan"] for f in fixtures))
c.eq("backscatter", s["by_class"]["backscatter"], sum(f["by_class"]["backscatter"] for f in fixtures))
for tool in ("zmap", "masscan", "nmap"):
    # a tool's per-packet rule can match another's packets by chance (a 16-bit IP ID): at least
    # every probe of its own, at most a handful more
    want = sent[tool] + sum(f["by_tool"][tool] for f in fixtures)
    c.true(f"by_tool.{tool}: {s['by_tool'][tool]} counts every one of the {want} probes",
           want <= s["by_tool"][tool] <= want + 5)
chance = {}  # per scanner: packets that another tool's rule also matched by chance (16-bit IDs)
for tool, ip in SCANNERS.items():
    src = dslib.source(redis, ip)
    chance[tool] = {t: n for t, n in src["tool_matches"].items() if t != tool and n}
    c.eq(f"{tool}: packets from {ip}", src["packets"], sent[tool])
    c.eq(f"{tool}: {ip} attributed to {tool}", src["tool"], tool)
    c.eq(f"{tool}: every packet a scan", src["by_class"]["scan"], sent[tool])
    c.eq(f"{tool}: pure SYNs", src["syn"], sent[tool])
    c.eq(f"{tool}: every probe matches the {tool} rule", src["tool_matches"][tool], sent[tool])

# --- the aggregator's incidents ------------------------------------------------------------
agg = dslib.run(["aggregate", "--once", "--redis", redis.url, "--subscribers", subs,
                 "--set", "aggregate.bogons=" + bogons, "--set", "aggregate.wait=0"])
alerts = json.loads(dslib.run(["query", "alerts", "--redis", redis.url, "--org", "lab"]).stdout)
infected = {a["host"]: a for a in alerts if a["kind"] == "infected"}
c.eq("one infected-host incident per scanner, nothing else for the lab",
     sorted((a["kind"], a["host"]) for a in alerts),
     sorted(("infected", ip) for ip in SCANNERS.values()))
for tool, ip in SCANNERS.items():
    a = infected.get(ip, {})
    c.eq(f"{tool}: incident packets", a.get("packets"), sent[tool])
    c.eq(f"{tool}: incident tool", a.get("tool"), tool)
    c.eq(f"{tool}: incident org", a.get("org"), "lab")
    # past 16 addresses an estimate (256 registers, 6.5 % standard error): within 3 errors
    c.near(f"{tool}: distinct darknet addresses hit", a.get("darknet_addresses", 0), 256, 0.2)

# --- the email -----------------------------------------------------------------------------
dslib.run(["notify", "--once", "--redis", redis.url, "--subscribers", subs,
           "--set", f"notify.smtp.url=smtp://127.0.0.1:{smtp_port}", "--set", "notify.smtp.tls=off",
           "--set", "notify.from=darkscope@telescope.example", "--set", "notify.digest=0",
           "--set", "state_dir=" + work])
mails = []
for path in sorted(glob.glob(os.path.join(mail_dir, "*.eml"))):
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    mails.append((msg, json.load(open(path[:-4] + ".json"))))
c.eq("one digest for the lab", len(mails), 1)
if mails:
    msg, env = mails[0]
    c.eq("sent to the lab's contact", env["to"], ["soc@lab.example"])
    body = msg.get_body(preferencelist=("plain",)).get_content()
    for tool, ip in SCANNERS.items():
        c.true(f"the email names {ip}", ip in body)
    csv_parts = [p for p in msg.iter_attachments() if p.get_content_type() == "text/csv"]
    c.eq("a CSV attachment", len(csv_parts), 1)
    if csv_parts:
        rows = csv_parts[0].get_content()
        for ip in SCANNERS.values():
            c.true(f"the CSV lists {ip}", ip in rows)

# --- the websocket client ------------------------------------------------------------------
seen = {ip: [e for e in ws_events if e["src"] == ip] for ip in SCANNERS.values()}
c.eq("the websocket client skipped no event of the scans", skipped_before_replay, 0)
for tool, ip in SCANNERS.items():
    # every probe is below live.max_events_per_second: the map shows each one
    c.eq(f"{tool}: events the map client saw from {ip}", len(seen[ip]), sent[tool])
    c.true(f"{tool}: every event class scan", all(e["class"] == "scan" for e in seen[ip]))
    # an event carries the first fingerprint its packet matches (docs/websocket-protocol.md): a
    # probe that another rule also matched by chance may carry that one instead
    other = [e["tool"] for e in seen[ip] if e["tool"] != tool]
    c.true(f"{tool}: events labelled otherwise ({other}) are chance matches capture counted "
           f"({chance[tool]})", set(other) <= set(chance[tool])
           and len(other) <= sum(chance[tool].values()))
c.eq("zmap's events go to port 80", {e["dport"] for e in seen[SCANNERS["zmap"]]}, {80})
c.eq("masscan's events go to 443 and 8080", {e["dport"] for e in seen[SCANNERS["masscan"]]},
     {443, 8080})
c.eq("nmap's events go to 22 and 23", {e["dport"] for e in seen[SCANNERS["nmap"]]}, {22, 23})
c.true(f"the stats showed scan traffic while the scanners ran",
       any(st["by_class"]["scan"] > 0 for st in ws_stats))

print(f"scanners sent {sent}, replayed {replayed}; scans took {scan_seconds:.1f} s")
if os.environ.get("DS_E2E_DEBUG"):
    for st in ws_stats:
        print(st["t"], st["packets_per_second"], st["events_per_second"], st["client"])
c.done()
