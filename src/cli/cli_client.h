/* The CLI as a client of a running `qfit serve` (qfit ps, qfit stop, qfit run): the server's
 * address from QFIT_HOST (else OLLAMA_HOST; a server bound to 0.0.0.0 / :: is
 * reached on loopback), QFIT_API_KEY sent as a Bearer token when set.
 * Internal to src/cli: do not include from other modules. */
#ifndef QFIT_CLI_CLIENT_H
#define QFIT_CLI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* The server's base URL ("http://127.0.0.1:11434") into buf; -1 with a message. */
int qfit_client_base(char *buf, size_t cap, char *err, size_t err_len);

/* One request: method "GET" or "POST" (body: a JSON object, or NULL). On an answer,
 * returns 0 with *status and *out (the parsed JSON body, NULL when it is not JSON;
 * json_decref it). -1 with a message when no server answers (err says so: "no qfit
 * server at URL (start one with qfit serve)") or on any other failure. */
int qfit_client_call(const char *method, const char *path, const json_t *body, long *status, json_t **out,
                     char *err, size_t err_len);

/* Does a qfit (or Ollama) server answer GET /api/version at QFIT_HOST? 1 yes (base[cap]
 * filled), 0 nobody listens there (connection refused or timed out), -1 with a message
 * when something else answers or the address is bad. */
int qfit_client_probe(char *base, size_t cap, char *err, size_t err_len);

/* A streaming request (NDJSON answer): POST body to path and call on_line for every
 * complete line (without its newline; a last line without one too), in order.
 * on_line returns non-zero to stop. should_abort (may be NULL) is polled at least every
 * 50 ms while waiting: true closes the connection at once (the server then cancels the
 * request). Returns 0 when the answer ended (*status = the HTTP status; a non-2xx
 * answer's lines go to on_line like any others), 1 when stopped by on_line or
 * should_abort, -1 with a message when no answer came (err: "no qfit server at URL"
 * when nobody listens). A line over 16 MiB is an error. */
typedef int (*qfit_client_line_fn)(void *u, const char *line, size_t len);
int qfit_client_stream(const char *path, const json_t *body, qfit_client_line_fn on_line, bool (*should_abort)(void *u),
                       void *u, long *status, char *err, size_t err_len);

#endif
