/* The CLI's use of the environment settings (qfit/config.h). Internal to src/cli. */
#ifndef QFIT_CLI_ENV_H
#define QFIT_CLI_ENV_H

#include "qfit/model.h"

/* Validate every QFIT_* / OLLAMA_* setting; prints "qfit: why" and returns -1 on a bad one. */
int  qfit_cli_check_env(void);
/* With QFIT_DEBUG >= 1: print the debug report of a context made from gguf_path to stderr,
 * each line prefixed "qfit CMD: debug: ". */
void qfit_cli_debug_context(const char *cmd, const char *gguf_path, const qfit_context *c);

#endif
