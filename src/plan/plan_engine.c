/* The planner's bridge to the shared code: every number that the quantizer or
 * the engine also computes comes from their functions, called only here.
 *   weight types per tensor  -> qfit_mix_plan()            (include/qfit/quantize.h)
 *   KV cache bytes           -> qfit_kv_cache_bytes()      (include/qfit/model.h)
 *   compute buffer bytes     -> qfit_compute_buffer_bytes() (include/qfit/model.h) */
#include "plan/plan_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    hp->arch = !strcmp(m->arch, "qwen2") ? QFIT_ARCH_QWEN2 : !strcmp(m->arch, "qwen3") ? QFIT_ARCH_QWEN3
                                                                                       : QFIT_ARCH_LLAMA;
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
}

uint64_t plan_engine_kv_bytes(const qfit_plan_model *m, int64_t n_cells, int kv_type)
{
    if (n_cells <= 0 || n_cells > INT_MAX) return 0;
    qfit_hparams hp;
    to_hparams(m, &hp);
    return qfit_kv_cache_bytes(&hp, (int)n_cells, kv_type, kv_type);
}

uint64_t plan_engine_compute_bytes(const qfit_plan_model *m, int64_t n_cells, int n_batch)
{
    if (n_cells <= 0 || n_cells > INT_MAX || n_batch <= 0) return 0;
    qfit_hparams hp;
    to_hparams(m, &hp);
    /* without flash attention (the larger: plain attention's score rows); the
     * planner's flash setting is not passed down here yet */
    return qfit_compute_buffer_bytes(&hp, (int)n_cells, n_batch, false);
}
