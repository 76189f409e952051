/* Prefix matching for subscriber ranges: a path-compressed binary trie per address family
 * (after zmap's lib/constraint.c and the BSD radix tree), where a node holds the values of the
 * prefix it ends, so one walk collects every organisation whose range contains an address —
 * overlapping ranges (an ISP and its customer) both match. IPv4 lookups start from a table of
 * the first 16 bits. No I/O. */
#include "aggregator/aggregator.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NONE          UINT32_MAX
#define V4_TABLE_BITS 16

struct node {
    uint8_t key[16]; /* the prefix, host bits zero */
    uint8_t len;     /* its length */
    uint32_t child[2];
    uint32_t vals; /* first entry of its value list, or NONE */
};

struct val {
    uint32_t value;
    uint32_t next;
};

/* above: the deepest node of at most 16 bits that holds values and contains the 16-bit value
 * (NONE: none — then the lookup skips the nodes above 16 bits altogether); next: the node the
 * walk continues from below 16 bits (NONE: nothing below can match), or SPLIT | n when node n is
 * exactly 16 bits long and its child depends on bit 16. One cache line holds 8. */
struct v4_slot {
    uint32_t above, next;
};

#define SPLIT 0x80000000u

struct agg_trie {
    struct node *nodes;
    uint32_t n_nodes, cap_nodes;
    struct val *vals;
    uint32_t n_vals, cap_vals;
    uint32_t root[2]; /* [0] IPv4, [1] IPv6 */
    /* IPv4: for each value of the first 16 bits, where its walk stands after those bits; rebuilt
     * lazily */
    struct v4_slot *v4_start;
    bool v4_dirty;
    uint64_t prefixes;
};

static inline int bit_at(const uint8_t *k, unsigned i)
{
    return (k[i >> 3] >> (7 - (i & 7))) & 1;
}

/* Number of leading bits a and b share, up to max. */
static unsigned common_bits(const uint8_t *a, const uint8_t *b, unsigned max)
{
    unsigned n = 0;

    for (unsigned i = 0; i < 16 && n < max; i++) {
        uint8_t x = a[i] ^ b[i];
        if (!x) {
            n += 8;
            continue;
        }
        n += (unsigned)__builtin_clz((unsigned)x) - 24;
        break;
    }
    return n < max ? n : max;
}

static void mask_key(uint8_t *k, unsigned len)
{
    for (unsigned i = 0; i < 16; i++) {
        if (len >= (i + 1) * 8)
            continue;
        k[i] = len <= i * 8 ? 0 : (uint8_t)(k[i] & (0xff << (8 - (len - i * 8))));
    }
}

static uint32_t node_new(struct agg_trie *t, const uint8_t *key, unsigned len)
{
    if (t->n_nodes >= SPLIT - 1)
        return NONE; /* node indexes stay below the SPLIT flag of the IPv4 table */
    if (t->n_nodes == t->cap_nodes) {
        uint32_t cap = t->cap_nodes ? t->cap_nodes * 2 : 1024;
        struct node *n = realloc(t->nodes, cap * sizeof(*n));
        if (!n)
            return NONE;
        t->nodes = n;
        t->cap_nodes = cap;
    }
    struct node *n = &t->nodes[t->n_nodes];
    memcpy(n->key, key, 16);
    mask_key(n->key, len);
    n->len = (uint8_t)len;
    n->child[0] = n->child[1] = NONE;
    n->vals = NONE;
    return t->n_nodes++;
}

struct agg_trie *agg_trie_new(void)
{
    struct agg_trie *t = calloc(1, sizeof(*t));
    static const uint8_t zero[16];

    if (!t)
        return NULL;
    t->root[0] = node_new(t, zero, 0);
    t->root[1] = node_new(t, zero, 0);
    if (t->root[0] == NONE || t->root[1] == NONE) {
        agg_trie_free(t);
        return NULL;
    }
    t->v4_dirty = true;
    return t;
}

void agg_trie_free(struct agg_trie *t)
{
    if (!t)
        return;
    free(t->nodes);
    free(t->vals);
    free(t->v4_start);
    free(t);
}

static int add_value(struct agg_trie *t, uint32_t node, uint32_t value)
{
    for (uint32_t v = t->nodes[node].vals; v != NONE; v = t->vals[v].next) {
        if (t->vals[v].value == value)
            return 0;
    }
    if (t->n_vals == t->cap_vals) {
        uint32_t cap = t->cap_vals ? t->cap_vals * 2 : 1024;
        struct val *n = realloc(t->vals, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        t->vals = n;
        t->cap_vals = cap;
    }
    t->vals[t->n_vals] = (struct val){value, t->nodes[node].vals};
    t->nodes[node].vals = t->n_vals++;
    return 0;
}

int agg_trie_add(struct agg_trie *t, const struct ds_cidr *c, uint32_t value)
{
    uint8_t key[16];
    unsigned len = c->len;
    uint32_t cur;

    if (c->addr.family != 4 && c->addr.family != 6)
        return -EINVAL;
    if (len > (c->addr.family == 4 ? 32u : 128u))
        return -EINVAL;
    memcpy(key, c->addr.b, 16);
    mask_key(key, len);
    t->v4_dirty = t->v4_dirty || c->addr.family == 4;
    t->prefixes++;
    cur = t->root[c->addr.family == 6];
    for (;;) {
        struct node *n = &t->nodes[cur];
        if (n->len == len)
            return add_value(t, cur, value);
        /* n's prefix contains key (invariant); go down by the next bit */
        int b = bit_at(key, n->len);
        uint32_t next = n->child[b];
        if (next == NONE) {
            uint32_t leaf = node_new(t, key, len);
            if (leaf == NONE)
                return -ENOMEM;
            t->nodes[cur].child[b] = leaf;
            return add_value(t, leaf, value);
        }
        struct node *m = &t->nodes[next];
        unsigned common = common_bits(key, m->key, len < m->len ? len : m->len);
        if (common == m->len) {
            cur = next; /* m contains key: descend */
            continue;
        }
        /* split: a node for the shared part (or for key itself when key is that part) */
        uint32_t mid = node_new(t, key, common);
        if (mid == NONE)
            return -ENOMEM;
        m = &t->nodes[next]; /* node_new may move the array */
        t->nodes[mid].child[bit_at(m->key, common)] = next;
        t->nodes[cur].child[b] = mid;
        if (common == len)
            return add_value(t, mid, value);
        uint32_t leaf = node_new(t, key, len);
        if (leaf == NONE)
            return -ENOMEM;
        t->nodes[mid].child[bit_at(key, common)] = leaf;
        return add_value(t, leaf, value);
    }
}

static bool node_contains(const struct node *n, const uint8_t *a)
{
    unsigned full = n->len >> 3, rest = n->len & 7;

    if (memcmp(n->key, a, full) != 0)
        return false;
    return !rest || ((n->key[full] ^ a[full]) & (0xff << (8 - rest))) == 0;
}

/* Where the walk of every 16-bit value stands after its first 16 bits (struct v4_slot): a
 * lookup starts there instead of at the root, one cache miss instead of a dozen. */
static int build_v4_table(struct agg_trie *t)
{
    if (!t->v4_start) {
        t->v4_start = malloc(sizeof(*t->v4_start) << V4_TABLE_BITS);
        if (!t->v4_start)
            return -ENOMEM;
    }
    for (uint32_t hi = 0; hi < (1u << V4_TABLE_BITS); hi++) {
        uint8_t a[16] = {(uint8_t)(hi >> 8), (uint8_t)hi};
        uint32_t cur = t->root[0], best = NONE, next = NONE;
        while (cur != NONE) {
            const struct node *n = &t->nodes[cur];
            if (n->len > V4_TABLE_BITS) {
                next = cur; /* whether it contains an address depends on its lower bits */
                break;
            }
            if (!node_contains(n, a))
                break;
            if (n->vals != NONE)
                best = cur;
            if (n->len == V4_TABLE_BITS) {
                next = SPLIT | cur;
                break;
            }
            cur = n->child[bit_at(a, n->len)];
        }
        t->v4_start[hi] = (struct v4_slot){best, next};
    }
    t->v4_dirty = false;
    return 0;
}

int agg_trie_finish(struct agg_trie *t)
{
    return t->v4_dirty ? build_v4_table(t) : 0;
}

/* Matches collected deepest-last; reversed at the end (longest first). */
unsigned agg_trie_match(const struct agg_trie *t, const struct ds_addr *a, struct agg_match *out,
                        unsigned max)
{
    uint32_t path[130];
    unsigned depth = 0, total = 0, n = 0;
    uint32_t cur;

    if (a->family != 4 && a->family != 6)
        return 0;
    cur = t->root[a->family == 6];
    if (a->family == 4 && !t->v4_dirty && t->v4_start) {
        /* the nodes down to `above` (prefixes of at most 16 bits, few) are collected by a walk
         * from the root; the walk below continues from `next` */
        struct v4_slot sl = t->v4_start[((uint32_t)a->b[0] << 8) | a->b[1]];
        if (sl.above != NONE) {
            uint32_t c = t->root[0];
            while (c != sl.above) {
                if (t->nodes[c].vals != NONE)
                    path[depth++] = c;
                c = t->nodes[c].child[bit_at(a->b, t->nodes[c].len)];
            }
            path[depth++] = sl.above;
        }
        if (sl.next != NONE && (sl.next & SPLIT))
            cur = t->nodes[sl.next & ~SPLIT].child[bit_at(a->b, V4_TABLE_BITS)];
        else
            cur = sl.next;
    }
    while (cur != NONE && depth < 130) {
        const struct node *nd = &t->nodes[cur];
        if (!node_contains(nd, a->b))
            break;
        path[depth++] = cur;
        if (nd->len >= (a->family == 4 ? 32 : 128))
            break;
        cur = nd->child[bit_at(a->b, nd->len)];
    }
    for (unsigned i = depth; i-- > 0;) {
        const struct node *nd = &t->nodes[path[i]];
        for (uint32_t v = nd->vals; v != NONE; v = t->vals[v].next) {
            if (n < max)
                out[n++] = (struct agg_match){t->vals[v].value, nd->len};
            total++;
        }
    }
    return total;
}

void agg_trie_prefetch(const struct agg_trie *t, const struct ds_addr *a, unsigned step)
{
    if (a->family != 4 || t->v4_dirty || !t->v4_start)
        return;
    const struct v4_slot *sl = &t->v4_start[((uint32_t)a->b[0] << 8) | a->b[1]];
    if (step == 0) {
        __builtin_prefetch(sl);
    } else if (sl->next != NONE && !(sl->next & SPLIT)) {
        __builtin_prefetch(&t->nodes[sl->next]);
    }
}

uint64_t agg_trie_prefixes(const struct agg_trie *t)
{
    return t->prefixes;
}

size_t agg_trie_memory(const struct agg_trie *t)
{
    return sizeof(*t) + (size_t)t->cap_nodes * sizeof(struct node) +
           (size_t)t->cap_vals * sizeof(struct val) +
           (t->v4_start ? sizeof(*t->v4_start) << V4_TABLE_BITS : 0);
}
