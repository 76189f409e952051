/* The websocket /live (docs/websocket-protocol.md): hello, events from the shared ring at the
 * client's own read position, stats, alerts for soc/admin, and the one message a client may
 * send (subscribe). Anything else closes that client with a close code; nothing a client does
 * grows server memory beyond its fixed session data. */
#include "web/web_internal.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>

#define JOIN_BACKLOG    64           /* recent events a new client starts with */
#define SNDBUF_BYTES    (256 * 1024) /* kernel send buffer per client: a stall shows soon */
#define MSGS_PER_SECOND 5
#define MSG_PIECES      64 /* frames (or 4 KiB pieces of one) a message may arrive in */

const char *const web_close_names[] = {"normal",  "binary",  "invalid_json", "policy",
                                       "too_big", "stalled", "protocol",     "dropped"};

struct web_client {
    struct web_client *next, **pprev;
    struct lws *wsi;
    char peer[64];
    enum web_scope scope;
    const struct web_token *tok; /* org and partner clients: what they are limited to */
    struct web_filter filter;
    bool linked, hello_sent, subscribed_pending, closed_by_server, peer_closed;
    uint64_t next_seq;
    uint64_t skipped_pending, skipped_total, sent_events, frames;
    uint64_t stats_gen_sent;
    uint64_t alert_seq;
    ds_time_ns last_writeable;
    int64_t msg_sec;
    unsigned msg_n;
    size_t rx_len;
    unsigned rx_pieces; /* of the message being received */
    char rx[WEB_MSG_MAX + 1];
};

size_t web_live_pss_size(void)
{
    return sizeof(struct web_client);
}

unsigned web_live_clients(const struct web_server *s)
{
    return s->n_clients;
}

static int close_with(struct web_server *s, struct web_client *c, enum web_close kind,
                      enum lws_close_status code, const char *why)
{
    struct lws *wsi = c->wsi;

    s->m.closed[kind]++;
    c->closed_by_server = true;
    lws_close_reason(wsi, code, (unsigned char *)why, strlen(why));
    return -1;
}

static unsigned clients_from(const struct web_server *s, const char *peer)
{
    unsigned n = 0;

    for (const struct web_client *c = s->clients; c; c = c->next)
        n += strcmp(c->peer, peer) == 0;
    return n;
}

/* An HTTP answer to a refused upgrade, written whole (lws_return_http_status would answer
 * HTTP/1.0 at this stage). */
static int refuse(struct lws *wsi, int status)
{
    unsigned char buf[LWS_PRE + 512];
    const char *text = status == HTTP_STATUS_UNAUTHORIZED ? "Unauthorized"
                       : status == HTTP_STATUS_FORBIDDEN  ? "Forbidden"
                       : status == HTTP_STATUS_NOT_FOUND  ? "Not Found"
                                                          : "Service Unavailable";
    const char *body =
        status == HTTP_STATUS_UNAUTHORIZED ? "{\"error\":\"a valid bearer token is required\"}"
        : status == HTTP_STATUS_FORBIDDEN  ? "{\"error\":\"this token may not use this endpoint\"}"
        : status == HTTP_STATUS_NOT_FOUND  ? "{\"error\":\"no such endpoint\"}"
                                           : "{\"error\":\"too many clients\"}";
    int n = snprintf((char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE,
                     "HTTP/1.1 %d %s\r\ncontent-type: application/json; charset=utf-8\r\n"
                     "content-length: %zu\r\ncache-control: no-store\r\nconnection: close\r\n"
                     "%s%s\r\n%s",
                     status, text, strlen(body),
                     status == HTTP_STATUS_UNAUTHORIZED
                         ? "www-authenticate: Bearer realm=\"darkscope\"\r\n"
                         : "",
                     status == HTTP_STATUS_SERVICE_UNAVAILABLE ? "retry-after: 10\r\n" : "", body);
    lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_HTTP_HEADERS);
    return -1;
}

/* Before the upgrade: the path, the token and the connection limits. Refusals are HTTP. */
static int filter_connection(struct web_server *s, struct lws *wsi)
{
    char uri[64], peer[64];
    bool present;
    enum web_scope scope;
    int status = 0;

    if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, "/live") != 0)
        status = HTTP_STATUS_NOT_FOUND;
    if (!status) {
        scope = web_request_scope(s, wsi, &present, NULL);
        if ((present && scope == WEB_SCOPE_NONE) || (s->auth.required && !present))
            status = HTTP_STATUS_UNAUTHORIZED;
    }
    if (!status) {
        lws_get_peer_simple(wsi, peer, sizeof(peer));
        if (s->n_clients >= (unsigned)s->cfg->web_max_clients ||
            clients_from(s, peer) >= (unsigned)s->cfg->web_max_clients_per_address)
            status = HTTP_STATUS_SERVICE_UNAVAILABLE;
    }
    if (!status)
        return 0;
    s->m.clients_refused++;
    s->m.http[status / 100 <= 5 ? status / 100 : 0]++;
    return refuse(wsi, status);
}

static void json_to_scratch_and_send(struct web_server *s, struct web_client *c, json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    size_t n = text ? strlen(text) : 0;

    if (text && n <= s->scratch_len) {
        memcpy(s->scratch + LWS_PRE, text, n);
        if (lws_write(c->wsi, s->scratch + LWS_PRE, n, LWS_WRITE_TEXT) == (int)n)
            s->m.frames_sent++;
    }
    free(text);
}

static void send_hello(struct web_server *s, struct web_client *c)
{
    json_t *hello = json_object(), *sensors = json_array(), *attr = json_array(), *rec;
    ds_time_ns now = ds_time_now();
    const char *name;
    char version[64];

    snprintf(version, sizeof(version), "darkscope %s", DS_VERSION);
    json_object_set_new(hello, "type", json_string("hello"));
    json_object_set_new(hello, "v", json_integer(1));
    json_object_set_new(hello, "server", json_string(version));
    json_object_set_new(hello, "protocol", json_integer(1));
    json_object_set_new(hello, "scope",
                        c->scope == WEB_SCOPE_NONE ? json_null()
                                                   : json_string(web_scope_names[c->scope]));
    json_object_set_new(hello, "masked", json_boolean(s->cfg->web_mask_sources));
    json_object_set_new(hello, "bucket_seconds", json_integer(s->cfg->bucket_seconds));
    json_object_set_new(
        hello, "sampling",
        json_pack("{s:I}", "max_events_per_second", (json_int_t)s->cfg->live_max_eps));
    json_object_set_new(hello, "limits",
                        json_pack("{s:i,s:i,s:i}", "max_message_bytes", WEB_MSG_MAX,
                                  "max_events_per_frame", WEB_FRAME_EVENTS, "max_backlog_events",
                                  WEB_BACKLOG_EVENTS));
    json_object_foreach(s->sensor_info, name, rec) {
        int i = web_names_index(&s->names, name);
        json_array_append_new(
            sensors,
            web_sensor_public(name, rec, i >= 0 ? s->stats->sensors[i].last_batch : 0, now));
    }
    json_object_set_new(hello, "sensors", sensors);
    if (strcmp(s->attribution, "dbip") == 0)
        json_array_append_new(attr, json_pack("{s:s,s:s}", "text", "IP Geolocation by DB-IP", "url",
                                              "https://db-ip.com"));
    json_object_set_new(hello, "attribution", attr);
    json_object_set_new(hello, "filters", web_filter_json(&c->filter));
    json_to_scratch_and_send(s, c, hello);
    json_decref(hello);
}

static void send_subscribed(struct web_server *s, struct web_client *c)
{
    json_t *msg = json_pack("{s:s,s:i,s:o}", "type", "subscribed", "v", 1, "filters",
                            web_filter_json(&c->filter));
    json_to_scratch_and_send(s, c, msg);
    json_decref(msg);
}

static void send_stats(struct web_server *s, struct web_client *c)
{
    unsigned char *p = s->scratch + LWS_PRE;
    int tail;

    if (s->stats_len + 128 > s->scratch_len)
        return;
    memcpy(p, s->stats_text, s->stats_len);
    tail = snprintf((char *)p + s->stats_len, 128, ",\"client\":{\"sent\":%llu,\"skipped\":%llu}}",
                    (unsigned long long)c->sent_events, (unsigned long long)c->skipped_total);
    if (lws_write(c->wsi, p, s->stats_len + (size_t)tail, LWS_WRITE_TEXT) > 0) {
        s->m.frames_sent++;
        s->m.stats_sent++;
    }
    c->stats_gen_sent = s->stats_gen;
}

/* soc and admin get every alert, an organisation its own, nobody else any */
static bool alert_for(const struct web_server *s, const struct web_client *c, uint64_t seq)
{
    if (c->scope == WEB_SCOPE_SOC || c->scope == WEB_SCOPE_ADMIN)
        return true;
    return c->scope == WEB_SCOPE_ORG && c->tok &&
           strcmp(s->alert_orgs[seq % WEB_ALERTS_KEPT], c->tok->subject) == 0;
}

static bool alerts_pending(const struct web_server *s, struct web_client *c)
{
    uint64_t oldest = s->alerts_head > WEB_ALERTS_KEPT ? s->alerts_head - WEB_ALERTS_KEPT : 0;

    if (c->alert_seq < oldest)
        c->alert_seq = oldest;
    while (c->alert_seq < s->alerts_head && !alert_for(s, c, c->alert_seq))
        c->alert_seq++;
    return c->alert_seq < s->alerts_head;
}

static void send_alert(struct web_server *s, struct web_client *c)
{
    const char *text;
    size_t n;

    if (!alerts_pending(s, c))
        return;
    text = s->alerts[c->alert_seq % WEB_ALERTS_KEPT];
    c->alert_seq++;
    n = text ? strlen(text) : 0;
    if (!n || n > s->scratch_len)
        return;
    memcpy(s->scratch + LWS_PRE, text, n);
    if (lws_write(c->wsi, s->scratch + LWS_PRE, n, LWS_WRITE_TEXT) == (int)n) {
        s->m.frames_sent++;
        s->m.alerts_sent++;
    }
}

/* A partner's push feed: events from its countries only, and no global statistics; an
 * organisation's: its alerts only. */
static bool sees_stats(const struct web_client *c)
{
    return c->scope != WEB_SCOPE_ORG && c->scope != WEB_SCOPE_PARTNER;
}

static bool sees_events(const struct web_client *c)
{
    return c->scope != WEB_SCOPE_ORG;
}

static bool events_pending(const struct web_server *s, const struct web_client *c)
{
    return c->next_seq < s->ring.head;
}

/* The events array body (without brackets) for seqs [from, to) through filter f. */
static bool in_grant(const struct web_token *t, const struct web_event *e)
{
    for (unsigned i = 0; t && i < t->n_countries; i++) {
        if (strcmp(t->countries[i], e->cc) == 0)
            return true;
    }
    return false;
}

static unsigned events_body(struct web_server *s, struct ds_buf *b, uint64_t from, uint64_t to,
                            const struct web_filter *f, const struct web_token *grant)
{
    unsigned n = 0;

    for (uint64_t q = from; q < to; q++) {
        const struct web_event *e = web_ring_at(&s->ring, q);
        if (f && !web_filter_match(f, e, &s->names))
            continue;
        if (grant && !in_grant(grant, e))
            continue;
        if (n)
            ds_buf_addc(b, ',');
        web_event_json(b, e, &s->names);
        n++;
    }
    return n;
}

static void send_events(struct web_server *s, struct web_client *c)
{
    uint64_t tail = web_ring_tail(&s->ring), head = s->ring.head, from, to = head;
    struct ds_buf own, *body;
    unsigned n;
    char ts[40], hdr[160];
    int hl;

    if (c->next_seq < tail) {
        c->skipped_pending += tail - c->next_seq;
        c->next_seq = tail;
    }
    if (to - c->next_seq > WEB_BACKLOG_EVENTS) {
        c->skipped_pending += to - c->next_seq - WEB_BACKLOG_EVENTS;
        c->next_seq = to - WEB_BACKLOG_EVENTS;
    }
    from = c->next_seq;
    if (to - from > WEB_FRAME_EVENTS)
        to = from + WEB_FRAME_EVENTS; /* the rest goes in the next frame, right after this one */
    c->next_seq = to;
    const struct web_token *grant = c->scope == WEB_SCOPE_PARTNER ? c->tok : NULL;
    if (web_filter_is_all(&c->filter) && !grant) {
        /* clients without filters at the same position share one serialisation */
        if (!s->ev_cache_ok || s->ev_cache_from != from || s->ev_cache_to != to) {
            ds_buf_reset(&s->ev_cache);
            events_body(s, &s->ev_cache, from, to, NULL, NULL);
            s->ev_cache_from = from;
            s->ev_cache_to = to;
            s->ev_cache_ok = !ds_buf_failed(&s->ev_cache);
        }
        if (!s->ev_cache_ok)
            return;
        body = &s->ev_cache;
        n = (unsigned)(to - from);
        own.p = NULL;
    } else {
        ds_buf_init(&own, s->scratch_len - 4096);
        n = events_body(s, &own, from, to, &c->filter, grant);
        body = &own;
    }
    if (n == 0 || ds_buf_failed(body))
        goto out;
    hl = snprintf(hdr, sizeof(hdr),
                  "{\"type\":\"events\",\"v\":1,\"t\":\"%s\",\"skipped\":%llu,"
                  "\"events\":[",
                  ds_time_format_us(ds_time_now(), ts, sizeof(ts)),
                  (unsigned long long)c->skipped_pending);
    if ((size_t)hl + body->len + 2 > s->scratch_len)
        goto out;
    memcpy(s->scratch + LWS_PRE, hdr, (size_t)hl);
    memcpy(s->scratch + LWS_PRE + hl, body->p, body->len);
    memcpy(s->scratch + LWS_PRE + hl + body->len, "]}", 2);
    if (lws_write(c->wsi, s->scratch + LWS_PRE, (size_t)hl + body->len + 2, LWS_WRITE_TEXT) > 0) {
        s->m.frames_sent++;
        s->m.events_sent += n;
        s->m.events_skipped += c->skipped_pending;
        c->sent_events += n;
        c->skipped_total += c->skipped_pending;
        c->skipped_pending = 0;
        c->frames++;
    }
out:
    if (body == &own)
        ds_buf_fini(&own);
}

static bool more_to_send(const struct web_server *s, const struct web_client *c)
{
    return !c->hello_sent || c->subscribed_pending ||
           alerts_pending((struct web_server *)s, (struct web_client *)c) ||
           (sees_stats(c) && s->stats_text && c->stats_gen_sent < s->stats_gen) ||
           (sees_events(c) && events_pending(s, c));
}

static void on_writeable(struct web_server *s, struct web_client *c)
{
    c->last_writeable = ds_time_monotonic();
    if (!c->hello_sent) {
        send_hello(s, c);
        c->hello_sent = true;
    } else if (c->subscribed_pending) {
        send_subscribed(s, c);
        c->subscribed_pending = false;
    } else if (alerts_pending(s, c)) {
        send_alert(s, c);
    } else if (sees_stats(c) && s->stats_text && c->stats_gen_sent < s->stats_gen) {
        send_stats(s, c);
    } else if (sees_events(c) && events_pending(s, c)) {
        send_events(s, c);
    }
    if (more_to_send(s, c))
        lws_callback_on_writable(c->wsi);
}

enum web_close web_live_message_parse(const char *msg, size_t len, struct web_filter *f, char *why,
                                      size_t whylen)
{
    json_error_t jerr;
    json_t *root = json_loadb(msg, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *type;
    enum web_close kind = WEB_CLOSE_NORMAL;

    if (!root || !json_is_object(root)) {
        snprintf(why, whylen, "expected a JSON object");
        kind = WEB_CLOSE_INVALID;
        goto done;
    }
    type = json_string_value(json_object_get(root, "type"));
    if (!type || strcmp(type, "subscribe") != 0) {
        snprintf(why, whylen, "unknown message type (only \"subscribe\")");
        kind = WEB_CLOSE_POLICY;
        goto done;
    }
    if (web_filter_parse(json_object_get(root, "filters"), f, why, whylen) < 0)
        kind = WEB_CLOSE_POLICY;
done:
    json_decref(root);
    return kind;
}

static int on_message(struct web_server *s, struct web_client *c)
{
    size_t len = c->rx_len;
    enum web_close kind;
    char why[120];
    struct web_filter f;
    int64_t sec = ds_time_monotonic() / DS_NS_PER_SEC;

    c->rx_len = 0;
    if (sec != c->msg_sec) {
        c->msg_sec = sec;
        c->msg_n = 0;
    }
    if (++c->msg_n > MSGS_PER_SECOND)
        return close_with(s, c, WEB_CLOSE_POLICY, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                          "more than 5 messages per second");
    kind = web_live_message_parse(c->rx, len, &f, why, sizeof(why));
    if (kind != WEB_CLOSE_NORMAL)
        return close_with(s, c, kind,
                          kind == WEB_CLOSE_INVALID ? LWS_CLOSE_STATUS_INVALID_PAYLOAD
                                                    : LWS_CLOSE_STATUS_POLICY_VIOLATION,
                          why);
    c->filter = f;
    c->subscribed_pending = true;
    lws_callback_on_writable(c->wsi);
    return 0;
}

/* How a connection the server did not close ended: lws closes a client that breaks RFC 6455
 * itself, with a close reason (1002, or 1007 for bad UTF-8) when it can parse the frame and
 * without one when it cannot (a control frame over 125 bytes, a length with bit 63 set). */
static enum web_close ended_how(const struct web_client *c, struct lws *wsi)
{
    if (c->peer_closed)
        return WEB_CLOSE_NORMAL;
    return lws_get_close_length(wsi) >= 2 ? WEB_CLOSE_PROTOCOL : WEB_CLOSE_DROPPED;
}

void web_live_check_stalls(struct web_server *s, ds_time_ns now)
{
    ds_time_ns mono = ds_time_monotonic(), limit = s->cfg->web_stall_timeout * DS_NS_PER_SEC;

    (void)now;
    for (struct web_client *c = s->clients; c; c = c->next) {
        if (mono - c->last_writeable > limit && more_to_send(s, c)) {
            s->m.closed[WEB_CLOSE_STALLED]++;
            ds_log(DS_LOG_INFO, "web", "closing stalled client %s", c->peer);
            /* reset, not a graceful close: the kernel drops what the client never read */
            struct linger lg = {1, 0};
            setsockopt(lws_get_socket_fd(c->wsi), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            c->last_writeable = mono; /* counted once */
            c->closed_by_server = true;
        }
    }
}

int web_live_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len)
{
    struct web_server *s = web_server_of(wsi);
    struct web_client *c = user;
    bool present;

    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return filter_connection(s, wsi);

    case LWS_CALLBACK_ESTABLISHED:
        memset(c, 0, sizeof(*c));
        c->wsi = wsi;
        c->scope = web_request_scope(s, wsi, &present, &c->tok);
        lws_get_peer_simple(wsi, c->peer, sizeof(c->peer));
        c->next = s->clients;
        c->pprev = &s->clients;
        if (s->clients)
            s->clients->pprev = &c->next;
        s->clients = c;
        c->linked = true;
        s->n_clients++;
        c->next_seq = s->ring.head > JOIN_BACKLOG ? s->ring.head - JOIN_BACKLOG : 0;
        if (c->next_seq < web_ring_tail(&s->ring))
            c->next_seq = web_ring_tail(&s->ring);
        c->alert_seq = s->alerts_head;
        c->stats_gen_sent = s->stats_gen;
        c->last_writeable = ds_time_monotonic();
        {
            /* a bounded kernel queue per client: a client that stops reading is noticed within
             * a few frames, not after megabytes of autotuned buffer */
            int sndbuf = SNDBUF_BYTES;
            setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
        }
        lws_callback_on_writable(wsi);
        break;

    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!c || !c->linked)
            break;
        on_writeable(s, c);
        break;

    case LWS_CALLBACK_RECEIVE:
        if (!c || !c->linked)
            return -1;
        if (lws_frame_is_binary(wsi))
            return close_with(s, c, WEB_CLOSE_BINARY, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
                              "binary frames are not accepted");
        if (c->rx_len + len > WEB_MSG_MAX)
            return close_with(s, c, WEB_CLOSE_TOO_BIG, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                              "message over 4096 bytes");
        /* empty continuation frames never fill the buffer: count the pieces too */
        if (++c->rx_pieces > MSG_PIECES)
            return close_with(s, c, WEB_CLOSE_POLICY, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                              "message in more than 64 frames");
        memcpy(c->rx + c->rx_len, in, len);
        c->rx_len += len;
        if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
            break;
        c->rx_pieces = 0;
        return on_message(s, c);

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c && c->linked)
            c->peer_closed = true;
        break;

    case LWS_CALLBACK_CLOSED:
        if (c && c->linked) {
            *c->pprev = c->next;
            if (c->next)
                c->next->pprev = c->pprev;
            c->linked = false;
            s->n_clients--;
            if (!c->closed_by_server) /* those were counted when closed */
                s->m.closed[ended_how(c, wsi)]++;
        }
        break;

    default:
        /* this protocol is the vhost's default, so plain HTTP (the page's files) binds to it
         * too: lws's helper completes those transactions, keeping keep-alive working */
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
    return 0;
}
