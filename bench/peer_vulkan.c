/* peer-vulkan — llama.cpp's pp/tg speed on a Vulkan device (bench/gpu-check).
 *
 *   peer-vulkan MODEL.gguf [--device Vulkan0] [--pp 512] [--tg 128] [--reps 5]
 *               [--threads T] [--flash on|off|auto] [--list-devices] [--verbose]
 *
 * The peer harness of ../shared/peer (peer-bench) is CPU only (n_gpu_layers = 0).
 * This is the same measurement with every layer on one Vulkan device, built
 * against the libraries of the npm package @node-llama-cpp/linux-x64-vulkan
 * (llama.cpp v0.5.0, the release the CPU peer uses) and the harness's helpers
 * (peer_common.c: peer_init loads every ggml backend found next to libllama,
 * libggml-vulkan.so included).
 *
 * Procedure, as llama-bench -ngl 99 -dev VulkanN with its defaults (n_batch
 * 2048, n_ubatch 512, f16 KV cache, flash attention auto, split mode layer,
 * mmap on): pp test: a context of n_ctx = pp, one warm-up prompt, then `reps`
 * times: clear the cache, time pp random tokens (the first one BOS when the
 * vocabulary adds it) decoded in n_batch-sized calls, synchronise. tg test: a
 * context of n_ctx = tg, one 1-token warm-up, then `reps` times: clear, time tg
 * single-token decodes, each followed by a synchronise. t/s per rep = tokens /
 * seconds; the row gives mean ± sample stdev, in peer-bench's row format with
 * the backend column naming the device.
 *
 * It refuses to print a number unless llama.cpp reported every layer offloaded
 * and a model buffer on the chosen device (parsed from its log): a run that fell
 * back to the CPU must not pass for a GPU number. Exit status 3 in that case.
 * Built by bench/gpu-check --prepare (against the Vulkan package's libraries). */
#include "peer_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(stderr, "usage: peer-vulkan MODEL.gguf [--device Vulkan0] [--pp 512] [--tg 128] [--reps 5]\n"
                    "                   [--threads T] [--flash on|off|auto] [--list-devices] [--verbose]\n");
    exit(2);
}

/* ---- what llama.cpp's log says about where the model went -------------------- */
static struct {
    ggml_log_callback next;   /* the harness's own callback (flash-attention parsing, --verbose) */
    void *next_data;
    int offloaded, n_layers;  /* "offloaded N/M layers to GPU"; -1 until seen */
    char dev[64];             /* the device asked for */
    double dev_mib, cpu_mib;  /* "<buffer> model buffer size = X MiB" on the device / elsewhere */
    char line[1024];          /* the log arrives in pieces: one line is assembled here */
    size_t len;
} g_log = { .offloaded = -1, .n_layers = -1 };

static void parse_log_line(const char *s)
{
    const char *p;
    int a, b;
    if ((p = strstr(s, "offloaded ")) && sscanf(p, "offloaded %d/%d layers to GPU", &a, &b) == 2) {
        g_log.offloaded = a;
        g_log.n_layers = b;
    }
    if ((p = strstr(s, " model buffer size = "))) {
        /* "load_tensors:      Vulkan0 model buffer size =  1234.00 MiB" */
        char name[128] = "";
        const char *c = strchr(s, ':');
        double mib = 0;
        if (c && sscanf(c + 1, " %127s model buffer size = %lf", name, &mib) == 2) {
            if (strcmp(name, g_log.dev) == 0) g_log.dev_mib += mib;
            else g_log.cpu_mib += mib;
        }
    }
}

static void log_cb(enum ggml_log_level level, const char *text, void *user_data)
{
    for (const char *t = text; *t; t++) {
        if (*t == '\n' || g_log.len + 1 >= sizeof(g_log.line)) {
            g_log.line[g_log.len] = 0;
            parse_log_line(g_log.line);
            g_log.len = 0;
        } else {
            g_log.line[g_log.len++] = *t;
        }
    }
    if (g_log.next) g_log.next(level, text, g_log.next_data);
}

/* ---- timing ------------------------------------------------------------------ */
static double mean_of(const double *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return n ? s / n : 0;
}

/* sample standard deviation, computed the way llama-bench does */
static double stdev_of(const double *v, int n)
{
    if (n < 2) return 0;
    double m = mean_of(v, n), sq = 0;
    for (int i = 0; i < n; i++) sq += v[i] * v[i];
    double var = sq / (n - 1) - m * m * n / (n - 1);
    return var > 0 ? sqrt(var) : 0;
}

static llama_token first_token(const struct llama_vocab *vocab, int n_vocab)
{
    return llama_vocab_get_add_bos(vocab) ? llama_vocab_bos(vocab) : rand() % n_vocab;
}

static void prompt_run(struct llama_context *ctx, const struct llama_vocab *vocab, int n, int n_batch)
{
    const int n_vocab = llama_vocab_n_tokens(vocab);
    llama_token *toks = malloc(sizeof(*toks) * (size_t)n_batch);
    if (!toks) peer_die("out of memory");
    for (int done = 0; done < n;) {
        int k = n - done < n_batch ? n - done : n_batch;
        for (int i = 0; i < k; i++) toks[i] = (done == 0 && i == 0) ? first_token(vocab, n_vocab) : rand() % n_vocab;
        int res = llama_decode(ctx, llama_batch_get_one(toks, k));
        if (res != 0) peer_die("llama_decode failed on a prompt batch (%d)", res);
        done += k;
    }
    llama_synchronize(ctx);
    free(toks);
}

static void gen_run(struct llama_context *ctx, const struct llama_vocab *vocab, int n)
{
    const int n_vocab = llama_vocab_n_tokens(vocab);
    llama_token tok = first_token(vocab, n_vocab);
    for (int i = 0; i < n; i++) {
        int res = llama_decode(ctx, llama_batch_get_one(&tok, 1));
        if (res != 0) peer_die("llama_decode failed on a generated token (%d)", res);
        llama_synchronize(ctx);
        tok = rand() % n_vocab;
    }
}

typedef struct {
    int pp, tg, reps, threads, n_batch, n_ubatch;
    enum llama_flash_attn_type flash;
} opts;

static void run_test(const opts *o, struct llama_model *model, int is_pp, const char *summary, const char *dev)
{
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    const int n = is_pp ? o->pp : o->tg;
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)n;
    cp.n_batch = (uint32_t)o->n_batch;
    cp.n_ubatch = (uint32_t)o->n_ubatch;
    cp.type_k = GGML_TYPE_F16;
    cp.type_v = GGML_TYPE_F16;
    cp.flash_attn_type = o->flash;
    cp.swa_full = false;
    cp.offload_kqv = true;
    cp.n_threads = o->threads;
    cp.n_threads_batch = o->threads;
    peer_fa_reset();
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) peer_die("could not create a context (run with --verbose)");
    struct ggml_threadpool *tp = peer_attach_threadpool(ctx, o->threads, 50);
    llama_set_n_threads(ctx, o->threads, o->threads);

    llama_memory_clear(llama_get_memory(ctx), false);
    if (is_pp) prompt_run(ctx, vocab, n, o->n_batch);
    else gen_run(ctx, vocab, 1);

    double *tps = calloc((size_t)o->reps, sizeof(double)), *sec = calloc((size_t)o->reps, sizeof(double));
    if (!tps || !sec) peer_die("out of memory");
    for (int r = 0; r < o->reps; r++) {
        llama_memory_clear(llama_get_memory(ctx), false);
        double t0 = peer_now();
        if (is_pp) prompt_run(ctx, vocab, n, o->n_batch);
        else gen_run(ctx, vocab, n);
        sec[r] = peer_now() - t0;
        tps[r] = n / sec[r];
    }
    char name[32];
    snprintf(name, sizeof(name), "%s%d", is_pp ? "pp" : "tg", n);
    printf("| %s | %s | %7d | %6s | %6s | %4s | %13s | %9.2f \xc2\xb1 %7.2f |\n", summary, dev, o->threads, "f16", "f16",
           strcmp(peer_fa_resolved(), "enabled") == 0 ? "1" : "0", name, mean_of(tps, o->reps),
           stdev_of(tps, o->reps));
    printf("#   %s samples t/s:", name);
    for (int r = 0; r < o->reps; r++) printf(" %.2f", tps[r]);
    printf("  (s:");
    for (int r = 0; r < o->reps; r++) printf(" %.4f", sec[r]);
    printf(")\n");
    fflush(stdout);
    free(tps);
    free(sec);
    llama_free(ctx);
    peer_free_threadpool(tp);
}

static const char *type_name(enum ggml_backend_dev_type t)
{
    switch (t) {
    case GGML_BACKEND_DEVICE_TYPE_CPU: return "cpu";
    case GGML_BACKEND_DEVICE_TYPE_GPU: return "gpu";
    case GGML_BACKEND_DEVICE_TYPE_ACCEL: return "accel";
    default: return "other";
    }
}

static void list_devices(void)
{
    for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
        ggml_backend_dev_t d = ggml_backend_dev_get(i);
        size_t fr = 0, tot = 0;
        ggml_backend_dev_memory(d, &fr, &tot);
        printf("# device %zu: %s (%s), %s, backend %s, %.0f MiB free of %.0f MiB\n", i, ggml_backend_dev_name(d),
               ggml_backend_dev_description(d), type_name(ggml_backend_dev_type(d)),
               ggml_backend_reg_name(ggml_backend_dev_backend_reg(d)), fr / 1048576.0, tot / 1048576.0);
    }
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *dev_name = "Vulkan0";
    opts o = { .pp = 512, .tg = 128, .reps = 5, .threads = peer_default_threads(), .n_batch = 2048, .n_ubatch = 512,
               .flash = LLAMA_FLASH_ATTN_TYPE_AUTO };
    bool verbose = false, list_only = false;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (usage(), (char *)NULL))
        if (!strcmp(s, "--device")) dev_name = NEXT();
        else if (!strcmp(s, "--pp")) o.pp = peer_parse_int(NEXT(), s);
        else if (!strcmp(s, "--tg")) o.tg = peer_parse_int(NEXT(), s);
        else if (!strcmp(s, "--reps")) o.reps = peer_parse_int(NEXT(), s);
        else if (!strcmp(s, "--threads")) o.threads = peer_parse_int(NEXT(), s);
        else if (!strcmp(s, "--flash")) {
            const char *v = NEXT();
            if (!peer_parse_flash(v, &o.flash)) peer_die("bad --flash %s", v);
        } else if (!strcmp(s, "--list-devices")) list_only = true;
        else if (!strcmp(s, "--verbose")) verbose = true;
        else if (s[0] == '-') usage();
        else if (!model_path) model_path = s;
        else usage();
#undef NEXT
    }
    if ((!model_path && !list_only) || o.reps < 1 || o.threads < 1 || o.pp < 0 || o.tg < 0) usage();

    peer_init(verbose);
    llama_log_get(&g_log.next, &g_log.next_data);
    llama_log_set(log_cb, NULL);
    snprintf(g_log.dev, sizeof(g_log.dev), "%s", dev_name);

    peer_print_build_info(stdout);
    list_devices();
    if (list_only) return 0;
    ggml_backend_dev_t dev = ggml_backend_dev_by_name(dev_name);
    if (!dev) {
        fprintf(stderr, "peer-vulkan: no ggml device named %s (see the device lines above; is libggml-vulkan.so next to "
                        "libllama, and does the Vulkan loader find a driver?)\n", dev_name);
        return 3;
    }
    if (ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_CPU) {
        fprintf(stderr, "peer-vulkan: %s is a CPU device, not a Vulkan one\n", dev_name);
        return 3;
    }
    printf("# using device %s: %s (backend %s)\n", ggml_backend_dev_name(dev), ggml_backend_dev_description(dev),
           ggml_backend_reg_name(ggml_backend_dev_backend_reg(dev)));

    ggml_backend_dev_t devs[2] = { dev, NULL };
    struct llama_model_params mp = llama_model_default_params();
    mp.devices = devs;
    mp.n_gpu_layers = -1; /* all of them, as llama-bench's default */
    mp.split_mode = LLAMA_SPLIT_MODE_LAYER;
    mp.main_gpu = 0;
    struct llama_model *model = llama_model_load_from_file(model_path, mp);
    if (!model) peer_die("failed to load %s", model_path);
    printf("# model: %s\n", model_path);
    printf("# offload: %d/%d layers on the GPU; model buffers: %.2f MiB on %s, %.2f MiB elsewhere\n", g_log.offloaded,
           g_log.n_layers, g_log.dev_mib, dev_name, g_log.cpu_mib);
    if (g_log.offloaded < 0 || g_log.offloaded != g_log.n_layers || g_log.dev_mib <= 0) {
        fprintf(stderr, "peer-vulkan: the model did not land on %s (offloaded %d/%d layers, %.2f MiB there): "
                        "no number is reported\n", dev_name, g_log.offloaded, g_log.n_layers, g_log.dev_mib);
        llama_model_free(model);
        return 3;
    }
    char summary[512];
    peer_model_summary(model, summary, sizeof(summary));
    peer_print_load(stdout);
    printf("# reps=%d batch=%d ubatch=%d threads=%d ngl=all flash requested=%s\n", o.reps, o.n_batch, o.n_ubatch,
           o.threads, peer_flash_name(o.flash));
    printf("| model | size | params | backend | threads | type_k | type_v | fa | test | t/s |\n");
    printf("| ----- | ---: | -----: | ------- | ------: | -----: | -----: | -: | ---: | --: |\n");
    fflush(stdout);
    if (o.pp > 0) run_test(&o, model, 1, summary, dev_name);
    if (o.tg > 0) run_test(&o, model, 0, summary, dev_name);
    peer_print_load(stdout);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
