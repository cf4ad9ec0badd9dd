/* The scalar reference backend (device "ref"): the decoder forward pass written as
 * plainly as it can be, to be the oracle the other backends are checked against.
 *
 * - Weights are dequantized a few blocks at a time (qfit_rows_to_float, the reference
 *   dequantization that tests/test_quant.c holds to ggml's byte for byte) and multiplied
 *   with the activations in double. The activations are first rounded as ggml's CPU
 *   backend rounds them (and so llama.cpp's logits, which the tests hold every backend
 *   to): to the weight type's vec-dot type (qfit_vec_dot_type: Q8_0, Q8_K, F16, ...) by
 *   the reference quantizer, and back to float. Q8_1 (Q4_1/Q5_1) rounds its values as
 *   Q8_0 does; its f16 block sum, a detail of ggml's dot product, is not modelled.
 *   Without that rounding the quantized models' logits sit as near llama.cpp's F32
 *   logits as its quantized ones (measured), and no test could tell a backend that
 *   computes a type as ggml does from one that does not.
 * - RMSNorm, RoPE angles and the softmax are computed in double; the softmax is the
 *   online one (a running maximum, sum and accumulator per head, all double), which in
 *   double is the two-pass softmax to rounding.
 * - K and V go into the context's cache in the cache type (qfit_kv_store_row, with the
 *   Hadamard rotation of quantized caches as the CPU backend stores them), so every
 *   cache type and the context shift behave as they do on the CPU; a row read back is
 *   dequantized and un-rotated. Keys of a block type meet the query rounded to their
 *   vec-dot type (q8_0), as in ggml's attention and the CPU's (see ref_head_chunk).
 * - Nothing depends on the ISA: no kernel table, no packed weights (w->data, the file's
 *   rows, is read; pages the CPU packing gave back fault in again from the file).
 *
 * It runs what llama, qwen2, qwen3 and phi3 files need (pre-norm blocks, RMSNorm, Q/K/V
 * biases, per-head Q/K norms, RoPE normal/NEOX with linear scaling and frequency
 * factors, causal attention with GQA, SwiGLU); ref_supports refuses everything else
 * with the reason. Work is split over the context's thread pool by output rows and by
 * (token, head), and every split computes the same values. */
#include "model/model_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "qfit/kernels.h"
#include "qfit/quant.h"

/* The largest head dimension and quantization block the stack buffers below take. */
#define REF_MAX_HEAD 512
#define REF_MAX_BLOCK 256

static int ref_fail(char *err, size_t err_len, const char *what, const qfit_hparams *hp)
{
    snprintf(err, err_len, "the reference backend (device ref) cannot run this %s model: %s", hp->arch_name, what);
    return -1;
}

static int ref_supports(const qfit_model *m, char *err, size_t err_len)
{
    const qfit_hparams *hp = &m->hp;
    char what[160];
    if (hp->n_expert > 0) return ref_fail(err, err_len, "mixture-of-experts FFN", hp);
    if (hp->rope_ext_factor != 0.0f) return ref_fail(err, err_len, "YaRN RoPE scaling", hp);
    if (m->rope_long.data) return ref_fail(err, err_len, "LongRoPE frequency factors", hp);
    if (hp->final_softcap > 0) return ref_fail(err, err_len, "logit soft-capping", hp);
    if (hp->head_dim_k > REF_MAX_HEAD || hp->head_dim_v > REF_MAX_HEAD) {
        snprintf(what, sizeof what, "head dimension %d/%d (at most %d)", hp->head_dim_k, hp->head_dim_v,
                 REF_MAX_HEAD);
        return ref_fail(err, err_len, what, hp);
    }
    if (hp->n_head_kv <= 0 || hp->n_head % hp->n_head_kv) return ref_fail(err, err_len, "its head counts", hp);
    for (int il = 0; il < hp->n_layer; il++) {
        const char *bad = qfit_plain_layer_lacks(&m->recipes[il]);
        if (bad) {
            snprintf(what, sizeof what, "layer %d has %s", il, bad);
            return ref_fail(err, err_len, what, hp);
        }
        const qfit_layer_w *L = &m->layers[il];
        const qfit_wt *mats[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
            const qfit_type_traits *t = qfit_type_get_traits(mats[i]->type);
            if (!mats[i]->data) {
                snprintf(what, sizeof what, "layer %d lacks a matrix a gated FFN and attention need", il);
                return ref_fail(err, err_len, what, hp);
            }
            if (!t || !t->can_dequantize || t->block_size > REF_MAX_BLOCK || qfit_vec_dot_type(mats[i]->type) < 0) {
                snprintf(what, sizeof what, "layer %d has a matrix of type %s it cannot dequantize", il,
                         t ? t->name : "?");
                return ref_fail(err, err_len, what, hp);
            }
        }
    }
    const qfit_wt *ends[] = { &m->tok_embd, &m->output };
    for (size_t i = 0; i < 2; i++) {
        const qfit_type_traits *t = qfit_type_get_traits(ends[i]->type);
        if (!t || !t->can_dequantize || t->block_size > REF_MAX_BLOCK || (i && qfit_vec_dot_type(ends[i]->type) < 0)) {
            snprintf(what, sizeof what, "%s of type %s", i ? "an output matrix" : "token embeddings",
                     t ? t->name : "?");
            return ref_fail(err, err_len, what, hp);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ helpers */

/* y = x / sqrt(mean(x^2) + eps) * w, in double */
static void ref_rms_norm(const float *x, const float *w, float *y, int64_t n, float eps)
{
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * (double)x[i];
    const double s = 1.0 / sqrt(ss / (double)n + (double)eps);
    for (int64_t i = 0; i < n; i++) y[i] = (float)((double)x[i] * s * (double)w[i]);
}

/* row r of w (w->ne0 inputs) . x, in double: the row dequantized a few blocks at a time */
static double ref_row_dot(const qfit_wt *w, int64_t r, const float *x)
{
    const int64_t bs = qfit_type_get_traits(w->type)->block_size;
    const int64_t span = REF_MAX_BLOCK / bs * bs;   /* whole blocks, at most REF_MAX_BLOCK elements */
    const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
    float tmp[REF_MAX_BLOCK];
    double sum = 0;
    for (int64_t b = 0; b < w->ne0; b += span) {
        const int64_t len = w->ne0 - b < span ? w->ne0 - b : span;   /* whole blocks: ne0 % bs == 0 */
        qfit_rows_to_float(w->type, row + qfit_row_size(w->type, b), tmp, 1, len);
        for (int64_t i = 0; i < len; i++) sum += (double)tmp[i] * (double)x[b + i];
    }
    return sum;
}

/* y[j] = W x[j] (+ bias) (or y[j] += that with add) for the n rows of the pass, split
 * by output rows */
typedef struct {
    const qfit_wt *w;
    const float *bias;   /* NULL: none */
    const float *x;
    int64_t ldx;
    float *y;
    int64_t ldy;
    int n;
    bool add;
    int64_t rows_per_chunk;
} ref_mm;

static void ref_mm_chunk(void *arg, int chunk, int ith)
{
    (void)ith;
    const ref_mm *op = arg;
    const int64_t r0 = (int64_t)chunk * op->rows_per_chunk;
    const int64_t r1 = r0 + op->rows_per_chunk < op->w->ne1 ? r0 + op->rows_per_chunk : op->w->ne1;
    for (int j = 0; j < op->n; j++)
        for (int64_t r = r0; r < r1; r++) {
            double v = ref_row_dot(op->w, r, op->x + (size_t)j * (size_t)op->ldx);
            if (op->bias) v += op->bias[r];
            float *y = op->y + (size_t)j * (size_t)op->ldy + r;
            *y = op->add ? (float)((double)*y + v) : (float)v;
        }
}

/* The n rows of x (k floats, ldx apart) rounded as ggml's vec dot sees them for weights
 * (or cached keys) of type wtype, into out (k floats a row; out may be x when n is 1):
 * quantized to the vec-dot type by the reference quantizer and dequantized, REF_MAX_BLOCK
 * elements (whole blocks) at a time. F32: copied. */
static void ref_round_rows(int wtype, const float *x, int64_t ldx, int n, int64_t k, float *out)
{
    int vd = qfit_vec_dot_type(wtype);
    if (vd == QFIT_TYPE_Q8_1) vd = QFIT_TYPE_Q8_0;   /* the same values (see the top) */
    for (int j = 0; j < n; j++) {
        const float *src = x + (size_t)j * (size_t)ldx;
        float *dst = out + (size_t)j * (size_t)k;
        if (vd == QFIT_TYPE_F32) {
            if (dst != src) memcpy(dst, src, (size_t)k * sizeof(float));
            continue;
        }
        const int64_t bs = qfit_type_get_traits(vd)->block_size, span = REF_MAX_BLOCK / bs * bs;
        uint8_t q[REF_MAX_BLOCK * sizeof(float)];   /* span elements of any vec-dot type */
        for (int64_t b = 0; b < k; b += span) {
            const int64_t len = k - b < span ? k - b : span;
            qfit_quantize_row_ref(vd, src + b, q, len);
            qfit_rows_to_float(vd, q, dst + b, 1, len);
        }
    }
}

static void ref_matmul(qfit_context *c, const qfit_wt *w, const qfit_wt *bias, const float *x, int64_t ldx, int n,
                       float *y, int64_t ldy, bool add)
{
    /* c->aq holds n_batch rows of the widest input as floats (qfit_compute_buffer_parts) */
    float *xr = c->aq;
    ref_round_rows(w->type, x, ldx, n, w->ne0, xr);
    ref_mm op = { w, bias && bias->data ? bias->data : NULL, xr, w->ne0, y, ldy, n, add, 0 };
    const int64_t want = (int64_t)c->n_threads * 4;
    op.rows_per_chunk = (w->ne1 + want - 1) / want;
    qfit_threadpool_run_chunks(c->tp, ref_mm_chunk, &op, (int)((w->ne1 + op.rows_per_chunk - 1) / op.rows_per_chunk));
}

/* RoPE of the first n_rot dimensions of one head at position pos, in double:
 * angle_i = pos * scale * base^(-2i/n_rot) / factor_i, cos/sin times attn_factor */
static void ref_rope(const qfit_context *c, float *x, int pos)
{
    const qfit_model *m = c->model;
    const qfit_hparams *hp = &m->hp;
    const int half = hp->n_rot / 2;
    const float *ff = m->rope_freqs.data;
    const double mscale = hp->rope_attn_factor;
    for (int i = 0; i < half; i++) {
        const double theta = (double)pos * (double)hp->rope_freq_scale *
                             pow((double)hp->rope_freq_base, -2.0 * i / (double)hp->n_rot) / (ff ? ff[i] : 1.0);
        const double cs = cos(theta) * mscale, sn = sin(theta) * mscale;
        const int a = hp->rope_type == QFIT_ROPE_NEOX ? i : 2 * i;
        const int b = hp->rope_type == QFIT_ROPE_NEOX ? i + half : 2 * i + 1;
        const double x0 = x[a], x1 = x[b];
        x[a] = (float)(x0 * cs - x1 * sn);
        x[b] = (float)(x0 * sn + x1 * cs);
    }
}

/* one head's row of the cache, dequantized and (quantized caches) un-rotated */
static void ref_kv_read(const qfit_context *c, int type, bool rotated, const uint8_t *src, float *dst, int hd)
{
    qfit_rows_to_float(type, src, dst, 1, hd);
    if (rotated) qfit_hadamard64(dst, hd);   /* H is its own inverse */
}

/* ---------------------------------------------------------------- the layer */

static void ref_embed(qfit_context *c, const int32_t *tokens, int n)
{
    const qfit_wt *e = &c->model->tok_embd;
    const int64_t E = c->model->hp.n_embd;
    const double scale = c->model->hp.embd_scale;
    for (int j = 0; j < n; j++) {
        float *x = c->x + (size_t)j * (size_t)E;
        qfit_rows_to_float(e->type, (const uint8_t *)e->data + (size_t)tokens[j] * e->row_bytes, x, 1, E);
        if (scale != 1.0)
            for (int64_t i = 0; i < E; i++) x[i] = (float)((double)x[i] * scale);
    }
}

typedef struct { qfit_context *c; int il; } ref_att;

/* token j's Q/K norms, RoPE and its K/V rows into the cache */
static void ref_qkv_chunk(void *arg, int j, int ith)
{
    (void)ith;
    const ref_att *op = arg;
    qfit_context *c = op->c;
    const qfit_hparams *hp = &c->model->hp;
    const qfit_layer_w *L = &c->model->layers[op->il];
    const int hdk = hp->head_dim_k, hdv = hp->head_dim_v, s = c->tok_seq[j], pos = c->tok_pos[j];
    float *q = c->q + (size_t)j * (size_t)hp->n_head * hdk;
    float *k = c->k + (size_t)j * (size_t)hp->n_head_kv * hdk;
    const float *v = c->v + (size_t)j * (size_t)hp->n_head_kv * hdv;
    for (int h = 0; h < hp->n_head; h++) {
        float *qh = q + (size_t)h * hdk;
        if (L->q_norm.data) ref_rms_norm(qh, L->q_norm.data, qh, hdk, hp->rms_eps);
        ref_rope(c, qh, pos);
    }
    float row[REF_MAX_HEAD];
    for (int h = 0; h < hp->n_head_kv; h++) {
        float *kh = k + (size_t)h * hdk;
        if (L->k_norm.data) ref_rms_norm(kh, L->k_norm.data, kh, hdk, hp->rms_eps);
        ref_rope(c, kh, pos);
        memcpy(row, kh, (size_t)hdk * sizeof(float));
        if (c->rot_k) qfit_hadamard64(row, hdk);
        qfit_kv_store_row(c->kv.type_k, row, kv_k_at(&c->kv, op->il, s, h, pos), hdk);
        memcpy(row, v + (size_t)h * hdv, (size_t)hdv * sizeof(float));
        if (c->rot_v) qfit_hadamard64(row, hdv);
        qfit_kv_store_row(c->kv.type_v, row, kv_v_at(&c->kv, op->il, s, h, pos), hdv);
    }
}

/* chunk = j * n_head + h: softmax(scale q.K^T) V of token j's query head h over its
 * sequence's positions 0 .. its own, in double */
static void ref_head_chunk(void *arg, int chunk, int ith)
{
    (void)ith;
    const ref_att *op = arg;
    qfit_context *c = op->c;
    const qfit_hparams *hp = &c->model->hp;
    const int j = chunk / hp->n_head, h = chunk % hp->n_head, hk = h / (hp->n_head / hp->n_head_kv);
    const int hdk = hp->head_dim_k, hdv = hp->head_dim_v, s = c->tok_seq[j], pos = c->tok_pos[j];
    /* keys of a block type (q8_0, q4_0, ...) meet the query rounded to their vec-dot type,
     * as in ggml's and the CPU backend's attention (qfit/kernels.h), in the rotated space
     * the cache is stored in. Float keys meet the query as it is: ggml rounds it to f16 for
     * f16 keys, the CPU backend does not, and the rounding measured no nearer llama.cpp's
     * logits (the quantized variants' worst prompt 0.14 from them without it, 0.19 with). */
    float q[REF_MAX_HEAD];
    memcpy(q, c->q + ((size_t)j * (size_t)hp->n_head + (size_t)h) * (size_t)hdk, (size_t)hdk * sizeof(float));
    if (qfit_type_get_traits(c->kv.type_k)->quantized) {
        if (c->rot_k) qfit_hadamard64(q, hdk);
        ref_round_rows(c->kv.type_k, q, hdk, 1, hdk, q);
        if (c->rot_k) qfit_hadamard64(q, hdk);   /* back: scored against un-rotated keys */
    }
    double acc[REF_MAX_HEAD] = { 0 }, mx = -INFINITY, sum = 0;
    float kr[REF_MAX_HEAD], vr[REF_MAX_HEAD];
    for (int p = 0; p <= pos; p++) {
        ref_kv_read(c, c->kv.type_k, c->rot_k, kv_k_at(&c->kv, op->il, s, hk, p), kr, hdk);
        double sc = 0;
        for (int i = 0; i < hdk; i++) sc += (double)q[i] * (double)kr[i];
        sc *= (double)hp->attn_scale;
        if (sc > mx) {   /* a new maximum: rescale what was summed under the old one */
            const double f = exp(mx - sc);
            for (int i = 0; i < hdv; i++) acc[i] *= f;
            sum *= f;
            mx = sc;
        }
        const double w = exp(sc - mx);
        sum += w;
        ref_kv_read(c, c->kv.type_v, c->rot_v, kv_v_at(&c->kv, op->il, s, hk, p), vr, hdv);
        for (int i = 0; i < hdv; i++) acc[i] += w * (double)vr[i];
    }
    float *out = c->att + ((size_t)j * (size_t)hp->n_head + (size_t)h) * (size_t)hdv;
    for (int i = 0; i < hdv; i++) out[i] = (float)(acc[i] / sum);
}

static void ref_attention(qfit_context *c, int il, int n)
{
    const qfit_hparams *hp = &c->model->hp;
    const qfit_layer_w *L = &c->model->layers[il];
    const int64_t E = hp->n_embd;
    for (int j = 0; j < n; j++)
        ref_rms_norm(c->x + (size_t)j * E, L->attn_norm.data, c->xn + (size_t)j * E, E, hp->rms_eps);
    ref_matmul(c, &L->wq, &L->bq, c->xn, E, n, c->q, L->wq.ne1, false);
    ref_matmul(c, &L->wk, &L->bk, c->xn, E, n, c->k, L->wk.ne1, false);
    ref_matmul(c, &L->wv, &L->bv, c->xn, E, n, c->v, L->wv.ne1, false);
    ref_att op = { c, il };
    qfit_threadpool_run_chunks(c->tp, ref_qkv_chunk, &op, n);
    qfit_threadpool_run_chunks(c->tp, ref_head_chunk, &op, n * hp->n_head);
    ref_matmul(c, &L->wo, &L->bo, c->att, (int64_t)hp->n_head * hp->head_dim_v, n, c->x, E, true);
}

static void ref_ffn(qfit_context *c, int il, int n)
{
    const qfit_hparams *hp = &c->model->hp;
    const qfit_layer_w *L = &c->model->layers[il];
    const int64_t E = hp->n_embd, F = hp->n_ff;
    for (int j = 0; j < n; j++)
        ref_rms_norm(c->x + (size_t)j * E, L->ffn_norm.data, c->xn + (size_t)j * E, E, hp->rms_eps);
    ref_matmul(c, &L->w_gate, NULL, c->xn, E, n, c->gate, F, false);
    ref_matmul(c, &L->w_up, NULL, c->xn, E, n, c->up, F, false);
    for (size_t i = 0; i < (size_t)n * (size_t)F; i++) {
        const double g = c->gate[i];
        c->gate[i] = (float)(g / (1.0 + exp(-g)) * (double)c->up[i]);
    }
    ref_matmul(c, &L->w_down, NULL, c->gate, F, n, c->x, E, true);
}

static void ref_output(qfit_context *c, int from, int n)
{
    const qfit_hparams *hp = &c->model->hp;
    const int64_t E = hp->n_embd;
    const int m = n - from;
    float *dst = c->out_embd ? c->logits + (size_t)c->n_logits * (size_t)E : c->xn;
    for (int j = 0; j < m; j++)
        ref_rms_norm(c->x + (size_t)(from + j) * E, c->model->output_norm.data, dst + (size_t)j * E, E, hp->rms_eps);
    if (!c->out_embd)
        ref_matmul(c, &c->model->output, NULL, c->xn, E, m, c->logits + (size_t)c->n_logits * (size_t)hp->n_vocab,
                   hp->n_vocab, false);
    c->n_logits += m;
}

const qfit_backend qfit_backend_ref = {
    .name = "ref",
    .supports = ref_supports,
    .embed = ref_embed,
    .attention = ref_attention,
    .ffn = ref_ffn,
    .output = ref_output,
};
