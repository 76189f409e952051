/*
 * capture — turns darknet packets into time-buckets in Redis.
 *
 * One worker thread per source (live interface or pcap file) decodes and classifies packets
 * (decode.c, classify.c) and aggregates them per bucket in memory (agg.c). A bucket closes when
 * every source has moved past its end plus `capture.lateness` (packet time for files, the wall
 * clock too for interfaces); the coordinator merges the workers' parts and hands the bucket to
 * the flusher thread, which writes it through redis/ and retries with backoff while Redis is
 * away (up to `redis.max_pending_buckets` buckets, then the oldest is dropped and counted).
 * Sampled live events go out on a third thread, bounded by `live.max_events_per_second`.
 *
 * Threading: cap_capture_run() blocks the calling thread until the files end or
 * cap_capture_stop() is called; cap_capture_stop() may be called from a signal handler.
 *
 * Ownership: the capture borrows cfg, which must outlive it.
 */
#ifndef CAP_CAPTURE_H
#define CAP_CAPTURE_H

#include "core/core.h"

enum cap_exit {
    CAP_EXIT_OK = 0,
    CAP_EXIT_SOURCE = 1, /* a file could not be read to its end (what was read is flushed) */
    CAP_EXIT_REDIS = 3,  /* Redis stayed unreachable for redis.flush_timeout */
};

struct cap_capture;

/* Checks that the configuration has something to read and a darknet. Returns 0 or -EINVAL with
 * err filled (a usage error: exit status 2). */
DS_WARN_UNUSED int cap_capture_check(const struct ds_config *cfg, char *err, size_t errlen);
/* Opens every source (so a bad file or interface fails here, before anything runs) and the
 * GeoIP databases. Returns NULL and fills err. */
struct cap_capture *cap_capture_new(const struct ds_config *cfg, char *err, size_t errlen);
/* Called after the sources are open and before run: drops root (see core privilege rules).
 * Returns 0 or -errno with err filled. */
DS_WARN_UNUSED int cap_capture_drop_privileges(struct cap_capture *c, char *err, size_t errlen);
/* Runs until the files end (all buckets flushed or given up) or stop. Returns enum cap_exit. */
int cap_capture_run(struct cap_capture *c);
/* Asks run() to flush and return. Async-signal-safe. */
void cap_capture_stop(struct cap_capture *c);
void cap_capture_free(struct cap_capture *c);

#endif
