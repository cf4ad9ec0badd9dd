/* nomic-bert (nomic-embed-text v1 / v1.5): llama.cpp's llm_build_bert for
 * LLM_ARCH_NOMIC_BERT. bert's post-norm encoder with rotary positions (NeoX,
 * {arch}.rope.freq_base) instead of position embeddings, Q, K and V as one fused
 * matrix (attn_qkv: Q rows, then K, then V; no bias) and a SwiGLU FFN
 * (ffn_down(silu(ffn_gate(x)) * ffn_up(x))) without biases: llama.cpp passes none to
 * this FFN even when a file has ffn_up.bias / ffn_down.bias, so they are not read here
 * either. The output projection's bias is used when present. Token types as bert. */
#include "model/arch.h"

#include <stdio.h>

#define F(x) offsetof(qfit_layer_w, x)

static const qfit_layer_tensor nomic_layer[] = {
    /* name suffix                field                 ne0            ne1            ne2         flags */
    { "attn_qkv.weight",          F(wqkv),              QFIT_DIM_EMBD, QFIT_DIM_QKV,  QFIT_DIM_1, QFIT_LT_MATRIX },
    { "attn_output.weight",       F(wo),                QFIT_DIM_O,    QFIT_DIM_EMBD, QFIT_DIM_1, QFIT_LT_MATRIX },
    { "attn_output.bias",         F(bo),                QFIT_DIM_EMBD, QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR | QFIT_LT_OPTIONAL },
    { "attn_output_norm.weight",  F(attn_out_norm),     QFIT_DIM_EMBD, QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR },
    { "attn_output_norm.bias",    F(attn_out_norm_b),   QFIT_DIM_EMBD, QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR },
    { "ffn_gate.weight",          F(w_gate),            QFIT_DIM_EMBD, QFIT_DIM_FF,   QFIT_DIM_1, QFIT_LT_MATRIX },
    { "ffn_up.weight",            F(w_up),              QFIT_DIM_EMBD, QFIT_DIM_FF,   QFIT_DIM_1, QFIT_LT_MATRIX },
    { "ffn_down.weight",          F(w_down),            QFIT_DIM_FF,   QFIT_DIM_EMBD, QFIT_DIM_1, QFIT_LT_MATRIX },
    { "layer_output_norm.weight", F(layer_out_norm),    QFIT_DIM_EMBD, QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR },
    { "layer_output_norm.bias",   F(layer_out_norm_b),  QFIT_DIM_EMBD, QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR },
};

static int nomic_hparams(const qfit_gguf *g, qfit_hparams *hp, char *err, size_t err_len)
{
    if (qfit_gguf_find_tensor(g, "blk.0.attn_qkv.bias") >= 0) {
        snprintf(err, err_len, "this nomic-bert model has a fused QKV bias (blk.0.attn_qkv.bias), which is not "
                 "supported yet");
        return -1;
    }
    return qfit_encoder_hparams(g, hp, err, err_len);
}

static void nomic_split(const qfit_hparams *hp, qfit_layer_w *L)
{
    const int64_t q = (int64_t)hp->n_head * hp->head_dim_k, kv = (int64_t)hp->n_head_kv * hp->head_dim_k;
    L->wq = qfit_wt_rows(&L->wqkv, 0, q);
    L->wk = qfit_wt_rows(&L->wqkv, q, kv);
    L->wv = qfit_wt_rows(&L->wqkv, q + kv, kv);
}

const qfit_arch_desc qfit_arch_nomic_bert = {
    .info = { .name = "nomic-bert", .id = QFIT_ARCH_NOMIC_BERT, .rope_type = QFIT_ROPE_NEOX,
              .norm = QFIT_NORM_LAYER, .post_norm = true, .non_causal = true, .ffn_act = QFIT_FFN_SWIGLU,
              .pos = QFIT_POS_ROPE, .embd_only = true },
    .layer = nomic_layer,
    .n_layer_tensors = (int)(sizeof nomic_layer / sizeof nomic_layer[0]),
    .hparams = nomic_hparams,
    .split_layer = nomic_split,
};
