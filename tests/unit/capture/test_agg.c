/* Unit tests for capture/agg.c: per-bucket aggregation, merging of worker parts, export. */
#include "capture/cap_internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define START 1767225600 /* 2026-01-01T00:00:00Z */

/* A decoded TCP SYN from src to dst:dport at second `sec` of the bucket. */
static struct cap_pkt syn(const char *src, const char *dst, uint16_t dport, int sec)
{
    struct cap_pkt p;

    memset(&p, 0, sizeof(p));
    assert_int_equal(ds_addr_parse(src, &p.src), 0);
    assert_int_equal(ds_addr_parse(dst, &p.dst), 0);
    p.ts = ((ds_time_ns)START + sec) * DS_NS_PER_SEC;
    p.ip_len = 40;
    p.ipproto = 6;
    p.proto = DS_PROTO_TCP;
    p.has_ports = p.has_flags = p.has_seq = p.has_win = true;
    p.sport = 40000;
    p.dport = dport;
    p.tcp_flags = CAP_TCP_SYN;
    p.trunc = DS_TRUNC_NONE;
    cap_classify(&p);
    return p;
}

static void add(struct cap_bucket *b, const struct cap_pkt *p, int prefix)
{
    cap_bucket_add(b, p, prefix, ds_addr_hash(&p->src));
}

static struct cap_src *find_src(struct cap_bucket *b, const char *ip)
{
    struct ds_addr a;

    assert_int_equal(ds_addr_parse(ip, &a), 0);
    return cap_table_find(&b->src, &a, ds_addr_hash(&a));
}

static void test_totals_ports_and_seconds(void **state)
{
    struct cap_bucket *b = cap_bucket_new(START, 60, 1000);
    struct cap_pkt p1 = syn("192.0.2.1", "198.18.0.1", 23, 0);
    struct cap_pkt p2 = syn("192.0.2.1", "198.18.0.2", 23, 5);
    struct cap_pkt p3 = syn("192.0.2.2", "198.18.0.2", 2323, 5);

    (void)state;
    add(b, &p1, 0);
    add(b, &p2, 0);
    add(b, &p3, 0);
    assert_int_equal(b->tot.packets, 3);
    assert_int_equal(b->tot.bytes, 120);
    assert_int_equal(b->tot.by_class[DS_CLASS_SCAN], 3);
    assert_int_equal(b->tot.by_proto[DS_PROTO_TCP], 3);
    assert_int_equal(b->tot.sources, 2);
    assert_int_equal(b->port_packets[0][23], 2);
    assert_int_equal(b->port_sources[0][23], 1);
    assert_int_equal(b->port_sources[0][2323], 1);
    assert_int_equal(b->per_second[0], 1);
    assert_int_equal(b->per_second[5], 2);
    cap_bucket_free(b);
}

static void test_source_record(void **state)
{
    struct cap_bucket *b = cap_bucket_new(START, 60, 1000);
    struct rds_source out;
    char dst[32];

    (void)state;
    /* 70 destinations: past the exact bound of 16, so the count becomes an estimate */
    for (int i = 0; i < 70; i++) {
        snprintf(dst, sizeof(dst), "198.18.1.%d", i);
        struct cap_pkt p = syn("192.0.2.9", dst, (uint16_t)(i < 50 ? 23 : 80), i % 60);
        add(b, &p, 1);
    }
    cap_src_export(find_src(b, "192.0.2.9"), 8, &out);
    assert_int_equal(out.packets, 70);
    assert_int_equal(out.first, (ds_time_ns)START * DS_NS_PER_SEC);
    assert_int_equal(out.last, ((ds_time_ns)START + 59) * DS_NS_PER_SEC);
    assert_true(out.dsts_estimated);
    assert_in_range(out.dsts, 60, 80);
    assert_int_equal(out.n_ports, 2);
    assert_int_equal(out.ports[0].port, 23);
    assert_int_equal(out.ports[0].packets, 50);
    assert_int_equal(out.ports[1].port, 80);
    assert_int_equal(out.ports[1].packets, 20);
    assert_int_equal(out.ports_distinct, 2);
    assert_int_equal(out.prefixes, 1u << 1);
    assert_int_equal(out.n_samples, RDS_SOURCE_SAMPLES);
    assert_int_equal(out.samples[1].dport, 23);
    cap_bucket_free(b);
}

static void test_exact_destinations(void **state)
{
    struct cap_bucket *b = cap_bucket_new(START, 60, 1000);
    struct rds_source out;

    (void)state;
    for (int i = 0; i < 10; i++) {
        /* every destination twice: distinct count stays exact */
        char dst[32];
        snprintf(dst, sizeof(dst), "198.18.2.%d", i);
        struct cap_pkt p = syn("192.0.2.10", dst, 445, i);
        add(b, &p, 0);
        add(b, &p, 0);
    }
    cap_src_export(find_src(b, "192.0.2.10"), 8, &out);
    assert_int_equal(out.dsts, 10);
    assert_false(out.dsts_estimated);
    assert_int_equal(out.n_ports, 1);
    assert_int_equal(out.ports[0].packets, 20);
    cap_bucket_free(b);
}

/* Two worker parts merged give what one bucket fed every packet gives. */
static void test_merge_equals_single(void **state)
{
    struct cap_bucket *one = cap_bucket_new(START, 60, 1000);
    struct cap_bucket *a = cap_bucket_new(START, 60, 1000);
    struct cap_bucket *b = cap_bucket_new(START, 60, 1000);
    struct rds_source x, y;
    char src[32], dst[32];

    (void)state;
    for (int i = 0; i < 200; i++) {
        snprintf(src, sizeof(src), "192.0.2.%d", i % 7);
        snprintf(dst, sizeof(dst), "198.18.3.%d", i % 31);
        struct cap_pkt p = syn(src, dst, (uint16_t)(20 + i % 5), i % 60);
        add(one, &p, 0);
        add(i % 3 ? a : b, &p, 0);
    }
    cap_bucket_merge(a, b);
    assert_int_equal(a->tot.packets, one->tot.packets);
    assert_int_equal(a->tot.sources, one->tot.sources);
    assert_int_equal(a->src.n, 7);
    for (int port = 20; port < 25; port++) {
        assert_int_equal(a->port_packets[0][port], one->port_packets[0][port]);
        assert_int_equal(a->port_sources[0][port], one->port_sources[0][port]);
    }
    for (int i = 0; i < 60; i++)
        assert_int_equal(a->per_second[i], one->per_second[i]);
    cap_src_export(find_src(a, "192.0.2.3"), 8, &x);
    cap_src_export(find_src(one, "192.0.2.3"), 8, &y);
    assert_int_equal(x.packets, y.packets);
    assert_int_equal(x.dsts, y.dsts);
    assert_int_equal(x.first, y.first);
    assert_int_equal(x.last, y.last);
    assert_int_equal(x.ports_distinct, y.ports_distinct);
    assert_int_equal(b->src.n, 0);
    cap_bucket_free(one);
    cap_bucket_free(a);
    cap_bucket_free(b);
}

/* The source table is bounded: what does not fit is counted, never lost from the totals. */
static void test_source_bound(void **state)
{
    struct cap_bucket *b = cap_bucket_new(START, 60, 2000);
    char src[32];

    (void)state;
    for (int i = 0; i < 3000; i++) {
        snprintf(src, sizeof(src), "10.%d.%d.1", i / 256, i % 256);
        struct cap_pkt p = syn(src, "198.18.0.1", 23, 0);
        add(b, &p, 0);
    }
    assert_int_equal(b->tot.packets, 3000);
    assert_int_equal(b->tot.sources, b->src.n);
    assert_true(b->src.n <= 2000);
    assert_int_equal(b->tot.sources_dropped, 3000 - b->src.n);
    cap_bucket_free(b);
}

static void test_victims(void **state)
{
    struct cap_bucket *b = cap_bucket_new(START, 60, 1000);
    struct cap_pkt p = syn("203.0.113.5", "198.18.0.9", 80, 1);

    (void)state;
    p.tcp_flags = CAP_TCP_SYN | CAP_TCP_ACK;
    cap_classify(&p);
    assert_int_equal(p.cls, DS_CLASS_BACKSCATTER);
    add(b, &p, 0);
    add(b, &p, 0);
    assert_int_equal(b->vic.n, 1);
    struct cap_victim *v = cap_table_find(&b->vic, &p.src, ds_addr_hash(&p.src));
    assert_non_null(v);
    assert_int_equal(v->v.packets, 2);
    cap_bucket_free(b);
}

/* Big blocks freed by one bucket come back zeroed for the next: dirtied, freed, and allocated
 * again of the same size, a block is all zero, and the freed one is reused (the helper thread
 * zeroes it meanwhile; a fresh mapping is zero too, so both cases are checked). */
static void test_memory_reused_zeroed(void **state)
{
    enum {
        BYTES = 4u << 20
    };
    void *first = cap_mem_alloc(BYTES), *held[500];
    unsigned n_held = 0;
    bool reused = false;

    (void)state;
    assert_non_null(first);
    memset(first, 0xab, BYTES);
    cap_mem_free(first, BYTES);
    for (int tries = 0; tries < 500 && !reused; tries++) {
        unsigned char *p = cap_mem_alloc(BYTES);
        assert_non_null(p);
        for (size_t i = 0; i < BYTES; i += 4093)
            assert_int_equal(p[i], 0);
        assert_int_equal(p[BYTES - 1], 0);
        reused = (void *)p == first;
        if (reused) {
            cap_mem_free(p, BYTES);
        } else {
            /* the helper has not zeroed it yet: hold this one, so it cannot come back first */
            held[n_held++] = p;
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    assert_true(reused);
    for (unsigned i = 0; i < n_held; i++)
        cap_mem_free(held[i], BYTES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_totals_ports_and_seconds),
        cmocka_unit_test(test_source_record),
        cmocka_unit_test(test_exact_destinations),
        cmocka_unit_test(test_merge_equals_single),
        cmocka_unit_test(test_source_bound),
        cmocka_unit_test(test_victims),
        cmocka_unit_test(test_memory_reused_zeroed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
