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
} qfit_vk_device_info;

/* Physical devices the Vulkan loader reports (enumerated once per process): the count, or
 * -1 with the reason (no loader, no driver, an instance that cannot be created). */
int qfit_vk_device_count(char *err, size_t err_len);
/* Device i's facts: 0, or -1 when i is out of range or enumeration failed. */
int qfit_vk_device_get(int i, qfit_vk_device_info *out);

typedef struct qfit_vk qfit_vk;          /* an open device: its queue and pipelines */
typedef struct qfit_vk_buf qfit_vk_buf;  /* a storage buffer in the device's memory */

/* Open device i (its first compute queue). */
qfit_vk *qfit_vk_open(int i, char *err, size_t err_len);
void     qfit_vk_close(qfit_vk *vk);   /* frees what is left of its buffers too */

/* A buffer of at least bytes bytes (> 0), device-local when the device has such memory. */
qfit_vk_buf *qfit_vk_buf_new(qfit_vk *vk, size_t bytes, char *err, size_t err_len);
void         qfit_vk_buf_free(qfit_vk *vk, qfit_vk_buf *b);
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
 * Q8_1/Q8_K and the integer types). */
bool qfit_vk_matmul_type_ok(int wtype);
/* y[j * ldy + r] = sum_i W[r][i] * x[j * ldx + i] for rows r in [0, rows) and activation rows
 * j in [0, n), in float32: W is rows rows of k elements of type wtype as GGUF stores them,
 * starting at byte w_off of w (F32 rows at a multiple of 4, the others at an even byte); x
 * and y hold floats. Large
 * matrices go in several dispatches, each binding at most the device's storage range.
 * Returns when y is written. */
int qfit_vk_matmul(qfit_vk *vk, int wtype, const qfit_vk_buf *w, size_t w_off, int64_t rows, int64_t k,
                   const qfit_vk_buf *x, int64_t ldx, qfit_vk_buf *y, int64_t ldy, int n, char *err, size_t err_len);

/* The row and element ops of a layer, float32 buffers, each done when it returns:
 *   rms_norm: y[j*ldy + i] = x[j*ldx + i] / sqrt(mean_i(x[j]^2) + eps) * w[i], n rows of k;
 *   swiglu:   g[i] = g[i] / (1 + exp(-g[i])) * u[i], i in [0, count);
 *   add:      y[i] += x[i], i in [0, count). */
int qfit_vk_rms_norm(qfit_vk *vk, const qfit_vk_buf *x, int64_t ldx, const qfit_vk_buf *w, qfit_vk_buf *y, int64_t ldy,
                     int64_t k, int n, float eps, char *err, size_t err_len);
int qfit_vk_swiglu(qfit_vk *vk, qfit_vk_buf *g, const qfit_vk_buf *u, int64_t count, char *err, size_t err_len);
int qfit_vk_add(qfit_vk *vk, qfit_vk_buf *y, const qfit_vk_buf *x, int64_t count, char *err, size_t err_len);

/* RoPE in place on n rows of n_head heads of head_dim floats (token j's row at j * ld, at
 * position pos0 + j): the first n_rot dimensions of each head, NEOX pairs (x[i],
 * x[i + n_rot/2]) or normal ones (x[2i], x[2i+1]), by the angles in table: n_pos x n_rot/2
 * cosines, then as many sines (the CPU context's tables, uploaded). */
int qfit_vk_rope(qfit_vk *vk, qfit_vk_buf *x, int64_t ld, int n, int n_head, int head_dim, int n_rot, bool neox,
                 int pos0, const qfit_vk_buf *table, int64_t n_pos, char *err, size_t err_len);

/* The KV cache, f16, in a buffer of halves: KV head h's row of position p at half index
 * base + h * head_stride + p * head_dim (head_stride >= positions held x head_dim; base,
 * head_stride and head_dim even).
 * kv_store: n rows of n_kv heads (token j's at j * ld floats) into positions pos0 + j, each
 *   value rounded to f16 (packHalf2x16).
 * attention: causal attention of n tokens at positions pos0 + j: query head h (token j's
 *   row at j * ldq) against KV head h / (n_head / n_kv) over positions 0 .. pos0 + j,
 *   softmax(scale q.k) v (float32 sums, head_dim <= 256) into out (token j's row at j * ldo). */
int qfit_vk_kv_store(qfit_vk *vk, const qfit_vk_buf *src, int64_t ld, int n, int n_kv, int head_dim, qfit_vk_buf *cache,
                     int64_t base, int64_t head_stride, int pos0, char *err, size_t err_len);
int qfit_vk_attention(qfit_vk *vk, const qfit_vk_buf *q, int64_t ldq, int n, int n_head, int n_kv, int head_dim,
                      const qfit_vk_buf *cache, int64_t k_base, int64_t v_base, int64_t head_stride, int pos0,
                      float scale, qfit_vk_buf *out, int64_t ldo, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif
