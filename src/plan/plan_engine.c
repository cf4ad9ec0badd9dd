/* The planner's bridge to the shared code: every number that the quantizer or
 * the engine also computes comes from their functions, called only here.
 *   weight types per tensor  -> qfit_mix_plan()            (include/qfit/quantize.h)
 *   KV cache bytes           -> qfit_kv_cache_bytes()      (include/qfit/model.h)
 *   compute buffer bytes     -> qfit_compute_buffer_bytes() (include/qfit/model.h)
 *   KV cache types           -> qfit_kv_type_ok()          (include/qfit/model.h)
 *   llama.cpp's "70B" class  -> qfit_mix_model_classify()  (include/qfit/quantize.h) */
#include "plan/plan_internal.h"
#include "qfit/backend.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/kernels.h"
#include "qfit/model.h"
#include "qfit/quant.h"
#include "qfit/quantize.h"

int plan_ftype_from_name(const char *name) { return qfit_ftype_from_name(name); }
const char *plan_ftype_name(int ftype) { return qfit_ftype_name(ftype); }

int plan_mix_weight_bytes(const qfit_plan_model *m, int ftype, uint64_t *out, int *types,
                          char *err, size_t err_len)
{
    const size_t n = m->n_tensors;
    qfit_mix_tensor *t = calloc(n ? n : 1, sizeof *t);
    size_t *order = calloc(n ? n : 1, sizeof *order);
    int *ty = types ? types : calloc(n ? n : 1, sizeof *ty);
    int rc = -1;
    if (!t || !order || !ty) { snprintf(err, err_len, "out of memory"); goto done; }
    for (size_t i = 0; i < n; i++) {
        const qfit_plan_tensor *pt = &m->tensors[i];
        t[i].name = pt->name;
        t[i].n_dims = pt->n_dims;
        memcpy(t[i].ne, pt->ne, sizeof t[i].ne);
        /* catalog models: what the converter writes (1-D tensors F32, matrices BF16) */
        t[i].type = pt->type >= 0 ? pt->type : (pt->n_dims < 2 ? QFIT_TYPE_F32 : QFIT_TYPE_BF16);
    }
    qfit_mix_model mm;
    memset(&mm, 0, sizeof mm);
    snprintf(mm.arch, sizeof mm.arch, "%s", m->arch);
    mm.n_layer = (int)m->n_layer;
    mm.n_head = (int)m->n_head;
    mm.n_head_kv = (int)m->n_head_kv;
    mm.n_expert = (int)m->n_expert;
    mm.is_70b = m->is_70b;
    qfit_mix_model_count(&mm, t, n);
    if (qfit_mix_plan(&mm, ftype, t, n, order, ty, NULL, err, err_len) < 0) goto done;
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        const qfit_plan_tensor *pt = &m->tensors[i];
        int64_t rows = pt->ne[1] * pt->ne[2] * pt->ne[3];
        size_t b = qfit_tensor_nbytes(ty[i], pt->ne[0], rows);
        if (b == SIZE_MAX) {
            snprintf(err, err_len, "tensor '%s' [%lld x %lld] cannot be stored as %s",
                     pt->name, (long long)pt->ne[0], (long long)rows, qfit_type_name(ty[i]));
            goto done;
        }
        sum += b;
    }
    *out = sum;
    rc = 0;
done:
    free(t);
    free(order);
    if (ty != types) free(ty);
    return rc;
}

int plan_mix_facts_from_gguf(const qfit_gguf *g, qfit_plan_model *m, char *err, size_t err_len)
{
    qfit_mix_model mm;
    if (qfit_mix_model_from_gguf(g, &mm, err, err_len) < 0) return -1;
    m->n_expert = mm.n_expert;
    m->is_70b = mm.is_70b;
    return 0;
}

static void to_hparams(const qfit_plan_model *m, qfit_hparams *hp)
{
    memset(hp, 0, sizeof *hp);
    const qfit_arch_info *ai = qfit_arch_find(m->arch);
    hp->arch = ai ? ai->id : QFIT_ARCH_LLAMA;   /* an unsupported one is sized as a dense decoder */
    snprintf(hp->arch_name, sizeof hp->arch_name, "%s", m->arch);
    hp->n_ctx_train = (int)m->n_ctx_train;
    hp->n_embd = (int)m->n_embd;
    hp->n_layer = (int)m->n_layer;
    hp->n_ff = (int)m->n_ff;
    hp->n_head = (int)m->n_head;
    hp->n_head_kv = (int)m->n_head_kv;
    hp->head_dim_k = (int)m->head_dim_k;
    hp->head_dim_v = (int)m->head_dim_v;
    hp->n_vocab = (int)m->n_vocab;
    hp->n_rot = (int)(m->n_rot ? m->n_rot : m->head_dim_k);
    if (ai && ai->pos == QFIT_POS_ABSOLUTE) hp->n_rot = 0;   /* no RoPE tables (BERT) */
    hp->n_expert = (int)m->n_expert;
    hp->n_expert_used = (int)m->n_expert_used;
    hp->n_ff_exp = (int)m->n_ff_exp;
    hp->n_swa = (int)m->n_swa;
    hp->swa_pattern = (int)m->swa_pattern;
    hp->swa_rope = m->swa_rope;   /* the sliding layers' own RoPE table: a second pair in the sizes */
    /* what the layer recipes read besides (qfit_layer_recipe_of); the others only change values */
    if (ai) {
        hp->ffn_act = ai->ffn_act;
        hp->moe_gating = ai->moe_gating;
        hp->sandwich_norms = ai->sandwich_norms;
        hp->non_causal = ai->non_causal;
    }
}

uint64_t plan_engine_kv_bytes(const qfit_plan_model *m, int64_t n_ctx, int n_seq, int n_batch, int type_k,
                              int type_v, uint64_t *k_bytes)
{
    if (k_bytes) *k_bytes = 0;
    if (n_ctx <= 0 || n_seq <= 0 || n_ctx * n_seq > INT_MAX) return 0;
    if (n_batch > n_ctx) n_batch = (int)n_ctx;   /* as the context clamps it */
    qfit_hparams hp;
    to_hparams(m, &hp);
    uint64_t total = qfit_kv_cache_bytes_ctx(&hp, (int)n_ctx, n_batch, n_seq, type_k, type_v);
    /* the K part: one K row (n_head_kv heads of head_dim_k elements in the K type) per
     * cell; full layers n_ctx cells a sequence, sliding ones qfit_kv_swa_cells */
    if (total && k_bytes) {
        const uint64_t swa = (uint64_t)qfit_kv_swa_cells(&hp, (int)n_ctx, n_batch);
        uint64_t cells = 0;
        for (int il = 0; il < hp.n_layer; il++)
            cells += qfit_layer_recipe_of(&hp, il).window > 0 ? swa : (uint64_t)n_ctx;
        *k_bytes = cells * (uint64_t)n_seq * (uint64_t)hp.n_head_kv * qfit_row_size(type_k, hp.head_dim_k);
    }
    return total;
}

int plan_engine_vulkan_bytes(const qfit_plan_model *m, int64_t n_ctx, int n_batch, int n_seq, int type_k, int type_v,
                             int n_gpu_layers, uint64_t *kv, uint64_t *compute)
{
    if (n_ctx <= 0 || n_ctx > INT_MAX) return -1;
    if (n_batch > n_ctx) n_batch = (int)n_ctx;   /* as the context clamps it */
    qfit_hparams hp;
    to_hparams(m, &hp);
    qfit_vulkan_bytes b;
    if (qfit_vulkan_context_bytes(&hp, (int)n_ctx, n_batch, n_seq, type_k, type_v, n_gpu_layers, &b) != 0) return -1;
    *kv = b.kv;
    *compute = b.compute;
    return 0;
}

void plan_engine_kv_layout(const qfit_plan_model *m, int64_t n_ctx, int n_batch, int64_t *n_sliding, int64_t *cells)
{
    *n_sliding = 0;
    *cells = n_ctx;
    if (n_ctx <= 0 || n_ctx > INT_MAX || n_batch <= 0) return;
    if (n_batch > n_ctx) n_batch = (int)n_ctx;
    qfit_hparams hp;
    to_hparams(m, &hp);
    const int swa = qfit_kv_swa_cells(&hp, (int)n_ctx, n_batch);
    if (swa >= n_ctx) return;
    for (int il = 0; il < hp.n_layer; il++) *n_sliding += qfit_layer_recipe_of(&hp, il).window > 0;
    *cells = swa;
}

bool plan_engine_kv_type_ok(int type) { return qfit_kv_type_ok(type); }

bool plan_mix_is_70b(const char *arch, int64_t n_layer, int64_t n_head, int64_t n_head_kv, int64_t n_expert)
{
    qfit_mix_model mm;
    memset(&mm, 0, sizeof mm);
    snprintf(mm.arch, sizeof mm.arch, "%s", arch);
    mm.n_layer = (int)n_layer;
    mm.n_head = (int)n_head;
    mm.n_head_kv = (int)n_head_kv;
    mm.n_expert = (int)n_expert;
    qfit_mix_model_classify(&mm);
    return mm.is_70b;
}

uint64_t plan_engine_compute_written(const qfit_plan_model *m, int64_t n_cells, int n_batch, bool flash,
                                     int64_t logits_rows, uint64_t aq_row, uint64_t *alloc)
{
    *alloc = 0;
    if (n_cells <= 0 || n_cells > INT_MAX || n_batch <= 0) return 0;
    qfit_hparams hp;
    to_hparams(m, &hp);
    qfit_compute_parts L;
    qfit_compute_buffer_parts(&hp, (int)n_cells, n_batch, flash, &L);
    /* the layout is what the context allocates: the public sizing function agrees */
    *alloc = qfit_compute_buffer_bytes(&hp, (int)n_cells, n_batch, flash);
    if (*alloc != L.total) return *alloc;
    const uint64_t nb = (uint64_t)n_batch, f = sizeof(float);
    uint64_t unwritten = 0;
    uint64_t logits = logits_rows < 0 ? 0 : (uint64_t)logits_rows * (uint64_t)hp.n_vocab * f;
    if (logits < L.logits) unwritten += L.logits - logits;
    uint64_t xn = nb * (uint64_t)hp.n_embd * f;
    if (xn < L.xn) unwritten += L.xn - xn;
    /* with experts, aq holds one row per (token, chosen expert) */
    uint64_t aq = nb * aq_row * (uint64_t)(m->n_expert > 0 && m->n_expert_used > 0 ? m->n_expert_used : 1);
    if (aq_row && aq < L.aq) unwritten += L.aq - aq;
    return L.total - unwritten;
}

uint64_t plan_engine_aq_row_bytes(const qfit_plan_model *m, const int *types)
{
    uint64_t most = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const qfit_plan_tensor *t = &m->tensors[i];
        if (t->n_dims < 2 || types[i] < 0) continue;
        /* the embedding table is a lookup, a matrix only when it is also the output */
        if (!strcmp(t->name, "token_embd.weight") && !m->tied) continue;
        int vd = qfit_vec_dot_type(types[i]);
        if (vd < 0) continue;
        size_t row = qfit_row_size(vd, t->ne[0]);
        if (row != SIZE_MAX && row > most) most = row;
    }
    return most;
}

int qfit_plan_debug_report(const qfit_plan_model *m, const qfit_context *c, char *buf, size_t cap,
                           char *err, size_t err_len)
{
    qfit_plan_machine mach;
    qfit_plan_machine_detect(&mach);
    const qfit_plan_settings s = {
        .n_ctx = qfit_context_n_ctx(c),
        .kv_type = qfit_plan_kv_setting(qfit_context_type_k(c)),
        .kv_type_v = qfit_plan_kv_setting(qfit_context_type_v(c)),
        .flash_attn = qfit_context_flash_attn(c),
        .n_batch = qfit_context_n_batch(c),
    };
    qfit_plan_result r;
    if (qfit_plan_compute(m, &mach, &s, &r, err, err_len) != 0) return -1;
    const double MiB = 1024.0 * 1024.0;
    const size_t kv = qfit_context_kv_bytes(c), compute = qfit_context_compute_bytes(c);
    const size_t rss = qfit_process_rss_bytes();
    snprintf(buf, cap,
             "kernels: %s (best on this CPU: %s)\n"
             "threads: %d; context %d tokens, micro-batch %d\n"
             "KV cache: K %s, V %s (Hadamard-rotated: K %s, V %s); flash attention %s\n"
             "memory: KV cache planned %.2f MiB, allocated %.2f MiB; compute buffers planned %.2f MiB, "
             "allocated %.2f MiB; weights %.2f MiB (mapped)\n"
             "memory: resident now %.2f MiB; planned peak %.2f MiB (weights read %.2f + KV %.2f + compute %.2f "
             "+ runtime %.2f); machine budget %.2f MiB: %s\n",
             qfit_isa_name(qfit_isa_active()), qfit_isa_name(qfit_isa_best()),
             qfit_context_n_threads(c), qfit_context_n_ctx(c), qfit_context_n_batch(c),
             qfit_type_name(qfit_context_type_k(c)), qfit_type_name(qfit_context_type_v(c)),
             qfit_context_kv_rotated(c, false) ? "yes" : "no", qfit_context_kv_rotated(c, true) ? "yes" : "no",
             qfit_context_flash_attn(c) ? "on" : "off",
             r.kv_bytes / MiB, kv / MiB, r.compute_alloc_bytes / MiB, compute / MiB, r.weights_bytes / MiB,
             rss / MiB, r.process_bytes / MiB, r.weights_resident_bytes / MiB, r.kv_bytes / MiB,
             r.compute_bytes / MiB, r.runtime_bytes / MiB, r.budget_bytes / MiB, qfit_plan_verdict_name(r.verdict));
    return 0;
}
