/* The Vulkan backend (devices "vulkan0", "vulkan1", ...): the decoder layer composed from
 * the ops of qfit/vulkan.h, with the weights, the activations and the KV cache of its
 * layers in the device's memory.
 *
 * - Layer offload as llama.cpp's -ngl (qfit_context_params.n_gpu_layers): the last N layers
 *   run here, the first ones on the CPU backend (qfit_backend_cpu, with the context's host
 *   cache), and the output layer here when N > n_layer; -1: all. The residual stream is
 *   handed across where a layer of the other side comes next (read back or uploaded).
 * - At context creation the weights of the offloaded layers are uploaded to the device (per
 *   context: two contexts of one model hold two copies), with the context's RoPE table (so
 *   frequency factors, linear scaling, YaRN and LongRoPE are the CPU's); on a device whose
 *   memory is the host's (QFIT_VK_FEAT_IMPORT) the matrices are read in place from the
 *   model's mapping instead (import_weight: no copy, shared by the contexts).
 * - Token embeddings are looked up on the host (any type) and the rows uploaded; logits
 *   (or the final-normed rows in embeddings mode) are read back.
 * - A layer's attention, its FFN, and the output each run as one batch (qfit_vk_batch_begin:
 *   one command buffer, barriers between the ops, one wait).
 * - The KV cache of the offloaded layers: f16, q8_0 or q4_0, K and V each (the context's
 *   types; quantized rows Hadamard-rotated when the context rotates them, keys of a block
 *   type meeting the query rounded to q8_0: the CPU backend's arithmetic), laid out as the
 *   CPU context's (per layer K then V; in each, sequence after sequence, KV head after KV
 *   head, n_ctx positions in order). Several sequences per context, and passes mixing
 *   them: each token's position and sequence go to the device in a table (uploaded once a
 *   pass), and each token attends to its own sequence's positions. qfit_seq_copy copies
 *   the cells on the device (vk_seq_copy); the context shift moves the sequence's cells to
 *   the host cache, shifts them there as the CPU does, and uploads them (vk_kv_sync).
 * What it runs: the llama-family layer the reference backend runs, without Q/K/V biases,
 * matrices of the types qfit_vk_matmul takes, head dimensions up to 256; cache types f16,
 * q8_0 and q4_0. It refuses the rest with the reason, never a silent fallback.
 * The input rows of each matrix product are first rounded as the CPU backend rounds them
 * (qfit_vk_round_rows: to the weight type's vec-dot type, Q8_0, Q8_K, F16 or BF16, by the
 * reference quantizer, and back to float; F32 weights take them as they are), into a
 * scratch buffer, once per input and vec-dot type: the products then see the values the
 * CPU's integer dot products see, and a quantized model computes what the reference
 * backend does up to float32 sums (tests/test_engine_paths.c and tests/test_backend.c hold
 * its logits and perplexity to the reference's). */
#include "model/model_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qfit/backend.h"
#include "qfit/gguf.h"
#include "qfit/kernels.h"
#include "qfit/quant.h"
#include "qfit/vulkan.h"


/* one weight on the device (buf NULL: the model has none): a copy, or the model's mapping
 * read in place (an import: the rows at byte off of buf) */
typedef struct { qfit_vk_buf *buf; size_t off; int type; int64_t rows, k; } vk_weight;

typedef struct {
    vk_weight attn_norm, wq, wk, wv, wo, q_norm, k_norm, ffn_norm, w_gate, w_up, w_down;
} vk_layer;

typedef struct {
    qfit_vk *vk;
    vk_layer *layers;
    vk_weight output_norm, output;
    /* activations: n_batch rows each */
    qfit_vk_buf *x, *xn, *q, *k, *v, *att, *gate, *up, *tmp, *logits;
    qfit_vk_buf *xr;     /* a product's input rows rounded to its vec-dot type (mm) */
    qfit_vk_buf *kv;     /* per offloaded layer K then V (the parts below, at layer_bytes apart) */
    qfit_vk_kv_part pk, pv;   /* the first offloaded layer's K and V */
    int64_t layer_bytes;
    qfit_vk_buf *tok;    /* the pass's token table: (position, sequence) per token */
    uint32_t *tok_host;  /* its host copy (n_batch pairs) */
    int gpu_first;       /* the first offloaded layer (n_layer: none) */
    bool gpu_output;     /* the output layer runs here */
    bool x_on_device;    /* where the residual stream of the pass is now: st->x, or c->x */
    qfit_vk_buf *rope;   /* the context's cos table, then its sin table */
    int n_matrices, n_imported;   /* the device's matrices, and those read from the mapping in place */
    char import_err[160];         /* why a matrix was copied where the device imports ("": none was) */
} vk_state;

static bool matrix_ok(const qfit_wt *w) { return w->data && qfit_vk_matmul_type_ok(w->type); }

static int vk_refuse(char *err, size_t err_len, const qfit_hparams *hp, const char *what)
{
    snprintf(err, err_len, "the Vulkan backend cannot run this %s model yet: %s", hp->arch_name, what);
    return -1;
}

static int vk_supports(const qfit_model *m, char *err, size_t err_len)
{
    const qfit_hparams *hp = &m->hp;
    char what[256];
    if (hp->n_expert > 0) return vk_refuse(err, err_len, hp, "mixture-of-experts FFN");
    if (hp->final_softcap > 0) return vk_refuse(err, err_len, hp, "logit soft-capping");
    if (hp->head_dim_k != hp->head_dim_v || hp->head_dim_k > QFIT_VK_MAX_HEAD || hp->head_dim_k % 2 || hp->n_rot % 2) {
        snprintf(what, sizeof what, "head dimensions %d/%d, %d rotated (equal, even, at most %d)", hp->head_dim_k,
                 hp->head_dim_v, hp->n_rot, QFIT_VK_MAX_HEAD);
        return vk_refuse(err, err_len, hp, what);
    }
    if (hp->n_head_kv <= 0 || hp->n_head % hp->n_head_kv) return vk_refuse(err, err_len, hp, "its head counts");
    for (int il = 0; il < hp->n_layer; il++) {
        const char *bad = qfit_plain_layer_lacks(&m->recipes[il]);
        const qfit_layer_w *L = &m->layers[il];
        if (!bad && (L->bq.data || L->bk.data || L->bv.data || L->bo.data)) bad = "Q/K/V or output biases";
        if (bad) {
            snprintf(what, sizeof what, "layer %d has %s", il, bad);
            return vk_refuse(err, err_len, hp, what);
        }
        const qfit_wt *mats[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++)
            if (!matrix_ok(mats[i])) {
                snprintf(what, sizeof what, "layer %d has a %s matrix (the Vulkan matrix product takes F32, F16, "
                         "BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL and IQ4_XS so far)",
                         il, qfit_type_name(mats[i]->type));
                return vk_refuse(err, err_len, hp, what);
            }
    }
    if (!matrix_ok(&m->output)) {
        snprintf(what, sizeof what, "a %s output matrix", qfit_type_name(m->output.type));
        return vk_refuse(err, err_len, hp, what);
    }
    return 0;
}

/* ------------------------------------------------------------------ setup */

/* The tensors of layer il the device gets (vk_init uploads exactly these) */
/* which of VK_LAYER_WEIGHTS are matrices (the rest are norm vectors) */
static const bool VK_LAYER_MATRIX[] = { false, true, true, true, true, false, false, false, true, true, true };
#define VK_LAYER_WEIGHTS(L) { &(L)->attn_norm, &(L)->wq, &(L)->wk, &(L)->wv, &(L)->wo, &(L)->q_norm, &(L)->k_norm, \
                              &(L)->ffn_norm, &(L)->w_gate, &(L)->w_up, &(L)->w_down }

static size_t wt_bytes(const qfit_wt *w) { return w->data ? w->row_bytes * (size_t)w->ne1 : 0; }

int qfit_vulkan_fit_layers(const qfit_model *m, int n_ctx, int n_batch, int n_seq, int type_k, int type_v,
                           uint64_t budget)
{
    const qfit_hparams *hp = &m->hp;
    for (int ngl = hp->n_layer + 1; ngl > 0; ngl--) {
        int first;
        bool output;
        qfit_offload_split(hp->n_layer, ngl, &first, &output);
        qfit_vulkan_bytes b;
        if (qfit_vulkan_context_bytes(hp, n_ctx, n_batch, n_seq, type_k, type_v, ngl, &b) != 0) return 0;
        uint64_t bytes = b.kv + b.compute;
        for (int il = first; il < hp->n_layer; il++) {
            const qfit_layer_w *L = &m->layers[il];
            const qfit_wt *ws[] = VK_LAYER_WEIGHTS(L);
            for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) bytes += wt_bytes(ws[i]);
        }
        if (output) bytes += wt_bytes(&m->output_norm) + wt_bytes(&m->output);
        if (bytes <= budget) return ngl;
    }
    return 0;
}


/* A matrix read in place from the model's mapping (QFIT_VK_FEAT_IMPORT: the device's memory
 * is the host's): whether it was imported; if not it must be copied (why in st->import_err,
 * the first time). The import covers whole pages, so it must lie in the mapping's. */
static bool import_weight(vk_state *st, const qfit_model *m, const qfit_wt *w, vk_weight *out)
{
    const size_t a = qfit_vk_import_alignment(st->vk);
    if (!a || !m->gguf) return false;
    const long page = sysconf(_SC_PAGESIZE);
    const uintptr_t base = (uintptr_t)qfit_gguf_base(m->gguf), p = (uintptr_t)w->data, bytes = wt_bytes(w);
    const uint64_t fsize = qfit_gguf_file_size(m->gguf);
    const uintptr_t pg = page > 0 ? (uintptr_t)page : 4096;
    const uintptr_t map_end = base + (uintptr_t)((fsize + pg - 1) / pg * pg);
    const uintptr_t lo = p & ~(uintptr_t)(a - 1), hi = (p + bytes + a - 1) & ~(uintptr_t)(a - 1);
    if (base % pg || lo < base || hi > map_end) {   /* not a file mapping (a buffer), or its pages end first */
        if (!st->import_err[0])
            snprintf(st->import_err, sizeof st->import_err, "its rows are not in whole pages of the file's mapping");
        return false;
    }
    char why[160];
    size_t off;
    qfit_vk_buf *b = qfit_vk_buf_import(st->vk, w->data, (size_t)bytes, &off, why, sizeof why);
    if (!b) {
        if (!st->import_err[0]) snprintf(st->import_err, sizeof st->import_err, "%s", why);
        return false;
    }
    out->buf = b;
    out->off = off;
    return true;
}

/* One weight onto the device: a matrix (matrix: read by the matrix product, which takes an
 * offset) read in place where the device imports, else copied. */
static int upload_weight(vk_state *st, const qfit_model *m, const qfit_wt *w, bool matrix, vk_weight *out, char *err,
                         size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (!w->data) return 0;
    out->type = w->type;
    out->rows = w->ne1;
    out->k = w->ne0;
    if (matrix) {
        st->n_matrices++;
        if (import_weight(st, m, w, out)) {
            st->n_imported++;
            return 0;   /* the device reads the mapping's pages: they stay */
        }
    }
    qfit_vk *vk = st->vk;
    const size_t bytes = wt_bytes(w);
    out->buf = qfit_vk_buf_new(vk, bytes, err, err_len);
    if (!out->buf) return -1;
    /* in slices that end on page boundaries, each slice's pages of the mapping given back
     * once on the device: the host holds at most one slice of a weight it does not run */
    const uintptr_t page = 4096, slice = (uintptr_t)16 << 20;
    const uint8_t *src = w->data;
    for (size_t done = 0; done < bytes;) {
        const uintptr_t at = (uintptr_t)(src + done);
        size_t n = (size_t)(((at + slice) & ~(page - 1)) - at);
        if (n > bytes - done) n = bytes - done;
        if (qfit_vk_upload(vk, out->buf, done, src + done, n, err, err_len) != 0) return -1;
        qfit_model_release_pages(src + done, n);
        done += n;
    }
    return 0;
}

/* The device buffers of a context, in bytes: vk_init allocates exactly these, and the
 * planner reads them (qfit_vulkan_context_bytes). Activations hold n_batch rows: x and tmp
 * of n_embd, xn of the wider of n_embd and n_ff, q and att of the query heads, k and v of
 * the KV heads, gate and up of n_ff, logits of the wider of the vocabulary and n_embd, xr
 * (a product's rounded input) of the widest product input: n_embd, n_ff or the query heads. */
typedef struct {
    size_t x, xn, q, k, ff, logits, xr, tok, kv, rope;
    int64_t head_k, head_v;   /* bytes of one KV head's run of n_ctx rows (K, V), padded to 4 */
} vk_sizes;

static int vk_sizes_of(const qfit_hparams *hp, int n_ctx, int n_batch, int n_seq, int type_k, int type_v, int ngl,
                       vk_sizes *z)
{
    memset(z, 0, sizeof *z);
    if (!hp || n_ctx <= 0 || n_batch <= 0 || n_seq <= 0 || hp->n_layer <= 0 || ngl < -1 || ngl > hp->n_layer + 1)
        return -1;
    if (!qfit_vk_kv_type_ok(type_k) || !qfit_vk_kv_type_ok(type_v)) return -1;   /* vk_init's rule */
    const size_t nb = (size_t)n_batch, E = (size_t)hp->n_embd, F = (size_t)hp->n_ff, hd = (size_t)hp->head_dim_k;
    const size_t V = (size_t)hp->n_vocab, f = sizeof(float);
    z->x = nb * E * f;
    z->xn = nb * (E > F ? E : F) * f;
    z->q = nb * (size_t)hp->n_head * hd * f;
    z->k = nb * (size_t)hp->n_head_kv * hd * f;
    z->ff = nb * F * f;
    z->logits = nb * (V > E ? V : E) * f;
    const size_t Q = (size_t)hp->n_head * hd, widest = E > F ? E : F;
    z->xr = nb * (widest > Q ? widest : Q) * f;
    z->tok = nb * 8;   /* each token's position and sequence (two 32-bit words) */
    /* per offloaded layer K then V: n_seq sequences x n_kv heads x a padded run of n_ctx rows */
    const int layers = qfit_offload_split(hp->n_layer, ngl, NULL, NULL);
    z->head_k = ((int64_t)n_ctx * (int64_t)qfit_vk_kv_row_bytes(type_k, (int)hd) + 3) & ~(int64_t)3;
    z->head_v = ((int64_t)n_ctx * (int64_t)qfit_vk_kv_row_bytes(type_v, (int)hd) + 3) & ~(int64_t)3;
    z->kv = (size_t)layers * (size_t)(z->head_k + z->head_v) * (size_t)hp->n_head_kv * (size_t)n_seq;
    z->rope = 2 * (size_t)n_ctx * (size_t)(hp->n_rot / 2) * f;   /* cos, then sin */
    return 0;
}

int qfit_vulkan_context_bytes(const qfit_hparams *hp, int n_ctx, int n_batch, int n_seq, int type_k, int type_v,
                              int n_gpu_layers, qfit_vulkan_bytes *out)
{
    vk_sizes z;
    if (!out || vk_sizes_of(hp, n_ctx, n_batch, n_seq, type_k, type_v, n_gpu_layers, &z) != 0) return -1;
    out->kv = z.kv;
    out->compute = 2 * z.x + z.xn + 2 * z.q + 2 * z.k + 2 * z.ff + z.logits + z.xr + z.tok + z.rope;
    return 0;
}

static void vk_free(qfit_context *c)
{
    vk_state *st = c->be_state;
    if (!st) return;
    qfit_vk_close(st->vk);   /* frees every buffer of the device */
    free(st->layers);
    free(st->tok_host);
    free(st);
    c->be_state = NULL;
}

static int vk_init(qfit_context *c, char *err, size_t err_len)
{
    const qfit_model *m = c->model;
    const qfit_hparams *hp = &m->hp;
    if (!qfit_vk_kv_type_ok(c->kv.type_k) || !qfit_vk_kv_type_ok(c->kv.type_v))
        return snprintf(err, err_len, "the Vulkan backend's KV cache takes f16, q8_0 and q4_0 so far (%s/%s requested)",
                        qfit_type_name(c->kv.type_k), qfit_type_name(c->kv.type_v)), -1;
    int index = -1;
    if (sscanf(c->device, "vulkan%d", &index) != 1 || index < 0)
        return snprintf(err, err_len, "not a Vulkan device: %s", c->device), -1;
    vk_state *st = calloc(1, sizeof *st);
    if (!st) return snprintf(err, err_len, "out of memory"), -1;
    c->be_state = st;
    qfit_offload_split(hp->n_layer, c->n_gpu_layers, &st->gpu_first, &st->gpu_output);
    st->layers = calloc((size_t)hp->n_layer, sizeof *st->layers);
    st->tok_host = calloc((size_t)c->n_batch * 2, sizeof *st->tok_host);
    if (!st->layers || !st->tok_host) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    st->vk = qfit_vk_open(index, err, err_len);
    if (!st->vk) goto fail;
    qfit_vk *vk = st->vk;
    for (int il = st->gpu_first; il < hp->n_layer; il++) {
        const qfit_layer_w *L = &m->layers[il];
        vk_layer *V = &st->layers[il];
        const qfit_wt *ws[] = VK_LAYER_WEIGHTS(L);
        vk_weight *vs[] = VK_LAYER_WEIGHTS(V);
        _Static_assert(sizeof VK_LAYER_MATRIX / sizeof VK_LAYER_MATRIX[0] == sizeof ws / sizeof ws[0],
                       "a flag for each weight of VK_LAYER_WEIGHTS");
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            if (upload_weight(st, m, ws[i], VK_LAYER_MATRIX[i], vs[i], err, err_len) != 0) goto fail;
    }
    if (st->gpu_output && (upload_weight(st, m, &m->output_norm, false, &st->output_norm, err, err_len) ||
                           upload_weight(st, m, &m->output, true, &st->output, err, err_len)))
        goto fail;
    vk_sizes z;
    if (vk_sizes_of(hp, c->n_ctx, c->n_batch, c->n_seq, c->kv.type_k, c->kv.type_v, c->n_gpu_layers, &z) != 0) {
        snprintf(err, err_len, "the Vulkan backend cannot size this context");
        goto fail;
    }
    if (!(st->x = qfit_vk_buf_new(vk, z.x, err, err_len)) || !(st->xn = qfit_vk_buf_new(vk, z.xn, err, err_len)) ||
        !(st->q = qfit_vk_buf_new(vk, z.q, err, err_len)) || !(st->k = qfit_vk_buf_new(vk, z.k, err, err_len)) ||
        !(st->v = qfit_vk_buf_new(vk, z.k, err, err_len)) || !(st->att = qfit_vk_buf_new(vk, z.q, err, err_len)) ||
        !(st->gate = qfit_vk_buf_new(vk, z.ff, err, err_len)) || !(st->up = qfit_vk_buf_new(vk, z.ff, err, err_len)) ||
        !(st->tmp = qfit_vk_buf_new(vk, z.x, err, err_len)) || !(st->logits = qfit_vk_buf_new(vk, z.logits, err, err_len)) ||
        !(st->xr = qfit_vk_buf_new(vk, z.xr, err, err_len)) || !(st->tok = qfit_vk_buf_new(vk, z.tok, err, err_len)))
        goto fail;
    /* the offloaded layers' caches (none when no layer is offloaded), per layer K then V,
     * sequence after sequence, head after head: each head's run of n_ctx rows padded to a
     * multiple of 4 bytes */
    st->pk = (qfit_vk_kv_part){ c->kv.type_k, c->rot_k, 0, z.head_k, z.head_k * hp->n_head_kv, c->n_ctx, c->n_seq };
    st->pv = (qfit_vk_kv_part){ c->kv.type_v, c->rot_v, st->pk.seq_stride * c->n_seq, z.head_v,
                                z.head_v * hp->n_head_kv, c->n_ctx, c->n_seq };
    st->layer_bytes = st->pv.base + st->pv.seq_stride * c->n_seq;
    if (z.kv && !(st->kv = qfit_vk_buf_new(vk, z.kv, err, err_len))) goto fail;
    const size_t tab = z.rope / (2 * sizeof(float));
    if (!(st->rope = qfit_vk_buf_new(vk, z.rope, err, err_len)) ||
        qfit_vk_upload(vk, st->rope, 0, c->rope_cos, tab * sizeof(float), err, err_len) ||
        qfit_vk_upload(vk, st->rope, tab * sizeof(float), c->rope_sin, tab * sizeof(float), err, err_len))
        goto fail;
    return 0;
fail:
    vk_free(c);
    return -1;
}

/* ---------------------------------------------------------------- the layer */

/* the first error of a pass: later ops of the pass are skipped, qfit_decode reports it */
#define VK_OK(c) ((c)->backend_err[0] == 0)
#define VK_DO(c, call)                                                                          \
    do {                                                                                        \
        if (VK_OK(c) && (call) != 0) {                                                          \
            /* the op wrote its message into backend_err */                                     \
            if (!(c)->backend_err[0]) snprintf((c)->backend_err, sizeof (c)->backend_err, "Vulkan op failed"); \
        }                                                                                       \
    } while (0)
#define BE (c)->backend_err, sizeof (c)->backend_err

/* the residual stream of the pass's n rows onto the device, or back to c->x */
static void x_to_device(qfit_context *c, int n)
{
    vk_state *st = c->be_state;
    if (st->x_on_device) return;
    VK_DO(c, qfit_vk_upload(st->vk, st->x, 0, c->x, (size_t)n * (size_t)c->model->hp.n_embd * sizeof(float), BE));
    st->x_on_device = true;
}

static void x_to_host(qfit_context *c, int n)
{
    vk_state *st = c->be_state;
    if (!st->x_on_device) return;
    VK_DO(c, qfit_vk_download(st->vk, st->x, 0, c->x, (size_t)n * (size_t)c->model->hp.n_embd * sizeof(float), BE));
    st->x_on_device = false;
}

/* embeddings on the host (the CPU backend's lookup, any type): the pass starts in c->x */
static void vk_embed(qfit_context *c, const int32_t *tokens, int n)
{
    vk_state *st = c->be_state;
    qfit_backend_cpu.embed(c, tokens, n);
    st->x_on_device = false;
    if (st->gpu_first >= c->model->hp.n_layer) return;   /* no attention here */
    uint32_t *tab = st->tok_host;
    for (int j = 0; j < n; j++) {
        tab[2 * j] = (uint32_t)c->tok_pos[j];
        tab[2 * j + 1] = (uint32_t)c->tok_seq[j];
    }
    VK_DO(c, qfit_vk_upload(st->vk, st->tok, 0, tab, (size_t)n * 8, BE));
}

/* a batch around a run of ops: begun if nothing failed yet, always ended once begun */
static bool batch_begin(qfit_context *c)
{
    vk_state *st = c->be_state;
    if (!VK_OK(c)) return false;
    VK_DO(c, qfit_vk_batch_begin(st->vk, BE));
    return VK_OK(c);
}

static void batch_end(qfit_context *c, bool begun)
{
    vk_state *st = c->be_state;
    if (!begun) return;
    char err[256];
    if (qfit_vk_batch_end(st->vk, err, sizeof err) != 0 && VK_OK(c)) snprintf(BE, "%s", err);
}

/* What st->xr holds: the rows of x rounded to type (x NULL: nothing yet). A batch starts
 * with nothing; products that read one input at one vec-dot type (wq, wk, wv; w_gate,
 * w_up) round it once. */
typedef struct { const qfit_vk_buf *x; int type; } vk_rounded;

/* y = W x for n rows, x rounded first as the CPU rounds a product's input (to the weight
 * type's vec-dot type, into st->xr; F32 weights read x itself) */
static int mm(qfit_context *c, const vk_weight *w, qfit_vk_buf *x, qfit_vk_buf *y, int n, vk_rounded *held)
{
    vk_state *st = c->be_state;
    const int vd = qfit_vec_dot_type(w->type);
    qfit_vk_buf *in = x;
    if (vd < 0) return snprintf(BE, "the Vulkan backend has no vec-dot type for %s weights", qfit_type_name(w->type)), -1;
    if (vd != QFIT_TYPE_F32) {
        if (held->x != x || held->type != vd) {
            held->x = NULL;
            if (qfit_vk_round_rows(st->vk, vd, x, w->k, st->xr, w->k, w->k, n, BE) != 0) return -1;
            held->x = x;
            held->type = vd;
        }
        in = st->xr;
    }
    return qfit_vk_matmul(st->vk, w->type, w->buf, w->off, w->rows, w->k, in, w->k, y, w->rows, n, BE);
}

static void vk_attention(qfit_context *c, int il, int n)
{
    vk_state *st = c->be_state;
    if (il < st->gpu_first) {   /* a layer of the CPU's */
        x_to_host(c, n);
        qfit_backend_cpu.attention(c, il, n);
        return;
    }
    x_to_device(c, n);
    qfit_vk *vk = st->vk;
    const qfit_hparams *hp = &c->model->hp;
    const vk_layer *L = &st->layers[il];
    const int E = hp->n_embd, hd = hp->head_dim_k, nh = hp->n_head, nkv = hp->n_head_kv;
    const bool b = batch_begin(c);
    vk_rounded held = { NULL, 0 };
    VK_DO(c, qfit_vk_rms_norm(vk, st->x, E, L->attn_norm.buf, st->xn, E, E, n, hp->rms_eps, BE));
    VK_DO(c, mm(c, &L->wq, st->xn, st->q, n, &held));
    VK_DO(c, mm(c, &L->wk, st->xn, st->k, n, &held));
    VK_DO(c, mm(c, &L->wv, st->xn, st->v, n, &held));
    if (L->q_norm.buf) VK_DO(c, qfit_vk_rms_norm(vk, st->q, hd, L->q_norm.buf, st->q, hd, hd, n * nh, hp->rms_eps, BE));
    if (L->k_norm.buf) VK_DO(c, qfit_vk_rms_norm(vk, st->k, hd, L->k_norm.buf, st->k, hd, hd, n * nkv, hp->rms_eps, BE));
    const bool neox = hp->rope_type == QFIT_ROPE_NEOX;
    VK_DO(c, qfit_vk_rope(vk, st->q, (int64_t)nh * hd, n, nh, hd, hp->n_rot, neox, st->tok, st->rope, c->n_ctx, BE));
    VK_DO(c, qfit_vk_rope(vk, st->k, (int64_t)nkv * hd, n, nkv, hd, hp->n_rot, neox, st->tok, st->rope, c->n_ctx, BE));
    qfit_vk_kv_part pk = st->pk, pv = st->pv;   /* this layer's */
    pk.base += (int64_t)(il - st->gpu_first) * st->layer_bytes;
    pv.base += (int64_t)(il - st->gpu_first) * st->layer_bytes;
    VK_DO(c, qfit_vk_kv_store(vk, st->k, (int64_t)nkv * hd, n, nkv, hd, st->tok, st->kv, &pk, BE));
    VK_DO(c, qfit_vk_kv_store(vk, st->v, (int64_t)nkv * hd, n, nkv, hd, st->tok, st->kv, &pv, BE));
    VK_DO(c, qfit_vk_attention(vk, st->q, (int64_t)nh * hd, n, nh, nkv, hd, st->tok, st->kv, &pk, &pv, hp->attn_scale,
                               st->att, (int64_t)nh * hd, BE));
    VK_DO(c, mm(c, &L->wo, st->att, st->tmp, n, &held));
    VK_DO(c, qfit_vk_add(vk, st->x, st->tmp, (int64_t)n * E, BE));
    batch_end(c, b);
}

static void vk_ffn(qfit_context *c, int il, int n)
{
    vk_state *st = c->be_state;
    if (il < st->gpu_first) {
        x_to_host(c, n);
        qfit_backend_cpu.ffn(c, il, n);
        return;
    }
    x_to_device(c, n);
    const qfit_hparams *hp = &c->model->hp;
    const vk_layer *L = &st->layers[il];
    const int E = hp->n_embd;
    const bool b = batch_begin(c);
    vk_rounded held = { NULL, 0 };
    VK_DO(c, qfit_vk_rms_norm(st->vk, st->x, E, L->ffn_norm.buf, st->xn, E, E, n, hp->rms_eps, BE));
    VK_DO(c, mm(c, &L->w_gate, st->xn, st->gate, n, &held));
    VK_DO(c, mm(c, &L->w_up, st->xn, st->up, n, &held));
    VK_DO(c, qfit_vk_swiglu(st->vk, st->gate, st->up, (int64_t)n * hp->n_ff, BE));
    VK_DO(c, mm(c, &L->w_down, st->gate, st->tmp, n, &held));
    VK_DO(c, qfit_vk_add(st->vk, st->x, st->tmp, (int64_t)n * E, BE));
    batch_end(c, b);
}

static void vk_output(qfit_context *c, int from, int n)
{
    vk_state *st = c->be_state;
    if (!st->gpu_output) {
        x_to_host(c, n);
        qfit_backend_cpu.output(c, from, n);
        return;
    }
    x_to_device(c, n);
    const qfit_hparams *hp = &c->model->hp;
    const size_t E = (size_t)hp->n_embd, V = (size_t)hp->n_vocab, m = (size_t)(n - from);
    /* rows [from, n) to the front of tmp, normed into xn */
    const bool b = batch_begin(c);
    VK_DO(c, qfit_vk_copy(st->vk, st->tmp, 0, st->x, (size_t)from * E * sizeof(float), m * E * sizeof(float), BE));
    VK_DO(c, qfit_vk_rms_norm(st->vk, st->tmp, (int64_t)E, st->output_norm.buf, st->xn, (int64_t)E, (int64_t)E, (int)m,
                              hp->rms_eps, BE));
    vk_rounded held = { NULL, 0 };
    if (!c->out_embd) VK_DO(c, mm(c, &st->output, st->xn, st->logits, (int)m, &held));
    batch_end(c, b);
    if (c->out_embd)
        VK_DO(c, qfit_vk_download(st->vk, st->xn, 0, c->logits + (size_t)c->n_logits * E, m * E * sizeof(float), BE));
    else
        VK_DO(c, qfit_vk_download(st->vk, st->logits, 0, c->logits + (size_t)c->n_logits * V, m * V * sizeof(float), BE));
    c->n_logits += (int)m;
}

/* the first n positions of sequence src's cells in every offloaded layer onto dst's, one
 * copy per (layer, K/V, KV head): a head's positions are contiguous */
static int vk_seq_copy(qfit_context *c, int src, int dst, int n, char *err, size_t err_len)
{
    vk_state *st = c->be_state;
    const qfit_hparams *hp = &c->model->hp;
    if (st->gpu_first >= hp->n_layer) return 0;
    const int hd = hp->head_dim_k;
    if (qfit_vk_batch_begin(st->vk, err, err_len) != 0) return -1;
    int rc = 0;
    for (int il = st->gpu_first; il < hp->n_layer && rc == 0; il++)
        for (int kv = 0; kv < 2 && rc == 0; kv++) {
            const qfit_vk_kv_part *P = kv ? &st->pv : &st->pk;
            const int64_t base = P->base + (int64_t)(il - st->gpu_first) * st->layer_bytes;
            const size_t bytes = (size_t)n * qfit_vk_kv_row_bytes(P->type, hd);
            for (int h = 0; h < hp->n_head_kv && rc == 0; h++)
                rc = qfit_vk_copy(st->vk, st->kv, (size_t)(base + dst * P->seq_stride + h * P->head_stride), st->kv,
                                  (size_t)(base + src * P->seq_stride + h * P->head_stride), bytes, err, err_len);
        }
    char e2[200];
    if (qfit_vk_batch_end(st->vk, e2, sizeof e2) != 0 && rc == 0) {
        snprintf(err, err_len, "%s", e2);
        rc = -1;
    }
    return rc;
}

/* Sequence seq's cells of every offloaded layer, positions [0, n_past), between the device
 * and the host cache (the same bytes a head's run: the layouts agree), one transfer per
 * (layer, K/V, KV head). The context shift runs on the host between the two: the CPU's
 * arithmetic (dequantize, un-rotate, RoPE by -n_discard, rotate, requantize), at the cost
 * of a round trip of the sequence's cells. */
static int vk_kv_sync(qfit_context *c, int seq, qfit_kv_cache *host_kv, bool to_host, char *err, size_t err_len)
{
    vk_state *st = c->be_state;
    const qfit_hparams *hp = &c->model->hp;
    const int n = c->seq_past[seq];
    if (n <= 0 || st->gpu_first >= hp->n_layer) return 0;
    for (int il = st->gpu_first; il < hp->n_layer; il++)
        for (int kv = 0; kv < 2; kv++) {
            const qfit_vk_kv_part *P = kv ? &st->pv : &st->pk;
            const int64_t base = P->base + (int64_t)(il - st->gpu_first) * st->layer_bytes + seq * P->seq_stride;
            const size_t bytes = (size_t)n * qfit_vk_kv_row_bytes(P->type, hp->head_dim_k);
            for (int h = 0; h < hp->n_head_kv; h++) {
                uint8_t *host = kv ? kv_v_at(host_kv, il, 0, h, 0) : kv_k_at(host_kv, il, 0, h, 0);
                const size_t off = (size_t)(base + h * P->head_stride);
                if ((to_host ? qfit_vk_download(st->vk, st->kv, off, host, bytes, err, err_len)
                             : qfit_vk_upload(st->vk, st->kv, off, host, bytes, err, err_len)) != 0)
                    return -1;
            }
        }
    return 0;
}

const qfit_backend qfit_backend_vulkan = {
    .name = "vulkan",
    .supports = vk_supports,
    .init = vk_init,
    .free = vk_free,
    .kv_on_device = true,
    .seq_copy = vk_seq_copy,
    .kv_sync = vk_kv_sync,
    .embed = vk_embed,
    .attention = vk_attention,
    .ffn = vk_ffn,
    .output = vk_output,
};

size_t qfit_context_device_bytes(const qfit_context *c, size_t *driver_bytes)
{
    if (driver_bytes) *driver_bytes = 0;
    if (!c || c->backend != &qfit_backend_vulkan || !c->be_state) return 0;
    const vk_state *st = c->be_state;
    return qfit_vk_bytes_held(st->vk, driver_bytes);
}

int qfit_vulkan_context_imported(const qfit_context *c, int *n_matrices, const char **why_not)
{
    *n_matrices = 0;
    *why_not = "";
    if (!c || c->backend != &qfit_backend_vulkan || !c->be_state) return 0;
    const vk_state *st = c->be_state;
    *n_matrices = st->n_matrices;
    *why_not = st->import_err;
    return st->n_imported;
}

unsigned qfit_vulkan_context_features(const qfit_context *c)
{
    if (!c || c->backend != &qfit_backend_vulkan || !c->be_state) return 0;
    const vk_state *st = c->be_state;
    return qfit_vk_features(st->vk);
}

int qfit_context_gpu_layers(const qfit_context *c)
{
    return c && c->backend->kv_on_device ? c->n_gpu_layers : 0;
}
