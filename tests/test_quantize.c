/* Tests of llama.cpp's quantization mixes and of qfit quantize (suite `quantize`).
 *
 * Reference: ../shared/testdata/kjv-llama-7m/mixes/MIX.tsv — the type llama.cpp
 * v0.5.0 chose for every tensor of the shared model, its byte size, and the
 * resulting file sizes. Rules the small model does not exercise were checked
 * against llama.cpp's own quantizer on synthetic models (qfit synth shapes
 * tiny-32l, tiny-qwen2, tiny-odd: byte-identical files for all 18 mixes) and
 * are encoded below. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "qfit/gguf.h"
#include "qfit/quant.h"
#include "qfit/quantize.h"
#include "qfit/synth.h"
#include "util/testutil.h"

/* ------------------------------------------------------------- helpers */

typedef struct {
    char    name[64];
    int     type;
    int     n_dims;
    int64_t ne[4];
    int64_t bytes;
} tsv_row;

typedef struct {
    tsv_row rows[128];
    int     n;
    int64_t data_offset;
} tsv_mix;

static void load_mix(const char *mix, tsv_mix *out)
{
    char rel[256];
    snprintf(rel, sizeof rel, "testdata/kjv-llama-7m/mixes/%s.tsv", mix);
    size_t sz;
    char *txt = tu_read_file(tu_shared_path(rel), &sz);
    cr_assert_not_null(txt, "cannot read %s", rel);
    memset(out, 0, sizeof *out);
    char *save = NULL;
    for (char *line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') {
            char *p = strstr(line, "data at ");
            if (p) out->data_offset = atoll(p + 8);
            continue;
        }
        cr_assert_lt(out->n, 128);
        tsv_row *r = &out->rows[out->n];
        char tname[32], shape[128];
        long long bytes = 0;
        char *lb = strchr(line, '['), *rb = strchr(line, ']');
        cr_assert(lb && rb && rb > lb, "bad line: %s", line);
        cr_assert_eq(sscanf(line, "%63s %31s", r->name, tname), 2);
        snprintf(shape, sizeof shape, "%.*s", (int)(rb - lb - 1), lb + 1);
        char *bp = strstr(rb, "bytes=");
        cr_assert_not_null(bp);
        bytes = atoll(bp + 6);
        r->bytes = bytes;
        r->type = qfit_type_from_name(tname);
        cr_assert_geq(r->type, 0, "unknown type %s", tname);
        for (int d = 0; d < 4; d++) r->ne[d] = 1;
        r->n_dims = 0;
        char *sp = shape, *tok, *s2 = NULL;
        while ((tok = strtok_r(sp, ", ", &s2)) != NULL) {
            sp = NULL;
            cr_assert_lt(r->n_dims, 4);
            r->ne[r->n_dims++] = atoll(tok);
        }
        out->n++;
    }
    free(txt);
    cr_assert_gt(out->n, 0);
    cr_assert_gt(out->data_offset, 0);
}

static int64_t file_size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static int64_t expected_file_size(const char *mix)
{
    size_t sz;
    char *txt = tu_read_file(tu_shared_path("testdata/kjv-llama-7m/mixes/file-sizes.tsv"), &sz);
    cr_assert_not_null(txt);
    int64_t v = -1;
    char *save = NULL;
    for (char *line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[32];
        long long n;
        if (sscanf(line, "%31s %lld", name, &n) == 2 && strcmp(name, mix) == 0) v = n;
    }
    free(txt);
    return v;
}

static void kjv_model(qfit_mix_model *m)
{
    memset(m, 0, sizeof *m);
    strcpy(m->arch, "llama");
    m->n_layer = 8;
    m->n_head = 4;
    m->n_head_kv = 2;
}

static const char *ALL_MIXES[] = {
    "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L",
    "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "F16", "BF16", "IQ4_NL", "IQ4_XS",
};

/* ------------------------------------------------------------- names */

Test(quantize, ftype_names)
{
    cr_assert_eq(qfit_ftype_from_name("q4_k_m"), QFIT_FTYPE_MOSTLY_Q4_K_M);
    cr_assert_eq(qfit_ftype_from_name("Q4_K_M"), 15);
    cr_assert_eq(qfit_ftype_from_name("Q8_0"), 7);
    cr_assert_eq(qfit_ftype_from_name("q5_0"), 8);
    cr_assert_eq(qfit_ftype_from_name("f16"), 1);
    cr_assert_eq(qfit_ftype_from_name("BF16"), 32);
    cr_assert_eq(qfit_ftype_from_name("F32"), 0);
    cr_assert_eq(qfit_ftype_from_name("q3_k_l"), 13);
    cr_assert_eq(qfit_ftype_from_name("Q6_K"), 18);
    cr_assert_eq(qfit_ftype_from_name("iq4_xs"), 30);
    cr_assert_eq(qfit_ftype_from_name("q4_k"), -1);
    cr_assert_eq(qfit_ftype_from_name("Q4_K_MM"), -1);
    cr_assert_eq(qfit_ftype_from_name(""), -1);
    cr_assert_eq(qfit_ftype_from_name(NULL), -1);
    cr_assert_str_eq(qfit_ftype_name(17), "Q5_K_M");
    cr_assert_null(qfit_ftype_name(4));  /* retired Q4_1_SOME_F16 */
    cr_assert_eq(qfit_ftype_base_type(QFIT_FTYPE_MOSTLY_Q3_K_L), QFIT_TYPE_Q3_K);
    for (size_t i = 0; i < sizeof ALL_MIXES / sizeof ALL_MIXES[0]; i++) {
        int f = qfit_ftype_from_name(ALL_MIXES[i]);
        cr_assert_geq(f, 0, "%s", ALL_MIXES[i]);
        cr_assert(qfit_ftype_supported(f), "%s", ALL_MIXES[i]);
        cr_assert_str_eq(qfit_ftype_name(f), ALL_MIXES[i]);
    }
    cr_assert_not(qfit_ftype_supported(QFIT_FTYPE_MOSTLY_IQ2_XXS));
}

Test(quantize, order)
{
    cr_assert_lt(qfit_mix_order_cmp("output.weight", "blk.0.attn_k.weight"), 0);
    cr_assert_lt(qfit_mix_order_cmp("output.weight", "token_embd.weight"), 0);
    cr_assert_lt(qfit_mix_order_cmp("blk.2.ffn_up.weight", "blk.10.attn_k.weight"), 0);
    cr_assert_lt(qfit_mix_order_cmp("blk.1.attn_norm.weight", "blk.1.attn_output.weight"), 0);
    cr_assert_gt(qfit_mix_order_cmp("blk.9.attn_k.weight", "rope_freqs.weight"), 0);
    cr_assert_eq(qfit_mix_order_cmp("blk.3.x", "blk.3.x"), 0);
}

Test(quantize, quantizable)
{
    const int64_t ne2[4] = { 256, 256, 1, 1 }, ne1[4] = { 256, 1, 1, 1 }, ne_flat[4] = { 256, 1, 1, 1 };
    cr_assert(qfit_mix_tensor_quantizable("blk.0.attn_q.weight", 2, ne2));
    cr_assert(qfit_mix_tensor_quantizable("token_embd.weight", 2, ne2));
    cr_assert_not(qfit_mix_tensor_quantizable("blk.0.attn_norm.weight", 1, ne1));
    cr_assert_not(qfit_mix_tensor_quantizable("blk.0.attn_norm.weight", 2, ne2)); /* norms never */
    cr_assert_not(qfit_mix_tensor_quantizable("blk.0.attn_q.weight", 2, ne_flat)); /* [256,1] is 1-D */
    cr_assert_not(qfit_mix_tensor_quantizable("blk.0.attn_q.bias", 2, ne2));
    cr_assert_not(qfit_mix_tensor_quantizable("rope_freqs.weight", 1, ne1));
    cr_assert_not(qfit_mix_tensor_quantizable("position_embd.weight", 2, ne2));
    cr_assert_not(qfit_mix_tensor_quantizable("blk.0.ffn_gate_inp.weight", 2, ne2));
    cr_assert_not(qfit_mix_tensor_quantizable("blk.0.ssm_conv1d.weight", 2, ne2));
    cr_assert_not(qfit_mix_tensor_quantizable("blk.0.time_mix_first.weight", 2, ne2));
}

/* ---------------------------------------------------- the shared model */

/* For every mix llama.cpp produced from the shared model: same type for every
 * tensor, same order, same byte sizes, and data sizes that add up to its file. */
Test(quantize, mixes_match_llama_cpp)
{
    for (size_t k = 0; k < sizeof ALL_MIXES / sizeof ALL_MIXES[0]; k++) {
        const char *mix = ALL_MIXES[k];
        tsv_mix tm;
        load_mix(mix, &tm);
        /* present the tensors in the source file's order (token_embd, blocks,
         * output_norm, output) so that the plan has to sort them */
        qfit_mix_tensor t[128];
        int src_of[128], n = 0;
        const char *first = "token_embd.weight";
        for (int i = 0; i < tm.n; i++) if (!strcmp(tm.rows[i].name, first)) src_of[n++] = i;
        for (int i = 0; i < tm.n; i++) if (!strncmp(tm.rows[i].name, "blk.", 4)) src_of[n++] = i;
        for (int i = 0; i < tm.n; i++) if (!strcmp(tm.rows[i].name, "output_norm.weight")) src_of[n++] = i;
        for (int i = 0; i < tm.n; i++) if (!strcmp(tm.rows[i].name, "output.weight")) src_of[n++] = i;
        cr_assert_eq(n, tm.n);
        for (int i = 0; i < n; i++) {
            const tsv_row *r = &tm.rows[src_of[i]];
            t[i].name = r->name;
            t[i].n_dims = (uint32_t)r->n_dims;
            memcpy(t[i].ne, r->ne, sizeof t[i].ne);
            t[i].type = QFIT_TYPE_F32;
        }
        qfit_mix_model m;
        kjv_model(&m);
        qfit_mix_model_count(&m, t, (size_t)n);
        cr_assert_eq(m.n_attention_wv, 8);
        cr_assert(m.has_output);
        size_t order[128];
        int types[128], nfb = -1;
        char err[256];
        int ftype = qfit_ftype_from_name(mix);
        cr_assert_eq(qfit_mix_plan(&m, ftype, t, (size_t)n, order, types, &nfb, err, sizeof err), 0, "%s", err);
        cr_assert_eq(nfb, 0);
        int64_t data = 0;
        for (int pos = 0; pos < n; pos++) {
            const tsv_row *want = &tm.rows[pos];
            const qfit_mix_tensor *got = &t[order[pos]];
            cr_assert_str_eq(got->name, want->name, "%s: position %d", mix, pos);
            int ty = types[order[pos]];
            cr_assert_eq(ty, want->type, "%s: %s is %s, llama.cpp chose %s", mix, want->name,
                         qfit_type_name(ty), qfit_type_name(want->type));
            int64_t rows = want->ne[1] * want->ne[2] * want->ne[3];
            cr_assert_eq((int64_t)qfit_tensor_nbytes(ty, want->ne[0], rows), want->bytes, "%s %s", mix, want->name);
            data += (want->bytes + 31) / 32 * 32;
        }
        cr_assert_eq(tm.data_offset + data, expected_file_size(mix), "%s: file size", mix);
    }
}

Test(quantize, model_facts_from_gguf)
{
    char err[256];
    qfit_gguf *g = qfit_gguf_open(tu_shared_path("models/kjv-llama-7m-f32.gguf"), err, sizeof err);
    cr_assert_not_null(g, "%s", err);
    qfit_mix_model m;
    cr_assert_eq(qfit_mix_model_from_gguf(g, &m, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(m.arch, "llama");
    cr_assert_eq(m.n_layer, 8);
    cr_assert_eq(m.n_head, 4);
    cr_assert_eq(m.n_head_kv, 2);
    cr_assert_eq(m.n_expert, 0);
    cr_assert_eq(m.n_attention_wv, 8);
    cr_assert(m.has_output);
    cr_assert_not(m.is_70b);

    tsv_mix tm;
    load_mix("Q4_K_M", &tm);
    size_t n = (size_t)qfit_gguf_n_tensors(g);
    cr_assert_eq(n, (size_t)tm.n);
    size_t *order = calloc(n, sizeof *order);
    int *types = calloc(n, sizeof *types);
    cr_assert_eq(qfit_mix_plan_gguf(g, QFIT_FTYPE_MOSTLY_Q4_K_M, order, types, NULL, err, sizeof err), 0, "%s", err);
    for (size_t k = 0; k < n; k++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, (int64_t)order[k]);
        cr_assert_eq(t->name.len, strlen(tm.rows[k].name));
        cr_assert(!memcmp(t->name.data, tm.rows[k].name, t->name.len));
        cr_assert_eq(types[order[k]], tm.rows[k].type);
    }
    free(order);
    free(types);
    qfit_gguf_close(g);
}

/* ------------------------------------------- rules on larger shapes */

typedef struct {
    qfit_synth_tensor *st;
    qfit_mix_tensor   *t;
    size_t             n;
    size_t            *order;
    int               *types;
    qfit_mix_model     m;
    int                n_fallback;
} shape_plan;

static void plan_shape(shape_plan *p, const char *shape, int ftype)
{
    const qfit_synth_shape *s = qfit_synth_find_shape(shape);
    cr_assert_not_null(s, "%s", shape);
    p->st = qfit_synth_tensors(s, &p->n);
    cr_assert_not_null(p->st);
    p->t = calloc(p->n, sizeof *p->t);
    p->order = calloc(p->n, sizeof *p->order);
    p->types = calloc(p->n, sizeof *p->types);
    for (size_t i = 0; i < p->n; i++) {
        p->t[i].name = p->st[i].name;
        p->t[i].n_dims = p->st[i].n_dims;
        memcpy(p->t[i].ne, p->st[i].ne, sizeof p->t[i].ne);
        p->t[i].type = p->st[i].n_dims == 1 ? QFIT_TYPE_F32 : QFIT_TYPE_F16;  /* as in F16 files */
    }
    memset(&p->m, 0, sizeof p->m);
    snprintf(p->m.arch, sizeof p->m.arch, "%s", s->arch);
    p->m.n_layer = s->n_layer;
    p->m.n_head = s->n_head;
    p->m.n_head_kv = s->n_head_kv;
    qfit_mix_model_count(&p->m, p->t, p->n);
    char err[256];
    cr_assert_eq(qfit_mix_plan(&p->m, ftype, p->t, p->n, p->order, p->types, &p->n_fallback, err, sizeof err),
                 0, "%s", err);
}

static void replan(shape_plan *p, int ftype)
{
    char err[256];
    cr_assert_eq(qfit_mix_plan(&p->m, ftype, p->t, p->n, p->order, p->types, &p->n_fallback, err, sizeof err),
                 0, "%s", err);
}

static int type_of(const shape_plan *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->t[i].name, name)) return p->types[i];
    cr_assert_fail("no tensor %s", name);
    return -1;
}

static int layer_type(const shape_plan *p, int l, const char *what)
{
    char nm[64];
    snprintf(nm, sizeof nm, "blk.%d.%s", l, what);
    return type_of(p, nm);
}

static void free_plan(shape_plan *p)
{
    free(p->st); free(p->t); free(p->order); free(p->types);
}

/* Llama 3.1 8B shape (32 layers, GQA 4, untied output). Q4_K_M gives Q6_K to the
 * attn_v and ffn_down of layers i < 4, i >= 28, and (i - 4) % 3 == 2. */
Test(quantize, rules_32_layers_q4_k_m)
{
    shape_plan p;
    plan_shape(&p, "llama3-8b", QFIT_FTYPE_MOSTLY_Q4_K_M);
    const int more[] = { 0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31 };
    int n_q6 = 0;
    for (int l = 0; l < 32; l++) {
        bool m = false;
        for (size_t k = 0; k < sizeof more / sizeof more[0]; k++) m |= more[k] == l;
        int want = m ? QFIT_TYPE_Q6_K : QFIT_TYPE_Q4_K;
        cr_assert_eq(layer_type(&p, l, "attn_v.weight"), want, "layer %d attn_v", l);
        cr_assert_eq(layer_type(&p, l, "ffn_down.weight"), want, "layer %d ffn_down", l);
        cr_assert_eq(layer_type(&p, l, "attn_q.weight"), QFIT_TYPE_Q4_K);
        cr_assert_eq(layer_type(&p, l, "attn_k.weight"), QFIT_TYPE_Q4_K);
        cr_assert_eq(layer_type(&p, l, "attn_output.weight"), QFIT_TYPE_Q4_K);
        cr_assert_eq(layer_type(&p, l, "ffn_gate.weight"), QFIT_TYPE_Q4_K);
        cr_assert_eq(layer_type(&p, l, "ffn_up.weight"), QFIT_TYPE_Q4_K);
        cr_assert_eq(layer_type(&p, l, "attn_norm.weight"), QFIT_TYPE_F32);
        n_q6 += m;
    }
    cr_assert_eq(n_q6, 16);
    cr_assert_eq(type_of(&p, "output.weight"), QFIT_TYPE_Q6_K);
    cr_assert_eq(type_of(&p, "token_embd.weight"), QFIT_TYPE_Q4_K);
    cr_assert_eq(type_of(&p, "rope_freqs.weight"), QFIT_TYPE_F32);
    cr_assert_eq(p.n_fallback, 0);

    /* Q5_K_M: the same layers get Q6_K, the rest Q5_K */
    replan(&p, QFIT_FTYPE_MOSTLY_Q5_K_M);
    cr_assert_eq(layer_type(&p, 6, "attn_v.weight"), QFIT_TYPE_Q6_K);
    cr_assert_eq(layer_type(&p, 7, "attn_v.weight"), QFIT_TYPE_Q5_K);
    cr_assert_eq(layer_type(&p, 8, "ffn_down.weight"), QFIT_TYPE_Q5_K);
    cr_assert_eq(layer_type(&p, 9, "ffn_down.weight"), QFIT_TYPE_Q6_K);

    /* Q4_K_S: attn_v of the first 4 layers and ffn_down of the first n/8 = 4 get Q5_K */
    replan(&p, QFIT_FTYPE_MOSTLY_Q4_K_S);
    for (int l = 0; l < 32; l++) {
        int want = l < 4 ? QFIT_TYPE_Q5_K : QFIT_TYPE_Q4_K;
        cr_assert_eq(layer_type(&p, l, "attn_v.weight"), want, "layer %d", l);
        cr_assert_eq(layer_type(&p, l, "ffn_down.weight"), want, "layer %d", l);
    }
    free_plan(&p);
}

Test(quantize, rules_q3_k_m_vs_q3_k_l_q2_k)
{
    shape_plan p;
    plan_shape(&p, "llama3-8b", QFIT_FTYPE_MOSTLY_Q3_K_M);
    for (int l = 0; l < 32; l++) {
        cr_assert_eq(layer_type(&p, l, "attn_v.weight"), l < 2 ? QFIT_TYPE_Q5_K : QFIT_TYPE_Q4_K);
        cr_assert_eq(layer_type(&p, l, "ffn_down.weight"), l < 2 ? QFIT_TYPE_Q5_K : QFIT_TYPE_Q4_K);
        cr_assert_eq(layer_type(&p, l, "attn_output.weight"), QFIT_TYPE_Q4_K);
        cr_assert_eq(layer_type(&p, l, "attn_q.weight"), QFIT_TYPE_Q3_K);
        cr_assert_eq(layer_type(&p, l, "ffn_up.weight"), QFIT_TYPE_Q3_K);
    }
    cr_assert_eq(type_of(&p, "output.weight"), QFIT_TYPE_Q6_K);
    cr_assert_eq(type_of(&p, "token_embd.weight"), QFIT_TYPE_Q3_K);

    replan(&p, QFIT_FTYPE_MOSTLY_Q3_K_L);
    for (int l = 0; l < 32; l++) {
        cr_assert_eq(layer_type(&p, l, "attn_v.weight"), QFIT_TYPE_Q5_K);
        cr_assert_eq(layer_type(&p, l, "ffn_down.weight"), QFIT_TYPE_Q5_K);
        cr_assert_eq(layer_type(&p, l, "attn_output.weight"), QFIT_TYPE_Q5_K);
        cr_assert_eq(layer_type(&p, l, "attn_k.weight"), QFIT_TYPE_Q3_K);
    }

    replan(&p, QFIT_FTYPE_MOSTLY_Q3_K_S);
    cr_assert_eq(layer_type(&p, 0, "attn_v.weight"), QFIT_TYPE_Q3_K);
    cr_assert_eq(layer_type(&p, 0, "ffn_down.weight"), QFIT_TYPE_Q3_K);

    /* Q2_K on a GQA >= 4 model: attn_v Q4_K (GQA 2 would give Q3_K) */
    replan(&p, QFIT_FTYPE_MOSTLY_Q2_K);
    cr_assert_eq(layer_type(&p, 5, "attn_v.weight"), QFIT_TYPE_Q4_K);
    cr_assert_eq(layer_type(&p, 5, "ffn_down.weight"), QFIT_TYPE_Q3_K);
    cr_assert_eq(layer_type(&p, 5, "attn_output.weight"), QFIT_TYPE_Q3_K);
    cr_assert_eq(layer_type(&p, 5, "ffn_gate.weight"), QFIT_TYPE_Q2_K);
    p.m.n_head_kv = 16;   /* GQA 2 */
    replan(&p, QFIT_FTYPE_MOSTLY_Q2_K);
    cr_assert_eq(layer_type(&p, 5, "attn_v.weight"), QFIT_TYPE_Q3_K);

    /* IQ4_NL with GQA >= 4: attn_v Q5_K; ffn_down Q5_K in the first n/8 layers */
    p.m.n_head_kv = 8;
    replan(&p, QFIT_FTYPE_MOSTLY_IQ4_NL);
    cr_assert_eq(layer_type(&p, 10, "attn_v.weight"), QFIT_TYPE_Q5_K);
    cr_assert_eq(layer_type(&p, 3, "ffn_down.weight"), QFIT_TYPE_Q5_K);
    cr_assert_eq(layer_type(&p, 4, "ffn_down.weight"), QFIT_TYPE_IQ4_NL);
    cr_assert_eq(type_of(&p, "output.weight"), QFIT_TYPE_Q6_K);
    free_plan(&p);
}

/* Tied embeddings: token_embd gets the output rules. Llama 3.2 1B, Q8_0 keeps
 * Q8_0, the K mixes give it Q6_K. */
Test(quantize, rules_tied_embeddings)
{
    shape_plan p;
    plan_shape(&p, "llama3.2-1b", QFIT_FTYPE_MOSTLY_Q4_K_M);
    cr_assert_not(p.m.has_output);
    cr_assert_eq(type_of(&p, "token_embd.weight"), QFIT_TYPE_Q6_K);
    /* 16 layers: use_more_bits = i < 2, i >= 14, (i-2)%3 == 2 */
    const int want_q6[16] = { 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1 };
    for (int l = 0; l < 16; l++)
        cr_assert_eq(layer_type(&p, l, "attn_v.weight"), want_q6[l] ? QFIT_TYPE_Q6_K : QFIT_TYPE_Q4_K, "layer %d", l);
    replan(&p, QFIT_FTYPE_MOSTLY_Q8_0);
    cr_assert_eq(type_of(&p, "token_embd.weight"), QFIT_TYPE_Q8_0);
    replan(&p, QFIT_FTYPE_MOSTLY_Q4_0);
    cr_assert_eq(type_of(&p, "token_embd.weight"), QFIT_TYPE_Q6_K);
    cr_assert_eq(layer_type(&p, 0, "ffn_down.weight"), QFIT_TYPE_Q4_0);
    free_plan(&p);
}

/* Qwen2.5-0.5B: hidden size 896 = 3.5 x 256. K-quant types fall back to the
 * 32-element formats (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K -> Q4_0);
 * ffn_down rows (4864 = 19 x 256) keep K-quants; the tied token_embd -> Q8_0. */
Test(quantize, rules_fallback_qwen2_5_0_5b)
{
    shape_plan p;
    plan_shape(&p, "qwen2.5-0.5b", QFIT_FTYPE_MOSTLY_Q4_K_M);
    cr_assert_eq(type_of(&p, "token_embd.weight"), QFIT_TYPE_Q8_0);
    cr_assert_eq(layer_type(&p, 0, "attn_q.weight"), QFIT_TYPE_Q5_0);
    cr_assert_eq(layer_type(&p, 0, "attn_v.weight"), QFIT_TYPE_Q8_0);   /* Q6_K -> Q8_0 */
    cr_assert_eq(layer_type(&p, 4, "attn_v.weight"), QFIT_TYPE_Q5_0);   /* Q4_K -> Q5_0 */
    cr_assert_eq(layer_type(&p, 0, "ffn_down.weight"), QFIT_TYPE_Q6_K); /* 4864 % 256 == 0 */
    cr_assert_eq(layer_type(&p, 4, "ffn_down.weight"), QFIT_TYPE_Q4_K);
    cr_assert_eq(layer_type(&p, 0, "attn_output.weight"), QFIT_TYPE_Q5_0);
    cr_assert_eq(layer_type(&p, 0, "attn_q.bias"), QFIT_TYPE_F32);
    /* 24 layers x (q, k, v, output, gate, up); the tied token_embd goes straight to Q8_0 */
    cr_assert_eq(p.n_fallback, 24 * 6);

    replan(&p, QFIT_FTYPE_MOSTLY_Q2_K);
    cr_assert_eq(layer_type(&p, 0, "attn_q.weight"), QFIT_TYPE_Q4_0);   /* Q2_K -> Q4_0 */
    cr_assert_eq(layer_type(&p, 0, "attn_output.weight"), QFIT_TYPE_Q4_0); /* Q3_K -> Q4_0 */
    cr_assert_eq(layer_type(&p, 0, "attn_v.weight"), QFIT_TYPE_Q5_0);   /* GQA 7: Q4_K -> Q5_0 */
    cr_assert_eq(layer_type(&p, 0, "ffn_down.weight"), QFIT_TYPE_Q3_K);

    replan(&p, QFIT_FTYPE_MOSTLY_Q5_K_S);
    cr_assert_eq(layer_type(&p, 0, "attn_q.weight"), QFIT_TYPE_Q5_1);   /* Q5_K -> Q5_1 */
    replan(&p, QFIT_FTYPE_MOSTLY_IQ4_XS);
    cr_assert_eq(layer_type(&p, 0, "attn_q.weight"), QFIT_TYPE_IQ4_NL); /* IQ4_XS -> IQ4_NL */
    replan(&p, QFIT_FTYPE_MOSTLY_Q8_0);
    cr_assert_eq(p.n_fallback, 0);
    free_plan(&p);
}

/* Rows that are not a multiple of 32 at all: F16, for every mix. */
Test(quantize, rules_fallback_f16)
{
    shape_plan p;
    plan_shape(&p, "tiny-odd", QFIT_FTYPE_MOSTLY_Q4_K_M);
    cr_assert_eq(type_of(&p, "output.weight"), QFIT_TYPE_F16);
    cr_assert_eq(layer_type(&p, 0, "attn_q.weight"), QFIT_TYPE_F16);
    cr_assert_eq(layer_type(&p, 0, "ffn_down.weight"), QFIT_TYPE_F16);
    replan(&p, QFIT_FTYPE_MOSTLY_Q8_0);
    cr_assert_eq(type_of(&p, "output.weight"), QFIT_TYPE_F16);
    cr_assert_eq(layer_type(&p, 1, "ffn_up.weight"), QFIT_TYPE_F16);
    cr_assert_eq(p.n_fallback, 2 + 2 * 7);
    free_plan(&p);
}

/* Rules from llama.cpp's source that no shipped shape reaches: 70B attn_v,
 * 8-expert models, MoE layer numbers from names. */
Test(quantize, rules_70b_and_moe)
{
    qfit_mix_model m;
    memset(&m, 0, sizeof m);
    strcpy(m.arch, "llama");
    m.n_layer = 80; m.n_head = 64; m.n_head_kv = 8; m.n_attention_wv = 80; m.has_output = true;
    m.is_70b = true;
    qfit_mix_state st;
    memset(&st, 0, sizeof st);
    char err[256];
    qfit_mix_tensor t = { "blk.0.attn_v.weight", 2, { 8192, 1024, 1, 1 }, QFIT_TYPE_F16 };
    cr_assert_eq(qfit_mix_tensor_type(&m, &st, QFIT_FTYPE_MOSTLY_Q4_K_M, &t, NULL, err, sizeof err), QFIT_TYPE_Q6_K);
    st.i_attention_wv = 11;   /* not a "more bits" layer: Q4_K, raised to Q5_K for 70B */
    cr_assert_eq(qfit_mix_tensor_type(&m, &st, QFIT_FTYPE_MOSTLY_Q4_K_M, &t, NULL, err, sizeof err), QFIT_TYPE_Q5_K);
    cr_assert_eq(st.i_attention_wv, 12);
    m.is_70b = false;
    st.i_attention_wv = 11;
    cr_assert_eq(qfit_mix_tensor_type(&m, &st, QFIT_FTYPE_MOSTLY_Q4_K_M, &t, NULL, err, sizeof err), QFIT_TYPE_Q4_K);

    /* 8 experts: attn_v and attn_k -> Q8_0, attn_output -> Q5_K */
    m.n_expert = 8; m.n_layer = 32;
    memset(&st, 0, sizeof st);
    cr_assert_eq(qfit_mix_tensor_type(&m, &st, QFIT_FTYPE_MOSTLY_Q4_K_M, &t, NULL, err, sizeof err), QFIT_TYPE_Q8_0);
    qfit_mix_tensor tk = { "blk.0.attn_k.weight", 2, { 4096, 1024, 1, 1 }, QFIT_TYPE_F16 };
    cr_assert_eq(qfit_mix_tensor_type(&m, &st, QFIT_FTYPE_MOSTLY_Q4_K_M, &tk, NULL, err, sizeof err), QFIT_TYPE_Q8_0);
    qfit_mix_tensor to = { "blk.0.attn_output.weight", 2, { 4096, 4096, 1, 1 }, QFIT_TYPE_F16 };
    cr_assert_eq(qfit_mix_tensor_type(&m, &st, QFIT_FTYPE_MOSTLY_Q4_K_M, &to, NULL, err, sizeof err), QFIT_TYPE_Q5_K);
    /* MoE ffn_down: layer from the name (layer 10 of 32 -> not "more bits") */
    qfit_mix_tensor td = { "blk.10.ffn_down_exps.weight", 3, { 14336, 4096, 8, 1 }, QFIT_TYPE_F16 };
    cr_assert_eq(qfit_mix_tensor_type(&m, &st, QFIT_FTYPE_MOSTLY_Q4_K_M, &td, NULL, err, sizeof err), QFIT_TYPE_Q4_K);
    td.name = "blk.30.ffn_down_exps.weight";
    cr_assert_eq(qfit_mix_tensor_type(&m, &st, QFIT_FTYPE_MOSTLY_Q4_K_M, &td, NULL, err, sizeof err), QFIT_TYPE_Q6_K);
    td.name = "blk.40.ffn_down_exps.weight";   /* beyond n_layer */
    cr_assert_eq(qfit_mix_tensor_type(&m, &st, QFIT_FTYPE_MOSTLY_Q4_K_M, &td, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "bad layer"), "%s", err);
    td.name = "ffn_down_exps.weight";
    cr_assert_eq(qfit_mix_tensor_type(&m, &st, QFIT_FTYPE_MOSTLY_Q4_K_M, &td, NULL, err, sizeof err), -1);
    /* unknown ftype */
    cr_assert_eq(qfit_mix_tensor_type(&m, &st, 4, &t, NULL, err, sizeof err), -1);
    /* F16 mix: every weight matrix F16, whatever it is named */
    cr_assert_eq(qfit_mix_tensor_type(&m, &st, QFIT_FTYPE_MOSTLY_F16, &to, NULL, err, sizeof err), QFIT_TYPE_F16);
}

/* -------------------------------------------------------------- pipeline */

static char *tmp_path(const char *name)
{
    static char bufs[8][4096];
    static int slot;
    char *b = bufs[slot++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", tu_tmpdir(), name);
    return b;
}

static void quantize_ok(const char *in, const char *out, int ftype, int threads, qfit_quantize_stats *st)
{
    qfit_quantize_params p = { .ftype = ftype, .n_threads = threads };
    char err[512];
    int rc = qfit_quantize_model(in, out, &p, st, err, sizeof err);
    cr_assert_eq(rc, 0, "quantize %s -> %s: %s", in, out, err);
}

/* Output tensors: types and sizes as llama.cpp, order as llama.cpp, bytes equal
 * to qfit_quantize_rows of the source rows, metadata keys set. */
static void check_output(const char *mix, const char *src_path, const char *out_path, bool check_bytes)
{
    char err[512];
    tsv_mix tm;
    load_mix(mix, &tm);
    qfit_gguf *src = qfit_gguf_open(src_path, err, sizeof err);
    cr_assert_not_null(src, "%s", err);
    qfit_gguf *g = qfit_gguf_open(out_path, err, sizeof err);
    cr_assert_not_null(g, "%s", err);
    cr_assert_eq(qfit_gguf_n_tensors(g), tm.n);
    cr_assert_eq(qfit_gguf_data_offset(g), (uint64_t)tm.data_offset, "%s: data offset", mix);
    cr_assert_eq((int64_t)qfit_gguf_file_size(g), expected_file_size(mix), "%s: file size", mix);
    cr_assert_eq(qfit_gguf_get_int_or(g, "general.file_type", -1), qfit_ftype_from_name(mix));
    cr_assert_eq(qfit_gguf_get_int_or(g, "general.quantization_version", -1), 2);
    int64_t ift = qfit_gguf_find_key(g, "general.file_type");
    cr_assert_eq(qfit_gguf_kv_type(g, ift), QFIT_GGUF_UINT32);
    cr_assert_eq(ift, qfit_gguf_n_kv(g) - 1, "general.file_type is the last key, as llama.cpp writes it");
    cr_assert_eq(qfit_gguf_n_kv(g), 26);
    float *f = NULL;
    uint8_t *q = NULL;
    for (int i = 0; i < tm.n; i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        cr_assert_eq(t->name.len, strlen(tm.rows[i].name));
        cr_assert(!memcmp(t->name.data, tm.rows[i].name, t->name.len), "%s: tensor %d", mix, i);
        cr_assert_eq(t->type, tm.rows[i].type, "%s: %s", mix, tm.rows[i].name);
        cr_assert_eq((int64_t)t->nbytes, tm.rows[i].bytes);
        for (int d = 0; d < 4; d++) cr_assert_eq(t->ne[d], tm.rows[i].ne[d]);
        if (!check_bytes) continue;
        int64_t si = qfit_gguf_find_tensor(src, tm.rows[i].name);
        cr_assert_geq(si, 0);
        const qfit_gguf_tensor *s = qfit_gguf_tensor_at(src, si);
        int64_t rows = s->ne[1] * s->ne[2] * s->ne[3];
        f = realloc(f, (size_t)(rows * s->ne[0]) * sizeof *f);
        q = realloc(q, t->nbytes + 1);
        cr_assert_eq(qfit_rows_to_float(s->type, s->data, f, rows, s->ne[0]), 0);
        if (t->type == s->type) {
            cr_assert(!memcmp(t->data, s->data, t->nbytes), "%s: copied %s differs", mix, tm.rows[i].name);
        } else if (t->type == QFIT_TYPE_F32) {
            cr_assert(!memcmp(t->data, f, t->nbytes));
        } else {
            size_t nb = qfit_quantize_rows(t->type, f, q, rows, s->ne[0], err, sizeof err);
            cr_assert_eq(nb, t->nbytes, "%s", err);
            cr_assert(!memcmp(t->data, q, nb), "%s: bytes of %s differ from qfit_quantize_rows", mix, tm.rows[i].name);
        }
    }
    free(f);
    free(q);
    qfit_gguf_close(g);
    qfit_gguf_close(src);
}

static bool same_bytes(const char *a, const char *b)
{
    size_t na, nb;
    void *da = tu_read_file(a, &na), *db = tu_read_file(b, &nb);
    cr_assert(da && db);
    bool same = na == nb && !memcmp(da, db, na);
    free(da);
    free(db);
    return same;
}

/* SHA-256 of a file, as 64 lowercase hex digits */
static void sha256_file(const char *path, char hex[65])
{
    size_t n = 0;
    unsigned char *b = tu_read_file(path, &n);
    cr_assert_not_null(b, "cannot read %s", path);
    unsigned char md[32];
    unsigned int len = 0;
    cr_assert_eq(EVP_Digest(b, n, md, &len, EVP_sha256(), NULL), 1);
    cr_assert_eq(len, 32u);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    free(b);
}

/* README's claim, tested: for every mix, qfit's file is byte-identical to llama.cpp's
 * (the digests of llama.cpp's files are in tests/data/mixes, with how they were made). */
Test(quantize, mixes_byte_identical_to_llama_cpp, .timeout = 900)
{
    char *tsv = tu_read_file("tests/data/mixes/kjv-llama-7m-f32.sha256", NULL);
    cr_assert_not_null(tsv, "tests/data/mixes/kjv-llama-7m-f32.sha256");
    const char *src = tu_shared_path("models/kjv-llama-7m-f32.gguf");
    char srcpath[4096];
    snprintf(srcpath, sizeof srcpath, "%s", src);
    int checked = 0;
    for (size_t i = 0; i < sizeof ALL_MIXES / sizeof *ALL_MIXES; i++) {
        char key[32], want[65] = "", got[65];
        snprintf(key, sizeof key, "\n%s\t", ALL_MIXES[i]);
        const char *p = strstr(tsv, key);
        cr_assert_not_null(p, "no digest for %s", ALL_MIXES[i]);
        memcpy(want, p + strlen(key), 64);
        const char *out = tmp_path("sha-mix.gguf");
        quantize_ok(srcpath, out, qfit_ftype_from_name(ALL_MIXES[i]), 2, NULL);
        sha256_file(out, got);
        cr_expect_str_eq(got, want, "%s: qfit's file differs from llama.cpp's (sha256 %s, llama.cpp %s)",
                         ALL_MIXES[i], got, want);
        unlink(out);
        checked++;
    }
    cr_expect_eq(checked, 18);
    free(tsv);
}

Test(quantize, f32_model_q8_0_q4_k_m_q4_0_threads, .timeout = 240)
{
    char in[4096];
    snprintf(in, sizeof in, "%s", tu_shared_path("models/kjv-llama-7m-f32.gguf"));
    const char *mixes[] = { "Q8_0", "Q4_K_M", "Q4_0" };
    for (size_t k = 0; k < 3; k++) {
        int ftype = qfit_ftype_from_name(mixes[k]);
        char n1[64], n2[64];
        snprintf(n1, sizeof n1, "f32-%s-t1.gguf", mixes[k]);
        snprintf(n2, sizeof n2, "f32-%s-t2.gguf", mixes[k]);
        char *p1 = strdup(tmp_path(n1)), *p2 = strdup(tmp_path(n2));
        qfit_quantize_stats s1, s2;
        quantize_ok(in, p1, ftype, 1, &s1);
        quantize_ok(in, p2, ftype, 2, &s2);
        cr_assert(same_bytes(p1, p2), "%s: 1 and 2 threads give different files", mixes[k]);
        cr_assert_eq(s1.n_tensors, 75);
        cr_assert_eq(s2.n_threads, 2);
        cr_assert_eq(s1.n_elements, 7344384);
        cr_assert_eq((int64_t)s1.file_out, expected_file_size(mixes[k]));
        cr_assert_eq(s1.file_in, 29427776);
        cr_assert_eq(s1.n_quantized + s1.type_count[QFIT_TYPE_F32], 75);
        check_output(mixes[k], in, p1, true);
        free(p1);
        free(p2);
    }
}

/* ggml's own bytes: rows of the shared model that ../shared/testdata/quant holds
 * quantized by ggml must appear unchanged in qfit's output. */
Test(quantize, rows_equal_ggml_bytes, .timeout = 120)
{
    char in[4096];
    snprintf(in, sizeof in, "%s", tu_shared_path("models/kjv-llama-7m-f32.gguf"));
    char *out = strdup(tmp_path("ggml-rows-q4km.gguf"));
    quantize_ok(in, out, QFIT_FTYPE_MOSTLY_Q4_K_M, 2, NULL);
    char *out8 = strdup(tmp_path("ggml-rows-q8.gguf"));
    quantize_ok(in, out8, QFIT_FTYPE_MOSTLY_Q8_0, 2, NULL);
    size_t nrows_bytes;
    float *rows = tu_read_file(tu_shared_path("testdata/quant/rows256.f32"), &nrows_bytes);
    cr_assert_not_null(rows);
    const int64_t nrows = (int64_t)(nrows_bytes / (256 * sizeof(float)));
    char err[256];
    qfit_gguf *src = qfit_gguf_open(in, err, sizeof err);
    cr_assert_not_null(src, "%s", err);
    const char *outs[2] = { out, out8 };
    int matched = 0;
    for (int o = 0; o < 2; o++) {
        qfit_gguf *g = qfit_gguf_open(outs[o], err, sizeof err);
        cr_assert_not_null(g, "%s", err);
        for (int64_t r = 0; r < nrows; r++) {
            const float *row = rows + r * 256;
            for (int64_t ti = 0; ti < qfit_gguf_n_tensors(src); ti++) {
                const qfit_gguf_tensor *s = qfit_gguf_tensor_at(src, ti);
                if (s->ne[0] != 256 || s->type != QFIT_TYPE_F32 || s->n_dims < 2) continue;
                for (int64_t sr = 0; sr < s->ne[1]; sr++) {
                    if (memcmp((const float *)s->data + sr * 256, row, 256 * sizeof(float)) != 0) continue;
                    char nm[64];
                    snprintf(nm, sizeof nm, "%.*s", (int)s->name.len, s->name.data);
                    const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, qfit_gguf_find_tensor(g, nm));
                    char rel[128];
                    snprintf(rel, sizeof rel, "testdata/quant/%s.rows256.q", qfit_type_name(t->type));
                    size_t qn;
                    uint8_t *qb = tu_read_file(tu_shared_path(rel), &qn);
                    cr_assert_not_null(qb, "%s", rel);
                    size_t rs = qfit_row_size(t->type, 256);
                    cr_assert(!memcmp((const uint8_t *)t->data + sr * rs, qb + r * rs, rs),
                              "%s row %lld (%s) differs from ggml's bytes", nm, (long long)sr, qfit_type_name(t->type));
                    free(qb);
                    matched++;
                }
            }
        }
        qfit_gguf_close(g);
    }
    cr_assert_geq(matched, 8, "only %d real rows found in the model", matched);
    qfit_gguf_close(src);
    free(rows);
    free(out);
    free(out8);
}

Test(quantize, f16_model, .timeout = 120)
{
    char in[4096];
    snprintf(in, sizeof in, "%s", tu_shared_path("models/kjv-llama-7m-f16.gguf"));
    char *out = strdup(tmp_path("f16-q4km.gguf"));
    quantize_ok(in, out, QFIT_FTYPE_MOSTLY_Q4_K_M, 2, NULL);
    check_output("Q4_K_M", in, out, true);
    /* F16 -> F16: every tensor copied unchanged; same data as llama.cpp's F16 */
    char *out16 = strdup(tmp_path("f16-f16.gguf"));
    qfit_quantize_stats st;
    quantize_ok(in, out16, QFIT_FTYPE_MOSTLY_F16, 2, &st);
    cr_assert_eq(st.n_quantized, 0);
    check_output("F16", in, out16, true);
    free(out);
    free(out16);
}

Test(quantize, refusals)
{
    char in[4096];
    snprintf(in, sizeof in, "%s", tu_shared_path("models/kjv-llama-7m-f32.gguf"));
    char err[512];
    qfit_quantize_params p = { .ftype = QFIT_FTYPE_MOSTLY_Q4_K_M, .n_threads = 2 };
    char *out = strdup(tmp_path("refused.gguf"));

    p.ftype = 4;
    cr_assert_eq(qfit_quantize_model(in, out, &p, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "unknown file type"), "%s", err);
    p.ftype = QFIT_FTYPE_MOSTLY_IQ2_XXS;
    cr_assert_eq(qfit_quantize_model(in, out, &p, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "IQ2_XXS"), "%s", err);
    p.ftype = QFIT_FTYPE_MOSTLY_Q4_K_M;
    cr_assert_eq(qfit_quantize_model(in, in, &p, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "is the input"), "%s", err);
    cr_assert_eq(qfit_quantize_model("/nonexistent/x.gguf", out, &p, NULL, err, sizeof err), -1);
    cr_assert_eq(access(out, F_OK), -1, "output created on failure");

    /* an already-quantized model is not requantized ... */
    char *q8 = strdup(tmp_path("q8-src.gguf"));
    quantize_ok(in, q8, QFIT_FTYPE_MOSTLY_Q8_0, 2, NULL);
    cr_assert_eq(qfit_quantize_model(q8, out, &p, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "q8_0") && strstr(err, "F32, F16 or BF16"), "%s", err);
    cr_assert_eq(access(out, F_OK), -1, "output created on failure");
    /* ... but copied when nothing changes */
    p.ftype = QFIT_FTYPE_MOSTLY_Q8_0;
    qfit_quantize_stats st;
    cr_assert_eq(qfit_quantize_model(q8, out, &p, &st, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st.n_quantized, 0);
    cr_assert(same_bytes(q8, out));
    unlink(out);

    /* not a GGUF */
    char *junk = strdup(tmp_path("junk.gguf"));
    FILE *fj = fopen(junk, "wb");
    fputs("not a gguf file at all", fj);
    fclose(fj);
    cr_assert_eq(qfit_quantize_model(junk, out, &p, NULL, err, sizeof err), -1);
    cr_assert_eq(access(out, F_OK), -1);
    free(junk);
    free(q8);
    free(out);
}

Test(quantize, refuses_non_finite_weights)
{
    char *src = strdup(tmp_path("nan-src.gguf"));
    char *out = strdup(tmp_path("nan-out.gguf"));
    char err[512];
    qfit_gguf_writer *w = qfit_gguf_writer_new();
    cr_assert_eq(qfit_gguf_set_str(w, "general.architecture", "llama"), 0);
    cr_assert_eq(qfit_gguf_set_u32(w, "llama.block_count", 1), 0);
    const int64_t ne[2] = { 256, 4 };
    cr_assert_eq(qfit_gguf_add_tensor(w, "blk.0.ffn_up.weight", 2, ne, QFIT_TYPE_F32), 0);
    cr_assert_eq(qfit_gguf_writer_begin(w, src, err, sizeof err), 0, "%s", err);
    float data[1024];
    for (int i = 0; i < 1024; i++) data[i] = 0.01f * (float)(i % 17);
    data[3 * 256 + 7] = NAN;
    cr_assert_eq(qfit_gguf_writer_write_tensor(w, data, sizeof data, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_gguf_writer_finish(w, err, sizeof err), 0, "%s", err);
    qfit_gguf_writer_free(w);

    qfit_quantize_params p = { .ftype = QFIT_FTYPE_MOSTLY_Q4_0, .n_threads = 2 };
    cr_assert_eq(qfit_quantize_model(src, out, &p, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "NaN") && strstr(err, "row 3"), "%s", err);
    cr_assert_eq(access(out, F_OK), -1);
    free(src);
    free(out);
}

Test(quantize, cli, .timeout = 120)
{
    char in[4096];
    snprintf(in, sizeof in, "%s", tu_shared_path("models/kjv-llama-7m-f32.gguf"));
    char *out = strdup(tmp_path("cli-q4km.gguf"));
    char cmd[16384];
    int status;
    snprintf(cmd, sizeof cmd, "%s quantize '%s' '%s' q4_k_m --threads 2", tu_qfit_bin(), in, out);
    char *o = tu_run(cmd, &status);
    cr_assert_eq(status, 0, "%s", o);
    cr_assert(strstr(o, "Q4_K_M") && strstr(o, "bits per weight") && strstr(o, "q6_K 9") &&
              strstr(o, "4568160 bytes"), "%s", o);
    free(o);
    cr_assert_eq(file_size_of(out), 4568160);

    char *bad = strdup(tmp_path("cli-bad.gguf"));
    snprintf(cmd, sizeof cmd, "%s quantize '%s' '%s' Q4_K_X", tu_qfit_bin(), in, bad);
    o = tu_run(cmd, &status);
    cr_assert_neq(status, 0);
    cr_assert(strstr(o, "unknown type 'Q4_K_X'") && strstr(o, "Q4_K_M"), "%s", o);
    free(o);
    cr_assert_eq(access(bad, F_OK), -1);

    snprintf(cmd, sizeof cmd, "%s quantize '%s' '%s' Q8_0 --threads 0", tu_qfit_bin(), in, bad);
    o = tu_run(cmd, &status);
    cr_assert_neq(status, 0);
    cr_assert(strstr(o, "--threads"), "%s", o);
    free(o);

    snprintf(cmd, sizeof cmd, "%s quantize '%s' '%s' Q8_0", tu_qfit_bin(), in, in);
    o = tu_run(cmd, &status);
    cr_assert_neq(status, 0);
    cr_assert(strstr(o, "is the input"), "%s", o);
    free(o);

    snprintf(cmd, sizeof cmd, "%s quantize '%s' '%s/no/such/dir/x.gguf' Q8_0", tu_qfit_bin(), in, tu_tmpdir());
    o = tu_run(cmd, &status);
    cr_assert_neq(status, 0);
    cr_assert(strstr(o, "cannot create"), "%s", o);
    free(o);

    snprintf(cmd, sizeof cmd, "%s quantize --help", tu_qfit_bin());
    o = tu_run(cmd, &status);
    cr_assert_eq(status, 0);
    cr_assert(strstr(o, "Q4_K_M") && strstr(o, "--threads"), "%s", o);
    free(o);
    free(bad);
    free(out);
}
