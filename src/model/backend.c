/* The devices a context can run on (qfit/backend.h) and the backend each one uses: cpu
 * and ref, then one "vulkanN" per Vulkan device (qfit/vulkan.h; none in a build without
 * Vulkan), looked for once per process, and only when something asks for them (a Vulkan
 * name, the whole list): a context on cpu or ref never loads a Vulkan driver. */
#include "qfit/backend.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "model/model_internal.h"
#include "platform/platform.h"
#include "qfit/vulkan.h"

typedef struct {
    const char *name, *description;
    const qfit_backend *(*backend_for)(const qfit_model *m);
} device_entry;

/* the CPU backend of a model: the post-norm layer (encoders) has one of its own */
static const qfit_backend *cpu_for(const qfit_model *m)
{
    return m->recipes[0].block == QFIT_BLOCK_POST_NORM ? &qfit_backend_cpu_encoder : &qfit_backend_cpu;
}

static const qfit_backend *ref_for(const qfit_model *m)
{
    (void)m;
    return &qfit_backend_ref;
}

static const qfit_backend *vulkan_for(const qfit_model *m)
{
    (void)m;
    return &qfit_backend_vulkan;
}

static const device_entry host_devices[] = {
    { "cpu", "CPU: the ISA kernels on the context's thread pool", cpu_for },
    { "ref", "scalar reference: plain loops in double, the oracle of the other backends (slow)", ref_for },
};
#define N_HOST ((int)(sizeof host_devices / sizeof host_devices[0]))
#define MAX_VK 16

/* the Vulkan devices, found once */
static pthread_once_t g_vk_once = PTHREAD_ONCE_INIT;
static struct {
    int n;
    char name[MAX_VK][24];
    char description[MAX_VK][300];
    qfit_vk_device_info info[MAX_VK];
    char names[64 + MAX_VK * 18];   /* "cpu, ref, vulkan0, ..." */
} g_vk;

static void find_vulkan(void)
{
    char err[256];
    int n = qfit_vk_device_count(err, sizeof err);
    if (n < 0) n = 0;
    if (n > MAX_VK) n = MAX_VK;
    size_t len = (size_t)snprintf(g_vk.names, sizeof g_vk.names, "cpu, ref");
    for (int i = 0; i < n; i++) {
        qfit_vk_device_info info;
        if (qfit_vk_device_get(i, &info) != 0) break;
        g_vk.info[i] = info;
        snprintf(g_vk.name[i], sizeof g_vk.name[i], "vulkan%d", i);
        snprintf(g_vk.description[i], sizeof g_vk.description[i], "Vulkan: %s", info.name);
        len += (size_t)snprintf(g_vk.names + len, sizeof g_vk.names - len, ", %s", g_vk.name[i]);
        g_vk.n = i + 1;
    }
}

int qfit_device_count(void)
{
    pthread_once(&g_vk_once, find_vulkan);
    return N_HOST + g_vk.n;
}

int qfit_device_get(int i, qfit_device_info *out)
{
    /* the host devices without looking for Vulkan ones: a CPU run does not load a Vulkan
     * driver (lavapipe alone adds about 50 MB to the process) */
    if (i < 0 || !out || (i >= N_HOST && i >= qfit_device_count())) return -1;
    memset(out, 0, sizeof *out);
    if (i < N_HOST) {
        out->name = host_devices[i].name;
        out->description = host_devices[i].description;
        out->host_memory = true;   /* both run on host memory */
        out->mem_total = qfit_sys_ram_bytes();
        out->mem_free = qfit_sys_avail_bytes();
        return 0;
    }
    const qfit_vk_device_info *v = &g_vk.info[i - N_HOST];
    out->name = g_vk.name[i - N_HOST];
    out->description = g_vk.description[i - N_HOST];
    /* a CPU driver (lavapipe) and an integrated GPU (Apple's unified memory) use the host's */
    out->host_memory = v->kind == QFIT_VK_CPU || v->kind == QFIT_VK_INTEGRATED;
    out->offload = true;
    out->mem_total = v->mem_device_local;
    uint64_t free_now = 0;   /* 0: unknown (a driver without VK_EXT_memory_budget) */
    out->mem_free = qfit_vk_device_mem_free(i - N_HOST, &free_now) == 0 ? free_now : 0;
    return 0;
}

int qfit_device_find(const char *name)
{
    if (!name || !*name) return 0;
    for (int i = 0; i < N_HOST; i++)
        if (!strcmp(host_devices[i].name, name)) return i;
    const int n = qfit_device_count();
    for (int i = N_HOST; i < n; i++)
        if (!strcmp(g_vk.name[i - N_HOST], name)) return i;
    return -1;
}

bool qfit_device_offloads(const char *name)
{
    qfit_device_info d;
    const int i = qfit_device_find(name);
    return i >= N_HOST && qfit_device_get(i, &d) == 0 && d.offload;
}

const char *qfit_device_names(void)
{
    pthread_once(&g_vk_once, find_vulkan);
    return g_vk.names;
}

const char *qfit_plain_layer_lacks(const qfit_layer_recipe *r)
{
    return r->block == QFIT_BLOCK_SANDWICH ? "sandwich norms (the block outputs normed too)"
           : r->block != QFIT_BLOCK_PRE_NORM ? "post-norm blocks (x = norm(x + block(x)))"
           : !r->causal                   ? "non-causal attention"
           : r->window > 0                ? "sliding-window attention"
           : !r->rope                     ? "absolute position embeddings"
           : r->rope_local                ? "a second RoPE table for local layers"
           : r->softcap > 0               ? "attention soft-capping"
           : r->sinks                     ? "attention sinks"
           : r->ffn != QFIT_FFN_DENSE     ? "an FFN other than a dense one"
           : r->act != QFIT_FFN_SWIGLU    ? "an FFN activation other than SwiGLU"
                                          : NULL;
}

const qfit_backend *qfit_backend_for(const char *device, const qfit_model *m, char *err, size_t err_len)
{
    const int i = qfit_device_find(device);
    if (i < 0) {
        snprintf(err, err_len, "unknown device \"%s\" (devices: %s)", device, qfit_device_names());
        return NULL;
    }
    const qfit_backend *be = i < N_HOST ? host_devices[i].backend_for(m) : vulkan_for(m);
    if (be->supports && be->supports(m, err, err_len) != 0) return NULL;
    return be;
}

int qfit_device_supports(const char *name, const qfit_model *m, char *err, size_t err_len)
{
    char dummy[8];
    if (!err || !err_len) { err = dummy; err_len = sizeof dummy; }
    if (!m) { snprintf(err, err_len, "no model"); return -1; }
    return qfit_backend_for(name, m, err, err_len) ? 0 : -1;
}
