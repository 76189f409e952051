/*
 * gen_truth.c - accumulates the ground truth, one classified frame at a time.
 *
 * Memory is bounded by the number of distinct sources, victims and (source, port) pairs, never by
 * the number of packets: per-source statistics live in an address table keyed on every address
 * bit, distinct sources per port are counted through a set of (source index, protocol, port)
 * keys, and buckets are a dense array sized from the capture span (checked by gen_args.c).
 * With --no-source-truth the source table keeps addresses only, which is all sources_distinct and
 * the per-port source counts need.
 *
 * The ordered views the JSON writer prints (ports, victims, sources, a source's ports) are built
 * here too, so gen_json.c only renders.
 */
#include "gen_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct gen_truth *gen_truth_new(const struct gen_config *cfg, char *err, size_t errlen)
{
    struct gen_truth *t = calloc(1, sizeof(*t));
    int64_t start_s = cfg->start_us / 1000000;
    int64_t end_s = (cfg->start_us + cfg->duration_us) / 1000000;
    int64_t bs = cfg->bucket_seconds;

    if (t == NULL)
        goto fail;
    t->cfg = cfg;
    t->first_us = -1;
    t->bucket0 = start_s / bs * bs;
    t->n_buckets = (size_t)(end_s / bs - start_s / bs + 1);
    t->buckets = calloc(t->n_buckets, sizeof(*t->buckets));
    if (t->buckets == NULL ||
        gen_addrtab_init(&t->sources, cfg->source_truth ? sizeof(struct gen_srcstat) : 0,
                         (size_t)cfg->frames) != 0 ||
        gen_addrtab_init(&t->victims, sizeof(uint64_t), (size_t)cfg->frames) != 0 ||
        gen_u64set_init(&t->pairs, (size_t)cfg->frames) != 0)
        goto fail;
    return t;
fail:
    snprintf(err, errlen, "truth: out of memory");
    gen_truth_free(t);
    return NULL;
}

void gen_truth_free(struct gen_truth *t)
{
    if (t == NULL)
        return;
    free(t->buckets);
    gen_addrtab_fini(&t->sources);
    gen_addrtab_fini(&t->victims);
    gen_u64set_fini(&t->pairs);
    free(t);
}

int gen_truth_source_tool(const struct gen_srcstat *st)
{
    /* the rarer chance match wins: Mirai, Masscan, ZMap, Nmap */
    static const int order[GEN_TOOL_COUNT] = {GEN_TOOL_MIRAI, GEN_TOOL_MASSCAN, GEN_TOOL_ZMAP,
                                              GEN_TOOL_NMAP};

    for (int i = 0; i < GEN_TOOL_COUNT; i++) {
        uint64_t hits = st->tool_hits[order[i]];

        if (hits >= 3 && hits * 10 >= (uint64_t)st->syn4 * 9)
            return order[i];
    }
    return GEN_TOOL_NONE;
}

static void srcstat_add(struct gen_srcstat *st, bool added, const struct gen_verdict *v,
                        int64_t ts_us)
{
    if (added)
        st->first_us = ts_us;
    st->last_us = ts_us;
    st->packets++;
    st->bytes += v->ip_len;
    st->by_class[v->cls]++;
    if (v->pure_syn4) {
        st->syn4++;
        for (int i = 0; i < GEN_TOOL_COUNT; i++)
            if (v->tools & (1u << i))
                st->tool_hits[i]++;
    }
}

int gen_truth_add(struct gen_truth *t, const struct gen_pkt *p, const struct gen_verdict *v,
                  int64_t ts_us)
{
    int64_t b = ts_us / 1000000 / t->cfg->bucket_seconds * t->cfg->bucket_seconds;
    struct gen_bucket *bk;
    uint32_t idx;
    bool added;
    int rc;

    t->frames++;
    if (t->first_us < 0)
        t->first_us = ts_us;
    t->last_us = ts_us;
    if (v->outcome == GEN_OUT_IGNORED) {
        if (v->reason == GEN_IGN_NON_IP)
            t->ignored_non_ip++;
        else
            t->ignored_not_darknet++;
        return 0;
    }
    if (v->outcome == GEN_OUT_MALFORMED) {
        t->malformed_ip_truncated++;
        return 0;
    }
    if (b < t->bucket0 || (size_t)((b - t->bucket0) / t->cfg->bucket_seconds) >= t->n_buckets)
        return -ERANGE;
    t->packets++;
    t->bytes += v->ip_len;
    t->by_class[v->cls]++;
    t->by_proto[v->proto]++;
    for (int i = 0; i < GEN_TOOL_COUNT; i++)
        if (v->tools & (1u << i))
            t->by_tool[i]++;
    if (v->truncated >= 0)
        t->truncated[v->truncated]++;
    bk = &t->buckets[(b - t->bucket0) / t->cfg->bucket_seconds];
    bk->packets++;
    bk->bytes += v->ip_len;
    bk->by_class[v->cls]++;
    if ((rc = gen_addrtab_upsert(&t->sources, &p->src, &idx, &added)) != 0)
        return rc;
    if (t->cfg->source_truth)
        srcstat_add(gen_addrtab_val(&t->sources, idx), added, v, ts_us);
    if (v->has_port) {
        uint64_t key = (uint64_t)idx << 17 | (uint64_t)v->port_proto << 16 | v->port;

        t->port_packets[v->port_proto][v->port]++;
        if ((rc = gen_u64set_insert(&t->pairs, key)) < 0)
            return rc;
        if (rc == 1)
            t->port_sources[v->port_proto][v->port]++;
    }
    if (v->has_victim) {
        if ((rc = gen_addrtab_upsert(&t->victims, &v->victim, &idx, &added)) != 0)
            return rc;
        (*(uint64_t *)gen_addrtab_val(&t->victims, idx))++;
    }
    return 0;
}

static int cmp_port(const void *a, const void *b, void *arg)
{
    const struct gen_truth *t = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    uint64_t px = t->port_packets[x >> 16][x & 0xffff], py = t->port_packets[y >> 16][y & 0xffff];

    if (px != py)
        return px > py ? -1 : 1;
    return x < y ? -1 : x > y; /* tcp (0) before udp (1), then port */
}

uint32_t *gen_truth_ports_sorted(const struct gen_truth *t, size_t *n)
{
    uint32_t *list = malloc(2 * 65536 * sizeof(*list));

    *n = 0;
    if (list == NULL)
        return NULL;
    for (uint32_t pp = 0; pp < 2; pp++)
        for (uint32_t port = 0; port < 65536; port++)
            if (t->port_packets[pp][port] > 0)
                list[(*n)++] = pp << 16 | port;
    qsort_r(list, *n, sizeof(*list), cmp_port, (void *)t);
    return list;
}

uint64_t gen_truth_entry_packets(const struct gen_addrtab *tab, uint32_t i, bool victims)
{
    const uint8_t *v = tab->vals + (size_t)i * tab->val_size;

    if (victims)
        return *(const uint64_t *)v;
    return ((const struct gen_srcstat *)v)->packets;
}

struct sort_ctx {
    const struct gen_addrtab *tab;
    bool victims;
};

static int cmp_entry(const void *a, const void *b, void *arg)
{
    const struct sort_ctx *c = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    uint64_t px = gen_truth_entry_packets(c->tab, x, c->victims);
    uint64_t py = gen_truth_entry_packets(c->tab, y, c->victims);

    if (px != py)
        return px > py ? -1 : 1;
    return gen_addr_compare(&c->tab->keys[x], &c->tab->keys[y]);
}

uint32_t *gen_truth_entries_sorted(const struct gen_addrtab *tab, bool victims)
{
    struct sort_ctx c = {tab, victims};
    uint32_t *idx = malloc((tab->count ? tab->count : 1) * sizeof(*idx));

    if (idx == NULL)
        return NULL;
    for (size_t i = 0; i < tab->count; i++)
        idx[i] = (uint32_t)i;
    qsort_r(idx, tab->count, sizeof(*idx), cmp_entry, &c);
    return idx;
}

size_t gen_truth_source_ports(const uint64_t *keys, size_t lo, size_t hi, uint16_t *out)
{
    size_t i = lo, j = lo, n = 0;
    int last = -1;

    while (j < hi && ((keys[j] >> 16) & 1) == 0)
        j++; /* [lo, j) tcp ports, [j, hi) udp ports, each ascending: merge them */
    for (size_t mid = j; i < mid || j < hi;) {
        int tp = i < mid ? (int)(keys[i] & 0xffff) : 65536;
        int up = j < hi ? (int)(keys[j] & 0xffff) : 65536;
        int port = tp < up ? tp : up;

        if (tp == port)
            i++;
        if (up == port)
            j++;
        if (port != last)
            out[n++] = (uint16_t)port;
        last = port;
    }
    return n;
}
