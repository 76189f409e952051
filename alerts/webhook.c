/* Webhook delivery: a POST of the digest as JSON, signed with HMAC-SHA256 of the body under the
 * organisation's secret (header X-Darkscope-Signature: sha256=<hex>), like GitHub's webhooks;
 * any 2xx answer is a delivery. */
#include "alerts/alerts.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

void alert_hmac_hex(const char *secret, size_t secret_len, const char *body, size_t len,
                    char out[65])
{
    unsigned char mac[32];
    unsigned ml = 0;

    HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)body, len, mac, &ml);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

int alert_webhook_send(const char *url, const char *secret, const char *body, const char *delivery,
                       long timeout_s, char *err, size_t errlen)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hdr = NULL;
    char sig[65], line[200], errbuf[CURL_ERROR_SIZE] = "";
    long code = 0;
    CURLcode rc;
    int ret = 0;

    if (!c) {
        snprintf(err, errlen, "webhook: out of memory");
        return -ENOMEM;
    }
    alert_hmac_hex(secret, strlen(secret), body, strlen(body), sig);
    hdr = curl_slist_append(hdr, "Content-Type: application/json; charset=utf-8");
    snprintf(line, sizeof(line), "X-Darkscope-Signature: sha256=%s", sig);
    hdr = curl_slist_append(hdr, line);
    snprintf(line, sizeof(line), "X-Darkscope-Delivery: %.150s", delivery);
    hdr = curl_slist_append(hdr, line);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, timeout_s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK || code < 200 || code > 299) {
        snprintf(err, errlen, "webhook %s: %s%s%s (HTTP %ld)", url,
                 rc != CURLE_OK ? curl_easy_strerror(rc) : "refused", errbuf[0] ? ": " : "", errbuf,
                 code);
        ret = -EIO;
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return ret;
}
