/* HTTP: bearer tokens, the REST API (docs/websocket-protocol.md), /healthz and /metrics. REST
 * requests are parsed by request.c; their queries run on one query thread with its own
 * synchronous Redis connection: the service thread queues a job, and the thread hands the answer
 * back through lws_cancel_service(), so a slow or unreachable Redis never stalls the websockets. */
#include "aggregator/aggregator.h"
#include "redis/redis.h"
#include "web/web_internal.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define JOBS_MAX   64 /* queued REST queries; more get 503 */
#define BODY_CHUNK 16384
#define FEED_MAX   100000 /* sources per feed answer */

struct web_job {
    struct web_job *next;
    struct lws *wsi; /* service thread only */
    bool cancelled;  /* service thread only: the request went away */
    struct web_query q;
    /* the answer */
    unsigned status;
    char *body;
    char *csv;
    size_t rows;
};

struct web_api {
    struct web_server *s;
    struct rds_conn *conn;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct web_job *queue, **queue_tail, *done;
    unsigned queued;
    bool stop;
};

struct http_pss {
    struct web_job *job;
    bool have_response, headers_sent, www_auth;
    unsigned retry_after; /* seconds, for a 429 */
    unsigned status;
    const char *ctype;
    char *body;
    size_t len, sent;
};

size_t web_http_pss_size(void)
{
    return sizeof(struct http_pss);
}

/* ---- tokens */

enum web_scope web_request_scope(struct web_server *s, struct lws *wsi, bool *present,
                                 const struct web_token **tok)
{
    char auth[256], arg[160];
    const char *token = NULL;
    int n;

    *present = false;
    if (tok)
        *tok = NULL;
    n = lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n > 7 && strncasecmp(auth, "Bearer ", 7) == 0)
        token = auth + 7;
    else
        token = lws_get_urlarg_by_name(wsi, "token=", arg, sizeof(arg));
    if (!token || !*token)
        return WEB_SCOPE_NONE;
    *present = true;
    const struct web_token *t = web_auth_check(&s->auth, token, strlen(token));
    if (tok)
        *tok = t;
    return t ? t->scope : WEB_SCOPE_NONE;
}

/* ---- the query thread */

static json_t *mask_sources(json_t *list)
{
    size_t i;
    json_t *v;

    json_array_foreach(list, i, v) {
        struct ds_addr a;
        char buf[DS_ADDR_STRLEN];
        const char *ip = json_string_value(json_object_get(v, "ip"));
        if (ip && ds_addr_parse(ip, &a) == 0) {
            web_addr_mask(&a);
            json_object_set_new(v, "ip", json_string(ds_addr_format(&a, buf, sizeof(buf))));
        }
    }
    return list;
}

static void run_job(struct web_api *a, struct web_job *j)
{
    const struct web_query *q = &j->q;
    char err[512];
    json_t *r = NULL, *out = NULL;
    const char *sensor = q->sensor[0] ? q->sensor : NULL;

    if (rds_conn_ensure(a->conn) < 0) {
        j->status = 503;
        out = json_pack("{s:s}", "error", "redis unreachable");
        goto done;
    }
    err[0] = '\0';
    switch (q->kind) {
    case WEB_QUERY_SUMMARY:
    case WEB_QUERY_TOP_PORTS:
    case WEB_QUERY_TOP_COUNTRIES:
    case WEB_QUERY_TOP_SOURCES:
        r = rds_query_summary(a->conn, q->from, q->to, sensor, q->top, err, sizeof(err));
        if (r && q->mask)
            mask_sources(json_object_get(r, "top_sources"));
        if (r && q->n_cc) {
            /* a partner: only its countries' aggregates */
            json_t *all = json_object_get(r, "top_countries"), *keep = json_array(), *v;
            size_t i;
            json_array_foreach(all, i, v) {
                const char *cc = json_string_value(json_object_get(v, "cc"));
                for (unsigned k = 0; cc && k < q->n_cc; k++) {
                    if (strcmp(cc, q->cc[k]) == 0)
                        json_array_append(keep, v);
                }
            }
            json_object_set_new(r, "top_countries", keep);
            j->rows = json_array_size(keep);
        }
        if (r && q->kind != WEB_QUERY_SUMMARY) {
            const char *key = q->kind == WEB_QUERY_TOP_PORTS       ? "ports"
                              : q->kind == WEB_QUERY_TOP_COUNTRIES ? "countries"
                                                                   : "sources";
            const char *from = q->kind == WEB_QUERY_TOP_PORTS       ? "top_ports"
                               : q->kind == WEB_QUERY_TOP_COUNTRIES ? "top_countries"
                                                                    : "top_sources";
            out = json_pack("{s:O,s:O,s:O}", "from", json_object_get(r, "from"), "to",
                            json_object_get(r, "to"), key, json_object_get(r, from));
            json_decref(r);
            r = NULL;
        }
        break;
    case WEB_QUERY_TIMELINE:
        r = rds_query_timeline(a->conn, q->from, q->to, q->step, sensor, WEB_TIMELINE_POINTS, err,
                               sizeof(err));
        break;
    case WEB_QUERY_ALERTS: {
        json_t *list =
            rds_query_alerts(a->conn, q->org[0] ? q->org : NULL, q->from,
                             q->alert_kind[0] ? q->alert_kind : NULL, 10000, err, sizeof(err));
        if (!list)
            break;
        j->rows = json_array_size(list);
        r = json_pack("{s:o}", "alerts", list);
        break;
    }
    case WEB_QUERY_SCANNERS: {
        const char *ccs[64];
        for (unsigned i = 0; i < q->n_cc; i++)
            ccs[i] = q->cc[i];
        json_t *feed =
            rds_query_scanners(a->conn, q->from, q->to, ccs, q->n_cc, FEED_MAX, err, sizeof(err));
        if (!feed)
            break;
        j->rows = json_array_size(json_object_get(feed, "scanners"));
        if (strcmp(q->format, "stix") == 0) {
            r = web_feed_stix(json_object_get(feed, "scanners"), "darkscope", ds_time_now());
            json_decref(feed);
        } else if (strcmp(q->format, "csv") == 0) {
            j->csv = web_feed_csv(json_object_get(feed, "scanners"));
            json_decref(feed);
            j->status = j->csv ? 200 : 500;
            j->body = j->csv;
            j->csv = NULL;
            return;
        } else {
            r = feed;
        }
        break;
    }
    case WEB_QUERY_HOST:
        r = rds_query_source(a->conn, &q->host, q->from, q->to, NULL, err, sizeof(err));
        if (r)
            j->rows = json_array_size(json_object_get(r, "records"));
        break;
    case WEB_QUERY_SENSORS: {
        json_t *all = rds_query_sensors(a->conn, err, sizeof(err)), *list, *rec;
        const char *name;
        if (!all)
            break;
        list = json_array();
        json_object_foreach(all, name, rec)
            json_array_append_new(list, web_sensor_public(name, rec, 0, ds_time_now()));
        r = json_pack("{s:o}", "sensors", list);
        json_decref(all);
        break;
    }
    }
    if (!out)
        out = r;
    if (!out) {
        j->status = rds_conn_state(a->conn) == RDS_CONNECTED ? 400 : 503;
        out = json_pack("{s:s}", "error", err[0] ? err : "query failed");
    } else {
        j->status = 200;
    }
done:
    j->body = json_dumps(out, JSON_COMPACT);
    json_decref(out);
}

static void *api_main(void *arg)
{
    struct web_api *a = arg;

    pthread_mutex_lock(&a->lock);
    for (;;) {
        struct web_job *j;
        while (!a->queue && !a->stop)
            pthread_cond_wait(&a->cond, &a->lock);
        if (a->stop)
            break;
        j = a->queue;
        a->queue = j->next;
        if (!a->queue)
            a->queue_tail = &a->queue;
        a->queued--;
        pthread_mutex_unlock(&a->lock);
        run_job(a, j);
        pthread_mutex_lock(&a->lock);
        j->next = a->done;
        a->done = j;
        struct lws_context *ctx = a->s->ctx;
        pthread_mutex_unlock(&a->lock);
        if (ctx)
            lws_cancel_service(ctx);
        pthread_mutex_lock(&a->lock);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

struct web_api *web_api_new(struct web_server *s, char *err, size_t errlen)
{
    struct web_api *a = calloc(1, sizeof(*a));

    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->s = s;
    a->queue_tail = &a->queue;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    a->conn = rds_conn_new(s->cfg->redis_url, s->cfg->state_dir, s->switch_user ? &s->user : NULL,
                           err, errlen);
    if (!a->conn || pthread_create(&a->thread, NULL, api_main, a) != 0) {
        if (a->conn)
            snprintf(err, errlen, "cannot start the query thread");
        web_api_free(a);
        return NULL;
    }
    a->started = true;
    return a;
}

static void job_free(struct web_job *j)
{
    free(j->body);
    free(j);
}

void web_api_stop(struct web_api *a)
{
    if (!a || !a->started)
        return;
    pthread_mutex_lock(&a->lock);
    a->stop = true;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    a->started = false;
}

void web_api_free(struct web_api *a)
{
    if (!a)
        return;
    web_api_stop(a);
    for (struct web_job *j = a->queue, *n; j; j = n) {
        n = j->next;
        job_free(j);
    }
    for (struct web_job *j = a->done, *n; j; j = n) {
        n = j->next;
        job_free(j);
    }
    rds_conn_free(a->conn);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    free(a);
}

/* ---- responses */

static void respond(struct web_server *s, struct lws *wsi, struct http_pss *p, unsigned status,
                    const char *ctype, char *body)
{
    free(p->body);
    p->status = status;
    p->ctype = ctype;
    p->body = body;
    p->len = body ? strlen(body) : 0;
    p->sent = 0;
    p->headers_sent = false;
    p->have_response = true;
    s->m.http[status / 100 <= 5 ? status / 100 : 0]++;
    lws_callback_on_writable(wsi);
}

static void respond_json(struct web_server *s, struct lws *wsi, struct http_pss *p, unsigned status,
                         json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    respond(s, wsi, p, status, "application/json; charset=utf-8", text);
}

static void respond_error(struct web_server *s, struct lws *wsi, struct http_pss *p,
                          unsigned status, const char *fmt, ...) DS_PRINTF(5, 6);
static void respond_error(struct web_server *s, struct lws *wsi, struct http_pss *p,
                          unsigned status, const char *fmt, ...)
{
    char msg[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    respond_json(s, wsi, p, status, json_pack("{s:s}", "error", msg));
}

static int write_response(struct web_server *s, struct lws *wsi, struct http_pss *p)
{
    if (!p->have_response)
        return 0;
    if (!p->headers_sent) {
        unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *q = start,
                                           *end = buf + sizeof(buf) - 1;
        if (lws_add_http_common_headers(wsi, p->status, p->ctype, p->len, &q, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                        (const unsigned char *)"no-store", 8, &q, end))
            return -1;
        char ra[16];
        int ral = snprintf(ra, sizeof(ra), "%u", p->retry_after);
        if (p->retry_after &&
            lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:",
                                        (const unsigned char *)ra, ral, &q, end))
            return -1;
        if (p->www_auth && lws_add_http_header_by_name(
                               wsi, (const unsigned char *)"www-authenticate:",
                               (const unsigned char *)"Bearer realm=\"darkscope\"", 24, &q, end))
            return -1;
        if (lws_finalize_write_http_header(wsi, start, &q, end))
            return -1;
        p->headers_sent = true;
        if (p->len) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    } else {
        size_t chunk = p->len - p->sent > BODY_CHUNK ? BODY_CHUNK : p->len - p->sent;
        bool final = p->sent + chunk == p->len;
        memcpy(s->scratch + LWS_PRE, p->body + p->sent, chunk);
        if (lws_write(wsi, s->scratch + LWS_PRE, chunk,
                      final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)chunk)
            return -1;
        p->sent += chunk;
        if (!final) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    /* done: the connection may carry another request, with this session data reused */
    free(p->body);
    memset(p, 0, sizeof(*p));
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ---- rate limits: a token bucket per token name (or client address), in a small table */

#define RATE_SLOTS 1024

struct rate_slot {
    char key[96];
    double tokens;
    ds_time_ns at;
};

static struct rate_slot rate_table[RATE_SLOTS];

/* 0 when the request may go on, else the seconds to wait. */
static unsigned rate_check(const struct web_server *s, const char *key)
{
    double per_sec = (double)s->cfg->web_rate_limit / 60.0;
    double burst = (double)s->cfg->web_rate_limit / 6.0 + 1;
    uint64_t h = 1469598103934665603ULL;
    ds_time_ns now = ds_time_monotonic();
    struct rate_slot *slot;

    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    slot = &rate_table[h % RATE_SLOTS];
    if (strcmp(slot->key, key) != 0) {
        /* a new key (or a collision): start it full; collisions only ever forgive */
        snprintf(slot->key, sizeof(slot->key), "%s", key);
        slot->tokens = burst;
        slot->at = now;
    }
    slot->tokens += (double)(now - slot->at) / 1e9 * per_sec;
    if (slot->tokens > burst)
        slot->tokens = burst;
    slot->at = now;
    if (slot->tokens >= 1) {
        slot->tokens -= 1;
        return 0;
    }
    return (unsigned)((1 - slot->tokens) / per_sec) + 1;
}

/* ---- requests */

static const char *url_arg(void *wsi, const char *name, char *buf, int len)
{
    return lws_get_urlarg_by_name(wsi, name, buf, len);
}

static int64_t sensors_bucket_seconds(const struct web_server *s)
{
    const char *name;
    json_t *rec;
    int64_t secs = 0;

    json_object_foreach(s->sensor_info, name, rec) {
        int64_t b = json_integer_value(json_object_get(rec, "bucket_seconds"));
        if (b > secs)
            secs = b;
    }
    return secs > 0 ? secs : s->cfg->bucket_seconds;
}

static void audit(struct web_server *s, const char *token, const char *scope, const char *endpoint,
                  unsigned status, size_t rows);

static void api_request(struct web_server *s, struct lws *wsi, struct http_pss *p, const char *path,
                        enum web_scope scope, const struct web_token *tok)
{
    struct web_api *a = s->api;
    struct web_request rq = {
        .path = path,
        .arg = url_arg,
        .arg_ctx = wsi,
        .scope = scope,
        .tok = tok,
        .livenet = s->auth.subs ? s->auth.subs->livenet : NULL,
        .bucket_seconds = sensors_bucket_seconds(s),
        .mask = s->cfg->web_mask_sources,
        .now = ds_time_now() / DS_NS_PER_SEC,
    };
    struct web_query q;
    struct web_refusal r;
    struct web_job *job;

    if (web_request_parse(&rq, &q, &r) < 0) {
        if (r.audit)
            audit(s, q.audit_token, q.audit_scope, q.endpoint, r.status, 0);
        if (r.www_auth)
            p->www_auth = true;
        respond_error(s, wsi, p, r.status, "%s", r.msg);
        return;
    }
    pthread_mutex_lock(&a->lock);
    if (a->queued >= JOBS_MAX) {
        pthread_mutex_unlock(&a->lock);
        respond_error(s, wsi, p, 503, "busy: too many queries queued");
        return;
    }
    job = malloc(sizeof(*job));
    if (!job) {
        pthread_mutex_unlock(&a->lock);
        respond_error(s, wsi, p, 503, "out of memory");
        return;
    }
    *job = (struct web_job){.wsi = wsi, .q = q};
    *a->queue_tail = job;
    a->queue_tail = &job->next;
    a->queued++;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
    p->job = job;
}

/* One line per alert or feed access: who (the token's name, never the token), with what scope,
 * which endpoint, the answer and how many rows it carried. */
static void audit(struct web_server *s, const char *token, const char *scope, const char *endpoint,
                  unsigned status, size_t rows)
{
    char ts[40];
    json_t *line;
    char *text;

    if (!s->audit)
        return;
    line = json_pack("{s:s,s:s,s:s,s:s,s:i,s:I}", "t",
                     ds_time_format_us(ds_time_now(), ts, sizeof(ts)), "token", token, "scope",
                     scope, "endpoint", endpoint, "status", (int)status, "rows", (json_int_t)rows);
    text = json_dumps(line, JSON_COMPACT);
    if (text) {
        fprintf(s->audit, "%s\n", text);
        fflush(s->audit);
    }
    free(text);
    json_decref(line);
}

/* Hands finished queries back to their requests (service thread). */
static void take_done(struct web_server *s)
{
    struct web_api *a = s->api;
    struct web_job *j, *n;

    pthread_mutex_lock(&a->lock);
    j = a->done;
    a->done = NULL;
    pthread_mutex_unlock(&a->lock);
    for (; j; j = n) {
        n = j->next;
        if (j->q.audit)
            audit(s, j->q.audit_token, j->q.audit_scope, j->q.endpoint, j->status, j->rows);
        if (!j->cancelled) {
            struct http_pss *p = lws_wsi_user(j->wsi);
            p->job = NULL;
            respond(s, j->wsi, p, j->status,
                    j->q.is_csv && j->status == 200 ? "text/csv; charset=utf-8"
                                                    : "application/json; charset=utf-8",
                    j->body);
            j->body = NULL;
        }
        job_free(j);
    }
}

static double sensor_age(const json_t *rec, ds_time_ns now, int64_t *limit, int64_t lateness)
{
    int64_t last = json_integer_value(json_object_get(rec, "last_bucket"));
    int64_t secs = json_integer_value(json_object_get(rec, "bucket_seconds"));

    if (last <= 0 || secs <= 0)
        return -1;
    *limit = 3 * secs + lateness;
    return (double)(now - (last + secs) * DS_NS_PER_SEC) / 1e9;
}

static void healthz(struct web_server *s, struct lws *wsi, struct http_pss *p)
{
    ds_time_ns now = ds_time_now();
    double best = -1;
    bool fresh = false;
    const char *name;
    json_t *rec;

    json_object_foreach(s->sensor_info, name, rec) {
        int64_t limit = 0;
        double age = sensor_age(rec, now, &limit, s->cfg->lateness_seconds);
        if (age < 0)
            continue;
        if (best < 0 || age < best)
            best = age;
        if (age <= (double)limit)
            fresh = true;
    }
    bool ok = s->redis_up && fresh;
    respond_json(s, wsi, p, ok ? 200 : 503,
                 json_pack("{s:s,s:b,s:o,s:i}", "status", ok ? "ok" : "degraded", "redis",
                           s->redis_up, "last_bucket_age",
                           best >= 0 ? json_real(best) : json_null(), "clients",
                           (int)web_live_clients(s)));
}

static void metrics(struct web_server *s, struct lws *wsi, struct http_pss *p)
{
    struct ds_buf b;
    const char *name;
    json_t *rec;

    ds_buf_init(&b, 1 << 20);
    ds_buf_adds(
        &b,
        "# HELP darkscope_live_packets_total Packets counted by capture, from its live batches.\n"
        "# TYPE darkscope_live_packets_total counter\n");
    for (unsigned i = 0; i < s->names.n; i++)
        ds_buf_addf(&b, "darkscope_live_packets_total{sensor=\"%s\"} %llu\n", s->names.name[i],
                    (unsigned long long)s->stats->sensors[i].seen_total);
    ds_buf_adds(&b, "# HELP darkscope_live_events_total Sampled live events received.\n"
                    "# TYPE darkscope_live_events_total counter\n");
    for (unsigned i = 0; i < s->names.n; i++)
        ds_buf_addf(&b, "darkscope_live_events_total{sensor=\"%s\"} %llu\n", s->names.name[i],
                    (unsigned long long)s->stats->sensors[i].sampled_total);
    ds_buf_adds(
        &b,
        "# HELP darkscope_kernel_dropped_total Packets the kernel dropped on the sensor's interfaces.\n"
        "# TYPE darkscope_kernel_dropped_total counter\n");
    json_object_foreach(s->sensor_info, name, rec) {
        json_t *pub = web_sensor_public(name, rec, 0, ds_time_now());
        ds_buf_addf(&b, "darkscope_kernel_dropped_total{sensor=\"%s\"} %lld\n", name,
                    (long long)json_integer_value(json_object_get(pub, "kernel_dropped")));
        json_decref(pub);
    }
    ds_buf_addf(
        &b,
        "# HELP darkscope_redis_up Whether the server's Redis connections are up.\n"
        "# TYPE darkscope_redis_up gauge\ndarkscope_redis_up %d\n"
        "# HELP darkscope_redis_errors_total Redis errors and lost connections.\n"
        "# TYPE darkscope_redis_errors_total counter\ndarkscope_redis_errors_total %llu\n"
        "# HELP darkscope_ws_clients Websocket clients connected.\n"
        "# TYPE darkscope_ws_clients gauge\ndarkscope_ws_clients %u\n"
        "# HELP darkscope_ws_frames_sent_total Websocket frames sent.\n"
        "# TYPE darkscope_ws_frames_sent_total counter\ndarkscope_ws_frames_sent_total %llu\n"
        "# HELP darkscope_ws_events_sent_total Events sent to websocket clients.\n"
        "# TYPE darkscope_ws_events_sent_total counter\ndarkscope_ws_events_sent_total %llu\n"
        "# HELP darkscope_ws_events_skipped_total Events clients skipped by falling behind.\n"
        "# TYPE darkscope_ws_events_skipped_total counter\ndarkscope_ws_events_skipped_total %llu\n"
        "# HELP darkscope_ws_refused_total Websocket upgrades refused (token, limits).\n"
        "# TYPE darkscope_ws_refused_total counter\ndarkscope_ws_refused_total %llu\n"
        "# HELP darkscope_live_batches_total Live batches received (bad: unparsable).\n"
        "# TYPE darkscope_live_batches_total counter\n"
        "darkscope_live_batches_total{result=\"ok\"} %llu\n"
        "darkscope_live_batches_total{result=\"bad\"} %llu\n"
        "# HELP darkscope_ws_closed_total Websocket connections closed, by reason.\n"
        "# TYPE darkscope_ws_closed_total counter\n",
        s->redis_up ? 1 : 0, (unsigned long long)(s->watch ? rds_watch_errors(s->watch) : 0),
        web_live_clients(s), (unsigned long long)s->m.frames_sent,
        (unsigned long long)s->m.events_sent, (unsigned long long)s->m.events_skipped,
        (unsigned long long)s->m.clients_refused, (unsigned long long)s->m.batches,
        (unsigned long long)s->m.bad_batches);
    for (unsigned i = 0; i < DS_ARRAY_LEN(s->m.closed); i++)
        ds_buf_addf(&b, "darkscope_ws_closed_total{reason=\"%s\"} %llu\n", web_close_names[i],
                    (unsigned long long)s->m.closed[i]);
    ds_buf_adds(&b, "# HELP darkscope_http_requests_total HTTP answers by status class.\n"
                    "# TYPE darkscope_http_requests_total counter\n");
    for (unsigned i = 2; i <= 5; i++)
        ds_buf_addf(&b, "darkscope_http_requests_total{status=\"%uxx\"} %llu\n", i,
                    (unsigned long long)s->m.http[i]);
    ds_buf_addf(&b,
                "# HELP darkscope_http_connections HTTP connections open (this one too), websocket "
                "clients not included.\n"
                "# TYPE darkscope_http_connections gauge\ndarkscope_http_connections %u\n"
                "# HELP darkscope_http_connections_refused_total Connections closed when accepted: "
                "their address had web.max_http_connections_per_address open.\n"
                "# TYPE darkscope_http_connections_refused_total counter\n"
                "darkscope_http_connections_refused_total %llu\n",
                s->peers.open, (unsigned long long)s->peers.refused);
    char *text = strdup(b.p ? b.p : "");
    ds_buf_fini(&b);
    respond(s, wsi, p, 200, "text/plain; version=0.0.4; charset=utf-8", text);
}

int web_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len)
{
    struct web_server *s = web_server_of(wsi);
    struct http_pss *p = user;
    char path[256];
    bool present;
    enum web_scope scope;
    const struct web_token *tok = NULL;

    (void)in;
    (void)len;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (s && s->api)
            take_done(s);
        return 0;

    case LWS_CALLBACK_HTTP:
        if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0) {
            respond_error(s, wsi, p, 405, "only GET");
            return 0;
        }
        scope = web_request_scope(s, wsi, &present, &tok);
        if ((present && scope == WEB_SCOPE_NONE) || (s->auth.required && !present)) {
            if (strcmp(path, "/api/v1/alerts") == 0)
                audit(s, "-", "none", path, 401, 0);
            p->www_auth = true;
            respond_error(s, wsi, p, 401, "a valid bearer token is required");
            return 0;
        }
        {
            char key[96];
            if (tok)
                snprintf(key, sizeof(key), "t:%s", tok->name);
            else {
                char peer[64] = "";
                lws_get_peer_simple(wsi, peer, sizeof(peer));
                snprintf(key, sizeof(key), "a:%s", peer);
            }
            unsigned wait = rate_check(s, key);
            if (wait) {
                p->retry_after = wait;
                respond_error(s, wsi, p, 429, "too many requests: retry after %u s", wait);
                return 0;
            }
        }
        if ((scope == WEB_SCOPE_ORG || scope == WEB_SCOPE_PARTNER) &&
            (strcmp(path, "/healthz") == 0 || strcmp(path, "/metrics") == 0))
            respond_error(s, wsi, p, 403, "this token may not use this endpoint");
        else if (strcmp(path, "/healthz") == 0)
            healthz(s, wsi, p);
        else if (strcmp(path, "/metrics") == 0)
            metrics(s, wsi, p);
        else
            api_request(s, wsi, p, path, scope, tok);
        return 0;

    case LWS_CALLBACK_HTTP_WRITEABLE:
        return write_response(s, wsi, p);

    case LWS_CALLBACK_CLOSED_HTTP:
        if (p) {
            if (p->job)
                p->job->cancelled = true;
            free(p->body);
            memset(p, 0, sizeof(*p));
        }
        return 0;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
