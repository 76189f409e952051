/* One organisation's digest: template data from its alerts (times in its time zone), subject
 * and body from the template of its language, a CSV attachment with Shadowserver's event column
 * names where they apply, and a Message-ID that depends only on what the message reports. */
#include "alerts/alerts.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAIL_MAX (4u << 20)

static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long n;

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = n >= 0 && n < 1 << 20 ? malloc((size_t)n + 1) : NULL;
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        snprintf(err, errlen, "%s: cannot read (at most 1 MiB)", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

int alert_templates_load(struct alert_templates *t, const char *dir, char *err, size_t errlen)
{
    static const char *const names[2] = {"en.txt", "ja.txt"};

    memset(t, 0, sizeof(*t));
    for (int i = 0; i < 2; i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        t->lang[i] = read_file(path, err, errlen);
        if (!t->lang[i]) {
            alert_templates_free(t);
            return -ENOENT;
        }
        if (strncmp(t->lang[i], "Subject: ", 9) != 0 || !strchr(t->lang[i], '\n')) {
            snprintf(err, errlen, "%s: line 1: expected \"Subject: …\"", path);
            alert_templates_free(t);
            return -EINVAL;
        }
    }
    return 0;
}

void alert_templates_free(struct alert_templates *t)
{
    for (int i = 0; i < 2; i++) {
        free(t->lang[i]);
        t->lang[i] = NULL;
    }
}

void alert_mail_free(struct alert_mail *m)
{
    free(m->from);
    for (unsigned i = 0; i < m->n_to; i++)
        free(m->to[i]);
    free(m->to);
    free(m->subject);
    free(m->body);
    free(m->csv);
    free(m->csv_name);
    memset(m, 0, sizeof(*m));
}

/* "2026-11-25 21:08 JST" in the zone tz (an IANA name), from RFC 3339 text. */
static void local_time(const char *rfc3339, const char *tz, char *out, size_t len)
{
    ds_time_ns t;
    struct tm tm;
    char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    time_t secs;

    if (!rfc3339 || ds_time_parse(rfc3339, &t) < 0) {
        snprintf(out, len, "-");
        free(old);
        return;
    }
    secs = (time_t)(t / DS_NS_PER_SEC);
    setenv("TZ", tz, 1);
    tzset();
    localtime_r(&secs, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M:%S %Z", &tm);
    if (old)
        setenv("TZ", old, 1);
    else
        unsetenv("TZ");
    tzset();
    free(old);
}

static const char *const kind_labels[2][4] = {
    {"Infected host", "Internal spread", "DDoS victim", "Early warning"},
    {"感染の疑いのあるホスト", "組織内での感染拡大", "DDoS 攻撃の被害", "早期警戒"},
};
static const char *const kinds[4] = {"infected", "internal", "ddos_victim", "early_warning"};

static int kind_index(const char *k)
{
    for (int i = 0; i < 4; i++) {
        if (k && strcmp(k, kinds[i]) == 0)
            return i;
    }
    return 0;
}

static void ports_text(const json_t *ports, struct ds_buf *b)
{
    const char *k;
    json_t *v;
    int n = 0;

    json_object_foreach((json_t *)ports, k, v) {
        if (n++ == 6) {
            ds_buf_adds(b, ", …");
            break;
        }
        ds_buf_addf(b, "%s%s (%lld)", n > 1 ? ", " : "", k, (long long)json_integer_value(v));
    }
    if (!n)
        ds_buf_adds(b, "-");
}

/* The busiest port of an alert: "23" and its protocol, or "" when none. */
static void busiest_port(const json_t *ports, char *proto, size_t plen, char *port, size_t len)
{
    const char *k, *best = NULL;
    json_t *v;
    json_int_t max = -1;

    json_object_foreach((json_t *)ports, k, v) {
        if (json_integer_value(v) > max) {
            max = json_integer_value(v);
            best = k;
        }
    }
    proto[0] = port[0] = '\0';
    if (best) {
        const char *slash = strchr(best, '/');
        snprintf(proto, plen, "%.*s", slash ? (int)(slash - best) : 0, best);
        snprintf(port, len, "%s", slash ? slash + 1 : "");
    }
}

static void csv_field(struct ds_buf *b, const char *s, bool last)
{
    bool quote = s && strpbrk(s, ",\"\n\r");

    if (quote) {
        ds_buf_addc(b, '"');
        for (const char *p = s; *p; p++) {
            if (*p == '"')
                ds_buf_addc(b, '"');
            ds_buf_addc(b, *p);
        }
        ds_buf_addc(b, '"');
    } else if (s) {
        ds_buf_adds(b, s);
    }
    ds_buf_addc(b, last ? '\n' : ',');
}

char *alert_csv(const json_t *alerts, const char *tz)
{
    struct ds_buf b;
    size_t i;
    json_t *a;
    char *out;

    (void)tz; /* the CSV is in UTC, as Shadowserver's reports are */
    ds_buf_init(&b, MAIL_MAX);
    ds_buf_adds(&b, "timestamp,protocol,src_ip,src_port,src_asn,src_geo,dst_port,infection,"
                    "family,tag,count,first_seen,last_seen,darknet_addresses,severity,alert_id\n");
    json_array_foreach((json_t *)alerts, i, a) {
        char proto[8], port[8], num[32], ts[40] = "";
        const char *last = json_string_value(json_object_get(a, "last_seen"));
        ds_time_ns t;
        if (last && ds_time_parse(last, &t) == 0) {
            time_t s = (time_t)(t / DS_NS_PER_SEC);
            struct tm tm;
            gmtime_r(&s, &tm);
            strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%SZ", &tm);
        }
        busiest_port(json_object_get(a, "ports"), proto, sizeof(proto), port, sizeof(port));
        csv_field(&b, ts, false);
        csv_field(&b, proto, false);
        csv_field(&b, json_string_value(json_object_get(a, "host")), false);
        csv_field(&b, "", false);
        snprintf(num, sizeof(num), "%lld",
                 (long long)json_integer_value(json_object_get(a, "asn")));
        csv_field(&b, json_integer_value(json_object_get(a, "asn")) ? num : "", false);
        csv_field(&b, json_string_value(json_object_get(a, "cc")), false);
        csv_field(&b, port, false);
        csv_field(&b, json_string_value(json_object_get(a, "kind")), false);
        csv_field(&b, json_string_value(json_object_get(a, "tool")), false);
        csv_field(&b, "darknet", false);
        snprintf(num, sizeof(num), "%lld",
                 (long long)json_integer_value(json_object_get(a, "packets")));
        csv_field(&b, num, false);
        csv_field(&b, json_string_value(json_object_get(a, "first_seen")), false);
        csv_field(&b, last, false);
        snprintf(num, sizeof(num), "%lld",
                 (long long)json_integer_value(json_object_get(a, "darknet_addresses")));
        csv_field(&b, num, false);
        csv_field(&b, json_string_value(json_object_get(a, "severity")), false);
        csv_field(&b, json_string_value(json_object_get(a, "id")), true);
    }
    out = ds_buf_failed(&b) ? NULL : strdup(b.p ? b.p : "");
    ds_buf_fini(&b);
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void message_id(const char *org, const json_t *alerts, char *out, size_t len)
{
    size_t n = json_array_size(alerts), i;
    const char **ids = calloc(n + 1, sizeof(*ids));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char h[32];
    unsigned hl = 0;
    json_t *a;

    json_array_foreach((json_t *)alerts, i, a)
        ids[i] = json_string_value(json_object_get(a, "id")) ?: "";
    if (n > 1)
        qsort(ids, n, sizeof(*ids), cmp_str);
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, org, strlen(org));
    for (i = 0; i < n; i++) {
        EVP_DigestUpdate(md, "\n", 1);
        EVP_DigestUpdate(md, ids[i], strlen(ids[i]));
    }
    EVP_DigestFinal_ex(md, h, &hl);
    EVP_MD_CTX_free(md);
    free(ids);
    char hex[65];
    for (unsigned k = 0; k < 16; k++)
        snprintf(hex + 2 * k, 3, "%02x", h[k]);
    snprintf(out, len, "<%s.%s@darkscope>", hex, org);
}

int alert_mail_build(const struct alert_templates *t, const json_t *org, const json_t *alerts,
                     const char *from, ds_time_ns now, struct alert_mail *out, char *err,
                     size_t errlen)
{
    const char *lang = json_string_value(json_object_get(org, "lang"));
    int li = lang && strcmp(lang, "ja") == 0 ? 1 : 0;
    const char *tz = json_string_value(json_object_get(org, "timezone"));
    const char *org_id = json_string_value(json_object_get(org, "id")) ?: "?";
    json_t *data = json_object(), *list = json_array(), *contacts, *a;
    unsigned counts[4] = {0};
    const char *first = NULL, *last = NULL;
    struct ds_buf sb, bb;
    size_t i;
    int rc = -EINVAL;
    char buf[96];

    memset(out, 0, sizeof(*out));
    if (!tz)
        tz = li ? "Asia/Tokyo" : "UTC";
    json_array_foreach((json_t *)alerts, i, a) {
        int k = kind_index(json_string_value(json_object_get(a, "kind")));
        const char *f = json_string_value(json_object_get(a, "first_seen"));
        const char *l = json_string_value(json_object_get(a, "last_seen"));
        struct ds_buf pb;
        json_t *item = json_object();
        counts[k]++;
        if (f && (!first || strcmp(f, first) < 0))
            first = f;
        if (l && (!last || strcmp(l, last) > 0))
            last = l;
        json_object_set_new(item, "kind", json_string(kinds[k]));
        json_object_set_new(item, "kind_label", json_string(kind_labels[li][k]));
        json_object_set_new(item,
                            "is_"
                            "infected",
                            json_boolean(k == 0));
        json_object_set_new(item, "is_internal", json_boolean(k == 1));
        json_object_set_new(item, "is_ddos", json_boolean(k == 2));
        json_object_set(item, "host", json_object_get(a, "host"));
        local_time(f, tz, buf, sizeof(buf));
        json_object_set_new(item, "first_seen", json_string(buf));
        local_time(l, tz, buf, sizeof(buf));
        json_object_set_new(item, "last_seen", json_string(buf));
        json_object_set(item, "packets", json_object_get(a, "packets"));
        json_object_set(item, "darknet_addresses", json_object_get(a, "darknet_addresses"));
        ds_buf_init(&pb, 4096);
        ports_text(json_object_get(a, "ports"), &pb);
        json_object_set_new(item, "ports", json_string(pb.p ? pb.p : "-"));
        ds_buf_fini(&pb);
        json_object_set_new(item, "tool",
                            json_string(json_string_value(json_object_get(a, "tool")) ?: "-"));
        json_object_set(item, "severity", json_object_get(a, "severity"));
        json_t *attack = json_object_get(a, "attack");
        if (attack) {
            snprintf(buf, sizeof(buf), "%.0f",
                     json_number_value(json_object_get(attack, "estimated_response_pps")));
            json_object_set_new(item, "attack_pps", json_string(buf));
        }
        json_array_append_new(list, item);
    }
    /* "2 infected hosts, 1 DDoS victim" */
    {
        struct ds_buf s;
        static const char *const en[4][2] = {{"infected host", "infected hosts"},
                                             {"internal spread", "internal spreads"},
                                             {"DDoS victim", "DDoS victims"},
                                             {"early warning", "early warnings"}};
        static const char *const ja[4] = {"感染の疑い", "組織内感染拡大", "DDoS 被害", "早期警戒"};
        ds_buf_init(&s, 1024);
        for (int k = 0; k < 4; k++) {
            if (!counts[k])
                continue;
            if (s.len)
                ds_buf_adds(&s, li ? "、" : ", ");
            if (li)
                ds_buf_addf(&s, "%s %u 件", ja[k], counts[k]);
            else
                ds_buf_addf(&s, "%u %s", counts[k], en[k][counts[k] != 1]);
        }
        json_object_set_new(data, "summary", json_string(s.p ? s.p : ""));
        ds_buf_fini(&s);
    }
    json_object_set_new(data, "org_id", json_string(org_id));
    json_object_set(data, "org_name", json_object_get(org, "name"));
    json_object_set_new(data, "count", json_integer((json_int_t)json_array_size(alerts)));
    json_object_set_new(data, "timezone", json_string(tz));
    local_time(first, tz, buf, sizeof(buf));
    json_object_set_new(data, "period_from", json_string(buf));
    local_time(last, tz, buf, sizeof(buf));
    json_object_set_new(data, "period_to", json_string(buf));
    json_object_set_new(data, "alerts", list);
    {
        time_t s = (time_t)(now / DS_NS_PER_SEC);
        struct tm tm;
        gmtime_r(&s, &tm);
        strftime(out->date, sizeof(out->date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
        strftime(buf, sizeof(buf), "%Y%m%d-%H%M", &tm);
        char name[160];
        snprintf(name, sizeof(name), "darkscope-%s-%s.csv", org_id, buf);
        out->csv_name = strdup(name);
        json_object_set_new(data, "csv_name", json_string(name));
    }
    /* subject (the template's first line) and body */
    const char *tpl = t->lang[li], *nl = strchr(tpl, '\n');
    char *subject_tpl = strndup(tpl + 9, (size_t)(nl - tpl - 9));
    ds_buf_init(&sb, 4096);
    ds_buf_init(&bb, MAIL_MAX);
    if (alert_template_render(subject_tpl, data, &sb, err, errlen) < 0 ||
        alert_template_render(nl + 1, data, &bb, err, errlen) < 0)
        goto out;
    out->subject = strdup(sb.p ? sb.p : "");
    out->body = strdup(bb.p ? bb.p : "");
    out->csv = alert_csv(alerts, tz);
    out->from = strdup(from);
    contacts = json_object_get(org, "contacts");
    out->to = calloc(json_array_size(contacts) + 1, sizeof(*out->to));
    json_array_foreach(contacts, i, a)
        out->to[out->n_to++] = strdup(json_string_value(a) ?: "");
    message_id(org_id, alerts, out->message_id, sizeof(out->message_id));
    rc = out->subject && out->body && out->csv && out->from ? 0 : -ENOMEM;
out:
    free(subject_tpl);
    ds_buf_fini(&sb);
    ds_buf_fini(&bb);
    json_decref(data);
    if (rc < 0)
        alert_mail_free(out);
    return rc;
}
