/* qfit run --format / --grammar: the grammar that constrains generation.
 * Internal to src/cli: do not include from other modules. */
#ifndef QFIT_CLI_RUN_GRAMMAR_H
#define QFIT_CLI_RUN_GRAMMAR_H

#include "qfit/grammar.h"

/* format: NULL, "json" (any JSON value) or the path of a JSON Schema file;
 * grammar_path: NULL or a GBNF file (not both). *out = the compiled grammar, or
 * NULL when neither is given. 0, or -1 after printing "qfit run: ..." to stderr
 * (an unsupported schema keyword is named there). */
int qfit_run_grammar_load(const char *format, const char *grammar_path, qfit_grammar **out);

#endif
