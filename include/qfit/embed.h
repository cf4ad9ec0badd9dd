/* qfit — embeddings: one pooled, normalised vector per input text, from any
 * model the engine runs (llama.cpp's embedding semantics, Ollama's /api/embed).
 *
 * What a vector is: the hidden state after the model's final norm (output_norm,
 * the rows the logits would be projected from; for an encoder such as bert or
 * nomic-bert, the last layer's output, whose LayerNorm is the final one, as llama.cpp's
 * t_embd), one row per token of the input,
 * pooled over the input's tokens:
 *   mean  the average of the rows, summed in double (default when the GGUF has
 *         no pooling_type)
 *   cls   the first token's row
 *   last  the last token's row
 * then truncated to `dimensions` (Matryoshka) and L2-normalised (llama.cpp's
 * embd_normalize 2, the default of its embedding tool and server). The pooling
 * comes from the GGUF key `<arch>.pooling_type` (0 none, 1 mean, 2 cls, 3 last,
 * 4 rank) unless the caller names one. `none` (one vector per token) and `rank`
 * (a classifier head) are refused by qfit_embed: the API returns one vector per
 * input. Per-token rows are available from the engine itself (model.h: a context
 * in embeddings mode, every output requested, qfit_get_embeddings).
 *
 * Tokens: each input is tokenized with the model's special tokens (BOS when
 * tokenizer.ggml.add_bos_token says so, EOS/SEP appended when add_eos_token says
 * so) and control tokens written in the text parsed, as llama.cpp's embedding
 * tool and Ollama do.
 *
 * Batches: a batch of inputs is processed in one call. On a context of one sequence
 * each input is evaluated as its own sequence from position 0 (the KV cache is reset
 * between inputs) in passes of n_batch tokens, exactly as when it is embedded alone:
 * batch and single results are bit-identical. An encoder (bert, nomic-bert: model.h)
 * takes each input whole in one pass: an input longer than n_batch is an error naming
 * both numbers (the engine's default n_batch for one is n_ctx). On a context of several sequences
 * (qfit_context_params.n_seq), consecutive inputs that fit one pass together (at most
 * n_seq of them, at most n_batch tokens) are evaluated in one qfit_decode_batch, each
 * as its own sequence: one pass instead of one per input, and each vector equal to its
 * single-input one to float rounding (cosine >= 0.9999; the weight matrices see more
 * rows at once). A longer input goes alone.
 *
 * Context length: an input longer than the context is an error naming both
 * numbers unless truncate is set; then its first n_ctx tokens are kept (as
 * Ollama does) and the number dropped is reported per input.
 *
 * Ownership: the caller owns every buffer; nothing is retained after the call.
 * Thread-safety: a context is used by one thread at a time (model.h); the
 * tokenizer is immutable and may be shared. The context is left with an empty
 * KV cache, in the mode (logits or embeddings) it had before.
 * Units: vectors are float32; durations in nanoseconds (CLOCK_MONOTONIC).
 * Errors: -1 with a message in err naming the input index, the setting or the
 * numbers; the output is then unspecified.
 */
#ifndef QFIT_EMBED_H
#define QFIT_EMBED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qfit/model.h"
#include "qfit/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values of the GGUF key <arch>.pooling_type (llama.cpp's LLAMA_POOLING_TYPE_*). */
typedef enum {
    QFIT_POOLING_UNSPECIFIED = -1,  /* the model's (GGUF), mean when it has none */
    QFIT_POOLING_NONE = 0,
    QFIT_POOLING_MEAN = 1,
    QFIT_POOLING_CLS  = 2,
    QFIT_POOLING_LAST = 3,
    QFIT_POOLING_RANK = 4,
} qfit_pooling;

/* "none", "mean", "cls", "last", "rank"; "?" for other values. */
const char  *qfit_pooling_name(qfit_pooling p);
/* By name (case-insensitive); QFIT_POOLING_UNSPECIFIED if unknown. */
qfit_pooling qfit_pooling_from_name(const char *name);
/* The model's pooling: <arch>.pooling_type when present, else QFIT_POOLING_MEAN.
 * -1 with a message when the key is there but not an integer in 0..4. */
int qfit_model_pooling(const qfit_model *m, qfit_pooling *out, char *err, size_t err_len);

typedef struct {
    qfit_pooling pooling;  /* QFIT_POOLING_UNSPECIFIED (default): the model's */
    bool normalize;        /* L2-normalise each vector (default true) */
    bool truncate;         /* keep the first n_ctx tokens of a longer input (default false:
                              such an input is an error) */
    int  dimensions;       /* keep the first K values (1 .. n_embd) before normalising;
                              0 (default): all n_embd */
    /* Cancellation (a server whose client went away): polled before every forward
     * pass (at most n_batch tokens); nonzero ends the call with -1 and a message
     * saying it was cancelled. NULL (default): never. */
    int (*should_abort)(void *user);
    void *abort_user;
} qfit_embed_params;

void qfit_embed_params_init(qfit_embed_params *p);

/* Per input. */
typedef struct {
    int n_tokens;      /* tokens evaluated (after truncation) */
    int n_truncated;   /* tokens dropped by truncation (0 without) */
} qfit_embed_item;

typedef struct {
    int          n_dims;             /* floats per vector written */
    qfit_pooling pooling;            /* the pooling used */
    int64_t      prompt_eval_count;  /* tokens evaluated over all inputs */
    int64_t      n_truncated;        /* tokens dropped over all inputs */
    uint64_t     total_ns;           /* tokenization + evaluation + pooling */
} qfit_embed_result;

/* Floats per vector for these parameters on this model (dimensions, or n_embd);
 * -1 with a message when dimensions is out of range. */
int qfit_embed_dims(const qfit_model *m, const qfit_embed_params *p, char *err, size_t err_len);

/* Embed n inputs (NUL-terminated UTF-8 texts) on context c with the model's
 * tokenizer tok. out receives n vectors of qfit_embed_dims() floats, one after
 * the other, in input order. items (NULL or n entries) and res (NULL allowed)
 * receive the counts. n == 0 succeeds and writes nothing. An input that yields
 * no tokens at all (an empty text on a model that adds no BOS/EOS) is an error
 * naming its index. p NULL: the defaults. 0 on success, -1 on error. */
int qfit_embed(qfit_context *c, const qfit_tokenizer *tok, const char *const *inputs, size_t n,
               const qfit_embed_params *p, float *out, qfit_embed_item *items, qfit_embed_result *res,
               char *err, size_t err_len);

#ifdef __cplusplus
}
#endif
#endif /* QFIT_EMBED_H */
