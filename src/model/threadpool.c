/* Persistent thread pool: spin-then-block dispatch and completion.
 *
 * Dispatch: the caller publishes (fn, arg), sets the count of outstanding
 * workers and bumps a generation counter. Workers poll the generation for a
 * bounded number of iterations, then sleep on a condition variable. The
 * "sleeping" counters are sequentially consistent with the generation /
 * pending counters, so a wake-up is never lost (each side either sees the
 * other's store or is seen by it). */
#include "model/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define SPIN_ITERS 20000

struct qfit_threadpool {
    int n;
    pthread_t *threads;
    struct worker_arg { qfit_threadpool *tp; int ith; } *args;

    qfit_task_fn fn;
    void *arg;

    atomic_int gen;          /* bumped once per dispatch */
    atomic_int pending;      /* workers still running the current task */
    atomic_int n_sleeping;   /* workers blocked (or about to block) on cv_work */
    atomic_int main_waiting; /* the caller is blocked on cv_done */
    atomic_int stop;
    atomic_long n_sleeps;

    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void *worker_main(void *p)
{
    struct worker_arg *wa = p;
    qfit_threadpool *tp = wa->tp;
    int seen = 0;
    for (;;) {
        int g = atomic_load_explicit(&tp->gen, memory_order_acquire);
        for (int i = 0; g == seen && i < SPIN_ITERS; i++) {
            cpu_relax();
            g = atomic_load_explicit(&tp->gen, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&tp->mu);
            atomic_fetch_add(&tp->n_sleeping, 1);
            while ((g = atomic_load(&tp->gen)) == seen && !atomic_load(&tp->stop)) {
                atomic_fetch_add_explicit(&tp->n_sleeps, 1, memory_order_relaxed);
                pthread_cond_wait(&tp->cv_work, &tp->mu);
            }
            atomic_fetch_sub(&tp->n_sleeping, 1);
            pthread_mutex_unlock(&tp->mu);
        }
        if (atomic_load(&tp->stop)) break;
        seen = g;
        tp->fn(tp->arg, wa->ith, tp->n);
        if (atomic_fetch_sub(&tp->pending, 1) == 1 && atomic_load(&tp->main_waiting)) {
            pthread_mutex_lock(&tp->mu);
            pthread_cond_signal(&tp->cv_done);
            pthread_mutex_unlock(&tp->mu);
        }
    }
    return NULL;
}

qfit_threadpool *qfit_threadpool_new(int n_threads)
{
    if (n_threads < 1) n_threads = 1;
    qfit_threadpool *tp = calloc(1, sizeof *tp);
    if (!tp) return NULL;
    tp->n = n_threads;
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->cv_work, NULL);
    pthread_cond_init(&tp->cv_done, NULL);
    if (n_threads > 1) {
        tp->threads = calloc((size_t)n_threads, sizeof *tp->threads);
        tp->args = calloc((size_t)n_threads, sizeof *tp->args);
        if (!tp->threads || !tp->args) { free(tp->threads); free(tp->args); free(tp); return NULL; }
        for (int i = 1; i < n_threads; i++) {
            tp->args[i].tp = tp;
            tp->args[i].ith = i;
            if (pthread_create(&tp->threads[i], NULL, worker_main, &tp->args[i]) != 0) {
                tp->n = i;   /* stop and join what was started */
                qfit_threadpool_free(tp);
                return NULL;
            }
        }
    }
    return tp;
}

void qfit_threadpool_free(qfit_threadpool *tp)
{
    if (!tp) return;
    if (tp->threads) {
        pthread_mutex_lock(&tp->mu);
        atomic_store(&tp->stop, 1);
        atomic_fetch_add(&tp->gen, 1);
        pthread_cond_broadcast(&tp->cv_work);
        pthread_mutex_unlock(&tp->mu);
        for (int i = 1; i < tp->n; i++) pthread_join(tp->threads[i], NULL);
    }
    pthread_mutex_destroy(&tp->mu);
    pthread_cond_destroy(&tp->cv_work);
    pthread_cond_destroy(&tp->cv_done);
    free(tp->threads);
    free(tp->args);
    free(tp);
}

int qfit_threadpool_size(const qfit_threadpool *tp) { return tp ? tp->n : 1; }

long qfit_threadpool_n_sleeps(const qfit_threadpool *tp)
{
    return tp ? atomic_load(&((qfit_threadpool *)tp)->n_sleeps) : 0;
}

void qfit_threadpool_run(qfit_threadpool *tp, qfit_task_fn fn, void *arg)
{
    if (!tp || tp->n == 1) { fn(arg, 0, 1); return; }
    tp->fn = fn;
    tp->arg = arg;
    atomic_store(&tp->pending, tp->n - 1);
    atomic_fetch_add(&tp->gen, 1);              /* seq_cst: publishes fn/arg */
    if (atomic_load(&tp->n_sleeping) > 0) {
        pthread_mutex_lock(&tp->mu);
        pthread_cond_broadcast(&tp->cv_work);
        pthread_mutex_unlock(&tp->mu);
    }
    fn(arg, 0, tp->n);
    for (int i = 0; i < SPIN_ITERS; i++) {
        if (atomic_load_explicit(&tp->pending, memory_order_acquire) == 0) return;
        cpu_relax();
    }
    pthread_mutex_lock(&tp->mu);
    atomic_store(&tp->main_waiting, 1);
    while (atomic_load(&tp->pending) != 0) {
        atomic_fetch_add_explicit(&tp->n_sleeps, 1, memory_order_relaxed);
        pthread_cond_wait(&tp->cv_done, &tp->mu);
    }
    atomic_store(&tp->main_waiting, 0);
    pthread_mutex_unlock(&tp->mu);
}
