#!/usr/bin/python3
"""The early warning stays silent over three hours of a stationary generated mix (180 buckets,
default parameters) — its false-alarm side; test_aggregate checks that it fires within one
bucket on a threefold surge."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("early warning")
work = dslib.tmpdir()
os.chmod(work, 0o755)
HOURS = 3
pcap, truth = dslib.gen(work, "steady", ["--seed", "33", "--rate", "80", "--duration",
                                         str(3600 * HOURS), "--start", "2026-01-01T00:00:00Z",
                                         "--no-source-truth"])
redis = dslib.Redis()
dslib.capture(redis, [pcap], darknet=sum((["--darknet", d] for d in truth["darknet"]), []),
              sensor="steady")
subs = os.path.join(work, "subs.json")
with open(subs, "w") as f:
    json.dump({"organisations": [{"id": "o", "name": "O", "livenet": ["45.67.0.0/16"],
                                  "contacts": [{"email": "o@o.example"}]}]}, f)
dslib.run(["aggregate", "--redis", redis.url, "--subscribers", subs, "--once",
           "--set", "state_dir=" + work], timeout=600)
c.eq("every bucket processed", redis.cli("GET", "ds:v1:agg:checkpoint").strip(),
     str(1767225600 + 3600 * HOURS - 60))
state = dict(line.split(" ", 1) for line in redis.cli("GET", "ds:v1:ew").splitlines() if line)
c.true(f"baselines were learnt for the busy ports ({len(state)} ports)", len(state) > 10)
c.true("the state counts the buckets processed", state.get("_buckets", "").split()[-1:] ==
       [str(60 * HOURS)])
alerts = json.loads(dslib.run(["query", "alerts", "--redis", redis.url]).stdout)
c.eq("no early warning over three stationary hours",
     [(a.get("port"), a.get("bucket")) for a in alerts if a["kind"] == "early_warning"], [])
c.done()
