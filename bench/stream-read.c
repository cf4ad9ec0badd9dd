/* bench/stream-read.c: how fast one core reads a buffer of a given size (x86-64 with
 * AVX-512F). A sum over the buffer, 64 floats per iteration, with 512-bit loads, 256-bit
 * loads, and 512-bit loads plus prefetcht1 1, 4 and 16 KiB ahead; best of 30 passes, GB/s.
 * It bounds what a decode token can get from weights of that size on one thread
 * (BENCHMARKS.md, "The 7M model's F32 token on one core").
 *   cc -O2 -Wall -Wextra bench/stream-read.c -o /tmp/stream-read && /tmp/stream-read 28
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

__attribute__((target("avx512f"))) static float sum512(const float *p, size_t n, size_t ahead)
{
    __m512 a = _mm512_setzero_ps(), b = a, c = a, d = a;
    for (size_t i = 0; i < n; i += 64) {
        if (ahead)
            for (int l = 0; l < 4; l++) _mm_prefetch((const char *)(p + i + ahead + 16 * l), _MM_HINT_T1);
        a = _mm512_add_ps(a, _mm512_load_ps(p + i));
        b = _mm512_add_ps(b, _mm512_load_ps(p + i + 16));
        c = _mm512_add_ps(c, _mm512_load_ps(p + i + 32));
        d = _mm512_add_ps(d, _mm512_load_ps(p + i + 48));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, d)));
}

__attribute__((target("avx2"))) static float sum256(const float *p, size_t n)
{
    __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
    for (size_t i = 0; i < n; i += 32) {
        a = _mm256_add_ps(a, _mm256_load_ps(p + i));
        b = _mm256_add_ps(b, _mm256_load_ps(p + i + 8));
        c = _mm256_add_ps(c, _mm256_load_ps(p + i + 16));
        d = _mm256_add_ps(d, _mm256_load_ps(p + i + 24));
    }
    float o[8];
    _mm256_storeu_ps(o, _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d)));
    return o[0] + o[7];
}

int main(int argc, char **argv)
{
    const long mb = argc > 1 ? atol(argv[1]) : 28;
    if (mb < 1 || mb > 4096) { fprintf(stderr, "usage: stream-read [MB 1..4096]\n"); return 2; }
    const size_t n = (size_t)mb << 18;                    /* floats */
    float *p = aligned_alloc(64, (n + 8192) * sizeof(float));   /* + room for the prefetch distance */
    if (!p) return 1;
    for (size_t i = 0; i < n + 8192; i++) p[i] = 1.0f / (float)(i % 7 + 1);
    static const char *const name[] = { "512-bit", "256-bit", "+pf 1K", "+pf 4K", "+pf 16K" };
    static const size_t ahead[] = { 0, 0, 256, 1024, 4096 };   /* floats */
    volatile float sink = 0;
    printf("%ld MB:", mb);
    for (int mode = 0; mode < 5; mode++) {
        double best = 1e9;
        for (int r = 0; r < 30; r++) {
            const double t = now();
            sink += mode == 1 ? sum256(p, n) : sum512(p, n, ahead[mode]);
            const double dt = now() - t;
            if (dt < best) best = dt;
        }
        printf("  %s %.1f GB/s", name[mode], (double)n * sizeof(float) / best / 1e9);
    }
    printf("\n");
    free(p);
    return 0;
}
