/* Fuzz target: the packet decoder and classifier (capture/decode.c, classify.c) — any frame, on
 * any link type the decoder knows, decodes to a consistent packet or is ignored or malformed
 * with a reason; it never reads past the captured bytes.
 *
 * Input: one byte, then the frame. The byte's low 4 bits pick the link type (links[] below;
 * tests/fuzz/run_libfuzzer.py writes real frames from pcaps in the same form), bit 0x40 gives
 * the frame an invalid timestamp, bit 0x80 says the capture cut it (wire length > caplen). */
#include "capture/cap_internal.h"

#include <pcap/dlt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef DLT_LINUX_SLL2
#define DLT_LINUX_SLL2 276
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int links[] = {
    DLT_EN10MB,
    DLT_LINUX_SLL,
    DLT_LINUX_SLL2,
    DLT_RAW,
    14 /* DLT_RAW on some BSDs */,
    101 /* LINKTYPE_RAW */,
    228 /* LINKTYPE_IPV4 */,
    229 /* LINKTYPE_IPV6 */,
    DLT_NULL,
    DLT_LOOP,
    DLT_NFLOG,
    DLT_IEEE802_11 /* not decoded: ignored */
};

static struct ds_prefixset darknet, exclude;

static void prefixes_init(void)
{
    static const char *const dark[] = {"203.0.113.0/24", "198.18.0.0/15", "2001:db8:d::/48"};
    struct ds_cidr c;

    ds_prefixset_init(&darknet);
    ds_prefixset_init(&exclude);
    for (size_t i = 0; i < DS_ARRAY_LEN(dark); i++) {
        if (ds_cidr_parse(dark[i], &c) < 0 || ds_prefixset_add(&darknet, &c) < 0)
            abort();
    }
    if (ds_cidr_parse("203.0.113.128/25", &c) < 0 || ds_prefixset_add(&exclude, &c) < 0)
        abort();
}

static bool family_ok(const struct ds_addr *a)
{
    return a->family == 4 || a->family == 6;
}

/* What every counted packet promises aggregation. */
static void check_packet(const struct cap_pkt *p)
{
    if (!family_ok(&p->src) || p->dst.family != p->src.family)
        abort();
    if (p->proto >= DS_PROTO_N || p->cls >= DS_CLASS_N || p->tools >= 1u << DS_TOOL_N)
        abort();
    if (p->trunc < DS_TRUNC_NONE || p->trunc >= DS_TRUNC_N)
        abort();
    if (p->has_victim && !family_ok(&p->victim))
        abort();
    if (p->later_fragment && (!p->fragment || p->cls != DS_CLASS_OTHER))
        abort();
    if (p->pure_syn && (p->proto != DS_PROTO_TCP || p->cls != DS_CLASS_SCAN))
        abort();
    if (p->tcp_opts < CAP_OPTS_UNKNOWN || p->tcp_opts > CAP_OPTS_OTHER)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    struct cap_frame f;
    struct cap_pkt p, again;
    enum cap_outcome o;
    int reason, reason2, prefix;

    if (!ready) {
        prefixes_init();
        ready = true;
    }
    if (size < 1)
        return 0;
    f = (struct cap_frame){
        .dlt = links[(data[0] & 0x0f) % DS_ARRAY_LEN(links)],
        .ts_sec = 1700000000,
        .ts_nsec = data[0] & 0x40 ? DS_NS_PER_SEC : 123456789,
        .caplen = (uint32_t)(size - 1),
        .wirelen = (uint32_t)(size - 1) + (data[0] & 0x80 ? 1000 : 0),
        .data = data + 1,
    };
    o = cap_decode(&f, &p, &reason);
    switch (o) {
    case CAP_COUNTED:
        check_packet(&p);
        break;
    case CAP_IGNORED:
        if (reason < 0 || reason >= DS_IGN_N)
            abort();
        return 0;
    case CAP_MALFORMED:
        if (reason < 0 || reason >= DS_MAL_N)
            abort();
        return 0;
    default:
        abort();
    }
    /* pure: the same frame decodes the same, and classifying again changes nothing */
    if (cap_decode(&f, &again, &reason2) != o || reason2 != reason ||
        memcmp(&p, &again, sizeof(p)) != 0)
        abort();
    cap_classify(&again);
    if (memcmp(&p, &again, sizeof(p)) != 0)
        abort();
    o = cap_darknet_check(&darknet, &exclude, &p, &reason, &prefix);
    if (o == CAP_COUNTED
            ? prefix < 0 || (unsigned)prefix >= darknet.n
            : o != CAP_IGNORED || (reason != DS_IGN_NOT_DARKNET && reason != DS_IGN_EXCLUDED))
        abort();
    return 0;
}
