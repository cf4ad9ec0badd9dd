/* Internal: the multithreaded "produce rows -> convert -> write" engine shared by
 * qfit quantize and qfit synth.
 *
 * Tensors are processed in the order given. Each tensor that needs converting
 * is cut into chunks of whole rows; worker threads take chunks in order, ask
 * the fill callback for the chunk's rows as float, convert them to the output
 * type with qfit_quantize_rows and store them in one of two output buffers.
 * The calling thread writes finished tensors to the GGUF writer in order while
 * the workers already convert the next tensor (double buffering). A row's
 * bytes depend only on the row, so the output is the same for any thread count. */
#ifndef QFIT_QUANTIZE_ENGINE_H
#define QFIT_QUANTIZE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "qfit/gguf.h"

typedef struct {
    const char *name;      /* for messages and progress */
    int64_t     ne0;       /* elements per row */
    int64_t     nrows;     /* rows (product of the other dims) */
    int         out_type;  /* qfit_type of the output */
    const void *copy;      /* non-NULL: bytes written unchanged (size = nbytes) */
    uint64_t    nbytes;    /* output bytes of the tensor */
    /* importance weights (may be NULL): row r uses imatrix + (r / imatrix_rows) * ne0,
     * one slice of ne0 weights per matrix (expert) of imatrix_rows rows */
    const float *imatrix;
    int64_t     imatrix_rows;
} qfit_qe_tensor;

/* Rows [row0, row0+nrows) of tensor ti as float. Either fill scratch (room
 * for nrows*ne0 floats) and return it, or return a pointer to existing floats.
 * NULL with a message in err stops everything. Called from worker threads,
 * concurrently for different chunks. */
typedef const float *(*qfit_qe_fill_fn)(void *user, size_t ti, int64_t row0, int64_t nrows,
                                        float *scratch, char *err, size_t err_len);

typedef void (*qfit_qe_progress_fn)(void *user, size_t done, size_t total,
                                    uint64_t bytes_done, uint64_t bytes_total, const char *name);

/* Write all tensors (w must be begun, tensors declared in this order).
 * 0 on success; -1 with a message in err. Does not finish or free the writer. */
int qfit_qe_run(qfit_gguf_writer *w, const qfit_qe_tensor *tensors, size_t n, int n_threads,
                qfit_qe_fill_fn fill, void *fill_user,
                qfit_qe_progress_fn progress, void *progress_user,
                char *err, size_t err_len);

/* Returns true when every value in x[0..n) is finite. */
int qfit_qe_all_finite(const float *x, int64_t n);

#endif
