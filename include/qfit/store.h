/* qfit — the model store: Ollama's model names, digests and on-disk layout.
 *
 * Layout under a root (QFIT_MODELS, else OLLAMA_MODELS, else ~/.qfit/models), the
 * same as Ollama's so both tools can share one store:
 *   manifests/<host>/<namespace>/<model>/<tag>   raw manifest bytes (schemaVersion 2);
 *                                                their sha256 is the model ID
 *   blobs/sha256-<64 lowercase hex>              content-addressed blobs
 *   blobs/sha256-<hex>-partial                   a blob being written (resumable)
 *   <dir>/.qfit-tmp-XXXXXX                       temporary files of atomic writes
 *
 * Invariants kept by every operation, even when the process is killed at any
 * instruction: a file named blobs/sha256-<hex> holds exactly the bytes whose
 * sha256 is <hex> (blobs are hashed while written and renamed into place only
 * when verified); a manifest is written (temp + fsync + rename + directory fsync)
 * only after every blob it names is complete. Leftovers of an interrupted write
 * are temporary or partial files, which `qfit_store_prune` removes.
 *
 * Names and digests are validated before any path is built from them: a digest is
 * "sha256:" or "sha256-" followed by exactly 64 lowercase hex digits; a name follows
 * Ollama's grammar (types/model/name.go), see qfit_name_parse. Names compare
 * case-insensitively; a lookup finds an existing manifest path whatever its case.
 *
 * Errors: functions return -1 (or NULL) and write a message naming the problem
 * (the name, the path, the field, both digests) into err[err_len].
 * Ownership: objects returned by the open, parse, resolve and list functions are
 * freed by the matching close/free function (or free() where said). Paths are copied.
 * Thread-safety: a qfit_store handle is not shared between threads without a lock;
 * separate qfit processes may use one store at once: renames are atomic, a blob
 * being written is locked by its writer (prune skips it), and manifest writes
 * exclude blob removal through flock on <root>/.qfit-lock (a file Ollama ignores).
 * Units: sizes in bytes, times in seconds since the epoch.
 */
#ifndef QFIT_STORE_H
#define QFIT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qfit/modelfile.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- names */

#define QFIT_NAME_MAX_INPUT  4096  /* longer names are refused */
#define QFIT_NAME_HOST_MAX   350
#define QFIT_NAME_PART_MAX   80    /* namespace, model, tag */
/* host/ns/model:tag plus a NUL */
#define QFIT_NAME_STR_MAX    (QFIT_NAME_HOST_MAX + 3 * QFIT_NAME_PART_MAX + 4)

typedef struct {
    char scheme[8];                              /* "https" (default) or "http" */
    char host[QFIT_NAME_HOST_MAX + 1];           /* default "registry.ollama.ai" */
    char ns[QFIT_NAME_PART_MAX + 1];             /* default "library" */
    char model[QFIT_NAME_PART_MAX + 1];
    char tag[QFIT_NAME_PART_MAX + 1];            /* default "latest" */
} qfit_name;

/* Parse "[scheme://][host/][namespace/]model[:tag]" (Ollama's ParseName):
 *  - the tag is split off only when the last ':' comes after the last '/'
 *    ("localhost:5000/ns/m" has no tag); then model, namespace, host from the right;
 *  - host [A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}; namespace [A-Za-z0-9_][A-Za-z0-9_-]{0,79};
 *    model and tag [A-Za-z0-9_][A-Za-z0-9_.-]{0,79}; an empty part after a separator
 *    is an error; scheme, if given, is http or https.
 * So "..", "/", "\\", "%", NUL and absolute paths can never reach a path.
 * 0 on success; -1 with a message naming the part and the character otherwise. */
int  qfit_name_parse(const char *s, qfit_name *out, char *err, size_t err_len);
/* The same for a buffer that may contain NUL bytes (refused). */
int  qfit_name_parse_len(const char *s, size_t len, qfit_name *out, char *err, size_t err_len);
/* Ollama's DisplayShortest: "model:tag", "ns/model:tag" when ns is not library,
 * "host/ns/model:tag" when host is not registry.ollama.ai (case-insensitive).
 * Returns the length, or -1 if cap is too small (buf then holds ""). */
int  qfit_name_display(const qfit_name *n, char *buf, size_t cap);
/* "host/ns/model:tag"; same return convention. */
int  qfit_name_full(const qfit_name *n, char *buf, size_t cap);
/* Case-insensitive equality of host, namespace, model and tag. */
bool qfit_name_equal(const qfit_name *a, const qfit_name *b);

/* ---------------------------------------------------------------- digests */

#define QFIT_DIGEST_HEX  64
#define QFIT_DIGEST_STR  (7 + QFIT_DIGEST_HEX + 1)   /* "sha256:" + hex + NUL */

typedef struct {
    char hex[QFIT_DIGEST_HEX + 1];   /* 64 lowercase hex digits, NUL-terminated */
} qfit_digest;

/* "sha256:<hex>" or "sha256-<hex>", exactly 64 lowercase hex. 0 or -1 + message. */
int  qfit_digest_parse(const char *s, qfit_digest *out, char *err, size_t err_len);
int  qfit_digest_parse_len(const char *s, size_t len, qfit_digest *out, char *err, size_t err_len);
/* "sha256:<hex>" into buf[QFIT_DIGEST_STR]. */
void qfit_digest_str(const qfit_digest *d, char buf[QFIT_DIGEST_STR]);
bool qfit_digest_equal(const qfit_digest *a, const qfit_digest *b);
/* sha256 of a buffer. */
void qfit_digest_of(const void *data, size_t len, qfit_digest *out);

/* ---------------------------------------------------------------- manifests */

#define QFIT_MANIFEST_MAX_BYTES  (4u << 20)   /* bigger manifests are refused */
#define QFIT_MANIFEST_MAX_LAYERS 1024
#define QFIT_BLOB_MAX_SIZE       (INT64_C(1) << 44)  /* 16 TiB: larger sizes are refused */
#define QFIT_MEDIA_TYPE_MAX      255

#define QFIT_MEDIA_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define QFIT_MEDIA_CONFIG   "application/vnd.docker.container.image.v1+json"

typedef enum {
    QFIT_LAYER_MODEL = 0,   /* application/vnd.ollama.image.model: the GGUF */
    QFIT_LAYER_TEMPLATE,    /* .template (and the legacy .prompt): Go template text */
    QFIT_LAYER_SYSTEM,      /* .system: text */
    QFIT_LAYER_PARAMS,      /* .params: JSON object of options */
    QFIT_LAYER_LICENSE,     /* .license: text, one layer per license */
    QFIT_LAYER_MESSAGES,    /* .messages: JSON array of {role, content} */
    QFIT_LAYER_ADAPTER,     /* .adapter: LoRA GGUF */
    QFIT_LAYER_PROJECTOR,   /* .projector: mmproj GGUF */
    QFIT_LAYER_ROUTES,      /* application/vnd.qfit.routes: a routing model's ROUTE lines,
                               JSON [{"rule": ..., "model": ...}] (qfit's own; Ollama ignores it) */
    QFIT_LAYER_OTHER,       /* any other media type: kept, referenced, otherwise ignored */
    QFIT_LAYER_KIND_COUNT
} qfit_layer_kind;

typedef struct {
    qfit_layer_kind kind;
    char        media_type[QFIT_MEDIA_TYPE_MAX + 1];
    qfit_digest digest;
    int64_t     size;
    char       *from;   /* optional "from" field (NULL if absent); owned by the manifest */
} qfit_layer;

/* The media type Ollama writes for a kind (NULL for OTHER). */
const char     *qfit_layer_media_type(qfit_layer_kind kind);
/* Kind of a media type string (OTHER when unknown). */
qfit_layer_kind qfit_layer_kind_of(const char *media_type);

typedef struct {
    qfit_layer  config;
    qfit_layer *layers;
    size_t      n_layers;
    qfit_digest id;          /* sha256 of the manifest bytes */
    int64_t     total_size;  /* config + all layers */
} qfit_manifest;

/* Parse and validate manifest bytes (bounded: QFIT_MANIFEST_MAX_BYTES, _MAX_LAYERS,
 * sizes 0..QFIT_BLOB_MAX_SIZE, every digest valid). NULL + message on error. */
qfit_manifest *qfit_manifest_parse(const void *bytes, size_t len, char *err, size_t err_len);
void           qfit_manifest_free(qfit_manifest *m);
/* The layer Ollama uses for a kind: the last one of that kind (NULL if none). */
const qfit_layer *qfit_manifest_layer(const qfit_manifest *m, qfit_layer_kind kind);
/* Manifest bytes as Ollama writes them (compact JSON + "\n"); malloc'd, *len set. */
char *qfit_manifest_build(const qfit_layer *config, const qfit_layer *layers, size_t n,
                          size_t *len, char *err, size_t err_len);

/* Config blob (ConfigV2) fields qfit reads and writes; unknown fields are ignored. */
typedef struct {
    char model_format[16];    /* "gguf" */
    char model_family[64];    /* general.architecture */
    char model_type[32];      /* parameter count, Ollama's HumanNumber: "7.30M", "8.0B" */
    char file_type[32];       /* "Q4_K_M", "F16", ... */
    char architecture[16];    /* "amd64" */
    char os[16];              /* "linux" */
} qfit_model_config;

/* Bytes of a config blob (families = [model_family]); malloc'd, *len set. */
char *qfit_model_config_build(const qfit_model_config *c, size_t *len);
/* Read the fields above from config blob bytes (missing ones stay ""). */
int   qfit_model_config_parse(const void *bytes, size_t len, qfit_model_config *out,
                              char *err, size_t err_len);
/* Ollama's HumanNumber of a parameter count: 7300000 -> "7.30M", 8e9 -> "8B". */
void  qfit_human_number(uint64_t n, char *buf, size_t cap);

/* ---------------------------------------------------------------- the store */

typedef struct qfit_store qfit_store;

/* The default root: QFIT_MODELS, else OLLAMA_MODELS (values trimmed of spaces and
 * quotes, as Ollama does), else $HOME/.qfit/models. 0 or -1 + message. */
int  qfit_store_default_root(char *buf, size_t cap, char *err, size_t err_len);
/* A handle on root (nothing is created until something is written). Pruning of
 * blobs a removed/overwritten manifest leaves unreferenced is on unless
 * QFIT_NOPRUNE or OLLAMA_NOPRUNE is set (Go ParseBool; unparsable = true). */
qfit_store *qfit_store_open(const char *root, char *err, size_t err_len);
void        qfit_store_close(qfit_store *s);
const char *qfit_store_root(const qfit_store *s);
void        qfit_store_set_prune(qfit_store *s, bool prune_unused_blobs);

/* root/blobs/sha256-<hex>. Returns the length, -1 if it does not fit. */
int  qfit_store_blob_path(const qfit_store *s, const qfit_digest *d, char *buf, size_t cap);
bool qfit_store_has_blob(const qfit_store *s, const qfit_digest *d, int64_t *size);

/* ---- blob writer: hashes while streaming into blobs/ and renames into place.
 * With an expected digest the data goes to blobs/sha256-<hex>-partial (locked while
 * open); QFIT_BLOB_RESUME continues an existing partial file (its bytes are hashed
 * again first; qfit_blob_offset says where to continue). Without one it goes to a
 * unique temporary file. commit() fsyncs, checks the digest ("digest mismatch"
 * naming both; the bad file is removed), renames to blobs/sha256-<hex> and fsyncs
 * the directory; it frees the writer whatever the result. abort() frees it, removing
 * a temporary file but keeping a partial one for a later resume. */
typedef struct qfit_blob_writer qfit_blob_writer;
#define QFIT_BLOB_RESUME 1u
/* With an expected digest: the partial file is kept as it is and written at
 * offsets with qfit_blob_write_at (pwrite: distinct ranges may be written from
 * several threads at once); commit() then hashes the whole file. For parallel
 * range downloads; the caller tracks which ranges are complete. */
#define QFIT_BLOB_RANDOM 2u
qfit_blob_writer *qfit_blob_begin(qfit_store *s, const qfit_digest *expected, unsigned flags,
                                  char *err, size_t err_len);
uint64_t qfit_blob_offset(const qfit_blob_writer *w);
int  qfit_blob_write(qfit_blob_writer *w, const void *data, size_t n, char *err, size_t err_len);
int  qfit_blob_write_at(qfit_blob_writer *w, uint64_t offset, const void *data, size_t n,
                        char *err, size_t err_len);
int  qfit_blob_commit(qfit_blob_writer *w, qfit_digest *out, int64_t *size, char *err, size_t err_len);
void qfit_blob_abort(qfit_blob_writer *w);

/* A blob from memory (template, system, params, license, messages, config). */
int  qfit_store_add_blob(qfit_store *s, const void *data, size_t len, qfit_digest *out,
                         char *err, size_t err_len);

/* Write the manifest of name from a config layer and layers (media types from
 * their kind, or media_type for OTHER). Every blob must exist with its size, else
 * nothing is written. Replacing another manifest prunes its now-unused blobs
 * (unless disabled). */
int  qfit_store_write_manifest(qfit_store *s, const qfit_name *name, const qfit_layer *config,
                               const qfit_layer *layers, size_t n, char *err, size_t err_len);
/* The same from raw manifest bytes (kept byte for byte, as a pull stores them). */
int  qfit_store_put_manifest(qfit_store *s, const qfit_name *name, const void *bytes, size_t len,
                             char *err, size_t err_len);

/* A model found by name (case-insensitive). */
typedef struct {
    qfit_name      name;         /* as stored on disk (its case) */
    char          *manifest_path;
    qfit_manifest *manifest;
    int64_t        mtime;        /* manifest file's modification time */
} qfit_store_model;

/* 0 on success; -1 + "model 'x' not found" or the parse error. */
int  qfit_store_resolve(qfit_store *s, const char *name, qfit_store_model *out, char *err, size_t err_len);
void qfit_store_model_free(qfit_store_model *m);
/* Path of the blob of the layer of that kind (the last one); -1 if there is none. */
int  qfit_store_model_path(const qfit_store *s, const qfit_store_model *m, qfit_layer_kind kind,
                           char *buf, size_t cap);
/* A small layer blob into memory (at most max bytes), verified against its digest;
 * malloc'd and NUL-terminated, *len set. */
char *qfit_store_read_blob(const qfit_store *s, const qfit_layer *l, size_t max, size_t *len,
                           char *err, size_t err_len);

/* ---- operations */
typedef struct {
    char        name[QFIT_NAME_STR_MAX];  /* display-shortest form */
    qfit_digest id;
    int64_t     size;
    int64_t     mtime;
    char        error[256];               /* non-empty: this manifest could not be read */
} qfit_store_entry;

/* Every manifest, newest first; *out is malloc'd (free()). Unreadable manifests are
 * listed with error set. */
int qfit_store_list(qfit_store *s, qfit_store_entry **out, size_t *n, char *err, size_t err_len);
/* Remove a manifest, then (unless disabled) the blobs no other manifest names.
 * 0 when done; 1 when the model was removed but its blobs were kept (another
 * manifest is unreadable, or this one was): err then says why; -1 on error. */
int qfit_store_remove(qfit_store *s, const char *name, char *err, size_t err_len);
/* A new manifest for dst with the same bytes (and blobs) as src. */
int qfit_store_copy(qfit_store *s, const char *src, const char *dst, char *err, size_t err_len);

/* Prune: blobs no manifest names, partial and temporary files, empty manifest
 * folders. report(path, bytes, ctx) is called for each (may be NULL). With dry_run
 * nothing is removed. Refuses to remove blobs while any manifest is unreadable. */
typedef void (*qfit_store_report_fn)(const char *path, int64_t bytes, void *ctx);
int qfit_store_prune(qfit_store *s, bool dry_run, qfit_store_report_fn report, void *ctx,
                     int64_t *freed, char *err, size_t err_len);

/* Re-hash every blob of a model. 0 when all exist and verify; -1 + message naming
 * the first bad blob otherwise. */
int qfit_store_verify(qfit_store *s, const char *name, char *err, size_t err_len);

/* Import a GGUF file under name: validated with qfit_gguf_open, config blob filled
 * from its metadata. link: store the file by hard link (no extra bytes) where the
 * filesystem allows; *linked says whether it was linked (false: copied, e.g. across
 * file systems). progress(done, total, ctx) may be NULL. */
typedef void (*qfit_store_progress_fn)(uint64_t done, uint64_t total, void *ctx);
typedef struct {
    bool                   link;
    qfit_store_progress_fn progress;
    void                  *progress_ctx;
} qfit_import_opts;
int qfit_store_import_gguf(qfit_store *s, const char *gguf_path, const char *name,
                           const qfit_import_opts *opts, bool *linked, char *err, size_t err_len);

/* ---- create from a Modelfile (src/store/create.c; needs include/qfit/modelfile.h) */
/* What a stored model says, as a Modelfile: from = the model blob's path, and its
 * template, system, params, licenses and messages layers. *out is freed with
 * qfit_modelfile_free. Unknown keys of the params layer become warnings in w
 * (may be NULL). 0 or -1 + message. */
int qfit_store_model_modelfile(const qfit_store *s, const qfit_store_model *m,
                               qfit_modelfile **out, qfit_warnings *w,
                               char *err, size_t err_len);

typedef struct {
    const char            *modelfile_dir;   /* FROM paths are relative to it (NULL: cwd) */
    int                    quantize_ftype;  /* a qfit_ftype, or -1: keep the GGUF as it is */
    qfit_store_progress_fn progress;        /* hashing/copying progress; may be NULL */
    void                  *progress_ctx;
    void (*status)(const char *msg, void *ctx);  /* "quantizing ...", may be NULL */
    void                  *status_ctx;
} qfit_create_opts;

/* Create (or replace) the model name from a parsed Modelfile, as `ollama create`:
 * FROM a GGUF file imports it (quantized first into a temporary file in the store
 * when quantize_ftype >= 0; only F32/F16/BF16 sources can be quantized); FROM a
 * stored model reuses its model layer and inherits its template, system,
 * licenses and messages unless the Modelfile sets them, and its parameters under
 * the Modelfile's (merged per name). FROM a directory (safetensors) is refused.
 * Every blob is complete before the manifest is written (one atomic rename).
 * 0 or -1 + message naming the problem. */
int qfit_store_create(qfit_store *s, const char *name, const qfit_modelfile *mf,
                      const qfit_create_opts *opts, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif
#endif /* QFIT_STORE_H */
