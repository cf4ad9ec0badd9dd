/* qfit create | show | template — Modelfiles and chat templates (thin layer over
 * include/qfit/store.h, modelfile.h, template.h; output follows `ollama show`). */
#include "cli/cli_store.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "qfit/chat.h"
#include "qfit/gguf.h"
#include "qfit/modelfile.h"
#include "qfit/quantize.h"
#include "qfit/store.h"
#include "qfit/template.h"
#include "qfit/tokenizer.h"

#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static void print_warnings(const char *cmd, qfit_warnings *w)
{
    for (size_t i = 0; i < w->count; i++) fprintf(stderr, "qfit %s: warning: %s\n", cmd, w->msgs[i]);
}

/* ---------------------------------------------------------------- create */

static void create_usage(FILE *out)
{
    fprintf(out, "usage: qfit create NAME -f Modelfile [--quantize TYPE]\n\n"
                 "Creates (or replaces) the model NAME from a Modelfile (Ollama's format).\n"
                 "  -f FILE          the Modelfile (default: ./Modelfile)\n"
                 "  --quantize TYPE  quantize the FROM GGUF first (%s)\n",
            qfit_ftype_supported_list());
}

static void create_progress(uint64_t done, uint64_t total, void *ctx)
{
    qfit_progress_bar_update(ctx, (int64_t)done, (int64_t)total, done, total, "copy");
}

static void create_status(const char *msg, void *ctx)
{
    (void)ctx;
    fprintf(stderr, "%s\n", msg);
}

int qfit_cmd_create(int argc, char **argv)
{
    if (qfit_cli_wants_help(argc, argv, create_usage)) return 0;
    const char *name = NULL, *file = "Modelfile", *quant = NULL;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-f") || !strcmp(argv[i], "--file")) && i + 1 < argc) file = argv[++i];
        else if ((!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quantize")) && i + 1 < argc) quant = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "qfit create: unknown option or missing value: '%s'\n", argv[i]);
            return 2;
        } else if (!name) name = argv[i];
        else { create_usage(stderr); return 2; }
    }
    if (!name) { create_usage(stderr); return 2; }
    int ftype = -1;
    if (quant && (ftype = qfit_ftype_from_name(quant)) < 0) {
        fprintf(stderr, "qfit create: unknown quantization type '%s' (supported: %s)\n",
                quant, qfit_ftype_supported_list());
        return 2;
    }
    char err[1024];
    qfit_warnings w = { 0 };
    qfit_modelfile *mf = qfit_modelfile_parse_file(file, &w, err, sizeof err);
    print_warnings("create", &w);
    qfit_warnings_free(&w);
    if (!mf) { fprintf(stderr, "qfit create: %s\n", err); return 1; }
    qfit_store *s = qfit_cli_open_store("create");
    if (!s) { qfit_modelfile_free(mf); return 1; }
    char *dircopy = strdup(file);
    qfit_progress_bar bar = { isatty(2), -1 };
    qfit_create_opts o = { .modelfile_dir = dircopy ? dirname(dircopy) : NULL, .quantize_ftype = ftype,
                           .progress = create_progress, .progress_ctx = &bar,
                           .status = create_status };
    int rc = qfit_store_create(s, name, mf, &o, err, sizeof err);
    if (bar.tty) fprintf(stderr, "\n");
    if (rc != 0) fprintf(stderr, "qfit create: %s: %s\n", file, err);
    else printf("created '%s'\n", name);
    free(dircopy);
    qfit_modelfile_free(mf);
    qfit_store_close(s);
    return rc ? 1 : 0;
}

/* ---------------------------------------------------------------- show */

static void show_usage(FILE *out)
{
    fprintf(out, "usage: qfit show NAME [--modelfile|--parameters|--template|--system|--license|--verbose]\n\n"
                 "Shows a stored model: its architecture, size, parameters, system prompt and license.\n"
                 "  --modelfile   a Modelfile that recreates the model (qfit create NAME -f FILE)\n"
                 "  --parameters  its parameters, one per line\n"
                 "  --template    its template\n"
                 "  --system      its system prompt\n"
                 "  --license     its licenses\n"
                 "  --verbose     also every GGUF metadata key\n");
}

/* A scalar or string metadata value as text; arrays as "[N values]". */
static void print_kv(const qfit_gguf *g, int64_t i)
{
    qfit_gguf_str k = qfit_gguf_key(g, i);
    printf("    %-40.*s", (int)k.len, k.data);
    int64_t iv;
    uint64_t uv;
    double fv;
    qfit_gguf_type t = qfit_gguf_kv_type(g, i);
    if (t == QFIT_GGUF_STRING) {
        qfit_gguf_str v = qfit_gguf_get_str(g, i);
        int n = v.len > 200 ? 200 : (int)v.len;
        for (int j = 0; j < n; j++) putchar(v.data[j] == '\n' ? ' ' : v.data[j]);
        if (v.len > 200) printf("...");
        printf("\n");
    } else if (t == QFIT_GGUF_ARRAY) printf("[%" PRIu64 " values]\n", qfit_gguf_arr_len(g, i));
    else if (t == QFIT_GGUF_BOOL) printf("%s\n", qfit_gguf_get_bool(g, i) ? "true" : "false");
    else if (qfit_gguf_get_uint(g, i, &uv)) printf("%" PRIu64 "\n", uv);
    else if (qfit_gguf_get_int(g, i, &iv)) printf("%" PRId64 "\n", iv);
    else if (qfit_gguf_get_float(g, i, &fv)) printf("%g\n", fv);
    else printf("?\n");
}

static void print_model_section(const qfit_store *s, const qfit_store_model *m, bool verbose)
{
    char err[512];
    qfit_model_config cfg = { 0 };
    size_t len;
    char *cj = qfit_store_read_blob(s, &m->manifest->config, 1u << 20, &len, err, sizeof err);
    if (cj) qfit_model_config_parse(cj, len, &cfg, err, sizeof err);
    free(cj);
    char path[4096];
    qfit_gguf *g = NULL;
    if (qfit_store_model_path(s, m, QFIT_LAYER_MODEL, path, sizeof path) >= 0)
        g = qfit_gguf_open(path, err, sizeof err);
    char arch[64] = "";
    if (g) qfit_gguf_get_string(g, "general.architecture", arch, sizeof arch);
    printf("  Model\n");
    printf("    %-20s%s\n", "architecture", arch[0] ? arch : cfg.model_family);
    printf("    %-20s%s\n", "parameters", cfg.model_type);
    if (g && arch[0]) {
        static const char *const keys[][2] = { { "context length", "context_length" },
                                               { "embedding length", "embedding_length" } };
        for (size_t i = 0; i < 2; i++) {
            char key[128];
            snprintf(key, sizeof key, "%s.%s", arch, keys[i][1]);
            int64_t v = qfit_gguf_get_int_or(g, key, -1);
            if (v >= 0) printf("    %-20s%" PRId64 "\n", keys[i][0], v);
        }
    }
    printf("    %-20s%s\n\n", "quantization", cfg.file_type);
    if (verbose && g) {
        printf("  Metadata\n");
        for (int64_t i = 0; i < qfit_gguf_n_kv(g); i++) print_kv(g, i);
        printf("\n");
    }
    if (!g) fprintf(stderr, "qfit show: model layer: %s\n", err);
    qfit_gguf_close(g);
}

/* Each line of text, indented (Ollama prints system and license this way). */
static void print_indented(const char *text)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        printf("    %.*s\n", (int)n, p);
        p += n + (nl ? 1 : 0);
    }
}

int qfit_cmd_show(int argc, char **argv)
{
    if (qfit_cli_wants_help(argc, argv, show_usage)) return 0;
    const char *name = NULL, *what = NULL;
    bool verbose = false;
    static const char *const flags[] = { "--modelfile", "--parameters", "--template", "--system", "--license" };
    for (int i = 1; i < argc; i++) {
        bool flag = false;
        for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++)
            if (!strcmp(argv[i], flags[f])) {
                if (what) { fprintf(stderr, "qfit show: only one of %s and %s\n", what, argv[i]); return 2; }
                what = argv[i];
                flag = true;
            }
        if (flag) continue;
        if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) verbose = true;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "qfit show: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (!name) name = argv[i];
        else { show_usage(stderr); return 2; }
    }
    if (!name) { show_usage(stderr); return 2; }
    qfit_store *s = qfit_cli_open_store("show");
    if (!s) return 1;
    char err[1024];
    qfit_store_model m;
    qfit_modelfile *mf = NULL;
    qfit_warnings w = { 0 };
    int rc = 1;
    if (qfit_store_resolve(s, name, &m, err, sizeof err) != 0) {
        fprintf(stderr, "qfit show: %s\n", err);
        qfit_store_close(s);
        return 1;
    }
    if (qfit_store_model_modelfile(s, &m, &mf, &w, err, sizeof err) != 0) {
        fprintf(stderr, "qfit show: %s: %s\n", name, err);
        goto out;
    }
    print_warnings("show", &w);
    if (!what) {
        print_model_section(s, &m, verbose);
        if (qfit_params_count(mf->params)) {
            printf("  Parameters\n");
            qfit_cli_print_params(mf->params, "    ", 24);
            printf("\n");
        }
        if (mf->system && mf->system[0]) { printf("  System\n"); print_indented(mf->system); printf("\n"); }
        for (size_t i = 0; i < mf->nlicenses; i++) {
            if (i == 0) printf("  License\n");
            print_indented(mf->licenses[i]);
            printf("\n");
        }
    } else if (!strcmp(what, "--modelfile")) {
        char disp[QFIT_NAME_STR_MAX];
        qfit_name_display(&m.name, disp, sizeof disp);
        for (size_t i = 0; i < m.manifest->n_layers; i++) {
            qfit_layer_kind k = m.manifest->layers[i].kind;
            if (k == QFIT_LAYER_ADAPTER || k == QFIT_LAYER_PROJECTOR || k == QFIT_LAYER_OTHER)
                fprintf(stderr, "qfit show: warning: layer %s (%s) is not in the Modelfile: qfit "
                        "cannot recreate it yet\n", m.manifest->layers[i].digest.hex,
                        m.manifest->layers[i].media_type);
        }
        char *text = qfit_modelfile_print(mf, disp, err, sizeof err);
        if (!text) { fprintf(stderr, "qfit show: %s\n", err); goto out; }
        fputs(text, stdout);
        free(text);
    } else if (!strcmp(what, "--parameters")) {
        qfit_cli_print_params(mf->params, "", 24);
    } else if (!strcmp(what, "--template")) {
        if (mf->tmpl) printf("%s\n", mf->tmpl);
    } else if (!strcmp(what, "--system")) {
        if (mf->system) printf("%s\n", mf->system);
    } else {
        for (size_t i = 0; i < mf->nlicenses; i++) printf("%s\n", mf->licenses[i]);
    }
    rc = 0;
out:
    qfit_warnings_free(&w);
    qfit_modelfile_free(mf);
    qfit_store_model_free(&m);
    qfit_store_close(s);
    return rc;
}

/* ---------------------------------------------------------------- template */

static void template_usage(FILE *out)
{
    fprintf(out, "usage: qfit template MODEL --messages FILE.json [--template FILE] [--no-generation-prompt] [--ids]\n\n"
                 "Prints exactly the prompt MODEL's chat template renders for the messages (nothing added).\n"
                 "MODEL is a GGUF file or a stored model. FILE.json is an array of messages, or an object\n"
                 "with \"messages\" and optional \"tools\" (an Ollama /api/chat request body).\n"
                 "Template: --template FILE (Go or Jinja, detected), else the model's template layer (Go),\n"
                 "else the GGUF's tokenizer.chat_template (Jinja). A stored model's MESSAGE turns come\n"
                 "first and its SYSTEM is added unless FILE.json's first message is a system one (as Ollama).\n"
                 "  --no-generation-prompt  do not open an assistant turn at the end (Jinja)\n"
                 "  --ids                   print the token ids of the prompt instead\n");
}

static char *read_text_file(const char *path, size_t max, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, err_len, "cannot read '%s'", path); return NULL; }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    bool bad = ferror(f);
    fclose(f);
    if (!buf || bad || n > max) {
        snprintf(err, err_len, "%s: %s", path, !buf ? "out of memory" : bad ? "read error" : "too large");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (strlen(buf) != n) { snprintf(err, err_len, "%s: contains a NUL byte", path); free(buf); return NULL; }
    return buf;
}

int qfit_cmd_template(int argc, char **argv)
{
    if (qfit_cli_wants_help(argc, argv, template_usage)) return 0;
    const char *model = NULL, *msgs_path = NULL, *tmpl_path = NULL;
    bool gen_prompt = true, ids = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--messages") && i + 1 < argc) msgs_path = argv[++i];
        else if (!strcmp(argv[i], "--template") && i + 1 < argc) tmpl_path = argv[++i];
        else if (!strcmp(argv[i], "--no-generation-prompt")) gen_prompt = false;
        else if (!strcmp(argv[i], "--ids")) ids = true;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "qfit template: unknown option or missing value: '%s'\n", argv[i]);
            return 2;
        } else if (!model) model = argv[i];
        else { template_usage(stderr); return 2; }
    }
    if (!model || !msgs_path) { template_usage(stderr); return 2; }

    char err[1024];
    int rc = 1;
    char *tmpl = NULL, *out = NULL;
    qfit_chat_model *cm = NULL;
    json_t *body = NULL;
    int32_t *tids = NULL;

    json_error_t je;
    body = json_load_file(msgs_path, 0, &je);
    if (!body) {
        fprintf(stderr, "qfit template: %s:%d:%d: %s\n", msgs_path, je.line, je.column, je.text);
        goto out;
    }
    const json_t *messages = json_is_array(body) ? body : json_object_get(body, "messages");
    const json_t *tools = json_is_object(body) ? json_object_get(body, "tools") : NULL;
    if (!json_is_array(messages) || (tools && !json_is_array(tools) && !json_is_null(tools))) {
        fprintf(stderr, "qfit template: %s: expected an array of messages or an object with a "
                "\"messages\" array (and an optional \"tools\" array)\n", msgs_path);
        goto out;
    }
    if (json_is_null(tools)) tools = NULL;

    qfit_warnings w = { 0 };
    cm = qfit_chat_model_open(model, NULL, &w, err, sizeof err);
    print_warnings("template", &w);
    qfit_warnings_free(&w);
    if (!cm) {
        fprintf(stderr, "qfit template: %s\n", err);
        goto out;
    }
    if (tmpl_path) {   /* --template overrides the model's */
        if (!(tmpl = read_text_file(tmpl_path, 16u << 20, err, sizeof err)) ||
            qfit_chat_model_set_template(cm, tmpl, QFIT_TEMPLATE_UNKNOWN, err, sizeof err) != 0) {
            fprintf(stderr, "qfit template: %s%s%s\n", tmpl ? tmpl_path : "", tmpl ? ": " : "", err);
            goto out;
        }
    } else if (!qfit_chat_model_template(cm)) {
        fprintf(stderr, "qfit template: %s has no chat template (no template layer, no "
                "tokenizer.chat_template): give one with --template FILE\n", model);
        goto out;
    }
    if (qfit_chat_render(cm, messages, tools, gen_prompt, -1, &out, err, sizeof err) != 0) {
        fprintf(stderr, "qfit template: %s\n", err);
        goto out;
    }
    if (!ids) {
        fwrite(out, 1, strlen(out), stdout);
    } else {
        size_t n;
        if (qfit_tokenize_alloc(qfit_chat_model_tokenizer(cm), out, strlen(out), false, true, &tids, &n) != 0) {
            fprintf(stderr, "qfit template: tokenization failed\n");
            goto out;
        }
        for (size_t i = 0; i < n; i++) printf("%s%" PRId32, i ? " " : "", tids[i]);
        printf("\n");
    }
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    free(tids);
    free(out);
    free(tmpl);
    qfit_chat_model_free(cm);
    json_decref(body);
    return rc;
}
