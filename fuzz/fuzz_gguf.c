/* libFuzzer target: the GGUF reader on arbitrary bytes.
 *
 * Parses the input with qfit_gguf_open_buffer() and, when it is accepted,
 * touches everything the reader hands out: every key and value accessor,
 * every element of every array (nested ones through qfit_gguf_value_elem),
 * every tensor's first and last data byte, the lookups by name, and a copy
 * of all metadata and tensor infos into a writer (no file is written).
 * Build: make fuzz; run: see fuzz/README.md.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/gguf.h"
#include "qfit/quant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

static void touch(const void *p, uint64_t n)
{
    if (n == 0) return;
    const uint8_t *b = p;
    sink += b[0];
    sink += b[n - 1];
}

/* Walks a value; elements of variable-size arrays are reached by a linear
 * walk per element, so only the first few are visited to keep it fast. */
static void walk_value(const qfit_gguf_value *v, int depth)
{
    touch(v->raw, v->raw_len);
    if (v->type != QFIT_GGUF_ARRAY || depth > 16) return;
    uint64_t limit = (v->arr_type == QFIT_GGUF_STRING || v->arr_type == QFIT_GGUF_ARRAY) ? 32 : v->arr_len;
    for (uint64_t j = 0; j < v->arr_len && j < limit; j++) {
        qfit_gguf_value e;
        if (!qfit_gguf_value_elem(v, j, &e)) abort(); /* a validated array must be walkable */
        walk_value(&e, depth + 1);
    }
    qfit_gguf_value e;
    if (qfit_gguf_value_elem(v, v->arr_len, &e)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy: ASan flags any read past the end */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    char err[256];
    qfit_gguf *g = qfit_gguf_open_buffer(size ? buf : NULL, size, err, sizeof err);
    if (!g) {
        if (strncmp(err, "gguf: ", 6) != 0) abort(); /* every rejection explains itself */
        free(buf);
        return 0;
    }

    sink += qfit_gguf_version(g) + qfit_gguf_alignment(g) + qfit_gguf_data_offset(g) + qfit_gguf_file_size(g);
    qfit_gguf_writer *w = qfit_gguf_writer_new();
    char name[256];
    for (int64_t i = 0; i < qfit_gguf_n_kv(g); i++) {
        qfit_gguf_str k = qfit_gguf_key(g, i);
        touch(k.data, k.len);
        if (k.len < sizeof name && !memchr(k.data, 0, k.len)) {
            memcpy(name, k.data, k.len);
            name[k.len] = 0;
            if (qfit_gguf_find_key(g, name) != i) abort(); /* keys are unique */
        }
        sink += qfit_gguf_kv_type(g, i);
        sink += qfit_gguf_get_u8(g, i) + (uint64_t)qfit_gguf_get_i8(g, i) + qfit_gguf_get_u16(g, i) +
                (uint64_t)qfit_gguf_get_i16(g, i) + qfit_gguf_get_u32(g, i) + (uint64_t)qfit_gguf_get_i32(g, i) +
                qfit_gguf_get_u64(g, i) + (uint64_t)qfit_gguf_get_i64(g, i) + (uint64_t)qfit_gguf_get_bool(g, i);
        sink += (uint64_t)(qfit_gguf_get_f32(g, i) != 0) + (uint64_t)(qfit_gguf_get_f64(g, i) != 0);
        qfit_gguf_str s = qfit_gguf_get_str(g, i);
        touch(s.data, s.len);
        int64_t iv;
        uint64_t uv;
        double dv;
        if (qfit_gguf_get_int(g, i, &iv)) sink += (uint64_t)iv;
        if (qfit_gguf_get_uint(g, i, &uv)) sink += uv;
        if (qfit_gguf_get_float(g, i, &dv)) sink += (uint64_t)(dv != 0);
        qfit_gguf_type at = qfit_gguf_arr_type(g, i);
        uint64_t n = qfit_gguf_arr_len(g, i);
        const void *ad = qfit_gguf_arr_data(g, i);
        if (ad) touch(ad, n * qfit_gguf_type_size(at));
        if (at == QFIT_GGUF_STRING) {
            for (uint64_t j = 0; j < n; j++) {
                qfit_gguf_str e = qfit_gguf_arr_str(g, i, j);
                touch(e.data, e.len);
            }
        }
        qfit_gguf_value v = qfit_gguf_kv_value(g, i);
        walk_value(&v, 0);
        if (w) (void)qfit_gguf_copy_kv(w, g, i);
    }
    for (int64_t i = 0; i < qfit_gguf_n_tensors(g); i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        touch(t->name.data, t->name.len);
        touch(t->data, t->nbytes);
        sink += (uint64_t)qfit_gguf_tensor_nelements(t);
        if (t->name.len < sizeof name && !memchr(t->name.data, 0, t->name.len)) {
            memcpy(name, t->name.data, t->name.len);
            name[t->name.len] = 0;
            if (qfit_gguf_find_tensor(g, name) != i) abort(); /* names are unique */
            if (w) (void)qfit_gguf_add_tensor(w, name, t->n_dims, t->ne, t->type);
        }
    }
    char tmp[64];
    (void)qfit_gguf_get_string(g, "general.architecture", tmp, sizeof tmp);
    sink += (uint64_t)qfit_gguf_get_int_or(g, "general.alignment", 0);
    sink += (uint64_t)(qfit_gguf_get_float_or(g, "x", 1.0) != 0);
    if (w) {
        sink += qfit_gguf_writer_file_size(w) + qfit_gguf_writer_data_offset(w);
        qfit_gguf_writer_free(w);
    }
    qfit_gguf_close(g);
    free(buf);
    return 0;
}
