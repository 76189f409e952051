/* pcap/pcapng files, opened with nanosecond timestamps; optional pacing (--speed). */
#include "capture/cap_internal.h"

#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int file_open(struct cap_source *s, char *err, size_t errlen)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_open_offline_with_tstamp_precision(s->name, PCAP_TSTAMP_PRECISION_NANO, ebuf);

    if (!p) {
        /* libpcap's message names the file already */
        snprintf(err, errlen, "%s", ebuf);
        return -1;
    }
    if (s->cfg->bpf && *s->cfg->bpf) {
        struct bpf_program prog;
        if (pcap_compile(p, &prog, s->cfg->bpf, 1, PCAP_NETMASK_UNKNOWN) < 0 ||
            pcap_setfilter(p, &prog) < 0) {
            snprintf(err, errlen, "%s: capture.bpf: %s", s->name, pcap_geterr(p));
            pcap_close(p);
            return -1;
        }
        pcap_freecode(&prog);
    }
    s->pcap = p;
    s->dlt = pcap_datalink(p);
    s->live = false;
    return 0;
}

/* --speed realtime / xN: sleeps until the packet is due, in slices so a stop is seen. */
static void pace(struct cap_source *s, ds_time_ns pkt)
{
    double factor = s->cfg->speed_factor;
    ds_time_ns due;

    if (s->pace_first_wall == 0 || pkt < s->pace_first_pkt) {
        s->pace_first_wall = ds_time_monotonic();
        s->pace_first_pkt = pkt;
        return;
    }
    due = s->pace_first_wall + (ds_time_ns)((double)(pkt - s->pace_first_pkt) / factor);
    for (;;) {
        ds_time_ns wait = due - ds_time_monotonic();
        if (wait <= 0 || (s->stop && *s->stop))
            return;
        if (wait > 100 * 1000000LL)
            wait = 100 * 1000000LL;
        struct timespec ts = {(time_t)(wait / DS_NS_PER_SEC), (long)(wait % DS_NS_PER_SEC)};
        nanosleep(&ts, NULL);
    }
}

static enum cap_next file_next(struct cap_source *s, struct cap_frame *out)
{
    struct pcap_pkthdr *h;
    const u_char *d;
    int rc = pcap_next_ex(s->pcap, &h, &d);

    if (rc == 1) {
        out->dlt = s->dlt;
        out->ts_sec = h->ts.tv_sec;
        out->ts_nsec = h->ts.tv_usec; /* nanoseconds: opened with nano precision */
        out->caplen = h->caplen;
        out->wirelen = h->len;
        out->data = d;
        if (s->cfg->speed_mode != DS_SPEED_MAX && s->cfg->speed_factor > 0 &&
            out->ts_nsec < DS_NS_PER_SEC)
            pace(s, (ds_time_ns)out->ts_sec * DS_NS_PER_SEC + out->ts_nsec);
        return CAP_NEXT_PACKET;
    }
    if (rc == PCAP_ERROR_BREAK)
        return CAP_NEXT_END;
    snprintf(s->error, sizeof(s->error), "%s", pcap_geterr(s->pcap));
    return CAP_NEXT_ERROR;
}

static void file_close(struct cap_source *s)
{
    if (s->pcap)
        pcap_close(s->pcap);
    s->pcap = NULL;
}

const struct cap_source_ops cap_source_file_ops = {
    .kind = "file",
    .open = file_open,
    .next = file_next,
    .close = file_close,
};
