/* web internals: the event ring and filters (ring.c), live statistics (stats.c), access tokens
 * (auth.c), REST requests (request.c) and the REST API (api.c), the websocket protocol (live.c)
 * and the server (server.c).
 * Not included outside web/. Everything except the REST query thread runs on the server's one
 * libuv loop thread. */
#ifndef WEB_INTERNAL_H
#define WEB_INTERNAL_H

#include "core/core.h"
#include "web/web.h"

#include <jansson.h>
#include <libwebsockets.h>

/* ---------------------------------------------------------------- events and the ring (ring.c) */

#define WEB_SENSORS_MAX   256 /* distinct sensor names the server tracks */
#define WEB_FILTER_VALUES 16
#define WEB_FRAME_EVENTS  500 /* events per frame at most */
/* events a client may lag behind the newest before the oldest are skipped (a burst larger
 * than one frame is sent over several frames; a client further behind than this is stale) */
#define WEB_BACKLOG_EVENTS  (4 * WEB_FRAME_EVENTS)
#define WEB_MSG_MAX         4096
#define WEB_SENSOR_NAME_MAX 65

struct web_event {
    ds_time_ns ts;
    struct ds_addr src; /* already masked when web.mask_sources is on */
    float lat, lon;
    uint16_t sensor; /* index into the server's sensor names */
    uint16_t dport;
    uint8_t proto, cls; /* enum ds_proto, enum ds_class */
    int8_t tool;        /* enum ds_tool or -1 */
    bool has_loc;
    char cc[3]; /* "" = unknown */
};

/* The sensor names seen so far (index = web_event.sensor). */
struct web_names {
    unsigned n;
    char name[WEB_SENSORS_MAX][WEB_SENSOR_NAME_MAX];
};
/* Index of name, added when new; -1 when the table is full or the name is not a sensor name. */
int web_names_index(struct web_names *t, const char *name);

/* One shared ring of the newest events; seq numbers grow forever, the ring keeps the last cap. */
struct web_ring {
    struct web_event *v;
    uint64_t cap;  /* a power of two */
    uint64_t head; /* seq of the next event written */
};
DS_WARN_UNUSED int web_ring_init(struct web_ring *r, uint64_t min_cap);
void web_ring_fini(struct web_ring *r);
void web_ring_push(struct web_ring *r, const struct web_event *e);
/* Oldest seq still held. */
uint64_t web_ring_tail(const struct web_ring *r);
static inline const struct web_event *web_ring_at(const struct web_ring *r, uint64_t seq)
{
    return &r->v[seq & (r->cap - 1)];
}

/* Masks an address to its /24 (IPv4) or /48 (IPv6) network. */
void web_addr_mask(struct ds_addr *a);

/* Parses one live batch published by capture (docs/redis-schema.md) and calls push for each
 * event. Fills *seen / *sampled with the batch's exact counters and class counts (by_class may
 * stay zero for batches of older captures). Returns the number of events, or -1 when the batch
 * is not valid JSON of the expected shape. */
struct web_batch {
    int sensor; /* index, -1 when unknown */
    ds_time_ns t;
    uint64_t seen, sampled;
    uint64_t by_class[DS_CLASS_N];
    bool has_classes;
    int64_t bucket_start;    /* -1 when absent */
    uint64_t bucket_sources; /* distinct sources in the open bucket so far */
};
int web_batch_parse(const char *json, size_t len, struct web_names *names, bool mask,
                    struct web_batch *out, void (*push)(void *ctx, const struct web_event *e),
                    void *ctx);

/* A client's filters; an empty list means all. */
struct web_filter {
    uint32_t classes; /* bit per enum ds_class; 0 = all */
    uint32_t protos;  /* bit per enum ds_proto; 0 = all */
    unsigned n_ports, n_cc, n_sensors;
    uint16_t ports[WEB_FILTER_VALUES];
    char cc[WEB_FILTER_VALUES][3];
    char sensors[WEB_FILTER_VALUES][WEB_SENSOR_NAME_MAX];
};
/* Parses the "filters" object of a subscribe message (NULL = no filters). Returns 0, or -1 with
 * why filled ("filter 'class': unknown value \"x\""). Pure. */
int web_filter_parse(const json_t *filters, struct web_filter *f, char *why, size_t whylen);
bool web_filter_is_all(const struct web_filter *f);
bool web_filter_match(const struct web_filter *f, const struct web_event *e,
                      const struct web_names *names);
json_t *web_filter_json(const struct web_filter *f);

/* Appends one event as the protocol's JSON object. */
void web_event_json(struct ds_buf *b, const struct web_event *e, const struct web_names *names);

/* ---------------------------------------------------------------- live statistics (stats.c) */

#define WEB_STATS_SECONDS 5  /* rates are averaged over this window */
#define WEB_TOP_SECONDS   60 /* shares come from the sampled events of this window */
#define WEB_TOP_N         10
#define WEB_TOP_KEYS      512 /* distinct keys counted per top list and window */

struct web_sensor_live {
    ds_time_ns last_batch; /* wall clock of its newest batch; 0 = none */
    uint64_t seen[WEB_STATS_SECONDS];
    uint64_t seen_total, sampled_total;
    int64_t bucket_start;
    uint64_t bucket_sources;
};

struct web_topcount {
    uint32_t key;
    uint32_t n;
};

struct web_stats {
    int64_t now_sec; /* the second the current slot counts */
    uint64_t seen[WEB_STATS_SECONDS], sampled[WEB_STATS_SECONDS];
    uint64_t by_class[WEB_STATS_SECONDS][DS_CLASS_N];
    /* per-second counts of sampled events for the top lists, a ring of WEB_TOP_SECONDS */
    struct {
        unsigned n;
        struct web_topcount v[WEB_TOP_KEYS];
    } top[3][WEB_TOP_SECONDS]; /* 0 countries, 1 ports, 2 tools */
    struct web_sensor_live sensors[WEB_SENSORS_MAX];
};

void web_stats_init(struct web_stats *s, int64_t now_sec);
/* Moves the window to now_sec (clearing the seconds it passes). */
void web_stats_tick(struct web_stats *s, int64_t now_sec);
void web_stats_batch(struct web_stats *s, const struct web_batch *b, ds_time_ns now);
void web_stats_event(struct web_stats *s, const struct web_event *e);
/* The protocol's stats object (without "client"); sensor_info: name → record from Redis (may
 * be NULL). */
json_t *web_stats_json(const struct web_stats *s, const struct web_names *names,
                       const json_t *sensor_info, ds_time_ns now);

/* Sensor health from a Redis sensor record: last bucket age, drops, online. Pure. */
json_t *web_sensor_public(const char *name, const json_t *rec, ds_time_ns last_batch,
                          ds_time_ns now);

/* ---------------------------------------------------------------- access (auth.c) */

/* Ordered: an organisation's or a partner's token sees only what is scoped to it, never the
 * map; viewer < soc < admin. */
enum web_scope {
    WEB_SCOPE_NONE,
    WEB_SCOPE_ORG,
    WEB_SCOPE_PARTNER,
    WEB_SCOPE_VIEWER,
    WEB_SCOPE_SOC,
    WEB_SCOPE_ADMIN,
};
extern const char *const web_scope_names[];

struct web_token {
    char name[80]; /* the token's name; for org/partner tokens their id ("org:city-a") */
    enum web_scope scope;
    char subject[65];     /* org id or partner name */
    int org;              /* the organisation's index in auth.subs, -1 for others */
    unsigned n_countries; /* a partner's countries */
    char countries[64][3];
    uint8_t sha256[32];
};

struct agg_subscribers;
struct web_auth {
    bool required;
    unsigned n, cap;
    struct web_token *tokens;
    struct agg_subscribers *subs; /* for organisations' ranges; NULL without a subscriber file */
};

/* From the configuration: tokens ("name:scope:hex"), the organisations' and partners' tokens
 * of the subscriber file (aggregate.subscribers, when set), and whether tokens are required
 * for a listener on `listen` (auto: unless it is loopback). Returns 0 or -1 with err filled. */
int web_auth_init(struct web_auth *a, const struct ds_config *cfg, char *err, size_t errlen);
void web_auth_fini(struct web_auth *a);
/* The token matching a presented one (compared in constant time against every token), or
 * NULL. */
const struct web_token *web_auth_check(const struct web_auth *a, const char *token, size_t len);
/* The scanner feed (rds_query_scanners' "scanners") as a STIX 2.1 bundle, or as CSV. */
json_t *web_feed_stix(const json_t *feed, const char *producer, ds_time_ns now);
char *web_feed_csv(const json_t *feed);
/* SHA-256 of data. */
void web_sha256(const void *data, size_t len, uint8_t out[32]);

/* ---------------------------------------------------------------- REST requests (request.c) */

#define WEB_TIMELINE_POINTS 1440 /* points of a timeline answer at most */

enum web_query_kind {
    WEB_QUERY_SUMMARY,
    WEB_QUERY_TIMELINE,
    WEB_QUERY_TOP_PORTS,
    WEB_QUERY_TOP_COUNTRIES,
    WEB_QUERY_TOP_SOURCES,
    WEB_QUERY_SENSORS,
    WEB_QUERY_ALERTS,
    WEB_QUERY_SCANNERS,
    WEB_QUERY_HOST,
};

/* What a REST request asks the query thread for. */
struct web_query {
    enum web_query_kind kind;
    int64_t from, to, step; /* Unix seconds: [from, to); alerts: from = since */
    unsigned top;
    char sensor[WEB_SENSOR_NAME_MAX]; /* "" = every sensor */
    bool mask;                        /* web.mask_sources */
    int64_t bucket_seconds;
    char org[80];        /* alerts: the organisation's stream, "" = the global one */
    char alert_kind[24]; /* alerts: one kind, or "" */
    struct ds_addr host; /* host */
    /* scanners and a partner's top countries: countries allowed (none = all), and the format */
    unsigned n_cc;
    char cc[64][3];
    char format[8];
    bool is_csv;
    /* the audit record: alerts, feeds, hosts and a partner's aggregates */
    bool audit;
    char audit_token[80], audit_scope[16], endpoint[64];
};

/* Why a request is refused: HTTP status and message, whether the refusal is a line in the audit
 * log, and whether the answer asks for a bearer token (WWW-Authenticate). */
struct web_refusal {
    unsigned status;
    bool audit, www_auth;
    char msg[160];
};

/* One parameter of a request by name ("from="), as lws_get_urlarg_by_name() reads it: the value
 * copied into buf (len bytes with the NUL), NULL when absent. */
typedef const char *(*web_arg_fn)(void *ctx, const char *name, char *buf, int len);

struct agg_trie;
struct web_request {
    const char *path; /* without the query string */
    web_arg_fn arg;
    void *arg_ctx;
    enum web_scope scope;
    const struct web_token *tok;    /* the caller's token; never NULL for org and partner scopes */
    const struct agg_trie *livenet; /* the organisations' ranges; NULL without subscribers */
    int64_t bucket_seconds;         /* the sensors' bucket length (> 0): steps are multiples */
    bool mask;                      /* web.mask_sources */
    int64_t now;                    /* wall clock, Unix seconds */
};

/* Turns a REST request into a query, with what each scope may ask enforced. Returns 0 with q
 * filled, or -1 with r filled (and q's audit record when r->audit). Pure: no I/O, no clock. */
int web_request_parse(const struct web_request *rq, struct web_query *q, struct web_refusal *r);

/* ---------------------------------------------------------------- per-address limits (peers.c) */

#define WEB_PEER_SLOTS 65536 /* counters; a power of two */

/* HTTP connections open per client address (an IPv6 client's /64), each counted from accept
 * until it closes or becomes a websocket client. */
struct web_peers {
    unsigned max;    /* per address */
    uint64_t key[2]; /* the hash key, random per server */
    uint32_t *n;     /* WEB_PEER_SLOTS counters */
    unsigned open;   /* connections counted now */
    uint64_t refused;
};

/* Returns 0, or -ENOMEM. */
DS_WARN_UNUSED int web_peers_init(struct web_peers *p, unsigned max_per_address,
                                  const uint64_t key[2]);
void web_peers_fini(struct web_peers *p);
/* Counts a new connection from a. Returns an id for web_peers_release (never 0), or 0 when the
 * address already has max connections (counted in refused; nothing to release). */
unsigned web_peers_admit(struct web_peers *p, const struct ds_addr *a);
/* The connection with that id (0: none) ended. */
void web_peers_release(struct web_peers *p, unsigned id);

/* ---------------------------------------------------------------- the server (server.c) */

struct web_job;
struct web_client;

#define WEB_ALERTS_KEPT 32

/* Why a websocket connection ended (darkscope_ws_closed_total's reason). */
enum web_close {
    WEB_CLOSE_NORMAL,   /* the client closed it */
    WEB_CLOSE_BINARY,   /* our 1003 */
    WEB_CLOSE_INVALID,  /* our 1007: not a JSON object */
    WEB_CLOSE_POLICY,   /* our 1008 */
    WEB_CLOSE_TOO_BIG,  /* our 1009 */
    WEB_CLOSE_STALLED,  /* web.stall_timeout */
    WEB_CLOSE_PROTOCOL, /* lws closed it for a frame RFC 6455 forbids (1002, 1007 bad UTF-8) */
    WEB_CLOSE_DROPPED,  /* ended without a close handshake (gone, or a frame lws cannot parse) */
    WEB_CLOSE_N,
};
extern const char *const web_close_names[];

struct web_metrics {
    uint64_t frames_sent, events_sent, events_skipped, stats_sent, alerts_sent;
    uint64_t closed[WEB_CLOSE_N];
    uint64_t batches, bad_batches;
    uint64_t http[6]; /* 2xx … 5xx by hundreds; [0] other */
    uint64_t clients_refused;
};

struct web_server {
    const struct ds_config *cfg;
    struct lws_context *ctx;
    void *loop; /* uv_loop_t */
    struct rds_conn *watch_params;
    struct rds_watch *watch;
    bool redis_up;
    struct web_auth auth;
    struct web_names names;
    struct web_ring ring;
    struct web_stats *stats;
    json_t *sensor_info; /* name → record, from Redis */
    struct web_metrics m;
    bool stopping;
    bool switch_user; /* started as root: runs as user once listening */
    struct ds_user user;
    struct web_peers peers; /* HTTP connections per address */
    char attribution[16];   /* "dbip" when the GeoIP data needs DB-IP's link */
    FILE *audit;            /* web.audit_log, or NULL */

    /* websocket clients */
    struct web_client *clients;
    unsigned n_clients;
    char *stats_text; /* the shared stats message without its closing brace */
    size_t stats_len;
    uint64_t stats_gen;
    char *alerts[WEB_ALERTS_KEPT];        /* newest alert messages, ring by seq */
    char alert_orgs[WEB_ALERTS_KEPT][65]; /* each one's organisation ("" none) */
    uint64_t alerts_head;
    ds_time_ns last_kick;
    bool kick_armed;
    /* the events part of the newest shared frame, for clients without filters */
    struct ds_buf ev_cache;
    uint64_t ev_cache_from, ev_cache_to;
    bool ev_cache_ok;
    unsigned char *scratch; /* LWS_PRE + frame */
    size_t scratch_len;

    /* REST queries (api.c) */
    struct web_api *api;
};

/* live.c: the websocket protocol callback and its hooks for the server */
int web_live_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);
size_t web_live_pss_size(void);
/* New events are in the ring / a new stats message / a new alert: wake the clients. */
void web_live_kick(struct web_server *s);
/* Closes clients that took no frame for web.stall_timeout. */
void web_live_check_stalls(struct web_server *s, ds_time_ns now);
/* Client counts for /metrics. */
unsigned web_live_clients(const struct web_server *s);
/* Parses one message a client sent (len bytes of text; only {"type":"subscribe","filters":…}
 * is accepted). Returns WEB_CLOSE_NORMAL with *f set, or how to close the client
 * (WEB_CLOSE_INVALID: not a JSON object, WEB_CLOSE_POLICY: any other message) with why filled.
 * Pure. */
enum web_close web_live_message_parse(const char *msg, size_t len, struct web_filter *f, char *why,
                                      size_t whylen);

/* api.c: HTTP (REST, /healthz, /metrics, tokens) and the query thread */
struct web_api *web_api_new(struct web_server *s, char *err, size_t errlen);
/* Stops the query thread (queued queries are dropped); idempotent. */
void web_api_stop(struct web_api *a);
void web_api_free(struct web_api *a);
int web_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);
size_t web_http_pss_size(void);
/* The bearer token of a request (Authorization header or ?token=) checked against the
 * configuration: returns the scope, WEB_SCOPE_NONE for a bad token, and sets *present (and
 * *tok to the matching token when tok is not NULL). */
enum web_scope web_request_scope(struct web_server *s, struct lws *wsi, bool *present,
                                 const struct web_token **tok);
struct web_server *web_server_of(struct lws *wsi);

#endif
