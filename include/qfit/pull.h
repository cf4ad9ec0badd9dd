/* qfit — pull a model from an Ollama-compatible registry into the store.
 *
 * Protocol (Ollama's server/images.go PullModel, see docs/ollama-compat-reference.md §5):
 *   GET {scheme}://{host}/v2/{ns}/{model}/manifests/{tag}
 *       Accept: application/vnd.docker.distribution.manifest.v2+json
 *   GET {scheme}://{host}/v2/{ns}/{model}/blobs/sha256:<hex>   for each missing blob
 * Hugging Face names (hf.co/USER/REPO[:QUANT], huggingface.co/...) are registry hosts
 * speaking the same protocol; nothing else is special about them.
 *
 * Guarantees:
 *  - the manifest is fetched (at most QFIT_MANIFEST_MAX_BYTES) and validated with the
 *    store's bounded parser before anything is downloaded or written;
 *  - plain http is refused unless opts->insecure;
 *  - redirects 301/302/303/307/308 are followed (at most QFIT_PULL_MAX_REDIRECTS per
 *    request), only to http/https URLs (http only with insecure); the Authorization
 *    header (opts->bearer_token) is sent only to the registry's own host and port;
 *  - no automatic decompression (no gzip bomb): a body with Content-Encoding: gzip
 *    is kept as the bytes received (a gzip manifest is then invalid JSON); error
 *    bodies are read up to QFIT_PULL_ERR_BODY_READ bytes (the transfer is then
 *    stopped) and quoted up to QFIT_PULL_ERR_BODY_MAX bytes;
 *  - a blob smaller than opts->parallel_min is downloaded as one stream and hashed
 *    while streaming through the store's blob writer; an interrupted download
 *    (dropped connection, Ctrl-C, kill -9) keeps blobs/sha256-<hex>-partial and
 *    the next pull continues it with a Range request from its length;
 *  - a larger blob is split into opts->parts contiguous ranges downloaded at once
 *    (one connection each, Range: bytes=A-B), each written at its offset. Which
 *    bytes of each range are on disk is recorded in blobs/sha256-<hex>-partial.parts
 *    (the partial file is fdatasync'ed first, the record written to a temporary
 *    file, fsync'ed and renamed), each time the unrecorded bytes reach 1/128 of the
 *    bytes done (at least 64 KiB): so a killed pull loses under 1% of what it had
 *    fetched, plus what was in flight. A record that does not parse or does not
 *    match the blob (digest, size, ranges, the partial file's length) is not
 *    trusted: the download starts from nothing. As the ranges arrive out of order,
 *    the blob is hashed once when complete (one extra sequential read of the file,
 *    about 1 s per 2 GB from the page cache). A registry that answers a range with
 *    200 (no Range support) gets the blob downloaded again as one stream from 0;
 *  - a dropped connection is retried within the same pull from the byte it
 *    stopped at, QFIT_PULL_RETRIES times per stream or range;
 *  - a digest mismatch is an error naming both digests and the bad file is
 *    removed, so a retry downloads it again;
 *  - not enough disk space is an error naming the blobs folder and the bytes needed,
 *    checked before the download (statvfs) and on a failing write (ENOSPC, EDQUOT,
 *    EFBIG); the partial file is kept, so the next pull after freeing space resumes;
 *  - the manifest is written (qfit_store_put_manifest, byte for byte) only after every
 *    blob it names is complete and verified.
 *
 * Plan before download (opts->plan): the model layer's GGUF header is fetched with a
 * Range request (QFIT_PULL_HEADER_FIRST bytes, then up to QFIT_PULL_HEADER_MAX) and the
 * memory planner (qfit/plan.h) is run on it for this machine at the default settings.
 * A model that does not fit is refused unless opts->force; opts->plan_only stops after
 * the plan and downloads nothing.
 *
 * Errors: qfit_pull returns 0, or -1 with a message in err[err_len] ("model 'x' not
 * found", "registry returned 500 for URL: <body excerpt>", "digest mismatch ...").
 * Ownership: nothing returned is owned by the caller; strings passed to callbacks are
 * valid only during the call. Thread-safety: one qfit_pull per store handle at a time;
 * qfit_pull calls curl_global_init itself (not thread-safe the first time it runs).
 * The progress and plan callbacks run on the calling thread; a large blob's range
 * record is written by one helper thread, joined before qfit_pull returns.
 * Units: bytes.
 */
#ifndef QFIT_PULL_H
#define QFIT_PULL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qfit/plan.h"
#include "qfit/store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QFIT_PULL_MAX_REDIRECTS 10
#define QFIT_PULL_RETRIES       3          /* attempts per blob after a network error */
#define QFIT_PULL_ERR_BODY_MAX  512        /* bytes of an error body quoted in messages */
#define QFIT_PULL_ERR_BODY_READ (64u << 10)/* bytes of an error body read at most */
#define QFIT_PULL_PARTS_DEFAULT 4          /* ranges of a large blob downloaded at once */
#define QFIT_PULL_PARTS_MAX     16
#define QFIT_PULL_PARALLEL_MIN_DEFAULT (UINT64_C(64) << 20)  /* smaller blobs: one stream */
#define QFIT_PULL_HEADER_FIRST  (8u << 20) /* first Range request for the GGUF header */
#define QFIT_PULL_HEADER_MAX    (64u << 20)/* metadata larger than this: no plan (error) */

/* Progress of a pull: status is one of Ollama's strings ("pulling manifest",
 * "pulling <first 12 hex of the digest>", "verifying sha256 digest",
 * "writing manifest", "success"). digest is the blob's "sha256:<hex>" (NULL for
 * the other states); completed/total are that blob's bytes, all_* those of every
 * blob of the manifest (blobs already present count as complete). */
typedef struct {
    const char *status;
    const char *digest;
    uint64_t    completed, total;
    uint64_t    all_completed, all_total;
} qfit_pull_progress;
typedef void (*qfit_pull_progress_fn)(const qfit_pull_progress *p, void *ctx);

/* The plan made from the model layer's GGUF header (opts->plan). */
typedef void (*qfit_pull_plan_fn)(const qfit_plan_model *m, const qfit_plan_machine *mach,
                                  const qfit_plan_result *r, void *ctx);

typedef struct {
    bool insecure;                 /* allow http:// registries (and redirects to http) */
    bool plan;                     /* plan from the GGUF header before the download */
    bool plan_only;                /* with plan: stop after the plan, download nothing */
    bool force;                    /* with plan: download even when it does not fit */
    const qfit_plan_machine *machine;  /* with plan: NULL = this machine (detected) */
    const char *bearer_token;      /* NULL: no Authorization header */
    unsigned parts;                /* ranges per large blob, 1..QFIT_PULL_PARTS_MAX; 0 = default */
    uint64_t parallel_min;         /* bytes from which a blob is split; 0 = default */
    /* "HOST:PORT:ADDRESS" entries, NULL-terminated, as curl --resolve: connect to
     * ADDRESS for HOST:PORT (tests serve hf.co from a loopback registry). NULL: DNS. */
    const char *const *resolve;
    qfit_pull_progress_fn progress;
    qfit_pull_plan_fn     on_plan;
    void *ctx;                     /* passed to progress and on_plan */
} qfit_pull_opts;

/* Pull name (qfit_name_parse grammar) into the store. opts may be NULL (defaults:
 * https only, no plan). 0 on success, -1 + message. */
int qfit_pull(qfit_store *s, const char *name, const qfit_pull_opts *opts, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif
#endif /* QFIT_PULL_H */
