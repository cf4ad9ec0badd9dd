/* gemma2 (Gemma 2 2B/9B/27B): the llama decoder with
 *   - token embeddings scaled by sqrt(n_embd);
 *   - RMSNorm of the attention output and of the FFN output before each joins the
 *     residual stream (post_attention_norm, post_ffw_norm); the norm weights in a GGUF
 *     already carry Gemma's "1 + w" (the converter adds the 1);
 *   - a GeGLU FFN (gelu(gate) * up, tanh GELU);
 *   - NeoX RoPE, sliding-window attention on every other layer (even layers slide,
 *     window attention.sliding_window, default 4096), scores soft-capped
 *     (attn_logit_softcapping, default 50) and logits soft-capped
 *     (final_logit_softcapping, default 30);
 *   - queries scaled by 1/sqrt(head_dim), or 1/sqrt(n_embd / n_head) for the 27B
 *     (46 layers), as llama.cpp picks by layer count;
 *   - the output matrix is always the token embedding (tied).
 * The layer table is shared with gemma3 (arch_gemma3.c), which adds Q/K norms. */
#include "model/arch.h"

#include <math.h>
#include <stdio.h>

#define F(x) offsetof(qfit_layer_w, x)

const qfit_layer_tensor qfit_gemma_layer[QFIT_GEMMA_LAYER_N] = {
    /* name suffix                 field              ne0              ne1            ne2         flags */
    { "attn_norm.weight",          F(attn_norm),      QFIT_DIM_EMBD,   QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR },
    { "attn_q.weight",             F(wq),             QFIT_DIM_EMBD,   QFIT_DIM_Q,    QFIT_DIM_1, QFIT_LT_MATRIX },
    { "attn_k.weight",             F(wk),             QFIT_DIM_EMBD,   QFIT_DIM_K,    QFIT_DIM_1, QFIT_LT_MATRIX },
    { "attn_v.weight",             F(wv),             QFIT_DIM_EMBD,   QFIT_DIM_V,    QFIT_DIM_1, QFIT_LT_MATRIX },
    { "attn_q_norm.weight",        F(q_norm),         QFIT_DIM_HEAD_K, QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR | QFIT_LT_QK_NORM },
    { "attn_k_norm.weight",        F(k_norm),         QFIT_DIM_HEAD_K, QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR | QFIT_LT_QK_NORM },
    { "attn_output.weight",        F(wo),             QFIT_DIM_O,      QFIT_DIM_EMBD, QFIT_DIM_1, QFIT_LT_MATRIX },
    { "post_attention_norm.weight", F(attn_post_norm), QFIT_DIM_EMBD,  QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR },
    { "ffn_norm.weight",           F(ffn_norm),       QFIT_DIM_EMBD,   QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR },
    { "ffn_gate.weight",           F(w_gate),         QFIT_DIM_EMBD,   QFIT_DIM_FF,   QFIT_DIM_1, QFIT_LT_MATRIX },
    { "ffn_up.weight",             F(w_up),           QFIT_DIM_EMBD,   QFIT_DIM_FF,   QFIT_DIM_1, QFIT_LT_MATRIX },
    { "ffn_down.weight",           F(w_down),         QFIT_DIM_FF,     QFIT_DIM_EMBD, QFIT_DIM_1, QFIT_LT_MATRIX },
    { "post_ffw_norm.weight",      F(ffn_post_norm),  QFIT_DIM_EMBD,   QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR },
};

/* llama.cpp's query scale: the 27B models (by layer count) use n_embd / n_head */
void qfit_gemma_attn_scale(qfit_hparams *hp, int n_layer_27b)
{
    hp->attn_scale = hp->n_layer == n_layer_27b ? 1.0f / sqrtf((float)(hp->n_embd / hp->n_head))
                                                : 1.0f / sqrtf((float)hp->head_dim_k);
}

int qfit_arch_read_float(const qfit_gguf *g, const char *arch, const char *suffix, float *out, char *err,
                         size_t err_len)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    const int64_t i = qfit_gguf_find_key(g, key);
    if (i < 0) return 0;
    double d;
    if (!qfit_gguf_get_float(g, i, &d) || !isfinite(d)) {
        snprintf(err, err_len, "%s is not a finite number", key);
        return -1;
    }
    *out = (float)d;
    return 1;
}

int qfit_arch_read_swa(const qfit_gguf *g, qfit_hparams *hp, bool required, char *err, size_t err_len)
{
    char key[128];
    snprintf(key, sizeof key, "%s.attention.sliding_window", hp->arch_name);
    const int64_t i = qfit_gguf_find_key(g, key);
    if (i < 0) {
        if (!required) return 0;
        snprintf(err, err_len, "missing %s", key);
        return -1;
    }
    int64_t v;
    if (!qfit_gguf_get_int(g, i, &v) || v < 1 || v > (1 << 24)) {
        snprintf(err, err_len, "%s must be an integer in [1, %d]", key, 1 << 24);
        return -1;
    }
    hp->n_swa = (int)v;
    return 0;
}

static int gemma2_hparams(const qfit_gguf *g, qfit_hparams *hp, char *err, size_t err_len)
{
    hp->n_swa = 4096;   /* Gemma 2's window when the file does not say */
    hp->swa_pattern = 2;
    hp->attn_softcap = 50.0f;
    hp->final_softcap = 30.0f;
    if (qfit_arch_read_swa(g, hp, false, err, err_len) != 0) return -1;
    if (qfit_arch_read_float(g, hp->arch_name, "attn_logit_softcapping", &hp->attn_softcap, err, err_len) < 0 ||
        qfit_arch_read_float(g, hp->arch_name, "final_logit_softcapping", &hp->final_softcap, err, err_len) < 0)
        return -1;
    if (!(hp->attn_softcap > 0) || !(hp->final_softcap > 0)) {
        snprintf(err, err_len, "gemma2 soft-capping values must be positive (attention %g, final %g)",
                 (double)hp->attn_softcap, (double)hp->final_softcap);
        return -1;
    }
    hp->embd_scale = sqrtf((float)hp->n_embd);
    qfit_gemma_attn_scale(hp, 46);
    return 0;
}

const qfit_arch_desc qfit_arch_gemma2 = {
    .info = { .name = "gemma2", .id = QFIT_ARCH_GEMMA2, .rope_type = QFIT_ROPE_NEOX, .ffn_act = QFIT_FFN_GEGLU,
              .sandwich_norms = true },
    .layer = qfit_gemma_layer,
    .n_layer_tensors = QFIT_GEMMA_LAYER_N,
    .hparams = gemma2_hparams,
};
