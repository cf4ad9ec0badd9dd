/* qfit — create a stored model from a parsed Modelfile (`qfit create`), and the
 * reverse: a stored model as a Modelfile (`qfit show --modelfile`). */
#include "store/store_internal.h"
#include "qfit/quantize.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SMALL_LAYER_MAX (16u << 20)   /* template/system/params/license/messages */

static char *read_layer(const qfit_store *s, const qfit_manifest *m, qfit_layer_kind kind,
                        char *err, size_t err_len)
{
    const qfit_layer *l = qfit_manifest_layer(m, kind);
    if (!l) return NULL;
    size_t len;
    return qfit_store_read_blob(s, l, SMALL_LAYER_MAX, &len, err, err_len);
}

/* A layer holding a JSON array of two-string objects ({"role","content"} messages,
 * {"rule","model"} routes), each added to mf with add(). `empty_ok` false: an empty
 * array is an error. */
static int pairs_from_json(qfit_modelfile *mf, const char *text, const char *layer, const char *k1, const char *k2,
                           bool empty_ok, int (*add)(qfit_modelfile *, const char *, const char *, char *, size_t),
                           char *err, size_t err_len)
{
    json_error_t je;
    json_t *a = json_loads(text, 0, &je);
    if (!json_is_array(a) || (!empty_ok && json_array_size(a) == 0)) {
        snprintf(err, err_len, "%s layer: not a%s JSON array (%s)", layer, empty_ok ? "" : " non-empty",
                 a ? "other value" : je.text);
        json_decref(a);
        return -1;
    }
    int rc = 0;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        const char *x = json_string_value(json_object_get(v, k1));
        const char *y = json_string_value(json_object_get(v, k2));
        if (!x || !y) {
            snprintf(err, err_len, "%s layer: entry %zu lacks a string %s or %s", layer, i, k1, k2);
            rc = -1;
            break;
        }
        if (add(mf, x, y, err, err_len) != 0) { rc = -1; break; }
    }
    json_decref(a);
    return rc;
}

static int messages_from_json(qfit_modelfile *mf, const char *text, char *err, size_t err_len)
{
    return pairs_from_json(mf, text, "messages", "role", "content", true, qfit_modelfile_add_message, err, err_len);
}

static int routes_from_json(qfit_modelfile *mf, const char *text, char *err, size_t err_len)
{
    return pairs_from_json(mf, text, "routes", "rule", "model", false, qfit_modelfile_add_route, err, err_len);
}

int qfit_store_model_modelfile(const qfit_store *s, const qfit_store_model *m,
                               qfit_modelfile **out, qfit_warnings *w, char *err, size_t err_len)
{
    *out = NULL;
    char path[4096];
    if (qfit_manifest_layer(m->manifest, QFIT_LAYER_ROUTES)) {   /* a routing model: its routes only */
        qfit_modelfile *mf = qfit_modelfile_new();
        err[0] = '\0';
        char *text = mf ? read_layer(s, m->manifest, QFIT_LAYER_ROUTES, err, err_len) : NULL;
        if (!mf || !text || routes_from_json(mf, text, err, err_len) != 0) {
            if (!mf || (!text && !err[0])) snprintf(err, err_len, "out of memory");
            free(text);
            qfit_modelfile_free(mf);
            return -1;
        }
        free(text);
        *out = mf;
        return 0;
    }
    if (qfit_store_model_path(s, m, QFIT_LAYER_MODEL, path, sizeof path) < 0) {
        snprintf(err, err_len, "model has no model layer");
        return -1;
    }
    qfit_modelfile *mf = qfit_modelfile_new();
    if (!mf || !(mf->from = strdup(path))) goto oom;
    err[0] = '\0';
    const qfit_manifest *man = m->manifest;
    /* read_layer returns NULL both for "absent" and for an error: err tells them apart */
    mf->tmpl = read_layer(s, man, QFIT_LAYER_TEMPLATE, err, err_len);
    if (err[0]) goto fail;
    mf->system = read_layer(s, man, QFIT_LAYER_SYSTEM, err, err_len);
    if (err[0]) goto fail;
    char *params = read_layer(s, man, QFIT_LAYER_PARAMS, err, err_len);
    if (err[0]) goto fail;
    if (params) {
        json_error_t je;
        json_t *o = json_loads(params, 0, &je);
        free(params);
        if (!json_is_object(o)) {
            snprintf(err, err_len, "params layer: not a JSON object (%s)", o ? "other type" : je.text);
            json_decref(o);
            goto fail;
        }
        qfit_params *p = qfit_params_from_json(o, w, err, err_len);
        json_decref(o);
        if (!p) goto fail;
        qfit_params_free(mf->params);
        mf->params = p;
    }
    for (size_t i = 0; i < man->n_layers; i++) {   /* every license layer, in order */
        if (man->layers[i].kind != QFIT_LAYER_LICENSE) continue;
        size_t len;
        char *t = qfit_store_read_blob(s, &man->layers[i], SMALL_LAYER_MAX, &len, err, err_len);
        if (!t) goto fail;
        int rc = qfit_modelfile_add_license(mf, t, err, err_len);
        free(t);
        if (rc != 0) goto fail;
    }
    char *msgs = read_layer(s, man, QFIT_LAYER_MESSAGES, err, err_len);
    if (err[0]) goto fail;
    if (msgs) {
        int rc = messages_from_json(mf, msgs, err, err_len);
        free(msgs);
        if (rc != 0) goto fail;
    }
    *out = mf;
    return 0;
oom:
    snprintf(err, err_len, "out of memory");
fail:
    qfit_modelfile_free(mf);
    return -1;
}

/* ---------------------------------------------------------------- create */

typedef struct {
    qfit_layer layers[8 + 64];
    size_t     n;
} layer_list;

static int add_text_layer(qfit_store *s, layer_list *L, qfit_layer_kind kind, const char *text,
                          size_t len, char *err, size_t err_len)
{
    if (L->n == sizeof L->layers / sizeof L->layers[0]) {
        snprintf(err, err_len, "too many layers (at most %zu)", sizeof L->layers / sizeof L->layers[0]);
        return -1;
    }
    qfit_layer *l = &L->layers[L->n];
    *l = (qfit_layer){ .kind = kind, .size = (int64_t)len };
    if (qfit_store_add_blob(s, text, len, &l->digest, err, err_len) != 0) return -1;
    L->n++;
    return 0;
}

static int add_json_layer(qfit_store *s, layer_list *L, qfit_layer_kind kind, json_t *j,
                          char *err, size_t err_len)
{
    /* Ollama's encoding: compact, sorted keys, float32 values at 9 digits */
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(j);
    if (!text) { snprintf(err, err_len, "out of memory"); return -1; }
    int rc = add_text_layer(s, L, kind, text, strlen(text), err, err_len);
    free(text);
    return rc;
}

static json_t *messages_to_json(const qfit_modelfile *mf)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < mf->nmessages; i++) {
        json_t *o = json_pack("{s:s, s:s}", "role", mf->messages[i].role,
                              "content", mf->messages[i].content);
        if (!o || json_array_append_new(a, o) != 0) { json_decref(a); return NULL; }
    }
    return a;
}

/* The effective Modelfile: the base model's values under the Modelfile's own. */
static int inherit(qfit_modelfile *dst, const qfit_modelfile *base, const qfit_modelfile *mf,
                   char *err, size_t err_len)
{
    const qfit_modelfile *t = mf->tmpl ? mf : base;
    const qfit_modelfile *sy = mf->system ? mf : base;
    const qfit_modelfile *li = mf->nlicenses ? mf : base;
    const qfit_modelfile *me = mf->nmessages ? mf : base;
    if ((t->tmpl && !(dst->tmpl = strdup(t->tmpl))) ||
        (sy->system && !(dst->system = strdup(sy->system)))) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < li->nlicenses; i++)
        if (qfit_modelfile_add_license(dst, li->licenses[i], err, err_len) != 0) return -1;
    for (size_t i = 0; i < me->nmessages; i++)
        if (qfit_modelfile_add_message(dst, me->messages[i].role, me->messages[i].content,
                                       err, err_len) != 0) return -1;
    if (qfit_params_merge(dst->params, base->params, err, err_len) != 0) return -1;
    return qfit_params_merge(dst->params, mf->params, err, err_len);
}

/* The model and config layers of FROM name: copied from the stored model, whose
 * other layers go into *base. */
static int from_file(qfit_store *s, const char *path, const qfit_create_opts *o,
                     qfit_layer *model, qfit_layer *config, char *err, size_t err_len);

/* The layers of FROM a stored model; with --quantize, its model layer quantized into a
 * new model layer (and config). */
static int from_store(qfit_store *s, const char *from, const qfit_create_opts *o, qfit_layer *model,
                      qfit_layer *config, qfit_modelfile **base, char *err, size_t err_len)
{
    qfit_store_model sm;
    if (qfit_store_resolve(s, from, &sm, err, err_len) != 0) return -1;
    int rc = -1;
    const qfit_layer *ml = qfit_manifest_layer(sm.manifest, QFIT_LAYER_MODEL);
    if (!ml) {
        snprintf(err, err_len, "FROM %s: that model has no model layer", from);
        goto out;
    }
    for (size_t i = 0; i < sm.manifest->n_layers; i++) {   /* never drop a layer silently */
        qfit_layer_kind k = sm.manifest->layers[i].kind;
        if (k == QFIT_LAYER_ADAPTER || k == QFIT_LAYER_PROJECTOR || k == QFIT_LAYER_OTHER) {
            snprintf(err, err_len, "FROM %s: that model has a layer qfit cannot carry over yet (%s)",
                     from, sm.manifest->layers[i].media_type);
            goto out;
        }
    }
    if (o->quantize_ftype >= 0) {
        char blob[4096];
        if (qfit_store_blob_path(s, &ml->digest, blob, sizeof blob) < 0 ||
            from_file(s, blob, o, model, config, err, err_len) != 0)
            goto out;
    } else {
        *model = *ml;
        model->from = NULL;
        *config = sm.manifest->config;
        config->from = NULL;
    }
    rc = qfit_store_model_modelfile(s, &sm, base, NULL, err, err_len);
out:
    qfit_store_model_free(&sm);
    return rc;
}

/* The model and config layers of FROM a GGUF file, quantized first if asked. */
static int from_file(qfit_store *s, const char *path, const qfit_create_opts *o,
                     qfit_layer *model, qfit_layer *config, char *err, size_t err_len)
{
    qfit_import_opts io = { .link = o->quantize_ftype >= 0, .progress = o->progress, .progress_ctx = o->progress_ctx };
    if (o->quantize_ftype < 0)
        return st_add_gguf(s, path, &io, NULL, model, config, err, err_len);

    /* quantize into a temporary file inside the store (same file system: the
     * blob is then a hard link, no copy), removed whatever happens */
    char tmp[4096];
    if (st_path(tmp, sizeof tmp, err, err_len, "%s/blobs", qfit_store_root(s)) != 0 ||
        st_mkdirs(tmp, err, err_len) != 0 ||
        st_path(tmp, sizeof tmp, err, err_len, "%s/blobs/.qfit-tmp-XXXXXX", qfit_store_root(s)) != 0)
        return -1;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, err_len, "cannot create a temporary file in %s/blobs: %s",
                 qfit_store_root(s), strerror(errno));
        return -1;
    }
    close(fd);
    unlink(tmp);   /* qfit_quantize_model creates it itself */
    if (o->status) {
        char msg[128];
        snprintf(msg, sizeof msg, "quantizing to %s", qfit_ftype_name(o->quantize_ftype));
        o->status(msg, o->status_ctx);
    }
    qfit_quantize_params qp = { .ftype = o->quantize_ftype };
    char qerr[512];
    int rc = qfit_quantize_model(path, tmp, &qp, NULL, qerr, sizeof qerr);
    if (rc != 0)
        snprintf(err, err_len, "quantize %s to %s: %s", path, qfit_ftype_name(o->quantize_ftype), qerr);
    else
        rc = st_add_gguf(s, tmp, &io, NULL, model, config, err, err_len);
    unlink(tmp);
    return rc;
}

/* A routing model: every model it names must be stored (or a GGUF file) and be no
 * routing model itself; the manifest holds the routes layer and a config saying so. */
static int create_router(qfit_store *s, const qfit_name *n, const qfit_modelfile *mf, char *err, size_t err_len)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < mf->nroutes; i++) {
        const char *target = mf->routes[i].model;
        if (access(target, R_OK) != 0) {
            qfit_store_model sm;
            char e2[512];
            if (qfit_store_resolve(s, target, &sm, e2, sizeof e2) != 0) {
                snprintf(err, err_len, "ROUTE %s %s: %s", mf->routes[i].rule, target, e2);
                json_decref(a);
                return -1;
            }
            const bool router = qfit_manifest_layer(sm.manifest, QFIT_LAYER_ROUTES) != NULL;
            qfit_store_model_free(&sm);
            if (router) {
                snprintf(err, err_len, "ROUTE %s %s: that is a routing model itself (routes do not chain)",
                         mf->routes[i].rule, target);
                json_decref(a);
                return -1;
            }
        }
        json_array_append_new(a, json_pack("{s:s, s:s}", "rule", mf->routes[i].rule, "model", target));
    }
    layer_list *L = calloc(1, sizeof *L);
    int rc = -1;
    if (!a || !L) snprintf(err, err_len, "out of memory");
    else if (add_json_layer(s, L, QFIT_LAYER_ROUTES, json_incref(a), err, err_len) == 0) {
        const char *cfg = "{\"model_format\":\"qfit-routes\",\"model_family\":\"\",\"model_type\":\"\","
                          "\"file_type\":\"\",\"architecture\":\"\",\"os\":\"\"}";
        qfit_layer config = { .kind = QFIT_LAYER_OTHER, .size = (int64_t)strlen(cfg) };
        if (qfit_store_add_blob(s, cfg, strlen(cfg), &config.digest, err, err_len) == 0)
            rc = qfit_store_write_manifest(s, n, &config, L->layers, L->n, err, err_len);
    }
    json_decref(a);
    free(L);
    return rc;
}

int qfit_store_create(qfit_store *s, const char *name, const qfit_modelfile *mf,
                      const qfit_create_opts *opts, char *err, size_t err_len)
{
    static const qfit_create_opts defaults = { .quantize_ftype = -1 };
    const qfit_create_opts *o = opts ? opts : &defaults;
    qfit_name n;
    if (qfit_name_parse(name, &n, err, err_len) != 0) return -1;
    if (mf->nroutes) return create_router(s, &n, mf, err, err_len);
    if (!mf->from) { snprintf(err, err_len, "no FROM line"); return -1; }
    if (o->quantize_ftype >= 0 && !qfit_ftype_supported(o->quantize_ftype)) {
        snprintf(err, err_len, "cannot quantize to %s (supported: %s)",
                 qfit_ftype_name(o->quantize_ftype), qfit_ftype_supported_list());
        return -1;
    }

    qfit_from_kind kind;
    char *path = NULL;
    if (qfit_modelfile_resolve_from(mf->from, o->modelfile_dir, &kind, &path, err, err_len) != 0)
        return -1;
    qfit_layer model, config;
    qfit_modelfile *base = NULL, *eff = qfit_modelfile_new();
    layer_list *L = calloc(1, sizeof *L);
    int rc = -1;
    if (!eff || !L) { snprintf(err, err_len, "out of memory"); goto out; }
    if (kind == QFIT_FROM_DIR) {
        snprintf(err, err_len, "FROM %s: a directory (safetensors) cannot be imported yet; "
                 "convert it to GGUF first", path);
        goto out;
    }
    if (kind == QFIT_FROM_NAME) {
        if (from_store(s, mf->from, o, &model, &config, &base, err, err_len) != 0) goto out;
    } else {
        if (from_file(s, path, o, &model, &config, err, err_len) != 0) goto out;
        if (!(base = qfit_modelfile_new())) { snprintf(err, err_len, "out of memory"); goto out; }
    }
    if (inherit(eff, base, mf, err, err_len) != 0) goto out;

    /* layers in Ollama's order: model, template, system, params, licenses, messages */
    L->layers[L->n++] = model;
    if (eff->tmpl && add_text_layer(s, L, QFIT_LAYER_TEMPLATE, eff->tmpl, strlen(eff->tmpl), err, err_len) != 0)
        goto out;
    if (eff->system && add_text_layer(s, L, QFIT_LAYER_SYSTEM, eff->system, strlen(eff->system), err, err_len) != 0)
        goto out;
    if (qfit_params_count(eff->params) &&
        add_json_layer(s, L, QFIT_LAYER_PARAMS, qfit_params_to_json(eff->params), err, err_len) != 0)
        goto out;
    for (size_t i = 0; i < eff->nlicenses; i++)
        if (add_text_layer(s, L, QFIT_LAYER_LICENSE, eff->licenses[i], strlen(eff->licenses[i]),
                           err, err_len) != 0)
            goto out;
    if (eff->nmessages &&
        add_json_layer(s, L, QFIT_LAYER_MESSAGES, messages_to_json(eff), err, err_len) != 0)
        goto out;
    rc = qfit_store_write_manifest(s, &n, &config, L->layers, L->n, err, err_len);
out:
    free(path);
    free(L);
    qfit_modelfile_free(base);
    qfit_modelfile_free(eff);
    return rc;
}
