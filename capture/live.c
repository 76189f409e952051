/* Live events: every 100 ms, collects the workers' sampled packets and their exact counters and
 * publishes one batch (JSON) through redis/, on its own connection so bucket writes never delay
 * the map. Events that cannot be published (Redis away) are dropped and counted. */
#include "capture/cap_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIVE_PERIOD_NS (100 * 1000000LL) /* the map's latency budget: 250 ms at p99 */

struct cap_live {
    const struct ds_config *cfg;
    const struct ds_geoip *geo;
    struct cap_worker *workers;
    unsigned n_workers;
    struct rds_conn *conn;
    pthread_t thread;
    bool started;
    _Atomic bool stop; /* set by the coordinator, read by the publisher */
    uint64_t seen_total, sampled_total, lost_total;
};

struct cap_live *cap_live_new(const struct ds_config *cfg, const struct ds_geoip *geo,
                              struct cap_worker *workers, unsigned n_workers,
                              const struct ds_user *user)
{
    struct cap_live *l = calloc(1, sizeof(*l));
    char err[256];

    if (!l)
        return NULL;
    l->cfg = cfg;
    l->geo = geo;
    l->workers = workers;
    l->n_workers = n_workers;
    l->conn = rds_conn_new(cfg->redis_url, cfg->state_dir, user, err, sizeof(err));
    if (!l->conn) {
        free(l);
        return NULL;
    }
    return l;
}

static json_t *event_json(const struct cap_live *l, const struct cap_live_event *e)
{
    char addr[DS_ADDR_STRLEN], ts[40];
    struct ds_geo g;
    json_t *o = json_object();
    int tool = -1;

    for (int t = 0; t < DS_TOOL_N; t++) {
        if (e->tools & (1u << t)) {
            tool = t;
            break;
        }
    }
    json_object_set_new(o, "t", json_string(ds_time_format_us(e->ts, ts, sizeof(ts))));
    json_object_set_new(o, "src", json_string(ds_addr_format(&e->src, addr, sizeof(addr))));
    if (ds_geoip_lookup(l->geo, &e->src, &g) == 0) {
        json_object_set_new(o, "cc", g.cc[0] ? json_string(g.cc) : json_null());
        if (g.has_location) {
            json_object_set_new(o, "lat", json_real(g.lat));
            json_object_set_new(o, "lon", json_real(g.lon));
        }
    } else {
        json_object_set_new(o, "cc", json_null());
    }
    json_object_set_new(o, "dport", json_integer(e->dport));
    json_object_set_new(o, "proto", json_string(ds_proto_names[e->proto]));
    json_object_set_new(o, "class", json_string(ds_class_names[e->cls]));
    json_object_set_new(o, "tool", tool >= 0 ? json_string(ds_tool_names[tool]) : json_null());
    return o;
}

static void publish_once(struct cap_live *l)
{
    static struct cap_live_event buf[CAP_LIVE_RING];
    json_t *batch = json_object(), *events = json_array();
    uint64_t seen = 0, lost = 0, by_class[DS_CLASS_N] = {0}, bucket_sources = 0;
    int64_t bucket_start = -1;
    char ts[40];

    for (unsigned i = 0; i < l->n_workers; i++) {
        struct cap_worker *w = &l->workers[i];
        unsigned n;
        pthread_mutex_lock(&w->live_lock);
        n = w->live_n;
        memcpy(buf, w->live, n * sizeof(buf[0]));
        w->live_n = 0;
        seen += w->live_seen;
        lost += w->live_dropped;
        w->live_seen = 0;
        w->live_dropped = 0;
        for (int c = 0; c < DS_CLASS_N; c++) {
            by_class[c] += w->live_seen_class[c];
            w->live_seen_class[c] = 0;
        }
        if (w->live_bucket_start > bucket_start) {
            bucket_start = w->live_bucket_start;
            bucket_sources = 0;
        }
        if (w->live_bucket_start == bucket_start && bucket_start >= 0)
            bucket_sources += w->live_bucket_sources;
        pthread_mutex_unlock(&w->live_lock);
        for (unsigned k = 0; k < n; k++)
            json_array_append_new(events, event_json(l, &buf[k]));
    }
    l->seen_total += seen;
    l->sampled_total += json_array_size(events);
    json_object_set_new(batch, "v", json_integer(1));
    json_object_set_new(batch, "sensor", json_string(l->cfg->sensor_name));
    json_object_set_new(batch, "t", json_string(ds_time_format_us(ds_time_now(), ts, sizeof(ts))));
    json_object_set_new(batch, "seen", json_integer((json_int_t)seen));
    json_object_set_new(batch, "sampled", json_integer((json_int_t)json_array_size(events)));
    json_object_set_new(batch, "seen_total", json_integer((json_int_t)l->seen_total));
    json_object_set_new(batch, "sampled_total", json_integer((json_int_t)l->sampled_total));
    {
        json_t *cls = json_object();
        for (int c = 0; c < DS_CLASS_N; c++)
            json_object_set_new(cls, ds_class_names[c], json_integer((json_int_t)by_class[c]));
        json_object_set_new(batch, "by_class", cls);
    }
    if (bucket_start >= 0)
        json_object_set_new(batch, "bucket",
                            json_pack("{s:s,s:I}", "start",
                                      ds_time_format(bucket_start * DS_NS_PER_SEC, ts, sizeof(ts)),
                                      "sources", (json_int_t)bucket_sources));
    json_object_set_new(batch, "events", events);
    if (seen || json_array_size(events)) {
        char *text = json_dumps(batch, JSON_COMPACT);
        if (text && (rds_conn_ensure(l->conn) < 0 ||
                     rds_live_publish(l->conn, l->cfg->sensor_name, text, strlen(text)) < 0))
            l->lost_total += json_array_size(events) + lost;
        free(text);
    }
    json_decref(batch);
}

static void *live_main(void *arg)
{
    struct cap_live *l = arg;

    while (!l->stop) {
        struct timespec ts = {0, LIVE_PERIOD_NS};
        nanosleep(&ts, NULL);
        publish_once(l);
    }
    publish_once(l);
    return NULL;
}

int cap_live_start(struct cap_live *l)
{
    if (l->cfg->live_max_eps == 0)
        return 0;
    if (pthread_create(&l->thread, NULL, live_main, l) != 0)
        return -1;
    l->started = true;
    return 0;
}

void cap_live_stop(struct cap_live *l)
{
    l->stop = true;
    if (l->started)
        pthread_join(l->thread, NULL);
    l->started = false;
}

void cap_live_free(struct cap_live *l)
{
    if (!l)
        return;
    cap_live_stop(l);
    rds_conn_free(l->conn);
    free(l);
}
