/* Suite `encoder`: the embedding encoders bert and nomic-bert (llama.cpp's
 * llm_build_bert) against llama.cpp on synthetic models.
 *
 * Models: `qfit synth` shapes tiny-bert (position embeddings, Q/K/V and FFN biases,
 * GELU FFN) and tiny-nomic-bert (fused QKV, NeoX RoPE base 1000, SwiGLU FFN), F32, seed
 * 7, rewritten by tests/util/synmodel.h so that the outputs spread (matrices x 4,
 * biases x 25, norm weights 1 + 0.5u). Their FNV-1a checksums are asserted first, so a
 * change in synth or the rewrite is reported as such, not as a mismatch.
 * References (tests/data/encoder, README.md there; make-refs.sh regenerates them):
 * llama.cpp's pooled (mean) embeddings of the same files from peer-embd.c: token-id
 * inputs of 6, 17 and 41 tokens each alone ([CLS] ... [SEP]), the three in one batch as
 * three sequences, and four texts tokenized by llama.cpp (batch).
 * Tolerances (on the L2-normalised vectors, entries ~0.09 rms): cosine >= 0.9999 and
 * max |diff| <= 2e-4 everywhere (measured <= 5e-5): a causal mask, a missing token type
 * row, position embedding or bias, or the wrong RoPE move the vectors by 0.025 .. 0.13.
 * Where llama.cpp ran qfit's default arithmetic (a batch on F16 K/V), max |diff| <= 5e-6
 * (measured <= 1.2e-6): a GELU without ggml's f16 table (1.4e-5), an erf GELU (3e-5) or
 * LayerNorm eps 1e-5 (1.9e-5) fail it. The README lists the breaks tried. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/embed.h"
#include "qfit/gguf.h"
#include "qfit/model.h"
#include "qfit/quantize.h"
#include "qfit/synth.h"
#include "qfit/tokenizer.h"
#include "util/synmodel.h"
#include "util/testutil.h"

#define DATA "tests/data/encoder/"
#define MAX_COS_GAP 1e-4    /* 1 - cosine */
#define MAX_DIFF 2e-4       /* max |diff| of the normalised vectors */
#define MAX_DIFF_EXACT 5e-6 /* the same where llama.cpp ran qfit's default arithmetic (see below) */
#define N_PROMPTS 3
static const int PROMPT_LEN[N_PROMPTS] = { 6, 17, 41 };
/* the texts of make-refs.sh, in the same order */
static const char *const TEXTS[] = {
    "hello world",
    "The quick brown fox jumped over the lazy dog.",
    "search query: what is a document?",
    "Text 123, tested!",
};
#define N_TEXTS 4

typedef struct {
    const char *shape;
    uint64_t synth_sum;   /* FNV-1a 64 of qfit synth's F32 file */
    uint64_t model_sum;   /* of the rewritten file */
} enc_case;

static const enc_case CASES[] = {
    { "tiny-bert", 0x650aaf5977b8d530ULL, 0x70d7ad2a5a0b2440ULL },
    { "tiny-nomic-bert", 0x274eacab74918e25ULL, 0xfe0c8c4be29f225dULL },
};

static bool report(void) { return getenv("QFIT_ENCODER_REPORT") != NULL; }

/* prompt k of length len: [CLS], ids 104 + (97 j + 131 k + 11) mod 408, [SEP] */
static int prompt(int k, int len, int32_t *ids)
{
    ids[0] = 101;
    for (int j = 1; j < len - 1; j++) ids[j] = 104 + (97 * j + 131 * k + 11) % 408;
    ids[len - 1] = 102;
    return len;
}

/* synth's file rewritten (tests/util/synmodel.h) into tu_tmpdir(); its path in out.
 * QFIT_ENCODER_SAVE_DIR=dir keeps a copy there (make-refs.sh). */
static void make_model(const enc_case *ec, char *out, size_t cap)
{
    char raw[600], err[256];
    snprintf(raw, sizeof raw, "%s/%s-synth.gguf", tu_tmpdir(), ec->shape);
    snprintf(out, cap, "%s/%s-f32.gguf", tu_tmpdir(), ec->shape);
    qfit_synth_params sp;
    memset(&sp, 0, sizeof sp);
    sp.shape = qfit_synth_find_shape(ec->shape);
    cr_assert_not_null(sp.shape, "synth has no shape %s", ec->shape);
    sp.ftype = QFIT_FTYPE_ALL_F32;
    sp.seed = TU_SYN_SEED;
    sp.n_threads = 2;
    cr_assert_eq(qfit_synth_write(raw, &sp, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tu_syn_rewrite(raw, out, err, sizeof err), 0, "%s", err);
    const uint64_t h0 = tu_fnv1a_file(raw), h1 = tu_fnv1a_file(out);
    if (report()) fprintf(stderr, "encoder: %s sums 0x%016llx 0x%016llx\n", ec->shape, (unsigned long long)h0,
                          (unsigned long long)h1);
    cr_assert_eq(h0, ec->synth_sum, "%s: qfit synth's output changed (FNV-1a 0x%016llx): regenerate the "
                 "references (tests/data/encoder/README.md)", ec->shape, (unsigned long long)h0);
    cr_assert_eq(h1, ec->model_sum, "%s: the rewritten model changed (FNV-1a 0x%016llx)", ec->shape,
                 (unsigned long long)h1);
    const char *dir = getenv("QFIT_ENCODER_SAVE_DIR");
    if (dir && *dir) {
        char cmd[1400];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s/'", out, dir);
        int st;
        free(tu_run(cmd, &st));
        cr_assert_eq(st, 0, "%s", cmd);
    }
}

/* the reference DATA shape.name.f32: n vectors of E floats, normalised in place */
static float *read_ref(const char *shape, const char *name, int n, int E)
{
    char path[256];
    snprintf(path, sizeof path, DATA "%s.%s.f32", shape, name);
    size_t size = 0;
    float *r = tu_read_file(path, &size);
    cr_assert(r, "cannot read %s", path);
    cr_assert_eq(size, (size_t)n * (size_t)E * sizeof(float), "%s: %zu bytes", path, size);
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int d = 0; d < E; d++) s += (double)r[i * E + d] * r[i * E + d];
        for (int d = 0; d < E; d++) r[i * E + d] = (float)(r[i * E + d] / sqrt(s));
    }
    return r;
}

/* a normalised vector vs the reference: cosine and max |diff| */
static void compare(const float *v, const float *ref, int E, double max_diff, const char *what)
{
    double ab = 0, aa = 0, bb = 0, md = 0;
    for (int d = 0; d < E; d++) {
        ab += (double)v[d] * ref[d];
        aa += (double)v[d] * v[d];
        bb += (double)ref[d] * ref[d];
        if (fabs((double)v[d] - ref[d]) > md) md = fabs((double)v[d] - ref[d]);
    }
    const double cos = ab / sqrt(aa * bb);
    if (report()) fprintf(stderr, "encoder: %s: 1 - cos %.3g, max |diff| %.3g\n", what, 1 - cos, md);
    cr_expect_geq(cos, 1 - MAX_COS_GAP, "%s: cosine %.8f vs llama.cpp", what, cos);
    cr_expect_leq(md, max_diff, "%s: max |diff| %.3g vs llama.cpp (at most %g)", what, md, max_diff);
}

static qfit_context *new_ctx(const qfit_model *m, int n_seq, int flash, int kv_type)
{
    qfit_context_params cp = qfit_context_default_params();
    cp.n_threads = 2;
    cp.n_seq = n_seq;
    cp.flash_attn = flash;
    cp.type_k = cp.type_v = kv_type;
    cp.embeddings = true;
    char err[256] = "";
    qfit_context *c = qfit_context_new(m, &cp, err, sizeof err);
    cr_assert(c, "%s", err);
    return c;
}

/* Mean of rows row0 .. row0+n-1 of the last decode, normalised into v. */
static void pool_mean(const qfit_context *c, int row0, int n, int E, float *v)
{
    double *s = calloc((size_t)E, sizeof *s), ss = 0;
    for (int j = 0; j < n; j++) {
        const float *r = qfit_get_embeddings(c, row0 + j);
        cr_assert_not_null(r);
        for (int d = 0; d < E; d++) s[d] += r[d];
    }
    for (int d = 0; d < E; d++) ss += s[d] * s[d];
    for (int d = 0; d < E; d++) v[d] = (float)(s[d] / sqrt(ss));
    free(s);
}

/* Token-id inputs, alone and as one batch of three sequences, on the flash and plain
 * attention paths and F16 / F32 K/V caches. */
static void check_ids(const enc_case *ec)
{
    char path[700], err[256] = "";
    make_model(ec, path, sizeof path);
    qfit_model *m = qfit_model_load(path, err, sizeof err);
    cr_assert(m, "%s", err);
    const int E = qfit_model_hparams(m)->n_embd;
    float *v = malloc((size_t)E * sizeof *v);
    int32_t ids[N_PROMPTS][64];
    float *refs[N_PROMPTS];
    for (int k = 0; k < N_PROMPTS; k++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", k);
        refs[k] = read_ref(ec->shape, name, 1, E);
        prompt(k, PROMPT_LEN[k], ids[k]);
    }
    float *batch_ref = read_ref(ec->shape, "batch", N_PROMPTS, E);
    static const struct { int flash, kv; const char *name; } variants[] = {
        { 1, QFIT_TYPE_F16, "flash, f16 K/V" }, { 0, QFIT_TYPE_F16, "plain, f16 K/V" },
        { 1, QFIT_TYPE_F32, "flash, f32 K/V" }, { 0, QFIT_TYPE_F32, "plain, f32 K/V" },
    };
    for (size_t vi = 0; vi < sizeof variants / sizeof *variants; vi++) {
        qfit_context *c = new_ctx(m, N_PROMPTS, variants[vi].flash, variants[vi].kv);
        char what[128];
        for (int k = 0; k < N_PROMPTS; k++) {
            qfit_context_reset(c);
            cr_assert_eq(qfit_decode(c, ids[k], PROMPT_LEN[k], 0), 0, "%s", qfit_context_error(c));
            cr_assert_eq(qfit_n_logits(c), PROMPT_LEN[k]);
            pool_mean(c, 0, PROMPT_LEN[k], E, v);
            snprintf(what, sizeof what, "%s p%d (%d ids), %s", ec->shape, k, PROMPT_LEN[k], variants[vi].name);
            compare(v, refs[k], E, MAX_DIFF, what);
        }
        /* the three in one pass, each its own sequence */
        int32_t tok[128];
        int seq[128], n = 0;
        for (int k = 0; k < N_PROMPTS; k++)
            for (int j = 0; j < PROMPT_LEN[k]; j++, n++) { tok[n] = ids[k][j]; seq[n] = k; }
        bool want[128];
        for (int j = 0; j < n; j++) want[j] = true;
        qfit_context_reset(c);
        const qfit_batch b = { .n_tokens = n, .token = tok, .seq = seq, .logits = want };
        cr_assert_eq(qfit_decode_batch(c, &b), 0, "%s", qfit_context_error(c));
        for (int k = 0, row = 0; k < N_PROMPTS; row += PROMPT_LEN[k], k++) {
            pool_mean(c, row, PROMPT_LEN[k], E, v);
            snprintf(what, sizeof what, "%s batch sequence %d, %s", ec->shape, k, variants[vi].name);
            /* llama.cpp ran this batch with flash attention on F16 K/V, as qfit's default:
             * sequences 1 and 2 agree to 1.2e-6 there, and a tanh GELU without the f16
             * table (1.4e-5), an erf GELU (3e-5) or LayerNorm eps 1e-5 (1.9e-5) do not.
             * Sequence 0 (6 tokens) and the single runs (llama.cpp's F32 K/V path) sit
             * at 1.6e-5 .. 5e-5: the coarse tolerance only. */
            const bool exact = variants[vi].kv == QFIT_TYPE_F16 && k >= 1;
            compare(v, batch_ref + (size_t)k * E, E, exact ? MAX_DIFF_EXACT : MAX_DIFF, what);
        }
        /* the same, interleaved (one token of each sequence in turn): every attention run
         * is one token long (the decode paths), each still seeing its whole sequence */
        int pos[N_PROMPTS] = { 0 };
        n = 0;
        for (int left = 1; left;) {
            left = 0;
            for (int k = 0; k < N_PROMPTS; k++)
                if (pos[k] < PROMPT_LEN[k]) { tok[n] = ids[k][pos[k]++]; seq[n++] = k; left = 1; }
        }
        qfit_context_reset(c);
        cr_assert_eq(qfit_decode_batch(c, &b), 0, "%s", qfit_context_error(c));
        for (int k = 0; k < N_PROMPTS; k++) {
            double *sum = calloc((size_t)E, sizeof *sum), ss = 0;
            for (int j = 0; j < n; j++)
                if (seq[j] == k)
                    for (int d = 0; d < E; d++) sum[d] += qfit_get_embeddings(c, j)[d];
            for (int d = 0; d < E; d++) ss += sum[d] * sum[d];
            for (int d = 0; d < E; d++) v[d] = (float)(sum[d] / sqrt(ss));
            free(sum);
            snprintf(what, sizeof what, "%s interleaved sequence %d, %s", ec->shape, k, variants[vi].name);
            compare(v, batch_ref + (size_t)k * E, E, MAX_DIFF, what);
        }
        qfit_context_free(c);
    }
    for (int k = 0; k < N_PROMPTS; k++) free(refs[k]);
    free(batch_ref);
    free(v);
    qfit_model_free(m);
}

Test(encoder, bert_vs_llama_cpp) { check_ids(&CASES[0]); }
Test(encoder, nomic_bert_vs_llama_cpp) { check_ids(&CASES[1]); }

/* Texts through qfit_embed (WordPiece with [CLS]/[SEP], mean pooling from the GGUF,
 * normalised) against llama.cpp's: token ids equal, vectors within the tolerance. */
static void check_texts(const enc_case *ec)
{
    char path[700], err[256] = "";
    make_model(ec, path, sizeof path);
    qfit_model *m = qfit_model_load(path, err, sizeof err);
    cr_assert(m, "%s", err);
    qfit_tokenizer *t = qfit_tokenizer_from_gguf(qfit_model_gguf(m), err, sizeof err);
    cr_assert(t, "%s", err);
    const int E = qfit_model_hparams(m)->n_embd;
    float *ref = read_ref(ec->shape, "text", N_TEXTS, E);
    /* llama.cpp's token counts (the .txt next to the vectors) */
    char txt[256];
    snprintf(txt, sizeof txt, DATA "%s.text.txt", ec->shape);
    char *info = tu_read_file(txt, &(size_t){ 0 });
    cr_assert(info, "cannot read %s", txt);
    for (int n_seq = 1; n_seq <= N_TEXTS; n_seq += N_TEXTS - 1) {   /* one input per pass, and all in one */
        qfit_context *c = new_ctx(m, n_seq, -1, QFIT_TYPE_F16);
        qfit_set_embeddings(c, false);   /* qfit_embed switches it on, and back */
        float *out = malloc((size_t)N_TEXTS * E * sizeof *out);
        qfit_embed_item items[N_TEXTS];
        cr_assert_eq(qfit_embed(c, t, TEXTS, N_TEXTS, NULL, out, items, NULL, err, sizeof err), 0, "%s", err);
        for (int i = 0; i < N_TEXTS; i++) {
            char want[32], what[160];
            snprintf(want, sizeof want, "tokens %d (%d):", i, items[i].n_tokens);
            cr_expect(strstr(info, want), "%s text %d: %d tokens, llama.cpp's differ (%s)", ec->shape, i,
                      items[i].n_tokens, txt);
            snprintf(what, sizeof what, "%s text %d, n_seq %d", ec->shape, i, n_seq);
            compare(out + (size_t)i * E, ref + (size_t)i * E, E, MAX_DIFF, what);
        }
        free(out);
        qfit_context_free(c);
    }
    free(info);
    free(ref);
    qfit_tokenizer_free(t);
    qfit_model_free(m);
}

Test(encoder, bert_texts_vs_llama_cpp) { check_texts(&CASES[0]); }
Test(encoder, nomic_bert_texts_vs_llama_cpp) { check_texts(&CASES[1]); }

/* `qfit embed` on tiny-bert prints llama.cpp's vector for the same text. */
Test(encoder, cli_embed_vs_llama_cpp)
{
    char path[700];
    make_model(&CASES[0], path, sizeof path);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s embed '%s' '%s' --threads 2", tu_qfit_bin(), path, TEXTS[1]);
    int st;
    char *out = tu_run(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    const char *p = strstr(out, "\"embeddings\": [[");
    cr_assert(p, "%s", out);
    p += strlen("\"embeddings\": [[");
    const int E = 128;
    float v[128];
    for (int d = 0; d < E; d++) {
        char *end;
        v[d] = strtof(p, &end);
        cr_assert(end != p, "value %d missing in %s", d, out);
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    cr_assert_eq(*p, ']', "more than %d values", E);
    float *ref = read_ref(CASES[0].shape, "text", N_TEXTS, E);
    compare(v, ref + E, E, MAX_DIFF, "qfit embed tiny-bert text 1");
    free(ref);
    free(out);
}

/* The encoder contract (model.h): no logits, whole inputs in one pass, empty sequences. */
Test(encoder, contract_errors)
{
    char path[700], err[256] = "";
    make_model(&CASES[0], path, sizeof path);
    qfit_model *m = qfit_model_load(path, err, sizeof err);
    cr_assert(m, "%s", err);
    qfit_context *c = new_ctx(m, 1, -1, QFIT_TYPE_F16);
    cr_expect_eq(qfit_context_n_batch(c), 512, "an encoder's default n_batch is n_ctx");
    int32_t ids[64];
    prompt(0, 17, ids);
    /* logits mode */
    qfit_set_embeddings(c, false);
    cr_expect_eq(qfit_decode(c, ids, 17, 16), -1);
    cr_expect_eq(qfit_context_status(c), QFIT_E_UNSUPPORTED);
    cr_expect(strstr(qfit_context_error(c), "no logits"), "%s", qfit_context_error(c));
    /* a second call on a sequence that holds positions */
    qfit_set_embeddings(c, true);
    cr_assert_eq(qfit_decode(c, ids, 17, 0), 0, "%s", qfit_context_error(c));
    cr_expect_eq(qfit_decode(c, ids, 5, 0), -1);
    cr_expect(strstr(qfit_context_error(c), "already holds 17 positions"), "%s", qfit_context_error(c));
    qfit_context_free(c);
    /* more tokens than one pass */
    qfit_context_params cp = qfit_context_default_params();
    cp.n_threads = 2;
    cp.n_batch = 8;
    cp.embeddings = true;
    c = qfit_context_new(m, &cp, err, sizeof err);
    cr_assert(c, "%s", err);
    cr_expect_eq(qfit_decode(c, ids, 17, 16), -1);
    cr_expect(strstr(qfit_context_error(c), "17 tokens in one call, more than n_batch = 8"), "%s",
              qfit_context_error(c));
    cr_expect_eq(qfit_context_status(c), QFIT_E_INVALID);
    /* qfit_embed hands an encoder each input whole: the same error, not a split input */
    qfit_tokenizer *t = qfit_tokenizer_from_gguf(qfit_model_gguf(m), err, sizeof err);
    cr_assert(t, "%s", err);
    float v[128];
    cr_expect_eq(qfit_embed(c, t, &TEXTS[1], 1, NULL, v, NULL, NULL, err, sizeof err), -1);
    cr_expect(strstr(err, "21 tokens in one call, more than n_batch = 8"), "%s", err);
    qfit_tokenizer_free(t);
    qfit_context_free(c);
    qfit_model_free(m);
}

/* The descriptors' facts (model.h qfit_arch_info) the forward pass and the planner read,
 * and the hyperparameters of the encoder keys. */
Test(encoder, arch_facts)
{
    const qfit_arch_info *b = qfit_arch_find("bert"), *n = qfit_arch_find("nomic-bert");
    cr_assert(b && n);
    cr_expect(b->embd_only && b->post_norm && b->non_causal && b->norm == QFIT_NORM_LAYER);
    cr_expect(b->ffn_act == QFIT_FFN_GELU && b->pos == QFIT_POS_ABSOLUTE);
    cr_expect(n->embd_only && n->post_norm && n->non_causal && n->norm == QFIT_NORM_LAYER);
    cr_expect(n->ffn_act == QFIT_FFN_SWIGLU && n->pos == QFIT_POS_ROPE && n->rope_type == QFIT_ROPE_NEOX);
    const qfit_arch_info *l = qfit_arch_find("llama");
    cr_expect(!l->embd_only && !l->post_norm && !l->non_causal && l->norm == QFIT_NORM_RMS);
    char path[700], err[256] = "";
    make_model(&CASES[1], path, sizeof path);
    qfit_model *m = qfit_model_load(path, err, sizeof err);
    cr_assert(m, "%s", err);
    const qfit_hparams *hp = qfit_model_hparams(m);
    cr_expect(hp->non_causal);
    cr_expect_float_eq(hp->norm_eps, 1e-12f, 1e-18f);
    cr_expect_float_eq(hp->rope_freq_base, 1000.0f, 1e-3f);
    cr_expect_eq(hp->n_rot, 32);
    qfit_model_free(m);
    make_model(&CASES[0], path, sizeof path);
    m = qfit_model_load(path, err, sizeof err);
    cr_assert(m, "%s", err);
    cr_expect_eq(qfit_model_hparams(m)->n_rot, 0, "bert has no RoPE");
    qfit_model_free(m);
}

/* `qfit plan` on an encoder file: weights, KV cache and compute sizes, batch = context. */
Test(encoder, plan_runs)
{
    char path[700];
    make_model(&CASES[1], path, sizeof path);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s plan '%s'", tu_qfit_bin(), path);
    int st;
    char *out = tu_run(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "nomic-bert"), "%s", out);
    cr_expect(strstr(out, "batch 512"), "an encoder's batch is its context (512): %s", out);
    cr_expect(strstr(out, "weights ") && strstr(out, "compute "), "%s", out);
    free(out);
}

/* A copy of in without the key `drop_key` (NULL: none), with {arch}.attention.causal set
 * to `causal` (< 0: unchanged) and without the tensor `drop_tensor` (NULL: none). */
static void copy_edit(const char *in, const char *out, const char *drop_key, int causal, const char *drop_tensor)
{
    char err[256] = "";
    qfit_gguf *g = qfit_gguf_open(in, err, sizeof err);
    cr_assert(g, "%s", err);
    qfit_gguf_writer *w = qfit_gguf_writer_new();
    cr_assert_eq(qfit_gguf_copy_all_kv(w, g), 0);
    if (drop_key) cr_assert_eq(qfit_gguf_remove_key(w, drop_key), 0, "%s", drop_key);
    if (causal >= 0) cr_assert_eq(qfit_gguf_set_bool(w, "bert.attention.causal", causal), 0);
    for (int64_t i = 0; i < qfit_gguf_n_tensors(g); i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        if (drop_tensor && !strcmp(name, drop_tensor)) continue;
        cr_assert_eq(qfit_gguf_add_tensor(w, name, t->n_dims, t->ne, t->type), 0);
    }
    cr_assert_eq(qfit_gguf_writer_begin(w, out, err, sizeof err), 0, "%s", err);
    for (int64_t i = 0; i < qfit_gguf_n_tensors(g); i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        if (drop_tensor && strlen(drop_tensor) == t->name.len && !memcmp(drop_tensor, t->name.data, t->name.len))
            continue;
        cr_assert_eq(qfit_gguf_writer_write_tensor(w, t->data, t->nbytes, err, sizeof err), 0, "%s", err);
    }
    cr_assert_eq(qfit_gguf_writer_finish(w, err, sizeof err), 0, "%s", err);
    qfit_gguf_writer_free(w);
    qfit_gguf_close(g);
}

/* Loading: the encoder keys and tensors that are required are named when missing;
 * attention.causal true is honoured (llama.cpp reads it too); token_types is optional. */
Test(encoder, load_checks)
{
    char path[700], edited[800], err[256] = "";
    make_model(&CASES[0], path, sizeof path);
    snprintf(edited, sizeof edited, "%s/edited.gguf", tu_tmpdir());
    static const struct { const char *key, *tensor, *msg; } bad[] = {
        { "bert.attention.layer_norm_epsilon", NULL, "missing bert.attention.layer_norm_epsilon" },
        { NULL, "token_embd_norm.bias", "missing tensor 'token_embd_norm.bias'" },
        { NULL, "position_embd.weight", "missing tensor 'position_embd.weight'" },
        { NULL, "blk.1.layer_output_norm.bias", "missing tensor 'blk.1.layer_output_norm.bias'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        copy_edit(path, edited, bad[i].key, -1, bad[i].tensor);
        err[0] = 0;
        qfit_model *m = qfit_model_load(edited, err, sizeof err);
        cr_expect_null(m, "%s loaded", bad[i].msg);
        cr_expect(strstr(err, bad[i].msg), "want \"%s\", got \"%s\"", bad[i].msg, err);
        qfit_model_free(m);
    }
    /* causal: true -> causal attention: the first token's row no longer sees the others */
    const int E = 128;
    int32_t ids[64];
    prompt(1, 17, ids);
    float first[2][128];
    for (int causal = 0; causal <= 1; causal++) {
        copy_edit(path, edited, NULL, causal, NULL);
        qfit_model *m = qfit_model_load(edited, err, sizeof err);
        cr_assert(m, "%s", err);
        cr_expect_eq(qfit_model_hparams(m)->non_causal, !causal);
        qfit_context *c = new_ctx(m, 1, -1, QFIT_TYPE_F32);
        cr_assert_eq(qfit_decode(c, ids, 17, 0), 0, "%s", qfit_context_error(c));
        memcpy(first[causal], qfit_get_embeddings(c, 0), sizeof first[causal]);
        qfit_context_free(c);
        qfit_model_free(m);
    }
    double d = 0;
    for (int i = 0; i < E; i++) d = fmax(d, fabs((double)first[0][i] - first[1][i]));
    cr_expect_gt(d, 1e-2, "attention.causal true changes nothing (%g)", d);
    /* no token_types: loads, and the vectors change (llama.cpp adds the row only when present) */
    copy_edit(path, edited, NULL, -1, "token_types.weight");
    qfit_model *m = qfit_model_load(edited, err, sizeof err);
    cr_assert(m, "%s", err);
    qfit_model_free(m);
}
