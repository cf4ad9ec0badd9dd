/* qfit plan — what fits on a machine: weights, KV cache, compute, overhead,
 * verdict, a speed estimate, fixes, the best configuration (--fit) and a
 * table of all quantization mixes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/commands.h"
#include <jansson.h>
#include <unistd.h>

#include "qfit/backend.h"
#include "qfit/model.h"
#include "qfit/plan.h"
#include "qfit/quant.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: qfit plan MODEL [options]\n"
        "       qfit plan --list-models | --list-machines\n"
        "\n"
        "MODEL is a GGUF file (metadata and tensor shapes are read, never the weights) or a\n"
        "catalog name as Ollama or Hugging Face spell it (qwen2.5-coder:32b, meta-llama/Llama-3.1-8B-Instruct).\n"
        "\n"
        "machine (default: this machine):\n"
        "  --machine NAME       a profile (qfit plan --list-machines), or 'this'\n"
        "  --mem SIZE           an explicit budget: 24G, 24GiB, 512M (powers of two)\n"
        "settings:\n"
        "  --quant TYPE         quantization mix (Q4_K_M, Q8_0, ...); default: a GGUF as stored, a\n"
        "                       catalog model as published (gpt-oss: MXFP4_MOE), else Q4_K_M\n"
        "  --ctx N              context per sequence (default min(4096, trained context))\n"
        "  --kv-type T          KV cache type for K and V: f16 (default), f32, bf16, q8_0, q4_0, q4_1,\n"
        "                       q5_0, q5_1, iq4_nl (-ctk / --cache-type-k, -ctv / --cache-type-v: separately)\n"
        "  --flash-attn on|off|auto  flash attention (default auto = on, as the engine)\n"
        "  --parallel N         sequences decoded in parallel (KV cache holds ctx x N cells)\n"
        "  --batch N            tokens per micro-batch (default 512; with --workload ppl: the context)\n"
        "  --workload run|ppl   what the process does: generation (default) or `qfit ppl` (its chunks of\n"
        "                       --ctx tokens, half of each scored: more logits rows, and its scoring buffers)\n"
        "layer offload to a GPU (the Vulkan backend, as --device vulkanN --gpu-layers N runs it):\n"
        "  --gpu-layers N       the last N layers on the GPU (-1: all and the output layer; -ngl)\n"
        "  --gpu-mem SIZE       the GPU's own memory (discrete); without it the GPU shares the machine's\n"
        "                       memory (Apple, integrated) and the budget holds both sides\n"
        "  --device NAME        a Vulkan device of this machine (qfit inspect --devices): its memory\n"
        "  with --fit: the most layers that fit, both sides within their budgets\n"
        "output:\n"
        "  --json               machine-readable result\n"
        "  --table              all quantization mixes side by side\n"
        "  --fit                search quantization x KV type x context for the best fit\n"
        "  --task T             quality floor for --fit: chat, facts, formatting (Q4_K_M or better),\n"
        "                       code, reasoning (Q5_K_M or better), math (Q6_K or better)\n"
        "  --min-ctx N          the context the fit must keep\n"
        "  --quality FILE.json  rank --fit's mixes by this model's measured quality (qfit eval MODEL TEXT\n"
        "                       --json > FILE.json); default: MODEL's .eval.json beside a MODEL.gguf when there\n"
        "                       is one, else the mix table measured on the shared 7M model\n"
        "\n"
        "Verdict: comfortable when the total is at most %d%% of the budget, tight up to 100%%,\n"
        "otherwise does not fit. Apple machines: budget = 75%% of unified memory (GPU-usable share).\n",
        QFIT_PLAN_COMFORT_PCT);
}

static const char *fmt_bytes(uint64_t b, char *buf, size_t cap)
{
    const double K = 1024.0;
    if (b >= (uint64_t)(K * K * K)) snprintf(buf, cap, "%.2f GiB", (double)b / (K * K * K));
    else if (b >= (uint64_t)(K * K)) snprintf(buf, cap, "%.1f MiB", (double)b / (K * K));
    else if (b >= 1024) snprintf(buf, cap, "%.1f KiB", (double)b / K);
    else snprintf(buf, cap, "%llu B", (unsigned long long)b);
    return buf;
}

static const char *kv_name(int t) { return qfit_plan_kv_name(t); }

static void kv_desc(const qfit_plan_result *r, char *buf, size_t cap)
{
    if (r->kv_type == r->kv_type_v) snprintf(buf, cap, "%s", kv_name(r->kv_type));
    else snprintf(buf, cap, "K %s, V %s", kv_name(r->kv_type), kv_name(r->kv_type_v));
}

static bool parse_pos(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static void list_models(void)
{
    printf("%-20s %-44s %-10s %6s %6s %5s %4s %4s %6s %7s %7s %s\n", "name", "hugging face", "arch", "layers",
           "embd", "heads", "kv", "hdim", "ffn", "vocab", "ctx", "tied");
    for (size_t i = 0; i < qfit_plan_catalog_count(); i++) {
        const qfit_plan_facts *f = qfit_plan_catalog_at(i);
        printf("%-20s %-44s %-10s %6lld %6lld %5lld %4lld %4lld %6lld %7lld %7lld %s\n", f->name, f->hf, f->arch,
               (long long)f->n_layer, (long long)f->n_embd, (long long)f->n_head, (long long)f->n_head_kv,
               (long long)f->head_dim, (long long)f->n_ff, (long long)f->n_vocab, (long long)f->n_ctx_train,
               f->tied ? "yes" : "no");
    }
}

static void list_machines(void)
{
    char b1[32], b2[32];
    printf("%-16s %-12s %-12s %s\n", "name", "memory", "budget", "description");
    for (size_t i = 0; i < qfit_plan_machine_count(); i++) {
        const qfit_plan_machine *m = qfit_plan_machine_at(i);
        printf("%-16s %-12s %-12s %s\n", m->name, fmt_bytes(m->mem_bytes, b1, sizeof b1),
               fmt_bytes(qfit_plan_budget_bytes(m), b2, sizeof b2), m->desc);
    }
    qfit_plan_machine me;
    qfit_plan_machine_detect(&me);
    printf("%-16s %-12s %-12s %s\n", "this", fmt_bytes(me.mem_bytes, b1, sizeof b1),
           fmt_bytes(qfit_plan_budget_bytes(&me), b2, sizeof b2), me.desc);
    printf("\nbudget: Apple = 75%% of unified memory (Metal's GPU working-set share; macOS defaults to about\n"
           "2/3-3/4 depending on RAM), GPU = VRAM, CPU = RAM. Overhead = the qfit process's runtime memory\n"
           "(a measured %.1f MiB base, the GGUF metadata, the tokenizer tables) and an OS reserve: CPU 10%% of\n"
           "RAM (1-4 GiB), GPU 512 MiB (driver / CUDA context), Apple and --mem 0.\n",
           (double)QFIT_PLAN_RUNTIME_BASE_BYTES / (1 << 20));
}

static void budget_rule(const qfit_plan_machine *m, char *buf, size_t cap)
{
    char b[32];
    switch (m->kind) {
    case QFIT_MACHINE_APPLE:
        snprintf(buf, cap, "75%% of %s unified memory (the GPU-usable share)", fmt_bytes(m->mem_bytes, b, sizeof b));
        break;
    case QFIT_MACHINE_GPU: snprintf(buf, cap, "the GPU's VRAM"); break;
    case QFIT_MACHINE_CPU: snprintf(buf, cap, "system RAM"); break;
    case QFIT_MACHINE_CUSTOM: snprintf(buf, cap, "--mem, all of it for qfit"); break;
    }
}

static void print_result(const qfit_plan_model *m, const qfit_plan_machine *mach, const qfit_plan_result *r)
{
    char b1[32], b2[32], b3[32], rule[128];
    if (m->facts)
        printf("model     %s  (%s; %s, %.2f B parameters, %lld layers, %zu tensors)\n", m->name, m->facts->hf,
               m->arch, (double)m->n_params / 1e9, (long long)m->n_layer, m->n_tensors);
    else
        printf("model     %s  (GGUF; %s, %.2f M parameters, %lld layers, %zu tensors)\n", m->name, m->arch,
               (double)m->n_params / 1e6, (long long)m->n_layer, m->n_tensors);
    printf("machine   %s: %s\n", mach->name, mach->desc);
    budget_rule(mach, rule, sizeof rule);
    printf("budget    %s = %s\n", fmt_bytes(r->budget_bytes, b1, sizeof b1), rule);
    char kvd[48];
    kv_desc(r, kvd, sizeof kvd);
    printf("settings  %s%s, context %lld x %d sequence%s, KV cache %s, flash attention %s, batch %d%s\n", r->mix,
           r->as_stored ? " (as stored)" : "", (long long)r->n_ctx, r->n_parallel, r->n_parallel > 1 ? "s" : "",
           kvd, r->flash_attn ? "on" : "off", r->n_batch, r->workload == QFIT_PLAN_PPL ? ", workload qfit ppl" : "");
    if (r->note[0]) printf("note      %s\n", r->note);
    printf("\n");
    printf("  weights   %12s   %.2f bits/weight, tensor by tensor (%s)\n", fmt_bytes(r->weights_bytes, b1, sizeof b1),
           r->bits_per_weight, r->as_stored ? "the file's tensor sizes" : "the quantizer's per-tensor rules");
    if (r->weights_resident_bytes < r->weights_bytes)
        printf("            %12s   read by the run: token_embd is a lookup (one row per token, at most %lld rows)\n",
               fmt_bytes(r->weights_resident_bytes, b1, sizeof b1), (long long)r->n_ctx * r->n_parallel);
    /* sliding-window layers hold the window and one pass */
    const long long n_sliding = r->kv_sliding_layers;
    char sliding[96] = "";
    if (n_sliding)
        snprintf(sliding, sizeof sliding, " + %lld sliding layers x %lld cells (window %lld + batch)", n_sliding,
                 (long long)r->kv_sliding_cells * r->n_parallel, (long long)m->n_swa);
    printf("  KV cache  %12s   K %s + V %s: %lld layers x %lld cells%s x %lld KV heads x %lld dims, %s\n",
           fmt_bytes(r->kv_bytes, b1, sizeof b1), fmt_bytes(r->k_bytes, b2, sizeof b2),
           fmt_bytes(r->v_bytes, b3, sizeof b3), (long long)m->n_layer - n_sliding - (r->offload ? r->n_gpu_layers : 0),
           (long long)r->n_ctx * r->n_parallel, sliding, (long long)m->n_head_kv, (long long)m->head_dim_k, kvd);
    printf("  compute   %12s   engine buffers for batch %d, flash attention %s", fmt_bytes(r->compute_bytes, b1, sizeof b1),
           r->n_batch, r->flash_attn ? "on" : "off (one score row per thread)");
    if (r->compute_alloc_bytes > r->compute_bytes)
        printf(" (allocated %s; the logits rows never written stay virtual)", fmt_bytes(r->compute_alloc_bytes, b2, sizeof b2));
    printf("\n");
    printf("  overhead  %12s   runtime %s + OS reserve %s\n", fmt_bytes(r->overhead_bytes, b1, sizeof b1),
           fmt_bytes(r->runtime_bytes, b2, sizeof b2), fmt_bytes(r->os_bytes, b3, sizeof b3));
    printf("            runtime = base %s (measured constant) + GGUF metadata %s%s + tokenizer tables %s\n"
           "                      (%d B per vocabulary entry / merge, measured)",
           fmt_bytes(r->runtime_base_bytes, b1, sizeof b1), fmt_bytes(r->metadata_bytes, b2, sizeof b2),
           m->metadata_estimated ? " (estimate)" : "", fmt_bytes(r->tokenizer_bytes, b3, sizeof b3),
           QFIT_PLAN_TOKENIZER_ENTRY_BYTES);
    if (r->eval_bytes) printf(" + qfit ppl scoring buffers %s", fmt_bytes(r->eval_bytes, b1, sizeof b1));
    printf("\n");
    printf("  process   %12s   predicted peak resident memory of the qfit process (weights read + KV + compute + runtime)\n",
           fmt_bytes(r->process_bytes, b1, sizeof b1));
    printf("  total     %12s   %.1f%% of the %s budget\n\n", fmt_bytes(r->total_bytes, b1, sizeof b1),
           r->budget_bytes ? 100.0 * (double)r->total_bytes / (double)r->budget_bytes : 0.0,
           fmt_bytes(r->budget_bytes, b2, sizeof b2));
    if (r->offload) {
        printf("GPU       %d of %lld layers%s offloaded (the Vulkan backend's buffers, to the byte)\n", r->n_gpu_layers,
               (long long)m->n_layer, r->gpu_output ? " and the output layer" : "");
        printf("  weights   %12s   the offloaded layers' tensors%s\n", fmt_bytes(r->gpu_weights_bytes, b1, sizeof b1),
               r->gpu_output ? ", output_norm and the output matrix" : "");
        printf("  KV cache  %12s   %s, the offloaded layers (the host's KV cache above holds the others)\n",
               fmt_bytes(r->gpu_kv_bytes, b1, sizeof b1), kvd);
        printf("  compute   %12s   activation rows for batch %d, logits rows, RoPE table\n",
               fmt_bytes(r->gpu_compute_bytes, b1, sizeof b1), r->n_batch);
        if (r->gpu_unified)
            printf("  total     %12s   in the machine's memory too: counted in the total above\n",
                   fmt_bytes(r->gpu_total_bytes, b1, sizeof b1));
        else
            printf("  total     %12s   %.1f%% of the GPU's budget %s (its memory less %s for the driver): %s\n",
                   fmt_bytes(r->gpu_total_bytes, b1, sizeof b1),
                   r->gpu_budget_bytes ? 100.0 * (double)r->gpu_total_bytes / (double)r->gpu_budget_bytes : 0.0,
                   fmt_bytes(r->gpu_budget_bytes, b2, sizeof b2), fmt_bytes(QFIT_PLAN_GPU_RESERVE_BYTES, b3, sizeof b3),
                   qfit_plan_verdict_name(r->gpu_verdict));
        printf("  host      the weights above, read by the run, are the CPU's layers and token_embd's lookups: the "
               "offloaded rows are the GPU's (copied there and given back here, or, where the GPU's memory is the host's, "
               "read by it in place)\n\n");
    }
    printf("verdict   %s  (comfortable: total <= %d%% of budget; tight: <= 100%%; beyond: does not fit)\n",
           qfit_plan_verdict_name(r->verdict), QFIT_PLAN_COMFORT_PCT);
    if (r->tps_high > 0)
        printf("speed     ~%.1f-%.1f tokens/s generation (estimate: 50-80%% of %.0f GB/s peak bandwidth over "
               "%.2f GB read per token: weights%s + KV cache at full context)\n",
               r->tps_low, r->tps_high, mach->bandwidth_gbs, (double)r->bytes_per_token / 1e9,
               m->n_expert > 0 ? " (the chosen experts only)" : "");
    else if (qfit_arch_find(m->arch) && qfit_arch_find(m->arch)->embd_only)
        printf("speed     an embedding model: it generates no tokens (qfit embed: one pass over each input)\n");
}

static void print_fixes(const qfit_plan_fix *f, size_t n, const qfit_plan_result *r)
{
    char b1[32], b2[32];
    if (r->verdict == QFIT_VERDICT_COMFORTABLE) return;
    if (!n) {
        printf("\nno single change makes it fit better\n");
        return;
    }
    const bool gpu = r->offload && !r->gpu_unified && r->gpu_verdict == r->verdict &&
                     qfit_plan_verdict_for(r->total_bytes, r->budget_bytes) <= r->gpu_verdict;
    printf("\nto make it %s (each fix alone, in order of preference%s):\n",
           r->verdict == QFIT_VERDICT_TIGHT ? "comfortable" : "fit", gpu ? "; sizes: the GPU's side" : "");
    for (size_t i = 0; i < n; i++) {
        printf("  %zu. %-34s saves %10s -> %s, %s\n", i + 1, f[i].what, fmt_bytes(f[i].saves_bytes, b1, sizeof b1),
               fmt_bytes(f[i].new_total_bytes, b2, sizeof b2), qfit_plan_verdict_name(f[i].new_verdict));
        printf("     %s\n", f[i].cmd);
    }
}

static int print_table(const qfit_plan_model *m, const qfit_plan_machine *mach, const qfit_plan_settings *s)
{
    char b1[32], b2[32], b3[32], b4[32], err[256];
    const int tk = s->kv_type == QFIT_PLAN_KV_F32 ? QFIT_TYPE_F32 : s->kv_type ? s->kv_type : QFIT_TYPE_F16;
    const int tv = s->kv_type_v == QFIT_PLAN_KV_F32 ? QFIT_TYPE_F32 : s->kv_type_v ? s->kv_type_v : tk;
    printf("%s on %s (budget %s), context %lld, KV %s%s%s\n\n", m->name, mach->name,
           fmt_bytes(qfit_plan_budget_bytes(mach), b1, sizeof b1), (long long)(s->n_ctx ? s->n_ctx : 0),
           kv_name(tk), tv != tk ? "/" : "", tv != tk ? kv_name(tv) : "");
    printf("%-8s %12s %6s %12s %12s %6s  %-13s %s\n", "quant", "weights", "bpw", "KV cache", "total", "budget",
           "fits?", "mean KLD (kjv-llama-7m)");
    for (size_t i = 0; i < qfit_plan_mix_count(); i++) {
        const qfit_plan_mix *mx = qfit_plan_mix_at(i);
        qfit_plan_settings t = *s;
        t.mix = mx->name;
        qfit_plan_result r;
        if (qfit_plan_compute(m, mach, &t, &r, err, sizeof err) < 0) {
            printf("%-8s  (%s)\n", mx->name, err);
            continue;
        }
        char kld[32];
        if (mx->mean_kld >= 0) snprintf(kld, sizeof kld, "%.6f", mx->mean_kld);
        else snprintf(kld, sizeof kld, "not measured");
        printf("%-8s %12s %6.2f %12s %12s %5.0f%%  %-13s %s\n", r.mix, fmt_bytes(r.weights_bytes, b2, sizeof b2),
               r.bits_per_weight, fmt_bytes(r.kv_bytes, b3, sizeof b3), fmt_bytes(r.total_bytes, b4, sizeof b4),
               r.budget_bytes ? 100.0 * (double)r.total_bytes / (double)r.budget_bytes : 0.0,
               r.verdict == QFIT_VERDICT_NO_FIT ? "no" : r.verdict == QFIT_VERDICT_TIGHT ? "yes (tight)" : "yes",
               kld);
    }
    return 0;
}

int qfit_cmd_plan(int argc, char **argv)
{
    const char *spec = NULL, *machine_name = NULL, *mem = NULL, *task = NULL, *quality_path = NULL;
    qfit_plan_settings s = { .flash_attn = -1, .workload = QFIT_PLAN_RUN };
    const char *gpu_mem = NULL, *device = NULL;
    bool gpu_layers_set = false;
    bool json = false, fit = false, table = false;
    int kv_k = 0, kv_v = 0;   /* -ctk / -ctv: override --kv-type whatever the order */
    long long min_ctx = 0, v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        char opt[64];
        /* --opt=value */
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        if (eq && (size_t)(eq - a) < sizeof opt) {
            memcpy(opt, a, (size_t)(eq - a));
            opt[eq - a] = 0;
            a = opt;
            val = eq + 1;
        }
#define NEED_VAL() do { if (!val) { if (i + 1 >= argc) { fprintf(stderr, "qfit plan: %s needs a value\n", a); return 2; } val = argv[++i]; } } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--list-models")) { list_models(); return 0; }
        else if (!strcmp(a, "--list-machines")) { list_machines(); return 0; }
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--fit")) fit = true;
        else if (!strcmp(a, "--table")) table = true;
        else if (!strcmp(a, "--machine")) { NEED_VAL(); machine_name = val; }
        else if (!strcmp(a, "--mem")) { NEED_VAL(); mem = val; }
        else if (!strcmp(a, "--quant")) { NEED_VAL(); s.mix = val; }
        else if (!strcmp(a, "--gpu-mem")) { NEED_VAL(); gpu_mem = val; }
        else if (!strcmp(a, "--device")) { NEED_VAL(); device = val; }
        else if (!strcmp(a, "--gpu-layers") || !strcmp(a, "-ngl") || !strcmp(a, "--n-gpu-layers")) {
            NEED_VAL();
            if (!parse_pos(val, -1, 1 << 20, &v)) {
                fprintf(stderr, "qfit plan: %s wants -1 (all) or a layer count, got '%s'\n", a, val);
                return 2;
            }
            s.n_gpu_layers = (int)v;
            gpu_layers_set = true;
        }
        else if (!strcmp(a, "--task")) { NEED_VAL(); task = val; }
        else if (!strcmp(a, "--quality")) { NEED_VAL(); quality_path = val; }
        else if (!strcmp(a, "--ctx") || !strcmp(a, "--min-ctx") || !strcmp(a, "--parallel") || !strcmp(a, "--batch")) {
            NEED_VAL();
            long long hi = !strcmp(a, "--parallel") ? 256 : 1 << 24;
            if (!parse_pos(val, 1, hi, &v)) {
                fprintf(stderr, "qfit plan: %s wants an integer in 1..%lld, got '%s'\n", a, hi, val);
                return 2;
            }
            if (!strcmp(a, "--ctx")) s.n_ctx = v;
            else if (!strcmp(a, "--min-ctx")) min_ctx = v;
            else if (!strcmp(a, "--parallel")) s.n_parallel = (int)v;
            else s.n_batch = (int)v;
        } else if (!strcmp(a, "--kv-type") || !strcmp(a, "--cache-type-k") || !strcmp(a, "-ctk") ||
                   !strcmp(a, "--cache-type-v") || !strcmp(a, "-ctv")) {
            NEED_VAL();
            int t = qfit_kv_type_from_name(val);
            if (t >= 0) t = qfit_plan_kv_setting(t);   /* f32 (type id 0) */
            if (t == -1) {
                fprintf(stderr, "qfit plan: %s: unsupported KV cache type '%s' (supported: f32, f16, bf16, q8_0, q4_0, "
                        "q4_1, q5_0, q5_1, iq4_nl)\n", a, val);
                return 2;
            }
            if (!strcmp(a, "--kv-type")) s.kv_type = s.kv_type_v = t;
            else if (!strcmp(a, "--cache-type-k") || !strcmp(a, "-ctk")) kv_k = t;
            else kv_v = t;
        } else if (!strcmp(a, "--flash-attn") || !strcmp(a, "-fa")) {
            NEED_VAL();
            int fa = qfit_flash_attn_from_name(val);
            if (fa < -1) { fprintf(stderr, "qfit plan: --flash-attn must be on, off or auto, got '%s'\n", val); return 2; }
            s.flash_attn = fa;
        } else if (!strcmp(a, "--workload")) {
            NEED_VAL();
            if (!strcasecmp(val, "run")) s.workload = QFIT_PLAN_RUN;
            else if (!strcasecmp(val, "ppl")) s.workload = QFIT_PLAN_PPL;
            else { fprintf(stderr, "qfit plan: --workload must be run or ppl, got '%s'\n", val); return 2; }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "qfit plan: unknown option '%s' (qfit plan --help)\n", argv[i]);
            return 2;
        } else if (!spec) spec = a;
        else { fprintf(stderr, "qfit plan: unexpected argument '%s'\n", a); return 2; }
#undef NEED_VAL
    }
    if (!spec) { usage(stderr); return 2; }
    if (kv_k) { s.kv_type = kv_k; if (!s.kv_type_v && !kv_v) s.kv_type_v = QFIT_TYPE_F16; }
    if (kv_v) { s.kv_type_v = kv_v; if (!s.kv_type) s.kv_type = QFIT_TYPE_F16; }
    if (machine_name && mem) { fprintf(stderr, "qfit plan: give --machine or --mem, not both\n"); return 2; }
    if (task && !qfit_plan_task_valid(task)) {
        fprintf(stderr, "qfit plan: unknown task '%s' (chat, code, math, reasoning, facts, formatting)\n", task);
        return 2;
    }
    if (s.mix && !qfit_plan_mix_find(s.mix)) {
        fprintf(stderr, "qfit plan: unknown quantization '%s'; known:", s.mix);
        for (size_t i = 0; i < qfit_plan_mix_count(); i++) fprintf(stderr, " %s", qfit_plan_mix_at(i)->name);
        fprintf(stderr, "\n");
        return 2;
    }

    qfit_plan_machine mach;
    char margs[160] = "";
    if (mem) {
        uint64_t bytes;
        if (qfit_parse_size(mem, &bytes) < 0) {
            fprintf(stderr, "qfit plan: bad --mem '%s' (examples: 24G, 24GiB, 512M)\n", mem);
            return 2;
        }
        qfit_plan_machine_custom(bytes, &mach);
        snprintf(margs, sizeof margs, "--mem %s", mem);
    } else if (machine_name && strcasecmp(machine_name, "this") != 0) {
        const qfit_plan_machine *p = qfit_plan_machine_find(machine_name);
        if (!p) {
            fprintf(stderr, "qfit plan: unknown machine '%s' (qfit plan --list-machines)\n", machine_name);
            return 2;
        }
        mach = *p;
        snprintf(margs, sizeof margs, "--machine %s", p->name);
    } else {
        qfit_plan_machine_detect(&mach);
    }

    /* layer offload: the GPU's memory from --gpu-mem or the device's report, else unified */
    if (gpu_mem && device) { fprintf(stderr, "qfit plan: give --gpu-mem or --device, not both\n"); return 2; }
    s.offload = gpu_layers_set || gpu_mem || device;
    if (s.offload && !gpu_layers_set) s.n_gpu_layers = -1;
    if (gpu_mem && qfit_parse_size(gpu_mem, &s.gpu_mem_bytes) < 0) {
        fprintf(stderr, "qfit plan: bad --gpu-mem '%s' (examples: 24G, 80GiB)\n", gpu_mem);
        return 2;
    }
    if (device) {
        qfit_device_info di;
        const int di_index = qfit_device_find(device);
        if (di_index < 0 || qfit_device_get(di_index, &di) != 0) {
            fprintf(stderr, "qfit plan: unknown device \"%s\" (devices: %s)\n", device, qfit_device_names());
            return 2;
        }
        if (!di.offload) {
            fprintf(stderr, "qfit plan: --device %s is not a GPU: plan it without --device\n", di.name);
            return 2;
        }
        if (!di.mem_total) {
            fprintf(stderr, "qfit plan: device %s does not report its memory: give --gpu-mem\n", di.name);
            return 2;
        }
        /* what a context could take now (its free memory where the driver says), plus the
         * reserve the planner leaves */
        s.gpu_mem_bytes = qfit_device_gpu_budget(&di) + QFIT_PLAN_GPU_RESERVE_BYTES;
    }

    char err[512];
    qfit_plan_model m;
    if (qfit_plan_model_load(spec, &m, err, sizeof err) < 0) {
        fprintf(stderr, "qfit plan: %s\n", err);
        return 1;
    }
    if (!s.n_ctx && min_ctx) s.n_ctx = min_ctx;
    int rc = 1;
    if (table) {
        if (!s.n_ctx) s.n_ctx = m.n_ctx_train > 0 && m.n_ctx_train < QFIT_PLAN_DEFAULT_CTX ? m.n_ctx_train
                                                                                     : QFIT_PLAN_DEFAULT_CTX;
        rc = print_table(&m, &mach, &s);
        qfit_plan_model_free(&m);
        return rc;
    }
    qfit_plan_result r, best;
    if (qfit_plan_compute(&m, &mach, &s, &r, err, sizeof err) < 0) {
        fprintf(stderr, "qfit plan: %s\n", err);
        goto out;
    }
    qfit_plan_fix fixes[8];
    size_t nf = qfit_plan_recommend(&m, &mach, &s, &r, spec, margs, fixes, 8);
    int fr = 0;
    /* measured quality for --fit: --quality, else MODEL.eval.json beside MODEL.gguf */
    qfit_plan_quality quality;
    bool measured = false;
    char auto_path[4200] = "";
    size_t sl = strlen(spec);
    if (!quality_path && sl > 5 && !strcasecmp(spec + sl - 5, ".gguf") && sl < sizeof auto_path - 16) {
        snprintf(auto_path, sizeof auto_path, "%.*s.eval.json", (int)(sl - 5), spec);
        if (access(auto_path, F_OK) == 0) quality_path = auto_path;
    }
    if (fit && quality_path) {
        if (qfit_plan_quality_load(quality_path, &quality, err, sizeof err) != 0) {
            fprintf(stderr, "qfit plan: --quality: %s\n", err);
            goto out;
        }
        measured = true;
    }
    if (fit && s.offload) {
        fr = qfit_plan_fit_layers(&m, &mach, &s, &best, err, sizeof err);
        if (fr < 0) { fprintf(stderr, "qfit plan: %s\n", err); goto out; }
    } else if (fit) {
        fr = qfit_plan_fit_quality(&m, &mach, &s, task, min_ctx, measured ? &quality : NULL, &best, err, sizeof err);
        if (fr < 0) { fprintf(stderr, "qfit plan: %s\n", err); goto out; }
    }
    if (m.n_ctx_train > 0 && r.n_ctx > m.n_ctx_train && !json)
        fprintf(stderr, "qfit plan: warning: context %lld is longer than the model's trained context %lld\n",
                (long long)r.n_ctx, (long long)m.n_ctx_train);
    if (json) {
        char *js = qfit_plan_result_json(&m, &mach, &r, fixes, nf, fit, fr == 1 ? &best : NULL);
        if (js && fit) {   /* where --fit's quality ranking came from */
            json_t *jo = json_loads(js, 0, NULL);
            free(js);
            js = NULL;
            if (jo && json_object_set_new(jo, "fit_quality",
                                          json_pack("{s:s, s:s?, s:i}", "source", measured ? "qfit eval" : "mix table",
                                                    "file", measured ? quality.source : NULL,
                                                    "types", measured ? (int)quality.n : 0)) == 0)
                js = json_dumps(jo, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            json_decref(jo);
        }
        if (!js) { fprintf(stderr, "qfit plan: out of memory\n"); goto out; }
        printf("%s\n", js);
        free(js);
    } else {
        print_result(&m, &mach, &r);
        print_fixes(fixes, nf, &r);
        bool enough = false;
        for (size_t i = 0; i < nf; i++)
            if (fixes[i].new_verdict < r.verdict && strncmp(fixes[i].what, "smaller model", 13) != 0) enough = true;
        if (!fit && !s.offload && r.verdict != QFIT_VERDICT_COMFORTABLE && !enough) {
            /* no single fix is enough: show the combination --fit finds */
            qfit_plan_result comb;
            int cr = qfit_plan_fit(&m, &mach, &s, NULL, 0, &comb, err, sizeof err);
            if (cr == 1 && comb.verdict < r.verdict) {
                char b1[32], cmd[600];
                qfit_plan_command(cmd, sizeof cmd, spec, margs, &comb);
                printf("  no single fix to this model is enough; together (what --fit picks): %s, context %lld, KV %s -> %s, %s\n"
                       "     %s\n", comb.mix, (long long)comb.n_ctx, kv_name(comb.kv_type),
                       fmt_bytes(comb.total_bytes, b1, sizeof b1), qfit_plan_verdict_name(comb.verdict), cmd);
            } else if (cr == 0) {
                printf("  this model does not fit in any configuration (down to Q2_K, KV q4_0, context 2048)\n");
            }
        }
        if (fit && s.offload) {
            char b1[32], b2[32], cmd[600];
            printf("\n--fit: the most layers on the GPU with both sides within their budgets (the sizes are the "
                   "engine's own)\n");
            if (fr == 1) {
                printf("  --gpu-layers %d: %d of %lld layers%s on the GPU, GPU %s", best.gpu_output ? -1 : best.n_gpu_layers,
                       best.n_gpu_layers, (long long)m.n_layer, best.gpu_output ? " and the output layer" : "",
                       fmt_bytes(best.gpu_total_bytes, b1, sizeof b1));
                if (!best.gpu_unified) printf(" of %s", fmt_bytes(best.gpu_budget_bytes, b2, sizeof b2));
                printf(", host total %s of %s: %s\n", fmt_bytes(best.total_bytes, b1, sizeof b1),
                       fmt_bytes(best.budget_bytes, b2, sizeof b2), qfit_plan_verdict_name(best.verdict));
                qfit_plan_command(cmd, sizeof cmd, spec, margs, &best);
                printf("  %s\n", cmd);
            } else {
                printf("  nothing fits: even with no layer on the GPU the host's side exceeds its budget\n");
            }
        } else if (fit) {
            const char *fl = task ? qfit_plan_task_floor(task) : NULL;
            if (measured)
                printf("\n--fit: best expected quality that fits (quality = mean KLD of each type measured on this "
                       "model by qfit eval, %s, %zu types, plus the KV cache type's measured loss)", quality.source,
                       quality.n);
            else
                printf("\n--fit: best expected quality that fits (quality = mean KLD of the mix from the table "
                       "measured on kjv-llama-7m, not on this model: qfit eval MODEL TEXT --json > MODEL.eval.json "
                       "measures it; plus the KV cache type's measured loss)");
            if (fl) printf("; task %s: %s or better", task, fl);
            if (min_ctx) printf("; context >= %lld", min_ctx);
            printf("\n");
            if (fr == 1) {
                char b1[32], b2[32], cmd[600];
                printf("  %s, context %lld, KV cache %s%s: total %s of %s, %s\n", best.mix, (long long)best.n_ctx,
                       kv_name(best.kv_type), best.flash_attn ? ", flash attention on" : "",
                       fmt_bytes(best.total_bytes, b1, sizeof b1), fmt_bytes(best.budget_bytes, b2, sizeof b2),
                       qfit_plan_verdict_name(best.verdict));
                if (best.tps_high > 0)
                    printf("  ~%.1f-%.1f tokens/s (estimate)\n", best.tps_low, best.tps_high);
                qfit_plan_command(cmd, sizeof cmd, spec, margs, &best);
                printf("  %s\n", cmd);
            } else {
                printf("  nothing fits: no mix%s with KV f16/q8_0/q4_0 at the required context fits the budget\n",
                       task ? " above the task's floor" : "");
            }
        }
    }
    rc = 0;
out:
    qfit_plan_model_free(&m);
    return rc;
}
