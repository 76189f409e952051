/*
 * gen_addr.c - addresses, CIDR prefixes, the darknet set and the source address generator.
 *
 * Sources must look like the Internet to a GeoIP database: IPv4 sources come from the whole
 * routable unicast space (special-purpose blocks and the darknet removed), IPv6 sources from the
 * five RIRs' 2xxx::/12 blocks inside 2000::/3 (never 2001:db8::/32).  IPv4 population addresses
 * go through a keyed bijection of a counter, so they are distinct without a lookup table.
 */
#include "gen_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint32_t gen_addr_v4(const struct gen_addr *a)
{
    return (uint32_t)a->b[0] << 24 | (uint32_t)a->b[1] << 16 | (uint32_t)a->b[2] << 8 | a->b[3];
}

void gen_addr_set_v4(struct gen_addr *a, uint32_t v)
{
    memset(a, 0, sizeof(*a));
    a->family = 4;
    a->b[0] = (uint8_t)(v >> 24);
    a->b[1] = (uint8_t)(v >> 16);
    a->b[2] = (uint8_t)(v >> 8);
    a->b[3] = (uint8_t)v;
}

bool gen_addr_equal(const struct gen_addr *a, const struct gen_addr *b)
{
    return a->family == b->family && memcmp(a->b, b->b, 16) == 0;
}

int gen_addr_compare(const struct gen_addr *a, const struct gen_addr *b)
{
    if (a->family != b->family)
        return a->family < b->family ? -1 : 1;
    return memcmp(a->b, b->b, 16);
}

uint64_t gen_addr_hash(const struct gen_addr *a)
{
    uint64_t hi, lo;

    memcpy(&hi, a->b, 8);
    memcpy(&lo, a->b + 8, 8);
    return gen_mix64(hi ^ gen_mix64(lo ^ a->family));
}

const char *gen_addr_format(const struct gen_addr *a, char *buf, size_t len)
{
    if (inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->b, buf, (socklen_t)len) == NULL)
        snprintf(buf, len, "?");
    return buf;
}

static void addr_mask(struct gen_addr *a, unsigned len)
{
    unsigned bits = a->family == 4 ? 32 : 128;

    for (unsigned i = len; i < bits; i++)
        a->b[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
}

bool gen_prefix_contains(const struct gen_prefix *p, const struct gen_addr *a)
{
    unsigned full = p->len / 8, rest = p->len % 8;

    if (p->net.family != a->family || memcmp(p->net.b, a->b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    return ((p->net.b[full] ^ a->b[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

int gen_prefix_parse(const char *s, struct gen_prefix *p, char *err, size_t errlen)
{
    char host[64], *end;
    const char *slash = strchr(s, '/');
    struct gen_addr masked;
    long len;
    size_t hl;

    memset(p, 0, sizeof(*p));
    if (slash == NULL || (hl = (size_t)(slash - s)) == 0 || hl >= sizeof(host)) {
        snprintf(err, errlen, "--darknet '%s': expected a CIDR prefix such as 198.18.0.0/16", s);
        return -EINVAL;
    }
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (inet_pton(AF_INET, host, p->net.b) == 1) {
        p->net.family = 4;
    } else if (inet_pton(AF_INET6, host, p->net.b) == 1) {
        p->net.family = 6;
    } else {
        snprintf(err, errlen, "--darknet '%s': '%s' is not an IPv4 or IPv6 address", s, host);
        return -EINVAL;
    }
    errno = 0;
    len = strtol(slash + 1, &end, 10);
    if (errno != 0 || end == slash + 1 || *end != '\0' || len < 0) {
        snprintf(err, errlen, "--darknet '%s': bad prefix length", s);
        return -EINVAL;
    }
    /* Short prefixes would leave no room for sources (IPv4) or swallow 2000::/3 (IPv6). */
    if (p->net.family == 4 && (len < 8 || len > 32)) {
        snprintf(err, errlen, "--darknet '%s': IPv4 prefix length must be 8..32", s);
        return -EINVAL;
    }
    if (p->net.family == 6 && (len < 16 || len > 128)) {
        snprintf(err, errlen, "--darknet '%s': IPv6 prefix length must be 16..128", s);
        return -EINVAL;
    }
    p->len = (uint8_t)len;
    masked = p->net;
    addr_mask(&masked, p->len);
    if (!gen_addr_equal(&masked, &p->net)) {
        char buf[64];

        snprintf(err, errlen, "--darknet '%s': host bits set (did you mean %s/%ld?)", s,
                 gen_addr_format(&masked, buf, sizeof(buf)), len);
        return -EINVAL;
    }
    return 0;
}

const char *gen_prefix_format(const struct gen_prefix *p, char *buf, size_t len)
{
    char a[64];

    snprintf(buf, len, "%s/%u", gen_addr_format(&p->net, a, sizeof(a)), p->len);
    return buf;
}

int gen_darknet_add(struct gen_darknet *dn, const struct gen_prefix *p, char *err, size_t errlen)
{
    if (dn->n >= GEN_MAX_DARKNETS) {
        snprintf(err, errlen, "--darknet: at most %d prefixes", GEN_MAX_DARKNETS);
        return -E2BIG;
    }
    if (p->net.family == 4) {
        dn->weight4[dn->n4] = (double)(1ULL << (32 - p->len));
        dn->idx4[dn->n4++] = dn->n;
    } else {
        dn->idx6[dn->n6++] = dn->n;
    }
    dn->all[dn->n++] = *p;
    return 0;
}

bool gen_darknet_contains(const struct gen_darknet *dn, const struct gen_addr *a)
{
    for (size_t i = 0; i < dn->n; i++)
        if (gen_prefix_contains(&dn->all[i], a))
            return true;
    return false;
}

void gen_darknet_pick(const struct gen_darknet *dn, struct gen_rng *r, int family,
                      struct gen_addr *out)
{
    const struct gen_prefix *p;
    struct gen_addr host;

    if (family == 4)
        p = &dn->all[dn->idx4[gen_rng_weighted(r, dn->weight4, dn->n4)]];
    else
        p = &dn->all[dn->idx6[gen_rng_below(r, (uint32_t)dn->n6)]];
    memset(&host, 0, sizeof(host));
    host.family = p->net.family;
    gen_rng_fill(r, host.b, family == 4 ? 4 : 16);
    /* IPv6 scanners favour low interface identifiers (::1, ::2 ...) over random ones */
    if (family == 6 && p->len <= 64 && gen_rng_chance(r, 0.4)) {
        memset(host.b + 8, 0, 8);
        host.b[15] = (uint8_t)gen_rng_range(r, 1, 255);
    }
    for (unsigned i = 0; i < p->len; i++) {
        uint8_t bit = (uint8_t)(0x80u >> (i % 8));

        host.b[i / 8] = (uint8_t)((host.b[i / 8] & ~bit) | (p->net.b[i / 8] & bit));
    }
    *out = host;
}

/* Special-purpose IPv4 blocks that never source Internet traffic. */
static const struct {
    uint32_t net;
    uint8_t len;
} special4[] = {
    {0x00000000, 8},  /* 0/8 */
    {0x0a000000, 8},  /* 10/8 */
    {0x7f000000, 8},  /* 127/8 */
    {0xa9fe0000, 16}, /* 169.254/16 */
    {0xac100000, 12}, /* 172.16/12 */
    {0xc0a80000, 16}, /* 192.168/16 */
    {0x64400000, 10}, /* 100.64/10 */
    {0xe0000000, 3},  /* 224/3: multicast, reserved, broadcast */
    {0xc6120000, 15}, /* 198.18/15 benchmarking */
    {0xc0000200, 24}, /* 192.0.2/24 TEST-NET-1 */
    {0xc6336400, 24}, /* 198.51.100/24 TEST-NET-2 */
    {0xcb007100, 24}, /* 203.0.113/24 TEST-NET-3 */
};

bool gen_addr_routable4(const struct gen_darknet *dn, uint32_t a)
{
    struct gen_addr addr;

    for (size_t i = 0; i < sizeof(special4) / sizeof(special4[0]); i++) {
        uint32_t mask = ~0u << (32 - special4[i].len);

        if ((a & mask) == special4[i].net)
            return false;
    }
    gen_addr_set_v4(&addr, a);
    return !gen_darknet_contains(dn, &addr);
}

void gen_addr_random4(const struct gen_darknet *dn, struct gen_rng *r, struct gen_addr *out)
{
    uint32_t a;

    do {
        a = (uint32_t)(gen_rng_next(r) >> 32);
    } while (!gen_addr_routable4(dn, a));
    gen_addr_set_v4(out, a);
}

void gen_addrgen_init(struct gen_addrgen *g, const struct gen_darknet *dn, uint64_t seed)
{
    g->dn = dn;
    g->key = (uint32_t)gen_mix64(seed ^ 0x5eedadd7ULL);
    g->counter = 0;
    gen_rng_seed(&g->rng, seed, 0xadd6);
}

/* A bijection of 32-bit integers (xorshift-multiply, odd multipliers): distinct in, distinct out.
 */
static uint32_t mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

int gen_addrgen_next4(struct gen_addrgen *g, struct gen_addr *out)
{
    while (g->counter <= UINT32_MAX) {
        uint32_t a = mix32((uint32_t)g->counter + g->key);

        g->counter++;
        if (gen_addr_routable4(g->dn, a)) {
            gen_addr_set_v4(out, a);
            return 0;
        }
    }
    return -ENOSPC;
}

void gen_addrgen_next6(struct gen_addrgen *g, struct gen_addr *out)
{
    /* RIR blocks: APNIC 2400::/12, ARIN 2600::/12, LACNIC 2800::/12, RIPE 2a00::/12, AFRINIC */
    static const uint16_t rir[] = {0x2400, 0x2600, 0x2800, 0x2a00, 0x2c00};
    static const double weight[] = {25, 30, 8, 33, 4};
    static const struct gen_prefix docnet = {{{0x20, 0x01, 0x0d, 0xb8}, 6}, 32};
    uint16_t top;

    do {
        memset(out, 0, sizeof(*out));
        out->family = 6;
        gen_rng_fill(&g->rng, out->b, 16);
        top = (uint16_t)(rir[gen_rng_weighted(&g->rng, weight, 5)] | gen_rng_below(&g->rng, 16));
        out->b[0] = (uint8_t)(top >> 8);
        out->b[1] = (uint8_t)top;
        /* many hosts and scanners use small interface identifiers */
        if (gen_rng_chance(&g->rng, 0.3)) {
            memset(out->b + 8, 0, 7);
            out->b[15] = (uint8_t)gen_rng_range(&g->rng, 1, 255);
        }
    } while (gen_prefix_contains(&docnet, out) || gen_darknet_contains(g->dn, out));
}
