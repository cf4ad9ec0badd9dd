/* Prompt reuse: time to first token of the next turn of a long chat, cold and warm.
 *   bench/prefix MODEL.gguf [--history 2048] [--turn 32] [--threads N] [--reps 3]
 * A history of H random tokens (BOS first) and a new turn of T tokens, through the
 * batcher (qfit/generate.h) on a one-sequence context of H + T + 64:
 *   cold: a fresh batcher: the whole H + T prompt is evaluated before the first token;
 *   warm: the history is already cached (a previous request whose prompt was the
 *         history): only the T new tokens are evaluated.
 * Reports the median time from submission to the first token over the repetitions,
 * and the prompt tokens each evaluated (from the request's result). Greedy, one token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qfit/generate.h"
#include "qfit/model.h"
#include "qfit/sample.h"
#include "qfit/tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* seconds from submission to the end of the first step that produced a token */
static double ttft(qfit_batcher *b, const int32_t *prompt, size_t n, int *evaluated)
{
    qfit_gen_params p;
    qfit_gen_params_init(&p);
    p.sampling.temperature = 0.0f;
    p.num_predict = 1;
    char err[256];
    const double t0 = now();
    int s = qfit_batcher_submit(b, prompt, n, &p, NULL, err, sizeof err);
    if (s < 0) { fprintf(stderr, "prefix: %s\n", err); exit(1); }
    while (qfit_batcher_n_running(b) > 0)
        if (qfit_batcher_step(b) < 0) { fprintf(stderr, "prefix: decode failed\n"); exit(1); }
    const double t = now() - t0;
    qfit_gen_result r;
    if (!qfit_batcher_result(b, s, &r)) { fprintf(stderr, "prefix: no result\n"); exit(1); }
    *evaluated = r.prompt_eval_count;
    return t;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int H = 2048, T = 32, threads = 0, reps = 3;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--history")) H = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--turn")) T = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--reps")) reps = atoi(argv[++i]);
        else if (!path) path = argv[i];
        else { fprintf(stderr, "usage: prefix MODEL.gguf [--history H] [--turn T] [--threads N] [--reps R]\n"); return 2; }
    }
    if (!path || H < 1 || T < 1 || reps < 1 || reps > 100) {
        fprintf(stderr, "usage: prefix MODEL.gguf [--history H] [--turn T] [--threads N] [--reps R]\n");
        return 2;
    }
    char err[512];
    qfit_model *m = qfit_model_load(path, err, sizeof err);
    if (!m) { fprintf(stderr, "prefix: %s\n", err); return 1; }
    qfit_tokenizer *tok = qfit_tokenizer_from_gguf(qfit_model_gguf(m), err, sizeof err);
    if (!tok) { fprintf(stderr, "prefix: %s\n", err); return 1; }
    qfit_context_params cp = qfit_context_default_params();
    cp.n_ctx = H + T + 64;
    cp.n_threads = threads;
    qfit_context *c = qfit_context_new(m, &cp, err, sizeof err);
    if (!c) { fprintf(stderr, "prefix: %s\n", err); return 1; }
    const int n_vocab = qfit_model_hparams(m)->n_vocab;
    int32_t *ids = malloc((size_t)(H + T) * sizeof *ids);
    double *cold = malloc((size_t)reps * sizeof *cold), *warm = malloc((size_t)reps * sizeof *warm);
    if (!ids || !cold || !warm) return 1;
    qfit_rng rng;
    qfit_rng_seed(&rng, 7);
    for (int i = 0; i < H + T; i++) ids[i] = (int32_t)(qfit_rng_next(&rng) % (uint64_t)n_vocab);
    if (qfit_tokenizer_bos(tok) != QFIT_TOKEN_NONE) ids[0] = qfit_tokenizer_bos(tok);
    int ev_cold = 0, ev_warm = 0;
    for (int r = 0; r < reps; r++) {
        qfit_batcher *b = qfit_batcher_new(c, tok, err, sizeof err);   /* empties the context */
        if (!b) { fprintf(stderr, "prefix: %s\n", err); return 1; }
        cold[r] = ttft(b, ids, (size_t)(H + T), &ev_cold);
        qfit_batcher_free(b);
        b = qfit_batcher_new(c, tok, err, sizeof err);
        int ev;
        (void)ttft(b, ids, (size_t)H, &ev);   /* the previous turn: caches the history */
        warm[r] = ttft(b, ids, (size_t)(H + T), &ev_warm);
        qfit_batcher_free(b);
    }
    qsort(cold, (size_t)reps, sizeof *cold, cmp_d);
    qsort(warm, (size_t)reps, sizeof *warm, cmp_d);
    printf("| history | turn | threads | cold: tokens evaluated | cold TTFT (ms) | warm: tokens evaluated | warm TTFT (ms) | speed-up |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    printf("| %d | %d | %d | %d | %.1f | %d | %.1f | %.1fx |\n", H, T, qfit_context_n_threads(c), ev_cold,
           cold[reps / 2] * 1e3, ev_warm, warm[reps / 2] * 1e3, cold[reps / 2] / warm[reps / 2]);
    free(ids);
    free(cold);
    free(warm);
    qfit_context_free(c);
    qfit_tokenizer_free(tok);
    qfit_model_free(m);
    return 0;
}
