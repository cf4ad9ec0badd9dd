/* Inference context: KV cache, compute buffers (allocated once), thread pool,
 * and the driver of the forward pass (qfit_decode). */
#include "model/model_internal.h"
#include "qfit/backend.h"
#include "qfit/vulkan.h"
#include "platform/platform.h"
#include "model/arch.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <strings.h>
#include <unistd.h>

#include "qfit/config.h"
#include "qfit/kernels.h"
#include "qfit/quant.h"

/* an error of the context: its kind and its message */
static int ctx_fail(qfit_context *c, qfit_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int ctx_fail(qfit_context *c, qfit_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    c->status = st;
    return -1;
}


qfit_context_params qfit_context_default_params(void)
{
    qfit_context_params p;
    memset(&p, 0, sizeof p);
    p.type_k = QFIT_TYPE_F16;
    p.type_v = QFIT_TYPE_F16;
    p.flash_attn = -1;
    p.kv_rotate = -1;
    p.n_gpu_layers = -1;
    return p;
}

bool qfit_kv_type_ok(int t)
{
    switch (t) {
    case QFIT_TYPE_F32: case QFIT_TYPE_F16: case QFIT_TYPE_BF16:
    case QFIT_TYPE_Q8_0: case QFIT_TYPE_Q4_0: case QFIT_TYPE_Q4_1:
    case QFIT_TYPE_Q5_0: case QFIT_TYPE_Q5_1: case QFIT_TYPE_IQ4_NL:
        return true;
    default:
        return false;
    }
}

int qfit_kv_type_from_name(const char *name)
{
    if (!name) return -1;
    int t = qfit_type_from_name(name);
    return qfit_kv_type_ok(t) ? t : -1;
}

int qfit_flash_attn_from_name(const char *s)
{
    static const char *on[] = { "on", "1", "true", "yes", "enabled" };
    static const char *off[] = { "off", "0", "false", "no", "disabled" };
    if (!s) return -2;
    for (size_t i = 0; i < sizeof on / sizeof *on; i++) if (!strcasecmp(s, on[i])) return 1;
    for (size_t i = 0; i < sizeof off / sizeof *off; i++) if (!strcasecmp(s, off[i])) return 0;
    if (!strcasecmp(s, "auto")) return -1;
    return -2;
}

/* One context setting: its value (NULL when unset), or -1 with err set when too long. */
static int env_setting(const char *suffix, char *buf, size_t cap, const char **v, const char **which,
                       char *err, size_t err_len)
{
    bool too_long;
    *v = qfit_env(suffix, buf, cap, which, &too_long);
    if (too_long) { snprintf(err, err_len, "%s is too long", *which); return -1; }
    return 0;
}

int qfit_context_params_from_env(qfit_context_params *p, char *applied, size_t applied_len,
                                 char *err, size_t err_len)
{
    char dummy[8];
    if (!err || !err_len) { err = dummy; err_len = sizeof dummy; }
    char desc[256] = "";
    size_t dl = 0;
    const char *which = NULL, *v;
    char buf[64];
    if (env_setting("KV_CACHE_TYPE", buf, sizeof buf, &v, &which, err, err_len) != 0) return -1;
    if (v) {
        int t = qfit_kv_type_from_name(v);
        if (t < 0) {
            snprintf(err, err_len, "%s=%s is not a KV cache type (supported: f32, f16, bf16, q8_0, q4_0, q4_1, "
                     "q5_0, q5_1, iq4_nl)", which, v);
            return -1;
        }
        p->type_k = p->type_v = t;
        dl += (size_t)snprintf(desc + dl, sizeof desc - dl, "%s%s=%s", dl ? ", " : "", which, v);
    }
    if (env_setting("FLASH_ATTENTION", buf, sizeof buf, &v, &which, err, err_len) != 0) return -1;
    if (v) {
        int fa = qfit_flash_attn_from_name(v);
        if (fa < -1) {
            snprintf(err, err_len, "%s=%s is invalid (use on, off or auto)", which, v);
            return -1;
        }
        p->flash_attn = fa;
        if (dl < sizeof desc) dl += (size_t)snprintf(desc + dl, sizeof desc - dl, "%s%s=%s", dl ? ", " : "", which, v);
    }
    if (env_setting("CONTEXT_LENGTH", buf, sizeof buf, &v, &which, err, err_len) != 0) return -1;
    if (v) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end || n < 1 || n > (1 << 24)) {
            snprintf(err, err_len, "%s=%s is invalid (a number of tokens, 1 .. 16777216)", which, v);
            return -1;
        }
        p->n_ctx = (int)n;
        if (dl < sizeof desc) dl += (size_t)snprintf(desc + dl, sizeof desc - dl, "%s%s=%s", dl ? ", " : "", which, v);
    }
    if (env_setting("DEVICE", buf, sizeof buf, &v, &which, err, err_len) != 0) return -1;
    if (v) {
        if (qfit_device_find(v) < 0) {
            snprintf(err, err_len, "%s=%s is not a device (devices: %s)", which, v, qfit_device_names());
            return -1;
        }
        snprintf(p->device, sizeof p->device, "%s", v);
        if (dl < sizeof desc) dl += (size_t)snprintf(desc + dl, sizeof desc - dl, "%s%s=%s", dl ? ", " : "", which, v);
    }
    if (applied && applied_len) snprintf(applied, applied_len, "%s", desc);
    return 0;
}

/* ggml_rope_yarn_corr_dim: the dimension whose rotation makes n_rot_beta turns over
 * n_ctx_orig positions */
static float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot_beta, float base)
{
    return (float)n_dims * logf((float)n_ctx_orig / (n_rot_beta * 2 * 3.14159265358979323846f)) / (2 * logf(base));
}

/* The magnitude a table's cos/sin carry: attn_factor, with YaRN times
 * 1 + 0.1 ln(1 / scale) (ggml's rope_yarn) */
static float rope_mscale(const qfit_hparams *hp, float scale)
{
    float m = hp->rope_attn_factor;
    if (hp->rope_ext_factor != 0.0f) m *= 1.0f + 0.1f * logf(1.0f / scale);
    return m;
}

/* one RoPE table: cos/sin of pos * base^(-2i/n_rot) / factor_i * scale, with YaRN the
 * angle blended with the unscaled one by the ramp, times rope_mscale */
static void rope_table_fill(const qfit_context *c, float base, float scale, float *cos_out, float *sin_out)
{
    const qfit_model *m = c->model;
    const qfit_hparams *hp = &m->hp;
    const int half = hp->n_rot / 2;
    /* same float arithmetic as ggml's rope cache: theta_i = pos * base^(-2i/n_rot),
     * built by repeated multiplication, divided by the frequency factor, then rope_yarn */
    const float theta_scale = powf(base, -2.0f / (float)hp->n_rot);
    /* frequency factors: Llama 3's, else LongRoPE's long ones beyond the original context
     * (llama.cpp's get_rope_factors: this context's positions per sequence), else short */
    const float *ff = m->rope_freqs.data ? m->rope_freqs.data
                      : m->rope_long.data ? (c->n_ctx > hp->n_ctx_orig ? m->rope_long.data : m->rope_short.data)
                                          : NULL;
    const float ext = hp->rope_ext_factor, mscale = rope_mscale(hp, scale);
    float lo = floorf(yarn_corr_dim(hp->n_rot, hp->n_ctx_orig, hp->rope_beta_fast, base));
    float hi = ceilf(yarn_corr_dim(hp->n_rot, hp->n_ctx_orig, hp->rope_beta_slow, base));
    lo = lo > 0 ? lo : 0;
    hi = hi < (float)(hp->n_rot - 1) ? hi : (float)(hp->n_rot - 1);
    const float span = hi - lo > 0.001f ? hi - lo : 0.001f;
    for (int p = 0; p < c->n_ctx; p++) {
        float theta = (float)p;
        for (int i = 0; i < half; i++) {
            const float extrap = theta / (ff ? ff[i] : 1.0f);
            float t = scale * extrap;
            if (ext != 0.0f) {
                const float y = ((float)i - lo) / span;
                const float mix = (1 - fminf(1, fmaxf(0, y))) * ext;
                t = t * (1 - mix) + extrap * mix;
            }
            cos_out[(size_t)p * half + i] = cosf(t) * mscale;
            sin_out[(size_t)p * half + i] = sinf(t) * mscale;
            theta *= theta_scale;
        }
    }
}

static void rope_table_init(qfit_context *c)
{
    const qfit_hparams *hp = &c->model->hp;
    rope_table_fill(c, hp->rope_freq_base, hp->rope_freq_scale, c->rope_cos, c->rope_sin);
    if (c->rope_cos_swa)
        rope_table_fill(c, hp->rope_freq_base_swa, hp->rope_freq_scale_swa, c->rope_cos_swa, c->rope_sin_swa);
}

int qfit_context_params_parse_arg(qfit_context_params *p, const char *opt, const char *val,
                                  char *err, size_t err_len)
{
    char dummy[8];
    if (!err || !err_len) { err = dummy; err_len = sizeof dummy; }
    if (!opt) return 0;
    const bool is_ctx = !strcmp(opt, "--ctx") || !strcmp(opt, "-c") || !strcmp(opt, "--ctx-size");
    const bool is_kv = !strcmp(opt, "--kv-type");
    const bool is_k = !strcmp(opt, "--cache-type-k") || !strcmp(opt, "-ctk");
    const bool is_v = !strcmp(opt, "--cache-type-v") || !strcmp(opt, "-ctv");
    const bool is_fa = !strcmp(opt, "--flash-attn") || !strcmp(opt, "-fa");
    const bool is_dev = !strcmp(opt, "--device");
    const bool is_ngl = !strcmp(opt, "--gpu-layers") || !strcmp(opt, "-ngl") || !strcmp(opt, "--n-gpu-layers");
    const bool is_mem = !strcmp(opt, "--gpu-mem");
    if (!is_ctx && !is_kv && !is_k && !is_v && !is_fa && !is_dev && !is_ngl && !is_mem) return 0;
    if (!val || !*val) { snprintf(err, err_len, "%s needs a value", opt); return -1; }
    if (is_mem) {
        uint64_t bytes;
        if (qfit_parse_size(val, &bytes) != 0) {
            snprintf(err, err_len, "invalid memory size '%s' for %s (examples: 6G, 6GiB, 512M)", val, opt);
            return -1;
        }
        p->gpu_mem = bytes;
    } else if (is_ngl) {
        char *end;
        long n = strtol(val, &end, 10);
        if (*end || n < -1 || n > 100000) {
            snprintf(err, err_len, "invalid layer count '%s' for %s (-1: all, 0 .. layers + 1)", val, opt);
            return -1;
        }
        p->n_gpu_layers = (int)n;
    } else if (is_dev) {
        if (qfit_device_find(val) < 0) {
            snprintf(err, err_len, "unknown device '%s' for %s (devices: %s)", val, opt, qfit_device_names());
            return -1;
        }
        snprintf(p->device, sizeof p->device, "%s", val);
    } else if (is_ctx) {
        char *end;
        long n = strtol(val, &end, 10);
        if (*end || n < 1 || n > (1 << 24)) {
            snprintf(err, err_len, "invalid context size '%s' for %s (1 .. 16777216)", val, opt);
            return -1;
        }
        p->n_ctx = (int)n;
    } else if (is_fa) {
        int fa = qfit_flash_attn_from_name(val);
        if (fa < -1) { snprintf(err, err_len, "invalid value '%s' for %s (on, off or auto)", val, opt); return -1; }
        p->flash_attn = fa;
    } else {
        int t = qfit_kv_type_from_name(val);
        if (t < 0) {
            snprintf(err, err_len, "unsupported KV cache type '%s' for %s (supported: f32, f16, bf16, q8_0, q4_0, "
                     "q4_1, q5_0, q5_1, iq4_nl)", val, opt);
            return -1;
        }
        if (is_kv || is_k) p->type_k = t;
        if (is_kv || is_v) p->type_v = t;
    }
    return 1;
}

int qfit_parse_size(const char *s, uint64_t *out)
{
    if (!s || !out) return -1;
    while (isspace((unsigned char)*s)) s++;
    if (!isdigit((unsigned char)*s) && *s != '.') return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0) || !isfinite(v)) return -1;
    while (isspace((unsigned char)*end)) end++;
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 0:   mul = 1; break;
    case 'B': mul = 1; end++; break;
    case 'K': mul = 1024.0; end++; break;
    case 'M': mul = 1024.0 * 1024; end++; break;
    case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
    case 'T': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: return -1;
    }
    if (mul > 1) {
        if (*end == 'i' || *end == 'I') end++;
        if (*end == 'b' || *end == 'B') end++;
    }
    if (*end) return -1;
    double bytes = v * mul;
    if (bytes >= 18446744073709551615.0 || bytes < 1) return -1;
    if (mul == 1 && v != floor(v)) return -1;   /* fractional bytes */
    *out = (uint64_t)llround(bytes);
    return 0;
}

void qfit_context_describe(const qfit_context *c, char *buf, size_t len)
{
    char gpu[448] = "";
    if (c->backend->kv_on_device) {
        const int nl = c->model->hp.n_layer, ngl = c->n_gpu_layers < 0 ? nl + 1 : c->n_gpu_layers;
        char paths[64], weights[256] = "";
        int n_mat;
        const char *why;
        const int n_imp = qfit_vulkan_context_imported(c, &n_mat, &why);
        const unsigned feat = qfit_vulkan_context_features(c);
        if (feat & QFIT_VK_FEAT_IMPORT)
            snprintf(weights, sizeof weights, "; %d of %d matrices read in place from the mapping%s%s", n_imp, n_mat,
                     why[0] ? ", the rest copied: " : "", why);
        snprintf(gpu, sizeof gpu, " (%d of %d layers there%s%s; paths: %s%s)", ngl < nl ? ngl : nl, nl,
                 ngl > nl ? ", and the output" : "", c->gpu_fitted ? ": all that fit its memory" : "",
                 qfit_vk_feature_names(feat, paths, sizeof paths), weights);
    }
    snprintf(buf, len,
             "context: device %s%s, n_ctx %d, n_batch %d, threads %d; KV cache K %s, V %s: %zu bytes (%.2f MiB); "
             "flash attention %s; Hadamard-rotated K %s, V %s; compute buffers %zu bytes (%.2f MiB)",
             c->device, gpu, c->n_ctx, c->n_batch, c->n_threads, qfit_type_name(c->kv.type_k), qfit_type_name(c->kv.type_v),
             c->kv_bytes, (double)c->kv_bytes / (1 << 20), c->flash_attn ? "on" : "off", c->rot_k ? "yes" : "no", c->rot_v ? "yes" : "no", c->compute_bytes,
             (double)c->compute_bytes / (1 << 20));
}

/* The KV cache. Large caches are 2 MiB-aligned and advised as transparent huge
 * pages: a decoding token walks every head's run of every layer (megabytes at long
 * contexts), one TLB miss per 4 KiB page otherwise. Small caches stay on plain pages: a
 * partly used huge page could add up to 2 MiB of resident memory, noise above
 * 32 MiB but not for the planner's small-context predictions. */
#define QFIT_KV_HUGE_MIN (32u << 20)
static uint8_t *kv_alloc(size_t bytes)
{
#ifdef MADV_HUGEPAGE
    if (bytes >= QFIT_KV_HUGE_MIN) {
        /* exactly `bytes` (what the planner counts); the kernel rounds the advised
         * length up to whole pages and backs the 2 MiB-aligned part with huge ones */
        const size_t huge = (size_t)2 << 20;
        void *p = NULL;
        if (posix_memalign(&p, huge, bytes) != 0) return NULL;
        (void)madvise(p, bytes, MADV_HUGEPAGE);   /* advice only: a refusal changes nothing */
        return p;
    }
#endif
    return malloc(bytes);
}

/* the defaults qfit_context_new fills in: context, batch (clamped to the context), sequences */
static void params_defaults(const qfit_model *m, qfit_context_params *p)
{
    const qfit_hparams *hp = &m->hp;
    if (p->n_ctx <= 0) p->n_ctx = hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    const qfit_arch_info *ai = &qfit_arch_desc_of(hp->arch)->info;
    if (p->n_batch <= 0) p->n_batch = ai->embd_only ? p->n_ctx : 512;   /* an encoder: any input that fits */
    if (p->n_batch > p->n_ctx) p->n_batch = p->n_ctx;
    if (p->n_seq <= 0) p->n_seq = 1;
}

void qfit_context_params_resolve(const qfit_model *m, qfit_context_params *p) { params_defaults(m, p); }

int qfit_gpu_layers_resolve(const qfit_model *m, const qfit_context_params *p, bool *fitted)
{
    const int n_layer = m->hp.n_layer;
    if (fitted) *fitted = false;
    if (p->n_gpu_layers != -1) return p->n_gpu_layers;
    /* -1 on a GPU: all the layers that fit in its memory (less the driver's reserve) */
    qfit_device_info di;
    if (!p->gpu_mem && (qfit_device_get(qfit_device_find(p->device), &di) != 0 || !di.mem_total)) return -1;
    const uint64_t budget = p->gpu_mem ? p->gpu_mem : qfit_device_gpu_budget(&di);
    const int ngl = qfit_vulkan_fit_layers(m, p->n_ctx, p->n_batch, p->n_seq, p->type_k, p->type_v, budget);
    if (ngl == n_layer + 1) return -1;
    if (fitted) *fitted = true;
    return ngl;
}

size_t qfit_context_alloc_bytes(const qfit_model *m, const qfit_context_params *pp)
{
    qfit_context_params p = pp ? *pp : qfit_context_default_params();
    params_defaults(m, &p);
    size_t kv = qfit_kv_cache_bytes_ctx(&m->hp, p.n_ctx, p.n_batch, p.n_seq, p.type_k, p.type_v);
    if (qfit_device_offloads(p.device) && kv) {
        /* the device holds the offloaded layers' caches (qfit_context_new); its layers are
         * never sliding (the Vulkan backend refuses windows), so each holds n_ctx cells */
        int host_layers = m->hp.n_layer;
        qfit_offload_split(m->hp.n_layer, qfit_gpu_layers_resolve(m, &p, NULL), &host_layers, NULL);
        kv -= (size_t)(m->hp.n_layer - host_layers) * (size_t)p.n_ctx * (size_t)p.n_seq *
              (qfit_kv_cache_bytes(&m->hp, 1, p.type_k, p.type_v) / (size_t)m->hp.n_layer);
    }
    return kv + qfit_compute_buffer_bytes(&m->hp, p.n_ctx, p.n_batch, p.flash_attn != 0);
}

qfit_context *qfit_context_new(const qfit_model *m, const qfit_context_params *pp,
                               char *err, size_t err_len)
{
    char dummy[8];
    if (!err || !err_len) { err = dummy; err_len = sizeof dummy; }
    qfit_context_params p = pp ? *pp : qfit_context_default_params();
    const qfit_hparams *hp = &m->hp;
    params_defaults(m, &p);
    if (p.n_threads > QFIT_MAX_THREADS) {   /* asked for: never cut silently */
        snprintf(err, err_len, "%d threads requested, at most %d", p.n_threads, QFIT_MAX_THREADS);
        return NULL;
    }
    if (p.n_threads <= 0) {   /* the default: the performance cores (every online CPU but on
                                 Apple silicon: its P-cores), up to the most the pool takes */
        const long n = qfit_sys_perf_cpu_count();
        p.n_threads = n > QFIT_MAX_THREADS ? QFIT_MAX_THREADS : n > 0 ? (int)n : 1;
    }
    const char *isa_err = qfit_isa_env_error();
    if (isa_err) { snprintf(err, err_len, "%s", isa_err); return NULL; }
    if (p.n_ctx > (1 << 24)) { snprintf(err, err_len, "context size %d is too large", p.n_ctx); return NULL; }
    if (p.n_seq <= 0) p.n_seq = 1;
    if (p.n_seq > QFIT_MAX_SEQ) {
        snprintf(err, err_len, "%d sequences requested, at most %d", p.n_seq, QFIT_MAX_SEQ);
        return NULL;
    }
    if ((int64_t)p.n_ctx * p.n_seq > (1 << 24)) {
        snprintf(err, err_len, "%d sequences x %d positions is too large a KV cache (at most %d cells)", p.n_seq,
                 p.n_ctx, 1 << 24);
        return NULL;
    }
    if (hp->n_ctx_train > 0 && p.n_ctx > hp->n_ctx_train) {
        snprintf(err, err_len, "context size %d exceeds the model's trained context of %d tokens (use --ctx %d or less)",
                 p.n_ctx, hp->n_ctx_train, hp->n_ctx_train);
        return NULL;
    }
    if (!qfit_kv_type_ok(p.type_k) || !qfit_kv_type_ok(p.type_v)) {
        snprintf(err, err_len, "unsupported KV cache type %s/%s (supported: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, "
                 "q5_1, iq4_nl)", qfit_type_name(p.type_k), qfit_type_name(p.type_v));
        return NULL;
    }
    for (int kv = 0; kv < 2; kv++) {
        const int t = kv ? p.type_v : p.type_k, hd = kv ? hp->head_dim_v : hp->head_dim_k;
        const int64_t bs = qfit_type_get_traits(t)->block_size;
        if (hd <= 0 || hd % bs) {
            snprintf(err, err_len, "KV cache type %s cannot hold this model's %c heads: head dimension %d is not a "
                     "multiple of its block size %lld (the blocks run along the head)", qfit_type_name(t),
                     kv ? 'V' : 'K', hd, (long long)bs);
            return NULL;
        }
    }
    if (p.flash_attn < -1 || p.flash_attn > 1) {
        snprintf(err, err_len, "invalid flash attention setting %d (1 on, 0 off, -1 auto)", p.flash_attn);
        return NULL;
    }
    const bool flash = p.flash_attn != 0;   /* auto: on (faster and needs no score rows) */
    /* every sequence gets its full context, allocated now: never split silently */
    size_t kv_bytes = qfit_kv_cache_bytes_ctx(hp, p.n_ctx, p.n_batch, p.n_seq, p.type_k, p.type_v);
    if (!kv_bytes) {
        snprintf(err, err_len, "KV cache type %s/%s cannot hold heads of dimension %d/%d",
                 qfit_type_name(p.type_k), qfit_type_name(p.type_v), hp->head_dim_k, hp->head_dim_v);
        return NULL;
    }

    if (memchr(p.device, 0, sizeof p.device) == NULL) {
        snprintf(err, err_len, "device name is not terminated");
        return NULL;
    }
    const qfit_backend *backend = qfit_backend_for(p.device, m, err, err_len);
    if (!backend) return NULL;
    if (p.n_gpu_layers < -1 || p.n_gpu_layers > hp->n_layer + 1) {
        snprintf(err, err_len, "%d GPU layers requested: this model has %d (and the output layer: -1 or 0 .. %d)",
                 p.n_gpu_layers, hp->n_layer, hp->n_layer + 1);
        return NULL;
    }
    bool fitted = false;
    if (backend->kv_on_device) p.n_gpu_layers = qfit_gpu_layers_resolve(m, &p, &fitted);
    if (!backend->kv_on_device && p.n_gpu_layers > 0) {
        snprintf(err, err_len, "%d GPU layers requested, but device %s has none to run them on (--device vulkan0, ...; "
                 "devices: %s)", p.n_gpu_layers, p.device[0] ? p.device : "cpu", qfit_device_names());
        return NULL;
    }

    qfit_context *c = calloc(1, sizeof *c);
    if (!c) { snprintf(err, err_len, "out of memory"); return NULL; }
    c->model = m;
    c->backend = backend;
    c->n_gpu_layers = p.n_gpu_layers;
    c->gpu_fitted = fitted;
    {
        qfit_device_info di;
        qfit_device_get(qfit_device_find(p.device), &di);
        c->device = di.name;
    }
    c->n_ctx = p.n_ctx;
    c->n_batch = p.n_batch;
    c->n_seq = p.n_seq;
    c->seq_past = calloc((size_t)p.n_seq, sizeof *c->seq_past);
    c->tok_seq = calloc((size_t)p.n_batch, sizeof *c->tok_seq);
    c->tok_pos = calloc((size_t)p.n_batch, sizeof *c->tok_pos);
    if (!c->seq_past || !c->tok_seq || !c->tok_pos) { snprintf(err, err_len, "out of memory"); goto fail; }
    c->n_threads = p.n_threads;
    c->flash_attn = flash;
    c->embeddings = p.embeddings;
    {
        const bool qk = qfit_type_get_traits(p.type_k)->quantized, qv = qfit_type_get_traits(p.type_v)->quantized;
        c->rot_k = p.kv_rotate != 0 && qk && hp->head_dim_k % 64 == 0;
        c->rot_v = p.kv_rotate != 0 && qv && hp->head_dim_v % 64 == 0;
    }
    c->rk = qfit_row_kernels_active();

    qfit_kv_cache *kv = &c->kv;
    kv->type_k = p.type_k;
    kv->type_v = p.type_v;
    kv->n_ctx = p.n_ctx;
    kv->n_seq = p.n_seq;
    kv->head_k = qfit_row_size(p.type_k, hp->head_dim_k);
    kv->head_v = qfit_row_size(p.type_v, hp->head_dim_v);
    kv->row_k = kv->head_k * (size_t)hp->n_head_kv;
    kv->row_v = kv->head_v * (size_t)hp->n_head_kv;
    kv->n_layer = hp->n_layer;
    kv->swa_cells = qfit_kv_swa_cells(hp, p.n_ctx, p.n_batch);
    kv->layer_cell0 = calloc((size_t)hp->n_layer, sizeof *kv->layer_cell0);
    kv->layer_cells = calloc((size_t)hp->n_layer, sizeof *kv->layer_cells);
    kv->swa_base = calloc((size_t)p.n_seq, sizeof *kv->swa_base);
    if (!kv->layer_cell0 || !kv->layer_cells || !kv->swa_base) { snprintf(err, err_len, "out of memory"); goto fail; }
    /* a backend with its own cache (a GPU's) holds the offloaded layers' cells: the host
     * cache has none for them (layer_cells 0), only for the layers the CPU runs */
    int host_layers = hp->n_layer;
    if (backend->kv_on_device) qfit_offload_split(hp->n_layer, p.n_gpu_layers, &host_layers, NULL);
    size_t n_cells = 0;
    for (int il = 0; il < hp->n_layer; il++) {
        kv->layer_cell0[il] = n_cells;
        kv->layer_cells[il] = il >= host_layers ? 0 : m->recipes[il].window > 0 ? kv->swa_cells : p.n_ctx;
        n_cells += (size_t)kv->layer_cells[il] * (size_t)p.n_seq;
    }
    const size_t k_bytes = n_cells * kv->row_k;
    kv_bytes = n_cells * (kv->row_k + kv->row_v);
    c->kv_bytes = kv_bytes;
    if (!kv_bytes) kv_bytes = 64;   /* every layer offloaded: a token allocation keeps kv->k valid */
    kv->k = kv_alloc(kv_bytes);
    if (!kv->k) { snprintf(err, err_len, "cannot allocate the KV cache (%zu bytes)", kv_bytes); goto fail; }
    kv->v = kv->k + k_bytes;
    /* touched now (as llama.cpp clears its cache buffer): the resident memory is what
     * the planner predicts from the first token on, not a surprise at a long context */
    {
        /* written page by page through a volatile pointer: a plain memset after malloc
         * may be turned into calloc, whose fresh pages stay untouched */
        volatile uint8_t *vp = kv->k;
        for (size_t i = 0; i < kv_bytes; i += 4096) vp[i] = 0;
        memset(kv->k, 0, kv_bytes);
    }

    qfit_compute_parts L;
    qfit_compute_buffer_parts(hp, c->n_ctx, c->n_batch, flash, &L);
    c->buf = aligned_alloc(64, L.total);
    if (!c->buf) { snprintf(err, err_len, "cannot allocate compute buffers (%zu bytes)", L.total); goto fail; }
    uint8_t *b = c->buf;
#define CARVE(field, bytes) do { c->field = (void *)b; b += (bytes); } while (0)
    CARVE(x, L.x); CARVE(xn, L.xn); CARVE(q, L.q); CARVE(k, L.k); CARVE(v, L.v);
    CARVE(att, L.att); CARVE(gate, L.gate); CARVE(up, L.up); CARVE(aq, L.aq);
    CARVE(logits, L.logits);
    if (hp->swa_rope) {   /* local layers' own table (Gemma 3) */
        CARVE(rope_cos, L.rope / 4); CARVE(rope_sin, L.rope / 4);
        CARVE(rope_cos_swa, L.rope / 4); CARVE(rope_sin_swa, L.rope / 4);
    } else {
        CARVE(rope_cos, L.rope / 2); CARVE(rope_sin, L.rope / 2);
    }
    CARVE(scratch, L.scratch); CARVE(attn_part, L.part);
    if (L.scores) CARVE(scores, L.scores);
    if (hp->n_expert > 0) {   /* the order and sizes of qfit_compute_buffer_parts' moe_route */
        const size_t nb = (size_t)c->n_batch, ne = (size_t)hp->n_expert, nu = (size_t)hp->n_expert_used;
        CARVE(moe_prob, align64(nb * ne * sizeof(float)));
        CARVE(moe_w, align64(nb * nu * sizeof(float)));
        CARVE(moe_sel, align64(nb * nu * sizeof(int32_t)));
        CARVE(moe_slot, align64(nb * nu * sizeof(int32_t)));
        CARVE(moe_pos, align64(nb * nu * sizeof(int32_t)));
        CARVE(moe_first, align64((ne + 1) * sizeof(int32_t)));
        CARVE(moe_out, L.moe_out);
    }
#undef CARVE
    c->scratch_stride = L.scratch_stride;
    c->score_stride = L.score_stride;
    c->compute_bytes = L.total;
    rope_table_init(c);

    c->tp = qfit_threadpool_new(c->n_threads);
    if (!c->tp) { snprintf(err, err_len, "cannot start %d threads", c->n_threads); goto fail; }
    if (c->backend->init && c->backend->init(c, err, err_len) != 0) goto fail;
    return c;

fail:
    qfit_context_free(c);
    return NULL;
}

void qfit_context_free(qfit_context *c)
{
    if (!c) return;
    if (c->backend && c->backend->free) c->backend->free(c);
    qfit_threadpool_free(c->tp);
    free(c->kv.k);
    free(c->kv.layer_cell0);
    free(c->kv.layer_cells);
    free(c->kv.swa_base);
    free(c->buf);
    free(c->seq_past);
    free(c->tok_seq);
    free(c->tok_pos);
    free(c);
}

void qfit_context_reset(qfit_context *c)
{
    for (int i = 0; i < c->n_seq; i++) c->seq_past[i] = c->kv.swa_base[i] = 0;
    c->n_logits = 0;
}
void qfit_context_truncate(qfit_context *c, int n_past) { qfit_seq_truncate(c, 0, n_past); }
int  qfit_context_n_past(const qfit_context *c) { return c->seq_past[0]; }
int  qfit_context_n_seq(const qfit_context *c) { return c->n_seq; }
int  qfit_seq_n_past(const qfit_context *c, int seq) { return seq >= 0 && seq < c->n_seq ? c->seq_past[seq] : -1; }

/* Whether seq's sliding layers still hold the window of a next token at position n:
 * the positions (n - n_swa, n) (and so a prefix of n positions can be kept). */
static bool swa_keeps(const qfit_context *c, int seq, int n)
{
    const qfit_kv_cache *kv = &c->kv;
    return kv->swa_cells >= kv->n_ctx || kv->swa_base[seq] == 0 ||
           n - c->model->hp.n_swa + 1 >= kv->swa_base[seq];
}

void qfit_seq_truncate(qfit_context *c, int seq, int n_past)
{
    if (seq < 0 || seq >= c->n_seq) return;
    if (n_past < 0) n_past = 0;
    if (n_past < c->seq_past[seq]) {
        /* sliding layers that no longer hold the window before n_past: nothing is kept */
        if (!swa_keeps(c, seq, n_past)) n_past = 0;
        c->seq_past[seq] = n_past;
        if (n_past == 0) c->kv.swa_base[seq] = 0;
    }
    c->n_logits = 0;
}

int qfit_seq_copy(qfit_context *c, int src, int dst, int n)
{
    c->err[0] = 0;
    c->status = QFIT_OK;
    if (src < 0 || src >= c->n_seq || dst < 0 || dst >= c->n_seq) {
        return ctx_fail(c, QFIT_E_INVALID, "sequence copy %d -> %d: ids must be in [0, %d)", src, dst, c->n_seq);
    }
    if (n < 0 || n > c->seq_past[src]) n = c->seq_past[src];
    if (!swa_keeps(c, src, n)) n = 0;   /* as qfit_seq_truncate */
    if (src != dst && n > 0 && c->backend->kv_on_device) {   /* the device's cells first: nothing changes if it fails */
        char err[200];
        if (!c->backend->seq_copy)
            return ctx_fail(c, QFIT_E_UNSUPPORTED, "sequence copy: not on device %s (its KV cache is on the device)",
                            c->device);
        if (c->backend->seq_copy(c, src, dst, n, err, sizeof err) != 0)
            return ctx_fail(c, QFIT_E_INTERNAL, "sequence copy %d -> %d on device %s: %s", src, dst, c->device, err);
    }
    if (src != dst) {
        qfit_kv_cache *kv = &c->kv;
        kv->swa_base[dst] = n ? kv->swa_base[src] : 0;
        for (int il = 0; il < c->model->hp.n_layer; il++) {
            if (!kv->layer_cells[il]) continue;   /* a layer whose cache the device holds */
            const int b = kv_base(kv, il, src), rows = n - b > 0 ? n - b : 0;
            for (int h = 0; h < c->model->hp.n_head_kv; h++) {
                memcpy(kv_k_at(kv, il, dst, h, b), kv_k_at(kv, il, src, h, b), (size_t)rows * kv->head_k);
                memcpy(kv_v_at(kv, il, dst, h, b), kv_v_at(kv, il, src, h, b), (size_t)rows * kv->head_v);
            }
        }
    } else if (n == 0) {
        c->kv.swa_base[dst] = 0;
    }
    c->seq_past[dst] = n;
    c->n_logits = 0;
    return 0;
}

int  qfit_context_n_ctx(const qfit_context *c) { return c->n_ctx; }
int  qfit_context_n_batch(const qfit_context *c) { return c->n_batch; }
int  qfit_context_n_threads(const qfit_context *c) { return c->n_threads; }
const char *qfit_context_device(const qfit_context *c) { return c->device; }
const qfit_model *qfit_context_model(const qfit_context *c) { return c->model; }
const char *qfit_context_error(const qfit_context *c) { return c->err; }
int  qfit_context_type_k(const qfit_context *c) { return c->kv.type_k; }
int  qfit_context_type_v(const qfit_context *c) { return c->kv.type_v; }
bool qfit_context_flash_attn(const qfit_context *c) { return c->flash_attn; }
size_t qfit_context_kv_bytes(const qfit_context *c) { return c->kv_bytes; }
bool qfit_context_kv_rotated(const qfit_context *c, bool v) { return v ? c->rot_v : c->rot_k; }
size_t qfit_context_compute_bytes(const qfit_context *c) { return c->compute_bytes; }
int  qfit_n_logits(const qfit_context *c) { return c->n_logits; }

const float *qfit_get_logits(const qfit_context *c, int i)
{
    if (c->out_embd || i < 0 || i >= c->n_logits) return NULL;
    return c->logits + (size_t)i * (size_t)c->model->hp.n_vocab;
}

void qfit_set_embeddings(qfit_context *c, bool on) { c->embeddings = on; }

void qfit_context_set_matmul_observer(qfit_context *c, qfit_matmul_observer fn, void *user)
{
    c->mm_observer = fn;
    c->mm_observer_user = user;
}
bool qfit_context_embeddings(const qfit_context *c) { return c->embeddings; }

const float *qfit_get_embeddings(const qfit_context *c, int i)
{
    if (!c->out_embd || i < 0 || i >= c->n_logits) return NULL;
    return c->logits + (size_t)i * (size_t)c->model->hp.n_embd;
}

/* Tokens of any sequences, checked whole before anything is evaluated, then run in passes
 * of n_batch. seq NULL: every token is sequence 0's; want NULL: the logits of the tokens
 * from index logits_from on (qfit_decode's form, without building arrays per call). */
/* Sliding layers of sequence s: keep the n_swa - 1 positions before the next one (all
 * that a token of the coming pass can see of the past), moved to the front of s's cells,
 * so that the pass (at most n_batch tokens) fits after them. */
static void kv_slide(qfit_context *c, int s)
{
    qfit_kv_cache *kv = &c->kv;
    const int past = c->seq_past[s], keep_from = past - (c->model->hp.n_swa - 1);
    if (keep_from <= kv->swa_base[s]) return;
    const int from = keep_from - kv->swa_base[s], rows = past - keep_from;
    for (int il = 0; il < kv->n_layer; il++) {
        if (kv->layer_cells[il] >= kv->n_ctx || !kv->layer_cells[il]) continue;   /* full, or on the device */
        const int b = kv->swa_base[s];
        for (int h = 0; h < c->model->hp.n_head_kv; h++) {
            memmove(kv_k_at(kv, il, s, h, b), kv_k_at(kv, il, s, h, b + from), (size_t)rows * kv->head_k);
            memmove(kv_v_at(kv, il, s, h, b), kv_v_at(kv, il, s, h, b + from), (size_t)rows * kv->head_v);
        }
    }
    kv->swa_base[s] = keep_from;
}

static int decode_tokens(qfit_context *c, int n, const int32_t *token, const int *seq, const bool *want,
                         int logits_from)
{
    const qfit_hparams *hp = &c->model->hp;
    c->err[0] = 0;
    c->status = QFIT_OK;
    c->n_logits = 0;
    c->out_embd = c->embeddings;
    c->rk = qfit_row_kernels_active();
#define SEQ(i) (seq ? seq[i] : 0)
#define WANT(i) (want ? want[i] : (i) >= logits_from)
    int n_out = 0;
    for (int i = 0; i < n; i++) {
        if (token[i] < 0 || token[i] >= hp->n_vocab) {
            return ctx_fail(c, QFIT_E_INVALID, "token id %d at index %d is outside the vocabulary [0, %d)",
                            (int)token[i], i, hp->n_vocab);
        }
        if (SEQ(i) < 0 || SEQ(i) >= c->n_seq) {
            return ctx_fail(c, QFIT_E_INVALID, "sequence id %d at index %d is outside [0, %d)", SEQ(i), i, c->n_seq);
        }
        n_out += WANT(i);
    }
    if (qfit_arch_desc_of(hp->arch)->info.embd_only) {
        /* an encoder: outputs are embeddings, and each call is whole inputs in one pass */
        if (n_out > 0 && !c->embeddings)
            return ctx_fail(c, QFIT_E_UNSUPPORTED, "%s is an embedding model without an output head: it has no "
                            "logits (use embeddings mode)", hp->arch_name);
        if (n > c->n_batch)
            return ctx_fail(c, QFIT_E_INVALID, "%d tokens in one call, more than n_batch = %d: an encoder (%s) "
                            "evaluates every input whole in one pass (raise n_batch)", n, c->n_batch, hp->arch_name);
        for (int i = 0; i < n; i++)
            if (c->seq_past[SEQ(i)] > 0)
                return ctx_fail(c, QFIT_E_INVALID, "sequence %d already holds %d positions: an encoder (%s) "
                                "evaluates every input whole in one call (reset the context or the sequence "
                                "first)", SEQ(i), c->seq_past[SEQ(i)], hp->arch_name);
    }
    if (n_out > c->n_batch) {
        return ctx_fail(c, QFIT_E_INVALID, "%d logits requested, at most n_batch = %d per call", n_out, c->n_batch);
    }
    for (int s = 0; s < c->n_seq; s++) {
        int add = 0;
        if (!seq) add = s == 0 ? n : 0;
        else for (int i = 0; i < n; i++) add += seq[i] == s;
        if (add > c->n_ctx - c->seq_past[s]) {
            if (c->n_seq == 1)
                return ctx_fail(c, QFIT_E_CONTEXT_FULL, "context full: %d cached + %d new tokens > n_ctx %d",
                                c->seq_past[s], add, c->n_ctx);
            return ctx_fail(c, QFIT_E_CONTEXT_FULL, "context full: sequence %d has %d cached + %d new tokens > n_ctx %d",
                            s, c->seq_past[s], add, c->n_ctx);
        }
    }
    const qfit_backend *be = c->backend;
    for (int done = 0; done < n;) {
        const int nb = n - done < c->n_batch ? n - done : c->n_batch;
        bool in_pass[QFIT_MAX_SEQ] = { false };   /* sequences met so far in this pass */
        for (int j = 0; j < nb; j++) {
            const int s = SEQ(done + j);
            /* a sequence's first token of the pass: room for the pass in the sliding layers */
            if (!in_pass[s] && c->kv.swa_cells < c->n_ctx &&
                c->seq_past[s] - c->kv.swa_base[s] >= c->kv.swa_cells - nb + 1)
                kv_slide(c, s);
            in_pass[s] = true;
            c->tok_seq[j] = s;
            c->tok_pos[j] = c->seq_past[s]++;
        }
        be->embed(c, token + done, nb);
        for (int il = 0; il < hp->n_layer; il++) {
            be->attention(c, il, nb);
            be->ffn(c, il, nb);
        }
        for (int j = 0; j < nb;) {   /* outputs of each run of requested rows */
            if (!WANT(done + j)) { j++; continue; }
            int e = j + 1;
            while (e < nb && WANT(done + e)) e++;
            be->output(c, j, e);
            j = e;
        }
        done += nb;
        if (c->backend_err[0]) {
            c->n_logits = 0;
            const int rc = ctx_fail(c, QFIT_E_INTERNAL, "device %s: %s (the outputs of this decode are not valid)",
                                    c->device, c->backend_err);
            c->backend_err[0] = 0;
            return rc;
        }
        if (atomic_exchange(&c->kernel_failed, false)) {
            c->n_logits = 0;
            return ctx_fail(c, QFIT_E_INTERNAL, "internal error: a matrix kernel refused its arguments "
                            "(%s, %d tokens); the outputs of this decode are not valid", hp->arch_name, nb);
        }
    }
#undef SEQ
#undef WANT
    return 0;
}

int qfit_decode_batch(qfit_context *c, const qfit_batch *b)
{
    c->err[0] = 0;
    c->status = QFIT_OK;
    c->n_logits = 0;
    if (!b || b->n_tokens < 0 || (b->n_tokens > 0 && (!b->token || !b->seq))) {
        return ctx_fail(c, QFIT_E_INVALID, "invalid batch (%d tokens)", b ? b->n_tokens : -1);
    }
    /* logits NULL: none (want NULL with logits_from = n_tokens) */
    return decode_tokens(c, b->n_tokens, b->token, b->seq, b->logits, b->n_tokens);
}

int qfit_decode(qfit_context *c, const int32_t *tokens, int n, int logits_from)
{
    c->err[0] = 0;
    c->status = QFIT_OK;
    c->n_logits = 0;
    if (n < 0 || (n > 0 && !tokens)) return ctx_fail(c, QFIT_E_INVALID, "invalid token count %d", n);
    if (logits_from < 0) logits_from = 0;
    if (logits_from > n) logits_from = n;
    return decode_tokens(c, n, tokens, NULL, NULL, logits_from);
}

/* ------------------------------------------------------------ context shift */

typedef struct {
    qfit_context *c;
    int seq, n_keep, n_discard, new_base;
    qfit_kv_cache *dev;   /* the device's layers' cells of seq, as its sequence 0 (NULL: none) */
} shift_op;

/* each thread takes whole layers: within a layer, rows move down in increasing
 * order, so a row is always read before it is overwritten */
static void chunk_shift(void *arg, int il, int ith)
{
    shift_op *op = arg;
    qfit_context *c = op->c;
    const qfit_hparams *hp = &c->model->hp;
    /* a device's layer (no cells in the context's host cache): its transient copy, sequence 0 */
    const bool dev = op->dev && c->kv.layer_cells[il] == 0;
    qfit_kv_cache *kv = dev ? op->dev : &c->kv;
    const int seq = dev ? 0 : op->seq;
    const int hdk = hp->head_dim_k, half = hp->n_rot / 2;
    const int64_t kd = (int64_t)hp->n_head_kv * hdk;
    float *krow = (float *)c->xn + (size_t)ith * (size_t)kd;   /* xn holds n_batch >= 1 rows of >= kd floats */
    /* angle of a shift by -n_discard positions: cos(d), -sin(d) */
    const float *cs0, *sn0;
    qfit_rope_of_layer(c, il, &cs0, &sn0);
    cs0 += (size_t)op->n_discard * half;
    sn0 += (size_t)op->n_discard * half;
    /* a rotation: without the magnitude a YaRN table carries (its Q and K have it once) */
    const bool local = c->model->recipes[il].rope_local;
    const float inv = 1.0f / rope_mscale(hp, local ? hp->rope_freq_scale_swa : hp->rope_freq_scale);
    float cs[512], sn[512];
    for (int i = 0; i < half; i++) {
        cs[i] = inv == 1.0f ? cs0[i] : cs0[i] * inv;
        sn[i] = -(inv == 1.0f ? sn0[i] : sn0[i] * inv);
    }
    {
        /* cells from the layer's first position: b before the shift, nb after (a sliding
         * layer's base moves down with the positions, or to n_keep when the discarded
         * range reached into its window) */
        const int b = kv_base(kv, il, seq), nb = kv->layer_cells[il] < kv->n_ctx ? op->new_base : 0;
        const int p0 = op->n_keep + op->n_discard > b ? op->n_keep + op->n_discard : b;
        for (int p = p0; p < c->seq_past[op->seq]; p++) {
            const int d = p - op->n_discard - nb + b;   /* position whose cell p moves to: d <= p */
            for (int h = 0; h < hp->n_head_kv; h++)
                qfit_rows_to_float(kv->type_k, kv_k_at(kv, il, seq, h, p), krow + (size_t)h * hdk, 1, hdk);
            if (c->rot_k) qfit_hadamard64(krow, kd);   /* back to the unrotated key */
            for (int h = 0; h < hp->n_head_kv; h++) qfit_rope_apply(krow + (size_t)h * hdk, cs, sn, hp->n_rot, hp->rope_type);
            if (c->rot_k) qfit_hadamard64(krow, kd);
            for (int h = 0; h < hp->n_head_kv; h++) {
                qfit_kv_store_row(kv->type_k, krow + (size_t)h * hdk, kv_k_at(kv, il, seq, h, d), hdk);
                memmove(kv_v_at(kv, il, seq, h, d), kv_v_at(kv, il, seq, h, p), kv->head_v);
            }
        }
    }
}

int qfit_context_shift(qfit_context *c, int n_keep, int n_discard) { return qfit_seq_shift(c, 0, n_keep, n_discard); }

int qfit_seq_shift(qfit_context *c, int seq, int n_keep, int n_discard)
{
    const qfit_hparams *hp = &c->model->hp;
    c->err[0] = 0;
    c->status = QFIT_OK;
    if (seq < 0 || seq >= c->n_seq) {
        return ctx_fail(c, QFIT_E_INVALID, "context shift: sequence id %d is outside [0, %d)", seq, c->n_seq);
    }
    if (n_keep < 0 || n_discard < 0 || n_keep + n_discard > c->seq_past[seq]) {
        return ctx_fail(c, QFIT_E_INVALID, "invalid context shift: keep %d, discard %d of %d cached positions",
                        n_keep, n_discard, c->seq_past[seq]);
    }
    if (hp->n_rot / 2 > 512) {
        return ctx_fail(c, QFIT_E_UNSUPPORTED, "context shift: RoPE dimension %d is not supported", hp->n_rot);
    }
    if (c->backend->kv_on_device && n_discard > 0 && !c->backend->kv_sync) {
        return ctx_fail(c, QFIT_E_UNSUPPORTED, "context shift: not on device %s (its KV cache is on the device)",
                        c->device);
    }
    if (n_discard == 0) return 0;
    char be_err[200];
    /* a device's cells: to a transient host copy of its layers' cells of this sequence,
     * shifted there as the CPU's, and back */
    qfit_kv_cache dev;
    memset(&dev, 0, sizeof dev);
    int dev_swa_base = 0;
    if (c->backend->kv_on_device) {
        const qfit_kv_cache *kv = &c->kv;
        const int n = c->seq_past[seq];
        dev = *kv;
        dev.n_seq = 1;
        dev.swa_base = &dev_swa_base;   /* the device's layers never slide */
        dev.layer_cell0 = calloc((size_t)hp->n_layer, sizeof *dev.layer_cell0);
        dev.layer_cells = calloc((size_t)hp->n_layer, sizeof *dev.layer_cells);
        size_t cells = 0;
        for (int il = 0; dev.layer_cells && dev.layer_cell0 && il < hp->n_layer; il++) {
            dev.layer_cell0[il] = cells;
            dev.layer_cells[il] = kv->layer_cells[il] ? 0 : n;
            cells += (size_t)dev.layer_cells[il];
        }
        dev.k = dev.layer_cells && dev.layer_cell0 ? malloc(cells * (kv->row_k + kv->row_v) + 1) : NULL;
        if (!dev.k) {
            free(dev.layer_cell0);
            free(dev.layer_cells);
            return ctx_fail(c, QFIT_E_NOMEM, "context shift on device %s: no host memory for the sequence's %zu cells "
                            "(nothing was shifted)", c->device, cells);
        }
        dev.v = dev.k + cells * kv->row_k;
        if (c->backend->kv_sync(c, seq, &dev, true, be_err, sizeof be_err) != 0) {
            free(dev.k);
            free(dev.layer_cell0);
            free(dev.layer_cells);
            return ctx_fail(c, QFIT_E_INTERNAL, "context shift on device %s: %s (nothing was shifted)", c->device,
                            be_err);
        }
    }
    /* each thread needs one K row of scratch in xn: n_batch rows of >= n_embd floats */
    int nth = c->n_threads;
    const size_t kd = (size_t)hp->n_head_kv * (size_t)hp->head_dim_k;
    const size_t xn_floats = (size_t)c->n_batch * (size_t)(hp->n_embd > hp->n_ff ? hp->n_embd : hp->n_ff);
    const int b = c->kv.swa_base[seq];
    shift_op op = { c, seq, n_keep, n_discard, b <= n_keep ? b : b >= n_keep + n_discard ? b - n_discard : n_keep,
                    c->backend->kv_on_device ? &dev : NULL };
    if ((size_t)nth * kd > xn_floats) for (int il = 0; il < hp->n_layer; il++) chunk_shift(&op, il, 0);
    else qfit_threadpool_run_chunks(c->tp, chunk_shift, &op, hp->n_layer);
    c->seq_past[seq] -= n_discard;
    c->kv.swa_base[seq] = op.new_base;
    c->n_logits = 0;
    if (c->backend->kv_on_device) {
        const int rc = c->backend->kv_sync(c, seq, &dev, false, be_err, sizeof be_err);
        free(dev.k);
        free(dev.layer_cell0);
        free(dev.layer_cells);
        if (rc != 0) {
            c->seq_past[seq] = c->kv.swa_base[seq] = 0;   /* the device's cells are not the shifted ones */
            return ctx_fail(c, QFIT_E_INTERNAL, "context shift on device %s: %s (sequence %d emptied)", c->device,
                            be_err, seq);
        }
    }
    return 0;
}

qfit_status qfit_context_status(const qfit_context *c) { return c->status; }
