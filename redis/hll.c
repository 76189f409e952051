/* HyperLogLogs built here in Redis's own dense format, so a bucket's million sources reach Redis
 * as 12 KiB (SET to a scratch key, then PFMERGE) instead of a million PFADD elements. The
 * registers must be exactly those PFADD would make: the same hash (MurmurHash64A, seed
 * 0xadc83b19, over the element's bytes), the same 14-bit index and run length, the same 6-bit
 * packing; tests/unit/redis/test_hll.c checks this against a real redis-server. Pure. */
#include "redis/rds_internal.h"

#include <string.h>

#define HLL_P         14
#define HLL_Q         (64 - HLL_P)
#define HLL_REGISTERS (1u << HLL_P)
#define HLL_BITS      6
#define HLL_SEED      0xadc83b19ULL

/* MurmurHash64A (Austin Appleby, public domain algorithm), as Redis uses it: little-endian
 * 8-byte blocks, then the tail. */
static uint64_t murmur64a(const uint8_t *data, size_t len, uint64_t seed)
{
    const uint64_t m = 0xc6a4a7935bd1e995ULL;
    const int r = 47;
    uint64_t h = seed ^ (len * m);
    size_t blocks = len / 8;

    for (size_t i = 0; i < blocks; i++) {
        uint64_t k = 0;
        for (int b = 7; b >= 0; b--)
            k = k << 8 | data[i * 8 + (size_t)b];
        k *= m;
        k ^= k >> r;
        k *= m;
        h ^= k;
        h *= m;
    }
    const uint8_t *tail = data + blocks * 8;
    switch (len & 7) {
    case 7:
        h ^= (uint64_t)tail[6] << 48;
        /* fall through */
    case 6:
        h ^= (uint64_t)tail[5] << 40;
        /* fall through */
    case 5:
        h ^= (uint64_t)tail[4] << 32;
        /* fall through */
    case 4:
        h ^= (uint64_t)tail[3] << 24;
        /* fall through */
    case 3:
        h ^= (uint64_t)tail[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint64_t)tail[1] << 8;
        /* fall through */
    case 1:
        h ^= (uint64_t)tail[0];
        h *= m;
    }
    h ^= h >> r;
    h *= m;
    h ^= h >> r;
    return h;
}

static unsigned reg_get(const uint8_t *p, unsigned i)
{
    unsigned byte = i * HLL_BITS / 8, fb = i * HLL_BITS & 7;
    unsigned b0 = p[byte], b1 = byte + 1 < RDS_HLL_DENSE_SIZE - 16 ? p[byte + 1] : 0;

    return ((b0 >> fb) | (b1 << (8 - fb))) & 63;
}

static void reg_set(uint8_t *p, unsigned i, unsigned v)
{
    unsigned byte = i * HLL_BITS / 8, fb = i * HLL_BITS & 7, fb8 = 8 - fb;

    p[byte] &= (uint8_t) ~(63u << fb);
    p[byte] |= (uint8_t)(v << fb);
    if (byte + 1 < RDS_HLL_DENSE_SIZE - 16) {
        p[byte + 1] &= (uint8_t) ~(63u >> fb8);
        p[byte + 1] |= (uint8_t)(v >> fb8);
    }
}

void rds_hll_dense(uint8_t out[RDS_HLL_DENSE_SIZE], const uint64_t *elems, size_t n)
{
    uint8_t *regs = out + 16;

    memset(out, 0, RDS_HLL_DENSE_SIZE);
    memcpy(out, "HYLL", 4); /* then encoding 0 (dense), 3 unused bytes, 8-byte cache */
    out[15] = 0x80;         /* cached cardinality invalid: Redis computes it */
    for (size_t i = 0; i < n; i++) {
        uint8_t ele[8];
        memcpy(ele, &elems[i], 8); /* the bytes PFADD would be given */
        uint64_t h = murmur64a(ele, 8, HLL_SEED);
        unsigned idx = (unsigned)(h & (HLL_REGISTERS - 1));
        uint64_t rest = (h >> HLL_P) | (1ULL << HLL_Q);
        unsigned count = (unsigned)__builtin_ctzll(rest) + 1;
        if (count > reg_get(regs, idx))
            reg_set(regs, idx, count);
    }
}
