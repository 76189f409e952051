#!/usr/bin/python3
"""A running aggregator reloads its subscriber file on `darkscope aggregate --reload` (SIGHUP):
a bad new file is refused with the reason and the old one kept, a good one is swapped in."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("aggregate reload")
work = dslib.tmpdir()
os.chmod(work, 0o755)
redis = dslib.Redis()
subs = os.path.join(work, "subs.json")


def write(orgs):
    with open(subs, "w") as f:
        json.dump({"organisations": [{"id": o, "name": o.upper(), "livenet": [f"45.67.{i}.0/24"],
                                      "contacts": [{"email": f"{o}@x.example"}]}
                                     for i, o in enumerate(orgs)]}, f)


write(["one"])
log = os.path.join(work, "aggregate.log")
common = ["--redis", redis.url, "--set", "state_dir=" + work]
p = subprocess.Popen([dslib.DARKSCOPE, "aggregate", "--subscribers", subs, *common],
                     stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def wait_for(text, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in open(log).read():
            return True
        time.sleep(0.05)
    return False


c.true("started with one organisation", wait_for("1 organisations"))
c.true("pid file written", wait_for("") and os.path.exists(os.path.join(work, "aggregate.pid")))
with open(subs, "w") as f:
    f.write('{"organisations": [{"id": "two", "name": "Two", "livenet": ["45.67.0.1/24"]')
r = dslib.run(["aggregate", "--reload", *common], check=False)
c.eq("--reload signals the running aggregator", r.returncode, 0)
c.true("a bad file is refused and the old one kept", wait_for("reload refused, keeping the "
                                                             "previous subscribers"))
c.true("the refusal names the file", subs in open(log).read())
write(["one", "two", "three"])
dslib.run(["aggregate", "--reload", *common])
c.true("a good file is swapped in", wait_for("3 organisations"))
c.eq("still running", p.poll(), None)
p.send_signal(signal.SIGTERM)
c.eq("SIGTERM stops it cleanly", p.wait(10), 0)
pidfile = os.path.join(work, "aggregate.pid")
c.true("pid file removed (or emptied, in a directory the service account may not write)",
       not os.path.exists(pidfile) or open(pidfile).read() == "")
r = dslib.run(["aggregate", "--reload", *common], check=False)
c.true("--reload with no aggregator running says so", r.returncode != 0 and
       "no running aggregator" in r.stderr)
c.done()
