/*
 * gen_population.c - who sends, how much, and in which order.
 *
 * The population is split into behaviour groups (IPv4 scanners, IPv6 scanners, backscatter
 * victims, UDP probers, ICMP probers, odd TCP/GRE senders).  The non-edge frames are shared among
 * the groups by the --mix packet weights, and a group's sources by the same proportions, so every
 * group has the same mean rate.  Inside a group each source sends 1 + a Lomax (Pareto II,
 * alpha 0.95) share of the group's surplus, softly capped near 1% of it: about two thirds of the
 * sources send one or two packets, several hundred send thousands in a 10M-packet run.  Quotas are
 * rounded cumulatively, so they add up exactly.  Edge frames are pseudo-sources with their own
 * quotas.
 *
 * Order: each frame's source is drawn with probability proportional to its remaining quota
 * (a Fenwick tree over the quotas), which yields a uniformly random interleaving of all quotas
 * in O(log n) per frame and O(n) memory; nothing is materialised per packet.
 */
#include "gen_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define POP_ALPHA   0.95
#define POP_TOP_CAP 0.01

struct gen_pop {
    struct gen_source *src;
    uint32_t n;
    uint32_t *fen; /* 1-based Fenwick tree of remaining quotas */
    uint32_t top;  /* highest power of two <= n */
    uint64_t remaining;
};

uint64_t gen_pop_edge_frames(const struct gen_config *cfg, enum gen_edge kind)
{
    uint64_t each;

    if ((kind == GEN_EDGE_FRAG6 || kind == GEN_EDGE_V6EXT) && cfg->darknet.n6 == 0)
        return 0;
    if (cfg->mix.edge_each >= 0)
        each = (uint64_t)cfg->mix.edge_each;
    else if (cfg->frames < 1000)
        each = 0;
    else
        each = 1 + cfg->frames / 4000 < 1000 ? 1 + cfg->frames / 4000 : 1000;
    /* fragment kinds write a first and a later fragment per datagram */
    return kind == GEN_EDGE_FRAG4 || kind == GEN_EDGE_FRAG6 ? 2 * each : each;
}

uint64_t gen_pop_edge_total(const struct gen_config *cfg)
{
    uint64_t total = 0;

    for (int k = 0; k < GEN_EDGE_COUNT; k++)
        total += gen_pop_edge_frames(cfg, (enum gen_edge)k);
    return total;
}

static void groups_plan(const struct gen_config *cfg, uint64_t main_frames, uint64_t *pkts,
                        uint64_t *srcs)
{
    double w[GEN_BEH_COUNT];
    uint64_t given = 0;

    gen_dist_apportion(main_frames, cfg->mix.beh, GEN_BEH_COUNT, pkts);
    for (int g = 0; g < GEN_BEH_COUNT; g++)
        w[g] = (double)pkts[g];
    gen_dist_apportion(cfg->sources, w, GEN_BEH_COUNT, srcs);
    for (int g = 0; g < GEN_BEH_COUNT; g++) {
        if (srcs[g] > pkts[g])
            srcs[g] = pkts[g];
        if (pkts[g] > 0 && srcs[g] == 0)
            srcs[g] = 1;
        given += srcs[g];
    }
    /* clamping may have moved the total a little: settle on the largest group */
    while (given > cfg->sources) {
        int big = 0;

        for (int g = 1; g < GEN_BEH_COUNT; g++)
            if (srcs[g] > srcs[big])
                big = g;
        if (srcs[big] <= 1)
            break;
        srcs[big]--;
        given--;
    }
}

static uint16_t port_pick(struct gen_rng *r, const uint16_t *ports, const double *w, size_t n)
{
    uint16_t port = ports[gen_rng_weighted(r, w, n)];

    return port ? port : (uint16_t)gen_rng_range(r, 1024, 65535);
}

/* Fixed per-source traits: profile, TTL after the path's hops, ports. */
static void source_profile(const struct gen_config *cfg, struct gen_source *s, struct gen_rng *r)
{
    static const uint16_t svc[] = {80, 443, 22, 25, 53, 8080, 3389, 21, 27015, 25565, 3074, 6667};
    static const double svc_w[] = {30, 25, 8, 5, 6, 6, 6, 3, 4, 4, 2, 1};
    static const uint16_t udp_svc[] = {53, 123, 161, 1900, 5060, 11211, 0};
    static const double udp_w[] = {25, 15, 10, 15, 15, 5, 15};
    uint8_t hops = (uint8_t)gen_rng_range(r, 6, 24);
    double w[GEN_TOOL_COUNT + 1], tools = 0;

    s->ipid = (uint16_t)gen_rng_next(r);
    s->ident = (uint32_t)gen_rng_next(r);
    s->ttl = (uint8_t)((gen_rng_chance(r, 0.75) ? 64 : 128) - hops);
    s->tool = GEN_TOOL_NONE;
    switch (s->kind) {
    case GEN_BEH_SCAN4:
        for (int t = 0; t < GEN_TOOL_COUNT; t++) {
            w[t] = cfg->mix.tool[t];
            tools += w[t];
        }
        w[GEN_TOOL_COUNT] = 100 - tools;
        s->tool = (uint8_t)gen_rng_weighted(r, w, GEN_TOOL_COUNT + 1);
        s->sub = (uint8_t)gen_rng_below(r, 4); /* none: 0-1 Linux, 2 Windows, 3 bare */
        if (s->tool == GEN_TOOL_NONE && s->sub == 2)
            s->ttl = (uint8_t)(128 - hops);
        else if (s->tool == GEN_TOOL_NONE && s->sub == 3 && gen_rng_chance(r, 0.5))
            s->ttl = (uint8_t)(255 - hops);
        else if (s->tool == GEN_TOOL_MIRAI || s->tool == GEN_TOOL_NONE)
            s->ttl = (uint8_t)(64 - hops);
        else if (s->tool == GEN_TOOL_ZMAP)
            s->ttl = 255;
        else if (s->tool == GEN_TOOL_MASSCAN)
            s->ttl = (uint8_t)(255 - hops);
        if (s->tool == GEN_TOOL_ZMAP || (s->tool == GEN_TOOL_NONE && gen_rng_chance(r, 0.7)) ||
            (s->tool == GEN_TOOL_MASSCAN && gen_rng_chance(r, 0.4)))
            s->port = gen_port_scan(r);
        if (s->tool == GEN_TOOL_MASSCAN)
            s->sport = (uint16_t)gen_rng_range(r, 40000, 60999);
        if (s->tool == GEN_TOOL_NMAP)
            s->sport = (uint16_t)gen_rng_range(r, 1024, 65535);
        break;
    case GEN_BEH_SCAN6:
        s->ttl = (uint8_t)(64 - hops);
        s->sub = (uint8_t)gen_rng_below(r, 2);
        if (gen_rng_chance(r, 0.7))
            s->port = gen_port_scan(r);
        break;
    case GEN_BEH_BACKSCATTER:
        s->port = port_pick(r, svc, svc_w, sizeof(svc) / sizeof(svc[0]));
        /* IPv4: 0 SYN-ACK, 1 RST, 2 echo reply, 3 unreachable, 4 time exceeded, 5 DNS;
         * IPv6: 0 SYN-ACK, 2 echo reply, 3 unreachable */
        if (s->addr.family == 4) {
            static const double v4w[] = {40, 15, 10, 15, 5, 15};

            s->sub = (uint8_t)gen_rng_weighted(r, v4w, 6);
        } else {
            static const double v6w[] = {50, 0, 30, 20};

            s->sub = (uint8_t)gen_rng_weighted(r, v6w, 4);
        }
        if (s->sub == 5)
            s->port = 53;
        break;
    case GEN_BEH_UDP:
        s->port = udp_svc[gen_rng_weighted(r, udp_w, sizeof(udp_w) / sizeof(udp_w[0]))];
        break;
    case GEN_BEH_ICMP:
        s->sub = (uint8_t)gen_rng_below(r, 3); /* payload: Linux ping, Windows ping, empty */
        break;
    case GEN_BEH_OTHER: {
        static const double ow[] = {30, 15, 15, 25, 15}; /* FIN, NULL, Xmas, ACK, GRE */

        s->sub = (uint8_t)gen_rng_weighted(r, ow, 5);
        break;
    }
    default:
        break;
    }
}

static int group_build(struct gen_pop *pop, const struct gen_config *cfg, struct gen_addrgen *ag,
                       struct gen_rng *r, int g, uint64_t nsrc, uint64_t packets, uint32_t *quota)
{
    int rc;

    if (nsrc == 0)
        return 0;
    if ((rc = gen_dist_quotas(r, quota + pop->n, nsrc, packets, POP_ALPHA, POP_TOP_CAP)) != 0)
        return rc;
    for (uint64_t i = 0; i < nsrc; i++) {
        struct gen_source *s = &pop->src[pop->n++];
        int family = 4;

        memset(s, 0, sizeof(*s));
        s->kind = (uint8_t)g;
        if (g == GEN_BEH_SCAN6 ||
            (cfg->darknet.n6 > 0 && g == GEN_BEH_BACKSCATTER && gen_rng_chance(r, 0.04)) ||
            (cfg->darknet.n6 > 0 && g == GEN_BEH_ICMP && gen_rng_chance(r, 0.15)))
            family = 6;
        if (family == 4) {
            if ((rc = gen_addrgen_next4(ag, &s->addr)) != 0)
                return rc;
        } else {
            gen_addrgen_next6(ag, &s->addr);
        }
        source_profile(cfg, s, r);
    }
    return 0;
}

struct gen_pop *gen_pop_new(const struct gen_config *cfg, struct gen_addrgen *ag, char *err,
                            size_t errlen)
{
    uint64_t pkts[GEN_BEH_COUNT], srcs[GEN_BEH_COUNT], total = 0;
    uint64_t main_frames = cfg->frames - gen_pop_edge_total(cfg);
    struct gen_pop *pop = calloc(1, sizeof(*pop));
    uint32_t *quota = NULL;
    struct gen_rng r;
    int rc = -ENOMEM;

    if (pop == NULL)
        goto fail;
    groups_plan(cfg, main_frames, pkts, srcs);
    for (int g = 0; g < GEN_BEH_COUNT; g++)
        total += srcs[g];
    total += GEN_EDGE_COUNT;
    pop->src = calloc(total, sizeof(*pop->src));
    quota = calloc(total, sizeof(*quota));
    pop->fen = calloc(total + 1, sizeof(*pop->fen));
    if (pop->src == NULL || quota == NULL || pop->fen == NULL)
        goto fail;
    gen_rng_seed(&r, cfg->seed, 0x909);
    for (int g = 0; g < GEN_BEH_COUNT; g++)
        if ((rc = group_build(pop, cfg, ag, &r, g, srcs[g], pkts[g], quota)) != 0)
            goto fail;
    for (int k = 0; k < GEN_EDGE_COUNT; k++) {
        uint64_t n = gen_pop_edge_frames(cfg, (enum gen_edge)k);

        if (n == 0)
            continue;
        pop->src[pop->n].kind = (uint8_t)(GEN_BEH_COUNT + k);
        quota[pop->n++] = (uint32_t)n;
    }
    /* O(n) Fenwick construction */
    for (uint32_t i = 1; i <= pop->n; i++) {
        uint32_t j = i + (i & (0u - i));

        pop->fen[i] += quota[i - 1];
        pop->remaining += quota[i - 1];
        if (j <= pop->n)
            pop->fen[j] += pop->fen[i];
    }
    for (pop->top = 1; pop->top * 2 <= pop->n && pop->top < (1u << 31); pop->top *= 2)
        ;
    if (pop->remaining != cfg->frames) {
        rc = -EPROTO;
        goto fail;
    }
    free(quota);
    return pop;
fail:
    snprintf(err, errlen, "source population: %s", strerror(-rc));
    free(quota);
    gen_pop_free(pop);
    return NULL;
}

void gen_pop_free(struct gen_pop *pop)
{
    if (pop == NULL)
        return;
    free(pop->src);
    free(pop->fen);
    free(pop);
}

uint64_t gen_pop_size(const struct gen_pop *pop)
{
    return pop->n;
}

static uint64_t fen_prefix(const struct gen_pop *pop, uint32_t i)
{
    uint64_t sum = 0;

    for (; i > 0; i -= i & (0u - i))
        sum += pop->fen[i];
    return sum;
}

static void fen_decrement(struct gen_pop *pop, uint32_t pos)
{
    for (uint32_t i = pos + 1; i <= pop->n; i += i & (0u - i))
        pop->fen[i]--;
    pop->remaining--;
}

int gen_pop_take(struct gen_pop *pop, struct gen_source *s)
{
    uint32_t pos = (uint32_t)(s - pop->src);

    if (pos >= pop->n || fen_prefix(pop, pos + 1) == fen_prefix(pop, pos))
        return -ENOENT;
    fen_decrement(pop, pos);
    return 0;
}

int gen_pop_draw(struct gen_pop *pop, struct gen_rng *r, struct gen_source **out)
{
    uint64_t x;
    uint32_t pos = 0;

    if (pop->remaining == 0)
        return -ENOENT;
    x = gen_rng_below64(r, pop->remaining);
    for (uint32_t step = pop->top; step > 0; step >>= 1) {
        if (pos + step <= pop->n && pop->fen[pos + step] <= x) {
            pos += step;
            x -= pop->fen[pos];
        }
    }
    /* pos is the number of entries whose prefix sum is <= x: entry pos (0-based) is drawn */
    fen_decrement(pop, pos);
    *out = &pop->src[pos];
    return 0;
}
