/* peer-batched — llama.cpp's generation speed with N sequences decoded together.
 *
 *   peer-batched MODEL.gguf --parallel N [--tg 32] [--threads T] [--reps R]
 *                [--kv-type T] [--flash on|off|auto] [--poll 50]
 *
 * The same measurement as `qfit bench MODEL --pp 0 --tg TG --parallel N`: one context
 * with n_seq_max = N sequences, each with its own cells (kv_unified false, n_ctx =
 * N x (TG + 16) so every sequence has TG + 16 positions); a step decodes one token of
 * every sequence in one llama_batch with the logits of each; TG steps per run after a
 * one-step warm-up, the cache cleared before every run. Tokens are random ids (BOS
 * first), as llama-bench. Output: tokens/s of all sequences together and of each, in a
 * row bench/compare can read ("tg32 x8"). Built like bench/peer_depth.c (see
 * qb_build_peer_batched in bench/common.sh). */
#include "peer_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(stderr, "usage: peer-batched MODEL.gguf --parallel N [--tg 32] [--threads T] [--reps R]\n"
                    "                    [--kv-type T] [--flash on|off|auto] [--poll N] [--verbose]\n");
    exit(2);
}

/* n steps, each one token of every sequence */
static void run(struct llama_context *ctx, struct llama_batch *b, const llama_token *toks, int n_seq, int n)
{
    llama_memory_clear(llama_get_memory(ctx), false);
    for (int step = 0; step < n; step++) {
        b->n_tokens = n_seq;
        for (int s = 0; s < n_seq; s++) {
            b->token[s] = toks[(step + s) % n];
            b->pos[s] = step;
            b->n_seq_id[s] = 1;
            b->seq_id[s][0] = s;
            b->logits[s] = 1;
        }
        int res = llama_decode(ctx, *b);
        if (res != 0) peer_die("llama_decode failed (%d)", res);
        llama_synchronize(ctx);
    }
}

int main(int argc, char **argv)
{
    const char *model_path = NULL;
    int n_seq = 0, tg = 32, threads = peer_default_threads(), reps = 3, poll = 50;
    bool verbose = false;
    enum ggml_type tk = GGML_TYPE_F16, tv = GGML_TYPE_F16;
    enum llama_flash_attn_type fa = LLAMA_FLASH_ATTN_TYPE_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (usage(), (char *)NULL))
        if (!strcmp(s, "--parallel")) n_seq = peer_parse_int(NEXT(), s);
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
    if (!model_path || n_seq < 1 || n_seq > 256 || tg < 1 || reps < 1 || threads < 1) usage();

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

    struct llama_context_params cp = llama_context_default_params();
    cp.n_seq_max = (uint32_t)n_seq;
    cp.kv_unified = false;
    cp.n_ctx = (uint32_t)(n_seq * (tg + 16));
    cp.n_batch = (uint32_t)(n_seq > 512 ? n_seq : 512);
    cp.n_ubatch = cp.n_batch;
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
    llama_token *toks = malloc(sizeof(llama_token) * (size_t)tg);
    double *ts = malloc(sizeof(double) * (size_t)reps);
    if (!toks || !ts) peer_die("out of memory");
    srand(42);
    for (int i = 0; i < tg; i++) toks[i] = rand() % n_vocab;
    if (llama_vocab_get_add_bos(vocab)) toks[0] = llama_vocab_bos(vocab);
    struct llama_batch b = llama_batch_init(n_seq, 0, 1);

    printf("| model | size | params | backend | threads | type_k | type_v | fa | test | t/s (all) | t/s (each) |\n");
    printf("| ----- | ---: | -----: | ------- | ------: | -----: | -----: | -: | ---: | --: | --: |\n");
    run(ctx, &b, toks, n_seq, 1);   /* warm-up */
    for (int r = 0; r < reps; r++) {
        const double t0 = peer_now();
        run(ctx, &b, toks, n_seq, tg);
        ts[r] = (double)tg * n_seq / (peer_now() - t0);
    }
    double m = 0, sq = 0;
    for (int r = 0; r < reps; r++) m += ts[r];
    m /= reps;
    for (int r = 0; r < reps; r++) sq += (ts[r] - m) * (ts[r] - m);
    const double sd = reps > 1 ? sqrt(sq / (reps - 1)) : 0;
    printf("| %s | CPU | %7d | %6s | %6s | %4s | tg%d x%d | %9.2f \xc2\xb1 %7.2f | %9.2f |\n", summary, threads,
           ggml_type_name(tk), ggml_type_name(tv), strcmp(peer_fa_resolved(), "enabled") == 0 ? "1" : "0", tg, n_seq,
           m, sd, m / n_seq);
    fflush(stdout);
    llama_batch_free(b);
    free(ts);
    free(toks);
    llama_free(ctx);
    peer_free_threadpool(tp);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
