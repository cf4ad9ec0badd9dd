/* Suite web: the built-in page and the planner over HTTP (src/server/routes_web.c), driven
 * with libcurl against a server started in each test on 127.0.0.1, port 0. References: the
 * page's own source files under web/ (what the binary must serve, byte for byte) and
 * `qfit plan --json` run as a separate process (what /api/plan must answer, number for
 * number). The page in a browser is tested by tests/web (headless Chromium). */
#include <criterion/criterion.h>

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "qfit/plan.h"
#include "qfit/server.h"
#include "qfit/store.h"
#include "util/http_client.h"
#include "util/testutil.h"

#define F32_MODEL "models/kjv-llama-7m-f32.gguf"

/* ---------------------------------------------------------------- fixture */

static qfit_server *srv;

/* A server (127.0.0.1, port 0) with a fresh store; with_model: the shared model in it as "kjv". */
static void start(const char *api_key, bool with_model)
{
    static int n;
    char root[4096], err[1024];
    snprintf(root, sizeof root, "%s/web-store-%d", tu_tmpdir(), n++);
    mkdir(root, 0755);
    if (with_model) {
        qfit_store *s = qfit_store_open(root, err, sizeof err);
        cr_assert_not_null(s, "%s", err);
        qfit_import_opts o = { .link = true };
        bool linked;
        cr_assert_eq(qfit_store_import_gguf(s, tu_shared_path(F32_MODEL), "kjv", &o, &linked, err, sizeof err), 0,
                     "%s", err);
        qfit_store_close(s);
    }
    qfit_server_config cfg = { .store_root = root, .api_key = api_key };
    srv = qfit_server_new(&cfg, err, sizeof err);
    cr_assert_not_null(srv, "%s", err);
    cr_assert_eq(qfit_server_start(srv, err, sizeof err), 0, "%s", err);
}

static void teardown(void)
{
    qfit_server_free(srv);
    srv = NULL;
}

/* ---------------------------------------------------------------- client */

typedef tu_reply reply;

/* method path [body], headers NULL-terminated "Name: value" (may be NULL); "../" reaches
 * the server as sent */
static reply http(const char *method, const char *path, const char *body, const char *const *headers)
{
    return tu_http(qfit_server_port(srv), (tu_request){ .method = method, .path = path, .body = body,
                                                        .headers = headers, .path_as_is = true });
}

static void reply_free(reply *r) { tu_reply_free(r); }

/* A response header's value (case-insensitive name); "" if absent. */
static const char *header_of(const reply *r, const char *name)
{
    const char *v = tu_header_of(r, name);
    return v ? v : "";
}

static const char *const HTML[] = { "Accept: text/html,application/xhtml+xml,*/*;q=0.8", NULL };

/* The page's headers on a 200 or 304 answer. */
static void expect_page_headers(const reply *r)
{
    const char *csp = header_of(r, "Content-Security-Policy");
    cr_expect(strstr(csp, "default-src 'none'") && strstr(csp, "script-src 'self'") &&
              strstr(csp, "connect-src 'self'") && strstr(csp, "frame-ancestors 'none'"), "CSP: %s", csp);
    cr_expect_null(strstr(csp, "unsafe-inline"), "CSP: %s", csp);
    cr_expect_null(strstr(csp, "unsafe-eval"), "CSP: %s", csp);
    cr_expect_str_eq(header_of(r, "X-Content-Type-Options"), "nosniff");
    cr_expect_str_eq(header_of(r, "Cache-Control"), "no-cache");
    cr_expect(header_of(r, "ETag")[0] == '"', "ETag: %s", header_of(r, "ETag"));
}

/* ---------------------------------------------------------------- the page */

Test(web, root_serves_the_page_to_browsers_only, .fini = teardown)
{
    start(NULL, false);
    size_t n;
    char *want = tu_read_file("web/index.html", &n);
    cr_assert_not_null(want, "web/index.html (make test runs in the repository root)");
    reply r = http("GET", "/", NULL, HTML);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(header_of(&r, "Content-Type"), "text/html; charset=utf-8");
    cr_expect_eq(r.len, n);
    cr_expect(r.len == n && !memcmp(r.body, want, n), "GET / is not web/index.html");
    cr_expect_str_eq(header_of(&r, "Vary"), "Accept");
    expect_page_headers(&r);
    reply_free(&r);
    /* API clients (curl, the Ollama libraries) still get Ollama's answer */
    r = http("GET", "/", NULL, NULL);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "Ollama is running");
    cr_expect(strstr(header_of(&r, "Content-Type"), "text/plain"));
    reply_free(&r);
    r = http("HEAD", "/", NULL, HTML);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(r.len, 0);
    reply_free(&r);
    free(want);
}

Test(web, every_file_served_with_its_bytes_type_and_etag, .fini = teardown)
{
    start(NULL, false);
    static const struct { const char *name, *type; } files[] = {
        { "index.html", "text/html; charset=utf-8" },
        { "app.js", "text/javascript; charset=utf-8" },
        { "app.css", "text/css; charset=utf-8" },
        { "icon.svg", "image/svg+xml" },
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[256], src[256], inm[160];
        snprintf(path, sizeof path, "/ui/%s", files[i].name);
        snprintf(src, sizeof src, "web/%s", files[i].name);
        size_t n;
        char *want = tu_read_file(src, &n);
        cr_assert_not_null(want, "%s", src);
        reply r = http("GET", path, NULL, NULL);
        cr_expect_eq(r.status, 200, "%s", path);
        cr_expect_str_eq(header_of(&r, "Content-Type"), files[i].type, "%s", path);
        cr_expect(r.len == n && !memcmp(r.body, want, n), "%s differs from %s", path, src);
        expect_page_headers(&r);
        /* a browser revalidating an unchanged file gets 304 without the bytes */
        snprintf(inm, sizeof inm, "If-None-Match: %s", header_of(&r, "ETag"));
        const char *const h[] = { inm, NULL };
        reply c = http("GET", path, NULL, h);
        cr_expect_eq(c.status, 304, "%s with %s", path, inm);
        cr_expect_eq(c.len, 0);
        reply_free(&c);
        const char *const other[] = { "If-None-Match: \"0000000000000000\"", NULL };
        c = http("GET", path, NULL, other);
        cr_expect_eq(c.status, 200, "%s: another ETag", path);
        reply_free(&c);
        reply_free(&r);
        free(want);
    }
    /* only the embedded files: no file system behind /ui */
    static const char *const missing[] = { "/ui/nope.js", "/ui/../Makefile", "/ui/%2e%2e/Makefile", "/ui/web/app.js" };
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        reply r = http("GET", missing[i], NULL, NULL);
        cr_expect_eq(r.status, 404, "%s: %ld", missing[i], r.status);
        cr_expect_str_eq(r.body, "404 page not found", "%s", missing[i]);
        reply_free(&r);
    }
}

/* The CSP forbids inline scripts and third-party requests; the page's sources must not
 * need them (else it would break in the browser, or the CSP would have to be loosened). */
Test(web, page_sources_need_no_inline_script_and_no_third_party)
{
    static const char *const files[] = { "web/index.html", "web/app.js", "web/app.css" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t n;
        char *s = tu_read_file(files[i], &n);
        cr_assert_not_null(s, "%s", files[i]);
        for (const char *p = s; (p = strstr(p, "//")) != NULL; p += 2) {
            bool url = p > s + 5 && (!strncmp(p - 5, "http:", 5) || (p > s + 6 && !strncmp(p - 6, "https:", 6)));
            /* the SVG namespace is a name, not a request */
            cr_expect(!url || !strncmp(p, "//www.w3.org/", 13), "%s: third-party URL at byte %zu", files[i],
                      (size_t)(p - s));
        }
        if (i == 0) {
            for (const char *p = s; (p = strstr(p, "<script")) != NULL; p++) {
                const char *gt = strchr(p, '>');
                cr_assert_not_null(gt);
                cr_expect(memmem(p, (size_t)(gt - p), " src=\"/ui/", 10) != NULL, "%s: a script without src", files[i]);
                cr_expect(!strncmp(gt + 1, "</script>", 9), "%s: an inline script", files[i]);
            }
            cr_expect_null(strstr(s, " style=\""), "%s: inline style attribute (blocked by style-src)", files[i]);
            cr_expect_null(strstr(s, " onclick="), "%s: inline event handler", files[i]);
            cr_expect_null(strstr(s, " onload="), "%s: inline event handler", files[i]);
        }
        free(s);
    }
}

/* ---------------------------------------------------------------- /api/plan */

/* `qfit plan ARGS --json` (the CLI, another process) parsed. */
static json_t *cli_plan(const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' plan %s --json", tu_qfit_bin(), args);
    int st;
    char *out = tu_run(cmd, &st);
    cr_assert_eq(st, 0, "%s: %s", cmd, out);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    cr_assert_not_null(j, "%s: %s", cmd, out);
    free(out);
    return j;
}

/* The server's plan is the CLI's document: the same members and numbers. Only the names
 * may differ where the request names the model differently (a store name for the CLI's
 * GGUF path): model.name and each recommendation's command; "command" is the server's
 * addition (checked against the CLI's own form of the command by the caller). */
static void expect_same_plan(json_t *server, json_t *cli, bool same_names)
{
    json_t *s = json_deep_copy(server), *c = json_deep_copy(cli);
    cr_assert(json_is_string(json_object_get(s, "command")), "no command");
    json_object_del(s, "command");
    if (!same_names) {
        json_object_del(json_object_get(s, "model"), "name");
        json_object_del(json_object_get(c, "model"), "name");
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(s, "recommendations"), i, f) json_object_del(f, "command");
        json_array_foreach(json_object_get(c, "recommendations"), i, f) json_object_del(f, "command");
    }
    char *a = json_dumps(s, JSON_SORT_KEYS | JSON_INDENT(1)), *b = json_dumps(c, JSON_SORT_KEYS | JSON_INDENT(1));
    cr_expect(json_equal(s, c), "server:\n%s\ncli:\n%s", a, b);
    free(a);
    free(b);
    json_decref(s);
    json_decref(c);
}

Test(web, plan_of_a_stored_model_is_qfit_plan_json, .fini = teardown)
{
    start(NULL, true);
    const char *gguf = tu_shared_path(F32_MODEL);
    /* comfortable, then over the budget (with fixes), then other settings */
    static const struct { const char *body, *args; } cases[] = {
        { "{\"model\":\"kjv\",\"mem\":\"64M\",\"ctx\":1024}", "--mem 64M --ctx 1024" },
        { "{\"model\":\"kjv\",\"mem\":\"64M\",\"ctx\":8192}", "--mem 64M --ctx 8192" },
        { "{\"model\":\"kjv\",\"machine\":\"m1-8gb\",\"quant\":\"Q4_K_M\",\"kv_type\":\"q8_0\",\"parallel\":2,"
          "\"flash_attn\":\"off\",\"batch\":256}",
          "--machine m1-8gb --quant Q4_K_M --kv-type q8_0 --parallel 2 --flash-attn off --batch 256" },
        { "{\"model\":\"kjv\",\"mem\":\"1G\",\"kv_type_k\":\"q8_0\",\"workload\":\"ppl\",\"ctx\":256}",
          "--mem 1G -ctk q8_0 --workload ppl --ctx 256" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[4096];
        snprintf(args, sizeof args, "'%s' %s", gguf, cases[i].args);
        json_t *want = cli_plan(args);
        reply r = http("POST", "/api/plan", cases[i].body, NULL);
        cr_assert_eq(r.status, 200, "%s: %s", cases[i].body, r.body);
        cr_assert_not_null(r.json, "%s", r.body);
        expect_same_plan(r.json, want, false);
        cr_expect_str_eq(json_string_value(json_object_get(json_object_get(r.json, "model"), "name")), "kjv");
        json_decref(want);
        reply_free(&r);
    }
    /* the fixes name the stored model, so the page can apply them */
    reply r = http("POST", "/api/plan", cases[1].body, NULL);
    json_t *fx = json_object_get(r.json, "recommendations");
    cr_assert_gt(json_array_size(fx), 0, "8192 in 64M: no fixes: %s", r.body);
    cr_expect(!strncmp(json_string_value(json_object_get(json_array_get(fx, 0), "command")), "qfit plan kjv --mem 64M ", 24),
              "%s", r.body);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "command")), "qfit plan kjv --mem 64M --ctx 8192");
    reply_free(&r);
}

Test(web, plan_of_a_catalog_model_is_qfit_plan_json, .fini = teardown)
{
    start(NULL, false);
    json_t *want = cli_plan("llama3.1:8b --machine m1-max-32gb --ctx 32768");
    reply r = http("POST", "/api/plan", "{\"model\":\"llama3.1:8b\",\"machine\":\"m1-max-32gb\",\"ctx\":32768}", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    expect_same_plan(r.json, want, true);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "command")),
                     "qfit plan llama3.1:8b --machine m1-max-32gb --quant Q4_K_M --ctx 32768");
    json_decref(want);
    reply_free(&r);
    /* the mix table: one row per mix, each the plan of that mix */
    r = http("POST", "/api/plan", "{\"model\":\"llama3.1:8b\",\"machine\":\"m1-max-32gb\",\"table\":true}", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *rows = json_object_get(r.json, "mixes");
    cr_assert_eq(json_array_size(rows), qfit_plan_mix_count());
    static const char *const check[] = { "Q8_0", "Q3_K_M" };
    for (size_t i = 0; i < 2; i++) {
        char args[256];
        snprintf(args, sizeof args, "llama3.1:8b --machine m1-max-32gb --quant %s", check[i]);
        json_t *w = cli_plan(args);
        json_t *row = NULL, *x;
        size_t k;
        json_array_foreach(rows, k, x) if (!strcmp(json_string_value(json_object_get(x, "quant")), check[i])) row = x;
        cr_assert_not_null(row, "no row %s", check[i]);
        cr_expect_eq(json_integer_value(json_object_get(row, "total_bytes")), json_integer_value(json_object_get(w, "total_bytes")),
                     "%s", check[i]);
        cr_expect_eq(json_integer_value(json_object_get(row, "weights_bytes")),
                     json_integer_value(json_object_get(w, "weights_bytes")), "%s", check[i]);
        cr_expect_str_eq(json_string_value(json_object_get(row, "verdict")), json_string_value(json_object_get(w, "verdict")));
        json_decref(w);
    }
    reply_free(&r);
}

Test(web, plan_refuses_bad_requests_naming_the_field, .fini = teardown)
{
    start(NULL, true);
    static const struct { const char *body; long status; const char *says; } cases[] = {
        { "{\"model\":\"kjv\",\"context\":512}", 400, "field 'context' is not a plan setting" },
        { "{\"model\":\"kjv\",\"ctx\":0}", 400, "field 'ctx' must be an integer in 1..16777216" },
        { "{\"model\":\"kjv\",\"ctx\":\"512\"}", 400, "field 'ctx'" },
        { "{\"model\":\"kjv\",\"parallel\":257}", 400, "field 'parallel'" },
        { "{\"model\":\"kjv\",\"quant\":\"Q9_K\"}", 400, "unknown quantization 'Q9_K'" },
        { "{\"model\":\"kjv\",\"kv_type\":\"q3_k\"}", 400, "field 'kv_type': unsupported KV cache type 'q3_k'" },
        { "{\"model\":\"kjv\",\"flash_attn\":\"maybe\"}", 400, "field 'flash_attn'" },
        { "{\"model\":\"kjv\",\"workload\":\"train\"}", 400, "field 'workload'" },
        { "{\"model\":\"kjv\",\"machine\":\"cray-1\"}", 400, "unknown machine 'cray-1'" },
        { "{\"model\":\"kjv\",\"mem\":\"lots\"}", 400, "field 'mem': bad size 'lots'" },
        { "{\"model\":\"kjv\",\"mem\":\"8G\",\"machine\":\"m1-8gb\"}", 400, "not both" },
        { "{\"model\":\"kjv\",\"table\":1}", 400, "field 'table'" },
        { "{\"ctx\":512}", 400, "field 'model' is required" },
        { "{\"model\":7}", 400, "field 'model' must be a string" },
        { "{\"model\":\"no-such-model\"}", 404, "neither in the store nor in the planner's catalog" },
        { "[1]", 400, "must be a JSON object" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reply r = http("POST", "/api/plan", cases[i].body, NULL);
        cr_expect_eq(r.status, cases[i].status, "%s: %ld %s", cases[i].body, r.status, r.body);
        const char *msg = json_string_value(json_object_get(r.json, "error"));
        cr_expect(msg && strstr(msg, cases[i].says), "%s: %s", cases[i].body, r.body);
        reply_free(&r);
    }
    /* a file path is never opened: the server must not read files a client names */
    char body[4300];
    snprintf(body, sizeof body, "{\"model\":\"%s\"}", tu_shared_path(F32_MODEL));
    reply r = http("POST", "/api/plan", body, NULL);
    cr_expect_eq(r.status, 404, "%s", r.body);
    cr_expect_null(strstr(r.body, tu_shared()), "the path is scrubbed from the message: %s", r.body);
    reply_free(&r);
}

Test(web, plan_options_list_the_planner_tables, .fini = teardown)
{
    start(NULL, false);
    reply r = http("GET", "/api/plan", NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *cat = json_object_get(r.json, "catalog"), *mixes = json_object_get(r.json, "mixes"),
           *machines = json_object_get(r.json, "machines");
    cr_assert_eq(json_array_size(cat), qfit_plan_catalog_count());
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(cat, 0), "name")), qfit_plan_catalog_at(0)->name);
    cr_assert_eq(json_array_size(mixes), qfit_plan_mix_count());
    for (size_t i = 0; i < qfit_plan_mix_count(); i++) {
        const qfit_plan_mix *m = qfit_plan_mix_at(i);
        json_t *row = json_array_get(mixes, i);
        cr_expect_str_eq(json_string_value(json_object_get(row, "name")), m->name);
        if (m->mean_kld >= 0) cr_expect_eq(json_real_value(json_object_get(row, "mean_kld")), m->mean_kld, "%s", m->name);
        else cr_expect(json_is_null(json_object_get(row, "mean_kld")), "%s", m->name);
    }
    cr_assert_eq(json_array_size(machines), qfit_plan_machine_count() + 1);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(machines, 0), "name")), "this");
    const qfit_plan_machine *m1 = qfit_plan_machine_at(0);
    json_t *j1 = json_array_get(machines, 1);
    cr_expect_eq((uint64_t)json_integer_value(json_object_get(j1, "budget_bytes")), qfit_plan_budget_bytes(m1));
    reply_free(&r);
}

/* ---------------------------------------------------------------- the server's rules */

Test(web, key_host_and_origin_rules_apply, .fini = teardown)
{
    start("web-key", true);
    /* the page loads without the key (it asks for it); the planner needs it */
    reply r = http("GET", "/", NULL, HTML);
    cr_expect_eq(r.status, 200);
    reply_free(&r);
    r = http("GET", "/ui/app.js", NULL, NULL);
    cr_expect_eq(r.status, 200);
    reply_free(&r);
    r = http("GET", "/api/plan", NULL, NULL);
    cr_expect_eq(r.status, 401, "%s", r.body);
    reply_free(&r);
    r = http("POST", "/api/plan", "{\"model\":\"kjv\"}", NULL);
    cr_expect_eq(r.status, 401, "%s", r.body);
    reply_free(&r);
    const char *const key[] = { "Authorization: Bearer web-key", NULL };
    r = http("POST", "/api/plan", "{\"model\":\"kjv\"}", key);
    cr_expect_eq(r.status, 200, "%s", r.body);
    reply_free(&r);
    /* DNS rebinding: a foreign Host is refused, page included */
    const char *const rebind[] = { "Host: evil.example", "Accept: text/html", NULL };
    r = http("GET", "/", NULL, rebind);
    cr_expect_eq(r.status, 403, "%s", r.body);
    reply_free(&r);
    r = http("GET", "/ui/app.js", NULL, rebind);
    cr_expect_eq(r.status, 403, "%s", r.body);
    reply_free(&r);
    /* another site's page cannot call the planner */
    const char *const foreign[] = { "Origin: http://evil.example", "Authorization: Bearer web-key", NULL };
    r = http("POST", "/api/plan", "{\"model\":\"kjv\"}", foreign);
    cr_expect_eq(r.status, 403, "%s", r.body);
    reply_free(&r);
    /* the page opened at a LAN address calls its own origin: allowed; another port is not */
    const char *const own[] = { "Host: 192.168.7.9:11434", "Origin: http://192.168.7.9:11434",
                                "Authorization: Bearer web-key", NULL };
    r = http("POST", "/api/plan", "{\"model\":\"kjv\"}", own);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(header_of(&r, "Access-Control-Allow-Origin"), "http://192.168.7.9:11434");
    reply_free(&r);
    const char *const port[] = { "Host: 192.168.7.9:11434", "Origin: http://192.168.7.9:8080",
                                 "Authorization: Bearer web-key", NULL };
    r = http("POST", "/api/plan", "{\"model\":\"kjv\"}", port);
    cr_expect_eq(r.status, 403, "%s", r.body);
    reply_free(&r);
    const char *const https[] = { "Host: 192.168.7.9:11434", "Origin: https://192.168.7.9:11434",
                                  "Authorization: Bearer web-key", NULL };
    r = http("POST", "/api/plan", "{\"model\":\"kjv\"}", https);
    cr_expect_eq(r.status, 403, "%s", r.body);
    reply_free(&r);
}
