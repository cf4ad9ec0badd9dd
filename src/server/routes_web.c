/* The built-in web page and the planner over HTTP:
 *
 *   GET|HEAD /           a browser (Accept: text/html) gets the page (web/index.html);
 *                        any other client Ollama's "Ollama is running", as before
 *   GET|HEAD /ui/FILE    the page's other files (web/), embedded in the binary
 *   GET /api/plan        what the planner offers: catalog models, machine profiles
 *                        (and this machine), quantization mixes with their measured
 *                        quality on the shared model, KV cache types
 *   POST /api/plan       one plan: the JSON of `qfit plan --json` (plan_json.c) for the
 *                        same settings; "table": true adds every mix side by side
 *
 * The page and its files need no API key (the page must load to ask for it); the plan
 * endpoints do, like every other API route. Host and Origin checks are the router's
 * (http.c), for all of them. Page responses carry a Content-Security-Policy that allows
 * scripts, styles and requests from the page's own origin only (no inline script, no
 * third party), nosniff, no framing and no referrer; they are revalidated on each load
 * (Cache-Control: no-cache with a build-time ETag: 304 when unchanged), so a new binary
 * never leaves a stale page in a browser.
 *
 * POST /api/plan body (each field optional except model; an unknown field or a bad value
 * is a 400 naming it):
 *   model       a model of the store (planned from its GGUF as stored) or else a catalog
 *               name (qfit plan --list-models); never a file path
 *   machine     a profile name or "this" (default)     mem      a budget ("24G"), not both
 *   quant       a mix (Q4_K_M, ...)                    ctx, parallel, batch   integers
 *   kv_type, kv_type_k, kv_type_v   f16, q8_0, ...     flash_attn  "on", "off", "auto"
 *   workload    "run" or "ppl"                         table    true: add "mixes"
 * The numbers are those of `qfit plan GGUF_OR_NAME --json` with the same options; the
 * recommendations' commands name the model as the request did. */
#include "server/server_int.h"
#include "server/web_assets.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qfit/model.h"
#include "qfit/plan.h"
#include "qfit/quant.h"
#include "qfit/store.h"

/* ---------------------------------------------------------------- the page */

static const char CSP[] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                          "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

static const qfit_web_asset *find_asset(const char *name)
{
    for (size_t i = 0; i < qfit_web_asset_count; i++)
        if (!strcmp(qfit_web_assets[i].name, name)) return &qfit_web_assets[i];
    return NULL;
}

static const char *content_type_of(const char *name)
{
    static const struct { const char *ext, *type; } types[] = {
        { ".html", "text/html; charset=utf-8" },
        { ".js",   "text/javascript; charset=utf-8" },
        { ".css",  "text/css; charset=utf-8" },
        { ".svg",  "image/svg+xml" },
        { ".png",  "image/png" },
        { ".json", "application/json; charset=utf-8" },
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dot, types[i].ext)) return types[i].type;
    return "application/octet-stream";
}

/* Does the request's If-None-Match name this ETag (or '*')? */
static bool etag_matches(const qfit_http_req *r, const char *etag)
{
    const char *inm = qfit_http_req_header(r, "If-None-Match");
    if (!inm) return false;
    size_t el = strlen(etag);
    for (const char *p = inm; *p;) {
        while (*p == ' ' || *p == ',') p++;
        if (!strncmp(p, "W/", 2)) p += 2;
        if (*p == '*' || (!strncmp(p, etag, el) && (p[el] == ',' || p[el] == ' ' || !p[el]))) return true;
        while (*p && *p != ',') p++;
    }
    return false;
}

static void send_asset(qfit_http_req *r, const qfit_web_asset *a)
{
    qfit_http_add_header(r, "Content-Security-Policy", CSP);
    qfit_http_add_header(r, "X-Content-Type-Options", "nosniff");
    qfit_http_add_header(r, "X-Frame-Options", "DENY");
    qfit_http_add_header(r, "Referrer-Policy", "no-referrer");
    qfit_http_add_header(r, "Cache-Control", "no-cache");
    qfit_http_add_header(r, "ETag", a->etag);
    if (etag_matches(r, a->etag)) qfit_http_respond(r, 304, NULL, "", 0);
    else qfit_http_respond(r, 200, content_type_of(a->name), a->data, a->len);
}

static void h_root(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    const char *accept = qfit_http_req_header(r, "Accept");
    const qfit_web_asset *page = find_asset("index.html");
    qfit_http_add_header(r, "Vary", "Accept");
    if (page && accept && strstr(accept, "text/html")) send_asset(r, page);
    else qfit_http_respond(r, 200, "text/plain; charset=utf-8", "Ollama is running", 17);
}

static void h_asset(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    const qfit_web_asset *a = find_asset(qfit_http_req_param(r, "file"));
    if (a) send_asset(r, a);
    else qfit_http_respond(r, 404, "text/plain; charset=utf-8", "404 page not found", 18);
}

/* ---------------------------------------------------------------- /api/plan */

/* qfit_plan_machine_detect fills a static description: one caller at a time. */
static pthread_mutex_t detect_mu = PTHREAD_MUTEX_INITIALIZER;

static void detect_machine(qfit_plan_machine *m)
{
    pthread_mutex_lock(&detect_mu);
    qfit_plan_machine_detect(m);
    pthread_mutex_unlock(&detect_mu);
    m->desc = "this machine";
}

static const char *const KV_TYPES[] = { "f16", "q8_0", "q4_0", "f32", "bf16", "q4_1", "q5_0", "q5_1", "iq4_nl" };

static json_t *num_or_null(double v, bool known) { return known ? json_real(v) : json_null(); }

static json_t *machine_json(const qfit_plan_machine *m)
{
    return json_pack("{s:s,s:s,s:I,s:I,s:f}", "name", m->name, "desc", m->desc, "mem_bytes", (json_int_t)m->mem_bytes,
                     "budget_bytes", (json_int_t)qfit_plan_budget_bytes(m), "bandwidth_gbs", m->bandwidth_gbs);
}

static void h_plan_options(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    json_t *cat = json_array(), *machines = json_array(), *mixes = json_array(), *kv = json_array();
    for (size_t i = 0; i < qfit_plan_catalog_count(); i++) {
        const qfit_plan_facts *f = qfit_plan_catalog_at(i);
        json_array_append_new(cat, json_pack("{s:s,s:s,s:s,s:s,s:I}", "name", f->name, "hf", f->hf, "family",
                                             f->family, "arch", f->arch, "n_ctx_train", (json_int_t)f->n_ctx_train));
    }
    qfit_plan_machine me;
    detect_machine(&me);
    json_array_append_new(machines, machine_json(&me));
    for (size_t i = 0; i < qfit_plan_machine_count(); i++) json_array_append_new(machines, machine_json(qfit_plan_machine_at(i)));
    for (size_t i = 0; i < qfit_plan_mix_count(); i++) {
        const qfit_plan_mix *m = qfit_plan_mix_at(i);
        json_array_append_new(mixes, json_pack("{s:s,s:o,s:o}", "name", m->name, "mean_kld",
                                               num_or_null(m->mean_kld, m->mean_kld >= 0), "ppl",
                                               num_or_null(m->ppl, m->ppl > 0)));
    }
    for (size_t i = 0; i < sizeof KV_TYPES / sizeof KV_TYPES[0]; i++) json_array_append_new(kv, json_string(KV_TYPES[i]));
    json_t *j = json_pack("{s:o,s:o,s:o,s:o,s:s,s:I,s:i}", "catalog", cat, "machines", machines, "mixes", mixes,
                          "kv_types", kv, "quality_model", "kjv-llama-7m (the shared model; mean KLD vs F32)",
                          "default_ctx", (json_int_t)QFIT_PLAN_DEFAULT_CTX, "comfortable_max_pct", QFIT_PLAN_COMFORT_PCT);
    if (j) qfit_http_respond_json(r, 200, j);
    json_decref(j);
}

/* A plan request's settings, as qfit plan's options would give them. */
typedef struct {
    const char        *model, *machine, *mem;
    qfit_plan_settings s;
    bool               table;
} plan_req;

/* An integer field in lo..hi into *out; 0, or -1 after answering 400. */
static int int_field(qfit_http_req *r, const char *key, json_t *v, long long lo, long long hi, long long *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        qfit_http_respond_error(r, 400, "field '%s' must be an integer in %lld..%lld", key, lo, hi);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

/* The body's fields into p (strings point into body); 0, or -1 after answering 400. */
static int parse_plan(qfit_http_req *r, json_t *body, plan_req *p)
{
    static const char *const strings[] = { "model", "machine", "mem", "quant", "kv_type", "kv_type_k", "kv_type_v",
                                           "flash_attn", "workload" };
    memset(p, 0, sizeof *p);
    p->s.flash_attn = -1;
    int kv = 0, kv_k = 0, kv_v = 0;
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        bool is_string = false;
        for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
            if (!strcmp(key, strings[i])) is_string = true;
        const char *sv = json_string_value(v);
        if (is_string && !sv) {
            qfit_http_respond_error(r, 400, "field '%s' must be a string", key);
            return -1;
        }
        long long n;
        if (!strcmp(key, "model")) p->model = sv;
        else if (!strcmp(key, "machine")) p->machine = sv;
        else if (!strcmp(key, "mem")) p->mem = sv;
        else if (!strcmp(key, "quant")) {
            if (!qfit_plan_mix_find(sv)) {
                qfit_http_respond_error(r, 400, "field 'quant': unknown quantization '%s'", sv);
                return -1;
            }
            p->s.mix = sv;
        } else if (!strcmp(key, "kv_type") || !strcmp(key, "kv_type_k") || !strcmp(key, "kv_type_v")) {
            int t = qfit_kv_type_from_name(sv);
            if (t < 0) {
                qfit_http_respond_error(r, 400, "field '%s': unsupported KV cache type '%s' (supported: f32, f16, "
                                        "bf16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl)", key, sv);
                return -1;
            }
            t = qfit_plan_kv_setting(t);
            *(!strcmp(key, "kv_type") ? &kv : !strcmp(key, "kv_type_k") ? &kv_k : &kv_v) = t;
        } else if (!strcmp(key, "flash_attn")) {
            p->s.flash_attn = qfit_flash_attn_from_name(sv);
            if (p->s.flash_attn < -1) {
                qfit_http_respond_error(r, 400, "field 'flash_attn' must be on, off or auto, got '%s'", sv);
                return -1;
            }
        } else if (!strcmp(key, "workload")) {
            if (strcasecmp(sv, "run") && strcasecmp(sv, "ppl")) {
                qfit_http_respond_error(r, 400, "field 'workload' must be run or ppl, got '%s'", sv);
                return -1;
            }
            p->s.workload = strcasecmp(sv, "ppl") ? QFIT_PLAN_RUN : QFIT_PLAN_PPL;
        } else if (!strcmp(key, "ctx")) {
            if (int_field(r, key, v, 1, 1 << 24, &n)) return -1;
            p->s.n_ctx = n;
        } else if (!strcmp(key, "batch")) {
            if (int_field(r, key, v, 1, 1 << 24, &n)) return -1;
            p->s.n_batch = (int)n;
        } else if (!strcmp(key, "parallel")) {
            if (int_field(r, key, v, 1, 256, &n)) return -1;
            p->s.n_parallel = (int)n;
        } else if (!strcmp(key, "table")) {
            if (!json_is_boolean(v)) {
                qfit_http_respond_error(r, 400, "field 'table' must be true or false");
                return -1;
            }
            p->table = json_is_true(v);
        } else {
            qfit_http_respond_error(r, 400, "field '%s' is not a plan setting (model, machine, mem, quant, ctx, "
                                    "kv_type, kv_type_k, kv_type_v, flash_attn, parallel, batch, workload, table)", key);
            return -1;
        }
    }
    if (!p->model || !*p->model) {
        qfit_http_respond_error(r, 400, "field 'model' is required");
        return -1;
    }
    if (p->machine && p->mem) {
        qfit_http_respond_error(r, 400, "give field 'machine' or 'mem', not both");
        return -1;
    }
    /* as qfit plan: --kv-type sets both, -ctk / -ctv override one side (the other F16) */
    p->s.kv_type = p->s.kv_type_v = kv;
    if (kv_k) { p->s.kv_type = kv_k; if (!kv && !kv_v) p->s.kv_type_v = QFIT_TYPE_F16; }
    if (kv_v) { p->s.kv_type_v = kv_v; if (!kv && !kv_k) p->s.kv_type = QFIT_TYPE_F16; }
    return 0;
}

/* The machine of the request and the `qfit plan` options naming it; 0, or -1 after answering. */
static int plan_machine(qfit_http_req *r, const plan_req *p, qfit_plan_machine *m, char *args, size_t cap)
{
    args[0] = '\0';
    if (p->mem) {
        uint64_t bytes;
        if (qfit_parse_size(p->mem, &bytes) < 0 || !bytes) {
            qfit_http_respond_error(r, 400, "field 'mem': bad size '%s' (examples: 24G, 24GiB, 512M)", p->mem);
            return -1;
        }
        qfit_plan_machine_custom(bytes, m);
        snprintf(args, cap, "--mem %s", p->mem);
    } else if (p->machine && strcasecmp(p->machine, "this") != 0) {
        const qfit_plan_machine *f = qfit_plan_machine_find(p->machine);
        if (!f) {
            qfit_http_respond_error(r, 400, "field 'machine': unknown machine '%s' (GET /api/plan lists them)",
                                    p->machine);
            return -1;
        }
        *m = *f;
        snprintf(args, cap, "--machine %s", f->name);
    } else {
        detect_machine(m);
    }
    return 0;
}

/* The model: a stored one (its GGUF), else a catalog entry. Never a path: a client must
 * not make the server open files it names. 0, or -1 after answering. */
static int plan_model(qfit_http_req *r, const char *name, qfit_plan_model *m)
{
    char err[1024], path[4096];
    const char *root = qfit_server_store_root(qfit_http_req_server(r));
    qfit_name parsed;
    if (root && qfit_name_parse(name, &parsed, err, sizeof err) == 0) {
        qfit_store *st = qfit_store_open(root, err, sizeof err);
        if (!st) {
            qfit_http_respond_error(r, 500, "model store: %s", err);
            return -1;
        }
        qfit_store_model sm;
        int found = qfit_store_resolve(st, name, &sm, err, sizeof err) == 0;
        if (!found && !strstr(err, "not found")) {
            qfit_store_close(st);
            qfit_http_respond_error(r, 500, "model '%s': %s", name, err);
            return -1;
        }
        int has_path = found && qfit_store_model_path(st, &sm, QFIT_LAYER_MODEL, path, sizeof path) >= 0;
        if (found) qfit_store_model_free(&sm);
        qfit_store_close(st);
        if (found && !has_path) {
            qfit_http_respond_error(r, 400, "model '%s' has no GGUF weights to plan", name);
            return -1;
        }
        if (has_path) {
            if (qfit_plan_model_from_gguf(path, m, err, sizeof err) != 0) {
                qfit_http_respond_error(r, 500, "model '%s': %s", name, err);
                return -1;
            }
            snprintf(m->name, sizeof m->name, "%s", name);
            return 0;
        }
    }
    const qfit_plan_facts *f = qfit_plan_catalog_find(name);
    if (!f) {
        qfit_http_respond_error(r, 404, "model '%s' is neither in the store nor in the planner's catalog", name);
        return -1;
    }
    if (qfit_plan_model_from_facts(f, m, err, sizeof err) != 0) {
        qfit_http_respond_error(r, 500, "model '%s': %s", name, err);
        return -1;
    }
    return 0;
}

/* Every mix side by side (qfit plan --table): one row each; an error for a mix the
 * model cannot take is its row's "error". */
static json_t *mix_table(const qfit_plan_model *m, const qfit_plan_machine *mach, const qfit_plan_settings *s)
{
    json_t *rows = json_array();
    for (size_t i = 0; rows && i < qfit_plan_mix_count(); i++) {
        const qfit_plan_mix *mx = qfit_plan_mix_at(i);
        qfit_plan_settings t = *s;
        t.mix = mx->name;
        qfit_plan_result pr;
        char err[256];
        json_t *row;
        if (qfit_plan_compute(m, mach, &t, &pr, err, sizeof err) != 0)
            row = json_pack("{s:s,s:s}", "quant", mx->name, "error", err);
        else
            row = json_pack("{s:s,s:I,s:f,s:I,s:I,s:s,s:o}", "quant", pr.mix, "weights_bytes",
                            (json_int_t)pr.weights_bytes, "bits_per_weight", pr.bits_per_weight, "kv_bytes",
                            (json_int_t)pr.kv_bytes, "total_bytes", (json_int_t)pr.total_bytes, "verdict",
                            qfit_plan_verdict_name(pr.verdict), "mean_kld",
                            num_or_null(mx->mean_kld, mx->mean_kld >= 0));
        json_array_append_new(rows, row);
    }
    return rows;
}

static void h_plan(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    json_t *body = qfit_http_req_json(r);
    if (!body) return;
    plan_req p;
    qfit_plan_machine mach;
    char margs[160], err[512];
    qfit_plan_model m;
    if (parse_plan(r, body, &p) != 0 || plan_machine(r, &p, &mach, margs, sizeof margs) != 0 ||
        plan_model(r, p.model, &m) != 0) {
        json_decref(body);
        return;
    }
    qfit_plan_result res;
    if (qfit_plan_compute(&m, &mach, &p.s, &res, err, sizeof err) != 0) {
        qfit_http_respond_error(r, 400, "%s", err);
    } else {
        qfit_plan_fix fixes[8];
        size_t nf = qfit_plan_recommend(&m, &mach, &p.s, &res, p.model, margs, fixes, 8);
        /* qfit plan --json's document, plus the command line that reproduces it (and the
         * mix table when asked) */
        char *js = qfit_plan_result_json(&m, &mach, &res, fixes, nf, false, NULL), cmd[600];
        json_t *jo = js ? json_loads(js, 0, NULL) : NULL;
        free(js);
        js = NULL;
        qfit_plan_command(cmd, sizeof cmd, p.model, margs, &res);
        if (jo && json_object_set_new(jo, "command", json_string(cmd)) == 0 &&
            (!p.table || json_object_set_new(jo, "mixes", mix_table(&m, &mach, &p.s)) == 0))
            js = json_dumps(jo, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(jo);
        if (js) qfit_http_respond(r, 200, "application/json; charset=utf-8", js, strlen(js));
        else qfit_http_respond_error(r, 500, "out of memory");
        free(js);
    }
    qfit_plan_model_free(&m);
    json_decref(body);
}

int qfit_server_add_web_routes(qfit_server *s, char *err, size_t err_len)
{
    const qfit_http_route routes[] = {
        { "GET",  "/",         h_root,         NULL, QFIT_HTTP_PUBLIC, 0, NULL },
        { "HEAD", "/",         h_root,         NULL, QFIT_HTTP_PUBLIC, 0, NULL },
        { "GET",  "/ui/*file", h_asset,        NULL, QFIT_HTTP_PUBLIC, 0, NULL },
        { "HEAD", "/ui/*file", h_asset,        NULL, QFIT_HTTP_PUBLIC, 0, NULL },
        { "GET",  "/api/plan", h_plan_options, NULL, 0, 0, NULL },
        { "POST", "/api/plan", h_plan,         NULL, 0, 0, NULL },
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (qfit_server_route(s, &routes[i], err, err_len) != 0) return -1;
    return 0;
}
