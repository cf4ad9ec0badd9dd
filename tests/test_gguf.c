/* Suite gguf: reader, writer, malformed corpus and `qfit inspect`. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qfit/gguf.h"
#include "qfit/quant.h"
#include "util/testutil.h"

#define F32_MODEL "models/kjv-llama-7m-f32.gguf"
#define F16_MODEL "models/kjv-llama-7m-f16.gguf"

/* tests/data/gguf-bad, located from this file's path (tests run from the repo root) */
static const char *corpus_dir(void)
{
    static char dir[4096];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s", __FILE__);
        char *slash = strrchr(dir, '/');
        if (slash) slash[1] = 0; else dir[0] = 0;
        strncat(dir, "data/gguf-bad", sizeof dir - strlen(dir) - 1);
    }
    return dir;
}

static bool str_is(qfit_gguf_str s, const char *c)
{
    return s.len == strlen(c) && memcmp(s.data, c, s.len) == 0;
}

static int64_t key_or_fail(const qfit_gguf *g, const char *key)
{
    int64_t i = qfit_gguf_find_key(g, key);
    cr_assert_geq(i, 0, "key %s missing", key);
    return i;
}

static qfit_gguf *open_ok(const char *path)
{
    char err[512];
    qfit_gguf *g = qfit_gguf_open(path, err, sizeof err);
    cr_assert_not_null(g, "open %s: %s", path, err);
    return g;
}

/* ------------------------------------------------------------ shared models */

static void check_model(const char *rel, int weight_type, int file_type)
{
    const char *path = tu_shared_path(rel);
    qfit_gguf *g = open_ok(path);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);

    cr_assert_eq(qfit_gguf_version(g), 3);
    cr_assert_eq(qfit_gguf_alignment(g), 32);
    cr_assert_eq(qfit_gguf_file_size(g), (uint64_t)st.st_size);
    cr_assert_eq(qfit_gguf_data_offset(g) % 32, 0);

    char buf[64];
    cr_assert(qfit_gguf_get_string(g, "general.architecture", buf, sizeof buf));
    cr_assert_str_eq(buf, "llama");
    cr_assert(qfit_gguf_get_string(g, "general.name", buf, sizeof buf));
    cr_assert_str_eq(buf, "kjv-llama-7m");
    cr_assert(qfit_gguf_get_string(g, "general.name", buf, 4)); /* truncated copy */
    cr_assert_str_eq(buf, "kjv");
    cr_assert_eq(qfit_gguf_get_int_or(g, "general.file_type", -1), file_type);
    cr_assert_eq(qfit_gguf_get_u32(g, key_or_fail(g, "general.alignment")), 32);
    cr_assert_eq(qfit_gguf_get_int_or(g, "llama.block_count", -1), 8);
    cr_assert_eq(qfit_gguf_get_int_or(g, "llama.embedding_length", -1), 256);
    cr_assert_eq(qfit_gguf_get_int_or(g, "llama.context_length", -1), 512);
    cr_assert_eq(qfit_gguf_get_int_or(g, "llama.feed_forward_length", -1), 768);
    cr_assert_eq(qfit_gguf_get_int_or(g, "llama.attention.head_count", -1), 4);
    cr_assert_eq(qfit_gguf_get_int_or(g, "llama.attention.head_count_kv", -1), 2);
    cr_assert_eq(qfit_gguf_get_int_or(g, "llama.vocab_size", -1), 2048);
    cr_assert_eq(qfit_gguf_get_int_or(g, "no.such.key", -7), -7);
    cr_assert_eq(qfit_gguf_get_int_or(g, "general.name", -7), -7); /* a string is not an int */
    cr_assert_float_eq(qfit_gguf_get_float_or(g, "llama.rope.freq_base", 0), 10000.0, 1e-9);
    cr_assert_float_eq(qfit_gguf_get_float_or(g, "llama.attention.layer_norm_rms_epsilon", 0), 1e-5, 1e-10);
    cr_assert_eq(qfit_gguf_find_key(g, "no.such.key"), -1);
    cr_assert_eq(qfit_gguf_find_key(g, ""), -1);

    int64_t bos = key_or_fail(g, "tokenizer.ggml.add_bos_token");
    cr_assert_eq(qfit_gguf_kv_type(g, bos), QFIT_GGUF_BOOL);
    cr_assert(qfit_gguf_get_bool(g, bos));
    cr_assert_not(qfit_gguf_get_bool(g, key_or_fail(g, "tokenizer.ggml.add_eos_token")));
    cr_assert_eq(qfit_gguf_get_u32(g, bos), 0); /* wrong type reads as 0 */

    /* tokenizer arrays */
    int64_t tok = key_or_fail(g, "tokenizer.ggml.tokens");
    cr_assert_eq(qfit_gguf_kv_type(g, tok), QFIT_GGUF_ARRAY);
    cr_assert_eq(qfit_gguf_arr_type(g, tok), QFIT_GGUF_STRING);
    cr_assert_eq(qfit_gguf_arr_len(g, tok), 2048);
    cr_assert_null(qfit_gguf_arr_data(g, tok));
    cr_assert(str_is(qfit_gguf_arr_str(g, tok, 0), "<unk>"));
    cr_assert(str_is(qfit_gguf_arr_str(g, tok, 1), "<s>"));
    cr_assert(str_is(qfit_gguf_arr_str(g, tok, 2), "</s>"));
    cr_assert(str_is(qfit_gguf_arr_str(g, tok, 3), "<0x00>"));
    cr_assert(str_is(qfit_gguf_arr_str(g, tok, 13), "<0x0A>"));
    cr_assert(str_is(qfit_gguf_arr_str(g, tok, 258), "<0xFF>"));
    cr_assert_eq(qfit_gguf_arr_str(g, tok, 2048).len, 0); /* out of range */
    /* arr_str agrees with the generic element walk */
    qfit_gguf_value tv = qfit_gguf_kv_value(g, tok), ev;
    for (uint64_t j = 0; j < 2048; j += 97) {
        cr_assert(qfit_gguf_value_elem(&tv, j, &ev));
        qfit_gguf_str a = qfit_gguf_arr_str(g, tok, j);
        cr_assert_eq(ev.type, QFIT_GGUF_STRING);
        cr_assert_eq(ev.raw_len, 8 + a.len);
        cr_assert_eq(memcmp(ev.raw + 8, a.data, a.len), 0);
    }
    cr_assert_not(qfit_gguf_value_elem(&tv, 2048, &ev));

    int64_t sc = key_or_fail(g, "tokenizer.ggml.scores");
    cr_assert_eq(qfit_gguf_arr_type(g, sc), QFIT_GGUF_FLOAT32);
    cr_assert_eq(qfit_gguf_arr_len(g, sc), 2048);
    const uint8_t *scores = qfit_gguf_arr_data(g, sc);
    cr_assert_not_null(scores);
    float s0, s259, s2047;
    memcpy(&s0, scores, 4);
    memcpy(&s259, scores + 4 * 259, 4);
    memcpy(&s2047, scores + 4 * 2047, 4);
    float s260;
    memcpy(&s260, scores + 4 * 260, 4);
    cr_assert_eq(s0, 0.0f);
    cr_assert_eq(s259, 0.0f);     /* the first learned piece has rank 0 */
    cr_assert_eq(s260, -1.0f);
    cr_assert_eq(s2047, -1788.0f); /* -rank */
    int64_t tt = key_or_fail(g, "tokenizer.ggml.token_type");
    cr_assert_eq(qfit_gguf_arr_type(g, tt), QFIT_GGUF_INT32);
    const uint8_t *types = qfit_gguf_arr_data(g, tt);
    int32_t t0, t1, t3, t300;
    memcpy(&t0, types, 4);
    memcpy(&t1, types + 4, 4);
    memcpy(&t3, types + 12, 4);
    memcpy(&t300, types + 1200, 4);
    cr_assert_eq(t0, 2);
    cr_assert_eq(t1, 3);
    cr_assert_eq(t3, 6);
    cr_assert_eq(t300, 1);

    /* tensors */
    cr_assert_eq(qfit_gguf_n_tensors(g), 75);
    struct { const char *name; int64_t ne0, ne1; bool matrix; } exp[] = {
        { "token_embd.weight", 256, 2048, true },
        { "blk.0.attn_norm.weight", 256, 1, false },
        { "blk.3.attn_q.weight", 256, 256, true },
        { "blk.7.attn_k.weight", 256, 128, true },
        { "blk.7.attn_v.weight", 256, 128, true },
        { "blk.5.attn_output.weight", 256, 256, true },
        { "blk.2.ffn_norm.weight", 256, 1, false },
        { "blk.1.ffn_gate.weight", 256, 768, true },
        { "blk.6.ffn_up.weight", 256, 768, true },
        { "blk.4.ffn_down.weight", 768, 256, true },
        { "output_norm.weight", 256, 1, false },
        { "output.weight", 256, 2048, true },
    };
    for (size_t k = 0; k < sizeof exp / sizeof exp[0]; k++) {
        int64_t i = qfit_gguf_find_tensor(g, exp[k].name);
        cr_assert_geq(i, 0, "tensor %s", exp[k].name);
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        cr_assert(str_is(t->name, exp[k].name));
        cr_assert_eq(t->n_dims, exp[k].matrix ? 2u : 1u);
        cr_assert_eq(t->ne[0], exp[k].ne0);
        cr_assert_eq(t->ne[1], exp[k].ne1);
        cr_assert_eq(t->ne[2], 1);
        cr_assert_eq(t->ne[3], 1);
        cr_assert_eq(t->type, exp[k].matrix ? weight_type : QFIT_TYPE_F32, "%s type", exp[k].name);
        size_t esz = t->type == QFIT_TYPE_F32 ? 4 : 2;
        cr_assert_eq(t->nbytes, (uint64_t)(exp[k].ne0 * exp[k].ne1) * esz);
        cr_assert_eq((const uint8_t *)t->data,
                     (const uint8_t *)qfit_gguf_base(g) + qfit_gguf_data_offset(g) + t->offset);
    }
    cr_assert_eq(qfit_gguf_find_tensor(g, "blk.8.attn_q.weight"), -1);
    cr_assert_eq(qfit_gguf_find_tensor(g, "token_embd.weigh"), -1);
    cr_assert_null(qfit_gguf_tensor_at(g, 75));
    cr_assert_null(qfit_gguf_tensor_at(g, -1));

    int64_t params = 0;
    uint64_t data = 0, max_end = 0;
    for (int64_t i = 0; i < 75; i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        char nm[128];
        snprintf(nm, sizeof nm, "%.*s", (int)t->name.len, t->name.data);
        cr_assert_eq(qfit_gguf_find_tensor(g, nm), i);
        params += qfit_gguf_tensor_nelements(t);
        data += (t->nbytes + 31) / 32 * 32;
        if (t->offset + t->nbytes > max_end) max_end = t->offset + t->nbytes;
    }
    cr_assert_eq(params, 7344384);
    cr_assert_eq(data, qfit_gguf_file_size(g) - qfit_gguf_data_offset(g));
    cr_assert_leq(max_end, qfit_gguf_file_size(g) - qfit_gguf_data_offset(g));

    /* a real value check: the first F32 norm weight is finite and nonzero */
    const qfit_gguf_tensor *norm = qfit_gguf_tensor_at(g, qfit_gguf_find_tensor(g, "output_norm.weight"));
    float w0;
    memcpy(&w0, norm->data, 4);
    cr_assert(isfinite(w0) && w0 != 0.0f);
    qfit_gguf_close(g);
}

Test(gguf, model_f32_facts) { check_model(F32_MODEL, QFIT_TYPE_F32, 0); }
Test(gguf, model_f16_facts) { check_model(F16_MODEL, QFIT_TYPE_F16, 1); }

Test(gguf, f16_matches_f32_weights)
{
    qfit_gguf *a = open_ok(tu_shared_path(F32_MODEL));
    qfit_gguf *b = open_ok(tu_shared_path(F16_MODEL));
    const qfit_gguf_tensor *ta = qfit_gguf_tensor_at(a, qfit_gguf_find_tensor(a, "blk.0.attn_q.weight"));
    const qfit_gguf_tensor *tb = qfit_gguf_tensor_at(b, qfit_gguf_find_tensor(b, "blk.0.attn_q.weight"));
    for (int k = 0; k < 256 * 256; k += 101) {
        float f;
        uint16_t h;
        memcpy(&f, (const uint8_t *)ta->data + 4 * k, 4);
        memcpy(&h, (const uint8_t *)tb->data + 2 * k, 2);
        cr_assert_eq(qfit_fp32_to_fp16(f), h, "element %d", k);
    }
    qfit_gguf_close(a);
    qfit_gguf_close(b);
}

/* ------------------------------------------------------------ round trip */

static bool values_equal(qfit_gguf_value a, qfit_gguf_value b)
{
    return a.type == b.type && a.raw_len == b.raw_len && a.arr_type == b.arr_type && a.arr_len == b.arr_len &&
           memcmp(a.raw, b.raw, a.raw_len) == 0;
}

static void copy_model(const qfit_gguf *src, const char *dst)
{
    char err[512];
    qfit_gguf_writer *w = qfit_gguf_writer_new();
    cr_assert_not_null(w);
    cr_assert_eq(qfit_gguf_copy_all_kv(w, src), 0);
    for (int64_t i = 0; i < qfit_gguf_n_tensors(src); i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(src, i);
        char nm[128];
        snprintf(nm, sizeof nm, "%.*s", (int)t->name.len, t->name.data);
        cr_assert_eq(qfit_gguf_add_tensor(w, nm, t->n_dims, t->ne, t->type), 0);
    }
    cr_assert_eq(qfit_gguf_writer_data_offset(w), qfit_gguf_data_offset(src));
    cr_assert_eq(qfit_gguf_writer_file_size(w), qfit_gguf_file_size(src));
    cr_assert_eq(qfit_gguf_writer_begin(w, dst, err, sizeof err), 0, "%s", err);
    for (int64_t i = 0; i < qfit_gguf_n_tensors(src); i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(src, i);
        cr_assert_eq(qfit_gguf_writer_write_tensor(w, t->data, t->nbytes, err, sizeof err), 0, "%s", err);
    }
    cr_assert_eq(qfit_gguf_writer_finish(w, err, sizeof err), 0, "%s", err);
    qfit_gguf_writer_free(w);
}

Test(gguf, roundtrip_f16_byte_identical)
{
    const char *src_path = tu_shared_path(F16_MODEL);
    qfit_gguf *src = open_ok(src_path);
    char dst[4200];
    snprintf(dst, sizeof dst, "%s/copy-f16.gguf", tu_tmpdir());
    copy_model(src, dst);

    qfit_gguf *cp = open_ok(dst);
    cr_assert_eq(qfit_gguf_n_kv(cp), qfit_gguf_n_kv(src));
    for (int64_t i = 0; i < qfit_gguf_n_kv(src); i++) {
        qfit_gguf_str ka = qfit_gguf_key(src, i), kb = qfit_gguf_key(cp, i);
        cr_assert(ka.len == kb.len && memcmp(ka.data, kb.data, ka.len) == 0);
        cr_assert(values_equal(qfit_gguf_kv_value(src, i), qfit_gguf_kv_value(cp, i)));
    }
    cr_assert_eq(qfit_gguf_n_tensors(cp), qfit_gguf_n_tensors(src));
    for (int64_t i = 0; i < qfit_gguf_n_tensors(src); i++) {
        const qfit_gguf_tensor *a = qfit_gguf_tensor_at(src, i), *b = qfit_gguf_tensor_at(cp, i);
        cr_assert(a->name.len == b->name.len && memcmp(a->name.data, b->name.data, a->name.len) == 0);
        cr_assert_eq(a->n_dims, b->n_dims);
        cr_assert_eq(memcmp(a->ne, b->ne, sizeof a->ne), 0);
        cr_assert_eq(a->type, b->type);
        cr_assert_eq(a->offset, b->offset);
        cr_assert_eq(a->nbytes, b->nbytes);
        cr_assert_eq(memcmp(a->data, b->data, a->nbytes), 0);
    }
    /* same layout (v3, alignment 32, tensors packed in order): the whole file is identical */
    cr_assert_eq(qfit_gguf_file_size(cp), qfit_gguf_file_size(src));
    cr_assert_eq(memcmp(qfit_gguf_base(cp), qfit_gguf_base(src), qfit_gguf_file_size(src)), 0);
    struct stat st;
    cr_assert_eq(stat(dst, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0644);
    qfit_gguf_close(cp);
    qfit_gguf_close(src);
}

/* ------------------------------------------------------------ writer */

static const char *tmp_file(const char *name)
{
    static char bufs[4][4200];
    static int slot;
    char *b = bufs[slot++ & 3];
    snprintf(b, sizeof bufs[0], "%s/%s", tu_tmpdir(), name);
    return b;
}

/* A fresh, empty directory under the test tmpdir. */
static const char *fresh_dir(const char *name)
{
    const char *d = tmp_file(name);
    cr_assert_eq(mkdir(d, 0755), 0);
    return d;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

Test(gguf, writer_every_type)
{
    char err[512];
    qfit_gguf_writer *w = qfit_gguf_writer_new();
    cr_assert_eq(qfit_gguf_set_u8(w, "k.u8", 250), 0);
    cr_assert_eq(qfit_gguf_set_i8(w, "k.i8", -128), 0);
    cr_assert_eq(qfit_gguf_set_u16(w, "k.u16", 65535), 0);
    cr_assert_eq(qfit_gguf_set_i16(w, "k.i16", -32768), 0);
    cr_assert_eq(qfit_gguf_set_u32(w, "k.u32", 4000000000u), 0);
    cr_assert_eq(qfit_gguf_set_i32(w, "k.i32", -2000000000), 0);
    cr_assert_eq(qfit_gguf_set_u64(w, "k.u64", UINT64_MAX), 0);
    cr_assert_eq(qfit_gguf_set_i64(w, "k.i64", INT64_MIN), 0);
    cr_assert_eq(qfit_gguf_set_f32(w, "k.f32", -1.25f), 0);
    cr_assert_eq(qfit_gguf_set_f64(w, "k.f64", 1e300), 0);
    cr_assert_eq(qfit_gguf_set_bool(w, "k.bool", true), 0);
    cr_assert_eq(qfit_gguf_set_str(w, "k.str", "héllo"), 0);
    cr_assert_eq(qfit_gguf_set_str(w, "k.empty", ""), 0);
    const int16_t a16[3] = { -1, 2, -3 };
    cr_assert_eq(qfit_gguf_set_arr(w, "k.arr16", QFIT_GGUF_INT16, a16, 3), 0);
    cr_assert_eq(qfit_gguf_set_arr(w, "k.arr0", QFIT_GGUF_FLOAT64, NULL, 0), 0);
    const char *strs[] = { "a", "", "ccc" };
    cr_assert_eq(qfit_gguf_set_arr_str(w, "k.strs", strs, 3), 0);
    cr_assert_eq(qfit_gguf_set_arr_str(w, "k.strs0", NULL, 0), 0);
    const uint8_t badbool[2] = { 0, 2 };
    cr_assert_eq(qfit_gguf_set_arr(w, "k.badbool", QFIT_GGUF_BOOL, badbool, 2), -1);
    cr_assert_eq(qfit_gguf_set_arr(w, "k.nest", QFIT_GGUF_ARRAY, a16, 1), -1);
    cr_assert_eq(qfit_gguf_set_u8(w, "", 1), -1);
    /* nested arrays come from a reader */
    char everything[4200];
    snprintf(everything, sizeof everything, "%s/good-everything.case", corpus_dir());
    qfit_gguf *src = open_ok(everything);
    int64_t nest = key_or_fail(src, "t.nested");
    cr_assert_eq(qfit_gguf_copy_kv(w, src, nest), 0);
    /* setting a key again keeps its position and takes the new value */
    cr_assert_eq(qfit_gguf_set_u32(w, "k.u8", 7), 0);
    cr_assert_eq(qfit_gguf_set_str(w, "k.gone", "x"), 0);
    cr_assert_eq(qfit_gguf_remove_key(w, "k.gone"), 0);
    cr_assert_eq(qfit_gguf_remove_key(w, "k.gone"), -1);
    cr_assert_eq(qfit_gguf_add_tensor(w, "t", 1, (int64_t[]){ 8 }, QFIT_TYPE_F32), 0);
    const char *path = tmp_file("every.gguf");
    cr_assert_eq(qfit_gguf_writer_begin(w, path, err, sizeof err), 0, "%s", err);
    float data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    cr_assert_eq(qfit_gguf_writer_write_tensor(w, data, sizeof data, err, sizeof err), 0, "%s", err);
    uint64_t expect_size = qfit_gguf_writer_file_size(w);
    cr_assert_eq(qfit_gguf_writer_finish(w, err, sizeof err), 0, "%s", err);
    qfit_gguf_writer_free(w);

    qfit_gguf *g = open_ok(path);
    cr_assert_eq(qfit_gguf_file_size(g), expect_size);
    cr_assert_eq(qfit_gguf_n_kv(g), 18);
    cr_assert(str_is(qfit_gguf_key(g, 0), "k.u8"));
    cr_assert_eq(qfit_gguf_kv_type(g, 0), QFIT_GGUF_UINT32);
    cr_assert_eq(qfit_gguf_get_u32(g, 0), 7);
    cr_assert_eq(qfit_gguf_get_i8(g, key_or_fail(g, "k.i8")), -128);
    cr_assert_eq(qfit_gguf_get_u16(g, key_or_fail(g, "k.u16")), 65535);
    cr_assert_eq(qfit_gguf_get_i16(g, key_or_fail(g, "k.i16")), -32768);
    cr_assert_eq(qfit_gguf_get_u32(g, key_or_fail(g, "k.u32")), 4000000000u);
    cr_assert_eq(qfit_gguf_get_i32(g, key_or_fail(g, "k.i32")), -2000000000);
    cr_assert_eq(qfit_gguf_get_u64(g, key_or_fail(g, "k.u64")), UINT64_MAX);
    cr_assert_eq(qfit_gguf_get_i64(g, key_or_fail(g, "k.i64")), INT64_MIN);
    cr_assert_eq(qfit_gguf_get_f32(g, key_or_fail(g, "k.f32")), -1.25f);
    cr_assert_eq(qfit_gguf_get_f64(g, key_or_fail(g, "k.f64")), 1e300);
    cr_assert(qfit_gguf_get_bool(g, key_or_fail(g, "k.bool")));
    cr_assert(str_is(qfit_gguf_get_str(g, key_or_fail(g, "k.str")), "héllo"));
    int64_t e = key_or_fail(g, "k.empty");
    cr_assert_eq(qfit_gguf_kv_type(g, e), QFIT_GGUF_STRING);
    cr_assert_eq(qfit_gguf_get_str(g, e).len, 0);
    /* generic conversions */
    int64_t iv;
    uint64_t uv;
    double dv;
    cr_assert(qfit_gguf_get_int(g, key_or_fail(g, "k.i8"), &iv) && iv == -128);
    cr_assert(qfit_gguf_get_int(g, key_or_fail(g, "k.u32"), &iv) && iv == 4000000000ll);
    cr_assert_not(qfit_gguf_get_int(g, key_or_fail(g, "k.u64"), &iv)); /* > INT64_MAX */
    cr_assert(qfit_gguf_get_uint(g, key_or_fail(g, "k.u64"), &uv) && uv == UINT64_MAX);
    cr_assert_not(qfit_gguf_get_uint(g, key_or_fail(g, "k.i16"), &uv)); /* negative */
    cr_assert_not(qfit_gguf_get_int(g, key_or_fail(g, "k.f32"), &iv));
    cr_assert(qfit_gguf_get_float(g, key_or_fail(g, "k.f32"), &dv) && dv == -1.25);
    cr_assert_not(qfit_gguf_get_float(g, key_or_fail(g, "k.u8"), &dv));
    /* arrays */
    int64_t ai = key_or_fail(g, "k.arr16");
    cr_assert_eq(qfit_gguf_arr_type(g, ai), QFIT_GGUF_INT16);
    cr_assert_eq(qfit_gguf_arr_len(g, ai), 3);
    cr_assert_eq(memcmp(qfit_gguf_arr_data(g, ai), a16, sizeof a16), 0);
    int64_t a0 = key_or_fail(g, "k.arr0");
    cr_assert_eq(qfit_gguf_arr_type(g, a0), QFIT_GGUF_FLOAT64);
    cr_assert_eq(qfit_gguf_arr_len(g, a0), 0);
    int64_t si = key_or_fail(g, "k.strs");
    cr_assert_eq(qfit_gguf_arr_len(g, si), 3);
    cr_assert(str_is(qfit_gguf_arr_str(g, si, 0), "a"));
    cr_assert_eq(qfit_gguf_arr_str(g, si, 1).len, 0);
    cr_assert(str_is(qfit_gguf_arr_str(g, si, 2), "ccc"));
    cr_assert_eq(qfit_gguf_arr_len(g, key_or_fail(g, "k.strs0")), 0);
    /* the nested array survived the copy: [[1, 2], ["deep"], []] */
    int64_t ni = key_or_fail(g, "t.nested");
    cr_assert(values_equal(qfit_gguf_kv_value(g, ni), qfit_gguf_kv_value(src, nest)));
    qfit_gguf_value nv = qfit_gguf_kv_value(g, ni), el, sub;
    cr_assert_eq(nv.arr_type, QFIT_GGUF_ARRAY);
    cr_assert_eq(nv.arr_len, 3);
    cr_assert(qfit_gguf_value_elem(&nv, 0, &el));
    cr_assert_eq(el.arr_type, QFIT_GGUF_UINT8);
    cr_assert_eq(el.arr_len, 2);
    cr_assert(qfit_gguf_value_elem(&el, 1, &sub));
    cr_assert_eq(sub.type, QFIT_GGUF_UINT8);
    cr_assert_eq(sub.raw[0], 2);
    cr_assert(qfit_gguf_value_elem(&nv, 1, &el));
    cr_assert_eq(el.arr_type, QFIT_GGUF_STRING);
    cr_assert(qfit_gguf_value_elem(&el, 0, &sub));
    cr_assert_eq(sub.raw_len, 12);
    cr_assert_eq(memcmp(sub.raw + 8, "deep", 4), 0);
    cr_assert(qfit_gguf_value_elem(&nv, 2, &el));
    cr_assert_eq(el.arr_type, QFIT_GGUF_ARRAY);
    cr_assert_eq(el.arr_len, 0);
    cr_assert_not(qfit_gguf_value_elem(&nv, 3, &el));
    /* the tensor */
    const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, 0);
    cr_assert_eq(t->nbytes, sizeof data);
    cr_assert_eq(memcmp(t->data, data, sizeof data), 0);
    qfit_gguf_close(g);
    qfit_gguf_close(src);
}

Test(gguf, writer_alignment_and_invalid_tensors)
{
    char err[512];
    qfit_gguf_writer *w = qfit_gguf_writer_new();
    cr_assert_eq(qfit_gguf_set_u32(w, "general.alignment", 64), 0);
    cr_assert_eq(qfit_gguf_add_tensor(w, "a", 2, (int64_t[]){ 32, 3 }, QFIT_TYPE_Q8_0), 0);
    cr_assert_eq(qfit_gguf_add_tensor(w, "b", 1, (int64_t[]){ 5 }, QFIT_TYPE_F16), 0);
    cr_assert_eq(qfit_gguf_add_tensor(w, "c", 0, NULL, QFIT_TYPE_F32), 0);        /* scalar */
    cr_assert_eq(qfit_gguf_add_tensor(w, "a", 1, (int64_t[]){ 4 }, QFIT_TYPE_F32), -1); /* duplicate */
    cr_assert_eq(qfit_gguf_add_tensor(w, "x", 1, (int64_t[]){ 33 }, QFIT_TYPE_Q8_0), -1); /* block */
    cr_assert_eq(qfit_gguf_add_tensor(w, "x", 5, (int64_t[]){ 1, 1, 1, 1, 1 }, QFIT_TYPE_F32), -1);
    cr_assert_eq(qfit_gguf_add_tensor(w, "x", 1, (int64_t[]){ -1 }, QFIT_TYPE_F32), -1);
    cr_assert_eq(qfit_gguf_add_tensor(w, "x", 1, (int64_t[]){ 4 }, 4), -1);               /* retired id */
    cr_assert_eq(qfit_gguf_add_tensor(w, "x", 2, (int64_t[]){ INT64_MAX, 2 }, QFIT_TYPE_F32), -1);
    cr_assert_eq(qfit_gguf_add_tensor(w, "", 1, (int64_t[]){ 4 }, QFIT_TYPE_F32), -1);
    char longname[80];
    memset(longname, 'n', 64);
    longname[64] = 0;
    cr_assert_eq(qfit_gguf_add_tensor(w, longname, 1, (int64_t[]){ 4 }, QFIT_TYPE_F32), -1);
    const char *path = tmp_file("align64.gguf");
    cr_assert_eq(qfit_gguf_writer_begin(w, path, err, sizeof err), 0, "%s", err);
    uint8_t q[3 * 34], h[10], s[4];
    for (size_t i = 0; i < sizeof q; i++) q[i] = (uint8_t)i;
    memset(h, 0x3c, sizeof h);
    memset(s, 0, sizeof s);
    cr_assert_eq(qfit_gguf_writer_write_tensor(w, q, sizeof q, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_gguf_writer_write_tensor(w, h, sizeof h, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_gguf_writer_write_tensor(w, s, sizeof s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_gguf_writer_finish(w, err, sizeof err), 0, "%s", err);
    uint64_t want = qfit_gguf_writer_file_size(w);
    qfit_gguf_writer_free(w);
    qfit_gguf *g = open_ok(path);
    cr_assert_eq(qfit_gguf_alignment(g), 64);
    cr_assert_eq(qfit_gguf_data_offset(g) % 64, 0);
    cr_assert_eq(qfit_gguf_file_size(g), want);
    cr_assert_eq(qfit_gguf_file_size(g), qfit_gguf_data_offset(g) + 128 + 64 + 64);
    const qfit_gguf_tensor *b = qfit_gguf_tensor_at(g, 1), *c = qfit_gguf_tensor_at(g, 2);
    cr_assert_eq(b->offset, 128);
    cr_assert_eq(c->offset, 192);
    cr_assert_eq(c->n_dims, 0);
    cr_assert_eq(qfit_gguf_tensor_nelements(c), 1);
    cr_assert_eq(memcmp(qfit_gguf_tensor_at(g, 0)->data, q, sizeof q), 0);
    cr_assert_eq(memcmp(b->data, h, sizeof h), 0);
    qfit_gguf_close(g);

    /* an invalid alignment is refused at begin() and leaves nothing behind */
    const char *dir = fresh_dir("badalign");
    char p2[4300];
    snprintf(p2, sizeof p2, "%s/x.gguf", dir);
    w = qfit_gguf_writer_new();
    cr_assert_eq(qfit_gguf_set_u32(w, "general.alignment", 3), 0);
    cr_assert_eq(qfit_gguf_writer_begin(w, p2, err, sizeof err), -1);
    cr_assert(strstr(err, "power of two"), "%s", err);
    qfit_gguf_writer_free(w);
    cr_assert_eq(count_entries(dir), 0);
}

Test(gguf, writer_failures_leave_no_file)
{
    char err[512];
    const char *dir = fresh_dir("fail");
    char path[4300];
    snprintf(path, sizeof path, "%s/out.gguf", dir);
    float data[8] = { 0 };

    /* 1. size mismatch: no file under the final name, no temp file */
    qfit_gguf_writer *w = qfit_gguf_writer_new();
    cr_assert_eq(qfit_gguf_add_tensor(w, "t", 1, (int64_t[]){ 8 }, QFIT_TYPE_F32), 0);
    cr_assert_eq(qfit_gguf_writer_begin(w, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(count_entries(dir), 1); /* the temp file exists while writing */
    cr_assert_eq(qfit_gguf_writer_write_tensor(w, data, 16, err, sizeof err), -1);
    cr_assert(strstr(err, "needs 32 bytes, 16 were given"), "%s", err);
    cr_assert_eq(count_entries(dir), 0);
    cr_assert_eq(qfit_gguf_writer_finish(w, err, sizeof err), -1);
    qfit_gguf_writer_free(w);
    cr_assert_eq(count_entries(dir), 0);

    /* 2. an existing destination survives a failed write */
    FILE *f = fopen(path, "wb");
    fputs("precious", f);
    fclose(f);
    w = qfit_gguf_writer_new();
    cr_assert_eq(qfit_gguf_add_tensor(w, "t", 1, (int64_t[]){ 8 }, QFIT_TYPE_F32), 0);
    cr_assert_eq(qfit_gguf_add_tensor(w, "u", 1, (int64_t[]){ 8 }, QFIT_TYPE_F32), 0);
    cr_assert_eq(qfit_gguf_writer_begin(w, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_gguf_writer_write_tensor(w, data, sizeof data, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_gguf_writer_finish(w, err, sizeof err), -1); /* one tensor missing */
    cr_assert(strstr(err, "only 1 of 2 tensors"), "%s", err);
    qfit_gguf_writer_free(w);
    size_t n;
    char *got = tu_read_file(path, &n);
    cr_assert_not_null(got);
    cr_assert_str_eq(got, "precious");
    free(got);
    cr_assert_eq(count_entries(dir), 1);

    /* 3. freeing an unfinished writer removes its temp file */
    w = qfit_gguf_writer_new();
    cr_assert_eq(qfit_gguf_add_tensor(w, "t", 1, (int64_t[]){ 8 }, QFIT_TYPE_F32), 0);
    cr_assert_eq(qfit_gguf_writer_begin(w, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(count_entries(dir), 2);
    qfit_gguf_writer_free(w);
    cr_assert_eq(count_entries(dir), 1);

    /* 4. too many tensors written */
    w = qfit_gguf_writer_new();
    cr_assert_eq(qfit_gguf_writer_begin(w, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_gguf_writer_write_tensor(w, data, sizeof data, err, sizeof err), -1);
    cr_assert(strstr(err, "already written"), "%s", err);
    qfit_gguf_writer_free(w);
    got = tu_read_file(path, &n);
    cr_assert_str_eq(got, "precious");
    free(got);
    cr_assert_eq(count_entries(dir), 1);

    /* 5. a directory that does not exist */
    w = qfit_gguf_writer_new();
    char bad[4400];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.gguf", dir);
    cr_assert_eq(qfit_gguf_writer_begin(w, bad, err, sizeof err), -1);
    cr_assert(strstr(err, "cannot create a temporary file"), "%s", err);
    qfit_gguf_writer_free(w);

    /* 6. a successful write replaces the destination */
    w = qfit_gguf_writer_new();
    cr_assert_eq(qfit_gguf_writer_begin(w, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_gguf_writer_finish(w, err, sizeof err), 0, "%s", err);
    qfit_gguf_writer_free(w);
    qfit_gguf *g = open_ok(path);
    cr_assert_eq(qfit_gguf_n_tensors(g), 0);
    cr_assert_eq(qfit_gguf_n_kv(g), 0);
    qfit_gguf_close(g);
    cr_assert_eq(count_entries(dir), 1);
}

/* ------------------------------------------------------------ malformed input */

/* Walks every accessor of an opened file (what the fuzzer does). */
static void walk(const qfit_gguf *g)
{
    for (int64_t i = 0; i < qfit_gguf_n_kv(g); i++) {
        qfit_gguf_str k = qfit_gguf_key(g, i);
        cr_assert_gt(k.len, 0);
        qfit_gguf_value v = qfit_gguf_kv_value(g, i);
        int64_t iv;
        double dv;
        (void)qfit_gguf_get_int(g, i, &iv);
        (void)qfit_gguf_get_float(g, i, &dv);
        if (v.type == QFIT_GGUF_ARRAY) {
            for (uint64_t j = 0; j < v.arr_len && j < 64; j++) {
                qfit_gguf_value e;
                cr_assert(qfit_gguf_value_elem(&v, j, &e));
                if (v.arr_type == QFIT_GGUF_STRING) {
                    qfit_gguf_str s = qfit_gguf_arr_str(g, i, j);
                    cr_assert_eq(e.raw_len, 8 + s.len);
                }
            }
        }
    }
    for (int64_t i = 0; i < qfit_gguf_n_tensors(g); i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        const uint8_t *end = (const uint8_t *)qfit_gguf_base(g) + qfit_gguf_file_size(g);
        cr_assert_leq((const uint8_t *)t->data + t->nbytes, end);
        volatile uint8_t sink = 0;
        if (t->nbytes) sink ^= ((const uint8_t *)t->data)[t->nbytes - 1];
        (void)sink;
    }
}

Test(gguf, malformed_corpus)
{
    char manifest[4200];
    snprintf(manifest, sizeof manifest, "%s/MANIFEST", corpus_dir());
    FILE *f = fopen(manifest, "r");
    cr_assert_not_null(f, "cannot read %s", manifest);
    char line[1024];
    int n_bad = 0, n_good = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        line[strcspn(line, "\n")] = 0;
        char *tab = strchr(line, '\t');
        cr_assert_not_null(tab, "bad manifest line '%s'", line);
        *tab = 0;
        const char *name = line, *expect = tab + 1;
        char path[4400], err[512];
        snprintf(path, sizeof path, "%s/%s", corpus_dir(), name);
        /* through a buffer of exactly the file's size (ASan catches over-reads) ... */
        size_t size;
        void *buf = tu_read_file(path, &size);
        cr_assert_not_null(buf, "cannot read %s", path);
        void *exact = malloc(size ? size : 1);
        memcpy(exact, buf, size);
        free(buf);
        qfit_gguf *gb = qfit_gguf_open_buffer(exact, size, err, sizeof err);
        /* ... and through mmap */
        char err2[512];
        qfit_gguf *gf = qfit_gguf_open(path, err2, sizeof err2);
        if (strcmp(expect, "ok") == 0) {
            cr_assert_not_null(gb, "%s should open: %s", name, err);
            cr_assert_not_null(gf, "%s should open: %s", name, err2);
            walk(gb);
            n_good++;
        } else {
            cr_assert_null(gb, "%s should be rejected", name);
            cr_assert_null(gf, "%s should be rejected", name);
            cr_assert(strncmp(err, "gguf: at byte ", 14) == 0, "%s: message '%s' lacks the byte offset", name, err);
            cr_assert(strstr(err, expect), "%s: message '%s' lacks '%s'", name, err, expect);
            cr_assert_str_eq(err, err2);
            n_bad++;
        }
        qfit_gguf_close(gb);
        qfit_gguf_close(gf);
        free(exact);
    }
    fclose(f);
    cr_assert_geq(n_bad, 30);
    cr_assert_geq(n_good, 3);
}

Test(gguf, specific_messages)
{
    char err[512];
    cr_assert_null(qfit_gguf_open("/nonexistent/x.gguf", err, sizeof err));
    cr_assert(strstr(err, "cannot open '/nonexistent/x.gguf'"), "%s", err);
    cr_assert_null(qfit_gguf_open(tu_tmpdir(), err, sizeof err));
    cr_assert(strstr(err, "not a regular file"), "%s", err);
    cr_assert_null(qfit_gguf_open_buffer(NULL, 0, err, sizeof err));
    cr_assert(strstr(err, "too small"), "%s", err);
    /* the example of the brief: n_kv too large for the file */
    uint8_t buf[1056] = { 'G', 'G', 'U', 'F', 3 };
    memset(buf + 16, 0xff, 4);
    cr_assert_null(qfit_gguf_open_buffer(buf, sizeof buf, err, sizeof err));
    cr_assert_str_eq(err, "gguf: at byte 24: n_kv 4294967295 cannot fit in the 1032 remaining bytes");
    /* a small error buffer truncates without overflowing */
    char tiny[8];
    cr_assert_null(qfit_gguf_open_buffer(buf, sizeof buf, tiny, sizeof tiny));
    cr_assert_eq(strlen(tiny), 7);
    cr_assert_null(qfit_gguf_open_buffer(buf, sizeof buf, NULL, 0));
}

/* A small valid file made by the writer, read into memory. */
static uint8_t *small_file(size_t *size, uint64_t *data_end)
{
    char err[512];
    qfit_gguf_writer *w = qfit_gguf_writer_new();
    qfit_gguf_set_str(w, "general.architecture", "tiny");
    qfit_gguf_set_u32(w, "general.alignment", 16);
    qfit_gguf_set_bool(w, "b", false);
    qfit_gguf_set_f64(w, "d", 0.5);
    const char *strs[] = { "x", "", "yy" };
    qfit_gguf_set_arr_str(w, "s", strs, 3);
    const uint32_t u[2] = { 1, 2 };
    qfit_gguf_set_arr(w, "u", QFIT_GGUF_UINT32, u, 2);
    cr_assert_eq(qfit_gguf_add_tensor(w, "w", 2, (int64_t[]){ 32, 2 }, QFIT_TYPE_Q8_0), 0);
    cr_assert_eq(qfit_gguf_add_tensor(w, "n", 1, (int64_t[]){ 3 }, QFIT_TYPE_F32), 0);
    const char *path = tmp_file("small.gguf");
    cr_assert_eq(qfit_gguf_writer_begin(w, path, err, sizeof err), 0, "%s", err);
    uint8_t q[68] = { 0 };
    float nrm[3] = { 1, 2, 3 };
    cr_assert_eq(qfit_gguf_writer_write_tensor(w, q, sizeof q, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_gguf_writer_write_tensor(w, nrm, sizeof nrm, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_gguf_writer_finish(w, err, sizeof err), 0, "%s", err);
    *data_end = qfit_gguf_writer_data_offset(w) + 80 + 12;
    qfit_gguf_writer_free(w);
    uint8_t *b = tu_read_file(path, size);
    cr_assert_not_null(b);
    return b;
}

Test(gguf, truncated_at_every_length)
{
    size_t size;
    uint64_t data_end;
    uint8_t *file = small_file(&size, &data_end);
    cr_assert_eq(size, data_end + 4); /* last tensor padded to 16 */
    char err[512];
    for (size_t len = 0; len <= size; len++) {
        uint8_t *b = malloc(len ? len : 1);
        memcpy(b, file, len);
        err[0] = 0;
        qfit_gguf *g = qfit_gguf_open_buffer(len ? b : NULL, len, err, sizeof err);
        if (len < data_end) {
            cr_assert_null(g, "truncated to %zu bytes but accepted", len);
            cr_assert(strncmp(err, "gguf: at byte ", 14) == 0, "len %zu: '%s'", len, err);
        } else {
            cr_assert_not_null(g, "len %zu: %s", len, err);
            walk(g);
        }
        qfit_gguf_close(g);
        free(b);
    }
    free(file);
}

Test(gguf, mutated_bytes_never_crash)
{
    size_t size;
    uint64_t data_end;
    uint8_t *file = small_file(&size, &data_end);
    uint64_t hdr_end = data_end - 80 - 12; /* data offset: mutate the metadata part */
    static const uint8_t vals[] = { 0x00, 0x01, 0x02, 0x05, 0x09, 0x0d, 0x7f, 0x80, 0xff };
    char err[512];
    int rejected = 0, accepted = 0;
    uint8_t *b = malloc(size);
    for (uint64_t pos = 0; pos < hdr_end; pos++) {
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(b, file, size);
            if (b[pos] == vals[v]) continue;
            b[pos] = vals[v];
            qfit_gguf *g = qfit_gguf_open_buffer(b, size, err, sizeof err);
            if (g) { walk(g); accepted++; }
            else { cr_assert(strncmp(err, "gguf: at byte ", 14) == 0, "'%s'", err); rejected++; }
            qfit_gguf_close(g);
        }
    }
    free(b);
    free(file);
    cr_assert_gt(rejected, 0);
    cr_assert_gt(accepted, 0);
}

Test(gguf, type_facts)
{
    cr_assert_str_eq(qfit_gguf_type_name(QFIT_GGUF_STRING), "str");
    cr_assert_str_eq(qfit_gguf_type_name(QFIT_GGUF_FLOAT64), "f64");
    cr_assert_str_eq(qfit_gguf_type_name((qfit_gguf_type)99), "?");
    cr_assert_eq(qfit_gguf_type_size(QFIT_GGUF_UINT16), 2);
    cr_assert_eq(qfit_gguf_type_size(QFIT_GGUF_INT64), 8);
    cr_assert_eq(qfit_gguf_type_size(QFIT_GGUF_BOOL), 1);
    cr_assert_eq(qfit_gguf_type_size(QFIT_GGUF_STRING), 0);
    cr_assert_eq(qfit_gguf_type_size(QFIT_GGUF_ARRAY), 0);
    cr_assert_eq(qfit_gguf_type_size((qfit_gguf_type)13), 0);
}

/* ------------------------------------------------------------ qfit inspect */

Test(gguf, cli_inspect_model)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' inspect '%s'", tu_qfit_bin(), tu_shared_path(F16_MODEL));
    int st;
    char *out = tu_run(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    cr_assert(strstr(out, "architecture: llama"), "%s", out);
    cr_assert(strstr(out, "alignment:    32"), "%s", out);
    cr_assert(strstr(out, "llama.block_count"), "%s", out);
    cr_assert(strstr(out, "[str × 2048]"), "%s", out);
    cr_assert(strstr(out, "\"<unk>\""), "%s", out);
    cr_assert(strstr(out, "token_embd.weight"), "%s", out);
    cr_assert(strstr(out, "[256, 2048]"), "%s", out);
    cr_assert(strstr(out, "tensors:      75"), "%s", out);
    cr_assert(strstr(out, "parameters:   7344384"), "%s", out);
    cr_assert(strstr(out, "f16: 58"), "%s", out);
    cr_assert(strstr(out, "f32: 17"), "%s", out);
    free(out);
}

Test(gguf, cli_inspect_bad_file)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' inspect '%s/bad-v1.case'", tu_qfit_bin(), corpus_dir());
    int st;
    char *out = tu_run(cmd, &st);
    cr_assert_eq(st, 1, "%s", out);
    cr_assert(strstr(out, "version 1 is not supported"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' inspect", tu_qfit_bin());
    out = tu_run(cmd, &st);
    cr_assert_eq(st, 2, "%s", out);
    cr_assert(strstr(out, "usage"), "%s", out);
    free(out);
}
