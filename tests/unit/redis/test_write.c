/* rds_bucket_write() against a real redis-server started by this test: a flush retried with the
 * same id is applied once, a late part (another id) adds up, keys expire `retention` after the
 * write whatever the bucket's age, and the reader finds what was written. */
#include "redis/redis.h"
#include "tests/unit/testlib/redis_server.h"

#include <hiredis/hiredis.h>
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

static int next_source(void *ctx, unsigned shard, struct rds_source *out)
{
    struct one_source *o = ctx;

    if (o->given || shard != rds_shard(&o->s.addr))
        return 0;
    o->given = true;
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
    b->source_next = next_source;
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
    struct rds_write_opts o = {3600, 7200};
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

/* Index entries of expired buckets are trimmed; live ones stay. */
static void test_index_trim(void **state)
{
    struct rds_write_opts o = {1, 1};
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_applied_once_and_late_part_adds),
        cmocka_unit_test(test_ttl_from_write),
        cmocka_unit_test(test_index_trim),
    };
    return cmocka_run_group_tests(tests, start_redis, stop_redis);
}
