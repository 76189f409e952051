/* The flusher thread: turns closed buckets into struct rds_bucket (GeoIP, countries, HyperLogLog
 * element lists) and writes them through redis/, retrying with backoff while Redis is away. The
 * queue is bounded by redis.max_pending_buckets; the oldest waiting bucket is dropped (counted
 * and logged) when it is full. */
#include "capture/cap_internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MIN_NS (100 * 1000000LL)
#define BACKOFF_MAX_NS (5 * DS_NS_PER_SEC)

#define THREADS_MAX 64

struct cc_acc {
    char cc[3];
    uint64_t packets, sources;
    uint64_t *elems;
    size_t n, cap;
};

/* Countries of a bucket's sources: packets, sources and their HyperLogLog elements. */
struct cc_table {
    struct cc_acc *cc;
    size_t n, cap;
    uint16_t index[26 * 26]; /* "AA".."ZZ" -> index in cc + 1; 0: not yet */
};

/* One flush thread's GeoIP counts, and the countries it saw in the current flush. */
struct geo_thread {
    uint64_t lookups, hits;
    struct cc_table cc;
    int err;
};

struct cap_flusher {
    const struct ds_config *cfg;
    const struct ds_geoip *geo;
    unsigned threads;                     /* GeoIP and record encoding (capture.flush_threads) */
    struct geo_thread geo_t[THREADS_MAX]; /* [i]: flush thread i's, used by it alone */
    struct rds_conn *conn;
    pthread_t thread;
    bool started;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct cap_job *head, *tail; /* guarded by lock */
    size_t n_jobs;               /* guarded by lock */
    bool closing;                /* guarded by lock */
    bool backpressure;           /* only files: a full queue makes push wait while connected */
    pthread_cond_t space;        /* signalled when a job leaves the queue */
    uint64_t written, dropped, dropped_packets, unwritten; /* guarded by lock */
    json_t *sources;                                       /* guarded by lock */
    int64_t last_bucket;
    uint64_t packets_total;
};

struct cap_flusher *cap_flusher_new(const struct ds_config *cfg, const struct ds_geoip *geo,
                                    const struct ds_user *user, char *err, size_t errlen)
{
    struct cap_flusher *f = calloc(1, sizeof(*f));

    if (!f) {
        snprintf(err, errlen, "capture: out of memory");
        return NULL;
    }
    f->cfg = cfg;
    f->geo = geo;
    if (cfg->flush_threads > 0) {
        f->threads = (unsigned)cfg->flush_threads;
    } else {
        /* the interfaces' capture threads keep their cores */
        unsigned cpus = ds_parallel_cpus();
        unsigned live = cfg->n_interfaces * (unsigned)cfg->threads_per_interface;
        f->threads = cpus > live ? cpus - live : 1;
    }
    if (f->threads > THREADS_MAX)
        f->threads = THREADS_MAX;
    f->backpressure = cfg->n_interfaces == 0;
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    pthread_cond_init(&f->space, NULL);
    f->conn = rds_conn_new(cfg->redis_url, cfg->state_dir, user, err, errlen);
    if (!f->conn) {
        cap_flusher_free(f);
        return NULL;
    }
    return f;
}

static void job_free(struct cap_job *j)
{
    if (!j)
        return;
    cap_bucket_free(j->b);
    free(j);
}

void cap_flusher_push(struct cap_flusher *f, struct cap_bucket *b, uint64_t flush_id)
{
    struct cap_job *j = calloc(1, sizeof(*j));

    if (!j) {
        ds_log(DS_LOG_ERROR, "flush", "out of memory: bucket %lld dropped", (long long)b->start);
        cap_bucket_free(b);
        return;
    }
    j->b = b;
    j->flush_id = flush_id;
    pthread_mutex_lock(&f->lock);
    /* files: while Redis is there but slower than reading, wait rather than drop (nothing is
     * real-time about a file); interfaces cannot wait, and neither can anyone while Redis is away
     */
    while (f->backpressure && f->n_jobs >= (size_t)f->cfg->redis_max_pending &&
           rds_conn_state(f->conn) == RDS_CONNECTED && !f->closing)
        pthread_cond_wait(&f->space, &f->lock);
    if (f->n_jobs >= (size_t)f->cfg->redis_max_pending && f->head && f->head->next) {
        /* the head may be in the middle of a write: drop the one after it */
        struct cap_job *old = f->head->next;
        f->head->next = old->next;
        if (f->tail == old)
            f->tail = f->head;
        f->n_jobs--;
        f->dropped++;
        f->dropped_packets += old->b->tot.packets;
        ds_log(DS_LOG_ERROR, "flush",
               "queue full (%lld buckets waiting for Redis): bucket %lld with %llu packets dropped",
               (long long)f->cfg->redis_max_pending, (long long)old->b->start,
               (unsigned long long)old->b->tot.packets);
        job_free(old);
    }
    if (f->tail)
        f->tail->next = j;
    else
        f->head = j;
    f->tail = j;
    f->n_jobs++;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

/* ---- export: a cap_bucket seen as an rds_bucket */

struct export
{
    struct cap_bucket *b;
    const struct ds_config *cfg;
    /* sources and victims ordered by shard: [by_shard[k], by_shard[k+1]) is shard k */
    struct cap_src **src_order;
    size_t src_at[RDS_SHARDS + 1];
    struct cap_victim **vic_order;
    size_t vic_at[RDS_SHARDS + 1];
    struct rds_port *ports;
    size_t n_ports;
    struct cc_table cc;
    uint64_t *all;
    size_t n_all; /* entries in all */
    struct rds_hll *hlls;
    size_t n_hlls;
    struct rds_country *countries;
};

static int elems_push(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        uint64_t *nv = realloc(*v, nc * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = x;
    return 0;
}

static struct cc_acc *cc_get(struct cc_table *t, const char *cc)
{
    /* two capital letters (what GeoIP gives) through the index; anything else ("??") by name */
    bool letters = cc[0] >= 'A' && cc[0] <= 'Z' && cc[1] >= 'A' && cc[1] <= 'Z' && !cc[2];
    unsigned slot = letters ? (unsigned)(cc[0] - 'A') * 26 + (unsigned)(cc[1] - 'A') : 0;

    if (letters && t->index[slot])
        return &t->cc[t->index[slot] - 1];
    for (size_t i = 0; !letters && i < t->n; i++) {
        if (strcmp(t->cc[i].cc, cc) == 0)
            return &t->cc[i];
    }
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 64;
        struct cc_acc *n = realloc(t->cc, nc * sizeof(*n));
        if (!n)
            return NULL;
        t->cc = n;
        t->cap = nc;
    }
    memset(&t->cc[t->n], 0, sizeof(t->cc[0]));
    snprintf(t->cc[t->n].cc, 3, "%s", cc);
    if (letters)
        t->index[slot] = (uint16_t)(t->n + 1);
    return &t->cc[t->n++];
}

static void cc_table_fini(struct cc_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->cc[i].elems);
    free(t->cc);
    memset(t, 0, sizeof(*t));
}

/* Counts a source in its country. */
static int cc_add(struct cc_table *t, const struct cap_src *s, uint64_t h)
{
    struct cc_acc *c = cc_get(t, s->cc[0] ? s->cc : "??");

    if (!c || elems_push(&c->elems, &c->n, &c->cap, h) < 0)
        return -ENOMEM;
    c->packets += s->packets;
    c->sources++;
    return 0;
}

/* Adds the countries of src to dst (src is left empty). */
static int cc_table_merge(struct cc_table *dst, struct cc_table *src)
{
    for (size_t i = 0; i < src->n; i++) {
        struct cc_acc *x = &src->cc[i], *c = cc_get(dst, x->cc);
        if (!c)
            return -ENOMEM;
        if (!c->elems) {
            c->elems = x->elems;
            c->n = x->n;
            c->cap = x->cap;
            x->elems = NULL;
        } else {
            for (size_t k = 0; k < x->n; k++) {
                if (elems_push(&c->elems, &c->n, &c->cap, x->elems[k]) < 0)
                    return -ENOMEM;
            }
        }
        c->packets += x->packets;
        c->sources += x->sources;
    }
    cc_table_fini(src);
    return 0;
}

static int cmp_port(const void *a, const void *b)
{
    const struct rds_port *x = a, *y = b;
    if (x->packets != y->packets)
        return x->packets < y->packets ? 1 : -1;
    if (x->proto != y->proto)
        return x->proto - y->proto;
    return (int)x->port - (int)y->port;
}

#define PREFETCH_AHEAD 8

static int source_at(const void *ctx, unsigned shard, size_t i, struct rds_source *out)
{
    const struct export *e = ctx;
    const struct cap_src *s;

    if (e->src_at[shard] + i >= e->src_at[shard + 1])
        return 0;
    s = e->src_order[e->src_at[shard] + i];
    /* records are read in shard order, scattered over the arenas: the ones a few ahead are
     * fetched while this one is encoded (its three lines, then its extension's) */
    size_t ahead = e->src_at[shard] + i + PREFETCH_AHEAD;
    if (ahead < e->src_at[shard + 1]) {
        const char *p = (const char *)e->src_order[ahead];
        __builtin_prefetch(p);
        __builtin_prefetch(p + 64);
        __builtin_prefetch(p + 128);
    }
    if (ahead - PREFETCH_AHEAD / 2 < e->src_at[shard + 1] &&
        e->src_order[ahead - PREFETCH_AHEAD / 2]->ext) {
        const char *x = (const char *)e->src_order[ahead - PREFETCH_AHEAD / 2]->ext;
        __builtin_prefetch(x);
        __builtin_prefetch(x + 64);
        __builtin_prefetch(x + 128);
    }
    cap_src_export(s, (unsigned)e->cfg->source_ports_max, out);
    if (s->cc[0] || s->has_location || s->asn) {
        out->has_geo = true;
        memcpy(out->geo.cc, s->cc, 3);
        out->geo.has_location = s->has_location;
        out->geo.lat = s->lat;
        out->geo.lon = s->lon;
        out->geo.asn = s->asn;
    }
    return 1;
}

static int victim_at(const void *ctx, unsigned shard, size_t i, struct rds_victim *out)
{
    const struct export *e = ctx;

    if (e->vic_at[shard] + i >= e->vic_at[shard + 1])
        return 0;
    *out = e->vic_order[e->vic_at[shard] + i]->v;
    return 1;
}

/* Counting sort of a table's entries by shard. */
static void **order_by_shard(const struct cap_table *t, size_t at[RDS_SHARDS + 1])
{
    void **order = malloc((t->n ? t->n : 1) * sizeof(void *));
    size_t fill[RDS_SHARDS];

    if (!order)
        return NULL;
    memset(at, 0, (RDS_SHARDS + 1) * sizeof(size_t));
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slot[i].p)
            at[rds_shard_of_hash(t->slot[i].h) + 1]++;
    }
    for (unsigned k = 0; k < RDS_SHARDS; k++)
        at[k + 1] += at[k];
    memcpy(fill, at, sizeof(fill));
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slot[i].p)
            order[fill[rds_shard_of_hash(t->slot[i].h)]++] = t->slot[i].p;
    }
    return order;
}

static void export_fini(struct export *e)
{
    free(e->src_order);
    free(e->vic_order);
    cc_table_fini(&e->cc);
    free(e->ports);
    free(e->all);
    if (e->hlls) {
        /* port element lists are owned here; country ones belong to e->cc */
        for (size_t i = 0; i < e->n_hlls; i++) {
            if (strncmp(e->hlls[i].name, "cc/", 3) != 0 && strcmp(e->hlls[i].name, "all") != 0)
                free((void *)e->hlls[i].elems);
        }
    }
    free(e->hlls);
    free(e->countries);
}

/* ---- GeoIP for every source of a bucket
 *
 * Sources are looked up in address order, on the flush threads (each claims runs of the sorted
 * list): neighbours share most of their path down the database's search tree, so it stays in
 * cache, and an address inside the network of the previous answer (ds_geo.prefix_len: where
 * every database's answer holds) takes that answer without a lookup. In random order each
 * lookup was a walk of cache misses (about 1.5 µs). */

#define GEO_RUN 4096

struct geo_item {
    uint64_t key; /* IPv4: the address in bits 62..31; IPv6: bit 63 and the first 63 bits */
    struct cap_src *s;
    uint64_t h; /* ds_addr_hash of the address */
};

struct geo_job {
    struct cap_flusher *f;
    struct geo_item *items;
    size_t n;
    _Atomic size_t next; /* first item of the next run */
};

static void geo_copy(struct cap_src *s, const struct ds_geo *g, bool found)
{
    s->cc[0] = '\0';
    s->has_location = false;
    s->asn = 0;
    if (!found)
        return;
    memcpy(s->cc, g->cc, 3);
    s->has_location = g->has_location;
    s->lat = (float)g->lat;
    s->lon = (float)g->lon;
    s->asn = g->asn;
}

/* Does a lie inside the network of prefix length bits around b? */
static bool same_network(const struct ds_addr *a, const struct ds_addr *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;

    if (a->family != b->family || memcmp(a->b, b->b, full) != 0)
        return false;
    return rest == 0 || ((a->b[full] ^ b->b[full]) & (0xff00u >> rest)) == 0;
}

static void geo_main(void *ctx, unsigned thread)
{
    struct geo_job *j = ctx;
    struct geo_thread *t = &j->f->geo_t[thread];
    size_t from;

    while ((from = atomic_fetch_add(&j->next, GEO_RUN)) < j->n) {
        size_t to = from + GEO_RUN < j->n ? from + GEO_RUN : j->n;
        const struct cap_src *prev = NULL;
        struct ds_geo g;
        bool found = false;
        for (size_t i = from; i < to && !t->err; i++) {
            struct cap_src *s = j->items[i].s;
            if (!j->f->geo) {
                found = false;
            } else if (prev && same_network(&s->addr, &prev->addr, g.prefix_len)) {
                t->hits++;
            } else {
                int rc = ds_geoip_lookup(j->f->geo, &s->addr, &g);
                t->lookups++;
                found = rc == 0;
                prev = rc == -EIO ? NULL : s; /* a database error answers this address alone */
            }
            geo_copy(s, &g, found);
            t->err = cc_add(&t->cc, s, j->items[i].h);
        }
    }
}

/* LSD radix sort by key, a byte at a time, skipping bytes every key shares (most of an IPv4
 * key); tmp has room for n items. Returns the sorted array (items or tmp). */
static struct geo_item *geo_sort(struct geo_item *items, struct geo_item *tmp, size_t n)
{
    for (unsigned shift = 0; shift < 64; shift += 8) {
        size_t count[256] = {0}, at = 0;
        for (size_t i = 0; i < n; i++)
            count[items[i].key >> shift & 0xff]++;
        if (n == 0 || count[items[0].key >> shift & 0xff] == n)
            continue;
        for (unsigned k = 0; k < 256; k++) {
            size_t c = count[k];
            count[k] = at;
            at += c;
        }
        for (size_t i = 0; i < n; i++)
            tmp[count[items[i].key >> shift & 0xff]++] = items[i];
        struct geo_item *x = items;
        items = tmp;
        tmp = x;
    }
    return items;
}

/* Fills every source's geo fields, counts the sources per country into e->cc, and lists
 * every source's hash in e->all (the bucket's HyperLogLog). */
static int geo_fill_all(struct cap_flusher *f, struct cap_table *src, struct export *e)
{
    struct geo_job j = {.f = f};
    struct geo_item *all = malloc(2 * (src->n ? src->n : 1) * sizeof(*all));
    int rc = 0;

    if (!all)
        return -ENOMEM;
    j.items = all;
    for (size_t i = 0; i < src->cap; i++) {
        struct cap_src *s = src->slot[i].p;
        uint64_t hi = 0;
        if (!s)
            continue;
        for (int k = 0; k < 8; k++)
            hi = hi << 8 | s->addr.b[k];
        j.items[j.n].key = s->addr.family == 4 ? hi >> 1 : 1ULL << 63 | hi >> 1;
        j.items[j.n].s = s;
        j.items[j.n++].h = src->slot[i].h;
        e->all[e->n_all++] = src->slot[i].h;
    }
    j.items = geo_sort(all, all + j.n, j.n);
    ds_parallel_run(f->threads, geo_main, &j);
    free(all);
    for (unsigned i = 0; i < f->threads; i++) {
        struct geo_thread *t = &f->geo_t[i];
        if (t->err || (rc == 0 && cc_table_merge(&e->cc, &t->cc) < 0))
            rc = -ENOMEM;
        t->err = 0;
        cc_table_fini(&t->cc);
    }
    return rc;
}

static int export_init(struct export *e, struct cap_bucket *b, struct cap_flusher *f)
{
    const struct ds_config *cfg = f->cfg;
    size_t top;

    memset(e, 0, sizeof(*e));
    e->b = b;
    e->cfg = cfg;
    /* ports with traffic, busiest first */
    for (int p = 0; p < 2; p++) {
        for (int port = 0; port < 65536; port++)
            e->n_ports += b->port_packets[p][port] != 0;
    }
    e->ports = calloc(e->n_ports ? e->n_ports : 1, sizeof(*e->ports));
    e->all = calloc(b->src.n ? b->src.n : 1, sizeof(uint64_t));
    if (!e->ports || !e->all)
        return -ENOMEM;
    e->n_ports = 0;
    for (int p = 0; p < 2; p++) {
        for (int port = 0; port < 65536; port++) {
            if (!b->port_packets[p][port])
                continue;
            struct rds_port *x = &e->ports[e->n_ports++];
            x->proto = (uint8_t)(p == 0 ? DS_PROTO_TCP : DS_PROTO_UDP);
            x->port = (uint16_t)port;
            x->packets = b->port_packets[p][port];
            x->sources = b->port_sources[p][port];
        }
    }
    if (e->n_ports > 1)
        qsort(e->ports, e->n_ports, sizeof(*e->ports), cmp_port);
    /* GeoIP once per source, then countries and their HyperLogLog elements */
    ds_time_ns t0 = ds_time_monotonic();
    if (geo_fill_all(f, &b->src, e) < 0)
        return -ENOMEM;
    ds_time_ns t1 = ds_time_monotonic();
    e->src_order = (struct cap_src **)order_by_shard(&b->src, e->src_at);
    e->vic_order = (struct cap_victim **)order_by_shard(&b->vic, e->vic_at);
    if (!e->src_order || !e->vic_order)
        return -ENOMEM;
    top = e->n_ports < RDS_PORT_HLL_MAX ? e->n_ports : RDS_PORT_HLL_MAX;
    e->hlls = calloc(1 + e->cc.n + top, sizeof(*e->hlls));
    e->countries = calloc(e->cc.n ? e->cc.n : 1, sizeof(*e->countries));
    if (!e->hlls || !e->countries)
        return -ENOMEM;
    snprintf(e->hlls[0].name, sizeof(e->hlls[0].name), "all");
    e->hlls[0].elems = e->all;
    e->hlls[0].n = e->n_all;
    e->n_hlls = 1;
    for (size_t i = 0; i < e->cc.n; i++) {
        struct rds_hll *x = &e->hlls[e->n_hlls++];
        snprintf(x->name, sizeof(x->name), "cc/%s", e->cc.cc[i].cc);
        x->elems = e->cc.cc[i].elems;
        x->n = e->cc.cc[i].n;
        memcpy(e->countries[i].cc, e->cc.cc[i].cc, 3);
        e->countries[i].packets = e->cc.cc[i].packets;
        e->countries[i].sources = e->cc.cc[i].sources;
    }
    /* the busiest ports get a HyperLogLog of their sources, from the (source, port) pairs */
    if (top) {
        size_t base = e->n_hlls;
        uint32_t *index = calloc(2 * 65536, sizeof(uint32_t)); /* pp -> hll slot + 1 */
        size_t *caps = calloc(top, sizeof(size_t));
        if (!index || !caps) {
            free(index);
            free(caps);
            return -ENOMEM;
        }
        for (size_t i = 0; i < top; i++) {
            struct rds_hll *x = &e->hlls[base + i];
            int pi = e->ports[i].proto == DS_PROTO_TCP ? 0 : 1;
            snprintf(x->name, sizeof(x->name), "%s/%u", ds_proto_names[e->ports[i].proto],
                     e->ports[i].port);
            index[(uint32_t)pi << 16 | e->ports[i].port] = (uint32_t)(base + i + 1);
        }
        e->n_hlls += top;
        for (size_t i = 0; i < b->pair_cap; i++) {
            uint32_t slot;
            if (!b->pairs[i].src_hash || !(slot = index[b->pairs[i].pp]))
                continue;
            struct rds_hll *x = &e->hlls[slot - 1];
            uint64_t *v = (uint64_t *)x->elems;
            if (elems_push(&v, &x->n, &caps[slot - 1 - base], b->pairs[i].src_hash) < 0) {
                free(index);
                free(caps);
                return -ENOMEM;
            }
            x->elems = v;
        }
        free(index);
        free(caps);
    }
    ds_log(DS_LOG_DEBUG, "flush",
           "export: GeoIP and countries %.2f s, the rest %.2f s; tables: %zu of %zu source "
           "slots, %zu of %zu (source, port) slots, %zu of %zu victim slots",
           (double)(t1 - t0) / 1e9, (double)(ds_time_monotonic() - t1) / 1e9, b->src.n, b->src.cap,
           b->pair_n, b->pair_cap, b->vic.n, b->vic.cap);
    return 0;
}

static int write_job(struct cap_flusher *f, struct cap_job *j)
{
    struct export e;
    struct rds_bucket rb = {0};
    struct rds_write_opts o = {f->cfg->retention, f->cfg->rollup_retention, f->threads};
    ds_time_ns t0 = ds_time_monotonic();
    int rc = export_init(&e, j->b, f);

    if (rc < 0) {
        export_fini(&e);
        return rc;
    }
    rb.sensor = f->cfg->sensor_name;
    rb.start = j->b->start;
    rb.seconds = j->b->seconds;
    rb.flush_id = j->flush_id;
    rb.tot = j->b->tot;
    rb.ports = e.ports;
    rb.n_ports = e.n_ports;
    rb.countries = e.countries;
    rb.n_countries = e.cc.n;
    rb.per_second = j->b->per_second;
    rb.hlls = e.hlls;
    rb.n_hlls = e.n_hlls;
    rb.late = j->b->late;
    rb.source_at = source_at;
    rb.source_ctx = &e;
    rb.victim_at = victim_at;
    rb.victim_ctx = &e;
    rb.darknet = &f->cfg->darknet;
    ds_time_ns t1 = ds_time_monotonic();
    rc = rds_bucket_write(f->conn, &rb, &o);
    uint64_t lookups = 0, hits = 0;
    for (unsigned i = 0; i < f->threads; i++) {
        lookups += f->geo_t[i].lookups;
        hits += f->geo_t[i].hits;
    }
    ds_log(DS_LOG_DEBUG, "flush",
           "bucket %lld: %zu sources, export %.2f s, write %.2f s (%u threads); GeoIP %llu "
           "lookups, %llu answered by the network of the previous address so far",
           (long long)rb.start, j->b->src.n, (double)(t1 - t0) / 1e9,
           (double)(ds_time_monotonic() - t1) / 1e9, f->threads, (unsigned long long)lookups,
           (unsigned long long)hits);
    export_fini(&e);
    return rc;
}

static void update_sensor(struct cap_flusher *f)
{
    json_t *info = json_object(), *loc, *dn = json_array();
    char buf[DS_CIDR_STRLEN];

    json_object_set_new(info, "name", json_string(f->cfg->sensor_name));
    if (f->cfg->sensor_has_location) {
        loc = json_object();
        json_object_set_new(loc, "latitude", json_real(f->cfg->sensor_lat));
        json_object_set_new(loc, "longitude", json_real(f->cfg->sensor_lon));
        json_object_set_new(loc, "label", json_string(f->cfg->sensor_label));
        json_object_set_new(info, "location", loc);
    } else {
        json_object_set_new(info, "location", json_null());
    }
    for (unsigned i = 0; i < f->cfg->darknet.n; i++)
        json_array_append_new(dn,
                              json_string(ds_cidr_format(&f->cfg->darknet.p[i], buf, sizeof(buf))));
    json_object_set_new(info, "darknet", dn);
    json_object_set_new(info, "bucket_seconds", json_integer(f->cfg->bucket_seconds));
    json_object_set_new(info, "last_bucket", json_integer(f->last_bucket));
    json_object_set_new(info, "updated", json_integer(ds_time_now() / DS_NS_PER_SEC));
    pthread_mutex_lock(&f->lock);
    json_object_set_new(info, "buckets_written", json_integer((json_int_t)f->written));
    json_object_set_new(info, "buckets_dropped", json_integer((json_int_t)f->dropped));
    json_object_set_new(info, "packets_dropped", json_integer((json_int_t)f->dropped_packets));
    /* a copy: Jansson's reference counts do not make sharing across threads safe */
    if (f->sources)
        json_object_set_new(info, "sources", json_deep_copy(f->sources));
    pthread_mutex_unlock(&f->lock);
    if (rds_sensor_update(f->conn, f->cfg->sensor_name, info) < 0)
        ds_log(DS_LOG_DEBUG, "flush", "sensor record not updated: %s", rds_conn_error(f->conn));
    json_decref(info);
}

static void *flusher_main(void *arg)
{
    struct cap_flusher *f = arg;
    ds_time_ns backoff = BACKOFF_MIN_NS, failing_since = 0;
    bool announced = false;

    for (;;) {
        struct cap_job *j;
        int rc;

        pthread_mutex_lock(&f->lock);
        while (!f->head && !f->closing)
            pthread_cond_wait(&f->cond, &f->lock);
        j = f->head;
        bool closing = f->closing;
        pthread_mutex_unlock(&f->lock);
        if (!j)
            break;
        rc = rds_conn_ensure(f->conn);
        if (rc == 0) {
            if (!announced) {
                update_sensor(f);
                announced = true;
            }
            rc = write_job(f, j);
        }
        if (rc == 0) {
            if (failing_since)
                ds_log(DS_LOG_INFO, "flush", "Redis %s is back", rds_conn_describe(f->conn));
            failing_since = 0;
            backoff = BACKOFF_MIN_NS;
            if (j->b->start > f->last_bucket)
                f->last_bucket = j->b->start;
            pthread_mutex_lock(&f->lock);
            f->head = j->next;
            if (!f->head)
                f->tail = NULL;
            f->n_jobs--;
            f->written++;
            pthread_cond_broadcast(&f->space);
            bool empty = !f->head;
            pthread_mutex_unlock(&f->lock);
            job_free(j);
            if (empty)
                update_sensor(f);
            /* now and then, forget index entries of buckets that have expired */
            if (f->written % 64 == 1 && rds_index_trim(f->conn, f->cfg->sensor_name, 256) < 0)
                ds_log(DS_LOG_DEBUG, "flush", "index trim: %s", rds_conn_error(f->conn));
            continue;
        }
        if (rc == -ENOMEM) {
            ds_log(DS_LOG_ERROR, "flush", "out of memory writing bucket %lld",
                   (long long)j->b->start);
        }
        ds_time_ns now = ds_time_monotonic();
        pthread_mutex_lock(&f->lock);
        pthread_cond_broadcast(&f->space); /* waiting pushers now drop instead */
        pthread_mutex_unlock(&f->lock);
        if (!failing_since) {
            failing_since = now;
            ds_log(DS_LOG_WARN, "flush", "Redis %s unavailable (%s); keeping buckets in memory",
                   rds_conn_describe(f->conn), rds_conn_error(f->conn));
        }
        if (closing && now - failing_since > f->cfg->redis_flush_timeout * DS_NS_PER_SEC) {
            pthread_mutex_lock(&f->lock);
            f->unwritten = f->n_jobs;
            pthread_mutex_unlock(&f->lock);
            break;
        }
        ds_sleep_ns(backoff);
        backoff = backoff * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : backoff * 2;
    }
    if (rds_conn_state(f->conn) == RDS_CONNECTED)
        update_sensor(f);
    return NULL;
}

void cap_flusher_connect(struct cap_flusher *f)
{
    if (rds_conn_ensure(f->conn) < 0)
        ds_log(DS_LOG_WARN, "flush", "Redis %s not reachable yet (%s); will retry",
               rds_conn_describe(f->conn), rds_conn_error(f->conn));
}

int cap_flusher_start(struct cap_flusher *f)
{
    if (pthread_create(&f->thread, NULL, flusher_main, f) != 0)
        return -EAGAIN;
    f->started = true;
    return 0;
}

uint64_t cap_flusher_finish(struct cap_flusher *f)
{
    pthread_mutex_lock(&f->lock);
    f->closing = true;
    pthread_cond_signal(&f->cond);
    pthread_cond_broadcast(&f->space);
    pthread_mutex_unlock(&f->lock);
    if (f->started)
        pthread_join(f->thread, NULL);
    f->started = false;
    return f->unwritten;
}

void cap_flusher_set_sources(struct cap_flusher *f, json_t *sources_take)
{
    pthread_mutex_lock(&f->lock);
    json_decref(f->sources);
    f->sources = sources_take;
    pthread_mutex_unlock(&f->lock);
}

void cap_flusher_free(struct cap_flusher *f)
{
    if (!f)
        return;
    if (f->started)
        (void)cap_flusher_finish(f);
    while (f->head) {
        struct cap_job *j = f->head;
        f->head = j->next;
        job_free(j);
    }
    json_decref(f->sources);
    rds_conn_free(f->conn);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->cond);
    pthread_cond_destroy(&f->space);
    free(f);
}
