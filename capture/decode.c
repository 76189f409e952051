/* The packet decoder: link header, outer IP header, first transport header. Pure: bytes in,
 * struct cap_pkt out; never reads past the captured length. Rules: docs/classification.md. */
#include "capture/cap_internal.h"

#include <pcap/dlt.h>
#include <string.h>

#define ETH_IPV4 0x0800
#define ETH_IPV6 0x86dd
#define VLAN_MAX 4

#define NFLOG_PAYLOAD 9

/* Cursor over the captured bytes; every read is bounds-checked. */
struct cursor {
    const uint8_t *d;
    uint32_t len;
};

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t rd16le(const uint8_t *p)
{
    return (uint16_t)(p[1] << 8 | p[0]);
}

static bool is_vlan(uint16_t type)
{
    return type == 0x8100 || type == 0x88a8 || type == 0x9100;
}

/* After an ethertype at `off`, skips VLAN tags; returns 0 with *type and *off of the payload, or
 * -1 when a tag is cut by the capture. */
static int skip_vlans(const struct cursor *c, uint32_t *off, uint16_t *type)
{
    for (int i = 0; i < VLAN_MAX && is_vlan(*type); i++) {
        if (c->len < *off + 4)
            return -1;
        *type = rd16(c->d + *off + 2);
        *off += 4;
    }
    return 0;
}

/* Family (4, 6) of a BSD NULL/LOOP header value, or 0. */
static int null_family(uint32_t v)
{
    if (v == 2)
        return 4;
    if (v == 24 || v == 28 || v == 30 || v == 10)
        return 6;
    return 0;
}

/* Finds the NFLOG payload TLV. TLV lengths and types are in the capturing host's byte order;
 * both are tried (little-endian first, as on nearly every Linux host). Returns 0, -1 when the
 * captured bytes end inside the TLVs, -2 when the TLVs fill the captured bytes exactly and none is
 * the payload. */
static int nflog_payload(const struct cursor *c, uint32_t *off, uint32_t *plen)
{
    int ret = -1;

    for (int be = 0; be < 2; be++) {
        uint32_t o = 4;
        while (o + 4 <= c->len) {
            uint16_t len = be ? rd16(c->d + o) : rd16le(c->d + o);
            uint16_t type = (uint16_t)((be ? rd16(c->d + o + 2) : rd16le(c->d + o + 2)) & 0x7fff);
            if (len < 4)
                break;
            if (type == NFLOG_PAYLOAD) {
                *off = o + 4;
                *plen = len - 4;
                return 0;
            }
            o += (uint32_t)((len + 3u) & ~3u);
        }
        if (o == c->len)
            ret = -2;
    }
    return ret;
}

/* Link layer: finds the network-layer offset and which IP version the link says it carries
 * (0: decide from the version nibble). */
static enum cap_outcome decode_link(const struct cap_frame *f, struct cursor *c, uint32_t *off,
                                    int *want, int *reason)
{
    uint16_t type;

    *want = 0;
    switch (f->dlt) {
    case DLT_EN10MB:
        if (c->len < 14)
            goto truncated;
        type = rd16(c->d + 12);
        *off = 14;
        if (skip_vlans(c, off, &type) < 0)
            goto truncated;
        break;
    case DLT_LINUX_SLL:
        if (c->len < 16)
            goto truncated;
        type = rd16(c->d + 14);
        *off = 16;
        if (skip_vlans(c, off, &type) < 0)
            goto truncated;
        break;
#ifdef DLT_LINUX_SLL2
    case DLT_LINUX_SLL2:
        if (c->len < 20)
            goto truncated;
        type = rd16(c->d);
        *off = 20;
        if (skip_vlans(c, off, &type) < 0)
            goto truncated;
        break;
#endif
    case DLT_RAW:
    case 14:  /* DLT_RAW on some BSDs */
    case 101: /* LINKTYPE_RAW, when not mapped */
        *off = 0;
        return CAP_COUNTED;
    case 228: /* LINKTYPE_IPV4 */
        *off = 0;
        *want = 4;
        return CAP_COUNTED;
    case 229: /* LINKTYPE_IPV6 */
        *off = 0;
        *want = 6;
        return CAP_COUNTED;
    case DLT_NULL:
    case DLT_LOOP: {
        uint32_t be, le;
        int fam;
        if (c->len < 4)
            goto truncated;
        be = rd32(c->d);
        le = (uint32_t)c->d[3] << 24 | (uint32_t)c->d[2] << 16 | (uint32_t)c->d[1] << 8 | c->d[0];
        fam = f->dlt == DLT_LOOP ? null_family(be) : null_family(le);
        if (!fam && f->dlt == DLT_NULL)
            fam = null_family(be);
        *off = 4;
        if (!fam) {
            *reason = DS_IGN_NON_IP;
            return CAP_IGNORED;
        }
        *want = fam;
        return CAP_COUNTED;
    }
    case DLT_NFLOG: {
        uint32_t plen;
        int r;
        if (c->len < 4)
            goto truncated;
        if (c->d[0] != 2 && c->d[0] != 10) {
            *reason = DS_IGN_NON_IP;
            return CAP_IGNORED;
        }
        *want = c->d[0] == 2 ? 4 : 6;
        r = nflog_payload(c, off, &plen);
        if (r == -2 && f->caplen == f->wirelen) {
            /* every TLV captured, none of them a payload */
            *reason = DS_IGN_NON_IP;
            return CAP_IGNORED;
        }
        if (r < 0)
            goto truncated;
        /* the IP packet ends with its TLV: the TLV's padding is not part of it */
        if (plen < c->len - *off)
            c->len = *off + plen;
        return CAP_COUNTED;
    }
    default:
        *reason = DS_IGN_NON_IP;
        return CAP_IGNORED;
    }
    if (type == ETH_IPV4)
        *want = 4;
    else if (type == ETH_IPV6)
        *want = 6;
    else {
        *reason = DS_IGN_NON_IP;
        return CAP_IGNORED;
    }
    return CAP_COUNTED;
truncated:
    *reason = DS_MAL_LINK_TRUNCATED;
    return CAP_MALFORMED;
}

/* TCP options as Nmap's SYN probe sends them: exactly one MSS option (4 bytes) and nothing
 * else, not even NOP or EOL padding. */
static int8_t tcp_options(const uint8_t *o, uint32_t n)
{
    if (n == 0)
        return CAP_OPTS_NONE;
    return n == 4 && o[0] == 2 && o[1] == 4 ? CAP_OPTS_MSS_ONLY : CAP_OPTS_OTHER;
}

static void decode_tcp(const uint8_t *t, uint32_t avail, struct cap_pkt *p)
{
    if (avail < 20)
        p->trunc = DS_TRUNC_TCP;
    if (avail >= 4) {
        p->has_ports = true;
        p->sport = rd16(t);
        p->dport = rd16(t + 2);
    }
    if (avail >= 8) {
        p->has_seq = true;
        p->seq = rd32(t + 4);
    }
    if (avail >= 14) {
        p->has_flags = true;
        p->tcp_flags = t[13];
    }
    if (avail >= 16) {
        p->has_win = true;
        p->win = rd16(t + 14);
    }
    p->tcp_opts = CAP_OPTS_UNKNOWN;
    if (avail >= 13) {
        uint32_t hlen = (uint32_t)(t[12] >> 4) * 4;
        if (hlen >= 20 && hlen <= avail)
            p->tcp_opts = tcp_options(t + 20, hlen - 20);
        else if (hlen > avail)
            p->trunc = DS_TRUNC_TCP;
    }
}

/* ICMP / ICMPv6 errors quote the offending packet: its destination is the victim. */
static void decode_quoted(const uint8_t *q, uint32_t avail, int family, struct cap_pkt *p)
{
    if (family == 4 && avail >= 20 && (q[0] >> 4) == 4) {
        p->has_victim = true;
        p->victim.family = 4;
        memcpy(p->victim.b, q + 16, 4);
    } else if (family == 6 && avail >= 40 && (q[0] >> 4) == 6) {
        p->has_victim = true;
        p->victim.family = 6;
        memcpy(p->victim.b, q + 24, 16);
    }
}

static bool icmp_is_error(int family, uint8_t type)
{
    if (family == 4)
        return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
    return type >= 1 && type <= 4;
}

static void decode_transport(const uint8_t *t, uint32_t avail, int family, struct cap_pkt *p)
{
    switch (p->ipproto) {
    case 6:
        p->proto = DS_PROTO_TCP;
        if (!p->later_fragment)
            decode_tcp(t, avail, p);
        break;
    case 17:
        p->proto = DS_PROTO_UDP;
        if (p->later_fragment)
            break;
        if (avail < 8)
            p->trunc = DS_TRUNC_UDP;
        if (avail >= 2) {
            p->has_sport = true;
            p->sport = rd16(t);
        }
        if (avail >= 4) {
            p->has_ports = true;
            p->sport = rd16(t);
            p->dport = rd16(t + 2);
        }
        break;
    case 1:
    case 58:
        if ((p->ipproto == 1) != (family == 4)) {
            p->proto = DS_PROTO_OTHER;
            break;
        }
        p->proto = DS_PROTO_ICMP;
        if (p->later_fragment)
            break;
        if (avail < 8)
            p->trunc = DS_TRUNC_ICMP;
        if (avail >= 1) {
            p->has_icmp = true;
            p->icmp_type = t[0];
        }
        if (avail >= 2)
            p->icmp_code = t[1];
        if (avail > 8 && p->has_icmp && icmp_is_error(family, p->icmp_type))
            decode_quoted(t + 8, avail - 8, family, p);
        break;
    default:
        p->proto = DS_PROTO_OTHER;
        break;
    }
}

static bool ipv6_ext(uint8_t nh)
{
    return nh == 0 || nh == 43 || nh == 44 || nh == 51 || nh == 60 || nh == 135 || nh == 139 ||
           nh == 140;
}

#define IPV6_EXT_MAX 8

static enum cap_outcome decode_ipv6(const uint8_t *ip, uint32_t cap, struct cap_pkt *p, int *reason)
{
    uint32_t plen, end, off = 40;
    uint8_t nh;
    int n;

    if (cap < 40) {
        *reason = DS_MAL_IP_TRUNCATED;
        return CAP_MALFORMED;
    }
    plen = rd16(ip + 4);
    p->ip_len = 40 + plen;
    p->ttl = ip[7];
    p->src.family = p->dst.family = 6;
    memcpy(p->src.b, ip + 8, 16);
    memcpy(p->dst.b, ip + 24, 16);
    end = cap < p->ip_len ? cap : p->ip_len;
    nh = ip[6];
    for (n = 0; ipv6_ext(nh); n++) {
        if (n == IPV6_EXT_MAX || off + 8 > end) {
            p->ipproto = nh;
            p->proto = DS_PROTO_OTHER;
            return CAP_COUNTED;
        }
        if (nh == 44) {
            uint16_t fo = rd16(ip + off + 2);
            p->fragment = true;
            p->later_fragment = (fo & 0xfff8) != 0;
            nh = ip[off];
            off += 8;
            continue;
        }
        uint32_t elen =
            nh == 51 ? ((uint32_t)ip[off + 1] + 2) * 4 : ((uint32_t)ip[off + 1] + 1) * 8;
        nh = ip[off];
        off += elen;
    }
    p->ipproto = nh;
    if (off > end) {
        p->proto = DS_PROTO_OTHER;
        return CAP_COUNTED;
    }
    decode_transport(ip + off, end - off, 6, p);
    return CAP_COUNTED;
}

static enum cap_outcome decode_ipv4(const uint8_t *ip, uint32_t cap, struct cap_pkt *p, int *reason)
{
    uint32_t ihl, total, end;
    uint16_t frag;

    if (cap < 20) {
        *reason = DS_MAL_IP_TRUNCATED;
        return CAP_MALFORMED;
    }
    ihl = (uint32_t)(ip[0] & 0x0f) * 4;
    total = rd16(ip + 2);
    if (ihl < 20 || total < ihl) {
        *reason = DS_MAL_BAD_IP_HEADER;
        return CAP_MALFORMED;
    }
    if (cap < ihl) {
        *reason = DS_MAL_IP_TRUNCATED;
        return CAP_MALFORMED;
    }
    p->ip_len = total;
    p->ipid = rd16(ip + 4);
    frag = rd16(ip + 6);
    p->fragment = (frag & 0x2000) || (frag & 0x1fff);
    p->later_fragment = (frag & 0x1fff) != 0;
    p->ttl = ip[8];
    p->ipproto = ip[9];
    p->src.family = p->dst.family = 4;
    memcpy(p->src.b, ip + 12, 4);
    memcpy(p->dst.b, ip + 16, 4);
    end = cap < total ? cap : total;
    decode_transport(ip + ihl, end - ihl, 4, p);
    return CAP_COUNTED;
}

enum cap_outcome cap_decode(const struct cap_frame *f, struct cap_pkt *p, int *reason)
{
    struct cursor c = {f->data, f->caplen};
    enum cap_outcome o;
    uint32_t off = 0;
    int want, version;

    memset(p, 0, sizeof(*p));
    p->trunc = DS_TRUNC_NONE;
    p->tcp_opts = CAP_OPTS_UNKNOWN;
    p->cls = DS_CLASS_OTHER;
    p->proto = DS_PROTO_OTHER;
    *reason = 0;
    if (f->ts_nsec < 0 || f->ts_nsec >= DS_NS_PER_SEC) {
        *reason = DS_MAL_BAD_TIMESTAMP;
        return CAP_MALFORMED;
    }
    p->ts = (ds_time_ns)f->ts_sec * DS_NS_PER_SEC + f->ts_nsec;
    o = decode_link(f, &c, &off, &want, reason);
    if (o != CAP_COUNTED)
        return o;
    if (off >= c.len) {
        *reason = DS_MAL_IP_TRUNCATED;
        return CAP_MALFORMED;
    }
    version = c.d[off] >> 4;
    if ((want && version != want) || (version != 4 && version != 6)) {
        *reason = DS_MAL_BAD_IP_VERSION;
        return CAP_MALFORMED;
    }
    if (version == 4)
        o = decode_ipv4(c.d + off, c.len - off, p, reason);
    else
        o = decode_ipv6(c.d + off, c.len - off, p, reason);
    if (o == CAP_COUNTED)
        cap_classify(p);
    return o;
}

enum cap_outcome cap_darknet_check(const struct ds_prefixset *darknet,
                                   const struct ds_prefixset *exclude, const struct cap_pkt *p,
                                   int *reason, int *prefix)
{
    *prefix = ds_prefixset_find(darknet, &p->dst);
    if (*prefix < 0) {
        *reason = DS_IGN_NOT_DARKNET;
        return CAP_IGNORED;
    }
    if (exclude->n && ds_prefixset_find(exclude, &p->dst) >= 0) {
        *reason = DS_IGN_EXCLUDED;
        return CAP_IGNORED;
    }
    return CAP_COUNTED;
}
