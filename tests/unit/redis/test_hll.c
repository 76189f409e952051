/* rds_hll_dense() must make exactly the registers Redis's PFADD makes: checked against a real
 * redis-server this test starts on a unix socket of its own. */
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
static redisContext *ctx;

static int start_redis(void **state)
{
    (void)state;
    if (test_redis_start(sock, sizeof(sock)) < 0)
        return -1;
    ctx = redisConnectUnix(sock);
    return ctx && !ctx->err ? 0 : -1;
}

static int stop_redis(void **state)
{
    (void)state;
    if (ctx)
        redisFree(ctx);
    test_redis_stop();
    return 0;
}

/* n pseudo-random elements, as capture makes them (64-bit address hashes) */
static uint64_t *elements(size_t n, uint64_t seed)
{
    uint64_t *e = malloc(n * sizeof(*e));
    for (size_t i = 0; i < n; i++) {
        seed += 0x9e3779b97f4a7c15ULL;
        uint64_t z = seed;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        e[i] = z ^ (z >> 31);
    }
    return e;
}

static void pfadd(const char *key, const uint64_t *e, size_t n)
{
    for (size_t i = 0; i < n; i += 500) {
        size_t m = n - i < 500 ? n - i : 500;
        const char *argv[502];
        size_t lens[502];
        argv[0] = "PFADD";
        lens[0] = 5;
        argv[1] = key;
        lens[1] = strlen(key);
        for (size_t k = 0; k < m; k++) {
            argv[2 + k] = (const char *)&e[i + k];
            lens[2 + k] = 8;
        }
        redisReply *r = redisCommandArgv(ctx, (int)m + 2, argv, lens);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        freeReplyObject(r);
    }
}

static long long pfcount(const char *key)
{
    redisReply *r = redisCommand(ctx, "PFCOUNT %s", key);
    long long v;

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    v = r->integer;
    freeReplyObject(r);
    return v;
}

/* Large enough for Redis to hold the key dense: the registers must match byte for byte. */
static void test_dense_registers_match_pfadd(void **state)
{
    size_t n = 20000;
    uint64_t *e = elements(n, 1);
    uint8_t mine[RDS_HLL_DENSE_SIZE];
    redisReply *r;

    (void)state;
    pfadd("theirs", e, n);
    rds_hll_dense(mine, e, n);
    r = redisCommand(ctx, "GET theirs");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(r->len, RDS_HLL_DENSE_SIZE);
    assert_memory_equal(r->str, "HYLL", 4);
    assert_int_equal(r->str[4], 0); /* dense */
    assert_memory_equal(r->str + 16, mine + 16, RDS_HLL_DENSE_SIZE - 16);
    freeReplyObject(r);
    r = redisCommand(ctx, "SET mine %b", mine, (size_t)RDS_HLL_DENSE_SIZE);
    freeReplyObject(r);
    assert_int_equal(pfcount("mine"), pfcount("theirs"));
    free(e);
}

/* Small sets stay sparse in Redis; the counts must still agree exactly, and a local HLL merged
 * into a PFADDed one gives the union. */
static void test_small_and_merged(void **state)
{
    uint64_t *a = elements(300, 7), *b = elements(5000, 8);
    uint8_t mine[RDS_HLL_DENSE_SIZE];
    redisReply *r;

    (void)state;
    pfadd("small", a, 300);
    rds_hll_dense(mine, a, 300);
    r = redisCommand(ctx, "SET smallmine %b", mine, (size_t)RDS_HLL_DENSE_SIZE);
    freeReplyObject(r);
    assert_int_equal(pfcount("smallmine"), pfcount("small"));

    pfadd("union_ref", a, 300);
    pfadd("union_ref", b, 5000);
    rds_hll_dense(mine, b, 5000);
    r = redisCommand(ctx, "SET tmp %b", mine, (size_t)RDS_HLL_DENSE_SIZE);
    freeReplyObject(r);
    r = redisCommand(ctx, "PFMERGE small tmp");
    freeReplyObject(r);
    assert_int_equal(pfcount("small"), pfcount("union_ref"));
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_registers_match_pfadd),
        cmocka_unit_test(test_small_and_merged),
    };
    return cmocka_run_group_tests(tests, start_redis, stop_redis);
}
