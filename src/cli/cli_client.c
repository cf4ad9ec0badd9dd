/* The CLI as a client of a running qfit serve (cli_client.h), over libcurl. */
#include "cli/cli_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/config.h"

int qfit_client_base(char *buf, size_t cap, char *err, size_t err_len)
{
    qfit_host h;
    if (qfit_config_host(&h, err, err_len) != 0) return -1;
    const char *host = h.host;
    if (!strcmp(host, "0.0.0.0")) host = "127.0.0.1";
    else if (!strcmp(host, "::")) host = "::1";
    const bool v6 = strchr(host, ':') != NULL;
    int n = snprintf(buf, cap, "%s://%s%s%s:%d%s", h.scheme, v6 ? "[" : "", host, v6 ? "]" : "", h.port, h.path);
    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, err_len, "server address too long");
        return -1;
    }
    return 0;
}

typedef struct {
    char *p;
    size_t len;
    bool too_big;
} body_buf;

enum { MAX_ANSWER = 16 << 20 };

static size_t on_data(char *d, size_t sz, size_t n, void *u)
{
    body_buf *b = u;
    const size_t k = sz * n;
    if (b->len + k > MAX_ANSWER) {
        b->too_big = true;
        return 0;
    }
    char *np = realloc(b->p, b->len + k + 1);
    if (!np) return 0;
    memcpy(np + b->len, d, k);
    b->p = np;
    b->len += k;
    b->p[b->len] = '\0';
    return k;
}

int qfit_client_call(const char *method, const char *path, const json_t *body, long *status, json_t **out,
                     char *err, size_t err_len)
{
    *out = NULL;
    char base[600], url[1200], key[1024], auth[1100];
    if (qfit_client_base(base, sizeof base, err, err_len) != 0) return -1;
    snprintf(url, sizeof url, "%s%s", base, path);
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, err_len, "cannot start an HTTP client");
        return -1;
    }
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    const char *which = NULL;
    bool too_long = false;
    const char *k = qfit_env("API_KEY", key, sizeof key, &which, &too_long);
    if (k) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", k);
        hdr = curl_slist_append(hdr, auth);
    }
    char *json = body ? json_dumps(body, JSON_COMPACT) : NULL;
    body_buf b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "qfit");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 600L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (json) curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    CURLcode rc = curl_easy_perform(c);
    int ret = 0;
    if (rc == CURLE_COULDNT_CONNECT) {
        snprintf(err, err_len, "no qfit server at %s (start one with qfit serve)", base);
        ret = -1;
    } else if (rc != CURLE_OK) {
        snprintf(err, err_len, "%s: %s", url, b.too_big ? "answer too large" : curl_easy_strerror(rc));
        ret = -1;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        if (b.p) *out = json_loads(b.p, 0, NULL);
    }
    free(json);
    free(b.p);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return ret;
}
