/* `darkscope aggregate`: takes closed buckets in order from its checkpoint, matches their
 * sources and backscatter victims against the subscribers' ranges, folds the evidence into
 * incidents, runs the early warning over per-port source counts, and commits each bucket's
 * incidents, alerts, state and checkpoint in one transaction (redis/agg.c). */
#include "aggregator/aggregator.h"
#include "redis/redis.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#define MATCHES_MAX     64
#define ACTIVE_WINDOW   3600 /* a sensor that wrote a bucket within this long is waited for */
#define EW_TRACK_MIN    3    /* a port gets a baseline once it draws this many sources */
#define EW_FORGET_BELOW 0.5  /* … and loses it when its baseline decays below this */

/* Open incidents as this aggregator last committed them, so a bucket reads back from Redis
 * (and parses) only the incidents it has not seen: in steady operation most hosts in subscriber
 * ranges show up bucket after bucket. Only aggregators write incidents, each with the
 * checkpoint in one transaction; the cache holds while the checkpoint is the bucket this
 * aggregator committed last, and is dropped otherwise (another aggregator wrote, or a commit
 * failed). */
#define CACHE_MAX                                                                                  \
    200000 /* open incidents kept (about 1.1 KiB each); beyond, the cache starts over */
struct cache {
    json_t *index; /* field → slot */
    struct agg_incident *slots;
    size_t n_slots, cap_slots, used;
    size_t *free_slots;
    size_t n_free;
    int64_t bucket; /* the checkpoint it is valid at; INT64_MIN: empty */
};

/* What a bucket will put into the cache once it is committed: an incident (moved in), or a
 * field to drop (closed; inc.id NULL). */
struct pending {
    char field[200];
    struct agg_incident inc;
};

struct agg {
    const struct ds_config *cfg;
    struct rds_conn *conn;
    struct agg_subscribers *subs;
    struct agg_trie *bogons;
    struct rds_sensor_state *sensors;
    size_t n_sensors;
    struct agg_ew_params ew;
    struct agg_thresholds defaults;
    /* the bucket being processed */
    const char *sensor;
    struct host *hosts; /* every matched host's evidence, sources then victims */
    size_t n_hosts, cap_hosts;
    json_t *host_index[2]; /* address text → index in hosts, for sources and for victims */
    struct cache cache;
    uint64_t lines, matched, skipped_bogon, skipped_research;
};

struct host {
    char ip[DS_ADDR_STRLEN];
    bool victim;
    struct agg_evidence ev;
};

static void cache_clear(struct cache *c)
{
    for (size_t i = 0; i < c->n_slots; i++)
        agg_incident_fini(&c->slots[i]);
    free(c->slots);
    free(c->free_slots);
    json_decref(c->index);
    memset(c, 0, sizeof(*c));
    c->bucket = INT64_MIN;
}

static const struct agg_incident *cache_get(const struct cache *c, const char *field)
{
    json_t *at = c->index ? json_object_get(c->index, field) : NULL;

    return at ? &c->slots[json_integer_value(at)] : NULL;
}

/* Moves inc into the cache under field (replacing what was there), or drops the field when inc
 * is closed. */
static int cache_put(struct cache *c, const char *field, struct agg_incident *inc)
{
    json_t *at;
    size_t slot;

    if (!c->index && !(c->index = json_object()))
        return -ENOMEM;
    at = json_object_get(c->index, field);
    if (at) {
        slot = (size_t)json_integer_value(at);
        agg_incident_fini(&c->slots[slot]);
        if (!inc->open) {
            agg_incident_fini(inc);
            json_object_del(c->index, field);
            c->free_slots[c->n_free++] = slot;
            c->used--;
            return 0;
        }
        c->slots[slot] = *inc;
        memset(inc, 0, sizeof(*inc)); /* moved */
        return 0;
    }
    if (!inc->open) {
        agg_incident_fini(inc);
        return 0;
    }
    if (c->n_free) {
        slot = c->free_slots[--c->n_free];
    } else {
        if (c->n_slots == c->cap_slots) {
            size_t cap = c->cap_slots ? 2 * c->cap_slots : 1024;
            struct agg_incident *v = realloc(c->slots, cap * sizeof(*v));
            size_t *f = v ? realloc(c->free_slots, cap * sizeof(*f)) : NULL;
            if (v)
                c->slots = v;
            if (!v || !f)
                return -ENOMEM;
            c->free_slots = f;
            c->cap_slots = cap;
        }
        slot = c->n_slots++;
    }
    c->slots[slot] = *inc;
    memset(inc, 0, sizeof(*inc)); /* moved */
    c->used++;
    return json_object_set_new(c->index, field, json_integer((json_int_t)slot)) < 0 ? -ENOMEM : 0;
}

/* What a bucket writes: incident and alert texts, and their keys, by offset until committed. */
struct item {
    size_t key, text, len; /* offsets in out.keys and out.texts */
    bool has_key, open;
    int64_t last_seen_s;
};

struct out {
    struct ds_buf keys, texts;
    struct item *incidents, *alerts;
    size_t n_incidents, n_alerts, cap_incidents, cap_alerts;
    struct pending *pending; /* for the cache, once committed */
    size_t n_pending, cap_pending;
};

/* ---- bogons */

static int load_bogons(const char *path, struct agg_trie **out, char *err, size_t errlen)
{
    struct agg_trie *t = agg_trie_new();
    char line[256];
    unsigned lineno = 0;
    FILE *f = fopen(path, "r");

    if (!t || !f) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        agg_trie_free(t);
        if (f)
            fclose(f);
        return -EINVAL;
    }
    while (fgets(line, sizeof(line), f)) {
        char *p = line, *end;
        struct ds_cidr c;
        lineno++;
        if ((end = strchr(p, '#')))
            *end = '\0';
        p += strspn(p, " \t");
        p[strcspn(p, " \t\r\n")] = '\0';
        if (!*p)
            continue;
        if (ds_cidr_parse(p, &c) < 0 || agg_trie_add(t, &c, 0) < 0) {
            snprintf(err, errlen, "%s:%u: expected a prefix like \"10.0.0.0/8\", got \"%.60s\"",
                     path, lineno, p);
            fclose(f);
            agg_trie_free(t);
            return -EINVAL;
        }
    }
    fclose(f);
    if (agg_trie_finish(t) < 0) {
        agg_trie_free(t);
        return -ENOMEM;
    }
    *out = t;
    return 0;
}

/* ---- one bucket */

static int on_line(struct agg *g, bool victim, const char *ip, size_t iplen, const char *json,
                   size_t jsonlen)
{
    char text[DS_ADDR_STRLEN];
    struct ds_addr a;
    struct agg_match m;
    json_t *rec, *at;
    struct host *h;

    if (iplen == 0 || iplen >= sizeof(text))
        return 0;
    memcpy(text, ip, iplen);
    text[iplen] = '\0';
    if (ds_addr_parse(text, &a) < 0 || agg_trie_match(g->subs->livenet, &a, &m, 1) == 0)
        return 0;
    rec = json_loadb(json, jsonlen, 0, NULL);
    if (!rec)
        return 0;
    at = json_object_get(g->host_index[victim], text);
    if (at) {
        h = &g->hosts[json_integer_value(at)];
    } else {
        if (g->n_hosts == g->cap_hosts) {
            size_t cap = g->cap_hosts ? 2 * g->cap_hosts : 1024;
            struct host *nh = realloc(g->hosts, cap * sizeof(*nh));
            if (!nh) {
                json_decref(rec);
                return -ENOMEM;
            }
            g->hosts = nh;
            g->cap_hosts = cap;
        }
        h = &g->hosts[g->n_hosts];
        memcpy(h->ip, text, iplen + 1);
        h->victim = victim;
        agg_evidence_init(&h->ev);
        json_object_set_new(g->host_index[victim], text, json_integer((json_int_t)g->n_hosts));
        g->n_hosts++;
    }
    int rc = agg_evidence_merge(&h->ev, g->sensor, rec);
    json_decref(rec);
    g->matched++;
    return rc;
}

/* Only records of addresses inside some organisation's ranges are fetched and parsed. A
 * million lookups are bound by cache misses: each address's table slot is fetched 16 ahead and
 * its first node 8 ahead. */
static void in_livenet(void *ctx, const struct ds_addr *a, size_t n, bool *wanted)
{
    struct agg *g = ctx;
    const struct agg_trie *t = g->subs->livenet;
    struct agg_match m;

    for (size_t i = 0; i < n && i < 16; i++)
        agg_trie_prefetch(t, &a[i], 0);
    for (size_t i = 0; i < n && i < 8; i++)
        agg_trie_prefetch(t, &a[i], 1);
    for (size_t i = 0; i < n; i++) {
        if (i + 16 < n)
            agg_trie_prefetch(t, &a[i + 16], 0);
        if (i + 8 < n)
            agg_trie_prefetch(t, &a[i + 8], 1);
        wanted[i] = agg_trie_match(t, &a[i], &m, 1) > 0;
    }
    g->lines += n;
}

static int on_src(void *ctx, const char *ip, size_t iplen, const char *json, size_t jsonlen)
{
    return on_line(ctx, false, ip, iplen, json, jsonlen);
}

static int on_vic(void *ctx, const char *ip, size_t iplen, const char *json, size_t jsonlen)
{
    return on_line(ctx, true, ip, iplen, json, jsonlen);
}

struct decision {
    char field[200];
    unsigned org;
    int kind;
    const struct host *host; /* borrowed */
};

static int cmp_decision(const void *a, const void *b)
{
    return strcmp(((const struct decision *)a)->field, ((const struct decision *)b)->field);
}

static double telescope_share(const struct agg *g)
{
    double share = 0;

    for (size_t i = 0; i < g->n_sensors; i++)
        share += ds_prefixset_v4_share(&g->sensors[i].darknet);
    return share > 1 ? 1 : share;
}

/* Decisions for every matched host and organisation. */
static size_t decide(struct agg *g, struct decision **out)
{
    size_t cap = 64, n = 0;
    struct decision *d = malloc(cap * sizeof(*d));

    for (size_t h = 0; h < g->n_hosts && d; h++) {
        const struct host *host = &g->hosts[h];
        const char *ip = host->ip;
        int pass = host->victim;
        {
            struct ds_addr a;
            struct agg_match m[MATCHES_MAX], dummy;
            unsigned nm;
            if (ds_addr_parse(ip, &a) < 0)
                continue;
            if (pass == 0 && agg_trie_match(g->bogons, &a, &dummy, 1)) {
                g->skipped_bogon++; /* spoofed: never an infected host */
                continue;
            }
            if (pass == 0 && agg_trie_match(g->subs->research, &a, &dummy, 1)) {
                g->skipped_research++; /* a known research scanner: labelled, not alerted */
                continue;
            }
            nm = agg_trie_match(g->subs->livenet, &a, m, MATCHES_MAX);
            for (unsigned k = 0; k < nm && k < MATCHES_MAX; k++) {
                const struct agg_org *org = &g->subs->orgs[m[k].value];
                unsigned kinds =
                    pass == 0 ? agg_evidence_kinds(&host->ev, org) : 1u << AGG_KIND_DDOS;
                bool dup = false;
                for (unsigned j = 0; j < k; j++)
                    dup = dup || m[j].value == m[k].value; /* two ranges of one organisation */
                if (dup)
                    continue;
                for (int kind = 0; kind < AGG_KIND_N; kind++) {
                    if (!(kinds & (1u << kind)))
                        continue;
                    if (n == cap) {
                        struct decision *nd = realloc(d, 2 * cap * sizeof(*d));
                        if (!nd) {
                            free(d);
                            return 0;
                        }
                        d = nd;
                        cap *= 2;
                    }
                    snprintf(d[n].field, sizeof(d[n].field), "%s|%s|%s", org->id,
                             agg_kind_names[kind], ip);
                    d[n].org = m[k].value;
                    d[n].kind = kind;
                    d[n].host = host;
                    n++;
                }
            }
        }
    }
    if (d)
        qsort(d, n, sizeof(*d), cmp_decision);
    *out = d;
    return d ? n : 0;
}

static void out_init(struct out *o)
{
    memset(o, 0, sizeof(*o));
    ds_buf_init(&o->keys, SIZE_MAX / 2);
    ds_buf_init(&o->texts, SIZE_MAX / 2);
}

static void out_fini(struct out *o)
{
    for (size_t i = 0; i < o->n_pending; i++)
        agg_incident_fini(&o->pending[i].inc);
    free(o->pending);
    ds_buf_fini(&o->keys);
    ds_buf_fini(&o->texts);
    free(o->incidents);
    free(o->alerts);
}

/* A new incident or alert whose text the caller appends to o->texts next (out_done ends it);
 * key NULL: an alert for the SOC. NULL when out of memory. */
static struct item *out_item(struct out *o, bool alert, const char *key)
{
    struct item **v = alert ? &o->alerts : &o->incidents;
    size_t *n = alert ? &o->n_alerts : &o->n_incidents;
    size_t *cap = alert ? &o->cap_alerts : &o->cap_incidents;

    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 1024;
        struct item *nv = realloc(*v, c * sizeof(*nv));
        if (!nv)
            return NULL;
        *v = nv;
        *cap = c;
    }
    struct item *it = &(*v)[(*n)++];
    memset(it, 0, sizeof(*it));
    it->key = o->keys.len;
    it->has_key = key != NULL;
    if (key)
        ds_buf_add(&o->keys, key, strlen(key) + 1);
    it->text = o->texts.len;
    return it;
}

static void out_done(struct out *o, struct item *it)
{
    it->len = o->texts.len - it->text;
}

/* Keeps inc (moved: *inc is emptied) for the cache once the bucket is committed; a closed
 * incident (inc NULL) drops the field. */
static int out_pending(struct out *o, const char *field, struct agg_incident *inc)
{
    if (o->n_pending == o->cap_pending) {
        size_t cap = o->cap_pending ? 2 * o->cap_pending : 1024;
        struct pending *p = realloc(o->pending, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        o->pending = p;
        o->cap_pending = cap;
    }
    struct pending *p = &o->pending[o->n_pending++];
    snprintf(p->field, sizeof(p->field), "%s", field);
    if (inc) {
        p->inc = *inc;
        memset(inc, 0, sizeof(*inc));
    } else {
        memset(&p->inc, 0, sizeof(p->inc)); /* closed */
    }
    return 0;
}

/* An incident or alert that is a JSON tree (early warnings, closed incidents). */
static int out_json(struct out *o, bool alert, const char *key, const json_t *j, bool open,
                    int64_t last_seen_s)
{
    struct item *it = out_item(o, alert, key);
    char *text = json_dumps(j, JSON_COMPACT);

    if (!it || !text) {
        free(text);
        return -ENOMEM;
    }
    ds_buf_adds(&o->texts, text);
    free(text);
    it->open = open;
    it->last_seen_s = last_seen_s;
    out_done(o, it);
    return 0;
}

/* The early warning works on every (protocol, port) of a bucket — about 100,000 when a million
 * sources scan — so in dense tables indexed by slot, not in JSON objects. */
#define EW_SLOTS (DS_PROTO_N * 65536)

struct ew {
    int64_t *sources;     /* per slot: distinct sources this bucket (summed over sensors) */
    struct agg_ew *state; /* per slot: its baseline, where known[] */
    uint8_t *known;
    struct agg_ew all; /* "_buckets": how many buckets the warning has seen */
    struct rds_ew_entry *out;
    size_t n_out, cap_out;
};

/* The slot of a port name ("tcp/23"), or -1. */
static int ew_slot(const char *name, size_t len)
{
    char proto[8];
    const char *slash = memchr(name, '/', len);
    int64_t port = 0;

    if (!slash || slash == name || (size_t)(slash - name) >= sizeof(proto) ||
        name + len - slash < 2 || name + len - slash > 6)
        return -1;
    memcpy(proto, name, (size_t)(slash - name));
    proto[slash - name] = '\0';
    for (const char *p = slash + 1; p < name + len; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        port = port * 10 + (*p - '0');
    }
    int pr = ds_name_find(ds_proto_names, DS_PROTO_N, proto);
    return pr < 0 || port > 65535 ? -1 : pr * 65536 + (int)port;
}

static void ew_name(int slot, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%d", ds_proto_names[slot / 65536], slot % 65536);
}

static int ew_on_sources(void *ctx, const char *name, size_t len, const char *value, size_t vlen)
{
    struct ew *e = ctx;
    int slot = ew_slot(name, len);
    char num[24];

    if (slot < 0 || vlen >= sizeof(num))
        return 0;
    memcpy(num, value, vlen);
    num[vlen] = '\0';
    e->sources[slot] += strtoll(num, NULL, 10);
    return 0;
}

static int ew_on_state(void *ctx, const char *name, size_t len, const char *value, size_t vlen)
{
    struct ew *e = ctx;
    char text[64];
    int slot;

    if (vlen >= sizeof(text))
        return 0;
    memcpy(text, value, vlen);
    text[vlen] = '\0';
    if (len == 8 && memcmp(name, "_buckets", 8) == 0) {
        agg_ew_parse(text, &e->all);
    } else if ((slot = ew_slot(name, len)) >= 0) {
        agg_ew_parse(text, &e->state[slot]);
        e->known[slot] = 1;
    }
    return 0;
}

static int ew_put(struct ew *e, const char *port, const struct agg_ew *s)
{
    if (e->n_out == e->cap_out) {
        size_t cap = e->cap_out ? 2 * e->cap_out : 4096;
        struct rds_ew_entry *n = realloc(e->out, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        e->out = n;
        e->cap_out = cap;
    }
    struct rds_ew_entry *x = &e->out[e->n_out++];
    snprintf(x->port, sizeof(x->port), "%s", port);
    x->state[0] = '\0';
    if (s)
        agg_ew_format(s, x->state, sizeof(x->state));
    return 0;
}

static void ew_fini(struct ew *e)
{
    free(e->sources);
    free(e->state);
    free(e->known);
    free(e->out);
}

/* Reads every sensor's per-port sources of the bucket into e. */
static int ew_read_sources(struct agg *g, struct ew *e, int64_t bucket, char *err, size_t errlen)
{
    e->sources = calloc(EW_SLOTS, sizeof(*e->sources));
    e->state = calloc(EW_SLOTS, sizeof(*e->state));
    e->known = calloc(EW_SLOTS, 1);
    if (!e->sources || !e->state || !e->known) {
        snprintf(err, errlen, "early warning: out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < g->n_sensors; i++) {
        int has = rds_agg_has_bucket(g->conn, g->sensors[i].name, bucket, err, errlen);
        if (has < 0 || (has && rds_agg_port_sources(g->conn, g->sensors[i].name, bucket,
                                                    ew_on_sources, e, err, errlen) < 0))
            return -EIO;
    }
    return 0;
}

static int early_warning(struct agg *g, struct ew *e, int64_t bucket, int64_t bucket_end,
                         struct out *o, char *err, size_t errlen)
{
    json_t *fired = json_array(), *v;

    if (rds_agg_ew_state(g->conn, ew_on_state, e, err, errlen) < 0) {
        json_decref(fired);
        return -EIO;
    }
    for (int slot = 0; slot < EW_SLOTS; slot++) {
        struct agg_ew s;
        /* a tracked port without sources this bucket counts as 0 for its baseline */
        double ratio, x = (double)e->sources[slot];
        char port[16];
        if (e->known[slot]) {
            s = e->state[slot];
        } else {
            /* an untracked port has a baseline of zero once the warning itself has warmed up:
             * a port nobody scanned that suddenly draws many sources is a surge too */
            if (x < EW_TRACK_MIN)
                continue;
            s = (struct agg_ew){0, 0, e->all.n};
        }
        ew_name(slot, port, sizeof(port));
        double baseline = s.mean;
        if (agg_ew_step(&s, x, &g->ew, &ratio))
            json_array_append_new(fired, json_pack("{s:s,s:f,s:f,s:f}", "port", port, "sources", x,
                                                   "baseline", baseline, "ratio", ratio));
        /* forgotten (HDEL) when it decays */
        if (ew_put(e, port, x == 0 && s.mean < EW_FORGET_BELOW ? NULL : &s) < 0) {
            json_decref(fired);
            snprintf(err, errlen, "early warning: out of memory");
            return -ENOMEM;
        }
    }
    e->all.n++;
    if (ew_put(e, "_buckets", &e->all) < 0) {
        json_decref(fired);
        snprintf(err, errlen, "early warning: out of memory");
        return -ENOMEM;
    }
    /* one open incident per port: a surge lasting several buckets is one warning */
    size_t i, n = json_array_size(fired);
    const char **fields = calloc(n + 1, sizeof(*fields));
    char(*names)[64] = calloc(n + 1, sizeof(*names));
    json_array_foreach(fired, i, v) {
        snprintf(names[i], sizeof(names[i]), "_soc|early_warning|%s",
                 json_string_value(json_object_get(v, "port")));
        fields[i] = names[i];
    }
    json_t *olds = n ? rds_agg_incidents_get(g->conn, fields, n, err, errlen) : json_object();
    int rc = 0;
    if (!olds) {
        free(fields);
        free(names);
        json_decref(fired);
        return -EIO;
    }
    json_array_foreach(fired, i, v) {
        json_t *old = json_object_get(olds, names[i]), *inc, *a;
        char ts[40], id[160];
        if (old && strcmp(json_string_value(json_object_get(old, "status")) ?: "", "open") == 0) {
            inc = json_deep_copy(old);
            json_object_set_new(inc, "last_seen_s", json_integer(bucket_end));
            json_object_set_new(
                inc, "buckets",
                json_integer(json_integer_value(json_object_get(inc, "buckets")) + 1));
            rc = rc ? rc : out_json(o, false, names[i], inc, true, bucket_end);
            json_decref(inc);
            continue;
        }
        snprintf(id, sizeof(id), "_soc:early_warning:%s:%lld",
                 json_string_value(json_object_get(v, "port")), (long long)bucket);
        inc = json_pack("{s:s,s:s,s:s,s:s,s:I,s:i}", "id", id, "kind", "early_warning", "host",
                        json_string_value(json_object_get(v, "port")), "status", "open",
                        "last_seen_s", (json_int_t)bucket_end, "buckets", 1);
        rc = rc ? rc : out_json(o, false, names[i], inc, true, bucket_end);
        json_decref(inc);
        a = json_deep_copy(v);
        json_object_set_new(a, "kind", json_string("early_warning"));
        json_object_set_new(a, "id", json_string(id));
        json_object_set_new(a, "incident", json_string(id));
        json_object_set_new(a, "org", json_null());
        json_object_set_new(a, "severity", json_string("medium"));
        json_object_set_new(a, "bucket",
                            json_string(ds_time_format(bucket * DS_NS_PER_SEC, ts, sizeof(ts))));
        json_object_set_new(
            a, "t", json_string(ds_time_format(bucket_end * DS_NS_PER_SEC, ts, sizeof(ts))));
        rc = rc ? rc : out_json(o, true, NULL, a, true, bucket_end);
        json_decref(a);
    }
    json_decref(olds);
    free(fields);
    free(names);
    json_decref(fired);
    if (rc < 0)
        snprintf(err, errlen, "early warning: out of memory");
    return rc;
}

/* Whether this bucket writes the incident already: one of its decisions (sorted by field) or
 * an early warning (the items after them). */
static bool written(const struct out *o, const struct decision *d, size_t n, const char *field)
{
    struct decision key;

    snprintf(key.field, sizeof(key.field), "%s", field);
    if (n && bsearch(&key, d, n, sizeof(*d), cmp_decision))
        return true;
    for (size_t i = n; i < o->n_incidents; i++) {
        if (strcmp(o->keys.p + o->incidents[i].key, field) == 0)
            return true;
    }
    return false;
}

static int close_quiet(struct agg *g, int64_t bucket_end, struct out *o, const struct decision *d,
                       size_t n, char *err, size_t errlen)
{
    int64_t min_quiet = g->defaults.quiet_seconds;
    json_t *fields, *olds, *v;
    const char *field;
    size_t i;

    for (unsigned k = 0; k < g->subs->n_orgs; k++) {
        if (g->subs->orgs[k].th.quiet_seconds < min_quiet)
            min_quiet = g->subs->orgs[k].th.quiet_seconds;
    }
    fields = rds_agg_incidents_quiet(g->conn, bucket_end - min_quiet + 1, err, errlen);
    if (!fields)
        return -EIO;
    const char **list = calloc(json_array_size(fields) + 1, sizeof(*list));
    json_array_foreach(fields, i, v)
        list[i] = json_string_value(v);
    olds = rds_agg_incidents_get(g->conn, list, json_array_size(fields), err, errlen);
    free(list);
    json_decref(fields);
    if (!olds)
        return -EIO;
    json_object_foreach(olds, field, v) {
        if (written(o, d, n, field))
            continue; /* active this bucket */
        const char *org_id = json_string_value(json_object_get(v, "org"));
        int org = org_id ? agg_subscribers_find(g->subs, org_id) : -1;
        int64_t quiet = org >= 0 ? g->subs->orgs[org].th.quiet_seconds : g->defaults.quiet_seconds;
        if (bucket_end - json_integer_value(json_object_get(v, "last_seen_s")) < quiet)
            continue;
        json_t *inc = json_deep_copy(v);
        char ts[40];
        json_object_set_new(inc, "status", json_string("closed"));
        json_object_set_new(
            inc, "closed", json_string(ds_time_format(bucket_end * DS_NS_PER_SEC, ts, sizeof(ts))));
        int rc = out_json(o, false, field, inc, false,
                          json_integer_value(json_object_get(inc, "last_seen_s")));
        json_decref(inc);
        if (rc == 0)
            rc = out_pending(o, field, NULL);
        if (rc < 0) {
            json_decref(olds);
            snprintf(err, errlen, "closing incidents: out of memory");
            return rc;
        }
    }
    json_decref(olds);
    return 0;
}

/* The incident of one decision after this bucket, and its alert when one is due, written into
 * o. Returns 0 or -ENOMEM. */
static int fold_one(struct agg *g, const struct decision *d, json_t *olds, int64_t bucket,
                    int64_t bucket_end, double share, struct out *o)
{
    const struct agg_org *org = &g->subs->orgs[d->org];
    json_t *old = json_object_get(olds, d->field);
    struct agg_incident inc;
    struct item *it;
    int rc = -ENOMEM;

    /* an open incident goes on; a closed one (or one that does not read back) is replaced */
    const struct agg_incident *cached = cache_get(&g->cache, d->field);
    if (cached) {
        if (agg_incident_copy(&inc, cached) < 0)
            return -ENOMEM;
    } else if (!old || agg_incident_from_json(&inc, old) < 0 || !inc.open || inc.kind != d->kind) {
        if (old)
            agg_incident_fini(&inc);
        if (agg_incident_start(&inc, org, d->kind, d->host->ip, bucket) < 0)
            return -ENOMEM;
    }
    if (agg_incident_fold(&inc, &d->host->ev, bucket, bucket_end) < 0)
        goto out;
    if (agg_incident_due(&inc, &org->th, bucket_end)) {
        if (!(it = out_item(o, true, org->id)))
            goto out;
        agg_alert_json(&inc, bucket, bucket_end, share, &o->texts);
        out_done(o, it);
    }
    if (!(it = out_item(o, false, d->field)))
        goto out;
    agg_incident_json(&inc, &o->texts);
    it->open = inc.open;
    it->last_seen_s = inc.last_seen_s;
    out_done(o, it);
    rc = ds_buf_failed(&o->texts) || ds_buf_failed(&o->keys) ? -ENOMEM
                                                             : out_pending(o, d->field, &inc);
out:
    agg_incident_fini(&inc);
    return rc;
}

/* The texts of o with their keys, as the commit takes them (NULL when out of memory). */
static struct rds_agg_text *out_texts(const struct out *o, bool alerts)
{
    size_t n = alerts ? o->n_alerts : o->n_incidents;
    const struct item *v = alerts ? o->alerts : o->incidents;
    struct rds_agg_text *t = calloc(n + 1, sizeof(*t));

    for (size_t i = 0; t && i < n; i++) {
        t[i].key = v[i].has_key ? o->keys.p + v[i].key : NULL;
        t[i].text = o->texts.p + v[i].text;
        t[i].len = v[i].len;
        t[i].open = v[i].open;
        t[i].last_seen_s = v[i].last_seen_s;
    }
    return t;
}

static void hosts_clear(struct agg *g)
{
    for (size_t i = 0; i < g->n_hosts; i++)
        agg_evidence_fini(&g->hosts[i].ev);
    free(g->hosts);
    g->hosts = NULL;
    g->n_hosts = g->cap_hosts = 0;
    for (int v = 0; v < 2; v++) {
        json_decref(g->host_index[v]);
        g->host_index[v] = NULL;
    }
}

static int process_bucket(struct agg *g, int64_t checkpoint, int64_t bucket, int64_t seconds,
                          char *err, size_t errlen)
{
    int64_t bucket_end = bucket + seconds;
    json_t *olds = NULL;
    struct ew ew;
    struct decision *d = NULL;
    struct rds_agg_text *inc_texts = NULL, *alert_texts = NULL;
    struct out o;
    size_t n = 0;
    int rc = -EIO;
    double share = telescope_share(g);
    ds_time_ns t0 = ds_time_monotonic();
    struct timespec cpu0, cpu1;
    bool done = false, nothing = false;
    size_t n_incidents = 0, n_alerts = 0;
    char ts[40];

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
    if (g->cache.bucket != checkpoint)
        cache_clear(&g->cache); /* someone else committed since: read everything back */
    memset(&ew, 0, sizeof(ew));
    out_init(&o);
    g->host_index[0] = json_object();
    g->host_index[1] = json_object();
    g->lines = g->matched = g->skipped_bogon = g->skipped_research = 0;
    for (size_t i = 0; i < g->n_sensors; i++) {
        int has = rds_agg_has_bucket(g->conn, g->sensors[i].name, bucket, err, errlen);
        if (has < 0)
            goto out;
        if (!has)
            continue;
        g->sensor = g->sensors[i].name;
        if (rds_agg_each_record(g->conn, g->sensor, bucket, false, in_livenet, on_src, g, err,
                                errlen) < 0 ||
            rds_agg_each_record(g->conn, g->sensor, bucket, true, in_livenet, on_vic, g, err,
                                errlen) < 0)
            goto out;
    }
    if (ew_read_sources(g, &ew, bucket, err, errlen) < 0)
        goto out;
    n = decide(g, &d);
    {
        /* only the incidents the cache does not hold are read back */
        const char **fields = calloc(n + 1, sizeof(*fields));
        size_t misses = 0;
        for (size_t i = 0; fields && i < n; i++) {
            if (!cache_get(&g->cache, d[i].field))
                fields[misses++] = d[i].field;
        }
        olds = fields ? rds_agg_incidents_get(g->conn, fields, misses, err, errlen) : NULL;
        free(fields);
        if (!olds)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (fold_one(g, &d[i], olds, bucket, bucket_end, share, &o) < 0) {
            snprintf(err, errlen, "incidents: out of memory");
            goto out;
        }
    }
    if (early_warning(g, &ew, bucket, bucket_end, &o, err, errlen) < 0 ||
        close_quiet(g, bucket_end, &o, d, n, err, errlen) < 0)
        goto out;
    inc_texts = out_texts(&o, false);
    alert_texts = out_texts(&o, true);
    if (!inc_texts || !alert_texts) {
        snprintf(err, errlen, "commit: out of memory");
        goto out;
    }
    {
        struct rds_agg_commit x = {bucket,     inc_texts, o.n_incidents, alert_texts,
                                   o.n_alerts, ew.out,    ew.n_out};
        rc = rds_agg_commit(g->conn, &x, err, errlen);
    }
    if (rc == 0) {
        /* what was committed is what the next bucket starts from */
        for (size_t i = 0; i < o.n_pending && rc == 0; i++)
            rc = cache_put(&g->cache, o.pending[i].field, &o.pending[i].inc);
        g->cache.bucket = bucket;
        if (rc < 0 || g->cache.used > CACHE_MAX)
            cache_clear(&g->cache);
        rc = 0;
    } else {
        cache_clear(&g->cache);
    }
    if (rc >= 0) {
        done = true;
        nothing = rc == 1;
        n_incidents = o.n_incidents;
        n_alerts = o.n_alerts;
        rc = 0;
    }
out:
    free(d);
    free(inc_texts);
    free(alert_texts);
    json_decref(olds);
    ew_fini(&ew);
    out_fini(&o);
    hosts_clear(g);
    if (done) {
        /* timed to here: freeing a bucket's evidence is part of its cost */
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
        ds_log(DS_LOG_INFO, "aggregate",
               "bucket %s: %llu records, %llu in subscriber ranges, %zu incidents updated, %zu "
               "alerts%s (%llu bogon, %llu research sources skipped) in %.3f s wall, %.3f s CPU",
               ds_time_format(bucket * DS_NS_PER_SEC, ts, sizeof(ts)), (unsigned long long)g->lines,
               (unsigned long long)g->matched, n_incidents, n_alerts,
               nothing ? " — already done, nothing written" : "",
               (unsigned long long)g->skipped_bogon, (unsigned long long)g->skipped_research,
               (double)(ds_time_monotonic() - t0) / 1e9,
               (double)(cpu1.tv_sec - cpu0.tv_sec) + (double)(cpu1.tv_nsec - cpu0.tv_nsec) / 1e9);
    }
    return rc;
}

/* ---- the loop */

/* The next bucket to process after the checkpoint and whether it may be processed now:
 * 1 ready, 0 not yet, -1 error. */
static int next_ready(struct agg *g, int64_t checkpoint, int64_t *bucket, int64_t *seconds,
                      char *err, size_t errlen)
{
    int64_t next = INT64_MAX, now = ds_time_now() / DS_NS_PER_SEC;

    free(g->sensors);
    g->sensors = NULL;
    if (rds_agg_sensors(g->conn, &g->sensors, &g->n_sensors, err, errlen) < 0)
        return -1;
    *seconds = 0;
    for (size_t i = 0; i < g->n_sensors; i++) {
        int64_t b = rds_agg_next_bucket(g->conn, g->sensors[i].name, checkpoint, err, errlen);
        if (b < 0)
            return -1;
        if (b < next)
            next = b;
        if (g->sensors[i].bucket_seconds > *seconds)
            *seconds = g->sensors[i].bucket_seconds;
    }
    if (next == INT64_MAX || *seconds <= 0)
        return 0;
    *bucket = next;
    if (now >= next + *seconds + g->cfg->agg_wait)
        return 1;
    /* every sensor active around this bucket must have written it (or a later one) */
    for (size_t i = 0; i < g->n_sensors; i++) {
        const struct rds_sensor_state *s = &g->sensors[i];
        if (s->last_bucket >= next - ACTIVE_WINDOW && s->last_bucket < next)
            return 0;
        if (s->last_bucket < next - ACTIVE_WINDOW && s->updated >= now - ACTIVE_WINDOW)
            return 0; /* alive, but behind: wait for it */
    }
    return 1;
}

static volatile sig_atomic_t stop_flag, reload_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void on_hup(int sig)
{
    (void)sig;
    reload_flag = 1;
}

static int load_all(struct agg *g, char *err, size_t errlen)
{
    struct agg_subscribers *s;
    struct agg_trie *b;
    char bogons[900];

    if (!g->cfg->agg_subscribers[0]) {
        snprintf(err, errlen,
                 "aggregate.subscribers: expected a subscriber file (--subscribers "
                 "FILE), got nothing");
        return -EINVAL;
    }
    if (agg_subscribers_load(g->cfg->agg_subscribers, &g->defaults, &s, err, errlen) < 0)
        return -EINVAL;
    snprintf(bogons, sizeof(bogons), "%s",
             g->cfg->agg_bogons[0] ? g->cfg->agg_bogons : DS_BOGONS_FILE);
    if (load_bogons(bogons, &b, err, errlen) < 0) {
        agg_subscribers_free(s);
        return -EINVAL;
    }
    agg_subscribers_free(g->subs);
    agg_trie_free(g->bogons);
    g->subs = s;
    g->bogons = b;
    ds_log(DS_LOG_INFO, "aggregate", "%u organisations, %zu ranges, %u partners from %s", s->n_orgs,
           s->n_livenet, s->n_partners, g->cfg->agg_subscribers);
    return 0;
}

void agg_thresholds_from_config(const struct ds_config *cfg, struct agg_thresholds *t)
{
    t->infected_min_packets = cfg->agg_infected_min_packets;
    t->infected_min_dsts = cfg->agg_infected_min_dsts;
    t->ddos_min_packets = cfg->agg_ddos_min_packets;
    t->ddos_min_seconds = cfg->agg_ddos_min_seconds;
    t->ddos_min_window_packets = cfg->agg_ddos_min_window_packets;
    t->quiet_seconds = cfg->agg_quiet;
    t->renotify_seconds = cfg->agg_renotify;
}

static void pidfile_path(const struct ds_config *cfg, char *buf, size_t len)
{
    snprintf(buf, len, "%s/aggregate.pid", cfg->state_dir);
}

int agg_reload_signal(const struct ds_config *cfg, char *err, size_t errlen)
{
    char path[4096], text[32] = "";
    FILE *f;
    long pid;

    pidfile_path(cfg, path, sizeof(path));
    f = fopen(path, "r");
    if (!f || !fgets(text, sizeof(text), f) || (pid = strtol(text, NULL, 10)) <= 1) {
        snprintf(err, errlen, "%s: no running aggregator found", path);
        if (f)
            fclose(f);
        return -ESRCH;
    }
    fclose(f);
    /* a stale pid file must not make us signal some other process */
    char proc[64], cmd[256] = "";
    snprintf(proc, sizeof(proc), "/proc/%ld/cmdline", pid);
    f = fopen(proc, "r");
    size_t n = f ? fread(cmd, 1, sizeof(cmd) - 1, f) : 0;
    if (f)
        fclose(f);
    for (size_t i = 0; i < n; i++)
        cmd[i] = cmd[i] ? cmd[i] : ' ';
    cmd[n] = '\0';
    if (!strstr(cmd, "darkscope") || !strstr(cmd, " aggregate")) {
        snprintf(err, errlen, "%s: no running aggregator found (stale pid %ld)", path, pid);
        return -ESRCH;
    }
    if (kill((pid_t)pid, SIGHUP) < 0) {
        snprintf(err, errlen, "aggregator %ld: %s", pid, strerror(errno));
        return -errno;
    }
    return 0;
}

int agg_run(const struct ds_config *cfg, bool once)
{
    struct agg g;
    char err[1024], pidpath[4096];
    int64_t checkpoint;
    struct ds_user user;
    bool switch_user = false;
    int status = 0;

    memset(&g, 0, sizeof(g));
    g.cfg = cfg;
    g.cache.bucket = INT64_MIN;
    agg_thresholds_from_config(cfg, &g.defaults);
    g.ew = (struct agg_ew_params){cfg->ew_alpha, cfg->ew_ratio, cfg->ew_deviations,
                                  cfg->ew_min_sources, (unsigned)cfg->ew_warmup};
    if (load_all(&g, err, sizeof(err)) < 0) {
        fprintf(stderr, "darkscope aggregate: %s\n", err);
        return 2;
    }
    if (geteuid() == 0) {
        if (ds_user_resolve(cfg->user, &user, err, sizeof(err)) < 0) {
            fprintf(stderr, "darkscope aggregate: %s\n", err);
            status = 2;
            goto out;
        }
        switch_user = true;
    }
    g.conn =
        rds_conn_new(cfg->redis_url, cfg->state_dir, switch_user ? &user : NULL, err, sizeof(err));
    if (!g.conn) {
        fprintf(stderr, "darkscope aggregate: %s\n", err);
        status = 2;
        goto out;
    }
    if (rds_conn_ensure(g.conn) < 0 && once) {
        fprintf(stderr, "darkscope aggregate: redis: %s\n", rds_conn_error(g.conn));
        status = 3;
        goto out;
    }
    /* the pid file for --reload, written before root is dropped and handed to the service
     * account so it can be emptied at exit */
    pidfile_path(cfg, pidpath, sizeof(pidpath));
    if (!once) {
        FILE *f = fopen(pidpath, "w");
        if (f) {
            fprintf(f, "%ld\n", (long)getpid());
            if (switch_user && fchown(fileno(f), user.uid, user.gid) < 0)
                ds_log(DS_LOG_WARN, "aggregate", "%s: chown: %s", pidpath, strerror(errno));
            fclose(f);
        } else {
            ds_log(DS_LOG_WARN, "aggregate", "%s: %s (--reload will not find this aggregator)",
                   pidpath, strerror(errno));
        }
        signal(SIGHUP, on_hup);
    }
    if (switch_user && ds_privs_drop(&user, false, err, sizeof(err)) < 0) {
        fprintf(stderr, "darkscope aggregate: %s\n", err);
        status = 1;
        goto out;
    }
    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
    while (!stop_flag) {
        int64_t bucket = 0, seconds = 0;
        int ready;
        if (reload_flag) {
            reload_flag = 0;
            if (load_all(&g, err, sizeof(err)) < 0)
                ds_log(DS_LOG_ERROR, "aggregate",
                       "reload refused, keeping the previous "
                       "subscribers: %s",
                       err);
        }
        if (rds_conn_ensure(g.conn) < 0) {
            if (once) {
                fprintf(stderr, "darkscope aggregate: redis: %s\n", rds_conn_error(g.conn));
                status = 3;
                break;
            }
            ds_sleep_ns(500 * 1000000LL);
            continue;
        }
        checkpoint = rds_agg_checkpoint(g.conn, err, sizeof(err));
        if (checkpoint < -1 || (ready = next_ready(&g, checkpoint < 0 ? INT64_MIN / 2 : checkpoint,
                                                   &bucket, &seconds, err, sizeof(err))) < 0) {
            ds_log(DS_LOG_WARN, "aggregate", "%s (retrying)", err);
            if (once) {
                status = 3;
                break;
            }
            ds_sleep_ns(1000 * 1000000LL);
            continue;
        }
        if (!ready) {
            if (once)
                break;
            ds_sleep_ns(1000 * 1000000LL);
            continue;
        }
        if (process_bucket(&g, checkpoint, bucket, seconds, err, sizeof(err)) < 0) {
            ds_log(DS_LOG_WARN, "aggregate", "%s (retrying the bucket)", err);
            if (once) {
                status = 3;
                break;
            }
            ds_sleep_ns(1000 * 1000000LL);
        }
    }
    if (!once && unlink(pidpath) < 0) {
        FILE *f = fopen(pidpath, "w"); /* a directory we may not write: empty the file instead */
        if (f)
            fclose(f);
    }
out:
    cache_clear(&g.cache);
    rds_conn_free(g.conn);
    agg_subscribers_free(g.subs);
    agg_trie_free(g.bogons);
    free(g.sensors);
    return status;
}
