/* The routes of `qfit serve` that run models: generate, chat, embeddings, ps, the
 * OpenAI completions, tokenize/detokenize and metrics — HTTP (src/server/http.c)
 * over the JSON protocol (qfit/api.h), the scheduler (qfit/sched.h) and the
 * tool-call parser (qfit/toolcall.h).
 * Internal to src/server and src/cli/cmd_serve.c: do not include from other modules. */
#ifndef QFIT_SERVER_ROUTES_ENGINE_H
#define QFIT_SERVER_ROUTES_ENGINE_H

#include <stddef.h>

#include "qfit/sched.h"
#include "qfit/server.h"

typedef struct qfit_engine_routes qfit_engine_routes;

/* Register the engine routes on srv (before qfit_server_start). The scheduler is
 * borrowed; the returned state is freed with qfit_engine_routes_free after the
 * server has stopped. NULL with a message on error. */
qfit_engine_routes *qfit_engine_routes_add(qfit_server *srv, qfit_sched *sched, char *err, size_t err_len);
void qfit_engine_routes_free(qfit_engine_routes *er);

#endif
