/* qwen2 (Qwen2, Qwen2.5, Qwen2.5-Coder): the llama decoder with NeoX (half-split) RoPE
 * and Q/K/V biases (a file without them is warned about; they read as zero). */
#include "model/arch.h"

const qfit_arch_desc qfit_arch_qwen2 = {
    .info = { .name = "qwen2", .id = QFIT_ARCH_QWEN2, .rope_type = QFIT_ROPE_NEOX, .qkv_bias = true },
    .layer = qfit_decoder_layer,
    .n_layer_tensors = QFIT_DECODER_LAYER_N,
};
