/* Suite server: the HTTP layer of `qfit serve` (include/qfit/server.h), driven with
 * libcurl against a server started inside each test on 127.0.0.1, port 0. Shapes
 * and status codes come from ollama-compat-reference.md (§0, 1.7-1.9, 2); digests
 * are checked with coreutils' sha256sum, not qfit's own hashing. Streaming tests
 * synchronise on what the client has received (never on elapsed time). */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <curl/curl.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qfit/modelfile.h"
#include "qfit/server.h"
#include "qfit/store.h"
#include "util/http_client.h"
#include "util/testutil.h"

#define F32_MODEL "models/kjv-llama-7m-f32.gguf"

/* ---------------------------------------------------------------- server fixture */

static qfit_server *srv;
static char store_root[4096];

static const char *fresh_store(void)
{
    static int n;
    snprintf(store_root, sizeof store_root, "%s/store-%d", tu_tmpdir(), n++);
    mkdir(store_root, 0755);
    return store_root;
}

/* Start a server with cfg (host 127.0.0.1, port 0, a fresh empty store unless set). */
static void start(qfit_server_config cfg)
{
    if (!cfg.store_root) cfg.store_root = store_root[0] ? store_root : fresh_store();
    char err[1024];
    srv = qfit_server_new(&cfg, err, sizeof err);
    cr_assert_not_null(srv, "%s", err);
    cr_assert_eq(qfit_server_start(srv, err, sizeof err), 0, "%s", err);
    cr_assert_gt(qfit_server_port(srv), 0);
}

static void start_default(void) { start((qfit_server_config){ 0 }); }

static void teardown(void)
{
    qfit_server_free(srv);
    srv = NULL;
}

/* The shared model, hard-linked into the store as "kjv". */
static void add_model(void)
{
    if (!store_root[0]) fresh_store();
    char err[1024];
    qfit_store *s = qfit_store_open(store_root, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    qfit_import_opts o = { .link = true };
    bool linked;
    cr_assert_eq(qfit_store_import_gguf(s, tu_shared_path(F32_MODEL), "kjv", &o, &linked, err, sizeof err), 0,
                 "%s", err);
    qfit_store_close(s);
}

/* ---------------------------------------------------------------- client */

typedef tu_reply reply;
typedef tu_request request;

static reply http(request q) { return tu_http(qfit_server_port(srv), q); }
static void reply_free(reply *r) { tu_reply_free(r); }

static reply GET(const char *path) { return http((request){ .path = path }); }
static reply POST(const char *path, const char *body) { return http((request){ .method = "POST", .path = path, .body = body }); }

static const char *header_of(const reply *r, const char *name) { return tu_header_of(r, name); }

/* Native error body: {"error":"..."} with a JSON content type; returns the message. */
static const char *native_error(const reply *r, long status)
{
    cr_assert_eq(r->status, status, "status %ld, body %s", r->status, r->body);
    cr_assert_not_null(r->json, "error body is not JSON: %s", r->body);
    const char *ct = header_of(r, "Content-Type");
    cr_assert(ct && strstr(ct, "application/json"), "content type %s", ct ? ct : "(none)");
    const char *m = json_string_value(json_object_get(r->json, "error"));
    cr_assert_not_null(m, "no string \"error\" in %s", r->body);
    return m;
}

/* OpenAI error body: {"error":{"message","type","param","code"}}; returns the message. */
static const char *openai_error(const reply *r, long status, const char *type)
{
    cr_assert_eq(r->status, status, "status %ld, body %s", r->status, r->body);
    json_t *e = json_object_get(r->json, "error");
    cr_assert(json_is_object(e), "not an OpenAI error: %s", r->body);
    cr_assert_str_eq(json_string_value(json_object_get(e, "type")), type, "%s", r->body);
    cr_assert(json_object_get(e, "param") && json_object_get(e, "code"), "%s", r->body);
    const char *m = json_string_value(json_object_get(e, "message"));
    cr_assert_not_null(m, "%s", r->body);
    return m;
}

static void sha256sum_file(const char *path, char hex[65])
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    int st;
    char *out = tu_run(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    memcpy(hex, out, 64);
    hex[64] = 0;
    free(out);
}

/* ---------------------------------------------------------------- basic endpoints */

Test(server, root_version_health, .fini = teardown)
{
    start_default();
    reply r = GET("/");
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "Ollama is running");
    cr_expect(strstr(header_of(&r, "Content-Type"), "text/plain"));
    reply_free(&r);
    r = http((request){ .method = "HEAD", .path = "/" });
    cr_expect_eq(r.status, 200);
    cr_expect_eq(r.len, 0);
    reply_free(&r);
    r = GET("/api/version");
    cr_assert_eq(r.status, 200);
    const char *v = json_string_value(json_object_get(r.json, "version"));
    cr_assert_not_null(v, "%s", r.body);
    int a, b, c;
    cr_expect_eq(sscanf(v, "%d.%d.%d", &a, &b, &c), 3, "not a semver: %s", v);
    cr_expect(a > 0 || b >= 7, "clients gate on >= 0.6.5: %s", v);
    reply_free(&r);
    r = GET("/health");
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "status")), "ok");
    reply_free(&r);
}

Test(server, tags_empty_is_array, .fini = teardown)
{
    start_default();
    reply r = GET("/api/tags");
    cr_assert_eq(r.status, 200);
    cr_expect(json_is_array(json_object_get(r.json, "models")), "models must be [] not null: %s", r.body);
    cr_expect_eq(json_array_size(json_object_get(r.json, "models")), 0);
    reply_free(&r);
    r = GET("/v1/models");
    cr_assert_eq(r.status, 200);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "object")), "list");
    cr_expect(json_is_array(json_object_get(r.json, "data")), "data must be []: %s", r.body);
    reply_free(&r);
}

Test(server, tags_fields, .fini = teardown)
{
    add_model();
    start_default();
    reply r = GET("/api/tags");
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *ms = json_object_get(r.json, "models");
    cr_assert_eq(json_array_size(ms), 1, "%s", r.body);
    json_t *m = json_array_get(ms, 0);
    cr_expect_str_eq(json_string_value(json_object_get(m, "name")), "kjv:latest");
    cr_expect_str_eq(json_string_value(json_object_get(m, "model")), "kjv:latest");
    /* digest: bare hex sha256 of the manifest file bytes */
    char path[4200], hex[65];
    snprintf(path, sizeof path, "%s/manifests/registry.ollama.ai/library/kjv/latest", store_root);
    sha256sum_file(path, hex);
    cr_expect_str_eq(json_string_value(json_object_get(m, "digest")), hex);
    /* size: every layer plus the config */
    size_t mlen;
    char *mbytes = tu_read_file(path, &mlen);
    qfit_manifest *man = qfit_manifest_parse(mbytes, mlen, NULL, 0);
    cr_assert_not_null(man);
    int64_t want = man->config.size;
    for (size_t i = 0; i < man->n_layers; i++) want += man->layers[i].size;
    cr_expect_eq(json_integer_value(json_object_get(m, "size")), want);
    qfit_manifest_free(man);
    free(mbytes);
    const char *when = json_string_value(json_object_get(m, "modified_at"));
    struct tm tm = { 0 };
    cr_expect(when && strptime(when, "%Y-%m-%dT%H:%M:%SZ", &tm), "modified_at %s", when ? when : "(null)");
    json_t *d = json_object_get(m, "details");
    cr_expect_str_eq(json_string_value(json_object_get(d, "format")), "gguf");
    cr_expect_str_eq(json_string_value(json_object_get(d, "family")), "llama");
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(d, "families"), 0)), "llama");
    cr_expect_str_eq(json_string_value(json_object_get(d, "quantization_level")), "F32");
    cr_expect(json_is_string(json_object_get(d, "parent_model")));
    cr_expect(json_is_string(json_object_get(d, "parameter_size")));
    reply_free(&r);
}

Test(server, show, .fini = teardown)
{
    add_model();
    /* a model with parameters, a system prompt and a message, made from the first */
    char err[1024];
    qfit_store *s = qfit_store_open(store_root, err, sizeof err);
    static const char MF[] = "FROM kjv\nPARAMETER temperature 0.7\nPARAMETER num_ctx 256\nPARAMETER stop \"<|eot|>\"\n"
                             "SYSTEM \"be brief\"\nMESSAGE user hi\n";
    qfit_modelfile *mf = qfit_modelfile_parse(MF, strlen(MF), NULL, err, sizeof err);
    cr_assert_not_null(mf, "%s", err);
    qfit_create_opts o = { .quantize_ftype = -1 };
    cr_assert_eq(qfit_store_create(s, "kjv2", mf, &o, err, sizeof err), 0, "%s", err);
    qfit_modelfile_free(mf);
    qfit_store_close(s);
    start_default();

    reply r = POST("/api/show", "{\"model\":\"KJV2\"}");   /* names compare case-insensitively */
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *info = json_object_get(r.json, "model_info");
    cr_assert(json_is_object(info), "%s", r.body);
    cr_expect_str_eq(json_string_value(json_object_get(info, "general.architecture")), "llama");
    cr_expect_eq(json_integer_value(json_object_get(info, "llama.context_length")), 512);
    cr_expect_eq(json_integer_value(json_object_get(info, "llama.block_count")), 8);
    cr_expect_null(json_object_get(info, "general.name"));
    cr_expect_null(json_object_get(info, "tokenizer.chat_template"));
    json_t *toks = json_object_get(info, "tokenizer.ggml.tokens");
    cr_expect(json_is_array(toks) && json_array_size(toks) == 0, "arrays over 5 elements are [] unless verbose");
    const char *params = json_string_value(json_object_get(r.json, "parameters"));
    cr_assert_not_null(params, "%s", r.body);
    /* "%-30s %#v": the key padded to 30 columns, then a space */
    cr_expect(strstr(params, "temperature                    0.7"), "%s", params);
    cr_expect(strstr(params, "num_ctx                        256"), "%s", params);
    cr_expect(strstr(params, "stop                           \"<|eot|>\""), "%s", params);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "system")), "be brief");
    const char *mft = json_string_value(json_object_get(r.json, "modelfile"));
    cr_expect(mft && strstr(mft, "SYSTEM") && strstr(mft, "PARAMETER temperature 0.7"), "%s", mft);
    json_t *msg = json_array_get(json_object_get(r.json, "messages"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(msg, "role")), "user");
    cr_expect_str_eq(json_string_value(json_object_get(msg, "content")), "hi");
    json_t *caps = json_object_get(r.json, "capabilities");
    cr_expect_str_eq(json_string_value(json_array_get(caps, 0)), "completion", "%s", r.body);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(r.json, "details"), "family")), "llama");
    cr_expect(json_is_string(json_object_get(r.json, "modified_at")));
    reply_free(&r);

    r = POST("/api/show", "{\"name\":\"kjv\",\"verbose\":true}");   /* the legacy field */
    cr_assert_eq(r.status, 200, "%s", r.body);
    toks = json_object_get(json_object_get(r.json, "model_info"), "tokenizer.ggml.tokens");
    cr_expect_eq(json_array_size(toks), 2048, "verbose gives whole arrays");
    reply_free(&r);
}

Test(server, show_errors, .fini = teardown)
{
    start_default();
    reply r = POST("/api/show", "{\"model\":\"nope\"}");
    cr_expect_str_eq(native_error(&r, 404), "model 'nope' not found");
    reply_free(&r);
    r = http((request){ .method = "POST", .path = "/api/show" });
    cr_expect_str_eq(native_error(&r, 400), "missing request body");
    reply_free(&r);
    r = POST("/api/show", "{\"model\": \"x\",");
    const char *m = native_error(&r, 400);
    cr_expect(strstr(m, "line 1") && strstr(m, "column"), "the message names the place: %s", m);
    reply_free(&r);
    r = POST("/api/show", "[1]");
    cr_expect_str_eq(native_error(&r, 400), "request body must be a JSON object");
    reply_free(&r);
    r = POST("/api/show", "{\"model\":\"../../etc/passwd\"}");
    cr_expect_str_eq(native_error(&r, 400), "invalid model name");
    reply_free(&r);
    /* JSON nested 100000 deep: 400, not a stack overflow */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = 0;
    r = POST("/api/show", deep);
    m = native_error(&r, 400);
    cr_expect(strstr(m, "depth"), "%s", m);
    reply_free(&r);
    free(deep);
    /* invalid UTF-8 and a NUL in a name */
    r = POST("/api/show", "{\"model\":\"a\xff\"}");
    native_error(&r, 400);
    reply_free(&r);
    r = POST("/api/show", "{\"model\":\"kjv\\u0000../x\"}");
    native_error(&r, 400);
    reply_free(&r);
}

/* A corrupt manifest: the 500 names the problem but never the server's paths. */
Test(server, error_bodies_have_no_paths, .fini = teardown)
{
    fresh_store();
    char path[4200];
    snprintf(path, sizeof path, "%s/manifests/registry.ollama.ai/library/bad", store_root);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && echo '{not json' > '%s/latest'", path, path);
    cr_assert_eq(system(cmd), 0);
    start_default();
    reply r = POST("/api/show", "{\"model\":\"bad\"}");
    cr_expect_eq(r.status, 500, "a corrupt manifest is the server's problem: %ld", r.status);
    cr_expect_null(strstr(r.body, store_root), "the store root leaks: %s", r.body);
    cr_expect_null(strstr(r.body, tu_tmpdir()), "a path leaks: %s", r.body);
    cr_expect_null(strstr(r.body, "'/"), "a quoted absolute path leaks: %s", r.body);
    reply_free(&r);
}

Test(server, copy_and_delete, .fini = teardown)
{
    add_model();
    start_default();
    reply r = POST("/api/copy", "{\"source\":\"kjv\",\"destination\":\"me/kjv:v2\"}");
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_eq(r.len, 0);
    reply_free(&r);
    char a[4200], b[4200], ha[65], hb[65];
    snprintf(a, sizeof a, "%s/manifests/registry.ollama.ai/library/kjv/latest", store_root);
    snprintf(b, sizeof b, "%s/manifests/registry.ollama.ai/me/kjv/v2", store_root);
    sha256sum_file(a, ha);
    sha256sum_file(b, hb);
    cr_expect_str_eq(ha, hb, "the copy is byte for byte");
    r = POST("/api/copy", "{\"source\":\"nope\",\"destination\":\"x\"}");
    cr_expect_str_eq(native_error(&r, 404), "model \"nope\" not found");
    reply_free(&r);
    r = POST("/api/copy", "{\"source\":\"kjv\",\"destination\":\"../x\"}");
    cr_expect_str_eq(native_error(&r, 400), "destination \"../x\" is invalid");
    reply_free(&r);
    /* ollama-js sends DELETE with {"name"} */
    r = http((request){ .method = "DELETE", .path = "/api/delete", .body = "{\"name\":\"me/kjv:v2\"}" });
    cr_expect_eq(r.status, 200, "%s", r.body);
    reply_free(&r);
    struct stat st;
    cr_expect_neq(stat(b, &st), 0, "manifest still there");
    r = http((request){ .method = "DELETE", .path = "/api/delete", .body = "{\"model\":\"me/kjv:v2\"}" });
    cr_expect_str_eq(native_error(&r, 404), "model 'me/kjv:v2' not found");
    reply_free(&r);
    r = GET("/api/tags");
    cr_expect_eq(json_array_size(json_object_get(r.json, "models")), 1);
    reply_free(&r);
}

Test(server, blobs, .fini = teardown)
{
    start_default();
    static const char DATA[] = "a blob of bytes for the upload test\n";
    char file[4200], hex[65], path[200];
    snprintf(file, sizeof file, "%s/blob.bin", tu_tmpdir());
    FILE *f = fopen(file, "wb");
    fwrite(DATA, 1, sizeof DATA - 1, f);
    fclose(f);
    sha256sum_file(file, hex);
    snprintf(path, sizeof path, "/api/blobs/sha256:%s", hex);

    reply r = http((request){ .method = "HEAD", .path = path });
    cr_expect_eq(r.status, 404);
    reply_free(&r);
    /* wrong bytes: 400 digest mismatch, nothing stored */
    r = POST(path, "other bytes");
    const char *m = native_error(&r, 400);
    cr_expect(strstr(m, "digest mismatch") && strstr(m, hex), "%s", m);
    cr_expect_null(strstr(m, store_root), "%s", m);
    reply_free(&r);
    r = http((request){ .method = "HEAD", .path = path });
    cr_expect_eq(r.status, 404);
    reply_free(&r);
    /* the right bytes, chunked (as ollama-python streams them): 201, then stored */
    r = http((request){ .method = "POST", .path = path, .body = DATA, .chunked = true });
    cr_expect_eq(r.status, 201, "%s", r.body);
    reply_free(&r);
    char stored[4400], shex[65];
    snprintf(stored, sizeof stored, "%s/blobs/sha256-%s", store_root, hex);
    sha256sum_file(stored, shex);
    cr_expect_str_eq(shex, hex);
    r = http((request){ .method = "HEAD", .path = path });
    cr_expect_eq(r.status, 200);
    reply_free(&r);
    r = POST(path, DATA);
    cr_expect_eq(r.status, 200, "an existing blob is 200");
    reply_free(&r);
    /* bad digests */
    r = POST("/api/blobs/sha256:abc", "x");
    native_error(&r, 400);
    reply_free(&r);
    char short_digest[100];
    snprintf(short_digest, sizeof short_digest, "/api/blobs/sha256-%.63s", hex);
    r = http((request){ .method = "HEAD", .path = short_digest });
    cr_expect_eq(r.status, 400, "63 hex digits");
    reply_free(&r);
    /* a path that decodes to more segments never reaches the store */
    r = http((request){ .method = "HEAD", .path = "/api/blobs/sha256-..%2F..%2Fetc" });
    cr_expect_eq(r.status, 404);
    reply_free(&r);
}

Test(server, v1_models, .fini = teardown)
{
    add_model();
    start_default();
    reply r = GET("/v1/models");
    cr_assert_eq(r.status, 200);
    json_t *m = json_array_get(json_object_get(r.json, "data"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(m, "id")), "kjv:latest");
    cr_expect_str_eq(json_string_value(json_object_get(m, "object")), "model");
    cr_expect_str_eq(json_string_value(json_object_get(m, "owned_by")), "library");
    cr_expect(json_integer_value(json_object_get(m, "created")) > 1000000000);
    reply_free(&r);
    r = GET("/v1/models/kjv");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "id")), "kjv", "id echoes the request");
    reply_free(&r);
    /* openai-node sends '/' as %2F */
    r = GET("/v1/models/hf.co%2Fu%2Fr:Q4_K_M");
    const char *msg = openai_error(&r, 404, "not_found_error");
    cr_expect(strstr(msg, "hf.co/u/r:Q4_K_M"), "decoded: %s", msg);
    reply_free(&r);
    r = GET("/v1/models/a%FF%C0%AFb");   /* not UTF-8 (an overlong '/'): echoed as '?' */
    msg = openai_error(&r, 400, "invalid_request_error");
    cr_expect_null(strchr(msg, '/'), "%s", msg);
    reply_free(&r);
}

/* ---------------------------------------------------------------- routing */

Test(server, not_found_and_method_shapes, .fini = teardown)
{
    start_default();
    reply r = GET("/api/nope");
    native_error(&r, 404);
    reply_free(&r);
    r = GET("/v1/nope");
    openai_error(&r, 404, "not_found_error");
    reply_free(&r);
    r = GET("/nope");
    cr_expect_eq(r.status, 404);
    cr_expect_str_eq(r.body, "404 page not found");
    reply_free(&r);
    r = GET("/API/TAGS");   /* routes are case-sensitive */
    cr_expect_eq(r.status, 404);
    reply_free(&r);
    r = POST("/api/tags", "{}");
    native_error(&r, 405);
    cr_expect(header_of(&r, "Allow") && strstr(header_of(&r, "Allow"), "GET"));
    reply_free(&r);
    r = POST("/v1/models", "{}");
    openai_error(&r, 405, "invalid_request_error");
    reply_free(&r);
    r = GET("/api/bad%00path");
    native_error(&r, 400);
    reply_free(&r);
}

/* ---------------------------------------------------------------- security */

static long status_with(const char *const *headers, const char *path)
{
    reply r = http((request){ .path = path, .headers = headers });
    long s = r.status;
    reply_free(&r);
    return s;
}

Test(server, host_allowlist, .fini = teardown)
{
    start((qfit_server_config){ .api_key = NULL });
    static const char *const good[] = { "localhost", "localhost:11434", "127.0.0.1:11434", "[::1]:11434",
                                        "app.localhost", "box.local", "svc.internal", "10.0.0.8", "192.168.1.2:80",
                                        "0.0.0.0" };
    static const char *const bad[] = { "evil.example", "evil.example:11434", "localhost.evil.example",
                                       "8.8.8.8", "127.0.0.1.nip.io" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char h[128];
        snprintf(h, sizeof h, "Host: %s", good[i]);
        const char *hs[] = { h, NULL };
        { long st_ = status_with(hs, "/api/tags"); cr_expect_eq(st_, 200, "Host %s: %ld", good[i], st_); }
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char h[128];
        snprintf(h, sizeof h, "Host: %s", bad[i]);
        const char *hs[] = { h, NULL };
        reply r = http((request){ .path = "/api/tags", .headers = hs });
        cr_expect_eq(r.status, 403, "Host %s: %ld", bad[i], r.status);
        reply_free(&r);
    }
}

Test(server, host_allowlist_key_overrides, .fini = teardown)
{
    start((qfit_server_config){ .api_key = "k3y" });
    const char *hs[] = { "Host: my-server.example.com", "Authorization: Bearer k3y", NULL };
    cr_expect_eq(status_with(hs, "/api/tags"), 200, "a request with the key may use any host name");
    const char *hs2[] = { "Host: my-server.example.com", NULL };
    cr_expect_eq(status_with(hs2, "/api/tags"), 403);
}

Test(server, cors, .fini = teardown)
{
    start((qfit_server_config){ .origins = "https://app.example.com, chrome-extension://*" });
    static const char *const ok[] = { "http://localhost", "http://localhost:3000", "https://127.0.0.1:8443",
                                      "http://0.0.0.0:1", "app://x", "file://", "tauri://localhost",
                                      "vscode-webview://abc", "https://app.example.com", "chrome-extension://abcdef" };
    static const char *const no[] = { "https://evil.example", "http://localhost:3000.evil.example",
                                      "http://localhost.evil.example", "null", "https://app.example.com.evil" };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char h[256];
        snprintf(h, sizeof h, "Origin: %s", ok[i]);
        const char *hs[] = { h, NULL };
        reply r = http((request){ .path = "/api/version", .headers = hs });
        cr_expect_eq(r.status, 200, "origin %s", ok[i]);
        const char *acao = header_of(&r, "Access-Control-Allow-Origin");
        cr_expect(acao && !strcmp(acao, ok[i]), "origin %s: ACAO %s", ok[i], acao ? acao : "(none)");
        reply_free(&r);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        char h[256];
        snprintf(h, sizeof h, "Origin: %s", no[i]);
        const char *hs[] = { h, NULL };
        reply r = http((request){ .path = "/api/version", .headers = hs });
        cr_expect_eq(r.status, 403, "origin %s: %ld", no[i], r.status);
        cr_expect_null(header_of(&r, "Access-Control-Allow-Origin"));
        reply_free(&r);
    }
    /* bytes that are not UTF-8 in a refused origin: still refused, with a JSON error */
    const char *bad8[] = { "Origin: https://\xff\xfe.example", NULL };
    reply b8 = http((request){ .path = "/api/version", .headers = bad8 });
    native_error(&b8, 403);
    reply_free(&b8);
    /* a preflight */
    const char *pf[] = { "Origin: http://localhost:5173", "Access-Control-Request-Method: POST",
                         "Access-Control-Request-Headers: content-type", NULL };
    reply r = http((request){ .method = "OPTIONS", .path = "/api/chat_or_anything", .headers = pf });
    cr_expect_eq(r.status, 404, "a preflight for an unknown path");
    reply_free(&r);
    r = http((request){ .method = "OPTIONS", .path = "/api/show", .headers = pf });
    cr_expect_eq(r.status, 204);
    cr_expect_str_eq(header_of(&r, "Access-Control-Allow-Origin"), "http://localhost:5173");
    cr_expect(strstr(header_of(&r, "Access-Control-Allow-Methods"), "POST"));
    cr_expect(strstr(header_of(&r, "Access-Control-Allow-Headers"), "Content-Type"));
    reply_free(&r);
}

Test(server, body_limits, .fini = teardown)
{
    start((qfit_server_config){ .max_body = 4096 });
    char *big = malloc(8193);
    memset(big, ' ', 8192);
    big[0] = '{';
    big[8191] = '}';
    big[8192] = 0;
    reply r = POST("/api/show", big);
    native_error(&r, 413);
    reply_free(&r);
    r = http((request){ .method = "POST", .path = "/api/show", .body = big, .chunked = true });
    native_error(&r, 413);   /* no Content-Length: counted as it arrives */
    reply_free(&r);
    big[4000] = 0;
    big[3999] = '}';
    r = POST("/api/show", big);
    cr_expect_eq(r.status, 400, "under the limit: parsed (no model): %s", r.body);
    reply_free(&r);
    free(big);
    /* a 2 GB Content-Length with no body: refused at once */
    const char *hs[] = { "Content-Length: 2000000000", NULL };
    r = http((request){ .method = "POST", .path = "/api/show", .headers = hs, .timeout_ms = 10000 });
    cr_expect_eq(r.status, 413, "%ld %s", r.status, r.body);
    reply_free(&r);
    /* a header block over the connection's buffer: refused, no crash */
    char *h = malloc(100 * 1024);
    strcpy(h, "X-Big: ");
    memset(h + 7, 'a', 100 * 1024 - 8);
    h[100 * 1024 - 1] = 0;
    const char *hb[] = { h, NULL };
    r = http((request){ .path = "/api/version", .headers = hb, .timeout_ms = 10000 });
    cr_expect(r.status == 431 || r.status == 413 || r.status == 400, "status %ld", r.status);
    reply_free(&r);
    free(h);
    r = GET("/api/version");
    cr_expect_eq(r.status, 200, "the server still answers");
    reply_free(&r);
}

Test(server, non_loopback_bind_needs_key)
{
    char err[1024];
    qfit_server_config cfg = { .host = "0.0.0.0", .store_root = fresh_store() };
    qfit_server *s = qfit_server_new(&cfg, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    cr_expect_eq(qfit_server_start(s, err, sizeof err), -1, "0.0.0.0 without a key must be refused");
    cr_expect(strstr(err, "QFIT_API_KEY") && strstr(err, "--no-auth"), "%s", err);
    qfit_server_free(s);
    cr_expect(qfit_server_host_is_loopback("127.0.0.1"));
    cr_expect(qfit_server_host_is_loopback("::1"));
    cr_expect(qfit_server_host_is_loopback("localhost"));
    cr_expect_not(qfit_server_host_is_loopback("0.0.0.0"));
    cr_expect_not(qfit_server_host_is_loopback("::"));
    cfg.api_key = "k";
    s = qfit_server_new(&cfg, err, sizeof err);
    cr_expect_eq(qfit_server_start(s, err, sizeof err), 0, "with a key: %s", err);
    qfit_server_free(s);
    cfg.api_key = NULL;
    cfg.no_auth = true;
    s = qfit_server_new(&cfg, err, sizeof err);
    cr_expect_eq(qfit_server_start(s, err, sizeof err), 0, "with no_auth: %s", err);
    qfit_server_free(s);
}

/* A non-loopback address of this machine, or NULL. */
static const char *local_ipv4(void)
{
    static char buf[64];
    struct ifaddrs *ifs, *i;
    if (getifaddrs(&ifs) != 0) return NULL;
    buf[0] = 0;
    for (i = ifs; i; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET) {
            struct in_addr a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
            if ((ntohl(a.s_addr) >> 24) == 127) continue;
            inet_ntop(AF_INET, &a, buf, sizeof buf);
            break;
        }
    freeifaddrs(ifs);
    return buf[0] ? buf : NULL;
}

Test(server, management_from_remote_needs_key, .fini = teardown)
{
    const char *ip = local_ipv4();
    if (!ip) cr_skip_test("no non-loopback IPv4 address on this machine");
    add_model();
    start((qfit_server_config){ .host = "0.0.0.0", .no_auth = true });
    /* the same request from a non-loopback address: reads work, management is refused */
    reply r = http((request){ .path = "/api/tags", .ip = ip });
    cr_expect_eq(r.status, 200, "%s", r.body);
    reply_free(&r);
    r = http((request){ .method = "POST", .path = "/api/copy", .ip = ip,
                        .body = "{\"source\":\"kjv\",\"destination\":\"x\"}" });
    cr_expect(strstr(native_error(&r, 403), "QFIT_API_KEY"), "%s", r.body);
    reply_free(&r);
    r = http((request){ .method = "DELETE", .path = "/api/delete", .ip = ip, .body = "{\"model\":\"kjv\"}" });
    native_error(&r, 403);
    reply_free(&r);
    r = http((request){ .method = "DELETE", .path = "/api/delete", .body = "{\"model\":\"kjv\"}" });
    cr_expect_eq(r.status, 200, "from loopback: allowed (%s)", r.body);
    reply_free(&r);
}

Test(server, api_key, .fini = teardown)
{
    start((qfit_server_config){ .api_key = "s3cret-key" });
    reply r = GET("/api/tags");
    cr_expect(strstr(native_error(&r, 401), "API key"), "%s", r.body);
    cr_expect_str_eq(header_of(&r, "WWW-Authenticate"), "Bearer");
    reply_free(&r);
    const char *wrong[] = { "Authorization: Bearer s3cret-kez", NULL };
    cr_expect_eq(status_with(wrong, "/api/tags"), 401);
    const char *prefix[] = { "Authorization: Bearer s3cret-key-and-more", NULL };
    cr_expect_eq(status_with(prefix, "/api/tags"), 401);
    const char *basic[] = { "Authorization: Basic s3cret-key", NULL };
    cr_expect_eq(status_with(basic, "/api/tags"), 401);
    const char *right[] = { "Authorization: Bearer s3cret-key", NULL };
    cr_expect_eq(status_with(right, "/api/tags"), 200);
    r = GET("/v1/models");
    openai_error(&r, 401, "authentication_error");
    reply_free(&r);
    cr_expect_eq(status_with(NULL, "/"), 200, "/ needs no key");
    cr_expect_eq(status_with(NULL, "/health"), 200, "/health needs no key");
}

/* ---------------------------------------------------------------- streaming */

/* A test route whose producer thread is driven by the test. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int             chunks;          /* to write, one per step */
    bool            wait_client;     /* before each chunk, wait until the client has received something new */
    const char     *type;
    /* results */
    bool            done, write_failed, cancelled_seen;
    int             written;
    size_t          client_bytes;    /* what the client has received (set by the test's callback) */
    bool            client_headers;
    bool            timed_out;
} stream_test;

static stream_test ST = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, NULL,
                          false, false, false, 0, 0, false, false };

/* Wait (bounded: 10 s, a failure rather than a hang) until cond holds. */
#define WAIT_UNTIL(cond) do { \
        struct timespec dl_; clock_gettime(CLOCK_REALTIME, &dl_); dl_.tv_sec += 10; \
        while (!(cond)) if (pthread_cond_timedwait(&ST.cv, &ST.mu, &dl_) != 0) { ST.timed_out = true; break; } \
    } while (0)

static void *producer(void *p)
{
    qfit_http_stream *s = p;
    pthread_mutex_lock(&ST.mu);
    WAIT_UNTIL(ST.client_headers);   /* headers arrive before any data */
    for (int i = 0; i < ST.chunks && !ST.timed_out; i++) {
        if (ST.wait_client) {
            size_t seen = ST.client_bytes;
            WAIT_UNTIL(ST.client_bytes > seen || ST.client_bytes == SIZE_MAX);
        }
        char line[64];
        int n = snprintf(line, sizeof line, "{\"i\":%d}\n", i);
        pthread_mutex_unlock(&ST.mu);
        int rc = qfit_http_stream_write(s, line, (size_t)n);
        pthread_mutex_lock(&ST.mu);
        if (rc != 0) { ST.write_failed = true; break; }
        ST.written++;
    }
    ST.cancelled_seen = qfit_http_stream_cancelled(s);
    ST.done = true;
    pthread_cond_broadcast(&ST.cv);
    pthread_mutex_unlock(&ST.mu);
    qfit_http_stream_end(s);
    return NULL;
}

static void h_stream(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    qfit_http_stream *s = qfit_http_stream_begin(r, 200, ST.type);
    cr_assert_not_null(s);
    pthread_t t;
    pthread_create(&t, NULL, producer, s);
    pthread_detach(t);
}

static size_t stream_body(char *data, size_t size, size_t n, void *p)
{
    reply *r = p;
    tu_grow(&r->body, &r->len, data, size * n);
    pthread_mutex_lock(&ST.mu);
    ST.client_bytes = r->len;
    pthread_cond_broadcast(&ST.cv);
    pthread_mutex_unlock(&ST.mu);
    return size * n;
}

static size_t stream_abort_body(char *data, size_t size, size_t n, void *p)
{
    stream_body(data, size, n, p);
    return strchr(((reply *)p)->body, '\n') ? 0 : size * n;   /* gone after the first line */
}

static size_t stream_header(char *data, size_t size, size_t n, void *p)
{
    (void)p;
    if (size * n == 2 && !memcmp(data, "\r\n", 2)) {   /* end of the header block */
        pthread_mutex_lock(&ST.mu);
        ST.client_headers = true;
        pthread_cond_broadcast(&ST.cv);
        pthread_mutex_unlock(&ST.mu);
    }
    return size * n;
}

static void start_stream_server(unsigned keepalive_ms)
{
    char err[512];
    fresh_store();
    qfit_server_config cfg = { .store_root = store_root, .keepalive_ms = keepalive_ms };
    srv = qfit_server_new(&cfg, err, sizeof err);
    cr_assert_not_null(srv, "%s", err);
    qfit_http_route rt = { "GET", "/test/stream", h_stream, NULL, 0, 0, NULL };
    cr_assert_eq(qfit_server_route(srv, &rt, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_server_start(srv, err, sizeof err), 0, "%s", err);
}

static reply stream_get(bool abort_after_first_line)
{
    reply r = { 0 };
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/test/stream", qfit_server_port(srv));
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, abort_after_first_line ? stream_abort_body : stream_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, stream_header);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(c);
    if (!abort_after_first_line) cr_expect_eq(cc, CURLE_OK, "%s", curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(c);
    if (!r.body) tu_grow(&r.body, &r.len, "", 0);
    return r;
}

static void wait_producer(void)
{
    pthread_mutex_lock(&ST.mu);
    WAIT_UNTIL(ST.done);
    pthread_mutex_unlock(&ST.mu);
}

Test(server, stream_chunks_in_order, .fini = teardown)
{
    ST.chunks = 50;
    ST.type = "application/x-ndjson";
    start_stream_server(0);
    reply r = stream_get(false);
    wait_producer();
    cr_expect_not(ST.timed_out, "the client never saw the headers before the first chunk");
    cr_expect_eq(r.status, 200);
    cr_expect_eq(ST.written, 50);
    cr_expect_not(ST.write_failed);
    char want[2048] = "";
    for (int i = 0; i < 50; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "{\"i\":%d}\n", i);
    cr_expect_str_eq(r.body, want);
    reply_free(&r);
}

Test(server, stream_client_disconnect, .fini = teardown)
{
    ST.chunks = 1000000;   /* the producer would write for ever: only the disconnect stops it */
    ST.wait_client = true;   /* one line per keep-alive or line the client got: it reads the first */
    ST.type = "application/x-ndjson";
    start_stream_server(50);
    reply r = stream_get(true);
    pthread_mutex_lock(&ST.mu);
    ST.client_bytes = SIZE_MAX;   /* the client is gone: let the producer run */
    pthread_cond_broadcast(&ST.cv);
    pthread_mutex_unlock(&ST.mu);
    wait_producer();
    cr_expect_not(ST.timed_out, "the producer was never told the client left");
    cr_expect(ST.write_failed, "a write after the disconnect must return -1 (wrote %d)", ST.written);
    cr_expect(ST.cancelled_seen, "the stream's cancel flag is set");
    cr_expect_lt(ST.written, 1000000);
    reply_free(&r);
}

Test(server, stream_keepalive_ndjson, .fini = teardown)
{
    ST.chunks = 1;
    ST.wait_client = true;   /* the only data comes after the client received a keep-alive */
    ST.type = "application/x-ndjson";
    start_stream_server(50);
    reply r = stream_get(false);
    wait_producer();
    cr_expect_not(ST.timed_out, "no keep-alive reached the client");
    size_t sp = strspn(r.body, " ");
    cr_expect_gt(sp, 0, "keep-alive is leading spaces: %s", r.body);
    cr_expect_str_eq(r.body + sp, "{\"i\":0}\n");
    /* every line still parses as JSON (clients json.loads each line) */
    json_t *j = json_loads(r.body, 0, NULL);
    cr_expect_not_null(j);
    json_decref(j);
    reply_free(&r);
}

Test(server, stream_keepalive_sse, .fini = teardown)
{
    ST.chunks = 1;
    ST.wait_client = true;
    ST.type = "text/event-stream";
    start_stream_server(50);
    reply r = stream_get(false);
    wait_producer();
    cr_expect_not(ST.timed_out, "no keep-alive reached the client");
    cr_expect_eq(strncmp(r.body, ": keep-alive\n\n", 14), 0, "SSE keep-alive is a comment: %s", r.body);
    reply_free(&r);
}

/* A non-streaming handler polls qfit_http_req_cancelled while it works. */
static atomic_int handler_saw_cancel;
static void h_slow(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    for (int i = 0; i < 1000 && !qfit_http_req_cancelled(r); i++) usleep(10000);   /* at most 10 s */
    atomic_store(&handler_saw_cancel, qfit_http_req_cancelled(r) ? 1 : 2);
    qfit_http_respond(r, 200, "text/plain", "late", 4);
}

Test(server, handler_sees_disconnect, .fini = teardown)
{
    char err[512];
    fresh_store();
    qfit_server_config cfg = { .store_root = store_root };
    srv = qfit_server_new(&cfg, err, sizeof err);
    qfit_http_route rt = { "GET", "/test/slow", h_slow, NULL, 0, 0, NULL };
    cr_assert_eq(qfit_server_route(srv, &rt, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_server_start(srv, err, sizeof err), 0, "%s", err);
    reply r = http((request){ .path = "/test/slow", .timeout_ms = 300 });   /* the client gives up */
    reply_free(&r);
    for (int i = 0; i < 1100 && !atomic_load(&handler_saw_cancel); i++) usleep(10000);
    cr_expect_eq(atomic_load(&handler_saw_cancel), 1, "the handler never saw the client leave");
}

/* Slowloris (user-pain-points Part 4): clients that hold more connections than the server
 * allows, each trickling header bytes so that no inactivity timeout fires. Each is closed
 * cfg.header_timeout_ms after it opened; an honest client gets through while the attack
 * goes on, and the server stays up. */
static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

Test(server, slow_clients_cannot_hold_the_connections, .fini = teardown)
{
    enum { LIMIT = 16, SLOW = 64 };
    start((qfit_server_config){ .max_connections = LIMIT, .header_timeout_ms = 600 });
    int fds[SLOW];
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)qfit_server_port(srv)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    for (int i = 0; i < SLOW; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        cr_assert(fds[i] >= 0);
        connect(fds[i], (struct sockaddr *)&a, sizeof a);   /* in progress or done: loopback */
    }
    usleep(100 * 1000);
    static const char head[] = "GET /api/version HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (int i = 0; i < SLOW; i++) (void)!send(fds[i], head, sizeof head - 1, MSG_NOSIGNAL);
    /* the attack: a header line every 50 ms on every open connection, for 4 s; an honest
     * request every 100 ms until one is answered */
    const double t0 = mono_s();
    double answered_at = -1;
    int next_honest = 0;
    while (mono_s() - t0 < 4.0) {
        for (int i = 0; i < SLOW; i++)
            if (fds[i] >= 0 && send(fds[i], "X-Slow: 1\r\n", 11, MSG_NOSIGNAL) < 0 && errno != EAGAIN) {
                close(fds[i]);
                fds[i] = -1;
            }
        if (answered_at < 0 && (mono_s() - t0) * 10 >= next_honest) {
            next_honest++;
            reply r = http((request){ .path = "/api/version", .timeout_ms = 300 });
            if (r.status == 200) answered_at = mono_s() - t0;
            reply_free(&r);
        }
        usleep(50 * 1000);
    }
    for (int i = 0; i < SLOW; i++)
        if (fds[i] >= 0) close(fds[i]);
    cr_expect(answered_at >= 0, "no honest request was answered in 4 s of slow clients");
    cr_expect_geq(qfit_server_slow_closed(srv), (unsigned long)LIMIT, "closed %lu slow connections",
                  qfit_server_slow_closed(srv));
    reply r = http((request){ .path = "/api/version" });
    cr_expect_eq(r.status, 200, "the server is still up: %ld", r.status);
    reply_free(&r);
}

Test(server, route_registration_errors, .fini = teardown)
{
    char err[512];
    qfit_server_config cfg = { 0 };
    srv = qfit_server_new(&cfg, err, sizeof err);
    cr_assert_not_null(srv);
    qfit_http_route dup = { "GET", "/", h_slow, NULL, 0, 0, NULL };
    cr_expect_eq(qfit_server_route(srv, &dup, err, sizeof err), -1);
    cr_expect(strstr(err, "already registered"), "%s", err);
    qfit_http_route rel = { "GET", "api/x", h_slow, NULL, 0, 0, NULL };
    cr_expect_eq(qfit_server_route(srv, &rel, err, sizeof err), -1);
}

/* ---------------------------------------------------------------- the CLI */

Test(server, cli_serve_refuses_public_bind_without_key)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "QFIT_MODELS='%s' QFIT_API_KEY= OLLAMA_API_KEY= %s serve --host 0.0.0.0:0",
             fresh_store(), tu_qfit_bin());
    int st;
    char *out = tu_run(cmd, &st);
    cr_expect_neq(st, 0, "%s", out);
    cr_expect(strstr(out, "QFIT_API_KEY"), "%s", out);
    free(out);
}

Test(server, cli_serve_runs_and_stops)
{
    char cmd[24000], log[4200];
    snprintf(log, sizeof log, "%s/serve.log", tu_tmpdir());
    /* start on a free port, read it from the log, ask, then SIGTERM */
    snprintf(cmd, sizeof cmd,
             "QFIT_MODELS='%s' %s serve --host 127.0.0.1:0 2>'%s' & pid=$!; "
             "for i in $(seq 100); do grep -q listening '%s' && break; sleep 0.1; done; "
             "port=$(sed -n 's/.*127.0.0.1:\\([0-9]*\\).*/\\1/p' '%s' | head -1); "
             "curl -s http://127.0.0.1:$port/api/version; kill -TERM $pid; wait $pid; echo \" rc=$?\"",
             fresh_store(), tu_qfit_bin(), log, log, log);
    int st;
    char *out = tu_run(cmd, &st);
    cr_expect(strstr(out, "\"version\""), "%s", out);
    cr_expect(strstr(out, "rc=0"), "SIGTERM stops cleanly: %s", out);
    free(out);
    char *l = tu_read_file(log, NULL);
    cr_assert_not_null(l);
    cr_expect(strstr(l, "GET /api/version 200"), "one line per request: %s", l);
    free(l);
}

/* ---------------------------------------------------------------- /api/pull */

/* tests/registry/registry.py serving library/kjv:latest (the shared F16 GGUF and a
 * config) on a loopback port; returns its pid, *port set. */
static pid_t start_registry(int *port, qfit_digest *model)
{
    char dir[4200], cmd[9000];
    snprintf(dir, sizeof dir, "%s/registry", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/blobs' '%s/manifests/library/kjv'", dir, dir);
    cr_assert_eq(system(cmd), 0);
    size_t n;
    void *gguf = tu_read_file(tu_shared_path("models/kjv-llama-7m-f16.gguf"), &n);
    cr_assert_not_null(gguf);
    qfit_digest_of(gguf, n, model);
    free(gguf);
    snprintf(cmd, sizeof cmd, "ln -s '%s' '%s/blobs/sha256-%s'", tu_shared_path("models/kjv-llama-7m-f16.gguf"),
             dir, model->hex);
    cr_assert_eq(system(cmd), 0);
    qfit_model_config c = { "gguf", "llama", "7.30M", "F16", "amd64", "linux" };
    size_t clen;
    char *cfg = qfit_model_config_build(&c, &clen);
    qfit_layer config = { .kind = QFIT_LAYER_OTHER, .size = (int64_t)clen };
    qfit_digest_of(cfg, clen, &config.digest);
    snprintf(config.media_type, sizeof config.media_type, "%s", QFIT_MEDIA_CONFIG);
    char p[4400];
    snprintf(p, sizeof p, "%s/blobs/sha256-%s", dir, config.digest.hex);
    FILE *f = fopen(p, "wb");
    fwrite(cfg, 1, clen, f);
    fclose(f);
    free(cfg);
    qfit_layer layer = { .kind = QFIT_LAYER_MODEL, .digest = *model, .size = (int64_t)n };
    size_t mlen;
    char err[512];
    char *m = qfit_manifest_build(&config, &layer, 1, &mlen, err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    snprintf(p, sizeof p, "%s/manifests/library/kjv/latest", dir);
    f = fopen(p, "wb");
    fwrite(m, 1, mlen, f);
    fclose(f);
    free(m);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        execl("/usr/bin/python3", "python3", "tests/registry/registry.py", dir, "--timeout", "60", (char *)NULL);
        _exit(127);
    }
    snprintf(p, sizeof p, "%s/ports", dir);
    for (int i = 0; i < 200 && access(p, F_OK) != 0; i++) usleep(50000);
    f = fopen(p, "r");
    cr_assert_not_null(f, "the test registry did not start");
    int port2;
    cr_assert_eq(fscanf(f, "%d %d", port, &port2), 2);
    fclose(f);
    return pid;
}

Test(server, pull_progress_stream, .fini = teardown)
{
    int port;
    qfit_digest model;
    pid_t reg = start_registry(&port, &model);
    start_default();
    char body[512];
    snprintf(body, sizeof body, "{\"model\":\"127.0.0.1:%d/library/kjv\",\"insecure\":true}", port);
    reply r = POST("/api/pull", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect(strstr(header_of(&r, "Content-Type"), "application/x-ndjson"));
    /* Ollama's statuses: "pulling manifest" first, "pulling <12 hex>" with digest,
     * total and completed, "verifying sha256 digest", then "writing manifest" and
     * "success" last (qfit adds "reading model header" for the plan, and verifies
     * each blob when it is complete) */
    const char *statuses[64];
    size_t lines = 0;
    bool model_done = false, verified = false;
    char want_status[32];
    snprintf(want_status, sizeof want_status, "pulling %.12s", model.hex);
    json_t *all = json_array();
    for (char *line = r.body, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = 0;
        json_t *j = json_loads(line, 0, NULL);
        cr_assert_not_null(j, "line %zu is not JSON: %s", lines, line);
        json_array_append_new(all, j);
        const char *st = json_string_value(json_object_get(j, "status"));
        cr_assert_not_null(st, "line without status: %s", line);
        if (lines < 64) statuses[lines] = st;
        lines++;
        if (!strcmp(st, "verifying sha256 digest")) verified = true;
        if (!strcmp(st, want_status)) {
            char d[80];
            snprintf(d, sizeof d, "sha256:%s", model.hex);
            cr_expect_str_eq(json_string_value(json_object_get(j, "digest")), d);
            json_int_t total = json_integer_value(json_object_get(j, "total"));
            cr_expect_gt(total, 0);
            if (json_integer_value(json_object_get(j, "completed")) == total) model_done = true;
        }
    }
    cr_assert_geq(lines, 4, "%s", r.body);
    cr_assert_lt(lines, 64, "progress is throttled: %zu lines", lines);
    cr_expect_str_eq(statuses[0], "pulling manifest");
    cr_expect_str_eq(statuses[lines - 2], "writing manifest");
    cr_expect_str_eq(statuses[lines - 1], "success");
    cr_expect(verified);
    cr_expect(model_done, "the model blob's progress reaches its total");
    json_decref(all);
    reply_free(&r);
    r = GET("/api/tags");
    char name[128];
    snprintf(name, sizeof name, "127.0.0.1:%d/library/kjv:latest", port);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(r.json, "models"), 0), "name")),
                     name, "%s", r.body);
    reply_free(&r);
    /* stream:false (ollama-js's default): the last object alone */
    snprintf(body, sizeof body, "{\"name\":\"127.0.0.1:%d/library/kjv\",\"insecure\":true,\"stream\":false}", port);
    r = POST("/api/pull", body);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "status")), "success");
    reply_free(&r);
    /* an unknown model: an error line in the stream, a 500 without it */
    snprintf(body, sizeof body, "{\"model\":\"127.0.0.1:%d/library/nope\",\"insecure\":true}", port);
    r = POST("/api/pull", body);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.body, "{\"error\":"), "%s", r.body);
    cr_expect_null(strstr(r.body, store_root), "%s", r.body);
    reply_free(&r);
    snprintf(body, sizeof body, "{\"model\":\"127.0.0.1:%d/library/nope\",\"insecure\":true,\"stream\":false}", port);
    r = POST("/api/pull", body);
    native_error(&r, 500);
    reply_free(&r);
    r = POST("/api/pull", "{\"model\":\"../x\"}");
    cr_expect_str_eq(native_error(&r, 400), "invalid model name");
    reply_free(&r);
    kill(reg, SIGTERM);
    waitpid(reg, NULL, 0);
}

/* ---------------------------------------------------------------- /api/create */

Test(server, create_from_files_and_from_model, .fini = teardown)
{
    fresh_store();
    /* the GGUF as an uploaded blob (the upload itself is tested in server/blobs) */
    char hex[65], cmd[30000];
    sha256sum_file(tu_shared_path(F32_MODEL), hex);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/blobs' && (ln '%s' '%s/blobs/sha256-%s' 2>/dev/null || cp '%s' '%s/blobs/sha256-%s')",
             store_root, tu_shared_path(F32_MODEL), store_root, hex, tu_shared_path(F32_MODEL), store_root, hex);
    cr_assert_eq(system(cmd), 0);
    start_default();
    char body[1024];
    snprintf(body, sizeof body, "{\"model\":\"t\",\"files\":{\"m.gguf\":\"sha256:%s\"}}", hex);
    reply r = POST("/api/create", body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect(strncmp(r.body, "{\"status\":\"parsing GGUF\"}\n", 26) == 0, "%s", r.body);
    cr_expect(strstr(r.body, "{\"status\":\"success\"}\n") && !strstr(r.body, "\"error\""), "%s", r.body);
    size_t bl = strlen(r.body);
    cr_expect(bl > 21 && !strcmp(r.body + bl - 21, "{\"status\":\"success\"}\n"), "success is last: %s", r.body);
    reply_free(&r);
    /* from a stored model, with Ollama's fields; ollama-js sends stream:false */
    r = POST("/api/create", "{\"model\":\"t2\",\"from\":\"t\",\"system\":\"s\",\"template\":\"{{ .Prompt }}\","
                            "\"parameters\":{\"temperature\":0.25,\"stop\":[\"x\"],\"mirostat\":1},"
                            "\"license\":[\"L1\",\"L2\"],\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                            "\"stream\":false}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "status")), "success");
    reply_free(&r);
    r = POST("/api/show", "{\"model\":\"t2\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "system")), "s");
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "template")), "{{ .Prompt }}");
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "license")), "L1\nL2");
    const char *params = json_string_value(json_object_get(r.json, "parameters"));
    cr_expect(params && strstr(params, "temperature                    0.25") && strstr(params, "\"x\"") &&
              !strstr(params, "mirostat"), "%s", params);
    cr_expect_eq(json_array_size(json_object_get(r.json, "messages")), 1);
    reply_free(&r);
}

Test(server, create_errors, .fini = teardown)
{
    add_model();
    start_default();
    static const struct { const char *body, *msg; } cases[] = {
        { "{\"model\":\"x\"}", "neither 'from' or 'files' was specified" },
        { "{\"model\":\"../x\",\"from\":\"kjv\"}", "invalid model name" },
        { "{\"model\":\"x\",\"from\":\"nope\"}", "not found" },
        { "{\"model\":\"x\",\"files\":{\"../m.gguf\":\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"}}", "invalid file name" },
        { "{\"model\":\"x\",\"files\":{\"m.gguf\":\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"}}", "not found" },
        { "{\"model\":\"x\",\"files\":{\"a.gguf\":\"sha256:00\",\"b.gguf\":\"sha256:00\"}}", "exactly one" },
        { "{\"model\":\"x\",\"from\":\"kjv\",\"quantize\":\"Q9_X\"}", "Q9_X" },
        { "{\"model\":\"x\",\"from\":\"kjv\",\"adapters\":{\"a.gguf\":\"sha256:00\"}}", "adapters" },
        { "{\"model\":\"x\",\"from\":\"kjv\",\"parameters\":{\"temperature\":\"hot\"}}", "temperature" },
        { "{\"model\":\"x\",\"from\":\"kjv\",\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}", "messages[0]" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reply r = POST("/api/create", cases[i].body);
        const char *m = native_error(&r, 400);
        cr_expect(strstr(m, cases[i].msg), "%s -> %s", cases[i].body, m);
        reply_free(&r);
    }
}

/* An open stream whose producer waits holds only its own connection. */
static void *stream_client(void *p)
{
    reply *r = p;
    *r = stream_get(false);
    return NULL;
}

Test(server, stream_does_not_block_other_clients, .fini = teardown)
{
    ST.chunks = 1;
    ST.wait_client = true;   /* the producer waits for the client to get something new */
    ST.type = "application/x-ndjson";
    start_stream_server(60000);   /* no keep-alive during the test: the stream stays silent */
    reply sr;
    pthread_t t;
    pthread_create(&t, NULL, stream_client, &sr);
    pthread_mutex_lock(&ST.mu);
    WAIT_UNTIL(ST.client_headers);
    pthread_mutex_unlock(&ST.mu);
    for (int i = 0; i < 3; i++) {   /* other clients are served meanwhile */
        reply r = GET("/api/version");
        cr_expect_eq(r.status, 200);
        reply_free(&r);
    }
    pthread_mutex_lock(&ST.mu);
    ST.client_bytes = SIZE_MAX;   /* release the producer */
    pthread_cond_broadcast(&ST.cv);
    pthread_mutex_unlock(&ST.mu);
    pthread_join(t, NULL);
    cr_expect_not(ST.timed_out);
    cr_expect_str_eq(sr.body, "{\"i\":0}\n");
    reply_free(&sr);
}

/* A client that leaves while its stream is silent (a long prefill: no data, no
 * keep-alive due yet) is noticed from its socket, not at the next write. */
static void *silent_producer(void *p)
{
    qfit_http_stream *s = p;
    pthread_mutex_lock(&ST.mu);
    for (int i = 0; i < 1000 && !qfit_http_stream_cancelled(s); i++) {   /* at most 10 s */
        pthread_mutex_unlock(&ST.mu);
        usleep(10000);
        pthread_mutex_lock(&ST.mu);
    }
    ST.cancelled_seen = qfit_http_stream_cancelled(s);
    ST.done = true;
    pthread_cond_broadcast(&ST.cv);
    pthread_mutex_unlock(&ST.mu);
    qfit_http_stream_end(s);
    return NULL;
}

static void h_silent(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    qfit_http_stream *s = qfit_http_stream_begin(r, 200, "application/x-ndjson");
    pthread_t t;
    pthread_create(&t, NULL, silent_producer, s);
    pthread_detach(t);
}

Test(server, stream_silent_disconnect_noticed, .fini = teardown)
{
    char err[512];
    fresh_store();
    qfit_server_config cfg = { .store_root = store_root, .keepalive_ms = 60000 };
    srv = qfit_server_new(&cfg, err, sizeof err);
    qfit_http_route rt = { "GET", "/test/silent", h_silent, NULL, 0, 0, NULL };
    cr_assert_eq(qfit_server_route(srv, &rt, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_server_start(srv, err, sizeof err), 0, "%s", err);
    reply r = http((request){ .path = "/test/silent", .timeout_ms = 300 });   /* the client gives up */
    reply_free(&r);
    wait_producer();
    cr_expect_not(ST.timed_out);
    cr_expect(ST.cancelled_seen, "the producer was not told within 10 s (keep-alive is 60 s)");
}

/* ---------------------------------------------------------------- raw bad requests */

/* Send raw bytes, return the status of the answer (0: the server closed without one). */
static int raw_request(const char *bytes, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)qfit_server_port(srv)) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = { .tv_sec = 10 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (write(fd, bytes, len) != (ssize_t)len) { /* the server may close early */ }
    shutdown(fd, SHUT_WR);
    char buf[256] = "";
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    int status = 0;
    if (n > 12) sscanf(buf, "HTTP/1.%*d %d", &status);
    return status;
}

Test(server, raw_bad_requests, .fini = teardown)
{
    start_default();
    /* each: a 4xx (505 for an unknown HTTP version) or a closed connection, never a
     * crash; a HTTP/1.1 request without Host is 400 (as Go's net/http under Ollama) */
    static const struct { const char *bytes; size_t len; int ok_status; } bad[] = {
#define RAW(s, st) { s, sizeof s - 1, st }
        RAW("GARBAGE\r\n\r\n", 0),
        RAW("GET\r\n\r\n", 0),
        RAW("GET / HTTP/1.1\r\n\r\n", 400),
        RAW("GET / HTTP/9.9\r\nHost: localhost\r\n\r\n", 505),
        RAW("GET /api/tags HTTP/1.1\r\nHost: localhost\r\nBad Header Line\r\n\r\n", 0),
        RAW("POST /api/show HTTP/1.1\r\nHost: localhost\r\nContent-Length: -5\r\n\r\n{}", 0),
        RAW("POST /api/show HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999999999999999999\r\n\r\n{}", 0),
        RAW("POST /api/show HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}", 0),
        RAW("POST /api/show HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"
            "2\r\n{}\r\n0\r\n\r\n", 0),                                      /* the smuggling shape */
        RAW("POST /api/show HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            "FFFFFFFFFFFFFFFFFFFF\r\n{}\r\n0\r\n\r\n", 0),                       /* chunk size overflow */
        RAW("POST /api/show HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0),
        RAW("GET /api/../../etc/passwd HTTP/1.1\r\nHost: localhost\r\n\r\n", 0),
        RAW("GET /%zz HTTP/1.1\r\nHost: localhost\r\n\r\n", 0),
#undef RAW
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = raw_request(bad[i].bytes, bad[i].len);
        if (bad[i].ok_status) cr_expect_eq(st, bad[i].ok_status, "case %zu: status %d", i, st);
        else cr_expect(st == 0 || (st >= 400 && st < 500), "case %zu: status %d (%.50s)", i, st, bad[i].bytes);
    }
    reply r = GET("/api/version");
    cr_expect_eq(r.status, 200, "the server still answers");
    reply_free(&r);
}

/* `qfit serve --device vulkan0 --gpu-layers 4`: the models run on the Vulkan device with 4
 * layers there; a request's num_gpu asks for another count, and one the model does not
 * have is an error naming it; a bad --gpu-layers stops the server from starting. */
Test(server, cli_serve_on_a_vulkan_device, .timeout = 300)
{
    const char *dev = tu_vulkan_device();
    fresh_store();
    add_model();
    char cmd[24000], log[4200];
    snprintf(log, sizeof log, "%s/serve-vk.log", tu_tmpdir());
    const char *gen = "{\"model\":\"kjv\",\"prompt\":\"In the beginning\",\"stream\":false,"
                      "\"options\":{\"temperature\":0,\"num_predict\":4%s}}";
    char g1[512], g2[512], g3[512];
    snprintf(g1, sizeof g1, gen, "");
    snprintf(g2, sizeof g2, gen, ",\"num_gpu\":2");
    snprintf(g3, sizeof g3, gen, ",\"num_gpu\":99");
    snprintf(cmd, sizeof cmd,
             "QFIT_MODELS='%s' QFIT_DEBUG=1 %s serve --host 127.0.0.1:0 --device %s --gpu-layers 4 2>'%s' & pid=$!; "
             "for i in $(seq 300); do grep -q listening '%s' && break; sleep 0.1; done; "
             "port=$(sed -n 's/.*127.0.0.1:\\([0-9]*\\).*/\\1/p' '%s' | head -1); "
             "for b in '%s' '%s' '%s'; do curl -s -w ' status=%%{http_code}\\n' http://127.0.0.1:$port/api/generate -d \"$b\"; done; "
             "curl -s http://127.0.0.1:$port/api/ps; kill -TERM $pid; wait $pid; echo \" rc=$?\"",
             store_root, tu_qfit_bin(), dev, log, log, log, g1, g2, g3);
    int st;
    char *out = tu_run(cmd, &st);
    char *l = tu_read_file(log, NULL);
    cr_assert_not_null(l);
    /* two answers, then the refusal */
    const char *a = strstr(out, "\"response\"");
    cr_expect(a && strstr(a, "status=200"), "%s\n%s", out, l);
    cr_expect(a && strstr(a + 1, "\"response\""), "num_gpu 2 answered: %s\n%s", out, l);
    const char *refused = strstr(out, "99 GPU layers requested");
    cr_expect(refused, "num_gpu 99 refused naming it: %s", out);
    cr_expect(refused && strstr(refused, "status=400"), "a count the model does not have is the client's error: %s", out);
    cr_expect(strstr(l, "device vulkan0 (4 of 8 layers there)"), "the default instance: 4 layers: %s", l);
    cr_expect(strstr(l, "device vulkan0 (2 of 8 layers there)"), "num_gpu 2: %s", l);
    cr_expect(strstr(out, "rc=0"), "%s", out);
    free(out);
    free(l);
    snprintf(cmd, sizeof cmd, "QFIT_MODELS='%s' %s serve --host 127.0.0.1:0 --gpu-layers many", store_root,
             tu_qfit_bin());
    out = tu_run(cmd, &st);
    cr_expect_neq(st, 0, "%s", out);
    cr_expect(strstr(out, "invalid layer count 'many'"), "%s", out);
    free(out);
}
