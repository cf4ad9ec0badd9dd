/* Row kernels (qfit_row_kernels in qfit/kernels.h): the scalar reference table, and
 * the choice of table for the active ISA. */
#include "qfit/kernels.h"
#include "kernels/kernels_internal.h"

#include <math.h>
#include <pthread.h>

#include "qfit/quant.h"
#include "quant/blocks.h"

static inline float h2f(uint16_t h) { return qfit_fp16_to_fp32(h); }

static float s_dot_f32(const float *q, const float *k, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += q[i] * k[i];
    return s;
}

static float s_dot_f16(const float *q, const uint16_t *k, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += q[i] * h2f(k[i]);
    return s;
}

static float s_dot_q8_0(const void *q8, const void *k, int n)
{
    const block_q8_0 *y = q8, *x = k;
    float s = 0.0f;
    for (int b = 0; b < n / 32; b++) {
        int sum = 0;
        for (int i = 0; i < 32; i++) sum += x[b].qs[i] * y[b].qs[i];
        s += (float)sum * (h2f(x[b].d) * h2f(y[b].d));
    }
    return s;
}

static float s_dot_q4_0(const void *q8, const void *k, int n)
{
    const block_q8_0 *y = q8;
    const block_q4_0 *x = k;
    float s = 0.0f;
    for (int b = 0; b < n / 32; b++) {
        int sum = 0;
        for (int i = 0; i < 16; i++) {
            sum += ((x[b].qs[i] & 0x0f) - 8) * y[b].qs[i];
            sum += ((x[b].qs[i] >> 4) - 8) * y[b].qs[i + 16];
        }
        s += (float)sum * (h2f(x[b].d) * h2f(y[b].d));
    }
    return s;
}

static void s_mad_f32(float *acc, const float *v, float w, int n)
{
    for (int i = 0; i < n; i++) acc[i] += w * v[i];
}

static void s_mad_f16(float *acc, const uint16_t *v, float w, int n)
{
    for (int i = 0; i < n; i++) acc[i] += w * h2f(v[i]);
}

static void s_mad_q8_0(float *acc, const void *v, float w, int n)
{
    const block_q8_0 *x = v;
    for (int b = 0; b < n / 32; b++) {
        const float d = w * h2f(x[b].d);
        for (int i = 0; i < 32; i++) acc[32 * b + i] += d * (float)x[b].qs[i];
    }
}

static void s_mad_q4_0(float *acc, const void *v, float w, int n)
{
    const block_q4_0 *x = v;
    for (int b = 0; b < n / 32; b++) {
        const float d = w * h2f(x[b].d);
        for (int i = 0; i < 16; i++) {
            acc[32 * b + i] += d * (float)((x[b].qs[i] & 0x0f) - 8);
            acc[32 * b + i + 16] += d * (float)((x[b].qs[i] >> 4) - 8);
        }
    }
}

static void s_scale(float *acc, float s, int n)
{
    for (int i = 0; i < n; i++) acc[i] *= s;
}

static void s_exp_sub(float *x, float m, int n)
{
    for (int i = 0; i < n; i++) x[i] = expf(x[i] - m);
}

static inline float silu(float x) { return x / (1.0f + expf(-x)); }

static void s_swiglu(float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i++) g[i] = silu(g[i]) * u[i];
}

/* gelu(x) for every fp16 x, rounded to fp16 (ggml's ggml_table_gelu_f16), as floats */
static float g_gelu_f16[65536];
static pthread_once_t g_gelu_once = PTHREAD_ONCE_INIT;

static void gelu_table_init(void)
{
    for (uint32_t i = 0; i < 65536; i++) {
        const float x = qfit_fp16_to_fp32((uint16_t)i);
        const float y = 0.5f * x * (1.0f + tanhf(0.79788456080286535588f * x * (1.0f + 0.044715f * x * x)));
        g_gelu_f16[i] = qfit_fp16_to_fp32(qfit_fp32_to_fp16(y));
    }
}

static inline float gelu_f16(float x)
{
    return x <= -10.0f ? 0.0f : x >= 10.0f ? x : g_gelu_f16[qfit_fp32_to_fp16(x)];
}

void qk_gelu(float *x, int64_t n)
{
    pthread_once(&g_gelu_once, gelu_table_init);
    for (int64_t i = 0; i < n; i++) x[i] = gelu_f16(x[i]);
}

void qk_swiglu_oai(float *g, const float *u, int64_t n, float alpha, float limit)
{
    for (int64_t i = 0; i < n; i++) {
        const float x = fminf(g[i], limit), y = fminf(fmaxf(u[i], -limit), limit);
        g[i] = x / (1.0f + expf(alpha * -x)) * (y + 1.0f);
    }
}

void qk_geglu(float *g, const float *u, int64_t n)
{
    pthread_once(&g_gelu_once, gelu_table_init);
    for (int64_t i = 0; i < n; i++) g[i] = gelu_f16(g[i]) * u[i];
}

static void s_f32_to_f16(const float *x, uint16_t *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = qfit_fp32_to_fp16(x[i]);
}

const qfit_row_kernels qfit_row_kernels_scalar = {
    .dot_f32 = s_dot_f32, .dot_f16 = s_dot_f16, .dot_q8_0 = s_dot_q8_0, .dot_q4_0 = s_dot_q4_0,
    .mad_f32 = s_mad_f32, .mad_f16 = s_mad_f16, .mad_q8_0 = s_mad_q8_0, .mad_q4_0 = s_mad_q4_0,
    .scale = s_scale, .exp_sub = s_exp_sub, .swiglu = s_swiglu, .gelu = qk_gelu, .geglu = qk_geglu, .swiglu_oai = qk_swiglu_oai, .f32_to_f16 = s_f32_to_f16,
    .rows8 = NULL,
};

const qfit_row_kernels *qfit_row_kernels_active(void)
{
#if defined(__x86_64__) || defined(_M_X64)
    const qfit_cpu_features *cf = qfit_cpu_get_features();
    if (qfit_isa_active() == QFIT_ISA_AVX512) return &qfit_row_kernels_avx512;   /* implies AVX2 + FMA + F16C */
    if (qfit_isa_active() != QFIT_ISA_SCALAR && cf->avx2 && cf->fma && cf->f16c) return &qfit_row_kernels_avx2;
#elif defined(__aarch64__)
    if (qfit_isa_active() == QFIT_ISA_NEON) return &qfit_row_kernels_neon;
#endif
    return &qfit_row_kernels_scalar;
}

void qfit_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
