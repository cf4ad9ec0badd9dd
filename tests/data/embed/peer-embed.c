/*
 * peer-embed MODEL.gguf OUT_PREFIX TEXT... [--threads T]
 *
 * Reference generator for tests/data/embed (not part of the qfit build): built
 * against the llama.cpp peer harness of ../shared/peer (see README.md here).
 * For each pooling type mean, cls and last (a llama.cpp context with
 * embeddings = true and that pooling_type), each TEXT is tokenized as
 * llama.cpp's embedding tool does (add_special, parse_special), evaluated alone
 * as sequence 0 in one llama_decode (every token output) and its pooled
 * embedding taken with llama_get_embeddings_seq — NOT normalised, so a test can
 * check both the raw pooled hidden state and the normalised vector. Writes
 *   OUT_PREFIX.POOL.f32   n_texts x n_embd little-endian f32, text order
 *   OUT_PREFIX.txt        peer banner, n_embd, and each text's token ids
 * The KV cache is cleared between texts.
 */
#include "peer_common.h"

#include <stdlib.h>
#include <string.h>

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.gguf OUT_PREFIX TEXT... [--threads T]\n", argv[0]);
        return 1;
    }
    const char * model_path = argv[1], * prefix = argv[2];
    const char * texts[64];
    int n_texts = 0, n_threads = 2;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) n_threads = peer_parse_int(argv[++i], "--threads");
        else if (n_texts < 64) texts[n_texts++] = argv[i];
        else peer_die("too many texts");
    }

    peer_init(false);
    struct llama_model * model = peer_load_model(model_path, false);
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_embd = llama_model_n_embd(model);

    char path[4096];
    snprintf(path, sizeof path, "%s.txt", prefix);
    FILE * txt = fopen(path, "w");
    if (!txt) peer_die("cannot write %s", path);
    peer_print_build_info(txt);
    fprintf(txt, "# model: %s threads=%d\nn_embd %d\n", model_path, n_threads, n_embd);

    static const struct { const char * name; enum llama_pooling_type type; } pools[] = {
        { "mean", LLAMA_POOLING_TYPE_MEAN }, { "cls", LLAMA_POOLING_TYPE_CLS }, { "last", LLAMA_POOLING_TYPE_LAST },
    };
    for (size_t p = 0; p < sizeof pools / sizeof *pools; p++) {
        struct llama_context_params cp = llama_context_default_params();
        cp.n_ctx = 512;
        cp.n_batch = 512;
        cp.n_ubatch = 512;
        cp.n_threads = n_threads;
        cp.n_threads_batch = n_threads;
        cp.embeddings = true;
        cp.pooling_type = pools[p].type;
        struct llama_context * ctx = llama_init_from_model(model, cp);
        if (!ctx) peer_die("failed to create context");
        struct ggml_threadpool * tp = peer_attach_threadpool(ctx, n_threads, 50);

        snprintf(path, sizeof path, "%s.%s.f32", prefix, pools[p].name);
        FILE * f = fopen(path, "wb");
        if (!f) peer_die("cannot write %s", path);
        for (int t = 0; t < n_texts; t++) {
            int n = 0;
            llama_token * ids = peer_tokenize(vocab, texts[t], strlen(texts[t]), true, true, &n);
            if (n <= 0 || n > 512) peer_die("text %d has %d tokens", t, n);
            if (p == 0) {
                fprintf(txt, "text %d tokens (%d):", t, n);
                for (int i = 0; i < n; i++) fprintf(txt, " %d", ids[i]);
                fprintf(txt, "\n");
            }
            llama_memory_clear(llama_get_memory(ctx), true);
            struct llama_batch batch = llama_batch_init(n, 0, 1);
            for (int i = 0; i < n; i++) {
                batch.token[i] = ids[i];
                batch.pos[i] = i;
                batch.n_seq_id[i] = 1;
                batch.seq_id[i][0] = 0;
                batch.logits[i] = 1;
            }
            batch.n_tokens = n;
            if (llama_decode(ctx, batch)) peer_die("llama_decode failed on text %d", t);
            const float * e = llama_get_embeddings_seq(ctx, 0);
            if (!e) peer_die("no pooled embedding for text %d", t);
            if (fwrite(e, sizeof(float), (size_t) n_embd, f) != (size_t) n_embd) peer_die("cannot write %s", path);
            llama_batch_free(batch);
            free(ids);
        }
        fclose(f);
        llama_free(ctx);
        peer_free_threadpool(tp);
    }
    fclose(txt);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
