/* The encoder layer on the CPU (bert, nomic-bert: qfit_arch_info.post_norm), llama.cpp's
 * llm_build_bert:
 *   embed:     x = token_embd[t] + token_types[0] + position_embd[pos] (those the model
 *              has), then the embeddings' LayerNorm (token_embd_norm)
 *   attention: x = norm(x + attn_output(Attention(x)) + bo)  (attn_output_norm)
 *   ffn:       x = norm(x + FFN(x))                           (layer_output_norm)
 *              FFN = down(gelu(up x + b_up)) + b_down, or down(silu(gate x) * up x)
 *   output:    the rows of x as they are (the last layer's norm is the final one)
 * The attention itself (Q/K/V, biases, RoPE, the cache, bidirectional softmax through
 * qfit_attention_run with hp.non_causal) is backend_cpu.c's; what differs is here, read
 * from the descriptor (norm kind, FFN activation) and from which tensors the model has. */
#include "model/model_internal.h"
#include "model/arch.h"

#include <math.h>
#include <string.h>

#include "qfit/quant.h"

/* ------------------------------------------------------------ norms */

/* In place: x = norm(x) * w + b (b may be NULL), ggml's ggml_norm / ggml_rms_norm
 * arithmetic (sums in double). */
static void norm_row(qfit_norm_kind kind, float *x, const float *w, const float *b, int64_t n, float eps)
{
    float scale;
    if (kind == QFIT_NORM_LAYER) {
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++) sum += (double)x[i];
        const float mean = (float)(sum / (double)n);
        double sum2 = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const float v = x[i] - mean;
            x[i] = v;
            sum2 += (double)(v * v);
        }
        scale = 1.0f / sqrtf((float)(sum2 / (double)n) + eps);
    } else {
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
        scale = 1.0f / sqrtf((float)(sum / (double)n) + eps);
    }
    for (int64_t i = 0; i < n; i++) x[i] = (x[i] * scale) * w[i];
    if (b)
        for (int64_t i = 0; i < n; i++) x[i] += b[i];
}

/* ------------------------------------------------- row-parallel steps */

enum { STEP_EMBED_NORM, STEP_ATTN_OUT, STEP_FFN_ACT, STEP_FFN_OUT };

typedef struct {
    qfit_context *c;
    int il, n, step;
    int64_t cs;   /* rows per chunk */
} row_op;

static void chunk_rows(void *arg, int chunk, int ith)
{
    (void)ith;
    const row_op *op = arg;
    qfit_context *c = op->c;
    const qfit_hparams *hp = &c->model->hp;
    const qfit_arch_info *ai = &qfit_arch_desc_of(hp->arch)->info;
    const qfit_norm_kind kind = ai->norm;
    const qfit_layer_w *L = op->il >= 0 ? &c->model->layers[op->il] : NULL;
    const int64_t E = hp->n_embd, F = hp->n_ff;
    const int64_t j0 = (int64_t)chunk * op->cs, j1 = j0 + op->cs < op->n ? j0 + op->cs : op->n;
    for (int64_t j = j0; j < j1; j++) {
        float *x = c->x + j * E;
        switch (op->step) {
        case STEP_EMBED_NORM:
            norm_row(kind, x, c->model->tok_norm.data, c->model->tok_norm_b.data, E, hp->norm_eps);
            break;
        case STEP_ATTN_OUT:   /* x already holds x + (attn_output(att) + bo) (qfit_cpu_attention) */
            norm_row(kind, x, L->attn_out_norm.data, L->attn_out_norm_b.data, E, hp->norm_eps);
            break;
        case STEP_FFN_ACT:
            if (c->model->recipes[op->il].act == QFIT_FFN_GELU) {
                float *u = c->up + j * F;
                if (L->b_up.data) { const float *b = L->b_up.data; for (int64_t i = 0; i < F; i++) u[i] += b[i]; }
                c->rk->gelu(u, F);   /* ggml's CPU GELU (qfit_row_kernels.gelu) */
            } else {
                c->rk->swiglu(c->gate + j * F, c->up + j * F, F);
            }
            break;
        case STEP_FFN_OUT: {   /* c->xn holds down(h) */
            const float *y = c->xn + j * E, *b = L->b_down.data;
            if (b) for (int64_t i = 0; i < E; i++) x[i] += y[i] + b[i];
            else for (int64_t i = 0; i < E; i++) x[i] += y[i];
            norm_row(kind, x, L->layer_out_norm.data, L->layer_out_norm_b.data, E, hp->norm_eps);
            break;
        }
        }
    }
}

static void run_rows(qfit_context *c, int il, int n, int step)
{
    row_op op = { c, il, n, step, 0 };
    const int64_t want = 4 * (int64_t)c->n_threads;
    op.cs = (n + want - 1) / want;
    if (op.cs < 1) op.cs = 1;
    qfit_threadpool_run_chunks(c->tp, chunk_rows, &op, (int)((n + op.cs - 1) / op.cs));
}

/* ------------------------------------------------------------ the ops */

static void enc_embed(qfit_context *c, const int32_t *tokens, int n)
{
    const qfit_model *m = c->model;
    const int64_t E = m->hp.n_embd;
    float *tmp = c->xn;   /* one row of scratch */
    for (int j = 0; j < n; j++) {
        float *x = c->x + (size_t)j * E;
        qfit_rows_to_float(m->tok_embd.type, (const uint8_t *)m->tok_embd.data + (size_t)tokens[j] * m->tok_embd.row_bytes,
                           x, 1, E);
        if (m->tok_types.data) {   /* token type 0 ("sentence A") for every token, as llama.cpp */
            qfit_rows_to_float(m->tok_types.type, m->tok_types.data, tmp, 1, E);
            for (int64_t i = 0; i < E; i++) x[i] += tmp[i];
        }
        if (m->pos_embd.data) {
            qfit_rows_to_float(m->pos_embd.type,
                               (const uint8_t *)m->pos_embd.data + (size_t)c->tok_pos[j] * m->pos_embd.row_bytes, tmp,
                               1, E);
            for (int64_t i = 0; i < E; i++) x[i] += tmp[i];
        }
    }
    run_rows(c, -1, n, STEP_EMBED_NORM);
}

static void enc_attention(qfit_context *c, int il, int n)
{
    qfit_cpu_attention(c, il, n);
    run_rows(c, il, n, STEP_ATTN_OUT);
}

static void enc_ffn(qfit_context *c, int il, int n)
{
    const qfit_hparams *hp = &c->model->hp;
    const qfit_layer_w *L = &c->model->layers[il];
    const int64_t E = hp->n_embd, F = hp->n_ff;
    const bool gelu = c->model->recipes[il].act == QFIT_FFN_GELU;
    float *h = gelu ? c->up : c->gate;   /* the activated rows, the down projection's input */
    if (!gelu) qfit_cpu_matmul(c, il, "ffn_gate.weight", &L->w_gate, c->x, E, n, c->gate, F);
    qfit_cpu_matmul(c, il, "ffn_up.weight", &L->w_up, c->x, E, n, c->up, F);
    run_rows(c, il, n, STEP_FFN_ACT);
    qfit_cpu_matmul(c, il, "ffn_down.weight", &L->w_down, h, F, n, c->xn, E);
    run_rows(c, il, n, STEP_FFN_OUT);
}

static void enc_output(qfit_context *c, int from, int n)
{
    const int64_t E = c->model->hp.n_embd;
    memcpy(c->logits + (size_t)c->n_logits * E, c->x + (size_t)from * E, (size_t)(n - from) * E * sizeof(float));
    c->n_logits += n - from;
}

const qfit_backend qfit_backend_cpu_encoder = {
    .name = "cpu-encoder",
    .embed = enc_embed,
    .attention = enc_attention,
    .ffn = enc_ffn,
    .output = enc_output,
};
