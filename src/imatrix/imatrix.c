/* qfit — importance matrices: entries, GGUF and legacy .dat files
 * (format facts from llama.cpp's tools/imatrix/imatrix.cpp and
 * tools/quantize/quantize.cpp; see include/qfit/imatrix.h). */
#include "qfit/imatrix.h"
#include "qfit/gguf.h"
#include "qfit/quant.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IM_SUFFIX_SUM2   ".in_sum2"
#define IM_SUFFIX_COUNTS ".counts"
#define IM_SUFFIX_SUM    ".in_sum"
#define IM_MAX_FILE      ((size_t)1 << 31)   /* legacy files read into memory */
#define IM_MAX_DATASETS  4096

static void im_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || !err_len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

qfit_imatrix *qfit_imatrix_new(void)
{
    return calloc(1, sizeof(qfit_imatrix));
}

static void entry_free(qfit_imatrix_entry *e)
{
    free(e->name);
    free(e->sum2);
    free(e->counts);
}

static void datasets_clear(qfit_imatrix *im)
{
    for (size_t i = 0; i < im->n_datasets; i++) free(im->datasets[i]);
    free(im->datasets);
    im->datasets = NULL;
    im->n_datasets = 0;
}

void qfit_imatrix_free(qfit_imatrix *im)
{
    if (!im) return;
    for (size_t i = 0; i < im->n_entries; i++) entry_free(&im->entries[i]);
    free(im->entries);
    datasets_clear(im);
    free(im);
}

const qfit_imatrix_entry *qfit_imatrix_find(const qfit_imatrix *im, const char *name)
{
    if (!im || !name) return NULL;
    for (size_t i = 0; i < im->n_entries; i++)
        if (strcmp(im->entries[i].name, name) == 0) return &im->entries[i];
    return NULL;
}

/* name given as bytes (not NUL-terminated) */
static qfit_imatrix_entry *entry_add(qfit_imatrix *im, const char *name, size_t name_len,
                                     int64_t n_per_mat, int64_t n_mat, char *err, size_t err_len)
{
    if (name_len == 0 || name_len > QFIT_IMATRIX_MAX_NAME || memchr(name, 0, name_len)) {
        im_err(err, err_len, "entry name '%.*s' is empty, longer than %d bytes or holds a NUL byte",
               (int)(name_len > 80 ? 80 : name_len), name, QFIT_IMATRIX_MAX_NAME);
        return NULL;
    }
    if (n_per_mat <= 0 || n_mat <= 0 || n_per_mat > ((int64_t)1 << 32) || n_mat > 65536 ||
        (uint64_t)n_per_mat * (uint64_t)n_mat > ((uint64_t)1 << 32)) {
        im_err(err, err_len, "entry '%.*s': invalid shape %lld x %lld", (int)name_len, name,
               (long long)n_per_mat, (long long)n_mat);
        return NULL;
    }
    for (size_t i = 0; i < im->n_entries; i++) {
        if (strlen(im->entries[i].name) == name_len && memcmp(im->entries[i].name, name, name_len) == 0) {
            im_err(err, err_len, "entry '%.*s' appears twice", (int)name_len, name);
            return NULL;
        }
    }
    if (im->n_entries == im->cap) {
        size_t nc = im->cap ? im->cap * 2 : 16;
        qfit_imatrix_entry *ne = realloc(im->entries, nc * sizeof *ne);
        if (!ne) { im_err(err, err_len, "out of memory"); return NULL; }
        im->entries = ne;
        im->cap = nc;
    }
    qfit_imatrix_entry *e = &im->entries[im->n_entries];
    memset(e, 0, sizeof *e);
    e->name = malloc(name_len + 1);
    e->sum2 = calloc((size_t)(n_per_mat * n_mat), sizeof *e->sum2);
    e->counts = calloc((size_t)n_mat, sizeof *e->counts);
    if (!e->name || !e->sum2 || !e->counts) {
        entry_free(e);
        im_err(err, err_len, "out of memory");
        return NULL;
    }
    memcpy(e->name, name, name_len);
    e->name[name_len] = 0;
    e->n_per_mat = n_per_mat;
    e->n_mat = n_mat;
    im->n_entries++;
    return e;
}

qfit_imatrix_entry *qfit_imatrix_entry_get(qfit_imatrix *im, const char *name, int64_t n_per_mat,
                                           int64_t n_mat, char *err, size_t err_len)
{
    if (!im || !name) { im_err(err, err_len, "invalid arguments"); return NULL; }
    qfit_imatrix_entry *e = (qfit_imatrix_entry *)qfit_imatrix_find(im, name);
    if (e) {
        if (e->n_per_mat != n_per_mat || e->n_mat != n_mat) {
            im_err(err, err_len, "entry '%s' has shape %lld x %lld, not %lld x %lld", name,
                   (long long)e->n_per_mat, (long long)e->n_mat, (long long)n_per_mat, (long long)n_mat);
            return NULL;
        }
        return e;
    }
    return entry_add(im, name, strlen(name), n_per_mat, n_mat, err, err_len);
}

void qfit_imatrix_accumulate(qfit_imatrix_entry *e, int64_t mat, const float *x,
                             int64_t n_tokens, int64_t stride)
{
    double *s = e->sum2 + mat * e->n_per_mat;
    for (int64_t t = 0; t < n_tokens; t++) {
        const float *xt = x + t * stride;
        for (int64_t j = 0; j < e->n_per_mat; j++) s[j] += (double)xt[j] * (double)xt[j];
    }
    e->counts[mat] += n_tokens;
}

void qfit_imatrix_weights(const qfit_imatrix_entry *e, float *out)
{
    for (int64_t m = 0; m < e->n_mat; m++) {
        /* in double, rounded once: for float sums and counts this is exactly
         * llama-quantize's float division, and it cannot overflow */
        const double c = (double)e->counts[m];
        float *o = out + m * e->n_per_mat;
        const double *s = e->sum2 + m * e->n_per_mat;
        for (int64_t j = 0; j < e->n_per_mat; j++) o[j] = c > 0 ? (float)(s[j] / c) : 1.0f;
    }
}

#define IM_MIN_ROWS 16   /* llama-imatrix skips matmuls over fewer rows */

void qfit_imatrix_observe(void *collector, const char *weight, int64_t mat, int64_t n_mat, const float *x, int64_t n,
                          int64_t k, int64_t ld)
{
    qfit_imatrix_collector *co = collector;
    /* experts (n_mat > 1) count every routed row, as llama-imatrix's MUL_MAT_ID */
    if (co->err[0] || (n_mat == 1 && n < IM_MIN_ROWS) || mat < 0 || mat >= n_mat) return;
    if (strncmp(weight, "blk.", 4) != 0 && !(co->process_output && strcmp(weight, "output.weight") == 0)) return;
    qfit_imatrix_entry *e = qfit_imatrix_entry_get(co->im, weight, k, n_mat, co->err, sizeof co->err);
    if (e) qfit_imatrix_accumulate(e, mat, x, n, ld);
}

static int set_dataset_n(qfit_imatrix *im, const char *name, size_t len, char *err, size_t err_len)
{
    char **d = realloc(im->datasets, (im->n_datasets + 1) * sizeof *d);
    if (!d) { im_err(err, err_len, "out of memory"); return -1; }
    im->datasets = d;
    char *s = malloc(len + 1);
    if (!s) { im_err(err, err_len, "out of memory"); return -1; }
    memcpy(s, name, len);
    s[len] = 0;
    im->datasets[im->n_datasets++] = s;
    return 0;
}

int qfit_imatrix_set_dataset(qfit_imatrix *im, const char *name, char *err, size_t err_len)
{
    if (!im || !name) { im_err(err, err_len, "invalid arguments"); return -1; }
    datasets_clear(im);
    return set_dataset_n(im, name, strlen(name), err, err_len);
}

/* ---------------------------------------------------------------- loading */

static bool has_suffix(const qfit_gguf_str *s, const char *suffix, size_t *base_len)
{
    const size_t n = strlen(suffix);
    if (s->len <= n || memcmp(s->data + s->len - n, suffix, n) != 0) return false;
    *base_len = (size_t)s->len - n;
    return true;
}

static bool uint_key(const qfit_gguf *g, const char *key, uint32_t *out, char *err, size_t err_len)
{
    const int64_t k = qfit_gguf_find_key(g, key);
    uint64_t v;
    if (k < 0) { im_err(err, err_len, "missing key %s", key); return false; }
    if (!qfit_gguf_get_uint(g, k, &v) || v > UINT32_MAX) {
        im_err(err, err_len, "key %s is not an unsigned 32-bit integer", key);
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

static const qfit_gguf_tensor *find_part(const qfit_gguf *g, const qfit_gguf_str *base, const char *suffix)
{
    char name[QFIT_IMATRIX_MAX_NAME + 16];
    if (base->len + strlen(suffix) >= sizeof name) return NULL;
    memcpy(name, base->data, base->len);
    strcpy(name + base->len, suffix);
    const int64_t i = qfit_gguf_find_tensor(g, name);
    return i < 0 ? NULL : qfit_gguf_tensor_at(g, i);
}

static bool f32_values_ok(const qfit_gguf_tensor *t, const char *what, const qfit_gguf_str *base,
                          char *err, size_t err_len)
{
    if (t->type != QFIT_TYPE_F32) {
        im_err(err, err_len, "entry '%.*s': %s is %s, not f32", (int)base->len, base->data, what,
               qfit_type_name(t->type));
        return false;
    }
    return true;
}

static qfit_imatrix *load_gguf(const qfit_gguf *g, char *err, size_t err_len)
{
    qfit_imatrix *im = qfit_imatrix_new();
    if (!im) { im_err(err, err_len, "out of memory"); return NULL; }
    char gerr[256];

    /* llama-quantize refuses a file without these three keys; so do we */
    const int64_t kd = qfit_gguf_find_key(g, "imatrix.datasets");
    if (kd < 0 || qfit_gguf_kv_type(g, kd) != QFIT_GGUF_ARRAY || qfit_gguf_arr_type(g, kd) != QFIT_GGUF_STRING) {
        im_err(err, err_len, "key imatrix.datasets is missing or not an array of strings");
        goto fail;
    }
    if (!uint_key(g, "imatrix.chunk_count", &im->chunk_count, err, err_len) ||
        !uint_key(g, "imatrix.chunk_size", &im->chunk_size, err, err_len))
        goto fail;
    const uint64_t nd = qfit_gguf_arr_len(g, kd);
    if (nd > IM_MAX_DATASETS) {
        im_err(err, err_len, "imatrix.datasets has %llu entries (at most %d)", (unsigned long long)nd, IM_MAX_DATASETS);
        goto fail;
    }
    for (uint64_t i = 0; i < nd; i++) {
        qfit_gguf_str s = qfit_gguf_arr_str(g, kd, i);
        if (s.len > 65536 || memchr(s.data, 0, (size_t)s.len)) {
            im_err(err, err_len, "imatrix.datasets[%llu] is longer than 65536 bytes or holds a NUL byte",
                   (unsigned long long)i);
            goto fail;
        }
        if (set_dataset_n(im, s.data, (size_t)s.len, err, err_len) < 0) goto fail;
    }

    const int64_t nt = qfit_gguf_n_tensors(g);
    for (int64_t i = 0; i < nt; i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        qfit_gguf_str base = { t->name.data, 0 };
        size_t bl;
        /* every part needs its partner; the entry is built from its in_sum2 */
        if (has_suffix(&t->name, IM_SUFFIX_COUNTS, &bl) || has_suffix(&t->name, IM_SUFFIX_SUM, &bl)) {
            base.len = bl;
            if (!find_part(g, &base, IM_SUFFIX_SUM2)) {
                im_err(err, err_len, "entry '%.*s': tensor %.*s has no %s partner", (int)bl, base.data,
                       (int)t->name.len, t->name.data, IM_SUFFIX_SUM2);
                goto fail;
            }
            continue;
        }
        if (!has_suffix(&t->name, IM_SUFFIX_SUM2, &bl)) continue;   /* other tensors: ignored */
        base.len = bl;
        const qfit_gguf_tensor *c = find_part(g, &base, IM_SUFFIX_COUNTS);
        if (!c) {
            im_err(err, err_len, "entry '%.*s': %s without %s", (int)bl, base.data, IM_SUFFIX_SUM2, IM_SUFFIX_COUNTS);
            goto fail;
        }
        if (!f32_values_ok(t, IM_SUFFIX_SUM2, &base, err, err_len) ||
            !f32_values_ok(c, IM_SUFFIX_COUNTS, &base, err, err_len))
            goto fail;
        if (t->n_dims > 2 || c->n_dims > 2) {
            im_err(err, err_len, "entry '%.*s': sums or counts have more than 2 dimensions", (int)bl, base.data);
            goto fail;
        }
        const int64_t n_per_mat = t->ne[0], n_mat = t->ne[1];
        if (qfit_gguf_tensor_nelements(c) != n_mat) {
            im_err(err, err_len, "entry '%.*s': %lld counts for %lld matrices", (int)bl, base.data,
                   (long long)qfit_gguf_tensor_nelements(c), (long long)n_mat);
            goto fail;
        }
        const qfit_gguf_tensor *s1 = find_part(g, &base, IM_SUFFIX_SUM);
        if (s1 && (s1->type != QFIT_TYPE_F32 || qfit_gguf_tensor_nelements(s1) != n_per_mat * n_mat)) {
            im_err(err, err_len, "entry '%.*s': %s does not match %s in type or size", (int)bl, base.data,
                   IM_SUFFIX_SUM, IM_SUFFIX_SUM2);
            goto fail;
        }
        qfit_imatrix_entry *e = entry_add(im, base.data, bl, n_per_mat, n_mat, gerr, sizeof gerr);
        if (!e) { im_err(err, err_len, "%s", gerr); goto fail; }
        const float *sv = t->data, *cv = c->data;
        for (int64_t j = 0; j < n_per_mat * n_mat; j++) {
            float v;
            memcpy(&v, sv + j, sizeof v);   /* the data offset is aligned, but copy anyway */
            if (!isfinite(v) || v < 0) {
                im_err(err, err_len, "entry '%s': sum %lld is %g (must be finite and >= 0)", e->name, (long long)j, (double)v);
                goto fail;
            }
            e->sum2[j] = v;
        }
        for (int64_t m = 0; m < n_mat; m++) {
            float v;
            memcpy(&v, cv + m, sizeof v);
            if (!isfinite(v) || v < 0 || v > 9.0e15f) {
                im_err(err, err_len, "entry '%s': count %lld is %g (must be finite and >= 0)", e->name, (long long)m, (double)v);
                goto fail;
            }
            e->counts[m] = (int64_t)llroundf(v);
        }
    }
    if (im->n_entries == 0) {
        im_err(err, err_len, "no %s/%s entries", IM_SUFFIX_SUM2, IM_SUFFIX_COUNTS);
        goto fail;
    }
    return im;
fail:
    qfit_imatrix_free(im);
    return NULL;
}

/* bounded little-endian reader over a buffer */
typedef struct { const unsigned char *p; size_t left, off; } rd;

static bool rd_i32(rd *r, int32_t *v)
{
    if (r->left < 4) return false;
    uint32_t u = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    memcpy(v, &u, sizeof u);
    r->p += 4; r->left -= 4; r->off += 4;
    return true;
}

static bool rd_bytes(rd *r, size_t n, const unsigned char **out)
{
    if (r->left < n) return false;
    *out = r->p;
    r->p += n; r->left -= n; r->off += n;
    return true;
}

static qfit_imatrix *load_dat(const void *data, size_t size, char *err, size_t err_len)
{
    rd r = { data, size, 0 };
    qfit_imatrix *im = qfit_imatrix_new();
    if (!im) { im_err(err, err_len, "out of memory"); return NULL; }
    char gerr[256];
    int32_t n_entries;
    if (!rd_i32(&r, &n_entries) || n_entries < 1 || (size_t)n_entries > size / 13) {
        /* 13 bytes: the smallest entry (len, 1-byte name, ncall, nval, one value) */
        im_err(err, err_len, "legacy imatrix: missing or impossible entry count (file of %zu bytes)", size);
        goto fail;
    }
    int64_t max_ncall = 0;
    for (int32_t i = 0; i < n_entries; i++) {
        int32_t len = 0, ncall = 0, nval = 0;
        const unsigned char *name, *vals;
        const size_t at = r.off;
        if (!rd_i32(&r, &len) || len < 1 || len > QFIT_IMATRIX_MAX_NAME || !rd_bytes(&r, (size_t)len, &name)) {
            im_err(err, err_len, "legacy imatrix: entry %d at byte %zu: bad name length", i, at);
            goto fail;
        }
        if (!rd_i32(&r, &ncall) || ncall < 0) {
            im_err(err, err_len, "legacy imatrix: entry '%.*s': bad or missing ncall", (int)len, (const char *)name);
            goto fail;
        }
        if (!rd_i32(&r, &nval) || nval < 1 || (size_t)nval > r.left / 4 || !rd_bytes(&r, (size_t)nval * 4, &vals)) {
            im_err(err, err_len, "legacy imatrix: entry '%.*s': value count %d does not fit the %zu bytes left",
                   (int)len, (const char *)name, nval, r.left);
            goto fail;
        }
        qfit_imatrix_entry *e = entry_add(im, (const char *)name, (size_t)len, nval, 1, gerr, sizeof gerr);
        if (!e) { im_err(err, err_len, "legacy imatrix: %s", gerr); goto fail; }
        /* value = mean * ncall; llama-quantize uses value / ncall (the value as is when ncall is 0) */
        const int64_t nc = ncall > 0 ? ncall : 1;
        for (int32_t j = 0; j < nval; j++) {
            float v;
            memcpy(&v, vals + 4 * (size_t)j, 4);
            if (!isfinite(v) || v < 0) {
                im_err(err, err_len, "legacy imatrix: entry '%s': value %d is %g (must be finite and >= 0)",
                       e->name, j, (double)v);
                goto fail;
            }
            e->sum2[j] = (double)v * QFIT_IMATRIX_LEGACY_CHUNK;
        }
        e->counts[0] = nc * QFIT_IMATRIX_LEGACY_CHUNK;
        if (nc > max_ncall) max_ncall = nc;
    }
    im->chunk_size = QFIT_IMATRIX_LEGACY_CHUNK;
    im->chunk_count = (uint32_t)max_ncall;
    /* optional trailer: int32 chunk count, then int32 length + dataset name */
    if (r.left > 0) {
        int32_t last, dlen;
        const unsigned char *ds;
        if (!rd_i32(&r, &last) || last < 0) {
            im_err(err, err_len, "legacy imatrix: bad trailer at byte %zu", r.off);
            goto fail;
        }
        im->chunk_count = (uint32_t)last;
        if (r.left > 0) {
            if (!rd_i32(&r, &dlen) || dlen < 0 || !rd_bytes(&r, (size_t)dlen, &ds) || memchr(ds, 0, (size_t)dlen)) {
                im_err(err, err_len, "legacy imatrix: bad dataset name at byte %zu", r.off);
                goto fail;
            }
            if (set_dataset_n(im, (const char *)ds, (size_t)dlen, err, err_len) < 0) goto fail;
        }
        if (r.left > 0) {
            im_err(err, err_len, "legacy imatrix: %zu unexpected bytes at the end (byte %zu)", r.left, r.off);
            goto fail;
        }
    }
    return im;
fail:
    qfit_imatrix_free(im);
    return NULL;
}

qfit_imatrix *qfit_imatrix_load_buffer(const void *data, size_t size, qfit_imatrix_format *format,
                                       char *err, size_t err_len)
{
    if (!data && size) { im_err(err, err_len, "invalid arguments"); return NULL; }
    uint32_t magic = 0;
    if (size >= 4) memcpy(&magic, data, 4);
    if (magic == QFIT_GGUF_MAGIC) {
        if (format) *format = QFIT_IMATRIX_GGUF;
        char gerr[256];
        qfit_gguf *g = qfit_gguf_open_buffer(data, size, gerr, sizeof gerr);
        if (!g) { im_err(err, err_len, "imatrix GGUF: %s", gerr); return NULL; }
        qfit_imatrix *im = load_gguf(g, gerr, sizeof gerr);
        if (!im) im_err(err, err_len, "imatrix GGUF: %s", gerr);
        qfit_gguf_close(g);
        return im;
    }
    if (format) *format = QFIT_IMATRIX_DAT;
    return load_dat(data, size, err, err_len);
}

qfit_imatrix *qfit_imatrix_load(const char *path, char *err, size_t err_len)
{
    if (!path) { im_err(err, err_len, "invalid arguments"); return NULL; }
    FILE *f = fopen(path, "rb");
    if (!f) { im_err(err, err_len, "cannot open '%s': %s", path, strerror(errno)); return NULL; }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > IM_MAX_FILE) {
        im_err(err, err_len, "'%s' is not a regular file of at most 2 GiB", path);
        fclose(f);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    void *buf = malloc(n ? n : 1);
    if (!buf) { fclose(f); im_err(err, err_len, "out of memory"); return NULL; }
    if (fread(buf, 1, n, f) != n) {
        im_err(err, err_len, "cannot read '%s'", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    char e2[512];
    qfit_imatrix *im = qfit_imatrix_load_buffer(buf, n, NULL, e2, sizeof e2);
    if (!im) im_err(err, err_len, "'%s': %s", path, e2);
    free(buf);
    return im;
}

/* ---------------------------------------------------------------- saving */

static int cmp_entry_ptr(const void *a, const void *b)
{
    const qfit_imatrix_entry *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* entries sorted by name (llama.cpp writes them in that order) */
static const qfit_imatrix_entry **sorted_entries(const qfit_imatrix *im)
{
    const qfit_imatrix_entry **v = malloc((im->n_entries + 1) * sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < im->n_entries; i++) v[i] = &im->entries[i];
    qsort(v, im->n_entries, sizeof *v, cmp_entry_ptr);
    return v;
}

static int save_gguf(const qfit_imatrix *im, const qfit_imatrix_entry **v, const char *path,
                     char *err, size_t err_len)
{
    int rc = -1;
    char gerr[512];
    float *buf = NULL;
    qfit_gguf_writer *w = qfit_gguf_writer_new();
    if (!w) { im_err(err, err_len, "out of memory"); return -1; }
    const char **ds = calloc(im->n_datasets + 1, sizeof *ds);
    if (!ds) { im_err(err, err_len, "out of memory"); goto done; }
    for (size_t i = 0; i < im->n_datasets; i++) ds[i] = im->datasets[i];
    if (qfit_gguf_set_str(w, "general.type", "imatrix") != 0 ||
        qfit_gguf_set_arr_str(w, "imatrix.datasets", ds, im->n_datasets) != 0 ||
        qfit_gguf_set_u32(w, "imatrix.chunk_count", im->chunk_count) != 0 ||
        qfit_gguf_set_u32(w, "imatrix.chunk_size", im->chunk_size) != 0) {
        im_err(err, err_len, "cannot set metadata");
        goto done;
    }
    int64_t max_vals = 1;
    for (size_t i = 0; i < im->n_entries; i++) {
        const qfit_imatrix_entry *e = v[i];
        char name[QFIT_IMATRIX_MAX_NAME + 16];
        if (strlen(e->name) + strlen(IM_SUFFIX_SUM2) > QFIT_IMATRIX_MAX_NAME) {
            im_err(err, err_len, "entry '%s': the name is too long for a GGUF tensor name with '%s'",
                   e->name, IM_SUFFIX_SUM2);
            goto done;
        }
        const int64_t ne_s[2] = { e->n_per_mat, e->n_mat }, ne_c[2] = { 1, e->n_mat };
        /* as ggml writes them: trailing dimensions of 1 dropped (ggml_n_dims) */
        const uint32_t nd = e->n_mat > 1 ? 2 : 1;
        snprintf(name, sizeof name, "%s%s", e->name, IM_SUFFIX_SUM2);
        if (qfit_gguf_add_tensor(w, name, nd, ne_s, QFIT_TYPE_F32) != 0) goto declare_fail;
        snprintf(name, sizeof name, "%s%s", e->name, IM_SUFFIX_COUNTS);
        if (qfit_gguf_add_tensor(w, name, nd, ne_c, QFIT_TYPE_F32) != 0) goto declare_fail;
        if (e->n_per_mat * e->n_mat > max_vals) max_vals = e->n_per_mat * e->n_mat;
        continue;
declare_fail:
        im_err(err, err_len, "cannot declare tensor '%s'", name);
        goto done;
    }
    buf = malloc((size_t)max_vals * sizeof *buf);
    if (!buf) { im_err(err, err_len, "out of memory"); goto done; }
    if (qfit_gguf_writer_begin(w, path, gerr, sizeof gerr) != 0) {
        im_err(err, err_len, "cannot create '%s': %s", path, gerr);
        goto done;
    }
    for (size_t i = 0; i < im->n_entries; i++) {
        const qfit_imatrix_entry *e = v[i];
        const int64_t nv = e->n_per_mat * e->n_mat;
        for (int64_t j = 0; j < nv; j++) {
            buf[j] = (float)e->sum2[j];
            if (!isfinite(buf[j])) {
                im_err(err, err_len, "entry '%s': sum %lld does not fit a float32", e->name, (long long)j);
                goto done;
            }
        }
        if (qfit_gguf_writer_write_tensor(w, buf, (size_t)nv * sizeof *buf, gerr, sizeof gerr) != 0) goto write_fail;
        for (int64_t m = 0; m < e->n_mat; m++) buf[m] = (float)e->counts[m];
        if (qfit_gguf_writer_write_tensor(w, buf, (size_t)e->n_mat * sizeof *buf, gerr, sizeof gerr) != 0) goto write_fail;
    }
    if (qfit_gguf_writer_finish(w, gerr, sizeof gerr) != 0) goto write_fail;
    rc = 0;
    goto done;
write_fail:
    im_err(err, err_len, "cannot write '%s': %s", path, gerr);
done:
    free(buf);
    free(ds);
    qfit_gguf_writer_free(w);
    return rc;
}

/* growable byte buffer for the legacy file */
typedef struct { unsigned char *p; size_t n, cap; bool oom; } bbuf;

static void bb_put(bbuf *b, const void *d, size_t n)
{
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->n + n) nc *= 2;
        unsigned char *np = realloc(b->p, nc);
        if (!np) { b->oom = true; return; }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void bb_i32(bbuf *b, int32_t v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    const unsigned char le[4] = { (unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                                  (unsigned char)(u >> 24) };
    bb_put(b, le, 4);
}

/* temp file + fsync + rename + directory fsync */
static int write_file_atomic(const char *path, const void *data, size_t n, char *err, size_t err_len)
{
    const size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    if (!tmp) { im_err(err, err_len, "out of memory"); return -1; }
    snprintf(tmp, pl + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        im_err(err, err_len, "cannot create a temporary file next to '%s': %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    const unsigned char *p = data;
    size_t left = n;
    int e = 0;
    while (left > 0 && !e) {
        ssize_t k = write(fd, p, left);
        if (k < 0) { if (errno != EINTR) e = errno; continue; }
        p += k;
        left -= (size_t)k;
    }
    if (!e && fchmod(fd, 0644) != 0) e = errno;
    if (!e && fsync(fd) != 0) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) {
        im_err(err, err_len, "cannot write '%s': %s", path, strerror(e));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    /* make the rename durable */
    char *dir = strdup(path);
    if (dir) {
        char *slash = strrchr(dir, '/');
        const char *d = ".";
        if (slash == dir) d = "/";
        else if (slash) { *slash = 0; d = dir; }
        int dfd = open(d, O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) { (void)fsync(dfd); close(dfd); }
        free(dir);
    }
    return 0;
}

static int save_dat(const qfit_imatrix *im, const qfit_imatrix_entry **v, const char *path,
                    char *err, size_t err_len)
{
    const int64_t chunk = im->chunk_size > 0 ? im->chunk_size : 1;
    bbuf b = { 0 };
    int32_t n_store = 0;
    for (size_t i = 0; i < im->n_entries; i++) {
        int64_t any = 0;
        for (int64_t m = 0; m < v[i]->n_mat; m++) any |= v[i]->counts[m];
        if (any) n_store++;
    }
    if (n_store == 0) { im_err(err, err_len, "no entry has any data to write"); return -1; }
    bb_i32(&b, n_store);
    float *tmp = NULL;
    for (size_t i = 0; i < im->n_entries; i++) {
        const qfit_imatrix_entry *e = v[i];
        int64_t maxc = 0;
        for (int64_t m = 0; m < e->n_mat; m++) maxc = e->counts[m] > maxc ? e->counts[m] : maxc;
        if (maxc == 0) continue;   /* llama.cpp skips entries without data */
        const int64_t ncall = (maxc + chunk - 1) / chunk;
        const int64_t nval = e->n_per_mat * e->n_mat;
        if (ncall > INT32_MAX || nval > INT32_MAX / 4) {
            im_err(err, err_len, "entry '%s' is too large for the legacy format", e->name);
            free(tmp); free(b.p);
            return -1;
        }
        float *nt = realloc(tmp, (size_t)nval * sizeof *nt);
        if (!nt) { free(tmp); free(b.p); im_err(err, err_len, "out of memory"); return -1; }
        tmp = nt;
        for (int64_t j = 0; j < nval; j++) {
            const float c = (float)e->counts[j / e->n_per_mat];
            /* as llama-imatrix: (sum / count) * ncall, and 1 * ncall for a matrix without data */
            tmp[j] = c == 0.0f ? (float)ncall : ((float)e->sum2[j] / c) * (float)ncall;
            if (!isfinite(tmp[j])) {
                im_err(err, err_len, "entry '%s': value %lld does not fit a float32", e->name, (long long)j);
                free(tmp); free(b.p);
                return -1;
            }
        }
        bb_i32(&b, (int32_t)strlen(e->name));
        bb_put(&b, e->name, strlen(e->name));
        bb_i32(&b, (int32_t)ncall);
        bb_i32(&b, (int32_t)nval);
        for (int64_t j = 0; j < nval; j++) {
            uint32_t u;
            memcpy(&u, &tmp[j], 4);
            bb_i32(&b, (int32_t)u);
        }
    }
    free(tmp);
    bb_i32(&b, (int32_t)(im->chunk_count > INT32_MAX ? INT32_MAX : im->chunk_count));
    const char *ds = im->n_datasets ? im->datasets[im->n_datasets - 1] : "";
    bb_i32(&b, (int32_t)strlen(ds));
    bb_put(&b, ds, strlen(ds));
    if (b.oom) { free(b.p); im_err(err, err_len, "out of memory"); return -1; }
    int rc = write_file_atomic(path, b.p, b.n, err, err_len);
    free(b.p);
    return rc;
}

int qfit_imatrix_save(const qfit_imatrix *im, const char *path, qfit_imatrix_format format,
                      char *err, size_t err_len)
{
    if (!im || !path) { im_err(err, err_len, "invalid arguments"); return -1; }
    if (im->n_entries == 0) { im_err(err, err_len, "the importance matrix has no entries"); return -1; }
    for (size_t i = 0; i < im->n_entries; i++) {
        for (int64_t m = 0; m < im->entries[i].n_mat; m++) {
            if (im->entries[i].counts[m] < 0 || (double)im->entries[i].counts[m] > 16777216.0) {
                /* counts are stored as float32: above 2^24 they would not be exact */
                im_err(err, err_len, "entry '%s': count %lld cannot be stored exactly", im->entries[i].name,
                       (long long)im->entries[i].counts[m]);
                return -1;
            }
        }
    }
    const qfit_imatrix_entry **v = sorted_entries(im);
    if (!v) { im_err(err, err_len, "out of memory"); return -1; }
    int rc = format == QFIT_IMATRIX_DAT ? save_dat(im, v, path, err, err_len)
                                        : save_gguf(im, v, path, err, err_len);
    free(v);
    return rc;
}
