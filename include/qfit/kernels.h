/* qfit — compute kernels: dot products and matrix multiplication directly on
 * quantized weights, per instruction set (scalar reference, AVX2, AVX-512/VNNI,
 * ARM NEON/dotprod), chosen at run time by CPU feature detection.
 *
 * Activations are quantized on the fly to the weight type's "vec-dot type"
 * exactly as ggml does (Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL/MXFP4, Q8_1 for Q4_1/Q5_1,
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

/* ------------------------------------------------------- weights packed at load
 * A matrix repacked once, when the model loads, into the register-tiled kernels'
 * panel layout of the active ISA, so that a batch of a few rows (parallel
 * sequences, m = 2..16) does not repack every panel on every call, and one row
 * (generation) runs on the same panels as fast as on the rows. Only where the
 * layout is as compact as the rows (within 6%) and its one-row speed was measured
 * no slower: on AVX-512 VNNI, Q4_K (152 bytes per 256 weights of a row instead of
 * 144), Q6_K (212 instead of 210), IQ4_XS (140 instead of 136), and Q8_0, Q4_0 and
 * IQ4_NL (as stored). Elsewhere qfit_pack_bytes returns 0 and the rows are used as
 * they are. */
typedef struct {
    void   *data;          /* the panels (owned: qfit_packed_free); NULL: not packed */
    int     wtype;         /* the weight type (a qfit_type id) */
    int     isa;           /* the qfit_isa whose layout it is */
    int     rows;          /* weight rows per panel */
    int64_t k, n;          /* elements per row, rows */
    size_t  panel_bytes;   /* bytes of one panel */
} qfit_packed;

/* Bytes the packed form of n rows of k elements of wtype takes on the active ISA;
 * 0 when that ISA has no load-time layout for wtype (or k is not whole blocks). */
size_t qfit_pack_bytes(int wtype, int64_t k, int64_t n);
/* Pack n rows (stride w_stride bytes) into *out (allocated here). 0, or -1 with *out
 * zeroed: no layout (qfit_pack_bytes 0), out of memory, invalid arguments. Reads W
 * once, front to back. Thread-safe (no shared state). */
int    qfit_pack_matrix(int wtype, int64_t k, int64_t n, const void *W, size_t w_stride, qfit_packed *out);
/* The same in two steps, for packing by parts (several threads, each on its own rows):
 * qfit_packed_alloc fills *out and allocates its panels, not yet written (0, or -1 as
 * above); qfit_pack_rows packs rows [i0, i1) (i0 a multiple of out->rows, i1 too or
 * n) of the matrix whose row 0 is at W, under the ISA that allocated it (0, or -1 on
 * invalid arguments or another ISA active). Calls on disjoint ranges may run
 * concurrently. */
int    qfit_packed_alloc(int wtype, int64_t k, int64_t n, qfit_packed *out);
int    qfit_pack_rows(const qfit_packed *p, int64_t i0, int64_t i1, const void *W, size_t w_stride);
void   qfit_packed_free(qfit_packed *p);
/* qfit_gemm on the packed form: Y[j][i] = dot(row i, A row j) for i in [i0, i1).
 * Returns 0 when done; 1, writing nothing, when the packed form cannot serve the
 * call and the caller must use the rows (another ISA is active, or i0 / i1 are not on
 * panel boundaries: i0 a multiple of rows, i1 too or n); -1 on invalid arguments.
 * The sums are the panel kernel's for every m, so one row and a batch agree exactly. */
int    qfit_gemm_packed(const qfit_packed *p, int64_t i0, int64_t i1, const void *A, size_t a_stride, int64_t m,
                        float *Y, int64_t ldy);

/* ---------------------------------------------------------------- row kernels
 * Attention over the KV cache and element-wise row operations of the forward pass,
 * one table per instruction set, read in place from the cache (nothing dequantizes
 * the whole cache):
 *   dot_*: q . k for one cached key row of n elements. f32/f16 keys take the query
 *          in f32; q8_0/q4_0 keys take the query quantized to q8_0 (integer dots, as ggml).
 *   mad_*: acc[0..n) += w * v for one cached value row.
 *   scale: acc[0..n) *= s.   exp_sub: x[i] = exp(x[i] - m).
 *   swiglu: g[i] = silu(g[i]) * u[i].
 *   gelu:   x[i] = gelu(x[i]), GELU's tanh form as ggml's CPU backend evaluates it
 *           (GGML_GELU_FP16): x <= -10 gives 0, x >= 10 gives x, else the input rounded to
 *           fp16 and gelu read from a table of fp16 values (one shared scalar kernel).
 *   geglu:  g[i] = gelu(g[i]) * u[i], the same GELU.
 *   swiglu_oai: gpt-oss's clamped SwiGLU as ggml's swiglu_oai: x = min(g[i], limit),
 *           y = clamp(u[i], -limit, limit), g[i] = x / (1 + exp(-alpha x)) * (y + 1)
 *           (one shared scalar kernel).
 *   f32_to_f16: y[i] = fp16(x[i]), round to nearest even.
 *   rows8 (NULL where the ISA has none): flash attention on K and V caches of f16,
 *          q8_0 or q4_0 (converted in registers) for 8 query rows q[r] (hdk floats)
 *          sharing one KV head, row r seeing cached positions [p_begin, npos[r])
 *          (prefill: p_begin = 0, npos[r] >= 1); k0 / v0 = this head's slice of position
 *          0, rows k_stride / v_stride bytes apart. Only rows r < nrows (1..8) are
 *          wanted: the others must still point at valid memory (a copy of a real query,
 *          a scratch output). ml == NULL: out[r] (hdv floats, distinct) =
 *          softmax(scale q[r] . K^T) V. ml != NULL (a KV range of a split decode):
 *          out[r] = the unnormalized sum of exp(s - M) V, ml[2r] = M (the max scaled
 *          score, -inf if none), ml[2r+1] = the sum of exp(s - M). A rotated (Hadamard)
 *          cache is the caller's business. hdk, hdv multiples of 8 (block types: of
 *          their block size); scratch: QFIT_ATTN_ROWS8_SCRATCH(hdk, hdv) floats.
 *          q8_0 / q4_0 keys: the queries come rounded to q8_0 (quantized per 32 and
 *          back, as ggml's vec dot sees them), so a kernel may score on their integer
 *          form (AVX-512 does) and agree with one that scores in float.
 *          nrows > 4 (a prefill block): out[r] (ml) is bit for bit what the per-row
 *          flash path (attn.c's flash_range over the same table's dot_*, exp_sub,
 *          scale and mad_* entries, tiles of QFIT_ATTN_ROWS8_TILE positions from
 *          p_begin) gives for row r alone, its query in q8_0 for block keys; up to 4
 *          rows (decode groups) may sum in another order.
 * Block rows are whole blocks of 32 (n % 32 == 0); f32/f16 rows any n. The vector
 * tables agree with the scalar one to float rounding (exp: ~1e-7 relative). */
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
    void (*exp_sub)(float *x, float m, int n);
    void (*swiglu)(float *g, const float *u, int64_t n);
    void (*gelu)(float *x, int64_t n);
    void (*geglu)(float *g, const float *u, int64_t n);
    void (*swiglu_oai)(float *g, const float *u, int64_t n, float alpha, float limit);
    void (*f32_to_f16)(const float *x, uint16_t *y, int64_t n);
    void (*rows8)(int type_k, int type_v, int hdk, int hdv, int nrows, const float *const *q, int p_begin,
                  const int *npos, float scale, const uint8_t *k0, size_t k_stride, const uint8_t *v0,
                  size_t v_stride, float *const *out, float *ml, float *scratch);
} qfit_row_kernels;

/* positions per tile of the rows8 kernels' online softmax: the per-row flash path's
 * (attn.c, QFIT_FA_TILE), so that an 8-row block rescales where each row alone would */
#define QFIT_ATTN_ROWS8_TILE 64
#define QFIT_ATTN_ROWS8_SCRATCH(hdk, hdv) \
    ((size_t)(hdk) * (8 + 64 + 18) + (size_t)(hdk) / 4 + 64 * 8 + (size_t)(hdv) * (64 + 18))

/* The table for the active ISA (qfit_isa_active; it follows qfit_isa_select): the
 * vector one where this CPU has it (x86: AVX2 + FMA + F16C), else the scalar one.
 * Static; thread-safe. */
const qfit_row_kernels *qfit_row_kernels_active(void);
/* The scalar reference table. */
extern const qfit_row_kernels qfit_row_kernels_scalar;

/* A pause for spin-wait loops (x86 PAUSE, ARM YIELD, nothing elsewhere). */
void qfit_cpu_relax(void);

#ifdef __cplusplus
}
#endif
#endif /* QFIT_KERNELS_H */
