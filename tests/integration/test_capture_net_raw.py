#!/usr/bin/python3
"""Capture the way dist/systemd/darkscope-capture.service runs it: as the darkscope account
from the first instruction, with CAP_NET_RAW as its one capability (ambient), the bounding set
cut down to it and no new privileges — never root, so nothing to drop. setpriv stands in for
systemd here: in two network namespaces of this test's own joined by a veth pair, capture opens
veth-c and counts the TCP SYNs a Python packet socket sends from the other side (a bounded
number), and /proc shows it never held root or any other capability. The namespaces are always
deleted, also on failure. Needs root and the darkscope account (tools/setup creates it); exits
77 (skipped) otherwise."""
import json
import os
import pwd
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

if os.geteuid() != 0:
    print("needs root (network namespaces, setpriv)")
    sys.exit(77)
try:
    pwd.getpwnam("darkscope")
except KeyError:
    print("needs the darkscope account (tools/setup)")
    sys.exit(77)

PACKETS = 50
CAP_NET_RAW = 1 << 13

net = dslib.VethPair(f"dr{os.getpid()}")
c = dslib.Checker("capture with CAP_NET_RAW only")
redis = dslib.Redis()
work = dslib.tmpdir()
os.chmod(work, 0o755)
cap = subprocess.Popen(
    ["ip", "netns", "exec", net.cap,
     "setpriv", "--reuid", "darkscope", "--regid", "darkscope", "--init-groups",
     "--inh-caps", "-all,+net_raw", "--ambient-caps", "-all,+net_raw",
     "--bounding-set", "-all,+net_raw", "--no-new-privs",
     dslib.DARKSCOPE, "capture", "--redis", redis.url, "--sensor", "netraw",
     "--interface", "veth-c", *dslib.EVERYTHING, "--set", f"state_dir={work}",
     "--set", "bucket_seconds=10", "--set", "capture.lateness=1"],
    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

# what the kernel says of the process (ip netns exec and setpriv exec it: the same pid)
status = ""
deadline = time.time() + 10
while time.time() < deadline and cap.poll() is None and "darkscope" not in status:
    time.sleep(0.05)
    try:
        with open(f"/proc/{cap.pid}/status") as f:
            status = f.read()
        with open(f"/proc/{cap.pid}/comm") as f:
            status = f.read() + status
    except FileNotFoundError:
        status = ""
fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
uid = pwd.getpwnam("darkscope").pw_uid
c.eq("its uids (real, effective, saved, fs) are darkscope's",
     fields.get("Uid", "").split(), [str(uid)] * 4)
for key in ("CapEff", "CapPrm", "CapAmb", "CapBnd"):
    c.eq(f"{key}: CAP_NET_RAW only", int(fields.get(key, "0"), 16), CAP_NET_RAW)
c.eq("no new privileges", fields.get("NoNewPrivs", "").strip(), "1")
time.sleep(1)  # the interface is open

# PACKETS TCP SYNs to 198.18.0.0/15 from a packet socket on the other side of the veth
SENDER = r"""
import socket, struct, sys
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
n = int(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("veth-s", 0))
for i in range(n):
    src, dst = bytes([203, 0, 113, 10]), bytes([198, 18, 0, 1 + i % 200])
    tcp = struct.pack("!HHIIBBHHH", 40000 + i, 23, i, 0, 5 << 4, 0x02, 1024, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    eth = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00"  # dst, src, IPv4
    s.send(eth + ip + tcp)
"""
sent = subprocess.run(["ip", "netns", "exec", net.snd, sys.executable, "-c", SENDER,
                       str(PACKETS)], capture_output=True, text=True, timeout=30)
c.eq(f"the sender ran ({sent.stderr.strip()[-200:]})", sent.returncode, 0)
time.sleep(12)  # a bucket closes on the wall clock (10 s + 1 s lateness)
cap.send_signal(signal.SIGTERM)
out, err = cap.communicate(timeout=60)
c.eq(f"capture exits 0 after SIGTERM ({err.strip()[-300:]})", cap.returncode, 0)
c.true("it never switched users (it had nothing to drop)", "privs:" not in err)
s = dslib.summary(redis)
c.eq("every SYN counted", s["packets"], PACKETS)
c.eq("as scans", s["by_class"].get("scan"), PACKETS)
sensor = json.loads(redis.cli("HGET", "ds:v1:sensors", "netraw") or "null")
c.eq("the sensor record names the interface",
     [x.get("name") for x in (sensor or {}).get("sources", [])], ["veth-c"])
c.done()
