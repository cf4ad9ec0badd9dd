/* src/platform: the operating-system wrappers. The suite runs in the Linux build (the
 * Linux branches) and again in make check-portable, built with QFIT_PORTABLE_ONLY (the
 * POSIX branches, what a system that is not Linux compiles). */
#include <criterion/criterion.h>
#include <math.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "platform/platform.h"

/* the peak is at least what is resident now, and both are real sizes (a unit slip, KiB
 * for bytes, gives a few hundred "bytes") */
Test(platform, rss_and_peak)
{
    /* touch 8 MiB so that the process is surely larger than that */
    const size_t big = 8u << 20;
    volatile char *p = malloc(big);
    cr_assert(p);
    for (size_t i = 0; i < big; i += 4096) p[i] = (char)i;
    const size_t now = qfit_sys_rss_bytes(), peak = qfit_sys_peak_rss_bytes();
    cr_assert_geq(peak, big, "peak RSS %zu bytes, below the 8 MiB just touched", peak);
#if defined(__linux__) && !defined(QFIT_PORTABLE_ONLY)
    cr_assert_geq(now, big, "RSS %zu bytes, below the 8 MiB just touched", now);
#else
    cr_assert(now == 0 || now >= big, "RSS %zu bytes", now);   /* POSIX: unknown (0) */
#endif
    cr_assert(now == 0 || peak >= now, "peak %zu < now %zu", peak, now);
    free((void *)p);
}

Test(platform, ram_matches_sysconf)
{
    const uint64_t ram = qfit_sys_ram_bytes();
    const long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    cr_assert(pages > 0 && psz > 0);
    const double want = (double)pages * (double)psz;
    /* Linux: MemTotal, the same figure sysconf derives from */
    cr_assert(ram > 0.95 * want && ram < 1.05 * want, "RAM %llu bytes, sysconf says %.0f", (unsigned long long)ram,
              want);
}

/* Available memory: the kernel's estimate (Linux MemAvailable; the POSIX branch's
 * _SC_AVPHYS_PAGES, free pages only, is smaller), never more than the RAM and not nothing
 * on a running system. A wrapper that returned MemTotal or MemFree by mistake passes the
 * bounds; it is compared with /proc on Linux below. */
Test(platform, available_memory)
{
    const uint64_t avail = qfit_sys_avail_bytes(), ram = qfit_sys_ram_bytes();
    cr_assert_gt(avail, 0, "no figure for available memory");
    cr_assert_leq(avail, ram, "available %llu > RAM %llu", (unsigned long long)avail, (unsigned long long)ram);
#if defined(__linux__) && !defined(QFIT_PORTABLE_ONLY)
    FILE *f = fopen("/proc/meminfo", "r");
    cr_assert_not_null(f);
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    fclose(f);
    const double want = (double)kb * 1024;
    /* read a moment apart: within 5% (and 256 MiB) of each other */
    cr_assert(fabs((double)avail - want) < fmax(0.05 * want, 256.0 * (1 << 20)), "available %llu, /proc says %.0f",
              (unsigned long long)avail, want);
#endif
}

Test(platform, cpu_counts)
{
    const int n = qfit_sys_cpu_count(), perf = qfit_sys_perf_cpu_count();
    cr_assert_eq(n, (int)sysconf(_SC_NPROCESSORS_ONLN));
    cr_assert(perf >= 1 && perf <= n, "performance cores %d of %d", perf, n);
}

/* every byte of a request longer than getentropy's 256-byte limit gets filled, and two
 * draws differ */
Test(platform, random_fills_everything)
{
    unsigned char a[1000], b[1000];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    cr_assert_eq(qfit_sys_random(a, sizeof a, false), 0);
    cr_assert_eq(qfit_sys_random(b, sizeof b, true), 0);
    cr_assert(memcmp(a, b, sizeof a) != 0);
    /* a 64-byte run of zeros in random bytes: 2^-512; in an unfilled tail: certain */
    for (size_t i = 0; i + 64 <= sizeof a; i += 64) {
        int zero = 1;
        for (size_t j = i; j < i + 64; j++) zero &= a[j] == 0;
        cr_assert(!zero, "bytes %zu..%zu were not filled", i, i + 63);
    }
}

Test(platform, fdatasync_file_and_bad_fd)
{
    FILE *f = tmpfile();
    cr_assert(f);
    cr_assert_eq(fputs("data", f) >= 0, 1);
    cr_assert_eq(fflush(f), 0);
    cr_assert_eq(qfit_sys_fdatasync(fileno(f)), 0, "%s", strerror(errno));
    fclose(f);
    errno = 0;
    cr_assert_eq(qfit_sys_fdatasync(-1), -1);
    cr_assert_eq(errno, EBADF);
}

static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static struct timespec mono_in(double s)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long long ns = (long long)t.tv_sec * 1000000000 + t.tv_nsec + (long long)(s * 1e9);
    if (ns < 0) ns = 0;
    t.tv_sec = (time_t)(ns / 1000000000);
    t.tv_nsec = (long)(ns % 1000000000);
    return t;
}

/* a timed wait on a monotonic deadline ends with ETIMEDOUT, and not before the
 * deadline (a deadline taken on the wrong clock ends at once, or decades later) */
Test(platform, cond_deadline_is_monotonic)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c;
    qfit_sys_cond_init_mono(&c);
    pthread_mutex_lock(&m);
    const struct timespec past = mono_in(-1.0);
    cr_assert_eq(qfit_sys_cond_timedwait_mono(&c, &m, &past), ETIMEDOUT);
    const struct timespec soon = mono_in(0.05);
    const double want = (double)soon.tv_sec + 1e-9 * (double)soon.tv_nsec;
    int r;
    do r = qfit_sys_cond_timedwait_mono(&c, &m, &soon);   /* spurious wake-ups: 0, wait again */
    while (r == 0);
    cr_assert_eq(r, ETIMEDOUT);
    cr_assert_geq(mono_s(), want, "the wait ended before its deadline");
    pthread_mutex_unlock(&m);
    pthread_cond_destroy(&c);
}

typedef struct {
    pthread_mutex_t m;
    pthread_cond_t c;
    int flag;
} cond_case;

static void *signal_it(void *arg)
{
    cond_case *k = arg;
    pthread_mutex_lock(&k->m);
    k->flag = 1;
    pthread_cond_signal(&k->c);
    pthread_mutex_unlock(&k->m);
    return NULL;
}

Test(platform, cond_signal_wakes)
{
    cond_case k = {.m = PTHREAD_MUTEX_INITIALIZER};
    qfit_sys_cond_init_mono(&k.c);
    pthread_mutex_lock(&k.m);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, signal_it, &k), 0);
    const struct timespec far = mono_in(60.0);
    int r = 0;
    while (!k.flag && r == 0) r = qfit_sys_cond_timedwait_mono(&k.c, &k.m, &far);
    cr_assert_eq(r, 0);
    cr_assert_eq(k.flag, 1);
    pthread_mutex_unlock(&k.m);
    pthread_join(th, NULL);
    pthread_cond_destroy(&k.c);
}

static volatile sig_atomic_t g_usr1;
static void on_usr1(int sig) { g_usr1 = sig; }

/* readable data: 1 at once; an empty pipe and a pending signal that the wait's mask
 * lets through: -1 EINTR with the handler run (a wait that ignored the mask would
 * block: the alarm then ends the test as a failure) */
Test(platform, wait_readable_and_signal_mask)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    sigset_t usr1, old, during;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &old);
    during = old;
    sigdelset(&during, SIGUSR1);
    cr_assert_eq(write(fds[1], "x", 1), 1);
    cr_assert_eq(qfit_sys_wait_readable(fds[0], &during), 1);
    char ch;
    cr_assert_eq(read(fds[0], &ch, 1), 1);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);   /* pending: blocked */
    cr_assert_eq(g_usr1, 0);
    alarm(10);
    errno = 0;
    const int r = qfit_sys_wait_readable(fds[0], &during);
    alarm(0);
    cr_assert_eq(r, -1);
    cr_assert_eq(errno, EINTR);
    cr_assert_eq(g_usr1, SIGUSR1);
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(fds[0]);
    close(fds[1]);
}
