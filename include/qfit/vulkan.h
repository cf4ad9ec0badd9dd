/* Vulkan compute (issue 16): the devices, their buffers, and the ops a GPU backend
 * composes, each tested against the scalar reference's arithmetic (tests/test_vulkan.c).
 *
 * src/model/backend_vulkan.c composes them into a layer: the devices "vulkanN" of
 * qfit/backend.h (what they run and refuse: README.md, "Devices").
 *
 * Built when the Vulkan loader's headers and glslc are found (`make` says which;
 * VULKAN=0 leaves it out, VULKAN=1 makes a missing piece an error). Shaders are GLSL
 * compiled to SPIR-V at build time and embedded; nothing is compiled at run time. In a
 * build without Vulkan, qfit_vk_built() is false and every other call fails saying so.
 *
 * Errors: functions returning int give 0, or -1 with a message in err naming the Vulkan
 * call and its result; pointer results are NULL on error.
 * Thread-safety: device enumeration is safe from any thread. A qfit_vk and its buffers are
 * used by one thread at a time. */
#ifndef QFIT_VULKAN_H
#define QFIT_VULKAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Whether this build has the Vulkan backend. */
bool qfit_vk_built(void);

typedef enum {
    QFIT_VK_OTHER = 0, QFIT_VK_INTEGRATED = 1, QFIT_VK_DISCRETE = 2, QFIT_VK_VIRTUAL = 3, QFIT_VK_CPU = 4,
} qfit_vk_kind;   /* VkPhysicalDeviceType's values */

typedef struct {
    char         name[256];
    qfit_vk_kind kind;
    uint32_t     vendor_id, device_id;
    uint32_t     api_version;          /* VK_MAKE_API_VERSION packing */
    uint64_t     mem_device_local;     /* bytes of its device-local heaps */
    uint32_t     subgroup_size;
    uint32_t     max_shared_bytes;     /* maxComputeSharedMemorySize */
    uint64_t     max_storage_range;    /* maxStorageBufferRange: the most one binding covers */
    bool         fp16, int8;           /* shaderFloat16 / shaderInt8 */
    bool         storage16, storage8;  /* 16- and 8-bit storage buffer access */
    bool         subgroup_ops;         /* subgroup basic, arithmetic and shuffle operations in
                                          compute shaders, subgroups of at least 8 */
    unsigned     features;             /* the QFIT_VK_FEAT_* paths it can take (below) */
    bool         memory_budget;        /* VK_EXT_memory_budget: qfit_vk_device_mem_free answers */
} qfit_vk_device_info;

/* Device features with a path of their own. Each has a path without it, and the results
 * are the same bit for bit whichever paths run (the arithmetic does not change, only how
 * values are loaded, how partial sums meet, and where the weights live): a device takes
 * what it offers.
 *   SUBGROUP: the matrix product's and attention's reductions in subgroup operations
 *             instead of shared memory and barriers (subgroup_ops);
 *   STORAGE:  the matrix product loads bytes and fp16/bf16 values as 8-/16-bit storage
 *             (storage8 and storage16) instead of cutting them out of 32-bit words;
 *   IMPORT:   buffers over host memory, read in place (VK_EXT_external_memory_host, on a
 *             device whose memory is the host's: a CPU driver, an integrated GPU): the
 *             Vulkan backend reads the weights from the model's mapping, no copy.
 * Not used, and why: fp16 and int8 arithmetic (results would differ from the CPU's float32
 * sums), integer dot products and cooperative matrices (Debian 12's glslc cannot compile
 * them; MoltenVK offers neither). */
enum { QFIT_VK_FEAT_SUBGROUP = 1u, QFIT_VK_FEAT_STORAGE = 2u, QFIT_VK_FEAT_IMPORT = 4u, QFIT_VK_FEAT_ALL = 7u };
/* "subgroup,storage,import" for a mask ("none" for 0), into buf (which is returned). */
const char *qfit_vk_feature_names(unsigned features, char *buf, size_t len);
/* Parse a QFIT_VK_FEATURES value: "all", "none", or a comma-separated list of "subgroup",
 * "storage" and "import". 0 and the mask in *out, or -1 naming the word it does not know. */
int qfit_vk_parse_features(const char *s, unsigned *out, char *err, size_t err_len);

/* Physical devices the Vulkan loader reports (enumerated once per process): the count, or
 * -1 with the reason (no loader, no driver, an instance that cannot be created). */
int qfit_vk_device_count(char *err, size_t err_len);
/* Device i's facts: 0, or -1 when i is out of range or enumeration failed. */
int qfit_vk_device_get(int i, qfit_vk_device_info *out);
/* Device i's device-local memory free now, bytes (what VK_EXT_memory_budget reports: each
 * device-local heap's budget less its usage, this process's and others'): 0, or -1 when the
 * device does not report it (no VK_EXT_memory_budget) or i is out of range. */
int qfit_vk_device_mem_free(int i, uint64_t *out);

typedef struct qfit_vk qfit_vk;          /* an open device: its queue and pipelines */
typedef struct qfit_vk_buf qfit_vk_buf;  /* a storage buffer in the device's memory */

/* Open device i (its first compute queue) with the feature paths in features (a
 * QFIT_VK_FEAT_* mask): asking for one the device does not offer is an error naming it.
 * qfit_vk_open takes the environment's QFIT_VK_FEATURES (qfit_vk_parse_features) when set,
 * else every path the device offers. */
qfit_vk *qfit_vk_open_features(int i, unsigned features, char *err, size_t err_len);
qfit_vk *qfit_vk_open(int i, char *err, size_t err_len);
/* The feature paths an open device takes. */
unsigned qfit_vk_features(const qfit_vk *vk);
void     qfit_vk_close(qfit_vk *vk);   /* frees what is left of its buffers too */

/* A buffer of at least bytes bytes (> 0), device-local when the device has such memory. */
qfit_vk_buf *qfit_vk_buf_new(qfit_vk *vk, size_t bytes, char *err, size_t err_len);
void         qfit_vk_buf_free(qfit_vk *vk, qfit_vk_buf *b);
/* A buffer over host memory [host, host + bytes), which the device reads in place
 * (QFIT_VK_FEAT_IMPORT): it covers the whole pages around the range (the import's
 * alignment, qfit_vk_import_alignment), and host sits at *offset in it. The memory must
 * stay mapped and unchanged until the buffer is freed; the buffer is read-only (uploads
 * and copies into it are refused). It counts bytes toward qfit_vk_bytes_held. NULL with
 * the reason when the device has no import or its driver refuses that memory. */
qfit_vk_buf *qfit_vk_buf_import(qfit_vk *vk, const void *host, size_t bytes, size_t *offset, char *err,
                                size_t err_len);
/* The alignment an import rounds to (minImportedHostPointerAlignment); 0 without import. */
size_t       qfit_vk_import_alignment(const qfit_vk *vk);
size_t       qfit_vk_buf_size(const qfit_vk_buf *b);
/* The buffers the device holds now (qfit_vk_buf_new's, not the staging buffer, which is
 * host memory): the bytes asked for, and in *driver_bytes (may be NULL) what the driver
 * allocated for them (each rounded up to its alignment). The planner predicts the first. */
size_t       qfit_vk_bytes_held(const qfit_vk *vk, size_t *driver_bytes);
/* Copy n bytes into / out of the buffer at byte offset off (through a host-visible
 * staging buffer when its memory is not host-visible); returns when the copy is done. */
int qfit_vk_upload(qfit_vk *vk, qfit_vk_buf *b, size_t off, const void *src, size_t n, char *err, size_t err_len);
int qfit_vk_download(qfit_vk *vk, const qfit_vk_buf *b, size_t off, void *dst, size_t n, char *err,
                     size_t err_len);

/* Batches: between qfit_vk_batch_begin and qfit_vk_batch_end the ops (and qfit_vk_copy)
 * are recorded into one command buffer, each after a barrier on what came before, and run
 * when the batch ends (which waits for them); one submission instead of one per op. Inside a
 * batch an op's "done when it returns" holds at the batch's end, and upload/download are
 * refused; a buffer the batch uses must not be freed before it ends. A batch takes at most
 * 512 dispatches. */
int qfit_vk_batch_begin(qfit_vk *vk, char *err, size_t err_len);
int qfit_vk_batch_end(qfit_vk *vk, char *err, size_t err_len);

/* n bytes from src at src_off to dst at dst_off, on the device; done when it returns. */
int qfit_vk_copy(qfit_vk *vk, qfit_vk_buf *dst, size_t dst_off, const qfit_vk_buf *src, size_t src_off, size_t n,
                 char *err, size_t err_len);

/* Weight types qfit_vk_matmul takes (qfit_type ids): F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0,
 * Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS (not yet: the other IQ types, TQ, MXFP4,
 * Q8_1/Q8_K and the integer types). The same answer in a build without Vulkan (the planner
 * asks it for a GPU that is not here). */
bool qfit_vk_matmul_type_ok(int wtype);
/* y[j * ldy + r] = sum_i W[r][i] * x[j * ldx + i] for rows r in [0, rows) and activation rows
 * j in [0, n), in float32: W is rows rows of k elements of type wtype as GGUF stores them,
 * starting at byte w_off of w (F32 rows at a multiple of 4, the others at an even byte); x
 * and y hold floats. Large
 * matrices go in several dispatches, each binding at most the device's storage range.
 * Returns when y is written. */
int qfit_vk_matmul(qfit_vk *vk, int wtype, const qfit_vk_buf *w, size_t w_off, int64_t rows, int64_t k,
                   const qfit_vk_buf *x, int64_t ldx, qfit_vk_buf *y, int64_t ldy, int n, char *err, size_t err_len);

/* Activation rows rounded as the CPU backend rounds them for a matrix product: each of
 * n rows of k floats (row j at x[j * ldx], out at y[j * ldy]) quantized to type by qfit's
 * reference quantizer (qfit_quantize_row_ref) and dequantized back to float. type is a
 * vec-dot type (qfit_vec_dot_type): Q8_0, Q8_1 (rounded as Q8_0: the same values), Q8_K,
 * F16 or BF16; k a multiple of its block (32, 32, 256, 1, 1). y must not overlap x.
 * The CPU's bits (the scales' divisions done in integers, correctly rounded as C's: the
 * device's division may be 2.5 ulp off) for finite inputs, but for blocks whose largest
 * |x| is below 127 * 2^-126 (subnormal scales: the device's division and denormal
 * handling decide). Done when it returns. */
int qfit_vk_round_rows(qfit_vk *vk, int type, const qfit_vk_buf *x, int64_t ldx, qfit_vk_buf *y, int64_t ldy,
                       int64_t k, int n, char *err, size_t err_len);

/* The row and element ops of a layer, float32 buffers, each done when it returns:
 *   rms_norm: y[j*ldy + i] = x[j*ldx + i] / sqrt(mean_i(x[j]^2) + eps) * w[i], n rows of k;
 *   swiglu:   g[i] = g[i] / (1 + exp(-g[i])) * u[i], i in [0, count);
 *   add:      y[i] += x[i], i in [0, count). */
int qfit_vk_rms_norm(qfit_vk *vk, const qfit_vk_buf *x, int64_t ldx, const qfit_vk_buf *w, qfit_vk_buf *y, int64_t ldy,
                     int64_t k, int n, float eps, char *err, size_t err_len);
int qfit_vk_swiglu(qfit_vk *vk, qfit_vk_buf *g, const qfit_vk_buf *u, int64_t count, char *err, size_t err_len);
int qfit_vk_add(qfit_vk *vk, qfit_vk_buf *y, const qfit_vk_buf *x, int64_t count, char *err, size_t err_len);

/* The token table of a pass: a buffer of uint32 pairs, token j's position at [2j] and its
 * sequence at [2j + 1] (uploaded by the caller; the ops below read it on the device, so
 * the caller checks it: a position or sequence outside the cache or RoPE table is not
 * stored, and makes the op's outputs for that token NaN). */

/* RoPE in place on n rows of n_head heads of head_dim floats (token j's row at j * ld, at
 * the position tokens gives it): the first n_rot dimensions of each head, NEOX pairs
 * (x[i], x[i + n_rot/2]) or normal ones (x[2i], x[2i+1]), by the angles in table: n_pos x
 * n_rot/2 cosines, then as many sines (the CPU context's tables, uploaded). */
int qfit_vk_rope(qfit_vk *vk, qfit_vk_buf *x, int64_t ld, int n, int n_head, int head_dim, int n_rot, bool neox,
                 const qfit_vk_buf *tokens, const qfit_vk_buf *table, int64_t n_pos, char *err, size_t err_len);

/* The KV cache: one layer's K (or V) rows in a buffer of bytes, a "part": KV head h of
 * sequence s at position p holds one row of head_dim values at byte
 *   base + s * seq_stride + h * head_stride + p * qfit_vk_kv_row_bytes(type, head_dim)
 * (the CPU context's layout: sequence after sequence, head after head, positions in order).
 * Types: QFIT_TYPE_F16, Q8_0 and Q4_0 (ggml's blocks, as the CPU cache holds them). A
 * rotated part (block types, head_dim a multiple of 64) holds each 64-value chunk of a
 * row times H/8, H the 64x64 Sylvester Hadamard matrix (qfit_hadamard64's), as the CPU
 * backend stores quantized caches (qfit_context_kv_rotated). */
typedef struct {
    int     type;          /* QFIT_TYPE_F16, QFIT_TYPE_Q8_0 or QFIT_TYPE_Q4_0 */
    bool    rotated;       /* rows stored Hadamard-rotated (block types only) */
    int64_t base;          /* byte offset of sequence 0, head 0, position 0 (a multiple of 4) */
    int64_t head_stride;   /* bytes from one KV head's rows to the next's: >= n_pos row bytes */
    int64_t seq_stride;    /* bytes from one sequence's heads to the next's: >= n_kv head strides */
    int     n_pos;         /* positions each (sequence, head) holds */
    int     n_seq;         /* sequences */
} qfit_vk_kv_part;

/* The widest head the attention takes (kv.comp's MAX_HEAD): the backend refuses wider, and
 * so does the planner's offload. */
#define QFIT_VK_MAX_HEAD 256

/* Whether the cache takes type (for a head of head_dim values), and its bytes a row
 * (0: not taken). F16 rows: head_dim even; block types: a multiple of 32. */
bool   qfit_vk_kv_type_ok(int type);
size_t qfit_vk_kv_row_bytes(int type, int head_dim);

/* kv_store: n rows of n_kv heads (token j's at j * ld floats) into the part at their
 *   tokens' (sequence, position): each F16 value rounded to f16 (packHalf2x16); block types
 *   (rotated first when the part is) quantized as ggml's reference quantizer does (Q8_0:
 *   d = max|x| / 127, q = round(x / d) half away from zero; Q4_0: d = the value of largest
 *   magnitude / -8, nibble = min(15, trunc(x / d + 8.5)); d stored as f16). head_dim a
 *   multiple of 64 for a rotated part. Other bytes of the buffer are left as they were.
 * attention: causal attention of n tokens: query head h of token j (row at j * ldq)
 *   against KV head h / (n_head / n_kv) of its sequence in the parts k and v (one buffer),
 *   over positions 0 .. its position, softmax(scale q.k) v (float32 sums, head_dim <= 256)
 *   into out (token j's row at j * ldo). Keys of a block type meet the query rounded to
 *   Q8_0 (by the quantizer above, in the rotated space when k is rotated), as the CPU
 *   backend's attention does; a rotated v's weighted sum is rotated back. k and v hold the
 *   same positions and sequences. */
int qfit_vk_kv_store(qfit_vk *vk, const qfit_vk_buf *src, int64_t ld, int n, int n_kv, int head_dim,
                     const qfit_vk_buf *tokens, qfit_vk_buf *cache, const qfit_vk_kv_part *part, char *err,
                     size_t err_len);
int qfit_vk_attention(qfit_vk *vk, const qfit_vk_buf *q, int64_t ldq, int n, int n_head, int n_kv, int head_dim,
                      const qfit_vk_buf *tokens, const qfit_vk_buf *cache, const qfit_vk_kv_part *k,
                      const qfit_vk_kv_part *v, float scale, qfit_vk_buf *out, int64_t ldo, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif
