/* phi3 (Phi-3, Phi-3.5, Phi-4): the llama decoder with NeoX (half-split) RoPE, Q, K and V
 * as one fused matrix (attn_qkv: Q rows, then K, then V) and gate and up as one (ffn_up:
 * 2 n_ff rows, gate first; llama.cpp's LLM_FFN_SWIGLU on the fused output), no biases.
 * LongRoPE (Phi-3 128K: rope_factors_long/short and an attention factor) is read by the
 * common code (hparams.c, model.c, the RoPE tables in context.c), as llama.cpp does for
 * every architecture. */
#include "model/arch.h"

#include <stdio.h>

#define F(x) offsetof(qfit_layer_w, x)

static const qfit_layer_tensor phi3_layer[] = {
    /* name suffix           field          ne0            ne1            ne2         flags */
    { "attn_norm.weight",    F(attn_norm),  QFIT_DIM_EMBD, QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR },
    { "attn_qkv.weight",     F(wqkv),       QFIT_DIM_EMBD, QFIT_DIM_QKV,  QFIT_DIM_1, QFIT_LT_MATRIX },
    { "attn_output.weight",  F(wo),         QFIT_DIM_O,    QFIT_DIM_EMBD, QFIT_DIM_1, QFIT_LT_MATRIX },
    { "ffn_norm.weight",     F(ffn_norm),   QFIT_DIM_EMBD, QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR },
    { "ffn_up.weight",       F(w_gate_up),  QFIT_DIM_EMBD, QFIT_DIM_FF2,  QFIT_DIM_1, QFIT_LT_MATRIX },
    { "ffn_down.weight",     F(w_down),     QFIT_DIM_FF,   QFIT_DIM_EMBD, QFIT_DIM_1, QFIT_LT_MATRIX },
};

static int phi3_hparams(const qfit_gguf *g, qfit_hparams *hp, char *err, size_t err_len)
{
    (void)g;
    if (hp->head_dim_k != hp->head_dim_v) {
        snprintf(err, err_len, "phi3 with key_length %d != value_length %d", hp->head_dim_k, hp->head_dim_v);
        return -1;
    }
    return 0;
}

static void phi3_split(const qfit_hparams *hp, qfit_layer_w *L)
{
    const int64_t q = (int64_t)hp->n_head * hp->head_dim_k, kv = (int64_t)hp->n_head_kv * hp->head_dim_k;
    L->wq = qfit_wt_rows(&L->wqkv, 0, q);
    L->wk = qfit_wt_rows(&L->wqkv, q, kv);
    L->wv = qfit_wt_rows(&L->wqkv, q + kv, kv);
    L->w_gate = qfit_wt_rows(&L->w_gate_up, 0, hp->n_ff);
    L->w_up = qfit_wt_rows(&L->w_gate_up, hp->n_ff, hp->n_ff);
}

const qfit_arch_desc qfit_arch_phi3 = {
    .info = { .name = "phi3", .id = QFIT_ARCH_PHI3, .rope_type = QFIT_ROPE_NEOX },
    .layer = phi3_layer,
    .n_layer_tensors = (int)(sizeof phi3_layer / sizeof phi3_layer[0]),
    .hparams = phi3_hparams,
    .split_layer = phi3_split,
};
