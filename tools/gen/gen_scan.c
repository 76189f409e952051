/*
 * gen_scan.c - TCP scanners (IPv4 with tool fingerprints, IPv6) and the "other" senders.
 *
 * Fingerprints follow docs/classification.md and the tools' sources:
 *   mirai   seq = destination address, no options, random window and IP ID, mostly 23/2323
 *   zmap    IP ID 54321, window 65535, TTL 255, no options
 *   masscan IP ID = (dst ^ dport ^ seq) & 0xffff, window 1024, no options
 *   nmap    window 1024/2048/3072/4096, exactly one option (MSS 1460), TTL 37-59
 *   none    Linux (MSS,SACK,TS,NOP,WS), Windows (MSS,NOP,WS,NOP,NOP,SACK) or bare stacks
 * Every IPv4 SYN goes through gen_scan_settle(), which re-rolls the free random fields until the
 * packet matches its own tool's rule and no other, so by_tool is exact by construction.
 */
#include "gen_internal.h"

#include <errno.h>
#include <string.h>

#define SETTLE_TRIES 64

/* Destination ports of scanners: telnet and IoT first, then the usual services, then anything.
 * 0 stands for a random port above 1023. */
static const uint16_t scan_ports[] = {
    23,   2323, 22,  80,   443, 445,  3389, 8080, 5555, 37215, 52869, 6379,  1433, 3306,
    8443, 21,   25,  8081, 81,  7547, 5900, 9200, 2375, 5432,  27017, 8000,  8888, 1080,
    3128, 135,  139, 110,  143, 993,  995,  5060, 7001, 9000,  6443,  10000, 0};
static const double scan_weights[] = {160, 30, 90, 80, 50, 70, 50, 40, 25, 20, 15, 15, 20, 15,
                                      15,  15, 12, 10, 10, 12, 12, 8,  8,  8,  6,  10, 8,  6,
                                      6,   10, 10, 5,  5,  5,  5,  5,  4,  6,  5,  5,  200};

/* Nmap's most common TCP ports, scanned in a random order. */
static const uint16_t nmap_ports[] = {
    80,    23,  443,  21,  22,   25,   3389, 110,  445,   139,  143, 53,   135,   3306, 8080,
    1723,  111, 995,  993, 5900, 1025, 587,  8888, 199,   1720, 465, 548,  113,   81,   6001,
    10000, 514, 5060, 179, 1026, 2000, 8443, 8000, 32768, 554,  26,  1433, 49152, 2001, 515};

static const uint16_t mirai_alt_ports[] = {37215, 52869, 5555, 80, 8080, 81, 7547};

uint16_t gen_port_scan(struct gen_rng *r)
{
    uint16_t port = scan_ports[gen_rng_weighted(r, scan_weights,
                                                sizeof(scan_weights) / sizeof(scan_weights[0]))];

    return port ? port : (uint16_t)gen_rng_range(r, 1024, 65535);
}

uint16_t gen_port_ephemeral(struct gen_rng *r)
{
    /* Linux's 32768-60999 or the IANA/Windows 49152-65535 range */
    if (gen_rng_chance(r, 0.5))
        return (uint16_t)gen_rng_range(r, 32768, 60999);
    return (uint16_t)gen_rng_range(r, 49152, 65535);
}

static void opt_mss(struct gen_pkt *p, uint16_t mss)
{
    uint8_t *o = p->opts + p->optlen;

    o[0] = 2;
    o[1] = 4;
    o[2] = (uint8_t)(mss >> 8);
    o[3] = (uint8_t)mss;
    p->optlen += 4;
}

/* MSS, SACK permitted, timestamps, NOP, window scale 7: a Linux SYN's 20 option bytes. */
static void opts_linux(struct gen_pkt *p, struct gen_rng *r, uint16_t mss)
{
    uint8_t *o;
    uint32_t tsval = (uint32_t)gen_rng_next(r);

    opt_mss(p, mss);
    o = p->opts + p->optlen;
    o[0] = 4;
    o[1] = 2;
    o[2] = 8;
    o[3] = 10;
    o[4] = (uint8_t)(tsval >> 24);
    o[5] = (uint8_t)(tsval >> 16);
    o[6] = (uint8_t)(tsval >> 8);
    o[7] = (uint8_t)tsval;
    memset(o + 8, 0, 4);
    o[12] = 1;
    o[13] = 3;
    o[14] = 3;
    o[15] = 7;
    p->optlen += 16;
}

/* MSS, NOP, window scale 8, NOP, NOP, SACK permitted: a Windows SYN's 12 option bytes. */
static void opts_windows(struct gen_pkt *p)
{
    static const uint8_t rest[] = {1, 3, 3, 8, 1, 1, 4, 2};

    opt_mss(p, 1460);
    memcpy(p->opts + p->optlen, rest, sizeof(rest));
    p->optlen += sizeof(rest);
}

static void syn_base(struct gen_source *s, struct gen_pkt *p)
{
    p->l4 = GEN_L4_TCP;
    p->proto = 6;
    p->family = s->addr.family;
    p->src = s->addr;
    p->ttl = s->ttl;
    p->flags = GEN_TCP_SYN;
}

int gen_scan_settle(struct gen_pkt *p, struct gen_rng *r, uint8_t want, unsigned how)
{
    for (int i = 0; i < SETTLE_TRIES; i++) {
        if (gen_classify_tools(p, 20u + p->optlen) == want)
            return 0;
        if (!(how & GEN_SETTLE_SEQ_FIXED))
            p->seq = (uint32_t)gen_rng_next(r);
        if (how & GEN_SETTLE_IPID_MASSCAN)
            p->ipid = (uint16_t)((gen_addr_v4(&p->dst) ^ p->dport ^ p->seq) & 0xffff);
        else if (how & GEN_SETTLE_IPID_COUNTER)
            p->ipid++;
        else if (!(how & GEN_SETTLE_IPID_FIXED))
            p->ipid = (uint16_t)gen_rng_next(r);
    }
    return -EAGAIN;
}

int gen_scan_syn_none(struct gen_source *s, struct gen_rng *r, struct gen_pkt *p)
{
    static const uint16_t bare_windows[] = {65535, 14600, 5840, 29200};
    unsigned how = 0;

    syn_base(s, p);
    p->sport = gen_port_ephemeral(r);
    p->seq = (uint32_t)gen_rng_next(r);
    switch (s->sub) {
    case 0:
    case 1:
        p->df = true;
        p->window = s->sub == 0 ? 64240 : 29200;
        p->ipid = (uint16_t)gen_rng_next(r);
        opts_linux(p, r, 1460);
        break;
    case 2:
        p->df = true;
        p->window = (s->ident & 1) ? 64240 : 8192;
        p->ipid = s->ipid++;
        how = GEN_SETTLE_IPID_COUNTER;
        opts_windows(p);
        break;
    default:
        p->window = bare_windows[s->ident % 4];
        p->ipid = (uint16_t)gen_rng_next(r);
        if (s->ident & 4)
            opt_mss(p, 1460);
        break;
    }
    if (gen_scan_settle(p, r, 0, how) != 0)
        return -EAGAIN;
    if (how == GEN_SETTLE_IPID_COUNTER)
        s->ipid = (uint16_t)(p->ipid + 1);
    return 0;
}

static int scan4_make(struct gen_traffic *t, struct gen_source *s, struct gen_rng *r,
                      struct gen_pkt *p)
{
    static const uint16_t nmap_windows[] = {1024, 2048, 3072, 4096};
    uint32_t dst;

    gen_darknet_pick(t->dn, r, 4, &p->dst);
    dst = gen_addr_v4(&p->dst);
    p->dport = s->port ? s->port : gen_port_scan(r);
    switch (s->tool) {
    case GEN_TOOL_MIRAI:
        syn_base(s, p);
        if (gen_rng_chance(r, 0.9)) {
            p->dport = gen_rng_chance(r, 8.0 / 9.0) ? 23 : 2323;
        } else {
            p->dport = mirai_alt_ports[gen_rng_below(r, sizeof(mirai_alt_ports) /
                                                            sizeof(mirai_alt_ports[0]))];
        }
        p->sport = (uint16_t)gen_rng_range(r, 1024, 65535);
        p->seq = dst;
        p->window = (uint16_t)gen_rng_next(r);
        p->ipid = (uint16_t)gen_rng_next(r);
        return gen_scan_settle(p, r, 1u << GEN_TOOL_MIRAI, GEN_SETTLE_SEQ_FIXED);
    case GEN_TOOL_ZMAP:
        syn_base(s, p);
        p->sport = (uint16_t)gen_rng_range(r, 32768, 61000);
        p->seq = (uint32_t)gen_rng_next(r);
        p->window = 65535;
        p->ipid = 54321;
        return gen_scan_settle(p, r, 1u << GEN_TOOL_ZMAP, GEN_SETTLE_IPID_FIXED);
    case GEN_TOOL_MASSCAN:
        syn_base(s, p);
        p->sport = s->sport;
        p->seq = (uint32_t)gen_rng_next(r);
        p->window = 1024;
        p->ipid = (uint16_t)((dst ^ p->dport ^ p->seq) & 0xffff);
        return gen_scan_settle(p, r, 1u << GEN_TOOL_MASSCAN, GEN_SETTLE_IPID_MASSCAN);
    case GEN_TOOL_NMAP:
        syn_base(s, p);
        p->ttl = (uint8_t)gen_rng_range(r, 37, 59);
        p->sport = s->sport;
        p->dport = nmap_ports[gen_rng_below(r, sizeof(nmap_ports) / sizeof(nmap_ports[0]))];
        p->seq = (uint32_t)gen_rng_next(r);
        p->window = nmap_windows[gen_rng_below(r, 4)];
        p->ipid = (uint16_t)gen_rng_next(r);
        opt_mss(p, 1460);
        return gen_scan_settle(p, r, 1u << GEN_TOOL_NMAP, 0);
    default:
        return gen_scan_syn_none(s, r, p);
    }
}

static void scan6_make(struct gen_traffic *t, struct gen_source *s, struct gen_rng *r,
                       struct gen_pkt *p)
{
    syn_base(s, p);
    gen_darknet_pick(t->dn, r, 6, &p->dst);
    p->flowlabel = (uint32_t)gen_rng_next(r) & 0xfffff;
    p->dport = s->port ? s->port : gen_port_scan(r);
    p->sport = gen_port_ephemeral(r);
    p->seq = (uint32_t)gen_rng_next(r);
    if (s->sub == 0) {
        p->window = 64800;
        opts_linux(p, r, 1440);
    } else {
        p->window = 65535;
        opt_mss(p, 1440);
    }
}

int gen_scan_make(struct gen_traffic *t, struct gen_source *s, struct gen_rng *r, struct gen_pkt *p)
{
    if (s->addr.family == 6) {
        scan6_make(t, s, r, p);
        return 0;
    }
    return scan4_make(t, s, r, p);
}

/* PPTP's enhanced GRE (version 1) carrying a PPP LCP echo request. */
static void gre_fill(struct gen_source *s, struct gen_rng *r, struct gen_pkt *p)
{
    uint8_t *b = p->payload;
    uint32_t seq = s->seqno++;
    uint32_t magic = s->ident;

    p->l4 = GEN_L4_RAW;
    p->proto = 47;
    b[0] = 0x30; /* key and sequence number present */
    b[1] = 0x01; /* version 1 */
    b[2] = 0x88;
    b[3] = 0x0b;
    b[4] = 0;
    b[5] = 12; /* payload length */
    b[6] = (uint8_t)(s->ident >> 24);
    b[7] = (uint8_t)(s->ident >> 16); /* call id */
    b[8] = (uint8_t)(seq >> 24);
    b[9] = (uint8_t)(seq >> 16);
    b[10] = (uint8_t)(seq >> 8);
    b[11] = (uint8_t)seq;
    b[12] = 0xff;
    b[13] = 0x03;
    b[14] = 0xc0;
    b[15] = 0x21; /* LCP */
    b[16] = 9;    /* echo request */
    b[17] = (uint8_t)gen_rng_next(r);
    b[18] = 0;
    b[19] = 8;
    b[20] = (uint8_t)(magic >> 24);
    b[21] = (uint8_t)(magic >> 16);
    b[22] = (uint8_t)(magic >> 8);
    b[23] = (uint8_t)magic;
    p->paylen = 24;
}

int gen_other_make(struct gen_traffic *t, struct gen_source *s, struct gen_rng *r,
                   struct gen_pkt *p)
{
    static const uint8_t flags[] = {GEN_TCP_FIN, 0, GEN_TCP_FIN | GEN_TCP_PSH | GEN_TCP_URG,
                                    GEN_TCP_ACK};

    p->src = s->addr;
    p->ttl = s->ttl;
    p->ipid = (uint16_t)gen_rng_next(r);
    gen_darknet_pick(t->dn, r, 4, &p->dst);
    if (s->sub >= 4) {
        gre_fill(s, r, p);
        return 0;
    }
    p->l4 = GEN_L4_TCP;
    p->proto = 6;
    p->flags = flags[s->sub];
    p->sport = s->port ? s->port : gen_port_ephemeral(r);
    p->dport = gen_port_scan(r);
    p->seq = (uint32_t)gen_rng_next(r);
    p->window = 1024;
    if (p->flags == GEN_TCP_ACK) {
        p->ack = (uint32_t)gen_rng_next(r);
        p->window = (uint16_t)gen_rng_range(r, 1024, 65535);
    }
    return 0;
}
