/* capture internals: the decoded packet, the decoder and classifier, per-bucket aggregation, and
 * the worker/coordinator plumbing. Not included outside capture/ (unit tests excepted). */
#ifndef CAP_INTERNAL_H
#define CAP_INTERNAL_H

#include "capture/capture.h"
#include "core/core.h"
#include "redis/redis.h"

#include <pthread.h>
#include <stdatomic.h>

/* One frame as libpcap delivers it. */
struct cap_frame {
    int dlt; /* pcap_datalink() */
    int64_t ts_sec;
    int64_t ts_nsec;  /* as read; >= 1e9 is invalid */
    uint32_t caplen;  /* bytes in data */
    uint32_t wirelen; /* bytes on the wire */
    const uint8_t *data;
};

enum cap_outcome {
    CAP_COUNTED,
    CAP_IGNORED,   /* reason: enum ds_ignored */
    CAP_MALFORMED, /* reason: enum ds_malformed */
};

/* TCP options as far as the Nmap rule cares. */
enum cap_tcpopts {
    CAP_OPTS_UNKNOWN = -1, /* not fully captured / header longer than the segment */
    CAP_OPTS_NONE = 0,
    CAP_OPTS_MSS_ONLY = 1,
    CAP_OPTS_OTHER = 2,
};

/* A decoded packet: only what classification, aggregation and alert evidence need. */
struct cap_pkt {
    ds_time_ns ts;
    struct ds_addr src, dst;
    uint32_t ip_len;     /* IP total length the header claims: what `bytes` sums */
    uint8_t ipproto;     /* IPv4 protocol / IPv6 final next header */
    uint8_t proto;       /* enum ds_proto */
    uint8_t cls;         /* enum ds_class */
    uint8_t tools;       /* bit (1 << enum ds_tool) per matching fingerprint */
    int8_t trunc;        /* enum ds_trunc, DS_TRUNC_NONE when whole */
    bool fragment;       /* any fragment */
    bool later_fragment; /* offset > 0: not classified */
    bool pure_syn;
    bool has_sport; /* UDP: the source port alone (2 bytes) was captured */
    bool has_ports, has_flags, has_seq, has_win, has_icmp;
    uint16_t sport, dport;
    uint8_t tcp_flags;
    uint32_t seq;
    uint16_t win;
    int8_t tcp_opts; /* enum cap_tcpopts */
    uint16_t ipid;
    uint8_t ttl; /* IPv4 TTL / IPv6 hop limit */
    uint8_t icmp_type, icmp_code;
    bool has_victim; /* backscatter: the host that answered the spoofed flood */
    struct ds_addr victim;
};

#define CAP_TCP_FIN 0x01
#define CAP_TCP_SYN 0x02
#define CAP_TCP_RST 0x04
#define CAP_TCP_PSH 0x08
#define CAP_TCP_ACK 0x10

/* Decodes link, IP and transport headers (no I/O, never reads past caplen). On CAP_COUNTED or
 * CAP_IGNORED(non_ip) *reason is meaningful as the enum of the outcome. Darknet membership is
 * checked separately by cap_darknet_check(). Classifies the packet too (cap_classify()). */
enum cap_outcome cap_decode(const struct cap_frame *f, struct cap_pkt *out, int *reason);

/* Sets out->cls, out->tools, out->pure_syn and the victim, from the decoded fields. */
void cap_classify(struct cap_pkt *p);

/* CAP_COUNTED when dst is in darknet and not in exclude; else CAP_IGNORED with *reason. *prefix
 * gets the index of the darknet prefix hit. */
enum cap_outcome cap_darknet_check(const struct ds_prefixset *darknet,
                                   const struct ds_prefixset *exclude, const struct cap_pkt *p,
                                   int *reason, int *prefix);

#endif

/* ---------------------------------------------------------------- aggregation (agg.c) */

#define CAP_DST_EXACT  16  /* distinct destinations kept exactly per source, then estimated */
#define CAP_DST_SLOTS  32  /* open-addressing set holding the exact ones */
#define CAP_HLL_REGS   256 /* registers of the per-source destination estimate */
#define CAP_PORTS_KEPT 8   /* space-saving table of a source's busiest ports */

/* What a source rarely needs: allocated on its second distinct destination or port. */
struct cap_src_ext {
    /* the port table first: every packet with a port reads it (one or two cache lines) */
    unsigned n_ports;
    uint64_t ports_distinct;
    struct {
        uint32_t count;
        uint16_t port;
        uint8_t proto;
    } ports[CAP_PORTS_KEPT];
    uint8_t *hll;                /* CAP_HLL_REGS registers once past CAP_DST_EXACT */
    uint32_t dst[CAP_DST_SLOTS]; /* set of hashes of distinct destinations (0 = empty) */
    struct rds_sample samples[RDS_SOURCE_SAMPLES - 1];
};

/* Field order matters: what every packet updates sits in the first two cache lines (the
 * aggregation prefetches both), the sample and export-time fields after them. */
struct cap_src {
    /* line 0 */
    struct ds_addr addr;
    uint8_t protos;
    uint8_t n_samples;
    uint8_t port0_proto; /* first port, when the source has one port */
    bool has_port0;
    uint16_t port0;
    uint32_t n_dst; /* exact distinct destinations while <= CAP_DST_EXACT */
    uint32_t dst0;  /* first destination's hash */
    uint32_t pure_syns;
    uint64_t packets, bytes;
    ds_time_ns last;
    struct cap_src_ext *ext;
    /* line 1 */
    ds_time_ns first;
    uint32_t by_class[DS_CLASS_N];
    uint32_t tool[DS_TOOL_N];
    uint64_t port0_count;
    uint64_t prefixes;
    /* the first packet's summary, and fields filled at export (flusher thread) */
    struct rds_sample sample0;
    char cc[3];
    bool has_location;
    float lat, lon;
    uint32_t asn;
} __attribute__((aligned(64)));

struct cap_victim {
    struct rds_victim v;
};

/* ---------------------------------------------------------------- memory (table.c) */

/* Zeroed memory; blocks of 2 MiB and more are mapped with transparent huge pages (random access
 * over a million sources is TLB-bound otherwise, the more so in a virtual machine). */
void *cap_mem_alloc(size_t bytes);
void cap_mem_free(void *p, size_t bytes);

/* Memory a table or arena will need soon, mapped early and faulted in by a helper thread so the
 * capture thread does not pay for the page faults (blocks of 2 MiB and more; smaller ones are
 * left to cap_mem_alloc). */
struct cap_spare {
    void *p;
    size_t bytes;
};

/* Maps `bytes` (replacing a spare of another size) and queues it to be faulted in. */
void cap_spare_want(struct cap_spare *s, size_t bytes);
/* The spare when it has exactly `bytes`, else freshly allocated memory (cap_mem_alloc); zeroed
 * either way. */
void *cap_spare_take(struct cap_spare *s, size_t bytes);
void cap_spare_fini(struct cap_spare *s);

/* A bump allocator of zeroed memory in growing chunks (huge pages from 2 MiB): every record of a
 * bucket lives in its arena and dies with it. */
struct cap_arena {
    struct cap_chunk *chunks;
    char *cur;
    size_t left, next_bytes;
    struct cap_spare spare; /* the next chunk */
};

void *cap_arena_alloc(struct cap_arena *a, size_t n);
/* Moves src's chunks to dst (merging buckets moves records between them). */
void cap_arena_take(struct cap_arena *dst, struct cap_arena *src);
void cap_arena_fini(struct cap_arena *a);

/* ---------------------------------------------------------------- address tables (table.c) */

struct cap_slot {
    uint64_t h; /* ds_addr_hash of the entry's address */
    void *p;    /* the entry; NULL = free */
};

/* Open addressing, linear probing, load at most 1/2 (3/4 when memory runs out), at most `max`
 * entries. Iterate with: for (i < cap) if (slot[i].p) ... */
struct cap_table {
    struct cap_slot *slot;
    size_t cap, n, max;
    size_t addr_offset;    /* of the struct ds_addr inside an entry */
    struct cap_spare next; /* the doubled slots, from a load of 2/5 */
};

void cap_table_init(struct cap_table *t, size_t addr_offset, size_t max);
/* Frees the slots, and every entry with free_entry when not NULL. */
void cap_table_fini(struct cap_table *t, void (*free_entry)(void *));
void *cap_table_find(const struct cap_table *t, const struct ds_addr *a, uint64_t h);
/* The slot of a (its entry pointer, NULL when a is new), or NULL when a is new and the table is
 * full. After storing a new entry in the slot, call cap_table_added(). */
void **cap_table_slot(struct cap_table *t, const struct ds_addr *a, uint64_t h);
void cap_table_added(struct cap_table *t);

/* A pair (source, proto/port) seen, for exact distinct sources per port. */
struct cap_pair {
    uint64_t src_hash; /* 0 = empty slot */
    uint32_t pp;       /* proto << 16 | port */
};

/* One bucket's aggregate in one thread (a part) or merged. Every table has a maximum; what does
 * not fit is counted in tot.sources_dropped. */
struct cap_bucket {
    int64_t start, seconds;
    /* parts of the same bucket from the worker's lanes, merged into this one by the coordinator
     * before anything else (lane.c); NULL otherwise */
    struct cap_bucket *lane_parts;
    bool late; /* a part for a bucket its worker had already handed over */
    struct rds_totals tot;
    uint64_t port_packets[2][65536]; /* [tcp=0/udp=1][port] */
    uint32_t port_sources[2][65536];
    uint64_t *per_second; /* seconds entries */

    struct cap_arena arena; /* sources, their extensions, victims */
    struct cap_table src;   /* struct cap_src by address */
    struct cap_table vic;   /* struct cap_victim by address */
    struct cap_pair *pairs;
    size_t pair_cap, pair_n, pair_max;
    struct cap_spare pair_next; /* the doubled pair set, from a load of 2/5 */
};

struct cap_bucket *cap_bucket_new(int64_t start, int64_t seconds, size_t max_sources);
void cap_bucket_free(struct cap_bucket *b);
/* Adds a counted packet; prefix is the darknet prefix index it hit, h = ds_addr_hash(&p->src). */
void cap_bucket_add(struct cap_bucket *b, const struct cap_pkt *p, int prefix, uint64_t h);
/* Prefetch hints for a batch of packets: the source's table slot, then (once the slot is in
 * cache) its entry. They change nothing. */
void cap_bucket_prefetch_slot(const struct cap_bucket *b, uint64_t h);
void cap_bucket_prefetch_entry(const struct cap_bucket *b, uint64_t h);
void cap_bucket_prefetch_ext(const struct cap_bucket *b, const struct cap_pkt *p, uint64_t h);
void cap_bucket_count_ignored(struct cap_bucket *b, int reason);
void cap_bucket_count_malformed(struct cap_bucket *b, int reason);
/* Merges src into dst (same start); src is left empty but valid. */
void cap_bucket_merge(struct cap_bucket *dst, struct cap_bucket *src);
/* Fills a flat record from a source entry (ports busiest first, at most ports_max). */
void cap_src_export(const struct cap_src *s, unsigned ports_max, struct rds_source *out);

/* ---------------------------------------------------------------- sources */

enum cap_next {
    CAP_NEXT_PACKET = 1,
    CAP_NEXT_TIMEOUT = 0, /* live: nothing within the read timeout */
    CAP_NEXT_END = -1,    /* file: no more packets */
    CAP_NEXT_ERROR = -2,  /* read error: files stop, interfaces reopen */
};

struct cap_source;

/* A backend: one file each (source_file.c, source_live.c), as libpcap and zmap do. */
struct cap_source_ops {
    const char *kind;
    int (*open)(struct cap_source *s, char *err, size_t errlen);
    enum cap_next (*next)(struct cap_source *s, struct cap_frame *out);
    void (*close)(struct cap_source *s);
};

struct cap_source {
    const struct cap_source_ops *ops;
    const struct ds_config *cfg;
    const _Atomic bool *stop; /* the capture's stop flag (set from a signal handler) */
    char *name;               /* file path or interface name */
    void *pcap;               /* pcap_t */
    int dlt;
    bool live;
    char error[512]; /* last read error */
    /* live: kernel counters as 64-bit totals across reopens and 32-bit wraps */
    uint64_t kernel_received, kernel_dropped, ifdrops;
    uint32_t last_recv, last_drop, last_ifdrop;
    uint64_t reopens;
    /* files with --speed: pacing */
    ds_time_ns pace_first_pkt, pace_first_wall;
};

extern const struct cap_source_ops cap_source_file_ops;
extern const struct cap_source_ops cap_source_live_ops;
/* Live: folds pcap_stats into the 64-bit totals. */
void cap_source_live_stats(struct cap_source *s);

/* ---------------------------------------------------------------- workers and coordinator */

#define CAP_LIVE_RING 1024
/* Software pipeline of counted packets: a packet's table slot is prefetched when it is decoded,
 * its entry CAP_STAGE packets later, its entry's extension another CAP_STAGE later, and it is
 * aggregated after that: the memory latency of a lookup overlaps with decoding. */
#define CAP_STAGE 16
#define CAP_BATCH (4 * CAP_STAGE) /* ring size, a power of 2 above 3 stages */

struct cap_pending {
    struct cap_pkt p;
    struct cap_bucket *b;
    int prefix;
    uint64_t h;
};

/* A ring of counted packets not yet aggregated (lane.c). */
struct cap_pipe {
    struct cap_pending batch[CAP_BATCH];
    unsigned head, n;
};

/* Enters a counted packet (h = ds_addr_hash of its source) and advances the pipeline a step. */
void cap_pipe_push(struct cap_pipe *q, const struct cap_pkt *p, struct cap_bucket *b, int prefix,
                   uint64_t h);
/* Aggregates every packet still in the pipeline, in order. */
void cap_pipe_drain(struct cap_pipe *q);

struct cap_lane;
#define CAP_LANE_BLOCK 256 /* packets handed to a lane at a time */
#define CAP_LANES_MAX  16

struct cap_live_event {
    ds_time_ns ts;
    struct ds_addr src;
    uint16_t dport;
    uint8_t proto, cls, tools;
};

struct cap_capture;

struct cap_worker {
    struct cap_capture *cap;
    unsigned id;
    struct cap_source src;
    pthread_t thread;
    bool started;

    /* owned by the worker thread; handed_upto is its own copy */
    struct cap_bucket *open[8];
    unsigned n_open;
    struct cap_pipe pipe;   /* counted packets of lane 0 not yet aggregated */
    struct cap_lane *lanes; /* lanes 1 .. n_lanes - 1 (lane.c) */
    unsigned n_lanes;       /* 1: the worker aggregates every packet itself */
    double tokens;
    ds_time_ns tokens_at;
    unsigned token_check;
    ds_time_ns token_ts; /* packet time of the last refill check */
    uint64_t seen_local; /* counted packets not yet added to live_seen */
    uint64_t seen_class_local[DS_CLASS_N];
    unsigned cap_workers; /* how many workers share live.max_events_per_second */

    int64_t handed_upto;
    int64_t next_due;   /* watermark at which the oldest open bucket is due */
    ds_time_ns late_at; /* when late parts were last handed over (wall clock or packet time) */

    /* shared with the coordinator, guarded by cap->lock */
    int64_t done_upto; /* every part ending at or before this was handed over */
    bool finished;
    bool failed;
    uint64_t frames;

    /* counters for the sensor record, guarded by live_lock */
    uint64_t stat_frames, stat_received, stat_dropped, stat_ifdropped, stat_reopens;

    /* live events, guarded by live_lock */
    pthread_mutex_t live_lock;
    struct cap_live_event live[CAP_LIVE_RING];
    unsigned live_n;
    uint64_t live_seen, live_dropped;
    uint64_t live_seen_class[DS_CLASS_N];
    int64_t live_bucket_start; /* the newest open bucket (-1: none) and its sources so far */
    uint64_t live_bucket_sources;
};

void *cap_worker_main(void *arg);

/* Aggregation lanes of a worker (lane.c): lane 0 is the worker, lanes 1 .. n-1 threads that
 * aggregate the sources hashed to them. Start returns how many lanes there are (fewer than n
 * when threads could not be started). */
unsigned cap_lanes_start(struct cap_worker *w, unsigned n);
/* Lane of a source (its address hash), in 0 .. n - 1, from the hash's top bits, which neither
 * the tables' slots nor the shards use. Lane 0, the worker, also reads and decodes every packet:
 * it gets half the share of the others (n = 2: a third of the sources). */
static inline unsigned cap_lane_of(uint64_t h, unsigned n)
{
    unsigned unit = (unsigned)(((h >> 32) * (2 * n - 1)) >> 32);

    return (unit + 1) / 2;
}
/* Queues a counted packet for lane (>= 1), for the bucket of start; false without memory. */
bool cap_lanes_push(struct cap_worker *w, unsigned lane, const struct cap_pkt *p, int64_t start,
                    bool late, int prefix, uint64_t h);
/* Every lane aggregates what it was given, then gives back its parts of the buckets the worker
 * is handing over: those due at watermark (every one at INT64_MAX), late ones when late_due, and
 * the one of evict_start. Returns them once all lanes have, as a list linked by lane_parts. */
struct cap_bucket *cap_lanes_sync(struct cap_worker *w, int64_t watermark, bool late_due,
                                  int64_t evict_start);
/* Moves the parts of b's start from the list *parts to b->lane_parts. */
void cap_lanes_attach(struct cap_bucket **parts, struct cap_bucket *b);
/* Sources in the lanes' buckets of start so far (for the live counters; approximate). */
uint64_t cap_lanes_sources(struct cap_worker *w, int64_t start);
/* Stops the lane threads (after a final sync). */
void cap_lanes_stop(struct cap_worker *w);
/* Worker → coordinator: hands over a closed part (takes ownership of b); reports that every part
 * ending at or before upto has been handed over; reports the end of the source. */
void cap_capture_take_part(struct cap_capture *c, struct cap_worker *w, struct cap_bucket *b);
void cap_capture_progress(struct cap_capture *c, struct cap_worker *w, int64_t upto);
void cap_capture_finished(struct cap_capture *c, struct cap_worker *w, bool failed);
bool cap_capture_stopping(const struct cap_capture *c);
const struct ds_config *cap_capture_config(const struct cap_capture *c);

/* ---------------------------------------------------------------- flushing (flush.c) */

struct cap_job {
    struct cap_bucket *b;
    uint64_t flush_id;
    struct cap_job *next;
};

struct cap_flusher;

struct cap_flusher *cap_flusher_new(const struct ds_config *cfg, const struct ds_geoip *geo,
                                    const struct ds_user *user, char *err, size_t errlen);
/* Connects now (starting the embedded Redis while still root); failures are retried later. */
void cap_flusher_connect(struct cap_flusher *f);
DS_WARN_UNUSED int cap_flusher_start(struct cap_flusher *f);
/* Queues a bucket (takes ownership). Drops the oldest queued bucket when the queue is full. */
void cap_flusher_push(struct cap_flusher *f, struct cap_bucket *b, uint64_t flush_id);
/* Writes what is queued, giving up after redis.flush_timeout without Redis; joins the thread.
 * Returns the number of buckets that could not be written. */
uint64_t cap_flusher_finish(struct cap_flusher *f);
void cap_flusher_free(struct cap_flusher *f);
/* Latest per-source kernel statistics to publish with the sensor record (JSON, borrowed). */
void cap_flusher_set_sources(struct cap_flusher *f, json_t *sources_take);

/* ---------------------------------------------------------------- live events (live.c) */

struct cap_live;

struct cap_live *cap_live_new(const struct ds_config *cfg, const struct ds_geoip *geo,
                              struct cap_worker *workers, unsigned n_workers,
                              const struct ds_user *user);
DS_WARN_UNUSED int cap_live_start(struct cap_live *l);
void cap_live_stop(struct cap_live *l);
void cap_live_free(struct cap_live *l);
