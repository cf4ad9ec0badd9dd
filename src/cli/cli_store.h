/* Helpers shared by the CLI's store commands (cmd_store.c, cmd_model.c). Internal to src/cli. */
#ifndef QFIT_CLI_STORE_H
#define QFIT_CLI_STORE_H

#include <stdbool.h>
#include <stdio.h>

#include "qfit/modelfile.h"
#include "qfit/store.h"

/* The store at the default root (QFIT_MODELS, OLLAMA_MODELS, ~/.qfit/models); NULL after
 * printing "qfit CMD: why" to stderr. */
qfit_store *qfit_cli_open_store(const char *cmd);
/* Parameters one per line ("<indent><name padded to width><value>"; strings JSON-quoted,
 * one line per value of a list such as stop), as `ollama show --parameters` prints them. */
void qfit_cli_print_params(const qfit_params *p, const char *indent, int width);
/* true (after printing usage to stdout) when -h or --help is among the arguments */
bool qfit_cli_wants_help(int argc, char **argv, void (*usage)(FILE *));

#endif
