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
 */
#ifndef QFIT_EVAL_H
#define QFIT_EVAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
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

#ifdef __cplusplus
}
#endif
#endif /* QFIT_EVAL_H */
