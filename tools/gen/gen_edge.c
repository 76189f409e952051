/*
 * gen_edge.c - hostile and edge-case frames that exercise every corner of the decoder.
 *
 * Each kind is a pseudo-source in the schedule, and every frame (or fragment pair) comes from a
 * fresh source address, so edge frames never sway a real source's tool attribution.
 *   FRAG4/FRAG6   a UDP probe fragmented at a 576-byte (IPv4) or 1280-byte (IPv6) MTU: the first
 *                 fragment (offset 0, more fragments) is class udp_probe with a readable port, the
 *                 later fragment is class other, protocol udp.  The pair shares IP ID/ident
 *                 and the later fragment is the very next frame.
 *   V6EXT         hop-by-hop and/or destination options before a TCP SYN (class scan)
 *   TRUNC_SYN14   a SYN cut after 14 TCP bytes: flags captured, class scan, truncated.tcp
 *   TRUNC_SYN8    a SYN cut after 8 TCP bytes: no flags, class other, truncated.tcp
 *   TRUNC_UDP     a UDP probe cut after its ports: class udp_probe, truncated.udp
 *   TRUNC_ICMP    an echo request cut after 4 bytes: class icmp_probe, truncated.icmp
 *   NOT_DARKNET   a SYN to a routable address outside the darknet: ignored.not_darknet
 *   ARP           an ARP who-has for a darknet address: ignored.non_ip
 *   IP_TRUNC      an IPv4 SYN cut inside its IP header: malformed.ip_truncated
 *   VLAN_SYN      an 802.1Q-tagged SYN, counted like any other
 */
#include "gen_internal.h"

#include <errno.h>
#include <string.h>

static int fresh_source(struct gen_traffic *t, struct gen_rng *r, int family, struct gen_source *s)
{
    memset(s, 0, sizeof(*s));
    if (family == 4) {
        if (gen_addrgen_next4(t->ag, &s->addr) != 0)
            return -ENOSPC;
    } else {
        gen_addrgen_next6(t->ag, &s->addr);
    }
    s->kind = family == 4 ? GEN_BEH_SCAN4 : GEN_BEH_SCAN6;
    s->tool = GEN_TOOL_NONE;
    s->sub = (uint8_t)gen_rng_below(r, 4);
    s->ttl = (uint8_t)(64 - gen_rng_range(r, 6, 24));
    s->ipid = (uint16_t)gen_rng_next(r);
    s->ident = (uint32_t)gen_rng_next(r);
    return 0;
}

static int syn4_make(struct gen_traffic *t, struct gen_rng *r, struct gen_pkt *p)
{
    struct gen_source s;

    if (fresh_source(t, r, 4, &s) != 0)
        return -ENOSPC;
    gen_darknet_pick(t->dn, r, 4, &p->dst);
    p->dport = gen_port_scan(r);
    return gen_scan_syn_none(&s, r, p);
}

/* Builds the whole UDP datagram (header + data, checksummed) and the first fragment. */
static int frag_first(struct gen_traffic *t, struct gen_rng *r, int family, struct gen_pkt *p)
{
    struct gen_fragstate *fs = family == 4 ? &t->frag4 : &t->frag6;
    uint16_t total, first;
    struct gen_source s;
    uint32_t sum;

    if (fresh_source(t, r, family, &s) != 0)
        return -ENOSPC;
    p->family = (uint8_t)family;
    p->src = s.addr;
    p->ttl = s.ttl;
    p->ipid = (uint16_t)gen_rng_next(r);
    p->frag_ident = (uint32_t)gen_rng_next(r);
    gen_darknet_pick(t->dn, r, family, &p->dst);
    p->l4 = GEN_L4_UDP;
    p->proto = 17;
    p->sport = gen_port_ephemeral(r);
    p->dport = (uint16_t)gen_rng_range(r, 1024, 65535);
    if (family == 4) {
        total = (uint16_t)gen_rng_range(r, 700, 1400);
        first = 552; /* 576-byte MTU minus the IPv4 header, a multiple of 8 */
    } else {
        total = (uint16_t)gen_rng_range(r, 1300, 1560);
        first = 1232; /* 1280-byte minimum MTU minus IPv6 and fragment headers */
    }
    fs->data[0] = (uint8_t)(p->sport >> 8);
    fs->data[1] = (uint8_t)p->sport;
    fs->data[2] = (uint8_t)(p->dport >> 8);
    fs->data[3] = (uint8_t)p->dport;
    fs->data[4] = (uint8_t)(total >> 8);
    fs->data[5] = (uint8_t)total;
    fs->data[6] = 0;
    fs->data[7] = 0;
    gen_rng_fill(r, fs->data + 8, total - 8u);
    sum = gen_csum_pseudo(&p->src, &p->dst, 17, total);
    sum = gen_csum_finish(gen_csum_add(sum, fs->data, total));
    if (sum == 0)
        sum = 0xffff;
    fs->data[6] = (uint8_t)(sum >> 8);
    fs->data[7] = (uint8_t)sum;
    fs->total = total;
    fs->sent = first;
    p->frag = true;
    p->mf = true;
    p->frag_off = 0;
    p->l4_verbatim = true;
    memcpy(p->payload, fs->data, first);
    p->paylen = first;
    fs->first = *p;
    fs->pending = true;
    t->follow = true;
    return 0;
}

static void frag_later(struct gen_fragstate *fs, struct gen_pkt *p)
{
    const struct gen_pkt *f = &fs->first;

    p->family = f->family;
    p->src = f->src;
    p->dst = f->dst;
    p->ttl = f->ttl;
    p->ipid = f->ipid;
    p->frag_ident = f->frag_ident;
    p->proto = 17;
    p->l4 = GEN_L4_RAW;
    p->frag = true;
    p->mf = false;
    p->frag_off = (uint16_t)(fs->sent / 8);
    p->paylen = (uint16_t)(fs->total - fs->sent);
    memcpy(p->payload, fs->data + fs->sent, p->paylen);
    fs->pending = false;
}

static int frag_make(struct gen_traffic *t, struct gen_rng *r, int family, struct gen_pkt *p)
{
    struct gen_fragstate *fs = family == 4 ? &t->frag4 : &t->frag6;

    if (!fs->pending)
        return frag_first(t, r, family, p);
    frag_later(fs, p);
    t->follow = false;
    return 0;
}

static int v6ext_make(struct gen_traffic *t, struct gen_rng *r, struct gen_pkt *p)
{
    struct gen_source s;

    if (fresh_source(t, r, 6, &s) != 0)
        return -ENOSPC;
    s.sub = 0;
    if (gen_scan_make(t, &s, r, p) != 0)
        return -EAGAIN;
    switch (gen_rng_below(r, 3)) {
    case 0:
        p->n_ext = 1;
        p->ext[0] = 0; /* hop-by-hop */
        break;
    case 1:
        p->n_ext = 1;
        p->ext[0] = 60; /* destination options */
        break;
    default:
        p->n_ext = 2;
        p->ext[0] = 0;
        p->ext[1] = 60;
        break;
    }
    return 0;
}

static int small_probe_make(struct gen_traffic *t, struct gen_rng *r, bool udp, struct gen_pkt *p)
{
    struct gen_source s;

    if (fresh_source(t, r, 4, &s) != 0)
        return -ENOSPC;
    p->src = s.addr;
    p->ttl = s.ttl;
    p->ipid = (uint16_t)gen_rng_next(r);
    gen_darknet_pick(t->dn, r, 4, &p->dst);
    if (udp) {
        static const uint16_t svc[] = {53, 123, 161, 1900, 5060, 11211, 0};

        gen_udp_probe_fill(r, svc[gen_rng_below(r, 7)], p);
    } else {
        p->l4 = GEN_L4_ICMP;
        p->proto = 1;
        p->icmp_type = 8;
        p->icmp_rest = (uint32_t)gen_rng_next(r);
        p->paylen = 56;
        gen_rng_fill(r, p->payload, p->paylen);
    }
    p->cut_l4 = 4;
    return 0;
}

int gen_edge_make(struct gen_traffic *t, enum gen_edge kind, struct gen_rng *r, struct gen_pkt *p)
{
    int rc;

    switch (kind) {
    case GEN_EDGE_FRAG4:
        return frag_make(t, r, 4, p);
    case GEN_EDGE_FRAG6:
        return frag_make(t, r, 6, p);
    case GEN_EDGE_V6EXT:
        return v6ext_make(t, r, p);
    case GEN_EDGE_TRUNC_SYN14:
    case GEN_EDGE_TRUNC_SYN8:
        rc = syn4_make(t, r, p);
        p->cut_l4 = kind == GEN_EDGE_TRUNC_SYN14 ? 14 : 8;
        return rc;
    case GEN_EDGE_TRUNC_UDP:
        return small_probe_make(t, r, true, p);
    case GEN_EDGE_TRUNC_ICMP:
        return small_probe_make(t, r, false, p);
    case GEN_EDGE_NOT_DARKNET:
        rc = syn4_make(t, r, p);
        gen_addr_random4(t->dn, r, &p->dst);
        if (rc == 0) /* the destination moved: re-check the fingerprints */
            rc = gen_scan_settle(p, r, 0, 0);
        return rc;
    case GEN_EDGE_ARP:
        p->link = GEN_LINK_ARP;
        gen_darknet_pick(t->dn, r, 4, &p->dst);
        gen_addr_random4(t->dn, r, &p->src);
        return 0;
    case GEN_EDGE_IP_TRUNC:
        rc = syn4_make(t, r, p);
        p->cut_ip = (int16_t)gen_rng_range(r, 1, 19);
        return rc;
    case GEN_EDGE_VLAN_SYN:
        rc = syn4_make(t, r, p);
        p->link = GEN_LINK_VLAN;
        p->vlan = (uint16_t)gen_rng_range(r, 2, 4094);
        return rc;
    default:
        return -EINVAL;
    }
}
