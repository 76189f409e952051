/*
 * aggregator — `darkscope aggregate`: turns closed time-buckets into DAEDALUS-style alerts for
 * subscriber organisations (docs/alerting.md).
 *
 * Pure parts first: the prefix trie (trie.c) matches an address against every subscriber range
 * containing it (overlapping ranges all match).
 */
#ifndef AGG_AGGREGATOR_H
#define AGG_AGGREGATOR_H

#include "core/core.h"

#include <jansson.h>

/* ---------------------------------------------------------------- prefix trie (trie.c) */

struct agg_trie;

struct agg_match {
    uint32_t value; /* what the prefix was added with (an organisation index) */
    uint8_t len;    /* the prefix length */
};

struct agg_trie *agg_trie_new(void);
void agg_trie_free(struct agg_trie *t);
/* Adds a prefix with a value; the same (prefix, value) twice is kept once. Returns 0, -EINVAL
 * for a bad prefix or -ENOMEM. Call agg_trie_finish after the last add. */
DS_WARN_UNUSED int agg_trie_add(struct agg_trie *t, const struct ds_cidr *c, uint32_t value);
/* Builds the IPv4 first-16-bits table. Lookups are correct without it, only slower. */
DS_WARN_UNUSED int agg_trie_finish(struct agg_trie *t);
/* Every (value, prefix length) whose prefix contains a, longest prefix first; writes at most
 * max and returns how many there are. */
unsigned agg_trie_match(const struct agg_trie *t, const struct ds_addr *a, struct agg_match *out,
                        unsigned max);
/* Hints for a lookup of a a little later: step 0 fetches its IPv4 table slot into the cache,
 * step 1 (once step 0 had time to land) the node its walk continues from. Matching a million
 * addresses is bound by these two cache misses; issuing them a few addresses ahead overlaps
 * them. No effect on results. */
void agg_trie_prefetch(const struct agg_trie *t, const struct ds_addr *a, unsigned step);
uint64_t agg_trie_prefixes(const struct agg_trie *t);
size_t agg_trie_memory(const struct agg_trie *t);

/* ---------------------------------------------------------------- subscribers (subscribers.c) */

struct agg_thresholds {
    int64_t infected_min_packets; /* packets from the host in the bucket */
    int64_t infected_min_dsts;    /* distinct darknet addresses it hit */
    int64_t ddos_min_packets;     /* backscatter packets of an attack */
    int64_t ddos_min_seconds;     /* attack duration */
    int64_t ddos_min_window_packets;
    int64_t quiet_seconds;    /* an incident closes after this long without activity */
    int64_t renotify_seconds; /* an open incident is notified again after this long */
};
void agg_thresholds_default(struct agg_thresholds *t);

struct agg_contact {
    char *email;
    char lang[3]; /* "en" or "ja" */
};

#define AGG_WEBHOOKS_MAX 4
struct agg_webhook {
    char *url;
    char *secret_file; /* the HMAC-SHA256 key, read when sending; never in Redis or logs */
};

struct agg_org {
    char *id, *name;
    unsigned n_webhooks;
    struct agg_webhook webhooks[AGG_WEBHOOKS_MAX];
    char *timezone; /* NULL: Asia/Tokyo for "ja" contacts, UTC otherwise */
    struct agg_contact *contacts;
    unsigned n_contacts;
    struct ds_cidr *internal; /* its internal darknet prefixes */
    unsigned n_internal;
    size_t n_livenet;
    struct agg_thresholds th;
    bool has_token;
    uint8_t token_sha256[32];
};

#define AGG_PARTNER_CC_MAX 64
struct agg_partner {
    char name[65];
    unsigned n_countries;
    char countries[AGG_PARTNER_CC_MAX][3];
    uint8_t token_sha256[32];
};

struct agg_subscribers {
    struct agg_org *orgs;
    unsigned n_orgs;
    struct agg_partner *partners;
    unsigned n_partners;
    struct agg_trie *livenet;  /* value: organisation index */
    struct agg_trie *internal; /* value: organisation index */
    struct agg_trie *research; /* known research scanners (labelled, never alerted) */
    size_t n_livenet, n_internal;
    json_t *by_id; /* organisation id → its index (an integer) */
};

/* Loads and validates a subscriber file whole (docs/alerting.md). On error fills err with one
 * line naming the file and the key (or FILE:LINE for syntax errors and CSV rows) and returns
 * -EINVAL (or -ENOMEM); *out is set only on success. */
DS_WARN_UNUSED int agg_subscribers_load(const char *path, const struct agg_thresholds *defaults,
                                        struct agg_subscribers **out, char *err, size_t errlen);
void agg_subscribers_free(struct agg_subscribers *s);
/* Index of the organisation with this id, or -1. */
int agg_subscribers_find(const struct agg_subscribers *s, const char *id);

/* ---------------------------------------------------------------- the role (aggregate.c) */

/* Runs `darkscope aggregate` until SIGINT/SIGTERM, or with once until every complete bucket is
 * processed. SIGHUP reloads the subscriber file (keeping the old one when the new one is bad).
 * Returns an exit status: 0, 2 bad configuration or subscriber file, 3 Redis unreachable
 * (once), 1 other failures. */
int agg_run(const struct ds_config *cfg, bool once);
/* `darkscope aggregate --reload`: SIGHUP to the running aggregator (its pid file in
 * state_dir). Returns 0 or -errno with err filled. */
int agg_reload_signal(const struct ds_config *cfg, char *err, size_t errlen);
void agg_thresholds_from_config(const struct ds_config *cfg, struct agg_thresholds *t);

/* ---------------------------------------------------------------- incidents (incident.c) */

enum agg_kind {
    AGG_KIND_INFECTED,
    AGG_KIND_INTERNAL,
    AGG_KIND_DDOS,
    AGG_KIND_EARLY,
    AGG_KIND_N
};
extern const char *const agg_kind_names[AGG_KIND_N];

#define AGG_SAMPLES_KEPT 5  /* sample packets an incident (and its alerts) keeps */
#define AGG_PORTS_KEPT   16 /* destination ports an incident keeps (the busiest) */
#define AGG_PORTS_MAX    32 /* destination ports one host's evidence for a bucket keeps */
#define AGG_SENSORS_MAX  16 /* sensors an incident lists */

struct agg_port {
    uint8_t proto; /* enum ds_proto */
    uint16_t port;
    int64_t packets;
};

/* Incidents and their evidence are C structs, written out as JSON once (agg_incident_json,
 * agg_alert_json): a bucket with ten thousands of them is bound by how fast they are folded
 * and written, and JSON trees cost about ten times as much (docs/benchmarks.md). */

/* One host's evidence in one bucket: every record of it (as capture stores them, sources and
 * victims), from every sensor. Counts absent from all records read as absent (the has_ flags),
 * not as zero. agg_evidence_init before use, agg_evidence_fini after. */
struct agg_evidence {
    int64_t packets, syn, dsts, first_us, last_us;
    bool has_dsts, has_first, has_last;
    int64_t by_class[DS_CLASS_N];
    int64_t tool_matches[DS_TOOL_N];
    unsigned protos; /* bit per enum ds_proto */
    struct agg_port ports[AGG_PORTS_MAX];
    unsigned n_ports;
    struct ds_cidr *prefixes; /* the darknet prefixes the host hit (owned) */
    unsigned n_prefixes, cap_prefixes;
    const char *sensors[AGG_SENSORS_MAX]; /* borrowed: live as long as the caller's names */
    unsigned n_sensors;
    char *samples[AGG_SAMPLES_KEPT]; /* JSON texts of sample packets (owned) */
    unsigned n_samples;
    char cc[3];
    int64_t asn;
    bool has_asn;
};

void agg_evidence_init(struct agg_evidence *ev);
void agg_evidence_fini(struct agg_evidence *ev);
/* Adds one source or victim record (a parsed JSON object) seen by a sensor; sensor must live
 * as long as ev. Returns 0 or -ENOMEM. */
DS_WARN_UNUSED int agg_evidence_merge(struct agg_evidence *ev, const char *sensor,
                                      const json_t *rec);
/* The kinds (bit per enum agg_kind) a source's evidence supports for an organisation: internal
 * when it hit a darknet prefix inside the organisation's internal darknet, infected when it
 * sent scan-class packets to any other darknet prefix. Thresholds are applied later. */
unsigned agg_evidence_kinds(const struct agg_evidence *ev, const struct agg_org *org);

/* An (organisation, kind, host) incident. Strings are owned; agg_incident_fini frees them. */
struct agg_incident {
    char *id, *org, *org_name;
    int kind;
    char host[DS_ADDR_STRLEN];
    bool open;
    char opened[40];
    int64_t packets, buckets, syn, alerts, last_bucket, first_us, last_us, darknet_addresses,
        bucket_packets_max, last_seen_s, last_alert_s;
    bool has_first, has_last, has_dsts, has_bucket_packets_max, has_last_alert;
    struct agg_port ports[AGG_PORTS_KEPT + AGG_PORTS_MAX];
    unsigned n_ports;
    unsigned protos; /* bit per enum ds_proto */
    char *sensors[AGG_SENSORS_MAX];
    unsigned n_sensors;
    char *samples[AGG_SAMPLES_KEPT];
    unsigned n_samples;
    int64_t tool_matches[DS_TOOL_N];
    char cc[3];
    int64_t asn;
    bool has_asn;
};

void agg_incident_fini(struct agg_incident *inc);
/* A deep copy of src into dst. Returns 0 or -ENOMEM (dst then empty). */
DS_WARN_UNUSED int agg_incident_copy(struct agg_incident *dst, const struct agg_incident *src);
/* A new open incident of an organisation, kind and host, opened in bucket. Returns 0 or
 * -ENOMEM. */
DS_WARN_UNUSED int agg_incident_start(struct agg_incident *inc, const struct agg_org *org, int kind,
                                      const char *host, int64_t bucket);
/* An incident as stored (agg_incident_json's output, parsed). Returns 0, -EINVAL when it is
 * not one (wrong kind or missing keys) or -ENOMEM. */
DS_WARN_UNUSED int agg_incident_from_json(struct agg_incident *inc, const json_t *j);
/* Folds a bucket's evidence into an open incident. A bucket already folded in changes
 * nothing. Returns 0 or -ENOMEM. */
DS_WARN_UNUSED int agg_incident_fold(struct agg_incident *inc, const struct agg_evidence *ev,
                                     int64_t bucket, int64_t bucket_end);
/* Whether the incident should be alerted now: its evidence meets the kind's thresholds and it
 * was never alerted, or was last alerted renotify ago. */
bool agg_incident_due(const struct agg_incident *inc, const struct agg_thresholds *th,
                      int64_t bucket_end);
/* Appends the incident as JSON (docs/alerting.md) to b. */
void agg_incident_json(const struct agg_incident *inc, struct ds_buf *b);
/* Records an alert in the incident and appends the alert as JSON to b. v4_share: the share of
 * the IPv4 space the telescope watches (to scale DDoS rates). */
void agg_alert_json(struct agg_incident *inc, int64_t bucket, int64_t bucket_end, double v4_share,
                    struct ds_buf *b);

/* Early warning per destination port: an EWMA baseline of distinct sources per bucket with an
 * EWMA of absolute deviations (docs/alerting.md). */
struct agg_ew {
    double mean, mad;
    unsigned n; /* buckets seen */
};
struct agg_ew_params {
    double alpha, ratio, deviations;
    int64_t min_sources;
    unsigned warmup;
};
void agg_ew_parse(const char *text, struct agg_ew *s);
void agg_ew_format(const struct agg_ew *s, char *buf, size_t len);
/* Feeds one bucket's distinct sources x; returns true when x is a sudden rise. *ratio = x over
 * the baseline before this bucket. */
bool agg_ew_step(struct agg_ew *s, double x, const struct agg_ew_params *p, double *ratio);

#endif
