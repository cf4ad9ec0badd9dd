/* qfit — compute kernels: dot products and matrix multiplication directly on
 * quantized weights, per instruction set (scalar reference, AVX2, AVX-512/VNNI,
 * ARM NEON/dotprod), chosen at run time by CPU feature detection.
 *
 * Activations are quantized on the fly to the weight type's "vec-dot type"
 * exactly as ggml does (Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL, Q8_1 for Q4_1/Q5_1,
 * Q8_K for the K-quants and IQ4_XS, F16 for F16 weights, BF16 for BF16, F32 for F32),
 * and the dot products are integer dot products on those blocks.
 * Core module: libc, libm only.
 */
#ifndef QFIT_KERNELS_H
#define QFIT_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    QFIT_ISA_SCALAR = 0,
    QFIT_ISA_AVX2   = 1,
    QFIT_ISA_AVX512 = 2,   /* AVX-512F/BW/VL (+VNNI when present) */
    QFIT_ISA_NEON   = 3,   /* NEON (+dotprod when present) */
} qfit_isa;

typedef struct {
    bool avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16;
    bool neon, dotprod, fp16;
} qfit_cpu_features;

const qfit_cpu_features *qfit_cpu_get_features(void);
const char *qfit_isa_name(qfit_isa isa);
/* Best ISA this CPU supports, or the one QFIT_ISA=scalar|avx2|avx512|neon names. */
qfit_isa    qfit_isa_best(void);
/* NULL when QFIT_ISA is unset or honoured; otherwise why it cannot be ("QFIT_ISA=avx512 is
 * not available on this CPU (available: scalar, avx2)"). A set QFIT_ISA that cannot be
 * honoured is an error, never a fallback: qfit_context_new refuses to create a context
 * while this is not NULL. The string is static; thread-safe. */
const char *qfit_isa_env_error(void);
/* Currently selected ISA (initialised to qfit_isa_best() on first use). */
qfit_isa    qfit_isa_active(void);
/* Force an ISA (tests). Returns -1 and changes nothing if the CPU lacks it. */
int         qfit_isa_select(qfit_isa isa);

/* Type that activations are quantized to for a weight type (a qfit_type id), -1 if unsupported. */
int    qfit_vec_dot_type(int weight_type);
/* Quantize one activation row of n floats into the vec-dot type vdtype. */
void   qfit_quantize_activations(int vdtype, const float *x, void *y, int64_t n);

/* Dot product of one weight row (type wtype) with one activation row already in
 * qfit_vec_dot_type(wtype); n elements. */
float  qfit_vec_dot(int wtype, int64_t n, const void *w_row, const void *a_row);

/* Matrix multiplication on quantized weights:
 *   Y[j][i] = dot(W row i, A row j)   for i in [i0, i1), j in [0, m)
 * W: rows of k elements of type wtype, row stride w_stride bytes.
 * A: m activation rows already quantized to qfit_vec_dot_type(wtype), stride a_stride bytes.
 * Y: float, row j starts at Y + j*ldy. Threads split [i0, i1) among themselves.
 * Returns 0, or -1 without writing anything when the arguments are invalid (a type
 * without a dot kernel, k not a multiple of the blocks, a NULL pointer, an empty or
 * negative range): never a silent return. */
int    qfit_gemm(int wtype, int64_t k,
                 const void *W, size_t w_stride, int64_t i0, int64_t i1,
                 const void *A, size_t a_stride, int64_t m,
                 float *Y, int64_t ldy);

#ifdef __cplusplus
}
#endif
#endif /* QFIT_KERNELS_H */
