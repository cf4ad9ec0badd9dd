/* qfit — model evaluation: perplexity and KL-divergence exactly the way
 * llama.cpp's perplexity tool computes them.
 *
 * Perplexity: the token stream (tokenized with add_special = true) is cut into
 * n_chunk = n_tokens / n_ctx chunks; each chunk's first token is replaced by BOS,
 * the chunk is evaluated from an empty KV cache, and positions n_ctx/2 ..
 * n_ctx-2 are scored on the next token. Final estimate and its error use
 * llama.cpp's formulas.
 *
 * Logits files (--save-logits / --kld-base) use llama.cpp's
 * --kl-divergence-base format: "_logits_" | u32 n_ctx | i32 n_vocab | i32 n_chunk |
 * i32 tokens[n_chunk * n_ctx] | per chunk and scored position, nv = 2*((n_vocab+1)/2)+4
 * uint16: float scale, float min_log_prob, then one uint16 per vocabulary entry.
 *
 * Also here: qfit_eval_run (qfit eval: quantize to several types, tabulate size,
 * PPL, KLD, speed; JSON and an SVG chart) and the speed runs shared with qfit bench
 * (qfit_speed_*); their contracts are at their sections below.
 */
#ifndef QFIT_EVAL_H
#define QFIT_EVAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>

#include "qfit/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int  n_ctx;              /* tokens per chunk (default 512); taken from the file with kld_base */
    int  n_batch;            /* tokens per forward pass (default: min(n_ctx, context's n_batch)) */
    int  n_chunks;           /* < 0: all */
    int32_t bos;             /* id put in place of each chunk's first token; < 0: none */
    const char *save_logits; /* write log-probs of the scored positions (may be NULL) */
    const char *kld_base;    /* compare against such a file; tokens come from it (may be NULL) */
    FILE *progress;          /* "[i]ppl," per chunk, as llama.cpp prints (NULL: silent) */
} qfit_ppl_params;

void qfit_ppl_params_init(qfit_ppl_params *p);

typedef struct {
    double ppl, ppl_err;     /* final estimate and its uncertainty */
    double mean_nll;
    int    n_ctx, n_chunks;
    long   n_scored;
    double seconds;          /* evaluation time */
    /* KL-divergence vs kld_base (has_kld) */
    bool   has_kld;
    double ppl_base, ppl_base_err;
    double kld_mean, kld_err, kld_max, kld_p999, kld_p99, kld_p95, kld_p90, kld_median,
           kld_p10, kld_p5, kld_p1, kld_p01, kld_min;
    double same_top_pct, same_top_err;
    double rms_dp_pct, rms_dp_err;
    double mean_dp_pct, mean_dp_err;
    double ln_ratio, ln_ratio_err, cor_pct;
} qfit_ppl_result;

/* The whole of a text file (an evaluation text), malloc'd, *len its bytes (it may hold
 * NULs; a NUL is added after them). NULL when it cannot be read (errno set). */
char *qfit_eval_read_text(const char *path, size_t *len);

/* A text file tokenized the way llama-perplexity / llama-imatrix -f read it: one
 * trailing newline dropped, special tokens parsed, BOS added when the vocabulary says
 * so. *ids (malloc'd, caller frees) and *n_ids; *bos the id to put in place of each
 * chunk's first token (-1: none). A vocabulary that adds EOS is refused, as there.
 * 0, or -1 with a message naming the file. */
struct qfit_gguf;
int qfit_eval_tokenize_file(const struct qfit_gguf *g, const char *path, int32_t **ids, size_t *n_ids,
                            int32_t *bos, char *err, size_t err_len);

/* Perplexity of tokens[0..n_tokens) (ignored when p->kld_base is set) using the context
 * c (whose n_ctx must be >= p->n_ctx; its cache is cleared for every chunk).
 * 0 on success, -1 with a message in err. */
int qfit_perplexity(qfit_context *c, const int32_t *tokens, size_t n_tokens,
                    const qfit_ppl_params *p, qfit_ppl_result *r, char *err, size_t err_len);

/* Header of a logits file: 0 on success, -1 with a message in err. */
int qfit_logits_file_info(const char *path, int *n_ctx, int *n_vocab, int *n_chunk, char *err, size_t err_len);

/* Scoring primitives (exposed for tests): -log softmax(logits)[tok] with
 * llama.cpp's arithmetic (float max and differences, double sum of exps). */
double qfit_nll(const float *logits, int n_vocab, int tok);
/* Same, also filling nv uint16 of quantized log-probs (llama.cpp's format). */
double qfit_nll_quantized(const float *logits, int n_vocab, int tok, uint16_t *log_prob);

/* Print a result like llama.cpp does ("Final estimate: PPL = X +/- E", KLD statistics). */
void qfit_ppl_print(FILE *f, const qfit_ppl_result *r);

/* ---------------------------------------------------------------- qfit eval
 * The quality/size/speed table of quantized copies of one full-precision model.
 *
 * qfit_eval_run: tokenizes the text with the base model's tokenizer, computes the
 * base (F32/F16/BF16) model's perplexity once and saves its log-probs (the logits
 * file above, in work_dir), then for every requested type quantizes the base into
 * work_dir (qfit_quantize_model, optionally with an imatrix) and for every given file
 * uses it as is; each copy gets perplexity and KL-divergence against the base logits
 * (qfit_perplexity with kld_base) and, when speed is on, pp/tg tokens per second
 * (qfit_speed_measure). Rows come in the order given: types first, then files.
 *
 * Definitions (every number in the table and JSON):
 *   file_bytes    size of the GGUF file
 *   tensor_bytes  bytes of its tensor data (qfit_model_weight_bytes)
 *   bpw           bits per weight = 8 * tensor_bytes / n_params (llama.cpp's convention)
 *   ppl           perplexity, llama.cpp's method; dppl_pct = 100 * (ppl / base ppl - 1)
 *   kld_mean, kld_p99   mean and 99th percentile over the scored tokens of
 *                 KL(base || copy) in nats
 *   same_top_pct  % of scored tokens whose most likely next token is the base's
 *   retention_pct quality retention = 100 * exp(-kld_mean): the geometric mean, over
 *                 the base's next-token distributions, of the copy's probability of a
 *                 token relative to the base's, in % (100: identical predictions)
 *   pp_tps, tg_tps  tokens/s: one batch of speed_pp tokens from an empty cache /
 *                 speed_tg single-token decodes (llama-bench's procedure, mean of
 *                 speed_reps runs after one warm-up); 0 when not measured
 *
 * Interruption: *stop (may be NULL) is read between steps (a quantization, a
 * perplexity run, a speed run); once non-zero, the run returns 0 with the rows
 * finished so far and res->interrupted set. On an error the rows finished so far
 * stay in res too. Ownership: res->rows belongs to res, freed by
 * qfit_eval_result_free (also after an error). Files created in work_dir are removed unless keep.
 * Not thread-safe (one run per result); the progress callback is called on the
 * calling thread. Errors: -1 and a message naming the type/file and the step. */

typedef struct {
    char     name[64];       /* "Q4_K_M", or the file's base name */
    char     path[512];      /* the evaluated GGUF (a quantized one is removed after its
                                row unless keep) */
    bool     is_base;        /* the full-precision model itself (row 0) */
    uint64_t file_bytes, tensor_bytes, n_params;
    double   bpw;
    double   ppl, ppl_err, dppl_pct;
    double   kld_mean, kld_err, kld_p99, same_top_pct, retention_pct;
    bool     has_speed;
    double   pp_tps, tg_tps;
} qfit_eval_row;

typedef struct {
    qfit_eval_row *rows;     /* rows[0] is the base model */
    int   n_rows;
    bool  interrupted;       /* stopped by *stop before every row was done */
    int   n_ctx, n_chunks;   /* as used */
    long  n_scored;
    int   n_threads;
    int   speed_pp, speed_tg;
} qfit_eval_result;

/* step: steps done so far (0..n_steps), label: the step that starts now ("" at the end) */
typedef void (*qfit_eval_progress_fn)(void *user, int step, int n_steps, const char *label);

struct qfit_imatrix;

typedef struct {
    const char *model_path;        /* full precision GGUF (F32, F16 or BF16 tensors) */
    const char *text_path;         /* evaluation text */
    const int  *ftypes;            /* qfit_ftype values to quantize to (n_ftypes, may be 0) */
    int         n_ftypes;
    const char *const *files;      /* existing GGUFs to evaluate too (n_files, may be 0) */
    int         n_files;
    int         n_ctx;             /* default 512 */
    int         n_chunks;          /* < 0: all */
    int         n_threads;         /* <= 0: all CPUs */
    const struct qfit_imatrix *imatrix;  /* for the quantizations (may be NULL) */
    const char *imatrix_file;      /* recorded in the quantized files (may be NULL) */
    bool        speed;             /* measure pp/tg (default true) */
    int         speed_pp, speed_tg, speed_reps;   /* default 512, 128, 3 */
    const char *work_dir;          /* where base logits and quantized files go (must exist) */
    bool        keep;              /* keep them */
    qfit_eval_progress_fn progress;  /* may be NULL */
    void       *progress_user;
    const volatile sig_atomic_t *stop;   /* may be NULL (a signal handler may set it) */
} qfit_eval_params;

void qfit_eval_params_init(qfit_eval_params *p);
int  qfit_eval_run(const qfit_eval_params *p, qfit_eval_result *res, char *err, size_t err_len);
void qfit_eval_result_free(qfit_eval_result *res);

/* The table (markdown) with the definitions under it. */
void qfit_eval_print_table(FILE *f, const qfit_eval_result *res);
/* The result as JSON text (malloc'd, caller frees; NULL when out of memory):
 * {"n_ctx","n_chunks","n_scored","threads","interrupted","speed_pp","speed_tg",
 *  "definitions":{...},"rows":[{"name","path","base","file_bytes","tensor_bytes",
 *  "n_params","bpw","ppl","ppl_err","dppl_pct","kld_mean","kld_err","kld_p99",
 *  "same_top_pct","retention_pct","pp_tps","tg_tps"}]} (pp_tps/tg_tps null when
 *  not measured; the base row has kld 0, same_top 100, retention 100). */
char *qfit_eval_json(const qfit_eval_result *res);
/* A standalone SVG (no scripts, no external references) of two charts over the
 * quantized rows: mean KLD (log scale) vs file size with the Pareto front (the rows no
 * other row beats on both) drawn and every point labelled; tg (and pp) tokens/s vs
 * file size when measured. Written with temp file + fsync + rename + directory fsync.
 * 0, or -1 with a message. */
int qfit_eval_write_svg(const char *path, const qfit_eval_result *res, char *err, size_t err_len);
/* qfit_eval_json's text written to path the same way (temp file + fsync + rename). */
int qfit_eval_write_json(const char *path, const qfit_eval_result *res, char *err, size_t err_len);
/* Indices of the Pareto front among rows[1..n_rows) in increasing size (front[] has
 * n_rows entries); returns their count. Exposed for tests. */
int qfit_eval_pareto(const qfit_eval_result *res, int *front);

/* ---------------------------------------------------------------- speed */

/* Runs timed the way llama-bench (pp, tg) and llama-batched-bench (n_seq sequences)
 * do, on a context with n_seq sequences whose n_ctx holds depth + the test size.
 * Every sequence first holds the same depth tokens (qfit_speed_fill, untimed).
 * pp: each sequence gets the n tokens after the depth (toks[depth..depth+n)), in
 * passes of n_batch, with the logits of each sequence's last token; tg: n steps, each
 * one token of every sequence in one batch, with logits. toks holds depth + n tokens.
 * pp and tg first bring every sequence back to the depth (qfit_speed_reset): call
 * qfit_speed_reset before starting a clock so that this is not timed (a model with
 * sliding-window layers cannot return to the depth after a test slid its window: the
 * depth is evaluated again, as llama-bench does for every repetition).
 * The scratch (owned by s, freed by qfit_speed_free) is sized at init for n <= max_n.
 * 0, or -1 (pp/tg/fill: the message is qfit_context_error). Not thread-safe. */
typedef struct {
    qfit_context *c;
    int      depth, n_seq;
    int32_t *tok;
    int     *seq;
    bool    *want;
} qfit_speed;

int  qfit_speed_init(qfit_speed *s, qfit_context *c, int depth, int n_seq, int max_n, char *err, size_t err_len);
void qfit_speed_free(qfit_speed *s);
int  qfit_speed_fill(qfit_speed *s, const int32_t *toks);
int  qfit_speed_reset(qfit_speed *s, const int32_t *toks);
int  qfit_speed_pp(qfit_speed *s, const int32_t *toks, int n);
int  qfit_speed_tg(qfit_speed *s, const int32_t *toks, int n);

/* qfit eval's measurement on one sequence of c (n_ctx >= max(pp, tg)): random tokens
 * (seed 42, as qfit bench), depth 0, one warm-up (the whole pp, one tg token) then
 * reps timed runs; *pp_tps / *tg_tps get the mean tokens/s (pp or tg 0: skipped,
 * 0 written). 0, or -1 with a message in err. */
int qfit_speed_measure(qfit_context *c, int pp, int tg, int reps, double *pp_tps, double *tg_tps,
                       char *err, size_t err_len);

#ifdef __cplusplus
}
#endif
#endif /* QFIT_EVAL_H */
