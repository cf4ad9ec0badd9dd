/* qfit — model quantization: llama.cpp's per-tensor mix rules and the
 * GGUF-to-GGUF quantization pipeline.
 *
 * Mix rules
 *   A "file type" (llama.cpp's LLAMA_FTYPE, e.g. Q4_K_M) is a recipe: a base
 *   block format plus rules that give some tensors more bits (output.weight,
 *   some attn_v / ffn_down layers, ...) and fall back to another format when a
 *   row length is not a multiple of the block size. qfit reproduces the choice
 *   llama.cpp v0.5.0 makes for every tensor (llama_tensor_get_type).
 *   The rules need only names, shapes and a few model facts, never tensor
 *   data, so a memory planner can size a quantized model before it exists.
 *
 *   The choice for attn_v / ffn_down / ffn_gate / ffn_up depends on how many
 *   such tensors came before (llama.cpp keeps counters); qfit_mix_state holds
 *   them. Tensors must be visited in llama.cpp's order (qfit_mix_order_cmp):
 *   qfit_mix_plan() does that for a whole model.
 *
 * Pipeline
 *   qfit_quantize_model() reads an F32/F16/BF16 GGUF, copies all metadata,
 *   sets general.file_type and general.quantization_version = 2, writes the
 *   tensors in llama.cpp's order, each converted to the type the mix chose
 *   (with an importance matrix as llama-quantize --imatrix, or to a size:
 *   qfit_target_plan).
 *   Rows of each tensor are split across threads; the output bytes do not
 *   depend on the thread count. The file appears under its final name only
 *   when complete.
 */
#ifndef QFIT_QUANTIZE_H
#define QFIT_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "qfit/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* llama.cpp's LLAMA_FTYPE values (stored as general.file_type, u32). */
typedef enum {
    QFIT_FTYPE_ALL_F32        = 0,
    QFIT_FTYPE_MOSTLY_F16     = 1,
    QFIT_FTYPE_MOSTLY_Q4_0    = 2,
    QFIT_FTYPE_MOSTLY_Q4_1    = 3,
    QFIT_FTYPE_MOSTLY_Q8_0    = 7,
    QFIT_FTYPE_MOSTLY_Q5_0    = 8,
    QFIT_FTYPE_MOSTLY_Q5_1    = 9,
    QFIT_FTYPE_MOSTLY_Q2_K    = 10,
    QFIT_FTYPE_MOSTLY_Q3_K_S  = 11,
    QFIT_FTYPE_MOSTLY_Q3_K_M  = 12,
    QFIT_FTYPE_MOSTLY_Q3_K_L  = 13,
    QFIT_FTYPE_MOSTLY_Q4_K_S  = 14,
    QFIT_FTYPE_MOSTLY_Q4_K_M  = 15,
    QFIT_FTYPE_MOSTLY_Q5_K_S  = 16,
    QFIT_FTYPE_MOSTLY_Q5_K_M  = 17,
    QFIT_FTYPE_MOSTLY_Q6_K    = 18,
    QFIT_FTYPE_MOSTLY_IQ2_XXS = 19,
    QFIT_FTYPE_MOSTLY_IQ2_XS  = 20,
    QFIT_FTYPE_MOSTLY_Q2_K_S  = 21,
    QFIT_FTYPE_MOSTLY_IQ3_XS  = 22,
    QFIT_FTYPE_MOSTLY_IQ3_XXS = 23,
    QFIT_FTYPE_MOSTLY_IQ1_S   = 24,
    QFIT_FTYPE_MOSTLY_IQ4_NL  = 25,
    QFIT_FTYPE_MOSTLY_IQ3_S   = 26,
    QFIT_FTYPE_MOSTLY_IQ3_M   = 27,
    QFIT_FTYPE_MOSTLY_IQ2_S   = 28,
    QFIT_FTYPE_MOSTLY_IQ2_M   = 29,
    QFIT_FTYPE_MOSTLY_IQ4_XS  = 30,
    QFIT_FTYPE_MOSTLY_IQ1_M   = 31,
    QFIT_FTYPE_MOSTLY_BF16    = 32,
    QFIT_FTYPE_MOSTLY_TQ1_0   = 36,
    QFIT_FTYPE_MOSTLY_TQ2_0   = 37,
    QFIT_FTYPE_MOSTLY_MXFP4_MOE = 38,
} qfit_ftype;

#define QFIT_QUANTIZATION_VERSION 2  /* ggml's GGML_QNT_VERSION */

/* Canonical name ("Q4_K_M", "F16", ...); NULL for unknown values. */
const char *qfit_ftype_name(int ftype);
/* Case-insensitive ("q4_k_m", "Q4_K_M", "f16", "bf16", "Q8_0"); -1 if unknown. */
int         qfit_ftype_from_name(const char *name);
/* Base tensor type of the mix (Q4_K for Q4_K_M, F16 for F16); -1 if unknown. */
int         qfit_ftype_base_type(int ftype);
/* True when qfit can write this mix (every type it may pick has a quantizer):
 * F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S/M/L Q4_K_S/M Q5_K_S/M Q6_K IQ4_NL IQ4_XS. */
bool        qfit_ftype_supported(int ftype);
/* Space-separated list of the supported names, for messages. */
const char *qfit_ftype_supported_list(void);

/* ---------------------------------------------------------------- mix rules */

/* Model facts the rules use (llama.cpp's hparams and its tensor counts). */
typedef struct {
    char arch[64];        /* general.architecture: "llama", "qwen2", "falcon", ... */
    int  n_layer;         /* {arch}.block_count */
    int  n_head;          /* {arch}.attention.head_count (layer 0) */
    int  n_head_kv;       /* {arch}.attention.head_count_kv (default: n_head) */
    int  n_expert;        /* {arch}.expert_count (0 = dense) */
    bool is_70b;          /* llama.cpp classifies the model as 70B */
    int  n_attention_wv;  /* tensors named *attn_v.weight*, *attn_qkv.weight*, *attn_kv_b.weight* */
    bool has_output;      /* an output.weight exists (else token_embd is tied to the output) */
    bool has_imatrix;     /* quantizing with an importance matrix (llama.cpp's qs.has_imatrix:
                             changes ffn_down / attn_v of Q4_0 Q5_0 IQ4_NL IQ4_XS IQ3_XXS);
                             qfit_mix_model_from_gguf sets it false */
} qfit_mix_model;

/* Counters carried from tensor to tensor (start zeroed). */
typedef struct {
    int i_attention_wv;
    int i_ffn_down;
    int i_ffn_gate;
    int i_ffn_up;
    int n_fallback;       /* tensors that needed a fallback type */
} qfit_mix_state;

/* One tensor as the rules see it. */
typedef struct {
    const char *name;
    uint32_t    n_dims;
    int64_t     ne[4];    /* unused dims are 1 */
    int         type;     /* its type in the source file */
} qfit_mix_tensor;

/* Whether llama.cpp would quantize this tensor at all (2-D or more, a *weight,
 * not a norm, not position/token-type embeddings, ssm_conv1d, expert gates ...). */
bool qfit_mix_tensor_quantizable(const char *name, uint32_t n_dims, const int64_t ne[4]);

/* The type llama.cpp picks for one tensor under ftype. Visit tensors in
 * qfit_mix_order_cmp order, with st zeroed before the first. Tensors that are
 * not quantized keep t->type. *fallback (may be NULL) tells whether the row
 * length forced a fallback. Returns the qfit_type, or -1 with a message in err
 * (unknown ftype, a shape no type fits, an MoE tensor without a layer number). */
int qfit_mix_tensor_type(const qfit_mix_model *m, qfit_mix_state *st, int ftype,
                         const qfit_mix_tensor *t, bool *fallback, char *err, size_t err_len);

/* llama.cpp's tensor order: tensors outside blocks first, then blk.N in
 * numeric order; by name (bytewise) within each group. strcmp-style result. */
int qfit_mix_order_cmp(const char *a, const char *b);

/* Fill n_attention_wv and has_output from the tensor names. */
void qfit_mix_model_count(qfit_mix_model *m, const qfit_mix_tensor *tensors, size_t n);

/* Set m->is_70b from arch, n_layer, n_head, n_head_kv and n_expert: llama.cpp's
 * "70B" size class (the one rule, used for GGUF files and catalog models alike). */
void qfit_mix_model_classify(qfit_mix_model *m);

/* Model facts from a GGUF's metadata and tensor infos (no tensor data read). */
int qfit_mix_model_from_gguf(const qfit_gguf *g, qfit_mix_model *m, char *err, size_t err_len);

/* Plan a whole model: order[k] = index (into tensors) of the k-th tensor in
 * llama.cpp's output order; types[i] = chosen type of tensors[i]. m must be
 * complete (qfit_mix_model_count done). n_fallback may be NULL. 0 / -1 + err. */
int qfit_mix_plan(const qfit_mix_model *m, int ftype, const qfit_mix_tensor *tensors, size_t n,
                  size_t *order, int *types, int *n_fallback, char *err, size_t err_len);

/* Same, from a GGUF (metadata + tensor infos only). order and types have
 * qfit_gguf_n_tensors(g) entries. */
int qfit_mix_plan_gguf(const qfit_gguf *g, int ftype, size_t *order, int *types,
                       int *n_fallback, char *err, size_t err_len);
/* The same for a quantization with (has_imatrix) or without an importance matrix. */
int qfit_mix_plan_gguf_imatrix(const qfit_gguf *g, int ftype, bool has_imatrix, size_t *order,
                               int *types, int *n_fallback, char *err, size_t err_len);

/* ---------------------------------------------------------------- pipeline */

/* Called after each tensor is written (from the calling thread). */
typedef void (*qfit_quantize_progress_fn)(void *user, int64_t done, int64_t total,
                                          uint64_t bytes_done, uint64_t bytes_total,
                                          const char *tensor_name);

typedef struct qfit_imatrix qfit_imatrix;   /* qfit/imatrix.h */

/* A calibration text for measuring what each tensor's type costs (qfit_target_plan):
 * tokens (the model's tokenizer, with BOS as llama-imatrix adds it) cut into n_chunks
 * chunks of n_ctx, each run from an empty cache with bos in place of its first token
 * (bos < 0: none). Borrowed, not modified. */
typedef struct {
    const int32_t *tokens;
    size_t   n_tokens;
    int      n_ctx;        /* tokens per chunk; <= 0: 256 */
    int      n_chunks;     /* <= 0: every whole chunk of the text */
    int32_t  bos;
} qfit_calibration;

/* step of n_steps starts: tensor `name` in candidate type (name "" and type -1 at the end) */
typedef void (*qfit_target_progress_fn)(void *user, int64_t step, int64_t n_steps, const char *name, int type);

typedef struct {
    uint64_t data_bytes;   /* tensor data of the plan, each tensor padded to the alignment */
    bool     measured;     /* costs were measured (calibration) rather than estimated */
    double   cost;         /* summed cost of the planned tensors' choices: measured, the
                              predicted mean KL divergence from the base on the calibration
                              text (additivity assumed); estimated, the summed relative
                              imatrix-weighted squared error */
    int64_t  n_planned;    /* tensors whose type was chosen */
    int64_t  n_measured;   /* calibration runs (a tensor in a candidate type each) */
    long     n_calib_tokens;  /* positions scored per calibration run */
    double   seconds;
} qfit_target_result;

typedef struct {
    int  ftype;                        /* a supported qfit_ftype */
    int  n_threads;                    /* <= 0: number of online CPUs */
    qfit_quantize_progress_fn progress;  /* may be NULL */
    void *progress_user;
    /* Importance matrix (may be NULL), as llama-quantize --imatrix: a tensor with
     * an entry of its name is quantized with the entry's weights (qfit_imatrix_weights,
     * one slice per expert); a tensor without one is quantized without (counted in
     * stats->n_no_imatrix); an entry whose size is not ne0 * ne2 is an error (except
     * for token_embd.weight, which llama.cpp quantizes without it). The mix rules
     * see has_imatrix. The output records quantize.imatrix.file (imatrix_file, may
     * be NULL: not recorded), .dataset, .entries_count and .chunks_count as
     * llama-quantize does (strings cut to 127 bytes as there). Not modified. */
    const qfit_imatrix *imatrix;
    const char *imatrix_file;
    /* Quantize to a size instead of a fixed mix (at most one of the two): target_size:
     * file bytes; target_bpw: bits per weight of the tensor data. qfit_target_plan
     * chooses the types, measured on calibration (may be NULL: then estimated from the
     * imatrix, which is needed then); the tensors it does not plan keep the ftype mix's
     * type (ftype is also what general.file_type records). 0: off. */
    uint64_t target_size;
    double   target_bpw;
    const qfit_calibration *calibration;
    bool     calibration_all;          /* qfit_target_params.measure_all */
    qfit_target_progress_fn target_progress;   /* may be NULL (progress_user is passed) */
} qfit_quantize_params;

typedef struct {
    int64_t  n_tensors;
    int64_t  n_quantized;              /* tensors converted (the rest copied) */
    int64_t  n_elements;               /* weights in the model */
    uint64_t data_in, data_out;        /* bytes of tensor data */
    uint64_t file_in, file_out;        /* file sizes */
    int      n_fallback;
    int      n_threads;
    double   seconds;
    int64_t  type_count[64];           /* output tensors per qfit_type (< 64) */
    int64_t  n_imatrix;                /* tensors quantized with importance weights */
    int64_t  n_no_imatrix;             /* with an imatrix given: tensors of a type that uses one
                                          (qfit_type_uses_imatrix) it has no entry for */
    int64_t  n_target_planned;         /* tensors whose type qfit_target_plan chose */
    qfit_target_result target;         /* its result (zero without a target) */
} qfit_quantize_stats;

/* ---------------------------------------------------------------- quantize to a size */

typedef struct {
    uint64_t budget;                      /* bytes of tensor data, each tensor padded to alignment */
    size_t   alignment;                   /* the output file's (default 32) */
    const qfit_imatrix *imatrix;          /* the quantizer's weights (may be NULL with a calibration) */
    const qfit_calibration *calibration;  /* measure costs end to end (NULL: estimate them from imatrix) */
    const char *model_path;               /* with a calibration: the file g was opened from (loaded
                                             and run; it must be the same file) */
    bool     measure_all;                 /* with a calibration: run every candidate (false: only the
                                             probe, see below) */
    int      n_threads;                   /* for the calibration runs; <= 0: all CPUs */
    qfit_target_progress_fn progress;     /* may be NULL; called on the calling thread */
    void    *progress_user;
} qfit_target_params;

void qfit_target_params_init(qfit_target_params *p);


/* Choose per-tensor types that fit p->budget bytes of tensor data with the least cost.
 * types[i] (one per tensor of g, in file order) holds the mix's choice on entry; the
 * tensors it quantizes that are F32/F16/BF16 in g with rows a multiple of 32 (and,
 * without a calibration, covered by an imatrix entry of ne0 * ne2 values) get one of
 * Q2_K Q3_K IQ4_XS Q4_K Q5_K Q6_K Q8_0 (rows a multiple of 256) or Q4_0 IQ4_NL Q4_1
 * Q5_0 Q5_1 Q8_0, each tried with the imatrix weights the quantizer will use:
 *   - with a calibration: the model at p->model_path is run over the calibration
 *     chunks once at full precision, then once per tensor with only that tensor
 *     quantized to the probe type (Q3_K, or Q4_0 for rows not a multiple of 256); the
 *     probe's cost is the mean over the positions of KL(base || that copy), the base's
 *     distribution kept as its 128 most likely tokens and the rest in one bucket; the
 *     other candidates cost the probe's KL divergence times their estimated error (as
 *     below, quantizer weights or uniform ones) relative to the probe's. measure_all
 *     runs every candidate instead (7x the runs; on the shared model it chose
 *     as well as the probe did). Time: one perplexity run of the calibration text per
 *     planned tensor (per tensor and candidate with measure_all);
 *   - without: the imatrix-weighted squared error relative to the tensor's output
 *     energy sum w_j x^2 (no forward pass; a cruder estimate: it does not see that one
 *     matrix matters more to the output than another).
 * Then a greedy marginal-analysis knapsack picks the best cost decrease per byte that
 * still fits. The other tensors keep their type and count against the budget. -1 with a
 * message when even the smallest choice does not fit, nothing can be planned, the
 * calibration text is shorter than one chunk, or a run fails. */
int qfit_target_plan(const qfit_gguf *g, const qfit_target_params *p, int *types, qfit_target_result *res,
                     char *err, size_t err_len);

/* Quantize in_path to out_path. Refuses (-1, message in err, nothing created
 * under out_path): unknown/unsupported ftype, output equal to input, a source
 * tensor that would need converting but is not F32/F16/BF16, non-finite
 * weights, unreadable or malformed input. stats may be NULL. */
int qfit_quantize_model(const char *in_path, const char *out_path,
                        const qfit_quantize_params *params, qfit_quantize_stats *stats,
                        char *err, size_t err_len);

/* Number of online CPUs (at least 1). */
int qfit_quantize_default_threads(void);

#ifdef __cplusplus
}
#endif
#endif /* QFIT_QUANTIZE_H */
