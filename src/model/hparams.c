/* Hyperparameters from GGUF metadata, and the sizing of KV cache and compute buffers. */
#include "model/model_internal.h"
#include "model/arch.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "qfit/quant.h"

/* Read an integer key "<arch>.<suffix>". Returns 1 found, 0 absent, -1 wrong type. */
static int get_arch_int(const qfit_gguf *g, const char *arch, const char *suffix, int64_t *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t i = qfit_gguf_find_key(g, key);
    if (i < 0) return 0;
    return qfit_gguf_get_int(g, i, out) ? 1 : -1;
}

static int get_arch_float(const qfit_gguf *g, const char *arch, const char *suffix, double *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t i = qfit_gguf_find_key(g, key);
    if (i < 0) return 0;
    return qfit_gguf_get_float(g, i, out) ? 1 : -1;
}

#define FAIL(...) do { if (err && err_len) snprintf(err, err_len, __VA_ARGS__); return -1; } while (0)

/* {arch}.expert_count, expert_used_count, expert_feed_forward_length, checked against
 * what the architecture allows (its descriptor's info.experts) */
static int read_experts(const qfit_gguf *g, const qfit_arch_desc *desc, qfit_hparams *hp, char *err,
                        size_t err_len)
{
    const char *arch = hp->arch_name;
    int64_t n = 0, used = 0, ff = 0;
    if (get_arch_int(g, arch, "expert_count", &n) < 0) FAIL("%s.expert_count is not an integer", arch);
    if (n < 0 || n > QFIT_MAX_EXPERTS) FAIL("%s.expert_count = %lld is out of range [0, %d]", arch, (long long)n,
                                            QFIT_MAX_EXPERTS);
    if (n == 0) {
        if (desc->info.experts == QFIT_EXPERTS_REQUIRED)
            FAIL("%s needs %s.expert_count > 0 (a mixture-of-experts architecture)", arch, arch);
        return 0;
    }
    if (desc->info.experts == QFIT_EXPERTS_NONE)
        FAIL("%s.expert_count = %lld: the %s architecture has no mixture-of-experts variant", arch, (long long)n,
             desc->info.name);
    const int r = get_arch_int(g, arch, "expert_used_count", &used);
    if (r < 0) FAIL("%s.expert_used_count is not an integer", arch);
    if (r == 0) FAIL("missing %s.expert_used_count (experts per token)", arch);
    if (used < 1 || used > n)
        FAIL("%s.expert_used_count = %lld is out of range [1, expert_count %lld]", arch, (long long)used,
             (long long)n);
    const int rf = get_arch_int(g, arch, "expert_feed_forward_length", &ff);
    if (rf < 0) FAIL("%s.expert_feed_forward_length is not an integer", arch);
    if (rf == 0) ff = hp->n_ff;   /* llama (Mixtral): each expert is n_ff wide; other defaults: the hparams hook */
    if (ff < 1 || ff > (1 << 22)) FAIL("%s.expert_feed_forward_length = %lld is out of range", arch, (long long)ff);
    hp->n_expert = (int)n;
    hp->n_expert_used = (int)used;
    hp->n_ff_exp = (int)ff;
    return 0;
}

int qfit_hparams_from_gguf(const qfit_gguf *g, qfit_hparams *hp, char *err, size_t err_len)
{
    memset(hp, 0, sizeof *hp);
    char arch[64];
    if (!qfit_gguf_get_string(g, "general.architecture", arch, sizeof arch))
        FAIL("missing general.architecture");
    const qfit_arch_desc *desc = qfit_arch_desc_find(arch);
    if (!desc) FAIL("unsupported architecture '%s' (supported: %s)", arch, qfit_arch_supported_list());
    hp->arch = desc->info.id;
    hp->rope_type = desc->info.rope_type;
    hp->has_qkv_bias = desc->info.qkv_bias;
    hp->has_qk_norm = desc->info.qk_norm;
    memcpy(hp->arch_name, arch, sizeof hp->arch_name - 1);
    hp->arch_name[sizeof hp->arch_name - 1] = 0;

    struct { const char *key; int *dst; bool required; int64_t lo, hi; } ints[] = {
        { "context_length",           &hp->n_ctx_train, true,  1, 1 << 24 },
        { "embedding_length",         &hp->n_embd,      true,  1, 1 << 20 },
        { "block_count",              &hp->n_layer,     true,  1, 4096 },
        { "feed_forward_length",      &hp->n_ff,        true,  1, 1 << 22 },
        { "attention.head_count",     &hp->n_head,      true,  1, 4096 },
        { "attention.head_count_kv",  &hp->n_head_kv,   false, 1, 4096 },
        { "attention.key_length",     &hp->head_dim_k,  false, 1, 65536 },
        { "attention.value_length",   &hp->head_dim_v,  false, 1, 65536 },
        { "rope.dimension_count",     &hp->n_rot,       false, 0, 65536 },
        { "vocab_size",               &hp->n_vocab,     false, 1, 1 << 24 },
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int64_t v;
        int r = get_arch_int(g, arch, ints[i].key, &v);
        if (r < 0) FAIL("%s.%s has a non-integer type (per-layer arrays are not supported)", arch, ints[i].key);
        if (r == 0) {
            if (ints[i].required) FAIL("missing %s.%s", arch, ints[i].key);
            continue;
        }
        if (v < ints[i].lo || v > ints[i].hi)
            FAIL("%s.%s = %lld is out of range [%lld, %lld]", arch, ints[i].key, (long long)v,
                 (long long)ints[i].lo, (long long)ints[i].hi);
        *ints[i].dst = (int)v;
    }
    if (!hp->n_head_kv) hp->n_head_kv = hp->n_head;
    if (hp->n_head % hp->n_head_kv != 0)
        FAIL("head_count %d is not a multiple of head_count_kv %d", hp->n_head, hp->n_head_kv);
    if (!hp->head_dim_k) {
        if (hp->n_embd % hp->n_head) FAIL("embedding_length %d not divisible by head_count %d", hp->n_embd, hp->n_head);
        hp->head_dim_k = hp->n_embd / hp->n_head;
    }
    if (!hp->head_dim_v) hp->head_dim_v = hp->head_dim_k;
    if (!hp->n_rot) hp->n_rot = hp->head_dim_k;
    if (hp->n_rot > hp->head_dim_k || hp->n_rot % 2)
        FAIL("rope.dimension_count %d invalid for head dim %d", hp->n_rot, hp->head_dim_k);
    if (!hp->n_vocab) {
        int64_t i = qfit_gguf_find_key(g, "tokenizer.ggml.tokens");
        if (i >= 0 && qfit_gguf_kv_type(g, i) == QFIT_GGUF_ARRAY) {
            uint64_t n = qfit_gguf_arr_len(g, i);
            if (n > 0 && n < (1u << 24)) hp->n_vocab = (int)n;
        }
        /* else: taken from token_embd at load time */
    }

    double d;
    int r = get_arch_float(g, arch, "attention.layer_norm_rms_epsilon", &d);
    if (r < 0) FAIL("%s.attention.layer_norm_rms_epsilon is not a number", arch);
    hp->rms_eps = r ? (float)d : 1e-5f;
    if (!(hp->rms_eps > 0 && hp->rms_eps < 1)) FAIL("rms epsilon %g out of range", (double)hp->rms_eps);
    r = get_arch_float(g, arch, "rope.freq_base", &d);
    if (r < 0) FAIL("%s.rope.freq_base is not a number", arch);
    hp->rope_freq_base = r ? (float)d : 10000.0f;
    if (!(hp->rope_freq_base > 1)) FAIL("rope.freq_base %g out of range", (double)hp->rope_freq_base);

    /* RoPE scaling: none / linear / yarn (Llama 3's frequency factors come as a tensor) */
    hp->rope_freq_scale = 1.0f;
    char key[128], stype[32] = "";
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    qfit_gguf_get_string(g, key, stype, sizeof stype);
    double factor = 0;
    r = get_arch_float(g, arch, "rope.scaling.factor", &factor);
    if (r < 0) FAIL("%s.rope.scaling.factor is not a number", arch);
    if (r == 0) {
        r = get_arch_float(g, arch, "rope.scale_linear", &factor);
        if (r < 0) FAIL("%s.rope.scale_linear is not a number", arch);
        if (r > 0 && !stype[0]) snprintf(stype, sizeof stype, "linear");
    }
    /* LongRoPE (Phi-3 128K): its frequency factors come as tensors (model.c) and its
     * attention factor and original context are read below with YaRN's */
    if (!strcmp(stype, "longrope")) stype[0] = 0;
    const bool yarn = strcmp(stype, "yarn") == 0;
    if (stype[0] && strcmp(stype, "none") != 0) {
        if (strcmp(stype, "linear") != 0 && !yarn)
            FAIL("unsupported RoPE scaling type '%s' (supported: none, linear, yarn, longrope)", stype);
        if (factor > 0 && factor != 1.0) {
            if (factor < 1e-3 || factor > 1e6) FAIL("rope scaling factor %g out of range", factor);
            hp->rope_freq_scale = (float)(1.0 / factor);
        }
    }
    /* YaRN as llama.cpp sets it up: ext_factor 1 for a yarn model, beta_fast 32, beta_slow
     * 1, the correction dims from the original context (default: the training context),
     * attn_factor from the file (default 1) */
    hp->rope_ext_factor = yarn ? 1.0f : 0.0f;
    hp->rope_beta_fast = 32.0f;
    hp->rope_beta_slow = 1.0f;
    hp->rope_attn_factor = 1.0f;
    r = get_arch_float(g, arch, "rope.scaling.attn_factor", &d);
    if (r < 0) FAIL("%s.rope.scaling.attn_factor is not a number", arch);
    if (r > 0) {
        if (!(d > 0 && d <= 100)) FAIL("%s.rope.scaling.attn_factor = %g is out of range (0, 100]", arch, d);
        hp->rope_attn_factor = (float)d;
    }
    hp->n_ctx_orig = hp->n_ctx_train;
    int64_t orig;
    r = get_arch_int(g, arch, "rope.scaling.original_context_length", &orig);
    if (r < 0) FAIL("%s.rope.scaling.original_context_length is not an integer", arch);
    if (r > 0) {
        if (orig < 1 || orig > (1 << 24))
            FAIL("%s.rope.scaling.original_context_length = %lld is out of range [1, %d]", arch, (long long)orig,
                 1 << 24);
        hp->n_ctx_orig = (int)orig;
    }
    if (read_experts(g, desc, hp, err, err_len) != 0) return -1;
    /* the variants' defaults: none (an architecture's hook sets its own) */
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim_k);
    hp->embd_scale = 1.0f;
    hp->ffn_act = desc->info.ffn_act;
    hp->moe_gating = desc->info.moe_gating;
    hp->sandwich_norms = desc->info.sandwich_norms;
    hp->rope_freq_base_swa = hp->rope_freq_base;
    hp->rope_freq_scale_swa = hp->rope_freq_scale;
    if (desc->hparams && desc->hparams(g, hp, err, err_len) != 0) return -1;
    if (hp->n_swa < 0 || hp->swa_pattern < 0) FAIL("sliding window %d / pattern %d out of range", hp->n_swa, hp->swa_pattern);
    hp->swa_rope = hp->n_swa > 0 && (hp->rope_freq_base_swa != hp->rope_freq_base ||
                                     hp->rope_freq_scale_swa != hp->rope_freq_scale);
    return 0;
}

bool qfit_layer_is_swa(const qfit_hparams *hp, int il)
{
    if (!hp || hp->n_swa <= 0) return false;
    return hp->swa_pattern == 0 || il % hp->swa_pattern < hp->swa_pattern - 1;
}

qfit_layer_recipe qfit_layer_recipe_of(const qfit_hparams *hp, int il)
{
    const qfit_arch_info *ai = &qfit_arch_desc_of(hp->arch)->info;
    qfit_layer_recipe r;
    memset(&r, 0, sizeof r);
    r.block = ai->post_norm ? QFIT_BLOCK_POST_NORM : hp->sandwich_norms ? QFIT_BLOCK_SANDWICH : QFIT_BLOCK_PRE_NORM;
    r.causal = !hp->non_causal;
    r.window = qfit_layer_is_swa(hp, il) ? hp->n_swa : 0;
    r.rope = ai->pos == QFIT_POS_ROPE;
    r.rope_local = r.rope && r.window > 0 && hp->swa_rope;
    r.softcap = hp->attn_softcap;
    r.sinks = hp->attn_sinks;
    r.ffn = hp->n_expert > 0 ? QFIT_FFN_EXPERTS : QFIT_FFN_DENSE;
    r.act = hp->ffn_act;
    r.gating = hp->moe_gating;
    return r;
}

/* ---------------------------------------------------------------- sizing */

size_t qfit_kv_cache_bytes(const qfit_hparams *hp, int n_ctx, int kv_type_k, int kv_type_v)
{
    if (!hp || n_ctx <= 0 || hp->n_layer <= 0 || hp->n_head_kv <= 0) return 0;
    if (!qfit_kv_type_ok(kv_type_k) || !qfit_kv_type_ok(kv_type_v)) return 0;
    const qfit_type_traits *tk = qfit_type_get_traits(kv_type_k), *tv = qfit_type_get_traits(kv_type_v);
    if (hp->head_dim_k <= 0 || hp->head_dim_v <= 0 || hp->head_dim_k % tk->block_size ||
        hp->head_dim_v % tv->block_size)
        return 0;
    size_t rk = qfit_row_size(kv_type_k, hp->head_dim_k) * (size_t)hp->n_head_kv;
    size_t rv = qfit_row_size(kv_type_v, hp->head_dim_v) * (size_t)hp->n_head_kv;
    return (size_t)hp->n_layer * (size_t)n_ctx * (rk + rv);
}

int qfit_kv_swa_cells(const qfit_hparams *hp, int n_ctx, int n_batch)
{
    if (!hp || hp->n_swa <= 0 || n_batch <= 0) return n_ctx;
    const int64_t w = (int64_t)hp->n_swa + n_batch;
    return w < n_ctx ? (int)w : n_ctx;
}

size_t qfit_kv_cache_bytes_ctx(const qfit_hparams *hp, int n_ctx, int n_batch, int n_seq, int kv_type_k,
                               int kv_type_v)
{
    if (!hp || n_ctx <= 0 || n_seq <= 0 || hp->n_layer <= 0) return 0;
    const size_t per_layer = qfit_kv_cache_bytes(hp, 1, kv_type_k, kv_type_v) / (size_t)hp->n_layer;
    if (!per_layer) return 0;
    const size_t swa = (size_t)qfit_kv_swa_cells(hp, n_ctx, n_batch);
    size_t cells = 0;
    for (int il = 0; il < hp->n_layer; il++) cells += qfit_layer_recipe_of(hp, il).window > 0 ? swa : (size_t)n_ctx;
    return cells * (size_t)n_seq * per_layer;
}

void qfit_compute_buffer_parts(const qfit_hparams *hp, int n_ctx, int n_batch, bool flash_attn,
                               qfit_compute_parts *L)
{
    memset(L, 0, sizeof *L);
    const size_t nb = (size_t)n_batch, f = sizeof(float);
    const size_t q_dim = (size_t)hp->n_head * hp->head_dim_k;
    const size_t kv_dim_k = (size_t)hp->n_head_kv * hp->head_dim_k;
    const size_t kv_dim_v = (size_t)hp->n_head_kv * hp->head_dim_v;
    const size_t att_dim = (size_t)hp->n_head * hp->head_dim_v;
    /* the FFN: dense, n_ff per token; experts, n_expert_used rows of n_ff_exp per token */
    const bool moe = hp->n_expert > 0;
    const size_t ff = moe ? (size_t)hp->n_ff_exp : (size_t)hp->n_ff;
    const size_t ffn_rows = moe ? nb * (size_t)hp->n_expert_used : nb;
    size_t wide = (size_t)hp->n_embd;
    if (ff > wide) wide = ff;
    if (att_dim > wide) wide = att_dim;
    L->x = align64(nb * hp->n_embd * f);
    L->xn = align64(nb * wide * f);
    L->q = align64(nb * q_dim * f);
    L->k = align64(nb * kv_dim_k * f);
    L->v = align64(nb * kv_dim_v * f);
    L->att = align64(nb * att_dim * f);
    L->gate = align64(ffn_rows * ff * f);
    L->up = align64(ffn_rows * ff * f);
    /* widest activation row of any vec-dot type: F32 (4 bytes per element); with experts,
     * one row per (token, chosen expert) */
    L->aq = align64(ffn_rows * align64(wide * f));
    /* output rows: logits, or final-normed hidden states in embeddings mode */
    const bool embd_only = qfit_arch_desc_of(hp->arch)->info.embd_only;   /* an encoder: no logits */
    L->logits = align64(nb * (size_t)(hp->n_vocab > hp->n_embd && !embd_only ? hp->n_vocab : hp->n_embd) * f);
    /* cos and sin; sliding layers with another RoPE have their own pair (Gemma 3) */
    L->rope = (hp->swa_rope ? 4 : 2) * align64((size_t)n_ctx * (size_t)(hp->n_rot / 2) * f);
    /* per thread: the query head in the K cache's vec-dot type (<= 4 B/elt),
     * the V accumulator, one dequantized V head and a flash-attention tile of scores */
    L->scratch_stride = align64((size_t)hp->head_dim_k * f + 64) + 2 * align64((size_t)hp->head_dim_v * f) +
                        align64((size_t)QFIT_FA_TILE * f);
    L->scratch = L->scratch_stride * QFIT_MAX_THREADS;
    /* split decode: per head and KV chunk, the running max, sum and accumulator */
    L->part = align64((size_t)hp->n_head * QFIT_ATTN_MAX_SPLIT * ((size_t)hp->head_dim_v + 2) * f);
    /* plain attention materializes one row of n_ctx scores per thread */
    L->score_stride = flash_attn ? 0 : align64((size_t)n_ctx * f) / f;
    L->scores = L->score_stride * f * QFIT_MAX_THREADS;
    if (moe) {
        const size_t ne = (size_t)hp->n_expert, nu = (size_t)hp->n_expert_used, i32 = sizeof(int32_t);
        /* moe_prob, moe_w, moe_sel, moe_slot, moe_pos, moe_first (model_internal.h) */
        L->moe_route = align64(nb * ne * f) + align64(nb * nu * f) + align64(nb * nu * i32) +
                       2 * align64(ffn_rows * i32) + align64((ne + 1) * i32);
        L->moe_out = align64(ffn_rows * (size_t)hp->n_embd * f);
    }
    L->total = L->x + L->xn + L->q + L->k + L->v + L->att + L->gate + L->up + L->aq +
               L->logits + L->rope + L->scratch + L->part + L->scores + L->moe_route + L->moe_out;
}

size_t qfit_compute_buffer_bytes(const qfit_hparams *hp, int n_ctx, int n_batch, bool flash_attn)
{
    if (!hp || n_ctx <= 0 || n_batch <= 0) return 0;
    qfit_compute_parts L;
    qfit_compute_buffer_parts(hp, n_ctx, n_batch, flash_attn, &L);
    return L.total;
}
