/* Live events: parsing capture's batches, the shared ring, client filters and the event JSON of
 * docs/websocket-protocol.md. Pure (no I/O). */
#include "web/web_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static bool sensor_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n >= WEB_SENSOR_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    }
    return true;
}

int web_names_index(struct web_names *t, const char *name)
{
    if (!sensor_name_ok(name))
        return -1;
    for (unsigned i = 0; i < t->n; i++) {
        if (strcmp(t->name[i], name) == 0)
            return (int)i;
    }
    if (t->n == WEB_SENSORS_MAX)
        return -1;
    snprintf(t->name[t->n], sizeof(t->name[0]), "%s", name);
    return (int)t->n++;
}

int web_ring_init(struct web_ring *r, uint64_t min_cap)
{
    uint64_t cap = 256;

    while (cap < min_cap)
        cap *= 2;
    r->v = calloc(cap, sizeof(r->v[0]));
    r->cap = cap;
    r->head = 0;
    return r->v ? 0 : -1;
}

void web_ring_fini(struct web_ring *r)
{
    free(r->v);
    r->v = NULL;
}

void web_ring_push(struct web_ring *r, const struct web_event *e)
{
    r->v[r->head & (r->cap - 1)] = *e;
    r->head++;
}

uint64_t web_ring_tail(const struct web_ring *r)
{
    return r->head > r->cap ? r->head - r->cap : 0;
}

void web_addr_mask(struct ds_addr *a)
{
    if (a->family == 4)
        a->b[3] = 0;
    else if (a->family == 6)
        memset(a->b + 6, 0, 10);
}

static bool cc_ok(const char *s)
{
    return s && isupper((unsigned char)s[0]) && isupper((unsigned char)s[1]) && !s[2];
}

static int parse_event(json_t *o, struct web_event *e)
{
    const char *t = json_string_value(json_object_get(o, "t"));
    const char *src = json_string_value(json_object_get(o, "src"));
    const char *cc = json_string_value(json_object_get(o, "cc"));
    const char *proto = json_string_value(json_object_get(o, "proto"));
    const char *cls = json_string_value(json_object_get(o, "class"));
    const char *tool = json_string_value(json_object_get(o, "tool"));
    json_t *lat = json_object_get(o, "lat"), *lon = json_object_get(o, "lon");
    json_t *dport = json_object_get(o, "dport");
    int p, c;

    if (!t || !src || !proto || !cls || ds_time_parse(t, &e->ts) < 0 ||
        ds_addr_parse(src, &e->src) < 0)
        return -1;
    p = ds_name_find(ds_proto_names, DS_PROTO_N, proto);
    c = ds_name_find(ds_class_names, DS_CLASS_N, cls);
    if (p < 0 || c < 0)
        return -1;
    e->proto = (uint8_t)p;
    e->cls = (uint8_t)c;
    e->tool = tool ? (int8_t)ds_name_find(ds_tool_names, DS_TOOL_N, tool) : -1;
    e->dport = json_is_integer(dport) && json_integer_value(dport) >= 0 &&
                       json_integer_value(dport) <= 65535
                   ? (uint16_t)json_integer_value(dport)
                   : 0;
    if (cc_ok(cc))
        memcpy(e->cc, cc, 3);
    else
        e->cc[0] = '\0';
    e->has_loc = json_is_number(lat) && json_is_number(lon);
    if (e->has_loc) {
        double la = json_number_value(lat), lo = json_number_value(lon);
        e->has_loc = la >= -90 && la <= 90 && lo >= -180 && lo <= 180;
        e->lat = (float)la;
        e->lon = (float)lo;
    }
    return 0;
}

int web_batch_parse(const char *json, size_t len, struct web_names *names, bool mask,
                    struct web_batch *out, void (*push)(void *ctx, const struct web_event *e),
                    void *ctx)
{
    json_t *root = json_loadb(json, len, 0, NULL), *events, *cls, *bucket;
    const char *sensor, *t;
    int n = 0;

    memset(out, 0, sizeof(*out));
    out->sensor = -1;
    out->bucket_start = -1;
    if (!root || !json_is_object(root) || json_integer_value(json_object_get(root, "v")) != 1)
        goto bad;
    sensor = json_string_value(json_object_get(root, "sensor"));
    t = json_string_value(json_object_get(root, "t"));
    events = json_object_get(root, "events");
    if (!sensor || !t || ds_time_parse(t, &out->t) < 0 || !json_is_array(events))
        goto bad;
    out->sensor = web_names_index(names, sensor);
    if (out->sensor < 0)
        goto bad;
    out->seen = (uint64_t)json_integer_value(json_object_get(root, "seen"));
    out->sampled = (uint64_t)json_integer_value(json_object_get(root, "sampled"));
    cls = json_object_get(root, "by_class");
    if (json_is_object(cls)) {
        out->has_classes = true;
        for (int i = 0; i < DS_CLASS_N; i++)
            out->by_class[i] =
                (uint64_t)json_integer_value(json_object_get(cls, ds_class_names[i]));
    }
    bucket = json_object_get(root, "bucket");
    if (json_is_object(bucket)) {
        const char *bs = json_string_value(json_object_get(bucket, "start"));
        ds_time_ns st;
        if (bs && ds_time_parse(bs, &st) == 0) {
            out->bucket_start = st / DS_NS_PER_SEC;
            out->bucket_sources = (uint64_t)json_integer_value(json_object_get(bucket, "sources"));
        }
    }
    for (size_t i = 0; i < json_array_size(events); i++) {
        struct web_event e;
        memset(&e, 0, sizeof(e));
        if (parse_event(json_array_get(events, i), &e) < 0)
            continue;
        e.sensor = (uint16_t)out->sensor;
        if (mask)
            web_addr_mask(&e.src);
        push(ctx, &e);
        n++;
    }
    json_decref(root);
    return n;
bad:
    json_decref(root);
    return -1;
}

/* ---- filters */

static int filter_list(const json_t *filters, const char *key, json_t **list, char *why,
                       size_t whylen)
{
    *list = json_object_get(filters, key);
    if (!*list || json_is_null(*list))
        return 0;
    if (!json_is_array(*list)) {
        snprintf(why, whylen, "filter '%s': expected a list", key);
        return -1;
    }
    if (json_array_size(*list) > WEB_FILTER_VALUES) {
        snprintf(why, whylen, "filter '%s': more than %d values", key, WEB_FILTER_VALUES);
        return -1;
    }
    return 0;
}

int web_filter_parse(const json_t *filters, struct web_filter *f, char *why, size_t whylen)
{
    static const char *const known[] = {"class", "proto", "port", "cc", "sensor"};
    const char *key;
    json_t *v, *list;
    size_t i;

    memset(f, 0, sizeof(*f));
    if (!filters || json_is_null(filters))
        return 0;
    if (!json_is_object(filters)) {
        snprintf(why, whylen, "'filters': expected an object");
        return -1;
    }
    json_object_foreach((json_t *)filters, key, v) {
        if (ds_name_find(known, DS_ARRAY_LEN(known), key) < 0) {
            snprintf(why, whylen, "unknown filter '%.32s'", key);
            return -1;
        }
    }
    if (filter_list(filters, "class", &list, why, whylen) < 0)
        return -1;
    json_array_foreach(list, i, v) {
        int c =
            json_is_string(v) ? ds_name_find(ds_class_names, DS_CLASS_N, json_string_value(v)) : -1;
        if (c < 0) {
            snprintf(why, whylen, "filter 'class': unknown value");
            return -1;
        }
        f->classes |= 1u << c;
    }
    if (filter_list(filters, "proto", &list, why, whylen) < 0)
        return -1;
    json_array_foreach(list, i, v) {
        int p =
            json_is_string(v) ? ds_name_find(ds_proto_names, DS_PROTO_N, json_string_value(v)) : -1;
        if (p < 0) {
            snprintf(why, whylen, "filter 'proto': unknown value");
            return -1;
        }
        f->protos |= 1u << p;
    }
    if (filter_list(filters, "port", &list, why, whylen) < 0)
        return -1;
    json_array_foreach(list, i, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 65535) {
            snprintf(why, whylen, "filter 'port': expected integers 0-65535");
            return -1;
        }
        f->ports[f->n_ports++] = (uint16_t)json_integer_value(v);
    }
    if (filter_list(filters, "cc", &list, why, whylen) < 0)
        return -1;
    json_array_foreach(list, i, v) {
        const char *s = json_string_value(v);
        if (!s || !(cc_ok(s) || strcmp(s, "??") == 0)) {
            snprintf(why, whylen, "filter 'cc': expected two-letter country codes or \"??\"");
            return -1;
        }
        memcpy(f->cc[f->n_cc++], s[0] == '?' ? "" : s, s[0] == '?' ? 1 : 3);
    }
    if (filter_list(filters, "sensor", &list, why, whylen) < 0)
        return -1;
    json_array_foreach(list, i, v) {
        const char *s = json_string_value(v);
        if (!s || !sensor_name_ok(s)) {
            snprintf(why, whylen, "filter 'sensor': expected sensor names");
            return -1;
        }
        snprintf(f->sensors[f->n_sensors++], WEB_SENSOR_NAME_MAX, "%s", s);
    }
    return 0;
}

bool web_filter_is_all(const struct web_filter *f)
{
    return !f->classes && !f->protos && !f->n_ports && !f->n_cc && !f->n_sensors;
}

bool web_filter_match(const struct web_filter *f, const struct web_event *e,
                      const struct web_names *names)
{
    bool ok;

    if (f->classes && !(f->classes & (1u << e->cls)))
        return false;
    if (f->protos && !(f->protos & (1u << e->proto)))
        return false;
    if (f->n_ports) {
        ok = false;
        for (unsigned i = 0; i < f->n_ports && !ok; i++)
            ok = f->ports[i] == e->dport && (e->proto == DS_PROTO_TCP || e->proto == DS_PROTO_UDP);
        if (!ok)
            return false;
    }
    if (f->n_cc) {
        ok = false;
        for (unsigned i = 0; i < f->n_cc && !ok; i++)
            ok = strcmp(f->cc[i], e->cc) == 0;
        if (!ok)
            return false;
    }
    if (f->n_sensors) {
        ok = false;
        for (unsigned i = 0; i < f->n_sensors && !ok; i++)
            ok = e->sensor < names->n && strcmp(f->sensors[i], names->name[e->sensor]) == 0;
        if (!ok)
            return false;
    }
    return true;
}

json_t *web_filter_json(const struct web_filter *f)
{
    json_t *o = json_object(), *l;

    if (f->classes) {
        l = json_array();
        for (int i = 0; i < DS_CLASS_N; i++) {
            if (f->classes & (1u << i))
                json_array_append_new(l, json_string(ds_class_names[i]));
        }
        json_object_set_new(o, "class", l);
    }
    if (f->protos) {
        l = json_array();
        for (int i = 0; i < DS_PROTO_N; i++) {
            if (f->protos & (1u << i))
                json_array_append_new(l, json_string(ds_proto_names[i]));
        }
        json_object_set_new(o, "proto", l);
    }
    if (f->n_ports) {
        l = json_array();
        for (unsigned i = 0; i < f->n_ports; i++)
            json_array_append_new(l, json_integer(f->ports[i]));
        json_object_set_new(o, "port", l);
    }
    if (f->n_cc) {
        l = json_array();
        for (unsigned i = 0; i < f->n_cc; i++)
            json_array_append_new(l, json_string(f->cc[i][0] ? f->cc[i] : "??"));
        json_object_set_new(o, "cc", l);
    }
    if (f->n_sensors) {
        l = json_array();
        for (unsigned i = 0; i < f->n_sensors; i++)
            json_array_append_new(l, json_string(f->sensors[i]));
        json_object_set_new(o, "sensor", l);
    }
    return o;
}

void web_event_json(struct ds_buf *b, const struct web_event *e, const struct web_names *names)
{
    char addr[DS_ADDR_STRLEN], ts[40];

    ds_buf_adds(b, "{\"t\":\"");
    ds_buf_adds(b, ds_time_format_us(e->ts, ts, sizeof(ts)));
    ds_buf_adds(b, "\",\"sensor\":\"");
    ds_buf_adds(b, e->sensor < names->n ? names->name[e->sensor] : "");
    ds_buf_adds(b, "\",\"src\":\"");
    ds_buf_adds(b, ds_addr_format(&e->src, addr, sizeof(addr)));
    if (e->cc[0])
        ds_buf_addf(b, "\",\"cc\":\"%s\"", e->cc);
    else
        ds_buf_adds(b, "\",\"cc\":null");
    if (e->has_loc)
        ds_buf_addf(b, ",\"lat\":%.4f,\"lon\":%.4f", (double)e->lat, (double)e->lon);
    ds_buf_adds(b, ",\"dport\":");
    ds_buf_add_u64(b, e->dport);
    ds_buf_adds(b, ",\"proto\":\"");
    ds_buf_adds(b, ds_proto_names[e->proto]);
    ds_buf_adds(b, "\",\"class\":\"");
    ds_buf_adds(b, ds_class_names[e->cls]);
    if (e->tool >= 0 && e->tool < DS_TOOL_N)
        ds_buf_addf(b, "\",\"tool\":\"%s\"}", ds_tool_names[e->tool]);
    else
        ds_buf_adds(b, "\",\"tool\":null}");
}
