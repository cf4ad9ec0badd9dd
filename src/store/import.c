/* Import a local GGUF file under a model name: validate it with the GGUF reader,
 * store it as a blob (a hard link when asked and possible, else a copy hashed
 * while written), write the config blob from its metadata, then the manifest. */
#include "store/store_internal.h"
#include "qfit/gguf.h"
#include "qfit/quantize.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IO_CHUNK (1u << 20)

/* Config fields from the GGUF metadata, as Ollama's create fills them. */
static int config_from_gguf(const char *path, qfit_model_config *c, char *err, size_t err_len)
{
    char gerr[512];
    qfit_gguf *g = qfit_gguf_open(path, gerr, sizeof gerr);
    if (!g) {
        snprintf(err, err_len, "'%s' is not a valid GGUF file: %s", path, gerr);
        return -1;
    }
    memset(c, 0, sizeof *c);
    strcpy(c->model_format, "gguf");
    strcpy(c->architecture, "amd64");   /* Ollama writes these two constants */
    strcpy(c->os, "linux");
    if (!qfit_gguf_get_string(g, "general.architecture", c->model_family, sizeof c->model_family))
        c->model_family[0] = 0;
    int64_t ki = qfit_gguf_find_key(g, "general.file_type");
    uint64_t ft;
    const char *ftn = ki >= 0 && qfit_gguf_get_uint(g, ki, &ft) && ft < 1024 ? qfit_ftype_name((int)ft) : NULL;
    snprintf(c->file_type, sizeof c->file_type, "%s", ftn ? ftn : "unknown");
    uint64_t params = 0;
    for (int64_t i = 0; i < qfit_gguf_n_tensors(g); i++)
        params += (uint64_t)qfit_gguf_tensor_nelements(qfit_gguf_tensor_at(g, i));
    qfit_human_number(params, c->model_type, sizeof c->model_type);
    qfit_gguf_close(g);
    return 0;
}

/* Copy the file into a new blob, hashing while writing. */
static int copy_blob(qfit_store *s, const char *path, const qfit_import_opts *o, qfit_digest *d,
                     int64_t *size, char *err, size_t err_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { snprintf(err, err_len, "cannot open '%s': %s", path, strerror(errno)); return -1; }
    struct stat st;
    uint64_t total = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    unsigned char *buf = malloc(IO_CHUNK);
    qfit_blob_writer *w = buf ? qfit_blob_begin(s, NULL, 0, err, err_len) : NULL;
    if (!w) {
        if (!buf) snprintf(err, err_len, "out of memory");
        free(buf);
        close(fd);
        return -1;
    }
    uint64_t done = 0;
    int rc = 0;
    for (;;) {
        ssize_t r = read(fd, buf, IO_CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { snprintf(err, err_len, "cannot read '%s': %s", path, strerror(errno)); rc = -1; break; }
        if (r == 0) break;
        if (qfit_blob_write(w, buf, (size_t)r, err, err_len) != 0) { rc = -1; break; }
        done += (uint64_t)r;
        if (o->progress) o->progress(done, total, o->progress_ctx);
    }
    free(buf);
    close(fd);
    if (rc != 0) { qfit_blob_abort(w); return -1; }
    return qfit_blob_commit(w, d, size, err, err_len);
}

/* Hard-link the file into blobs/ under a temporary name, hash that (the same
 * inode), rename it into place. 1 when linking is impossible here (other file
 * system, no hard links): the caller copies instead. */
static int link_blob(qfit_store *s, const char *path, const qfit_import_opts *o, qfit_digest *d,
                     int64_t *size, char *err, size_t err_len)
{
    char dir[ST_PATH_MAX], tmp[ST_PATH_MAX], final[ST_PATH_MAX];
    if (st_path(dir, sizeof dir, err, err_len, "%s/blobs", s->root) != 0 || st_mkdirs(dir, err, err_len) != 0)
        return -1;
    int tries = 0;
    for (;;) {
        if (st_path(tmp, sizeof tmp, err, err_len, "%s/" ST_TMP_PREFIX "link-%ld-%d-%x", dir, (long)getpid(),
                    tries, (unsigned)rand()) != 0)
            return -1;
        if (link(path, tmp) == 0) break;
        if (errno == EXDEV || errno == EPERM || errno == EMLINK || errno == ENOTSUP || errno == EOPNOTSUPP)
            return 1;
        if (errno != EEXIST || ++tries > 100) {
            snprintf(err, err_len, "cannot link '%s' to '%s': %s", path, tmp, strerror(errno));
            return -1;
        }
    }
    if (st_hash_file(tmp, d, size, o->progress, o->progress_ctx, err, err_len) != 0 ||
        qfit_store_blob_path(s, d, final, sizeof final) < 0) {
        unlink(tmp);
        return -1;
    }
    struct stat st;
    if (stat(final, &st) == 0) {
        unlink(tmp);   /* that content is already stored */
    } else if (rename(tmp, final) != 0) {
        snprintf(err, err_len, "cannot rename '%s' to '%s': %s", tmp, final, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return st_fsync_dir(dir, err, err_len);
}

int st_add_gguf(qfit_store *s, const char *gguf_path, const qfit_import_opts *opts, bool *linked,
                qfit_layer *model, qfit_layer *config, char *err, size_t err_len)
{
    static const qfit_import_opts none = { 0 };
    const qfit_import_opts *o = opts ? opts : &none;
    if (linked) *linked = false;
    struct stat st;
    if (stat(gguf_path, &st) != 0) {
        snprintf(err, err_len, "cannot read '%s': %s", gguf_path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "'%s' is not a regular file", gguf_path);
        return -1;
    }
    qfit_model_config cfg;
    if (config_from_gguf(gguf_path, &cfg, err, err_len) != 0) return -1;

    *model = (qfit_layer){ .kind = QFIT_LAYER_MODEL };
    int r = 1;
    if (o->link) {
        r = link_blob(s, gguf_path, o, &model->digest, &model->size, err, err_len);
        if (r < 0) return -1;
        if (r == 0 && linked) *linked = true;
    }
    if (r == 1 && copy_blob(s, gguf_path, o, &model->digest, &model->size, err, err_len) != 0) return -1;

    *config = (qfit_layer){ .kind = QFIT_LAYER_OTHER };
    size_t clen;
    char *cj = qfit_model_config_build(&cfg, &clen);
    if (!cj) { snprintf(err, err_len, "out of memory"); return -1; }
    int rc = qfit_store_add_blob(s, cj, clen, &config->digest, err, err_len);
    config->size = (int64_t)clen;
    free(cj);
    return rc;
}

int qfit_store_import_gguf(qfit_store *s, const char *gguf_path, const char *name,
                           const qfit_import_opts *opts, bool *linked, char *err, size_t err_len)
{
    if (linked) *linked = false;
    qfit_name n;
    if (qfit_name_parse(name, &n, err, err_len) != 0) return -1;
    qfit_layer model, config;
    if (st_add_gguf(s, gguf_path, opts, linked, &model, &config, err, err_len) != 0) return -1;
    return qfit_store_write_manifest(s, &n, &config, &model, 1, err, err_len);
}
