/* Delivery through libcurl's SMTP: STARTTLS as configured, authentication, time-outs, a MIME
 * message (UTF-8 text, the CSV as an attachment) with RFC 2047 subject. Success means the
 * server accepted the data with 250 (curl_easy_perform returned CURLE_OK). */
#include "alerts/alerts.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* "=?UTF-8?B?…?=" words of at most 45 input bytes each, split on character boundaries. */
static void encode_subject(const char *s, struct ds_buf *b)
{
    bool ascii = true;

    for (const char *p = s; *p; p++)
        ascii = ascii && (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f;
    ds_buf_adds(b, "Subject: ");
    if (ascii) {
        ds_buf_adds(b, s);
        return;
    }
    size_t n = strlen(s), i = 0;
    while (i < n) {
        size_t take = n - i > 45 ? 45 : n - i;
        while (i + take < n && ((unsigned char)s[i + take] & 0xc0) == 0x80)
            take--; /* never split a UTF-8 sequence */
        unsigned char enc[80];
        int el = EVP_EncodeBlock(enc, (const unsigned char *)s + i, (int)take);
        ds_buf_addf(b, "%s=?UTF-8?B?%.*s?=", i ? "\r\n " : "", el, enc);
        i += take;
    }
}

static void angle(struct ds_buf *b, const char *addr)
{
    ds_buf_addc(b, '<');
    ds_buf_adds(b, addr);
    ds_buf_addc(b, '>');
}

int alert_smtp_send(const struct alert_smtp *s, const struct alert_mail *m, char *err,
                    size_t errlen)
{
    CURL *c = curl_easy_init();
    struct curl_slist *rcpt = NULL, *hdr = NULL;
    curl_mime *mime = NULL;
    curl_mimepart *part;
    struct ds_buf b;
    char errbuf[CURL_ERROR_SIZE] = "";
    CURLcode rc;
    long code = 0;
    int ret = 0;

    if (!c) {
        snprintf(err, errlen, "smtp: out of memory");
        return -ENOMEM;
    }
    ds_buf_init(&b, 64 * 1024);
    angle(&b, m->from);
    curl_easy_setopt(c, CURLOPT_URL, s->url);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, b.p);
    for (unsigned i = 0; i < m->n_to; i++) {
        ds_buf_reset(&b);
        angle(&b, m->to[i]);
        rcpt = curl_slist_append(rcpt, b.p);
    }
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    /* headers */
    ds_buf_reset(&b);
    ds_buf_addf(&b, "Date: %s", m->date);
    hdr = curl_slist_append(hdr, b.p);
    ds_buf_reset(&b);
    ds_buf_addf(&b, "From: darkscope <%s>", m->from);
    hdr = curl_slist_append(hdr, b.p);
    ds_buf_reset(&b);
    ds_buf_adds(&b, "To: ");
    for (unsigned i = 0; i < m->n_to; i++) {
        if (i)
            ds_buf_adds(&b, ", ");
        ds_buf_adds(&b, m->to[i]);
    }
    hdr = curl_slist_append(hdr, b.p);
    ds_buf_reset(&b);
    encode_subject(m->subject, &b);
    hdr = curl_slist_append(hdr, b.p);
    ds_buf_reset(&b);
    ds_buf_addf(&b, "Message-ID: %s", m->message_id);
    hdr = curl_slist_append(hdr, b.p);
    hdr = curl_slist_append(hdr, "Auto-Submitted: auto-generated");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    /* body and attachment */
    mime = curl_mime_init(c);
    part = curl_mime_addpart(mime);
    curl_mime_data(part, m->body, CURL_ZERO_TERMINATED);
    curl_mime_type(part, "text/plain; charset=UTF-8");
    curl_mime_encoder(part, "quoted-printable");
    part = curl_mime_addpart(mime);
    curl_mime_data(part, m->csv, CURL_ZERO_TERMINATED);
    curl_mime_type(part, "text/csv; charset=UTF-8");
    curl_mime_filename(part, m->csv_name);
    curl_mime_encoder(part, "base64");
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    /* transport: with a user, `try` is `require`, so a stripped STARTTLS cannot make libcurl
     * send the password in clear */
    bool creds = s->user && s->user[0];
    curl_easy_setopt(c, CURLOPT_USE_SSL,
                     strcmp(s->tls, "require") == 0 || (creds && strcmp(s->tls, "try") == 0)
                         ? (long)CURLUSESSL_ALL
                     : strcmp(s->tls, "off") == 0 ? (long)CURLUSESSL_NONE
                                                  : (long)CURLUSESSL_TRY);
    if (s->ca_file && s->ca_file[0])
        curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
    if (creds) {
        curl_easy_setopt(c, CURLOPT_USERNAME, s->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, s->password ? s->password : "");
    }
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, s->timeout_s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, s->timeout_s);
    /* also bounds the QUIT libcurl sends when it closes the connection (120 s by default) */
    curl_easy_setopt(c, CURLOPT_SERVER_RESPONSE_TIMEOUT, s->timeout_s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        /* libcurl's messages name the server and the step, never the password */
        snprintf(err, errlen, "smtp %s: %s%s%s (server code %ld)", s->url, curl_easy_strerror(rc),
                 errbuf[0] ? ": " : "", errbuf, code);
        ret = -EIO;
        /* A failed attempt is retried, so the server must not accept this one later: without
         * this, libcurl keeps the connection and on cleanup sends QUIT behind a DATA the server
         * is still answering, and a 250 arriving meanwhile would make the retry a duplicate. */
        curl_socket_t fd = CURL_SOCKET_BAD;
        if (curl_easy_getinfo(c, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK && fd != CURL_SOCKET_BAD)
            shutdown(fd, SHUT_RDWR);
    }
    curl_mime_free(mime);
    curl_slist_free_all(rcpt);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    ds_buf_fini(&b);
    return ret;
}
