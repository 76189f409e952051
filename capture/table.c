/* Address-keyed open-addressing tables for the per-bucket aggregates: each slot holds the
 * address's 64-bit hash beside the entry pointer, so a probe compares hashes without touching
 * the entry (one cache miss for the slot, one for the entry). Big tables are mapped with
 * transparent huge pages: a million sources make random access TLB-bound otherwise. */
#include "capture/cap_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define TABLE_MIN 1024
#define HUGE_MIN  (2u << 20)

static void *pool_take(size_t bytes);

void *cap_mem_alloc(size_t bytes)
{
    void *p;

    if (bytes < HUGE_MIN)
        return calloc(1, bytes);
    if ((p = pool_take(bytes)))
        return p;
    p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

/* ---- memory faulted in ahead of use
 *
 * The first write to fresh memory costs a page fault and the kernel's zeroing of the page: with
 * a million sources a bucket touches about a gigabyte, and in one thread that was a tenth of the
 * reading. A table that will soon double, or an arena that will soon need its next chunk, maps
 * that memory early (cap_spare_want) and a helper thread faults it in with MADV_POPULATE_WRITE
 * (Linux 5.14) on another core, while the capture thread goes on; the mapping is used when the
 * table grows (cap_spare_take). Populating only maps zeroed pages, it never writes content, so
 * it may run while the memory is already in use, or after it was unmapped (it then fails). */

#define PREFAULT_QUEUE 256
#define PREFAULT_STEP  (8u << 20)

/* ---- memory reused between buckets
 *
 * A closed bucket's big blocks (2 MiB and more) are not unmapped: the helper thread zeroes them
 * (memset, about 0.1 s a gigabyte) and keeps them for the next buckets' tables and arenas, which
 * take a block of the same size before mapping a new one. Faulting fresh memory in cost more
 * than ten times that on this kind of virtual machine. At most POOL_MAX bytes are kept (or
 * waiting to be zeroed); beyond that blocks are unmapped. */

#define POOL_MAX    (2ULL << 30)
#define POOL_BLOCKS 1024

struct mem_block {
    char *p;
    size_t bytes;
    bool zero; /* a freed block to zero and keep; else a spare to fault in */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct mem_block q[PREFAULT_QUEUE];
    unsigned head, n;
    bool started, no_thread, unsupported; /* unsupported: no MADV_POPULATE_WRITE (or thread) */
    struct mem_block pool[POOL_BLOCKS];   /* zeroed, ready */
    unsigned n_pool;
    size_t pool_bytes; /* in the pool and queued to be zeroed */
} prefault = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *pool_take(size_t bytes)
{
    void *p = NULL;

    pthread_mutex_lock(&prefault.lock);
    for (unsigned i = prefault.n_pool; i-- > 0;) {
        if (prefault.pool[i].bytes == bytes) {
            p = prefault.pool[i].p;
            prefault.pool[i] = prefault.pool[--prefault.n_pool];
            prefault.pool_bytes -= bytes;
            break;
        }
    }
    pthread_mutex_unlock(&prefault.lock);
    return p;
}

static void *prefault_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&prefault.lock);
        while (!prefault.n)
            pthread_cond_wait(&prefault.cond, &prefault.lock);
        struct mem_block b = prefault.q[prefault.head];
        prefault.head = (prefault.head + 1) % PREFAULT_QUEUE;
        prefault.n--;
        pthread_mutex_unlock(&prefault.lock);
        if (b.zero) {
            memset(b.p, 0, b.bytes);
            pthread_mutex_lock(&prefault.lock);
            bool kept = prefault.n_pool < POOL_BLOCKS;
            if (kept)
                prefault.pool[prefault.n_pool++] = (struct mem_block){b.p, b.bytes, false};
            else
                prefault.pool_bytes -= b.bytes;
            pthread_mutex_unlock(&prefault.lock);
            if (!kept)
                munmap(b.p, b.bytes);
            continue;
        }
        char *p = b.p;
        size_t bytes = b.bytes;
        for (size_t off = 0; off < bytes; off += PREFAULT_STEP) {
            size_t len = bytes - off < PREFAULT_STEP ? bytes - off : PREFAULT_STEP;
            if (madvise(p + off, len, MADV_POPULATE_WRITE) < 0) {
                if (errno == EINVAL) {
                    pthread_mutex_lock(&prefault.lock);
                    prefault.unsupported = true; /* before Linux 5.14 */
                    pthread_mutex_unlock(&prefault.lock);
                }
                break; /* unmapped meanwhile, or no memory: the toucher faults it */
            }
        }
    }
    return NULL;
}

/* Starts the helper thread on first use (prefault.lock held); false when it could not be. */
static bool helper_running(void)
{
    if (!prefault.started) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        prefault.started = true;
        prefault.no_thread = pthread_create(&t, &attr, prefault_main, NULL) != 0;
        prefault.unsupported = prefault.no_thread;
        pthread_attr_destroy(&attr);
    }
    return !prefault.no_thread;
}

static void queue_block(struct mem_block b)
{
    unsigned k = (prefault.head + prefault.n) % PREFAULT_QUEUE;

    prefault.q[k] = b;
    prefault.n++;
    pthread_cond_signal(&prefault.cond);
}

/* Queues [p, p + bytes) for the helper thread; a full queue, or a kernel without
 * MADV_POPULATE_WRITE, leaves the faults to the first writer. */
static void prefault_queue(void *p, size_t bytes)
{
    pthread_mutex_lock(&prefault.lock);
    if (helper_running() && !prefault.unsupported && prefault.n < PREFAULT_QUEUE)
        queue_block((struct mem_block){p, bytes, false});
    pthread_mutex_unlock(&prefault.lock);
}

/* Queues a freed block to be zeroed and kept; false when it should be unmapped instead. */
static bool pool_give(void *p, size_t bytes)
{
    bool queued = false;

    pthread_mutex_lock(&prefault.lock);
    if (helper_running() && prefault.n < PREFAULT_QUEUE &&
        prefault.pool_bytes + bytes <= POOL_MAX) {
        queue_block((struct mem_block){p, bytes, true});
        prefault.pool_bytes += bytes;
        queued = true;
    }
    pthread_mutex_unlock(&prefault.lock);
    return queued;
}

void cap_spare_want(struct cap_spare *s, size_t bytes)
{
    if (bytes < HUGE_MIN || (s->p && s->bytes == bytes))
        return;
    cap_spare_fini(s);
    s->p = cap_mem_alloc(bytes);
    if (!s->p)
        return;
    s->bytes = bytes;
    prefault_queue(s->p, bytes);
}

void *cap_spare_take(struct cap_spare *s, size_t bytes)
{
    if (s->p && s->bytes == bytes) {
        void *p = s->p;
        s->p = NULL;
        s->bytes = 0;
        return p;
    }
    cap_spare_fini(s);
    return cap_mem_alloc(bytes);
}

void cap_spare_fini(struct cap_spare *s)
{
    cap_mem_free(s->p, s->bytes);
    s->p = NULL;
    s->bytes = 0;
}

void cap_mem_free(void *p, size_t bytes)
{
    if (!p)
        return;
    if (bytes < HUGE_MIN)
        free(p);
    else if (!pool_give(p, bytes))
        munmap(p, bytes);
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
        c = cap_spare_take(&a->spare, bytes);
        if (!c)
            return NULL;
        c->bytes = bytes;
        c->next = a->chunks;
        a->chunks = c;
        a->cur = (char *)c + 64;
        a->left = bytes - 64;
        a->next_bytes = bytes * 2 > CHUNK_MAX ? CHUNK_MAX : bytes * 2;
        cap_spare_want(&a->spare, a->next_bytes); /* the next chunk, faulted in meanwhile */
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
    cap_spare_fini(&a->spare);
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
    cap_spare_fini(&t->next);
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
    struct cap_slot *ns = cap_spare_take(&t->next, ncap * sizeof(struct cap_slot));

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

    /* keep the load at most one half while there is room to grow; from a load of 2/5 the
     * doubled slots are faulted in ahead */
    if ((t->n + 1) * 2 > t->cap && t->n < t->max)
        (void)grow(t);
    else if (t->n * 5 > t->cap * 2 && !t->next.p && t->n < t->max)
        cap_spare_want(&t->next, t->cap * 2 * sizeof(struct cap_slot));
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
