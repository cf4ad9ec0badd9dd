/* CPU feature detection, ISA selection and the public kernel entry points. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "kernels/kernels_internal.h"

#if defined(__x86_64__) || defined(_M_X64)
#define QK_X86 1
#include <cpuid.h>
#endif
/* AArch64 optional features: the auxiliary vector on Linux, sysctl on macOS; elsewhere
 * (and on Linux with QFIT_PORTABLE_ONLY, make check-portable) none are assumed: the
 * NEON kernels then emulate SDOT, correct but slower. */
#if defined(__aarch64__) && defined(__APPLE__)
#define QK_ARM_APPLE 1
#include <sys/sysctl.h>
#elif defined(__aarch64__) && defined(__linux__) && !defined(QFIT_PORTABLE_ONLY)
#define QK_ARM_LINUX 1
#include <sys/auxv.h>
#endif

#ifdef QK_ARM_APPLE
/* hw.optional.arm.FEAT_* (macOS 12 on): 1 present, 0 absent; a macOS without the name
 * runs only on Apple M1 or later, which have both features */
static bool apple_feature(const char *name)
{
    int v = 0;
    size_t len = sizeof v;
    if (sysctlbyname(name, &v, &len, NULL, 0) != 0) return true;
    return v != 0;
}
#endif

static qfit_cpu_features g_feat;
static int g_avx512dq;
static qk_table g_tables[4];
static bool g_table_ok[4];
static qfit_isa g_best = QFIT_ISA_SCALAR;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static _Atomic int g_active = -1;
static char g_env_error[256];   /* why QFIT_ISA cannot be honoured; "" when it can */

#ifdef QK_X86
static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static void detect_features(void)
{
    memset(&g_feat, 0, sizeof(g_feat));
#ifdef QK_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    const bool fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    uint64_t xcr0 = osxsave ? read_xcr0() : 0;
    const bool ymm_ok = avx && (xcr0 & 0x6) == 0x6;
    const bool zmm_ok = ymm_ok && (xcr0 & 0xE0) == 0xE0;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 7 || !ymm_ok) return;
    g_feat.fma = fma;
    g_feat.f16c = f16c;
    __cpuid_count(7, 0, a, b, c, d);
    g_feat.avx2 = (b >> 5) & 1;
    if (zmm_ok) {
        g_feat.avx512f  = (b >> 16) & 1;
        g_avx512dq      = (b >> 17) & 1;
        g_feat.avx512bw = (b >> 30) & 1;
        g_feat.avx512vl = (b >> 31) & 1;
        g_feat.avx512vnni = (c >> 11) & 1;
        unsigned sub = a;
        if (sub >= 1) {
            unsigned a1, b1, c1, d1;
            __cpuid_count(7, 1, a1, b1, c1, d1);
            g_feat.avx512bf16 = (a1 >> 5) & 1;
        }
    }
#elif defined(__aarch64__)
    g_feat.neon = true;   /* Advanced SIMD is mandatory on AArch64 */
#if defined(QK_ARM_LINUX)
    unsigned long hw = getauxval(AT_HWCAP);
    g_feat.fp16 = (hw & (1UL << 9)) && (hw & (1UL << 10));   /* FPHP + ASIMDHP */
    g_feat.dotprod = (hw & (1UL << 20)) != 0;                /* ASIMDDP */
#elif defined(QK_ARM_APPLE)
    g_feat.fp16 = apple_feature("hw.optional.arm.FEAT_FP16");
    g_feat.dotprod = apple_feature("hw.optional.arm.FEAT_DotProd");
#endif
#endif
}

int qk_cpu_has_avx512dq(void)
{
    (void)qfit_cpu_get_features();
    return g_avx512dq;
}

static bool isa_supported(qfit_isa isa)
{
    switch (isa) {
    case QFIT_ISA_SCALAR: return true;
    case QFIT_ISA_AVX2:
        return g_feat.avx2 && g_feat.fma && g_feat.f16c;
    case QFIT_ISA_AVX512:
        return g_feat.avx2 && g_feat.fma && g_feat.f16c && g_feat.avx512f &&
               g_feat.avx512bw && g_feat.avx512vl && g_avx512dq;
    case QFIT_ISA_NEON:
        return g_feat.neon;
    }
    return false;
}

static void init_once(void)
{
    detect_features();
    for (int i = 0; i < 4; i++) {
        qfit_isa isa = (qfit_isa)i;
        if (!isa_supported(isa)) continue;
        qk_fill_scalar(&g_tables[i]);
#ifdef QK_X86
        if (isa == QFIT_ISA_AVX2 || isa == QFIT_ISA_AVX512) {
            qk_fill_avx2(&g_tables[i]);
            qk_fill_gemm_avx2(&g_tables[i]);
        }
        if (isa == QFIT_ISA_AVX512 && g_feat.avx512vnni) {
            qk_fill_avx512(&g_tables[i]);
            qk_fill_gemm_avx512(&g_tables[i], g_feat.avx512bf16);
            qk_fill_gemm_avx512_zmm(&g_tables[i]);
        }
#endif
#if defined(__aarch64__)
        if (isa == QFIT_ISA_NEON) {
            qk_fill_neon(&g_tables[i], g_feat.dotprod);
            qk_fill_gemm_neon(&g_tables[i], g_feat.dotprod);
        }
#endif
        g_table_ok[i] = true;
    }
    qfit_isa best = QFIT_ISA_SCALAR;
    if (g_table_ok[QFIT_ISA_NEON]) best = QFIT_ISA_NEON;
    if (g_table_ok[QFIT_ISA_AVX2]) best = QFIT_ISA_AVX2;
    if (g_table_ok[QFIT_ISA_AVX512]) best = QFIT_ISA_AVX512;
    const char *env = getenv("QFIT_ISA");
    if (env && *env) {
        int want = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(env, qfit_isa_name((qfit_isa)i)) == 0) want = i;
        if (want >= 0 && g_table_ok[want]) {
            best = (qfit_isa)want;
        } else {
            char avail[64] = "";
            for (int i = 0; i < 4; i++)
                if (g_table_ok[i])
                    snprintf(avail + strlen(avail), sizeof avail - strlen(avail), "%s%s", avail[0] ? ", " : "",
                             qfit_isa_name((qfit_isa)i));
            snprintf(g_env_error, sizeof g_env_error, "QFIT_ISA=%.32s %s (available: %s)", env,
                     want < 0 ? "is not an instruction set (scalar, avx2, avx512, neon)" : "is not available on this CPU",
                     avail);
        }
    }
    g_best = best;
}

const qfit_cpu_features *qfit_cpu_get_features(void)
{
    pthread_once(&g_once, init_once);
    return &g_feat;
}

const char *qfit_isa_name(qfit_isa isa)
{
    switch (isa) {
    case QFIT_ISA_SCALAR: return "scalar";
    case QFIT_ISA_AVX2:   return "avx2";
    case QFIT_ISA_AVX512: return "avx512";
    case QFIT_ISA_NEON:   return "neon";
    }
    return "?";
}

qfit_isa qfit_isa_best(void)
{
    pthread_once(&g_once, init_once);
    return g_best;
}

const char *qfit_isa_env_error(void)
{
    pthread_once(&g_once, init_once);
    return g_env_error[0] ? g_env_error : NULL;
}

qfit_isa qfit_isa_active(void)
{
    int a = atomic_load_explicit(&g_active, memory_order_acquire);
    if (a < 0) {
        int expected = -1;
        atomic_compare_exchange_strong(&g_active, &expected, (int)qfit_isa_best());
        a = atomic_load_explicit(&g_active, memory_order_acquire);
    }
    return (qfit_isa)a;
}

int qfit_isa_select(qfit_isa isa)
{
    pthread_once(&g_once, init_once);
    if ((int)isa < 0 || (int)isa >= 4 || !g_table_ok[isa]) return -1;
    atomic_store_explicit(&g_active, (int)isa, memory_order_release);
    return 0;
}

const qk_table *qk_table_for(qfit_isa isa)
{
    pthread_once(&g_once, init_once);
    if ((int)isa < 0 || (int)isa >= 4 || !g_table_ok[isa]) return NULL;
    return &g_tables[isa];
}

static const qk_table *active_table(void)
{
    return &g_tables[qfit_isa_active()];
}

/* ---------------- public entry points ---------------- */

int qfit_vec_dot_type(int weight_type)
{
    switch (weight_type) {
    case QFIT_TYPE_F32:  return QFIT_TYPE_F32;
    case QFIT_TYPE_F16:  return QFIT_TYPE_F16;
    case QFIT_TYPE_BF16: return QFIT_TYPE_BF16;
    case QFIT_TYPE_Q4_0: case QFIT_TYPE_Q5_0: case QFIT_TYPE_Q8_0: case QFIT_TYPE_IQ4_NL:
    case QFIT_TYPE_MXFP4:
        return QFIT_TYPE_Q8_0;
    case QFIT_TYPE_Q4_1: case QFIT_TYPE_Q5_1:
        return QFIT_TYPE_Q8_1;
    case QFIT_TYPE_Q2_K: case QFIT_TYPE_Q3_K: case QFIT_TYPE_Q4_K: case QFIT_TYPE_Q5_K:
    case QFIT_TYPE_Q6_K: case QFIT_TYPE_IQ4_XS:
        return QFIT_TYPE_Q8_K;
    default:
        return -1;
    }
}

static int64_t type_block(int type)
{
    const qfit_type_traits *tr = qfit_type_get_traits(type);
    return tr ? tr->block_size : 0;
}

void qfit_quantize_activations(int vdtype, const float *x, void *y, int64_t n)
{
    if (vdtype < 0 || vdtype >= QFIT_TYPE_COUNT || n <= 0 || !x || !y) return;
    const qk_table *t = active_table();
    qk_quant_fn f = t->quant[vdtype];
    int64_t bs = type_block(vdtype);
    if (!f || bs <= 0 || n % bs != 0) return;
    f(x, y, n);
}

static bool dot_args_ok(int wtype, int64_t n)
{
    if (wtype < 0 || wtype >= QFIT_TYPE_COUNT || n <= 0) return false;
    int vd = qfit_vec_dot_type(wtype);
    if (vd < 0) return false;
    int64_t bw = type_block(wtype), ba = type_block(vd);
    return bw > 0 && ba > 0 && n % bw == 0 && n % ba == 0;
}

float qfit_vec_dot(int wtype, int64_t n, const void *w_row, const void *a_row)
{
    if (!dot_args_ok(wtype, n) || !w_row || !a_row) return NAN;
    const qk_table *t = active_table();
    if (!t->dot[wtype]) return NAN;
    float s;
    t->dot[wtype](n, &s, w_row, a_row);
    return s;
}

/* The panel paths sweep each panel over the activation rows in chunks of about
 * 4 MiB (they stay in L3), at least 64 rows. */
static int64_t act_chunk_rows(size_t a_stride)
{
    const int64_t j = (int64_t)((4096u * 1024u) / (a_stride ? a_stride : 1));
    return j < 64 ? 64 : j;
}

/* ---------------- activation rows of the panel kernels ---------------- */

/* This thread's scratch buffer `slot` (SCRATCH_PANEL, SCRATCH_ACT) of at least `bytes`,
 * 64-byte aligned, kept for its next calls and freed when the thread exits: a fresh
 * malloc of a few hundred KiB per call was an mmap and its page clearing, which cost as
 * much as the work on a small matrix. NULL: out of memory. */
enum { SCRATCH_PANEL, SCRATCH_ACT, SCRATCH_SLOTS };
typedef struct {
    uint8_t *p[SCRATCH_SLOTS];
    size_t cap[SCRATCH_SLOTS];
} thread_scratch_t;
static pthread_key_t g_scratch_key;
static pthread_once_t g_scratch_once = PTHREAD_ONCE_INIT;
static void scratch_release(void *v)
{
    thread_scratch_t *ts = v;
    for (int i = 0; i < SCRATCH_SLOTS; i++) free(ts->p[i]);
    free(ts);
}
static void scratch_key_init(void)
{
    (void)pthread_key_create(&g_scratch_key, scratch_release);
}
static uint8_t *thread_scratch(int slot, size_t bytes)
{
    pthread_once(&g_scratch_once, scratch_key_init);
    thread_scratch_t *ts = pthread_getspecific(g_scratch_key);
    if (!ts) {
        ts = calloc(1, sizeof *ts);
        if (!ts || pthread_setspecific(g_scratch_key, ts) != 0) {
            free(ts);
            return NULL;
        }
    }
    if (ts->cap[slot] < bytes) {
        uint8_t *n = aligned_alloc(64, (bytes + 63) / 64 * 64);
        if (!n) return NULL;
        free(ts->p[slot]);
        ts->p[slot] = n;
        ts->cap[slot] = bytes;
    }
    return ts->p[slot];
}

/* The QK_ACT_Q8S rows a kernel takes are converted a chunk of rows at a time into at
 * most this many bytes of the thread's scratch (what stays allocated per thread) */
#define ACT_SCRATCH_BYTES ((size_t)256 * 1024)

/* Activation rows in the form pn->act asks for, a chunk of rows at a time: the caller's
 * rows, or their QK_ACT_Q8S form (Q8_0 blocks with each block's sum) converted chunk by
 * chunk into the thread's scratch. */
typedef struct {
    const qk_table *t;
    const uint8_t *A;
    size_t as;        /* the caller's row stride */
    int64_t nb;       /* 32-element blocks per row */
    bool q8s;
    size_t stride;    /* of the rows act_chunk returns */
    int64_t jchunk;   /* rows per chunk */
    uint8_t *buf;     /* q8s: the scratch */
} act_rows;

/* false: out of memory (or no conversion to the form the kernel takes) */
static bool act_begin(act_rows *r, const qk_table *t, const qk_panel *pn, int64_t k, const uint8_t *A, size_t as)
{
    *r = (act_rows){ .t = t, .A = A, .as = as, .nb = k / 32, .q8s = pn->act == QK_ACT_Q8S, .stride = as };
    if (!r->q8s) {
        r->jchunk = act_chunk_rows(as);
        return true;
    }
    if (!t->act_q8s) return false;   /* a table asking for QK_ACT_Q8S provides the conversion */
    r->stride = (size_t)r->nb * 40;
    const int64_t fit = (int64_t)(ACT_SCRATCH_BYTES / r->stride), most = act_chunk_rows(r->stride);
    r->jchunk = fit < 1 ? 1 : (fit < most ? fit : most);
    r->buf = thread_scratch(SCRATCH_ACT, r->stride * (size_t)r->jchunk);
    return r->buf != NULL;
}

/* rows jb..je-1 (je - jb <= jchunk) in the form the kernel takes */
static const uint8_t *act_chunk(const act_rows *r, int64_t jb, int64_t je)
{
    const uint8_t *A = r->A + (size_t)jb * r->as;
    if (!r->q8s) return A;
    r->t->act_q8s(r->nb, A, r->as, je - jb, r->buf);
    return r->buf;
}

/* Register-tiled path: each panel of R weight rows is unpacked once per chunk
 * of activation rows (into the thread's scratch) and swept against all of them.
 * Returns false (nothing done) when the scratch cannot be allocated. */
static bool gemm_panels(const qk_panel *pn, int wtype, int64_t k,
                        const uint8_t *Wb, size_t w_stride, int64_t i0, int64_t i1,
                        const uint8_t *Ab, size_t a_stride, int64_t m, float *Y, int64_t ldy)
{
    const int family = pn->family;
    if (family < 0) return false;
    const int R = pn->rows;
    const int64_t bs = qk_pack_family_block(family);
    if (k % bs != 0) return false;
    size_t bytes = qk_pack_block_bytes(family, R) * (size_t)(k / bs);
    bytes = (bytes + 63) / 64 * 64;
    act_rows ar;
    if (!act_begin(&ar, active_table(), pn, k, Ab, a_stride)) return false;
    uint8_t *panel = thread_scratch(SCRATCH_PANEL, bytes);
    if (!panel) return false;
    /* each panel is packed once per chunk of activation rows */
    for (int64_t jb = 0; jb < m; jb += ar.jchunk) {
        const int64_t je = jb + ar.jchunk < m ? jb + ar.jchunk : m;
        const uint8_t *Aj = act_chunk(&ar, jb, je);
        for (int64_t i = i0; i < i1; i += R) {
            const int nw = (int)(i1 - i < R ? i1 - i : R);
            const uint8_t *next = i + 2 * R <= i1 ? Wb + (size_t)(i + R) * w_stride : NULL;
            if (pn->pack) pn->pack(k, Wb + (size_t)i * w_stride, w_stride, nw, next, panel);
            else qk_pack_panel(family, wtype, k, Wb + (size_t)i * w_stride, w_stride, nw, R, panel);
            pn->run(k, panel, nw, Aj, ar.stride, je - jb, Y + jb * ldy + i, ldy);
        }
    }
    return true;
}

/* ---------------- weights packed at load ---------------- */

/* The active table's load-time layout for wtype, NULL if none (or k not whole blocks). */
static const qk_panel *load_layout(const qk_table *t, int wtype, int64_t k)
{
    if (!dot_args_ok(wtype, k)) return NULL;
    const qk_panel *pn = &t->panel[wtype];
    if (!pn->load || !pn->run || !pn->pack || pn->family < 0 || pn->rows <= 0) return NULL;
    if (k % qk_pack_family_block(pn->family) != 0) return NULL;
    return pn;
}

static size_t panel_bytes_of(const qk_panel *pn, int64_t k)
{
    return qk_pack_block_bytes(pn->family, pn->rows) * (size_t)(k / qk_pack_family_block(pn->family));
}

size_t qfit_pack_bytes(int wtype, int64_t k, int64_t n)
{
    const qk_panel *pn = load_layout(active_table(), wtype, k);
    if (!pn || n <= 0) return 0;
    const uint64_t panels = (uint64_t)((n + pn->rows - 1) / pn->rows);
    const size_t pb = panel_bytes_of(pn, k);
    if (pb == 0 || panels > SIZE_MAX / pb) return 0;
    return (size_t)panels * pb;
}

/* The panels of a packed matrix: from 4 MiB on, on 2 MiB boundaries and advised
 * onto transparent huge pages where the kernel has them. Packing writes every page
 * once at load: with 4 KiB pages those first-touch faults were most of the load time
 * (on this VM), and the kernels read the panels with 512 times fewer TLB entries. The
 * part of the last 2 MiB that the allocation does not fill stays on small pages, so
 * the resident bytes are the panels' (what the planner counts). */
static uint8_t *pack_alloc(size_t bytes)
{
    bytes = (bytes + 63) / 64 * 64;
#ifdef MADV_HUGEPAGE
    if (bytes >= ((size_t)4 << 20)) {
        void *p = NULL;
        if (posix_memalign(&p, (size_t)2 << 20, bytes) != 0) return NULL;
        (void)madvise(p, bytes, MADV_HUGEPAGE);   /* advice only: a refusal changes nothing */
        return p;
    }
#endif
    return aligned_alloc(64, bytes);
}

int qfit_packed_alloc(int wtype, int64_t k, int64_t n, qfit_packed *out)
{
    if (!out) return -1;
    memset(out, 0, sizeof *out);
    const qfit_isa isa = qfit_isa_active();
    const qk_panel *pn = load_layout(&g_tables[isa], wtype, k);
    const size_t bytes = qfit_pack_bytes(wtype, k, n);
    if (!pn || bytes == 0) return -1;
    uint8_t *P = pack_alloc(bytes);
    if (!P) return -1;
    *out = (qfit_packed){ .data = P, .wtype = wtype, .isa = (int)isa, .rows = pn->rows, .k = k, .n = n,
                          .panel_bytes = panel_bytes_of(pn, k) };
    return 0;
}

int qfit_pack_rows(const qfit_packed *p, int64_t i0, int64_t i1, const void *W, size_t w_stride)
{
    if (!p || !p->data || !W || i0 < 0 || i1 <= i0 || i1 > p->n) return -1;
    const qfit_isa isa = qfit_isa_active();
    const qk_panel *pn = load_layout(&g_tables[isa], p->wtype, p->k);
    if ((int)isa != p->isa || !pn || pn->rows != p->rows || w_stride < qfit_row_size(p->wtype, p->k)) return -1;
    const int R = p->rows;
    if (i0 % R != 0 || (i1 % R != 0 && i1 != p->n)) return -1;
    const uint8_t *Wb = W;
    uint8_t *P = p->data;
    for (int64_t i = i0; i < i1; i += R) {
        const int nw = (int)(i1 - i < R ? i1 - i : R);
        const uint8_t *next = i + 2 * R <= i1 ? Wb + (size_t)(i + R) * w_stride : NULL;
        pn->pack(p->k, Wb + (size_t)i * w_stride, w_stride, nw, next, P + (size_t)(i / R) * p->panel_bytes);
    }
    return 0;
}

int qfit_pack_matrix(int wtype, int64_t k, int64_t n, const void *W, size_t w_stride, qfit_packed *out)
{
    if (out && !W) memset(out, 0, sizeof *out);
    if (!W || qfit_packed_alloc(wtype, k, n, out) != 0) return -1;
    if (qfit_pack_rows(out, 0, n, W, w_stride) != 0) {
        qfit_packed_free(out);
        return -1;
    }
    return 0;
}

void qfit_packed_free(qfit_packed *p)
{
    if (!p) return;
    free(p->data);
    memset(p, 0, sizeof *p);
}

int qfit_gemm_packed(const qfit_packed *p, int64_t i0, int64_t i1, const void *A, size_t a_stride, int64_t m,
                     float *Y, int64_t ldy)
{
    if (!p || !p->data || !A || !Y || i0 < 0 || i1 <= i0 || i1 > p->n || m <= 0) return -1;
    const qfit_isa isa = qfit_isa_active();
    if ((int)isa != p->isa) return 1;
    const qk_panel *pn = load_layout(&g_tables[isa], p->wtype, p->k);
    if (!pn || pn->rows != p->rows || panel_bytes_of(pn, p->k) != p->panel_bytes) return 1;
    const int R = p->rows;
    if (i0 % R != 0 || (i1 % R != 0 && i1 != p->n)) return 1;
    const uint8_t *P = p->data;
    act_rows ar;
    if (!act_begin(&ar, &g_tables[isa], pn, p->k, A, a_stride)) return 1;   /* no scratch: the rows can serve */
    for (int64_t jb = 0; jb < m; jb += ar.jchunk) {
        const int64_t je = jb + ar.jchunk < m ? jb + ar.jchunk : m;
        const uint8_t *Aj = act_chunk(&ar, jb, je);
        for (int64_t i = i0; i < i1; i += R) {
            const int nw = (int)(i1 - i < R ? i1 - i : R);
            pn->run(p->k, P + (size_t)(i / R) * p->panel_bytes, nw, Aj, ar.stride, je - jb, Y + jb * ldy + i, ldy);
        }
    }
    return 0;
}

int qfit_gemm(int wtype, int64_t k,
              const void *W, size_t w_stride, int64_t i0, int64_t i1,
              const void *A, size_t a_stride, int64_t m,
              float *Y, int64_t ldy)
{
    if (!dot_args_ok(wtype, k) || !W || !A || !Y || i0 < 0 || i1 <= i0 || m <= 0) return -1;
    const qk_table *t = active_table();
    qk_dot_fn dot = t->dot[wtype];
    if (!dot) return -1;
    const uint8_t *Wb = W, *Ab = A;
    const qk_panel *pn = &t->panel[wtype];
    if (pn->direct && m >= pn->min_m) {
        pn->direct(k, Wb + (size_t)i0 * w_stride, w_stride, (int)(i1 - i0), Ab, a_stride, m, Y + i0, ldy);
        return 0;
    }
    if (pn->run && m >= pn->min_m &&
        gemm_panels(pn, wtype, k, Wb, w_stride, i0, i1, Ab, a_stride, m, Y, ldy))
        return 0;
    /* One activation row (generation): QK_DOTN weight rows per call where the
     * ISA has a multi-row kernel. */
    if (m == 1 && t->dotn[wtype]) {
        int64_t i = i0;
        for (; i + QK_DOTN <= i1; i += QK_DOTN)
            t->dotn[wtype](k, Y + i, Wb + (size_t)i * w_stride, w_stride, Ab);
        for (; i < i1; i++)
            dot(k, &Y[i], Wb + (size_t)i * w_stride, Ab);
        return 0;
    }
    /* Per-pair dot products. Activation rows are taken in chunks that stay in
     * L2 (about 256 KiB); each group of 4 weight rows is loaded once per chunk
     * and swept against all of its rows. */
    enum { G = 4 };
    int64_t jchunk = (int64_t)((256u * 1024u) / (a_stride ? a_stride : 1));
    jchunk = jchunk < G ? G : jchunk / G * G;
    for (int64_t jb = 0; jb < m; jb += jchunk) {
        const int64_t je = jb + jchunk < m ? jb + jchunk : m;
        for (int64_t i = i0; i < i1; i += G) {
            const int nw = (int)(i1 - i < G ? i1 - i : G);
            for (int64_t j = jb; j < je; j++)
                for (int ii = 0; ii < nw; ii++)
                    dot(k, &Y[j * ldy + i + ii], Wb + (size_t)(i + ii) * w_stride, Ab + (size_t)j * a_stride);
        }
    }
    return 0;
}
