/* qfit — tensor element types and ggml-compatible block formats.
 *
 * Type ids, block sizes and block layouts are identical to ggml's so that a
 * tensor's bytes can be read from or written to a GGUF file as they are.
 * Core module: depends on libc and libm only.
 */
#ifndef QFIT_QUANT_H
#define QFIT_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ggml's type ids (the numbers stored in GGUF tensor infos). Gaps are ids
 * ggml has retired; they are rejected as unknown. */
typedef enum {
    QFIT_TYPE_F32     = 0,
    QFIT_TYPE_F16     = 1,
    QFIT_TYPE_Q4_0    = 2,
    QFIT_TYPE_Q4_1    = 3,
    QFIT_TYPE_Q5_0    = 6,
    QFIT_TYPE_Q5_1    = 7,
    QFIT_TYPE_Q8_0    = 8,
    QFIT_TYPE_Q8_1    = 9,
    QFIT_TYPE_Q2_K    = 10,
    QFIT_TYPE_Q3_K    = 11,
    QFIT_TYPE_Q4_K    = 12,
    QFIT_TYPE_Q5_K    = 13,
    QFIT_TYPE_Q6_K    = 14,
    QFIT_TYPE_Q8_K    = 15,
    QFIT_TYPE_IQ2_XXS = 16,
    QFIT_TYPE_IQ2_XS  = 17,
    QFIT_TYPE_IQ3_XXS = 18,
    QFIT_TYPE_IQ1_S   = 19,
    QFIT_TYPE_IQ4_NL  = 20,
    QFIT_TYPE_IQ3_S   = 21,
    QFIT_TYPE_IQ2_S   = 22,
    QFIT_TYPE_IQ4_XS  = 23,
    QFIT_TYPE_I8      = 24,
    QFIT_TYPE_I16     = 25,
    QFIT_TYPE_I32     = 26,
    QFIT_TYPE_I64     = 27,
    QFIT_TYPE_F64     = 28,
    QFIT_TYPE_IQ1_M   = 29,
    QFIT_TYPE_BF16    = 30,
    QFIT_TYPE_TQ1_0   = 34,
    QFIT_TYPE_TQ2_0   = 35,
    QFIT_TYPE_MXFP4   = 39,
    QFIT_TYPE_COUNT   = 40  /* one past the largest id */
} qfit_type;

#define QFIT_QK_K 256  /* super-block size of the K-quants */

/* Static facts about a type. */
typedef struct {
    const char *name;        /* ggml's spelling: "f32", "q4_0", "q4_K", ... */
    int64_t     block_size;  /* elements per block (1 for plain types) */
    size_t      type_size;   /* bytes per block */
    bool        quantized;
    bool        can_quantize;   /* qfit has a reference quantizer for it */
    bool        can_dequantize; /* qfit can convert it to float */
} qfit_type_traits;

/* NULL for ids that are not known types. */
const qfit_type_traits *qfit_type_get_traits(int type);
bool        qfit_type_is_valid(int type);
const char *qfit_type_name(int type);              /* "?" for unknown ids */
/* Case-insensitive lookup of a ggml type name ("q4_k", "Q8_0", "bf16"); -1 if unknown. */
int         qfit_type_from_name(const char *name);

/* Bytes of one row of n elements; 0 if n is not
 * a multiple of the block size or the type is unknown. */
size_t qfit_row_size(int type, int64_t n);
/* Bytes of a tensor with ne elements along dim 0 and nrows rows (overflow-checked:
 * returns SIZE_MAX when it would not fit in size_t or the row is invalid). */
size_t qfit_tensor_nbytes(int type, int64_t ne0, int64_t nrows);

/* ---- IEEE half / bfloat16 conversion (exact, round-to-nearest-even) ---- */
uint16_t qfit_fp32_to_fp16(float f);
float    qfit_fp16_to_fp32(uint16_t h);
uint16_t qfit_fp32_to_bf16(float f);   /* as ggml: NaN kept quiet, RNE */
float    qfit_bf16_to_fp32(uint16_t h);

/* ---- Reference quantization / dequantization of contiguous rows ----
 * n must be a multiple of the type's block size. These reproduce ggml's
 * reference quantizers (no importance matrix) byte for byte.
 * Returns 0 on success, -1 if the type has no quantizer / n is invalid. */
int qfit_quantize_row_ref(int type, const float *x, void *y, int64_t n);
int qfit_dequantize_row(int type, const void *x, float *y, int64_t n);

/* Quantize nrows rows of n_per_row floats exactly as ggml_quantize_chunk(type, ...,
 * imatrix = NULL) does (what llama.cpp's quantizer calls per tensor).
 * Returns bytes written, or 0 with a message in err when the type cannot be
 * produced or n_per_row is not a multiple of the block size. */
size_t qfit_quantize_rows(int type, const float *src, void *dst,
                          int64_t nrows, int64_t n_per_row,
                          char *err, size_t err_len);

/* The same with an importance matrix, exactly as ggml_quantize_chunk(type, ...,
 * imatrix) does: imatrix holds n_per_row weights, one per column (the mean
 * squared activation feeding that column; see qfit/imatrix.h), each finite and
 * >= 0 (else 0 with a message naming the column). Types for which
 * qfit_type_uses_imatrix is false ignore it, as ggml does (Q8_0, F16, ...);
 * imatrix NULL is qfit_quantize_rows. The caller owns every buffer. */
size_t qfit_quantize_rows_imatrix(int type, const float *src, void *dst,
                                  int64_t nrows, int64_t n_per_row, const float *imatrix,
                                  char *err, size_t err_len);
/* Whether the type's quantizer uses an importance matrix (Q2_K..Q6_K, IQ4_NL,
 * IQ4_XS, Q4_0, Q4_1, Q5_0, Q5_1). */
bool qfit_type_uses_imatrix(int type);

/* Convert nrows rows of any dequantizable type to float (F32 source is copied). */
int qfit_rows_to_float(int type, const void *src, float *dst, int64_t nrows, int64_t n_per_row);

#ifdef __cplusplus
}
#endif
#endif /* QFIT_QUANT_H */
