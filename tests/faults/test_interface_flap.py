#!/usr/bin/python3
"""Fault: capture's interface removed and re-added again and again, for 0.2 s to 12 s. Each
time capture notices the loss at once, reopens the interface with its backoff (250 ms doubling
to 10 s) and counts the generated traffic replayed after each return — every packet of every
replay, none lost. The time from the interface's return to capture's "reopened" is measured and
held to the backoff's bound. The single loss with shared captures and the unprivileged reopen is
tests/integration/test_interface_reopen.py. Namespaces are this test's own and are always
deleted. Needs root; exits 77 (skipped) otherwise. Figures for docs/reliability.md are
printed."""
import calendar
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import dslib  # noqa: E402

if os.geteuid() != 0:
    print("the interface flap test needs root")
    sys.exit(77)

DOWN_S = (0.2, 1.0, 3.0, 8.0, 12.0)
BACKOFF_MAX_S = 10.0
SLACK_S = 3.0  # scheduling and the 100 ms steps of the backoff's sleep
WAIT_S = 60

net = dslib.VethPair(f"df{os.getpid()}")
c = dslib.Checker("interface flap")
work = dslib.tmpdir()
pcap, truth = dslib.gen(work, extra=["--seed", "4", "--packets", "500", "--rate", "1000"])
darknet = sum((["--darknet", d] for d in truth["darknet"]), [])
redis = dslib.Redis()
cap = subprocess.Popen(["ip", "netns", "exec", net.cap, dslib.DARKSCOPE, "capture", "--redis",
                        redis.url, "--sensor", "flap", "--interface", "veth-c", *darknet,
                        "--set", "bucket_seconds=10", "--set", "capture.lateness=1"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
lines = []
reader = threading.Thread(target=lambda: lines.extend(cap.stderr), daemon=True)
reader.start()


def stamp(line):
    return calendar.timegm(time.strptime(line[:19], "%Y-%m-%dT%H:%M:%S")) + int(line[20:23]) / 1000


def logged(text):
    return [stamp(x) for x in list(lines) if text in x]


def wait_for(cond, what):
    deadline = time.time() + WAIT_S
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    c.true(f"timed out waiting for {what}", False)
    return False


def replay():
    dslib.sh("ip", "netns", "exec", net.snd, "timeout", "60", "tcpreplay", "-i", "veth-s",
             "--pps", "2000", pcap)


wait_for(lambda: logged("reading interface veth-c"), "capture to open its interface")
replay()
cycles = []
for down in DOWN_S:
    n = len(logged("reopened"))
    gone = time.time()
    net.link_down()
    wait_for(lambda: len(logged("reopening")) > n, "capture to notice the loss")
    noticed = logged("reopening")[-1] - gone if len(logged("reopening")) > n else None
    time.sleep(down)
    c.true(f"capture survives {down} s without its interface", cap.poll() is None)
    net.link_up()
    back = time.time()
    if not wait_for(lambda: len(logged("reopened")) > n, f"the reopen after {down} s"):
        break
    recovered = logged("reopened")[-1] - back
    cycles.append({"down_s": down, "noticed_s": round(noticed, 2) if noticed is not None else None,
                   "reopened_after_return_s": round(recovered, 2)})
    c.true(f"reopened {recovered:.2f} s after a {down} s absence (bound "
           f"{min(max(down, 0.25), BACKOFF_MAX_S) + SLACK_S:.1f} s)",
           recovered <= min(max(down, 0.25), BACKOFF_MAX_S) + SLACK_S)
    replay()
time.sleep(1)
cap.send_signal(signal.SIGTERM)
try:
    cap.wait(30)
except subprocess.TimeoutExpired:
    cap.kill()
    cap.wait()
reader.join(10)
c.eq("exit status", cap.returncode, 0)
c.eq("every loss reopened", len(cycles), len(DOWN_S))
s = dslib.summary(redis)
c.eq("every replayed packet counted", s["packets"], (len(DOWN_S) + 1) * truth["packets"])
c.eq("bytes", s["bytes"], (len(DOWN_S) + 1) * truth["bytes"])
sensor = json.loads(redis.cli("HGET", "ds:v1:sensors", "flap"))
c.eq("reopens counted in the sensor record", sensor["sources"][0]["reopens"], len(DOWN_S))
for x in cycles:
    print("figure:", x)
c.done()
