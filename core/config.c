/* The configuration engine: the table in config_table.c drives loading, overrides, validation,
 * dumping and documentation. */
#include "core/core_internal.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIELD(cfg, key, type) ((type *)((char *)(cfg) + (key)->offset))

static const struct ds_cfg_key *key_find(const char *path)
{
    for (size_t i = 0; i < ds_cfg_nkeys; i++) {
        if (strcmp(ds_cfg_keys[i].path, path) == 0)
            return &ds_cfg_keys[i];
    }
    return NULL;
}

static void strings_clear(struct ds_config *cfg, const struct ds_cfg_key *k)
{
    char **items = FIELD(cfg, k, char *);
    unsigned *n = (unsigned *)((char *)cfg + k->count_offset);

    for (unsigned i = 0; i < *n; i++) {
        free(items[i]);
        items[i] = NULL;
    }
    *n = 0;
}

static const char *expected_text(const struct ds_cfg_key *k, char *buf, size_t len)
{
    switch (k->type) {
    case DS_CFG_OBJECT:
        return "an object";
    case DS_CFG_STRING:
        return "a string";
    case DS_CFG_INT:
        snprintf(buf, len, "an integer from %.0f to %.0f", k->min, k->max);
        return buf;
    case DS_CFG_DOUBLE:
        snprintf(buf, len, "a number from %g to %g", k->min, k->max);
        return buf;
    case DS_CFG_BOOL:
        return "true or false";
    case DS_CFG_DURATION:
        snprintf(buf, len,
                 "a duration from %.0f to %.0f seconds (seconds, or a number with s, m, h or d)",
                 k->min, k->max);
        return buf;
    case DS_CFG_CIDRS:
        return "a list of IPv4/IPv6 prefixes like \"198.51.100.0/24\" (no host bits set)";
    case DS_CFG_STRINGS:
        snprintf(buf, len, "a list of at most %u strings", k->max_items);
        return buf;
    }
    return "?";
}

static int fail(char *err, size_t errlen, const char *origin, const struct ds_cfg_key *k,
                const char *expected, const char *got)
{
    snprintf(err, errlen, "%s: key '%s': expected %s, got %s", origin, k->path, expected, got);
    return -EINVAL;
}

/* Sets a scalar or appends one list item from text. origin names the file or "command line". */
static int key_set_text(struct ds_config *cfg, const struct ds_cfg_key *k, const char *v,
                        bool quoted, const char *origin, char *err, size_t errlen)
{
    char exp[160], got[200];
    char *end;

    if (quoted)
        snprintf(got, sizeof(got), "\"%.*s\"", 160, v);
    else
        snprintf(got, sizeof(got), "%.*s", 160, v);
    switch (k->type) {
    case DS_CFG_OBJECT:
        return fail(err, errlen, origin, k, "an object", got);
    case DS_CFG_STRING: {
        const char *why = k->check ? k->check(v) : NULL;
        char *copy;
        if (why)
            return fail(err, errlen, origin, k, why, got);
        copy = strdup(v);
        if (!copy)
            return -ENOMEM;
        free(*FIELD(cfg, k, char *));
        *FIELD(cfg, k, char *) = copy;
        return 0;
    }
    case DS_CFG_INT: {
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || end == v || *end || n < k->min || n > k->max)
            return fail(err, errlen, origin, k, expected_text(k, exp, sizeof(exp)), got);
        *FIELD(cfg, k, int64_t) = n;
        return 0;
    }
    case DS_CFG_DOUBLE: {
        errno = 0;
        double d = strtod(v, &end);
        if (errno || end == v || *end || !(d >= k->min && d <= k->max))
            return fail(err, errlen, origin, k, expected_text(k, exp, sizeof(exp)), got);
        *FIELD(cfg, k, double) = d;
        if (strcmp(k->path, "sensor.location.latitude") == 0)
            cfg->sensor_location_set |= 1;
        else if (strcmp(k->path, "sensor.location.longitude") == 0)
            cfg->sensor_location_set |= 2;
        cfg->sensor_has_location = cfg->sensor_location_set == 3;
        return 0;
    }
    case DS_CFG_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0)
            *FIELD(cfg, k, bool) = true;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 || strcmp(v, "no") == 0)
            *FIELD(cfg, k, bool) = false;
        else
            return fail(err, errlen, origin, k, "true or false", got);
        return 0;
    case DS_CFG_DURATION: {
        int64_t secs;
        if (ds_duration_parse(v, &secs) < 0 || secs < k->min || secs > k->max)
            return fail(err, errlen, origin, k, expected_text(k, exp, sizeof(exp)), got);
        *FIELD(cfg, k, int64_t) = secs;
        return 0;
    }
    case DS_CFG_CIDRS: {
        struct ds_cidr c;
        if (ds_cidr_parse(v, &c) < 0)
            return fail(err, errlen, origin, k,
                        "an IPv4/IPv6 prefix like \"198.51.100.0/24\" (no host bits set)", got);
        if (ds_prefixset_add(FIELD(cfg, k, struct ds_prefixset), &c) < 0) {
            snprintf(exp, sizeof(exp), "at most %d prefixes", DS_PREFIXSET_MAX);
            return fail(err, errlen, origin, k, exp, "more");
        }
        return 0;
    }
    case DS_CFG_STRINGS: {
        unsigned *n = (unsigned *)((char *)cfg + k->count_offset);
        if (*n >= k->max_items)
            return fail(err, errlen, origin, k, expected_text(k, exp, sizeof(exp)), "more");
        if (!*v)
            return fail(err, errlen, origin, k, "a non-empty string", got);
        const char *why = k->check ? k->check(v) : NULL;
        if (why)
            return fail(err, errlen, origin, k, why, got);
        char *copy = strdup(v);
        if (!copy)
            return -ENOMEM;
        FIELD(cfg, k, char *)[(*n)++] = copy;
        return 0;
    }
    }
    return -EINVAL;
}

static void key_clear_list(struct ds_config *cfg, const struct ds_cfg_key *k)
{
    if (k->type == DS_CFG_CIDRS)
        ds_prefixset_init(FIELD(cfg, k, struct ds_prefixset));
    else if (k->type == DS_CFG_STRINGS)
        strings_clear(cfg, k);
}

void ds_config_init(struct ds_config *cfg)
{
    char err[256];

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < ds_cfg_nkeys; i++) {
        const struct ds_cfg_key *k = &ds_cfg_keys[i];
        if (k->def && key_set_text(cfg, k, k->def, true, "default", err, sizeof(err)) < 0)
            ds_log(DS_LOG_ERROR, "config", "bad built-in default: %s", err);
    }
}

void ds_config_fini(struct ds_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < ds_cfg_nkeys; i++) {
        const struct ds_cfg_key *k = &ds_cfg_keys[i];
        if (k->type == DS_CFG_STRING) {
            free(*FIELD(cfg, k, char *));
            *FIELD(cfg, k, char *) = NULL;
        } else if (k->type == DS_CFG_STRINGS) {
            strings_clear(cfg, k);
        }
    }
    free(cfg->source_file);
    cfg->source_file = NULL;
}

int ds_config_set(struct ds_config *cfg, const char *key, const char *value, unsigned flags,
                  char *err, size_t errlen)
{
    const struct ds_cfg_key *k = key_find(key);

    if (!k || k->type == DS_CFG_OBJECT) {
        snprintf(err, errlen, "command line: unknown key '%s'", key);
        return -EINVAL;
    }
    if (!(flags & DS_CONFIG_APPEND))
        key_clear_list(cfg, k);
    return key_set_text(cfg, k, value, true, "command line", err, errlen);
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "a list";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

/* Converts a scalar JSON value to the text key_set_text() takes, refusing the wrong JSON type. */
static int json_scalar_text(const struct ds_cfg_key *k, const json_t *v, char *buf, size_t len)
{
    switch (k->type) {
    case DS_CFG_STRING:
        if (!json_is_string(v))
            return -EINVAL;
        snprintf(buf, len, "%s", json_string_value(v));
        return strlen(json_string_value(v)) < len ? 0 : -EINVAL;
    case DS_CFG_INT:
        if (!json_is_integer(v))
            return -EINVAL;
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return 0;
    case DS_CFG_DOUBLE:
        if (!json_is_number(v))
            return -EINVAL;
        snprintf(buf, len, "%.17g", json_number_value(v));
        return 0;
    case DS_CFG_BOOL:
        if (!json_is_boolean(v))
            return -EINVAL;
        snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
        return 0;
    case DS_CFG_DURATION:
        if (json_is_integer(v))
            snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_string(v))
            snprintf(buf, len, "%s", json_string_value(v));
        else
            return -EINVAL;
        return 0;
    default:
        return -EINVAL;
    }
}

static int load_object(struct ds_config *cfg, json_t *obj, const char *prefix, const char *origin,
                       char *err, size_t errlen)
{
    const char *name;
    json_t *v;

    json_object_foreach(obj, name, v) {
        char path[256], exp[160], text[4096];
        const struct ds_cfg_key *k;
        int rc;

        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", name);
        /* a dotted name ("sensor.name" at the top level) is not how the file nests keys */
        k = strchr(name, '.') ? NULL : key_find(path);
        if (!k) {
            snprintf(err, errlen, "%s: unknown key '%s'", origin, path);
            return -EINVAL;
        }
        if (k->type == DS_CFG_OBJECT) {
            if (!json_is_object(v))
                return fail(err, errlen, origin, k, "an object", json_type_name(v));
            rc = load_object(cfg, v, path, origin, err, errlen);
            if (rc < 0)
                return rc;
            continue;
        }
        if (k->type == DS_CFG_CIDRS || k->type == DS_CFG_STRINGS) {
            size_t i;
            json_t *item;
            if (!json_is_array(v))
                return fail(err, errlen, origin, k, expected_text(k, exp, sizeof(exp)),
                            json_type_name(v));
            key_clear_list(cfg, k);
            json_array_foreach(v, i, item) {
                if (!json_is_string(item)) {
                    char where[300];
                    snprintf(where, sizeof(where), "%s in item %zu", json_type_name(item), i);
                    return fail(err, errlen, origin, k, expected_text(k, exp, sizeof(exp)), where);
                }
                rc = key_set_text(cfg, k, json_string_value(item), true, origin, err, errlen);
                if (rc < 0)
                    return rc;
            }
            continue;
        }
        if (json_scalar_text(k, v, text, sizeof(text)) < 0)
            return fail(err, errlen, origin, k, expected_text(k, exp, sizeof(exp)),
                        json_type_name(v));
        rc = key_set_text(cfg, k, text, json_is_string(v), origin, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Loads a parsed document over cfg (root NULL: jerr says why it did not parse); origin names it
 * in errors. Takes root. */
static int load_root(struct ds_config *cfg, json_t *root, const json_error_t *jerr,
                     const char *origin, char *err, size_t errlen)
{
    int rc;

    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", origin, jerr->line, jerr->column,
                 jerr->text);
        return -EINVAL;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: expected a JSON object at the top level, got %s", origin,
                 json_type_name(root));
        json_decref(root);
        return -EINVAL;
    }
    rc = load_object(cfg, root, "", origin, err, errlen);
    json_decref(root);
    return rc;
}

int ds_config_load(struct ds_config *cfg, const char *path, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root;
    struct stat st;
    FILE *f;
    int rc;

    /* opened here rather than by json_load_file() to return the real errno, and to refuse a
     * directory, which Jansson reads as an empty, "invalid JSON" file */
    f = fopen(path, "r");
    rc = !f ? -errno : fstat(fileno(f), &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? -EISDIR : 0;
    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
        if (f)
            fclose(f);
        return rc;
    }
    root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    fclose(f);
    rc = load_root(cfg, root, &jerr, path, err, errlen);
    if (rc == 0) {
        free(cfg->source_file);
        cfg->source_file = strdup(path);
    }
    return rc;
}

int ds_config_load_text(struct ds_config *cfg, const char *text, size_t len, const char *origin,
                        char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);

    return load_root(cfg, root, &jerr, origin, err, errlen);
}

static char *default_state_dir(void)
{
    char buf[PATH_MAX];
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");

    if (geteuid() == 0)
        return strdup("/var/lib/darkscope");
    if (xdg && *xdg)
        snprintf(buf, sizeof(buf), "%s/darkscope", xdg);
    else if (home && *home)
        snprintf(buf, sizeof(buf), "%s/.local/state/darkscope", home);
    else {
        struct passwd *pw = getpwuid(geteuid());
        snprintf(buf, sizeof(buf), "%s/.local/state/darkscope", pw ? pw->pw_dir : "/tmp");
    }
    return strdup(buf);
}

static char *default_sensor_name(void)
{
    char host[256] = "sensor";
    size_t j = 0;

    if (gethostname(host, sizeof(host) - 1) < 0)
        strcpy(host, "sensor");
    host[sizeof(host) - 1] = '\0';
    /* keep what a sensor name allows */
    for (size_t i = 0; host[i] && j < 64; i++) {
        char c = host[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '_' || c == '-')
            host[j++] = c;
    }
    host[j] = '\0';
    return strdup(j ? host : "sensor");
}

int ds_config_finish(struct ds_config *cfg, char *err, size_t errlen)
{
    const char *origin = cfg->source_file ? cfg->source_file : "configuration";

    if (!cfg->state_dir || !*cfg->state_dir) {
        free(cfg->state_dir);
        cfg->state_dir = default_state_dir();
    }
    if (!cfg->sensor_name || !*cfg->sensor_name) {
        free(cfg->sensor_name);
        cfg->sensor_name = default_sensor_name();
    }
    if (!cfg->state_dir || !cfg->sensor_name)
        return -ENOMEM;
    if (cfg->sensor_location_set && cfg->sensor_location_set != 3) {
        snprintf(err, errlen,
                 "%s: key 'sensor.location': expected both latitude and longitude, got only %s",
                 origin, cfg->sensor_location_set == 1 ? "latitude" : "longitude");
        return -EINVAL;
    }
    if (3600 % cfg->bucket_seconds != 0) {
        snprintf(err, errlen, "%s: key 'bucket_seconds': expected a divisor of 3600, got %lld",
                 origin, (long long)cfg->bucket_seconds);
        return -EINVAL;
    }
    if (cfg->retention < cfg->bucket_seconds) {
        snprintf(err, errlen,
                 "%s: key 'retention': expected at least bucket_seconds (%lld), got %lld", origin,
                 (long long)cfg->bucket_seconds, (long long)cfg->retention);
        return -EINVAL;
    }
    if (strcmp(cfg->speed, "max") == 0) {
        cfg->speed_mode = DS_SPEED_MAX;
        cfg->speed_factor = 0;
    } else if (strcmp(cfg->speed, "realtime") == 0) {
        cfg->speed_mode = DS_SPEED_REALTIME;
        cfg->speed_factor = 1;
    } else {
        cfg->speed_mode = DS_SPEED_FACTOR;
        cfg->speed_factor = strtod(cfg->speed + 1, NULL);
    }
    cfg->finished = true;
    return 0;
}

/* A URL with its password replaced, so a dump can be pasted into a ticket. */
static json_t *masked_url(const char *url)
{
    const char *scheme = strstr(url, "://"), *at = strrchr(url, '@');
    char buf[1024];

    if (!scheme || !at || at < scheme)
        return json_string(url);
    snprintf(buf, sizeof(buf), "%.*s:***%s", (int)(scheme + 3 - url), url, at);
    return json_string(buf);
}

static json_t *key_to_json(const struct ds_config *cfg, const struct ds_cfg_key *k)
{
    switch (k->type) {
    case DS_CFG_STRING: {
        const char *s = *FIELD(cfg, k, char *const);
        if (s && strcmp(k->path, "redis.url") == 0)
            return masked_url(s);
        return json_string(s ? s : "");
    }
    case DS_CFG_INT:
    case DS_CFG_DURATION:
        return json_integer(*FIELD(cfg, k, const int64_t));
    case DS_CFG_DOUBLE:
        return json_real(*FIELD(cfg, k, const double));
    case DS_CFG_BOOL:
        return json_boolean(*FIELD(cfg, k, const bool));
    case DS_CFG_CIDRS: {
        const struct ds_prefixset *s = FIELD(cfg, k, const struct ds_prefixset);
        json_t *a = json_array();
        for (unsigned i = 0; i < s->n; i++) {
            char buf[DS_CIDR_STRLEN];
            json_array_append_new(a, json_string(ds_cidr_format(&s->p[i], buf, sizeof(buf))));
        }
        return a;
    }
    case DS_CFG_STRINGS: {
        char *const *items = FIELD(cfg, k, char *const);
        unsigned n = *(const unsigned *)((const char *)cfg + k->count_offset);
        json_t *a = json_array();
        for (unsigned i = 0; i < n; i++)
            json_array_append_new(a, json_string(items[i]));
        return a;
    }
    case DS_CFG_OBJECT:
        break;
    }
    return json_null();
}

void ds_config_dump(const struct ds_config *cfg, FILE *out)
{
    json_t *root = json_object();

    for (size_t i = 0; i < ds_cfg_nkeys; i++) {
        const struct ds_cfg_key *k = &ds_cfg_keys[i];
        char path[256], *dot, *part = path;
        json_t *node = root;

        if (k->type == DS_CFG_OBJECT)
            continue;
        if (k->type == DS_CFG_DOUBLE && strncmp(k->path, "sensor.location.", 16) == 0 &&
            !cfg->sensor_has_location)
            continue;
        snprintf(path, sizeof(path), "%s", k->path);
        while ((dot = strchr(part, '.'))) {
            json_t *child;
            *dot = '\0';
            child = json_object_get(node, part);
            if (!child) {
                child = json_object();
                json_object_set_new(node, part, child);
            }
            node = child;
            part = dot + 1;
        }
        json_object_set_new(node, part, key_to_json(cfg, k));
    }
    json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', out);
    json_decref(root);
}

static const char *type_doc(enum ds_cfg_type t)
{
    static const char *const names[] = {"object",  "string",   "integer",     "number",
                                        "boolean", "duration", "prefix list", "string list"};
    return names[t];
}

void ds_config_doc(FILE *out)
{
    fprintf(out, "# Configuration reference\n\n"
                 "<!-- Generated by `darkscope config-doc`; a test fails when this file and the "
                 "table in core/config_table.c differ. -->\n\n"
                 "darkscope reads one JSON file (`--config FILE`; `darkscope check-config FILE` "
                 "validates it). An unknown key, a value of the wrong type, out of range, or a bad "
                 "prefix is refused with one line naming the file, the key and what was expected, "
                 "and exit status 2. Command-line flags override the file: `--redis URL` "
                 "(`redis.url`), `--darknet CIDR` (`darknet`, repeatable), `--read FILE` "
                 "(`sources.files`), `--interface IF` (`sources.interfaces`), `--sensor NAME` "
                 "(`sensor.name`), `--speed S` (`sources.speed`), and `--set KEY=VALUE` for any "
                 "key. `--dump-config` prints the effective configuration.\n\n"
                 "Durations are seconds, or a number with `s`, `m`, `h` or `d` (`\"90d\"`).\n\n"
                 "| key | type | default | range | meaning |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < ds_cfg_nkeys; i++) {
        const struct ds_cfg_key *k = &ds_cfg_keys[i];
        char range[64] = "";

        if (k->type == DS_CFG_OBJECT)
            continue;
        if (k->type == DS_CFG_INT || k->type == DS_CFG_DURATION)
            snprintf(range, sizeof(range), "%.0f – %.0f", k->min, k->max);
        else if (k->type == DS_CFG_DOUBLE)
            snprintf(range, sizeof(range), "%g – %g", k->min, k->max);
        else if (k->type == DS_CFG_STRINGS)
            snprintf(range, sizeof(range), "≤ %u items", k->max_items);
        fprintf(out, "| `%s` | %s | %s%s%s | %s | %s |\n", k->path, type_doc(k->type),
                k->def && *k->def ? "`" : "", k->def ? (*k->def ? k->def : "\"\"") : "—",
                k->def && *k->def ? "`" : "", range, k->help);
    }
}
