/* Evidence and incidents, without I/O: merging a bucket's source and victim records into
 * per-host evidence, deciding which alert kinds a host's evidence supports for an organisation,
 * folding evidence into the (organisation, kind, host) incident, when to alert, and the JSON
 * of incidents and alerts (docs/alerting.md), written straight from the structs. */
#include "aggregator/aggregator.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- evidence */

void agg_evidence_init(struct agg_evidence *ev)
{
    memset(ev, 0, sizeof(*ev));
}

void agg_evidence_fini(struct agg_evidence *ev)
{
    free(ev->prefixes);
    for (unsigned i = 0; i < ev->n_samples; i++)
        free(ev->samples[i]);
    memset(ev, 0, sizeof(*ev));
}

static int64_t int_of(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* Adds (proto, port, packets) to a port list of at most max entries; a port that does not fit
 * is dropped (lists are kept longest-first by their writers, so the dropped are the quietest). */
static void ports_add(struct agg_port *ports, unsigned *n, unsigned max, int proto, int64_t port,
                      int64_t packets)
{
    if (proto < 0 || port < 0 || port > 65535)
        return;
    for (unsigned i = 0; i < *n; i++) {
        if (ports[i].proto == proto && ports[i].port == port) {
            ports[i].packets += packets;
            return;
        }
    }
    if (*n < max)
        ports[(*n)++] = (struct agg_port){(uint8_t)proto, (uint16_t)port, packets};
}

static unsigned protos_of(const json_t *arr)
{
    unsigned mask = 0;
    size_t i;
    json_t *v;

    json_array_foreach(arr, i, v) {
        int p = ds_name_find(ds_proto_names, DS_PROTO_N, json_string_value(v) ?: "");
        if (p >= 0)
            mask |= 1u << p;
    }
    return mask;
}

/* The JSON text of a sample packet (an object): kept as text, it is written as it is. Samples
 * are flat objects of numbers and strings (docs/redis-schema.md), written here directly; any
 * other value goes through Jansson. */
static char *sample_text(const json_t *v)
{
    struct ds_buf b;
    const char *k;
    json_t *x;
    bool first = true;

    if (!json_is_object(v))
        return NULL;
    ds_buf_init(&b, 1 << 16);
    ds_buf_addc(&b, '{');
    json_object_foreach((json_t *)v, k, x) {
        if (!first)
            ds_buf_addc(&b, ',');
        first = false;
        ds_buf_add_json_str(&b, k);
        ds_buf_addc(&b, ':');
        if (json_is_integer(x)) {
            ds_buf_add_i64(&b, json_integer_value(x));
        } else if (json_is_string(x)) {
            ds_buf_add_json_str(&b, json_string_value(x));
        } else {
            char *t = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
            ds_buf_adds(&b, t ? t : "null");
            free(t);
        }
    }
    ds_buf_addc(&b, '}');
    if (ds_buf_failed(&b)) {
        ds_buf_fini(&b);
        return NULL;
    }
    return b.p; /* owned by the caller now */
}

int agg_evidence_merge(struct agg_evidence *ev, const char *sensor, const json_t *rec)
{
    const char *k;
    json_t *v;
    size_t i;
    bool known = false;

    for (unsigned s = 0; s < ev->n_sensors; s++)
        known = known || strcmp(ev->sensors[s], sensor) == 0;
    if (!known && ev->n_sensors < AGG_SENSORS_MAX)
        ev->sensors[ev->n_sensors++] = sensor;
    ev->packets += int_of(rec, "packets");
    ev->syn += int_of(rec, "syn");
    /* distinct darknet addresses: the largest per-sensor count (sensors watch different space,
     * but summing would double-count a host seen twice through overlapping prefixes) */
    if (json_is_integer(v = json_object_get(rec, "dsts")) &&
        (!ev->has_dsts || json_integer_value(v) > ev->dsts)) {
        ev->dsts = json_integer_value(v);
        ev->has_dsts = true;
    }
    if (json_is_integer(v = json_object_get(rec, "first_us")) &&
        (!ev->has_first || json_integer_value(v) < ev->first_us)) {
        ev->first_us = json_integer_value(v);
        ev->has_first = true;
    }
    if (json_is_integer(v = json_object_get(rec, "last_us")) &&
        (!ev->has_last || json_integer_value(v) > ev->last_us)) {
        ev->last_us = json_integer_value(v);
        ev->has_last = true;
    }
    json_object_foreach((json_t *)json_object_get(rec, "by_class"), k, v) {
        int c = ds_name_find(ds_class_names, DS_CLASS_N, k);
        if (c >= 0)
            ev->by_class[c] += json_integer_value(v);
    }
    json_object_foreach((json_t *)json_object_get(rec, "tool_matches"), k, v) {
        int t = ds_name_find(ds_tool_names, DS_TOOL_N, k);
        if (t >= 0)
            ev->tool_matches[t] += json_integer_value(v);
    }
    json_array_foreach(json_object_get(rec, "ports"), i, v) {
        ports_add(
            ev->ports, &ev->n_ports, AGG_PORTS_MAX,
            ds_name_find(ds_proto_names, DS_PROTO_N, json_string_value(json_array_get(v, 0)) ?: ""),
            json_integer_value(json_array_get(v, 1)), json_integer_value(json_array_get(v, 2)));
    }
    ev->protos |= protos_of(json_object_get(rec, "protos"));
    json_array_foreach(json_object_get(rec, "prefixes"), i, v) {
        struct ds_cidr c;
        bool dup = false;
        if (ds_cidr_parse(json_string_value(v) ?: "", &c) < 0)
            continue;
        for (unsigned p = 0; p < ev->n_prefixes && !dup; p++)
            dup = ev->prefixes[p].len == c.len && ds_addr_equal(&ev->prefixes[p].addr, &c.addr);
        if (dup)
            continue;
        if (ev->n_prefixes == ev->cap_prefixes) {
            unsigned cap = ev->cap_prefixes ? 2 * ev->cap_prefixes : 4;
            struct ds_cidr *p = realloc(ev->prefixes, cap * sizeof(*p));
            if (!p)
                return -ENOMEM;
            ev->prefixes = p;
            ev->cap_prefixes = cap;
        }
        ev->prefixes[ev->n_prefixes++] = c;
    }
    json_array_foreach(json_object_get(rec, "samples"), i, v) {
        if (ev->n_samples == AGG_SAMPLES_KEPT)
            break;
        char *t = sample_text(v);
        if (t)
            ev->samples[ev->n_samples++] = t;
    }
    if (!ev->cc[0] && json_is_string(v = json_object_get(rec, "cc")))
        snprintf(ev->cc, sizeof(ev->cc), "%s", json_string_value(v));
    if (!ev->has_asn && json_is_integer(v = json_object_get(rec, "asn"))) {
        ev->asn = json_integer_value(v);
        ev->has_asn = true;
    }
    return 0;
}

/* Does a darknet prefix lie inside (or around) one of the organisation's internal prefixes? */
static bool prefix_internal(const struct agg_org *org, const struct ds_cidr *p)
{
    for (unsigned i = 0; i < org->n_internal; i++) {
        if (org->internal[i].addr.family == p->addr.family && org->internal[i].len <= p->len &&
            ds_cidr_contains(&org->internal[i], &p->addr))
            return true;
        /* the sensor's prefix may be the larger one: any overlap counts */
        if (org->internal[i].addr.family == p->addr.family && p->len <= org->internal[i].len &&
            ds_cidr_contains(p, &org->internal[i].addr))
            return true;
    }
    return false;
}

unsigned agg_evidence_kinds(const struct agg_evidence *ev, const struct agg_org *org)
{
    bool internal = false, external = ev->n_prefixes == 0;

    for (unsigned i = 0; i < ev->n_prefixes; i++) {
        if (prefix_internal(org, &ev->prefixes[i]))
            internal = true;
        else
            external = true;
    }
    unsigned kinds = 0;
    if (internal)
        kinds |= 1u << AGG_KIND_INTERNAL;
    if (external && ev->by_class[DS_CLASS_SCAN] > 0)
        kinds |= 1u << AGG_KIND_INFECTED;
    return kinds;
}

const char *const agg_kind_names[AGG_KIND_N] = {"infected", "internal", "ddos_victim",
                                                "early_warning"};

/* ---- incidents */

void agg_incident_fini(struct agg_incident *inc)
{
    free(inc->id);
    free(inc->org);
    free(inc->org_name);
    for (unsigned i = 0; i < inc->n_sensors; i++)
        free(inc->sensors[i]);
    for (unsigned i = 0; i < inc->n_samples; i++)
        free(inc->samples[i]);
    memset(inc, 0, sizeof(*inc));
}

static char *dup_or_null(const char *s, bool *failed)
{
    char *d = strdup(s ? s : "");
    *failed = *failed || !d;
    return d;
}

int agg_incident_copy(struct agg_incident *dst, const struct agg_incident *src)
{
    bool failed = false;

    *dst = *src;
    dst->id = dup_or_null(src->id, &failed);
    dst->org = dup_or_null(src->org, &failed);
    dst->org_name = dup_or_null(src->org_name, &failed);
    for (unsigned i = 0; i < src->n_sensors; i++)
        dst->sensors[i] = dup_or_null(src->sensors[i], &failed);
    for (unsigned i = 0; i < src->n_samples; i++)
        dst->samples[i] = dup_or_null(src->samples[i], &failed);
    if (failed) {
        agg_incident_fini(dst);
        return -ENOMEM;
    }
    return 0;
}

int agg_incident_start(struct agg_incident *inc, const struct agg_org *org, int kind,
                       const char *host, int64_t bucket)
{
    char id[320];
    bool failed = false;

    memset(inc, 0, sizeof(*inc));
    snprintf(id, sizeof(id), "%s:%s:%s:%lld", org->id, agg_kind_names[kind], host,
             (long long)bucket);
    inc->id = dup_or_null(id, &failed);
    inc->org = dup_or_null(org->id, &failed);
    inc->org_name = dup_or_null(org->name, &failed);
    inc->kind = kind;
    snprintf(inc->host, sizeof(inc->host), "%s", host);
    inc->open = true;
    ds_time_format(bucket * DS_NS_PER_SEC, inc->opened, sizeof(inc->opened));
    inc->last_bucket = INT64_MIN;
    if (failed) {
        agg_incident_fini(inc);
        return -ENOMEM;
    }
    return 0;
}

/* Reads an integer key into *v, setting *has when it is there. */
static void opt_int(const json_t *j, const char *k, int64_t *v, bool *has)
{
    json_t *x = json_object_get(j, k);

    if (json_is_integer(x)) {
        *v = json_integer_value(x);
        if (has)
            *has = true;
    }
}

int agg_incident_from_json(struct agg_incident *inc, const json_t *j)
{
    const char *kind = json_string_value(json_object_get(j, "kind"));
    const char *k;
    bool failed = false, has_bucket = false;
    json_t *v;
    size_t i;

    memset(inc, 0, sizeof(*inc));
    inc->kind = kind ? ds_name_find(agg_kind_names, AGG_KIND_N, kind) : -1;
    if (inc->kind < 0 || inc->kind == AGG_KIND_EARLY || !json_is_string(json_object_get(j, "id")) ||
        !json_is_string(json_object_get(j, "org")))
        return -EINVAL;
    inc->id = dup_or_null(json_string_value(json_object_get(j, "id")), &failed);
    inc->org = dup_or_null(json_string_value(json_object_get(j, "org")), &failed);
    inc->org_name = dup_or_null(json_string_value(json_object_get(j, "org_name")), &failed);
    snprintf(inc->host, sizeof(inc->host), "%s",
             json_string_value(json_object_get(j, "host")) ?: "");
    inc->open = strcmp(json_string_value(json_object_get(j, "status")) ?: "", "open") == 0;
    snprintf(inc->opened, sizeof(inc->opened), "%s",
             json_string_value(json_object_get(j, "opened")) ?: "");
    opt_int(j, "packets", &inc->packets, NULL);
    opt_int(j, "buckets", &inc->buckets, NULL);
    opt_int(j, "syn", &inc->syn, NULL);
    opt_int(j, "alerts", &inc->alerts, NULL);
    inc->last_bucket = INT64_MIN;
    opt_int(j, "last_bucket", &inc->last_bucket, &has_bucket);
    opt_int(j, "first_us", &inc->first_us, &inc->has_first);
    opt_int(j, "last_us", &inc->last_us, &inc->has_last);
    opt_int(j, "darknet_addresses", &inc->darknet_addresses, &inc->has_dsts);
    opt_int(j, "bucket_packets_max", &inc->bucket_packets_max, &inc->has_bucket_packets_max);
    opt_int(j, "last_seen_s", &inc->last_seen_s, NULL);
    opt_int(j, "last_alert_s", &inc->last_alert_s, &inc->has_last_alert);
    json_object_foreach((json_t *)json_object_get(j, "ports"), k, v) {
        char proto[8];
        int port;
        if (sscanf(k, "%7[a-z]/%d", proto, &port) == 2)
            ports_add(inc->ports, &inc->n_ports, AGG_PORTS_KEPT,
                      ds_name_find(ds_proto_names, DS_PROTO_N, proto), port, json_integer_value(v));
    }
    inc->protos = protos_of(json_object_get(j, "protocols"));
    json_array_foreach(json_object_get(j, "sensors"), i, v) {
        if (inc->n_sensors < AGG_SENSORS_MAX && json_is_string(v))
            inc->sensors[inc->n_sensors++] = dup_or_null(json_string_value(v), &failed);
    }
    json_array_foreach(json_object_get(j, "samples"), i, v) {
        char *t;
        if (inc->n_samples < AGG_SAMPLES_KEPT && (t = sample_text(v)))
            inc->samples[inc->n_samples++] = t;
    }
    json_object_foreach((json_t *)json_object_get(j, "tool_matches"), k, v) {
        int t = ds_name_find(ds_tool_names, DS_TOOL_N, k);
        if (t >= 0)
            inc->tool_matches[t] = json_integer_value(v);
    }
    if (json_is_string(v = json_object_get(j, "cc")))
        snprintf(inc->cc, sizeof(inc->cc), "%s", json_string_value(v));
    opt_int(j, "asn", &inc->asn, &inc->has_asn);
    if (failed) {
        agg_incident_fini(inc);
        return -ENOMEM;
    }
    return 0;
}

static int cmp_port_packets(const void *a, const void *b)
{
    const struct agg_port *x = a, *y = b;

    if (x->packets != y->packets)
        return x->packets > y->packets ? -1 : 1;
    if (x->proto != y->proto)
        return x->proto < y->proto ? -1 : 1;
    return x->port < y->port ? -1 : x->port > y->port;
}

int agg_incident_fold(struct agg_incident *inc, const struct agg_evidence *ev, int64_t bucket,
                      int64_t bucket_end)
{
    if (inc->last_bucket >= bucket)
        return 0; /* this bucket is in it already */
    inc->last_bucket = bucket;
    inc->buckets++;
    /* an infection is evidenced by its scan-class packets; the other kinds by all of them */
    inc->packets += inc->kind == AGG_KIND_INFECTED ? ev->by_class[DS_CLASS_SCAN] : ev->packets;
    inc->syn += ev->syn;
    if (ev->has_first && (!inc->has_first || ev->first_us < inc->first_us)) {
        inc->first_us = ev->first_us;
        inc->has_first = true;
    }
    if (ev->has_last && (!inc->has_last || ev->last_us > inc->last_us)) {
        inc->last_us = ev->last_us;
        inc->has_last = true;
    }
    if (ev->has_dsts && (!inc->has_dsts || ev->dsts > inc->darknet_addresses)) {
        inc->darknet_addresses = ev->dsts;
        inc->has_dsts = true;
    }
    if (!inc->has_bucket_packets_max || ev->packets > inc->bucket_packets_max) {
        inc->bucket_packets_max = ev->packets;
        inc->has_bucket_packets_max = true;
    }
    for (unsigned i = 0; i < ev->n_ports; i++)
        ports_add(inc->ports, &inc->n_ports, AGG_PORTS_KEPT + AGG_PORTS_MAX, ev->ports[i].proto,
                  ev->ports[i].port, ev->ports[i].packets);
    /* the busiest ports stay */
    qsort(inc->ports, inc->n_ports, sizeof(inc->ports[0]), cmp_port_packets);
    if (inc->n_ports > AGG_PORTS_KEPT)
        inc->n_ports = AGG_PORTS_KEPT;
    for (int t = 0; t < DS_TOOL_N; t++)
        inc->tool_matches[t] += ev->tool_matches[t];
    inc->protos |= ev->protos;
    for (unsigned s = 0; s < ev->n_sensors; s++) {
        bool known = false;
        for (unsigned k = 0; k < inc->n_sensors; k++)
            known = known || strcmp(inc->sensors[k], ev->sensors[s]) == 0;
        if (!known && inc->n_sensors < AGG_SENSORS_MAX) {
            if (!(inc->sensors[inc->n_sensors] = strdup(ev->sensors[s])))
                return -ENOMEM;
            inc->n_sensors++;
        }
    }
    for (unsigned s = 0; s < ev->n_samples && inc->n_samples < AGG_SAMPLES_KEPT; s++) {
        if (!(inc->samples[inc->n_samples] = strdup(ev->samples[s])))
            return -ENOMEM;
        inc->n_samples++;
    }
    if (ev->cc[0])
        memcpy(inc->cc, ev->cc, sizeof(inc->cc));
    if (ev->has_asn) {
        inc->asn = ev->asn;
        inc->has_asn = true;
    }
    /* the quiet period runs from the end of the last bucket with activity */
    inc->last_seen_s = bucket_end;
    return 0;
}

bool agg_incident_due(const struct agg_incident *inc, const struct agg_thresholds *th,
                      int64_t bucket_end)
{
    bool met;

    switch (inc->kind) {
    case AGG_KIND_INFECTED:
    case AGG_KIND_INTERNAL:
        met = inc->packets >= th->infected_min_packets &&
              inc->darknet_addresses >= th->infected_min_dsts;
        break;
    case AGG_KIND_DDOS:
        met = inc->packets >= th->ddos_min_packets &&
              inc->last_us - inc->first_us >= th->ddos_min_seconds * 1000000 &&
              inc->bucket_packets_max >= th->ddos_min_window_packets;
        break;
    default:
        met = true;
    }
    if (!met)
        return false;
    if (!inc->has_last_alert)
        return true;
    return bucket_end - inc->last_alert_s >= th->renotify_seconds;
}

/* The tool most of the incident's pure SYNs carry, as capture attributes a bucket; or -1. */
static int dominant_tool(const struct agg_incident *inc)
{
    int best = -1;
    int64_t max = 0;

    for (int t = 0; t < DS_TOOL_N; t++) {
        if (inc->tool_matches[t] > max) {
            max = inc->tool_matches[t];
            best = t;
        }
    }
    return best >= 0 && (inc->syn == 0 || 2 * max >= inc->syn) ? best : -1;
}

#define KEY(b, s) ds_buf_add((b), (s), sizeof(s) - 1)

static void add_int(struct ds_buf *b, const char *key, size_t keylen, int64_t v)
{
    ds_buf_add(b, key, keylen);
    ds_buf_add_i64(b, v);
}
#define INT(b, k, v) add_int((b), (k), sizeof(k) - 1, (v))

static void add_str(struct ds_buf *b, const char *key, size_t keylen, const char *v)
{
    ds_buf_add(b, key, keylen);
    ds_buf_add_json_str(b, v);
}
#define STR(b, k, v) add_str((b), (k), sizeof(k) - 1, (v))

/* A real as Jansson writes one: always with a fraction or exponent, so it reads back as a real. */
static void add_real(struct ds_buf *b, const char *key, double v)
{
    char num[40];

    snprintf(num, sizeof(num), "%.17g", v);
    ds_buf_adds(b, key);
    ds_buf_adds(b, num);
    if (!strpbrk(num, ".eEn"))
        KEY(b, ".0");
}

/* What incidents and alerts share, from "id" (given) up to "last_seen" (docs/alerting.md). */
static void add_common(const struct agg_incident *inc, const char *id, struct ds_buf *b)
{
    char ts[40];
    int tool = dominant_tool(inc);
    bool first = true;

    STR(b, "{\"id\":", id);
    STR(b, ",\"org\":", inc->org);
    STR(b, ",\"org_name\":", inc->org_name);
    STR(b, ",\"kind\":", agg_kind_names[inc->kind]);
    STR(b, ",\"host\":", inc->host);
    STR(b, ",\"status\":", inc->open ? "open" : "closed");
    STR(b, ",\"opened\":", inc->opened);
    INT(b, ",\"packets\":", inc->packets);
    INT(b, ",\"buckets\":", inc->buckets);
    KEY(b, ",\"ports\":{");
    for (unsigned i = 0; i < inc->n_ports; i++) {
        ds_buf_adds(b, i ? ",\"" : "\"");
        ds_buf_adds(b, ds_proto_names[inc->ports[i].proto]);
        ds_buf_addc(b, '/');
        ds_buf_add_u64(b, inc->ports[i].port);
        KEY(b, "\":");
        ds_buf_add_i64(b, inc->ports[i].packets);
    }
    KEY(b, "},\"protocols\":[");
    for (int p = 0; p < DS_PROTO_N; p++) {
        if (inc->protos & (1u << p)) {
            if (!first)
                ds_buf_addc(b, ',');
            ds_buf_add_json_str(b, ds_proto_names[p]);
            first = false;
        }
    }
    KEY(b, "],\"sensors\":[");
    for (unsigned i = 0; i < inc->n_sensors; i++) {
        if (i)
            ds_buf_addc(b, ',');
        ds_buf_add_json_str(b, inc->sensors[i]);
    }
    KEY(b, "],\"samples\":[");
    for (unsigned i = 0; i < inc->n_samples; i++) {
        if (i)
            ds_buf_addc(b, ',');
        ds_buf_adds(b, inc->samples[i]);
    }
    KEY(b, "],\"syn\":");
    ds_buf_add_i64(b, inc->syn);
    if (inc->has_first)
        INT(b, ",\"first_us\":", inc->first_us);
    if (inc->has_last)
        INT(b, ",\"last_us\":", inc->last_us);
    if (inc->has_dsts)
        INT(b, ",\"darknet_addresses\":", inc->darknet_addresses);
    if (inc->has_bucket_packets_max)
        INT(b, ",\"bucket_packets_max\":", inc->bucket_packets_max);
    if (tool >= 0)
        STR(b, ",\"tool\":", ds_tool_names[tool]);
    else
        KEY(b, ",\"tool\":null");
    if (inc->cc[0])
        STR(b, ",\"cc\":", inc->cc);
    if (inc->has_asn)
        INT(b, ",\"asn\":", inc->asn);
    STR(b, ",\"first_seen\":", ds_time_format_us(inc->first_us * 1000, ts, sizeof(ts)));
    STR(b, ",\"last_seen\":", ds_time_format_us(inc->last_us * 1000, ts, sizeof(ts)));
}

void agg_incident_json(const struct agg_incident *inc, struct ds_buf *b)
{
    add_common(inc, inc->id, b);
    KEY(b, ",\"tool_matches\":{");
    for (int t = 0, n = 0; t < DS_TOOL_N; t++) {
        if (inc->tool_matches[t]) {
            ds_buf_adds(b, n++ ? ",\"" : "\"");
            ds_buf_adds(b, ds_tool_names[t]);
            KEY(b, "\":");
            ds_buf_add_i64(b, inc->tool_matches[t]);
        }
    }
    INT(b, "},\"alerts\":", inc->alerts);
    if (inc->last_bucket != INT64_MIN)
        INT(b, ",\"last_bucket\":", inc->last_bucket);
    INT(b, ",\"last_seen_s\":", inc->last_seen_s);
    if (inc->has_last_alert)
        INT(b, ",\"last_alert_s\":", inc->last_alert_s);
    ds_buf_addc(b, '}');
}

void agg_alert_json(struct agg_incident *inc, int64_t bucket, int64_t bucket_end, double v4_share,
                    struct ds_buf *b)
{
    char ts[40], id[340];

    inc->alerts++;
    inc->last_alert_s = bucket_end;
    inc->has_last_alert = true;
    snprintf(id, sizeof(id), "%s#%lld", inc->id, (long long)inc->alerts);
    add_common(inc, id, b);
    STR(b, ",\"alert_id\":", id);
    STR(b, ",\"incident\":", inc->id);
    ds_buf_adds(b, inc->alerts > 1 ? ",\"renotify\":true" : ",\"renotify\":false");
    STR(b, ",\"bucket\":", ds_time_format(bucket * DS_NS_PER_SEC, ts, sizeof(ts)));
    STR(b, ",\"t\":", ds_time_format(bucket_end * DS_NS_PER_SEC, ts, sizeof(ts)));
    STR(b, ",\"severity\":", inc->kind == AGG_KIND_INFECTED ? "medium" : "high");
    if (inc->kind == AGG_KIND_DDOS) {
        double dur = (double)(inc->last_us - inc->first_us) / 1e6;
        double pps = dur > 0 ? (double)inc->packets / dur : 0;
        /* backscatter reaches the telescope in proportion to the space it watches */
        add_real(b, ",\"attack\":{\"duration_s\":", dur);
        add_real(b, ",\"backscatter_pps\":", pps);
        add_real(b, ",\"estimated_response_pps\":", v4_share > 0 ? pps / v4_share : 0.0);
        ds_buf_addc(b, '}');
    }
    ds_buf_addc(b, '}');
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
