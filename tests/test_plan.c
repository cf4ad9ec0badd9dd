/* Suite plan: the memory planner (catalog, machines, memory model, verdict,
 * --fit, recommendations, JSON) and `qfit plan`. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qfit/backend.h"
#include "qfit/gguf.h"
#include "qfit/model.h"
#include "qfit/plan.h"
#include "qfit/synth.h"
#include "qfit/quant.h"
#include "qfit/quantize.h"
#include "util/testutil.h"

#define GiB (1024ull * 1024 * 1024)
#define MiB (1024ull * 1024)

static void load(const char *spec, qfit_plan_model *m)
{
    char err[256];
    int rc = qfit_plan_model_load(spec, m, err, sizeof err);
    cr_assert_eq(rc, 0, "load %s: %s", spec, err);
}

static qfit_plan_result plan(const qfit_plan_model *m, const qfit_plan_machine *mach, const char *mix,
                             int64_t ctx, int kv, int par)
{
    qfit_plan_settings s = { mix, ctx, kv, -1, par, 0, 0, QFIT_PLAN_RUN, false, 0, 0 };
    qfit_plan_result r;
    char err[256];
    cr_assert_eq(qfit_plan_compute(m, mach, &s, &r, err, sizeof err), 0, "%s", err);
    return r;
}

/* ------------------------------------------------------------ catalog */

/* Published Hugging Face config.json values (hidden_size, intermediate_size,
 * num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim,
 * vocab_size, max_position_embeddings, tie_word_embeddings) of:
 *   meta-llama/Llama-3.1-8B-Instruct, meta-llama/Llama-3.2-1B-Instruct,
 *   Qwen/Qwen2.5-Coder-32B-Instruct, Qwen/Qwen2.5-0.5B-Instruct, Qwen/Qwen3-8B,
 *   google/gemma-2-9b-it, mistralai/Mistral-Small-24B-Instruct-2501. */
Test(plan, catalog_facts_match_published_configs)
{
    struct { const char *name; int64_t E, FF, L, H, KV, HD, V, CTX; bool tied; const char *arch; } want[] = {
        { "meta-llama/Llama-3.1-8B-Instruct", 4096, 14336, 32, 32, 8, 128, 128256, 131072, false, "llama" },
        { "meta-llama/Llama-3.2-1B-Instruct", 2048, 8192, 16, 32, 8, 64, 128256, 131072, true, "llama" },
        { "Qwen/Qwen2.5-Coder-32B-Instruct", 5120, 27648, 64, 40, 8, 128, 152064, 32768, false, "qwen2" },
        { "Qwen/Qwen2.5-0.5B-Instruct", 896, 4864, 24, 14, 2, 64, 151936, 32768, true, "qwen2" },
        { "Qwen/Qwen3-8B", 4096, 12288, 36, 32, 8, 128, 151936, 40960, false, "qwen3" },
        { "google/gemma-2-9b-it", 3584, 14336, 42, 16, 8, 256, 256000, 8192, true, "gemma2" },
        { "mistralai/Mistral-Small-24B-Instruct-2501", 5120, 32768, 40, 32, 8, 128, 131072, 32768, false, "llama" },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const qfit_plan_facts *f = qfit_plan_catalog_find(want[i].name);
        cr_assert_not_null(f, "%s missing", want[i].name);
        cr_expect_eq(f->n_embd, want[i].E, "%s hidden_size", want[i].name);
        cr_expect_eq(f->n_ff, want[i].FF, "%s intermediate_size", want[i].name);
        cr_expect_eq(f->n_layer, want[i].L, "%s layers", want[i].name);
        cr_expect_eq(f->n_head, want[i].H, "%s heads", want[i].name);
        cr_expect_eq(f->n_head_kv, want[i].KV, "%s kv heads", want[i].name);
        cr_expect_eq(f->head_dim, want[i].HD, "%s head_dim", want[i].name);
        cr_expect_eq(f->n_vocab, want[i].V, "%s vocab", want[i].name);
        cr_expect_eq(f->n_ctx_train, want[i].CTX, "%s context", want[i].name);
        cr_expect_eq(f->tied, want[i].tied, "%s tied", want[i].name);
        cr_expect_str_eq(f->arch, want[i].arch);
    }
}

Test(plan, catalog_names_ollama_and_hf_case_insensitive)
{
    const char *same[][3] = {
        { "qwen2.5-coder:32b", "Qwen/Qwen2.5-Coder-32B-Instruct", "QWEN2.5-CODER:32B" },
        { "llama3.1:8b", "meta-llama/Llama-3.1-8B-Instruct", "META-LLAMA/llama-3.1-8b-instruct" },
        { "llama3.2:1b", "meta-llama/Llama-3.2-1B-Instruct", "Llama3.2:1B" },
        { "qwen3:8b", "Qwen/Qwen3-8B", "qwen3:latest" },
        { "deepseek-r1:32b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "DeepSeek-R1:32b" },
        { "gemma2:27b", "google/gemma-2-27b-it", "GEMMA2:27B" },
        { "mistral:7b", "mistralai/Mistral-7B-Instruct-v0.3", "mistral" },
        { "mistral-small:24b", "mistralai/Mistral-Small-24B-Instruct-2501", "Mistral-Small:24B" },
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        const qfit_plan_facts *a = qfit_plan_catalog_find(same[i][0]);
        cr_assert_not_null(a, "%s", same[i][0]);
        cr_expect_eq(qfit_plan_catalog_find(same[i][1]), a, "%s", same[i][1]);
        cr_expect_eq(qfit_plan_catalog_find(same[i][2]), a, "%s", same[i][2]);
    }
    cr_expect_null(qfit_plan_catalog_find("qwen2.5-coder:33b"));
    cr_expect_null(qfit_plan_catalog_find(""));
    cr_expect_null(qfit_plan_catalog_find(NULL));
    /* every model the issue names is there */
    const char *need[] = { "llama3.1:8b", "llama3.1:70b", "llama3.2:1b", "llama3.2:3b", "llama3.3:70b", "mistral:7b",
                           "mistral-small:24b", "qwen2.5:0.5b", "qwen2.5:1.5b", "qwen2.5:3b", "qwen2.5:7b",
                           "qwen2.5:14b", "qwen2.5:32b", "qwen2.5:72b", "qwen2.5-coder:7b", "qwen2.5-coder:14b",
                           "qwen2.5-coder:32b", "qwen3:0.6b", "qwen3:1.7b", "qwen3:4b", "qwen3:8b", "qwen3:14b",
                           "qwen3:32b", "deepseek-r1:7b", "deepseek-r1:14b", "deepseek-r1:32b", "gemma2:9b",
                           "gemma2:27b" };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        cr_expect_not_null(qfit_plan_catalog_find(need[i]), "%s missing", need[i]);
}

/* The enumerated tensors add up to the published parameter counts (the
 * safetensors totals shown on the models' Hugging Face pages); llama3 models
 * also get rope_freqs (head_dim/2 values) from llama.cpp's converter. */
Test(plan, catalog_tensors_give_published_parameter_counts)
{
    struct { const char *name; uint64_t params; size_t n_tensors; } want[] = {
        { "llama3.1:8b", 8030261248ull + 64, 1 + 1 + 32 * 9 + 2 },
        { "llama3.2:1b", 1235814400ull + 32, 1 + 1 + 16 * 9 + 1 },         /* tied: no output.weight */
        { "qwen2.5:7b", 7615616512ull, 1 + 28 * 12 + 2 },                    /* q/k/v biases */
        { "qwen2.5-coder:32b", 32763876352ull, 1 + 64 * 12 + 2 },
        { "qwen3:8b", 8190735360ull, 1 + 36 * 11 + 2 },                      /* q/k norms */
        { "gemma2:9b", 9241705984ull, 1 + 42 * 11 + 1 },                     /* post norms, tied */
        { "mistral:7b", 7248023552ull, 1 + 32 * 9 + 2 },
        /* mixtures of experts: router + 3 stacks of experts in place of the FFN; the totals
         * are the published ones (Qwen3-30B-A3B 30,532,122,624; Mixtral-8x7B 46,702,792,704) */
        { "qwen3:30b-a3b", 30532122624ull, 1 + 48 * 12 + 2 },
        { "mixtral:8x7b", 46702792704ull, 1 + 32 * 10 + 2 },
        { "phi4:14b", 14659507200ull, 1 + 40 * 6 + 2 },                     /* fused qkv and gate-up */
        /* sinks and biases; experts with one bias row each: 20,914,757,184 published */
        { "gpt-oss:20b", 20914757184ull, 1 + 24 * 19 + 2 },
        /* encoders: the published counts less the pooler the converter drops (mxbai
         * 335,141,888 - 1,049,600; all-MiniLM-L6-v2 22,713,216 - 147,840) */
        { "mxbai-embed-large", 334092288ull, 5 + 24 * 16 },
        { "all-minilm", 22565376ull, 5 + 6 * 16 },
        { "nomic-embed-text", 136731648ull, 4 + 12 * 9 },                   /* no biases, fused qkv, SwiGLU */
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        qfit_plan_model m;
        load(want[i].name, &m);
        cr_expect_eq(m.n_params, want[i].params, "%s: %llu params", want[i].name, (unsigned long long)m.n_params);
        cr_expect_eq(m.n_tensors, want[i].n_tensors, "%s: %zu tensors", want[i].name, m.n_tensors);
        qfit_plan_model_free(&m);
    }
    /* shapes as llama.cpp's converter writes them (ne[0] = input dimension) */
    qfit_plan_model m;
    load("mistral-small:24b", &m);
    bool seen_q = false, seen_o = false;
    for (size_t i = 0; i < m.n_tensors; i++) {
        if (!strcmp(m.tensors[i].name, "blk.0.attn_q.weight")) {
            seen_q = true;
            cr_expect(m.tensors[i].ne[0] == 5120 && m.tensors[i].ne[1] == 4096);
        }
        if (!strcmp(m.tensors[i].name, "blk.39.attn_output.weight")) {
            seen_o = true;
            cr_expect(m.tensors[i].ne[0] == 4096 && m.tensors[i].ne[1] == 5120);
        }
    }
    cr_expect(seen_q && seen_o);
    qfit_plan_model_free(&m);
}

static int by_tensor_name(const void *a, const void *b)
{
    return strcmp(((const qfit_plan_tensor *)a)->name, ((const qfit_plan_tensor *)b)->name);
}

/* The catalog's tensor list of an architecture is the one a converted file has: for
 * the tiny synthetic models (written with llama.cpp's tensor set), facts taken from the
 * file give the same names and shapes (the order is not compared: synth writes a
 * layer's tensors by name). */
Test(plan, catalog_tensor_lists_match_converted_files, .timeout = 120)
{
    const char *shapes[] = { "tiny-gpt-oss", "tiny-bert", "tiny-nomic-bert", "tiny-gemma3", "tiny-qwen3moe" };
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        char name[64], err[256];
        snprintf(name, sizeof name, "%s-cat.gguf", shapes[si]);
        qfit_plan_model g, c;
        load(tu_synth(shapes[si], QFIT_FTYPE_MOSTLY_Q8_0, 1, name), &g);
        const bool bias = !strcmp(g.arch, "gpt-oss") || !strcmp(g.arch, "bert");
        const bool gemma = !strcmp(g.arch, "gemma3");
        const qfit_plan_facts f = { "tiny", "tiny", "", "tiny", g.n_layer, g.n_embd, g.n_head, g.n_head_kv,
                                    g.head_dim_k, g.n_ff, g.n_vocab, g.n_ctx_train, g.tied, g.arch, bias,
                                    gemma || !strcmp(g.arch, "qwen3moe"), false, gemma, g.n_expert,
                                    g.n_expert_used, g.n_ff_exp, g.n_swa, g.swa_pattern, g.swa_rope, NULL };
        cr_assert_eq(qfit_plan_model_from_facts(&f, &c, err, sizeof err), 0, "%s", err);
        cr_expect_eq(c.n_tensors, g.n_tensors, "%s: catalog %zu tensors, file %zu", shapes[si], c.n_tensors,
                     g.n_tensors);
        qsort(c.tensors, c.n_tensors, sizeof *c.tensors, by_tensor_name);
        qsort(g.tensors, g.n_tensors, sizeof *g.tensors, by_tensor_name);
        for (size_t i = 0; i < c.n_tensors && i < g.n_tensors; i++) {
            const qfit_plan_tensor *a = &c.tensors[i], *b = &g.tensors[i];
            cr_expect(!strcmp(a->name, b->name) && a->ne[0] == b->ne[0] && a->ne[1] == b->ne[1] &&
                      a->ne[2] == b->ne[2], "%s tensor %zu: catalog %s [%lld %lld %lld], file %s [%lld %lld %lld]",
                      shapes[si], i, a->name, (long long)a->ne[0], (long long)a->ne[1], (long long)a->ne[2], b->name,
                      (long long)b->ne[0], (long long)b->ne[1], (long long)b->ne[2]);
        }
        cr_expect_eq(c.n_params, g.n_params, "%s", shapes[si]);
        qfit_plan_model_free(&c);
        qfit_plan_model_free(&g);
    }
}

/* ------------------------------------------------------------ KV cache */

Test(plan, kv_bytes_formula_and_block_accounting)
{
    qfit_plan_model m;
    load("llama3.1:8b", &m);
    /* 2 x 32 layers x 8192 x 8 KV heads x 128 x 2 bytes = 1 GiB exactly */
    cr_expect_eq(qfit_plan_kv_bytes(&m, 8192, QFIT_TYPE_F16), GiB);
    /* q8_0: 34 bytes per 32 elements; q4_0: 18 bytes per 32 */
    cr_expect_eq(qfit_plan_kv_bytes(&m, 8192, QFIT_TYPE_Q8_0), 2ull * 32 * 8192 * 8 * (128 / 32) * 34);
    cr_expect_eq(qfit_plan_kv_bytes(&m, 8192, QFIT_TYPE_Q8_0), GiB / 64 * 34);
    cr_expect_eq(qfit_plan_kv_bytes(&m, 8192, QFIT_TYPE_Q4_0), GiB / 64 * 18);
    /* linear in context */
    cr_expect_eq(qfit_plan_kv_bytes(&m, 16384, QFIT_TYPE_F16), 2 * GiB);
    cr_expect_eq(qfit_plan_kv_bytes(&m, 1, QFIT_TYPE_F16), GiB / 8192);
    /* parallel sequences multiply the cells */
    qfit_plan_machine mach;
    qfit_plan_machine_custom(64 * GiB, &mach);
    qfit_plan_result r1 = plan(&m, &mach, "Q4_K_M", 8192, QFIT_TYPE_F16, 1);
    qfit_plan_result r4 = plan(&m, &mach, "Q4_K_M", 8192, QFIT_TYPE_F16, 4);
    cr_expect_eq(r1.kv_bytes, GiB);
    cr_expect_eq(r4.kv_bytes, 4 * GiB);
    qfit_plan_model_free(&m);
    /* head dim 256 (gemma2 9b): 2 x 42 x 4096 x 8 x 256 x 2 */
    load("gemma2:9b", &m);
    cr_expect_eq(qfit_plan_kv_bytes(&m, 4096, QFIT_TYPE_F16), 2ull * 42 * 4096 * 8 * 256 * 2);
    qfit_plan_model_free(&m);
}

/* ------------------------------------------------------------ weights */

/* Sum of the bytes= column of a mixes/MIX.tsv file (llama.cpp's own choices). */
static uint64_t tsv_bytes(const char *path, int *n_rows)
{
    size_t sz;
    char *txt = tu_read_file(path, &sz);
    cr_assert_not_null(txt, "cannot read %s", path);
    uint64_t sum = 0;
    *n_rows = 0;
    for (char *p = txt; (p = strstr(p, "bytes=")); p += 6) {
        sum += strtoull(p + 6, NULL, 10);
        (*n_rows)++;
    }
    free(txt);
    return sum;
}

Test(plan, weight_bytes_match_llama_cpp_mixes_of_shared_model)
{
    const char *dir = tu_shared_path("testdata/kjv-llama-7m/mixes");
    qfit_plan_model m;
    load(tu_shared_path("models/kjv-llama-7m-f32.gguf"), &m);
    cr_assert_eq(m.n_tensors, 75);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    struct dirent *e;
    int checked = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".tsv") != 0 || !strcmp(e->d_name, "file-sizes.tsv")) continue;
        char mix[32], path[4200];
        snprintf(mix, sizeof mix, "%.*s", (int)(len - 4), e->d_name);
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int rows;
        uint64_t want = tsv_bytes(path, &rows);
        cr_expect_eq(rows, 75, "%s rows", mix);
        uint64_t got = 0;
        char err[256];
        cr_assert_eq(qfit_plan_weight_bytes(&m, mix, &got, err, sizeof err), 0, "%s: %s", mix, err);
        cr_expect_eq(got, want, "%s: planner %llu bytes, llama.cpp %llu", mix, (unsigned long long)got,
                     (unsigned long long)want);
        checked++;
    }
    closedir(d);
    cr_expect_geq(checked, 18, "only %d mixes checked", checked);
    /* as stored: the F32 file's real tensor sizes (7,344,384 parameters x 4 bytes) */
    uint64_t stored;
    char err[256];
    cr_assert_eq(qfit_plan_weight_bytes(&m, NULL, &stored, err, sizeof err), 0);
    cr_expect_eq(stored, 7344384ull * 4);
    cr_expect_eq(m.n_params, 7344384ull);
    cr_expect_eq(m.n_layer, 8);
    cr_expect_eq(m.n_head_kv, 2);
    cr_expect_eq(m.head_dim_k, 64);
    cr_expect_eq(m.n_ctx_train, 512);
    qfit_plan_model_free(&m);
}

/* A GGUF planned as stored: its real tensor sizes and its file type. The F16
 * file holds exactly what llama.cpp's F16 mix of the F32 file holds. */
Test(plan, gguf_as_stored_uses_real_tensor_sizes)
{
    qfit_plan_model m;
    load(tu_shared_path("models/kjv-llama-7m-f16.gguf"), &m);
    cr_expect_eq(m.file_type, 1);
    cr_expect(!m.tied);
    uint64_t stored, mixed;
    char err[256];
    cr_assert_eq(qfit_plan_weight_bytes(&m, NULL, &stored, err, sizeof err), 0);
    cr_assert_eq(qfit_plan_weight_bytes(&m, "F16", &mixed, err, sizeof err), 0);
    int rows;
    cr_expect_eq(stored, tsv_bytes(tu_shared_path("testdata/kjv-llama-7m/mixes/F16.tsv"), &rows));
    cr_expect_eq(stored, mixed);
    qfit_plan_machine mach;
    qfit_plan_machine_custom(GiB, &mach);
    qfit_plan_result r = plan(&m, &mach, NULL, 0, 0, 0);
    cr_expect(r.as_stored);
    cr_expect_str_eq(r.mix, "F16");
    cr_expect_eq(r.weights_bytes, stored);
    qfit_plan_model_free(&m);
}

/* Catalog models through the same rules: Q4_K_M tensor data against the
 * community GGUF files (bartowski's Q4_K_M: Llama-3.1-8B-Instruct 4.92 GB,
 * Qwen2.5-Coder-32B-Instruct 19.85 GB, both including a few MB of tokenizer
 * metadata, so the tensor data is slightly below). */
Test(plan, catalog_q4_k_m_weights_near_published_gguf_sizes)
{
    qfit_plan_model m;
    uint64_t w;
    char err[256];
    load("llama3.1:8b", &m);
    cr_assert_eq(qfit_plan_weight_bytes(&m, "Q4_K_M", &w, err, sizeof err), 0, "%s", err);
    cr_expect(w > 4900000000ull && w <= 4920000000ull, "llama3.1:8b Q4_K_M %llu", (unsigned long long)w);
    qfit_plan_model_free(&m);
    load("qwen2.5-coder:32b", &m);
    cr_assert_eq(qfit_plan_weight_bytes(&m, "Q4_K_M", &w, err, sizeof err), 0, "%s", err);
    cr_expect(w > 19800000000ull && w <= 19850000000ull, "qwen2.5-coder:32b Q4_K_M %llu", (unsigned long long)w);
    /* monotone: more bits, more bytes */
    uint64_t q8, q6, q4, q2;
    cr_assert_eq(qfit_plan_weight_bytes(&m, "Q8_0", &q8, err, sizeof err), 0);
    cr_assert_eq(qfit_plan_weight_bytes(&m, "Q6_K", &q6, err, sizeof err), 0);
    cr_assert_eq(qfit_plan_weight_bytes(&m, "Q4_0", &q4, err, sizeof err), 0);
    cr_assert_eq(qfit_plan_weight_bytes(&m, "Q2_K", &q2, err, sizeof err), 0);
    cr_expect(q8 > q6 && q6 > w && w > q4 && q4 > q2);
    cr_expect_neq(qfit_plan_weight_bytes(&m, "Q9_X", &w, err, sizeof err), 0);
    qfit_plan_model_free(&m);
}

/* ------------------------------------------------------------ machines, budget */

Test(plan, size_parsing)
{
    uint64_t v;
    cr_assert_eq(qfit_parse_size("24G", &v), 0);    cr_expect_eq(v, 24 * GiB);
    cr_assert_eq(qfit_parse_size("24GiB", &v), 0);  cr_expect_eq(v, 24 * GiB);
    cr_assert_eq(qfit_parse_size("24gb", &v), 0);   cr_expect_eq(v, 24 * GiB);
    cr_assert_eq(qfit_parse_size("512M", &v), 0);   cr_expect_eq(v, 512 * MiB);
    cr_assert_eq(qfit_parse_size("1.5G", &v), 0);   cr_expect_eq(v, 3 * GiB / 2);
    cr_assert_eq(qfit_parse_size("1T", &v), 0);     cr_expect_eq(v, 1024 * GiB);
    cr_assert_eq(qfit_parse_size("123456", &v), 0); cr_expect_eq(v, 123456);
    const char *bad[] = { "", "G", "24X", "-1G", "24 G B", "24GiBs", "1e400", "nan", "0", "0.5" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(qfit_parse_size(bad[i], &v), -1, "'%s' accepted", bad[i]);
}

Test(plan, machine_profiles_and_budgets)
{
    const char *need[] = { "m1-max-32gb", "m1-pro-16gb", "m2-max-64gb", "m3-max-128gb", "m4-pro-48gb",
                           "rtx-4090-24gb", "rtx-3060-12gb", "cpu-16gb", "cpu-32gb", "cpu-64gb" };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        const qfit_plan_machine *m = qfit_plan_machine_find(need[i]);
        cr_assert_not_null(m, "%s", need[i]);
        cr_expect_gt(m->bandwidth_gbs, 0);
    }
    const qfit_plan_machine *m = qfit_plan_machine_find("M1-MAX-32GB");
    cr_assert_not_null(m);
    cr_expect_eq(m->kind, QFIT_MACHINE_APPLE);
    cr_expect_eq(qfit_plan_budget_bytes(m), 24 * GiB);   /* 75% of 32 GiB */
    cr_expect_eq(qfit_plan_os_reserve_bytes(m), 0);
    cr_expect_eq(qfit_plan_budget_bytes(qfit_plan_machine_find("m3-max-128gb")), 96 * GiB);
    const qfit_plan_machine *g = qfit_plan_machine_find("rtx-4090-24gb");
    cr_expect_eq(g->kind, QFIT_MACHINE_GPU);
    cr_expect_eq(qfit_plan_budget_bytes(g), 24 * GiB);   /* VRAM */
    cr_expect_eq(qfit_plan_os_reserve_bytes(g), 512 * MiB);
    const qfit_plan_machine *c = qfit_plan_machine_find("cpu-16gb");
    cr_expect_eq(qfit_plan_budget_bytes(c), 16 * GiB);
    cr_expect_eq(qfit_plan_os_reserve_bytes(c), 16 * GiB / 10);
    cr_expect_eq(qfit_plan_os_reserve_bytes(qfit_plan_machine_find("cpu-64gb")), 4 * GiB);   /* capped */
    cr_expect_null(qfit_plan_machine_find("m9-ultra"));
    qfit_plan_machine x;
    qfit_plan_machine_custom(24 * GiB, &x);
    cr_expect_eq(qfit_plan_budget_bytes(&x), 24 * GiB);
    cr_expect_eq(qfit_plan_os_reserve_bytes(&x), 0);
    qfit_plan_machine_detect(&x);
    cr_expect_gt(x.mem_bytes, 64 * MiB);
    cr_expect_geq(x.cores, 1);
}

Test(plan, verdict_thresholds)
{
    const uint64_t B = 100 * GiB;
    cr_expect_eq(qfit_plan_verdict_for(0, B), QFIT_VERDICT_COMFORTABLE);
    cr_expect_eq(qfit_plan_verdict_for(85 * GiB, B), QFIT_VERDICT_COMFORTABLE);
    cr_expect_eq(qfit_plan_verdict_for(85 * GiB + 1, B), QFIT_VERDICT_TIGHT);
    cr_expect_eq(qfit_plan_verdict_for(B, B), QFIT_VERDICT_TIGHT);
    cr_expect_eq(qfit_plan_verdict_for(B + 1, B), QFIT_VERDICT_NO_FIT);
    cr_expect_str_eq(qfit_plan_verdict_name(QFIT_VERDICT_NO_FIT), "does not fit");
}

/* ------------------------------------------------------------ one plan */

Test(plan, breakdown_adds_up_and_defaults)
{
    qfit_plan_model m;
    load("qwen2.5-coder:32b", &m);
    const qfit_plan_machine *mach = qfit_plan_machine_find("m1-max-32gb");
    qfit_plan_result r = plan(&m, mach, NULL, 0, 0, 0);
    cr_expect_str_eq(r.mix, "Q4_K_M");
    cr_expect_eq(r.n_ctx, 4096);
    cr_expect_eq(r.kv_type, QFIT_TYPE_F16);
    cr_expect_eq(r.kv_bytes, 2ull * 64 * 4096 * 8 * 128 * 2);
    cr_expect_gt(r.compute_bytes, 0);
    cr_expect_eq(r.overhead_bytes, r.runtime_bytes + r.os_bytes);
    cr_expect_eq(r.total_bytes, r.weights_resident_bytes + r.kv_bytes + r.compute_bytes + r.overhead_bytes);
    cr_expect_eq(r.budget_bytes, 24 * GiB);
    cr_expect_eq(r.verdict, qfit_plan_verdict_for(r.total_bytes, r.budget_bytes));
    cr_expect(r.bits_per_weight > 4.5 && r.bits_per_weight < 5.2, "bpw %f", r.bits_per_weight);
    cr_expect(r.tps_low > 0 && r.tps_low < r.tps_high);
    {   /* an embedding model generates nothing: no speed estimate; gpt-oss defaults to its
         * published MXFP4 experts */
        qfit_plan_model e;
        load("all-minilm", &e);
        const qfit_plan_result re = plan(&e, mach, NULL, 0, 0, 0);
        cr_expect(re.tps_low == 0 && re.tps_high == 0, "all-minilm: %g-%g tokens/s", re.tps_low, re.tps_high);
        qfit_plan_model_free(&e);
        load("gpt-oss:20b", &e);
        cr_expect_str_eq(plan(&e, mach, NULL, 0, 0, 0).mix, "MXFP4_MOE");
        qfit_plan_model_free(&e);
    }
    /* flash attention: auto = on, as the engine, with any cache type */
    cr_expect(r.flash_attn);
    qfit_plan_result q = plan(&m, mach, NULL, 0, QFIT_TYPE_Q8_0, 0);
    cr_expect(q.flash_attn);
    cr_expect_eq(q.kv_bytes, r.kv_bytes / 64 * 34);
    cr_expect_eq(q.k_bytes, q.v_bytes);
    cr_expect_eq(q.k_bytes + q.v_bytes, q.kv_bytes);
    cr_expect_eq(r.process_bytes, r.weights_resident_bytes + r.kv_bytes + r.compute_bytes + r.runtime_bytes);
    cr_expect_eq(r.total_bytes, r.process_bytes + r.os_bytes);
    cr_expect_eq(r.runtime_bytes, r.runtime_base_bytes + r.metadata_bytes + r.tokenizer_bytes + r.eval_bytes);
    cr_expect_eq(r.eval_bytes, 0);
    /* bad settings are errors, not crashes: Q4_K is not a KV cache type */
    qfit_plan_settings bad = { "Q4_K_M", 0, QFIT_TYPE_Q4_K, -1, 0, 0, 0, QFIT_PLAN_RUN, false, 0, 0 };
    char err[256];
    cr_expect_eq(qfit_plan_compute(&m, mach, &bad, &q, err, sizeof err), -1);
    bad.kv_type = 0;
    bad.mix = "Q7_K";
    cr_expect_eq(qfit_plan_compute(&m, mach, &bad, &q, err, sizeof err), -1);
    qfit_plan_model_free(&m);
    /* the trained context caps the default: kjv-llama-7m was trained at 512 */
    load(tu_shared_path("models/kjv-llama-7m-f32.gguf"), &m);
    r = plan(&m, mach, NULL, 0, 0, 0);
    cr_expect_eq(r.n_ctx, 512);
    cr_expect(r.as_stored);
    cr_expect_str_eq(r.mix, "F32");
    qfit_plan_model_free(&m);
}

/* ------------------------------------------------------------ --fit */

Test(plan, fit_respects_budget_task_floor_and_min_ctx)
{
    qfit_plan_model m;
    load("qwen2.5-coder:32b", &m);
    const qfit_plan_machine *mach = qfit_plan_machine_find("m1-max-32gb");
    qfit_plan_settings s = { NULL, 0, 0, -1, 0, 0, 0, QFIT_PLAN_RUN, false, 0, 0 };
    qfit_plan_result best;
    char err[256];
    /* no task: the best-quality configuration that fits */
    cr_assert_eq(qfit_plan_fit(&m, mach, &s, NULL, 0, &best, err, sizeof err), 1, "%s", err);
    cr_expect_leq(best.total_bytes, best.budget_bytes);
    /* nothing of better quality fits: the next better mix does not, at any KV type, at 2048 */
    double q = qfit_plan_quality_loss(best.mix, best.kv_type);
    for (size_t i = 0; i < qfit_plan_mix_count(); i++) {
        const qfit_plan_mix *mx = qfit_plan_mix_at(i);
        if (mx->mean_kld < 0) continue;
        int kvs[3] = { QFIT_TYPE_F16, QFIT_TYPE_Q8_0, QFIT_TYPE_Q4_0 };
        for (int k = 0; k < 3; k++) {
            double qq = qfit_plan_quality_loss(mx->name, kvs[k]);
            if (qq >= q) continue;
            qfit_plan_result r = plan(&m, mach, mx->name, 2048, kvs[k], 1);
            cr_expect_eq(r.verdict, QFIT_VERDICT_NO_FIT, "%s/%d fits with better quality than %s", mx->name, kvs[k],
                         best.mix);
        }
    }
    /* code: Q5_K_M or better */
    cr_assert_eq(qfit_plan_fit(&m, mach, &s, "code", 0, &best, err, sizeof err), 1, "%s", err);
    cr_expect_leq(qfit_plan_mix_find(best.mix)->mean_kld, qfit_plan_mix_find("Q5_K_M")->mean_kld, "%s", best.mix);
    cr_expect_leq(best.total_bytes, best.budget_bytes);
    /* math: Q6_K or better. Q6_K of a 32B model (~25 GiB) cannot fit in 24 GiB */
    cr_expect_eq(qfit_plan_fit(&m, mach, &s, "math", 0, &best, err, sizeof err), 0);
    /* a needed context is kept */
    cr_assert_eq(qfit_plan_fit(&m, mach, &s, NULL, 32768, &best, err, sizeof err), 1, "%s", err);
    cr_expect_geq(best.n_ctx, 32768);
    cr_expect_leq(best.total_bytes, best.budget_bytes);
    cr_expect_eq(qfit_plan_fit(&m, mach, &s, "poetry", 0, &best, err, sizeof err), -1);
    qfit_plan_model_free(&m);
    /* a small model on a big machine gets the best quality there is: F16 (measured
     * equal to F32, KLD 0.000000 and the same perplexity, and half the size) */
    load("qwen2.5:0.5b", &m);
    cr_assert_eq(qfit_plan_fit(&m, qfit_plan_machine_find("m3-max-128gb"), &s, "math", 0, &best, err, sizeof err), 1);
    cr_expect_str_eq(best.mix, "F16");
    cr_expect_eq(best.kv_type, QFIT_TYPE_F16);
    qfit_plan_model_free(&m);
}

/* --fit with a model's own measured quality (a qfit eval JSON): only the measured types
 * are candidates, ranked by the measured numbers, even where they disagree with the
 * built-in table; a file that is not an eval JSON is refused by name. */
static const char *write_text(const char *name, const char *text)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", tu_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
    return path;
}

Test(plan, fit_ranks_by_measured_quality)
{
    char err[512];
    qfit_plan_quality q;
    /* the committed eval of the shared model: 16 types and the F32 base */
    const char *committed = "bench/results/eval-kjv-llama-7m.json";   /* tests run from the repository root */
    cr_assert_eq(qfit_plan_quality_load(committed, &q, err, sizeof err), 0, "%s", err);
    cr_expect_eq(q.n, 17);
    bool f32 = false, q4km = false;
    for (size_t i = 0; i < q.n; i++) {
        if (!strcmp(q.rows[i].name, "F32")) f32 = q.rows[i].mean_kld == 0;
        if (!strcmp(q.rows[i].name, "Q4_K_M")) q4km = fabs(q.rows[i].mean_kld - 0.003606) < 5e-7;
    }
    cr_expect(f32 && q4km, "F32 (the base) and Q4_K_M's measured KLD");

    /* made-up measurements that invert the table: Q4_0 better than Q4_K_M, nothing else */
    const char *path = write_text("inverted.eval.json",
        "{\"rows\":[{\"name\":\"base\",\"base\":true,\"bpw\":16.0,\"kld_mean\":0},"
        "{\"name\":\"Q4_K_M\",\"kld_mean\":0.02},{\"name\":\"Q4_0\",\"kld_mean\":0.001},"
        "{\"name\":\"my-file.gguf\",\"kld_mean\":0.0001}]}");
    cr_assert_eq(qfit_plan_quality_load(path, &q, err, sizeof err), 0, "%s", err);
    cr_expect_eq(q.n, 3, "F16 (the base at 16 bpw), Q4_K_M, Q4_0; the file row skipped");
    qfit_plan_model m;
    load("qwen2.5-coder:32b", &m);
    const qfit_plan_machine *mach = qfit_plan_machine_find("m1-max-32gb");
    qfit_plan_settings s = { NULL, 0, 0, -1, 0, 0, 0, QFIT_PLAN_RUN, false, 0, 0 };
    qfit_plan_result best;
    cr_assert_eq(qfit_plan_fit(&m, mach, &s, NULL, 0, &best, err, sizeof err), 1, "%s", err);
    cr_expect_str_neq(best.mix, "Q4_0", "the table ranks Q4_0 below other mixes that fit");
    cr_assert_eq(qfit_plan_fit_quality(&m, mach, &s, NULL, 0, &q, &best, err, sizeof err), 1, "%s", err);
    cr_expect_str_eq(best.mix, "Q4_0", "measured: Q4_0 is the best that fits (F16 does not)");
    qfit_plan_model_free(&m);

    cr_expect_eq(qfit_plan_quality_load(write_text("x.json", "{\"a\":1}"), &q, err, sizeof err), -1);
    cr_expect(strstr(err, "not a qfit eval JSON"), "%s", err);
    cr_expect_eq(qfit_plan_quality_load(write_text("y.json", "{\"rows\":[{\"name\":\"mine\",\"kld_mean\":1}]}"), &q, err,
                                        sizeof err), -1);
    cr_expect(strstr(err, "no row for a quantization type"), "%s", err);
}

Test(plan, quality_ranking_follows_measured_kld)
{
    /* ppl.tsv: Q8_0 0.000122 < Q6_K 0.000674 < Q5_K_M 0.001301 < Q4_K_M 0.003613 < Q2_K 0.065835 */
    cr_expect_lt(qfit_plan_quality_loss("Q8_0", QFIT_TYPE_F16), qfit_plan_quality_loss("Q6_K", QFIT_TYPE_F16));
    cr_expect_lt(qfit_plan_quality_loss("Q6_K", QFIT_TYPE_F16), qfit_plan_quality_loss("Q5_K_M", QFIT_TYPE_F16));
    cr_expect_lt(qfit_plan_quality_loss("Q5_K_M", QFIT_TYPE_F16), qfit_plan_quality_loss("Q4_K_M", QFIT_TYPE_F16));
    cr_expect_lt(qfit_plan_quality_loss("Q4_K_M", QFIT_TYPE_F16), qfit_plan_quality_loss("Q2_K", QFIT_TYPE_F16));
    /* KV: f16 < q8_0 < q4_0 */
    cr_expect_lt(qfit_plan_quality_loss("Q6_K", QFIT_TYPE_F16), qfit_plan_quality_loss("Q6_K", QFIT_TYPE_Q8_0));
    cr_expect_lt(qfit_plan_quality_loss("Q6_K", QFIT_TYPE_Q8_0), qfit_plan_quality_loss("Q6_K", QFIT_TYPE_Q4_0));
    cr_expect_lt(qfit_plan_quality_loss("BF16", QFIT_TYPE_F16), 0);   /* not measured */
}

/* The embedded quality table is the committed measurement. */
Test(plan, embedded_quality_table_equals_ppl_tsv)
{
    size_t sz;
    char *txt = tu_read_file(tu_shared_path("testdata/kjv-llama-7m/ppl.tsv"), &sz);
    cr_assert_not_null(txt);
    int rows = 0;
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        char name[32];
        double ppl, e, kld;
        if (sscanf(line, "%31s %lf %lf %lf", name, &ppl, &e, &kld) == 4) {
            const qfit_plan_mix *mx = qfit_plan_mix_find(name);
            cr_assert_not_null(mx, "%s not in the planner's table", name);
            cr_expect_float_eq(mx->mean_kld, kld, 1e-9, "%s", name);
            cr_expect_float_eq(mx->ppl, ppl, 1e-9, "%s", name);
            rows++;
        } else if (sscanf(line, "%31s %lf", name, &ppl) == 2) {
            int kv = !strcmp(name, "F32+kv_q8_0") ? QFIT_TYPE_Q8_0 : !strcmp(name, "F32+kv_q4_0") ? QFIT_TYPE_Q4_0 : -1;
            cr_assert_neq(kv, -1, "unexpected row %s", name);
            cr_expect_float_eq(qfit_plan_kv_ppl(kv), ppl, 1e-9);
            rows++;
        }
    }
    free(txt);
    cr_expect_eq(rows, 20);
}

/* ------------------------------------------------------------ recommendations, JSON */

Test(plan, recommendations_in_order_and_they_work)
{
    qfit_plan_model m;
    load("llama3.1:70b", &m);
    const qfit_plan_machine *mach = qfit_plan_machine_find("rtx-4090-24gb");
    qfit_plan_settings s = { NULL, 8192, 0, -1, 0, 0, 0, QFIT_PLAN_RUN, false, 0, 0 };
    qfit_plan_result r;
    char err[256];
    cr_assert_eq(qfit_plan_compute(&m, mach, &s, &r, err, sizeof err), 0);
    cr_assert_eq(r.verdict, QFIT_VERDICT_NO_FIT);
    qfit_plan_fix fx[8];
    size_t n = qfit_plan_recommend(&m, mach, &s, &r, "llama3.1:70b", "--machine rtx-4090-24gb", fx, 8);
    cr_assert_geq(n, 4);
    cr_expect(strstr(fx[0].what, "quantization") != NULL, "%s", fx[0].what);
    cr_expect_str_eq(fx[1].what, "KV cache q8_0");
    cr_expect_str_eq(fx[2].what, "KV cache q4_0");
    cr_expect(strstr(fx[3].what, "context") != NULL, "%s", fx[3].what);
    cr_expect(strstr(fx[n - 1].what, "smaller model: llama3.2") != NULL || strstr(fx[n - 1].what, "smaller model: llama3.1:8b"),
              "%s", fx[n - 1].what);
    for (size_t i = 0; i < n; i++) {
        cr_expect_gt(fx[i].saves_bytes, 0);
        cr_expect_eq(fx[i].new_total_bytes + fx[i].saves_bytes, r.total_bytes);
        cr_expect(strncmp(fx[i].cmd, "qfit plan ", 10) == 0, "%s", fx[i].cmd);
        cr_expect(strstr(fx[i].cmd, "--machine rtx-4090-24gb") != NULL, "%s", fx[i].cmd);
    }
    /* flash attention is on by default: the command does not need to say so */
    cr_expect(strstr(fx[1].cmd, "--kv-type q8_0") && !strstr(fx[1].cmd, "--flash-attn"), "%s", fx[1].cmd);
    /* KV q8_0 saves exactly the KV difference: 2 x 80 x 8192 x 1024 x (2 - 34/32) bytes */
    cr_expect_eq(fx[1].saves_bytes, 2ull * 80 * 8192 * 1024 * 2 - 2ull * 80 * 8192 * 1024 / 32 * 34);
    qfit_plan_model_free(&m);
    /* comfortable: nothing to fix */
    load("qwen2.5:0.5b", &m);
    cr_assert_eq(qfit_plan_compute(&m, mach, &s, &r, err, sizeof err), 0);
    cr_expect_eq(qfit_plan_recommend(&m, mach, &s, &r, "qwen2.5:0.5b", "", fx, 8), 0);
    qfit_plan_model_free(&m);
}

Test(plan, json_holds_the_fields)
{
    qfit_plan_model m;
    load("llama3.1:8b", &m);
    qfit_plan_machine mach;
    qfit_plan_machine_custom(8 * GiB, &mach);
    qfit_plan_settings s = { "Q8_0", 8192, 0, -1, 0, 0, 0, QFIT_PLAN_RUN, false, 0, 0 };
    qfit_plan_result r, best;
    char err[256];
    cr_assert_eq(qfit_plan_compute(&m, &mach, &s, &r, err, sizeof err), 0);
    cr_assert_eq(qfit_plan_fit(&m, &mach, &s, "chat", 0, &best, err, sizeof err), 1);
    char *js = qfit_plan_result_json(&m, &mach, &r, NULL, 0, true, &best);
    cr_assert_not_null(js);
    json_error_t je;
    json_t *root = json_loads(js, 0, &je);
    cr_assert_not_null(root, "%s", je.text);
    cr_expect_eq((uint64_t)json_integer_value(json_object_get(root, "weights_bytes")), r.weights_bytes);
    cr_expect_eq((uint64_t)json_integer_value(json_object_get(root, "kv_bytes")), GiB);
    cr_expect_eq((uint64_t)json_integer_value(json_object_get(root, "compute_bytes")), r.compute_bytes);
    cr_expect_eq((uint64_t)json_integer_value(json_object_get(root, "overhead_bytes")), r.overhead_bytes);
    cr_expect_eq((uint64_t)json_integer_value(json_object_get(root, "total_bytes")), r.total_bytes);
    cr_expect_eq((uint64_t)json_integer_value(json_object_get(root, "budget_bytes")), 8 * GiB);
    cr_expect_str_eq(json_string_value(json_object_get(root, "verdict")), qfit_plan_verdict_name(r.verdict));
    json_t *set = json_object_get(root, "settings");
    cr_expect_str_eq(json_string_value(json_object_get(set, "quant")), "Q8_0");
    cr_expect_eq(json_integer_value(json_object_get(set, "ctx")), 8192);
    cr_expect_str_eq(json_string_value(json_object_get(set, "kv_type")), "f16");
    cr_expect(json_is_object(json_object_get(root, "fit")));
    json_decref(root);
    free(js);
    qfit_plan_model_free(&m);
}

/* ------------------------------------------------------------ CLI */

static char *run(const char *args, int *st)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "%s plan %s", tu_qfit_bin(), args);
    return tu_run(cmd, st);
}

Test(plan, cli_default_demo_command)
{
    int st;
    char *out = run("qwen2.5-coder:32b --machine m1-max-32gb", &st);
    cr_assert_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "weights") && strstr(out, "KV cache") && strstr(out, "compute") && strstr(out, "overhead") &&
              strstr(out, "total"), "%s", out);
    cr_expect(strstr(out, "24.00 GiB") != NULL, "%s", out);
    cr_expect(strstr(out, "verdict") != NULL, "%s", out);
    cr_expect(strstr(out, "estimate") != NULL, "%s", out);
    free(out);
    out = run("qwen2.5-coder:32b --machine m1-max-32gb --fit --task code", &st);
    cr_assert_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "--fit") && strstr(out, "Q5_K_M or better"), "%s", out);
    free(out);
}

Test(plan, cli_json_parses)
{
    int st;
    char *out = run("Qwen/Qwen2.5-Coder-32B-Instruct --mem 24G --kv-type q8_0 --ctx 16384 --json --fit", &st);
    cr_assert_eq(st, 0, "%s", out);
    json_error_t je;
    json_t *root = json_loads(out, 0, &je);
    cr_assert_not_null(root, "%s\n%s", je.text, out);
    cr_expect_eq(json_integer_value(json_object_get(root, "budget_bytes")), (json_int_t)(24 * GiB));
    cr_expect_eq(json_integer_value(json_object_get(root, "kv_bytes")), (json_int_t)(2ull * 64 * 16384 * 1024 / 32 * 34));
    cr_expect_str_eq(json_string_value(json_object_get(root, "kv_type")), "q8_0");
    cr_expect(json_is_true(json_object_get(root, "flash_attn")));
    const char *keys[] = { "weights_bytes", "kv_bytes", "compute_bytes", "overhead_bytes", "total_bytes",
                           "budget_bytes", "verdict", "settings", "fit" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_expect_not_null(json_object_get(root, keys[i]), "%s missing", keys[i]);
    json_decref(root);
    free(out);
}

Test(plan, cli_gguf_table_lists_and_errors)
{
    int st;
    char args[8400];
    snprintf(args, sizeof args, "%s --machine cpu-16gb --table", tu_shared_path("models/kjv-llama-7m-f32.gguf"));
    char *out = run(args, &st);
    cr_assert_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "Q4_K_M") && strstr(out, "Q8_0") && strstr(out, "IQ4_XS") && strstr(out, "fits?"), "%s", out);
    free(out);
    out = run("--list-models", &st);
    cr_expect_eq(st, 0);
    cr_expect(strstr(out, "qwen2.5-coder:32b") && strstr(out, "gemma2:27b") && strstr(out, "deepseek-r1:32b"));
    free(out);
    out = run("--list-machines", &st);
    cr_expect_eq(st, 0);
    cr_expect(strstr(out, "m1-max-32gb") && strstr(out, "rtx-4090-24gb") && strstr(out, "cpu-64gb"));
    free(out);
    out = run("llama3.1:70b --machine rtx-3060-12gb", &st);
    cr_expect_eq(st, 0);
    cr_expect(strstr(out, "does not fit") && strstr(out, "qfit plan llama3.1:70b --machine rtx-3060-12gb --quant"),
              "%s", out);
    free(out);
    /* a truncated GGUF is an error with a message, not a crash */
    size_t sz;
    char *buf = tu_read_file(tu_shared_path("models/kjv-llama-7m-f16.gguf"), &sz);
    cr_assert_not_null(buf);
    char trunc[4200];
    snprintf(trunc, sizeof trunc, "%s/trunc.gguf", tu_tmpdir());
    FILE *f = fopen(trunc, "wb");
    cr_assert_not_null(f);
    fwrite(buf, 1, 3000, f);
    fclose(f);
    free(buf);
    snprintf(args, sizeof args, "%s --mem 8G", trunc);
    out = run(args, &st);
    cr_expect_eq(st, 1, "%s", out);
    cr_expect(strstr(out, "trunc.gguf") != NULL, "%s", out);
    free(out);
    const char *bad[] = { "no-such-model:1b", "qwen3:8b --machine z80", "qwen3:8b --mem 12Q", "qwen3:8b --ctx -5",
                          "qwen3:8b --kv-type q4_k", "qwen3:8b -ctv q6_k", "qwen3:8b --workload train", "qwen3:8b --quant Q9", "qwen3:8b --task poetry", "" ,
                          "qwen3:8b --flash-attn maybe", "/dev/null" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        out = run(bad[i], &st);
        cr_expect(st == 1 || st == 2, "'%s' exit %d: %s", bad[i], st, out);
        cr_expect(strstr(out, "AddressSanitizer") == NULL && strstr(out, "runtime error") == NULL, "%s", out);
        free(out);
    }
}

/* ------------------------------------------------------------ flash attention, KV types */

/* Flash attention resolves as the engine does (auto = on); off brings the plain
 * path's score rows, and turning it back on is a listed fix that saves exactly the
 * difference of the engine's compute buffers. */
Test(plan, flash_attention_default_and_fix)
{
    qfit_plan_model m;
    load("llama3.1:8b", &m);
    qfit_plan_machine mach;
    qfit_plan_machine_custom(6 * GiB, &mach);
    char err[256];
    qfit_plan_settings s = { "Q4_K_M", 32768, 0, -1, 0, 0, 0, QFIT_PLAN_RUN, false, 0, 0 };
    qfit_plan_result on, off, def;
    cr_assert_eq(qfit_plan_compute(&m, &mach, &s, &def, err, sizeof err), 0, "%s", err);
    s.flash_attn = 1;
    cr_assert_eq(qfit_plan_compute(&m, &mach, &s, &on, err, sizeof err), 0, "%s", err);
    s.flash_attn = 0;
    cr_assert_eq(qfit_plan_compute(&m, &mach, &s, &off, err, sizeof err), 0, "%s", err);
    cr_expect(def.flash_attn && on.flash_attn && !off.flash_attn);
    cr_expect_eq(def.compute_bytes, on.compute_bytes);
    /* the plain path: one row of n_ctx floats per thread, for QFIT_MAX_THREADS threads */
    cr_expect_eq(off.compute_bytes - on.compute_bytes, (uint64_t)QFIT_MAX_THREADS * 32768 * 4);
    cr_expect_eq(off.compute_alloc_bytes - on.compute_alloc_bytes, (uint64_t)QFIT_MAX_THREADS * 32768 * 4);
    cr_assert_neq(off.verdict, QFIT_VERDICT_COMFORTABLE);
    qfit_plan_fix fx[8];
    size_t n = qfit_plan_recommend(&m, &mach, &s, &off, "llama3.1:8b", "--mem 6G", fx, 8);
    bool seen = false;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(fx[i].what, "flash attention on", 18) != 0) continue;
        seen = true;
        cr_expect_eq(fx[i].saves_bytes, off.compute_bytes - on.compute_bytes);
        cr_expect(strstr(fx[i].cmd, "--flash-attn") == NULL, "%s", fx[i].cmd);
    }
    cr_expect(seen, "no flash attention fix among %zu", n);
    /* with flash on there is no such fix */
    n = qfit_plan_recommend(&m, &mach, &s, &on, "llama3.1:8b", "--mem 6G", fx, 8);
    for (size_t i = 0; i < n; i++) cr_expect(strncmp(fx[i].what, "flash attention", 15) != 0, "%s", fx[i].what);
    /* the command line of a plan with flash off says so */
    char cmd[512];
    qfit_plan_command(cmd, sizeof cmd, "llama3.1:8b", "", &off);
    cr_expect(strstr(cmd, "--flash-attn off") != NULL, "%s", cmd);
    qfit_plan_model_free(&m);
}

/* Every KV cache type of the engine, K and V independently, block formats with
 * their scales: llama3.1:8b, 32 layers x 8 KV heads x 128 dims. */
Test(plan, kv_types_k_and_v_separately)
{
    qfit_plan_model m;
    load("llama3.1:8b", &m);
    qfit_plan_machine mach;
    qfit_plan_machine_custom(64 * GiB, &mach);
    struct { const char *name; uint64_t bytes_per_32; } types[] = {
        { "f32", 128 }, { "f16", 64 }, { "bf16", 64 }, { "q8_0", 34 }, { "q4_0", 18 },
        { "q4_1", 20 }, { "q5_0", 22 }, { "q5_1", 24 }, { "iq4_nl", 18 },
    };
    const uint64_t elems = 32ull * 8192 * 8 * 128;   /* per K (or V), context 8192 */
    char err[256];
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        int t = qfit_kv_type_from_name(types[i].name);
        cr_assert_geq(t, 0, "%s", types[i].name);
        cr_expect_str_eq(qfit_plan_kv_name(t), types[i].name);
        qfit_plan_settings s = { "Q4_K_M", 8192, qfit_plan_kv_setting(t), -1, 0, 0, QFIT_TYPE_F16, QFIT_PLAN_RUN, false, 0, 0 };
        qfit_plan_result r;
        cr_assert_eq(qfit_plan_compute(&m, &mach, &s, &r, err, sizeof err), 0, "%s: %s", types[i].name, err);
        cr_expect_eq(r.k_bytes, elems / 32 * types[i].bytes_per_32, "%s K", types[i].name);
        cr_expect_eq(r.v_bytes, elems * 2, "%s: V stays f16", types[i].name);
        cr_expect_eq(r.kv_type, t);
        cr_expect_eq(r.kv_type_v, QFIT_TYPE_F16);
        /* and as the V type */
        s.kv_type = QFIT_TYPE_F16;
        s.kv_type_v = qfit_plan_kv_setting(t);
        cr_assert_eq(qfit_plan_compute(&m, &mach, &s, &r, err, sizeof err), 0, "%s: %s", types[i].name, err);
        cr_expect_eq(r.v_bytes, elems / 32 * types[i].bytes_per_32, "%s V", types[i].name);
        cr_expect_eq(r.k_bytes, elems * 2);
        cr_expect_eq(r.kv_bytes, r.k_bytes + r.v_bytes);
    }
    qfit_plan_model_free(&m);
    /* the CLI: -ctk / -ctv and --kv-type, reported in the JSON */
    int st;
    char *out = run("llama3.1:8b --mem 16G --ctx 8192 -ctk q8_0 -ctv q4_1 --json", &st);
    cr_assert_eq(st, 0, "%s", out);
    json_error_t je;
    json_t *root = json_loads(out, 0, &je);
    cr_assert_not_null(root, "%s", out);
    cr_expect_str_eq(json_string_value(json_object_get(root, "kv_type_k")), "q8_0");
    cr_expect_str_eq(json_string_value(json_object_get(root, "kv_type_v")), "q4_1");
    cr_expect_eq(json_integer_value(json_object_get(root, "kv_k_bytes")), (json_int_t)(elems / 32 * 34));
    cr_expect_eq(json_integer_value(json_object_get(root, "kv_v_bytes")), (json_int_t)(elems / 32 * 20));
    json_decref(root);
    free(out);
    out = run("llama3.1:8b --mem 16G --ctx 8192 --kv-type f32 --json", &st);
    cr_assert_eq(st, 0, "%s", out);
    root = json_loads(out, 0, &je);
    cr_assert_not_null(root, "%s", out);
    cr_expect_str_eq(json_string_value(json_object_get(root, "kv_type")), "f32");
    cr_expect_eq(json_integer_value(json_object_get(root, "kv_bytes")), (json_int_t)(elems * 8));
    json_decref(root);
    free(out);
    out = run("llama3.1:8b --mem 16G --kv-type iq4_nl", &st);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "iq4_nl") != NULL, "%s", out);
    free(out);
}

/* The catalog and the quantizer share one "70B" rule (qfit_mix_model_classify). */
Test(plan, seventy_b_class_is_the_quantizer_rule)
{
    struct { const char *name; bool is_70b; } want[] = {
        { "llama3.1:70b", true }, { "llama3.3:70b", true }, { "qwen2.5:72b", true },
        { "llama3.1:8b", false }, { "qwen2.5-coder:32b", false }, { "gemma2:27b", false },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        qfit_plan_model m;
        load(want[i].name, &m);
        qfit_mix_model mm;
        memset(&mm, 0, sizeof mm);
        snprintf(mm.arch, sizeof mm.arch, "%s", m.arch);
        mm.n_layer = (int)m.n_layer;
        mm.n_head = (int)m.n_head;
        mm.n_head_kv = (int)m.n_head_kv;
        qfit_mix_model_classify(&mm);
        cr_expect_eq(m.is_70b, want[i].is_70b, "%s", want[i].name);
        cr_expect_eq(mm.is_70b, m.is_70b, "%s", want[i].name);
        qfit_plan_model_free(&m);
    }
    /* the rule itself: 80 layers; llama needs GQA and not 8 experts */
    qfit_mix_model mm;
    memset(&mm, 0, sizeof mm);
    snprintf(mm.arch, sizeof mm.arch, "llama");
    mm.n_layer = 80; mm.n_head = 64; mm.n_head_kv = 64;
    qfit_mix_model_classify(&mm);
    cr_expect(!mm.is_70b);
    mm.n_head_kv = 8; mm.n_expert = 8;
    qfit_mix_model_classify(&mm);
    cr_expect(!mm.is_70b);
    mm.n_expert = 0;
    qfit_mix_model_classify(&mm);
    cr_expect(mm.is_70b);
}

/* ------------------------------------------------------------ weights vs qfit quantize */

/* The planner's weights for a mix are exactly the tensor data `qfit quantize` writes:
 * the file size less the data offset (header, metadata, tensor infos). */
Test(plan, weights_equal_quantized_file_data, .timeout = 120)
{
    const char *src = tu_shared_path("models/kjv-llama-7m-f32.gguf");
    qfit_plan_model m;
    load(src, &m);
    const char *mixes_to_check[] = { "Q8_0", "Q4_K_M", "Q3_K_S", "Q6_K" };
    for (size_t i = 0; i < sizeof mixes_to_check / sizeof mixes_to_check[0]; i++) {
        const char *mix = mixes_to_check[i];
        char out[4200], err[256];
        snprintf(out, sizeof out, "%s/plan-%s.gguf", tu_tmpdir(), mix);
        qfit_quantize_params qp;
        memset(&qp, 0, sizeof qp);
        qp.ftype = qfit_ftype_from_name(mix);
        qp.n_threads = 1;
        cr_assert_eq(qfit_quantize_model(src, out, &qp, NULL, err, sizeof err), 0, "%s: %s", mix, err);
        qfit_gguf *g = qfit_gguf_open(out, err, sizeof err);
        cr_assert_not_null(g, "%s: %s", mix, err);
        uint64_t data = qfit_gguf_file_size(g) - qfit_gguf_data_offset(g);
        struct stat st;
        cr_assert_eq(stat(out, &st), 0);
        cr_expect_eq((uint64_t)st.st_size, qfit_gguf_file_size(g));
        qfit_gguf_close(g);
        uint64_t w = 0;
        cr_assert_eq(qfit_plan_weight_bytes(&m, mix, &w, err, sizeof err), 0, "%s: %s", mix, err);
        cr_expect_eq(w, data, "%s: planner %llu bytes, file data %llu", mix, (unsigned long long)w,
                     (unsigned long long)data);
        /* and the quantized file planned as stored: the same bytes and its metadata */
        qfit_plan_model q;
        load(out, &q);
        uint64_t stored = 0;
        cr_assert_eq(qfit_plan_weight_bytes(&q, NULL, &stored, err, sizeof err), 0);
        cr_expect_eq(stored, data, "%s as stored", mix);
        cr_expect_eq(q.metadata_bytes + stored, (uint64_t)st.st_size, "%s metadata + data = file", mix);
        qfit_plan_model_free(&q);
    }
    qfit_plan_model_free(&m);
}

/* ------------------------------------------------------------ predicted vs measured memory */

/* The release binary (the debug one carries ASan's shadow memory): QFIT_RELEASE_BIN,
 * else build/release/qfit of the working directory (make test runs in the repository). */
static const char *release_bin(void)
{
    const char *b = getenv("QFIT_RELEASE_BIN");
    if (!b || !*b) b = "build/release/qfit";
    if (access(b, X_OK) != 0)
        cr_assert_fail("no release binary at '%s' (QFIT_RELEASE_BIN or build/release/qfit): run `make release` first; the "
                 "debug binary cannot be measured (ASan's shadow memory is part of its RSS)", b);
    return b;
}

/* Run argv (stdout/stderr to /dev/null); the child's peak RSS (ru_maxrss, KiB) in
 * bytes, and its exit status in *status. */
static uint64_t child_peak_rss(char *const argv[], int *status)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
        execv(argv[0], argv);
        _exit(127);
    }
    struct rusage ru;
    pid_t w;
    do w = wait4(pid, status, 0, &ru); while (w == -1 && errno == EINTR);
    cr_assert_eq(w, pid, "wait4: %s", strerror(errno));
    return (uint64_t)ru.ru_maxrss * 1024;
}

/* The must-show: the planner's predicted process memory against the measured peak
 * resident memory (VmHWM, from wait4's ru_maxrss) of `qfit ppl`, which loads the
 * model, writes every KV page and runs a whole chunk. The shared model (F32, ~28 MiB
 * of weights, so the runtime term matters) at two contexts and two KV types;
 * within +-5%. */
Test(plan, predicted_memory_matches_measured_peak_rss, .timeout = 300)
{
    const char *bin = release_bin();
    const char *model = tu_shared_path("models/kjv-llama-7m-f32.gguf");
    /* a short text (the first 16000 bytes of the validation text, ~4900 tokens:
     * enough for two chunks of 512), so that the text's own memory is negligible */
    size_t sz;
    char *txt = tu_read_file(tu_shared_path("models/kjv-llama-7m-val.txt"), &sz);
    cr_assert_not_null(txt);
    cr_assert_gt(sz, 16000);
    char text[4200];
    snprintf(text, sizeof text, "%s/plan-ppl.txt", tu_tmpdir());
    FILE *f = fopen(text, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(txt, 1, 16000, f), 16000);
    fclose(f);
    free(txt);
    qfit_plan_model m;
    load(model, &m);
    qfit_plan_machine mach;
    qfit_plan_machine_custom(GiB, &mach);   /* the machine does not matter: process_bytes */
    const char *ctxs[] = { "256", "512" };
    const char *kvs[] = { "f16", "q8_0" };
    for (int c = 0; c < 2; c++) {
        for (int k = 0; k < 2; k++) {
            char *argv[] = { (char *)bin, "ppl", (char *)model, text, "--ctx", (char *)ctxs[c], "--chunks", "1",
                             "--kv-type", (char *)kvs[k], NULL };
            int st;
            uint64_t measured = child_peak_rss(argv, &st);
            cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "qfit ppl --ctx %s --kv-type %s failed (status %d)",
                      ctxs[c], kvs[k], st);
            qfit_plan_settings s = { NULL, atoi(ctxs[c]), qfit_kv_type_from_name(kvs[k]), -1, 1, 0, 0, QFIT_PLAN_PPL, false, 0, 0 };
            qfit_plan_result r;
            char err[256];
            cr_assert_eq(qfit_plan_compute(&m, &mach, &s, &r, err, sizeof err), 0, "%s", err);
            double e = ((double)r.process_bytes - (double)measured) / (double)measured * 100.0;
            cr_log_info("plan: kjv-llama-7m F32 ctx %s KV %s: predicted %llu, measured peak RSS %llu, %+.2f%%",
                        ctxs[c], kvs[k], (unsigned long long)r.process_bytes, (unsigned long long)measured, e);
            cr_expect(fabs(e) <= 5.0, "ctx %s KV %s: predicted %llu bytes, measured %llu bytes (%+.2f%%)", ctxs[c],
                      kvs[k], (unsigned long long)r.process_bytes, (unsigned long long)measured, e);
        }
    }
    qfit_plan_model_free(&m);
}

/* The KV term, where it decides the answer. On the shared model the KV cache is 1-5% of the
 * process, so the test above would pass with the KV term dropped or mistyped. Here a synthetic
 * model (synth shape tiny-longctx: 8 layers, 4 KV heads of 64, 32K context, ~5 MiB of F16
 * weights) runs at its full context, where the KV cache is 256 MiB with f16 and 72 MiB with
 * q4_0 (`qfit bench` writes every KV page when it creates the context; a prompt of 512, the
 * planned batch, writes the compute buffers). The difference of the
 * two measured peak RSS must equal the difference of the two predictions within 10% (a planner
 * that dropped the KV term predicts 0, one that sized q4_0 as f16 too predicts 0, one that
 * sized it as q8_0 is 31% off), and each prediction must be within 5% of its measurement. */
Test(plan, kv_term_matches_measured_difference, .timeout = 600)
{
    const char *bin = release_bin();
    char err[256];
    const char *model = tu_synth("tiny-longctx", QFIT_FTYPE_MOSTLY_F16, 1, "tiny-longctx.gguf");
    qfit_plan_model m;
    load(model, &m);
    qfit_plan_machine mach;
    qfit_plan_machine_custom(GiB, &mach);
    const char *kvs[2] = { "f16", "q4_0" };
    uint64_t measured[2], predicted[2], kv[2];
    for (int k = 0; k < 2; k++) {
        char *argv[] = { (char *)bin, "bench", (char *)model, "--ctx", "32768", "--pp", "512", "--tg", "0", "--reps", "1",
                         "--threads", "1", "--kv-type", (char *)kvs[k], "--flash-attn", "on", NULL };
        int st;
        measured[k] = child_peak_rss(argv, &st);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "qfit bench --kv-type %s failed (status %d)", kvs[k], st);
        qfit_plan_settings s = { NULL, 32768, qfit_kv_type_from_name(kvs[k]), 1, 1, 0, 0, QFIT_PLAN_RUN, false, 0, 0 };
        qfit_plan_result r;
        cr_assert_eq(qfit_plan_compute(&m, &mach, &s, &r, err, sizeof err), 0, "%s", err);
        predicted[k] = r.process_bytes;
        kv[k] = r.kv_bytes;
        const double e = ((double)predicted[k] - (double)measured[k]) / (double)measured[k] * 100.0;
        cr_log_info("plan: tiny-longctx ctx 32768 KV %s: KV %llu, predicted %llu, measured %llu (%+.2f%%)", kvs[k],
                    (unsigned long long)kv[k], (unsigned long long)predicted[k], (unsigned long long)measured[k], e);
        cr_expect(fabs(e) <= 5.0, "KV %s: predicted %llu bytes, measured %llu (%+.2f%%)", kvs[k],
                  (unsigned long long)predicted[k], (unsigned long long)measured[k], e);
    }
    /* the KV cache is most of the process: otherwise this test shows nothing */
    cr_assert_gt(kv[0], measured[0] / 2, "KV %llu of %llu bytes", (unsigned long long)kv[0],
                 (unsigned long long)measured[0]);
    const double dm = (double)measured[0] - (double)measured[1], dp = (double)predicted[0] - (double)predicted[1];
    cr_log_info("plan: f16 - q4_0: measured %.0f bytes, predicted %.0f (%+.2f%%)", dm, dp, (dp / dm - 1) * 100);
    cr_expect_leq(fabs(dp / dm - 1.0), 0.10, "f16 - q4_0: predicted %.0f bytes, measured %.0f", dp, dm);
    qfit_plan_model_free(&m);
}

/* qfit plan --parallel N: the KV cache holds N x ctx cells, allocated when the context is
 * created (each sequence gets its whole context). Measured with `qfit bench --parallel N`,
 * which runs N sequences in one context, on the synthetic tiny-longctx shape at ctx 4096,
 * where 8 sequences' KV cache (256 MiB f16) is most of the process: each prediction within
 * 5% of its peak RSS, and the 1 -> 8 difference within 10% (a planner that ignored
 * --parallel predicts 0, one that split one context among the sequences too). */
Test(plan, parallel_matches_measured_peak_rss, .timeout = 600)
{
    const char *bin = release_bin();
    char err[256];
    const char *model = tu_synth("tiny-longctx", QFIT_FTYPE_MOSTLY_F16, 1, "tiny-longctx-par.gguf");
    qfit_plan_model m;
    load(model, &m);
    qfit_plan_machine mach;
    qfit_plan_machine_custom(GiB, &mach);
    const char *par[2] = { "1", "8" };
    uint64_t measured[2], predicted[2];
    for (int k = 0; k < 2; k++) {
        char *argv[] = { (char *)bin, "bench", (char *)model, "--ctx", "4096", "--pp", "64", "--tg", "2", "--reps", "1",
                         "--threads", "1", "--parallel", (char *)par[k], "--flash-attn", "on", NULL };
        int st;
        measured[k] = child_peak_rss(argv, &st);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "qfit bench --parallel %s failed (status %d)", par[k], st);
        const int n = atoi(par[k]);
        /* the batch bench uses: every sequence's 64 prompt tokens, at most 512 */
        qfit_plan_settings s = { NULL, 4096, QFIT_TYPE_F16, 1, n, 64 * n < 512 ? 64 * n : 512, 0, QFIT_PLAN_RUN, false, 0, 0 };
        qfit_plan_result r;
        cr_assert_eq(qfit_plan_compute(&m, &mach, &s, &r, err, sizeof err), 0, "%s", err);
        predicted[k] = r.process_bytes;
        const double e = ((double)predicted[k] - (double)measured[k]) / (double)measured[k] * 100.0;
        cr_log_info("plan: tiny-longctx ctx 4096 parallel %s: KV %llu, predicted %llu, measured %llu (%+.2f%%)",
                    par[k], (unsigned long long)r.kv_bytes, (unsigned long long)predicted[k],
                    (unsigned long long)measured[k], e);
        cr_expect(fabs(e) <= 5.0, "parallel %s: predicted %llu bytes, measured %llu (%+.2f%%)", par[k],
                  (unsigned long long)predicted[k], (unsigned long long)measured[k], e);
    }
    const double dm = (double)measured[1] - (double)measured[0], dp = (double)predicted[1] - (double)predicted[0];
    cr_log_info("plan: parallel 8 - 1: measured %.0f bytes, predicted %.0f (%+.2f%%)", dm, dp, (dp / dm - 1) * 100);
    cr_expect_leq(fabs(dp / dm - 1.0), 0.10, "parallel 8 - 1: predicted %.0f bytes, measured %.0f", dp, dm);
    qfit_plan_model_free(&m);
}

/* The ppl workload: as qfit ppl, batch = context, logits of half the chunk in the
 * engine's buffer and in ppl's own; generation writes one logits row. */
Test(plan, workload_ppl_accounting)
{
    qfit_plan_model m;
    load("llama3.2:1b", &m);
    qfit_plan_machine mach;
    qfit_plan_machine_custom(64 * GiB, &mach);
    char err[256];
    qfit_plan_settings s = { "Q4_K_M", 2048, 0, -1, 0, 0, 0, QFIT_PLAN_PPL, false, 0, 0 };
    qfit_plan_result p, g;
    cr_assert_eq(qfit_plan_compute(&m, &mach, &s, &p, err, sizeof err), 0, "%s", err);
    cr_expect_eq(p.n_batch, 2048);
    cr_expect_eq(p.eval_bytes, 1024ull * 128256 * 4 + 2048 * 4);
    /* the engine allocates 2048 logits rows; ppl writes 1024 of them */
    cr_expect_eq(p.compute_alloc_bytes - p.compute_bytes >= 1024ull * 128256 * 4, true);
    s.workload = QFIT_PLAN_RUN;
    s.n_batch = 2048;
    cr_assert_eq(qfit_plan_compute(&m, &mach, &s, &g, err, sizeof err), 0, "%s", err);
    cr_expect_eq(g.eval_bytes, 0);
    cr_expect_eq(p.compute_alloc_bytes, g.compute_alloc_bytes);
    cr_expect_eq(p.compute_bytes - g.compute_bytes, 1023ull * 128256 * 4);
    /* batch 512: the two batches of the scored half write all 512 rows */
    s.workload = QFIT_PLAN_PPL;
    s.n_batch = 512;
    cr_assert_eq(qfit_plan_compute(&m, &mach, &s, &p, err, sizeof err), 0, "%s", err);
    s.workload = QFIT_PLAN_RUN;
    cr_assert_eq(qfit_plan_compute(&m, &mach, &s, &g, err, sizeof err), 0, "%s", err);
    cr_expect_eq(p.compute_bytes - g.compute_bytes, 511ull * 128256 * 4);
    s.n_parallel = 2;
    s.workload = QFIT_PLAN_PPL;
    cr_expect_eq(qfit_plan_compute(&m, &mach, &s, &p, err, sizeof err), -1);
    qfit_plan_model_free(&m);
}

/* A mixture of experts (synth shape tiny-qwen3moe: 16 experts of 128 rows, 4 per token):
 * the compute buffers the planner counts are the ones a context allocates (gate, up and
 * the quantized rows hold one row per (token, chosen expert), plus the router's and the
 * experts' outputs), and a generated token reads the chosen 4 of 16 experts' matrices,
 * not all of them (a planner that counted every expert predicts 4x their bytes). */
Test(plan, experts_compute_buffers_and_bytes_read_per_token, .timeout = 120)
{
    char err[256];
    const char *model = tu_synth("tiny-qwen3moe", QFIT_FTYPE_MOSTLY_Q8_0, 1, "tiny-qwen3moe.gguf");
    qfit_plan_model m;
    load(model, &m);
    cr_expect_eq(m.n_expert, 16);
    cr_expect_eq(m.n_expert_used, 4);
    cr_expect_eq(m.n_ff_exp, 128);
    qfit_plan_machine mach;
    qfit_plan_machine_custom(GiB, &mach);
    qfit_plan_settings s = { NULL, 256, 0, 1, 1, 64, 0, QFIT_PLAN_RUN, false, 0, 0 };
    qfit_plan_result r;
    cr_assert_eq(qfit_plan_compute(&m, &mach, &s, &r, err, sizeof err), 0, "%s", err);

    qfit_model *qm = qfit_model_load(model, err, sizeof err);
    cr_assert_not_null(qm, "%s", err);
    qfit_context_params p = qfit_context_default_params();
    p.n_ctx = 256;
    p.n_batch = 64;
    p.n_threads = 1;
    p.flash_attn = 1;
    qfit_context *c = qfit_context_new(qm, &p, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_expect_eq(r.compute_alloc_bytes, (uint64_t)qfit_context_compute_bytes(c), "planned %llu, allocated %zu",
                 (unsigned long long)r.compute_alloc_bytes, qfit_context_compute_bytes(c));
    cr_expect_eq(r.kv_bytes, (uint64_t)qfit_context_kv_bytes(c));
    qfit_context_free(c);

    /* bytes read per token, from the file: every tensor but the embedding table (a lookup),
     * the experts' 3-D tensors at 4/16 */
    const qfit_gguf *g = qfit_model_gguf(qm);
    uint64_t want = r.kv_bytes, experts = 0;
    for (int64_t i = 0; i < qfit_gguf_n_tensors(g); i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        if (t->name.len == 17 && !memcmp(t->name.data, "token_embd.weight", 17)) continue;
        if (t->ne[2] > 1) { experts += t->nbytes; want += t->nbytes / 16 * 4; }
        else want += t->nbytes;
    }
    cr_assert_gt(experts, r.weights_bytes / 2, "the experts are most of the weights");
    cr_expect_eq(r.bytes_per_token, want, "bytes per token %llu, expected %llu", (unsigned long long)r.bytes_per_token,
                 (unsigned long long)want);
    qfit_model_free(qm);
    qfit_plan_model_free(&m);
}

/* Sliding windows: the planner sizes the KV cache and the compute buffers exactly as
 * the engine allocates them for a Gemma 3 file (five sliding layers of six holding the
 * window 32 + one pass, a second RoPE table), at several contexts, batches and sequence
 * counts; and the catalog's gemma3:12b at 32K context holds 1024 + 512 positions in 40
 * of its 48 layers (a planner that ignored the window would count 48 x 32768). */
Test(plan, sliding_window_kv_and_compute_as_allocated, .timeout = 120)
{
    char err[256];
    const char *model = tu_synth("tiny-gemma3", QFIT_FTYPE_MOSTLY_Q8_0, 1, "tiny-gemma3.gguf");
    qfit_plan_model m;
    load(model, &m);
    cr_expect_eq(m.n_swa, 32);
    cr_expect_eq(m.swa_pattern, 6);
    cr_expect(m.swa_rope);
    qfit_model *qm = qfit_model_load(model, err, sizeof err);
    cr_assert_not_null(qm, "%s", err);
    qfit_plan_machine mach;
    qfit_plan_machine_custom(GiB, &mach);
    const struct { int ctx, batch, par; } cases[] = { { 256, 16, 1 }, { 256, 64, 2 }, { 64, 512, 1 }, { 256, 512, 3 } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qfit_plan_settings s = { NULL, cases[i].ctx, 0, 1, cases[i].par, cases[i].batch, 0, QFIT_PLAN_RUN, false, 0, 0 };
        qfit_plan_result r;
        cr_assert_eq(qfit_plan_compute(&m, &mach, &s, &r, err, sizeof err), 0, "%s", err);
        qfit_context_params p = qfit_context_default_params();
        p.n_ctx = cases[i].ctx;
        p.n_batch = cases[i].batch;
        p.n_seq = cases[i].par;
        p.n_threads = 1;
        p.flash_attn = 1;
        qfit_context *c = qfit_context_new(qm, &p, err, sizeof err);
        cr_assert_not_null(c, "%s", err);
        cr_expect_eq(r.kv_bytes, (uint64_t)qfit_context_kv_bytes(c), "ctx %d batch %d x%d: KV planned %llu, allocated %zu",
                     cases[i].ctx, cases[i].batch, cases[i].par, (unsigned long long)r.kv_bytes,
                     qfit_context_kv_bytes(c));
        cr_expect_eq(r.compute_alloc_bytes, (uint64_t)qfit_context_compute_bytes(c),
                     "ctx %d batch %d x%d: compute planned %llu, allocated %zu", cases[i].ctx, cases[i].batch,
                     cases[i].par, (unsigned long long)r.compute_alloc_bytes, qfit_context_compute_bytes(c));
        /* what a scheduler reserves before creating the context (qfit_context_alloc_bytes) */
        cr_expect_eq(qfit_context_alloc_bytes(qm, &p), qfit_context_kv_bytes(c) + qfit_context_compute_bytes(c));
        /* what `qfit plan` says of the layout: 5 of 6 layers hold window 32 + the batch
         * while that is shorter than the context (the batch is clamped to it) */
        const int batch = cases[i].batch < cases[i].ctx ? cases[i].batch : cases[i].ctx;
        const bool slides = 32 + batch < cases[i].ctx;
        cr_expect_eq(r.kv_sliding_layers, slides ? 5 : 0, "ctx %d batch %d: %lld sliding layers", cases[i].ctx,
                     cases[i].batch, (long long)r.kv_sliding_layers);
        cr_expect_eq(r.kv_sliding_cells, slides ? 32 + batch : cases[i].ctx);
        qfit_context_free(c);
    }
    qfit_model_free(qm);
    qfit_plan_model_free(&m);

    cr_assert_eq(qfit_plan_model_load("gemma3:12b", &m, err, sizeof err), 0, "%s", err);
    /* K and V rows: 8 KV heads x 256 x 2 bytes (f16) each */
    const uint64_t row = 2ull * 8 * 256 * 2;
    cr_expect_eq(qfit_plan_kv_bytes(&m, 32768, QFIT_TYPE_F16), (40ull * (1024 + 512) + 8ull * 32768) * row);
    {
        qfit_plan_machine_custom(64 * GiB, &mach);
        const qfit_plan_result r = plan(&m, &mach, NULL, 32768, 0, 1);
        cr_expect_eq(r.kv_sliding_layers, 40, "gemma3:12b: 40 of 48 layers slide, not %lld", (long long)r.kv_sliding_layers);
        cr_expect_eq(r.kv_sliding_cells, 1024 + 512);
    }
    qfit_plan_model_free(&m);
}

/* Load-time repacking (qfit_pack_matrix): a plan for this machine's CPU (a custom budget
 * here) holds the packed forms in place of the rows they replace, so its resident
 * weights exceed those of the same plan for an Apple machine (NEON: no load-time
 * layouts) by exactly what the model loader reports it packed beyond the rows: the
 * planner and the loader agree on which matrices are packed (a planner that forgot the
 * output matrix, or counted the experts, would not). The shared model in Q4_K_M:
 * untied, Q4_K and Q6_K matrices. */
Test(plan, repacked_weights_counted_as_loaded, .timeout = 300)
{
    char err[256];
    const char *path = tu_kjv_quantized("Q4_K_M", "plan-kjv-Q4_K_M.gguf");
    qfit_model *model = qfit_model_load(path, err, sizeof err);
    cr_assert_not_null(model, "%s", err);
    size_t src = 0;
    const size_t packed = qfit_model_packed_bytes(model, &src);
    qfit_model_free(model);
    qfit_plan_model m;
    load(path, &m);
    qfit_plan_machine here;
    qfit_plan_machine_custom(64 * GiB, &here);
    const qfit_plan_machine *apple = qfit_plan_machine_find("m1-max-32gb");
    cr_assert_not_null(apple);
    const qfit_plan_result a = plan(&m, &here, NULL, 256, 0, 1), b = plan(&m, apple, NULL, 256, 0, 1);
    cr_expect_eq(a.weights_bytes, b.weights_bytes);
    cr_expect_eq((int64_t)a.weights_resident_bytes - (int64_t)b.weights_resident_bytes, (int64_t)packed - (int64_t)src,
                 "planner: resident weights +%lld on this CPU; the loader packed %zu bytes for %zu of rows",
                 (long long)a.weights_resident_bytes - (long long)b.weights_resident_bytes, packed, src);
    cr_log_info("plan: repacking adds %lld bytes (packed %zu for %zu of rows)",
                (long long)a.weights_resident_bytes - (long long)b.weights_resident_bytes, packed, src);
    qfit_plan_model_free(&m);
}

/* ------------------------------------------------------------ layer offload (issue 16) */

/* qfit plan --gpu-layers predicts a Vulkan context's device memory to the byte: the
 * bytes its buffers ask the driver for (weights of the offloaded layers, their KV cache,
 * the backend's activations) equal the plan's GPU total, and the host's KV cache, which
 * holds only the CPU's layers, equals the plan's host KV. For full, partial and no layer
 * offload, an F32 and a Q4_K_M file (the per-tensor sizes of a mix). A wrong layer count,
 * a tensor counted on the wrong side, a KV cache allocated on both sides or a buffer size
 * the planner does not know fail it. */
Test(plan, offload_predicts_vulkan_buffers_exactly, .timeout = 300)
{
    const char *dev = tu_vulkan_device();
    const char *files[] = { tu_shared_path("models/kjv-llama-7m-f32.gguf"), tu_kjv_quantized("Q4_K_M", "offload-q4km.gguf") };
    for (size_t f = 0; f < 2; f++) {
        char err[512];
        qfit_model *model = qfit_model_load(files[f], err, sizeof err);
        cr_assert_not_null(model, "%s", err);
        qfit_plan_model pm;
        load(files[f], &pm);
        qfit_plan_machine mach;
        qfit_plan_machine_detect(&mach);
        const int ngls[] = { -1, 9, 8, 4, 1, 0 };
        for (size_t i = 0; i < sizeof ngls / sizeof ngls[0]; i++) {
            qfit_context_params cp = qfit_context_default_params();
            snprintf(cp.device, sizeof cp.device, "%s", dev);
            cp.n_gpu_layers = ngls[i];
            cp.n_ctx = 192;
            cp.n_batch = 48;
            cp.n_threads = 1;
            qfit_context *c = qfit_context_new(model, &cp, err, sizeof err);
            cr_assert_not_null(c, "ngl %d: %s", ngls[i], err);
            size_t driver = 0;
            const size_t held = qfit_context_device_bytes(c, &driver);
            qfit_plan_settings s = { .n_ctx = 192, .n_batch = 48, .flash_attn = -1, .offload = true,
                                     .n_gpu_layers = ngls[i], .gpu_mem_bytes = 1ull << 40 };
            qfit_plan_result r;
            cr_assert_eq(qfit_plan_compute(&pm, &mach, &s, &r, err, sizeof err), 0, "%s", err);
            cr_expect_eq(held, r.gpu_total_bytes, "%s ngl %d: the context holds %zu device bytes, the plan says %llu "
                         "(weights %llu, KV %llu, compute %llu)", files[f], ngls[i], held,
                         (unsigned long long)r.gpu_total_bytes, (unsigned long long)r.gpu_weights_bytes,
                         (unsigned long long)r.gpu_kv_bytes, (unsigned long long)r.gpu_compute_bytes);
            cr_expect_geq(driver, held);
            cr_expect_eq(qfit_context_kv_bytes(c), r.kv_bytes, "%s ngl %d: host KV %zu, plan %llu", files[f], ngls[i],
                         qfit_context_kv_bytes(c), (unsigned long long)r.kv_bytes);
            const int want_layers = ngls[i] < 0 || ngls[i] > 8 ? 8 : ngls[i];
            cr_expect_eq(r.n_gpu_layers, want_layers);
            cr_expect_eq(r.gpu_output, ngls[i] < 0 || ngls[i] > 8);
            cr_log_info("%s ngl %d: device %zu bytes asked, %zu allocated by the driver; host KV %zu", files[f],
                        ngls[i], held, driver, qfit_context_kv_bytes(c));
            qfit_context_free(c);
        }
        /* quantized caches (each head's run padded to 4 bytes), K and V of their own types, and
         * several sequences */
        const struct { int k, v, ngl, seq; } kc[] = { { QFIT_TYPE_Q8_0, QFIT_TYPE_Q8_0, 4, 2 },
                                                      { QFIT_TYPE_Q4_0, QFIT_TYPE_F16, -1, 3 } };
        for (size_t i = 0; i < sizeof kc / sizeof kc[0]; i++) {
            qfit_context_params cp = qfit_context_default_params();
            snprintf(cp.device, sizeof cp.device, "%s", dev);
            cp.n_gpu_layers = kc[i].ngl;
            cp.n_ctx = 100;   /* 100 rows of q4_0 (18 bytes each) pad to a word */
            cp.n_batch = 48;
            cp.n_seq = kc[i].seq;
            cp.n_threads = 1;
            cp.type_k = kc[i].k;
            cp.type_v = kc[i].v;
            qfit_context *c = qfit_context_new(model, &cp, err, sizeof err);
            cr_assert_not_null(c, "%s", err);
            qfit_plan_settings s = { .n_ctx = 100, .n_batch = 48, .flash_attn = -1, .n_parallel = kc[i].seq,
                                     .kv_type = kc[i].k, .kv_type_v = kc[i].v, .offload = true,
                                     .n_gpu_layers = kc[i].ngl, .gpu_mem_bytes = 1ull << 40 };
            qfit_plan_result r;
            cr_assert_eq(qfit_plan_compute(&pm, &mach, &s, &r, err, sizeof err), 0, "%s", err);
            cr_expect_eq(qfit_context_device_bytes(c, NULL), r.gpu_total_bytes, "%s %s/%s x%d: device %zu, plan %llu "
                         "(KV %llu)", files[f], qfit_type_name(kc[i].k), qfit_type_name(kc[i].v), kc[i].seq,
                         qfit_context_device_bytes(c, NULL), (unsigned long long)r.gpu_total_bytes,
                         (unsigned long long)r.gpu_kv_bytes);
            cr_expect_eq(qfit_context_kv_bytes(c), r.kv_bytes, "host KV %zu, plan %llu", qfit_context_kv_bytes(c),
                         (unsigned long long)r.kv_bytes);
            qfit_context_free(c);
        }
        qfit_plan_model_free(&pm);
        qfit_model_free(model);
    }
}

/* --fit with offload picks the most layers whose device side fits the GPU's budget: with a
 * budget of exactly k layers' worth (plus the driver reserve), k; one byte less, k - 1. */
Test(plan, fit_layers_takes_the_most_that_fit)
{
    qfit_plan_model pm;
    load("llama3.1:8b", &pm);
    qfit_plan_machine mach;
    qfit_plan_machine_custom(256 * GiB, &mach);
    char err[256];
    const int ks[] = { 33, 32, 20, 1 };
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        qfit_plan_settings s = { .mix = "Q4_K_M", .n_ctx = 8192, .flash_attn = -1, .offload = true,
                                 .n_gpu_layers = ks[i], .gpu_mem_bytes = 1ull << 50 };
        qfit_plan_result want, got;
        cr_assert_eq(qfit_plan_compute(&pm, &mach, &s, &want, err, sizeof err), 0, "%s", err);
        s.gpu_mem_bytes = want.gpu_total_bytes + QFIT_PLAN_GPU_RESERVE_BYTES;
        cr_assert_eq(qfit_plan_fit_layers(&pm, &mach, &s, &got, err, sizeof err), 1, "%s", err);
        cr_expect_eq(got.n_gpu_layers + got.gpu_output, ks[i], "budget for %d: fit chose %d%s", ks[i],
                     got.n_gpu_layers, got.gpu_output ? " and the output" : "");
        s.gpu_mem_bytes -= 1;
        cr_assert_eq(qfit_plan_fit_layers(&pm, &mach, &s, &got, err, sizeof err), 1, "%s", err);
        cr_expect_eq(got.n_gpu_layers + got.gpu_output, ks[i] - 1, "one byte under %d: fit chose %d", ks[i],
                     got.n_gpu_layers + got.gpu_output);
    }
    /* the Vulkan backend's limits are the planner's: a cache type it does not take is refused */
    qfit_plan_settings q = { .mix = "Q4_K_M", .kv_type = QFIT_TYPE_Q4_1, .flash_attn = -1, .offload = true,
                             .n_gpu_layers = -1, .gpu_mem_bytes = 64 * GiB };
    qfit_plan_result r;
    cr_expect_eq(qfit_plan_compute(&pm, &mach, &q, &r, err, sizeof err), -1);
    cr_expect_neq(strstr(err, "takes f16, q8_0 and q4_0"), NULL, "%s", err);
    qfit_plan_model_free(&pm);
}

/* -1 on a Vulkan device is "all that fit": with a device budget (--gpu-mem) of exactly k
 * layers' worth as the planner counts it, the context offloads k; one byte less, k - 1;
 * and the planner's --fit, given that budget plus the driver's reserve, picks the same k.
 * A context that ignored the budget, or an engine and planner that counted differently,
 * fail it. */
Test(plan, gpu_layers_all_that_fit_matches_the_plan, .timeout = 300)
{
    const char *dev = tu_vulkan_device();
    const char *path = tu_shared_path("models/kjv-llama-7m-f32.gguf");
    char err[512];
    qfit_model *model = qfit_model_load(path, err, sizeof err);
    cr_assert_not_null(model, "%s", err);
    qfit_plan_model pm;
    load(path, &pm);
    qfit_plan_machine mach;
    qfit_plan_machine_detect(&mach);
    const int ks[] = { 9, 8, 5, 1 };
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        qfit_plan_settings s = { .n_ctx = 128, .n_batch = 32, .flash_attn = -1, .offload = true, .n_gpu_layers = ks[i],
                                 .gpu_mem_bytes = 1ull << 40 };
        qfit_plan_result want;
        cr_assert_eq(qfit_plan_compute(&pm, &mach, &s, &want, err, sizeof err), 0, "%s", err);
        for (int under = 0; under <= 1; under++) {
            qfit_context_params cp = qfit_context_default_params();
            snprintf(cp.device, sizeof cp.device, "%s", dev);
            cp.n_ctx = 128;
            cp.n_batch = 32;
            cp.n_threads = 1;
            cp.gpu_mem = want.gpu_total_bytes - (uint64_t)under;
            qfit_context *c = qfit_context_new(model, &cp, err, sizeof err);
            cr_assert_not_null(c, "%s", err);
            const int got = qfit_context_gpu_layers(c);
            const int expect = ks[i] - under;
            cr_expect_eq(got < 0 ? 9 : got, expect, "budget %llu: the context offloaded %d, want %d",
                         (unsigned long long)cp.gpu_mem, got, expect);
            cr_expect_leq(qfit_context_device_bytes(c, NULL), cp.gpu_mem);
            char desc[512];
            qfit_context_describe(c, desc, sizeof desc);
            if (expect < 9) cr_expect_neq(strstr(desc, "all that fit"), NULL, "%s", desc);
            qfit_context_free(c);
            s.n_gpu_layers = -1;
            s.gpu_mem_bytes = cp.gpu_mem + QFIT_PLAN_GPU_RESERVE_BYTES;
            qfit_plan_result fit;
            cr_assert_eq(qfit_plan_fit_layers(&pm, &mach, &s, &fit, err, sizeof err), 1, "%s", err);
            cr_expect_eq(fit.n_gpu_layers + fit.gpu_output, expect, "planner: %d", fit.n_gpu_layers + fit.gpu_output);
        }
    }
    qfit_plan_model_free(&pm);
    qfit_model_free(model);
}

/* `qfit plan --gpu-mem --fit` prints the count the library's fit picks and the command that
 * applies it; bad offload options are errors naming them. */
Test(plan, cli_offload_fit_and_errors)
{
    qfit_plan_model pm;
    load("llama3.1:8b", &pm);
    qfit_plan_machine mach;
    qfit_plan_machine_detect(&mach);
    qfit_plan_settings s = { .flash_attn = -1, .offload = true, .n_gpu_layers = -1, .gpu_mem_bytes = 5 * GiB };
    qfit_plan_result best;
    char err[256];
    cr_assert_eq(qfit_plan_fit_layers(&pm, &mach, &s, &best, err, sizeof err), 1, "%s", err);
    cr_assert_lt(best.n_gpu_layers, 32, "5 GiB was meant to hold fewer than all of llama3.1:8b's layers");
    char cmd[512], want[64];
    snprintf(cmd, sizeof cmd, "%s plan llama3.1:8b --gpu-mem 5G --fit", tu_qfit_bin());
    int st;
    char *out = tu_run(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    snprintf(want, sizeof want, "--gpu-layers %d: %d of 32 layers on the GPU", best.n_gpu_layers, best.n_gpu_layers);
    cr_expect_neq(strstr(out, want), NULL, "want '%s' in:\n%s", want, out);
    cr_expect_neq(strstr(out, "GPU       32 of 32 layers and the output layer offloaded"), NULL, "%s", out);
    free(out);
    const char *bad[][2] = {
        { "--gpu-mem lots", "bad --gpu-mem 'lots'" },
        { "--gpu-layers -3", "--gpu-layers wants -1 (all) or a layer count" },
        { "--device cpu", "is not a GPU" },
        { "--device vulkan99", "unknown device \"vulkan99\"" },
        { "--gpu-mem 8G --kv-type q4_1", "takes f16, q8_0 and q4_0" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s plan llama3.1:8b %s", tu_qfit_bin(), bad[i][0]);
        out = tu_run(cmd, &st);
        cr_expect_neq(st, 0, "%s: accepted", bad[i][0]);
        cr_expect_neq(strstr(out, bad[i][1]), NULL, "%s: want '%s' in: %s", bad[i][0], bad[i][1], out);
        free(out);
    }
    qfit_plan_model_free(&pm);
}

/* The planner refuses offload of a model the Vulkan backend would refuse, with the reason
 * the engine gives: the shared model with one matrix of layer 0 stored as Q8_1 (a type the
 * device's matrix product lacks) is refused for --gpu-layers 1 too (the engine refuses a
 * model it cannot run whole: qfit_device_supports), naming the type and the tensor; the
 * same file plans fine without offload. A planner that checked only the offloaded layers,
 * or no types, would print a plan the run then refuses. */
Test(plan, offload_refuses_a_type_the_device_lacks)
{
    char err[512];
    qfit_gguf *src = qfit_gguf_open(tu_shared_path("models/kjv-llama-7m-f32.gguf"), err, sizeof err);
    cr_assert_not_null(src, "%s", err);
    qfit_gguf_writer *w = qfit_gguf_writer_new();
    cr_assert_not_null(w);
    cr_assert_eq(qfit_gguf_copy_all_kv(w, src), 0);
    const int64_t nt = qfit_gguf_n_tensors(src);
    for (int64_t i = 0; i < nt; i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(src, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        const int type = !strcmp(name, "blk.0.ffn_up.weight") ? QFIT_TYPE_Q8_1 : t->type;
        cr_assert_eq(qfit_gguf_add_tensor(w, name, t->n_dims, t->ne, type), 0, "%s", name);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/plan-q8_1-matrix.gguf", tu_tmpdir());
    cr_assert_eq(qfit_gguf_writer_begin(w, path, err, sizeof err), 0, "%s", err);
    for (int64_t i = 0; i < nt; i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(src, i);
        const bool q81 = t->name.len == 19 && !memcmp(t->name.data, "blk.0.ffn_up.weight", 19);
        const size_t n = q81 ? qfit_row_size(QFIT_TYPE_Q8_1, t->ne[0]) * (size_t)t->ne[1] : (size_t)t->nbytes;
        void *zero = q81 ? calloc(1, n) : NULL;
        cr_assert_eq(qfit_gguf_writer_write_tensor(w, q81 ? zero : t->data, n, err, sizeof err), 0, "%s", err);
        free(zero);
    }
    cr_assert_eq(qfit_gguf_writer_finish(w, err, sizeof err), 0, "%s", err);
    qfit_gguf_writer_free(w);
    qfit_gguf_close(src);
    char cmd[1024];
    int st;
    snprintf(cmd, sizeof cmd, "%s plan %s --gpu-layers 1 --gpu-mem 1G 2>&1", tu_qfit_bin(), path);
    char *out = tu_run(cmd, &st);
    cr_expect_neq(st, 0, "offload of a Q8_1 matrix planned:\n%s", out);
    cr_expect_neq(strstr(out, "no matrix product for q8_1 weights"), NULL, "%s", out);
    cr_expect_neq(strstr(out, "blk.0.ffn_up.weight"), NULL, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s plan %s 2>&1", tu_qfit_bin(), path);
    out = tu_run(cmd, &st);
    cr_expect_eq(st, 0, "the CPU plan of the same file: %s", out);
    free(out);
}

/* A model loaded for a Vulkan context (qfit_model_load_for) packs only the CPU's layers,
 * and the planner's host side drops exactly what the loader did not make and what the
 * upload gives back: the plan's host resident weights with 4 of 8 layers offloaded are the
 * CPU plan's less the offloaded tensors' rows and less the packing the loader skipped
 * (measured: qfit_model_packed_bytes of the two loads). A loader that packed every layer,
 * or a planner that kept the offloaded rows on the host, fail it. */
Test(plan, offload_host_weights_as_loaded, .timeout = 300)
{
    const char *dev = tu_vulkan_device();
    char err[512];
    const char *path = tu_kjv_quantized("Q4_K_M", "offload-host-q4km.gguf");
    qfit_model *all = qfit_model_load(path, err, sizeof err);
    cr_assert_not_null(all, "%s", err);
    size_t src_all = 0;
    const size_t packed_all = qfit_model_packed_bytes(all, &src_all);
    qfit_model_free(all);
    qfit_context_params cp = qfit_context_default_params();
    snprintf(cp.device, sizeof cp.device, "%s", dev);
    cp.n_gpu_layers = 4;
    cp.n_ctx = 256;
    qfit_model *part = qfit_model_load_for(path, &cp, err, sizeof err);
    cr_assert_not_null(part, "%s", err);
    size_t src_part = 0;
    const size_t packed_part = qfit_model_packed_bytes(part, &src_part);
    qfit_model_free(part);
    if (!packed_all) cr_skip_test("this CPU packs no Q4_K_M matrix at load (nothing to compare)");
    cr_assert_lt(packed_part, packed_all, "the offloaded layers were packed too");
    qfit_plan_model pm;
    load(path, &pm);
    qfit_plan_machine here;
    qfit_plan_machine_custom(64 * GiB, &here);
    qfit_plan_settings s = { .n_ctx = 256, .flash_attn = -1 };
    qfit_plan_result cpu, off;
    cr_assert_eq(qfit_plan_compute(&pm, &here, &s, &cpu, err, sizeof err), 0, "%s", err);
    s.offload = true;
    s.n_gpu_layers = 4;
    s.gpu_mem_bytes = 64 * GiB;
    cr_assert_eq(qfit_plan_compute(&pm, &here, &s, &off, err, sizeof err), 0, "%s", err);
    const int64_t skipped_packing = ((int64_t)packed_all - (int64_t)src_all) - ((int64_t)packed_part - (int64_t)src_part);
    cr_expect_eq((int64_t)cpu.weights_resident_bytes - (int64_t)off.weights_resident_bytes,
                 (int64_t)off.gpu_weights_bytes + skipped_packing,
                 "host: %llu -> %llu; GPU weights %llu, packing the loader skipped %lld",
                 (unsigned long long)cpu.weights_resident_bytes, (unsigned long long)off.weights_resident_bytes,
                 (unsigned long long)off.gpu_weights_bytes, (long long)skipped_packing);
    qfit_plan_model_free(&pm);
}
