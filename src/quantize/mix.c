/* qfit — llama.cpp's quantization mixes: which type each tensor gets.
 *
 * The rules follow llama.cpp v0.5.0 (src/llama-quant.cpp, llama_tensor_get_type
 * and the "should this tensor be quantized" test in llama_model_quantize_impl),
 * re-expressed here. They only look at names, shapes and model facts. */
#include "qfit/quantize.h"
#include "qfit/quant.h"

#include <ctype.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ ftypes */

typedef struct {
    int         ftype;
    const char *name;
    int         base;       /* base qfit_type */
    bool        supported;  /* qfit can write it */
} ftype_info;

static const ftype_info FTYPES[] = {
    { QFIT_FTYPE_ALL_F32,         "F32",     QFIT_TYPE_F32,     true  },
    { QFIT_FTYPE_MOSTLY_F16,      "F16",     QFIT_TYPE_F16,     true  },
    { QFIT_FTYPE_MOSTLY_BF16,     "BF16",    QFIT_TYPE_BF16,    true  },
    { QFIT_FTYPE_MOSTLY_Q4_0,     "Q4_0",    QFIT_TYPE_Q4_0,    true  },
    { QFIT_FTYPE_MOSTLY_Q4_1,     "Q4_1",    QFIT_TYPE_Q4_1,    true  },
    { QFIT_FTYPE_MOSTLY_Q5_0,     "Q5_0",    QFIT_TYPE_Q5_0,    true  },
    { QFIT_FTYPE_MOSTLY_Q5_1,     "Q5_1",    QFIT_TYPE_Q5_1,    true  },
    { QFIT_FTYPE_MOSTLY_Q8_0,     "Q8_0",    QFIT_TYPE_Q8_0,    true  },
    { QFIT_FTYPE_MOSTLY_Q2_K,     "Q2_K",    QFIT_TYPE_Q2_K,    true  },
    { QFIT_FTYPE_MOSTLY_Q2_K_S,   "Q2_K_S",  QFIT_TYPE_Q2_K,    false },
    { QFIT_FTYPE_MOSTLY_Q3_K_S,   "Q3_K_S",  QFIT_TYPE_Q3_K,    true  },
    { QFIT_FTYPE_MOSTLY_Q3_K_M,   "Q3_K_M",  QFIT_TYPE_Q3_K,    true  },
    { QFIT_FTYPE_MOSTLY_Q3_K_L,   "Q3_K_L",  QFIT_TYPE_Q3_K,    true  },
    { QFIT_FTYPE_MOSTLY_Q4_K_S,   "Q4_K_S",  QFIT_TYPE_Q4_K,    true  },
    { QFIT_FTYPE_MOSTLY_Q4_K_M,   "Q4_K_M",  QFIT_TYPE_Q4_K,    true  },
    { QFIT_FTYPE_MOSTLY_Q5_K_S,   "Q5_K_S",  QFIT_TYPE_Q5_K,    true  },
    { QFIT_FTYPE_MOSTLY_Q5_K_M,   "Q5_K_M",  QFIT_TYPE_Q5_K,    true  },
    { QFIT_FTYPE_MOSTLY_Q6_K,     "Q6_K",    QFIT_TYPE_Q6_K,    true  },
    { QFIT_FTYPE_MOSTLY_IQ4_NL,   "IQ4_NL",  QFIT_TYPE_IQ4_NL,  true  },
    { QFIT_FTYPE_MOSTLY_IQ4_XS,   "IQ4_XS",  QFIT_TYPE_IQ4_XS,  true  },
    /* known to the rules, not writable by qfit (need an importance matrix or
     * quantizers qfit does not have) */
    { QFIT_FTYPE_MOSTLY_IQ2_XXS,  "IQ2_XXS", QFIT_TYPE_IQ2_XXS, false },
    { QFIT_FTYPE_MOSTLY_IQ2_XS,   "IQ2_XS",  QFIT_TYPE_IQ2_XS,  false },
    { QFIT_FTYPE_MOSTLY_IQ2_S,    "IQ2_S",   QFIT_TYPE_IQ2_XS,  false },
    { QFIT_FTYPE_MOSTLY_IQ2_M,    "IQ2_M",   QFIT_TYPE_IQ2_S,   false },
    { QFIT_FTYPE_MOSTLY_IQ3_XS,   "IQ3_XS",  QFIT_TYPE_IQ3_S,   false },
    { QFIT_FTYPE_MOSTLY_IQ3_XXS,  "IQ3_XXS", QFIT_TYPE_IQ3_XXS, false },
    { QFIT_FTYPE_MOSTLY_IQ3_S,    "IQ3_S",   QFIT_TYPE_IQ3_S,   false },
    { QFIT_FTYPE_MOSTLY_IQ3_M,    "IQ3_M",   QFIT_TYPE_IQ3_S,   false },
    { QFIT_FTYPE_MOSTLY_IQ1_S,    "IQ1_S",   QFIT_TYPE_IQ1_S,   false },
    { QFIT_FTYPE_MOSTLY_IQ1_M,    "IQ1_M",   QFIT_TYPE_IQ1_M,   false },
    { QFIT_FTYPE_MOSTLY_TQ1_0,    "TQ1_0",   QFIT_TYPE_TQ1_0,   false },
    { QFIT_FTYPE_MOSTLY_TQ2_0,    "TQ2_0",   QFIT_TYPE_TQ2_0,   false },
    { QFIT_FTYPE_MOSTLY_MXFP4_MOE,"MXFP4_MOE", QFIT_TYPE_MXFP4, true  },
};
#define N_FTYPES (sizeof FTYPES / sizeof FTYPES[0])

static const ftype_info *ftype_find(int ftype)
{
    for (size_t i = 0; i < N_FTYPES; i++)
        if (FTYPES[i].ftype == ftype) return &FTYPES[i];
    return NULL;
}

const char *qfit_ftype_name(int ftype)
{
    const ftype_info *f = ftype_find(ftype);
    return f ? f->name : NULL;
}

int qfit_ftype_from_name(const char *name)
{
    if (!name) return -1;
    for (size_t i = 0; i < N_FTYPES; i++)
        if (strcasecmp(FTYPES[i].name, name) == 0) return FTYPES[i].ftype;
    /* the enum spells F32 as ALL_F32 */
    if (strcasecmp(name, "all_f32") == 0) return QFIT_FTYPE_ALL_F32;
    return -1;
}

int qfit_ftype_base_type(int ftype)
{
    const ftype_info *f = ftype_find(ftype);
    return f ? f->base : -1;
}

bool qfit_ftype_supported(int ftype)
{
    const ftype_info *f = ftype_find(ftype);
    return f && f->supported;
}

const char *qfit_ftype_supported_list(void)
{
    return "F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L "
           "Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS MXFP4_MOE";
}

/* ------------------------------------------------------------- name tests */

static bool has(const char *name, const char *part) { return strstr(name, part) != NULL; }

/* ggml_n_dims: dimensions up to the last one larger than 1 (at least 1). */
static int effective_dims(uint32_t n_dims, const int64_t ne[4])
{
    int n = 1;
    for (int i = 1; i < 4 && i < (int)n_dims; i++)
        if (ne[i] > 1) n = i + 1;
    return n;
}

bool qfit_mix_tensor_quantizable(const char *name, uint32_t n_dims, const int64_t ne[4])
{
    if (!name) return false;
    if (effective_dims(n_dims, ne) < 2) return false;
    size_t len = strlen(name);
    /* llama.cpp: name.rfind("weight") == name.size() - 6 (size_t arithmetic) */
    bool q;
    if (len >= 6) q = strcmp(name + len - 6, "weight") == 0;
    else q = (len == 5);   /* size()-6 wraps to npos exactly when len == 5 */
    static const char *const never[] = {
        "_norm.weight", "ffn_gate_inp.weight", "altup", "laurel", "per_layer_model_proj",
        "ssm_conv1d.weight", "shortconv.conv.weight",
        "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
        "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight",
        "time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight",
        "time_mix_g1.weight", "time_mix_g2.weight",
        "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
        "conv.dw.weight", "conv.pw1.weight", "conv.pw2.weight", "conv1d", "conv_dw.weight",
        "attn_rel_b.weight", ".position_embd.",
    };
    for (size_t i = 0; q && i < sizeof never / sizeof never[0]; i++)
        if (has(name, never[i])) q = false;
    /* position embeddings and token types (BERT-style models) */
    if (strcmp(name, "position_embd.weight") == 0 || strcmp(name, "token_types.weight") == 0)
        q = false;
    return q;
}

/* "blk.%d." as sscanf reads it: true and *layer set when a number follows "blk." */
static bool parse_layer(const char *name, int *layer)
{
    if (strncmp(name, "blk.", 4) != 0) return false;
    const char *p = name + 4;
    while (*p == ' ' || *p == '\t' || *p == '\n') p++;
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p) return false;
    if (v > 1000000000L) v = 1000000000L;
    if (v < -1000000000L) v = -1000000000L;
    *layer = (int)v;
    return true;
}

int qfit_mix_order_cmp(const char *a, const char *b)
{
    int la = -1, lb = -1;
    parse_layer(a, &la);
    parse_layer(b, &lb);
    if (la != lb) return la < lb ? -1 : 1;
    return strcmp(a, b);
}

/* ------------------------------------------------------------------ rules */

static bool use_more_bits(int i, int n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static int64_t blck(int type)
{
    const qfit_type_traits *t = qfit_type_get_traits(type);
    return t ? t->block_size : 1;
}

#define F(x) QFIT_FTYPE_MOSTLY_##x
#define T(x) QFIT_TYPE_##x

static int layer_of(const qfit_mix_model *m, int counter, const char *name, int *out,
                    char *err, size_t err_len)
{
    int i_layer = counter;
    if (m->n_expert > 1) {
        if (!parse_layer(name, &i_layer)) {
            snprintf(err, err_len, "cannot determine the layer of tensor '%s'", name);
            return -1;
        }
        if (i_layer < 0 || i_layer >= m->n_layer) {
            snprintf(err, err_len, "bad layer %d for tensor '%s' (must be in [0, %d))",
                     i_layer, name, m->n_layer);
            return -1;
        }
    }
    *out = i_layer;
    return 0;
}

/* llama_tensor_get_type: t is quantizable, base is the mix's base type (quantized). */
static int pick_type(const qfit_mix_model *m, qfit_mix_state *st, int ftype, int base,
                     const qfit_mix_tensor *t, bool *fallback, char *err, size_t err_len)
{
    const char *name = t->name;
    const bool falcon = strcmp(m->arch, "falcon") == 0;
    const int n_gqa = m->n_head_kv > 0 ? m->n_head / m->n_head_kv : 0;
    const int n_expert = m->n_expert;
    const int n_layer = m->n_layer;
    int nt = base;

    const bool low_iq = ftype == F(IQ2_XXS) || ftype == F(IQ2_XS) || ftype == F(IQ1_S) ||
                        ftype == F(IQ2_S) || ftype == F(IQ2_M) || ftype == F(IQ1_M);

    if (strcmp(name, "output.weight") == 0 || (!m->has_output && strcmp(name, "token_embd.weight") == 0)) {
        /* the output projection (or the embedding tied to it) */
        const int64_t nx = t->ne[0];
        if (ftype == F(MXFP4_MOE)) nt = T(Q8_0);
        else if (falcon || nx % blck(nt) != 0) nt = T(Q8_0);
        else if (ftype == F(IQ2_XXS) || ftype == F(IQ2_XS) || ftype == F(IQ3_XXS) || ftype == F(IQ1_S) ||
                 ftype == F(IQ2_S) || ftype == F(IQ2_M) || ftype == F(IQ1_M)) nt = T(Q5_K);
        else if (nt != T(Q8_0)) nt = T(Q6_K);
    } else if (ftype == F(MXFP4_MOE)) {
        nt = t->ne[2] > 1 ? T(MXFP4) : T(Q8_0);
    } else if (strcmp(name, "token_embd.weight") == 0 || strcmp(name, "per_layer_token_embd.weight") == 0) {
        if (ftype == F(IQ2_XXS) || ftype == F(IQ2_XS) || ftype == F(IQ1_S) || ftype == F(IQ1_M)) nt = T(Q2_K);
        else if (ftype == F(IQ2_S) || ftype == F(IQ2_M)) nt = T(IQ3_S);
        else if (ftype == F(IQ3_XXS)) nt = T(IQ3_S);
        else if (ftype == F(TQ1_0) || ftype == F(TQ2_0)) nt = T(Q4_K);
    } else if (low_iq) {
        const bool s_or_m = ftype == F(IQ2_S) || ftype == F(IQ2_M);
        if (has(name, "attn_v.weight")) {
            if (n_gqa >= 4 || n_expert >= 4) nt = T(Q4_K);
            else nt = s_or_m ? T(IQ3_S) : T(Q2_K);
            st->i_attention_wv++;
        } else if (n_expert == 8 && has(name, "attn_k.weight")) {
            nt = T(Q4_K);
        } else if (has(name, "ffn_down")) {
            if (st->i_ffn_down < n_layer / 8) nt = s_or_m ? T(IQ3_S) : T(Q2_K);
            st->i_ffn_down++;
        } else if (has(name, "attn_output.weight")) {
            if (n_expert == 8) nt = T(Q5_K);
            else if (ftype == F(IQ1_S) || ftype == F(IQ1_M)) nt = T(IQ2_XXS);
            else if (s_or_m) nt = T(IQ3_S);
        }
    } else if (has(name, "attn_v.weight")) {
        const int i = st->i_attention_wv, n = m->n_attention_wv;
        if (ftype == F(Q2_K)) nt = n_gqa >= 4 ? T(Q4_K) : T(Q3_K);
        else if (ftype == F(Q2_K_S) && n_gqa >= 4) nt = T(Q4_K);
        else if (ftype == F(IQ3_XXS)) nt = n_gqa >= 4 ? T(Q4_K) : !m->has_imatrix ? T(IQ3_S) : T(IQ3_XXS);
        else if ((ftype == F(IQ3_XS) || ftype == F(IQ3_S)) && n_gqa >= 4) nt = T(Q4_K);
        else if (ftype == F(IQ3_M)) nt = T(Q4_K);
        else if (ftype == F(Q3_K_M)) nt = i < 2 ? T(Q5_K) : T(Q4_K);
        else if (ftype == F(Q3_K_L)) nt = T(Q5_K);
        else if ((ftype == F(IQ4_NL) || ftype == F(IQ4_XS)) && n_gqa >= 4) nt = T(Q5_K);
        else if ((ftype == F(Q4_K_M) || ftype == F(Q5_K_M)) && use_more_bits(i, n)) nt = T(Q6_K);
        else if (ftype == F(Q4_K_S) && i < 4) nt = T(Q5_K);
        if (m->is_70b && (nt == T(Q3_K) || nt == T(Q4_K))) nt = T(Q5_K);
        if (n_expert == 8) nt = T(Q8_0);
        st->i_attention_wv++;
    } else if (has(name, "attn_k.weight")) {
        if (n_expert == 8) nt = T(Q8_0);
        else if (ftype == F(IQ3_XS)) nt = T(IQ3_XXS);
        else if (ftype == F(IQ3_XXS)) nt = T(IQ2_S);
    } else if (has(name, "attn_q.weight")) {
        if (ftype == F(IQ3_XS)) nt = T(IQ3_XXS);
        else if (ftype == F(IQ3_XXS)) nt = T(IQ2_S);
    } else if (has(name, "ffn_down")) {
        int il;
        if (layer_of(m, st->i_ffn_down, name, &il, err, err_len) < 0) return -1;
        const int nl = n_layer;
        if (ftype == F(Q2_K)) nt = T(Q3_K);
        else if (ftype == F(Q2_K_S)) { if (il < nl / 8) nt = T(Q4_K); }
        else if (ftype == F(IQ3_XXS) && !m->has_imatrix) nt = il < nl / 8 ? T(Q4_K) : T(Q3_K);
        else if (ftype == F(Q3_K_M))
            nt = il < nl / 16 ? T(Q5_K) : (!falcon || use_more_bits(il, nl)) ? T(Q4_K) : T(Q3_K);
        else if (ftype == F(IQ3_M) && (il < nl / 8 || (n_expert == 8 && use_more_bits(il, nl)))) nt = T(Q4_K);
        else if (ftype == F(Q3_K_L)) nt = falcon ? T(Q4_K) : T(Q5_K);
        else if (ftype == F(Q4_K_M)) {
            if (falcon) nt = il < nl / 16 ? T(Q6_K) : use_more_bits(il, nl) ? T(Q5_K) : T(Q4_K);
            else if (use_more_bits(il, nl)) nt = T(Q6_K);
        }
        else if (il < nl / 8 && (ftype == F(IQ4_NL) || ftype == F(IQ4_XS)) && !m->has_imatrix) nt = T(Q5_K);
        else if (ftype == F(Q5_K_M) && use_more_bits(il, nl)) nt = T(Q6_K);
        else if (ftype == F(Q4_K_S) && !falcon && il < nl / 8) nt = T(Q5_K);
        /* llama.cpp guards the first ffn_down layers of Q4_0/Q5_0, with an imatrix only */
        else if ((ftype == F(Q4_0) || ftype == F(Q5_0)) && m->has_imatrix && il < nl / 8)
            nt = ftype == F(Q4_0) ? T(Q4_1) : T(Q5_1);
        st->i_ffn_down++;
    } else if (has(name, "attn_output.weight")) {
        if (!falcon) {
            if (n_expert == 8) {
                if (ftype == F(Q2_K) || ftype == F(IQ3_XS) || ftype == F(IQ3_XXS) || ftype == F(Q3_K_S) ||
                    ftype == F(Q3_K_M) || ftype == F(IQ4_NL) || ftype == F(Q4_K_S) || ftype == F(Q4_K_M) ||
                    ftype == F(IQ3_S) || ftype == F(IQ3_M) || ftype == F(IQ4_XS))
                    nt = T(Q5_K);
            } else {
                if (ftype == F(Q2_K)) nt = T(Q3_K);
                else if (ftype == F(IQ3_XXS)) nt = T(IQ3_S);
                else if (ftype == F(Q3_K_M)) nt = T(Q4_K);
                else if (ftype == F(Q3_K_L)) nt = T(Q5_K);
                else if (ftype == F(IQ3_M)) nt = T(Q4_K);
            }
        } else if (ftype == F(Q3_K_L)) {
            nt = T(Q4_K);
        }
    } else if (has(name, "attn_qkv.weight")) {
        if (ftype == F(Q3_K_M) || ftype == F(Q3_K_L) || ftype == F(IQ3_M)) nt = T(Q4_K);
        else if (ftype == F(Q4_K_M)) nt = T(Q5_K);
        else if (ftype == F(Q5_K_M)) nt = T(Q6_K);
    } else if (has(name, "ffn_gate")) {
        int il;
        if (layer_of(m, st->i_ffn_gate, name, &il, err, err_len) < 0) return -1;
        if (ftype == F(IQ3_XS) && il >= n_layer / 8 && il < 7 * n_layer / 8) nt = T(IQ3_XXS);
        st->i_ffn_gate++;
    } else if (has(name, "ffn_up")) {
        int il;
        if (layer_of(m, st->i_ffn_up, name, &il, err, err_len) < 0) return -1;
        if (ftype == F(IQ3_XS) && il >= n_layer / 8 && il < 7 * n_layer / 8) nt = T(IQ3_XXS);
        st->i_ffn_up++;
    }

    /* rows whose length is not a multiple of the block size */
    if (t->ne[0] % blck(nt) != 0) {
        int fb;
        switch (nt) {
        case T(IQ2_XXS): case T(IQ2_XS): case T(IQ2_S): case T(IQ3_XXS): case T(IQ3_S):
        case T(IQ1_S): case T(IQ1_M): case T(IQ4_XS):
            fb = T(IQ4_NL); break;
        case T(Q2_K): case T(Q3_K): case T(TQ1_0): case T(TQ2_0):
            fb = T(Q4_0); break;
        case T(Q4_K): fb = T(Q5_0); break;
        case T(Q5_K): fb = T(Q5_1); break;
        case T(Q6_K): fb = T(Q8_0); break;
        default:
            /* a 32-element type (Q4_0 ... Q8_0, IQ4_NL) that does not fit either */
            fb = T(F16); break;
        }
        if (t->ne[0] % blck(fb) != 0) fb = T(F16);
        nt = fb;
        st->n_fallback++;
        if (fallback) *fallback = true;
    }
    return nt;
}

int qfit_mix_tensor_type(const qfit_mix_model *m, qfit_mix_state *st, int ftype,
                         const qfit_mix_tensor *t, bool *fallback, char *err, size_t err_len)
{
    char dummy[8];
    if (!err) { err = dummy; err_len = sizeof dummy; }
    if (fallback) *fallback = false;
    if (!m || !st || !t || !t->name) {
        snprintf(err, err_len, "invalid arguments");
        return -1;
    }
    const ftype_info *fi = ftype_find(ftype);
    if (!fi) {
        snprintf(err, err_len, "unknown file type %d", ftype);
        return -1;
    }
    if (!qfit_mix_tensor_quantizable(t->name, t->n_dims, t->ne)) return t->type;
    const qfit_type_traits *bt = qfit_type_get_traits(fi->base);
    if (!bt || !bt->quantized) return fi->base;   /* F32 / F16 / BF16: every weight matrix */
    return pick_type(m, st, ftype, fi->base, t, fallback, err, err_len);
}

void qfit_mix_model_count(qfit_mix_model *m, const qfit_mix_tensor *tensors, size_t n)
{
    m->n_attention_wv = 0;
    m->has_output = false;
    for (size_t i = 0; i < n; i++) {
        const char *nm = tensors[i].name;
        if (has(nm, "attn_v.weight") || has(nm, "attn_qkv.weight") || has(nm, "attn_kv_b.weight"))
            m->n_attention_wv++;
        else if (strcmp(nm, "output.weight") == 0)
            m->has_output = true;
    }
}

/* ------------------------------------------------------------- planning */

/* Stable merge sort of indices by llama.cpp's order (no global state, thread-safe). */
static void sort_order(const qfit_mix_tensor *t, size_t *idx, size_t *tmp, size_t n)
{
    if (n < 2) return;
    size_t h = n / 2;
    sort_order(t, idx, tmp, h);
    sort_order(t, idx + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        if (qfit_mix_order_cmp(t[idx[j]].name, t[idx[i]].name) < 0) tmp[k++] = idx[j++];
        else tmp[k++] = idx[i++];
    }
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

int qfit_mix_plan(const qfit_mix_model *m, int ftype, const qfit_mix_tensor *tensors, size_t n,
                  size_t *order, int *types, int *n_fallback, char *err, size_t err_len)
{
    char dummy[8];
    if (!err) { err = dummy; err_len = sizeof dummy; }
    if (!m || (n && (!tensors || !order || !types))) {
        snprintf(err, err_len, "invalid arguments");
        return -1;
    }
    if (!ftype_find(ftype)) {
        snprintf(err, err_len, "unknown file type %d", ftype);
        return -1;
    }
    for (size_t i = 0; i < n; i++) order[i] = i;
    if (n > 1) {
        size_t *tmp = malloc(n * sizeof *tmp);
        if (!tmp) { snprintf(err, err_len, "out of memory"); return -1; }
        sort_order(tensors, order, tmp, n);
        free(tmp);
    }
    qfit_mix_state st;
    memset(&st, 0, sizeof st);
    for (size_t k = 0; k < n; k++) {
        const qfit_mix_tensor *t = &tensors[order[k]];
        int ty = qfit_mix_tensor_type(m, &st, ftype, t, NULL, err, err_len);
        if (ty < 0) return -1;
        types[order[k]] = ty;
    }
    if (n_fallback) *n_fallback = st.n_fallback;
    return 0;
}

/* ------------------------------------------------------------ from GGUF */

static bool kv_first_int(const qfit_gguf *g, const char *key, int64_t *out)
{
    int64_t i = qfit_gguf_find_key(g, key);
    if (i < 0) return false;
    if (qfit_gguf_kv_type(g, i) == QFIT_GGUF_ARRAY) {
        /* per-layer values: llama.cpp's n_gqa() uses layer 0 */
        if (qfit_gguf_arr_len(g, i) == 0) return false;
        qfit_gguf_value v = qfit_gguf_kv_value(g, i), e;
        if (!qfit_gguf_value_elem(&v, 0, &e)) return false;
        const uint8_t *p = e.raw;
        switch (e.type) {
        case QFIT_GGUF_UINT8:  *out = p[0]; return true;
        case QFIT_GGUF_INT8:   *out = (int8_t)p[0]; return true;
        case QFIT_GGUF_UINT16: *out = (uint16_t)(p[0] | p[1] << 8); return true;
        case QFIT_GGUF_INT16:  *out = (int16_t)(uint16_t)(p[0] | p[1] << 8); return true;
        case QFIT_GGUF_UINT32: case QFIT_GGUF_INT32: {
            uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
            *out = e.type == QFIT_GGUF_INT32 ? (int64_t)(int32_t)u : (int64_t)u;
            return true;
        }
        default: return false;
        }
    }
    return qfit_gguf_get_int(g, i, out);
}

static int clamp_int(int64_t v)
{
    if (v < 0) return 0;
    if (v > 1 << 24) return 1 << 24;
    return (int)v;
}

/* Tensor list of a reader as the rules see it (names are NUL-terminated copies). */
static int gguf_tensor_list(const qfit_gguf *g, qfit_mix_tensor **out, char **names_out,
                            char *err, size_t err_len)
{
    int64_t n = qfit_gguf_n_tensors(g);
    if (n < 0) n = 0;
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) total += qfit_gguf_tensor_at(g, i)->name.len + 1;
    qfit_mix_tensor *t = calloc((size_t)n + 1, sizeof *t);
    char *names = malloc(total + 1);
    if (!t || !names) {
        free(t); free(names);
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    char *p = names;
    for (int64_t i = 0; i < n; i++) {
        const qfit_gguf_tensor *gt = qfit_gguf_tensor_at(g, i);
        memcpy(p, gt->name.data, gt->name.len);
        p[gt->name.len] = 0;
        t[i].name = p;
        p += gt->name.len + 1;
        t[i].n_dims = gt->n_dims;
        for (int d = 0; d < 4; d++) t[i].ne[d] = gt->ne[d];
        t[i].type = gt->type;
    }
    *out = t;
    *names_out = names;
    return 0;
}

void qfit_mix_model_classify(qfit_mix_model *m)
{
    /* llama.cpp's model-size classification, where it matters for the rules:
     * 80-layer llama with GQA (not the 8-expert MoE), any 80-layer qwen2 */
    m->is_70b = false;
    if (m->n_layer == 80) {
        if (strcmp(m->arch, "llama") == 0 && m->n_expert != 8 && m->n_head != m->n_head_kv) m->is_70b = true;
        if (strcmp(m->arch, "qwen2") == 0) m->is_70b = true;
    }
}

int qfit_mix_model_from_gguf(const qfit_gguf *g, qfit_mix_model *m, char *err, size_t err_len)
{
    char dummy[8];
    if (!err) { err = dummy; err_len = sizeof dummy; }
    memset(m, 0, sizeof *m);
    if (!qfit_gguf_get_string(g, "general.architecture", m->arch, sizeof m->arch)) {
        snprintf(err, err_len, "general.architecture is missing");
        return -1;
    }
    char key[160];
    int64_t v;
    snprintf(key, sizeof key, "%s.block_count", m->arch);
    if (!kv_first_int(g, key, &v)) {
        snprintf(err, err_len, "%s is missing", key);
        return -1;
    }
    m->n_layer = clamp_int(v);
    snprintf(key, sizeof key, "%s.attention.head_count", m->arch);
    m->n_head = kv_first_int(g, key, &v) ? clamp_int(v) : 0;
    snprintf(key, sizeof key, "%s.attention.head_count_kv", m->arch);
    m->n_head_kv = kv_first_int(g, key, &v) ? clamp_int(v) : m->n_head;
    snprintf(key, sizeof key, "%s.expert_count", m->arch);
    m->n_expert = kv_first_int(g, key, &v) ? clamp_int(v) : 0;
    qfit_mix_model_classify(m);
    qfit_mix_tensor *t;
    char *names;
    if (gguf_tensor_list(g, &t, &names, err, err_len) < 0) return -1;
    qfit_mix_model_count(m, t, (size_t)qfit_gguf_n_tensors(g));
    free(t);
    free(names);
    return 0;
}

int qfit_mix_plan_gguf(const qfit_gguf *g, int ftype, size_t *order, int *types,
                       int *n_fallback, char *err, size_t err_len)
{
    return qfit_mix_plan_gguf_imatrix(g, ftype, false, order, types, n_fallback, err, err_len);
}

int qfit_mix_plan_gguf_imatrix(const qfit_gguf *g, int ftype, bool has_imatrix, size_t *order,
                               int *types, int *n_fallback, char *err, size_t err_len)
{
    char dummy[8];
    if (!err) { err = dummy; err_len = sizeof dummy; }
    qfit_mix_model m;
    if (qfit_mix_model_from_gguf(g, &m, err, err_len) < 0) return -1;
    m.has_imatrix = has_imatrix;
    qfit_mix_tensor *t;
    char *names;
    if (gguf_tensor_list(g, &t, &names, err, err_len) < 0) return -1;
    int rc = qfit_mix_plan(&m, ftype, t, (size_t)qfit_gguf_n_tensors(g), order, types,
                           n_fallback, err, err_len);
    free(t);
    free(names);
    return rc;
}
