/* qfit — GGUF (v2, v3) reader and writer.
 *
 * The reader memory-maps a file (or reads a caller's buffer), validates every
 * count, length, offset and type before it is used and keeps pointers into the
 * mapping: no tensor data is copied. Every error names the problem and the
 * byte offset where it was found.
 *
 * The writer collects metadata and tensor infos, then streams tensor data to a
 * temporary file next to the destination and renames it into place only when
 * everything was written (never a half-written file under the final name).
 * Core module: libc only.
 */
#ifndef QFIT_GGUF_H
#define QFIT_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QFIT_GGUF_MAGIC             0x46554747u /* "GGUF" little-endian */
#define QFIT_GGUF_DEFAULT_ALIGNMENT 32
#define QFIT_GGUF_MAX_DIMS          4

typedef enum {
    QFIT_GGUF_UINT8   = 0,
    QFIT_GGUF_INT8    = 1,
    QFIT_GGUF_UINT16  = 2,
    QFIT_GGUF_INT16   = 3,
    QFIT_GGUF_UINT32  = 4,
    QFIT_GGUF_INT32   = 5,
    QFIT_GGUF_FLOAT32 = 6,
    QFIT_GGUF_BOOL    = 7,
    QFIT_GGUF_STRING  = 8,
    QFIT_GGUF_ARRAY   = 9,
    QFIT_GGUF_UINT64  = 10,
    QFIT_GGUF_INT64   = 11,
    QFIT_GGUF_FLOAT64 = 12,
    QFIT_GGUF_TYPE_COUNT
} qfit_gguf_type;

const char *qfit_gguf_type_name(qfit_gguf_type t);
/* Size in bytes of a scalar value type; 0 for STRING/ARRAY/unknown. */
size_t qfit_gguf_type_size(qfit_gguf_type t);

/* A string inside the file (NOT NUL-terminated). */
typedef struct {
    const char *data;
    uint64_t    len;
} qfit_gguf_str;

/* ---------------------------------------------------------------- reader */

typedef struct qfit_gguf qfit_gguf;

typedef struct {
    qfit_gguf_str  name;
    uint32_t       n_dims;
    int64_t        ne[QFIT_GGUF_MAX_DIMS]; /* unused dims are 1 */
    int            type;                   /* qfit_type id */
    uint64_t       offset;                 /* relative to the data section */
    uint64_t       nbytes;                 /* bytes of the tensor's data */
    const void    *data;                   /* into the mapping / buffer */
} qfit_gguf_tensor;

/* Open and validate a file (mmap, read-only). NULL on error with a message in err. */
qfit_gguf *qfit_gguf_open(const char *path, char *err, size_t err_len);
/* Parse a caller-owned buffer; it must outlive the returned handle. */
qfit_gguf *qfit_gguf_open_buffer(const void *data, size_t size, char *err, size_t err_len);
void       qfit_gguf_close(qfit_gguf *g);

uint32_t   qfit_gguf_version(const qfit_gguf *g);
size_t     qfit_gguf_alignment(const qfit_gguf *g);
uint64_t   qfit_gguf_data_offset(const qfit_gguf *g);   /* start of the tensor data section */
uint64_t   qfit_gguf_file_size(const qfit_gguf *g);
const void *qfit_gguf_base(const qfit_gguf *g);         /* start of the mapping */

/* metadata */
int64_t        qfit_gguf_n_kv(const qfit_gguf *g);
int64_t        qfit_gguf_find_key(const qfit_gguf *g, const char *key);   /* -1 if absent */
qfit_gguf_str  qfit_gguf_key(const qfit_gguf *g, int64_t i);
qfit_gguf_type qfit_gguf_kv_type(const qfit_gguf *g, int64_t i);
/* Scalar accessors: the value must have exactly that type (else 0 / false / empty). */
uint8_t   qfit_gguf_get_u8 (const qfit_gguf *g, int64_t i);
int8_t    qfit_gguf_get_i8 (const qfit_gguf *g, int64_t i);
uint16_t  qfit_gguf_get_u16(const qfit_gguf *g, int64_t i);
int16_t   qfit_gguf_get_i16(const qfit_gguf *g, int64_t i);
uint32_t  qfit_gguf_get_u32(const qfit_gguf *g, int64_t i);
int32_t   qfit_gguf_get_i32(const qfit_gguf *g, int64_t i);
uint64_t  qfit_gguf_get_u64(const qfit_gguf *g, int64_t i);
int64_t   qfit_gguf_get_i64(const qfit_gguf *g, int64_t i);
float     qfit_gguf_get_f32(const qfit_gguf *g, int64_t i);
double    qfit_gguf_get_f64(const qfit_gguf *g, int64_t i);
bool      qfit_gguf_get_bool(const qfit_gguf *g, int64_t i);
qfit_gguf_str qfit_gguf_get_str(const qfit_gguf *g, int64_t i);
/* Any integer type converted (range-checked) to int64 / uint64; any float type to double.
 * Return false if the value is not of a compatible type or out of range. */
bool      qfit_gguf_get_int(const qfit_gguf *g, int64_t i, int64_t *out);
bool      qfit_gguf_get_uint(const qfit_gguf *g, int64_t i, uint64_t *out);
bool      qfit_gguf_get_float(const qfit_gguf *g, int64_t i, double *out);
/* Arrays. Nested arrays are supported: element values of an ARRAY array are
 * reached through qfit_gguf_arr_sub(). */
qfit_gguf_type qfit_gguf_arr_type(const qfit_gguf *g, int64_t i);
uint64_t       qfit_gguf_arr_len(const qfit_gguf *g, int64_t i);
/* Raw little-endian element data of a scalar-typed array (NULL for STRING/ARRAY arrays). */
const void    *qfit_gguf_arr_data(const qfit_gguf *g, int64_t i);
qfit_gguf_str  qfit_gguf_arr_str(const qfit_gguf *g, int64_t i, uint64_t j);

/* Generic value view, used for nested arrays and for copying values. */
typedef struct {
    qfit_gguf_type type;
    const uint8_t *raw;       /* the encoded value in the file (after the type tag) */
    uint64_t       raw_len;   /* its encoded length in bytes */
    /* for arrays: */
    qfit_gguf_type arr_type;
    uint64_t       arr_len;
} qfit_gguf_value;
qfit_gguf_value qfit_gguf_kv_value(const qfit_gguf *g, int64_t i);
/* Element j of an array value (valid j < arr_len); for nested arrays. */
bool qfit_gguf_value_elem(const qfit_gguf_value *arr, uint64_t j, qfit_gguf_value *out);

/* Convenience: look a key up and read it; return def when absent or of another type. */
int64_t     qfit_gguf_get_int_or(const qfit_gguf *g, const char *key, int64_t def);
double      qfit_gguf_get_float_or(const qfit_gguf *g, const char *key, double def);
/* Copies at most cap-1 bytes and NUL-terminates; returns false if absent or not a string. */
bool        qfit_gguf_get_string(const qfit_gguf *g, const char *key, char *buf, size_t cap);

/* tensors */
int64_t qfit_gguf_n_tensors(const qfit_gguf *g);
int64_t qfit_gguf_find_tensor(const qfit_gguf *g, const char *name);  /* -1 if absent */
const qfit_gguf_tensor *qfit_gguf_tensor_at(const qfit_gguf *g, int64_t i);
/* Number of elements (product of ne). */
int64_t qfit_gguf_tensor_nelements(const qfit_gguf_tensor *t);

/* ---------------------------------------------------------------- writer */

typedef struct qfit_gguf_writer qfit_gguf_writer;

qfit_gguf_writer *qfit_gguf_writer_new(void);
void qfit_gguf_writer_free(qfit_gguf_writer *w);   /* also aborts an unfinished file */

/* Metadata (a key set twice keeps its position, takes the new value). 0 on success. */
int qfit_gguf_set_u8 (qfit_gguf_writer *w, const char *key, uint8_t v);
int qfit_gguf_set_i8 (qfit_gguf_writer *w, const char *key, int8_t v);
int qfit_gguf_set_u16(qfit_gguf_writer *w, const char *key, uint16_t v);
int qfit_gguf_set_i16(qfit_gguf_writer *w, const char *key, int16_t v);
int qfit_gguf_set_u32(qfit_gguf_writer *w, const char *key, uint32_t v);
int qfit_gguf_set_i32(qfit_gguf_writer *w, const char *key, int32_t v);
int qfit_gguf_set_u64(qfit_gguf_writer *w, const char *key, uint64_t v);
int qfit_gguf_set_i64(qfit_gguf_writer *w, const char *key, int64_t v);
int qfit_gguf_set_f32(qfit_gguf_writer *w, const char *key, float v);
int qfit_gguf_set_f64(qfit_gguf_writer *w, const char *key, double v);
int qfit_gguf_set_bool(qfit_gguf_writer *w, const char *key, bool v);
int qfit_gguf_set_str(qfit_gguf_writer *w, const char *key, const char *v);
/* Array of scalars (elem_type not STRING/ARRAY), n elements of little-endian data. */
int qfit_gguf_set_arr(qfit_gguf_writer *w, const char *key, qfit_gguf_type elem_type,
                      const void *data, uint64_t n);
int qfit_gguf_set_arr_str(qfit_gguf_writer *w, const char *key, const char *const *strs, uint64_t n);
/* Copy one key/value (any type, nested arrays included) from a reader. */
int qfit_gguf_copy_kv(qfit_gguf_writer *w, const qfit_gguf *src, int64_t i);
/* Copy all metadata of src (its general.alignment included). */
int qfit_gguf_copy_all_kv(qfit_gguf_writer *w, const qfit_gguf *src);
int qfit_gguf_remove_key(qfit_gguf_writer *w, const char *key);

/* Declare a tensor (order of calls = order in the file). ne has n_dims entries. */
int qfit_gguf_add_tensor(qfit_gguf_writer *w, const char *name, uint32_t n_dims,
                         const int64_t *ne, int type);

/* Writing: begin() creates "<path>.tmp.XXXXXX" and writes header, metadata and tensor
 * infos; write_tensor() must then be called once per tensor in declaration order with
 * exactly its byte size; finish() pads, flushes, fsyncs and renames to path.
 * On any error the temporary file is removed. All return 0 on success, -1 with a
 * message in err otherwise. */
int qfit_gguf_writer_begin(qfit_gguf_writer *w, const char *path, char *err, size_t err_len);
int qfit_gguf_writer_write_tensor(qfit_gguf_writer *w, const void *data, size_t nbytes,
                                  char *err, size_t err_len);
int qfit_gguf_writer_finish(qfit_gguf_writer *w, char *err, size_t err_len);
/* Bytes the file will have (header + metadata + infos + padded data); valid after
 * all tensors are declared. */
uint64_t qfit_gguf_writer_file_size(const qfit_gguf_writer *w);
uint64_t qfit_gguf_writer_data_offset(const qfit_gguf_writer *w);

#ifdef __cplusplus
}
#endif
#endif /* QFIT_GGUF_H */
