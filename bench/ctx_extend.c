/* ctx-extend — a copy of a GGUF model with its context stretched by linear RoPE
 * interpolation ("position interpolation"): <arch>.context_length times FACTOR,
 * <arch>.rope.scaling.type = linear, <arch>.rope.scaling.factor = FACTOR.
 * Tensors are copied byte for byte.
 *
 *   ctx-extend IN.gguf OUT.gguf FACTOR
 *
 * Used by BENCHMARKS.md to measure the cost of quantized KV caches on long
 * chunks of real text: the shared model was trained at 512 tokens and nothing
 * in ../shared has a longer context. The extended model is not fine-tuned, so
 * its perplexity is worse than at 512; what is measured is the difference
 * between cache types on the same model (KL-divergence against the f16
 * cache), and that qfit and llama.cpp read the scaled model alike.
 * Build: cc -O2 -Iinclude -Isrc bench/ctx_extend.c build/release/libqfit.a -lm -lpthread */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/gguf.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: ctx-extend IN.gguf OUT.gguf FACTOR\n");
        return 2;
    }
    char *end;
    const double factor = strtod(argv[3], &end);
    if (*end || !(factor >= 1.0 && factor <= 1024.0)) {
        fprintf(stderr, "ctx-extend: FACTOR must be a number in [1, 1024]\n");
        return 2;
    }
    char err[512], arch[64], key[128];
    qfit_gguf *g = qfit_gguf_open(argv[1], err, sizeof err);
    if (!g) {
        fprintf(stderr, "ctx-extend: %s\n", err);
        return 1;
    }
    int rc = 1;
    qfit_gguf_writer *w = qfit_gguf_writer_new();
    if (!w) goto out;
    if (!qfit_gguf_get_string(g, "general.architecture", arch, sizeof arch)) {
        fprintf(stderr, "ctx-extend: no general.architecture\n");
        goto out;
    }
    snprintf(key, sizeof key, "%s.context_length", arch);
    const int64_t n_ctx = qfit_gguf_get_int_or(g, key, -1);
    if (n_ctx < 1) {
        fprintf(stderr, "ctx-extend: no %s\n", key);
        goto out;
    }
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    char stype[32] = "none";
    if (qfit_gguf_find_key(g, key) >= 0 && (!qfit_gguf_get_string(g, key, stype, sizeof stype) || strcmp(stype, "none"))) {
        fprintf(stderr, "ctx-extend: the model already has RoPE scaling '%s'\n", stype);
        goto out;
    }
    if (qfit_gguf_copy_all_kv(w, g) != 0) goto out;
    snprintf(key, sizeof key, "%s.context_length", arch);
    const uint32_t new_ctx = (uint32_t)((double)n_ctx * factor + 0.5);
    if (qfit_gguf_set_u32(w, key, new_ctx) != 0) goto out;
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    if (qfit_gguf_set_str(w, key, "linear") != 0) goto out;
    snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
    if (qfit_gguf_set_f32(w, key, (float)factor) != 0) goto out;
    const int64_t nt = qfit_gguf_n_tensors(g);
    for (int64_t i = 0; i < nt; i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        if (qfit_gguf_add_tensor(w, name, t->n_dims, t->ne, t->type) != 0) goto out;
    }
    if (qfit_gguf_writer_begin(w, argv[2], err, sizeof err) != 0) {
        fprintf(stderr, "ctx-extend: %s\n", err);
        goto out;
    }
    for (int64_t i = 0; i < nt; i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        if (qfit_gguf_writer_write_tensor(w, t->data, t->nbytes, err, sizeof err) != 0) {
            fprintf(stderr, "ctx-extend: %s\n", err);
            goto out;
        }
    }
    if (qfit_gguf_writer_finish(w, err, sizeof err) != 0) {
        fprintf(stderr, "ctx-extend: %s\n", err);
        goto out;
    }
    printf("%s: context %lld -> %u, linear RoPE scaling x%g\n", argv[2], (long long)n_ctx, new_ctx, factor);
    rc = 0;
out:
    qfit_gguf_writer_free(w);
    qfit_gguf_close(g);
    return rc;
}
