/* Connections per client address, for web.max_http_connections_per_address: one fixed table of
 * counters indexed by a keyed hash of the address (an IPv6 client by its /64, the prefix a host
 * is given), so the memory is the same whatever the number of clients and nothing is allocated
 * per connection. Two addresses whose hashes meet share one counter and so one limit; with
 * WEB_PEER_SLOTS counters and a key an outsider does not know, a client cannot aim its own
 * connections at another client's counter. Pure: no I/O, no clock. */
#include "web/web_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int web_peers_init(struct web_peers *p, unsigned max_per_address, const uint64_t key[2])
{
    memset(p, 0, sizeof(*p));
    p->n = calloc(WEB_PEER_SLOTS, sizeof(*p->n));
    if (!p->n)
        return -ENOMEM;
    p->max = max_per_address;
    p->key[0] = key[0];
    p->key[1] = key[1];
    return 0;
}

void web_peers_fini(struct web_peers *p)
{
    free(p->n);
    p->n = NULL;
}

static unsigned slot_of(const struct web_peers *p, const struct ds_addr *a)
{
    struct ds_addr k = *a;
    uint64_t hi, lo;

    if (k.family == 6)
        ds_addr_truncate(&k, 64);
    memcpy(&hi, k.b, 8);
    memcpy(&lo, k.b + 8, 8);
    return (unsigned)(ds_hash_u64(ds_hash_u64(hi ^ p->key[0] ^ k.family) ^ lo ^ p->key[1]) &
                      (WEB_PEER_SLOTS - 1));
}

unsigned web_peers_admit(struct web_peers *p, const struct ds_addr *a)
{
    unsigned k = slot_of(p, a);

    if (p->n[k] >= p->max) {
        p->refused++;
        return 0;
    }
    p->n[k]++;
    p->open++;
    return k + 1;
}

void web_peers_release(struct web_peers *p, unsigned id)
{
    if (id == 0 || id > WEB_PEER_SLOTS || p->n[id - 1] == 0)
        return;
    p->n[id - 1]--;
    p->open--;
}
