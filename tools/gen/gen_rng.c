/*
 * gen_rng.c - the generator's only source of randomness.
 *
 * xoshiro256** (Blackman and Vigna) seeded through splitmix64, so a run is a pure function of
 * --seed and the other arguments on every platform; rand() and friends are never used.  Each
 * consumer seeds its own stream (seed, stream) so that changing how one part draws numbers does
 * not perturb the others.
 *
 * Also the two deterministic splitting rules built on it: largest-remainder apportionment and
 * heavy-tailed per-source quotas that add up exactly.
 */
#include "gen_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

uint64_t gen_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void gen_rng_seed(struct gen_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = gen_mix64(seed) ^ gen_mix64(stream * 0xd1b54a32d192ed03ULL + 1);

    for (int i = 0; i < 4; i++) {
        x = gen_mix64(x);
        r->s[i] = x;
    }
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
        r->s[0] = 1; /* the all-zero state is a fixed point */
}

uint64_t gen_rng_next(struct gen_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Lemire's multiply-and-reject: unbiased, one multiplication in the common case. */
uint32_t gen_rng_below(struct gen_rng *r, uint32_t n)
{
    uint64_t m = (gen_rng_next(r) >> 32) * (uint64_t)n;
    uint32_t low = (uint32_t)m;

    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;

        while (low < threshold) {
            m = (gen_rng_next(r) >> 32) * (uint64_t)n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

uint64_t gen_rng_below64(struct gen_rng *r, uint64_t n)
{
    uint64_t limit, x;

    if (n <= UINT32_MAX)
        return gen_rng_below(r, (uint32_t)n);
    limit = UINT64_MAX - UINT64_MAX % n;
    do {
        x = gen_rng_next(r);
    } while (x >= limit);
    return x % n;
}

uint32_t gen_rng_range(struct gen_rng *r, uint32_t lo, uint32_t hi)
{
    if (hi - lo == UINT32_MAX)
        return (uint32_t)(gen_rng_next(r) >> 32);
    return lo + gen_rng_below(r, hi - lo + 1);
}

double gen_rng_unit(struct gen_rng *r)
{
    return (double)(gen_rng_next(r) >> 11) * 0x1.0p-53;
}

bool gen_rng_chance(struct gen_rng *r, double p)
{
    return gen_rng_unit(r) < p;
}

size_t gen_rng_weighted(struct gen_rng *r, const double *weights, size_t n)
{
    double total = 0, x;

    for (size_t i = 0; i < n; i++)
        total += weights[i];
    x = gen_rng_unit(r) * total;
    for (size_t i = 0; i < n; i++) {
        if (x < weights[i])
            return i;
        x -= weights[i];
    }
    /* rounding left x just above the last weight: take the last non-zero entry */
    for (size_t i = n; i-- > 0;)
        if (weights[i] > 0)
            return i;
    return 0;
}

void gen_rng_fill(struct gen_rng *r, uint8_t *buf, size_t len)
{
    while (len >= 8) {
        uint64_t x = gen_rng_next(r);

        memcpy(buf, &x, 8);
        buf += 8;
        len -= 8;
    }
    if (len > 0) {
        uint64_t x = gen_rng_next(r);

        memcpy(buf, &x, len);
    }
}

void gen_dist_apportion(uint64_t total, const double *w, size_t n, uint64_t *out)
{
    double sum = 0, frac[GEN_DIST_MAX_PARTS];
    uint64_t given = 0;

    if (n > GEN_DIST_MAX_PARTS)
        n = GEN_DIST_MAX_PARTS;
    for (size_t i = 0; i < n; i++)
        sum += w[i];
    for (size_t i = 0; i < n; i++) {
        double exact = sum > 0 ? (double)total * w[i] / sum : 0;

        out[i] = (uint64_t)floor(exact);
        frac[i] = w[i] > 0 ? exact - (double)out[i] : -1;
        given += out[i];
    }
    while (given < total && sum > 0) {
        size_t best = 0;

        for (size_t i = 1; i < n; i++)
            if (frac[i] > frac[best])
                best = i;
        out[best]++;
        frac[best] = -1;
        given++;
    }
}

/* Soft cap: w / (1 + w / cap) is increasing, close to w for small w and below cap, so the
 * biggest sources stay distinct instead of being clipped to one identical count. */
static double weight_capped(double w, double cap)
{
    return cap > 0 ? w / (1.0 + w / cap) : w;
}

int gen_dist_quotas(struct gen_rng *r, uint32_t *quota, uint64_t n, uint64_t total, double alpha,
                    double cap_share)
{
    double *w, sum = 0, acc = 0, cap = 0;
    uint64_t extra, prev = 0;

    if (n == 0)
        return 0;
    if (total < n || total - n > UINT32_MAX)
        return -EINVAL;
    w = malloc(n * sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    extra = total - n;
    for (uint64_t i = 0; i < n; i++) {
        double u = 1.0 - gen_rng_unit(r); /* (0, 1] */

        w[i] = pow(u, -1.0 / alpha) - 1.0; /* Lomax (Pareto II) */
        sum += w[i];
    }
    /* the cap is a share of the capped sum: iterate towards the fixed point */
    for (int round = 0; round < 4 && sum > 0; round++) {
        cap = cap_share * sum;
        sum = 0;
        for (uint64_t i = 0; i < n; i++)
            sum += weight_capped(w[i], cap);
    }
    /* cumulative rounding: every quota is within one of its exact share, and they add up */
    for (uint64_t i = 0; i < n; i++) {
        uint64_t cur;

        acc += weight_capped(w[i], cap);
        if (i + 1 == n)
            cur = extra;
        else if (sum > 0)
            cur = (uint64_t)((double)extra * (acc / sum));
        else
            cur = extra * (i + 1) / n;
        if (cur > extra)
            cur = extra;
        if (cur < prev)
            cur = prev;
        quota[i] = (uint32_t)(1 + cur - prev);
        prev = cur;
    }
    free(w);
    return 0;
}
