/* `darkscope serve`: the lws context on a libuv loop shared with the asynchronous Redis
 * connections, the page's mounts and headers, the once-a-second tick (stats, sensor poll, stall
 * check) and shutdown on SIGINT/SIGTERM. */
#include "redis/redis.h"
#include "web/web_internal.h"

#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* Events frames at most every 90 ms: one per capture batch (every 100 ms), without the drift
 * a full 100 ms spacing causes, where a frame waits for the next kick and carries two batches */
#define FRAME_INTERVAL_MS 90
#define SCRATCH_BYTES     (512 * 1024)
/* lws's own log lines at most this many a second: a flood of broken frames, each of which lws
 * logs, must not become a flood of log lines */
#define LWS_LINES_PER_SECOND 10

struct srv {
    struct web_server s;
    uv_loop_t loop;
    uv_timer_t tick, kick;
    uv_signal_t sigint, sigterm;
    struct lws_http_mount mounts[5];
    struct lws_protocols protocols[3];
    struct lws_protocol_vhost_options pvo, pvo_default, headers[5], mimes[3];
    char root[2048], page[2100], vendor[2100], listen_host[256];
    int listen_port;
};

static const char CSP[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self' ws: wss:; object-src 'none'; "
                          "base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

struct web_server *web_server_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/* ---- Redis watch callbacks */

static void push_event(void *ctx, const struct web_event *e)
{
    struct web_server *s = ctx;

    web_ring_push(&s->ring, e);
    web_stats_event(s->stats, e);
}

static void on_live(void *ctx, const char *json, size_t len)
{
    struct web_server *s = ctx;
    struct web_batch b;
    int n;

    web_stats_tick(s->stats, ds_time_now() / DS_NS_PER_SEC);
    n = web_batch_parse(json, len, &s->names, s->cfg->web_mask_sources, &b, push_event, s);
    if (n < 0) {
        s->m.bad_batches++;
        return;
    }
    s->m.batches++;
    web_stats_batch(s->stats, &b, ds_time_now());
    if (n > 0)
        web_live_kick(s);
}

static void on_sensors(void *ctx, json_t *sensors)
{
    struct web_server *s = ctx;

    json_decref(s->sensor_info);
    s->sensor_info = json_incref(sensors);
}

static void on_alert(void *ctx, const char *id, json_t *alert)
{
    struct web_server *s = ctx;
    json_t *msg = json_pack("{s:s,s:i,s:s,s:O}", "type", "alert", "v", 1, "id", id, "alert", alert);
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    unsigned k = (unsigned)(s->alerts_head % WEB_ALERTS_KEPT);

    json_decref(msg);
    if (!text)
        return;
    free(s->alerts[k]);
    s->alerts[k] = text;
    snprintf(s->alert_orgs[k], sizeof(s->alert_orgs[k]), "%s",
             json_string_value(json_object_get(alert, "org")) ?: "");
    s->alerts_head++;
    web_live_kick(s);
}

static void on_state(void *ctx, bool up)
{
    struct web_server *s = ctx;

    s->redis_up = up;
    if (up && s->watch)
        rds_watch_poll(s->watch); /* sensors and the alert position right away */
    ds_log(up ? DS_LOG_INFO : DS_LOG_WARN, "web", "redis %s", up ? "connected" : "lost");
}

/* ---- connections per address */

static bool peer_addr(struct lws *wsi, struct ds_addr *a)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    memset(a, 0, sizeof(*a));
    if (getpeername(lws_get_socket_fd(wsi), (struct sockaddr *)&ss, &len) < 0)
        return false;
    if (ss.ss_family == AF_INET) {
        a->family = 4;
        memcpy(a->b, &((const struct sockaddr_in *)&ss)->sin_addr, 4);
        return true;
    }
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)&ss)->sin6_addr;
        bool mapped = IN6_IS_ADDR_V4MAPPED(in6);
        a->family = mapped ? 4 : 6;
        memcpy(a->b, in6->s6_addr + (mapped ? 12 : 0), mapped ? 4 : 16);
        return true;
    }
    return false;
}

/* Every accepted connection counts against its client address from accept until it closes or
 * becomes a websocket client (web.max_clients_per_address limits those instead); one over
 * web.max_http_connections_per_address is closed before anything is read. The count's id rides
 * on the connection as lws's opaque user data. Returns -1 to close the connection. */
static int track_connection(struct web_server *s, struct lws *wsi, enum lws_callback_reasons reason)
{
    struct ds_addr a;
    unsigned id;

    switch (reason) {
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        if (lws_get_opaque_user_data(wsi) || !peer_addr(wsi, &a))
            return 0;
        id = web_peers_admit(&s->peers, &a);
        if (!id) {
            char peer[DS_ADDR_STRLEN];
            ds_log(DS_LOG_DEBUG, "web", "%s: over %lld connections, closed",
                   ds_addr_format(&a, peer, sizeof(peer)),
                   (long long)s->cfg->web_max_http_per_address);
            return -1;
        }
        lws_set_opaque_user_data(wsi, (void *)(uintptr_t)id);
        return 0;
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_WSI_DESTROY:
        web_peers_release(&s->peers, (unsigned)(uintptr_t)lws_get_opaque_user_data(wsi));
        lws_set_opaque_user_data(wsi, NULL);
        return 0;
    default:
        return 0;
    }
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct web_server *s = web_server_of(wsi);

    if (s && track_connection(s, wsi, reason) < 0)
        return -1;
    return web_http_callback(wsi, reason, user, in, len);
}

static int live_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct web_server *s = web_server_of(wsi);

    if (s && track_connection(s, wsi, reason) < 0)
        return -1;
    return web_live_callback(wsi, reason, user, in, len);
}

/* ---- lws's log lines */

static struct {
    int64_t sec;
    unsigned lines;
    uint64_t dropped;
} bridge_lines;

/* Says how many of lws's lines were not logged; called when a new second starts. */
static void bridge_flush(int64_t sec)
{
    if (sec == bridge_lines.sec)
        return;
    if (bridge_lines.dropped)
        ds_log(DS_LOG_WARN, "lws", "%llu further lines not logged (at most %d a second)",
               (unsigned long long)bridge_lines.dropped, LWS_LINES_PER_SECOND);
    bridge_lines.sec = sec;
    bridge_lines.lines = 0;
    bridge_lines.dropped = 0;
}

/* ---- timers */

static void on_tick(uv_timer_t *t)
{
    struct srv *v = t->data;
    struct web_server *s = &v->s;
    ds_time_ns now = ds_time_now();
    json_t *st;
    char *text;

    if (s->stopping)
        return;
    web_stats_tick(s->stats, now / DS_NS_PER_SEC);
    if (s->watch)
        rds_watch_poll(s->watch);
    st = web_stats_json(s->stats, &s->names, s->sensor_info, now);
    text = json_dumps(st, JSON_COMPACT);
    json_decref(st);
    if (text) {
        /* kept without its closing brace: each client appends its own counters */
        size_t n = strlen(text);
        free(s->stats_text);
        s->stats_text = text;
        s->stats_len = n ? n - 1 : 0;
        s->stats_gen++;
    }
    web_live_check_stalls(s, now);
    web_live_kick(s);
    bridge_flush(ds_time_monotonic() / DS_NS_PER_SEC);
}

static void on_kick(uv_timer_t *t)
{
    struct srv *v = t->data;

    v->s.kick_armed = false;
    v->s.last_kick = ds_time_monotonic();
    if (v->s.ctx && !v->s.stopping)
        lws_callback_on_writable_all_protocol(v->s.ctx, &v->protocols[1]);
}

void web_live_kick(struct web_server *s)
{
    struct srv *v = (struct srv *)s;
    ds_time_ns now = ds_time_monotonic(), due = s->last_kick + FRAME_INTERVAL_MS * 1000000LL;

    if (s->kick_armed || s->stopping)
        return;
    s->kick_armed = true;
    uv_timer_start(&v->kick, on_kick, due > now ? (uint64_t)((due - now + 999999) / 1000000) : 0,
                   0);
}

static void on_signal(uv_signal_t *h, int sig)
{
    struct srv *v = h->data;
    struct web_server *s = &v->s;

    if (s->stopping)
        return;
    ds_log(DS_LOG_INFO, "web", "signal %d: closing clients and stopping", sig);
    s->stopping = true;
    /* no query thread may wake a context being destroyed */
    web_api_stop(s->api);
    /* with a foreign loop lws finishes destroying once the loop has closed its handles; it
     * clears s->ctx (info.pcontext) when done, and web_serve calls it again after the loop */
    if (s->ctx)
        lws_context_destroy(s->ctx);
    rds_watch_close(s->watch);
    s->watch = NULL;
    uv_timer_stop(&v->tick);
    uv_timer_stop(&v->kick);
    uv_close((uv_handle_t *)&v->tick, NULL);
    uv_close((uv_handle_t *)&v->kick, NULL);
    uv_close((uv_handle_t *)&v->sigint, NULL);
    uv_close((uv_handle_t *)&v->sigterm, NULL);
}

/* ---- set-up */

static int parse_listen(struct srv *v, const char *listen, char *err, size_t errlen)
{
    const char *colon = strrchr(listen, ':');
    size_t n = colon ? (size_t)(colon - listen) : 0;

    if (!colon || n == 0 || n >= sizeof(v->listen_host)) {
        snprintf(err, errlen, "web.listen: expected ADDR:PORT, got \"%s\"", listen);
        return -1;
    }
    memcpy(v->listen_host, listen, n);
    v->listen_host[n] = '\0';
    if (v->listen_host[0] == '[' && v->listen_host[n - 1] == ']') {
        memmove(v->listen_host, v->listen_host + 1, n - 2);
        v->listen_host[n - 2] = '\0';
    }
    v->listen_port = atoi(colon + 1);
    return 0;
}

/* DB-IP's licence asks for a link wherever its results are shown. */
static void detect_attribution(struct web_server *s)
{
    for (unsigned i = 0; i < s->cfg->n_geoip_city; i++) {
        if (strcasestr(s->cfg->geoip_city[i], "dbip") || strcasestr(s->cfg->geoip_city[i], "db-ip"))
            snprintf(s->attribution, sizeof(s->attribution), "dbip");
    }
}

static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void lws_log_bridge(int level, const char *line)
{
    size_t n = strlen(line);

    bridge_flush(ds_time_monotonic() / DS_NS_PER_SEC);
    if (++bridge_lines.lines > LWS_LINES_PER_SECOND) {
        bridge_lines.dropped++;
        return;
    }
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    ds_log(level & LLL_ERR    ? DS_LOG_ERROR
           : level & LLL_WARN ? DS_LOG_WARN
                              : DS_LOG_DEBUG,
           "lws", "%.*s", (int)n, line);
}

static void setup_mounts(struct srv *v)
{
    struct lws_http_mount *m = v->mounts;

    v->mimes[0] =
        (struct lws_protocol_vhost_options){&v->mimes[1], NULL, ".mjs", "text/javascript"};
    v->mimes[1] =
        (struct lws_protocol_vhost_options){&v->mimes[2], NULL, ".map", "application/json"};
    v->mimes[2] = (struct lws_protocol_vhost_options){NULL, NULL, ".webmanifest",
                                                      "application/manifest+json"};
    /* longest mount point wins: /api, /healthz, /metrics and /vendor before / */
    m[0] = (struct lws_http_mount){.mountpoint = "/",
                                   .mountpoint_len = 1,
                                   .origin = v->page,
                                   .def = "index.html",
                                   .origin_protocol = LWSMPRO_FILE,
                                   .extra_mimetypes = v->mimes,
                                   .cache_max_age = 60,
                                   .cache_reusable = 1,
                                   .cache_revalidate = 1};
    m[1] = (struct lws_http_mount){.mountpoint = "/vendor",
                                   .mountpoint_len = 7,
                                   .origin = v->vendor,
                                   .origin_protocol = LWSMPRO_FILE,
                                   .extra_mimetypes = v->mimes,
                                   .cache_max_age = 86400,
                                   .cache_reusable = 1,
                                   .cache_revalidate = 1};
    m[2] = (struct lws_http_mount){.mountpoint = "/api",
                                   .mountpoint_len = 4,
                                   .origin = "http",
                                   .origin_protocol = LWSMPRO_CALLBACK};
    m[3] = (struct lws_http_mount){.mountpoint = "/healthz",
                                   .mountpoint_len = 8,
                                   .origin = "http",
                                   .origin_protocol = LWSMPRO_CALLBACK};
    m[4] = (struct lws_http_mount){.mountpoint = "/metrics",
                                   .mountpoint_len = 8,
                                   .origin = "http",
                                   .origin_protocol = LWSMPRO_CALLBACK};
    for (int i = 0; i < 4; i++)
        m[i].mount_next = &m[i + 1];
}

static void setup_headers(struct srv *v)
{
    v->headers[0] =
        (struct lws_protocol_vhost_options){&v->headers[1], NULL, "content-security-policy:", CSP};
    v->headers[1] = (struct lws_protocol_vhost_options){&v->headers[2], NULL,
                                                        "x-content-type-options:", "nosniff"};
    v->headers[2] = (struct lws_protocol_vhost_options){&v->headers[3], NULL,
                                                        "referrer-policy:", "no-referrer"};
    v->headers[3] =
        (struct lws_protocol_vhost_options){&v->headers[4], NULL, "x-frame-options:", "DENY"};
    v->headers[4] = (struct lws_protocol_vhost_options){
        NULL, NULL, "cross-origin-opener-policy:", "same-origin"};
}

int web_serve(const struct ds_config *cfg, const char *web_root)
{
    struct srv *v = calloc(1, sizeof(*v));
    struct web_server *s;
    struct lws_context_creation_info info;
    void *foreign[1];
    char err[512];
    int status = 0;
    bool ctx_dying = false;

    if (!v)
        return 1;
    s = &v->s;
    s->cfg = cfg;
    s->loop = &v->loop;
    if (web_auth_init(&s->auth, cfg, err, sizeof(err)) < 0 ||
        parse_listen(v, cfg->web_listen, err, sizeof(err)) < 0) {
        fprintf(stderr, "darkscope serve: %s\n", err);
        free(v);
        return 2;
    }
    if ((cfg->web_tls_cert[0] != '\0') != (cfg->web_tls_key[0] != '\0')) {
        fprintf(stderr, "darkscope serve: web.tls.cert and web.tls.key go together; set both or "
                        "neither\n");
        free(v);
        return 2;
    }
    snprintf(v->root, sizeof(v->root), "%s", cfg->web_root[0] ? cfg->web_root : web_root);
    snprintf(v->page, sizeof(v->page), "%s/page", v->root);
    snprintf(v->vendor, sizeof(v->vendor), "%s/node_modules", v->root);
    detect_attribution(s);
    raise_fd_limit();

    {
        /* the key of the per-address counters: unknown outside, so no client can aim at
         * another's counter */
        uint64_t key[2] = {(uint64_t)ds_time_now(), (uint64_t)getpid()};
        if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key))
            ds_log(DS_LOG_WARN, "web", "getrandom: %s (connection counters keyed by the clock)",
                   strerror(errno));
        if (web_peers_init(&s->peers, (unsigned)cfg->web_max_http_per_address, key) < 0) {
            fprintf(stderr, "darkscope serve: out of memory\n");
            status = 1;
            goto out;
        }
    }
    s->stats = calloc(1, sizeof(*s->stats));
    s->scratch_len = SCRATCH_BYTES;
    s->scratch = malloc(LWS_PRE + s->scratch_len);
    if (!s->stats || !s->scratch || web_ring_init(&s->ring, (uint64_t)cfg->web_ring_events) < 0) {
        fprintf(stderr, "darkscope serve: out of memory\n");
        status = 1;
        goto out;
    }
    web_stats_init(s->stats, ds_time_now() / DS_NS_PER_SEC);
    ds_buf_init(&s->ev_cache, s->scratch_len - 4096);
    s->sensor_info = json_object();

    /* started as root: the embedded Redis runs as the service account, and so does serve once
     * its listener is open */
    if (geteuid() == 0) {
        if (ds_user_resolve(cfg->user, &s->user, err, sizeof(err)) < 0) {
            fprintf(stderr, "darkscope serve: %s\n", err);
            status = 2;
            goto out;
        }
        s->switch_user = true;
    }
    if (!cfg->redis_url[0]) {
        char sock[512];
        if (rds_embedded_ensure(cfg->state_dir, s->switch_user ? &s->user : NULL, sock,
                                sizeof(sock), err, sizeof(err)) < 0)
            ds_log(DS_LOG_WARN, "web", "embedded redis: %s (retrying in the background)", err);
    }
    /* the audit log is opened before root is dropped, so it may live in a root-owned place */
    {
        char path[2100];
        if (cfg->web_audit_log[0])
            snprintf(path, sizeof(path), "%s", cfg->web_audit_log);
        else
            snprintf(path, sizeof(path), "%s/audit.log", cfg->state_dir);
        s->audit = fopen(path, "a");
        if (!s->audit)
            ds_log(DS_LOG_WARN, "web", "%s: %s (alert and feed accesses are not audited)", path,
                   strerror(errno));
    }
    s->watch_params = rds_conn_new(cfg->redis_url, cfg->state_dir, s->switch_user ? &s->user : NULL,
                                   err, sizeof(err));
    if (!s->watch_params) {
        fprintf(stderr, "darkscope serve: %s\n", err);
        status = 2;
        goto out;
    }

    uv_loop_init(&v->loop);
    uv_timer_init(&v->loop, &v->tick);
    uv_timer_init(&v->loop, &v->kick);
    uv_signal_init(&v->loop, &v->sigint);
    uv_signal_init(&v->loop, &v->sigterm);
    v->tick.data = v->kick.data = v->sigint.data = v->sigterm.data = v;

    v->protocols[0] =
        (struct lws_protocols){"http", http_callback, web_http_pss_size(), 0, 0, NULL, 0};
    v->protocols[1] = (struct lws_protocols){
        "darkscope.v1", live_callback, web_live_pss_size(), WEB_MSG_MAX, 0,
        NULL,           SCRATCH_BYTES /* a frame in one send(), not in 4 KiB pieces */};
    /* protocols[2] stays zero: 4.1.6 has no LWS_PROTOCOL_LIST_TERM */
    v->pvo_default = (struct lws_protocol_vhost_options){NULL, NULL, "default", "1"};
    v->pvo = (struct lws_protocol_vhost_options){NULL, &v->pvo_default, "darkscope.v1", ""};
    setup_mounts(v);
    setup_headers(v);

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_bridge);
    memset(&info, 0, sizeof(info));
    info.port = v->listen_port;
    info.iface = v->listen_host;
    info.protocols = v->protocols;
    info.pvo = &v->pvo;
    info.mounts = v->mounts;
    info.headers = v->headers;
    info.user = s;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (strchr(v->listen_host, ':'))
        info.options |= LWS_SERVER_OPTION_IPV6_V6ONLY_MODIFY;
    if (cfg->web_tls_cert[0]) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cfg->web_tls_cert;
        info.ssl_private_key_filepath = cfg->web_tls_key;
    }
    info.server_string = "darkscope";
    /* web.header_timeout from accept (on a kept-alive connection, from the next request's first
     * byte) to the last header line, however slowly they come (slowloris); then 30 s for the
     * answer, since lws times the whole of it, query and sending included, and for a TLS
     * handshake */
    info.timeout_secs = 30;
    info.timeout_secs_ah_idle = (unsigned)cfg->web_header_timeout;
    /* headers being read at once; further connections wait (within web.header_timeout) */
    info.max_http_header_pool = 256;
    info.pcontext = &s->ctx;
    foreign[0] = &v->loop;
    info.foreign_loops = foreign;
    s->ctx = lws_create_context(&info);
    /* on a foreign loop, lws 4.1 answers a listener it could not open with a context it has
     * already begun to destroy, not with NULL: the loop must run before its second stage */
    ctx_dying = s->ctx && !lws_get_vhost_by_name(s->ctx, "default");
    if (!s->ctx || ctx_dying) {
        fprintf(stderr,
                "darkscope serve: cannot listen on %s (address in use, not local, or TLS "
                "files unreadable)\n",
                cfg->web_listen);
        status = 1;
        goto out_loop;
    }

    if (s->switch_user && ds_privs_drop(&s->user, false, err, sizeof(err)) < 0) {
        fprintf(stderr, "darkscope serve: %s\n", err);
        status = 1;
        goto out_loop;
    }
    s->api = web_api_new(s, err, sizeof(err));
    if (!s->api) {
        fprintf(stderr, "darkscope serve: %s\n", err);
        status = 2;
        goto out_loop;
    }
    {
        static const struct rds_watch_ops ops = {on_live, on_sensors, on_alert, on_state};
        s->watch = rds_watch_new(&v->loop, s->watch_params, &ops, s);
    }
    uv_timer_start(&v->tick, on_tick, 1000, 1000);
    uv_signal_start(&v->sigint, on_signal, SIGINT);
    uv_signal_start(&v->sigterm, on_signal, SIGTERM);
    ds_log(DS_LOG_INFO, "web", "serving %s on %s://%s/ (tokens %s; redis %s)", v->root,
           cfg->web_tls_cert[0] ? "https" : "http", cfg->web_listen,
           s->auth.required ? "required" : "not required", rds_conn_describe(s->watch_params));
    printf("darkscope serve: listening on %s://%s/\n", cfg->web_tls_cert[0] ? "https" : "http",
           cfg->web_listen);
    fflush(stdout);

    uv_run(&v->loop, UV_RUN_DEFAULT);
out_loop:
    web_api_stop(s->api);
    if (s->ctx && !ctx_dying)
        lws_context_destroy(s->ctx);
    if (!s->stopping) {
        /* never started: close what was opened */
        rds_watch_close(s->watch);
        s->watch = NULL;
        uv_close((uv_handle_t *)&v->tick, NULL);
        uv_close((uv_handle_t *)&v->kick, NULL);
        uv_close((uv_handle_t *)&v->sigint, NULL);
        uv_close((uv_handle_t *)&v->sigterm, NULL);
    }
    uv_run(&v->loop, UV_RUN_DEFAULT);
    if (s->ctx) {
        lws_context_destroy(s->ctx); /* the second stage, after the loop let go of lws */
        uv_run(&v->loop, UV_RUN_DEFAULT);
    }
    if (uv_loop_close(&v->loop) != 0)
        ds_log(DS_LOG_DEBUG, "web", "event loop closed with handles open");
out:
    web_api_free(s->api);
    web_peers_fini(&s->peers);
    web_auth_fini(&s->auth);
    if (s->audit)
        fclose(s->audit);
    rds_conn_free(s->watch_params);
    web_ring_fini(&s->ring);
    ds_buf_fini(&s->ev_cache);
    for (unsigned i = 0; i < WEB_ALERTS_KEPT; i++)
        free(s->alerts[i]);
    free(s->stats_text);
    json_decref(s->sensor_info);
    free(s->stats);
    free(s->scratch);
    free(v);
    return status;
}
