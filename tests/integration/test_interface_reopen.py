#!/usr/bin/python3
"""A capture that loses its interface reopens it (with backoff, as an unprivileged process that
kept only CAP_NET_RAW) and counts what arrives once the interface is back. Namespaces are this
test's own and are always deleted. Needs root; exits 77 (skipped) otherwise."""
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

net = dslib.VethPair(f"dr{os.getpid()}")
c = dslib.Checker("interface reopen")
redis = dslib.Redis()
want = {n: json.load(open(os.path.join(dslib.ROOT, "tests", "fixtures", "pcaps", n + ".json")))
        for n in ("synscan.pcap", "tcp_0_1000_20190821.pcap")}
cap = subprocess.Popen(["ip", "netns", "exec", net.cap, dslib.DARKSCOPE, "capture", "--redis",
                        redis.url, "--sensor", "reopen", "--interface", "veth-c",
                        *dslib.EVERYTHING, "--set", "bucket_seconds=10",
                        "--set", "capture.lateness=1"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
time.sleep(1.5)
net.replay("synscan.pcap")
time.sleep(0.5)
net.link_down()
time.sleep(3)
c.true("capture survives the loss of its interface", cap.poll() is None)
net.link_up()
time.sleep(3)  # the reopen backoff is at most a few seconds this early
net.replay("tcp_0_1000_20190821.pcap")
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
