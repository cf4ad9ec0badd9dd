/* llama (and mistral, the same graph): dense decoder, RMSNorm, normal (adjacent-pair)
 * RoPE with optional Llama-3 frequency factors (rope_freqs.weight), SwiGLU FFN. Biases
 * and Q/K norms are read when a file has them. */
#include "model/arch.h"

#include <stdio.h>

static const char *const llama_aliases[] = { "mistral", NULL };

/* Mixtral and other llama-architecture mixtures of experts carry llama.expert_count:
 * their FFN is a router and expert tensors, which this dense descriptor does not have */
static int llama_hparams(const qfit_gguf *g, qfit_hparams *hp, char *err, size_t err_len)
{
    char key[96];
    snprintf(key, sizeof key, "%s.expert_count", hp->arch_name);
    const int64_t i = qfit_gguf_find_key(g, key);
    int64_t n = 0;
    if (i >= 0 && qfit_gguf_get_int(g, i, &n) && n > 0) {
        snprintf(err, err_len, "%s = %lld: mixture-of-experts models (Mixtral and the like) are not supported yet",
                 key, (long long)n);
        return -1;
    }
    return 0;
}

const qfit_arch_desc qfit_arch_llama = {
    .info = { .name = "llama", .id = QFIT_ARCH_LLAMA, .rope_type = QFIT_ROPE_NORMAL },
    .aliases = llama_aliases,
    .layer = qfit_decoder_layer,
    .n_layer_tensors = QFIT_DECODER_LAYER_N,
    .hparams = llama_hparams,
};
