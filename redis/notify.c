/* The notifier's keys (docs/redis-schema.md, "Notification"): a consumer group on the alert
 * stream, open digests per organisation, the outbox of sealed messages, the dead-letter stream,
 * and the sent log. Entries of the alert stream are acknowledged only when their message was
 * accepted by the mail server (or dead-lettered), in the same transaction that retires it. */
#include "redis/rds_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define K_ALERTS RDS_SCHEMA ":alerts"
#define K_OPEN   RDS_SCHEMA ":notify:open"
#define K_OUTBOX RDS_SCHEMA ":notify:outbox"
#define K_DEAD   RDS_SCHEMA ":notify:dead"
#define K_SENT   RDS_SCHEMA ":notify:sent"
#define GROUP    "notify"

int rds_notify_group(struct rds_conn *c, char *err, size_t errlen)
{
    /* from the start of the stream: alerts written before the first notifier are mailed too */
    redisReply *r =
        redisCommand(rds_conn_ctx(c), "XGROUP CREATE " K_ALERTS " " GROUP " 0 MKSTREAM");

    /* BUSYGROUP: it exists already */
    if (r && (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "BUSYGROUP", 9) == 0)) {
        freeReplyObject(r);
        return 0;
    }
    rds_conn_fail(c, "XGROUP", r);
    snprintf(err, errlen, "redis: %s", rds_conn_error(c));
    if (r)
        freeReplyObject(r);
    return -EIO;
}

json_t *rds_notify_read(struct rds_conn *c, const char *consumer, bool pending, unsigned count,
                        unsigned block_ms, char *err, size_t errlen)
{
    redisReply *r;

    /* BLOCK 0 would wait forever: no BLOCK at all when not waiting */
    if (pending)
        r = rds_conn_command(c, "notify", err, errlen,
                             "XREADGROUP GROUP " GROUP " %s COUNT %u STREAMS " K_ALERTS " 0",
                             consumer, count);
    else if (block_ms)
        r = rds_conn_command(c, "notify", err, errlen,
                             "XREADGROUP GROUP " GROUP " %s COUNT %u BLOCK %u STREAMS " K_ALERTS
                             " >",
                             consumer, count, block_ms);
    else
        r = rds_conn_command(c, "notify", err, errlen,
                             "XREADGROUP GROUP " GROUP " %s COUNT %u STREAMS " K_ALERTS " >",
                             consumer, count);
    json_t *out;

    if (!r)
        return NULL;
    out = json_array();
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->elements == 2) {
        const redisReply *entries = r->element[0]->element[1];
        for (size_t i = 0; i < entries->elements; i++) {
            const redisReply *e = entries->element[i];
            json_t *alert = NULL;
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
                continue;
            const redisReply *f = e->element[1];
            for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2) {
                if (strcmp(f->element[k]->str, "alert") == 0)
                    alert = json_loadb(f->element[k + 1]->str, f->element[k + 1]->len, 0, NULL);
            }
            json_array_append_new(out, json_pack("{s:s,s:o}", "id", e->element[0]->str, "alert",
                                                 alert ? alert : json_null()));
        }
    }
    freeReplyObject(r);
    return out;
}

int rds_notify_ack(struct rds_conn *c, const char *id, char *err, size_t errlen)
{
    redisReply *r =
        rds_conn_command(c, "notify", err, errlen, "XACK " K_ALERTS " " GROUP " %s", id);

    if (!r)
        return -EIO;
    freeReplyObject(r);
    return 0;
}

static json_t *hash_json(struct rds_conn *c, const char *key, char *err, size_t errlen)
{
    redisReply *r = rds_conn_command(c, "notify", err, errlen, "HGETALL %s", key);
    json_t *o;

    if (!r)
        return NULL;
    o = json_object();
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        json_t *v = json_loadb(r->element[i + 1]->str, r->element[i + 1]->len, 0, NULL);
        if (v)
            json_object_set_new(o, r->element[i]->str, v);
    }
    freeReplyObject(r);
    return o;
}

json_t *rds_notify_open_all(struct rds_conn *c, char *err, size_t errlen)
{
    return hash_json(c, K_OPEN, err, errlen);
}

json_t *rds_notify_outbox(struct rds_conn *c, char *err, size_t errlen)
{
    return hash_json(c, K_OUTBOX, err, errlen);
}

int rds_notify_open_set(struct rds_conn *c, const char *org, json_t *batch, char *err,
                        size_t errlen)
{
    char *text = json_dumps(batch, JSON_COMPACT);
    redisReply *r =
        text ? rds_conn_command(c, "notify", err, errlen, "HSET " K_OPEN " %s %s", org, text)
             : NULL;

    free(text);
    if (!r)
        return -EIO;
    freeReplyObject(r);
    return 0;
}

json_t *rds_notify_alerts(struct rds_conn *c, json_t *ids, char *err, size_t errlen)
{
    json_t *out = json_array(), *id;
    size_t i;

    json_array_foreach(ids, i, id) {
        redisReply *r = rds_conn_command(c, "notify", err, errlen, "XRANGE " K_ALERTS " %s %s",
                                         json_string_value(id), json_string_value(id));
        if (!r) {
            json_decref(out);
            return NULL;
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
            const redisReply *f = r->element[0]->element[1];
            for (size_t k = 0; k + 1 < f->elements; k += 2) {
                if (strcmp(f->element[k]->str, "alert") != 0)
                    continue;
                json_t *a = json_loadb(f->element[k + 1]->str, f->element[k + 1]->len, 0, NULL);
                if (a)
                    json_array_append_new(out, a);
            }
        }
        freeReplyObject(r);
    }
    return out;
}

/* Runs the queued commands of a MULTI; returns 0 when EXEC ran them all. */
static int exec_all(struct rds_conn *c, unsigned queued, const char *what, char *err, size_t errlen)
{
    int rc = 0;

    for (unsigned k = 0; k < queued; k++) {
        void *reply = NULL;
        if (redisGetReply(rds_conn_ctx(c), &reply) != REDIS_OK || !reply) {
            rds_conn_fail(c, what, NULL);
            snprintf(err, errlen, "redis: %s", rds_conn_error(c));
            return -EIO;
        }
        redisReply *r = reply;
        if (r->type == REDIS_REPLY_ERROR && rc == 0) {
            snprintf(err, errlen, "redis: %s: %s", what, r->str);
            rc = -EIO;
        }
        if (k == queued - 1 && r->type != REDIS_REPLY_ARRAY && rc == 0) {
            snprintf(err, errlen, "redis: %s: EXEC failed", what);
            rc = -EIO;
        }
        freeReplyObject(r);
    }
    return rc;
}

int rds_notify_seal(struct rds_conn *c, const char *org, json_t *records, char *err, size_t errlen)
{
    redisContext *x = rds_conn_ctx(c);
    unsigned queued = 0;
    const char *key;
    json_t *rec;

    redisAppendCommand(x, "MULTI");
    queued++;
    json_object_foreach(records, key, rec) {
        char *text = json_dumps(rec, JSON_COMPACT);
        redisAppendCommand(x, "HSET " K_OUTBOX " %s %s", key, text ? text : "{}");
        queued++;
        free(text);
    }
    redisAppendCommand(x, "HDEL " K_OPEN " %s", org);
    redisAppendCommand(x, "EXEC");
    queued += 2;
    return exec_all(c, queued, "seal", err, errlen);
}

int rds_notify_update(struct rds_conn *c, const char *key, json_t *record, char *err, size_t errlen)
{
    char *text = json_dumps(record, JSON_COMPACT);
    redisReply *r =
        text ? rds_conn_command(c, "notify", err, errlen, "HSET " K_OUTBOX " %s %s", key, text)
             : NULL;

    free(text);
    if (!r)
        return -EIO;
    freeReplyObject(r);
    return 0;
}

/* Retires an outbox message: acknowledged alerts, and an entry in `sent` or `dead`. */
static int retire(struct rds_conn *c, const char *key, json_t *record, bool dead, char *err,
                  size_t errlen)
{
    redisContext *x = rds_conn_ctx(c);
    json_t *ids = json_object_get(record, "ids"), *id;
    char *text = json_dumps(record, JSON_COMPACT);
    unsigned queued = 0;
    size_t i;

    if (!text)
        return -ENOMEM;
    redisAppendCommand(x, "MULTI");
    queued++;
    json_array_foreach(ids, i, id) {
        redisAppendCommand(x, "XACK " K_ALERTS " " GROUP " %s", json_string_value(id));
        queued++;
    }
    redisAppendCommand(x, "HDEL " K_OUTBOX " %s", key);
    queued++;
    if (dead)
        redisAppendCommand(x, "XADD " K_DEAD " * key %s record %s", key, text);
    else
        redisAppendCommand(x,
                           "XADD " K_SENT " MAXLEN ~ 100000 * key %s org %s alerts %d "
                           "message_id %s",
                           key, json_string_value(json_object_get(record, "org")) ?: "",
                           (int)json_array_size(ids),
                           json_string_value(json_object_get(record, "message_id")) ?: "");
    queued++;
    redisAppendCommand(x, "EXEC");
    queued++;
    free(text);
    return exec_all(c, queued, dead ? "dead-letter" : "sent", err, errlen);
}

int rds_notify_sent(struct rds_conn *c, const char *key, json_t *record, char *err, size_t errlen)
{
    return retire(c, key, record, false, err, errlen);
}

int rds_notify_dead(struct rds_conn *c, const char *key, json_t *record, char *err, size_t errlen)
{
    return retire(c, key, record, true, err, errlen);
}

json_t *rds_notify_dead_list(struct rds_conn *c, char *err, size_t errlen)
{
    redisReply *r = rds_conn_command(c, "notify", err, errlen, "XRANGE " K_DEAD " - +");
    json_t *out;

    if (!r)
        return NULL;
    out = json_array();
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i], *f = e->element[1];
        json_t *rec = NULL;
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (strcmp(f->element[k]->str, "record") == 0)
                rec = json_loadb(f->element[k + 1]->str, f->element[k + 1]->len, 0, NULL);
        }
        if (!rec)
            continue;
        json_object_set_new(rec, "dead_letter_id", json_string(e->element[0]->str));
        json_object_del(rec, "alerts"); /* the list stays readable; the alerts stay in it */
        json_array_append_new(out, rec);
    }
    freeReplyObject(r);
    return out;
}

int rds_notify_retry(struct rds_conn *c, const char *dead_id, char *err, size_t errlen)
{
    redisReply *r =
        rds_conn_command(c, "notify", err, errlen, "XRANGE " K_DEAD " %s %s", dead_id, dead_id);
    json_t *rec = NULL;
    const char *key = NULL;
    char keybuf[160] = "";

    if (!r)
        return -EIO;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        const redisReply *f = r->element[0]->element[1];
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (strcmp(f->element[k]->str, "record") == 0)
                rec = json_loadb(f->element[k + 1]->str, f->element[k + 1]->len, 0, NULL);
            if (strcmp(f->element[k]->str, "key") == 0)
                snprintf(keybuf, sizeof(keybuf), "%s", f->element[k + 1]->str);
        }
    }
    freeReplyObject(r);
    key = keybuf;
    if (!rec || !key[0]) {
        json_decref(rec);
        snprintf(err, errlen, "no dead letter %s", dead_id);
        return -ENOENT;
    }
    json_object_set_new(rec, "attempts", json_integer(0));
    json_object_set_new(rec, "next_ms", json_integer(0));
    /* the alerts were acknowledged when the letter died: the outbox record carries them */
    json_object_set_new(rec, "acked", json_true());
    char *text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    redisContext *x = rds_conn_ctx(c);
    redisAppendCommand(x, "MULTI");
    redisAppendCommand(x, "HSET " K_OUTBOX " %s %s", key, text ? text : "{}");
    redisAppendCommand(x, "XDEL " K_DEAD " %s", dead_id);
    redisAppendCommand(x, "EXEC");
    free(text);
    return exec_all(c, 4, "retry", err, errlen);
}
