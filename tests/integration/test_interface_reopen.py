#!/usr/bin/python3
"""A capture that loses its interface reopens it (with backoff, as an unprivileged process that
kept only CAP_NET_RAW) and counts what arrives once the interface is back. Namespaces are this
test's own and are always deleted. Needs root; exits 77 (skipped) otherwise."""
import atexit
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

if os.geteuid() != 0:
    print("interface reopen test needs root")
    sys.exit(77)

tag = f"dr{os.getpid()}"
SND, CAP = f"{tag}-snd", f"{tag}-cap"
c = dslib.Checker("interface reopen")


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def cleanup():
    for ns in (SND, CAP):
        sh("ip", "netns", "del", ns, check=False)


def link_up():
    sh("ip", "link", "add", "veth-s", "netns", SND, "type", "veth", "peer", "name", "veth-c",
       "netns", CAP)
    for ns, dev in ((SND, "veth-s"), (CAP, "veth-c")):
        sh("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")


def replay(name):
    r = sh("ip", "netns", "exec", SND, "timeout", "60", "tcpreplay", "-i", "veth-s", "--pps",
           "20000", os.path.join(dslib.PCAPS, name))
    return r.stdout


atexit.register(cleanup)
cleanup()
for ns in (SND, CAP):
    sh("ip", "netns", "add", ns)
    sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
       "net.ipv6.conf.default.disable_ipv6=1")
link_up()
redis = dslib.Redis()
want = {n: json.load(open(os.path.join(dslib.ROOT, "tests", "fixtures", "pcaps", n + ".json")))
        for n in ("synscan.pcap", "tcp_0_1000_20190821.pcap")}
cap = subprocess.Popen(["ip", "netns", "exec", CAP, dslib.DARKSCOPE, "capture", "--redis",
                        redis.url, "--sensor", "reopen", "--interface", "veth-c",
                        *dslib.EVERYTHING, "--set", "bucket_seconds=10",
                        "--set", "capture.lateness=1"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
time.sleep(1.5)
replay("synscan.pcap")
time.sleep(0.5)
sh("ip", "netns", "exec", SND, "ip", "link", "del", "veth-s")  # both ends go
time.sleep(3)
c.true("capture survives the loss of its interface", cap.poll() is None)
link_up()
time.sleep(3)  # the reopen backoff is at most a few seconds this early
replay("tcp_0_1000_20190821.pcap")
time.sleep(1)
cap.send_signal(signal.SIGTERM)
out, err = cap.communicate(timeout=30)
c.eq("exit status", cap.returncode, 0)
c.true(f"the loss and the reopen are logged: {err[-600:]!r}", "reopening" in err and "reopened" in err)
s = dslib.summary(redis)
c.eq("packets before and after the interface came back",
     s["packets"], sum(w["expect"]["packets"] for w in want.values()))
c.eq("nmap probes (before)", s["by_tool"]["nmap"], want["synscan.pcap"]["expect"]["by_tool"]["nmap"])
c.eq("masscan probes (after)", s["by_tool"]["masscan"],
     want["tcp_0_1000_20190821.pcap"]["expect"]["by_tool"]["masscan"])
sensor = json.loads(redis.cli("HGET", "ds:v1:sensors", "reopen"))
c.true(f"reopens counted in the sensor record: {sensor['sources']}",
       sensor["sources"][0]["reopens"] >= 1)
c.done()
