/* Internal to src/model: architecture descriptors (one file per architecture,
 * src/model/arch_<name>.c) and the registry (arch.c). Other modules use the public
 * qfit_arch_info / qfit_arch_find of qfit/model.h.
 *
 * A descriptor says what differs between architectures (decoders, and the encoders
 * bert and nomic-bert): the public facts (name, RoPE layout, which optional parts it
 * has, norm kind, pre- or post-norm, causal or not, FFN activation, positions, whether
 * it has an output head), extra hyperparameters read after
 * the common ones, and its per-layer tensors (name suffix, the field of qfit_layer_w
 * it binds, its shape in terms of the hyperparameters, and whether it is required).
 * The loader binds exactly the listed tensors. From the descriptor and the hyperparameters
 * its hook sets, qfit_layer_recipe_of (hparams.c) resolves each layer's recipe, which the
 * forward pass (backend_cpu.c, attn.c, encoder_cpu.c) composes and the sizing functions
 * count; the loader checks that every step of a recipe has its tensors. */
#ifndef QFIT_MODEL_ARCH_H
#define QFIT_MODEL_ARCH_H

#include <stdbool.h>
#include <stddef.h>

#include "model/model_internal.h"

/* shapes of per-layer tensors, in terms of the hyperparameters */
typedef enum {
    QFIT_DIM_1 = 0,    /* a vector: ne1 = 1 */
    QFIT_DIM_EMBD,     /* n_embd */
    QFIT_DIM_Q,        /* n_head * head_dim_k */
    QFIT_DIM_K,        /* n_head_kv * head_dim_k */
    QFIT_DIM_V,        /* n_head_kv * head_dim_v */
    QFIT_DIM_O,        /* n_head * head_dim_v */
    QFIT_DIM_FF,       /* n_ff */
    QFIT_DIM_HEAD_K,   /* head_dim_k */
    QFIT_DIM_FF_EXP,   /* n_ff_exp (one expert's FFN width) */
    QFIT_DIM_EXPERT,   /* n_expert */
    QFIT_DIM_QKV,      /* Q + K + V rows of a fused projection */
    QFIT_DIM_FF2,      /* 2 n_ff: gate and up rows of a fused projection */
    QFIT_DIM_HEADS,    /* n_head (one value per query head: attention sinks) */
} qfit_dim;

enum {
    QFIT_LT_MATRIX   = 1,   /* a weight matrix (needs a compute kernel) */
    QFIT_LT_VECTOR   = 2,   /* a norm weight or a bias (f32; experts' biases: one row [ne0] per
                               expert, ne1 = n_expert) */
    QFIT_LT_OPTIONAL = 4,   /* may be absent */
    QFIT_LT_QK_NORM  = 8,   /* required when the architecture has Q/K norms (info.qk_norm),
                               else optional */
    QFIT_LT_DENSE    = 16,  /* the dense FFN: bound only when the model has no experts */
    QFIT_LT_EXPERTS  = 32,  /* the router and the experts: bound only when it has */
};

typedef struct {
    const char *suffix;     /* "attn_q.weight": the tensor is "blk.N." suffix */
    size_t      field;      /* offsetof(qfit_layer_w, ...) */
    qfit_dim    ne0, ne1;
    qfit_dim    ne2;        /* experts: one [ne0, ne1] matrix per expert (QFIT_DIM_1 otherwise) */
    int         flags;
} qfit_layer_tensor;

typedef struct qfit_arch_desc {
    qfit_arch_info info;
    const char *const *aliases;          /* other general.architecture names (NULL-terminated; may be NULL) */
    const qfit_layer_tensor *layer;      /* per-layer tensors, n_layer_tensors of them */
    int n_layer_tensors;
    /* after the common keys are read: the architecture's own (may be NULL) */
    int (*hparams)(const qfit_gguf *g, qfit_hparams *hp, char *err, size_t err_len);
    /* after a layer's tensors are bound (and after qfit_model_replace_weight changed one):
     * derive the matrices the forward pass uses from fused ones (may be NULL) */
    void (*split_layer)(const qfit_hparams *hp, qfit_layer_w *L);
} qfit_arch_desc;

/* A view of rows [r0, r0 + n) of a (2-D) matrix. */
qfit_wt qfit_wt_rows(const qfit_wt *w, int64_t r0, int64_t n);

/* The decoder layer of llama: norms, Q/K/V/O with optional biases and Q/K norms, and
 * a SwiGLU FFN, dense or a mixture of SwiGLU experts. Architectures that are this with
 * different flags share it. */
#define QFIT_DECODER_LAYER_N 18
extern const qfit_layer_tensor qfit_decoder_layer[QFIT_DECODER_LAYER_N];

/* Gemma's layer (gemma2, gemma3): the decoder layer's dense part plus post-norms
 * (arch_gemma2.c). Q/K norms are bound where the architecture has them. */
#define QFIT_GEMMA_LAYER_N 13
extern const qfit_layer_tensor qfit_gemma_layer[QFIT_GEMMA_LAYER_N];
/* hp->attn_scale as llama.cpp sets it for Gemma: 1/sqrt(n_embd / n_head) when the model
 * has n_layer_27b layers (its "27B" type), else 1/sqrt(head_dim_k) */
void qfit_gemma_attn_scale(qfit_hparams *hp, int n_layer_27b);

/* Helpers for descriptors' hparams hooks. "<arch>.<suffix>" as a finite float into *out:
 * 1 found, 0 absent (out unchanged), -1 with a message (wrong type, not finite). */
int qfit_arch_read_float(const qfit_gguf *g, const char *arch, const char *suffix, float *out, char *err,
                         size_t err_len);
/* <arch>.attention.sliding_window into hp->n_swa (in [1, 2^24]); absent: an error when
 * required, else hp->n_swa unchanged. 0 or -1 with a message. */
int qfit_arch_read_swa(const qfit_gguf *g, qfit_hparams *hp, bool required, char *err, size_t err_len);

extern const qfit_arch_desc qfit_arch_llama, qfit_arch_qwen2, qfit_arch_qwen3, qfit_arch_qwen3moe, qfit_arch_phi3,
    qfit_arch_gemma2, qfit_arch_gemma3, qfit_arch_gpt_oss;
extern const qfit_arch_desc qfit_arch_bert, qfit_arch_nomic_bert;

/* The encoders' hyperparameters (arch_bert.c): {arch}.attention.layer_norm_epsilon
 * (required), {arch}.attention.causal (default: the descriptor's), heads that split the
 * embedding, no RoPE with absolute positions. */
int qfit_encoder_hparams(const qfit_gguf *g, qfit_hparams *hp, char *err, size_t err_len);

/* The descriptor of an architecture name (aliases included), NULL if unsupported. */
const qfit_arch_desc *qfit_arch_desc_find(const char *name);
/* The descriptor of an id (always one of the registered). */
const qfit_arch_desc *qfit_arch_desc_of(qfit_arch id);
/* The value of a dimension for these hyperparameters. */
int64_t qfit_dim_value(const qfit_hparams *hp, qfit_dim d);

#endif
