/* Suite modelfile: the Modelfile parser and printer and the typed parameters.
 * Reference: Ollama's parser tests (tests/data/modelfile/ollama_cases.txt, see
 * its README), Ollama's quoting rule and option types (api/types.go), and the
 * round trip print -> parse on tricky values. */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qfit/modelfile.h"
#include "util/testutil.h"

/* ------------------------------------------------------------ helpers */

static void put_esc(FILE *f, const char *v)
{
    for (const char *c = v; *c; c++) {
        if (*c == '\\') fputs("\\\\", f);
        else if (*c == '\n') fputs("\\n", f);
        else if (*c == '\r') fputs("\\r", f);
        else if (*c == '\t') fputs("\\t", f);
        else fputc(*c, f);
    }
}

/* A canonical text of m, one line per item (the `--- expect` format of the data file). */
static char *dump(const qfit_modelfile *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
#define FIELD(label, v) do { if (v) { fputs(label "=", f); put_esc(f, v); fputc('\n', f); } } while (0)
    FIELD("FROM", m->from);
    FIELD("TEMPLATE", m->tmpl);
    FIELD("SYSTEM", m->system);
    FIELD("REQUIRES", m->requires);
    for (size_t i = 0; i < qfit_params_count(m->params); i++) {
        const qfit_param *e = qfit_params_at(m->params, i);
        if (e->type == QFIT_PARAM_STRINGS) {
            for (size_t k = 0; k < e->nstrs; k++) {
                fprintf(f, "PARAMETER %s=", e->name);
                put_esc(f, e->strs[k]);
                fputc('\n', f);
            }
        } else {
            char *t = qfit_params_value_text(e);
            fprintf(f, "PARAMETER %s=%s\n", e->name, t);
            free(t);
        }
    }
    for (size_t i = 0; i < m->nlicenses; i++) FIELD("LICENSE", m->licenses[i]);
    for (size_t i = 0; i < m->nmessages; i++) {
        fprintf(f, "MESSAGE %s=", m->messages[i].role);
        put_esc(f, m->messages[i].content);
        fputc('\n', f);
    }
#undef FIELD
    fclose(f);
    return buf;
}

/* Parse s (strlen) and return dump() or "ERROR <message>". */
static char *parse_dump(const char *s, size_t len)
{
    char err[512] = "";
    qfit_modelfile *m = qfit_modelfile_parse(s, len, NULL, err, sizeof err);
    if (!m) {
        char *r = NULL;
        cr_assert(asprintf(&r, "ERROR %s", err) > 0);
        return r;
    }
    char *d = dump(m);
    qfit_modelfile_free(m);
    return d;
}

static void expect_error(const char *input, const char *msg)
{
    char *got = parse_dump(input, strlen(input));
    char *want = NULL;
    cr_assert(asprintf(&want, "ERROR %s", msg) > 0);
    cr_expect_str_eq(got, want, "input:\n%s\ngot:  %s\nwant: %s", input, got, want);
    free(got);
    free(want);
}

static void expect_parse(const char *input, const char *dumped)
{
    char *got = parse_dump(input, strlen(input));
    cr_expect_str_eq(got, dumped, "input:\n%s\ngot:\n%s\nwant:\n%s", input, got, dumped);
    free(got);
}

static qfit_modelfile *parse_ok(const char *s, qfit_warnings *w)
{
    char err[512] = "";
    qfit_modelfile *m = qfit_modelfile_parse(s, strlen(s), w, err, sizeof err);
    cr_assert(m, "parse failed: %s\ninput:\n%s", err, s);
    return m;
}

/* print -> parse gives m back; returns the printed text. */
static char *roundtrip(const qfit_modelfile *m)
{
    char err[512] = "";
    char *text = qfit_modelfile_print(m, "x:latest", err, sizeof err);
    cr_assert(text, "print failed: %s", err);
    qfit_modelfile *back = qfit_modelfile_parse(text, strlen(text), NULL, err, sizeof err);
    cr_assert(back, "printed text does not parse: %s\n%s", err, text);
    char *a = dump(m), *b = dump(back);
    cr_expect_str_eq(b, a, "printed:\n%s", text);
    cr_expect(qfit_modelfile_equal(m, back));
    free(a);
    free(b);
    qfit_modelfile_free(back);
    return text;
}

/* ------------------------------------------------ Ollama's test vectors */

Test(modelfile, ollama_vectors)
{
    char *data = tu_read_file("tests/data/modelfile/ollama_cases.txt", NULL);
    cr_assert(data, "tests/data/modelfile/ollama_cases.txt not found (run from the repository root)");
    int cases = 0, roundtrips = 0;
    char *p = strstr(data, "=== ");
    while (p && strncmp(p, "=== end\n", 8) != 0) {
        char *name = p + 4, *nl = strchr(name, '\n');
        cr_assert(nl && strncmp(nl + 1, "--- input\n", 10) == 0, "bad case header near %.40s", p);
        *nl = '\0';
        char *input = nl + 11;
        char *mark = strstr(input - 1, "\n--- ");
        cr_assert(mark, "case %s: no result section", name);
        size_t input_len = (size_t)(mark - input);
        bool is_error = strncmp(mark, "\n--- error\n", 11) == 0;
        cr_assert(is_error || strncmp(mark, "\n--- expect\n", 12) == 0, "case %s: bad section", name);
        char *want = mark + (is_error ? 11 : 12);
        char *next = strstr(want, "\n=== ");
        cr_assert(next, "case %s: unterminated", name);
        want = strndup(want, (size_t)(next + 1 - want));   /* lines ending in '\n' */
        char *input_copy = strndup(input, input_len);
        char *got = parse_dump(input_copy, input_len);
        if (is_error) {
            char *w = strndup(want, strlen(want) - 1);
            char *full = NULL;
            cr_assert(asprintf(&full, "ERROR %s", w) > 0);
            cr_expect_str_eq(got, full, "case %s\ngot:  %s\nwant: %s", name, got, full);
            free(w);
            free(full);
        } else {
            cr_expect_str_eq(got, want, "case %s\ngot:\n%s\nwant:\n%s", name, got, want);
            qfit_modelfile *m = qfit_modelfile_parse(input_copy, input_len, NULL, NULL, 0);
            if (m) {
                free(roundtrip(m));   /* Ollama's TestParseFileFormatParseFile, on every valid case */
                roundtrips++;
                qfit_modelfile_free(m);
            }
        }
        free(got);
        free(want);
        free(input_copy);
        cases++;
        p = next + 1;
    }
    cr_expect_eq(cases, 79, "cases read: %d", cases);
    cr_expect_eq(roundtrips, 65, "round trips: %d", roundtrips);
    free(data);
}

/* ---------------------------------------------------------------- lexing */

#define UNKNOWN_TAIL " (expected FROM, PARAMETER, TEMPLATE, SYSTEM, MESSAGE, LICENSE, REQUIRES or ROUTE)"

Test(modelfile, bom_comments_blank_lines_case)
{
    expect_parse("\xEF\xBB\xBF" "from a\n\n   # a comment: SYSTEM x\n\tsYsTeM hi # not a comment\n#FROM b\n",
                 "FROM=a\nSYSTEM=hi # not a comment\n");
    /* '#' is a comment only at instruction position, never inside a (multi-line) value */
    expect_parse("FROM a\nSYSTEM \"\"\"line one\n# still the value\n  #also\"\"\"\n",
                 "FROM=a\nSYSTEM=line one\\n# still the value\\n  #also\n");
    expect_parse("FROM a\nSYSTEM #\n", "FROM=a\nSYSTEM=#\n");
    expect_parse("FROM a\nPARAMETER stop #\n", "FROM=a\nPARAMETER stop=#\n");
}

Test(modelfile, crlf_and_tabs)
{
    expect_parse("FROM a\r\nSYSTEM hi \r\nPARAMETER\tstop\t</s>\t\r\n", "FROM=a\nSYSTEM=hi\nPARAMETER stop=</s>\n");
    /* CR LF inside a quoted value is kept verbatim (Ollama keeps it) */
    expect_parse("FROM a\r\nSYSTEM \"x\r\ny\"\r\n", "FROM=a\nSYSTEM=x\\r\\ny\n");
    /* CRLF is one line: the error is on line 3 */
    expect_error("FROM a\r\n\r\nBAD x\r\n", "modelfile:3:1: unknown instruction 'BAD'" UNKNOWN_TAIL);
}

Test(modelfile, quoted_value_rules)
{
    /* a "..." value ends at the first line whose text so far ends with a quote */
    expect_parse("FROM a\nSYSTEM \"a\" b \"c\"\n", "FROM=a\nSYSTEM=a\" b \"c\n");
    expect_parse("FROM a\nSYSTEM \"one\ntwo\"   \nLICENSE x", "FROM=a\nSYSTEM=one\\ntwo\nLICENSE=x\n");
    /* unquoted text containing quotes stays as written */
    expect_parse("FROM a\nSYSTEM say \"hi\"\n", "FROM=a\nSYSTEM=say \"hi\"\n");
    /* """ may contain " and "" at line ends */
    expect_parse("FROM a\nSYSTEM \"\"\"x\"\ny\"\"\nz\"\"\"\n", "FROM=a\nSYSTEM=x\"\\ny\"\"\\nz\n");
    /* an empty value after a blank, as Ollama: `SYSTEM ` */
    expect_parse("FROM a\nSYSTEM \nMESSAGE user \n", "FROM=a\nSYSTEM=\nMESSAGE user=\n");
    /* unicode kept, including characters Ollama would drop (NBSP, zero-width space) */
    expect_parse("FROM a\nSYSTEM \xC2\xA0x\xE2\x80\x8B\n", "FROM=a\nSYSTEM=\xC2\xA0x\xE2\x80\x8B\n");
}

/* -------------------------------------------------- errors: line:column */

Test(modelfile, errors_line_column)
{
    expect_error("FROM foo\nSYSTEM \"\"\"abc\n\n", "modelfile:2:8: unterminated \"\"\" value: no closing \"\"\" before the end of the file");
    expect_error("FROM foo\nPARAMETER temperature abc", "modelfile:2:23: invalid float value for temperature: 'abc'");
    expect_error("FROM foo\nPARAMETER num_ctx 1.5", "modelfile:2:19: invalid int value for num_ctx: '1.5'");
    expect_error("FROM foo\nPARAMETER num_ctx 99999999999999999999",
                 "modelfile:2:19: invalid int value for num_ctx: '99999999999999999999' (out of range)");
    expect_error("FROM foo\nPARAMETER   foo 1", "modelfile:2:13: unknown parameter 'foo'");
    expect_error("FROM foo\nPARAMETER Temperature 1", "modelfile:2:11: unknown parameter 'Temperature'");
    expect_error("FROM foo\nPARAMETER temp-erature 1", "modelfile:2:15: PARAMETER: unexpected character '-'");
    expect_error("FROM foo\nPARAMETER \n", "modelfile:2:11: PARAMETER: missing parameter name");
    /* lines after a multi-line value are counted */
    expect_error("FROM foo\nSYSTEM \"\"\"a\nb\nc\"\"\"\n  BAD x", "modelfile:5:3: unknown instruction 'BAD'" UNKNOWN_TAIL);
    expect_error("FROM foo\n1FROM x", "modelfile:2:1: unknown instruction '1FROM'" UNKNOWN_TAIL);
    expect_error("FROM:x", "modelfile:1:1: unknown instruction 'FROM:x'" UNKNOWN_TAIL);
    expect_error("FROM", "modelfile:1:5: FROM: missing value");
    expect_error("FROM \"\"", "modelfile:1:6: FROM needs a model name or a path");
    expect_error("FROM a\nFROM b", "modelfile:2:1: a second FROM (the first is at line 1): qfit does not support "
                 "projectors or several model files");
    expect_error("FROM a\nSYSTEM x\n\nsystem y", "modelfile:4:1: SYSTEM given twice (first at line 2)");
    expect_error("FROM a\nTEMPLATE x\nTEMPLATE y", "modelfile:3:1: TEMPLATE given twice (first at line 2)");
    expect_error("FROM a\nMESSAGE tool hi", "modelfile:2:9: message role must be one of \"system\", \"user\", or \"assistant\"");
    expect_error("FROM a\nMESSAGE User hi", "modelfile:2:9: message role must be one of \"system\", \"user\", or \"assistant\"");
    expect_error("FROM a\nADAPTER ./lora.gguf", "modelfile:2:1: ADAPTER is not supported: qfit cannot apply LoRA "
                 "adapters (merge the adapter into the model weights first)");
    expect_error("FROM a\n  adapter x", "modelfile:2:3: ADAPTER is not supported: qfit cannot apply LoRA "
                 "adapters (merge the adapter into the model weights first)");
    /* columns count characters, not bytes; a BOM is not a column */
    expect_error("FROM foo\nSYSTEM \"\xC3\xA9\x01\"", "modelfile:2:10: control character U+0001 is not allowed");
    expect_error("\xEF\xBB\xBF\tBAD x", "modelfile:1:2: unknown instruction 'BAD'" UNKNOWN_TAIL);
    expect_error("FROM foo\nSYSTEM a\xFF" "b", "modelfile:2:9: invalid UTF-8 (byte 0xFF)");
    expect_error("FROM foo\nSYSTEM \xED\xA0\x80", "modelfile:2:8: invalid UTF-8 (byte 0xED)");   /* a surrogate */
    expect_error("FROM foo\nSYSTEM \xC0\xAF", "modelfile:2:8: invalid UTF-8 (byte 0xC0)");        /* overlong */
    char nul[] = "FROM a\nSYSTEM x\0y";
    char *got = parse_dump(nul, sizeof nul - 1);
    cr_expect_str_eq(got, "ERROR modelfile:2:9: control character U+0000 is not allowed");
    free(got);
}

Test(modelfile, requires_semver)
{
    static const char *const good[][2] = {
        { "0.14.0", "0.14.0" }, { "v0.14.0", "0.14.0" }, { "1", "1" }, { "v1.2", "1.2" },
        { "1.2.3-rc.1+build.5", "1.2.3-rc.1+build.5" }, { "1.0.0-alpha-1", "1.0.0-alpha-1" },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char in[128], want[128];
        snprintf(in, sizeof in, "FROM a\nREQUIRES %s\n", good[i][0]);
        snprintf(want, sizeof want, "FROM=a\nREQUIRES=%s\n", good[i][1]);
        expect_parse(in, want);
    }
    static const char *const bad[] = { "01.2.3", "1.2.3-01", "1.2-rc", "v", "1.2.3.4", "1.2.3-", "1.2.3+", "vv1.0.0", "x1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char in[128], want[160];
        snprintf(in, sizeof in, "FROM a\nREQUIRES %s\n", bad[i]);
        snprintf(want, sizeof want, "modelfile:2:10: requires must be a valid semver (e.g. 0.14.0), got '%s'", bad[i]);
        expect_error(in, want);
    }
    expect_error("FROM a\nREQUIRES 1\nREQUIRES 2", "modelfile:3:1: REQUIRES given twice (first at line 2)");
}

/* Ollama's TestParseFileUTF16ParseFile and TestParseMultiByte: UTF-16 with a BOM */
static size_t to_utf16(const char *utf8, bool le, char *out)
{
    size_t n = 0;
    out[n++] = le ? '\xFF' : '\xFE';
    out[n++] = le ? '\xFE' : '\xFF';
    const unsigned char *s = (const unsigned char *)utf8;
    while (*s) {
        unsigned cp;
        if (*s < 0x80) cp = *s++;
        else if (*s < 0xE0) cp = (s[0] & 0x1Fu) << 6 | (s[1] & 0x3F), s += 2;
        else if (*s < 0xF0) cp = (s[0] & 0x0Fu) << 12 | (s[1] & 0x3Fu) << 6 | (s[2] & 0x3F), s += 3;
        else cp = (s[0] & 0x07u) << 18 | (s[1] & 0x3Fu) << 12 | (s[2] & 0x3Fu) << 6 | (s[3] & 0x3F), s += 4;
        unsigned units[2] = { cp, 0 }, k = 1;
        if (cp >= 0x10000) units[0] = 0xD800 + ((cp - 0x10000) >> 10), units[1] = 0xDC00 + ((cp - 0x10000) & 0x3FF), k = 2;
        for (unsigned i = 0; i < k; i++) {
            out[n++] = (char)(le ? units[i] & 0xFF : units[i] >> 8);
            out[n++] = (char)(le ? units[i] >> 8 : units[i] & 0xFF);
        }
    }
    return n;
}

Test(modelfile, utf16_with_bom)
{
    char buf[512];
    for (int le = 0; le < 2; le++) {
        size_t n = to_utf16("FROM bob\nPARAMETER num_ctx 1\nPARAMETER top_k 4096\nSYSTEM You are a utf16 file.\n", le, buf);
        char *got = parse_dump(buf, n);
        cr_expect_str_eq(got, "FROM=bob\nSYSTEM=You are a utf16 file.\nPARAMETER num_ctx=1\nPARAMETER top_k=4096\n");
        free(got);
        n = to_utf16("FROM test\n\tSYSTEM \xE4\xBD\xA0\xE5\xA5\xBD\xF0\x9F\x91\x8B", le, buf);
        got = parse_dump(buf, n);
        cr_expect_str_eq(got, "FROM=test\nSYSTEM=\xE4\xBD\xA0\xE5\xA5\xBD\xF0\x9F\x91\x8B\n");
        free(got);
        /* errors keep line:column (characters) */
        n = to_utf16("FROM a\n\xE4\xBD\xA0 x", le, buf);
        got = parse_dump(buf, n);
        cr_expect_str_eq(got, "ERROR modelfile:2:1: unknown instruction '\xE4\xBD\xA0'"
                              " (expected FROM, PARAMETER, TEMPLATE, SYSTEM, MESSAGE, LICENSE, REQUIRES or ROUTE)");
        free(got);
    }
    /* an unpaired surrogate, an odd length, a NUL */
    {
        static const struct { const char *in; size_t n; const char *msg; } bad[] = {
            { "\xFF\xFE" "F\0\n\0a\0\x00\xD8" "b\0", 12, "ERROR modelfile:2:2: invalid UTF-16: an unpaired surrogate" },
            { "\xFF\xFE" "F\0R\0O", 7, "ERROR modelfile:1:3: invalid UTF-16: an odd number of bytes" },
            { "\xFE\xFF" "\0F\0\0", 6, "ERROR modelfile:1:2: invalid UTF-16: a NUL character" },
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            char *got = parse_dump(bad[i].in, bad[i].n);
            cr_expect_str_eq(got, bad[i].msg);
            free(got);
        }
    }
}

/* ------------------------------------------------------------ parameters */

static void expect_param(const char *name, const char *value, const char *text)
{
    qfit_params *p = qfit_params_new();
    char err[256] = "";
    cr_assert_eq(qfit_params_set_string(p, name, value, NULL, err, sizeof err), 1, "%s %s: %s", name, value, err);
    char *t = qfit_params_value_text(qfit_params_get(p, name));
    cr_expect_str_eq(t, text, "%s '%s'", name, value);
    free(t);
    qfit_params_free(p);
}

static void expect_param_error(const char *name, const char *value, const char *msg)
{
    qfit_params *p = qfit_params_new();
    char err[256] = "";
    cr_expect_eq(qfit_params_set_string(p, name, value, NULL, err, sizeof err), -1, "%s '%s' accepted", name, value);
    cr_expect_str_eq(err, msg);
    cr_expect_eq(qfit_params_count(p), 0);
    qfit_params_free(p);
}

Test(modelfile, param_int)
{
    expect_param("num_ctx", "4096", "4096");
    expect_param("seed", "-1", "-1");
    expect_param("seed", "+7", "7");
    expect_param("seed", "9223372036854775807", "9223372036854775807");
    expect_param("seed", "-9223372036854775808", "-9223372036854775808");
    expect_param("num_ctx", "007", "7");
    expect_param_error("seed", "9223372036854775808", "invalid int value for seed: '9223372036854775808' (out of range)");
    expect_param_error("seed", "-9223372036854775809", "invalid int value for seed: '-9223372036854775809' (out of range)");
    static const char *const bad[] = { "1.5", "abc", "", "1e3", "0x10", "1_000", "- 1", "+", "4096k", "１" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char msg[128];
        snprintf(msg, sizeof msg, "invalid int value for top_k: '%s'", bad[i]);
        expect_param_error("top_k", bad[i], msg);
    }
}

Test(modelfile, param_float)
{
    expect_param("temperature", "0.7", "0.7");
    expect_param("temperature", "1", "1");
    expect_param("top_p", ".5", "0.5");
    expect_param("top_p", "5.", "5");
    expect_param("min_p", "1e-3", "0.001");
    expect_param("min_p", "-0", "-0");
    expect_param("repeat_penalty", "1.1", "1.1");
    expect_param("temperature", "0.1000000000000000055511151231257827", "0.1");
    expect_param("temperature", "3.4028234e38", "3.4028235e+38");   /* FLT_MAX */
    expect_param("temperature", "1e-50", "0");                       /* underflow, as Go's ParseFloat */
    expect_param_error("temperature", "1e39", "invalid float value for temperature: '1e39' (out of range)");
    static const char *const bad[] = { "abc", "", "nan", "NaN", "inf", "-Infinity", "0x1p3", "1,5", "1.2.3", "e5", ".", "1e", "0.7 " };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char msg[128];
        snprintf(msg, sizeof msg, "invalid float value for temperature: '%s'", bad[i]);
        expect_param_error("temperature", bad[i], msg);
    }
}

Test(modelfile, param_bool)
{
    static const char *const t[] = { "1", "t", "T", "TRUE", "true", "True" };
    static const char *const f[] = { "0", "f", "F", "FALSE", "false", "False" };
    for (int i = 0; i < 6; i++) {
        expect_param("use_mmap", t[i], "true");
        expect_param("use_mmap", f[i], "false");
    }
    static const char *const bad[] = { "yes", "no", "TRue", "", "2", "on" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char msg[128];
        snprintf(msg, sizeof msg, "invalid bool value for use_mmap: '%s' (expected true or false)", bad[i]);
        expect_param_error("use_mmap", bad[i], msg);
    }
}

Test(modelfile, param_table_types)
{
    /* every name of Ollama's options table, with its Go type */
    static const struct { const char *n; qfit_param_type t; } opts[] = {
        { "num_ctx", QFIT_PARAM_INT }, { "num_batch", QFIT_PARAM_INT }, { "num_gpu", QFIT_PARAM_INT },
        { "main_gpu", QFIT_PARAM_INT }, { "use_mmap", QFIT_PARAM_BOOL }, { "num_thread", QFIT_PARAM_INT },
        { "draft_num_predict", QFIT_PARAM_INT }, { "num_keep", QFIT_PARAM_INT }, { "seed", QFIT_PARAM_INT },
        { "num_predict", QFIT_PARAM_INT }, { "top_k", QFIT_PARAM_INT }, { "top_p", QFIT_PARAM_FLOAT },
        { "min_p", QFIT_PARAM_FLOAT }, { "typical_p", QFIT_PARAM_FLOAT }, { "repeat_last_n", QFIT_PARAM_INT },
        { "temperature", QFIT_PARAM_FLOAT }, { "repeat_penalty", QFIT_PARAM_FLOAT },
        { "presence_penalty", QFIT_PARAM_FLOAT }, { "frequency_penalty", QFIT_PARAM_FLOAT },
        { "stop", QFIT_PARAM_STRINGS },
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        qfit_param_type t = (qfit_param_type)-1;
        cr_expect_eq(qfit_params_lookup(opts[i].n, &t), 1, "%s", opts[i].n);
        cr_expect_eq(t, opts[i].t, "%s", opts[i].n);
    }
    static const char *const dep[] = { "penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only",
                                       "use_mlock", "mirostat", "mirostat_tau", "mirostat_eta" };
    for (size_t i = 0; i < sizeof dep / sizeof dep[0]; i++) cr_expect_eq(qfit_params_lookup(dep[i], NULL), 0, "%s", dep[i]);
    static const char *const unknown[] = { "numa", "tfs_z", "num_gqa", "Temperature", "", "stop " };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        cr_expect_eq(qfit_params_lookup(unknown[i], NULL), -1, "%s", unknown[i]);
}

Test(modelfile, deprecated_warn_and_skip)
{
    qfit_warnings w = { 0 };
    qfit_modelfile *m = parse_ok("FROM a\nPARAMETER mirostat 2\nPARAMETER temperature 0.5\n  PARAMETER penalize_newline oops\n", &w);
    cr_assert_eq(w.count, 2);
    cr_expect_str_eq(w.msgs[0], "modelfile:2:11: parameter mirostat is deprecated and ignored");
    cr_expect_str_eq(w.msgs[1], "modelfile:4:13: parameter penalize_newline is deprecated and ignored");
    cr_expect_eq(qfit_params_count(m->params), 1);
    cr_expect_null(qfit_params_get(m->params, "mirostat"));
    qfit_modelfile_free(m);
    qfit_warnings_free(&w);

    /* the string API: warning, nothing set, return 0 */
    qfit_params *p = qfit_params_new();
    char err[128];
    cr_expect_eq(qfit_params_set_string(p, "use_mlock", "true", &w, err, sizeof err), 0);
    cr_assert_eq(w.count, 1);
    cr_expect_str_eq(w.msgs[0], "parameter use_mlock is deprecated and ignored");
    cr_expect_eq(qfit_params_count(p), 0);
    cr_expect_eq(qfit_params_set_string(p, "numa", "true", &w, err, sizeof err), -1);
    cr_expect_str_eq(err, "unknown parameter 'numa'");
    qfit_params_free(p);
    qfit_warnings_free(&w);
}

Test(modelfile, stop_accumulates_later_value_overrides)
{
    qfit_modelfile *m = parse_ok("FROM a\nPARAMETER stop <|eot_id|>\nPARAMETER temperature 0.5\n"
                                 "PARAMETER stop \"<|start_header_id|> \"\nPARAMETER temperature 0.25\n", NULL);
    char *d = dump(m);
    cr_expect_str_eq(d, "FROM=a\nPARAMETER stop=<|eot_id|>\nPARAMETER stop=<|start_header_id|> \nPARAMETER temperature=0.25\n");
    free(d);
    qfit_modelfile_free(m);
}

Test(modelfile, merge_overrides_and_replaces_stop)
{
    qfit_params *base = qfit_params_new(), *over = qfit_params_new();
    char err[128];
    cr_assert_eq(qfit_params_set_string(base, "temperature", "0.8", NULL, err, sizeof err), 1);
    cr_assert_eq(qfit_params_set_string(base, "stop", "a", NULL, err, sizeof err), 1);
    cr_assert_eq(qfit_params_set_string(base, "stop", "b", NULL, err, sizeof err), 1);
    cr_assert_eq(qfit_params_set_string(base, "num_ctx", "2048", NULL, err, sizeof err), 1);
    cr_assert_eq(qfit_params_set_string(over, "stop", "c", NULL, err, sizeof err), 1);
    cr_assert_eq(qfit_params_set_string(over, "temperature", "0.5", NULL, err, sizeof err), 1);
    cr_assert_eq(qfit_params_set_string(over, "seed", "42", NULL, err, sizeof err), 1);
    qfit_params *copy = qfit_params_clone(base);
    cr_expect(qfit_params_equal(copy, base));
    cr_assert_eq(qfit_params_merge(base, over, err, sizeof err), 0);
    json_t *j = qfit_params_to_json(base);
    char *s = json_dumps(j, JSON_COMPACT);
    /* insertion order kept; stop replaced as a whole (Ollama's create and request merge) */
    cr_expect_str_eq(s, "{\"temperature\":0.5,\"stop\":[\"c\"],\"num_ctx\":2048,\"seed\":42}");
    cr_expect_not(qfit_params_equal(copy, base));
    free(s);
    json_decref(j);
    qfit_params_free(copy);
    qfit_params_free(base);
    qfit_params_free(over);
}

/* ------------------------------------------------------------------ JSON */

static qfit_params *from_json_text(const char *text, qfit_warnings *w, char *err, size_t err_len)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    cr_assert(j, "bad test JSON: %s", je.text);
    qfit_params *p = qfit_params_from_json(j, w, err, err_len);
    json_decref(j);
    return p;
}

Test(modelfile, json_from_params_layer)
{
    qfit_warnings w = { 0 };
    char err[256] = "";
    qfit_params *p = from_json_text("{\"temperature\":0.7,\"num_ctx\":4096,\"stop\":[\"<|eot_id|>\",\"</s>\"],"
                                    "\"mirostat\":0,\"numa\":true,\"seed\":null,\"num_predict\":128.0,"
                                    "\"use_mmap\":false,\"top_p\":1}", &w, err, sizeof err);
    cr_assert(p, "%s", err);
    cr_assert_eq(w.count, 2);
    cr_expect_str_eq(w.msgs[0], "option \"mirostat\" is deprecated and ignored");
    cr_expect_str_eq(w.msgs[1], "ignoring unknown option \"numa\"");
    cr_expect_eq(qfit_params_count(p), 6);
    cr_expect_eq(qfit_params_get(p, "temperature")->f, 0.7f);
    cr_expect_eq(qfit_params_get(p, "num_ctx")->i, 4096);
    cr_expect_eq(qfit_params_get(p, "num_predict")->i, 128);
    cr_expect_eq(qfit_params_get(p, "top_p")->f, 1.0f);
    cr_expect_eq(qfit_params_get(p, "use_mmap")->b, false);
    cr_expect_null(qfit_params_get(p, "seed"));
    const qfit_param *stop = qfit_params_get(p, "stop");
    cr_assert_eq(stop->nstrs, 2);
    cr_expect_str_eq(stop->strs[1], "</s>");

    /* back to JSON: floats are the double nearest to their shortest float32 text */
    json_t *j = qfit_params_to_json(p);
    cr_expect_eq(json_real_value(json_object_get(j, "temperature")), 0.7);
    cr_expect(json_is_integer(json_object_get(j, "num_ctx")));
    cr_expect(json_is_false(json_object_get(j, "use_mmap")));
    /* the dump flags the header recommends for a params layer */
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
    cr_expect_str_eq(text, "{\"num_ctx\":4096,\"num_predict\":128,\"stop\":[\"<|eot_id|>\",\"</s>\"],"
                           "\"temperature\":0.7,\"top_p\":1.0,\"use_mmap\":false}");
    free(text);
    qfit_params *back = qfit_params_from_json(j, NULL, err, sizeof err);
    cr_expect(qfit_params_equal(p, back));
    json_decref(j);
    qfit_params_free(back);
    qfit_params_free(p);
    qfit_warnings_free(&w);
}

Test(modelfile, json_type_errors)
{
    static const char *const cases[][2] = {
        { "{\"num_ctx\":\"4096\"}", "option \"num_ctx\" must be of type integer" },
        { "{\"num_ctx\":1.5}", "option \"num_ctx\" must be an integer, got 1.5" },
        { "{\"seed\":1e19}", "option \"seed\" must be an integer, got 1e+19" },
        { "{\"temperature\":true}", "option \"temperature\" must be of type float32" },
        { "{\"temperature\":1e39}", "option \"temperature\" value 1e+39 is out of range for float32" },
        { "{\"use_mmap\":1}", "option \"use_mmap\" must be of type boolean" },
        { "{\"stop\":\"x\"}", "option \"stop\" must be of type array" },
        { "{\"stop\":[\"a\",1]}", "option \"stop\" must be an array of strings" },
        { "{\"stop\":[\"a\\u0000b\"]}", "option \"stop\" value 0 contains a NUL character" },
        { "[1]", "parameters must be a JSON object" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        qfit_params *p = from_json_text(cases[i][0], NULL, err, sizeof err);
        cr_expect_null(p, "%s accepted", cases[i][0]);
        cr_expect_str_eq(err, cases[i][1]);
        qfit_params_free(p);
    }
}

/* -------------------------------------------------------------- printer */

Test(modelfile, print_exact_form)
{
    qfit_modelfile *m = parse_ok(
        "FROM /models/blobs/sha256-abc\n"
        "TEMPLATE \"\"\"{{ if .System }}\"{{ .System }}\"\n{{ end }}\"\"\"\n"
        "SYSTEM You are a pirate.\n"
        "PARAMETER temperature 0.7\nPARAMETER num_ctx 4096\nPARAMETER stop <|eot_id|>\n"
        "PARAMETER stop \"<|start_header_id|> \"\nPARAMETER use_mmap 0\n"
        "LICENSE \"\"\"MIT \"License\"\ntext\"\"\"\nLICENSE Apache\n"
        "MESSAGE user Hi\nMESSAGE assistant \" Ahoy\"\nREQUIRES v0.14.0\n", NULL);
    char err[256];
    char *text = qfit_modelfile_print(m, "pirate:latest", err, sizeof err);
    cr_assert(text, "%s", err);
    cr_expect_str_eq(text,
        "# Modelfile generated by \"qfit show\"\n"
        "# To build a new Modelfile based on this, replace FROM with:\n"
        "# FROM pirate:latest\n"
        "\n"
        "FROM /models/blobs/sha256-abc\n"
        "TEMPLATE \"\"\"{{ if .System }}\"{{ .System }}\"\n{{ end }}\"\"\"\n"
        "SYSTEM You are a pirate.\n"
        "PARAMETER temperature 0.7\n"
        "PARAMETER num_ctx 4096\n"
        "PARAMETER stop <|eot_id|>\n"
        "PARAMETER stop \"<|start_header_id|> \"\n"
        "PARAMETER use_mmap false\n"
        "LICENSE \"\"\"MIT \"License\"\ntext\"\"\"\n"
        "LICENSE Apache\n"
        "MESSAGE user Hi\n"
        "MESSAGE assistant \" Ahoy\"\n"
        "REQUIRES 0.14.0\n");
    free(text);
    text = qfit_modelfile_print(m, NULL, err, sizeof err);
    cr_expect(strncmp(text, "FROM /models/blobs/sha256-abc\n", 30) == 0);
    free(text);
    cr_expect_null(qfit_modelfile_print(m, "bad\nname", err, sizeof err));
    cr_expect_str_eq(err, "model name contains a line break");
    qfit_modelfile_free(m);
}

/* Values Ollama's rule alone would not print so that they read back. */
static const char *const TRICKY[] = {
    "", " ", "  ", "a", " leading", "trailing ", "\tleading tab", "trailing tab\t", "multi\nline", "\nstarts with newline",
    "ends with newline\n", "has \"quotes\" inside", "\"starts with a quote", "ends with a quote\"", "\"both\"", "\"",
    "\"\"", "\"\"\"", "\"\"\"\"", "a\"\"\"b", "\"\"\" x \"\"\"", "# not a comment", "#", "line1\n# not a comment\nline3",
    "unicode \xC3\xBC \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x91\x8B", "\xC2\xA0nbsp\xC2\xA0", "crlf\r\nline", "cr\r", "  \n  ",
    "\"\n\"", "x\"\ny", "a\"\"\nb", "{{ .System }}\"\"\" ", "\n", "\r\n", "\"\"x", "x\"\"", "\"x\ny\"", " \" ", "'single'",
    "PARAMETER stop x", "\nFROM other\n", "a\n\"\"\"b",
};

/* Values no quoting form can carry (no escapes in Modelfiles): the printer must refuse. */
static const char *const UNPRINTABLE[] = {
    "a\"\"\"\nb\"",          /* first line ends in """ and in ": closes both quoted forms early */
    "x\"\"\"\ny\nz\"",
    "\"\"\"\n\"",
    "\"\"\"\nx",            /* """""" closes at once; """"\nx\"" opens a """ value that never closes */
    "bad\x01" "control",     /* the parser refuses control characters */
};

static void fill_all(qfit_modelfile *m, const char *v)
{
    char err[256];
    free(m->system);
    free(m->tmpl);
    m->system = strdup(v);
    m->tmpl = strdup(v);
    cr_assert_eq(qfit_params_set_string(m->params, "stop", v, NULL, err, sizeof err), 1);
    cr_assert_eq(qfit_modelfile_add_license(m, v, err, sizeof err), 0);
    cr_assert_eq(qfit_modelfile_add_message(m, "user", v, err, sizeof err), 0);
}

Test(modelfile, roundtrip_tricky_values)
{
    for (size_t i = 0; i < sizeof TRICKY / sizeof TRICKY[0]; i++) {
        qfit_modelfile *m = qfit_modelfile_new();
        m->from = strdup(TRICKY[i][0] ? TRICKY[i] : "x");
        fill_all(m, TRICKY[i]);
        cr_log_info("tricky value %zu", i);
        free(roundtrip(m));
        qfit_modelfile_free(m);
    }
    /* all of them in one model, with every parameter type */
    qfit_modelfile *m = qfit_modelfile_new();
    m->from = strdup("/path with spaces/model.gguf ");
    m->requires = strdup("1.2.3-rc.1");
    char err[128];
    static const char *const kv[][2] = { { "temperature", "0.1" }, { "top_p", "-0" }, { "min_p", "1e-45" },
                                         { "seed", "-9223372036854775808" }, { "use_mmap", "true" },
                                         { "typical_p", "3.4028235e38" }, { "num_ctx", "0" } };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        cr_assert_eq(qfit_params_set_string(m->params, kv[i][0], kv[i][1], NULL, err, sizeof err), 1, "%s", err);
    for (size_t i = 0; i < sizeof TRICKY / sizeof TRICKY[0]; i++) {
        cr_assert_eq(qfit_params_set_string(m->params, "stop", TRICKY[i], NULL, err, sizeof err), 1);
        cr_assert_eq(qfit_modelfile_add_license(m, TRICKY[i], err, sizeof err), 0);
        cr_assert_eq(qfit_modelfile_add_message(m, i % 3 == 0 ? "system" : i % 3 == 1 ? "user" : "assistant",
                                                TRICKY[i], err, sizeof err), 0);
    }
    free(roundtrip(m));
    qfit_modelfile_free(m);
}

Test(modelfile, printer_refuses_unrepresentable)
{
    for (size_t i = 0; i < sizeof UNPRINTABLE / sizeof UNPRINTABLE[0]; i++) {
        qfit_modelfile *m = qfit_modelfile_new();
        m->from = strdup("x");
        m->system = strdup(UNPRINTABLE[i]);
        char err[256] = "";
        char *text = qfit_modelfile_print(m, NULL, err, sizeof err);
        cr_expect_null(text, "value %zu printed as:\n%s", i, text);
        cr_expect(strncmp(err, "cannot write SYSTEM in a Modelfile: ", 36) == 0, "%s", err);
        free(text);
        qfit_modelfile_free(m);
    }
    qfit_modelfile *m = qfit_modelfile_new();
    char err[256];
    cr_expect_null(qfit_modelfile_print(m, NULL, err, sizeof err));
    cr_expect_str_eq(err, "cannot write a Modelfile without FROM");
    m->from = strdup("x");
    cr_expect_eq(qfit_modelfile_add_message(m, "tool", "hi", err, sizeof err), -1);
    cr_expect_str_eq(err, "message role must be one of \"system\", \"user\", or \"assistant\" (got 'tool')");
    qfit_modelfile_free(m);
}

/* ---------------------------------------------------------------- limits */

Test(modelfile, limits_are_errors)
{
    size_t n = QFIT_MODELFILE_MAX_BYTES + 1;
    char *big = malloc(n);
    memset(big, ' ', n);
    memcpy(big, "FROM a\n", 7);
    char err[256];
    cr_expect_null(qfit_modelfile_parse(big, n, NULL, err, sizeof err));
    cr_expect_str_eq(err, "modelfile:1:1: the Modelfile is larger than 16 MiB");
    /* just under the limit: a 16 MiB - 64 byte SYSTEM value parses (no quadratic scan) */
    n = QFIT_MODELFILE_MAX_BYTES - 64;
    memcpy(big, "FROM a\nSYSTEM \"", 15);
    memset(big + 15, 'x', n - 16);
    for (size_t i = 100; i < n - 16; i += 100) big[i] = '\n';
    big[n - 1] = '"';
    qfit_modelfile *m = qfit_modelfile_parse(big, n, NULL, err, sizeof err);
    cr_assert(m, "%s", err);
    cr_expect_eq(strlen(m->system), n - 16);
    qfit_modelfile_free(m);
    /* too many lines: an unterminated quote followed by 2^20 newlines */
    memcpy(big, "FROM a\nSYSTEM \"", 15);
    memset(big + 15, '\n', QFIT_MODELFILE_MAX_LINES + 1);
    cr_expect_null(qfit_modelfile_parse(big, 15 + QFIT_MODELFILE_MAX_LINES + 1, NULL, err, sizeof err));
    cr_expect_str_eq(err, "modelfile:1048577:1: more than 1048576 lines");
    /* too many instructions */
    size_t len = 0;
    for (unsigned i = 0; i <= QFIT_MODELFILE_MAX_INSTRUCTIONS; i++) len += (size_t)sprintf(big + len, "LICENSE %u\n", i);
    len += (size_t)sprintf(big + len, "FROM a\n");
    cr_expect_null(qfit_modelfile_parse(big, len, NULL, err, sizeof err));
    cr_expect_str_eq(err, "modelfile:65537:1: more than 65536 instructions");
    /* many stop values */
    len = (size_t)sprintf(big, "FROM a\n");
    for (unsigned i = 0; i <= QFIT_PARAMS_MAX_STOP; i++) len += (size_t)sprintf(big + len, "PARAMETER stop s%u\n", i);
    cr_expect_null(qfit_modelfile_parse(big, len, NULL, err, sizeof err));
    cr_expect_str_eq(err, "modelfile:1026:16: too many stop values (at most 1024)");
    free(big);
}

/* ------------------------------------------------------------ files, FROM */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

Test(modelfile, parse_file_names_the_path)
{
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/Modelfile", tu_tmpdir());
    write_file(path, "FROM ./m.gguf\nPARAMETER top_k x\n");
    cr_expect_null(qfit_modelfile_parse_file(path, NULL, err, sizeof err));
    char want[4200];
    snprintf(want, sizeof want, "%s:2:17: invalid int value for top_k: 'x'", path);
    cr_expect_str_eq(err, want);
    write_file(path, "FROM ./m.gguf\nPARAMETER top_k 5\n");
    qfit_modelfile *m = qfit_modelfile_parse_file(path, NULL, err, sizeof err);
    cr_assert(m, "%s", err);
    cr_expect_eq(qfit_params_get(m->params, "top_k")->i, 5);
    qfit_modelfile_free(m);
    snprintf(path, sizeof path, "%s/missing", tu_tmpdir());
    cr_expect_null(qfit_modelfile_parse_file(path, NULL, err, sizeof err));
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    cr_expect_str_eq(err, want);
}

Test(modelfile, resolve_from)
{
    char dir[4096], sub[4200], file[4200], home[4200], err[512];
    cr_assert(realpath(tu_tmpdir(), dir));
    snprintf(sub, sizeof sub, "%s/weights", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    snprintf(file, sizeof file, "%s/m.gguf", dir);
    write_file(file, "x");
    qfit_from_kind kind;
    char *path;

    cr_assert_eq(qfit_modelfile_resolve_from("./m.gguf", dir, &kind, &path, err, sizeof err), 0, "%s", err);
    cr_expect_eq(kind, QFIT_FROM_FILE);
    cr_expect_str_eq(path, file);
    free(path);
    cr_assert_eq(qfit_modelfile_resolve_from("m.gguf", dir, &kind, &path, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(path, file);
    free(path);
    cr_assert_eq(qfit_modelfile_resolve_from("weights", dir, &kind, &path, err, sizeof err), 0, "%s", err);
    cr_expect_eq(kind, QFIT_FROM_DIR);
    cr_expect_str_eq(path, sub);
    free(path);
    cr_assert_eq(qfit_modelfile_resolve_from(file, "/nonexistent", &kind, &path, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(path, file);   /* absolute: the Modelfile's directory does not matter */
    free(path);

    /* ~ expands to $HOME */
    const char *old = getenv("HOME");
    char *saved = old ? strdup(old) : NULL;
    setenv("HOME", dir, 1);
    cr_assert_eq(qfit_modelfile_resolve_from("~/m.gguf", "/nonexistent", &kind, &path, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(path, file);
    free(path);
    if (saved) setenv("HOME", saved, 1);
    free(saved);
    snprintf(home, sizeof home, "~qfit-no-such-user-xyz/m.gguf");
    cr_expect_eq(qfit_modelfile_resolve_from(home, dir, &kind, &path, err, sizeof err), -1);
    cr_expect_str_eq(err, "FROM ~qfit-no-such-user-xyz/m.gguf: no user 'qfit-no-such-user-xyz'");

    /* a model name */
    static const char *const names[] = { "llama3.2", "llama3:latest", "hf.co/bartowski/Llama-3.2-1B-GGUF:Q4_K_M",
                                         "registry.ollama.ai/library/qwen3:8b" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        path = (char *)1;
        cr_assert_eq(qfit_modelfile_resolve_from(names[i], dir, &kind, &path, err, sizeof err), 0, "%s", err);
        cr_expect_eq(kind, QFIT_FROM_NAME, "%s", names[i]);
        cr_expect_null(path);
    }
    /* looks like a path but is missing: an error naming the resolved path, not a pull of "./x.gguf" */
    cr_expect_eq(qfit_modelfile_resolve_from("./missing.gguf", dir, &kind, &path, err, sizeof err), -1);
    char want[4400];
    snprintf(want, sizeof want, "FROM ./missing.gguf: %s/./missing.gguf: No such file or directory", dir);
    cr_expect_str_eq(err, want);
    cr_expect_eq(qfit_modelfile_resolve_from("other.GGUF", dir, &kind, &path, err, sizeof err), -1);
}

/* ------------------------------------------------ ROUTE (qfit's routing models) */

Test(modelfile, route_lines_parse_print_and_refuse)
{
    qfit_modelfile *m = parse_ok("# a router\nROUTE code qwen2.5-coder:32b\nroute long>4000 llama3.1:8b\n"
                                 "ROUTE default llama3.2:3b\n", NULL);
    cr_assert_eq(m->nroutes, 3);
    cr_assert_str_eq(m->routes[0].rule, "code");
    cr_assert_str_eq(m->routes[1].rule, "long>4000");
    cr_assert_str_eq(m->routes[1].model, "llama3.1:8b");
    cr_assert_str_eq(m->routes[2].model, "llama3.2:3b");
    cr_assert_null(m->from);
    char *text = roundtrip(m);
    cr_expect(strstr(text, "ROUTE code qwen2.5-coder:32b\nROUTE long>4000 llama3.1:8b\nROUTE default llama3.2:3b\n"),
              "%s", text);
    free(text);
    qfit_modelfile_free(m);
    long n = 0;
    cr_expect_eq(qfit_route_rule_check("long>12", &n, NULL, 0), 0);
    cr_expect_eq(n, 12);
    char err[256];
    const char *bad[] = {"long>", "long>0", "long>-3", "long>1e3", "short", "long>999999999", "Default"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_expect_eq(qfit_route_rule_check(bad[i], NULL, err, sizeof err), -1, "%s accepted", bad[i]);
        cr_expect(strstr(err, bad[i]), "%s", err);
    }
    /* a router is only ROUTE lines, with one default */
    const char *refused[][2] = {
        {"FROM x\nROUTE default y\n", "has no FROM"},
        {"ROUTE default y\nSYSTEM hi\n", "has no SYSTEM"},
        {"ROUTE default y\nPARAMETER temperature 0\n", "has no PARAMETER"},
        {"ROUTE code y\n", "needs a ROUTE default"},
        {"ROUTE default y\nROUTE default z\n", "a second default"},
        {"ROUTE default\n", "needs a rule and a model"},
        {"ROUTE fast y\nROUTE default z\n", "ROUTE rule 'fast'"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        qfit_modelfile *r = qfit_modelfile_parse(refused[i][0], strlen(refused[i][0]), NULL, err, sizeof err);
        cr_expect_null(r, "accepted:\n%s", refused[i][0]);
        qfit_modelfile_free(r);
        cr_expect(strstr(err, refused[i][1]), "input:\n%s\nerror: %s", refused[i][0], err);
    }
}
