/* qfit — the inference engine: hyperparameters, model (memory-mapped weights),
 * inference context (KV cache, compute buffers, thread pool) and the forward pass.
 *
 * Architectures: llama (Llama 2/3.x, Mistral, and Mixtral's mixture of experts), qwen2
 * (Q/K/V biases, NEOX RoPE, tied embeddings when output.weight is absent), qwen3
 * (per-head Q/K RMSNorm), qwen3moe (qwen3 with a mixture-of-experts FFN), phi3 (Phi-3 /
 * Phi-4: fused QKV and gate-up matrices), gemma2 and gemma3 (sliding-window and global
 * layers, GELU-gated FFN, post-norms, soft-capping, scaled embeddings), gpt-oss (OpenAI's
 * gpt-oss-20b/120b: attention sinks, biases everywhere, sliding window on even layers,
 * YaRN RoPE, a mixture of clamped-SwiGLU experts with biases, softmax over the chosen
 * experts' router logits), and the embedding
 * encoders bert (BERT, all-MiniLM, mxbai-embed-large, bge) and nomic-bert (nomic-embed-text).
 *
 * Encoders (qfit_arch_info.embd_only): bidirectional attention over each sequence of a
 * call, no KV cache kept between calls and no vocabulary head. Their contract differs
 * from a decoder's in three points:
 *   - only embeddings mode: a decode that asks for logits (qfit_context_params.embeddings
 *     false and at least one output requested) fails with QFIT_E_UNSUPPORTED; the outputs
 *     are the last layer's hidden states (qfit_get_embeddings), with no further norm;
 *   - every qfit_decode / qfit_decode_batch holds whole inputs: each sequence it uses
 *     must be empty (qfit_context_reset / qfit_seq_truncate to 0 in between; a sequence
 *     that holds positions is QFIT_E_INVALID, never silently mixed into the new input)
 *     and every token must fit one pass (n_tokens <= n_batch, else QFIT_E_INVALID naming
 *     both numbers: llama.cpp's n_ubatch >= n_tokens rule for non-causal models). Each
 *     token attends to every token of its sequence in the call;
 *   - the default n_batch is n_ctx (not 512), so that any input that fits the
 *     context fits the pass.
 * Core module: libc, libm, pthreads.
 */
#ifndef QFIT_MODEL_H
#define QFIT_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "qfit/gguf.h"
#include "qfit/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QFIT_MAX_THREADS 256
#define QFIT_MAX_EXPERTS 512   /* {arch}.expert_count above this is refused */

typedef enum {
    QFIT_ARCH_LLAMA = 0,
    QFIT_ARCH_QWEN2 = 1,
    QFIT_ARCH_QWEN3 = 2,
    QFIT_ARCH_QWEN3MOE = 3,
    QFIT_ARCH_PHI3 = 4,
    QFIT_ARCH_GEMMA2 = 5,
    QFIT_ARCH_GEMMA3 = 6,
    QFIT_ARCH_BERT = 7,
    QFIT_ARCH_NOMIC_BERT = 8,
    QFIT_ARCH_GPT_OSS = 9,
} qfit_arch;

typedef enum {
    QFIT_ROPE_NORMAL = 0,  /* rotate adjacent pairs (x[2i], x[2i+1]) — llama */
    QFIT_ROPE_NEOX   = 2,  /* rotate halves (x[i], x[i + n_rot/2]) — qwen2/qwen3 */
} qfit_rope_type;

/* Mixture of experts in an architecture's FFN ({arch}.expert_count > 0). */
typedef enum {
    QFIT_EXPERTS_NONE = 0,      /* dense only: a file with expert_count > 0 is refused */
    QFIT_EXPERTS_OPTIONAL = 1,  /* dense or experts (llama: Mixtral) */
    QFIT_EXPERTS_REQUIRED = 2,  /* experts only (qwen3moe) */
} qfit_experts;

/* The normalization of an architecture's layers. */
typedef enum {
    QFIT_NORM_RMS = 0,     /* x / rms(x) * w (llama, qwen, phi3) */
    QFIT_NORM_LAYER = 1,   /* (x - mean) / sd(x) * w + b (BERT's LayerNorm) */
} qfit_norm_kind;

/* The activation of a dense FFN. GELU is the tanh approximation evaluated as ggml's CPU
 * backend does: the input rounded to fp16, the result read from a table of fp16 values. */
typedef enum {
    QFIT_FFN_SWIGLU = 0,   /* down(silu(gate(x)) * up(x)) */
    QFIT_FFN_GELU = 1,     /* down(gelu(up(x) + b_up)) + b_down: no gate (BERT) */
    QFIT_FFN_GEGLU = 2,    /* down(gelu(gate(x)) * up(x)) (Gemma) */
    QFIT_FFN_SWIGLU_OAI = 3, /* gpt-oss's clamped SwiGLU (ggml's swiglu_oai): g = min(gate, limit),
                                u = clamp(up, -limit, limit), down(g * sigmoid(alpha g) * (u + 1));
                                alpha and limit in qfit_hparams (1.702 and 7) */
} qfit_ffn_act;

/* How a mixture of experts turns the router's logits into the chosen experts' weights
 * (llama.cpp's expert gating functions). */
typedef enum {
    QFIT_MOE_GATING_SOFTMAX = 0,        /* softmax over all experts, the top n_expert_used,
                                           their probabilities renormalised to sum 1
                                           (Mixtral, Qwen3-MoE) */
    QFIT_MOE_GATING_SOFTMAX_WEIGHT = 1, /* the top n_expert_used logits, then a softmax over
                                           those alone (gpt-oss): equal to SOFTMAX's weights
                                           in exact arithmetic, evaluated in ggml's order */
} qfit_moe_gating;

/* How positions enter the model. */
typedef enum {
    QFIT_POS_ROPE = 0,      /* rotary embeddings of Q and K (rope_type) */
    QFIT_POS_ABSOLUTE = 1,  /* a learned position_embd row added to the token embedding; no RoPE */
} qfit_pos_kind;

/* An architecture as the engine and the planner see it (each has its descriptor,
 * src/model/arch_<name>.c). Static; thread-safe. */
typedef struct {
    const char    *name;       /* general.architecture */
    qfit_arch      id;
    qfit_rope_type rope_type;
    bool           qkv_bias;   /* has Q/K/V biases (a file without them: a warning, zeros) */
    bool           qk_norm;    /* per-head RMSNorm of Q and K before RoPE (required) */
    qfit_experts   experts;    /* whether its FFN may or must be a mixture of experts */
    bool           sandwich_norms; /* RMSNorm of the attention and FFN outputs before they join
                                      the residual stream too (post_attention_norm,
                                      post_ffw_norm: Gemma 2/3) */
    /* encoders (bert, nomic-bert); zero for the decoders */
    qfit_norm_kind norm;       /* the norms' kind */
    bool           post_norm;  /* each block is x = norm(x + block(x)) (BERT), not
                                  x = x + block(norm(x)); the embeddings are normed too
                                  (token_embd_norm) and there is no final norm */
    bool           non_causal; /* attention sees the whole sequence by default
                                  ({arch}.attention.causal overrides) */
    qfit_ffn_act   ffn_act;    /* the dense FFN's activation */
    qfit_pos_kind  pos;        /* positions: RoPE or absolute embeddings */
    bool           embd_only;  /* no output head: embeddings mode only, one pass per call */
    qfit_moe_gating moe_gating; /* how the router's logits become the experts' weights */
} qfit_arch_info;

/* The architecture of a general.architecture name ("mistral" is llama's), NULL when
 * qfit does not support it. */
const qfit_arch_info *qfit_arch_find(const char *name);
/* The supported names ("llama, mistral, qwen2, qwen3"), for messages. */
const char *qfit_arch_supported_list(void);

/* Everything the forward pass and the memory planner need, read from GGUF
 * metadata alone (no tensor data). */
typedef struct {
    qfit_arch arch;
    char      arch_name[32];
    int       n_ctx_train;
    int       n_embd;
    int       n_layer;
    int       n_ff;
    int       n_head;
    int       n_head_kv;
    int       head_dim_k;      /* key_length (default n_embd / n_head) */
    int       head_dim_v;      /* value_length (default head_dim_k) */
    int       n_vocab;
    float     rms_eps;
    float     rope_freq_base;
    float     rope_freq_scale; /* 1 / scaling factor (1 = none): linear, or YaRN's interpolation */
    /* YaRN ({arch}.rope.scaling.type "yarn"; ggml's rope_yarn, llama.cpp's defaults):
     * dimension i's angle blends the interpolated (scaled) angle and the original one by
     * a ramp between the correction dims of beta_fast and beta_slow rotations over
     * n_ctx_orig positions, and cos/sin (so Q and K) are multiplied by
     * rope_attn_factor * (1 + 0.1 ln(1 / rope_freq_scale)). rope_ext_factor 0: no YaRN
     * (cos/sin times rope_attn_factor). */
    float     rope_ext_factor;   /* 1 with YaRN, else 0 */
    float     rope_attn_factor;  /* rope.scaling.attn_factor (default 1) */
    float     rope_beta_fast;    /* 32 */
    float     rope_beta_slow;    /* 1 */
    int       n_ctx_orig;        /* rope.scaling.original_context_length (default context_length) */
    int       n_rot;           /* rope.dimension_count (default head_dim_k) */
    qfit_rope_type rope_type;
    bool      has_qkv_bias;    /* qwen2 */
    bool      has_qk_norm;     /* qwen3 */
    /* mixture of experts (0 experts: a dense FFN of n_ff): each token's FFN is the
     * weighted sum of n_expert_used of n_expert SwiGLU experts of n_ff_exp rows, picked
     * by the router (softmax over ffn_gate_inp's logits, top n_expert_used, weights
     * renormalised to sum 1, as llama.cpp does for Mixtral and Qwen3-MoE) */
    int       n_expert;        /* expert_count */
    int       n_expert_used;   /* expert_used_count */
    int       n_ff_exp;        /* expert_feed_forward_length (default: llama n_ff,
                                  qwen3moe n_ff / n_expert_used, as llama.cpp) */
    qfit_moe_gating moe_gating; /* from the architecture. A router bias (ffn_gate_inp.bias)
                                   is added to the logits, expert biases (ffn_{gate,up,down}_exps.bias,
                                   one row per expert) to each expert's outputs, when the file has them */
    float     swiglu_alpha;    /* QFIT_FFN_SWIGLU_OAI's alpha and limit */
    float     swiglu_limit;
    /* attention and output variants (defaults: none of them) */
    float     attn_scale;      /* scores are scale * q.k (default 1/sqrt(head_dim_k); Gemma 27B
                                  models: 1/sqrt(n_embd / n_head)) */
    float     attn_softcap;    /* > 0: scores become cap * tanh(score / cap) (Gemma 2: 50) */
    float     final_softcap;   /* > 0: logits become cap * tanh(logit / cap) (Gemma 2: 30) */
    bool      attn_sinks;      /* every layer has attention sinks (attn_sinks.weight, one logit per
                                  head): a term exp(sink) joins each softmax's denominator and adds
                                  no value (gpt-oss); the attention output has a bias (attn_output.bias) */
    float     embd_scale;      /* token embeddings are multiplied by this (1; Gemma: sqrt(n_embd)) */
    qfit_ffn_act ffn_act;      /* from the architecture */
    bool      sandwich_norms;  /* from the architecture */
    /* sliding-window attention: in a sliding layer a token at position p sees the cached
     * positions (p - n_swa, p] only (llama.cpp's LLAMA_SWA_TYPE_STANDARD). Which layers
     * slide: qfit_layer_is_swa. Their RoPE may use its own base and scale (Gemma 3:
     * 10000 and 1 on local layers, the file's base and linear scaling on global ones). */
    int       n_swa;           /* attention.sliding_window (0: no sliding layers) */
    int       swa_pattern;     /* layer il slides when il % swa_pattern < swa_pattern - 1
                                  (0: every layer): Gemma 2: 2, Gemma 3: 6 */
    float     rope_freq_base_swa;
    float     rope_freq_scale_swa;
    bool      swa_rope;        /* the sliding layers rotate with a table of their own (their base
                                  or scale differs from the global layers'); set by the reader */
    /* LongRoPE (Phi-3 128K, llama.cpp's get_rope_factors) uses rope_attn_factor and
     * n_ctx_orig above: with rope_factors_long/short tensors, a context longer than
     * n_ctx_orig divides the angles by the long factors, a shorter one by the short. */
    /* encoders (qfit_arch_info.embd_only); zero for the decoders */
    bool      non_causal;      /* bidirectional attention ({arch}.attention.causal false) */
    float     norm_eps;        /* LayerNorm epsilon ({arch}.attention.layer_norm_epsilon) */
} qfit_hparams;

/* Whether layer il attends over a sliding window (n_swa > 0 and il matches swa_pattern). */
bool qfit_layer_is_swa(const qfit_hparams *hp, int il);

/* Where a block's norms sit around it (a block: the attention, or the FFN). */
typedef enum {
    QFIT_BLOCK_PRE_NORM = 0,   /* x = x + block(norm(x)): the decoders */
    QFIT_BLOCK_SANDWICH = 1,   /* x = x + norm(block(norm(x))): Gemma 2/3 (post_attention_norm,
                                  post_ffw_norm) */
    QFIT_BLOCK_POST_NORM = 2,  /* x = norm(x + block(x)): the BERT encoders (LayerNorm with bias) */
} qfit_block_norm;

/* The FFN of a layer. */
typedef enum {
    QFIT_FFN_DENSE = 0,        /* gate/up/down (or up/down with an ungated activation) of n_ff rows */
    QFIT_FFN_EXPERTS = 1,      /* a router and n_expert experts of n_ff_exp rows, n_expert_used per token */
} qfit_ffn_kind;

/* The recipe of one layer: the operations the forward pass composes for it, and what
 * the sizing functions (KV cells, RoPE tables, expert buffers) count for it. Resolved
 * by qfit_layer_recipe_of from the architecture's descriptor (qfit_arch_info: norms,
 * activation, gating, positions) and the hyperparameters its hook set (window and
 * which layers slide, soft-capping, sinks, experts); the engine resolves every layer
 * once when a model loads, the planner from a catalog entry or GGUF metadata. The
 * presence of optional tensors (Q/K/V biases, Q/K norms where optional) is not part of
 * it: an op adds a bias the file has. */
typedef struct {
    qfit_block_norm block;     /* both blocks' norm placement */
    /* attention */
    bool  causal;              /* false: every position of the sequence (encoders) */
    int   window;              /* > 0: a sliding-window layer over the last `window` positions
                                  (hp->n_swa); 0: every earlier position */
    bool  rope;                /* Q and K rotated (false: absolute position embeddings) */
    bool  rope_local;          /* with the sliding layers' own table (hp->swa_rope) */
    float softcap;             /* > 0: scores become cap * tanh(score / cap) */
    bool  sinks;               /* one sink logit per head in every softmax's denominator */
    /* FFN */
    qfit_ffn_kind ffn;
    qfit_ffn_act  act;         /* the dense FFN's or each expert's activation */
    qfit_moe_gating gating;    /* QFIT_FFN_EXPERTS: how the router's logits weight the experts */
} qfit_layer_recipe;

/* Layer il's recipe (il in [0, hp->n_layer); hp from qfit_hparams_from_gguf or a
 * planner's facts). Pure; thread-safe. */
qfit_layer_recipe qfit_layer_recipe_of(const qfit_hparams *hp, int il);

/* Fill hp from a GGUF's metadata. 0 on success, -1 with a message in err. */
int  qfit_hparams_from_gguf(const qfit_gguf *g, qfit_hparams *hp, char *err, size_t err_len);
const char *qfit_arch_name(qfit_arch a);

/* Bytes of the KV cache: layers × n_ctx × (row(K) + row(V)), a row being
 * n_head_kv × head_dim elements of the cache type (block types counted with
 * their scales; the blocks run along head_dim). 0 if a type is not a KV cache type
 * (qfit_kv_type_ok) or cannot hold a head (head_dim not a multiple of its block).
 * The context allocates exactly this. */
size_t qfit_kv_cache_bytes(const qfit_hparams *hp, int n_ctx, int kv_type_k, int kv_type_v);
/* Cells per sequence a sliding-window layer holds in a context of n_ctx positions and
 * passes of n_batch tokens: min(n_ctx, n_swa + n_batch) (a pass's first token sees the
 * n_swa - 1 positions before it; the pass adds up to n_batch). n_ctx without sliding
 * layers. */
int    qfit_kv_swa_cells(const qfit_hparams *hp, int n_ctx, int n_batch);
/* The KV cache a context allocates (qfit_context_kv_bytes): n_seq sequences, each with
 * n_ctx cells in full layers and qfit_kv_swa_cells in sliding-window layers (llama.cpp's
 * SWA cache: Gemma 3 at 32K context holds 1024 + 512 positions in five layers of six).
 * 0 as qfit_kv_cache_bytes. */
size_t qfit_kv_cache_bytes_ctx(const qfit_hparams *hp, int n_ctx, int n_batch, int n_seq, int kv_type_k,
                               int kv_type_v);
/* Bytes of all compute buffers of a context (activations of one batch of
 * n_batch tokens, quantized activation rows, outputs of n_batch rows (logits, or
 * hidden states in embeddings mode: max(n_vocab, n_embd) floats a row; an encoder's:
 * n_embd), RoPE table of
 * n_ctx positions, per-thread scratch for up to QFIT_MAX_THREADS threads, the
 * split-decode partials, and — only without flash attention — one n_ctx score row
 * per thread). The one place this is computed: the context allocates exactly this. */
size_t qfit_compute_buffer_bytes(const qfit_hparams *hp, int n_ctx, int n_batch, bool flash_attn);
/* The same, part by part (bytes, each 64-byte aligned; the context carves its buffer in
 * this order), for the planner and eval: activations of one batch (x, xn, q, k, v, att,
 * gate, up), the quantized activation rows (aq), the output rows (logits), the RoPE
 * table (rope), per-thread scratch (scratch = scratch_stride x QFIT_MAX_THREADS), the
 * split-decode partials (part), and plain attention's score rows (scores; score_stride
 * in floats; 0 with flash attention). Mixture of experts (0 for a dense model): the
 * router's probabilities and choices (moe_route), and the experts' outputs, one row per
 * (token, chosen expert) (moe_out); gate, up and aq then hold n_expert_used rows per
 * token. total = their sum = qfit_compute_buffer_bytes. */
typedef struct {
    size_t x, xn, q, k, v, att, gate, up, aq, logits, rope, scratch_stride, scratch;
    size_t part, score_stride, scores;
    size_t moe_route, moe_out;
    size_t total;
} qfit_compute_parts;
void qfit_compute_buffer_parts(const qfit_hparams *hp, int n_ctx, int n_batch, bool flash_attn,
                               qfit_compute_parts *parts);

/* KV cache element types: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl. */
bool qfit_kv_type_ok(int type);
/* A KV cache type by name ("f16", "q8_0", case-insensitive); -1 if unknown or not a cache type. */
int  qfit_kv_type_from_name(const char *name);
/* "on"/"1"/"true"/"yes" -> 1, "off"/"0"/"false"/"no" -> 0, "auto" -> -1; -2 if invalid. */
int  qfit_flash_attn_from_name(const char *s);

/* ------------------------------------------------------------------ model */

typedef struct qfit_model qfit_model;

/* Load a GGUF model: validates architecture, every tensor's presence, shape and type.
 * Weights stay in the read-only mapping, except the dense matrices of the forward pass
 * whose type the CPU kernels have a load-time layout for (qfit_pack_matrix in
 * qfit/kernels.h: Q4_K, Q6_K, Q8_0, Q4_0, IQ4_NL and IQ4_XS on AVX-512 VNNI): those are
 * repacked once, here, and their pages of the mapping given back
 * (qfit_model_packed_bytes). QFIT_REPACK=0 (or
 * off) in the environment keeps every matrix in the mapping; a value other than 0, 1,
 * on, off is an error. NULL on error with a message in err. */
qfit_model *qfit_model_load(const char *path, char *err, size_t err_len);
void        qfit_model_free(qfit_model *m);
const qfit_hparams *qfit_model_hparams(const qfit_model *m);
const qfit_gguf    *qfit_model_gguf(const qfit_model *m);
double      qfit_model_load_seconds(const qfit_model *m);
size_t      qfit_model_weight_bytes(const qfit_model *m);   /* bytes of all tensors */
/* Bytes of the matrices repacked at load into the CPU kernels' panel layout (see
 * qfit_packed in qfit/kernels.h; QFIT_REPACK=0 in the environment at load: none), and in
 * *src_bytes (may be NULL) the bytes of the file's rows they replace: the process holds
 * weight_bytes - src_bytes + packed bytes once every matrix has been read. */
size_t      qfit_model_packed_bytes(const qfit_model *m, size_t *src_bytes);
uint64_t    qfit_model_n_params(const qfit_model *m);
/* Use data (type, the tensor's shape, nbytes = its rows times qfit_row_size(type, ne0))
 * in place of the file's weight matrix `name` (token_embd.weight, output.weight or a
 * layer's matrix "blk.N.attn_q.weight", ...; with tied embeddings token_embd.weight
 * also replaces the output). data NULL restores the file's tensor. For measuring what
 * one tensor's quantization costs (qfit quantize --calibrate) without writing a file.
 * The caller owns data and keeps it until it is restored or the model is freed.
 * Not thread-safe: no decode may run on a context of m meanwhile. 0, or -1 with a
 * message (unknown name, not a weight matrix, a type without a kernel or a
 * float conversion for that role, a size that does not match). */
int qfit_model_replace_weight(qfit_model *m, const char *name, int type, const void *data,
                              size_t nbytes, char *err, size_t err_len);
/* Resident set size of this process in bytes (Linux: /proc/self/statm; macOS: task_info;
 * 0 if unknown). */
size_t      qfit_process_rss_bytes(void);
/* Peak resident set size (Linux: VmHWM of /proc/self/status; macOS: task_info) in bytes;
 * 0 if unknown. */
size_t      qfit_process_peak_rss_bytes(void);

/* ---------------------------------------------------------------- context */

typedef struct {
    int n_ctx;       /* KV cache positions (0: min(training context, 4096)); more than
                        the training context is refused */
    int n_batch;     /* most tokens per forward pass (0: 512) */
    int n_threads;   /* 0: the performance cores (the online CPUs; on Apple silicon its P-cores) */
    int type_k;      /* KV cache element types (qfit_type ids); default F16 */
    int type_v;
    int flash_attn;  /* 1 on, 0 off, -1 auto (default; = on: tiled attention with online softmax) */
    int kv_rotate;   /* quantized (block-type) K/V caches store rows rotated by a 64x64 Hadamard
                        matrix, as llama.cpp does: -1 auto (default: on when head_dim % 64 == 0), 0 off */
    int n_seq;       /* sequences the context holds (0: 1; at most QFIT_MAX_SEQ). Each gets its own
                        n_ctx positions: the KV cache is n_seq x n_ctx cells, allocated (and touched)
                        at creation, so a sequence never runs out because of another one */
    bool embeddings; /* the output step of qfit_decode writes the final-normed hidden state
                        (output_norm(x), n_embd floats a row: qfit_get_embeddings) instead of
                        logits; the vocabulary projection is skipped. Default false.
                        qfit_set_embeddings switches it on a live context. */
    char device[32]; /* the device the forward pass runs on (qfit/backend.h: "cpu", "ref",
                        "vulkan0", ...; "": cpu). A device that cannot run the model makes
                        qfit_context_new fail with the reason: there is no fallback to another device */
    int n_gpu_layers; /* on a GPU device, llama.cpp's -ngl: the last N layers run on the device,
                        the others on the CPU backend (activations handed across), and the output
                        layer too when N > n_layer; -1 (default): all that fit in the device's
                        memory (every layer and the output when they fit; else the most layers
                        that do, qfit_context_gpu_layers tells how many, qfit_context_describe
                        says so). On cpu and ref only -1 and 0 are valid (any other value is an
                        error, not ignored) */
    uint64_t gpu_mem; /* bytes of the device's memory -1 may fill (`--gpu-mem`); 0 (default): its
                        reported memory less QFIT_GPU_RESERVE_BYTES (qfit/backend.h) */
} qfit_context_params;

/* qfit_model_load for contexts like cp (its device, n_gpu_layers and sizes): on a Vulkan
 * device the layers it offloads (and the output layer when it does) are not repacked for
 * the CPU, so the host holds no second copy of them; a context of other settings still runs
 * (the CPU reads the rows it finds unpacked from the mapping, more slowly). cp NULL: as
 * qfit_model_load. */
qfit_model *qfit_model_load_for(const char *path, const qfit_context_params *cp, char *err, size_t err_len);

#define QFIT_MAX_SEQ 256

qfit_context_params qfit_context_default_params(void);
/* Host bytes a context of m with these parameters allocates (KV cache + compute buffers,
 * the same defaults as qfit_context_new; 0 when a setting is impossible), for schedulers
 * that reserve memory before creating it. On a Vulkan device the offloaded layers' KV cache
 * is in the device's memory, not counted here (qfit_vulkan_context_bytes counts it). */
size_t qfit_context_alloc_bytes(const qfit_model *m, const qfit_context_params *p);

typedef struct qfit_context qfit_context;
/* Apply the environment to p: QFIT_KV_CACHE_TYPE (alias OLLAMA_KV_CACHE_TYPE) sets
 * both cache types, QFIT_FLASH_ATTENTION (alias OLLAMA_FLASH_ATTENTION) on|off|auto|1|0,
 * QFIT_CONTEXT_LENGTH the context size, QFIT_DEVICE the device (qfit/backend.h). Unset or
 * empty variables change nothing.
 * 0 on success; -1 with a message naming the variable when a value is invalid
 * (nothing is silently ignored). *applied (may be NULL) gets a short description
 * of what was taken from the environment ("" when nothing). */
/* One engine command-line option (opt, with its value val) into p:
 *   --ctx / -c N, --kv-type T (K and V), --cache-type-k / -ctk T, --cache-type-v / -ctv T,
 *   --flash-attn / -fa on|off|auto, --device NAME (qfit/backend.h), --gpu-layers / -ngl N,
 *   --gpu-mem SIZE (bytes, or 512M / 6G / 6GiB).
 * 1: consumed; 0: not an engine option; -1: invalid value (message in err). */
int qfit_context_params_parse_arg(qfit_context_params *p, const char *opt, const char *val,
                                  char *err, size_t err_len);
/* A memory size: "24G", "24GiB", "24GB", "512M", "1.5T", "1000000" (bytes). Binary units
 * K/M/G/T, with or without "i"/"B" (GB = GiB here: memory is sized in powers of two), at
 * least one byte, below 2^64. 0 and *out, or -1 on anything else. The one parser of sizes
 * (--gpu-mem, qfit plan --mem, QFIT_MAX_MEMORY, the web page's planner). */
int qfit_parse_size(const char *s, uint64_t *out);
/* One line describing the context's settings: context size, cache types, KV bytes,
 * flash attention, compute buffer bytes. */
void qfit_context_describe(const qfit_context *c, char *buf, size_t len);
int qfit_context_params_from_env(qfit_context_params *p, char *applied, size_t applied_len,
                                 char *err, size_t err_len);

qfit_context *qfit_context_new(const qfit_model *m, const qfit_context_params *p,
                               char *err, size_t err_len);
void qfit_context_free(qfit_context *c);
/* Forget all cached positions (of every sequence). */
void qfit_context_reset(qfit_context *c);
/* Sequence 0: forget the cached positions from n_past on (n_past clamped to [0, current]). */
void qfit_context_truncate(qfit_context *c, int n_past);
int  qfit_context_n_past(const qfit_context *c);          /* of sequence 0 */
int  qfit_context_n_seq(const qfit_context *c);
int  qfit_context_n_ctx(const qfit_context *c);
int  qfit_context_n_batch(const qfit_context *c);
int  qfit_context_n_threads(const qfit_context *c);
const char *qfit_context_device(const qfit_context *c);   /* "cpu", "ref" (qfit/backend.h) */
const qfit_model *qfit_context_model(const qfit_context *c);
int  qfit_context_type_k(const qfit_context *c);
int  qfit_context_type_v(const qfit_context *c);
bool qfit_context_flash_attn(const qfit_context *c);      /* the path in use (auto resolved) */
bool qfit_context_kv_rotated(const qfit_context *c, bool v); /* K (v false) / V cache Hadamard-rotated */
size_t qfit_context_kv_bytes(const qfit_context *c);      /* bytes allocated for the KV cache */
size_t qfit_context_compute_bytes(const qfit_context *c); /* bytes allocated for compute buffers */
/* Context shift (llama.cpp's): keep the first n_keep cached positions, drop the
 * next n_discard, move the rest down by n_discard positions and re-rotate their
 * cached keys by -n_discard with RoPE (quantized keys: dequantize, rotate,
 * requantize). n_past decreases by n_discard. 0 on success, -1 with a message. */
int  qfit_context_shift(qfit_context *c, int n_keep, int n_discard);   /* sequence 0 */

/* ------------------------------------------------------- sequences
 * A context holds n_seq independent sequences (ids 0 .. n_seq-1), each with its own
 * cached positions 0 .. n_past-1. The single-sequence functions above act on sequence 0. */
int  qfit_seq_n_past(const qfit_context *c, int seq);     /* -1 for an invalid id */
/* Forget seq's positions from n_past on (0: remove the sequence's content). A model
 * with sliding-window layers whose cells hold only the window and a micro-batch
 * (qfit_kv_swa_cells < n_ctx) can keep n_past positions only while it still holds the
 * n_swa - 1 before n_past; otherwise the sequence is emptied (n_past 0). Read
 * qfit_seq_n_past afterwards for what was kept. */
void qfit_seq_truncate(qfit_context *c, int seq, int n_past);
/* dst's cache becomes the first n positions of src's (n < 0 or more than src has: all of
 * them; with sliding-window layers, the same rule as qfit_seq_truncate: n or nothing),
 * copied into dst's own cells. */
int  qfit_seq_copy(qfit_context *c, int src, int dst, int n);
/* qfit_context_shift on one sequence; the others are untouched. */
int  qfit_seq_shift(qfit_context *c, int seq, int n_keep, int n_discard);

/* A batch of tokens of any sequences: token i is appended to sequence seq[i] at that
 * sequence's next position (a sequence's tokens in batch order); logits[i] asks for
 * its logits (NULL: none). One evaluation runs every token of a pass through each
 * weight matrix together (the point of batching sequences); attention is each
 * sequence's own. */
typedef struct {
    int            n_tokens;
    const int32_t *token;
    const int     *seq;
    const bool    *logits;
} qfit_batch;
/* Evaluate a batch in passes of at most n_batch tokens. Every token id, sequence id and
 * each sequence's room is checked before anything is evaluated (an error names the
 * sequence and the numbers). Logits: qfit_get_logits(c, i) (embeddings mode:
 * qfit_get_embeddings) is the i-th requested row in
 * batch order; at most n_batch per call. 0, or -1 with a message (qfit_context_error). */
int  qfit_decode_batch(qfit_context *c, const qfit_batch *b);

/* Sequence 0: evaluate n tokens at positions n_past .. n_past+n-1 (appended to the KV cache;
 * processed in passes of at most n_batch tokens). Logits (in embeddings mode:
 * final-normed hidden rows) are computed for the tokens with index >= logits_from
 * (n - 1: last only; n: none); at most n_batch of them. 0 on success, -1 with a message (qfit_context_error) otherwise. */
int  qfit_decode(qfit_context *c, const int32_t *tokens, int n, int logits_from);
/* Logits (n_vocab floats) of the i-th requested output of the last qfit_decode. */
const float *qfit_get_logits(const qfit_context *c, int i);
int  qfit_n_logits(const qfit_context *c);   /* output rows of the last decode (either kind) */
/* Embeddings mode (qfit_context_params.embeddings): takes effect at the next qfit_decode.
 * The KV cache is the same in both modes (the outputs differ, not the cached state). */
void qfit_set_embeddings(qfit_context *c, bool on);
bool qfit_context_embeddings(const qfit_context *c);
/* Final-normed hidden state (n_embd floats) of the i-th requested output of the last
 * qfit_decode, made in embeddings mode; NULL otherwise (and qfit_get_logits is NULL
 * after a decode in embeddings mode). Valid until the next decode/reset/free. */
const float *qfit_get_embeddings(const qfit_context *c, int i);
const char *qfit_context_error(const qfit_context *c);
/* The kind of that error: QFIT_E_INVALID (bad tokens, ids, counts), QFIT_E_CONTEXT_FULL,
 * QFIT_E_UNSUPPORTED, QFIT_E_INTERNAL (a kernel refused its arguments: a bug); QFIT_OK
 * after a call that succeeded. */
qfit_status qfit_context_status(const qfit_context *c);

/* Matmul input observer: fn sees the float input rows of every weight-matrix
 * multiplication of the forward pass, before they are quantized for the kernels
 * (what llama.cpp's eval callback sees as src1 of a MUL_MAT or MUL_MAT_ID; qfit imatrix
 * collects its statistics with it). weight: the GGUF name of the weight
 * ("blk.3.attn_q.weight", "blk.3.ffn_down.weight", "output.weight"); x: n rows of k
 * floats, row stride ld floats, valid only during the call. Q, K and V get one call each
 * with the same rows. A stack of expert matrices ("blk.3.ffn_up_exps.weight", n_mat =
 * n_expert) gets calls for matrix mat (the expert) with rows routed to it, at least one
 * each (gate and up: one call per (token, expert) pair); a plain weight has mat 0, n_mat 1.
 * Called on the thread running qfit_decode*, never concurrently for one context.
 * NULL (the default) turns it off; then a pass costs one pointer test per matmul. */
typedef void (*qfit_matmul_observer)(void *user, const char *weight, int64_t mat, int64_t n_mat,
                                     const float *x, int64_t n, int64_t k, int64_t ld);
void qfit_context_set_matmul_observer(qfit_context *c, qfit_matmul_observer fn, void *user);

#ifdef __cplusplus
}
#endif
#endif /* QFIT_MODEL_H */
