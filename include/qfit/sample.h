/* qfit — token sampling: the chain of Ollama's options (api/types.go `Options`),
 * applied in llama.cpp's default order:
 *
 *   penalties -> top_k -> typical_p -> top_p -> min_p -> temperature -> draw
 *
 *   penalties    over the last repeat_last_n accepted tokens (prompt and generated):
 *                each distinct token once: logit / repeat_penalty if > 0, else
 *                * repeat_penalty; then logit -= count * frequency_penalty
 *                + presence_penalty (count = occurrences in the window).
 *   top_k        keep the k largest logits (partial selection, O(n_vocab)).
 *   typical_p    locally typical sampling: softmax, entropy H; keep the tokens
 *                with the smallest |-log p - H| until their mass exceeds typical_p.
 *   top_p        softmax; keep the smallest set of most likely tokens whose mass
 *                reaches top_p.
 *   min_p        keep the tokens with p >= min_p * p_max.
 *   temperature  logits / temperature; 0 = greedy: the largest surviving logit
 *                (ties: the lowest id).
 *   draw         softmax of the survivors, one uniform draw from the sampler's RNG.
 * Probabilities in top_p / typical_p / min_p are those before the temperature
 * (llama.cpp's order). A logit of -inf (or NaN) is never drawn.
 *
 * A sampler belongs to one sequence: it holds that sequence's penalty history and
 * RNG. It is not thread-safe; different samplers may be used from different
 * threads. qfit_sampler_sample() does not modify the logits it is given.
 * Core module: libc, libm. */
#ifndef QFIT_SAMPLE_H
#define QFIT_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* seed value meaning "pick a random seed" (Ollama's seed -1); the seed chosen is
 * readable with qfit_sampler_seed() so a run can be reproduced. */
#define QFIT_SEED_RANDOM UINT64_MAX
#define QFIT_TOP_LOGPROBS_MAX 20

typedef struct {
    float    temperature;       /* >= 0; 0 = greedy              (Ollama default 0.8) */
    int      top_k;             /* >= 0; 0 = off                 (40) */
    float    top_p;             /* [0, 1]; 1 = off               (0.9) */
    float    min_p;             /* [0, 1]; 0 = off               (0.0) */
    float    typical_p;         /* [0, 1]; 1 = off               (1.0) */
    float    repeat_penalty;    /* > 0; 1 = off                  (1.0) */
    int      repeat_last_n;     /* window of the penalties: -1 = the context size, 0 = off (64) */
    float    presence_penalty;  /* any finite value; 0 = off     (0.0) */
    float    frequency_penalty; /* any finite value; 0 = off     (0.0) */
    uint64_t seed;              /* QFIT_SEED_RANDOM = random     (random) */
} qfit_sampler_params;

/* Ollama's defaults (reference §1.3), listed above. */
void qfit_sampler_params_init(qfit_sampler_params *p);
/* 0 if every value is valid; -1 with a message naming the field and value
 * ("top_p 1.5 is outside [0, 1]"). n_ctx resolves repeat_last_n = -1 (must then be >= 1). */
int qfit_sampler_params_check(const qfit_sampler_params *p, int n_ctx, char *err, size_t err_len);

typedef struct qfit_sampler qfit_sampler;

/* A sampler for rows of n_vocab logits. n_ctx: the context size (for
 * repeat_last_n = -1; otherwise unused). NULL with a message on invalid
 * parameters (qfit_sampler_params_check), n_vocab < 1, or out of memory.
 * Memory: 16 bytes per vocabulary entry, 12 more with penalties (plus the
 * window), 16 more once top_p runs without top_k. */
qfit_sampler *qfit_sampler_new(const qfit_sampler_params *p, int n_vocab, int n_ctx,
                               char *err, size_t err_len);
void qfit_sampler_free(qfit_sampler *s);
/* Pick the next token from n_vocab logits (not modified). Does not record it
 * (call qfit_sampler_accept). -1 when no token can be drawn (every logit -inf/NaN). */
int32_t qfit_sampler_sample(qfit_sampler *s, const float *logits);
/* Record a token in the penalty history (prompt tokens and generated ones).
 * Ids outside [0, n_vocab) are ignored. */
void qfit_sampler_accept(qfit_sampler *s, int32_t token);
void qfit_sampler_reset(qfit_sampler *s);   /* clears the history, re-seeds the RNG */
uint64_t qfit_sampler_seed(const qfit_sampler *s);   /* the seed in use (resolved if random) */
/* The effective parameters (repeat_last_n resolved, seed resolved). */
const qfit_sampler_params *qfit_sampler_get_params(const qfit_sampler *s);

/* argmax with ties to the lowest id */
int32_t qfit_argmax(const float *logits, int n);

/* Log-probabilities as OpenAI/Ollama report them: log-softmax of the raw logits
 * (before penalties and temperature). *token_logprob gets token's; top[0..n_top)
 * the n_top most likely tokens, most likely first (ties: lowest id); n_top in
 * [0, QFIT_TOP_LOGPROBS_MAX]. Returns the number written to top (< n_top only when
 * fewer tokens have a finite logit), -1 on bad arguments or no finite logit. */
typedef struct { int32_t id; float logprob; } qfit_token_logprob;
int qfit_logprobs(const float *logits, int n_vocab, int32_t token, int n_top,
                  float *token_logprob, qfit_token_logprob *top);

/* Deterministic RNG (xoshiro256**, seeded by splitmix64): uniform in [0, 1). */
typedef struct { uint64_t s[4]; } qfit_rng;
void   qfit_rng_seed(qfit_rng *r, uint64_t seed);
uint64_t qfit_rng_next(qfit_rng *r);
double qfit_rng_uniform(qfit_rng *r);

#ifdef __cplusplus
}
#endif
#endif
