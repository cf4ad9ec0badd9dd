/* Internal: a persistent worker pool. The calling thread takes part as
 * thread 0. Workers spin briefly waiting for work, then block on a condition
 * variable, so an overloaded machine degrades gracefully instead of burning
 * every time slice in a spin barrier.
 *
 * Two kinds of dispatch:
 *   qfit_threadpool_run        every thread runs fn once (static split by ith).
 *   qfit_threadpool_run_chunks the work is n_chunks independent pieces, claimed
 *                              one at a time by whichever threads are running. A
 *                              worker that has not woken up by the time the
 *                              caller has claimed every chunk is left out (it
 *                              never touches that dispatch), so a descheduled
 *                              worker costs the caller nothing but its own share
 *                              of the work: on a busy machine the pass runs at
 *                              single-thread speed instead of waiting for time
 *                              slices after every operation. */
#ifndef QFIT_THREADPOOL_H
#define QFIT_THREADPOOL_H

typedef struct qfit_threadpool qfit_threadpool;

/* fn(arg, ith, nth) is called once per thread, ith in [0, nth). */
typedef void (*qfit_task_fn)(void *arg, int ith, int nth);
/* fn(arg, chunk, ith): one chunk (0 <= chunk < n_chunks) on thread ith
 * (ith < qfit_threadpool_size, for per-thread scratch). */
typedef void (*qfit_chunk_fn)(void *arg, int chunk, int ith);

/* n_threads >= 1 (1: no workers, everything runs on the caller). NULL on failure. */
qfit_threadpool *qfit_threadpool_new(int n_threads);
void qfit_threadpool_free(qfit_threadpool *tp);
int  qfit_threadpool_size(const qfit_threadpool *tp);
/* Run fn on all threads and return when every one has finished. */
void qfit_threadpool_run(qfit_threadpool *tp, qfit_task_fn fn, void *arg);
/* Run fn on every chunk in [0, n_chunks), each exactly once, and return when all
 * are done. The caller works too; chunks run in no particular order or thread. */
void qfit_threadpool_run_chunks(qfit_threadpool *tp, qfit_chunk_fn fn, void *arg, int n_chunks);
/* Number of times a thread had to block (diagnostics / tests). */
long qfit_threadpool_n_sleeps(const qfit_threadpool *tp);
/* Chunks run by workers (not the caller) so far (diagnostics / tests). */
long qfit_threadpool_n_worker_chunks(const qfit_threadpool *tp);
/* Dispatches so far: calls of qfit_threadpool_run / qfit_threadpool_run_chunks with
 * work to share (more than one thread, more than one chunk; a call with one chunk
 * runs on the caller and is not counted). Each is a round trip between the caller
 * and the workers, the per-operation fixed cost (tests, bench/decode_profile.c),
 * unless it ran solo (below). */
long qfit_threadpool_n_dispatches(const qfit_threadpool *tp);
/* Of those, chunk dispatches the caller ran alone without waking the workers,
 * because in the dispatches before they had taken less than a tenth of the chunks
 * (descheduled workers: an oversubscribed machine). */
long qfit_threadpool_n_solo(const qfit_threadpool *tp);

#endif
