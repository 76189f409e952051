/* Reading buckets back: summaries over a time range and per-source records. */
#include "redis/rds_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SUMMARY_BUCKETS_MAX 100000

struct bref {
    char sensor[72];
    int64_t start;
};

static redisReply *cmd_argv(struct rds_conn *c, struct rds_argv *a, char *err, size_t errlen)
{
    void *v = NULL;

    if (rds_argv_append(rds_conn_ctx(c), a) < 0 || redisGetReply(rds_conn_ctx(c), &v) != REDIS_OK ||
        !v || ((redisReply *)v)->type == REDIS_REPLY_ERROR) {
        rds_conn_fail(c, "query", v);
        snprintf(err, errlen, "redis: %s", rds_conn_error(c));
        if (v)
            freeReplyObject(v);
        return NULL;
    }
    return v;
}

/* Buckets of the sensors (one or all) whose start lies in [from, to). */
static int list_buckets(struct rds_conn *c, int64_t from, int64_t to, const char *sensor,
                        struct bref **out, size_t *n, json_t *sensors, char *err, size_t errlen)
{
    redisReply *names = NULL;
    size_t cap = 0;

    *out = NULL;
    *n = 0;
    if (sensor) {
        json_array_append_new(sensors, json_string(sensor));
    } else {
        names = rds_conn_command(c, "query", err, errlen, "SMEMBERS " RDS_SCHEMA ":sensors:names");
        if (!names)
            return -EIO;
        for (size_t i = 0; i < names->elements; i++)
            json_array_append_new(sensors, json_string(names->element[i]->str));
        freeReplyObject(names);
    }
    for (size_t s = 0; s < json_array_size(sensors); s++) {
        const char *name = json_string_value(json_array_get(sensors, s));
        redisReply *r = rds_conn_command(c, "query", err, errlen,
                                         "ZRANGEBYSCORE " RDS_SCHEMA ":idx:%s %lld (%lld", name,
                                         (long long)from, (long long)to);
        if (!r)
            goto fail;
        for (size_t i = 0; i < r->elements; i++) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                if (cap > SUMMARY_BUCKETS_MAX) {
                    snprintf(err, errlen, "query: range holds more than %d buckets; narrow it",
                             SUMMARY_BUCKETS_MAX);
                    freeReplyObject(r);
                    goto fail;
                }
                struct bref *nb = realloc(*out, cap * sizeof(*nb));
                if (!nb) {
                    freeReplyObject(r);
                    goto fail;
                }
                *out = nb;
            }
            snprintf((*out)[*n].sensor, sizeof((*out)[*n].sensor), "%s", name);
            (*out)[*n].start = strtoll(r->element[i]->str, NULL, 10);
            (*n)++;
        }
        freeReplyObject(r);
    }
    return 0;
fail:
    free(*out);
    *out = NULL;
    *n = 0;
    return -EIO;
}

static json_t *zeros(const char *const *names, int n)
{
    json_t *o = json_object();
    for (int i = 0; i < n; i++)
        json_object_set_new(o, names[i], json_integer(0));
    return o;
}

static void add_int(json_t *o, const char *k, json_int_t v)
{
    json_t *x = json_object_get(o, k);
    json_object_set_new(o, k, json_integer((x ? json_integer_value(x) : 0) + v));
}

/* Folds one tot hash (flat field list) into the summary's counters. */
static void fold_totals(json_t *sum, const redisReply *r)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *f = r->element[i]->str;
        json_int_t v = strtoll(r->element[i + 1]->str, NULL, 10);
        const char *colon = strchr(f, ':');
        if (!colon) {
            if (strcmp(f, "packets") == 0 || strcmp(f, "bytes") == 0 || strcmp(f, "late") == 0 ||
                strcmp(f, "sources_dropped") == 0)
                add_int(sum, f, v);
            continue;
        }
        char group[32];
        snprintf(group, sizeof(group), "%.*s", (int)(colon - f), f);
        const char *key = strcmp(group, "class") == 0       ? "by_class"
                          : strcmp(group, "proto") == 0     ? "by_proto"
                          : strcmp(group, "tool") == 0      ? "by_tool"
                          : strcmp(group, "ignored") == 0   ? "ignored"
                          : strcmp(group, "malformed") == 0 ? "malformed"
                          : strcmp(group, "truncated") == 0 ? "truncated"
                                                            : NULL;
        if (!key)
            continue;
        json_t *g = json_object_get(sum, key);
        add_int(g, colon + 1, v);
        if (strcmp(key, "ignored") == 0 || strcmp(key, "malformed") == 0)
            add_int(g, "total", v);
    }
}

struct acc {
    char key[32];
    uint64_t packets, exact_sources;
    char **hll_keys;
    size_t n_hll;
};

/* Accumulators by key, found through an open-addressing index: a bucket of backscatter holds
 * over a hundred thousand ports, and a linear search made a summary of ten buckets take minutes. */
struct accs {
    struct acc *v;
    size_t n, cap;
    uint32_t *index; /* position in v + 1; 0 = empty */
    size_t index_cap;
};

/* FNV-1a of the key as stored (at most sizeof(acc.key) - 1 bytes) */
static uint64_t key_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    const char *end = s + sizeof(((struct acc *)0)->key) - 1;

    for (; *s && s < end; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static int accs_reindex(struct accs *a, size_t cap)
{
    uint32_t *x = calloc(cap, sizeof(*x));

    if (!x)
        return -ENOMEM;
    for (size_t i = 0; i < a->n; i++) {
        size_t j = key_hash(a->v[i].key) & (cap - 1);
        while (x[j])
            j = (j + 1) & (cap - 1);
        x[j] = (uint32_t)(i + 1);
    }
    free(a->index);
    a->index = x;
    a->index_cap = cap;
    return 0;
}

static struct acc *acc_get(struct accs *a, const char *key)
{
    size_t j;

    if ((a->n + 1) * 2 > a->index_cap && accs_reindex(a, a->index_cap ? a->index_cap * 2 : 256) < 0)
        return NULL;
    j = key_hash(key) & (a->index_cap - 1);
    while (a->index[j]) {
        struct acc *x = &a->v[a->index[j] - 1];
        if (strncmp(x->key, key, sizeof(x->key) - 1) == 0)
            return x;
        j = (j + 1) & (a->index_cap - 1);
    }
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 64;
        struct acc *nv = realloc(a->v, nc * sizeof(*nv));
        if (!nv)
            return NULL;
        a->v = nv;
        a->cap = nc;
    }
    memset(&a->v[a->n], 0, sizeof(a->v[0]));
    snprintf(a->v[a->n].key, sizeof(a->v[0].key), "%s", key);
    a->index[j] = (uint32_t)(a->n + 1);
    return &a->v[a->n++];
}

static void accs_free(struct accs *a)
{
    for (size_t i = 0; i < a->n; i++) {
        for (size_t k = 0; k < a->v[i].n_hll; k++)
            free(a->v[i].hll_keys[k]);
        free(a->v[i].hll_keys);
    }
    free(a->v);
    free(a->index);
}

static void fold_counts(struct accs *a, const redisReply *r)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *f = r->element[i]->str;
        uint64_t v = strtoull(r->element[i + 1]->str, NULL, 10);
        size_t l = strlen(f);
        char key[32];
        if (l > 2 && strcmp(f + l - 2, ":s") == 0) {
            snprintf(key, sizeof(key), "%.*s", (int)(l - 2), f);
            struct acc *x = acc_get(a, key);
            if (x)
                x->exact_sources += v;
        } else {
            struct acc *x = acc_get(a, f);
            if (x)
                x->packets += v;
        }
    }
}

/* Ties in packets are broken by key in its natural order: addresses numerically (IPv4 before
 * IPv6), ports by protocol then number, anything else as text. */
static int key_cmp(const char *a, const char *b)
{
    struct ds_addr x, y;
    char pa[8], pb[8];
    unsigned na, nb;

    if (ds_addr_parse(a, &x) == 0 && ds_addr_parse(b, &y) == 0) {
        if (x.family != y.family)
            return x.family < y.family ? -1 : 1;
        return memcmp(x.b, y.b, 16);
    }
    if (sscanf(a, "%7[^/]/%u", pa, &na) == 2 && sscanf(b, "%7[^/]/%u", pb, &nb) == 2) {
        int c = strcmp(pa, pb);
        if (c)
            return c;
        return na < nb ? -1 : na > nb;
    }
    return strcmp(a, b);
}

static int cmp_acc(const void *x, const void *y)
{
    const struct acc *a = x, *b = y;
    if (a->packets != b->packets)
        return a->packets < b->packets ? 1 : -1;
    return key_cmp(a->key, b->key);
}

/* Distinct sources over the buckets: PFCOUNT of the union of the buckets' HLLs named hll; the
 * exact per-bucket count is used where a bucket kept no HLL for it. */
static int64_t union_count(struct rds_conn *c, const struct bref *b, size_t n, const char *hll,
                           char *err, size_t errlen)
{
    struct rds_argv a;
    char key[RDS_KEY_MAX], part[48];
    redisReply *r;
    int64_t v = -1;

    if (n == 0)
        return 0;
    rds_argv_init(&a);
    snprintf(part, sizeof(part), "hll:%s", hll);
    rds_argv_add(&a, "PFCOUNT", 7);
    for (size_t i = 0; i < n; i++) {
        rds_key_bucket(key, sizeof(key), b[i].sensor, b[i].start, part);
        rds_argv_add(&a, key, strlen(key));
    }
    r = cmd_argv(c, &a, err, errlen);
    if (r) {
        v = r->integer;
        freeReplyObject(r);
    }
    rds_argv_fini(&a);
    return v;
}

static json_t *top_list(struct rds_conn *c, struct accs *a, const struct bref *b, size_t n,
                        unsigned top, bool ports, char *err, size_t errlen)
{
    json_t *list = json_array();

    if (a->n > 1) /* a->v is NULL when nothing was seen */
        qsort(a->v, a->n, sizeof(a->v[0]), cmp_acc);
    for (size_t i = 0; i < a->n && i < top; i++) {
        const struct acc *x = &a->v[i];
        char hll[40];
        int64_t sources;
        snprintf(hll, sizeof(hll), "%s%s", ports ? "" : "cc/", x->key);
        sources = union_count(c, b, n, hll, err, errlen);
        if (sources < 0) {
            json_decref(list);
            return NULL;
        }
        /* one bucket: its exact count; no HLL kept anywhere (not among a bucket's busiest
         * ports): the sum of exact per-bucket counts, an upper bound */
        if (n == 1 || sources == 0)
            sources = (int64_t)x->exact_sources;
        if (ports) {
            char proto[8];
            unsigned port = 0;
            if (sscanf(x->key, "%7[^/]/%u", proto, &port) != 2)
                continue;
            json_array_append_new(
                list, json_pack("{sssIsIsI}", "proto", proto, "port", (json_int_t)port, "packets",
                                (json_int_t)x->packets, "sources", (json_int_t)sources));
        } else {
            json_array_append_new(list, json_pack("{sssIsI}", "cc", x->key, "packets",
                                                  (json_int_t)x->packets, "sources",
                                                  (json_int_t)sources));
        }
    }
    return list;
}

/* Stored times are integer microseconds; shown as RFC 3339 with microseconds. */
static void us_to_text(json_t *o, const char *us_key, const char *key)
{
    json_t *v = json_object_get(o, us_key);
    char ts[40];

    if (!json_is_integer(v))
        return;
    json_object_set_new(
        o, key, json_string(ds_time_format_us(json_integer_value(v) * 1000, ts, sizeof(ts))));
    json_object_del(o, us_key);
}

/* Finds the line "ip TAB record" in a shard value and parses its record. */
static json_t *shard_find(const char *value, size_t len, const char *ip)
{
    size_t iplen = strlen(ip);
    const char *p = value, *end = value + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        if ((size_t)(line_end - p) > iplen && memcmp(p, ip, iplen) == 0 && p[iplen] == '\t') {
            json_t *rec = json_loadb(p + iplen + 1, (size_t)(line_end - p - iplen - 1), 0, NULL);
            size_t i;
            json_t *sample;
            if (!rec)
                return NULL;
            us_to_text(rec, "first_us", "first");
            us_to_text(rec, "last_us", "last");
            json_array_foreach(json_object_get(rec, "samples"), i, sample)
                us_to_text(sample, "t_us", "t");
            return rec;
        }
        p = line_end + 1;
    }
    return NULL;
}

/* Reads every record of one source (all parts of all buckets) into a list of objects. */
static int source_records(struct rds_conn *c, const struct bref *b, size_t n, const char *ip,
                          json_t *out, char *err, size_t errlen)
{
    char key[RDS_KEY_MAX], field[16];
    struct ds_addr a;

    if (ds_addr_parse(ip, &a) < 0)
        return 0;
    snprintf(field, sizeof(field), "%u", rds_shard(&a));
    for (size_t i = 0; i < n; i++) {
        redisReply *parts, *r;
        rds_key_bucket(key, sizeof(key), b[i].sensor, b[i].start, "parts");
        parts = rds_conn_command(c, "query", err, errlen, "SMEMBERS %s", key);
        if (!parts)
            return -EIO;
        for (size_t p = 0; p <= parts->elements; p++) {
            char part[64];
            /* the whole bucket's shard is a string of its own, a late part's a hash field */
            if (p == 0)
                snprintf(part, sizeof(part), "srcrec:%s", field);
            else
                snprintf(part, sizeof(part), "src:%s", parts->element[p - 1]->str);
            rds_key_bucket(key, sizeof(key), b[i].sensor, b[i].start, part);
            r = p == 0 ? rds_conn_command(c, "query", err, errlen, "GET %s", key)
                       : rds_conn_command(c, "query", err, errlen, "HGET %s %s", key, field);
            if (!r) {
                freeReplyObject(parts);
                return -EIO;
            }
            if (r->type == REDIS_REPLY_STRING) {
                json_t *rec = shard_find(r->str, r->len, ip);
                if (rec) {
                    char ts[40];
                    json_object_set_new(rec, "sensor", json_string(b[i].sensor));
                    json_object_set_new(
                        rec, "bucket",
                        json_string(ds_time_format(b[i].start * DS_NS_PER_SEC, ts, sizeof(ts))));
                    json_array_append_new(out, rec);
                }
            }
            freeReplyObject(r);
        }
        freeReplyObject(parts);
    }
    return 0;
}

/* Sums records of one source: packets, bytes, first/last, classes, tool evidence. */
static json_t *records_sum(json_t *records)
{
    json_t *sum = json_object(), *cls = zeros(ds_class_names, DS_CLASS_N);
    uint64_t syn = 0, matches[DS_TOOL_N] = {0};
    const char *first = NULL, *last = NULL, *cc = NULL;
    json_int_t packets = 0, bytes = 0, asn = 0;
    size_t i;
    json_t *r;

    json_array_foreach(records, i, r) {
        const char *k;
        json_t *v;
        packets += json_integer_value(json_object_get(r, "packets"));
        bytes += json_integer_value(json_object_get(r, "bytes"));
        const char *f = json_string_value(json_object_get(r, "first"));
        const char *l = json_string_value(json_object_get(r, "last"));
        if (f && (!first || strcmp(f, first) < 0))
            first = f;
        if (l && (!last || strcmp(l, last) > 0))
            last = l;
        json_object_foreach(json_object_get(r, "by_class"), k, v)
            add_int(cls, k, json_integer_value(v));
        syn += (uint64_t)json_integer_value(json_object_get(r, "syn"));
        json_object_foreach(json_object_get(r, "tool_matches"), k, v) {
            int t = ds_name_find(ds_tool_names, DS_TOOL_N, k);
            if (t >= 0)
                matches[t] += (uint64_t)json_integer_value(v);
        }
        if (!cc && json_is_string(json_object_get(r, "cc")))
            cc = json_string_value(json_object_get(r, "cc"));
        if (!asn && json_is_integer(json_object_get(r, "asn")))
            asn = json_integer_value(json_object_get(r, "asn"));
    }
    int tool = ds_tool_attribute(syn, matches);
    json_object_set_new(sum, "packets", json_integer(packets));
    json_object_set_new(sum, "bytes", json_integer(bytes));
    json_object_set_new(sum, "first", first ? json_string(first) : json_null());
    json_object_set_new(sum, "last", last ? json_string(last) : json_null());
    json_object_set_new(sum, "by_class", cls);
    json_object_set_new(sum, "syn", json_integer((json_int_t)syn));
    json_t *tm = json_object();
    for (int t = 0; t < DS_TOOL_N; t++)
        json_object_set_new(tm, ds_tool_names[t], json_integer((json_int_t)matches[t]));
    json_object_set_new(sum, "tool_matches", tm);
    json_object_set_new(sum, "tool", tool >= 0 ? json_string(ds_tool_names[tool]) : json_null());
    json_object_set_new(sum, "cc", cc ? json_string(cc) : json_null());
    json_object_set_new(sum, "asn", asn ? json_integer(asn) : json_null());
    return sum;
}

static const char *dominant_class(json_t *by_class)
{
    const char *best = "other";
    json_int_t max = -1;
    for (int i = 0; i < DS_CLASS_N; i++) {
        json_int_t v = json_integer_value(json_object_get(by_class, ds_class_names[i]));
        if (v > max) {
            max = v;
            best = ds_class_names[i];
        }
    }
    return best;
}

static json_t *top_sources(struct rds_conn *c, const struct bref *b, size_t n, unsigned top,
                           char *err, size_t errlen)
{
    json_t *list = json_array();
    struct rds_argv a;
    char key[RDS_KEY_MAX], numkeys[24];
    redisReply *r;

    if (n == 0)
        return list;
    rds_argv_init(&a);
    rds_argv_add(&a, "ZUNION", 6);
    snprintf(numkeys, sizeof(numkeys), "%zu", n);
    rds_argv_add(&a, numkeys, strlen(numkeys));
    for (size_t i = 0; i < n; i++) {
        rds_key_bucket(key, sizeof(key), b[i].sensor, b[i].start, "top");
        rds_argv_add(&a, key, strlen(key));
    }
    rds_argv_add(&a, "WITHSCORES", 10);
    r = cmd_argv(c, &a, err, errlen);
    rds_argv_fini(&a);
    if (!r) {
        json_decref(list);
        return NULL;
    }
    struct accs acc = {0};
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        struct acc *x = acc_get(&acc, r->element[i]->str);
        if (x)
            x->packets = strtoull(r->element[i + 1]->str, NULL, 10);
    }
    freeReplyObject(r);
    if (acc.n > 1)
        qsort(acc.v, acc.n, sizeof(acc.v[0]), cmp_acc);
    for (size_t i = 0; i < acc.n && i < top; i++) {
        json_t *records = json_array(), *sum;
        if (source_records(c, b, n, acc.v[i].key, records, err, errlen) < 0) {
            json_decref(records);
            json_decref(list);
            accs_free(&acc);
            return NULL;
        }
        sum = records_sum(records);
        json_array_append_new(list, json_pack("{sssOsOsOsOss}", "ip", acc.v[i].key, "packets",
                                              json_object_get(sum, "packets"), "cc",
                                              json_object_get(sum, "cc"), "asn",
                                              json_object_get(sum, "asn"), "tool",
                                              json_object_get(sum, "tool"), "class",
                                              dominant_class(json_object_get(sum, "by_class"))));
        json_decref(sum);
        json_decref(records);
    }
    accs_free(&acc);
    return list;
}

json_t *rds_query_summary(struct rds_conn *c, int64_t from, int64_t to, const char *sensor,
                          unsigned top, char *err, size_t errlen)
{
    static const char *const mal_names[] = {"total",        "bad_timestamp",  "link_truncated",
                                            "ip_truncated", "bad_ip_version", "bad_ip_header"};
    static const char *const ign_names[] = {"total", "non_ip", "not_darknet", "excluded"};
    json_t *sum = json_object(), *sensors = json_array(), *x;
    struct bref *b = NULL;
    struct accs ports = {0}, ccs = {0};
    size_t n = 0;
    char ts[40];
    int64_t sources;

    if (list_buckets(c, from, to, sensor, &b, &n, sensors, err, errlen) < 0)
        goto fail;
    json_object_set_new(sum, "from",
                        json_string(ds_time_format(from * DS_NS_PER_SEC, ts, sizeof(ts))));
    json_object_set_new(sum, "to", json_string(ds_time_format(to * DS_NS_PER_SEC, ts, sizeof(ts))));
    json_object_set_new(sum, "packets", json_integer(0));
    json_object_set_new(sum, "bytes", json_integer(0));
    json_object_set_new(sum, "sources", json_integer(0));
    json_object_set_new(sum, "by_class", zeros(ds_class_names, DS_CLASS_N));
    json_object_set_new(sum, "by_proto", zeros(ds_proto_names, DS_PROTO_N));
    json_object_set_new(sum, "by_tool", zeros(ds_tool_names, DS_TOOL_N));
    json_object_set_new(sum, "ignored", zeros(ign_names, DS_ARRAY_LEN(ign_names)));
    json_object_set_new(sum, "malformed", zeros(mal_names, DS_ARRAY_LEN(mal_names)));
    json_object_set_new(sum, "truncated", zeros(ds_trunc_names, DS_TRUNC_N));
    json_object_set_new(sum, "late", json_integer(0));
    json_object_set_new(sum, "sources_dropped", json_integer(0));
    for (size_t i = 0; i < n; i++) {
        char key[RDS_KEY_MAX];
        redisReply *r;
        r = rds_conn_command(c, "query", err, errlen, "HGETALL %s",
                             rds_key_bucket(key, sizeof(key), b[i].sensor, b[i].start, "tot"));
        if (!r)
            goto fail;
        fold_totals(sum, r);
        freeReplyObject(r);
        r = rds_conn_command(c, "query", err, errlen, "HGETALL %s",
                             rds_key_bucket(key, sizeof(key), b[i].sensor, b[i].start, "port"));
        if (!r)
            goto fail;
        fold_counts(&ports, r);
        freeReplyObject(r);
        r = rds_conn_command(c, "query", err, errlen, "HGETALL %s",
                             rds_key_bucket(key, sizeof(key), b[i].sensor, b[i].start, "cc"));
        if (!r)
            goto fail;
        fold_counts(&ccs, r);
        freeReplyObject(r);
    }
    sources = union_count(c, b, n, "all", err, errlen);
    if (sources < 0)
        goto fail;
    json_object_set_new(sum, "sources", json_integer(sources));
    if (!(x = top_list(c, &ports, b, n, top, true, err, errlen)))
        goto fail;
    json_object_set_new(sum, "top_ports", x);
    if (!(x = top_list(c, &ccs, b, n, top, false, err, errlen)))
        goto fail;
    json_object_set_new(sum, "top_countries", x);
    if (!(x = top_sources(c, b, n, top, err, errlen)))
        goto fail;
    json_object_set_new(sum, "top_sources", x);
    json_object_set_new(sum, "buckets", json_integer((json_int_t)n));
    json_object_set_new(sum, "sensors", sensors);
    sensors = NULL;
    if (n) {
        int64_t lo = b[0].start, hi = b[0].start;
        for (size_t i = 1; i < n; i++) {
            lo = b[i].start < lo ? b[i].start : lo;
            hi = b[i].start > hi ? b[i].start : hi;
        }
        json_object_set_new(sum, "first_bucket",
                            json_string(ds_time_format(lo * DS_NS_PER_SEC, ts, sizeof(ts))));
        json_object_set_new(sum, "last_bucket",
                            json_string(ds_time_format(hi * DS_NS_PER_SEC, ts, sizeof(ts))));
    } else {
        json_object_set_new(sum, "first_bucket", json_null());
        json_object_set_new(sum, "last_bucket", json_null());
    }
    accs_free(&ports);
    accs_free(&ccs);
    free(b);
    return sum;
fail:
    accs_free(&ports);
    accs_free(&ccs);
    free(b);
    json_decref(sensors);
    json_decref(sum);
    return NULL;
}

json_t *rds_query_source(struct rds_conn *c, const struct ds_addr *a, int64_t from, int64_t to,
                         const char *sensor, char *err, size_t errlen)
{
    json_t *sensors = json_array(), *records = json_array(), *out;
    struct bref *b = NULL;
    size_t n = 0;
    char ip[DS_ADDR_STRLEN];

    ds_addr_format(a, ip, sizeof(ip));
    if (list_buckets(c, from, to, sensor, &b, &n, sensors, err, errlen) < 0 ||
        source_records(c, b, n, ip, records, err, errlen) < 0) {
        free(b);
        json_decref(sensors);
        json_decref(records);
        return NULL;
    }
    out = records_sum(records);
    json_object_set_new(out, "ip", json_string(ip));
    json_object_set_new(out, "records", records);
    json_decref(sensors);
    free(b);
    return out;
}

static int cmp_bref_start(const void *a, const void *b)
{
    const struct bref *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

json_t *rds_query_timeline(struct rds_conn *c, int64_t from, int64_t to, int64_t step,
                           const char *sensor, unsigned max_points, char *err, size_t errlen)
{
    json_t *out, *points, *sensors = json_array();
    struct bref *b = NULL;
    size_t n = 0, i = 0;
    char ts[40];

    if (step <= 0 || to <= from) {
        snprintf(err, errlen, "timeline: empty range or step");
        json_decref(sensors);
        return NULL;
    }
    from -= ((from % step) + step) % step;
    if ((uint64_t)((to - from + step - 1) / step) > max_points) {
        snprintf(err, errlen, "timeline: more than %u points; use a larger step", max_points);
        json_decref(sensors);
        return NULL;
    }
    if (list_buckets(c, from, to, sensor, &b, &n, sensors, err, errlen) < 0) {
        json_decref(sensors);
        return NULL;
    }
    json_decref(sensors);
    if (n > 1)
        qsort(b, n, sizeof(b[0]), cmp_bref_start);
    out = json_object();
    points = json_array();
    json_object_set_new(out, "from",
                        json_string(ds_time_format(from * DS_NS_PER_SEC, ts, sizeof(ts))));
    json_object_set_new(out, "to", json_string(ds_time_format(to * DS_NS_PER_SEC, ts, sizeof(ts))));
    json_object_set_new(out, "step", json_integer(step));
    json_object_set_new(out, "points", points);
    for (int64_t p = from; p < to; p += step) {
        json_t *pt = json_object(), *cls = zeros(ds_class_names, DS_CLASS_N);
        size_t first = i;
        json_int_t packets = 0;
        int64_t sources;

        for (; i < n && b[i].start < p + step; i++) {
            char key[RDS_KEY_MAX];
            redisReply *r =
                rds_conn_command(c, "query", err, errlen, "HGETALL %s",
                                 rds_key_bucket(key, sizeof(key), b[i].sensor, b[i].start, "tot"));
            if (!r)
                goto fail_pt;
            for (size_t k = 0; k + 1 < r->elements; k += 2) {
                const char *f = r->element[k]->str;
                json_int_t v = strtoll(r->element[k + 1]->str, NULL, 10);
                if (strcmp(f, "packets") == 0)
                    packets += v;
                else if (strncmp(f, "class:", 6) == 0 && json_object_get(cls, f + 6))
                    add_int(cls, f + 6, v);
            }
            freeReplyObject(r);
        }
        sources = union_count(c, b + first, i - first, "all", err, errlen);
        if (sources < 0)
            goto fail_pt;
        json_object_set_new(pt, "t",
                            json_string(ds_time_format(p * DS_NS_PER_SEC, ts, sizeof(ts))));
        json_object_set_new(pt, "packets", json_integer(packets));
        json_object_set_new(pt, "sources", json_integer(sources));
        json_object_set_new(pt, "by_class", cls);
        json_array_append_new(points, pt);
        continue;
fail_pt:
        json_decref(cls);
        json_decref(pt);
        json_decref(out);
        free(b);
        return NULL;
    }
    free(b);
    return out;
}

json_t *rds_query_sensors(struct rds_conn *c, char *err, size_t errlen)
{
    redisReply *r = rds_conn_command(c, "query", err, errlen, "HGETALL " RDS_SCHEMA ":sensors");
    json_t *all;

    if (!r)
        return NULL;
    all = json_object();
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        json_t *rec = json_loadb(r->element[i + 1]->str, r->element[i + 1]->len, 0, NULL);
        if (rec && json_is_object(rec))
            json_object_set_new(all, r->element[i]->str, rec);
        else
            json_decref(rec);
    }
    freeReplyObject(r);
    return all;
}

struct scan_ctx {
    json_t *by_ip;
    const char *const *ccs;
    unsigned n_ccs;
    const char *sensor;
    size_t max;
};

static int scanner_line(void *vctx, const char *ip, size_t iplen, const char *json, size_t jsonlen)
{
    struct scan_ctx *x = vctx;
    char addr[DS_ADDR_STRLEN];
    json_t *rec, *cur;

    if (iplen == 0 || iplen >= sizeof(addr))
        return 0;
    rec = json_loadb(json, jsonlen, 0, NULL);
    if (!rec)
        return 0;
    json_int_t scan = json_integer_value(json_object_get(json_object_get(rec, "by_class"), "scan"));
    const char *cc = json_string_value(json_object_get(rec, "cc"));
    bool ok = scan > 0;
    if (ok && x->n_ccs) {
        ok = false;
        for (unsigned i = 0; i < x->n_ccs && !ok; i++)
            ok = cc && strcmp(cc, x->ccs[i]) == 0;
    }
    memcpy(addr, ip, iplen);
    addr[iplen] = '\0';
    cur = ok ? json_object_get(x->by_ip, addr) : NULL;
    if (ok && !cur && json_object_size(x->by_ip) < x->max) {
        cur = json_pack("{s:s,s:O,s:O,s:I,s:O,s:O,s:o,s:o,s:o}", "ip", addr, "cc",
                        json_object_get(rec, "cc") ?: json_null(), "asn",
                        json_object_get(rec, "asn") ?: json_null(), "packets", (json_int_t)0,
                        "first_us", json_object_get(rec, "first_us"), "last_us",
                        json_object_get(rec, "last_us"), "ports", json_object(), "sensors",
                        json_array(), "tools", json_object());
        json_object_set_new(x->by_ip, addr, cur);
    }
    if (cur) {
        json_t *v;
        const char *k;
        size_t i;
        add_int(cur, "packets", scan);
        if (json_integer_value(json_object_get(rec, "first_us")) <
            json_integer_value(json_object_get(cur, "first_us")))
            json_object_set(cur, "first_us", json_object_get(rec, "first_us"));
        if (json_integer_value(json_object_get(rec, "last_us")) >
            json_integer_value(json_object_get(cur, "last_us")))
            json_object_set(cur, "last_us", json_object_get(rec, "last_us"));
        json_array_foreach(json_object_get(rec, "ports"), i, v) {
            char key[24];
            snprintf(key, sizeof(key), "%s/%lld", json_string_value(json_array_get(v, 0)) ?: "?",
                     (long long)json_integer_value(json_array_get(v, 1)));
            add_int(json_object_get(cur, "ports"), key, json_integer_value(json_array_get(v, 2)));
        }
        json_object_foreach(json_object_get(rec, "tool_matches"), k, v)
            add_int(json_object_get(cur, "tools"), k, json_integer_value(v));
        json_t *sensors = json_object_get(cur, "sensors");
        bool seen = false;
        json_array_foreach(sensors, i, v)
            seen = seen || strcmp(json_string_value(v), x->sensor) == 0;
        if (!seen)
            json_array_append_new(sensors, json_string(x->sensor));
        const char *tool = json_string_value(json_object_get(rec, "tool"));
        if (tool)
            json_object_set_new(cur, "tool", json_string(tool));
    }
    json_decref(rec);
    return 0;
}

json_t *rds_query_scanners(struct rds_conn *c, int64_t from, int64_t to,
                           const char *const *countries, unsigned n_countries, size_t max,
                           char *err, size_t errlen)
{
    json_t *sensors = json_array(), *out, *list, *v;
    struct bref *b = NULL;
    size_t n = 0;
    const char *ip;
    char ts[40];
    struct scan_ctx x = {json_object(), countries, n_countries, NULL, max};

    if (list_buckets(c, from, to, NULL, &b, &n, sensors, err, errlen) < 0) {
        json_decref(sensors);
        json_decref(x.by_ip);
        return NULL;
    }
    json_decref(sensors);
    for (size_t i = 0; i < n; i++) {
        x.sensor = b[i].sensor;
        if (rds_agg_each_record(c, b[i].sensor, b[i].start, false, NULL, scanner_line, &x, err,
                                errlen) < 0) {
            free(b);
            json_decref(x.by_ip);
            return NULL;
        }
    }
    free(b);
    list = json_array();
    json_object_foreach(x.by_ip, ip, v) {
        json_int_t f = json_integer_value(json_object_get(v, "first_us"));
        json_int_t l = json_integer_value(json_object_get(v, "last_us"));
        json_object_set_new(v, "first_seen",
                            json_string(ds_time_format_us(f * 1000, ts, sizeof(ts))));
        json_object_set_new(v, "last_seen",
                            json_string(ds_time_format_us(l * 1000, ts, sizeof(ts))));
        json_object_del(v, "first_us");
        json_object_del(v, "last_us");
        json_object_del(v, "tools");
        if (!json_object_get(v, "tool"))
            json_object_set_new(v, "tool", json_null());
        json_array_append(list, v);
    }
    out =
        json_pack("{s:s,s:s,s:o,s:b}", "from", ds_time_format(from * DS_NS_PER_SEC, ts, sizeof(ts)),
                  "to", "", "scanners", list, "truncated", json_object_size(x.by_ip) >= max);
    json_object_set_new(out, "to", json_string(ds_time_format(to * DS_NS_PER_SEC, ts, sizeof(ts))));
    json_decref(x.by_ip);
    return out;
}
