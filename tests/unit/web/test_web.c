/* web/: the pure parts — capture's batches into events, the ring and its read positions,
 * filters, the event JSON, live statistics and tokens. */
#include "web/web_internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct web_event pushed[64];
static unsigned n_pushed;

static void collect(void *ctx, const struct web_event *e)
{
    (void)ctx;
    if (n_pushed < 64)
        pushed[n_pushed++] = *e;
}

static const char BATCH[] =
    "{\"v\":1,\"sensor\":\"tokyo-1\",\"t\":\"2026-11-25T20:00:00.250000Z\",\"seen\":120,"
    "\"sampled\":3,\"by_class\":{\"scan\":100,\"backscatter\":20},"
    "\"bucket\":{\"start\":\"2026-11-25T20:00:00Z\",\"sources\":77},\"events\":["
    "{\"t\":\"2026-11-25T20:00:00.1Z\",\"src\":\"203.0.113.77\",\"cc\":\"JP\",\"lat\":35.5,"
    "\"lon\":139.25,\"dport\":23,\"proto\":\"tcp\",\"class\":\"scan\",\"tool\":\"mirai\"},"
    "{\"t\":\"2026-11-25T20:00:00.2Z\",\"src\":\"2001:db8:1:2::5\",\"cc\":null,\"dport\":0,"
    "\"proto\":\"icmp\",\"class\":\"backscatter\",\"tool\":null},"
    "{\"t\":\"bad time\",\"src\":\"1.2.3.4\",\"dport\":1,\"proto\":\"tcp\",\"class\":\"scan\"},"
    "{\"t\":\"2026-11-25T20:00:00.3Z\",\"src\":\"198.51.100.9\",\"cc\":\"ZZZ\",\"dport\":53,"
    "\"proto\":\"udp\",\"class\":\"udp_probe\",\"tool\":null,\"lat\":95,\"lon\":0}]}";

static void test_batch_parse(void **state)
{
    struct web_names names = {0};
    struct web_batch b;
    char buf[DS_ADDR_STRLEN];

    (void)state;
    n_pushed = 0;
    assert_int_equal(web_batch_parse(BATCH, strlen(BATCH), &names, false, &b, collect, NULL), 3);
    assert_int_equal(n_pushed, 3); /* the event with a bad time is skipped */
    assert_int_equal(b.sensor, 0);
    assert_string_equal(names.name[0], "tokyo-1");
    assert_int_equal(b.seen, 120);
    assert_int_equal(b.sampled, 3);
    assert_true(b.has_classes);
    assert_int_equal(b.by_class[DS_CLASS_SCAN], 100);
    assert_int_equal(b.by_class[DS_CLASS_BACKSCATTER], 20);
    assert_int_equal(b.bucket_start, 1795636800);
    assert_int_equal(b.bucket_sources, 77);
    assert_string_equal(ds_addr_format(&pushed[0].src, buf, sizeof(buf)), "203.0.113.77");
    assert_string_equal(pushed[0].cc, "JP");
    assert_true(pushed[0].has_loc);
    assert_int_equal(pushed[0].dport, 23);
    assert_int_equal(pushed[0].tool, DS_TOOL_MIRAI);
    assert_int_equal(pushed[1].cls, DS_CLASS_BACKSCATTER);
    assert_int_equal(pushed[1].tool, -1);
    assert_string_equal(pushed[1].cc, "");
    assert_false(pushed[1].has_loc);
    assert_string_equal(pushed[2].cc, ""); /* not a country code */
    assert_false(pushed[2].has_loc);       /* latitude out of range */

    /* masking: /24 and /48 */
    n_pushed = 0;
    assert_int_equal(web_batch_parse(BATCH, strlen(BATCH), &names, true, &b, collect, NULL), 3);
    assert_string_equal(ds_addr_format(&pushed[0].src, buf, sizeof(buf)), "203.0.113.0");
    assert_string_equal(ds_addr_format(&pushed[1].src, buf, sizeof(buf)), "2001:db8:1::");
    assert_int_equal(names.n, 1); /* the same sensor keeps its index */

    /* not a batch */
    assert_int_equal(web_batch_parse("[1]", 3, &names, false, &b, collect, NULL), -1);
    assert_int_equal(web_batch_parse("{\"v\":2}", 7, &names, false, &b, collect, NULL), -1);
    assert_int_equal(web_batch_parse("{\"v\":1,\"sensor\":\"a b\",\"t\":\"2026-01-01T00:00:00Z\","
                                     "\"events\":[]}",
                                     62, &names, false, &b, collect, NULL),
                     -1);
    assert_int_equal(web_batch_parse("{", 1, &names, false, &b, collect, NULL), -1);
}

static void test_ring(void **state)
{
    struct web_ring r;
    struct web_event e = {0};

    (void)state;
    assert_int_equal(web_ring_init(&r, 300), 0);
    assert_int_equal(r.cap, 512);
    assert_int_equal(web_ring_tail(&r), 0);
    for (unsigned i = 0; i < 1000; i++) {
        e.dport = (uint16_t)i;
        web_ring_push(&r, &e);
    }
    assert_int_equal(r.head, 1000);
    assert_int_equal(web_ring_tail(&r), 1000 - 512);
    assert_int_equal(web_ring_at(&r, 999)->dport, 999);
    assert_int_equal(web_ring_at(&r, 488)->dport, 488);
    web_ring_fini(&r);
}

static json_t *parse(const char *s)
{
    json_t *j = json_loads(s, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_filters(void **state)
{
    struct web_names names = {0};
    struct web_filter f;
    struct web_event e = {0};
    char why[128];
    json_t *j;

    (void)state;
    web_names_index(&names, "a");
    web_names_index(&names, "b");
    assert_int_equal(web_filter_parse(NULL, &f, why, sizeof(why)), 0);
    assert_true(web_filter_is_all(&f));

    j = parse("{\"class\":[\"scan\"],\"proto\":[\"tcp\",\"udp\"],\"port\":[23,2323],"
              "\"cc\":[\"CN\",\"??\"],\"sensor\":[\"b\"]}");
    assert_int_equal(web_filter_parse(j, &f, why, sizeof(why)), 0);
    json_decref(j);
    assert_false(web_filter_is_all(&f));
    e.cls = DS_CLASS_SCAN;
    e.proto = DS_PROTO_TCP;
    e.dport = 23;
    memcpy(e.cc, "CN", 3);
    e.sensor = 1;
    assert_true(web_filter_match(&f, &e, &names));
    e.cc[0] = '\0'; /* unknown country matches "??" */
    assert_true(web_filter_match(&f, &e, &names));
    e.sensor = 0;
    assert_false(web_filter_match(&f, &e, &names));
    e.sensor = 1;
    e.dport = 22;
    assert_false(web_filter_match(&f, &e, &names));
    e.dport = 23;
    e.cls = DS_CLASS_BACKSCATTER;
    assert_false(web_filter_match(&f, &e, &names));
    e.cls = DS_CLASS_SCAN;
    e.proto = DS_PROTO_ICMP;
    assert_false(web_filter_match(&f, &e, &names));

    /* the filters in force, as the subscribed message reports them */
    j = web_filter_json(&f);
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"cc\":[\"CN\",\"??\"],\"class\":[\"scan\"],\"port\":[23,2323],"
                              "\"proto\":[\"tcp\",\"udp\"],\"sensor\":[\"b\"]}");
    free(text);
    json_decref(j);

    static const char *const bad[] = {"{\"class\":[\"nope\"]}",
                                      "{\"proto\":[\"sctp\"]}",
                                      "{\"port\":[70000]}",
                                      "{\"port\":[\"23\"]}",
                                      "{\"cc\":[\"cn\"]}",
                                      "{\"sensor\":[\"a b\"]}",
                                      "{\"color\":[\"red\"]}",
                                      "{\"class\":\"scan\"}",
                                      "[1]",
                                      "{\"port\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}"};
    for (size_t i = 0; i < DS_ARRAY_LEN(bad); i++) {
        j = parse(bad[i]);
        why[0] = '\0';
        assert_int_equal(web_filter_parse(j, &f, why, sizeof(why)), -1);
        assert_true(why[0] != '\0');
        json_decref(j);
    }
}

static void test_event_json(void **state)
{
    struct web_names names = {0};
    struct web_event e = {0};
    struct ds_buf b;
    json_t *j;

    (void)state;
    web_names_index(&names, "tokyo-1");
    assert_int_equal(ds_time_parse("2026-11-25T20:00:00.123456Z", &e.ts), 0);
    assert_int_equal(ds_addr_parse("2001:db8::7", &e.src), 0);
    e.cls = DS_CLASS_SCAN;
    e.proto = DS_PROTO_TCP;
    e.dport = 445;
    e.tool = DS_TOOL_ZMAP;
    e.has_loc = true;
    e.lat = 35.5f;
    e.lon = -139.25f;
    memcpy(e.cc, "JP", 3);
    ds_buf_init(&b, 4096);
    web_event_json(&b, &e, &names);
    j = json_loads(b.p, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "t")), "2026-11-25T20:00:00.123456Z");
    assert_string_equal(json_string_value(json_object_get(j, "sensor")), "tokyo-1");
    assert_string_equal(json_string_value(json_object_get(j, "src")), "2001:db8::7");
    assert_string_equal(json_string_value(json_object_get(j, "cc")), "JP");
    assert_true(json_number_value(json_object_get(j, "lon")) == -139.25);
    assert_int_equal(json_integer_value(json_object_get(j, "dport")), 445);
    assert_string_equal(json_string_value(json_object_get(j, "tool")), "zmap");
    json_decref(j);
    ds_buf_reset(&b);
    e.tool = -1;
    e.cc[0] = '\0';
    e.has_loc = false;
    web_event_json(&b, &e, &names);
    j = json_loads(b.p, 0, NULL);
    assert_true(json_is_null(json_object_get(j, "tool")));
    assert_true(json_is_null(json_object_get(j, "cc")));
    assert_null(json_object_get(j, "lat"));
    json_decref(j);
    ds_buf_fini(&b);
}

static void test_stats(void **state)
{
    struct web_stats *s = calloc(1, sizeof(*s));
    struct web_names names = {0};
    struct web_batch b = {0};
    struct web_event e = {0};
    ds_time_ns now = 1795636800LL * DS_NS_PER_SEC;
    json_t *j, *top;

    (void)state;
    web_stats_init(s, 1795636800);
    b.sensor = web_names_index(&names, "s1");
    /* 4 complete seconds of 1000 packets (700 scan, 300 backscatter) and 10 events each */
    for (int sec = 0; sec < 4; sec++) {
        web_stats_tick(s, 1795636800 + sec);
        b.seen = 1000;
        b.sampled = 10;
        b.by_class[DS_CLASS_SCAN] = 700;
        b.by_class[DS_CLASS_BACKSCATTER] = 300;
        b.bucket_start = 1795636800;
        b.bucket_sources = 50 + (uint64_t)sec;
        web_stats_batch(s, &b, now + sec * DS_NS_PER_SEC);
        for (int k = 0; k < 10; k++) {
            memcpy(e.cc, k < 7 ? "CN" : "US", 3);
            e.proto = DS_PROTO_TCP;
            e.dport = k < 5 ? 23 : 22;
            e.tool = k < 2 ? DS_TOOL_MIRAI : -1;
            web_stats_event(s, &e);
        }
    }
    web_stats_tick(s, 1795636804); /* second 4 starts: seconds 0-3 are the window */
    j = web_stats_json(s, &names, NULL, now + 4 * DS_NS_PER_SEC);
    assert_true(json_real_value(json_object_get(j, "packets_per_second")) == 1000.0);
    assert_true(json_real_value(json_object_get(j, "events_per_second")) == 10.0);
    assert_true(json_real_value(json_object_get(j, "sampling_ratio")) == 0.01);
    assert_true(json_real_value(json_object_get(json_object_get(j, "by_class"), "scan")) == 700.0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "bucket"), "sources")),
                     53);
    top = json_object_get(j, "top");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(top, "countries"), 0), "cc")),
                        "CN");
    assert_true(json_real_value(json_object_get(
                    json_array_get(json_object_get(top, "countries"), 0), "share")) == 0.7);
    assert_int_equal(json_integer_value(
                         json_object_get(json_array_get(json_object_get(top, "ports"), 0), "port")),
                     22 /* 5 of 10 each: the tie goes to the lower key */);
    assert_true(json_real_value(json_object_get(json_array_get(json_object_get(top, "tools"), 0),
                                                "share")) == 0.2);
    assert_int_equal(json_integer_value(json_object_get(top, "events")), 40);
    assert_true(
        json_is_true(json_object_get(json_array_get(json_object_get(j, "sensors"), 0), "online")));
    json_decref(j);

    /* a minute later everything has left the window, and the sensor is offline */
    web_stats_tick(s, 1795636800 + 70);
    j = web_stats_json(s, &names, NULL, now + 70 * DS_NS_PER_SEC);
    assert_true(json_real_value(json_object_get(j, "packets_per_second")) == 0.0);
    assert_int_equal(json_array_size(json_object_get(json_object_get(j, "top"), "countries")), 0);
    assert_true(
        json_is_false(json_object_get(json_array_get(json_object_get(j, "sensors"), 0), "online")));
    json_decref(j);
    free(s);
}

static void test_sensor_public(void **state)
{
    json_t *rec = json_loads("{\"name\":\"s\",\"location\":{\"latitude\":1.5,\"longitude\":2.5,"
                             "\"label\":\"L\"},\"darknet\":[\"198.18.0.0/15\"],"
                             "\"bucket_seconds\":60,\"last_bucket\":1000,\"updated\":1075,"
                             "\"sources\":{\"eth0\":{\"kernel_dropped\":5,\"interface_dropped\":1},"
                             "\"eth1\":{\"kernel_dropped\":7}}}",
                             0, NULL);
    json_t *o;

    (void)state;
    o = web_sensor_public("s", rec, 0, 1090LL * DS_NS_PER_SEC);
    assert_true(json_number_value(json_object_get(o, "lat")) == 1.5);
    assert_string_equal(json_string_value(json_object_get(o, "label")), "L");
    assert_true(json_real_value(json_object_get(o, "last_bucket_age")) == 30.0);
    assert_int_equal(json_integer_value(json_object_get(o, "kernel_dropped")), 12);
    assert_int_equal(json_integer_value(json_object_get(o, "interface_dropped")), 1);
    assert_true(json_is_true(json_object_get(o, "online"))); /* a bucket record lately */
    json_decref(o);
    o = web_sensor_public("s", rec, 0, 2000LL * DS_NS_PER_SEC);
    assert_true(json_is_false(json_object_get(o, "online")));
    json_decref(o);
    json_decref(rec);
}

static void test_auth(void **state)
{
    struct ds_config cfg;
    struct web_auth a;
    char err[256];
    const char *name = NULL;

    (void)state;
    ds_config_init(&cfg);
    uint8_t h[32];
    char hex[65], entry[128];
    web_sha256("viewer-token", 12, h);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    /* sha256 of "abc" is the FIPS 180-2 example */
    web_sha256("abc", 3, h);
    assert_int_equal(h[0], 0xba);
    assert_int_equal(h[31], 0xad);

    snprintf(entry, sizeof(entry), "wall:viewer:%s", hex);
    assert_int_equal(ds_config_set(&cfg, "web.tokens", entry, 0, err, sizeof(err)), 0);
    assert_int_not_equal(
        ds_config_set(&cfg, "web.tokens", "wall:root:00", DS_CONFIG_APPEND, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "web.tokens"));

    assert_int_equal(web_auth_init(&a, &cfg, err, sizeof(err)), 0);
    assert_false(a.required); /* 127.0.0.1:8080 is loopback */
    web_auth_fini(&a);
    assert_int_equal(web_auth_init(&a, &cfg, err, sizeof(err)), 0);
    const struct web_token *tok = web_auth_check(&a, "viewer-token", 12);
    assert_non_null(tok);
    assert_int_equal(tok->scope, WEB_SCOPE_VIEWER);
    name = tok->name;
    assert_string_equal(name, "wall");
    assert_null(web_auth_check(&a, "viewer-tokeN", 12));

    assert_int_equal(ds_config_set(&cfg, "web.listen", "0.0.0.0:8080", 0, err, sizeof(err)), 0);
    web_auth_fini(&a);
    assert_int_equal(web_auth_init(&a, &cfg, err, sizeof(err)), 0);
    assert_true(a.required);
    assert_int_equal(ds_config_set(&cfg, "web.listen", "[::1]:8080", 0, err, sizeof(err)), 0);
    web_auth_fini(&a);
    assert_int_equal(web_auth_init(&a, &cfg, err, sizeof(err)), 0);
    assert_false(a.required);
    assert_int_equal(ds_config_set(&cfg, "web.require_token", "true", 0, err, sizeof(err)), 0);
    web_auth_fini(&a);
    assert_int_equal(web_auth_init(&a, &cfg, err, sizeof(err)), 0);
    assert_true(a.required);
    web_auth_fini(&a);

    /* required with no tokens: refused, saying what to do */
    ds_config_fini(&cfg);
    ds_config_init(&cfg);
    assert_int_equal(ds_config_set(&cfg, "web.listen", "192.0.2.1:80", 0, err, sizeof(err)), 0);
    assert_int_equal(web_auth_init(&a, &cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "web.tokens"));
    web_auth_fini(&a);
    assert_int_not_equal(ds_config_set(&cfg, "web.listen", "8080", 0, err, sizeof(err)), 0);
    ds_config_fini(&cfg);
}

/* A client's message: only a subscription, with its filters; anything else says how to close. */
static void test_live_message(void **state)
{
    static const char sub[] = "{\"type\":\"subscribe\",\"filters\":{\"port\":[23]}}";
    struct web_filter f;
    char why[120];

    (void)state;
    assert_int_equal(web_live_message_parse(sub, strlen(sub), &f, why, sizeof(why)),
                     WEB_CLOSE_NORMAL);
    assert_int_equal(f.n_ports, 1);
    assert_int_equal(f.ports[0], 23);
    assert_int_equal(web_live_message_parse("{\"type\":\"subscribe\"}", 20, &f, why, sizeof(why)),
                     WEB_CLOSE_NORMAL);
    assert_true(web_filter_is_all(&f));
    assert_int_equal(web_live_message_parse("[1]", 3, &f, why, sizeof(why)), WEB_CLOSE_INVALID);
    assert_string_equal(why, "expected a JSON object");
    assert_int_equal(web_live_message_parse("{\"type\":\"hello\"}", 16, &f, why, sizeof(why)),
                     WEB_CLOSE_POLICY);
    assert_string_equal(why, "unknown message type (only \"subscribe\")");
    assert_int_equal(web_live_message_parse("{\"type\":\"subscribe\",\"filters\":{\"x\":1}}", 38,
                                            &f, why, sizeof(why)),
                     WEB_CLOSE_POLICY);
    assert_string_equal(why, "unknown filter 'x'");
}

/* REST parameters from a query string "a=1&b=2" (no decoding: the tests need none). */
static const char *args_of(void *ctx, const char *name, char *buf, int len)
{
    size_t n = strlen(name);

    for (const char *p = ctx; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, n) == 0) {
            snprintf(buf, (size_t)len, "%.*s", (int)strcspn(p + n, "&"), p + n);
            return buf;
        }
    }
    return NULL;
}

static int request(const char *path, const char *args, enum web_scope scope,
                   const struct web_token *tok, struct web_query *q, struct web_refusal *r)
{
    struct web_request rq = {
        .path = path,
        .arg = args_of,
        .arg_ctx = (void *)args,
        .scope = scope,
        .tok = tok,
        .bucket_seconds = 60,
        .mask = true,
        .now = 1700000000,
    };
    return web_request_parse(&rq, q, r);
}

static void test_request(void **state)
{
    const struct web_token partner = {.name = "partner:jpcert",
                                      .scope = WEB_SCOPE_PARTNER,
                                      .subject = "jpcert",
                                      .org = -1,
                                      .n_countries = 2,
                                      .countries = {"JP", "ID"}};
    const struct web_token soc = {.name = "soc-team", .scope = WEB_SCOPE_SOC, .org = -1};
    struct web_query q;
    struct web_refusal r;

    (void)state;
    /* defaults: the last hour up to now, one bucket per step, the top 10 */
    assert_int_equal(request("/api/v1/summary", "", WEB_SCOPE_VIEWER, NULL, &q, &r), 0);
    assert_int_equal(q.kind, WEB_QUERY_SUMMARY);
    assert_int_equal(q.to, 1700000001);
    assert_int_equal(q.from, 1700000001 - 3600);
    assert_int_equal(q.step, 60);
    assert_int_equal(q.top, 10);
    assert_true(q.mask);
    assert_false(q.audit);

    assert_int_equal(request("/api/v1/timeline",
                             "from=2023-11-14T00:00:00Z&to=1699966800&step=600&sensor=tokyo-1",
                             WEB_SCOPE_NONE, NULL, &q, &r),
                     0);
    assert_int_equal(q.from, 1699920000);
    assert_int_equal(q.to, 1699966800);
    assert_int_equal(q.step, 600);
    assert_string_equal(q.sensor, "tokyo-1");

    assert_int_equal(request("/api/v1/nope", "", WEB_SCOPE_ADMIN, NULL, &q, &r), -1);
    assert_int_equal(r.status, 404);
    assert_int_equal(request("/api/v1/hosts/not-an-address", "", WEB_SCOPE_ADMIN, NULL, &q, &r),
                     -1);
    assert_int_equal(r.status, 404);

    /* alerts: 401 asking for a token without one, 403 and audited for a viewer */
    assert_int_equal(request("/api/v1/alerts", "", WEB_SCOPE_NONE, NULL, &q, &r), -1);
    assert_int_equal(r.status, 401);
    assert_true(r.www_auth && r.audit);
    assert_string_equal(q.audit_token, "-");
    assert_int_equal(
        request("/api/v1/alerts", "kind=infected&since=1699990000", WEB_SCOPE_SOC, &soc, &q, &r),
        0);
    assert_int_equal(q.from, 1699990000);
    assert_string_equal(q.alert_kind, "infected");
    assert_string_equal(q.audit_token, "soc-team");
    assert_string_equal(q.endpoint, "/api/v1/alerts");

    /* a partner's feed: only its countries, whatever it asks for */
    assert_int_equal(request("/api/v1/feeds/scanners", "cc=JP,KR&format=csv", WEB_SCOPE_PARTNER,
                             &partner, &q, &r),
                     0);
    assert_int_equal(q.n_cc, 1);
    assert_string_equal(q.cc[0], "JP");
    assert_true(q.is_csv);
    assert_int_equal(
        request("/api/v1/feeds/scanners", "cc=KR", WEB_SCOPE_PARTNER, &partner, &q, &r), 0);
    assert_int_equal(q.n_cc, 1);
    assert_string_equal(q.cc[0], "--");
    assert_int_equal(request("/api/v1/summary", "", WEB_SCOPE_PARTNER, &partner, &q, &r), -1);
    assert_int_equal(r.status, 403);
    assert_false(r.audit);

    /* bounds: times the query thread can turn into nanoseconds, steps it can round to */
    assert_int_equal(request("/api/v1/summary", "to=9300000000", WEB_SCOPE_VIEWER, NULL, &q, &r),
                     -1);
    assert_string_equal(r.msg, "parameter 'to': expected RFC 3339 or Unix seconds");
    assert_int_equal(
        request("/api/v1/summary", "from=1969-12-31T23:00:00Z", WEB_SCOPE_VIEWER, NULL, &q, &r),
        -1);
    assert_int_equal(r.status, 400);
    assert_int_equal(
        request("/api/v1/timeline", "step=9223372036854775800", WEB_SCOPE_VIEWER, NULL, &q, &r),
        -1);
    assert_string_equal(r.msg, "parameter 'step': expected a positive multiple of 60 seconds");
    assert_int_equal(request("/api/v1/timeline", "from=0&step=60", WEB_SCOPE_VIEWER, NULL, &q, &r),
                     -1);
    assert_string_equal(r.msg, "parameter 'step': more than 1440 points; use a larger step");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_parse), cmocka_unit_test(test_ring),
        cmocka_unit_test(test_filters),     cmocka_unit_test(test_event_json),
        cmocka_unit_test(test_stats),       cmocka_unit_test(test_sensor_public),
        cmocka_unit_test(test_auth),        cmocka_unit_test(test_live_message),
        cmocka_unit_test(test_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
