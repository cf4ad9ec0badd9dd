/* Operating-system services, one wrapper each (see platform.h): a Linux branch, a macOS
 * branch, and a POSIX branch for the rest, which a Linux build compiles instead of its
 * own when QFIT_PORTABLE_ONLY is defined (make check-portable). */
#include "platform/platform.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <unistd.h>

#if defined(__APPLE__)
#define QFIT_SYS_APPLE 1
#include <mach/mach.h>
#include <sys/random.h>
#include <sys/sysctl.h>
#elif defined(__linux__) && !defined(QFIT_PORTABLE_ONLY)
#define QFIT_SYS_LINUX 1
#include <poll.h>
#include <sys/random.h>
#endif

/* ---------------------------------------------------------------- memory */

#if defined(QFIT_SYS_LINUX)
/* "Key:   123 kB" of a /proc file, in bytes; 0 if absent */
static uint64_t proc_kb(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    const size_t kl = strlen(key);
    uint64_t v = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (strncmp(line, key, kl) == 0 && sscanf(line + kl, ": %llu kB", &kb) == 1) {
            v = (uint64_t)kb * 1024u;
            break;
        }
    }
    fclose(f);
    return v;
}
#endif

#if defined(QFIT_SYS_APPLE)
static int task_basic(struct mach_task_basic_info *info)
{
    mach_msg_type_number_t count = MACH_TASK_BASIC_INFO_COUNT;
    return task_info(mach_task_self(), MACH_TASK_BASIC_INFO, (task_info_t)info, &count) == KERN_SUCCESS ? 0 : -1;
}
#endif

size_t qfit_sys_rss_bytes(void)
{
#if defined(QFIT_SYS_LINUX)
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long size = 0, rss = 0;
    int n = fscanf(f, "%lu %lu", &size, &rss);
    fclose(f);
    if (n != 2) return 0;
    long page = sysconf(_SC_PAGESIZE);
    return (size_t)rss * (size_t)(page > 0 ? page : 4096);
#elif defined(QFIT_SYS_APPLE)
    struct mach_task_basic_info info;
    return task_basic(&info) == 0 ? (size_t)info.resident_size : 0;
#else
    return 0;   /* POSIX has no call for the current resident size */
#endif
}

size_t qfit_sys_peak_rss_bytes(void)
{
#if defined(QFIT_SYS_LINUX)
    return (size_t)proc_kb("/proc/self/status", "VmHWM");
#elif defined(QFIT_SYS_APPLE)
    struct mach_task_basic_info info;
    return task_basic(&info) == 0 ? (size_t)info.resident_size_max : 0;
#else
    /* ru_maxrss: kilobytes on Linux and the BSDs (bytes on macOS, handled above) */
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0 || ru.ru_maxrss <= 0) return 0;
    return (size_t)ru.ru_maxrss * 1024u;
#endif
}

uint64_t qfit_sys_ram_bytes(void)
{
#if defined(QFIT_SYS_LINUX)
    uint64_t v = proc_kb("/proc/meminfo", "MemTotal");
    if (v) return v;
#elif defined(QFIT_SYS_APPLE)
    uint64_t v = 0;
    size_t len = sizeof v;
    if (sysctlbyname("hw.memsize", &v, &len, NULL, 0) == 0 && v) return v;
#endif
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    return pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
}

uint64_t qfit_sys_avail_bytes(void)
{
#if defined(QFIT_SYS_LINUX)
    return proc_kb("/proc/meminfo", "MemAvailable");
#elif defined(QFIT_SYS_APPLE)
    vm_statistics64_data_t vs;
    mach_msg_type_number_t cnt = HOST_VM_INFO64_COUNT;
    if (host_statistics64(mach_host_self(), HOST_VM_INFO64, (host_info64_t)&vs, &cnt) != KERN_SUCCESS) return 0;
    return ((uint64_t)vs.free_count + (uint64_t)vs.inactive_count) * (uint64_t)vm_page_size;
#elif defined(_SC_AVPHYS_PAGES)
    long pages = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    return pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
#else
    return 0;
#endif
}

/* ---------------------------------------------------------------- CPUs */

int qfit_sys_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int qfit_sys_perf_cpu_count(void)
{
#if defined(QFIT_SYS_APPLE)
    int n = 0;
    size_t len = sizeof n;
    if (sysctlbyname("hw.perflevel0.physicalcpu", &n, &len, NULL, 0) == 0 && n > 0) return n;
    len = sizeof n;
    if (sysctlbyname("hw.physicalcpu", &n, &len, NULL, 0) == 0 && n > 0) return n;
#endif
    return qfit_sys_cpu_count();
}

/* ---------------------------------------------------------------- random bytes */

int qfit_sys_random(void *buf, size_t n, bool nonblock)
{
    unsigned char *p = buf;
#if defined(QFIT_SYS_LINUX)
    while (n > 0) {
        ssize_t got = getrandom(p, n, nonblock ? GRND_NONBLOCK : 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        p += got;
        n -= (size_t)got;
    }
    return 0;
#else
    (void)nonblock;   /* getentropy never waits once the system is up */
    while (n > 0) {
        const size_t k = n < 256 ? n : 256;   /* getentropy's limit per call */
        if (getentropy(p, k) != 0) return -1;
        p += k;
        n -= k;
    }
    return 0;
#endif
}

/* ---------------------------------------------------------------- files */

int qfit_sys_fdatasync(int fd)
{
#if defined(QFIT_SYS_LINUX)
    return fdatasync(fd);
#elif defined(QFIT_SYS_APPLE)
    /* fsync on macOS leaves the data in the drive's cache; F_FULLFSYNC flushes it
     * (some file systems refuse it: fsync then) */
    if (fcntl(fd, F_FULLFSYNC) == 0) return 0;
    return fsync(fd);
#else
    return fsync(fd);
#endif
}

/* ---------------------------------------------------------------- conditions */

void qfit_sys_cond_init_mono(pthread_cond_t *c)
{
#if defined(QFIT_SYS_LINUX)
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
#else
    pthread_cond_init(c, NULL);
#endif
}

int qfit_sys_cond_timedwait_mono(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *deadline)
{
#if defined(QFIT_SYS_LINUX)
    return pthread_cond_timedwait(c, m, deadline);
#else
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t left = (int64_t)(deadline->tv_sec - now.tv_sec) * 1000000000 + (deadline->tv_nsec - now.tv_nsec);
    if (left <= 0) return ETIMEDOUT;
    struct timespec rel = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
#if defined(QFIT_SYS_APPLE)
    return pthread_cond_timedwait_relative_np(c, m, &rel);
#else
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    at.tv_sec += rel.tv_sec;
    at.tv_nsec += rel.tv_nsec;
    if (at.tv_nsec >= 1000000000) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000;
    }
    return pthread_cond_timedwait(c, m, &at);
#endif
#endif
}

/* ---------------------------------------------------------------- waiting on a descriptor */

int qfit_sys_wait_readable(int fd, const sigset_t *mask)
{
#if defined(QFIT_SYS_LINUX)
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = ppoll(&p, 1, NULL, mask);
    return r > 0 ? 1 : r == 0 ? (errno = EAGAIN, -1) : -1;
#else
    if (fd < 0 || fd >= FD_SETSIZE) {
        errno = EBADF;
        return -1;
    }
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(fd, &rd);
    int r = pselect(fd + 1, &rd, NULL, NULL, NULL, mask);
    return r > 0 ? 1 : r == 0 ? (errno = EAGAIN, -1) : -1;
#endif
}
