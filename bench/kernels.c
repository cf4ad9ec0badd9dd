/* Kernel micro-benchmark: vec_dot weight bandwidth per type and gemm GFLOP/s.
 *   bench/kernels [-isa scalar|avx2|avx512|neon] [-m M] [-t SECONDS] [type ...]
 * Single thread. k = n = 4096; gemm with m = 1, m = 64 and m = M (default 512).
 * Each measurement runs for about SECONDS (default 0.3) and keeps the best
 * repetition, so short runs on a shared machine stay comparable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qfit/kernels.h"
#include "qfit/quant.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fill(float *x, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 2.0f;
    }
}

/* best GFLOP/s of qfit_gemm over m activation rows, repeated for about tmin s */
static double bench_gemm(int type, int64_t K, int64_t N, const void *W, size_t ws,
                         const void *A, size_t as, int64_t m, float *Y, double tmin)
{
    double best = 1e30, t0 = now();
    do {
        double t1 = now();
        qfit_gemm(type, K, W, ws, 0, N, A, as, m, Y, N);
        double el = now() - t1;
        if (el < best) best = el;
    } while (now() - t0 < tmin);
    return 2.0 * (double)K * (double)N * (double)m / best / 1e9;
}

static const char *default_types[] = {"q4_K", "q6_K", "q8_0", "q4_0", "q5_K", "f16", "f32",
                                      "bf16", "q4_1", "q5_0", "q5_1", "q2_K", "q3_K",
                                      "iq4_nl", "iq4_xs"};

int main(int argc, char **argv)
{
    const int64_t K = 4096, N = 4096;
    int64_t M = 512;
    double tmin = 0.3;
    const char **types = default_types;
    int ntypes = (int)(sizeof default_types / sizeof *default_types);
    int argi = 1;
    for (; argi < argc && argv[argi][0] == '-'; argi++) {
        if (!strcmp(argv[argi], "-isa") && argi + 1 < argc) {
            const char *nm = argv[++argi];
            int ok = -1;
            for (int i = 0; i < 4; i++)
                if (!strcmp(nm, qfit_isa_name((qfit_isa)i))) ok = qfit_isa_select((qfit_isa)i);
            if (ok != 0) { fprintf(stderr, "ISA %s not available\n", nm); return 1; }
        } else if (!strcmp(argv[argi], "-m") && argi + 1 < argc) {
            M = atoll(argv[++argi]);
            if (M < 64) M = 64;
        } else if (!strcmp(argv[argi], "-t") && argi + 1 < argc) {
            tmin = atof(argv[++argi]);
        } else {
            fprintf(stderr, "usage: %s [-isa NAME] [-m M] [type ...]\n", argv[0]);
            return 2;
        }
    }
    if (argi < argc) { types = (const char **)(argv + argi); ntypes = argc - argi; }
    printf("isa %s, k=%lld n=%lld, single thread\n", qfit_isa_name(qfit_isa_active()),
           (long long)K, (long long)N);
    printf("%-7s %12s %10s %10s %10s   (gemm GFLOP/s)\n", "type", "vec_dot GB/s", "m=1", "m=64", "m=M");

    float *wf = malloc((size_t)(N * K) * 4), *af = malloc((size_t)(M * K) * 4);
    float *Y = malloc((size_t)(M * N) * 4);
    if (!wf || !af || !Y) return 1;
    fill(wf, (size_t)(N * K), 1);
    fill(af, (size_t)(M * K), 2);
    for (int t = 0; t < ntypes; t++) {
        int type = qfit_type_from_name(types[t]);
        int vd = type >= 0 ? qfit_vec_dot_type(type) : -1;
        if (vd < 0) { printf("%-7s unsupported\n", types[t]); continue; }
        size_t ws = qfit_row_size(type, K), as = qfit_row_size(vd, K);
        void *W = malloc(ws * (size_t)N), *A = malloc(as * (size_t)M);
        char err[200];
        if (!W || !A || qfit_quantize_rows(type, wf, W, N, K, err, sizeof err) == 0) {
            printf("%-7s cannot quantize\n", types[t]);
            free(W); free(A);
            continue;
        }
        for (int64_t j = 0; j < M; j++)
            qfit_quantize_activations(vd, af + j * K, (char *)A + (size_t)j * as, K);
        /* vec_dot: stream all N weight rows against one activation row */
        volatile float sink = 0;
        int reps = 0;
        double t0 = now(), el;
        do {
            for (int64_t i = 0; i < N; i++) sink += qfit_vec_dot(type, K, (char *)W + (size_t)i * ws, A);
            reps++;
            el = now() - t0;
        } while (el < tmin);
        double gbs = (double)ws * N * reps / el / 1e9;
        double gf1 = bench_gemm(type, K, N, W, ws, A, as, 1, Y, tmin);
        double gf64 = bench_gemm(type, K, N, W, ws, A, as, 64, Y, tmin);
        double gfm = bench_gemm(type, K, N, W, ws, A, as, M, Y, tmin);
        printf("%-7s %12.2f %10.2f %10.2f %10.2f\n", types[t], gbs, gf1, gf64, gfm);
        fflush(stdout);
        (void)sink;
        free(W); free(A);
    }
    free(wf); free(af); free(Y);
    return 0;
}
