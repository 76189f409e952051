/* IPv4/IPv6 addresses, CIDR prefixes and the small prefix sets that describe the darknet. */
#include "core/core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int ds_addr_parse(const char *s, struct ds_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, s, out->b) == 1) {
        out->family = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, s, out->b) == 1) {
        out->family = 6;
        return 0;
    }
    memset(out, 0, sizeof(*out));
    return -EINVAL;
}

/* IPv4 by hand: inet_ntop formats with sprintf, and records hold millions of addresses. */
static const char *format_v4(const uint8_t *b, char *buf, size_t len)
{
    char tmp[16], *p = tmp;

    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = i < 3 ? '.' : '\0';
    }
    if ((size_t)(p - tmp) > len)
        return NULL;
    memcpy(buf, tmp, (size_t)(p - tmp));
    return buf;
}

const char *ds_addr_format(const struct ds_addr *a, char *buf, size_t len)
{
    if (a->family == 4 && format_v4(a->b, buf, len))
        return buf;
    if (a->family == 4 || a->family == 6) {
        if (inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->b, buf, (socklen_t)len))
            return buf;
    }
    snprintf(buf, len, "-");
    return buf;
}

static unsigned addr_bits(const struct ds_addr *a)
{
    return a->family == 4 ? 32 : 128;
}

void ds_addr_truncate(struct ds_addr *a, unsigned len)
{
    unsigned bits = addr_bits(a);

    if (len >= bits)
        return;
    a->b[len / 8] &= (uint8_t)(0xff00u >> (len % 8));
    for (unsigned i = len / 8 + 1; i < 16; i++)
        a->b[i] = 0;
    if (len % 8 == 0)
        a->b[len / 8] = 0;
}

int ds_cidr_parse(const char *s, struct ds_cidr *out)
{
    char host[DS_CIDR_STRLEN];
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    long len;
    struct ds_addr masked;

    memset(out, 0, sizeof(*out));
    if (hl == 0 || hl >= sizeof(host))
        return -EINVAL;
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (ds_addr_parse(host, &out->addr) < 0)
        return -EINVAL;
    if (slash) {
        char *end;
        if (slash[1] < '0' || slash[1] > '9')
            return -EINVAL;
        errno = 0;
        len = strtol(slash + 1, &end, 10);
        if (errno || *end || len < 0 || len > (long)addr_bits(&out->addr))
            return -EINVAL;
    } else {
        len = addr_bits(&out->addr);
    }
    out->len = (uint8_t)len;
    masked = out->addr;
    ds_addr_truncate(&masked, out->len);
    if (!ds_addr_equal(&masked, &out->addr))
        return -EINVAL;
    return 0;
}

const char *ds_cidr_format(const struct ds_cidr *c, char *buf, size_t len)
{
    char a[DS_ADDR_STRLEN];

    snprintf(buf, len, "%s/%u", ds_addr_format(&c->addr, a, sizeof(a)), c->len);
    return buf;
}

bool ds_cidr_contains(const struct ds_cidr *c, const struct ds_addr *a)
{
    unsigned full = c->len / 8, rest = c->len % 8;

    if (a->family != c->addr.family)
        return false;
    if (memcmp(a->b, c->addr.b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    return ((a->b[full] ^ c->addr.b[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

uint64_t ds_hash_u64(uint64_t x)
{
    /* splitmix64 finaliser: every input bit reaches every output bit */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t ds_addr_hash(const struct ds_addr *a)
{
    uint64_t hi, lo;

    memcpy(&hi, a->b, 8);
    memcpy(&lo, a->b + 8, 8);
    return ds_hash_u64(hi ^ ds_hash_u64(lo ^ a->family));
}

void ds_prefixset_init(struct ds_prefixset *s)
{
    memset(s, 0, sizeof(*s));
}

int ds_prefixset_add(struct ds_prefixset *s, const struct ds_cidr *c)
{
    if (s->n >= DS_PREFIXSET_MAX)
        return -ENOSPC;
    s->p[s->n] = *c;
    if (c->addr.family == 4) {
        uint32_t net;
        memcpy(&net, c->addr.b, 4);
        s->v4net[s->n] = ntohl(net);
        s->v4mask[s->n] = c->len ? 0xffffffffu << (32 - c->len) : 0;
    }
    s->n++;
    return 0;
}

int ds_prefixset_find(const struct ds_prefixset *s, const struct ds_addr *a)
{
    int best = -1;

    if (a->family == 4) {
        uint32_t v;
        memcpy(&v, a->b, 4);
        v = ntohl(v);
        for (unsigned i = 0; i < s->n; i++) {
            if (s->p[i].addr.family == 4 && (v & s->v4mask[i]) == s->v4net[i] &&
                (best < 0 || s->p[i].len > s->p[best].len))
                best = (int)i;
        }
        return best;
    }
    for (unsigned i = 0; i < s->n; i++) {
        if (ds_cidr_contains(&s->p[i], a) && (best < 0 || s->p[i].len > s->p[best].len))
            best = (int)i;
    }
    return best;
}

double ds_prefixset_v4_share(const struct ds_prefixset *s)
{
    double share = 0;

    /* overlapping prefixes are counted once: a prefix inside another adds nothing */
    for (unsigned i = 0; i < s->n; i++) {
        bool inside = false;
        if (s->p[i].addr.family != 4)
            continue;
        for (unsigned j = 0; j < s->n && !inside; j++) {
            if (j != i && s->p[j].addr.family == 4 && ds_cidr_contains(&s->p[j], &s->p[i].addr) &&
                (s->p[j].len < s->p[i].len || (s->p[j].len == s->p[i].len && j < i)))
                inside = true;
        }
        if (!inside)
            share += 1.0 / (double)(1ULL << s->p[i].len);
    }
    return share;
}
