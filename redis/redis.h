/*
 * redis — the one module that knows Redis key names and commands (docs/redis-schema.md).
 *
 * Writers hand it finished time-buckets (struct rds_bucket) and live-event batches; readers ask
 * it for summaries and per-source records as JSON. Connections are synchronous hiredis contexts
 * with timeouts; each owns its reconnect and backoff (struct rds_conn). An empty URL means
 * darkscope's own embedded redis-server on a unix socket in the state directory, started on
 * first use when not already running, so separately started roles share one store.
 *
 * Threading: a struct rds_conn is used by one thread at a time. Everything else is pure or
 * takes a connection.
 *
 * Ownership: returned json_t * are new references (json_decref them); strings passed in are
 * copied when kept.
 */
#ifndef RDS_REDIS_H
#define RDS_REDIS_H

#include "core/core.h"

#include <jansson.h>

#define RDS_SCHEMA "ds:v1"

/* ---------------------------------------------------------------- connection */

enum rds_state {
    RDS_DISCONNECTED,
    RDS_CONNECTED,
    RDS_BACKOFF, /* the last attempt failed; waiting until the backoff ends */
};

struct rds_conn;

/* Prepares a connection (does not connect yet). url: "redis://host:port/db", "unix:/path", or
 * "" for the embedded server under state_dir, which runs as `user` when started by root (NULL:
 * as the caller). Returns NULL and fills err on a bad URL. */
struct rds_conn *rds_conn_new(const char *url, const char *state_dir, const struct ds_user *user,
                              char *err, size_t errlen);
void rds_conn_free(struct rds_conn *c);
/* Connects when not connected, honouring the backoff (doubling from 100 ms to 5 s); starts the
 * embedded server when needed. Returns 0 when connected, -EAGAIN while backing off, -errno
 * otherwise. Never blocks longer than the connect timeout (2 s). */
int rds_conn_ensure(struct rds_conn *c);
enum rds_state rds_conn_state(const struct rds_conn *c);
/* Human description of the endpoint ("unix:/var/lib/darkscope/redis.sock"); never a password. */
const char *rds_conn_describe(const struct rds_conn *c);
/* Last error text (no secrets). */
const char *rds_conn_error(const struct rds_conn *c);
/* Marks the connection broken after a failed command: the next ensure reconnects. */
void rds_conn_reset(struct rds_conn *c);

/* Starts the embedded redis-server for state_dir unless one answers on its socket. Started by
 * root with a non-root user, the state directory is given to that user and the server runs as
 * it, so roles that have dropped root can still reach it. Writes the socket path into sock.
 * Returns 0 or -errno with err filled. */
DS_WARN_UNUSED int rds_embedded_ensure(const char *state_dir, const struct ds_user *user,
                                       char *sock, size_t socklen, char *err, size_t errlen);

/* ---------------------------------------------------------------- buckets */

#define RDS_SOURCE_PORTS_MAX 16
#define RDS_SOURCE_SAMPLES   3
#define RDS_SOURCE_PREFIXES  64  /* darknet prefixes tracked per source (bitmask) */
#define RDS_PORT_HLL_MAX     256 /* ports per bucket that get a HyperLogLog of sources */
/* Ports an hourly roll-up takes from each bucket, its busiest; the others are summed as
 * `tcp/other` and `udp/other`. Backscatter hits every port at random: with all of them, an hour
 * held a hundred thousand fields a minute (kept for the roll-up retention, months), and adding
 * them was half of Redis's work. */
#define RDS_ROLLUP_PORTS 1000

struct rds_totals {
    uint64_t packets, bytes;
    uint64_t by_class[DS_CLASS_N];
    uint64_t by_proto[DS_PROTO_N];
    uint64_t by_tool[DS_TOOL_N];
    uint64_t ignored[DS_IGN_N];
    uint64_t malformed[DS_MAL_N];
    uint64_t truncated[DS_TRUNC_N];
    uint64_t sources;         /* distinct sources in this part (exact) */
    uint64_t sources_dropped; /* packets whose source record could not be kept (bound) */
    uint64_t late;            /* packets that arrived after their bucket was flushed */
};

struct rds_port {
    uint8_t proto; /* enum ds_proto (tcp or udp) */
    uint16_t port;
    uint64_t packets;
    uint64_t sources;
};

struct rds_country {
    char cc[3]; /* "" = unknown, written as "??" */
    uint64_t packets;
    uint64_t sources;
};

/* A packet summary kept as alert evidence. */
struct rds_sample {
    ds_time_ns ts;
    struct ds_addr dst;
    uint8_t proto, cls;
    uint16_t sport, dport;
    uint8_t tcp_flags, icmp_type, icmp_code, ttl;
    uint16_t ipid, win;
    uint32_t ip_len;
};

/* One source's record for one bucket and sensor. */
struct rds_source {
    struct ds_addr addr;
    uint64_t packets, bytes;
    ds_time_ns first, last;
    uint64_t by_class[DS_CLASS_N];
    uint64_t pure_syns;
    uint64_t tool_matches[DS_TOOL_N];
    uint64_t dsts;           /* distinct darknet addresses hit */
    bool dsts_estimated;     /* dsts is an estimate (above the exact bound) */
    uint64_t ports_distinct; /* distinct destination ports (lower bound when above the table) */
    unsigned n_ports;
    struct rds_port ports[RDS_SOURCE_PORTS_MAX]; /* busiest first; .sources unused */
    uint64_t prefixes;                           /* bit i: darknet prefix i was hit */
    uint8_t protos;                              /* bit per enum ds_proto seen */
    struct ds_geo geo;
    bool has_geo;
    unsigned n_samples;
    struct rds_sample samples[RDS_SOURCE_SAMPLES];
};

struct rds_victim {
    struct ds_addr addr;
    uint64_t packets, bytes;
    ds_time_ns first, last;
    uint8_t protos;
};

/* The records of one shard (see rds_shard()), which the writer reads one at a time, so a bucket
 * with a million sources is never copied whole: the i-th record of the shard into *out and 1, or
 * 0 when the shard has no more than i. Called from several threads at once (different shards,
 * or the same shard again on a retry): the functions must only read ctx. */
typedef int (*rds_source_at_fn)(const void *ctx, unsigned shard, size_t i, struct rds_source *out);
typedef int (*rds_victim_at_fn)(const void *ctx, unsigned shard, size_t i, struct rds_victim *out);

/* Elements (64-bit hashes of source addresses) to add to one HyperLogLog of the bucket: name
 * "all", "tcp/23", "udp/53" or "cc/JP". */
struct rds_hll {
    char name[16];
    const uint64_t *elems;
    size_t n;
};

struct rds_bucket {
    const char *sensor;
    int64_t start;     /* seconds since the epoch, a multiple of seconds */
    int64_t seconds;   /* bucket length */
    uint64_t flush_id; /* unique per (run, bucket, part): the write is applied once */
    struct rds_totals tot;
    const struct rds_port *ports;
    size_t n_ports;
    const struct rds_country *countries;
    size_t n_countries;
    const uint64_t *per_second; /* seconds entries */
    const struct rds_hll *hlls;
    size_t n_hlls;
    bool late; /* a late part of an already written bucket: sources go to their own hash */
    rds_source_at_fn source_at;
    const void *source_ctx;
    rds_victim_at_fn victim_at;
    const void *victim_ctx;
    const struct ds_prefixset *darknet; /* to name prefixes in source records */
};

struct rds_write_opts {
    int64_t retention;        /* seconds, counted from the write */
    int64_t rollup_retention; /* seconds */
    unsigned encoders;        /* threads encoding source records (0 or 1: the calling thread) */
};

/* Source and victim records as stored (docs/redis-schema.md), appended to b. prefixes names the
 * darknet prefixes by index (bit i of the source's prefix mask). Pure. */
void rds_record_source(struct ds_buf *b, const struct rds_source *s, const char *const *prefixes,
                       unsigned n_prefixes);
void rds_record_victim(struct ds_buf *b, const struct rds_victim *v);

/* A HyperLogLog of the elements (8 bytes each, as given to PFADD) in Redis's dense encoding:
 * 16-byte header + 16384 6-bit registers. Pure. */
#define RDS_HLL_DENSE_SIZE (16 + 12288)
void rds_hll_dense(uint8_t out[RDS_HLL_DENSE_SIZE], const uint64_t *elems, size_t n);

/* Shard (hash field) of an address in a bucket's `src` and `vic` hashes. */
#define RDS_SHARDS 1024
unsigned rds_shard(const struct ds_addr *a);
/* The same from ds_addr_hash(a). */
unsigned rds_shard_of_hash(uint64_t h);

/* The index of a whole bucket's shard (`srcidx` / `vicidx` field, docs/redis-schema.md): per
 * record line, in the order of the lines, one entry — family byte (4 or 6), the address's 4 or
 * 16 bytes, the line's length in bytes (newline included) as 4 bytes little-endian. A line's
 * offset in the shard's string is the sum of the lengths before it. Pure. */
void rds_index_entry(struct ds_buf *b, const struct ds_addr *a, size_t line_len);
/* Reads the entry at *p (p < end), advancing *p past it: 1 with *a and *line_len set, 0 at
 * end, -EINVAL for a malformed entry (the rest of the field is then unusable). Pure. */
int rds_index_next(const char **p, const char *end, struct ds_addr *a, uint32_t *line_len);

/* Writes a bucket (or a late part of one) with pipelined commands inside MULTI/EXEC, guarded by
 * the flush id so a retry after a timeout is applied once. Also adds hourly roll-ups and the
 * bucket index. Returns 0 (written or already written), or -errno with the connection reset;
 * the caller retries later with the same struct. */
DS_WARN_UNUSED int rds_bucket_write(struct rds_conn *c, const struct rds_bucket *b,
                                    const struct rds_write_opts *o);

/* Removes index entries (bucket and roll-up starts) whose keys have expired, looking at the
 * oldest `max` of each index. Returns the number removed, or -errno. */
int rds_index_trim(struct rds_conn *c, const char *sensor, unsigned max);

/* Registers or refreshes a sensor (name, location, darknet prefixes, last bucket, counters). */
DS_WARN_UNUSED int rds_sensor_update(struct rds_conn *c, const char *sensor, json_t *info);

/* Publishes one batch of live events (a JSON text) on the live channel and appends it to the
 * capped live stream. */
DS_WARN_UNUSED int rds_live_publish(struct rds_conn *c, const char *sensor, const char *json,
                                    size_t len);

/* ---------------------------------------------------------------- queries */

/* The summary of docs/redis-schema.md for buckets starting in [from, to), one sensor or all
 * (sensor NULL). Returns a new object or NULL with err filled. */
json_t *rds_query_summary(struct rds_conn *c, int64_t from, int64_t to, const char *sensor,
                          unsigned top, char *err, size_t errlen);
/* One source's records in buckets starting in [from, to), with their sum. */
json_t *rds_query_source(struct rds_conn *c, const struct ds_addr *a, int64_t from, int64_t to,
                         const char *sensor, char *err, size_t errlen);

/* Packets and sources per step of a time range: {"from","to","step","points":[{"t","packets",
 * "sources","by_class"}]}. step is a multiple of the sensors' bucket length (seconds); sources
 * per point are the union of the buckets' HyperLogLogs. At most max_points points. */
json_t *rds_query_timeline(struct rds_conn *c, int64_t from, int64_t to, int64_t step,
                           const char *sensor, unsigned max_points, char *err, size_t errlen);
/* Sources seen scanning (scan-class packets) in buckets starting in [from, to), merged over
 * buckets and sensors: {"from","to","truncated","scanners":[{"ip","cc","asn","packets",
 * "first_seen","last_seen","ports","tool","sensors"}]}; only sources located in `countries`
 * when n_countries > 0; at most max sources. */
json_t *rds_query_scanners(struct rds_conn *c, int64_t from, int64_t to,
                           const char *const *countries, unsigned n_countries, size_t max,
                           char *err, size_t errlen);
/* Every sensor record (ds:v1:sensors) as an object name → record. */
json_t *rds_query_sensors(struct rds_conn *c, char *err, size_t errlen);

/* ---------------------------------------------------------------- the aggregator (agg.c) */

/* A sensor as its record describes it. */
struct rds_sensor_state {
    char name[65];
    int64_t bucket_seconds, last_bucket, updated; /* Unix seconds */
    struct ds_prefixset darknet;
};
/* Every sensor record. *out is a new array (free it). */
int rds_agg_sensors(struct rds_conn *c, struct rds_sensor_state **out, size_t *n, char *err,
                    size_t errlen);
/* 1 when the sensor wrote the bucket, 0 when not, -errno. */
int rds_agg_has_bucket(struct rds_conn *c, const char *sensor, int64_t start, char *err,
                       size_t errlen);
/* The sensor's first bucket start after `after`; INT64_MAX when none, -1 on error. */
int64_t rds_agg_next_bucket(struct rds_conn *c, const char *sensor, int64_t after, char *err,
                            size_t errlen);
/* Calls cb for every source (or victim) record line of a bucket whose address `want` accepts
 * (every line when want is NULL), late parts included: the address text and the record's JSON
 * text (neither NUL-terminated). `want` sees addresses from the bucket's index before any
 * record is fetched, so a reader interested in a few of a million sources reads only those;
 * it gets them n at a time (so it can overlap its lookups' memory accesses) and sets
 * wanted[i] for each. A negative return from cb stops the walk. Both callbacks get ctx. */
typedef int (*rds_line_fn)(void *ctx, const char *ip, size_t iplen, const char *json,
                           size_t jsonlen);
typedef void (*rds_addr_filter_fn)(void *ctx, const struct ds_addr *a, size_t n, bool *wanted);
int rds_agg_each_record(struct rds_conn *c, const char *sensor, int64_t start, bool victims,
                        rds_addr_filter_fn want, rds_line_fn cb, void *ctx, char *err,
                        size_t errlen);
/* A (name, value) field of a hash, for callbacks; name and value are not NUL-terminated. */
typedef int (*rds_field_fn)(void *ctx, const char *name, size_t name_len, const char *value,
                            size_t value_len);
/* The bucket's distinct sources per port: cb(ctx, "tcp/23", 6, "118", 3) for each port. A
 * callback returning < 0 stops the walk (-ECANCELED). Returns 0 or -errno. */
int rds_agg_port_sources(struct rds_conn *c, const char *sensor, int64_t start, rds_field_fn cb,
                         void *ctx, char *err, size_t errlen);
/* The last bucket start the aggregator finished, -1 for none, -2 on error. */
int64_t rds_agg_checkpoint(struct rds_conn *c, char *err, size_t errlen);
/* Incidents by field ("org|kind|host"): object field → incident (absent when none). */
json_t *rds_agg_incidents_get(struct rds_conn *c, const char *const *fields, size_t n, char *err,
                              size_t errlen);
/* Fields of open incidents last active before `before` (Unix seconds), at most 10,000. */
json_t *rds_agg_incidents_quiet(struct rds_conn *c, int64_t before, char *err, size_t errlen);
/* The early-warning state: cb(ctx, port, "mean mad n") for each port (and "_buckets"). Returns
 * 0 or -errno. */
int rds_agg_ew_state(struct rds_conn *c, rds_field_fn cb, void *ctx, char *err, size_t errlen);

/* One early-warning state to write: a port (or "_buckets") and its "mean mad n", or an empty
 * state: forgotten (HDEL). */
struct rds_ew_entry {
    char port[16];
    char state[64];
};

/* One JSON text to write: an incident (key: its field; with its last activity and whether it
 * is open) or an alert (key: its organisation's id, NULL for the SOC's). Texts need no NUL. */
struct rds_agg_text {
    const char *key;
    const char *text;
    size_t len;
    int64_t last_seen_s;
    bool open;
};

/* Everything one bucket produced, written in one MULTI/EXEC with the checkpoint. */
struct rds_agg_commit {
    int64_t bucket;
    const struct rds_agg_text *incidents; /* each field once */
    size_t n_incidents;
    const struct rds_agg_text *alerts; /* in order: entry ids <bucket ms>-<i> */
    size_t n_alerts;
    const struct rds_ew_entry *ew;
    size_t n_ew;
};
/* Returns 0 when written, 1 when the checkpoint had already passed the bucket (nothing written),
 * -errno on failure (nothing written either). */
int rds_agg_commit(struct rds_conn *c, const struct rds_agg_commit *x, char *err, size_t errlen);
/* Alerts from the global stream (org NULL) or an organisation's, from `since` (Unix seconds),
 * optionally of one kind; at most max. */
json_t *rds_query_alerts(struct rds_conn *c, const char *org, int64_t since, const char *kind,
                         size_t max, char *err, size_t errlen);

/* ---------------------------------------------------------------- the notifier (notify.c) */

/* The consumer group "notify" on the alert stream (created from the stream's start). */
int rds_notify_group(struct rds_conn *c, char *err, size_t errlen);
/* Entries for consumer: its own unacknowledged ones (pending) or new ones (waiting up to
 * block_ms): [{"id", "alert"}]. */
json_t *rds_notify_read(struct rds_conn *c, const char *consumer, bool pending, unsigned count,
                        unsigned block_ms, char *err, size_t errlen);
int rds_notify_ack(struct rds_conn *c, const char *id, char *err, size_t errlen);
/* Open digests: org → {"first_ms", "ids"}. */
json_t *rds_notify_open_all(struct rds_conn *c, char *err, size_t errlen);
int rds_notify_open_set(struct rds_conn *c, const char *org, json_t *batch, char *err,
                        size_t errlen);
/* The alerts of the given stream ids, in order. */
json_t *rds_notify_alerts(struct rds_conn *c, json_t *ids, char *err, size_t errlen);
/* Moves an open digest to the outbox as message records, key → record: the email and one per
 * webhook (one transaction). */
int rds_notify_seal(struct rds_conn *c, const char *org, json_t *records, char *err, size_t errlen);
/* The outbox: key → record {"org","ids","alerts","message_id","attempts","next_ms",…}. */
json_t *rds_notify_outbox(struct rds_conn *c, char *err, size_t errlen);
int rds_notify_update(struct rds_conn *c, const char *key, json_t *record, char *err,
                      size_t errlen);
/* Retire a message: its alerts acknowledged and the record logged as sent, or moved to the
 * dead-letter stream — each one transaction. */
int rds_notify_sent(struct rds_conn *c, const char *key, json_t *record, char *err, size_t errlen);
int rds_notify_dead(struct rds_conn *c, const char *key, json_t *record, char *err, size_t errlen);
json_t *rds_notify_dead_list(struct rds_conn *c, char *err, size_t errlen);
/* A dead letter back to the outbox, to be tried again. */
int rds_notify_retry(struct rds_conn *c, const char *dead_id, char *err, size_t errlen);

/* ---------------------------------------------------------------- watching (serve) */

/* Asynchronous connections on a libuv loop for the web server: one subscription to the live
 * channel (never one per viewer) and one command connection that polls the sensor records and
 * the alert stream. Lost connections are retried with backoff (200 ms doubling to 5 s).
 * Everything runs on the loop's thread; callbacks get borrowed data. */
struct uv_loop_s;
struct rds_watch;

struct rds_watch_ops {
    /* One live batch as capture published it (JSON text, not NUL-terminated). */
    void (*live)(void *ctx, const char *json, size_t len);
    /* The sensor records, name → record. */
    void (*sensors)(void *ctx, json_t *sensors);
    /* A new entry of the alert stream (written by the aggregator). */
    void (*alert)(void *ctx, const char *id, json_t *alert);
    /* Both connections are up (true), or one was lost (false). */
    void (*state)(void *ctx, bool up);
};

/* params: a connection prepared with rds_conn_new (only its target is used; the embedded
 * server is started when needed). Returns NULL on out of memory. */
struct rds_watch *rds_watch_new(struct uv_loop_s *loop, struct rds_conn *params,
                                const struct rds_watch_ops *ops, void *ctx);
/* Asks for the sensor records and new alerts (answers arrive through ops); skipped while the
 * previous poll is unanswered. */
void rds_watch_poll(struct rds_watch *w);
/* Redis errors and lost connections since the start. */
uint64_t rds_watch_errors(const struct rds_watch *w);
bool rds_watch_up(const struct rds_watch *w);
/* Closes the connections; the loop must run on until its handles are closed. Frees w. */
void rds_watch_close(struct rds_watch *w);

/* Formats the key of a bucket part into buf; exposed for tests and docs. */
const char *rds_key_bucket(char *buf, size_t len, const char *sensor, int64_t start,
                           const char *part);

#endif
