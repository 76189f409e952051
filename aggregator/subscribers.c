/* The subscriber file: organisations with their live ranges (inline or in CSV files beside the
 * JSON), internal darknets, contacts, thresholds and token hashes; partner CERTs with their
 * countries. Validated whole — the first problem is reported as "FILE: key 'path': expected …,
 * got …" (or "FILE:LINE: …" for syntax and CSV rows) and nothing is kept — so a reload swaps
 * in a complete new set or keeps the old one. */
#include "aggregator/aggregator.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define ORGS_MAX     100000
#define CONTACTS_MAX 16
#define ID_MAX       64

struct ctx {
    const char *path;
    char *err;
    size_t errlen;
    struct agg_subscribers *s;
};

static int fail(struct ctx *c, const char *key, const char *expected, const json_t *got)
{
    char text[120] = "nothing";

    if (got) {
        char *d = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
        if (d)
            snprintf(text, sizeof(text), "%.100s%s", d, strlen(d) > 100 ? "…" : "");
        free(d);
    }
    snprintf(c->err, c->errlen, "%s: key '%s': expected %s, got %s", c->path, key, expected, text);
    return -EINVAL;
}

static bool id_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    }
    return true;
}

/* A deliberately plain check: local@domain with a dot in the domain, no spaces or controls. */
static bool email_ok(const char *s)
{
    const char *at = strchr(s, '@');

    if (!at || at == s || strchr(at + 1, '@') || !strchr(at + 1, '.') || strlen(s) > 254)
        return false;
    if (at[1] == '.' || s[strlen(s) - 1] == '.')
        return false;
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' || *p == ',' || *p == ';' ||
            *p == '"' || *p == '\\')
            return false;
    }
    return true;
}

static int hex32(const char *s, uint8_t out[32])
{
    if (strlen(s) != 64)
        return -1;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1]) ||
            sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

static int check_keys(struct ctx *c, json_t *obj, const char *where, const char *const *known,
                      size_t n)
{
    const char *k;
    json_t *v;
    char key[160];

    json_object_foreach(obj, k, v) {
        bool found = false;
        for (size_t i = 0; i < n && !found; i++)
            found = strcmp(known[i], k) == 0;
        if (!found) {
            snprintf(key, sizeof(key), "%s.%s", where, k);
            snprintf(c->err, c->errlen, "%s: key '%s': unknown key", c->path, key);
            return -EINVAL;
        }
    }
    return 0;
}

static int get_int(struct ctx *c, json_t *obj, const char *name, const char *where, int64_t min,
                   int64_t max, int64_t *out)
{
    json_t *v = json_object_get(obj, name);
    char key[160], exp[80];

    if (!v)
        return 0;
    snprintf(key, sizeof(key), "%s.%s", where, name);
    snprintf(exp, sizeof(exp), "an integer from %lld to %lld", (long long)min, (long long)max);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return fail(c, key, exp, v);
    *out = json_integer_value(v);
    return 0;
}

static int get_duration(struct ctx *c, json_t *obj, const char *name, const char *where,
                        int64_t min, int64_t max, int64_t *out)
{
    json_t *v = json_object_get(obj, name);
    char key[160];
    int64_t secs;

    if (!v)
        return 0;
    snprintf(key, sizeof(key), "%s.%s", where, name);
    if (json_is_integer(v))
        secs = json_integer_value(v);
    else if (!json_is_string(v) || ds_duration_parse(json_string_value(v), &secs) < 0)
        return fail(c, key, "a duration (seconds, or \"90s\", \"15m\", \"24h\", \"7d\")", v);
    if (secs < min || secs > max)
        return fail(c, key, "a duration within bounds", v);
    *out = secs;
    return 0;
}

static int parse_thresholds(struct ctx *c, json_t *t, const char *where, struct agg_thresholds *th)
{
    static const char *const known[] = {"infected_min_packets",
                                        "infected_min_darknet_addresses",
                                        "ddos_min_packets",
                                        "ddos_min_seconds",
                                        "ddos_min_window_packets",
                                        "quiet",
                                        "renotify"};
    if (!json_is_object(t))
        return fail(c, where, "an object", t);
    if (check_keys(c, t, where, known, DS_ARRAY_LEN(known)) < 0 ||
        get_int(c, t, "infected_min_packets", where, 1, 1000000000, &th->infected_min_packets) <
            0 ||
        get_int(c, t, "infected_min_darknet_addresses", where, 1, 1000000000,
                &th->infected_min_dsts) < 0 ||
        get_int(c, t, "ddos_min_packets", where, 1, 1000000000, &th->ddos_min_packets) < 0 ||
        get_duration(c, t, "ddos_min_seconds", where, 0, 86400, &th->ddos_min_seconds) < 0 ||
        get_int(c, t, "ddos_min_window_packets", where, 1, 1000000000,
                &th->ddos_min_window_packets) < 0 ||
        get_duration(c, t, "quiet", where, 60, 30 * 86400, &th->quiet_seconds) < 0 ||
        get_duration(c, t, "renotify", where, 60, 365 * 86400, &th->renotify_seconds) < 0)
        return -EINVAL;
    return 0;
}

static int add_range(struct ctx *c, struct agg_trie *t, const char *text, uint32_t org,
                     const char *key, size_t *count)
{
    struct ds_cidr p;

    if (ds_cidr_parse(text, &p) < 0) {
        json_t *v = json_string(text);
        int rc = fail(c, key, "an IPv4/IPv6 prefix like \"203.0.113.0/24\" (no host bits set)", v);
        json_decref(v);
        return rc;
    }
    if (agg_trie_add(t, &p, org) < 0) {
        snprintf(c->err, c->errlen, "%s: out of memory", c->path);
        return -ENOMEM;
    }
    (*count)++;
    return 0;
}

static int prefix_list(struct ctx *c, json_t *list, const char *where, struct agg_trie *t,
                       uint32_t org, struct ds_cidr **keep, unsigned *n_keep, size_t *count)
{
    size_t i;
    json_t *v;
    char key[200];

    if (!list)
        return 0;
    if (!json_is_array(list))
        return fail(c, where, "a list of prefixes", list);
    if (keep) {
        *keep = calloc(json_array_size(list) + 1, sizeof(**keep));
        if (!*keep)
            return -ENOMEM;
    }
    json_array_foreach(list, i, v) {
        snprintf(key, sizeof(key), "%s[%zu]", where, i);
        if (!json_is_string(v))
            return fail(c, key, "a prefix string", v);
        if (add_range(c, t, json_string_value(v), org, key, count) < 0)
            return -EINVAL;
        if (keep) {
            if (ds_cidr_parse(json_string_value(v), &(*keep)[*n_keep]) < 0)
                return -EINVAL;
            (*n_keep)++;
        }
    }
    return 0;
}

/* A CSV of bulk ranges: "org_id,prefix[,comment]" per line, '#' comments, optional header. */
static int load_csv(struct ctx *c, const char *file, struct agg_subscribers *s)
{
    char path[4096], line[1024];
    const char *slash = strrchr(c->path, '/');
    FILE *f;
    unsigned lineno = 0;

    if (file[0] == '/' || !slash)
        snprintf(path, sizeof(path), "%s", file);
    else
        snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - c->path), c->path, file);
    f = fopen(path, "r");
    if (!f) {
        snprintf(c->err, c->errlen, "%s: key 'ranges_csv': cannot read %s: %s", c->path, path,
                 strerror(errno));
        return -EINVAL;
    }
    while (fgets(line, sizeof(line), f)) {
        char *org, *prefix, *end, *save = NULL;
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(c->err, c->errlen, "%s:%u: line longer than %zu bytes", path, lineno,
                     sizeof(line) - 1);
            fclose(f);
            return -EINVAL;
        }
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        org = strtok_r(line, ",", &save);
        prefix = strtok_r(NULL, ",", &save);
        if (lineno == 1 && org && strcmp(org, "org_id") == 0)
            continue;
        for (end = prefix ? prefix + strlen(prefix) : NULL; end && end > prefix && end[-1] == ' ';)
            *--end = '\0';
        while (prefix && *prefix == ' ')
            prefix++;
        int idx = org ? agg_subscribers_find(s, org) : -1;
        if (idx < 0) {
            snprintf(c->err, c->errlen, "%s:%u: expected an organisation id of %s, got \"%.64s\"",
                     path, lineno, c->path, org ? org : "");
            fclose(f);
            return -EINVAL;
        }
        struct ds_cidr p;
        if (!prefix || ds_cidr_parse(prefix, &p) < 0) {
            snprintf(c->err, c->errlen,
                     "%s:%u: expected an IPv4/IPv6 prefix like \"203.0.113.0/24\" (no host bits "
                     "set), got \"%.64s\"",
                     path, lineno, prefix ? prefix : "");
            fclose(f);
            return -EINVAL;
        }
        if (agg_trie_add(s->livenet, &p, (uint32_t)idx) < 0) {
            fclose(f);
            return -ENOMEM;
        }
        s->orgs[idx].n_livenet++;
        s->n_livenet++;
    }
    fclose(f);
    return 0;
}

static int parse_org(struct ctx *c, json_t *o, unsigned i, struct agg_org *org,
                     const struct agg_thresholds *defaults)
{
    static const char *const known[] = {
        "id",         "name",         "livenet",  "internal_darknet", "contacts",
        "thresholds", "token_sha256", "timezone", "webhooks"};
    char where[64], key[160];
    json_t *v, *contacts;
    size_t k;

    snprintf(where, sizeof(where), "organisations[%u]", i);
    if (!json_is_object(o))
        return fail(c, where, "an object", o);
    if (check_keys(c, o, where, known, DS_ARRAY_LEN(known)) < 0)
        return -EINVAL;
    snprintf(key, sizeof(key), "%s.id", where);
    v = json_object_get(o, "id");
    if (!json_is_string(v) || !id_ok(json_string_value(v)))
        return fail(c, key, "an id of 1 to 64 characters from A-Z a-z 0-9 - _ .", v);
    org->id = strdup(json_string_value(v));
    snprintf(key, sizeof(key), "%s.name", where);
    v = json_object_get(o, "name");
    if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > 200)
        return fail(c, key, "a name of 1 to 200 characters", v);
    org->name = strdup(json_string_value(v));
    org->th = *defaults;
    v = json_object_get(o, "thresholds");
    if (v) {
        snprintf(key, sizeof(key), "%s.thresholds", where);
        if (parse_thresholds(c, v, key, &org->th) < 0)
            return -EINVAL;
    }
    snprintf(key, sizeof(key), "%s.timezone", where);
    v = json_object_get(o, "timezone");
    if (v && (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > 64 ||
              strstr(json_string_value(v), "..")))
        return fail(c, key, "a time zone name like \"Asia/Tokyo\"", v);
    org->timezone = v ? strdup(json_string_value(v)) : NULL;
    snprintf(key, sizeof(key), "%s.token_sha256", where);
    v = json_object_get(o, "token_sha256");
    if (v) {
        if (!json_is_string(v) || hex32(json_string_value(v), org->token_sha256) < 0)
            return fail(c, key, "64 hex digits (the SHA-256 of the organisation's API token)", v);
        org->has_token = true;
    }
    v = json_object_get(o, "webhooks");
    if (v) {
        json_t *w;
        snprintf(key, sizeof(key), "%s.webhooks", where);
        if (!json_is_array(v) || json_array_size(v) > AGG_WEBHOOKS_MAX)
            return fail(c, key, "a list of at most 4 webhooks", v);
        json_array_foreach(v, k, w) {
            static const char *const wkeys[] = {"url", "secret_file"};
            json_t *url = json_object_get(w, "url"), *sec = json_object_get(w, "secret_file");
            snprintf(key, sizeof(key), "%s.webhooks[%zu]", where, k);
            if (!json_is_object(w))
                return fail(c, key, "an object with url and secret_file", w);
            if (check_keys(c, w, key, wkeys, DS_ARRAY_LEN(wkeys)) < 0)
                return -EINVAL;
            snprintf(key, sizeof(key), "%s.webhooks[%zu].url", where, k);
            if (!json_is_string(url) || (strncmp(json_string_value(url), "https://", 8) != 0 &&
                                         strncmp(json_string_value(url), "http://", 7) != 0))
                return fail(c, key, "an http:// or https:// URL", url);
            snprintf(key, sizeof(key), "%s.webhooks[%zu].secret_file", where, k);
            if (!json_is_string(sec) || !json_string_length(sec))
                return fail(c, key, "the path of a file holding the HMAC secret", sec);
            org->webhooks[org->n_webhooks].url = strdup(json_string_value(url));
            org->webhooks[org->n_webhooks].secret_file = strdup(json_string_value(sec));
            org->n_webhooks++;
        }
    }
    contacts = json_object_get(o, "contacts");
    snprintf(key, sizeof(key), "%s.contacts", where);
    if (!json_is_array(contacts) || json_array_size(contacts) == 0 ||
        json_array_size(contacts) > CONTACTS_MAX)
        return fail(c, key, "a list of 1 to 16 contacts", contacts);
    org->contacts = calloc(json_array_size(contacts), sizeof(*org->contacts));
    if (!org->contacts)
        return -ENOMEM;
    json_array_foreach(contacts, k, v) {
        static const char *const ckeys[] = {"email", "lang"};
        struct agg_contact *ct = &org->contacts[org->n_contacts];
        snprintf(key, sizeof(key), "%s.contacts[%zu]", where, k);
        if (!json_is_object(v))
            return fail(c, key, "an object with email and lang", v);
        if (check_keys(c, v, key, ckeys, DS_ARRAY_LEN(ckeys)) < 0)
            return -EINVAL;
        json_t *e = json_object_get(v, "email"), *l = json_object_get(v, "lang");
        snprintf(key, sizeof(key), "%s.contacts[%zu].email", where, k);
        if (!json_is_string(e) || !email_ok(json_string_value(e)))
            return fail(c, key, "an email address like \"soc@example.org\"", e);
        snprintf(key, sizeof(key), "%s.contacts[%zu].lang", where, k);
        if (l && (!json_is_string(l) || (strcmp(json_string_value(l), "en") != 0 &&
                                         strcmp(json_string_value(l), "ja") != 0)))
            return fail(c, key, "\"en\" or \"ja\"", l);
        ct->email = strdup(json_string_value(e));
        snprintf(ct->lang, sizeof(ct->lang), "%s", l ? json_string_value(l) : "en");
        org->n_contacts++;
    }
    return 0;
}

static int parse_partner(struct ctx *c, json_t *p, unsigned i, struct agg_partner *out)
{
    static const char *const known[] = {"name", "countries", "token_sha256"};
    char where[64], key[160];
    json_t *v;
    size_t k;

    snprintf(where, sizeof(where), "partners[%u]", i);
    if (!json_is_object(p))
        return fail(c, where, "an object", p);
    if (check_keys(c, p, where, known, DS_ARRAY_LEN(known)) < 0)
        return -EINVAL;
    snprintf(key, sizeof(key), "%s.name", where);
    v = json_object_get(p, "name");
    if (!json_is_string(v) || !id_ok(json_string_value(v)))
        return fail(c, key, "a name of 1 to 64 characters from A-Z a-z 0-9 - _ .", v);
    snprintf(out->name, sizeof(out->name), "%s", json_string_value(v));
    snprintf(key, sizeof(key), "%s.countries", where);
    v = json_object_get(p, "countries");
    if (!json_is_array(v) || !json_array_size(v) || json_array_size(v) > AGG_PARTNER_CC_MAX)
        return fail(c, key, "a list of 1 to 64 two-letter country codes", v);
    json_t *cc;
    json_array_foreach(v, k, cc) {
        const char *s = json_string_value(cc);
        snprintf(key, sizeof(key), "%s.countries[%zu]", where, k);
        if (!s || strlen(s) != 2 || !isupper((unsigned char)s[0]) || !isupper((unsigned char)s[1]))
            return fail(c, key, "a two-letter country code like \"ID\"", cc);
        memcpy(out->countries[out->n_countries++], s, 3);
    }
    snprintf(key, sizeof(key), "%s.token_sha256", where);
    v = json_object_get(p, "token_sha256");
    if (!json_is_string(v) || hex32(json_string_value(v), out->token_sha256) < 0)
        return fail(c, key, "64 hex digits (the SHA-256 of the partner's API token)", v);
    return 0;
}

static int load(struct ctx *c, const struct agg_thresholds *defaults)
{
    static const char *const known[] = {"organisations", "partners", "research_scanners",
                                        "ranges_csv", "thresholds"};
    struct agg_subscribers *s = c->s;
    json_error_t jerr;
    json_t *root, *orgs, *v;
    size_t i;
    int rc = -EINVAL;
    struct agg_thresholds th = *defaults;

    root = json_load_file(c->path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (jerr.line > 0)
            snprintf(c->err, c->errlen, "%s:%d: %s", c->path, jerr.line, jerr.text);
        else
            snprintf(c->err, c->errlen, "%s: %s", c->path, jerr.text);
        return -EINVAL;
    }
    if (!json_is_object(root)) {
        rc = fail(c, "(top level)", "an object with \"organisations\"", root);
        goto out;
    }
    if (check_keys(c, root, "(top level)", known, DS_ARRAY_LEN(known)) < 0)
        goto out;
    v = json_object_get(root, "thresholds");
    if (v && parse_thresholds(c, v, "thresholds", &th) < 0)
        goto out;
    orgs = json_object_get(root, "organisations");
    if (!json_is_array(orgs) || json_array_size(orgs) > ORGS_MAX) {
        rc = fail(c, "organisations", "a list of at most 100000 organisations", orgs);
        goto out;
    }
    s->orgs = calloc(json_array_size(orgs) + 1, sizeof(*s->orgs));
    if (!s->orgs)
        goto out;
    json_array_foreach(orgs, i, v) {
        struct agg_org *org = &s->orgs[s->n_orgs];
        char key[96];
        if (parse_org(c, v, (unsigned)i, org, &th) < 0) {
            s->n_orgs++; /* freed with the rest */
            goto out;
        }
        s->n_orgs++;
        if (json_object_get(s->by_id, org->id)) {
            snprintf(key, sizeof(key), "organisations[%zu].id", i);
            rc = fail(c, key, "an id not used by another organisation", json_object_get(v, "id"));
            goto out;
        }
        if (json_object_set_new(s->by_id, org->id, json_integer((json_int_t)i)) < 0)
            goto out;
        snprintf(key, sizeof(key), "organisations[%zu].livenet", i);
        if (prefix_list(c, json_object_get(v, "livenet"), key, s->livenet, (uint32_t)i, NULL, NULL,
                        &org->n_livenet) < 0)
            goto out;
        snprintf(key, sizeof(key), "organisations[%zu].internal_darknet", i);
        if (prefix_list(c, json_object_get(v, "internal_darknet"), key, s->internal, (uint32_t)i,
                        &org->internal, &org->n_internal, &s->n_internal) < 0)
            goto out;
        s->n_livenet += org->n_livenet;
    }
    v = json_object_get(root, "ranges_csv");
    if (v) {
        json_t *f;
        if (!json_is_array(v)) {
            rc = fail(c, "ranges_csv", "a list of CSV file names", v);
            goto out;
        }
        json_array_foreach(v, i, f) {
            if (!json_is_string(f)) {
                rc = fail(c, "ranges_csv", "a list of CSV file names", f);
                goto out;
            }
            if (load_csv(c, json_string_value(f), s) < 0)
                goto out;
        }
    }
    for (unsigned k = 0; k < s->n_orgs; k++) {
        if (s->orgs[k].n_livenet == 0) {
            char key[96];
            json_t *id = json_string(s->orgs[k].id);
            snprintf(key, sizeof(key), "organisations[%u].livenet", k);
            rc = fail(c, key, "at least one prefix (here or in a ranges_csv file) for", id);
            json_decref(id);
            goto out;
        }
    }
    v = json_object_get(root, "partners");
    if (v) {
        json_t *p;
        if (!json_is_array(v)) {
            rc = fail(c, "partners", "a list of partners", v);
            goto out;
        }
        s->partners = calloc(json_array_size(v) + 1, sizeof(*s->partners));
        if (!s->partners)
            goto out;
        json_array_foreach(v, i, p) {
            if (parse_partner(c, p, (unsigned)i, &s->partners[s->n_partners]) < 0)
                goto out;
            s->n_partners++;
        }
    }
    v = json_object_get(root, "research_scanners");
    if (v) {
        size_t count = 0;
        if (!json_is_array(v)) {
            rc = fail(c, "research_scanners", "a list of prefixes", v);
            goto out;
        }
        if (prefix_list(c, v, "research_scanners", s->research, 0, NULL, NULL, &count) < 0)
            goto out;
    }
    if (agg_trie_finish(s->livenet) < 0 || agg_trie_finish(s->internal) < 0 ||
        agg_trie_finish(s->research) < 0)
        goto out;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int agg_subscribers_load(const char *path, const struct agg_thresholds *defaults,
                         struct agg_subscribers **out, char *err, size_t errlen)
{
    struct agg_subscribers *s = calloc(1, sizeof(*s));
    struct ctx c = {path, err, errlen, s};
    int rc;

    *out = NULL;
    if (!s)
        return -ENOMEM;
    s->livenet = agg_trie_new();
    s->internal = agg_trie_new();
    s->research = agg_trie_new();
    s->by_id = json_object();
    if (!s->livenet || !s->internal || !s->research || !s->by_id) {
        agg_subscribers_free(s);
        return -ENOMEM;
    }
    rc = load(&c, defaults);
    if (rc < 0) {
        if (rc == -ENOMEM && !err[0])
            snprintf(err, errlen, "%s: out of memory", path);
        agg_subscribers_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void agg_subscribers_free(struct agg_subscribers *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->n_orgs; i++) {
        struct agg_org *o = &s->orgs[i];
        free(o->id);
        free(o->name);
        free(o->timezone);
        free(o->internal);
        for (unsigned k = 0; k < o->n_webhooks; k++) {
            free(o->webhooks[k].url);
            free(o->webhooks[k].secret_file);
        }
        for (unsigned k = 0; k < o->n_contacts; k++)
            free(o->contacts[k].email);
        free(o->contacts);
    }
    free(s->orgs);
    free(s->partners);
    json_decref(s->by_id);
    agg_trie_free(s->livenet);
    agg_trie_free(s->internal);
    agg_trie_free(s->research);
    free(s);
}

void agg_thresholds_default(struct agg_thresholds *t)
{
    t->infected_min_packets = 1;
    t->infected_min_dsts = 1;
    /* Corsaro3's dos plugin: at least 25 packets over at least 60 s, 30 in some 60 s window */
    t->ddos_min_packets = 25;
    t->ddos_min_seconds = 60;
    t->ddos_min_window_packets = 30;
    t->quiet_seconds = 3600;
    t->renotify_seconds = 86400;
}

int agg_subscribers_find(const struct agg_subscribers *s, const char *id)
{
    json_t *i = json_object_get(s->by_id, id);

    return i ? (int)json_integer_value(i) : -1;
}
