/* Evidence and incidents, without I/O: merging a bucket's source and victim records into
 * per-host evidence, deciding which alert kinds a host's evidence supports for an organisation,
 * folding evidence into the (organisation, kind, host) incident, and when to alert. Incidents
 * and alerts are JSON objects (docs/alerting.md). */
#include "aggregator/aggregator.h"

#include <stdlib.h>
#include <string.h>

#define SAMPLES_KEPT 5
#define PORTS_KEPT   16

static void add_int(json_t *o, const char *k, json_int_t v)
{
    json_t *x = json_object_get(o, k);
    json_object_set_new(o, k, json_integer((x ? json_integer_value(x) : 0) + v));
}

static void set_union(json_t *arr, json_t *add)
{
    size_t i, k;
    json_t *v, *w;

    json_array_foreach(add, i, v) {
        bool found = false;
        json_array_foreach(arr, k, w)
            found = found || json_equal(v, w);
        if (!found)
            json_array_append(arr, v);
    }
}

static void min_max(json_t *o, const char *k, json_t *v, bool max)
{
    json_t *x = json_object_get(o, k);

    if (!json_is_integer(v))
        return;
    if (!x || (max ? json_integer_value(v) > json_integer_value(x)
                   : json_integer_value(v) < json_integer_value(x)))
        json_object_set(o, k, v);
}

void agg_evidence_merge(json_t *ev, const char *sensor, json_t *rec)
{
    json_t *ports, *p, *cls;
    size_t i;
    const char *k;

    if (!json_object_get(ev, "sensors")) {
        json_object_set_new(ev, "sensors", json_array());
        json_object_set_new(ev, "ports", json_object());
        json_object_set_new(ev, "protos", json_array());
        json_object_set_new(ev, "prefixes", json_array());
        json_object_set_new(ev, "samples", json_array());
        json_object_set_new(ev, "tool_matches", json_object());
        json_object_set_new(ev, "by_class", json_object());
    }
    json_t *sn = json_string(sensor), *one = json_array();
    json_array_append_new(one, sn);
    set_union(json_object_get(ev, "sensors"), one);
    json_decref(one);
    add_int(ev, "packets", json_integer_value(json_object_get(rec, "packets")));
    add_int(ev, "syn", json_integer_value(json_object_get(rec, "syn")));
    /* distinct darknet addresses: the largest per-sensor count (sensors watch different space,
     * but summing would double-count a host seen twice through overlapping prefixes) */
    min_max(ev, "dsts", json_object_get(rec, "dsts"), true);
    min_max(ev, "first_us", json_object_get(rec, "first_us"), false);
    min_max(ev, "last_us", json_object_get(rec, "last_us"), true);
    cls = json_object_get(rec, "by_class");
    json_object_foreach(cls, k, p)
        add_int(json_object_get(ev, "by_class"), k, json_integer_value(p));
    json_object_foreach(json_object_get(rec, "tool_matches"), k, p)
        add_int(json_object_get(ev, "tool_matches"), k, json_integer_value(p));
    ports = json_object_get(rec, "ports");
    json_array_foreach(ports, i, p) {
        char key[24];
        snprintf(key, sizeof(key), "%s/%lld", json_string_value(json_array_get(p, 0)) ?: "?",
                 (long long)json_integer_value(json_array_get(p, 1)));
        add_int(json_object_get(ev, "ports"), key, json_integer_value(json_array_get(p, 2)));
    }
    set_union(json_object_get(ev, "protos"), json_object_get(rec, "protos"));
    set_union(json_object_get(ev, "prefixes"), json_object_get(rec, "prefixes"));
    json_array_foreach(json_object_get(rec, "samples"), i, p) {
        if (json_array_size(json_object_get(ev, "samples")) < SAMPLES_KEPT)
            json_array_append(json_object_get(ev, "samples"), p);
    }
    /* victims */
    min_max(ev, "bucket_packets_max", json_object_get(rec, "packets"), true);
    for (const char *const *f = (const char *const[]){"cc", "asn", "lat", "lon", "tool", NULL}; *f;
         f++) {
        json_t *v = json_object_get(rec, *f);
        if (v && !json_is_null(v) && !json_object_get(ev, *f))
            json_object_set(ev, *f, v);
    }
}

/* Does a darknet prefix (text) lie inside one of the organisation's internal prefixes? */
static bool prefix_internal(const struct agg_org *org, const char *text)
{
    struct ds_cidr p;

    if (!text || ds_cidr_parse(text, &p) < 0)
        return false;
    for (unsigned i = 0; i < org->n_internal; i++) {
        if (org->internal[i].addr.family == p.addr.family && org->internal[i].len <= p.len &&
            ds_cidr_contains(&org->internal[i], &p.addr))
            return true;
        /* the sensor's prefix may be the larger one: any overlap counts */
        if (org->internal[i].addr.family == p.addr.family && p.len <= org->internal[i].len &&
            ds_cidr_contains(&p, &org->internal[i].addr))
            return true;
    }
    return false;
}

unsigned agg_evidence_kinds(const json_t *ev, const struct agg_org *org)
{
    json_t *prefixes = json_object_get(ev, "prefixes"), *p;
    size_t i;
    bool internal = false, external = json_array_size(prefixes) == 0;
    json_int_t scan = json_integer_value(json_object_get(json_object_get(ev, "by_class"), "scan"));

    json_array_foreach(prefixes, i, p) {
        if (prefix_internal(org, json_string_value(p)))
            internal = true;
        else
            external = true;
    }
    unsigned kinds = 0;
    if (internal)
        kinds |= 1u << AGG_KIND_INTERNAL;
    if (external && scan > 0)
        kinds |= 1u << AGG_KIND_INFECTED;
    return kinds;
}

const char *const agg_kind_names[AGG_KIND_N] = {"infected", "internal", "ddos_victim",
                                                "early_warning"};

static const char *dominant_tool(const json_t *matches, json_int_t syn)
{
    const char *best = NULL, *k;
    json_int_t max = 0;
    json_t *v;

    json_object_foreach((json_t *)matches, k, v) {
        if (json_integer_value(v) > max) {
            max = json_integer_value(v);
            best = k;
        }
    }
    /* as capture attributes a bucket: most of the pure SYNs must carry the fingerprint */
    return best && (syn == 0 || 2 * max >= syn) ? best : NULL;
}

static void ports_top(json_t *inc)
{
    json_t *ports = json_object_get(inc, "ports");

    while (json_object_size(ports) > PORTS_KEPT) {
        const char *k, *min_k = NULL;
        json_t *v;
        json_int_t min = 0;
        json_object_foreach(ports, k, v) {
            if (!min_k || json_integer_value(v) < min) {
                min = json_integer_value(v);
                min_k = k;
            }
        }
        json_object_del(ports, min_k);
    }
}

json_t *agg_incident_fold(json_t *old, const json_t *ev, const struct agg_org *org, int kind,
                          const char *host, int64_t bucket, int64_t bucket_end)
{
    json_t *inc;
    char ts[40], id[256];
    json_t *v;
    const char *k;

    if (old && strcmp(json_string_value(json_object_get(old, "status")) ?: "", "open") == 0) {
        inc = json_deep_copy(old);
    } else {
        inc = json_object();
        snprintf(id, sizeof(id), "%s:%s:%s:%lld", org->id, agg_kind_names[kind], host,
                 (long long)bucket);
        json_object_set_new(inc, "id", json_string(id));
        json_object_set_new(inc, "org", json_string(org->id));
        json_object_set_new(inc, "org_name", json_string(org->name));
        json_object_set_new(inc, "kind", json_string(agg_kind_names[kind]));
        json_object_set_new(inc, "host", json_string(host));
        json_object_set_new(inc, "status", json_string("open"));
        json_object_set_new(inc, "opened",
                            json_string(ds_time_format(bucket * DS_NS_PER_SEC, ts, sizeof(ts))));
        json_object_set_new(inc, "packets", json_integer(0));
        json_object_set_new(inc, "buckets", json_integer(0));
        json_object_set_new(inc, "ports", json_object());
        json_object_set_new(inc, "protocols", json_array());
        json_object_set_new(inc, "sensors", json_array());
        json_object_set_new(inc, "samples", json_array());
        json_object_set_new(inc, "tool_matches", json_object());
        json_object_set_new(inc, "alerts", json_integer(0));
    }
    json_t *last_bucket = json_object_get(inc, "last_bucket");
    if (last_bucket && json_integer_value(last_bucket) >= bucket)
        return inc; /* this bucket is in it already */
    json_object_set_new(inc, "last_bucket", json_integer(bucket));
    add_int(inc, "buckets", 1);
    /* an infection is evidenced by its scan-class packets; the other kinds by all of them */
    json_int_t packets =
        kind == AGG_KIND_INFECTED
            ? json_integer_value(json_object_get(json_object_get(ev, "by_class"), "scan"))
            : json_integer_value(json_object_get(ev, "packets"));
    add_int(inc, "packets", packets);
    add_int(inc, "syn", json_integer_value(json_object_get(ev, "syn")));
    min_max(inc, "first_us", json_object_get(ev, "first_us"), false);
    min_max(inc, "last_us", json_object_get(ev, "last_us"), true);
    min_max(inc, "darknet_addresses", json_object_get(ev, "dsts"), true);
    min_max(inc, "bucket_packets_max", json_object_get(ev, "packets"), true);
    json_object_foreach(json_object_get(ev, "ports"), k, v)
        add_int(json_object_get(inc, "ports"), k, json_integer_value(v));
    ports_top(inc);
    json_object_foreach(json_object_get(ev, "tool_matches"), k, v)
        add_int(json_object_get(inc, "tool_matches"), k, json_integer_value(v));
    set_union(json_object_get(inc, "protocols"), json_object_get(ev, "protos"));
    set_union(json_object_get(inc, "sensors"), json_object_get(ev, "sensors"));
    size_t i;
    json_array_foreach(json_object_get(ev, "samples"), i, v) {
        if (json_array_size(json_object_get(inc, "samples")) < SAMPLES_KEPT)
            json_array_append(json_object_get(inc, "samples"), v);
    }
    const char *tool = dominant_tool(json_object_get(inc, "tool_matches"),
                                     json_integer_value(json_object_get(inc, "syn")));
    json_object_set_new(inc, "tool", tool ? json_string(tool) : json_null());
    for (const char *const *f = (const char *const[]){"cc", "asn", NULL}; *f; f++) {
        json_t *x = json_object_get(ev, *f);
        if (x && !json_is_null(x))
            json_object_set(inc, *f, x);
    }
    json_int_t first_us = json_integer_value(json_object_get(inc, "first_us"));
    json_int_t last_us = json_integer_value(json_object_get(inc, "last_us"));
    json_object_set_new(inc, "first_seen",
                        json_string(ds_time_format_us(first_us * 1000, ts, sizeof(ts))));
    json_object_set_new(inc, "last_seen",
                        json_string(ds_time_format_us(last_us * 1000, ts, sizeof(ts))));
    /* the quiet period runs from the end of the last bucket with activity */
    json_object_set_new(inc, "last_seen_s", json_integer(bucket_end));
    return inc;
}

bool agg_incident_due(const json_t *inc, const struct agg_thresholds *th, int kind,
                      int64_t bucket_end, double v4_share)
{
    json_int_t packets = json_integer_value(json_object_get(inc, "packets"));
    json_int_t last_alert = json_integer_value(json_object_get(inc, "last_alert_s"));
    bool met;

    switch (kind) {
    case AGG_KIND_INFECTED:
    case AGG_KIND_INTERNAL:
        met =
            packets >= th->infected_min_packets &&
            json_integer_value(json_object_get(inc, "darknet_addresses")) >= th->infected_min_dsts;
        break;
    case AGG_KIND_DDOS: {
        json_int_t dur_us = json_integer_value(json_object_get(inc, "last_us")) -
                            json_integer_value(json_object_get(inc, "first_us"));
        met = packets >= th->ddos_min_packets && dur_us >= th->ddos_min_seconds * 1000000 &&
              json_integer_value(json_object_get(inc, "bucket_packets_max")) >=
                  th->ddos_min_window_packets;
        (void)v4_share;
        break;
    }
    default:
        met = true;
    }
    if (!met)
        return false;
    if (!json_object_get(inc, "last_alert_s"))
        return true;
    return bucket_end - last_alert >= th->renotify_seconds;
}

json_t *agg_alert_from(json_t *inc, int64_t bucket, int64_t bucket_end, double v4_share)
{
    json_t *a = json_deep_copy(inc);
    char ts[40], id[300];
    json_int_t n = json_integer_value(json_object_get(inc, "alerts")) + 1;

    json_object_set_new(inc, "alerts", json_integer(n));
    json_object_set_new(inc, "last_alert_s", json_integer(bucket_end));
    snprintf(id, sizeof(id), "%s#%lld", json_string_value(json_object_get(inc, "id")),
             (long long)n);
    json_object_set_new(a, "alert_id", json_string(id));
    json_object_set_new(a, "incident", json_incref(json_object_get(inc, "id")));
    json_object_set_new(a, "id", json_string(id));
    json_object_set_new(a, "renotify", json_boolean(n > 1));
    json_object_set_new(a, "bucket",
                        json_string(ds_time_format(bucket * DS_NS_PER_SEC, ts, sizeof(ts))));
    json_object_set_new(a, "t",
                        json_string(ds_time_format(bucket_end * DS_NS_PER_SEC, ts, sizeof(ts))));
    const char *kind = json_string_value(json_object_get(inc, "kind"));
    json_object_set_new(a, "severity",
                        json_string(strcmp(kind, "internal") == 0      ? "high"
                                    : strcmp(kind, "ddos_victim") == 0 ? "high"
                                                                       : "medium"));
    if (strcmp(kind, "ddos_victim") == 0) {
        double dur = (double)(json_integer_value(json_object_get(inc, "last_us")) -
                              json_integer_value(json_object_get(inc, "first_us"))) /
                     1e6;
        double pps =
            dur > 0 ? (double)json_integer_value(json_object_get(inc, "packets")) / dur : 0;
        /* backscatter reaches the telescope in proportion to the space it watches */
        json_object_set_new(a, "attack",
                            json_pack("{s:f,s:f,s:f}", "duration_s", dur, "backscatter_pps", pps,
                                      "estimated_response_pps",
                                      v4_share > 0 ? pps / v4_share : 0.0));
    }
    json_object_del(a, "tool_matches");
    json_object_del(a, "last_alert_s");
    json_object_del(a, "alerts");
    json_object_del(a, "last_seen_s");
    json_object_del(a, "last_bucket");
    return a;
}

/* ---- early warning */

void agg_ew_parse(const char *text, struct agg_ew *s)
{
    memset(s, 0, sizeof(*s));
    if (text && sscanf(text, "%lf %lf %u", &s->mean, &s->mad, &s->n) != 3)
        memset(s, 0, sizeof(*s));
}

void agg_ew_format(const struct agg_ew *s, char *buf, size_t len)
{
    snprintf(buf, len, "%.6g %.6g %u", s->mean, s->mad, s->n);
}

bool agg_ew_step(struct agg_ew *s, double x, const struct agg_ew_params *p, double *ratio)
{
    bool fire = false;
    double dev = s->mad > 1 ? s->mad : 1;

    *ratio = s->mean > 0 ? x / s->mean : 0;
    if (s->n >= p->warmup && x >= (double)p->min_sources && x >= p->ratio * s->mean &&
        x - s->mean > p->deviations * dev)
        fire = true;
    if (s->n == 0) {
        s->mean = x;
        s->mad = 0;
    } else {
        /* a surge moves the baseline no faster than a normal bucket: it is clipped to the
         * alarm level before it is learnt, so a long surge is still reported as one */
        double learn = fire ? s->mean + p->deviations * dev : x;
        double err = learn - s->mean;
        s->mean += p->alpha * err;
        s->mad += p->alpha * ((err < 0 ? -err : err) - s->mad);
    }
    if (s->n < UINT32_MAX)
        s->n++;
    return fire;
}
