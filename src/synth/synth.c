/* qfit — synthetic models of real shapes (see qfit/synth.h).
 *
 * SPEED / MEMORY MEASUREMENT ONLY: the weights are random, the output is
 * gibberish. The shapes and metadata are those of the real models so that load
 * time, memory use and tokens per second match what the real model costs. */
#include "qfit/synth.h"
#include "qfit/gguf.h"
#include "qfit/model.h"
#include "qfit/quant.h"
#include "qfit/quantize.h"
#include "quantize/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

static const qfit_synth_shape SHAPES[] = {
    /* name            arch     desc                                       vocab   embd  lay    ff  head kv  hd   ctx     rope      eps   tied   bias   freqs  exp used ffexp  swa attn-cap final-cap rope-scale yarn-ctx longrope-ctx longrope-attn */
    { "llama3-8b",     "llama", "Llama 3.1 8B",                            128256, 4096, 32, 14336, 32,  8, 128, 131072, 500000.0f, 1e-5f, false, false, true,   0, 0,    0, 0, 0, 0, 0, 0, 0, 0 },
    { "llama3.2-1b",   "llama", "Llama 3.2 1B",                            128256, 2048, 16,  8192, 32,  8,  64, 131072, 500000.0f, 1e-5f, true,  false, true,   0, 0,    0, 0, 0, 0, 0, 0, 0, 0 },
    { "llama3.2-3b",   "llama", "Llama 3.2 3B",                            128256, 3072, 28,  8192, 24,  8, 128, 131072, 500000.0f, 1e-5f, true,  false, true,   0, 0,    0, 0, 0, 0, 0, 0, 0, 0 },
    { "qwen2.5-0.5b",  "qwen2", "Qwen2.5 0.5B",                            151936,  896, 24,  4864, 14,  2,  64,  32768, 1000000.0f, 1e-6f, true, true,  false,   0, 0,    0, 0, 0, 0, 0, 0, 0, 0 },
    { "qwen2.5-7b",    "qwen2", "Qwen2.5 7B",                              152064, 3584, 28, 18944, 28,  4, 128,  32768, 1000000.0f, 1e-6f, false, true, false,   0, 0,    0, 0, 0, 0, 0, 0, 0, 0 },
    { "mistral-7b",    "llama", "Mistral 7B v0.1",                          32000, 4096, 32, 14336, 32,  8, 128,  32768,  10000.0f, 1e-5f, false, false, false,   0, 0,    0, 0, 0, 0, 0, 0, 0, 0 },
    { "qwen3-30b-a3b", "qwen3moe", "Qwen3 30B-A3B (128 experts, 8 per token)", 151936, 2048, 48, 6144, 32, 4, 128, 40960, 1000000.0f, 1e-6f, false, false, false, 128, 8,  768, 0, 0, 0, 0, 0, 0, 0 },
    { "phi4",          "phi3",  "Phi-4 14B (fused QKV and gate-up)",    100352, 5120, 40, 17920, 40, 10, 128,  16384, 250000.0f, 1e-5f, false, false, false, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "mixtral-8x7b",  "llama", "Mixtral 8x7B v0.1 (8 experts, 2 per token)",  32000, 4096, 32, 14336, 32,  8, 128,  32768, 1000000.0f, 1e-5f, false, false, false, 8, 2, 14336, 0, 0, 0, 0, 0, 0, 0 },
    { "gemma2-9b",     "gemma2", "Gemma 2 9B (sliding window 4096 on even layers)", 256000, 3584, 42, 14336, 16, 8, 256, 8192, 10000.0f, 1e-6f, true, false, false, 0, 0, 0, 4096, 50.0f, 30.0f, 0, 0, 0, 0 },
    { "gemma3-12b",    "gemma3", "Gemma 3 12B (5 sliding-window layers of 1024 per global layer)", 262208, 3840, 48, 15360, 16, 8, 256, 131072, 1000000.0f, 1e-6f, true, false, false, 0, 0, 0, 1024, 0, 0, 8.0f, 0, 0, 0 },
    { "gemma3-27b",    "gemma3", "Gemma 3 27B (5 sliding-window layers of 1024 per global layer)", 262208, 5376, 62, 21504, 32, 16, 128, 131072, 1000000.0f, 1e-6f, true, false, false, 0, 0, 0, 1024, 0, 0, 8.0f, 0, 0, 0 },
    { "gpt-oss-20b",   "gpt-oss", "gpt-oss 20B (32 experts, 4 per token, sliding window 128 on even layers, YaRN)", 201088, 2880, 24, 2880, 64, 8, 64, 131072, 150000.0f, 1e-5f, false, true, false, 32, 4, 2880, 128, 0, 0, 32.0f, 4096, 0, 0 },
    /* small shapes for tests */
    { "tiny",          "llama", "test: 4-layer llama, GQA 2",                 512,  256,  4,   512,  4,  2,  64,    256,  10000.0f, 1e-5f, false, false, false,   0, 0,    0, 0, 0, 0, 0, 0, 0, 0 },
    { "tiny-32l",      "llama", "test: 32-layer llama, GQA 4, tied output",   512,  256, 32,   256,  4,  1,  64,    256,  10000.0f, 1e-5f, true,  false, false,   0, 0,    0, 0, 0, 0, 0, 0, 0, 0 },
    { "tiny-qwen2",    "qwen2", "test: qwen2, rows not multiples of 256",     512,  192,  4,   320,  3,  1,  64,    256, 1000000.0f, 1e-6f, true, true,  false,   0, 0,    0, 0, 0, 0, 0, 0, 0, 0 },
    { "tiny-odd",      "llama", "test: rows not multiples of 32",             512,  144,  2,   272,  2,  2,  72,    256,  10000.0f, 1e-5f, false, false, false,   0, 0,    0, 0, 0, 0, 0, 0, 0, 0 },
    { "tiny-qwen3",    "qwen3", "test: qwen3, Q/K norms, head_dim*heads != embd", 512,  256,  4,  512,  4,  2,  96,    256, 1000000.0f, 1e-6f, true, false, false,   0, 0,    0, 0, 0, 0, 0, 0, 0, 0 },
    { "tiny-llama3",   "llama", "test: llama3-style, rope_freqs, tied output", 512,  256,  4,   512,  4,  2,  64,    256, 500000.0f, 1e-5f, true,  false, true,   0, 0,    0, 0, 0, 0, 0, 0, 0, 0 },
    { "tiny-longctx",  "llama", "test: 32K context, KV cache dominates memory", 512,  256,  8,   512,  4,  4,  64,  32768, 10000.0f, 1e-5f, true,  false, false,   0, 0,    0, 0, 0, 0, 0, 0, 0, 0 },
    { "tiny-qwen3moe", "qwen3moe", "test: qwen3moe, 16 experts, 4 per token", 512,  256,  4,  512,  4,  2,  64,    256, 1000000.0f, 1e-6f, false, false, false, 16, 4, 128, 0, 0, 0, 0, 0, 0, 0 },
    { "tiny-mixtral",  "llama", "test: llama experts (Mixtral), 8, 2 per token", 512,  256,  4,  384,  4,  2,  64,    256, 1000000.0f, 1e-5f, false, false, false, 8, 2, 384, 0, 0, 0, 0, 0, 0, 0 },
    { "tiny-gemma2",   "gemma2", "test: gemma2, window 32 on even layers, soft-capping", 512, 256, 4, 512, 4, 2, 64, 256, 10000.0f, 1e-6f, true, false, false, 0, 0, 0, 32, 2.0f, 6.0f, 0, 0, 0, 0 },
    { "tiny-gemma3",   "gemma3", "test: gemma3, 5 of 6 layers window 32, two RoPE bases", 512, 256, 6, 512, 4, 2, 64, 256, 1000000.0f, 1e-6f, false, false, false, 0, 0, 0, 32, 0, 0, 8.0f, 0, 0, 0 },
    { "tiny-gpt-oss",  "gpt-oss", "test: gpt-oss, sinks, window 28 on even layers, YaRN x4 over 64, 8 experts, 2 per token", 512, 256, 4, 256, 4, 2, 64, 512, 150000.0f, 1e-5f, false, true, false, 8, 2, 128, 28, 0, 0, 4.0f, 64, 0, 0 },
    { "tiny-phi3",     "phi3",  "test: phi3, fused QKV and gate-up, GQA 2", 512,  256,  4,  320,  4,  2,  64,    256,  10000.0f, 1e-5f, false, false, false, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "tiny-phi3-longrope", "phi3", "test: phi3 with LongRoPE, original context 40 (long factors)", 512, 256, 4, 320, 4, 2, 64, 256, 10000.0f, 1e-5f, false, false, false, 0, 0, 0, 0, 0, 0, 0, 0, 40, 1.19f },
    { "tiny-phi3-longrope-s", "phi3", "test: phi3 with LongRoPE, original context 1024 (short factors)", 512, 256, 4, 320, 4, 2, 64, 256, 10000.0f, 1e-5f, false, false, false, 0, 0, 0, 0, 0, 0, 0, 0, 1024, 1.19f },
};
#define N_SHAPES (sizeof SHAPES / sizeof SHAPES[0])

/* The embedding encoders (after the decoders in the list): mean pooling, two token
 * types (sentence A and B), as the real ones. */
#define SYNTH_TOKEN_TYPES 2
#define ENCODER(nm, ar, ds, voc, embd, lay, ff, head, ctx, rope)                                        \
    { .name = nm, .arch = ar, .desc = ds, .n_vocab = voc, .n_embd = embd, .n_layer = lay, .n_ff = ff,          \
      .n_head = head, .n_head_kv = head, .head_dim = (embd) / (head), .n_ctx = ctx, .rope_base = rope,         \
      .rms_eps = 1e-12f }
static const qfit_synth_shape ENCODER_SHAPES[] = {
    /*       name                arch          desc                                          vocab  embd lay  ff    head ctx   rope */
    ENCODER("nomic-embed-text", "nomic-bert", "nomic-embed-text v1.5 (137M, rotary, SwiGLU)", 30522, 768, 12, 3072, 12, 2048, 1000.0f),
    ENCODER("all-minilm",       "bert",       "all-MiniLM-L6-v2 (22M)",                       30522, 384,  6, 1536, 12,  512, 10000.0f),
    /* small shapes for tests */
    ENCODER("tiny-bert",        "bert",       "test: bert, GELU FFN with biases",               512, 128,  2,  256,  4,  512, 10000.0f),
    ENCODER("tiny-nomic-bert",  "nomic-bert", "test: nomic-bert, fused QKV, rotary, SwiGLU",    512, 128,  2,  192,  4,  512, 1000.0f),
};
#undef ENCODER
#define N_ENCODER_SHAPES (sizeof ENCODER_SHAPES / sizeof ENCODER_SHAPES[0])

size_t qfit_synth_n_shapes(void) { return N_SHAPES + N_ENCODER_SHAPES; }

const qfit_synth_shape *qfit_synth_shape_at(size_t i)
{
    if (i < N_SHAPES) return &SHAPES[i];
    return i - N_SHAPES < N_ENCODER_SHAPES ? &ENCODER_SHAPES[i - N_SHAPES] : NULL;
}

const qfit_synth_shape *qfit_synth_find_shape(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < qfit_synth_n_shapes(); i++)
        if (strcasecmp(qfit_synth_shape_at(i)->name, name) == 0) return qfit_synth_shape_at(i);
    return NULL;
}

/* An encoder (bert, nomic-bert): its own tensors, metadata and vocabulary. */
static bool is_encoder(const qfit_synth_shape *s)
{
    const qfit_arch_info *ai = qfit_arch_find(s->arch);
    return ai && ai->embd_only;
}

/* ------------------------------------------------------------- tensors */

static void add_t3(qfit_synth_tensor *t, size_t *n, const char *name, uint32_t nd, int64_t a, int64_t b, int64_t c)
{
    qfit_synth_tensor *x = &t[(*n)++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", name);
    x->n_dims = nd;
    x->ne[0] = a;
    x->ne[1] = nd > 1 ? b : 1;
    x->ne[2] = nd > 2 ? c : 1;
    x->ne[3] = 1;
}

static void add_t(qfit_synth_tensor *t, size_t *n, const char *name, uint32_t nd, int64_t a, int64_t b)
{
    add_t3(t, n, name, nd, a, b, 1);
}

static int cmp_synth_tensor(const void *a, const void *b)
{
    return qfit_mix_order_cmp(((const qfit_synth_tensor *)a)->name, ((const qfit_synth_tensor *)b)->name);
}

/* bert / nomic-bert, as llama.cpp loads them (llama-model.cpp, LLM_ARCH_BERT and
 * LLM_ARCH_NOMIC_BERT): bert has position embeddings, separate Q/K/V and biases
 * everywhere, a GELU FFN; nomic-bert a fused QKV and a SwiGLU FFN, no biases */
static size_t encoder_tensors(const qfit_synth_shape *s, qfit_synth_tensor *t)
{
    size_t n = 0;
    const int64_t e = s->n_embd;
    const bool bert = qfit_arch_find(s->arch)->pos == QFIT_POS_ABSOLUTE;
    add_t(t, &n, "token_embd.weight", 2, e, s->n_vocab);
    add_t(t, &n, "token_types.weight", 2, e, SYNTH_TOKEN_TYPES);
    if (bert) add_t(t, &n, "position_embd.weight", 2, e, s->n_ctx);
    add_t(t, &n, "token_embd_norm.weight", 1, e, 1);
    add_t(t, &n, "token_embd_norm.bias", 1, e, 1);
    char nm[64];
#define BLK(suffix, nd, a, b) do { snprintf(nm, sizeof nm, "blk.%d." suffix, l); add_t(t, &n, nm, nd, a, b); } while (0)
    for (int l = 0; l < s->n_layer; l++) {
        if (bert) {
            BLK("attn_q.weight", 2, e, e);
            BLK("attn_q.bias", 1, e, 1);
            BLK("attn_k.weight", 2, e, e);
            BLK("attn_k.bias", 1, e, 1);
            BLK("attn_v.weight", 2, e, e);
            BLK("attn_v.bias", 1, e, 1);
        } else {
            BLK("attn_qkv.weight", 2, e, 3 * e);
        }
        BLK("attn_output.weight", 2, e, e);
        if (bert) BLK("attn_output.bias", 1, e, 1);
        BLK("attn_output_norm.weight", 1, e, 1);
        BLK("attn_output_norm.bias", 1, e, 1);
        if (!bert) BLK("ffn_gate.weight", 2, e, s->n_ff);
        BLK("ffn_up.weight", 2, e, s->n_ff);
        if (bert) BLK("ffn_up.bias", 1, s->n_ff, 1);
        BLK("ffn_down.weight", 2, s->n_ff, e);
        if (bert) BLK("ffn_down.bias", 1, e, 1);
        BLK("layer_output_norm.weight", 1, e, 1);
        BLK("layer_output_norm.bias", 1, e, 1);
    }
#undef BLK
    return n;
}

qfit_synth_tensor *qfit_synth_tensors(const qfit_synth_shape *s, size_t *n_out)
{
    if (!s || !n_out) return NULL;
    size_t cap = 6 + (size_t)s->n_layer * 24;
    qfit_synth_tensor *t = calloc(cap, sizeof *t);
    if (!t) return NULL;
    if (is_encoder(s)) {
        *n_out = encoder_tensors(s, t);
        qsort(t, *n_out, sizeof *t, cmp_synth_tensor);
        return t;
    }
    size_t n = 0;
    const int64_t e = s->n_embd, q = (int64_t)s->n_head * s->head_dim, kv = (int64_t)s->n_head_kv * s->head_dim;
    add_t(t, &n, "token_embd.weight", 2, e, s->n_vocab);
    add_t(t, &n, "output_norm.weight", 1, e, 1);
    if (!s->tied_output) add_t(t, &n, "output.weight", 2, e, s->n_vocab);
    if (s->rope_freqs) add_t(t, &n, "rope_freqs.weight", 1, s->head_dim / 2, 1);
    if (s->rope_orig_ctx > 0) {   /* LongRoPE's two sets of frequency factors */
        add_t(t, &n, "rope_factors_long.weight", 1, s->head_dim / 2, 1);
        add_t(t, &n, "rope_factors_short.weight", 1, s->head_dim / 2, 1);
    }
    char nm[64];
#define BLK(suffix, nd, a, b) do { snprintf(nm, sizeof nm, "blk.%d." suffix, l); add_t(t, &n, nm, nd, a, b); } while (0)
    for (int l = 0; l < s->n_layer; l++) {
        const bool fused = strcmp(s->arch, "phi3") == 0;   /* fused QKV and gate-up */
        const bool gemma = strncmp(s->arch, "gemma", 5) == 0;   /* post-norms */
        /* gpt-oss: output bias, sinks, post_attention_norm as the FFN norm, biased router and experts */
        const bool gpt_oss = strcmp(s->arch, "gpt-oss") == 0;
        BLK("attn_norm.weight", 1, e, 1);
        if (fused) {
            BLK("attn_qkv.weight", 2, e, q + 2 * kv);
        } else {
            BLK("attn_q.weight", 2, e, q);
            BLK("attn_k.weight", 2, e, kv);
            BLK("attn_v.weight", 2, e, kv);
        }
        if (s->qkv_bias) {
            BLK("attn_q.bias", 1, q, 1);
            BLK("attn_k.bias", 1, kv, 1);
            BLK("attn_v.bias", 1, kv, 1);
        }
        if (strcmp(s->arch, "qwen3") == 0 || strcmp(s->arch, "qwen3moe") == 0 ||
            strcmp(s->arch, "gemma3") == 0) {   /* per-head Q/K RMSNorm */
            BLK("attn_q_norm.weight", 1, s->head_dim, 1);
            BLK("attn_k_norm.weight", 1, s->head_dim, 1);
        }
        BLK("attn_output.weight", 2, q, e);
        if (gpt_oss) {
            BLK("attn_output.bias", 1, e, 1);
            BLK("attn_sinks.weight", 1, s->n_head, 1);
        }
        if (gemma || gpt_oss) BLK("post_attention_norm.weight", 1, e, 1);
        if (!gpt_oss) BLK("ffn_norm.weight", 1, e, 1);
        if (gemma) BLK("post_ffw_norm.weight", 1, e, 1);
        if (s->n_expert > 0) {   /* router, and the experts merged into 3-D tensors */
            BLK("ffn_gate_inp.weight", 2, e, s->n_expert);
            snprintf(nm, sizeof nm, "blk.%d.ffn_gate_exps.weight", l);
            add_t3(t, &n, nm, 3, e, s->n_ff_exp, s->n_expert);
            snprintf(nm, sizeof nm, "blk.%d.ffn_up_exps.weight", l);
            add_t3(t, &n, nm, 3, e, s->n_ff_exp, s->n_expert);
            snprintf(nm, sizeof nm, "blk.%d.ffn_down_exps.weight", l);
            add_t3(t, &n, nm, 3, s->n_ff_exp, e, s->n_expert);
            if (gpt_oss) {
                BLK("ffn_gate_inp.bias", 1, s->n_expert, 1);
                BLK("ffn_gate_exps.bias", 2, s->n_ff_exp, s->n_expert);
                BLK("ffn_up_exps.bias", 2, s->n_ff_exp, s->n_expert);
                BLK("ffn_down_exps.bias", 2, e, s->n_expert);
            }
            continue;
        }
        if (fused) {
            BLK("ffn_up.weight", 2, e, 2 * (int64_t)s->n_ff);
        } else {
            BLK("ffn_gate.weight", 2, e, s->n_ff);
            BLK("ffn_up.weight", 2, e, s->n_ff);
        }
        BLK("ffn_down.weight", 2, s->n_ff, e);
    }
#undef BLK
    qsort(t, n, sizeof *t, cmp_synth_tensor);
    *n_out = n;
    return t;
}

int64_t qfit_synth_n_params(const qfit_synth_shape *s)
{
    size_t n;
    qfit_synth_tensor *t = qfit_synth_tensors(s, &n);
    if (!t) return -1;
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) total += t[i].ne[0] * t[i].ne[1] * t[i].ne[2] * t[i].ne[3];
    free(t);
    return total;
}

/* ------------------------------------------------------------- weights */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) { h ^= (uint8_t)*s; h *= 0x100000001b3ULL; }
    return h;
}

enum { FILL_RANDOM, FILL_ONES };

typedef struct {
    const qfit_synth_tensor *t;
    uint64_t seed;
} synth_fill_ctx;

#define WEIGHT_SD 0.02f

static const float *synth_fill(void *user, size_t ti, int64_t row0, int64_t nrows,
                               float *scratch, char *err, size_t err_len)
{
    const synth_fill_ctx *c = user;
    const qfit_synth_tensor *t = &c->t[ti];
    const int64_t ne0 = t->ne[0];
    const size_t len = strlen(t->name);
    int kind = FILL_RANDOM;
    if ((len >= 12 && strcmp(t->name + len - 12, "_norm.weight") == 0) ||
        strcmp(t->name, "rope_freqs.weight") == 0 || strncmp(t->name, "rope_factors_", 13) == 0)
        kind = FILL_ONES;
    if (kind == FILL_ONES) {
        for (int64_t i = 0; i < nrows * ne0; i++) scratch[i] = 1.0f;
        return scratch;
    }
    /* Irwin-Hall: the sum of four 16-bit uniforms, scaled to sd WEIGHT_SD */
    const float scale = WEIGHT_SD * 1.7320508f / 65536.0f;
    const uint64_t th = fnv1a(t->name);
    for (int64_t r = 0; r < nrows; r++) {
        uint64_t s = c->seed * 0xd1342543de82ef95ULL ^ th ^ ((uint64_t)(row0 + r) + 1) * 0x9e3779b97f4a7c15ULL;
        splitmix64(&s);
        float *y = scratch + r * ne0;
        for (int64_t i = 0; i < ne0; i++) {
            uint64_t v = splitmix64(&s);
            uint32_t a = (uint32_t)(v & 0xffff) + (uint32_t)((v >> 16) & 0xffff) +
                         (uint32_t)((v >> 32) & 0xffff) + (uint32_t)(v >> 48);
            y[i] = ((float)a - 131070.0f) * scale;
        }
    }
    (void)err; (void)err_len;
    return scratch;
}

/* ------------------------------------------------------------- vocab */

/* phi3: llama.cpp sets token attributes of Phi-3 vocabularies by name and requires
 * "<|endoftext|>" to exist (its real id 32000 comes after the SentencePiece pieces) */
static int set_vocab(qfit_gguf_writer *w, int n_vocab, bool phi3)
{
    char **strs = calloc((size_t)n_vocab, sizeof *strs);
    float *scores = calloc((size_t)n_vocab, sizeof *scores);
    int32_t *types = calloc((size_t)n_vocab, sizeof *types);
    const size_t cap = (size_t)n_vocab * 16 + 64;
    char *buf = malloc(cap);
    int rc = -1;
    if (!strs || !scores || !types || !buf) goto out;
    char *p = buf, *const end = buf + cap;
    for (int i = 0; i < n_vocab; i++) {
        strs[i] = p;
        if (i == 0) { strcpy(p, "<unk>"); types[i] = 2; }
        else if (i == 1) { strcpy(p, "<s>"); types[i] = 3; }
        else if (i == 2) { strcpy(p, "</s>"); types[i] = 3; }
        else if (i < 259) { snprintf(p, (size_t)(end - p), "<0x%02X>", i - 3); types[i] = 6; }
        else if (phi3 && i == n_vocab - 2) { strcpy(p, "<|endoftext|>"); types[i] = 3; }
        else if (phi3 && i == n_vocab - 1) { strcpy(p, "<|end|>"); types[i] = 3; }
        else {
            /* filler piece: U+2581 (SentencePiece's space) + a unique tag */
            snprintf(p, (size_t)(end - p), "\xe2\x96\x81t%d", i - 259);
            types[i] = 1;
            scores[i] = -(float)(i - 259);
        }
        p += strlen(p) + 1;
    }
    if (qfit_gguf_set_str(w, "tokenizer.ggml.model", "llama") != 0) goto out;
    if (qfit_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)strs, (uint64_t)n_vocab) != 0) goto out;
    if (qfit_gguf_set_arr(w, "tokenizer.ggml.scores", QFIT_GGUF_FLOAT32, scores, (uint64_t)n_vocab) != 0) goto out;
    if (qfit_gguf_set_arr(w, "tokenizer.ggml.token_type", QFIT_GGUF_INT32, types, (uint64_t)n_vocab) != 0) goto out;
    if (qfit_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1) != 0) goto out;
    if (qfit_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2) != 0) goto out;
    if (qfit_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 0) != 0) goto out;
    if (qfit_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true) != 0) goto out;
    if (qfit_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", false) != 0) goto out;
    rc = 0;
out:
    free(buf);
    free(types);
    free(scores);
    free(strs);
    return rc;
}

/* A WordPiece vocabulary as convert_hf_to_gguf.py stores BERT's: the special tokens at
 * BERT's ids as they are (CONTROL), a word-start piece with the mark U+2581, a "##x"
 * continuation as "x". Ids 1..99 are [unusedN]; after [MASK] come a..z and 0..9 as
 * word starts and as continuations, some punctuation, a few words and suffixes, then
 * filler words "▁wN". */
static int set_vocab_wpm(qfit_gguf_writer *w, int n_vocab)
{
    static const char *const words[] = { "the", "of", "and", "to", "in", "is", "hello", "world", "quick",
                                         "brown", "fox", "dog", "cat", "search", "query", "document", "text" };
    static const char *const suffixes[] = { "ing", "ed", "er", "ly", "tion" };
    char **strs = calloc((size_t)n_vocab, sizeof *strs);
    int32_t *types = calloc((size_t)n_vocab, sizeof *types);
    const size_t cap = (size_t)n_vocab * 24 + 64;
    char *buf = malloc(cap);
    int rc = -1;
    if (!strs || !types || !buf) goto out;
    const char *mark = "\xe2\x96\x81";
    const int n_words = (int)(sizeof words / sizeof *words), n_suf = (int)(sizeof suffixes / sizeof *suffixes);
    const char *punct = ".,!?'-:;()\"";
    const int n_punct = (int)strlen(punct);
    char *p = buf, *const end = buf + cap;
    for (int i = 0; i < n_vocab; i++) {
        int k = i - 104;   /* after [MASK] */
        strs[i] = p;
        types[i] = 1;   /* NORMAL */
        if (i == 0) { strcpy(p, "[PAD]"); types[i] = 3; }
        else if (i < 100) snprintf(p, (size_t)(end - p), "%s[unused%d]", mark, i - 1);
        else if (i == 100) { strcpy(p, "[UNK]"); types[i] = 3; }
        else if (i == 101) { strcpy(p, "[CLS]"); types[i] = 3; }
        else if (i == 102) { strcpy(p, "[SEP]"); types[i] = 3; }
        else if (i == 103) { strcpy(p, "[MASK]"); types[i] = 3; }
        else if (k < 36) snprintf(p, (size_t)(end - p), "%s%c", mark, k < 26 ? 'a' + k : '0' + k - 26);
        else if ((k -= 36) < 36) snprintf(p, (size_t)(end - p), "%c", k < 26 ? 'a' + k : '0' + k - 26);
        else if ((k -= 36) < n_punct) snprintf(p, (size_t)(end - p), "%s%c", mark, punct[k]);
        else if ((k -= n_punct) < n_words) snprintf(p, (size_t)(end - p), "%s%s", mark, words[k]);
        else if ((k -= n_words) < n_suf) snprintf(p, (size_t)(end - p), "%s", suffixes[k]);
        else snprintf(p, (size_t)(end - p), "%sw%d", mark, i);
        p += strlen(p) + 1;
    }
    if (qfit_gguf_set_str(w, "tokenizer.ggml.model", "bert") != 0 ||
        qfit_gguf_set_str(w, "tokenizer.ggml.pre", "default") != 0 ||
        qfit_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)strs, (uint64_t)n_vocab) != 0 ||
        qfit_gguf_set_arr(w, "tokenizer.ggml.token_type", QFIT_GGUF_INT32, types, (uint64_t)n_vocab) != 0 ||
        qfit_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 100) != 0 ||
        qfit_gguf_set_u32(w, "tokenizer.ggml.cls_token_id", 101) != 0 ||
        qfit_gguf_set_u32(w, "tokenizer.ggml.seperator_token_id", 102) != 0 ||
        qfit_gguf_set_u32(w, "tokenizer.ggml.padding_token_id", 0) != 0 ||
        qfit_gguf_set_u32(w, "tokenizer.ggml.mask_token_id", 103) != 0)
        goto out;
    rc = 0;
out:
    free(buf);
    free(types);
    free(strs);
    return rc;
}

/* an encoder's keys (llama.cpp's load_hparams for LLM_ARCH_BERT / NOMIC_BERT) */
static int set_encoder_metadata(qfit_gguf_writer *w, const qfit_synth_shape *s)
{
    char key[128];
    const char *a = s->arch;
    int bad = 0;
#define U32(k, v) do { snprintf(key, sizeof key, "%s." k, a); bad |= qfit_gguf_set_u32(w, key, (uint32_t)(v)); } while (0)
#define F32(k, v) do { snprintf(key, sizeof key, "%s." k, a); bad |= qfit_gguf_set_f32(w, key, (v)); } while (0)
    U32("context_length", s->n_ctx);
    U32("embedding_length", s->n_embd);
    U32("block_count", s->n_layer);
    U32("feed_forward_length", s->n_ff);
    U32("attention.head_count", s->n_head);
    F32("attention.layer_norm_epsilon", s->rms_eps);
    snprintf(key, sizeof key, "%s.attention.causal", a);
    bad |= qfit_gguf_set_bool(w, key, false);
    U32("pooling_type", 1);   /* mean */
    if (qfit_arch_find(a)->pos == QFIT_POS_ROPE) F32("rope.freq_base", s->rope_base);
#undef U32
#undef F32
    bad |= qfit_gguf_set_u32(w, "tokenizer.ggml.token_type_count", SYNTH_TOKEN_TYPES);
    if (bad) return -1;
    return set_vocab_wpm(w, s->n_vocab);
}

static int set_metadata(qfit_gguf_writer *w, const qfit_synth_shape *s, int ftype, uint64_t seed)
{
    char key[128], name[256];
    const char *a = s->arch;
    int bad = 0;
    bad |= qfit_gguf_set_str(w, "general.architecture", a);
    bad |= qfit_gguf_set_str(w, "general.type", "model");
    snprintf(name, sizeof name, "synthetic %s (random weights, seed %llu)", s->name, (unsigned long long)seed);
    bad |= qfit_gguf_set_str(w, "general.name", name);
    snprintf(name, sizeof name, "SYNTHETIC MODEL FOR SPEED/MEMORY MEASUREMENT ONLY: random weights, "
             "generates gibberish. Shape of %s.", s->desc);
    bad |= qfit_gguf_set_str(w, "general.description", name);
    if (is_encoder(s)) {
        bad |= qfit_gguf_set_u32(w, "general.file_type", (uint32_t)ftype);
        bad |= qfit_gguf_set_u32(w, "general.quantization_version", QFIT_QUANTIZATION_VERSION);
        return bad ? -1 : set_encoder_metadata(w, s);
    }
#define U32(k, v) do { snprintf(key, sizeof key, "%s." k, a); bad |= qfit_gguf_set_u32(w, key, (uint32_t)(v)); } while (0)
#define F32(k, v) do { snprintf(key, sizeof key, "%s." k, a); bad |= qfit_gguf_set_f32(w, key, (v)); } while (0)
    U32("context_length", s->n_ctx);
    U32("embedding_length", s->n_embd);
    U32("block_count", s->n_layer);
    U32("feed_forward_length", s->n_ff);
    U32("attention.head_count", s->n_head);
    U32("attention.head_count_kv", s->n_head_kv);
    if (s->head_dim * s->n_head != s->n_embd) {
        U32("attention.key_length", s->head_dim);
        U32("attention.value_length", s->head_dim);
    }
    U32("rope.dimension_count", s->head_dim);
    F32("rope.freq_base", s->rope_base);
    F32("attention.layer_norm_rms_epsilon", s->rms_eps);
    U32("vocab_size", s->n_vocab);
    if (s->n_swa > 0) U32("attention.sliding_window", s->n_swa);
    if (s->attn_softcap > 0) F32("attn_logit_softcapping", s->attn_softcap);
    if (s->final_softcap > 0) F32("final_logit_softcapping", s->final_softcap);
    if (s->rope_orig_ctx > 0) U32("rope.scaling.original_context_length", s->rope_orig_ctx);
    if (s->rope_attn_factor > 0) F32("rope.scaling.attn_factor", s->rope_attn_factor);
    if (s->rope_scale > 0) {
        snprintf(key, sizeof key, "%s.rope.scaling.type", a);
        bad |= qfit_gguf_set_str(w, key, s->yarn_orig_ctx > 0 ? "yarn" : "linear");
        F32("rope.scaling.factor", s->rope_scale);
        if (s->yarn_orig_ctx > 0) U32("rope.scaling.original_context_length", s->yarn_orig_ctx);
    }
    if (s->n_expert > 0) {
        U32("expert_count", s->n_expert);
        U32("expert_used_count", s->n_expert_used);
        if (strcmp(a, "llama") != 0) U32("expert_feed_forward_length", s->n_ff_exp);
    }
#undef U32
#undef F32
    bad |= qfit_gguf_set_u32(w, "general.file_type", (uint32_t)ftype);
    bad |= qfit_gguf_set_u32(w, "general.quantization_version", QFIT_QUANTIZATION_VERSION);
    if (bad) return -1;
    return set_vocab(w, s->n_vocab, strcmp(s->arch, "phi3") == 0);
}

/* ------------------------------------------------------------- writing */

typedef struct {
    const qfit_synth_params *p;
} synth_progress_ctx;

static void synth_progress(void *user, size_t done, size_t total, uint64_t bytes_done,
                           uint64_t bytes_total, const char *name)
{
    const synth_progress_ctx *c = user;
    if (c->p->progress)
        c->p->progress(c->p->progress_user, (int64_t)done, (int64_t)total, bytes_done, bytes_total, name);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int qfit_synth_write(const char *path, const qfit_synth_params *p, qfit_synth_stats *stats,
                     char *err, size_t err_len)
{
    char dummy[8];
    if (!err) { err = dummy; err_len = sizeof dummy; }
    if (!path || !p || !p->shape) {
        snprintf(err, err_len, "invalid arguments");
        return -1;
    }
    const double t0 = now_s();
    const qfit_synth_shape *s = p->shape;
    if (!qfit_ftype_supported(p->ftype)) {
        const char *nm = qfit_ftype_name(p->ftype);
        snprintf(err, err_len, "cannot write file type %s (supported: %s)",
                 nm ? nm : "?", qfit_ftype_supported_list());
        return -1;
    }
    if (s->n_vocab < 259 || s->n_embd < 1 || s->n_layer < 1 || s->n_head < 1 || s->n_head_kv < 1 ||
        s->head_dim < 2 || s->n_ff < 1 ||
        (s->n_expert > 0 && (s->n_expert_used < 1 || s->n_expert_used > s->n_expert || s->n_ff_exp < 1))) {
        snprintf(err, err_len, "shape '%s' is invalid", s->name);
        return -1;
    }
    const int n_threads = p->n_threads > 0 ? p->n_threads : qfit_quantize_default_threads();

    size_t n = 0;
    qfit_synth_tensor *t = qfit_synth_tensors(s, &n);
    qfit_mix_tensor *mt = calloc(n + 1, sizeof *mt);
    size_t *order = calloc(n + 1, sizeof *order);
    int *types = calloc(n + 1, sizeof *types);
    qfit_qe_tensor *qt = calloc(n + 1, sizeof *qt);
    qfit_gguf_writer *w = NULL;
    qfit_synth_stats st;
    memset(&st, 0, sizeof st);
    int rc = -1;
    char gerr[512];
    if (!t || !mt || !order || !types || !qt) {
        snprintf(err, err_len, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        mt[i].name = t[i].name;
        mt[i].n_dims = t[i].n_dims;
        memcpy(mt[i].ne, t[i].ne, sizeof mt[i].ne);
        mt[i].type = QFIT_TYPE_F32;   /* as if converted from an F32 original */
    }
    qfit_mix_model m;
    memset(&m, 0, sizeof m);
    snprintf(m.arch, sizeof m.arch, "%s", s->arch);
    m.n_layer = s->n_layer;
    m.n_head = s->n_head;
    m.n_head_kv = s->n_head_kv;
    m.n_expert = s->n_expert;
    m.is_70b = false;
    qfit_mix_model_count(&m, mt, n);
    if (qfit_mix_plan(&m, p->ftype, mt, n, order, types, &st.n_fallback, gerr, sizeof gerr) < 0) {
        snprintf(err, err_len, "shape %s: %s", s->name, gerr);
        goto done;
    }

    w = qfit_gguf_writer_new();
    if (!w || set_metadata(w, s, p->ftype, p->seed) != 0) {
        snprintf(err, err_len, "cannot build the metadata");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t rows = t[i].ne[1] * t[i].ne[2] * t[i].ne[3];
        qt[i].name = t[i].name;
        qt[i].ne0 = t[i].ne[0];
        qt[i].nrows = rows;
        qt[i].out_type = types[i];
        size_t nb = qfit_tensor_nbytes(types[i], t[i].ne[0], rows);
        if (nb == SIZE_MAX) {
            snprintf(err, err_len, "tensor '%s' cannot be stored as %s", t[i].name, qfit_type_name(types[i]));
            goto done;
        }
        qt[i].nbytes = nb;
        st.data_bytes += nb;
        st.n_params += t[i].ne[0] * rows;
        if (types[i] >= 0 && types[i] < 64) st.type_count[types[i]]++;
        if (qfit_gguf_add_tensor(w, t[i].name, t[i].n_dims, t[i].ne, types[i]) != 0) {
            snprintf(err, err_len, "cannot declare tensor '%s'", t[i].name);
            goto done;
        }
    }
    if (qfit_gguf_writer_begin(w, path, gerr, sizeof gerr) != 0) {
        snprintf(err, err_len, "cannot create '%s': %s", path, gerr);
        goto done;
    }
    synth_fill_ctx fc = { t, p->seed };
    synth_progress_ctx pc = { p };
    if (qfit_qe_run(w, qt, n, n_threads, synth_fill, &fc, synth_progress, &pc, gerr, sizeof gerr) != 0) {
        snprintf(err, err_len, "%s", gerr);
        goto done;
    }
    if (qfit_gguf_writer_finish(w, gerr, sizeof gerr) != 0) {
        snprintf(err, err_len, "cannot write '%s': %s", path, gerr);
        goto done;
    }
    struct stat sb;
    st.file_bytes = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    st.n_tensors = (int64_t)n;
    st.n_threads = n_threads;
    st.seconds = now_s() - t0;
    rc = 0;
done:
    qfit_gguf_writer_free(w);
    if (rc == 0 && stats) *stats = st;
    free(qt);
    free(types);
    free(order);
    free(mt);
    free(t);
    return rc;
}
