/* Running one function on several threads for a while: the flush of a bucket with a million
 * sources spreads its GeoIP lookups and record encoding over the cores. The function claims its
 * work itself (a shared counter), so fewer threads than asked for still do all of it. */
#include "core/core.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct par_thread {
    pthread_t id;
    void (*fn)(void *ctx, unsigned thread);
    void *ctx;
    unsigned index;
};

static void *par_main(void *arg)
{
    struct par_thread *t = arg;

    t->fn(t->ctx, t->index);
    return NULL;
}

unsigned ds_parallel_run(unsigned n, void (*fn)(void *ctx, unsigned thread), void *ctx)
{
    struct par_thread *t = n > 1 ? calloc(n - 1, sizeof(*t)) : NULL;
    unsigned started = 0;

    for (unsigned i = 1; t && i < n; i++) {
        struct par_thread *x = &t[started];
        x->fn = fn;
        x->ctx = ctx;
        x->index = i;
        if (pthread_create(&x->id, NULL, par_main, x) != 0)
            break;
        started++;
    }
    fn(ctx, 0);
    for (unsigned i = 0; i < started; i++)
        pthread_join(t[i].id, NULL);
    free(t);
    return started + 1;
}

unsigned ds_parallel_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}
