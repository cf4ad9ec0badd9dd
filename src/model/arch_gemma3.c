/* gemma3 (Gemma 3 text: 270M, 1B, 4B, 12B, 27B): gemma2's layer (arch_gemma2.c) with
 * per-head Q/K RMSNorm before RoPE, no soft-capping, five sliding-window layers for each
 * global one (layer il is global when il % 6 == 5; attention.sliding_window required),
 * local layers with their own RoPE (base 10000, no scaling) and global layers with the
 * file's base and linear scaling (12B/27B: 1M, factor 8). The query scale is
 * 1/sqrt(head_dim), or 1/sqrt(n_embd / n_head) for the 27B (62 layers). The output
 * matrix is output.weight when present, else the token embedding. */
#include "model/arch.h"

#include <math.h>

static int gemma3_hparams(const qfit_gguf *g, qfit_hparams *hp, char *err, size_t err_len)
{
    hp->swa_pattern = 6;
    if (qfit_arch_read_swa(g, hp, true, err, err_len) != 0) return -1;
    hp->rope_freq_base_swa = 10000.0f;
    hp->rope_freq_scale_swa = 1.0f;
    hp->embd_scale = sqrtf((float)hp->n_embd);
    qfit_gemma_attn_scale(hp, 62);
    return 0;
}

const qfit_arch_desc qfit_arch_gemma3 = {
    .info = { .name = "gemma3", .id = QFIT_ARCH_GEMMA3, .rope_type = QFIT_ROPE_NEOX, .qk_norm = true,
              .ffn_act = QFIT_FFN_GEGLU, .sandwich_norms = true },
    .layer = qfit_gemma_layer,
    .n_layer_tensors = QFIT_GEMMA_LAYER_N,
    .hparams = gemma3_hparams,
};
