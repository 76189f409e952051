/* rds_bucket_write() against a real redis-server started by this test: a flush retried with the
 * same id is applied once, a late part (another id) adds up, keys expire `retention` after the
 * write whatever the bucket's age, and the reader finds what was written. */
#include "redis/rds_internal.h"
#include "redis/redis.h"
#include "tests/unit/testlib/redis_server.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static char sock[300];
static char url[320];

static int start_redis(void **state)
{
    (void)state;
    if (test_redis_start(sock, sizeof(sock)) < 0)
        return -1;
    snprintf(url, sizeof(url), "unix:%s", sock);
    return 0;
}

static int stop_redis(void **state)
{
    (void)state;
    test_redis_stop();
    return 0;
}

struct one_source {
    struct rds_source s;
    bool given;
};

static int source_at(const void *ctx, unsigned shard, size_t i, struct rds_source *out)
{
    const struct one_source *o = ctx;

    if (i > 0 || shard != rds_shard(&o->s.addr))
        return 0;
    *out = o->s;
    return 1;
}

/* A 2019 bucket (far older than the retention) with one source of 5 SYNs to tcp/23. */
static void bucket_init(struct rds_bucket *b, struct one_source *src, uint64_t id, bool late)
{
    static const struct rds_port port = {DS_PROTO_TCP, 23, 5, 1};
    static const struct rds_country cc = {"JP", 5, 1};
    static uint64_t per_second[60];
    static struct ds_prefixset darknet;
    struct ds_cidr c;

    memset(b, 0, sizeof(*b));
    memset(src, 0, sizeof(*src));
    ds_prefixset_init(&darknet);
    assert_int_equal(ds_cidr_parse("198.18.0.0/15", &c), 0);
    assert_int_equal(ds_prefixset_add(&darknet, &c), 0);
    per_second[7] = 5;
    assert_int_equal(ds_addr_parse("203.0.113.9", &src->s.addr), 0);
    src->s.packets = 5;
    src->s.bytes = 200;
    src->s.first = 1546300807LL * DS_NS_PER_SEC;
    src->s.last = 1546300807LL * DS_NS_PER_SEC;
    src->s.by_class[DS_CLASS_SCAN] = 5;
    src->s.pure_syns = 5;
    src->s.tool_matches[DS_TOOL_MIRAI] = 5;
    src->s.dsts = 5;
    src->s.n_ports = 1;
    src->s.ports[0] = port;
    src->s.prefixes = 1;
    b->sensor = "unit";
    b->start = 1546300800; /* 2019-01-01T00:00:00Z */
    b->seconds = 60;
    b->flush_id = id;
    b->late = late;
    b->tot.packets = 5;
    b->tot.bytes = 200;
    b->tot.by_class[DS_CLASS_SCAN] = 5;
    b->tot.by_proto[DS_PROTO_TCP] = 5;
    b->tot.by_tool[DS_TOOL_MIRAI] = 5;
    b->tot.sources = 1;
    b->ports = &port;
    b->n_ports = 1;
    b->countries = &cc;
    b->n_countries = 1;
    b->per_second = per_second;
    b->source_at = source_at;
    b->source_ctx = src;
    b->darknet = &darknet;
}

static long long packets_in(struct rds_conn *c)
{
    char err[256];
    json_t *s = rds_query_summary(c, 1546300800, 1546300860, "unit", 5, err, sizeof(err));
    long long v;

    assert_non_null(s);
    v = json_integer_value(json_object_get(s, "packets"));
    json_decref(s);
    return v;
}

static void test_retry_applied_once_and_late_part_adds(void **state)
{
    struct rds_write_opts o = {3600, 7200, 1};
    struct rds_bucket b;
    struct one_source src;
    char err[256];
    struct rds_conn *c = rds_conn_new(url, NULL, NULL, err, sizeof(err));

    (void)state;
    assert_non_null(c);
    assert_int_equal(rds_conn_ensure(c), 0);
    bucket_init(&b, &src, 0x1111, false);
    assert_int_equal(rds_bucket_write(c, &b, &o), 0);
    bucket_init(&b, &src, 0x1111, false); /* the same flush again: a retry */
    assert_int_equal(rds_bucket_write(c, &b, &o), 0);
    assert_int_equal(packets_in(c), 5);
    bucket_init(&b, &src, 0x2222, true); /* a late part of the same bucket */
    assert_int_equal(rds_bucket_write(c, &b, &o), 0);
    assert_int_equal(packets_in(c), 10);

    struct ds_addr a;
    assert_int_equal(ds_addr_parse("203.0.113.9", &a), 0);
    json_t *rec = rds_query_source(c, &a, 0, 2000000000, "unit", err, sizeof(err));
    assert_non_null(rec);
    assert_int_equal(json_integer_value(json_object_get(rec, "packets")), 10);
    assert_int_equal(json_array_size(json_object_get(rec, "records")), 2);
    assert_string_equal(json_string_value(json_object_get(rec, "tool")), "mirai");
    assert_string_equal(json_string_value(json_object_get(rec, "first")),
                        "2019-01-01T00:00:07.000000Z");
    json_decref(rec);
    rds_conn_free(c);
}

/* Retention counts from the write: a 2019 bucket written now lives `retention` seconds. */
static void test_ttl_from_write(void **state)
{
    redisContext *ctx;
    redisReply *r;

    (void)state;
    ctx = redisConnectUnix(sock);
    assert_non_null(ctx);
    r = redisCommand(ctx, "TTL ds:v1:{unit:1546300800}:tot");
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_in_range(r->integer, 3500, 3600);
    freeReplyObject(r);
    r = redisCommand(ctx, "TTL ds:v1:{unit:h1546300800}:tot");
    assert_in_range(r->integer, 7100, 7200);
    freeReplyObject(r);
    r = redisCommand(ctx, "HGET ds:v1:{unit:h1546300800}:tot packets");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "10");
    freeReplyObject(r);
    redisFree(ctx);
}

static long long hash_int(redisContext *ctx, const char *key, const char *field)
{
    redisReply *r = redisCommand(ctx, "HGET %s %s", key, field);
    long long v;

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    v = atoll(r->str);
    freeReplyObject(r);
    return v;
}

static long long hash_len(redisContext *ctx, const char *key)
{
    redisReply *r = redisCommand(ctx, "HLEN %s", key);
    long long v;

    assert_non_null(r);
    v = r->integer;
    freeReplyObject(r);
    return v;
}

/* The bucket keeps every port; its hourly roll-up the RDS_ROLLUP_PORTS busiest, the rest summed
 * per protocol as `other`, so no packet is lost from the hour. */
static void test_rollup_ports_bounded(void **state)
{
    enum {
        TCP = RDS_ROLLUP_PORTS + 5,
        UDP = 3
    };
    static struct rds_port ports[TCP + UDP];
    struct rds_write_opts o = {3600, 7200, 1};
    struct rds_bucket b;
    struct one_source src;
    char err[256];
    long long tail_tcp = 0, tail_tcp_sources = 0, all = 0;
    struct rds_conn *c = rds_conn_new(url, NULL, NULL, err, sizeof(err));

    (void)state;
    for (unsigned i = 0; i < TCP; i++) { /* busiest first, as capture gives them */
        ports[i] = (struct rds_port){DS_PROTO_TCP, (uint16_t)(i + 1), 5000 - i, 2};
        if (i >= RDS_ROLLUP_PORTS) {
            tail_tcp += 5000 - i;
            tail_tcp_sources += 2;
        }
        all += 5000 - i;
    }
    for (unsigned i = 0; i < UDP; i++) {
        ports[TCP + i] = (struct rds_port){DS_PROTO_UDP, (uint16_t)(100 + i), 1, 1};
        all += 1;
    }
    assert_non_null(c);
    assert_int_equal(rds_conn_ensure(c), 0);
    bucket_init(&b, &src, 0x5555, false);
    b.sensor = "roll";
    b.ports = ports;
    b.n_ports = TCP + UDP;
    assert_int_equal(rds_bucket_write(c, &b, &o), 0);

    redisContext *ctx = redisConnectUnix(sock);
    assert_non_null(ctx);
    assert_int_equal(hash_len(ctx, "ds:v1:{roll:1546300800}:port"), 2 * (TCP + UDP));
    const char *hour = "ds:v1:{roll:h1546300800}:port";
    assert_int_equal(hash_len(ctx, hour), 2 * RDS_ROLLUP_PORTS + 4);
    assert_int_equal(hash_int(ctx, hour, "tcp/1"), 5000);
    assert_int_equal(hash_int(ctx, hour, "tcp/1:s"), 2);
    assert_int_equal(hash_int(ctx, hour, "tcp/other"), tail_tcp);
    assert_int_equal(hash_int(ctx, hour, "tcp/other:s"), tail_tcp_sources);
    assert_int_equal(hash_int(ctx, hour, "udp/other"), UDP);
    redisReply *r = redisCommand(ctx, "HGETALL %s", hour);
    long long sum = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        if (!strstr(r->element[i]->str, ":s"))
            sum += atoll(r->element[i + 1]->str);
    }
    freeReplyObject(r);
    assert_int_equal(sum, all);
    redisFree(ctx);

    /* the summary of the bucket ranks its 1,008 ports (an accumulator each) */
    json_t *q = rds_query_summary(c, 1546300800, 1546300860, "roll", 3, err, sizeof(err));
    assert_non_null(q);
    json_t *top = json_object_get(q, "top_ports");
    assert_int_equal(json_array_size(top), 3);
    for (unsigned i = 0; i < 3; i++) {
        json_t *p = json_array_get(top, i);
        assert_int_equal(json_integer_value(json_object_get(p, "port")), i + 1);
        assert_int_equal(json_integer_value(json_object_get(p, "packets")), 5000 - i);
        assert_int_equal(json_integer_value(json_object_get(p, "sources")), 2);
    }
    json_decref(q);
    rds_conn_free(c);
}

/* Index entries of expired buckets are trimmed; live ones stay. */
static void test_index_trim(void **state)
{
    struct rds_write_opts o = {1, 1, 1};
    struct rds_bucket b;
    struct one_source src;
    char err[256];
    struct rds_conn *c = rds_conn_new(url, NULL, NULL, err, sizeof(err));

    (void)state;
    assert_non_null(c);
    assert_int_equal(rds_conn_ensure(c), 0);
    bucket_init(&b, &src, 0x3333, false);
    b.sensor = "short";
    assert_int_equal(rds_bucket_write(c, &b, &o), 0);
    assert_int_equal(rds_index_trim(c, "short", 100), 0);
    struct timespec ts = {2, 200 * 1000000L};
    nanosleep(&ts, NULL); /* retention 1 s */
    assert_int_equal(rds_index_trim(c, "short", 100), 2);
    assert_int_equal(rds_index_trim(c, "unit", 100), 0); /* an hour's retention: kept */
    rds_conn_free(c);
}

/* Many sources: 2,000 IPv4 and 500 IPv6, packets = index + 1, served in shard order. */
#define MANY 2500
struct many {
    struct ds_addr addr[MANY];
    unsigned order[MANY];      /* indexes ordered by shard */
    size_t at[RDS_SHARDS + 1]; /* shard k: order[at[k]] .. order[at[k + 1] - 1] */
};

static void many_addr(unsigned i, struct ds_addr *a)
{
    char text[64];

    if (i < 2000)
        snprintf(text, sizeof(text), "10.%u.%u.%u", i / 65536, (i / 256) % 256, i % 256);
    else
        snprintf(text, sizeof(text), "2001:db8:%x::%x", i / 100, i % 100 + 1);
    assert_int_equal(ds_addr_parse(text, a), 0);
}

static void many_init(struct many *m)
{
    size_t fill[RDS_SHARDS];

    memset(m->at, 0, sizeof(m->at));
    for (unsigned i = 0; i < MANY; i++) {
        many_addr(i, &m->addr[i]);
        m->at[rds_shard(&m->addr[i]) + 1]++;
    }
    for (unsigned k = 0; k < RDS_SHARDS; k++)
        m->at[k + 1] += m->at[k];
    memcpy(fill, m->at, sizeof(fill));
    for (unsigned i = 0; i < MANY; i++)
        m->order[fill[rds_shard(&m->addr[i])]++] = i;
}

static int many_at(const void *ctx, unsigned shard, size_t k, struct rds_source *out)
{
    const struct many *m = ctx;

    if (m->at[shard] + k >= m->at[shard + 1])
        return 0;
    unsigned i = m->order[m->at[shard] + k];
    memset(out, 0, sizeof(*out));
    out->addr = m->addr[i];
    out->packets = i + 1;
    out->by_class[DS_CLASS_SCAN] = i + 1;
    out->first = out->last = 1546300807LL * DS_NS_PER_SEC;
    return 1;
}

/* The reply to a command as bytes in b (nil as "(nil)"; array elements each followed by a
 * newline), for comparing two writes. */
static void reply_bytes(struct rds_conn *c, const char *fmt, const char *key, struct ds_buf *b_)
{
    redisReply *r = redisCommand(rds_conn_ctx(c), fmt, key);
    struct ds_buf b;

    assert_non_null(r);
    ds_buf_init(&b, 64u << 20);
    if (r->type == REDIS_REPLY_STRING)
        ds_buf_add(&b, r->str, r->len);
    else if (r->type == REDIS_REPLY_NIL)
        ds_buf_adds(&b, "(nil)");
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        ds_buf_add(&b, r->element[i]->str, r->element[i]->len);
        ds_buf_addc(&b, '\n');
    }
    freeReplyObject(r);
    assert_false(ds_buf_failed(&b));
    *b_ = b;
}

/* The same reply to two commands: (fmt, a) and (fmt, b); returns its length. */
static size_t same_reply(struct rds_conn *c, const char *fmt, const char *a, const char *b)
{
    struct ds_buf x, y;
    size_t len;

    reply_bytes(c, fmt, a, &x);
    reply_bytes(c, fmt, b, &y);
    assert_int_equal(x.len, y.len);
    assert_true(x.len == 0 || memcmp(x.p, y.p, x.len) == 0);
    len = x.len;
    ds_buf_fini(&x);
    ds_buf_fini(&y);
    return len;
}

struct seen {
    unsigned lines, wrong;
    unsigned char got[MANY];
};

static unsigned many_index(const struct ds_addr *a)
{
    for (unsigned i = 0; i < MANY; i++) {
        struct ds_addr x;
        many_addr(i, &x);
        if (memcmp(&x, a, sizeof(x)) == 0)
            return i;
    }
    return MANY;
}

/* wanted: every seventh source */
static void want_seventh(void *ctx, const struct ds_addr *a, size_t n, bool *wanted)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++)
        wanted[i] = many_index(&a[i]) % 7 == 0;
}

static int on_line(void *ctx, const char *ip, size_t iplen, const char *json, size_t jsonlen)
{
    struct seen *x = ctx;
    char text[64];
    struct ds_addr a;
    json_t *rec = json_loadb(json, jsonlen, 0, NULL);
    unsigned i;

    x->lines++;
    snprintf(text, sizeof(text), "%.*s", (int)iplen, ip);
    if (ds_addr_parse(text, &a) < 0 || (i = many_index(&a)) == MANY || !rec ||
        json_integer_value(json_object_get(rec, "packets")) != (json_int_t)i + 1)
        x->wrong++;
    else
        x->got[i]++;
    json_decref(rec);
    return 0;
}

/* A whole bucket's records come back through the index: only the wanted ones with a filter,
 * every one without, each exactly once and intact. */
static void test_records_through_index(void **state)
{
    struct rds_write_opts o = {3600, 7200, 3}; /* three encoder threads */
    struct rds_bucket b;
    struct one_source unused;
    static struct many m;
    static struct seen x;
    char err[256];
    struct rds_conn *c = rds_conn_new(url, NULL, NULL, err, sizeof(err));

    (void)state;
    assert_non_null(c);
    assert_int_equal(rds_conn_ensure(c), 0);
    many_init(&m);
    bucket_init(&b, &unused, 0x4444, false);
    b.sensor = "many";
    b.source_at = many_at;
    b.source_ctx = &m;
    assert_int_equal(rds_bucket_write(c, &b, &o), 0);

    /* the same bucket encoded by the writing thread alone is stored byte for byte the same:
     * every shard's records, its index, the top sources */
    struct rds_write_opts o1 = {3600, 7200, 1};
    b.sensor = "many1";
    b.flush_id = 0x4445;
    assert_int_equal(rds_bucket_write(c, &b, &o1), 0);
    unsigned shards = 0;
    for (unsigned k = 0; k < RDS_SHARDS; k++) {
        char part[32], key3[RDS_KEY_MAX], key1[RDS_KEY_MAX];
        snprintf(part, sizeof(part), "srcrec:%u", k);
        rds_key_bucket(key3, sizeof(key3), "many", 1546300800, part);
        rds_key_bucket(key1, sizeof(key1), "many1", 1546300800, part);
        shards += same_reply(c, "GET %s", key3, key1) > 5; /* more than "(nil)" */
    }
    assert_true(shards > 500); /* 2,500 sources over 1,024 shards */
    const char *parts[] = {"srcidx", "top"};
    for (unsigned k = 0; k < 2; k++) {
        char key3[RDS_KEY_MAX], key1[RDS_KEY_MAX];
        rds_key_bucket(key3, sizeof(key3), "many", 1546300800, parts[k]);
        rds_key_bucket(key1, sizeof(key1), "many1", 1546300800, parts[k]);
        const char *fmt = k == 0 ? "HGETALL %s" : "ZRANGE %s 0 -1 WITHSCORES";
        assert_true(same_reply(c, fmt, key3, key1) > 1000);
    }

    memset(&x, 0, sizeof(x));
    assert_int_equal(rds_agg_each_record(c, "many", 1546300800, false, want_seventh, on_line, &x,
                                         err, sizeof(err)),
                     0);
    assert_int_equal(x.wrong, 0);
    assert_int_equal(x.lines, (MANY + 6) / 7);
    for (unsigned i = 0; i < MANY; i++)
        assert_int_equal(x.got[i], i % 7 == 0 ? 1 : 0);

    memset(&x, 0, sizeof(x));
    assert_int_equal(
        rds_agg_each_record(c, "many", 1546300800, false, NULL, on_line, &x, err, sizeof(err)), 0);
    assert_int_equal(x.wrong, 0);
    assert_int_equal(x.lines, MANY);
    for (unsigned i = 0; i < MANY; i++)
        assert_int_equal(x.got[i], 1);

    /* and one source's record by address, as `query source` reads it */
    json_t *rec = rds_query_source(c, &m.addr[2100], 0, 2000000000, "many", err, sizeof(err));
    assert_non_null(rec);
    assert_int_equal(json_integer_value(json_object_get(rec, "packets")), 2101);
    json_decref(rec);
    rds_conn_free(c);
}

/* Index entries: IPv4 and IPv6 round trips; truncated or unknown entries are refused. */
static void test_index_entries(void **state)
{
    struct ds_buf b;
    struct ds_addr a4, a6, got;
    uint32_t len;
    const char *p, *end;

    (void)state;
    assert_int_equal(ds_addr_parse("198.51.100.7", &a4), 0);
    assert_int_equal(ds_addr_parse("2001:db8::42", &a6), 0);
    ds_buf_init(&b, 1 << 20);
    rds_index_entry(&b, &a4, 321);
    rds_index_entry(&b, &a6, 70000);
    assert_int_equal(b.len, (1 + 4 + 4) + (1 + 16 + 4));
    p = b.p;
    end = b.p + b.len;
    assert_int_equal(rds_index_next(&p, end, &got, &len), 1);
    assert_memory_equal(&got, &a4, sizeof(got));
    assert_int_equal(len, 321);
    assert_int_equal(rds_index_next(&p, end, &got, &len), 1);
    assert_memory_equal(&got, &a6, sizeof(got));
    assert_int_equal(len, 70000);
    assert_int_equal(rds_index_next(&p, end, &got, &len), 0);
    p = b.p; /* cut inside the second entry */
    end = b.p + b.len - 1;
    assert_int_equal(rds_index_next(&p, end, &got, &len), 1);
    assert_int_equal(rds_index_next(&p, end, &got, &len), -EINVAL);
    p = "\x05"
        "abcdefgh"; /* family 5 */
    assert_int_equal(rds_index_next(&p, p + 9, &got, &len), -EINVAL);
    ds_buf_fini(&b);
}

/* A write Redis refuses (here OOM; MISCONF when its disk is full) names the refusal, not only
 * the EXECABORT that EXEC answers, and applies nothing. */
static void test_refused_write_names_the_cause(void **state)
{
    struct rds_write_opts o = {3600, 7200, 1};
    struct rds_bucket b;
    struct one_source src;
    char err[256];
    struct rds_conn *c = rds_conn_new(url, NULL, NULL, err, sizeof(err));
    redisContext *ctx = redisConnectUnix(sock);
    redisReply *r;

    (void)state;
    assert_non_null(c);
    assert_non_null(ctx);
    r = redisCommand(ctx, "CONFIG SET maxmemory 1");
    freeReplyObject(r);
    assert_int_equal(rds_conn_ensure(c), 0);
    bucket_init(&b, &src, 0x3333, true);
    assert_true(rds_bucket_write(c, &b, &o) < 0);
    assert_non_null(strstr(rds_conn_error(c), "EXEC: OOM"));
    r = redisCommand(ctx, "CONFIG SET maxmemory 0");
    freeReplyObject(r);
    r = redisCommand(ctx, "EXISTS ds:v1:{unit:1546300800}:flush:0000000000003333");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    redisFree(ctx);
    rds_conn_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_applied_once_and_late_part_adds),
        cmocka_unit_test(test_ttl_from_write),
        cmocka_unit_test(test_index_trim),
        cmocka_unit_test(test_records_through_index),
        cmocka_unit_test(test_rollup_ports_bounded),
        cmocka_unit_test(test_index_entries),
        cmocka_unit_test(test_refused_write_names_the_cause),
    };
    return cmocka_run_group_tests(tests, start_redis, stop_redis);
}
