/* Fuzz target: the subscriber file parser (aggregator/subscribers.c) — any file loads or is
 * refused with an error naming it, never crashes or leaks. */
#include "aggregator/aggregator.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    struct agg_thresholds th;
    struct agg_subscribers *s = NULL;
    char err[512];
    FILE *f;

    if (!path[0])
        snprintf(path, sizeof(path), "/tmp/ds-fuzz-subs-%ld.json", (long)getpid());
    f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    agg_thresholds_default(&th);
    if (agg_subscribers_load(path, &th, &s, err, sizeof(err)) == 0)
        agg_subscribers_free(s);
    unlink(path);
    return 0;
}
