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

/* Adds one source or victim record (as capture stores it) seen by a sensor to a host's
 * evidence for the bucket (an object, empty at first). */
void agg_evidence_merge(json_t *ev, const char *sensor, json_t *rec);
/* The kinds (bit per enum agg_kind) a source's evidence supports for an organisation: internal
 * when it hit a darknet prefix inside the organisation's internal darknet, infected when it
 * sent scan-class packets to any other darknet prefix. Thresholds are applied later. */
unsigned agg_evidence_kinds(const json_t *ev, const struct agg_org *org);
/* The incident after this bucket: old (NULL or closed: a new incident) plus the evidence. A
 * bucket already folded in changes nothing. Returns a new object. */
json_t *agg_incident_fold(json_t *old, const json_t *ev, const struct agg_org *org, int kind,
                          const char *host, int64_t bucket, int64_t bucket_end);
/* Whether the incident should be alerted now: its evidence meets the kind's thresholds and it
 * was never alerted, or was last alerted renotify ago. */
bool agg_incident_due(const json_t *inc, const struct agg_thresholds *th, int kind,
                      int64_t bucket_end, double v4_share);
/* The alert for an incident (a new object); records the alert in the incident. v4_share: the
 * share of the IPv4 space the telescope watches (to scale DDoS rates). */
json_t *agg_alert_from(json_t *inc, int64_t bucket, int64_t bucket_end, double v4_share);

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
