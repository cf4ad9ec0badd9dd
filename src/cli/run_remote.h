/* qfit run through a running `qfit serve` (the model stays loaded between runs, as
 * `ollama run`): the model's details from POST /api/show, answers streamed from
 * /api/chat (or /api/generate raw for a model without a chat template), /save through
 * /api/create. The conversation is kept here and sent whole each turn; the server's
 * prefix cache makes a turn cost its new tokens. The server's own store and settings
 * apply: nothing of this machine's store is read.
 * Internal to src/cli (cmd_run.c): do not include from other modules. */
#ifndef QFIT_CLI_RUN_REMOTE_H
#define QFIT_CLI_RUN_REMOTE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "qfit/generate.h"
#include "qfit/modelfile.h"

typedef struct {
    char   *name;    /* the model as asked for */
    json_t *show;    /* the server's /api/show answer */
} run_remote;

/* The model NAME on the server: its /api/show, then a load (an empty /api/generate), so
 * that a model that cannot load is reported before the first prompt. -1 with a message
 * (the server's own words for a 404 or a refused load). */
int  qfit_run_remote_open(run_remote *r, const char *name, char *err, size_t err_len);
void qfit_run_remote_close(run_remote *r);
bool qfit_run_remote_has_template(const run_remote *r);

/* One answer: messages (a chat, through the model's template on the server) or, when
 * messages is NULL, raw as the whole prompt (a model without a template). options: the
 * session's PARAMETER overrides (may be NULL); format: NULL, "json" or a JSON Schema.
 * Text goes to cb->on_text as it arrives; cb->should_abort is polled (every 50 ms at
 * most): true closes the request, the answer so far stands, res->reason = cancelled.
 * Returns 0 with *res (counts and durations from the final chunk; reason stop or
 * length), 1 when the server refused the request (err: its message, e.g. a prompt
 * over the context), -1 on any other failure (err says what). */
int qfit_run_remote_answer(run_remote *r, const json_t *messages, const char *raw, const qfit_params *options,
                           const json_t *format, const qfit_gen_callbacks *cb, qfit_gen_result *res, char *err,
                           size_t err_len);

/* The num_predict an answer runs with: the session's override, else the model's
 * PARAMETER on the server, else the default (-1: until the context is full). */
int qfit_run_remote_num_predict(const run_remote *r, const qfit_params *overrides);

/* /show WHAT (info, template, parameters, system, modelfile) from the server's answer;
 * overrides and system: the session's /set values (may be NULL). False for an unknown WHAT. */
bool qfit_run_remote_show(const run_remote *r, const char *what, const qfit_params *overrides, const char *system);

/* /save NAME on the server (POST /api/create): FROM the model, the session's system and
 * parameter overrides, and the conversation as its MESSAGEs. */
int qfit_run_remote_save(const run_remote *r, const char *name, const qfit_params *overrides, const char *system,
                         const json_t *history, char *err, size_t err_len);

#endif
