/* Bounded growable buffers (see struct ds_buf in core.h). */
#include "core/core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void ds_buf_init(struct ds_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void ds_buf_fini(struct ds_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void ds_buf_reset(struct ds_buf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->p)
        b->p[0] = '\0';
}

bool ds_buf_failed(const struct ds_buf *b)
{
    return b->failed;
}

static int grow(struct ds_buf *b, size_t need)
{
    size_t cap = b->cap ? b->cap : 256;
    char *p;

    if (b->failed)
        return -ENOMEM;
    if (need > b->max || need < b->len) {
        b->failed = true;
        return -ENOSPC;
    }
    while (cap < need)
        cap = cap * 2 < cap ? need : cap * 2;
    if (cap > b->max)
        cap = b->max;
    p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return -ENOMEM;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

int ds_buf_add_slow(struct ds_buf *b, const void *data, size_t len)
{
    size_t need = b->len + len + 1;

    if (b->failed)
        return -ENOMEM;
    if (need > b->cap && grow(b, need) < 0)
        return b->failed ? -ENOSPC : -ENOMEM;
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

int ds_buf_add_u64(struct ds_buf *b, uint64_t v)
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return ds_buf_add(b, tmp + sizeof(tmp) - n, n);
}

int ds_buf_add_i64(struct ds_buf *b, int64_t v)
{
    if (v < 0) {
        if (ds_buf_addc(b, '-') < 0)
            return -ENOMEM;
        return ds_buf_add_u64(b, (uint64_t)0 - (uint64_t)v);
    }
    return ds_buf_add_u64(b, (uint64_t)v);
}

int ds_buf_addf(struct ds_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    char small[256];

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return -EINVAL;
    }
    if ((size_t)n < sizeof(small))
        return ds_buf_add(b, small, (size_t)n);
    if (grow(b, b->len + (size_t)n + 1) < 0)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int ds_buf_add_json_str(struct ds_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s;

    ds_buf_addc(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t n = 2;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        ds_buf_add(b, run, (size_t)(s - run));
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        ds_buf_add(b, esc, n);
        run = s + 1;
    }
    ds_buf_add(b, run, (size_t)(s - run));
    return ds_buf_addc(b, '"');
}
