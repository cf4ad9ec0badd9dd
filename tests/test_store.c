/* Suite store: model names and digests (Ollama's grammar, the bad names of
 * user-pain-points.md Part 4), manifests, the blob writer, import (copy and hard
 * link), a store written by hand in Ollama's layout, rm/cp/prune, and the store
 * invariant after `qfit import` is killed with SIGKILL at several points.
 * Digests are checked against `sha256sum`, not against qfit's own hashing. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qfit/store.h"
#include "util/testutil.h"

#define F32_MODEL "models/kjv-llama-7m-f32.gguf"

/* ---------------------------------------------------------------- helpers */

/* A fresh folder under the test's temporary directory. */
static const char *fresh_dir(const char *tag)
{
    static char bufs[4][4096];
    static int slot;
    char *b = bufs[slot++ & 3];
    snprintf(b, sizeof bufs[0], "%s/%s-%d", tu_tmpdir(), tag, (int)getpid());
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", b, b);
    cr_assert_eq(system(cmd), 0);
    return b;
}

static void write_file(const char *path, const void *data, size_t len)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", path);
    cr_assert_eq(system(cmd), 0);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* sha256 of a file by coreutils' sha256sum (independent of qfit's hashing). */
static void sha256sum(const char *path, char hex[65])
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    int st;
    char *out = tu_run(cmd, &st);
    cr_assert_eq(st, 0, "sha256sum failed: %s", out);
    cr_assert_geq(strlen(out), 64);
    memcpy(hex, out, 64);
    hex[64] = 0;
    free(out);
}

static qfit_store *open_at(const char *root)
{
    char err[512];
    qfit_store *s = qfit_store_open(root, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    return s;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Run the qfit binary with QFIT_MODELS=root. */
static char *run_qfit(const char *root, const char *args, int *status)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "QFIT_MODELS='%s' %s %s", root, tu_qfit_bin(), args);
    return tu_run(cmd, status);
}

/* ---------------------------------------------------------------- names */

Test(store, name_bad_refused)
{
    static const char *const BAD[] = {
        "../../etc/passwd", "a/../../b", "/etc/passwd", "/abs/path/model", "..", ".", "../x", "x/..",
        "%2e%2e", "%2e%2e/%2e%2e/etc/passwd", "..\\..\\windows", "a\\b", "ns/..\\m",
        "", ":", "a:", ":tag", "a/:x", "/", "a/", "/a", "a//b", "h//m", "h/ns/", "h/ns/m/extra",
        "ns.with.dot/model", "-model", "model:-tag", "model:.tag", "model:ta/g", "mo del", "model@sha256:abc",
        "model:tag:more", "ftp://host/ns/m", "file:///etc/passwd", "https:///ns/m",
        "registry.ollama.ai/library/m\n", "m\xc3\xa9", "sha256-../../x",
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        qfit_name n;
        char err[512] = "";
        cr_expect_eq(qfit_name_parse(BAD[i], &n, err, sizeof err), -1, "name \"%s\" was accepted", BAD[i]);
        cr_expect_gt(strlen(err), 10, "no message for \"%s\"", BAD[i]);
        cr_expect_not_null(strstr(err, "invalid model name"), "message for \"%s\": %s", BAD[i], err);
    }
    /* a NUL byte inside the name */
    qfit_name n;
    char err[512];
    cr_expect_eq(qfit_name_parse_len("llama\0../x", 10, &n, err, sizeof err), -1);
    cr_expect_not_null(strstr(err, "NUL"), "%s", err);
    /* parts over their limits, and names over 4 KB */
    char big[5000];
    memset(big, 'a', sizeof big);
    big[81] = 0;
    cr_expect_eq(qfit_name_parse(big, &n, err, sizeof err), -1, "81-character model accepted");
    cr_expect_not_null(strstr(err, "at most 80"), "%s", err);
    big[80] = 0;
    cr_expect_eq(qfit_name_parse(big, &n, err, sizeof err), 0, "80-character model refused: %s", err);
    memset(big, 'a', sizeof big);
    big[4097] = 0;
    cr_expect_eq(qfit_name_parse(big, &n, err, sizeof err), -1);
    cr_expect_not_null(strstr(err, "4096"), "%s", err);
    big[4999] = 0;
    for (int i = 100; i < 4990; i += 100) big[i] = '/';
    cr_expect_eq(qfit_name_parse(big, &n, err, sizeof err), -1);
}

typedef struct {
    const char *in, *scheme, *host, *ns, *model, *tag, *display;
} name_case;

Test(store, name_good_parts_and_display)
{
    /* expected values follow Ollama's ParseName + DisplayShortest (types/model/name.go) */
    static const name_case C[] = {
        { "llama3.2", "https", "registry.ollama.ai", "library", "llama3.2", "latest", "llama3.2:latest" },
        { "llama3.2:1b", "https", "registry.ollama.ai", "library", "llama3.2", "1b", "llama3.2:1b" },
        { "user/m:tag", "https", "registry.ollama.ai", "user", "m", "tag", "user/m:tag" },
        { "library/m", "https", "registry.ollama.ai", "library", "m", "latest", "m:latest" },
        { "LIBRARY/m", "https", "registry.ollama.ai", "LIBRARY", "m", "latest", "m:latest" },
        { "localhost:5000/ns/m", "https", "localhost:5000", "ns", "m", "latest", "localhost:5000/ns/m:latest" },
        { "localhost:5000/ns/m:t", "https", "localhost:5000", "ns", "m", "t", "localhost:5000/ns/m:t" },
        { "hf.co/User/Repo:Q4_K_M", "https", "hf.co", "User", "Repo", "Q4_K_M", "hf.co/User/Repo:Q4_K_M" },
        { "http://127.0.0.1:8080/a/b:c", "http", "127.0.0.1:8080", "a", "b", "c", "127.0.0.1:8080/a/b:c" },
        { "https://hf.co/u/r", "https", "hf.co", "u", "r", "latest", "hf.co/u/r:latest" },
        { "Registry.Ollama.AI/library/x_y-z.1:v1.0_b", "https", "Registry.Ollama.AI", "library", "x_y-z.1",
          "v1.0_b", "x_y-z.1:v1.0_b" },
        { "_/_:_", "https", "registry.ollama.ai", "_", "_", "_", "_/_:_" },
        { "a..b", "https", "registry.ollama.ai", "library", "a..b", "latest", "a..b:latest" },
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        qfit_name n;
        char err[512];
        cr_assert_eq(qfit_name_parse(C[i].in, &n, err, sizeof err), 0, "\"%s\" refused: %s", C[i].in, err);
        cr_expect_str_eq(n.scheme, C[i].scheme, "%s", C[i].in);
        cr_expect_str_eq(n.host, C[i].host, "%s", C[i].in);
        cr_expect_str_eq(n.ns, C[i].ns, "%s", C[i].in);
        cr_expect_str_eq(n.model, C[i].model, "%s", C[i].in);
        cr_expect_str_eq(n.tag, C[i].tag, "%s", C[i].in);
        char d[QFIT_NAME_STR_MAX];
        cr_expect_gt(qfit_name_display(&n, d, sizeof d), 0);
        cr_expect_str_eq(d, C[i].display, "%s", C[i].in);
    }
    /* host of 350 characters accepted, 351 refused */
    char host[400];
    memset(host, 'h', sizeof host);
    qfit_name n;
    char err[512], s[500];
    snprintf(s, sizeof s, "%.350s/ns/m", host);
    cr_expect_eq(qfit_name_parse(s, &n, err, sizeof err), 0, "%s", err);
    snprintf(s, sizeof s, "%.351s/ns/m", host);
    cr_expect_eq(qfit_name_parse(s, &n, err, sizeof err), -1);
    /* case-insensitive equality */
    qfit_name a, b;
    qfit_name_parse("HF.CO/user/REPO:q4_k_m", &a, err, sizeof err);
    qfit_name_parse("hf.co/User/Repo:Q4_K_M", &b, err, sizeof err);
    cr_expect(qfit_name_equal(&a, &b));
    qfit_name_parse("hf.co/User/Repo:Q4_K_S", &b, err, sizeof err);
    cr_expect_not(qfit_name_equal(&a, &b));
}

/* ---------------------------------------------------------------- digests */

Test(store, digest_validation)
{
    const char *hex = "8c1f3d6a6e1a4e4f5b0f3e1a9a7b1f0d2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f70";
    char s[200], err[512];
    qfit_digest d;
    snprintf(s, sizeof s, "sha256:%s", hex);
    cr_expect_eq(qfit_digest_parse(s, &d, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(d.hex, hex);
    snprintf(s, sizeof s, "sha256-%s", hex);
    cr_expect_eq(qfit_digest_parse(s, &d, err, sizeof err), 0, "%s", err);
    char str[QFIT_DIGEST_STR];
    qfit_digest_str(&d, str);
    snprintf(s, sizeof s, "sha256:%s", hex);
    cr_expect_str_eq(str, s);

    const char *bad[] = {
        "sha256:8c1f3d6a6e1a4e4f5b0f3e1a9a7b1f0d2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f7",    /* 63 */
        "sha256:8c1f3d6a6e1a4e4f5b0f3e1a9a7b1f0d2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f700",  /* 65 */
        "sha256:8C1F3D6A6E1A4E4F5B0F3E1A9A7B1F0D2C3E4F5A6B7C8D9E0F1A2B3C4D5E6F70",   /* upper */
        "sha256:../../../../../../../../../../../../../../../../../etc/passwd",
        "sha256-../8c1f3d6a6e1a4e4f5b0f3e1a9a7b1f0d2c3e4f5a6b7c8d9e0f1a2b3c4d5e",
        "sha512:8c1f3d6a6e1a4e4f5b0f3e1a9a7b1f0d2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f70",
        "8c1f3d6a6e1a4e4f5b0f3e1a9a7b1f0d2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f70",
        "sha256_8c1f3d6a6e1a4e4f5b0f3e1a9a7b1f0d2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f70",
        "sha256:8c1f3d6a6e1a4e4f5b0f3e1a9a7b1f0d2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f7g",
        "sha256:%2e%2e%2f", "sha256:", "sha256", "", "/etc/passwd",
        " sha256:8c1f3d6a6e1a4e4f5b0f3e1a9a7b1f0d2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f70",
        "sha256:8c1f3d6a6e1a4e4f5b0f3e1a9a7b1f0d2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f70\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        cr_expect_eq(qfit_digest_parse(bad[i], &d, err, sizeof err), -1, "digest \"%s\" accepted", bad[i]);
        cr_expect_not_null(strstr(err, "invalid digest"), "%s", err);
    }
    /* a NUL byte hidden inside */
    snprintf(s, sizeof s, "sha256:%s", hex);
    s[20] = 0;
    cr_expect_eq(qfit_digest_parse_len(s, 7 + 64, &d, err, sizeof err), -1);
}

/* ---------------------------------------------------------------- manifests */

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static char *manifest_with_layers(size_t n, const char *layer_fmt_extra)
{
    size_t cap = 300 + n * 200;
    char *m = malloc(cap);
    size_t o = (size_t)snprintf(m, cap, "{\"schemaVersion\":2,\"mediaType\":\"" QFIT_MEDIA_MANIFEST "\","
                                "\"config\":{\"mediaType\":\"" QFIT_MEDIA_CONFIG "\",\"digest\":\"sha256:" HEX_A
                                "\",\"size\":10},\"layers\":[");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(m + o, cap - o, "%s{\"mediaType\":\"application/vnd.ollama.image.model\","
                              "\"digest\":\"sha256:" HEX_B "\",\"size\":%s}", i ? "," : "",
                              layer_fmt_extra ? layer_fmt_extra : "20");
    snprintf(m + o, cap - o, "]}");
    return m;
}

Test(store, manifest_malicious_refused)
{
    char err[512];
    char *ok = manifest_with_layers(2, NULL);
    qfit_manifest *m = qfit_manifest_parse(ok, strlen(ok), err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    cr_expect_eq(m->n_layers, 2);
    cr_expect_eq(m->total_size, 50);
    qfit_manifest_free(m);
    free(ok);

    struct { const char *text; const char *want; } bad[] = {
        { "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:../../etc/passwd\",\"size\":1},\"layers\":[]}", "invalid digest" },
        { "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:" HEX_A "\",\"size\":-1},\"layers\":[]}", "out of range" },
        { "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:" HEX_A "\",\"size\":1e30},\"layers\":[]}", "size" },
        { "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:" HEX_A "\",\"size\":9223372036854775807},\"layers\":[]}", "out of range" },
        { "{\"schemaVersion\":1,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:" HEX_A "\",\"size\":1},\"layers\":[]}", "schemaVersion" },
        { "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:" HEX_A "\",\"size\":1},\"layers\":[{\"mediaType\":\"y\",\"digest\":\"sha256-" HEX_B "0\",\"size\":1}]}", "layers[0].digest" },
        { "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:" HEX_A "\",\"size\":1},\"layers\":{}}", "layers" },
        { "{\"schemaVersion\":2,\"layers\":[]}", "config" },
        { "[1,2", "not valid JSON" },
        { "{\"schemaVersion\":2,\"schemaVersion\":2}", "not valid JSON" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        m = qfit_manifest_parse(bad[i].text, strlen(bad[i].text), err, sizeof err);
        cr_expect_null(m, "manifest %zu accepted", i);
        qfit_manifest_free(m);
        cr_expect_not_null(strstr(err, bad[i].want), "manifest %zu: \"%s\" not in: %s", i, bad[i].want, err);
    }
    /* 1025 layers, and a manifest over 4 MiB */
    char *many = manifest_with_layers(QFIT_MANIFEST_MAX_LAYERS + 1, NULL);
    m = qfit_manifest_parse(many, strlen(many), err, sizeof err);
    cr_expect_null(m);
    cr_expect_not_null(strstr(err, "1025 layers"), "%s", err);
    free(many);
    size_t big = QFIT_MANIFEST_MAX_BYTES + 1;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    m = qfit_manifest_parse(huge, big, err, sizeof err);
    cr_expect_null(m);
    cr_expect_not_null(strstr(err, "more than"), "%s", err);
    free(huge);
}

/* ---------------------------------------------------------------- blob writer */

Test(store, blob_digest_mismatch_and_resume)
{
    const char *root = fresh_dir("blob");
    qfit_store *s = open_at(root);
    char err[1024], path[4096];
    const char *data = "the quick brown fox jumps over the lazy dog";
    qfit_digest want, other;
    qfit_digest_of(data, strlen(data), &want);
    qfit_digest_of("x", 1, &other);

    /* wrong bytes under an expected digest: clear error naming both, nothing stored */
    qfit_blob_writer *w = qfit_blob_begin(s, &want, 0, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert_eq(qfit_blob_write(w, "x", 1, err, sizeof err), 0);
    cr_expect_eq(qfit_blob_commit(w, NULL, NULL, err, sizeof err), -1);
    cr_expect_not_null(strstr(err, "digest mismatch"), "%s", err);
    cr_expect_not_null(strstr(err, want.hex), "%s", err);
    cr_expect_not_null(strstr(err, other.hex), "%s", err);
    cr_expect_not(qfit_store_has_blob(s, &want, NULL));
    cr_expect_not(qfit_store_has_blob(s, &other, NULL));

    /* interrupted after 10 bytes, resumed: the blob is whole and verified */
    w = qfit_blob_begin(s, &want, 0, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert_eq(qfit_blob_write(w, data, 10, err, sizeof err), 0);
    qfit_blob_abort(w);
    snprintf(path, sizeof path, "%s/blobs/sha256-%s-partial", root, want.hex);
    cr_expect(exists(path), "partial file kept for a resume");
    /* a second writer on a locked partial is refused */
    w = qfit_blob_begin(s, &want, QFIT_BLOB_RESUME, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    char err2[512];
    cr_expect_null(qfit_blob_begin(s, &want, QFIT_BLOB_RESUME, err2, sizeof err2));
    cr_expect_not_null(strstr(err2, "another process"), "%s", err2);
    cr_expect_eq(qfit_blob_offset(w), 10);
    cr_assert_eq(qfit_blob_write(w, data + 10, strlen(data) - 10, err, sizeof err), 0);
    qfit_digest got;
    int64_t size;
    cr_assert_eq(qfit_blob_commit(w, &got, &size, err, sizeof err), 0, "%s", err);
    cr_expect(qfit_digest_equal(&got, &want));
    cr_expect_eq(size, (int64_t)strlen(data));
    cr_expect_not(exists(path), "partial file renamed");
    qfit_store_blob_path(s, &want, path, sizeof path);
    char hex[65];
    sha256sum(path, hex);
    cr_expect_str_eq(hex, want.hex);
    /* ranges written out of order at offsets (a parallel download), interrupted, resumed */
    const char *big = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    qfit_digest bigd;
    qfit_digest_of(big, strlen(big), &bigd);
    w = qfit_blob_begin(s, &bigd, QFIT_BLOB_RANDOM, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_expect_eq(qfit_blob_write(w, big, 4, err2, sizeof err2), -1, "sequential write on a random writer");
    cr_assert_eq(qfit_blob_write_at(w, 40, big + 40, strlen(big) - 40, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_blob_write_at(w, 20, big + 20, 20, err, sizeof err), 0, "%s", err);
    qfit_blob_abort(w);   /* killed: bytes 0..20 missing */
    w = qfit_blob_begin(s, &bigd, QFIT_BLOB_RANDOM, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert_eq(qfit_blob_write_at(w, 0, big, 20, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_blob_commit(w, &got, &size, err, sizeof err), 0, "%s", err);
    cr_expect(qfit_digest_equal(&got, &bigd));
    cr_expect_eq(size, (int64_t)strlen(big));
    /* a range written wrong: mismatch at commit, the partial file removed */
    qfit_digest_of("0123456789", 10, &bigd);
    w = qfit_blob_begin(s, &bigd, QFIT_BLOB_RANDOM, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert_eq(qfit_blob_write_at(w, 0, "0123456788", 10, err, sizeof err), 0, "%s", err);
    cr_expect_eq(qfit_blob_commit(w, NULL, NULL, err, sizeof err), -1);
    cr_expect_not_null(strstr(err, "digest mismatch"), "%s", err);
    snprintf(path, sizeof path, "%s/blobs/sha256-%s-partial", root, bigd.hex);
    cr_expect_not(exists(path));
    cr_expect_not(qfit_store_has_blob(s, &bigd, NULL));
    /* the sha256 of the empty string, as a cross-check of qfit_digest_of */
    qfit_digest e;
    qfit_digest_of("", 0, &e);
    cr_expect_str_eq(e.hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    qfit_store_close(s);
}

/* ---------------------------------------------------------------- import */

Test(store, import_copy_hash_and_config)
{
    const char *model = tu_shared_path(F32_MODEL);
    const char *root = fresh_dir("imp");
    char hex[65];
    sha256sum(model, hex);
    int st;
    char *out = run_qfit(root, "import", &st);
    free(out);
    cr_expect_eq(st, 2, "import without arguments is a usage error");
    char args[4200];
    snprintf(args, sizeof args, "import '%s' kjv:f32", model);
    out = run_qfit(root, args, &st);
    cr_assert_eq(st, 0, "%s", out);
    free(out);

    qfit_store *s = open_at(root);
    qfit_store_model m;
    char err[1024], path[4096];
    cr_assert_eq(qfit_store_resolve(s, "KJV:F32", &m, err, sizeof err), 0, "%s", err);
    const qfit_layer *l = qfit_manifest_layer(m.manifest, QFIT_LAYER_MODEL);
    cr_assert_not_null(l);
    cr_expect_str_eq(l->digest.hex, hex, "model blob digest is the file's sha256");
    struct stat sb;
    stat(model, &sb);
    cr_expect_eq(l->size, (int64_t)sb.st_size);
    cr_assert_geq(qfit_store_model_path(s, &m, QFIT_LAYER_MODEL, path, sizeof path), 0);
    char bhex[65];
    sha256sum(path, bhex);
    cr_expect_str_eq(bhex, hex);
    /* manifest: its sha256 is the ID */
    char mhex[65];
    sha256sum(m.manifest_path, mhex);
    cr_expect_str_eq(m.manifest->id.hex, mhex);
    /* config blob, read back and verified */
    size_t len;
    char *cfg = qfit_store_read_blob(s, &m.manifest->config, 4096, &len, err, sizeof err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg, "{\"model_format\":\"gguf\",\"model_family\":\"llama\",\"model_families\":[\"llama\"],"
                          "\"model_type\":\"7.34M\",\"file_type\":\"F32\",\"architecture\":\"amd64\",\"os\":\"linux\"}");
    free(cfg);
    cr_expect_eq(qfit_store_verify(s, "kjv:f32", err, sizeof err), 0, "%s", err);
    qfit_store_model_free(&m);
    /* `qfit list`: display name, 12-hex ID, Ollama's HumanBytes (29427776 + 148 bytes) */
    out = run_qfit(root, "list", &st);
    cr_expect_eq(st, 0, "%s", out);
    char row[128];
    snprintf(row, sizeof row, "kjv:f32    %.12s    29 MB    ", mhex);
    cr_expect_not_null(strstr(out, row), "\"%s\" not in:\n%s", row, out);
    free(out);

    /* not a GGUF: refused before anything is stored */
    char bogus[4096];
    snprintf(bogus, sizeof bogus, "%s/bogus.gguf", root);
    write_file(bogus, "GGUF", 4);
    snprintf(args, sizeof args, "import '%s' bogus", bogus);
    out = run_qfit(root, args, &st);
    cr_expect_eq(st, 1);
    cr_expect_not_null(strstr(out, "not a valid GGUF"), "%s", out);
    free(out);
    cr_expect_neq(qfit_store_resolve(s, "bogus", &m, err, sizeof err), 0);
    /* a bad name: refused, nothing written */
    snprintf(args, sizeof args, "import '%s' '../../evil'", model);
    out = run_qfit(root, args, &st);
    cr_expect_eq(st, 1);
    cr_expect_not_null(strstr(out, "invalid model name"), "%s", out);
    free(out);
    qfit_store_close(s);
}

Test(store, import_link_adds_no_bytes)
{
    const char *dir = fresh_dir("link");
    char src[4096], root[4096], cmd[9000];
    snprintf(src, sizeof src, "%s/own.gguf", dir);
    snprintf(root, sizeof root, "%s/store", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", tu_shared_path(F32_MODEL), src);
    cr_assert_eq(system(cmd), 0);
    struct stat before;
    cr_assert_eq(stat(src, &before), 0);

    qfit_store *s = open_at(root);
    qfit_import_opts o = { .link = true };
    bool linked = false;
    char err[1024], path[4096];
    cr_assert_eq(qfit_store_import_gguf(s, src, "linked", &o, &linked, err, sizeof err), 0, "%s", err);
    cr_expect(linked, "hard link expected on one file system");
    qfit_store_model m;
    cr_assert_eq(qfit_store_resolve(s, "linked", &m, err, sizeof err), 0, "%s", err);
    qfit_store_model_path(s, &m, QFIT_LAYER_MODEL, path, sizeof path);
    struct stat blob, after;
    cr_assert_eq(stat(path, &blob), 0);
    cr_assert_eq(stat(src, &after), 0);
    cr_expect_eq(blob.st_ino, before.st_ino, "the blob is the same inode as the source");
    cr_expect_eq(after.st_nlink, before.st_nlink + 1);
    char hex[65];
    sha256sum(src, hex);
    cr_expect_str_eq(m.manifest->layers[0].digest.hex, hex);
    qfit_store_model_free(&m);

    /* the copy mode makes a new inode with the same digest */
    o.link = false;
    cr_assert_eq(qfit_store_import_gguf(s, src, "copied", &o, &linked, err, sizeof err), 0, "%s", err);
    cr_expect_not(linked);
    qfit_store_close(s);
}

/* ---------------------------------------------------------------- Ollama's layout */

/* A store written by hand exactly as Ollama lays it out (a pulled llama3.2-like
 * model with template, license, params layers; a config blob with rootfs; an
 * hf.co model whose path keeps its case; a legacy "prompt" layer; an unknown
 * media type) must be listed and resolved through QFIT_MODELS. */
Test(store, ollama_layout_listed_and_resolved)
{
    const char *root = fresh_dir("ollama");
    char p[4096], hex_model[65], hex_tmpl[65], hex_params[65], hex_cfg[65], hex_lic[65], hex_x[65];
    const char *tmpl = "<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>";
    const char *params = "{\"stop\":[\"<|start_header_id|>\",\"<|end_header_id|>\",\"<|eot_id|>\"]}";
    const char *cfg = "{\"model_format\":\"gguf\",\"model_family\":\"llama\",\"model_families\":[\"llama\"],"
                      "\"model_type\":\"3.2B\",\"file_type\":\"Q4_K_M\",\"architecture\":\"amd64\",\"os\":\"linux\","
                      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:" HEX_A "\"]}}";
    const char *lic = "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT";
    const char *gguf = "GGUF\3\0\0\0 pretend weights";
    const char *xdata = "some future layer";
    struct { const char *data; size_t len; char *hex; } blobs[] = {
        { gguf, 24, hex_model }, { tmpl, strlen(tmpl), hex_tmpl }, { params, strlen(params), hex_params },
        { cfg, strlen(cfg), hex_cfg }, { lic, strlen(lic), hex_lic }, { xdata, strlen(xdata), hex_x },
    };
    for (size_t i = 0; i < sizeof blobs / sizeof blobs[0]; i++) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s/tmpblob", root);
        write_file(tmp, blobs[i].data, blobs[i].len);
        sha256sum(tmp, blobs[i].hex);
        snprintf(p, sizeof p, "%s/blobs/sha256-%s", root, blobs[i].hex);
        write_file(p, blobs[i].data, blobs[i].len);
        unlink(tmp);
    }
    char man[8192];
    int n = snprintf(man, sizeof man,
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
        "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"sha256:%s\",\"size\":%zu},"
        "\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:%s\",\"size\":24},"
        "{\"mediaType\":\"application/vnd.ollama.image.template\",\"digest\":\"sha256:%s\",\"size\":%zu},"
        "{\"mediaType\":\"application/vnd.ollama.image.license\",\"digest\":\"sha256:%s\",\"size\":%zu},"
        "{\"mediaType\":\"application/vnd.ollama.image.params\",\"digest\":\"sha256:%s\",\"size\":%zu},"
        "{\"mediaType\":\"application/vnd.ollama.image.future-thing\",\"digest\":\"sha256:%s\",\"size\":%zu}]}",
        hex_cfg, strlen(cfg), hex_model, hex_tmpl, strlen(tmpl), hex_lic, strlen(lic), hex_params, strlen(params),
        hex_x, strlen(xdata));
    snprintf(p, sizeof p, "%s/manifests/registry.ollama.ai/library/llama3.2/latest", root);
    write_file(p, man, (size_t)n);
    char id1[65];
    sha256sum(p, id1);
    /* an hf.co model, the path in its original case, with a legacy prompt layer */
    n = snprintf(man, sizeof man,
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
        "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"sha256:%s\",\"size\":%zu},"
        "\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:%s\",\"size\":24},"
        "{\"mediaType\":\"application/vnd.ollama.image.prompt\",\"digest\":\"sha256:%s\",\"size\":%zu}]}\n",
        hex_cfg, strlen(cfg), hex_model, hex_tmpl, strlen(tmpl));
    snprintf(p, sizeof p, "%s/manifests/hf.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/Q4_K_M", root);
    write_file(p, man, (size_t)n);
    char id2[65];
    sha256sum(p, id2);

    int st;
    char *out = run_qfit(root, "list", &st);
    cr_assert_eq(st, 0, "%s", out);
    cr_expect_not_null(strstr(out, "NAME"), "%s", out);
    char want[256];
    snprintf(want, sizeof want, "%.12s", id1);
    cr_expect_not_null(strstr(out, "llama3.2:latest"), "%s", out);
    cr_expect_not_null(strstr(out, want), "ID %s missing: %s", want, out);
    snprintf(want, sizeof want, "%.12s", id2);
    cr_expect_not_null(strstr(out, "hf.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M"), "%s", out);
    cr_expect_not_null(strstr(out, want), "%s", out);
    free(out);

    out = run_qfit(root, "list LLAMA", &st);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect_not_null(strstr(out, "llama3.2:latest"), "%s", out);
    cr_expect_null(strstr(out, "hf.co"), "prefix filter: %s", out);
    free(out);

    qfit_store *s = open_at(root);
    qfit_store_entry *e;
    size_t ne;
    char err[1024];
    cr_assert_eq(qfit_store_list(s, &e, &ne, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ne, 2);
    for (size_t i = 0; i < ne; i++) {
        cr_expect_str_empty(e[i].error, "%s", e[i].error);
        if (!strcmp(e[i].name, "llama3.2:latest"))
            cr_expect_eq(e[i].size, (int64_t)(strlen(cfg) + 24 + strlen(tmpl) + strlen(lic) + strlen(params) + strlen(xdata)));
    }
    free(e);

    qfit_store_model m;
    cr_assert_eq(qfit_store_resolve(s, "llama3.2", &m, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(m.manifest->id.hex, id1);
    cr_expect_eq(m.manifest->n_layers, 5);
    cr_expect_eq(m.manifest->layers[4].kind, QFIT_LAYER_OTHER, "unknown media type kept as OTHER");
    cr_expect_null(qfit_manifest_layer(m.manifest, QFIT_LAYER_SYSTEM));
    size_t len;
    char *t = qfit_store_read_blob(s, qfit_manifest_layer(m.manifest, QFIT_LAYER_TEMPLATE), 1 << 20, &len, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    cr_expect_str_eq(t, tmpl);
    free(t);
    t = qfit_store_read_blob(s, qfit_manifest_layer(m.manifest, QFIT_LAYER_PARAMS), 1 << 20, &len, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    cr_expect_str_eq(t, params);
    free(t);
    t = qfit_store_read_blob(s, &m.manifest->config, 1 << 20, &len, err, sizeof err);
    qfit_model_config c;
    cr_assert_eq(qfit_model_config_parse(t, len, &c, err, sizeof err), 0, "%s", err);
    free(t);
    cr_expect_str_eq(c.model_type, "3.2B");
    cr_expect_str_eq(c.file_type, "Q4_K_M");
    cr_expect_str_eq(c.model_family, "llama");
    qfit_store_model_path(s, &m, QFIT_LAYER_MODEL, p, sizeof p);
    snprintf(want, sizeof want, "/blobs/sha256-%s", hex_model);
    cr_expect_not_null(strstr(p, want), "%s", p);
    qfit_store_model_free(&m);

    /* case-insensitive lookup finds the path Ollama wrote */
    cr_assert_eq(qfit_store_resolve(s, "HF.co/qwen/qwen2.5-0.5b-instruct-gguf:q4_k_m", &m, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(m.name.ns, "Qwen");
    cr_expect_str_eq(m.manifest->id.hex, id2);
    cr_expect_not_null(qfit_manifest_layer(m.manifest, QFIT_LAYER_TEMPLATE), "legacy prompt layer is the template");
    qfit_store_model_free(&m);
    cr_expect_eq(qfit_store_verify(s, "llama3.2:latest", err, sizeof err), 0, "%s", err);

    /* a corrupted blob is found by verify */
    snprintf(p, sizeof p, "%s/blobs/sha256-%s", root, hex_lic);
    write_file(p, "LLAMA 3.2 COMMUNITY LICENSE AGREEMENX", strlen(lic));
    cr_expect_eq(qfit_store_verify(s, "llama3.2:latest", err, sizeof err), -1);
    cr_expect_not_null(strstr(err, "digest mismatch"), "%s", err);
    qfit_store_close(s);
}

/* ---------------------------------------------------------------- rm, cp, prune */

static size_t count_blobs(const char *root)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/blobs", root);
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

Test(store, rm_cp_prune_semantics)
{
    const char *root = fresh_dir("rmcp");
    qfit_store *s = open_at(root);
    char err[1024];
    /* two models sharing one model blob, each with its own system layer */
    qfit_layer cfg = { .kind = QFIT_LAYER_OTHER }, layers[2];
    memset(layers, 0, sizeof layers);
    const char *cj = "{\"model_format\":\"gguf\"}";
    cr_assert_eq(qfit_store_add_blob(s, cj, strlen(cj), &cfg.digest, err, sizeof err), 0, "%s", err);
    cfg.size = (int64_t)strlen(cj);
    layers[0].kind = QFIT_LAYER_MODEL;
    cr_assert_eq(qfit_store_add_blob(s, "GGUFweights", 11, &layers[0].digest, err, sizeof err), 0);
    layers[0].size = 11;
    layers[1].kind = QFIT_LAYER_SYSTEM;
    cr_assert_eq(qfit_store_add_blob(s, "be brief", 8, &layers[1].digest, err, sizeof err), 0);
    layers[1].size = 8;
    qfit_name a, b;
    qfit_name_parse("a", &a, err, sizeof err);
    qfit_name_parse("ns/b:v1", &b, err, sizeof err);
    cr_assert_eq(qfit_store_write_manifest(s, &a, &cfg, layers, 2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_store_add_blob(s, "be verbose", 10, &layers[1].digest, err, sizeof err), 0);
    layers[1].size = 10;
    cr_assert_eq(qfit_store_write_manifest(s, &b, &cfg, layers, 2, err, sizeof err), 0, "%s", err);
    cr_expect_eq(count_blobs(root), 4);

    /* a manifest naming a missing blob, or a wrong size, is refused */
    qfit_layer ghost = layers[1];
    qfit_digest_of("never stored", 12, &ghost.digest);
    qfit_name c;
    qfit_name_parse("c", &c, err, sizeof err);
    cr_expect_eq(qfit_store_write_manifest(s, &c, &cfg, &ghost, 1, err, sizeof err), -1);
    cr_expect_not_null(strstr(err, "not in the store"), "%s", err);
    ghost = layers[1];
    ghost.size = 11;
    cr_expect_eq(qfit_store_write_manifest(s, &c, &cfg, &ghost, 1, err, sizeof err), -1);
    cr_expect_not_null(strstr(err, "the manifest says"), "%s", err);

    /* cp: same bytes, same ID; dst invalid is refused */
    cr_assert_eq(qfit_store_copy(s, "a", "a-copy:x", err, sizeof err), 0, "%s", err);
    qfit_store_model m1, m2;
    cr_assert_eq(qfit_store_resolve(s, "a", &m1, err, sizeof err), 0);
    cr_assert_eq(qfit_store_resolve(s, "a-copy:x", &m2, err, sizeof err), 0);
    cr_expect(qfit_digest_equal(&m1.manifest->id, &m2.manifest->id));
    qfit_store_model_free(&m1);
    qfit_store_model_free(&m2);
    cr_expect_eq(qfit_store_copy(s, "a", "../../x", err, sizeof err), -1);
    cr_expect_eq(qfit_store_copy(s, "missing", "y", err, sizeof err), -1);
    cr_expect_not_null(strstr(err, "not found"), "%s", err);

    /* rm a: its blobs are all still used by a-copy */
    cr_assert_eq(qfit_store_remove(s, "A:LATEST", err, sizeof err), 0, "%s", err);
    cr_expect_eq(count_blobs(root), 4);
    /* rm a-copy: its system blob goes, the shared model blob stays (ns/b uses it) */
    cr_assert_eq(qfit_store_remove(s, "a-copy:x", err, sizeof err), 0, "%s", err);
    cr_expect_eq(count_blobs(root), 3);
    cr_expect(qfit_store_has_blob(s, &layers[0].digest, NULL));
    cr_expect_eq(qfit_store_remove(s, "a-copy:x", err, sizeof err), -1);
    cr_expect_not_null(strstr(err, "not found"), "%s", err);
    char p[4096];
    snprintf(p, sizeof p, "%s/manifests/registry.ollama.ai/library", root);
    cr_expect_not(exists(p), "empty manifest folders removed");

    /* with pruning off (QFIT_NOPRUNE), rm keeps blobs; prune then removes them */
    qfit_store_set_prune(s, false);
    cr_assert_eq(qfit_store_remove(s, "ns/b:v1", err, sizeof err), 0, "%s", err);
    cr_expect_eq(count_blobs(root), 3);
    /* one model still uses the config and model blobs: prune must keep them */
    qfit_name k;
    qfit_name_parse("keep", &k, err, sizeof err);
    cr_assert_eq(qfit_store_write_manifest(s, &k, &cfg, layers, 1, err, sizeof err), 0, "%s", err);
    /* leftovers of interrupted writes */
    snprintf(p, sizeof p, "%s/blobs/sha256-%s-partial", root, HEX_A);
    write_file(p, "half", 4);
    char tmpf[4096];
    snprintf(tmpf, sizeof tmpf, "%s/blobs/.qfit-tmp-abcdef", root);
    write_file(tmpf, "temp", 4);
    snprintf(p, sizeof p, "%s/blobs/README", root);
    write_file(p, "not ours", 8);

    int st;
    char *out = run_qfit(root, "prune --dry-run", &st);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect_not_null(strstr(out, "-partial"), "%s", out);
    cr_expect_not_null(strstr(out, ".qfit-tmp-abcdef"), "%s", out);
    cr_expect_not_null(strstr(out, layers[1].digest.hex), "%s", out);
    cr_expect_null(strstr(out, layers[0].digest.hex), "%s", out);
    cr_expect_null(strstr(out, "README"), "%s", out);
    free(out);
    cr_expect_eq(count_blobs(root), 5, "dry run removed nothing");
    cr_expect(exists(tmpf), "dry run kept the temporary file");
    out = run_qfit(root, "prune", &st);
    cr_expect_eq(st, 0, "%s", out);
    free(out);
    cr_expect_eq(count_blobs(root), 3, "config, model blob and README left");
    cr_expect(qfit_store_has_blob(s, &layers[0].digest, NULL));
    cr_expect(qfit_store_has_blob(s, &cfg.digest, NULL));
    cr_expect_not(qfit_store_has_blob(s, &layers[1].digest, NULL));
    cr_expect_eq(qfit_store_verify(s, "keep", err, sizeof err), 0, "%s", err);
    cr_expect(exists(p));
    cr_expect_not(exists(tmpf));
    qfit_store_close(s);
}

Test(store, prune_refuses_with_corrupt_manifest)
{
    const char *root = fresh_dir("corrupt");
    qfit_store *s = open_at(root);
    char err[1024], p[4096];
    qfit_digest d;
    cr_assert_eq(qfit_store_add_blob(s, "orphan", 6, &d, err, sizeof err), 0);
    snprintf(p, sizeof p, "%s/manifests/registry.ollama.ai/library/broken/latest", root);
    write_file(p, "{\"schemaVersion\":2,", 19);
    cr_expect_eq(qfit_store_prune(s, false, NULL, NULL, NULL, err, sizeof err), -1);
    cr_expect_not_null(strstr(err, "broken"), "%s", err);
    cr_expect(qfit_store_has_blob(s, &d, NULL), "no blob removed while a manifest is unreadable");
    /* list shows it as an error; rm removes the corrupt manifest anyway */
    int st;
    char *out = run_qfit(root, "list", &st);
    cr_expect_eq(st, 1);
    cr_expect_not_null(strstr(out, "broken:latest"), "%s", out);
    free(out);
    /* rm of another model: removed, but its blobs are kept while "broken" is unreadable */
    qfit_layer cfg = { .kind = QFIT_LAYER_OTHER };
    cr_assert_eq(qfit_store_add_blob(s, "{}", 2, &cfg.digest, err, sizeof err), 0);
    cfg.size = 2;
    qfit_name good;
    qfit_name_parse("good", &good, err, sizeof err);
    cr_assert_eq(qfit_store_write_manifest(s, &good, &cfg, NULL, 0, err, sizeof err), 0, "%s", err);
    cr_expect_eq(qfit_store_remove(s, "good", err, sizeof err), 1, "%s", err);
    cr_expect_not_null(strstr(err, "broken"), "%s", err);
    cr_expect(qfit_store_has_blob(s, &cfg.digest, NULL));
    cr_expect_eq(qfit_store_remove(s, "broken", err, sizeof err), 1, "%s", err);
    cr_expect_not_null(strstr(err, "qfit prune"), "%s", err);
    cr_expect_eq(qfit_store_prune(s, false, NULL, NULL, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_not(qfit_store_has_blob(s, &d, NULL));
    cr_expect_not(qfit_store_has_blob(s, &cfg.digest, NULL));
    qfit_store_close(s);
}

Test(store, default_root_from_env)
{
    char buf[4096], err[256];
    setenv("QFIT_MODELS", " \"/x/qfit\" ", 1);
    setenv("OLLAMA_MODELS", "/x/ollama", 1);
    cr_assert_eq(qfit_store_default_root(buf, sizeof buf, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(buf, "/x/qfit");
    unsetenv("QFIT_MODELS");
    cr_assert_eq(qfit_store_default_root(buf, sizeof buf, err, sizeof err), 0);
    cr_expect_str_eq(buf, "/x/ollama");
    unsetenv("OLLAMA_MODELS");
    setenv("HOME", "/home/u", 1);
    cr_assert_eq(qfit_store_default_root(buf, sizeof buf, err, sizeof err), 0);
    cr_expect_str_eq(buf, "/home/u/.qfit/models");
    char hn[32];
    qfit_human_number(7340032, hn, sizeof hn);
    cr_expect_str_eq(hn, "7.34M");
    qfit_human_number(8000000000ull, hn, sizeof hn);
    cr_expect_str_eq(hn, "8B");
    qfit_human_number(3212749888ull, hn, sizeof hn);
    cr_expect_str_eq(hn, "3.2B");
}

/* ---------------------------------------------------------------- kill -9 */

/* Every file named blobs/sha256-<hex> holds the bytes of that digest (by
 * sha256sum), and every manifest is readable and names only existing blobs. */
static void check_invariant(const char *root)
{
    char cmd[8192];
    int st;
    snprintf(cmd, sizeof cmd, "cd '%s/blobs' 2>/dev/null && for f in sha256-*; do case \"$f\" in *-partial*) ;; "
             "sha256-\\*) ;; *) echo \"$(sha256sum < \"$f\" | cut -c1-64) $f\";; esac; done", root);
    char *out = tu_run(cmd, &st);
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (strlen(line) < 65 + 7 + 64) continue;
        cr_assert_eq(memcmp(line, line + 65 + 7, 64), 0, "blob content does not match its name: %s", line);
    }
    free(out);
    qfit_store *s = open_at(root);
    qfit_store_entry *e;
    size_t n;
    char err[1024];
    cr_assert_eq(qfit_store_list(s, &e, &n, err, sizeof err), 0, "%s", err);
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_empty(e[i].error, "manifest %s unreadable: %s", e[i].name, e[i].error);
        qfit_store_model m;
        cr_assert_eq(qfit_store_resolve(s, e[i].name, &m, err, sizeof err), 0, "%s", err);
        for (size_t j = 0; j <= m.manifest->n_layers; j++) {
            const qfit_layer *l = j < m.manifest->n_layers ? &m.manifest->layers[j] : &m.manifest->config;
            char p[4096];
            qfit_store_blob_path(s, &l->digest, p, sizeof p);
            /* its content was checked against its name above */
            cr_assert(exists(p), "manifest %s names a missing blob %s", e[i].name, p);
        }
        qfit_store_model_free(&m);
    }
    free(e);
    qfit_store_close(s);
}

/* Start `qfit ARGS...` (NULL-terminated) on root, SIGKILL it after delay_us; true if it was killed. */
static bool run_and_kill_argv(const char *root, int delay_us, const char *const *args)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        setenv("QFIT_MODELS", root, 1);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) { dup2(devnull, 1); dup2(devnull, 2); }
        const char *argv[16] = { "qfit" };
        for (int i = 0; args[i] && i < 14; i++) argv[i + 1] = args[i];
        execv(tu_qfit_bin(), (char *const *)argv);
        _exit(127);
    }
    struct timespec ts = { delay_us / 1000000, (long)(delay_us % 1000000) * 1000 };
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st);
}

static bool run_and_kill(const char *root, int delay_us, const char *a1, const char *a2, const char *a3,
                         const char *a4)
{
    const char *const args[] = { a1, a2, a3, a4, NULL };
    return run_and_kill_argv(root, delay_us, args);
}

Test(store, kill9_import_keeps_store_consistent, .timeout = 600)
{
    const char *model = tu_shared_path(F32_MODEL);
    const char *root = fresh_dir("kill");
    /* from before the first write to after the last one (a debug import takes ~0.9 s) */
    static const int delays_us[] = { 500, 2000, 5000, 10000, 20000, 50000, 100000, 150000, 200000, 250000,
                                     300000, 350000, 400000, 500000, 600000, 700000, 800000, 1000000 };
    const size_t nd = sizeof delays_us / sizeof delays_us[0];
    int killed = 0;
    for (size_t i = 0; i < nd; i++) {
        char name[32];
        snprintf(name, sizeof name, "k%zu", i);
        /* copies, and hard links (which also go through a temporary name) */
        killed += run_and_kill(root, delays_us[i], "import", model, name, i % 3 == 2 ? "--link" : NULL);
        check_invariant(root);
    }
    cr_expect_gt(killed, 0, "no import was interrupted (all finished before the kill)");
    /* cp and rm killed at several points */
    int st;
    char args[4200];
    snprintf(args, sizeof args, "import '%s' base", model);
    char *out = run_qfit(root, args, &st);
    cr_assert_eq(st, 0, "%s", out);
    free(out);
    for (size_t i = 0; i < nd; i += 2) {
        char name[32];
        snprintf(name, sizeof name, "c%zu", i);
        run_and_kill(root, delays_us[i] / 4, "cp", "base", name, NULL);
        check_invariant(root);
        run_and_kill(root, delays_us[i] / 4, "rm", name, NULL, NULL);
        check_invariant(root);
    }
    /* prune removes what the killed commands left; a new import works */
    out = run_qfit(root, "prune", &st);
    cr_expect_eq(st, 0, "%s", out);
    free(out);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls -a '%s/blobs' | grep -c -e -partial -e .qfit-tmp", root);
    out = tu_run(cmd, &st);
    cr_expect_eq(atoi(out), 0, "leftovers after prune");
    free(out);
    snprintf(args, sizeof args, "import '%s' again", model);
    out = run_qfit(root, args, &st);
    cr_expect_eq(st, 0, "%s", out);
    free(out);
    check_invariant(root);
    qfit_store *s = open_at(root);
    char err[1024];
    cr_expect_eq(qfit_store_verify(s, "again", err, sizeof err), 0, "%s", err);
    qfit_store_close(s);
}

/* OLLAMA_NOPRUNE / QFIT_NOPRUNE with Go's ParseBool (unparsable counts as true). */
Test(store, noprune_env)
{
    static const struct { const char *var, *value; bool keeps; } C[] = {
        { "QFIT_NOPRUNE", "1", true }, { "OLLAMA_NOPRUNE", "true", true }, { "OLLAMA_NOPRUNE", "yes", true },
        { "OLLAMA_NOPRUNE", "0", false }, { "QFIT_NOPRUNE", "false", false }, { "QFIT_NOPRUNE", "", false },
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        unsetenv("QFIT_NOPRUNE");
        unsetenv("OLLAMA_NOPRUNE");
        setenv(C[i].var, C[i].value, 1);
        char tag[32];
        snprintf(tag, sizeof tag, "noprune%zu", i);
        qfit_store *s = open_at(fresh_dir(tag));
        char err[512];
        qfit_layer cfg = { .kind = QFIT_LAYER_OTHER };
        cr_assert_eq(qfit_store_add_blob(s, "{}", 2, &cfg.digest, err, sizeof err), 0, "%s", err);
        cfg.size = 2;
        qfit_name n;
        qfit_name_parse("m", &n, err, sizeof err);
        cr_assert_eq(qfit_store_write_manifest(s, &n, &cfg, NULL, 0, err, sizeof err), 0, "%s", err);
        cr_assert_eq(qfit_store_remove(s, "m", err, sizeof err), 0, "%s", err);
        cr_expect_eq(qfit_store_has_blob(s, &cfg.digest, NULL), C[i].keeps, "%s=\"%s\"", C[i].var, C[i].value);
        qfit_store_close(s);
    }
}

/* Writing a name again replaces its manifest and removes the blobs only the old
 * manifest used (as Ollama's create and pull do). */
Test(store, overwrite_prunes_old_layers)
{
    unsetenv("QFIT_NOPRUNE");
    unsetenv("OLLAMA_NOPRUNE");
    qfit_store *s = open_at(fresh_dir("overwrite"));
    char err[512];
    qfit_layer cfg = { .kind = QFIT_LAYER_OTHER }, sys1 = { .kind = QFIT_LAYER_SYSTEM }, sys2 = sys1;
    cr_assert_eq(qfit_store_add_blob(s, "{}", 2, &cfg.digest, err, sizeof err), 0, "%s", err);
    cfg.size = 2;
    cr_assert_eq(qfit_store_add_blob(s, "old system", 10, &sys1.digest, err, sizeof err), 0, "%s", err);
    sys1.size = 10;
    cr_assert_eq(qfit_store_add_blob(s, "new system", 10, &sys2.digest, err, sizeof err), 0, "%s", err);
    sys2.size = 10;
    qfit_name n;
    qfit_name_parse("m:v", &n, err, sizeof err);
    cr_assert_eq(qfit_store_write_manifest(s, &n, &cfg, &sys1, 1, err, sizeof err), 0, "%s", err);
    qfit_name_parse("M:V", &n, err, sizeof err);   /* the same model, other case */
    cr_assert_eq(qfit_store_write_manifest(s, &n, &cfg, &sys2, 1, err, sizeof err), 0, "%s", err);
    cr_expect_not(qfit_store_has_blob(s, &sys1.digest, NULL), "old system layer removed");
    cr_expect(qfit_store_has_blob(s, &sys2.digest, NULL));
    cr_expect(qfit_store_has_blob(s, &cfg.digest, NULL), "config still used");
    qfit_store_entry *e;
    size_t ne;
    cr_assert_eq(qfit_store_list(s, &e, &ne, err, sizeof err), 0, "%s", err);
    cr_expect_eq(ne, 1, "one manifest, not two differing in case");
    cr_expect_str_eq(e[0].name, "m:v");
    free(e);
    qfit_store_close(s);
}

/* `qfit create` (a copy of the GGUF while hashing, or quantizing to Q4_K_M, then the
 * template, system and params layers and the manifest) killed with SIGKILL at many
 * points: every manifest still names only complete, verified blobs; a create run to the
 * end afterwards works and verifies. */
Test(store, kill9_create_keeps_store_consistent, .timeout = 600)
{
    const char *model = tu_shared_path(F32_MODEL);
    const char *dir = fresh_dir("killcreate");
    char root[4200], mf[4200];
    snprintf(root, sizeof root, "%s/store", dir);
    snprintf(mf, sizeof mf, "%s/Modelfile", dir);
    char text[4400];
    snprintf(text, sizeof text, "FROM %s\nTEMPLATE \"{{ .Prompt }}\"\nSYSTEM \"\"\"be brief\"\"\"\n"
             "PARAMETER temperature 0.5\nPARAMETER stop \"<end>\"\nLICENSE MIT\n", model);
    write_file(mf, text, strlen(text));
    /* a debug create takes ~0.2 s (copy) and ~1 s (--quantize Q4_K_M) */
    static const int delays_us[] = { 1000, 5000, 20000, 50000, 80000, 120000, 160000, 200000, 300000,
                                     450000, 600000, 750000, 900000, 1100000 };
    const size_t nd = sizeof delays_us / sizeof delays_us[0];
    int killed = 0;
    for (size_t i = 0; i < nd; i++) {
        char name[32];
        snprintf(name, sizeof name, "c%zu", i % 4);   /* names reused: overwrite killed too */
        const char *const plain[] = { "create", name, "-f", mf, NULL };
        const char *const quant[] = { "create", name, "-f", mf, "--quantize", "Q4_K_M", NULL };
        killed += run_and_kill_argv(root, delays_us[i], i % 2 ? quant : plain);
        check_invariant(root);
    }
    cr_expect_gt(killed, 0, "no create was interrupted (all finished before the kill)");
    int st;
    char args[4400];
    snprintf(args, sizeof args, "create done -f '%s' --quantize Q4_K_M", mf);
    char *out = run_qfit(root, args, &st);
    cr_expect_eq(st, 0, "%s", out);
    free(out);
    check_invariant(root);
    qfit_store *s = open_at(root);
    char err[1024];
    cr_expect_eq(qfit_store_verify(s, "done", err, sizeof err), 0, "%s", err);
    qfit_store_close(s);
}
