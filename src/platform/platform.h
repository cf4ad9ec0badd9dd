/* Internal: the operating-system services whose calls differ between Linux, macOS and
 * other POSIX systems, one wrapper each (src/platform/platform.c). Every wrapper has a
 * Linux branch, a macOS branch and a plain POSIX branch for the rest; a Linux build
 * with QFIT_PORTABLE_ONLY defined compiles and runs the POSIX branch instead of the
 * Linux one (`make check-portable`, which also rejects Linux-only calls anywhere else:
 * tools/portable/). CPU feature detection stays in src/kernels/cpu.c (the kernels
 * module needs nothing but libc). */
#ifndef QFIT_PLATFORM_H
#define QFIT_PLATFORM_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Resident set size of this process now, and its peak, in bytes; 0 if unknown
 * (Linux: /proc/self/statm, VmHWM; macOS: task_info; POSIX: peak from getrusage, no
 * current value). */
size_t   qfit_sys_rss_bytes(void);
size_t   qfit_sys_peak_rss_bytes(void);
/* Physical memory in bytes; 0 if unknown (Linux: MemTotal; macOS: hw.memsize; POSIX:
 * _SC_PHYS_PAGES). */
uint64_t qfit_sys_ram_bytes(void);
/* Memory available to new allocations in bytes; 0 if unknown (Linux: MemAvailable;
 * macOS: free + inactive pages; POSIX: _SC_AVPHYS_PAGES where the system has it). */
uint64_t qfit_sys_avail_bytes(void);
/* Online logical CPUs (>= 1). */
int      qfit_sys_cpu_count(void);
/* The cores a compute thread pool should use (>= 1): on Apple silicon the performance
 * cores (hw.perflevel0.physicalcpu: an efficiency core runs these kernels at a fraction
 * of the speed, and every thread waits for the slowest at each barrier); elsewhere the
 * online CPUs. */
int      qfit_sys_perf_cpu_count(void);
/* n bytes from the system's random source: 0, or -1 when it has none to give
 * (nonblock: do not wait for the pool to be seeded; Linux only, early boot). */
int      qfit_sys_random(void *buf, size_t n, bool nonblock);
/* Flush a file's data to the device (Linux: fdatasync; macOS: F_FULLFSYNC, else
 * fsync; POSIX: fsync). 0 or -1 with errno. */
int      qfit_sys_fdatasync(int fd);
/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines (Linux: the
 * condition's clock; macOS: a relative wait, pthread_cond_timedwait_relative_np; POSIX:
 * the deadline moved to CLOCK_REALTIME when the wait starts). Wait returns 0,
 * ETIMEDOUT when the deadline passed, or another pthread error. */
void     qfit_sys_cond_init_mono(pthread_cond_t *c);
int      qfit_sys_cond_timedwait_mono(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *deadline);
/* Wait until fd is readable (or has hung up) with the signal mask set to `mask` for the
 * duration of the wait only, atomically (ppoll; pselect elsewhere): 1 ready, -1 with
 * errno (EINTR: a signal arrived). */
int      qfit_sys_wait_readable(int fd, const sigset_t *mask);

#endif
