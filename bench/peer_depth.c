/* peer-depth — llama.cpp's pp/tg speed after D tokens already in the cache.
 *
 *   peer-depth MODEL.gguf --depth D [--pp 512] [--tg 128] [--threads T] [--reps R]
 *              [--kv-type T] [--flash on|off|auto] [--poll 50]
 *
 * The peer harness of ../shared/peer (peer-bench) has no depth option; this is
 * the same measurement with one, built against the same prebuilt llama.cpp
 * libraries and the harness's helpers (peer_common.c). Procedure, as qfit
 * bench --depth and llama-bench -d: one context of n_ctx = D + max(pp, tg);
 * the D tokens are decoded once, untimed; before every run (a warm-up and the
 * R timed ones) the cache is cut back to D tokens. pp: one prompt of pp tokens
 * in batches of 512; tg: tg single-token decodes. Tokens are random ids, as in
 * llama-bench. Output: a peer-bench style row per test, named "pp512 @ d4096",
 * so bench/compare parses both tools the same way.
 * Built by bench/compare (see qb_build_peer_depth in bench/common.sh). */
#include "peer_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(stderr, "usage: peer-depth MODEL.gguf --depth D [--pp 512] [--tg 128] [--threads T] [--reps R]\n"
                    "                  [--kv-type T] [--flash on|off|auto] [--poll N] [--verbose]\n");
    exit(2);
}

static void decode_all(struct llama_context *ctx, llama_token *toks, int n, int n_batch)
{
    for (int i = 0; i < n; i += n_batch) {
        int k = n - i < n_batch ? n - i : n_batch;
        int res = llama_decode(ctx, llama_batch_get_one(toks + i, k));
        if (res != 0) peer_die("llama_decode failed (%d)", res);
    }
    llama_synchronize(ctx);
}

static void run(struct llama_context *ctx, llama_token *toks, int depth, int is_pp, int n)
{
    llama_memory_t mem = llama_get_memory(ctx);
    if (!llama_memory_seq_rm(mem, 0, depth, -1)) peer_die("could not cut the cache back to %d tokens", depth);
    if (is_pp) {
        decode_all(ctx, toks + depth, n, 512);
    } else {
        for (int i = 0; i < n; i++) {
            int res = llama_decode(ctx, llama_batch_get_one(toks + depth + i, 1));
            if (res != 0) peer_die("llama_decode failed (%d)", res);
            llama_synchronize(ctx);
        }
    }
}

int main(int argc, char **argv)
{
    const char *model_path = NULL;
    int depth = -1, pp = 512, tg = 128, threads = peer_default_threads(), reps = 3, poll = 50;
    bool verbose = false;
    enum ggml_type tk = GGML_TYPE_F16, tv = GGML_TYPE_F16;
    enum llama_flash_attn_type fa = LLAMA_FLASH_ATTN_TYPE_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (usage(), (char *)NULL))
        if (!strcmp(s, "--depth")) depth = peer_parse_int(NEXT(), s);
        else if (!strcmp(s, "--pp")) pp = peer_parse_int(NEXT(), s);
        else if (!strcmp(s, "--tg")) tg = peer_parse_int(NEXT(), s);
        else if (!strcmp(s, "--threads")) threads = peer_parse_int(NEXT(), s);
        else if (!strcmp(s, "--reps")) reps = peer_parse_int(NEXT(), s);
        else if (!strcmp(s, "--poll")) poll = peer_parse_int(NEXT(), s);
        else if (!strcmp(s, "--kv-type")) {
            const char *v = NEXT();
            if (!peer_parse_kv_type(v, &tk)) peer_die("bad --kv-type %s", v);
            tv = tk;
        } else if (!strcmp(s, "--flash")) {
            const char *v = NEXT();
            if (!peer_parse_flash(v, &fa)) peer_die("bad --flash %s", v);
        } else if (!strcmp(s, "--verbose")) verbose = true;
        else if (s[0] == '-') usage();
        else if (!model_path) model_path = s;
        else usage();
#undef NEXT
    }
    if (!model_path || depth < 0 || pp < 0 || tg < 0 || pp + tg == 0 || reps < 1 || threads < 1) usage();

    peer_init(verbose);
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(model_path, mp);
    if (!model) peer_die("failed to load %s", model_path);
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    char summary[512];
    peer_model_summary(model, summary, sizeof summary);
    peer_print_build_info(stdout);
    printf("# model: %s\n", model_path);
    peer_print_load(stdout);

    const int nmax = pp > tg ? pp : tg;
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(depth + nmax);
    cp.n_batch = 2048;
    cp.n_ubatch = 512;
    cp.type_k = tk;
    cp.type_v = tv;
    cp.flash_attn_type = fa;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    peer_fa_reset();
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) peer_die("failed to create the context (run with --verbose)");
    struct ggml_threadpool *tp = peer_attach_threadpool(ctx, threads, poll);
    llama_set_n_threads(ctx, threads, threads);

    const int n_vocab = llama_vocab_n_tokens(vocab);
    llama_token *toks = malloc(sizeof(llama_token) * (size_t)(depth + nmax));
    if (!toks) peer_die("out of memory");
    srand(42);
    for (int i = 0; i < depth + nmax; i++) toks[i] = rand() % n_vocab;
    if (llama_vocab_get_add_bos(vocab)) toks[0] = llama_vocab_bos(vocab);

    llama_memory_clear(llama_get_memory(ctx), false);
    const double tf = peer_now();
    if (depth > 0) decode_all(ctx, toks, depth, 512);
    printf("# depth %d filled in %.1f s (untimed)\n", depth, peer_now() - tf);
    printf("| model | size | params | backend | threads | type_k | type_v | fa | test | t/s |\n");
    printf("| ----- | ---: | -----: | ------- | ------: | -----: | -----: | -: | ---: | --: |\n");
    fflush(stdout);

    double *ts = malloc(sizeof(double) * (size_t)reps);
    if (!ts) peer_die("out of memory");
    for (int which = 0; which < 2; which++) {
        const int is_pp = which == 0, n = is_pp ? pp : tg;
        if (n == 0) continue;
        run(ctx, toks, depth, is_pp, is_pp ? n : 1);   /* warm-up, as llama-bench */
        for (int r = 0; r < reps; r++) {
            const double t0 = peer_now();
            run(ctx, toks, depth, is_pp, n);
            ts[r] = n / (peer_now() - t0);
        }
        double m = 0, sq = 0;
        for (int r = 0; r < reps; r++) m += ts[r];
        m /= reps;
        for (int r = 0; r < reps; r++) sq += (ts[r] - m) * (ts[r] - m);
        const double sd = reps > 1 ? sqrt(sq / (reps - 1)) : 0;
        printf("| %s | CPU | %7d | %6s | %6s | %4s | %s%d @ d%d | %9.2f \xc2\xb1 %7.2f |\n", summary, threads,
               ggml_type_name(tk), ggml_type_name(tv), strcmp(peer_fa_resolved(), "enabled") == 0 ? "1" : "0",
               is_pp ? "pp" : "tg", n, depth, m, sd);
        fflush(stdout);
    }
    peer_print_load(stdout);
    free(ts);
    free(toks);
    llama_free(ctx);
    peer_free_threadpool(tp);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
