/* qfit embed MODEL.gguf TEXT... | -f FILE — pooled, L2-normalised embeddings
 * (qfit/embed.h) printed as JSON, as Ollama's /api/embed answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli_env.h"
#include "cli/commands.h"
#include "qfit/embed.h"
#include "qfit/model.h"
#include "qfit/tokenizer.h"

static void embed_usage(FILE *f)
{
    fprintf(f,
            "usage: qfit embed MODEL.gguf TEXT... [options]\n"
            "       qfit embed MODEL.gguf -f FILE [options]\n"
            "\n"
            "Prints {\"model\": ..., \"embeddings\": [[...], ...], \"prompt_eval_count\": N}: one vector per\n"
            "input, the final-normed hidden states pooled over its tokens, L2-normalised.\n"
            "  -f FILE            one input per line of FILE (a final newline ends the last line)\n"
            "  --pooling P        mean, cls or last (default: the model's <arch>.pooling_type, else mean)\n"
            "  --no-normalize     print the pooled vectors as they are\n"
            "  --truncate         keep the first n_ctx tokens of a longer input (default: an error);\n"
            "                     adds \"truncated\": tokens dropped over all inputs\n"
            "  --dimensions K     keep the first K values (then normalise)\n"
            "  --ctx N            context size (default: min(training context, 4096))\n"
            "  --batch N          tokens per forward pass (default 512; an encoder such as bert or\n"
            "                     nomic-bert: the context size, as it takes an input in one pass)\n"
            "  --threads N        threads (default: all CPUs)\n"
            "  --kv-type T, --cache-type-k T, --cache-type-v T, --flash-attn on|off|auto, --device D\n"
            "                     as qfit run\n");
}

/* FILE into a NUL-terminated buffer split in place into lines (*lines, *n). */
static char *read_lines(const char *path, char ***lines, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0, r;
    char *buf = malloc(cap + 1);
    while (buf && (r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            char *nb = realloc(buf, (cap *= 2) + 1);
            if (!nb) { free(buf); buf = NULL; }
            else buf = nb;
        }
    }
    if (buf && ferror(f)) { free(buf); buf = NULL; }
    fclose(f);
    if (!buf) return NULL;
    buf[len] = 0;
    if (len > 0 && buf[len - 1] == '\n') buf[--len] = 0;
    size_t count = 1;
    for (size_t i = 0; i < len; i++) count += buf[i] == '\n';
    *lines = malloc(count * sizeof **lines);
    if (!*lines) { free(buf); return NULL; }
    size_t k = 0;
    (*lines)[k++] = buf;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n') continue;
        buf[i] = 0;
        (*lines)[k++] = buf + i + 1;
    }
    *n = len == 0 ? 0 : count;   /* an empty file has no inputs */
    return buf;
}

int qfit_cmd_embed(int argc, char **argv)
{
    const char *model_path = NULL, *file = NULL;
    qfit_embed_params ep;
    qfit_embed_params_init(&ep);
    qfit_context_params cp = qfit_context_default_params();
    char perr[256], env_desc[256];
    if (qfit_context_params_from_env(&cp, env_desc, sizeof env_desc, perr, sizeof perr) != 0) {
        fprintf(stderr, "qfit embed: %s\n", perr);
        return 2;
    }
    const char **texts = calloc((size_t)argc, sizeof *texts);
    if (!texts) { fprintf(stderr, "qfit embed: out of memory\n"); return 1; }
    size_t n_texts = 0;
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int pr;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { embed_usage(stdout); free(texts); return 0; }
        else if (!strcmp(a, "--no-normalize")) ep.normalize = false;
        else if (!strcmp(a, "--truncate")) ep.truncate = true;
        else if (a[0] == '-' && a[1] != 0) {
            if (!v) { fprintf(stderr, "qfit embed: %s needs a value\n", a); goto usage_out; }
            i++;
            if (!strcmp(a, "-f") || !strcmp(a, "--file")) file = v;
            else if (!strcmp(a, "--pooling")) {
                ep.pooling = qfit_pooling_from_name(v);
                if (ep.pooling != QFIT_POOLING_MEAN && ep.pooling != QFIT_POOLING_CLS &&
                    ep.pooling != QFIT_POOLING_LAST) {
                    fprintf(stderr, "qfit embed: invalid --pooling '%s' (mean, cls or last)\n", v);
                    goto usage_out;
                }
            } else if (!strcmp(a, "--dimensions")) { if (qfit_cli_parse_int("embed", v, a, 1, &ep.dimensions)) goto usage_out; }
            else if (!strcmp(a, "--batch")) { if (qfit_cli_parse_int("embed", v, a, 1, &cp.n_batch)) goto usage_out; }
            else if (!strcmp(a, "--threads")) { if (qfit_cli_parse_int("embed", v, a, 1, &cp.n_threads)) goto usage_out; }
            else if ((pr = qfit_context_params_parse_arg(&cp, a, v, perr, sizeof perr)) != 0) {
                if (pr < 0) { fprintf(stderr, "qfit embed: %s\n", perr); goto usage_out; }
            } else { fprintf(stderr, "qfit embed: unknown option %s\n", a); embed_usage(stderr); goto usage_out; }
        } else if (!model_path) model_path = a;
        else texts[n_texts++] = a;
    }
    if (!model_path || (n_texts == 0) == !file) {
        fprintf(stderr, "qfit embed: need MODEL.gguf and either TEXT... or -f FILE\n");
        embed_usage(stderr);
        goto usage_out;
    }

    rc = 1;
    char err[512];
    char *content = NULL, **lines = NULL;
    float *vecs = NULL;
    qfit_embed_item *items = NULL;
    qfit_tokenizer *tok = NULL;
    qfit_context *c = NULL;
    json_t *root = NULL;
    const char *const *inputs = texts;
    qfit_model *m = qfit_model_load(model_path, err, sizeof err);
    if (!m) { fprintf(stderr, "qfit embed: %s\n", err); free(texts); return 1; }
    if (file) {
        content = read_lines(file, &lines, &n_texts);
        if (!content) { fprintf(stderr, "qfit embed: cannot read %s\n", file); goto out; }
        inputs = (const char *const *)lines;
    }
    const int dims = qfit_embed_dims(m, &ep, err, sizeof err);
    if (dims < 0) { fprintf(stderr, "qfit embed: %s\n", err); goto out; }
    tok = qfit_tokenizer_from_gguf(qfit_model_gguf(m), err, sizeof err);
    if (!tok) { fprintf(stderr, "qfit embed: tokenizer: %s\n", err); goto out; }
    c = qfit_context_new(m, &cp, err, sizeof err);
    if (!c) { fprintf(stderr, "qfit embed: %s\n", err); goto out; }
    qfit_cli_debug_context("embed", model_path, c);
    vecs = malloc((n_texts ? n_texts : 1) * (size_t)dims * sizeof *vecs);
    items = calloc(n_texts ? n_texts : 1, sizeof *items);
    if (!vecs || !items) { fprintf(stderr, "qfit embed: out of memory\n"); goto out; }
    qfit_embed_result res;
    if (qfit_embed(c, tok, inputs, n_texts, &ep, vecs, items, &res, err, sizeof err) != 0) {
        fprintf(stderr, "qfit embed: %s\n", err);
        goto out;
    }
    for (size_t i = 0; i < n_texts; i++)
        if (items[i].n_truncated)
            fprintf(stderr, "qfit embed: input %zu truncated: %d of its %d tokens dropped (context %d)\n", i,
                    items[i].n_truncated, items[i].n_tokens + items[i].n_truncated, qfit_context_n_ctx(c));

    root = json_object();
    json_t *arr = json_array();
    json_object_set_new(root, "model", json_string(model_path));
    json_object_set_new(root, "embeddings", arr);
    for (size_t i = 0; i < n_texts; i++) {
        json_t *row = json_array();
        for (int k = 0; k < dims; k++) json_array_append_new(row, json_real(vecs[i * (size_t)dims + (size_t)k]));
        json_array_append_new(arr, row);
    }
    json_object_set_new(root, "prompt_eval_count", json_integer(res.prompt_eval_count));
    if (ep.truncate) json_object_set_new(root, "truncated", json_integer(res.n_truncated));
    /* 9 significant digits: every float32 value reads back exactly */
    if (json_dumpf(root, stdout, JSON_REAL_PRECISION(9)) != 0 || fputc('\n', stdout) == EOF) {
        fprintf(stderr, "qfit embed: cannot write the output\n");
        goto out;
    }
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    json_decref(root);
    free(items);
    free(vecs);
    free(lines);
    free(content);
    qfit_context_free(c);
    qfit_tokenizer_free(tok);
    qfit_model_free(m);
    free(texts);
    return rc;
usage_out:
    free(texts);
    return 2;
}
