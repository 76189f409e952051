/*
 * gen_main.c - darkscope-gen: synthetic darknet traffic with an exact ground truth.
 *
 * Start-up and the frame loop.  This is the only file that knows every part of the generator and
 * the only one that decides the exit status: 0 success, 1 run-time failure, 2 bad arguments.
 * Frames are streamed: each is drawn, described, rendered, classified, added to the truth and
 * handed to libpcap before the next one exists, so memory does not grow with the packet count.
 *
 * Timestamps: frame i of N is stamped start + floor((i + u_i) * duration / N) microseconds with
 * u_i uniform in [0, 1): jittered, spread over the whole duration, never decreasing.
 */
#include "gen_internal.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>

#define GEN_STDIO_BUFFER (1u << 20)

struct gen_run {
    const struct gen_config *cfg;
    struct gen_addrgen ag;
    struct gen_pop *pop;
    struct gen_truth *truth;
    struct gen_traffic traffic;
    pcap_t *pcap;
    pcap_dumper_t *dumper;
    FILE *out;
    struct gen_pkt pkt;
    uint8_t frame[GEN_FRAME_MAX];
};

static int run_open(struct gen_run *run, char *err, size_t errlen)
{
    const struct gen_config *cfg = run->cfg;
    char tmp[4096];
    FILE *probe;
    int rc;

    gen_addrgen_init(&run->ag, &cfg->darknet, cfg->seed);
    run->pop = gen_pop_new(cfg, &run->ag, err, errlen);
    if (run->pop == NULL)
        return -ENOMEM;
    run->truth = gen_truth_new(cfg, err, errlen);
    if (run->truth == NULL)
        return -ENOMEM;
    run->traffic.cfg = cfg;
    run->traffic.dn = &cfg->darknet;
    run->traffic.ag = &run->ag;
    /* fail before the long part if the truth cannot be written next to where it belongs */
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", cfg->truth_path) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "--truth: path too long");
        return -ENAMETOOLONG;
    }
    probe = fopen(tmp, "w");
    if (probe == NULL) {
        rc = -errno;
        snprintf(err, errlen, "%s.tmp: %s", cfg->truth_path, strerror(-rc));
        return rc;
    }
    fclose(probe);
    remove(tmp);
    run->out = fopen(cfg->out_path, "wb");
    if (run->out == NULL) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", cfg->out_path, strerror(-rc));
        return rc;
    }
    setvbuf(run->out, NULL, _IOFBF, GEN_STDIO_BUFFER);
    run->pcap =
        pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, PCAP_TSTAMP_PRECISION_MICRO);
    if (run->pcap == NULL) {
        snprintf(err, errlen, "pcap_open_dead failed");
        return -ENOMEM;
    }
    run->dumper = pcap_dump_fopen(run->pcap, run->out);
    if (run->dumper == NULL) {
        snprintf(err, errlen, "%s: %s", cfg->out_path, pcap_geterr(run->pcap));
        return -EIO;
    }
    run->out = NULL; /* owned by the dumper now */
    return 0;
}

static void run_close(struct gen_run *run)
{
    if (run->dumper != NULL)
        pcap_dump_close(run->dumper);
    if (run->out != NULL)
        fclose(run->out);
    if (run->pcap != NULL)
        pcap_close(run->pcap);
    gen_truth_free(run->truth);
    gen_pop_free(run->pop);
}

static int run_frames(struct gen_run *run, char *err, size_t errlen)
{
    const struct gen_config *cfg = run->cfg;
    struct gen_rng sched, traffic, jitter;
    struct gen_source *src = NULL;
    int64_t prev = 0;
    double n = (double)cfg->frames, dur = (double)cfg->duration_us;

    gen_rng_seed(&sched, cfg->seed, 0x5c4ed);
    gen_rng_seed(&traffic, cfg->seed, 0x7aff1c);
    gen_rng_seed(&jitter, cfg->seed, 0x71e);
    for (uint64_t i = 0; i < cfg->frames; i++) {
        struct gen_frame fr;
        struct gen_verdict v;
        struct pcap_pkthdr hdr;
        int64_t off = (int64_t)(dur * (((double)i + gen_rng_unit(&jitter)) / n));
        int64_t ts;
        int rc;

        if (off < prev)
            off = prev;
        if (off >= cfg->duration_us)
            off = cfg->duration_us - 1 > prev ? cfg->duration_us - 1 : prev;
        prev = off;
        ts = cfg->start_us + off;
        if (run->traffic.follow)
            rc = gen_pop_take(run->pop, src);
        else
            rc = gen_pop_draw(run->pop, &sched, &src);
        if (rc != 0 || (rc = gen_traffic_make(&run->traffic, src, &traffic, &run->pkt)) != 0 ||
            (rc = gen_frame_build(&run->pkt, run->frame, sizeof(run->frame), &fr)) != 0) {
            snprintf(err, errlen, "frame %llu: %s", (unsigned long long)i, strerror(-rc));
            return rc;
        }
        gen_classify(&run->pkt, &fr, &cfg->darknet, &v);
        if ((rc = gen_truth_add(run->truth, &run->pkt, &v, ts)) != 0) {
            snprintf(err, errlen, "truth, frame %llu: %s", (unsigned long long)i, strerror(-rc));
            return rc;
        }
        hdr.ts.tv_sec = (time_t)(ts / 1000000);
        hdr.ts.tv_usec = (suseconds_t)(ts % 1000000);
        hdr.caplen = fr.caplen;
        hdr.len = fr.wirelen;
        pcap_dump((u_char *)run->dumper, &hdr, run->frame);
    }
    if (pcap_dump_flush(run->dumper) != 0 || ferror(pcap_dump_file(run->dumper))) {
        snprintf(err, errlen, "%s: write error", cfg->out_path);
        return -EIO;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct gen_config cfg;
    struct gen_run *run;
    char err[GEN_ERRLEN] = "";
    int rc = gen_args_parse(argc, argv, &cfg, err, sizeof(err));

    if (rc == 1) {
        gen_args_usage(stdout);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "darkscope-gen: %s\n", err);
        return 2;
    }
    run = calloc(1, sizeof(*run));
    if (run == NULL) {
        fprintf(stderr, "darkscope-gen: out of memory\n");
        return 1;
    }
    run->cfg = &cfg;
    rc = run_open(run, err, sizeof(err));
    if (rc == 0)
        rc = run_frames(run, err, sizeof(err));
    if (rc == 0) {
        /* the pcap is flushed and complete before the truth appears next to it */
        pcap_dump_close(run->dumper);
        run->dumper = NULL;
    }
    if (rc == 0)
        rc = gen_json_write(run->truth, cfg.truth_path, err, sizeof(err));
    run_close(run);
    free(run);
    if (rc != 0) {
        fprintf(stderr, "darkscope-gen: %s\n", err);
        return 1;
    }
    return 0;
}
