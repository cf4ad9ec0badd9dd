/* Attention over the KV cache, two paths:
 *   flash (default): per (token, head) — and, when decoding a long context on more
 *     threads than heads, per KV chunk — the cached keys are scored one tile of
 *     QFIT_FA_TILE positions at a time with an online softmax (running max and sum,
 *     the accumulator rescaled when the max grows); no score row is materialized.
 *     Split chunks are merged afterwards from their (max, sum, accumulator).
 *   plain: the whole row of scores of one (token, head) is materialized in a
 *     per-thread buffer of n_ctx floats (sized by qfit_compute_buffer_bytes),
 *     softmaxed, then the values are summed with those weights.
 * Both read every cache type in place through the row kernels of the active ISA
 * (qfit_row_kernels, qfit/kernels.h: c->rk). Attention sinks (gpt-oss) join every
 * softmax: the plain path's max and sum, the flash path's (M, S, acc) once its range is
 * done or, split, once the chunks are merged (add_sink); the 8-row decode kernel then
 * always hands its (M, S, acc) to merge_split, and the 8-row prefill kernel is refused. */
#include "model/model_internal.h"

#include <math.h>
#include <string.h>

#include "qfit/kernels.h"
#include "qfit/quant.h"
#include "quant/blocks.h"

void qfit_hadamard64(float *x, int64_t n)
{
    for (int64_t c0 = 0; c0 + 64 <= n; c0 += 64) {
        float *y = x + c0;
        for (int len = 1; len < 64; len <<= 1)
            for (int i = 0; i < 64; i += 2 * len)
                for (int j = i; j < i + len; j++) {
                    const float a = y[j], b = y[j + len];
                    y[j] = a + b;
                    y[j + len] = a - b;
                }
        for (int i = 0; i < 64; i++) y[i] *= 0.125f;
    }
}

/* Positions token j of the current run sees: causal, its own and the earlier ones;
 * non-causal (encoders), every position of its sequence in this pass (c->run_n_kv). */
static inline int kv_seen(const qfit_context *c, int j)
{
    return c->model->hp.non_causal ? c->run_n_kv : c->pos0 + j + 1;
}

/* ----------------------------------------------------------- the job */

typedef struct {
    qfit_context *c;
    const qfit_row_kernels *K;
    int il, n, n_split;
    int qtype;        /* what the query is turned into for the key dot: F32 or a vec-dot type */
    float scale;
    float softcap;    /* > 0: scores become softcap * tanh(score / softcap) */
    int swa;          /* > 0: a sliding layer, a token at p sees positions (p - swa, p] */
    const float *sinks; /* attention sinks, one logit per head (NULL: none) */
    int64_t per_chunk; /* tasks per pool chunk */
} attn_job;

/* per-thread scratch: query (converted), accumulator, one dequantized V row, a tile of scores */
typedef struct { void *qv; float *acc, *vtmp, *tile; } attn_scratch;

static attn_scratch scratch_of(const qfit_context *c, int ith)
{
    const qfit_hparams *hp = &c->model->hp;
    uint8_t *s = c->scratch + (size_t)ith * c->scratch_stride;
    const size_t qb = (((size_t)hp->head_dim_k * 4 + 64) + 63) & ~(size_t)63;
    const size_t vb = (((size_t)hp->head_dim_v * 4) + 63) & ~(size_t)63;
    attn_scratch r;
    r.qv = s;
    r.acc = (float *)(s + qb);
    r.vtmp = (float *)(s + qb + vb);
    r.tile = (float *)(s + qb + 2 * vb);
    return r;
}

/* first cached position a token at pos sees */
static inline int kv_first(const attn_job *J, int pos)
{
    return J->swa > 0 && pos - J->swa + 1 > 0 ? pos - J->swa + 1 : 0;
}

/* out[i] = scale * q · K[p0 + i], i < np (soft-capped when the model says so);
 * krow0 = this head's slice of position 0 */
static void key_scores(const attn_job *J, const uint8_t *krow0, const void *qv, int p0, int np, float *out)
{
    const qfit_kv_cache *kv = &J->c->kv;
    const int hdk = J->c->model->hp.head_dim_k;
    const size_t rs = kv->head_k;
    const uint8_t *k = krow0 + (size_t)p0 * rs;
    const float sc = J->scale;
    switch (kv->type_k) {
    case QFIT_TYPE_F32:
        for (int i = 0; i < np; i++) out[i] = J->K->dot_f32(qv, (const float *)(k + (size_t)i * rs), hdk) * sc;
        break;
    case QFIT_TYPE_F16:
        for (int i = 0; i < np; i++) out[i] = J->K->dot_f16(qv, (const uint16_t *)(k + (size_t)i * rs), hdk) * sc;
        break;
    case QFIT_TYPE_Q8_0:
        for (int i = 0; i < np; i++) out[i] = J->K->dot_q8_0(qv, k + (size_t)i * rs, hdk) * sc;
        break;
    case QFIT_TYPE_Q4_0:
        for (int i = 0; i < np; i++) out[i] = J->K->dot_q4_0(qv, k + (size_t)i * rs, hdk) * sc;
        break;
    default:   /* bf16, q4_1, q5_0, q5_1, iq4_nl: the kernels' dot on the query in the vec-dot type */
        for (int i = 0; i < np; i++) out[i] = qfit_vec_dot(kv->type_k, hdk, k + (size_t)i * rs, qv) * sc;
        break;
    }
    if (J->softcap > 0) {   /* Gemma 2 (llama.cpp: scale by 1/cap, tanh, scale by cap) */
        const float cap = J->softcap, inv = 1.0f / cap;
        for (int i = 0; i < np; i++) out[i] = tanhf(out[i] * inv) * cap;
    }
}

/* acc += w * V[p] */
static inline void value_mad(const attn_job *J, const uint8_t *vrow0, int p, float w, float *acc, float *vtmp)
{
    const qfit_kv_cache *kv = &J->c->kv;
    const int hdv = J->c->model->hp.head_dim_v;
    const uint8_t *v = vrow0 + (size_t)p * kv->head_v;
    switch (kv->type_v) {
    case QFIT_TYPE_F32: J->K->mad_f32(acc, (const float *)v, w, hdv); break;
    case QFIT_TYPE_F16: J->K->mad_f16(acc, (const uint16_t *)v, w, hdv); break;
    case QFIT_TYPE_Q8_0: J->K->mad_q8_0(acc, v, w, hdv); break;
    case QFIT_TYPE_Q4_0: J->K->mad_q4_0(acc, v, w, hdv); break;
    default:   /* one row of one head, dequantized into scratch */
        qfit_rows_to_float(kv->type_v, v, vtmp, 1, hdv);
        J->K->mad_f32(acc, vtmp, w, hdv);
        break;
    }
}

static void prepare_query(const attn_job *J, const float *q, attn_scratch *s)
{
    const int hdk = J->c->model->hp.head_dim_k;
    if (J->qtype == QFIT_TYPE_F32) memcpy(s->qv, q, (size_t)hdk * sizeof(float));
    else qfit_quantize_activations(J->qtype, q, s->qv, hdk);
}

/* flash: positions [p0, p1) of one (token, head); returns max and sum, acc unnormalized */
static void flash_range(const attn_job *J, const uint8_t *kh, const uint8_t *vh, int p0, int p1,
                        attn_scratch *s, float *M_out, float *S_out)
{
    const int hdv = J->c->model->hp.head_dim_v;
    float M = -INFINITY, S = 0.0f;
    memset(s->acc, 0, (size_t)hdv * sizeof(float));
    for (int t0 = p0; t0 < p1; t0 += QFIT_FA_TILE) {
        const int nt = p1 - t0 < QFIT_FA_TILE ? p1 - t0 : QFIT_FA_TILE;
        key_scores(J, kh, s->qv, t0, nt, s->tile);
        float mt = s->tile[0];
        for (int i = 1; i < nt; i++) if (s->tile[i] > mt) mt = s->tile[i];
        if (mt > M) {
            if (S > 0.0f) {
                const float r = expf(M - mt);
                J->K->scale(s->acc, r, hdv);
                S *= r;
            }
            M = mt;
        }
        J->K->exp_sub(s->tile, M, nt);
        for (int i = 0; i < nt; i++) {
            const float w = s->tile[i];
            S += w;
            value_mad(J, vh, t0 + i, w, s->acc, s->vtmp);
        }
    }
    *M_out = M;
    *S_out = S;
}

/* The attention sink of a head (gpt-oss): a logit s that joins the softmax's denominator
 * and contributes no value. Folded into an online softmax's (M, S, acc) as ggml's flash
 * attention does: S gains exp(s - M), or, when s exceeds M, acc and S are rescaled to s
 * first. */
static void add_sink(float sink, float M, float *S, float *acc, int hdv, const qfit_row_kernels *K)
{
    if (sink > M) {
        const float ms = expf(M - sink);
        K->scale(acc, ms, hdv);
        *S = *S * ms + 1.0f;
    } else {
        *S += expf(sink - M);
    }
}

static void chunk_flash(void *arg, int chunk, int ith)
{
    const attn_job *J = arg;
    qfit_context *c = J->c;
    const qfit_hparams *hp = &c->model->hp;
    const qfit_kv_cache *kv = &c->kv;
    const int hdk = hp->head_dim_k, hdv = hp->head_dim_v, gqa = hp->n_head / hp->n_head_kv;
    /* cells from the first position the layer holds (kb: a sliding layer's base) */
    const int kb = kv_base(kv, J->il, c->run_seq);
    attn_scratch s = scratch_of(c, ith);
    const int64_t n_tasks = (int64_t)J->n * hp->n_head * J->n_split;
    const int64_t t0 = (int64_t)chunk * J->per_chunk;
    const int64_t t1 = t0 + J->per_chunk < n_tasks ? t0 + J->per_chunk : n_tasks;
    int last_q = -1;   /* (token, head) whose query is in s.qv */
    for (int64_t t = t0; t < t1; t++) {
        const int sp = (int)(t % J->n_split);
        const int h = (int)(t / J->n_split % hp->n_head);
        const int j = (int)(t / J->n_split / hp->n_head);
        const int hk = h / gqa, pos = c->pos0 + j, n_kv = kv_seen(c, j), lo = kv_first(J, pos);
        const int qid = j * hp->n_head + h;
        if (qid != last_q) {
            prepare_query(J, c->q + (size_t)j * hp->n_head * hdk + (size_t)h * hdk, &s);
            last_q = qid;
        }
        const int chunk_len = (n_kv - lo + J->n_split - 1) / J->n_split;
        const int p0 = lo + sp * chunk_len, p1 = p0 + chunk_len < n_kv ? p0 + chunk_len : n_kv;
        const uint8_t *kh = kv_k_at(kv, J->il, c->run_seq, hk, kb);
        const uint8_t *vh = kv_v_at(kv, J->il, c->run_seq, hk, kb);
        float M = -INFINITY, S = 0.0f;
        if (p0 < p1) flash_range(J, kh, vh, p0 - kb, p1 - kb, &s, &M, &S);
        else memset(s.acc, 0, (size_t)hdv * sizeof(float));
        if (J->n_split == 1) {
            float *out = c->att + (size_t)j * hp->n_head * hdv + (size_t)h * hdv;
            if (J->sinks) add_sink(J->sinks[h], M, &S, s.acc, hdv, J->K);
            const float inv = 1.0f / S;
            for (int d = 0; d < hdv; d++) out[d] = s.acc[d] * inv;
            if (c->rot_v) qfit_hadamard64(out, hdv);
        } else {
            float *part = c->attn_part + ((size_t)h * QFIT_ATTN_MAX_SPLIT + (size_t)sp) * (size_t)(hdv + 2);
            part[0] = M;
            part[1] = S;
            memcpy(part + 2, s.acc, (size_t)hdv * sizeof(float));
        }
    }
}

/* split decode: merge the chunks of each head (one token) */
static void merge_split(const attn_job *J)
{
    qfit_context *c = J->c;
    const qfit_hparams *hp = &c->model->hp;
    const int hdv = hp->head_dim_v;
    for (int h = 0; h < hp->n_head; h++) {
        const float *part = c->attn_part + (size_t)h * QFIT_ATTN_MAX_SPLIT * (size_t)(hdv + 2);
        float M = -INFINITY;
        for (int sp = 0; sp < J->n_split; sp++) {
            const float *p = part + (size_t)sp * (hdv + 2);
            if (p[1] > 0.0f && p[0] > M) M = p[0];
        }
        float *out = c->att + (size_t)h * hdv;
        memset(out, 0, (size_t)hdv * sizeof(float));
        float S = 0.0f;
        for (int sp = 0; sp < J->n_split; sp++) {
            const float *p = part + (size_t)sp * (hdv + 2);
            if (!(p[1] > 0.0f)) continue;
            const float r = expf(p[0] - M);
            S += p[1] * r;
            for (int d = 0; d < hdv; d++) out[d] += p[2 + d] * r;
        }
        if (J->sinks) add_sink(J->sinks[h], M, &S, out, hdv, J->K);
        const float inv = 1.0f / S;
        for (int d = 0; d < hdv; d++) out[d] *= inv;
        if (c->rot_v) qfit_hadamard64(out, hdv);
    }
}

static void chunk_plain(void *arg, int chunk, int ith)
{
    const attn_job *J = arg;
    qfit_context *c = J->c;
    const qfit_hparams *hp = &c->model->hp;
    const qfit_kv_cache *kv = &c->kv;
    const int hdk = hp->head_dim_k, hdv = hp->head_dim_v, gqa = hp->n_head / hp->n_head_kv;
    const int kb = kv_base(kv, J->il, c->run_seq);
    attn_scratch s = scratch_of(c, ith);
    float *sc = c->scores + (size_t)ith * c->score_stride;
    const int64_t n_tasks = (int64_t)J->n * hp->n_head;
    const int64_t ta = (int64_t)chunk * J->per_chunk, tb = ta + J->per_chunk < n_tasks ? ta + J->per_chunk : n_tasks;
    for (int64_t t = ta; t < tb; t++) {
        const int j = (int)(t / hp->n_head), h = (int)(t % hp->n_head), hk = h / gqa;
        const int n_kv = kv_seen(c, j), lo = kv_first(J, c->pos0 + j);
        prepare_query(J, c->q + (size_t)j * hp->n_head * hdk + (size_t)h * hdk, &s);
        const uint8_t *kh = kv_k_at(kv, J->il, c->run_seq, hk, kb);
        const uint8_t *vh = kv_v_at(kv, J->il, c->run_seq, hk, kb);
        key_scores(J, kh, s.qv, lo - kb, n_kv - lo, sc);   /* sc[i]: position lo + i */
        const int np = n_kv - lo;
        float M = sc[0];
        for (int p = 1; p < np; p++) if (sc[p] > M) M = sc[p];
        if (J->sinks && J->sinks[h] > M) M = J->sinks[h];   /* the sink joins the softmax (ggml's soft_max) */
        double sum = 0.0;
        for (int p = 0; p < np; p++) { sc[p] = expf(sc[p] - M); sum += sc[p]; }
        if (J->sinks) sum += expf(J->sinks[h] - M);
        const float inv = (float)(1.0 / sum);
        float *out = c->att + (size_t)j * hp->n_head * hdv + (size_t)h * hdv;
        memset(out, 0, (size_t)hdv * sizeof(float));
        for (int p = 0; p < np; p++) value_mad(J, vh, lo - kb + p, sc[p] * inv, out, s.vtmp);
        if (c->rot_v) qfit_hadamard64(out, hdv);
    }
}

/* prefill, f16/q8_0/q4_0 K/V, an ISA with a rows8 kernel: blocks of 8 query rows
 * (token, head) sharing a KV head. The kernel computes for each row what flash_range
 * computes for it, bit for bit (qfit/kernels.h), so it tiles the positions as it does. */
_Static_assert(QFIT_FA_TILE == QFIT_ATTN_ROWS8_TILE, "the 8-row kernel tiles the positions as flash_range");
typedef struct {
    qfit_context *c;
    int il, n, nblk, gqa;
    float scale;
    size_t per_thread;   /* floats of c->gate per thread */
} rows8_job;

/* the 8-row kernel handles this context's cache and head shapes */
static bool rows8_ok(const qfit_context *c)
{
    const qfit_hparams *hp = &c->model->hp;
    const int tk = c->kv.type_k, tv = c->kv.type_v;
    const bool types = (tk == QFIT_TYPE_F16 || tk == QFIT_TYPE_Q8_0 || tk == QFIT_TYPE_Q4_0) &&
                       (tv == QFIT_TYPE_F16 || tv == QFIT_TYPE_Q8_0 || tv == QFIT_TYPE_Q4_0);
    /* f16 rows in steps of 8 floats, block rows in whole blocks of 32 */
    return c->rk->rows8 && types && hp->head_dim_k % (tk == QFIT_TYPE_F16 ? 8 : 32) == 0 &&
           hp->head_dim_v % (tv == QFIT_TYPE_F16 ? 8 : 32) == 0 && hp->n_head % hp->n_head_kv == 0;
}

/* Per-thread scratch of the 8-row kernel: its own, 8 dummy output rows, 8 query
 * rows and one query in blocks. */
static size_t rows8_per_thread(const qfit_hparams *hp)
{
    const size_t hdk = (size_t)hp->head_dim_k, hdv = (size_t)hp->head_dim_v;
    return (QFIT_ATTN_ROWS8_SCRATCH(hdk, hdv) + 8 * hdv + 9 * hdk + 15) / 16 * 16;
}

/* Block-type keys: the 8 queries as the per-row paths see them — quantized to the
 * key's vec-dot type (q8_0) — and expanded back: the kernel recovers each block's
 * scale and integers exactly and scores them as the per-row dot_q8_0 / dot_q4_0 do. */
static void rows8_queries(const qfit_context *c, const float **qp, float *scr)
{
    const qfit_hparams *hp = &c->model->hp;
    const int tk = c->kv.type_k, hdk = hp->head_dim_k;
    if (tk == QFIT_TYPE_F16 || tk == QFIT_TYPE_F32) return;
    const int vt = qfit_vec_dot_type(tk);
    float *qbuf = scr + QFIT_ATTN_ROWS8_SCRATCH(hdk, hp->head_dim_v) + 8 * (size_t)hp->head_dim_v;
    void *blk = qbuf + 8 * (size_t)hdk;
    for (int r = 0; r < 8; r++) {
        float *dst = qbuf + (size_t)r * hdk;
        qfit_quantize_activations(vt, qp[r], blk, hdk);
        qfit_rows_to_float(vt, blk, dst, 1, hdk);
        qp[r] = dst;
    }
}

static void chunk_rows8(void *arg, int chunk, int ith)
{
    const rows8_job *R = arg;
    qfit_context *c = R->c;
    const qfit_hparams *hp = &c->model->hp;
    const qfit_kv_cache *kv = &c->kv;
    const int hdk = hp->head_dim_k, hdv = hp->head_dim_v;
    const int hk = chunk % hp->n_head_kv, b = R->nblk - 1 - chunk / hp->n_head_kv;   /* longest rows first */
    float *scr = c->gate + (size_t)ith * R->per_thread;
    float *dummy = scr + QFIT_ATTN_ROWS8_SCRATCH(hdk, hdv);
    const float *qp[8];
    float *op[8];
    int npos[8];
    const int nrows = R->n * R->gqa;
    for (int r = 0; r < 8; r++) {
        int ri = b * 8 + r;
        const int real = ri < nrows;
        if (!real) ri = b * 8;   /* padding: a copy of the block's first row, output discarded */
        const int j = ri / R->gqa, h = hk * R->gqa + ri % R->gqa;
        qp[r] = c->q + (size_t)j * hp->n_head * hdk + (size_t)h * hdk;
        op[r] = real ? c->att + (size_t)j * hp->n_head * hdv + (size_t)h * hdv : dummy + (size_t)r * hdv;
        npos[r] = kv_seen(c, j);
    }
    /* never a sliding layer (try_rows8): position 0 is in the layer's first cell */
    const uint8_t *kh = kv_k_at(kv, R->il, c->run_seq, hk, 0);
    const uint8_t *vh = kv_v_at(kv, R->il, c->run_seq, hk, 0);
    rows8_queries(c, qp, scr);
    c->rk->rows8(kv->type_k, kv->type_v, hdk, hdv, 8, qp, 0, npos, R->scale, kh, kv->head_k, vh, kv->head_v, op,
                         NULL, scr);
    if (c->rot_v)
        for (int r = 0; r < 8; r++)
            if (b * 8 + r < nrows) qfit_hadamard64(op[r], hdv);
}

/* decode (one token), the cache types of rows8_ok: the query heads sharing a
 * KV head (up to 8 at a time) read each cached K/V row once, instead of once per head. Task =
 * (KV head, group of 8 query heads, KV chunk); with several chunks the partials go
 * to c->attn_part for merge_split. */
typedef qfit_dec8_job dec8_job;

static void chunk_dec8(void *arg, int task, int ith)
{
    const dec8_job *D = arg;
    qfit_context *c = D->c;
    const qfit_hparams *hp = &c->model->hp;
    const qfit_kv_cache *kv = &c->kv;
    const int hdk = hp->head_dim_k, hdv = hp->head_dim_v;
    const int sp = task % D->n_split, g = task / D->n_split % D->ngrp, hk = task / D->n_split / D->ngrp;
    const int n_kv = kv_seen(c, 0), h0 = hk * D->gqa + g * 8;
    const int nrows = D->gqa - g * 8 < 8 ? D->gqa - g * 8 : 8;
    const int len = (n_kv - D->lo + D->n_split - 1) / D->n_split;
    const int p0 = D->lo + sp * len, p1 = p0 + len < n_kv ? p0 + len : n_kv;
    float *scr = c->gate + (size_t)ith * D->per_thread;
    float *dummy = scr + QFIT_ATTN_ROWS8_SCRATCH(hdk, hdv);
    const float *qp[8];
    float *op[8];
    int npos[8];
    float ml[16];
    for (int r = 0; r < 8; r++) {
        const int h = h0 + (r < nrows ? r : 0);
        qp[r] = c->q + (size_t)h * hdk;
        npos[r] = p1;
        if (r >= nrows) op[r] = dummy + (size_t)r * hdv;
        else if (!D->parts) op[r] = c->att + (size_t)h * hdv;
        else op[r] = c->attn_part + ((size_t)h * QFIT_ATTN_MAX_SPLIT + (size_t)sp) * (size_t)(hdv + 2) + 2;
    }
    if (p0 >= p1) {   /* an empty chunk of a split (ceil(n_kv / n_split) * sp >= n_kv) */
        for (int r = 0; r < nrows; r++) {
            op[r][-2] = -INFINITY;
            op[r][-1] = 0.0f;
            memset(op[r], 0, (size_t)hdv * sizeof(float));
        }
        return;
    }
    const int kb = kv_base(kv, D->il, c->run_seq);
    const uint8_t *kh = kv_k_at(kv, D->il, c->run_seq, hk, kb);
    const uint8_t *vh = kv_v_at(kv, D->il, c->run_seq, hk, kb);
    for (int r = 0; r < 8; r++) npos[r] -= kb;
    rows8_queries(c, qp, scr);
    c->rk->rows8(kv->type_k, kv->type_v, hdk, hdv, nrows, qp, p0 - kb, npos, D->scale, kh, kv->head_k, vh, kv->head_v,
                         op, D->parts ? ml : NULL, scr);
    if (D->parts) {   /* merge_split rotates the merged output back */
        for (int r = 0; r < nrows; r++) {
            op[r][-2] = ml[2 * r];
            op[r][-1] = ml[2 * r + 1];
        }
    } else if (c->rot_v) {
        for (int r = 0; r < nrows; r++) qfit_hadamard64(op[r], hdv);
    }
}

/* the decode job of the 8-row kernel for layer il (c->pos0 / run_seq / run_n_kv set),
 * or false when that path does not take it */
static bool dec8_setup(qfit_context *c, int il, const attn_job *J, dec8_job *D)
{
    const qfit_hparams *hp = &c->model->hp;
    if (!rows8_ok(c) || J->softcap > 0) return false;   /* the kernel has no soft-capping */
    D->c = c;
    D->il = il;
    D->lo = kv_first(J, c->pos0);
    D->gqa = hp->n_head / hp->n_head_kv;
    D->ngrp = (D->gqa + 7) / 8;
    D->scale = J->scale;
    D->per_thread = rows8_per_thread(hp);
    if ((size_t)c->n_threads * D->per_thread > (size_t)c->n_batch * (size_t)hp->n_ff) return false;
    /* KV chunks: enough tasks for every thread to get several, none shorter than
     * QFIT_ATTN_MIN_CHUNK positions */
    const int base = hp->n_head_kv * D->ngrp, n_kv = kv_seen(c, 0) - D->lo;
    int ns = (4 * c->n_threads + base - 1) / base;
    if (ns > n_kv / QFIT_ATTN_MIN_CHUNK) ns = n_kv / QFIT_ATTN_MIN_CHUNK;
    if (ns > QFIT_ATTN_MAX_SPLIT) ns = QFIT_ATTN_MAX_SPLIT;
    D->n_split = ns > 1 ? ns : 1;
    D->parts = D->n_split > 1 || J->sinks;   /* merge_split folds the sinks in */
    return true;
}

/* true when it ran the pass */
static bool try_dec8(qfit_context *c, int il, attn_job *J)
{
    const qfit_hparams *hp = &c->model->hp;
    dec8_job D;
    if (!dec8_setup(c, il, J, &D)) return false;
    J->n_split = D.n_split;
    qfit_threadpool_run_chunks(c->tp, chunk_dec8, &D, hp->n_head_kv * D.ngrp * D.n_split);
    if (D.parts) merge_split(J);
    return true;
}

/* true when it ran the pass */
static bool try_rows8(qfit_context *c, int il, int n, const attn_job *J)
{
    const qfit_hparams *hp = &c->model->hp;
    /* the kernel's rows all start at position 0, without soft-capping or sinks */
    if (n < 2 || !rows8_ok(c) || J->swa > 0 || J->softcap > 0 || J->sinks) return false;
    rows8_job R;
    R.c = c;
    R.il = il;
    R.n = n;
    R.gqa = hp->n_head / hp->n_head_kv;
    R.nblk = (n * R.gqa + 7) / 8;
    R.scale = J->scale;
    /* per-thread scratch in the FFN gate buffer (unused during attention) */
    R.per_thread = rows8_per_thread(hp);
    if ((size_t)c->n_threads * R.per_thread > (size_t)c->n_batch * (size_t)hp->n_ff) return false;
    qfit_threadpool_run_chunks(c->tp, chunk_rows8, &R, R.nblk * hp->n_head_kv);
    return true;
}

static void job_init(qfit_context *c, int il, int n, attn_job *J)
{
    const qfit_hparams *hp = &c->model->hp;
    memset(J, 0, sizeof *J);
    J->c = c;
    J->il = il;
    J->n = n;
    J->n_split = 1;
    J->scale = hp->attn_scale;
    const qfit_layer_recipe *R = &c->model->recipes[il];
    J->softcap = R->softcap;
    J->swa = R->window;
    J->sinks = R->sinks ? c->model->layers[il].attn_sinks.data : NULL;
    J->K = c->rk;
    switch (c->kv.type_k) {
    case QFIT_TYPE_F32: case QFIT_TYPE_F16: J->qtype = QFIT_TYPE_F32; break;
    default: J->qtype = qfit_vec_dot_type(c->kv.type_k); break;
    }
}

bool qfit_attention_dec8_plan(qfit_context *c, int il, qfit_dec8_job *D)
{
    if (!c->flash_attn || c->model->hp.non_causal) return false;
    /* the single token of the pass (qfit_attention_run's run of one) */
    c->pos0 = c->tok_pos[0];
    c->run_seq = c->tok_seq[0];
    c->run_n_kv = c->seq_past[c->run_seq];
    attn_job J;
    job_init(c, il, 1, &J);
    return dec8_setup(c, il, &J, D) && D->n_split == 1 && !D->parts && D->ngrp == 1;
}

void qfit_attention_dec8_task(const qfit_dec8_job *D, int hk, int ith) { chunk_dec8((void *)D, hk, ith); }

static void attention_run1(qfit_context *c, int il, int n)
{
    const qfit_hparams *hp = &c->model->hp;
    attn_job J;
    job_init(c, il, n, &J);
    if (c->flash_attn && try_rows8(c, il, n, &J)) return;
    if (!c->flash_attn) {
        const int64_t nt = (int64_t)n * hp->n_head;
        J.per_chunk = (nt + 4 * c->n_threads - 1) / (4 * c->n_threads);
        if (J.per_chunk < 1) J.per_chunk = 1;
        qfit_threadpool_run_chunks(c->tp, chunk_plain, &J, (int)((nt + J.per_chunk - 1) / J.per_chunk));
        return;
    }
    if (n == 1 && try_dec8(c, il, &J)) return;
    if (n == 1) {
        /* decode: when the heads alone do not give every thread several tasks,
         * split each head's KV range into chunks of at least QFIT_ATTN_MIN_CHUNK */
        const int nth = c->n_threads, n_kv = kv_seen(c, 0) - kv_first(&J, c->pos0);
        int want = (4 * nth + hp->n_head - 1) / hp->n_head;
        int by_len = n_kv / QFIT_ATTN_MIN_CHUNK;
        int ns = want < by_len ? want : by_len;
        if (ns > QFIT_ATTN_MAX_SPLIT) ns = QFIT_ATTN_MAX_SPLIT;
        J.n_split = ns > 1 ? ns : 1;
    }
    {
        const int64_t nt = (int64_t)n * hp->n_head * J.n_split;
        J.per_chunk = (nt + 8 * c->n_threads - 1) / (8 * c->n_threads);
        if (J.per_chunk < 1) J.per_chunk = 1;
        qfit_threadpool_run_chunks(c->tp, chunk_flash, &J, (int)((nt + J.per_chunk - 1) / J.per_chunk));
    }
    if (J.n_split > 1) merge_split(&J);
}

void qfit_attention_run(qfit_context *c, int il, int n)
{
    const qfit_hparams *hp = &c->model->hp;
    float *q = c->q, *att = c->att;
    for (int j = 0; j < n;) {   /* runs of one sequence at consecutive positions */
        int e = j + 1;
        while (e < n && c->tok_seq[e] == c->tok_seq[j] && c->tok_pos[e] == c->tok_pos[e - 1] + 1) e++;
        c->pos0 = c->tok_pos[j];
        c->run_seq = c->tok_seq[j];
        c->run_n_kv = c->seq_past[c->run_seq];   /* the pass's positions are assigned before its layers run */
        c->q = q + (size_t)j * hp->n_head * hp->head_dim_k;
        c->att = att + (size_t)j * hp->n_head * hp->head_dim_v;
        attention_run1(c, il, e - j);
        j = e;
    }
    c->q = q;
    c->att = att;
}
