/* Aggregation lanes: a worker reading a file spreads its counted packets over lanes by source
 * hash, so the per-source aggregation — the random memory accesses that bound capture — runs on
 * several cores. Lane 0 is the worker thread itself; lanes 1.. are threads with buckets of their
 * own, and every source lives in exactly one lane. Packets travel in blocks (CAP_LANE_BLOCK), a
 * lock taken once per block. Before the worker hands a bucket over, it sends each lane a sync
 * in the same stream of blocks: the lane aggregates what came before it, gives the worker its
 * own parts of the same buckets, and acknowledges. The worker hands each bucket over with the
 * lanes' parts attached (cap_bucket.lane_parts), and the coordinator merges them into one part
 * before anything else: a bucket — a late part too — leaves capture whole, as from one thread,
 * and no merging happens on the reading thread. */
#include "capture/cap_internal.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define LANE_BLOCKS 32 /* blocks per lane, queued or being filled: the worker waits beyond */

/* ---- the software pipeline (see CAP_STAGE), shared with the worker */

void cap_pipe_push(struct cap_pipe *q, const struct cap_pkt *p, struct cap_bucket *b, int prefix,
                   uint64_t h)
{
    unsigned tail = (q->head + q->n) % CAP_BATCH;
    struct cap_pending *x = &q->batch[tail];

    x->p = *p;
    x->b = b;
    x->prefix = prefix;
    x->h = h;
    cap_bucket_prefetch_slot(b, h);
    q->n++;
    if (q->n > CAP_STAGE) {
        struct cap_pending *y = &q->batch[(tail + CAP_BATCH - CAP_STAGE) % CAP_BATCH];
        cap_bucket_prefetch_entry(y->b, y->h);
    }
    if (q->n > 2 * CAP_STAGE) {
        struct cap_pending *y = &q->batch[(tail + CAP_BATCH - 2 * CAP_STAGE) % CAP_BATCH];
        cap_bucket_prefetch_ext(y->b, &y->p, y->h);
    }
    if (q->n > 3 * CAP_STAGE) {
        struct cap_pending *y = &q->batch[q->head];
        cap_bucket_add(y->b, &y->p, y->prefix, y->h);
        q->head = (q->head + 1) % CAP_BATCH;
        q->n--;
    }
}

void cap_pipe_drain(struct cap_pipe *q)
{
    while (q->n) {
        struct cap_pending *y = &q->batch[q->head];
        cap_bucket_add(y->b, &y->p, y->prefix, y->h);
        q->head = (q->head + 1) % CAP_BATCH;
        q->n--;
    }
}

/* ---- lane threads */

struct cap_lane_item {
    struct cap_pkt p;
    int64_t start;
    uint64_t h;
    int prefix;
    bool late;
};

struct cap_lane_block {
    struct cap_lane_item item[CAP_LANE_BLOCK];
    unsigned n;
    /* a sync after the items: hand over what the worker hands over */
    bool sync;
    int64_t watermark, evict_start;
    bool late_due;
    struct cap_lane_block *next;
};

struct cap_lane {
    struct cap_worker *w;
    pthread_t thread;
    bool started;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct cap_lane_block *head, *tail; /* guarded by lock: queued for the lane */
    struct cap_lane_block *spare;       /* guarded by lock: empty blocks */
    unsigned n_blocks;                  /* guarded by lock: allocated */
    uint64_t syncs_done;                /* guarded by lock */
    bool quit;                          /* guarded by lock */
    struct cap_bucket *out; /* parts given back at syncs (lane_parts list): the lane fills it
                               before acknowledging a sync, the worker empties it after */

    /* worker thread only */
    struct cap_lane_block *fill;
    uint64_t syncs_sent;
    ds_time_ns worker_waited; /* for a free block: the lane was behind */

    /* lane thread only, read after it stopped */
    ds_time_ns lane_waited; /* for a block: the worker was behind */

    /* lane thread only */
    struct cap_bucket *open[8];
    unsigned n_open;
    struct cap_pipe pipe;

    /* the lane's newest open bucket and its sources, for the live counters (relaxed) */
    _Atomic int64_t newest_start;
    _Atomic uint64_t newest_sources;
};

static void lane_hand_over(struct cap_lane *l, int64_t watermark, bool late_due,
                           int64_t evict_start)
{
    const struct ds_config *cfg = cap_capture_config(l->w->cap);

    cap_pipe_drain(&l->pipe);
    for (unsigned i = 0; i < l->n_open;) {
        struct cap_bucket *b = l->open[i];
        bool due = watermark == INT64_MAX || (b->late && late_due) || b->start == evict_start ||
                   b->start + b->seconds + cfg->lateness_seconds <= watermark;
        if (!due) {
            i++;
            continue;
        }
        l->open[i] = l->open[--l->n_open];
        if (b->late)
            b->tot.late = b->tot.packets;
        b->lane_parts = l->out;
        l->out = b;
    }
}

/* The lane's bucket of start. The worker has that bucket open too (the packet went through its
 * bucket_for), and it never keeps more open than the lane can hold: a lane's open buckets are
 * among the worker's, each handed over at a sync before the worker lets its own go. */
static struct cap_bucket *lane_bucket(struct cap_lane *l, int64_t start, bool late)
{
    const struct ds_config *cfg = cap_capture_config(l->w->cap);
    struct cap_bucket *b;

    for (unsigned i = 0; i < l->n_open; i++) {
        if (l->open[i]->start == start)
            return l->open[i];
    }
    if (l->n_open == DS_ARRAY_LEN(l->open))
        return NULL; /* cannot happen (above) */
    b = cap_bucket_new(start, cfg->bucket_seconds, (size_t)cfg->max_sources);
    if (!b)
        return NULL;
    b->late = late;
    l->open[l->n_open++] = b;
    return b;
}

static void *lane_main(void *arg)
{
    struct cap_lane *l = arg;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        pthread_mutex_lock(&l->lock);
        ds_time_ns t0 = ds_time_monotonic();
        while (!l->head && !l->quit)
            pthread_cond_wait(&l->cond, &l->lock);
        l->lane_waited += ds_time_monotonic() - t0;
        struct cap_lane_block *blk = l->head;
        if (blk) {
            l->head = blk->next;
            if (!l->head)
                l->tail = NULL;
        }
        pthread_mutex_unlock(&l->lock);
        if (!blk)
            break;
        for (unsigned i = 0; i < blk->n; i++) {
            struct cap_lane_item *x = &blk->item[i];
            struct cap_bucket *b = lane_bucket(l, x->start, x->late);
            if (!b)
                continue; /* no memory for a bucket: lost, as in the worker's bucket_for */
            cap_pipe_push(&l->pipe, &x->p, b, x->prefix, x->h);
        }
        if (blk->sync)
            lane_hand_over(l, blk->watermark, blk->late_due, blk->evict_start);
        if (l->n_open) {
            const struct cap_bucket *b = l->open[l->n_open - 1];
            atomic_store_explicit(&l->newest_start, b->start, memory_order_relaxed);
            atomic_store_explicit(&l->newest_sources, b->src.n, memory_order_relaxed);
        }
        pthread_mutex_lock(&l->lock);
        bool sync = blk->sync;
        blk->n = 0;
        blk->sync = false;
        blk->next = l->spare;
        l->spare = blk;
        if (sync)
            l->syncs_done++;
        pthread_cond_broadcast(&l->cond);
        pthread_mutex_unlock(&l->lock);
    }
    return NULL;
}

/* The worker's block to fill: a spare one, or a new one while there are fewer than LANE_BLOCKS,
 * else it waits for the lane to finish one. */
static struct cap_lane_block *lane_fill(struct cap_lane *l)
{
    if (l->fill)
        return l->fill;
    pthread_mutex_lock(&l->lock);
    ds_time_ns t0 = ds_time_monotonic();
    while (!l->spare && l->n_blocks >= LANE_BLOCKS)
        pthread_cond_wait(&l->cond, &l->lock);
    l->worker_waited += ds_time_monotonic() - t0;
    struct cap_lane_block *blk = l->spare;
    if (blk) {
        l->spare = blk->next;
    } else if ((blk = malloc(sizeof(*blk)))) {
        l->n_blocks++;
    }
    pthread_mutex_unlock(&l->lock);
    if (blk) {
        blk->n = 0;
        blk->sync = false;
        blk->next = NULL;
    }
    l->fill = blk;
    return blk;
}

static void lane_send(struct cap_lane *l)
{
    struct cap_lane_block *blk = l->fill;

    l->fill = NULL;
    blk->next = NULL;
    pthread_mutex_lock(&l->lock);
    if (l->tail)
        l->tail->next = blk;
    else
        l->head = blk;
    l->tail = blk;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

/* ---- the worker's side */

unsigned cap_lanes_start(struct cap_worker *w, unsigned n)
{
    w->lanes = n > 1 ? calloc(n - 1, sizeof(*w->lanes)) : NULL;
    w->n_lanes = 1;
    for (unsigned i = 0; w->lanes && i + 1 < n; i++) {
        struct cap_lane *l = &w->lanes[i];
        l->w = w;
        pthread_mutex_init(&l->lock, NULL);
        pthread_cond_init(&l->cond, NULL);
        atomic_init(&l->newest_start, -1);
        atomic_init(&l->newest_sources, 0);
        if (pthread_create(&l->thread, NULL, lane_main, l) != 0) {
            pthread_cond_destroy(&l->cond);
            pthread_mutex_destroy(&l->lock);
            break;
        }
        l->started = true;
        w->n_lanes++;
    }
    return w->n_lanes;
}

bool cap_lanes_push(struct cap_worker *w, unsigned lane, const struct cap_pkt *p, int64_t start,
                    bool late, int prefix, uint64_t h)
{
    struct cap_lane *l = &w->lanes[lane - 1];
    struct cap_lane_block *blk = lane_fill(l);

    if (!blk)
        return false;
    blk->item[blk->n++] = (struct cap_lane_item){*p, start, h, prefix, late};
    if (blk->n == CAP_LANE_BLOCK)
        lane_send(l);
    return true;
}

struct cap_bucket *cap_lanes_sync(struct cap_worker *w, int64_t watermark, bool late_due,
                                  int64_t evict_start)
{
    struct cap_bucket *parts = NULL;

    for (unsigned i = 0; i + 1 < w->n_lanes; i++) {
        struct cap_lane *l = &w->lanes[i];
        struct cap_lane_block *blk;
        while (!(blk = lane_fill(l)))
            ds_sleep_ns(1000000); /* no memory for a block: try again */
        blk->sync = true;
        blk->watermark = watermark;
        blk->late_due = late_due;
        blk->evict_start = evict_start;
        lane_send(l);
        l->syncs_sent++;
    }
    for (unsigned i = 0; i + 1 < w->n_lanes; i++) {
        struct cap_lane *l = &w->lanes[i];
        pthread_mutex_lock(&l->lock);
        while (l->syncs_done < l->syncs_sent)
            pthread_cond_wait(&l->cond, &l->lock);
        while (l->out) {
            struct cap_bucket *b = l->out;
            l->out = b->lane_parts;
            b->lane_parts = parts;
            parts = b;
        }
        pthread_mutex_unlock(&l->lock);
    }
    return parts;
}

void cap_lanes_attach(struct cap_bucket **parts, struct cap_bucket *b)
{
    while (*parts) {
        struct cap_bucket *x = *parts;
        if (x->start != b->start) {
            parts = &x->lane_parts;
            continue;
        }
        *parts = x->lane_parts;
        x->lane_parts = b->lane_parts;
        b->lane_parts = x;
    }
}

uint64_t cap_lanes_sources(struct cap_worker *w, int64_t start)
{
    uint64_t n = 0;

    for (unsigned i = 0; i + 1 < w->n_lanes; i++) {
        if (atomic_load_explicit(&w->lanes[i].newest_start, memory_order_relaxed) == start)
            n += atomic_load_explicit(&w->lanes[i].newest_sources, memory_order_relaxed);
    }
    return n;
}

void cap_lanes_stop(struct cap_worker *w)
{
    for (unsigned i = 0; i + 1 < w->n_lanes; i++) {
        struct cap_lane *l = &w->lanes[i];
        pthread_mutex_lock(&l->lock);
        l->quit = true;
        pthread_cond_broadcast(&l->cond);
        pthread_mutex_unlock(&l->lock);
        pthread_join(l->thread, NULL);
        ds_log(DS_LOG_DEBUG, "capture",
               "%s: aggregation thread %u waited %.2f s for packets; the reader waited %.2f s "
               "for it",
               w->src.name, i + 1, (double)l->lane_waited / 1e9, (double)l->worker_waited / 1e9);
        /* a final sync handed every bucket over; whatever is left was never synced */
        for (unsigned j = 0; j < l->n_open; j++)
            cap_bucket_free(l->open[j]);
        while (l->out) {
            struct cap_bucket *b = l->out;
            l->out = b->lane_parts;
            b->lane_parts = NULL;
            cap_bucket_free(b);
        }
        free(l->fill);
        while (l->spare) {
            struct cap_lane_block *b = l->spare;
            l->spare = b->next;
            free(b);
        }
        while (l->head) {
            struct cap_lane_block *b = l->head;
            l->head = b->next;
            free(b);
        }
        pthread_cond_destroy(&l->cond);
        pthread_mutex_destroy(&l->lock);
    }
    free(w->lanes);
    w->lanes = NULL;
    w->n_lanes = 1;
}
