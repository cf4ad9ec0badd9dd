/*
 * peer-ids-logits MODEL.gguf OUT_PREFIX "ID ID ID ..." [--gen G] [--threads T]
 *
 * Reference generator for tests/data/engine (not part of the qfit build): built
 * against the llama.cpp peer harness of ../shared/peer (see README.md here).
 * Evaluates the given token ids (no tokenizer, nothing added) in one llama_decode
 * with logits for the last position, writes those n_vocab f32 logits to
 * OUT_PREFIX.f32, then greedy-decodes G (default 16) tokens (argmax, lowest id on
 * ties, end-of-generation tokens ignored) and writes OUT_PREFIX.txt:
 *   # peer: <build banner>
 *   # model: ...
 *   prompt tokens (N): ids...
 *   greedy (G tokens): ids...
 *   margins (G): m0 m1 ...   llama.cpp's top-1 minus top-2 logit at each greedy step
 *                            (a divergence from the greedy ids is acceptable only at a
 *                            step where this margin is a near tie)
 */
#include "peer_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int argmax(const float * l, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) {
        if (l[i] > l[best]) best = i;
    }
    return best;
}

static float top2_margin(const float * l, int n) {
    const int a = argmax(l, n);
    float second = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (i != a && l[i] > second) second = l[i];
    }
    return l[a] - second;
}

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.gguf OUT_PREFIX \"ID ID ...\" [--gen G] [--threads T] [--flash-off] [--kv-f32]\n", argv[0]);
        return 1;
    }
    const char * model_path = argv[1], * prefix = argv[2], * ids = argv[3];
    int n_gen = 16, n_threads = 2, flash_off = 0, kv_f32 = 0;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--gen") && i + 1 < argc) n_gen = peer_parse_int(argv[++i], "--gen");
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) n_threads = peer_parse_int(argv[++i], "--threads");
        /* llama.cpp's other attention path, and an F32 KV cache (default: flash attention
         * auto = on, F16 KV): how far llama.cpp's own logits move between its paths */
        else if (!strcmp(argv[i], "--flash-off")) flash_off = 1;
        else if (!strcmp(argv[i], "--kv-f32")) kv_f32 = 1;
        else peer_die("unknown argument %s", argv[i]);
    }
    llama_token prompt[512];
    int n_prompt = 0;
    for (const char * p = ids; *p;) {
        char * end;
        long v = strtol(p, &end, 10);
        if (end == p) break;
        if (n_prompt == 512) peer_die("too many ids");
        prompt[n_prompt++] = (llama_token) v;
        p = end;
    }
    if (n_prompt == 0) peer_die("no token ids");

    peer_init(false);
    struct llama_model * model = peer_load_model(model_path, false);
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    for (int i = 0; i < n_prompt; i++) {
        if (prompt[i] < 0 || prompt[i] >= n_vocab) peer_die("id %d outside the vocabulary", prompt[i]);
    }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t) (n_prompt + n_gen + 1);
    cp.n_batch = 512;
    cp.n_ubatch = 512;
    cp.n_threads = n_threads;
    cp.n_threads_batch = n_threads;
    if (flash_off) cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    if (kv_f32) {
        cp.type_k = GGML_TYPE_F32;
        cp.type_v = GGML_TYPE_F32;
    }
    struct llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) peer_die("failed to create context");
    struct ggml_threadpool * tp = peer_attach_threadpool(ctx, n_threads, 50);

    struct llama_batch batch = llama_batch_init(n_prompt, 0, 1);
    for (int i = 0; i < n_prompt; i++) {
        batch.token[i] = prompt[i];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = i == n_prompt - 1;
    }
    batch.n_tokens = n_prompt;
    if (llama_decode(ctx, batch)) peer_die("llama_decode failed on the prompt");
    const float * logits = llama_get_logits_ith(ctx, n_prompt - 1);

    char path[4096];
    snprintf(path, sizeof path, "%s.f32", prefix);
    FILE * f = fopen(path, "wb");
    if (!f || fwrite(logits, sizeof(float), (size_t) n_vocab, f) != (size_t) n_vocab) peer_die("cannot write %s", path);
    fclose(f);

    llama_token * gen = malloc(sizeof(llama_token) * (size_t) (n_gen + 1));
    float * margin = malloc(sizeof(float) * (size_t) (n_gen + 1));
    llama_token tok = argmax(logits, n_vocab);
    margin[0] = top2_margin(logits, n_vocab);
    for (int g = 0; g < n_gen; g++) {
        gen[g] = tok;
        if (g == n_gen - 1) break;
        if (llama_decode(ctx, llama_batch_get_one(&tok, 1))) peer_die("llama_decode failed during generation");
        const float * l = llama_get_logits_ith(ctx, -1);
        tok = argmax(l, n_vocab);
        margin[g + 1] = top2_margin(l, n_vocab);
    }

    snprintf(path, sizeof path, "%s.txt", prefix);
    f = fopen(path, "w");
    if (!f) peer_die("cannot write %s", path);
    peer_print_build_info(f);
    fprintf(f, "# model: %s (n_vocab=%d) threads=%d flash=%s\n", model_path, n_vocab, n_threads, peer_fa_resolved());
    fprintf(f, "prompt tokens (%d):", n_prompt);
    for (int i = 0; i < n_prompt; i++) fprintf(f, " %d", prompt[i]);
    fprintf(f, "\ngreedy (%d tokens):", n_gen);
    for (int i = 0; i < n_gen; i++) fprintf(f, " %d", gen[i]);
    fprintf(f, "\nmargins (%d):", n_gen);
    for (int i = 0; i < n_gen; i++) fprintf(f, " %.6f", margin[i]);
    fprintf(f, "\n");
    fclose(f);

    free(margin);
    free(gen);
    llama_batch_free(batch);
    llama_free(ctx);
    peer_free_threadpool(tp);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
