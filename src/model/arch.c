/* Architecture registry: every descriptor (arch_<name>.c), looked up by name or id,
 * and the decoder layer that llama, qwen2, qwen3 and qwen3moe share. */
#include "model/arch.h"

#include <stdio.h>
#include <string.h>

#define F(x) offsetof(qfit_layer_w, x)

const qfit_layer_tensor qfit_decoder_layer[QFIT_DECODER_LAYER_N] = {
    /* name suffix             field            ne0              ne1              ne2              flags */
    { "attn_norm.weight",      F(attn_norm),    QFIT_DIM_EMBD,   QFIT_DIM_1,      QFIT_DIM_1,      QFIT_LT_VECTOR },
    { "attn_q.weight",         F(wq),           QFIT_DIM_EMBD,   QFIT_DIM_Q,      QFIT_DIM_1,      QFIT_LT_MATRIX },
    { "attn_k.weight",         F(wk),           QFIT_DIM_EMBD,   QFIT_DIM_K,      QFIT_DIM_1,      QFIT_LT_MATRIX },
    { "attn_v.weight",         F(wv),           QFIT_DIM_EMBD,   QFIT_DIM_V,      QFIT_DIM_1,      QFIT_LT_MATRIX },
    { "attn_output.weight",    F(wo),           QFIT_DIM_O,      QFIT_DIM_EMBD,   QFIT_DIM_1,      QFIT_LT_MATRIX },
    { "attn_q.bias",           F(bq),           QFIT_DIM_Q,      QFIT_DIM_1,      QFIT_DIM_1,      QFIT_LT_VECTOR | QFIT_LT_OPTIONAL },
    { "attn_k.bias",           F(bk),           QFIT_DIM_K,      QFIT_DIM_1,      QFIT_DIM_1,      QFIT_LT_VECTOR | QFIT_LT_OPTIONAL },
    { "attn_v.bias",           F(bv),           QFIT_DIM_V,      QFIT_DIM_1,      QFIT_DIM_1,      QFIT_LT_VECTOR | QFIT_LT_OPTIONAL },
    { "attn_q_norm.weight",    F(q_norm),       QFIT_DIM_HEAD_K, QFIT_DIM_1,      QFIT_DIM_1,      QFIT_LT_VECTOR | QFIT_LT_QK_NORM },
    { "attn_k_norm.weight",    F(k_norm),       QFIT_DIM_HEAD_K, QFIT_DIM_1,      QFIT_DIM_1,      QFIT_LT_VECTOR | QFIT_LT_QK_NORM },
    { "ffn_norm.weight",       F(ffn_norm),     QFIT_DIM_EMBD,   QFIT_DIM_1,      QFIT_DIM_1,      QFIT_LT_VECTOR },
    { "ffn_gate.weight",       F(w_gate),       QFIT_DIM_EMBD,   QFIT_DIM_FF,     QFIT_DIM_1,      QFIT_LT_MATRIX | QFIT_LT_DENSE },
    { "ffn_up.weight",         F(w_up),         QFIT_DIM_EMBD,   QFIT_DIM_FF,     QFIT_DIM_1,      QFIT_LT_MATRIX | QFIT_LT_DENSE },
    { "ffn_down.weight",       F(w_down),       QFIT_DIM_FF,     QFIT_DIM_EMBD,   QFIT_DIM_1,      QFIT_LT_MATRIX | QFIT_LT_DENSE },
    { "ffn_gate_inp.weight",   F(w_router),     QFIT_DIM_EMBD,   QFIT_DIM_EXPERT, QFIT_DIM_1,      QFIT_LT_MATRIX | QFIT_LT_EXPERTS },
    { "ffn_gate_exps.weight",  F(w_gate_exps),  QFIT_DIM_EMBD,   QFIT_DIM_FF_EXP, QFIT_DIM_EXPERT, QFIT_LT_MATRIX | QFIT_LT_EXPERTS },
    { "ffn_up_exps.weight",    F(w_up_exps),    QFIT_DIM_EMBD,   QFIT_DIM_FF_EXP, QFIT_DIM_EXPERT, QFIT_LT_MATRIX | QFIT_LT_EXPERTS },
    { "ffn_down_exps.weight",  F(w_down_exps),  QFIT_DIM_FF_EXP, QFIT_DIM_EMBD,   QFIT_DIM_EXPERT, QFIT_LT_MATRIX | QFIT_LT_EXPERTS },
};

static const qfit_arch_desc *const g_archs[] = { &qfit_arch_llama, &qfit_arch_qwen2, &qfit_arch_qwen3,
                                                 &qfit_arch_qwen3moe, &qfit_arch_phi3, &qfit_arch_gemma2,
                                                 &qfit_arch_gemma3, &qfit_arch_gpt_oss, &qfit_arch_bert,
                                                 &qfit_arch_nomic_bert };
#define N_ARCHS (sizeof g_archs / sizeof g_archs[0])

const qfit_arch_desc *qfit_arch_desc_find(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < N_ARCHS; i++) {
        if (!strcmp(g_archs[i]->info.name, name)) return g_archs[i];
        for (const char *const *a = g_archs[i]->aliases; a && *a; a++)
            if (!strcmp(*a, name)) return g_archs[i];
    }
    return NULL;
}

const qfit_arch_desc *qfit_arch_desc_of(qfit_arch id)
{
    for (size_t i = 0; i < N_ARCHS; i++)
        if (g_archs[i]->info.id == id) return g_archs[i];
    return g_archs[0];
}

const qfit_arch_info *qfit_arch_find(const char *name)
{
    const qfit_arch_desc *d = qfit_arch_desc_find(name);
    return d ? &d->info : NULL;
}

const char *qfit_arch_supported_list(void)
{
    static char buf[256];
    static int done;
    if (!done) {   /* the same text every time: a benign race between first callers */
        size_t n = 0;
        for (size_t i = 0; i < N_ARCHS && n < sizeof buf; i++) {
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", i ? ", " : "", g_archs[i]->info.name);
            for (const char *const *a = g_archs[i]->aliases; a && *a && n < sizeof buf; a++)
                n += (size_t)snprintf(buf + n, sizeof buf - n, ", %s", *a);
        }
        done = 1;
    }
    return buf;
}

const char *qfit_arch_name(qfit_arch a) { return qfit_arch_desc_of(a)->info.name; }

int64_t qfit_dim_value(const qfit_hparams *hp, qfit_dim d)
{
    switch (d) {
    case QFIT_DIM_1: return 1;
    case QFIT_DIM_EMBD: return hp->n_embd;
    case QFIT_DIM_Q: return (int64_t)hp->n_head * hp->head_dim_k;
    case QFIT_DIM_K: return (int64_t)hp->n_head_kv * hp->head_dim_k;
    case QFIT_DIM_V: return (int64_t)hp->n_head_kv * hp->head_dim_v;
    case QFIT_DIM_O: return (int64_t)hp->n_head * hp->head_dim_v;
    case QFIT_DIM_FF: return hp->n_ff;
    case QFIT_DIM_HEAD_K: return hp->head_dim_k;
    case QFIT_DIM_FF_EXP: return hp->n_ff_exp;
    case QFIT_DIM_EXPERT: return hp->n_expert;
    case QFIT_DIM_QKV: return (int64_t)hp->n_head * hp->head_dim_k + 2 * (int64_t)hp->n_head_kv * hp->head_dim_k;
    case QFIT_DIM_FF2: return 2 * (int64_t)hp->n_ff;
    case QFIT_DIM_HEADS: return hp->n_head;
    }
    return 0;
}

qfit_wt qfit_wt_rows(const qfit_wt *w, int64_t r0, int64_t n)
{
    qfit_wt v = *w;
    if (!w->data) return v;
    v.data = (const uint8_t *)w->data + (size_t)r0 * w->row_bytes;
    v.ne1 = n;
    v.expert_bytes = (size_t)n * w->row_bytes;
    v.packed = NULL;   /* a packed form is of the whole matrix */
    return v;
}
