/*
 * gen_table.c - the truth's hash tables: an address map and a set of 64-bit keys.
 *
 * Both use open addressing with linear probing, a load factor of at most 1/2 and doubling.
 * Addresses are hashed on all 128 bits plus the family through gen_mix64, never on leading bits:
 * darknet destinations and many sources share their leading bits.  The address map keeps its
 * keys and values in dense arrays indexed by insertion order, so callers can refer to an entry by
 * a 32-bit index (the port-pair set does).  Each table has a maximum entry count; reaching it is
 * reported as -ENOSPC, never as a silent drop, because the truth must stay exact.
 */
#include "gen_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TAB_MIN_SLOTS 1024

int gen_addrtab_init(struct gen_addrtab *t, size_t val_size, size_t max)
{
    memset(t, 0, sizeof(*t));
    t->val_size = val_size;
    t->max = max;
    t->slots = calloc(TAB_MIN_SLOTS, sizeof(*t->slots));
    if (t->slots == NULL)
        return -ENOMEM;
    t->mask = TAB_MIN_SLOTS - 1;
    return 0;
}

void gen_addrtab_fini(struct gen_addrtab *t)
{
    free(t->slots);
    free(t->keys);
    free(t->vals);
    memset(t, 0, sizeof(*t));
}

static int addrtab_rehash(struct gen_addrtab *t)
{
    size_t nslots = (t->mask + 1) * 2;
    uint32_t *slots = calloc(nslots, sizeof(*slots));

    if (slots == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < t->count; i++) {
        size_t pos = gen_addr_hash(&t->keys[i]) & (nslots - 1);

        while (slots[pos] != 0)
            pos = (pos + 1) & (nslots - 1);
        slots[pos] = (uint32_t)(i + 1);
    }
    free(t->slots);
    t->slots = slots;
    t->mask = nslots - 1;
    return 0;
}

static int addrtab_grow_entries(struct gen_addrtab *t)
{
    size_t cap = t->cap ? t->cap * 2 : 1024;
    struct gen_addr *keys;

    if (cap > t->max)
        cap = t->max;
    keys = realloc(t->keys, cap * sizeof(*keys));
    if (keys == NULL)
        return -ENOMEM;
    t->keys = keys;
    if (t->val_size > 0) {
        uint8_t *vals = realloc(t->vals, cap * t->val_size);

        if (vals == NULL)
            return -ENOMEM;
        t->vals = vals;
    }
    t->cap = cap;
    return 0;
}

int gen_addrtab_upsert(struct gen_addrtab *t, const struct gen_addr *a, uint32_t *idx, bool *added)
{
    size_t pos = gen_addr_hash(a) & t->mask;
    int rc;

    for (;;) {
        uint32_t s = t->slots[pos];

        if (s == 0)
            break;
        if (gen_addr_equal(&t->keys[s - 1], a)) {
            *idx = s - 1;
            *added = false;
            return 0;
        }
        pos = (pos + 1) & t->mask;
    }
    if (t->count >= t->max || t->count >= UINT32_MAX - 1)
        return -ENOSPC;
    if (t->count == t->cap && (rc = addrtab_grow_entries(t)) != 0)
        return rc;
    t->keys[t->count] = *a;
    if (t->val_size > 0)
        memset(t->vals + t->count * t->val_size, 0, t->val_size);
    t->slots[pos] = (uint32_t)(t->count + 1);
    *idx = (uint32_t)t->count;
    *added = true;
    t->count++;
    if (t->count * 2 > t->mask + 1 && (rc = addrtab_rehash(t)) != 0)
        return rc;
    return 0;
}

void *gen_addrtab_val(struct gen_addrtab *t, uint32_t idx)
{
    return t->vals + (size_t)idx * t->val_size;
}

int gen_u64set_init(struct gen_u64set *s, size_t max)
{
    memset(s, 0, sizeof(*s));
    s->slots = calloc(TAB_MIN_SLOTS, sizeof(*s->slots));
    if (s->slots == NULL)
        return -ENOMEM;
    s->mask = TAB_MIN_SLOTS - 1;
    s->max = max;
    return 0;
}

void gen_u64set_fini(struct gen_u64set *s)
{
    free(s->slots);
    memset(s, 0, sizeof(*s));
}

static int u64set_rehash(struct gen_u64set *s)
{
    size_t nslots = (s->mask + 1) * 2;
    uint64_t *slots = calloc(nslots, sizeof(*slots));

    if (slots == NULL)
        return -ENOMEM;
    for (size_t i = 0; i <= s->mask; i++) {
        uint64_t k = s->slots[i];
        size_t pos;

        if (k == 0)
            continue;
        pos = gen_mix64(k) & (nslots - 1);
        while (slots[pos] != 0)
            pos = (pos + 1) & (nslots - 1);
        slots[pos] = k;
    }
    free(s->slots);
    s->slots = slots;
    s->mask = nslots - 1;
    return 0;
}

int gen_u64set_insert(struct gen_u64set *s, uint64_t key)
{
    uint64_t k = key + 1;
    size_t pos = gen_mix64(k) & s->mask;
    int rc;

    while (s->slots[pos] != 0) {
        if (s->slots[pos] == k)
            return 0;
        pos = (pos + 1) & s->mask;
    }
    if (s->count >= s->max)
        return -ENOSPC;
    s->slots[pos] = k;
    s->count++;
    if (s->count * 2 > s->mask + 1 && (rc = u64set_rehash(s)) != 0)
        return rc;
    return 1;
}

/* LSD radix sort, 16 bits per pass; tmp has n entries. */
static void radix_sort64(uint64_t *a, uint64_t *tmp, size_t n)
{
    static size_t count[65536];

    for (int shift = 0; shift < 64; shift += 16) {
        size_t sum = 0;

        memset(count, 0, sizeof(count));
        for (size_t i = 0; i < n; i++)
            count[(a[i] >> shift) & 0xffff]++;
        for (size_t i = 0; i < 65536; i++) {
            size_t c = count[i];

            count[i] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            tmp[count[(a[i] >> shift) & 0xffff]++] = a[i];
        memcpy(a, tmp, n * sizeof(*a));
    }
}

size_t gen_u64set_sort(struct gen_u64set *s, uint64_t **keys)
{
    size_t n = 0;

    for (size_t i = 0; i <= s->mask; i++)
        if (s->slots[i] != 0)
            s->slots[n++] = s->slots[i] - 1;
    /* The load factor is at most 1/2, so the upper half of the slots is free scratch space.
     * The set is dead after this call: its slots hold the sorted keys. */
    radix_sort64(s->slots, s->slots + n, n);
    s->count = 0;
    *keys = s->slots;
    return n;
}
