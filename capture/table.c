/* Address-keyed open-addressing tables for the per-bucket aggregates: each slot holds the
 * address's 64-bit hash beside the entry pointer, so a probe compares hashes without touching
 * the entry (one cache miss for the slot, one for the entry). Big tables are mapped with
 * transparent huge pages: a million sources make random access TLB-bound otherwise. */
#include "capture/cap_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define TABLE_MIN 1024
#define HUGE_MIN  (2u << 20)

void *cap_mem_alloc(size_t bytes)
{
    void *p;

    if (bytes < HUGE_MIN)
        return calloc(1, bytes);
    p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

void cap_mem_free(void *p, size_t bytes)
{
    if (!p)
        return;
    if (bytes < HUGE_MIN)
        free(p);
    else
        munmap(p, bytes);
}

static struct cap_slot *slots_alloc(size_t cap)
{
    return cap_mem_alloc(cap * sizeof(struct cap_slot));
}

static void slots_free(struct cap_slot *s, size_t cap)
{
    cap_mem_free(s, cap * sizeof(struct cap_slot));
}

/* ---- arenas */

struct cap_chunk {
    struct cap_chunk *next;
    size_t bytes;
};

#define CHUNK_FIRST (64u << 10)
#define CHUNK_MAX   (16u << 20)

void *cap_arena_alloc(struct cap_arena *a, size_t n)
{
    n = (n + 63) & ~(size_t)63; /* cache-line aligned: a record's hot lines are its first two */
    if (n > a->left) {
        size_t bytes = a->next_bytes ? a->next_bytes : CHUNK_FIRST;
        struct cap_chunk *c;
        while (bytes < n + 64)
            bytes *= 2;
        c = cap_mem_alloc(bytes);
        if (!c)
            return NULL;
        c->bytes = bytes;
        c->next = a->chunks;
        a->chunks = c;
        a->cur = (char *)c + 64;
        a->left = bytes - 64;
        a->next_bytes = bytes * 2 > CHUNK_MAX ? CHUNK_MAX : bytes * 2;
    }
    void *p = a->cur;
    a->cur += n;
    a->left -= n;
    return p;
}

void cap_arena_take(struct cap_arena *dst, struct cap_arena *src)
{
    struct cap_chunk **tail = &dst->chunks;

    while (*tail)
        tail = &(*tail)->next;
    *tail = src->chunks;
    src->chunks = NULL;
    src->cur = NULL;
    src->left = 0;
}

void cap_arena_fini(struct cap_arena *a)
{
    while (a->chunks) {
        struct cap_chunk *c = a->chunks;
        a->chunks = c->next;
        cap_mem_free(c, c->bytes);
    }
    a->cur = NULL;
    a->left = 0;
}

void cap_table_init(struct cap_table *t, size_t addr_offset, size_t max)
{
    memset(t, 0, sizeof(*t));
    t->addr_offset = addr_offset;
    t->max = max;
}

void cap_table_fini(struct cap_table *t, void (*free_entry)(void *))
{
    for (size_t i = 0; free_entry && i < t->cap; i++) {
        if (t->slot[i].p)
            free_entry(t->slot[i].p);
    }
    slots_free(t->slot, t->cap);
    t->slot = NULL;
    t->cap = t->n = 0;
}

static const struct ds_addr *entry_addr(const struct cap_table *t, const void *p)
{
    return (const struct ds_addr *)((const char *)p + t->addr_offset);
}

static int grow(struct cap_table *t)
{
    size_t ncap = t->cap ? t->cap * 2 : TABLE_MIN;
    struct cap_slot *ns = slots_alloc(ncap);

    if (!ns)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slot[i].p)
            continue;
        size_t j = t->slot[i].h & (ncap - 1);
        while (ns[j].p)
            j = (j + 1) & (ncap - 1);
        ns[j] = t->slot[i];
    }
    slots_free(t->slot, t->cap);
    t->slot = ns;
    t->cap = ncap;
    return 0;
}

static size_t probe(const struct cap_table *t, const struct ds_addr *a, uint64_t h)
{
    size_t j = h & (t->cap - 1);

    while (t->slot[j].p) {
        if (t->slot[j].h == h && ds_addr_equal(entry_addr(t, t->slot[j].p), a))
            return j;
        j = (j + 1) & (t->cap - 1);
    }
    return j;
}

void *cap_table_find(const struct cap_table *t, const struct ds_addr *a, uint64_t h)
{
    return t->cap ? t->slot[probe(t, a, h)].p : NULL;
}

void **cap_table_slot(struct cap_table *t, const struct ds_addr *a, uint64_t h)
{
    size_t j;

    /* keep the load at most one half while there is room to grow */
    if ((t->n + 1) * 2 > t->cap && t->n < t->max)
        (void)grow(t);
    if (!t->cap)
        return NULL;
    j = probe(t, a, h);
    if (t->slot[j].p)
        return &t->slot[j].p;
    if (t->n >= t->max || (t->n + 1) * 4 > t->cap * 3)
        return NULL; /* full: the bound, or no memory to grow */
    t->slot[j].h = h;
    return &t->slot[j].p;
}

void cap_table_added(struct cap_table *t)
{
    t->n++;
}
