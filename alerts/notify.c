/* `darkscope notify`: reads the alert stream through the consumer group "notify", gathers each
 * organisation's alerts for notify.digest, seals the digest into the outbox (its content and
 * so its Message-ID fixed), sends it, and only then acknowledges its alerts. Failures are retried
 * with a doubling wait; after notify.max_attempts the message goes to the dead-letter stream. */
#include "aggregator/aggregator.h"
#include "alerts/alerts.h"
#include "redis/redis.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RETRY_MIN_MS 10000
#define READ_COUNT   500

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

struct notify {
    const struct ds_config *cfg;
    struct rds_conn *conn;
    struct agg_subscribers *subs;
    struct alert_templates tpl;
    struct alert_smtp smtp;
    char password[512];
    char consumer[128];
    /* a message the server accepted whose retirement Redis did not take: retired first when
     * Redis answers again, never sent again by this process */
    char unretired[200];
    json_t *unretired_rec;
    uint64_t sent, failed, dead;
};

static int64_t now_ms(void)
{
    return ds_time_now() / 1000000;
}

static int load_password(struct notify *n, char *err, size_t errlen)
{
    const struct ds_config *cfg = n->cfg;

    n->password[0] = '\0';
    if (cfg->notify_smtp_password_file[0]) {
        FILE *f = fopen(cfg->notify_smtp_password_file, "r");
        if (!f || !fgets(n->password, sizeof(n->password), f)) {
            snprintf(err, errlen, "notify.smtp.password_file: cannot read %s",
                     cfg->notify_smtp_password_file);
            if (f)
                fclose(f);
            return -EINVAL;
        }
        fclose(f);
        n->password[strcspn(n->password, "\r\n")] = '\0';
    } else if (cfg->notify_smtp_password_env[0]) {
        const char *v = getenv(cfg->notify_smtp_password_env);
        if (!v) {
            snprintf(err, errlen, "notify.smtp.password_env: %s is not set",
                     cfg->notify_smtp_password_env);
            return -EINVAL;
        }
        snprintf(n->password, sizeof(n->password), "%s", v);
    }
    return 0;
}

/* The organisation as the message builder wants it, or NULL when unknown. */
static json_t *org_json(const struct notify *n, const char *id)
{
    int i = id ? agg_subscribers_find(n->subs, id) : -1;
    const struct agg_org *o;
    json_t *contacts;

    if (i < 0)
        return NULL;
    o = &n->subs->orgs[i];
    contacts = json_array();
    for (unsigned k = 0; k < o->n_contacts; k++)
        json_array_append_new(contacts, json_string(o->contacts[k].email));
    return json_pack("{s:s,s:s,s:s,s:s?,s:o}", "id", o->id, "name", o->name, "lang",
                     o->n_contacts ? o->contacts[0].lang : "en", "timezone", o->timezone,
                     "contacts", contacts);
}

/* A webhook delivery: the digest as JSON, signed with the organisation's secret (read from its
 * file at each attempt, so a rotated secret takes effect without a restart). */
static int send_webhook(struct notify *n, const char *key, json_t *rec, char *why, size_t len)
{
    int oi = agg_subscribers_find(n->subs, json_string_value(json_object_get(rec, "org")));
    json_int_t w = json_integer_value(json_object_get(rec, "webhook"));
    char secret[512] = "";
    FILE *f;
    int rc;

    if (oi < 0 || w < 0 || (unsigned)w >= n->subs->orgs[oi].n_webhooks) {
        snprintf(why, len, "the webhook is no longer in the subscriber file");
        return -EINVAL;
    }
    const struct agg_webhook *wh = &n->subs->orgs[oi].webhooks[w];
    f = fopen(wh->secret_file, "r");
    if (!f || !fgets(secret, sizeof(secret), f)) {
        snprintf(why, len, "webhook secret file %s: cannot read", wh->secret_file);
        if (f)
            fclose(f);
        return -EIO;
    }
    fclose(f);
    secret[strcspn(secret, "\r\n")] = '\0';
    json_t *body = json_pack("{s:s,s:s,s:O}", "org", json_string_value(json_object_get(rec, "org")),
                             "delivery", key, "alerts", json_object_get(rec, "alerts"));
    char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(body);
    rc = text ? alert_webhook_send(wh->url, secret, text, key, (long)n->cfg->notify_timeout, why,
                                   len)
              : -ENOMEM;
    memset(secret, 0, sizeof(secret));
    free(text);
    if (rc == 0)
        json_object_set_new(rec, "message_id", json_string(key));
    return rc;
}

/* New (or, at start, our own unacknowledged) alerts into their organisations' open digests. */
static int take_alerts(struct notify *n, bool pending, unsigned block_ms, size_t *got, char *err,
                       size_t errlen)
{
    json_t *entries =
        rds_notify_read(n->conn, n->consumer, pending, READ_COUNT, block_ms, err, errlen);
    json_t *open, *outbox, *e;
    size_t i;

    *got = 0;
    if (!entries)
        return -EIO;
    *got = json_array_size(entries);
    if (!*got) {
        json_decref(entries);
        return 0;
    }
    open = rds_notify_open_all(n->conn, err, errlen);
    outbox = open ? rds_notify_outbox(n->conn, err, errlen) : NULL;
    if (!open || !outbox) {
        json_decref(entries);
        json_decref(open);
        return -EIO;
    }
    json_array_foreach(entries, i, e) {
        const char *id = json_string_value(json_object_get(e, "id"));
        const char *org = json_string_value(json_object_get(json_object_get(e, "alert"), "org"));
        json_t *oj = org ? org_json(n, org) : NULL;
        bool held = false;
        const char *k;
        json_t *v, *x;
        size_t j;
        if (!oj) {
            /* early warnings and organisations no longer subscribed get no email */
            json_decref(oj);
            if (rds_notify_ack(n->conn, id, err, errlen) < 0)
                goto fail;
            continue;
        }
        json_decref(oj);
        /* already in a digest (we stopped before acknowledging): keep it once */
        json_object_foreach(open, k, v) {
            json_array_foreach(json_object_get(v, "ids"), j, x)
                held = held || strcmp(json_string_value(x), id) == 0;
        }
        json_object_foreach(outbox, k, v) {
            json_array_foreach(json_object_get(v, "ids"), j, x)
                held = held || strcmp(json_string_value(x), id) == 0;
        }
        if (held)
            continue;
        json_t *batch = json_object_get(open, org);
        if (!batch) {
            batch = json_pack("{s:I,s:[]}", "first_ms", (json_int_t)now_ms(), "ids");
            json_object_set_new(open, org, batch);
        }
        json_array_append_new(json_object_get(batch, "ids"), json_string(id));
        if (rds_notify_open_set(n->conn, org, batch, err, errlen) < 0)
            goto fail;
    }
    json_decref(entries);
    json_decref(open);
    json_decref(outbox);
    return 0;
fail:
    json_decref(entries);
    json_decref(open);
    json_decref(outbox);
    return -EIO;
}

/* Digests older than notify.digest become outbox messages with their content fixed. */
static int seal_due(struct notify *n, bool all, char *err, size_t errlen)
{
    json_t *open = rds_notify_open_all(n->conn, err, errlen), *batch;
    const char *org;
    int rc = 0;

    if (!open)
        return -EIO;
    json_object_foreach(open, org, batch) {
        json_int_t first = json_integer_value(json_object_get(batch, "first_ms"));
        if (!all && now_ms() - first < n->cfg->notify_digest * 1000)
            continue;
        json_t *alerts = rds_notify_alerts(n->conn, json_object_get(batch, "ids"), err, errlen);
        if (!alerts) {
            rc = -EIO;
            break;
        }
        char key[160];
        json_t *records = json_object();
        int oi = agg_subscribers_find(n->subs, org);
        snprintf(key, sizeof(key), "%s:%lld", org, (long long)first);
        json_t *rec = json_pack("{s:s,s:s,s:O,s:O,s:i,s:I,s:I}", "org", org, "channel", "email",
                                "ids", json_object_get(batch, "ids"), "alerts", alerts, "attempts",
                                0, "next_ms", (json_int_t)0, "created_ms", (json_int_t)now_ms());
        json_object_set_new(records, key, rec);
        /* one delivery per webhook, each with its own retries */
        for (unsigned w = 0; oi >= 0 && w < n->subs->orgs[oi].n_webhooks; w++) {
            char wkey[200];
            snprintf(wkey, sizeof(wkey), "%s#webhook%u", key, w);
            json_t *wr = json_deep_copy(rec);
            json_object_set_new(wr, "channel", json_string("webhook"));
            json_object_set_new(wr, "webhook", json_integer(w));
            json_object_set_new(records, wkey, wr);
        }
        json_decref(alerts);
        rc = rds_notify_seal(n->conn, org, records, err, errlen);
        json_decref(records);
        if (rc < 0)
            break;
    }
    json_decref(open);
    return rc;
}

static int send_due(struct notify *n, char *err, size_t errlen)
{
    json_t *outbox = rds_notify_outbox(n->conn, err, errlen), *rec;
    const char *key;

    if (!outbox)
        return -EIO;
    if (n->unretired_rec) {
        /* unless the lost answer was the EXEC's own: then it is out of the outbox already */
        if (json_object_get(outbox, n->unretired) &&
            rds_notify_sent(n->conn, n->unretired, n->unretired_rec, err, errlen) < 0) {
            json_decref(outbox);
            return -EIO;
        }
        json_object_del(outbox, n->unretired);
        json_decref(n->unretired_rec);
        n->unretired_rec = NULL;
    }
    json_object_foreach(outbox, key, rec) {
        struct alert_mail m;
        char why[1024];
        int rc;
        if (json_integer_value(json_object_get(rec, "next_ms")) > now_ms())
            continue;
        json_t *org = org_json(n, json_string_value(json_object_get(rec, "org")));
        const char *channel = json_string_value(json_object_get(rec, "channel"));
        if (org && channel && strcmp(channel, "webhook") == 0) {
            rc = send_webhook(n, key, rec, why, sizeof(why));
        } else if (!org) {
            snprintf(why, sizeof(why), "organisation %s is no longer in the subscriber file",
                     json_string_value(json_object_get(rec, "org")));
            rc = -EINVAL;
        } else {
            rc = alert_mail_build(&n->tpl, org, json_object_get(rec, "alerts"), n->cfg->notify_from,
                                  ds_time_now(), &m, why, sizeof(why));
            if (rc == 0) {
                json_object_set_new(rec, "message_id", json_string(m.message_id));
                rc = alert_smtp_send(&n->smtp, &m, why, sizeof(why));
                alert_mail_free(&m);
            }
        }
        json_decref(org);
        if (rc == 0) {
            n->sent++;
            ds_log(DS_LOG_INFO, "notify", "sent %s (%zu alerts) to %s",
                   json_string_value(json_object_get(rec, "message_id")),
                   json_array_size(json_object_get(rec, "ids")),
                   json_string_value(json_object_get(rec, "org")));
            if (rds_notify_sent(n->conn, key, rec, err, errlen) < 0) {
                /* kept until Redis takes it; a crash before then sends the same Message-ID */
                snprintf(n->unretired, sizeof(n->unretired), "%s", key);
                n->unretired_rec = json_incref(rec);
                json_decref(outbox);
                return -EIO;
            }
            continue;
        }
        n->failed++;
        json_int_t attempts = json_integer_value(json_object_get(rec, "attempts")) + 1;
        json_object_set_new(rec, "attempts", json_integer(attempts));
        json_object_set_new(rec, "last_error", json_string(why));
        if (attempts >= n->cfg->notify_max_attempts) {
            n->dead++;
            ds_log(DS_LOG_ERROR, "notify",
                   "%s: giving up after %lld attempts, moved to the "
                   "dead letters: %s",
                   key, (long long)attempts, why);
            if (rds_notify_dead(n->conn, key, rec, err, errlen) < 0) {
                json_decref(outbox);
                return -EIO;
            }
            continue;
        }
        int64_t wait = (int64_t)RETRY_MIN_MS << (attempts - 1 < 20 ? attempts - 1 : 20);
        if (wait > n->cfg->notify_retry_max * 1000)
            wait = n->cfg->notify_retry_max * 1000;
        json_object_set_new(rec, "next_ms", json_integer(now_ms() + wait));
        ds_log(DS_LOG_WARN, "notify", "%s: attempt %lld failed, next in %lld s: %s", key,
               (long long)attempts, (long long)(wait / 1000), why);
        if (rds_notify_update(n->conn, key, rec, err, errlen) < 0) {
            json_decref(outbox);
            return -EIO;
        }
    }
    json_decref(outbox);
    return 0;
}

static int setup(struct notify *n, const struct ds_config *cfg, char *err, size_t errlen)
{
    struct agg_thresholds th;
    struct ds_user user;
    bool as_user;
    char host[64] = "host";

    memset(n, 0, sizeof(*n));
    n->cfg = cfg;
    if (!cfg->agg_subscribers[0]) {
        snprintf(err, errlen,
                 "aggregate.subscribers: expected the subscriber file (contacts "
                 "and languages), got nothing");
        return -EINVAL;
    }
    agg_thresholds_from_config(cfg, &th);
    if (agg_subscribers_load(cfg->agg_subscribers, &th, &n->subs, err, errlen) < 0)
        return -EINVAL;
    if (alert_templates_load(&n->tpl,
                             cfg->notify_templates[0] ? cfg->notify_templates : DS_TEMPLATES_DIR,
                             err, errlen) < 0)
        return -EINVAL;
    if (load_password(n, err, errlen) < 0)
        return -EINVAL;
    if (cfg->notify_smtp_ca_file[0] && access(cfg->notify_smtp_ca_file, R_OK) < 0) {
        snprintf(err, errlen, "notify.smtp.ca_file: cannot read %s: %s", cfg->notify_smtp_ca_file,
                 strerror(errno));
        return -EINVAL;
    }
    n->smtp = (struct alert_smtp){.url = cfg->notify_smtp_url,
                                  .tls = cfg->notify_smtp_tls,
                                  .user = cfg->notify_smtp_user,
                                  .password = n->password,
                                  .ca_file = cfg->notify_smtp_ca_file,
                                  .timeout_s = (long)cfg->notify_timeout};
    gethostname(host, sizeof(host) - 1);
    /* a stable name: after a restart this consumer finds its own unacknowledged alerts */
    snprintf(n->consumer, sizeof(n->consumer), "notify-%s", host);
    as_user = geteuid() == 0 && ds_user_resolve(cfg->user, &user, err, errlen) == 0;
    n->conn = rds_conn_new(cfg->redis_url, cfg->state_dir, as_user ? &user : NULL, err, errlen);
    return n->conn ? 0 : -EINVAL;
}

static void teardown(struct notify *n)
{
    rds_conn_free(n->conn);
    json_decref(n->unretired_rec);
    agg_subscribers_free(n->subs);
    alert_templates_free(&n->tpl);
    memset(n->password, 0, sizeof(n->password));
}

int alert_notify_run(const struct ds_config *cfg, bool once)
{
    struct notify n;
    char err[1024];
    bool started = false;
    int status = 0;

    if (setup(&n, cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "darkscope notify: %s\n", err);
        teardown(&n);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
    signal(SIGPIPE, SIG_IGN);
    while (!stop_flag) {
        size_t got = 0;
        if (rds_conn_ensure(n.conn) < 0) {
            if (once) {
                fprintf(stderr, "darkscope notify: redis: %s\n", rds_conn_error(n.conn));
                status = 3;
                break;
            }
            ds_sleep_ns(500 * 1000000LL);
            continue;
        }
        if (!started) {
            if (rds_notify_group(n.conn, err, sizeof(err)) < 0)
                goto retry;
            /* our own alerts read but not acknowledged before a stop or crash */
            do {
                if (take_alerts(&n, true, 0, &got, err, sizeof(err)) < 0)
                    goto retry;
            } while (got == READ_COUNT);
            started = true;
        }
        if (take_alerts(&n, false, once ? 0 : 1000, &got, err, sizeof(err)) < 0 ||
            seal_due(&n, once && got == 0, err, sizeof(err)) < 0 ||
            send_due(&n, err, sizeof(err)) < 0)
            goto retry;
        if (once && got == 0) {
            json_t *open = rds_notify_open_all(n.conn, err, sizeof(err));
            json_t *outbox = open ? rds_notify_outbox(n.conn, err, sizeof(err)) : NULL;
            bool idle =
                open && outbox && json_object_size(open) == 0 && json_object_size(outbox) == 0;
            bool waiting = outbox && json_object_size(outbox) > 0;
            json_decref(open);
            json_decref(outbox);
            if (idle)
                break;
            if (waiting)
                ds_sleep_ns(200 * 1000000LL);
        }
        continue;
retry:
        ds_log(DS_LOG_WARN, "notify", "%s (retrying)", err);
        ds_sleep_ns(1000 * 1000000LL);
    }
    ds_log(DS_LOG_INFO, "notify", "%llu sent, %llu failed attempts, %llu dead letters",
           (unsigned long long)n.sent, (unsigned long long)n.failed, (unsigned long long)n.dead);
    teardown(&n);
    curl_global_cleanup();
    return status;
}

static struct rds_conn *plain_conn(const struct ds_config *cfg)
{
    char err[512];
    struct ds_user user;
    bool as_user = geteuid() == 0 && ds_user_resolve(cfg->user, &user, err, sizeof(err)) == 0;
    struct rds_conn *c =
        rds_conn_new(cfg->redis_url, cfg->state_dir, as_user ? &user : NULL, err, sizeof(err));

    if (!c || rds_conn_ensure(c) < 0) {
        fprintf(stderr, "darkscope notify: redis: %s\n", c ? rds_conn_error(c) : err);
        rds_conn_free(c);
        return NULL;
    }
    return c;
}

int alert_notify_dead_letters(const struct ds_config *cfg)
{
    struct rds_conn *c = plain_conn(cfg);
    char err[512];
    json_t *list;

    if (!c)
        return 3;
    list = rds_notify_dead_list(c, err, sizeof(err));
    rds_conn_free(c);
    if (!list) {
        fprintf(stderr, "darkscope notify: %s\n", err);
        return 1;
    }
    json_dumpf(list, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(list);
    return 0;
}

int alert_notify_retry(const struct ds_config *cfg, const char *id)
{
    struct rds_conn *c = plain_conn(cfg);
    char err[512];
    int rc;

    if (!c)
        return 3;
    rc = rds_notify_retry(c, id, err, sizeof(err));
    rds_conn_free(c);
    if (rc < 0) {
        fprintf(stderr, "darkscope notify --retry: %s\n", err);
        return rc == -ENOENT ? 2 : 1;
    }
    printf("%s: back in the outbox\n", id);
    return 0;
}
