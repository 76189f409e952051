/*
 * gen_truth.c - accumulates the ground truth, one classified frame at a time.
 *
 * Memory is bounded by the number of distinct sources, victims and (source, port) pairs, never by
 * the number of packets: per-source statistics live in an address table keyed on every address
 * bit, distinct sources per port are counted through a set of (source index, protocol, port)
 * keys, and buckets are a dense array sized from the capture span (checked by gen_args.c).
 * With --no-source-truth the source table keeps addresses only, which is all sources_distinct and
 * the per-port source counts need.
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
