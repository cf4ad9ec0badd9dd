/* Writes the MXFP4 reference files of tests/data/mxfp4 with llama.cpp's ggml
 * (the peer's prebuilt libraries): see README.md and make-refs.sh.
 *   usage: gen-refs CPU_LIB_GENERIC CPU_LIB_AVX2 OUTDIR
 * CPU_LIB_*: ggml CPU backend variants (libggml-cpu-x64.so: ggml's generic C dot;
 * libggml-cpu-haswell.so: its AVX2 dot). Outputs:
 *   refs.txt   FNV-1a 64 of ggml_quantize_chunk(MXFP4) of mx_block(b), whole and per MX_QGROUP blocks
 *   deq.f32    MX_NDEQ x 32 floats: the type traits' to_float of mx_deq_block(b)
 *   act.q8_0   MX_NA rows of MX_DOT_BLOCKS Q8_0 blocks: ggml_quantize_chunk(Q8_0) of mx_activation(r)
 *   dot.f32    MX_NDOT x 2 floats: ggml_vec_dot_mxfp4_q8_0_generic and the AVX2 vec_dot
 *   refs.txt   counts and the FNV-1a hashes of the inputs */
#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "ggml.h"
#include "ggml-cpu.h"
#include "mxfp4_cases.h"

static void die(const char *what)
{
    fprintf(stderr, "gen-refs: %s\n", what);
    exit(1);
}

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) die(path);
}

typedef void (*vec_dot_fn)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nrc);

/* the MXFP4 vec_dot of a CPU variant library: the named symbol, or the type traits' */
static vec_dot_fn load_dot(const char *lib, const char *sym)
{
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) die(dlerror());
    void (*cpu_init)(void) = (void (*)(void))dlsym(h, "ggml_cpu_init");
    if (!cpu_init) die("ggml_cpu_init not found");
    cpu_init();
    if (sym) {
        vec_dot_fn f = (vec_dot_fn)dlsym(h, sym);
        if (!f) die(sym);
        return f;
    }
    const struct ggml_type_traits_cpu *(*traits)(enum ggml_type) =
        (const struct ggml_type_traits_cpu *(*)(enum ggml_type))dlsym(h, "ggml_get_type_traits_cpu");
    if (!traits) die("ggml_get_type_traits_cpu not found");
    const struct ggml_type_traits_cpu *t = traits(GGML_TYPE_MXFP4);
    if (!t->vec_dot || t->vec_dot_type != GGML_TYPE_Q8_0) die("MXFP4 vec_dot is not the Q8_0 one");
    return t->vec_dot;
}

int main(int argc, char **argv)
{
    if (argc != 4) die("usage: gen-refs CPU_LIB_GENERIC CPU_LIB_AVX2 OUTDIR");
    const char *out = argv[3];
    const size_t bq = ggml_type_size(GGML_TYPE_MXFP4), ba = ggml_type_size(GGML_TYPE_Q8_0);
    if (bq != 17 || ba != 34) die("unexpected block sizes");

    /* quantizer */
    static float x[MX_NQ * 32];
    static uint8_t q[MX_NQ * 17];
    uint64_t h_in = MX_FNV_INIT;
    for (int b = 0; b < MX_NQ; b++) mx_block(b, x + 32 * b);
    h_in = mx_fnv1a(h_in, x, sizeof x);
    if (ggml_quantize_chunk(GGML_TYPE_MXFP4, x, q, 0, MX_NQ, 32, NULL) != sizeof q) die("quantize_chunk");
    /* the blocks themselves are not kept (binary data stays out of the repository): their
     * FNV-1a 64 digest, whole and per group of MX_QGROUP blocks, goes into refs.txt */

    /* dequantizer */
    static uint8_t dq[MX_NDEQ * 17];
    static float deq[MX_NDEQ * 32];
    for (int b = 0; b < MX_NDEQ; b++) mx_deq_block(b, dq + 17 * b);
    ggml_get_type_traits(GGML_TYPE_MXFP4)->to_float(dq, deq, MX_NDEQ * 32);
    write_file(out, "deq.f32", deq, sizeof deq);

    /* activations */
    static float a[MX_NA * MX_DOT_N];
    static uint8_t aq[MX_NA * MX_DOT_BLOCKS * 34];
    for (int r = 0; r < MX_NA; r++) mx_activation(r, a + (size_t)r * MX_DOT_N);
    const uint64_t h_act = mx_fnv1a(MX_FNV_INIT, a, sizeof a);
    if (ggml_quantize_chunk(GGML_TYPE_Q8_0, a, aq, 0, MX_NA, MX_DOT_N, NULL) != sizeof aq) die("quantize q8_0");
    write_file(out, "act.q8_0", aq, sizeof aq);

    /* weight rows of the dot set: blocks of that quantization in mx_dot_block_order */
    static uint8_t w[MX_NW * MX_DOT_BLOCKS * 17];
    int got = 0;
    for (int i = 0; i < MX_NQ && got < MX_NW * MX_DOT_BLOCKS; i++) {
        const uint8_t *blk = q + 17 * mx_dot_block_order(i);
        if (blk[0] <= MX_DOT_MAX_E) memcpy(w + 17 * got++, blk, 17);
    }
    if (got != MX_NW * MX_DOT_BLOCKS) die("not enough dot blocks");
    vec_dot_fn generic = load_dot(argv[1], "ggml_vec_dot_mxfp4_q8_0_generic");
    vec_dot_fn avx2 = load_dot(argv[2], NULL);
    static float dots[MX_NDOT * 2];
    for (int p = 0; p < MX_NDOT; p++) {
        const int r = p / 2, ar = (r + p % 2) % MX_NA;
        const uint8_t *wr = w + (size_t)r * MX_DOT_BLOCKS * 17;
        const uint8_t *arow = aq + (size_t)ar * MX_DOT_BLOCKS * 34;
        generic(MX_DOT_N, &dots[2 * p], 0, wr, 0, arow, 0, 1);
        avx2(MX_DOT_N, &dots[2 * p + 1], 0, wr, 0, arow, 0, 1);
    }
    write_file(out, "dot.f32", dots, sizeof dots);

    char txt[4096];
    int n = snprintf(txt, sizeof txt,
                     "quant_blocks %d\ndeq_blocks %d\nact_rows %d\ndot_pairs %d\ndot_n %d\n"
                     "inputs_fnv1a64 %016" PRIx64 "\nacts_fnv1a64 %016" PRIx64 "\nquant_fnv1a64 %016" PRIx64 "\n",
                     MX_NQ, MX_NDEQ, MX_NA, MX_NDOT, MX_DOT_N, h_in, h_act, mx_fnv1a(MX_FNV_INIT, q, sizeof q));
    for (int g = 0; g < MX_NQ / MX_QGROUP; g++)
        n += snprintf(txt + n, sizeof txt - (size_t)n, "quant_g%02d_fnv1a64 %016" PRIx64 "\n", g,
                      mx_fnv1a(MX_FNV_INIT, q + (size_t)17 * MX_QGROUP * g, (size_t)17 * MX_QGROUP));
    write_file(out, "refs.txt", txt, (size_t)n);
    return 0;
}
