/* Live statistics for the `stats` message: exact rates from the sensors' batch counters over a
 * few seconds, and top countries, ports and tools as shares of the sampled events of the last
 * minute. Pure: time is passed in. */
#include "web/web_internal.h"

#include <stdlib.h>
#include <string.h>

#define ONLINE_BATCH_NS (10 * DS_NS_PER_SEC)

enum {
    TOP_CC,
    TOP_PORT,
    TOP_TOOL
};

void web_stats_init(struct web_stats *s, int64_t now_sec)
{
    memset(s, 0, sizeof(*s));
    s->now_sec = now_sec;
    for (unsigned i = 0; i < WEB_SENSORS_MAX; i++)
        s->sensors[i].bucket_start = -1;
}

static void clear_second(struct web_stats *s, int64_t sec)
{
    unsigned k = (unsigned)(sec % WEB_STATS_SECONDS), t = (unsigned)(sec % WEB_TOP_SECONDS);

    s->seen[k] = 0;
    s->sampled[k] = 0;
    memset(s->by_class[k], 0, sizeof(s->by_class[k]));
    for (unsigned i = 0; i < WEB_SENSORS_MAX; i++)
        s->sensors[i].seen[k] = 0;
    for (unsigned l = 0; l < 3; l++)
        s->top[l][t].n = 0;
}

void web_stats_tick(struct web_stats *s, int64_t now_sec)
{
    if (now_sec <= s->now_sec)
        return;
    if (now_sec - s->now_sec >= WEB_TOP_SECONDS) {
        for (int64_t sec = now_sec - WEB_TOP_SECONDS + 1; sec <= now_sec; sec++)
            clear_second(s, sec);
    } else {
        for (int64_t sec = s->now_sec + 1; sec <= now_sec; sec++)
            clear_second(s, sec);
    }
    s->now_sec = now_sec;
}

void web_stats_batch(struct web_stats *s, const struct web_batch *b, ds_time_ns now)
{
    unsigned k = (unsigned)(s->now_sec % WEB_STATS_SECONDS);
    struct web_sensor_live *sl;

    s->seen[k] += b->seen;
    s->sampled[k] += b->sampled;
    for (int i = 0; i < DS_CLASS_N; i++)
        s->by_class[k][i] += b->by_class[i];
    if (b->sensor < 0 || b->sensor >= WEB_SENSORS_MAX)
        return;
    sl = &s->sensors[b->sensor];
    sl->last_batch = now;
    sl->seen[k] += b->seen;
    sl->seen_total += b->seen;
    sl->sampled_total += b->sampled;
    if (b->bucket_start >= 0) {
        sl->bucket_start = b->bucket_start;
        sl->bucket_sources = b->bucket_sources;
    }
}

static void top_add(struct web_stats *s, unsigned list, uint32_t key)
{
    unsigned t = (unsigned)(s->now_sec % WEB_TOP_SECONDS);
    __typeof__(s->top[0][0]) *slot = &s->top[list][t];

    for (unsigned i = 0; i < slot->n; i++) {
        if (slot->v[i].key == key) {
            slot->v[i].n++;
            return;
        }
    }
    if (slot->n < WEB_TOP_KEYS)
        slot->v[slot->n++] = (struct web_topcount){key, 1};
}

void web_stats_event(struct web_stats *s, const struct web_event *e)
{
    uint32_t cc = e->cc[0] ? ((uint32_t)(unsigned char)e->cc[0] << 8) | (unsigned char)e->cc[1] : 0;

    top_add(s, TOP_CC, cc);
    if (e->proto == DS_PROTO_TCP || e->proto == DS_PROTO_UDP)
        top_add(s, TOP_PORT, ((uint32_t)e->proto << 16) | e->dport);
    if (e->tool >= 0)
        top_add(s, TOP_TOOL, (uint32_t)e->tool);
}

static int cmp_count_desc(const void *a, const void *b)
{
    const struct web_topcount *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? 1 : -1;
    return (x->key > y->key) - (x->key < y->key);
}

/* Sums one list over the window into out (at most WEB_TOP_KEYS keys). Returns the key count. */
static unsigned top_sum(const struct web_stats *s, unsigned list, struct web_topcount *out)
{
    unsigned n = 0;

    for (unsigned t = 0; t < WEB_TOP_SECONDS; t++) {
        const __typeof__(s->top[0][0]) *slot = &s->top[list][t];
        for (unsigned i = 0; i < slot->n; i++) {
            unsigned j;
            for (j = 0; j < n && out[j].key != slot->v[i].key; j++)
                ;
            if (j < n)
                out[j].n += slot->v[i].n;
            else if (n < WEB_TOP_KEYS)
                out[n++] = slot->v[i];
        }
    }
    if (n > 1)
        qsort(out, n, sizeof(out[0]), cmp_count_desc);
    return n;
}

static uint64_t window_sum(const uint64_t *v, const struct web_stats *s)
{
    uint64_t sum = 0;
    unsigned cur = (unsigned)(s->now_sec % WEB_STATS_SECONDS);

    /* the current second is still filling: the window is the seconds before it */
    for (unsigned i = 0; i < WEB_STATS_SECONDS; i++) {
        if (i != cur)
            sum += v[i];
    }
    return sum;
}

#define WINDOW_SECONDS (WEB_STATS_SECONDS - 1)

json_t *web_sensor_public(const char *name, const json_t *rec, ds_time_ns last_batch,
                          ds_time_ns now)
{
    json_t *o = json_object(), *loc = json_object_get(rec, "location"), *srcs, *v;
    json_int_t last = json_integer_value(json_object_get(rec, "last_bucket"));
    json_int_t secs = json_integer_value(json_object_get(rec, "bucket_seconds"));
    json_int_t updated = json_integer_value(json_object_get(rec, "updated"));
    uint64_t kdrop = 0, idrop = 0;
    char ts[40];
    const char *key;
    bool online;

    json_object_set_new(o, "name", json_string(name));
    if (json_is_object(loc)) {
        json_object_set(o, "label", json_object_get(loc, "label"));
        json_object_set(o, "lat", json_object_get(loc, "latitude"));
        json_object_set(o, "lon", json_object_get(loc, "longitude"));
    } else {
        json_object_set_new(o, "label", json_null());
        json_object_set_new(o, "lat", json_null());
        json_object_set_new(o, "lon", json_null());
    }
    v = json_object_get(rec, "darknet");
    json_object_set_new(o, "darknet", json_is_array(v) ? json_copy(v) : json_array());
    json_object_set_new(o, "bucket_seconds", secs > 0 ? json_integer(secs) : json_null());
    if (last > 0 && secs > 0) {
        json_object_set_new(o, "last_bucket",
                            json_string(ds_time_format(last * DS_NS_PER_SEC, ts, sizeof(ts))));
        json_object_set_new(o, "last_bucket_age",
                            json_real((double)(now - (last + secs) * DS_NS_PER_SEC) / 1e9));
    } else {
        json_object_set_new(o, "last_bucket", json_null());
        json_object_set_new(o, "last_bucket_age", json_null());
    }
    json_object_set_new(o, "updated",
                        updated > 0
                            ? json_string(ds_time_format(updated * DS_NS_PER_SEC, ts, sizeof(ts)))
                            : json_null());
    srcs = json_object_get(rec, "sources");
    json_object_foreach(srcs, key, v) {
        kdrop += (uint64_t)json_integer_value(json_object_get(v, "kernel_dropped"));
        idrop += (uint64_t)json_integer_value(json_object_get(v, "interface_dropped"));
    }
    json_object_set_new(o, "kernel_dropped", json_integer((json_int_t)kdrop));
    json_object_set_new(o, "interface_dropped", json_integer((json_int_t)idrop));
    /* online: a live batch lately, or (an idle darknet) a bucket record lately */
    online = (last_batch && now - last_batch < ONLINE_BATCH_NS) ||
             (updated > 0 && secs > 0 && now / DS_NS_PER_SEC - updated < 2 * secs + 30);
    json_object_set_new(o, "online", json_boolean(online));
    return o;
}

json_t *web_stats_json(const struct web_stats *s, const struct web_names *names,
                       const json_t *sensor_info, ds_time_ns now)
{
    static struct web_topcount tops[WEB_TOP_KEYS];
    json_t *o = json_object(), *cls = json_object(), *top = json_object(), *list, *sens;
    uint64_t seen = window_sum(s->seen, s), sampled = window_sum(s->sampled, s);
    uint64_t total_events = 0, bucket_sources = 0;
    int64_t bucket_start = -1;
    char ts[40];
    const char *key;
    json_t *rec;

    json_object_set_new(o, "type", json_string("stats"));
    json_object_set_new(o, "v", json_integer(1));
    json_object_set_new(o, "t", json_string(ds_time_format_us(now, ts, sizeof(ts))));
    json_object_set_new(o, "packets_per_second", json_real((double)seen / WINDOW_SECONDS));
    json_object_set_new(o, "events_per_second", json_real((double)sampled / WINDOW_SECONDS));
    json_object_set_new(o, "sampling_ratio",
                        json_real(seen ? (double)sampled / (double)seen : 1.0));
    for (int c = 0; c < DS_CLASS_N; c++) {
        uint64_t v[WEB_STATS_SECONDS];
        for (unsigned i = 0; i < WEB_STATS_SECONDS; i++)
            v[i] = s->by_class[i][c];
        json_object_set_new(cls, ds_class_names[c],
                            json_real((double)window_sum(v, s) / WINDOW_SECONDS));
    }
    json_object_set_new(o, "by_class", cls);

    for (unsigned i = 0; i < names->n; i++) {
        const struct web_sensor_live *sl = &s->sensors[i];
        if (sl->bucket_start > bucket_start)
            bucket_start = sl->bucket_start;
    }
    for (unsigned i = 0; i < names->n; i++) {
        if (s->sensors[i].bucket_start == bucket_start && bucket_start >= 0)
            bucket_sources += s->sensors[i].bucket_sources;
    }
    json_object_set_new(
        o, "bucket",
        json_pack("{s:o,s:I}", "start",
                  bucket_start >= 0
                      ? json_string(ds_time_format(bucket_start * DS_NS_PER_SEC, ts, sizeof(ts)))
                      : json_null(),
                  "sources", (json_int_t)bucket_sources));

    for (unsigned t = 0; t < WEB_TOP_SECONDS; t++) {
        for (unsigned i = 0; i < s->top[TOP_CC][t].n; i++)
            total_events += s->top[TOP_CC][t].v[i].n;
    }
    for (unsigned l = 0; l < 3; l++) {
        unsigned n = top_sum(s, l, tops);
        list = json_array();
        for (unsigned i = 0; i < n && i < WEB_TOP_N; i++) {
            double share = total_events ? (double)tops[i].n / (double)total_events : 0;
            json_t *x;
            if (l == TOP_CC) {
                char cc[3] = {(char)(tops[i].key >> 8), (char)(tops[i].key & 0xff), 0};
                x = json_pack("{s:s,s:f}", "cc", tops[i].key ? cc : "??", "share", share);
            } else if (l == TOP_PORT) {
                x = json_pack("{s:s,s:i,s:f}", "proto", ds_proto_names[tops[i].key >> 16], "port",
                              (int)(tops[i].key & 0xffff), "share", share);
            } else {
                x = json_pack("{s:s,s:f}", "tool", ds_tool_names[tops[i].key], "share", share);
            }
            json_array_append_new(list, x);
        }
        json_object_set_new(top,
                            l == TOP_CC     ? "countries"
                            : l == TOP_PORT ? "ports"
                                            : "tools",
                            list);
    }
    json_object_set_new(top, "events", json_integer((json_int_t)total_events));
    json_object_set_new(o, "top", top);

    sens = json_array();
    for (unsigned i = 0; i < names->n; i++) {
        const struct web_sensor_live *sl = &s->sensors[i];
        json_t *x = web_sensor_public(names->name[i], json_object_get(sensor_info, names->name[i]),
                                      sl->last_batch, now);
        json_object_set_new(x, "packets_per_second",
                            json_real((double)window_sum(sl->seen, s) / WINDOW_SECONDS));
        json_array_append_new(sens, x);
    }
    /* sensors that wrote buckets but publish no live batches (idle, or live events off) */
    json_object_foreach((json_t *)sensor_info, key, rec) {
        unsigned i;
        for (i = 0; i < names->n && strcmp(names->name[i], key) != 0; i++)
            ;
        if (i < names->n)
            continue;
        json_t *x = web_sensor_public(key, rec, 0, now);
        json_object_set_new(x, "packets_per_second", json_real(0));
        json_array_append_new(sens, x);
    }
    json_object_set_new(o, "sensors", sens);
    return o;
}
