#!/usr/bin/python3
"""Fault: the disk under Redis's AOF is full. Redis runs on a 16 MB tmpfs of this test's own,
filled to the last byte, while capture replays generated traffic. With appendfsync everysec (the
embedded server's setting) Redis refuses writes with MISCONF: capture logs that error by name,
keeps running with its buckets queued and retried, and once space is freed every bucket lands
and survives a restart of Redis from its AOF — equal to the generator's ground truth. With
appendfsync always Redis exits at the failed write: capture queues as for any outage, and after
space is freed and Redis restarted everything lands too. Needs root (mount); exits 77
(skipped) otherwise. The tmpfs is always unmounted. Figures for docs/reliability.md are
printed."""
import atexit
import calendar
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import dslib  # noqa: E402

if os.geteuid() != 0:
    print("the disk-full test needs root (it mounts a tmpfs)")
    sys.exit(77)

FULL_S = 12  # how long the disk stays full while capture runs
WAIT_S = 150

c = dslib.Checker("disk full")
work = dslib.tmpdir()
mnt = tempfile.mkdtemp(prefix="ds-diskfull-")
servers = []


def unmount():
    for r in servers:
        r.stop()
    if subprocess.run(["umount", mnt], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", mnt], capture_output=True)
    os.rmdir(mnt)


atexit.register(unmount)  # registered first: runs after every Redis has been stopped
dslib.sh("mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", mnt)

pcap, truth = dslib.gen(work, extra=["--seed", "9", "--rate", "200", "--duration", "100", "--sources", "1000",
                                     "--bucket-seconds", "10"])
darknet = sum((["--darknet", d] for d in truth["darknet"]), [])
filler = os.path.join(mnt, "filler")


def fill():
    """Writes until the tmpfs is full, in bounded steps (16 MB at most)."""
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (1 << 20, 4096, 512):
            for _ in range((16 << 20) // size):
                try:
                    if os.write(fd, b"\0" * size) < size:
                        break
                except OSError:
                    break
    finally:
        os.close(fd)


def epoch(rfc3339):
    return calendar.timegm(time.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ"))


def stamp(line):
    return epoch(line[:19] + "Z") + int(line[20:23]) / 1000


def check_truth(redis, what, sensor):
    s = dslib.summary(redis, sensor=sensor)
    c.eq(f"{what}: packets", s["packets"], truth["packets"])
    c.eq(f"{what}: bytes", s["bytes"], truth["bytes"])
    c.eq(f"{what}: buckets", s["buckets"], len(truth["buckets"]))
    c.eq(f"{what}: by_class", {k: s["by_class"][k] for k in truth["by_class"]}, truth["by_class"])


def buckets_in(redis, sensor):
    return len(redis.cli("ZRANGE", f"ds:v1:idx:{sensor}", "0", "-1", check=False).split())


def run(fsync):
    sensor = "full-" + fsync
    rdir = os.path.join(mnt, fsync)
    os.mkdir(rdir)
    redis = dslib.Redis(appendonly=True, fsync=fsync, directory=rdir)
    servers.append(redis)
    proc = subprocess.Popen([dslib.DARKSCOPE, "capture", "--redis", redis.url, "--sensor", sensor,
                             *darknet, "--read", pcap, "--speed", "x5",
                             "--set", "bucket_seconds=10", "--set", "capture.lateness=1",
                             "--set", f"redis.flush_timeout={WAIT_S}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    # the disk fills while capture is writing
    deadline = time.time() + WAIT_S
    while time.time() < deadline and buckets_in(redis, sensor) < 2:
        time.sleep(0.05)
    before = buckets_in(redis, sensor)
    fill()
    free_kib = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize // 1024
    time.sleep(FULL_S)
    c.true(f"{fsync}: capture still running with the disk full", proc.poll() is None)
    during = 0
    if fsync == "everysec":
        c.true(f"{fsync}: Redis refuses writes",
               "MISCONF" in redis.cli("SET", "ds:probe", "1", check=False))
        during = buckets_in(redis, sensor) - before
    else:
        c.true(f"{fsync}: Redis exited at the failed write", redis.proc.poll() is not None)
    log = "".join(lines)
    os.unlink(filler)
    freed = time.time()
    if fsync == "always":
        redis.start()  # from what its AOF holds
    try:
        proc.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    reader.join(10)
    if os.environ.get("DS_FAULTS_DEBUG"):
        print("".join(lines)[-3000:])
    c.eq(f"{fsync}: capture exit status", proc.returncode, 0)
    if fsync == "everysec":
        c.true(f"{fsync}: capture's log names Redis's error: {log[-400:]!r}",
               "MISCONF" in log and "No space left on device" in log)
    c.true(f"{fsync}: capture logged the outage and kept its buckets",
           "keeping buckets in memory" in log)
    c.true(f"{fsync}: no bucket dropped", "queue full" not in "".join(lines))
    check_truth(redis, fsync, sensor)
    c.eq(f"{fsync}: the sensor record counts no dropped bucket",
         json.loads(redis.cli("HGET", "ds:v1:sensors", sensor).strip() or "{}").get(
             "buckets_dropped"), 0)
    # what landed is on disk: Redis started again from its AOF still has it all
    redis.stop()
    redis.start()
    check_truth(redis, f"{fsync}, after a restart from the AOF", sensor)
    backs = [stamp(x) - freed for x in lines if "is back" in x and stamp(x) >= freed - 0.01]
    redis.stop()
    return {"free_kib_when_full": free_kib, "full_s": FULL_S, "buckets": len(truth["buckets"]),
            "written_before_full": before, "accepted_while_full": during,
            "queued_then_written": len(truth["buckets"]) - before - during,
            "written_again_after_free_s": round(backs[0], 2) if backs else None}


figures = {}
for fsync in ("everysec", "always"):
    figures[fsync] = run(fsync)
    dslib.sh("rm", "-rf", os.path.join(mnt, fsync))
for fsync, f in figures.items():
    print(f"figure {fsync}: {f}")
c.done()
