/* qfit run MODEL.gguf -p PROMPT — generate text, streamed as it is produced. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "qfit/model.h"
#include "qfit/sample.h"
#include "qfit/tokenizer.h"

static void run_usage(FILE *f)
{
    fprintf(f,
            "usage: qfit run MODEL.gguf -p PROMPT [options]\n"
            "  -p, --prompt S        prompt text\n"
            "  -n, --n-predict N     tokens to generate (default 128)\n"
            "  --temp T              temperature (default 0.8; 0 = greedy)\n"
            "  --top-k K             (default 40; 0 = off)\n"
            "  --top-p P             (default 0.95; 1 = off)\n"
            "  --min-p P             (default 0.05; 0 = off)\n"
            "  --repeat-penalty R    (default 1.0 = off)\n"
            "  --repeat-last-n N     (default 64)\n"
            "  --seed S              RNG seed (default 0x5EED)\n"
            "  --threads N           (default: all CPUs)\n"
            "  --ctx N               context size (default: min(training context, 4096); at most the\n"
            "                        training context). When generation fills it, the context is\n"
            "                        shifted: the first --keep tokens stay, the oldest half of the rest goes\n"
            "  --keep N              tokens kept at the start on a context shift (default 0; BOS always kept)\n"
            "  --no-context-shift    stop at a full context instead of shifting it\n"
            "  --kv-type T           KV cache type for K and V: f16 (default), f32, bf16, q8_0, q4_0, q4_1,\n"
            "                        q5_0, q5_1, iq4_nl\n"
            "  --cache-type-k T, --cache-type-v T   K and V cache types separately\n"
            "  --flash-attn on|off|auto   tiled attention with online softmax (default auto = on)\n"
            "  --ignore-eos          keep generating after an end-of-generation token\n"
            "environment: QFIT_KV_CACHE_TYPE (OLLAMA_KV_CACHE_TYPE), QFIT_FLASH_ATTENTION\n"
            "  (OLLAMA_FLASH_ATTENTION), QFIT_CONTEXT_LENGTH; options override the environment\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

int qfit_cmd_run(int argc, char **argv)
{
    const char *model_path = NULL, *prompt = NULL;
    int n_predict = 128, n_keep = 0;
    bool ignore_eos = false, ctx_shift = true;
    qfit_sampler_params sp;
    qfit_sampler_params_init(&sp);
    qfit_context_params cp = qfit_context_default_params();
    char env_desc[256], perr[256];
    if (qfit_context_params_from_env(&cp, env_desc, sizeof env_desc, perr, sizeof perr) != 0) {
        fprintf(stderr, "qfit run: %s\n", perr);
        return 2;
    }
    if (env_desc[0]) fprintf(stderr, "environment: %s\n", env_desc);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { run_usage(stdout); return 0; }
        if (!strcmp(a, "--ignore-eos")) { ignore_eos = true; continue; }
        if (!strcmp(a, "--no-context-shift")) { ctx_shift = false; continue; }
        if (a[0] == '-' && a[1]) {
            if (i + 1 >= argc) { fprintf(stderr, "qfit run: %s needs a value\n", a); return 2; }
            const char *v = argv[++i];
            double d = 0;
            int bad = 0, pr = qfit_context_params_parse_arg(&cp, a, v, perr, sizeof perr);
            if (pr < 0) { fprintf(stderr, "qfit run: %s\n", perr); return 2; }
            if (pr > 0) continue;
            if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = v;
            else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) { bad = num(v, 0, 1 << 24, &d); n_predict = (int)d; }
            else if (!strcmp(a, "--temp")) { bad = num(v, 0, 1e6, &d); sp.temp = (float)d; }
            else if (!strcmp(a, "--top-k")) { bad = num(v, 0, 1 << 30, &d); sp.top_k = (int)d; }
            else if (!strcmp(a, "--top-p")) { bad = num(v, 0, 1, &d); sp.top_p = (float)d; }
            else if (!strcmp(a, "--min-p")) { bad = num(v, 0, 1, &d); sp.min_p = (float)d; }
            else if (!strcmp(a, "--repeat-penalty")) { bad = num(v, 1e-3, 1e3, &d); sp.repeat_penalty = (float)d; }
            else if (!strcmp(a, "--repeat-last-n")) { bad = num(v, 0, 1 << 20, &d); sp.repeat_last_n = (int)d; }
            else if (!strcmp(a, "--seed")) { bad = num(v, 0, 1.8e19, &d); sp.seed = (uint64_t)d; }
            else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) { bad = num(v, 1, 1024, &d); cp.n_threads = (int)d; }
            else if (!strcmp(a, "--keep")) { bad = num(v, 0, 1 << 24, &d); n_keep = (int)d; }
            else { fprintf(stderr, "qfit run: unknown option %s\n", a); run_usage(stderr); return 2; }
            if (bad) { fprintf(stderr, "qfit run: invalid value '%s' for %s\n", v, a); return 2; }
        } else if (!model_path) model_path = a;
        else { run_usage(stderr); return 2; }
    }
    if (!model_path || !prompt) { run_usage(stderr); return 2; }

    char err[512];
    qfit_model *m = qfit_model_load(model_path, err, sizeof err);
    if (!m) { fprintf(stderr, "qfit run: %s\n", err); return 1; }
    const qfit_hparams *hp = qfit_model_hparams(m);
    fprintf(stderr, "model: %s (%s, %d layers, vocab %d), loaded in %.3f s, RSS %.1f MiB\n", model_path,
            hp->arch_name, hp->n_layer, hp->n_vocab, qfit_model_load_seconds(m),
            (double)qfit_process_rss_bytes() / (1 << 20));
    int rc = 1;
    qfit_tokenizer *tok = NULL;
    qfit_context *c = NULL;
    qfit_sampler *smp = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    tok = qfit_tokenizer_from_gguf(qfit_model_gguf(m), err, sizeof err);
    if (!tok) { fprintf(stderr, "qfit run: tokenizer: %s\n", err); goto out; }
    if (qfit_tokenize_alloc(tok, prompt, strlen(prompt), true, false, &ids, &n_ids) != 0) {
        fprintf(stderr, "qfit run: tokenization failed\n");
        goto out;
    }
    if (n_ids == 0) { fprintf(stderr, "qfit run: the prompt is empty\n"); goto out; }
    c = qfit_context_new(m, &cp, err, sizeof err);
    if (!c) { fprintf(stderr, "qfit run: %s\n", err); goto out; }
    if ((int)n_ids >= qfit_context_n_ctx(c)) {
        fprintf(stderr, "qfit run: the prompt (%zu tokens) does not fit the context (%d)\n", n_ids, qfit_context_n_ctx(c));
        goto out;
    }
    {
        char desc[512];
        qfit_context_describe(c, desc, sizeof desc);
        fprintf(stderr, "%s\n", desc);
    }
    /* context shift: keep BOS (when the tokenizer adds it) plus --keep prompt tokens */
    if (qfit_tokenizer_add_bos(tok)) n_keep++;
    if (n_keep > (int)n_ids) n_keep = (int)n_ids;
    if (n_keep > qfit_context_n_ctx(c) / 2) n_keep = qfit_context_n_ctx(c) / 2;
    smp = qfit_sampler_new(&sp, hp->n_vocab);
    if (!smp) { fprintf(stderr, "qfit run: invalid sampling parameters\n"); goto out; }
    for (size_t i = 0; i < n_ids; i++) qfit_sampler_accept(smp, ids[i]);

    fputs(prompt, stdout);
    fflush(stdout);
    const double t0 = now_s();
    if (qfit_decode(c, ids, (int)n_ids, (int)n_ids - 1) != 0) {
        fprintf(stderr, "\nqfit run: %s\n", qfit_context_error(c));
        goto out;
    }
    const double t_prompt = now_s() - t0;
    const double t1 = now_s();
    int n_gen = 0;
    char piece[256];
    int n_shifts = 0;
    while (n_gen < n_predict) {
        int32_t t = qfit_sampler_sample(smp, qfit_get_logits(c, 0));
        qfit_sampler_accept(smp, t);
        n_gen++;
        if (!ignore_eos && qfit_tokenizer_is_eog(tok, t)) break;
        size_t len = qfit_token_to_piece(tok, t, piece, sizeof piece, 0, false);
        fwrite(piece, 1, len < sizeof piece ? len : sizeof piece, stdout);
        fflush(stdout);
        if (n_gen == n_predict) break;
        if (qfit_context_n_past(c) >= qfit_context_n_ctx(c)) {
            if (!ctx_shift) {
                fprintf(stderr, "\nqfit run: the context (%d tokens) is full; stopping (--no-context-shift)\n",
                        qfit_context_n_ctx(c));
                break;
            }
            const int n_past = qfit_context_n_past(c);
            const int n_discard = (n_past - n_keep) / 2;
            if (n_discard < 1 || qfit_context_shift(c, n_keep, n_discard) != 0) {
                fprintf(stderr, "\nqfit run: context shift failed: %s\n",
                        n_discard < 1 ? "nothing to discard" : qfit_context_error(c));
                goto out;
            }
            n_shifts++;
            fprintf(stderr, "\n[context shift: kept %d, discarded %d, %d cached]\n", n_keep, n_discard,
                    qfit_context_n_past(c));
        }
        if (qfit_decode(c, &t, 1, 0) != 0) {
            fprintf(stderr, "\nqfit run: %s\n", qfit_context_error(c));
            goto out;
        }
    }
    const double t_gen = now_s() - t1;
    printf("\n");
    fflush(stdout);
    fprintf(stderr, "prompt: %zu tokens in %.3f s (%.1f tokens/s)\n", n_ids, t_prompt,
            t_prompt > 0 ? (double)n_ids / t_prompt : 0.0);
    fprintf(stderr, "generation: %d tokens in %.3f s (%.1f tokens/s), %d context shifts\n", n_gen, t_gen,
            t_gen > 0 && n_gen > 1 ? (double)(n_gen - 1) / t_gen : 0.0, n_shifts);
    fprintf(stderr, "peak RSS: %.1f MiB\n", (double)qfit_process_peak_rss_bytes() / (1 << 20));
    rc = 0;
out:
    free(ids);
    qfit_sampler_free(smp);
    qfit_context_free(c);
    qfit_tokenizer_free(tok);
    qfit_model_free(m);
    return rc;
}
