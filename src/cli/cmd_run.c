/* qfit run MODEL.gguf -p PROMPT — generate text, streamed as it is produced. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/run_grammar.h"
#include "qfit/generate.h"
#include "qfit/model.h"
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
            "  --repeat-last-n N     (default 64; -1 = context size, 0 = off)\n"
            "  --presence-penalty P, --frequency-penalty P   (default 0 = off)\n"
            "  --typical-p P         (default 1 = off)\n"
            "  --stop S              stop before this text (repeatable; not printed)\n"
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
            "  --format json|FILE    structured output: any JSON value, or JSON matching a JSON Schema file\n"
            "  --grammar FILE        structured output: text matching a GBNF grammar (llama.cpp syntax)\n"
            "environment: QFIT_KV_CACHE_TYPE (OLLAMA_KV_CACHE_TYPE), QFIT_FLASH_ATTENTION\n"
            "  (OLLAMA_FLASH_ATTENTION), QFIT_CONTEXT_LENGTH; options override the environment\n");
}

/* the streaming side of qfit run: text to stdout, events to stderr */
static int run_text(void *u, const char *text, size_t len)
{
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static void run_shift(void *u, int n_keep, int n_discard, int n_past)
{
    fprintf(stderr, "\n[context shift: kept %d, discarded %d, %d cached]\n", n_keep, n_discard, n_past);
}

static void run_prefill(void *u, int n_done, int n_total)
{
    if (n_done == 0) {   /* echo the prompt once, before it is evaluated */
        fputs((const char *)u, stdout);
        fflush(stdout);
    }
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
    const char *model_path = NULL, *prompt = NULL, *format = NULL, *grammar_path = NULL;
    const char *stops[QFIT_GEN_MAX_STOP];
    qfit_gen_params gp;
    qfit_gen_params_init(&gp);
    gp.num_predict = 128;
    gp.overflow = QFIT_OVERFLOW_SHIFT;
    gp.stop = stops;
    qfit_sampler_params *sp = &gp.sampling;   /* qfit run's own defaults (see run_usage) */
    sp->top_p = 0.95f;
    sp->min_p = 0.05f;
    sp->seed = 0x5EED;
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
        if (!strcmp(a, "--ignore-eos")) { gp.ignore_eos = true; continue; }
        if (!strcmp(a, "--no-context-shift")) { gp.overflow = QFIT_OVERFLOW_ERROR; continue; }
        if (a[0] == '-' && a[1]) {
            if (i + 1 >= argc) { fprintf(stderr, "qfit run: %s needs a value\n", a); return 2; }
            const char *v = argv[++i];
            double d = 0;
            int bad = 0, pr = qfit_context_params_parse_arg(&cp, a, v, perr, sizeof perr);
            if (pr < 0) { fprintf(stderr, "qfit run: %s\n", perr); return 2; }
            if (pr > 0) continue;
            if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = v;
            else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) { bad = num(v, 0, 1 << 24, &d); gp.num_predict = (int)d; }
            else if (!strcmp(a, "--temp")) { bad = num(v, 0, 1e6, &d); sp->temperature = (float)d; }
            else if (!strcmp(a, "--top-k")) { bad = num(v, 0, 1 << 30, &d); sp->top_k = (int)d; }
            else if (!strcmp(a, "--top-p")) { bad = num(v, 0, 1, &d); sp->top_p = (float)d; }
            else if (!strcmp(a, "--min-p")) { bad = num(v, 0, 1, &d); sp->min_p = (float)d; }
            else if (!strcmp(a, "--typical-p")) { bad = num(v, 0, 1, &d); sp->typical_p = (float)d; }
            else if (!strcmp(a, "--repeat-penalty")) { bad = num(v, 1e-3, 1e3, &d); sp->repeat_penalty = (float)d; }
            else if (!strcmp(a, "--presence-penalty")) { bad = num(v, -1e3, 1e3, &d); sp->presence_penalty = (float)d; }
            else if (!strcmp(a, "--frequency-penalty")) { bad = num(v, -1e3, 1e3, &d); sp->frequency_penalty = (float)d; }
            else if (!strcmp(a, "--repeat-last-n")) { bad = num(v, -1, 1 << 20, &d); sp->repeat_last_n = (int)d; }
            else if (!strcmp(a, "--seed")) { bad = num(v, 0, 1.8e19, &d); sp->seed = (uint64_t)d; }
            else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) { bad = num(v, 1, 1024, &d); cp.n_threads = (int)d; }
            else if (!strcmp(a, "--keep")) { bad = num(v, 0, 1 << 24, &d); gp.n_keep = (int)d; }
            else if (!strcmp(a, "--format")) format = v;
            else if (!strcmp(a, "--grammar")) grammar_path = v;
            else if (!strcmp(a, "--stop")) {
                if (gp.n_stop == QFIT_GEN_MAX_STOP) { fprintf(stderr, "qfit run: at most %d --stop strings\n", QFIT_GEN_MAX_STOP); return 2; }
                stops[gp.n_stop++] = v;
            }
            else { fprintf(stderr, "qfit run: unknown option %s\n", a); run_usage(stderr); return 2; }
            if (bad) { fprintf(stderr, "qfit run: invalid value '%s' for %s\n", v, a); return 2; }
        } else if (!model_path) model_path = a;
        else { run_usage(stderr); return 2; }
    }
    if (!model_path || !prompt) { run_usage(stderr); return 2; }
    qfit_grammar *grammar = NULL;   /* refused before the model is loaded */
    if (qfit_run_grammar_load(format, grammar_path, &grammar) != 0) return 2;
    gp.grammar = grammar;

    char err[512];
    qfit_model *m = qfit_model_load(model_path, err, sizeof err);
    if (!m) { fprintf(stderr, "qfit run: %s\n", err); qfit_grammar_free(grammar); return 1; }
    const qfit_hparams *hp = qfit_model_hparams(m);
    fprintf(stderr, "model: %s (%s, %d layers, vocab %d), loaded in %.3f s, RSS %.1f MiB\n", model_path,
            hp->arch_name, hp->n_layer, hp->n_vocab, qfit_model_load_seconds(m),
            (double)qfit_process_rss_bytes() / (1 << 20));
    int rc = 1;
    qfit_context *c = NULL;
    qfit_tokenizer *tok = qfit_tokenizer_from_gguf(qfit_model_gguf(m), err, sizeof err);
    if (!tok) { fprintf(stderr, "qfit run: tokenizer: %s\n", err); goto out; }
    c = qfit_context_new(m, &cp, err, sizeof err);
    if (!c) { fprintf(stderr, "qfit run: %s\n", err); goto out; }
    {
        char desc[512];
        qfit_context_describe(c, desc, sizeof desc);
        fprintf(stderr, "%s\n", desc);
    }
    const qfit_gen_callbacks cb = { .on_text = run_text, .on_shift = run_shift, .on_prefill = run_prefill,
                                    .user = (void *)prompt };
    qfit_gen_result r;
    if (qfit_generate_text(c, tok, prompt, &gp, &cb, &r) != 0) {
        fprintf(stderr, "%sqfit run: %s\n", r.prompt_eval_count > 0 ? "\n" : "", r.error);
        goto out;
    }
    if (r.context_full)
        fprintf(stderr, "\nqfit run: the context (%d tokens) is full; stopping (--no-context-shift)\n",
                qfit_context_n_ctx(c));
    printf("\n");
    fflush(stdout);
    const double t_prompt = (double)r.prompt_eval_ns * 1e-9, t_gen = (double)r.eval_ns * 1e-9;
    fprintf(stderr, "prompt: %d tokens in %.3f s (%.1f tokens/s)\n", r.prompt_eval_count, t_prompt,
            t_prompt > 0 ? (double)r.prompt_eval_count / t_prompt : 0.0);
    fprintf(stderr, "generation: %d tokens in %.3f s (%.1f tokens/s), %d context shifts\n", r.eval_count, t_gen,
            t_gen > 0 && r.eval_count > 1 ? (double)(r.eval_count - 1) / t_gen : 0.0, r.n_shifts);
    fprintf(stderr, "peak RSS: %.1f MiB\n", (double)qfit_process_peak_rss_bytes() / (1 << 20));
    rc = 0;
out:
    qfit_context_free(c);
    qfit_tokenizer_free(tok);
    qfit_model_free(m);
    qfit_grammar_free(grammar);
    return rc;
}
