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
/* The same for QK_DOTN consecutive weight rows (stride w_stride bytes) against
 * one activation row: s[r] = dot(row r, a). Used for m = 1 (token generation),
 * where sharing the activation loads and interleaving the rows' dependency
 * chains is what makes the kernel keep up with memory. */
enum { QK_DOTN = 4 };
typedef void (*qk_dotn_fn)(int64_t n, float *s, const void *w, size_t w_stride, const void *a);
/* Activation quantizer: n floats into the vec-dot type's blocks. */
typedef void (*qk_quant_fn)(const float *x, void *y, int64_t n);
/* Register-tiled gemm on a packed weight panel (see gemm_pack.c): for the
 * R = panel rows weight rows packed in `panel` (nw of them real), and m
 * activation rows A (stride a_stride): Y[j*ldy + r] = dot(row r, A row j)
 * for r < nw, j < m. */
typedef void (*qk_panel_fn)(int64_t k, const void *panel, int nw,
                            const void *A, size_t a_stride, int64_t m,
                            float *Y, int64_t ldy);

/* Pack nw (<= R) weight rows into a panel (layout of gemm_pack.c). next: the
 * first row of the panel packed after this one (R rows), NULL if none; only
 * prefetched. */
typedef void (*qk_pack_fn)(int64_t k, const void *W, size_t w_stride, int nw, const void *next, void *panel);

/* Register tile working on the weight rows as they are (float types):
 * Y[j*ldy + i] = dot(W row i, A row j) for i < nw, j < m. */
typedef void (*qk_direct_fn)(int64_t k, const void *W, size_t w_stride, int nw,
                             const void *A, size_t a_stride, int64_t m, float *Y, int64_t ldy);

/* GELU and GeGLU as ggml's CPU backend (qfit_row_kernels.gelu, .geglu): every ISA's
 * table uses these. */
void qk_gelu(float *x, int64_t n);
void qk_geglu(float *g, const float *u, int64_t n);
void qk_swiglu_oai(float *g, const float *u, int64_t n, float alpha, float limit);

typedef struct {
    qk_panel_fn run;   /* NULL: gemm uses dot for every pair */
    qk_pack_fn  pack;  /* NULL: the portable qk_pack_panel */
    int rows;          /* R: weight rows per panel */
    int min_m;         /* use the panel (or direct) kernel when m >= min_m */
    qk_direct_fn direct;   /* used instead of run/pack when set */
    int family;        /* QK_PF_*: the panel layout run and pack use (-1 with direct) */
    int load;          /* 1: weights may be packed once at load (qfit_pack_matrix): the
                          layout is about as compact as the rows and run at m = 1 is as
                          fast as dotn (measured) */
    int act;           /* QK_ACT_*: the activation rows run takes */
} qk_panel;

/* Activation rows of a panel kernel: the vec-dot type's rows as the caller gives them,
 * or (QK_ACT_Q8S, from Q8_0 rows) 40-byte blocks of f32 d, the int32 sum of the 32
 * values, and the values: what lets a kernel keep the weights on vpdpbusd's unsigned
 * side and take their offset out once per block (cpu.c converts, once per call). */
enum { QK_ACT_ROWS = 0, QK_ACT_Q8S = 1 };

/* Packed panel families (gemm_pack.c) */
enum { QK_PF_Q8 = 0, QK_PF_Q8U = 1, QK_PF_K32 = 2, QK_PF_K16 = 3, QK_PF_K4N = 4, QK_PF_K6N = 5, QK_PF_Q8N = 6,
       QK_PF_Q4N = 7, QK_PF_X4N = 8 };
/* the default family of a weight type (the one every ISA can run), -1 if none */
int    qk_pack_family(int wtype);
/* elements per block of a family (32 or 256) */
int64_t qk_pack_family_block(int family);
/* bytes of one packed block of R rows */
size_t qk_pack_block_bytes(int family, int R);
/* pack nw (<= R) rows of W (k elements each) into panel (k/block * block bytes)
 * in the layout of `family` (a family wtype has: qk_pack_family, QK_PF_K4N for Q4_K, QK_PF_K6N for Q6_K, QK_PF_Q8N for Q8_0,
 * QK_PF_Q4N for Q4_0 and IQ4_NL, QK_PF_X4N for IQ4_XS) */
void   qk_pack_panel(int family, int wtype, int64_t k, const void *W, size_t w_stride, int nw, int R,
                     void *panel);

/* m Q8_0 activation rows (k = 32 nb elements, stride as) into QK_ACT_Q8S rows (stride
 * 40 nb) at B */
typedef void (*qk_act_fn)(int64_t nb, const uint8_t *A, size_t as, int64_t m, uint8_t *B);

typedef struct {
    qk_dot_fn   dot[QFIT_TYPE_COUNT];    /* by weight type */
    qk_dotn_fn  dotn[QFIT_TYPE_COUNT];   /* by weight type; NULL: dot per row */
    qk_quant_fn quant[QFIT_TYPE_COUNT];  /* by vec-dot (activation) type */
    qk_panel    panel[QFIT_TYPE_COUNT];  /* by weight type */
    qk_act_fn   act_q8s;                 /* set where a panel asks for QK_ACT_Q8S */
} qk_table;

/* dot_scalar.c */
void qk_fill_scalar(qk_table *t);

#if defined(__x86_64__) || defined(_M_X64)
/* dot_avx2.c / dot_avx512.c (compiled with the matching -m flags) */
void qk_fill_avx2(qk_table *t);
void qk_fill_avx512(qk_table *t);   /* requires AVX-512F/BW/VL/DQ + VNNI */
/* gemm_avx2.c / gemm_avx512.c: panel kernels */
void qk_fill_gemm_avx2(qk_table *t);
void qk_fill_gemm_avx512(qk_table *t, int bf16);   /* bf16: the CPU has AVX512_BF16 */
/* gemm_zmm_avx512.c: every quantized type's panel kernel (512-bit) */
void qk_fill_gemm_avx512_zmm(qk_table *t);
/* attn_avx2.c: the row kernels (needs AVX2 + FMA + F16C) */
extern const qfit_row_kernels qfit_row_kernels_avx2;
/* the AVX2 table with AVX-512's flash attention (attn_avx512.c) */
extern const qfit_row_kernels qfit_row_kernels_avx512;
/* the rows8 kernels of both (qfit_row_kernels.rows8) */
void qk_attn_rows8_avx2(int type_k, int type_v, int hdk, int hdv, int nrows, const float *const *q, int p_begin,
                        const int *npos, float scale, const uint8_t *k0, size_t k_stride, const uint8_t *v0,
                        size_t v_stride, float *const *out, float *ml, float *scratch);
void qk_attn_rows8_avx512(int type_k, int type_v, int hdk, int hdv, int nrows, const float *const *q, int p_begin,
                          const int *npos, float scale, const uint8_t *k0, size_t k_stride, const uint8_t *v0,
                          size_t v_stride, float *const *out, float *ml, float *scratch);
#endif
#if defined(__aarch64__)
/* dot_neon.c; dotprod: the CPU has SDOT/UDOT */
void qk_fill_neon(qk_table *t, int dotprod);
/* gemm_neon.c: panel kernels */
void qk_fill_gemm_neon(qk_table *t, int dotprod);
/* row_neon.c: the row kernels (ARMv8.0 NEON) */
extern const qfit_row_kernels qfit_row_kernels_neon;
#endif

/* The kernel table of an ISA, NULL if this CPU lacks it (tests). */
const qk_table *qk_table_for(qfit_isa isa);

/* CPU has AVX-512DQ as well (not in the public feature struct). */
int qk_cpu_has_avx512dq(void);

#endif
