/* Internal: per-ISA kernel tables of the compute kernels (src/kernels).
 * Each ISA file fills the entries it accelerates; the rest stay scalar. */
#ifndef QFIT_KERNELS_INTERNAL_H
#define QFIT_KERNELS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "qfit/kernels.h"
#include "qfit/quant.h"
#include "quant/blocks.h"

/* Dot product of one weight row with one activation row (n elements) into *s. */
typedef void (*qk_dot_fn)(int64_t n, float *s, const void *w, const void *a);
/* Activation quantizer: n floats into the vec-dot type's blocks. */
typedef void (*qk_quant_fn)(const float *x, void *y, int64_t n);
/* Register tile: Y[j*ldy + i] = dot(W row i, A row j) for i < nw, j < na
 * (1 <= nw, na <= QK_TILE). */
typedef void (*qk_tile_fn)(int64_t k, const void *W, size_t w_stride, int nw,
                           const void *A, size_t a_stride, int na,
                           float *Y, int64_t ldy);

#define QK_TILE 4

typedef struct {
    qk_dot_fn   dot[QFIT_TYPE_COUNT];    /* by weight type */
    qk_quant_fn quant[QFIT_TYPE_COUNT];  /* by vec-dot (activation) type */
    qk_tile_fn  tile[QFIT_TYPE_COUNT];   /* by weight type; NULL: use dot */
} qk_table;

/* dot_scalar.c */
void qk_fill_scalar(qk_table *t);

#if defined(__x86_64__) || defined(_M_X64)
/* dot_avx2.c / dot_avx512.c (compiled with the matching -m flags) */
void qk_fill_avx2(qk_table *t);
void qk_fill_avx512(qk_table *t);   /* requires AVX-512F/BW/VL/DQ + VNNI */
#endif
#if defined(__aarch64__)
/* dot_neon.c; dotprod: the CPU has SDOT/UDOT */
void qk_fill_neon(qk_table *t, int dotprod);
#endif

/* CPU has AVX-512DQ as well (not in the public feature struct). */
int qk_cpu_has_avx512dq(void);

#endif
