/* Memory bandwidth, STREAM-like: how fast can 1..N threads stream a buffer much
 * larger than the last-level cache?
 *
 *   cc -O2 -march=native -pthread bench/bandwidth.c -o build/bench/bandwidth
 *   build/bench/bandwidth [--threads N] [--size MiB] [--reps R] [--no-copy] [--tsv]
 *
 * read: every thread sums its slice of one shared buffer (64-bit adds on wide vectors);
 *       bytes counted = buffer size.
 * copy: every thread copies its slice of a second buffer into a third;
 *       bytes counted = 2 x buffer size (read + write, as STREAM counts; the
 *       write-allocate reads the CPU may add are not counted).
 * GB/s are 10^9 bytes per second. For each thread count the best of R passes is
 * reported (STREAM's convention), with the median next to it.
 *
 * Not part of libqfit; the Makefile does not build it (bench/common.sh does). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* 64-byte vector of 64-bit lanes: the compiler lowers it to whatever -march allows
 * (AVX-512, 2 x AVX2, 4 x SSE2, NEON...). */
typedef uint64_t v8u64 __attribute__((vector_size(64)));

#define MAX_THREADS 256
#define ALIGN 4096

typedef enum { OP_INIT, OP_READ, OP_COPY, OP_QUIT } op_kind;

typedef struct {
    int            nthreads;      /* threads taking part in the current pass */
    op_kind        op;
    unsigned char *a, *b, *c;     /* a: read buffer; b -> c: copy */
    size_t         bytes;         /* size of each buffer */
    pthread_barrier_t start, done;
} shared_state;

typedef struct {
    shared_state *s;
    int           id;
    uint64_t      sink;
} worker;

static shared_state g_s;
static volatile uint64_t g_sink;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The [lo, hi) byte range of thread id's slice, in whole 64-byte vectors. */
static void slice(size_t bytes, int id, int n, size_t *lo, size_t *hi)
{
    size_t nv = bytes / sizeof(v8u64);
    *lo = nv * (size_t)id / (size_t)n * sizeof(v8u64);
    *hi = nv * (size_t)(id + 1) / (size_t)n * sizeof(v8u64);
}

static uint64_t read_sum(const unsigned char *p, size_t n)
{
    const v8u64 *v = (const v8u64 *)(const void *)p;
    size_t nv = n / sizeof(v8u64), i = 0;
    v8u64 s0 = { 0 }, s1 = { 0 }, s2 = { 0 }, s3 = { 0 };
    for (; i + 4 <= nv; i += 4) {
        s0 += v[i];
        s1 += v[i + 1];
        s2 += v[i + 2];
        s3 += v[i + 3];
    }
    for (; i < nv; i++) s0 += v[i];
    v8u64 s = s0 + s1 + s2 + s3;
    uint64_t r = 0;
    for (int k = 0; k < 8; k++) r += s[k];
    return r;
}

static void copy_vec(unsigned char *dst, const unsigned char *src, size_t n)
{
    v8u64 *d = (v8u64 *)(void *)dst;
    const v8u64 *s = (const v8u64 *)(const void *)src;
    size_t nv = n / sizeof(v8u64);
    for (size_t i = 0; i < nv; i++) d[i] = s[i];
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    shared_state *s = w->s;
    for (;;) {
        pthread_barrier_wait(&s->start);
        if (s->op == OP_QUIT) break;
        if (w->id < s->nthreads) {
            size_t lo, hi;
            slice(s->bytes, w->id, s->nthreads, &lo, &hi);
            switch (s->op) {
            case OP_INIT: /* first touch by the thread that will read it */
                for (size_t i = lo; i < hi; i += 8) {
                    uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ull;
                    memcpy(s->a + i, &x, 8);
                    memcpy(s->b + i, &x, 8);
                    memset(s->c + i, 0, 8);
                }
                break;
            case OP_READ: w->sink += read_sum(s->a + lo, hi - lo); break;
            case OP_COPY: copy_vec(s->c + lo, s->b + lo, hi - lo); break;
            default: break;
            }
        }
        pthread_barrier_wait(&s->done);
    }
    return NULL;
}

/* One pass with n threads; returns seconds (start barrier to end barrier). */
static double run_pass(op_kind op, int n)
{
    g_s.op = op;
    g_s.nthreads = n;
    double t0 = now_s();
    pthread_barrier_wait(&g_s.start);
    pthread_barrier_wait(&g_s.done);
    return now_s() - t0;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static unsigned char *alloc_buf(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, ALIGN, bytes) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE); /* advisory; failure is fine */
#endif
    return p;
}

/* Size of the largest cache of cpu0 as sysfs reports it (glibc's sysconf value
 * is wrong on some AMD parts: it multiplies by the sharing CPUs); sysconf as a
 * fallback. */
static long llc_bytes(void)
{
    long v = -1;
    for (int idx = 0; idx < 8; idx++) {
        char path[128], buf[64];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", idx);
        FILE *f = fopen(path, "r");
        if (!f) break;
        if (fgets(buf, sizeof buf, f)) {
            char *end;
            long k = strtol(buf, &end, 10);
            if (*end == 'K') k *= 1024;
            else if (*end == 'M') k *= 1024 * 1024;
            if (k > v) v = k;
        }
        fclose(f);
    }
#ifdef _SC_LEVEL3_CACHE_SIZE
    if (v <= 0) v = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
    return v;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: bandwidth [--threads N] [--size MiB] [--reps R] [--no-copy] [--tsv]\n"
        "  Streams buffers much larger than the last-level cache and reports memory\n"
        "  bandwidth in GB/s (10^9 B/s) for 1..N threads: read (sum) and copy.\n"
        "  --threads N  largest thread count (default: online CPUs)\n"
        "  --size MiB   size of each buffer (default: 8 x LLC, at least 256, at most 2048)\n"
        "  --reps R     passes per thread count; best and median reported (default 5)\n"
        "  --no-copy    read only\n"
        "  --tsv        machine-readable: 'op<TAB>threads<TAB>best_GBps<TAB>median_GBps'\n");
}

static int parse_pos(const char *s, long max, long *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno || v < 1 || v > max) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    long maxt = ncpu > 0 ? ncpu : 1, size_mib = 0, reps = 5;
    int do_copy = 1, tsv = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!strcmp(a, "--no-copy")) { do_copy = 0; continue; }
        if (!strcmp(a, "--tsv")) { tsv = 1; continue; }
        long *dst = !strcmp(a, "--threads") || !strcmp(a, "-t") ? &maxt
                  : !strcmp(a, "--size") ? &size_mib
                  : !strcmp(a, "--reps") ? &reps : NULL;
        long lim = dst == &maxt ? MAX_THREADS : dst == &size_mib ? (1L << 20) : 1000;
        if (!dst) { fprintf(stderr, "bandwidth: unknown option '%s'\n", a); usage(stderr); return 2; }
        if (i + 1 >= argc || parse_pos(argv[i + 1], lim, dst) < 0) {
            fprintf(stderr, "bandwidth: %s needs a number from 1 to %ld\n", a, lim);
            return 2;
        }
        i++;
    }
    long llc = llc_bytes();
    if (size_mib == 0) {
        size_mib = 256;
        if (llc > 0 && 8 * llc / (1 << 20) > size_mib) size_mib = 8 * llc / (1 << 20);
        if (size_mib > 2048) size_mib = 2048;
    }
    size_t bytes = (size_t)size_mib << 20;
    if (llc > 0 && bytes < 4 * (size_t)llc)
        fprintf(stderr, "bandwidth: warning: %ld MiB is under 4 x the LLC (%ld MiB); "
                        "caches will inflate the numbers\n", size_mib, llc >> 20);

    g_s.bytes = bytes;
    g_s.a = alloc_buf(bytes);
    g_s.b = do_copy ? alloc_buf(bytes) : NULL;
    g_s.c = do_copy ? alloc_buf(bytes) : NULL;
    if (!g_s.a || (do_copy && (!g_s.b || !g_s.c))) {
        fprintf(stderr, "bandwidth: cannot allocate %d x %ld MiB\n", do_copy ? 3 : 1, size_mib);
        return 1;
    }
    if (!do_copy) { g_s.b = g_s.a; g_s.c = g_s.a; } /* init writes stay harmless */

    int nt = (int)maxt;
    worker *ws = calloc((size_t)nt, sizeof *ws);
    pthread_t *th = calloc((size_t)nt, sizeof *th);
    if (!ws || !th) { fprintf(stderr, "bandwidth: out of memory\n"); return 1; }
    /* workers + the timing (main) thread */
    pthread_barrier_init(&g_s.start, NULL, (unsigned)nt + 1);
    pthread_barrier_init(&g_s.done, NULL, (unsigned)nt + 1);
    for (int i = 0; i < nt; i++) {
        ws[i].s = &g_s;
        ws[i].id = i;
        if (pthread_create(&th[i], NULL, worker_main, &ws[i]) != 0) {
            fprintf(stderr, "bandwidth: cannot start thread %d\n", i);
            return 1;
        }
    }
    run_pass(OP_INIT, nt);

    if (!tsv) {
        printf("# bandwidth: buffer %ld MiB%s, LLC %ld MiB, %ld online CPUs, best/median of %ld passes\n",
               size_mib, do_copy ? " (x3 for copy)" : "", llc > 0 ? llc >> 20 : -1L, ncpu, reps);
        printf("| threads | read GB/s (best) | read median |%s\n",
               do_copy ? " copy GB/s (best) | copy median |" : "");
        printf("| ------: | ---------------: | ----------: |%s\n",
               do_copy ? " ---------------: | ----------: |" : "");
    }
    double *t = calloc((size_t)reps, sizeof *t);
    if (!t) return 1;
    for (int n = 1; n <= nt; n++) {
        double res[2][2] = { { 0, 0 }, { 0, 0 } };
        for (int k = 0; k < 1 + do_copy; k++) {
            op_kind op = k ? OP_COPY : OP_READ;
            double counted = k ? 2.0 * (double)bytes : (double)bytes;
            run_pass(op, n); /* warm-up: TLB, frequency */
            for (long r = 0; r < reps; r++) t[r] = run_pass(op, n);
            qsort(t, (size_t)reps, sizeof *t, cmp_double);
            res[k][0] = counted / t[0] / 1e9;
            res[k][1] = counted / t[reps / 2] / 1e9;
        }
        if (tsv) {
            printf("read\t%d\t%.2f\t%.2f\n", n, res[0][0], res[0][1]);
            if (do_copy) printf("copy\t%d\t%.2f\t%.2f\n", n, res[1][0], res[1][1]);
        } else {
            printf("| %7d | %16.2f | %11.2f |", n, res[0][0], res[0][1]);
            if (do_copy) printf(" %16.2f | %11.2f |", res[1][0], res[1][1]);
            printf("\n");
        }
        fflush(stdout);
    }
    g_s.op = OP_QUIT;
    pthread_barrier_wait(&g_s.start);
    uint64_t sink = 0;
    for (int i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        sink += ws[i].sink;
    }
    g_sink = sink;
    free(t);
    free(ws);
    free(th);
    free(g_s.a);
    if (do_copy) { free(g_s.b); free(g_s.c); }
    return 0;
}
