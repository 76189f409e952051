/* Fuzz target: a live batch as serve reads it from Redis (web/ring.c web_batch_parse(); the
 * shape is docs/redis-schema.md's `ds:v1:live`) — whatever a sensor or a store that is not ours
 * publishes, serve never crashes or leaks on it, and every event it keeps is within the
 * protocol's ranges, masked when asked, and written out by web_event_json() as valid JSON that
 * names the same source and class. */
#include "web/web_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
    struct web_names *names;
    bool mask;
    unsigned n;
};

static void check_event(void *ctx, const struct web_event *e)
{
    struct seen *x = ctx;
    struct ds_buf b;
    char ip[DS_ADDR_STRLEN];
    json_t *j;

    x->n++;
    if (e->proto >= DS_PROTO_N || e->cls >= DS_CLASS_N || e->tool < -1 || e->tool >= DS_TOOL_N)
        abort();
    if (e->sensor >= x->names->n)
        abort();
    if (e->cc[0] &&
        !(e->cc[0] >= 'A' && e->cc[0] <= 'Z' && e->cc[1] >= 'A' && e->cc[1] <= 'Z' && !e->cc[2]))
        abort();
    if (e->has_loc && !(e->lat >= -90 && e->lat <= 90 && e->lon >= -180 && e->lon <= 180))
        abort();
    if (e->src.family != 4 && e->src.family != 6)
        abort();
    if (x->mask && ((e->src.family == 4 && e->src.b[3]) ||
                    (e->src.family == 6 && memcmp(e->src.b + 6, "\0\0\0\0\0\0\0\0\0\0", 10))))
        abort();
    /* what the clients get: one JSON object with the same source and class */
    ds_buf_init(&b, 1 << 16);
    web_event_json(&b, e, x->names);
    if (ds_buf_failed(&b))
        abort();
    j = json_loadb(b.p, b.len, 0, NULL);
    if (!j ||
        strcmp(json_string_value(json_object_get(j, "src")) ?: "",
               ds_addr_format(&e->src, ip, sizeof(ip))) != 0 ||
        strcmp(json_string_value(json_object_get(j, "class")) ?: "", ds_class_names[e->cls]) != 0) {
        fprintf(stderr, "event written as %.*s\n", (int)b.len, b.p);
        abort();
    }
    json_decref(j);
    ds_buf_fini(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int mask = 0; mask < 2; mask++) {
        struct web_names names = {0};
        struct web_batch batch;
        struct seen x = {&names, mask, 0};
        int n = web_batch_parse((const char *)data, size, &names, mask, &batch, check_event, &x);
        if (n < -1 || (n >= 0 && (unsigned)n != x.n) || (n == -1 && x.n))
            abort();
        if (n >= 0 && (batch.sensor < 0 || (unsigned)batch.sensor >= names.n))
            abort();
        if (names.n > WEB_SENSORS_MAX)
            abort();
    }
    return 0;
}
