/* Vulkan compute: devices, buffers, pipelines from the SPIR-V embedded at build time
 * (src/vulkan/shaders, compiled by glslc into build/gen/shaders), and the ops of
 * qfit/vulkan.h. Without QFIT_VULKAN (a build without the Vulkan headers or glslc) every
 * call says so. */
#include "qfit/vulkan.h"

#include <stdio.h>
#include <string.h>

#include "qfit/quant.h"

bool qfit_vk_kv_type_ok(int type)
{
    return type == QFIT_TYPE_F16 || type == QFIT_TYPE_Q8_0 || type == QFIT_TYPE_Q4_0;
}

size_t qfit_vk_kv_row_bytes(int type, int head_dim)
{
    if (!qfit_vk_kv_type_ok(type) || head_dim <= 0 || head_dim % (type == QFIT_TYPE_F16 ? 2 : 32)) return 0;
    return qfit_row_size(type, head_dim);
}

/* the matrix product's kernels (matvec.comp's WT_ types; matvec_pipe below maps them) */
bool qfit_vk_matmul_type_ok(int wtype)
{
    switch (wtype) {
    case QFIT_TYPE_F32: case QFIT_TYPE_F16: case QFIT_TYPE_BF16: case QFIT_TYPE_Q8_0: case QFIT_TYPE_Q4_0:
    case QFIT_TYPE_Q4_1: case QFIT_TYPE_Q5_0: case QFIT_TYPE_Q5_1: case QFIT_TYPE_Q2_K: case QFIT_TYPE_Q3_K:
    case QFIT_TYPE_Q4_K: case QFIT_TYPE_Q5_K: case QFIT_TYPE_Q6_K: case QFIT_TYPE_IQ4_NL: case QFIT_TYPE_IQ4_XS:
        return true;
    default:
        return false;
    }
}

const char *qfit_vk_feature_names(unsigned features, char *buf, size_t len)
{
    if (!buf || !len) return "";
    static const char *const names[] = { "subgroup", "storage", "import" };
    size_t at = 0;
    buf[0] = 0;
    for (unsigned i = 0; i < 3; i++)
        if (features & (1u << i)) {
            const int k = snprintf(buf + at, len - at, "%s%s", at ? "," : "", names[i]);
            if (k < 0 || (size_t)k >= len - at) break;
            at += (size_t)k;
        }
    if (!at) snprintf(buf, len, "none");
    return buf;
}

int qfit_vk_parse_features(const char *s, unsigned *out, char *err, size_t err_len)
{
    unsigned m = 0;
    if (!s || !out) {
        if (err && err_len) snprintf(err, err_len, "no feature list");
        return -1;
    }
    for (const char *w = s; *w;) {
        const char *e = w;
        while (*e && *e != ',') e++;
        const size_t n = (size_t)(e - w);
        if (n == 3 && !strncmp(w, "all", 3)) m |= QFIT_VK_FEAT_ALL;
        else if (n == 4 && !strncmp(w, "none", 4)) m |= 0;
        else if (n == 8 && !strncmp(w, "subgroup", 8)) m |= QFIT_VK_FEAT_SUBGROUP;
        else if (n == 7 && !strncmp(w, "storage", 7)) m |= QFIT_VK_FEAT_STORAGE;
        else if (n == 6 && !strncmp(w, "import", 6)) m |= QFIT_VK_FEAT_IMPORT;
        else {
            if (err && err_len)
                snprintf(err, err_len, "unknown Vulkan feature '%.*s' (all, none, subgroup, storage, import)", (int)(n > 32 ? 32 : n), w);
            return -1;
        }
        w = *e ? e + 1 : e;
    }
    *out = m;
    return 0;
}

#ifndef QFIT_VULKAN

#define NO_VK "this qfit was built without Vulkan (install libvulkan-dev and glslc, then make VULKAN=1)"
bool qfit_vk_built(void) { return false; }
int qfit_vk_device_count(char *err, size_t err_len)
{
    if (err && err_len) snprintf(err, err_len, NO_VK);
    return -1;
}
int qfit_vk_device_get(int i, qfit_vk_device_info *out) { (void)i; (void)out; return -1; }
int qfit_vk_device_mem_free(int i, uint64_t *out) { (void)i; (void)out; return -1; }
qfit_vk *qfit_vk_open(int i, char *err, size_t err_len)
{
    (void)i;
    if (err && err_len) snprintf(err, err_len, NO_VK);
    return NULL;
}
qfit_vk *qfit_vk_open_features(int i, unsigned features, char *err, size_t err_len)
{
    (void)features;
    return qfit_vk_open(i, err, err_len);
}
unsigned qfit_vk_features(const qfit_vk *vk) { (void)vk; return 0; }
qfit_vk_buf *qfit_vk_buf_import(qfit_vk *vk, const void *host, size_t bytes, size_t *offset, char *err, size_t err_len)
{
    (void)vk; (void)host; (void)bytes; (void)offset;
    if (err && err_len) snprintf(err, err_len, NO_VK);
    return NULL;
}
size_t qfit_vk_import_alignment(const qfit_vk *vk) { (void)vk; return 0; }
void qfit_vk_close(qfit_vk *vk) { (void)vk; }
qfit_vk_buf *qfit_vk_buf_new(qfit_vk *vk, size_t bytes, char *err, size_t err_len)
{
    (void)vk; (void)bytes;
    if (err && err_len) snprintf(err, err_len, NO_VK);
    return NULL;
}
void qfit_vk_buf_free(qfit_vk *vk, qfit_vk_buf *b) { (void)vk; (void)b; }
size_t qfit_vk_buf_size(const qfit_vk_buf *b) { (void)b; return 0; }
size_t qfit_vk_bytes_held(const qfit_vk *vk, size_t *driver_bytes)
{
    (void)vk;
    if (driver_bytes) *driver_bytes = 0;
    return 0;
}
int qfit_vk_upload(qfit_vk *vk, qfit_vk_buf *b, size_t off, const void *src, size_t n, char *err, size_t err_len)
{
    (void)vk; (void)b; (void)off; (void)src; (void)n;
    if (err && err_len) snprintf(err, err_len, NO_VK);
    return -1;
}
int qfit_vk_download(qfit_vk *vk, const qfit_vk_buf *b, size_t off, void *dst, size_t n, char *err, size_t err_len)
{
    (void)vk; (void)b; (void)off; (void)dst; (void)n;
    if (err && err_len) snprintf(err, err_len, NO_VK);
    return -1;
}
int qfit_vk_copy(qfit_vk *vk, qfit_vk_buf *dst, size_t dst_off, const qfit_vk_buf *src, size_t src_off, size_t n,
                 char *err, size_t err_len)
{
    (void)vk; (void)dst; (void)dst_off; (void)src; (void)src_off; (void)n;
    if (err && err_len) snprintf(err, err_len, NO_VK);
    return -1;
}
int qfit_vk_batch_begin(qfit_vk *vk, char *err, size_t err_len)
{
    (void)vk;
    if (err && err_len) snprintf(err, err_len, NO_VK);
    return -1;
}
int qfit_vk_batch_end(qfit_vk *vk, char *err, size_t err_len)
{
    (void)vk;
    if (err && err_len) snprintf(err, err_len, NO_VK);
    return -1;
}
int qfit_vk_rms_norm(qfit_vk *vk, const qfit_vk_buf *x, int64_t ldx, const qfit_vk_buf *w, qfit_vk_buf *y, int64_t ldy,
                     int64_t k, int n, float eps, char *err, size_t err_len)
{
    (void)vk; (void)x; (void)ldx; (void)w; (void)y; (void)ldy; (void)k; (void)n; (void)eps;
    if (err && err_len) snprintf(err, err_len, NO_VK);
    return -1;
}
int qfit_vk_round_rows(qfit_vk *vk, int type, const qfit_vk_buf *x, int64_t ldx, qfit_vk_buf *y, int64_t ldy,
                       int64_t k, int n, char *err, size_t err_len)
{
    (void)vk; (void)type; (void)x; (void)ldx; (void)y; (void)ldy; (void)k; (void)n;
    if (err && err_len) snprintf(err, err_len, NO_VK);
    return -1;
}
int qfit_vk_swiglu(qfit_vk *vk, qfit_vk_buf *g, const qfit_vk_buf *u, int64_t count, char *err, size_t err_len)
{
    (void)vk; (void)g; (void)u; (void)count;
    if (err && err_len) snprintf(err, err_len, NO_VK);
    return -1;
}
int qfit_vk_add(qfit_vk *vk, qfit_vk_buf *y, const qfit_vk_buf *x, int64_t count, char *err, size_t err_len)
{
    (void)vk; (void)y; (void)x; (void)count;
    if (err && err_len) snprintf(err, err_len, NO_VK);
    return -1;
}
int qfit_vk_rope(qfit_vk *vk, qfit_vk_buf *x, int64_t ld, int n, int n_head, int head_dim, int n_rot, bool neox,
                 const qfit_vk_buf *tokens, const qfit_vk_buf *table, int64_t n_pos, char *err, size_t err_len)
{
    (void)vk; (void)x; (void)ld; (void)n; (void)n_head; (void)head_dim; (void)n_rot; (void)neox; (void)tokens;
    (void)table; (void)n_pos;
    if (err && err_len) snprintf(err, err_len, NO_VK);
    return -1;
}
int qfit_vk_kv_store(qfit_vk *vk, const qfit_vk_buf *src, int64_t ld, int n, int n_kv, int head_dim,
                     const qfit_vk_buf *tokens, qfit_vk_buf *cache, const qfit_vk_kv_part *part, char *err,
                     size_t err_len)
{
    (void)vk; (void)src; (void)ld; (void)n; (void)n_kv; (void)head_dim; (void)tokens; (void)cache; (void)part;
    if (err && err_len) snprintf(err, err_len, NO_VK);
    return -1;
}
int qfit_vk_attention(qfit_vk *vk, const qfit_vk_buf *q, int64_t ldq, int n, int n_head, int n_kv, int head_dim,
                      const qfit_vk_buf *tokens, const qfit_vk_buf *cache, const qfit_vk_kv_part *k,
                      const qfit_vk_kv_part *v, float scale, qfit_vk_buf *out, int64_t ldo, char *err, size_t err_len)
{
    (void)vk; (void)q; (void)ldq; (void)n; (void)n_head; (void)n_kv; (void)head_dim; (void)tokens; (void)cache;
    (void)k; (void)v; (void)scale; (void)out; (void)ldo;
    if (err && err_len) snprintf(err, err_len, NO_VK);
    return -1;
}
int qfit_vk_matmul(qfit_vk *vk, int wtype, const qfit_vk_buf *w, size_t w_off, int64_t rows, int64_t k,
                   const qfit_vk_buf *x, int64_t ldx, qfit_vk_buf *y, int64_t ldy, int n, char *err, size_t err_len)
{
    (void)vk; (void)wtype; (void)w; (void)w_off; (void)rows; (void)k; (void)x; (void)ldx; (void)y; (void)ldy; (void)n;
    if (err && err_len) snprintf(err, err_len, NO_VK);
    return -1;
}

#else /* QFIT_VULKAN */

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vulkan.h>

/* the embedded shaders, spv_<variant> (Makefile: vk_variant; glslc -mfmt=c writes each as a
 * brace-enclosed word list) */
#include "shaders/all.h"

enum {
    PIPE_MV_F32, PIPE_MV_F16, PIPE_MV_BF16, PIPE_MV_Q8_0, PIPE_MV_Q4_0, PIPE_MV_Q4_1, PIPE_MV_Q5_0, PIPE_MV_Q5_1,
    PIPE_MV_Q2_K, PIPE_MV_Q3_K, PIPE_MV_Q4_K, PIPE_MV_Q5_K, PIPE_MV_Q6_K, PIPE_MV_IQ4_NL, PIPE_MV_IQ4_XS,
    PIPE_RMS_NORM, PIPE_SWIGLU, PIPE_ADD, PIPE_ROPE, PIPE_KV_STORE, PIPE_ATTN, PIPE_ROUND, N_PIPES
};
/* Each pipeline's builds, indexed by the QFIT_VK_FEAT_* mask they use (NULL: no such build);
 * pipeline() takes the one with the most of the open device's features. */
typedef struct { const uint32_t *code[4]; size_t bytes[4]; } shader_builds;
#define ONE(v) { { spv_##v }, { sizeof spv_##v } }
#define SG(v) { { spv_##v, spv_##v##_sg }, { sizeof spv_##v, sizeof spv_##v##_sg } }
#define SGST(v) { { spv_##v, spv_##v##_sg, spv_##v##_st, spv_##v##_sgst }, \
                  { sizeof spv_##v, sizeof spv_##v##_sg, sizeof spv_##v##_st, sizeof spv_##v##_sgst } }
static const shader_builds SHADERS[N_PIPES] = {
    [PIPE_MV_F32] = SG(matvec_f32),
    [PIPE_MV_F16] = SGST(matvec_f16),
    [PIPE_MV_BF16] = SGST(matvec_bf16),
    [PIPE_MV_Q8_0] = SGST(matvec_q8_0),
    [PIPE_MV_Q4_0] = SGST(matvec_q4_0),
    [PIPE_MV_Q4_1] = SGST(matvec_q4_1),
    [PIPE_MV_Q5_0] = SGST(matvec_q5_0),
    [PIPE_MV_Q5_1] = SGST(matvec_q5_1),
    [PIPE_MV_Q2_K] = SGST(matvec_q2_k),
    [PIPE_MV_Q3_K] = SGST(matvec_q3_k),
    [PIPE_MV_Q4_K] = SGST(matvec_q4_k),
    [PIPE_MV_Q5_K] = SGST(matvec_q5_k),
    [PIPE_MV_Q6_K] = SGST(matvec_q6_k),
    [PIPE_MV_IQ4_NL] = SGST(matvec_iq4_nl),
    [PIPE_MV_IQ4_XS] = SGST(matvec_iq4_xs),
    [PIPE_RMS_NORM] = ONE(rows_rms_norm),
    [PIPE_SWIGLU] = ONE(rows_swiglu),
    [PIPE_ADD] = ONE(rows_add),
    [PIPE_ROPE] = ONE(rope),
    [PIPE_KV_STORE] = ONE(kv_store),
    [PIPE_ATTN] = SG(kv_attn),
    [PIPE_ROUND] = ONE(round),
};
#undef ONE
#undef SG
#undef SGST

/* the shaders' push constants: matvec.comp's, rows.comp's (at most PUSH_BYTES) */
typedef struct { uint32_t k, row_bytes, w_base, x_stride, y_stride, y_base, n_rows, n_cols; } mv_params;
#define MV_ROWS 8               /* matvec.comp's rows per workgroup */
#define MV_COLS 8               /* and its activation rows */
typedef struct { uint32_t k, ldx, ldy; float eps; } rows_params;
typedef struct { uint32_t n, n_head, head_dim, n_rot, ld, n_pos, sin_base, neox; } rope_params;
typedef struct {
    uint32_t n, n_head, n_kv, head_dim, ld, ldo, n_pos, n_seq, k_base, k_head, k_seq, v_base, v_head, v_seq, types;
    float scale;
} kv_params;
#define PUSH_BYTES 64
#define LOCAL 64                /* every shader's workgroup size */
#define MAX_SETS 512            /* dispatches (descriptor sets) one submission records */
#define MAX_BINDINGS 4          /* storage buffers a shader binds (kv.comp's attention: 4; the rest 3) */
#define STAGING_BYTES (16u << 20)

struct qfit_vk_buf {
    VkBuffer buf;
    VkDeviceMemory mem;
    size_t size;
    size_t asked;        /* the bytes its maker asked for (an import covers more: whole pages) */
    bool imported;       /* memory of the host's, read in place (qfit_vk_buf_import): read-only */
    VkDeviceSize alloc;  /* what the driver allocated for it (its memory requirement) */
    void *map;           /* host-visible memory: mapped for its lifetime; NULL otherwise */
    qfit_vk_buf *next;   /* the device's list (freed with it) */
};

struct qfit_vk {
    VkInstance inst;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t family;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem;
    VkCommandPool cpool;
    VkCommandBuffer cmd;
    VkFence fence;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkDescriptorPool dpool;
    VkPipeline pipes[N_PIPES];
    qfit_vk_buf *bufs;
    qfit_vk_buf *staging;   /* host-visible, for buffers that are not (created on first use) */
    unsigned feat;          /* the QFIT_VK_FEAT_* paths it takes */
    VkDeviceSize import_align;   /* minImportedHostPointerAlignment (QFIT_VK_FEAT_IMPORT) */
    PFN_vkGetMemoryHostPointerPropertiesEXT host_ptr_props;
    bool batching;          /* qfit_vk_batch_begin: ops record into the open command buffer */
    int n_sets;             /* descriptor sets allocated in the open submission */
};

static int vk_fail(char *err, size_t err_len, const char *fmt, ...)
{
    if (err && err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

#define VK_TRY(call, what)                                                                     \
    do {                                                                                       \
        VkResult r_ = (call);                                                                  \
        if (r_ != VK_SUCCESS) return vk_fail(err, err_len, "%s failed (VkResult %d)", what, (int)r_); \
    } while (0)

bool qfit_vk_built(void) { return true; }

/* An instance: Vulkan 1.1, with portability enumeration where the loader offers it (MoltenVK
 * lists its device only then). */
static VkResult make_instance(VkInstance *inst)
{
    uint32_t n = 0;
    vkEnumerateInstanceExtensionProperties(NULL, &n, NULL);
    VkExtensionProperties *ext = calloc(n ? n : 1, sizeof *ext);
    if (!ext) return VK_ERROR_OUT_OF_HOST_MEMORY;
    vkEnumerateInstanceExtensionProperties(NULL, &n, ext);
    bool portability = false;
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(ext[i].extensionName, "VK_KHR_portability_enumeration")) portability = true;
    free(ext);
    const char *names[] = { "VK_KHR_portability_enumeration" };
    VkApplicationInfo app = { .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "qfit",
                              .pEngineName = "qfit", .apiVersion = VK_API_VERSION_1_1 };
    VkInstanceCreateInfo ci = { .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app };
    if (portability) {
        ci.flags = 0x00000001; /* VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR */
        ci.enabledExtensionCount = 1;
        ci.ppEnabledExtensionNames = names;
    }
    return vkCreateInstance(&ci, NULL, inst);
}

/* ------------------------------------------------------------ enumeration */

static struct {
    pthread_once_t once;
    int n;                      /* -1: failed */
    char err[256];
    qfit_vk_device_info *info;
    VkInstance inst;            /* kept for the process's life: free-memory queries use it */
    VkPhysicalDevice *pds;
} g_devs = { PTHREAD_ONCE_INIT, 0, "", NULL, VK_NULL_HANDLE, NULL };

static bool has_device_ext(VkPhysicalDevice pd, const char *name)
{
    uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL);
    VkExtensionProperties *e = calloc(n ? n : 1, sizeof *e);
    if (!e) return false;
    vkEnumerateDeviceExtensionProperties(pd, NULL, &n, e);
    bool found = false;
    for (uint32_t i = 0; i < n && !found; i++) found = !strcmp(e[i].extensionName, name);
    free(e);
    return found;
}

static void fill_info(VkPhysicalDevice pd, qfit_vk_device_info *o)
{
    memset(o, 0, sizeof *o);
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(pd, &p);
    snprintf(o->name, sizeof o->name, "%s", p.deviceName);
    o->kind = (qfit_vk_kind)p.deviceType;
    o->vendor_id = p.vendorID;
    o->device_id = p.deviceID;
    o->api_version = p.apiVersion;
    o->max_shared_bytes = p.limits.maxComputeSharedMemorySize;
    o->max_storage_range = p.limits.maxStorageBufferRange;
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    for (uint32_t h = 0; h < mp.memoryHeapCount; h++)
        if (mp.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) o->mem_device_local += mp.memoryHeaps[h].size;
    VkPhysicalDeviceSubgroupProperties sg = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES };
    VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg };
    vkGetPhysicalDeviceProperties2(pd, &p2);
    o->subgroup_size = sg.subgroupSize;
    /* a device that may run compute shaders in subgroups smaller than its reported size
     * (subgroup size control) says its smallest */
    uint32_t sg_min = sg.subgroupSize;
    if (p.apiVersion >= VK_API_VERSION_1_3 || has_device_ext(pd, "VK_EXT_subgroup_size_control")) {
        VkPhysicalDeviceSubgroupSizeControlPropertiesEXT sc = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT };
        VkPhysicalDeviceProperties2 q2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sc };
        vkGetPhysicalDeviceProperties2(pd, &q2);
        if (sc.minSubgroupSize && sc.minSubgroupSize < sg_min) sg_min = sc.minSubgroupSize;
    }
    const VkSubgroupFeatureFlags need = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT |
                                        VK_SUBGROUP_FEATURE_SHUFFLE_BIT;
    o->subgroup_ops = (sg.supportedOperations & need) == need && (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                      sg_min >= 8;
    VkPhysicalDevice16BitStorageFeatures s16 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES };
    VkPhysicalDevice8BitStorageFeatures s8 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES };
    VkPhysicalDeviceShaderFloat16Int8Features f16 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES };
    VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &s16 };
    if (p.apiVersion >= VK_API_VERSION_1_2) {   /* the 1.2 structures only where the device has 1.2 */
        s16.pNext = &s8;
        s8.pNext = &f16;
    }
    vkGetPhysicalDeviceFeatures2(pd, &f2);
    o->storage16 = s16.storageBuffer16BitAccess;
    o->storage8 = s8.storageBuffer8BitAccess;
    o->fp16 = f16.shaderFloat16;
    o->int8 = f16.shaderInt8;
    /* 8-bit storage is core from Vulkan 1.2, an extension (VK_KHR_8bit_storage) before */
    if (p.apiVersion < VK_API_VERSION_1_2 && has_device_ext(pd, "VK_KHR_8bit_storage")) {
        VkPhysicalDevice8BitStorageFeatures e8 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES };
        VkPhysicalDeviceFeatures2 g2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &e8 };
        vkGetPhysicalDeviceFeatures2(pd, &g2);
        o->storage8 = e8.storageBuffer8BitAccess;
    }
    o->memory_budget = has_device_ext(pd, "VK_EXT_memory_budget");
    /* reading the model's mapping in place: where the device's memory is the host's (a CPU
     * driver, an integrated GPU); a discrete GPU would read it over the bus every token */
    const bool host_mem = p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU || p.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU;
    o->features = (o->subgroup_ops ? QFIT_VK_FEAT_SUBGROUP : 0u) |
                  (o->storage8 && o->storage16 ? QFIT_VK_FEAT_STORAGE : 0u) |
                  (host_mem && has_device_ext(pd, "VK_EXT_external_memory_host") ? QFIT_VK_FEAT_IMPORT : 0u);
}

static void enumerate(void)
{
    VkInstance inst;
    VkResult r = make_instance(&inst);
    if (r != VK_SUCCESS) {
        snprintf(g_devs.err, sizeof g_devs.err, "no Vulkan instance (vkCreateInstance: VkResult %d; is a Vulkan driver "
                 "installed? mesa-vulkan-drivers gives the CPU one, lavapipe)", (int)r);
        g_devs.n = -1;
        return;
    }
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(inst, &n, NULL);
    VkPhysicalDevice *pds = calloc(n ? n : 1, sizeof *pds);
    g_devs.info = calloc(n ? n : 1, sizeof *g_devs.info);
    if (!pds || !g_devs.info) {
        snprintf(g_devs.err, sizeof g_devs.err, "out of memory");
        g_devs.n = -1;
    } else {
        vkEnumeratePhysicalDevices(inst, &n, pds);
        for (uint32_t i = 0; i < n; i++) fill_info(pds[i], &g_devs.info[i]);
        g_devs.n = (int)n;
        g_devs.inst = inst;
        g_devs.pds = pds;
        return;
    }
    free(pds);
    vkDestroyInstance(inst, NULL);
}

int qfit_vk_device_mem_free(int i, uint64_t *out)
{
    pthread_once(&g_devs.once, enumerate);
    if (i < 0 || i >= g_devs.n || !out || !g_devs.info[i].memory_budget) return -1;
    VkPhysicalDeviceMemoryBudgetPropertiesEXT b = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT };
    VkPhysicalDeviceMemoryProperties2 mp = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2, .pNext = &b };
    vkGetPhysicalDeviceMemoryProperties2(g_devs.pds[i], &mp);
    uint64_t free_bytes = 0;
    for (uint32_t h = 0; h < mp.memoryProperties.memoryHeapCount && h < VK_MAX_MEMORY_HEAPS; h++)
        if ((mp.memoryProperties.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) && b.heapBudget[h] > b.heapUsage[h])
            free_bytes += b.heapBudget[h] - b.heapUsage[h];
    *out = free_bytes;
    return 0;
}

int qfit_vk_device_count(char *err, size_t err_len)
{
    pthread_once(&g_devs.once, enumerate);
    if (g_devs.n < 0) return vk_fail(err, err_len, "%s", g_devs.err);
    return g_devs.n;
}

int qfit_vk_device_get(int i, qfit_vk_device_info *out)
{
    pthread_once(&g_devs.once, enumerate);
    if (i < 0 || i >= g_devs.n || !out) return -1;
    *out = g_devs.info[i];
    return 0;
}

/* ---------------------------------------------------------------- device */


static int open_device(qfit_vk *vk, int index, unsigned want, char *err, size_t err_len)
{
    VK_TRY(make_instance(&vk->inst), "vkCreateInstance");
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(vk->inst, &n, NULL);
    if (index < 0 || (uint32_t)index >= n) return vk_fail(err, err_len, "no Vulkan device %d (%u found)", index, n);
    VkPhysicalDevice *pds = calloc(n, sizeof *pds);
    if (!pds) return vk_fail(err, err_len, "out of memory");
    vkEnumeratePhysicalDevices(vk->inst, &n, pds);
    vk->phys = pds[index];
    free(pds);
    vkGetPhysicalDeviceProperties(vk->phys, &vk->props);
    vkGetPhysicalDeviceMemoryProperties(vk->phys, &vk->mem);

    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(vk->phys, &nq, NULL);
    VkQueueFamilyProperties *qf = calloc(nq ? nq : 1, sizeof *qf);
    if (!qf) return vk_fail(err, err_len, "out of memory");
    vkGetPhysicalDeviceQueueFamilyProperties(vk->phys, &nq, qf);
    vk->family = UINT32_MAX;
    for (uint32_t i = 0; i < nq && vk->family == UINT32_MAX; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) vk->family = i;
    free(qf);
    if (vk->family == UINT32_MAX) return vk_fail(err, err_len, "%s has no compute queue", vk->props.deviceName);

    const float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = { .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = vk->family,
                                    .queueCount = 1, .pQueuePriorities = &prio };
    /* the feature paths: each one asked for must be offered */
    qfit_vk_device_info info;
    fill_info(vk->phys, &info);
    if (want & ~info.features & QFIT_VK_FEAT_ALL) {
        char w[64];
        return vk_fail(err, err_len, "%s does not offer the Vulkan feature path '%s' (it offers: %s)", vk->props.deviceName,
                       qfit_vk_feature_names(want & ~info.features, w, sizeof w),
                       qfit_vk_feature_names(info.features, (char[64]){ 0 }, 64));
    }
    vk->feat = want & QFIT_VK_FEAT_ALL;
    /* a portability device (MoltenVK) must have its subset extension enabled; 8-bit storage
     * is an extension before Vulkan 1.2 */
    const char *ext[3];
    uint32_t n_ext = 0;
    if (vk->feat & QFIT_VK_FEAT_IMPORT) ext[n_ext++] = "VK_EXT_external_memory_host";
    if (has_device_ext(vk->phys, "VK_KHR_portability_subset")) ext[n_ext++] = "VK_KHR_portability_subset";
    if ((vk->feat & QFIT_VK_FEAT_STORAGE) && vk->props.apiVersion < VK_API_VERSION_1_2) ext[n_ext++] = "VK_KHR_8bit_storage";
    VkPhysicalDevice8BitStorageFeatures s8 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES,
                                               .storageBuffer8BitAccess = VK_TRUE };
    VkPhysicalDevice16BitStorageFeatures s16 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
                                                 .pNext = &s8, .storageBuffer16BitAccess = VK_TRUE };
    VkDeviceCreateInfo dci = { .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1,
                               .pQueueCreateInfos = &qci, .enabledExtensionCount = n_ext,
                               .ppEnabledExtensionNames = n_ext ? ext : NULL,
                               .pNext = (vk->feat & QFIT_VK_FEAT_STORAGE) ? &s16 : NULL };
    VK_TRY(vkCreateDevice(vk->phys, &dci, NULL, &vk->dev), "vkCreateDevice");
    vkGetDeviceQueue(vk->dev, vk->family, 0, &vk->queue);
    if (vk->feat & QFIT_VK_FEAT_IMPORT) {
        VkPhysicalDeviceExternalMemoryHostPropertiesEXT hp = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT };
        VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &hp };
        vkGetPhysicalDeviceProperties2(vk->phys, &p2);
        vk->import_align = hp.minImportedHostPointerAlignment;
        vk->host_ptr_props =
            (PFN_vkGetMemoryHostPointerPropertiesEXT)vkGetDeviceProcAddr(vk->dev, "vkGetMemoryHostPointerPropertiesEXT");
        if (!vk->host_ptr_props || !vk->import_align || (vk->import_align & (vk->import_align - 1)))
            vk->feat &= ~(unsigned)QFIT_VK_FEAT_IMPORT;   /* a driver that says it has it but does not */
    }

    VkCommandPoolCreateInfo pci = { .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                    .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                    .queueFamilyIndex = vk->family };
    VK_TRY(vkCreateCommandPool(vk->dev, &pci, NULL, &vk->cpool), "vkCreateCommandPool");
    VkCommandBufferAllocateInfo cai = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = vk->cpool,
                                        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1 };
    VK_TRY(vkAllocateCommandBuffers(vk->dev, &cai, &vk->cmd), "vkAllocateCommandBuffers");
    VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
    VK_TRY(vkCreateFence(vk->dev, &fci, NULL, &vk->fence), "vkCreateFence");

    VkDescriptorSetLayoutBinding b[MAX_BINDINGS];
    for (uint32_t i = 0; i < MAX_BINDINGS; i++)
        b[i] = (VkDescriptorSetLayoutBinding){ .binding = i, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                               .descriptorCount = 1, .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT };
    VkDescriptorSetLayoutCreateInfo dl = { .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                           .bindingCount = MAX_BINDINGS, .pBindings = b };
    VK_TRY(vkCreateDescriptorSetLayout(vk->dev, &dl, NULL, &vk->dsl), "vkCreateDescriptorSetLayout");
    VkPushConstantRange pc = { .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = PUSH_BYTES };
    VkPipelineLayoutCreateInfo pl = { .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, .setLayoutCount = 1,
                                      .pSetLayouts = &vk->dsl, .pushConstantRangeCount = 1, .pPushConstantRanges = &pc };
    VK_TRY(vkCreatePipelineLayout(vk->dev, &pl, NULL, &vk->layout), "vkCreatePipelineLayout");
    VkDescriptorPoolSize ps = { .type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = MAX_BINDINGS * MAX_SETS };
    VkDescriptorPoolCreateInfo dp = { .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                      .maxSets = MAX_SETS, .poolSizeCount = 1, .pPoolSizes = &ps };
    VK_TRY(vkCreateDescriptorPool(vk->dev, &dp, NULL, &vk->dpool), "vkCreateDescriptorPool");
    return 0;
}

qfit_vk *qfit_vk_open_features(int index, unsigned features, char *err, size_t err_len)
{
    qfit_vk *vk = calloc(1, sizeof *vk);
    if (!vk) { vk_fail(err, err_len, "out of memory"); return NULL; }
    if (open_device(vk, index, features, err, err_len) != 0) {
        qfit_vk_close(vk);
        return NULL;
    }
    return vk;
}

qfit_vk *qfit_vk_open(int index, char *err, size_t err_len)
{
    unsigned want;
    const char *env = getenv("QFIT_VK_FEATURES");
    if (env && *env) {
        char why[128];
        if (qfit_vk_parse_features(env, &want, why, sizeof why) != 0) {
            vk_fail(err, err_len, "QFIT_VK_FEATURES: %s", why);
            return NULL;
        }
    } else {
        qfit_vk_device_info info;
        if (qfit_vk_device_get(index, &info) != 0) {
            char why[256] = "";
            if (qfit_vk_device_count(why, sizeof why) < 0) vk_fail(err, err_len, "%s", why);
            else vk_fail(err, err_len, "no Vulkan device %d (%d found)", index, qfit_vk_device_count(NULL, 0));
            return NULL;
        }
        want = info.features;
    }
    return qfit_vk_open_features(index, want, err, err_len);
}

unsigned qfit_vk_features(const qfit_vk *vk) { return vk ? vk->feat : 0; }

static void buf_destroy(qfit_vk *vk, qfit_vk_buf *b)
{
    if (b->map) vkUnmapMemory(vk->dev, b->mem);
    if (b->buf) vkDestroyBuffer(vk->dev, b->buf, NULL);
    if (b->mem) vkFreeMemory(vk->dev, b->mem, NULL);
    free(b);
}

void qfit_vk_close(qfit_vk *vk)
{
    if (!vk) return;
    if (vk->dev) {
        vkDeviceWaitIdle(vk->dev);
        while (vk->bufs) {
            qfit_vk_buf *b = vk->bufs;
            vk->bufs = b->next;
            buf_destroy(vk, b);
        }
        if (vk->staging) buf_destroy(vk, vk->staging);
        for (int i = 0; i < N_PIPES; i++)
            if (vk->pipes[i]) vkDestroyPipeline(vk->dev, vk->pipes[i], NULL);
        if (vk->dpool) vkDestroyDescriptorPool(vk->dev, vk->dpool, NULL);
        if (vk->layout) vkDestroyPipelineLayout(vk->dev, vk->layout, NULL);
        if (vk->dsl) vkDestroyDescriptorSetLayout(vk->dev, vk->dsl, NULL);
        if (vk->fence) vkDestroyFence(vk->dev, vk->fence, NULL);
        if (vk->cpool) vkDestroyCommandPool(vk->dev, vk->cpool, NULL);
        vkDestroyDevice(vk->dev, NULL);
    }
    if (vk->inst) vkDestroyInstance(vk->inst, NULL);
    free(vk);
}

/* ---------------------------------------------------------------- buffers */

/* a memory type of the allowed ones with every flag of want, -1 if none */
static int mem_type(const qfit_vk *vk, uint32_t allowed, VkMemoryPropertyFlags want)
{
    for (uint32_t i = 0; i < vk->mem.memoryTypeCount; i++)
        if ((allowed & (1u << i)) && (vk->mem.memoryTypes[i].propertyFlags & want) == want) return (int)i;
    return -1;
}

/* host_only: host-visible coherent memory (staging); else device-local, host-visible too
 * where the device has such memory (integrated GPUs, lavapipe) */
static qfit_vk_buf *buf_make(qfit_vk *vk, size_t bytes, bool host_only, char *err, size_t err_len)
{
    qfit_vk_buf *b = calloc(1, sizeof *b);
    if (!b) { vk_fail(err, err_len, "out of memory"); return NULL; }
    b->size = b->asked = bytes;
    const VkDeviceSize alloc = (bytes + 15) & ~(VkDeviceSize)15;   /* whole words for the shaders */
    VkBufferCreateInfo bi = { .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = alloc,
                              .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE };
    VkResult r = vkCreateBuffer(vk->dev, &bi, NULL, &b->buf);
    if (r != VK_SUCCESS) { vk_fail(err, err_len, "vkCreateBuffer of %zu bytes failed (VkResult %d)", bytes, (int)r); goto fail; }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(vk->dev, b->buf, &req);
    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int t = host_only ? mem_type(vk, req.memoryTypeBits, hv)
                      : mem_type(vk, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | hv);
    if (t < 0 && !host_only) t = mem_type(vk, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (t < 0 && !host_only) t = mem_type(vk, req.memoryTypeBits, hv);
    if (t < 0) { vk_fail(err, err_len, "no memory type for a %zu-byte buffer", bytes); goto fail; }
    VkMemoryAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
                                .memoryTypeIndex = (uint32_t)t };
    b->alloc = req.size;
    r = vkAllocateMemory(vk->dev, &ai, NULL, &b->mem);
    if (r != VK_SUCCESS) {
        vk_fail(err, err_len, "vkAllocateMemory of %llu bytes failed (VkResult %d)", (unsigned long long)req.size, (int)r);
        goto fail;
    }
    r = vkBindBufferMemory(vk->dev, b->buf, b->mem, 0);
    if (r != VK_SUCCESS) { vk_fail(err, err_len, "vkBindBufferMemory failed (VkResult %d)", (int)r); goto fail; }
    if ((vk->mem.memoryTypes[t].propertyFlags & hv) == hv) {
        r = vkMapMemory(vk->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map);
        if (r != VK_SUCCESS) { vk_fail(err, err_len, "vkMapMemory failed (VkResult %d)", (int)r); goto fail; }
    }
    return b;
fail:
    buf_destroy(vk, b);
    return NULL;
}

qfit_vk_buf *qfit_vk_buf_new(qfit_vk *vk, size_t bytes, char *err, size_t err_len)
{
    if (!vk || bytes == 0) { vk_fail(err, err_len, "invalid buffer request (%zu bytes)", bytes); return NULL; }
    qfit_vk_buf *b = buf_make(vk, bytes, false, err, err_len);
    if (!b) return NULL;
    b->next = vk->bufs;
    vk->bufs = b;
    return b;
}

qfit_vk_buf *qfit_vk_buf_import(qfit_vk *vk, const void *host, size_t bytes, size_t *offset, char *err, size_t err_len)
{
    if (!vk || !host || !bytes || !offset) { vk_fail(err, err_len, "invalid import (%zu bytes)", bytes); return NULL; }
    if (!(vk->feat & QFIT_VK_FEAT_IMPORT)) { vk_fail(err, err_len, "this device does not read host memory in place"); return NULL; }
    const uintptr_t a = (uintptr_t)vk->import_align, p0 = (uintptr_t)host & ~(a - 1);
    if ((uintptr_t)host + bytes < (uintptr_t)host || (uintptr_t)host + bytes > UINTPTR_MAX - a) {
        vk_fail(err, err_len, "invalid import range");
        return NULL;
    }
    const uintptr_t p1 = ((uintptr_t)host + bytes + a - 1) & ~(a - 1);
    qfit_vk_buf *b = calloc(1, sizeof *b);
    if (!b) { vk_fail(err, err_len, "out of memory"); return NULL; }
    b->imported = true;
    b->size = (size_t)(p1 - p0);
    b->asked = bytes;
    *offset = (size_t)((uintptr_t)host - p0);
    VkExternalMemoryBufferCreateInfo eb = { .sType = VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO,
                                            .handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT };
    VkBufferCreateInfo bi = { .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .pNext = &eb, .size = b->size,
                              .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE };
    VkResult r = vkCreateBuffer(vk->dev, &bi, NULL, &b->buf);
    if (r != VK_SUCCESS) { vk_fail(err, err_len, "vkCreateBuffer of an import failed (VkResult %d)", (int)r); goto fail; }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(vk->dev, b->buf, &req);
    VkMemoryHostPointerPropertiesEXT hpp = { .sType = VK_STRUCTURE_TYPE_MEMORY_HOST_POINTER_PROPERTIES_EXT };
    r = vk->host_ptr_props(vk->dev, VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT, (void *)p0, &hpp);
    if (r != VK_SUCCESS) { vk_fail(err, err_len, "the driver does not take this host memory (VkResult %d)", (int)r); goto fail; }
    const int t = mem_type(vk, req.memoryTypeBits & hpp.memoryTypeBits, 0);
    if (t < 0 || req.size > b->size) { vk_fail(err, err_len, "no memory type takes this host memory"); goto fail; }
    VkImportMemoryHostPointerInfoEXT imp = { .sType = VK_STRUCTURE_TYPE_IMPORT_MEMORY_HOST_POINTER_INFO_EXT,
                                             .handleType = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT,
                                             .pHostPointer = (void *)p0 };
    VkMemoryAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .pNext = &imp,
                                .allocationSize = b->size, .memoryTypeIndex = (uint32_t)t };
    b->alloc = b->size;
    r = vkAllocateMemory(vk->dev, &ai, NULL, &b->mem);
    if (r != VK_SUCCESS) { vk_fail(err, err_len, "importing %zu bytes of host memory failed (VkResult %d)", b->size, (int)r); goto fail; }
    r = vkBindBufferMemory(vk->dev, b->buf, b->mem, 0);
    if (r != VK_SUCCESS) { vk_fail(err, err_len, "vkBindBufferMemory failed (VkResult %d)", (int)r); goto fail; }
    b->next = vk->bufs;
    vk->bufs = b;
    return b;
fail:
    buf_destroy(vk, b);
    return NULL;
}

size_t qfit_vk_import_alignment(const qfit_vk *vk)
{
    return vk && (vk->feat & QFIT_VK_FEAT_IMPORT) ? (size_t)vk->import_align : 0;
}

void qfit_vk_buf_free(qfit_vk *vk, qfit_vk_buf *b)
{
    if (!vk || !b) return;
    for (qfit_vk_buf **p = &vk->bufs; *p; p = &(*p)->next)
        if (*p == b) {
            *p = b->next;
            vkDeviceWaitIdle(vk->dev);
            buf_destroy(vk, b);
            return;
        }
}

size_t qfit_vk_buf_size(const qfit_vk_buf *b) { return b ? b->size : 0; }

size_t qfit_vk_bytes_held(const qfit_vk *vk, size_t *driver_bytes)
{
    size_t asked = 0, held = 0;
    for (const qfit_vk_buf *b = vk ? vk->bufs : NULL; b; b = b->next) {
        asked += b->asked;
        held += (size_t)b->alloc;
    }
    if (driver_bytes) *driver_bytes = held;
    return asked;
}

static int begin(qfit_vk *vk, char *err, size_t err_len)
{
    VK_TRY(vkResetCommandBuffer(vk->cmd, 0), "vkResetCommandBuffer");
    VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                    .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT };
    VK_TRY(vkBeginCommandBuffer(vk->cmd, &bi), "vkBeginCommandBuffer");
    return 0;
}

/* end, submit and wait */
static int submit(qfit_vk *vk, char *err, size_t err_len)
{
    VK_TRY(vkEndCommandBuffer(vk->cmd), "vkEndCommandBuffer");
    VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &vk->cmd };
    VK_TRY(vkResetFences(vk->dev, 1, &vk->fence), "vkResetFences");
    VK_TRY(vkQueueSubmit(vk->queue, 1, &si, vk->fence), "vkQueueSubmit");
    VK_TRY(vkWaitForFences(vk->dev, 1, &vk->fence, VK_TRUE, UINT64_MAX), "vkWaitForFences");
    return 0;
}

static int op_begin(qfit_vk *vk, char *err, size_t err_len);

/* one copy between a buffer and the staging buffer, done when it returns */
static int staged_copy(qfit_vk *vk, VkBuffer src, VkDeviceSize so, VkBuffer dst, VkDeviceSize dof, VkDeviceSize n,
                       char *err, size_t err_len)
{
    if (begin(vk, err, err_len) != 0) return -1;
    VkBufferCopy c = { .srcOffset = so, .dstOffset = dof, .size = n };
    vkCmdCopyBuffer(vk->cmd, src, dst, 1, &c);
    return submit(vk, err, err_len);
}

int qfit_vk_copy(qfit_vk *vk, qfit_vk_buf *dst, size_t dst_off, const qfit_vk_buf *src, size_t src_off, size_t n,
                 char *err, size_t err_len)
{
    if (!vk || !dst || !src || n == 0 || dst_off > dst->size || n > dst->size - dst_off || src_off > src->size ||
        n > src->size - src_off)
        return vk_fail(err, err_len, "copy of %zu bytes from %zu to %zu is outside its buffers", n, src_off, dst_off);
    if (dst->imported) return vk_fail(err, err_len, "copy into host memory read in place (an imported buffer is read-only)");
    if (!vk->batching) return staged_copy(vk, src->buf, src_off, dst->buf, dst_off, n, err, err_len);
    if (op_begin(vk, err, err_len) != 0) return -1;
    VkBufferCopy c = { .srcOffset = src_off, .dstOffset = dst_off, .size = n };
    vkCmdCopyBuffer(vk->cmd, src->buf, dst->buf, 1, &c);
    return 0;
}

static int check_range(const qfit_vk_buf *b, size_t off, size_t n, const void *p, char *err, size_t err_len)
{
    if (!b || !p || off > b->size || n > b->size - off)
        return vk_fail(err, err_len, "copy of %zu bytes at %zu is outside the %zu-byte buffer", n, off, b ? b->size : 0);
    return 0;
}

static int staging(qfit_vk *vk, char *err, size_t err_len)
{
    if (!vk->staging) vk->staging = buf_make(vk, STAGING_BYTES, true, err, err_len);
    return vk->staging ? 0 : -1;
}

int qfit_vk_upload(qfit_vk *vk, qfit_vk_buf *b, size_t off, const void *src, size_t n, char *err, size_t err_len)
{
    if (check_range(b, off, n, src, err, err_len) != 0) return -1;
    if (b->imported) return vk_fail(err, err_len, "upload into host memory read in place (an imported buffer is read-only)");
    if (vk->batching) return vk_fail(err, err_len, "upload inside a batch (end it first: the device may still be using the buffer)");
    if (b->map) {
        memcpy((uint8_t *)b->map + off, src, n);
        return 0;
    }
    if (staging(vk, err, err_len) != 0) return -1;
    for (size_t done = 0; done < n;) {
        const size_t m = n - done < STAGING_BYTES ? n - done : STAGING_BYTES;
        memcpy(vk->staging->map, (const uint8_t *)src + done, m);
        if (staged_copy(vk, vk->staging->buf, 0, b->buf, off + done, m, err, err_len) != 0) return -1;
        done += m;
    }
    return 0;
}

int qfit_vk_download(qfit_vk *vk, const qfit_vk_buf *b, size_t off, void *dst, size_t n, char *err, size_t err_len)
{
    if (check_range(b, off, n, dst, err, err_len) != 0) return -1;
    if (vk->batching) return vk_fail(err, err_len, "download inside a batch (end it first: its results are not there yet)");
    if (b->map) {
        memcpy(dst, (const uint8_t *)b->map + off, n);
        return 0;
    }
    if (staging(vk, err, err_len) != 0) return -1;
    for (size_t done = 0; done < n;) {
        const size_t m = n - done < STAGING_BYTES ? n - done : STAGING_BYTES;
        if (staged_copy(vk, b->buf, off + done, vk->staging->buf, 0, m, err, err_len) != 0) return -1;
        memcpy((uint8_t *)dst + done, vk->staging->map, m);
        done += m;
    }
    return 0;
}

/* -------------------------------------------------------------------- ops */

static int pipeline(qfit_vk *vk, int id, char *err, size_t err_len)
{
    if (vk->pipes[id]) return 0;
    const unsigned shader_feat = vk->feat & (QFIT_VK_FEAT_SUBGROUP | QFIT_VK_FEAT_STORAGE);
    unsigned v = shader_feat;   /* the build with the most of the device's features: v's subsets, largest first */
    while (v && !SHADERS[id].code[v]) v = (v - 1) & shader_feat;
    VkShaderModuleCreateInfo si = { .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = SHADERS[id].bytes[v],
                                    .pCode = SHADERS[id].code[v] };
    VkShaderModule mod;
    VK_TRY(vkCreateShaderModule(vk->dev, &si, NULL, &mod), "vkCreateShaderModule");
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = { .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                   .module = mod, .pName = "main" },
        .layout = vk->layout,
    };
    VkResult r = vkCreateComputePipelines(vk->dev, VK_NULL_HANDLE, 1, &ci, NULL, &vk->pipes[id]);
    vkDestroyShaderModule(vk->dev, mod, NULL);
    if (r != VK_SUCCESS) return vk_fail(err, err_len, "vkCreateComputePipelines failed (VkResult %d)", (int)r);
    return 0;
}

/* Record one dispatch of pipeline pid in the open command buffer: bindings 0 .. nb-1 are the
 * ranges [off, off + len) of b[0 .. nb-1] (a shader that uses fewer binds its first again;
 * bindings past nb are left unwritten: the shader must not use them), push constants pc
 * (pc_bytes <= PUSH_BYTES), groups gx x gy. */
static int record_n(qfit_vk *vk, int pid, int nb, VkBuffer const *b, const VkDeviceSize *off, const VkDeviceSize *len,
                    const void *pc, uint32_t pc_bytes, uint32_t gx, uint32_t gy, char *err, size_t err_len)
{
    if (vk->n_sets >= MAX_SETS)
        return vk_fail(err, err_len, "more than %d dispatches in one batch (end the batch sooner)", MAX_SETS);
    VkDescriptorSetAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                       .descriptorPool = vk->dpool, .descriptorSetCount = 1, .pSetLayouts = &vk->dsl };
    VkDescriptorSet set;
    VK_TRY(vkAllocateDescriptorSets(vk->dev, &ai, &set), "vkAllocateDescriptorSets");
    vk->n_sets++;
    VkDescriptorBufferInfo bi[MAX_BINDINGS];
    VkWriteDescriptorSet ws[MAX_BINDINGS];
    for (int i = 0; i < nb; i++) {
        bi[i] = (VkDescriptorBufferInfo){ b[i], off[i], len[i] };
        ws[i] = (VkWriteDescriptorSet){ .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstSet = set,
                                        .dstBinding = (uint32_t)i, .descriptorCount = 1,
                                        .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .pBufferInfo = &bi[i] };
    }
    vkUpdateDescriptorSets(vk->dev, (uint32_t)nb, ws, 0, NULL);
    vkCmdBindPipeline(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vk->pipes[pid]);
    vkCmdBindDescriptorSets(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vk->layout, 0, 1, &set, 0, NULL);
    vkCmdPushConstants(vk->cmd, vk->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, pc_bytes, pc);
    vkCmdDispatch(vk->cmd, gx, gy, 1);
    return 0;
}

/* record_n with bindings 0-2 */
static int record(qfit_vk *vk, int pid, VkBuffer const b[3], const VkDeviceSize off[3], const VkDeviceSize len[3],
                  const void *pc, uint32_t pc_bytes, uint32_t gx, uint32_t gy, char *err, size_t err_len)
{
    return record_n(vk, pid, 3, b, off, len, pc, pc_bytes, gx, gy, err, err_len);
}

/* begin a submission that records dispatches (the descriptor pool is reset) */
static int begin_dispatches(qfit_vk *vk, char *err, size_t err_len)
{
    if (begin(vk, err, err_len) != 0) return -1;
    VK_TRY(vkResetDescriptorPool(vk->dev, vk->dpool, 0), "vkResetDescriptorPool");
    vk->n_sets = 0;
    return 0;
}

/* Every op's commands go between op_begin and op_end. Alone, that is one submission,
 * waited for. In a batch they join the open command buffer after a barrier that makes
 * every earlier write (shader or copy) visible to what follows. */
static int op_begin(qfit_vk *vk, char *err, size_t err_len)
{
    if (!vk->batching) return begin_dispatches(vk, err, err_len);
    const VkMemoryBarrier mb = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                                 .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                                 .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                                  VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT };
    const VkPipelineStageFlags st = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(vk->cmd, st, st, 0, 1, &mb, 0, NULL, 0, NULL);
    return 0;
}

static int op_end(qfit_vk *vk, char *err, size_t err_len)
{
    return vk->batching ? 0 : submit(vk, err, err_len);
}

int qfit_vk_batch_begin(qfit_vk *vk, char *err, size_t err_len)
{
    if (!vk || vk->batching) return vk_fail(err, err_len, "a batch is already open");
    if (begin_dispatches(vk, err, err_len) != 0) return -1;
    vk->batching = true;
    return 0;
}

int qfit_vk_batch_end(qfit_vk *vk, char *err, size_t err_len)
{
    if (!vk || !vk->batching) return vk_fail(err, err_len, "no batch is open");
    vk->batching = false;
    return submit(vk, err, err_len);
}

/* floats [0, count) of b within the device's one-binding range, and count < 2^32 */
static int check_floats(const qfit_vk *vk, const qfit_vk_buf *b, uint64_t count, const char *what, char *err,
                        size_t err_len)
{
    if (!b || count == 0 || count > UINT32_MAX || count * 4 > b->size)
        return vk_fail(err, err_len, "%s: %llu floats, the buffer holds %zu bytes", what, (unsigned long long)count,
                       b ? b->size : 0);
    if (count * 4 > vk->props.limits.maxStorageBufferRange)
        return vk_fail(err, err_len, "%s: %llu floats, more than one binding of this device covers (%u bytes)", what,
                       (unsigned long long)count, vk->props.limits.maxStorageBufferRange);
    return 0;
}

int qfit_vk_rms_norm(qfit_vk *vk, const qfit_vk_buf *x, int64_t ldx, const qfit_vk_buf *w, qfit_vk_buf *y, int64_t ldy,
                     int64_t k, int n, float eps, char *err, size_t err_len)
{
    if (!vk || k <= 0 || n <= 0 || ldx < k || ldy < k || !(eps >= 0))
        return vk_fail(err, err_len, "invalid RMS norm (%d rows of %lld, ldx %lld, ldy %lld)", n, (long long)k,
                       (long long)ldx, (long long)ldy);
    if ((uint32_t)n > vk->props.limits.maxComputeWorkGroupCount[0])
        return vk_fail(err, err_len, "RMS norm of %d rows: more than one dispatch takes", n);
    const uint64_t xs = (uint64_t)(n - 1) * (uint64_t)ldx + (uint64_t)k, ys = (uint64_t)(n - 1) * (uint64_t)ldy + (uint64_t)k;
    if (check_floats(vk, x, xs, "RMS norm input", err, err_len) || check_floats(vk, w, (uint64_t)k, "RMS norm weight", err, err_len) ||
        check_floats(vk, y, ys, "RMS norm output", err, err_len) || pipeline(vk, PIPE_RMS_NORM, err, err_len))
        return -1;
    if (op_begin(vk, err, err_len) != 0) return -1;
    const VkBuffer b[3] = { x->buf, w->buf, y->buf };
    const VkDeviceSize off[3] = { 0, 0, 0 }, len[3] = { xs * 4, (VkDeviceSize)k * 4, ys * 4 };
    const rows_params pc = { (uint32_t)k, (uint32_t)ldx, (uint32_t)ldy, eps };
    if (record(vk, PIPE_RMS_NORM, b, off, len, &pc, sizeof pc, (uint32_t)n, 1, err, err_len) != 0) return -1;
    return op_end(vk, err, err_len);
}

/* groups of LOCAL threads for count threads: gx x gy within the device's limits */
static int grid(const qfit_vk *vk, uint64_t count, uint32_t *gx, uint32_t *gy, char *err, size_t err_len)
{
    if (count == 0) return vk_fail(err, err_len, "an op over nothing");
    const uint64_t groups = (count + LOCAL - 1) / LOCAL, mx = vk->props.limits.maxComputeWorkGroupCount[0];
    const uint64_t x = groups < mx ? groups : mx, y = (groups + x - 1) / x;
    if (y > vk->props.limits.maxComputeWorkGroupCount[1] || count > UINT32_MAX)
        return vk_fail(err, err_len, "%llu threads: more than one dispatch takes", (unsigned long long)count);
    *gx = (uint32_t)x;
    *gy = (uint32_t)y;
    return 0;
}

/* round.comp's push constants */
typedef struct { uint32_t k, ldx, ldy, type, units; } round_params;

int qfit_vk_round_rows(qfit_vk *vk, int type, const qfit_vk_buf *x, int64_t ldx, qfit_vk_buf *y, int64_t ldy,
                       int64_t k, int n, char *err, size_t err_len)
{
    const int64_t bs = type == QFIT_TYPE_Q8_0 || type == QFIT_TYPE_Q8_1 ? 32
                     : type == QFIT_TYPE_Q8_K ? 256 : type == QFIT_TYPE_F16 || type == QFIT_TYPE_BF16 ? 1 : 0;
    if (!vk || bs == 0 || k <= 0 || k % bs || n <= 0 || ldx < k || ldy < k || x == y)
        return vk_fail(err, err_len, "invalid rounding of %d rows of %lld to %s (ldx %lld, ldy %lld%s)", n, (long long)k,
                       qfit_type_name(type), (long long)ldx, (long long)ldy, x == y ? ", x and y one buffer" : "");
    const uint64_t xs = (uint64_t)(n - 1) * (uint64_t)ldx + (uint64_t)k, ys = (uint64_t)(n - 1) * (uint64_t)ldy + (uint64_t)k;
    const uint64_t units = (uint64_t)n * (uint64_t)(k / bs);
    uint32_t gx = 0, gy = 0;
    if (check_floats(vk, x, xs, "rounding input", err, err_len) || check_floats(vk, y, ys, "rounding output", err, err_len) ||
        grid(vk, units, &gx, &gy, err, err_len) || pipeline(vk, PIPE_ROUND, err, err_len) || op_begin(vk, err, err_len))
        return -1;
    const VkBuffer b[3] = { x->buf, y->buf, x->buf };
    const VkDeviceSize off[3] = { 0, 0, 0 }, len[3] = { xs * 4, ys * 4, xs * 4 };
    const round_params pc = { (uint32_t)k, (uint32_t)ldx, (uint32_t)ldy, (uint32_t)type, (uint32_t)units };
    if (record(vk, PIPE_ROUND, b, off, len, &pc, sizeof pc, gx, gy, err, err_len) != 0) return -1;
    return op_end(vk, err, err_len);
}

/* a[i] op= b[i] for i in [0, count): one thread each, in rows of groups */
static int elementwise(qfit_vk *vk, int pid, const char *what, qfit_vk_buf *a, const qfit_vk_buf *bb, int64_t count,
                       char *err, size_t err_len)
{
    if (!vk || count <= 0) return vk_fail(err, err_len, "invalid %s of %lld elements", what, (long long)count);
    uint32_t gx = 0, gy = 0;
    if (check_floats(vk, a, (uint64_t)count, what, err, err_len) || check_floats(vk, bb, (uint64_t)count, what, err, err_len) ||
        grid(vk, (uint64_t)count, &gx, &gy, err, err_len) || pipeline(vk, pid, err, err_len) ||
        op_begin(vk, err, err_len))
        return -1;
    const VkBuffer b[3] = { a->buf, bb->buf, a->buf };
    const VkDeviceSize off[3] = { 0, 0, 0 }, len[3] = { (VkDeviceSize)count * 4, (VkDeviceSize)count * 4, (VkDeviceSize)count * 4 };
    const rows_params pc = { (uint32_t)count, 0, 0, 0.0f };
    if (record(vk, pid, b, off, len, &pc, sizeof pc, gx, gy, err, err_len) != 0) return -1;
    return op_end(vk, err, err_len);
}

int qfit_vk_swiglu(qfit_vk *vk, qfit_vk_buf *g, const qfit_vk_buf *u, int64_t count, char *err, size_t err_len)
{
    return elementwise(vk, PIPE_SWIGLU, "SwiGLU", g, u, count, err, err_len);
}

int qfit_vk_add(qfit_vk *vk, qfit_vk_buf *y, const qfit_vk_buf *x, int64_t count, char *err, size_t err_len)
{
    return elementwise(vk, PIPE_ADD, "add", y, x, count, err, err_len);
}

/* the token table of n tokens: 2n uint32 */
static int check_tokens(const qfit_vk_buf *tokens, int n, char *err, size_t err_len)
{
    if (!tokens || (uint64_t)n * 8 > tokens->size)
        return vk_fail(err, err_len, "token table of %zu bytes for %d tokens (8 bytes each)", tokens ? tokens->size : 0, n);
    return 0;
}

int qfit_vk_rope(qfit_vk *vk, qfit_vk_buf *x, int64_t ld, int n, int n_head, int head_dim, int n_rot, bool neox,
                 const qfit_vk_buf *tokens, const qfit_vk_buf *table, int64_t n_pos, char *err, size_t err_len)
{
    if (!vk || n <= 0 || n_head <= 0 || head_dim <= 0 || n_rot <= 0 || n_rot % 2 || n_rot > head_dim ||
        ld < (int64_t)n_head * head_dim || n_pos <= 0 || n_pos > UINT32_MAX / (uint32_t)n_rot)
        return vk_fail(err, err_len, "invalid RoPE (%d tokens, table of %lld positions, %d heads of %d, %d rotated, ld %lld)",
                       n, (long long)n_pos, n_head, head_dim, n_rot, (long long)ld);
    const uint64_t xs = (uint64_t)(n - 1) * (uint64_t)ld + (uint64_t)n_head * (uint64_t)head_dim;
    const uint64_t ts = 2 * (uint64_t)n_pos * (uint64_t)(n_rot / 2);
    uint32_t gx = 0, gy = 0;
    if (check_floats(vk, x, xs, "RoPE rows", err, err_len) || check_floats(vk, table, ts, "RoPE table", err, err_len) ||
        check_tokens(tokens, n, err, err_len) ||
        grid(vk, (uint64_t)n * (uint64_t)n_head * (uint64_t)(n_rot / 2), &gx, &gy, err, err_len) ||
        pipeline(vk, PIPE_ROPE, err, err_len) || op_begin(vk, err, err_len))
        return -1;
    const VkBuffer b[3] = { x->buf, table->buf, tokens->buf };
    const VkDeviceSize off[3] = { 0, 0, 0 }, len[3] = { xs * 4, ts * 4, (VkDeviceSize)n * 8 };
    const rope_params pc = { (uint32_t)n, (uint32_t)n_head, (uint32_t)head_dim, (uint32_t)n_rot, (uint32_t)ld,
                             (uint32_t)n_pos, (uint32_t)(ts / 2), neox ? 1u : 0u };
    if (record(vk, PIPE_ROPE, b, off, len, &pc, sizeof pc, gx, gy, err, err_len) != 0) return -1;
    return op_end(vk, err, err_len);
}

/* a part of n_kv heads of head_dim within the cache, its offsets within 32 bits */
static int check_part(const qfit_vk_buf *cache, const qfit_vk_kv_part *P, int n_kv, int head_dim, char *err,
                      size_t err_len)
{
    const size_t rb = P ? qfit_vk_kv_row_bytes(P->type, head_dim) : 0;
    if (!P || !rb)
        return vk_fail(err, err_len, "KV cache type %s for heads of %d: the Vulkan cache takes f16 (even head_dim), "
                       "q8_0 and q4_0 (a multiple of 32)", P ? qfit_type_name(P->type) : "(none)", head_dim);
    if (P->rotated && (P->type == QFIT_TYPE_F16 || head_dim % 64))
        return vk_fail(err, err_len, "a rotated %s KV cache part with heads of %d (block types, a multiple of 64)",
                       qfit_type_name(P->type), head_dim);
    const uint64_t end = (uint64_t)P->base + (uint64_t)(P->n_seq - 1) * (uint64_t)P->seq_stride +
                         (uint64_t)(n_kv - 1) * (uint64_t)P->head_stride + (uint64_t)P->n_pos * rb;
    if (!cache || P->base < 0 || P->base % 4 || P->n_pos <= 0 || P->n_seq <= 0 ||
        P->head_stride < (int64_t)((uint64_t)P->n_pos * rb) || P->seq_stride < (int64_t)n_kv * P->head_stride ||
        (P->type == QFIT_TYPE_F16 && (P->head_stride % 4 || P->seq_stride % 4)) ||
        P->head_stride % 2 || P->seq_stride % 2 || end > (cache->size & ~(size_t)3) || end > UINT32_MAX)
        return vk_fail(err, err_len, "KV cache part outside its buffer or misaligned (base %lld, head stride %lld, "
                       "sequence stride %lld bytes, %d sequences x %d heads x %d positions of %zu bytes, buffer %zu)",
                       P ? (long long)P->base : 0LL, P ? (long long)P->head_stride : 0LL,
                       P ? (long long)P->seq_stride : 0LL, P ? P->n_seq : 0, n_kv, P ? P->n_pos : 0, rb,
                       cache ? cache->size : 0);
    return 0;
}

int qfit_vk_kv_store(qfit_vk *vk, const qfit_vk_buf *src, int64_t ld, int n, int n_kv, int head_dim,
                     const qfit_vk_buf *tokens, qfit_vk_buf *cache, const qfit_vk_kv_part *part, char *err,
                     size_t err_len)
{
    if (!vk || n <= 0 || n_kv <= 0 || head_dim <= 0 || head_dim % 2 || ld < (int64_t)n_kv * head_dim)
        return vk_fail(err, err_len, "invalid KV store (%d tokens, %d heads of %d, ld %lld)", n, n_kv, head_dim,
                       (long long)ld);
    const uint64_t xs = (uint64_t)(n - 1) * (uint64_t)ld + (uint64_t)n_kv * (uint64_t)head_dim;
    uint32_t gx = 0, gy = 0;
    if (check_floats(vk, src, xs, "KV store rows", err, err_len) || check_tokens(tokens, n, err, err_len) ||
        check_part(cache, part, n_kv, head_dim, err, err_len) ||
        grid(vk, (uint64_t)n * (uint64_t)n_kv * (uint64_t)(head_dim / (part->type == QFIT_TYPE_F16 ? 2 : 32)), &gx,
             &gy, err, err_len) ||
        pipeline(vk, PIPE_KV_STORE, err, err_len) || op_begin(vk, err, err_len))
        return -1;
    const VkBuffer b[3] = { src->buf, cache->buf, tokens->buf };
    const VkDeviceSize off[3] = { 0, 0, 0 }, len[3] = { xs * 4, cache->size & ~(VkDeviceSize)3, (VkDeviceSize)n * 8 };
    const kv_params pc = { (uint32_t)n, 0, (uint32_t)n_kv, (uint32_t)head_dim, (uint32_t)ld, 0, (uint32_t)part->n_pos,
                           (uint32_t)part->n_seq, (uint32_t)part->base, (uint32_t)part->head_stride,
                           (uint32_t)part->seq_stride, 0, 0, 0,
                           (uint32_t)part->type | (part->rotated ? 1u << 16 : 0u), 0.0f };
    if (record(vk, PIPE_KV_STORE, b, off, len, &pc, sizeof pc, gx, gy, err, err_len) != 0) return -1;
    return op_end(vk, err, err_len);
}

int qfit_vk_attention(qfit_vk *vk, const qfit_vk_buf *q, int64_t ldq, int n, int n_head, int n_kv, int head_dim,
                      const qfit_vk_buf *tokens, const qfit_vk_buf *cache, const qfit_vk_kv_part *k,
                      const qfit_vk_kv_part *v, float scale, qfit_vk_buf *out, int64_t ldo, char *err, size_t err_len)
{
    if (!vk || n <= 0 || n_head <= 0 || n_kv <= 0 || n_head % n_kv || head_dim <= 0 || head_dim % 2 ||
        head_dim > QFIT_VK_MAX_HEAD || ldq < (int64_t)n_head * head_dim || ldo < (int64_t)n_head * head_dim || !(scale > 0))
        return vk_fail(err, err_len, "invalid attention (%d tokens, %d query heads, %d KV heads of %d (at most %d), "
                       "ldq %lld, ldo %lld)", n, n_head, n_kv, head_dim, QFIT_VK_MAX_HEAD, (long long)ldq, (long long)ldo);
    if (k && v && (k->n_pos != v->n_pos || k->n_seq != v->n_seq))
        return vk_fail(err, err_len, "attention over K and V parts of different shapes (%d/%d positions, %d/%d "
                       "sequences)", k->n_pos, v->n_pos, k->n_seq, v->n_seq);
    const uint64_t qs = (uint64_t)(n - 1) * (uint64_t)ldq + (uint64_t)n_head * (uint64_t)head_dim;
    const uint64_t os = (uint64_t)(n - 1) * (uint64_t)ldo + (uint64_t)n_head * (uint64_t)head_dim;
    const uint64_t groups = (uint64_t)n * (uint64_t)n_head;
    if (groups > vk->props.limits.maxComputeWorkGroupCount[0])
        return vk_fail(err, err_len, "attention of %llu (token, head) pairs: more than one dispatch takes",
                       (unsigned long long)groups);
    if (check_floats(vk, q, qs, "attention queries", err, err_len) || check_floats(vk, out, os, "attention outputs", err, err_len) ||
        check_tokens(tokens, n, err, err_len) || check_part(cache, k, n_kv, head_dim, err, err_len) ||
        check_part(cache, v, n_kv, head_dim, err, err_len) || pipeline(vk, PIPE_ATTN, err, err_len) ||
        op_begin(vk, err, err_len))
        return -1;
    const VkBuffer b[4] = { q->buf, cache->buf, out->buf, tokens->buf };
    const VkDeviceSize off[4] = { 0, 0, 0, 0 };
    const VkDeviceSize len[4] = { qs * 4, cache->size & ~(VkDeviceSize)3, os * 4, (VkDeviceSize)n * 8 };
    const kv_params pc = { (uint32_t)n, (uint32_t)n_head, (uint32_t)n_kv, (uint32_t)head_dim, (uint32_t)ldq,
                           (uint32_t)ldo, (uint32_t)k->n_pos, (uint32_t)k->n_seq, (uint32_t)k->base,
                           (uint32_t)k->head_stride, (uint32_t)k->seq_stride, (uint32_t)v->base,
                           (uint32_t)v->head_stride, (uint32_t)v->seq_stride,
                           (uint32_t)k->type | (uint32_t)v->type << 8 | (k->rotated ? 1u << 16 : 0u) |
                               (v->rotated ? 1u << 17 : 0u),
                           scale };
    if (record_n(vk, PIPE_ATTN, 4, b, off, len, &pc, sizeof pc, (uint32_t)groups, 1, err, err_len) != 0) return -1;
    return op_end(vk, err, err_len);
}

static int matvec_pipe(int wtype)
{
    switch (wtype) {
    case QFIT_TYPE_F32: return PIPE_MV_F32;
    case QFIT_TYPE_F16: return PIPE_MV_F16;
    case QFIT_TYPE_BF16: return PIPE_MV_BF16;
    case QFIT_TYPE_Q8_0: return PIPE_MV_Q8_0;
    case QFIT_TYPE_Q4_0: return PIPE_MV_Q4_0;
    case QFIT_TYPE_Q4_1: return PIPE_MV_Q4_1;
    case QFIT_TYPE_Q5_0: return PIPE_MV_Q5_0;
    case QFIT_TYPE_Q5_1: return PIPE_MV_Q5_1;
    case QFIT_TYPE_Q2_K: return PIPE_MV_Q2_K;
    case QFIT_TYPE_Q3_K: return PIPE_MV_Q3_K;
    case QFIT_TYPE_Q4_K: return PIPE_MV_Q4_K;
    case QFIT_TYPE_Q5_K: return PIPE_MV_Q5_K;
    case QFIT_TYPE_Q6_K: return PIPE_MV_Q6_K;
    case QFIT_TYPE_IQ4_NL: return PIPE_MV_IQ4_NL;
    case QFIT_TYPE_IQ4_XS: return PIPE_MV_IQ4_XS;
    default: return -1;
    }
}


int qfit_vk_matmul(qfit_vk *vk, int wtype, const qfit_vk_buf *w, size_t w_off, int64_t rows, int64_t k,
                   const qfit_vk_buf *x, int64_t ldx, qfit_vk_buf *y, int64_t ldy, int n, char *err, size_t err_len)
{
    const int pid = matvec_pipe(wtype);
    if (pid < 0) return vk_fail(err, err_len, "the Vulkan matmul has no kernel for %s weights", qfit_type_name(wtype));
    /* every type's blocks are an even number of bytes with their fp16/bf16 fields at even
     * offsets: rows starting at an even byte keep those fields within one 32-bit word */
    const size_t row_bytes = qfit_row_size(wtype, k);
    if (!vk || !w || !x || !y || rows <= 0 || n <= 0 || k <= 0 || !row_bytes || ldx < k || ldy < rows ||
        w_off % (wtype == QFIT_TYPE_F32 ? 4u : 2u))
        return vk_fail(err, err_len, "invalid matmul (%lld x %lld %s, %d rows, ldx %lld, ldy %lld, offset %zu)",
                       (long long)rows, (long long)k, qfit_type_name(wtype), n, (long long)ldx, (long long)ldy, w_off);
    /* every index the shader forms fits in 32 bits, and the buffers hold what it reads and writes */
    const uint64_t xs = (uint64_t)(n - 1) * (uint64_t)ldx + (uint64_t)k, ys = (uint64_t)(n - 1) * (uint64_t)ldy + (uint64_t)rows;
    if (w_off > w->size || (uint64_t)rows * row_bytes > w->size - w_off || xs * 4 > x->size || ys * 4 > y->size ||
        ys > UINT32_MAX || xs > UINT32_MAX || row_bytes > UINT32_MAX / 2)
        return vk_fail(err, err_len, "matmul operands outside their buffers (weights %zu of %zu bytes from %zu, "
                       "inputs %llu floats, outputs %llu floats)", (size_t)rows * row_bytes, w->size, w_off,
                       (unsigned long long)xs, (unsigned long long)ys);
    const uint32_t max_groups = vk->props.limits.maxComputeWorkGroupCount[0];
    const uint32_t col_groups = (uint32_t)((n + MV_COLS - 1) / MV_COLS);
    if (col_groups > vk->props.limits.maxComputeWorkGroupCount[1])
        return vk_fail(err, err_len, "%d activation rows, more than this device dispatches at once (%u)", n,
                       vk->props.limits.maxComputeWorkGroupCount[1] * MV_COLS);
    if (pipeline(vk, pid, err, err_len) != 0) return -1;
    /* rows per dispatch: the bound weight range (aligned start + rows) within maxStorageBufferRange */
    VkDeviceSize align = vk->props.limits.minStorageBufferOffsetAlignment;
    if (align < 4) align = 4;
    const VkDeviceSize range_max = vk->props.limits.maxStorageBufferRange;
    if (xs * 4 > range_max || ys * 4 > range_max)
        return vk_fail(err, err_len, "matmul inputs (%llu floats) or outputs (%llu) beyond one binding of this device "
                       "(%llu bytes)", (unsigned long long)xs, (unsigned long long)ys, (unsigned long long)range_max);
    if (range_max <= align || (range_max - align) / row_bytes < 1)
        return vk_fail(err, err_len, "a %zu-byte weight row is more than one binding of this device covers", row_bytes);
    int64_t per = (int64_t)((range_max - align) / row_bytes);
    if (per > (int64_t)max_groups * MV_ROWS) per = (int64_t)max_groups * MV_ROWS;

    /* the dispatches write disjoint outputs: one barrier before them all (in a batch) */
    if (op_begin(vk, err, err_len) != 0) return -1;
    for (int64_t r0 = 0; r0 < rows;) {
        if (!vk->batching && r0 > 0 && begin_dispatches(vk, err, err_len) != 0) return -1;
        for (int d = 0; d < MAX_SETS / 8 && r0 < rows; d++) {
            const int64_t nr = rows - r0 < per ? rows - r0 : per;
            const VkDeviceSize start = w_off + (VkDeviceSize)r0 * row_bytes, base = start / align * align;
            const VkDeviceSize wrange = ((start - base + (VkDeviceSize)nr * row_bytes) + 3) & ~(VkDeviceSize)3;
            const VkBuffer b[3] = { w->buf, x->buf, y->buf };
            const VkDeviceSize off[3] = { base, 0, 0 }, len[3] = { wrange, (VkDeviceSize)xs * 4, (VkDeviceSize)ys * 4 };
            const mv_params pc = { (uint32_t)k, (uint32_t)row_bytes, (uint32_t)(start - base), (uint32_t)ldx,
                                   (uint32_t)ldy, (uint32_t)r0, (uint32_t)nr, (uint32_t)n };
            const uint32_t groups = (uint32_t)((nr + MV_ROWS - 1) / MV_ROWS);
            if (record(vk, pid, b, off, len, &pc, sizeof pc, groups, col_groups, err, err_len) != 0) return -1;
            r0 += nr;
        }
        if (op_end(vk, err, err_len) != 0) return -1;
    }
    return 0;
}

#endif /* QFIT_VULKAN */
