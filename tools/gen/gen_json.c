/*
 * gen_json.c - writes the ground truth as JSON with Jansson.
 *
 * Schema (version 1), every key always present:
 *   generator "darkscope-gen", version 1, seed, start (RFC 3339, as given, in UTC),
 *   end (the second after the last frame's second), darknet [CIDR...], bucket_seconds,
 *   frames (written), packets and bytes (counted packets; bytes = IP total lengths),
 *   by_class {scan, backscatter, udp_probe, icmp_probe, other}, by_proto {tcp, udp, icmp, other},
 *   by_tool {mirai, zmap, masscan, nmap} (per packet, rules independent),
 *   ignored {total, non_ip, not_darknet}, malformed {total, ip_truncated},
 *   truncated {tcp, udp, icmp}, sources_distinct (source addresses of counted packets),
 *   buckets [{start, packets, bytes, by_class}] (floor(ts / bucket_seconds) * bucket_seconds UTC;
 *     only buckets holding counted packets),
 *   ports [{proto, port, packets, sources}] (readable destination ports, first fragments only),
 *   victims [{ip, packets}] (backscatter victims),
 *   sources [{ip, packets, bytes, by_class, tool, first, last, ports}] ([] with
 *     --no-source-truth; tool per docs/classification.md attribution or null; first/last with
 *     microseconds; ports = distinct readable destination ports, ascending).
 * Orders: ports by packets descending then protocol and port; victims and sources by packets
 * descending then address (IPv4 before IPv6, numerically).
 *
 * The document can hold millions of sources, far too many to build as one Jansson tree, so the
 * top-level object is streamed: each member's value (and each element of the long arrays) is a
 * small Jansson value dumped with json_dumpf() and released at once.  Only the braces, commas and
 * the fixed ASCII member names are written by hand.  The file is written under a temporary name
 * and renamed into place, so a failed run never leaves a half-written truth behind.
 */
#include "gen_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct jw {
    FILE *f;
    bool first_member, first_item;
    int failed;
};

static void jw_value(struct jw *w, json_t *v)
{
    if (v == NULL || json_dumpf(v, w->f, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
        w->failed = -EIO;
    json_decref(v);
}

/* Writes  "key": value  and takes ownership of value. */
static void jw_member(struct jw *w, const char *key, json_t *v)
{
    fprintf(w->f, "%s\n  \"%s\": ", w->first_member ? "" : ",", key);
    w->first_member = false;
    jw_value(w, v);
}

static void jw_array_begin(struct jw *w, const char *key)
{
    fprintf(w->f, "%s\n  \"%s\": [", w->first_member ? "" : ",", key);
    w->first_member = false;
    w->first_item = true;
}

static void jw_item(struct jw *w, json_t *v)
{
    fputs(w->first_item ? "\n    " : ",\n    ", w->f);
    w->first_item = false;
    jw_value(w, v);
}

static void jw_array_end(struct jw *w)
{
    fputs(w->first_item ? "]" : "\n  ]", w->f);
}

static json_t *counts_object(const char *const *names, const uint64_t *counts, size_t n)
{
    json_t *o = json_object();

    for (size_t i = 0; i < n && o != NULL; i++)
        json_object_set_new(o, names[i], json_integer((json_int_t)counts[i]));
    return o;
}

static json_t *class_object32(const uint32_t *counts)
{
    uint64_t c[GEN_CLASS_COUNT];

    for (int i = 0; i < GEN_CLASS_COUNT; i++)
        c[i] = counts[i];
    return counts_object(gen_class_names, c, GEN_CLASS_COUNT);
}

static void write_summary(struct jw *w, struct gen_truth *t)
{
    static const char *const ign[] = {"total", "non_ip", "not_darknet"};
    static const char *const mal[] = {"total", "ip_truncated"};
    static const char *const trunc[] = {"tcp", "udp", "icmp"};
    const struct gen_config *cfg = t->cfg;
    uint64_t ignored[3] = {t->ignored_non_ip + t->ignored_not_darknet, t->ignored_non_ip,
                           t->ignored_not_darknet};
    uint64_t malformed[2] = {t->malformed_ip_truncated, t->malformed_ip_truncated};
    int64_t end_us = (t->last_us / 1000000 + 1) * 1000000;
    json_t *darknet = json_array();
    char buf[64];

    jw_member(w, "generator", json_string("darkscope-gen"));
    jw_member(w, "version", json_integer(1));
    jw_member(w, "seed", json_integer((json_int_t)cfg->seed));
    jw_member(w, "start",
              json_string(
                  gen_time_format(cfg->start_us, cfg->start_us % 1000000 != 0, buf, sizeof(buf))));
    jw_member(w, "end", json_string(gen_time_format(end_us, false, buf, sizeof(buf))));
    for (size_t i = 0; i < cfg->darknet.n && darknet != NULL; i++)
        json_array_append_new(
            darknet, json_string(gen_prefix_format(&cfg->darknet.all[i], buf, sizeof(buf))));
    jw_member(w, "darknet", darknet);
    jw_member(w, "bucket_seconds", json_integer(cfg->bucket_seconds));
    jw_member(w, "frames", json_integer((json_int_t)t->frames));
    jw_member(w, "packets", json_integer((json_int_t)t->packets));
    jw_member(w, "bytes", json_integer((json_int_t)t->bytes));
    jw_member(w, "by_class", counts_object(gen_class_names, t->by_class, GEN_CLASS_COUNT));
    jw_member(w, "by_proto", counts_object(gen_proto_names, t->by_proto, GEN_PROTO_COUNT));
    jw_member(w, "by_tool", counts_object(gen_tool_names, t->by_tool, GEN_TOOL_COUNT));
    jw_member(w, "ignored", counts_object(ign, ignored, 3));
    jw_member(w, "malformed", counts_object(mal, malformed, 2));
    jw_member(w, "truncated", counts_object(trunc, t->truncated, 3));
    jw_member(w, "sources_distinct", json_integer((json_int_t)t->sources.count));
}

static void write_buckets(struct jw *w, struct gen_truth *t)
{
    char buf[64];

    jw_array_begin(w, "buckets");
    for (size_t i = 0; i < t->n_buckets; i++) {
        const struct gen_bucket *b = &t->buckets[i];
        int64_t start = t->bucket0 + (int64_t)i * t->cfg->bucket_seconds;

        if (b->packets == 0)
            continue;
        jw_item(w, json_pack("{s:s,s:I,s:I,s:o}", "start",
                             gen_time_format(start * 1000000, false, buf, sizeof(buf)), "packets",
                             (json_int_t)b->packets, "bytes", (json_int_t)b->bytes, "by_class",
                             counts_object(gen_class_names, b->by_class, GEN_CLASS_COUNT)));
    }
    jw_array_end(w);
}

static int write_ports(struct jw *w, struct gen_truth *t)
{
    size_t n;
    uint32_t *list = gen_truth_ports_sorted(t, &n);

    if (list == NULL)
        return -ENOMEM;
    jw_array_begin(w, "ports");
    for (size_t i = 0; i < n; i++) {
        uint32_t pp = list[i] >> 16, port = list[i] & 0xffff;

        jw_item(w, json_pack("{s:s,s:i,s:I,s:I}", "proto", pp ? "udp" : "tcp", "port", (int)port,
                             "packets", (json_int_t)t->port_packets[pp][port], "sources",
                             (json_int_t)t->port_sources[pp][port]));
    }
    jw_array_end(w);
    free(list);
    return 0;
}

static int write_victims(struct jw *w, struct gen_truth *t)
{
    uint32_t *idx = gen_truth_entries_sorted(&t->victims, true);
    char buf[64];

    if (idx == NULL)
        return -ENOMEM;
    jw_array_begin(w, "victims");
    for (size_t i = 0; i < t->victims.count; i++)
        jw_item(w, json_pack("{s:s,s:I}", "ip",
                             gen_addr_format(&t->victims.keys[idx[i]], buf, sizeof(buf)), "packets",
                             (json_int_t)gen_truth_entry_packets(&t->victims, idx[i], true)));
    jw_array_end(w);
    free(idx);
    return 0;
}

static json_t *ports_array(const uint16_t *ports, size_t n)
{
    json_t *a = json_array();

    for (size_t i = 0; i < n && a != NULL; i++)
        json_array_append_new(a, json_integer(ports[i]));
    return a;
}

static int write_sources(struct jw *w, struct gen_truth *t)
{
    const struct gen_addrtab *tab = &t->sources;
    uint32_t *idx = NULL, *start = NULL;
    uint16_t *ports = NULL;
    uint64_t *keys;
    size_t nkeys;
    char buf[64], first[64], last[64];

    jw_array_begin(w, "sources");
    if (!t->cfg->source_truth) {
        jw_array_end(w);
        return 0;
    }
    idx = gen_truth_entries_sorted(tab, false);
    start = calloc(tab->count + 1, sizeof(*start));
    ports = malloc(65536 * sizeof(*ports));
    if (idx == NULL || start == NULL || ports == NULL) {
        free(idx);
        free(start);
        free(ports);
        return -ENOMEM;
    }
    nkeys = gen_u64set_sort(&t->pairs, &keys);
    for (size_t k = 0; k < nkeys; k++)
        start[(keys[k] >> 17) + 1]++;
    for (size_t i = 0; i < tab->count; i++)
        start[i + 1] += start[i];
    for (size_t n = 0; n < tab->count; n++) {
        uint32_t i = idx[n];
        const struct gen_srcstat *st = (const void *)(tab->vals + (size_t)i * tab->val_size);
        int tool = gen_truth_source_tool(st);
        size_t nports = gen_truth_source_ports(keys, start[i], start[i + 1], ports);

        jw_item(w,
                json_pack("{s:s,s:I,s:I,s:o,s:o,s:s,s:s,s:o}", "ip",
                          gen_addr_format(&tab->keys[i], buf, sizeof(buf)), "packets",
                          (json_int_t)st->packets, "bytes", (json_int_t)st->bytes, "by_class",
                          class_object32(st->by_class), "tool",
                          tool == GEN_TOOL_NONE ? json_null() : json_string(gen_tool_names[tool]),
                          "first", gen_time_format(st->first_us, true, first, sizeof(first)),
                          "last", gen_time_format(st->last_us, true, last, sizeof(last)), "ports",
                          ports_array(ports, nports)));
    }
    jw_array_end(w);
    free(idx);
    free(start);
    free(ports);
    return 0;
}

int gen_json_write(struct gen_truth *t, const char *path, char *err, size_t errlen)
{
    struct jw w = {.first_member = true};
    char tmp[4096];
    int rc = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "%s: path too long", path);
        return -ENAMETOOLONG;
    }
    w.f = fopen(tmp, "w");
    if (w.f == NULL) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return rc;
    }
    fputc('{', w.f);
    write_summary(&w, t);
    write_buckets(&w, t);
    if ((rc = write_ports(&w, t)) == 0 && (rc = write_victims(&w, t)) == 0)
        rc = write_sources(&w, t);
    fputs("\n}\n", w.f);
    if (rc == 0)
        rc = w.failed;
    if (ferror(w.f) && rc == 0)
        rc = -EIO;
    if (fclose(w.f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        remove(tmp);
    }
    return rc;
}
