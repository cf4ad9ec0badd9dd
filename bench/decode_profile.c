/* bench/decode_profile.c — where one decode token's time goes (small models: the
 * fixed costs around the matrix kernels).
 *
 *   decode-profile MODEL.gguf [--threads N] [--tokens N] [--reps R]
 *
 * Build (links the engine's internals: it times the backend's steps one by one):
 *   make release && cc -O2 -Iinclude -Isrc bench/decode_profile.c build/release/libqfit.a \
 *       -lpcre2-8 -lm -lpthread -o build/bench/decode-profile
 *
 * Prints, for R rounds of N single-token decodes from an empty cache (random tokens, as
 * qfit bench), the median over rounds and the "best" (per token position the fastest of the
 * rounds, averaged: time slices lost to other processes drop out):
 *   - tg: microseconds per token through qfit_decode, and tokens/s;
 *   - the same tokens driven step by step through the CPU backend (what qfit_decode does
 *     for one token), each step timed: embedding, attention (all layers), FFN (all
 *     layers), output head; "rest" is what qfit_decode adds around them (argument checks,
 *     positions);
 *   - thread-pool dispatches per token (each is one round trip between the caller and
 *     the workers, unless the pool runs it alone: qfit_threadpool_n_solo), the chunks the
 *     workers took and how often they went to sleep;
 *   - the thread pool's own cost: microseconds per dispatch of empty work (all threads
 *     once, and 2 / 8 / 16 empty chunks), so dispatches x cost = the pool's share.
 * Timings on a shared machine are noisy: take the median of several runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/model_internal.h"
#include "qfit/model.h"
#include "qfit/sample.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

enum { ST_EMBED, ST_ATTN, ST_FFN, ST_OUT, ST_REST, ST_TOTAL, ST_N };
static const char *st_name[ST_N] = { "embedding", "attention (all layers)", "FFN (all layers)", "output head",
                                     "rest of qfit_decode", "total" };

/* one token through the backend, as decode_tokens does for a single token of sequence 0 */
static void step_token(qfit_context *c, int32_t tok, double *st)
{
    const qfit_backend *be = c->backend;
    const int L = c->model->hp.n_layer;
    double t0 = now_us();
    c->n_logits = 0;
    c->out_embd = false;
    c->rk = qfit_row_kernels_active();
    c->tok_seq[0] = 0;
    c->tok_pos[0] = c->seq_past[0]++;
    double t1 = now_us();
    be->embed(c, &tok, 1);
    double t2 = now_us();
    st[ST_REST] += t1 - t0;
    st[ST_EMBED] += t2 - t1;
    for (int il = 0; il < L; il++) {
        const double a = now_us();
        be->attention(c, il, 1);
        const double b = now_us();
        be->ffn(c, il, 1);
        const double e = now_us();
        st[ST_ATTN] += b - a;
        st[ST_FFN] += e - b;
    }
    const double o0 = now_us();
    be->output(c, 0, 1);
    st[ST_OUT] += now_us() - o0;
}

static void empty_task(void *arg, int ith, int nth) { (void)arg; (void)ith; (void)nth; }
static void empty_chunk(void *arg, int chunk, int ith) { (void)arg; (void)chunk; (void)ith; }

int main(int argc, char **argv)
{
    const char *path = NULL;
    int threads = 2, tokens = 128, reps = 9;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) tokens = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else { fprintf(stderr, "usage: decode-profile MODEL.gguf [--threads N] [--tokens N] [--reps R]\n"); return 2; }
    }
    if (!path || threads < 1 || tokens < 1 || reps < 1) {
        fprintf(stderr, "usage: decode-profile MODEL.gguf [--threads N] [--tokens N] [--reps R]\n");
        return 2;
    }
    char err[512];
    qfit_model *m = qfit_model_load(path, err, sizeof err);
    if (!m) { fprintf(stderr, "decode-profile: %s\n", err); return 1; }
    qfit_context_params cp = qfit_context_default_params();
    cp.n_threads = threads;
    cp.n_ctx = tokens + 1;
    qfit_context *c = qfit_context_new(m, &cp, err, sizeof err);
    if (!c) { fprintf(stderr, "decode-profile: %s\n", err); return 1; }
    const qfit_hparams *hp = qfit_model_hparams(m);
    int32_t *toks = malloc(sizeof *toks * (size_t)(tokens + 1));
    qfit_rng rng;
    qfit_rng_seed(&rng, 42);
    for (int i = 0; i <= tokens; i++) toks[i] = (int32_t)(qfit_rng_next(&rng) % (uint64_t)hp->n_vocab);

    /* per round and token: the API time of each token, and each step's time */
    double *api = calloc((size_t)reps * (size_t)tokens, sizeof *api);
    double *stp = calloc((size_t)reps * (size_t)tokens * ST_N, sizeof *stp);
    double *tg = calloc((size_t)reps, sizeof *tg), *disp = calloc((size_t)reps, sizeof *disp),
           *wch = calloc((size_t)reps, sizeof *wch), *slp = calloc((size_t)reps, sizeof *slp),
           *solo = calloc((size_t)reps, sizeof *solo), *stv[ST_N];
    for (int s = 0; s < ST_N; s++) stv[s] = calloc((size_t)reps, sizeof **stv);
    /* warm-up: one round */
    qfit_context_reset(c);
    for (int i = 0; i < tokens; i++) qfit_decode(c, toks + i, 1, 0);
    for (int r = 0; r < reps; r++) {
        /* through the API */
        qfit_context_reset(c);
        const long d0 = qfit_threadpool_n_dispatches(c->tp), w0 = qfit_threadpool_n_worker_chunks(c->tp),
                   s0 = qfit_threadpool_n_sleeps(c->tp), o0 = qfit_threadpool_n_solo(c->tp);
        double t0 = now_us();
        for (int i = 0; i < tokens; i++) {
            const double a = now_us();
            if (qfit_decode(c, toks + i, 1, 0) != 0) { fprintf(stderr, "decode: %s\n", qfit_context_error(c)); return 1; }
            api[(size_t)r * tokens + i] = now_us() - a;
        }
        tg[r] = (now_us() - t0) / tokens;
        disp[r] = (double)(qfit_threadpool_n_dispatches(c->tp) - d0) / tokens;
        wch[r] = (double)(qfit_threadpool_n_worker_chunks(c->tp) - w0) / tokens;
        slp[r] = (double)(qfit_threadpool_n_sleeps(c->tp) - s0) / tokens;
        solo[r] = (double)(qfit_threadpool_n_solo(c->tp) - o0) / tokens;
        /* step by step */
        qfit_context_reset(c);
        for (int i = 0; i < tokens; i++) {
            double *st = stp + ((size_t)r * tokens + i) * ST_N;
            const double a = now_us();
            step_token(c, toks[i], st);
            st[ST_TOTAL] = now_us() - a;
        }
        for (int s = 0; s < ST_N; s++) {
            double sum = 0;
            for (int i = 0; i < tokens; i++) sum += stp[((size_t)r * tokens + i) * ST_N + s];
            stv[s][r] = sum / tokens;
        }
    }
    /* "best": per token position, the fastest of the rounds, averaged over the positions
     * (time slices lost to other processes drop out; on a quiet machine best ~ median) */
    double api_best = 0, st_best[ST_N] = { 0 };
    for (int i = 0; i < tokens; i++) {
        double b = 1e30;
        for (int r = 0; r < reps; r++) if (api[(size_t)r * tokens + i] < b) b = api[(size_t)r * tokens + i];
        api_best += b / tokens;
        for (int s = 0; s < ST_N; s++) {
            double bs = 1e30;
            for (int r = 0; r < reps; r++) {
                const double v = stp[((size_t)r * tokens + i) * ST_N + s];
                if (v < bs) bs = v;
            }
            st_best[s] += bs / tokens;
        }
    }
    const double tg_med = median(tg, reps);
    double med[ST_N];
    for (int s = 0; s < ST_N; s++) med[s] = median(stv[s], reps);
    printf("# decode-profile %s: %d threads, %d tokens from an empty cache, %d rounds\n", path, threads,
           tokens, reps);
    printf("tg (qfit_decode, one token a call): median %.1f us/token = %.1f t/s; best %.1f us/token = %.1f t/s\n",
           tg_med, 1e6 / tg_med, api_best, 1e6 / api_best);
    printf("dispatches/token %.1f (run by the caller alone: %.1f), worker chunks/token %.1f, pool sleeps/token %.2f\n",
           median(disp, reps), median(solo, reps), median(wch, reps), median(slp, reps));
    printf("%-26s %10s %7s %10s %7s\n", "step (backend, stepped)", "median us", "share", "best us", "share");
    for (int s = 0; s < ST_N; s++)
        printf("%-26s %10.2f %6.1f%% %10.2f %6.1f%%\n", st_name[s], med[s], 100.0 * med[s] / med[ST_TOTAL], st_best[s],
               100.0 * st_best[s] / st_best[ST_TOTAL]);

    /* the pool's own cost per dispatch */
    if (threads > 1) {
        enum { N = 20000 };
        double v[15];
        for (int k = 0; k < 4; k++) {
            const int nch = k == 0 ? 0 : k == 1 ? 2 : k == 2 ? 8 : 16;
            for (int b = 0; b < 15; b++) {
                const double t0 = now_us();
                for (int i = 0; i < N; i++) {
                    if (nch == 0) qfit_threadpool_run(c->tp, empty_task, NULL);
                    else qfit_threadpool_run_chunks(c->tp, empty_chunk, NULL, nch);
                }
                v[b] = (now_us() - t0) / N;
            }
            if (nch == 0) printf("pool: empty dispatch, every thread once: %.3f us (median of 15 x %d)\n", median(v, 15), N);
            else printf("pool: empty dispatch of %2d chunks: %.3f us\n", nch, median(v, 15));
        }
    }
    qfit_context_free(c);
    qfit_model_free(m);
    free(toks);
    free(tg);
    free(api);
    free(stp);
    free(disp);
    free(wch);
    free(slp);
    free(solo);
    for (int s = 0; s < ST_N; s++) free(stv[s]);
    return 0;
}
