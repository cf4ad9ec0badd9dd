/* make check-portable: force-included (-include) into every source of the portable
 * build, which also defines QFIT_PORTABLE_ONLY (src/platform and src/kernels/cpu.c then
 * compile their non-Linux branches). Any use of a call that glibc has and macOS does
 * not (or has with another signature) becomes a compile error, so a Linux-only call
 * outside those wrappers' Linux branches cannot creep in. tools/portable/include/ does
 * the same for Linux-only headers.
 *
 * The system headers that declare the names are included first: a name poisoned before
 * its declaration would fail inside the system header itself. */
#ifndef QFIT_PORTABLE_POISON_H
#define QFIT_PORTABLE_POISON_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* missing on macOS */
#pragma GCC poison getrandom ppoll pipe2 dup3 fdatasync sync_file_range copy_file_range fallocate \
    posix_fallocate memfd_create mremap clock_nanosleep timer_create timer_settime
#pragma GCC poison pthread_condattr_setclock pthread_barrier_init pthread_barrier_wait pthread_barrier_destroy \
    pthread_spin_init pthread_spin_lock pthread_spin_unlock pthread_mutex_timedlock pthread_timedjoin_np \
    pthread_tryjoin_np pthread_setaffinity_np pthread_getaffinity_np sem_init sem_timedwait
#pragma GCC poison sched_setaffinity sched_getaffinity sched_getcpu gettid prctl getauxval sysinfo get_nprocs \
    epoll_create epoll_create1 epoll_ctl epoll_wait eventfd timerfd_create inotify_init inotify_init1 \
    secure_getenv explicit_bzero reallocarray memrchr strchrnul rawmemchr mempcpy strverscmp \
    canonicalize_file_name fopencookie malloc_trim malloc_usable_size mallinfo program_invocation_name \
    program_invocation_short_name
/* on macOS with another signature: qsort_r (context first), pthread_setname_np (the
 * calling thread only). Linux's sendfile needs <sys/sendfile.h> (tools/portable/include);
 * the Linux-only parts of <sys/socket.h> (accept4, SOCK_CLOEXEC, MSG_NOSIGNAL) are left
 * to the Makefile's grep: included here, its bind() would clash with static functions
 * of that name */
#pragma GCC poison qsort_r pthread_setname_np
/* deprecated in macOS's SDK (Xcode 14 on): a warning there, so an error under -Werror */
#pragma GCC poison sprintf vsprintf tmpnam tempnam mktemp

/* Linux-only constants that code tests with #ifdef: gone, as on macOS (a poisoned
 * macro would fail the #ifdef itself) */
#undef MADV_POPULATE_READ
#undef MADV_HUGEPAGE
#undef MAP_POPULATE
#undef MAP_HUGETLB
#undef O_PATH
#undef O_DIRECT
#undef O_NOATIME

#endif
