#include "cli/progress.h"

#include <stdio.h>

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
