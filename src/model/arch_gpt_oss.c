/* gpt-oss (OpenAI gpt-oss-20b, gpt-oss-120b), llama.cpp's LLM_ARCH_OPENAI_MOE:
 *   - NeoX RoPE with YaRN (rope.scaling.type yarn, factor 32 over an original context
 *     of 4096: hparams.c and the RoPE table in context.c), queries scaled by
 *     1/sqrt(rope.dimension_count);
 *   - Q/K/V and the attention output with biases; attention sinks (attn_sinks.weight,
 *     one logit per head joining every softmax's denominator, attn.c);
 *   - sliding-window attention on even layers (il % 2 == 0, window
 *     attention.sliding_window, required), full attention on odd ones;
 *   - the FFN's pre-norm is post_attention_norm.weight (no ffn_norm);
 *   - a mixture of experts in every layer: a router with a bias, the top
 *     expert_used_count logits softmaxed among themselves (SOFTMAX_WEIGHT gating), each
 *     expert a clamped SwiGLU (swiglu_oai, alpha 1.702, limit 7) with biases on gate,
 *     up and down;
 *   - an untied output matrix. */
#include "model/arch.h"

#include <math.h>
#include <stdio.h>

#define F(x) offsetof(qfit_layer_w, x)

static const qfit_layer_tensor gpt_oss_layer[] = {
    /* name suffix                  field            ne0              ne1              ne2              flags */
    { "attn_norm.weight",           F(attn_norm),    QFIT_DIM_EMBD,   QFIT_DIM_1,      QFIT_DIM_1,      QFIT_LT_VECTOR },
    { "attn_q.weight",              F(wq),           QFIT_DIM_EMBD,   QFIT_DIM_Q,      QFIT_DIM_1,      QFIT_LT_MATRIX },
    { "attn_k.weight",              F(wk),           QFIT_DIM_EMBD,   QFIT_DIM_K,      QFIT_DIM_1,      QFIT_LT_MATRIX },
    { "attn_v.weight",              F(wv),           QFIT_DIM_EMBD,   QFIT_DIM_V,      QFIT_DIM_1,      QFIT_LT_MATRIX },
    { "attn_output.weight",         F(wo),           QFIT_DIM_O,      QFIT_DIM_EMBD,   QFIT_DIM_1,      QFIT_LT_MATRIX },
    { "attn_q.bias",                F(bq),           QFIT_DIM_Q,      QFIT_DIM_1,      QFIT_DIM_1,      QFIT_LT_VECTOR },
    { "attn_k.bias",                F(bk),           QFIT_DIM_K,      QFIT_DIM_1,      QFIT_DIM_1,      QFIT_LT_VECTOR },
    { "attn_v.bias",                F(bv),           QFIT_DIM_V,      QFIT_DIM_1,      QFIT_DIM_1,      QFIT_LT_VECTOR },
    { "attn_output.bias",           F(bo),           QFIT_DIM_EMBD,   QFIT_DIM_1,      QFIT_DIM_1,      QFIT_LT_VECTOR },
    { "attn_sinks.weight",          F(attn_sinks),   QFIT_DIM_HEADS,  QFIT_DIM_1,      QFIT_DIM_1,      QFIT_LT_VECTOR },
    { "post_attention_norm.weight", F(ffn_norm),     QFIT_DIM_EMBD,   QFIT_DIM_1,      QFIT_DIM_1,      QFIT_LT_VECTOR },
    { "ffn_gate_inp.weight",        F(w_router),     QFIT_DIM_EMBD,   QFIT_DIM_EXPERT, QFIT_DIM_1,      QFIT_LT_MATRIX | QFIT_LT_EXPERTS },
    { "ffn_gate_inp.bias",          F(b_router),     QFIT_DIM_EXPERT, QFIT_DIM_1,      QFIT_DIM_1,      QFIT_LT_VECTOR | QFIT_LT_EXPERTS },
    { "ffn_gate_exps.weight",       F(w_gate_exps),  QFIT_DIM_EMBD,   QFIT_DIM_FF_EXP, QFIT_DIM_EXPERT, QFIT_LT_MATRIX | QFIT_LT_EXPERTS },
    { "ffn_up_exps.weight",         F(w_up_exps),    QFIT_DIM_EMBD,   QFIT_DIM_FF_EXP, QFIT_DIM_EXPERT, QFIT_LT_MATRIX | QFIT_LT_EXPERTS },
    { "ffn_down_exps.weight",       F(w_down_exps),  QFIT_DIM_FF_EXP, QFIT_DIM_EMBD,   QFIT_DIM_EXPERT, QFIT_LT_MATRIX | QFIT_LT_EXPERTS },
    { "ffn_gate_exps.bias",         F(b_gate_exps),  QFIT_DIM_FF_EXP, QFIT_DIM_EXPERT, QFIT_DIM_1,      QFIT_LT_VECTOR | QFIT_LT_EXPERTS },
    { "ffn_up_exps.bias",           F(b_up_exps),    QFIT_DIM_FF_EXP, QFIT_DIM_EXPERT, QFIT_DIM_1,      QFIT_LT_VECTOR | QFIT_LT_EXPERTS },
    { "ffn_down_exps.bias",         F(b_down_exps),  QFIT_DIM_EMBD,   QFIT_DIM_EXPERT, QFIT_DIM_1,      QFIT_LT_VECTOR | QFIT_LT_EXPERTS },
};

/* llama.cpp reads attention.layer_norm_rms_epsilon, expert_feed_forward_length and
 * attention.sliding_window as required keys for this architecture */
static int gpt_oss_hparams(const qfit_gguf *g, qfit_hparams *hp, char *err, size_t err_len)
{
    static const char *const required[] = { "attention.layer_norm_rms_epsilon", "expert_feed_forward_length" };
    char key[128];
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        snprintf(key, sizeof key, "%s.%s", hp->arch_name, required[i]);
        if (qfit_gguf_find_key(g, key) < 0) {
            snprintf(err, err_len, "missing %s", key);
            return -1;
        }
    }
    if (qfit_arch_read_swa(g, hp, true, err, err_len) != 0) return -1;
    hp->swa_pattern = 2;   /* even layers slide (llama.cpp's set_swa_pattern(2)) */
    if (hp->n_rot != hp->head_dim_k || hp->head_dim_v != hp->head_dim_k) {
        /* llama.cpp shapes Q/K/V heads by n_rot: every head dimension must be it */
        snprintf(err, err_len, "gpt-oss needs rope.dimension_count (%d) = key_length (%d) = value_length (%d)",
                 hp->n_rot, hp->head_dim_k, hp->head_dim_v);
        return -1;
    }
    hp->attn_scale = 1.0f / sqrtf((float)hp->n_rot);
    hp->attn_sinks = true;
    hp->swiglu_alpha = 1.702f;   /* llama.cpp's constants (build_moe_ffn, LLM_FFN_SWIGLU_OAI_MOE) */
    hp->swiglu_limit = 7.0f;
    return 0;
}

const qfit_arch_desc qfit_arch_gpt_oss = {
    .info = { .name = "gpt-oss", .id = QFIT_ARCH_GPT_OSS, .rope_type = QFIT_ROPE_NEOX, .qkv_bias = true,
              .experts = QFIT_EXPERTS_REQUIRED, .ffn_act = QFIT_FFN_SWIGLU_OAI,
              .moe_gating = QFIT_MOE_GATING_SOFTMAX_WEIGHT },
    .layer = gpt_oss_layer,
    .n_layer_tensors = (int)(sizeof gpt_oss_layer / sizeof gpt_oss_layer[0]),
    .hparams = gpt_oss_hparams,
};
