/*
 * gen_traffic.c - fills one struct gen_pkt for a source: dispatch, backscatter, UDP and ICMP
 * probes, and the application payloads that make them look real in Wireshark.
 *
 * Backscatter comes from victims of attacks spoofed from darknet addresses: SYN-ACKs and RSTs
 * from the victim's service port, ICMP echo replies, DNS answers from port 53, and ICMP errors
 * (destination unreachable, time exceeded) whose quoted IP header has the darknet address as
 * source and the victim as destination; "unreachable" and "time exceeded" come from a router near
 * the victim, "port unreachable" from the victim itself.
 */
#include "gen_internal.h"

#include <errno.h>
#include <string.h>

static const char *const dns_names[] = {"google.com",     "isc.org",    "example.com",
                                        "cloudflare.com", "amazon.com", "peacecorps.gov",
                                        "www.qq.com",     "ru",         "sl"};
#define DNS_NAMES (sizeof(dns_names) / sizeof(dns_names[0]))

static size_t put_dns_name(uint8_t *b, const char *name)
{
    size_t off = 0;

    while (*name != '\0') {
        const char *dot = strchr(name, '.');
        size_t len = dot ? (size_t)(dot - name) : strlen(name);

        b[off++] = (uint8_t)len;
        memcpy(b + off, name, len);
        off += len;
        name += len + (dot ? 1 : 0);
    }
    b[off++] = 0;
    return off;
}

static size_t dns_header(uint8_t *b, uint16_t id, uint16_t flags, uint16_t an, uint16_t ar)
{
    b[0] = (uint8_t)(id >> 8);
    b[1] = (uint8_t)id;
    b[2] = (uint8_t)(flags >> 8);
    b[3] = (uint8_t)flags;
    b[4] = 0;
    b[5] = 1; /* one question */
    b[6] = (uint8_t)(an >> 8);
    b[7] = (uint8_t)an;
    b[8] = 0;
    b[9] = 0;
    b[10] = (uint8_t)(ar >> 8);
    b[11] = (uint8_t)ar;
    return 12;
}

static size_t dns_query(struct gen_rng *r, uint8_t *b)
{
    static const uint8_t edns[] = {0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0};
    bool chaos = gen_rng_chance(r, 0.1), opt = gen_rng_chance(r, 0.3);
    size_t off = dns_header(b, (uint16_t)gen_rng_next(r), 0x0100, 0, opt ? 1 : 0);
    uint16_t qtype = chaos ? 16 : gen_rng_chance(r, 0.5) ? 255 : 1;

    off += put_dns_name(b + off, chaos ? "version.bind" : dns_names[gen_rng_below(r, DNS_NAMES)]);
    b[off++] = 0;
    b[off++] = (uint8_t)qtype;
    b[off++] = 0;
    b[off++] = chaos ? 3 : 1; /* class CH or IN */
    if (opt) {
        memcpy(b + off, edns, sizeof(edns));
        off += sizeof(edns);
    }
    return off;
}

static size_t dns_answer(const struct gen_darknet *dn, struct gen_rng *r, uint8_t *b)
{
    size_t off = dns_header(b, (uint16_t)gen_rng_next(r), 0x8180, 1, 0);
    uint32_t ttl = gen_rng_range(r, 60, 86400), a;
    struct gen_addr answer;

    gen_addr_random4(dn, r, &answer);
    a = gen_addr_v4(&answer);

    off += put_dns_name(b + off, dns_names[gen_rng_below(r, DNS_NAMES)]);
    memcpy(b + off, "\x00\x01\x00\x01\xc0\x0c\x00\x01\x00\x01", 10);
    off += 10;
    b[off++] = (uint8_t)(ttl >> 24);
    b[off++] = (uint8_t)(ttl >> 16);
    b[off++] = (uint8_t)(ttl >> 8);
    b[off++] = (uint8_t)ttl;
    b[off++] = 0;
    b[off++] = 4;
    b[off++] = (uint8_t)(a >> 24);
    b[off++] = (uint8_t)(a >> 16);
    b[off++] = (uint8_t)(a >> 8);
    b[off++] = (uint8_t)a;
    return off;
}

static size_t text_payload(uint8_t *b, size_t cap, const char *text)
{
    size_t len = strlen(text);

    if (len > cap)
        len = cap;
    memcpy(b, text, len);
    return len;
}

void gen_udp_probe_fill(struct gen_rng *r, uint16_t service, struct gen_pkt *p)
{
    static const uint8_t snmp_get[] = {
        0x30, 0x29, 0x02, 0x01, 0x01, 0x04, 0x06, 'p',  'u',  'b',  'l',  'i',  'c',  0xa0, 0x1c,
        0x02, 0x04, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x0e, 0x30,
        0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00, 0x05, 0x00};
    static const uint8_t memcached_stats[] = {0,   1,   0,   0,   0,   1,    0,   0,
                                              's', 't', 'a', 't', 's', '\r', '\n'};
    uint8_t *b = p->payload;
    char text[512], src[64], dst[64];
    uint32_t tag = (uint32_t)gen_rng_next(r);

    p->l4 = GEN_L4_UDP;
    p->proto = 17;
    p->dport = service ? service : (uint16_t)gen_rng_range(r, 1024, 65535);
    p->sport = gen_port_ephemeral(r);
    switch (service) {
    case 53:
        p->paylen = (uint16_t)dns_query(r, b);
        break;
    case 123:
        if (gen_rng_chance(r, 0.5)) {
            memcpy(b, "\x17\x00\x03\x2a\x00\x00\x00\x00", 8); /* mode 7 monlist */
            p->paylen = 8;
        } else {
            memset(b, 0, 48);
            b[0] = 0x23; /* version 4, client */
            gen_rng_fill(r, b + 40, 8);
            p->paylen = 48;
        }
        if (gen_rng_chance(r, 0.3))
            p->sport = 123;
        break;
    case 161:
        memcpy(b, snmp_get, sizeof(snmp_get));
        gen_rng_fill(r, b + 17, 4); /* request id */
        b[17] &= 0x7f;
        p->paylen = sizeof(snmp_get);
        break;
    case 1900:
        p->paylen =
            (uint16_t)text_payload(b, GEN_PAYLOAD_MAX,
                                   "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n"
                                   "MAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n");
        break;
    case 5060:
        gen_addr_format(&p->src, src, sizeof(src));
        gen_addr_format(&p->dst, dst, sizeof(dst));
        snprintf(text, sizeof(text),
                 "OPTIONS sip:100@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s:5060;branch=z9hG4bK-%08x\r\n"
                 "Max-Forwards: 70\r\nTo: \"sipvicious\"<sip:100@1.1.1.1>\r\n"
                 "From: \"sipvicious\"<sip:100@1.1.1.1>;tag=%08x\r\nUser-Agent: friendly-scanner"
                 "\r\nCall-ID: %u\r\nCSeq: 1 OPTIONS\r\nAccept: application/sdp\r\n"
                 "Content-Length: 0\r\n\r\n",
                 dst, src, tag, tag ^ 0x5a5a5a5au, tag);
        p->paylen = (uint16_t)text_payload(b, GEN_PAYLOAD_MAX, text);
        if (gen_rng_chance(r, 0.5))
            p->sport = 5060;
        break;
    case 11211:
        memcpy(b, memcached_stats, sizeof(memcached_stats));
        p->paylen = sizeof(memcached_stats);
        break;
    default:
        p->paylen = (uint16_t)gen_rng_below(r, 65);
        gen_rng_fill(r, b, p->paylen);
        break;
    }
    if (p->sport == 53) /* a probe from port 53 would read as a DNS answer */
        p->sport = 1053;
}

/* The router that reports errors for victim: its /24's .1 (IPv4) or its /64's ::1 (IPv6). */
static void router_of(const struct gen_traffic *t, const struct gen_addr *victim,
                      struct gen_addr *out)
{
    *out = *victim;
    if (victim->family == 4) {
        uint32_t a = gen_addr_v4(victim), gw = (a & 0xffffff00u) | ((a & 0xff) == 1 ? 254 : 1);

        if (gen_addr_routable4(t->dn, gw))
            gen_addr_set_v4(out, gw);
    } else {
        memset(out->b + 8, 0, 8);
        out->b[15] = 1;
        if (gen_addr_equal(out, victim) || gen_darknet_contains(t->dn, out))
            *out = *victim;
    }
}

/* The packet a darknet address "sent" to the victim, as quoted in an ICMP error. */
static void quote_fill(struct gen_source *s, struct gen_rng *r, const struct gen_pkt *p, bool tcp,
                       bool expired, struct gen_pkt *q)
{
    gen_pkt_reset(q);
    q->family = p->family;
    q->src = p->dst;
    q->dst = s->addr;
    q->ttl = expired ? 1 : (uint8_t)gen_rng_range(r, 30, 240);
    q->ipid = (uint16_t)gen_rng_next(r);
    if (tcp) {
        q->l4 = GEN_L4_TCP;
        q->proto = 6;
        q->flags = GEN_TCP_SYN;
        q->sport = (uint16_t)gen_rng_range(r, 1024, 65535);
        q->dport = s->port;
        q->seq = (uint32_t)gen_rng_next(r);
        q->window = 65535;
    } else {
        q->l4 = GEN_L4_UDP;
        q->proto = 17;
        q->sport = (uint16_t)gen_rng_range(r, 1024, 65535);
        q->dport = gen_rng_chance(r, 0.5) ? s->port : (uint16_t)gen_rng_range(r, 1024, 65535);
        q->paylen = (uint16_t)gen_rng_range(r, 0, 120);
        gen_rng_fill(r, q->payload, q->paylen);
    }
}

static int icmp_error_fill(struct gen_traffic *t, struct gen_source *s, struct gen_rng *r,
                           struct gen_pkt *p, uint8_t type, uint8_t code, bool from_router,
                           bool tcp)
{
    struct gen_pkt q;

    if (from_router)
        router_of(t, &s->addr, &p->src);
    quote_fill(s, r, p, tcp, type == 11, &q);
    p->icmp_type = type;
    p->icmp_code = code;
    p->icmp_rest = 0;
    p->paylen = (uint16_t)gen_quote_build(&q, p->payload, sizeof(p->payload));
    if (p->paylen == 0)
        return -EINVAL;
    p->has_quote = true;
    p->quote_dst = q.dst;
    return 0;
}

static void synack_fill(struct gen_source *s, struct gen_rng *r, struct gen_pkt *p)
{
    static const uint8_t linux_opts[] = {2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0,
                                         0, 0, 0, 0,    0, 0, 1, 3,  3, 7};
    uint32_t tsval = (uint32_t)gen_rng_next(r);

    p->flags = GEN_TCP_SYN | GEN_TCP_ACK;
    p->seq = (uint32_t)gen_rng_next(r);
    p->ack = (uint32_t)gen_rng_next(r);
    if (s->ident & 1) {
        p->window = 65160;
        memcpy(p->opts, linux_opts, sizeof(linux_opts));
        p->opts[8] = (uint8_t)(tsval >> 24);
        p->opts[9] = (uint8_t)(tsval >> 16);
        p->opts[10] = (uint8_t)(tsval >> 8);
        p->opts[11] = (uint8_t)tsval;
        p->optlen = sizeof(linux_opts);
        if (p->family == 6)
            p->opts[3] = 0xa0; /* MSS 1440 */
    } else {
        p->window = (s->ident & 2) ? 8192 : 29200;
        memcpy(p->opts, "\x02\x04\x05\xb4", 4);
        p->optlen = 4;
    }
}

static int backscatter_make(struct gen_traffic *t, struct gen_source *s, struct gen_rng *r,
                            struct gen_pkt *p)
{
    bool v6 = s->addr.family == 6;

    p->family = s->addr.family;
    p->src = s->addr;
    p->ttl = s->ttl;
    p->df = true;
    p->ipid = (s->ident & 8) ? 0 : (uint16_t)gen_rng_next(r);
    p->flowlabel = v6 ? (uint32_t)gen_rng_next(r) & 0xfffff : 0;
    gen_darknet_pick(t->dn, r, s->addr.family, &p->dst);
    if (s->sub <= 1) {
        p->l4 = GEN_L4_TCP;
        p->proto = 6;
        p->sport = s->port;
        p->dport = (uint16_t)gen_rng_range(r, 1024, 65535);
        if (s->sub == 0) {
            synack_fill(s, r, p);
        } else if (gen_rng_chance(r, 0.5)) {
            p->flags = GEN_TCP_RST;
            p->seq = (uint32_t)gen_rng_next(r);
        } else {
            p->flags = GEN_TCP_RST | GEN_TCP_ACK;
            p->ack = (uint32_t)gen_rng_next(r);
        }
        return 0;
    }
    if (s->sub == 5) {
        p->l4 = GEN_L4_UDP;
        p->proto = 17;
        p->sport = 53;
        p->dport = (uint16_t)gen_rng_range(r, 1024, 65535);
        p->paylen = (uint16_t)dns_answer(t->dn, r, p->payload);
        return 0;
    }
    p->l4 = GEN_L4_ICMP;
    p->proto = v6 ? 58 : 1;
    p->ipid = (uint16_t)gen_rng_next(r);
    p->df = false;
    if (s->sub == 2) {
        p->icmp_type = v6 ? 129 : 0;
        p->icmp_rest = (uint32_t)gen_rng_next(r);
        p->paylen = gen_rng_chance(r, 0.5) ? 56 : 32;
        gen_rng_fill(r, p->payload, p->paylen);
        return 0;
    }
    if (v6) /* ICMPv6 port unreachable from the victim */
        return icmp_error_fill(t, s, r, p, 1, 4, false, false);
    if (s->sub == 4)
        return icmp_error_fill(t, s, r, p, 11, 0, true, gen_rng_chance(r, 0.5));
    switch (gen_rng_below(r, 5)) {
    case 0:
        return icmp_error_fill(t, s, r, p, 3, 1, true, gen_rng_chance(r, 0.5));
    case 1:
        return icmp_error_fill(t, s, r, p, 3, 13, true, true);
    default:
        return icmp_error_fill(t, s, r, p, 3, 3, false, false);
    }
}

static void icmp_probe_make(struct gen_traffic *t, struct gen_source *s, struct gen_rng *r,
                            struct gen_pkt *p)
{
    static const char windows_ping[] = "abcdefghijklmnopqrstuvwabcdefghi";

    p->family = s->addr.family;
    p->src = s->addr;
    p->ttl = s->ttl;
    p->l4 = GEN_L4_ICMP;
    p->proto = p->family == 4 ? 1 : 58;
    p->icmp_type = p->family == 4 ? 8 : 128;
    p->icmp_rest = (s->ident & 0xffff0000u) | s->seqno++;
    p->ipid = (uint16_t)gen_rng_next(r);
    gen_darknet_pick(t->dn, r, p->family, &p->dst);
    if (s->sub == 0) { /* Linux ping: struct timeval, then 0x10, 0x11, ... */
        p->df = true;
        gen_rng_fill(r, p->payload, 8);
        for (int i = 8; i < 56; i++)
            p->payload[i] = (uint8_t)i;
        p->paylen = 56;
    } else if (s->sub == 1) {
        memcpy(p->payload, windows_ping, 32);
        p->paylen = 32;
    }
}

int gen_traffic_make(struct gen_traffic *t, struct gen_source *s, struct gen_rng *r,
                     struct gen_pkt *p)
{
    gen_pkt_reset(p);
    if (s->kind >= GEN_BEH_COUNT)
        return gen_edge_make(t, (enum gen_edge)(s->kind - GEN_BEH_COUNT), r, p);
    switch (s->kind) {
    case GEN_BEH_SCAN4:
    case GEN_BEH_SCAN6:
        return gen_scan_make(t, s, r, p);
    case GEN_BEH_BACKSCATTER:
        return backscatter_make(t, s, r, p);
    case GEN_BEH_UDP:
        p->src = s->addr;
        p->ttl = s->ttl;
        p->ipid = (uint16_t)gen_rng_next(r);
        gen_darknet_pick(t->dn, r, 4, &p->dst);
        gen_udp_probe_fill(r, s->port, p);
        return 0;
    case GEN_BEH_ICMP:
        icmp_probe_make(t, s, r, p);
        return 0;
    case GEN_BEH_OTHER:
        return gen_other_make(t, s, r, p);
    default:
        return -EINVAL;
    }
}
