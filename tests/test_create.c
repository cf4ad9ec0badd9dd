/* Suite create: qfit create, show and template, through the real binary on the shared
 * model with a temporary store (QFIT_MODELS). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qfit/gguf.h"
#include "qfit/quantize.h"
#include "qfit/store.h"
#include "qfit/tokenizer.h"
#include "util/testutil.h"

#define MODEL_REL "models/kjv-llama-7m-f32.gguf"

static const char GO_TEMPLATE[] =
    "{{ if .System }}<|system|>{{ .System }}<|end|>{{ end }}"
    "{{ range .Messages }}<|{{ .Role }}|>{{ .Content }}<|end|>{{ end }}<|assistant|>";

/* A fresh folder for one test: store under dir/store, files beside it. */
static const char *fresh_dir(const char *name)
{
    static char buf[4][1024];
    static int slot;
    char *d = buf[slot++ % 4];
    snprintf(d, sizeof buf[0], "%s/%s", tu_tmpdir(), name);
    cr_assert_eq(mkdir(d, 0755), 0, "mkdir %s", d);
    return d;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* Run qfit (args as a shell string) in dir with QFIT_MODELS=dir/store; output is
 * stdout+stderr. */
static char *qfit(const char *dir, const char *args, int *status)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && QFIT_MODELS='%s/store' %s %s", dir, dir, tu_qfit_bin(), args);
    return tu_run(cmd, status);
}

/* Only stdout of qfit, byte for byte (through a file). */
static char *qfit_stdout(const char *dir, const char *args, int *status, size_t *len)
{
    char a[4096];
    snprintf(a, sizeof a, "%s > out.bin", args);
    free(qfit(dir, a, status));
    char path[2048];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    char *out = tu_read_file(path, len);
    cr_assert(out);
    return out;
}

static void write_modelfile(const char *dir, const char *extra)
{
    char text[4096];
    snprintf(text, sizeof text,
             "FROM %s\n"
             "PARAMETER temperature 0.7\n"
             "PARAMETER stop \"<|end|>\"\n"
             "SYSTEM \"\"\"You are a\npreacher.\"\"\"\n"
             "TEMPLATE \"\"\"%s\"\"\"\n"
             "LICENSE MIT\n%s",
             tu_shared_path(MODEL_REL), GO_TEMPLATE, extra);
    write_file(dir, "Modelfile", text);
}

static void create_ok(const char *dir, const char *args)
{
    int st;
    char *out = qfit(dir, args, &st);
    cr_assert_eq(st, 0, "qfit %s failed: %s", args, out);
    free(out);
}

/* The manifest of a model in dir's store. */
static qfit_store_model resolve(const char *dir, const char *name, qfit_store **s)
{
    char root[2048], err[512];
    snprintf(root, sizeof root, "%s/store", dir);
    *s = qfit_store_open(root, err, sizeof err);
    cr_assert(*s, "%s", err);
    qfit_store_model m;
    cr_assert_eq(qfit_store_resolve(*s, name, &m, err, sizeof err), 0, "%s", err);
    return m;
}

Test(create, modelfile_then_list_and_show)
{
    const char *d = fresh_dir("show");
    write_modelfile(d, "");
    create_ok(d, "create kjv -f Modelfile");
    int st;
    char *out = qfit(d, "list", &st);
    cr_assert_eq(st, 0);
    cr_assert(strstr(out, "kjv:latest"), "list: %s", out);
    free(out);
    out = qfit(d, "show kjv", &st);
    cr_assert_eq(st, 0, "%s", out);
    cr_assert(strstr(out, "architecture        llama"), "%s", out);
    cr_assert(strstr(out, "quantization        F32"), "%s", out);
    cr_assert(strstr(out, "context length      512"), "%s", out);
    cr_assert(strstr(out, "temperature             0.7"), "%s", out);
    cr_assert(strstr(out, "stop                    \"<|end|>\""), "%s", out);
    cr_assert(strstr(out, "    You are a\n    preacher.\n"), "%s", out);
    cr_assert(strstr(out, "  License\n    MIT\n"), "%s", out);
    free(out);
    size_t len;
    out = qfit_stdout(d, "show kjv --template", &st, &len);
    cr_assert_eq(st, 0);
    char want[1024];
    snprintf(want, sizeof want, "%s\n", GO_TEMPLATE);
    cr_assert_str_eq(out, want);
    free(out);
    out = qfit_stdout(d, "show kjv --system", &st, &len);
    cr_assert_str_eq(out, "You are a\npreacher.\n");
    free(out);
}

/* show --modelfile, created again: the same layers (same digests, same order). */
Test(create, show_modelfile_recreates_same_layers)
{
    const char *d = fresh_dir("roundtrip");
    write_modelfile(d, "MESSAGE user Who begat Enos?\nMESSAGE assistant \"Seth.\"\n");
    create_ok(d, "create kjv -f Modelfile");
    int st;
    size_t len;
    free(qfit_stdout(d, "show kjv --modelfile", &st, &len));
    cr_assert_eq(st, 0);
    create_ok(d, "create kjv2 -f out.bin");
    qfit_store *s;
    qfit_store_model a = resolve(d, "kjv", &s), b = resolve(d, "kjv2", &s);
    cr_assert_eq(a.manifest->n_layers, 6);   /* model template system params license messages */
    cr_assert_eq(b.manifest->n_layers, a.manifest->n_layers);
    cr_assert(qfit_digest_equal(&a.manifest->config.digest, &b.manifest->config.digest));
    for (size_t i = 0; i < a.manifest->n_layers; i++) {
        cr_assert_eq(a.manifest->layers[i].kind, b.manifest->layers[i].kind, "layer %zu", i);
        cr_assert(qfit_digest_equal(&a.manifest->layers[i].digest, &b.manifest->layers[i].digest),
                  "layer %zu: %s vs %s", i, a.manifest->layers[i].digest.hex, b.manifest->layers[i].digest.hex);
    }
    /* the params layer is Ollama's encoding */
    char err[256];
    char *p = qfit_store_read_blob(s, qfit_manifest_layer(a.manifest, QFIT_LAYER_PARAMS), 4096, &len,
                                   err, sizeof err);
    cr_assert_str_eq(p, "{\"stop\":[\"<|end|>\"],\"temperature\":0.7}");
    free(p);
    qfit_store_model_free(&a);
    qfit_store_model_free(&b);
    qfit_store_close(s);
}

/* FROM a stored model: its layers are inherited unless the Modelfile sets them. */
Test(create, from_stored_model_inherits)
{
    const char *d = fresh_dir("inherit");
    write_modelfile(d, "");
    create_ok(d, "create kjv -f Modelfile");
    write_file(d, "Child", "FROM kjv\nSYSTEM Be brief.\nPARAMETER top_k 7\n");
    create_ok(d, "create child -f Child");
    int st;
    size_t len;
    char *out = qfit_stdout(d, "show child --system", &st, &len);
    cr_assert_str_eq(out, "Be brief.\n");
    free(out);
    out = qfit_stdout(d, "show child --parameters", &st, &len);
    cr_assert(strstr(out, "temperature") && strstr(out, "top_k                   7"), "%s", out);
    free(out);
    qfit_store *s;
    qfit_store_model a = resolve(d, "kjv", &s), b = resolve(d, "child", &s);
    const qfit_layer *la = qfit_manifest_layer(a.manifest, QFIT_LAYER_TEMPLATE);
    const qfit_layer *lb = qfit_manifest_layer(b.manifest, QFIT_LAYER_TEMPLATE);
    cr_assert(la && lb && qfit_digest_equal(&la->digest, &lb->digest));
    la = qfit_manifest_layer(a.manifest, QFIT_LAYER_MODEL);
    lb = qfit_manifest_layer(b.manifest, QFIT_LAYER_MODEL);
    cr_assert(qfit_digest_equal(&la->digest, &lb->digest));
    qfit_store_model_free(&a);
    qfit_store_model_free(&b);
    qfit_store_close(s);
}

/* FROM a stored model with --quantize: its model layer quantized (the same bytes as
 * quantizing the GGUF file itself), the other layers inherited. */
Test(create, quantize_from_stored_model)
{
    const char *d = fresh_dir("quantstored");
    write_modelfile(d, "");
    create_ok(d, "create kjv -f Modelfile");
    create_ok(d, "create direct -f Modelfile --quantize Q4_K_M");
    write_file(d, "Child", "FROM kjv\n");
    create_ok(d, "create child -f Child --quantize Q4_K_M");
    qfit_store *s1, *s2, *s3;
    qfit_store_model a = resolve(d, "direct", &s1), b = resolve(d, "child", &s2), base = resolve(d, "kjv", &s3);
    const qfit_layer *la = qfit_manifest_layer(a.manifest, QFIT_LAYER_MODEL);
    const qfit_layer *lb = qfit_manifest_layer(b.manifest, QFIT_LAYER_MODEL);
    const qfit_layer *l0 = qfit_manifest_layer(base.manifest, QFIT_LAYER_MODEL);
    cr_expect(qfit_digest_equal(&la->digest, &lb->digest), "quantized from the store differs from the file");
    cr_expect(!qfit_digest_equal(&l0->digest, &lb->digest), "not quantized");
    la = qfit_manifest_layer(base.manifest, QFIT_LAYER_TEMPLATE);
    lb = qfit_manifest_layer(b.manifest, QFIT_LAYER_TEMPLATE);
    cr_expect(la && lb && qfit_digest_equal(&la->digest, &lb->digest), "template not inherited");
    qfit_store_model_free(&a);
    qfit_store_model_free(&b);
    qfit_store_model_free(&base);
    qfit_store_close(s1);
    qfit_store_close(s2);
    qfit_store_close(s3);
}

Test(create, quantize_q4_k_m)
{
    const char *d = fresh_dir("quant");
    write_modelfile(d, "");
    create_ok(d, "create kjvq -f Modelfile --quantize Q4_K_M");
    qfit_store *s;
    qfit_store_model m = resolve(d, "kjvq", &s);
    char path[4096], err[256];
    cr_assert(qfit_store_model_path(s, &m, QFIT_LAYER_MODEL, path, sizeof path) > 0);
    qfit_gguf *g = qfit_gguf_open(path, err, sizeof err);
    cr_assert(g, "%s", err);
    cr_assert_eq(qfit_gguf_get_int_or(g, "general.file_type", -1), qfit_ftype_from_name("Q4_K_M"));
    qfit_gguf_close(g);
    cr_assert(qfit_manifest_layer(m.manifest, QFIT_LAYER_TEMPLATE));
    qfit_store_model_free(&m);
    qfit_store_close(s);
    int st;
    char *out = qfit(d, "show kjvq", &st);
    cr_assert(strstr(out, "quantization        Q4_K_M"), "%s", out);
    free(out);
}

Test(create, modelfile_error_names_line_and_column)
{
    const char *d = fresh_dir("bad");
    write_modelfile(d, "PARAMETER num_ctx lots\n");
    int st;
    char *out = qfit(d, "create bad -f Modelfile", &st);
    cr_assert_neq(st, 0);
    cr_assert(strstr(out, "Modelfile:8:"), "%s", out);
    cr_assert(strstr(out, "num_ctx"), "%s", out);
    free(out);
    out = qfit(d, "list", &st);
    cr_assert_null(strstr(out, "bad"), "%s", out);
    free(out);
}

/* ---------------------------------------------------------------- template */

static const char MESSAGES[] =
    "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":\"Who begat Enos? \"},"
    "{\"role\":\"assistant\",\"content\":\"Seth.\"},"
    "{\"role\":\"user\",\"content\":\"And then? \\u00e9\"}]}";

static const char JINJA_TEMPLATE[] =
    "{{ bos_token }}{% for m in messages %}\n"
    "  {% if m['role'] == 'system' %}[SYS] {{ m['content'] | trim }}\n"
    "  {% else %}<|{{ m['role'] }}|>\n{{ m['content'] | trim }}{{ eos_token }}\n"
    "  {% endif %}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}";

Test(create, template_go_exact)
{
    const char *d = fresh_dir("tgo");
    write_file(d, "m.json", MESSAGES);
    write_file(d, "t.gotmpl", GO_TEMPLATE);
    int st;
    size_t len;
    char args[2048];
    snprintf(args, sizeof args, "template '%s' --messages m.json --template t.gotmpl", tu_shared_path(MODEL_REL));
    char *out = qfit_stdout(d, args, &st, &len);
    cr_assert_eq(st, 0);
    /* Ollama: .System is the last system message; system turns are in .Messages too */
    cr_assert_str_eq(out, "<|system|>Be brief.<|end|><|system|>Be brief.<|end|><|user|>Who begat Enos? <|end|>"
                          "<|assistant|>Seth.<|end|><|user|>And then? \xc3\xa9<|end|><|assistant|>");
    free(out);
}

/* The same messages through Python's jinja2 as Hugging Face configures it. */
static char *jinja2_render(const char *dir)
{
    int st;
    char *probe = tu_run("/usr/bin/python3 -c 'import jinja2' 2>&1", &st);
    free(probe);
    if (st != 0) {
        const char *ci = getenv("CI");
        cr_assert(!(ci && !strcmp(ci, "true")), "CI: /usr/bin/python3 lacks jinja2 (python3-jinja2)");
        cr_skip_test("/usr/bin/python3 lacks jinja2 (install python3-jinja2)");
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && /usr/bin/python3 -c 'import json, sys, jinja2\n"
             "from jinja2.sandbox import ImmutableSandboxedEnvironment\n"
             "env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[\"jinja2.ext.loopcontrols\"])\n"
             "t = env.from_string(open(\"t.jinja\", encoding=\"utf-8\").read())\n"
             "body = json.load(open(\"m.json\", encoding=\"utf-8\"))\n"
             "sys.stdout.buffer.write(t.render(messages=body[\"messages\"], add_generation_prompt=True, bos_token=\"<s>\", eos_token=\"</s>\").encode())\n"
             "' > py.bin", dir);
    free(tu_run(cmd, &st));
    cr_assert_eq(st, 0, "python jinja2 failed");
    char path[2048];
    snprintf(path, sizeof path, "%s/py.bin", dir);
    size_t len;
    char *want = tu_read_file(path, &len);
    cr_assert(want && len > 0);
    return want;
}

Test(create, template_jinja_matches_jinja2)
{
    const char *d = fresh_dir("tjinja");
    write_file(d, "m.json", MESSAGES);
    write_file(d, "t.jinja", JINJA_TEMPLATE);
    char *want = jinja2_render(d);
    int st;
    size_t len;
    char args[2048];
    snprintf(args, sizeof args, "template '%s' --messages m.json --template t.jinja", tu_shared_path(MODEL_REL));
    char *out = qfit_stdout(d, args, &st, &len);
    cr_assert_eq(st, 0);
    cr_assert_str_eq(out, want);
    free(want);
    free(out);
}

Test(create, template_ids_are_the_tokens_of_the_prompt)
{
    const char *d = fresh_dir("tids");
    write_file(d, "m.json", MESSAGES);
    write_file(d, "t.jinja", JINJA_TEMPLATE);
    int st;
    size_t len;
    char args[2048];
    snprintf(args, sizeof args, "template '%s' --messages m.json --template t.jinja", tu_shared_path(MODEL_REL));
    char *text = qfit_stdout(d, args, &st, &len);
    cr_assert_eq(st, 0);
    strcat(args, " --ids");
    char *ids = qfit_stdout(d, args, &st, &len);
    cr_assert_eq(st, 0);
    char err[256];
    qfit_gguf *g = qfit_gguf_open(tu_shared_path(MODEL_REL), err, sizeof err);
    cr_assert(g, "%s", err);
    qfit_tokenizer *t = qfit_tokenizer_from_gguf(g, err, sizeof err);
    cr_assert(t, "%s", err);
    int32_t *want;
    size_t n;
    cr_assert_eq(qfit_tokenize_alloc(t, text, strlen(text), false, true, &want, &n), 0);
    cr_assert_eq(want[0], qfit_tokenizer_bos(t), "<s> in the template is the BOS id");
    char *exp = calloc(n * 12 + 2, 1), *p = exp;
    for (size_t i = 0; i < n; i++) p += sprintf(p, "%s%d", i ? " " : "", want[i]);
    strcpy(p, "\n");
    cr_assert_str_eq(ids, exp);
    free(exp);
    free(want);
    qfit_tokenizer_free(t);
    qfit_gguf_close(g);
    free(text);
    free(ids);
}

Test(create, template_error_exits_nonzero)
{
    const char *d = fresh_dir("terr");
    write_file(d, "m.json", MESSAGES);
    write_file(d, "t.jinja", "{{ raise_exception('roles must alternate') }}");
    int st;
    char args[2048];
    snprintf(args, sizeof args, "template '%s' --messages m.json --template t.jinja", tu_shared_path(MODEL_REL));
    char *out = qfit(d, args, &st);
    cr_assert_neq(st, 0);
    cr_assert(strstr(out, "roles must alternate"), "%s", out);
    free(out);
    /* no template anywhere: a clear error */
    snprintf(args, sizeof args, "template '%s' --messages m.json", tu_shared_path(MODEL_REL));
    out = qfit(d, args, &st);
    cr_assert_neq(st, 0);
    cr_assert(strstr(out, "no chat template"), "%s", out);
    free(out);
}

/* MODEL as a stored name: its template layer (Go); FILE.json as a bare array. */
Test(create, template_from_stored_model_layer)
{
    const char *d = fresh_dir("tstore");
    write_modelfile(d, "");
    create_ok(d, "create kjv -f Modelfile");
    write_file(d, "a.json", "[{\"role\":\"user\",\"content\":\"In the beginning\"}]");
    int st;
    size_t len;
    char *out = qfit_stdout(d, "template kjv --messages a.json", &st, &len);
    cr_assert_eq(st, 0);
    /* the model's SYSTEM comes first, as Ollama's chat handler adds it */
    cr_assert_str_eq(out, "<|system|>You are a\npreacher.<|end|><|system|>You are a\npreacher.<|end|>"
                          "<|user|>In the beginning<|end|><|assistant|>");
    free(out);
}

/* FROM a stored model with a layer qfit cannot carry over: refused, never dropped. */
Test(create, from_model_with_adapter_refused)
{
    const char *d = fresh_dir("adapter");
    write_modelfile(d, "");
    create_ok(d, "create kjv -f Modelfile");
    qfit_store *s;
    qfit_store_model m = resolve(d, "kjv", &s);
    qfit_layer layers[8];
    size_t n = m.manifest->n_layers;
    cr_assert(n < 8);
    memcpy(layers, m.manifest->layers, n * sizeof layers[0]);
    char err[256];
    layers[n] = (qfit_layer){ .kind = QFIT_LAYER_ADAPTER, .size = 4 };
    cr_assert_eq(qfit_store_add_blob(s, "lora", 4, &layers[n].digest, err, sizeof err), 0, "%s", err);
    qfit_name name;
    cr_assert_eq(qfit_name_parse("withadapter", &name, err, sizeof err), 0);
    cr_assert_eq(qfit_store_write_manifest(s, &name, &m.manifest->config, layers, n + 1, err, sizeof err),
                 0, "%s", err);
    qfit_store_model_free(&m);
    qfit_store_close(s);
    write_file(d, "Child", "FROM withadapter\n");
    int st;
    char *out = qfit(d, "create child -f Child", &st);
    cr_assert_neq(st, 0, "%s", out);
    cr_assert(strstr(out, "application/vnd.ollama.image.adapter"), "%s", out);
    free(out);
}
