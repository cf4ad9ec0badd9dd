/* The batch queue's HTTP face (`qfit serve` with QFIT_REDIS_URL): the same operations as
 * `qfit batch`, over the library in qfit/batch.h. Internal to src/server and
 * src/cli/cmd_serve.c: do not include from other modules. */
#ifndef QFIT_SERVER_ROUTES_BATCH_H
#define QFIT_SERVER_ROUTES_BATCH_H

#include <stddef.h>

#include "qfit/server.h"

typedef struct qfit_batch_routes qfit_batch_routes;

/* Register on srv (before qfit_server_start), all flagged QFIT_HTTP_MANAGE (from another
 * machine only with the API key):
 *   POST   /api/batch?model=NAME&ttl=24h   body: the JSONL input (OpenAI Batch API lines)
 *          -> 200 {"id", "total"}; 400 "line N: ..." naming the first bad line, nothing queued
 *   GET    /api/batch/:id                  -> 200 the status (qfit_batch_status_json); 404 unknown
 *   GET    /api/batch/:id/results          -> 200 application/x-ndjson, one line per input line in
 *          input order (OpenAI's batch output format); 409 while jobs are unfinished
 *   DELETE /api/batch/:id                  -> 200 the status after cancelling; 409 when finished
 * Redis unreachable: 503. Each request opens its own connection to redis_url (copied).
 * NULL with a message on error; free after the server has stopped. */
qfit_batch_routes *qfit_batch_routes_add(qfit_server *srv, const char *redis_url, char *err, size_t err_len);
void qfit_batch_routes_free(qfit_batch_routes *br);

#endif
