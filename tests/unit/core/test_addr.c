/*
 * Unit tests for core/addr.c: address and prefix parsing and formatting, containment at bit
 * granularity, truncation, the address hash and the darknet prefix sets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

/* Parses s, which the test expects to be valid. */
static struct ds_addr addr(const char *s)
{
    struct ds_addr a;

    assert_int_equal(ds_addr_parse(s, &a), 0);
    return a;
}

static struct ds_cidr cidr(const char *s)
{
    struct ds_cidr c;

    assert_int_equal(ds_cidr_parse(s, &c), 0);
    return c;
}

/* "input => value", so that a failing row of a table names its input. */
static const char *labelled(char *buf, size_t len, const char *in, long long v)
{
    snprintf(buf, len, "%s => %lld", in, v);
    return buf;
}

/* ---------------------------------------------------------------- parse / format */

struct round_trip {
    const char *in;
    uint8_t family;
    uint8_t b[16];
    const char *out; /* canonical text */
};

static const struct round_trip round_trips[] = {
    {"0.0.0.0", 4, {0, 0, 0, 0}, "0.0.0.0"},
    {"1.2.3.4", 4, {1, 2, 3, 4}, "1.2.3.4"},
    {"198.18.255.1", 4, {198, 18, 255, 1}, "198.18.255.1"},
    {"255.255.255.255", 4, {255, 255, 255, 255}, "255.255.255.255"},
    {"::", 6, {0}, "::"},
    {"::1", 6, {[15] = 1}, "::1"},
    /* IPv4-mapped IPv6 stays IPv6 and keeps its dotted tail */
    {"::ffff:1.2.3.4",
     6,
     {[10] = 0xff, [11] = 0xff, [12] = 1, [13] = 2, [14] = 3, [15] = 4},
     "::ffff:1.2.3.4"},
    {"2001:db8::1", 6, {0x20, 0x01, 0x0d, 0xb8, [15] = 1}, "2001:db8::1"},
    /* uncompressed and upper case input come out compressed and lower case */
    {"2001:0DB8:0000:0000:0000:0000:0000:0001",
     6,
     {0x20, 0x01, 0x0d, 0xb8, [15] = 1},
     "2001:db8::1"},
    /* the longest run of zero groups is the one compressed */
    {"2001:db8:0:0:1:0:0:0", 6, {0x20, 0x01, 0x0d, 0xb8, [9] = 1}, "2001:db8:0:0:1::"},
    {"fe80::", 6, {0xfe, 0x80}, "fe80::"},
    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
     6,
     {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      0xff},
     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
};

static void test_addr_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < DS_ARRAY_LEN(round_trips); i++) {
        const struct round_trip *t = &round_trips[i];
        struct ds_addr a = addr(t->in);
        char buf[DS_ADDR_STRLEN];

        assert_int_equal(a.family, t->family);
        assert_memory_equal(a.b, t->b, 16);
        assert_string_equal(ds_addr_format(&a, buf, sizeof(buf)), t->out);
        /* the canonical text parses back to the same address */
        struct ds_addr again = addr(t->out);
        assert_true(ds_addr_equal(&a, &again));
    }
}

static void test_addr_parse_bad(void **state)
{
    static const char *const bad[] = {
        "",
        " 1.2.3.4",
        "1.2.3.4 ",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "01.2.3.4", /* leading zeros are ambiguous (octal to some parsers) */
        "1.2.3.4/24",
        "example.com",
        "::ffff:1.2.3.256",
        "2001:db8:::1",
        "2001:db8::1::2",
        "1:2:3:4:5:6:7:8:9",
        "2001:db8::g",
        "fe80::1%eth0",
        "12345::",
    };
    (void)state;
    for (size_t i = 0; i < DS_ARRAY_LEN(bad); i++) {
        struct ds_addr a;
        char got[128], want[128];
        memset(&a, 0xaa, sizeof(a));
        assert_string_equal(labelled(got, sizeof(got), bad[i], ds_addr_parse(bad[i], &a)),
                            labelled(want, sizeof(want), bad[i], -EINVAL));
        /* a refused address is left as "none", never half filled */
        assert_int_equal(a.family, 0);
    }
}

static void test_addr_format_none(void **state)
{
    struct ds_addr none = {0};
    char buf[DS_ADDR_STRLEN];

    (void)state;
    assert_string_equal(ds_addr_format(&none, buf, sizeof(buf)), "-");
}

static void test_addr_equal(void **state)
{
    struct ds_addr v4 = addr("1.2.3.4"), v4b = addr("1.2.3.4"), v4c = addr("1.2.3.5");
    struct ds_addr mapped = addr("::ffff:1.2.3.4");
    /* same 16 bytes as 1.2.3.4 but family 6 */
    struct ds_addr v6 = addr("102:304::");

    (void)state;
    assert_true(ds_addr_equal(&v4, &v4b));
    assert_false(ds_addr_equal(&v4, &v4c));
    assert_false(ds_addr_equal(&v4, &mapped));
    assert_memory_equal(v6.b, v4.b, 16);
    assert_false(ds_addr_equal(&v4, &v6));
}

/* ---------------------------------------------------------------- CIDR parsing */

struct cidr_case {
    const char *in;
    uint8_t family;
    uint8_t len;
    const char *out;
};

static const struct cidr_case cidr_good[] = {
    {"198.51.100.0/24", 4, 24, "198.51.100.0/24"},
    {"0.0.0.0/0", 4, 0, "0.0.0.0/0"},
    {"10.0.0.0/8", 4, 8, "10.0.0.0/8"},
    {"198.18.0.0/15", 4, 15, "198.18.0.0/15"},
    {"192.0.2.7/32", 4, 32, "192.0.2.7/32"},
    {"192.0.2.7", 4, 32, "192.0.2.7/32"}, /* bare address: host prefix */
    {"2001:db8::/32", 6, 32, "2001:db8::/32"},
    {"::/0", 6, 0, "::/0"},
    {"2001:db8::1/128", 6, 128, "2001:db8::1/128"},
    {"2001:db8::1", 6, 128, "2001:db8::1/128"}, /* bare address: host prefix */
    {"2001:db8:8::/45", 6, 45, "2001:db8:8::/45"},
    {"::ffff:198.18.0.0/112", 6, 112, "::ffff:198.18.0.0/112"},
};

static void test_cidr_parse_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < DS_ARRAY_LEN(cidr_good); i++) {
        const struct cidr_case *t = &cidr_good[i];
        struct ds_cidr c = cidr(t->in);
        char buf[DS_CIDR_STRLEN];

        assert_int_equal(c.addr.family, t->family);
        assert_int_equal(c.len, t->len);
        assert_string_equal(ds_cidr_format(&c, buf, sizeof(buf)), t->out);
    }
}

static void test_cidr_parse_bad(void **state)
{
    static const char *const bad[] = {
        "10.0.0.1/8",      /* host bits set: a typo must not widen to 10.0.0.0/8 */
        "198.18.0.1/16",   /* host bits set */
        "198.19.0.0/15",   /* host bit 16 set */
        "2001:db8::1/64",  /* host bits set */
        "2001:db8:f::/45", /* bits 45..47 of the third group set */
        "1.2.3.4/33",
        "2001:db8::/129",
        "1.2.3.4/-1",
        "1.2.3.4/+8",
        "1.2.3.4/x",
        "1.2.3.4/8x",
        "1.2.3.4/ 8",
        "1.2.3.4/",
        "1.2.3.4/99999999999999999999",
        "/24",
        "",
        "/",
        "1.2.3/24",
        "example.com/24",
        "1.2.3.4/24/8",
        /* longer than any address text: refused, not truncated */
        "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa/128",
    };
    (void)state;
    for (size_t i = 0; i < DS_ARRAY_LEN(bad); i++) {
        struct ds_cidr c;
        char got[128], want[128];
        assert_string_equal(labelled(got, sizeof(got), bad[i], ds_cidr_parse(bad[i], &c)),
                            labelled(want, sizeof(want), bad[i], -EINVAL));
    }
}

/* ---------------------------------------------------------------- containment */

struct contains_case {
    const char *prefix;
    const char *addr;
    bool in;
};

static const struct contains_case contains_cases[] = {
    /* /31: exactly two addresses */
    {"192.0.2.4/31", "192.0.2.4", true},
    {"192.0.2.4/31", "192.0.2.5", true},
    {"192.0.2.4/31", "192.0.2.3", false},
    {"192.0.2.4/31", "192.0.2.6", false},
    /* /13 ends inside the second byte: 10.8.0.0 – 10.15.255.255 */
    {"10.8.0.0/13", "10.8.0.0", true},
    {"10.8.0.0/13", "10.15.255.255", true},
    {"10.8.0.0/13", "10.7.255.255", false},
    {"10.8.0.0/13", "10.16.0.0", false},
    /* byte-aligned and the extremes */
    {"198.18.0.0/15", "198.19.255.255", true},
    {"198.18.0.0/15", "198.20.0.0", false},
    {"0.0.0.0/0", "255.255.255.255", true},
    {"192.0.2.7/32", "192.0.2.7", true},
    {"192.0.2.7/32", "192.0.2.6", false},
    /* /127: two addresses differing in the very last bit */
    {"2001:db8::/127", "2001:db8::", true},
    {"2001:db8::/127", "2001:db8::1", true},
    {"2001:db8::/127", "2001:db8::2", false},
    /* /45 ends inside the sixth byte: 2001:db8:8:: – 2001:db8:f:ffff:… */
    {"2001:db8:8::/45", "2001:db8:8::", true},
    {"2001:db8:8::/45", "2001:db8:f:ffff:ffff:ffff:ffff:ffff", true},
    {"2001:db8:8::/45", "2001:db8:7:ffff:ffff:ffff:ffff:ffff", false},
    {"2001:db8:8::/45", "2001:db8:10::", false},
    {"::/0", "ffff::1", true},
    {"2001:db8::1/128", "2001:db8::1", true},
    {"2001:db8::1/128", "2001:db8::", false},
    /* families never match each other, not even through the mapped form or /0 */
    {"0.0.0.0/0", "::", false},
    {"::/0", "1.2.3.4", false},
    {"::ffff:0.0.0.0/96", "1.2.3.4", false},
    {"1.2.3.0/24", "::ffff:1.2.3.4", false},
};

static void test_cidr_contains(void **state)
{
    (void)state;
    for (size_t i = 0; i < DS_ARRAY_LEN(contains_cases); i++) {
        const struct contains_case *t = &contains_cases[i];
        struct ds_cidr c = cidr(t->prefix);
        struct ds_addr a = addr(t->addr);
        char in[128], got[160], want[160];

        snprintf(in, sizeof(in), "%s in %s", t->addr, t->prefix);
        assert_string_equal(labelled(got, sizeof(got), in, ds_cidr_contains(&c, &a)),
                            labelled(want, sizeof(want), in, t->in));
    }
}

/* ---------------------------------------------------------------- truncation */

struct trunc_case {
    const char *in;
    unsigned len;
    const char *out;
};

static const struct trunc_case trunc_cases[] = {
    {"198.51.100.77", 24, "198.51.100.0"},
    {"198.51.100.77", 16, "198.51.0.0"},
    {"198.51.100.77", 0, "0.0.0.0"},
    {"198.51.100.77", 32, "198.51.100.77"},
    {"198.51.100.77", 40, "198.51.100.77"}, /* longer than the address: unchanged */
    {"255.255.255.255", 13, "255.248.0.0"},
    {"255.255.255.255", 31, "255.255.255.254"},
    {"255.255.255.255", 1, "128.0.0.0"},
    {"2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", 48, "2001:db8:aaaa::"},
    {"2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", 64, "2001:db8:aaaa:bbbb::"},
    {"2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", 45, "2001:db8:aaa8::"},
    {"2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", 127, "2001:db8:aaaa:bbbb:cccc:dddd:eeee:fffe"},
    {"2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", 128, "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff"},
    {"2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", 0, "::"},
};

static void test_addr_truncate(void **state)
{
    (void)state;
    for (size_t i = 0; i < DS_ARRAY_LEN(trunc_cases); i++) {
        const struct trunc_case *t = &trunc_cases[i];
        struct ds_addr a = addr(t->in);
        struct ds_addr want = addr(t->out);
        char got[DS_ADDR_STRLEN];

        ds_addr_truncate(&a, t->len);
        assert_string_equal(ds_addr_format(&a, got, sizeof(got)), t->out);
        assert_true(ds_addr_equal(&a, &want));
    }
}

/* The truncated address is exactly the network of the prefix of that length. */
static void test_addr_truncate_matches_cidr(void **state)
{
    struct ds_addr a = addr("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff");
    struct ds_cidr c = cidr("2001:db8:aaa8::/45");

    (void)state;
    ds_addr_truncate(&a, 45);
    assert_true(ds_addr_equal(&a, &c.addr));
    assert_true(ds_cidr_contains(&c, &a));
}

/* ---------------------------------------------------------------- hash */

static void test_addr_hash_equal(void **state)
{
    struct ds_addr a = addr("198.18.7.9"), b = addr("198.18.7.9");
    struct ds_addr c = addr("2001:db8::7"), d = addr("2001:0db8:0::7");

    (void)state;
    assert_int_equal(ds_addr_hash(&a), ds_addr_hash(&b));
    assert_int_equal(ds_addr_hash(&c), ds_addr_hash(&d));
}

static void test_addr_hash_last_bit(void **state)
{
    struct ds_addr a = addr("198.18.7.8"), b = addr("198.18.7.9");
    struct ds_addr c = addr("2001:db8::6"), d = addr("2001:db8::7");
    /* same bytes, different family */
    struct ds_addr v4 = addr("1.2.3.4"), v6 = addr("102:304::");

    (void)state;
    assert_int_not_equal(ds_addr_hash(&a), ds_addr_hash(&b));
    assert_int_not_equal(ds_addr_hash(&c), ds_addr_hash(&d));
    assert_int_not_equal(ds_addr_hash(&v4), ds_addr_hash(&v6));
}

/* Largest of the 1024 bucket loads. */
static unsigned max_load(const unsigned load[1024])
{
    unsigned max = 0;

    for (unsigned i = 0; i < 1024; i++)
        max = load[i] > max ? load[i] : max;
    return max;
}

/* Darknet sources and destinations share their leading bits: 65536 consecutive addresses must
 * still spread over 1024 buckets (64 each on average). */
static void test_addr_hash_spread_v4(void **state)
{
    static unsigned load[1024];

    (void)state;
    memset(load, 0, sizeof(load));
    for (unsigned i = 0; i < 65536; i++) {
        /* 198.18.i/256.i%256 */
        struct ds_addr a = {.family = 4, .b = {198, 18, (uint8_t)(i >> 8), (uint8_t)i}};
        load[ds_addr_hash(&a) & 1023]++;
    }
    assert_true(max_load(load) < 150);
}

static void test_addr_hash_spread_v6(void **state)
{
    static unsigned load[1024];

    (void)state;
    memset(load, 0, sizeof(load));
    for (unsigned i = 0; i < 65536; i++) {
        /* 2001:db8::i — only the last two bytes vary */
        struct ds_addr a = {.family = 6,
                            .b = {0x20, 0x01, 0x0d, 0xb8, [14] = (uint8_t)(i >> 8), (uint8_t)i}};
        load[ds_addr_hash(&a) & 1023]++;
    }
    assert_true(max_load(load) < 150);
}

/* ---------------------------------------------------------------- prefix sets */

static void prefixset_fill(struct ds_prefixset *s, const char *const *prefixes, size_t n)
{
    ds_prefixset_init(s);
    for (size_t i = 0; i < n; i++) {
        struct ds_cidr c = cidr(prefixes[i]);
        assert_int_equal(ds_prefixset_add(s, &c), 0);
    }
}

struct find_case {
    const char *addr;
    int index;
};

static void test_prefixset_find_longest(void **state)
{
    static const char *const prefixes[] = {
        "198.18.0.0/15",   /* 0 */
        "2001:db8::/32",   /* 1 */
        "198.18.128.0/17", /* 2 */
        "198.18.200.0/24", /* 3 */
        "2001:db8:8::/45", /* 4 */
        "198.18.200.7",    /* 5: a host */
        "2001:db8:8::1",   /* 6: a host */
        "10.0.0.0/8",      /* 7 */
    };
    static const struct find_case cases[] = {
        {"198.18.0.1", 0},
        {"198.19.255.255", 0},
        {"198.18.128.0", 2},
        {"198.18.200.6", 3},
        {"198.18.200.7", 5},
        {"198.18.201.0", 2},
        {"10.1.2.3", 7},
        {"2001:db8::1", 1},
        {"2001:db8:8::2", 4},
        {"2001:db8:f::", 4},
        {"2001:db8:8::1", 6},
        {"2001:db8:10::", 1},
        /* outside */
        {"198.20.0.0", -1},
        {"198.17.255.255", -1},
        {"11.0.0.0", -1},
        {"2001:db9::", -1},
        {"::ffff:198.18.0.1", -1},
        {"::", -1},
    };
    struct ds_prefixset s;

    (void)state;
    prefixset_fill(&s, prefixes, DS_ARRAY_LEN(prefixes));
    for (size_t i = 0; i < DS_ARRAY_LEN(cases); i++) {
        struct ds_addr a = addr(cases[i].addr);
        char got[128], want[128];
        assert_string_equal(labelled(got, sizeof(got), cases[i].addr, ds_prefixset_find(&s, &a)),
                            labelled(want, sizeof(want), cases[i].addr, cases[i].index));
    }
}

static void test_prefixset_find_empty_and_zero(void **state)
{
    static const char *const any_v4[] = {"0.0.0.0/0", "192.0.2.0/24"};
    struct ds_prefixset empty, s;
    struct ds_addr a = addr("192.0.2.1"), b = addr("203.0.113.1"), c = addr("2001:db8::1");

    (void)state;
    ds_prefixset_init(&empty);
    assert_int_equal(ds_prefixset_find(&empty, &a), -1);
    assert_int_equal(ds_prefixset_find(&empty, &c), -1);

    prefixset_fill(&s, any_v4, DS_ARRAY_LEN(any_v4));
    assert_int_equal(ds_prefixset_find(&s, &a), 1);
    assert_int_equal(ds_prefixset_find(&s, &b), 0);
    /* /0 of IPv4 is not IPv6 */
    assert_int_equal(ds_prefixset_find(&s, &c), -1);
}

static void test_prefixset_full(void **state)
{
    static struct ds_prefixset s;
    struct ds_cidr c = cidr("192.0.2.0/24");

    (void)state;
    ds_prefixset_init(&s);
    for (unsigned i = 0; i < DS_PREFIXSET_MAX; i++)
        assert_int_equal(ds_prefixset_add(&s, &c), 0);
    assert_int_equal(ds_prefixset_add(&s, &c), -ENOSPC);
    assert_int_equal(s.n, DS_PREFIXSET_MAX);
}

struct share_case {
    const char *prefixes[4];
    size_t n;
    double share;
};

static const struct share_case share_cases[] = {
    {{"198.18.0.0/16"}, 1, 1.0 / 65536},
    {{"198.18.0.0/15"}, 1, 2.0 / 65536},
    {{"0.0.0.0/0"}, 1, 1.0},
    {{"192.0.2.7/32"}, 1, 1.0 / 4294967296.0},
    /* a /16 inside a /8 is counted once, in either order */
    {{"10.0.0.0/8", "10.1.0.0/16"}, 2, 1.0 / 256},
    {{"10.1.0.0/16", "10.0.0.0/8"}, 2, 1.0 / 256},
    /* the same prefix twice counts once */
    {{"198.18.0.0/16", "198.18.0.0/16"}, 2, 1.0 / 65536},
    /* disjoint prefixes add up */
    {{"198.18.0.0/16", "203.0.113.0/24"}, 2, 1.0 / 65536 + 1.0 / 16777216},
    /* IPv6 is not IPv4 address space */
    {{"2001:db8::/32", "::/0", "198.18.0.0/16"}, 3, 1.0 / 65536},
    {{"2001:db8::/32"}, 1, 0.0},
};

static void test_prefixset_v4_share(void **state)
{
    (void)state;
    for (size_t i = 0; i < DS_ARRAY_LEN(share_cases); i++) {
        struct ds_prefixset s;
        char got[64], want[64];
        prefixset_fill(&s, share_cases[i].prefixes, share_cases[i].n);
        /* powers of two and their sums are exact in a double, and so is their text */
        snprintf(got, sizeof(got), "share_cases[%zu] => %.17g", i, ds_prefixset_v4_share(&s));
        snprintf(want, sizeof(want), "share_cases[%zu] => %.17g", i, share_cases[i].share);
        assert_string_equal(got, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_round_trip),
        cmocka_unit_test(test_addr_parse_bad),
        cmocka_unit_test(test_addr_format_none),
        cmocka_unit_test(test_addr_equal),
        cmocka_unit_test(test_cidr_parse_good),
        cmocka_unit_test(test_cidr_parse_bad),
        cmocka_unit_test(test_cidr_contains),
        cmocka_unit_test(test_addr_truncate),
        cmocka_unit_test(test_addr_truncate_matches_cidr),
        cmocka_unit_test(test_addr_hash_equal),
        cmocka_unit_test(test_addr_hash_last_bit),
        cmocka_unit_test(test_addr_hash_spread_v4),
        cmocka_unit_test(test_addr_hash_spread_v6),
        cmocka_unit_test(test_prefixset_find_longest),
        cmocka_unit_test(test_prefixset_find_empty_and_zero),
        cmocka_unit_test(test_prefixset_full),
        cmocka_unit_test(test_prefixset_v4_share),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
