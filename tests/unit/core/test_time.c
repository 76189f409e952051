/*
 * Unit tests for core/time.c: RFC 3339 and epoch parsing to UTC nanoseconds, formatting, and
 * durations. Expected epochs were computed independently (Python's calendar.timegm).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/core.h"

#define S(x) ((ds_time_ns)(x)*DS_NS_PER_SEC)

/* 2026-01-01T00:00:00Z */
#define NEW_YEAR_2026 1767225600LL

/* "input => value", so that a failing row of a table names its input. */
static const char *labelled(char *buf, size_t len, const char *in, long long v)
{
    snprintf(buf, len, "%s => %lld", in, v);
    return buf;
}

/* ---------------------------------------------------------------- ds_time_parse */

struct time_case {
    const char *in;
    ds_time_ns want;
};

static const struct time_case time_good[] = {
    {"2026-01-01T00:00:00Z", S(NEW_YEAR_2026)},
    {"2026-01-01t00:00:00z", S(NEW_YEAR_2026)},
    {"2026-01-01 00:00:00Z", S(NEW_YEAR_2026)}, /* RFC 3339 allows a space for T */
    {"1970-01-01T00:00:00Z", 0},
    /* offsets are converted to UTC */
    {"2026-01-01T09:00:00+09:00", S(NEW_YEAR_2026)},
    {"2025-12-31T19:30:00-04:30", S(NEW_YEAR_2026)},
    {"2026-01-01T00:00:00+00:00", S(NEW_YEAR_2026)},
    {"2026-01-01T00:00:00-00:00", S(NEW_YEAR_2026)},
    {"2026-01-01T00:00:00+23:59", S(NEW_YEAR_2026 - 23 * 3600 - 59 * 60)},
    /* fractions, to the nanosecond; digits past the ninth are dropped */
    {"2026-01-01T00:00:00.5Z", S(NEW_YEAR_2026) + 500000000},
    {"2026-01-01T00:00:00.000000001Z", S(NEW_YEAR_2026) + 1},
    {"2026-01-01T00:00:00.123456789Z", S(NEW_YEAR_2026) + 123456789},
    {"2026-01-01T00:00:00.1234567899Z", S(NEW_YEAR_2026) + 123456789},
    {"2026-01-01T09:00:00.25+09:00", S(NEW_YEAR_2026) + 250000000},
    /* leap days */
    {"2024-02-29T00:00:00Z", S(1709164800LL)},
    {"2000-02-29T12:00:00Z", S(951825600LL)},
    /* a leap second reads as the first second of the next minute */
    {"2016-12-31T23:59:60Z", S(1483228800LL)},
    /* before the epoch */
    {"1969-12-31T23:59:59Z", S(-1)},
    {"1969-12-31T23:59:59.75Z", S(-1) + 750000000},
    {"1900-01-01T00:00:00Z", S(-2208988800LL)},
    /* the last whole second that fits in ds_time_ns with room for a fraction */
    {"2262-04-11T23:47:15Z", S(9223372035LL)},
    {"2262-04-11T23:47:15.999999999Z", S(9223372035LL) + 999999999},
    {"1677-09-21T00:12:45Z", S(-9223372035LL)},
    /* integer epoch seconds */
    {"0", 0},
    {"1767225600", S(NEW_YEAR_2026)},
    {"9223372035", S(9223372035LL)},
};

static void test_time_parse_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < DS_ARRAY_LEN(time_good); i++) {
        ds_time_ns t = -42;
        char got[128], want[128];
        int rc = ds_time_parse(time_good[i].in, &t);

        assert_string_equal(labelled(got, sizeof(got), time_good[i].in, rc),
                            labelled(want, sizeof(want), time_good[i].in, 0));
        assert_string_equal(labelled(got, sizeof(got), time_good[i].in, t),
                            labelled(want, sizeof(want), time_good[i].in, time_good[i].want));
    }
}

static void test_time_parse_bad(void **state)
{
    static const char *const bad[] = {
        "",
        /* impossible dates and times */
        "2026-02-30T00:00:00Z",
        "2026-02-29T00:00:00Z", /* 2026 is not a leap year */
        "2100-02-29T00:00:00Z", /* nor is 2100 */
        "2026-04-31T00:00:00Z",
        "2026-02-30T23:59:60Z", /* a leap second does not excuse the date */
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "2026-01-32T00:00:00Z",
        "2026-01-01T25:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T23:60:00Z",
        "2026-01-01T23:59:61Z",
        /* zone missing or malformed */
        "2026-01-01T00:00:00",
        "2026-01-01T00:00:00.5",
        "2026-01-01T00:00:00+09",
        "2026-01-01T00:00:00+0900",
        "2026-01-01T00:00:00+24:00",
        "2026-01-01T00:00:00+09:60",
        "2026-01-01T00:00:00UTC",
        /* trailing junk */
        "2026-01-01T00:00:00Zjunk",
        "2026-01-01T00:00:00Z ",
        "2026-01-01T00:00:00+09:00:00",
        "1767225600s",
        "1767225600 ",
        /* other shapes */
        "2026-01-01",
        "2026-01-01T00:00Z",
        "2026-01-01T00:00:00.Z",
        "2026-1-01T00:00:00Z",
        "26-01-01T00:00:00Z",
        "2026/01/01T00:00:00Z",
        "2026-01-01X00:00:00Z",
        "now",
        "1e9",
        "0x10",
        /* epoch seconds: no sign, no blank, nothing before 1970 */
        "-1",
        "+60",
        " 60",
        /* beyond ds_time_ns (int64 nanoseconds) */
        "9223372036",
        "253402300799",
        "99999999999999999999",
        "2262-04-11T23:47:16Z",
        "9999-12-31T23:59:59Z",
        "0000-01-01T00:00:00Z",
        "1677-09-21T00:12:44Z",
    };
    (void)state;
    for (size_t i = 0; i < DS_ARRAY_LEN(bad); i++) {
        ds_time_ns t = -42;
        char got[128], want[128];

        assert_string_equal(labelled(got, sizeof(got), bad[i], ds_time_parse(bad[i], &t)),
                            labelled(want, sizeof(want), bad[i], -EINVAL));
        /* the output is untouched on failure */
        assert_int_equal(t, -42);
    }
}

/* ---------------------------------------------------------------- formatting */

struct format_case {
    ds_time_ns t;
    const char *secs;
    const char *micros;
};

static const struct format_case format_cases[] = {
    {0, "1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000000Z"},
    {S(NEW_YEAR_2026), "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.000000Z"},
    /* whole seconds and microseconds are truncated, never rounded up */
    {S(NEW_YEAR_2026) + 999999999, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.999999Z"},
    {S(NEW_YEAR_2026) + 123456789, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.123456Z"},
    {S(NEW_YEAR_2026) + 1000, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.000001Z"},
    {S(NEW_YEAR_2026) + 999, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.000000Z"},
    {S(1709164800LL) + S(86399), "2024-02-29T23:59:59Z", "2024-02-29T23:59:59.000000Z"},
    /* before the epoch the fraction still counts forward from the whole second below */
    {-1, "1969-12-31T23:59:59Z", "1969-12-31T23:59:59.999999Z"},
    {S(-1) + 250000000, "1969-12-31T23:59:59Z", "1969-12-31T23:59:59.250000Z"},
    {S(-2208988800LL), "1900-01-01T00:00:00Z", "1900-01-01T00:00:00.000000Z"},
    {S(9223372035LL), "2262-04-11T23:47:15Z", "2262-04-11T23:47:15.000000Z"},
};

static void test_time_format(void **state)
{
    (void)state;
    for (size_t i = 0; i < DS_ARRAY_LEN(format_cases); i++) {
        char buf[32];

        assert_string_equal(ds_time_format(format_cases[i].t, buf, sizeof(buf)),
                            format_cases[i].secs);
        assert_string_equal(ds_time_format_us(format_cases[i].t, buf, sizeof(buf)),
                            format_cases[i].micros);
    }
}

/* Formatting returns the buffer it was given. */
static void test_time_format_returns_buf(void **state)
{
    char buf[32];

    (void)state;
    assert_ptr_equal(ds_time_format(0, buf, sizeof(buf)), buf);
    assert_ptr_equal(ds_time_format_us(0, buf, sizeof(buf)), buf);
}

/* What ds_time_format_us writes, ds_time_parse reads back to the microsecond. */
static void test_time_format_parse_round_trip(void **state)
{
    static const ds_time_ns times[] = {
        0, S(NEW_YEAR_2026) + 123456000, S(-1) + 1000, S(1483228799) + 999999000, S(9223372035LL),
    };
    (void)state;
    for (size_t i = 0; i < DS_ARRAY_LEN(times); i++) {
        char buf[32];
        ds_time_ns back = -42;

        assert_int_equal(ds_time_parse(ds_time_format_us(times[i], buf, sizeof(buf)), &back), 0);
        assert_int_equal(back, times[i]);
    }
}

/* ---------------------------------------------------------------- clocks */

static void test_time_clocks(void **state)
{
    ds_time_ns m1 = ds_time_monotonic(), m2 = ds_time_monotonic();
    time_t before = time(NULL);
    ds_time_ns now = ds_time_now();
    time_t after = time(NULL);

    (void)state;
    assert_true(m2 >= m1);
    /* the wall clock in nanoseconds, consistent with time() around it */
    assert_true(now >= S(before));
    assert_true(now < S(after + 1));
}

/* ---------------------------------------------------------------- durations */

struct duration_case {
    const char *in;
    int64_t secs;
};

static const struct duration_case duration_good[] = {
    {"0", 0},
    {"90", 90},
    {"90s", 90},
    {"15m", 900},
    {"2h", 7200},
    {"2d", 172800},
    {"90d", 7776000},
    {"0d", 0},
    {"007", 7},
    /* the largest day count whose seconds fit in int64 */
    {"106751991167300d", 106751991167300LL * 86400},
    {"9223372036854775807", INT64_MAX},
};

static void test_duration_parse_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < DS_ARRAY_LEN(duration_good); i++) {
        int64_t secs = -42;
        char got[128], want[128];
        int rc = ds_duration_parse(duration_good[i].in, &secs);

        assert_string_equal(labelled(got, sizeof(got), duration_good[i].in, rc),
                            labelled(want, sizeof(want), duration_good[i].in, 0));
        assert_string_equal(
            labelled(got, sizeof(got), duration_good[i].in, secs),
            labelled(want, sizeof(want), duration_good[i].in, duration_good[i].secs));
    }
}

static void test_duration_parse_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "5x",
        "-1",
        "+1",
        " 1",
        "1h2",
        "1h ",
        "5 m",
        "5mm",
        "1.5h",
        "h",
        "d",
        "2 days",
        "1w",
        "1H",
        "106751991167301d",    /* seconds overflow int64 */
        "9223372036854775808", /* overflows int64 itself */
    };
    (void)state;
    for (size_t i = 0; i < DS_ARRAY_LEN(bad); i++) {
        int64_t secs = -42;
        char got[128], want[128];

        assert_string_equal(labelled(got, sizeof(got), bad[i], ds_duration_parse(bad[i], &secs)),
                            labelled(want, sizeof(want), bad[i], -EINVAL));
        assert_int_equal(secs, -42);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_parse_good),
        cmocka_unit_test(test_time_parse_bad),
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_time_format_returns_buf),
        cmocka_unit_test(test_time_format_parse_round_trip),
        cmocka_unit_test(test_time_clocks),
        cmocka_unit_test(test_duration_parse_good),
        cmocka_unit_test(test_duration_parse_bad),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
