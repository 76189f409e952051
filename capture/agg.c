/* Per-bucket aggregation in memory: totals, ports, per-second counts, per-source records and
 * backscatter victims, in bounded open-addressing tables hashed on every address bit. */
#include "capture/cap_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_MIN 1024 /* pair set */

struct cap_bucket *cap_bucket_new(int64_t start, int64_t seconds, size_t max_sources)
{
    struct cap_bucket *b = calloc(1, sizeof(*b));

    if (!b)
        return NULL;
    b->start = start;
    b->seconds = seconds;
    b->per_second = calloc((size_t)seconds, sizeof(uint64_t));
    cap_table_init(&b->src, offsetof(struct cap_src, addr), max_sources);
    cap_table_init(&b->vic, offsetof(struct cap_victim, v.addr), max_sources);
    b->pair_max = max_sources * 4;
    if (!b->per_second) {
        free(b);
        return NULL;
    }
    return b;
}

void cap_bucket_free(struct cap_bucket *b)
{
    if (!b)
        return;
    cap_bucket_free(b->lane_parts);
    cap_table_fini(&b->src, NULL);
    cap_table_fini(&b->vic, NULL);
    cap_arena_fini(&b->arena);
    cap_mem_free(b->pairs, b->pair_cap * sizeof(*b->pairs));
    cap_spare_fini(&b->pair_next);
    free(b->per_second);
    free(b);
}

/* The source's entry, created when new; NULL when the table is full (counted by the caller). */
static struct cap_src *src_get(struct cap_bucket *b, const struct ds_addr *a, uint64_t h,
                               bool *created)
{
    void **slot = cap_table_slot(&b->src, a, h);
    struct cap_src *s;

    *created = false;
    if (!slot)
        return NULL;
    if (*slot)
        return *slot;
    s = cap_arena_alloc(&b->arena, sizeof(*s)); /* arena blocks are 64-byte aligned */
    if (!s)
        return NULL;
    s->addr = *a;
    *slot = s;
    cap_table_added(&b->src);
    *created = true;
    return s;
}

/* Inserts (source, port) in the pair set; returns true when new. */
static bool pair_insert(struct cap_bucket *b, uint64_t src_hash, uint32_t pp, bool *dropped)
{
    uint64_t h;
    size_t j;

    *dropped = false;
    if (src_hash == 0)
        src_hash = 1;
    if (b->pair_cap == 0 || (b->pair_n + 1) * 2 > b->pair_cap) {
        size_t ncap = b->pair_cap ? b->pair_cap * 2 : TABLE_MIN;
        struct cap_pair *np;
        if (b->pair_n >= b->pair_max || !(np = cap_spare_take(&b->pair_next, ncap * sizeof(*np)))) {
            if (!b->pair_cap) {
                *dropped = true;
                return false;
            }
            goto probe;
        }
        for (size_t i = 0; i < b->pair_cap; i++) {
            if (!b->pairs[i].src_hash)
                continue;
            size_t k = ds_hash_u64(b->pairs[i].src_hash ^ b->pairs[i].pp) & (ncap - 1);
            while (np[k].src_hash)
                k = (k + 1) & (ncap - 1);
            np[k] = b->pairs[i];
        }
        cap_mem_free(b->pairs, b->pair_cap * sizeof(*b->pairs));
        b->pairs = np;
        b->pair_cap = ncap;
    } else if (b->pair_n * 5 > b->pair_cap * 2 && !b->pair_next.p && b->pair_n < b->pair_max) {
        cap_spare_want(&b->pair_next, b->pair_cap * 2 * sizeof(*b->pairs));
    }
probe:
    h = ds_hash_u64(src_hash ^ pp);
    j = h & (b->pair_cap - 1);
    while (b->pairs[j].src_hash) {
        if (b->pairs[j].src_hash == src_hash && b->pairs[j].pp == pp)
            return false;
        j = (j + 1) & (b->pair_cap - 1);
    }
    if (b->pair_n >= b->pair_max || (b->pair_n + 1) * 2 > b->pair_cap) {
        *dropped = true;
        return false;
    }
    b->pairs[j].src_hash = src_hash;
    b->pairs[j].pp = pp;
    b->pair_n++;
    return true;
}

static uint32_t dst_hash(const struct ds_addr *a)
{
    uint32_t h = (uint32_t)ds_addr_hash(a);
    return h ? h : 1;
}

static void hll_add(uint8_t *regs, uint32_t h32)
{
    uint64_t h = ds_hash_u64(h32);
    unsigned idx = (unsigned)(h & (CAP_HLL_REGS - 1));
    uint8_t rank = (uint8_t)(__builtin_ctzll((h >> 8) | (1ULL << 55)) + 1);

    if (rank > regs[idx])
        regs[idx] = rank;
}

static uint64_t hll_estimate(const uint8_t *regs)
{
    double sum = 0, m = CAP_HLL_REGS, alpha = 0.7213 / (1 + 1.079 / m);
    unsigned zeros = 0;

    for (unsigned i = 0; i < CAP_HLL_REGS; i++) {
        sum += ldexp(1.0, -regs[i]);
        zeros += regs[i] == 0;
    }
    double e = alpha * m * m / sum;
    if (e <= 2.5 * m && zeros)
        e = m * log(m / zeros);
    return (uint64_t)(e + 0.5);
}

/* Inserts h into the exact destination set; true when it was new. */
static bool dst_set_add(uint32_t *set, uint32_t h)
{
    unsigned j = (h * 2654435761u) >> 27; /* 5 bits: CAP_DST_SLOTS */

    while (set[j]) {
        if (set[j] == h)
            return false;
        j = (j + 1) & (CAP_DST_SLOTS - 1);
    }
    set[j] = h;
    return true;
}

static struct cap_src_ext *src_ext(struct cap_arena *a, struct cap_src *s)
{
    if (!s->ext) {
        s->ext = cap_arena_alloc(a, sizeof(*s->ext));
        if (s->ext && s->has_port0) {
            s->ext->ports[0].proto = s->port0_proto;
            s->ext->ports[0].port = s->port0;
            s->ext->ports[0].count = s->port0_count;
            s->ext->n_ports = 1;
            s->ext->ports_distinct = 1;
        }
        if (s->ext && s->n_dst)
            dst_set_add(s->ext->dst, s->dst0);
    }
    return s->ext;
}

static void src_add_dst(struct cap_arena *a, struct cap_src *s, uint32_t h)
{
    struct cap_src_ext *e;

    if (s->n_dst == 0) {
        s->dst0 = h;
        s->n_dst = 1;
        return;
    }
    if (s->n_dst == 1 && s->dst0 == h)
        return;
    if (!(e = src_ext(a, s)))
        return;
    if (e->hll) {
        hll_add(e->hll, h);
        return;
    }
    if (!dst_set_add(e->dst, h))
        return;
    if (++s->n_dst <= CAP_DST_EXACT)
        return;
    /* past the exact bound: from now on an estimate */
    e->hll = cap_arena_alloc(a, CAP_HLL_REGS);
    if (!e->hll)
        return;
    for (unsigned i = 0; i < CAP_DST_SLOTS; i++) {
        if (e->dst[i])
            hll_add(e->hll, e->dst[i]);
    }
}

/* Space-saving top ports: a full table replaces its smallest entry. new_pair says whether the
 * (source, port) pair is new in the bucket (exact, from the pair set); -1 when merging parts,
 * where a port missing from the table counts as new (exact while under CAP_PORTS_KEPT). */
static void src_add_port(struct cap_arena *a, struct cap_src *s, uint8_t proto, uint16_t port,
                         uint64_t count, int new_pair)
{
    struct cap_src_ext *e;
    unsigned min = 0;

    if (!s->has_port0 && !s->ext) {
        s->has_port0 = true;
        s->port0_proto = proto;
        s->port0 = port;
        s->port0_count = count;
        return;
    }
    if (!s->ext && s->port0_proto == proto && s->port0 == port) {
        s->port0_count += count;
        return;
    }
    if (!(e = src_ext(a, s)))
        return;
    for (unsigned i = 0; i < e->n_ports; i++) {
        if (e->ports[i].proto == proto && e->ports[i].port == port) {
            e->ports[i].count += count;
            return;
        }
        if (e->ports[i].count < e->ports[min].count)
            min = i;
    }
    if (new_pair != 0)
        e->ports_distinct++;
    if (e->n_ports < CAP_PORTS_KEPT) {
        e->ports[e->n_ports].proto = proto;
        e->ports[e->n_ports].port = port;
        e->ports[e->n_ports].count = count;
        e->n_ports++;
        return;
    }
    e->ports[min].proto = proto;
    e->ports[min].port = port;
    e->ports[min].count += count;
}

static void sample_fill(struct rds_sample *x, const struct cap_pkt *p)
{
    x->ts = p->ts;
    x->dst = p->dst;
    x->proto = p->proto;
    x->cls = p->cls;
    x->sport = p->sport;
    x->dport = p->dport;
    x->tcp_flags = p->tcp_flags;
    x->icmp_type = p->icmp_type;
    x->icmp_code = p->icmp_code;
    x->ttl = p->ttl;
    x->ipid = p->ipid;
    x->win = p->win;
    x->ip_len = p->ip_len;
}

static struct cap_victim *victim_get(struct cap_bucket *b, const struct ds_addr *a,
                                     ds_time_ns first)
{
    void **slot = cap_table_slot(&b->vic, a, ds_addr_hash(a));
    struct cap_victim *v;

    if (!slot)
        return NULL;
    if (*slot)
        return *slot;
    v = cap_arena_alloc(&b->arena, sizeof(*v));
    if (!v)
        return NULL;
    v->v.addr = *a;
    v->v.first = first;
    v->v.last = first;
    *slot = v;
    cap_table_added(&b->vic);
    return v;
}

static void victim_add(struct cap_bucket *b, const struct cap_pkt *p)
{
    struct cap_victim *v = victim_get(b, &p->victim, p->ts);

    if (!v)
        return;
    v->v.packets++;
    v->v.bytes += p->ip_len;
    if (p->ts < v->v.first)
        v->v.first = p->ts;
    if (p->ts > v->v.last)
        v->v.last = p->ts;
    v->v.protos |= (uint8_t)(1u << p->proto);
}

/* Does the source's own port table already hold this port? Then the (source, port) pair is in
 * the pair set and the probe can be skipped (heavy scanners hit few ports many times). Returns
 * 1 known, 0 certainly new (the table has never overflowed), -1 unknown. */
static int src_port_known(const struct cap_src *s, uint8_t proto, uint16_t port)
{
    if (!s->ext)
        return s->has_port0 && s->port0_proto == proto && s->port0 == port;
    for (unsigned i = 0; i < s->ext->n_ports; i++) {
        if (s->ext->ports[i].proto == proto && s->ext->ports[i].port == port)
            return 1;
    }
    return s->ext->ports_distinct > s->ext->n_ports ? -1 : 0;
}

void cap_bucket_prefetch_slot(const struct cap_bucket *b, uint64_t h)
{
    if (b->src.cap)
        __builtin_prefetch(&b->src.slot[h & (b->src.cap - 1)], 1);
}

void cap_bucket_prefetch_entry(const struct cap_bucket *b, uint64_t h)
{
    const struct cap_slot *slot;

    if (!b->src.cap)
        return;
    slot = &b->src.slot[h & (b->src.cap - 1)];
    if (slot->p && slot->h == h) {
        __builtin_prefetch(slot->p, 1);
        __builtin_prefetch((const char *)slot->p + 64, 1);
    }
}

void cap_bucket_prefetch_ext(const struct cap_bucket *b, const struct cap_pkt *p, uint64_t h)
{
    const struct cap_slot *slot;
    const struct cap_src *s;

    /* the (source, port) pair's slot, and a backscatter victim's */
    if (b->pair_cap && p->has_ports && (p->proto == DS_PROTO_TCP || p->proto == DS_PROTO_UDP)) {
        uint32_t pp = (uint32_t)(p->proto == DS_PROTO_TCP ? 0 : 1) << 16 | p->dport;
        __builtin_prefetch(&b->pairs[ds_hash_u64((h ? h : 1) ^ pp) & (b->pair_cap - 1)], 1);
    }
    if (b->vic.cap && p->has_victim && p->cls == DS_CLASS_BACKSCATTER)
        __builtin_prefetch(&b->vic.slot[ds_addr_hash(&p->victim) & (b->vic.cap - 1)], 1);
    if (!b->src.cap)
        return;
    slot = &b->src.slot[h & (b->src.cap - 1)];
    if (!slot->p || slot->h != h)
        return;
    s = slot->p;
    if (s->ext) {
        __builtin_prefetch(s->ext, 1);
        if (s->ext->hll)
            __builtin_prefetch(&s->ext->hll[ds_hash_u64(dst_hash(&p->dst)) & (CAP_HLL_REGS - 1)],
                               1);
        else
            __builtin_prefetch(&s->ext->dst[(dst_hash(&p->dst) * 2654435761u) >> 27], 1);
    }
}

void cap_bucket_add(struct cap_bucket *b, const struct cap_pkt *p, int prefix, uint64_t h)
{
    struct rds_totals *t = &b->tot;
    struct cap_src *s;
    bool created, new_pair = false, dropped = false;
    int64_t sec = p->ts / DS_NS_PER_SEC - b->start;
    bool port_ok = p->has_ports && (p->proto == DS_PROTO_TCP || p->proto == DS_PROTO_UDP);
    int pi = p->proto == DS_PROTO_TCP ? 0 : 1;

    t->packets++;
    t->bytes += p->ip_len;
    t->by_class[p->cls]++;
    t->by_proto[p->proto]++;
    for (int i = 0; i < DS_TOOL_N; i++)
        t->by_tool[i] += (p->tools >> i) & 1;
    if (p->trunc != DS_TRUNC_NONE)
        t->truncated[p->trunc]++;
    if (sec >= 0 && sec < b->seconds)
        b->per_second[sec]++;
    if (p->has_victim && p->cls == DS_CLASS_BACKSCATTER)
        victim_add(b, p);

    s = src_get(b, &p->src, h, &created);
    if (port_ok) {
        b->port_packets[pi][p->dport]++;
        if (!s || src_port_known(s, (uint8_t)p->proto, p->dport) != 1) {
            new_pair = pair_insert(b, h, (uint32_t)pi << 16 | p->dport, &dropped);
            if (new_pair)
                b->port_sources[pi][p->dport]++;
        }
    }
    if (!s) {
        t->sources_dropped++;
        return;
    }
    if (created) {
        s->first = p->ts;
        t->sources++;
    }
    s->packets++;
    s->bytes += p->ip_len;
    if (p->ts < s->first)
        s->first = p->ts;
    if (p->ts > s->last)
        s->last = p->ts;
    s->by_class[p->cls]++;
    if (p->pure_syn && p->src.family == 4) {
        s->pure_syns++;
        for (int i = 0; i < DS_TOOL_N; i++)
            s->tool[i] += (p->tools >> i) & 1;
    }
    if (prefix >= 0 && prefix < RDS_SOURCE_PREFIXES)
        s->prefixes |= 1ULL << prefix;
    s->protos |= (uint8_t)(1u << p->proto);
    src_add_dst(&b->arena, s, dst_hash(&p->dst));
    if (port_ok)
        src_add_port(&b->arena, s, (uint8_t)p->proto, p->dport, 1, new_pair || dropped ? 1 : 0);
    if (s->n_samples == 0) {
        sample_fill(&s->sample0, p);
        s->n_samples = 1;
    } else if (s->n_samples < RDS_SOURCE_SAMPLES && src_ext(&b->arena, s)) {
        sample_fill(&s->ext->samples[s->n_samples - 1], p);
        s->n_samples++;
    }
}

void cap_bucket_count_ignored(struct cap_bucket *b, int reason)
{
    b->tot.ignored[reason]++;
}

void cap_bucket_count_malformed(struct cap_bucket *b, int reason)
{
    b->tot.malformed[reason]++;
}

static void src_merge(struct cap_arena *a, struct cap_src *d, struct cap_src *s)
{
    d->packets += s->packets;
    d->bytes += s->bytes;
    if (s->first < d->first)
        d->first = s->first;
    if (s->last > d->last)
        d->last = s->last;
    for (int i = 0; i < DS_CLASS_N; i++)
        d->by_class[i] += s->by_class[i];
    d->pure_syns += s->pure_syns;
    for (int i = 0; i < DS_TOOL_N; i++)
        d->tool[i] += s->tool[i];
    d->prefixes |= s->prefixes;
    d->protos |= s->protos;
    if (s->n_dst) {
        src_add_dst(a, d, s->dst0);
        for (unsigned i = 0; s->ext && i < CAP_DST_SLOTS; i++) {
            if (s->ext->dst[i])
                src_add_dst(a, d, s->ext->dst[i]);
        }
        if (s->ext && s->ext->hll && src_ext(a, d)) {
            if (!d->ext->hll) {
                d->ext->hll = cap_arena_alloc(a, CAP_HLL_REGS);
                if (d->ext->hll) {
                    for (unsigned i = 0; i < CAP_DST_SLOTS; i++) {
                        if (d->ext->dst[i])
                            hll_add(d->ext->hll, d->ext->dst[i]);
                    }
                    d->n_dst = CAP_DST_EXACT + 1;
                }
            }
            for (unsigned i = 0; d->ext->hll && i < CAP_HLL_REGS; i++) {
                if (s->ext->hll[i] > d->ext->hll[i])
                    d->ext->hll[i] = s->ext->hll[i];
            }
        }
    }
    if (s->ext) {
        for (unsigned i = 0; i < s->ext->n_ports; i++)
            src_add_port(a, d, s->ext->ports[i].proto, s->ext->ports[i].port,
                         s->ext->ports[i].count, -1);
    } else if (s->has_port0) {
        src_add_port(a, d, s->port0_proto, s->port0, s->port0_count, -1);
    }
    for (unsigned i = 0; i < s->n_samples && d->n_samples < RDS_SOURCE_SAMPLES; i++) {
        const struct rds_sample *x = i == 0 ? &s->sample0 : &s->ext->samples[i - 1];
        if (d->n_samples == 0)
            d->sample0 = *x;
        else if (src_ext(a, d))
            d->ext->samples[d->n_samples - 1] = *x;
        else
            break;
        d->n_samples++;
    }
}

void cap_bucket_merge(struct cap_bucket *d, struct cap_bucket *s)
{
    struct rds_totals *a = &d->tot, *b = &s->tot;

    a->packets += b->packets;
    a->bytes += b->bytes;
    for (int i = 0; i < DS_CLASS_N; i++)
        a->by_class[i] += b->by_class[i];
    for (int i = 0; i < DS_PROTO_N; i++)
        a->by_proto[i] += b->by_proto[i];
    for (int i = 0; i < DS_TOOL_N; i++)
        a->by_tool[i] += b->by_tool[i];
    for (int i = 0; i < DS_IGN_N; i++)
        a->ignored[i] += b->ignored[i];
    for (int i = 0; i < DS_MAL_N; i++)
        a->malformed[i] += b->malformed[i];
    for (int i = 0; i < DS_TRUNC_N; i++)
        a->truncated[i] += b->truncated[i];
    a->sources_dropped += b->sources_dropped;
    a->late += b->late;
    for (int64_t i = 0; i < d->seconds; i++)
        d->per_second[i] += s->per_second[i];
    for (int p = 0; p < 2; p++) {
        for (int port = 0; port < 65536; port++)
            d->port_packets[p][port] += s->port_packets[p][port];
    }
    for (size_t i = 0; i < s->pair_cap; i++) {
        bool dropped;
        if (s->pairs[i].src_hash &&
            pair_insert(d, s->pairs[i].src_hash, s->pairs[i].pp, &dropped)) {
            uint32_t pp = s->pairs[i].pp;
            d->port_sources[pp >> 16][pp & 0xffff]++;
        }
    }
    for (size_t i = 0; i < s->src.cap; i++) {
        struct cap_src *x = s->src.slot[i].p;
        void **slot;
        if (!x)
            continue;
        slot = cap_table_slot(&d->src, &x->addr, s->src.slot[i].h);
        if (!slot) {
            a->sources_dropped += x->packets;
        } else if (!*slot) {
            /* new in dst: the whole record moves over */
            *slot = x;
            cap_table_added(&d->src);
            a->sources++;
        } else {
            src_merge(&d->arena, *slot, x);
        }
        s->src.slot[i].p = NULL;
    }
    s->src.n = 0;
    for (size_t i = 0; i < s->vic.cap; i++) {
        struct cap_victim *x = s->vic.slot[i].p;
        struct cap_victim *v;
        if (!x)
            continue;
        v = victim_get(d, &x->v.addr, x->v.first);
        if (v) {
            v->v.packets += x->v.packets;
            v->v.bytes += x->v.bytes;
            if (x->v.first < v->v.first)
                v->v.first = x->v.first;
            if (x->v.last > v->v.last)
                v->v.last = x->v.last;
            v->v.protos |= x->v.protos;
        }
        s->vic.slot[i].p = NULL;
    }
    s->vic.n = 0;
    /* records that moved over still live in s's memory: d takes it */
    cap_arena_take(&d->arena, &s->arena);
}

void cap_src_export(const struct cap_src *s, unsigned ports_max, struct rds_source *o)
{
    /* every field is assigned (no memset of the whole: a million records per bucket); ports,
     * samples and geo are read only up to n_ports, n_samples and has_geo */
    o->addr = s->addr;
    o->dsts_estimated = false;
    o->ports_distinct = 0;
    o->n_ports = 0;
    o->has_geo = false;
    o->packets = s->packets;
    o->bytes = s->bytes;
    o->first = s->first;
    o->last = s->last;
    for (int i = 0; i < DS_CLASS_N; i++)
        o->by_class[i] = s->by_class[i];
    o->pure_syns = s->pure_syns;
    for (int i = 0; i < DS_TOOL_N; i++)
        o->tool_matches[i] = s->tool[i];
    if (s->ext && s->ext->hll) {
        o->dsts = hll_estimate(s->ext->hll);
        if (o->dsts <= CAP_DST_EXACT)
            o->dsts = CAP_DST_EXACT + 1;
        o->dsts_estimated = true;
    } else {
        o->dsts = s->n_dst;
    }
    o->prefixes = s->prefixes;
    o->protos = s->protos;
    if (s->ext) {
        unsigned n = s->ext->n_ports;
        o->ports_distinct = s->ext->ports_distinct;
        for (unsigned i = 0; i < n; i++) {
            o->ports[i].proto = s->ext->ports[i].proto;
            o->ports[i].port = s->ext->ports[i].port;
            o->ports[i].packets = s->ext->ports[i].count;
        }
        /* busiest first, then by port */
        for (unsigned i = 1; i < n; i++) {
            struct rds_port k = o->ports[i];
            unsigned j = i;
            while (j > 0 &&
                   (o->ports[j - 1].packets < k.packets ||
                    (o->ports[j - 1].packets == k.packets &&
                     (o->ports[j - 1].proto > k.proto ||
                      (o->ports[j - 1].proto == k.proto && o->ports[j - 1].port > k.port))))) {
                o->ports[j] = o->ports[j - 1];
                j--;
            }
            o->ports[j] = k;
        }
        o->n_ports = n < ports_max ? n : ports_max;
    } else if (s->has_port0) {
        o->ports_distinct = 1;
        o->n_ports = 1;
        o->ports[0].proto = s->port0_proto;
        o->ports[0].port = s->port0;
        o->ports[0].packets = s->port0_count;
    }
    o->n_samples = s->n_samples;
    if (s->n_samples)
        o->samples[0] = s->sample0;
    for (unsigned i = 1; i < s->n_samples && s->ext; i++)
        o->samples[i] = s->ext->samples[i - 1];
}
