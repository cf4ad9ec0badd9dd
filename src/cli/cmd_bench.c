/* qfit bench MODEL.gguf — prompt processing and generation speed, measured the
 * way llama-bench does: pp = one batch of pp tokens from an empty cache,
 * tg = tg single-token decodes from an empty cache; one warm-up run each;
 * mean ± stdev of tokens/s over the repetitions.
 * --parallel N (as llama-batched-bench): N sequences in one context; pp = N x pp
 * tokens (each sequence's prompt) in passes of n_batch, tg = tg steps that each
 * decode one token of every sequence in one batch; tokens/s of all sequences
 * together (aggregate) and of each. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli/cli_env.h"
#include "cli/commands.h"
#include "qfit/eval.h"
#include "qfit/model.h"
#include "qfit/quant.h"
#include "qfit/sample.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench_usage(FILE *f)
{
    fprintf(f, "usage: qfit bench MODEL.gguf [--pp 512] [--tg 128] [--threads N] [--reps 5] [--depth D]\n"
               "                  [--ctx N] [--kv-type T | --cache-type-k T --cache-type-v T] [--flash-attn on|off|auto]\n"
               "                  [--parallel N] [--json] [--device D] [--gpu-layers N] [--gpu-mem SIZE]\n"
               "  --depth D   run each test after D tokens already in the cache (like llama-bench -d)\n"
               "  --parallel N  N sequences at once (each with depth + test positions): aggregate and\n"
               "              per-sequence tokens/s\n"
               "  --json      one JSON object per test (test, n_seq, tps_aggregate, tps_per_seq, settings)\n"
               "  --ctx N     context size (default: depth + max(pp, tg))\n"
               "environment: QFIT_KV_CACHE_TYPE, QFIT_FLASH_ATTENTION (and the OLLAMA_ aliases)\n");
}

/* tests run after g_depth tokens already cached (filled once, untimed; every
 * sequence holds the same g_depth tokens); the runs: qfit_speed_* (src/eval/speed.c) */
static int g_depth;
static int g_seqs = 1;

static void stats(const double *v, int n, double *mean, double *sd)
{
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) s2 += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(s2 / (n - 1)) : 0.0;
}

int qfit_cmd_bench(int argc, char **argv)
{
    const char *model_path = NULL;
    int pp = 512, tg = 128, reps = 5;
    qfit_context_params cp = qfit_context_default_params();
    char env_desc[256], perr[256];
    if (qfit_context_params_from_env(&cp, env_desc, sizeof env_desc, perr, sizeof perr) != 0) {
        fprintf(stderr, "qfit bench: %s\n", perr);
        return 2;
    }
    if (env_desc[0]) fprintf(stderr, "environment: %s\n", env_desc);
    const int env_ctx = cp.n_ctx;
    cp.n_ctx = 0;
    int ctx_opt = 0;
    bool json = false;
    g_depth = 0;
    g_seqs = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { bench_usage(stdout); return 0; }
        if (!strcmp(a, "--json")) { json = true; continue; }
        if (a[0] == '-') {
            if (i + 1 >= argc) { fprintf(stderr, "qfit bench: %s needs a value\n", a); return 2; }
            int pr = qfit_context_params_parse_arg(&cp, a, argv[i + 1], perr, sizeof perr);
            if (pr < 0) { fprintf(stderr, "qfit bench: %s\n", perr); return 2; }
            if (pr > 0) { i++; if (cp.n_ctx) ctx_opt = cp.n_ctx; continue; }
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 1 << 20) { fprintf(stderr, "qfit bench: invalid value for %s\n", a); return 2; }
            if (!strcmp(a, "--pp") || !strcmp(a, "-p")) pp = (int)v;
            else if (!strcmp(a, "--tg") || !strcmp(a, "-n")) tg = (int)v;
            else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) cp.n_threads = (int)v;
            else if (!strcmp(a, "--reps") || !strcmp(a, "-r")) reps = (int)v;
            else if (!strcmp(a, "--depth") || !strcmp(a, "-d")) g_depth = (int)v;
            else if (!strcmp(a, "--parallel") || !strcmp(a, "-np")) {
                if (v < 1 || v > QFIT_MAX_SEQ) {
                    fprintf(stderr, "qfit bench: --parallel %ld: 1 to %d sequences\n", v, QFIT_MAX_SEQ);
                    return 2;
                }
                g_seqs = (int)v;
            }
            else { fprintf(stderr, "qfit bench: unknown option %s\n", a); bench_usage(stderr); return 2; }
        } else if (!model_path) model_path = a;
        else { bench_usage(stderr); return 2; }
    }
    if (!model_path || reps < 1 || (pp < 1 && tg < 1)) { bench_usage(stderr); return 2; }

    char err[512];
    qfit_model *m = qfit_model_load_for(model_path, &cp, err, sizeof err);
    if (!m) { fprintf(stderr, "qfit bench: %s\n", err); return 1; }
    const qfit_hparams *hp = qfit_model_hparams(m);
    cp.n_ctx = ctx_opt ? ctx_opt : g_depth + (pp > tg ? pp : tg);
    if (!ctx_opt && cp.n_ctx < 16) cp.n_ctx = 16;
    if (!ctx_opt && env_ctx > cp.n_ctx) cp.n_ctx = env_ctx;
    if (cp.n_ctx < g_depth + (pp > tg ? pp : tg)) {
        fprintf(stderr, "qfit bench: --ctx %d is smaller than depth + test size (%d)\n", cp.n_ctx,
                g_depth + (pp > tg ? pp : tg));
        qfit_model_free(m);
        return 2;
    }
    cp.n_batch = pp > 0 ? (pp * g_seqs < 512 ? pp * g_seqs : 512) : 512;
    if (cp.n_batch < g_seqs) cp.n_batch = g_seqs;   /* one step of tg: a token of each sequence */
    cp.n_seq = g_seqs;
    int rc = 1;
    int32_t *toks = NULL;
    double *tv = NULL;
    qfit_speed sp;
    memset(&sp, 0, sizeof sp);
    qfit_context *c = qfit_context_new(m, &cp, err, sizeof err);
    if (!c) { fprintf(stderr, "qfit bench: %s\n", err); goto out; }
    {
        char desc[512];
        qfit_context_describe(c, desc, sizeof desc);
        fprintf(stderr, "%s\n", desc);
    }
    qfit_cli_debug_context("bench", model_path, c);
    int n = g_depth + (pp > tg ? pp : tg);
    toks = malloc(sizeof(int32_t) * (size_t)n);
    tv = malloc(sizeof(double) * (size_t)reps);
    if (!toks || !tv) { fprintf(stderr, "qfit bench: out of memory\n"); goto out; }
    if (qfit_speed_init(&sp, c, g_depth, g_seqs, pp > tg ? pp : tg, err, sizeof err) != 0) {
        fprintf(stderr, "qfit bench: %s\n", err);
        goto out;
    }
    qfit_rng rng;
    qfit_rng_seed(&rng, 42);
    for (int i = 0; i < n; i++) toks[i] = (int32_t)(qfit_rng_next(&rng) % (uint64_t)hp->n_vocab);

    if (g_depth > 0 && qfit_speed_fill(&sp, toks) != 0) {
        fprintf(stderr, "qfit bench: %s\n", qfit_context_error(c));
        goto out;
    }
    if (json) {}
    else if (g_seqs == 1) printf("| model | size | params | threads | kv | fa | test | t/s |\n|---|---:|---:|---:|---|---|---:|---:|\n");
    else printf("| model | size | params | threads | kv | fa | test | sequences | t/s (all) | t/s (each) |\n"
                "|---|---:|---:|---:|---|---|---:|---:|---:|---:|\n");
    for (int which = 0; which < 2; which++) {
        int cnt = which == 0 ? pp : tg;
        if (cnt < 1) continue;
        /* warm-up as llama-bench (and the peer harnesses) do it: the whole prompt for pp,
         * one token for tg, so both tools start their timed runs equally warm */
        if ((which == 0 ? qfit_speed_pp(&sp, toks, cnt) : qfit_speed_tg(&sp, toks, 1)) != 0) {
            fprintf(stderr, "qfit bench: %s\n", qfit_context_error(c));
            goto out;
        }
        for (int r = 0; r < reps; r++) {
            if (qfit_speed_reset(&sp, toks) != 0) {   /* untimed: back to the depth */
                fprintf(stderr, "qfit bench: %s\n", qfit_context_error(c));
                goto out;
            }
            double t0 = now_s();
            if ((which == 0 ? qfit_speed_pp(&sp, toks, cnt) : qfit_speed_tg(&sp, toks, cnt)) != 0) goto out;
            tv[r] = (double)cnt * g_seqs / (now_s() - t0);   /* every sequence's tokens */
        }
        double mean, sd;
        stats(tv, reps, &mean, &sd);
        char test[64];
        if (g_depth > 0) snprintf(test, sizeof test, "%s%d @ d%d", which == 0 ? "pp" : "tg", cnt, g_depth);
        else snprintf(test, sizeof test, "%s%d", which == 0 ? "pp" : "tg", cnt);
        if (json) {
            json_t *o = json_pack("{s:s, s:i, s:f, s:f, s:f, s:s, s:i, s:s, s:s, s:b, s:i, s:i, s:i}", "test", test,
                                  "n_seq", g_seqs, "tps_aggregate", mean, "tps_per_seq", mean / g_seqs,
                                  "tps_aggregate_stdev", sd, "model", model_path, "threads", qfit_context_n_threads(c),
                                  "kv_type_k", qfit_type_name(qfit_context_type_k(c)),
                                  "kv_type_v", qfit_type_name(qfit_context_type_v(c)),
                                  "flash_attn", qfit_context_flash_attn(c), "depth", g_depth, "n_ctx",
                                  qfit_context_n_ctx(c), "reps", reps);
            char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
            if (!text) { fprintf(stderr, "qfit bench: out of memory\n"); json_decref(o); goto out; }
            printf("%s\n", text);
            free(text);
            json_decref(o);
        } else {
            printf("| %s %s | %.2f MiB | %.2f M | %d | %s/%s | %s | %s", hp->arch_name, model_path,
                   (double)qfit_model_weight_bytes(m) / (1 << 20), (double)qfit_model_n_params(m) / 1e6,
                   qfit_context_n_threads(c), qfit_type_name(qfit_context_type_k(c)),
                   qfit_type_name(qfit_context_type_v(c)), qfit_context_flash_attn(c) ? "on" : "off", test);
            if (g_seqs == 1) printf(" | %.2f ± %.2f |\n", mean, sd);
            else printf(" | %d | %.2f ± %.2f | %.2f |\n", g_seqs, mean, sd, mean / g_seqs);
        }
        fflush(stdout);
    }
    rc = 0;
out:
    free(toks);
    free(tv);
    qfit_speed_free(&sp);
    if (rc == 0) fprintf(stderr, "peak RSS: %zu bytes (%.1f MiB)\n", qfit_process_peak_rss_bytes(),
                         (double)qfit_process_peak_rss_bytes() / (1 << 20));
    qfit_context_free(c);
    qfit_model_free(m);
    return rc;
}
