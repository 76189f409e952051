/* Per-source and per-victim records as stored in Redis (docs/redis-schema.md): compact JSON
 * written straight into a bounded buffer — no allocation per field, times as integer
 * microseconds — because a bucket may hold millions of them. Pure: no I/O. */
#include "redis/rds_internal.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define KEY(b, s) ds_buf_add((b), (s), sizeof(s) - 1)

static void add_us(struct ds_buf *b, ds_time_ns t)
{
    ds_buf_add_i64(b, t >= 0 ? t / 1000 : -((-t + 999) / 1000));
}

/* Degrees with 4 decimals (about 10 m), without printf. */
static void add_deg(struct ds_buf *b, double v)
{
    long long q;

    if (!isfinite(v))
        v = 0;
    q = llround(v * 10000.0);
    if (q < 0) {
        ds_buf_addc(b, '-');
        q = -q;
    }
    ds_buf_add_u64(b, (uint64_t)(q / 10000));
    ds_buf_addc(b, '.');
    char frac[4] = {(char)('0' + q / 1000 % 10), (char)('0' + q / 100 % 10),
                    (char)('0' + q / 10 % 10), (char)('0' + q % 10)};
    ds_buf_add(b, frac, 4);
}

static void add_qstr(struct ds_buf *b, const char *s)
{
    /* only names, addresses, prefixes and country codes: nothing that needs escaping */
    ds_buf_addc(b, '"');
    ds_buf_adds(b, s);
    ds_buf_addc(b, '"');
}

static void add_counts(struct ds_buf *b, const char *const *names, const uint64_t *v, int n)
{
    bool first = true;

    ds_buf_addc(b, '{');
    for (int i = 0; i < n; i++) {
        if (!v[i])
            continue;
        if (!first)
            ds_buf_addc(b, ',');
        first = false;
        add_qstr(b, names[i]);
        ds_buf_addc(b, ':');
        ds_buf_add_u64(b, v[i]);
    }
    ds_buf_addc(b, '}');
}

static void add_protos(struct ds_buf *b, uint8_t mask)
{
    bool first = true;

    ds_buf_addc(b, '[');
    for (int i = 0; i < DS_PROTO_N; i++) {
        if (!(mask & (1u << i)))
            continue;
        if (!first)
            ds_buf_addc(b, ',');
        first = false;
        add_qstr(b, ds_proto_names[i]);
    }
    ds_buf_addc(b, ']');
}

static void add_sample(struct ds_buf *b, const struct rds_sample *s)
{
    char dst[DS_ADDR_STRLEN];

    KEY(b, "{\"t_us\":");
    add_us(b, s->ts);
    KEY(b, ",\"dst\":");
    add_qstr(b, ds_addr_format(&s->dst, dst, sizeof(dst)));
    KEY(b, ",\"proto\":");
    add_qstr(b, ds_proto_names[s->proto]);
    KEY(b, ",\"class\":");
    add_qstr(b, ds_class_names[s->cls]);
    KEY(b, ",\"len\":");
    ds_buf_add_u64(b, s->ip_len);
    KEY(b, ",\"ttl\":");
    ds_buf_add_u64(b, s->ttl);
    if (s->proto == DS_PROTO_TCP || s->proto == DS_PROTO_UDP) {
        KEY(b, ",\"sport\":");
        ds_buf_add_u64(b, s->sport);
        KEY(b, ",\"dport\":");
        ds_buf_add_u64(b, s->dport);
    }
    if (s->proto == DS_PROTO_TCP) {
        KEY(b, ",\"flags\":");
        ds_buf_add_u64(b, s->tcp_flags);
        KEY(b, ",\"win\":");
        ds_buf_add_u64(b, s->win);
    }
    if (s->proto == DS_PROTO_ICMP) {
        KEY(b, ",\"icmp_type\":");
        ds_buf_add_u64(b, s->icmp_type);
        KEY(b, ",\"icmp_code\":");
        ds_buf_add_u64(b, s->icmp_code);
    }
    if (s->dst.family == 4) {
        KEY(b, ",\"ipid\":");
        ds_buf_add_u64(b, s->ipid);
    }
    ds_buf_addc(b, '}');
}

void rds_record_source(struct ds_buf *b, const struct rds_source *s, const char *const *prefixes,
                       unsigned n_prefixes)
{
    int tool = ds_tool_attribute(s->pure_syns, s->tool_matches);
    bool first;

    KEY(b, "{\"packets\":");
    ds_buf_add_u64(b, s->packets);
    KEY(b, ",\"bytes\":");
    ds_buf_add_u64(b, s->bytes);
    KEY(b, ",\"first_us\":");
    add_us(b, s->first);
    KEY(b, ",\"last_us\":");
    add_us(b, s->last);
    KEY(b, ",\"by_class\":");
    add_counts(b, ds_class_names, s->by_class, DS_CLASS_N);
    KEY(b, ",\"syn\":");
    ds_buf_add_u64(b, s->pure_syns);
    KEY(b, ",\"tool_matches\":");
    add_counts(b, ds_tool_names, s->tool_matches, DS_TOOL_N);
    KEY(b, ",\"tool\":");
    if (tool >= 0)
        add_qstr(b, ds_tool_names[tool]);
    else
        KEY(b, "null");
    KEY(b, ",\"dsts\":");
    ds_buf_add_u64(b, s->dsts);
    KEY(b, ",\"dsts_estimated\":");
    if (s->dsts_estimated)
        KEY(b, "true");
    else
        KEY(b, "false");
    KEY(b, ",\"ports\":[");
    for (unsigned i = 0; i < s->n_ports; i++) {
        if (i)
            ds_buf_addc(b, ',');
        ds_buf_addc(b, '[');
        add_qstr(b, ds_proto_names[s->ports[i].proto]);
        ds_buf_addc(b, ',');
        ds_buf_add_u64(b, s->ports[i].port);
        ds_buf_addc(b, ',');
        ds_buf_add_u64(b, s->ports[i].packets);
        ds_buf_addc(b, ']');
    }
    KEY(b, "],\"ports_distinct\":");
    ds_buf_add_u64(b, s->ports_distinct);
    KEY(b, ",\"prefixes\":[");
    first = true;
    for (unsigned i = 0; i < n_prefixes && i < RDS_SOURCE_PREFIXES; i++) {
        if (!(s->prefixes & (1ULL << i)))
            continue;
        if (!first)
            ds_buf_addc(b, ',');
        first = false;
        add_qstr(b, prefixes[i]);
    }
    KEY(b, "],\"protos\":");
    add_protos(b, s->protos);
    KEY(b, ",\"cc\":");
    if (s->has_geo && s->geo.cc[0])
        add_qstr(b, s->geo.cc);
    else
        KEY(b, "null");
    KEY(b, ",\"asn\":");
    if (s->has_geo && s->geo.asn)
        ds_buf_add_u64(b, s->geo.asn);
    else
        KEY(b, "null");
    if (s->has_geo && s->geo.has_location) {
        KEY(b, ",\"lat\":");
        add_deg(b, s->geo.lat);
        KEY(b, ",\"lon\":");
        add_deg(b, s->geo.lon);
    }
    KEY(b, ",\"samples\":[");
    for (unsigned i = 0; i < s->n_samples; i++) {
        if (i)
            ds_buf_addc(b, ',');
        add_sample(b, &s->samples[i]);
    }
    KEY(b, "]}");
}

void rds_record_victim(struct ds_buf *b, const struct rds_victim *v)
{
    KEY(b, "{\"packets\":");
    ds_buf_add_u64(b, v->packets);
    KEY(b, ",\"bytes\":");
    ds_buf_add_u64(b, v->bytes);
    KEY(b, ",\"first_us\":");
    add_us(b, v->first);
    KEY(b, ",\"last_us\":");
    add_us(b, v->last);
    KEY(b, ",\"protos\":");
    add_protos(b, v->protos);
    ds_buf_addc(b, '}');
}

unsigned rds_shard_of_hash(uint64_t h)
{
    /* high bits: independent of the low bits hash tables index with */
    return (unsigned)(h >> 40) % RDS_SHARDS;
}

unsigned rds_shard(const struct ds_addr *a)
{
    return rds_shard_of_hash(ds_addr_hash(a));
}

void rds_index_entry(struct ds_buf *b, const struct ds_addr *a, size_t line_len)
{
    uint8_t e[1 + 16 + 4];
    size_t alen = a->family == 4 ? 4 : 16;
    uint32_t len = line_len > UINT32_MAX ? UINT32_MAX : (uint32_t)line_len;

    e[0] = a->family == 4 ? 4 : 6;
    memcpy(e + 1, a->b, alen); /* IPv4 in b[0..3], as ds_addr_parse leaves it */
    for (int i = 0; i < 4; i++)
        e[1 + alen + i] = (uint8_t)(len >> (8 * i));
    ds_buf_add(b, e, 1 + alen + 4);
}

int rds_index_next(const char **p, const char *end, struct ds_addr *a, uint32_t *line_len)
{
    const uint8_t *q = (const uint8_t *)*p;
    size_t left = (size_t)(end - *p), alen;

    if (left == 0)
        return 0;
    if (q[0] != 4 && q[0] != 6)
        return -EINVAL;
    alen = q[0] == 4 ? 4 : 16;
    if (left < 1 + alen + 4)
        return -EINVAL;
    memset(a, 0, sizeof(*a));
    a->family = q[0];
    memcpy(a->b, q + 1, alen);
    q += 1 + alen;
    *line_len = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
    *p = (const char *)(q + 4);
    return 1;
}
