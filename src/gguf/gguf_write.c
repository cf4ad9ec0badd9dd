/* GGUF writer (version 3, little-endian).
 *
 * Metadata and tensor infos are collected in memory; begin() creates a
 * temporary file next to the destination and writes everything up to the data
 * section, write_tensor() streams each tensor's bytes (followed by zero padding
 * to the alignment), finish() syncs and renames the file into place.
 */
#include "gguf/gguf_internal.h"
#include "qfit/quant.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WBUF_BYTES (1u << 20)

typedef struct {
    char          *key;
    qfit_gguf_type type;
    uint8_t       *raw;      /* the encoded value (after the type tag) */
    uint64_t       raw_len;
} wkv;

typedef struct {
    char    *name;
    uint32_t n_dims;
    int64_t  ne[QFIT_GGUF_MAX_DIMS];
    int      type;
    uint64_t nbytes;
} wtensor;

enum { ST_COLLECT, ST_WRITING, ST_DONE, ST_FAILED };

struct qfit_gguf_writer {
    wkv     *kvs;
    size_t   n_kv, cap_kv;
    wtensor *ts;
    size_t   n_t, cap_t;

    int      state;
    int      fd;
    char    *tmp_path;
    char    *path;
    size_t   alignment;
    size_t   next;       /* next tensor to write */
    uint64_t written;    /* bytes written to the file so far */
    uint8_t *buf;
    size_t   buf_len;
};

/* ------------------------------------------------------------ collection */

qfit_gguf_writer *qfit_gguf_writer_new(void)
{
    qfit_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->fd = -1;
    w->alignment = QFIT_GGUF_DEFAULT_ALIGNMENT;
    return w;
}

static void abort_file(qfit_gguf_writer *w)
{
    if (w->fd >= 0) { close(w->fd); w->fd = -1; }
    if (w->tmp_path) { unlink(w->tmp_path); free(w->tmp_path); w->tmp_path = NULL; }
}

void qfit_gguf_writer_free(qfit_gguf_writer *w)
{
    if (!w) return;
    abort_file(w);
    for (size_t i = 0; i < w->n_kv; i++) { free(w->kvs[i].key); free(w->kvs[i].raw); }
    free(w->kvs);
    for (size_t i = 0; i < w->n_t; i++) free(w->ts[i].name);
    free(w->ts);
    free(w->path);
    free(w->buf);
    free(w);
}

static int64_t find_kv(const qfit_gguf_writer *w, const char *key)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kvs[i].key, key) == 0) return (int64_t)i;
    return -1;
}

/* Takes ownership of raw (freed on failure too). */
static int put_kv(qfit_gguf_writer *w, const char *key, qfit_gguf_type type, uint8_t *raw, uint64_t raw_len)
{
    if (!w || !key || !*key || w->state != ST_COLLECT || (!raw && raw_len)) { free(raw); return -1; }
    int64_t i = find_kv(w, key);
    if (i >= 0) {
        free(w->kvs[i].raw);
        w->kvs[i].type = type;
        w->kvs[i].raw = raw;
        w->kvs[i].raw_len = raw_len;
        return 0;
    }
    if (w->n_kv == w->cap_kv) {
        size_t ncap = w->cap_kv ? w->cap_kv * 2 : 32;
        wkv *nk = realloc(w->kvs, ncap * sizeof *nk);
        if (!nk) { free(raw); return -1; }
        w->kvs = nk;
        w->cap_kv = ncap;
    }
    char *k = strdup(key);
    if (!k) { free(raw); return -1; }
    w->kvs[w->n_kv++] = (wkv){ k, type, raw, raw_len };
    return 0;
}

static void st32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void st64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static int put_scalar(qfit_gguf_writer *w, const char *key, qfit_gguf_type t, uint64_t bits)
{
    size_t n = qfit_gguf_type_size(t);
    uint8_t *raw = malloc(n);
    if (!raw) return -1;
    for (size_t i = 0; i < n; i++) raw[i] = (uint8_t)(bits >> (8 * i));
    return put_kv(w, key, t, raw, n);
}

int qfit_gguf_set_u8(qfit_gguf_writer *w, const char *key, uint8_t v)   { return put_scalar(w, key, QFIT_GGUF_UINT8, v); }
int qfit_gguf_set_i8(qfit_gguf_writer *w, const char *key, int8_t v)    { return put_scalar(w, key, QFIT_GGUF_INT8, (uint8_t)v); }
int qfit_gguf_set_u16(qfit_gguf_writer *w, const char *key, uint16_t v) { return put_scalar(w, key, QFIT_GGUF_UINT16, v); }
int qfit_gguf_set_i16(qfit_gguf_writer *w, const char *key, int16_t v)  { return put_scalar(w, key, QFIT_GGUF_INT16, (uint16_t)v); }
int qfit_gguf_set_u32(qfit_gguf_writer *w, const char *key, uint32_t v) { return put_scalar(w, key, QFIT_GGUF_UINT32, v); }
int qfit_gguf_set_i32(qfit_gguf_writer *w, const char *key, int32_t v)  { return put_scalar(w, key, QFIT_GGUF_INT32, (uint32_t)v); }
int qfit_gguf_set_u64(qfit_gguf_writer *w, const char *key, uint64_t v) { return put_scalar(w, key, QFIT_GGUF_UINT64, v); }
int qfit_gguf_set_i64(qfit_gguf_writer *w, const char *key, int64_t v)  { return put_scalar(w, key, QFIT_GGUF_INT64, (uint64_t)v); }
int qfit_gguf_set_bool(qfit_gguf_writer *w, const char *key, bool v)    { return put_scalar(w, key, QFIT_GGUF_BOOL, v ? 1 : 0); }

int qfit_gguf_set_f32(qfit_gguf_writer *w, const char *key, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return put_scalar(w, key, QFIT_GGUF_FLOAT32, u);
}

int qfit_gguf_set_f64(qfit_gguf_writer *w, const char *key, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return put_scalar(w, key, QFIT_GGUF_FLOAT64, u);
}

int qfit_gguf_set_str(qfit_gguf_writer *w, const char *key, const char *v)
{
    if (!v) return -1;
    size_t n = strlen(v);
    uint8_t *raw = malloc(8 + n);
    if (!raw) return -1;
    st64(raw, n);
    memcpy(raw + 8, v, n);
    return put_kv(w, key, QFIT_GGUF_STRING, raw, 8 + n);
}

int qfit_gguf_set_arr(qfit_gguf_writer *w, const char *key, qfit_gguf_type elem_type,
                      const void *data, uint64_t n)
{
    size_t sz = qfit_gguf_type_size(elem_type);
    if (sz == 0 || (n > 0 && !data) || n > (SIZE_MAX - 12) / sz) return -1;
    const uint8_t *d = data;
    if (elem_type == QFIT_GGUF_BOOL)
        for (uint64_t j = 0; j < n; j++)
            if (d[j] > 1) return -1;
    uint8_t *raw = malloc(12 + (size_t)n * sz);
    if (!raw) return -1;
    st32(raw, (uint32_t)elem_type);
    st64(raw + 4, n);
    if (n) memcpy(raw + 12, data, (size_t)n * sz);
    return put_kv(w, key, QFIT_GGUF_ARRAY, raw, 12 + n * sz);
}

int qfit_gguf_set_arr_str(qfit_gguf_writer *w, const char *key, const char *const *strs, uint64_t n)
{
    if (n > 0 && !strs) return -1;
    uint64_t total = 12;
    for (uint64_t j = 0; j < n; j++) {
        if (!strs[j]) return -1;
        total += 8 + strlen(strs[j]);
    }
    if (total > SIZE_MAX) return -1;
    uint8_t *raw = malloc((size_t)total);
    if (!raw) return -1;
    st32(raw, QFIT_GGUF_STRING);
    st64(raw + 4, n);
    size_t pos = 12;
    for (uint64_t j = 0; j < n; j++) {
        size_t l = strlen(strs[j]);
        st64(raw + pos, l);
        memcpy(raw + pos + 8, strs[j], l);
        pos += 8 + l;
    }
    return put_kv(w, key, QFIT_GGUF_ARRAY, raw, total);
}

int qfit_gguf_copy_kv(qfit_gguf_writer *w, const qfit_gguf *src, int64_t i)
{
    if (!w || !src || i < 0 || i >= qfit_gguf_n_kv(src)) return -1;
    qfit_gguf_str k = qfit_gguf_key(src, i);
    qfit_gguf_value v = qfit_gguf_kv_value(src, i);
    if (k.len == 0 || memchr(k.data, 0, (size_t)k.len)) return -1; /* not representable as a C key */
    uint64_t check;
    if (!qfit_gguf_value_extent(v.raw, v.raw_len, v.type, 0, &check) || check != v.raw_len) return -1;
    char *key = malloc((size_t)k.len + 1);
    uint8_t *raw = malloc(v.raw_len ? (size_t)v.raw_len : 1);
    if (!key || !raw) { free(key); free(raw); return -1; }
    memcpy(key, k.data, (size_t)k.len);
    key[k.len] = 0;
    memcpy(raw, v.raw, (size_t)v.raw_len);
    int rc = put_kv(w, key, v.type, raw, v.raw_len);
    free(key);
    return rc;
}

int qfit_gguf_copy_all_kv(qfit_gguf_writer *w, const qfit_gguf *src)
{
    if (!w || !src) return -1;
    for (int64_t i = 0; i < qfit_gguf_n_kv(src); i++)
        if (qfit_gguf_copy_kv(w, src, i) != 0) return -1;
    return 0;
}

int qfit_gguf_remove_key(qfit_gguf_writer *w, const char *key)
{
    if (!w || !key || w->state != ST_COLLECT) return -1;
    int64_t i = find_kv(w, key);
    if (i < 0) return -1;
    free(w->kvs[i].key);
    free(w->kvs[i].raw);
    memmove(&w->kvs[i], &w->kvs[i + 1], (w->n_kv - (size_t)i - 1) * sizeof *w->kvs);
    w->n_kv--;
    return 0;
}

int qfit_gguf_add_tensor(qfit_gguf_writer *w, const char *name, uint32_t n_dims,
                         const int64_t *ne, int type)
{
    if (!w || !name || w->state != ST_COLLECT) return -1;
    size_t len = strlen(name);
    if (len == 0 || len > QFIT_GGUF_MAX_NAME) return -1;
    if (n_dims > QFIT_GGUF_MAX_DIMS || (n_dims > 0 && !ne)) return -1;
    const qfit_type_traits *tr = qfit_type_get_traits(type);
    if (!tr) return -1;
    wtensor t = { NULL, n_dims, { 1, 1, 1, 1 }, type, 0 };
    int64_t nrows = 1, nel = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] < 0) return -1;
        t.ne[d] = ne[d];
        if (__builtin_mul_overflow(nel, ne[d], &nel)) return -1;
        if (d > 0 && __builtin_mul_overflow(nrows, ne[d], &nrows)) return -1;
    }
    if (tr->block_size <= 0 || t.ne[0] % tr->block_size != 0) return -1;
    if (nel > 0) {
        size_t nb = qfit_tensor_nbytes(type, t.ne[0], nrows);
        if (nb == SIZE_MAX) return -1;
        t.nbytes = nb;
    }
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->ts[i].name, name) == 0) return -1;
    if (w->n_t == w->cap_t) {
        size_t ncap = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *nt = realloc(w->ts, ncap * sizeof *nt);
        if (!nt) return -1;
        w->ts = nt;
        w->cap_t = ncap;
    }
    t.name = strdup(name);
    if (!t.name) return -1;
    w->ts[w->n_t++] = t;
    return 0;
}

/* ------------------------------------------------------------ layout */

static uint64_t pad_to(uint64_t x, uint64_t a) { return x + (a - x % a) % a; }

/* The alignment the file will use: general.alignment when it is a valid u32, else the default. */
static int layout_alignment(const qfit_gguf_writer *w, size_t *out)
{
    *out = QFIT_GGUF_DEFAULT_ALIGNMENT;
    int64_t i = find_kv(w, QFIT_GGUF_KEY_ALIGNMENT);
    if (i < 0) return 0;
    const wkv *e = &w->kvs[i];
    if (e->type != QFIT_GGUF_UINT32 || e->raw_len != 4) return -1;
    uint32_t a = qfit_gguf_ld32(e->raw);
    if (a == 0 || (a & (a - 1)) != 0) return -1;
    *out = a;
    return 0;
}

static uint64_t meta_bytes(const qfit_gguf_writer *w)
{
    uint64_t n = 24;
    for (size_t i = 0; i < w->n_kv; i++) n += 8 + strlen(w->kvs[i].key) + 4 + w->kvs[i].raw_len;
    for (size_t i = 0; i < w->n_t; i++) n += 8 + strlen(w->ts[i].name) + 4 + 8ull * w->ts[i].n_dims + 4 + 8;
    return n;
}

uint64_t qfit_gguf_writer_data_offset(const qfit_gguf_writer *w)
{
    size_t a;
    layout_alignment(w, &a);
    return pad_to(meta_bytes(w), a);
}

uint64_t qfit_gguf_writer_file_size(const qfit_gguf_writer *w)
{
    size_t a;
    layout_alignment(w, &a);
    uint64_t n = pad_to(meta_bytes(w), a);
    for (size_t i = 0; i < w->n_t; i++) n += pad_to(w->ts[i].nbytes, a);
    return n;
}

/* ------------------------------------------------------------ output */

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int wfail(qfit_gguf_writer *w, char *err, size_t err_len, const char *fmt, ...)
{
    if (err && err_len) {
        int n = snprintf(err, err_len, "gguf writer: ");
        if (n >= 0 && (size_t)n < err_len) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, err_len - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    if (w && (w->state == ST_WRITING || w->state == ST_COLLECT)) {
        abort_file(w);
        if (w->state == ST_WRITING) w->state = ST_FAILED;
    }
    return -1;
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = write(fd, b, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (k == 0) { errno = EIO; return -1; }
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

static int flush_buf(qfit_gguf_writer *w)
{
    if (w->buf_len == 0) return 0;
    if (write_all(w->fd, w->buf, w->buf_len) != 0) return -1;
    w->buf_len = 0;
    return 0;
}

static int out(qfit_gguf_writer *w, const void *p, size_t n)
{
    w->written += n;
    if (n >= WBUF_BYTES) {
        if (flush_buf(w) != 0) return -1;
        return write_all(w->fd, p, n);
    }
    if (w->buf_len + n > WBUF_BYTES && flush_buf(w) != 0) return -1;
    memcpy(w->buf + w->buf_len, p, n);
    w->buf_len += n;
    return 0;
}

static int out32(qfit_gguf_writer *w, uint32_t v) { uint8_t b[4]; st32(b, v); return out(w, b, 4); }
static int out64(qfit_gguf_writer *w, uint64_t v) { uint8_t b[8]; st64(b, v); return out(w, b, 8); }
static int out_str(qfit_gguf_writer *w, const char *s)
{
    size_t n = strlen(s);
    return out64(w, n) || out(w, s, n);
}

static int out_pad(qfit_gguf_writer *w)
{
    static const uint8_t zeros[256];
    uint64_t n = (w->alignment - w->written % w->alignment) % w->alignment;
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (out(w, zeros, k) != 0) return -1;
        n -= k;
    }
    return 0;
}

int qfit_gguf_writer_begin(qfit_gguf_writer *w, const char *path, char *err, size_t err_len)
{
    if (err && err_len) err[0] = 0;
    if (!w || !path || !*path) return wfail(NULL, err, err_len, "no writer or empty path");
    if (w->state != ST_COLLECT) return wfail(NULL, err, err_len, "begin() called twice");
    if (layout_alignment(w, &w->alignment) != 0)
        return wfail(NULL, err, err_len, "general.alignment must be a u32 that is a nonzero power of two");
    w->buf = malloc(WBUF_BYTES);
    w->path = strdup(path);
    size_t tl = strlen(path) + 16;
    w->tmp_path = malloc(tl);
    if (!w->buf || !w->path || !w->tmp_path) {
        free(w->tmp_path);
        w->tmp_path = NULL;
        return wfail(NULL, err, err_len, "out of memory");
    }
    snprintf(w->tmp_path, tl, "%s.tmp.XXXXXX", path);
    w->fd = mkstemp(w->tmp_path);
    if (w->fd < 0) {
        int e = errno;
        free(w->tmp_path);
        w->tmp_path = NULL;
        return wfail(NULL, err, err_len, "cannot create a temporary file next to '%s': %s", path, strerror(e));
    }
    if (fchmod(w->fd, 0644) != 0) { /* best effort: mkstemp makes 0600 */ }
    w->state = ST_WRITING;
    w->written = 0;
    w->next = 0;

    int rc = out32(w, QFIT_GGUF_MAGIC) || out32(w, 3) || out64(w, w->n_t) || out64(w, w->n_kv);
    for (size_t i = 0; !rc && i < w->n_kv; i++) {
        const wkv *e = &w->kvs[i];
        rc = out_str(w, e->key) || out32(w, (uint32_t)e->type) || out(w, e->raw, (size_t)e->raw_len);
    }
    uint64_t off = 0;
    for (size_t i = 0; !rc && i < w->n_t; i++) {
        const wtensor *t = &w->ts[i];
        rc = out_str(w, t->name) || out32(w, t->n_dims);
        for (uint32_t d = 0; !rc && d < t->n_dims; d++) rc = out64(w, (uint64_t)t->ne[d]);
        rc = rc || out32(w, (uint32_t)t->type) || out64(w, off);
        off += pad_to(t->nbytes, w->alignment);
    }
    rc = rc || out_pad(w);
    if (rc) return wfail(w, err, err_len, "writing '%s': %s", w->tmp_path, strerror(errno));
    return 0;
}

int qfit_gguf_writer_write_tensor(qfit_gguf_writer *w, const void *data, size_t nbytes,
                                  char *err, size_t err_len)
{
    if (err && err_len) err[0] = 0;
    if (!w || w->state != ST_WRITING) return wfail(NULL, err, err_len, "write_tensor() outside begin()/finish()");
    if (w->next >= w->n_t)
        return wfail(w, err, err_len, "write_tensor(): all %zu declared tensors were already written", w->n_t);
    const wtensor *t = &w->ts[w->next];
    if (nbytes != t->nbytes)
        return wfail(w, err, err_len, "tensor '%s' needs %" PRIu64 " bytes, %zu were given", t->name, t->nbytes, nbytes);
    if (nbytes > 0 && !data) return wfail(w, err, err_len, "tensor '%s': no data", t->name);
    if ((nbytes > 0 && out(w, data, nbytes) != 0) || out_pad(w) != 0)
        return wfail(w, err, err_len, "writing '%s': %s", w->tmp_path, strerror(errno));
    w->next++;
    return 0;
}

int qfit_gguf_writer_finish(qfit_gguf_writer *w, char *err, size_t err_len)
{
    if (err && err_len) err[0] = 0;
    if (!w || w->state != ST_WRITING) return wfail(NULL, err, err_len, "finish() without a successful begin()");
    if (w->next != w->n_t)
        return wfail(w, err, err_len, "finish(): only %zu of %zu tensors were written", w->next, w->n_t);
    if (flush_buf(w) != 0) return wfail(w, err, err_len, "writing '%s': %s", w->tmp_path, strerror(errno));
    if (fsync(w->fd) != 0) return wfail(w, err, err_len, "fsync '%s': %s", w->tmp_path, strerror(errno));
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0) return wfail(w, err, err_len, "closing '%s': %s", w->tmp_path, strerror(errno));
    if (rename(w->tmp_path, w->path) != 0)
        return wfail(w, err, err_len, "renaming '%s' to '%s': %s", w->tmp_path, w->path, strerror(errno));
    free(w->tmp_path);
    w->tmp_path = NULL;
    w->state = ST_DONE;
    /* make the rename durable: sync the directory (best effort) */
    char *dir = strdup(w->path);
    if (dir) {
        char *slash = strrchr(dir, '/');
        const char *d = ".";
        if (slash == dir) d = "/";
        else if (slash) { *slash = 0; d = dir; }
        int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) { if (fsync(dfd) != 0) { /* best effort */ } close(dfd); }
        free(dir);
    }
    return 0;
}
