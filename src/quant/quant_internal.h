/* Internal: per-type reference quantizers and dequantizers (ggml-compatible).
 * k is the number of elements, a multiple of the type's block size. */
#ifndef QFIT_QUANT_INTERNAL_H
#define QFIT_QUANT_INTERNAL_H

#include <stdint.h>
#include "qfit/quant.h"

/* legacy 32-element formats: src/quant/quant_legacy.c */
void qfit_quantize_row_q4_0_ref(const float *x, void *y, int64_t k);
void qfit_quantize_row_q4_1_ref(const float *x, void *y, int64_t k);
void qfit_quantize_row_q5_0_ref(const float *x, void *y, int64_t k);
void qfit_quantize_row_q5_1_ref(const float *x, void *y, int64_t k);
void qfit_quantize_row_q8_0_ref(const float *x, void *y, int64_t k);
void qfit_quantize_row_q8_1_ref(const float *x, void *y, int64_t k);
void qfit_dequantize_row_q4_0(const void *x, float *y, int64_t k);
void qfit_dequantize_row_q4_1(const void *x, float *y, int64_t k);
void qfit_dequantize_row_q5_0(const void *x, float *y, int64_t k);
void qfit_dequantize_row_q5_1(const void *x, float *y, int64_t k);
void qfit_dequantize_row_q8_0(const void *x, float *y, int64_t k);

/* K-quants (256-element super-blocks): src/quant/quant_k.c */
void qfit_quantize_row_q2_K_ref(const float *x, void *y, int64_t k);
void qfit_quantize_row_q3_K_ref(const float *x, void *y, int64_t k);
void qfit_quantize_row_q4_K_ref(const float *x, void *y, int64_t k);
void qfit_quantize_row_q5_K_ref(const float *x, void *y, int64_t k);
void qfit_quantize_row_q6_K_ref(const float *x, void *y, int64_t k);
void qfit_quantize_row_q8_K_ref(const float *x, void *y, int64_t k);
void qfit_dequantize_row_q2_K(const void *x, float *y, int64_t k);
void qfit_dequantize_row_q3_K(const void *x, float *y, int64_t k);
void qfit_dequantize_row_q4_K(const void *x, float *y, int64_t k);
void qfit_dequantize_row_q5_K(const void *x, float *y, int64_t k);
void qfit_dequantize_row_q6_K(const void *x, float *y, int64_t k);
void qfit_dequantize_row_q8_K(const void *x, float *y, int64_t k);

/* non-linear 4-bit formats: src/quant/quant_iq4.c (quantizers as ggml_quantize_chunk
 * calls them with imatrix = NULL) */
void qfit_quantize_row_iq4_nl_ref(const float *x, void *y, int64_t k);
void qfit_quantize_row_iq4_xs_ref(const float *x, void *y, int64_t k);
void qfit_dequantize_row_iq4_nl(const void *x, float *y, int64_t k);
void qfit_dequantize_row_iq4_xs(const void *x, float *y, int64_t k);

/* MXFP4: src/quant/quant_mxfp4.c (ggml has no importance-matrix path for it) */
void qfit_quantize_row_mxfp4_ref(const float *x, void *y, int64_t k);
void qfit_dequantize_row_mxfp4(const void *x, float *y, int64_t k);

/* Importance-matrix paths (what ggml_quantize_chunk does when given one):
 * k is one whole row (n_per_row) and qw its k column weights, >= 0. */
void qfit_quantize_row_q4_0_imatrix(const float *x, void *y, int64_t k, const float *qw);
void qfit_quantize_row_q4_1_imatrix(const float *x, void *y, int64_t k, const float *qw);
void qfit_quantize_row_q5_0_imatrix(const float *x, void *y, int64_t k, const float *qw);
void qfit_quantize_row_q5_1_imatrix(const float *x, void *y, int64_t k, const float *qw);
void qfit_quantize_row_q2_K_imatrix(const float *x, void *y, int64_t k, const float *qw);
void qfit_quantize_row_q3_K_imatrix(const float *x, void *y, int64_t k, const float *qw);
void qfit_quantize_row_q4_K_imatrix(const float *x, void *y, int64_t k, const float *qw);
void qfit_quantize_row_q5_K_imatrix(const float *x, void *y, int64_t k, const float *qw);
void qfit_quantize_row_q6_K_imatrix(const float *x, void *y, int64_t k, const float *qw);
void qfit_quantize_row_iq4_nl_imatrix(const float *x, void *y, int64_t k, const float *qw);
void qfit_quantize_row_iq4_xs_imatrix(const float *x, void *y, int64_t k, const float *qw);

/* Scale searches shared by the K-quants and the legacy imatrix paths
 * (src/quant/quant_k.c). */
/* ggml make_qx_quants(rmse_type 1): symmetric levels -nmax..nmax-1 stored in L
 * offset by nmax, weights qw (x^2 when NULL); returns the scale. */
float qfit_kq_symmetric_scale(int n, int nmax, const float *x, int8_t *L, const float *qw);
/* ggml make_qkx2_quants (= make_qkx3_quants with weights): levels 0..nmax in L,
 * *neg_min = -offset; Ltmp is scratch of n bytes; returns the scale. */
float qfit_kq_affine_scale(int n, int nmax, const float *x, const float *w,
                           uint8_t *L, float *neg_min, uint8_t *Ltmp,
                           float rmin, float rdelta, int nstep, int use_abs);

#endif
