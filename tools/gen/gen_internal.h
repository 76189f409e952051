/*
 * gen_internal.h - internal interfaces of darkscope-gen, the synthetic darknet traffic generator.
 *
 * darkscope-gen writes an Ethernet pcap of realistic network-telescope traffic and a JSON ground
 * truth that states, exactly, what darkscope must count for that file under the rules of
 * docs/classification.md.  The truth is exact by construction: every frame is first described as a
 * struct gen_pkt, the frame bytes are rendered from that description (gen_packet.c), and the same
 * description is classified by a pure implementation of the documented rules (gen_classify.c)
 * before it is added to the truth (gen_truth.c).  Generators re-roll random fields until the
 * classification is the one they intended, so no packet carries a chance tool fingerprint.
 *
 * Pipeline, one frame at a time, all streaming:
 *   gen_pop_draw (which source speaks next) -> gen_traffic_make (fill a gen_pkt)
 *   -> gen_frame_build (bytes) -> gen_classify (verdict) -> gen_truth_add + pcap_dump.
 *
 * Threading: single-threaded.  Ownership: every _new has a _free that accepts NULL; pointers
 * returned by accessors are borrowed and live as long as their owner.
 */
#ifndef DARKSCOPE_GEN_INTERNAL_H
#define DARKSCOPE_GEN_INTERNAL_H

/* timegm, gmtime_r, inet_ntop, getopt_long; this header is included first by every file. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define GEN_WUR __attribute__((warn_unused_result))

/* Limits: every table and buffer has one. */
#define GEN_MAX_DARKNETS 64
#define GEN_MAX_FRAMES   200000000ULL /* --packets / rate x duration */
#define GEN_MAX_SOURCES  50000000ULL
#define GEN_MAX_BUCKETS  1000000ULL
#define GEN_MAX_EDGE     1000000L /* frames per edge kind */
#define GEN_PAYLOAD_MAX  1400
#define GEN_FRAME_MAX    1600
#define GEN_ERRLEN       256

/* ---- PRNG (gen_rng.c): xoshiro256** seeded through splitmix64; never rand(). ---- */
struct gen_rng {
    uint64_t s[4];
};

void gen_rng_seed(struct gen_rng *r, uint64_t seed, uint64_t stream);
uint64_t gen_rng_next(struct gen_rng *r);
/* Uniform in [0, n); n > 0. */
uint32_t gen_rng_below(struct gen_rng *r, uint32_t n);
uint64_t gen_rng_below64(struct gen_rng *r, uint64_t n);
/* Uniform in [lo, hi], lo <= hi. */
uint32_t gen_rng_range(struct gen_rng *r, uint32_t lo, uint32_t hi);
double gen_rng_unit(struct gen_rng *r);
bool gen_rng_chance(struct gen_rng *r, double p);
/* Index drawn from weights[0..n) (non-negative, sum > 0). */
size_t gen_rng_weighted(struct gen_rng *r, const double *weights, size_t n);
void gen_rng_fill(struct gen_rng *r, uint8_t *buf, size_t len);
/* splitmix64 finaliser: a good 64-bit mixer, also used by the hash tables. */
uint64_t gen_mix64(uint64_t x);

#define GEN_DIST_MAX_PARTS 16
/* Splits total into n <= GEN_DIST_MAX_PARTS parts proportional to w (largest remainder). */
void gen_dist_apportion(uint64_t total, const double *w, size_t n, uint64_t *out);
/* Fills quota[0..n) with 1 + a Lomax(alpha) share of total - n each, softly capped near
 * cap_share of it; the quotas add up to total exactly.  -EINVAL if total < n. */
GEN_WUR int gen_dist_quotas(struct gen_rng *r, uint32_t *quota, uint64_t n, uint64_t total,
                            double alpha, double cap_share);

/* ---- Addresses and prefixes (gen_addr.c) ---- */
struct gen_addr {
    uint8_t b[16];  /* IPv4 in b[0..3], rest zero */
    uint8_t family; /* 4 or 6 */
};

struct gen_prefix {
    struct gen_addr net;
    uint8_t len;
};

/* The darknet: prefixes in command-line order plus per-family views for drawing addresses. */
struct gen_darknet {
    struct gen_prefix all[GEN_MAX_DARKNETS];
    size_t n;
    size_t idx4[GEN_MAX_DARKNETS], n4;
    size_t idx6[GEN_MAX_DARKNETS], n6;
    double weight4[GEN_MAX_DARKNETS]; /* address count of each IPv4 prefix */
};

/* Hands out distinct routable source addresses (IPv4 through a keyed 32-bit bijection). */
struct gen_addrgen {
    const struct gen_darknet *dn;
    uint32_t key;
    uint64_t counter;
    struct gen_rng rng;
};

uint32_t gen_addr_v4(const struct gen_addr *a);
void gen_addr_set_v4(struct gen_addr *a, uint32_t v);
bool gen_addr_equal(const struct gen_addr *a, const struct gen_addr *b);
int gen_addr_compare(const struct gen_addr *a, const struct gen_addr *b);
uint64_t gen_addr_hash(const struct gen_addr *a);
/* Formats into buf (at least 46 bytes); returns buf. */
const char *gen_addr_format(const struct gen_addr *a, char *buf, size_t len);
GEN_WUR int gen_prefix_parse(const char *s, struct gen_prefix *p, char *err, size_t errlen);
const char *gen_prefix_format(const struct gen_prefix *p, char *buf, size_t len);
bool gen_prefix_contains(const struct gen_prefix *p, const struct gen_addr *a);

GEN_WUR int gen_darknet_add(struct gen_darknet *dn, const struct gen_prefix *p, char *err,
                            size_t errlen);
bool gen_darknet_contains(const struct gen_darknet *dn, const struct gen_addr *a);
/* A random address inside the darknet of the given family (which must have a prefix). */
void gen_darknet_pick(const struct gen_darknet *dn, struct gen_rng *r, int family,
                      struct gen_addr *out);

void gen_addrgen_init(struct gen_addrgen *g, const struct gen_darknet *dn, uint64_t seed);
/* A never-before-returned routable unicast IPv4 source; -ENOSPC when the space is used up. */
GEN_WUR int gen_addrgen_next4(struct gen_addrgen *g, struct gen_addr *out);
/* A random global unicast IPv6 source (2000::/3 minus 2001:db8::/32 and the darknet). */
void gen_addrgen_next6(struct gen_addrgen *g, struct gen_addr *out);
bool gen_addr_routable4(const struct gen_darknet *dn, uint32_t a);
/* A routable IPv4 address outside the darknet drawn from r (not unique). */
void gen_addr_random4(const struct gen_darknet *dn, struct gen_rng *r, struct gen_addr *out);

/* ---- Configuration (gen_args.c) ---- */
enum gen_beh {
    GEN_BEH_SCAN4 = 0,
    GEN_BEH_SCAN6,
    GEN_BEH_BACKSCATTER,
    GEN_BEH_UDP,
    GEN_BEH_ICMP,
    GEN_BEH_OTHER,
    GEN_BEH_COUNT
};

enum gen_tool {
    GEN_TOOL_MIRAI = 0,
    GEN_TOOL_ZMAP,
    GEN_TOOL_MASSCAN,
    GEN_TOOL_NMAP,
    GEN_TOOL_COUNT,
    GEN_TOOL_NONE = GEN_TOOL_COUNT
};

/* Hostile and edge-case frames, a handful of each kind. */
enum gen_edge {
    GEN_EDGE_FRAG4 = 0, /* pairs: first fragment of a UDP probe, then a later fragment */
    GEN_EDGE_FRAG6,     /* the same with an IPv6 fragment header */
    GEN_EDGE_V6EXT,     /* IPv6 hop-by-hop and/or destination options before a TCP SYN */
    GEN_EDGE_TRUNC_SYN14,
    GEN_EDGE_TRUNC_SYN8,
    GEN_EDGE_TRUNC_UDP,
    GEN_EDGE_TRUNC_ICMP,
    GEN_EDGE_NOT_DARKNET,
    GEN_EDGE_ARP,
    GEN_EDGE_IP_TRUNC,
    GEN_EDGE_VLAN_SYN,
    GEN_EDGE_COUNT
};

struct gen_mix {
    double beh[GEN_BEH_COUNT];   /* relative packet weights */
    double tool[GEN_TOOL_COUNT]; /* percent of IPv4 scanning sources */
    long edge_each;              /* frames per edge kind; -1 = automatic */
    bool beh_set[GEN_BEH_COUNT]; /* named in --mix: a named group replaces its defaults */
    bool tool_set[GEN_TOOL_COUNT];
};

struct gen_config {
    const char *out_path;
    const char *truth_path;
    uint64_t seed;
    uint64_t frames;     /* frames written */
    int64_t start_us;    /* Unix microseconds */
    int64_t duration_us; /* frames spread over [start, start + duration) */
    struct gen_darknet darknet;
    uint64_t sources; /* population size; 0 = frames / 10 */
    bool source_truth;
    uint32_t bucket_seconds;
    struct gen_mix mix;
};

/* Returns 0, or -EINVAL with one line in err; 1 when --help was asked. */
GEN_WUR int gen_args_parse(int argc, char **argv, struct gen_config *cfg, char *err, size_t errlen);
void gen_args_usage(FILE *f);
/* RFC 3339 helpers; format writes "YYYY-MM-DDTHH:MM:SS[.ffffff]Z". */
GEN_WUR int gen_time_parse(const char *s, int64_t *us);
const char *gen_time_format(int64_t us, bool micros, char *buf, size_t len);

/* ---- Packet description and rendering (gen_packet.c) ---- */
enum gen_link {
    GEN_LINK_ETH = 0,
    GEN_LINK_VLAN,
    GEN_LINK_ARP
};

enum gen_l4 {
    GEN_L4_TCP = 0,
    GEN_L4_UDP,
    GEN_L4_ICMP, /* ICMP over IPv4, ICMPv6 over IPv6 */
    GEN_L4_RAW   /* payload straight after the IP (and extension) headers */
};

#define GEN_TCP_FIN 0x01
#define GEN_TCP_SYN 0x02
#define GEN_TCP_RST 0x04
#define GEN_TCP_PSH 0x08
#define GEN_TCP_ACK 0x10
#define GEN_TCP_URG 0x20

struct gen_pkt {
    uint8_t link;   /* enum gen_link */
    uint8_t l4;     /* enum gen_l4 */
    uint8_t family; /* 4 or 6 */
    uint8_t proto;  /* IPv4 protocol / IPv6 upper-layer next header */
    uint16_t vlan;
    struct gen_addr src, dst;
    uint8_t ttl, tos;
    bool df;
    uint16_t ipid;
    uint32_t flowlabel;
    /* fragments: IPv4 flags/offset, or an IPv6 fragment header when family == 6 */
    bool frag, mf;
    uint16_t frag_off; /* 8-byte units */
    uint32_t frag_ident;
    uint8_t n_ext; /* IPv6 extension headers before the fragment header / transport */
    uint8_t ext[2];
    /* transport; l4_verbatim: payload already holds the transport header and data */
    bool l4_verbatim;
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags, optlen;
    uint16_t window;
    uint8_t opts[40];
    uint8_t icmp_type, icmp_code;
    uint32_t icmp_rest; /* ICMP header bytes 4..7 (identifier and sequence, or unused) */
    bool has_quote;     /* ICMP error: payload is the quoted packet */
    struct gen_addr quote_dst;
    /* capture: -1 = whole frame, else the frame ends after that many transport / IP bytes */
    int16_t cut_l4, cut_ip;
    uint16_t paylen;
    uint8_t payload[GEN_PAYLOAD_MAX];
};

struct gen_frame {
    uint32_t caplen, wirelen;
    uint32_t ip_len;  /* IPv4 total length or 40 + IPv6 payload length */
    uint32_t l4_len;  /* transport bytes on the wire (0 for ARP) */
    uint32_t l4_cap;  /* transport bytes captured */
    bool ip_complete; /* the whole IP header was captured */
};

/* Resets p to an Ethernet/IPv4 frame with no fields set and nothing cut. */
void gen_pkt_reset(struct gen_pkt *p);
GEN_WUR int gen_frame_build(const struct gen_pkt *p, uint8_t *buf, size_t cap,
                            struct gen_frame *fr);
/* Renders an IPv4 or IPv6 header + 8 transport bytes as quoted in an ICMP error. */
size_t gen_quote_build(const struct gen_pkt *q, uint8_t *buf, size_t cap);
/* Internet checksum pieces: add bytes (odd length only for the last piece), the TCP/UDP/ICMPv6
 * pseudo-header, then fold and complement. */
uint16_t gen_csum_finish(uint32_t sum);
uint32_t gen_csum_pseudo(const struct gen_addr *src, const struct gen_addr *dst, uint8_t proto,
                         uint32_t len);
uint32_t gen_csum_add(uint32_t sum, const uint8_t *b, size_t len);

/* ---- Classification (gen_classify.c): docs/classification.md on a gen_pkt ---- */
enum gen_outcome {
    GEN_OUT_COUNTED = 0,
    GEN_OUT_IGNORED,
    GEN_OUT_MALFORMED
};
enum gen_reason {
    GEN_IGN_NON_IP = 0,
    GEN_IGN_NOT_DARKNET,
    GEN_MAL_IP_TRUNCATED
};
enum gen_class {
    GEN_CLASS_SCAN = 0,
    GEN_CLASS_BACKSCATTER,
    GEN_CLASS_UDP_PROBE,
    GEN_CLASS_ICMP_PROBE,
    GEN_CLASS_OTHER,
    GEN_CLASS_COUNT
};
enum gen_proto {
    GEN_PROTO_TCP = 0,
    GEN_PROTO_UDP,
    GEN_PROTO_ICMP,
    GEN_PROTO_OTHER,
    GEN_PROTO_COUNT
};

struct gen_verdict {
    uint8_t outcome, reason;
    uint8_t cls, proto;
    uint8_t tools;      /* bit per enum gen_tool */
    bool pure_syn4;     /* IPv4 class scan: the denominator of tool attribution */
    int8_t truncated;   /* enum gen_proto (tcp/udp/icmp) or -1 */
    bool has_port;      /* a readable destination port (tcp/udp, first fragment) */
    uint8_t port_proto; /* 0 tcp, 1 udp */
    uint16_t port;
    bool has_victim;
    struct gen_addr victim;
    uint32_t ip_len;
};

extern const char *const gen_class_names[GEN_CLASS_COUNT];
extern const char *const gen_proto_names[GEN_PROTO_COUNT];
extern const char *const gen_tool_names[GEN_TOOL_COUNT];

void gen_classify(const struct gen_pkt *p, const struct gen_frame *fr, const struct gen_darknet *dn,
                  struct gen_verdict *v);
/* Tool rules matched by an IPv4 TCP packet given the transport bytes captured. */
uint8_t gen_classify_tools(const struct gen_pkt *p, uint32_t l4_cap);

/* ---- Source population and scheduling (gen_population.c) ---- */
struct gen_source {
    struct gen_addr addr;
    uint8_t kind;  /* enum gen_beh, or GEN_BEH_COUNT + enum gen_edge for edge pseudo-sources */
    uint8_t tool;  /* enum gen_tool */
    uint8_t sub;   /* behaviour-specific profile */
    uint8_t ttl;   /* received TTL / hop limit */
    uint16_t port; /* fixed destination (or service) port, 0 = per packet */
    uint16_t sport;
    uint16_t ipid; /* next IP ID for sources that count */
    uint16_t seqno;
    uint32_t ident; /* per-source constant (ICMP id, nonce) */
};

struct gen_pop;

struct gen_pop *gen_pop_new(const struct gen_config *cfg, struct gen_addrgen *ag, char *err,
                            size_t errlen);
void gen_pop_free(struct gen_pop *pop);
/* Draws the source of the next frame: a uniformly random order of the multiset of quotas. */
/* Frames of one edge kind for this configuration (0 when the kind is disabled). */
uint64_t gen_pop_edge_frames(const struct gen_config *cfg, enum gen_edge kind);
uint64_t gen_pop_edge_total(const struct gen_config *cfg);
GEN_WUR int gen_pop_draw(struct gen_pop *pop, struct gen_rng *r, struct gen_source **out);
/* Takes the next frame from s itself (a fragment's follow-up); -ENOENT if its quota is spent. */
GEN_WUR int gen_pop_take(struct gen_pop *pop, struct gen_source *s);
uint64_t gen_pop_size(const struct gen_pop *pop);

/* ---- Traffic (gen_traffic.c, gen_scan.c, gen_edge.c) ---- */
struct gen_fragstate {
    bool pending;
    struct gen_pkt first; /* header fields shared by both fragments */
    uint16_t total, sent; /* datagram bytes (UDP header + data) and bytes already sent */
    uint8_t data[GEN_PAYLOAD_MAX + 200];
};

struct gen_traffic {
    const struct gen_config *cfg;
    const struct gen_darknet *dn;
    struct gen_addrgen *ag;
    struct gen_fragstate frag4, frag6;
    bool follow; /* the next frame must come from the same source (a later fragment) */
};

GEN_WUR int gen_traffic_make(struct gen_traffic *t, struct gen_source *s, struct gen_rng *r,
                             struct gen_pkt *p);
GEN_WUR int gen_scan_make(struct gen_traffic *t, struct gen_source *s, struct gen_rng *r,
                          struct gen_pkt *p);
/* A tool-less IPv4 SYN from s (whose sub selects Linux, Windows or bare options) to p->dst. */
GEN_WUR int gen_scan_syn_none(struct gen_source *s, struct gen_rng *r, struct gen_pkt *p);
GEN_WUR int gen_other_make(struct gen_traffic *t, struct gen_source *s, struct gen_rng *r,
                           struct gen_pkt *p);
GEN_WUR int gen_edge_make(struct gen_traffic *t, enum gen_edge kind, struct gen_rng *r,
                          struct gen_pkt *p);
void gen_udp_probe_fill(struct gen_rng *r, uint16_t service, struct gen_pkt *p);
uint16_t gen_port_ephemeral(struct gen_rng *r);
uint16_t gen_port_scan(struct gen_rng *r);

/* How gen_scan_settle may re-roll an IPv4 SYN's fields. */
#define GEN_SETTLE_SEQ_FIXED    0x1 /* Mirai: seq is the destination */
#define GEN_SETTLE_IPID_FIXED   0x2 /* ZMap: IP ID 54321 */
#define GEN_SETTLE_IPID_MASSCAN 0x4 /* Masscan: IP ID derived from dst, dport and seq */
#define GEN_SETTLE_IPID_COUNTER 0x8 /* IP ID is a per-host counter: step it */
/* Re-rolls random fields until exactly the tools in want match; -EAGAIN if that never happens. */
GEN_WUR int gen_scan_settle(struct gen_pkt *p, struct gen_rng *r, uint8_t want, unsigned how);

/* ---- Address tables (gen_table.c) ---- */
/* Open-addressing map keyed on all bits of an address; values are zeroed blobs of val_size. */
struct gen_addrtab {
    uint32_t *slots; /* 0 empty, else index + 1 */
    size_t mask;
    struct gen_addr *keys;
    uint8_t *vals;
    size_t val_size, count, cap, max;
};

GEN_WUR int gen_addrtab_init(struct gen_addrtab *t, size_t val_size, size_t max);
void gen_addrtab_fini(struct gen_addrtab *t);
/* Finds or inserts a; *idx is its dense index; *added tells whether it was new. */
GEN_WUR int gen_addrtab_upsert(struct gen_addrtab *t, const struct gen_addr *a, uint32_t *idx,
                               bool *added);
void *gen_addrtab_val(struct gen_addrtab *t, uint32_t idx);

/* Set of non-zero-able 64-bit keys (stored + 1). */
struct gen_u64set {
    uint64_t *slots;
    size_t mask, count, max;
};

GEN_WUR int gen_u64set_init(struct gen_u64set *s, size_t max);
void gen_u64set_fini(struct gen_u64set *s);
/* Returns 1 if inserted, 0 if present, negative errno on failure. */
GEN_WUR int gen_u64set_insert(struct gen_u64set *s, uint64_t key);
/* Moves the keys to the front of the slot array, sorted; returns their number. */
size_t gen_u64set_sort(struct gen_u64set *s, uint64_t **keys);

/* ---- Ground truth (gen_truth.c, gen_json.c) ---- */
struct gen_bucket {
    uint64_t packets, bytes;
    uint64_t by_class[GEN_CLASS_COUNT];
};

struct gen_srcstat {
    uint64_t bytes;
    int64_t first_us, last_us;
    uint32_t packets;
    uint32_t by_class[GEN_CLASS_COUNT];
    uint32_t syn4;
    uint32_t tool_hits[GEN_TOOL_COUNT];
};

struct gen_truth {
    const struct gen_config *cfg;
    uint64_t frames, packets, bytes;
    uint64_t by_class[GEN_CLASS_COUNT];
    uint64_t by_proto[GEN_PROTO_COUNT];
    uint64_t by_tool[GEN_TOOL_COUNT];
    uint64_t ignored_non_ip, ignored_not_darknet, malformed_ip_truncated;
    uint64_t truncated[3];
    int64_t first_us, last_us;
    int64_t bucket0; /* Unix seconds of bucket 0 */
    size_t n_buckets;
    struct gen_bucket *buckets;
    uint64_t port_packets[2][65536];
    uint32_t port_sources[2][65536];
    struct gen_addrtab sources; /* value: struct gen_srcstat, or nothing */
    struct gen_addrtab victims; /* value: uint64_t packets */
    struct gen_u64set pairs;    /* source index << 17 | port proto << 16 | port */
};

struct gen_truth *gen_truth_new(const struct gen_config *cfg, char *err, size_t errlen);
void gen_truth_free(struct gen_truth *t);
GEN_WUR int gen_truth_add(struct gen_truth *t, const struct gen_pkt *p, const struct gen_verdict *v,
                          int64_t ts_us);
/* The attribution rule of docs/classification.md; GEN_TOOL_NONE when no tool qualifies. */
int gen_truth_source_tool(const struct gen_srcstat *st);
/* Ordered views for the writer; returned arrays are the caller's to free (NULL: no memory). */
/* (proto << 16 | port) of every port with packets: packets descending, then tcp/udp, port. */
uint32_t *gen_truth_ports_sorted(const struct gen_truth *t, size_t *n);
/* Entry indices of a source (victims false) or victim table: packets descending, then address. */
uint32_t *gen_truth_entries_sorted(const struct gen_addrtab *tab, bool victims);
uint64_t gen_truth_entry_packets(const struct gen_addrtab *tab, uint32_t i, bool victims);
/* Distinct ports, ascending, of one source's sorted pair keys [lo, hi); out holds 65536. */
size_t gen_truth_source_ports(const uint64_t *keys, size_t lo, size_t hi, uint16_t *out);
GEN_WUR int gen_json_write(struct gen_truth *t, const char *path, char *err, size_t errlen);

#endif
