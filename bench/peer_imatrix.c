/* peer-imatrix — llama.cpp's importance matrix and its imatrix quantization, driven from C.
 *
 *   peer-imatrix collect MODEL.gguf TEXT OUT.gguf [--ctx 512] [--chunks N] [--threads T]
 *       What llama-imatrix does: the text (its final newline dropped, as -f does) is
 *       tokenized with BOS, cut into chunks of
 *       --ctx tokens, the first token of each chunk replaced by BOS; each chunk is
 *       decoded with all logits on, and an eval callback (cb_eval) looks at every
 *       GGML_OP_MUL_MAT whose src0 is a "blk.*" weight and whose src1 (F32) has at
 *       least 16 rows: it adds x_j^2 of every src1 row to the weight's sums (float,
 *       as llama-imatrix) and counts the rows. The result is written through ggml's
 *       own gguf API exactly as llama-imatrix's save_imatrix does (general.type,
 *       imatrix.datasets/chunk_count/chunk_size, "<name>.in_sum2" [n, 1] and
 *       "<name>.counts" [1, 1] F32 tensors in name order). Dense models only.
 *
 *   peer-imatrix quantize IN.gguf OUT.gguf FTYPE IMATRIX [threads]
 *       What llama-quantize --imatrix does: the imatrix GGUF is read with ggml's gguf
 *       reader (means = in_sum2 / counts, 1 where a count is 0), handed to
 *       llama_model_quantize as the NULL-terminated llama_model_imatrix_data array,
 *       with the quantize.imatrix.* metadata llama-quantize adds as KV overrides.
 *
 * Built like bench/peer_batched.c (qb_build_peer_tool imatrix in bench/common.sh).
 * Facts from llama.cpp tools/imatrix/imatrix.cpp and tools/quantize/quantize.cpp;
 * our own code. */
#include "peer_common.h"
#include "gguf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void usage(void)
{
    fprintf(stderr, "usage: peer-imatrix collect MODEL.gguf TEXT OUT.gguf [--ctx 512] [--chunks N] [--threads T]\n"
                    "       peer-imatrix quantize IN.gguf OUT.gguf FTYPE IMATRIX.gguf [threads]\n");
    exit(2);
}

/* ---------------------------------------------------------------- collect */

typedef struct {
    char    name[GGML_MAX_NAME];
    int64_t n;
    float  *sum2;
    int64_t count;
} entry;

typedef struct {
    entry  *e;
    int     n, cap;
} stats;

static entry *stats_get(stats *s, const char *name, int64_t n)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->e[i].name, name)) {
            if (s->e[i].n != n) peer_die("%s: inconsistent size %lld vs %lld", name, (long long)s->e[i].n, (long long)n);
            return &s->e[i];
        }
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->e = realloc(s->e, (size_t)s->cap * sizeof *s->e);
        if (!s->e) peer_die("out of memory");
    }
    entry *e = &s->e[s->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->n = n;
    e->sum2 = calloc((size_t)n, sizeof(float));
    if (!e->sum2) peer_die("out of memory");
    return e;
}

static bool collect_cb(struct ggml_tensor *t, bool ask, void *user)
{
    stats *s = user;
    const struct ggml_tensor *src0 = t->src[0], *src1 = t->src[1];
    if (ask) {
        if (t->op == GGML_OP_MUL_MAT_ID) peer_die("MoE models are not handled by this tool");
        if (t->op != GGML_OP_MUL_MAT) return false;
        if (src1->ne[1] < 16 || src1->type != GGML_TYPE_F32) return false;
        return strncmp(src0->name, "blk.", 4) == 0;
    }
    if (!ggml_backend_buffer_is_host(src1->buffer)) peer_die("activations not in host memory");
    if (src0->ne[2] * src0->ne[3] != 1) peer_die("%s: 3-D weights are not handled", src0->name);
    entry *e = stats_get(s, src0->name, src1->ne[0]);
    for (int64_t i3 = 0; i3 < src1->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < src1->ne[2]; i2++)
            for (int64_t r = 0; r < src1->ne[1]; r++) {
                const float *x = (const float *)((const char *)src1->data + r * src1->nb[1] + i2 * src1->nb[2] +
                                                 i3 * src1->nb[3]);
                for (int64_t j = 0; j < src1->ne[0]; j++) e->sum2[j] += x[j] * x[j];
            }
    e->count += ggml_nrows(src1);
    return true;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static int cmd_collect(int argc, char **argv)
{
    if (argc < 5) usage();
    const char *model_path = argv[2], *text_path = argv[3], *out_path = argv[4];
    int n_ctx = 512, n_chunks = -1, threads = peer_default_threads();
    for (int i = 5; i < argc; i++) {
        if (!strcmp(argv[i], "--ctx") && i + 1 < argc) n_ctx = peer_parse_int(argv[++i], "--ctx");
        else if (!strcmp(argv[i], "--chunks") && i + 1 < argc) n_chunks = peer_parse_int(argv[++i], "--chunks");
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = peer_parse_int(argv[++i], "--threads");
        else usage();
    }
    peer_init(false);
    struct llama_model *model = peer_load_model(model_path, false);
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    size_t tlen;
    char *text = peer_read_file(text_path, &tlen);
    if (tlen > 0 && text[tlen - 1] == '\n') tlen--;   /* as llama.cpp's -f */
    int n_tok;
    llama_token *tok = peer_tokenize(vocab, text, tlen, true, false, &n_tok);
    const bool add_bos = llama_vocab_get_add_bos(vocab);
    int n_chunk = n_tok / n_ctx;
    if (n_chunks >= 0 && n_chunks < n_chunk) n_chunk = n_chunks;
    if (n_chunk < 1) peer_die("the text has %d tokens, fewer than one chunk of %d", n_tok, n_ctx);

    stats st = { 0 };
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)n_ctx;
    cp.n_batch = (uint32_t)n_ctx;
    cp.n_ubatch = (uint32_t)n_ctx;
    cp.n_seq_max = 1;
    cp.n_threads = cp.n_threads_batch = threads;
    cp.cb_eval = collect_cb;
    cp.cb_eval_user_data = &st;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) peer_die("cannot create a context");
    struct llama_batch b = llama_batch_init(n_ctx, 0, 1);
    for (int c = 0; c < n_chunk; c++) {
        llama_memory_clear(llama_get_memory(ctx), true);
        b.n_tokens = n_ctx;
        for (int k = 0; k < n_ctx; k++) {
            b.token[k] = (k == 0 && add_bos) ? llama_vocab_bos(vocab) : tok[c * n_ctx + k];
            b.pos[k] = k;
            b.n_seq_id[k] = 1;
            b.seq_id[k][0] = 0;
            b.logits[k] = 1;   /* all outputs, as llama-imatrix */
        }
        if (llama_decode(ctx, b) != 0) peer_die("llama_decode failed on chunk %d", c);
        llama_synchronize(ctx);
    }
    llama_batch_free(b);

    qsort(st.e, (size_t)st.n, sizeof *st.e, cmp_entry);
    size_t mem = 0;
    for (int i = 0; i < st.n; i++) mem += 2 * (ggml_tensor_overhead() + (size_t)st.e[i].n * 4 + 64);
    struct ggml_init_params ip = { mem + 4096, NULL, false };
    struct ggml_context *gctx = ggml_init(ip);
    struct gguf_context *g = gguf_init_empty();
    const char *ds[1] = { text_path };
    gguf_set_val_str(g, "general.type", "imatrix");
    gguf_set_arr_str(g, "imatrix.datasets", ds, 1);
    gguf_set_val_u32(g, "imatrix.chunk_count", (uint32_t)n_chunk);
    gguf_set_val_u32(g, "imatrix.chunk_size", (uint32_t)n_ctx);
    for (int i = 0; i < st.n; i++) {
        struct ggml_tensor *s2 = ggml_new_tensor_2d(gctx, GGML_TYPE_F32, st.e[i].n, 1);
        struct ggml_tensor *cn = ggml_new_tensor_2d(gctx, GGML_TYPE_F32, 1, 1);
        ggml_format_name(s2, "%s.in_sum2", st.e[i].name);
        ggml_format_name(cn, "%s.counts", st.e[i].name);
        memcpy(s2->data, st.e[i].sum2, (size_t)st.e[i].n * sizeof(float));
        ((float *)cn->data)[0] = (float)st.e[i].count;
        gguf_add_tensor(g, s2);
        gguf_add_tensor(g, cn);
    }
    if (!gguf_write_to_file(g, out_path, false)) peer_die("cannot write %s", out_path);
    printf("%d entries, %d chunks of %d tokens -> %s\n", st.n, n_chunk, n_ctx, out_path);
    gguf_free(g);
    ggml_free(gctx);
    for (int i = 0; i < st.n; i++) free(st.e[i].sum2);
    free(st.e);
    llama_free(ctx);
    llama_model_free(model);
    free(tok);
    free(text);
    return 0;
}

/* ---------------------------------------------------------------- quantize */

static const struct { const char *name; enum llama_ftype ftype; } k_ftypes[] = {
    { "Q4_0", LLAMA_FTYPE_MOSTLY_Q4_0 },     { "Q4_1", LLAMA_FTYPE_MOSTLY_Q4_1 },
    { "Q5_0", LLAMA_FTYPE_MOSTLY_Q5_0 },     { "Q5_1", LLAMA_FTYPE_MOSTLY_Q5_1 },
    { "Q8_0", LLAMA_FTYPE_MOSTLY_Q8_0 },     { "Q2_K", LLAMA_FTYPE_MOSTLY_Q2_K },
    { "Q3_K_S", LLAMA_FTYPE_MOSTLY_Q3_K_S }, { "Q3_K_M", LLAMA_FTYPE_MOSTLY_Q3_K_M },
    { "Q3_K_L", LLAMA_FTYPE_MOSTLY_Q3_K_L }, { "Q4_K_S", LLAMA_FTYPE_MOSTLY_Q4_K_S },
    { "Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M }, { "Q5_K_S", LLAMA_FTYPE_MOSTLY_Q5_K_S },
    { "Q5_K_M", LLAMA_FTYPE_MOSTLY_Q5_K_M }, { "Q6_K", LLAMA_FTYPE_MOSTLY_Q6_K },
    { "IQ4_NL", LLAMA_FTYPE_MOSTLY_IQ4_NL }, { "IQ4_XS", LLAMA_FTYPE_MOSTLY_IQ4_XS },
};

static int cmd_quantize(int argc, char **argv)
{
    if (argc < 6) usage();
    llama_model_quantize_params qp = llama_model_quantize_default_params();
    bool found = false;
    for (size_t i = 0; i < sizeof k_ftypes / sizeof k_ftypes[0]; i++)
        if (!strcasecmp(argv[4], k_ftypes[i].name)) { qp.ftype = k_ftypes[i].ftype; found = true; }
    if (!found) peer_die("unknown FTYPE %s", argv[4]);
    if (argc > 6) qp.nthread = peer_parse_int(argv[6], "threads");
    const char *im_path = argv[5];

    peer_init(false);
    struct ggml_context *gctx = NULL;
    struct gguf_init_params gp = { false, &gctx };
    struct gguf_context *g = gguf_init_from_file(im_path, gp);
    if (!g) peer_die("%s is not a GGUF imatrix (legacy files are not read by this tool)", im_path);
    const int64_t kd = gguf_find_key(g, "imatrix.datasets"), kc = gguf_find_key(g, "imatrix.chunk_count");
    if (kd < 0 || kc < 0 || gguf_find_key(g, "imatrix.chunk_size") < 0) peer_die("missing imatrix metadata");

    int n = 0;
    struct llama_model_imatrix_data *data = calloc((size_t)gguf_get_n_tensors(g) + 1, sizeof *data);
    char **names = calloc((size_t)gguf_get_n_tensors(g) + 1, sizeof *names);
    for (struct ggml_tensor *t = ggml_get_first_tensor(gctx); t; t = ggml_get_next_tensor(gctx, t)) {
        const size_t L = strlen(t->name), S = strlen(".in_sum2");
        if (L <= S || strcmp(t->name + L - S, ".in_sum2")) continue;
        char base[GGML_MAX_NAME], cname[GGML_MAX_NAME + 8];
        snprintf(base, sizeof base, "%.*s", (int)(L - S), t->name);
        snprintf(cname, sizeof cname, "%s.counts", base);
        const struct ggml_tensor *c = ggml_get_tensor(gctx, cname);
        if (!c) peer_die("mismatched sums and counts for %s", base);
        const int64_t ne0 = t->ne[0], ne1 = t->ne[1];
        float *v = malloc((size_t)(ne0 * ne1) * sizeof(float));
        for (int64_t j = 0; j < ne1; j++) {
            const float count = ((const float *)c->data)[j];
            for (int64_t i = 0; i < ne0; i++)
                v[j * ne0 + i] = count > 0.0f ? ((const float *)t->data)[j * ne0 + i] / count : 1.0f;
        }
        names[n] = strdup(base);
        data[n].name = names[n];
        data[n].data = v;
        data[n].size = (size_t)(ne0 * ne1);
        n++;
    }
    qp.imatrix = data;   /* NULL-terminated by calloc */

    /* the metadata llama-quantize adds */
    struct llama_model_kv_override kvo[5];
    memset(kvo, 0, sizeof kvo);
    int k = 0;
    kvo[k].tag = LLAMA_KV_OVERRIDE_TYPE_STR;
    snprintf(kvo[k].key, sizeof kvo[k].key, "quantize.imatrix.file");
    snprintf(kvo[k].val_str, sizeof kvo[k].val_str, "%s", im_path);
    k++;
    if (gguf_get_arr_n(g, kd) > 0) {
        kvo[k].tag = LLAMA_KV_OVERRIDE_TYPE_STR;
        snprintf(kvo[k].key, sizeof kvo[k].key, "quantize.imatrix.dataset");
        snprintf(kvo[k].val_str, sizeof kvo[k].val_str, "%s", gguf_get_arr_str(g, kd, 0));
        k++;
    }
    kvo[k].tag = LLAMA_KV_OVERRIDE_TYPE_INT;
    snprintf(kvo[k].key, sizeof kvo[k].key, "quantize.imatrix.entries_count");
    kvo[k].val_i64 = n;
    k++;
    const int last_chunk = (int)gguf_get_val_u32(g, kc);
    if (last_chunk > 0) {
        kvo[k].tag = LLAMA_KV_OVERRIDE_TYPE_INT;
        snprintf(kvo[k].key, sizeof kvo[k].key, "quantize.imatrix.chunks_count");
        kvo[k].val_i64 = last_chunk;
        k++;
    }
    kvo[k].key[0] = 0;
    qp.kv_overrides = kvo;

    const uint32_t rc = llama_model_quantize(argv[2], argv[3], &qp);
    if (rc != 0) peer_die("llama_model_quantize failed (%u)", rc);
    printf("%s: %d imatrix entries -> %s\n", argv[4], n, argv[3]);
    for (int i = 0; i < n; i++) { free(names[i]); free((void *)data[i].data); }
    free(names);
    free(data);
    gguf_free(g);
    ggml_free(gctx);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) usage();
    if (!strcmp(argv[1], "collect")) return cmd_collect(argc, argv);
    if (!strcmp(argv[1], "quantize")) return cmd_quantize(argc, argv);
    usage();
}
