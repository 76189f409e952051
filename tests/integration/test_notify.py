#!/usr/bin/python3
"""darkscope notify against a real SMTP server (python3-aiosmtpd, tests/integration/smtp_sink.py)
and a real Redis: one digest per organisation with the right recipients, language, body, CSV
and a content-derived Message-ID; with the SMTP server refusing for a while nothing is lost and
nothing sent twice; a notifier killed with SIGKILL resumes its digest; after max_attempts a
message goes to the dead letters and --retry delivers it."""
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

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("notify")
work = dslib.tmpdir()
os.chmod(work, 0o755)
redis = dslib.Redis()
mail_dir = os.path.join(work, "mail")
sink = dslib.SmtpSink(mail_dir)


def messages():
    out = []
    for path in sorted(glob.glob(os.path.join(mail_dir, "*.eml"))):
        with open(path, "rb") as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
        with open(path[:-4] + ".json") as f:
            env = json.load(f)
        out.append((msg, env))
    return out


subs = os.path.join(work, "subs.json")
with open(subs, "w") as f:
    json.dump({"organisations": [
        {"id": "city-a", "name": "City A", "livenet": ["45.67.89.0/24"],
         "contacts": [{"email": "soc@city-a.example", "lang": "ja"},
                      {"email": "noc@city-a.example", "lang": "ja"}]},
        {"id": "uni-b", "name": "University B", "livenet": ["45.67.90.0/24"],
         "contacts": [{"email": "cert@uni-b.example", "lang": "en"}]}]}, f)

seq = [0]


def alert(org, host, kind="infected", packets=60):
    seq[0] += 1
    a = {"id": f"{org}:{kind}:{host}:1767225600#{seq[0]}", "kind": kind, "org": org,
         "org_name": org, "host": host, "packets": packets, "darknet_addresses": 12,
         "first_seen": "2026-01-01T00:00:05.000000Z", "last_seen": "2026-01-01T00:02:35.000000Z",
         "ports": {"tcp/23": packets - 2, "tcp/2323": 2}, "tool": "mirai", "severity": "medium",
         "cc": "JP", "asn": 2516}
    redis.cli("XADD", "ds:v1:alerts", "*", "alert", json.dumps(a))
    return a


NOTIFY = [dslib.DARKSCOPE, "notify", "--redis", redis.url, "--subscribers", subs,
          "--set", f"notify.smtp.url=smtp://127.0.0.1:{sink.port}", "--set", "notify.smtp.tls=off",
          "--set", "notify.from=darkscope@telescope.example", "--set", "state_dir=" + work]

# 1. digests: two organisations, an early warning (no email)
sent = [alert("city-a", "45.67.89.10"), alert("city-a", "45.67.89.11", "internal"),
        alert("uni-b", "45.67.90.5", "ddos_victim", 100)]
redis.cli("XADD", "ds:v1:alerts", "*", "alert", json.dumps({"kind": "early_warning", "org": None,
                                                            "port": "tcp/445"}))
r = subprocess.run(NOTIFY + ["--once", "--set", "notify.digest=0"], capture_output=True,
                   text=True, timeout=60)
c.eq("notify --once exits 0", r.returncode, 0)
msgs = messages()
c.eq("one message per organisation", len(msgs), 2)
by_org = {}
for msg, env in msgs:
    by_org["city-a" if "city-a" in " ".join(env["to"]) else "uni-b"] = (msg, env)
if len(by_org) == 2:
    ja, env_ja = by_org["city-a"]
    en, env_en = by_org["uni-b"]
    c.eq("recipients (envelope)", sorted(env_ja["to"]), ["noc@city-a.example", "soc@city-a.example"])
    c.eq("sender (envelope)", env_ja["from"], "darkscope@telescope.example")
    c.true(f"Japanese subject ({ja['subject']})", "City A" in ja["subject"] and "件" in ja["subject"])
    body_ja = ja.get_body(("plain",)).get_content()
    c.true("Japanese body lists both hosts", "45.67.89.10" in body_ja and "45.67.89.11" in body_ja
           and "感染" in body_ja)
    c.true("times in the organisation's zone (Asia/Tokyo for ja)", "09:00:05 JST" in body_ja)
    body_en = en.get_body(("plain",)).get_content()
    c.eq("English subject", en["subject"], "[darkscope] University B: 1 DDoS victim")
    c.true("English body explains and advises", "denial-of-service" in body_en and
           "45.67.90.5" in body_en and "00:00:05 UTC" in body_en)
    att = [p for p in ja.iter_attachments()]
    c.eq("one CSV attachment", [p.get_content_type() for p in att], ["text/csv"])
    rows = list(csv.DictReader(io.StringIO(att[0].get_content()))) if att else []
    c.eq("CSV rows are the alerts", sorted(r["src_ip"] for r in rows),
         ["45.67.89.10", "45.67.89.11"])
    c.true("CSV uses Shadowserver column names", rows and {"timestamp", "src_ip", "src_asn",
                                                           "src_geo", "dst_port", "infection",
                                                           "family", "count"} <= set(rows[0]))
    c.eq("CSV values", (rows[0]["dst_port"], rows[0]["family"], rows[0]["count"], rows[0]["src_geo"])
         if rows else None, ("23", "mirai", "60", "JP"))
    c.true("a Message-ID and a Date", ja["message-id"].startswith("<") and ja["date"])
c.eq("every alert acknowledged", redis.cli("XPENDING", "ds:v1:alerts", "notify").split()[0], "0")

# 2. the SMTP server refuses (451) for a while: nothing lost, nothing twice
open(os.path.join(mail_dir, "reject"), "w").write("451 4.3.0 try again later")
more = [alert("uni-b", "45.67.90.6"), alert("uni-b", "45.67.90.7")]
p = subprocess.Popen(NOTIFY + ["--set", "notify.digest=1s", "--set", "notify.retry_max=2s"],
                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "n2.log"), "w"))
time.sleep(6)
c.eq("nothing delivered while refused", len(messages()), 2)
c.true("the failed attempts are logged", "attempt" in open(os.path.join(work, "n2.log")).read())
os.unlink(os.path.join(mail_dir, "reject"))
deadline = time.time() + 30
while time.time() < deadline and len(messages()) < 3:
    time.sleep(0.2)
time.sleep(2)  # would a duplicate follow?
msgs = messages()
c.eq("delivered exactly once when the server accepts again", len(msgs), 3)
if len(msgs) == 3:
    body = msgs[2][0].get_body(("plain",)).get_content()
    c.true("with both alerts", "45.67.90.6" in body and "45.67.90.7" in body)

# 3. killed with SIGKILL while a digest is open: the restarted notifier sends it, whole
alert("city-a", "45.67.89.20")
time.sleep(0.5)
p.send_signal(signal.SIGKILL)
p.wait()
alert("city-a", "45.67.89.21")
r = subprocess.run(NOTIFY + ["--once", "--set", "notify.digest=0"], capture_output=True,
                   text=True, timeout=60)
msgs = messages()
c.eq("the open digest survived the kill", len(msgs), 4)
if len(msgs) == 4:
    body = msgs[3][0].get_body(("plain",)).get_content()
    c.true("holding the alert read before the kill and the one after",
           "45.67.89.20" in body and "45.67.89.21" in body)
c.eq("nothing left pending", redis.cli("XPENDING", "ds:v1:alerts", "notify").split()[0], "0")
ids = [m["message-id"] for m, _ in msgs]
c.eq("no Message-ID twice", len(ids), len(set(ids)))

# 4. dead letters: a permanent refusal until max_attempts, then --retry
open(os.path.join(mail_dir, "reject"), "w").write("550 5.7.1 not today")
alert("uni-b", "45.67.90.9")
r = subprocess.run(NOTIFY + ["--once", "--set", "notify.digest=0", "--set",
                             "notify.max_attempts=2", "--set", "notify.retry_max=1s"],
                   capture_output=True, text=True, timeout=120)
dead = json.loads(dslib.run(["notify", "--dead-letters", "--redis", redis.url]).stdout)
c.eq("one dead letter after two attempts", [(d["org"], d["attempts"]) for d in dead],
     [("uni-b", 2)])
c.true("it records the server's answer", dead and "550" in dead[0].get("last_error", ""))
os.unlink(os.path.join(mail_dir, "reject"))
if dead:
    dslib.run(["notify", "--retry", dead[0]["dead_letter_id"], "--redis", redis.url])
r = subprocess.run(NOTIFY + ["--once"], capture_output=True, text=True, timeout=60)
msgs = messages()
c.eq("the retried letter is delivered", len(msgs), 5)
if len(msgs) == 5:
    c.true("with its alert", "45.67.90.9" in msgs[4][0].get_body(("plain",)).get_content())
c.eq("the dead letters are empty again",
     json.loads(dslib.run(["notify", "--dead-letters", "--redis", redis.url]).stdout), [])

# 5. a password (from the environment) never appears in logs or dead letters
alert("uni-b", "45.67.90.12")
env = dict(os.environ, DS_TEST_SMTP_PW="pw-hunter2-secret")
r = subprocess.run(NOTIFY + ["--once", "--set", "notify.digest=0", "--set", "notify.max_attempts=1",
                             "--set", "notify.smtp.user=darkscope", "--set",
                             "notify.smtp.password_env=DS_TEST_SMTP_PW", "--set", "log.level=debug"],
                   capture_output=True, text=True, timeout=60, env=env)
dead = dslib.run(["notify", "--dead-letters", "--redis", redis.url]).stdout
c.eq("delivered (the sink offers no AUTH, so libcurl sends without logging in)",
     len(messages()), 6)
c.true("the password is in neither the log nor the dead letters",
       "hunter2" not in r.stderr + r.stdout + dead + redis.cli("XRANGE", "ds:v1:notify:dead", "-", "+"))
r = subprocess.run(NOTIFY + ["--once", "--set", "notify.smtp.password_env=DS_NO_SUCH_VAR",
                             "--set", "notify.smtp.user=x"], capture_output=True, text=True,
                   timeout=30)
c.eq("a missing password variable is a configuration error", r.returncode, 2)
c.true("naming the key", "notify.smtp.password_env" in r.stderr)
sink.stop()
c.done()
