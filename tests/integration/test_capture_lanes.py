#!/usr/bin/python3
"""Aggregation threads (capture.threads_per_file): one file read with one, two and three threads
gives the same Redis content — every source and victim record line, every counter hash, the
HyperLogLog counts, the busiest sources — including late parts (the file's second half is ten
minutes older than its first, as in test_late_packets) and hourly roll-ups; and so does one
thread whose coordinator is kept busy (tests/integration/busy_main_thread.c). Only what must
differ is set aside: flush ids in key names, the write time, how late parts are split."""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("capture threads per file")
d = dslib.tmpdir()
DARKNET = ["--darknet", "198.18.0.0/16", "--darknet", "2001:db8:d000::/48"]

DUMP = """
local out = {}
for _, k in ipairs(redis.call('KEYS', 'ds:v1:{*')) do
  local t = redis.call('TYPE', k)['ok']
  if t == 'string' then
    if string.find(k, ':hll:', 1, true) then out[k] = {redis.call('PFCOUNT', k)}
    elseif string.find(k, ':flush:', 1, true) then out[k] = {'guard'}
    else out[k] = {redis.call('GET', k)} end
  elseif t == 'hash' then
    if string.sub(k, -3) ~= 'idx' then out[k] = redis.call('HGETALL', k) end
  elseif t == 'zset' then out[k] = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
  elseif t == 'set' then out[k] = redis.call('SMEMBERS', k) end
end
return cjson.encode(out)
"""


def generate(seed, start, packets, sources):
    tag = start.replace(":", "")
    pcap = os.path.join(d, f"g{tag}.pcap")
    subprocess.run([dslib.GEN, "--out", pcap, "--truth", pcap + ".json", "--seed", str(seed),
                    "--packets", str(packets), "--rate", "500", "--sources", str(sources),
                    "--start", start, *DARKNET], check=True, stdout=subprocess.DEVNULL)
    return pcap, json.load(open(pcap + ".json"))


def canonical(raw):
    """Per bucket: the multiset of record lines (whole-bucket strings and late-part hashes
    alike); every other key as its value, flush ids replaced and write times dropped."""
    out, lines = {}, {}
    for key, v in raw.items():
        k = re.sub(r"[0-9a-f]{16}", "<id>", key)
        m = re.match(r"(ds:v1:\{[^}]*\}):(srcrec|vicrec):\d+$", k) or \
            re.match(r"(ds:v1:\{[^}]*\}):(src|vic):<id>$", k)
        if m:
            kind = m.group(2)[:3]
            texts = v[0:1] if m.group(2).endswith("rec") else v[1::2]
            for text in texts:
                for line in text.splitlines():
                    lines.setdefault(f"{m.group(1)}:{kind} lines", []).append(line)
            continue
        if k.endswith(":flush:<id>"):
            continue  # one guard per part: late parts may come in one part per thread
        if k.endswith(":parts"):
            out[k] = "late parts present" if v else "none"
            continue
        if k.endswith(":meta"):
            f = dict(zip(v[0::2], v[1::2]))
            f.pop("written", None)
            out[k] = f
            continue
        if k.endswith(":top"):
            scores = [int(float(s)) for s in v[1::2]]
            floor = min(scores) if scores else 0
            # ties at the bottom may be broken differently; everyone above them may not
            out[k] = (sorted(scores), sorted(m for m, s in zip(v[0::2], scores) if s > floor))
            continue
        if len(v) % 2 == 0 and k.rsplit(":", 1)[-1] in ("tot", "port", "cc", "sec"):
            out[k] = dict(zip(v[0::2], v[1::2]))
            continue
        out[k] = v
    for k, ls in lines.items():
        out[k] = sorted(ls)
    return out


newer, tn = generate(31, "2026-03-01T00:10:00Z", 30000, 3000)
older, to = generate(31, "2026-03-01T00:00:00Z", 10000, 3000)  # late: same sources, earlier
both = os.path.join(d, "both.pcap")
subprocess.run(["mergecap", "-a", "-F", "pcap", "-w", both, newer, older], check=True)

# the last run: one thread with a busy coordinator (it takes the workers' events in batches, as
# on a loaded machine; tests/integration/busy_main_thread.c), where the build allows it
BUSY = os.environ.get("DS_BUSY_MAIN_THREAD")
runs = [("1 thread", 1, None), ("2 threads", 2, None), ("3 threads", 3, None)]
if BUSY:
    runs.append(("1 thread, busy coordinator", 1, BUSY))
dumps = {}
for label, threads, preload in runs:
    redis = dslib.Redis()
    env = dict(os.environ, LD_PRELOAD=preload) if preload else None
    t0 = time.monotonic()
    r = dslib.run(["capture", "--redis", redis.url, "--sensor", "test", *DARKNET, "--read", both,
                   "--set", f"capture.threads_per_file={threads}", "--set", "log.level=debug"],
                  env=env)
    if preload:
        took = time.monotonic() - t0
        c.true(f"{label}: the coordinator was kept waiting ({took:.2f} s)", took >= 0.3)
    c.true(f"{label}: the log says how many aggregate",
           threads == 1 or f"{threads} aggregation threads" in r.stderr)
    s = dslib.summary(redis)
    buckets = s["buckets"]
    c.eq(f"{label}: packets", s["packets"], tn["packets"] + to["packets"])
    c.eq(f"{label}: late packets", s["late"], to["packets"])
    dumps[label] = canonical(json.loads(redis.cli("EVAL", DUMP, "0")))
    redis.stop()

one = dumps["1 thread"]
c.eq("the dump holds the records of every bucket",
     sum(1 for k in one if k.endswith(":src lines")), buckets)
c.true("late parts were written", any(v == "late parts present" for k, v in one.items()
                                      if k.endswith(":parts")))
c.true("hourly roll-ups are in the dump", any(re.search(r"\{[^}]*:h\d+\}:tot$", k) for k in one))
for label, _, _ in runs[1:]:
    other = dumps[label]
    c.eq(f"{label}: keys one thread does not write", sorted(set(other) - set(one)), [])
    c.eq(f"{label}: keys one thread writes and they do not", sorted(set(one) - set(other)), [])
    differ = [k for k in one if k in other and other[k] != one[k]]
    c.eq(f"{label}: keys whose content differs from one thread's", differ, [])
c.done()
