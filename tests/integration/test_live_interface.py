#!/usr/bin/python3
"""Live capture on an interface: two network namespaces of this test's own joined by a veth pair;
tcpreplay sends a real capture (zmap.pcap) from one side, `darkscope capture --interface` counts
it on the other. Counts must equal tshark's reading of the file (tests/fixtures/pcaps). Also:
root is dropped after the interface is opened (only CAP_NET_RAW kept), an idle interface still
produces buckets, and the kernel counters reach the sensor record. Then a generated capture of
thousands of sources is counted by two captures on the interface at once, one thread and two
(capture.threads_per_interface): both equal the generator's truth and each other, buckets closed
by the wall clock included. The namespaces are always deleted, also on failure. Needs root (CI runs as root); exits 77 (skipped) otherwise."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

if os.geteuid() != 0:
    print("live interface test needs root")
    sys.exit(77)

net = dslib.VethPair(f"ds{os.getpid()}")
c = dslib.Checker("live interface")
redis = dslib.Redis()
name = "zmap.pcap"
want = json.load(open(os.path.join(dslib.ROOT, "tests", "fixtures", "pcaps", name + ".json")))
cap = subprocess.Popen(["ip", "netns", "exec", net.cap, dslib.DARKSCOPE, "capture", "--redis",
                        redis.url, "--sensor", "veth", "--interface", "veth-c",
                        *dslib.EVERYTHING, "--set", "bucket_seconds=10",
                        "--set", "capture.lateness=1"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
time.sleep(1.5)
status = open(f"/proc/{cap.pid}/status").read() if cap.poll() is None else ""
# the capture process is the child of `ip netns exec` (which execs it: same pid)
fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
c.true(f"capture dropped root: Uid {fields.get('Uid', '?')!r}",
       fields.get("Uid", "0").split()[0] != "0")
c.eq("only CAP_NET_RAW kept (effective)", fields.get("CapEff", "").strip(), "0000000000002000")
replay = net.replay(name)
c.true(f"tcpreplay sent the file: {replay[-300:]!r}",
       f"Successful packets:        {want['expect']['frames']}" in replay)
time.sleep(12)  # idle: the wall clock must close buckets with no packets arriving
idle = dslib.summary(redis)
c.eq("buckets closed by the wall clock while idle", idle["packets"], want["expect"]["packets"])
cap.send_signal(signal.SIGTERM)
out, err = cap.communicate(timeout=30)
c.eq("exit status after SIGTERM", cap.returncode, 0)
s = dslib.summary(redis)
for key in ("packets", "bytes"):
    c.eq(key, s[key], want["expect"][key])
for group in ("by_class", "by_proto", "by_tool"):
    for k, v in want["expect"][group].items():
        c.eq(f"{group}.{k}", s[group][k], v)
c.eq("non_ip", s["ignored"]["non_ip"], want["expect"]["ignored"]["non_ip"])
c.true("more buckets than the replay spans (idle ones too)", s["buckets"] >= 2)
sensor = json.loads(redis.cli("HGET", "ds:v1:sensors", "veth"))
src = sensor["sources"][0]
c.eq("sensor record names the interface", src["name"], "veth-c")
c.eq("frames seen", src["frames"], want["expect"]["frames"])
c.true(f"kernel counters exported: {src}", src["kernel_received"] >= want["expect"]["frames"]
       and src["kernel_dropped"] == 0)

# aggregation threads on an interface: two captures of the same packets, one and two threads
work = dslib.tmpdir()
pcap, truth = dslib.gen(work, extra=["--seed", "11", "--packets", "20000", "--sources", "4000",
                                     "--mix", "edge=0"])
darknet = sum((["--darknet", d] for d in truth["darknet"]), [])
caps = {}
for sensor, threads in (("one", 1), ("lanes", 2)):
    caps[sensor] = subprocess.Popen(
        ["ip", "netns", "exec", net.cap, dslib.DARKSCOPE, "capture", "--redis", redis.url,
         "--sensor", sensor, "--interface", "veth-c", *darknet, "--set", "bucket_seconds=10",
         "--set", "capture.lateness=1", "--set", f"capture.threads_per_interface={threads}",
         "--set", "log.level=debug"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
time.sleep(1.5)
replay = net.replay(pcap, pps=5000)
c.true(f"tcpreplay sent the generated file: {replay[-300:]!r}",
       f"Successful packets:        {truth['frames']}" in replay)
time.sleep(12)  # idle again: the lanes' parts of the last buckets go out on the wall clock
idle = {sensor: dslib.summary(redis, sensor=sensor)["packets"] for sensor in caps}
c.eq("both captures closed every bucket while idle", idle, {"one": truth["packets"],
                                                            "lanes": truth["packets"]})
logs = {}
for sensor, p in caps.items():
    p.send_signal(signal.SIGTERM)
    logs[sensor] = p.communicate(timeout=30)[1]
    c.eq(f"{sensor}: exit status after SIGTERM", p.returncode, 0)
c.true("the second capture aggregates on two threads", "2 aggregation threads" in logs["lanes"])
got = {sensor: dslib.summary(redis, sensor=sensor, top=25) for sensor in caps}
for sensor, s in got.items():
    for key in ("packets", "bytes", "by_class", "by_proto", "by_tool"):
        c.eq(f"{sensor}: {key} as the generator wrote them", s[key], truth[key])
    c.eq(f"{sensor}: kernel drops", json.loads(redis.cli("HGET", "ds:v1:sensors", sensor))
         ["sources"][0]["kernel_dropped"], 0)
for key in ("sources", "top_ports", "top_countries", "top_sources"):
    c.eq(f"two threads as one: {key}", got["lanes"][key], got["one"][key])
c.near("distinct sources (HyperLogLog) near the generator's", got["lanes"]["sources"],
       truth["sources_distinct"], 0.02)
c.done()
