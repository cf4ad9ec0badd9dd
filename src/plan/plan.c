/* The memory planner: models from GGUF files, one configuration's memory,
 * verdict, speed estimate, the --fit search and the recommendations. */
#include "plan/plan_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "qfit/backend.h"
#include "qfit/gguf.h"
#include "qfit/vulkan.h"
#include "qfit/kernels.h"
#include "qfit/quant.h"
#include "qfit/vulkan.h"

#define GiB (1024.0 * 1024 * 1024)

/* ------------------------------------------------------------ mixes and quality */

/* Quality of each mix, measured on the shared model kjv-llama-7m
 * (/work/shared/testdata/kjv-llama-7m/ppl.tsv: llama.cpp-style perplexity of the
 * validation text at context 512 and mean KL divergence against F32). Ordered
 * by mean KLD, best first; that order is the planner's quality ranking.
 * BF16 was not measured (its KLD would be ~F16's); it is never chosen by --fit. Nor is
 * MXFP4_MOE: it quantizes only experts (MXFP4, the rest Q8_0), so on the dense 7M
 * model it would measure Q8_0; gpt-oss is published in it (its catalog default). */
static const qfit_plan_mix mixes[] = {
    { "F32",    0,  0.0,      37.0483 },
    { "F16",    1,  0.0,      37.0483 },   /* KLD 0.000000 at 6 decimals */
    { "BF16",   32, -1.0,     0 },
    { "Q8_0",   7,  0.000122, 37.0529 },
    { "Q6_K",   18, 0.000674, 37.0605 },
    { "Q5_K_M", 17, 0.001301, 37.0907 },
    { "Q5_1",   9,  0.001553, 37.0928 },
    { "Q5_K_S", 16, 0.001571, 37.0854 },
    { "Q5_0",   8,  0.001867, 37.0800 },
    { "Q4_K_M", 15, 0.003613, 37.1303 },
    { "Q4_K_S", 14, 0.004591, 37.1433 },
    { "IQ4_NL", 25, 0.004974, 37.1700 },
    { "IQ4_XS", 30, 0.005151, 37.1664 },
    { "Q4_1",   3,  0.005600, 37.2414 },
    { "Q4_0",   2,  0.007009, 37.1864 },
    { "Q3_K_L", 13, 0.014067, 37.4069 },
    { "Q3_K_M", 12, 0.015560, 37.4530 },
    { "Q3_K_S", 11, 0.022767, 37.5336 },
    { "Q2_K",   10, 0.065835, 38.7280 },
    { "MXFP4_MOE", 38, -1.0,  0 },
};
#define N_MIXES (sizeof mixes / sizeof mixes[0])

/* ppl.tsv rows F32+kv_q8_0 and F32+kv_q4_0 */
#define PPL_F32        37.0483
#define PPL_KV_Q8_0    37.0494
#define PPL_KV_Q4_0    37.1177

size_t qfit_plan_mix_count(void) { return N_MIXES; }
const qfit_plan_mix *qfit_plan_mix_at(size_t i) { return i < N_MIXES ? &mixes[i] : NULL; }

const qfit_plan_mix *qfit_plan_mix_find(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < N_MIXES; i++)
        if (strcasecmp(mixes[i].name, name) == 0) return &mixes[i];
    return NULL;
}

const qfit_plan_mix *qfit_plan_mix_by_ftype(int ftype)
{
    for (size_t i = 0; i < N_MIXES; i++)
        if (mixes[i].ftype == ftype) return &mixes[i];
    return NULL;
}

double qfit_plan_kv_ppl(int kv_type)
{
    switch (kv_type) {
    case QFIT_TYPE_F32: case QFIT_TYPE_F16: return PPL_F32;
    case QFIT_TYPE_Q8_0: return PPL_KV_Q8_0;
    case QFIT_TYPE_Q4_0: return PPL_KV_Q4_0;
    }
    return 0;
}

/* KV cache types are measured only as perplexity. To add their loss to a mix's
 * KLD, convert with the ratio mean-KLD / ln(ppl / ppl_F32) observed on the
 * mixes of the same table (median over the mixes with a measurable change). */
static double kld_per_log_ppl(void)
{
    static double cached;
    if (cached > 0) return cached;
    double r[N_MIXES];
    size_t n = 0;
    for (size_t i = 0; i < N_MIXES; i++) {
        double d = mixes[i].ppl > 0 ? log(mixes[i].ppl / PPL_F32) : 0;
        if (mixes[i].mean_kld > 0 && d > 1e-4) r[n++] = mixes[i].mean_kld / d;
    }
    for (size_t i = 1; i < n; i++)          /* insertion sort, n is small */
        for (size_t j = i; j > 0 && r[j] < r[j - 1]; j--) { double t = r[j]; r[j] = r[j - 1]; r[j - 1] = t; }
    cached = n ? (n % 2 ? r[n / 2] : 0.5 * (r[n / 2 - 1] + r[n / 2])) : 1.0;
    return cached;
}

double qfit_plan_quality_loss(const char *mix, int kv_type)
{
    const qfit_plan_mix *mx = qfit_plan_mix_find(mix);
    double kv_ppl = qfit_plan_kv_ppl(kv_type);
    if (!mx || mx->mean_kld < 0 || kv_ppl <= 0) return -1;
    return mx->mean_kld + kld_per_log_ppl() * log(kv_ppl / PPL_F32);
}

/* Task floors: the worst mix whose measured quality is still acceptable. */
static const struct { const char *task, *floor; } task_floors[] = {
    { "chat",       "Q4_K_M" },
    { "facts",      "Q4_K_M" },
    { "formatting", "Q4_K_M" },
    { "code",       "Q5_K_M" },   /* exact syntax: one wrong token breaks a program */
    { "reasoning",  "Q5_K_M" },   /* multi-step: errors compound */
    { "math",       "Q6_K" },     /* numerical work: digits must be exact */
};

bool qfit_plan_task_valid(const char *task)
{
    if (!task) return false;
    for (size_t i = 0; i < sizeof task_floors / sizeof task_floors[0]; i++)
        if (strcasecmp(task, task_floors[i].task) == 0) return true;
    return false;
}

const char *qfit_plan_task_floor(const char *task)
{
    if (!task) return NULL;
    for (size_t i = 0; i < sizeof task_floors / sizeof task_floors[0]; i++)
        if (strcasecmp(task, task_floors[i].task) == 0) return task_floors[i].floor;
    return NULL;
}

/* ------------------------------------------------------------ verdict */

const char *qfit_plan_verdict_name(qfit_plan_verdict v)
{
    switch (v) {
    case QFIT_VERDICT_COMFORTABLE: return "comfortable";
    case QFIT_VERDICT_TIGHT: return "tight";
    case QFIT_VERDICT_NO_FIT: return "does not fit";
    }
    return "?";
}

qfit_plan_verdict qfit_plan_verdict_for(uint64_t total, uint64_t budget)
{
    /* comfortable: total <= 85% of budget; tight: <= 100%; else does not fit */
    if ((long double)total * 100 <= (long double)budget * QFIT_PLAN_COMFORT_PCT) return QFIT_VERDICT_COMFORTABLE;
    if (total <= budget) return QFIT_VERDICT_TIGHT;
    return QFIT_VERDICT_NO_FIT;
}

/* ------------------------------------------------------------ models */

/* Weight bytes are the expensive part (thousands of tensors): cache the last few. */
typedef struct {
    const qfit_plan_tensor *t; size_t n; int ftype;
    uint64_t bytes, aq_row, embd_bytes, embd_row;
    uint64_t expert_bytes;   /* of the experts' 3-D tensors (a token reads n_expert_used / n_expert of them) */
    /* load-time repacking on this machine's CPU (qfit_pack_bytes): the packed forms'
     * bytes beyond the rows they replace, and whether the output matrix of a tied
     * model (token_embd) is among them */
    int isa;
    int64_t pack_extra;
    bool embd_packed;
} wcache_entry;
static _Thread_local wcache_entry wcache[32];
static _Thread_local unsigned wcache_next;

/* The matrices the model loader repacks where the CPU has a layout for their type
 * (src/model/model.c, pack_weights): the dense ones of the forward pass. */
static bool packed_at_load(const char *name)
{
    static const char *const suffix[] = { ".attn_q.weight", ".attn_k.weight", ".attn_v.weight", ".attn_qkv.weight",
                                          ".attn_output.weight", ".ffn_gate.weight", ".ffn_up.weight",
                                          ".ffn_down.weight" };
    if (!strcmp(name, "output.weight")) return true;
    if (strncmp(name, "blk.", 4) != 0) return false;
    const size_t n = strlen(name);
    for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
        const size_t k = strlen(suffix[i]);
        if (n > k && !strcmp(name + n - k, suffix[i])) return true;
    }
    return false;
}

/* Weight bytes of m under ftype (-1: as stored), the widest quantized activation
 * row the forward pass writes for those weight types, and the bytes and row size
 * of token_embd.weight (0 if absent). */
static int weights_cached(const qfit_plan_model *m, int ftype, wcache_entry *e, char *err, size_t err_len)
{
    for (size_t i = 0; i < 32; i++)
        if (wcache[i].t == m->tensors && wcache[i].n == m->n_tensors && wcache[i].ftype == ftype && m->n_tensors &&
            wcache[i].isa == (int)qfit_isa_active()) {
            *e = wcache[i];
            return 0;
        }
    uint64_t bytes = 0, *out = &bytes;
    memset(e, 0, sizeof *e);
    int *types = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *types);
    if (!types) { snprintf(err, err_len, "out of memory"); return -1; }
    if (ftype < 0) {
        uint64_t sum = 0;
        for (size_t i = 0; i < m->n_tensors; i++) {
            sum += m->tensors[i].nbytes;
            types[i] = m->tensors[i].type;
        }
        *out = sum;
    } else if (plan_mix_weight_bytes(m, ftype, out, types, err, err_len) < 0) {
        free(types);
        return -1;
    }
    e->t = m->tensors;
    e->n = m->n_tensors;
    e->ftype = ftype;
    e->bytes = bytes;
    e->aq_row = plan_engine_aq_row_bytes(m, types);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const qfit_plan_tensor *t = &m->tensors[i];
        if (t->ne[2] > 1 && types[i] >= 0)
            e->expert_bytes += qfit_row_size(types[i], t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
    }
    for (size_t i = 0; i < m->n_tensors; i++) {
        const qfit_plan_tensor *t = &m->tensors[i];
        if (strcmp(t->name, "token_embd.weight") != 0) continue;
        e->embd_row = qfit_row_size(types[i], t->ne[0]);
        e->embd_bytes = e->embd_row * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
        break;
    }
    e->isa = (int)qfit_isa_active();
    for (size_t i = 0; i < m->n_tensors; i++) {
        const qfit_plan_tensor *t = &m->tensors[i];
        const bool embd = !strcmp(t->name, "token_embd.weight");
        if (types[i] < 0 || t->ne[2] > 1 || !(embd ? m->tied : packed_at_load(t->name))) continue;
        const size_t pb = qfit_pack_bytes(types[i], t->ne[0], t->ne[1]);
        if (!pb) continue;
        e->pack_extra += (int64_t)pb - (int64_t)(qfit_row_size(types[i], t->ne[0]) * (uint64_t)t->ne[1]);
        if (embd) e->embd_packed = true;
    }
    free(types);
    wcache[wcache_next++ % 32] = *e;
    return 0;
}

void qfit_plan_model_free(qfit_plan_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < 32; i++)
        if (wcache[i].t == m->tensors) wcache[i].t = NULL;
    free(m->tensors);
    m->tensors = NULL;
    m->n_tensors = 0;
}

static bool gguf_int(const qfit_gguf *g, const char *arch, const char *suffix, int64_t *out)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t i = qfit_gguf_find_key(g, key);
    if (i < 0) return false;
    if (qfit_gguf_kv_type(g, i) == QFIT_GGUF_ARRAY) {   /* per-layer arrays: take layer 0 */
        if (qfit_gguf_arr_len(g, i) == 0) return false;
        qfit_gguf_value v = qfit_gguf_kv_value(g, i), e;
        if (!qfit_gguf_value_elem(&v, 0, &e)) return false;
        switch (e.type) {
        case QFIT_GGUF_UINT32: *out = (int64_t)((uint32_t)e.raw[0] | (uint32_t)e.raw[1] << 8 |
                                                (uint32_t)e.raw[2] << 16 | (uint32_t)e.raw[3] << 24); return true;
        case QFIT_GGUF_INT32: {
            uint32_t u = (uint32_t)e.raw[0] | (uint32_t)e.raw[1] << 8 | (uint32_t)e.raw[2] << 16 | (uint32_t)e.raw[3] << 24;
            *out = (int32_t)u;
            return true;
        }
        default: return false;
        }
    }
    return qfit_gguf_get_int(g, i, out);
}

int qfit_plan_model_from_gguf(const char *path, qfit_plan_model *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    char gerr[256];
    qfit_gguf *g = qfit_gguf_open(path, gerr, sizeof gerr);
    if (!g) { snprintf(err, err_len, "%s: %s", path, gerr); return -1; }
    int rc = -1;
    out->from_gguf = true;
    out->file_type = -1;
    if (!qfit_gguf_get_string(g, "general.architecture", out->arch, sizeof out->arch)) {
        snprintf(err, err_len, "%s: general.architecture is missing", path);
        goto done;
    }
    char name[128] = "";
    qfit_gguf_get_string(g, "general.name", name, sizeof name);
    const char *base = strrchr(path, '/');
    snprintf(out->name, sizeof out->name, "%s", name[0] ? name : (base ? base + 1 : path));
    int64_t v;
    struct { const char *key; int64_t *dst; bool required; } keys[] = {
        { "block_count", &out->n_layer, true },
        { "embedding_length", &out->n_embd, true },
        { "attention.head_count", &out->n_head, true },
        { "feed_forward_length", &out->n_ff, false },
        { "attention.head_count_kv", &out->n_head_kv, false },
        { "attention.key_length", &out->head_dim_k, false },
        { "attention.value_length", &out->head_dim_v, false },
        { "context_length", &out->n_ctx_train, false },
        { "vocab_size", &out->n_vocab, false },
        { "rope.dimension_count", &out->n_rot, false },
        { "expert_count", &out->n_expert, false },
        { "expert_used_count", &out->n_expert_used, false },
        { "expert_feed_forward_length", &out->n_ff_exp, false },
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (gguf_int(g, out->arch, keys[i].key, &v)) {
            if (v < 0 || v > (1 << 24)) {
                snprintf(err, err_len, "%s: %s.%s = %lld is out of range", path, out->arch, keys[i].key, (long long)v);
                goto done;
            }
            *keys[i].dst = v;
        } else if (keys[i].required) {
            snprintf(err, err_len, "%s: %s.%s is missing", path, out->arch, keys[i].key);
            goto done;
        }
    }
    if (out->n_layer <= 0 || out->n_embd <= 0 || out->n_head <= 0) {
        snprintf(err, err_len, "%s: block_count, embedding_length and head_count must be positive", path);
        goto done;
    }
    if (!out->n_head_kv) out->n_head_kv = out->n_head;
    if (!out->head_dim_k) {
        if (out->n_embd % out->n_head) {
            snprintf(err, err_len, "%s: embedding_length %lld is not a multiple of head_count %lld", path,
                     (long long)out->n_embd, (long long)out->n_head);
            goto done;
        }
        out->head_dim_k = out->n_embd / out->n_head;
    }
    if (!out->head_dim_v) out->head_dim_v = out->head_dim_k;
    if (!out->n_rot) out->n_rot = out->head_dim_k;
    if (out->n_expert > 0) {   /* the engine's rules (qfit_hparams_from_gguf) */
        if (out->n_expert_used < 1 || out->n_expert_used > out->n_expert) {
            snprintf(err, err_len, "%s: %s.expert_used_count = %lld does not fit expert_count %lld", path, out->arch,
                     (long long)out->n_expert_used, (long long)out->n_expert);
            goto done;
        }
        if (!out->n_ff_exp)
            out->n_ff_exp = strcmp(out->arch, "qwen3moe") == 0 ? out->n_ff / out->n_expert_used : out->n_ff;
    }
    /* metadata: mapped, and read through by the tokenizer */
    out->metadata_bytes = qfit_gguf_data_offset(g);
    int64_t mk = qfit_gguf_find_key(g, "tokenizer.ggml.merges");
    if (mk >= 0 && qfit_gguf_kv_type(g, mk) == QFIT_GGUF_ARRAY) out->n_merges = (int64_t)qfit_gguf_arr_len(g, mk);
    int64_t ft = qfit_gguf_find_key(g, "general.file_type");
    if (ft >= 0 && qfit_gguf_get_int(g, ft, &v) && v >= 0 && v < 1000) out->file_type = (int)v;
    /* llama.cpp's "70B" class and expert count, as the quantizer reads them */
    {   /* sliding windows: the engine's own reading (an architecture it lacks has none) */
        qfit_hparams hp;
        if (qfit_hparams_from_gguf(g, &hp, gerr, sizeof gerr) == 0) {
            out->n_swa = hp.n_swa;
            out->swa_pattern = hp.swa_pattern;
            out->swa_rope = hp.swa_rope;
        }
    }
    if (plan_mix_facts_from_gguf(g, out, gerr, sizeof gerr) < 0) {
        snprintf(err, err_len, "%s: %s", path, gerr);
        goto done;
    }

    int64_t nt = qfit_gguf_n_tensors(g);
    out->tensors = calloc(nt > 0 ? (size_t)nt : 1, sizeof *out->tensors);
    if (!out->tensors) { snprintf(err, err_len, "out of memory"); goto done; }
    out->n_tensors = (size_t)nt;
    bool has_output = false;
    for (int64_t i = 0; i < nt; i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        qfit_plan_tensor *pt = &out->tensors[i];
        size_t len = t->name.len < sizeof pt->name - 1 ? (size_t)t->name.len : sizeof pt->name - 1;
        memcpy(pt->name, t->name.data, len);
        pt->name[len] = 0;
        pt->n_dims = t->n_dims;
        for (int d = 0; d < 4; d++) pt->ne[d] = t->ne[d];
        pt->type = t->type;
        pt->nbytes = t->nbytes;
        out->n_params += (uint64_t)qfit_gguf_tensor_nelements(t);
        if (!strcmp(pt->name, "output.weight")) has_output = true;
        if (!strcmp(pt->name, "token_embd.weight") && !out->n_vocab) out->n_vocab = t->ne[1];
    }
    out->tied = !has_output;
    rc = 0;
done:
    qfit_gguf_close(g);
    if (rc) qfit_plan_model_free(out);
    return rc;
}

int qfit_plan_model_load(const char *spec, qfit_plan_model *out, char *err, size_t err_len)
{
    struct stat st;
    if (spec && stat(spec, &st) == 0 && S_ISREG(st.st_mode)) return qfit_plan_model_from_gguf(spec, out, err, err_len);
    const qfit_plan_facts *f = qfit_plan_catalog_find(spec);
    if (!f) {
        memset(out, 0, sizeof *out);
        snprintf(err, err_len, "'%s' is neither a GGUF file nor a catalog model (qfit plan --list-models)",
                 spec ? spec : "");
        return -1;
    }
    return qfit_plan_model_from_facts(f, out, err, err_len);
}

/* ------------------------------------------------------------ one configuration */

int qfit_plan_weight_bytes(const qfit_plan_model *m, const char *mix, uint64_t *out, char *err, size_t err_len)
{
    if (!mix) {
        if (!m->from_gguf) { snprintf(err, err_len, "a catalog model needs a quantization mix"); return -1; }
        uint64_t s = 0;
        for (size_t i = 0; i < m->n_tensors; i++) s += m->tensors[i].nbytes;
        *out = s;
        return 0;
    }
    int ftype = plan_ftype_from_name(mix);
    if (ftype < 0) { snprintf(err, err_len, "unknown quantization mix '%s'", mix); return -1; }
    return plan_mix_weight_bytes(m, ftype, out, NULL, err, err_len);
}

uint64_t qfit_plan_kv_bytes(const qfit_plan_model *m, int64_t n_cells, int kv_type)
{
    return plan_engine_kv_bytes(m, n_cells, 1, QFIT_PLAN_DEFAULT_BATCH, kv_type, kv_type, NULL);
}

const char *qfit_plan_kv_name(int t)
{
    return plan_engine_kv_type_ok(t) ? qfit_type_name(t) : "?";
}

/* Logits rows a workload writes into the engine's n_batch-row buffer (packed from
 * row 0 at every decode call, so the rows touched are the most one call asks for). */
static int64_t logits_rows_written(const qfit_plan_result *r)
{
    const int64_t b = r->n_batch < r->n_ctx ? r->n_batch : r->n_ctx;
    if (r->workload != QFIT_PLAN_PPL) return r->n_parallel < b ? r->n_parallel : b;   /* last token of each sequence */
    /* qfit ppl: decode calls of b tokens over a chunk of n_ctx; logits from n_ctx/2 on */
    const int64_t first = r->n_ctx / 2;
    int64_t most = 0;
    for (int64_t b0 = 0; b0 < r->n_ctx; b0 += b) {
        const int64_t nb = r->n_ctx - b0 < b ? r->n_ctx - b0 : b;
        int64_t from = first - b0;
        if (from < 0) from = 0;
        if (from > nb) from = nb;
        if (nb - from > most) most = nb - from;
    }
    return most;
}

/* qfit ppl's own buffers (src/eval/perplexity.c): the logits of the scored half of a
 * chunk (n_ctx - n_ctx/2 rows of n_vocab floats) and the chunk's tokens. The text
 * and its token ids depend on the input file and are not counted. */
static uint64_t ppl_eval_bytes(const qfit_plan_model *m, int64_t n_ctx)
{
    const uint64_t n_out = (uint64_t)(n_ctx - n_ctx / 2);
    return n_out * (uint64_t)m->n_vocab * sizeof(float) + (uint64_t)n_ctx * sizeof(int32_t);
}

/* ------------------------------------------------------------ layer offload */

/* Bytes of the tensors a Vulkan context uploads for layers [first, n_layer) and, with
 * output, output_norm and the output matrix (token_embd when tied): blk.N.* for N >= first,
 * each at its stored size (ftype -1) or its size in the mix. */
static int gpu_weight_bytes(const qfit_plan_model *m, int ftype, int first, bool output, bool here, uint64_t *out,
                            uint64_t *host_drop, char *err, size_t err_len)
{
    *out = 0;
    *host_drop = 0;
    int *types = NULL;
    if (ftype >= 0) {
        uint64_t all;
        types = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *types);
        if (!types) { snprintf(err, err_len, "out of memory"); return -1; }
        if (plan_mix_weight_bytes(m, ftype, &all, types, err, err_len) < 0) { free(types); return -1; }
    }
    for (size_t i = 0; i < m->n_tensors; i++) {
        const qfit_plan_tensor *t = &m->tensors[i];
        bool on = false;
        if (!strncmp(t->name, "blk.", 4)) {
            char *end;
            const long il = strtol(t->name + 4, &end, 10);
            on = end != t->name + 4 && *end == '.' && il >= first;
        } else if (output) {
            on = !strcmp(t->name, "output_norm.weight") || !strcmp(t->name, "output.weight") ||
                 (m->tied && !strcmp(t->name, "token_embd.weight"));
        }
        const int type = types ? types[i] : t->type;
        /* every layer's matrices and the output's, offloaded or not: the engine refuses a model
         * the device cannot run whole (vk_supports) */
        const bool output_matrix = !strcmp(t->name, "output.weight") || (m->tied && !strcmp(t->name, "token_embd.weight"));
        if (t->n_dims >= 2 && (!strncmp(t->name, "blk.", 4) || output_matrix) && !qfit_vk_matmul_type_ok(type)) {
            snprintf(err, err_len, "layer offload: the Vulkan backend has no matrix product for %s weights yet (%s; it "
                     "takes F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS)",
                     qfit_type_name(type), t->name);
            free(types);
            return -1;
        }
        if (!on) continue;
        uint64_t rows = 1;
        for (uint32_t d = 1; d < t->n_dims && d < 4; d++) rows *= (uint64_t)t->ne[d];
        const uint64_t bytes = types ? (uint64_t)qfit_row_size(type, t->ne[0]) * rows : t->nbytes;
        *out += bytes;
        /* what the host no longer holds of it: its rows (given back once uploaded) and the
         * packed form the CPU would have made (qfit_model_load_for packs only the CPU's
         * layers); token_embd stays: the lookup runs on the host */
        if (!strcmp(t->name, "token_embd.weight")) continue;
        *host_drop += bytes;
        const size_t pb = here && t->ne[2] <= 1 && packed_at_load(t->name) ? qfit_pack_bytes(type, t->ne[0], t->ne[1]) : 0;
        if (pb) *host_drop += pb - bytes;
    }
    free(types);
    return 0;
}

/* The GPU's side of s's offload into r, and the host's KV cache reduced to the layers the
 * CPU runs (src/model/context.c allocates no host cells for the others). */
static int plan_offload(const qfit_plan_model *m, const qfit_plan_machine *mach, const qfit_plan_settings *s,
                        int ftype, int batch, qfit_plan_result *r, char *err, size_t err_len)
{
    /* what the Vulkan backend refuses (src/model/backend_vulkan.c, vk_supports) */
    const char *no = m->n_expert > 0 ? "mixture-of-experts FFN" : m->n_swa > 0 ? "sliding-window attention" : NULL;
    for (size_t i = 0; !no && i < m->n_tensors; i++)
        if (strstr(m->tensors[i].name, ".bias")) no = "Q/K/V or output biases";
    if (!no && m->facts && m->facts->attn_bias) no = "Q/K/V biases";
    if (!no && (m->head_dim_k != m->head_dim_v || m->head_dim_k > QFIT_VK_MAX_HEAD || m->head_dim_k % 2))
        no = "head dimensions the Vulkan attention does not take (K and V equal, even, at most 256)";
    if (!no && (m->n_head_kv <= 0 || m->n_head % m->n_head_kv)) no = "its head counts";
    if (no) {
        snprintf(err, err_len, "layer offload: the Vulkan backend cannot run this %s model yet (%s)", m->arch, no);
        return -1;
    }
    if (s->n_gpu_layers < -1) {
        snprintf(err, err_len, "%d GPU layers: give -1 (all) or 0 .. %lld", s->n_gpu_layers, (long long)m->n_layer + 1);
        return -1;
    }
    const int n_layer = (int)m->n_layer;
    const int ngl = s->n_gpu_layers > n_layer + 1 ? n_layer + 1 : s->n_gpu_layers;
    int first;
    r->offload = true;
    r->n_gpu_layers = qfit_offload_split(n_layer, ngl, &first, &r->gpu_output);
    if (plan_engine_vulkan_bytes(m, r->n_ctx, batch, r->n_parallel, r->kv_type, r->kv_type_v, ngl, &r->gpu_kv_bytes,
                                 &r->gpu_compute_bytes) != 0) {
        snprintf(err, err_len, "layer offload: the Vulkan backend's KV cache takes f16, q8_0 and q4_0 so far (%s/%s "
                 "asked for)",
                 qfit_plan_kv_name(r->kv_type), qfit_plan_kv_name(r->kv_type_v));
        return -1;
    }
    const bool here = mach->kind == QFIT_MACHINE_CPU || mach->kind == QFIT_MACHINE_CUSTOM;
    uint64_t host_drop;
    if (gpu_weight_bytes(m, ftype, first, r->gpu_output, here, &r->gpu_weights_bytes, &host_drop, err, err_len) != 0)
        return -1;
    r->weights_resident_bytes = r->weights_resident_bytes > host_drop ? r->weights_resident_bytes - host_drop : 0;
    r->gpu_total_bytes = r->gpu_weights_bytes + r->gpu_kv_bytes + r->gpu_compute_bytes;
    /* the host cache: the CPU's layers only (no sliding layers here: refused above) */
    const uint64_t per_layer_k = r->k_bytes / (uint64_t)n_layer, per_layer_v = (r->kv_bytes - r->k_bytes) / (uint64_t)n_layer;
    r->k_bytes = per_layer_k * (uint64_t)first;
    r->v_bytes = per_layer_v * (uint64_t)first;
    r->kv_bytes = r->k_bytes + r->v_bytes;
    r->gpu_unified = s->gpu_mem_bytes == 0;
    r->gpu_mem_bytes = s->gpu_mem_bytes;
    if (r->gpu_unified) {
        if (mach->kind == QFIT_MACHINE_GPU) {
            snprintf(err, err_len, "layer offload on a GPU machine profile: give the host's memory with --mem and the "
                     "GPU's with --gpu-mem");
            return -1;
        }
    } else {
        r->gpu_budget_bytes = s->gpu_mem_bytes > QFIT_PLAN_GPU_RESERVE_BYTES ? s->gpu_mem_bytes - QFIT_PLAN_GPU_RESERVE_BYTES : 0;
        r->gpu_verdict = qfit_plan_verdict_for(r->gpu_total_bytes, r->gpu_budget_bytes);
    }
    return 0;
}

int qfit_plan_fit_layers(const qfit_plan_model *m, const qfit_plan_machine *mach, const qfit_plan_settings *base,
                         qfit_plan_result *best, char *err, size_t err_len)
{
    qfit_plan_settings s = *base;
    s.offload = true;
    /* every count, most first: the sizes grow with the count, so the first that fits is the most */
    for (int ngl = (int)m->n_layer + 1; ngl >= 0; ngl--) {
        s.n_gpu_layers = ngl;
        if (qfit_plan_compute(m, mach, &s, best, err, err_len) != 0) return -1;
        if (best->verdict != QFIT_VERDICT_NO_FIT) return 1;
    }
    return 0;
}

int qfit_plan_compute(const qfit_plan_model *m, const qfit_plan_machine *mach,
                      const qfit_plan_settings *s, qfit_plan_result *r, char *err, size_t err_len)
{
    memset(r, 0, sizeof *r);
    if (!m || !mach || !s) { snprintf(err, err_len, "invalid arguments"); return -1; }
    /* weights */
    wcache_entry wc;
    const char *mix = s->mix;
    int ftype_used = -1;   /* the mix the weights are sized in (-1: as stored) */
    if (mix) {
        int ftype = plan_ftype_from_name(mix);
        ftype_used = ftype;
        if (ftype < 0) {
            snprintf(err, err_len, "unknown quantization mix '%s' (qfit plan --table lists them)", mix);
            return -1;
        }
        snprintf(r->mix, sizeof r->mix, "%s", plan_ftype_name(ftype));
        if (weights_cached(m, ftype, &wc, err, err_len) < 0) return -1;
    } else if (m->from_gguf) {
        r->as_stored = true;
        const char *fn = m->file_type >= 0 ? plan_ftype_name(m->file_type) : NULL;
        snprintf(r->mix, sizeof r->mix, "%s", fn ? fn : "as stored");
        if (weights_cached(m, -1, &wc, err, err_len) < 0) return -1;
    } else {   /* a catalog model: as it is published (gpt-oss: MXFP4_MOE), else Q4_K_M */
        const char *def = m->facts && m->facts->mix ? m->facts->mix : "Q4_K_M";
        snprintf(r->mix, sizeof r->mix, "%s", def);
        ftype_used = plan_ftype_from_name(def);
        if (weights_cached(m, ftype_used, &wc, err, err_len) < 0) return -1;
    }
    r->weights_bytes = wc.bytes;
    const uint64_t aq_row = wc.aq_row;
    /* settings */
    int64_t def_ctx = m->n_ctx_train > 0 && m->n_ctx_train < QFIT_PLAN_DEFAULT_CTX ? m->n_ctx_train
                                                                                  : QFIT_PLAN_DEFAULT_CTX;
    r->n_ctx = s->n_ctx > 0 ? s->n_ctx : def_ctx;
    r->workload = s->workload;
    if (r->workload != QFIT_PLAN_RUN && r->workload != QFIT_PLAN_PPL) {
        snprintf(err, err_len, "unknown workload %d", s->workload);
        return -1;
    }
    /* 0: unset (K: f16, V: as K); F32, whose type id is 0, comes as QFIT_PLAN_KV_F32 */
    r->kv_type = s->kv_type == QFIT_PLAN_KV_F32 ? QFIT_TYPE_F32 : s->kv_type > 0 ? s->kv_type : QFIT_TYPE_F16;
    r->kv_type_v = s->kv_type_v == QFIT_PLAN_KV_F32 ? QFIT_TYPE_F32 : s->kv_type_v > 0 ? s->kv_type_v : r->kv_type;
    if ((s->kv_type < 0 && s->kv_type != QFIT_PLAN_KV_F32) || (s->kv_type_v < 0 && s->kv_type_v != QFIT_PLAN_KV_F32) ||
        !plan_engine_kv_type_ok(r->kv_type) || !plan_engine_kv_type_ok(r->kv_type_v)) {
        int bad = !plan_engine_kv_type_ok(r->kv_type) || s->kv_type < -2 || s->kv_type == -1 ? s->kv_type : s->kv_type_v;
        snprintf(err, err_len, "unsupported KV cache type %s (supported: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, "
                 "q5_1, iq4_nl)", qfit_type_name(bad));
        return -1;
    }
    if (s->flash_attn < -1 || s->flash_attn > 1) {
        snprintf(err, err_len, "invalid flash attention setting %d (1 on, 0 off, -1 auto)", s->flash_attn);
        return -1;
    }
    /* as the engine (qfit_context_new): auto means on, whatever the cache types; the
     * plain path reads quantized caches too, so nothing forces it on */
    r->flash_attn = s->flash_attn != 0;
    r->n_parallel = s->n_parallel > 0 ? s->n_parallel : 1;
    /* perplexity, and an encoder (the engine's default for one: the whole context in one pass) */
    const qfit_arch_info *ai = qfit_arch_find(m->arch);
    r->n_batch = s->n_batch > 0 ? s->n_batch
                 : r->workload == QFIT_PLAN_PPL || (ai && ai->embd_only) ? (int)(r->n_ctx < (1 << 20) ? r->n_ctx : (1 << 20))
                                                                         : QFIT_PLAN_DEFAULT_BATCH;
    if (r->n_ctx < 1 || r->n_ctx > (1 << 24) || r->n_parallel > 256 || r->n_batch > (1 << 20)) {
        snprintf(err, err_len, "settings out of range (context 1..16777216, parallel 1..256, batch 1..1048576)");
        return -1;
    }
    if (r->workload == QFIT_PLAN_PPL && (r->n_parallel != 1 || r->n_ctx < 4)) {
        snprintf(err, err_len, "the ppl workload runs one sequence of at least 4 tokens");
        return -1;
    }
    const int64_t cells = r->n_ctx * r->n_parallel;
    if (cells > (1 << 24)) {
        snprintf(err, err_len, "context x parallel = %lld cells is too large", (long long)cells);
        return -1;
    }
    /* the engine clamps a pass to one sequence's context, and sizes its RoPE tables and
     * score rows by that context (qfit_context_new) */
    int batch = r->n_batch > r->n_ctx ? (int)r->n_ctx : r->n_batch;
    /* memory */
    r->kv_bytes = plan_engine_kv_bytes(m, r->n_ctx, r->n_parallel, r->n_batch, r->kv_type, r->kv_type_v,
                                       &r->k_bytes);
    plan_engine_kv_layout(m, r->n_ctx, r->n_batch, &r->kv_sliding_layers, &r->kv_sliding_cells);
    if (!r->kv_bytes) {
        snprintf(err, err_len, "KV cache type %s/%s cannot hold heads of dimension %lld/%lld (not a multiple of "
                 "its block)", qfit_type_name(r->kv_type), qfit_type_name(r->kv_type_v), (long long)m->head_dim_k,
                 (long long)m->head_dim_v);
        return -1;
    }
    r->v_bytes = r->kv_bytes - r->k_bytes;
    /* what the run writes of the engine's buffers (the rest stays virtual) */
    r->compute_bytes = plan_engine_compute_written(m, r->n_ctx, batch, r->flash_attn, logits_rows_written(r), aq_row,
                                                   &r->compute_alloc_bytes);
    /* resident weights: the mapping's pages are read as the forward pass uses them.
     * Every matrix is read whole; the embedding table of an untied model is only a
     * lookup, read one row per token: at most one row per cell (a page at least). */
    r->weights_resident_bytes = r->weights_bytes;
    /* on this machine's CPU, matrices repacked at load: their packed form is held in
     * place of their rows (a tied model's token_embd too; its lookups then touch rows) */
    const bool here = mach->kind == QFIT_MACHINE_CPU || mach->kind == QFIT_MACHINE_CUSTOM;
    if (here) r->weights_resident_bytes = (uint64_t)((int64_t)r->weights_bytes + wc.pack_extra);
    if ((!m->tied || (here && wc.embd_packed)) && wc.embd_bytes && wc.embd_row) {
        const uint64_t page = 4096, row = (wc.embd_row + page - 1) / page * page;
        const uint64_t rows = (uint64_t)(cells < m->n_vocab ? cells : m->n_vocab);
        const uint64_t touched = rows * row < wc.embd_bytes ? rows * row : wc.embd_bytes;
        r->weights_resident_bytes = r->weights_resident_bytes - wc.embd_bytes + touched;
    }
    if (s->offload && plan_offload(m, mach, s, ftype_used, batch, r, err, err_len) != 0) return -1;
    r->runtime_base_bytes = qfit_plan_runtime_reserve_bytes(mach);
    r->metadata_bytes = m->metadata_bytes;
    r->tokenizer_bytes = (uint64_t)(m->n_vocab + m->n_merges) * QFIT_PLAN_TOKENIZER_ENTRY_BYTES;
    r->eval_bytes = r->workload == QFIT_PLAN_PPL ? ppl_eval_bytes(m, r->n_ctx) : 0;
    r->runtime_bytes = r->runtime_base_bytes + r->metadata_bytes + r->tokenizer_bytes + r->eval_bytes;
    r->os_bytes = qfit_plan_os_reserve_bytes(mach);
    r->overhead_bytes = r->runtime_bytes + r->os_bytes;
    r->process_bytes = r->weights_resident_bytes + r->kv_bytes + r->compute_bytes + r->runtime_bytes;
    r->total_bytes = r->process_bytes + r->os_bytes;
    r->budget_bytes = qfit_plan_budget_bytes(mach);
    if (r->offload && r->gpu_unified) r->total_bytes += r->gpu_total_bytes;
    r->verdict = qfit_plan_verdict_for(r->total_bytes, r->budget_bytes);
    if (r->offload && !r->gpu_unified && r->gpu_verdict > r->verdict) r->verdict = r->gpu_verdict;
    r->bits_per_weight = m->n_params ? (double)r->weights_bytes * 8.0 / (double)m->n_params : 0;
    /* speed: each generated token reads every weight once (token_embd only one row,
     * unless it doubles as the output matrix) and the whole KV cache at full context */
    const uint64_t embd = m->tied ? 0 : wc.embd_bytes;
    /* a mixture of experts reads only the chosen experts' matrices (all stay resident) */
    uint64_t idle_experts = 0;
    if (m->n_expert > 0 && m->n_expert_used > 0 && wc.expert_bytes)
        idle_experts = wc.expert_bytes - wc.expert_bytes / (uint64_t)m->n_expert * (uint64_t)m->n_expert_used;
    r->bytes_per_token = r->weights_bytes - embd - idle_experts + r->kv_bytes / (uint64_t)r->n_parallel;
    /* an encoder generates nothing: no generation speed (tps 0) */
    const bool encoder = ai && ai->embd_only;
    if (mach->bandwidth_gbs > 0 && r->bytes_per_token > 0 && !encoder) {
        double bw = mach->bandwidth_gbs * 1e9;
        r->tps_low = 0.5 * bw / (double)r->bytes_per_token;
        r->tps_high = 0.8 * bw / (double)r->bytes_per_token;
    }
    return 0;
}

/* ------------------------------------------------------------ --fit */

static int better(const qfit_plan_result *a, double qa, const qfit_plan_result *b, double qb)
{
    if (qa != qb) return qa < qb;
    if (a->verdict != b->verdict) return a->verdict < b->verdict;
    if (a->n_ctx != b->n_ctx) return a->n_ctx > b->n_ctx;
    return a->total_bytes < b->total_bytes;
}

/* ------------------------------------------------------------ measured quality */

int qfit_plan_quality_load(const char *path, qfit_plan_quality *q, char *err, size_t err_len)
{
    memset(q, 0, sizeof *q);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        snprintf(err, err_len, "%s: %s (line %d)", path, je.text, je.line);
        return -1;
    }
    const json_t *rows = json_object_get(j, "rows");
    if (!json_is_array(rows)) {
        snprintf(err, err_len, "%s is not a qfit eval JSON (no \"rows\" array: make it with qfit eval --json)", path);
        json_decref(j);
        return -1;
    }
    size_t i;
    const json_t *r;
    json_array_foreach(rows, i, r) {
        const char *name = json_string_value(json_object_get(r, "name"));
        const json_t *kld = json_object_get(r, "kld_mean");
        /* the base row is the full-precision model itself: F32 or F16 by its bits per weight */
        const double bpw = json_number_value(json_object_get(r, "bpw"));
        if (json_is_true(json_object_get(r, "base"))) name = fabs(bpw - 32) < 0.1 ? "F32" : fabs(bpw - 16) < 0.1 ? "F16" : NULL;
        const qfit_plan_mix *mx = qfit_plan_mix_find(name);
        if (!mx || !json_is_number(kld) || json_number_value(kld) < 0 || q->n == QFIT_PLAN_QUALITY_MAX) continue;
        snprintf(q->rows[q->n].name, sizeof q->rows[q->n].name, "%s", mx->name);
        q->rows[q->n].mean_kld = json_number_value(kld);
        q->n++;
    }
    json_decref(j);
    if (q->n == 0) {
        snprintf(err, err_len, "%s has no row for a quantization type (Q4_K_M, ...): nothing to rank", path);
        return -1;
    }
    snprintf(q->source, sizeof q->source, "%s", path);
    return 0;
}

/* The mean KLD --fit ranks a mix by: measured (q) or the table's; < 0 when unknown. */
static double mix_kld(const qfit_plan_quality *q, const qfit_plan_mix *mx)
{
    if (!q) return mx->mean_kld;
    for (size_t i = 0; i < q->n; i++)
        if (!strcasecmp(q->rows[i].name, mx->name)) return q->rows[i].mean_kld;
    return -1;   /* not measured for this model: not a candidate */
}

int qfit_plan_fit(const qfit_plan_model *m, const qfit_plan_machine *mach,
                  const qfit_plan_settings *base, const char *task, int64_t min_ctx,
                  qfit_plan_result *best, char *err, size_t err_len)
{
    return qfit_plan_fit_quality(m, mach, base, task, min_ctx, NULL, best, err, err_len);
}

int qfit_plan_fit_quality(const qfit_plan_model *m, const qfit_plan_machine *mach,
                          const qfit_plan_settings *base, const char *task, int64_t min_ctx,
                          const qfit_plan_quality *quality, qfit_plan_result *best, char *err, size_t err_len)
{
    const char *floor_name = NULL;
    if (task) {
        if (!qfit_plan_task_valid(task)) {
            snprintf(err, err_len, "unknown task '%s' (chat, code, math, reasoning, facts, formatting)", task);
            return -1;
        }
        floor_name = qfit_plan_task_floor(task);
    }
    /* the task's floor: a mix at least as good as the floor mix, by the measured numbers
     * when the floor mix was measured, else by the table's ranking */
    const qfit_plan_mix *floor_mx = floor_name ? qfit_plan_mix_find(floor_name) : NULL;
    const bool floor_measured = floor_mx && mix_kld(quality, floor_mx) >= 0;
    double floor_kld = !floor_mx ? INFINITY : floor_measured ? mix_kld(quality, floor_mx) : floor_mx->mean_kld;
    int64_t def_ctx = m->n_ctx_train > 0 && m->n_ctx_train < QFIT_PLAN_DEFAULT_CTX ? m->n_ctx_train
                                                                                  : QFIT_PLAN_DEFAULT_CTX;
    int64_t target = base->n_ctx > 0 ? base->n_ctx : def_ctx;
    if (min_ctx > target) target = min_ctx;
    int64_t lo = min_ctx > 0 ? min_ctx : (target < 2048 ? target : 2048);
    /* context candidates: target, halving down to lo, and lo itself */
    int64_t ctxs[40];
    int nc = 0;
    for (int64_t c = target; c >= lo && nc < 38; c /= 2) ctxs[nc++] = c;
    if (nc == 0 || ctxs[nc - 1] != lo) ctxs[nc++] = lo;
    const int kvs[3] = { QFIT_TYPE_F16, QFIT_TYPE_Q8_0, QFIT_TYPE_Q4_0 };
    bool found = false;
    double best_q = INFINITY;
    for (size_t i = 0; i < N_MIXES; i++) {
        const double kld = mix_kld(quality, &mixes[i]);
        if (kld < 0 || mixes[i].mean_kld < 0) continue;
        if ((floor_measured ? kld : mixes[i].mean_kld) > floor_kld) continue;
        for (int k = 0; k < 3; k++) {
            /* the mix's loss (measured or the table's) plus the KV cache type's */
            double q = qfit_plan_quality_loss(mixes[i].name, kvs[k]) - mixes[i].mean_kld + kld;
            for (int c = 0; c < nc; c++) {
                qfit_plan_settings s = *base;
                s.mix = mixes[i].name;
                s.kv_type = kvs[k];
                s.kv_type_v = 0;   /* the same type for V */
                s.n_ctx = ctxs[c];
                qfit_plan_result r;
                if (qfit_plan_compute(m, mach, &s, &r, err, err_len) < 0) return -1;
                if (r.verdict == QFIT_VERDICT_NO_FIT) continue;
                if (!found || better(&r, q, best, best_q)) {
                    *best = r;
                    best_q = q;
                    found = true;
                }
                break;   /* the longest context that fits for this mix and KV type */
            }
        }
    }
    return found ? 1 : 0;
}

/* ------------------------------------------------------------ recommendations */

void qfit_plan_command(char *buf, size_t cap, const char *model_spec, const char *machine_args,
                       const qfit_plan_result *r)
{
    int n = snprintf(buf, cap, "qfit plan %s%s%s", model_spec, machine_args && *machine_args ? " " : "",
                     machine_args ? machine_args : "");
    if (n < 0 || (size_t)n >= cap) return;
    if (!r->as_stored) n += snprintf(buf + n, cap - (size_t)n, " --quant %s", r->mix);
    if ((size_t)n < cap) n += snprintf(buf + n, cap - (size_t)n, " --ctx %lld", (long long)r->n_ctx);
    if ((size_t)n < cap && r->kv_type == r->kv_type_v && r->kv_type != QFIT_TYPE_F16)
        n += snprintf(buf + n, cap - (size_t)n, " --kv-type %s", qfit_plan_kv_name(r->kv_type));
    if ((size_t)n < cap && r->kv_type != r->kv_type_v)
        n += snprintf(buf + n, cap - (size_t)n, " --cache-type-k %s --cache-type-v %s", qfit_plan_kv_name(r->kv_type),
                      qfit_plan_kv_name(r->kv_type_v));
    /* flash attention is the engine's default (auto = on): only "off" needs saying */
    if ((size_t)n < cap && !r->flash_attn) n += snprintf(buf + n, cap - (size_t)n, " --flash-attn off");
    if ((size_t)n < cap && r->workload == QFIT_PLAN_PPL) n += snprintf(buf + n, cap - (size_t)n, " --workload ppl");
    if ((size_t)n < cap && r->n_parallel != 1) n += snprintf(buf + n, cap - (size_t)n, " --parallel %d", r->n_parallel);
    if ((size_t)n < cap && r->n_batch != QFIT_PLAN_DEFAULT_BATCH)
        n += snprintf(buf + n, cap - (size_t)n, " --batch %d", r->n_batch);
    if ((size_t)n < cap && r->offload)
        n += snprintf(buf + n, cap - (size_t)n, " --gpu-layers %d", r->gpu_output ? -1 : r->n_gpu_layers);
    if ((size_t)n < cap && r->offload && !r->gpu_unified)
        snprintf(buf + n, cap - (size_t)n, " --gpu-mem %llu", (unsigned long long)r->gpu_mem_bytes);
}

static qfit_plan_settings settings_of(const qfit_plan_result *r)
{
    qfit_plan_settings s = { r->as_stored ? NULL : r->mix, r->n_ctx, qfit_plan_kv_setting(r->kv_type),
                             r->flash_attn ? 1 : 0, r->n_parallel, r->n_batch, qfit_plan_kv_setting(r->kv_type_v),
                             r->workload, r->offload, r->gpu_output ? -1 : r->n_gpu_layers,
                             r->gpu_unified ? 0 : r->gpu_mem_bytes };
    return s;
}

static bool reaches(const qfit_plan_result *r, qfit_plan_verdict want) { return r->verdict <= want; }

/* The side a fix is measured on: with layers on a discrete GPU that does not fit (or fits
 * worse than the host), the GPU's total; else the host's total. */
static bool gpu_binds(const qfit_plan_result *r)
{
    return r->offload && !r->gpu_unified &&
           r->gpu_verdict >= qfit_plan_verdict_for(r->total_bytes, r->budget_bytes) &&
           r->gpu_verdict != QFIT_VERDICT_COMFORTABLE;
}

static void add_fix(qfit_plan_fix *fixes, size_t cap, size_t *n, const char *what, const char *model_spec,
                    const char *machine_args, const qfit_plan_result *cur, const qfit_plan_result *nr)
{
    const bool gpu = gpu_binds(cur);
    const uint64_t was = gpu ? cur->gpu_total_bytes : cur->total_bytes, now = gpu ? nr->gpu_total_bytes : nr->total_bytes;
    if (*n >= cap || now >= was) return;
    qfit_plan_fix *f = &fixes[(*n)++];
    snprintf(f->what, sizeof f->what, "%s", what);
    qfit_plan_command(f->cmd, sizeof f->cmd, model_spec, machine_args, nr);
    f->saves_bytes = was - now;
    f->new_total_bytes = now;
    f->new_verdict = nr->verdict;
}

size_t qfit_plan_recommend(const qfit_plan_model *m, const qfit_plan_machine *mach,
                           const qfit_plan_settings *s0, const qfit_plan_result *cur,
                           const char *model_spec, const char *machine_args,
                           qfit_plan_fix *fixes, size_t cap)
{
    (void)s0;
    size_t n = 0;
    char err[256], what[96];
    if (cur->verdict == QFIT_VERDICT_COMFORTABLE) return 0;
    const qfit_plan_verdict want = cur->verdict == QFIT_VERDICT_TIGHT ? QFIT_VERDICT_COMFORTABLE : QFIT_VERDICT_TIGHT;
    const qfit_plan_settings base = settings_of(cur);
    qfit_plan_result r, pick;

    /* 0. with layers on a GPU that cannot hold them: the most layers that fit */
    if (gpu_binds(cur) && qfit_plan_fit_layers(m, mach, &base, &r, err, sizeof err) == 1) {
        snprintf(what, sizeof what, "fewer GPU layers: %d", r.n_gpu_layers);
        add_fix(fixes, cap, &n, what, model_spec, machine_args, cur, &r);
    }

    /* 1. lower quantization: the best-quality smaller mix that reaches the goal, else the smallest */
    {
        bool have = false;
        for (size_t i = 0; i < N_MIXES; i++) {
            if (mixes[i].mean_kld < 0) continue;
            qfit_plan_settings s = base;
            s.mix = mixes[i].name;
            if (qfit_plan_compute(m, mach, &s, &r, err, sizeof err) < 0) continue;
            if (r.weights_bytes >= cur->weights_bytes) continue;
            if (reaches(&r, want)) { pick = r; have = true; break; }
            if (!have || r.total_bytes < pick.total_bytes) { pick = r; have = true; }
        }
        if (have) {
            snprintf(what, sizeof what, "lower quantization to %s", pick.mix);
            add_fix(fixes, cap, &n, what, model_spec, machine_args, cur, &pick);
        }
    }
    /* 2. KV cache q8_0, then q4_0 (K and V; qfit reads quantized caches on both
     *    attention paths, so the flash setting stays as it is) */
    const int kvs[2] = { QFIT_TYPE_Q8_0, QFIT_TYPE_Q4_0 };
    for (int k = 0; k < 2; k++) {
        qfit_plan_settings s = base;
        s.kv_type = s.kv_type_v = kvs[k];
        if (qfit_plan_compute(m, mach, &s, &r, err, sizeof err) < 0 || r.kv_bytes >= cur->kv_bytes) continue;
        snprintf(what, sizeof what, "KV cache %s", qfit_plan_kv_name(kvs[k]));
        add_fix(fixes, cap, &n, what, model_spec, machine_args, cur, &r);
    }
    /* 3. flash attention, when it is off: the plain path materializes one row of
     *    n_ctx scores per thread (the engine sizes them for QFIT_MAX_THREADS
     *    threads); the tiled path with its online softmax needs none. The saving is
     *    the engine's own figure: its compute buffers with and without. */
    if (!cur->flash_attn) {
        qfit_plan_settings s = base;
        s.flash_attn = 1;
        if (qfit_plan_compute(m, mach, &s, &r, err, sizeof err) == 0)
            add_fix(fixes, cap, &n, "flash attention on (no score rows)", model_spec, machine_args, cur, &r);
    }
    /* 4. shorter context: the longest (halving) that reaches the goal, else the
     *    shortest tried (not below 1024: shorter is rarely usable) */
    {
        bool have = false;
        for (int64_t c = cur->n_ctx / 2; c >= 1024; c /= 2) {
            qfit_plan_settings s = base;
            s.n_ctx = c;
            if (qfit_plan_compute(m, mach, &s, &r, err, sizeof err) < 0) break;
            pick = r;
            have = true;
            if (reaches(&r, want)) break;
        }
        if (have) {
            snprintf(what, sizeof what, "shorter context: %lld", (long long)pick.n_ctx);
            add_fix(fixes, cap, &n, what, model_spec, machine_args, cur, &pick);
        }
    }
    /* 5. smaller model of the same family (catalog models) */
    if (m->facts && n < cap) {
        const qfit_plan_facts *bestf = NULL, *smallest = NULL;
        qfit_plan_result best_r, small_r;
        for (size_t i = 0; i < qfit_plan_catalog_count(); i++) {
            const qfit_plan_facts *f = qfit_plan_catalog_at(i);
            if (f == m->facts || strcmp(f->family, m->facts->family) != 0) continue;
            qfit_plan_model sm;
            if (qfit_plan_model_from_facts(f, &sm, err, sizeof err) < 0) continue;
            qfit_plan_settings s = base;
            if (s.n_ctx > sm.n_ctx_train) s.n_ctx = sm.n_ctx_train;
            int rc = qfit_plan_compute(&sm, mach, &s, &r, err, sizeof err);
            qfit_plan_model_free(&sm);
            if (rc < 0 || r.weights_bytes >= cur->weights_bytes) continue;
            if (reaches(&r, want) && (!bestf || r.weights_bytes > best_r.weights_bytes)) { bestf = f; best_r = r; }
            if (!smallest || r.total_bytes < small_r.total_bytes) { smallest = f; small_r = r; }
        }
        const qfit_plan_facts *f = bestf ? bestf : smallest;
        if (f) {
            qfit_plan_result *rr = bestf ? &best_r : &small_r;
            snprintf(what, sizeof what, "smaller model: %s", f->name);
            add_fix(fixes, cap, &n, what, f->name, machine_args, cur, rr);
        }
    }
    return n;
}
