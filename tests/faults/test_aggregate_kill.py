#!/usr/bin/python3
"""Fault: the aggregator killed with kill -9 in the middle of buckets, again and again, then
restarted. One copy of the captured data is aggregated without interruption, an identical copy
(the same AOF) through five kills at different points of a bucket's work and one kill while its
bucket's transaction is held at Redis (CLIENT PAUSE WRITE); afterwards both copies must hold
byte-identical alert streams (global and per organisation), incidents, open-incident index,
early-warning state and checkpoint: no alert missing, none twice. Generated traffic from three
overlapping subscriber ranges gives thousands of incidents per bucket. Figures for
docs/reliability.md are printed."""
import calendar
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import dslib  # noqa: E402

TIMED_KILLS = (0.15, 0.35, 0.55, 0.75, 0.95)  # fractions of a bucket's processing time
WAIT_S = 120                                   # bound on every wait for progress

c = dslib.Checker("aggregate kill -9")
work = dslib.tmpdir()
os.chmod(work, 0o755)
pcap, truth = dslib.gen(work, extra=["--seed", "7", "--rate", "200", "--duration", "600",
                                     "--sources", "20000", "--no-source-truth"])
darknet = sum((["--darknet", d] for d in truth["darknet"]), [])
subs = os.path.join(work, "subs.json")
with open(subs, "w") as f:
    json.dump({"organisations": [
        {"id": "west", "name": "West", "livenet": ["0.0.0.0/1"],
         "contacts": [{"email": "soc@west.example"}]},
        {"id": "isp", "name": "ISP", "livenet": ["64.0.0.0/2"],
         "contacts": [{"email": "noc@isp.example"}]},
        {"id": "east", "name": "East", "livenet": ["128.0.0.0/1"],
         "contacts": [{"email": "soc@east.example"}]}]}, f)

# one capture, two identical stores: the reference's AOF is a copy of the faulty one's
faulty = dslib.Redis(appendonly=True)
dslib.capture(faulty, [pcap], darknet=darknet, sensor="s1")
faulty.stop()
ref_dir = dslib.tmpdir("ds-redis-")
shutil.copytree(os.path.join(faulty.dir, "appendonlydir"), os.path.join(ref_dir, "appendonlydir"))
faulty.start()
ref = dslib.Redis(appendonly=True, directory=ref_dir)
LAST = int(ref.cli("ZRANGE", "ds:v1:idx:s1", "-1", "-1").strip())


def agg_args(redis):
    return [dslib.DARKSCOPE, "aggregate", "--redis", redis.url, "--subscribers", subs,
            "--set", "aggregate.early_warning.warmup=4", "--set", "state_dir=" + work]


def checkpoint(redis):
    v = redis.cli("GET", "ds:v1:agg:checkpoint").strip()
    return int(v) if v else None


def commits(log):
    """Times (Unix seconds) of the buckets a run's log says it committed."""
    out = []
    for line in log.splitlines():
        if " aggregate: bucket " in line:
            t = calendar.timegm(time.strptime(line[:19], "%Y-%m-%dT%H:%M:%S"))
            out.append(t + int(line[20:23]) / 1000)
    return out


def wait_until(cond, what):
    deadline = time.time() + WAIT_S
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    c.true(f"timed out waiting for {what}", False)
    return False


# the reference: uninterrupted
t0 = time.time()
r = subprocess.run(agg_args(ref) + ["--once"], capture_output=True, text=True, timeout=600)
ref_seconds = time.time() - t0
c.eq("reference run exit status", r.returncode, 0)
ref_commits = commits(r.stderr)
per_bucket = (ref_commits[-1] - ref_commits[0]) / max(1, len(ref_commits) - 1)
c.eq("reference reached the last bucket", checkpoint(ref), LAST)

# the faulty copy: killed mid-bucket
logs = []
kills = []


def start():
    log = os.path.join(work, f"agg{len(logs)}.log")
    logs.append(log)
    return subprocess.Popen(agg_args(faulty), stdout=subprocess.DEVNULL, stderr=open(log, "w")), \
        time.time()


for frac in TIMED_KILLS:
    cp = checkpoint(faulty)
    if cp == LAST:
        break
    p, started = start()
    # once this process has committed a bucket it is in its loop, working on the next one
    if not wait_until(lambda: checkpoint(faulty) != cp, "a commit"):
        p.kill()
        p.wait()
        break
    committed = time.time()
    time.sleep(frac * per_bucket)
    p.send_signal(signal.SIGKILL)
    p.wait()
    after = checkpoint(faulty)
    own = commits(open(logs[-1]).read())
    kills.append({"kind": f"{frac:.2f} of a bucket after a commit", "checkpoint": after,
                  "mid_bucket": after != LAST, "restart_to_commit_s": own[0] - started if own
                  else None})

# one kill with the bucket's MULTI/EXEC held at Redis: writes are paused, the aggregator blocks
# on its first queued write, the kill drops the half-sent transaction
cp = checkpoint(faulty)
if cp != LAST:
    p, started = start()
    wait_until(lambda: checkpoint(faulty) != cp, "a commit")
    cp = checkpoint(faulty)
    alerts_before = faulty.cli("XLEN", "ds:v1:alerts").strip()
    faulty.cli("CLIENT", "PAUSE", str(WAIT_S * 1000), "WRITE")
    blocked = wait_until(lambda: "blocked_clients:1" in faulty.cli("INFO", "clients"),
                         "the aggregator to block in its transaction")
    p.send_signal(signal.SIGKILL)
    p.wait()
    faulty.cli("CLIENT", "UNPAUSE")
    c.true("the aggregator was blocked inside its bucket's transaction", blocked)
    c.eq("a transaction killed before EXEC left the checkpoint", checkpoint(faulty), cp)
    c.eq("and no alert", faulty.cli("XLEN", "ds:v1:alerts").strip(), alerts_before)
    kills.append({"kind": "inside the transaction", "checkpoint": cp, "mid_bucket": True})

c.eq("six kills", len(kills), len(TIMED_KILLS) + 1)
c.true(f"every kill fell inside a bucket ({kills})", all(k["mid_bucket"] for k in kills))
# the last restart finishes
p, started = start()
wait_until(lambda: checkpoint(faulty) == LAST, "the last bucket")
p.send_signal(signal.SIGTERM)
p.wait(30)
c.eq("the restarted aggregator stops cleanly", p.returncode, 0)


def state(redis):
    return dslib.aggregator_state(redis, ["west", "isp", "east"])


want, got = state(ref), state(faulty)
for key in want:
    c.true(f"{key} identical to the uninterrupted run ({len(got[key])} / {len(want[key])} bytes)",
           got[key] == want[key])
alerts = json.loads(dslib.run(["query", "alerts", "--redis", faulty.url]).stdout)
ids = [a["id"] for a in alerts]
n_ref = int(ref.cli("XLEN", "ds:v1:alerts").strip())
c.eq("no alert id twice", len(ids), len(set(ids)))
c.eq("as many alerts as the uninterrupted run", int(faulty.cli("XLEN", "ds:v1:alerts").strip()),
     n_ref)
c.true(f"thousands of alerts compared ({n_ref})", n_ref > 1000)

restarts = [k["restart_to_commit_s"] for k in kills if k.get("restart_to_commit_s") is not None]
print("figure:", {"kills": len(kills), "buckets": len(ref_commits), "alerts": n_ref,
                  "incidents": int(ref.cli("HLEN", "ds:v1:incidents").strip()),
                  "missing": 0 if got == want else "differs", "duplicates": len(ids) - len(set(ids)),
                  "bucket_processing_s": round(per_bucket, 2),
                  "reference_run_s": round(ref_seconds, 1),
                  "restart_to_first_commit_s_max": round(max(restarts), 2) if restarts else None})
c.done()
