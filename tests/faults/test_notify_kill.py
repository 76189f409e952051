#!/usr/bin/python3
"""Fault: the notifier killed with kill -9 while the SMTP server holds its answer to DATA, the
mail server slower than notify.timeout, Redis gone between the server's 250 and the notifier's
acknowledgement (with and without a kill), and the mail server down for a while (with a kill in
the middle) — against a real SMTP server (tests/integration/smtp_sink.py, which stores a message
at the moment it answers 250) and a real Redis with its AOF. No alert is ever unmailed; the only
duplicate is the message whose 250 came while Redis could not record it and whose notifier was
then killed, and it carries the same Message-ID. Figures for docs/reliability.md are printed."""
import csv
import email
import email.policy
import glob
import io
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import dslib  # noqa: E402

WAIT_S = 60      # bound on every wait
RETRY_MAX_S = 2  # notify.retry_max

c = dslib.Checker("notify faults")
work = dslib.tmpdir()
os.chmod(work, 0o755)
redis = dslib.Redis(appendonly=True)
mail = os.path.join(work, "mail")
sink = dslib.SmtpSink(mail)


def messages():
    out = []
    for path in sorted(glob.glob(os.path.join(mail, "*.eml"))):
        with open(path, "rb") as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
        with open(path[:-4] + ".json") as f:
            out.append((msg, json.load(f)))
    return out


def aborted():
    p = os.path.join(mail, "aborted")
    return len(open(p).read().splitlines()) if os.path.exists(p) else 0


def wait_for(cond, what):
    deadline = time.time() + WAIT_S
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    c.true(f"timed out waiting for {what}", False)
    return False


subs = os.path.join(work, "subs.json")
with open(subs, "w") as f:
    json.dump({"organisations": [{"id": "city-a", "name": "City A", "livenet": ["45.67.89.0/24"],
                                  "contacts": [{"email": "soc@city-a.example"}]}]}, f)
seq = [0]
alerts = []  # every host alerted, in order


def alert():
    seq[0] += 1
    host = f"45.67.89.{seq[0]}"
    a = {"id": f"city-a:infected:{host}:1767225600#1", "kind": "infected", "org": "city-a",
         "org_name": "City A", "host": host, "packets": 60, "darknet_addresses": 12,
         "first_seen": "2026-01-01T00:00:05.000000Z", "last_seen": "2026-01-01T00:02:35.000000Z",
         "ports": {"tcp/23": 60}, "tool": "mirai", "severity": "medium"}
    redis.cli("XADD", "ds:v1:alerts", "*", "alert", json.dumps(a))
    alerts.append(host)
    return host


logs = []


def notifier(timeout=30):
    log = os.path.join(work, f"notify{len(logs)}.log")
    logs.append(log)
    return subprocess.Popen([dslib.DARKSCOPE, "notify", "--redis", redis.url, "--subscribers", subs,
                             "--set", f"notify.smtp.url=smtp://127.0.0.1:{sink.port}",
                             "--set", "notify.smtp.tls=off", "--set", "notify.digest=0",
                             "--set", f"notify.retry_max={RETRY_MAX_S}s",
                             "--set", f"notify.timeout={timeout}", "--set", "state_dir=" + work],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))


stops = []  # exit statuses of the notifiers stopped with SIGTERM


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    stops.append(p.returncode)


def kill(p):
    p.send_signal(signal.SIGKILL)
    p.wait()


def hosts_in(msg):
    """The hosts a message reports: the src_ip column of its CSV attachment."""
    rows = []
    for part in msg.iter_attachments():
        rows += list(csv.DictReader(io.StringIO(part.get_content())))
    return sorted(r["src_ip"] for r in rows)


def hold(on):
    path = os.path.join(mail, "hold")
    if on:
        open(path, "w").close()
    elif os.path.exists(path):
        os.unlink(path)


figures = {}

# 1. killed while the server holds its answer to DATA: the server took no responsibility, the
#    restarted notifier sends the message once
hold(True)
h1 = alert()
p = notifier()
wait_for(lambda: os.path.exists(os.path.join(mail, "holding")), "the DATA answer to be held")
kill(p)
wait_for(lambda: aborted() == 1, "the sink to see the client go")
hold(False)
c.eq("1: nothing delivered by the killed notifier", len(messages()), 0)
p = notifier()
wait_for(lambda: len(messages()) >= 1, "the message after the restart")
time.sleep(2 * RETRY_MAX_S)  # would a second copy follow?
c.eq("1: delivered once after the restart", [hosts_in(m) for m, _ in messages()], [[h1]])

# 2. a server slower than notify.timeout: the attempt times out and the connection closes, so
#    the server delivers nothing; the next attempt delivers once
stop(p)
hold(True)
h2 = alert()
p = notifier(timeout=2)
wait_for(lambda: aborted() == 2, "the time-out to close the held connection")
hold(False)
wait_for(lambda: len(messages()) >= 2, "the retried message")
time.sleep(2 * RETRY_MAX_S)
c.eq("2: delivered once after a time-out", [hosts_in(m) for m, _ in messages()[1:]], [[h2]])
c.true("2: the time-out is logged as a failed attempt", "attempt 1 failed" in open(logs[-1]).read())
stop(p)

# 3. Redis gone between the server's 250 and the acknowledgement, the notifier alive: it keeps
#    the retirement and does it when Redis is back, without sending again
hold(True)
h3 = alert()
p = notifier()
wait_for(lambda: os.path.exists(os.path.join(mail, "holding")), "the DATA answer to be held")
redis.stop()  # SIGTERM: the AOF is complete
hold(False)
wait_for(lambda: len(messages()) >= 3, "the 250")
wait_for(lambda: " sent " in open(logs[-1]).read(), "the notifier to log the 250")
time.sleep(2)  # the notifier fails to retire it, and retries
redis.start()
wait_for(lambda: redis.cli("XPENDING", "ds:v1:alerts", "notify").split()[0] == "0",
         "the retirement")
time.sleep(2 * RETRY_MAX_S)
c.eq("3: Redis away at the acknowledgement: still sent once",
     [hosts_in(m) for m, _ in messages()[2:]], [[h3]])
stop(p)

# 4. the duplicate window: the 250 arrives, Redis cannot record it, the notifier is killed; the
#    restarted notifier sends the message again with the same Message-ID
hold(True)
h4 = alert()
p = notifier()
wait_for(lambda: os.path.exists(os.path.join(mail, "holding")), "the DATA answer to be held")
redis.stop()
hold(False)
wait_for(lambda: len(messages()) >= 4, "the 250")
wait_for(lambda: " sent " in open(logs[-1]).read(), "the notifier to log the 250")
kill(p)
redis.start()
p = notifier()
wait_for(lambda: len(messages()) >= 5, "the resent message")
time.sleep(2 * RETRY_MAX_S)
dup = messages()[3:]
c.eq("4: killed between the 250 and the acknowledgement: sent twice",
     [hosts_in(m) for m, _ in dup], [[h4], [h4]])
c.true("4: both copies carry the same Message-ID",
       len(dup) == 2 and dup[0][0]["message-id"] == dup[1][0]["message-id"])
stop(p)

# 5. the mail server down for a while, the notifier killed meanwhile: everything arrives once
#    the server is back
sink.stop()
h5 = [alert(), alert()]
p = notifier()
wait_for(lambda: "attempt 2 failed" in open(logs[-1]).read(), "two refused attempts")
kill(p)
h5.append(alert())
p = notifier()
wait_for(lambda: "attempt" in open(logs[-1]).read(), "a refused attempt after the restart")
time.sleep(3)
c.eq("5: nothing delivered while the server is down", len(messages()), 5)
sink.start()
back = time.time()
wait_for(lambda: sum(len(hosts_in(m)) for m, _ in messages()[5:]) >= 3, "the server back")
delays = [e["t"] - back for _, e in messages()[5:]]
time.sleep(2 * RETRY_MAX_S)
got5 = sorted(h for m, _ in messages()[5:] for h in hosts_in(m))
c.eq("5: every alert delivered once after the server came back", got5, sorted(h5))
stop(p)
sink.stop()

# over everything: no alert unmailed, no alert unacknowledged, nothing left behind
msgs = messages()
mailed = [h for m, _ in msgs for h in hosts_in(m)]
c.eq("every alert mailed", sorted(set(mailed)), sorted(alerts))
c.eq("the only duplicate is the one of the window", sorted(h for h in set(mailed)
                                                          if mailed.count(h) > 1), [h4])
c.eq("every notifier stopped with SIGTERM exited 0", stops, [0] * len(stops))
c.eq("nothing pending", redis.cli("XPENDING", "ds:v1:alerts", "notify").split()[0], "0")
c.eq("outbox empty", redis.cli("HLEN", "ds:v1:notify:outbox").strip(), "0")
c.eq("no dead letters", redis.cli("XLEN", "ds:v1:notify:dead").strip(), "0")
ids = [m["message-id"] for m, _ in msgs]
c.eq("distinct Message-IDs = distinct digests", len(set(ids)), len(msgs) - 1)
print("figure:", {"alerts": len(alerts), "messages": len(msgs), "lost": len(set(alerts) -
                                                                          set(mailed)),
                  "duplicates": len(mailed) - len(set(mailed)), "aborted_by_sink": aborted(),
                  "delivery_after_server_back_s": [round(d, 2) for d in delays],
                  "retry_max_s": RETRY_MAX_S})
c.done()
