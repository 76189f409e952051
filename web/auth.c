/* Access tokens: configured as NAME:SCOPE:SHA256 (the token itself is never stored), presented as
 * a bearer token; compared by hash in constant time against every configured token. */
#include "aggregator/aggregator.h"
#include "web/web_internal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

const char *const web_scope_names[] = {"none", "org", "partner", "viewer", "soc", "admin"};

static struct web_token *token_new(struct web_auth *a)
{
    if (a->n == a->cap) {
        unsigned cap = a->cap ? a->cap * 2 : 64;
        struct web_token *t = realloc(a->tokens, cap * sizeof(*t));
        if (!t)
            return NULL;
        a->tokens = t;
        a->cap = cap;
    }
    memset(&a->tokens[a->n], 0, sizeof(a->tokens[0]));
    a->tokens[a->n].org = -1;
    return &a->tokens[a->n];
}

void web_sha256(const void *data, size_t len, uint8_t out[32])
{
    unsigned int n = 32;

    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "127.0.0.1:8080", "[::1]:8080", "localhost:8080" are loopback listeners. */
static bool listen_is_loopback(const char *listen)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    size_t n = colon ? (size_t)(colon - listen) : strlen(listen);
    struct ds_addr a;

    if (n >= sizeof(host))
        return false;
    memcpy(host, listen, n);
    host[n] = '\0';
    if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    }
    if (strcmp(host, "localhost") == 0)
        return true;
    if (ds_addr_parse(host, &a) < 0)
        return false;
    if (a.family == 4)
        return a.b[0] == 127;
    static const uint8_t one[16] = {[15] = 1};
    return memcmp(a.b, one, 16) == 0;
}

int web_auth_init(struct web_auth *a, const struct ds_config *cfg, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    for (unsigned i = 0; i < cfg->n_web_tokens; i++) {
        const char *t = cfg->web_tokens[i], *c1 = strchr(t, ':'),
                   *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        struct web_token *k = token_new(a);
        if (!k) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (!c2 || strlen(c2 + 1) != 64 || (size_t)(c1 - t) >= sizeof(k->name)) {
            snprintf(err, errlen, "web.tokens: bad entry %u", i + 1);
            return -1;
        }
        snprintf(k->name, sizeof(k->name), "%.*s", (int)(c1 - t), t);
        k->scope = strncmp(c1 + 1, "admin", 5) == 0 ? WEB_SCOPE_ADMIN
                   : strncmp(c1 + 1, "soc", 3) == 0 ? WEB_SCOPE_SOC
                                                    : WEB_SCOPE_VIEWER;
        for (int j = 0; j < 32; j++) {
            int hi = hexval(c2[1 + 2 * j]), lo = hexval(c2[2 + 2 * j]);
            if (hi < 0 || lo < 0) {
                snprintf(err, errlen, "web.tokens: bad entry %u", i + 1);
                return -1;
            }
            k->sha256[j] = (uint8_t)(hi << 4 | lo);
        }
        a->n++;
    }
    if (cfg->agg_subscribers[0]) {
        struct agg_thresholds th;
        struct agg_subscribers *subs;
        agg_thresholds_from_config(cfg, &th);
        if (agg_subscribers_load(cfg->agg_subscribers, &th, &subs, err, errlen) < 0)
            return -1;
        for (unsigned i = 0; i < subs->n_orgs + subs->n_partners; i++) {
            bool org = i < subs->n_orgs;
            struct web_token *k = token_new(a);
            if (!k)
                break;
            if (org && !subs->orgs[i].has_token)
                continue;
            const char *id = org ? subs->orgs[i].id : subs->partners[i - subs->n_orgs].name;
            snprintf(k->name, sizeof(k->name), "%s:%s", org ? "org" : "partner", id);
            snprintf(k->subject, sizeof(k->subject), "%s", id);
            k->scope = org ? WEB_SCOPE_ORG : WEB_SCOPE_PARTNER;
            k->org = org ? (int)i : -1;
            if (!org) {
                const struct agg_partner *pt = &subs->partners[i - subs->n_orgs];
                for (unsigned c = 0; c < pt->n_countries && c < 64; c++)
                    memcpy(k->countries[k->n_countries++], pt->countries[c], 3);
            }
            memcpy(k->sha256,
                   org ? subs->orgs[i].token_sha256 : subs->partners[i - subs->n_orgs].token_sha256,
                   32);
            a->n++;
        }
        a->subs = subs; /* kept: organisations' ranges scope their hosts' history */
    }
    if (strcmp(cfg->web_require_token, "true") == 0)
        a->required = true;
    else if (strcmp(cfg->web_require_token, "false") == 0)
        a->required = false;
    else
        a->required = !listen_is_loopback(cfg->web_listen);
    if (a->required && a->n == 0) {
        snprintf(err, errlen,
                 "web.require_token: tokens are required on %s (not a loopback address) but "
                 "web.tokens is empty; add a token or set web.require_token to false",
                 cfg->web_listen);
        return -1;
    }
    return 0;
}

const struct web_token *web_auth_check(const struct web_auth *a, const char *token, size_t len)
{
    uint8_t h[32];
    const struct web_token *found = NULL;

    web_sha256(token, len, h);
    /* every entry is compared, found or not, so timing does not tell which one matched */
    for (unsigned i = 0; i < a->n; i++) {
        if (CRYPTO_memcmp(h, a->tokens[i].sha256, 32) == 0 && !found)
            found = &a->tokens[i];
    }
    return found;
}

void web_auth_fini(struct web_auth *a)
{
    agg_subscribers_free(a->subs);
    free(a->tokens);
    memset(a, 0, sizeof(*a));
}
