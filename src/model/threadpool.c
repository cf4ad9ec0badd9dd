/* Persistent thread pool: spin-then-block dispatch and completion.
 *
 * A dispatch is a round trip between the caller and the workers, and on a small model
 * (a decode token is ~40 dispatches of a few microseconds of work each) what it costs
 * is the number of cache lines that have to move between cores: between two cores of
 * this project's machine one move takes 0.2-1 us. So the design counts them.
 *
 * One cache line ("job") holds the job (function, argument, chunk count) and the 64-bit
 * state word: the dispatch generation (high 32 bits), an "open" flag, the number of
 * workers that joined the current dispatch and the number that finished it. The caller
 * writes the job and stores (generation + 1, open, 0, 0); a worker notices the new
 * generation (polling for a bounded number of iterations, then sleeping on a condition
 * variable), joins with a compare-and-swap that only succeeds while the dispatch is
 * open, and when done adds one to "finished" in the same word. The caller then needs
 * one line back to close the dispatch and read both counts.
 *
 * Chunk mode: every thread owns a contiguous range of the chunks (thread t: chunks
 * [ceil(n t / nth), ceil(n (t+1) / nth))) in a slot on a line of its own, as (generation,
 * next, end); it takes its chunks from the front of its own slot (a compare-and-swap
 * on a line that stays in its own cache), then steals from the back of the others'. A
 * slot whose generation is not the current one holds its thread's whole range (nobody
 * resets slots between dispatches). So with every thread running, no chunk claim moves
 * a line; a late or descheduled worker's range is taken by the others, and once every
 * range is empty the caller closes the dispatch and waits only for the workers that
 * joined: the others see it closed and go back to waiting, so they never read a job
 * that is gone, and a descheduled worker costs the caller nothing but its share of the
 * work. Each thread also keeps the same rows of a matrix from one token to the next
 * (their weights stay in its cache).
 *
 * All-threads mode: the dispatch stays open until every worker has joined and finished.
 *
 * Absent workers: the caller counts the chunks the workers took. When over a window of
 * POOL_WINDOW chunk dispatches they took less than a tenth, they are not getting a
 * core while the caller works (an oversubscribed machine, or a VM whose virtual CPUs
 * share one physical one: this project's 2-core VM at times runs two busy threads at
 * half speed each), and their spinning only takes time from the caller. The caller
 * then runs the next dispatches alone (the workers stop spinning and sleep), SOLO_MIN
 * of them at first, twice as many after each window that finds the workers still
 * absent (up to SOLO_MAX), and goes back to sharing the work after each such stretch
 * to look again. With every thread on a core of its own the workers take about
 * (n - 1) / n of the chunks and this never triggers.
 *
 * The "sleeping" counters are sequentially consistent with the state word, so a wake-up
 * is never lost (each side either sees the other's store or is seen by it). */
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
/* state word: generation (63..32) | open (31) | joined (30..16) | finished (15..0) */
#define ST_OPEN       ((uint64_t)1 << 31)
#define ST_JOINED_ONE ((uint64_t)1 << 16)
#define ST_JOINED(s)  ((int)(((s) >> 16) & 0x7fff))
#define ST_FIN(s)     ((int)((s) & 0xffff))
#define ST_GEN(s)     ((uint32_t)((s) >> 32))
/* a chunk slot: generation (63..32) | next (31..16) | end (15..0) */
#define SLOT_MAX_CHUNKS 0xffff
#define SLOT(g, next, end) (((uint64_t)(g) << 32) | ((uint64_t)(uint32_t)(next) << 16) | (uint64_t)(uint32_t)(end))

enum { MODE_ALL = 0, MODE_CHUNKS = 1 };
enum { POOL_WINDOW = 64, SOLO_MIN = 256, SOLO_MAX = 16384 };

/* one per thread, on its own line: its chunk range and its counters (written by it alone) */
typedef struct {
    _Alignas(64) _Atomic uint64_t range;
    atomic_long n_chunks;    /* chunks this thread ran */
} tp_slot;

struct qfit_threadpool {
    /* the job line: written by the caller before the state store, read by joined workers */
    _Alignas(64) _Atomic uint64_t state;
    qfit_task_fn fn;
    qfit_chunk_fn cfn;
    void *arg;
    int n_chunks;
    int mode;
    int n;
    uint32_t gen;            /* caller's copy of the generation */

    /* rarely written: sleeping, stopping */
    _Alignas(64) atomic_int n_sleeping;   /* workers blocked (or about to block) on cv_work */
    atomic_int main_waiting; /* the caller is blocked on cv_done */
    atomic_int stop;
    atomic_long n_sleeps;

    /* the caller's own */
    _Alignas(64) long n_dispatches;
    long n_solo;
    int win_n;               /* chunk dispatches in the current window */
    long win_total, win_worker;   /* their chunks, and those the workers took */
    int solo_left, solo_len; /* dispatches still to run alone; the next stretch's length */
    pthread_t *threads;
    struct worker_arg { qfit_threadpool *tp; int ith; } *args;
    tp_slot *slots;          /* [n] */

    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
};

/* thread t's share of n chunks: [lo, hi) */
static inline int range_lo(int n, int t, int nth) { return (int)(((int64_t)n * t + nth - 1) / nth); }

/* the next chunk from the front of slot s (range [lo, hi) when the slot is stale), or -1 */
static int claim_front(tp_slot *s, uint32_t gen, int lo, int hi)
{
    uint64_t v = atomic_load_explicit(&s->range, memory_order_relaxed);
    for (;;) {
        int next = lo, end = hi;
        if (ST_GEN(v) == gen) { next = (int)((v >> 16) & 0xffff); end = (int)(v & 0xffff); }
        if (next >= end) return -1;
        if (atomic_compare_exchange_weak_explicit(&s->range, &v, SLOT(gen, next + 1, end), memory_order_relaxed,
                                                  memory_order_relaxed))
            return next;
    }
}

/* the last chunk of slot s, or -1 */
static int claim_back(tp_slot *s, uint32_t gen, int lo, int hi)
{
    if (lo >= hi) return -1;   /* an empty range stays empty (and its slot may be stale) */
    uint64_t v = atomic_load_explicit(&s->range, memory_order_relaxed);
    for (;;) {
        int next = lo, end = hi;
        if (ST_GEN(v) == gen) { next = (int)((v >> 16) & 0xffff); end = (int)(v & 0xffff); }
        if (next >= end) return -1;
        if (atomic_compare_exchange_weak_explicit(&s->range, &v, SLOT(gen, next, end - 1), memory_order_relaxed,
                                                  memory_order_relaxed))
            return end - 1;
    }
}

/* thread ith's part of a chunk dispatch: its own range, then the others' */
static long run_chunks_as(qfit_threadpool *tp, uint32_t gen, int ith)
{
    const int n = tp->n_chunks, nth = tp->n;
    qfit_chunk_fn fn = tp->cfn;
    void *arg = tp->arg;
    long cnt = 0;
    int c;
    const int lo = range_lo(n, ith, nth), hi = range_lo(n, ith + 1, nth);
    if (lo < hi)
        while ((c = claim_front(&tp->slots[ith], gen, lo, hi)) >= 0) { fn(arg, c, ith); cnt++; }
    for (int k = 1; k < nth; k++) {
        const int v = (ith + k) % nth;
        const int vlo = range_lo(n, v, nth), vhi = range_lo(n, v + 1, nth);
        while ((c = claim_back(&tp->slots[v], gen, vlo, vhi)) >= 0) { fn(arg, c, ith); cnt++; }
    }
    return cnt;
}

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
        if (atomic_load_explicit(&tp->stop, memory_order_relaxed)) break;
        seen = ST_GEN(s);
        bool joined = false;
        while ((s & ST_OPEN) && ST_GEN(s) == seen) {
            if (atomic_compare_exchange_weak_explicit(&tp->state, &s, s + ST_JOINED_ONE, memory_order_acquire,
                                                      memory_order_acquire)) {
                joined = true;
                break;
            }
        }
        if (!joined) continue;   /* closed (or already superseded): not ours */
        if (tp->mode == MODE_ALL) {
            tp->fn(tp->arg, wa->ith, tp->n);
        } else {
            const long cnt = run_chunks_as(tp, seen, wa->ith);
            if (cnt) atomic_fetch_add_explicit(&tp->slots[wa->ith].n_chunks, cnt, memory_order_relaxed);
        }
        atomic_fetch_add(&tp->state, 1);   /* finished (seq_cst: ordered with main_waiting) */
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
    if (n_threads > 0x7fff) return NULL;   /* the state word counts workers in 15 bits */
    qfit_threadpool *tp = aligned_alloc(64, (sizeof *tp + 63) / 64 * 64);
    if (!tp) return NULL;
    memset(tp, 0, sizeof *tp);
    tp->n = n_threads;
    atomic_init(&tp->state, 0);
    atomic_init(&tp->n_sleeping, 0);
    atomic_init(&tp->main_waiting, 0);
    atomic_init(&tp->stop, 0);
    atomic_init(&tp->n_sleeps, 0);
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->cv_work, NULL);
    pthread_cond_init(&tp->cv_done, NULL);
    if (n_threads > 1) {
        tp->threads = calloc((size_t)n_threads, sizeof *tp->threads);
        tp->args = calloc((size_t)n_threads, sizeof *tp->args);
        tp->slots = aligned_alloc(64, (size_t)n_threads * sizeof *tp->slots);
        if (!tp->threads || !tp->args || !tp->slots) {
            free(tp->threads);
            free(tp->args);
            free(tp->slots);
            pthread_mutex_destroy(&tp->mu);
            pthread_cond_destroy(&tp->cv_work);
            pthread_cond_destroy(&tp->cv_done);
            free(tp);
            return NULL;
        }
        for (int i = 0; i < n_threads; i++) {
            atomic_init(&tp->slots[i].range, 0);   /* generation 0: stale (dispatches start at 1) */
            atomic_init(&tp->slots[i].n_chunks, 0);
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
    free(tp->slots);
    free(tp);
}

int qfit_threadpool_size(const qfit_threadpool *tp) { return tp ? tp->n : 1; }

long qfit_threadpool_n_sleeps(const qfit_threadpool *tp)
{
    return tp ? atomic_load(&((qfit_threadpool *)tp)->n_sleeps) : 0;
}

long qfit_threadpool_n_worker_chunks(const qfit_threadpool *tp)
{
    if (!tp || !tp->slots) return 0;
    long sum = 0;
    for (int i = 1; i < tp->n; i++) sum += atomic_load_explicit(&tp->slots[i].n_chunks, memory_order_relaxed);
    return sum;
}

long qfit_threadpool_n_dispatches(const qfit_threadpool *tp) { return tp ? tp->n_dispatches : 0; }
long qfit_threadpool_n_solo(const qfit_threadpool *tp) { return tp ? tp->n_solo : 0; }

/* publish the job now in tp's fields and wake sleepers */
static void publish(qfit_threadpool *tp)
{
    tp->gen++;
    if (tp->gen == 0) tp->gen = 1;   /* 0 marks a slot that was never used */
    if ((tp->gen & 0xffffff) == 1 && tp->slots) {
        /* every 2^24 dispatches: no slot keeps a generation old enough to come round again */
        for (int i = 0; i < tp->n; i++) atomic_store_explicit(&tp->slots[i].range, 0, memory_order_relaxed);
    }
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
        if (ST_FIN(atomic_load_explicit(&tp->state, memory_order_acquire)) >= want) return;
        qfit_cpu_relax();
    }
    pthread_mutex_lock(&tp->mu);
    atomic_store(&tp->main_waiting, 1);
    while (ST_FIN(atomic_load(&tp->state)) < want) {
        atomic_fetch_add_explicit(&tp->n_sleeps, 1, memory_order_relaxed);
        pthread_cond_wait(&tp->cv_done, &tp->mu);
    }
    atomic_store(&tp->main_waiting, 0);
    pthread_mutex_unlock(&tp->mu);
}

void qfit_threadpool_run(qfit_threadpool *tp, qfit_task_fn fn, void *arg)
{
    if (!tp || tp->n == 1) { fn(arg, 0, 1); return; }
    tp->n_dispatches++;
    tp->mode = MODE_ALL;
    tp->fn = fn;
    tp->arg = arg;
    publish(tp);
    fn(arg, 0, tp->n);
    wait_done(tp, tp->n - 1);
}

/* chunks [off, off + n) of a larger run_chunks call */
typedef struct { qfit_chunk_fn fn; void *arg; int off; } part_arg;
static void part_chunk(void *arg, int chunk, int ith)
{
    const part_arg *p = arg;
    p->fn(p->arg, p->off + chunk, ith);
}

void qfit_threadpool_run_chunks(qfit_threadpool *tp, qfit_chunk_fn fn, void *arg, int n_chunks)
{
    if (n_chunks <= 0) return;
    if (!tp || tp->n == 1 || n_chunks == 1) {
        for (int c = 0; c < n_chunks; c++) fn(arg, c, 0);
        return;
    }
    if (n_chunks > SLOT_MAX_CHUNKS) {   /* more than a slot counts: in parts */
        for (int off = 0; off < n_chunks; off += SLOT_MAX_CHUNKS) {
            part_arg p = { fn, arg, off };
            qfit_threadpool_run_chunks(tp, part_chunk, &p,
                                       n_chunks - off < SLOT_MAX_CHUNKS ? n_chunks - off : SLOT_MAX_CHUNKS);
        }
        return;
    }
    tp->n_dispatches++;
    if (tp->solo_left > 0) {   /* the workers have been absent: the caller alone, no wake-up */
        tp->solo_left--;
        tp->n_solo++;
        for (int c = 0; c < n_chunks; c++) fn(arg, c, 0);
        atomic_fetch_add_explicit(&tp->slots[0].n_chunks, n_chunks, memory_order_relaxed);
        return;
    }
    tp->mode = MODE_CHUNKS;
    tp->cfn = fn;
    tp->arg = arg;
    tp->n_chunks = n_chunks;
    publish(tp);
    const long cnt = run_chunks_as(tp, tp->gen, 0);
    if (cnt) atomic_fetch_add_explicit(&tp->slots[0].n_chunks, cnt, memory_order_relaxed);
    /* close: no worker joins from now on; wait for those that did */
    uint64_t s = atomic_load(&tp->state);
    while (!atomic_compare_exchange_weak(&tp->state, &s, s & ~ST_OPEN)) { }
    const int joined = ST_JOINED(s);
    if (joined > 0 && ST_FIN(s) < joined) wait_done(tp, joined);
    /* how much the workers took */
    tp->win_total += n_chunks;
    tp->win_worker += n_chunks - cnt;
    if (++tp->win_n == POOL_WINDOW) {
        if (tp->win_worker * 10 < tp->win_total) {
            if (tp->solo_len < SOLO_MIN) tp->solo_len = SOLO_MIN;
            tp->solo_left = tp->solo_len;
            tp->solo_len = tp->solo_len * 2 < SOLO_MAX ? tp->solo_len * 2 : SOLO_MAX;
        } else {
            tp->solo_len = SOLO_MIN;
        }
        tp->win_n = 0;
        tp->win_total = tp->win_worker = 0;
    }
}
