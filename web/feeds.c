/* The scanner feed in CSV and STIX 2.1 (JSON is the query's own shape). Pure. STIX: one
 * `identity` for the telescope, and per scanning source an `ipv4-addr`/`ipv6-addr`, an
 * `indicator` with its address pattern, an `observed-data` with the counts and a `sighting`
 * tying them together; every id is derived from its content, so the same feed twice has the
 * same ids. */
#include "web/web_internal.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* "type--uuid" from SHA-256 of the seed: a version-4-shaped UUID that is stable for a seed. */
static void stix_id(char *out, size_t len, const char *type, const char *seed)
{
    uint8_t h[32];

    web_sha256(seed, strlen(seed), h);
    h[6] = (uint8_t)((h[6] & 0x0f) | 0x40);
    h[8] = (uint8_t)((h[8] & 0x3f) | 0x80);
    snprintf(out, len, "%s--%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             type, h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12],
             h[13], h[14], h[15]);
}

/* STIX timestamps: RFC 3339 in UTC with millisecond precision. */
static json_t *stix_time(const char *rfc3339)
{
    ds_time_ns t;
    char buf[40];

    if (!rfc3339 || ds_time_parse(rfc3339, &t) < 0)
        t = 0;
    ds_time_format_us(t, buf, sizeof(buf)); /* "…:SS.uuuuuuZ" → "…:SS.mmmZ" */
    size_t n = strlen(buf);
    if (n > 4) {
        buf[n - 4] = 'Z';
        buf[n - 3] = '\0';
    }
    return json_string(buf);
}

json_t *web_feed_stix(const json_t *feed, const char *producer, ds_time_ns now)
{
    json_t *objects = json_array(), *s;
    char ident[96], now_text[40], seed[256];
    size_t i;

    ds_time_format_us(now, now_text, sizeof(now_text));
    stix_id(ident, sizeof(ident), "identity", producer);
    json_array_append_new(objects, json_pack("{s:s,s:s,s:s,s:o,s:o,s:s,s:s}", "type", "identity",
                                             "spec_version", "2.1", "id", ident, "created",
                                             stix_time("2026-01-01T00:00:00Z"), "modified",
                                             stix_time("2026-01-01T00:00:00Z"), "name", producer,
                                             "identity_class", "system"));
    json_array_foreach((json_t *)feed, i, s) {
        const char *ip = json_string_value(json_object_get(s, "ip"));
        const char *first = json_string_value(json_object_get(s, "first_seen"));
        const char *last = json_string_value(json_object_get(s, "last_seen"));
        bool v6 = ip && strchr(ip, ':');
        char addr_id[96], ind_id[96], obs_id[96], sig_id[96], pattern[128];
        json_int_t packets = json_integer_value(json_object_get(s, "packets"));
        if (!ip)
            continue;
        if (packets < 1)
            packets = 1;
        if (packets > 999999999)
            packets = 999999999;
        snprintf(seed, sizeof(seed), "%s|%s", producer, ip);
        stix_id(addr_id, sizeof(addr_id), v6 ? "ipv6-addr" : "ipv4-addr", ip);
        stix_id(ind_id, sizeof(ind_id), "indicator", seed);
        snprintf(seed, sizeof(seed), "%s|%s|%s|%s", producer, ip, first ?: "", last ?: "");
        stix_id(obs_id, sizeof(obs_id), "observed-data", seed);
        stix_id(sig_id, sizeof(sig_id), "sighting", seed);
        snprintf(pattern, sizeof(pattern), "[%s:value = '%s']", v6 ? "ipv6-addr" : "ipv4-addr", ip);
        json_array_append_new(objects,
                              json_pack("{s:s,s:s,s:s}", "type", v6 ? "ipv6-addr" : "ipv4-addr",
                                        "id", addr_id, "value", ip));
        const char *tool = json_string_value(json_object_get(s, "tool"));
        char desc[160];
        snprintf(desc, sizeof(desc), "Seen scanning a darknet%s%s",
                 tool ? " with a fingerprint of " : "", tool ? tool : "");
        json_array_append_new(objects,
                              json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:s,s:[s],s:s,s:s,s:o}", "type",
                                        "indicator", "spec_version", "2.1", "id", ind_id,
                                        "created_by_ref", ident, "created", stix_time(now_text),
                                        "modified", stix_time(now_text), "name", ip,
                                        "indicator_types", "anomalous-activity", "pattern", pattern,
                                        "pattern_type", "stix", "valid_from", stix_time(first)));
        json_object_set_new(json_array_get(objects, json_array_size(objects) - 1), "description",
                            json_string(desc));
        json_array_append_new(objects,
                              json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:I,s:[s]}", "type",
                                        "observed-data", "spec_version", "2.1", "id", obs_id,
                                        "created_by_ref", ident, "created", stix_time(now_text),
                                        "modified", stix_time(now_text), "first_observed",
                                        stix_time(first), "last_observed", stix_time(last),
                                        "number_observed", packets, "object_refs", addr_id));
        json_array_append_new(
            objects, json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:I,s:s,s:[s],s:[s]}", "type",
                               "sighting", "spec_version", "2.1", "id", sig_id, "created_by_ref",
                               ident, "created", stix_time(now_text), "modified",
                               stix_time(now_text), "first_seen", stix_time(first), "last_seen",
                               stix_time(last), "count", packets, "sighting_of_ref", ind_id,
                               "observed_data_refs", obs_id, "where_sighted_refs", ident));
    }
    char bundle_id[96];
    snprintf(seed, sizeof(seed), "%s|%s|%zu", producer, now_text, json_array_size(objects));
    stix_id(bundle_id, sizeof(bundle_id), "bundle", seed);
    return json_pack("{s:s,s:s,s:o}", "type", "bundle", "id", bundle_id, "objects", objects);
}

char *web_feed_csv(const json_t *feed)
{
    struct ds_buf b;
    json_t *s;
    size_t i;
    char *out;

    ds_buf_init(&b, 64u << 20);
    ds_buf_adds(&b, "ip,cc,asn,packets,first_seen,last_seen,tool,ports,sensors\n");
    json_array_foreach((json_t *)feed, i, s) {
        const char *k;
        json_t *v;
        size_t j;
        int n = 0;
        ds_buf_addf(&b, "%s,%s,", json_string_value(json_object_get(s, "ip")) ?: "",
                    json_string_value(json_object_get(s, "cc")) ?: "");
        if (json_integer_value(json_object_get(s, "asn")))
            ds_buf_add_i64(&b, json_integer_value(json_object_get(s, "asn")));
        ds_buf_addf(&b, ",%lld,%s,%s,%s,",
                    (long long)json_integer_value(json_object_get(s, "packets")),
                    json_string_value(json_object_get(s, "first_seen")) ?: "",
                    json_string_value(json_object_get(s, "last_seen")) ?: "",
                    json_string_value(json_object_get(s, "tool")) ?: "");
        json_object_foreach(json_object_get(s, "ports"), k, v)
            ds_buf_addf(&b, "%s%s", n++ ? " " : "", k);
        ds_buf_addc(&b, ',');
        json_array_foreach(json_object_get(s, "sensors"), j, v)
            ds_buf_addf(&b, "%s%s", j ? " " : "", json_string_value(v) ?: "");
        ds_buf_addc(&b, '\n');
    }
    out = ds_buf_failed(&b) ? NULL : strdup(b.p ? b.p : "");
    ds_buf_fini(&b);
    return out;
}
