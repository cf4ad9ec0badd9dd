/* Compute devices: where a context's forward pass runs.
 *
 * A context runs on one device, named in qfit_context_params.device (the CLI's
 * `--device NAME`, the environment's QFIT_DEVICE; empty: "cpu"):
 *   cpu  the CPU backend: the ISA kernels (AVX2, AVX-512/VNNI, NEON, scalar) on the
 *        context's thread pool. Runs every architecture qfit loads.
 *   ref  the scalar reference backend: the same forward pass written plainly, weights
 *        dequantized block by block and multiplied with unquantized activations in
 *        double, softmax and norms in double. It is the oracle the other backends are
 *        tested against (tests/test_backend.c) and runs llama, qwen2 and qwen3 files;
 *        other models are refused with the reason. Slow: for tests and checks.
 *   vulkanN  the Nth Vulkan device (a build with Vulkan, qfit/vulkan.h): the layer on the
 *        device's ops (src/model/backend_vulkan.c); what it refuses: README.md, "Devices".
 * A device that cannot run a model refuses it when the context is created
 * (qfit_context_new fails with the reason): never a silent fall back to another device.
 *
 * Thread-safety: every function here is safe to call from any thread. The table of
 * devices is fixed for the life of the process. */
#ifndef QFIT_BACKEND_H
#define QFIT_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qfit/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *name;         /* "cpu", "ref", "vulkan0", ... (static storage) */
    const char *description;  /* one line: what it is */
    bool        host_memory;  /* its buffers are host memory (the planner counts them there) */
    uint64_t    mem_total;    /* bytes the device can hold buffers in (host: physical memory); 0 unknown */
    uint64_t    mem_free;     /* of which free now (host: what the system reports available); 0 unknown */
    bool        offload;      /* a GPU: runs the last --gpu-layers (num_gpu) layers, in its own
                                 memory with their KV cache; the CPU backend runs the rest */
} qfit_device_info;

/* Devices known to this build and machine (>= 2: cpu, ref, then the Vulkan devices, found
 * once per process; index 0 is the default, "cpu"). */
int qfit_device_count(void);
/* Device i into *out: 0, or -1 when i is out of range. */
int qfit_device_get(int i, qfit_device_info *out);
/* The index of the device called name (case-sensitive; "" and NULL: the default), or -1. */
int qfit_device_find(const char *name);
/* Whether the device called name is one that layers are offloaded to (qfit_device_info's
 * offload: the Vulkan devices); false for the host's backends and unknown names. Looks for
 * Vulkan devices only when name is not a host backend's. */
bool qfit_device_offloads(const char *name);
/* The devices' names, comma-separated ("cpu, ref, vulkan0"), for messages. Static storage. */
const char *qfit_device_names(void);
/* Whether device `name` can run model m: 0, or -1 with the reason in err (an unknown
 * device, or the first layer, operation or weight type the device does not have). */
int qfit_device_supports(const char *name, const qfit_model *m, char *err, size_t err_len);

/* ---------------------------------------------------------------- layer offload */

/* llama.cpp's -ngl (qfit_context_params.n_gpu_layers) on a model of n_layer layers: the
 * layers from *first on run on the device, and the output layer too when *output. ngl -1:
 * all layers and the output; ngl > n_layer: all and the output; else the last ngl layers
 * (0: none). Returns the number of layers offloaded. */
static inline int qfit_offload_split(int n_layer, int ngl, int *first, bool *output)
{
    const int n = ngl < 0 || ngl > n_layer ? n_layer : ngl;
    if (first) *first = n_layer - n;
    if (output) *output = ngl < 0 || ngl > n_layer;
    return n;
}

/* Kept free of a GPU's reported memory for its driver and runtime (contexts, pipelines,
 * staging): a context's -1 ("all that fit") and the planner's GPU budget leave it. */
#define QFIT_GPU_RESERVE_BYTES (512ull << 20)

/* What a new context may take of GPU d's memory: its total less QFIT_GPU_RESERVE_BYTES, and
 * no more than is free now where the driver says (mem_free: VK_EXT_memory_budget; other
 * processes' and this one's buffers are not free). 0 when its memory is unknown. */
static inline uint64_t qfit_device_gpu_budget(const qfit_device_info *d)
{
    const uint64_t cap = d->mem_total > QFIT_GPU_RESERVE_BYTES ? d->mem_total - QFIT_GPU_RESERVE_BYTES : 0;
    return d->mem_free && d->mem_free < cap ? d->mem_free : cap;
}

/* What a Vulkan context allocates in the device's memory besides the weights it uploads
 * (each offloaded layer's tensors, and output_norm and the output matrix when the output
 * layer is offloaded, at their GGUF sizes): bytes asked of the driver, to the byte
 * (src/model/backend_vulkan.c allocates from these very numbers; tests/test_plan.c holds
 * it to qfit_vk_bytes_held). */
typedef struct {
    uint64_t kv;        /* the KV cache of the offloaded layers */
    uint64_t compute;   /* activation rows (n_batch of each), the logits rows, the RoPE table */
} qfit_vulkan_bytes;
/* 0 with *out filled, or -1 when the settings are invalid (a context would refuse them). */
int qfit_vulkan_context_bytes(const qfit_hparams *hp, int n_ctx, int n_batch, int n_seq, int type_k, int type_v,
                              int n_gpu_layers, qfit_vulkan_bytes *out);

/* The layers context c runs on its device (n_gpu_layers resolved: -1, "all that fit", is
 * the count that fitted; n_layer + 1 counts the output layer); 0 on a host device. */
int qfit_context_gpu_layers(const qfit_context *c);

/* The device memory context c holds now (a Vulkan context: its buffers, weights included):
 * the bytes it asked for, and in *driver_bytes (may be NULL) what the driver allocated; 0
 * for a context on the host (cpu, ref). */
size_t qfit_context_device_bytes(const qfit_context *c, size_t *driver_bytes);

#ifdef __cplusplus
}
#endif

#endif
