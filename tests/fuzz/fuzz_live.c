/* Fuzz target: a websocket client's message (web/live.c web_live_message_parse(), the filters of
 * web/ring.c) — any text is a subscription or closes the client with a reason, never crashes or
 * leaks; an accepted subscription's filters are within their limits, survive the trip through
 * the "subscribed" message unchanged, and match events without surprises. */
#include "web/web_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_filter(const struct web_filter *f, const struct web_names *names)
{
    struct web_names tmp = {0};

    if (f->classes >> DS_CLASS_N || f->protos >> DS_PROTO_N)
        abort();
    if (f->n_ports > WEB_FILTER_VALUES || f->n_cc > WEB_FILTER_VALUES ||
        f->n_sensors > WEB_FILTER_VALUES)
        abort();
    for (unsigned i = 0; i < f->n_cc; i++) {
        const char *cc = f->cc[i];
        if (cc[0] && !(cc[0] >= 'A' && cc[0] <= 'Z' && cc[1] >= 'A' && cc[1] <= 'Z' && !cc[2]))
            abort();
    }
    for (unsigned i = 0; i < f->n_sensors; i++) {
        if (web_names_index(&tmp, f->sensors[i]) < 0)
            abort();
    }
    /* every event matches when there is no filter; an event outside a filter never does */
    for (unsigned i = 0; i < 64; i++) {
        struct web_event e = {
            .cls = (uint8_t)(i % DS_CLASS_N),
            .proto = (uint8_t)(i / DS_CLASS_N % DS_PROTO_N),
            .dport = f->n_ports && i % 2 ? f->ports[i % f->n_ports] : (uint16_t)i,
            .sensor = (uint16_t)(i % 3),
            .tool = -1,
        };
        if (i % 3)
            memcpy(e.cc, "JP", 3);
        bool m = web_filter_match(f, &e, names);
        if (web_filter_is_all(f) && !m)
            abort();
        if (m && f->classes && !(f->classes & 1u << e.cls))
            abort();
        if (m && f->protos && !(f->protos & 1u << e.proto))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct web_names names;
    struct web_filter f, back;
    enum web_close kind;
    char why[120] = "", *text, *msg;
    json_t *j;

    if (!names.n) {
        web_names_index(&names, "tokyo-1");
        web_names_index(&names, "osaka-2");
    }
    kind = web_live_message_parse((const char *)data, size, &f, why, sizeof(why));
    if (kind != WEB_CLOSE_NORMAL) {
        if ((kind != WEB_CLOSE_INVALID && kind != WEB_CLOSE_POLICY) || !why[0] ||
            !memchr(why, '\0', sizeof(why)))
            abort();
        return 0;
    }
    check_filter(&f, &names);
    /* the filters in force, as the subscribed message echoes them, subscribe to the same */
    j = web_filter_json(&f);
    text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        abort();
    if (asprintf(&msg, "{\"type\":\"subscribe\",\"filters\":%s}", text) < 0)
        abort();
    if (web_live_message_parse(msg, strlen(msg), &back, why, sizeof(why)) != WEB_CLOSE_NORMAL ||
        memcmp(&f, &back, sizeof(f)) != 0) {
        fprintf(stderr, "filters change on the way back: %s\n", msg);
        abort();
    }
    free(msg);
    free(text);
    return 0;
}
