/* `darkscope subscribers check FILE` and `darkscope subscribers lookup IP`. */
#include "aggregator/aggregator.h"
#include "core/core.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

int main_subscribers(int argc, char **argv, struct ds_config *cfg);

int main_subscribers(int argc, char **argv, struct ds_config *cfg)
{
    struct agg_thresholds th;
    struct agg_subscribers *s;
    const char *path;
    char err[1024];

    if (argc != 2 || (strcmp(argv[0], "check") != 0 && strcmp(argv[0], "lookup") != 0)) {
        fprintf(stderr, "usage: darkscope subscribers check FILE\n"
                        "       darkscope subscribers lookup IP [--subscribers FILE]\n");
        return 2;
    }
    agg_thresholds_from_config(cfg, &th);
    path = strcmp(argv[0], "check") == 0 ? argv[1] : cfg->agg_subscribers;
    if (!path || !path[0]) {
        fprintf(stderr, "darkscope subscribers lookup: aggregate.subscribers: expected a "
                        "subscriber file (--subscribers FILE), got nothing\n");
        return 2;
    }
    if (agg_subscribers_load(path, &th, &s, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (strcmp(argv[0], "check") == 0) {
        printf("%s: ok: %u organisations, %zu ranges, %zu internal darknet prefixes, %u "
               "partners\n",
               path, s->n_orgs, s->n_livenet, s->n_internal, s->n_partners);
        agg_subscribers_free(s);
        return 0;
    }
    struct ds_addr a;
    struct agg_match m[64];
    json_t *out = json_object(), *list = json_array();
    if (ds_addr_parse(argv[1], &a) < 0) {
        fprintf(stderr,
                "darkscope subscribers lookup: expected an IPv4/IPv6 address, got "
                "\"%s\"\n",
                argv[1]);
        agg_subscribers_free(s);
        json_decref(out);
        json_decref(list);
        return 2;
    }
    for (int t = 0; t < 2; t++) {
        unsigned n = agg_trie_match(t == 0 ? s->livenet : s->internal, &a, m, 64);
        for (unsigned i = 0; i < n && i < 64; i++) {
            const struct agg_org *o = &s->orgs[m[i].value];
            json_array_append_new(
                list, json_pack("{s:s,s:s,s:s,s:i}", "org", o->id, "name", o->name, "range",
                                t == 0 ? "livenet" : "internal_darknet", "prefix_len", m[i].len));
        }
    }
    json_object_set_new(out, "ip", json_string(argv[1]));
    json_object_set_new(out, "matches", list);
    json_object_set_new(out, "research_scanner",
                        json_boolean(agg_trie_match(s->research, &a, m, 1) > 0));
    json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(out);
    agg_subscribers_free(s);
    return 0;
}
