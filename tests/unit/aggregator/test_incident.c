/* aggregator/incident.c: evidence merging, kinds, incident folding (once per bucket), when to
 * alert (thresholds, renotify), and the early warning's decisions on synthetic series. */
#include "aggregator/aggregator.h"

#include <errno.h>
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
    o.name = "Customer \"A\"\t"; /* written escaped */
    assert_int_equal(ds_cidr_parse("198.19.7.0/24", &internal), 0);
    o.internal = &internal;
    o.n_internal = 1;
    agg_thresholds_default(&o.th);
    return o;
}

static void merge(struct agg_evidence *ev, const char *sensor, const char *text)
{
    json_t *r = rec(text);
    assert_int_equal(agg_evidence_merge(ev, sensor, r), 0);
    json_decref(r);
}

/* The incident or alert JSON as written, parsed back (it must be valid JSON). */
static json_t *written(const struct agg_incident *inc, bool alert, int64_t bucket,
                       int64_t bucket_end, double share)
{
    struct ds_buf b;
    json_error_t e;
    json_t *j;

    ds_buf_init(&b, 1 << 20);
    if (alert)
        agg_alert_json((struct agg_incident *)inc, bucket, bucket_end, share, &b);
    else
        agg_incident_json(inc, &b);
    assert_false(ds_buf_failed(&b));
    j = json_loadb(b.p, b.len, 0, &e);
    if (!j)
        fail_msg("not JSON (%s): %s", e.text, b.p);
    ds_buf_fini(&b);
    return j;
}

static void test_evidence_and_kinds(void **state)
{
    struct agg_org o = org();
    struct agg_evidence ev, bs;

    (void)state;
    agg_evidence_init(&ev);
    merge(&ev, "s1",
          "{\"packets\":10,\"by_class\":{\"scan\":9,\"backscatter\":1},\"syn\":9,"
          "\"tool_matches\":{\"mirai\":9},\"dsts\":5,\"first_us\":100,\"last_us\":900,"
          "\"ports\":[[\"tcp\",23,9]],\"protos\":[\"tcp\"],\"prefixes\":[\"198.18.0.0/16\"],"
          "\"samples\":[{\"dst\":\"198.18.0.1\"}],\"cc\":\"JP\"}");
    assert_int_equal(agg_evidence_kinds(&ev, &o), 1u << AGG_KIND_INFECTED);
    merge(&ev, "s2",
          "{\"packets\":4,\"by_class\":{\"scan\":4},\"syn\":4,\"dsts\":7,"
          "\"first_us\":50,\"last_us\":600,\"ports\":[[\"tcp\",23,3],[\"tcp\",2323,1]],"
          "\"protos\":[\"tcp\"],\"prefixes\":[\"198.19.7.0/24\"]}");
    assert_int_equal(ev.packets, 14);
    assert_int_equal(ev.dsts, 7); /* the most, not a sum */
    assert_int_equal(ev.first_us, 50);
    assert_int_equal(ev.last_us, 900);
    assert_int_equal(ev.n_ports, 2);
    assert_int_equal(ev.ports[0].port, 23);
    assert_int_equal(ev.ports[0].packets, 12);
    assert_int_equal(ev.n_sensors, 2);
    assert_int_equal(ev.protos, 1u << DS_PROTO_TCP);
    assert_int_equal(ev.by_class[DS_CLASS_SCAN], 13);
    assert_int_equal(ev.tool_matches[DS_TOOL_MIRAI], 9);
    assert_string_equal(ev.cc, "JP");
    assert_int_equal(ev.n_samples, 1);
    /* both an external and the internal prefix: both kinds */
    assert_int_equal(agg_evidence_kinds(&ev, &o),
                     (1u << AGG_KIND_INFECTED) | (1u << AGG_KIND_INTERNAL));
    /* the same prefix from a second record is kept once */
    merge(&ev, "s2", "{\"packets\":1,\"prefixes\":[\"198.19.7.0/24\"]}");
    assert_int_equal(ev.n_prefixes, 2);
    assert_int_equal(ev.n_sensors, 2);
    /* backscatter only: nothing to infer */
    agg_evidence_init(&bs);
    merge(&bs, "s1",
          "{\"packets\":30,\"by_class\":{\"backscatter\":30},\"prefixes\":[\"198.18.0.0/16\"]}");
    assert_int_equal(agg_evidence_kinds(&bs, &o), 0);
    agg_evidence_fini(&ev);
    agg_evidence_fini(&bs);
}

static void test_fold_and_due(void **state)
{
    struct agg_org o = org();
    struct agg_evidence ev;
    struct agg_incident inc, back;
    json_t *j, *a;

    (void)state;
    agg_evidence_init(&ev);
    merge(&ev, "s1",
          "{\"packets\":3,\"by_class\":{\"scan\":3},\"syn\":3,\"tool_matches\":"
          "{\"zmap\":3},\"dsts\":3,\"first_us\":1000000,\"last_us\":2000000,"
          "\"ports\":[[\"tcp\",80,3]],\"prefixes\":[\"198.18.0.0/16\"],"
          "\"samples\":[{\"t_us\":1000000,\"dst\":\"198.18.0.9\",\"proto\":\"tcp\","
          "\"note\":\"a \\\"quoted\\\"\\nline\",\"flags\":[1,2]}],\"cc\":\"JP\",\"asn\":2497}");
    o.th.infected_min_packets = 5;
    assert_int_equal(agg_incident_start(&inc, &o, AGG_KIND_INFECTED, "45.67.89.10", 600), 0);
    assert_int_equal(agg_incident_fold(&inc, &ev, 600, 660), 0);
    j = written(&inc, false, 600, 660, 0);
    assert_string_equal(json_string_value(json_object_get(j, "id")),
                        "cust:infected:45.67.89.10:600");
    assert_string_equal(json_string_value(json_object_get(j, "org_name")), "Customer \"A\"\t");
    assert_int_equal(json_integer_value(json_object_get(j, "packets")), 3);
    json_t *ports = json_object_get(j, "ports");
    assert_int_equal(json_integer_value(json_object_get(ports, "tcp/80")), 3);
    assert_string_equal(json_string_value(json_object_get(j, "cc")), "JP");
    assert_int_equal(json_integer_value(json_object_get(j, "asn")), 2497);
    assert_string_equal(json_string_value(json_object_get(j, "first_seen")),
                        "1970-01-01T00:00:01.000000Z");
    /* the sample is kept as it was, strings escaped and nested values too */
    json_t *sample = json_array_get(json_object_get(j, "samples"), 0);
    assert_string_equal(json_string_value(json_object_get(sample, "note")), "a \"quoted\"\nline");
    assert_int_equal(json_array_size(json_object_get(sample, "flags")), 2);
    assert_false(agg_incident_due(&inc, &o.th, 660)); /* 3 < 5 */
    /* the same bucket again changes nothing */
    assert_int_equal(agg_incident_fold(&inc, &ev, 600, 660), 0);
    assert_int_equal(inc.packets, 3);
    /* it reads back as it was written */
    assert_int_equal(agg_incident_from_json(&back, j), 0);
    json_decref(j);
    agg_incident_fini(&inc);
    inc = back;
    assert_int_equal(inc.last_bucket, 600);
    assert_int_equal(inc.tool_matches[DS_TOOL_ZMAP], 3);
    assert_int_equal(inc.n_samples, 1);
    /* the next bucket adds up and crosses the threshold */
    assert_int_equal(agg_incident_fold(&inc, &ev, 660, 720), 0);
    assert_int_equal(inc.packets, 6);
    assert_int_equal(inc.buckets, 2);
    assert_int_equal(inc.n_samples, 2);
    assert_true(agg_incident_due(&inc, &o.th, 720));
    a = written(&inc, true, 660, 720, 0);
    assert_string_equal(json_string_value(json_object_get(a, "id")),
                        "cust:infected:45.67.89.10:600#1");
    assert_string_equal(json_string_value(json_object_get(a, "incident")),
                        "cust:infected:45.67.89.10:600");
    assert_string_equal(json_string_value(json_object_get(a, "tool")), "zmap");
    assert_string_equal(json_string_value(json_object_get(a, "severity")), "medium");
    assert_string_equal(json_string_value(json_object_get(a, "bucket")), "1970-01-01T00:11:00Z");
    assert_true(json_is_false(json_object_get(a, "renotify")));
    assert_null(json_object_get(a, "tool_matches"));
    assert_null(json_object_get(a, "last_alert_s"));
    json_decref(a);
    /* alerted: not again until renotify has passed */
    assert_int_equal(inc.alerts, 1);
    assert_false(agg_incident_due(&inc, &o.th, 780));
    assert_true(agg_incident_due(&inc, &o.th, 720 + o.th.renotify_seconds));
    j = written(&inc, false, 660, 720, 0);
    assert_int_equal(json_integer_value(json_object_get(j, "last_alert_s")), 720);
    assert_int_equal(json_integer_value(json_object_get(j, "alerts")), 1);
    /* a closed incident does not read back as open */
    json_object_set_new(j, "status", json_string("closed"));
    agg_incident_fini(&inc);
    assert_int_equal(agg_incident_from_json(&inc, j), 0);
    assert_false(inc.open);
    agg_incident_fini(&inc);
    json_decref(j);
    /* not an incident of these kinds */
    j = rec("{\"id\":\"_soc:early_warning:tcp/23:0\",\"kind\":\"early_warning\"}");
    assert_int_equal(agg_incident_from_json(&inc, j), -EINVAL);
    json_decref(j);
    agg_evidence_fini(&ev);
}

static void test_ddos_thresholds(void **state)
{
    struct agg_org o = org();
    struct agg_evidence ev;
    struct agg_incident inc;

    (void)state;
    /* 40 packets in one bucket spread over 50 s: duration below 60 s */
    agg_evidence_init(&ev);
    merge(&ev, "s1", "{\"packets\":40,\"first_us\":0,\"last_us\":50000000}");
    assert_int_equal(agg_incident_start(&inc, &o, AGG_KIND_DDOS, "45.67.90.5", 0), 0);
    assert_int_equal(agg_incident_fold(&inc, &ev, 0, 60), 0);
    assert_false(agg_incident_due(&inc, &o.th, 60));
    agg_evidence_fini(&ev);
    agg_evidence_init(&ev);
    merge(&ev, "s1", "{\"packets\":20,\"first_us\":60000000,\"last_us\":100000000}");
    assert_int_equal(agg_incident_fold(&inc, &ev, 60, 120), 0);
    /* 60 packets over 100 s, 40 in one bucket: over all three thresholds */
    assert_true(agg_incident_due(&inc, &o.th, 120));
    json_t *a = written(&inc, true, 60, 120, 1.0 / 65536);
    assert_string_equal(json_string_value(json_object_get(a, "severity")), "high");
    assert_null(json_object_get(a, "darknet_addresses")); /* victims have no darknet count */
    double dur = json_real_value(json_object_get(json_object_get(a, "attack"), "duration_s"));
    double pps = json_real_value(json_object_get(json_object_get(a, "attack"), "backscatter_pps"));
    double est =
        json_real_value(json_object_get(json_object_get(a, "attack"), "estimated_response_pps"));
    assert_true(dur > 99.9 && dur < 100.1); /* a real even when whole */
    assert_true(pps > 0.59 && pps < 0.61);
    assert_true(est > pps * 65535 && est < pps * 65537);
    json_decref(a);
    agg_incident_fini(&inc);
    agg_evidence_fini(&ev);
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
