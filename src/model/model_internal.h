/* Internal: model weights view, context layout and the backend interface. */
#ifndef QFIT_MODEL_INTERNAL_H
#define QFIT_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "qfit/kernels.h"
#include "qfit/model.h"
#include "qfit/status.h"
#include "model/threadpool.h"

/* A view of one tensor in the mapping. */
typedef struct {
    const void *data;   /* NULL: absent (optional tensors) */
    int     type;
    int64_t ne0;        /* input dimension (elements per row) */
    int64_t ne1;        /* rows (of one expert's matrix) */
    int64_t ne2;        /* experts: ne2 matrices of ne1 rows, expert e at data + e * expert_bytes;
                           1 for a plain matrix */
    size_t  row_bytes;
    size_t  expert_bytes;   /* ne1 * row_bytes */
    const qfit_packed *packed;   /* the rows repacked at load (model->packs), NULL: none;
                                    data stays valid (the mapping) for what it cannot serve */
} qfit_wt;

typedef struct {
    qfit_wt attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm;
    qfit_wt ffn_norm, w_gate, w_up, w_down;
    /* mixture of experts (data NULL in a dense layer): router [n_embd -> n_expert] and
     * the experts' gate, up [n_embd -> n_ff_exp] and down [n_ff_exp -> n_embd] */
    qfit_wt w_router, w_gate_exps, w_up_exps, w_down_exps;
    /* fused matrices (phi3): Q, K and V stacked [n_embd -> q + 2 kv], gate and up stacked
     * [n_embd -> 2 n_ff]; the descriptor's split hook makes wq, wk, wv, w_gate and w_up
     * views of their rows, so the forward pass sees plain matrices */
    qfit_wt wqkv, w_gate_up;
    /* post-norms (Gemma): RMSNorm weights of the attention and FFN outputs */
    qfit_wt attn_post_norm, ffn_post_norm;
    /* gpt-oss (data NULL elsewhere): attention sinks [n_head] (one logit per head that
     * joins the softmax's denominator), the router's bias [n_expert] and the experts'
     * biases, one row per expert: gate and up [n_ff_exp, n_expert], down [n_embd, n_expert].
     * The attention output's bias is bo (below). */
    qfit_wt attn_sinks, b_router, b_gate_exps, b_up_exps, b_down_exps;

    /* --- encoders (bert, nomic-bert; data NULL in a decoder but gpt-oss's bo): the output
     * projection's and the FFN's biases, and the LayerNorms (weight, bias) after the attention's and
     * the FFN's residual adds (qfit_arch_info.post_norm) */
    qfit_wt bo, b_up, b_down;
    qfit_wt attn_out_norm, attn_out_norm_b, layer_out_norm, layer_out_norm_b;
} qfit_layer_w;

struct qfit_model {
    qfit_gguf    *gguf;
    qfit_hparams  hp;
    qfit_wt       tok_embd, output_norm, output, rope_freqs;
    qfit_wt       rope_long, rope_short;   /* LongRoPE frequency factors (data NULL: none) */
    qfit_layer_w *layers;
    qfit_layer_recipe *recipes;   /* [n_layer] what each layer computes (qfit_layer_recipe_of) */
    double        load_seconds;
    size_t        weight_bytes;
    /* matrices repacked at load (qfit_pack_matrix; QFIT_REPACK=0: none): n_packs of them,
     * packed_bytes in all, replacing packed_src_bytes of the mapping (released) */
    qfit_packed  *packs;
    int           n_packs;
    size_t        packed_bytes, packed_src_bytes;
    uint64_t      n_params;

    /* --- encoders (data NULL in a decoder): token type embeddings (row 0, "sentence A",
     * is added to every token, as llama.cpp), absolute position embeddings
     * (qfit_arch_info.pos QFIT_POS_ABSOLUTE) and the LayerNorm of the embeddings */
    qfit_wt       tok_types, pos_embd, tok_norm, tok_norm_b;
};

/* KV cache: per layer and per sequence, a run of cells, one per position held. A full
 * layer has n_ctx cells per sequence, position p in cell p. A sliding-window layer (when
 * its window plus a micro-batch is shorter than the context) has swa_cells per sequence
 * holding the positions [swa_base[s], swa_base[s] + swa_cells): before a pass would write
 * past the end, the last n_swa - 1 positions (all the pass's first token can see) move to
 * the front and swa_base advances (kv_slide in context.c).
 * Within a run the heads are stored one after the other: head h's rows (head_k bytes
 * each) for every cell of the run, in position order. Attention on one KV head then
 * streams a contiguous range of memory (a decoding head used to stride across the
 * other heads' rows, one cache-line pair per position), and every window is one
 * contiguous range per head, on every path. */
typedef struct {
    int     type_k, type_v;
    int     n_ctx;
    int     n_seq;
    int     swa_cells;             /* cells per sequence of a sliding layer (n_ctx: not sliding) */
    int     n_layer;
    size_t  row_k, row_v;          /* bytes per cell (every head of a position) */
    size_t  head_k, head_v;        /* bytes of one head's row (what one position of a head takes) */
    size_t  *layer_cell0;          /* [n_layer] first cell of each layer */
    int     *layer_cells;          /* [n_layer] cells per sequence of each layer */
    int     *swa_base;             /* [n_seq] first position held by the sliding layers */
    uint8_t *k, *v;                /* cells of every layer, sequence after sequence */
} qfit_kv_cache;

/* The first position layer il holds for sequence s (0 for a full layer). */
static inline int kv_base(const qfit_kv_cache *kv, int il, int s)
{
    return kv->layer_cells[il] < kv->n_ctx ? kv->swa_base[s] : 0;
}

/* First cell of (layer il, sequence s)'s run. */
static inline size_t kv_run(const qfit_kv_cache *kv, int il, int s)
{
    return kv->layer_cell0[il] + (size_t)s * (size_t)kv->layer_cells[il];
}

/* Head h's row of position p in (layer il, sequence s), K and V; p must be held
 * (>= kv_base). The next position of the head is head_k (head_v) bytes further. */
static inline uint8_t *kv_k_at(const qfit_kv_cache *kv, int il, int s, int h, int p)
{
    return kv->k + kv_run(kv, il, s) * kv->row_k +
           ((size_t)h * (size_t)kv->layer_cells[il] + (size_t)(p - kv_base(kv, il, s))) * kv->head_k;
}
static inline uint8_t *kv_v_at(const qfit_kv_cache *kv, int il, int s, int h, int p)
{
    return kv->v + kv_run(kv, il, s) * kv->row_v +
           ((size_t)h * (size_t)kv->layer_cells[il] + (size_t)(p - kv_base(kv, il, s))) * kv->head_v;
}

/* n rounded up to a multiple of 64 (compute buffer parts are 64-byte aligned) */
static inline size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

struct qfit_backend;

struct qfit_context {
    const qfit_model *model;
    const struct qfit_backend *backend;
    const char *device;   /* the device's name (qfit/backend.h; static) */
    void *be_state;       /* the backend's per-context state (qfit_backend.init) */
    int n_gpu_layers;     /* qfit_context_params.n_gpu_layers; -1 resolved to a count when not all fit */
    bool gpu_fitted;      /* that count is -1's "all that fit" (fewer than every layer) */
    char backend_err[256];/* the first failure of a backend op in this decode ("": none) */
    qfit_threadpool *tp;
    int n_threads;
    int n_ctx, n_batch;
    int n_seq;
    int *seq_past;    /* [n_seq] cached positions of each sequence */
    int *tok_seq, *tok_pos;   /* [n_batch] sequence and position of each token of the pass */
    qfit_kv_cache kv;

    /* compute buffers, carved from one allocation (qfit_compute_buffer_bytes) */
    void   *buf;
    float  *x;        /* [n_batch][n_embd] residual stream */
    float  *xn;       /* [n_batch][max(n_embd, n_ff)] normed input / scratch */
    float  *q;        /* [n_batch][n_head * hd_k] */
    float  *k;        /* [n_batch][n_head_kv * hd_k] */
    float  *v;        /* [n_batch][n_head_kv * hd_v] */
    float  *att;      /* [n_batch][n_head * hd_v] */
    float  *gate;     /* [n_batch][n_ff], with experts [n_batch * n_expert_used][n_ff_exp] */
    float  *up;       /* the same */
    void   *aq;       /* quantized activation rows */
    float  *logits;   /* [n_batch][n_vocab] logits, or [n_batch][n_embd] hidden states when out_embd */
    float  *rope_cos; /* [n_ctx][n_rot/2] */
    float  *rope_sin;
    float  *rope_cos_swa; /* sliding layers' table when their RoPE differs (hp.swa_rope), else NULL */
    float  *rope_sin_swa;
    uint8_t *scratch; /* per-thread scratch, scratch_stride bytes each */
    size_t  scratch_stride;
    float  *attn_part;  /* split decode: [n_head][QFIT_ATTN_MAX_SPLIT][hd_v + 2] partials */
    float  *scores;     /* plain attention only: [QFIT_MAX_THREADS][score_stride] */
    /* mixture of experts (NULL for a dense model), carved from moe_route: */
    float  *moe_prob;   /* [n_batch][n_expert] router probabilities */
    float  *moe_w;      /* [n_batch][n_expert_used] weights of the chosen experts */
    int32_t *moe_sel;   /* [n_batch][n_expert_used] the chosen experts, most probable first */
    int32_t *moe_slot;  /* [n_batch * n_expert_used] (token, choice) pairs j * n_expert_used + k,
                           ordered by expert (then token) */
    int32_t *moe_pos;   /* [n_batch * n_expert_used] the inverse: where pair j * n_expert_used + k is */
    int32_t *moe_first; /* [n_expert + 1] each expert's first index in moe_slot */
    float  *moe_out;    /* [n_batch * n_expert_used][n_embd] expert outputs, in moe_slot order */
    size_t  score_stride; /* floats per thread */
    bool    flash_attn;
    bool    rot_k, rot_v; /* quantized K / V cache stored Hadamard-rotated (as llama.cpp) */
    const qfit_row_kernels *rk;  /* attention and element-wise row kernels of the active ISA,
                                    refreshed by every qfit_decode (qfit_isa_select may change it) */
    size_t  kv_bytes, compute_bytes;

    bool    embeddings; /* embeddings mode requested (qfit_set_embeddings) */
    bool    out_embd;   /* the last decode wrote hidden states, not logits */
    int     n_logits;   /* output rows of the last decode */
    /* attention runs over maximal groups of consecutive tokens of the pass that belong
     * to one sequence at consecutive positions: while one runs, c->q and c->att point at
     * its first row, and these describe it */
    int     pos0;     /* position of the run's first token */
    int     run_seq;  /* its sequence */
    qfit_matmul_observer mm_observer;   /* qfit_context_set_matmul_observer (NULL: off) */
    void   *mm_observer_user;
    char    err[256];
    qfit_status status;          /* kind of the error in err (QFIT_OK: none) */
    atomic_bool kernel_failed;   /* a matrix kernel refused its arguments in this decode (qfit_decode reports it) */

    /* --- non-causal attention (encoders): while a run of a sequence is attended, the
     * number of that sequence's positions every token sees (all of the pass's) */
    int     run_n_kv;
};

/* Per-layer operations of the forward pass: each composes the steps of layer il's
 * recipe (model->recipes[il], qfit_layer_recipe_of): norm placement, window, RoPE
 * table, soft-cap, sinks, dense or expert FFN and its activation. A backend implements
 * them for the tokens of one pass (n tokens, token j of sequence c->tok_seq[j] at position
 * c->tok_pos[j], embedded in c->x). Backends: the CPU's (backend_cpu.c, encoder_cpu.c) and the
 * scalar reference (backend_ref.c); a context takes one by device name (backend.c,
 * qfit/backend.h). An accelerator backend can take whole layers (attention + FFN) the
 * same way. */
typedef struct qfit_backend {
    const char *name;
    /* 0 when the backend can run model m, -1 with the reason (the first layer, op or
     * weight type it lacks); NULL: it runs whatever qfit_model_load accepts */
    int (*supports)(const qfit_model *m, char *err, size_t err_len);
    /* per-context state in c->be_state (NULL: none): init runs when the context's buffers,
     * KV cache and RoPE tables exist (0, or -1 with the reason: the context is not made);
     * free before they go */
    int (*init)(qfit_context *c, char *err, size_t err_len);
    void (*free)(qfit_context *c);
    /* the KV cache of the backend's layers is on its device (c->kv holds the CPU's layers):
     * what edits the cache goes through seq_copy and kv_sync below */
    bool kv_on_device;
    /* kv_on_device: sequence dst's cache in the device's memory becomes the first n
     * positions of src's (qfit_seq_copy, src != dst, n > 0; it copies the host cache, which
     * the layers on the CPU use, itself); 0, or -1 with the reason. NULL: such copies are
     * refused. */
    int (*seq_copy)(qfit_context *c, int src, int dst, int n, char *err, size_t err_len);
    /* kv_on_device: sequence seq's cells of the device's layers, positions [0, its n_past),
     * copied into host's cells of those layers, its sequence 0 (to_host), or back from them:
     * host is a transient cache of the device's layers (qfit_seq_shift makes it; the
     * context's own host cache has no cells for them), and the context shift runs on it
     * between the two. 0, or -1 with the reason. NULL: the context shift is refused. */
    int (*kv_sync)(qfit_context *c, int seq, qfit_kv_cache *host, bool to_host, char *err, size_t err_len);
    /* The ops of a pass. One that fails writes c->backend_err; the pass's later ops skip
     * their work once it is set, and qfit_decode reports it. */
    /* x[i] = embedding of tokens[i] */
    void (*embed)(qfit_context *c, const int32_t *tokens, int n);
    /* x += Attention(RMSNorm(x)) for layer il (sandwich: RMSNorm of it too; post-norm:
     * x = norm(x + Attention(x))); writes K/V of the pass into the cache */
    void (*attention)(qfit_context *c, int il, int n);
    /* x += FFN(RMSNorm(x)) for layer il, the same placements; dense or experts */
    void (*ffn)(qfit_context *c, int il, int n);
    /* outputs of rows [from, n) into c->logits: final norm + output head, or with
     * c->out_embd the final-normed rows alone (n_embd floats each) */
    void (*output)(qfit_context *c, int from, int n);
} qfit_backend;

extern const qfit_backend qfit_backend_cpu;
/* the scalar reference backend (backend_ref.c; device "ref", qfit/backend.h) */
extern const qfit_backend qfit_backend_ref;
/* the Vulkan backend (backend_vulkan.c; devices "vulkanN") */
extern const qfit_backend qfit_backend_vulkan;
/* p with qfit_context_new's defaults filled in (context, batch, sequences). */
void qfit_context_params_resolve(const qfit_model *m, qfit_context_params *p);
/* The layer count a context of m with p (defaults resolved) runs on its GPU: p->n_gpu_layers,
 * or for -1 the most that fit its memory (qfit_vulkan_fit_layers with p->gpu_mem, else the
 * device's memory less QFIT_GPU_RESERVE_BYTES; *fitted (may be NULL) says whether that is
 * fewer than all); -1 when all fit. For a device that keeps its own KV cache. */
int qfit_gpu_layers_resolve(const qfit_model *m, const qfit_context_params *p, bool *fitted);
/* Give back the whole pages of [p, p + len) of a model's mapping (a copy of those rows is
 * elsewhere now: a device's); they are read from the file again if the CPU touches them.
 * Only for weights' data (always the GGUF file's mapping). */
void qfit_model_release_pages(const void *p, size_t len);
/* -1 ("all that fit") on a Vulkan device: the most layers (n_layer + 1: all and the output)
 * whose weights and the backend's buffers (qfit_vulkan_context_bytes) fit in budget bytes;
 * 0 when none does. */
int qfit_vulkan_fit_layers(const qfit_model *m, int n_ctx, int n_batch, int n_seq, int type_k, int type_v,
                           uint64_t budget);
/* The shader feature paths (QFIT_VK_FEAT_*, qfit/vulkan.h) a Vulkan context's device takes;
 * 0 for other contexts. backend_vulkan.c. */
unsigned qfit_vulkan_context_features(const qfit_context *c);
/* Of a Vulkan context's matrices (*n_matrices), how many the device reads in place from the
 * model's mapping (QFIT_VK_FEAT_IMPORT); *why_not: why one was copied instead ("" when none
 * was, or the device does not import). 0 and "" for other contexts. backend_vulkan.c. */
int qfit_vulkan_context_imported(const qfit_context *c, int *n_matrices, const char **why_not);
/* The backend device `device` ("" or NULL: cpu) runs model m with, after its supports
 * check; NULL with the reason in err (unknown device, or what it lacks). backend.c. */
const qfit_backend *qfit_backend_for(const char *device, const qfit_model *m, char *err, size_t err_len);
/* What a layer of this recipe has beyond the plain llama layer (pre-norm, causal, RoPE of
 * the one table, no soft-cap, no sinks, dense SwiGLU FFN) that the ref and Vulkan backends
 * run, as a phrase ("sliding-window attention"); NULL: nothing. backend.c. */
const char *qfit_plain_layer_lacks(const qfit_layer_recipe *r);

/* --- encoders (encoder_cpu.c): the post-norm encoder layer on the CPU, and what it uses
 * of backend_cpu.c */
extern const qfit_backend qfit_backend_cpu_encoder;
/* backend_cpu.c's attention (Q/K/V with biases, RoPE, the cache, softmax over
 * qfit_attention_run's window, output projection added to c->x) */
void qfit_cpu_attention(qfit_context *c, int il, int n);
/* y (n rows, ldy floats apart) = w · the n rows of src (w->ne0 floats, src_ld apart),
 * observed as weight "blk.<il>.<name>" */
void qfit_cpu_matmul(qfit_context *c, int il, const char *name, const qfit_wt *w, const float *src,
                     int64_t src_ld, int n, float *y, int64_t ldy);


/* Attention (attn.c): KV positions per flash-attention tile, most KV chunks a
 * decode head is split into, fewest positions per chunk. */
#define QFIT_FA_TILE 64
#define QFIT_ATTN_MAX_SPLIT 16
#define QFIT_ATTN_MIN_CHUNK 128

/* softmax(scale q·K^T) V for the n tokens of the pass (c->q -> c->att), layer il as
 * its recipe (model->recipes[il]) says: causal, each token over its own sequence's
 * cached positions 0 .. its position (a sliding layer: the last `window` of them; not
 * causal: over all of its sequence's positions, those of this pass included), scale
 * hp->attn_scale, scores soft-capped when the recipe's softcap > 0, the layer's
 * attention sinks (attn_sinks, one logit per head) in every softmax's denominator when
 * the recipe has sinks; flash or plain path per c->flash_attn
 * (the 8-row prefill kernel is not used with soft-capping, sliding windows or sinks). */
void qfit_attention_run(qfit_context *c, int il, int n);

/* Decode (one token) on the 8-row attention kernel, one task per KV head: the job
 * qfit_attention_run would run for layer il's single token when it takes that path
 * unsplit (flash attention, a cache type of the kernel, no soft-cap, no sinks, at
 * most 8 query heads per KV head, the token's positions in one KV chunk), so that a
 * backend can run a KV head's attention right after computing its Q/K/V rows, in
 * the same dispatch. false when that is not the path. */
typedef struct {
    qfit_context *c;
    int il, gqa, ngrp, n_split;
    bool parts;       /* outputs as partials for merge_split: a split, or sinks to fold in */
    int lo;           /* first position the token sees (sliding layers) */
    float scale;
    size_t per_thread;
} qfit_dec8_job;
bool qfit_attention_dec8_plan(qfit_context *c, int il, qfit_dec8_job *D);
/* Attention of KV head hk's query heads for the planned token, on thread ith (its
 * scratch); c->q and the cache must hold the token's rows of that head. */
void qfit_attention_dec8_task(const qfit_dec8_job *D, int hk, int ith);

/* In place: every 64-element chunk of x[0..n) times the normalized 64x64 Sylvester
 * Hadamard matrix H/8 (orthonormal, symmetric, its own inverse). n % 64 == 0. */
void qfit_hadamard64(float *x, int64_t n);

/* The cos/sin tables layer il rotates with (row pos at pos * n_rot / 2). */
static inline void qfit_rope_of_layer(const qfit_context *c, int il, const float **cs, const float **sn)
{
    const bool local = c->model->recipes[il].rope_local;
    *cs = local ? c->rope_cos_swa : c->rope_cos;
    *sn = local ? c->rope_sin_swa : c->rope_sin;
}

/* Rotate the first n_rot dimensions of one head (cos/sin of n_rot/2 angles). */
void qfit_rope_apply(float *x, const float *cs, const float *sn, int n_rot, qfit_rope_type type);
/* One row of n floats into a KV cache type (f32, f16, bf16 or a block type). */
void qfit_kv_store_row(int type, const float *x, uint8_t *dst, int64_t n);

/* fp16 -> fp32 through a 64K-entry table (initialised once). */
extern float qfit_f16_table[65536];
void qfit_f16_table_init(void);

#endif
