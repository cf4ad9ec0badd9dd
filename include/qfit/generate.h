/* qfit — text generation: the one loop shared by the CLI, the server and batch
 * workers (prompt prefill in micro-batches, sampling, end-of-generation, stop
 * strings, num_predict, context overflow, streaming text, cancellation, timings).
 *
 * Two levels:
 *  - qfit_gen: the state of ONE sequence (settings, sampler with its penalty
 *    history and RNG, stop-string matcher, counters). Its step function takes the
 *    logits row from the caller, so an engine that decodes many sequences in one
 *    batch drives one qfit_gen per sequence with the row of that sequence.
 *  - qfit_generate(): the single-sequence driver on a qfit_context (model.h).
 *
 * Streaming text (on_text) never splits a UTF-8 character (except invalid or
 * truncated bytes at the very end, flushed as they are) and never contains text
 * that may still become a stop string: such text is held back, and released
 * only once it can no longer start a stop string. A stop string found ends the
 * generation with reason "stop"; neither it nor anything after it is emitted.
 * At the end (any reason) the held-back text that did not become a stop is
 * flushed. End-of-generation tokens (qfit_tokenizer_is_eog) end it with "stop"
 * and are not rendered.
 *
 * Cancellation: should_abort is polled before every prefill micro-batch (at most
 * n_batch tokens) and between generated tokens, so a cancelled prefill stops
 * within one micro-batch and a cancelled generation produces at most one more
 * token. A callback returning nonzero cancels as well (no further token).
 *
 * Context overflow: a prompt that leaves no room in the context (prompt tokens
 * >= context size - cached positions) is an error naming both numbers, whatever
 * the policy (dropping chat turns needs the chat structure: the caller's job).
 * When generation fills the context, QFIT_OVERFLOW_ERROR (default) ends it with
 * reason "length" (result.context_full), QFIT_OVERFLOW_SHIFT shifts the context
 * (llama.cpp's: keep n_keep tokens, discard half of the rest; qfit_context_shift).
 *
 * Ownership: qfit_gen_new copies the parameters (stop strings included); the
 * tokenizer must outlive the qfit_gen. Thread-safety: a qfit_gen, like a
 * qfit_context, is used by one thread at a time; callbacks run on that thread.
 * Units: durations in nanoseconds (CLOCK_MONOTONIC), counts in tokens.
 * Errors: -1 / NULL with a message naming the field or the numbers.
 */
#ifndef QFIT_GENERATE_H
#define QFIT_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qfit/grammar.h"
#include "qfit/model.h"
#include "qfit/sample.h"
#include "qfit/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QFIT_GEN_MAX_STOP      64     /* stop strings per sequence */
#define QFIT_GEN_MAX_STOP_LEN  4096   /* bytes per stop string */

typedef enum {
    QFIT_GEN_RUNNING   = 0,
    QFIT_GEN_STOP      = 1,  /* end-of-generation token or stop string */
    QFIT_GEN_LENGTH    = 2,  /* num_predict reached, or a full context without shift */
    QFIT_GEN_CANCELLED = 3,
    QFIT_GEN_ERROR     = 4,
} qfit_gen_reason;

/* "running", "stop", "length", "cancelled", "error" (Ollama's done_reason words) */
const char *qfit_gen_reason_name(qfit_gen_reason r);

typedef enum { QFIT_OVERFLOW_ERROR = 0, QFIT_OVERFLOW_SHIFT = 1 } qfit_overflow_policy;

typedef struct {
    qfit_sampler_params sampling;      /* qfit_sampler_params_init: Ollama's defaults */
    int   num_predict;                 /* -1: no limit (default); >= 0: at most this many tokens */
    const char *const *stop;           /* n_stop non-empty strings (copied) */
    int   n_stop;
    qfit_overflow_policy overflow;     /* default QFIT_OVERFLOW_ERROR */
    int   n_keep;                      /* SHIFT: prompt tokens kept at the start, after a BOS the
                                          tokenizer adds (always kept); clamped to the prompt and
                                          to half the context. Default 0 */
    bool  ignore_eos;                  /* keep generating after end-of-generation tokens */
    bool  logprobs;                    /* report the chosen token's log-probability (on_token) */
    int   top_logprobs;                /* 0..20 alternatives with it (needs logprobs) */
    uint64_t load_ns;                  /* time the caller spent loading for this request:
                                          reported as load_ns and counted in total_ns */
    const int32_t *history;            /* qfit_generate: the tokens already in the context
                                          before this prompt (a reused prefix), recorded in the
                                          penalty window first, as if they had been evaluated
                                          with the prompt (NULL / n_history 0: none) */
    size_t n_history;
    /* Structured output (NULL: none, and no cost). Before each token, tokens the
     * grammar rejects get a logit of -inf; end-of-generation tokens are allowed
     * only where the grammar is complete; when it is complete and cannot
     * continue, the generation ends with reason stop. No allowed token, or a
     * grammar limit reached, ends it with reason error (never unconstrained).
     * Both must outlive the qfit_gen; grammar_vocab (qfit_gen_grammar_vocab) is
     * built from the tokenizer by qfit_gen_new when NULL. */
    const qfit_grammar *grammar;
    const qfit_grammar_vocab *grammar_vocab;
} qfit_gen_params;

void qfit_gen_params_init(qfit_gen_params *p);

/* One generated token, as on_token sees it. */
typedef struct {
    int32_t     id;
    const char *piece;       /* its raw bytes (may be part of a UTF-8 character; "" for EOG) */
    size_t      piece_len;
    bool        eog;         /* an end-of-generation token (ends the generation) */
    float       logprob;     /* with params.logprobs */
    int         n_top;
    qfit_token_logprob top[QFIT_TOP_LOGPROBS_MAX];
} qfit_gen_token;

typedef struct {
    /* text to show, in order; nonzero return cancels */
    int  (*on_text)(void *user, const char *text, size_t len);
    /* every sampled token, before its text is released; nonzero return cancels */
    int  (*on_token)(void *user, const qfit_gen_token *tok);
    /* a context shift happened: kept n_keep, discarded n_discard, n_past cached now */
    void (*on_shift)(void *user, int n_keep, int n_discard, int n_past);
    /* prefill progress: before every micro-batch (n_done so far) and at the end */
    void (*on_prefill)(void *user, int n_done, int n_total);
    /* polled before each micro-batch and between tokens; true cancels */
    bool (*should_abort)(void *user);
    void *user;
} qfit_gen_callbacks;

typedef struct {
    qfit_gen_reason reason;
    int      prompt_eval_count;   /* prompt tokens evaluated */
    uint64_t prompt_eval_ns;
    int      eval_count;          /* tokens sampled (an end-of-generation token included) */
    uint64_t eval_ns;             /* from the end of the prefill to the end */
    uint64_t load_ns;             /* params.load_ns */
    uint64_t total_ns;            /* load_ns + the whole call */
    int      n_shifts, n_discarded;
    bool     context_full;        /* ended (reason length) at a full context, ERROR policy */
    uint64_t seed;                /* the sampler's seed (resolved when random) */
    char     error[512];          /* reason error: what went wrong */
    qfit_status status;           /* reason error: its kind (QFIT_E_INVALID: bad parameters;
                                     QFIT_E_CONTEXT_FULL: the prompt does not fit; a decode's
                                     qfit_context_status; QFIT_E_INTERNAL: nothing can be
                                     sampled, a grammar failure); QFIT_OK otherwise */
} qfit_gen_result;

/* ------------------------------------------------------------ one sequence */

typedef struct qfit_gen qfit_gen;

/* n_vocab: logits row length; n_ctx: the sequence's context size (for
 * repeat_last_n = -1). NULL with a message naming the field on invalid
 * parameters (sampling, num_predict < -1, empty/too many/too long stop strings,
 * top_logprobs outside 0..20 or without logprobs, n_keep < 0). cb may be NULL. */
qfit_gen *qfit_gen_new(const qfit_tokenizer *tok, int n_vocab, int n_ctx, const qfit_gen_params *p,
                       const qfit_gen_callbacks *cb, char *err, size_t err_len);
void qfit_gen_free(qfit_gen *g);
/* Record prompt tokens in the penalty history. */
void qfit_gen_accept_prompt(qfit_gen *g, const int32_t *ids, size_t n);
/* One step from this sequence's logits row (n_vocab floats, not modified):
 * sample, record, report (on_token), release text (on_text), check EOG, stop
 * strings and num_predict. Returns the token to evaluate next, or -1 when the
 * sequence has finished (qfit_gen_reason_of says why; the last token need not
 * be evaluated). */
int32_t qfit_gen_step(qfit_gen *g, const float *logits);
/* End the sequence with reason r (a driver's decision: cancelled, length at a
 * full context, error): flushes the held-back text. No-op once finished. */
void qfit_gen_finish(qfit_gen *g, qfit_gen_reason r);
qfit_gen_reason qfit_gen_reason_of(const qfit_gen *g);
/* why the sequence ended with reason error, when it knows ("" otherwise) */
const char *qfit_gen_error(const qfit_gen *g);
/* The tokenizer's vocabulary as grammar token strings (the bytes each token
 * renders to; control tokens are empty and never allowed by a grammar). Build
 * it once per tokenizer and share it between sequences. NULL on out of memory. */
qfit_grammar_vocab *qfit_gen_grammar_vocab(const qfit_tokenizer *tok, char *err, size_t err_len);
int  qfit_gen_n_generated(const qfit_gen *g);
uint64_t qfit_gen_seed(const qfit_gen *g);

/* ---------------------------------------------------- single-sequence driver */

/* Evaluate n_prompt tokens after the context's cached positions, then generate.
 * 0 when generation ran (res->reason stop, length or cancelled), -1 on error
 * (res->reason error, message in res->error: invalid parameters, empty or
 * too-long prompt, decode failure). res is always filled. The context keeps what
 * was evaluated (qfit_context_truncate to drop it). */
int qfit_generate(qfit_context *c, const qfit_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                  const qfit_gen_params *p, const qfit_gen_callbacks *cb, qfit_gen_result *res);
/* Same from text, tokenized with the model's special tokens added (BOS) and
 * control tokens in the text not parsed. */
int qfit_generate_text(qfit_context *c, const qfit_tokenizer *tok, const char *prompt,
                       const qfit_gen_params *p, const qfit_gen_callbacks *cb, qfit_gen_result *res);


/* ---------------------------------------------- many sequences: the batcher
 * Continuous batching over a context of n_seq sequences (qfit_context_params.n_seq):
 * every qfit_batcher_step decodes ONE batch of at most n_batch tokens holding the next
 * token of every generating sequence and, in the room left, prompt tokens of the
 * sequences still reading their prompt (oldest first), so a long prompt never stalls
 * the others for more than one micro-batch. Each sequence has its own qfit_gen (settings,
 * sampler, stop strings, callbacks).
 *
 * Prompt reuse: each sequence keeps the tokens its cache holds after it finishes. A new
 * request takes the free sequence whose cached tokens share the longest prefix with its
 * prompt (ties: the least recently used) and evaluates only the tokens after that
 * prefix (at least its last token, whose logits start the generation): turn N+1 of a
 * chat costs its new tokens. The budget of cached prefixes is the context's n_seq x n_ctx
 * cells; a free sequence's cache is reused or overwritten, least recently used first.
 * qfit_batcher_stats counts requests, hits, reused and evaluated prompt tokens.
 *
 * Limits: a prompt that leaves no room for a token (prompt >= n_ctx) is refused at
 * submission, naming both numbers. A sequence that fills its context ends with reason
 * length (QFIT_OVERFLOW_ERROR) or shifts its own context (QFIT_OVERFLOW_SHIFT).
 * Cancellation: should_abort is polled for every running sequence at every step, and
 * qfit_batcher_cancel ends one at the next step; a cancelled sequence produces at most
 * one more token and its cells are free for the next request.
 *
 * Ownership: the batcher borrows the context and tokenizer (they must outlive it) and
 * copies prompts and parameters. Thread-safety: one thread drives a batcher (and its
 * context); callbacks run on that thread inside qfit_batcher_step. */
typedef struct qfit_batcher qfit_batcher;

typedef struct {
    uint64_t requests;          /* submitted */
    uint64_t hits;              /* requests that reused a cached prefix */
    uint64_t reused_tokens;     /* prompt tokens not evaluated thanks to a cached prefix */
    uint64_t evaluated_tokens;  /* prompt tokens evaluated */
} qfit_batcher_stats;

qfit_batcher *qfit_batcher_new(qfit_context *c, const qfit_tokenizer *tok, char *err, size_t err_len);
void qfit_batcher_free(qfit_batcher *b);
/* Start a generation; returns its sequence id (0 .. n_seq-1), or -1 with a message: no
 * free sequence, invalid parameters, empty prompt, prompt that does not fit. */
int  qfit_batcher_submit(qfit_batcher *b, const int32_t *prompt, size_t n_prompt, const qfit_gen_params *p,
                         const qfit_gen_callbacks *cb, char *err, size_t err_len);
/* One batch. Returns the number of sequences still running afterwards, or -1 when the
 * engine failed (every running sequence then ends with reason error and the message). */
int  qfit_batcher_step(qfit_batcher *b);
/* When sequence seq has finished: true, *res filled (counts and durations of that
 * request alone), and the sequence becomes free. False while it runs or when free. */
bool qfit_batcher_result(qfit_batcher *b, int seq, qfit_gen_result *res);
/* End a running sequence with reason cancelled at the next step. */
void qfit_batcher_cancel(qfit_batcher *b, int seq);
int  qfit_batcher_n_running(const qfit_batcher *b);
void qfit_batcher_get_stats(const qfit_batcher *b, qfit_batcher_stats *s);

#ifdef __cplusplus
}
#endif
#endif
