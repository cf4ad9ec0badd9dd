/* tests/util/http_client.h: the tests' HTTP client. */
#include "http_client.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

size_t tu_grow(char **buf, size_t *len, const char *data, size_t n)
{
    char *nb = realloc(*buf, *len + n + 1);
    cr_assert_not_null(nb);
    memcpy(nb + *len, data, n);
    *len += n;
    nb[*len] = 0;
    *buf = nb;
    return n;
}

typedef struct { tu_reply *r; size_t abort_after; } wctx;

static size_t on_body(char *data, size_t size, size_t n, void *p)
{
    wctx *w = p;
    tu_grow(&w->r->body, &w->r->len, data, size * n);
    if (w->abort_after && w->r->len >= w->abort_after) return 0;   /* curl aborts: a client going away */
    return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *p)
{
    tu_reply *r = p;
    return tu_grow(&r->headers, &r->hlen, data, size * n);
}

typedef struct { const char *data; size_t len, pos; } rctx;

static size_t on_read(char *buf, size_t size, size_t n, void *p)
{
    rctx *c = p;
    size_t k = size * n < c->len - c->pos ? size * n : c->len - c->pos;
    if (k > 1000) k = 1000;   /* several chunks */
    memcpy(buf, c->data + c->pos, k);
    c->pos += k;
    return k;
}

tu_reply tu_http(int port, tu_request q)
{
    tu_reply r = { 0 };
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    char url[8192];
    snprintf(url, sizeof url, "http://%s:%d%s", q.ip ? q.ip : "127.0.0.1", port, q.path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q.method ? q.method : "GET");
    if (q.method && !strcmp(q.method, "HEAD")) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (q.path_as_is) curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    struct curl_slist *hl = NULL;
    for (size_t i = 0; q.headers && q.headers[i]; i++) hl = curl_slist_append(hl, q.headers[i]);
    rctx rc = { q.body, q.body ? (q.body_len ? q.body_len : strlen(q.body)) : 0, 0 };
    if (q.body && q.chunked) {
        hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &rc);
    } else if (q.body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, q.body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rc.len);
    }
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    wctx w = { &r, q.abort_after };
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &w);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, q.timeout_ms ? q.timeout_ms : 30000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(c);
    if (!q.abort_after && !q.timeout_ms) cr_assert_eq(cc, CURLE_OK, "%s %s: %s", q.method, q.path, curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (!r.body) tu_grow(&r.body, &r.len, "", 0);
    if (!r.headers) tu_grow(&r.headers, &r.hlen, "", 0);
    r.json = json_loadb(r.body, r.len, 0, NULL);
    return r;
}

void tu_reply_free(tu_reply *r)
{
    free(r->body);
    free(r->headers);
    json_decref(r->json);
}


const char *tu_header_of(const tu_reply *r, const char *name)
{
    static char v[1024];
    size_t n = strlen(name);
    for (const char *p = r->headers; p && *p;) {
        const char *e = strstr(p, "\r\n");
        if (!e) break;
        if (!strncasecmp(p, name, n) && p[n] == ':') {
            const char *s = p + n + 1;
            while (*s == ' ') s++;
            snprintf(v, sizeof v, "%.*s", (int)(e - s), s);
            return v;
        }
        p = e + 2;
    }
    return NULL;
}
