/* The classifier: class, tool fingerprints and backscatter victim of a decoded packet.
 * Pure; the rules and their sources are in docs/classification.md. */
#include "capture/cap_internal.h"

#define ZMAP_IPID 54321

static bool icmp_backscatter(int family, uint8_t type)
{
    if (family == 4)
        return type == 0 || type == 3 || type == 4 || type == 5 || type == 11 || type == 12 ||
               type == 14 || type == 16 || type == 18;
    return (type >= 1 && type <= 4) || type == 129;
}

static bool icmp_error(int family, uint8_t type)
{
    if (family == 4)
        return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
    return type >= 1 && type <= 4;
}

static uint8_t tools_of(const struct cap_pkt *p)
{
    uint32_t dst = (uint32_t)p->dst.b[0] << 24 | (uint32_t)p->dst.b[1] << 16 |
                   (uint32_t)p->dst.b[2] << 8 | p->dst.b[3];
    uint8_t t = 0;

    if (p->dst.family != 4)
        return 0;
    if (p->has_seq && p->seq == dst)
        t |= 1u << DS_TOOL_MIRAI;
    if (p->ipid == ZMAP_IPID)
        t |= 1u << DS_TOOL_ZMAP;
    if (p->has_seq && p->has_ports && p->ipid == ((dst ^ p->dport ^ p->seq) & 0xffff))
        t |= 1u << DS_TOOL_MASSCAN;
    if (p->has_win && (p->win == 1024 || p->win == 2048 || p->win == 3072 || p->win == 4096) &&
        p->tcp_opts == CAP_OPTS_MSS_ONLY)
        t |= 1u << DS_TOOL_NMAP;
    return t;
}

void cap_classify(struct cap_pkt *p)
{
    int family = p->src.family;

    p->cls = DS_CLASS_OTHER;
    p->tools = 0;
    p->pure_syn = false;
    if (p->later_fragment)
        return;
    switch (p->proto) {
    case DS_PROTO_TCP: {
        uint8_t f = p->tcp_flags;
        if (!p->has_flags)
            return;
        if ((f & CAP_TCP_SYN) && !(f & (CAP_TCP_ACK | CAP_TCP_RST | CAP_TCP_FIN))) {
            p->cls = DS_CLASS_SCAN;
            p->pure_syn = true;
            p->tools = tools_of(p);
        } else if (((f & CAP_TCP_SYN) && (f & CAP_TCP_ACK)) || (f & CAP_TCP_RST)) {
            p->cls = DS_CLASS_BACKSCATTER;
            p->has_victim = true;
            p->victim = p->src;
        }
        return;
    }
    case DS_PROTO_UDP:
        if (!p->has_sport)
            return;
        if (p->sport == 53) {
            p->cls = DS_CLASS_BACKSCATTER;
            p->has_victim = true;
            p->victim = p->src;
        } else {
            p->cls = DS_CLASS_UDP_PROBE;
        }
        return;
    case DS_PROTO_ICMP:
        if (!p->has_icmp)
            return;
        if (icmp_backscatter(family, p->icmp_type)) {
            p->cls = DS_CLASS_BACKSCATTER;
            /* errors: the decoder took the victim from the quoted header when it could */
            if (!icmp_error(family, p->icmp_type)) {
                p->has_victim = true;
                p->victim = p->src;
            }
        } else if (p->icmp_type == (family == 4 ? 8 : 128)) {
            p->cls = DS_CLASS_ICMP_PROBE;
        }
        return;
    default:
        return;
    }
}
