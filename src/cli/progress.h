/* Progress display on stderr for the CLI (internal to src/cli: do not include from
 * other modules).
 *
 * qfit_progress_bar: a one-line bar drawn only when stderr is a terminal (import,
 * quantize, copy).
 * qfit_xfer_progress: a byte transfer (qfit pull) with bytes done/total, a smoothed
 * speed and an ETA. On a terminal one line is redrawn in place (at most 10 times a
 * second); otherwise plain lines: one when the transfer starts, one each time it
 * crosses a 5% step, so at most 21 lines per transfer whatever its size.
 * Times are seconds on any monotonic clock, passed in by the caller. Not thread-safe. */
#ifndef QFIT_CLI_PROGRESS_H
#define QFIT_CLI_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    int tty;        /* draw at all (isatty(stderr)) */
    int last_pct;   /* last percentage drawn; start at -1 */
} qfit_progress_bar;

/* Matches the progress callbacks of qfit_quantize_model and qfit_synth. */
void qfit_progress_bar_update(void *bar, int64_t done, int64_t total, uint64_t bytes_done,
                              uint64_t bytes_total, const char *name);

typedef struct {
    int      tty;          /* redraw one line in place; else plain lines */
    char     label[64];    /* "pulling 1a2b3c4d5e6f" */
    uint64_t total, done;
    double   t_sample;     /* time and bytes of the last speed sample */
    uint64_t b_sample;
    double   rate;         /* smoothed bytes per second; 0 = not known yet */
    double   t_draw;       /* last redraw (terminal) */
    int      step;         /* last 5% step printed (plain lines) */
    int      open;         /* a terminal line is drawn and not ended */
    int      flowing;      /* bytes have arrived since the start (speed sampling began) */
} qfit_xfer_progress;

void qfit_xfer_begin(qfit_xfer_progress *x, FILE *f, const char *label, uint64_t done, uint64_t total, double now);
void qfit_xfer_update(qfit_xfer_progress *x, FILE *f, uint64_t done, double now);
/* Ends the terminal line (a newline), nothing for plain lines. */
void qfit_xfer_end(qfit_xfer_progress *x, FILE *f);
/* "1.5 GB", "13.2 MB", "512 B" (decimal units, as Ollama). */
void qfit_human_bytes(uint64_t b, char *buf, size_t cap);

#endif
