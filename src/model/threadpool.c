/* Persistent thread pool: spin-then-block dispatch and completion.
 *
 * One 64-bit state word carries the dispatch generation (high 32 bits), an
 * "open" flag and the number of workers that joined the current dispatch.
 * The caller publishes the job, then stores (generation + 1, open, 0). A worker
 * notices the new generation (polling for a bounded number of iterations, then
 * sleeping on a condition variable), and joins with a compare-and-swap that
 * only succeeds while the dispatch is open. In chunk mode the caller closes the
 * dispatch once every chunk has been claimed and waits only for the workers
 * that joined; the others see it closed and go back to waiting, so they never
 * read a job that is gone. In all-threads mode the dispatch stays open until
 * every worker has joined and finished.
 *
 * The "sleeping" counters are sequentially consistent with the state word and
 * the done counter, so a wake-up is never lost (each side either sees the
 * other's store or is seen by it). */
#include "model/threadpool.h"
#include "qfit/kernels.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SPIN_ITERS 20000
#define ST_OPEN   ((uint64_t)1 << 31)
#define ST_JOINED ((uint64_t)0x7fffffff)
#define ST_GEN(s) ((uint32_t)((s) >> 32))

enum { MODE_ALL = 0, MODE_CHUNKS = 1 };

struct qfit_threadpool {
    int n;
    pthread_t *threads;
    struct worker_arg { qfit_threadpool *tp; int ith; } *args;

    /* the current job: written by the caller before the state store */
    int mode;
    qfit_task_fn fn;
    qfit_chunk_fn cfn;
    void *arg;
    int n_chunks;
    uint32_t gen;            /* caller's copy of the generation */

    _Alignas(64) _Atomic uint64_t state;
    _Alignas(64) atomic_int next_chunk;
    _Alignas(64) atomic_int done;         /* joined workers finished with the current job */
    atomic_int n_sleeping;   /* workers blocked (or about to block) on cv_work */
    atomic_int main_waiting; /* the caller is blocked on cv_done */
    atomic_int stop;
    atomic_long n_sleeps;
    atomic_long n_worker_chunks;

    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
};


static void *worker_main(void *p)
{
    struct worker_arg *wa = p;
    qfit_threadpool *tp = wa->tp;
    uint32_t seen = 0;
    for (;;) {
        uint64_t s = atomic_load_explicit(&tp->state, memory_order_acquire);
        for (int i = 0; ST_GEN(s) == seen && i < SPIN_ITERS; i++) {
            qfit_cpu_relax();
            s = atomic_load_explicit(&tp->state, memory_order_acquire);
        }
        if (ST_GEN(s) == seen) {
            pthread_mutex_lock(&tp->mu);
            atomic_fetch_add(&tp->n_sleeping, 1);
            while (ST_GEN(s = atomic_load(&tp->state)) == seen && !atomic_load(&tp->stop)) {
                atomic_fetch_add_explicit(&tp->n_sleeps, 1, memory_order_relaxed);
                pthread_cond_wait(&tp->cv_work, &tp->mu);
            }
            atomic_fetch_sub(&tp->n_sleeping, 1);
            pthread_mutex_unlock(&tp->mu);
        }
        if (atomic_load(&tp->stop)) break;
        seen = ST_GEN(s);
        bool joined = false;
        while ((s & ST_OPEN) && ST_GEN(s) == seen) {
            if (atomic_compare_exchange_weak(&tp->state, &s, s + 1)) { joined = true; break; }
        }
        if (!joined) continue;   /* closed (or already superseded): not ours */
        if (tp->mode == MODE_ALL) {
            tp->fn(tp->arg, wa->ith, tp->n);
        } else {
            long cnt = 0;
            for (;;) {
                const int c = atomic_fetch_add_explicit(&tp->next_chunk, 1, memory_order_relaxed);
                if (c >= tp->n_chunks) break;
                tp->cfn(tp->arg, c, wa->ith);
                cnt++;
            }
            if (cnt) atomic_fetch_add_explicit(&tp->n_worker_chunks, cnt, memory_order_relaxed);
        }
        atomic_fetch_add(&tp->done, 1);
        if (atomic_load(&tp->main_waiting)) {
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
    qfit_threadpool *tp = aligned_alloc(64, (sizeof *tp + 63) / 64 * 64);
    if (!tp) return NULL;
    memset(tp, 0, sizeof *tp);
    tp->n = n_threads;
    atomic_init(&tp->state, 0);
    atomic_init(&tp->next_chunk, 0);
    atomic_init(&tp->done, 0);
    atomic_init(&tp->n_sleeping, 0);
    atomic_init(&tp->main_waiting, 0);
    atomic_init(&tp->stop, 0);
    atomic_init(&tp->n_sleeps, 0);
    atomic_init(&tp->n_worker_chunks, 0);
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->cv_work, NULL);
    pthread_cond_init(&tp->cv_done, NULL);
    if (n_threads > 1) {
        tp->threads = calloc((size_t)n_threads, sizeof *tp->threads);
        tp->args = calloc((size_t)n_threads, sizeof *tp->args);
        if (!tp->threads || !tp->args) {
            free(tp->threads);
            free(tp->args);
            pthread_mutex_destroy(&tp->mu);
            pthread_cond_destroy(&tp->cv_work);
            pthread_cond_destroy(&tp->cv_done);
            free(tp);
            return NULL;
        }
        /* Workers take no signals (they inherit this mask): a process-directed signal such
         * as a terminal's SIGINT must reach the thread that waits for it, not a worker
         * (qfit run's prompt blocks SIGINT outside ppoll; a Ctrl-C taken by a worker in
         * that window was lost and the prompt never woke). */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        for (int i = 1; i < n_threads; i++) {
            tp->args[i].tp = tp;
            tp->args[i].ith = i;
            if (pthread_create(&tp->threads[i], NULL, worker_main, &tp->args[i]) != 0) {
                pthread_sigmask(SIG_SETMASK, &old, NULL);
                tp->n = i;   /* stop and join what was started */
                qfit_threadpool_free(tp);
                return NULL;
            }
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    return tp;
}

void qfit_threadpool_free(qfit_threadpool *tp)
{
    if (!tp) return;
    if (tp->threads) {
        pthread_mutex_lock(&tp->mu);
        atomic_store(&tp->stop, 1);
        tp->gen++;
        atomic_store(&tp->state, (uint64_t)tp->gen << 32);   /* closed: nobody joins */
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

long qfit_threadpool_n_worker_chunks(const qfit_threadpool *tp)
{
    return tp ? atomic_load(&((qfit_threadpool *)tp)->n_worker_chunks) : 0;
}

/* publish the job now in tp's fields and wake sleepers */
static void publish(qfit_threadpool *tp)
{
    atomic_store_explicit(&tp->done, 0, memory_order_relaxed);
    tp->gen++;
    atomic_store(&tp->state, ((uint64_t)tp->gen << 32) | ST_OPEN);   /* seq_cst: publishes the job */
    if (atomic_load(&tp->n_sleeping) > 0) {
        pthread_mutex_lock(&tp->mu);
        pthread_cond_broadcast(&tp->cv_work);
        pthread_mutex_unlock(&tp->mu);
    }
}

/* wait until `want` joined workers have finished */
static void wait_done(qfit_threadpool *tp, int want)
{
    for (int i = 0; i < SPIN_ITERS; i++) {
        if (atomic_load_explicit(&tp->done, memory_order_acquire) >= want) return;
        qfit_cpu_relax();
    }
    pthread_mutex_lock(&tp->mu);
    atomic_store(&tp->main_waiting, 1);
    while (atomic_load(&tp->done) < want) {
        atomic_fetch_add_explicit(&tp->n_sleeps, 1, memory_order_relaxed);
        pthread_cond_wait(&tp->cv_done, &tp->mu);
    }
    atomic_store(&tp->main_waiting, 0);
    pthread_mutex_unlock(&tp->mu);
}

void qfit_threadpool_run(qfit_threadpool *tp, qfit_task_fn fn, void *arg)
{
    if (!tp || tp->n == 1) { fn(arg, 0, 1); return; }
    tp->mode = MODE_ALL;
    tp->fn = fn;
    tp->arg = arg;
    publish(tp);
    fn(arg, 0, tp->n);
    wait_done(tp, tp->n - 1);
}

void qfit_threadpool_run_chunks(qfit_threadpool *tp, qfit_chunk_fn fn, void *arg, int n_chunks)
{
    if (n_chunks <= 0) return;
    if (!tp || tp->n == 1 || n_chunks == 1) {
        for (int c = 0; c < n_chunks; c++) fn(arg, c, 0);
        return;
    }
    tp->mode = MODE_CHUNKS;
    tp->cfn = fn;
    tp->arg = arg;
    tp->n_chunks = n_chunks;
    atomic_store_explicit(&tp->next_chunk, 0, memory_order_relaxed);
    publish(tp);
    for (;;) {
        const int c = atomic_fetch_add_explicit(&tp->next_chunk, 1, memory_order_relaxed);
        if (c >= n_chunks) break;
        fn(arg, c, 0);
    }
    /* close: no worker joins from now on; wait for those that did */
    uint64_t s = atomic_load(&tp->state);
    while (!atomic_compare_exchange_weak(&tp->state, &s, s & ~ST_OPEN)) { }
    const int joined = (int)(s & ST_JOINED);
    if (joined > 0) wait_done(tp, joined);
}
