#!/usr/bin/python3
"""darkscope notify over STARTTLS with SMTP authentication, against a real SMTP server
(tests/integration/smtp_sink.py: aiosmtpd requiring STARTTLS, then AUTH) whose certificate is
signed by a private CA made with openssl for the test (notify.smtp.ca_file).

Asserted: the message arrives over TLS as the configured user; a wrong password is refused by
the server and the message goes to the dead letters with the server's answer; without the CA the
server is not trusted and the credentials are never sent to it; `require` sends nothing to a
server that offers no STARTTLS, and neither does the default `try` once a user is set; an
unreadable CA file exits 2 naming the key; the password is in no log line and nowhere in
Redis."""
import glob
import json
import os
import secrets
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import dslib  # noqa: E402

c = dslib.Checker("notify TLS")
work = dslib.tmpdir()
os.chmod(work, 0o755)


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=work)


# a private CA and a server certificate for 127.0.0.1 signed by it
openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=darkscope test CA",
        "-days", "1", "-keyout", "ca.key", "-out", "ca.pem",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign")
openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "srv.key",
        "-out", "srv.csr")
with open(os.path.join(work, "ext"), "w") as f:
    f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "1", "-extfile", "ext", "-out", "srv.pem")
CA = os.path.join(work, "ca.pem")

USER = "darkscope-relay"
PASSWORD = "pw-" + secrets.token_hex(12)
WRONG = "wrong-" + secrets.token_hex(12)
pwfile = os.path.join(work, "smtp-password")
with open(pwfile, "w") as f:
    f.write(PASSWORD + "\n")
os.chmod(pwfile, 0o600)

redis = dslib.Redis()
mail = os.path.join(work, "mail")
sink = dslib.SmtpSink(mail, ["--starttls", os.path.join(work, "srv.pem"),
                             os.path.join(work, "srv.key"), "--auth", USER, pwfile])
plain_mail = os.path.join(work, "plain")
plain = dslib.SmtpSink(plain_mail)  # offers neither STARTTLS nor AUTH

subs = os.path.join(work, "subs.json")
with open(subs, "w") as f:
    json.dump({"organisations": [
        {"id": "city-a", "name": "City A", "livenet": ["45.67.89.0/24"],
         "contacts": [{"email": "soc@city-a.example", "lang": "en"}]}]}, f)
hosts = iter(f"45.67.89.{i}" for i in range(10, 250))


def alert():
    host = next(hosts)
    a = {"id": f"city-a:infected:{host}:1767225600#1", "kind": "infected", "org": "city-a",
         "org_name": "City A", "host": host, "packets": 60, "darknet_addresses": 12,
         "first_seen": "2026-01-01T00:00:05.000000Z", "last_seen": "2026-01-01T00:02:35.000000Z",
         "ports": {"tcp/23": 60}, "tool": "mirai", "severity": "medium", "cc": "JP", "asn": 2516}
    redis.cli("XADD", "ds:v1:alerts", "*", "alert", json.dumps(a))
    return host


def notify(port, *settings, env=None):
    """One notify --once at debug level; returns its exit status and everything it logged."""
    args = [dslib.DARKSCOPE, "notify", "--once", "--redis", redis.url, "--subscribers", subs,
            "--set", f"notify.smtp.url=smtp://127.0.0.1:{port}", "--set", "notify.digest=0",
            "--set", "notify.max_attempts=1", "--set", "notify.timeout=20",
            "--set", "notify.from=darkscope@telescope.example", "--set", "state_dir=" + work,
            "--set", "log.level=debug"]
    for s in settings:
        args += ["--set", s]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, **(env or {})))
    return r.returncode, r.stdout + r.stderr


def messages(d):
    out = []
    for path in sorted(glob.glob(os.path.join(d, "*.eml"))):
        with open(path[:-4] + ".json") as f:
            env = json.load(f)
        with open(path, "rb") as f:
            out.append((env, f.read()))
    return out


def auth_log():
    path = os.path.join(mail, "auth.log")
    return open(path).read().split("\n")[:-1] if os.path.exists(path) else []


def dead_letters():
    return json.loads(dslib.run(["notify", "--dead-letters", "--redis", redis.url]).stdout)


logs = []
GOOD = ["notify.smtp.tls=require", f"notify.smtp.user={USER}",
        f"notify.smtp.password_file={pwfile}", f"notify.smtp.ca_file={CA}"]

# 1. STARTTLS, the server verified against the private CA, then AUTH: delivered
h1 = alert()
status, log = notify(sink.port, *GOOD)
logs.append(log)
c.eq("1: notify --once exits 0", status, 0)
got = messages(mail)
c.eq("1: one message delivered", len(got), 1)
if got:
    env, raw = got[0]
    c.eq("1: over TLS, as the configured user", (env["tls"], env["user"]), (True, USER))
    c.eq("1: to the organisation's contact", env["to"], ["soc@city-a.example"])
    c.true("1: about the alert's host", h1.encode() in raw)
c.eq("1: one successful login", auth_log(), [f"ok {USER}"])
c.eq("1: no dead letter", dead_letters(), [])

# 2. the wrong password (from the environment): the server refuses the login, nothing sent, the
#    message is a dead letter with the server's answer
alert()
status, log = notify(sink.port, "notify.smtp.tls=require", f"notify.smtp.user={USER}",
                     "notify.smtp.password_env=DS_TEST_SMTP_PASSWORD", f"notify.smtp.ca_file={CA}",
                     env={"DS_TEST_SMTP_PASSWORD": WRONG})
logs.append(log)
c.eq("2: nothing delivered with the wrong password", len(messages(mail)), 1)
c.eq("2: the server saw one refused login", auth_log()[1:], [f"refused {USER}"])
dead = dead_letters()
c.eq("2: one dead letter", len(dead), 1)
c.true(f"2: it records the refused login ({dead[0].get('last_error') if dead else None!r})",
       dead and "535" in dead[0].get("last_error", ""))

# 3. without the CA the server's certificate is not trusted: nothing sent, and the password
#    never reaches the server (no login attempted)
alert()
status, log = notify(sink.port, "notify.smtp.tls=require", f"notify.smtp.user={USER}",
                     f"notify.smtp.password_file={pwfile}")
logs.append(log)
c.eq("3: nothing delivered to an unverified server", len(messages(mail)), 1)
c.eq("3: no login attempted", len(auth_log()), 2)
dead = dead_letters()
c.true("3: the dead letter says the certificate was not trusted: "
       f"{[d.get('last_error') for d in dead]!r}",
       len(dead) == 2 and any("certificate" in d.get("last_error", "").lower() or
                              "ssl" in d.get("last_error", "").lower() for d in dead))

# 4. `require` against a server offering no STARTTLS: refused by notify, not sent in clear
alert()
status, log = notify(plain.port, *GOOD)
logs.append(log)
c.eq("4: nothing sent in clear", len(messages(plain_mail)), 0)
c.eq("4: a third dead letter", len(dead_letters()), 3)

# 5. the default `try` with a user set is `require`: a server offering no STARTTLS (or a man in
#    the middle stripping it) gets nothing, so the password cannot travel in clear
alert()
status, log = notify(plain.port, f"notify.smtp.user={USER}", f"notify.smtp.password_file={pwfile}")
logs.append(log)
c.eq("5: with a user, nothing sent to a server without STARTTLS", len(messages(plain_mail)), 0)
c.eq("5: a fourth dead letter", len(dead_letters()), 4)
# ... while without a user `try` still sends in clear when STARTTLS is not offered
alert()
status, log = notify(plain.port)
logs.append(log)
c.eq("5: without a user, `try` sends in clear to such a server", len(messages(plain_mail)), 1)

# 6. an unreadable CA file is a configuration error naming the key
status, log = notify(sink.port, *GOOD[:3], "notify.smtp.ca_file=" + os.path.join(work, "none.pem"))
logs.append(log)
c.eq("6: an unreadable CA file exits 2", status, 2)
c.true(f"6: naming the key ({log.strip()!r})", "notify.smtp.ca_file" in log)

# the secrets: in no log line, nowhere in Redis (every key's value, dumped)
for i, log in enumerate(logs):
    c.true(f"run {i + 1}: logged something", log.strip() != "")
    c.true(f"run {i + 1}: neither password in the log", PASSWORD not in log and WRONG not in log)
dump = redis.cli("EVAL", """
local out = {}
for _, k in ipairs(redis.call('KEYS', '*')) do
  local t = redis.call('TYPE', k)['ok']
  if t == 'string' then table.insert(out, redis.call('GET', k))
  elseif t == 'hash' then for _, v in ipairs(redis.call('HGETALL', k)) do table.insert(out, v) end
  elseif t == 'stream' then
    for _, e in ipairs(redis.call('XRANGE', k, '-', '+')) do
      for _, v in ipairs(e[2]) do table.insert(out, v) end
    end
  elseif t == 'zset' then
    for _, v in ipairs(redis.call('ZRANGE', k, 0, -1)) do table.insert(out, v) end
  end
end
return table.concat(out, '\\n')""", "0")
c.true("Redis holds the messages (the dump is not empty)", "city-a" in dump)
c.true("neither password anywhere in Redis", PASSWORD not in dump and WRONG not in dump)
sink.stop()
plain.stop()
c.done()
