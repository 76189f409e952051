/* Message templates: a small subset of Mustache, rendered without I/O. {{name}} inserts a value
 * (strings as they are, numbers in decimal, true as "yes"); {{a.b}} looks into objects;
 * {{#name}}…{{/name}} repeats for each element of a list, renders once for any other true
 * value (with it as the context when it is an object) and not at all for false, null, empty or
 * missing; {{^name}}…{{/name}} renders only for those. Names are looked up in the innermost
 * context first, then outwards. Anything else between braces is an error, as are unclosed
 * sections, and nesting deeper than 8. */
#include "alerts/alerts.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define DEPTH_MAX 8
#define NAME_MAX_ 64

struct render {
    const char *tpl;
    struct ds_buf *out;
    json_t *ctx[DEPTH_MAX + 1];
    unsigned depth;
    char *err;
    size_t errlen;
};

static int fail(struct render *r, const char *at, const char *what)
{
    unsigned line = 1;
    for (const char *p = r->tpl; p < at; p++)
        line += *p == '\n';
    snprintf(r->err, r->errlen, "line %u: %s", line, what);
    return -EINVAL;
}

static json_t *lookup(struct render *r, const char *name)
{
    for (unsigned d = r->depth + 1; d-- > 0;) {
        json_t *v = r->ctx[d];
        char part[NAME_MAX_ + 1];
        const char *p = name;
        while (v && *p) {
            size_t n = strcspn(p, ".");
            snprintf(part, sizeof(part), "%.*s", (int)n, p);
            v = json_is_object(v) ? json_object_get(v, part) : NULL;
            p += n + (p[n] == '.');
        }
        if (v)
            return v;
    }
    return NULL;
}

static bool truthy(const json_t *v)
{
    if (!v || json_is_null(v) || json_is_false(v))
        return false;
    if (json_is_array(v))
        return json_array_size(v) > 0;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    if (json_is_integer(v))
        return json_integer_value(v) != 0;
    return true;
}

static void put_value(struct render *r, const json_t *v)
{
    if (json_is_string(v))
        ds_buf_add(r->out, json_string_value(v), json_string_length(v));
    else if (json_is_integer(v))
        ds_buf_add_i64(r->out, json_integer_value(v));
    else if (json_is_real(v))
        ds_buf_addf(r->out, "%.2f", json_real_value(v));
    else if (json_is_true(v))
        ds_buf_adds(r->out, "yes");
    else if (json_is_false(v))
        ds_buf_adds(r->out, "no");
}

/* Reads "{{" at p: sets *kind ('#', '^', '/' or 0), the name, and *next after "}}". */
static int tag(struct render *r, const char *p, char *kind, char *name, const char **next)
{
    const char *q = p + 2, *end = strstr(q, "}}");
    size_t n;

    if (!end)
        return fail(r, p, "'{{' without '}}'");
    *kind = (*q == '#' || *q == '^' || *q == '/') ? *q++ : 0;
    while (q < end && *q == ' ')
        q++;
    n = (size_t)(end - q);
    while (n && q[n - 1] == ' ')
        n--;
    if (n == 0 || n > NAME_MAX_)
        return fail(r, p, "empty or too long name between braces");
    for (size_t i = 0; i < n; i++) {
        char c = q[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.'))
            return fail(r, p, "a name may hold only letters, digits, '_' and '.'");
    }
    memcpy(name, q, n);
    name[n] = '\0';
    *next = end + 2;
    return 0;
}

/* Renders from p until the closing tag of `section` (NULL: the end); *end gets where the text
 * after the closing tag starts. emit false: only walks (a skipped section). */
static int run(struct render *r, const char *p, const char *section, bool emit, const char **end)
{
    while (*p) {
        const char *open = strstr(p, "{{");
        char kind, name[NAME_MAX_ + 1];
        const char *next;
        if (!open) {
            if (emit)
                ds_buf_adds(r->out, p);
            p += strlen(p);
            break;
        }
        if (emit)
            ds_buf_add(r->out, p, (size_t)(open - p));
        if (tag(r, open, &kind, name, &next) < 0)
            return -EINVAL;
        if (kind == '/') {
            if (!section || strcmp(section, name) != 0)
                return fail(r, open, "a closing tag that closes no open section");
            *end = next;
            return 0;
        }
        if (kind == 0) {
            if (emit)
                put_value(r, lookup(r, name));
            p = next;
            continue;
        }
        /* a section */
        json_t *v = emit ? lookup(r, name) : NULL;
        const char *after = NULL;
        if (r->depth == DEPTH_MAX)
            return fail(r, open, "sections nested deeper than 8");
        bool show = emit && (kind == '#' ? truthy(v) : !truthy(v));
        if (show && kind == '#' && json_is_array(v)) {
            size_t i;
            json_t *item;
            json_array_foreach(v, i, item) {
                r->ctx[++r->depth] = item;
                int rc = run(r, next, name, true, &after);
                r->depth--;
                if (rc < 0)
                    return rc;
            }
        } else {
            json_t *inner = show && json_is_object(v) ? v : r->ctx[r->depth];
            r->ctx[++r->depth] = inner;
            int rc = run(r, next, name, show, &after);
            r->depth--;
            if (rc < 0)
                return rc;
        }
        if (!after) {
            /* an empty list renders nothing but must still be closed */
            json_t *inner = r->ctx[r->depth];
            r->ctx[++r->depth] = inner;
            int rc = run(r, next, name, false, &after);
            r->depth--;
            if (rc < 0)
                return rc;
        }
        p = after;
    }
    if (section)
        return fail(r, p, "a section that is never closed");
    *end = p;
    return 0;
}

int alert_template_render(const char *tpl, json_t *data, struct ds_buf *out, char *err,
                          size_t errlen)
{
    struct render r = {.tpl = tpl, .out = out, .err = err, .errlen = errlen};
    const char *end;

    r.ctx[0] = data;
    if (run(&r, tpl, NULL, true, &end) < 0)
        return -EINVAL;
    if (ds_buf_failed(out)) {
        snprintf(err, errlen, "the message is longer than %zu bytes", out->max);
        return -ENOSPC;
    }
    return 0;
}
