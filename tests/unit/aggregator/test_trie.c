/* aggregator/trie.c: hand-made cases (nesting, overlaps, splits, both families, the IPv4 table)
 * and random prefix sets checked against a brute-force scan with ds_cidr_contains. */
#include "aggregator/aggregator.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void add(struct agg_trie *t, const char *cidr, uint32_t v)
{
    struct ds_cidr c;
    assert_int_equal(ds_cidr_parse(cidr, &c), 0);
    assert_int_equal(agg_trie_add(t, &c, v), 0);
}

static unsigned match(struct agg_trie *t, const char *ip, struct agg_match *m, unsigned max)
{
    struct ds_addr a;
    assert_int_equal(ds_addr_parse(ip, &a), 0);
    return agg_trie_match(t, &a, m, max);
}

static void test_hand(void **state)
{
    struct agg_trie *t = agg_trie_new();
    struct agg_match m[8];

    (void)state;
    add(t, "203.0.113.0/24", 1);   /* customer */
    add(t, "203.0.0.0/16", 2);     /* its ISP */
    add(t, "203.0.113.128/25", 3); /* a second customer, nested */
    add(t, "203.0.113.0/24", 4);   /* overlapping: another org, same prefix */
    add(t, "203.0.113.0/24", 1);   /* repeated: kept once */
    add(t, "198.51.100.7/32", 5);
    add(t, "0.0.0.0/0", 6);
    add(t, "2001:db8:1::/48", 7);
    add(t, "2001:db8::/32", 8);
    add(t, "2001:db8:1:2::/64", 9);
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(match(t, "203.0.113.200", m, 8), 5);
        assert_int_equal(m[0].value, 3);
        assert_int_equal(m[0].len, 25);
        assert_true((m[1].value == 1 && m[2].value == 4) || (m[1].value == 4 && m[2].value == 1));
        assert_int_equal(m[1].len, 24);
        assert_int_equal(m[3].value, 2);
        assert_int_equal(m[4].value, 6);
        assert_int_equal(m[4].len, 0);
        assert_int_equal(match(t, "203.0.113.5", m, 8), 4);
        assert_int_equal(match(t, "203.0.200.1", m, 8), 2);
        assert_int_equal(match(t, "198.51.100.7", m, 8), 2);
        assert_int_equal(m[0].value, 5);
        assert_int_equal(match(t, "198.51.100.8", m, 8), 1);
        assert_int_equal(match(t, "2001:db8:1:2::99", m, 8), 3);
        assert_int_equal(m[0].value, 9);
        assert_int_equal(m[1].value, 7);
        assert_int_equal(m[2].value, 8);
        assert_int_equal(match(t, "2001:db9::1", m, 8), 0);   /* 0.0.0.0/0 is IPv4 only */
        assert_int_equal(match(t, "203.0.113.200", m, 2), 5); /* the total, even past max */
        assert_int_equal(agg_trie_finish(t), 0);              /* second pass: with the table */
    }
    assert_int_equal(agg_trie_prefixes(t), 10);
    agg_trie_free(t);
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int cmp_match(const void *a, const void *b)
{
    const struct agg_match *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? 1 : -1;
    return (x->value > y->value) - (x->value < y->value);
}

static void random_addr(struct ds_addr *a, bool v6)
{
    uint64_t r1 = next(), r2 = next();
    memset(a, 0, sizeof(*a));
    a->family = v6 ? 6 : 4;
    memcpy(a->b, &r1, 8);
    if (v6) {
        memcpy(a->b + 8, &r2, 8);
        a->b[0] = 0x20; /* keep them near each other so prefixes nest */
        a->b[1] = (uint8_t)(0x01 + (r2 & 1));
    } else {
        memset(a->b + 4, 0, 12);
        a->b[0] = (uint8_t)(10 + (r2 & 3));
    }
}

static void test_random_against_brute_force(void **state)
{
    enum {
        N = 3000,
        Q = 10000
    };
    struct ds_cidr *p = calloc(N, sizeof(*p));
    struct agg_trie *t = agg_trie_new();
    static struct agg_match got[1024], want[1024];

    (void)state;
    for (unsigned i = 0; i < N; i++) {
        bool v6 = next() % 3 == 0;
        unsigned max = v6 ? 128 : 32;
        unsigned len = (unsigned)(next() % (max + 1));
        if (next() % 2)
            len = v6 ? 32 + (unsigned)(next() % 33) : 8 + (unsigned)(next() % 17);
        char text[DS_CIDR_STRLEN];
        random_addr(&p[i].addr, v6);
        p[i].len = (uint8_t)len;
        /* clear host bits through the parser, as configured prefixes are */
        struct ds_cidr tmp = p[i];
        ds_cidr_format(&tmp, text, sizeof(text));
        for (unsigned b = len; b < max; b++)
            p[i].addr.b[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
        assert_int_equal(agg_trie_add(t, &p[i], i % 700), 0);
        if (i == N / 2)
            assert_int_equal(agg_trie_finish(t), 0); /* adds after finish stay correct */
    }
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned q = 0; q < Q; q++) {
            struct ds_addr a;
            if (q % 2) {
                /* inside a random prefix */
                const struct ds_cidr *c = &p[next() % N];
                random_addr(&a, c->addr.family == 6);
                unsigned max = c->addr.family == 6 ? 128 : 32;
                for (unsigned b = 0; b < c->len && b < max; b++) {
                    uint8_t bit = (uint8_t)(0x80 >> (b % 8));
                    a.b[b / 8] = (uint8_t)((a.b[b / 8] & ~bit) | (c->addr.b[b / 8] & bit));
                }
            } else {
                random_addr(&a, next() % 3 == 0);
            }
            unsigned nw = 0;
            for (unsigned i = 0; i < N; i++) {
                if (!ds_cidr_contains(&p[i], &a))
                    continue;
                bool dup = false;
                for (unsigned k = 0; k < nw; k++)
                    dup |= want[k].value == i % 700 && want[k].len == p[i].len;
                if (!dup && nw < 1024)
                    want[nw++] = (struct agg_match){i % 700, p[i].len};
            }
            unsigned ng = agg_trie_match(t, &a, got, 1024);
            assert_int_equal(ng, nw);
            for (unsigned k = 1; k < ng; k++)
                assert_true(got[k - 1].len >= got[k].len); /* longest first */
            qsort(got, ng, sizeof(got[0]), cmp_match);
            qsort(want, nw, sizeof(want[0]), cmp_match);
            assert_memory_equal(got, want, ng * sizeof(got[0]));
        }
        assert_int_equal(agg_trie_finish(t), 0);
    }
    agg_trie_free(t);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand),
        cmocka_unit_test(test_random_against_brute_force),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
