/* llama (and mistral, the same graph): dense decoder, RMSNorm, normal (adjacent-pair)
 * RoPE with optional Llama-3 frequency factors (rope_freqs.weight), SwiGLU FFN. Biases
 * and Q/K norms are read when a file has them. With llama.expert_count > 0 (Mixtral)
 * the FFN is a mixture of experts: a router (ffn_gate_inp) and the merged expert
 * tensors ffn_{gate,up,down}_exps, each expert n_ff wide unless
 * expert_feed_forward_length says otherwise; the top expert_used_count experts'
 * softmax weights are renormalised to sum 1 (llama.cpp's build_moe_ffn, norm_w). */
#include "model/arch.h"

static const char *const llama_aliases[] = { "mistral", NULL };

const qfit_arch_desc qfit_arch_llama = {
    .info = { .name = "llama", .id = QFIT_ARCH_LLAMA, .rope_type = QFIT_ROPE_NORMAL,
              .experts = QFIT_EXPERTS_OPTIONAL },
    .aliases = llama_aliases,
    .layer = qfit_decoder_layer,
    .n_layer_tensors = QFIT_DECODER_LAYER_N,
};
