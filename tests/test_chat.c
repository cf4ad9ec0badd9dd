/* Suite chat: the chat library (include/qfit/chat.h) and `qfit run NAME`, one-shot and
 * interactive through a real pseudo-terminal, on the shared model with a temporary store.
 * The shared model has no chat template: the stored models get one from a Modelfile. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qfit/chat.h"
#include "util/testutil.h"

#define MODEL_REL "models/kjv-llama-7m-f32.gguf"

/* Distinctive markers, none of them a special token of the model. */
static const char GO_TEMPLATE[] =
    "{{ range .Messages }}<<{{ .Role }}>>{{ .Content }}<</{{ .Role }}>>{{ end }}<<assistant>>";

static const char JINJA_TEMPLATE[] =
    "{{ bos_token }}{% for m in messages %}[{{ m['role'] | upper }}] {{ m['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}[ASSISTANT]{% endif %}";

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

/* A loopback port nobody listens on (bound, then closed): where the local-mode runs
 * look for a server, so that a qfit serve on this machine's default port cannot take
 * their requests. */
static int closed_port(void)
{
    static int port;
    if (port) return port;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
              getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return port = ntohs(a.sin_port);
}

/* The server qfit run talks to: QFIT_HOST for the runs below ("" = none: a closed port). */
static char g_host[64];

static const char *run_host(void)
{
    static char closed[64];
    if (g_host[0]) return g_host;
    snprintf(closed, sizeof closed, "127.0.0.1:%d", closed_port());
    return closed;
}

/* qfit (args as a shell string) in dir with QFIT_MODELS=dir/store; stdout+stderr. */
static char *qfit(const char *dir, const char *args, int *status)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && { QFIT_MODELS='%s/store' QFIT_HOST='%s' OLLAMA_HOST= %s %s; }", dir, dir,
             run_host(), tu_qfit_bin(), args);
    return tu_run(cmd, status);
}

/* Only stdout, byte for byte (stderr goes to err.txt). */
static char *qfit_stdout(const char *dir, const char *args, int *status)
{
    char a[4096];
    snprintf(a, sizeof a, "%s > out.bin 2> err.txt", args);
    char *all = qfit(dir, a, status);   /* tu_run's own 2>&1 comes after ours: err.txt keeps stderr */
    char path[2048];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    size_t len;
    char *out = tu_read_file(path, &len);
    cr_assert(out, "%s", all);
    free(all);
    return out;
}

/* A stored model NAME: the shared GGUF with a Go TEMPLATE and extra Modelfile lines. */
static void create_model(const char *dir, const char *name, const char *tmpl, const char *extra)
{
    char text[8192], file[256], args[512];
    snprintf(text, sizeof text, "FROM %s\n%s%s%s%s", tu_shared_path(MODEL_REL), tmpl ? "TEMPLATE \"\"\"" : "",
             tmpl ? tmpl : "", tmpl ? "\"\"\"\n" : "", extra);
    snprintf(file, sizeof file, "Modelfile.%s", name);
    write_file(dir, file, text);
    snprintf(args, sizeof args, "create %s -f %s", name, file);
    int st;
    char *out = qfit(dir, args, &st);
    cr_assert_eq(st, 0, "qfit %s: %s", args, out);
    free(out);
}

static qfit_store *open_store(const char *dir)
{
    char root[2048], err[512];
    snprintf(root, sizeof root, "%s/store", dir);
    qfit_store *s = qfit_store_open(root, err, sizeof err);
    cr_assert(s, "%s", err);
    return s;
}

static qfit_chat_model *open_model(const char *dir, const char *name, qfit_store **s)
{
    char err[512];
    *s = open_store(dir);
    qfit_chat_model *cm = qfit_chat_model_open(name, *s, NULL, err, sizeof err);
    cr_assert(cm, "%s", err);
    return cm;
}

static char *render(const qfit_chat_model *cm, const char *messages_json)
{
    json_error_t je;
    json_t *msgs = json_loads(messages_json, 0, &je);
    cr_assert(msgs, "%s", je.text);
    char *out, err[512];
    cr_assert_eq(qfit_chat_render(cm, msgs, NULL, true, -1, &out, err, sizeof err), 0, "%s", err);
    json_decref(msgs);
    return out;
}

/* ------------------------------------------------------------------ library */

/* Ollama's chat handler (server/routes.go): the model's MESSAGE turns, then the request's
 * messages; the model's SYSTEM first unless the request's first message is a system one. */
Test(chat, render_model_system_and_messages)
{
    const char *d = fresh_dir("render");
    create_model(d, "fewshot", GO_TEMPLATE,
                 "SYSTEM Thou art a scribe.\nMESSAGE user Who begat Enos?\nMESSAGE assistant Seth.\n");
    qfit_store *s;
    qfit_chat_model *cm = open_model(d, "fewshot", &s);
    cr_assert_str_eq(qfit_chat_model_template_source(cm), "TEMPLATE");
    cr_assert_eq(qfit_chat_model_template_kind(cm), QFIT_TEMPLATE_GO);
    char *out = render(cm, "[{\"role\":\"user\",\"content\":\"In the beginning\"}]");
    cr_assert_str_eq(out, "<<system>>Thou art a scribe.<</system>><<user>>Who begat Enos?<</user>>"
                          "<<assistant>>Seth.<</assistant>><<user>>In the beginning<</user>><<assistant>>");
    free(out);
    /* the request starts with a system message: the model's SYSTEM is not added, even
     * though the combined list starts with the model's user turn */
    out = render(cm, "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"x\"}]");
    cr_assert_str_eq(out, "<<user>>Who begat Enos?<</user>><<assistant>>Seth.<</assistant>>"
                          "<<system>>Be brief.<</system>><<user>>x<</user>><<assistant>>");
    free(out);
    qfit_chat_model_free(cm);
    qfit_store_close(s);
}

/* A Jinja TEMPLATE renders as Python's jinja2 renders the same message list. */
Test(chat, render_jinja_template_matches_jinja2)
{
    int st;
    char *probe = tu_run("/usr/bin/python3 -c 'import jinja2' 2>&1", &st);
    free(probe);
    if (st != 0) {
        const char *ci = getenv("CI");
        cr_assert(!(ci && !strcmp(ci, "true")), "CI: /usr/bin/python3 lacks jinja2 (python3-jinja2)");
        cr_skip_test("/usr/bin/python3 lacks jinja2 (install python3-jinja2)");
    }
    const char *d = fresh_dir("jinja");
    create_model(d, "jj", JINJA_TEMPLATE, "SYSTEM Thou art a scribe.\nMESSAGE user Who begat Enos?\nMESSAGE assistant Seth.\n");
    write_file(d, "t.jinja", JINJA_TEMPLATE);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && /usr/bin/python3 -c 'import sys, jinja2\n"
             "from jinja2.sandbox import ImmutableSandboxedEnvironment\n"
             "env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[\"jinja2.ext.loopcontrols\"])\n"
             "t = env.from_string(open(\"t.jinja\", encoding=\"utf-8\").read())\n"
             "m = [{\"role\":\"system\",\"content\":\"Thou art a scribe.\"},{\"role\":\"user\",\"content\":\"Who begat Enos?\"},"
             "{\"role\":\"assistant\",\"content\":\"Seth.\"},{\"role\":\"user\",\"content\":\"In the beginning\"}]\n"
             "sys.stdout.buffer.write(t.render(messages=m, add_generation_prompt=True, bos_token=\"<s>\", eos_token=\"</s>\").encode())\n"
             "' > py.bin", d);
    free(tu_run(cmd, &st));
    cr_assert_eq(st, 0, "python jinja2 failed");
    char path[2048];
    snprintf(path, sizeof path, "%s/py.bin", d);
    size_t len;
    char *want = tu_read_file(path, &len);
    cr_assert(want);
    qfit_store *s;
    qfit_chat_model *cm = open_model(d, "jj", &s);
    cr_assert_eq(qfit_chat_model_template_kind(cm), QFIT_TEMPLATE_JINJA);
    char *out = render(cm, "[{\"role\":\"user\",\"content\":\"In the beginning\"}]");
    cr_assert_str_eq(out, want);
    /* the prompt's tokens start with one BOS (the template writes it; none is added) */
    int32_t *ids;
    size_t n;
    char err[256];
    cr_assert_eq(qfit_chat_tokenize(cm, out, &ids, &n, err, sizeof err), 0, "%s", err);
    const int32_t bos = qfit_tokenizer_bos(qfit_chat_model_tokenizer(cm));
    cr_assert(n > 2 && ids[0] == bos && ids[1] != bos, "n %zu ids %d %d", n, ids[0], n > 1 ? ids[1] : -1);
    free(ids);
    free(out);
    free(want);
    qfit_chat_model_free(cm);
    qfit_store_close(s);
}

/* A conversation longer than the context: refused with the numbers, or (truncate) its
 * oldest whole turns dropped — never the system message, never the last turn — and the
 * prompt is exactly the rendering of what was kept. */
Test(chat, prompt_fit_drops_oldest_whole_turns)
{
    const char *d = fresh_dir("fit");
    create_model(d, "fit", GO_TEMPLATE, "");
    qfit_store *s;
    qfit_chat_model *cm = open_model(d, "fit", &s);
    json_t *msgs = json_array();
    json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", "Thou art a scribe."));
    static const char *const TEXT = "And it came to pass in those days, that there went out a decree.";
    for (int t = 0; t < 6; t++) {
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", TEXT));
        if (t < 5) json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "assistant", "content", TEXT));
    }
    int32_t *ids;
    size_t n;
    int dropped = -1;
    char err[512] = "";
    cr_assert_eq(qfit_chat_prompt_fit(cm, msgs, NULL, true, -1, 4096, 16, false, &ids, &n, &dropped, err, sizeof err), 0,
                 "%s", err);
    cr_expect_eq(dropped, 0);
    const size_t full = n;
    free(ids);
    /* the reference: the system message and the last two turns, rendered and tokenized */
    json_t *keep = json_array();
    json_array_append(keep, json_array_get(msgs, 0));
    for (size_t i = json_array_size(msgs) - 3; i < json_array_size(msgs); i++) json_array_append(keep, json_array_get(msgs, i));
    char *text;
    cr_assert_eq(qfit_chat_render(cm, keep, NULL, true, -1, &text, err, sizeof err), 0, "%s", err);
    int32_t *want;
    size_t nw;
    cr_assert_eq(qfit_chat_tokenize(cm, text, &want, &nw, err, sizeof err), 0, "%s", err);
    free(text);
    cr_assert_lt(nw, full);
    /* a context where exactly that fits (and the next larger cut does not) */
    const int n_ctx = (int)nw + 16;
    cr_expect_eq(qfit_chat_prompt_fit(cm, msgs, NULL, true, -1, n_ctx, 16, false, &ids, &n, &dropped, err, sizeof err),
                 -1);
    char needle[160];
    snprintf(needle, sizeof needle, "the conversation (%zu tokens) and room for the answer (16) exceed the context (%d "
             "tokens)", full, n_ctx);
    cr_expect(strstr(err, needle), "%s", err);
    cr_assert_eq(qfit_chat_prompt_fit(cm, msgs, NULL, true, -1, n_ctx, 16, true, &ids, &n, &dropped, err, sizeof err), 0,
                 "%s", err);
    cr_expect_eq(dropped, 8, "4 whole turns (user + assistant) dropped: %d", dropped);
    cr_expect_eq(n, nw);
    cr_expect_arr_eq(ids, want, nw * sizeof *ids, "the prompt is not the rendering of what was kept");
    free(ids);
    free(want);
    /* not even the system message and the last turn fit */
    cr_expect_eq(qfit_chat_prompt_fit(cm, msgs, NULL, true, -1, 20, 16, true, &ids, &n, &dropped, err, sizeof err), -1);
    cr_expect(strstr(err, "even with only its system messages and last turn"), "%s", err);
    json_decref(keep);
    json_decref(msgs);
    qfit_chat_model_free(cm);
    qfit_store_close(s);
}

static int apply(const char *const *kv, size_t n, qfit_gen_params *gp, qfit_context_params *cp, char *err,
                 size_t err_len)
{
    qfit_params *p = qfit_params_new();
    for (size_t i = 0; i + 1 < n; i += 2)
        cr_assert_eq(qfit_params_set_string(p, kv[i], kv[i + 1], NULL, err, err_len), 1, "%s", err);
    qfit_gen_params_init(gp);
    gp->overflow = QFIT_OVERFLOW_SHIFT;   /* a caller that shifts (num_predict -2 turns it off) */
    *cp = qfit_context_default_params();
    int rc = qfit_chat_apply_params(p, gp, cp, err, err_len);
    if (rc == 0 && gp->n_stop) {   /* the stop strings point into p: check them before freeing */
        cr_assert_eq(gp->n_stop, 2);
        cr_assert_str_eq(gp->stop[0], "<|end|>");
        cr_assert_str_eq(gp->stop[1], "Amen.");
    }
    qfit_params_free(p);
    return rc;
}

Test(chat, params_applied_or_refused_by_name)
{
    static const char *const ok[] = {
        "num_ctx", "256", "num_batch", "32", "num_thread", "2", "temperature", "0.5", "top_k", "7",
        "top_p", "0.8", "min_p", "0.1", "typical_p", "0.9", "repeat_penalty", "1.2", "repeat_last_n", "33",
        "presence_penalty", "0.25", "frequency_penalty", "0.5", "seed", "42", "num_predict", "9",
        "num_keep", "4", "stop", "<|end|>", "stop", "Amen.", "use_mmap", "true", "num_gpu", "0",
    };
    qfit_gen_params gp;
    qfit_context_params cp;
    char err[512];
    cr_assert_eq(apply(ok, sizeof ok / sizeof ok[0], &gp, &cp, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cp.n_ctx, 256);
    cr_assert_eq(cp.n_batch, 32);
    cr_assert_eq(cp.n_threads, 2);
    cr_assert_eq(cp.n_gpu_layers, 0);   /* num_gpu: layers on the GPU */
    cr_assert_float_eq(gp.sampling.temperature, 0.5f, 0);
    cr_assert_eq(gp.sampling.top_k, 7);
    cr_assert_float_eq(gp.sampling.top_p, 0.8f, 0);
    cr_assert_float_eq(gp.sampling.min_p, 0.1f, 0);
    cr_assert_float_eq(gp.sampling.typical_p, 0.9f, 0);
    cr_assert_float_eq(gp.sampling.repeat_penalty, 1.2f, 0);
    cr_assert_eq(gp.sampling.repeat_last_n, 33);
    cr_assert_float_eq(gp.sampling.presence_penalty, 0.25f, 0);
    cr_assert_float_eq(gp.sampling.frequency_penalty, 0.5f, 0);
    cr_assert_eq(gp.sampling.seed, 42);
    cr_assert_eq(gp.num_predict, 9);
    cr_assert_eq(gp.n_keep, 4);
    cr_assert_eq(gp.overflow, QFIT_OVERFLOW_SHIFT);
    static const char *const rnd[] = { "seed", "-1", "num_predict", "-2" };
    cr_assert_eq(apply(rnd, 4, &gp, &cp, err, sizeof err), 0, "%s", err);
    cr_assert_eq(gp.sampling.seed, QFIT_SEED_RANDOM);
    cr_assert_eq(gp.num_predict, -1);
    cr_assert_eq(gp.overflow, QFIT_OVERFLOW_ERROR);

    /* what qfit cannot honour is an error naming the parameter, never ignored */
    static const char *const bad[][2] = {
        { "num_gpu", "-2" }, { "use_mmap", "false" }, { "main_gpu", "1" }, { "draft_num_predict", "4" },
        { "top_p", "1.5" }, { "seed", "-5" }, { "num_ctx", "0" }, { "num_predict", "-3" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        cr_assert_eq(apply(bad[i], 2, &gp, &cp, err, sizeof err), -1, "%s %s accepted", bad[i][0], bad[i][1]);
        cr_assert(strstr(err, bad[i][0]), "%s %s: '%s' does not name it", bad[i][0], bad[i][1], err);
    }
}

/* ------------------------------------------------------------------ one-shot */

static const char *const CHAT_EXTRA = "SYSTEM Thou art a scribe.\nPARAMETER temperature 0\nPARAMETER num_predict 16\n";

/* Greedy `qfit run NAME PROMPT` prints what plain completion of the exact rendered
 * prompt generates after it: the template (and the model's SYSTEM) were applied. */
Test(chat, oneshot_applies_the_template)
{
    const char *d = fresh_dir("oneshot");
    create_model(d, "chat", GO_TEMPLATE, CHAT_EXTRA);
    write_file(d, "m.json", "[{\"role\":\"user\",\"content\":\"In the beginning\"}]");
    int st;
    char *prompt = qfit_stdout(d, "template chat --messages m.json", &st);
    cr_assert_eq(st, 0);
    cr_assert_str_eq(prompt, "<<system>>Thou art a scribe.<</system>><<user>>In the beginning<</user>><<assistant>>");
    char args[4096];
    snprintf(args, sizeof args, "run '%s' -p \"$(cat p.txt)\" --temp 0 -n 16", tu_shared_path(MODEL_REL));
    write_file(d, "p.txt", prompt);
    char *plain = qfit_stdout(d, args, &st);
    cr_assert_eq(st, 0);
    size_t pl = strlen(prompt);
    cr_assert(!strncmp(plain, prompt, pl), "qfit run -p echoes its prompt: %s", plain);
    cr_assert(strlen(plain) > pl + 1, "nothing generated");

    char *chat = qfit_stdout(d, "run chat 'In the beginning' < /dev/null", &st);
    cr_assert_eq(st, 0);
    cr_assert_str_eq(chat, plain + pl);
    free(chat);
    /* the prompt from stdin (not a terminal) */
    write_file(d, "in.txt", "In the beginning");
    chat = qfit_stdout(d, "run chat < in.txt", &st);
    cr_assert_eq(st, 0);
    cr_assert_str_eq(chat, plain + pl);
    free(chat);
    free(plain);
    free(prompt);
}

/* Without a chat template: plain completion, and a line on stderr says so. */
/* qfit run NAME --format SCHEMA.json: the answer is JSON valid against the schema (checked
 * here with jansson and by hand, not with the engine), at temperature 1 so that nothing but
 * the grammar keeps it in shape; --format json gives one JSON value; an unsupported keyword
 * is refused (exit 2) naming it, before any model is loaded. */
Test(chat, oneshot_format_constrains_the_answer)
{
    const char *d = fresh_dir("format");
    create_model(d, "fmt", GO_TEMPLATE, "PARAMETER temperature 1\nPARAMETER seed 7\nPARAMETER num_predict 200\n");
    write_file(d, "schema.json", "{\"type\": \"object\", \"properties\": {\"book\": {\"enum\": [\"Genesis\", "
                                 "\"Exodus\"]}, \"chapter\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 50}}, "
                                 "\"required\": [\"book\", \"chapter\"], \"additionalProperties\": false}");
    int st;
    char *out = qfit_stdout(d, "run fmt --format schema.json 'Which book?'", &st);
    cr_assert_eq(st, 0, "%s", out);
    json_error_t je;
    json_t *v = json_loads(out, JSON_DECODE_ANY, &je);
    cr_assert(v, "not JSON: '%s' (%s)", out, je.text);
    const char *book = json_string_value(json_object_get(v, "book"));
    const json_t *ch = json_object_get(v, "chapter");
    cr_expect(book && (!strcmp(book, "Genesis") || !strcmp(book, "Exodus")), "%s", out);
    cr_expect(json_is_integer(ch) && json_integer_value(ch) >= 1 && json_integer_value(ch) <= 50, "%s", out);
    cr_expect_eq(json_object_size(v), 2, "%s", out);
    json_decref(v);
    free(out);
    out = qfit_stdout(d, "run fmt --format json 'And God said'", &st);
    cr_assert_eq(st, 0, "%s", out);
    v = json_loads(out, JSON_DECODE_ANY, &je);
    cr_expect(v, "not JSON: '%s' (%s)", out, je.text);
    json_decref(v);
    free(out);
    write_file(d, "bad.json", "{\"type\": \"array\", \"uniqueItems\": true}");
    char *all = qfit(d, "run fmt --format bad.json 'x'", &st);
    cr_expect_eq(st, 2, "%s", all);   /* tu_run gives the exit status */
    cr_expect(strstr(all, "uniqueItems"), "%s", all);
    free(all);
}

Test(chat, oneshot_without_template_says_so)
{
    const char *d = fresh_dir("plain");
    create_model(d, "plain", NULL, "PARAMETER temperature 0\nPARAMETER num_predict 16\n");
    int st;
    char args[4096];
    snprintf(args, sizeof args, "run '%s' -p 'In the beginning' --temp 0 -n 16", tu_shared_path(MODEL_REL));
    char *plain = qfit_stdout(d, args, &st);
    cr_assert_eq(st, 0);
    char *out = qfit_stdout(d, "run plain 'In the beginning' < /dev/null", &st);
    cr_assert_eq(st, 0);
    cr_assert_str_eq(out, plain + strlen("In the beginning"));
    char path[2048];
    snprintf(path, sizeof path, "%s/err.txt", d);
    size_t len;
    char *err = tu_read_file(path, &len);
    cr_assert(err && strstr(err, "no chat template"), "%s", err ? err : "");
    free(err);
    free(out);
    free(plain);
}

/* A prompt that does not fit num_ctx: a message with the numbers, nothing generated. */
Test(chat, oneshot_prompt_too_long)
{
    const char *d = fresh_dir("toolong");
    create_model(d, "small", GO_TEMPLATE, "PARAMETER temperature 0\nPARAMETER num_ctx 32\n");
    int st;
    char *out = qfit_stdout(d, "run small 'And God said, Let there be light: and there was light. And God saw "
                               "the light, that it was good.' < /dev/null", &st);
    cr_assert_eq(st, 1);
    cr_assert_str_eq(out, "", "generated: %s", out);
    free(out);
    char path[2048];
    snprintf(path, sizeof path, "%s/err.txt", d);
    size_t len;
    char *err = tu_read_file(path, &len);
    cr_assert(err && strstr(err, "the conversation is 48 tokens and 4 more are kept for the answer, but the context holds 32 tokens"), "%s",
              err ? err : "");
    free(err);
}

/* ------------------------------------------------------------------ interactive */

#define TTY_WAIT_S 60   /* bound on every wait: a hang fails the test instead */

typedef struct {
    pid_t  pid;
    int    fd;
    char  *buf;     /* everything read, without '\r' */
    size_t len, cap, pos;
    bool   eof;
} tty_run;

/* qfit run MODEL on a new pseudo-terminal (its controlling terminal, so that \x03 is a SIGINT). */
static void tty_start(tty_run *t, const char *dir, const char *model)
{
    memset(t, 0, sizeof *t);
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    cr_assert(m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0, "pty: %s", strerror(errno));
    char slave[256], store[2048];
    cr_assert_eq(ptsname_r(m, slave, sizeof slave), 0);
    snprintf(store, sizeof store, "%s/store", dir);
    const char *bin = tu_qfit_bin();
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        sigset_t none;   /* a terminal program's usual start: no signal blocked or ignored */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGINT, SIG_DFL);
        setsid();
        int s = open(slave, O_RDWR);
        if (s < 0 || ioctl(s, TIOCSCTTY, 0) != 0 || chdir(dir) != 0) _exit(127);   /* our controlling terminal */
        dup2(s, 0);
        dup2(s, 1);
        dup2(s, 2);
        close(m);
        if (s > 2) close(s);
        setenv("QFIT_MODELS", store, 1);
        setenv("QFIT_HOST", run_host(), 1);
        execl(bin, bin, "run", model, (char *)NULL);
        _exit(127);
    }
    t->pid = pid;
    t->fd = m;
    t->cap = 1 << 16;
    t->buf = malloc(t->cap);
    cr_assert(t->buf);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Read what is there within ms milliseconds; false at EOF or when nothing came. */
static bool tty_read(tty_run *t, int ms)
{
    if (t->eof) return false;
    struct pollfd p = { .fd = t->fd, .events = POLLIN };
    if (poll(&p, 1, ms) <= 0) return false;
    char tmp[4096];
    ssize_t n = read(t->fd, tmp, sizeof tmp);
    if (n <= 0) { t->eof = true; return false; }   /* EIO: the child closed the terminal */
    for (ssize_t i = 0; i < n; i++) {
        if (tmp[i] == '\r') continue;
        if (t->len + 2 > t->cap) {
            t->cap *= 2;
            t->buf = realloc(t->buf, t->cap);
            cr_assert(t->buf);
        }
        t->buf[t->len++] = tmp[i];
    }
    t->buf[t->len] = '\0';
    return true;
}

/* Wait for needle after the last match; returns the text from there to the end of needle
 * (malloc'd) and moves past it. */
static char *tty_expect(tty_run *t, const char *needle)
{
    const double end = now_s() + TTY_WAIT_S;
    for (;;) {
        char *hit = t->len > t->pos ? strstr(t->buf + t->pos, needle) : NULL;
        if (hit) {
            size_t stop = (size_t)(hit - t->buf) + strlen(needle);
            char *seg = strndup(t->buf + t->pos, stop - t->pos);
            t->pos = stop;
            return seg;
        }
        cr_assert(!t->eof && now_s() < end, "waited for '%s'; output since the last match:\n%s", needle,
                  t->len > t->pos ? t->buf + t->pos : "");
        tty_read(t, 200);
    }
}

static void tty_expect_free(tty_run *t, const char *needle) { free(tty_expect(t, needle)); }

static void tty_send(tty_run *t, const char *s)
{
    size_t n = strlen(s);
    cr_assert_eq(write(t->fd, s, n), (ssize_t)n);
}

/* The number after "prompt eval count:" in the next verbose statistics. */
static long tty_prompt_eval_count(tty_run *t)
{
    tty_expect_free(t, "prompt eval count:");
    char *seg = tty_expect(t, " token(s)");
    long n = strtol(seg, NULL, 10);
    free(seg);
    return n;
}

/* Wait for the child to end (killing it after the bound) and check its exit status. */
static void tty_finish(tty_run *t, int want_status)
{
    const double end = now_s() + TTY_WAIT_S;
    int st = 0;
    pid_t w = 0;
    while ((w = waitpid(t->pid, &st, WNOHANG)) == 0 && now_s() < end) tty_read(t, 100);
    if (w == 0) {
        kill(t->pid, SIGKILL);
        waitpid(t->pid, &st, 0);
    }
    close(t->fd);
    int rc = w != 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    cr_assert_eq(rc, want_status, "qfit run ended with %d (-1: killed); its output:\n%s", rc, t->buf);
    free(t->buf);
}

static size_t common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    size_t k = 0;
    while (k < na && k < nb && a[k] == b[k]) k++;
    return k;
}

static int32_t *tokens_of(const qfit_chat_model *cm, const char *messages_json, size_t *n)
{
    char *text = render(cm, messages_json), err[256];
    int32_t *ids;
    cr_assert_eq(qfit_chat_tokenize(cm, text, &ids, n, err, sizeof err), 0, "%s", err);
    free(text);
    return ids;
}

/* Turn 2 evaluates only the tokens after what turn 1 left in the context; /clear drops them. */
Test(chat, interactive_turn_costs_only_its_new_tokens)
{
    const char *d = fresh_dir("kvreuse");
    /* no answer tokens: the cached tokens are exactly turn 1's prompt */
    create_model(d, "np0", GO_TEMPLATE, "SYSTEM Thou art a scribe.\nPARAMETER num_predict 0\n");
    qfit_store *s;
    qfit_chat_model *cm = open_model(d, "np0", &s);
    size_t n1, n2;
    int32_t *ids1 = tokens_of(cm, "[{\"role\":\"user\",\"content\":\"In the beginning\"}]", &n1);
    int32_t *ids2 = tokens_of(cm, "[{\"role\":\"user\",\"content\":\"In the beginning\"},"
                                  "{\"role\":\"assistant\",\"content\":\"\"},"
                                  "{\"role\":\"user\",\"content\":\"And God said\"}]", &n2);
    size_t keep = common_prefix(ids1, n1, ids2, n2);
    cr_assert(keep > 10 && keep < n2, "keep %zu of %zu", keep, n2);

    tty_run t;
    tty_start(&t, d, "np0");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "/set verbose\n");
    tty_expect_free(&t, "Set 'verbose' mode.");
    tty_send(&t, "In the beginning\n");
    cr_assert_eq(tty_prompt_eval_count(&t), (long)n1);
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "And God said\n");
    cr_assert_eq(tty_prompt_eval_count(&t), (long)(n2 - keep), "turn 2 must evaluate %zu new tokens of %zu",
                 n2 - keep, n2);
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "/clear\n");
    tty_expect_free(&t, "Cleared session context");
    tty_send(&t, "In the beginning\n");
    cr_assert_eq(tty_prompt_eval_count(&t), (long)n1, "after /clear the whole prompt is evaluated");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "\x04");   /* Ctrl-D at the prompt */
    tty_finish(&t, 0);
    free(ids1);
    free(ids2);
    qfit_chat_model_free(cm);
    qfit_store_close(s);
}

Test(chat, interactive_commands_and_save)
{
    const char *d = fresh_dir("commands");
    create_model(d, "chat", GO_TEMPLATE, "SYSTEM Thou art a scribe.\nPARAMETER temperature 0.7\nPARAMETER num_predict 8\n");
    tty_run t;
    tty_start(&t, d, "chat");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "/set parameter temperature 0\n");
    tty_expect_free(&t, "Set parameter 'temperature' to '0'");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "/show parameters\n");
    char want[128];
    snprintf(want, sizeof want, "\n%-30s%s\n", "temperature", "0");
    char *seg = tty_expect(&t, ">>> ");
    cr_assert(strstr(seg, want), "/show parameters: %s", seg);
    free(seg);
    tty_send(&t, "/set parameter bogus 1\n");
    tty_expect_free(&t, "Error: unknown parameter 'bogus'");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "/set parameter num_gpu 2\n");
    /* num_gpu is the context's layer count: the CPU device has no GPU to put them on */
    tty_expect_free(&t, "Error: 2 GPU layers requested, but device cpu has none to run them on");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "/frobnicate\n");
    tty_expect_free(&t, "Unknown command '/frobnicate'");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "/show template\n");
    tty_expect_free(&t, "<</{{ .Role }}>>{{ end }}<<assistant>>");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "/show info\n");
    tty_expect_free(&t, "architecture        llama\n");
    tty_expect_free(&t, "template            TEMPLATE (go)\n");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "/set system Be brief.\n");
    tty_expect_free(&t, "Set system message.");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "/show system\n");
    tty_expect_free(&t, "\nBe brief.\n>>> ");
    tty_send(&t, "/show modelfile\n");
    seg = tty_expect(&t, ">>> ");
    cr_assert(strstr(seg, "FROM chat:latest\n") && strstr(seg, "\nSYSTEM Be brief.\n") &&
              strstr(seg, "\nPARAMETER temperature 0\n"), "%s", seg);
    free(seg);
    /* a multi-line message: one user turn "Line one\nline two" */
    tty_send(&t, "\"\"\"Line one\n");
    tty_expect_free(&t, "... ");
    tty_send(&t, "line two\"\"\"\n");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "/save saved1\n");
    tty_expect_free(&t, "Created new model 'saved1'");
    tty_expect_free(&t, ">>> ");
    /* the saved model: its SYSTEM is the session's */
    tty_send(&t, "/load saved1\n");
    tty_expect_free(&t, "Loading model 'saved1'");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "/show system\n");
    tty_expect_free(&t, "\nBe brief.\n>>> ");
    tty_send(&t, "/bye\n");
    tty_finish(&t, 0);

    int st;
    char *out = qfit(d, "list", &st);
    cr_assert_eq(st, 0);
    cr_assert(strstr(out, "saved1:latest"), "%s", out);
    free(out);
    out = qfit_stdout(d, "show saved1 --modelfile", &st);
    cr_assert_eq(st, 0);
    cr_assert(strstr(out, "\nPARAMETER temperature 0\n"), "%s", out);
    cr_assert(strstr(out, "\nSYSTEM Be brief.\n"), "%s", out);
    cr_assert(strstr(out, "\nMESSAGE system Be brief.\nMESSAGE user \"Line one\nline two\"\n"), "%s", out);
    cr_assert(strstr(out, "\nMESSAGE assistant "), "%s", out);
    free(out);
}

/* Ctrl-C at the prompt: a hint; during an answer: that answer stops, the session goes on
 * and keeps the partial answer. */
Test(chat, interactive_ctrl_c)
{
    const char *d = fresh_dir("ctrlc");
    /* greedy from this prompt, the model writes until the context (512) is full */
    create_model(d, "long", GO_TEMPLATE, "PARAMETER temperature 0\nPARAMETER num_predict 100000\n");
    tty_run t;
    tty_start(&t, d, "long");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "\x03");
    tty_expect_free(&t, "Use Ctrl + d or /bye to exit.");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "In the beginning\n");
    tty_expect_free(&t, "In the beginning\n");   /* the terminal's echo */
    size_t before = t.len;
    while (t.len < before + 8) cr_assert(tty_read(&t, TTY_WAIT_S * 1000), "no answer: %s", t.buf);
    tty_send(&t, "\x03");
    char *seg = tty_expect(&t, ">>> ");
    cr_assert(!strstr(seg, "is full"), "the answer ran to its end instead of stopping: %s", seg);
    free(seg);
    tty_send(&t, "/save cut\n");
    tty_expect_free(&t, "Created new model 'cut'");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "\x04");
    tty_finish(&t, 0);
    int st;
    char *out = qfit_stdout(d, "show cut --modelfile", &st);
    cr_assert_eq(st, 0);
    cr_assert(strstr(out, "\nMESSAGE user In the beginning\nMESSAGE assistant "), "%s", out);
    free(out);
}

/* A conversation that does not fit: a message naming the numbers, nothing generated; an
 * answer that fills the context stops with a message (never a silent shift). */
Test(chat, interactive_context_full)
{
    const char *d = fresh_dir("overflow");
    create_model(d, "small", GO_TEMPLATE,
                 "PARAMETER temperature 0\nPARAMETER num_ctx 64\nPARAMETER num_predict 100000\n");
    qfit_store *s;
    qfit_chat_model *cm = open_model(d, "small", &s);
    size_t n1;
    free(tokens_of(cm, "[{\"role\":\"user\",\"content\":\"In the beginning\"}]", &n1));
    qfit_chat_model_free(cm);
    qfit_store_close(s);
    tty_run t;
    tty_start(&t, d, "small");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "And God said, Let there be light: and there was light. And God saw the light, that it was "
                 "good: and God divided the light from the darkness. And God called the light Day, and the "
                 "darkness he called Night.\n");
    char *seg = tty_expect(&t, ">>> ");
    cr_assert(strstr(seg, "context holds 64 tokens: use /clear"), "%s", seg);
    free(seg);
    tty_send(&t, "/set verbose\n");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "In the beginning\n");
    tty_expect_free(&t, "the context (64 tokens) is full: the answer stops here");
    /* the refused message was not kept: this turn's prompt is this message alone */
    cr_assert_eq(tty_prompt_eval_count(&t), (long)n1);
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "\x04");
    tty_finish(&t, 0);
}

Test(chat, interactive_needs_a_template)
{
    const char *d = fresh_dir("notmpl");
    create_model(d, "plain", NULL, "");
    tty_run t;
    tty_start(&t, d, "plain");
    tty_expect_free(&t, "has no chat template");
    tty_expect_free(&t, "Modelfile TEMPLATE");
    tty_finish(&t, 1);
}

/* ---- qfit run through a running qfit serve */

typedef struct {
    pid_t pid;
    char  log[2048];
} serve_run;

/* qfit serve on a free loopback port with dir's store; g_host is set to it. */
static void serve_start(serve_run *sv, const char *dir)
{
    snprintf(sv->log, sizeof sv->log, "%s/serve.log", dir);
    char store[2048];
    snprintf(store, sizeof store, "%s/store", dir);
    const char *bin = tu_qfit_bin();
    sv->pid = fork();
    cr_assert(sv->pid >= 0);
    if (sv->pid == 0) {
        /* dies with the test's process (a failed assertion must not leave it running and
         * holding the test run's output pipe open) */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(sv->log, O_WRONLY | O_CREAT | O_TRUNC, 0644), null = open("/dev/null", O_RDWR);
        if (fd < 0 || null < 0) _exit(127);
        dup2(null, 0);
        dup2(null, 1);
        dup2(fd, 2);
        setenv("QFIT_MODELS", store, 1);
        unsetenv("QFIT_API_KEY");
        execl(bin, bin, "serve", "--host", "127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    const double end = now_s() + TTY_WAIT_S;
    for (;;) {
        char *l = tu_read_file(sv->log, NULL);
        const char *at = l ? strstr(l, "listening on http://127.0.0.1:") : NULL;
        int port = at ? atoi(at + strlen("listening on http://127.0.0.1:")) : 0;
        free(l);
        if (port > 0) {
            snprintf(g_host, sizeof g_host, "127.0.0.1:%d", port);
            return;
        }
        cr_assert(now_s() < end && waitpid(sv->pid, NULL, WNOHANG) == 0, "qfit serve did not start (%s)", sv->log);
        usleep(50 * 1000);
    }
}

/* Stop it (SIGTERM, killed after the bound); returns its log (malloc'd). */
static char *serve_stop(serve_run *sv)
{
    g_host[0] = '\0';
    kill(sv->pid, SIGTERM);
    const double end = now_s() + TTY_WAIT_S;
    int st = 0;
    pid_t w;
    while ((w = waitpid(sv->pid, &st, WNOHANG)) == 0 && now_s() < end) usleep(20 * 1000);
    if (w == 0) {
        kill(sv->pid, SIGKILL);
        waitpid(sv->pid, &st, 0);
    }
    char *l = tu_read_file(sv->log, NULL);
    cr_assert(l);
    cr_expect(w != 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "qfit serve did not stop cleanly:\n%s", l);
    return l;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* One answer through the server is the same text as the local run's; the server ran it
 * (its log), and still holds the model afterwards (qfit ps). */
Test(chat, run_through_the_server_answers_as_local)
{
    const char *d = fresh_dir("remote1");
    create_model(d, "scribe", GO_TEMPLATE, CHAT_EXTRA);
    int st;
    char *local = qfit_stdout(d, "run scribe 'In the beginning'", &st);
    cr_assert_eq(st, 0);
    serve_run sv;
    serve_start(&sv, d);
    char *remote = qfit_stdout(d, "run scribe 'In the beginning'", &st);
    cr_expect_eq(st, 0);
    cr_expect_str_eq(remote, local, "through the server:\n%s\nlocal:\n%s", remote, local);
    cr_expect(strlen(local) > 4, "an answer: '%s'", local);
    char *ps = qfit(d, "ps", &st);
    cr_expect(strstr(ps, "scribe:latest"), "the model stays loaded: %s", ps);
    free(ps);
    /* --local runs here even with a server: the server sees no new chat */
    free(qfit_stdout(d, "run scribe 'In the beginning' --local", &st));
    cr_expect_eq(st, 0);
    /* a model the server does not have: its message */
    char *out = qfit(d, "run nosuch 'x'", &st);
    cr_expect_neq(st, 0);
    cr_expect(strstr(out, "model 'nosuch' not found"), "%s", out);
    free(out);
    char *log = serve_stop(&sv);
    cr_expect_eq(count_of(log, "POST /api/chat 200"), 1, "one chat through the server:\n%s", log);
    free(log);
    free(local);
    free(remote);
}

/* An interactive session through the server: turn 2 reuses turn 1's tokens (the
 * server's prefix cache), Ctrl-C stops an answer there (the server cancels it) and the
 * session goes on; /save creates the model on the server. */
Test(chat, run_through_the_server_interactive)
{
    const char *d = fresh_dir("remote2");
    create_model(d, "np0", GO_TEMPLATE, "SYSTEM Thou art a scribe.\nPARAMETER num_predict 0\n");
    create_model(d, "long", GO_TEMPLATE, "PARAMETER temperature 0\nPARAMETER num_predict 100000\n");
    qfit_store *s;
    qfit_chat_model *cm = open_model(d, "np0", &s);
    size_t n1, n2;
    int32_t *ids1 = tokens_of(cm, "[{\"role\":\"user\",\"content\":\"In the beginning\"}]", &n1);
    int32_t *ids2 = tokens_of(cm, "[{\"role\":\"user\",\"content\":\"In the beginning\"},"
                                  "{\"role\":\"assistant\",\"content\":\"\"},"
                                  "{\"role\":\"user\",\"content\":\"And God said\"}]", &n2);
    const size_t keep = common_prefix(ids1, n1, ids2, n2);
    qfit_chat_model_free(cm);
    qfit_store_close(s);

    serve_run sv;
    serve_start(&sv, d);
    tty_run t;
    tty_start(&t, d, "np0");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "/set verbose\n");
    tty_expect_free(&t, "Set 'verbose' mode.");
    tty_send(&t, "In the beginning\n");
    cr_assert_eq(tty_prompt_eval_count(&t), (long)n1);
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "And God said\n");
    /* the server counts the whole prompt, as Ollama; what it evaluated is in its metrics */
    cr_assert_eq(tty_prompt_eval_count(&t), (long)n2);
    tty_expect_free(&t, ">>> ");
    char cmd[256], want[128];
    snprintf(cmd, sizeof cmd, "curl -s http://%s/metrics", g_host);
    int st;
    char *metrics = tu_run(cmd, &st);
    snprintf(want, sizeof want, "\nqfit_prefix_cache_reused_tokens_total %zu\n", keep);
    cr_assert(strstr(metrics, want), "turn 2 must reuse the %zu tokens of turn 1 (%zu new of %zu):\n%s", keep,
              n2 - keep, n2, metrics);
    free(metrics);
    tty_send(&t, "/load long\n");
    tty_expect_free(&t, "Loading model 'long'");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "In the beginning\n");
    tty_expect_free(&t, "In the beginning\n");
    size_t before = t.len;
    while (t.len < before + 8) cr_assert(tty_read(&t, TTY_WAIT_S * 1000), "no answer: %s", t.buf);
    tty_send(&t, "\x03");
    char *seg = tty_expect(&t, ">>> ");
    cr_assert(!strstr(seg, "is full"), "the answer ran to its end instead of stopping: %s", seg);
    free(seg);
    tty_send(&t, "/save cut\n");
    tty_expect_free(&t, "Created new model 'cut'");
    tty_expect_free(&t, ">>> ");
    tty_send(&t, "\x04");
    tty_finish(&t, 0);
    char *log = serve_stop(&sv);
    cr_expect(strstr(log, "POST /api/create 200"), "/save went to the server:\n%s", log);
    cr_expect(strstr(log, "POST /api/chat 200") && strstr(log, "(connection closed early)"), "Ctrl-C closed the request:\n%s", log);
    free(log);
    char *out = qfit_stdout(d, "show cut --modelfile", &st);
    cr_assert_eq(st, 0);
    cr_assert(strstr(out, "\nMESSAGE user In the beginning\nMESSAGE assistant "), "%s", out);
    free(out);
    free(ids1);
    free(ids2);
}
