/* Fuzz target: the prefix trie (aggregator/trie.c). The input is a program of prefixes to add
 * and addresses to look up; every lookup is checked against a brute-force scan. */
#include "aggregator/aggregator.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ds_cidr added[64];
    unsigned n = 0, finishes = 0, ops = 0;
    struct agg_trie *t = agg_trie_new();

    while (size >= 18 && t && ops++ < 96) {
        uint8_t op = data[0];
        struct ds_addr a = {.family = (uint8_t)(op & 1 ? 6 : 4)};
        memcpy(a.b, data + 2, a.family == 4 ? 4 : 16);
        if (op & 2 && n < 64) {
            unsigned max = a.family == 4 ? 32 : 128, len = data[1] % (max + 1);
            for (unsigned b = len; b < max; b++)
                a.b[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
            added[n] = (struct ds_cidr){a, (uint8_t)len};
            if (agg_trie_add(t, &added[n], n) < 0)
                abort();
            n++;
            /* the IPv4 table takes 65,536 walks to build: now and then, as a loader does */
            if (op & 4 && finishes++ < 2 && agg_trie_finish(t) < 0)
                abort();
        } else {
            struct agg_match m[64];
            unsigned got = agg_trie_match(t, &a, m, 64), want = 0;
            for (unsigned i = 0; i < n; i++)
                want += ds_cidr_contains(&added[i], &a);
            if (got != want)
                abort();
            for (unsigned i = 1; i < got && i < 64; i++) {
                if (m[i - 1].len < m[i].len)
                    abort(); /* longest first */
            }
        }
        data += 18;
        size -= 18;
    }
    agg_trie_free(t);
    return 0;
}
