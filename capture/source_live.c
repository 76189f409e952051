/* Live interfaces: promiscuous, immediate mode, kernel buffer, BPF; 64-bit kernel counters. */
#include "capture/cap_internal.h"

#include <pcap/pcap.h>
#include <poll.h>
#include <string.h>

#define LIVE_TIMEOUT_MS 100

static int live_open(struct cap_source *s, char *err, size_t errlen)
{
    const struct ds_config *cfg = s->cfg;
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_create(s->name, ebuf);
    int rc;

    if (!p) {
        snprintf(err, errlen, "interface %s: %s", s->name, ebuf);
        return -1;
    }
    pcap_set_snaplen(p, (int)cfg->snaplen);
    pcap_set_promisc(p, cfg->promiscuous);
    pcap_set_timeout(p, LIVE_TIMEOUT_MS);
    pcap_set_buffer_size(p, (int)(cfg->buffer_mb * 1024 * 1024));
    pcap_set_immediate_mode(p, cfg->immediate);
    pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO);
    rc = pcap_activate(p);
    if (rc < 0) {
        snprintf(err, errlen, "interface %s: %s", s->name,
                 rc == PCAP_ERROR ? pcap_geterr(p) : pcap_statustostr(rc));
        pcap_close(p);
        return -1;
    }
    if (cfg->bpf && *cfg->bpf) {
        struct bpf_program prog;
        if (pcap_compile(p, &prog, cfg->bpf, 1, PCAP_NETMASK_UNKNOWN) < 0 ||
            pcap_setfilter(p, &prog) < 0) {
            snprintf(err, errlen, "interface %s: capture.bpf: %s", s->name, pcap_geterr(p));
            pcap_close(p);
            return -1;
        }
        pcap_freecode(&prog);
    }
    /* non-blocking + poll(): the worker wakes at least every LIVE_TIMEOUT_MS even when the
     * darknet is idle (in immediate mode the read timeout alone does not guarantee that) */
    if (pcap_setnonblock(p, 1, ebuf) < 0) {
        snprintf(err, errlen, "interface %s: %s", s->name, ebuf);
        pcap_close(p);
        return -1;
    }
    s->pcap = p;
    s->dlt = pcap_datalink(p);
    s->live = true;
    s->last_recv = s->last_drop = s->last_ifdrop = 0;
    return 0;
}

void cap_source_live_stats(struct cap_source *s)
{
    struct pcap_stat st;

    if (!s->pcap || pcap_stats(s->pcap, &st) < 0)
        return;
    /* the kernel's counters are 32-bit: add the (wrapping) difference */
    s->kernel_received += (uint32_t)(st.ps_recv - s->last_recv);
    s->kernel_dropped += (uint32_t)(st.ps_drop - s->last_drop);
    s->ifdrops += (uint32_t)(st.ps_ifdrop - s->last_ifdrop);
    s->last_recv = st.ps_recv;
    s->last_drop = st.ps_drop;
    s->last_ifdrop = st.ps_ifdrop;
}

static enum cap_next live_next(struct cap_source *s, struct cap_frame *out)
{
    struct pcap_pkthdr *h;
    const u_char *d;
    int rc = pcap_next_ex(s->pcap, &h, &d);

    if (rc == 0) {
        struct pollfd pfd = {.fd = pcap_get_selectable_fd(s->pcap), .events = POLLIN};
        if (pfd.fd >= 0 && poll(&pfd, 1, LIVE_TIMEOUT_MS) > 0)
            rc = pcap_next_ex(s->pcap, &h, &d);
        if (pfd.fd >= 0 && (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) && rc == 0) {
            snprintf(s->error, sizeof(s->error), "interface went away");
            return CAP_NEXT_ERROR;
        }
    }
    if (rc == 1) {
        out->dlt = s->dlt;
        out->ts_sec = h->ts.tv_sec;
        out->ts_nsec = h->ts.tv_usec;
        out->caplen = h->caplen;
        out->wirelen = h->len;
        out->data = d;
        return CAP_NEXT_PACKET;
    }
    if (rc == 0 || rc == PCAP_ERROR_BREAK)
        return CAP_NEXT_TIMEOUT;
    snprintf(s->error, sizeof(s->error), "%s", pcap_geterr(s->pcap));
    return CAP_NEXT_ERROR;
}

static void live_close(struct cap_source *s)
{
    if (s->pcap) {
        cap_source_live_stats(s);
        pcap_close(s->pcap);
    }
    s->pcap = NULL;
}

const struct cap_source_ops cap_source_live_ops = {
    .kind = "interface",
    .open = live_open,
    .next = live_next,
    .close = live_close,
};
