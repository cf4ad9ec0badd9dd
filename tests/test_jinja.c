/* Suite jinja: the Jinja chat-template engine against Python's jinja2 configured as Hugging
 * Face's apply_chat_template (tests/jinja_ref.py, Debian python3-jinja2 at /usr/bin/python3).
 *
 * Every case is rendered by qfit and by the reference; outputs must be byte-identical, and when
 * jinja2 raises qfit must fail too. The reference runs once per test in batch mode.
 * Real templates: every .jinja file in tests/data/templates/jinja/llama.cpp and every entry of Ollama's
 * template/index.json, each over every message fixture in tests/data/templates/jinja/fixtures.
 * strftime_now is pinned for both sides with QFIT_TEMPLATE_NOW.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "qfit/template.h"
#include "util/testutil.h"

#define REF_PY "/usr/bin/python3"
#define NOW "1721736000" /* 2024-07-23 12:00:00 UTC */

static const char *data_dir(const char *sub)
{
    static char dir[4][4096];
    static int slot;
    char *d = dir[slot++ & 3];
    snprintf(d, sizeof dir[0], "%s", __FILE__);
    char *slash = strrchr(d, '/');
    if (slash) slash[1] = 0; else d[0] = 0;
    strncat(d, "data/templates/jinja/", sizeof dir[0] - strlen(d) - 1);
    strncat(d, sub, sizeof dir[0] - strlen(d) - 1);
    return d;
}

static const char *ref_script(void)
{
    static char p[4096];
    snprintf(p, sizeof p, "%s", __FILE__);
    char *slash = strrchr(p, '/');
    if (slash) slash[1] = 0; else p[0] = 0;
    strncat(p, "jinja_ref.py", sizeof p - strlen(p) - 1);
    return p;
}

static void pin_time(void) { setenv("QFIT_TEMPLATE_NOW", NOW, 1); }

TestSuite(jinja, .init = pin_time);

/* Renders one spec {template, messages, tools?, add_generation_prompt, bos_token, eos_token,
 * extra?} with qfit. Returns the output (malloc'd) or NULL with err filled. */
static char *qfit_render(const json_t *spec, char *err, size_t err_len)
{
    qfit_chat_input in = { 0 };
    in.messages = json_object_get(spec, "messages");
    in.tools = json_object_get(spec, "tools");
    if (json_is_null(in.tools)) in.tools = NULL;
    in.add_generation_prompt = json_is_true(json_object_get(spec, "add_generation_prompt"));
    in.bos_token = json_string_value(json_object_get(spec, "bos_token"));
    in.eos_token = json_string_value(json_object_get(spec, "eos_token"));
    in.think = -1;
    in.extra = json_object_get(spec, "extra");
    if (json_is_null(in.extra)) in.extra = NULL;
    char *out = NULL;
    if (qfit_template_render_jinja(json_string_value(json_object_get(spec, "template")), &in, &out, err, err_len) != 0)
        return NULL;
    return out;
}

/* The reference's results for an array of specs: an array of {"output"} / {"error"}. */
static json_t *ref_batch(const json_t *specs)
{
    char path[4200];
    static int n;
    snprintf(path, sizeof path, "%s/ref-%d-%d.json", tu_tmpdir(), (int)getpid(), n++);
    cr_assert_eq(json_dump_file(specs, path, 0), 0, "cannot write %s", path);
    char cmd[8800];
    snprintf(cmd, sizeof cmd, "%s '%s' --batch '%s'", REF_PY, ref_script(), path);
    int status;
    char *out = tu_run(cmd, &status);
    cr_assert_eq(status, 0, "reference renderer failed (needs python3-jinja2): %s", out);
    json_error_t je;
    json_t *res = json_loads(out, 0, &je);
    cr_assert(res && json_is_array(res) && json_array_size(res) == json_array_size(specs),
              "bad reference output: %s (%.200s)", je.text, out);
    free(out);
    return res;
}

/* Compares qfit with the reference on every spec; names[i] labels case i. Returns failures. */
static int compare_all(const json_t *specs, const char *const *names)
{
    json_t *ref = ref_batch(specs);
    int bad = 0;
    for (size_t i = 0; i < json_array_size(specs); i++) {
        const json_t *spec = json_array_get(specs, i);
        const json_t *r = json_array_get(ref, i);
        char err[1024] = "";
        char *got = qfit_render(spec, err, sizeof err);
        const json_t *want = json_object_get(r, "output");
        if (!want) {
            if (got) {
                bad++;
                cr_log_error("%s: jinja2 raised (%s) but qfit rendered %.200s", names[i],
                             json_string_value(json_object_get(r, "error")), got);
            }
        } else if (!got) {
            bad++;
            cr_log_error("%s: qfit failed: %s", names[i], err);
        } else {
            const char *w = json_string_value(want);
            size_t wn = json_string_length(want), gn = strlen(got);
            if (wn != gn || memcmp(w, got, wn) != 0) {
                size_t k = 0;
                while (k < wn && k < gn && w[k] == got[k]) k++;
                size_t from = k > 30 ? k - 30 : 0;
                bad++;
                cr_log_error("%s: output differs at byte %zu (lengths %zu vs %zu)\n  jinja2: %.80s\n  qfit:   %.80s",
                             names[i], k, wn, gn, w + from, got + from);
            }
        }
        free(got);
    }
    json_decref(ref);
    return bad;
}

static char *slurp(const char *path)
{
    size_t n;
    char *s = tu_read_file(path, &n);
    cr_assert(s, "cannot read %s", path);
    return s;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted file names in dir ending with ext. */
static size_t list_dir(const char *dir, const char *ext, char **names, size_t cap)
{
    DIR *d = opendir(dir);
    cr_assert(d, "cannot open %s", dir);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        size_t l = strlen(e->d_name), el = strlen(ext);
        if (l > el && !strcmp(e->d_name + l - el, ext)) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    return n;
}

/* Every template in tmpls (name, text) over every fixture. */
static void run_matrix(size_t nt, char **tnames, char **texts)
{
    char *fnames[64];
    size_t nf = list_dir(data_dir("fixtures"), ".json", fnames, 64);
    cr_assert_gt(nf, 5, "message fixtures missing");
    json_t *specs = json_array();
    char **labels = calloc(nt * nf, sizeof *labels);
    size_t k = 0;
    for (size_t f = 0; f < nf; f++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", data_dir("fixtures"), fnames[f]);
        json_error_t je;
        json_t *fx = json_load_file(path, 0, &je);
        cr_assert(fx, "%s: %s", path, je.text);
        for (size_t t = 0; t < nt; t++) {
            json_t *s = json_deep_copy(fx);
            json_object_set_new(s, "template", json_string(texts[t]));
            json_object_set_new(s, "bos_token", json_string("<s>"));
            json_object_set_new(s, "eos_token", json_string("</s>"));
            json_array_append_new(specs, s);
            labels[k] = malloc(512);
            snprintf(labels[k], 512, "%s x %s", tnames[t], fnames[f]);
            k++;
        }
        json_decref(fx);
    }
    int bad = compare_all(specs, (const char *const *)labels);
    cr_expect_eq(bad, 0, "%d of %zu template x fixture renders differ from jinja2", bad, k);
    for (size_t i = 0; i < k; i++) free(labels[i]);
    free(labels);
    for (size_t f = 0; f < nf; f++) free(fnames[f]);
    json_decref(specs);
}

Test(jinja, llama_cpp_templates_match_jinja2)
{
    char *names[128], *texts[128];
    size_t n = list_dir(data_dir("llama.cpp"), ".jinja", names, 128);
    cr_assert_geq(n, 20, "templates missing from %s", data_dir("llama.cpp"));
    for (size_t i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", data_dir("llama.cpp"), names[i]);
        texts[i] = slurp(path);
    }
    run_matrix(n, names, texts);
    for (size_t i = 0; i < n; i++) { free(names[i]); free(texts[i]); }
}

Test(jinja, ollama_index_templates_match_jinja2)
{
    char path[4200];
    snprintf(path, sizeof path, "%s", data_dir("ollama-index.json"));
    json_error_t je;
    json_t *idx = json_load_file(path, 0, &je);
    cr_assert(idx && json_is_array(idx), "%s: %s", path, je.text);
    size_t n = json_array_size(idx);
    cr_assert_geq(n, 30);
    char **names = calloc(n, sizeof *names), **texts = calloc(n, sizeof *texts);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(idx, i);
        names[i] = malloc(128);
        snprintf(names[i], 128, "index[%zu] %s", i, json_string_value(json_object_get(e, "name")));
        texts[i] = strdup(json_string_value(json_object_get(e, "template")));
    }
    run_matrix(n, names, texts);
    for (size_t i = 0; i < n; i++) { free(names[i]); free(texts[i]); }
    free(names);
    free(texts);
    json_decref(idx);
}

/* ------------------------------------------------------------------ targeted cases */

/* Small templates compared with jinja2 over one fixed conversation. */
static void compare_snippets(const char *const *tmpls, size_t n)
{
    json_error_t je;
    json_t *msgs = json_loads("[{\"role\":\"system\",\"content\":\"sys\"},"
                              "{\"role\":\"user\",\"content\":\"h\\u00e9llo \\u4e16\\u754c \\ud83d\\udc4b e\\u0301\"},"
                              "{\"role\":\"assistant\",\"content\":\"a\\nb\",\"n\":2.5,\"t\":[1,2,3]}]", 0, &je);
    cr_assert(msgs, "%s", je.text);
    json_t *specs = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_object();
        json_object_set_new(s, "template", json_string(tmpls[i]));
        json_object_set(s, "messages", msgs);
        json_object_set_new(s, "add_generation_prompt", json_true());
        json_object_set_new(s, "bos_token", json_string("<s>"));
        json_object_set_new(s, "eos_token", json_string("</s>"));
        json_array_append_new(specs, s);
    }
    int bad = compare_all(specs, tmpls);
    cr_expect_eq(bad, 0, "%d of %zu snippets differ from jinja2", bad, n);
    json_decref(specs);
    json_decref(msgs);
}

#define COMPARE(...) do { static const char *const t_[] = { __VA_ARGS__ }; compare_snippets(t_, sizeof t_ / sizeof *t_); } while (0)

Test(jinja, whitespace_control)
{
    COMPARE("a  \n  {% if true %}\n  b\n  {% endif %}\n  c",
            "a  {%- if true -%}  b  {%- endif %}  c\n",
            "x\n    {%+ if true %}y{% endif %}\n",
            "x\n    {% if true +%}\ny{% endif %}",
            "  {{- 'v' -}}  \n  w",
            "  {{ 'v' }}\n  w\n",
            "{# comment #}\nA\n  {#- c2 -#}  B\n   {# c3 #}\nC",
            "{% raw %}{{ not }} {% evaluated %}{% endraw %}\n  {%- raw -%}  x  {%- endraw %}",
            "line1\r\nline2\r{% if 1 %}\r\nz{% endif %}\n\n",
            "{% for m in messages %}\n    {{ m.role }}\n{% endfor %}\n",
            "\t\t{% set x = 1 %}\n{{ x }}",
            "{%- for m in messages -%}\n  [{{ m.role }}]\n{%- endfor -%}\n\n");
}

Test(jinja, loop_variables)
{
    COMPARE("{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }};{% endfor %}",
            "{% for m in messages %}{{ loop.previtem.role if loop.previtem is defined else '-' }}>{{ loop.nextitem.role | default('-') }} {% endfor %}",
            "{% for m in messages if m.role != 'system' %}{{ loop.index }}{{ m.role }}{{ loop.length }} {% endfor %}",
            "{% for a, b in [(1, 2), (3, 4)] %}{{ a + b }},{% endfor %}",
            "{% for k, v in {'x': 1, 'y': [2]}.items() %}{{ k }}={{ v }};{% endfor %}",
            "{% for i in range(10) %}{% if i is odd %}{% continue %}{% endif %}{% if i > 6 %}{% break %}{% endif %}{{ i }}{% endfor %}",
            "{% for i in [] %}x{% else %}empty{% endfor %}",
            "{% for c in 'héllo' %}{{ c }}.{% endfor %}",
            "{% for i in range(3) %}{{ loop.cycle('a', 'b') }}{% endfor %}",
            "{% set ns = namespace(n=0, s='') %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% set ns.s = ns.s ~ m.role[0] %}{% endfor %}{{ ns.n }}{{ ns.s }}",
            "{% set x = 1 %}{% for i in range(3) %}{% set x = i %}{% endfor %}{{ x }}",
            "{% for x in [[1, [2, 3]], [4]] recursive %}<{{ loop.depth }}{% if x is iterable %}{{ loop(x) }}{% else %}{{ x }}{% endif %}>{% endfor %}");
}

Test(jinja, filters)
{
    COMPARE("{{ '  a b  ' | trim }}|{{ 'xxaxx' | trim('x') }}|{{ messages | length }}|{{ 'héllo' | length }}|{{ messages[1].content | count }}",
            "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='role') | join(',') }}",
            "{{ messages | rejectattr('role', 'eq', 'system') | list | length }}{{ [1, 0, 2, none] | select | list }}{{ [1, 2, 3, 4] | reject('odd') | list }}",
            "{{ messages | map(attribute='missing', default='d') | list }}{{ ['a', 'b'] | map('upper') | join }}",
            "{{ [3, 1, 2] | sort }}{{ ['b', 'A', 'c'] | sort(reverse=true) }}{{ {'b': 1, 'A': 2} | dictsort }}{{ ['a', 'A', 'b'] | unique | list }}",
            "{{ [1, 2] | first }}{{ [1, 2] | last }}{{ [] | first is undefined }}{{ 'abc' | last }}{{ 'abc' | list }}{{ {'k': 1} | list }}",
            "{{ x | default('dflt') }}{{ '' | default('e', true) }}{{ none | default('n') }}{{ messages[0].nope | d('dd') }}",
            "{{ messages[2] | tojson }}|{{ messages[2] | tojson(indent=2) }}|{{ {'a': [], 'b': {}, 'c': 'é\\n\"\\u0001'} | tojson }}|{{ [1.0, 1e20, -0.5, none, true] | tojson(indent=4) }}",
            "{{ {'b': 1, 'a': 2} | items | list }}{{ messages[2].t | sum }}{{ [3, 9, 2] | max }}{{ [3, 9, 2] | min }}{{ [1, 2, 3] | reverse | list }}{{ 'abc' | reverse }}",
            "{{ '42' | int + 1 }}{{ '4.7' | int }}{{ 'x' | int(7) }}{{ 3.9 | int }}{{ '2.5' | float }}{{ 'x' | float }}{{ -3 | abs }}{{ 2.555 | round(2) }}{{ 2.5 | round }}",
            "{{ 'Hello World' | replace('o', '0') }}{{ 'aaa' | replace('a', 'b', 2) }}{{ 'hi there' | upper }}{{ 'HI' | lower }}{{ 'hELLO wORLD' | capitalize }}{{ 'hello big-world (x)' | title }}",
            "{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent('> ', blank=true) }}",
            "{{ 1 | string + 'x' }}{{ [1, 'a'] | string }}{{ none | string }}{{ '<a & b>' | e }}{{ '<b>' | safe }}",
            "{% filter upper %}inside {{ 'block' }}{% endfilter %}{% set v | trim %}  captured  {% endset %}[{{ v }}]",
            "{{ messages | map(attribute='role') | map('title') | list }}{{ 'one two  three' | wordcount }}");
}

Test(jinja, tests_and_operators)
{
    COMPARE("{{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 'a' is string }}{{ 1 is number }}{{ 1.5 is float }}{{ 1 is integer }}{{ {} is mapping }}{{ [] is iterable }}{{ 'a' is sequence }}{{ true is true }}{{ 0 is false }}{{ false is false }}{{ true is boolean }}",
            "{{ 1 is eq 1 }}{{ 2 is ne 1 }}{{ 3 is gt 2 }}{{ 3 is ge 3 }}{{ 2 is lt 3 }}{{ 2 is le 1 }}{{ 'a' is in 'abc' }}{{ 1 is in [1, 2] }}{{ 9 is divisibleby 3 }}{{ 4 is even }}{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ none is sameas none }}",
            "{{ 1 + 2 * 3 - 4 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.0 // 2 }} {{ -7.5 % 2 }} {{ 'ab' * 3 }} {{ [0] * 3 }} {{ 'a' ~ 1 ~ none ~ x }}",
            "{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }}{{ 'a' < 'b' }}{{ [1, 2] < [1, 3] }}{{ 1 == 1.0 }}{{ true == 1 }}{{ 'a' in 'cat' }}{{ 'z' not in ['a'] }}{{ 'k' in {'k': 1} }}",
            "{{ not 1 }}{{ 0 or 'x' }}{{ 1 and 'y' }}{{ none or [] }}{{ 'yes' if 1 else 'no' }}{{ 'yes' if 0 }}|{{ - 3 }}{{ +3 }}{{ -(1.5) }}",
            "{{ 0.1 + 0.2 }} {{ 1 / 3 }} {{ 1e16 }} {{ 1e15 }} {{ 1.5e-5 }} {{ 0.0001 }} {{ 100.0 }} {{ 3.14 }} {{ -0.0 }} {{ 2.5e300 * 1e10 }} {{ 1e22 }} {{ 123456789012345678 }}",
            "{{ messages[1].content[0:3] }}|{{ messages[1].content[::-1] }}|{{ messages[1].content[-3:] }}|{{ [1, 2, 3, 4, 5][1:4:2] }}|{{ [1, 2, 3][::-1] }}|{{ [1, 2, 3][-10:10] }}|{{ 'abcdef'[5:1:-2] }}|{{ messages[-1].role }}|{{ messages[9] is undefined }}",
            "{{ 'a,b,,c'.split(',') }}{{ ' x  y '.split() }}{{ 'a b c'.split(' ', 1) }}{{ 'a.b.c'.rsplit('.', 1) }}{{ '  pad '.strip() }}|{{ 'xxhixx'.lstrip('x') }}|{{ 'hi  '.rstrip() }}|",
            "{{ 'abc'.startswith('a') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'hello world'.title() }}{{ 'Hi'.upper() }}{{ 'Hi'.lower() }}{{ 'a-b'.replace('-', '+') }}{{ 'abcb'.find('b') }}{{ 'abcb'.rfind('b') }}{{ 'abcb'.count('b') }}{{ '-'.join(['x', 'y']) }}{{ '{} and {}'.format(1, 'two') }}",
            "{{ {'a': 1}.get('a') }}{{ {'a': 1}.get('b') }}{{ {'a': 1}.get('b', 2) }}{{ {'a': 1, 'b': 2}.keys() | list }}{{ {'a': 1}.values() | list }}{{ {'a': 1}['a'] }}{{ {'a': 1}.a }}{{ messages[0]['role'] }}",
            "{{ (1, 2) }}{{ (1,) }}{{ () }}{{ [1, (2, 3)] }}{{ {'a': 'it\\'s', 'b': \"q\\\"\"} }}{{ ['\\n', '\\u00e9', '\\u200b', '\\\\'] }}",
            "{{ 'ab' 'cd' }}{{ \"\\x41\\u00e9\\U0001F600\\t|\" }}{{ 0x1F }}{{ 0o17 }}{{ 0b101 }}{{ 1_000 }}{{ 1.5e3 }}",
            "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('a') }} {{ greet('b', '?') }} {{ greet(punct='.', name='c') }}",
            "{% macro wrap() %}[{{ caller() }}]{% endmacro %}{% call wrap() %}inner {{ 1 + 1 }}{% endcall %}",
            "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = (3, 4) %}{{ t[0] + t[1] }}{% with z = 5 %}{{ z }}{% endwith %}{{ z is defined }}",
            "{{ messages[1].content | length }} {{ messages[1].content[6] }} {{ messages[1].content[-1] }} {{ messages[1].content | upper }}",
            "{% if messages[0].role == 'system' %}{% set sys = messages[0].content %}{% set rest = messages[1:] %}{% else %}{% set rest = messages %}{% endif %}{{ sys }}{{ rest | length }}",
            "{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %H:%M') }}",
            "{{ raise_exception('roles must alternate') }}",
            "{{ messages[0].content.nope.deeper }}",
            "{{ x + 1 }}",
            "{% for %}",
            "{% if true %}unterminated",
            "{{ 1 / 0 }}",
            "{{ messages.append(1) }}",
            "{{ range(100001) | length }}");
}

/* Divergences once found by random differential testing against jinja2, kept as cases. */
Test(jinja, python_corner_cases)
{
    COMPARE("{{ 'range(0, 3) x_y, z' | wordcount }}{{ 2.5 is even }}{{ 4.0 is even }}{{ 3.0 is odd }}{{ 1 | round }}{{ true | round(1) }}{{ 2.5 | round }}",
            "{{ range(3) }}{{ range(1, 9, 2) }}{{ range(3) | list }}{{ range(3) | length }}",
            "{% set ns = namespace(a=1) %}{{ ns['a'] }}{{ ns[0] is undefined }}",
            "{% set ns = namespace(a=1) %}{{ ns[1:] }}",
            "{{ [1] in {'a': 1} }}",
            "{{ {'a': 1} | indent }}",
            "{{ none | selectattr('x') | list }}{{ none | map(attribute='x') | list }}{{ '' | reject | list }}",
            "{{ none[1:] }}{{ 1[0] }}{{ none.attr }}{{ messages[0].content.nope }}|",
            "{{ x is sequence }}{{ (1 and x) is sequence }}",
            "{{ x | int }}",
            "{{ x | float }}",
            "{{ messages | selectattr('role') | length }}",
            "{{ ('<b>' | safe) + '<i>' }}{{ '<i>' + ('<b>' | safe) }}{{ ('<b>' | safe) ~ '<i>' }}{{ '<&>' | escape | escape }}");
}

/* ------------------------------------------------------------------ exact expectations */

static char *render_simple(const char *tmpl, char *err, size_t err_len)
{
    json_t *msgs = json_loads("[{\"role\":\"user\",\"content\":\"hi\"}]", 0, NULL);
    qfit_chat_input in = { .messages = msgs, .think = -1, .bos_token = "<s>", .eos_token = "</s>" };
    char *out = NULL;
    int rc = qfit_template_render_jinja(tmpl, &in, &out, err, err_len);
    json_decref(msgs);
    return rc == 0 ? out : NULL;
}

static void expect_error(const char *tmpl, const char *needle)
{
    char err[512] = "";
    char *out = render_simple(tmpl, err, sizeof err);
    cr_expect_null(out, "'%.60s' should fail, rendered %.60s", tmpl, out ? out : "");
    free(out);
    cr_expect(strstr(err, needle), "'%.60s': error '%s' should mention '%s'", tmpl, err, needle);
}

Test(jinja, exact_outputs)
{
    /* independent of the reference: a few outputs known by heart */
    static const struct { const char *t, *want; } cases[] = {
        { "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{{ eos_token }}", "<s>[user]hi</s>" },
        { "{% if true %}\n  x\n{% endif %}\n", "  x\n" },
        { "  {% if true %}\nyes\n  {% endif %}\nend", "yes\nend" },
        { "{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e-05 }} {{ 2.0 }}", "0.30000000000000004 1e+16 1e-05 2.0" },
        { "{{ {'a': [1, 'x']} | tojson(indent=2) }}", "{\n  \"a\": [\n    1,\n    \"x\"\n  ]\n}" },
        { "{{ 'héllo👋'[1:3] }}{{ 'héllo👋' | length }}", "él6" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[512] = "";
        char *out = render_simple(cases[i].t, err, sizeof err);
        cr_expect(out && !strcmp(out, cases[i].want), "'%s' rendered '%s' (%s), want '%s'",
                  cases[i].t, out ? out : "(null)", err, cases[i].want);
        free(out);
    }
}

Test(jinja, errors_name_the_problem)
{
    expect_error("{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}",
                 "Conversation roles must alternate");
    expect_error("a\nb\n{% if %}", "line 3");
    expect_error("{{ x.y }}", "'x' is undefined");
    expect_error("{% endfor %}", "endfor");
    expect_error("{{ 'a' | nosuchfilter }}", "nosuchfilter");
    expect_error("{{ 1 is nosuchtest }}", "nosuchtest");
}

/* ------------------------------------------------------------------ sandbox and bounds */

Test(jinja, sandbox_refuses_non_data_attributes)
{
    expect_error("{{ ''.__class__ }}", "__class__");
    expect_error("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe");
    expect_error("{{ messages.__class__ }}", "unsafe");
    expect_error("{{ messages['__class__'] }}", "unsafe");
    expect_error("{{ range.__globals__ }}", "unsafe");
    expect_error("{{ messages.append(1) }}", "unsafe");
    expect_error("{{ messages[0].update({'a': 1}) }}", "unsafe");
    expect_error("{{ ''.zfill(3) }}", "not supported");
}

Test(jinja, bounds_stop_runaway_templates, .timeout = 60)
{
    /* infinite recursion through a macro */
    expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursion");
    /* a 10^8-iteration loop: the sandbox's range limit */
    expect_error("{% for i in range(100000000) %}{% endfor %}", "Range too big");
    /* 10^10 iterations from nested loops: the step limit */
    expect_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "steps");
    /* output bigger than QFIT_TEMPLATE_MAX_OUTPUT */
    expect_error("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", "QFIT_TEMPLATE_MAX_OUTPUT");
    /* exponential string growth hits the memory limit, never the machine */
    expect_error("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
                 "");
    /* deep nesting in the parser */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 16);
    size_t k = 0;
    k += (size_t)sprintf(deep, "{{ ");
    for (size_t i = 0; i < depth; i++) deep[k++] = '(';
    deep[k++] = '1';
    for (size_t i = 0; i < depth; i++) deep[k++] = ')';
    strcpy(deep + k, " }}");
    expect_error(deep, "nested");
    free(deep);
    /* a 10 MB template of text: output limit */
    size_t big = 10u << 20;
    char *t = malloc(big + 1);
    memset(t, 'a', big);
    t[big] = 0;
    expect_error(t, "QFIT_TEMPLATE_MAX_OUTPUT");
    /* a 10 MB template of statements: parsed and run within the step limit */
    for (size_t i = 0; i + 9 < big; i += 9) memcpy(t + i, "{{ 1 }}  ", 9);
    t[big - (big % 9)] = 0;
    char err[512] = "";
    char *out = render_simple(t, err, sizeof err);
    cr_expect(out || err[0], "10 MB template: neither output nor error");
    free(out);
    free(t);
}
