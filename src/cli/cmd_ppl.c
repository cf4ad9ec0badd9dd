/* qfit ppl MODEL.gguf TEXT.txt — perplexity / KL-divergence (llama.cpp's method). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_env.h"
#include "cli/commands.h"
#include "qfit/eval.h"
#include "qfit/model.h"
#include "qfit/quant.h"
#include "qfit/tokenizer.h"

static void ppl_usage(FILE *f)
{
    fprintf(f,
            "usage: qfit ppl MODEL.gguf TEXT.txt [options]\n"
            "  --ctx N            tokens per chunk (default 512)\n"
            "  --chunks N         only the first N chunks (default: all)\n"
            "  --batch N          tokens per forward pass (default: --ctx)\n"
            "  --threads N        threads (default: all CPUs)\n"
            "  --kv-type T        KV cache type for K and V: f16 (default), f32, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl\n"
            "  --cache-type-k T, --cache-type-v T   K and V cache types separately\n"
            "  --flash-attn on|off|auto   tiled attention with online softmax (default auto = on)\n"
            "  --device D         where the forward pass runs: cpu (default), ref (the scalar reference\n"
            "                     backend, slow), vulkan0, ... (qfit inspect --devices lists them)\n"
            "  --gpu-layers N     on a Vulkan device, run the last N layers there (-ngl; default -1: all that fit)\n"
            "  --gpu-mem SIZE     the device memory -1 may fill (default: its memory less 512 MiB)\n"
            "environment: QFIT_KV_CACHE_TYPE (OLLAMA_KV_CACHE_TYPE), QFIT_FLASH_ATTENTION (OLLAMA_FLASH_ATTENTION),\n"
            "  QFIT_CONTEXT_LENGTH (chunk size), QFIT_DEVICE; options override the environment\n"
            "  --save-logits F    write log-probs of the scored positions (llama.cpp format)\n"
            "  --kld-base F       KL-divergence against such a file (its tokens are used; TEXT optional)\n");
}

int qfit_cmd_ppl(int argc, char **argv)
{
    const char *model_path = NULL, *text_path = NULL;
    qfit_ppl_params pp;
    qfit_ppl_params_init(&pp);
    qfit_context_params cp = qfit_context_default_params();
    char env_desc[256], perr[256];
    if (qfit_context_params_from_env(&cp, env_desc, sizeof env_desc, perr, sizeof perr) != 0) {
        fprintf(stderr, "qfit ppl: %s\n", perr);
        return 2;
    }
    if (cp.n_ctx > 0) pp.n_ctx = cp.n_ctx;
    if (env_desc[0]) fprintf(stderr, "environment: %s\n", env_desc);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { ppl_usage(stdout); return 0; }
        if (a[0] == '-' && a[1] == '-') {
            int pr;
            if (!v) { fprintf(stderr, "qfit ppl: %s needs a value\n", a); return 2; }
            i++;
            if (!strcmp(a, "--ctx")) { if (qfit_cli_parse_int("ppl", v, a, 4, &pp.n_ctx)) return 2; }
            else if (!strcmp(a, "--chunks")) { if (qfit_cli_parse_int("ppl", v, a, 0, &pp.n_chunks)) return 2; }
            else if (!strcmp(a, "--batch")) { if (qfit_cli_parse_int("ppl", v, a, 1, &pp.n_batch)) return 2; }
            else if (!strcmp(a, "--threads")) { if (qfit_cli_parse_int("ppl", v, a, 1, &cp.n_threads)) return 2; }
            else if ((pr = qfit_context_params_parse_arg(&cp, a, v, perr, sizeof perr)) != 0) {
                if (pr < 0) { fprintf(stderr, "qfit ppl: %s\n", perr); return 2; }
            }
            else if (!strcmp(a, "--save-logits")) pp.save_logits = v;
            else if (!strcmp(a, "--kld-base")) pp.kld_base = v;
            else { fprintf(stderr, "qfit ppl: unknown option %s\n", a); ppl_usage(stderr); return 2; }
        } else if (!model_path) model_path = a;
        else if (!text_path) text_path = a;
        else { ppl_usage(stderr); return 2; }
    }
    if (!model_path || (!text_path && !pp.kld_base)) { ppl_usage(stderr); return 2; }

    char err[512];
    qfit_model *m = qfit_model_load_for(model_path, &cp, err, sizeof err);
    if (!m) { fprintf(stderr, "qfit ppl: %s\n", err); return 1; }
    const qfit_hparams *hp = qfit_model_hparams(m);
    fprintf(stderr, "model: %s (%s, %d layers, %d embd, vocab %d), %.1f MiB of weights, loaded in %.3f s, RSS %.1f MiB\n",
            model_path, hp->arch_name, hp->n_layer, hp->n_embd, hp->n_vocab,
            (double)qfit_model_weight_bytes(m) / (1 << 20), qfit_model_load_seconds(m),
            (double)qfit_process_rss_bytes() / (1 << 20));
    int rc = 1;
    qfit_tokenizer *tok = NULL;
    qfit_context *c = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    char *text = NULL;

    tok = qfit_tokenizer_from_gguf(qfit_model_gguf(m), err, sizeof err);
    if (!tok) { fprintf(stderr, "qfit ppl: tokenizer: %s\n", err); goto out; }
    if (qfit_tokenizer_add_eos(tok)) { fprintf(stderr, "qfit ppl: the vocabulary adds EOS; not supported (as llama.cpp)\n"); goto out; }
    pp.bos = qfit_tokenizer_add_bos(tok) ? qfit_tokenizer_bos(tok) : -1;
    if (text_path && !pp.kld_base) {
        size_t len = 0;
        text = qfit_eval_read_text(text_path, &len);
        if (!text) { fprintf(stderr, "qfit ppl: cannot read %s\n", text_path); goto out; }
        if (len > 0 && text[len - 1] == '\n') len--;   /* as llama.cpp's -f */
        if (qfit_tokenize_alloc(tok, text, len, true, false, &ids, &n_ids) != 0) {
            fprintf(stderr, "qfit ppl: tokenization failed\n");
            goto out;
        }
        fprintf(stderr, "tokenized %zu bytes into %zu tokens\n", len, n_ids);
    }
    cp.n_ctx = pp.n_ctx;
    if (pp.kld_base) {
        int fctx, fvocab, fchunk;
        if (qfit_logits_file_info(pp.kld_base, &fctx, &fvocab, &fchunk, err, sizeof err) != 0) {
            fprintf(stderr, "qfit ppl: %s\n", err);
            goto out;
        }
        if (fctx != pp.n_ctx) fprintf(stderr, "note: using n_ctx=%d from %s\n", fctx, pp.kld_base);
        pp.n_ctx = cp.n_ctx = fctx;
    }
    cp.n_batch = pp.n_batch > 0 && pp.n_batch < pp.n_ctx ? pp.n_batch : pp.n_ctx;
    c = qfit_context_new(m, &cp, err, sizeof err);
    if (!c) { fprintf(stderr, "qfit ppl: %s\n", err); goto out; }
    {
        char desc[512];
        qfit_context_describe(c, desc, sizeof desc);
        fprintf(stderr, "%s\n", desc);
    }
    qfit_cli_debug_context("ppl", model_path, c);
    pp.progress = stdout;
    qfit_ppl_result r;
    if (qfit_perplexity(c, ids, n_ids, &pp, &r, err, sizeof err) != 0) {
        fprintf(stderr, "\nqfit ppl: %s\n", err);
        goto out;
    }
    qfit_ppl_print(stdout, &r);
    fprintf(stderr, "%d chunks x %d tokens in %.2f s (%.1f tokens/s), %ld tokens scored\n", r.n_chunks, r.n_ctx,
            r.seconds, r.seconds > 0 ? (double)r.n_chunks * r.n_ctx / r.seconds : 0.0, r.n_scored);
    rc = 0;
out:
    free(text);
    free(ids);
    qfit_context_free(c);
    qfit_tokenizer_free(tok);
    qfit_model_free(m);
    return rc;
}
