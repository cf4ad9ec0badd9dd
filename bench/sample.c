/* Sampling cost per token at a large vocabulary.
 *   bench/sample [-n N_VOCAB] [-t SECONDS]
 * Random logits (sum of uniforms, roughly normal, sd ~3 like a real model's
 * row), n_vocab 152064 (Qwen2.5) by default. Reports microseconds per
 * qfit_sampler_sample call (median and minimum of calls timed one by one for
 * about SECONDS per path, after a warm-up)
 * for: greedy; top_k 40 + top_p 0.95 + temperature 0.8; top_k 0 (the full
 * vocabulary) + top_p 0.95 + temperature 0.8; the same with penalties over 64
 * tokens; and qfit_logprobs with 20 alternatives. Single thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qfit/sample.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define N_ROWS 8

static volatile long g_sink;   /* keeps the calls from being optimised away */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* each call timed on its own: the median and the minimum resist other processes
 * sharing the cores far better than a mean */
static void bench(const char *name, const qfit_sampler_params *p, float **rows, int n_vocab, double tmin,
                  int logprobs)
{
    char err[256];
    qfit_sampler *s = qfit_sampler_new(p, n_vocab, 4096, err, sizeof err);
    if (!s) { fprintf(stderr, "%s: %s\n", name, err); exit(1); }
    for (int i = 0; i < 64; i++) qfit_sampler_accept(s, (int32_t)(i * 977 % n_vocab));
    enum { MAX_CALLS = 100000 };
    static double t[MAX_CALLS];
    long n = 0, sink = 0;
    qfit_token_logprob top[QFIT_TOP_LOGPROBS_MAX];
    float lp;
    for (int i = 0; i < N_ROWS; i++) sink += qfit_sampler_sample(s, rows[i]);   /* warm-up */
    const double t0 = now();
    while (n < MAX_CALLS && now() - t0 < tmin) {
        const float *r = rows[n % N_ROWS];
        const double t1 = now();
        if (logprobs) sink += qfit_logprobs(r, n_vocab, 5, QFIT_TOP_LOGPROBS_MAX, &lp, top);
        else sink += qfit_sampler_sample(s, r);
        t[n++] = now() - t1;
    }
    qfit_sampler_free(s);
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    printf("| %-50s | %9.1f | %9.1f | %7ld |\n", name, t[n / 2] * 1e6, t[0] * 1e6, n);
    g_sink += sink;
}

int main(int argc, char **argv)
{
    int n_vocab = 152064;
    double tmin = 1.0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-n")) n_vocab = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-t")) tmin = atof(argv[i + 1]);
        else { fprintf(stderr, "usage: bench/sample [-n N_VOCAB] [-t SECONDS]\n"); return 2; }
    }
    if (n_vocab < 64) { fprintf(stderr, "n_vocab must be >= 64\n"); return 2; }
    float *rows[N_ROWS];
    unsigned seed = 12345;
    for (int r = 0; r < N_ROWS; r++) {
        rows[r] = malloc(sizeof(float) * (size_t)n_vocab);
        if (!rows[r]) return 1;
        for (int i = 0; i < n_vocab; i++) {
            float x = 0;
            for (int k = 0; k < 4; k++) {
                seed = seed * 1103515245u + 12345u;
                x += (float)(seed >> 8) / 16777216.0f - 0.5f;
            }
            rows[r][i] = x * 5.2f;   /* sd = 5.2 * sqrt(4/12) = 3 */
        }
    }
    printf("n_vocab %d, %.1f s per path, single thread\n\n", n_vocab, tmin);
    printf("| %-50s | %9s | %9s | %7s |\n|---|---:|---:|---:|\n", "path", "median us", "min us", "calls");
    qfit_sampler_params p;
    qfit_sampler_params_init(&p);
    p.seed = 1;
    p.min_p = 0.0f;
    p.temperature = 0.0f;
    bench("greedy (temperature 0)", &p, rows, n_vocab, tmin, 0);
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    bench("top_k 40 + top_p 0.95 + temperature 0.8", &p, rows, n_vocab, tmin, 0);
    p.repeat_penalty = 1.1f;
    p.presence_penalty = 0.5f;
    bench("  same + repeat/presence penalty (64 tokens)", &p, rows, n_vocab, tmin, 0);
    p.repeat_penalty = 1.0f;
    p.presence_penalty = 0.0f;
    p.top_k = 0;
    bench("top_k 0 (full vocabulary) + top_p 0.95 + temp 0.8", &p, rows, n_vocab, tmin, 0);
    p.top_p = 1.0f;
    p.min_p = 0.05f;
    bench("top_k 0 + min_p 0.05 + temperature 0.8", &p, rows, n_vocab, tmin, 0);
    bench("qfit_logprobs (20 alternatives)", &p, rows, n_vocab, tmin, 1);
    for (int r = 0; r < N_ROWS; r++) free(rows[r]);
    return 0;
}
