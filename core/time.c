/* Time: RFC 3339 parsing and formatting in UTC, clocks, durations. */
#include "core/core.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int parse_digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -EINVAL;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

static int expect_char(const char **p, char c)
{
    if (**p != c)
        return -EINVAL;
    (*p)++;
    return 0;
}

int ds_time_parse(const char *s, ds_time_ns *out)
{
    struct tm tm = {0};
    int y, mo, d, h, mi, sec, oh = 0, om = 0;
    int64_t frac = 0, scale = DS_NS_PER_SEC;
    const char *p = s;
    char *end;

    if (!*s)
        return -EINVAL;
    errno = 0;
    long long epoch = strtoll(s, &end, 10);
    if (!errno && !*end && isdigit((unsigned char)*s)) {
        if (epoch > DS_TIME_MAX_SEC)
            return -EINVAL;
        *out = (ds_time_ns)epoch * DS_NS_PER_SEC;
        return 0;
    }
    if (parse_digits(&p, 4, &y) || expect_char(&p, '-') || parse_digits(&p, 2, &mo) ||
        expect_char(&p, '-') || parse_digits(&p, 2, &d))
        return -EINVAL;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -EINVAL;
    p++;
    if (parse_digits(&p, 2, &h) || expect_char(&p, ':') || parse_digits(&p, 2, &mi) ||
        expect_char(&p, ':') || parse_digits(&p, 2, &sec))
        return -EINVAL;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        while (isdigit((unsigned char)*p)) {
            if (scale > 1) {
                scale /= 10;
                frac += (*p - '0') * scale;
            }
            p++;
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        p++;
        if (parse_digits(&p, 2, &oh) || expect_char(&p, ':') || parse_digits(&p, 2, &om))
            return -EINVAL;
        oh *= sign;
        om *= sign;
    } else {
        return -EINVAL;
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || oh > 23 ||
        oh < -23 || om > 59 || om < -59 || d > days_in_month(y, mo))
        return -EINVAL;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    t -= (time_t)oh * 3600 + (time_t)om * 60;
    if (t < -DS_TIME_MAX_SEC || t > DS_TIME_MAX_SEC)
        return -EINVAL;
    *out = (ds_time_ns)t * DS_NS_PER_SEC + frac;
    return 0;
}

static const char *format_common(ds_time_ns t, char *buf, size_t len, bool micros)
{
    time_t sec = (time_t)(t / DS_NS_PER_SEC);
    int64_t ns = t % DS_NS_PER_SEC;
    struct tm tm;
    char base[32];

    if (ns < 0) {
        ns += DS_NS_PER_SEC;
        sec--;
    }
    gmtime_r(&sec, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    if (micros)
        snprintf(buf, len, "%s.%06dZ", base, (int)(ns / 1000));
    else
        snprintf(buf, len, "%sZ", base);
    return buf;
}

const char *ds_time_format(ds_time_ns t, char *buf, size_t len)
{
    return format_common(t, buf, len, false);
}

const char *ds_time_format_us(ds_time_ns t, char *buf, size_t len)
{
    return format_common(t, buf, len, true);
}

ds_time_ns ds_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (ds_time_ns)ts.tv_sec * DS_NS_PER_SEC + ts.tv_nsec;
}

ds_time_ns ds_time_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ds_time_ns)ts.tv_sec * DS_NS_PER_SEC + ts.tv_nsec;
}

void ds_sleep_ns(ds_time_ns ns)
{
    struct timespec ts = {(time_t)(ns / DS_NS_PER_SEC), (long)(ns % DS_NS_PER_SEC)};

    if (ns > 0)
        nanosleep(&ts, NULL);
}

int ds_duration_parse(const char *s, int64_t *out_seconds)
{
    char *end;
    long long v;
    int64_t mult = 1;

    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno)
        return -EINVAL;
    if (*end) {
        switch (*end) {
        case 's':
            mult = 1;
            break;
        case 'm':
            mult = 60;
            break;
        case 'h':
            mult = 3600;
            break;
        case 'd':
            mult = 86400;
            break;
        default:
            return -EINVAL;
        }
        if (end[1])
            return -EINVAL;
    }
    if (v > INT64_MAX / mult)
        return -EINVAL;
    *out_seconds = (int64_t)v * mult;
    return 0;
}
