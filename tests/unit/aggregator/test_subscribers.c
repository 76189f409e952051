/* aggregator/subscribers.c: a complete file with CSV ranges, lookups through its tries, and every
 * kind of bad file refused whole with an error naming the file and the key or line. */
#include "aggregator/aggregator.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[] = "/tmp/ds-subs-XXXXXX";

static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static const char GOOD[] =
    "{\"thresholds\": {\"infected_min_packets\": 3},\n"
    " \"organisations\": [\n"
    "  {\"id\": \"isp-x\", \"name\": \"ISP X\", \"livenet\": [\"203.0.0.0/16\"],\n"
    "   \"contacts\": [{\"email\": \"noc@isp-x.example\"}]},\n"
    "  {\"id\": \"city-a\", \"name\": \"City A\", \"livenet\": [\"203.0.113.0/24\", "
    "\"2001:db8:1::/48\"],\n"
    "   \"internal_darknet\": [\"198.51.100.0/28\"],\n"
    "   \"contacts\": [{\"email\": \"soc@city-a.example\", \"lang\": \"ja\"}],\n"
    "   \"thresholds\": {\"infected_min_darknet_addresses\": 4, \"renotify\": \"12h\"},\n"
    "   \"timezone\": \"Asia/Tokyo\",\n"
    "   \"token_sha256\": "
    "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"},\n"
    "  {\"id\": \"uni-b\", \"name\": \"University B\", \"contacts\": [{\"email\": "
    "\"cert@uni-b.example\", \"lang\": \"en\"}]}\n"
    " ],\n"
    " \"ranges_csv\": [\"bulk.csv\"],\n"
    " \"partners\": [{\"name\": \"id-cert\", \"countries\": [\"ID\"], \"token_sha256\": "
    "\"60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752\"}],\n"
    " \"research_scanners\": [\"192.0.2.0/24\"]}\n";

static const char BULK[] = "org_id,prefix,comment\n"
                           "# University B's ranges\n"
                           "uni-b,198.18.0.0/15,campus\n"
                           "uni-b, 2001:db8:2::/48 \n";

static unsigned orgs_of(const struct agg_subscribers *s, const char *ip, const char **ids)
{
    struct ds_addr a;
    struct agg_match m[8];
    unsigned n;

    assert_int_equal(ds_addr_parse(ip, &a), 0);
    n = agg_trie_match(s->livenet, &a, m, 8);
    for (unsigned i = 0; i < n && i < 8; i++)
        ids[i] = s->orgs[m[i].value].id;
    return n;
}

static void test_good(void **state)
{
    struct agg_subscribers *s;
    struct agg_thresholds d;
    char err[512] = "";
    const char *ids[8];

    (void)state;
    agg_thresholds_default(&d);
    write_file("bulk.csv", BULK);
    assert_int_equal(agg_subscribers_load(write_file("good.json", GOOD), &d, &s, err, sizeof(err)),
                     0);
    assert_int_equal(s->n_orgs, 3);
    assert_int_equal(s->n_livenet, 5);
    assert_int_equal(s->n_partners, 1);
    assert_string_equal(s->partners[0].countries[0], "ID");
    /* overlapping ranges: the customer first (longest prefix), then its ISP */
    assert_int_equal(orgs_of(s, "203.0.113.9", ids), 2);
    assert_string_equal(ids[0], "city-a");
    assert_string_equal(ids[1], "isp-x");
    assert_int_equal(orgs_of(s, "203.0.7.7", ids), 1);
    assert_string_equal(ids[0], "isp-x");
    assert_int_equal(orgs_of(s, "198.19.1.1", ids), 1);
    assert_string_equal(ids[0], "uni-b");
    assert_int_equal(orgs_of(s, "2001:db8:2::5", ids), 1);
    assert_int_equal(orgs_of(s, "8.8.8.8", ids), 0);
    /* thresholds: file-wide over the defaults, then per organisation */
    assert_int_equal(s->orgs[0].th.infected_min_packets, 3);
    assert_int_equal(s->orgs[0].th.ddos_min_packets, 25);
    assert_int_equal(s->orgs[1].th.infected_min_dsts, 4);
    assert_int_equal(s->orgs[1].th.infected_min_packets, 3);
    assert_int_equal(s->orgs[1].th.renotify_seconds, 12 * 3600);
    assert_string_equal(s->orgs[1].contacts[0].lang, "ja");
    assert_string_equal(s->orgs[0].contacts[0].lang, "en");
    assert_true(s->orgs[1].has_token);
    assert_int_equal(s->orgs[1].token_sha256[0], 0x9f);
    assert_int_equal(s->orgs[1].n_internal, 1);
    assert_int_equal(agg_subscribers_find(s, "uni-b"), 2);
    assert_int_equal(agg_subscribers_find(s, "nope"), -1);
    struct ds_addr a;
    struct agg_match m[2];
    assert_int_equal(ds_addr_parse("198.51.100.3", &a), 0);
    assert_int_equal(agg_trie_match(s->internal, &a, m, 2), 1);
    assert_int_equal(m[0].value, 1);
    assert_int_equal(ds_addr_parse("192.0.2.77", &a), 0);
    assert_int_equal(agg_trie_match(s->research, &a, m, 2), 1);
    agg_subscribers_free(s);
}

struct bad {
    const char *json;
    const char *csv; /* bulk.csv, or NULL */
    const char *want;
};

#define ORG(extra)                                                                                 \
    "{\"organisations\": [{\"id\": \"a\", \"name\": \"A\", \"livenet\": [\"203.0.113.0/24\"], "    \
    "\"contacts\": [{\"email\": \"x@a.example\"}]" extra "}]}"

static const struct bad BAD[] = {
    {"{\"organisations\": [\n  {\"id\": \"a\",,}]}", NULL, "bad.json:2:"},
    {"[]", NULL, "key '(top level)'"},
    {"{\"organisation\": []}", NULL, "key '(top level).organisation': unknown key"},
    {"{\"organisations\": {}}", NULL, "key 'organisations'"},
    {ORG(", \"colour\": \"red\""), NULL, "key 'organisations[0].colour': unknown key"},
    {"{\"organisations\": [{\"name\": \"A\", \"livenet\": [\"203.0.113.0/24\"], \"contacts\": "
     "[{\"email\": \"x@a.example\"}]}]}",
     NULL, "key 'organisations[0].id'"},
    {"{\"organisations\": [{\"id\": \"a b\", \"name\": \"A\"}]}", NULL,
     "key 'organisations[0].id'"},
    {"{\"organisations\": [{\"id\": \"a\", \"name\": \"\"}]}", NULL, "key 'organisations[0].name'"},
    {"{\"organisations\": [{\"id\": \"a\", \"name\": \"A\", \"livenet\": [\"203.0.113.1/24\"], "
     "\"contacts\": [{\"email\": \"x@a.example\"}]}]}",
     NULL, "key 'organisations[0].livenet[0]'"},
    {"{\"organisations\": [{\"id\": \"a\", \"name\": \"A\", \"livenet\": [\"10.0.0.0/33\"], "
     "\"contacts\": [{\"email\": \"x@a.example\"}]}]}",
     NULL, "key 'organisations[0].livenet[0]'"},
    {"{\"organisations\": [{\"id\": \"a\", \"name\": \"A\", \"livenet\": [], "
     "\"contacts\": [{\"email\": \"x@a.example\"}]}]}",
     NULL, "key 'organisations[0].livenet': expected at least one prefix"},
    {"{\"organisations\": [{\"id\": \"a\", \"name\": \"A\", \"livenet\": [\"203.0.113.0/24\"], "
     "\"contacts\": []}]}",
     NULL, "key 'organisations[0].contacts'"},
    {"{\"organisations\": [{\"id\": \"a\", \"name\": \"A\", \"livenet\": [\"203.0.113.0/24\"], "
     "\"contacts\": [{\"email\": \"not-an-address\"}]}]}",
     NULL, "key 'organisations[0].contacts[0].email'"},
    {"{\"organisations\": [{\"id\": \"a\", \"name\": \"A\", \"livenet\": [\"203.0.113.0/24\"], "
     "\"contacts\": [{\"email\": \"x@a.example\", \"lang\": \"fr\"}]}]}",
     NULL, "key 'organisations[0].contacts[0].lang'"},
    {ORG(", \"token_sha256\": \"abc\""), NULL, "key 'organisations[0].token_sha256'"},
    {ORG(", \"thresholds\": {\"infected_min_packets\": 0}"), NULL,
     "key 'organisations[0].thresholds.infected_min_packets'"},
    {ORG(", \"thresholds\": {\"renotify\": \"soon\"}"), NULL,
     "key 'organisations[0].thresholds.renotify'"},
    {ORG(", \"webhooks\": [{\"url\": \"ftp://x\", \"secret_file\": \"/s\"}]"), NULL,
     "key 'organisations[0].webhooks[0].url'"},
    {ORG(", \"webhooks\": [{\"url\": \"https://x.example/h\"}]"), NULL,
     "key 'organisations[0].webhooks[0].secret_file'"},
    {ORG(", \"thresholds\": {\"max\": 1}"), NULL,
     "key 'organisations[0].thresholds.max': unknown key"},
    {"{\"organisations\": [{\"id\": \"a\", \"name\": \"A\", \"livenet\": [\"203.0.113.0/24\"], "
     "\"contacts\": [{\"email\": \"x@a.example\"}]}, {\"id\": \"a\", \"name\": \"B\", "
     "\"livenet\": [\"198.51.100.0/24\"], \"contacts\": [{\"email\": \"y@b.example\"}]}]}",
     NULL, "key 'organisations[1].id': expected an id not used by another organisation"},
    {"{\"organisations\": [{\"id\": \"a\", \"name\": \"A\", \"contacts\": [{\"email\": "
     "\"x@a.example\"}]}], \"ranges_csv\": [\"bulk.csv\"]}",
     "a,198.51.100.0/24\nb,198.51.101.0/24\n", "bulk.csv:2: expected an organisation id"},
    {"{\"organisations\": [{\"id\": \"a\", \"name\": \"A\", \"contacts\": [{\"email\": "
     "\"x@a.example\"}]}], \"ranges_csv\": [\"bulk.csv\"]}",
     "a,198.51.100.0/24\n\na,198.51.100.1/24\n", "bulk.csv:3: expected an IPv4/IPv6 prefix"},
    {"{\"organisations\": [], \"ranges_csv\": [\"missing.csv\"]}", NULL,
     "key 'ranges_csv': cannot read"},
    {"{\"organisations\": [], \"partners\": [{\"name\": \"p\", \"countries\": [\"id\"], "
     "\"token_sha256\": \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"}]}",
     NULL, "key 'partners[0].countries[0]'"},
    {"{\"organisations\": [], \"partners\": [{\"name\": \"p\", \"countries\": [\"ID\"]}]}", NULL,
     "key 'partners[0].token_sha256'"},
    {"{\"organisations\": [], \"research_scanners\": [\"x\"]}", NULL, "key 'research_scanners[0]'"},
};

static void test_bad(void **state)
{
    struct agg_thresholds d;

    (void)state;
    agg_thresholds_default(&d);
    for (size_t i = 0; i < DS_ARRAY_LEN(BAD); i++) {
        struct agg_subscribers *s = (void *)1;
        char err[512] = "";
        char bulk[600];
        snprintf(bulk, sizeof(bulk), "%s/bulk.csv", dir);
        unlink(bulk);
        if (BAD[i].csv)
            write_file("bulk.csv", BAD[i].csv);
        const char *path = write_file("bad.json", BAD[i].json);
        int rc = agg_subscribers_load(path, &d, &s, err, sizeof(err));
        if (rc != -EINVAL || !strstr(err, BAD[i].want) || !strstr(err, "/ds-subs-")) {
            print_error("case %zu: rc %d, error \"%s\", want \"%s\"\n", i, rc, err, BAD[i].want);
            fail();
        }
        assert_null(s);
    }
}

static void test_many_ranges(void **state)
{
    /* thousands of ranges per organisation, through the CSV */
    char path[512];
    FILE *f;
    struct agg_subscribers *s;
    struct agg_thresholds d;
    char err[512] = "";
    const char *ids[8];

    (void)state;
    agg_thresholds_default(&d);
    snprintf(path, sizeof(path), "%s/bulk.csv", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    for (unsigned i = 0; i < 20000; i++)
        fprintf(f, "%s,%u.%u.%u.0/24\n", i % 2 ? "a" : "b", 11 + i / 65536, (i / 256) % 256,
                i % 256);
    fclose(f);
    assert_int_equal(
        agg_subscribers_load(
            write_file("many.json",
                       "{\"organisations\": [{\"id\": \"a\", \"name\": \"A\", \"contacts\": "
                       "[{\"email\": \"x@a.example\"}]}, {\"id\": \"b\", \"name\": \"B\", "
                       "\"contacts\": [{\"email\": \"y@b.example\"}]}], \"ranges_csv\": "
                       "[\"bulk.csv\"]}"),
            &d, &s, err, sizeof(err)),
        0);
    assert_int_equal(s->n_livenet, 20000);
    assert_int_equal(orgs_of(s, "11.0.1.77", ids), 1);
    assert_string_equal(ids[0], "a");
    assert_int_equal(orgs_of(s, "11.78.30.1", ids), 1);
    assert_string_equal(ids[0], "b");                   /* 19998 = 78*256+30: the last even line */
    assert_int_equal(orgs_of(s, "11.78.32.1", ids), 0); /* past the last line */
    agg_subscribers_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_many_ranges),
    };
    int rc;

    if (!mkdtemp(dir))
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
