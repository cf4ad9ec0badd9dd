/* The synthetic test models of tests/data/engine (see its README): synth's F32 file
 * rewritten into a model with spread logits (tu_syn_rewrite), and llama.cpp's
 * references for it (tu_syn_ref_load). Header-only and free of Criterion, so the
 * cross-compiled NEON model test uses it too. Needs qfit/gguf.h and qfit/quant.h. */
#ifndef QFIT_SYNMODEL_H
#define QFIT_SYNMODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/gguf.h"
#include "qfit/quant.h"
#include "refparse.h"

#define TU_SYN_SEED 7       /* synth seed of the test models */
#define TU_SYN_PROMPTS 3
#define TU_SYN_GREEDY 16
#define TU_SYN_VOCAB 512

static inline uint64_t tu_syn_mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline bool tu_syn_ends_with(const char *s, size_t n, const char *suf)
{
    const size_t m = strlen(suf);
    return n >= m && memcmp(s + n - m, suf, m) == 0;
}

static inline bool tu_syn_contains(const char *s, size_t n, const char *sub)
{
    const size_t m = strlen(sub);
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(s + i, sub, m) == 0) return true;
    return false;
}

#ifndef TU_SYN_POST_NORM
#define TU_SYN_POST_NORM 6.0
#endif
#ifndef TU_SYN_GPT_OSS_FFN_NORM
#define TU_SYN_GPT_OSS_FFN_NORM 4.0
#endif

/* synth's F32 file -> the test model: every matrix (and expert stack) x 4, every bias
 * x 25, every *_norm.weight 1 + 0.5 u (post-norms 6 (1 + 0.5 u), gpt-oss's FFN norm 4 (1 + 0.5 u)) (u uniform in [-1, 1] from a hash of the name and
 * index), rope_freqs.weight[i] = 1 + 0.3 ((7 i) mod 11), LongRoPE's rope_factors_long[i] =
 * 1 + 0.5 ((5 i) mod 13) and rope_factors_short[i] = 1 + 0.2 ((3 i) mod 7), attention sinks
 * 3 u. 0, or -1 with a message. */
static inline int tu_syn_rewrite(const char *in, const char *out, char *err, size_t err_len)
{
    qfit_gguf *g = qfit_gguf_open(in, err, err_len);
    if (!g) return -1;
    qfit_gguf_writer *w = qfit_gguf_writer_new();
    int rc = -1;
    if (!w || qfit_gguf_copy_all_kv(w, g) != 0) { snprintf(err, err_len, "cannot copy the metadata"); goto out; }
    /* gpt-oss's post_attention_norm is its FFN's input norm: TU_SYN_GPT_OSS_FFN_NORM x,
     * enough to put a share of the experts' gate and up values past their clamp at 7 */
    char arch[32] = "";
    qfit_gguf_get_string(g, "general.architecture", arch, sizeof arch);
    const double post_norm = strcmp(arch, "gpt-oss") == 0 ? TU_SYN_GPT_OSS_FFN_NORM : TU_SYN_POST_NORM;
    const int64_t nt = qfit_gguf_n_tensors(g);
    for (int64_t i = 0; i < nt; i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        if (t->type != QFIT_TYPE_F32) { snprintf(err, err_len, "%s is not F32", name); goto out; }
        if (qfit_gguf_add_tensor(w, name, t->n_dims, t->ne, QFIT_TYPE_F32) != 0) {
            snprintf(err, err_len, "cannot add %s", name);
            goto out;
        }
    }
    if (qfit_gguf_writer_begin(w, out, err, err_len) != 0) goto out;
    for (int64_t i = 0; i < nt; i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        const int64_t n = qfit_gguf_tensor_nelements(t);
        float *x = malloc((size_t)n * sizeof *x);
        if (!x) { snprintf(err, err_len, "out of memory"); goto out; }
        memcpy(x, t->data, (size_t)n * sizeof *x);
        const char *nm = t->name.data;
        const size_t len = t->name.len;
        uint64_t h = 0xcbf29ce484222325ULL;
        for (size_t c = 0; c < len; c++) { h ^= (unsigned char)nm[c]; h *= 0x100000001b3ULL; }
        if (tu_syn_ends_with(nm, len, "_norm.weight")) {
            /* post-norms (Gemma) 6x: the layers' outputs then outweigh the scaled token
             * embedding, which the tied output would otherwise simply repeat */
            const double post = tu_syn_contains(nm, len, ".post_") ? post_norm : 1.0;
            for (int64_t j = 0; j < n; j++) {
                const double u = (double)(tu_syn_mix64(h ^ (uint64_t)j) >> 11) / 9007199254740992.0 * 2.0 - 1.0;
                x[j] = (float)(post * (1.0 + 0.5 * u));
            }
        } else if (tu_syn_ends_with(nm, len, ".attn_sinks.weight")) {
            /* attention sinks (gpt-oss): logits 3 u, as large as the scores, so that they
             * take a visible share of each softmax */
            for (int64_t j = 0; j < n; j++)
                x[j] = (float)(3.0 * ((double)(tu_syn_mix64(h ^ (uint64_t)j) >> 11) / 9007199254740992.0 * 2.0 - 1.0));
        } else if (len == 17 && memcmp(nm, "rope_freqs.weight", 17) == 0) {
            for (int64_t j = 0; j < n; j++) x[j] = 1.0f + 0.3f * (float)((7 * j) % 11);
        } else if (len == 24 && memcmp(nm, "rope_factors_long.weight", 24) == 0) {
            for (int64_t j = 0; j < n; j++) x[j] = 1.0f + 0.5f * (float)((5 * j) % 13);
        } else if (len == 25 && memcmp(nm, "rope_factors_short.weight", 25) == 0) {
            for (int64_t j = 0; j < n; j++) x[j] = 1.0f + 0.2f * (float)((3 * j) % 7);
        } else if (tu_syn_ends_with(nm, len, ".bias")) {
            for (int64_t j = 0; j < n; j++) x[j] *= 25.0f;
        } else if (t->n_dims == 2u || t->n_dims == 3u) {   /* matrices, and the experts' stacks */
            for (int64_t j = 0; j < n; j++) x[j] *= 4.0f;
        } else {
            snprintf(err, err_len, "unexpected tensor %.*s", (int)len, nm);
            free(x);
            goto out;
        }
        const int wr = qfit_gguf_writer_write_tensor(w, x, (size_t)n * sizeof *x, err, err_len);
        free(x);
        if (wr != 0) goto out;
    }
    if (qfit_gguf_writer_finish(w, err, err_len) != 0) goto out;
    rc = 0;
out:
    qfit_gguf_writer_free(w);
    qfit_gguf_close(g);
    return rc;
}

typedef struct {
    int32_t prompt[128];
    int     n_prompt;
    int32_t greedy[TU_SYN_GREEDY];
    float   margin[TU_SYN_GREEDY];   /* llama.cpp's top-1 minus top-2 logit at each greedy step */
    float   logits[TU_SYN_VOCAB];    /* of the last prompt position */
} tu_syn_ref;

/* Reads DIR/SHAPE.VARIANT.pK.{txt,f32}; 0, or -1 with a message. */
static inline int tu_syn_ref_load(const char *dir, const char *shape, const char *variant, int k, tu_syn_ref *r,
                                  char *err, size_t err_len)
{
    char path[512];
    snprintf(path, sizeof path, "%.300s/%.64s.%.16s.p%d.txt", dir, shape, variant, k);
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, err_len, "cannot read %.400s", path); return -1; }
    static char txt[16384];
    const size_t n = fread(txt, 1, sizeof txt - 1, f);
    fclose(f);
    txt[n] = 0;
    r->n_prompt = tu_parse_ids(txt, "prompt tokens", r->prompt, 128);
    if (r->n_prompt <= 0 || tu_parse_ids(txt, "greedy (", r->greedy, TU_SYN_GREEDY) != TU_SYN_GREEDY ||
        tu_parse_floats(txt, "margins (", r->margin, TU_SYN_GREEDY) != TU_SYN_GREEDY) {
        snprintf(err, err_len, "%.400s: malformed (prompt, greedy and margins lines expected)", path);
        return -1;
    }
    snprintf(path, sizeof path, "%.300s/%.64s.%.16s.p%d.f32", dir, shape, variant, k);
    f = fopen(path, "rb");
    if (!f) { snprintf(err, err_len, "cannot read %.400s", path); return -1; }
    const size_t got = fread(r->logits, 1, sizeof r->logits, f);
    const int extra = fgetc(f);
    fclose(f);
    if (got != sizeof r->logits || extra != EOF) {
        snprintf(err, err_len, "%.400s: not %d floats", path, TU_SYN_VOCAB);
        return -1;
    }
    return 0;
}

#endif
