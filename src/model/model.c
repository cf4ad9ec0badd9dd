/* Model loading: hyperparameters and a validated view of every weight tensor
 * in the memory-mapped GGUF (nothing is copied). */
#include "model/model_internal.h"
#include "qfit/backend.h"
#include "model/arch.h"
#include "platform/platform.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "qfit/kernels.h"
#include "qfit/quant.h"

float qfit_f16_table[65536];
static pthread_once_t f16_once = PTHREAD_ONCE_INIT;

static void f16_table_fill(void)
{
    for (uint32_t i = 0; i < 65536; i++) qfit_f16_table[i] = qfit_fp16_to_fp32((uint16_t)i);
}

void qfit_f16_table_init(void) { pthread_once(&f16_once, f16_table_fill); }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t qfit_process_rss_bytes(void) { return qfit_sys_rss_bytes(); }

size_t qfit_process_peak_rss_bytes(void) { return qfit_sys_peak_rss_bytes(); }

enum { W_MATRIX = 1, W_VECTOR = 2, W_OPTIONAL = 4, W_EMBED = 8 };

/* Bind tensor `name` to w, checking shape [ne0], [ne0, ne1] or (experts) [ne0, ne1, ne2]
 * and type. W_MATRIX: type must have a compute kernel; W_VECTOR: F32 only;
 * W_EMBED: rows must be convertible to float (embedding lookup). */
static int bind(const qfit_model *m, const char *name, int64_t ne0, int64_t ne1, int64_t ne2, int flags,
                qfit_wt *w, char *err, size_t err_len)
{
    memset(w, 0, sizeof *w);
    int64_t ti = qfit_gguf_find_tensor(m->gguf, name);
    if (ti < 0) {
        if (flags & W_OPTIONAL) return 0;
        snprintf(err, err_len, "missing tensor '%s'", name);
        return -1;
    }
    const qfit_gguf_tensor *t = qfit_gguf_tensor_at(m->gguf, ti);
    /* vectors have ne1 = 1, but for experts' biases (one row per expert) */
    bool shape_ok = t->ne[0] == ne0 && t->ne[2] == ne2 && t->ne[3] == 1 && (ne1 < 0 || t->ne[1] == ne1);
    if (!shape_ok) {
        snprintf(err, err_len, "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld, %lld]",
                 name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                 (long long)ne0, (long long)ne1, (long long)ne2);
        return -1;
    }
    const qfit_type_traits *tr = qfit_type_get_traits(t->type);
    if (!tr) {
        snprintf(err, err_len, "tensor '%s' has unknown type id %d", name, t->type);
        return -1;
    }
    if (flags & W_VECTOR) {
        if (t->type != QFIT_TYPE_F32) {
            snprintf(err, err_len, "tensor '%s' has type %s; only f32 is supported for norms and biases",
                     name, tr->name);
            return -1;
        }
    } else {
        if (t->ne[0] % tr->block_size) {
            snprintf(err, err_len, "tensor '%s': row length %lld is not a multiple of %s's block size %lld",
                     name, (long long)t->ne[0], tr->name, (long long)tr->block_size);
            return -1;
        }
        if ((flags & W_MATRIX) && qfit_vec_dot_type(t->type) < 0) {
            snprintf(err, err_len, "tensor '%s' has type %s, which has no compute kernel", name, tr->name);
            return -1;
        }
        if ((flags & W_EMBED) && !tr->can_dequantize) {
            snprintf(err, err_len, "tensor '%s' has type %s, which cannot be converted to float", name, tr->name);
            return -1;
        }
    }
    size_t rb = qfit_row_size(t->type, t->ne[0]);
    if (rb == 0 || (uint64_t)rb * (uint64_t)t->ne[1] * (uint64_t)t->ne[2] != t->nbytes) {
        snprintf(err, err_len, "tensor '%s': data size %llu does not match its shape and type", name,
                 (unsigned long long)t->nbytes);
        return -1;
    }
    w->data = t->data;
    w->type = t->type;
    w->ne0 = t->ne[0];
    w->ne1 = t->ne[1];
    w->ne2 = t->ne[2];
    w->row_bytes = rb;
    w->expert_bytes = rb * (size_t)t->ne[1];
    return 1;
}

/* Map every page of [p, p + len) of the mapping into the process: with
 * MADV_POPULATE_READ where the kernel has it (Linux 5.14), else by reading one byte a
 * page. Advice only: a refusal leaves the pages to be faulted in on first use. */
static void populate_range(const void *p, size_t len)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const uintptr_t a = (uintptr_t)p & ~(uintptr_t)(page - 1);
    len += (size_t)((uintptr_t)p - a);
#ifdef MADV_POPULATE_READ
    if (madvise((void *)a, len, MADV_POPULATE_READ) == 0) return;
#endif
    const volatile uint8_t *q = (const volatile uint8_t *)a;
    uint8_t sink = 0;
    for (size_t off = 0; off < len; off += page) sink ^= q[off];
    (void)sink;
}

/* every page of w's data (its mapping is the GGUF file's) */
static void populate(const qfit_wt *w)
{
    if (w->data) populate_range(w->data, w->expert_bytes * (size_t)w->ne2);
}

/* Give the mapping's pages of [p, p + len) back (whole pages inside the range only:
 * a neighbour's pages stay). They are read again from the file if something still
 * touches the rows (a call the packed form cannot serve). Advice only. */
static void release_pages(const void *p, size_t len)
{
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1), e = ((uintptr_t)p + len) & ~(page - 1);
    if (e > a) (void)madvise((void *)a, (size_t)(e - a), MADV_DONTNEED);
}

/* QFIT_REPACK: unset, 1 or on: pack at load; 0 or off: keep the rows. 1 on, 0 off,
 * -1 (err filled) for any other value: a setting that cannot be honoured is an error. */
static int repack_setting(char *err, size_t err_len)
{
    const char *e = getenv("QFIT_REPACK");
    if (!e || !strcmp(e, "1") || !strcmp(e, "on")) return 1;
    if (!strcmp(e, "0") || !strcmp(e, "off")) return 0;
    snprintf(err, err_len, "QFIT_REPACK=%.40s: expected 1 or on (pack the weights at load), 0 or off", e);
    return -1;
}

/* Load-time packing, split into slabs of PACK_SLAB_ROWS rows that threads take in
 * order: each slab's rows are mapped in (one madvise rather than a fault per page),
 * packed, and their pages given back, so the process never holds more than a few
 * slabs of rows besides the packed forms (the planner's peak). */
enum { PACK_SLAB_ROWS = 256, PACK_MAX_THREADS = 16 };   /* a multiple of every layout's rows */

typedef struct {
    qfit_wt **list;
    qfit_packed *packs;
    int n;
    int64_t *first;          /* [n + 1]: first slab of matrix i; first[n] = all slabs */
    atomic_int *left;        /* [n]: slabs of matrix i not yet packed */
    atomic_int next;         /* the next slab to take */
    atomic_bool failed;
} pack_job;

static void *pack_worker(void *arg)
{
    pack_job *J = arg;
    int i = 0;
    for (;;) {
        const int64_t s = atomic_fetch_add(&J->next, 1);
        if (s >= J->first[J->n]) break;
        while (s >= J->first[i + 1]) i++;   /* slabs are taken in increasing order */
        const qfit_wt *w = J->list[i];
        const int64_t r0 = (s - J->first[i]) * PACK_SLAB_ROWS;
        const int64_t r1 = r0 + PACK_SLAB_ROWS < w->ne1 ? r0 + PACK_SLAB_ROWS : w->ne1;
        const uint8_t *src = (const uint8_t *)w->data + (size_t)r0 * w->row_bytes;
        const size_t len = (size_t)(r1 - r0) * w->row_bytes;
        populate_range(src, len);
        if (qfit_pack_rows(&J->packs[i], r0, r1, w->data, w->row_bytes) != 0) atomic_store(&J->failed, true);
        release_pages(src, len);
        /* the matrix's last slab: also the pages its slabs shared at their edges */
        if (atomic_fetch_sub(&J->left[i], 1) == 1) release_pages(w->data, w->expert_bytes);
    }
    return NULL;
}

/* Repack the forward pass's dense matrices where the active ISA has a load-time layout
 * (qfit_pack_bytes > 0), and release their pages of the mapping (a tied output's
 * too: token_embd's lookups fault in the rows they read). The planner counts the
 * same (src/plan/plan.c, packed_at_load). Threads: the performance cores, at most
 * PACK_MAX_THREADS. 0, or -1 out of memory. */
void qfit_model_release_pages(const void *p, size_t len) { release_pages(p, len); }

/* The matrices the CPU runs for contexts like cp (NULL: every one): with cp on a Vulkan
 * device, the layers before the offloaded ones, and the output layer unless it is
 * offloaded. *first: the first layer not run here; *output: the output layer runs here. */
static void cpu_part(const qfit_model *m, const qfit_context_params *cp, int *first, bool *output)
{
    *first = m->hp.n_layer;
    *output = true;
    if (!cp || !qfit_device_offloads(cp->device) || cp->n_gpu_layers < -1 || cp->n_gpu_layers > m->hp.n_layer + 1)
        return;
    qfit_context_params p = *cp;
    qfit_context_params_resolve(m, &p);
    bool gpu_output;
    qfit_offload_split(m->hp.n_layer, qfit_gpu_layers_resolve(m, &p, NULL), first, &gpu_output);
    *output = !gpu_output;
}

static int pack_weights(qfit_model *m, const qfit_context_params *cp, char *err, size_t err_len)
{
    const int on = repack_setting(err, err_len);
    if (on <= 0) return on;
    qfit_wt **list = malloc(((size_t)m->hp.n_layer * 7 + 1) * sizeof *list);
    if (!list) { snprintf(err, err_len, "out of memory"); return -1; }
    int n = 0, first;
    bool output;
    cpu_part(m, cp, &first, &output);   /* a device's layers are not packed: the CPU does not run them */
    if (m->output.data && output) list[n++] = &m->output;   /* tied: token_embd's lookups read its rows */
    for (int il = 0; il < first; il++) {
        qfit_layer_w *L = &m->layers[il];
        qfit_wt *ws[7] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        for (int i = 0; i < 7; i++) list[n++] = ws[i];
    }
    int k = 0;   /* keep the dense matrices the active ISA can pack */
    for (int i = 0; i < n; i++)
        if (list[i]->data && list[i]->ne2 == 1 && qfit_pack_bytes(list[i]->type, list[i]->ne0, list[i]->ne1) > 0)
            list[k++] = list[i];
    n = k;
    if (n == 0) { free(list); return 0; }
    pack_job J = { .list = list, .n = n };
    m->packs = calloc((size_t)n, sizeof *m->packs);
    J.first = calloc((size_t)n + 1, sizeof *J.first);
    J.left = calloc((size_t)n, sizeof *J.left);
    int rc = -1;
    if (!m->packs || !J.first || !J.left) { snprintf(err, err_len, "out of memory"); goto done; }
    J.packs = m->packs;
    for (int i = 0; i < n; i++) {
        qfit_wt *w = list[i];
        if (qfit_packed_alloc(w->type, w->ne0, w->ne1, &m->packs[i]) != 0) {
            snprintf(err, err_len, "out of memory repacking a %lld x %lld %s matrix (QFIT_REPACK=0 keeps the rows)",
                     (long long)w->ne1, (long long)w->ne0, qfit_type_name(w->type));
            goto done;
        }
        m->n_packs = i + 1;
        const int64_t slabs = (w->ne1 + PACK_SLAB_ROWS - 1) / PACK_SLAB_ROWS;
        J.first[i + 1] = J.first[i] + slabs;
        atomic_init(&J.left[i], (int)slabs);
    }
    atomic_init(&J.next, 0);
    atomic_init(&J.failed, false);
    int nth = qfit_sys_perf_cpu_count();
    nth = nth < 1 ? 1 : nth > PACK_MAX_THREADS ? PACK_MAX_THREADS : nth;
    if ((int64_t)nth > J.first[n]) nth = (int)J.first[n];
    pthread_t th[PACK_MAX_THREADS];
    int started = 0;
    for (; started < nth - 1; started++)   /* this thread is the last worker */
        if (pthread_create(&th[started], NULL, pack_worker, &J) != 0) break;
    pack_worker(&J);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    if (atomic_load(&J.failed)) {
        snprintf(err, err_len, "repacking the weights failed (the ISA changed during the load?)");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        qfit_wt *w = list[i];
        w->packed = &m->packs[i];
        m->packed_bytes += qfit_pack_bytes(w->type, w->ne0, w->ne1);
        m->packed_src_bytes += w->expert_bytes;
    }
    rc = 0;
done:
    free(J.first);
    free((void *)J.left);
    free(list);
    return rc;
}

/* The weights each step of a recipe reads (the descriptor's table binds them; a table
 * that forgets one is a programming error, named here rather than met by the forward
 * pass). NULL when all are bound, else the first missing one's name. */
static const char *recipe_missing(const qfit_layer_recipe *R, const qfit_layer_w *L)
{
    if (!L->wq.data || !L->wk.data || !L->wv.data || !L->wo.data) return "attn_q/k/v/output";
    if (R->block != QFIT_BLOCK_POST_NORM && !L->attn_norm.data) return "attn_norm";
    if (R->block == QFIT_BLOCK_SANDWICH && (!L->attn_post_norm.data || !L->ffn_post_norm.data))
        return "post_attention_norm / post_ffw_norm";
    if (R->block == QFIT_BLOCK_POST_NORM && (!L->attn_out_norm.data || !L->layer_out_norm.data))
        return "attn_output_norm / layer_output_norm";
    if (R->sinks && !L->attn_sinks.data) return "attn_sinks";
    if (R->ffn == QFIT_FFN_EXPERTS) {
        if (!L->w_router.data || !L->w_gate_exps.data || !L->w_up_exps.data || !L->w_down_exps.data)
            return "ffn_gate_inp / ffn_{gate,up,down}_exps";
        if (R->block != QFIT_BLOCK_POST_NORM && !L->ffn_norm.data) return "the FFN's norm";
    } else {
        const bool gated = R->act != QFIT_FFN_GELU;
        if (!L->w_up.data || !L->w_down.data || (gated && !L->w_gate.data)) return "ffn_gate/up/down";
        if (R->block != QFIT_BLOCK_POST_NORM && !L->ffn_norm.data) return "ffn_norm";
    }
    return NULL;
}

qfit_model *qfit_model_load(const char *path, char *err, size_t err_len)
{
    return qfit_model_load_for(path, NULL, err, err_len);
}

qfit_model *qfit_model_load_for(const char *path, const qfit_context_params *cp, char *err, size_t err_len)
{
    char dummy[8];
    if (!err || !err_len) { err = dummy; err_len = sizeof dummy; }
    err[0] = 0;
    const double t0 = now_s();
    qfit_model *m = calloc(1, sizeof *m);
    if (!m) { snprintf(err, err_len, "out of memory"); return NULL; }
    char gerr[256];
    m->gguf = qfit_gguf_open(path, gerr, sizeof gerr);
    if (!m->gguf) {
        snprintf(err, err_len, "%s: %s", path, gerr);
        free(m);
        return NULL;
    }
    qfit_hparams *hp = &m->hp;
    if (qfit_hparams_from_gguf(m->gguf, hp, err, err_len) != 0) goto fail;

    /* vocabulary size: from metadata, else from the embedding matrix */
    {
        int64_t ti = qfit_gguf_find_tensor(m->gguf, "token_embd.weight");
        if (ti >= 0) {
            const qfit_gguf_tensor *t = qfit_gguf_tensor_at(m->gguf, ti);
            if (!hp->n_vocab) hp->n_vocab = (int)(t->ne[1] > 0 && t->ne[1] < (1 << 24) ? t->ne[1] : 0);
        }
    }
    if (!hp->n_vocab) { snprintf(err, err_len, "cannot determine the vocabulary size"); goto fail; }

    const int64_t E = hp->n_embd, V = hp->n_vocab;
    const qfit_arch_desc *desc = qfit_arch_desc_of(hp->arch);
    if (bind(m, "token_embd.weight", E, V, 1, W_EMBED, &m->tok_embd, err, err_len) < 0) goto fail;
    int r;
    if (desc->info.embd_only) {
        /* an encoder: token types (any count: row 0 is used), absolute positions, the
         * embeddings' LayerNorm; no final norm, no output head */
        if (bind(m, "token_types.weight", E, -1, 1, W_EMBED | W_OPTIONAL, &m->tok_types, err, err_len) < 0 ||
            (desc->info.pos == QFIT_POS_ABSOLUTE &&
             bind(m, "position_embd.weight", E, hp->n_ctx_train, 1, W_EMBED, &m->pos_embd, err, err_len) < 0) ||
            bind(m, "token_embd_norm.weight", E, 1, 1, W_VECTOR, &m->tok_norm, err, err_len) < 0 ||
            bind(m, "token_embd_norm.bias", E, 1, 1, W_VECTOR, &m->tok_norm_b, err, err_len) < 0)
            goto fail;
    } else {
        if (bind(m, "output_norm.weight", E, 1, 1, W_VECTOR, &m->output_norm, err, err_len) < 0) goto fail;
        r = bind(m, "output.weight", E, V, 1, W_MATRIX | W_OPTIONAL, &m->output, err, err_len);
        if (r < 0) goto fail;
        if (r == 0) {   /* tied embeddings */
            if (qfit_vec_dot_type(m->tok_embd.type) < 0) {
                snprintf(err, err_len, "output.weight is absent and token_embd.weight (%s) has no compute kernel",
                         qfit_type_name(m->tok_embd.type));
                goto fail;
            }
            m->output = m->tok_embd;
        }
    }
    if (bind(m, "rope_freqs.weight", hp->n_rot / 2, 1, 1, W_VECTOR | W_OPTIONAL, &m->rope_freqs, err, err_len) < 0)
        goto fail;
    if (bind(m, "rope_factors_long.weight", hp->n_rot / 2, 1, 1, W_VECTOR | W_OPTIONAL, &m->rope_long, err,
             err_len) < 0 ||
        bind(m, "rope_factors_short.weight", hp->n_rot / 2, 1, 1, W_VECTOR | W_OPTIONAL, &m->rope_short, err,
             err_len) < 0)
        goto fail;
    if ((m->rope_long.data != NULL) != (m->rope_short.data != NULL)) {
        snprintf(err, err_len, "LongRoPE needs both rope_factors_long.weight and rope_factors_short.weight");
        goto fail;
    }

    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    m->recipes = calloc((size_t)hp->n_layer, sizeof *m->recipes);
    if (!m->layers || !m->recipes) { snprintf(err, err_len, "out of memory"); goto fail; }
    /* each layer's recipe, then the tensors the architecture's descriptor lists for it
     * (src/model/arch_<name>.c) */
    bool any_bias = false;
    for (int il = 0; il < hp->n_layer; il++) {
        qfit_layer_w *L = &m->layers[il];
        const qfit_layer_recipe R = m->recipes[il] = qfit_layer_recipe_of(hp, il);
        for (int ti = 0; ti < desc->n_layer_tensors; ti++) {
            const qfit_layer_tensor *lt = &desc->layer[ti];
            /* the dense FFN or the experts, whichever the layer has */
            if ((lt->flags & QFIT_LT_DENSE) && R.ffn == QFIT_FFN_EXPERTS) continue;
            if ((lt->flags & QFIT_LT_EXPERTS) && R.ffn == QFIT_FFN_DENSE) continue;
            char name[96];
            snprintf(name, sizeof name, "blk.%d.%s", il, lt->suffix);
            int flags = lt->flags & QFIT_LT_MATRIX ? W_MATRIX : W_VECTOR;
            if ((lt->flags & QFIT_LT_OPTIONAL) || ((lt->flags & QFIT_LT_QK_NORM) && !desc->info.qk_norm))
                flags |= W_OPTIONAL;
            qfit_wt *w = (qfit_wt *)((char *)L + lt->field);
            r = bind(m, name, qfit_dim_value(hp, lt->ne0), qfit_dim_value(hp, lt->ne1), qfit_dim_value(hp, lt->ne2),
                     flags, w, err, err_len);
            if (r < 0) goto fail;
            if (r > 0 && (w == &L->bq || w == &L->bk || w == &L->bv)) any_bias = true;
        }
        if (desc->split_layer) desc->split_layer(hp, L);
        if ((L->q_norm.data != NULL) != (L->k_norm.data != NULL)) {
            snprintf(err, err_len, "layer %d has only one of attn_q_norm / attn_k_norm", il);
            goto fail;
        }
        const char *missing = recipe_missing(&R, L);
        if (missing) {
            snprintf(err, err_len, "layer %d: its recipe needs %s, which the %s descriptor did not bind", il,
                     missing, desc->info.name);
            goto fail;
        }
    }
    if (desc->info.qkv_bias && !any_bias) {
        /* qwen2 always has Q/K/V biases; missing ones are treated as zero */
        fprintf(stderr, "qfit: warning: %s model without attention biases\n", desc->info.name);
    }
    hp->has_qkv_bias = any_bias;
    hp->has_qk_norm = m->layers[0].q_norm.data != NULL;
    /* experts resident from the start: a token reads only its experts, so without this
     * the resident memory would creep up over the first hundreds of tokens (and each
     * first use of an expert stall on page faults); the planner counts them resident */
    for (int il = 0; il < hp->n_layer; il++)
        if (m->recipes[il].ffn == QFIT_FFN_EXPERTS) {
            const qfit_layer_w *L = &m->layers[il];
            populate(&L->w_gate_exps);
            populate(&L->w_up_exps);
            populate(&L->w_down_exps);
        }

    if (pack_weights(m, cp, err, err_len) != 0) goto fail;

    for (int64_t i = 0; i < qfit_gguf_n_tensors(m->gguf); i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(m->gguf, i);
        m->weight_bytes += t->nbytes;
        m->n_params += (uint64_t)qfit_gguf_tensor_nelements(t);
    }
    qfit_f16_table_init();
    m->load_seconds = now_s() - t0;
    return m;

fail:
    qfit_model_free(m);
    return NULL;
}

void qfit_model_free(qfit_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_packs; i++) qfit_packed_free(&m->packs[i]);
    free(m->packs);
    free(m->layers);
    free(m->recipes);
    qfit_gguf_close(m->gguf);
    free(m);
}

/* The weight view of a matrix by its GGUF name (NULL: not one of the model's matrices). */
static qfit_wt *weight_slot(qfit_model *m, const char *name, int *flags, int *layer)
{
    *layer = -1;
    *flags = W_MATRIX;
    if (!strcmp(name, "token_embd.weight")) { *flags = W_EMBED; return &m->tok_embd; }
    if (!strcmp(name, "output.weight")) return &m->output;
    int il, len = 0;
    if (sscanf(name, "blk.%d.%n", &il, &len) != 1 || len == 0 || il < 0 || il >= m->hp.n_layer) return NULL;
    char want[96];
    snprintf(want, sizeof want, "blk.%d.", il);
    if (strncmp(name, want, strlen(want)) != 0) return NULL;   /* "blk.+1." and the like */
    const char *suffix = name + len;
    *layer = il;
    const qfit_arch_desc *desc = qfit_arch_desc_of(m->hp.arch);
    for (int i = 0; i < desc->n_layer_tensors; i++)
        if ((desc->layer[i].flags & QFIT_LT_MATRIX) && !strcmp(suffix, desc->layer[i].suffix))
            return (qfit_wt *)((char *)&m->layers[il] + desc->layer[i].field);
    return NULL;
}

int qfit_model_replace_weight(qfit_model *m, const char *name, int type, const void *data,
                              size_t nbytes, char *err, size_t err_len)
{
    char dummy[8];
    if (!err || !err_len) { err = dummy; err_len = sizeof dummy; }
    if (!m || !name) { snprintf(err, err_len, "invalid arguments"); return -1; }
    int flags, layer;
    qfit_wt *w = weight_slot(m, name, &flags, &layer);
    if (!w || !w->data || qfit_gguf_find_tensor(m->gguf, name) < 0) {
        snprintf(err, err_len, "'%s' is not a weight matrix of this model", name);
        return -1;
    }
    qfit_wt fresh;
    if (!data) {   /* the file's tensor, as loaded */
        if (bind(m, name, w->ne0, w->ne1, w->ne2, flags, &fresh, err, err_len) <= 0) return -1;
    } else {
        const qfit_type_traits *tr = qfit_type_get_traits(type);
        if (!tr || w->ne0 % tr->block_size) {
            snprintf(err, err_len, "'%s': type %s does not fit rows of %lld", name,
                     tr ? tr->name : "(unknown)", (long long)w->ne0);
            return -1;
        }
        if ((flags & W_MATRIX) && qfit_vec_dot_type(type) < 0) {
            snprintf(err, err_len, "'%s': type %s has no compute kernel", name, tr->name);
            return -1;
        }
        if ((flags & W_EMBED) && !tr->can_dequantize) {
            snprintf(err, err_len, "'%s': type %s cannot be converted to float", name, tr->name);
            return -1;
        }
        const size_t rb = qfit_row_size(type, w->ne0);
        if (rb == 0 || nbytes != rb * (size_t)w->ne1 * (size_t)w->ne2) {
            snprintf(err, err_len, "'%s': %zu bytes given, %s rows need %zu", name, nbytes, tr->name,
                     rb * (size_t)w->ne1 * (size_t)w->ne2);
            return -1;
        }
        fresh = *w;
        fresh.packed = NULL;   /* the rows given, as they are */
        fresh.data = data;
        fresh.type = type;
        fresh.row_bytes = rb;
        fresh.expert_bytes = rb * (size_t)w->ne1;
    }
    /* tied embeddings: the output is the same tensor */
    if (w == &m->tok_embd && m->output.data == m->tok_embd.data && m->output.type == m->tok_embd.type) {
        if ((data && qfit_vec_dot_type(type) < 0)) {
            snprintf(err, err_len, "'%s' is also the output matrix: type %s has no compute kernel", name,
                     qfit_type_name(type));
            return -1;
        }
        m->output = fresh;
    }
    *w = fresh;
    /* fused matrices: the views the forward pass uses follow */
    const qfit_arch_desc *desc = qfit_arch_desc_of(m->hp.arch);
    if (layer >= 0 && desc->split_layer) desc->split_layer(&m->hp, &m->layers[layer]);
    return 0;
}

const qfit_hparams *qfit_model_hparams(const qfit_model *m) { return &m->hp; }
const qfit_gguf *qfit_model_gguf(const qfit_model *m) { return m->gguf; }
double qfit_model_load_seconds(const qfit_model *m) { return m->load_seconds; }
size_t qfit_model_weight_bytes(const qfit_model *m) { return m->weight_bytes; }
size_t qfit_model_packed_bytes(const qfit_model *m, size_t *src_bytes)
{
    if (src_bytes) *src_bytes = m->packed_src_bytes;
    return m->packed_bytes;
}
uint64_t qfit_model_n_params(const qfit_model *m) { return m->n_params; }
