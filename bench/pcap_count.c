/* The floor of bench/capture: a libpcap loop that only counts packets (and sums their lengths so
 * the compiler cannot drop the loop). */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>

struct count {
    uint64_t packets, bytes;
};

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
    struct count *c = (struct count *)user;

    (void)bytes;
    c->packets++;
    c->bytes += h->caplen;
}

int main(int argc, char **argv)
{
    char err[PCAP_ERRBUF_SIZE];
    struct count c = {0, 0};
    pcap_t *p;

    if (argc != 2) {
        fprintf(stderr, "usage: pcap_count FILE\n");
        return 2;
    }
    p = pcap_open_offline(argv[1], err);
    if (!p) {
        fprintf(stderr, "pcap_count: %s\n", err);
        return 1;
    }
    if (pcap_loop(p, -1, on_packet, (u_char *)&c) == -1) {
        fprintf(stderr, "pcap_count: %s\n", pcap_geterr(p));
        pcap_close(p);
        return 1;
    }
    pcap_close(p);
    printf("%llu %llu\n", (unsigned long long)c.packets, (unsigned long long)c.bytes);
    return 0;
}
