/* Writing a bucket: one MULTI/EXEC guarded by a per-flush key (WATCH + EXISTS), so a write
 * retried after a timeout is applied exactly once; then the bucket index and the hourly
 * roll-up, each idempotent the same way. Key layout: docs/redis-schema.md. */
#include "redis/rds_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BATCH               1000 /* fields or elements per command */
#define TOP_SOURCES         1000 /* per part in the top ZSET */
#define RDS_SHARD_MAX_BYTES (512u << 20)

const char *rds_key_bucket(char *buf, size_t len, const char *sensor, int64_t start,
                           const char *part)
{
    snprintf(buf, len, RDS_SCHEMA ":{%s:%lld}:%s", sensor, (long long)start, part);
    return buf;
}

const char *rds_key_hour(char *buf, size_t len, const char *sensor, int64_t hour, const char *part)
{
    snprintf(buf, len, RDS_SCHEMA ":{%s:h%lld}:%s", sensor, (long long)hour, part);
    return buf;
}

/* Commands queued so far in this MULTI, to read their replies. */
struct tx {
    struct rds_conn *conn;
    redisContext *ctx;
    size_t queued;
    struct rds_argv a;
    int64_t ttl;
    char keys[16][RDS_KEY_MAX]; /* keys to EXPIRE at the end */
    unsigned n_keys;
    int err;
    redisReply *error; /* the first error among the queued commands' replies (owned) */
    /* a bucket write that adds to what is there (a late part, or a second writer of the bucket,
     * e.g. a capture restarted within it): records go to a part, counters are added */
    bool late;
};

static int tx_send(struct tx *t)
{
    if (t->err)
        return t->err;
    if (rds_argv_append(t->ctx, &t->a) < 0)
        t->err = -EIO;
    t->queued++;
    rds_argv_reset(&t->a);
    return t->err;
}

static void tx_arg(struct tx *t, const char *s)
{
    if (!t->err && rds_argv_add(&t->a, s, strlen(s)) < 0)
        t->err = -ENOMEM;
}

static void tx_argn(struct tx *t, const char *s, size_t n)
{
    if (!t->err && rds_argv_add(&t->a, s, n) < 0)
        t->err = -ENOMEM;
}

static void tx_argu(struct tx *t, uint64_t v)
{
    if (!t->err && rds_argv_addf(&t->a, "%llu", (unsigned long long)v) < 0)
        t->err = -ENOMEM;
}

static void tx_expire_later(struct tx *t, const char *key)
{
    for (unsigned i = 0; i < t->n_keys; i++) {
        if (strcmp(t->keys[i], key) == 0)
            return;
    }
    if (t->n_keys < DS_ARRAY_LEN(t->keys))
        snprintf(t->keys[t->n_keys++], RDS_KEY_MAX, "%s", key);
}

/* Reads every pending reply; returns the last one (EXEC's) or NULL on a connection error. The
 * first error among the others is kept in t->error: it names the cause (MISCONF when Redis cannot
 * write its AOF, OOM …) where EXEC only answers EXECABORT. */
static redisReply *tx_drain(struct tx *t)
{
    redisReply *last = NULL;

    for (size_t i = 0; i < t->queued; i++) {
        void *r = NULL;
        if (redisGetReply(t->ctx, &r) != REDIS_OK) {
            if (last)
                freeReplyObject(last);
            return NULL;
        }
        if (last && !t->error && last->type == REDIS_REPLY_ERROR)
            t->error = last;
        else if (last)
            freeReplyObject(last);
        last = r;
    }
    t->queued = 0;
    return last;
}

/* Adds "name value" pairs of the totals; zeros are skipped (absent reads as zero). */
static void totals_fields(struct tx *t, const struct rds_totals *x)
{
    char name[48];
#define PAIR(n, v)                                                                                 \
    do {                                                                                           \
        if (v) {                                                                                   \
            tx_arg(t, n);                                                                          \
            tx_argu(t, v);                                                                         \
        }                                                                                          \
    } while (0)
    PAIR("packets", x->packets);
    PAIR("bytes", x->bytes);
    PAIR("sources", x->sources);
    PAIR("sources_dropped", x->sources_dropped);
    PAIR("late", x->late);
    for (int i = 0; i < DS_CLASS_N; i++) {
        snprintf(name, sizeof(name), "class:%s", ds_class_names[i]);
        PAIR(name, x->by_class[i]);
    }
    for (int i = 0; i < DS_PROTO_N; i++) {
        snprintf(name, sizeof(name), "proto:%s", ds_proto_names[i]);
        PAIR(name, x->by_proto[i]);
    }
    for (int i = 0; i < DS_TOOL_N; i++) {
        snprintf(name, sizeof(name), "tool:%s", ds_tool_names[i]);
        PAIR(name, x->by_tool[i]);
    }
    for (int i = 0; i < DS_IGN_N; i++) {
        snprintf(name, sizeof(name), "ignored:%s", ds_ignored_names[i]);
        PAIR(name, x->ignored[i]);
    }
    for (int i = 0; i < DS_MAL_N; i++) {
        snprintf(name, sizeof(name), "malformed:%s", ds_malformed_names[i]);
        PAIR(name, x->malformed[i]);
    }
    for (int i = 0; i < DS_TRUNC_N; i++) {
        snprintf(name, sizeof(name), "truncated:%s", ds_trunc_names[i]);
        PAIR(name, x->truncated[i]);
    }
#undef PAIR
}

/* Adds many (field, increment) pairs to one hash: one EVAL per 2,000 pairs, so a bucket that
 * saw every port costs a few commands, not a hundred thousand HINCRBYs. Additive, as late parts
 * and roll-ups need. */
static const char HINCR_MANY[] =
    "for i = 1, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end";
/* Every totals field: added (late parts and roll-ups add up), or set with HSET when the hash
 * cannot exist yet (`first`, as in struct hincr). Setting also keeps a first write right when
 * Redis replays a prefix of it before it: redis-server killed while writing a MULTI to its AOF
 * keeps the commands before the cut without EXEC (Redis 7.0; fixed in valkey-io/valkey#4342);
 * the next start has neither the write nor its guard, so capture writes it again, and the start
 * after that replays the kept commands together with the new write. */
static void totals_incr(struct tx *t, const char *key, const struct rds_totals *x, bool first)
{
    struct rds_argv pairs;
    struct rds_argv save = t->a;

    rds_argv_init(&t->a);
    totals_fields(t, x);
    pairs = t->a;
    t->a = save;
    if (pairs.n && first) {
        tx_arg(t, "HSET");
        tx_arg(t, key);
    } else if (pairs.n) {
        tx_arg(t, "EVAL");
        tx_arg(t, HINCR_MANY);
        tx_arg(t, "1");
        tx_arg(t, key);
    }
    if (pairs.n) {
        for (size_t i = 0; i < pairs.n; i++)
            tx_argn(t, pairs.arena + pairs.offsets[i], pairs.lens[i]);
        tx_send(t);
    }
    rds_argv_fini(&pairs);
    tx_expire_later(t, key);
}

#define HINCR_PAIRS 2000

/* Many (field, count) pairs for one hash: added (EVAL of HINCR_MANY) — or, when the hash cannot
 * exist yet (the first write of a bucket, checked under WATCH), simply set with one HSET per
 * 2,000 pairs, which costs Redis a fraction of the script's HINCRBY per field and gives the same
 * hash when a prefix of the write is replayed before it (see totals_incr). */
struct hincr {
    struct tx *t;
    const char *key;
    size_t pairs;
    bool set; /* the hash is new: HSET */
};

static void hincr_add(struct hincr *h, const char *field, uint64_t v)
{
    if (h->pairs == 0 && h->set) {
        tx_arg(h->t, "HSET");
        tx_arg(h->t, h->key);
    } else if (h->pairs == 0) {
        tx_arg(h->t, "EVAL");
        tx_arg(h->t, HINCR_MANY);
        tx_arg(h->t, "1");
        tx_arg(h->t, h->key);
    }
    tx_arg(h->t, field);
    tx_argu(h->t, v);
    if (++h->pairs == HINCR_PAIRS) {
        tx_send(h->t);
        h->pairs = 0;
    }
}

static void hincr_end(struct hincr *h)
{
    if (h->pairs)
        tx_send(h->t);
    h->pairs = 0;
}

/* The per-port counters: every port of the bucket, or (max > 0, the hourly roll-up) the first
 * max — b->ports is busiest first — and the rest summed as `tcp/other` and `udp/other`. */
static void ports_incr(struct tx *t, const char *key, const struct rds_bucket *b, bool first,
                       size_t max)
{
    struct hincr h = {t, key, 0, first};
    uint64_t other[2][2] = {{0}}; /* [tcp, udp][packets, sources] */
    char f[32];

    for (size_t i = 0; i < b->n_ports; i++) {
        const struct rds_port *p = &b->ports[i];
        if (max && i >= max) {
            other[p->proto == DS_PROTO_TCP ? 0 : 1][0] += p->packets;
            other[p->proto == DS_PROTO_TCP ? 0 : 1][1] += p->sources;
            continue;
        }
        snprintf(f, sizeof(f), "%s/%u", ds_proto_names[p->proto], p->port);
        hincr_add(&h, f, p->packets);
        snprintf(f, sizeof(f), "%s/%u:s", ds_proto_names[p->proto], p->port);
        hincr_add(&h, f, p->sources);
    }
    for (int k = 0; k < 2; k++) {
        if (!other[k][0])
            continue;
        const char *proto = ds_proto_names[k == 0 ? DS_PROTO_TCP : DS_PROTO_UDP];
        snprintf(f, sizeof(f), "%s/other", proto);
        hincr_add(&h, f, other[k][0]);
        snprintf(f, sizeof(f), "%s/other:s", proto);
        hincr_add(&h, f, other[k][1]);
    }
    hincr_end(&h);
    if (b->n_ports)
        tx_expire_later(t, key);
}

static void countries_incr(struct tx *t, const char *key, const struct rds_bucket *b, bool first)
{
    struct hincr h = {t, key, 0, first};
    char f[16];

    for (size_t i = 0; i < b->n_countries; i++) {
        const struct rds_country *c = &b->countries[i];
        const char *cc = c->cc[0] ? c->cc : "??";
        hincr_add(&h, cc, c->packets);
        snprintf(f, sizeof(f), "%s:s", cc);
        hincr_add(&h, f, c->sources);
    }
    hincr_end(&h);
    if (b->n_countries)
        tx_expire_later(t, key);
}

/* A bounded min-heap of the busiest sources of the part, for the top ZSET. */
struct top {
    struct {
        uint64_t packets;
        char ip[DS_ADDR_STRLEN];
    } * e;
    size_t n;
};

static void top_push(struct top *t, uint64_t packets, const char *ip, size_t ip_len)
{
    size_t i;

    if (!t->e)
        return;
    if (t->n < TOP_SOURCES) {
        i = t->n++;
    } else if (packets > t->e[0].packets) {
        /* replace the root and sift down */
        size_t p = 0;
        for (;;) {
            size_t l = 2 * p + 1, r = l + 1, m = p;
            if (l < t->n && t->e[l].packets < (m == p ? packets : t->e[m].packets))
                m = l;
            if (r < t->n && t->e[r].packets < (m == p ? packets : t->e[m].packets))
                m = r;
            if (m == p)
                break;
            t->e[p] = t->e[m];
            p = m;
        }
        t->e[p].packets = packets;
        snprintf(t->e[p].ip, sizeof(t->e[p].ip), "%.*s", (int)ip_len, ip);
        return;
    } else {
        return;
    }
    while (i > 0 && t->e[(i - 1) / 2].packets > packets) {
        t->e[i] = t->e[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    t->e[i].packets = packets;
    snprintf(t->e[i].ip, sizeof(t->e[i].ip), "%.*s", (int)ip_len, ip);
}

/* Pushes the pipeline out as it grows, so a bucket of millions of sources is never held twice
 * (rds_conn_push_out). */
static void tx_push_out(struct tx *t)
{
    if (!t->err && rds_conn_push_out(t->ctx) < 0)
        t->err = -EIO;
}

/* One hash of shard fields (see write_sources): fields go out 16 per HSET, and the pipeline is
 * pushed to Redis as it grows. */
struct shard_hset {
    struct tx *t;
    const char *key;
    unsigned fields;
    bool any;
};

/* Adds the shard's lines; an overfull buffer fails the transaction. */
static void shard_hset_add(struct shard_hset *h, unsigned shard, const struct ds_buf *buf)
{
    char field[16];

    if (ds_buf_failed(buf)) {
        ds_log(DS_LOG_ERROR, "redis", "shard %u of %s exceeds %u bytes", shard, h->key,
               RDS_SHARD_MAX_BYTES);
        h->t->err = -ENOSPC;
        return;
    }
    if (!buf->len)
        return;
    if (h->fields == 0) {
        tx_arg(h->t, "HSET");
        tx_arg(h->t, h->key);
    }
    snprintf(field, sizeof(field), "%u", shard);
    tx_arg(h->t, field);
    tx_argn(h->t, buf->p, buf->len);
    h->any = true;
    if (++h->fields == 16) {
        tx_send(h->t);
        tx_push_out(h->t);
        h->fields = 0;
    }
}

static void shard_hset_end(struct shard_hset *h)
{
    if (h->fields)
        tx_send(h->t);
    if (h->any)
        tx_expire_later(h->t, h->key);
}

/* Records are grouped by shard ("0" … "1023"), each shard's records as lines "address TAB json":
 * thousands of Redis values instead of millions. A whole bucket keeps each shard's lines in a
 * string of its own (`srcrec:<shard>`) and the shard's addresses with their line lengths in an
 * index hash (`srcidx`), so a reader that wants a few of a million records — the aggregator,
 * sources inside subscriber ranges — reads the small index and fetches just those lines with
 * GETRANGE. A late part keeps its lines in one hash (`src:<id>`); readers merge the parts. */
struct shard_out {
    struct tx *t;
    bool late;
    char rec_prefix[RDS_KEY_MAX]; /* whole bucket: "<bucket>:srcrec:" */
    struct shard_hset h;          /* shard → lines (late part) or index entries (whole bucket) */
    struct ds_buf buf, ib;
    /* A whole bucket's records are staged: written before its transaction to keys of their own
     * (`…:stage:<id>:srcrec:<shard>`, `…:stage:<id>:srcidx`, STAGE_TTL) while Redis still serves
     * others, and renamed into place inside it (stage_commit): its EXEC no longer carries
     * hundreds of megabytes of records, Redis stores them while capture encodes the next ones,
     * and a transaction that does not happen leaves only keys that expire. */
    bool staged;
    char final_prefix[RDS_KEY_MAX], final_index[RDS_KEY_MAX], stage_index[RDS_KEY_MAX];
    uint8_t written[RDS_SHARDS];
};

#define STAGE_TTL 600

/* key: the late part's hash of lines, or the whole bucket's index hash */
static void shard_out_init(struct shard_out *o, struct tx *t, const struct rds_bucket *b,
                           const char *kind, const char *key)
{
    char part[64];

    memset(o, 0, sizeof(*o));
    o->t = t;
    o->late = t->late;
    snprintf(part, sizeof(part), "%srec:", kind);
    rds_key_bucket(o->rec_prefix, sizeof(o->rec_prefix), b->sensor, b->start, part);
    o->h = (struct shard_hset){t, key, 0, false};
    if (!o->late) {
        o->staged = true;
        snprintf(o->final_prefix, sizeof(o->final_prefix), "%s", o->rec_prefix);
        snprintf(o->final_index, sizeof(o->final_index), "%s", key);
        snprintf(part, sizeof(part), "stage:%016llx:%srec:", (unsigned long long)b->flush_id, kind);
        rds_key_bucket(o->rec_prefix, sizeof(o->rec_prefix), b->sensor, b->start, part);
        snprintf(part, sizeof(part), "stage:%016llx:%sidx", (unsigned long long)b->flush_id, kind);
        rds_key_bucket(o->stage_index, sizeof(o->stage_index), b->sensor, b->start, part);
        o->h.key = o->stage_index;
    }
    ds_buf_init(&o->buf, RDS_SHARD_MAX_BYTES);
    ds_buf_init(&o->ib, RDS_SHARD_MAX_BYTES);
}

/* Ends one record line that starts at mark in buf (address TAB json), with its index entry in ib
 * unless late. */
static void line_end(struct ds_buf *buf, struct ds_buf *ib, bool late, const struct ds_addr *a,
                     size_t mark)
{
    ds_buf_addc(buf, '\n');
    if (!late)
        rds_index_entry(ib, a, buf->len - mark);
}

static void shard_out_flush(struct shard_out *o, unsigned shard)
{
    char key[RDS_KEY_MAX + 8];

    if (o->t->err)
        return;
    if (o->late) {
        shard_hset_add(&o->h, shard, &o->buf);
    } else if (o->buf.len || ds_buf_failed(&o->buf)) {
        if (ds_buf_failed(&o->buf) || ds_buf_failed(&o->ib)) {
            ds_log(DS_LOG_ERROR, "redis", "shard %u of %s exceeds %u bytes", shard, o->h.key,
                   RDS_SHARD_MAX_BYTES);
            o->t->err = -ENOSPC;
            return;
        }
        /* its own argv: the index's HSET may be half built in o->t->a */
        struct rds_argv a;
        snprintf(key, sizeof(key), "%s%u", o->rec_prefix, shard);
        rds_argv_init(&a);
        if (rds_argv_add(&a, "SET", 3) < 0 || rds_argv_add(&a, key, strlen(key)) < 0 ||
            rds_argv_add(&a, o->buf.p, o->buf.len) < 0 || rds_argv_add(&a, "EX", 2) < 0 ||
            rds_argv_addf(&a, "%lld", (long long)(o->staged ? STAGE_TTL : o->t->ttl)) < 0)
            o->t->err = -ENOMEM;
        else if (rds_argv_append(o->t->ctx, &a) < 0)
            o->t->err = -EIO;
        else
            o->t->queued++;
        rds_argv_fini(&a);
        o->written[shard] = 1;
        shard_hset_add(&o->h, shard, &o->ib);
    }
    ds_buf_reset(&o->buf);
    ds_buf_reset(&o->ib);
}

static void shard_out_end(struct shard_out *o)
{
    if (o->staged) {
        if (o->h.fields)
            tx_send(o->t);
        if (o->h.any) {
            tx_arg(o->t, "EXPIRE");
            tx_arg(o->t, o->stage_index);
            tx_argu(o->t, STAGE_TTL);
            tx_send(o->t);
        }
    } else {
        shard_hset_end(&o->h);
    }
    ds_buf_fini(&o->buf);
    ds_buf_fini(&o->ib);
}

/* Inside the transaction: the staged records and index renamed into place, with the bucket's
 * retention. */
static void stage_commit(struct tx *t, const struct shard_out *o)
{
    char from[RDS_KEY_MAX + 8], to[RDS_KEY_MAX + 8];

    if (!o->staged)
        return;
    for (unsigned shard = 0; shard < RDS_SHARDS; shard++) {
        if (!o->written[shard])
            continue;
        snprintf(from, sizeof(from), "%s%u", o->rec_prefix, shard);
        snprintf(to, sizeof(to), "%s%u", o->final_prefix, shard);
        tx_arg(t, "RENAME");
        tx_arg(t, from);
        tx_arg(t, to);
        tx_send(t);
        tx_arg(t, "EXPIRE");
        tx_arg(t, to);
        tx_argu(t, (uint64_t)t->ttl);
        tx_send(t);
    }
    if (o->h.any) {
        tx_arg(t, "RENAME");
        tx_arg(t, o->stage_index);
        tx_arg(t, o->final_index);
        tx_send(t);
        tx_expire_later(t, o->final_index);
    }
}

/* ---- source records, encoded on several threads
 *
 * Encoders claim shards in order and encode each into one of ENC_WINDOW slots (its lines, its
 * index entries, and each line's packets for the top sources); the calling thread sends the
 * shards in order as they become ready, and encodes a shard itself when no encoder has claimed
 * it yet (so it also works alone). Shard s uses slot s % ENC_WINDOW, claimable once shard
 * s - ENC_WINDOW is sent: at most ENC_WINDOW shards are held encoded. */

#define ENC_WINDOW 64

struct enc_line {
    uint64_t packets;
    size_t off; /* of the line in the slot's buf: the address, then a TAB */
    uint8_t ip_len;
};

struct enc_slot {
    struct ds_buf buf, ib;
    struct enc_line *lines;
    size_t n_lines, cap_lines;
    int err;
    bool ready; /* guarded by enc.lock */
};

struct enc {
    const struct rds_bucket *b;
    const char *prefixes[RDS_SOURCE_PREFIXES];
    char prefix_text[RDS_SOURCE_PREFIXES][DS_CIDR_STRLEN];
    unsigned n_prefixes;
    bool late;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned next, sent; /* guarded by lock: next shard to claim; shards sent */
    bool stop;           /* guarded by lock */
    struct tx *t;        /* the sender's */
    struct shard_out *o;
    struct top *top;
    ds_time_ns waited, sent_ns; /* the sender's time waiting for encoders, and writing */
    struct enc_slot slot[ENC_WINDOW];
};

static void enc_shard(struct enc *e, unsigned shard, struct enc_slot *x)
{
    struct rds_source s;
    char ip[DS_ADDR_STRLEN];

    for (size_t i = 0; e->b->source_at(e->b->source_ctx, shard, i, &s) == 1; i++) {
        size_t mark = x->buf.len;
        const char *text = ds_addr_format(&s.addr, ip, sizeof(ip));
        size_t ip_len = strlen(text);
        ds_buf_add(&x->buf, text, ip_len);
        ds_buf_addc(&x->buf, '\t');
        rds_record_source(&x->buf, &s, e->prefixes, e->n_prefixes);
        line_end(&x->buf, &x->ib, e->late, &s.addr, mark);
        if (x->n_lines == x->cap_lines) {
            size_t nc = x->cap_lines ? x->cap_lines * 2 : 256;
            struct enc_line *nl = realloc(x->lines, nc * sizeof(*nl));
            if (!nl) {
                x->err = -ENOMEM;
                return;
            }
            x->lines = nl;
            x->cap_lines = nc;
        }
        x->lines[x->n_lines++] = (struct enc_line){s.packets, mark, (uint8_t)ip_len};
    }
}

/* Claims the next shard, waiting for a free slot; RDS_SHARDS when there is none left. */
static unsigned enc_claim(struct enc *e)
{
    unsigned shard = RDS_SHARDS;

    pthread_mutex_lock(&e->lock);
    while (!e->stop && e->next < RDS_SHARDS && e->next >= e->sent + ENC_WINDOW)
        pthread_cond_wait(&e->cond, &e->lock);
    if (!e->stop && e->next < RDS_SHARDS)
        shard = e->next++;
    pthread_mutex_unlock(&e->lock);
    return shard;
}

static void enc_ready(struct enc *e, struct enc_slot *x)
{
    pthread_mutex_lock(&e->lock);
    x->ready = true;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

/* Thread 0 sends; the others encode. */
static void enc_main(void *ctx, unsigned thread)
{
    struct enc *e = ctx;

    if (thread > 0) {
        unsigned shard;
        while ((shard = enc_claim(e)) < RDS_SHARDS) {
            enc_shard(e, shard, &e->slot[shard % ENC_WINDOW]);
            enc_ready(e, &e->slot[shard % ENC_WINDOW]);
        }
        return;
    }
    for (unsigned shard = 0; shard < RDS_SHARDS; shard++) {
        struct enc_slot *x = &e->slot[shard % ENC_WINDOW];
        bool mine = false;
        pthread_mutex_lock(&e->lock);
        if (e->next == shard) { /* nobody has claimed it: encode it here */
            e->next++;
            mine = true;
        }
        ds_time_ns t0 = ds_time_monotonic();
        while (!mine && !x->ready)
            pthread_cond_wait(&e->cond, &e->lock);
        pthread_mutex_unlock(&e->lock);
        ds_time_ns t1 = ds_time_monotonic();
        e->waited += t1 - t0;
        if (mine)
            enc_shard(e, shard, x);
        if (x->err && !e->t->err)
            e->t->err = x->err;
        for (size_t i = 0; i < x->n_lines && e->top->e; i++)
            top_push(e->top, x->lines[i].packets, x->buf.p + x->lines[i].off, x->lines[i].ip_len);
        struct ds_buf keep = e->o->buf, keep_ib = e->o->ib;
        e->o->buf = x->buf;
        e->o->ib = x->ib;
        shard_out_flush(e->o, shard);
        e->sent_ns += ds_time_monotonic() - t1;
        x->buf = e->o->buf;
        x->ib = e->o->ib;
        e->o->buf = keep;
        e->o->ib = keep_ib;
        ds_buf_reset(&x->buf);
        ds_buf_reset(&x->ib);
        x->n_lines = 0;
        x->err = 0;
        pthread_mutex_lock(&e->lock);
        x->ready = false;
        e->sent = shard + 1;
        if (e->t->err)
            e->stop = true;
        pthread_cond_broadcast(&e->cond);
        pthread_mutex_unlock(&e->lock);
        if (e->t->err)
            break;
    }
}

/* The bucket's source records (into o, initialised by the caller) and its busiest sources
 * (into top), encoded by `encoders` threads besides this one's sending. */
static void write_sources(struct tx *t, const struct rds_bucket *b, struct shard_out *o,
                          struct top *top, unsigned encoders)
{
    struct enc *e = calloc(1, sizeof(*e));

    if (!top->e || !e) {
        t->err = -ENOMEM;
        free(e);
        return;
    }
    e->b = b;
    e->late = o->late;
    e->t = t;
    e->o = o;
    e->top = top;
    for (unsigned i = 0; b->darknet && i < b->darknet->n && i < RDS_SOURCE_PREFIXES; i++) {
        e->prefixes[i] =
            ds_cidr_format(&b->darknet->p[i], e->prefix_text[i], sizeof(e->prefix_text[i]));
        e->n_prefixes++;
    }
    for (unsigned i = 0; i < ENC_WINDOW; i++) {
        ds_buf_init(&e->slot[i].buf, RDS_SHARD_MAX_BYTES);
        ds_buf_init(&e->slot[i].ib, RDS_SHARD_MAX_BYTES);
    }
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    if (!t->err && b->source_at) {
        unsigned n = ds_parallel_run(encoders > 1 ? encoders + 1 : 1, enc_main, e);
        ds_log(DS_LOG_DEBUG, "redis",
               "source records of %s: %u encoding threads; the writer waited %.2f s for them and "
               "took %.2f s encoding and writing",
               o->h.key, n > 1 ? n - 1 : 1, (double)e->waited / 1e9, (double)e->sent_ns / 1e9);
    }
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
    for (unsigned i = 0; i < ENC_WINDOW; i++) {
        ds_buf_fini(&e->slot[i].buf);
        ds_buf_fini(&e->slot[i].ib);
        free(e->slot[i].lines);
    }
    free(e);
    shard_out_end(o);
}

static void write_top(struct tx *t, const struct top *top, const char *topkey)
{
    /* ZADD INCR takes one member: late parts add with ZINCRBY one by one, whole buckets ZADD */
    for (size_t i = 0; i < top->n;) {
        if (t->late) {
            tx_arg(t, "ZINCRBY");
            tx_arg(t, topkey);
            tx_argu(t, top->e[i].packets);
            tx_arg(t, top->e[i].ip);
            tx_send(t);
            i++;
            continue;
        }
        size_t end = i + BATCH < top->n ? i + BATCH : top->n;
        tx_arg(t, "ZADD");
        tx_arg(t, topkey);
        for (; i < end; i++) {
            tx_argu(t, top->e[i].packets);
            tx_arg(t, top->e[i].ip);
        }
        tx_send(t);
    }
    if (top->n)
        tx_expire_later(t, topkey);
}

static void write_victims(struct tx *t, const struct rds_bucket *b, struct shard_out *o)
{
    struct rds_victim v;
    char ip[DS_ADDR_STRLEN];

    for (unsigned shard = 0; b->victim_at && shard < RDS_SHARDS && !t->err; shard++) {
        for (size_t i = 0; b->victim_at(b->victim_ctx, shard, i, &v) == 1; i++) {
            size_t mark = o->buf.len;
            ds_buf_adds(&o->buf, ds_addr_format(&v.addr, ip, sizeof(ip)));
            ds_buf_addc(&o->buf, '\t');
            rds_record_victim(&o->buf, &v);
            line_end(&o->buf, &o->ib, o->late, &v.addr, mark);
        }
        shard_out_flush(o, shard);
    }
    shard_out_end(o);
}

/* Large sets are built here in Redis's dense encoding and merged in (SET scratch, PFMERGE,
 * DEL): 12 KiB on the wire and no per-element work in Redis. Small ones go as PFADD, which
 * Redis keeps sparse (a few hundred bytes). */
#define HLL_LOCAL_MIN 2000

static void write_hlls(struct tx *t, const struct rds_bucket *b)
{
    char key[RDS_KEY_MAX], scratch[RDS_KEY_MAX], part[48];
    uint8_t *dense = NULL;

    rds_key_bucket(scratch, sizeof(scratch), b->sensor, b->start, "hll-scratch");
    for (size_t h = 0; h < b->n_hlls && !t->err; h++) {
        const struct rds_hll *x = &b->hlls[h];
        if (!x->n)
            continue;
        snprintf(part, sizeof(part), "hll:%s", x->name);
        rds_key_bucket(key, sizeof(key), b->sensor, b->start, part);
        if (x->n >= HLL_LOCAL_MIN) {
            if (!dense && !(dense = malloc(RDS_HLL_DENSE_SIZE))) {
                t->err = -ENOMEM;
                break;
            }
            rds_hll_dense(dense, x->elems, x->n);
            tx_arg(t, "SET");
            tx_arg(t, scratch);
            tx_argn(t, (const char *)dense, RDS_HLL_DENSE_SIZE);
            tx_send(t);
            tx_arg(t, "PFMERGE");
            tx_arg(t, key);
            tx_arg(t, scratch);
            tx_send(t);
            tx_arg(t, "DEL");
            tx_arg(t, scratch);
            tx_send(t);
        } else {
            for (size_t i = 0; i < x->n; i += BATCH) {
                size_t end = i + BATCH < x->n ? i + BATCH : x->n;
                tx_arg(t, "PFADD");
                tx_arg(t, key);
                for (size_t k = i; k < end; k++)
                    tx_argn(t, (const char *)&x->elems[k], sizeof(uint64_t));
                tx_send(t);
            }
        }
        tx_push_out(t);
        /* HLL keys are many: expire them here rather than in the bounded list */
        tx_arg(t, "EXPIRE");
        tx_arg(t, key);
        tx_argu(t, (uint64_t)t->ttl);
        tx_send(t);
    }
    free(dense);
}

static void write_seconds(struct tx *t, const struct rds_bucket *b, const char *key)
{
    struct hincr h = {t, key, 0, !t->late};
    char f[24];

    for (int64_t i = 0; i < b->seconds; i++) {
        if (!b->per_second[i])
            continue;
        snprintf(f, sizeof(f), "%lld", (long long)i);
        hincr_add(&h, f, b->per_second[i]);
    }
    if (h.pairs)
        tx_expire_later(t, key);
    hincr_end(&h);
}

/* Starts a guarded transaction: 1 when the guard exists already (nothing to do), 0 when MULTI
 * was queued, -EIO on errors. */
/* WATCH the guard (and `also`, when given: *also_exists tells whether it exists); 1 when the
 * guard exists (this flush was applied already), 0 with MULTI sent, -errno. */
static int tx_begin(struct tx *t, const char *guard, const char *also, bool *also_exists)
{
    redisReply *r = also ? redisCommand(t->ctx, "WATCH %s %s", guard, also)
                         : redisCommand(t->ctx, "WATCH %s", guard);

    if (!r || r->type == REDIS_REPLY_ERROR)
        goto fail;
    freeReplyObject(r);
    r = redisCommand(t->ctx, "EXISTS %s", guard);
    if (!r || r->type != REDIS_REPLY_INTEGER)
        goto fail;
    if (r->integer == 1) {
        freeReplyObject(r);
        r = redisCommand(t->ctx, "UNWATCH");
        if (r)
            freeReplyObject(r);
        return 1;
    }
    freeReplyObject(r);
    if (also) {
        r = redisCommand(t->ctx, "EXISTS %s", also);
        if (!r || r->type != REDIS_REPLY_INTEGER)
            goto fail;
        *also_exists = r->integer == 1;
        freeReplyObject(r);
    }
    return 0;
fail:
    rds_conn_fail(t->conn, "WATCH", r);
    if (r)
        freeReplyObject(r);
    return -EIO;
}

static int tx_multi(struct tx *t)
{
    tx_arg(t, "MULTI");
    return tx_send(t);
}

static int tx_commit(struct tx *t, const char *guard)
{
    redisReply *r;
    int rc = 0;

    for (unsigned i = 0; i < t->n_keys; i++) {
        tx_arg(t, "EXPIRE");
        tx_arg(t, t->keys[i]);
        tx_argu(t, (uint64_t)t->ttl);
        tx_send(t);
    }
    tx_arg(t, "SET");
    tx_arg(t, guard);
    tx_arg(t, "1");
    tx_arg(t, "EX");
    tx_argu(t, (uint64_t)t->ttl);
    tx_send(t);
    tx_arg(t, "EXEC");
    tx_send(t);
    if (t->err) {
        /* the buffer holds a half transaction: drop the connection so Redis discards it */
        rds_conn_reset(t->conn);
        return t->err;
    }
    r = tx_drain(t);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        /* nil: the guard appeared meanwhile (another writer applied it); else an error */
        if (r && r->type == REDIS_REPLY_NIL)
            goto out;
        rds_conn_fail(t->conn, "EXEC", t->error ? t->error : r);
        rc = -EIO;
        goto out;
    }
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type == REDIS_REPLY_ERROR) {
            ds_log(DS_LOG_ERROR, "redis", "command %zu of the bucket write failed: %s", i,
                   r->element[i]->str);
            rds_conn_fail(t->conn, "EXEC", r->element[i]);
            rc = -EIO;
            goto out;
        }
    }
out:
    if (r)
        freeReplyObject(r);
    if (t->error)
        freeReplyObject(t->error);
    t->error = NULL;
    return rc;
}

static int write_bucket_tx(struct rds_conn *c, const struct rds_bucket *b, int64_t ttl,
                           unsigned encoders)
{
    struct tx t = {.conn = c, .ctx = rds_conn_ctx(c), .ttl = ttl};
    char guard[RDS_KEY_MAX], key[RDS_KEY_MAX], key2[RDS_KEY_MAX], part[64];
    int rc;

    rds_argv_init(&t.a);
    snprintf(part, sizeof(part), "flush:%016llx", (unsigned long long)b->flush_id);
    rds_key_bucket(guard, sizeof(guard), b->sensor, b->start, part);
    /* the first write of a bucket (no `meta` yet, checked under WATCH) sets its counters and owns
     * its record strings; any later one is a part and adds */
    bool written_before = false;
    rds_key_bucket(key, sizeof(key), b->sensor, b->start, "meta");
    rc = tx_begin(&t, guard, b->late ? NULL : key, &written_before);
    if (rc != 0) {
        rds_argv_fini(&t.a);
        return rc == 1 ? 0 : rc;
    }
    t.late = b->late || written_before;
    /* the records: a whole bucket's staged before the transaction, a part's inside it */
    struct shard_out *src = malloc(sizeof(*src)), *vic = malloc(sizeof(*vic));
    struct top top = {calloc(TOP_SOURCES, sizeof(*top.e)), 0};
    if (!src || !vic) {
        free(src);
        free(vic);
        free(top.e);
        rds_argv_fini(&t.a);
        redisReply *r = redisCommand(t.ctx, "UNWATCH");
        if (r)
            freeReplyObject(r);
        return -ENOMEM;
    }
    if (t.late) {
        tx_multi(&t);
        rds_key_bucket(key2, sizeof(key2), b->sensor, b->start, "parts");
        tx_arg(&t, "SADD");
        tx_arg(&t, key2);
        snprintf(part, sizeof(part), "%016llx", (unsigned long long)b->flush_id);
        tx_arg(&t, part);
        tx_send(&t);
        tx_expire_later(&t, key2);
    }
    snprintf(part, sizeof(part), t.late ? "src:%016llx" : "srcidx",
             (unsigned long long)b->flush_id);
    shard_out_init(src, &t, b, "src", rds_key_bucket(key, sizeof(key), b->sensor, b->start, part));
    write_sources(&t, b, src, &top, encoders);
    snprintf(part, sizeof(part), t.late ? "vic:%016llx" : "vicidx",
             (unsigned long long)b->flush_id);
    shard_out_init(vic, &t, b, "vic", rds_key_bucket(key, sizeof(key), b->sensor, b->start, part));
    write_victims(&t, b, vic);
    if (!t.late) {
        tx_multi(&t);
        stage_commit(&t, src);
        stage_commit(&t, vic);
    }
    write_top(&t, &top, rds_key_bucket(key2, sizeof(key2), b->sensor, b->start, "top"));
    free(top.e);
    free(src);
    free(vic);
    rds_key_bucket(key, sizeof(key), b->sensor, b->start, "meta");
    tx_arg(&t, "HSET");
    tx_arg(&t, key);
    tx_arg(&t, "sensor");
    tx_arg(&t, b->sensor);
    tx_arg(&t, "start");
    tx_argu(&t, (uint64_t)b->start);
    tx_arg(&t, "seconds");
    tx_argu(&t, (uint64_t)b->seconds);
    tx_arg(&t, "written");
    tx_argu(&t, (uint64_t)(ds_time_now() / DS_NS_PER_SEC));
    tx_send(&t);
    tx_expire_later(&t, key);
    totals_incr(&t, rds_key_bucket(key, sizeof(key), b->sensor, b->start, "tot"), &b->tot, !t.late);
    ports_incr(&t, rds_key_bucket(key, sizeof(key), b->sensor, b->start, "port"), b, !t.late, 0);
    countries_incr(&t, rds_key_bucket(key, sizeof(key), b->sensor, b->start, "cc"), b, !t.late);
    write_seconds(&t, b, rds_key_bucket(key, sizeof(key), b->sensor, b->start, "sec"));
    write_hlls(&t, b);
    ds_time_ns tc = ds_time_monotonic();
    rc = tx_commit(&t, guard);
    ds_log(DS_LOG_DEBUG, "redis", "bucket %lld: EXEC answered in %.2f s", (long long)b->start,
           (double)(ds_time_monotonic() - tc) / 1e9);
    rds_argv_fini(&t.a);
    return rc;
}

static int write_rollup_tx(struct rds_conn *c, const struct rds_bucket *b, int64_t ttl)
{
    struct tx t = {.conn = c, .ctx = rds_conn_ctx(c), .ttl = ttl};
    char guard[RDS_KEY_MAX], key[RDS_KEY_MAX], part[64];
    int64_t hour = b->start - b->start % 3600;
    int rc;

    rds_argv_init(&t.a);
    snprintf(part, sizeof(part), "flush:%016llx", (unsigned long long)b->flush_id);
    rds_key_hour(guard, sizeof(guard), b->sensor, hour, part);
    /* the hour's first bucket sets its port and country series; the others add to them */
    bool hour_exists = false;
    rds_key_hour(key, sizeof(key), b->sensor, hour, "tot");
    rc = tx_begin(&t, guard, key, &hour_exists);
    if (rc != 0) {
        rds_argv_fini(&t.a);
        return rc == 1 ? 0 : rc;
    }
    tx_multi(&t);
    totals_incr(&t, key, &b->tot, !hour_exists);
    ports_incr(&t, rds_key_hour(key, sizeof(key), b->sensor, hour, "port"), b, !hour_exists,
               RDS_ROLLUP_PORTS);
    countries_incr(&t, rds_key_hour(key, sizeof(key), b->sensor, hour, "cc"), b, !hour_exists);
    rc = tx_commit(&t, guard);
    rds_argv_fini(&t.a);
    return rc;
}

static int index_add(struct rds_conn *c, const char *sensor, int64_t start, int64_t hour)
{
    char key[RDS_KEY_MAX], hkey[RDS_KEY_MAX];
    redisContext *ctx = rds_conn_ctx(c);
    redisReply *r;
    int rc = 0;

    snprintf(key, sizeof(key), RDS_SCHEMA ":idx:%s", sensor);
    snprintf(hkey, sizeof(hkey), RDS_SCHEMA ":hidx:%s", sensor);
    redisAppendCommand(ctx, "ZADD %s %lld %lld", key, (long long)start, (long long)start);
    redisAppendCommand(ctx, "ZADD %s %lld %lld", hkey, (long long)hour, (long long)hour);
    redisAppendCommand(ctx, "SADD " RDS_SCHEMA ":sensors:names %s", sensor);
    for (int i = 0; i < 3; i++) {
        void *v = NULL;
        if (redisGetReply(ctx, &v) != REDIS_OK) {
            return rds_conn_fail(c, "ZADD", NULL);
        }
        r = v;
        if (r->type == REDIS_REPLY_ERROR)
            rc = rds_conn_fail(c, "ZADD", r);
        freeReplyObject(r);
        if (rc)
            return rc;
    }
    return 0;
}

int rds_bucket_write(struct rds_conn *c, const struct rds_bucket *b, const struct rds_write_opts *o)
{
    int rc;

    if (!rds_conn_ctx(c))
        return -ENOTCONN;
    rc = write_bucket_tx(c, b, o->retention, o->encoders);
    if (rc == 0)
        rc = write_rollup_tx(c, b, o->rollup_retention);
    if (rc == 0)
        rc = index_add(c, b->sensor, b->start, b->start - b->start % 3600);
    return rc;
}

/* One index: ZRANGE the oldest, EXISTS each one's key (pipelined), ZREM the expired. */
static int trim_one(struct rds_conn *c, const char *index, const char *sensor, bool hourly,
                    unsigned max)
{
    redisContext *ctx = rds_conn_ctx(c);
    redisReply *r = redisCommand(ctx, "ZRANGE %s 0 %u", index, max ? max - 1 : 0);
    char key[RDS_KEY_MAX];
    int removed = 0;

    if (!r || r->type != REDIS_REPLY_ARRAY) {
        rds_conn_fail(c, "ZRANGE", r);
        if (r)
            freeReplyObject(r);
        return -EIO;
    }
    for (size_t i = 0; i < r->elements; i++) {
        int64_t start = strtoll(r->element[i]->str, NULL, 10);
        if (hourly)
            rds_key_hour(key, sizeof(key), sensor, start, "tot");
        else
            rds_key_bucket(key, sizeof(key), sensor, start, "meta");
        redisAppendCommand(ctx, "EXISTS %s", key);
    }
    for (size_t i = 0; i < r->elements; i++) {
        void *v = NULL;
        if (redisGetReply(ctx, &v) != REDIS_OK) {
            freeReplyObject(r);
            return rds_conn_fail(c, "EXISTS", NULL);
        }
        redisReply *e = v;
        if (e->type == REDIS_REPLY_INTEGER && e->integer == 0) {
            redisReply *z = redisCommand(ctx, "ZREM %s %s", index, r->element[i]->str);
            if (z && z->type == REDIS_REPLY_INTEGER)
                removed += (int)z->integer;
            if (z)
                freeReplyObject(z);
        }
        freeReplyObject(e);
    }
    freeReplyObject(r);
    return removed;
}

int rds_index_trim(struct rds_conn *c, const char *sensor, unsigned max)
{
    char index[RDS_KEY_MAX];
    int a, b;

    if (!rds_conn_ctx(c))
        return -ENOTCONN;
    snprintf(index, sizeof(index), RDS_SCHEMA ":idx:%s", sensor);
    a = trim_one(c, index, sensor, false, max);
    if (a < 0)
        return a;
    snprintf(index, sizeof(index), RDS_SCHEMA ":hidx:%s", sensor);
    b = trim_one(c, index, sensor, true, max);
    return b < 0 ? b : a + b;
}

int rds_sensor_update(struct rds_conn *c, const char *sensor, json_t *info)
{
    char *text = json_dumps(info, JSON_COMPACT);
    redisReply *r;
    int rc = 0;

    if (!text)
        return -ENOMEM;
    if (!rds_conn_ctx(c)) {
        free(text);
        return -ENOTCONN;
    }
    r = redisCommand(rds_conn_ctx(c), "HSET " RDS_SCHEMA ":sensors %s %s", sensor, text);
    if (!r || r->type == REDIS_REPLY_ERROR)
        rc = rds_conn_fail(c, "HSET sensors", r);
    if (r)
        freeReplyObject(r);
    free(text);
    return rc;
}

int rds_live_publish(struct rds_conn *c, const char *sensor, const char *json, size_t len)
{
    redisContext *ctx = rds_conn_ctx(c);
    int rc = 0;

    if (!ctx)
        return -ENOTCONN;
    redisAppendCommand(ctx, "PUBLISH " RDS_SCHEMA ":live %b", json, len);
    redisAppendCommand(ctx, "XADD " RDS_SCHEMA ":live:stream MAXLEN ~ 1000 * sensor %s batch %b",
                       sensor, json, len);
    for (int i = 0; i < 2; i++) {
        void *v = NULL;
        if (redisGetReply(ctx, &v) != REDIS_OK)
            return rds_conn_fail(c, "PUBLISH", NULL);
        redisReply *r = v;
        if (r->type == REDIS_REPLY_ERROR)
            rc = -EIO;
        freeReplyObject(r);
    }
    return rc;
}
