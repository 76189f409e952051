#!/usr/bin/python3
"""Bad configuration: one line naming the file, the key and what was expected, exit status 2 —
from check-config and from a role started with the file alike."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

d = dslib.tmpdir()
c = dslib.Checker("config errors")

CASES = [
    ({"bucket_seconds": 5}, "key 'bucket_seconds': expected an integer from 10 to 3600, got 5"),
    ({"bucket_seconds": "60"}, "key 'bucket_seconds': expected an integer from 10 to 3600, got a string"),
    ({"bucket_seconds": 70}, "key 'bucket_seconds': expected a divisor of 3600, got 70"),
    ({"darknet": ["198.18.0.1/16"]}, "key 'darknet': expected an IPv4/IPv6 prefix like \"198.51.100.0/24\" (no host bits set), got \"198.18.0.1/16\""),
    ({"darknet": "198.18.0.0/16"}, "key 'darknet': expected a list of IPv4/IPv6 prefixes"),
    ({"sensor": {"locaton": {}}}, "unknown key 'sensor.locaton'"),
    ({"sensor": {"location": {"latitude": 91}}}, "key 'sensor.location.latitude': expected a number from -90 to 90"),
    ({"redis": {"url": "http://x"}}, "key 'redis.url': expected redis://HOST:PORT/DB, unix:/PATH, or empty"),
    ({"retention": "2 days"}, "key 'retention': expected a duration"),
    ({"sources": {"speed": "fast"}}, "key 'sources.speed': expected max, realtime or xN"),
    ({"live": {"max_events_per_second": -1}}, "key 'live.max_events_per_second': expected an integer from 0 to 100000"),
]
for i, (doc, message) in enumerate(CASES):
    path = os.path.join(d, f"bad{i}.json")
    json.dump(doc, open(path, "w"))
    for argv in (["check-config", path], ["capture", "--config", path, "--read", "/dev/null"]):
        r = dslib.run(argv, check=False)
        c.eq(f"{argv[0]} {doc}: exit status", r.returncode, 2)
        lines = r.stderr.strip().splitlines()
        c.eq(f"{argv[0]} {doc}: one line", len(lines), 1)
        c.true(f"{argv[0]} {doc}: message names file and key: {r.stderr.strip()!r}",
               lines[:1] and lines[0].startswith(f"darkscope: {path}: ") and message in lines[0])

bad_json = os.path.join(d, "syntax.json")
open(bad_json, "w").write('{"bucket_seconds": 60,\n "darknet": [}\n')
r = dslib.run(["check-config", bad_json], check=False)
c.eq("invalid JSON: exit status", r.returncode, 2)
c.true(f"invalid JSON names line and column: {r.stderr!r}", f"{bad_json}:2:" in r.stderr)

r = dslib.run(["check-config", os.path.join(d, "missing.json")], check=False)
c.eq("missing file: exit status", r.returncode, 2)
c.true(f"missing file named: {r.stderr!r}", "missing.json" in r.stderr)

r = dslib.run(["capture", "--bucket", "60"], check=False)
c.eq("unknown flag: exit status", r.returncode, 2)
r = dslib.run(["capture", "--read", "/dev/null"], check=False)
c.eq("capture without darknet: exit status", r.returncode, 2)
c.true(f"capture without darknet says so: {r.stderr!r}", "darknet" in r.stderr)
r = dslib.run(["capture", "--darknet", "10.0.0.0/8"], check=False)
c.eq("capture without sources: exit status", r.returncode, 2)
r = dslib.run(["capture", "--darknet", "10.0.0.0/33", "--read", "/dev/null"], check=False)
c.eq("bad --darknet: exit status", r.returncode, 2)
c.true(f"bad --darknet names the command line: {r.stderr!r}",
       "command line: key 'darknet'" in r.stderr)

r = dslib.run(["capture", "--darknet", "198.18.0.0/15", "--read", "/dev/null", "--set",
               "capture.bpf=tcp and not"], check=False)
c.eq("bad BPF filter: exit status", r.returncode, 2)
c.true(f"bad BPF filter names the key: {r.stderr!r}", "key 'capture.bpf': expected a BPF filter" in r.stderr)
r = dslib.run(["capture", "--darknet", "198.18.0.0/15", "--read", os.path.join(d, "nope.pcap"),
               "--redis", "unix:" + os.path.join(d, "none.sock")], check=False)
c.eq("missing capture file: exit status", r.returncode, 1)
c.true(f"missing capture file named once: {r.stderr!r}",
       r.stderr.count("nope.pcap") == 1 and "No such file" in r.stderr)

good = os.path.join(d, "good.json")
json.dump({"darknet": ["198.18.0.0/15", "2001:db8::/32"], "bucket_seconds": 30,
           "sensor": {"name": "tokyo-1", "location": {"latitude": 35.68, "longitude": 139.76,
                                                      "label": "Tokyo"}},
           "retention": "3d"}, open(good, "w"))
r = dslib.run(["check-config", good], check=False)
c.eq("good config: exit status", r.returncode, 0)
r = dslib.run(["capture", "--config", good, "--darknet", "203.0.113.0/24", "--dump-config"])
dumped = json.loads(r.stdout)
c.eq("--darknet replaces the file's list", dumped["darknet"], ["203.0.113.0/24"])
c.eq("file value kept", dumped["bucket_seconds"], 30)
c.eq("duration in seconds", dumped["retention"], 3 * 86400)
c.eq("sensor name", dumped["sensor"]["name"], "tokyo-1")
r = dslib.run(["capture", "--redis", "redis://:s3cret@127.0.0.1:6379/2", "--dump-config"])
c.eq("a dump never shows the Redis password", json.loads(r.stdout)["redis"]["url"],
     "redis://:***@127.0.0.1:6379/2")
c.true("the password appears nowhere in the dump", "s3cret" not in r.stdout + r.stderr)
c.done()
