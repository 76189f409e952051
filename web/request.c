/* REST requests (docs/websocket-protocol.md): a path, its parameters and the caller's scope turned
 * into a query for the query thread (api.c), or refused with a status and a message. Pure: the
 * parameters come through a callback, the clock and the sensors' bucket length from the caller,
 * so hostile requests can be fuzzed without a server (tests/fuzz/fuzz_api.c). */
#include "aggregator/aggregator.h"
#include "web/web_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define TOP_MAX        1000
#define DEFAULT_RANGE  3600
#define FEED_RANGE_MAX 86400 /* the longest range a feed answer covers */

static int refuse(struct web_refusal *r, unsigned status, bool audit, const char *fmt, ...)
    DS_PRINTF(4, 5);
static int refuse(struct web_refusal *r, unsigned status, bool audit, const char *fmt, ...)
{
    va_list ap;

    r->status = status;
    r->audit = audit;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
    return -1;
}

/* 401 without a token, 403 with one that may not do this. */
static int refuse_scope(struct web_refusal *r, enum web_scope scope, const char *what)
{
    if (scope == WEB_SCOPE_NONE) {
        r->www_auth = true;
        return refuse(r, 401, true, "a valid bearer token is required");
    }
    return refuse(r, 403, true, "this token may not %s", what);
}

/* RFC 3339 or Unix seconds, from 1970 to 2262 (DS_TIME_MAX_SEC): the queries turn them into
 * nanoseconds */
static int parse_time_arg(const char *v, int64_t *out)
{
    char *end;
    long long n = strtoll(v, &end, 10);
    ds_time_ns t;

    if (*v && !*end && n >= 0) {
        if (n > DS_TIME_MAX_SEC)
            return -1;
        *out = n;
        return 0;
    }
    if (ds_time_parse(v, &t) < 0 || t < 0)
        return -1;
    *out = t / DS_NS_PER_SEC;
    return 0;
}

static const char *arg(const struct web_request *rq, const char *name, char *buf, int len)
{
    return rq->arg(rq->arg_ctx, name, buf, len);
}

static void audit_as(const struct web_request *rq, struct web_query *q, const char *endpoint)
{
    snprintf(q->audit_token, sizeof(q->audit_token), "%s", rq->tok ? rq->tok->name : "-");
    snprintf(q->audit_scope, sizeof(q->audit_scope), "%s", web_scope_names[rq->scope]);
    snprintf(q->endpoint, sizeof(q->endpoint), "%s", endpoint);
    q->audit = true;
}

/* soc and admin read every alert, an organisation its own; nobody else */
static int parse_alerts(const struct web_request *rq, struct web_query *q, struct web_refusal *r)
{
    char buf[200];
    const char *v;

    audit_as(rq, q, rq->path);
    if (rq->scope != WEB_SCOPE_SOC && rq->scope != WEB_SCOPE_ADMIN && rq->scope != WEB_SCOPE_ORG)
        return refuse_scope(r, rq->scope, "read alerts");
    if (rq->scope == WEB_SCOPE_ORG)
        snprintf(q->org, sizeof(q->org), "%s", rq->tok->subject);
    if ((v = arg(rq, "kind=", buf, sizeof(buf)))) {
        if (strcmp(v, "infected") && strcmp(v, "internal") && strcmp(v, "ddos_victim") &&
            strcmp(v, "early_warning"))
            return refuse(r, 400, true,
                          "parameter 'kind': expected infected, internal, ddos_victim or "
                          "early_warning");
        snprintf(q->alert_kind, sizeof(q->alert_kind), "%s", v);
    }
    q->from = 0;
    if ((v = arg(rq, "since=", buf, sizeof(buf))) && parse_time_arg(v, &q->from) < 0)
        return refuse(r, 400, true, "parameter 'since': expected RFC 3339 or Unix seconds");
    return 0;
}

/* soc and admin: every country; a partner: its countries; nobody else */
static int parse_scanners(const struct web_request *rq, struct web_query *q, struct web_refusal *r)
{
    char buf[200], want[64][3];
    unsigned n_want = 0;
    const char *v;

    audit_as(rq, q, rq->path);
    if (rq->scope != WEB_SCOPE_SOC && rq->scope != WEB_SCOPE_ADMIN &&
        rq->scope != WEB_SCOPE_PARTNER)
        return refuse_scope(r, rq->scope, "read feeds");
    snprintf(q->format, sizeof(q->format), "json");
    if ((v = arg(rq, "format=", buf, sizeof(buf)))) {
        if (strcmp(v, "json") && strcmp(v, "csv") && strcmp(v, "stix"))
            return refuse(r, 400, true, "parameter 'format': expected json, csv or stix");
        snprintf(q->format, sizeof(q->format), "%s", v);
    }
    /* the countries asked for (cc=JP,ID), within what the token may see */
    if ((v = arg(rq, "cc=", buf, sizeof(buf)))) {
        for (const char *c = v; *c && n_want < 64;) {
            size_t n = strcspn(c, ",");
            if (n != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z')
                return refuse(r, 400, true,
                              "parameter 'cc': expected two-letter country codes, "
                              "comma-separated");
            memcpy(want[n_want], c, 2);
            want[n_want++][2] = '\0';
            c += n + (c[n] == ',');
        }
    }
    if (rq->scope == WEB_SCOPE_PARTNER) {
        for (unsigned i = 0; i < rq->tok->n_countries; i++) {
            bool asked = n_want == 0;
            for (unsigned k = 0; k < n_want && !asked; k++)
                asked = strcmp(want[k], rq->tok->countries[i]) == 0;
            if (asked)
                memcpy(q->cc[q->n_cc++], rq->tok->countries[i], 3);
        }
        if (q->n_cc == 0) {
            /* nothing asked for is within the grant: an empty feed, not an error */
            snprintf(q->cc[q->n_cc++], 3, "--");
        }
    } else {
        for (unsigned k = 0; k < n_want; k++)
            memcpy(q->cc[q->n_cc++], want[k], 3);
    }
    q->is_csv = strcmp(q->format, "csv") == 0;
    return 0;
}

/* a host's history: soc and admin any, an organisation only its own hosts */
static int parse_host(const struct web_request *rq, struct web_query *q, struct web_refusal *r)
{
    bool allowed = rq->scope == WEB_SCOPE_SOC || rq->scope == WEB_SCOPE_ADMIN;

    audit_as(rq, q, "/api/v1/hosts/");
    if (rq->scope == WEB_SCOPE_ORG && rq->tok && rq->tok->org >= 0 && rq->livenet) {
        struct agg_match m[64];
        unsigned n = agg_trie_match(rq->livenet, &q->host, m, 64);
        for (unsigned i = 0; i < n && i < 64 && !allowed; i++)
            allowed = (int)m[i].value == rq->tok->org;
    }
    /* the same answer whether or not the host was ever seen */
    return allowed ? 0 : refuse_scope(r, rq->scope, "read this host");
}

/* The range, step, top and sensor every query but the alerts takes. */
static int parse_range(const struct web_request *rq, struct web_query *q, struct web_refusal *r)
{
    char buf[200];
    const char *v;

    q->to = rq->now + 1;
    if ((v = arg(rq, "to=", buf, sizeof(buf))) && parse_time_arg(v, &q->to) < 0)
        return refuse(r, 400, false, "parameter 'to': expected RFC 3339 or Unix seconds");
    q->from = q->to - DEFAULT_RANGE;
    if ((v = arg(rq, "from=", buf, sizeof(buf))) && parse_time_arg(v, &q->from) < 0)
        return refuse(r, 400, false, "parameter 'from': expected RFC 3339 or Unix seconds");
    /* a partner's feed pull: everything since its last pull, until now */
    if (q->kind == WEB_QUERY_SCANNERS && (v = arg(rq, "since=", buf, sizeof(buf)))) {
        if (parse_time_arg(v, &q->from) < 0)
            return refuse(r, 400, true, "parameter 'since': expected RFC 3339 or Unix seconds");
        q->to = rq->now + 1;
    }
    if (q->from >= q->to)
        return refuse(r, 400, false, "parameter 'from': must be before 'to'");
    q->bucket_seconds = rq->bucket_seconds;
    q->step = q->bucket_seconds;
    if ((v = arg(rq, "step=", buf, sizeof(buf)))) {
        char *end;
        long long st = strtoll(v, &end, 10);
        if (*end || st <= 0 || st % q->bucket_seconds || st > DS_TIME_MAX_SEC)
            return refuse(r, 400, false,
                          "parameter 'step': expected a positive multiple of %lld seconds",
                          (long long)q->bucket_seconds);
        q->step = st;
    }
    if (q->kind == WEB_QUERY_TIMELINE && (q->to - q->from - 1) / q->step + 1 > WEB_TIMELINE_POINTS)
        return refuse(r, 400, false, "parameter 'step': more than %d points; use a larger step",
                      WEB_TIMELINE_POINTS);
    q->top = 10;
    if ((v = arg(rq, "top=", buf, sizeof(buf)))) {
        char *end;
        long long t = strtoll(v, &end, 10);
        if (*end || t < 1 || t > TOP_MAX)
            return refuse(r, 400, false, "parameter 'top': expected 1 to %d", TOP_MAX);
        q->top = (unsigned)t;
    }
    if (q->kind == WEB_QUERY_TOP_COUNTRIES && q->n_cc)
        q->top = 300; /* every country, so the partner's are among them */
    if ((v = arg(rq, "sensor=", buf, sizeof(buf)))) {
        struct web_names tmp = {0};
        if (web_names_index(&tmp, v) < 0)
            return refuse(r, 400, false, "parameter 'sensor': expected a sensor name");
        snprintf(q->sensor, sizeof(q->sensor), "%s", v);
    }
    if (q->kind == WEB_QUERY_SCANNERS && q->to - q->from > FEED_RANGE_MAX)
        return refuse(r, 400, true, "parameter 'from': a feed covers at most 24 hours");
    return 0;
}

int web_request_parse(const struct web_request *rq, struct web_query *q, struct web_refusal *r)
{
    static const struct {
        const char *path;
        enum web_query_kind kind;
    } endpoints[] = {
        {"/api/v1/summary", WEB_QUERY_SUMMARY},
        {"/api/v1/timeline", WEB_QUERY_TIMELINE},
        {"/api/v1/top/ports", WEB_QUERY_TOP_PORTS},
        {"/api/v1/top/countries", WEB_QUERY_TOP_COUNTRIES},
        {"/api/v1/top/sources", WEB_QUERY_TOP_SOURCES},
        {"/api/v1/sensors", WEB_QUERY_SENSORS},
        {"/api/v1/alerts", WEB_QUERY_ALERTS},
        {"/api/v1/feeds/scanners", WEB_QUERY_SCANNERS},
    };
    size_t i;
    int rc = 0;

    memset(q, 0, sizeof(*q));
    memset(r, 0, sizeof(*r));
    for (i = 0; i < DS_ARRAY_LEN(endpoints) && strcmp(rq->path, endpoints[i].path) != 0; i++)
        ;
    if (i < DS_ARRAY_LEN(endpoints))
        q->kind = endpoints[i].kind;
    else if (strncmp(rq->path, "/api/v1/hosts/", 14) == 0 &&
             ds_addr_parse(rq->path + 14, &q->host) == 0)
        q->kind = WEB_QUERY_HOST;
    else
        return refuse(r, 404, false, "no such endpoint");

    if (q->kind == WEB_QUERY_ALERTS)
        return parse_alerts(rq, q, r); /* no range: every alert since `since` */
    if (q->kind == WEB_QUERY_SCANNERS) {
        rc = parse_scanners(rq, q, r);
    } else if (q->kind == WEB_QUERY_HOST) {
        rc = parse_host(rq, q, r);
    } else if (q->kind == WEB_QUERY_TOP_COUNTRIES && rq->scope == WEB_SCOPE_PARTNER) {
        /* a partner's aggregates: the countries it is granted, among every country seen */
        for (unsigned k = 0; k < rq->tok->n_countries; k++)
            memcpy(q->cc[q->n_cc++], rq->tok->countries[k], 3);
        audit_as(rq, q, rq->path);
    } else if (rq->scope == WEB_SCOPE_ORG || rq->scope == WEB_SCOPE_PARTNER) {
        rc = refuse(r, 403, false, "this token may not use this endpoint");
    }
    if (rc < 0)
        return rc;
    rc = parse_range(rq, q, r);
    if (rc < 0)
        return rc;
    q->mask = rq->mask;
    return 0;
}
