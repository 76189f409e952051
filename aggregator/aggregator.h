/*
 * aggregator — `darkscope aggregate`: turns closed time-buckets into DAEDALUS-style alerts for
 * subscriber organisations (docs/alerting.md).
 *
 * Pure parts first: the prefix trie (trie.c) matches an address against every subscriber range
 * containing it (overlapping ranges all match).
 */
#ifndef AGG_AGGREGATOR_H
#define AGG_AGGREGATOR_H

#include "core/core.h"

/* ---------------------------------------------------------------- prefix trie (trie.c) */

struct agg_trie;

struct agg_match {
    uint32_t value; /* what the prefix was added with (an organisation index) */
    uint8_t len;    /* the prefix length */
};

struct agg_trie *agg_trie_new(void);
void agg_trie_free(struct agg_trie *t);
/* Adds a prefix with a value; the same (prefix, value) twice is kept once. Returns 0, -EINVAL
 * for a bad prefix or -ENOMEM. Call agg_trie_finish after the last add. */
DS_WARN_UNUSED int agg_trie_add(struct agg_trie *t, const struct ds_cidr *c, uint32_t value);
/* Builds the IPv4 first-16-bits table. Lookups are correct without it, only slower. */
DS_WARN_UNUSED int agg_trie_finish(struct agg_trie *t);
/* Every (value, prefix length) whose prefix contains a, longest prefix first; writes at most
 * max and returns how many there are. */
unsigned agg_trie_match(const struct agg_trie *t, const struct ds_addr *a, struct agg_match *out,
                        unsigned max);
uint64_t agg_trie_prefixes(const struct agg_trie *t);
size_t agg_trie_memory(const struct agg_trie *t);

#endif
