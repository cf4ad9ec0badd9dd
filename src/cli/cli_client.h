/* The CLI as a client of a running `qfit serve` (qfit ps, qfit stop): the server's
 * address from QFIT_HOST (else OLLAMA_HOST; a server bound to 0.0.0.0 / :: is
 * reached on loopback), QFIT_API_KEY sent as a Bearer token when set.
 * Internal to src/cli: do not include from other modules. */
#ifndef QFIT_CLI_CLIENT_H
#define QFIT_CLI_CLIENT_H

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

#endif
