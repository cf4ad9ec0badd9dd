/* llama (and mistral, the same graph): dense decoder, RMSNorm, normal (adjacent-pair)
 * RoPE with optional Llama-3 frequency factors (rope_freqs.weight), SwiGLU FFN. Biases
 * and Q/K norms are read when a file has them. */
#include "model/arch.h"

static const char *const llama_aliases[] = { "mistral", NULL };

const qfit_arch_desc qfit_arch_llama = {
    .info = { .name = "llama", .id = QFIT_ARCH_LLAMA, .rope_type = QFIT_ROPE_NORMAL },
    .aliases = llama_aliases,
    .layer = qfit_decoder_layer,
    .n_layer_tensors = QFIT_DECODER_LAYER_N,
};
