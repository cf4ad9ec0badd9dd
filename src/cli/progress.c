/* Progress display on stderr (see progress.h). */
#include "cli/progress.h"

#include <stdio.h>
#include <string.h>

void qfit_progress_bar_update(void *user, int64_t done, int64_t total, uint64_t bytes_done,
                              uint64_t bytes_total, const char *name)
{
    qfit_progress_bar *ps = user;
    if (!ps->tty) return;
    int pct = bytes_total ? (int)(100.0 * (double)bytes_done / (double)bytes_total) : 100;
    if (pct == ps->last_pct && done != total) return;
    ps->last_pct = pct;
    char bar[31];
    int fill = pct * 30 / 100;
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "\r[%s] %3d%%  %lld/%lld  %-40.40s", bar, pct, (long long)done, (long long)total, name);
    if (done == total) fprintf(stderr, "\r%*s\r", 100, "");
    fflush(stderr);
}

void qfit_human_bytes(uint64_t b, char *buf, size_t cap)
{
    if (b >= 1000000000ull) snprintf(buf, cap, "%.1f GB", (double)b / 1e9);
    else if (b >= 1000000ull) snprintf(buf, cap, "%.1f MB", (double)b / 1e6);
    else if (b >= 1000ull) snprintf(buf, cap, "%.1f KB", (double)b / 1e3);
    else snprintf(buf, cap, "%llu B", (unsigned long long)b);
}

#define SAMPLE_S   0.25   /* speed sampled at most this often */
#define SMOOTH     0.3    /* weight of a new sample in the moving average */
#define REDRAW_S   0.1    /* terminal redraws at most this often */

static int pct_of(const qfit_xfer_progress *x)
{
    return x->total ? (int)(100.0 * (double)x->done / (double)x->total) : 100;
}

/* "45% 13.2 MB/29.3 MB, 8.0 MB/s, 2s left" (speed and time once known). */
static void describe(const qfit_xfer_progress *x, char *buf, size_t cap)
{
    char d[32], t[32], r[32], eta[32] = "";
    qfit_human_bytes(x->done, d, sizeof d);
    qfit_human_bytes(x->total, t, sizeof t);
    if (x->rate > 0 && x->done < x->total) {
        double s = (double)(x->total - x->done) / x->rate;
        if (s >= 3600 * 100) snprintf(eta, sizeof eta, ", >99h left");
        else if (s >= 3600) snprintf(eta, sizeof eta, ", %dh%02dm left", (int)s / 3600, (int)s % 3600 / 60);
        else if (s >= 60) snprintf(eta, sizeof eta, ", %dm%02ds left", (int)s / 60, (int)s % 60);
        else snprintf(eta, sizeof eta, ", %ds left", (int)s);
    }
    if (x->rate > 0) {
        qfit_human_bytes((uint64_t)x->rate, r, sizeof r);
        snprintf(buf, cap, "%3d%% %s/%s, %s/s%s", pct_of(x), d, t, r, eta);
    } else {
        snprintf(buf, cap, "%3d%% %s/%s", pct_of(x), d, t);
    }
}

static void draw(qfit_xfer_progress *x, FILE *f)
{
    char desc[192], bar[21];
    describe(x, desc, sizeof desc);
    if (!x->tty) {
        fprintf(f, "%s: %s\n", x->label, desc);
        return;
    }
    int fill = pct_of(x) / 5;
    for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
    bar[20] = 0;
    fprintf(f, "\r%s [%s] %s\x1b[K", x->label, bar, desc);   /* ESC[K: erase the rest of the line */
    fflush(f);
    x->open = 1;
}

void qfit_xfer_begin(qfit_xfer_progress *x, FILE *f, const char *label, uint64_t done, uint64_t total, double now)
{
    int tty = x->tty;
    memset(x, 0, sizeof *x);
    x->tty = tty;
    snprintf(x->label, sizeof x->label, "%s", label);
    x->done = done;
    x->total = total;
    x->t_sample = x->t_draw = now;
    x->b_sample = done;
    x->step = pct_of(x) / 5;
    draw(x, f);
}

void qfit_xfer_update(qfit_xfer_progress *x, FILE *f, uint64_t done, double now)
{
    x->done = done;
    if (!x->flowing) {   /* the speed is measured from the first bytes, not from the request */
        if (done > x->b_sample) {
            x->flowing = 1;
            x->t_sample = now;
            x->b_sample = done;
        }
    } else if (now - x->t_sample >= SAMPLE_S && done >= x->b_sample) {
        double inst = (double)(done - x->b_sample) / (now - x->t_sample);
        x->rate = x->rate > 0 ? (1 - SMOOTH) * x->rate + SMOOTH * inst : inst;
        x->t_sample = now;
        x->b_sample = done;
    }
    int step = pct_of(x) / 5;
    if (x->tty) {
        if (now - x->t_draw >= REDRAW_S || step != x->step) {
            x->t_draw = now;
            x->step = step;
            draw(x, f);
        }
    } else if (step > x->step) {
        x->step = step;
        draw(x, f);
    }
}

void qfit_xfer_end(qfit_xfer_progress *x, FILE *f)
{
    if (x->tty && x->open) {
        fputc('\n', f);
        fflush(f);
    }
    x->open = 0;
}
