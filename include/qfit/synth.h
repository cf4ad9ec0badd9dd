/* qfit — synthetic models: real models' exact shapes and metadata, random weights.
 *
 *   !! Synthetic models are for SPEED and MEMORY measurements only. Their weights
 *   !! are random numbers: they load and run like the real model of that shape,
 *   !! but they generate gibberish. Never use them for quality measurements.
 *
 * A synthetic model carries the architecture keys llama.cpp expects
 * ({arch}.context_length, embedding_length, block_count, feed_forward_length,
 * attention.head_count(_kv), layer_norm_rms_epsilon, rope.freq_base, ...), a
 * placeholder SentencePiece-style vocabulary of the right size (<unk>, <s>, </s>,
 * the 256 byte tokens, then filler pieces) and random weights (roughly gaussian,
 * sd 0.02; norm weights 1.0), generated directly in the requested quantization
 * mix row block by row block, so a large model never exists in F32 in memory.
 * The bytes depend only on (shape, type, seed), not on the thread count.
 *
 * Encoders (an arch whose qfit_arch_info.embd_only is set: bert, nomic-bert) get
 * llama.cpp's encoder keys instead ({arch}.attention.layer_norm_epsilon = rms_eps,
 * attention.causal false, pooling_type 1 (mean), tokenizer.ggml.token_type_count 2),
 * their tensors (token_types, position_embd for bert, token_embd_norm, the post-norm
 * layers; no output head) and a WordPiece vocabulary (tokenizer.ggml.model "bert":
 * [PAD] 0, [unusedN] 1..99, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103, then a..z and
 * 0..9 as word starts and as "##" continuations, punctuation, a few words and
 * suffixes, then filler words). n_head_kv and head_dim must be n_head and
 * n_embd / n_head.
 */
#ifndef QFIT_SYNTH_H
#define QFIT_SYNTH_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *name;        /* "llama3.2-1b" */
    const char *arch;        /* GGUF general.architecture: "llama", "qwen2" */
    const char *desc;        /* which real model it copies */
    int   n_vocab;
    int   n_embd;
    int   n_layer;
    int   n_ff;
    int   n_head;
    int   n_head_kv;
    int   head_dim;
    int   n_ctx;             /* {arch}.context_length */
    float rope_base;
    float rms_eps;
    bool  tied_output;       /* no output.weight: token_embd is reused */
    bool  qkv_bias;          /* attn_q/k/v.bias (Qwen2) */
    bool  rope_freqs;        /* rope_freqs.weight (Llama 3.1+ rope scaling) */
    int   n_expert;          /* mixture of experts: {arch}.expert_count (0: dense FFN) */
    int   n_expert_used;     /* expert_used_count */
    int   n_ff_exp;          /* one expert's width (written as expert_feed_forward_length
                                except for llama, whose experts are n_ff wide) */
    int   n_swa;             /* {arch}.attention.sliding_window (0: not written) */
    float attn_softcap;      /* {arch}.attn_logit_softcapping (0: not written) */
    float final_softcap;     /* {arch}.final_logit_softcapping (0: not written) */
    float rope_scale;        /* RoPE scaling factor: rope.scaling.type/factor (0: none); linear
                                unless yarn_orig_ctx is set */
    int   yarn_orig_ctx;     /* > 0: the scaling is YaRN over this original context
                                (rope.scaling.type yarn, rope.scaling.original_context_length) */
    int   rope_orig_ctx;     /* > 0: LongRoPE (Phi-3 128K): rope_factors_long/short tensors and
                                rope.scaling.original_context_length */
    float rope_attn_factor;  /* rope.scaling.attn_factor (0: not written) */
} qfit_synth_shape;

size_t                  qfit_synth_n_shapes(void);
const qfit_synth_shape *qfit_synth_shape_at(size_t i);
/* Case-insensitive; NULL if unknown. */
const qfit_synth_shape *qfit_synth_find_shape(const char *name);
/* Weights of the shape (elements of all tensors). */
int64_t                 qfit_synth_n_params(const qfit_synth_shape *s);

/* One tensor of a shape, in llama.cpp's file order. */
typedef struct {
    char     name[64];
    uint32_t n_dims;
    int64_t  ne[4];
} qfit_synth_tensor;

/* Tensor list (malloc'd, *n entries; free() it). NULL on out of memory. */
qfit_synth_tensor *qfit_synth_tensors(const qfit_synth_shape *s, size_t *n);

typedef void (*qfit_synth_progress_fn)(void *user, int64_t done, int64_t total,
                                       uint64_t bytes_done, uint64_t bytes_total, const char *name);

typedef struct {
    const qfit_synth_shape *shape;
    int      ftype;          /* qfit_ftype (see qfit/quantize.h), must be supported */
    uint64_t seed;
    int      n_threads;      /* <= 0: online CPUs */
    qfit_synth_progress_fn progress;
    void    *progress_user;
} qfit_synth_params;

typedef struct {
    int64_t  n_tensors;
    int64_t  n_params;
    uint64_t data_bytes;
    uint64_t file_bytes;
    int      n_fallback;
    int      n_threads;
    double   seconds;
    int64_t  type_count[64];
} qfit_synth_stats;

/* Write a synthetic model to path (temporary file + rename). 0, or -1 + err. */
int qfit_synth_write(const char *path, const qfit_synth_params *p, qfit_synth_stats *stats,
                     char *err, size_t err_len);

#ifdef __cplusplus
}
#endif
#endif /* QFIT_SYNTH_H */
