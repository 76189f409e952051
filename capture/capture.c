/* The capture coordinator: starts a worker per source, merges their parts per bucket, closes a
 * bucket once every source is past it, and hands it to the flusher. */
#include "capture/cap_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <pcap/pcap.h>
#include <sys/random.h>
#include <unistd.h>
#include <time.h>

#define PENDING_MAX 64

/* What a worker tells the coordinator, queued in the order it happened: a part handed over (b),
 * or how far the worker is done (b NULL, upto). The coordinator replays the queue in that order,
 * so whether a part is late does not depend on how many events it takes in at once. */
struct cap_part {
    struct cap_bucket *b;
    unsigned worker;
    int64_t upto;
    struct cap_part *next;
};

struct cap_capture {
    const struct ds_config *cfg;
    _Atomic bool stop; /* set by signal handlers (lock-free), read by every thread */
    struct ds_geoip *geo;
    struct cap_worker *workers;
    unsigned n_workers;
    struct cap_flusher *flusher;
    struct cap_live *live;
    uint64_t run_id, part_seq;
    struct ds_user user; /* the account to switch to when started as root */
    bool switch_user;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct cap_part *parts; /* guarded by lock: handed over, not yet merged */

    /* coordinator thread only */
    int64_t *seen_upto; /* per worker: its progress as replayed so far */
    int64_t *done_upto; /* per worker: its done_upto when the last events were taken */
    struct cap_bucket *pending[PENDING_MAX];
    unsigned n_pending;
    int64_t closed_upto; /* buckets ending at or before this were closed */
};

const struct ds_config *cap_capture_config(const struct cap_capture *c)
{
    return c->cfg;
}

bool cap_capture_stopping(const struct cap_capture *c)
{
    return c->stop;
}

void cap_capture_stop(struct cap_capture *c)
{
    c->stop = true;
    for (unsigned i = 0; i < c->n_workers; i++) {
        if (c->workers[i].src.pcap && c->workers[i].src.live)
            pcap_breakloop(c->workers[i].src.pcap);
    }
}

void cap_capture_take_part(struct cap_capture *c, struct cap_worker *w, struct cap_bucket *b)
{
    struct cap_part *p = malloc(sizeof(*p));

    if (!p) {
        ds_log(DS_LOG_ERROR, "capture", "out of memory: bucket part of %llu packets dropped",
               (unsigned long long)b->tot.packets);
        cap_bucket_free(b);
        return;
    }
    *p = (struct cap_part){.b = b, .worker = w->id};
    pthread_mutex_lock(&c->lock);
    p->next = c->parts;
    c->parts = p;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

/* Queues the progress as an event; without memory for one, done_upto alone still carries it (the
 * coordinator reads it after each batch), only no longer in order with the parts. */
static void progress(struct cap_capture *c, struct cap_worker *w, int64_t upto, bool finished,
                     bool failed)
{
    struct cap_part *p = malloc(sizeof(*p));

    pthread_mutex_lock(&c->lock);
    if (p) {
        *p = (struct cap_part){.worker = w->id, .upto = upto, .next = c->parts};
        c->parts = p;
    }
    w->done_upto = upto;
    if (finished) {
        w->finished = true;
        w->failed = failed;
    }
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

void cap_capture_progress(struct cap_capture *c, struct cap_worker *w, int64_t upto)
{
    progress(c, w, upto, false, false);
}

void cap_capture_finished(struct cap_capture *c, struct cap_worker *w, bool failed)
{
    progress(c, w, INT64_MAX, true, failed);
}

static int worker_init(struct cap_capture *c, struct cap_worker *w, const char *name, bool live,
                       char *err, size_t errlen)
{
    w->cap = c;
    w->src.cfg = c->cfg;
    w->src.stop = &c->stop;
    w->src.ops = live ? &cap_source_live_ops : &cap_source_file_ops;
    w->src.name = strdup(name);
    w->handed_upto = INT64_MIN;
    w->done_upto = INT64_MIN;
    w->cap_workers = c->cfg->n_interfaces + c->cfg->n_files;
    pthread_mutex_init(&w->live_lock, NULL);
    w->live_bucket_start = -1;
    if (!w->src.name)
        return -ENOMEM;
    return w->src.ops->open(&w->src, err, errlen) < 0 ? -EINVAL : 0;
}

int cap_capture_check(const struct ds_config *cfg, char *err, size_t errlen)
{
    if (cfg->n_interfaces + cfg->n_files == 0) {
        snprintf(err, errlen,
                 "capture: nothing to read: give --read FILE or --interface IF "
                 "(sources.files, sources.interfaces)");
        return -EINVAL;
    }
    if (cfg->darknet.n == 0) {
        snprintf(err, errlen, "capture: no darknet prefixes: give --darknet CIDR (key 'darknet')");
        return -EINVAL;
    }
    if (cfg->bpf && *cfg->bpf) {
        /* syntax is checked once here, so a typo is a configuration error, not a failed source */
        pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
        struct bpf_program prog;
        int rc = dead ? pcap_compile(dead, &prog, cfg->bpf, 1, PCAP_NETMASK_UNKNOWN) : -1;
        if (rc < 0) {
            snprintf(err, errlen, "%s: key 'capture.bpf': expected a BPF filter, got \"%s\" (%s)",
                     cfg->source_file ? cfg->source_file : "command line", cfg->bpf,
                     dead ? pcap_geterr(dead) : "out of memory");
        } else {
            pcap_freecode(&prog);
        }
        if (dead)
            pcap_close(dead);
        if (rc < 0)
            return -EINVAL;
    }
    return 0;
}

struct cap_capture *cap_capture_new(const struct ds_config *cfg, char *err, size_t errlen)
{
    struct cap_capture *c = calloc(1, sizeof(*c));
    unsigned n = cfg->n_interfaces + cfg->n_files;

    if (!c)
        goto nomem;
    c->cfg = cfg;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->closed_upto = INT64_MIN;
    if (getrandom(&c->run_id, sizeof(c->run_id), 0) != sizeof(c->run_id))
        c->run_id = (uint64_t)ds_time_now() ^ (uint64_t)getpid() << 32;
    if (n == 0 || cfg->darknet.n == 0) {
        snprintf(err, errlen, "capture: no sources or no darknet (see cap_capture_check())");
        goto fail;
    }
    c->workers = calloc(n, sizeof(*c->workers));
    c->seen_upto = malloc(n * sizeof(*c->seen_upto));
    c->done_upto = malloc(n * sizeof(*c->done_upto));
    if (!c->workers || !c->seen_upto || !c->done_upto)
        goto nomem;
    for (unsigned i = 0; i < n; i++)
        c->seen_upto[i] = INT64_MIN;
    for (unsigned i = 0; i < n; i++) {
        bool live = i < cfg->n_interfaces;
        const char *name = live ? cfg->interfaces[i] : cfg->files[i - cfg->n_interfaces];
        c->workers[i].id = i;
        c->n_workers++;
        if (worker_init(c, &c->workers[i], name, live, err, errlen) < 0)
            goto fail;
    }
    if (cfg->n_geoip_city || (cfg->geoip_asn && *cfg->geoip_asn)) {
        c->geo =
            ds_geoip_open((const char *const *)cfg->geoip_city, cfg->n_geoip_city,
                          cfg->geoip_asn && *cfg->geoip_asn ? cfg->geoip_asn : NULL, err, errlen);
        if (!c->geo)
            goto fail;
    }
    if (geteuid() == 0) {
        if (ds_user_resolve(cfg->user, &c->user, err, errlen) < 0)
            goto fail;
        c->switch_user = true;
    }
    c->flusher = cap_flusher_new(cfg, c->geo, c->switch_user ? &c->user : NULL, err, errlen);
    if (!c->flusher)
        goto fail;
    c->live = cap_live_new(cfg, c->geo, c->workers, c->n_workers, c->switch_user ? &c->user : NULL);
    if (!c->live)
        goto nomem;
    return c;
nomem:
    snprintf(err, errlen, "capture: out of memory");
fail:
    cap_capture_free(c);
    return NULL;
}

static struct cap_bucket *pending_find(struct cap_capture *c, int64_t start)
{
    for (unsigned i = 0; i < c->n_pending; i++) {
        if (c->pending[i]->start == start)
            return c->pending[i];
    }
    return NULL;
}

static void flush_bucket(struct cap_capture *c, struct cap_bucket *b)
{
    /* unique per run and part; a retried write of the same part reuses it */
    cap_flusher_push(c->flusher, b, c->run_id + ++c->part_seq);
}

static void close_ready(struct cap_capture *c, int64_t done_upto);

/* The least progress over the workers, as replayed. */
static int64_t seen_min(const struct cap_capture *c)
{
    int64_t done = INT64_MAX;

    for (unsigned i = 0; i < c->n_workers; i++) {
        if (c->seen_upto[i] < done)
            done = c->seen_upto[i];
    }
    return done;
}

/* Replays the workers' events in the order they happened: merges handed-over parts (parts of
 * buckets already closed go out as late parts) and closes the buckets every worker is done with. */
static void absorb(struct cap_capture *c, struct cap_part *list)
{
    /* events were pushed LIFO: reverse so they keep their order */
    struct cap_part *rev = NULL;
    while (list) {
        struct cap_part *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev) {
        struct cap_part *p = rev;
        struct cap_bucket *b = p->b, *m;
        rev = p->next;
        if (!b) {
            if (p->upto > c->seen_upto[p->worker])
                c->seen_upto[p->worker] = p->upto;
            free(p);
            close_ready(c, seen_min(c));
            continue;
        }
        free(p);
        if (b->lane_parts) {
            /* one part again, as from one thread (lane.c): the biggest takes in the others,
             * so the fewest sources are inserted */
            struct cap_bucket *parts = b, *big = b;
            for (struct cap_bucket *x = b->lane_parts; x; x = x->lane_parts) {
                if (x->src.n > big->src.n)
                    big = x;
            }
            while (parts) {
                struct cap_bucket *x = parts;
                parts = x->lane_parts;
                x->lane_parts = NULL;
                if (x != big) {
                    cap_bucket_merge(big, x);
                    cap_bucket_free(x);
                }
            }
            b = big;
        }
        if (b->start + b->seconds <= c->closed_upto) {
            b->late = true;
            b->tot.late = b->tot.packets;
            flush_bucket(c, b);
        } else if ((m = pending_find(c, b->start))) {
            cap_bucket_merge(m, b);
            cap_bucket_free(b);
        } else if (c->n_pending < PENDING_MAX) {
            b->late = false;
            c->pending[c->n_pending++] = b;
        } else {
            /* more open buckets than expected: close the oldest now */
            b->late = false;
            flush_bucket(c, b);
        }
    }
}

static void close_ready(struct cap_capture *c, int64_t done_upto)
{
    for (;;) {
        int pick = -1;
        for (unsigned i = 0; i < c->n_pending; i++) {
            struct cap_bucket *b = c->pending[i];
            if (b->start + b->seconds <= done_upto &&
                (pick < 0 || b->start < c->pending[pick]->start))
                pick = (int)i;
        }
        if (pick < 0)
            return;
        struct cap_bucket *b = c->pending[pick];
        c->pending[pick] = c->pending[--c->n_pending];
        if (b->start + b->seconds > c->closed_upto)
            c->closed_upto = b->start + b->seconds;
        flush_bucket(c, b);
    }
}

static void *worker_thread(void *arg)
{
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    return cap_worker_main(arg);
}

/* Per-source counters (kernel drops as 64-bit totals) for the sensor record. */
static void publish_source_stats(struct cap_capture *c)
{
    json_t *list = json_array();

    for (unsigned i = 0; i < c->n_workers; i++) {
        struct cap_worker *w = &c->workers[i];
        json_t *o = json_object();
        pthread_mutex_lock(&w->live_lock);
        json_object_set_new(o, "name", json_string(w->src.name));
        json_object_set_new(o, "kind", json_string(w->src.ops->kind));
        json_object_set_new(o, "frames", json_integer((json_int_t)w->stat_frames));
        if (w->src.live) {
            json_object_set_new(o, "kernel_received", json_integer((json_int_t)w->stat_received));
            json_object_set_new(o, "kernel_dropped", json_integer((json_int_t)w->stat_dropped));
            json_object_set_new(o, "interface_dropped",
                                json_integer((json_int_t)w->stat_ifdropped));
            json_object_set_new(o, "reopens", json_integer((json_int_t)w->stat_reopens));
        }
        pthread_mutex_unlock(&w->live_lock);
        json_array_append_new(list, o);
    }
    cap_flusher_set_sources(c->flusher, list);
}

int cap_capture_run(struct cap_capture *c)
{
    bool failed = false;
    uint64_t unwritten;
    unsigned started = 0;

    if (cap_flusher_start(c->flusher) < 0 || cap_live_start(c->live) < 0) {
        ds_log(DS_LOG_ERROR, "capture", "cannot start threads");
        return CAP_EXIT_SOURCE;
    }
    for (unsigned i = 0; i < c->n_workers; i++) {
        ds_log(DS_LOG_INFO, "capture", "reading %s %s (link type %d)", c->workers[i].src.ops->kind,
               c->workers[i].src.name, c->workers[i].src.dlt);
        if (pthread_create(&c->workers[i].thread, NULL, worker_thread, &c->workers[i]) == 0) {
            c->workers[i].started = true;
            started++;
        } else {
            cap_capture_finished(c, &c->workers[i], true);
        }
    }
    pthread_mutex_lock(&c->lock);
    for (;;) {
        struct timespec until;
        bool all_finished = true;
        struct cap_part *parts;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 200 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        if (!c->parts)
            pthread_cond_timedwait(&c->cond, &c->lock, &until);
        parts = c->parts;
        c->parts = NULL;
        for (unsigned i = 0; i < c->n_workers; i++) {
            /* only ahead of the replay when an event could not be queued (memory) */
            c->done_upto[i] = c->workers[i].done_upto;
            all_finished &= c->workers[i].finished;
        }
        pthread_mutex_unlock(&c->lock);
        absorb(c, parts);
        for (unsigned i = 0; i < c->n_workers; i++) {
            if (c->done_upto[i] > c->seen_upto[i])
                c->seen_upto[i] = c->done_upto[i];
        }
        close_ready(c, seen_min(c));
        publish_source_stats(c);
        pthread_mutex_lock(&c->lock);
        if (all_finished && !c->parts)
            break;
    }
    pthread_mutex_unlock(&c->lock);
    close_ready(c, INT64_MAX);
    for (unsigned i = 0; i < c->n_workers; i++) {
        if (c->workers[i].started)
            pthread_join(c->workers[i].thread, NULL);
        c->workers[i].started = false;
        failed |= c->workers[i].failed;
    }
    cap_live_stop(c->live);
    publish_source_stats(c);
    unwritten = cap_flusher_finish(c->flusher);
    if (unwritten) {
        ds_log(DS_LOG_ERROR, "capture",
               "Redis stayed unreachable for %llds: %llu buckets were not written",
               (long long)c->cfg->redis_flush_timeout, (unsigned long long)unwritten);
        return CAP_EXIT_REDIS;
    }
    return failed ? CAP_EXIT_SOURCE : CAP_EXIT_OK;
}

void cap_capture_free(struct cap_capture *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < c->n_workers; i++) {
        struct cap_worker *w = &c->workers[i];
        if (w->src.ops)
            w->src.ops->close(&w->src);
        for (unsigned j = 0; j < w->n_open; j++)
            cap_bucket_free(w->open[j]);
        free(w->src.name);
        pthread_mutex_destroy(&w->live_lock);
    }
    for (unsigned i = 0; i < c->n_pending; i++)
        cap_bucket_free(c->pending[i]);
    while (c->parts) {
        struct cap_part *p = c->parts;
        c->parts = p->next;
        cap_bucket_free(p->b);
        free(p);
    }
    cap_live_free(c->live);
    cap_flusher_free(c->flusher);
    free(c->workers);
    free(c->seen_upto);
    free(c->done_upto);
    ds_geoip_free(c->geo);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c);
}

int cap_capture_drop_privileges(struct cap_capture *c, char *err, size_t errlen)
{
    /* the embedded Redis is started (as the same account) while root can still do so */
    cap_flusher_connect(c->flusher);
    if (!c->switch_user)
        return 0;
    return ds_privs_drop(&c->user, c->cfg->n_interfaces > 0, err, errlen);
}
