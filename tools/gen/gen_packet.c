/*
 * gen_packet.c - renders a struct gen_pkt into Ethernet frame bytes.
 *
 * Pure: no I/O, no randomness.  Lengths are always consistent (IPv4 total length, IPv6 payload
 * length, TCP data offset, UDP length) and every checksum is computed, including the IPv4 header
 * checksum and the TCP/UDP/ICMPv6 pseudo-header sums, so tshark reports no checksum errors.
 * Frames shorter than Ethernet's 60-byte minimum are zero-padded as a NIC would; the padding is a
 * trailer beyond the IP total length.  A capture cut (cut_l4, cut_ip) only shortens caplen: the
 * frame is always rendered whole, so wirelen and the headers describe the original packet.
 */
#include "gen_internal.h"

#include <errno.h>
#include <string.h>

#define ETH_MIN_FRAME 60

/* Fixed MACs: the telescope's capture NIC and its upstream router. */
static const uint8_t mac_telescope[6] = {0x00, 0x1b, 0x21, 0x3a, 0x4f, 0x10};
static const uint8_t mac_router[6] = {0x00, 0x1c, 0x73, 0x5e, 0x7a, 0x01};
static const uint8_t mac_broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static void put16(uint8_t *b, uint16_t v)
{
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}

static void put32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

void gen_pkt_reset(struct gen_pkt *p)
{
    /* the payload is not cleared: paylen says how much of it is valid */
    memset(p, 0, offsetof(struct gen_pkt, payload));
    p->link = GEN_LINK_ETH;
    p->family = 4;
    p->cut_l4 = -1;
    p->cut_ip = -1;
}

uint32_t gen_csum_add(uint32_t sum, const uint8_t *b, size_t len)
{
    size_t i;

    for (i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)b[i] << 8 | b[i + 1];
    if (i < len)
        sum += (uint32_t)b[i] << 8;
    /* fold early so that long payloads cannot overflow 32 bits */
    return (sum & 0xffff) + (sum >> 16);
}

uint16_t gen_csum_finish(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

uint32_t gen_csum_pseudo(const struct gen_addr *src, const struct gen_addr *dst, uint8_t proto,
                         uint32_t len)
{
    size_t alen = src->family == 4 ? 4 : 16;
    uint32_t sum = 0;

    sum = gen_csum_add(sum, src->b, alen);
    sum = gen_csum_add(sum, dst->b, alen);
    return sum + proto + (len >> 16) + (len & 0xffff);
}

/* Writes the transport header and payload at b; returns their length or -ENOSPC. */
static int l4_build(const struct gen_pkt *p, uint8_t *b, size_t cap)
{
    size_t len;
    uint32_t sum;
    uint16_t csum;

    if (p->l4 == GEN_L4_RAW || p->l4_verbatim) {
        if (p->paylen > cap)
            return -ENOSPC;
        memcpy(b, p->payload, p->paylen);
        return p->paylen;
    }
    switch (p->l4) {
    case GEN_L4_TCP:
        len = 20 + (size_t)p->optlen + p->paylen;
        if (len > cap || p->optlen % 4 != 0 || p->optlen > 40)
            return -ENOSPC;
        put16(b, p->sport);
        put16(b + 2, p->dport);
        put32(b + 4, p->seq);
        put32(b + 8, p->ack);
        b[12] = (uint8_t)((5 + p->optlen / 4) << 4);
        b[13] = p->flags;
        put16(b + 14, p->window);
        put16(b + 16, 0);
        put16(b + 18, 0);
        memcpy(b + 20, p->opts, p->optlen);
        memcpy(b + 20 + p->optlen, p->payload, p->paylen);
        break;
    case GEN_L4_UDP:
        len = 8 + (size_t)p->paylen;
        if (len > cap)
            return -ENOSPC;
        put16(b, p->sport);
        put16(b + 2, p->dport);
        put16(b + 4, (uint16_t)len);
        put16(b + 6, 0);
        memcpy(b + 8, p->payload, p->paylen);
        break;
    case GEN_L4_ICMP:
        len = 8 + (size_t)p->paylen;
        if (len > cap)
            return -ENOSPC;
        b[0] = p->icmp_type;
        b[1] = p->icmp_code;
        put16(b + 2, 0);
        put32(b + 4, p->icmp_rest);
        memcpy(b + 8, p->payload, p->paylen);
        break;
    default:
        return -EINVAL;
    }
    /* ICMP over IPv4 has no pseudo-header; TCP, UDP and ICMPv6 do */
    if (p->l4 == GEN_L4_ICMP && p->family == 4)
        sum = 0;
    else
        sum = gen_csum_pseudo(&p->src, &p->dst, p->proto, (uint32_t)len);
    csum = gen_csum_finish(gen_csum_add(sum, b, len));
    if (p->l4 == GEN_L4_UDP && csum == 0)
        csum = 0xffff; /* 0 means "no checksum" for UDP */
    put16(b + (p->l4 == GEN_L4_TCP ? 16 : p->l4 == GEN_L4_UDP ? 6 : 2), csum);
    return (int)len;
}

static size_t arp_build(const struct gen_pkt *p, uint8_t *b)
{
    put16(b, 1);          /* hardware: Ethernet */
    put16(b + 2, 0x0800); /* protocol: IPv4 */
    b[4] = 6;
    b[5] = 4;
    put16(b + 6, 1); /* who-has */
    memcpy(b + 8, mac_router, 6);
    memcpy(b + 14, p->src.b, 4);
    memset(b + 18, 0, 6);
    memcpy(b + 24, p->dst.b, 4);
    return 28;
}

/* IPv6 extension headers, then the fragment header; returns their length. */
static size_t v6_ext_build(const struct gen_pkt *p, uint8_t *b, uint8_t *first_nh)
{
    uint8_t chain[4];
    size_t n = 0, off = 0;

    for (uint8_t i = 0; i < p->n_ext && i < 2; i++)
        chain[n++] = p->ext[i];
    if (p->frag)
        chain[n++] = 44;
    *first_nh = n > 0 ? chain[0] : p->proto;
    for (size_t i = 0; i < n; i++) {
        uint8_t next = i + 1 < n ? chain[i + 1] : p->proto;

        memset(b + off, 0, 8);
        b[off] = next;
        if (chain[i] == 44) {
            put16(b + off + 2, (uint16_t)(p->frag_off << 3 | (p->mf ? 1 : 0)));
            put32(b + off + 4, p->frag_ident);
        } else if (chain[i] == 0) {
            b[off + 2] = 5; /* router alert: MLD, as in real hop-by-hop headers */
            b[off + 3] = 2;
            b[off + 6] = 1; /* PadN, 0 bytes */
        } else {
            b[off + 2] = 1; /* PadN, 4 bytes */
            b[off + 3] = 4;
        }
        off += 8;
    }
    return off;
}

int gen_frame_build(const struct gen_pkt *p, uint8_t *buf, size_t cap, struct gen_frame *fr)
{
    size_t off = 12, l3, l4off = 0, iphdr = 0;
    uint8_t first_nh = 0;
    int l4len;

    memset(fr, 0, sizeof(*fr));
    if (cap < GEN_FRAME_MAX)
        return -ENOSPC;
    memcpy(buf, p->link == GEN_LINK_ARP ? mac_broadcast : mac_telescope, 6);
    memcpy(buf + 6, mac_router, 6);
    if (p->link == GEN_LINK_VLAN) {
        put16(buf + off, 0x8100);
        put16(buf + off + 2, p->vlan & 0x0fff);
        off += 4;
    }
    put16(buf + off, p->link == GEN_LINK_ARP ? 0x0806 : p->family == 4 ? 0x0800 : 0x86dd);
    l3 = off + 2;
    if (p->link == GEN_LINK_ARP) {
        fr->wirelen = (uint32_t)(l3 + arp_build(p, buf + l3));
        goto pad;
    }
    if (p->family == 4) {
        iphdr = 20;
        l4off = l3 + 20;
    } else {
        iphdr = 40;
        l4off = l3 + 40 + v6_ext_build(p, buf + l3 + 40, &first_nh);
    }
    l4len = l4_build(p, buf + l4off, cap - l4off - ETH_MIN_FRAME);
    if (l4len < 0)
        return l4len;
    if (p->family == 4) {
        uint8_t *ip = buf + l3;

        ip[0] = 0x45;
        ip[1] = p->tos;
        put16(ip + 2, (uint16_t)(20 + l4len));
        put16(ip + 4, p->ipid);
        put16(ip + 6,
              (uint16_t)((p->df ? 0x4000 : 0) | (p->mf ? 0x2000 : 0) | (p->frag_off & 0x1fff)));
        ip[8] = p->ttl;
        ip[9] = p->proto;
        put16(ip + 10, 0);
        memcpy(ip + 12, p->src.b, 4);
        memcpy(ip + 16, p->dst.b, 4);
        put16(ip + 10, gen_csum_finish(gen_csum_add(0, ip, 20)));
        fr->ip_len = (uint32_t)(20 + l4len);
    } else {
        uint8_t *ip = buf + l3;

        put32(ip, 6u << 28 | (uint32_t)p->tos << 20 | (p->flowlabel & 0xfffff));
        put16(ip + 4, (uint16_t)(l4off - l3 - 40 + (size_t)l4len));
        ip[6] = first_nh;
        ip[7] = p->ttl;
        memcpy(ip + 8, p->src.b, 16);
        memcpy(ip + 24, p->dst.b, 16);
        fr->ip_len = (uint32_t)(l4off - l3 + (size_t)l4len);
    }
    fr->wirelen = (uint32_t)(l4off + (size_t)l4len);
    fr->l4_len = (uint32_t)l4len;
    fr->l4_cap = (uint32_t)l4len;
    fr->ip_complete = true;
pad:
    if (fr->wirelen < ETH_MIN_FRAME) {
        memset(buf + fr->wirelen, 0, ETH_MIN_FRAME - fr->wirelen);
        fr->wirelen = ETH_MIN_FRAME;
    }
    fr->caplen = fr->wirelen;
    if (p->link != GEN_LINK_ARP && p->cut_ip >= 0 && (size_t)p->cut_ip < iphdr) {
        fr->caplen = (uint32_t)(l3 + (size_t)p->cut_ip);
        fr->ip_complete = false;
        fr->l4_cap = 0;
    } else if (p->link != GEN_LINK_ARP && p->cut_l4 >= 0 && (uint32_t)p->cut_l4 < fr->l4_len) {
        fr->caplen = (uint32_t)(l4off + (size_t)p->cut_l4);
        fr->l4_cap = (uint32_t)p->cut_l4;
    }
    return 0;
}

size_t gen_quote_build(const struct gen_pkt *q, uint8_t *buf, size_t cap)
{
    uint8_t frame[GEN_FRAME_MAX];
    struct gen_frame fr;
    size_t iphdr = q->family == 4 ? 20 : 40, n = iphdr + 8;

    /* Render the whole offending packet, then keep its IP header and first 8 transport bytes,
     * so the quoted checksums are those of a real packet. */
    if (gen_frame_build(q, frame, sizeof(frame), &fr) != 0 || fr.l4_len < 8 || n > cap)
        return 0;
    memcpy(buf, frame + 14, n);
    return n;
}
