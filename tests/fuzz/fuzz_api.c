/* Fuzz target: REST requests (web/request.c web_request_parse()) — any path and query string,
 * under any scope, is a query within bounds or a refusal with a status and a message, never a
 * crash; and no scope gets what it may not read.
 *
 * Input: one byte, then "PATH?QUERY". The byte's low 3 bits pick the caller's scope (none, org,
 * partner, viewer, soc, admin), bit 0x08 the sensors' bucket length (60 or 300 s), bit 0x10
 * leaves the organisations' ranges out. Parameters are read from QUERY as libwebsockets reads
 * them: '&'-separated, %XX-decoded, the first "name=value" that fits the buffer. */
#include "aggregator/aggregator.h"
#include "web/web_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct query {
    const char *s;
    size_t len;
};

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static const char *query_arg(void *ctx, const char *name, char *buf, int len)
{
    const struct query *q = ctx;
    size_t nlen = strlen(name);

    for (size_t at = 0; at <= q->len;) {
        const char *frag = q->s + at, *amp = memchr(frag, '&', q->len - at);
        size_t flen = amp ? (size_t)(amp - frag) : q->len - at, n = 0;
        for (size_t i = 0; i < flen && n + 1 < (size_t)len; i++) {
            if (frag[i] == '%' && i + 2 < flen && hex(frag[i + 1]) >= 0 && hex(frag[i + 2]) >= 0) {
                buf[n++] = (char)(hex(frag[i + 1]) << 4 | hex(frag[i + 2]));
                i += 2;
            } else {
                buf[n++] = frag[i] == '+' ? ' ' : frag[i];
            }
        }
        buf[n] = '\0';
        if (n >= nlen && strncmp(buf, name, nlen) == 0 && n + 1 < (size_t)len) {
            memmove(buf, buf + nlen, n - nlen + 1);
            return buf;
        }
        at += flen + 1;
    }
    return NULL;
}

static struct agg_trie *livenet;

static void livenet_init(void)
{
    static const struct {
        const char *cidr;
        unsigned org;
    } ranges[] = {{"198.51.100.0/24", 0}, {"2001:db8:1::/48", 0}, {"203.0.113.0/24", 1}};

    livenet = agg_trie_new();
    for (size_t i = 0; livenet && i < DS_ARRAY_LEN(ranges); i++) {
        struct ds_cidr c;
        if (ds_cidr_parse(ranges[i].cidr, &c) < 0 || agg_trie_add(livenet, &c, ranges[i].org) < 0)
            abort();
    }
    if (!livenet || agg_trie_finish(livenet) < 0)
        abort();
}

static bool time_ok(int64_t t)
{
    return t >= -DS_TIME_MAX_SEC && t <= DS_TIME_MAX_SEC; /* t * DS_NS_PER_SEC is safe */
}

static bool cc_ok(const char *cc)
{
    return (cc[0] >= 'A' && cc[0] <= 'Z' && cc[1] >= 'A' && cc[1] <= 'Z' && !cc[2]) ||
           strcmp(cc, "--") == 0;
}

/* Who may ask for what (docs/websocket-protocol.md). */
static bool may(enum web_scope scope, enum web_query_kind kind)
{
    switch (kind) {
    case WEB_QUERY_ALERTS:
        return scope == WEB_SCOPE_SOC || scope == WEB_SCOPE_ADMIN || scope == WEB_SCOPE_ORG;
    case WEB_QUERY_SCANNERS:
        return scope == WEB_SCOPE_SOC || scope == WEB_SCOPE_ADMIN || scope == WEB_SCOPE_PARTNER;
    case WEB_QUERY_HOST:
        return scope == WEB_SCOPE_SOC || scope == WEB_SCOPE_ADMIN || scope == WEB_SCOPE_ORG;
    case WEB_QUERY_TOP_COUNTRIES:
        return scope != WEB_SCOPE_ORG;
    default:
        return scope != WEB_SCOPE_ORG && scope != WEB_SCOPE_PARTNER;
    }
}

static void check_query(const struct web_request *rq, const struct web_query *q)
{
    if (!may(rq->scope, q->kind))
        abort();
    if (!time_ok(q->from) || !time_ok(q->to))
        abort();
    if (q->n_cc > 64 || q->sensor[sizeof(q->sensor) - 1])
        abort();
    for (unsigned i = 0; i < q->n_cc; i++) {
        if (!cc_ok(q->cc[i]))
            abort();
    }
    if (q->audit && (!q->audit_token[0] || !q->audit_scope[0] || !q->endpoint[0]))
        abort();
    if (q->kind == WEB_QUERY_ALERTS) {
        if ((rq->scope == WEB_SCOPE_ORG) != (q->org[0] != '\0'))
            abort();
        return;
    }
    if (q->from >= q->to || q->step <= 0 || q->step % rq->bucket_seconds || !time_ok(q->step))
        abort();
    if (q->top < 1 || q->top > 1000)
        abort();
    if (q->kind == WEB_QUERY_TIMELINE && (q->to - q->from - 1) / q->step + 1 > WEB_TIMELINE_POINTS)
        abort();
    if (q->kind == WEB_QUERY_SCANNERS &&
        (q->to - q->from > 86400 || !q->audit ||
         (strcmp(q->format, "json") && strcmp(q->format, "csv") && strcmp(q->format, "stix"))))
        abort();
    if (rq->scope == WEB_SCOPE_PARTNER && q->kind == WEB_QUERY_SCANNERS && q->n_cc == 0)
        abort(); /* a partner never gets every country */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct web_token tokens[] = {
        {.name = "org:city-a", .scope = WEB_SCOPE_ORG, .subject = "city-a", .org = 0},
        {.name = "partner:jpcert",
         .scope = WEB_SCOPE_PARTNER,
         .subject = "jpcert",
         .org = -1,
         .n_countries = 2,
         .countries = {"JP", "ID"}},
        {.name = "wall", .scope = WEB_SCOPE_VIEWER, .org = -1},
        {.name = "soc-team", .scope = WEB_SCOPE_SOC, .org = -1},
        {.name = "root", .scope = WEB_SCOPE_ADMIN, .org = -1},
    };
    struct web_request rq;
    struct web_query q;
    struct web_refusal r;
    struct query qs;
    const char *text, *qm;
    char *path;
    size_t len;

    if (!livenet)
        livenet_init();
    if (size < 1)
        return 0;
    text = (const char *)data + 1;
    len = size - 1;
    qm = memchr(text, '?', len);
    qs = (struct query){qm ? qm + 1 : "", qm ? len - (size_t)(qm + 1 - text) : 0};
    /* the path as lws copies it: up to 255 bytes, text up to the first NUL */
    path = strndup(text, qm ? (size_t)(qm - text) : len);
    if (!path)
        return 0;
    if (strlen(path) > 255)
        path[255] = '\0';
    rq = (struct web_request){
        .path = path,
        .arg = query_arg,
        .arg_ctx = &qs,
        .scope = (enum web_scope)(data[0] & 7) % (WEB_SCOPE_ADMIN + 1),
        .livenet = data[0] & 0x10 ? NULL : livenet,
        .bucket_seconds = data[0] & 0x08 ? 300 : 60,
        .mask = true,
        .now = 1700000000,
    };
    if (rq.scope != WEB_SCOPE_NONE)
        rq.tok = &tokens[rq.scope - WEB_SCOPE_ORG];
    if (web_request_parse(&rq, &q, &r) == 0) {
        check_query(&rq, &q);
    } else {
        if (r.status != 400 && r.status != 401 && r.status != 403 && r.status != 404)
            abort();
        if (!r.msg[0] || r.www_auth != (r.status == 401) || (r.status == 401 && rq.tok))
            abort();
        if (r.audit && (!q.audit_token[0] || !q.endpoint[0]))
            abort();
    }
    free(path);
    return 0;
}
