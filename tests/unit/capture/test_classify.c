/* Unit tests of capture/classify.c (classes, backscatter victims, tool fingerprints) and of the
 * tool attribution in core/names.c, against docs/classification.md.
 *
 * Class rules are checked on decoded packets built field by field (what cap_decode() hands to
 * cap_classify()); tool fingerprints on frames, among them real probes of ZMap, masscan and Nmap
 * copied from the captures in /work/shared/pcaps. Frames are decoded from heap blocks of exactly
 * their length, so a sanitizer build reports any over-read. */
#include "capture/cap_internal.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <pcap/dlt.h>

#define TOOL(t) (1u << (t))

/* ---------------------------------------------------------------- decoded packets */

/* A whole IPv4 TCP packet 198.51.100.7:40000 -> 203.0.113.9:80 with the given flags, sequence
 * 0x01020304, window 64240, no options, IP ID 0x1111. No fingerprint matches it: Mirai's wants
 * sequence 0xcb007109, ZMap's IP ID 54321, masscan's IP ID 0x725d, Nmap's another window. */
static struct cap_pkt tcp4(uint8_t flags)
{
    struct cap_pkt p;

    memset(&p, 0, sizeof(p));
    p.src = (struct ds_addr){.family = 4, .b = {198, 51, 100, 7}};
    p.dst = (struct ds_addr){.family = 4, .b = {203, 0, 113, 9}};
    p.ip_len = 40;
    p.ipproto = 6;
    p.proto = DS_PROTO_TCP;
    p.trunc = DS_TRUNC_NONE;
    p.has_ports = p.has_flags = p.has_seq = p.has_win = true;
    p.sport = 40000;
    p.dport = 80;
    p.tcp_flags = flags;
    p.seq = 0x01020304;
    p.win = 64240;
    p.tcp_opts = CAP_OPTS_NONE;
    p.ipid = 0x1111;
    p.ttl = 64;
    return p;
}

/* The same between 2001:db8::7 and 2001:db8:d::9. */
static struct cap_pkt tcp6(uint8_t flags)
{
    static const uint8_t src[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
    static const uint8_t dst[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x0d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9};
    struct cap_pkt p = tcp4(flags);

    p.src.family = p.dst.family = 6;
    memcpy(p.src.b, src, 16);
    memcpy(p.dst.b, dst, 16);
    p.ip_len = 60;
    p.ipid = 0;
    return p;
}

static struct cap_pkt udp4(uint16_t sport, uint16_t dport)
{
    struct cap_pkt p = tcp4(0);

    p.ipproto = 17;
    p.proto = DS_PROTO_UDP;
    p.has_flags = p.has_seq = p.has_win = false;
    p.seq = p.win = 0;
    p.tcp_opts = CAP_OPTS_UNKNOWN;
    p.has_sport = true;
    p.sport = sport;
    p.dport = dport;
    p.ip_len = 28;
    return p;
}

static struct cap_pkt icmp(int family, uint8_t type)
{
    struct cap_pkt p = family == 4 ? tcp4(0) : tcp6(0);

    p.ipproto = family == 4 ? 1 : 58;
    p.proto = DS_PROTO_ICMP;
    p.has_ports = p.has_flags = p.has_seq = p.has_win = false;
    p.sport = p.dport = 0;
    p.seq = p.win = 0;
    p.tcp_opts = CAP_OPTS_UNKNOWN;
    p.has_icmp = true;
    p.icmp_type = type;
    return p;
}

static struct cap_pkt classified(struct cap_pkt p)
{
    cap_classify(&p);
    return p;
}

static enum ds_class tcp_class(uint8_t flags)
{
    return (enum ds_class)classified(tcp4(flags)).cls;
}

static enum ds_class icmp_class(int family, uint8_t type)
{
    return (enum ds_class)classified(icmp(family, type)).cls;
}

static uint8_t tools_of(struct cap_pkt p)
{
    return classified(p).tools;
}

/* ---------------------------------------------------------------- TCP classes */

static void test_syn_is_scan(void **state)
{
    struct cap_pkt p = classified(tcp4(CAP_TCP_SYN));

    assert_int_equal(p.cls, DS_CLASS_SCAN);
    assert_true(p.pure_syn);
    assert_false(p.has_victim);
    assert_int_equal(p.tools, 0);
}

static void test_syn_with_other_flags_is_scan(void **state)
{
    /* ECE 0x40, CWR 0x80 (ECN set-up SYN), PSH, URG 0x20 do not matter */
    assert_int_equal(tcp_class(CAP_TCP_SYN | 0x40 | 0x80), DS_CLASS_SCAN);
    assert_int_equal(tcp_class(CAP_TCP_SYN | CAP_TCP_PSH | 0x20), DS_CLASS_SCAN);
}

static void test_syn_fin_is_not_scan(void **state)
{
    struct cap_pkt p = classified(tcp4(CAP_TCP_SYN | CAP_TCP_FIN));

    assert_int_equal(p.cls, DS_CLASS_OTHER);
    assert_false(p.pure_syn);
}

static void test_syn_ack_is_backscatter_from_source(void **state)
{
    struct cap_pkt p = classified(tcp4(CAP_TCP_SYN | CAP_TCP_ACK));

    assert_int_equal(p.cls, DS_CLASS_BACKSCATTER);
    assert_false(p.pure_syn);
    assert_true(p.has_victim);
    assert_true(ds_addr_equal(&p.victim, &p.src));
}

static void test_rst_is_backscatter_from_source(void **state)
{
    struct cap_pkt rst = classified(tcp4(CAP_TCP_RST));
    struct cap_pkt rst_ack = classified(tcp4(CAP_TCP_RST | CAP_TCP_ACK));

    assert_int_equal(rst.cls, DS_CLASS_BACKSCATTER);
    assert_true(rst.has_victim);
    assert_true(ds_addr_equal(&rst.victim, &rst.src));
    assert_int_equal(rst_ack.cls, DS_CLASS_BACKSCATTER);
    assert_true(ds_addr_equal(&rst_ack.victim, &rst_ack.src));
    assert_int_equal(tcp_class(CAP_TCP_SYN | CAP_TCP_RST), DS_CLASS_BACKSCATTER);
}

static void test_other_flag_combinations_are_other(void **state)
{
    assert_int_equal(tcp_class(0), DS_CLASS_OTHER);                                /* NULL */
    assert_int_equal(tcp_class(CAP_TCP_FIN), DS_CLASS_OTHER);                      /* FIN */
    assert_int_equal(tcp_class(CAP_TCP_FIN | CAP_TCP_PSH | 0x20), DS_CLASS_OTHER); /* Xmas */
    assert_int_equal(tcp_class(CAP_TCP_ACK), DS_CLASS_OTHER);                      /* ACK */
    assert_int_equal(tcp_class(CAP_TCP_FIN | CAP_TCP_ACK), DS_CLASS_OTHER);
}

static void test_tcp_without_flags_byte_is_other(void **state)
{
    struct cap_pkt p = tcp4(CAP_TCP_SYN);

    p.has_flags = p.has_win = false;
    p.trunc = DS_TRUNC_TCP;
    assert_int_equal(classified(p).cls, DS_CLASS_OTHER);
}

static void test_later_fragment_is_other(void **state)
{
    struct cap_pkt p = tcp4(CAP_TCP_SYN);

    p.fragment = p.later_fragment = true;
    p = classified(p);
    assert_int_equal(p.cls, DS_CLASS_OTHER);
    assert_false(p.pure_syn);
    assert_int_equal(p.tools, 0);
}

static void test_other_protocol_is_other(void **state)
{
    struct cap_pkt p = tcp4(CAP_TCP_SYN);

    p.ipproto = 47;
    p.proto = DS_PROTO_OTHER;
    assert_int_equal(classified(p).cls, DS_CLASS_OTHER);
}

/* ---------------------------------------------------------------- ICMP and ICMPv6 classes */

static void test_icmp_backscatter_types(void **state)
{
    assert_int_equal(icmp_class(4, 0), DS_CLASS_BACKSCATTER);  /* echo reply */
    assert_int_equal(icmp_class(4, 3), DS_CLASS_BACKSCATTER);  /* destination unreachable */
    assert_int_equal(icmp_class(4, 4), DS_CLASS_BACKSCATTER);  /* source quench */
    assert_int_equal(icmp_class(4, 5), DS_CLASS_BACKSCATTER);  /* redirect */
    assert_int_equal(icmp_class(4, 11), DS_CLASS_BACKSCATTER); /* time exceeded */
    assert_int_equal(icmp_class(4, 12), DS_CLASS_BACKSCATTER); /* parameter problem */
    assert_int_equal(icmp_class(4, 14), DS_CLASS_BACKSCATTER); /* timestamp reply */
    assert_int_equal(icmp_class(4, 16), DS_CLASS_BACKSCATTER); /* information reply */
    assert_int_equal(icmp_class(4, 18), DS_CLASS_BACKSCATTER); /* address mask reply */
}

static void test_icmp_echo_request_is_probe(void **state)
{
    assert_int_equal(icmp_class(4, 8), DS_CLASS_ICMP_PROBE);
}

static void test_icmp_other_types_are_other(void **state)
{
    assert_int_equal(icmp_class(4, 13), DS_CLASS_OTHER);  /* timestamp request */
    assert_int_equal(icmp_class(4, 17), DS_CLASS_OTHER);  /* address mask request */
    assert_int_equal(icmp_class(4, 128), DS_CLASS_OTHER); /* ICMPv6's echo request number */
}

static void test_icmp_echo_reply_victim_is_source(void **state)
{
    struct cap_pkt p = classified(icmp(4, 0));

    assert_true(p.has_victim);
    assert_true(ds_addr_equal(&p.victim, &p.src));
}

/* Errors: the victim is the quoted destination, which the decoder fills in; the classifier must
 * not put the error's source there. */
static void test_icmp_error_victim_left_to_decoder(void **state)
{
    struct cap_pkt without = classified(icmp(4, 3));
    struct cap_pkt with = icmp(4, 11);

    with.has_victim = true;
    with.victim = (struct ds_addr){.family = 4, .b = {198, 51, 100, 50}};
    with = classified(with);
    assert_int_equal(without.cls, DS_CLASS_BACKSCATTER);
    assert_false(without.has_victim);
    assert_int_equal(with.cls, DS_CLASS_BACKSCATTER);
    assert_int_equal(with.victim.b[3], 50);
}

static void test_icmpv6_backscatter_types(void **state)
{
    assert_int_equal(icmp_class(6, 1), DS_CLASS_BACKSCATTER);   /* destination unreachable */
    assert_int_equal(icmp_class(6, 2), DS_CLASS_BACKSCATTER);   /* packet too big */
    assert_int_equal(icmp_class(6, 3), DS_CLASS_BACKSCATTER);   /* time exceeded */
    assert_int_equal(icmp_class(6, 4), DS_CLASS_BACKSCATTER);   /* parameter problem */
    assert_int_equal(icmp_class(6, 129), DS_CLASS_BACKSCATTER); /* echo reply */
}

static void test_icmpv6_echo_request_is_probe(void **state)
{
    assert_int_equal(icmp_class(6, 128), DS_CLASS_ICMP_PROBE);
}

static void test_icmpv6_other_types_are_other(void **state)
{
    assert_int_equal(icmp_class(6, 135), DS_CLASS_OTHER); /* neighbour solicitation */
    assert_int_equal(icmp_class(6, 0), DS_CLASS_OTHER);   /* ICMPv4's echo reply number */
    assert_int_equal(icmp_class(6, 8), DS_CLASS_OTHER);   /* ICMPv4's echo request number */
}

static void test_icmpv6_echo_reply_victim_is_source(void **state)
{
    struct cap_pkt p = classified(icmp(6, 129));

    assert_true(p.has_victim);
    assert_true(ds_addr_equal(&p.victim, &p.src));
}

static void test_icmp_without_type_is_other(void **state)
{
    struct cap_pkt p = icmp(4, 8);

    p.has_icmp = false;
    p.icmp_type = 0;
    p.trunc = DS_TRUNC_ICMP;
    assert_int_equal(classified(p).cls, DS_CLASS_OTHER);
}

/* ---------------------------------------------------------------- UDP classes */

static void test_udp_from_port_53_is_backscatter(void **state)
{
    struct cap_pkt p = classified(udp4(53, 40000));

    assert_int_equal(p.cls, DS_CLASS_BACKSCATTER);
    assert_true(p.has_victim);
    assert_true(ds_addr_equal(&p.victim, &p.src));
}

static void test_udp_other_is_probe(void **state)
{
    struct cap_pkt to_dns = classified(udp4(40000, 53));
    struct cap_pkt ntp = classified(udp4(123, 123));

    assert_int_equal(to_dns.cls, DS_CLASS_UDP_PROBE);
    assert_false(to_dns.has_victim);
    assert_int_equal(ntp.cls, DS_CLASS_UDP_PROBE);
}

static void test_udp_without_ports_is_other(void **state)
{
    struct cap_pkt p = udp4(53, 40000);

    p.has_ports = p.has_sport = false;
    p.trunc = DS_TRUNC_UDP;
    assert_int_equal(classified(p).cls, DS_CLASS_OTHER);
}

/* ---------------------------------------------------------------- fingerprints on fields */

static void test_mirai_sequence_equals_destination(void **state)
{
    struct cap_pkt p = tcp4(CAP_TCP_SYN);

    p.seq = 0xcb007109; /* 203.0.113.9 */
    assert_int_equal(tools_of(p), TOOL(DS_TOOL_MIRAI));
}

static void test_zmap_ip_id(void **state)
{
    struct cap_pkt p = tcp4(CAP_TCP_SYN);

    p.ipid = 54321;
    assert_int_equal(tools_of(p), TOOL(DS_TOOL_ZMAP));
}

static void test_masscan_ip_id(void **state)
{
    struct cap_pkt p = tcp4(CAP_TCP_SYN);

    p.ipid = (0xcb007109 ^ 80 ^ 0x01020304) & 0xffff; /* 0x725d */
    assert_int_equal(tools_of(p), TOOL(DS_TOOL_MASSCAN));
}

static void test_nmap_windows_with_mss_only(void **state)
{
    struct cap_pkt p = tcp4(CAP_TCP_SYN);

    p.tcp_opts = CAP_OPTS_MSS_ONLY;
    p.win = 1024;
    assert_int_equal(tools_of(p), TOOL(DS_TOOL_NMAP));
    p.win = 2048;
    assert_int_equal(tools_of(p), TOOL(DS_TOOL_NMAP));
    p.win = 3072;
    assert_int_equal(tools_of(p), TOOL(DS_TOOL_NMAP));
    p.win = 4096;
    assert_int_equal(tools_of(p), TOOL(DS_TOOL_NMAP));
}

static void test_nmap_needs_window_and_mss_only(void **state)
{
    struct cap_pkt p = tcp4(CAP_TCP_SYN);

    p.tcp_opts = CAP_OPTS_MSS_ONLY;
    p.win = 1025;
    assert_int_equal(tools_of(p), 0);
    p.win = 5120;
    assert_int_equal(tools_of(p), 0);
    p.win = 1024;
    p.tcp_opts = CAP_OPTS_NONE;
    assert_int_equal(tools_of(p), 0);
    p.tcp_opts = CAP_OPTS_OTHER;
    assert_int_equal(tools_of(p), 0);
    p.tcp_opts = CAP_OPTS_UNKNOWN;
    assert_int_equal(tools_of(p), 0);
    p.tcp_opts = CAP_OPTS_MSS_ONLY;
    p.has_win = false;
    assert_int_equal(tools_of(p), 0);
}

static void test_two_rules_set_both_bits(void **state)
{
    struct cap_pkt p = tcp4(CAP_TCP_SYN);

    p.seq = 0xcb007109; /* Mirai: sequence == destination */
    p.ipid = 54321;     /* ZMap */
    assert_int_equal(tools_of(p), TOOL(DS_TOOL_MIRAI) | TOOL(DS_TOOL_ZMAP));
}

static void test_fingerprints_only_on_pure_syns(void **state)
{
    struct cap_pkt p = tcp4(CAP_TCP_SYN | CAP_TCP_ACK);

    p.seq = 0xcb007109;
    p.ipid = 54321;
    assert_int_equal(tools_of(p), 0);
}

static void test_ipv6_syn_never_gets_tools(void **state)
{
    struct cap_pkt p = tcp6(CAP_TCP_SYN);

    p.seq = 0x20010db8; /* the destination's first 32 bits */
    p.ipid = 54321;
    p.win = 1024;
    p.tcp_opts = CAP_OPTS_MSS_ONLY;
    p = classified(p);
    assert_int_equal(p.cls, DS_CLASS_SCAN);
    assert_true(p.pure_syn);
    assert_int_equal(p.tools, 0);
}

/* ---------------------------------------------------------------- fingerprints on frames */

struct decoded {
    enum cap_outcome outcome;
    int reason;
    struct cap_pkt pkt;
};

static struct decoded decode(int dlt, const uint8_t *bytes, size_t len)
{
    uint8_t *exact = malloc(len);
    struct cap_frame f = {
        .dlt = dlt, .ts_sec = 1700000000, .caplen = (uint32_t)len, .wirelen = (uint32_t)len};
    struct decoded d;

    assert_non_null(exact);
    memcpy(exact, bytes, len);
    f.data = exact;
    d.outcome = cap_decode(&f, &d.pkt, &d.reason);
    free(exact);
    return d;
}

#define DECODE(dlt, bytes) decode((dlt), (bytes), sizeof(bytes))

/* zmap.pcap frame 3 (tshark -x): ZMap 2021 SYN 192.168.37.132:33956 -> 155.118.7.2:80. */
static void test_real_zmap_probe(void **state)
{
    static const uint8_t frame[] = {
        0x00, 0x50, 0x56, 0xfc, 0x59, 0xea, /* destination MAC */
        0x00, 0x0c, 0x29, 0x9f, 0x09, 0x8a, /* source MAC */
        0x08, 0x00,                         /* IPv4 */
        0x45, 0x00, 0x00, 0x28,             /* IHL 5; total length 40 */
        0xd4, 0x31, 0x00, 0x00,             /* IP ID 0xd431 = 54321; no fragment */
        0xff, 0x06, 0x5e, 0xf9,             /* TTL 255; TCP; checksum */
        0xc0, 0xa8, 0x25, 0x84,             /* source 192.168.37.132 */
        0x9b, 0x76, 0x07, 0x02,             /* destination 155.118.7.2 */
        0x84, 0xa4, 0x00, 0x50,             /* 33956 -> 80 */
        0x54, 0xec, 0x3f, 0x12,             /* sequence 0x54ec3f12 */
        0x00, 0x00, 0x00, 0x00,             /* ack */
        0x50, 0x02, 0xff, 0xff,             /* data offset 5, SYN; window 65535 */
        0x0e, 0x4b, 0x00, 0x00,             /* checksum; urgent pointer */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* Ethernet padding to 60 bytes */
    };
    struct decoded d = DECODE(DLT_EN10MB, frame);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.cls, DS_CLASS_SCAN);
    assert_int_equal(d.pkt.ipid, 54321);
    assert_int_equal(d.pkt.tools, TOOL(DS_TOOL_ZMAP));
}

/* tcp_0_1000_20190821.pcap frame 1 (tshark -x): masscan 1.0.4 SYN 172.31.15.102:51406 ->
 * 198.124.152.15:697 on VLAN 943. (0xc67c980f ^ 697 ^ 0x7dba06f2) & 0xffff = 0x9c44. */
static void test_real_masscan_probe(void **state)
{
    static const uint8_t frame[] = {
        0x40, 0x7c, 0x7d, 0xb1, 0xe9, 0xb7, /* destination MAC */
        0x00, 0x24, 0x38, 0x98, 0xcb, 0x00, /* source MAC */
        0x81, 0x00, 0x03, 0xaf,             /* 802.1Q, VLAN 943 */
        0x08, 0x00,                         /* IPv4 */
        0x45, 0x00, 0x00, 0x28,             /* IHL 5; total length 40 */
        0x9c, 0x44, 0x00, 0x00,             /* IP ID 0x9c44; no fragment */
        0xfc, 0x06, 0x08, 0x7a,             /* TTL 252; TCP; checksum */
        0xac, 0x1f, 0x0f, 0x66,             /* source 172.31.15.102 */
        0xc6, 0x7c, 0x98, 0x0f,             /* destination 198.124.152.15 */
        0xc8, 0xce, 0x02, 0xb9,             /* 51406 -> 697 */
        0x7d, 0xba, 0x06, 0xf2,             /* sequence 0x7dba06f2 */
        0x00, 0x00, 0x00, 0x00,             /* ack */
        0x50, 0x02, 0x04, 0x00,             /* data offset 5, SYN; window 1024 (no MSS) */
        0x41, 0x9d, 0x00, 0x00,             /* checksum; urgent pointer */
        0x00, 0x00, 0x16, 0x31, 0xee, 0xb5, /* Ethernet trailer */
    };
    struct decoded d = DECODE(DLT_EN10MB, frame);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.cls, DS_CLASS_SCAN);
    assert_int_equal(d.pkt.ip_len, 40);
    assert_int_equal(d.pkt.tcp_opts, CAP_OPTS_NONE);
    assert_int_equal(d.pkt.tools, TOOL(DS_TOOL_MASSCAN));
}

/* synscan.pcap frame 1 (tshark -x): Nmap -sS SYN 172.16.0.8:36050 -> 64.13.134.52:443. */
static void test_real_nmap_probe(void **state)
{
    static const uint8_t frame[] = {
        0x00, 0x26, 0x0b, 0x31, 0x07, 0x33, /* destination MAC */
        0x00, 0x25, 0xb3, 0xbf, 0x91, 0xee, /* source MAC */
        0x08, 0x00,                         /* IPv4 */
        0x45, 0x00, 0x00, 0x2c,             /* IHL 5; total length 44 */
        0xe7, 0x08, 0x00, 0x00,             /* IP ID 0xe708; no fragment */
        0x36, 0x06, 0x2b, 0x6a,             /* TTL 54; TCP; checksum */
        0xac, 0x10, 0x00, 0x08,             /* source 172.16.0.8 */
        0x40, 0x0d, 0x86, 0x34,             /* destination 64.13.134.52 */
        0x8c, 0xd2, 0x01, 0xbb,             /* 36050 -> 443 */
        0xdd, 0x52, 0x83, 0x18,             /* sequence 0xdd528318 */
        0x00, 0x00, 0x00, 0x00,             /* ack */
        0x60, 0x02, 0x0c, 0x00,             /* data offset 6 (24 bytes), SYN; window 3072 */
        0x2a, 0xd4, 0x00, 0x00,             /* checksum; urgent pointer */
        0x02, 0x04, 0x05, 0xb4,             /* MSS 1460, the only option */
    };
    struct decoded d = DECODE(DLT_EN10MB, frame);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.cls, DS_CLASS_SCAN);
    assert_int_equal(d.pkt.win, 3072);
    assert_int_equal(d.pkt.tcp_opts, CAP_OPTS_MSS_ONLY);
    assert_int_equal(d.pkt.tools, TOOL(DS_TOOL_NMAP));
}

/* Hand-made, laid out as Mirai's attack/scanner.c builds its probes (no capture of Mirai is in
 * /work/shared/pcaps): 20-byte headers, random IP ID and window, port 23, tcph->seq = iph->daddr.
 */
static void test_mirai_probe_frame(void **state)
{
    static const uint8_t ip[] = {
        0x45, 0x00, 0x00, 0x28, /* IHL 5; total length 40 */
        0x5b, 0x1e, 0x00, 0x00, /* IP ID 0x5b1e (random); no fragment */
        0x40, 0x06, 0x00, 0x00, /* TTL 64; TCP; checksum */
        198,  51,   100,  7,    /* source 198.51.100.7 */
        203,  0,    113,  9,    /* destination 203.0.113.9 */
        0xa1, 0x3c, 0x00, 0x17, /* source port 41276 -> 23 (telnet) */
        203,  0,    113,  9,    /* sequence number: the destination address */
        0x00, 0x00, 0x00, 0x00, /* ack */
        0x50, 0x02, 0x37, 0x92, /* data offset 5, SYN; window 0x3792 (random) */
        0x00, 0x00, 0x00, 0x00, /* checksum; urgent pointer */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.outcome, CAP_COUNTED);
    assert_int_equal(d.pkt.cls, DS_CLASS_SCAN);
    assert_int_equal(d.pkt.tools, TOOL(DS_TOOL_MIRAI));
}

/* IPv4 header of a 44-byte (20 + 24) TCP packet 198.51.100.7 -> 203.0.113.9, IP ID 0x1111 */
#define IPV4_HDR_44                                                                                \
    0x45, 0x00, 0x00, 0x2c, 0x11, 0x11, 0x00, 0x00, 0x40, 0x06, 0x00, 0x00, 198, 51, 100, 7, 203,  \
        0, 113, 9
/* IPv4 header of a 48-byte (20 + 28) TCP packet, same addresses and IP ID */
#define IPV4_HDR_48                                                                                \
    0x45, 0x00, 0x00, 0x30, 0x11, 0x11, 0x00, 0x00, 0x40, 0x06, 0x00, 0x00, 198, 51, 100, 7, 203,  \
        0, 113, 9
/* TCP port 40000 -> 80, sequence 0x01020304, ack 0 */
#define TCP_PORTS_SEQ_ACK 0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00

/* Nmap's probe carries MSS alone: padding around it means another stack, not Nmap. */
static void test_nmap_nop_padding_is_not_nmap(void **state)
{
    static const uint8_t ip[] = {
        IPV4_HDR_48,       /* total length 48 */
        TCP_PORTS_SEQ_ACK, /* 40000 -> 80 */
        0x70,
        0x02,
        0x08,
        0x00, /* data offset 7 (28 bytes), SYN; window 2048 */
        0x00,
        0x00,
        0x00,
        0x00, /* checksum; urgent pointer */
        0x01,
        0x01, /* NOP, NOP */
        0x02,
        0x04,
        0x05,
        0xb4, /* MSS 1460 */
        0x01,
        0x01, /* NOP, NOP */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.pkt.tcp_opts, CAP_OPTS_OTHER);
    assert_int_equal(d.pkt.tools, 0);
}

static void test_nmap_mss_and_another_option_is_not_nmap(void **state)
{
    static const uint8_t ip[] = {
        IPV4_HDR_48,       /* total length 48 */
        TCP_PORTS_SEQ_ACK, /* 40000 -> 80 */
        0x70,
        0x02,
        0x04,
        0x00, /* data offset 7 (28 bytes), SYN; window 1024 */
        0x00,
        0x00,
        0x00,
        0x00, /* checksum; urgent pointer */
        0x02,
        0x04,
        0x05,
        0xb4, /* MSS 1460 */
        0x04,
        0x02, /* SACK permitted */
        0x01,
        0x01, /* NOP, NOP */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.pkt.cls, DS_CLASS_SCAN);
    assert_int_equal(d.pkt.tcp_opts, CAP_OPTS_OTHER);
    assert_int_equal(d.pkt.tools, 0);
}

static void test_nmap_window_1025_is_not_nmap(void **state)
{
    static const uint8_t ip[] = {
        IPV4_HDR_44,       /* total length 44 */
        TCP_PORTS_SEQ_ACK, /* 40000 -> 80 */
        0x60,
        0x02,
        0x04,
        0x01, /* data offset 6 (24 bytes), SYN; window 1025 */
        0x00,
        0x00,
        0x00,
        0x00, /* checksum; urgent pointer */
        0x02,
        0x04,
        0x05,
        0xb4, /* MSS 1460, the only option */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.pkt.tcp_opts, CAP_OPTS_MSS_ONLY);
    assert_int_equal(d.pkt.tools, 0);
}

static void test_nmap_malformed_option_is_not_nmap(void **state)
{
    static const uint8_t ip[] = {
        IPV4_HDR_44,       /* total length 44 */
        TCP_PORTS_SEQ_ACK, /* 40000 -> 80 */
        0x60,
        0x02,
        0x10,
        0x00, /* data offset 6 (24 bytes), SYN; window 4096 */
        0x00,
        0x00,
        0x00,
        0x00, /* checksum; urgent pointer */
        0x02,
        0x08,
        0x05,
        0xb4, /* MSS claiming 8 bytes: runs past the header */
    };
    struct decoded d = DECODE(DLT_RAW, ip);

    assert_int_equal(d.pkt.tcp_opts, CAP_OPTS_OTHER);
    assert_int_equal(d.pkt.tools, 0);
}

/* ---------------------------------------------------------------- ds_tool_attribute */

static void test_attribute_needs_three_matches(void **state)
{
    const uint64_t two[DS_TOOL_N] = {[DS_TOOL_ZMAP] = 2};
    const uint64_t three[DS_TOOL_N] = {[DS_TOOL_ZMAP] = 3};

    assert_int_equal(ds_tool_attribute(2, two), -1);
    assert_int_equal(ds_tool_attribute(3, three), DS_TOOL_ZMAP);
}

static void test_attribute_needs_ninety_percent(void **state)
{
    const uint64_t nine[DS_TOOL_N] = {[DS_TOOL_NMAP] = 9};
    const uint64_t eight[DS_TOOL_N] = {[DS_TOOL_NMAP] = 8};
    const uint64_t m900[DS_TOOL_N] = {[DS_TOOL_MASSCAN] = 900};
    const uint64_t m899[DS_TOOL_N] = {[DS_TOOL_MASSCAN] = 899};

    assert_int_equal(ds_tool_attribute(10, nine), DS_TOOL_NMAP);
    assert_int_equal(ds_tool_attribute(10, eight), -1);
    assert_int_equal(ds_tool_attribute(1000, m900), DS_TOOL_MASSCAN);
    assert_int_equal(ds_tool_attribute(1000, m899), -1);
}

static void test_attribute_one_chance_match_never_labels(void **state)
{
    const uint64_t one[DS_TOOL_N] = {[DS_TOOL_ZMAP] = 1};
    const uint64_t none[DS_TOOL_N] = {0};

    assert_int_equal(ds_tool_attribute(1, one), -1);
    assert_int_equal(ds_tool_attribute(0, none), -1);
}

static void test_attribute_ties_go_to_rarer_chance_match(void **state)
{
    const uint64_t all[DS_TOOL_N] = {
        [DS_TOOL_MIRAI] = 10, [DS_TOOL_MASSCAN] = 10, [DS_TOOL_ZMAP] = 10, [DS_TOOL_NMAP] = 10};
    const uint64_t masscan_zmap_nmap[DS_TOOL_N] = {
        [DS_TOOL_MASSCAN] = 10, [DS_TOOL_ZMAP] = 10, [DS_TOOL_NMAP] = 10};
    const uint64_t zmap_nmap[DS_TOOL_N] = {[DS_TOOL_ZMAP] = 10, [DS_TOOL_NMAP] = 10};

    assert_int_equal(ds_tool_attribute(10, all), DS_TOOL_MIRAI);
    assert_int_equal(ds_tool_attribute(10, masscan_zmap_nmap), DS_TOOL_MASSCAN);
    assert_int_equal(ds_tool_attribute(10, zmap_nmap), DS_TOOL_ZMAP);
}

static void test_attribute_rarer_tool_below_threshold_does_not_win(void **state)
{
    const uint64_t m[DS_TOOL_N] = {[DS_TOOL_MIRAI] = 8, [DS_TOOL_NMAP] = 10};

    assert_int_equal(ds_tool_attribute(10, m), DS_TOOL_NMAP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syn_is_scan),
        cmocka_unit_test(test_syn_with_other_flags_is_scan),
        cmocka_unit_test(test_syn_fin_is_not_scan),
        cmocka_unit_test(test_syn_ack_is_backscatter_from_source),
        cmocka_unit_test(test_rst_is_backscatter_from_source),
        cmocka_unit_test(test_other_flag_combinations_are_other),
        cmocka_unit_test(test_tcp_without_flags_byte_is_other),
        cmocka_unit_test(test_later_fragment_is_other),
        cmocka_unit_test(test_other_protocol_is_other),
        cmocka_unit_test(test_icmp_backscatter_types),
        cmocka_unit_test(test_icmp_echo_request_is_probe),
        cmocka_unit_test(test_icmp_other_types_are_other),
        cmocka_unit_test(test_icmp_echo_reply_victim_is_source),
        cmocka_unit_test(test_icmp_error_victim_left_to_decoder),
        cmocka_unit_test(test_icmpv6_backscatter_types),
        cmocka_unit_test(test_icmpv6_echo_request_is_probe),
        cmocka_unit_test(test_icmpv6_other_types_are_other),
        cmocka_unit_test(test_icmpv6_echo_reply_victim_is_source),
        cmocka_unit_test(test_icmp_without_type_is_other),
        cmocka_unit_test(test_udp_from_port_53_is_backscatter),
        cmocka_unit_test(test_udp_other_is_probe),
        cmocka_unit_test(test_udp_without_ports_is_other),
        cmocka_unit_test(test_mirai_sequence_equals_destination),
        cmocka_unit_test(test_zmap_ip_id),
        cmocka_unit_test(test_masscan_ip_id),
        cmocka_unit_test(test_nmap_windows_with_mss_only),
        cmocka_unit_test(test_nmap_needs_window_and_mss_only),
        cmocka_unit_test(test_two_rules_set_both_bits),
        cmocka_unit_test(test_fingerprints_only_on_pure_syns),
        cmocka_unit_test(test_ipv6_syn_never_gets_tools),
        cmocka_unit_test(test_real_zmap_probe),
        cmocka_unit_test(test_real_masscan_probe),
        cmocka_unit_test(test_real_nmap_probe),
        cmocka_unit_test(test_mirai_probe_frame),
        cmocka_unit_test(test_nmap_nop_padding_is_not_nmap),
        cmocka_unit_test(test_nmap_mss_and_another_option_is_not_nmap),
        cmocka_unit_test(test_nmap_window_1025_is_not_nmap),
        cmocka_unit_test(test_nmap_malformed_option_is_not_nmap),
        cmocka_unit_test(test_attribute_needs_three_matches),
        cmocka_unit_test(test_attribute_needs_ninety_percent),
        cmocka_unit_test(test_attribute_one_chance_match_never_labels),
        cmocka_unit_test(test_attribute_ties_go_to_rarer_chance_match),
        cmocka_unit_test(test_attribute_rarer_tool_below_threshold_does_not_win),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
