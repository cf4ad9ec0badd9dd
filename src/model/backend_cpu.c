/* CPU backend: the per-layer operations of the forward pass, parallelised on
 * the context's thread pool (matmuls split by output rows, attention by
 * (token, head) pairs). Activations are quantized once per matmul input into the
 * weight type's vec-dot type and all rows of the pass go through qfit_gemm. */
#include "model/model_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "qfit/kernels.h"
#include "qfit/quant.h"

/* ---------------------------------------------------------------- helpers */

static void rms_norm_row(const float *x, const float *w, float *y, int64_t n, float eps)
{
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
}


/* The matmul input observer (qfit_context_set_matmul_observer): n rows of k floats,
 * stride ld, going into weight "blk.<il>.<what>" (il < 0: "<what>"). */
static void observe_mat(const qfit_context *c, int il, const char *what, int64_t mat, int64_t n_mat, const float *x,
                        int n, int64_t k, int64_t ld)
{
    if (!c->mm_observer) return;
    char name[96];
    if (il >= 0) snprintf(name, sizeof name, "blk.%d.%s", il, what);
    else snprintf(name, sizeof name, "%s", what);
    c->mm_observer(c->mm_observer_user, name, mat, n_mat, x, n, k, ld);
}

static void observe(const qfit_context *c, int il, const char *what, const float *x, int n, int64_t k, int64_t ld)
{
    observe_mat(c, il, what, 0, 1, x, n, k, ld);
}

/* ------------------------------------------------------- parallel operations */

enum { POST_NONE = 0, POST_ADD_X, POST_SWIGLU };

typedef struct {
    qfit_context *c;
    int n;            /* activation rows (tokens) */
    /* norm + quantize: rows of src (stride src_ld floats, k wide), optional norm weight */
    const float *src;
    int64_t src_ld;
    int64_t k;
    const float *norm_w;
    float *norm_out;     /* where normed rows go (stride k) when norm_w != NULL */
    int vdtype;
    size_t a_stride;
    /* matmul group: up to 3 weights over the same quantized input */
    int nw;
    const qfit_wt *w[3];
    float *y[3];
    int64_t ldy[3];
    int post;
    qfit_ffn_act act;    /* POST_SWIGLU: the layer's gated activation */
    float *add_dst;      /* POST_ADD_X: dst[j][i] += y[0][j][i] (+ add_bias[i]) */
    int64_t add_ld;
    const float *add_bias;
    /* chunking: cs rows per chunk; weight i owns chunks [chunk_end[i-1], chunk_end[i]) */
    int64_t cs;
    int nw_chunks;
    int64_t chunk_end[3];
} cpu_op;

/* rows per chunk so that there are about `per_thread` chunks per thread, a multiple of align */
static int64_t chunk_rows(int64_t n, int nth, int per_thread, int64_t align)
{
    int64_t want = (int64_t)nth * per_thread;
    int64_t cs = (n + want - 1) / want;
    cs = (cs + align - 1) / align * align;
    return cs < align ? align : cs;
}

/* rows of src -> (optionally RMS-normed) -> quantized rows in c->aq; one chunk = op->cs rows */
static void chunk_norm_quant(void *arg, int chunk, int ith)
{
    (void)ith;
    cpu_op *op = arg;
    const float eps = op->c->model->hp.rms_eps;
    const int64_t j0 = (int64_t)chunk * op->cs, j1 = j0 + op->cs < op->n ? j0 + op->cs : op->n;
    for (int64_t j = j0; j < j1; j++) {
        const float *row = op->src + j * op->src_ld;
        if (op->norm_w) {
            float *dst = op->norm_out + j * op->k;
            rms_norm_row(row, op->norm_w, dst, op->k, eps);
            row = dst;
        }
        qfit_quantize_activations(op->vdtype, row, (uint8_t *)op->c->aq + j * op->a_stride, op->k);
    }
}

/* g = act(g) * u: a layer's gated activation (its recipe's: SwiGLU, GeGLU or gpt-oss's
 * clamped SwiGLU) */
static inline void swiglu_rows(const qfit_context *c, qfit_ffn_act act, float *g, const float *u, int64_t n)
{
    const qfit_hparams *hp = &c->model->hp;
    switch (act) {
    case QFIT_FFN_GEGLU: c->rk->geglu(g, u, n); break;
    case QFIT_FFN_SWIGLU_OAI: c->rk->swiglu_oai(g, u, n, hp->swiglu_alpha, hp->swiglu_limit); break;
    default: c->rk->swiglu(g, u, n); break;
    }
}

/* x[j] += RMSNorm(y[j]) * w for the n rows of the pass (post-norms: Gemma) */
typedef struct { qfit_context *c; float *y; const float *w; int n; int64_t cs; } post_norm_op;

static void chunk_post_norm_add(void *arg, int chunk, int ith)
{
    (void)ith;
    const post_norm_op *op = arg;
    const qfit_hparams *hp = &op->c->model->hp;
    const int64_t E = hp->n_embd, j0 = (int64_t)chunk * op->cs, j1 = j0 + op->cs < op->n ? j0 + op->cs : op->n;
    for (int64_t j = j0; j < j1; j++) {
        float *y = op->y + j * E, *x = op->c->x + j * E;
        rms_norm_row(y, op->w, y, E, hp->rms_eps);   /* in place: the sum is taken first */
        for (int64_t i = 0; i < E; i++) x[i] += y[i];
    }
}

static void post_norm_add(qfit_context *c, float *y, const float *w, int n)
{
    post_norm_op op = { c, y, w, n, chunk_rows(n, c->n_threads, 4, 1) };
    qfit_threadpool_run_chunks(c->tp, chunk_post_norm_add, &op, (int)((n + op.cs - 1) / op.cs));
}

/* Y = rows [i0, i1) of w times the m activation rows A: on w's packed form when it can
 * serve the call, else on its rows */
static int wt_gemm(const qfit_wt *w, int64_t i0, int64_t i1, const void *A, size_t a_stride, int64_t m, float *Y,
                   int64_t ldy)
{
    if (w->packed) {
        const int r = qfit_gemm_packed(w->packed, i0, i1, A, a_stride, m, Y, ldy);
        if (r <= 0) return r;
    }
    return qfit_gemm(w->type, w->ne0, w->data, w->row_bytes, i0, i1, A, a_stride, m, Y, ldy);
}

/* one chunk: rows [i0, i1) of one weight of the group (with SWIGLU: of gate and up) */
static void chunk_matmul(void *arg, int chunk, int ith)
{
    (void)ith;
    cpu_op *op = arg;
    int wi = 0;
    while (wi + 1 < op->nw_chunks && chunk >= op->chunk_end[wi]) wi++;
    const int64_t first = wi ? op->chunk_end[wi - 1] : 0;
    const qfit_wt *w = op->w[wi];
    const int64_t i0 = (chunk - first) * op->cs;
    const int64_t i1 = i0 + op->cs < w->ne1 ? i0 + op->cs : w->ne1;
    if (wt_gemm(w, i0, i1, op->c->aq, op->a_stride, op->n, op->y[wi], op->ldy[wi]) != 0)
        atomic_store(&op->c->kernel_failed, true);   /* qfit_decode reports it */
    if (op->post == POST_SWIGLU) {
        const qfit_wt *wu = op->w[1];
        if (wt_gemm(wu, i0, i1, op->c->aq, op->a_stride, op->n, op->y[1], op->ldy[1]) != 0)
            atomic_store(&op->c->kernel_failed, true);
        for (int j = 0; j < op->n; j++)
            swiglu_rows(op->c, op->act, op->y[0] + j * op->ldy[0] + i0, op->y[1] + j * op->ldy[1] + i0, i1 - i0);
    } else if (op->post == POST_ADD_X) {
        for (int j = 0; j < op->n; j++) {
            float *d = op->add_dst + j * op->add_ld;
            const float *s = op->y[0] + j * op->ldy[0], *b = op->add_bias;
            if (b) for (int64_t i = i0; i < i1; i++) d[i] += s[i] + b[i];   /* (W x + b) + x, as ggml */
            else for (int64_t i = i0; i < i1; i++) d[i] += s[i];
        }
    }
}

/* Quantize n rows of src (optionally normed) into c->aq for weight type wtype. */
static void quantize_input(qfit_context *c, const float *src, int64_t src_ld, int64_t k, int n,
                           const float *norm_w, int wtype)
{
    cpu_op op;
    memset(&op, 0, sizeof op);
    op.c = c;
    op.n = n;
    op.src = src;
    op.src_ld = src_ld;
    op.k = k;
    op.norm_w = norm_w;
    op.norm_out = c->xn;
    op.vdtype = qfit_vec_dot_type(wtype);
    op.a_stride = qfit_row_size(op.vdtype, k);
    op.cs = chunk_rows(n, c->n_threads, 4, 1);
    qfit_threadpool_run_chunks(c->tp, chunk_norm_quant, &op, (int)((n + op.cs - 1) / op.cs));
}

/* Y_i = W_i · A for weights sharing the input currently quantized in c->aq.
 * POST_SWIGLU: w[0] = gate, w[1] = up (same rows), y[0] = act(gate) * up.
 * POST_ADD_X: add_dst += y[0] + add_bias (NULL: no bias). */
static void matmul_group_act(qfit_context *c, int n, int nw, const qfit_wt *const *w, float *const *y,
                             const int64_t *ldy, int post, qfit_ffn_act act, float *add_dst, int64_t add_ld,
                             const float *add_bias)
{
    cpu_op op;
    memset(&op, 0, sizeof op);
    op.c = c;
    op.act = act;
    op.n = n;
    op.nw = nw;
    int64_t rows = 0;
    for (int i = 0; i < nw; i++) {
        op.w[i] = w[i]; op.y[i] = y[i]; op.ldy[i] = ldy[i];
        rows += w[i]->ne1;
    }
    op.vdtype = qfit_vec_dot_type(w[0]->type);
    op.a_stride = qfit_row_size(op.vdtype, w[0]->ne0);
    op.post = post;
    op.add_dst = add_dst;
    op.add_ld = add_ld;
    op.add_bias = add_bias;
    op.nw_chunks = post == POST_SWIGLU ? 1 : nw;
    if (post == POST_SWIGLU) rows = w[0]->ne1;
    op.cs = chunk_rows(rows, c->n_threads, 8, 32);
    {
        /* at least ~16 KiB of weights x activation rows per chunk: tiny matrices in
         * one or two chunks (a claim costs about as much as a few rows of work) */
        const int64_t min_rows = (int64_t)(16384 / (w[0]->row_bytes * (size_t)n + 1)) + 1;
        if (op.cs < min_rows) op.cs = (min_rows + 31) / 32 * 32;
    }
    if (c->n_threads == 1)   /* nothing to share: one chunk per weight (no per-chunk calls) */
        for (int i = 0; i < nw; i++)
            if (op.cs < w[i]->ne1) op.cs = (w[i]->ne1 + 31) / 32 * 32;
    int64_t total = 0;
    for (int i = 0; i < op.nw_chunks; i++) {
        total += (w[i]->ne1 + op.cs - 1) / op.cs;
        op.chunk_end[i] = total;
    }
    qfit_threadpool_run_chunks(c->tp, chunk_matmul, &op, (int)total);
}

/* matmul_group_act without a gated activation (POST_NONE, POST_ADD_X) */
static void matmul_group(qfit_context *c, int n, int nw, const qfit_wt *const *w, float *const *y,
                         const int64_t *ldy, int post, float *add_dst, int64_t add_ld, const float *add_bias)
{
    matmul_group_act(c, n, nw, w, y, ldy, post, QFIT_FFN_SWIGLU, add_dst, add_ld, add_bias);
}

/* ---------------------------------------------------------------- embed */

static void cpu_embed(qfit_context *c, const int32_t *tokens, int n)
{
    const qfit_wt *e = &c->model->tok_embd;
    const int64_t E = c->model->hp.n_embd;
    for (int j = 0; j < n; j++) {
        const uint8_t *row = (const uint8_t *)e->data + (size_t)tokens[j] * e->row_bytes;
        float *x = c->x + (size_t)j * E;
        qfit_rows_to_float(e->type, row, x, 1, E);
        if (c->model->hp.embd_scale != 1.0f)
            for (int64_t i = 0; i < E; i++) x[i] *= c->model->hp.embd_scale;
    }
}

/* ----------------------------------------------------------- attention */

void qfit_rope_apply(float *x, const float *cs, const float *sn, int n_rot, qfit_rope_type type)
{
    const int half = n_rot / 2;
    if (type == QFIT_ROPE_NEOX) {
        for (int i = 0; i < half; i++) {
            const float x0 = x[i], x1 = x[i + half];
            x[i]        = x0 * cs[i] - x1 * sn[i];
            x[i + half] = x0 * sn[i] + x1 * cs[i];
        }
    } else {
        for (int i = 0; i < half; i++) {
            const float x0 = x[2 * i], x1 = x[2 * i + 1];
            x[2 * i]     = x0 * cs[i] - x1 * sn[i];
            x[2 * i + 1] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

void qfit_kv_store_row(int type, const float *x, uint8_t *dst, int64_t n)
{
    if (type == QFIT_TYPE_F32) {
        memcpy(dst, x, (size_t)n * sizeof(float));
    } else if (type == QFIT_TYPE_F16) {
        uint16_t *h = (uint16_t *)dst;
        for (int64_t i = 0; i < n; i++) h[i] = qfit_fp32_to_fp16(x[i]);
    } else if (type == QFIT_TYPE_BF16) {
        uint16_t *h = (uint16_t *)dst;
        for (int64_t i = 0; i < n; i++) h[i] = qfit_fp32_to_bf16(x[i]);
    } else {
        /* block types: the row is whole blocks (head_dim is a multiple of the
         * block size, checked when the context is made), quantized as it arrives */
        qfit_quantize_row_ref(type, x, dst, n);
    }
}

typedef struct { qfit_context *c; int il, n; int64_t cs; } attn_op;

/* Token j's Q heads [h0, h1) and K/V heads [g0, g1) after their matmuls: biases, Q/K
 * norms, RoPE, the Hadamard rotation of quantized caches, and K/V into the cache. Every
 * step works head by head (the rotation in 64-element chunks of whole heads), so any
 * split of the heads gives the same values. */
static void qkv_post_heads(qfit_context *c, int il, int64_t j, int h0, int h1, int g0, int g1)
{
    const qfit_hparams *hp = &c->model->hp;
    const qfit_layer_w *L = &c->model->layers[il];
    const int hdk = hp->head_dim_k, hdv = hp->head_dim_v;
    const int64_t qd = (int64_t)hp->n_head * hdk, kd = (int64_t)hp->n_head_kv * hdk,
                  vd = (int64_t)hp->n_head_kv * hdv;
    const int half = hp->n_rot / 2;
    float *q = c->q + j * qd, *k = c->k + j * kd, *v = c->v + j * vd;
    const int64_t q0 = (int64_t)h0 * hdk, q1 = (int64_t)h1 * hdk, k0 = (int64_t)g0 * hdk, k1 = (int64_t)g1 * hdk,
                  v0 = (int64_t)g0 * hdv, v1 = (int64_t)g1 * hdv;
    if (L->bq.data) { const float *b = L->bq.data; for (int64_t i = q0; i < q1; i++) q[i] += b[i]; }
    if (L->bk.data) { const float *b = L->bk.data; for (int64_t i = k0; i < k1; i++) k[i] += b[i]; }
    if (L->bv.data) { const float *b = L->bv.data; for (int64_t i = v0; i < v1; i++) v[i] += b[i]; }
    if (L->q_norm.data) {
        for (int h = h0; h < h1; h++) rms_norm_row(q + h * hdk, L->q_norm.data, q + h * hdk, hdk, hp->rms_eps);
        for (int h = g0; h < g1; h++) rms_norm_row(k + h * hdk, L->k_norm.data, k + h * hdk, hdk, hp->rms_eps);
    }
    const int pos = c->tok_pos[j];
    const float *cs, *sn;
    qfit_rope_of_layer(c, il, &cs, &sn);
    cs += (size_t)pos * half;
    sn += (size_t)pos * half;
    for (int h = h0; h < h1; h++) qfit_rope_apply(q + h * hdk, cs, sn, hp->n_rot, hp->rope_type);
    for (int h = g0; h < g1; h++) qfit_rope_apply(k + h * hdk, cs, sn, hp->n_rot, hp->rope_type);
    /* quantized caches hold Hadamard-rotated rows (q·k and the value mix are
     * unchanged; outliers are spread before block quantization); rot_k / rot_v
     * only with head dimensions that are multiples of 64 */
    if (c->rot_k) { qfit_hadamard64(q + q0, q1 - q0); qfit_hadamard64(k + k0, k1 - k0); }
    if (c->rot_v) qfit_hadamard64(v + v0, v1 - v0);
    /* each head's row into its own run (model_internal.h: the cache layout); block
     * types: a head is whole blocks (checked when the context is made) */
    const qfit_kv_cache *kv = &c->kv;
    const int s = c->tok_seq[j];
    for (int h = g0; h < g1; h++) {
        uint8_t *kp = kv_k_at(kv, il, s, h, pos), *vp = kv_v_at(kv, il, s, h, pos);
        if (kv->type_k == QFIT_TYPE_F16) c->rk->f32_to_f16(k + (size_t)h * hdk, (uint16_t *)(void *)kp, hdk);
        else qfit_kv_store_row(kv->type_k, k + (size_t)h * hdk, kp, hdk);
        if (kv->type_v == QFIT_TYPE_F16) c->rk->f32_to_f16(v + (size_t)h * hdv, (uint16_t *)(void *)vp, hdv);
        else qfit_kv_store_row(kv->type_v, v + (size_t)h * hdv, vp, hdv);
    }
}

/* biases, Q/K norms, RoPE, and K/V into the cache: rows split among threads */
static void chunk_qkv_post(void *arg, int chunk, int ith)
{
    (void)ith;
    attn_op *op = arg;
    const qfit_hparams *hp = &op->c->model->hp;
    const int64_t j0 = (int64_t)chunk * op->cs, j1 = j0 + op->cs < op->n ? j0 + op->cs : op->n;
    for (int64_t j = j0; j < j1; j++) qkv_post_heads(op->c, op->il, j, 0, hp->n_head, 0, hp->n_head_kv);
}

/* Decode, one token: per KV head, its query heads' Q rows and its K and V rows, the
 * post-processing of those heads, then their attention, as one task of one dispatch
 * (the unfused path needs two: the matmuls, and the attention after them) */
typedef struct {
    qfit_context *c;
    int il;
    const qfit_wt *w[3];   /* Q, K, V */
    size_t a_stride;
    qfit_dec8_job D;
} qkv_attn_op;

static void chunk_qkv_attn(void *arg, int hk, int ith)
{
    const qkv_attn_op *op = arg;
    qfit_context *c = op->c;
    const qfit_hparams *hp = &c->model->hp;
    const int gqa = hp->n_head / hp->n_head_kv, hdk = hp->head_dim_k, hdv = hp->head_dim_v;
    float *ys[3] = { c->q, c->k, c->v };
    const int64_t r0[3] = { (int64_t)hk * gqa * hdk, (int64_t)hk * hdk, (int64_t)hk * hdv };
    const int64_t r1[3] = { r0[0] + (int64_t)gqa * hdk, r0[1] + hdk, r0[2] + hdv };
    for (int a = 0; a < 3; a++) {
        const qfit_wt *w = op->w[a];
        if (wt_gemm(w, r0[a], r1[a], c->aq, op->a_stride, 1, ys[a], w->ne1) != 0)
            atomic_store(&c->kernel_failed, true);
    }
    qkv_post_heads(c, op->il, 0, hk * gqa, (hk + 1) * gqa, hk, hk + 1);
    qfit_attention_dec8_task(&op->D, hk, ith);
}

/* the fused decode path for layer il's single token when it applies (op filled), else
 * false. Only with a pool to share the work (one thread has no dispatch to save) and
 * a KV head for every thread. */
static bool qkv_attn_plan(qfit_context *c, int il, qkv_attn_op *op)
{
    const qfit_hparams *hp = &c->model->hp;
    const qfit_layer_w *L = &c->model->layers[il];
    if (c->n_threads < 2 || hp->n_head_kv < c->n_threads || hp->n_head % hp->n_head_kv) return false;
    const int vt = qfit_vec_dot_type(L->wq.type);
    if (qfit_vec_dot_type(L->wk.type) != vt || qfit_vec_dot_type(L->wv.type) != vt) return false;
    /* the unfused matmuls run 4-row kernels on rows that are multiples of 4 from the
     * start: so do the heads here (the same sums in the same order) */
    if (hp->head_dim_k % 4 || hp->head_dim_v % 4) return false;
    /* weights packed at load serve whole panels only: a head's rows must be whole panels,
     * else its matmuls would fall back to the rows, faulting the released pages back in */
    const int64_t hq = (int64_t)(hp->n_head / hp->n_head_kv) * hp->head_dim_k;
    if ((L->wq.packed && hq % L->wq.packed->rows) || (L->wk.packed && hp->head_dim_k % L->wk.packed->rows) ||
        (L->wv.packed && hp->head_dim_v % L->wv.packed->rows))
        return false;
    if (!qfit_attention_dec8_plan(c, il, &op->D)) return false;
    op->c = c;
    op->il = il;
    op->w[0] = &L->wq;
    op->w[1] = &L->wk;
    op->w[2] = &L->wv;
    op->a_stride = qfit_row_size(vt, hp->n_embd);
    return true;
}

static void cpu_attention(qfit_context *c, int il, int n)
{
    const qfit_hparams *hp = &c->model->hp;
    const qfit_layer_w *L = &c->model->layers[il];
    const int64_t E = hp->n_embd;
    const int64_t qd = (int64_t)hp->n_head * hp->head_dim_k, kd = (int64_t)hp->n_head_kv * hp->head_dim_k,
                  vd = (int64_t)hp->n_head_kv * hp->head_dim_v, od = (int64_t)hp->n_head * hp->head_dim_v;

    /* Q, K, V: the normed input is quantized once per distinct vec-dot type */
    qkv_attn_op fop;
    const bool fused = n == 1 && qkv_attn_plan(c, il, &fop);
    const qfit_wt *ws[3] = { &L->wq, &L->wk, &L->wv };
    float *ys[3] = { c->q, c->k, c->v };
    const int64_t lds[3] = { qd, kd, vd };
    bool done[3] = { false, false, false };
    bool normed = false;
    for (int a = 0; a < 3; a++) {
        if (done[a]) continue;
        const int vt = qfit_vec_dot_type(ws[a]->type);
        if (!normed) {
            quantize_input(c, c->x, E, E, n, L->attn_norm.data, ws[a]->type);
            normed = true;
            const float *in = L->attn_norm.data ? c->xn : c->x;   /* no pre-norm: post-norm encoders */
            if (L->wqkv.data) {   /* fused (phi3): one matrix in the file, one observation */
                observe(c, il, "attn_qkv.weight", in, n, E, E);
            } else {
                observe(c, il, "attn_q.weight", in, n, E, E);
                observe(c, il, "attn_k.weight", in, n, E, E);
                observe(c, il, "attn_v.weight", in, n, E, E);
            }
            if (fused) break;   /* one vec-dot type: the matmuls run in the fused dispatch */
        }
        else quantize_input(c, L->attn_norm.data ? c->xn : c->x, E, E, n, NULL, ws[a]->type);
        const qfit_wt *gw[3]; float *gy[3]; int64_t gl[3]; int ng = 0;
        for (int b = a; b < 3; b++) {
            if (done[b] || qfit_vec_dot_type(ws[b]->type) != vt) continue;
            gw[ng] = ws[b]; gy[ng] = ys[b]; gl[ng] = lds[b]; ng++;
            done[b] = true;
        }
        matmul_group(c, n, ng, gw, gy, gl, POST_NONE, NULL, 0, NULL);
    }
    if (fused) {
        qfit_threadpool_run_chunks(c->tp, chunk_qkv_attn, &fop, hp->n_head_kv);
    } else {
        attn_op aop = { c, il, n, chunk_rows(n, c->n_threads, 4, 1) };
        qfit_threadpool_run_chunks(c->tp, chunk_qkv_post, &aop, (int)((n + aop.cs - 1) / aop.cs));
        qfit_attention_run(c, il, n);
    }

    /* output projection, added to the residual stream */
    observe(c, il, "attn_output.weight", c->att, n, od, od);
    quantize_input(c, c->att, od, od, n, NULL, L->wo.type);
    const qfit_wt *w1[1] = { &L->wo };
    float *y1[1] = { c->xn };
    const int64_t l1[1] = { E };
    if (c->model->recipes[il].block == QFIT_BLOCK_SANDWICH) {
        matmul_group(c, n, 1, w1, y1, l1, POST_NONE, NULL, 0, NULL);
        post_norm_add(c, c->xn, L->attn_post_norm.data, n);
    } else {
        matmul_group(c, n, 1, w1, y1, l1, POST_ADD_X, c->x, E, L->bo.data);   /* bias: gpt-oss, encoders */
    }
}

/* ------------------------------------------------------ mixture of experts */

/* Per token, from the router's logits (in c->moe_prob, plus the router's bias when the
 * layer has one), the n_expert_used chosen experts and their weights by the model's
 * gating (qfit_moe_gating): SOFTMAX, the most probable experts (ties: the lower id, as
 * a stable descending sort) with their probabilities renormalised to sum 1;
 * SOFTMAX_WEIGHT, the largest logits, softmaxed among themselves (the same weights
 * in exact arithmetic: each is ggml's order of operations, so that the rounding is
 * llama.cpp's too). Then the (token,
 * choice) pairs counting-sorted by expert (moe_first, moe_slot) with the inverse map
 * (moe_pos). */
static void softmax_row(float *p, int n)
{
    float mx = p[0];
    for (int e = 1; e < n; e++) mx = fmaxf(mx, p[e]);
    double sum = 0.0;
    for (int e = 0; e < n; e++) { p[e] = expf(p[e] - mx); sum += p[e]; }
    const float inv = (float)(1.0 / sum);
    for (int e = 0; e < n; e++) p[e] *= inv;
}

static void moe_route(qfit_context *c, int il, qfit_moe_gating gating, int n)
{
    const qfit_hparams *hp = &c->model->hp;
    const float *bias = c->model->layers[il].b_router.data;
    const int ne = hp->n_expert, nu = hp->n_expert_used;
    const bool weight_softmax = gating == QFIT_MOE_GATING_SOFTMAX_WEIGHT;
    for (int e = 0; e <= ne; e++) c->moe_first[e] = 0;
    for (int j = 0; j < n; j++) {
        float *p = c->moe_prob + (size_t)j * ne;
        if (bias) for (int e = 0; e < ne; e++) p[e] += bias[e];
        if (!weight_softmax) softmax_row(p, ne);
        int32_t *sel = c->moe_sel + (size_t)j * nu;
        float *w = c->moe_w + (size_t)j * nu;
        float wsum = 0.0f;
        for (int k = 0; k < nu; k++) {
            int best = -1;
            for (int e = 0; e < ne; e++) {
                bool taken = false;
                for (int t = 0; t < k; t++) taken |= sel[t] == e;
                if (!taken && (best < 0 || p[e] > p[best])) best = e;
            }
            sel[k] = best;
            w[k] = p[best];
            wsum += w[k];
            c->moe_first[best + 1]++;
        }
        if (weight_softmax) softmax_row(w, nu);
        else for (int k = 0; k < nu; k++) w[k] /= wsum;
    }
    for (int e = 0; e < ne; e++) c->moe_first[e + 1] += c->moe_first[e];
    int32_t cursor[QFIT_MAX_EXPERTS];
    memcpy(cursor, c->moe_first, (size_t)ne * sizeof *cursor);
    for (int j = 0; j < n; j++)
        for (int k = 0; k < nu; k++) {
            const int32_t pair = j * nu + k, at = cursor[c->moe_sel[pair]]++;
            c->moe_slot[at] = pair;
            c->moe_pos[pair] = at;
        }
}

/* Y = W_e · A (+ b_e) over the pairs routed to each expert e: A's rows are c->aq in
 * moe_slot order (a_stride bytes each), Y's rows the same order (ldy floats each); b
 * (data NULL: none) holds one bias row per expert. With w2 (the up matrices, same
 * vec-dot type as w's), y = act(W_e·A + b_e, W2_e·A + b2_e), y2 the scratch. */
typedef struct {
    qfit_context *c;
    const qfit_wt *w, *w2, *b, *b2;
    float *y, *y2;
    int64_t ldy;
    size_t a_stride;
    qfit_ffn_act gated;                    /* with w2: the experts' activation */
    int n_act;
    int32_t act[QFIT_MAX_EXPERTS];         /* experts with at least one pair */
    int64_t chunk_end[QFIT_MAX_EXPERTS];   /* act[i] owns chunks [chunk_end[i-1], chunk_end[i]) */
    int64_t cs;                            /* rows per chunk */
} moe_mm_op;

/* columns [i0, i1) of np rows of y (ldy apart) += expert e's bias row (b->data NULL: none) */
static void add_expert_bias(const qfit_wt *b, int e, float *y, int64_t ldy, int np, int64_t i0, int64_t i1)
{
    if (!b || !b->data) return;
    const float *br = (const float *)b->data + (size_t)e * (size_t)b->ne0;
    for (int j = 0; j < np; j++)
        for (int64_t i = i0; i < i1; i++) y[j * ldy + i] += br[i];
}

static void chunk_moe_matmul(void *arg, int chunk, int ith)
{
    (void)ith;
    const moe_mm_op *op = arg;
    qfit_context *c = op->c;
    int lo = 0, hi = op->n_act - 1;   /* the first act whose chunk_end > chunk */
    while (lo < hi) {
        const int mid = (lo + hi) / 2;
        if (op->chunk_end[mid] > chunk) hi = mid; else lo = mid + 1;
    }
    const int e = op->act[lo];
    const int64_t first = lo ? op->chunk_end[lo - 1] : 0;
    const int64_t rows = op->w->ne1;
    const int64_t i0 = (chunk - first) * op->cs, i1 = i0 + op->cs < rows ? i0 + op->cs : rows;
    const int p0 = c->moe_first[e], np = c->moe_first[e + 1] - p0;
    const uint8_t *a = (const uint8_t *)c->aq + (size_t)p0 * op->a_stride;
    float *y = op->y + (size_t)p0 * op->ldy;
    if (qfit_gemm(op->w->type, op->w->ne0, (const uint8_t *)op->w->data + (size_t)e * op->w->expert_bytes,
                  op->w->row_bytes, i0, i1, a, op->a_stride, np, y, op->ldy) != 0)
        atomic_store(&c->kernel_failed, true);
    add_expert_bias(op->b, e, y, op->ldy, np, i0, i1);
    if (!op->w2) return;
    float *y2 = op->y2 + (size_t)p0 * op->ldy;
    if (qfit_gemm(op->w2->type, op->w2->ne0, (const uint8_t *)op->w2->data + (size_t)e * op->w2->expert_bytes,
                  op->w2->row_bytes, i0, i1, a, op->a_stride, np, y2, op->ldy) != 0)
        atomic_store(&c->kernel_failed, true);
    add_expert_bias(op->b2, e, y2, op->ldy, np, i0, i1);
    for (int j = 0; j < np; j++) swiglu_rows(c, op->gated, y + j * op->ldy + i0, y2 + j * op->ldy + i0, i1 - i0);
}

static void moe_matmul(qfit_context *c, const qfit_wt *w, const qfit_wt *b, const qfit_wt *w2, const qfit_wt *b2,
                       qfit_ffn_act gated, float *y, float *y2, int64_t ldy, int n_pairs)
{
    moe_mm_op opv, *op = &opv;
    memset(op, 0, sizeof *op);
    op->c = c;
    op->gated = gated;
    op->w = w;
    op->w2 = w2;
    op->b = b;
    op->b2 = b2;
    op->y = y;
    op->y2 = y2;
    op->ldy = ldy;
    op->a_stride = qfit_row_size(qfit_vec_dot_type(w->type), w->ne0);
    const int ne = c->model->hp.n_expert;
    for (int e = 0; e < ne; e++)
        if (c->moe_first[e + 1] > c->moe_first[e]) op->act[op->n_act++] = e;
    /* about 8 chunks per thread over all active experts' rows, at least 16 KiB of
     * weights times activation rows per chunk, never more than one expert's rows */
    op->cs = chunk_rows((int64_t)op->n_act * w->ne1, c->n_threads, 8, 32);
    const int64_t min_rows = (int64_t)(16384 / (w->row_bytes * (size_t)(n_pairs / op->n_act + 1) + 1)) + 1;
    if (op->cs < min_rows) op->cs = (min_rows + 31) / 32 * 32;
    if (op->cs > w->ne1) op->cs = w->ne1;
    int64_t total = 0;
    for (int i = 0; i < op->n_act; i++) {
        total += (w->ne1 + op->cs - 1) / op->cs;
        op->chunk_end[i] = total;
    }
    qfit_threadpool_run_chunks(c->tp, chunk_moe_matmul, op, (int)total);
}

/* rows of the normed FFN input (c->xn, one per token) quantized into c->aq once per
 * (token, choice) pair, in moe_slot order */
typedef struct { qfit_context *c; int vdtype, nu; int64_t k; size_t a_stride; int64_t cs, n; } moe_gather_op;

static void chunk_moe_gather(void *arg, int chunk, int ith)
{
    (void)ith;
    const moe_gather_op *op = arg;
    const int64_t i0 = (int64_t)chunk * op->cs, i1 = i0 + op->cs < op->n ? i0 + op->cs : op->n;
    for (int64_t i = i0; i < i1; i++) {
        const int j = op->c->moe_slot[i] / op->nu;
        qfit_quantize_activations(op->vdtype, op->c->xn + (size_t)j * op->k,
                                  (uint8_t *)op->c->aq + (size_t)i * op->a_stride, op->k);
    }
}

static void moe_gather(qfit_context *c, int wtype, int64_t k, int n_pairs)
{
    moe_gather_op op = { c, qfit_vec_dot_type(wtype), c->model->hp.n_expert_used, k, 0, 0, n_pairs };
    op.a_stride = qfit_row_size(op.vdtype, k);
    op.cs = chunk_rows(n_pairs, c->n_threads, 4, 1);
    qfit_threadpool_run_chunks(c->tp, chunk_moe_gather, &op, (int)((n_pairs + op.cs - 1) / op.cs));
}

/* x += sum over the token's chosen experts of weight * gated expert (llama.cpp's
 * build_moe_ffn: the model's gating, top-k; experts' biases where the file has them) */
static void cpu_moe_ffn(qfit_context *c, int il, int n)
{
    const qfit_hparams *hp = &c->model->hp;
    const qfit_layer_w *L = &c->model->layers[il];
    const qfit_layer_recipe *R = &c->model->recipes[il];
    const int64_t E = hp->n_embd, F = hp->n_ff_exp;
    const int nu = hp->n_expert_used, n_pairs = n * nu;

    /* the router's logits, then the choices */
    quantize_input(c, c->x, E, E, n, L->ffn_norm.data, L->w_router.type);
    observe(c, il, "ffn_gate_inp.weight", c->xn, n, E, E);
    const qfit_wt *wr[1] = { &L->w_router };
    float *yr[1] = { c->moe_prob };
    const int64_t lr[1] = { hp->n_expert };
    matmul_group(c, n, 1, wr, yr, lr, POST_NONE, NULL, 0, NULL);
    moe_route(c, il, R->gating, n);

    /* gate and up of each chosen expert, over the pairs routed to it */
    if (c->mm_observer)
        for (int i = 0; i < n_pairs; i++) {
            const int32_t pair = c->moe_slot[i];
            const float *row = c->xn + (size_t)(pair / nu) * E;
            observe_mat(c, il, "ffn_gate_exps.weight", c->moe_sel[pair], hp->n_expert, row, 1, E, E);
            observe_mat(c, il, "ffn_up_exps.weight", c->moe_sel[pair], hp->n_expert, row, 1, E, E);
        }
    moe_gather(c, L->w_gate_exps.type, E, n_pairs);
    if (qfit_vec_dot_type(L->w_gate_exps.type) == qfit_vec_dot_type(L->w_up_exps.type)) {
        moe_matmul(c, &L->w_gate_exps, &L->b_gate_exps, &L->w_up_exps, &L->b_up_exps, R->act, c->gate, c->up, F,
                   n_pairs);
    } else {
        moe_matmul(c, &L->w_gate_exps, &L->b_gate_exps, NULL, NULL, R->act, c->gate, NULL, F, n_pairs);
        moe_gather(c, L->w_up_exps.type, E, n_pairs);
        moe_matmul(c, &L->w_up_exps, &L->b_up_exps, NULL, NULL, R->act, c->up, NULL, F, n_pairs);
        for (int64_t i = 0; i < n_pairs; i++) swiglu_rows(c, R->act, c->gate + i * F, c->up + i * F, F);
    }
    /* down, into one output row per pair */
    if (c->mm_observer)
        for (int e = 0; e < hp->n_expert; e++)
            if (c->moe_first[e + 1] > c->moe_first[e])
                observe_mat(c, il, "ffn_down_exps.weight", e, hp->n_expert, c->gate + (size_t)c->moe_first[e] * F,
                            c->moe_first[e + 1] - c->moe_first[e], F, F);
    quantize_input(c, c->gate, F, F, n_pairs, NULL, L->w_down_exps.type);
    moe_matmul(c, &L->w_down_exps, &L->b_down_exps, NULL, NULL, R->act, c->moe_out, NULL, E, n_pairs);

    /* the weighted sum, in choice order, added to the residual stream */
    for (int j = 0; j < n; j++) {
        float *x = c->x + (size_t)j * E;
        const float *w = c->moe_w + (size_t)j * nu;
        for (int64_t i = 0; i < E; i++) {
            float sum = 0.0f;
            for (int k = 0; k < nu; k++)
                sum += w[k] * c->moe_out[(size_t)c->moe_pos[(size_t)j * nu + k] * E + i];
            x[i] += sum;
        }
    }
}

/* ---------------------------------------------------------------- FFN */

static void cpu_ffn(qfit_context *c, int il, int n)
{
    const qfit_hparams *hp = &c->model->hp;
    const qfit_layer_w *L = &c->model->layers[il];
    const qfit_layer_recipe *R = &c->model->recipes[il];
    if (R->ffn == QFIT_FFN_EXPERTS) { cpu_moe_ffn(c, il, n); return; }
    const int64_t E = hp->n_embd, F = hp->n_ff;
    quantize_input(c, c->x, E, E, n, L->ffn_norm.data, L->w_gate.type);
    if (!L->w_gate_up.data) observe(c, il, "ffn_gate.weight", c->xn, n, E, E);
    observe(c, il, "ffn_up.weight", c->xn, n, E, E);   /* fused (phi3): gate and up are this one */
    if (qfit_vec_dot_type(L->w_gate.type) == qfit_vec_dot_type(L->w_up.type)) {
        const qfit_wt *w[2] = { &L->w_gate, &L->w_up };
        float *y[2] = { c->gate, c->up };
        const int64_t l[2] = { F, F };
        matmul_group_act(c, n, 2, w, y, l, POST_SWIGLU, R->act, NULL, 0, NULL);
    } else {
        /* gate and up need differently quantized inputs: two passes */
        const qfit_wt *wg[1] = { &L->w_gate }, *wu[1] = { &L->w_up };
        float *yg[1] = { c->gate }, *yu[1] = { c->up };
        const int64_t l[1] = { F };
        matmul_group(c, n, 1, wg, yg, l, POST_NONE, NULL, 0, NULL);
        quantize_input(c, c->xn, E, E, n, NULL, L->w_up.type);
        matmul_group(c, n, 1, wu, yu, l, POST_NONE, NULL, 0, NULL);
        for (int64_t j = 0; j < n; j++) swiglu_rows(c, R->act, c->gate + j * F, c->up + j * F, F);
    }
    observe(c, il, "ffn_down.weight", c->gate, n, F, F);
    quantize_input(c, c->gate, F, F, n, NULL, L->w_down.type);
    const qfit_wt *w1[1] = { &L->w_down };
    float *y1[1] = { c->xn };
    const int64_t l1[1] = { E };
    if (R->block == QFIT_BLOCK_SANDWICH) {
        matmul_group(c, n, 1, w1, y1, l1, POST_NONE, NULL, 0, NULL);
        post_norm_add(c, c->xn, L->ffn_post_norm.data, n);
    } else {
        matmul_group(c, n, 1, w1, y1, l1, POST_ADD_X, c->x, E, NULL);
    }
}

/* ---------------------------------------------------------------- output */

static void cpu_output(qfit_context *c, int from, int n)
{
    const qfit_hparams *hp = &c->model->hp;
    const int64_t E = hp->n_embd, V = hp->n_vocab;
    const int m = n - from;
    if (c->out_embd) {
        /* embeddings: the rows the logits would be projected from (same norm) */
        float *dst = c->logits + (size_t)c->n_logits * E;
        for (int j = 0; j < m; j++)
            rms_norm_row(c->x + (size_t)(from + j) * E, c->model->output_norm.data, dst + (size_t)j * E, E,
                         hp->rms_eps);
        c->n_logits += m;
        return;
    }
    quantize_input(c, c->x + (size_t)from * E, E, E, m, c->model->output_norm.data, c->model->output.type);
    observe(c, -1, "output.weight", c->xn, m, E, E);
    const qfit_wt *w[1] = { &c->model->output };
    float *y[1] = { c->logits + (size_t)c->n_logits * V };
    const int64_t l[1] = { V };
    matmul_group(c, m, 1, w, y, l, POST_NONE, NULL, 0, NULL);
    if (hp->final_softcap > 0) {   /* Gemma 2: cap * tanh(logit / cap) */
        const float cap = hp->final_softcap, inv = 1.0f / cap;
        float *lg = y[0];
        for (size_t i = 0; i < (size_t)m * (size_t)V; i++) lg[i] = tanhf(lg[i] * inv) * cap;
    }
    c->n_logits += m;
}

const qfit_backend qfit_backend_cpu = {
    .name = "cpu",
    .embed = cpu_embed,
    .attention = cpu_attention,
    .ffn = cpu_ffn,
    .output = cpu_output,
};

/* ------------------------------------------------- for encoder_cpu.c */

void qfit_cpu_attention(qfit_context *c, int il, int n) { cpu_attention(c, il, n); }

void qfit_cpu_matmul(qfit_context *c, int il, const char *name, const qfit_wt *w, const float *src,
                     int64_t src_ld, int n, float *y, int64_t ldy)
{
    observe(c, il, name, src, n, w->ne0, src_ld);
    quantize_input(c, src, src_ld, w->ne0, n, NULL, w->type);
    const qfit_wt *ws[1] = { w };
    float *ys[1] = { y };
    const int64_t ls[1] = { ldy };
    matmul_group(c, n, 1, ws, ys, ls, POST_NONE, NULL, 0, NULL);
}
