/* qfit — importance matrices: activation statistics per weight column, and the
 * files llama.cpp reads and writes for them.
 *
 * What an entry holds
 *   For a weight matrix W (n_per_mat columns) that a matmul applies to input
 *   vectors x, llama.cpp's llama-imatrix sums x_j^2 over every token that went
 *   through the matmul (sum2[j]) and counts those tokens. A 3-D weight (MoE
 *   experts) has n_mat matrices, each with its own sums and count. The
 *   importance of column j for quantization is the mean sum2[j] / count
 *   (qfit_imatrix_weights), which qfit_quantize_rows_imatrix takes per row.
 *
 * Files
 *   GGUF (what current llama.cpp writes and reads): general.type = "imatrix",
 *   imatrix.datasets (string array), imatrix.chunk_count and imatrix.chunk_size
 *   (u32); per entry, in name order, an F32 tensor "<name>.in_sum2" of shape
 *   [n_per_mat, n_mat] and an F32 tensor "<name>.counts" of shape [1, n_mat].
 *   A "<name>.in_sum" tensor (sum of x, written by newer llama.cpp) is checked
 *   for size and otherwise ignored; other tensors are ignored, as llama.cpp does.
 *
 *   Legacy ".dat": int32 n_entries; per entry int32 name length, the name bytes,
 *   int32 ncall, int32 nval, float32 values[nval] = mean * ncall; then optionally
 *   int32 chunk count and int32 length + the dataset name. Little-endian. Such a
 *   file has no per-expert counts and no chunk size: an entry loads as one
 *   matrix of nval columns with count = ncall * 512 and sum2 = value * 512 (512
 *   is llama-imatrix's default chunk size, which it assumes the same way), so the
 *   means are exactly value / ncall, what llama-quantize uses.
 *
 * Loading validates everything before use (sizes, counts, names, finite and
 * non-negative values) and fails with a message naming the entry and field;
 * it never crashes on a malformed file. Saving writes a temporary file next to
 * the destination, fsyncs it, renames it into place and fsyncs the directory.
 *
 * Ownership: a qfit_imatrix owns its entries, names and arrays; free it with
 * qfit_imatrix_free. Pointers into it stay valid until the next call that adds
 * an entry, or until it is freed. Not thread-safe: one thread at a time per
 * qfit_imatrix (qfit_imatrix_collect is called from one thread).
 * Errors: NULL / -1 with a message in err (err may be NULL).
 */
#ifndef QFIT_IMATRIX_H
#define QFIT_IMATRIX_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>

#include "qfit/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QFIT_IMATRIX_LEGACY_CHUNK 512   /* chunk size assumed for legacy .dat files */
#define QFIT_IMATRIX_MAX_NAME     63    /* ggml's tensor names hold 63 bytes + NUL */

typedef struct {
    char    *name;       /* weight tensor name, e.g. "blk.0.attn_q.weight" */
    int64_t  n_per_mat;  /* columns of one matrix (the weight's ne0) */
    int64_t  n_mat;      /* matrices (experts); 1 for a dense weight */
    double  *sum2;       /* [n_mat * n_per_mat]: sum over tokens of x_j^2 */
    int64_t *counts;     /* [n_mat]: tokens seen by each matrix */
} qfit_imatrix_entry;

typedef struct qfit_imatrix {
    qfit_imatrix_entry *entries;
    size_t              n_entries;
    size_t              cap;
    char              **datasets;     /* names of the texts the statistics came from */
    size_t              n_datasets;
    uint32_t            chunk_count;  /* chunks evaluated */
    uint32_t            chunk_size;   /* tokens per chunk */
} qfit_imatrix;

typedef enum { QFIT_IMATRIX_GGUF = 0, QFIT_IMATRIX_DAT = 1 } qfit_imatrix_format;

qfit_imatrix *qfit_imatrix_new(void);
void          qfit_imatrix_free(qfit_imatrix *im);

/* Load a GGUF or legacy file (told apart by the GGUF magic). */
qfit_imatrix *qfit_imatrix_load(const char *path, char *err, size_t err_len);
/* The same from a caller's buffer (not kept). *format (may be NULL) tells which it was. */
qfit_imatrix *qfit_imatrix_load_buffer(const void *data, size_t size, qfit_imatrix_format *format,
                                       char *err, size_t err_len);

/* Write as GGUF or legacy .dat. Entries are written in name order; a legacy
 * file skips entries no token reached (as llama.cpp does). -1 when a name is
 * longer than QFIT_IMATRIX_MAX_NAME - 8 (GGUF: room for ".in_sum2"), when a
 * count exceeds what the format holds, or on I/O errors. */
int qfit_imatrix_save(const qfit_imatrix *im, const char *path, qfit_imatrix_format format,
                      char *err, size_t err_len);

/* Set the dataset list to one name (copied). */
int qfit_imatrix_set_dataset(qfit_imatrix *im, const char *name, char *err, size_t err_len);

/* The entry named name, or NULL. */
const qfit_imatrix_entry *qfit_imatrix_find(const qfit_imatrix *im, const char *name);

/* The entry named name, created zeroed with this shape if absent. -1 (NULL) when
 * it exists with another shape, the name is empty or too long, or memory runs out. */
qfit_imatrix_entry *qfit_imatrix_entry_get(qfit_imatrix *im, const char *name, int64_t n_per_mat,
                                           int64_t n_mat, char *err, size_t err_len);

/* Add n_tokens input vectors x (row t at x + t * stride floats, n_per_mat
 * values each) that matrix mat of e was applied to: sum2 += x^2, counts[mat] += n_tokens. */
void qfit_imatrix_accumulate(qfit_imatrix_entry *e, int64_t mat, const float *x,
                             int64_t n_tokens, int64_t stride);

/* The importance weights llama-quantize derives from an entry, written to
 * out[n_mat * n_per_mat]: sum2 / count per matrix, and 1 for a matrix no token
 * reached (llama.cpp's rule for partial data). */
void qfit_imatrix_weights(const qfit_imatrix_entry *e, float *out);

/* ---------------------------------------------------------------- collection
 * llama-imatrix's statistic, gathered through a context's matmul input observer
 * (qfit/model.h): pass qfit_imatrix_observe as the observer and a collector as its
 * user pointer, then evaluate the text (qfit imatrix: chunks of n_ctx tokens, each
 * from an empty cache with BOS in place of its first token). Each observed input of
 * a "blk.*" weight (and of output.weight with process_output) adds x_j^2 of every
 * row to that weight's entry and counts the rows; like llama.cpp, a pass of fewer
 * than 16 rows is not counted, except for the experts of a mixture (an entry of n_mat =
 * n_expert matrices; each routed row counts for its expert, as llama-imatrix's
 * MUL_MAT_ID). The first failure (an existing entry of another
 * shape, out of memory) stops the collection and is kept in err; check it after
 * every decode. */
typedef struct {
    qfit_imatrix *im;
    bool          process_output;
    char          err[256];   /* "" while everything went well */
} qfit_imatrix_collector;

void qfit_imatrix_observe(void *collector, const char *weight, int64_t mat, int64_t n_mat, const float *x, int64_t n,
                          int64_t k, int64_t ld);

#ifdef __cplusplus
}
#endif
#endif /* QFIT_IMATRIX_H */
