/* Unit tests of capture/decode.c: every link type, IPv4/IPv6 header and transport rule of
 * docs/classification.md, on frames written out byte by byte, plus cap_darknet_check().
 *
 * Every frame is decoded from a heap block of exactly caplen bytes (decode_parts()), so a build
 * with -Db_sanitize=address reports any read past the captured length. Addresses are the
 * documentation ranges: 198.51.100.7 / 2001:db8::7 scan 203.0.113.9 / 2001:db8:d::9. */
#include "capture/cap_internal.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <pcap/dlt.h>

#define LINKTYPE_IPV4 228
#define LINKTYPE_IPV6 229
#define TS_SEC        1700000000

/* ---------------------------------------------------------------- building blocks */

/* 198.51.100.7 -> 203.0.113.9 */
#define V4_SRC_DST 198, 51, 100, 7, 203, 0, 113, 9
/* 2001:db8::7 -> 2001:db8:d::9 */
#define V6_SRC_DST                                                                                 \
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07, 0x20, 0x01, 0x0d, 0xb8, 0,      \
        0x0d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x09
/* 20-byte TCP SYN, port 40000 -> 80, sequence 0x01020304, data offset 5, window 64240, checksum
 * and urgent pointer 0. No tool fingerprint matches it with the addresses above and IP ID 0x1111
 * (masscan's value would be 0x725d). */
#define TCP_SYN                                                                                    \
    0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0

static const uint8_t src4[4] = {198, 51, 100, 7};
static const uint8_t dst4[4] = {203, 0, 113, 9};
static const uint8_t src6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07};
static const uint8_t dst6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x0d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x09};

static const uint8_t ipv4_syn[] = {
    0x45,       0x00, 0x00, 0x28, /* version 4, IHL 5 (20 bytes); DSCP 0; total length 40 */
    0x11,       0x11, 0x00, 0x00, /* IP ID 0x1111; no flags, fragment offset 0 */
    0x40,       0x06, 0x00, 0x00, /* TTL 64; protocol 6 (TCP); checksum (not checked) */
    V4_SRC_DST,                   /* 198.51.100.7 -> 203.0.113.9 */
    TCP_SYN,                      /* 40000 -> 80 SYN */
};

static const uint8_t ipv6_syn[] = {
    0x60,       0x00, 0x00, 0x00, /* version 6, traffic class 0, flow label 0 */
    0x00,       0x14, 0x06, 0x40, /* payload length 20; next header 6 (TCP); hop limit 64 */
    V6_SRC_DST,                   /* 2001:db8::7 -> 2001:db8:d::9 */
    TCP_SYN,                      /* 40000 -> 80 SYN */
};

static const uint8_t eth_ipv4[] = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, /* destination MAC */
    0x00, 0x66, 0x77, 0x88, 0x99, 0xaa, /* source MAC */
    0x08, 0x00,                         /* ethertype IPv4 */
};

static const uint8_t eth_ipv6[] = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, /* destination MAC */
    0x00, 0x66, 0x77, 0x88, 0x99, 0xaa, /* source MAC */
    0x86, 0xdd,                         /* ethertype IPv6 */
};

static const uint8_t none[1] = {0};

/* ---------------------------------------------------------------- helpers */

struct decoded {
    enum cap_outcome outcome;
    int reason;
    struct cap_pkt pkt;
};

/* Decodes the first caplen bytes of link followed by ip. The bytes are copied to a heap block of
 * exactly caplen bytes; wirelen is the whole length, as when a snap length cut the frame. */
static struct decoded decode_parts(int dlt, int64_t ts_nsec, const uint8_t *link, size_t link_len,
                                   const uint8_t *ip, size_t ip_len, size_t caplen)
{
    size_t whole = link_len + ip_len;
    uint8_t *tmp = malloc(whole);
    uint8_t *exact;
    struct cap_frame f;
    struct decoded d;

    assert_true(caplen <= whole);
    assert_non_null(tmp);
    memcpy(tmp, link, link_len);
    memcpy(tmp + link_len, ip, ip_len);
    exact = malloc(caplen);
    assert_non_null(exact);
    memcpy(exact, tmp, caplen);
    free(tmp);

    f.dlt = dlt;
    f.ts_sec = TS_SEC;
    f.ts_nsec = ts_nsec;
    f.caplen = (uint32_t)caplen;
    f.wirelen = (uint32_t)whole;
    f.data = exact;
    memset(&d, 0xa5, sizeof(d)); /* the decoder must set everything it reports */
    d.outcome = cap_decode(&f, &d.pkt, &d.reason);
    free(exact);
    return d;
}

/* A whole frame in one array. */
#define DECODE(dlt, bytes) decode_parts((dlt), 0, (bytes), sizeof(bytes), none, 0, sizeof(bytes))
/* The first caplen bytes of a frame in one array. */
#define DECODE_CUT(dlt, bytes, caplen)                                                             \
    decode_parts((dlt), 0, (bytes), sizeof(bytes), none, 0, (caplen))
/* A link header array followed by an IP packet array. */
#define DECODE_LINK(dlt, link, ip)                                                                 \
    decode_parts((dlt), 0, (link), sizeof(link), (ip), sizeof(ip), sizeof(link) + sizeof(ip))
#define DECODE_LINK_CUT(dlt, link, ip, caplen)                                                     \
    decode_parts((dlt), 0, (link), sizeof(link), (ip), sizeof(ip), (caplen))

static void assert_malformed(struct decoded d, enum ds_malformed reason)
{
    assert_int_equal(d.outcome, CAP_MALFORMED);
    assert_int_equal(d.reason, reason);
}

static void assert_non_ip(struct decoded d)
{
    assert_int_equal(d.outcome, CAP_IGNORED);
    assert_int_equal(d.reason, DS_IGN_NON_IP);
}

/* The packet ipv4_syn / ipv6_syn describe, decoded whole. */
static void assert_v4_syn(struct decoded d)
{
    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.src.family, 4);
    assert_memory_equal(d.pkt.src.b, src4, 4);
    assert_memory_equal(d.pkt.dst.b, dst4, 4);
    assert_int_equal(d.pkt.ip_len, 40);
    assert_int_equal(d.pkt.ipproto, 6);
    assert_int_equal(d.pkt.proto, DS_PROTO_TCP);
    assert_int_equal(d.pkt.cls, DS_CLASS_SCAN);
    assert_int_equal(d.pkt.sport, 40000);
    assert_int_equal(d.pkt.dport, 80);
    assert_int_equal(d.pkt.trunc, DS_TRUNC_NONE);
    assert_int_equal(d.pkt.tools, 0);
}

static void assert_v6_syn(struct decoded d)
{
    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.dst.family, 6);
    assert_memory_equal(d.pkt.src.b, src6, 16);
    assert_memory_equal(d.pkt.dst.b, dst6, 16);
    assert_int_equal(d.pkt.ip_len, 60);
    assert_int_equal(d.pkt.proto, DS_PROTO_TCP);
    assert_int_equal(d.pkt.cls, DS_CLASS_SCAN);
    assert_int_equal(d.pkt.dport, 80);
    assert_int_equal(d.pkt.trunc, DS_TRUNC_NONE);
}

/* Every cut of frame from caplen `from` to `to` (inclusive) is malformed with reason. */
static void assert_cuts_malformed(int dlt, const uint8_t *frame, size_t len, size_t from, size_t to,
                                  enum ds_malformed reason)
{
    for (size_t cap = from; cap <= to; cap++)
        assert_malformed(decode_parts(dlt, 0, frame, len, none, 0, cap), reason);
}

/* Every cut from `from` to `to` is counted with that protocol, class and truncation. */
static void assert_cuts_counted(int dlt, const uint8_t *frame, size_t len, size_t from, size_t to,
                                enum ds_proto proto, enum ds_class cls, enum ds_trunc trunc)
{
    for (size_t cap = from; cap <= to; cap++) {
        struct decoded d = decode_parts(dlt, 0, frame, len, none, 0, cap);
        assert_int_equal(d.outcome, CAP_COUNTED);
        assert_int_equal(d.pkt.proto, proto);
        assert_int_equal(d.pkt.cls, cls);
        assert_int_equal(d.pkt.trunc, trunc);
        assert_int_equal(d.pkt.tools, 0);
    }
}

/* ---------------------------------------------------------------- timestamps */

static void test_timestamp_nanoseconds(void **state)
{
    struct decoded d =
        decode_parts(DLT_RAW, 999999999, ipv4_syn, sizeof(ipv4_syn), none, 0, sizeof(ipv4_syn));

    assert_v4_syn(d);
    assert_int_equal(d.pkt.ts, (int64_t)TS_SEC * DS_NS_PER_SEC + 999999999);
}

static void test_timestamp_fraction_one_second_is_malformed(void **state)
{
    assert_malformed(
        decode_parts(DLT_RAW, DS_NS_PER_SEC, ipv4_syn, sizeof(ipv4_syn), none, 0, sizeof(ipv4_syn)),
        DS_MAL_BAD_TIMESTAMP);
}

static void test_timestamp_negative_fraction_is_malformed(void **state)
{
    assert_malformed(
        decode_parts(DLT_RAW, -1, ipv4_syn, sizeof(ipv4_syn), none, 0, sizeof(ipv4_syn)),
        DS_MAL_BAD_TIMESTAMP);
}

/* ---------------------------------------------------------------- Ethernet and VLAN tags */

static void test_ethernet_ipv4(void **state)
{
    struct decoded d = DECODE_LINK(DLT_EN10MB, eth_ipv4, ipv4_syn);

    assert_v4_syn(d);
    assert_int_equal(d.pkt.ttl, 64);
    assert_int_equal(d.pkt.ipid, 0x1111);
    assert_int_equal(d.pkt.seq, 0x01020304);
    assert_int_equal(d.pkt.win, 64240);
    assert_int_equal(d.pkt.tcp_opts, CAP_OPTS_NONE);
    assert_true(d.pkt.pure_syn);
    assert_false(d.pkt.fragment);
}

static void test_ethernet_ipv6(void **state)
{
    assert_v6_syn(DECODE_LINK(DLT_EN10MB, eth_ipv6, ipv6_syn));
}

static void test_vlan_8021q(void **state)
{
    static const uint8_t link[] = {
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, /* destination MAC */
        0x00, 0x66, 0x77, 0x88, 0x99, 0xaa, /* source MAC */
        0x81, 0x00,                         /* 802.1Q tag */
        0x00, 0x64,                         /* priority 0, VLAN 100 */
        0x08, 0x00,                         /* ethertype IPv4 */
    };

    assert_v4_syn(DECODE_LINK(DLT_EN10MB, link, ipv4_syn));
}

static void test_qinq_two_tags(void **state)
{
    static const uint8_t link[] = {
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, /* destination MAC */
        0x00, 0x66, 0x77, 0x88, 0x99, 0xaa, /* source MAC */
        0x88, 0xa8,                         /* 802.1ad service tag */
        0x00, 0x0a,                         /* S-VLAN 10 */
        0x81, 0x00,                         /* 802.1Q customer tag */
        0x00, 0x64,                         /* C-VLAN 100 */
        0x86, 0xdd,                         /* ethertype IPv6 */
    };

    assert_v6_syn(DECODE_LINK(DLT_EN10MB, link, ipv6_syn));
}

static void test_four_tags_read(void **state)
{
    static const uint8_t link[] = {
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, /* destination MAC */
        0x00, 0x66, 0x77, 0x88, 0x99, 0xaa, /* source MAC */
        0x91, 0x00, 0x00, 0x01,             /* tag 1: old QinQ type 0x9100, VLAN 1 */
        0x88, 0xa8, 0x00, 0x02,             /* tag 2: 802.1ad, VLAN 2 */
        0x81, 0x00, 0x00, 0x03,             /* tag 3: 802.1Q, VLAN 3 */
        0x81, 0x00, 0x00, 0x04,             /* tag 4: 802.1Q, VLAN 4 */
        0x08, 0x00,                         /* ethertype IPv4 */
    };

    assert_v4_syn(DECODE_LINK(DLT_EN10MB, link, ipv4_syn));
}

static void test_fifth_tag_is_non_ip(void **state)
{
    static const uint8_t link[] = {
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, /* destination MAC */
        0x00, 0x66, 0x77, 0x88, 0x99, 0xaa, /* source MAC */
        0x81, 0x00, 0x00, 0x01,             /* tag 1 */
        0x81, 0x00, 0x00, 0x02,             /* tag 2 */
        0x81, 0x00, 0x00, 0x03,             /* tag 3 */
        0x81, 0x00, 0x00, 0x04,             /* tag 4 */
        0x81, 0x00, 0x00, 0x05,             /* tag 5: beyond the 4 read */
        0x08, 0x00,                         /* ethertype IPv4 */
    };

    assert_non_ip(DECODE_LINK(DLT_EN10MB, link, ipv4_syn));
}

static void test_vlan_tag_cut_is_link_truncated(void **state)
{
    static const uint8_t frame[] = {
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, /* destination MAC */
        0x00, 0x66, 0x77, 0x88, 0x99, 0xaa, /* source MAC */
        0x81, 0x00,                         /* 802.1Q tag */
        0x00, 0x64,                         /* VLAN 100; the inner ethertype is not captured */
    };

    assert_malformed(DECODE(DLT_EN10MB, frame), DS_MAL_LINK_TRUNCATED);
}

static void test_ethernet_cut_is_link_truncated(void **state)
{
    assert_malformed(DECODE_LINK_CUT(DLT_EN10MB, eth_ipv4, ipv4_syn, 13), DS_MAL_LINK_TRUNCATED);
}

static void test_ethernet_without_ip_is_ip_truncated(void **state)
{
    assert_malformed(DECODE(DLT_EN10MB, eth_ipv4), DS_MAL_IP_TRUNCATED);
}

/* zmap.pcap frame 1 (tshark -x), an ARP request: readable, not IP. */
static void test_arp_is_non_ip(void **state)
{
    static const uint8_t frame[] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* destination: broadcast */
        0x00, 0x50, 0x56, 0xc0, 0x00, 0x08, /* source MAC (VMware) */
        0x08, 0x06,                         /* ethertype ARP */
        0x00, 0x01, 0x08, 0x00,             /* hardware Ethernet, protocol IPv4 */
        0x06, 0x04, 0x00, 0x01,             /* sizes 6 and 4, opcode request */
        0x00, 0x50, 0x56, 0xc0, 0x00, 0x08, /* sender MAC */
        0xc0, 0xa8, 0x25, 0x01,             /* sender 192.168.37.1 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* target MAC (unknown) */
        0xc0, 0xa8, 0x25, 0x02,             /* target 192.168.37.2 */
    };

    assert_non_ip(DECODE(DLT_EN10MB, frame));
}

static void test_8023_length_field_is_non_ip(void **state)
{
    static const uint8_t frame[] = {
        0x01, 0x80, 0xc2, 0x00, 0x00, 0x00, /* destination: STP multicast */
        0x00, 0x66, 0x77, 0x88, 0x99, 0xaa, /* source MAC */
        0x00, 0x26,                         /* 802.3 length 38, not an ethertype */
        0x42, 0x42, 0x03,                   /* LLC: DSAP/SSAP 0x42 (STP), UI */
        0x00, 0x00, 0x00,                   /* STP protocol id 0, version 0, type 0 */
    };

    assert_non_ip(DECODE(DLT_EN10MB, frame));
}

static void test_ipv4_ethertype_with_ipv6_header_is_bad_version(void **state)
{
    assert_malformed(DECODE_LINK(DLT_EN10MB, eth_ipv4, ipv6_syn), DS_MAL_BAD_IP_VERSION);
}

static void test_ipv6_ethertype_with_ipv4_header_is_bad_version(void **state)
{
    assert_malformed(DECODE_LINK(DLT_EN10MB, eth_ipv6, ipv4_syn), DS_MAL_BAD_IP_VERSION);
}

static void test_ipv4_version_5_is_bad_version(void **state)
{
    static const uint8_t ip[] = {
        0x55,       0x00, 0x00, 0x28, /* version 5, IHL 5; total length 40 */
        0x11,       0x11, 0x00, 0x00, /* IP ID; no fragment */
        0x40,       0x06, 0x00, 0x00, /* TTL 64; TCP; checksum */
        V4_SRC_DST,                   /* addresses */
        TCP_SYN,                      /* SYN */
    };

    assert_malformed(DECODE_LINK(DLT_EN10MB, eth_ipv4, ip), DS_MAL_BAD_IP_VERSION);
}

/* ---------------------------------------------------------------- Linux cooked captures */

static const uint8_t sll_ipv4[] = {
    0x00, 0x00,                                     /* packet type 0: to this host */
    0x00, 0x01,                                     /* ARPHRD_ETHER */
    0x00, 0x06,                                     /* link-layer address length 6 */
    0x00, 0x66, 0x77, 0x88, 0x99, 0xaa, 0x00, 0x00, /* source MAC, padded to 8 */
    0x08, 0x00,                                     /* protocol IPv4 */
};

static const uint8_t sll2_ipv6[] = {
    0x86, 0xdd,                                     /* protocol IPv6 */
    0x00, 0x00,                                     /* reserved */
    0x00, 0x00, 0x00, 0x02,                         /* interface index 2 */
    0x00, 0x01,                                     /* ARPHRD_ETHER */
    0x00,                                           /* packet type 0: to this host */
    0x06,                                           /* link-layer address length 6 */
    0x00, 0x66, 0x77, 0x88, 0x99, 0xaa, 0x00, 0x00, /* source MAC, padded to 8 */
};

static void test_sll(void **state)
{
    assert_v4_syn(DECODE_LINK(DLT_LINUX_SLL, sll_ipv4, ipv4_syn));
}

static void test_sll_cut_is_link_truncated(void **state)
{
    assert_malformed(DECODE_LINK_CUT(DLT_LINUX_SLL, sll_ipv4, ipv4_syn, 15), DS_MAL_LINK_TRUNCATED);
}

static void test_sll_arp_is_non_ip(void **state)
{
    static const uint8_t frame[] = {
        0x00, 0x01,                                     /* packet type 1: broadcast */
        0x00, 0x01,                                     /* ARPHRD_ETHER */
        0x00, 0x06,                                     /* address length 6 */
        0x00, 0x66, 0x77, 0x88, 0x99, 0xaa, 0x00, 0x00, /* source MAC, padded */
        0x08, 0x06,                                     /* protocol ARP */
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, /* ARP request header */
    };

    assert_non_ip(DECODE(DLT_LINUX_SLL, frame));
}

static void test_sll2(void **state)
{
    assert_v6_syn(DECODE_LINK(DLT_LINUX_SLL2, sll2_ipv6, ipv6_syn));
}

static void test_sll2_cut_is_link_truncated(void **state)
{
    assert_malformed(DECODE_LINK_CUT(DLT_LINUX_SLL2, sll2_ipv6, ipv6_syn, 19),
                     DS_MAL_LINK_TRUNCATED);
}

/* ---------------------------------------------------------------- raw IP */

static void test_dlt_raw_ipv4(void **state)
{
    assert_int_equal(DLT_RAW, 12);
    assert_v4_syn(DECODE(DLT_RAW, ipv4_syn));
}

static void test_dlt_raw_ipv6(void **state)
{
    assert_v6_syn(DECODE(DLT_RAW, ipv6_syn));
}

static void test_dlt_raw_version_5_is_bad_version(void **state)
{
    static const uint8_t ip[] = {
        0x50,       0x00, 0x00, 0x28, /* version nibble 5 */
        0x11,       0x11, 0x00, 0x00, /* rest of an IPv4-looking header */
        0x40,       0x06, 0x00, 0x00, /* TTL; TCP; checksum */
        V4_SRC_DST,                   /* addresses */
    };

    assert_malformed(DECODE(DLT_RAW, ip), DS_MAL_BAD_IP_VERSION);
}

static void test_linktype_ipv4(void **state)
{
    assert_v4_syn(DECODE(LINKTYPE_IPV4, ipv4_syn));
}

static void test_linktype_ipv4_with_ipv6_is_bad_version(void **state)
{
    assert_malformed(DECODE(LINKTYPE_IPV4, ipv6_syn), DS_MAL_BAD_IP_VERSION);
}

static void test_linktype_ipv6(void **state)
{
    assert_v6_syn(DECODE(LINKTYPE_IPV6, ipv6_syn));
}

static void test_linktype_ipv6_with_ipv4_is_bad_version(void **state)
{
    assert_malformed(DECODE(LINKTYPE_IPV6, ipv4_syn), DS_MAL_BAD_IP_VERSION);
}

static void test_raw_empty_is_ip_truncated(void **state)
{
    assert_malformed(DECODE_CUT(DLT_RAW, ipv4_syn, 0), DS_MAL_IP_TRUNCATED);
}

/* ---------------------------------------------------------------- BSD NULL and LOOP */

static void test_null_little_endian_family(void **state)
{
    static const uint8_t link[] = {
        0x02, 0x00, 0x00, 0x00, /* AF_INET (2) in a little-endian host's order */
    };

    assert_v4_syn(DECODE_LINK(DLT_NULL, link, ipv4_syn));
}

static void test_null_big_endian_family(void **state)
{
    static const uint8_t link[] = {
        0x00, 0x00, 0x00, 0x02, /* AF_INET (2) in a big-endian host's order */
    };

    assert_v4_syn(DECODE_LINK(DLT_NULL, link, ipv4_syn));
}

static void test_null_ipv6_family(void **state)
{
    static const uint8_t link[] = {
        0x1e, 0x00, 0x00, 0x00, /* AF_INET6 on macOS (30), little-endian */
    };

    assert_v6_syn(DECODE_LINK(DLT_NULL, link, ipv6_syn));
}

static void test_null_unknown_family_is_non_ip(void **state)
{
    static const uint8_t link[] = {
        0x07, 0x00, 0x00, 0x00, /* family 7: neither IPv4 nor IPv6 */
    };

    assert_non_ip(DECODE_LINK(DLT_NULL, link, ipv4_syn));
}

static void test_null_cut_is_link_truncated(void **state)
{
    static const uint8_t frame[] = {
        0x02, 0x00, 0x00, /* three of the four family bytes */
    };

    assert_malformed(DECODE(DLT_NULL, frame), DS_MAL_LINK_TRUNCATED);
}

static void test_loop_network_order(void **state)
{
    static const uint8_t link[] = {
        0x00, 0x00, 0x00, 0x02, /* AF_INET (2), network byte order */
    };

    assert_int_equal(DLT_LOOP, 108);
    assert_v4_syn(DECODE_LINK(DLT_LOOP, link, ipv4_syn));
}

static void test_loop_ipv6(void **state)
{
    static const uint8_t link[] = {
        0x00, 0x00, 0x00, 0x18, /* AF_INET6 on OpenBSD (24), network byte order */
    };

    assert_v6_syn(DECODE_LINK(DLT_LOOP, link, ipv6_syn));
}

static void test_loop_little_endian_family_is_non_ip(void **state)
{
    static const uint8_t link[] = {
        0x02, 0x00, 0x00, 0x00, /* 0x02000000 in network order: no family */
    };

    assert_non_ip(DECODE_LINK(DLT_LOOP, link, ipv4_syn));
}

/* ---------------------------------------------------------------- NFLOG */

/* NFLOG header and TLVs up to the payload TLV, little-endian host; 28 bytes. */
static const uint8_t nflog_v4[] = {
    0x02, 0x00, 0x00, 0x05,                         /* family AF_INET, version 0, resource id 5 */
    0x08, 0x00, 0x01, 0x00,                         /* TLV length 8, type 1 NFULA_PACKET_HDR */
    0x08, 0x00, 0x01, 0x00,                         /* hw_protocol 0x0800, hook 1, pad */
    0x09, 0x00, 0x0a, 0x00,                         /* TLV length 9, type 10 NFULA_PREFIX */
    's',  'c',  'a',  'n',  0x00, 0x00, 0x00, 0x00, /* "scan\0" and 3 bytes of padding */
    0x2c, 0x00, 0x09, 0x00,                         /* TLV length 44 (4 + 40), NFULA_PAYLOAD */
};

static void test_nflog_payload_after_other_tlvs(void **state)
{
    assert_int_equal(DLT_NFLOG, 239);
    assert_v4_syn(DECODE_LINK(DLT_NFLOG, nflog_v4, ipv4_syn));
}

static void test_nflog_big_endian_tlvs(void **state)
{
    static const uint8_t link[] = {
        0x02, 0x00, 0x00, 0x05, /* family AF_INET, version 0, resource id 5 */
        0x00, 0x08, 0x00, 0x01, /* TLV length 8, type 1 NFULA_PACKET_HDR, big-endian host */
        0x08, 0x00, 0x01, 0x00, /* hw_protocol 0x0800, hook 1, pad */
        0x00, 0x2c, 0x00, 0x09, /* TLV length 44, type 9 NFULA_PAYLOAD */
    };

    assert_v4_syn(DECODE_LINK(DLT_NFLOG, link, ipv4_syn));
}

static void test_nflog_ipv6(void **state)
{
    static const uint8_t link[] = {
        0x0a, 0x00, 0x00, 0x05, /* family AF_INET6 (10), version 0, resource id 5 */
        0x08, 0x00, 0x01, 0x00, /* TLV length 8, NFULA_PACKET_HDR */
        0x86, 0xdd, 0x01, 0x00, /* hw_protocol 0x86dd, hook 1, pad */
        0x40, 0x00, 0x09, 0x00, /* TLV length 64 (4 + 60), NFULA_PAYLOAD */
    };

    assert_v6_syn(DECODE_LINK(DLT_NFLOG, link, ipv6_syn));
}

static void test_nflog_tlv_cut_is_link_truncated(void **state)
{
    /* the capture ends inside the NFULA_PREFIX TLV */
    assert_malformed(DECODE_LINK_CUT(DLT_NFLOG, nflog_v4, ipv4_syn, 18), DS_MAL_LINK_TRUNCATED);
}

static void test_nflog_without_payload_is_non_ip(void **state)
{
    static const uint8_t frame[] = {
        0x02, 0x00, 0x00, 0x05,                         /* family AF_INET, resource id 5 */
        0x08, 0x00, 0x01, 0x00,                         /* TLV length 8, NFULA_PACKET_HDR */
        0x08, 0x00, 0x01, 0x00,                         /* hw_protocol 0x0800, hook 1, pad */
        0x09, 0x00, 0x0a, 0x00,                         /* TLV length 9, NFULA_PREFIX */
        's',  'c',  'a',  'n',  0x00, 0x00, 0x00, 0x00, /* "scan\0", padding; frame ends here */
    };

    assert_non_ip(DECODE(DLT_NFLOG, frame));
}

static void test_nflog_other_family_is_non_ip(void **state)
{
    static const uint8_t link[] = {
        0x07, 0x00, 0x00, 0x05, /* family AF_BRIDGE (7) */
        0x2c, 0x00, 0x09, 0x00, /* TLV length 44, NFULA_PAYLOAD */
    };

    assert_non_ip(DECODE_LINK(DLT_NFLOG, link, ipv4_syn));
}

/* An NFLOG rule copying 42 bytes of a 44-byte SYN: the payload TLV (46 bytes) is padded to 48
 * with zeros, which are not TCP option bytes. */
static void test_nflog_payload_ends_with_its_tlv(void **state)
{
    static const uint8_t frame[] = {
        0x02,       0x00, 0x00, 0x05, /* family AF_INET, resource id 5 */
        0x2e,       0x00, 0x09, 0x00, /* TLV length 46 (4 + 42 copied bytes), NFULA_PAYLOAD */
        0x45,       0x00, 0x00, 0x2c, /* IPv4, IHL 5; total length 44 */
        0x11,       0x11, 0x00, 0x00, /* IP ID 0x1111; no fragment */
        0x40,       0x06, 0x00, 0x00, /* TTL 64; TCP; checksum */
        V4_SRC_DST,                   /* addresses */
        0x9c,       0x40, 0x00, 0x50, /* 40000 -> 80 */
        0x01,       0x02, 0x03, 0x04, /* sequence */
        0x00,       0x00, 0x00, 0x00, /* ack */
        0x60,       0x02, 0x04, 0x00, /* data offset 6 (24 bytes), SYN; window 1024 */
        0x00,       0x00, 0x00, 0x00, /* checksum; urgent pointer */
        0x02,       0x04,             /* MSS option kind and length; its value was not copied */
        0x00,       0x00,             /* TLV padding */
    };
    struct decoded d = DECODE(DLT_NFLOG, frame);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.cls, DS_CLASS_SCAN);
    assert_int_equal(d.pkt.trunc, DS_TRUNC_TCP);
    assert_int_equal(d.pkt.tcp_opts, CAP_OPTS_UNKNOWN);
    assert_int_equal(d.pkt.tools, 0);
}

/* ---------------------------------------------------------------- IPv4 header */

static void test_ipv4_under_20_bytes_is_ip_truncated(void **state)
{
    assert_malformed(DECODE_CUT(DLT_RAW, ipv4_syn, 19), DS_MAL_IP_TRUNCATED);
}

static void test_ipv4_ihl_below_5_is_bad_header(void **state)
{
    static const uint8_t ip[] = {
        0x44,       0x00, 0x00, 0x28, /* version 4, IHL 4 (16 bytes); total length 40 */
        0x11,       0x11, 0x00, 0x00, /* IP ID; no fragment */
        0x40,       0x06, 0x00, 0x00, /* TTL 64; TCP; checksum */
        V4_SRC_DST,                   /* addresses */
        TCP_SYN,                      /* SYN */
    };

    assert_malformed(DECODE(DLT_RAW, ip), DS_MAL_BAD_IP_HEADER);
}

static void test_ipv4_total_length_below_header_is_bad_header(void **state)
{
    static const uint8_t ip[] = {
        0x45,       0x00, 0x00, 0x13, /* version 4, IHL 5 (20 bytes); total length 19 */
        0x11,       0x11, 0x00, 0x00, /* IP ID; no fragment */
        0x40,       0x06, 0x00, 0x00, /* TTL 64; TCP; checksum */
        V4_SRC_DST,                   /* addresses */
        TCP_SYN,                      /* SYN */
    };

    assert_malformed(DECODE(DLT_RAW, ip), DS_MAL_BAD_IP_HEADER);
}

static const uint8_t ipv4_options_syn[] = {
    0x46,       0x00, 0x00, 0x2c, /* version 4, IHL 6 (24 bytes); total length 44 */
    0x11,       0x11, 0x00, 0x00, /* IP ID 0x1111; no fragment */
    0x40,       0x06, 0x00, 0x00, /* TTL 64; TCP; checksum */
    V4_SRC_DST,                   /* addresses */
    0x01,       0x01, 0x01, 0x00, /* IP options: NOP, NOP, NOP, end of list */
    TCP_SYN,                      /* SYN, at offset 24 */
};

static void test_ipv4_options_skipped(void **state)
{
    struct decoded d = DECODE(DLT_RAW, ipv4_options_syn);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.ip_len, 44);
    assert_int_equal(d.pkt.sport, 40000);
    assert_int_equal(d.pkt.dport, 80);
    assert_int_equal(d.pkt.cls, DS_CLASS_SCAN);
}

static void test_ipv4_cut_inside_options_is_ip_truncated(void **state)
{
    assert_malformed(DECODE_CUT(DLT_RAW, ipv4_options_syn, 22), DS_MAL_IP_TRUNCATED);
}

static void test_ipv4_bytes_is_total_length_not_captured(void **state)
{
    static const uint8_t ip[] = {
        0x45,       0x00, 0x05, 0xdc, /* version 4, IHL 5; total length 1500 */
        0x11,       0x11, 0x00, 0x00, /* IP ID; no fragment */
        0x40,       0x06, 0x00, 0x00, /* TTL 64; TCP; checksum */
        V4_SRC_DST,                   /* addresses */
        TCP_SYN,                      /* SYN; the 1460 payload bytes were not captured */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.ip_len, 1500);
    assert_int_equal(d.pkt.cls, DS_CLASS_SCAN);
    assert_int_equal(d.pkt.trunc, DS_TRUNC_NONE);
}

/* Ethernet pads a 40-byte packet to 60 bytes: the padding is neither counted nor read as TCP
 * options, even when the data offset claims more header than the IP total length holds. */
static void test_tcp_data_offset_beyond_segment(void **state)
{
    static const uint8_t frame[] = {
        0x00,       0x11, 0x22, 0x33, 0x44, 0x55, /* destination MAC */
        0x00,       0x66, 0x77, 0x88, 0x99, 0xaa, /* source MAC */
        0x08,       0x00,                         /* IPv4 */
        0x45,       0x00, 0x00, 0x28,             /* IHL 5; total length 40: a 20-byte segment */
        0x11,       0x11, 0x00, 0x00,             /* IP ID; no fragment */
        0x40,       0x06, 0x00, 0x00,             /* TTL 64; TCP; checksum */
        V4_SRC_DST,                               /* addresses */
        0x9c,       0x40, 0x00, 0x50,             /* 40000 -> 80 */
        0x01,       0x02, 0x03, 0x04,             /* sequence */
        0x00,       0x00, 0x00, 0x00,             /* ack */
        0x60,       0x02, 0x04, 0x00, /* data offset 6 (24 bytes > 20), SYN; window 1024 */
        0x00,       0x00, 0x00, 0x00, /* checksum; urgent pointer */
        0x02,       0x04, 0x05, 0xb4, /* Ethernet padding that looks like an MSS option */
        0x00,       0x00,             /* more padding */
    };
    struct decoded d = DECODE(DLT_EN10MB, frame);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.ip_len, 40);
    assert_int_equal(d.pkt.cls, DS_CLASS_SCAN);
    assert_int_equal(d.pkt.win, 1024);
    assert_int_equal(d.pkt.tcp_opts, CAP_OPTS_UNKNOWN);
    assert_int_equal(d.pkt.tools & (1u << DS_TOOL_NMAP), 0);
    assert_int_equal(d.pkt.trunc, DS_TRUNC_TCP);
}

/* ---------------------------------------------------------------- IPv4 fragments and tunnels */

static void test_ipv4_first_fragment_classified(void **state)
{
    static const uint8_t ip[] = {
        0x45,       0x00, 0x00, 0x28, /* IHL 5; total length 40 */
        0x11,       0x11, 0x20, 0x00, /* IP ID; flag MF, fragment offset 0 */
        0x40,       0x06, 0x00, 0x00, /* TTL 64; TCP; checksum */
        V4_SRC_DST,                   /* addresses */
        TCP_SYN,                      /* SYN */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_true(d.pkt.fragment);
    assert_false(d.pkt.later_fragment);
    assert_int_equal(d.pkt.proto, DS_PROTO_TCP);
    assert_int_equal(d.pkt.cls, DS_CLASS_SCAN);
}

static void test_ipv4_later_fragment_is_other(void **state)
{
    static const uint8_t ip[] = {
        0x45,       0x00, 0x00, 0x28, /* IHL 5; total length 40 */
        0x11,       0x11, 0x00, 0xb9, /* IP ID; last fragment, offset 185 (1480 bytes) */
        0x40,       0x06, 0x00, 0x00, /* TTL 64; protocol TCP; checksum */
        V4_SRC_DST,                   /* addresses */
        TCP_SYN,                      /* payload bytes that happen to look like a SYN */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_true(d.pkt.fragment);
    assert_true(d.pkt.later_fragment);
    assert_int_equal(d.pkt.ipproto, 6);
    assert_int_equal(d.pkt.proto, DS_PROTO_TCP);
    assert_int_equal(d.pkt.cls, DS_CLASS_OTHER);
    assert_false(d.pkt.has_ports);
    assert_int_equal(d.pkt.tools, 0);
}

static void test_ipv4_later_udp_fragment_keeps_protocol(void **state)
{
    static const uint8_t ip[] = {
        0x45,       0x00, 0x00, 0x1c, /* IHL 5; total length 28 */
        0x11,       0x11, 0x20, 0x01, /* IP ID; MF, offset 1 (8 bytes) */
        0x40,       0x11, 0x00, 0x00, /* TTL 64; protocol 17 (UDP); checksum */
        V4_SRC_DST,                   /* addresses */
        0x00,       0x35, 0x00, 0x35, /* payload bytes, not a UDP header */
        0x00,       0x08, 0x00, 0x00, /* more payload */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.proto, DS_PROTO_UDP);
    assert_int_equal(d.pkt.cls, DS_CLASS_OTHER);
    assert_false(d.pkt.has_victim);
}

static void test_ip_in_ip_is_other(void **state)
{
    static const uint8_t ip[] = {
        0x45,       0x00, 0x00, 0x3c, /* outer IHL 5; total length 60 */
        0x11,       0x11, 0x00, 0x00, /* IP ID; no fragment */
        0x40,       0x04, 0x00, 0x00, /* TTL 64; protocol 4 (IPv4 in IPv4); checksum */
        V4_SRC_DST,                   /* outer addresses */
        0x45,       0x00, 0x00, 0x28, /* inner IPv4 header: never looked at */
        0x11,       0x11, 0x00, 0x00, /* inner IP ID */
        0x40,       0x06, 0x00, 0x00, /* inner TCP */
        V4_SRC_DST,                   /* inner addresses */
        TCP_SYN,                      /* inner SYN */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.ipproto, 4);
    assert_int_equal(d.pkt.proto, DS_PROTO_OTHER);
    assert_int_equal(d.pkt.cls, DS_CLASS_OTHER);
    assert_int_equal(d.pkt.ip_len, 60);
}

static void test_ipv6_in_ipv4_is_other(void **state)
{
    static const uint8_t ip[] = {
        0x45,       0x00, 0x00, 0x50, /* outer IHL 5; total length 80 */
        0x11,       0x11, 0x00, 0x00, /* IP ID; no fragment */
        0x40,       0x29, 0x00, 0x00, /* TTL 64; protocol 41 (IPv6 in IPv4); checksum */
        V4_SRC_DST,                   /* outer addresses */
        0x60,       0x00, 0x00, 0x00, /* inner IPv6 header: never looked at */
        0x00,       0x14, 0x06, 0x40, /* payload length 20; TCP */
        V6_SRC_DST,                   /* inner addresses */
        TCP_SYN,                      /* inner SYN */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.pkt.proto, DS_PROTO_OTHER);
    assert_int_equal(d.pkt.cls, DS_CLASS_OTHER);
}

static void test_gre_is_other(void **state)
{
    static const uint8_t ip[] = {
        0x45,       0x00, 0x00, 0x40, /* outer IHL 5; total length 64 */
        0x11,       0x11, 0x00, 0x00, /* IP ID; no fragment */
        0x40,       0x2f, 0x00, 0x00, /* TTL 64; protocol 47 (GRE); checksum */
        V4_SRC_DST,                   /* outer addresses */
        0x00,       0x00, 0x08, 0x00, /* GRE: no flags, version 0; protocol IPv4 */
        0x45,       0x00, 0x00, 0x28, /* inner IPv4 header: never looked at */
        0x11,       0x11, 0x00, 0x00, /* inner IP ID */
        0x40,       0x06, 0x00, 0x00, /* inner TCP */
        V4_SRC_DST,                   /* inner addresses */
        TCP_SYN,                      /* inner SYN */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.pkt.ipproto, 47);
    assert_int_equal(d.pkt.proto, DS_PROTO_OTHER);
    assert_int_equal(d.pkt.cls, DS_CLASS_OTHER);
}

/* ---------------------------------------------------------------- IPv6 header and extensions */

static void test_ipv6_under_40_bytes_is_ip_truncated(void **state)
{
    assert_malformed(DECODE_CUT(DLT_RAW, ipv6_syn, 39), DS_MAL_IP_TRUNCATED);
}

static void test_ipv6_bytes_is_40_plus_payload_length(void **state)
{
    static const uint8_t ip[] = {
        0x60,       0x00, 0x00, 0x00, /* version 6 */
        0x05,       0xc8, 0x06, 0x40, /* payload length 1480; TCP; hop limit 64 */
        V6_SRC_DST,                   /* addresses */
        TCP_SYN,                      /* SYN; the other 1460 bytes were not captured */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.ip_len, 1520);
    assert_int_equal(d.pkt.cls, DS_CLASS_SCAN);
}

static void test_ipv6_hop_by_hop_then_destination_options(void **state)
{
    static const uint8_t ip[] = {
        0x60,       0x00, 0x00, 0x00, /* version 6 */
        0x00,       0x24, 0x00, 0x40, /* payload 36; next header 0 (hop-by-hop) */
        V6_SRC_DST,                   /* addresses */
        0x3c,       0x00, 0x01, 0x04,
        0x00,       0x00, 0x00, 0x00, /* hop-by-hop: next 60, 8 bytes, PadN */
        0x06,       0x00, 0x01, 0x04,
        0x00,       0x00, 0x00, 0x00, /* destination options: next 6 (TCP) */
        TCP_SYN,                      /* SYN */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.ipproto, 6);
    assert_int_equal(d.pkt.proto, DS_PROTO_TCP);
    assert_int_equal(d.pkt.cls, DS_CLASS_SCAN);
    assert_int_equal(d.pkt.dport, 80);
    assert_int_equal(d.pkt.ip_len, 76);
}

static void test_ipv6_ah_length_in_4_byte_units(void **state)
{
    static const uint8_t ip[] = {
        0x60,       0x00, 0x00, 0x00, /* version 6 */
        0x00,       0x20, 0x33, 0x40, /* payload 32; next header 51 (AH) */
        V6_SRC_DST,                   /* addresses */
        0x06,       0x01, 0x00, 0x00, /* AH: next 6 (TCP), length 1: (1 + 2) * 4 = 12 bytes */
        0x00,       0x00, 0x01, 0x00, /* SPI 256 */
        0x00,       0x00, 0x00, 0x01, /* sequence number 1, no ICV */
        TCP_SYN,                      /* SYN */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.pkt.proto, DS_PROTO_TCP);
    assert_int_equal(d.pkt.cls, DS_CLASS_SCAN);
    assert_int_equal(d.pkt.sport, 40000);
}

/* Destination options header chained to `next`, 8 bytes. */
#define DSTOPT(next) (next), 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00

static void test_ipv6_eight_extension_headers(void **state)
{
    static const uint8_t ip[] = {
        0x60,       0x00, 0x00, 0x00, /* version 6 */
        0x00,       0x54, 0x3c, 0x40, /* payload 84 (64 + 20); next header 60 */
        V6_SRC_DST,                   /* addresses */
        DSTOPT(60),                   /* extension header 1 */
        DSTOPT(60),                   /* 2 */
        DSTOPT(60),                   /* 3 */
        DSTOPT(60),                   /* 4 */
        DSTOPT(60),                   /* 5 */
        DSTOPT(60),                   /* 6 */
        DSTOPT(60),                   /* 7 */
        DSTOPT(6),                    /* 8: next header TCP */
        TCP_SYN,                      /* SYN */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.pkt.proto, DS_PROTO_TCP);
    assert_int_equal(d.pkt.cls, DS_CLASS_SCAN);
}

static void test_ipv6_ninth_extension_header_is_other(void **state)
{
    static const uint8_t ip[] = {
        0x60,       0x00, 0x00, 0x00, /* version 6 */
        0x00,       0x5c, 0x3c, 0x40, /* payload 92 (72 + 20); next header 60 */
        V6_SRC_DST,                   /* addresses */
        DSTOPT(60),                   /* extension header 1 */
        DSTOPT(60),                   /* 2 */
        DSTOPT(60),                   /* 3 */
        DSTOPT(60),                   /* 4 */
        DSTOPT(60),                   /* 5 */
        DSTOPT(60),                   /* 6 */
        DSTOPT(60),                   /* 7 */
        DSTOPT(60),                   /* 8 */
        DSTOPT(6),                    /* 9: one too many */
        TCP_SYN,                      /* SYN, not looked at */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.proto, DS_PROTO_OTHER);
    assert_int_equal(d.pkt.cls, DS_CLASS_OTHER);
    assert_int_equal(d.pkt.ip_len, 132);
}

static void test_ipv6_extension_header_cut_is_other(void **state)
{
    static const uint8_t ip[] = {
        0x60,       0x00, 0x00, 0x00, /* version 6 */
        0x00,       0x24, 0x00, 0x40, /* payload 36; next header 0 */
        V6_SRC_DST,                   /* addresses */
        0x06,       0x02, 0x01, 0x14,
        0x00,       0x00, 0x00, 0x00, /* hop-by-hop, 24 bytes: only 8 here */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.proto, DS_PROTO_OTHER);
    assert_int_equal(d.pkt.cls, DS_CLASS_OTHER);
}

static void test_ipv6_esp_is_other(void **state)
{
    static const uint8_t ip[] = {
        0x60,       0x00, 0x00, 0x00, /* version 6 */
        0x00,       0x10, 0x32, 0x40, /* payload 16; next header 50 (ESP) */
        V6_SRC_DST,                   /* addresses */
        0x00,       0x00, 0x01, 0x00, /* SPI 256 */
        0x00,       0x00, 0x00, 0x01, /* sequence 1 */
        0x06,       0x02, 0x03, 0x04, /* encrypted bytes */
        0x05,       0x06, 0x07, 0x08, /* encrypted bytes */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.pkt.ipproto, 50);
    assert_int_equal(d.pkt.proto, DS_PROTO_OTHER);
    assert_int_equal(d.pkt.cls, DS_CLASS_OTHER);
}

static void test_ipv6_no_next_header_is_other(void **state)
{
    static const uint8_t ip[] = {
        0x60,       0x00, 0x00, 0x00, /* version 6 */
        0x00,       0x00, 0x3b, 0x40, /* payload 0; next header 59 (none) */
        V6_SRC_DST,                   /* addresses */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.proto, DS_PROTO_OTHER);
    assert_int_equal(d.pkt.cls, DS_CLASS_OTHER);
    assert_int_equal(d.pkt.ip_len, 40);
}

static void test_ipv6_first_fragment_classified(void **state)
{
    static const uint8_t ip[] = {
        0x60,       0x00, 0x00, 0x00,                         /* version 6 */
        0x00,       0x1c, 0x2c, 0x40,                         /* payload 28; next header 44 */
        V6_SRC_DST,                                           /* addresses */
        0x06,       0x00, 0x00, 0x01, 0x00, 0x00, 0x12, 0x34, /* fragment: next TCP, offset 0, M */
        TCP_SYN,                                              /* SYN */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_true(d.pkt.fragment);
    assert_false(d.pkt.later_fragment);
    assert_int_equal(d.pkt.proto, DS_PROTO_TCP);
    assert_int_equal(d.pkt.cls, DS_CLASS_SCAN);
}

static void test_ipv6_later_fragment_is_other(void **state)
{
    static const uint8_t ip[] = {
        0x60,       0x00, 0x00, 0x00, /* version 6 */
        0x00,       0x1c, 0x2c, 0x40, /* payload 28; next header 44 */
        V6_SRC_DST,                   /* addresses */
        0x06,       0x00, 0x05, 0xa8,
        0x00,       0x00, 0x12, 0x34, /* fragment: next TCP, offset 181, last */
        TCP_SYN,                      /* payload that looks like a SYN */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_true(d.pkt.fragment);
    assert_true(d.pkt.later_fragment);
    assert_int_equal(d.pkt.ipproto, 6);
    assert_int_equal(d.pkt.proto, DS_PROTO_TCP);
    assert_int_equal(d.pkt.cls, DS_CLASS_OTHER);
}

/* ---------------------------------------------------------------- transport truncation */

static void test_tcp_cut_after_8_bytes_is_other(void **state)
{
    struct decoded d = DECODE_CUT(DLT_RAW, ipv4_syn, 20 + 8);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.proto, DS_PROTO_TCP);
    assert_int_equal(d.pkt.cls, DS_CLASS_OTHER);
    assert_int_equal(d.pkt.trunc, DS_TRUNC_TCP);
    assert_false(d.pkt.has_flags);
    assert_true(d.pkt.has_ports);
    assert_int_equal(d.pkt.ip_len, 40);
}

static void test_tcp_cut_after_14_bytes_has_flags(void **state)
{
    struct decoded d = DECODE_CUT(DLT_RAW, ipv4_syn, 20 + 14);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.cls, DS_CLASS_SCAN);
    assert_int_equal(d.pkt.trunc, DS_TRUNC_TCP);
    assert_true(d.pkt.has_flags);
    assert_false(d.pkt.has_win);
}

static const uint8_t ipv4_udp[] = {
    0x45,       0x00, 0x00, 0x1d, /* IHL 5; total length 29 */
    0x11,       0x11, 0x00, 0x00, /* IP ID; no fragment */
    0x40,       0x11, 0x00, 0x00, /* TTL 64; protocol 17 (UDP); checksum */
    V4_SRC_DST,                   /* addresses */
    0x9c,       0x40, 0x00, 0x7b, /* UDP 40000 -> 123 */
    0x00,       0x09, 0x00, 0x00, /* length 9; checksum */
    0x17,                         /* one payload byte */
};

static void test_udp_whole_is_udp_probe(void **state)
{
    struct decoded d = DECODE(DLT_RAW, ipv4_udp);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.proto, DS_PROTO_UDP);
    assert_int_equal(d.pkt.cls, DS_CLASS_UDP_PROBE);
    assert_int_equal(d.pkt.dport, 123);
    assert_int_equal(d.pkt.trunc, DS_TRUNC_NONE);
}

static void test_udp_cut_to_1_byte_is_other(void **state)
{
    struct decoded d = DECODE_CUT(DLT_RAW, ipv4_udp, 20 + 1);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.proto, DS_PROTO_UDP);
    assert_int_equal(d.pkt.cls, DS_CLASS_OTHER);
    assert_int_equal(d.pkt.trunc, DS_TRUNC_UDP);
}

/* the source port alone decides the DNS-answer rule: 2 bytes classify, without a port table entry
 */
static void test_udp_cut_to_2_bytes_is_classified(void **state)
{
    struct decoded d = DECODE_CUT(DLT_RAW, ipv4_udp, 20 + 2);

    assert_int_equal(d.pkt.cls, DS_CLASS_UDP_PROBE);
    assert_int_equal(d.pkt.trunc, DS_TRUNC_UDP);
    assert_false(d.pkt.has_ports);
}

static void test_udp_cut_to_4_bytes_is_classified(void **state)
{
    struct decoded d = DECODE_CUT(DLT_RAW, ipv4_udp, 20 + 4);

    assert_int_equal(d.pkt.cls, DS_CLASS_UDP_PROBE);
    assert_int_equal(d.pkt.trunc, DS_TRUNC_UDP);
    assert_int_equal(d.pkt.dport, 123);
    assert_int_equal(d.pkt.ip_len, 29);
}

/* ---------------------------------------------------------------- ICMP */

static void test_icmp_error_victim_is_quoted_destination(void **state)
{
    static const uint8_t ip[] = {
        0x45, 0x00, 0x00, 0x38, /* IHL 5; total length 56 (20 + 8 + 28 quoted) */
        0x22, 0x22, 0x00, 0x00, /* IP ID; no fragment */
        0x40, 0x01, 0x00, 0x00, /* TTL 64; protocol 1 (ICMP); checksum */
        192,  0,    2,    1,    /* source 192.0.2.1: the router that answered */
        203,  0,    113,  9,    /* destination: the darknet address the flood spoofed */
        0x03, 0x01, 0x00, 0x00, /* type 3 destination unreachable, code 1 host; checksum */
        0x00, 0x00, 0x00, 0x00, /* unused */
        0x45, 0x00, 0x00, 0x28, /* quoted IPv4 header: IHL 5, total length 40 */
        0x33, 0x33, 0x00, 0x00, /* quoted IP ID */
        0x40, 0x06, 0x00, 0x00, /* quoted TTL 64, TCP */
        203,  0,    113,  9,    /* quoted source: the spoofed darknet address */
        198,  51,   100,  50,   /* quoted destination 198.51.100.50: the victim */
        0x00, 0x50, 0x9c, 0x40, /* first 8 quoted TCP bytes: 80 -> 40000 */
        0x01, 0x02, 0x03, 0x04, /* quoted sequence number */
    };
    static const uint8_t victim[4] = {198, 51, 100, 50};
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.proto, DS_PROTO_ICMP);
    assert_int_equal(d.pkt.cls, DS_CLASS_BACKSCATTER);
    assert_int_equal(d.pkt.icmp_type, 3);
    assert_int_equal(d.pkt.icmp_code, 1);
    assert_true(d.pkt.has_victim);
    assert_int_equal(d.pkt.victim.family, 4);
    assert_memory_equal(d.pkt.victim.b, victim, 4);
    assert_false(d.pkt.has_ports); /* the quoted TCP header is not counted as TCP */
}

static void test_icmp_error_with_short_quote_has_no_victim(void **state)
{
    static const uint8_t ip[] = {
        0x45, 0x00, 0x00, 0x2c, /* IHL 5; total length 44 (20 + 8 + 16 quoted) */
        0x22, 0x22, 0x00, 0x00, /* IP ID; no fragment */
        0x40, 0x01, 0x00, 0x00, /* TTL 64; ICMP; checksum */
        192,  0,    2,    1,    /* source: the router */
        203,  0,    113,  9,    /* destination: darknet */
        0x0b, 0x00, 0x00, 0x00, /* type 11 time exceeded, code 0; checksum */
        0x00, 0x00, 0x00, 0x00, /* unused */
        0x45, 0x00, 0x00, 0x28, /* quoted header, cut before its destination */
        0x33, 0x33, 0x00, 0x00, /* quoted IP ID */
        0x01, 0x06, 0x00, 0x00, /* quoted TTL 1, TCP */
        203,  0,    113,  9,    /* quoted source */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.pkt.cls, DS_CLASS_BACKSCATTER);
    assert_false(d.pkt.has_victim);
}

static void test_icmpv6_error_victim_is_quoted_destination(void **state)
{
    static const uint8_t ip[] = {
        0x60, 0x00, 0x00, 0x00, /* version 6 */
        0x00, 0x38, 0x3a, 0x40, /* payload 56 (8 + 40 + 8); next header 58 (ICMPv6) */
        0x20, 0x01, 0x0d, 0xb8, 0, 0,    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, /* source: router */
        0x20, 0x01, 0x0d, 0xb8, 0, 0x0d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x09, /* darknet */
        0x01, 0x03, 0x00, 0x00, /* type 1 destination unreachable, code 3; checksum */
        0x00, 0x00, 0x00, 0x00, /* unused */
        0x60, 0x00, 0x00, 0x00, /* quoted IPv6 header */
        0x00, 0x14, 0x06, 0x40, /* quoted payload 20, TCP */
        0x20, 0x01, 0x0d, 0xb8, 0, 0x0d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x09, /* quoted source */
        0x20, 0x01, 0x0d, 0xb8, 0, 0,    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, /* victim ::50 */
        0x00, 0x50, 0x9c, 0x40, /* first 8 quoted TCP bytes: 80 -> 40000 */
        0x01, 0x02, 0x03, 0x04, /* quoted sequence number */
    };
    static const uint8_t victim[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                       0,    0,    0,    0,    0, 0, 0, 0x50};
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.proto, DS_PROTO_ICMP);
    assert_int_equal(d.pkt.cls, DS_CLASS_BACKSCATTER);
    assert_true(d.pkt.has_victim);
    assert_int_equal(d.pkt.victim.family, 6);
    assert_memory_equal(d.pkt.victim.b, victim, 16);
}

static void test_icmp_over_ipv6_is_other(void **state)
{
    static const uint8_t ip[] = {
        0x60,       0x00, 0x00, 0x00, /* version 6 */
        0x00,       0x08, 0x01, 0x40, /* payload 8; next header 1 (ICMP for IPv4) */
        V6_SRC_DST,                   /* addresses */
        0x08,       0x00, 0x00, 0x00, /* type 8 echo request */
        0x00,       0x01, 0x00, 0x01, /* identifier 1, sequence 1 */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.proto, DS_PROTO_OTHER);
    assert_int_equal(d.pkt.cls, DS_CLASS_OTHER);
}

static void test_icmpv6_over_ipv4_is_other(void **state)
{
    static const uint8_t ip[] = {
        0x45,       0x00, 0x00, 0x1c, /* IHL 5; total length 28 */
        0x11,       0x11, 0x00, 0x00, /* IP ID; no fragment */
        0x40,       0x3a, 0x00, 0x00, /* TTL 64; protocol 58 (ICMPv6); checksum */
        V4_SRC_DST,                   /* addresses */
        0x80,       0x00, 0x00, 0x00, /* type 128 echo request */
        0x00,       0x01, 0x00, 0x01, /* identifier, sequence */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.pkt.proto, DS_PROTO_OTHER);
    assert_int_equal(d.pkt.cls, DS_CLASS_OTHER);
}

static const uint8_t ipv4_echo[] = {
    0x45,       0x00, 0x00, 0x1c, /* IHL 5; total length 28 */
    0x11,       0x11, 0x00, 0x00, /* IP ID; no fragment */
    0x40,       0x01, 0x00, 0x00, /* TTL 64; ICMP; checksum */
    V4_SRC_DST,                   /* addresses */
    0x08,       0x00, 0x00, 0x00, /* type 8 echo request, code 0; checksum */
    0x00,       0x01, 0x00, 0x01, /* identifier 1, sequence 1 */
};

static void test_icmp_type_byte_alone_classifies(void **state)
{
    struct decoded d = DECODE_CUT(DLT_RAW, ipv4_echo, 20 + 1);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.proto, DS_PROTO_ICMP);
    assert_int_equal(d.pkt.cls, DS_CLASS_ICMP_PROBE);
    assert_int_equal(d.pkt.trunc, DS_TRUNC_ICMP);
}

static void test_icmp_without_type_is_other(void **state)
{
    struct decoded d = DECODE_CUT(DLT_RAW, ipv4_echo, 20);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.proto, DS_PROTO_ICMP);
    assert_int_equal(d.pkt.cls, DS_CLASS_OTHER);
    assert_int_equal(d.pkt.trunc, DS_TRUNC_ICMP);
}

/* ---------------------------------------------------------------- every cut of a frame */

static void test_every_cut_of_ethernet_vlan_ipv4(void **state)
{
    static const uint8_t frame[] = {
        0x00,       0x11, 0x22, 0x33, 0x44, 0x55, /* destination MAC; bytes 0-13: Ethernet */
        0x00,       0x66, 0x77, 0x88, 0x99, 0xaa, /* source MAC */
        0x81,       0x00, 0x00, 0x64,             /* bytes 14-17: 802.1Q tag, VLAN 100 */
        0x08,       0x00,                         /* ethertype IPv4 */
        0x46,       0x00, 0x00, 0x30,             /* bytes 18-41: IPv4, IHL 6; total length 48 */
        0x11,       0x11, 0x00, 0x00,             /* IP ID 0x1111; no fragment */
        0x40,       0x06, 0x00, 0x00,             /* TTL 64; TCP; checksum */
        V4_SRC_DST,                               /* addresses */
        0x01,       0x01, 0x01, 0x00,             /* IP options: NOP NOP NOP EOL */
        0x9c,       0x40, 0x00, 0x50,             /* bytes 42-65: TCP 40000 -> 80 */
        0x01,       0x02, 0x03, 0x04,             /* sequence */
        0x00,       0x00, 0x00, 0x00,             /* ack */
        0x60,       0x02, 0x04, 0x00,             /* byte 55: flags SYN; window 1024 (Nmap's) */
        0x00,       0x00, 0x00, 0x00,             /* checksum; urgent pointer */
        0x02,       0x04, 0x05, 0xb4,             /* MSS 1460, the only option */
    };
    struct decoded whole = DECODE(DLT_EN10MB, frame);

    assert_cuts_malformed(DLT_EN10MB, frame, sizeof(frame), 0, 17, DS_MAL_LINK_TRUNCATED);
    assert_cuts_malformed(DLT_EN10MB, frame, sizeof(frame), 18, 41, DS_MAL_IP_TRUNCATED);
    assert_cuts_counted(DLT_EN10MB, frame, sizeof(frame), 42, 55, DS_PROTO_TCP, DS_CLASS_OTHER,
                        DS_TRUNC_TCP);
    assert_cuts_counted(DLT_EN10MB, frame, sizeof(frame), 56, sizeof(frame) - 1, DS_PROTO_TCP,
                        DS_CLASS_SCAN, DS_TRUNC_TCP);
    assert_int_equal(whole.outcome, CAP_COUNTED);
    assert_int_equal(whole.pkt.cls, DS_CLASS_SCAN);
    assert_int_equal(whole.pkt.trunc, DS_TRUNC_NONE);
    assert_int_equal(whole.pkt.tools, 1u << DS_TOOL_NMAP);
}

static void test_every_cut_of_ethernet_ipv6_hop_by_hop(void **state)
{
    static const uint8_t frame[] = {
        0x00,       0x11, 0x22, 0x33, 0x44, 0x55, /* bytes 0-13: Ethernet */
        0x00,       0x66, 0x77, 0x88, 0x99, 0xaa, /* source MAC */
        0x86,       0xdd,                         /* ethertype IPv6 */
        0x60,       0x00, 0x00, 0x00,             /* bytes 14-53: IPv6 */
        0x00,       0x1c, 0x00, 0x40,             /* payload 28; next header hop-by-hop */
        V6_SRC_DST,                               /* addresses */
        0x06,       0x00, 0x01, 0x04, 0x00, 0x00,
        0x00,       0x00, /* bytes 54-61: hop-by-hop, next TCP */
        TCP_SYN,          /* bytes 62-81: SYN, flags at 75 */
    };
    struct decoded whole = DECODE(DLT_EN10MB, frame);

    assert_cuts_malformed(DLT_EN10MB, frame, sizeof(frame), 0, 13, DS_MAL_LINK_TRUNCATED);
    assert_cuts_malformed(DLT_EN10MB, frame, sizeof(frame), 14, 53, DS_MAL_IP_TRUNCATED);
    assert_cuts_counted(DLT_EN10MB, frame, sizeof(frame), 54, 61, DS_PROTO_OTHER, DS_CLASS_OTHER,
                        DS_TRUNC_NONE);
    assert_cuts_counted(DLT_EN10MB, frame, sizeof(frame), 62, 75, DS_PROTO_TCP, DS_CLASS_OTHER,
                        DS_TRUNC_TCP);
    assert_cuts_counted(DLT_EN10MB, frame, sizeof(frame), 76, sizeof(frame) - 1, DS_PROTO_TCP,
                        DS_CLASS_SCAN, DS_TRUNC_TCP);
    assert_int_equal(whole.outcome, CAP_COUNTED);
    assert_int_equal(whole.pkt.ip_len, 68);
    assert_int_equal(whole.pkt.cls, DS_CLASS_SCAN);
    assert_int_equal(whole.pkt.trunc, DS_TRUNC_NONE);
}

static void test_every_cut_of_nflog(void **state)
{
    uint8_t frame[sizeof(nflog_v4) + sizeof(ipv4_syn)];

    memcpy(frame, nflog_v4, sizeof(nflog_v4));
    memcpy(frame + sizeof(nflog_v4), ipv4_syn, sizeof(ipv4_syn));
    assert_cuts_malformed(DLT_NFLOG, frame, sizeof(frame), 0, 27, DS_MAL_LINK_TRUNCATED);
    assert_cuts_malformed(DLT_NFLOG, frame, sizeof(frame), 28, 47, DS_MAL_IP_TRUNCATED);
    assert_cuts_counted(DLT_NFLOG, frame, sizeof(frame), 48, 61, DS_PROTO_TCP, DS_CLASS_OTHER,
                        DS_TRUNC_TCP);
    assert_cuts_counted(DLT_NFLOG, frame, sizeof(frame), 62, 67, DS_PROTO_TCP, DS_CLASS_SCAN,
                        DS_TRUNC_TCP);
    assert_v4_syn(DECODE(DLT_NFLOG, frame));
}

/* ---------------------------------------------------------------- cap_darknet_check */

struct darknet {
    struct ds_prefixset darknet, exclude;
};

static int darknet_setup(void **state)
{
    static const char *const nets[] = {"203.0.113.0/24", "203.0.113.0/28", "2001:db8:d::/48"};
    struct darknet *n = calloc(1, sizeof(*n));
    struct ds_cidr c;

    assert_non_null(n);
    ds_prefixset_init(&n->darknet);
    ds_prefixset_init(&n->exclude);
    for (size_t i = 0; i < DS_ARRAY_LEN(nets); i++) {
        assert_int_equal(ds_cidr_parse(nets[i], &c), 0);
        assert_int_equal(ds_prefixset_add(&n->darknet, &c), 0);
    }
    assert_int_equal(ds_cidr_parse("203.0.113.128/25", &c), 0);
    assert_int_equal(ds_prefixset_add(&n->exclude, &c), 0);
    *state = n;
    return 0;
}

static int darknet_teardown(void **state)
{
    free(*state);
    return 0;
}

/* cap_darknet_check() for a packet to dst; *prefix gets the index. */
static enum cap_outcome check_dst(void **state, const char *dst, int *reason, int *prefix)
{
    const struct darknet *n = *state;
    struct cap_pkt p;

    memset(&p, 0, sizeof(p));
    assert_int_equal(ds_addr_parse(dst, &p.dst), 0);
    *reason = -1;
    *prefix = -2;
    return cap_darknet_check(&n->darknet, &n->exclude, &p, reason, prefix);
}

static void test_darknet_longest_prefix_index(void **state)
{
    int reason, prefix;

    assert_int_equal(check_dst(state, "203.0.113.9", &reason, &prefix), CAP_COUNTED);
    assert_int_equal(prefix, 1); /* 203.0.113.0/28, not the /24 listed first */
    assert_int_equal(check_dst(state, "203.0.113.20", &reason, &prefix), CAP_COUNTED);
    assert_int_equal(prefix, 0);
    assert_int_equal(check_dst(state, "2001:db8:d::9", &reason, &prefix), CAP_COUNTED);
    assert_int_equal(prefix, 2);
}

static void test_darknet_outside_is_not_darknet(void **state)
{
    int reason, prefix;

    assert_int_equal(check_dst(state, "198.51.100.7", &reason, &prefix), CAP_IGNORED);
    assert_int_equal(reason, DS_IGN_NOT_DARKNET);
    assert_int_equal(check_dst(state, "2001:db8:e::9", &reason, &prefix), CAP_IGNORED);
    assert_int_equal(reason, DS_IGN_NOT_DARKNET);
}

static void test_darknet_excluded(void **state)
{
    int reason, prefix;

    assert_int_equal(check_dst(state, "203.0.113.200", &reason, &prefix), CAP_IGNORED);
    assert_int_equal(reason, DS_IGN_EXCLUDED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timestamp_nanoseconds),
        cmocka_unit_test(test_timestamp_fraction_one_second_is_malformed),
        cmocka_unit_test(test_timestamp_negative_fraction_is_malformed),
        cmocka_unit_test(test_ethernet_ipv4),
        cmocka_unit_test(test_ethernet_ipv6),
        cmocka_unit_test(test_vlan_8021q),
        cmocka_unit_test(test_qinq_two_tags),
        cmocka_unit_test(test_four_tags_read),
        cmocka_unit_test(test_fifth_tag_is_non_ip),
        cmocka_unit_test(test_vlan_tag_cut_is_link_truncated),
        cmocka_unit_test(test_ethernet_cut_is_link_truncated),
        cmocka_unit_test(test_ethernet_without_ip_is_ip_truncated),
        cmocka_unit_test(test_arp_is_non_ip),
        cmocka_unit_test(test_8023_length_field_is_non_ip),
        cmocka_unit_test(test_ipv4_ethertype_with_ipv6_header_is_bad_version),
        cmocka_unit_test(test_ipv6_ethertype_with_ipv4_header_is_bad_version),
        cmocka_unit_test(test_ipv4_version_5_is_bad_version),
        cmocka_unit_test(test_sll),
        cmocka_unit_test(test_sll_cut_is_link_truncated),
        cmocka_unit_test(test_sll_arp_is_non_ip),
        cmocka_unit_test(test_sll2),
        cmocka_unit_test(test_sll2_cut_is_link_truncated),
        cmocka_unit_test(test_dlt_raw_ipv4),
        cmocka_unit_test(test_dlt_raw_ipv6),
        cmocka_unit_test(test_dlt_raw_version_5_is_bad_version),
        cmocka_unit_test(test_linktype_ipv4),
        cmocka_unit_test(test_linktype_ipv4_with_ipv6_is_bad_version),
        cmocka_unit_test(test_linktype_ipv6),
        cmocka_unit_test(test_linktype_ipv6_with_ipv4_is_bad_version),
        cmocka_unit_test(test_raw_empty_is_ip_truncated),
        cmocka_unit_test(test_null_little_endian_family),
        cmocka_unit_test(test_null_big_endian_family),
        cmocka_unit_test(test_null_ipv6_family),
        cmocka_unit_test(test_null_unknown_family_is_non_ip),
        cmocka_unit_test(test_null_cut_is_link_truncated),
        cmocka_unit_test(test_loop_network_order),
        cmocka_unit_test(test_loop_ipv6),
        cmocka_unit_test(test_loop_little_endian_family_is_non_ip),
        cmocka_unit_test(test_nflog_payload_after_other_tlvs),
        cmocka_unit_test(test_nflog_big_endian_tlvs),
        cmocka_unit_test(test_nflog_ipv6),
        cmocka_unit_test(test_nflog_tlv_cut_is_link_truncated),
        cmocka_unit_test(test_nflog_without_payload_is_non_ip),
        cmocka_unit_test(test_nflog_other_family_is_non_ip),
        cmocka_unit_test(test_nflog_payload_ends_with_its_tlv),
        cmocka_unit_test(test_ipv4_under_20_bytes_is_ip_truncated),
        cmocka_unit_test(test_ipv4_ihl_below_5_is_bad_header),
        cmocka_unit_test(test_ipv4_total_length_below_header_is_bad_header),
        cmocka_unit_test(test_ipv4_options_skipped),
        cmocka_unit_test(test_ipv4_cut_inside_options_is_ip_truncated),
        cmocka_unit_test(test_ipv4_bytes_is_total_length_not_captured),
        cmocka_unit_test(test_tcp_data_offset_beyond_segment),
        cmocka_unit_test(test_ipv4_first_fragment_classified),
        cmocka_unit_test(test_ipv4_later_fragment_is_other),
        cmocka_unit_test(test_ipv4_later_udp_fragment_keeps_protocol),
        cmocka_unit_test(test_ip_in_ip_is_other),
        cmocka_unit_test(test_ipv6_in_ipv4_is_other),
        cmocka_unit_test(test_gre_is_other),
        cmocka_unit_test(test_ipv6_under_40_bytes_is_ip_truncated),
        cmocka_unit_test(test_ipv6_bytes_is_40_plus_payload_length),
        cmocka_unit_test(test_ipv6_hop_by_hop_then_destination_options),
        cmocka_unit_test(test_ipv6_ah_length_in_4_byte_units),
        cmocka_unit_test(test_ipv6_eight_extension_headers),
        cmocka_unit_test(test_ipv6_ninth_extension_header_is_other),
        cmocka_unit_test(test_ipv6_extension_header_cut_is_other),
        cmocka_unit_test(test_ipv6_esp_is_other),
        cmocka_unit_test(test_ipv6_no_next_header_is_other),
        cmocka_unit_test(test_ipv6_first_fragment_classified),
        cmocka_unit_test(test_ipv6_later_fragment_is_other),
        cmocka_unit_test(test_tcp_cut_after_8_bytes_is_other),
        cmocka_unit_test(test_tcp_cut_after_14_bytes_has_flags),
        cmocka_unit_test(test_udp_whole_is_udp_probe),
        cmocka_unit_test(test_udp_cut_to_1_byte_is_other),
        cmocka_unit_test(test_udp_cut_to_2_bytes_is_classified),
        cmocka_unit_test(test_udp_cut_to_4_bytes_is_classified),
        cmocka_unit_test(test_icmp_error_victim_is_quoted_destination),
        cmocka_unit_test(test_icmp_error_with_short_quote_has_no_victim),
        cmocka_unit_test(test_icmpv6_error_victim_is_quoted_destination),
        cmocka_unit_test(test_icmp_over_ipv6_is_other),
        cmocka_unit_test(test_icmpv6_over_ipv4_is_other),
        cmocka_unit_test(test_icmp_type_byte_alone_classifies),
        cmocka_unit_test(test_icmp_without_type_is_other),
        cmocka_unit_test(test_every_cut_of_ethernet_vlan_ipv4),
        cmocka_unit_test(test_every_cut_of_ethernet_ipv6_hop_by_hop),
        cmocka_unit_test(test_every_cut_of_nflog),
        cmocka_unit_test_setup_teardown(test_darknet_longest_prefix_index, darknet_setup,
                                        darknet_teardown),
        cmocka_unit_test_setup_teardown(test_darknet_outside_is_not_darknet, darknet_setup,
                                        darknet_teardown),
        cmocka_unit_test_setup_teardown(test_darknet_excluded, darknet_setup, darknet_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
