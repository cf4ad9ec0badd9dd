/* qfit — the memory planner: what fits on a machine, and how to make it fit.
 *
 * Inputs: a model (a GGUF file: metadata and tensor shapes only, never the
 * weights; or a name from the built-in catalog of popular models), a machine
 * (this one, a named profile or an explicit memory size) and the run settings
 * (quantization mix, context, KV cache type, flash attention, parallel
 * sequences, batch).
 *
 * Memory model (all in bytes):
 *   weights  = sum over tensors of the tensor's size in the type the
 *              quantizer's own per-tensor rules give it (or, for a GGUF planned
 *              as stored, the real tensor sizes)
 *   kv       = the engine's KV cache allocation (qfit_kv_cache_bytes): layers x
 *              cells x KV heads x (head dim K in the K type + head dim V in the V
 *              type), block formats with their scales, cells = context x parallel
 *              sequences. The context writes every page when it is created.
 *   compute  = what the run writes of the engine's compute buffers: their allocation
 *              (qfit_compute_buffer_bytes, with the flash-attention setting the engine
 *              will use) less the parts sized for the worst case that stay virtual:
 *              logits rows never written (generation writes one per sequence, ppl the
 *              rows it scores, of n_batch), the tail of the widest-row scratch (rows of
 *              n_embd are written) and of the activation rows (written in the weights'
 *              vec-dot type, allocated at 4 bytes per element)
 *   runtime  = what the qfit process holds besides: a measured fixed base (the
 *              executable, libc and libraries, thread stacks, malloc arenas), the
 *              GGUF metadata (mapped and read by the tokenizer), the tokenizer's
 *              tables (measured bytes per vocabulary entry and merge) and, for
 *              `qfit ppl`, its scoring buffers (the logits of half a chunk)
 *   process  = resident weights + kv + compute + runtime: the peak resident memory
 *              (VmHWM) of the qfit process. Mmapped weights count as they are read:
 *              every matrix whole, but an untied token_embd is a lookup table, read
 *              one row per token (at most one row, a page at least, per KV cell)
 *   overhead = runtime + OS / driver reserve (per machine kind)
 *   total    = process + OS reserve, compared with the budget.
 * Verdict: comfortable when total <= 85% of the budget, tight up to 100%,
 * otherwise does not fit.
 */
#ifndef QFIT_PLAN_H
#define QFIT_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "qfit/backend.h"
#include "qfit/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ model facts */

/* Architecture facts of a catalog model (Hugging Face config.json values). */
typedef struct {
    const char *name;      /* canonical name, as Ollama spells it: "qwen2.5-coder:32b" */
    const char *hf;        /* Hugging Face repository: "Qwen/Qwen2.5-Coder-32B-Instruct" */
    const char *aliases;   /* more accepted names, '|'-separated (may be "") */
    const char *family;    /* models of one family, for "a smaller model" suggestions */
    int64_t n_layer;       /* num_hidden_layers */
    int64_t n_embd;        /* hidden_size */
    int64_t n_head;        /* num_attention_heads */
    int64_t n_head_kv;     /* num_key_value_heads */
    int64_t head_dim;      /* head_dim (hidden_size / heads when the config has none) */
    int64_t n_ff;          /* intermediate_size */
    int64_t n_vocab;       /* vocab_size */
    int64_t n_ctx_train;   /* max_position_embeddings */
    bool    tied;          /* tie_word_embeddings: no output.weight tensor */
    const char *arch;      /* GGUF general.architecture: llama, qwen2, qwen3, gemma2 */
    bool    attn_bias;     /* q/k/v projections have biases (qwen2) */
    bool    qk_norm;       /* per-head RMSNorm on q and k (qwen3) */
    bool    rope_freqs;    /* llama3 rope scaling: rope_freqs.weight [head_dim/2] */
    bool    post_norms;    /* gemma2: post_attention_norm and post_ffw_norm */
    int64_t n_expert;      /* mixture of experts: num_experts / num_local_experts (0: dense) */
    int64_t n_expert_used; /* num_experts_per_tok */
    int64_t n_ff_exp;      /* one expert's width: moe_intermediate_size (Mixtral: intermediate_size) */
    int64_t n_swa;         /* sliding_window (0: none) */
    int64_t swa_pattern;   /* a layer il slides when il % pattern < pattern - 1 (Gemma 2: 2,
                              Gemma 3: sliding_window_pattern 6); see qfit_layer_is_swa */
    bool    swa_rope;      /* sliding layers have a RoPE of their own (Gemma 3: rope_local_base_freq) */
    const char *mix;       /* the mix it is published in, the planner's default (NULL: Q4_K_M) */
} qfit_plan_facts;

size_t                 qfit_plan_catalog_count(void);
const qfit_plan_facts *qfit_plan_catalog_at(size_t i);
/* Case-insensitive lookup by canonical name, Hugging Face name or alias; NULL if unknown. */
const qfit_plan_facts *qfit_plan_catalog_find(const char *name);

/* One tensor of a model: shape (GGUF order, ne[0] = row length) and, for a
 * model read from a GGUF file, its stored type and size. */
typedef struct {
    char     name[64];
    uint32_t n_dims;
    int64_t  ne[4];
    int      type;      /* stored qfit_type (-1 for catalog models) */
    uint64_t nbytes;    /* stored bytes (0 for catalog models) */
} qfit_plan_tensor;

/* A model as the planner sees it. */
typedef struct {
    char    name[160];
    char    arch[32];
    bool    from_gguf;
    const qfit_plan_facts *facts;   /* catalog entry, NULL for a GGUF */
    int64_t n_layer, n_embd, n_head, n_head_kv, head_dim_k, head_dim_v, n_ff, n_vocab, n_ctx_train;
    int64_t n_rot;                  /* RoPE dimensions */
    int64_t n_expert;               /* 0 for dense models */
    int64_t n_expert_used;          /* experts per token (expert_used_count) */
    int64_t n_ff_exp;               /* one expert's width (expert_feed_forward_length; llama: n_ff,
                                       qwen3moe: n_ff / n_expert_used when absent, as llama.cpp) */
    int64_t n_swa, swa_pattern;     /* sliding-window layers (qfit_hparams' n_swa, swa_pattern; 0: none) */
    bool    swa_rope;               /* they have their own RoPE table (qfit_hparams' *_swa differ) */
    bool    is_70b;                 /* llama.cpp's "70B" size class (its mix rules use it) */
    bool    tied;
    int     file_type;              /* GGUF general.file_type (llama_ftype), -1 if absent */
    int64_t n_merges;               /* tokenizer merges (BPE); catalog: 0 */
    uint64_t metadata_bytes;        /* GGUF: the data offset (header, metadata, tensor infos);
                                       catalog: an estimate from the vocabulary size */
    bool    metadata_estimated;     /* metadata_bytes is an estimate (catalog models) */
    size_t  n_tensors;
    qfit_plan_tensor *tensors;      /* in file / converter order */
    uint64_t n_params;
} qfit_plan_model;

/* The tensors llama.cpp's converter writes for a catalog model, in its order. */
int  qfit_plan_model_from_facts(const qfit_plan_facts *f, qfit_plan_model *out, char *err, size_t err_len);
/* Metadata and tensor infos of a GGUF file (tensor data is never read). */
int  qfit_plan_model_from_gguf(const char *path, qfit_plan_model *out, char *err, size_t err_len);
/* A path to an existing file is read as GGUF, anything else is looked up in the catalog. */
int  qfit_plan_model_load(const char *spec, qfit_plan_model *out, char *err, size_t err_len);
void qfit_plan_model_free(qfit_plan_model *m);

/* ------------------------------------------------------------ quantization mixes */

/* A llama.cpp quantization mix ("file type"). */
typedef struct {
    const char *name;      /* "Q4_K_M" */
    int         ftype;     /* llama_ftype id (general.file_type) */
    double      mean_kld;  /* measured mean KL divergence vs F32 (ppl.tsv), < 0 if not measured */
    double      ppl;       /* measured perplexity of kjv-llama-7m (ppl.tsv), 0 if not measured */
} qfit_plan_mix;

size_t               qfit_plan_mix_count(void);
const qfit_plan_mix *qfit_plan_mix_at(size_t i);          /* ordered best quality first */
const qfit_plan_mix *qfit_plan_mix_find(const char *name); /* case-insensitive, NULL if unknown */
const qfit_plan_mix *qfit_plan_mix_by_ftype(int ftype);

/* Measured perplexity of kjv-llama-7m with an F32 model and a quantized KV cache
 * (ppl.tsv rows F32+kv_q8_0 / F32+kv_q4_0); the F16 cache gives the F32 value. */
double qfit_plan_kv_ppl(int kv_type);

/* ------------------------------------------------------------ machines */

typedef enum {
    QFIT_MACHINE_CPU = 0,   /* system RAM shared with the OS */
    QFIT_MACHINE_APPLE,     /* Apple silicon unified memory: GPU-usable share of RAM */
    QFIT_MACHINE_GPU,       /* discrete GPU: its VRAM */
    QFIT_MACHINE_CUSTOM,    /* explicit --mem: the memory given, all of it for qfit */
} qfit_machine_kind;

typedef struct {
    const char *name;        /* "m1-max-32gb" */
    const char *desc;
    qfit_machine_kind kind;
    uint64_t mem_bytes;      /* RAM (CPU, Apple) or VRAM (GPU) */
    double   bandwidth_gbs;  /* peak memory bandwidth, GB/s (10^9 bytes/s) */
    int      cores;          /* CPU cores (0 if not stated) */
} qfit_plan_machine;

size_t                   qfit_plan_machine_count(void);
const qfit_plan_machine *qfit_plan_machine_at(size_t i);
const qfit_plan_machine *qfit_plan_machine_find(const char *name);  /* case-insensitive */
/* This machine: RAM from /proc/meminfo (sysconf fallback), cores; bandwidth is a
 * typical dual-channel desktop figure (it cannot be measured without a run). */
void qfit_plan_machine_detect(qfit_plan_machine *out);
/* An explicit budget (--mem): kind CUSTOM. */
void qfit_plan_machine_custom(uint64_t bytes, qfit_plan_machine *out);

/* Memory sizes ("24G", "512M", ...) are parsed by qfit_parse_size (qfit/model.h). */

/* Budget and reserves of a machine (see plan.c for the rules). */
uint64_t qfit_plan_budget_bytes(const qfit_plan_machine *m);
uint64_t qfit_plan_os_reserve_bytes(const qfit_plan_machine *m);
uint64_t qfit_plan_runtime_reserve_bytes(const qfit_plan_machine *m);

/* ------------------------------------------------------------ the plan */

/* What the process does: the workload decides which buffers are written. */
typedef enum {
    QFIT_PLAN_RUN = 0,   /* generation (qfit run / a server): one logits row per sequence */
    QFIT_PLAN_PPL = 1,   /* qfit ppl: chunks of n_ctx tokens, half of each scored */
} qfit_plan_workload;

typedef struct {
    const char *mix;     /* quantization mix name; NULL: as stored (GGUF) or Q4_K_M (catalog) */
    int64_t n_ctx;       /* context per sequence; 0: min(4096, trained context) */
    int     kv_type;     /* K cache type (and V unless kv_type_v): any engine KV type
                            (qfit_kv_type_ok: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 iq4_nl);
                            0 (unset): F16. F32's type id is 0, so F32 is QFIT_PLAN_KV_F32 here */
    int     flash_attn;  /* 1 on, 0 off, -1 auto: as the engine, auto = on */
    int     n_parallel;  /* sequences decoded in parallel (0: 1) */
    int     n_batch;     /* tokens per micro-batch (0: 512; PPL: n_ctx, as qfit ppl) */
    int     kv_type_v;   /* V cache type; 0: same as kv_type (F32: QFIT_PLAN_KV_F32) */
    int     workload;    /* qfit_plan_workload (0: RUN) */
    /* Layer offload to a GPU (issue 16), as a Vulkan context does it (src/model/backend_vulkan.c):
     * the last n_gpu_layers layers (-1, or more than the model has: all of them and the output
     * layer) have their weights, KV cache and the backend's activations in the GPU's memory.
     * offload false: everything on the CPU (n_gpu_layers is ignored). */
    bool     offload;
    int      n_gpu_layers;
    uint64_t gpu_mem_bytes;  /* the GPU's memory (discrete); 0: unified, the machine's memory
                                holds both sides and its budget is checked against their sum
                                (an Apple machine, or an integrated GPU) */
} qfit_plan_settings;

/* Reserved off a discrete GPU's memory for its driver and runtime (the budget the layers
 * must fit in is gpu_mem_bytes less this): the GPU machine kind's reserve. */
#define QFIT_PLAN_GPU_RESERVE_BYTES QFIT_GPU_RESERVE_BYTES

/* F32 as a KV cache type in qfit_plan_settings (whose 0 means "unset"). */
#define QFIT_PLAN_KV_F32 (-2)
/* A KV cache type id (qfit_type) as qfit_plan_settings spells it. */
static inline int qfit_plan_kv_setting(int type) { return type == 0 ? QFIT_PLAN_KV_F32 : type; }

/* Constants of the runtime term. Two were FITTED to measurements, so agreement on the
 * same kind of measurement is partly by construction:
 *  - QFIT_PLAN_RUNTIME_BASE_BYTES: fitted to the peak RSS (wait4 ru_maxrss) of the release
 *    binary running `qfit ppl` on the shared kjv-llama-7m F32 model at ctx 256/512
 *    (x86-64 Linux, glibc), minus every other term: 2.5 MiB on 2026-11-26; refit to 9 MiB on
 *    2026-12-04, when the binary started to link libcurl (pull) and with it ~30 shared
 *    libraries (gnutls, nghttp2, krb5, ldap, ...) loaded at start-up by every command: RSS after
 *    loading the shared model went from 4.0 to 8.4 MiB (residual over the old base 6.4-7.6 MB);
 *  - QFIT_PLAN_TOKENIZER_ENTRY_BYTES: fitted to the same kind of measurement
 *    (bench/plan-memory) across the shared model's 2K and the synthetic Llama-3.2-1B / 8B
 *    shapes' 128K vocabulary entries.
 * QFIT_PLAN_CATALOG_META_ENTRY_BYTES is an estimate, not fitted. Everything else (weights,
 * KV cache, compute buffers) is computed from the engine's own sizing functions and is
 * checked, not fitted: tests/test_plan.c compares whole predictions with peak RSS, and the
 * KV term alone with the measured difference between f16 and q4_0 caches on a model where
 * the cache is most of the process (plan/kv_term_matches_measured_difference). */
#define QFIT_PLAN_RUNTIME_BASE_BYTES   (9ull << 20)  /* fixed: executable, shared-library pages (libc,
                                                        pcre2, jansson, libcrypto, libcurl and the ~30
                                                        libraries it loads), thread stacks, malloc arenas */
#define QFIT_PLAN_TOKENIZER_ENTRY_BYTES 80          /* tokenizer tables per vocabulary entry / merge */
#define QFIT_PLAN_CATALOG_META_ENTRY_BYTES 64       /* estimate: GGUF metadata per vocabulary entry
                                                       (token string, score, type, merges) */

#define QFIT_PLAN_DEFAULT_CTX   4096
#define QFIT_PLAN_DEFAULT_BATCH 512
#define QFIT_PLAN_COMFORT_PCT   85   /* total <= 85% of the budget: comfortable */

typedef enum {
    QFIT_VERDICT_COMFORTABLE = 0,
    QFIT_VERDICT_TIGHT,
    QFIT_VERDICT_NO_FIT,
} qfit_plan_verdict;

const char *qfit_plan_verdict_name(qfit_plan_verdict v);  /* "comfortable", "tight", "does not fit" */
qfit_plan_verdict qfit_plan_verdict_for(uint64_t total, uint64_t budget);

typedef struct {
    /* settings actually used (defaults resolved) */
    char    mix[16];          /* mix name, or "as stored" type for a GGUF without a known file type */
    bool    as_stored;        /* weights are the GGUF's real tensor sizes */
    int64_t n_ctx;
    int     kv_type;          /* K cache type */
    int     kv_type_v;        /* V cache type */
    bool    flash_attn;       /* the path the engine will take (auto resolved) */
    int     n_parallel;
    int     n_batch;
    int     workload;
    /* memory */
    uint64_t weights_bytes;   /* the tensor data (= a quantized file's size less its metadata) */
    uint64_t weights_resident_bytes; /* of it, what the run reads: all but the unused rows of an
                                        untied token_embd (a lookup: one row per token) */
    uint64_t kv_bytes;        /* k_bytes + v_bytes */
    uint64_t k_bytes, v_bytes;
    int64_t  kv_sliding_layers;    /* of n_layer, the sliding-window layers whose cache holds less than
                                      the context (their layer recipes' window) */
    int64_t  kv_sliding_cells;     /* cells per sequence of each of them: window + micro-batch */
    uint64_t compute_bytes;   /* resident: the allocation less the logits rows never written */
    uint64_t compute_alloc_bytes;  /* the engine's allocation (qfit_compute_buffer_bytes) */
    uint64_t runtime_bytes;   /* part of overhead: base + metadata + tokenizer + eval */
    uint64_t runtime_base_bytes;   /* QFIT_PLAN_RUNTIME_BASE_BYTES (measured) */
    uint64_t metadata_bytes;       /* the GGUF's metadata section */
    uint64_t tokenizer_bytes;      /* tokenizer tables: (vocab + merges) x QFIT_PLAN_TOKENIZER_ENTRY_BYTES */
    uint64_t eval_bytes;           /* qfit ppl's scoring buffers (0 for RUN) */
    uint64_t os_bytes;        /* part of overhead */
    uint64_t overhead_bytes;
    uint64_t process_bytes;   /* weights_resident + kv + compute + runtime: the predicted peak RSS */
    uint64_t total_bytes;
    uint64_t budget_bytes;
    qfit_plan_verdict verdict;
    double   bits_per_weight; /* weights_bytes * 8 / parameters */
    /* generation speed estimate (tokens/s), from bandwidth and bytes read per token (a mixture
     * of experts: only the n_expert_used chosen experts of each layer are read) */
    uint64_t bytes_per_token;
    double   tps_low, tps_high;   /* 0: no estimate (no bandwidth known, or an encoder: it generates nothing) */
    char     note[256];       /* remarks on the settings */
    /* layer offload (settings.offload): the GPU's side. The fields above are then the host's
     * side: kv_bytes holds only the layers the CPU runs, weights_resident_bytes the CPU's
     * layers (repacked: qfit_model_load_for packs only those) and token_embd's lookups; the
     * offloaded tensors' rows are given back to the OS once uploaded (weights_bytes is still
     * the whole file's tensor data). */
    bool     offload;
    int      n_gpu_layers;        /* layers on the GPU (0 .. n_layer) */
    bool     gpu_output;          /* the output layer (output_norm, output matrix) on the GPU too */
    bool     gpu_unified;         /* the GPU's memory is the machine's: gpu_total_bytes is in total_bytes */
    uint64_t gpu_weights_bytes;   /* the offloaded tensors at their stored (or mixed) sizes */
    uint64_t gpu_kv_bytes;        /* the offloaded layers' KV cache */
    uint64_t gpu_compute_bytes;   /* the backend's activation rows, logits rows, RoPE table */
    uint64_t gpu_total_bytes;     /* weights + kv + compute: what the context asks the driver for */
    uint64_t gpu_mem_bytes;       /* settings.gpu_mem_bytes */
    uint64_t gpu_budget_bytes;    /* discrete: gpu_mem_bytes less QFIT_PLAN_GPU_RESERVE_BYTES; unified: 0 */
    qfit_plan_verdict gpu_verdict;   /* discrete: gpu_total against gpu_budget (verdict is then the
                                        worse of the host's and this) */
} qfit_plan_result;

/* Plan one configuration. Returns 0, or -1 with a message in err (unknown mix,
 * bad setting, a tensor the rules cannot size). */
int qfit_plan_compute(const qfit_plan_model *m, const qfit_plan_machine *mach,
                      const qfit_plan_settings *s, qfit_plan_result *out,
                      char *err, size_t err_len);

/* Weight bytes of the model quantized with a mix (tensor by tensor, the
 * quantizer's own rules); mix NULL = the stored sizes of a GGUF. */
int qfit_plan_weight_bytes(const qfit_plan_model *m, const char *mix, uint64_t *out,
                           char *err, size_t err_len);
/* KV cache bytes of one sequence of n_cells positions, K and V of kv_type, in passes of
 * QFIT_PLAN_DEFAULT_BATCH tokens (sliding-window layers hold the window and one pass). */
uint64_t qfit_plan_kv_bytes(const qfit_plan_model *m, int64_t n_cells, int kv_type);
/* KV cache type name ("f16", "q8_0"), as the engine's options spell it. */
const char *qfit_plan_kv_name(int kv_type);

/* Task quality floors for --fit: the worst mix allowed ("Q5_K_M"), NULL for none / unknown. */
const char *qfit_plan_task_floor(const char *task);
bool        qfit_plan_task_valid(const char *task);

/* --fit: search mix x KV type x context for the configuration that fits the
 * budget with the best expected quality. Quality: the mix's measured mean KLD
 * plus the KV cache type's measured loss, in the same unit (see plan.c); the
 * task floor limits the mixes, min_ctx the contexts (0: no minimum).
 * Returns 1 with *best filled when something fits, 0 when nothing does, -1 on error. */
int qfit_plan_fit(const qfit_plan_model *m, const qfit_plan_machine *mach,
                  const qfit_plan_settings *base, const char *task, int64_t min_ctx,
                  qfit_plan_result *best, char *err, size_t err_len);

/* Measured quality of the mixes for one model, from `qfit eval MODEL TEXT --json`: the
 * mean KL divergence of each quantization type it scored. */
#define QFIT_PLAN_QUALITY_MAX 64
typedef struct {
    struct { char name[16]; double mean_kld; } rows[QFIT_PLAN_QUALITY_MAX];
    size_t n;
    char   source[1024];   /* the file read */
} qfit_plan_quality;
/* Read a qfit eval JSON: the rows named like a mix ("Q4_K_M") are kept, the others (the
 * base, --files rows) skipped. -1 with a message: unreadable, not an eval JSON, or no
 * row of a known mix. */
int qfit_plan_quality_load(const char *path, qfit_plan_quality *q, char *err, size_t err_len);
/* qfit_plan_fit ranking the mixes by measured quality (quality NULL: the built-in table,
 * which is qfit_plan_fit). With it, only the mixes it measured are candidates; a task's
 * floor compares measured numbers when the floor mix was measured, else the table's. */
int qfit_plan_fit_quality(const qfit_plan_model *m, const qfit_plan_machine *mach,
                          const qfit_plan_settings *base, const char *task, int64_t min_ctx,
                          const qfit_plan_quality *quality, qfit_plan_result *best, char *err, size_t err_len);

/* --fit with offload: the most layers (n_layer + 1 counts the output layer) that base's
 * settings can put on the GPU with both sides within their budgets (tight allowed: the
 * sizes are the engine's own, to the byte). Returns 1 with *best filled (its n_gpu_layers),
 * 0 when not even 0 layers fit (the host is too small), -1 on error. */
int qfit_plan_fit_layers(const qfit_plan_model *m, const qfit_plan_machine *mach, const qfit_plan_settings *base,
                         qfit_plan_result *best, char *err, size_t err_len);

/* Expected quality loss (mean-KLD units) of a mix + KV cache type; < 0 if unknown. */
double qfit_plan_quality_loss(const char *mix, int kv_type);

/* ------------------------------------------------------------ recommendations */

typedef struct {
    char     what[96];       /* "lower quantization to Q3_K_M" */
    char     cmd[512];       /* the command line that applies it */
    uint64_t saves_bytes;
    uint64_t new_total_bytes;
    qfit_plan_verdict new_verdict;
} qfit_plan_fix;

/* Fixes in order (with layers on a discrete GPU that cannot hold them, the most layers that
 * fit first, and every fix then measured on the GPU's total; lower quantization, KV q8_0 then q4_0, flash attention (when it
 * is off: it saves the plain path's score rows), shorter
 * context, smaller model), each applied alone to the current settings; only fixes
 * that save memory are listed. cmd_prefix is the command line without the
 * changed option (e.g. "qfit plan qwen2.5-coder:32b --machine m1-max-32gb").
 * Returns the number written (at most cap). */
size_t qfit_plan_recommend(const qfit_plan_model *m, const qfit_plan_machine *mach,
                           const qfit_plan_settings *s, const qfit_plan_result *cur,
                           const char *model_spec, const char *machine_args,
                           qfit_plan_fix *fixes, size_t cap);

/* The `qfit plan` command line that reproduces r's settings. */
void qfit_plan_command(char *buf, size_t cap, const char *model_spec, const char *machine_args,
                       const qfit_plan_result *r);

/* JSON of a result (jansson), malloc'd string (free()); NULL on allocation failure.
 * With fit_requested, a "fit" member holds the --fit result (null when nothing fits). */
char *qfit_plan_result_json(const qfit_plan_model *m, const qfit_plan_machine *mach,
                            const qfit_plan_result *r, const qfit_plan_fix *fixes, size_t n_fixes,
                            bool fit_requested, const qfit_plan_result *fit);

/* QFIT_DEBUG's report on a context made from m's GGUF: the kernels chosen (instruction
 * set), threads, cache types, flash attention, and the plan for the context's own settings
 * beside what it allocated (KV cache, compute buffers) and the process's resident memory
 * now beside the planned peak. Lines of text, each ending in '\n', into buf (truncated to
 * cap). Returns 0, or -1 with a message in err when the plan cannot be made. */
int qfit_plan_debug_report(const qfit_plan_model *m, const qfit_context *c, char *buf, size_t cap,
                           char *err, size_t err_len);

#ifdef __cplusplus
}
#endif
#endif /* QFIT_PLAN_H */
