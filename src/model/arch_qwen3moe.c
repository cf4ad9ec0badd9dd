/* qwen3moe (Qwen3-30B-A3B, Qwen3-235B-A22B): qwen3's attention (NeoX RoPE, per-head Q/K
 * RMSNorm) with a mixture-of-experts FFN in every layer: a router (ffn_gate_inp), and
 * expert_count SwiGLU experts of expert_feed_forward_length rows (ffn_{gate,up,down}_exps),
 * expert_used_count of them per token, their weights renormalised (llama.cpp's
 * build_moe_ffn with norm_w). No shared expert (that is qwen2moe). */
#include "model/arch.h"

#include <stdio.h>

/* llama.cpp's default when expert_feed_forward_length is absent: n_ff / expert_used_count */
static int qwen3moe_hparams(const qfit_gguf *g, qfit_hparams *hp, char *err, size_t err_len)
{
    char key[96];
    snprintf(key, sizeof key, "%s.expert_feed_forward_length", hp->arch_name);
    if (qfit_gguf_find_key(g, key) < 0) {
        hp->n_ff_exp = hp->n_ff / hp->n_expert_used;
        if (hp->n_ff_exp < 1) {
            snprintf(err, err_len, "%s is missing and feed_forward_length %d / expert_used_count %d is 0", key,
                     hp->n_ff, hp->n_expert_used);
            return -1;
        }
    }
    return 0;
}

const qfit_arch_desc qfit_arch_qwen3moe = {
    .info = { .name = "qwen3moe", .id = QFIT_ARCH_QWEN3MOE, .rope_type = QFIT_ROPE_NEOX, .qk_norm = true,
              .experts = QFIT_EXPERTS_REQUIRED },
    .layer = qfit_decoder_layer,
    .n_layer_tensors = QFIT_DECODER_LAYER_N,
    .hparams = qwen3moe_hparams,
};
