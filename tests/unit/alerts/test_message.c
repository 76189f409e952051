/* alerts/: templates (values, sections, lists, inverted sections, errors naming the line), the
 * digest's subject, body, CSV and Message-ID from the shipped templates. */
#include "alerts/alerts.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static char *render(const char *tpl, const char *data_json, int *rc)
{
    json_t *data = json_loads(data_json, 0, NULL);
    struct ds_buf b;
    char err[200] = "";
    char *out;

    assert_non_null(data);
    ds_buf_init(&b, 1 << 16);
    *rc = alert_template_render(tpl, data, &b, err, sizeof(err));
    out = strdup(*rc == 0 ? (b.p ? b.p : "") : err);
    ds_buf_fini(&b);
    json_decref(data);
    return out;
}

static void check(const char *tpl, const char *data, const char *want)
{
    int rc;
    char *got = render(tpl, data, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(got, want);
    free(got);
}

static void check_error(const char *tpl, const char *want)
{
    int rc;
    char *got = render(tpl, "{}", &rc);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(got, want));
    free(got);
}

static void test_template(void **state)
{
    (void)state;
    check("Hello {{name}}!", "{\"name\":\"City A\"}", "Hello City A!");
    check("{{n}} {{x}} {{t}} {{missing}}.", "{\"n\":42,\"x\":1.5,\"t\":true}", "42 1.50 yes .");
    check("{{a.b.c}}", "{\"a\":{\"b\":{\"c\":\"deep\"}}}", "deep");
    check("{{#l}}[{{v}}]{{/l}}", "{\"l\":[{\"v\":1},{\"v\":2},{\"v\":3}]}", "[1][2][3]");
    check("{{#l}}{{v}}{{/l}}-", "{\"l\":[]}", "-");
    check("{{^l}}none{{/l}}", "{\"l\":[]}", "none");
    check("{{#on}}yes{{/on}}{{#off}}no{{/off}}", "{\"on\":true,\"off\":false}", "yes");
    check("{{#o}}{{k}}{{/o}}", "{\"o\":{\"k\":\"inner\"}}", "inner");
    /* outer names are visible inside a list */
    check("{{#l}}{{org}}:{{v}} {{/l}}", "{\"org\":\"A\",\"l\":[{\"v\":1},{\"v\":2}]}", "A:1 A:2 ");
    /* nested lists */
    check("{{#a}}({{#b}}{{x}}{{/b}}){{/a}}", "{\"a\":[{\"b\":[{\"x\":1},{\"x\":2}]},{\"b\":[]}]}",
          "(12)()");
    check("{{ name }}", "{\"name\":\"spaces\"}", "spaces");
    check_error("line one\n{{#x}}never closed", "line 2");
    check_error("{{/x}}", "closes no open section");
    check_error("{{#a}}{{/b}}", "closes no open section");
    check_error("{{bad name!}}", "letters, digits");
    check_error("{{unterminated", "without '}}'");
    check_error("{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}x{{/a}}{{/a}}{{/a}}{{/a}}"
                "{{/a}}{{/a}}{{/a}}{{/a}}{{/a}}",
                "deeper than 8");
}

static json_t *alerts(void)
{
    json_t *a = json_loads(
        "[{\"id\":\"city-a:infected:45.67.89.10:1#1\",\"kind\":\"infected\",\"host\":\"45.67.89.10\","
        "\"packets\":60,\"darknet_addresses\":12,\"first_seen\":\"2026-01-01T00:00:05.000000Z\","
        "\"last_seen\":\"2026-01-01T00:02:35.000000Z\",\"ports\":{\"tcp/23\":58,\"tcp/2323\":2},"
        "\"tool\":\"mirai\",\"severity\":\"medium\",\"cc\":\"JP\",\"asn\":2516},"
        "{\"id\":\"city-a:ddos_victim:45.67.89.5:1#1\",\"kind\":\"ddos_victim\",\"host\":"
        "\"45.67.89.5\",\"packets\":100,\"first_seen\":\"2026-01-01T00:03:00.000000Z\","
        "\"last_seen\":\"2026-01-01T00:06:00.000000Z\",\"ports\":{},\"tool\":null,\"severity\":"
        "\"high\",\"attack\":{\"estimated_response_pps\":36408.9}}]",
        0, NULL);
    assert_non_null(a);
    return a;
}

static void test_mail(void **state)
{
    struct alert_templates t;
    struct alert_mail m, m2;
    char err[256];
    json_t *org = json_loads("{\"id\":\"city-a\",\"name\":\"City A\",\"lang\":\"en\","
                             "\"contacts\":[\"soc@city-a.example\",\"noc@city-a.example\"]}",
                             0, NULL);
    json_t *a = alerts();

    (void)state;
    assert_int_equal(alert_templates_load(&t, DS_TEMPLATES_DIR, err, sizeof(err)), 0);
    assert_int_equal(alert_mail_build(&t, org, a, "ds@example.org", 1767225600LL * DS_NS_PER_SEC,
                                      &m, err, sizeof(err)),
                     0);
    assert_string_equal(m.subject, "[darkscope] City A: 1 infected host, 1 DDoS victim");
    assert_int_equal(m.n_to, 2);
    assert_string_equal(m.date, "Thu, 01 Jan 2026 00:00:00 +0000");
    assert_non_null(strstr(m.body, "45.67.89.10"));
    assert_non_null(strstr(m.body, "tcp/23 (58)"));
    assert_non_null(strstr(m.body, "36409 packets/s"));
    assert_non_null(strstr(m.body, "2026-01-01 00:00:05 UTC"));
    assert_null(strstr(m.body, "{{"));
    assert_non_null(strstr(m.csv, "timestamp,protocol,src_ip,"));
    assert_non_null(strstr(m.csv, "2026-01-01 00:02:35Z,tcp,45.67.89.10,,2516,JP,23,infected,mirai,"
                                  "darknet,60,"));
    assert_string_equal(m.csv_name, "darkscope-city-a-20260101-0000.csv");
    /* the same alerts in another order, at another time: the same Message-ID */
    json_t *b = json_array();
    json_array_append(b, json_array_get(a, 1));
    json_array_append(b, json_array_get(a, 0));
    assert_int_equal(alert_mail_build(&t, org, b, "ds@example.org", 1767229200LL * DS_NS_PER_SEC,
                                      &m2, err, sizeof(err)),
                     0);
    assert_string_equal(m.message_id, m2.message_id);
    alert_mail_free(&m2);
    /* Japanese: the zone defaults to Asia/Tokyo */
    json_object_set_new(org, "lang", json_string("ja"));
    assert_int_equal(alert_mail_build(&t, org, a, "ds@example.org", 1767225600LL * DS_NS_PER_SEC,
                                      &m2, err, sizeof(err)),
                     0);
    assert_non_null(strstr(m2.subject, "DDoS 被害 1 件"));
    assert_non_null(strstr(m2.body, "2026-01-01 09:00:05 JST"));
    alert_mail_free(&m2);
    alert_mail_free(&m);
    json_decref(b);
    json_decref(a);
    json_decref(org);
    alert_templates_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_template),
        cmocka_unit_test(test_mail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
