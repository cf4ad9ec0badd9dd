/* Instruction-count driver for bench/neon-count: calls each compute kernel of one
 * instruction set's tables a fixed number of times between two marker functions,
 * so that a qemu execution log (qemu-aarch64 / qemu-x86_64 -d in_asm,exec,nochain)
 * can be summed into guest instructions per call. Built static, for AArch64 (NEON and
 * scalar tables) and for x86-64 (AVX2 and scalar tables); see bench/neon-count.
 *
 *   neon_count gen FILE        quantize the test data (slow under a log: done once,
 *                              without one) and write it to FILE
 *   neon_count run ISA FILE [KINDS]
 *                              read FILE and run every case on ISA's tables
 *                              (scalar, neon, avx2, avx512); KINDS: a comma-separated
 *                              list of the kernels to run (calib, dot, dotn, gemm,
 *                              quant, row, attn), default all
 *
 * run prints "addr begin end" (the markers' addresses), then one line per case:
 *   case <kernel> <type> <size> <path>
 * and for every case executes, in this order, after two warm-up calls:
 *   nc_begin; 1 call; nc_end; nc_begin; 2 calls; nc_end; nc_begin; 3 calls; nc_end
 * so the counter gives three counts A, B, C per case: one call costs C - B, and
 * B - A == C - B confirms the calls cost the same (the script checks it). Calls that
 * work in place get a fresh copy of their input each time (the copies are set up
 * before the first marker), so every call sees the same data.
 *
 * Kernels are taken from qk_table_for(ISA) / qfit_gemm / qfit_row_kernels_active()
 * after qfit_isa_select(ISA): whatever the tables hold is what is counted, and a
 * table entry that is the scalar table's own function is labelled as such. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_internal.h"
#include "qfit/kernels.h"
#include "qfit/quant.h"

/* Sizes (elements). KD: dot / dotn rows (and the activation quantizer);
 * gemm: NG weight rows x MG activation rows x KG; row kernels: HD (head dim),
 * NS (scores of a softmax row), NE (element-wise rows), attention: 8 query rows
 * over NPOS cached positions. KD and KG are multiples of 256 (every block size). */
enum { KD = 4096, KG = 1024, NG = 64, MG = 64, HD = 128, NS = 512, NE = 4096, NPOS = 64 };
/* inputs of kernels that work in place: copy 0 (kept as generated) and one copy for
 * each call of a case (2 warm-ups + 1 + 2 + 3) */
enum { NCOPY = 9 };

volatile int nc_phase;
volatile float nc_sink;

__attribute__((noinline)) void nc_begin(void);
__attribute__((noinline)) void nc_end(void);
__attribute__((noinline)) void nc_begin(void) { nc_phase = 1; }
__attribute__((noinline)) void nc_end(void) { nc_phase = 2; }

/* ------------------------------------------------------------------ data */

typedef struct {
    int type, vd;
    size_t wd_off, ad_off, wg_off, ag_off;   /* dot/dotn weights (4 rows), activation; gemm W, A */
    size_t wd_stride, wg_stride, ag_stride;
} type_data;

static type_data g_types[QFIT_TYPE_COUNT];
static int g_ntypes;
static size_t g_arena_size;
static unsigned char *g_arena;

/* row-kernel and quantizer data (offsets into the arena) */
static size_t o_xq;                 /* KD floats: quantizer input */
static size_t o_q, o_kf32, o_kf16, o_q8, o_kq8, o_kq4;        /* HD: query f32, key rows, q8_0 query */
static size_t o_acc, o_scores, o_g, o_u;                       /* NCOPY copies each */
static size_t o_h16;                                           /* NE halves: f32_to_f16 output */
static size_t o_aq, o_ak, o_av, o_aout, o_ascr, o_as;          /* attention */

static size_t take(size_t bytes)
{
    size_t o = g_arena_size;
    g_arena_size += (bytes + 63) / 64 * 64;
    return o;
}

static void *at(size_t off) { return g_arena + off; }

static size_t rowsz(int type, int64_t n)
{
    return qfit_row_size(type, n);
}

static void layout(void)
{
    const qk_table *sc = qk_table_for(QFIT_ISA_SCALAR);
    for (int t = 0; t < QFIT_TYPE_COUNT; t++) {
        const int vd = qfit_vec_dot_type(t);
        if (!sc->dot[t] || vd < 0) continue;
        type_data *d = &g_types[g_ntypes++];
        d->type = t;
        d->vd = vd;
        d->wd_stride = rowsz(t, KD);
        d->wg_stride = rowsz(t, KG);
        d->ag_stride = rowsz(vd, KG);
        d->wd_off = take(d->wd_stride * QK_DOTN);
        d->ad_off = take(rowsz(vd, KD));
        d->wg_off = take(d->wg_stride * NG);
        d->ag_off = take(d->ag_stride * MG);
    }
    o_xq = take(KD * 4);
    o_q = take(HD * 4);
    o_kf32 = take(HD * 4);
    o_kf16 = take(HD * 2);
    o_q8 = take(rowsz(QFIT_TYPE_Q8_0, HD));
    o_kq8 = take(rowsz(QFIT_TYPE_Q8_0, HD));
    o_kq4 = take(rowsz(QFIT_TYPE_Q4_0, HD));
    o_acc = take((size_t)NCOPY * HD * 4);
    o_scores = take((size_t)NCOPY * NS * 4);
    o_g = take((size_t)NCOPY * NE * 4);
    o_u = take(NE * 4);
    o_h16 = take(NE * 2);
    o_aq = take(8 * HD * 4);
    o_ak = take((size_t)NPOS * HD * 2);
    o_av = take((size_t)NPOS * HD * 2);
    o_aout = take(8 * HD * 4);
    o_ascr = take(QFIT_ATTN_ROWS8_SCRATCH(HD, HD) * 4);
    o_as = take(NPOS * 4);
}

static uint64_t g_rs;
static float urand(void)
{
    g_rs = g_rs * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(g_rs >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void fill(float *x, int64_t n, uint64_t seed)
{
    g_rs = seed * 2654435761ULL + 99;
    for (int64_t i = 0; i < n; i++) x[i] = urand();
}

static int quantize(int type, const float *x, void *y, int64_t rows, int64_t n)
{
    char err[200];
    if (qfit_quantize_rows(type, x, y, rows, n, err, sizeof err) == 0) {
        fprintf(stderr, "neon_count: cannot quantize %s: %s\n", qfit_type_name(type), err);
        return -1;
    }
    return 0;
}

static int generate(void)
{
    float *tmp = malloc((size_t)NG * KG * 4 + (size_t)QK_DOTN * KD * 4);
    if (!tmp) return -1;
    for (int i = 0; i < g_ntypes; i++) {
        const type_data *d = &g_types[i];
        fill(tmp, (int64_t)QK_DOTN * KD, 100 + (uint64_t)d->type);
        if (quantize(d->type, tmp, at(d->wd_off), QK_DOTN, KD)) goto fail;
        fill(tmp, KD, 200 + (uint64_t)d->type);
        qfit_quantize_activations(d->vd, tmp, at(d->ad_off), KD);
        fill(tmp, (int64_t)NG * KG, 300 + (uint64_t)d->type);
        if (quantize(d->type, tmp, at(d->wg_off), NG, KG)) goto fail;
        fill(tmp, (int64_t)MG * KG, 400 + (uint64_t)d->type);
        for (int j = 0; j < MG; j++)
            qfit_quantize_activations(d->vd, tmp + (size_t)j * KG, (unsigned char *)at(d->ag_off) + j * d->ag_stride, KG);
    }
    fill(at(o_xq), KD, 1);
    fill(at(o_q), HD, 2);
    fill(at(o_kf32), HD, 3);
    fill(tmp, HD, 4);
    if (quantize(QFIT_TYPE_F16, tmp, at(o_kf16), 1, HD) || quantize(QFIT_TYPE_Q8_0, tmp, at(o_kq8), 1, HD) ||
        quantize(QFIT_TYPE_Q4_0, tmp, at(o_kq4), 1, HD))
        goto fail;
    qfit_quantize_activations(QFIT_TYPE_Q8_0, at(o_q), at(o_q8), HD);
    fill(at(o_acc), HD, 5);
    /* softmax scores: x - max stays in [-4, 0] */
    fill(at(o_scores), NS, 6);
    for (int i = 0; i < NS; i++) ((float *)at(o_scores))[i] *= 2.0f;
    fill(at(o_g), NE, 7);
    for (int i = 0; i < NE; i++) ((float *)at(o_g))[i] *= 4.0f;
    fill(at(o_u), NE, 8);
    fill(at(o_aq), 8 * HD, 9);
    fill(tmp, (int64_t)NPOS * HD, 10);
    if (quantize(QFIT_TYPE_F16, tmp, at(o_ak), NPOS, HD)) goto fail;
    fill(tmp, (int64_t)NPOS * HD, 11);
    if (quantize(QFIT_TYPE_F16, tmp, at(o_av), NPOS, HD)) goto fail;
    free(tmp);
    return 0;
fail:
    free(tmp);
    return -1;
}

/* the in-place inputs: copies 1.. of copy 0 (before every case) */
static void replicate(void)
{
    float *acc = at(o_acc), *sc = at(o_scores), *g = at(o_g);
    for (int c = 1; c < NCOPY; c++) {
        memcpy(acc + (size_t)c * HD, acc, HD * 4);
        memcpy(sc + (size_t)c * NS, sc, NS * 4);
        memcpy(g + (size_t)c * NE, g, NE * 4);
    }
}

/* ------------------------------------------------------------------ cases */

typedef struct ncase ncase;
struct ncase {
    void (*run)(const ncase *c);
    const type_data *td;
    const qk_table *tab;
    const qfit_row_kernels *rk;
    int which;   /* row kernel selector */
};

static int g_copy;   /* the last in-place copy handed out (0: none yet in this case) */
static float *next_copy(size_t off, size_t n)
{
    g_copy = g_copy + 1 < NCOPY ? g_copy + 1 : 1;
    return (float *)at(off) + (size_t)g_copy * n;
}

static void run_dot(const ncase *c)
{
    float s;
    c->tab->dot[c->td->type](KD, &s, at(c->td->wd_off), at(c->td->ad_off));
    nc_sink = s;
}

static float g_y[NG * MG];

static void run_dotn(const ncase *c)
{
    /* m = 1 over QK_DOTN rows: qfit_gemm's generation path (dotn where the table
     * has one, else dot per row) */
    qfit_gemm(c->td->type, KD, at(c->td->wd_off), c->td->wd_stride, 0, QK_DOTN, at(c->td->ad_off), 0, 1, g_y,
              QK_DOTN);
}

static void run_gemm(const ncase *c)
{
    qfit_gemm(c->td->type, KG, at(c->td->wg_off), c->td->wg_stride, 0, NG, at(c->td->ag_off), c->td->ag_stride, MG,
              g_y, NG);
}

static unsigned char g_qout[KD * 4];   /* the largest activation row: F32 */

static void run_quant(const ncase *c)
{
    c->tab->quant[c->which](at(o_xq), g_qout, KD);
}

enum {
    RK_DOT_F32, RK_DOT_F16, RK_DOT_Q8_0, RK_DOT_Q4_0, RK_MAD_F32, RK_MAD_F16, RK_MAD_Q8_0, RK_MAD_Q4_0,
    RK_SCALE, RK_EXP_SUB, RK_SWIGLU, RK_GELU, RK_GEGLU, RK_SWIGLU_OAI, RK_F32_TO_F16, RK_ROWS8, RK_ATTN8, RK_COUNT
};
static const char *rk_names[RK_COUNT] = {"dot_f32", "dot_f16", "dot_q8_0", "dot_q4_0", "mad_f32", "mad_f16",
                                         "mad_q8_0", "mad_q4_0", "scale", "exp_sub", "swiglu", "gelu", "geglu",
                                         "swiglu_oai", "f32_to_f16", "rows8", "attn8_rowwise"};

/* one softmax attention of 8 query rows over NPOS f16 positions, out of the row
 * kernels the way a decode without rows8 uses them: scores by dot_f16, exp_sub,
 * then mad_f16 per position and scale */
static void attn8_rowwise(const qfit_row_kernels *rk)
{
    const float *q = at(o_aq);
    const uint16_t *K = at(o_ak), *V = at(o_av);
    float *out = at(o_aout), *s = at(o_as);
    for (int r = 0; r < 8; r++) {
        float mx = -1e30f;
        for (int p = 0; p < NPOS; p++) {
            s[p] = rk->dot_f16(q + r * HD, K + (size_t)p * HD, HD) * 0.088f;
            if (s[p] > mx) mx = s[p];
        }
        rk->exp_sub(s, mx, NPOS);
        float sum = 0;
        for (int p = 0; p < NPOS; p++) sum += s[p];
        float *o = out + r * HD;
        memset(o, 0, HD * 4);
        for (int p = 0; p < NPOS; p++) rk->mad_f16(o, V + (size_t)p * HD, s[p], HD);
        rk->scale(o, 1.0f / sum, HD);
    }
}

static void run_row(const ncase *c)
{
    const qfit_row_kernels *rk = c->rk;
    switch (c->which) {
    case RK_DOT_F32: nc_sink = rk->dot_f32(at(o_q), at(o_kf32), HD); break;
    case RK_DOT_F16: nc_sink = rk->dot_f16(at(o_q), at(o_kf16), HD); break;
    case RK_DOT_Q8_0: nc_sink = rk->dot_q8_0(at(o_q8), at(o_kq8), HD); break;
    case RK_DOT_Q4_0: nc_sink = rk->dot_q4_0(at(o_q8), at(o_kq4), HD); break;
    case RK_MAD_F32: rk->mad_f32(next_copy(o_acc, HD), at(o_kf32), 0.25f, HD); break;
    case RK_MAD_F16: rk->mad_f16(next_copy(o_acc, HD), at(o_kf16), 0.25f, HD); break;
    case RK_MAD_Q8_0: rk->mad_q8_0(next_copy(o_acc, HD), at(o_kq8), 0.25f, HD); break;
    case RK_MAD_Q4_0: rk->mad_q4_0(next_copy(o_acc, HD), at(o_kq4), 0.25f, HD); break;
    case RK_SCALE: rk->scale(next_copy(o_acc, HD), 0.5f, HD); break;
    case RK_EXP_SUB: rk->exp_sub(next_copy(o_scores, NS), 2.0f, NS); break;
    case RK_SWIGLU: rk->swiglu(next_copy(o_g, NE), at(o_u), NE); break;
    case RK_GELU: rk->gelu(next_copy(o_g, NE), NE); break;
    case RK_GEGLU: rk->geglu(next_copy(o_g, NE), at(o_u), NE); break;
    case RK_SWIGLU_OAI: rk->swiglu_oai(next_copy(o_g, NE), at(o_u), NE, 1.702f, 7.0f); break;
    case RK_F32_TO_F16: rk->f32_to_f16(at(o_g), at(o_h16), NE); break;
    case RK_ROWS8: {
        const float *q[8];
        float *out[8];
        int npos[8];
        for (int r = 0; r < 8; r++) {
            q[r] = (const float *)at(o_aq) + r * HD;
            out[r] = (float *)at(o_aout) + r * HD;
            npos[r] = NPOS;
        }
        rk->rows8(QFIT_TYPE_F16, QFIT_TYPE_F16, HD, HD, 8, q, 0, npos, 0.088f, at(o_ak), HD * 2, at(o_av),
                  HD * 2, out, NULL, at(o_ascr));
        break;
    }
    case RK_ATTN8: attn8_rowwise(rk); break;
    }
}

/* whether row kernel `which` of rk is the scalar table's function; -1 when rk has none */
static int rk_is_scalar(const qfit_row_kernels *rk, int which)
{
    const qfit_row_kernels *s = &qfit_row_kernels_scalar;
#define RKS(f) return rk->f ? rk->f == s->f : -1
    switch (which) {
    case RK_DOT_F32: RKS(dot_f32);
    case RK_DOT_F16: RKS(dot_f16);
    case RK_DOT_Q8_0: RKS(dot_q8_0);
    case RK_DOT_Q4_0: RKS(dot_q4_0);
    case RK_MAD_F32: RKS(mad_f32);
    case RK_MAD_F16: RKS(mad_f16);
    case RK_MAD_Q8_0: RKS(mad_q8_0);
    case RK_MAD_Q4_0: RKS(mad_q4_0);
    case RK_SCALE: RKS(scale);
    case RK_EXP_SUB: RKS(exp_sub);
    case RK_SWIGLU: RKS(swiglu);
    case RK_GELU: RKS(gelu);
    case RK_GEGLU: RKS(geglu);
    case RK_SWIGLU_OAI: RKS(swiglu_oai);
    case RK_F32_TO_F16: RKS(f32_to_f16);
    case RK_ROWS8: RKS(rows8);
    case RK_ATTN8: return rk->dot_f16 == s->dot_f16 && rk->exp_sub == s->exp_sub && rk->mad_f16 == s->mad_f16;
    }
#undef RKS
    return -1;
}

/* the method's own check: 1000 NOPs in one asm block; the script requires the
 * per-call count to be 1000 plus the call's few instructions */
__attribute__((noinline)) static void calib_nops(void)
{
    __asm__ volatile(".rept 1000\n\tnop\n\t.endr" ::: "memory");
}

static void run_calib(const ncase *c)
{
    calib_nops();
}

static const char *g_kinds;   /* NULL: all */

/* whether kernel kind `kind` ("gemm", "row", ...) was asked for */
static bool wanted(const char *kind)
{
    if (!g_kinds) return true;
    const size_t n = strlen(kind);
    for (const char *p = g_kinds; *p;) {
        const char *q = strchr(p, ',');
        const size_t len = q ? (size_t)(q - p) : strlen(p);
        if (len == n && strncmp(p, kind, n) == 0) return true;
        if (!q) break;
        p = q + 1;
    }
    return false;
}

static void measure(const ncase *c, const char *kind, const char *kernel, const char *type, const char *size,
                    const char *path, double elems)
{
    if (!wanted(kind)) return;
    printf("case %s %s %s %s %.0f\n", kernel, type, size, path, elems);
    fflush(stdout);
    replicate();
    g_copy = 0;
    /* warm-up: lazy initialisation (tables, pthread_once), first touches, the
     * allocator's first growth */
    c->run(c);
    c->run(c);
    for (int n = 1; n <= 3; n++) {
        nc_begin();
        for (int i = 0; i < n; i++) c->run(c);
        nc_end();
    }
}

static int run_all(qfit_isa isa)
{
    if (qfit_isa_select(isa) != 0) {
        fprintf(stderr, "neon_count: ISA %s is not available here\n", qfit_isa_name(isa));
        return -1;
    }
    const qk_table *t = qk_table_for(isa), *sc = qk_table_for(QFIT_ISA_SCALAR);
    const bool is_scalar = isa == QFIT_ISA_SCALAR;
    char size[64], path[96];
    printf("addr %p %p\n", (void *)(uintptr_t)nc_begin, (void *)(uintptr_t)nc_end);
    {
        ncase c = {run_calib, NULL, t, NULL, 0};
        measure(&c, "calib", "calib", "-", "nop1000", "asm", 1000);
    }
    for (int i = 0; i < g_ntypes; i++) {
        const type_data *d = &g_types[i];
        const int w = d->type;
        const char *tn = qfit_type_name(w);
        const bool own_dot = t->dot[w] && (is_scalar || t->dot[w] != sc->dot[w]);
        ncase c = {run_dot, d, t, NULL, 0};
        if (!t->dot[w]) continue;
        snprintf(size, sizeof size, "k=%d", KD);
        measure(&c, "dot", "dot", tn, size, own_dot ? "own" : "scalar-fallback", KD);

        c.run = run_dotn;
        snprintf(size, sizeof size, "%dx%d", QK_DOTN, KD);
        if (t->dotn[w]) snprintf(path, sizeof path, "dotn%s", is_scalar || t->dotn[w] != sc->dotn[w] ? "" : "(scalar)");
        else snprintf(path, sizeof path, "dot-per-row%s", own_dot ? "" : "(scalar)");
        measure(&c, "dotn", "dotn", tn, size, path, (double)QK_DOTN * KD);

        c.run = run_gemm;
        snprintf(size, sizeof size, "%dx%dx%d", NG, MG, KG);
        const qk_panel *pn = &t->panel[w];
        if (pn->direct && MG >= pn->min_m) snprintf(path, sizeof path, "direct");
        else if (pn->run && MG >= pn->min_m) snprintf(path, sizeof path, "panel-R%d", pn->rows);
        else snprintf(path, sizeof path, "dot-pairs%s", own_dot ? "" : "(scalar)");
        measure(&c, "gemm", "gemm", tn, size, path, (double)NG * MG * KG);
    }
    /* activation quantizers (vec-dot types) */
    bool seen[QFIT_TYPE_COUNT] = {false};
    for (int i = 0; i < g_ntypes; i++) {
        const int vd = g_types[i].vd;
        if (seen[vd] || !t->quant[vd]) continue;
        seen[vd] = true;
        ncase c = {run_quant, NULL, t, NULL, vd};
        snprintf(size, sizeof size, "n=%d", KD);
        measure(&c, "quant", "quant", qfit_type_name(vd), size,
                is_scalar || t->quant[vd] != sc->quant[vd] ? "own" : "scalar-fallback", KD);
    }
    /* row kernels of the active ISA (qfit_row_kernels_active follows qfit_isa_select) */
    const qfit_row_kernels *rk = qfit_row_kernels_active();
    for (int k = 0; k < RK_COUNT; k++) {
        const int s = rk_is_scalar(rk, k);
        if (s < 0) continue;   /* the table has no such kernel (rows8) */
        ncase c = {run_row, NULL, t, rk, k};
        const char *kind = "row";
        int n = NE;
        if (k <= RK_MAD_Q4_0 || k == RK_SCALE) n = HD;
        else if (k == RK_EXP_SUB) n = NS;
        if (k == RK_ROWS8 || k == RK_ATTN8) {
            snprintf(size, sizeof size, "8x%dpos,hd%d", NPOS, HD);
            kind = "attn";
        } else {
            snprintf(size, sizeof size, "n=%d", n);
        }
        /* gelu, geglu and swiglu_oai are one scalar function in every table */
        const bool shared = k == RK_GELU || k == RK_GEGLU || k == RK_SWIGLU_OAI;
        const char *p = is_scalar || !s ? "own" : shared ? "shared-scalar" : "scalar-fallback";
        char kname[48];
        snprintf(kname, sizeof kname, "%s:%s", kind, rk_names[k]);
        measure(&c, kind, kname, kind[0] == 'a' ? "f16" : "-", size, p,
                kind[0] == 'a' ? 8.0 * NPOS * HD : (double)n);
    }
    printf("end\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: neon_count gen FILE | neon_count run ISA FILE [KINDS]\n");
        return 2;
    }
    layout();
    g_arena = aligned_alloc(64, g_arena_size);
    if (!g_arena) return 1;
    memset(g_arena, 0, g_arena_size);
    if (strcmp(argv[1], "gen") == 0) {
        if (qfit_isa_select(QFIT_ISA_SCALAR) != 0 || generate() != 0) return 1;
        FILE *f = fopen(argv[2], "wb");
        if (!f || fwrite(g_arena, 1, g_arena_size, f) != g_arena_size || fclose(f) != 0) {
            fprintf(stderr, "neon_count: cannot write %s\n", argv[2]);
            return 1;
        }
        return 0;
    }
    if (strcmp(argv[1], "run") != 0 || argc < 4 || argc > 5) {
        fprintf(stderr, "usage: neon_count gen FILE | neon_count run ISA FILE [KINDS]\n");
        return 2;
    }
    int isa = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(argv[2], qfit_isa_name((qfit_isa)i)) == 0) isa = i;
    if (isa < 0) {
        fprintf(stderr, "neon_count: unknown ISA %s\n", argv[2]);
        return 2;
    }
    FILE *f = fopen(argv[3], "rb");
    if (!f || fread(g_arena, 1, g_arena_size, f) != g_arena_size || fgetc(f) != EOF) {
        fprintf(stderr, "neon_count: %s is missing or was written by another build (size)\n", argv[3]);
        return 1;
    }
    fclose(f);
    if (argc == 5) g_kinds = argv[4];
    return run_all((qfit_isa)isa) ? 1 : 0;
}
