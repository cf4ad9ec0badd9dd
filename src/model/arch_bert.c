/* bert (BERT, all-MiniLM, mxbai-embed-large, bge): an embedding encoder, llama.cpp's
 * llm_build_bert for LLM_ARCH_BERT. Token embedding + token type 0's row + a learned
 * absolute position embedding, LayerNorm (token_embd_norm); per layer, post-norm:
 * x = LayerNorm(x + attn_output(Attention(Q, K, V))) with Q/K/V biases and bidirectional
 * attention, then x = LayerNorm(x + ffn_down(GELU(ffn_up(x)))), the output projection
 * and the FFN with optional biases. No RoPE, no final norm, no output head.
 *
 * The hyperparameter hook qfit_encoder_hparams is nomic-bert's too. */
#include "model/arch.h"

#include <stdio.h>

#define F(x) offsetof(qfit_layer_w, x)

static const qfit_layer_tensor bert_layer[] = {
    /* name suffix                field                 ne0            ne1            ne2         flags */
    { "attn_q.weight",            F(wq),                QFIT_DIM_EMBD, QFIT_DIM_Q,    QFIT_DIM_1, QFIT_LT_MATRIX },
    { "attn_k.weight",            F(wk),                QFIT_DIM_EMBD, QFIT_DIM_K,    QFIT_DIM_1, QFIT_LT_MATRIX },
    { "attn_v.weight",            F(wv),                QFIT_DIM_EMBD, QFIT_DIM_V,    QFIT_DIM_1, QFIT_LT_MATRIX },
    { "attn_q.bias",              F(bq),                QFIT_DIM_Q,    QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR },
    { "attn_k.bias",              F(bk),                QFIT_DIM_K,    QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR },
    { "attn_v.bias",              F(bv),                QFIT_DIM_V,    QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR },
    { "attn_output.weight",       F(wo),                QFIT_DIM_O,    QFIT_DIM_EMBD, QFIT_DIM_1, QFIT_LT_MATRIX },
    { "attn_output.bias",         F(bo),                QFIT_DIM_EMBD, QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR | QFIT_LT_OPTIONAL },
    { "attn_output_norm.weight",  F(attn_out_norm),     QFIT_DIM_EMBD, QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR },
    { "attn_output_norm.bias",    F(attn_out_norm_b),   QFIT_DIM_EMBD, QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR },
    { "ffn_up.weight",            F(w_up),              QFIT_DIM_EMBD, QFIT_DIM_FF,   QFIT_DIM_1, QFIT_LT_MATRIX },
    { "ffn_up.bias",              F(b_up),              QFIT_DIM_FF,   QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR | QFIT_LT_OPTIONAL },
    { "ffn_down.weight",          F(w_down),            QFIT_DIM_FF,   QFIT_DIM_EMBD, QFIT_DIM_1, QFIT_LT_MATRIX },
    { "ffn_down.bias",            F(b_down),            QFIT_DIM_EMBD, QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR | QFIT_LT_OPTIONAL },
    { "layer_output_norm.weight", F(layer_out_norm),    QFIT_DIM_EMBD, QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR },
    { "layer_output_norm.bias",   F(layer_out_norm_b),  QFIT_DIM_EMBD, QFIT_DIM_1,    QFIT_DIM_1, QFIT_LT_VECTOR },
};

int qfit_encoder_hparams(const qfit_gguf *g, qfit_hparams *hp, char *err, size_t err_len)
{
    const qfit_arch_desc *desc = qfit_arch_desc_of(hp->arch);
    char key[96];
    snprintf(key, sizeof key, "%s.attention.layer_norm_epsilon", hp->arch_name);
    const int64_t ki = qfit_gguf_find_key(g, key);
    double eps;
    if (ki < 0) { snprintf(err, err_len, "missing %s", key); return -1; }
    if (!qfit_gguf_get_float(g, ki, &eps) || !(eps > 0 && eps < 1)) {
        snprintf(err, err_len, "%s is not a number in (0, 1)", key);
        return -1;
    }
    hp->norm_eps = (float)eps;
    /* llama.cpp reads the key; a file without it is taken as the architecture's default */
    snprintf(key, sizeof key, "%s.attention.causal", hp->arch_name);
    const int64_t kc = qfit_gguf_find_key(g, key);
    hp->non_causal = desc->info.non_causal;
    if (kc >= 0) {
        if (qfit_gguf_kv_type(g, kc) != QFIT_GGUF_BOOL) {
            snprintf(err, err_len, "%s is not a boolean", key);
            return -1;
        }
        hp->non_causal = !qfit_gguf_get_bool(g, kc);
    }
    /* Q, K and V are n_embd-wide heads (llama.cpp's views of a fused QKV assume it) */
    if ((int64_t)hp->n_head * hp->head_dim_k != hp->n_embd || hp->head_dim_k != hp->head_dim_v ||
        hp->n_head_kv != hp->n_head) {
        snprintf(err, err_len, "%s with %d heads x key_length %d / value_length %d, %d KV heads, embedding_length "
                 "%d: an encoder's heads must split the embedding (no GQA)", hp->arch_name, hp->n_head,
                 hp->head_dim_k, hp->head_dim_v, hp->n_head_kv, hp->n_embd);
        return -1;
    }
    if (desc->info.pos == QFIT_POS_ABSOLUTE) hp->n_rot = 0;   /* no RoPE */
    return 0;
}

const qfit_arch_desc qfit_arch_bert = {
    .info = { .name = "bert", .id = QFIT_ARCH_BERT, .rope_type = QFIT_ROPE_NEOX, .qkv_bias = true,
              .norm = QFIT_NORM_LAYER, .post_norm = true, .non_causal = true, .ffn_act = QFIT_FFN_GELU,
              .pos = QFIT_POS_ABSOLUTE, .embd_only = true },
    .layer = bert_layer,
    .n_layer_tensors = (int)(sizeof bert_layer / sizeof bert_layer[0]),
    .hparams = qfit_encoder_hparams,
};
