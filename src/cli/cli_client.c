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

/* A handle for base + path with the JSON content type and the API key; NULL when out of
 * memory. *hdr must be freed with curl_slist_free_all. */
static CURL *handle(const char *base, const char *path, const char *method, struct curl_slist **hdr, char *err,
                    size_t err_len)
{
    char url[1200], key[1024], auth[1100];
    snprintf(url, sizeof url, "%s%s", base, path);
    CURL *c = curl_easy_init();
    *hdr = NULL;
    if (!c) {
        snprintf(err, err_len, "cannot start an HTTP client");
        return NULL;
    }
    *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    const char *which = NULL;
    bool too_long = false;
    const char *k = qfit_env("API_KEY", key, sizeof key, &which, &too_long);
    if (k) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", k);
        *hdr = curl_slist_append(*hdr, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdr);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "qfit");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    return c;
}

static bool nobody_there(CURLcode rc)
{
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT;
}

int qfit_client_call(const char *method, const char *path, const json_t *body, long *status, json_t **out,
                     char *err, size_t err_len)
{
    *out = NULL;
    char base[600];
    if (qfit_client_base(base, sizeof base, err, err_len) != 0) return -1;
    struct curl_slist *hdr;
    CURL *c = handle(base, path, method, &hdr, err, err_len);
    if (!c) return -1;
    char *json = body ? json_dumps(body, JSON_COMPACT) : NULL;
    body_buf b = {0};
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 600L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (json) curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    CURLcode rc = curl_easy_perform(c);
    int ret = 0;
    if (rc == CURLE_COULDNT_CONNECT) {
        snprintf(err, err_len, "no qfit server at %s (start one with qfit serve)", base);
        ret = -1;
    } else if (rc != CURLE_OK) {
        snprintf(err, err_len, "%s%s: %s", base, path, b.too_big ? "answer too large" : curl_easy_strerror(rc));
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

int qfit_client_probe(char *base, size_t cap, char *err, size_t err_len)
{
    if (qfit_client_base(base, cap, err, err_len) != 0) return -1;
    struct curl_slist *hdr;
    CURL *c = handle(base, "/api/version", "GET", &hdr, err, err_len);
    if (!c) return -1;
    body_buf b = {0};
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    json_t *j = rc == CURLE_OK && b.p ? json_loads(b.p, 0, NULL) : NULL;
    int ret;
    if (nobody_there(rc)) ret = 0;
    else if (rc != CURLE_OK) {
        snprintf(err, err_len, "%s: %s", base, curl_easy_strerror(rc));
        ret = -1;
    } else if (status == 200 && json_is_string(json_object_get(j, "version"))) ret = 1;
    else {
        snprintf(err, err_len, "%s is not a qfit server (GET /api/version answered %ld)", base, status);
        ret = -1;
    }
    json_decref(j);
    free(b.p);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return ret;
}

enum { MAX_LINE = 16 << 20 };

typedef struct {
    qfit_client_line_fn on_line;
    void *u;
    char *buf;
    size_t len, cap;
    bool stopped, too_long;
} line_buf;

static int emit_lines(line_buf *l)
{
    size_t start = 0;
    for (;;) {
        char *nl = memchr(l->buf + start, '\n', l->len - start);
        if (!nl) break;
        const size_t n = (size_t)(nl - (l->buf + start));
        *nl = '\0';
        if (l->on_line(l->u, l->buf + start, n) != 0) {
            l->stopped = true;
            return -1;
        }
        start += n + 1;
    }
    memmove(l->buf, l->buf + start, l->len - start);
    l->len -= start;
    return 0;
}

static size_t on_stream_data(char *d, size_t sz, size_t n, void *u)
{
    line_buf *l = u;
    const size_t k = sz * n;
    if (l->len + k + 1 > l->cap) {
        if (l->len + k + 1 > MAX_LINE) {
            l->too_long = true;
            return 0;
        }
        size_t cap = (l->len + k + 1) * 2;
        char *p = realloc(l->buf, cap);
        if (!p) return 0;
        l->buf = p;
        l->cap = cap;
    }
    memcpy(l->buf + l->len, d, k);
    l->len += k;
    return emit_lines(l) == 0 ? k : 0;
}

int qfit_client_stream(const char *path, const json_t *body, qfit_client_line_fn on_line, bool (*should_abort)(void *u),
                       void *u, long *status, char *err, size_t err_len)
{
    char base[600];
    if (qfit_client_base(base, sizeof base, err, err_len) != 0) return -1;
    struct curl_slist *hdr;
    CURL *c = handle(base, path, "POST", &hdr, err, err_len);
    CURLM *m = c ? curl_multi_init() : NULL;
    char *json = body ? json_dumps(body, JSON_COMPACT) : NULL;
    line_buf l = { .on_line = on_line, .u = u };
    int ret = -1;
    if (!m || !json) {
        if (c) snprintf(err, err_len, "out of memory");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_stream_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &l);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_multi_add_handle(m, c);
    CURLcode rc = CURLE_OK;
    bool aborted = false;
    for (;;) {
        int running = 0;
        if (curl_multi_perform(m, &running) != CURLM_OK) { rc = CURLE_RECV_ERROR; break; }
        int left;
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(m, &left)))
            if (msg->msg == CURLMSG_DONE) rc = msg->data.result;
        if (!running) break;
        if (should_abort && should_abort(u)) { aborted = true; break; }
        curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    curl_multi_remove_handle(m, c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (aborted || l.stopped) ret = 1;
    else if (rc == CURLE_COULDNT_CONNECT) snprintf(err, err_len, "no qfit server at %s (start one with qfit serve)", base);
    else if (rc != CURLE_OK)
        snprintf(err, err_len, "%s%s: %s", base, path, l.too_long ? "a line of the answer is over 16 MiB" : curl_easy_strerror(rc));
    else if (l.len && (l.buf[l.len] = '\0', on_line(u, l.buf, l.len) != 0)) ret = 1;
    else ret = 0;
out:
    free(json);
    free(l.buf);
    if (m) curl_multi_cleanup(m);
    curl_slist_free_all(hdr);
    if (c) curl_easy_cleanup(c);
    return ret;
}
