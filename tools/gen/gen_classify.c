/*
 * gen_classify.c - docs/classification.md applied to a packet description.
 *
 * This is the generator's reading of the rules, kept independent of capture/classify.c: it works
 * on the fields of a struct gen_pkt plus how many transport bytes the capture kept, never on the
 * rendered bytes.  The traffic generators call gen_classify_tools() while choosing random fields,
 * and gen_classify() decides where every frame lands in the truth.  Pure functions, no state.
 */
#include "gen_internal.h"

#include <string.h>

const char *const gen_class_names[GEN_CLASS_COUNT] = {"scan", "backscatter", "udp_probe",
                                                      "icmp_probe", "other"};
const char *const gen_proto_names[GEN_PROTO_COUNT] = {"tcp", "udp", "icmp", "other"};
const char *const gen_tool_names[GEN_TOOL_COUNT] = {"mirai", "zmap", "masscan", "nmap"};

/* Exactly one TCP option and it is MSS (kind 2, length 4).  NOPs count as options; EOL ends the
 * list.  Generated non-Nmap SYNs never sit near this boundary, so other readings agree. */
static bool tcp_opts_mss_only(const struct gen_pkt *p)
{
    unsigned count = 0, i = 0;
    uint8_t first = 0, first_len = 0;

    while (i < p->optlen) {
        uint8_t kind = p->opts[i], len;

        if (kind == 0)
            break;
        if (kind == 1) {
            len = 1;
        } else {
            if (i + 1 >= p->optlen)
                return false;
            len = p->opts[i + 1];
            if (len < 2 || i + len > p->optlen)
                return false;
        }
        if (count++ == 0) {
            first = kind;
            first_len = len;
        }
        i += len;
    }
    return count == 1 && first == 2 && first_len == 4;
}

uint8_t gen_classify_tools(const struct gen_pkt *p, uint32_t l4_cap)
{
    uint32_t dst = gen_addr_v4(&p->dst);
    uint8_t mask = 0;

    if (l4_cap >= 8 && p->seq == dst)
        mask |= 1u << GEN_TOOL_MIRAI;
    if (p->ipid == 54321)
        mask |= 1u << GEN_TOOL_ZMAP;
    if (l4_cap >= 8 && p->ipid == ((dst ^ p->dport ^ p->seq) & 0xffff))
        mask |= 1u << GEN_TOOL_MASSCAN;
    if (l4_cap >= 20u + p->optlen &&
        (p->window == 1024 || p->window == 2048 || p->window == 3072 || p->window == 4096) &&
        tcp_opts_mss_only(p))
        mask |= 1u << GEN_TOOL_NMAP;
    return mask;
}

static uint8_t proto_of(const struct gen_pkt *p)
{
    if (p->proto == 6)
        return GEN_PROTO_TCP;
    if (p->proto == 17)
        return GEN_PROTO_UDP;
    if ((p->family == 4 && p->proto == 1) || (p->family == 6 && p->proto == 58))
        return GEN_PROTO_ICMP;
    return GEN_PROTO_OTHER;
}

static void classify_tcp(const struct gen_pkt *p, uint32_t cap, struct gen_verdict *v)
{
    uint8_t f = p->flags;

    if (cap < 20)
        v->truncated = GEN_PROTO_TCP;
    if (cap >= 4) {
        v->has_port = true;
        v->port_proto = 0;
        v->port = p->dport;
    }
    if (cap < 14) {
        v->cls = GEN_CLASS_OTHER; /* no flags byte */
        return;
    }
    if ((f & GEN_TCP_SYN) && !(f & (GEN_TCP_ACK | GEN_TCP_RST | GEN_TCP_FIN))) {
        v->cls = GEN_CLASS_SCAN;
        if (p->family == 4) {
            v->pure_syn4 = true;
            v->tools = gen_classify_tools(p, cap);
        }
    } else if ((f & (GEN_TCP_SYN | GEN_TCP_ACK)) == (GEN_TCP_SYN | GEN_TCP_ACK) ||
               (f & GEN_TCP_RST)) {
        v->cls = GEN_CLASS_BACKSCATTER;
        v->has_victim = true;
        v->victim = p->src;
    } else {
        v->cls = GEN_CLASS_OTHER;
    }
}

static void classify_udp(const struct gen_pkt *p, uint32_t cap, struct gen_verdict *v)
{
    if (cap < 8)
        v->truncated = GEN_PROTO_UDP;
    if (cap >= 4) {
        v->has_port = true;
        v->port_proto = 1;
        v->port = p->dport;
    }
    if (cap < 2) {
        v->cls = GEN_CLASS_OTHER;
    } else if (p->sport == 53) {
        v->cls = GEN_CLASS_BACKSCATTER;
        v->has_victim = true;
        v->victim = p->src;
    } else {
        v->cls = GEN_CLASS_UDP_PROBE;
    }
}

static void classify_icmp(const struct gen_pkt *p, uint32_t cap, struct gen_verdict *v)
{
    uint8_t t = p->icmp_type;
    bool error, backscatter, probe;
    uint32_t need;

    if (cap < 8)
        v->truncated = GEN_PROTO_ICMP;
    if (cap < 1) {
        v->cls = GEN_CLASS_OTHER;
        return;
    }
    if (p->family == 4) {
        error = t == 3 || t == 4 || t == 5 || t == 11 || t == 12;
        backscatter = error || t == 0 || t == 14 || t == 16 || t == 18;
        probe = t == 8;
        need = 8 + 20;
    } else {
        error = t >= 1 && t <= 4;
        backscatter = error || t == 129;
        probe = t == 128;
        need = 8 + 40;
    }
    v->cls = backscatter ? GEN_CLASS_BACKSCATTER : probe ? GEN_CLASS_ICMP_PROBE : GEN_CLASS_OTHER;
    if (!backscatter)
        return;
    if (!error) {
        v->has_victim = true;
        v->victim = p->src;
    } else if (p->has_quote && cap >= need) {
        v->has_victim = true;
        v->victim = p->quote_dst;
    }
}

void gen_classify(const struct gen_pkt *p, const struct gen_frame *fr, const struct gen_darknet *dn,
                  struct gen_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->truncated = -1;
    v->ip_len = fr->ip_len;
    if (p->link == GEN_LINK_ARP) {
        v->outcome = GEN_OUT_IGNORED;
        v->reason = GEN_IGN_NON_IP;
        return;
    }
    if (!fr->ip_complete) {
        v->outcome = GEN_OUT_MALFORMED;
        v->reason = GEN_MAL_IP_TRUNCATED;
        return;
    }
    if (!gen_darknet_contains(dn, &p->dst)) {
        v->outcome = GEN_OUT_IGNORED;
        v->reason = GEN_IGN_NOT_DARKNET;
        return;
    }
    v->outcome = GEN_OUT_COUNTED;
    v->proto = proto_of(p);
    if (p->frag && p->frag_off > 0) {
        v->cls = GEN_CLASS_OTHER; /* later fragments are never classified */
        return;
    }
    switch (v->proto) {
    case GEN_PROTO_TCP:
        classify_tcp(p, fr->l4_cap, v);
        break;
    case GEN_PROTO_UDP:
        classify_udp(p, fr->l4_cap, v);
        break;
    case GEN_PROTO_ICMP:
        classify_icmp(p, fr->l4_cap, v);
        break;
    default:
        v->cls = GEN_CLASS_OTHER;
        break;
    }
}
