/* A one-line progress bar on stderr, drawn only when stderr is a terminal. */
#ifndef QFIT_CLI_PROGRESS_H
#define QFIT_CLI_PROGRESS_H

#include <stdint.h>

typedef struct {
    int tty;        /* draw at all (isatty(stderr)) */
    int last_pct;   /* last percentage drawn; start at -1 */
} qfit_progress_bar;

/* Matches the progress callbacks of qfit_quantize_model and qfit_synth. */
void qfit_progress_bar_update(void *bar, int64_t done, int64_t total, uint64_t bytes_done,
                              uint64_t bytes_total, const char *name);

#endif
