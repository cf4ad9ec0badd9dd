/*
 * peer-embd MODEL.gguf OUT_PREFIX (--ids "ID ID ..." | --text "TEXT")... [--threads T]
 *
 * Reference generator for tests/data/encoder (not part of the qfit build): built against
 * the llama.cpp peer harness of ../shared/peer (see README.md here). Loads the model
 * with embeddings on and the pooling of the GGUF (LLAMA_POOLING_TYPE_UNSPECIFIED), puts
 * every input in ONE llama_decode as its own sequence (input i = sequence i, positions
 * from 0; ids as given, texts tokenized by llama.cpp with its special tokens added and
 * parsed) and writes:
 *   OUT_PREFIX.f32  n_inputs x n_embd little-endian f32: llama_get_embeddings_seq(i),
 *                   the pooled vectors as llama.cpp returns them (not normalised)
 *   OUT_PREFIX.txt  the peer banner, n_embd and each input's token ids
 */
#include "peer_common.h"

#include <stdlib.h>
#include <string.h>

#define MAX_IN 16
#define MAX_TOK 512

int main(int argc, char ** argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODEL.gguf OUT_PREFIX (--ids \"ID ...\" | --text TEXT)... [--threads T]\n", argv[0]);
        return 1;
    }
    const char * model_path = argv[1], * prefix = argv[2];
    const char * ids_arg[MAX_IN], * text_arg[MAX_IN];
    int n_in = 0, n_threads = 2;
    for (int i = 3; i < argc; i++) {
        const bool ids = !strcmp(argv[i], "--ids"), text = !strcmp(argv[i], "--text");
        if ((ids || text) && i + 1 < argc) {
            if (n_in == MAX_IN) peer_die("too many inputs");
            ids_arg[n_in] = ids ? argv[i + 1] : NULL;
            text_arg[n_in] = text ? argv[i + 1] : NULL;
            n_in++;
            i++;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            n_threads = peer_parse_int(argv[++i], "--threads");
        } else {
            peer_die("unknown argument %s", argv[i]);
        }
    }
    if (n_in == 0) peer_die("no inputs");

    peer_init(false);
    struct llama_model * model = peer_load_model(model_path, false);
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab), n_embd = llama_model_n_embd(model);

    static llama_token toks[MAX_IN][MAX_TOK];
    int n_tok[MAX_IN], total = 0;
    for (int s = 0; s < n_in; s++) {
        n_tok[s] = 0;
        if (ids_arg[s]) {
            for (const char * p = ids_arg[s]; *p;) {
                char * end;
                long v = strtol(p, &end, 10);
                if (end == p) break;
                if (n_tok[s] == MAX_TOK) peer_die("too many ids");
                if (v < 0 || v >= n_vocab) peer_die("id %ld outside the vocabulary", v);
                toks[s][n_tok[s]++] = (llama_token) v;
                p = end;
            }
        } else {
            int n = 0;
            llama_token * t = peer_tokenize(vocab, text_arg[s], strlen(text_arg[s]), true, true, &n);
            if (n > MAX_TOK) peer_die("text too long");
            memcpy(toks[s], t, sizeof(llama_token) * (size_t) n);
            n_tok[s] = n;
            free(t);
        }
        if (n_tok[s] == 0) peer_die("input %d has no tokens", s);
        total += n_tok[s];
    }
    if (total > MAX_TOK) peer_die("%d tokens in all, at most %d", total, MAX_TOK);

    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = MAX_TOK;
    cp.n_batch = MAX_TOK;
    cp.n_ubatch = MAX_TOK;   /* non-causal: the whole batch in one ubatch */
    /* a power of two: llama.cpp rounds its worst-case ubatch (n_ubatch tokens) up to a
     * multiple of n_seq_max when reserving, and its mean-pooling graph then aborts
     * (n_outputs != n_tokens) unless n_seq_max divides n_ubatch */
    cp.n_seq_max = 1;
    while ((int) cp.n_seq_max < n_in) cp.n_seq_max *= 2;
    cp.embeddings = true;
    cp.pooling_type = LLAMA_POOLING_TYPE_UNSPECIFIED;
    cp.n_threads = n_threads;
    cp.n_threads_batch = n_threads;
    struct llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) peer_die("failed to create context");
    struct ggml_threadpool * tp = peer_attach_threadpool(ctx, n_threads, 50);

    struct llama_batch batch = llama_batch_init(total, 0, 1);
    int k = 0;
    for (int s = 0; s < n_in; s++) {
        for (int i = 0; i < n_tok[s]; i++, k++) {
            batch.token[k] = toks[s][i];
            batch.pos[k] = i;
            batch.n_seq_id[k] = 1;
            batch.seq_id[k][0] = s;
            batch.logits[k] = 1;
        }
    }
    batch.n_tokens = total;
    if (llama_decode(ctx, batch)) peer_die("llama_decode failed");

    char path[4096];
    snprintf(path, sizeof path, "%s.f32", prefix);
    FILE * f = fopen(path, "wb");
    if (!f) peer_die("cannot write %s", path);
    for (int s = 0; s < n_in; s++) {
        const float * e = llama_get_embeddings_seq(ctx, s);
        if (!e) peer_die("no pooled embedding for sequence %d", s);
        if (fwrite(e, sizeof(float), (size_t) n_embd, f) != (size_t) n_embd) peer_die("cannot write %s", path);
    }
    fclose(f);

    snprintf(path, sizeof path, "%s.txt", prefix);
    f = fopen(path, "w");
    if (!f) peer_die("cannot write %s", path);
    peer_print_build_info(f);
    fprintf(f, "# model: %s (n_embd=%d, pooling %d) threads=%d flash=%s\n", model_path, n_embd,
            (int) llama_pooling_type(ctx), n_threads, peer_fa_resolved());
    fprintf(f, "inputs: %d\n", n_in);
    for (int s = 0; s < n_in; s++) {
        fprintf(f, "tokens %d (%d):", s, n_tok[s]);
        for (int i = 0; i < n_tok[s]; i++) fprintf(f, " %d", toks[s][i]);
        fprintf(f, "\n");
    }
    fclose(f);

    llama_batch_free(batch);
    llama_free(ctx);
    peer_free_threadpool(tp);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
