/* Go text/template engine (qfit_template_render_go) against Ollama's own test vectors and Go's
 * text/template semantics.
 *
 * tests/data/templates/ollama/ holds Ollama's template/ folder (every .gotmpl), the expected outputs of
 * template/testdata/, the message lists of template_test.go (messages.json) and its Execute
 * cases (execute_cases.json). tests/data/templates/go/cases.json holds cases whose expected
 * output was produced by Go's text/template (see its README).
 */
#include "qfit/template.h"
#include "util/testutil.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OLLAMA_DIR "tests/data/templates/ollama"
#define GO_CASES   "tests/data/templates/go/cases.json"

static json_t *load_json(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    cr_assert(j, "%s:%d: %s", path, je.line, je.text);
    return j;
}

/* Renders tmpl over messages/tools (+ extra); returns the output or NULL with err set. */
static char *render(const char *tmpl, json_t *messages, json_t *tools, json_t *extra, int think,
                    char *err, size_t err_len)
{
    qfit_chat_input in = { .messages = messages, .tools = tools, .think = think, .extra = extra };
    char *out = NULL;
    err[0] = 0;
    int rc = qfit_template_render_go(tmpl, &in, &out, err, err_len);
    if (rc) {
        cr_assert(out == NULL, "output set on error");
        cr_assert(err[0], "error without a message");
        return NULL;
    }
    cr_assert(out, "no output and no error");
    return out;
}

static char *render_simple(const char *tmpl, const char *messages_json, char *err, size_t err_len)
{
    json_t *m = json_loads(messages_json, 0, NULL);
    cr_assert(m, "bad test JSON: %s", messages_json);
    char *out = render(tmpl, m, NULL, NULL, -1, err, err_len);
    json_decref(m);
    return out;
}

/* Every Ollama template x every message list of TestTemplate, byte for byte. */
Test(gotmpl, ollama_template_vectors)
{
    json_t *cases = load_json(OLLAMA_DIR "/messages.json");
    DIR *d = opendir(OLLAMA_DIR);
    cr_assert(d);
    struct dirent *de;
    int templates = 0, checked = 0;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 8 || strcmp(de->d_name + n - 7, ".gotmpl")) continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", OLLAMA_DIR, de->d_name);
        size_t size;
        char *tmpl = tu_read_file(path, &size);
        cr_assert(tmpl, "cannot read %s", path);
        templates++;
        const char *name;
        json_t *msgs;
        json_object_foreach(cases, name, msgs) {
            snprintf(path, sizeof(path), "%s/expected/%s/%s", OLLAMA_DIR, de->d_name, name);
            size_t want_n;
            char *want = tu_read_file(path, &want_n);
            cr_assert(want, "missing expected output %s", path);
            char err[512];
            char *got = render(tmpl, msgs, NULL, NULL, -1, err, sizeof(err));
            cr_assert(got, "%s / %s: %s", de->d_name, name, err);
            size_t got_n = strlen(got);
            /* template_test.go drops one trailing space for these five before comparing */
            static const char *const strip[] = { "chatqa.gotmpl", "llama2-chat.gotmpl",
                                                 "mistral-instruct.gotmpl", "openchat.gotmpl",
                                                 "vicuna.gotmpl" };
            for (size_t i = 0; i < sizeof(strip) / sizeof(strip[0]); i++)
                if (!strcmp(de->d_name, strip[i]) && got_n && got[got_n - 1] == ' ') got[--got_n] = 0;
            cr_expect(got_n == want_n && !memcmp(got, want, want_n),
                      "%s / %s:\n--- got ---\n%s\n--- want ---\n%s", de->d_name, name, got, want);
            checked++;
            free(got);
            free(want);
        }
        free(tmpl);
    }
    closedir(d);
    json_decref(cases);
    cr_assert_eq(templates, 20, "expected Ollama's 20 templates, found %d", templates);
    cr_assert_eq(checked, 60);
}

/* A list of {name, template, messages, tools?, prompt?, suffix?, think?, expected | error}. */
static void run_case_file(const char *path, int want_cases)
{
    json_t *cases = load_json(path);
    size_t i;
    json_t *c;
    int n = 0;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *tmpl = json_string_value(json_object_get(c, "template"));
        json_t *msgs = json_object_get(c, "messages");
        cr_assert(name && tmpl && msgs, "%s: case %zu incomplete", path, i);
        json_t *extra = NULL;
        static const char *const ex_keys[] = { "prompt", "suffix", "think_level" };
        for (size_t k = 0; k < 3; k++) {
            json_t *v = json_object_get(c, ex_keys[k]);
            if (!v) continue;
            if (!extra) extra = json_object();
            json_object_set(extra, ex_keys[k], v);
        }
        json_t *think = json_object_get(c, "think");
        char err[512];
        char *got = render(tmpl, msgs, json_object_get(c, "tools"), extra,
                           think ? (json_is_true(think) ? 1 : 0) : -1, err, sizeof(err));
        const char *want = json_string_value(json_object_get(c, "expected"));
        /* "error": a fragment of qfit's message, or true where only Go's (other) wording is known */
        json_t *err_j = json_object_get(c, "error");
        const char *want_err = json_is_true(err_j) ? "" : json_string_value(err_j);
        if (want) {
            cr_expect(got, "%s: unexpected error: %s", name, err);
            if (got) cr_expect_str_eq(got, want, "%s:\n--- got ---\n%s\n--- want ---\n%s", name, got, want);
        } else {
            cr_assert(want_err, "%s: case has neither expected nor error", name);
            cr_expect(!got, "%s: rendered %s, want error containing \"%s\"", name, got, want_err);
            if (!got) cr_expect(strstr(err, want_err), "%s: error \"%s\" lacks \"%s\"", name, err, want_err);
        }
        free(got);
        json_decref(extra);
        n++;
    }
    json_decref(cases);
    cr_assert_eq(n, want_cases, "%s: %d cases", path, n);
}

/* template_test.go: TestExecuteWithMessages, TestExecuteWithSuffix, TestCollate,
 * TestTemplateArguments*, TestTemplateProperties*, TestParseError. */
Test(gotmpl, ollama_execute_cases) { run_case_file(OLLAMA_DIR "/execute_cases.json", 22); }

/* Go text/template semantics, expected outputs produced by Go (tests/data/templates/go). */
Test(gotmpl, go_semantics) { run_case_file(GO_CASES, 59); }

/* Real Ollama library templates (Qwen, Llama 3.x, Mistral, Gemma 3, Phi-4 ...) with tools and
 * thinking, expected outputs from Go (tests/data/templates/library). */
Test(gotmpl, library_templates) { run_case_file("tests/data/templates/library/cases.json", 130); }

/* Parse and execution errors name the line and column. */
Test(gotmpl, errors_have_positions)
{
    static const struct { const char *tmpl, *want; } cases[] = {
        { "hello {{ .Prompt ", "template:1:7: unclosed action" },
        { "a\nb {{ foo 1 }}", "template:2:6: function \"foo\" not defined" },
        { "{{ range .Messages }}{{ .Nope }}{{ end }}",
          "template:1:25: can't evaluate field Nope in type *template.templateMessage" },
        { "{{ $x }}", "template:1:4: undefined variable \"$x\"" },
        { "{{ break }}", "template:1:4: {{break}} outside {{range}}" },
        { "{{ if .Messages }}x", "template:1:20: unexpected EOF" },
        { "x{{ end }}", "template:1:5: unexpected {{end}}" },
        { "{{ \"abc }}", "template:1:4: unterminated quoted string" },
        { "{{/* x */ }}", "template:1:1: comment ends before closing delimiter" },
        { "{{ .Messages | 3 }}", "non executable command in pipeline stage 2" },
        { "{{ range .Messages }}{{ len 3 }}{{ end }}", "template:1:25: len of type int" },
        { "{{ range .Messages }}{{ end }}{{ index .Messages 5 }}", "index out of range: 5" },
        { "{{ define \"x\" }}{{ end }}", "template:1:4: {{define}}: named templates are not supported" },
        { "{{ range .Messages }}{{ end }}{{ printf \"%x\" 1 }}", "printf: verb or flag %x is not supported" },
        { "{{ range .Messages }}{{ end }}{{ eq 1 \"a\" }}", "incompatible types for comparison" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[512];
        char *got = render_simple(cases[i].tmpl, "[{\"role\":\"user\",\"content\":\"hi\"}]", err, sizeof(err));
        cr_expect(!got, "%s: rendered \"%s\"", cases[i].tmpl, got);
        cr_expect(strstr(err, cases[i].want), "%s: error \"%s\", want \"%s\"", cases[i].tmpl, err, cases[i].want);
        free(got);
    }
}

/* Bad input data is an error naming the field, not a crash or a silent empty string. */
Test(gotmpl, bad_input_is_an_error)
{
    char err[512];
    char *got = render_simple("{{ range .Messages }}{{ .Content }}{{ end }}",
                              "[{\"role\":\"user\",\"content\":5}]", err, sizeof(err));
    cr_expect(!got);
    cr_expect(strstr(err, "messages[0].content: expected a string"), "%s", err);
    got = render_simple("{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Arguments }}{{ end }}{{ end }}",
                        "[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"f\","
                        "\"arguments\":\"{}\"}}]}]", err, sizeof(err));
    cr_expect(!got);
    cr_expect(strstr(err, "arguments: expected an object, got a string"), "%s", err);
    json_t *m = json_loads("[]", 0, NULL), *extra = json_loads("{\"enable_thinking\":true}", 0, NULL);
    got = render("{{ .Prompt }}", m, NULL, extra, -1, err, sizeof(err));
    cr_expect(!got);
    cr_expect(strstr(err, "extra.enable_thinking is not a Go template value"), "%s", err);
    json_decref(m);
    json_decref(extra);
}

/* Loops, nesting and output are bounded: errors, never hangs or unbounded memory. */
Test(gotmpl, bounds)
{
    char err[512];
    /* 10^7 iterations: stops at the iteration bound */
    char *got = render_simple("{{ range .Messages }}{{ end }}{{ range 10000000 }}{{ end }}", "[]", err, sizeof(err));
    cr_expect(!got && strstr(err, "range iterations"), "%s", err);
    got = render_simple("{{ range .Messages }}{{ end }}{{ range 1000 }}{{ range 1000 }}{{ range 1000 }}{{ end }}{{ end }}{{ end }}",
                        "[]", err, sizeof(err));
    cr_expect(!got && strstr(err, "more than 1000000 range iterations"), "%s", err);
    /* output limit */
    got = render_simple("{{ range .Messages }}{{ end }}{{ range 900000 }}0123456789{{ end }}", "[]", err, sizeof(err));
    cr_expect(!got && strstr(err, "output exceeds"), "%s", err);
    /* strings doubling in a variable */
    got = render_simple("{{ range .Messages }}{{ end }}{{ $x := \"0123456789abcdef\" }}{{ range 40 }}{{ $x = printf \"%s%s\" $x $x }}"
                        "{{ end }}", "[]", err, sizeof(err));
    cr_expect(!got && strstr(err, "string longer than"), "%s", err);
    /* deep nesting of control structures and parentheses */
    size_t depth = 5000;
    char *deep = malloc(depth * 20 + 64);
    char *p = deep;
    for (size_t i = 0; i < depth; i++) p += sprintf(p, "{{ if .Messages }}");
    strcpy(p, "x");
    got = render_simple(deep, "[]", err, sizeof(err));
    cr_expect(!got && strstr(err, "nested too deeply"), "%s", err);
    p = deep;
    p += sprintf(p, "{{ ");
    for (size_t i = 0; i < depth; i++) *p++ = '(';
    strcpy(p, "1");
    got = render_simple(deep, "[]", err, sizeof(err));
    cr_expect(!got && strstr(err, "nested too deeply"), "%s", err);
    free(deep);
}

/* Ollama's legacy mode (templates without .Messages), traced through template.go's Execute:
 * one run per user turn, the last on the template cut after its first .Response. */
Test(gotmpl, legacy_mode)
{
    static const char *tmpl = "{{ if .System }}S:{{ .System }} {{ end }}U:{{ .Prompt }} A:{{ .Response }}|";
    static const struct { const char *msgs, *want; } cases[] = {
        { "[{\"role\":\"system\",\"content\":\"s1\"},{\"role\":\"user\",\"content\":\"u1\"},"
          "{\"role\":\"assistant\",\"content\":\"a1\"},{\"role\":\"user\",\"content\":\"u2\"}]",
          "S:s1 U:u1 A:a1|U:u2 A:" },
        /* a trailing assistant message is continued: the cut drops the "|" after it */
        { "[{\"role\":\"user\",\"content\":\"u1\"},{\"role\":\"assistant\",\"content\":\"a1\"}]", "U:u1 A:a1" },
        /* a system message after a turn starts a new turn; tool messages are not rendered */
        { "[{\"role\":\"user\",\"content\":\"u1\"},{\"role\":\"assistant\",\"content\":\"a1\"},"
          "{\"role\":\"tool\",\"content\":\"t\"},{\"role\":\"system\",\"content\":\"s2\"},"
          "{\"role\":\"user\",\"content\":\"u2\"}]",
          "U:u1 A:a1|S:s2 U:u2 A:" },
        { "[]", "U: A:" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[512];
        char *got = render_simple(tmpl, cases[i].msgs, err, sizeof(err));
        cr_expect(got, "case %zu: %s", i, err);
        if (got) cr_expect_str_eq(got, cases[i].want, "case %zu", i);
        free(got);
    }
    /* Ollama's deleteNode panics when an {{else}} follows the cut: an error here */
    char err[512];
    char *got = render_simple("{{ if .Prompt }}{{ .Response }}{{ else }}x{{ end }}",
                              "[{\"role\":\"user\",\"content\":\"u\"}]", err, sizeof(err));
    cr_expect(!got && strstr(err, "has an else"), "%s", err);
    free(got);
    /* .ThinkLevel comes from extra.think_level */
    json_t *m = json_loads("[]", 0, NULL), *extra = json_loads("{\"think_level\":\"high\"}", 0, NULL);
    got = render("{{ range .Messages }}{{ end }}{{ .Think }} {{ .IsThinkSet }} {{ .ThinkLevel }}", m, NULL,
                 extra, 1, err, sizeof(err));
    cr_expect(got, "%s", err);
    if (got) cr_expect_str_eq(got, "true true high");
    free(got);
    got = render("{{ .Prompt }}", m, NULL, extra, 0, err, sizeof(err));
    cr_expect(!got && strstr(err, "think_level needs think = 1"), "%s", err);
    json_decref(m);
    json_decref(extra);
}
