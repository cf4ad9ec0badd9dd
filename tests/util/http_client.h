/* A small HTTP client for the tests of `qfit serve` (libcurl): one request, the whole
 * reply in memory. Used by suites server and web. Not thread-safe where noted. */
#ifndef QFIT_TESTS_HTTP_CLIENT_H
#define QFIT_TESTS_HTTP_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    long   status;
    char  *body;
    size_t len;
    char  *headers;
    size_t hlen;
    json_t *json;     /* the body parsed, when it is JSON */
} tu_reply;

/* method NULL: GET; the reply's status, body and raw headers; a failed transfer is a test
 * failure unless abort_after or timeout_ms says it may be cut short */
typedef struct {
    const char        *method;
    const char        *path;
    const char        *body;       /* NULL: none */
    size_t             body_len;   /* 0: strlen(body) */
    const char *const *headers;    /* NULL-terminated "Name: value" */
    const char        *ip;         /* connect to this address instead of 127.0.0.1 */
    bool               chunked;    /* send the body with chunked encoding */
    long               timeout_ms;
    size_t             abort_after; /* stop reading after this many body bytes (0: never) */
    bool               path_as_is; /* send "../" as written (no client-side normalization) */
} tu_request;

/* Appends n bytes of data to the NUL-terminated *buf of *len bytes (realloc; a failure
 * fails the test); returns n (a curl write callback's answer). */
size_t tu_grow(char **buf, size_t *len, const char *data, size_t n);
/* One request to 127.0.0.1 (or q.ip) at port; free the reply with tu_reply_free. */
tu_reply tu_http(int port, tu_request q);
void tu_reply_free(tu_reply *r);
/* The value of a response header (case-insensitive name), in a static buffer (not
 * thread-safe); NULL if absent. */
const char *tu_header_of(const tu_reply *r, const char *name);

#endif
