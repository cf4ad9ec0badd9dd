/* The endpoints that need no model engine: GET|HEAD /api/version, /health, and
 * the store routes /api/tags, /api/show, /api/copy, /api/delete, /api/blobs/:digest,
 * /v1/models, /v1/models/{id}. Shapes and status codes follow
 * ollama-compat-reference.md §1.0, 1.7, 1.8, 2. Each request opens its own store
 * handle (a qfit_store is not shared between threads). */
#include "server/server_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qfit/gguf.h"
#include "qfit/modelfile.h"
#include "qfit/store.h"
#include "qfit/version.h"

/* ---------------------------------------------------------------- basic */

static void h_version(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    json_t *j = json_pack("{s:s,s:s}", "version", QFIT_SERVER_OLLAMA_VERSION, "qfit", QFIT_VERSION);
    if (j) qfit_http_respond_json(r, 200, j);
    json_decref(j);
}

static void h_health(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    qfit_http_respond(r, 200, "application/json; charset=utf-8", "{\"status\":\"ok\"}", 15);
}

int qfit_server_add_basic_routes(qfit_server *s, char *err, size_t err_len)
{
    const qfit_http_route routes[] = {
        { "GET",  "/api/version", h_version, NULL, QFIT_HTTP_PUBLIC, 0, NULL },
        { "HEAD", "/api/version", h_version, NULL, QFIT_HTTP_PUBLIC, 0, NULL },
        { "GET",  "/health",      h_health,  NULL, QFIT_HTTP_PUBLIC, 0, NULL },
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (qfit_server_route(s, &routes[i], err, err_len) != 0) return -1;
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static qfit_store *open_store(qfit_http_req *r)
{
    char err[1024];
    qfit_store *st = qfit_store_open(qfit_server_store_root(qfit_http_req_server(r)), err, sizeof err);
    if (!st) qfit_http_respond_error(r, 500, "model store: %s", err);
    return st;
}

/* RFC 3339 in UTC. */
static void rfc3339(int64_t t, char buf[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A string field of the request ("model", else the legacy "name"); NULL if absent. */
static const char *model_field(const json_t *body)
{
    const char *m = json_string_value(json_object_get(body, "model"));
    if (!m || !*m) m = json_string_value(json_object_get(body, "name"));
    return m && *m ? m : NULL;
}

/* ModelDetails of a stored model (ollama-compat-reference §1.7). */
static json_t *model_details(const qfit_store *st, const qfit_store_model *m)
{
    qfit_model_config cfg = { 0 };
    char err[512];
    size_t len;
    char *cj = qfit_store_read_blob(st, &m->manifest->config, 1u << 20, &len, err, sizeof err);
    if (cj) qfit_model_config_parse(cj, len, &cfg, err, sizeof err);
    free(cj);
    const qfit_layer *ml = qfit_manifest_layer(m->manifest, QFIT_LAYER_MODEL);
    json_t *families = cfg.model_family[0] ? json_pack("[s]", cfg.model_family) : json_null();
    return json_pack("{s:s,s:s,s:s,s:o,s:s,s:s}", "parent_model", ml && ml->from ? ml->from : "",
                     "format", cfg.model_format[0] ? cfg.model_format : "gguf", "family", cfg.model_family,
                     "families", families, "parameter_size", cfg.model_type,
                     "quantization_level", cfg.file_type);
}

/* Resolve the request's model, answering 400/404 (native message) when it cannot. */
static int resolve(qfit_http_req *r, qfit_store *st, const char *name, qfit_store_model *m)
{
    char err[1024];
    qfit_name n;
    if (!name || qfit_name_parse(name, &n, err, sizeof err) != 0) {
        qfit_http_respond_error(r, 400, name ? "invalid model name" : "model is required");
        return -1;
    }
    if (qfit_store_resolve(st, name, m, err, sizeof err) != 0) {
        if (strstr(err, "not found")) qfit_http_respond_error(r, 404, "model '%s' not found", name);
        else qfit_http_respond_error(r, 500, "%s", err);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- /api/tags, /v1/models */

/* Every manifest (the caller skips unreadable ones, as Ollama does); 0 or -1 after answering. */
static int list_models(qfit_http_req *r, qfit_store *st, qfit_store_entry **e, size_t *n)
{
    char err[1024];
    *e = NULL;
    *n = 0;
    if (qfit_store_list(st, e, n, err, sizeof err) != 0) {
        qfit_http_respond_error(r, 500, "listing models: %s", err);
        return -1;
    }
    return 0;
}

static void h_tags(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    qfit_store *st = open_store(r);
    if (!st) return;
    size_t n;
    qfit_store_entry *e;
    int ok = list_models(r, st, &e, &n) == 0;
    json_t *models = json_array();
    for (size_t i = 0; ok && i < n; i++) {
        qfit_store_model m;
        char err[512], when[32];
        if (e[i].error[0] || qfit_store_resolve(st, e[i].name, &m, err, sizeof err) != 0) continue;
        rfc3339(e[i].mtime, when);
        json_array_append_new(models, json_pack("{s:s,s:s,s:s,s:I,s:s,s:o}", "name", e[i].name, "model", e[i].name,
                                                "modified_at", when, "size", (json_int_t)e[i].size,
                                                "digest", e[i].id.hex, "details", model_details(st, &m)));
        qfit_store_model_free(&m);
    }
    if (ok) {
        json_t *j = json_pack("{s:o}", "models", models);
        qfit_http_respond_json(r, 200, j);
        json_decref(j);
    } else {
        json_decref(models);
    }
    free(e);
    qfit_store_close(st);
}

/* An OpenAI model object; id as the client spelled it. */
static json_t *openai_model(const char *id, const char *display, int64_t mtime)
{
    qfit_name n;
    char err[256];
    const char *owner = qfit_name_parse(display, &n, err, sizeof err) == 0 ? n.ns : "library";
    return json_pack("{s:s,s:s,s:I,s:s}", "id", id, "object", "model", "created", (json_int_t)mtime,
                     "owned_by", owner);
}

static void h_v1_models(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    qfit_store *st = open_store(r);
    if (!st) return;
    size_t n;
    qfit_store_entry *e;
    if (list_models(r, st, &e, &n) == 0) {
        json_t *data = json_array();
        for (size_t i = 0; i < n; i++)
            if (!e[i].error[0]) json_array_append_new(data, openai_model(e[i].name, e[i].name, e[i].mtime));
        json_t *j = json_pack("{s:s,s:o}", "object", "list", "data", data);
        qfit_http_respond_json(r, 200, j);
        json_decref(j);
    }
    free(e);
    qfit_store_close(st);
}

static void h_v1_model(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    const char *id = qfit_http_req_param(r, "id");
    qfit_store *st = open_store(r);
    if (!st) return;
    qfit_store_model m;
    if (resolve(r, st, id, &m) == 0) {
        char disp[QFIT_NAME_STR_MAX];
        qfit_name_display(&m.name, disp, sizeof disp);
        json_t *j = openai_model(id, disp, m.mtime);
        qfit_http_respond_json(r, 200, j);
        json_decref(j);
        qfit_store_model_free(&m);
    }
    qfit_store_close(st);
}

/* ---------------------------------------------------------------- /api/show */

/* One GGUF value as JSON; arrays longer than 5 elements are [] unless verbose
 * (Ollama's rule); nested arrays are given as []. */
static json_t *gguf_value_json(const qfit_gguf *g, int64_t i, bool verbose)
{
    int64_t iv;
    uint64_t uv;
    double fv;
    qfit_gguf_type t = qfit_gguf_kv_type(g, i);
    if (t == QFIT_GGUF_STRING) {
        qfit_gguf_str v = qfit_gguf_get_str(g, i);
        json_t *js = json_stringn(v.data, v.len);   /* NULL when not UTF-8 */
        return js ? js : json_string("");
    }
    if (t == QFIT_GGUF_BOOL) return json_boolean(qfit_gguf_get_bool(g, i));
    if (t == QFIT_GGUF_ARRAY) {
        json_t *a = json_array();
        uint64_t n = qfit_gguf_arr_len(g, i);
        qfit_gguf_type et = qfit_gguf_arr_type(g, i);
        if ((!verbose && n > 5) || et == QFIT_GGUF_ARRAY) return a;
        if (et == QFIT_GGUF_STRING) {
            for (uint64_t j = 0; j < n; j++) {
                qfit_gguf_str v = qfit_gguf_arr_str(g, i, j);
                json_t *js = json_stringn(v.data, v.len);
                json_array_append_new(a, js ? js : json_string(""));
            }
            return a;
        }
        qfit_gguf_value val = qfit_gguf_kv_value(g, i);
        for (uint64_t j = 0; j < n; j++) {
            qfit_gguf_value el;
            if (!qfit_gguf_value_elem(&val, j, &el)) break;
            const uint8_t *p = el.raw;
            json_t *x;
            switch (et) {
            case QFIT_GGUF_UINT8:   x = json_integer(p[0]); break;
            case QFIT_GGUF_INT8:    x = json_integer((int8_t)p[0]); break;
            case QFIT_GGUF_BOOL:    x = json_boolean(p[0]); break;
            case QFIT_GGUF_UINT16:  { uint16_t v; memcpy(&v, p, 2); x = json_integer(v); break; }
            case QFIT_GGUF_INT16:   { int16_t v; memcpy(&v, p, 2); x = json_integer(v); break; }
            case QFIT_GGUF_UINT32:  { uint32_t v; memcpy(&v, p, 4); x = json_integer(v); break; }
            case QFIT_GGUF_INT32:   { int32_t v; memcpy(&v, p, 4); x = json_integer(v); break; }
            case QFIT_GGUF_UINT64:  { uint64_t v; memcpy(&v, p, 8); x = v > INT64_MAX ? json_real((double)v) : json_integer((json_int_t)v); break; }
            case QFIT_GGUF_INT64:   { int64_t v; memcpy(&v, p, 8); x = json_integer(v); break; }
            case QFIT_GGUF_FLOAT32: { float v; memcpy(&v, p, 4); x = json_real(v); break; }
            case QFIT_GGUF_FLOAT64: { double v; memcpy(&v, p, 8); x = json_real(v); break; }
            default: x = json_null();
            }
            json_array_append_new(a, x ? x : json_null());
        }
        return a;
    }
    if (qfit_gguf_get_int(g, i, &iv)) return json_integer(iv);
    if (qfit_gguf_get_uint(g, i, &uv)) return json_real((double)uv);
    if (qfit_gguf_get_float(g, i, &fv)) return json_real(fv);
    return json_null();
}

/* Ollama's `parameters` text: "%-30s %#v" per value, one line per stop string. */
static char *parameters_text(const qfit_params *p)
{
    size_t cap = 256, len = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    out[0] = '\0';
    for (size_t i = 0; i < qfit_params_count(p); i++) {
        const qfit_param *e = qfit_params_at(p, i);
        size_t nvals = e->type == QFIT_PARAM_STRINGS ? e->nstrs : 1;
        for (size_t j = 0; j < nvals; j++) {
            char *v;
            if (e->type == QFIT_PARAM_STRINGS) {
                json_t *js = json_string(e->strs[j]);
                v = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
                json_decref(js);
            } else {
                v = qfit_params_value_text(e);
            }
            if (!v) { free(out); return NULL; }
            size_t need = len + strlen(e->name) + strlen(v) + 40;
            if (need > cap) {
                while (cap < need) cap *= 2;
                char *no = realloc(out, cap);
                if (!no) { free(v); free(out); return NULL; }
                out = no;
            }
            len += (size_t)snprintf(out + len, cap - len, "%s%-30s %s", len ? "\n" : "", e->name, v);
            free(v);
        }
    }
    return out;
}

static void h_show(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    json_t *body = qfit_http_req_json(r);
    if (!body) return;
    bool verbose = json_is_true(json_object_get(body, "verbose"));
    qfit_store *st = open_store(r);
    qfit_store_model m;
    if (!st || resolve(r, st, model_field(body), &m) != 0) {
        qfit_store_close(st);
        json_decref(body);
        return;
    }
    char err[1024], disp[QFIT_NAME_STR_MAX], path[4096], when[32];
    qfit_name_display(&m.name, disp, sizeof disp);
    qfit_modelfile *mf = NULL;
    qfit_gguf *g = NULL;
    char *mtext = NULL, *ptext = NULL, *jinja = NULL;
    if (qfit_store_model_modelfile(st, &m, &mf, NULL, err, sizeof err) != 0 ||
        !(mtext = qfit_modelfile_print(mf, disp, err, sizeof err)) || !(ptext = parameters_text(mf->params))) {
        qfit_http_respond_error(r, 500, "model '%s': %s", disp, mtext ? "out of memory" : err);
        goto out;
    }
    if (mf->nroutes) {   /* a routing model: its Modelfile, no weights of its own */
        json_t *j = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:{}, s:[s]}", "modelfile", mtext, "parameters", "",
                              "template", "", "details", "format", "qfit-routes", "parent_model", "", "model_info",
                              "capabilities", "completion");
        if (j) qfit_http_respond_json(r, 200, j);
        else qfit_http_respond_error(r, 500, "out of memory");
        json_decref(j);
        goto out;
    }
    if (qfit_store_model_path(st, &m, QFIT_LAYER_MODEL, path, sizeof path) < 0 ||
        !(g = qfit_gguf_open(path, err, sizeof err))) {
        qfit_http_respond_error(r, 500, "model '%s': its GGUF cannot be read: %s", disp, err);
        goto out;
    }
    json_t *info = json_object();
    char arch[128] = "";
    qfit_gguf_get_string(g, "general.architecture", arch, sizeof arch);
    for (int64_t i = 0; i < qfit_gguf_n_kv(g); i++) {
        qfit_gguf_str k = qfit_gguf_key(g, i);
        char key[256];
        if (k.len >= sizeof key) continue;
        memcpy(key, k.data, k.len);
        key[k.len] = '\0';
        if (!strcmp(key, "general.name")) continue;
        if (!strcmp(key, "tokenizer.chat_template")) {
            qfit_gguf_str v = qfit_gguf_get_str(g, i);
            free(jinja);
            jinja = strndup(v.data, v.len);
            continue;
        }
        json_object_set_new(info, key, gguf_value_json(g, i, verbose));
    }
    const char *tmpl = mf->tmpl ? mf->tmpl : jinja ? jinja : "";
    json_t *caps = json_array();
    char pooling[160];
    snprintf(pooling, sizeof pooling, "%s.pooling_type", arch);
    json_array_append_new(caps, json_string(qfit_gguf_find_key(g, pooling) >= 0 ? "embedding" : "completion"));
    if (strstr(tmpl, ".Tools") || (!mf->tmpl && strstr(tmpl, "tools"))) json_array_append_new(caps, json_string("tools"));
    if (strstr(tmpl, ".Suffix")) json_array_append_new(caps, json_string("insert"));
    if (strstr(tmpl, ".Think")) json_array_append_new(caps, json_string("thinking"));
    if (qfit_manifest_layer(m.manifest, QFIT_LAYER_PROJECTOR)) json_array_append_new(caps, json_string("vision"));
    json_t *msgs = json_array();
    size_t lic_len = 0;
    for (size_t i = 0; i < mf->nlicenses; i++) lic_len += strlen(mf->licenses[i]) + 1;
    char *license = calloc(1, lic_len + 1);
    for (size_t i = 0; license && i < mf->nlicenses; i++) {
        if (i) strcat(license, "\n");
        strcat(license, mf->licenses[i]);
    }
    for (size_t i = 0; i < mf->nmessages; i++)
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", mf->messages[i].role,
                                              "content", mf->messages[i].content));
    rfc3339(m.mtime, when);
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:s}", "modelfile", mtext, "parameters", ptext,
                          "template", tmpl, "system", mf->system ? mf->system : "",
                          "license", license ? license : "", "details", model_details(st, &m),
                          "messages", msgs, "model_info", info, "capabilities", caps, "modified_at", when);
    free(license);
    if (j) qfit_http_respond_json(r, 200, j);
    else qfit_http_respond_error(r, 500, "model '%s': metadata is not valid UTF-8", disp);
    json_decref(j);
out:
    free(jinja);
    free(ptext);
    free(mtext);
    qfit_gguf_close(g);
    qfit_modelfile_free(mf);
    qfit_store_model_free(&m);
    qfit_store_close(st);
    json_decref(body);
}

/* ---------------------------------------------------------------- copy, delete */

static void h_copy(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    json_t *body = qfit_http_req_json(r);
    if (!body) return;
    const char *src = json_string_value(json_object_get(body, "source"));
    const char *dst = json_string_value(json_object_get(body, "destination"));
    qfit_name n;
    char err[1024];
    qfit_store *st = NULL;
    qfit_store_model m;
    if (!src || qfit_name_parse(src, &n, err, sizeof err) != 0)
        qfit_http_respond_error(r, 400, "source \"%s\" is invalid", src ? src : "");
    else if (!dst || qfit_name_parse(dst, &n, err, sizeof err) != 0)
        qfit_http_respond_error(r, 400, "destination \"%s\" is invalid", dst ? dst : "");
    else if ((st = open_store(r)) != NULL) {
        if (qfit_store_resolve(st, src, &m, err, sizeof err) != 0)
            qfit_http_respond_error(r, strstr(err, "not found") ? 404 : 500, "model \"%s\" not found", src);
        else {
            qfit_store_model_free(&m);
            if (qfit_store_copy(st, src, dst, err, sizeof err) != 0) qfit_http_respond_error(r, 500, "%s", err);
            else qfit_http_respond(r, 200, NULL, "", 0);
        }
    }
    qfit_store_close(st);
    json_decref(body);
}

static void h_delete(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    json_t *body = qfit_http_req_json(r);
    if (!body) return;
    const char *name = model_field(body);
    qfit_store *st = open_store(r);
    qfit_store_model m;
    if (st && resolve(r, st, name, &m) == 0) {
        qfit_store_model_free(&m);
        char err[1024];
        if (qfit_store_remove(st, name, err, sizeof err) < 0) qfit_http_respond_error(r, 500, "%s", err);
        else qfit_http_respond(r, 200, NULL, "", 0);
    }
    qfit_store_close(st);
    json_decref(body);
}

/* ---------------------------------------------------------------- blobs */

/* Ollama's ^sha256[:-][0-9a-fA-F]{64}$, except that qfit's store names blobs in
 * lowercase hex only: an uppercase digest is refused, naming it. */
static int blob_digest(qfit_http_req *r, qfit_digest *d)
{
    char err[256];
    const char *s = qfit_http_req_param(r, "digest");
    if (!s || qfit_digest_parse(s, d, err, sizeof err) != 0) {
        qfit_http_respond_error(r, 400, "invalid digest \"%.80s\": %s", s ? s : "", err);
        return -1;
    }
    return 0;
}

static void h_blob_head(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    qfit_digest d;
    qfit_store *st;
    if (blob_digest(r, &d) != 0 || !(st = open_store(r))) return;
    if (qfit_store_has_blob(st, &d, NULL)) qfit_http_respond(r, 200, NULL, "", 0);
    else qfit_http_respond_error(r, 404, "blob \"sha256:%s\" not found", d.hex);
    qfit_store_close(st);
}

typedef struct {
    qfit_store       *st;
    qfit_blob_writer *w;
} upload;

static void upload_free(void *p)
{
    upload *u = p;
    if (u->w) qfit_blob_abort(u->w);   /* the client went away: the partial file stays for prune */
    qfit_store_close(u->st);
    free(u);
}

/* POST /api/blobs/:digest: 200 at once when the blob exists (the body is not read),
 * else the body is hashed while written and renamed into place when it matches. */
static int blob_body(qfit_http_req *r, const char *data, size_t len, void *ctx)
{
    (void)ctx;
    char err[1024];
    upload *u = qfit_http_req_user(r);
    if (!data) {
        qfit_digest d;
        if (blob_digest(r, &d) != 0) return -1;
        if (!(u = calloc(1, sizeof *u))) { qfit_http_respond_error(r, 500, "out of memory"); return -1; }
        qfit_http_req_set_user(r, u, upload_free);
        if (!(u->st = open_store(r))) return -1;
        if (qfit_store_has_blob(u->st, &d, NULL)) {
            qfit_http_respond(r, 200, NULL, "", 0);
            return -1;
        }
        if (!(u->w = qfit_blob_begin(u->st, &d, 0, err, sizeof err))) {
            qfit_http_respond_error(r, 500, "%s", err);
            return -1;
        }
        return 0;
    }
    if (qfit_blob_write(u->w, data, len, err, sizeof err) != 0) {
        qfit_http_respond_error(r, 500, "%s", err);
        return -1;
    }
    return 0;
}

static void h_blob_post(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    upload *u = qfit_http_req_user(r);
    char err[1024];
    if (!u || !u->w) { qfit_http_respond_error(r, 500, "blob upload: no writer"); return; }
    qfit_blob_writer *w = u->w;
    u->w = NULL;   /* commit frees it whatever the result */
    if (qfit_blob_commit(w, NULL, NULL, err, sizeof err) != 0)
        qfit_http_respond_error(r, strstr(err, "mismatch") ? 400 : 500, "%s", err);
    else
        qfit_http_respond(r, 201, NULL, "", 0);
}

int qfit_server_add_store_routes(qfit_server *s, char *err, size_t err_len)
{
    const unsigned M = QFIT_HTTP_MANAGE;
    const qfit_http_route routes[] = {
        { "GET",    "/api/tags",          h_tags,      NULL, 0, 0, NULL },
        { "HEAD",   "/api/tags",          h_tags,      NULL, 0, 0, NULL },
        { "POST",   "/api/show",          h_show,      NULL, 0, 0, NULL },
        { "POST",   "/api/copy",          h_copy,      NULL, M, 0, NULL },
        { "DELETE", "/api/delete",        h_delete,    NULL, M, 0, NULL },
        { "HEAD",   "/api/blobs/:digest", h_blob_head, NULL, M, 0, NULL },
        { "POST",   "/api/blobs/:digest", h_blob_post, NULL, M, (size_t)QFIT_BLOB_MAX_SIZE, blob_body },
        { "GET",    "/v1/models",         h_v1_models, NULL, 0, 0, NULL },
        { "GET",    "/v1/models/*id",     h_v1_model,  NULL, 0, 0, NULL },
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (qfit_server_route(s, &routes[i], err, err_len) != 0) return -1;
    return 0;
}
