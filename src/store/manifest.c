/* Manifests (Docker schema 2 as Ollama writes them) and config blobs (ConfigV2).
 * Parsing is bounded (bytes, layer count, sizes) and every digest is validated;
 * unknown fields and unknown layer media types are ignored when reading. */
#include "store/store_internal.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEDIA_PREFIX "application/vnd.ollama.image."
#define MEDIA_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define FROM_MAX 4096

static const char *const KIND_MEDIA[QFIT_LAYER_KIND_COUNT] = {
    [QFIT_LAYER_MODEL]     = MEDIA_PREFIX "model",
    [QFIT_LAYER_TEMPLATE]  = MEDIA_PREFIX "template",
    [QFIT_LAYER_SYSTEM]    = MEDIA_PREFIX "system",
    [QFIT_LAYER_PARAMS]    = MEDIA_PREFIX "params",
    [QFIT_LAYER_LICENSE]   = MEDIA_PREFIX "license",
    [QFIT_LAYER_MESSAGES]  = MEDIA_PREFIX "messages",
    [QFIT_LAYER_ADAPTER]   = MEDIA_PREFIX "adapter",
    [QFIT_LAYER_PROJECTOR] = MEDIA_PREFIX "projector",
    [QFIT_LAYER_ROUTES]    = "application/vnd.qfit.routes",
    [QFIT_LAYER_OTHER]     = NULL,
};

const char *qfit_layer_media_type(qfit_layer_kind kind)
{
    return (unsigned)kind < QFIT_LAYER_KIND_COUNT ? KIND_MEDIA[kind] : NULL;
}

qfit_layer_kind qfit_layer_kind_of(const char *media_type)
{
    for (int k = 0; k < QFIT_LAYER_OTHER; k++)
        if (strcmp(media_type, KIND_MEDIA[k]) == 0) return (qfit_layer_kind)k;
    if (strcmp(media_type, MEDIA_PREFIX "prompt") == 0) return QFIT_LAYER_TEMPLATE; /* legacy name */
    return QFIT_LAYER_OTHER;
}

void qfit_manifest_free(qfit_manifest *m)
{
    if (!m) return;
    free(m->config.from);
    for (size_t i = 0; i < m->n_layers; i++) free(m->layers[i].from);
    free(m->layers);
    free(m);
}

/* One {mediaType, digest, size, from?} object; what names it in messages. */
static int parse_layer(json_t *o, const char *what, qfit_layer *l, char *err, size_t err_len)
{
    if (!json_is_object(o)) { snprintf(err, err_len, "manifest: %s is not an object", what); return -1; }
    json_t *mt = json_object_get(o, "mediaType"), *dg = json_object_get(o, "digest"),
           *sz = json_object_get(o, "size"), *fr = json_object_get(o, "from");
    if (!json_is_string(mt) || json_string_length(mt) == 0 || json_string_length(mt) > QFIT_MEDIA_TYPE_MAX) {
        snprintf(err, err_len, "manifest: %s.mediaType is missing, not a string or longer than %d bytes",
                 what, QFIT_MEDIA_TYPE_MAX);
        return -1;
    }
    if (!json_is_string(dg)) { snprintf(err, err_len, "manifest: %s.digest is missing or not a string", what); return -1; }
    char derr[512];
    if (qfit_digest_parse_len(json_string_value(dg), json_string_length(dg), &l->digest, derr, sizeof derr) != 0) {
        snprintf(err, err_len, "manifest: %s.digest: %s", what, derr);
        return -1;
    }
    if (!json_is_integer(sz) || json_integer_value(sz) < 0 || json_integer_value(sz) > QFIT_BLOB_MAX_SIZE) {
        if (json_is_integer(sz))
            snprintf(err, err_len, "manifest: %s.size %" JSON_INTEGER_FORMAT " is out of range (0..%" PRId64 ")",
                     what, json_integer_value(sz), (int64_t)QFIT_BLOB_MAX_SIZE);
        else
            snprintf(err, err_len, "manifest: %s.size is missing or not an integer", what);
        return -1;
    }
    memcpy(l->media_type, json_string_value(mt), json_string_length(mt) + 1);
    l->kind = qfit_layer_kind_of(l->media_type);
    l->size = (int64_t)json_integer_value(sz);
    if (fr && !json_is_null(fr)) {
        if (!json_is_string(fr) || json_string_length(fr) > FROM_MAX) {
            snprintf(err, err_len, "manifest: %s.from is not a string of at most %d bytes", what, FROM_MAX);
            return -1;
        }
        if (!(l->from = strdup(json_string_value(fr)))) { snprintf(err, err_len, "out of memory"); return -1; }
    }
    return 0;
}

qfit_manifest *qfit_manifest_parse(const void *bytes, size_t len, char *err, size_t err_len)
{
    if (len > QFIT_MANIFEST_MAX_BYTES) {
        snprintf(err, err_len, "manifest is %zu bytes, more than the %u allowed", len, QFIT_MANIFEST_MAX_BYTES);
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, err_len, "manifest is not valid JSON: %s at line %d column %d", je.text, je.line, je.column);
        return NULL;
    }
    qfit_manifest *m = calloc(1, sizeof *m);
    if (!m) { snprintf(err, err_len, "out of memory"); json_decref(root); return NULL; }
    json_t *sv = json_object_get(root, "schemaVersion"), *mt = json_object_get(root, "mediaType");
    json_t *layers = json_object_get(root, "layers");
    if (!json_is_object(root)) { snprintf(err, err_len, "manifest is not a JSON object"); goto fail; }
    if (!json_is_integer(sv) || json_integer_value(sv) != 2) {
        snprintf(err, err_len, "manifest: schemaVersion must be 2");
        goto fail;
    }
    if (mt && !(json_is_string(mt) && (strcmp(json_string_value(mt), QFIT_MEDIA_MANIFEST) == 0 ||
                                       strcmp(json_string_value(mt), MEDIA_OCI_MANIFEST) == 0))) {
        snprintf(err, err_len, "manifest: mediaType is not \"%s\"", QFIT_MEDIA_MANIFEST);
        goto fail;
    }
    if (parse_layer(json_object_get(root, "config"), "config", &m->config, err, err_len) != 0) goto fail;
    if (!json_is_array(layers)) { snprintf(err, err_len, "manifest: layers is missing or not an array"); goto fail; }
    size_t n = json_array_size(layers);
    if (n > QFIT_MANIFEST_MAX_LAYERS) {
        snprintf(err, err_len, "manifest has %zu layers, more than the %d allowed", n, QFIT_MANIFEST_MAX_LAYERS);
        goto fail;
    }
    m->layers = calloc(n ? n : 1, sizeof *m->layers);
    if (!m->layers) { snprintf(err, err_len, "out of memory"); goto fail; }
    m->total_size = m->config.size;
    for (size_t i = 0; i < n; i++) {
        char what[32];
        snprintf(what, sizeof what, "layers[%zu]", i);
        m->n_layers = i + 1;   /* so a partly filled layer is freed */
        if (parse_layer(json_array_get(layers, i), what, &m->layers[i], err, err_len) != 0) goto fail;
        m->total_size += m->layers[i].size;   /* <= 1025 * 2^44: no overflow */
    }
    m->n_layers = n;
    qfit_digest_of(bytes, len, &m->id);
    json_decref(root);
    return m;
fail:
    json_decref(root);
    qfit_manifest_free(m);
    return NULL;
}

const qfit_layer *qfit_manifest_layer(const qfit_manifest *m, qfit_layer_kind kind)
{
    for (size_t i = m->n_layers; i > 0; i--)
        if (m->layers[i - 1].kind == kind) return &m->layers[i - 1];
    return NULL;
}

static json_t *layer_json(const qfit_layer *l, bool config)
{
    const char *mt = config ? QFIT_MEDIA_CONFIG : (l->kind == QFIT_LAYER_OTHER ? l->media_type : KIND_MEDIA[l->kind]);
    char d[QFIT_DIGEST_STR];
    qfit_digest_str(&l->digest, d);
    json_t *o = json_object();
    json_object_set_new(o, "mediaType", json_string(mt));
    json_object_set_new(o, "digest", json_string(d));
    json_object_set_new(o, "size", json_integer(l->size));
    if (l->from && *l->from) json_object_set_new(o, "from", json_string(l->from));
    return o;
}

/* Compact JSON in insertion order plus "\n", as Go's json.Encoder writes it. */
static char *dump_line(json_t *root, size_t *len)
{
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s) return NULL;
    size_t n = strlen(s);
    char *out = realloc(s, n + 2);
    if (!out) { free(s); return NULL; }
    out[n] = '\n';
    out[n + 1] = 0;
    *len = n + 1;
    return out;
}

char *qfit_manifest_build(const qfit_layer *config, const qfit_layer *layers, size_t n,
                          size_t *len, char *err, size_t err_len)
{
    if (n > QFIT_MANIFEST_MAX_LAYERS) {
        snprintf(err, err_len, "%zu layers, more than the %d allowed", n, QFIT_MANIFEST_MAX_LAYERS);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned)layers[i].kind >= QFIT_LAYER_KIND_COUNT ||
            (layers[i].kind == QFIT_LAYER_OTHER && !layers[i].media_type[0])) {
            snprintf(err, err_len, "layer %zu has no media type", i);
            return NULL;
        }
        if (layers[i].size < 0 || layers[i].size > QFIT_BLOB_MAX_SIZE) {
            snprintf(err, err_len, "layer %zu: size %" PRId64 " out of range", i, layers[i].size);
            return NULL;
        }
    }
    json_t *root = json_object();
    json_object_set_new(root, "schemaVersion", json_integer(2));
    json_object_set_new(root, "mediaType", json_string(QFIT_MEDIA_MANIFEST));
    json_object_set_new(root, "config", layer_json(config, true));
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, layer_json(&layers[i], false));
    json_object_set_new(root, "layers", arr);
    char *out = dump_line(root, len);
    if (!out) snprintf(err, err_len, "out of memory building a manifest");
    return out;
}

/* ---------------------------------------------------------------- config blob */

void qfit_human_number(uint64_t n, char *buf, size_t cap)
{
    /* Ollama's format.HumanNumber */
    double v;
    if (n >= 1000000000ull) {
        v = (double)n / 1e9;
        snprintf(buf, cap, v == floor(v) ? "%.0fB" : "%.1fB", v);
    } else if (n >= 1000000ull) {
        v = (double)n / 1e6;
        snprintf(buf, cap, v == floor(v) ? "%.0fM" : "%.2fM", v);
    } else if (n >= 1000ull) {
        snprintf(buf, cap, "%.0fK", (double)n / 1e3);
    } else {
        snprintf(buf, cap, "%" PRIu64, n);
    }
}

char *qfit_model_config_build(const qfit_model_config *c, size_t *len)
{
    json_t *root = json_object();
    json_object_set_new(root, "model_format", json_string(c->model_format));
    json_object_set_new(root, "model_family", json_string(c->model_family));
    json_t *fam = json_array();
    if (c->model_family[0]) json_array_append_new(fam, json_string(c->model_family));
    json_object_set_new(root, "model_families", fam);
    json_object_set_new(root, "model_type", json_string(c->model_type));
    json_object_set_new(root, "file_type", json_string(c->file_type));
    json_object_set_new(root, "architecture", json_string(c->architecture));
    json_object_set_new(root, "os", json_string(c->os));
    /* Go's json.Marshal (not Encoder): no trailing newline */
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (s) *len = strlen(s);
    return s;
}

static void copy_field(json_t *root, const char *key, char *dst, size_t cap)
{
    json_t *v = json_object_get(root, key);
    dst[0] = 0;
    if (json_is_string(v) && json_string_length(v) < cap) memcpy(dst, json_string_value(v), json_string_length(v) + 1);
}

int qfit_model_config_parse(const void *bytes, size_t len, qfit_model_config *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *root = json_loadb(bytes, len, 0, &je);
    if (!json_is_object(root)) {
        snprintf(err, err_len, "config blob is not a JSON object%s%s", root ? "" : ": ", root ? "" : je.text);
        json_decref(root);
        return -1;
    }
    copy_field(root, "model_format", out->model_format, sizeof out->model_format);
    copy_field(root, "model_family", out->model_family, sizeof out->model_family);
    copy_field(root, "model_type", out->model_type, sizeof out->model_type);
    copy_field(root, "file_type", out->file_type, sizeof out->file_type);
    copy_field(root, "architecture", out->architecture, sizeof out->architecture);
    copy_field(root, "os", out->os, sizeof out->os);
    json_decref(root);
    return 0;
}
