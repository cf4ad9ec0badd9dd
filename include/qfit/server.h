/* qfit — the HTTP server of `qfit serve` (libmicrohttpd): routing, streaming
 * responses, security checks, and the endpoints that need no model engine.
 *
 * Model: one server = one listening socket + a route table. Routes are added
 * (qfit_server_route) before qfit_server_start; the built-in routes (below) are
 * registered by qfit_server_new. Each connection gets its own thread
 * (MHD_USE_THREAD_PER_CONNECTION): a handler may block (waiting for the model
 * scheduler) and a streaming response blocks only its own connection, never
 * another client; cfg.max_connections bounds the number of threads.
 *
 * Request flow, in order (each refusal is answered with the error shape of the
 * path's API, see "Errors"):
 *   1. route lookup: unknown path 404, known path with another method 405
 *      (with an Allow header); a path with a bad or %00 escape 400;
 *   2. Host header allowlist (DNS rebinding, as Ollama's allowedHost): empty,
 *      localhost, *.localhost, *.local, *.internal, the machine's hostname, the
 *      bound host name, or an IP literal that is loopback, private, unspecified
 *      or an address of this machine; otherwise 403. Skipped for a request that
 *      carries the valid API key (a rebinding page cannot know it);
 *   3. CORS: a request with an Origin header must come from an allowed origin
 *      (cfg.origins, comma-separated, '*' wildcards, plus Ollama's local
 *      defaults: http(s)://localhost|127.0.0.1|0.0.0.0 with any port, and any
 *      app:, file:, tauri:, vscode-webview:, vscode-file: origin; and the server's own
 *      origin, http://<Host header>, for its built-in page), else 403; an
 *      allowed one gets Access-Control-Allow-Origin, and an OPTIONS preflight 204;
 *   4. API key: when cfg.api_key is set every request except GET|HEAD /,
 *      /api/version, /health and preflights needs `Authorization: Bearer <key>`
 *      (compared in constant time), else 401. Without a key (loopback bind, or
 *      a non-loopback bind with cfg.no_auth), routes flagged QFIT_HTTP_MANAGE
 *      (pull, create, copy, delete, blobs) refuse non-loopback clients with 403;
 *   5. body: Content-Length or the bytes received beyond the route's limit
 *      (cfg.max_body, default 32 MiB) is 413; header block and URL are bounded
 *      by a 64 KiB per-connection buffer (libmicrohttpd answers 431/414);
 *      a connection whose request headers are not complete cfg.header_timeout_ms
 *      (default 10 s) after it opened or after its previous request ended is closed
 *      (slowloris: trickled headers would hold a connection thread each), one log
 *      line per batch of closures;
 *   6. the handler runs once the whole body is received (or, with a body
 *      function, the body is handed over chunk by chunk as it arrives).
 *
 * Built-in routes (qfit_server_new; the store routes only with cfg.store_root):
 *   GET|HEAD /, GET|HEAD /api/version, GET /health            (no API key needed)
 *   GET|HEAD /ui/FILE: the web page's files (no key; / serves the page to a browser,
 *   Accept: text/html, and "Ollama is running" to anything else); GET|POST /api/plan
 *   (the planner: src/server/routes_web.c)
 *   GET|HEAD /api/tags, POST /api/show, GET /v1/models, GET /v1/models/{id}
 *   POST /api/copy, DELETE /api/delete, HEAD|POST /api/blobs/:digest,
 *   POST /api/pull, POST /api/create                            (QFIT_HTTP_MANAGE)
 * with the JSON shapes and status codes of ollama-compat-reference.md §1.7-1.9, 2.
 *
 * Using it (the model routes):
 *     static void h_chat(qfit_http_req *req, void *sched) {
 *         json_t *body = qfit_http_req_json(req);          // NULL: 400 already sent
 *         if (!body) return;
 *         if (bad) { qfit_http_respond_error(req, 400, "field 'x': ..."); ... return; }
 *         qfit_http_stream *s = qfit_http_stream_begin(req, 200, "application/x-ndjson");
 *         hand (s, body) to the scheduler and return; its thread then calls
 *         qfit_http_stream_write(s, line, len) per chunk (stops at -1: client gone)
 *         and qfit_http_stream_end(s) once, whatever happened.
 *     }
 *     qfit_http_route r = { "POST", "/api/chat", h_chat, sched, 0, 0, NULL };
 *     qfit_server_route(srv, &r, err, sizeof err);        // before qfit_server_start
 * A handler that answers without a stream may block (its own connection thread)
 * and should poll qfit_http_req_cancelled(req) meanwhile.
 *
 * Starting: a host that does not resolve only to loopback addresses is refused
 * unless cfg.api_key is set or cfg.no_auth is true (the CLI then warns).
 *
 * Errors: functions return NULL/-1 with a message in err[err_len]. Error bodies
 * sent to clients: /v1/... gets OpenAI's {"error":{"message","type","param",
 * "code"}}, anything else Ollama's {"error":"..."} (Content-Type
 * application/json; charset=utf-8), except an unknown route outside /api and /v1
 * which gets Ollama's text/plain "404 page not found". The store root and $HOME
 * are replaced by "<models>" and "~" in every error message and any other quoted
 * absolute path by '<path>': error bodies never show the server's file system.
 *
 * Streaming: a handler calls qfit_http_stream_begin (the status line and headers
 * are sent at once, chunked), hands the stream to a producer thread and returns.
 * The producer calls qfit_http_stream_write (blocks while the bounded queue is
 * full; returns -1 once the client is gone) and finally qfit_http_stream_end,
 * exactly once, from any thread. While the queue is empty the server sends a
 * keep-alive every cfg.keepalive_ms (default 5000): for text/event-stream the
 * SSE comment ": keep-alive\n\n"; for any other type (NDJSON) one space, which
 * becomes leading whitespace of the next line: a blank line would break the
 * Go client (json.Unmarshal of an empty line fails) and ollama-python
 * (json.loads("") raises), while every JSON parser skips leading spaces. A
 * client that disconnects is noticed within 100 ms (its socket is polled while
 * the stream waits), or at the next write: the request's cancel flag is set and
 * writes return -1.
 *
 * In-process calls (qfit_server_call): a request built in memory, without a socket,
 * goes through the same route table and handlers, so its answer is byte for byte
 * what a client would get (qfit worker runs batch jobs this way). The server need
 * not be started. Such a request is trusted as a loopback client holding the API
 * key (no Host/CORS/key refusal), has no headers and no query, and is cancelled only
 * by its cancel flag; a streamed answer is collected whole (the call returns after
 * qfit_http_stream_end). Routing is the server's: unknown path 404, other method 405,
 * bad escape 400, body over the route's limit 413.
 *
 * Ownership: qfit_server_free frees everything it created; a request, its
 * body and headers belong to the server and are valid until the handler returns
 * (a stream stays valid until qfit_http_stream_end). Strings passed in are copied.
 * Thread-safety: qfit_server_route/start/stop/free from one thread; handlers run
 * concurrently on connection threads; a stream may be written from one producer
 * thread while the server reads it.
 */
#ifndef QFIT_SERVER_H
#define QFIT_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The Ollama API version /api/version reports: third-party clients gate features
 * on it (Continue needs >= 0.6.5, Raycast >= 0.6.4); qfit's own version is sent too. */
#define QFIT_SERVER_OLLAMA_VERSION "0.13.0"
#define QFIT_SERVER_DEFAULT_MAX_BODY   (32u << 20)
#define QFIT_SERVER_DEFAULT_MAX_CONNECTIONS 256
/* Resident memory of one open connection of an engine route (its thread's stack pages,
 * libmicrohttpd's connection pool, the stream's producer thread and queue, the job's
 * events), for the memory plan of a server: FITTED to bench/serve-load's peak RSS with
 * 4, 64 and 128 concurrent streaming clients on the shared model (2026-12-05: +12.9 MB
 * from 4 to 64 clients, +11.7 MB from 64 to 128; 215 and 183 KB a connection). A client
 * that reads slower than the model writes can hold up to 256 KiB more (the stream queue). */
#define QFIT_SERVER_CONNECTION_BYTES (224u << 10)
#define QFIT_SERVER_DEFAULT_KEEPALIVE_MS 5000
/* A connection must deliver its request's headers within this time of opening (or of
 * its previous request's end), else it is closed: slow clients (slowloris) cannot hold
 * the connection slots. */
#define QFIT_SERVER_DEFAULT_HEADER_TIMEOUT_MS 10000

typedef struct {
    const char *host;          /* address to bind ("127.0.0.1", "::1", "0.0.0.0", a name); NULL = 127.0.0.1 */
    int         port;          /* 0 = any free port (qfit_server_port tells which) */
    const char *api_key;       /* NULL/"" = none (QFIT_API_KEY) */
    bool        no_auth;       /* allow a non-loopback bind without a key */
    const char *origins;       /* extra CORS origins, comma-separated (QFIT_ORIGINS/OLLAMA_ORIGINS); may be NULL */
    const char *store_root;    /* model store for the built-in model routes; NULL = none registered */
    size_t      max_body;      /* 0 = QFIT_SERVER_DEFAULT_MAX_BODY (JSON bodies) */
    unsigned    max_connections;   /* 0 = QFIT_SERVER_DEFAULT_MAX_CONNECTIONS */
    unsigned    keepalive_ms;  /* 0 = QFIT_SERVER_DEFAULT_KEEPALIVE_MS */
    unsigned    header_timeout_ms; /* 0 = QFIT_SERVER_DEFAULT_HEADER_TIMEOUT_MS */
    /* One line per finished request ("GET /api/tags 200 1.2ms 127.0.0.1"); NULL = silent.
     * Called from connection threads. */
    void      (*log)(void *ctx, const char *line);
    void       *log_ctx;
} qfit_server_config;

typedef struct qfit_server qfit_server;
typedef struct qfit_http_req qfit_http_req;
typedef struct qfit_http_stream qfit_http_stream;

/* A handler answers with one qfit_http_respond* call or qfit_http_stream_begin.
 * Returning without an answer sends 500 "handler gave no response". */
typedef void (*qfit_http_handler)(qfit_http_req *req, void *ctx);
/* Optional body function of a route: called once with data NULL, len 0 when the
 * headers are in (it may answer at once: the body is then not read), then for each
 * chunk of the body as it arrives; return -1 after answering to stop reading. The
 * handler then runs at the end of the body unless an answer was given. */
typedef int (*qfit_http_body_fn)(qfit_http_req *req, const char *data, size_t len, void *ctx);

#define QFIT_HTTP_MANAGE  1u   /* model management: non-loopback clients need the API key */
#define QFIT_HTTP_PUBLIC  2u   /* no API key needed (/, /api/version, /health) */

typedef struct {
    const char       *method;    /* "GET", "POST", ... (HEAD is answered like GET without a body
                                  * only when registered) */
    const char       *pattern;   /* "/api/tags"; ":name" matches one segment, "*name" the rest
                                  * (one or more segments, percent-decoded) */
    qfit_http_handler handler;
    void             *ctx;
    unsigned          flags;
    size_t            max_body;  /* 0 = the server's max_body; SIZE_MAX = unlimited (body fn) */
    qfit_http_body_fn body;      /* NULL = the body is buffered */
} qfit_http_route;

qfit_server *qfit_server_new(const qfit_server_config *cfg, char *err, size_t err_len);
/* Add a route (before start). Patterns and method strings must stay valid. */
int  qfit_server_route(qfit_server *s, const qfit_http_route *r, char *err, size_t err_len);
int  qfit_server_start(qfit_server *s, char *err, size_t err_len);
int  qfit_server_port(const qfit_server *s);           /* the bound port, -1 before start */
/* Stops accepting, cancels open streams (their writes return -1) and waits for the
 * connection threads. Producers must still call qfit_http_stream_end. */
void qfit_server_stop(qfit_server *s);
void qfit_server_free(qfit_server *s);                 /* stops first if running */
/* Connections closed so far because their request headers did not arrive within
 * cfg.header_timeout_ms (slow clients). */
unsigned long qfit_server_slow_closed(const qfit_server *s);
/* Is host (as given to cfg.host) an address that only loopback clients can reach? */
bool qfit_server_host_is_loopback(const char *host);

/* Run one request in-process (see "In-process calls"): method, path (may carry a
 * query, which is ignored) and body (may be NULL when body_len is 0). cancel: NULL, or
 * a flag that, once true, cancels the request as a disconnect would (the handler's
 * 499 or a shortened stream is then the answer). On 0: *status is the HTTP status and
 * *resp (NUL-terminated, *resp_len bytes, free() it) the body, an error body included.
 * -1 with a message only when no answer could be produced (out of memory). Blocks
 * until the handler and any stream producer are done; thread-safe: calls may run
 * concurrently from several threads (the scheduler then batches their sequences). */
int  qfit_server_call(qfit_server *s, const char *method, const char *path, const char *body, size_t body_len,
                      const atomic_bool *cancel, unsigned *status, char **resp, size_t *resp_len,
                      char *err, size_t err_len);

/* ---- the request (valid during the handler) */
const char *qfit_http_req_method(const qfit_http_req *r);
const char *qfit_http_req_path(const qfit_http_req *r);          /* percent-decoded, without the query */
const char *qfit_http_req_param(const qfit_http_req *r, const char *name);  /* ":name"/"*name" value or NULL */
const char *qfit_http_req_header(const qfit_http_req *r, const char *name); /* case-insensitive; NULL */
const char *qfit_http_req_query(const qfit_http_req *r, const char *key);   /* decoded; NULL */
const char *qfit_http_req_body(const qfit_http_req *r, size_t *len);        /* NUL-terminated copy */
bool        qfit_http_req_loopback(const qfit_http_req *r);                 /* client on this machine */
bool        qfit_http_req_openai(const qfit_http_req *r);                   /* path under /v1 */
/* Has the client gone? (disconnect noticed, or the server stopping) Checks the socket
 * when called on the connection's own thread (in a handler). */
bool        qfit_http_req_cancelled(qfit_http_req *r);
/* Per-request state of a handler/body function, freed with free_fn (may be NULL) when
 * the request ends, whatever the outcome (a disconnect mid-upload included). */
void        qfit_http_req_set_user(qfit_http_req *r, void *p, void (*free_fn)(void *));
void       *qfit_http_req_user(const qfit_http_req *r);
/* The body parsed as a JSON object (a new reference), or NULL after answering 400:
 * "missing request body", jansson's message with line:column (depth over 2048
 * levels, invalid UTF-8, \u0000 included), or "request body must be a JSON object". */
json_t     *qfit_http_req_json(qfit_http_req *r);

/* ---- answers (each copies what it is given; one answer per request) */
int  qfit_http_add_header(qfit_http_req *r, const char *name, const char *value);  /* before answering */
int  qfit_http_respond(qfit_http_req *r, unsigned status, const char *content_type,
                       const void *body, size_t len);
int  qfit_http_respond_json(qfit_http_req *r, unsigned status, const json_t *body);  /* no steal */
/* The error shape of the request's API (see Errors); msg is scrubbed of paths. */
int  qfit_http_respond_error(qfit_http_req *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- streams */
qfit_http_stream *qfit_http_stream_begin(qfit_http_req *r, unsigned status, const char *content_type);
/* 0, or -1 once the client is gone or the server stops (then stop producing). */
int  qfit_http_stream_write(qfit_http_stream *s, const void *data, size_t len);
bool qfit_http_stream_cancelled(qfit_http_stream *s);
void qfit_http_stream_end(qfit_http_stream *s);

#ifdef __cplusplus
}
#endif
#endif /* QFIT_SERVER_H */
