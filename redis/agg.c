/* The aggregator's keys (docs/redis-schema.md, "Alerts and incidents"): reading buckets'
 * source and victim records as lines, the incident table, the early-warning state, and one
 * MULTI/EXEC per processed bucket guarded by the checkpoint, so a bucket's incidents, alerts and
 * state land together exactly once. */
#include "redis/rds_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define K_CHECKPOINT RDS_SCHEMA ":agg:checkpoint"
#define K_INCIDENTS  RDS_SCHEMA ":incidents"
#define K_OPEN       RDS_SCHEMA ":incidents:open"
#define K_EW         RDS_SCHEMA ":ew"
#define K_ALERTS     RDS_SCHEMA ":alerts"
#define SHARD_BATCH  64  /* shards fetched per HMGET */
#define FILTER_BATCH 256 /* index entries given to the filter at once */
#define ALERTS_KEEP  1000000

int rds_agg_sensors(struct rds_conn *c, struct rds_sensor_state **out, size_t *n, char *err,
                    size_t errlen)
{
    json_t *all = rds_query_sensors(c, err, errlen), *rec;
    const char *name;
    size_t i = 0;

    *out = NULL;
    *n = 0;
    if (!all)
        return -EIO;
    *out = calloc(json_object_size(all) + 1, sizeof(**out));
    if (!*out) {
        json_decref(all);
        return -ENOMEM;
    }
    json_object_foreach(all, name, rec) {
        struct rds_sensor_state *s = &(*out)[i++];
        json_t *dn = json_object_get(rec, "darknet"), *p;
        size_t k;
        snprintf(s->name, sizeof(s->name), "%s", name);
        s->bucket_seconds = json_integer_value(json_object_get(rec, "bucket_seconds"));
        s->last_bucket = json_integer_value(json_object_get(rec, "last_bucket"));
        s->updated = json_integer_value(json_object_get(rec, "updated"));
        ds_prefixset_init(&s->darknet);
        json_array_foreach(dn, k, p) {
            struct ds_cidr cidr;
            if (json_is_string(p) && ds_cidr_parse(json_string_value(p), &cidr) == 0 &&
                ds_prefixset_add(&s->darknet, &cidr) < 0)
                break;
        }
    }
    *n = i;
    json_decref(all);
    return 0;
}

int rds_agg_has_bucket(struct rds_conn *c, const char *sensor, int64_t start, char *err,
                       size_t errlen)
{
    redisReply *r = rds_conn_command(c, "aggregate", err, errlen,
                                     "ZSCORE " RDS_SCHEMA ":idx:%s %lld", sensor, (long long)start);
    int has;

    if (!r)
        return -EIO;
    has = r->type == REDIS_REPLY_STRING;
    freeReplyObject(r);
    return has;
}

int64_t rds_agg_next_bucket(struct rds_conn *c, const char *sensor, int64_t after, char *err,
                            size_t errlen)
{
    redisReply *r = rds_conn_command(c, "aggregate", err, errlen,
                                     "ZRANGEBYSCORE " RDS_SCHEMA ":idx:%s (%lld +inf LIMIT 0 1",
                                     sensor, (long long)after);
    int64_t v = INT64_MAX;

    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1)
        v = strtoll(r->element[0]->str, NULL, 10);
    freeReplyObject(r);
    return v;
}

/* One batch of shards [first, first + SHARD_BATCH): HMGET of a hash's shard fields (prefix
 * NULL), or MGET of the strings <prefix><shard>; NULL on error. */
static redisReply *shard_batch(struct rds_conn *c, const char *key, const char *prefix,
                               unsigned first, char *err, size_t errlen)
{
    struct rds_argv a;
    void *v = NULL;

    rds_argv_init(&a);
    if (prefix) {
        rds_argv_add(&a, "MGET", 4);
    } else {
        rds_argv_add(&a, "HMGET", 5);
        rds_argv_add(&a, key, strlen(key));
    }
    for (unsigned s = first; s < first + SHARD_BATCH && s < RDS_SHARDS; s++) {
        if (prefix)
            rds_argv_addf(&a, "%s%u", prefix, s);
        else
            rds_argv_addf(&a, "%u", s);
    }
    if (rds_argv_append(rds_conn_ctx(c), &a) < 0 ||
        redisGetReply(rds_conn_ctx(c), &v) != REDIS_OK || !v ||
        ((redisReply *)v)->type != REDIS_REPLY_ARRAY) {
        rds_conn_fail(c, prefix ? "MGET shards" : "HMGET shards", v);
        snprintf(err, errlen, "redis: %s", rds_conn_error(c));
        if (v)
            freeReplyObject(v);
        rds_argv_fini(&a);
        return NULL;
    }
    rds_argv_fini(&a);
    return v;
}

/* Splits one line "ip TAB json" and calls cb (lines without a TAB are skipped). */
static int one_line(const char *p, size_t len, rds_line_fn cb, void *ctx)
{
    const char *tab = memchr(p, '\t', len);

    if (len && p[len - 1] == '\n')
        len--;
    if (!tab || tab >= p + len)
        return 0;
    return cb(ctx, p, (size_t)(tab - p), tab + 1, (size_t)(p + len - tab - 1));
}

/* Lines "ip TAB json" of one hash of shards (a late part), fetched SHARD_BATCH fields at a
 * time; lines whose address `want` refuses are skipped unparsed beyond the address. */
static int each_line(struct rds_conn *c, const char *key, rds_addr_filter_fn want, rds_line_fn cb,
                     void *ctx, char *err, size_t errlen)
{
    for (unsigned first = 0; first < RDS_SHARDS; first += SHARD_BATCH) {
        redisReply *r = shard_batch(c, key, NULL, first, err, errlen);
        if (!r)
            return -EIO;
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *f = r->element[i];
            if (f->type != REDIS_REPLY_STRING)
                continue;
            const char *p = f->str, *end = f->str + f->len;
            while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p)), *tab;
                char text[DS_ADDR_STRLEN];
                struct ds_addr a;
                if (!nl)
                    nl = end;
                tab = memchr(p, '\t', (size_t)(nl - p));
                if (want && tab && (size_t)(tab - p) < sizeof(text)) {
                    bool wanted = false;
                    memcpy(text, p, (size_t)(tab - p));
                    text[tab - p] = '\0';
                    if (ds_addr_parse(text, &a) == 0)
                        want(ctx, &a, 1, &wanted);
                    if (!wanted)
                        tab = NULL;
                }
                if (tab && one_line(p, (size_t)(nl - p), cb, ctx) < 0) {
                    freeReplyObject(r);
                    snprintf(err, errlen, "aggregate: record callback failed");
                    return -ECANCELED;
                }
                p = nl + 1;
            }
        }
        freeReplyObject(r);
    }
    return 0;
}

/* A wanted line of a whole bucket: where it is in its shard's string. */
struct want_line {
    uint32_t shard, off, len;
};

struct want_list {
    struct want_line *v;
    size_t n, cap;
};

static int want_push(struct want_list *w, uint32_t shard, uint32_t off, uint32_t len)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        struct want_line *v = realloc(w->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        w->v = v;
        w->cap = cap;
    }
    w->v[w->n++] = (struct want_line){shard, off, len};
    return 0;
}

/* GETRANGE of each wanted line, pipelined GETRANGE_BATCH at a time, the next batch sent before
 * the replies of the current one are read (Redis answers it while cb parses); cb for each. */
#define GETRANGE_BATCH 1024
static int send_ranges(redisContext *rc, const char *rec_prefix, const struct want_list *w,
                       size_t first, size_t end)
{
    for (size_t i = first; i < end; i++) {
        const struct want_line *l = &w->v[i];
        char key[RDS_KEY_MAX], from[16], to[16];
        const char *argv[] = {"GETRANGE", key, from, to};
        size_t lens[] = {8, (size_t)snprintf(key, sizeof(key), "%s%u", rec_prefix, l->shard),
                         (size_t)snprintf(from, sizeof(from), "%u", l->off),
                         (size_t)snprintf(to, sizeof(to), "%u", l->off + l->len - 1)};
        if (redisAppendCommandArgv(rc, 4, argv, lens) != REDIS_OK)
            return -ENOMEM;
    }
    return rds_conn_push_out(rc) < 0 ? -EIO : 0;
}

static int fetch_lines(struct rds_conn *c, const char *rec_prefix, const struct want_list *w,
                       rds_line_fn cb, void *ctx, char *err, size_t errlen)
{
    redisContext *rc = rds_conn_ctx(c);
    size_t sent = w->n < GETRANGE_BATCH ? w->n : GETRANGE_BATCH;

    if (send_ranges(rc, rec_prefix, w, 0, sent) < 0)
        goto fail;
    for (size_t first = 0; first < w->n; first += GETRANGE_BATCH) {
        size_t end = first + GETRANGE_BATCH < w->n ? first + GETRANGE_BATCH : w->n;
        size_t next = end + GETRANGE_BATCH < w->n ? end + GETRANGE_BATCH : w->n;
        if (next > sent) {
            if (send_ranges(rc, rec_prefix, w, sent, next) < 0)
                goto fail;
            sent = next;
        }
        for (size_t i = first; i < end; i++) {
            void *v = NULL;
            if (redisGetReply(rc, &v) != REDIS_OK || !v)
                goto fail;
            redisReply *r = v;
            int cbr = 0;
            if (r->type == REDIS_REPLY_STRING)
                cbr = one_line(r->str, r->len, cb, ctx);
            freeReplyObject(r);
            if (cbr < 0) {
                /* the replies still pending are read and dropped with the connection */
                rds_conn_fail(c, "GETRANGE", NULL);
                snprintf(err, errlen, "aggregate: record callback failed");
                return -ECANCELED;
            }
        }
    }
    return 0;
fail:
    rds_conn_fail(c, "GETRANGE", NULL);
    snprintf(err, errlen, "redis: %s", rds_conn_error(c));
    return -EIO;
}

/* Every line of a whole bucket: the shards' strings, SHARD_BATCH per MGET. */
static int each_shard_string(struct rds_conn *c, const char *rec_prefix, rds_line_fn cb, void *ctx,
                             char *err, size_t errlen)
{
    for (unsigned first = 0; first < RDS_SHARDS; first += SHARD_BATCH) {
        redisReply *r = shard_batch(c, NULL, rec_prefix, first, err, errlen);
        if (!r)
            return -EIO;
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *f = r->element[i];
            if (f->type != REDIS_REPLY_STRING)
                continue;
            for (const char *p = f->str, *end = f->str + f->len; p < end;) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                nl = nl ? nl + 1 : end;
                if (one_line(p, (size_t)(nl - p), cb, ctx) < 0) {
                    freeReplyObject(r);
                    snprintf(err, errlen, "query: record callback failed");
                    return -ECANCELED;
                }
                p = nl;
            }
        }
        freeReplyObject(r);
    }
    return 0;
}

/* A whole bucket: its index, then the wanted lines (every line when want is NULL). */
static int each_indexed(struct rds_conn *c, const char *sensor, int64_t start, const char *kind,
                        rds_addr_filter_fn want, rds_line_fn cb, void *ctx, char *err,
                        size_t errlen)
{
    char idx[RDS_KEY_MAX], rec[RDS_KEY_MAX], part[16];
    struct want_list w = {0};
    int rc = 0;

    snprintf(part, sizeof(part), "%sidx", kind);
    rds_key_bucket(idx, sizeof(idx), sensor, start, part);
    snprintf(part, sizeof(part), "%srec:", kind);
    rds_key_bucket(rec, sizeof(rec), sensor, start, part);
    if (!want)
        return each_shard_string(c, rec, cb, ctx, err, errlen);
    for (unsigned first = 0; first < RDS_SHARDS && rc == 0; first += SHARD_BATCH) {
        redisReply *r = shard_batch(c, idx, NULL, first, err, errlen);
        if (!r) {
            rc = -EIO;
            break;
        }
        for (size_t i = 0; i < r->elements && rc == 0; i++) {
            const redisReply *f = r->element[i];
            const char *p;
            struct ds_addr a[FILTER_BATCH];
            uint32_t len[FILTER_BATCH], off = 0;
            bool wanted[FILTER_BATCH];
            size_t n = 0;
            int got = 1;
            if (f->type != REDIS_REPLY_STRING)
                continue;
            p = f->str;
            while (got == 1 && rc == 0) {
                /* a batch of entries, filtered together */
                for (n = 0; n < FILTER_BATCH; n++) {
                    got = rds_index_next(&p, f->str + f->len, &a[n], &len[n]);
                    if (got != 1)
                        break;
                }
                if (want)
                    want(ctx, a, n, wanted);
                for (size_t k = 0; k < n; k++) {
                    if ((!want || wanted[k]) &&
                        want_push(&w, first + (uint32_t)i, off, len[k]) < 0) {
                        snprintf(err, errlen, "aggregate: out of memory");
                        rc = -ENOMEM;
                        break;
                    }
                    off += len[k];
                }
            }
            if (got < 0)
                ds_log(DS_LOG_WARN, "redis", "%s field %zu: malformed index entry, rest skipped",
                       idx, first + i);
        }
        freeReplyObject(r);
    }
    if (rc == 0)
        rc = fetch_lines(c, rec, &w, cb, ctx, err, errlen);
    free(w.v);
    return rc;
}

int rds_agg_each_record(struct rds_conn *c, const char *sensor, int64_t start, bool victims,
                        rds_addr_filter_fn want, rds_line_fn cb, void *ctx, char *err,
                        size_t errlen)
{
    const char *kind = victims ? "vic" : "src";
    char key[RDS_KEY_MAX], part[48];
    redisReply *parts;
    int rc;

    rc = each_indexed(c, sensor, start, kind, want, cb, ctx, err, errlen);
    if (rc < 0)
        return rc;
    /* late parts: their own hashes of lines, listed in `parts` */
    parts = rds_conn_command(c, "aggregate", err, errlen, "SMEMBERS %s",
                             rds_key_bucket(key, sizeof(key), sensor, start, "parts"));
    if (!parts)
        return -EIO;
    for (size_t i = 0; i < parts->elements && rc == 0; i++) {
        snprintf(part, sizeof(part), "%s:%s", kind, parts->element[i]->str);
        rc = each_line(c, rds_key_bucket(key, sizeof(key), sensor, start, part), want, cb, ctx, err,
                       errlen);
    }
    freeReplyObject(parts);
    return rc;
}

/* HGETALL of a hash, each field to cb. */
static int each_field(struct rds_conn *c, const char *key, rds_field_fn cb, void *ctx, char *err,
                      size_t errlen)
{
    redisReply *r = rds_conn_command(c, "aggregate", err, errlen, "HGETALL %s", key);
    int rc = 0;

    if (!r)
        return -EIO;
    for (size_t i = 0; i + 1 < r->elements && rc == 0; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        if (cb(ctx, f->str, f->len, v->str, v->len) < 0) {
            snprintf(err, errlen, "aggregate: field callback failed");
            rc = -ECANCELED;
        }
    }
    freeReplyObject(r);
    return rc;
}

struct port_filter {
    rds_field_fn cb;
    void *ctx;
};

/* The port hash holds "<port>:p" (packets) and "<port>:s" (sources): sources only. */
static int port_field(void *ctx, const char *name, size_t len, const char *value, size_t vlen)
{
    struct port_filter *f = ctx;

    if (len < 3 || name[len - 2] != ':' || name[len - 1] != 's')
        return 0;
    return f->cb(f->ctx, name, len - 2, value, vlen);
}

int rds_agg_port_sources(struct rds_conn *c, const char *sensor, int64_t start, rds_field_fn cb,
                         void *ctx, char *err, size_t errlen)
{
    char key[RDS_KEY_MAX];
    struct port_filter f = {cb, ctx};

    return each_field(c, rds_key_bucket(key, sizeof(key), sensor, start, "port"), port_field, &f,
                      err, errlen);
}

int64_t rds_agg_checkpoint(struct rds_conn *c, char *err, size_t errlen)
{
    redisReply *r = rds_conn_command(c, "aggregate", err, errlen, "GET " K_CHECKPOINT);
    int64_t v = -1;

    if (!r)
        return -2;
    if (r->type == REDIS_REPLY_STRING)
        v = strtoll(r->str, NULL, 10);
    freeReplyObject(r);
    return v;
}

json_t *rds_agg_incidents_get(struct rds_conn *c, const char *const *fields, size_t n, char *err,
                              size_t errlen)
{
    json_t *out = json_object();

    for (size_t first = 0; first < n; first += 512) {
        struct rds_argv a;
        void *v = NULL;
        redisReply *r;
        size_t last = first + 512 < n ? first + 512 : n;
        rds_argv_init(&a);
        rds_argv_add(&a, "HMGET", 5);
        rds_argv_add(&a, K_INCIDENTS, strlen(K_INCIDENTS));
        for (size_t i = first; i < last; i++)
            rds_argv_add(&a, fields[i], strlen(fields[i]));
        if (rds_argv_append(rds_conn_ctx(c), &a) < 0 ||
            redisGetReply(rds_conn_ctx(c), &v) != REDIS_OK || !v ||
            ((redisReply *)v)->type != REDIS_REPLY_ARRAY) {
            rds_conn_fail(c, "HMGET incidents", v);
            snprintf(err, errlen, "redis: %s", rds_conn_error(c));
            if (v)
                freeReplyObject(v);
            rds_argv_fini(&a);
            json_decref(out);
            return NULL;
        }
        rds_argv_fini(&a);
        r = v;
        for (size_t i = 0; i < r->elements; i++) {
            if (r->element[i]->type != REDIS_REPLY_STRING)
                continue;
            json_t *inc = json_loadb(r->element[i]->str, r->element[i]->len, 0, NULL);
            if (inc)
                json_object_set_new(out, fields[first + i], inc);
        }
        freeReplyObject(r);
    }
    return out;
}

json_t *rds_agg_incidents_quiet(struct rds_conn *c, int64_t before, char *err, size_t errlen)
{
    redisReply *r =
        rds_conn_command(c, "aggregate", err, errlen,
                         "ZRANGEBYSCORE " K_OPEN " -inf (%lld LIMIT 0 10000", (long long)before);
    json_t *fields;

    if (!r)
        return NULL;
    fields = json_array();
    for (size_t i = 0; i < r->elements; i++)
        json_array_append_new(fields, json_string(r->element[i]->str));
    freeReplyObject(r);
    return fields;
}

int rds_agg_ew_state(struct rds_conn *c, rds_field_fn cb, void *ctx, char *err, size_t errlen)
{
    redisReply *r = rds_conn_command(c, "aggregate", err, errlen, "TYPE " K_EW);
    int rc = 0;

    if (!r)
        return -EIO;
    bool hash = r->type == REDIS_REPLY_STATUS && strcmp(r->str, "hash") == 0;
    freeReplyObject(r);
    if (hash) /* written by darkscope before 2026-11-26; the next commit replaces it */
        return each_field(c, K_EW, cb, ctx, err, errlen);
    r = rds_conn_command(c, "aggregate", err, errlen, "GET " K_EW);
    if (!r)
        return -EIO;
    if (r->type == REDIS_REPLY_STRING) {
        /* one line per port: "<port> <state>\n" */
        for (const char *p = r->str, *end = r->str + r->len; p < end && rc == 0;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p)), *sp;
            nl = nl ? nl : end;
            sp = memchr(p, ' ', (size_t)(nl - p));
            if (sp && cb(ctx, p, (size_t)(sp - p), sp + 1, (size_t)(nl - sp - 1)) < 0) {
                snprintf(err, errlen, "aggregate: field callback failed");
                rc = -ECANCELED;
            }
            p = nl + 1;
        }
    }
    freeReplyObject(r);
    return rc;
}

/* Appends one command and counts it. */
static int append(struct rds_conn *c, unsigned *queued, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = redisvAppendCommand(rds_conn_ctx(c), fmt, ap);
    va_end(ap);
    (*queued)++;
    return rc == REDIS_OK ? 0 : -ENOMEM;
}

static int append_argv(struct rds_conn *c, unsigned *queued, int argc, const char **argv,
                       const size_t *lens)
{
    (*queued)++;
    if (redisAppendCommandArgv(rds_conn_ctx(c), argc, argv, lens) != REDIS_OK)
        return -ENOMEM;
    return rds_conn_push_out(rds_conn_ctx(c));
}

/* One command over many fields (HSET key f v f v …, ZADD key s m …, ZREM key m …), sent every
 * BATCH_FIELDS fields: one reply for hundreds of fields instead of one each. */
#define BATCH_FIELDS 512
struct batch {
    const char *argv[2 + 2 * BATCH_FIELDS];
    size_t lens[2 + 2 * BATCH_FIELDS];
    int argc;
};

static void batch_init(struct batch *b, const char *cmd, const char *key)
{
    b->argv[0] = cmd;
    b->lens[0] = strlen(cmd);
    b->argv[1] = key;
    b->lens[1] = strlen(key);
    b->argc = 2;
}

static void batch_flush(struct rds_conn *c, unsigned *queued, struct batch *b)
{
    if (b->argc > 2)
        append_argv(c, queued, b->argc, b->argv, b->lens);
    b->argc = 2;
}

/* Adds one field (a, and b unless NULL); the strings must live until the batch is flushed. */
static void batch_add(struct rds_conn *c, unsigned *queued, struct batch *b, const char *a,
                      size_t alen, const char *v, size_t vlen)
{
    if (b->argc + 2 > 2 + 2 * BATCH_FIELDS)
        batch_flush(c, queued, b);
    b->argv[b->argc] = a;
    b->lens[b->argc++] = alen;
    if (v) {
        b->argv[b->argc] = v;
        b->lens[b->argc++] = vlen;
    }
}

int rds_agg_commit(struct rds_conn *c, const struct rds_agg_commit *x, char *err, size_t errlen)
{
    redisContext *ctx = rds_conn_ctx(c);
    unsigned queued = 0;
    redisReply *r;
    size_t i;
    int64_t ms = x->bucket * 1000;
    int rc = 0;

    r = rds_conn_command(c, "aggregate", err, errlen, "WATCH " K_CHECKPOINT);
    if (!r)
        return -EIO;
    freeReplyObject(r);
    r = rds_conn_command(c, "aggregate", err, errlen, "GET " K_CHECKPOINT);
    if (!r)
        return -EIO;
    if (r->type == REDIS_REPLY_STRING && strtoll(r->str, NULL, 10) >= x->bucket) {
        freeReplyObject(r);
        r = rds_conn_command(c, "aggregate", err, errlen, "UNWATCH");
        if (r)
            freeReplyObject(r);
        return 1; /* done before (a retry, or a second aggregator) */
    }
    freeReplyObject(r);
    char(*scores)[24] = calloc(x->n_incidents + 1, sizeof(*scores));
    if (!scores) {
        snprintf(err, errlen, "redis: commit: out of memory");
        r = rds_conn_command(c, "aggregate", err, errlen, "UNWATCH");
        if (r)
            freeReplyObject(r);
        return -ENOMEM;
    }
    append(c, &queued, "MULTI");
    /* the bulk of a bucket's commit: many fields per HSET, ZADD and ZREM, arguments as argv
     * (no format parsing; texts copied once) */
    struct batch hset, zadd, zrem;
    batch_init(&hset, "HSET", K_INCIDENTS);
    batch_init(&zadd, "ZADD", K_OPEN);
    batch_init(&zrem, "ZREM", K_OPEN);
    for (i = 0; i < x->n_incidents; i++) {
        const struct rds_agg_text *t = &x->incidents[i];
        batch_add(c, &queued, &hset, t->key, strlen(t->key), t->text, t->len);
        if (t->open) {
            size_t n =
                (size_t)snprintf(scores[i], sizeof(scores[i]), "%lld", (long long)t->last_seen_s);
            batch_add(c, &queued, &zadd, scores[i], n, t->key, strlen(t->key));
        } else {
            batch_add(c, &queued, &zrem, t->key, strlen(t->key), NULL, 0);
        }
    }
    char maxlen[16], org_key[RDS_KEY_MAX];
    snprintf(maxlen, sizeof(maxlen), "%d", ALERTS_KEEP);
    for (i = 0; i < x->n_alerts; i++) {
        const struct rds_agg_text *t = &x->alerts[i];
        char id[48];
        snprintf(id, sizeof(id), "%lld-%llu", (long long)ms, (unsigned long long)i);
        const char *argv[] = {"XADD", K_ALERTS, "MAXLEN", "~", maxlen, id, "alert", t->text};
        size_t lens[] = {4, strlen(K_ALERTS), 6, 1, strlen(maxlen), strlen(id), 5, t->len};
        append_argv(c, &queued, 8, argv, lens);
        if (t->key) {
            snprintf(org_key, sizeof(org_key), K_ALERTS ":org:%s", t->key);
            argv[1] = org_key;
            lens[1] = strlen(org_key);
            append_argv(c, &queued, 8, argv, lens);
        }
    }
    /* the early warning's state: one string, written whole (forgotten ports left out) */
    struct ds_buf ew;
    ds_buf_init(&ew, SIZE_MAX / 2);
    for (i = 0; i < x->n_ew; i++) {
        const struct rds_ew_entry *e = &x->ew[i];
        if (!e->state[0])
            continue;
        ds_buf_adds(&ew, e->port);
        ds_buf_addc(&ew, ' ');
        ds_buf_adds(&ew, e->state);
        ds_buf_addc(&ew, '\n');
    }
    if (x->n_ew)
        append_argv(c, &queued, 3, (const char *[]){"SET", K_EW, ew.p ? ew.p : ""},
                    (size_t[]){3, strlen(K_EW), ew.len});
    ds_buf_fini(&ew);
    batch_flush(c, &queued, &hset);
    batch_flush(c, &queued, &zadd);
    batch_flush(c, &queued, &zrem);
    append(c, &queued, "SET " K_CHECKPOINT " %lld", (long long)x->bucket);
    append(c, &queued, "EXEC");
    (void)ctx;
    free(scores);
    for (unsigned k = 0; k < queued; k++) {
        void *reply = NULL;
        if (redisGetReply(rds_conn_ctx(c), &reply) != REDIS_OK) {
            rds_conn_fail(c, "commit", NULL);
            snprintf(err, errlen, "redis: %s", rds_conn_error(c));
            return -EIO;
        }
        r = reply;
        if (k == queued - 1) {
            if (r->type == REDIS_REPLY_NIL) {
                rc = 1; /* the checkpoint moved under us: someone else did it */
            } else if (r->type != REDIS_REPLY_ARRAY) {
                snprintf(err, errlen, "redis: commit: EXEC failed");
                rc = -EIO;
            } else {
                for (size_t e = 0; e < r->elements; e++) {
                    if (r->element[e]->type == REDIS_REPLY_ERROR && rc == 0) {
                        snprintf(err, errlen, "redis: commit: %s", r->element[e]->str);
                        rc = -EIO;
                    }
                }
            }
        } else if (r->type == REDIS_REPLY_ERROR && rc == 0) {
            snprintf(err, errlen, "redis: commit: %s", r->str);
            rc = -EIO;
        }
        freeReplyObject(r);
    }
    return rc;
}

json_t *rds_query_alerts(struct rds_conn *c, const char *org, int64_t since, const char *kind,
                         size_t max, char *err, size_t errlen)
{
    char key[RDS_KEY_MAX];
    redisReply *r;
    json_t *list;

    if (org)
        snprintf(key, sizeof(key), K_ALERTS ":org:%s", org);
    else
        snprintf(key, sizeof(key), K_ALERTS);
    r = rds_conn_command(c, "aggregate", err, errlen, "XRANGE %s %lld + COUNT %llu", key,
                         (long long)since * 1000, (unsigned long long)max);
    if (!r)
        return NULL;
    list = json_array();
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
            continue;
        const redisReply *f = e->element[1];
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (strcmp(f->element[k]->str, "alert") != 0)
                continue;
            json_t *a = json_loadb(f->element[k + 1]->str, f->element[k + 1]->len, 0, NULL);
            if (!a)
                continue;
            if (kind && strcmp(json_string_value(json_object_get(a, "kind")) ?: "", kind) != 0) {
                json_decref(a);
                continue;
            }
            json_object_set_new(a, "stream_id", json_string(e->element[0]->str));
            json_array_append_new(list, a);
        }
    }
    freeReplyObject(r);
    return list;
}
