/* GGUF reader: validates a whole file before handing out any pointer into it.
 *
 * Layout (all little-endian):
 *   header   u32 magic "GGUF", u32 version, u64 n_tensors, u64 n_kv
 *   n_kv     { string key, u32 type, value }
 *   n_tensors{ string name, u32 n_dims, i64 ne[n_dims], u32 type, u64 offset }
 *   padding to general.alignment, then the data section.
 * A string is u64 length + bytes; an array is u32 element type + u64 count +
 * elements (arrays may hold strings or further arrays).
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_BYTES 24u
/* Smallest possible encodings, used to bound untrusted counts before allocating:
 * a kv is a key (8-byte length + at least 1 byte), a type tag and a 1-byte value;
 * a tensor info is a name length, n_dims, a type and an offset (0 dimensions). */
#define MIN_KV_BYTES     14u
#define MIN_TENSOR_BYTES 24u

/* ------------------------------------------------------------ type facts */

static const char *const type_names[QFIT_GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64",
};
static const uint8_t type_sizes[QFIT_GGUF_TYPE_COUNT] = {
    1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8,
};

const char *qfit_gguf_type_name(qfit_gguf_type t)
{
    if ((unsigned)t >= QFIT_GGUF_TYPE_COUNT) return "?";
    return type_names[t];
}

size_t qfit_gguf_type_size(qfit_gguf_type t)
{
    if ((unsigned)t >= QFIT_GGUF_TYPE_COUNT) return 0;
    return type_sizes[t];
}

static bool type_ok(uint32_t t) { return t < QFIT_GGUF_TYPE_COUNT; }

/* Minimum encoded size of one element of type t. */
static uint64_t min_elem_bytes(qfit_gguf_type t)
{
    if (t == QFIT_GGUF_STRING) return 8;
    if (t == QFIT_GGUF_ARRAY) return 12;
    return type_sizes[t];
}

const char *qfit_gguf_show(char *buf, size_t cap, const char *s, uint64_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (cap == 0) return "";
    const uint64_t max_chars = 60;
    for (uint64_t i = 0; i < len && i < max_chars; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
            if (o + 1 >= cap) break;
            buf[o++] = (char)ch;
        } else {
            if (o + 4 >= cap) break;
            buf[o++] = '\\'; buf[o++] = 'x';
            buf[o++] = hex[ch >> 4]; buf[o++] = hex[ch & 15];
        }
    }
    if (len > max_chars && o + 3 < cap) { buf[o++] = '.'; buf[o++] = '.'; buf[o++] = '.'; }
    buf[o] = 0;
    return buf;
}

bool qfit_gguf_value_extent(const uint8_t *p, uint64_t avail, qfit_gguf_type t, int depth,
                            uint64_t *len)
{
    if (!type_ok((uint32_t)t)) return false;
    if (t == QFIT_GGUF_STRING) {
        if (avail < 8) return false;
        uint64_t n = qfit_gguf_ld64(p);
        if (n > avail - 8) return false;
        *len = 8 + n;
        return true;
    }
    if (t != QFIT_GGUF_ARRAY) {
        if (avail < type_sizes[t]) return false;
        *len = type_sizes[t];
        return true;
    }
    if (depth >= QFIT_GGUF_MAX_NESTING || avail < 12) return false;
    uint32_t et = qfit_gguf_ld32(p);
    uint64_t n = qfit_gguf_ld64(p + 4);
    if (!type_ok(et)) return false;
    uint64_t pos = 12;
    if (et != QFIT_GGUF_STRING && et != QFIT_GGUF_ARRAY) {
        uint64_t sz = type_sizes[et];
        if (n > (avail - pos) / sz) return false;
        *len = pos + n * sz;
        return true;
    }
    if (n > (avail - pos) / min_elem_bytes((qfit_gguf_type)et)) return false;
    for (uint64_t j = 0; j < n; j++) {
        uint64_t l;
        if (!qfit_gguf_value_extent(p + pos, avail - pos, (qfit_gguf_type)et, depth + 1, &l))
            return false;
        pos += l;
    }
    *len = pos;
    return true;
}

/* ------------------------------------------------------------ the handle */

typedef struct {
    qfit_gguf_str   key;
    qfit_gguf_value val;
    uint64_t        at;       /* byte offset of the kv in the file */
    uint64_t       *str_off;  /* string arrays: offset of element j from val.raw */
} kv_entry;

struct qfit_gguf {
    const uint8_t *base;
    uint64_t       size;
    bool           mapped;
    uint32_t       version;
    size_t         alignment;
    uint64_t       data_offset;

    kv_entry      *kvs;
    int64_t        n_kv;
    qfit_gguf_tensor *tensors;
    uint64_t      *tensor_at;  /* byte offset of each tensor info */
    int64_t        n_tensors;

    int64_t       *kv_hash;    /* open addressing, index + 1, 0 = empty */
    uint64_t       kv_hash_mask;
    int64_t       *t_hash;
    uint64_t       t_hash_mask;
};

/* ------------------------------------------------------------ parsing */

typedef struct {
    const uint8_t *b;
    uint64_t       size;
    uint64_t       pos;
    char          *err;
    size_t         err_len;
} cursor;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static bool fail(cursor *c, uint64_t at, const char *fmt, ...)
{
    if (!c->err || c->err_len == 0) return false;
    int n = snprintf(c->err, c->err_len, "gguf: at byte %" PRIu64 ": ", at);
    if (n < 0 || (size_t)n >= c->err_len) return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->err_len - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

static uint64_t left(const cursor *c) { return c->size - c->pos; }

static bool need(cursor *c, uint64_t n, const char *what)
{
    if (left(c) >= n) return true;
    return fail(c, c->pos, "unexpected end of file reading %s (needs %" PRIu64 " bytes, %" PRIu64 " left)",
                what, n, left(c));
}

static bool rd_u32(cursor *c, uint32_t *v, const char *what)
{
    if (!need(c, 4, what)) return false;
    *v = qfit_gguf_ld32(c->b + c->pos);
    c->pos += 4;
    return true;
}

static bool rd_u64(cursor *c, uint64_t *v, const char *what)
{
    if (!need(c, 8, what)) return false;
    *v = qfit_gguf_ld64(c->b + c->pos);
    c->pos += 8;
    return true;
}

/* Reads a string; key (may be NULL) names the kv it belongs to in messages. */
static bool rd_str_k(cursor *c, qfit_gguf_str *s, const char *key, const char *what)
{
    uint64_t at = c->pos, n;
    if (!rd_u64(c, &n, what)) return false;
    if (n > left(c)) {
        if (key)
            return fail(c, at, "key '%s': %s length %" PRIu64 " exceeds the %" PRIu64 " remaining bytes", key, what,
                        n, left(c));
        return fail(c, at, "%s length %" PRIu64 " exceeds the %" PRIu64 " remaining bytes", what, n, left(c));
    }
    s->data = (const char *)(c->b + c->pos);
    s->len = n;
    c->pos += n;
    return true;
}

static bool rd_str(cursor *c, qfit_gguf_str *s, const char *what) { return rd_str_k(c, s, NULL, what); }

/* Parses one value of type t at the cursor. str_tab (top-level string arrays
 * only) receives a malloc'd table of element offsets relative to out->raw. */
static bool parse_value(cursor *c, qfit_gguf_type t, int depth, const char *key,
                        qfit_gguf_value *out, uint64_t **str_tab)
{
    memset(out, 0, sizeof *out);
    out->type = t;
    out->raw = c->b + c->pos;
    uint64_t start = c->pos;
    if (t == QFIT_GGUF_STRING) {
        qfit_gguf_str s;
        if (!rd_str_k(c, &s, key, "string value")) return false;
    } else if (t != QFIT_GGUF_ARRAY) {
        uint64_t sz = type_sizes[t];
        if (!need(c, sz, "value")) return false;
        if (t == QFIT_GGUF_BOOL && c->b[c->pos] > 1)
            return fail(c, c->pos, "key '%s': bool value %u is not 0 or 1", key, c->b[c->pos]);
        c->pos += sz;
    } else {
        if (depth >= QFIT_GGUF_MAX_NESTING)
            return fail(c, c->pos, "key '%s': arrays nested deeper than %d levels", key, QFIT_GGUF_MAX_NESTING);
        uint32_t et;
        uint64_t n, at = c->pos;
        if (!rd_u32(c, &et, "array element type")) return false;
        if (!type_ok(et))
            return fail(c, at, "key '%s': bad array element type %" PRIu32, key, et);
        if (!rd_u64(c, &n, "array length")) return false;
        uint64_t min = min_elem_bytes((qfit_gguf_type)et);
        if (n > left(c) / min)
            return fail(c, at + 4, "key '%s': array of %" PRIu64 " %s elements cannot fit in the %" PRIu64
                        " remaining bytes", key, n, type_names[et], left(c));
        out->arr_type = (qfit_gguf_type)et;
        out->arr_len = n;
        if (et == QFIT_GGUF_BOOL) {
            for (uint64_t j = 0; j < n; j++)
                if (c->b[c->pos + j] > 1)
                    return fail(c, c->pos + j, "key '%s': bool element %" PRIu64 " has value %u (not 0 or 1)",
                                key, j, c->b[c->pos + j]);
        }
        if (et != QFIT_GGUF_STRING && et != QFIT_GGUF_ARRAY) {
            c->pos += n * min;
        } else if (et == QFIT_GGUF_STRING) {
            uint64_t *tab = NULL;
            if (str_tab && n > 0) {
                tab = malloc((size_t)n * sizeof *tab);
                if (!tab) return fail(c, at, "key '%s': out of memory for %" PRIu64 " strings", key, n);
            }
            for (uint64_t j = 0; j < n; j++) {
                if (tab) tab[j] = c->pos - start;
                qfit_gguf_str s;
                if (!rd_str_k(c, &s, key, "array string")) { free(tab); return false; }
            }
            if (str_tab) *str_tab = tab;
        } else {
            for (uint64_t j = 0; j < n; j++) {
                qfit_gguf_value sub;
                if (!parse_value(c, QFIT_GGUF_ARRAY, depth + 1, key, &sub, NULL)) return false;
            }
        }
    }
    out->raw_len = c->pos - start;
    return true;
}

/* FNV-1a */
static uint64_t hash_bytes(const char *s, uint64_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ull; }
    return h;
}

static bool str_eq(qfit_gguf_str a, const char *s, uint64_t n)
{
    return a.len == n && (n == 0 || memcmp(a.data, s, (size_t)n) == 0);
}

static int64_t *hash_alloc(int64_t n, uint64_t *mask)
{
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2) cap <<= 1;
    *mask = cap - 1;
    return calloc((size_t)cap, sizeof(int64_t));
}

static const qfit_gguf_str *kv_name(const qfit_gguf *g, int64_t i) { return &g->kvs[i].key; }
static const qfit_gguf_str *t_name(const qfit_gguf *g, int64_t i) { return &g->tensors[i].name; }

/* Looks s up; returns the index or -1. */
static int64_t hash_find(const qfit_gguf *g, const int64_t *tab, uint64_t mask,
                         const qfit_gguf_str *(*name)(const qfit_gguf *, int64_t),
                         const char *s, uint64_t n)
{
    if (!tab) return -1;
    for (uint64_t h = hash_bytes(s, n) & mask;; h = (h + 1) & mask) {
        int64_t v = tab[h];
        if (v == 0) return -1;
        if (str_eq(*name(g, v - 1), s, n)) return v - 1;
    }
}

/* Inserts entry i; returns the index of an existing entry with the same name, or -1. */
static int64_t hash_insert(const qfit_gguf *g, int64_t *tab, uint64_t mask,
                           const qfit_gguf_str *(*name)(const qfit_gguf *, int64_t), int64_t i)
{
    const qfit_gguf_str *s = name(g, i);
    for (uint64_t h = hash_bytes(s->data, s->len) & mask;; h = (h + 1) & mask) {
        int64_t v = tab[h];
        if (v == 0) { tab[h] = i + 1; return -1; }
        const qfit_gguf_str *o = name(g, v - 1);
        if (o->len == s->len && (s->len == 0 || memcmp(o->data, s->data, (size_t)s->len) == 0)) return v - 1;
    }
}

static bool parse_kvs(qfit_gguf *g, cursor *c, uint64_t n_kv)
{
    int64_t cap = 0;
    char kb[256];
    for (uint64_t i = 0; i < n_kv; i++) {
        uint64_t at = c->pos;
        if ((int64_t)i == cap) {
            int64_t ncap = cap ? cap * 2 : 32;
            if ((uint64_t)ncap > n_kv) ncap = (int64_t)n_kv;
            kv_entry *nk = realloc(g->kvs, (size_t)ncap * sizeof *nk);
            if (!nk) return fail(c, at, "out of memory for %" PRIu64 " keys", n_kv);
            g->kvs = nk;
            cap = ncap;
        }
        kv_entry *e = &g->kvs[i];
        memset(e, 0, sizeof *e);
        e->at = at;
        if (!rd_str(c, &e->key, "key")) return false;
        g->n_kv = (int64_t)i + 1; /* e is now initialised: close() frees it */
        if (e->key.len == 0) return fail(c, at, "key %" PRIu64 " is an empty string", i);
        qfit_gguf_show(kb, sizeof kb, e->key.data, e->key.len);
        uint32_t t;
        uint64_t tat = c->pos;
        if (!rd_u32(c, &t, "value type")) return false;
        if (!type_ok(t)) return fail(c, tat, "key '%s': bad value type %" PRIu32, kb, t);
        if (!parse_value(c, (qfit_gguf_type)t, 0, kb, &e->val, &e->str_off)) return false;
    }
    g->kv_hash = hash_alloc(g->n_kv, &g->kv_hash_mask);
    if (!g->kv_hash) return fail(c, HEADER_BYTES, "out of memory");
    for (int64_t i = 0; i < g->n_kv; i++) {
        if (hash_insert(g, g->kv_hash, g->kv_hash_mask, kv_name, i) >= 0)
            return fail(c, g->kvs[i].at, "duplicate key '%s'",
                        qfit_gguf_show(kb, sizeof kb, g->kvs[i].key.data, g->kvs[i].key.len));
    }
    return true;
}

static bool parse_alignment(qfit_gguf *g, cursor *c)
{
    g->alignment = QFIT_GGUF_DEFAULT_ALIGNMENT;
    int64_t i = qfit_gguf_find_key(g, QFIT_GGUF_KEY_ALIGNMENT);
    if (i < 0) return true;
    const kv_entry *e = &g->kvs[i];
    if (e->val.type != QFIT_GGUF_UINT32)
        return fail(c, e->at, "general.alignment has type %s, expected u32", qfit_gguf_type_name(e->val.type));
    uint32_t a = qfit_gguf_ld32(e->val.raw);
    if (a == 0 || (a & (a - 1)) != 0)
        return fail(c, e->at, "general.alignment = %" PRIu32 " is not a nonzero power of two", a);
    g->alignment = a;
    return true;
}

static bool parse_tensor(qfit_gguf *g, cursor *c, qfit_gguf_tensor *t)
{
    char nb[256];
    uint64_t at = c->pos;
    if (!rd_str(c, &t->name, "tensor name")) return false;
    qfit_gguf_show(nb, sizeof nb, t->name.data, t->name.len);
    if (t->name.len == 0) return fail(c, at, "tensor name is an empty string");
    /* ggml's tensor names hold 63 bytes: llama.cpp refuses longer ones, and so does our writer */
    if (t->name.len > QFIT_GGUF_MAX_NAME)
        return fail(c, at, "tensor name '%s' is %" PRIu64 " bytes long, more than the %d a GGUF tensor name may have",
                    nb, (uint64_t)t->name.len, QFIT_GGUF_MAX_NAME);
    uint64_t dat = c->pos;
    if (!rd_u32(c, &t->n_dims, "tensor n_dims")) return false;
    if (t->n_dims > QFIT_GGUF_MAX_DIMS)
        return fail(c, dat, "tensor '%s': n_dims %" PRIu32 " exceeds the maximum of %d", nb, t->n_dims,
                    QFIT_GGUF_MAX_DIMS);
    for (int d = 0; d < QFIT_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t v, vat = c->pos;
        if (!rd_u64(c, &v, "tensor dimension")) return false;
        if ((int64_t)v < 0)
            return fail(c, vat, "tensor '%s': ne[%" PRIu32 "] = %" PRId64 " is negative", nb, d, (int64_t)v);
        t->ne[d] = (int64_t)v;
    }
    uint32_t type;
    uint64_t tat = c->pos;
    if (!rd_u32(c, &type, "tensor type")) return false;
    if (type > (uint32_t)INT32_MAX || !qfit_type_is_valid((int)type))
        return fail(c, tat, "tensor '%s': unknown tensor type id %" PRIu32, nb, type);
    t->type = (int)type;
    uint64_t oat = c->pos;
    if (!rd_u64(c, &t->offset, "tensor offset")) return false;

    int64_t nrows = 1, nel = t->ne[0];
    bool ovf = false;
    for (int d = 1; d < QFIT_GGUF_MAX_DIMS; d++) {
        if (__builtin_mul_overflow(nrows, t->ne[d], &nrows)) ovf = true;
        if (__builtin_mul_overflow(nel, t->ne[d], &nel)) ovf = true;
    }
    if (ovf)
        return fail(c, dat, "tensor '%s': element count of shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                    "] overflows int64", nb, t->ne[0], t->ne[1], t->ne[2], t->ne[3]);
    const qfit_type_traits *tr = qfit_type_get_traits(t->type);
    if (!tr) return fail(c, tat, "tensor '%s': unknown tensor type id %" PRIu32, nb, type);
    if (tr->block_size <= 0 || t->ne[0] % tr->block_size != 0)
        return fail(c, dat, "tensor '%s': ne[0] = %" PRId64 " is not a multiple of the block size %" PRId64
                    " of type %s", nb, t->ne[0], tr->block_size, tr->name);
    if (nel == 0) {
        t->nbytes = 0;
    } else {
        size_t nbytes = qfit_tensor_nbytes(t->type, t->ne[0], nrows);
        if (nbytes == SIZE_MAX)
            return fail(c, dat, "tensor '%s': data size of %" PRId64 " elements of type %s overflows", nb, nel, tr->name);
        t->nbytes = nbytes;
    }
    if (t->offset % g->alignment != 0)
        return fail(c, oat, "tensor '%s': offset %" PRIu64 " is not a multiple of the alignment %zu", nb,
                    t->offset, g->alignment);
    return true;
}

typedef struct { uint64_t off, end; int64_t idx; } span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->off != y->off) return x->off < y->off ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static bool parse_tensors(qfit_gguf *g, cursor *c, uint64_t n_t)
{
    char nb[256], nb2[256];
    if (n_t > left(c) / MIN_TENSOR_BYTES)
        return fail(c, c->pos, "n_tensors %" PRIu64 " cannot fit in the %" PRIu64 " remaining bytes", n_t, left(c));
    int64_t cap = 0;
    for (uint64_t i = 0; i < n_t; i++) {
        if ((int64_t)i == cap) {
            int64_t ncap = cap ? cap * 2 : 64;
            if ((uint64_t)ncap > n_t) ncap = (int64_t)n_t;
            qfit_gguf_tensor *nt = realloc(g->tensors, (size_t)ncap * sizeof *nt);
            if (!nt) return fail(c, c->pos, "out of memory for %" PRIu64 " tensors", n_t);
            g->tensors = nt;
            uint64_t *na = realloc(g->tensor_at, (size_t)ncap * sizeof *na);
            if (!na) return fail(c, c->pos, "out of memory for %" PRIu64 " tensors", n_t);
            g->tensor_at = na;
            cap = ncap;
        }
        qfit_gguf_tensor *t = &g->tensors[i];
        memset(t, 0, sizeof *t);
        g->tensor_at[i] = c->pos;
        if (!parse_tensor(g, c, t)) return false;
        g->n_tensors = (int64_t)i + 1;
    }

    /* data section: aligned end of the infos */
    uint64_t a = g->alignment;
    uint64_t end = c->pos;
    g->data_offset = end + (a - end % a) % a;
    uint64_t avail = g->size > g->data_offset ? g->size - g->data_offset : 0;

    g->t_hash = hash_alloc(g->n_tensors, &g->t_hash_mask);
    if (!g->t_hash) return fail(c, end, "out of memory");
    for (int64_t i = 0; i < g->n_tensors; i++) {
        qfit_gguf_tensor *t = &g->tensors[i];
        qfit_gguf_show(nb, sizeof nb, t->name.data, t->name.len);
        if (hash_insert(g, g->t_hash, g->t_hash_mask, t_name, i) >= 0)
            return fail(c, g->tensor_at[i], "duplicate tensor name '%s'", nb);
        if (t->offset > avail || t->nbytes > avail - t->offset)
            return fail(c, g->tensor_at[i], "tensor '%s': data [%" PRIu64 ", +%" PRIu64 ") lies beyond the end of "
                        "the file (data section of %" PRIu64 " bytes starting at byte %" PRIu64 ")",
                        nb, t->offset, t->nbytes, avail, g->data_offset);
        /* (an empty tensor may sit at the very end, where the aligned data offset can
         * lie past the end of a file that has no tensor data: keep the pointer inside) */
        uint64_t pos = g->data_offset + t->offset;
        t->data = g->base + (pos <= g->size ? pos : g->size);
    }

    /* overlap: sort by offset, compare neighbours (empty tensors overlap nothing) */
    if (g->n_tensors > 1) {
        span *s = malloc((size_t)g->n_tensors * sizeof *s);
        if (!s) return fail(c, end, "out of memory");
        int64_t m = 0;
        for (int64_t i = 0; i < g->n_tensors; i++) {
            if (g->tensors[i].nbytes == 0) continue;
            s[m].off = g->tensors[i].offset;
            s[m].end = g->tensors[i].offset + g->tensors[i].nbytes;
            s[m].idx = i;
            m++;
        }
        qsort(s, (size_t)m, sizeof *s, span_cmp);
        for (int64_t k = 0; k + 1 < m; k++) {
            if (s[k].end > s[k + 1].off) {
                const qfit_gguf_tensor *x = &g->tensors[s[k].idx], *y = &g->tensors[s[k + 1].idx];
                int64_t late = s[k].idx > s[k + 1].idx ? s[k].idx : s[k + 1].idx;
                fail(c, g->tensor_at[late], "tensors '%s' [%" PRIu64 ", %" PRIu64 ") and '%s' [%" PRIu64 ", %" PRIu64
                     ") overlap", qfit_gguf_show(nb, sizeof nb, x->name.data, x->name.len), s[k].off, s[k].end,
                     qfit_gguf_show(nb2, sizeof nb2, y->name.data, y->name.len), s[k + 1].off, s[k + 1].end);
                free(s);
                return false;
            }
        }
        free(s);
    }
    return true;
}

static bool parse(qfit_gguf *g, cursor *c)
{
    if (c->size < 4)
        return fail(c, 0, "file of %" PRIu64 " bytes is too small for a GGUF header (%u bytes)", c->size, HEADER_BYTES);
    uint32_t magic = qfit_gguf_ld32(c->b);
    if (magic != QFIT_GGUF_MAGIC) {
        char mb[32];
        return fail(c, 0, "bad magic '%s' (not a GGUF file)", qfit_gguf_show(mb, sizeof mb, (const char *)c->b, 4));
    }
    c->pos = 4;
    uint32_t v;
    if (!rd_u32(c, &v, "version")) return false;
    if (v == 1) return fail(c, 4, "GGUF version 1 is not supported (only versions 2 and 3)");
    if (v != 2 && v != 3) {
        uint32_t sw = __builtin_bswap32(v);
        if ((v & 0xffff) == 0 && sw >= 1 && sw <= 3)
            return fail(c, 4, "big-endian GGUF file (version %" PRIu32 " byte-swapped) is not supported", sw);
        return fail(c, 4, "unsupported GGUF version %" PRIu32 " (only versions 2 and 3)", v);
    }
    g->version = v;
    uint64_t n_t, n_kv;
    if (!rd_u64(c, &n_t, "n_tensors")) return false;
    if (!rd_u64(c, &n_kv, "n_kv")) return false;
    if (n_kv > left(c) / MIN_KV_BYTES)
        return fail(c, c->pos, "n_kv %" PRIu64 " cannot fit in the %" PRIu64 " remaining bytes", n_kv, left(c));
    if (n_t > left(c) / MIN_TENSOR_BYTES)
        return fail(c, c->pos, "n_tensors %" PRIu64 " cannot fit in the %" PRIu64 " remaining bytes", n_t, left(c));
    if (!parse_kvs(g, c, n_kv)) return false;
    if (!parse_alignment(g, c)) return false;
    return parse_tensors(g, c, n_t);
}

qfit_gguf *qfit_gguf_open_buffer(const void *data, size_t size, char *err, size_t err_len)
{
    if (err && err_len) err[0] = 0;
    if (!data && size > 0) {
        if (err && err_len) snprintf(err, err_len, "gguf: NULL buffer");
        return NULL;
    }
    qfit_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        if (err && err_len) snprintf(err, err_len, "gguf: out of memory");
        return NULL;
    }
    static const uint8_t empty[1];
    g->base = data ? data : empty;
    g->size = size;
    g->alignment = QFIT_GGUF_DEFAULT_ALIGNMENT;
    cursor c = { g->base, size, 0, err, err_len };
    if (!parse(g, &c)) {
        if (err && err_len && !err[0]) snprintf(err, err_len, "gguf: invalid file");
        qfit_gguf_close(g);
        return NULL;
    }
    return g;
}

qfit_gguf *qfit_gguf_open(const char *path, char *err, size_t err_len)
{
    if (err && err_len) err[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (err && err_len) snprintf(err, err_len, "gguf: cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        if (err && err_len) snprintf(err, err_len, "gguf: cannot stat '%s': %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        if (err && err_len) snprintf(err, err_len, "gguf: '%s' is not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        if (err && err_len) snprintf(err, err_len, "gguf: '%s' is too large to map", path);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            if (err && err_len) snprintf(err, err_len, "gguf: cannot map '%s': %s", path, strerror(errno));
            close(fd);
            return NULL;
        }
    }
    close(fd);
    qfit_gguf *g = qfit_gguf_open_buffer(map, size, err, err_len);
    if (!g) {
        if (map) munmap(map, size);
        return NULL;
    }
    g->mapped = map != NULL;
    return g;
}

void qfit_gguf_close(qfit_gguf *g)
{
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++) free(g->kvs[i].str_off);
    free(g->kvs);
    free(g->tensors);
    free(g->tensor_at);
    free(g->kv_hash);
    free(g->t_hash);
    if (g->mapped) munmap((void *)g->base, (size_t)g->size);
    free(g);
}

/* ------------------------------------------------------------ accessors */

uint32_t qfit_gguf_version(const qfit_gguf *g) { return g ? g->version : 0; }
size_t qfit_gguf_alignment(const qfit_gguf *g) { return g ? g->alignment : 0; }
uint64_t qfit_gguf_data_offset(const qfit_gguf *g) { return g ? g->data_offset : 0; }
uint64_t qfit_gguf_file_size(const qfit_gguf *g) { return g ? g->size : 0; }
const void *qfit_gguf_base(const qfit_gguf *g) { return g ? g->base : NULL; }

int64_t qfit_gguf_n_kv(const qfit_gguf *g) { return g ? g->n_kv : 0; }

int64_t qfit_gguf_find_key(const qfit_gguf *g, const char *key)
{
    if (!g || !key) return -1;
    return hash_find(g, g->kv_hash, g->kv_hash_mask, kv_name, key, strlen(key));
}

static const kv_entry *kv_at(const qfit_gguf *g, int64_t i)
{
    if (!g || i < 0 || i >= g->n_kv) return NULL;
    return &g->kvs[i];
}

qfit_gguf_str qfit_gguf_key(const qfit_gguf *g, int64_t i)
{
    const kv_entry *e = kv_at(g, i);
    qfit_gguf_str s = { "", 0 };
    return e ? e->key : s;
}

qfit_gguf_type qfit_gguf_kv_type(const qfit_gguf *g, int64_t i)
{
    const kv_entry *e = kv_at(g, i);
    return e ? e->val.type : QFIT_GGUF_TYPE_COUNT;
}

static const uint8_t *scalar(const qfit_gguf *g, int64_t i, qfit_gguf_type t)
{
    const kv_entry *e = kv_at(g, i);
    return e && e->val.type == t ? e->val.raw : NULL;
}

uint8_t qfit_gguf_get_u8(const qfit_gguf *g, int64_t i)
{
    const uint8_t *p = scalar(g, i, QFIT_GGUF_UINT8);
    return p ? p[0] : 0;
}
int8_t qfit_gguf_get_i8(const qfit_gguf *g, int64_t i)
{
    const uint8_t *p = scalar(g, i, QFIT_GGUF_INT8);
    return p ? (int8_t)p[0] : 0;
}
uint16_t qfit_gguf_get_u16(const qfit_gguf *g, int64_t i)
{
    const uint8_t *p = scalar(g, i, QFIT_GGUF_UINT16);
    return p ? qfit_gguf_ld16(p) : 0;
}
int16_t qfit_gguf_get_i16(const qfit_gguf *g, int64_t i)
{
    const uint8_t *p = scalar(g, i, QFIT_GGUF_INT16);
    return p ? (int16_t)qfit_gguf_ld16(p) : 0;
}
uint32_t qfit_gguf_get_u32(const qfit_gguf *g, int64_t i)
{
    const uint8_t *p = scalar(g, i, QFIT_GGUF_UINT32);
    return p ? qfit_gguf_ld32(p) : 0;
}
int32_t qfit_gguf_get_i32(const qfit_gguf *g, int64_t i)
{
    const uint8_t *p = scalar(g, i, QFIT_GGUF_INT32);
    return p ? (int32_t)qfit_gguf_ld32(p) : 0;
}
uint64_t qfit_gguf_get_u64(const qfit_gguf *g, int64_t i)
{
    const uint8_t *p = scalar(g, i, QFIT_GGUF_UINT64);
    return p ? qfit_gguf_ld64(p) : 0;
}
int64_t qfit_gguf_get_i64(const qfit_gguf *g, int64_t i)
{
    const uint8_t *p = scalar(g, i, QFIT_GGUF_INT64);
    return p ? (int64_t)qfit_gguf_ld64(p) : 0;
}
float qfit_gguf_get_f32(const qfit_gguf *g, int64_t i)
{
    const uint8_t *p = scalar(g, i, QFIT_GGUF_FLOAT32);
    if (!p) return 0.0f;
    uint32_t u = qfit_gguf_ld32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
double qfit_gguf_get_f64(const qfit_gguf *g, int64_t i)
{
    const uint8_t *p = scalar(g, i, QFIT_GGUF_FLOAT64);
    if (!p) return 0.0;
    uint64_t u = qfit_gguf_ld64(p);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}
bool qfit_gguf_get_bool(const qfit_gguf *g, int64_t i)
{
    const uint8_t *p = scalar(g, i, QFIT_GGUF_BOOL);
    return p ? p[0] != 0 : false;
}
qfit_gguf_str qfit_gguf_get_str(const qfit_gguf *g, int64_t i)
{
    const uint8_t *p = scalar(g, i, QFIT_GGUF_STRING);
    qfit_gguf_str s = { "", 0 };
    if (p) { s.len = qfit_gguf_ld64(p); s.data = (const char *)p + 8; }
    return s;
}

bool qfit_gguf_get_int(const qfit_gguf *g, int64_t i, int64_t *out)
{
    const kv_entry *e = kv_at(g, i);
    if (!e) return false;
    const uint8_t *p = e->val.raw;
    int64_t v;
    switch (e->val.type) {
    case QFIT_GGUF_UINT8:  v = p[0]; break;
    case QFIT_GGUF_INT8:   v = (int8_t)p[0]; break;
    case QFIT_GGUF_UINT16: v = qfit_gguf_ld16(p); break;
    case QFIT_GGUF_INT16:  v = (int16_t)qfit_gguf_ld16(p); break;
    case QFIT_GGUF_UINT32: v = qfit_gguf_ld32(p); break;
    case QFIT_GGUF_INT32:  v = (int32_t)qfit_gguf_ld32(p); break;
    case QFIT_GGUF_INT64:  v = (int64_t)qfit_gguf_ld64(p); break;
    case QFIT_GGUF_UINT64: {
        uint64_t u = qfit_gguf_ld64(p);
        if (u > (uint64_t)INT64_MAX) return false;
        v = (int64_t)u;
        break;
    }
    default: return false;
    }
    if (out) *out = v;
    return true;
}

bool qfit_gguf_get_uint(const qfit_gguf *g, int64_t i, uint64_t *out)
{
    const kv_entry *e = kv_at(g, i);
    if (!e) return false;
    uint64_t v;
    if (e->val.type == QFIT_GGUF_UINT64) {
        v = qfit_gguf_ld64(e->val.raw);
    } else {
        int64_t s;
        if (!qfit_gguf_get_int(g, i, &s) || s < 0) return false;
        v = (uint64_t)s;
    }
    if (out) *out = v;
    return true;
}

bool qfit_gguf_get_float(const qfit_gguf *g, int64_t i, double *out)
{
    const kv_entry *e = kv_at(g, i);
    if (!e) return false;
    double v;
    if (e->val.type == QFIT_GGUF_FLOAT32) v = qfit_gguf_get_f32(g, i);
    else if (e->val.type == QFIT_GGUF_FLOAT64) v = qfit_gguf_get_f64(g, i);
    else return false;
    if (out) *out = v;
    return true;
}

qfit_gguf_type qfit_gguf_arr_type(const qfit_gguf *g, int64_t i)
{
    const kv_entry *e = kv_at(g, i);
    return e && e->val.type == QFIT_GGUF_ARRAY ? e->val.arr_type : QFIT_GGUF_TYPE_COUNT;
}

uint64_t qfit_gguf_arr_len(const qfit_gguf *g, int64_t i)
{
    const kv_entry *e = kv_at(g, i);
    return e && e->val.type == QFIT_GGUF_ARRAY ? e->val.arr_len : 0;
}

const void *qfit_gguf_arr_data(const qfit_gguf *g, int64_t i)
{
    const kv_entry *e = kv_at(g, i);
    if (!e || e->val.type != QFIT_GGUF_ARRAY) return NULL;
    if (e->val.arr_type == QFIT_GGUF_STRING || e->val.arr_type == QFIT_GGUF_ARRAY) return NULL;
    return e->val.raw + 12;
}

qfit_gguf_str qfit_gguf_arr_str(const qfit_gguf *g, int64_t i, uint64_t j)
{
    const kv_entry *e = kv_at(g, i);
    qfit_gguf_str s = { "", 0 };
    if (!e || e->val.type != QFIT_GGUF_ARRAY || e->val.arr_type != QFIT_GGUF_STRING || j >= e->val.arr_len
        || !e->str_off)
        return s;
    const uint8_t *p = e->val.raw + e->str_off[j];
    s.len = qfit_gguf_ld64(p);
    s.data = (const char *)p + 8;
    return s;
}

qfit_gguf_value qfit_gguf_kv_value(const qfit_gguf *g, int64_t i)
{
    const kv_entry *e = kv_at(g, i);
    qfit_gguf_value v;
    if (e) return e->val;
    memset(&v, 0, sizeof v);
    v.type = QFIT_GGUF_TYPE_COUNT;
    return v;
}

bool qfit_gguf_value_elem(const qfit_gguf_value *arr, uint64_t j, qfit_gguf_value *out)
{
    if (!arr || !out || arr->type != QFIT_GGUF_ARRAY || !arr->raw || arr->raw_len < 12 || j >= arr->arr_len)
        return false;
    qfit_gguf_type et = arr->arr_type;
    if (!type_ok((uint32_t)et)) return false;
    const uint8_t *p = arr->raw + 12;
    uint64_t avail = arr->raw_len - 12;
    memset(out, 0, sizeof *out);
    out->type = et;
    if (et != QFIT_GGUF_STRING && et != QFIT_GGUF_ARRAY) {
        uint64_t sz = type_sizes[et];
        if (j >= avail / sz) return false;
        out->raw = p + j * sz;
        out->raw_len = sz;
        return true;
    }
    /* variable-size elements: walk (bounded by raw_len) */
    uint64_t pos = 0, len = 0;
    for (uint64_t k = 0;; k++) {
        if (!qfit_gguf_value_extent(p + pos, avail - pos, et, 1, &len)) return false;
        if (k == j) break;
        pos += len;
    }
    out->raw = p + pos;
    out->raw_len = len;
    if (et == QFIT_GGUF_ARRAY) {
        out->arr_type = (qfit_gguf_type)qfit_gguf_ld32(out->raw);
        out->arr_len = qfit_gguf_ld64(out->raw + 4);
    }
    return true;
}

int64_t qfit_gguf_get_int_or(const qfit_gguf *g, const char *key, int64_t def)
{
    int64_t v;
    return qfit_gguf_get_int(g, qfit_gguf_find_key(g, key), &v) ? v : def;
}

double qfit_gguf_get_float_or(const qfit_gguf *g, const char *key, double def)
{
    double v;
    return qfit_gguf_get_float(g, qfit_gguf_find_key(g, key), &v) ? v : def;
}

bool qfit_gguf_get_string(const qfit_gguf *g, const char *key, char *buf, size_t cap)
{
    int64_t i = qfit_gguf_find_key(g, key);
    if (i < 0 || g->kvs[i].val.type != QFIT_GGUF_STRING || !buf || cap == 0) return false;
    qfit_gguf_str s = qfit_gguf_get_str(g, i);
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    memcpy(buf, s.data, n);
    buf[n] = 0;
    return true;
}

int64_t qfit_gguf_n_tensors(const qfit_gguf *g) { return g ? g->n_tensors : 0; }

int64_t qfit_gguf_find_tensor(const qfit_gguf *g, const char *name)
{
    if (!g || !name) return -1;
    return hash_find(g, g->t_hash, g->t_hash_mask, t_name, name, strlen(name));
}

const qfit_gguf_tensor *qfit_gguf_tensor_at(const qfit_gguf *g, int64_t i)
{
    if (!g || i < 0 || i >= g->n_tensors) return NULL;
    return &g->tensors[i];
}

int64_t qfit_gguf_tensor_nelements(const qfit_gguf_tensor *t)
{
    if (!t) return 0;
    int64_t n = 1;
    for (int d = 0; d < QFIT_GGUF_MAX_DIMS; d++)
        if (t->ne[d] < 0 || __builtin_mul_overflow(n, t->ne[d], &n)) return -1;
    return n;
}
