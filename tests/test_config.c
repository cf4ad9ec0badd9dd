/* Suite config: settings from the environment (qfit/config.h) — Ollama's own test
 * vectors for OLLAMA_HOST, OLLAMA_KEEP_ALIVE and envconfig.Var (ollama/ollama
 * envconfig/config_test.go at 031b6c96, MIT; taken as data), qfit's stricter
 * answers where Ollama silently falls back to a default, the QFIT_ name winning over
 * the OLLAMA_ one, and the CLI refusing a setting it cannot honour before running. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/config.h"
#include "util/testutil.h"

static void clear_env(const char *suffix)
{
    char a[64], b[64];
    snprintf(a, sizeof a, "QFIT_%s", suffix);
    snprintf(b, sizeof b, "OLLAMA_%s", suffix);
    unsetenv(a);
    unsetenv(b);
}

/* "scheme://host:port/path" as Ollama's Host().String() prints it */
static void host_string(const qfit_host *h, char *buf, size_t cap)
{
    bool v6 = strchr(h->host, ':') != NULL;
    snprintf(buf, cap, "%s://%s%s%s:%d%s", h->scheme, v6 ? "[" : "", h->host, v6 ? "]" : "", h->port, h->path);
}

Test(config, host_matches_ollama_vectors)
{
    /* Ollama's TestHost cases, except ":1234" / ":0" (Ollama: every interface, printed
     * "http://:1234"; qfit: loopback) */
    static const struct { const char *value, *expect; } C[] = {
        { "", "http://127.0.0.1:11434" },
        { "1.2.3.4", "http://1.2.3.4:11434" },
        { ":1234", "http://127.0.0.1:1234" },
        { "1.2.3.4:1234", "http://1.2.3.4:1234" },
        { "example.com", "http://example.com:11434" },
        { "example.com:1234", "http://example.com:1234" },
        { ":0", "http://127.0.0.1:0" },
        { "[::1]", "http://[::1]:11434" },
        { "[::]", "http://[::]:11434" },
        { "::1", "http://[::1]:11434" },
        { "[::1]:1337", "http://[::1]:1337" },
        { " 1.2.3.4 ", "http://1.2.3.4:11434" },
        { "\"1.2.3.4\"", "http://1.2.3.4:11434" },
        { " \" 1.2.3.4 \" ", "http://1.2.3.4:11434" },
        { "'1.2.3.4'", "http://1.2.3.4:11434" },
        { "http://1.2.3.4", "http://1.2.3.4:80" },
        { "http://1.2.3.4:4321", "http://1.2.3.4:4321" },
        { "https://1.2.3.4", "https://1.2.3.4:443" },
        { "https://1.2.3.4:4321", "https://1.2.3.4:4321" },
        { "https://example.com/ollama", "https://example.com:443/ollama" },
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        clear_env("HOST");
        setenv("OLLAMA_HOST", C[i].value, 1);
        qfit_host h;
        char err[256], got[600];
        cr_assert_eq(qfit_config_host(&h, err, sizeof err), 0, "'%s': %s", C[i].value, err);
        host_string(&h, got, sizeof got);
        cr_expect_str_eq(got, C[i].expect, "OLLAMA_HOST='%s'", C[i].value);
    }
    clear_env("HOST");
}

/* Where Ollama uses the default port quietly, qfit says what is wrong. */
Test(config, host_errors_name_the_problem)
{
    static const struct { const char *value, *needle; } C[] = {
        { ":66000", "port '66000'" }, { ":-1", "port '-1'" }, { "ftp://h", "scheme 'ftp'" },
        { "[::1", "without ']'" }, { "h o:1", "invalid character ' '" }, { "[::1]x", "after ']'" },
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        clear_env("HOST");
        setenv("QFIT_HOST", C[i].value, 1);
        qfit_host h;
        char err[256] = "";
        cr_expect_eq(qfit_config_host(&h, err, sizeof err), -1, "'%s' accepted", C[i].value);
        cr_expect(strstr(err, "QFIT_HOST") && strstr(err, C[i].needle), "'%s': %s", C[i].value, err);
    }
    clear_env("HOST");
}

Test(config, keep_alive_matches_ollama_vectors)
{
    const int64_t S = 1000000000LL;
    static const struct { const char *value; int64_t seconds; } C[] = {
        { "", 300 }, { " ", 300 }, { "1s", 1 }, { "1m", 60 }, { "1h", 3600 }, { "5m0s", 300 },
        { "1h2m3s", 3723 }, { "0", 0 }, { "60", 60 }, { "120", 120 }, { "3600", 3600 }, { "-0", 0 },
        { "-1", -1 }, { "-1m", -1 },   /* -1: forever */
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        clear_env("KEEP_ALIVE");
        setenv("OLLAMA_KEEP_ALIVE", C[i].value, 1);
        int64_t ns;
        char err[256];
        cr_assert_eq(qfit_config_keep_alive(&ns, err, sizeof err), 0, "'%s': %s", C[i].value, err);
        cr_expect_eq(ns, C[i].seconds < 0 ? QFIT_FOREVER_NS : C[i].seconds * S, "'%s': %lld ns",
                     C[i].value, (long long)ns);
    }
    /* Ollama's "invalid values" (it quietly uses 5m): errors naming the variable */
    static const char *const BAD[] = { "???", "1d", "1y", "1w", "5 m", ".s", "1e3s" };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        clear_env("KEEP_ALIVE");
        setenv("OLLAMA_KEEP_ALIVE", BAD[i], 1);
        int64_t ns;
        char err[256] = "";
        cr_expect_eq(qfit_config_keep_alive(&ns, err, sizeof err), -1, "'%s' accepted", BAD[i]);
        cr_expect(strstr(err, "OLLAMA_KEEP_ALIVE") != NULL, "'%s': %s", BAD[i], err);
    }
    clear_env("KEEP_ALIVE");
}

/* Go's time.ParseDuration, as the API's keep_alive strings use it (no bare seconds). */
Test(config, duration_go_syntax)
{
    static const struct { const char *s; int64_t ns; } OK[] = {
        { "300ms", 300000000 }, { "1.5h", 5400000000000LL }, { "1h30m", 5400000000000LL },
        { "2us", 2000 }, { "2\xc2\xb5s", 2000 }, { "2\xce\xbcs", 2000 }, { "7ns", 7 }, { ".5s", 500000000 },
        { "1.s", 1000000000 }, { "+5s", 5000000000LL }, { "0", 0 }, { "-3h", QFIT_FOREVER_NS },
    };
    for (size_t i = 0; i < sizeof OK / sizeof OK[0]; i++) {
        int64_t ns = -5;
        char err[256];
        cr_assert_eq(qfit_parse_duration(OK[i].s, false, &ns, err, sizeof err), 0, "'%s': %s", OK[i].s, err);
        cr_expect_eq(ns, OK[i].ns, "'%s': %lld", OK[i].s, (long long)ns);
    }
    static const char *const BAD[] = { "10", "-1", "", "-", "s", "1x", "1h 2m", "3000000h" };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        int64_t ns;
        char err[256] = "";
        cr_expect_eq(qfit_parse_duration(BAD[i], false, &ns, err, sizeof err), -1, "'%s' accepted", BAD[i]);
        cr_expect(err[0], "'%s': no message", BAD[i]);
    }
}

Test(config, var_trimming_and_qfit_name_first)
{
    /* Ollama's TestVar */
    static const struct { const char *value, *expect; } C[] = {
        { "value", "value" }, { " value ", "value" }, { " 'value' ", "value" },
        { " \"value\" ", "value" }, { " ' value ' ", " value " }, { " \" value \" ", " value " },
    };
    char buf[64];
    const char *which;
    bool too_long;
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        clear_env("TESTVAR");
        setenv("OLLAMA_TESTVAR", C[i].value, 1);
        const char *v = qfit_env("TESTVAR", buf, sizeof buf, &which, &too_long);
        cr_assert(v, "'%s'", C[i].value);
        cr_expect_str_eq(v, C[i].expect);
        cr_expect_str_eq(which, "OLLAMA_TESTVAR");
    }
    setenv("QFIT_TESTVAR", "mine", 1);
    cr_expect_str_eq(qfit_env("TESTVAR", buf, sizeof buf, &which, &too_long), "mine");
    cr_expect_str_eq(which, "QFIT_TESTVAR");
    setenv("QFIT_TESTVAR", " ", 1);   /* empty counts as unset: the OLLAMA_ one applies */
    cr_expect_str_eq(qfit_env("TESTVAR", buf, sizeof buf, &which, &too_long), " value ");
    setenv("QFIT_TESTVAR", "0123456789012345678901234567890123456789012345678901234567890123456789", 1);
    cr_expect_null(qfit_env("TESTVAR", buf, sizeof buf, &which, &too_long));
    cr_expect(too_long);
    clear_env("TESTVAR");
}

Test(config, debug_levels)
{
    static const struct { const char *value; int level; } C[] = {
        { "", 0 }, { "0", 0 }, { "false", 0 }, { "1", 1 }, { "TRUE", 1 }, { "2", 2 },
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        clear_env("DEBUG");
        setenv("OLLAMA_DEBUG", C[i].value, 1);
        int level = -1;
        char err[256];
        cr_assert_eq(qfit_config_debug(&level, err, sizeof err), 0, "'%s': %s", C[i].value, err);
        cr_expect_eq(level, C[i].level, "'%s'", C[i].value);
    }
    setenv("QFIT_DEBUG", "verbose", 1);
    int level;
    char err[256] = "";
    cr_expect_eq(qfit_config_debug(&level, err, sizeof err), -1);
    cr_expect(strstr(err, "QFIT_DEBUG=verbose"), "%s", err);
    clear_env("DEBUG");
}

static char *run_qfit(const char *env, const char *args, int *status)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "env -u QFIT_DEBUG -u OLLAMA_DEBUG %s QFIT_MODELS='%s/config-store' %s %s 2>&1",
             env, tu_tmpdir(), tu_qfit_bin(), args);
    return tu_run(cmd, status);
}

/* Every command refuses a setting it cannot honour before doing anything. */
Test(config, cli_refuses_bad_settings_first)
{
    static const struct { const char *env, *needle; } C[] = {
        { "OLLAMA_KEEP_ALIVE=1d", "OLLAMA_KEEP_ALIVE" },
        { "QFIT_HOST=:70000", "QFIT_HOST" },
        { "OLLAMA_KV_CACHE_TYPE=q9_9", "OLLAMA_KV_CACHE_TYPE=q9_9 is not a KV cache type" },
        { "QFIT_FLASH_ATTENTION=maybe", "QFIT_FLASH_ATTENTION=maybe" },
        { "OLLAMA_CONTEXT_LENGTH=lots", "OLLAMA_CONTEXT_LENGTH=lots is invalid" },
        { "QFIT_DEBUG=yes", "QFIT_DEBUG=yes" },
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        int status;
        char *out = run_qfit(C[i].env, "list", &status);
        cr_expect_neq(status, 0, "%s: accepted", C[i].env);
        cr_expect(out && strstr(out, C[i].needle), "%s: %s", C[i].env, out ? out : "(null)");
        cr_expect(out && !strstr(out, "NAME"), "%s: the command ran anyway: %s", C[i].env, out ? out : "");
        free(out);
    }
    int status;
    char *out = run_qfit("OLLAMA_KEEP_ALIVE=10m QFIT_HOST=0.0.0.0:8080", "list", &status);
    cr_expect_eq(status, 0, "%s", out);
    free(out);
    out = run_qfit("", "--version", &status);
    cr_expect_eq(status, 0);
    cr_expect(out && !strncmp(out, "qfit version ", 13), "%s", out);
    free(out);
}

/* QFIT_DEBUG=1: the context's debug report, with the planned and allocated KV cache
 * equal (both come from the engine's sizing) and the kernels named. */
Test(config, debug_report_of_a_context)
{
    const char *model = tu_shared_path("models/kjv-llama-7m-f32.gguf");
    if (!model) cr_skip_test("shared data not found");
    char args[4200];
    snprintf(args, sizeof args, "run %s -p 'In the beginning' -n 2 --temp 0 --ctx 64 --kv-type q8_0", model);
    int status;
    char *out = run_qfit("QFIT_DEBUG=1", args, &status);
    cr_assert_eq(status, 0, "%s", out);
    cr_expect(strstr(out, "debug: kernels: "), "%s", out);
    cr_expect(strstr(out, "debug: KV cache: K q8_0, V q8_0"), "%s", out);
    const char *mem = strstr(out, "KV cache planned ");
    cr_assert(mem, "%s", out);
    double planned, allocated;
    cr_assert_eq(sscanf(mem, "KV cache planned %lf MiB, allocated %lf MiB", &planned, &allocated), 2, "%s", mem);
    cr_expect_eq(planned, allocated);
    cr_expect(planned > 0);
    free(out);
    out = run_qfit("", args, &status);   /* no QFIT_DEBUG: no report */
    cr_expect(out && !strstr(out, "debug:"), "%s", out);
    free(out);
}
