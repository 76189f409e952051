/* Asynchronous connections for `darkscope serve` (hiredis async on the server's libuv loop): the
 * live-channel subscription and a command connection for sensor records and the alert stream.
 * Reconnects with backoff on the loop's own timer; never blocks the loop. */
#include "redis/rds_internal.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define RETRY_MIN_MS 200
#define RETRY_MAX_MS 5000
#define ALERTS_MAX   100 /* alert entries read per poll */

struct rds_watch {
    uv_loop_t *loop;
    struct rds_conn *params;
    struct rds_watch_ops ops;
    void *ctx;
    redisAsyncContext *sub, *cmd;
    bool sub_ready, cmd_ready, was_up;
    uv_timer_t retry;
    uint64_t retry_ms;
    bool retry_armed;
    bool polling;
    bool alert_id_known;
    char alert_id[64];
    uint64_t errors;
    bool closing;
};

static void schedule_retry(struct rds_watch *w);

static void report_state(struct rds_watch *w)
{
    bool up = w->sub_ready && w->cmd_ready;

    if (up != w->was_up) {
        w->was_up = up;
        if (w->ops.state)
            w->ops.state(w->ctx, up);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rds_watch *w = ac->data;

    if (!w)
        return;
    if (ac == w->sub) {
        w->sub = NULL;
        w->sub_ready = false;
    } else if (ac == w->cmd) {
        w->cmd = NULL;
        w->cmd_ready = false;
        w->polling = false;
    }
    if (w->closing)
        return;
    if (status != REDIS_OK) {
        w->errors++;
        ds_log(DS_LOG_WARN, "redis", "watch connection lost: %s", ac->errstr);
    }
    report_state(w);
    schedule_retry(w);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct rds_watch *w = ac->data;

    if (status == REDIS_OK || !w)
        return;
    /* hiredis frees the context after a failed connect, without the disconnect callback */
    if (ac == w->sub)
        w->sub = NULL;
    else if (ac == w->cmd)
        w->cmd = NULL;
    w->errors++;
    if (!w->closing)
        schedule_retry(w);
}

/* A reply to AUTH or SELECT: an error drops the connection (and retries). */
static void on_setup_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *r = reply;

    (void)priv;
    if (r && r->type == REDIS_REPLY_ERROR) {
        ds_log(DS_LOG_WARN, "redis", "watch set-up: %s", r->str);
        redisAsyncDisconnect(ac);
    }
}

static void on_message(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rds_watch *w = priv;
    redisReply *r = reply;

    (void)ac;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(r->element[0]->str, "subscribe") == 0) {
        w->sub_ready = true;
        w->retry_ms = RETRY_MIN_MS;
        report_state(w);
        return;
    }
    if (strcmp(r->element[0]->str, "message") == 0 && r->element[2]->type == REDIS_REPLY_STRING &&
        w->ops.live)
        w->ops.live(w->ctx, r->element[2]->str, r->element[2]->len);
}

static void on_ping(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rds_watch *w = priv;
    redisReply *r = reply;

    (void)ac;
    if (!r || r->type == REDIS_REPLY_ERROR)
        return;
    w->cmd_ready = true;
    report_state(w);
}

static redisAsyncContext *open_one(struct rds_watch *w, const struct rds_target *t)
{
    redisAsyncContext *ac =
        t->path ? redisAsyncConnectUnix(t->path) : redisAsyncConnect(t->host, t->port);

    if (!ac)
        return NULL;
    if (ac->err) {
        ds_log(DS_LOG_WARN, "redis", "watch connect %s: %s", rds_conn_describe(w->params),
               ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = w;
    if (redisLibuvAttach(ac, w->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (t->password)
        redisAsyncCommand(ac, on_setup_reply, w, "AUTH %s", t->password);
    return ac;
}

static void connect_missing(struct rds_watch *w)
{
    struct rds_target t;

    if (rds_conn_target(w->params, &t) < 0) {
        w->errors++;
        ds_log(DS_LOG_WARN, "redis", "watch: %s", rds_conn_error(w->params));
        schedule_retry(w);
        return;
    }
    if (!w->sub) {
        w->sub = open_one(w, &t);
        if (w->sub)
            redisAsyncCommand(w->sub, on_message, w, "SUBSCRIBE " RDS_SCHEMA ":live");
    }
    if (!w->cmd) {
        w->cmd = open_one(w, &t);
        if (w->cmd) {
            if (t.db)
                redisAsyncCommand(w->cmd, on_setup_reply, w, "SELECT %d", t.db);
            redisAsyncCommand(w->cmd, on_ping, w, "PING");
        }
    }
    if (!w->sub || !w->cmd)
        schedule_retry(w);
}

static void on_retry(uv_timer_t *timer)
{
    struct rds_watch *w = timer->data;

    w->retry_armed = false;
    if (!w->closing)
        connect_missing(w);
}

static void schedule_retry(struct rds_watch *w)
{
    if (w->retry_armed || w->closing)
        return;
    w->retry_armed = true;
    uv_timer_start(&w->retry, on_retry, w->retry_ms, 0);
    w->retry_ms = w->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : w->retry_ms * 2;
}

struct rds_watch *rds_watch_new(struct uv_loop_s *loop, struct rds_conn *params,
                                const struct rds_watch_ops *ops, void *ctx)
{
    struct rds_watch *w = calloc(1, sizeof(*w));

    if (!w)
        return NULL;
    w->loop = loop;
    w->params = params;
    w->ops = *ops;
    w->ctx = ctx;
    w->retry_ms = RETRY_MIN_MS;
    uv_timer_init(loop, &w->retry);
    w->retry.data = w;
    connect_missing(w);
    return w;
}

/* ---- polling */

static void on_sensors(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rds_watch *w = priv;
    redisReply *r = reply;
    json_t *all;

    (void)ac;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            w->errors++;
        return;
    }
    all = json_object();
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        json_t *rec = json_loadb(r->element[i + 1]->str, r->element[i + 1]->len, 0, NULL);
        if (rec && json_is_object(rec))
            json_object_set_new(all, r->element[i]->str, rec);
        else
            json_decref(rec);
    }
    if (w->ops.sensors)
        w->ops.sensors(w->ctx, all);
    json_decref(all);
}

/* XREAD / XREVRANGE entries: [[id, [field, value, …]], …]. */
static void take_entries(struct rds_watch *w, const redisReply *entries, bool deliver)
{
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        snprintf(w->alert_id, sizeof(w->alert_id), "%s", e->element[0]->str);
        w->alert_id_known = true;
        const redisReply *f = e->element[1];
        for (size_t k = 0; deliver && f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2) {
            if (strcmp(f->element[k]->str, "alert") != 0)
                continue;
            json_t *a = json_loadb(f->element[k + 1]->str, f->element[k + 1]->len, 0, NULL);
            if (a && w->ops.alert)
                w->ops.alert(w->ctx, w->alert_id, a);
            json_decref(a);
        }
    }
}

static void on_alerts(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rds_watch *w = priv;
    redisReply *r = reply;

    (void)ac;
    w->polling = false;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r)
            w->errors++;
        return;
    }
    if (!w->alert_id_known) {
        /* XREVRANGE … COUNT 1: alerts from before the server started are not pushed */
        if (r->type == REDIS_REPLY_ARRAY)
            take_entries(w, r, false);
        if (!w->alert_id_known) {
            snprintf(w->alert_id, sizeof(w->alert_id), "0-0");
            w->alert_id_known = true;
        }
        return;
    }
    /* XREAD: [[stream, entries]] or nil */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2)
        take_entries(w, r->element[0]->element[1], true);
}

void rds_watch_poll(struct rds_watch *w)
{
    if (!w->cmd_ready || w->polling)
        return;
    w->polling = true;
    redisAsyncCommand(w->cmd, on_sensors, w, "HGETALL " RDS_SCHEMA ":sensors");
    if (!w->alert_id_known)
        redisAsyncCommand(w->cmd, on_alerts, w, "XREVRANGE " RDS_SCHEMA ":alerts + - COUNT 1");
    else
        redisAsyncCommand(w->cmd, on_alerts, w, "XREAD COUNT %d STREAMS " RDS_SCHEMA ":alerts %s",
                          ALERTS_MAX, w->alert_id);
}

uint64_t rds_watch_errors(const struct rds_watch *w)
{
    return w->errors;
}

bool rds_watch_up(const struct rds_watch *w)
{
    return w->sub_ready && w->cmd_ready;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void rds_watch_close(struct rds_watch *w)
{
    if (!w)
        return;
    w->closing = true;
    if (w->sub) {
        w->sub->data = NULL;
        redisAsyncFree(w->sub);
    }
    if (w->cmd) {
        w->cmd->data = NULL;
        redisAsyncFree(w->cmd);
    }
    uv_timer_stop(&w->retry);
    uv_close((uv_handle_t *)&w->retry, on_timer_closed);
}
