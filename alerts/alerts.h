/*
 * alerts — `darkscope notify`: turns the aggregator's alert stream into one email per
 * organisation per digest window (docs/notify.md), delivered at least once through libcurl's
 * SMTP with retries and a dead-letter stream.
 *
 * Pure parts: templates (template.c) and messages (message.c); I/O: SMTP (smtp.c) and the
 * role's loop (notify.c). Prefix alert_.
 */
#ifndef ALERT_ALERTS_H
#define ALERT_ALERTS_H

#include "core/core.h"

#include <jansson.h>

/* ---------------------------------------------------------------- templates (template.c) */

/* Renders a template (a Mustache subset: {{x}}, {{a.b}}, {{#list}}…{{/list}}, {{^x}}…{{/x}})
 * with data, appending to out. Returns 0, or -EINVAL with err naming the template line. */
DS_WARN_UNUSED int alert_template_render(const char *tpl, json_t *data, struct ds_buf *out,
                                         char *err, size_t errlen);

/* ---------------------------------------------------------------- messages (message.c) */

struct alert_templates {
    char *lang[2]; /* [0] en, [1] ja: "Subject: …" first line, then the body */
};
/* Loads en.txt and ja.txt from dir. Returns 0 or -errno with err naming the file. */
int alert_templates_load(struct alert_templates *t, const char *dir, char *err, size_t errlen);
void alert_templates_free(struct alert_templates *t);

struct alert_mail {
    char *from;
    char **to;
    unsigned n_to;
    char *subject; /* UTF-8 */
    char *body;    /* UTF-8 text */
    char *csv;     /* the attachment */
    char *csv_name;
    char message_id[96]; /* "<hex@darkscope>" */
    char date[64];       /* RFC 5322 */
};
void alert_mail_free(struct alert_mail *m);

/* The digest for one organisation: org {"id","name","lang","timezone","contacts":[emails]},
 * alerts as the aggregator wrote them, now for the Date header. The Message-ID is derived from
 * the organisation and the alerts' ids only, so sending the same batch again gives the same
 * Message-ID. Pure (time zone conversion uses the tz database). */
int alert_mail_build(const struct alert_templates *t, const json_t *org, const json_t *alerts,
                     const char *from, ds_time_ns now, struct alert_mail *out, char *err,
                     size_t errlen);

/* The CSV attachment alone (header row + one row per alert). */
char *alert_csv(const json_t *alerts, const char *tz);

/* ---------------------------------------------------------------- SMTP (smtp.c) */

struct alert_smtp {
    const char *url, *tls, *user, *password;
    const char *ca_file; /* NULL or "": the system's CAs */
    long timeout_s;
};
/* Sends one message; returns 0 once the server answered the data with 250, or -EIO with err
 * (never holding the password). */
int alert_smtp_send(const struct alert_smtp *s, const struct alert_mail *m, char *err,
                    size_t errlen);

/* ---------------------------------------------------------------- webhooks (webhook.c) */

/* Hex HMAC-SHA256 of body under secret. */
void alert_hmac_hex(const char *secret, size_t secret_len, const char *body, size_t len,
                    char out[65]);
/* POSTs body (JSON) signed in X-Darkscope-Signature; 0 on any 2xx, -EIO otherwise. */
int alert_webhook_send(const char *url, const char *secret, const char *body, const char *delivery,
                       long timeout_s, char *err, size_t errlen);

/* ---------------------------------------------------------------- the role (notify.c) */

/* Runs `darkscope notify` until SIGINT/SIGTERM (once: until nothing is left to send or wait
 * for). Returns an exit status. */
int alert_notify_run(const struct ds_config *cfg, bool once);
/* `--dead-letters`: prints the dead-letter stream as JSON. `--retry ID`: moves a dead letter
 * back to the outbox. Return exit statuses. */
int alert_notify_dead_letters(const struct ds_config *cfg);
int alert_notify_retry(const struct ds_config *cfg, const char *id);

#endif
