/* Internal: row kernels of the attention over the KV cache (attn.c: scalar,
 * attn_avx2.c: AVX2 + FMA + F16C). Every kernel reads the cache rows in place —
 * nothing dequantizes the whole cache.
 *   dot_*: q · k for one cached key row of n elements. f32/f16 keys take the query
 *          in f32; q8_0/q4_0 keys take the query quantized to q8_0 (integer dots, as ggml).
 *   mad_*: acc[0..n) += w * v for one cached value row.
 * Block rows are whole blocks of 32 (n % 32 == 0); f32/f16 rows any n. */
#ifndef QFIT_MODEL_ATTN_H
#define QFIT_MODEL_ATTN_H

#include <stddef.h>
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
/* g[i] = silu(g[i]) * u[i] (vector exp, ~1e-7 relative error) */
void qfit_swiglu_avx2(float *g, const float *u, int64_t n);
/* Flash attention on any K and V cache types (f16, q8_0, q4_0 converted in
 * registers; others through the reference dequantizer, one tile of rows at a time): 8 query rows q[r] (hdk floats) sharing one
 * KV head, row r seeing cached positions [p_begin, npos[r]) (prefill: p_begin = 0,
 * npos[r] >= 1); k0 / v0 = this head's slice of position 0, rows k_stride /
 * v_stride bytes apart. Only rows r < nrows (1..8) are wanted: the others must
 * still point at valid memory (a copy of a real query, a scratch output).
 * ml == NULL: out[r] (hdv floats, distinct) = softmax(scale q[r] . K^T) V.
 * ml != NULL (a KV range of a split decode): out[r] = the unnormalized sum of
 * exp(s - M) V, ml[2r] = M (the max scaled score, -inf if none), ml[2r+1] = the
 * sum of exp(s - M). A rotated (Hadamard) cache is the caller's business: the
 * queries come rotated like the keys, the outputs are rotated back by the caller.
 * hdk, hdv multiples of 8 (block types: of their block size); scratch:
 * QFIT_ATTN_ROWS8_SCRATCH(hdk, hdv) floats. */
#define QFIT_ATTN_ROWS8_SCRATCH(hdk, hdv) ((size_t)(hdk) * (8 + 64) + 64 * 8 + 64 * (size_t)(hdv))
void qfit_attn_rows8_avx2(int type_k, int type_v, int hdk, int hdv, int nrows, const float *const *q, int p_begin,
                          const int *npos, float scale, const uint8_t *k0, size_t k_stride, const uint8_t *v0,
                          size_t v_stride, float *const *out, float *ml, float *scratch);
/* y[i] = fp16(x[i]), round to nearest even (F16C) */
void qfit_f32_to_f16_avx2(const float *x, uint16_t *y, int64_t n);
/* x[i] = exp(x[i] - m) */
void qfit_exp_sub_avx2(float *x, float m, int n);
#endif

#endif
