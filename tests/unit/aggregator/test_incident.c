/* aggregator/incident.c: evidence merging, kinds, incident folding (once per bucket), when to
 * alert (thresholds, renotify), and the early warning's decisions on synthetic series. */
#include "aggregator/aggregator.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static json_t *rec(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static struct agg_org org(void)
{
    static struct ds_cidr internal;
    struct agg_org o;

    memset(&o, 0, sizeof(o));
    o.id = "cust";
    o.name = "Customer";
    assert_int_equal(ds_cidr_parse("198.19.7.0/24", &internal), 0);
    o.internal = &internal;
    o.n_internal = 1;
    agg_thresholds_default(&o.th);
    return o;
}

static void test_evidence_and_kinds(void **state)
{
    struct agg_org o = org();
    json_t *ev = json_object();
    json_t *r1 =
        rec("{\"packets\":10,\"by_class\":{\"scan\":9,\"backscatter\":1},\"syn\":9,"
            "\"tool_matches\":{\"mirai\":9},\"dsts\":5,\"first_us\":100,\"last_us\":900,"
            "\"ports\":[[\"tcp\",23,9]],\"protos\":[\"tcp\"],\"prefixes\":[\"198.18.0.0/16\"],"
            "\"samples\":[{\"dst\":\"198.18.0.1\"}],\"cc\":\"JP\"}");
    json_t *r2 = rec("{\"packets\":4,\"by_class\":{\"scan\":4},\"syn\":4,\"dsts\":7,"
                     "\"first_us\":50,\"last_us\":600,\"ports\":[[\"tcp\",23,3],[\"tcp\",2323,1]],"
                     "\"protos\":[\"tcp\"],\"prefixes\":[\"198.19.7.0/24\"]}");

    (void)state;
    agg_evidence_merge(ev, "s1", r1);
    assert_int_equal(agg_evidence_kinds(ev, &o), 1u << AGG_KIND_INFECTED);
    agg_evidence_merge(ev, "s2", r2);
    assert_int_equal(json_integer_value(json_object_get(ev, "packets")), 14);
    assert_int_equal(json_integer_value(json_object_get(ev, "dsts")), 7); /* the most, not a sum */
    assert_int_equal(json_integer_value(json_object_get(ev, "first_us")), 50);
    assert_int_equal(json_integer_value(json_object_get(ev, "last_us")), 900);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ev, "ports"), "tcp/23")),
                     12);
    assert_int_equal(json_array_size(json_object_get(ev, "sensors")), 2);
    assert_int_equal(json_array_size(json_object_get(ev, "protos")), 1);
    /* both an external and the internal prefix: both kinds */
    assert_int_equal(agg_evidence_kinds(ev, &o),
                     (1u << AGG_KIND_INFECTED) | (1u << AGG_KIND_INTERNAL));
    /* backscatter only: nothing to infer */
    json_t *bs = json_object();
    json_t *r3 =
        rec("{\"packets\":30,\"by_class\":{\"backscatter\":30},\"prefixes\":[\"198.18.0.0/16\"]}");
    agg_evidence_merge(bs, "s1", r3);
    assert_int_equal(agg_evidence_kinds(bs, &o), 0);
    json_decref(r1);
    json_decref(r2);
    json_decref(r3);
    json_decref(ev);
    json_decref(bs);
}

static void test_fold_and_due(void **state)
{
    struct agg_org o = org();
    json_t *ev = json_object(), *inc, *inc2, *a;
    json_t *r = rec("{\"packets\":3,\"by_class\":{\"scan\":3},\"syn\":3,\"tool_matches\":"
                    "{\"zmap\":3},\"dsts\":3,\"first_us\":1000000,\"last_us\":2000000,"
                    "\"ports\":[[\"tcp\",80,3]],\"prefixes\":[\"198.18.0.0/16\"]}");

    (void)state;
    agg_evidence_merge(ev, "s1", r);
    o.th.infected_min_packets = 5;
    inc = agg_incident_fold(NULL, ev, &o, AGG_KIND_INFECTED, "45.67.89.10", 600, 660);
    assert_string_equal(json_string_value(json_object_get(inc, "id")),
                        "cust:infected:45.67.89.10:600");
    assert_int_equal(json_integer_value(json_object_get(inc, "packets")), 3);
    assert_false(agg_incident_due(inc, &o.th, AGG_KIND_INFECTED, 660, 0)); /* 3 < 5 */
    /* the same bucket again changes nothing */
    inc2 = agg_incident_fold(inc, ev, &o, AGG_KIND_INFECTED, "45.67.89.10", 600, 660);
    assert_int_equal(json_integer_value(json_object_get(inc2, "packets")), 3);
    json_decref(inc2);
    /* the next bucket adds up and crosses the threshold */
    inc2 = agg_incident_fold(inc, ev, &o, AGG_KIND_INFECTED, "45.67.89.10", 660, 720);
    json_decref(inc);
    inc = inc2;
    assert_int_equal(json_integer_value(json_object_get(inc, "packets")), 6);
    assert_int_equal(json_integer_value(json_object_get(inc, "buckets")), 2);
    assert_string_equal(json_string_value(json_object_get(inc, "tool")), "zmap");
    assert_true(agg_incident_due(inc, &o.th, AGG_KIND_INFECTED, 720, 0));
    a = agg_alert_from(inc, 660, 720, 0);
    assert_string_equal(json_string_value(json_object_get(a, "id")),
                        "cust:infected:45.67.89.10:600#1");
    assert_true(json_is_false(json_object_get(a, "renotify")));
    assert_null(json_object_get(a, "tool_matches"));
    json_decref(a);
    /* alerted: not again until renotify has passed */
    assert_false(agg_incident_due(inc, &o.th, AGG_KIND_INFECTED, 780, 0));
    assert_true(agg_incident_due(inc, &o.th, AGG_KIND_INFECTED, 720 + o.th.renotify_seconds, 0));
    /* a closed incident is not continued: a new one starts */
    json_object_set_new(inc, "status", json_string("closed"));
    inc2 = agg_incident_fold(inc, ev, &o, AGG_KIND_INFECTED, "45.67.89.10", 9000, 9060);
    assert_string_equal(json_string_value(json_object_get(inc2, "id")),
                        "cust:infected:45.67.89.10:9000");
    json_decref(inc2);
    json_decref(inc);
    json_decref(ev);
    json_decref(r);
}

static void test_ddos_thresholds(void **state)
{
    struct agg_org o = org();
    json_t *ev = json_object(), *inc;
    /* 40 packets in one bucket spread over 50 s: duration below 60 s */
    json_t *r = rec("{\"packets\":40,\"first_us\":0,\"last_us\":50000000}");

    (void)state;
    agg_evidence_merge(ev, "s1", r);
    inc = agg_incident_fold(NULL, ev, &o, AGG_KIND_DDOS, "45.67.90.5", 0, 60);
    assert_false(agg_incident_due(inc, &o.th, AGG_KIND_DDOS, 60, 1.0 / 65536));
    json_decref(ev);
    json_decref(r);
    ev = json_object();
    r = rec("{\"packets\":20,\"first_us\":60000000,\"last_us\":100000000}");
    agg_evidence_merge(ev, "s1", r);
    json_t *inc2 = agg_incident_fold(inc, ev, &o, AGG_KIND_DDOS, "45.67.90.5", 60, 120);
    /* 60 packets over 100 s, 40 in one bucket: over all three thresholds */
    assert_true(agg_incident_due(inc2, &o.th, AGG_KIND_DDOS, 120, 1.0 / 65536));
    json_t *a = agg_alert_from(inc2, 60, 120, 1.0 / 65536);
    double pps = json_real_value(json_object_get(json_object_get(a, "attack"), "backscatter_pps"));
    double est =
        json_real_value(json_object_get(json_object_get(a, "attack"), "estimated_response_pps"));
    assert_true(pps > 0.59 && pps < 0.61);
    assert_true(est > pps * 65535 && est < pps * 65537);
    json_decref(a);
    json_decref(inc2);
    json_decref(inc);
    json_decref(ev);
    json_decref(r);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static double noise(double mean)
{
    /* a rough Poisson: mean ± 3 sqrt(mean), uniform */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    double u = (double)(rng % 10000) / 10000.0 * 2 - 1;
    double sd = 1;
    for (double s = 1; s * s <= mean; s += 1)
        sd = s;
    return mean + u * 3 * sd;
}

static void test_early_warning(void **state)
{
    struct agg_ew_params p = {0.1, 3, 6, 20, 10};
    struct agg_ew s = {0, 0, 0};
    double ratio;
    char buf[64];

    (void)state;
    /* warm-up: even a huge first value does not fire */
    assert_false(agg_ew_step(&s, 500, &p, &ratio));
    s = (struct agg_ew){0, 0, 0};
    for (int i = 0; i < 2000; i++)
        assert_false(agg_ew_step(&s, noise(100), &p, &ratio));
    assert_true(s.mean > 90 && s.mean < 110);
    assert_true(agg_ew_step(&s, 320, &p, &ratio)); /* threefold */
    assert_true(ratio > 2.9);
    /* the surge was learnt only up to the alarm level */
    assert_true(s.mean < 130);
    agg_ew_format(&s, buf, sizeof(buf));
    struct agg_ew t;
    agg_ew_parse(buf, &t);
    assert_true(t.n == s.n && t.mean > s.mean - 0.01 && t.mean < s.mean + 0.01);
    /* small ports: 2 → 15 sources is no outbreak (min_sources) */
    s = (struct agg_ew){0, 0, 0};
    for (int i = 0; i < 50; i++)
        assert_false(agg_ew_step(&s, 2, &p, &ratio));
    assert_false(agg_ew_step(&s, 15, &p, &ratio));
    /* a new port (zero baseline) with many sources fires once warmed up */
    s = (struct agg_ew){0, 0, 50};
    assert_true(agg_ew_step(&s, 40, &p, &ratio));
    agg_ew_parse("garbage", &t);
    assert_int_equal(t.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evidence_and_kinds),
        cmocka_unit_test(test_fold_and_due),
        cmocka_unit_test(test_ddos_thresholds),
        cmocka_unit_test(test_early_warning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
