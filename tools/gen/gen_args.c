/*
 * gen_args.c - command line of darkscope-gen and RFC 3339 time helpers.
 *
 * Every bad argument ends as one line in err; main prints it and exits with status 2.
 */
#include "gen_internal.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GEN_DEFAULT_START   "2026-01-01T00:00:00Z"
#define GEN_DEFAULT_PACKETS 10000
#define GEN_DEFAULT_RATE    1000.0

/* Default traffic mix: packet shares by behaviour, tool shares of IPv4 scanning sources. */
static const double default_beh[GEN_BEH_COUNT] = {70, 2, 15, 8, 4, 1};
static const double default_tool[GEN_TOOL_COUNT] = {25, 10, 10, 5};
static const char *const beh_keys[GEN_BEH_COUNT] = {"scan",      "scan6",      "backscatter",
                                                    "udp_probe", "icmp_probe", "other"};

void gen_args_usage(FILE *f)
{
    fputs(
        "usage: darkscope-gen --out FILE.pcap --truth FILE.json [options]\n"
        "\n"
        "Writes an Ethernet pcap of synthetic darknet traffic and its exact ground truth (JSON)\n"
        "under the counting rules of docs/classification.md.\n"
        "\n"
        "  --out FILE            pcap to write (LINKTYPE_ETHERNET, snaplen 65535, microseconds)\n"
        "  --truth FILE          ground-truth JSON to write\n"
        "  --seed N              PRNG seed (default 1); same arguments + seed = same bytes\n"
        "  --packets N           frames to write (default 10000), at 1000 pps unless --rate\n"
        "                        or --duration is also given\n"
        "  --rate PPS --duration SECONDS\n"
        "                        write rate x duration frames spread over the duration\n"
        "  --darknet CIDR        darknet prefix, IPv4 (/8../32) or IPv6 (/16../128); repeatable;\n"
        "                        default 198.18.0.0/16 and 2001:db8:d000::/48; needs one IPv4\n"
        "  --start RFC3339       time of the first frame (default 2026-01-01T00:00:00Z)\n"
        "  --sources N           size of the source population (default packets / 10)\n"
        "  --no-source-truth     leave the per-source list empty (sources_distinct still counted)\n"
        "  --bucket-seconds N    truth bucket width (default 60)\n"
        "  --mix SPEC            comma-separated key=value settings of the traffic mix; naming\n"
        "                        any key of a group sets the group's other keys to 0\n"
        "                          packet weights (relative): scan=70 (IPv4 SYN scanners),\n"
        "                          scan6=2 (IPv6 SYN scanners), backscatter=15, udp_probe=8,\n"
        "                          icmp_probe=4, other=1 (FIN/NULL/Xmas/ACK scans, GRE);\n"
        "                          tool shares in %% of IPv4 scanning sources: mirai=25,\n"
        "                          zmap=10, masscan=10, nmap=5 (the rest use no tool);\n"
        "                          edge=auto|N frames of each hostile/edge kind (fragments,\n"
        "                          IPv6 extension headers, truncated captures, ARP, 802.1Q,\n"
        "                          non-darknet, cut IPv4 headers; auto: 1 + packets/4000, at\n"
        "                          most 1000, none below 1000 packets)\n"
        "  --help                this text\n"
        "\n"
        "Exit status: 0 success, 1 run-time failure, 2 bad arguments.\n",
        f);
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int gen_time_parse(const char *s, int64_t *us)
{
    int y, mo, d, h, mi, sec, oh = 0, om = 0, frac = 0, scale = 100000;
    struct tm tm;
    const char *p;
    time_t t;

    if (strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &sec))
        return -EINVAL;
    p = s + 19;
    if (*p == '.') {
        if (p[1] < '0' || p[1] > '9')
            return -EINVAL;
        for (p++; *p >= '0' && *p <= '9'; p++) {
            frac += scale * (*p - '0');
            scale /= 10;
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && !digits(p + 1, 2, &oh) && p[3] == ':' &&
               !digits(p + 4, 2, &om)) {
        if (oh > 23 || om > 59)
            return -EINVAL;
        if (*p == '-') {
            oh = -oh;
            om = -om;
        }
        p += 6;
    } else {
        return -EINVAL;
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    if (tm.tm_mday != d) /* 2026-02-30 normalised into March */
        return -EINVAL;
    *us = ((int64_t)t - (int64_t)oh * 3600 - (int64_t)om * 60) * 1000000 + frac;
    return 0;
}

const char *gen_time_format(int64_t us, bool micros, char *buf, size_t len)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;

    gmtime_r(&t, &tm);
    if (micros)
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000));
    else
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

static int parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *out,
                     char *err, size_t errlen)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi) {
        snprintf(err, errlen, "%s '%s': expected an integer in %llu..%llu", opt, s,
                 (unsigned long long)lo, (unsigned long long)hi);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int parse_pos(const char *opt, const char *s, double *out, char *err, size_t errlen)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v <= 0 || v > 1e12) {
        snprintf(err, errlen, "%s '%s': expected a positive number", opt, s);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int mix_parse(struct gen_mix *mix, const char *spec, char *err, size_t errlen)
{
    char buf[512], *save = NULL, *tok;

    if (strlen(spec) >= sizeof(buf)) {
        snprintf(err, errlen, "--mix: specification too long");
        return -EINVAL;
    }
    strcpy(buf, spec);
    for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '='), *end;
        double v;
        int i;

        if (eq == NULL) {
            snprintf(err, errlen, "--mix: '%s' is not key=value", tok);
            return -EINVAL;
        }
        *eq++ = '\0';
        if (strcmp(tok, "edge") == 0) {
            uint64_t n;

            if (strcmp(eq, "auto") == 0) {
                mix->edge_each = -1;
                continue;
            }
            if (parse_u64("--mix edge", eq, 0, GEN_MAX_EDGE, &n, err, errlen))
                return -EINVAL;
            mix->edge_each = (long)n;
            continue;
        }
        errno = 0;
        v = strtod(eq, &end);
        if (errno != 0 || end == eq || *end != '\0' || !isfinite(v) || v < 0 || v > 1e9) {
            snprintf(err, errlen, "--mix %s: '%s' is not a non-negative number", tok, eq);
            return -EINVAL;
        }
        for (i = 0; i < GEN_BEH_COUNT && strcmp(tok, beh_keys[i]) != 0; i++)
            ;
        if (i < GEN_BEH_COUNT) {
            mix->beh[i] = v;
            mix->beh_set[i] = true;
            continue;
        }
        for (i = 0; i < GEN_TOOL_COUNT && strcmp(tok, gen_tool_names[i]) != 0; i++)
            ;
        if (i == GEN_TOOL_COUNT) {
            snprintf(err, errlen,
                     "--mix: unknown key '%s' (scan, scan6, backscatter, udp_probe, "
                     "icmp_probe, other, mirai, zmap, masscan, nmap, edge)",
                     tok);
            return -EINVAL;
        }
        mix->tool[i] = v;
        mix->tool_set[i] = true;
    }
    return 0;
}

/* A group (packet weights, tool shares) named in --mix replaces that group's defaults. */
static int mix_finish(struct gen_mix *mix, char *err, size_t errlen)
{
    bool beh_named = false, tool_named = false;
    double tools = 0;

    for (int i = 0; i < GEN_BEH_COUNT; i++)
        beh_named |= mix->beh_set[i];
    for (int i = 0; i < GEN_TOOL_COUNT; i++)
        tool_named |= mix->tool_set[i];
    for (int i = 0; i < GEN_BEH_COUNT; i++)
        if (beh_named && !mix->beh_set[i])
            mix->beh[i] = 0;
    for (int i = 0; i < GEN_TOOL_COUNT; i++) {
        if (tool_named && !mix->tool_set[i])
            mix->tool[i] = 0;
        tools += mix->tool[i];
    }
    if (tools > 100) {
        snprintf(err, errlen, "--mix: tool shares add up to %g%%, more than 100%%", tools);
        return -EINVAL;
    }
    return 0;
}

enum {
    OPT_OUT = 256,
    OPT_TRUTH,
    OPT_SEED,
    OPT_PACKETS,
    OPT_RATE,
    OPT_DURATION,
    OPT_DARKNET,
    OPT_START,
    OPT_SOURCES,
    OPT_NO_SOURCE_TRUTH,
    OPT_BUCKET,
    OPT_MIX,
    OPT_HELP
};

static const struct option long_opts[] = {
    {"out", required_argument, NULL, OPT_OUT},
    {"truth", required_argument, NULL, OPT_TRUTH},
    {"seed", required_argument, NULL, OPT_SEED},
    {"packets", required_argument, NULL, OPT_PACKETS},
    {"rate", required_argument, NULL, OPT_RATE},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"darknet", required_argument, NULL, OPT_DARKNET},
    {"start", required_argument, NULL, OPT_START},
    {"sources", required_argument, NULL, OPT_SOURCES},
    {"no-source-truth", no_argument, NULL, OPT_NO_SOURCE_TRUTH},
    {"bucket-seconds", required_argument, NULL, OPT_BUCKET},
    {"mix", required_argument, NULL, OPT_MIX},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Turns --packets / --rate / --duration into a frame count and a duration. */
static int timing_resolve(struct gen_config *cfg, uint64_t packets, double rate, double duration,
                          char *err, size_t errlen)
{
    double frames, dur;

    if (packets > 0 && rate > 0 && duration > 0) {
        snprintf(err, errlen, "give --packets or --rate with --duration, not all three");
        return -EINVAL;
    }
    if (packets == 0 && (rate > 0) != (duration > 0)) {
        snprintf(err, errlen, "--rate and --duration go together (or add --packets)");
        return -EINVAL;
    }
    if (packets == 0 && rate == 0)
        packets = GEN_DEFAULT_PACKETS;
    if (packets > 0) {
        frames = (double)packets;
        dur = duration > 0 ? duration : frames / (rate > 0 ? rate : GEN_DEFAULT_RATE);
    } else {
        frames = round(rate * duration);
        dur = duration;
    }
    if (frames < 1 || frames > (double)GEN_MAX_FRAMES) {
        snprintf(err, errlen, "packet count %.0f out of range 1..%llu", frames,
                 (unsigned long long)GEN_MAX_FRAMES);
        return -EINVAL;
    }
    cfg->frames = (uint64_t)frames;
    cfg->duration_us = (int64_t)llround(dur * 1e6);
    if (cfg->duration_us < 1 || dur > 4e9) {
        snprintf(err, errlen, "duration %g s out of range", dur);
        return -EINVAL;
    }
    return 0;
}

static int defaults_finish(struct gen_config *cfg, char *err, size_t errlen)
{
    struct gen_prefix p;
    int64_t end_s;
    uint64_t buckets, edge, main_frames;
    double total = 0;

    if (cfg->darknet.n == 0) {
        if (gen_prefix_parse("198.18.0.0/16", &p, err, errlen) ||
            gen_darknet_add(&cfg->darknet, &p, err, errlen) ||
            gen_prefix_parse("2001:db8:d000::/48", &p, err, errlen) ||
            gen_darknet_add(&cfg->darknet, &p, err, errlen))
            return -EINVAL;
    }
    if (cfg->darknet.n4 == 0) {
        snprintf(err, errlen, "--darknet: at least one IPv4 prefix is required");
        return -EINVAL;
    }
    if (cfg->darknet.n6 == 0) {
        if (cfg->mix.beh_set[GEN_BEH_SCAN6] && cfg->mix.beh[GEN_BEH_SCAN6] > 0) {
            snprintf(err, errlen, "--mix scan6 needs an IPv6 --darknet prefix");
            return -EINVAL;
        }
        cfg->mix.beh[GEN_BEH_SCAN6] = 0;
    }
    if (mix_finish(&cfg->mix, err, errlen))
        return -EINVAL;
    for (int i = 0; i < GEN_BEH_COUNT; i++)
        total += cfg->mix.beh[i];
    if (total <= 0) {
        snprintf(err, errlen, "--mix: all packet weights are zero");
        return -EINVAL;
    }
    end_s = (cfg->start_us + cfg->duration_us) / 1000000;
    if (cfg->start_us < 0 || end_s >= (int64_t)UINT32_MAX) {
        snprintf(err, errlen, "--start/--duration: capture must lie in 1970..2106");
        return -EINVAL;
    }
    buckets =
        (uint64_t)(end_s / cfg->bucket_seconds - cfg->start_us / 1000000 / cfg->bucket_seconds) + 1;
    if (buckets > GEN_MAX_BUCKETS) {
        snprintf(err, errlen, "--bucket-seconds %u: %llu buckets, more than %llu",
                 cfg->bucket_seconds, (unsigned long long)buckets,
                 (unsigned long long)GEN_MAX_BUCKETS);
        return -EINVAL;
    }
    edge = gen_pop_edge_total(cfg);
    if (edge > cfg->frames) {
        snprintf(err, errlen, "--mix edge: %llu edge frames exceed the %llu packets",
                 (unsigned long long)edge, (unsigned long long)cfg->frames);
        return -EINVAL;
    }
    main_frames = cfg->frames - edge;
    if (cfg->sources == 0)
        cfg->sources = cfg->frames / 10 > 0 ? cfg->frames / 10 : 1;
    if (cfg->sources > main_frames)
        cfg->sources = main_frames;
    return 0;
}

int gen_args_parse(int argc, char **argv, struct gen_config *cfg, char *err, size_t errlen)
{
    uint64_t packets = 0, v, sources = 0;
    double rate = 0, duration = 0;
    const char *start = GEN_DEFAULT_START;
    struct gen_prefix p;
    int c;

    memset(cfg, 0, sizeof(*cfg));
    cfg->seed = 1;
    cfg->source_truth = true;
    cfg->bucket_seconds = 60;
    memcpy(cfg->mix.beh, default_beh, sizeof(default_beh));
    memcpy(cfg->mix.tool, default_tool, sizeof(default_tool));
    cfg->mix.edge_each = -1;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_OUT:
            cfg->out_path = optarg;
            break;
        case OPT_TRUTH:
            cfg->truth_path = optarg;
            break;
        case OPT_SEED:
            if (parse_u64("--seed", optarg, 0, UINT64_MAX, &cfg->seed, err, errlen))
                return -EINVAL;
            break;
        case OPT_PACKETS:
            if (parse_u64("--packets", optarg, 1, GEN_MAX_FRAMES, &packets, err, errlen))
                return -EINVAL;
            break;
        case OPT_RATE:
            if (parse_pos("--rate", optarg, &rate, err, errlen))
                return -EINVAL;
            break;
        case OPT_DURATION:
            if (parse_pos("--duration", optarg, &duration, err, errlen))
                return -EINVAL;
            break;
        case OPT_DARKNET:
            if (gen_prefix_parse(optarg, &p, err, errlen) ||
                gen_darknet_add(&cfg->darknet, &p, err, errlen))
                return -EINVAL;
            break;
        case OPT_START:
            start = optarg;
            break;
        case OPT_SOURCES:
            if (parse_u64("--sources", optarg, 1, GEN_MAX_SOURCES, &sources, err, errlen))
                return -EINVAL;
            break;
        case OPT_NO_SOURCE_TRUTH:
            cfg->source_truth = false;
            break;
        case OPT_BUCKET:
            if (parse_u64("--bucket-seconds", optarg, 1, 86400 * 366, &v, err, errlen))
                return -EINVAL;
            cfg->bucket_seconds = (uint32_t)v;
            break;
        case OPT_MIX:
            if (mix_parse(&cfg->mix, optarg, err, errlen))
                return -EINVAL;
            break;
        case OPT_HELP:
            return 1;
        case ':':
            snprintf(err, errlen, "option '%s' needs a value", argv[optind - 1]);
            return -EINVAL;
        default:
            snprintf(err, errlen, "unknown option '%s' (see --help)", argv[optind - 1]);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
        return -EINVAL;
    }
    if (cfg->out_path == NULL || cfg->truth_path == NULL) {
        snprintf(err, errlen, "--out and --truth are required (see --help)");
        return -EINVAL;
    }
    if (gen_time_parse(start, &cfg->start_us)) {
        snprintf(err, errlen, "--start '%s': expected RFC 3339 such as 2026-01-01T00:00:00Z",
                 start);
        return -EINVAL;
    }
    if (timing_resolve(cfg, packets, rate, duration, err, errlen))
        return -EINVAL;
    if (sources > cfg->frames) {
        snprintf(err, errlen, "--sources %llu exceeds the %llu packets",
                 (unsigned long long)sources, (unsigned long long)cfg->frames);
        return -EINVAL;
    }
    cfg->sources = sources;
    return defaults_finish(cfg, err, errlen);
}
