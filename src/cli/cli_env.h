/* The CLI's use of the environment settings (qfit/config.h). Internal to src/cli. */
#ifndef QFIT_CLI_ENV_H
#define QFIT_CLI_ENV_H

#include <signal.h>

#include "qfit/model.h"
#include "qfit/sched.h"

/* Validate every QFIT_* / OLLAMA_* setting; prints "qfit: why" and returns -1 on a bad one. */
int  qfit_cli_check_env(void);
/* With QFIT_DEBUG >= 1: print the debug report of a context made from gguf_path to stderr,
 * each line prefixed "qfit CMD: debug: ". */
void qfit_cli_debug_context(const char *cmd, const char *gguf_path, const qfit_context *c);

/* The model scheduler's settings from the environment, as qfit serve and qfit worker read
 * them: QFIT_NUM_PARALLEL, MAX_LOADED_MODELS, MAX_QUEUE, KEEP_ALIVE, MAX_MEMORY and the
 * context settings; -1 after printing "qfit CMD: why". */
int  qfit_cli_sched_config(const char *cmd, qfit_sched_config *sc);
/* An integer option value in [lo, 2^30]; -1 after printing "qfit CMD: invalid WHAT 'S'". */
int  qfit_cli_parse_int(const char *cmd, const char *s, const char *what, int lo, int *out);
/* For a long-running command (serve, worker): SIGINT and SIGTERM blocked in this thread
 * and every thread it starts (set = them, for sigwait), SIGPIPE ignored. */
void qfit_cli_block_stop_signals(sigset_t *set);
/* A log line to stderr with the UTC time; ctx: a prefix ("sched: ") or NULL. Any thread. */
void qfit_cli_log_line(void *ctx, const char *line);

#endif
