/* qwen3 (dense Qwen3): the llama decoder with NeoX (half-split) RoPE and a per-head
 * RMSNorm of Q and K before RoPE (attn_q_norm / attn_k_norm, required); no biases. */
#include "model/arch.h"

const qfit_arch_desc qfit_arch_qwen3 = {
    .info = { .name = "qwen3", .id = QFIT_ARCH_QWEN3, .rope_type = QFIT_ROPE_NEOX, .qk_norm = true },
    .layer = qfit_decoder_layer,
    .n_layer_tensors = QFIT_DECODER_LAYER_N,
};
