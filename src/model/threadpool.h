/* Internal: a persistent worker pool. The calling thread takes part as
 * thread 0. Workers spin briefly waiting for work, then block on a condition
 * variable, so an overloaded machine degrades gracefully instead of burning
 * every time slice in a spin barrier. */
#ifndef QFIT_THREADPOOL_H
#define QFIT_THREADPOOL_H

typedef struct qfit_threadpool qfit_threadpool;

/* fn(arg, ith, nth) is called once per thread, ith in [0, nth). */
typedef void (*qfit_task_fn)(void *arg, int ith, int nth);

/* n_threads >= 1 (1: no workers, everything runs on the caller). NULL on failure. */
qfit_threadpool *qfit_threadpool_new(int n_threads);
void qfit_threadpool_free(qfit_threadpool *tp);
int  qfit_threadpool_size(const qfit_threadpool *tp);
/* Run fn on all threads and return when every one has finished. */
void qfit_threadpool_run(qfit_threadpool *tp, qfit_task_fn fn, void *arg);
/* Number of times a thread had to block (diagnostics / tests). */
long qfit_threadpool_n_sleeps(const qfit_threadpool *tp);

#endif
