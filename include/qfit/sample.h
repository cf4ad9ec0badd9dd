/* qfit — token sampling: greedy, temperature, top-k, top-p, min-p, repeat
 * penalty, with a seed-reproducible random generator. The chain follows
 * llama.cpp's order: repeat penalty -> top-k -> top-p -> min-p -> temperature ->
 * draw. temp <= 0 is greedy (argmax; ties go to the lowest id).
 * Core module: libc, libm. */
#ifndef QFIT_SAMPLE_H
#define QFIT_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float    temp;            /* <= 0: greedy (default 0.8) */
    int      top_k;           /* <= 0: off (default 40) */
    float    top_p;           /* >= 1: off (default 0.95) */
    float    min_p;           /* <= 0: off (default 0.05) */
    float    repeat_penalty;  /* 1: off (default 1.0) */
    int      repeat_last_n;   /* tokens of history the penalty looks at (default 64) */
    uint64_t seed;            /* RNG seed (default 0x5EED) */
} qfit_sampler_params;

void qfit_sampler_params_init(qfit_sampler_params *p);

typedef struct qfit_sampler qfit_sampler;

/* NULL on bad parameters (n_vocab < 1, negative penalty window, NaN values) or out of memory. */
qfit_sampler *qfit_sampler_new(const qfit_sampler_params *p, int n_vocab);
void qfit_sampler_free(qfit_sampler *s);
/* Pick the next token from n_vocab logits (not modified). Does not record it. */
int32_t qfit_sampler_sample(qfit_sampler *s, const float *logits);
/* Record a token in the penalty history (prompt tokens and generated ones). */
void qfit_sampler_accept(qfit_sampler *s, int32_t token);
void qfit_sampler_reset(qfit_sampler *s);   /* clears the history, re-seeds the RNG */

/* argmax with ties to the lowest id */
int32_t qfit_argmax(const float *logits, int n);

/* Deterministic RNG (xoshiro256**, seeded by splitmix64): uniform in [0, 1). */
typedef struct { uint64_t s[4]; } qfit_rng;
void   qfit_rng_seed(qfit_rng *r, uint64_t seed);
uint64_t qfit_rng_next(qfit_rng *r);
double qfit_rng_uniform(qfit_rng *r);

#ifdef __cplusplus
}
#endif
#endif
