/* Internal: row kernels of the attention over the KV cache (attn.c: scalar,
 * attn_avx2.c: AVX2 + FMA + F16C). Every kernel reads the cache rows in place —
 * nothing dequantizes the whole cache.
 *   dot_*: q · k for one cached key row of n elements. f32/f16 keys take the query
 *          in f32; q8_0/q4_0 keys take the query quantized to q8_0 (integer dots, as ggml).
 *   mad_*: acc[0..n) += w * v for one cached value row.
 * Block rows are whole blocks of 32 (n % 32 == 0); f32/f16 rows any n. */
#ifndef QFIT_MODEL_ATTN_H
#define QFIT_MODEL_ATTN_H

#include <stdint.h>

typedef struct {
    float (*dot_f32)(const float *q, const float *k, int n);
    float (*dot_f16)(const float *q, const uint16_t *k, int n);
    float (*dot_q8_0)(const void *q8, const void *k, int n);
    float (*dot_q4_0)(const void *q8, const void *k, int n);
    void (*mad_f32)(float *acc, const float *v, float w, int n);
    void (*mad_f16)(float *acc, const uint16_t *v, float w, int n);
    void (*mad_q8_0)(float *acc, const void *v, float w, int n);
    void (*mad_q4_0)(float *acc, const void *v, float w, int n);
    void (*scale)(float *acc, float s, int n);
} qfit_attn_kernels;

extern const qfit_attn_kernels qfit_attn_kernels_scalar;
#if defined(__x86_64__) || defined(__i386__)
extern const qfit_attn_kernels qfit_attn_kernels_avx2;
#endif

#endif
