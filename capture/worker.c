/* A capture worker: one thread per source. Reads frames, decodes, classifies, aggregates into
 * its own open buckets and hands closed ones to the coordinator. Never touches Redis. */
#include "capture/cap_internal.h"

#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REOPEN_BACKOFF_MIN_NS (250 * 1000000LL)
#define REOPEN_BACKOFF_MAX_NS (10 * DS_NS_PER_SEC)
#define CHECK_EVERY           4096 /* packets between close checks */
#define LATE_PERIOD_NS        DS_NS_PER_SEC

static int64_t bucket_start(const struct ds_config *cfg, ds_time_ns ts)
{
    int64_t sec = ts / DS_NS_PER_SEC;
    int64_t b = cfg->bucket_seconds;

    if (ts < 0 && ts % DS_NS_PER_SEC)
        sec--;
    return sec >= 0 ? sec - sec % b : sec - ((sec % b) + b) % b;
}

/* Aggregates every packet still in the pipeline, in order. */
static void flush_batch(struct cap_worker *w)
{
    cap_pipe_drain(&w->pipe);
}

/* Lane parts left without a bucket of the worker's to go with (not expected): on their own. */
static void hand_over_parts(struct cap_worker *w, struct cap_bucket *parts)
{
    while (parts) {
        struct cap_bucket *b = parts;
        parts = b->lane_parts;
        b->lane_parts = NULL;
        cap_capture_take_part(w->cap, w, b);
    }
}

/* The open bucket for start, created when needed; NULL when none can be had (memory). */
static struct cap_bucket *bucket_for(struct cap_worker *w, int64_t start)
{
    const struct ds_config *cfg = cap_capture_config(w->cap);
    struct cap_bucket *b;

    for (unsigned i = 0; i < w->n_open; i++) {
        if (w->open[i]->start == start)
            return w->open[i];
    }
    if (w->n_open == DS_ARRAY_LEN(w->open)) {
        /* too many open at once (wildly disordered times): hand the oldest over early, once
         * the packets waiting in the batch (which may point at it) are in, the lanes' parts
         * first */
        flush_batch(w);
        unsigned oldest = 0;
        for (unsigned i = 1; i < w->n_open; i++) {
            if (w->open[i]->start < w->open[oldest]->start)
                oldest = i;
        }
        if (w->n_lanes > 1) {
            struct cap_bucket *parts = cap_lanes_sync(w, INT64_MIN, false, w->open[oldest]->start);
            cap_lanes_attach(&parts, w->open[oldest]);
            hand_over_parts(w, parts);
        }
        cap_capture_take_part(w->cap, w, w->open[oldest]);
        w->open[oldest] = w->open[--w->n_open];
    }
    b = cap_bucket_new(start, cfg->bucket_seconds, (size_t)cfg->max_sources);
    if (!b)
        return NULL;
    b->late = start + cfg->bucket_seconds <= w->handed_upto;
    w->open[w->n_open++] = b;
    if (!b->late && start + cfg->bucket_seconds + cfg->lateness_seconds < w->next_due)
        w->next_due = start + cfg->bucket_seconds + cfg->lateness_seconds;
    return b;
}

/* Hands over every open bucket whose end + lateness lies at or before the watermark (all of
 * them when watermark is INT64_MAX), then tells the coordinator how far this worker is done. */
static void hand_over(struct cap_worker *w, int64_t watermark_sec)
{
    const struct ds_config *cfg = cap_capture_config(w->cap);
    int64_t upto;

    flush_batch(w); /* batched packets point at open buckets */
    /* late parts gather packets and go out at most once a second, not one part per packet: a
     * second of the wall clock for an interface, of packet time for a file, so that a file is
     * handed over in the same parts however fast it is read */
    ds_time_ns now = w->src.live                                  ? ds_time_monotonic()
                     : watermark_sec <= 0                         ? 0
                     : watermark_sec >= INT64_MAX / DS_NS_PER_SEC ? INT64_MAX
                                                                  : watermark_sec * DS_NS_PER_SEC;
    bool late_due = now - w->late_at >= LATE_PERIOD_NS;

    if (late_due)
        w->late_at = now;
    struct cap_bucket *parts = NULL;
    if (w->n_lanes > 1) {
        /* the lanes' parts of the same buckets go with the worker's */
        bool any = false;
        for (unsigned i = 0; i < w->n_open && !any; i++) {
            struct cap_bucket *b = w->open[i];
            any = watermark_sec == INT64_MAX || (b->late && late_due) ||
                  b->start + b->seconds + cfg->lateness_seconds <= watermark_sec;
        }
        if (any || watermark_sec == INT64_MAX)
            parts = cap_lanes_sync(w, watermark_sec, late_due, INT64_MIN);
    }
    for (;;) {
        int pick = -1;
        for (unsigned i = 0; i < w->n_open; i++) {
            struct cap_bucket *b = w->open[i];
            bool due = watermark_sec == INT64_MAX || (b->late && late_due) ||
                       b->start + b->seconds + cfg->lateness_seconds <= watermark_sec;
            if (due && (pick < 0 || b->start < w->open[pick]->start))
                pick = (int)i;
        }
        if (pick < 0)
            break;
        struct cap_bucket *b = w->open[pick];
        w->open[pick] = w->open[--w->n_open];
        if (b->late)
            b->tot.late = b->tot.packets;
        cap_lanes_attach(&parts, b);
        cap_capture_take_part(w->cap, w, b);
    }
    hand_over_parts(w, parts);
    w->next_due = INT64_MAX;
    for (unsigned i = 0; i < w->n_open; i++) {
        int64_t due = w->open[i]->start + w->open[i]->seconds + cfg->lateness_seconds;
        if (w->open[i]->late)
            continue;
        if (due < w->next_due)
            w->next_due = due;
    }
    upto = watermark_sec == INT64_MAX ? INT64_MAX : watermark_sec - cfg->lateness_seconds;
    if (upto > w->handed_upto) {
        w->handed_upto = upto;
        cap_capture_progress(w->cap, w, upto);
    }
}

/* Adds the worker's own counts of counted packets to the shared ones (live_lock held). */
static void flush_seen(struct cap_worker *w)
{
    w->live_seen += w->seen_local;
    w->seen_local = 0;
    for (int i = 0; i < DS_CLASS_N; i++) {
        w->live_seen_class[i] += w->seen_class_local[i];
        w->seen_class_local[i] = 0;
    }
}

/* Samples a counted packet for the live map: a token bucket of live.max_events_per_second per
 * worker share, starting full and refilled from the clock only while starved — then every 256
 * packets, or sooner once a millisecond of packet time has passed — so the common path is a
 * counter increment with no lock and no clock read, and a darknet quieter than the cap (a few
 * packets a second) has every packet on the map rather than one burst in every 256 packets. */
static void live_sample(struct cap_worker *w, const struct cap_pkt *p)
{
    const struct ds_config *cfg = cap_capture_config(w->cap);
    double rate = (double)cfg->live_max_eps / w->cap_workers;

    w->seen_local++;
    w->seen_class_local[p->cls]++;
    if (rate <= 0)
        return;
    if (w->tokens < 1) {
        if (++w->token_check < 256 && p->ts - w->token_ts < 1000000)
            return;
        w->token_check = 0;
        w->token_ts = p->ts;
        ds_time_ns now = ds_time_monotonic();
        w->tokens += (double)(now - w->tokens_at) / 1e9 * rate;
        w->tokens_at = now;
        if (w->tokens > rate / 4 + 1)
            w->tokens = rate / 4 + 1;
        if (w->tokens < 1)
            return;
    }
    w->tokens -= 1;
    pthread_mutex_lock(&w->live_lock);
    if (w->live_n < CAP_LIVE_RING) {
        struct cap_live_event *e = &w->live[w->live_n++];
        e->ts = p->ts;
        e->src = p->src;
        e->dport = p->has_ports ? p->dport : 0;
        e->proto = p->proto;
        e->cls = p->cls;
        e->tools = p->tools;
    } else {
        w->live_dropped++;
    }
    flush_seen(w);
    pthread_mutex_unlock(&w->live_lock);
}

static void process(struct cap_worker *w, const struct cap_frame *f, int64_t *watermark)
{
    const struct ds_config *cfg = cap_capture_config(w->cap);
    struct cap_pkt p;
    struct cap_bucket *b;
    int reason, prefix = -1;
    enum cap_outcome o = cap_decode(f, &p, &reason);
    int64_t start;

    if (o == CAP_MALFORMED && reason == DS_MAL_BAD_TIMESTAMP) {
        /* no usable time: count it in the newest open bucket, or the watermark's */
        start = w->n_open ? w->open[w->n_open - 1]->start
                          : bucket_start(cfg, *watermark * DS_NS_PER_SEC);
    } else {
        start = bucket_start(cfg, p.ts);
        if (p.ts / DS_NS_PER_SEC > *watermark)
            *watermark = p.ts / DS_NS_PER_SEC;
    }
    b = bucket_for(w, start);
    if (!b)
        return;
    if (o == CAP_COUNTED)
        o = cap_darknet_check(&cfg->darknet, &cfg->darknet_exclude, &p, &reason, &prefix);
    switch (o) {
    case CAP_MALFORMED:
        cap_bucket_count_malformed(b, reason);
        break;
    case CAP_IGNORED:
        cap_bucket_count_ignored(b, reason);
        break;
    case CAP_COUNTED: {
        uint64_t h = ds_addr_hash(&p.src);
        unsigned lane = w->n_lanes > 1 ? cap_lane_of(h, w->n_lanes) : 0;
        live_sample(w, &p);
        if (lane == 0 || !cap_lanes_push(w, lane, &p, start, b->late, prefix, h))
            cap_pipe_push(&w->pipe, &p, b, prefix, h);
        break;
    }
    }
}

/* Live: reopen a lost interface with backoff, as Suricata's source-pcap does. */
static bool reopen(struct cap_worker *w)
{
    ds_time_ns backoff = REOPEN_BACKOFF_MIN_NS;
    char err[512];

    ds_log(DS_LOG_WARN, "capture", "interface %s: %s; reopening", w->src.name, w->src.error);
    w->src.ops->close(&w->src);
    while (!cap_capture_stopping(w->cap)) {
        if (w->src.ops->open(&w->src, err, sizeof(err)) == 0) {
            w->src.reopens++;
            ds_log(DS_LOG_INFO, "capture", "interface %s: reopened", w->src.name);
            return true;
        }
        ds_log(DS_LOG_DEBUG, "capture", "%s", err);
        for (ds_time_ns slept = 0; slept < backoff && !cap_capture_stopping(w->cap);
             slept += 100 * 1000000LL)
            ds_sleep_ns(100 * 1000000LL);
        /* the wall clock still closes buckets while the interface is gone */
        hand_over(w, ds_time_now() / DS_NS_PER_SEC);
        backoff = backoff * 2 > REOPEN_BACKOFF_MAX_NS ? REOPEN_BACKOFF_MAX_NS : backoff * 2;
    }
    return false;
}

/* Copies the counters the coordinator publishes with the sensor record. */
static void publish_stats(struct cap_worker *w)
{
    pthread_mutex_lock(&w->live_lock);
    flush_seen(w);
    if (w->n_open) {
        const struct cap_bucket *b = w->open[w->n_open - 1];
        w->live_bucket_start = b->start;
        w->live_bucket_sources = b->src.n + cap_lanes_sources(w, b->start);
    }
    w->stat_frames = w->frames;
    w->stat_received = w->src.kernel_received;
    w->stat_dropped = w->src.kernel_dropped;
    w->stat_ifdropped = w->src.ifdrops;
    w->stat_reopens = w->src.reopens;
    pthread_mutex_unlock(&w->live_lock);
}

void *cap_worker_main(void *arg)
{
    struct cap_worker *w = arg;
    struct cap_frame f;
    int64_t watermark = INT64_MIN / 2;
    uint64_t since_check = 0;
    bool failed = false;

    ds_time_ns started = ds_time_monotonic();

    w->tokens_at = started;
    w->tokens = (double)cap_capture_config(w->cap)->live_max_eps / w->cap_workers / 4 + 1;
    w->next_due = INT64_MAX;
    w->n_lanes = 1;
    {
        const struct ds_config *cfg = cap_capture_config(w->cap);
        unsigned n = (unsigned)(w->src.live ? cfg->threads_per_interface : cfg->threads_per_file);
        if (n == 0) {
            unsigned files = cfg->n_files ? cfg->n_files : 1;
            n = ds_parallel_cpus() / files;
        }
        n = n < 1 ? 1 : n > CAP_LANES_MAX ? CAP_LANES_MAX : n;
        if (cap_lanes_start(w, n) > 1)
            ds_log(DS_LOG_DEBUG, "capture", "%s: %u aggregation threads", w->src.name, w->n_lanes);
    }
    while (!cap_capture_stopping(w->cap)) {
        enum cap_next r = w->src.ops->next(&w->src, &f);
        if (r == CAP_NEXT_PACKET) {
            w->frames++;
            process(w, &f, &watermark);
            /* a bucket is due, or now and then to report progress */
            if (watermark < w->next_due && ++since_check < CHECK_EVERY)
                continue;
        } else if (r == CAP_NEXT_END) {
            break;
        } else if (r == CAP_NEXT_ERROR) {
            if (!w->src.live) {
                ds_log(DS_LOG_ERROR, "capture", "%s: read error after %llu frames: %s", w->src.name,
                       (unsigned long long)w->frames, w->src.error);
                failed = true;
                break;
            }
            if (!reopen(w))
                break;
        }
        since_check = 0;
        if (w->src.live) {
            ds_time_ns now = ds_time_now();
            if (now / DS_NS_PER_SEC > watermark)
                watermark = now / DS_NS_PER_SEC;
            /* an idle darknet still produces (empty) buckets: the sensor is seen alive */
            (void)bucket_for(w, bucket_start(cap_capture_config(w->cap), now));
            cap_source_live_stats(&w->src);
        }
        publish_stats(w);
        hand_over(w, watermark);
    }
    ds_log(DS_LOG_INFO, "capture", "%s: %llu frames read in %.2f s", w->src.name,
           (unsigned long long)w->frames, (double)(ds_time_monotonic() - started) / 1e9);
    hand_over(w, INT64_MAX);
    cap_lanes_stop(w);
    if (w->src.live)
        cap_source_live_stats(&w->src);
    publish_stats(w);
    cap_capture_finished(w->cap, w, failed);
    return NULL;
}
