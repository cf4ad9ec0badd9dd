/* Suite batch: the Redis Streams batch queue (include/qfit/batch.h), qfit_server_call
 * (include/qfit/server.h), `qfit batch` and `qfit worker`. Every test that needs Redis
 * starts its own redis-server (Debian's /usr/bin/redis-server, AOF on) on a free
 * loopback port in a temporary directory and kills it in .fini, pass or fail.
 * The in-process worker tests use a fake job runner (no model); the end-to-end test
 * runs real `qfit worker` processes on the shared model at two quantizations. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "batch/batch_int.h"
#include "qfit/batch.h"
#include "qfit/sched.h"
#include "qfit/server.h"
#include "server/routes_batch.h"
#include "qfit/store.h"
#include "server/routes_engine.h"
#include "util/testutil.h"

#define F32_MODEL "models/kjv-llama-7m-f32.gguf"
#define WAIT_S 150        /* a real-model batch not done by then is stuck: fail */
#define FAKE_WAIT_S 30    /* the same for the fake-model batches (milliseconds of work) */

/* ---------------------------------------------------------------- processes */

#define MAX_PROCS 8
static pid_t procs[MAX_PROCS];   /* redis-server and workers, killed in .fini */

static void track(pid_t p)
{
    for (int i = 0; i < MAX_PROCS; i++)
        if (!procs[i]) { procs[i] = p; return; }
    cr_assert_fail("too many processes");
}

static void untrack(pid_t p)
{
    for (int i = 0; i < MAX_PROCS; i++)
        if (procs[i] == p) procs[i] = 0;
}

static void teardown(void)
{
    for (int i = 0; i < MAX_PROCS; i++)
        if (procs[i] > 0) {
            kill(procs[i], SIGKILL);
            waitpid(procs[i], NULL, 0);
            procs[i] = 0;
        }
}

/* sh -c "exec CMD" with stdout+stderr to log; the pid is CMD's. */
static pid_t spawn(const char *cmd, const char *log)
{
    pid_t p = fork();
    cr_assert_geq(p, 0);
    if (p == 0) {
        setpgid(0, 0);
        if (!freopen(log, "a", stdout) || !freopen(log, "a", stderr)) _exit(127);
        char full[8192];
        snprintf(full, sizeof full, "exec %s", cmd);
        execl("/bin/sh", "sh", "-c", full, (char *)NULL);
        _exit(127);
    }
    track(p);
    return p;
}

static void sleep_ms(int ms)
{
    struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&t, NULL);
}

/* ---------------------------------------------------------------- redis-server */

typedef struct {
    char  dir[4096];
    int   port;
    pid_t pid;
    char  url[128];
    char  password[64];   /* --requirepass when set */
} redis_srv;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

static redisContext *rconnect(const redis_srv *r)
{
    redisContext *c = redisConnect("127.0.0.1", r->port);
    cr_assert(c && !c->err, "connect to the test redis: %s", c ? c->errstr : "oom");
    return c;
}

static void redis_start(redis_srv *r)
{
    if (!r->port) {
        static int n;
        snprintf(r->dir, sizeof r->dir, "%s/redis-%d", tu_tmpdir(), n++);
        mkdir(r->dir, 0755);
        r->port = free_port();
        snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d/0", r->port);
    }
    char cmd[4800], log[4200];
    snprintf(cmd, sizeof cmd, "/usr/bin/redis-server --port %d --bind 127.0.0.1 --dir '%s' --appendonly yes "
             "--save '' --daemonize no%s%s", r->port, r->dir, r->password[0] ? " --requirepass " : "", r->password);
    snprintf(log, sizeof log, "%s/redis.log", r->dir);
    r->pid = spawn(cmd, log);
    for (int i = 0; i < 500; i++) {   /* until it answers PING (and has loaded its AOF) */
        redisContext *c = redisConnect("127.0.0.1", r->port);
        redisReply *rep = c && !c->err ? redisCommand(c, "PING") : NULL;
        bool up = rep && (rep->type == REDIS_REPLY_STATUS || (r->password[0] && rep->type == REDIS_REPLY_ERROR &&
                                                              strstr(rep->str, "NOAUTH")));
        if (rep) freeReplyObject(rep);
        if (c) redisFree(c);
        if (up) return;
        sleep_ms(20);
    }
    cr_assert_fail("redis-server did not start (see %s)", log);
}

/* A clean stop (SIGTERM: Redis writes its AOF and exits). */
static void redis_stop(redis_srv *r)
{
    kill(r->pid, SIGTERM);
    int st;
    cr_assert_eq(waitpid(r->pid, &st, 0), r->pid);
    untrack(r->pid);
}

static long long redis_int(redisContext *c, const char *cmd)
{
    redisReply *rep = redisCommand(c, cmd);
    cr_assert(rep && rep->type == REDIS_REPLY_INTEGER, "%s: %s", cmd, rep && rep->str ? rep->str : "?");
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

/* ---------------------------------------------------------------- files */

static char *write_tmp(const char *name, const char *text)
{
    static char path[8][4200];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", tu_tmpdir(), name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static char *qfit_cmd(const char *args, int *st)
{
    char cmd[12288];
    snprintf(cmd, sizeof cmd, "%s %s", tu_qfit_bin(), args);
    return tu_run(cmd, st);
}

/* ---------------------------------------------------------------- URLs */

Test(batch, url_parse)
{
    char err[512];
    qfit_redis_url u;
    cr_assert_eq(qfit_redis_url_parse("redis://127.0.0.1:6380/2", &u, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(u.host, "127.0.0.1");
    cr_expect_eq(u.port, 6380);
    cr_expect_eq(u.db, 2);
    cr_expect_str_eq(u.password, "");
    cr_assert_eq(qfit_redis_url_parse("redis://alice:p%40ss%3Aw@cache.internal", &u, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(u.user, "alice");
    cr_expect_str_eq(u.password, "p@ss:w");
    cr_expect_str_eq(u.host, "cache.internal");
    cr_expect_eq(u.port, 6379);
    cr_expect_eq(u.db, 0);
    cr_assert_eq(qfit_redis_url_parse("redis://:secret@[::1]:7000/15", &u, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(u.user, "");
    cr_expect_str_eq(u.password, "secret");
    cr_expect_str_eq(u.host, "::1");
    cr_expect_eq(u.port, 7000);
    cr_expect_eq(u.db, 15);
    cr_assert_eq(qfit_redis_url_parse("redis://h/", &u, err, sizeof err), 0, "%s", err);
    cr_expect_eq(u.db, 0);
    /* TLS is never silently plain */
    cr_expect_eq(qfit_redis_url_parse("rediss://h:6380", &u, err, sizeof err), -1);
    cr_expect(strstr(err, "rediss://") && strstr(err, "TLS"), "%s", err);
    static const char *const bad[] = { "http://h", "redis://", "redis://h:0", "redis://h:65536", "redis://h:x",
                                       "redis://h/db", "redis://h/1?x=1", "redis://u:%zz@h", "redis://[::1",
                                       "redis://h h" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(qfit_redis_url_parse(bad[i], &u, err, sizeof err), -1, "'%s' accepted", bad[i]);
}

/* Connections Redis has accepted so far (INFO stats), this one included. */
static long long connections(const redis_srv *r)
{
    redisContext *c = rconnect(r);
    redisReply *rep = redisCommand(c, "AUTH %s", r->password);
    freeReplyObject(rep);
    rep = redisCommand(c, "INFO stats");
    cr_assert(rep && rep->type == REDIS_REPLY_STRING);
    const char *p = strstr(rep->str, "total_connections_received:");
    cr_assert_not_null(p);
    long long n = atoll(p + strlen("total_connections_received:"));
    freeReplyObject(rep);
    redisFree(c);
    return n;
}

/* A password-protected Redis and a database number: AUTH and SELECT from the URL;
 * a wrong password fails at once with Redis's own message (no retry loop). */
Test(batch, url_auth_and_db, .fini = teardown)
{
    redis_srv r = { .password = "s3cret" };
    redis_start(&r);
    char url[256], err[512];
    snprintf(url, sizeof url, "redis://:s3cret@127.0.0.1:%d/3", r.port);
    qfit_batch_client *cl = qfit_batch_connect(url, err, sizeof err);
    cr_assert_not_null(cl, "%s", err);
    const char *text = "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/api/embed\",\"body\":{\"model\":\"m\"}}";
    qfit_batch_input *in = qfit_batch_parse(text, strlen(text), NULL, err, sizeof err);
    cr_assert_not_null(in, "%s", err);
    char id[QFIT_BATCH_ID_LEN + 1];
    cr_assert_eq(qfit_batch_submit(cl, in, 0, id, err, sizeof err), 0, "%s", err);
    qfit_batch_close(cl);
    qfit_batch_input_free(in);
    redisContext *c = rconnect(&r);
    redisReply *rep = redisCommand(c, "AUTH s3cret");
    freeReplyObject(rep);
    cr_expect_eq(redis_int(c, "DBSIZE"), 0, "written to db 0 instead of 3");
    rep = redisCommand(c, "SELECT 3");
    freeReplyObject(rep);
    cr_expect_gt(redis_int(c, "DBSIZE"), 0, "nothing in db 3");
    redisFree(c);
    snprintf(url, sizeof url, "redis://:wrong@127.0.0.1:%d/3", r.port);
    long long before = connections(&r);
    cl = qfit_batch_connect(url, err, sizeof err);
    cr_expect_null(cl);
    cr_expect(strstr(err, "AUTH") != NULL, "%s", err);
    cr_expect_eq(connections(&r) - before, 1 + 1, "a wrong password must not be retried (+1: our INFO)");
    qfit_batch_close(cl);
    redis_stop(&r);
}

/* ---------------------------------------------------------------- input */

static const char GOOD[] =
    "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"m1\","
    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}}\n"
    "{\"custom_id\":\"b\",\"method\":\"POST\",\"url\":\"/api/generate\",\"body\":{\"prompt\":\"x\"}}\r\n"
    "{\"custom_id\":\"c\",\"method\":\"POST\",\"url\":\"/api/embed\",\"body\":{\"model\":\"m2\",\"input\":\"x\"}}";

Test(batch, parse_good_file)
{
    char err[512];
    qfit_batch_input *in = qfit_batch_parse(GOOD, strlen(GOOD), "dflt", err, sizeof err);
    cr_assert_not_null(in, "%s", err);
    cr_assert_eq(in->n, 3);
    cr_expect_str_eq(in->jobs[0].model, "m1");
    cr_expect_str_eq(in->jobs[1].model, "dflt");   /* --model fills a body without one */
    cr_expect_str_eq(in->jobs[1].body, "{\"prompt\":\"x\",\"model\":\"dflt\"}");
    cr_expect_str_eq(in->jobs[2].url, "/api/embed");
    cr_expect_str_eq(in->jobs[2].custom_id, "c");
    qfit_batch_input_free(in);
}

/* Each bad file is refused naming its bad line and what is wrong. */
Test(batch, parse_refuses_bad_line_with_its_number)
{
    static const struct { const char *text, *want; } cases[] = {
        { "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/api/generate\",\"body\":{\"model\":\"m\"}}\n{oops\n",
          "line 2, column" },
        { "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/api/generate\",\"body\":{\"model\":\"m\"}}\n"
          "{\"custom_id\":\"b\",\"method\":\"POST\",\"url\":\"/api/generate\",\"body\":{\"model\":\"m\"}}\n"
          "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/api/generate\",\"body\":{\"model\":\"m\"}}\n",
          "line 3: field 'custom_id': 'a' is already used on line 1" },
        { "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/api/pull\",\"body\":{\"model\":\"m\"}}\n",
          "line 1: field 'url': '/api/pull' is not a batch endpoint" },
        { "{\"custom_id\":\"a\",\"method\":\"GET\",\"url\":\"/api/chat\",\"body\":{\"model\":\"m\"}}\n",
          "line 1: field 'method'" },
        { "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/api/chat\",\"body\":{}}\n",
          "line 1: field 'body.model': missing" },
        { "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/api/chat\",\"body\":{\"model\":\"m\"}}\n\n"
          "{\"custom_id\":\"b\",\"method\":\"POST\",\"url\":\"/api/chat\",\"body\":{\"model\":\"m\"}}\n",
          "line 2: empty line" },
        { "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/api/chat\",\"body\":{\"model\":\"m\"},\"x\":1}\n",
          "line 1: unknown field 'x'" },
        { "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/api/chat\",\"body\":[]}\n",
          "line 1: field 'body': must be a JSON object" },
        { "{\"custom_id\":7,\"method\":\"POST\",\"url\":\"/api/chat\",\"body\":{\"model\":\"m\"}}\n",
          "line 1: field 'custom_id': must be a string" },
        { "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/api/chat\",\"body\":{\"model\":\"a b\"}}\n",
          "line 1: field 'body.model': 'a b' is not a model name" },
        { "[1]\n", "line 1: not a JSON object" },
        { "", "no requests" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "";
        qfit_batch_input *in = qfit_batch_parse(cases[i].text, strlen(cases[i].text), NULL, err, sizeof err);
        cr_expect_null(in, "case %zu accepted", i);
        qfit_batch_input_free(in);
        cr_expect(strstr(err, cases[i].want) != NULL, "case %zu: '%s' does not say '%s'", i, err, cases[i].want);
    }
}

/* qfit batch submit refuses the whole file before anything is queued. */
Test(batch, submit_refuses_file_and_queues_nothing, .fini = teardown)
{
    redis_srv r = { 0 };
    redis_start(&r);
    char *path = write_tmp("bad.jsonl",
                           "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/api/generate\",\"body\":{\"model\":\"m\"}}\n"
                           "{\"custom_id\":\"b\",\"method\":\"POST\",\"url\":\"/v1/nope\",\"body\":{\"model\":\"m\"}}\n");
    char args[8192];
    snprintf(args, sizeof args, "batch submit '%s' --redis %s", path, r.url);
    int st;
    char *out = qfit_cmd(args, &st);
    cr_expect_eq(st, 1, "%s", out);
    cr_expect(strstr(out, "line 2: field 'url': '/v1/nope'") != NULL, "%s", out);
    free(out);
    redisContext *c = rconnect(&r);
    cr_expect_eq(redis_int(c, "DBSIZE"), 0, "something was queued");
    redisFree(c);
    redis_stop(&r);
}

/* ---------------------------------------------------------------- the result store */

Test(batch, store_is_idempotent, .fini = teardown)
{
    redis_srv r = { 0 };
    redis_start(&r);
    char err[512];
    qfit_batch_client *cl = qfit_batch_connect(r.url, err, sizeof err);
    cr_assert_not_null(cl, "%s", err);
    qfit_batch_input *in = qfit_batch_parse(GOOD, strlen(GOOD), "dflt", err, sizeof err);
    cr_assert_not_null(in, "%s", err);
    char id[QFIT_BATCH_ID_LEN + 1];
    cr_assert_eq(qfit_batch_submit(cl, in, 0, id, err, sizeof err), 0, "%s", err);
    rconn rc = { 0 };
    cr_assert_eq(rconn_open(&rc, r.url, NULL, err, sizeof err), 0, "%s", err);
    bool stored;
    for (int k = 0; k < 3; k++) {   /* a job done three times (three deliveries) */
        cr_assert_eq(batch_store(&rc, id, 1, k == 0 ? "{\"first\":1}" : "{\"again\":1}", "qfit:q:dflt", NULL,
                                 BATCH_DONE, 5, "b", NULL, 1, &stored, err, sizeof err), 0, "%s", err);
        cr_expect_eq(stored, k == 0);
    }
    qfit_batch_status st;
    cr_assert_eq(qfit_batch_get_status(cl, id, &st, err, sizeof err), 0, "%s", err);
    cr_expect_eq(st.done, 1, "counted %lld times", (long long)st.done);
    cr_expect_eq(st.tokens, 5);
    cr_expect_str_eq(st.status, "queued");
    redisContext *c = rconnect(&r);
    redisReply *rep = redisCommand(c, "HGET qfit:batch:%s:out 1", id);
    cr_assert(rep && rep->type == REDIS_REPLY_STRING);
    cr_expect_str_eq(rep->str, "{\"first\":1}", "the first result must stay");
    freeReplyObject(rep);
    redisFree(c);
    rconn_close(&rc);
    qfit_batch_input_free(in);
    qfit_batch_close(cl);
    redis_stop(&r);
}

/* ---------------------------------------------------------------- in-process workers */

typedef struct {
    atomic_int calls;
    atomic_int fail5xx;    /* calls answered 500 */
    atomic_int block;      /* calls left that wait for the cancel flag, then answer 499 */
} fake_state;

/* A fake model: echoes the custom prompt; a prompt "fail" gets 500, "missing" 404. */
static int fake_run(void *ctx, const char *url, const char *body, size_t body_len, const atomic_bool *cancel,
                    unsigned *status, char **resp, size_t *resp_len, char *err, size_t err_len)
{
    fake_state *fs = ctx;
    atomic_fetch_add(&fs->calls, 1);
    if (atomic_fetch_sub(&fs->block, 1) > 0) {
        while (!atomic_load(cancel)) sleep_ms(5);
        *status = 499;
        *resp = strdup("{\"error\":\"client closed the request\"}");
        *resp_len = strlen(*resp);
        return 0;
    }
    json_t *j = json_loadb(body, body_len, 0, NULL);
    const char *p = json_string_value(json_object_get(j, "prompt"));
    bool stream_false = json_object_get(j, "stream") == json_false();
    *status = !p ? 400 : !strcmp(p, "fail") ? 500 : !strcmp(p, "missing") ? 404 : 200;
    if (*status == 500) atomic_fetch_add(&fs->fail5xx, 1);
    json_t *out = json_pack("{s:s,s:s,s:b,s:i}", "url", url, "echo", p ? p : "", "stream_false", stream_false,
                            "eval_count", 3);
    *resp = json_dumps(out, JSON_COMPACT);
    *resp_len = strlen(*resp);
    json_decref(out);
    json_decref(j);
    return 0;
}

typedef struct {
    qfit_batch_worker_config cfg;
    atomic_int stop;
    pthread_t t;
    int rc;
    char err[512];
} bg_worker;

static void *bg_main(void *arg)
{
    bg_worker *w = arg;
    w->rc = qfit_batch_worker_run(&w->cfg, &w->stop, w->err, sizeof w->err);
    return NULL;
}

static void bg_start_vis(bg_worker *w, const char *url, const char *const *models, size_t n, fake_state *fs,
                         int visibility_ms)
{
    memset(w, 0, sizeof *w);
    w->cfg = (qfit_batch_worker_config){ .url = url, .models = models, .n_models = n, .concurrency = 2,
                                          .visibility_ms = visibility_ms, .max_attempts = 3, .run = fake_run,
                                          .run_ctx = fs };
    cr_assert_eq(pthread_create(&w->t, NULL, bg_main, w), 0);
}

static void bg_start(bg_worker *w, const char *url, const char *const *models, size_t n, fake_state *fs)
{
    bg_start_vis(w, url, models, n, fs, 500);
}

static void bg_stop(bg_worker *w)
{
    atomic_store(&w->stop, 1);
    pthread_join(w->t, NULL);
    cr_expect_eq(w->rc, 0, "%s", w->err);
}

static void wait_finished_s(qfit_batch_client *cl, const char *id, qfit_batch_status *st, int secs)
{
    char err[512];
    for (int i = 0; i < secs * 20; i++) {
        cr_assert_eq(qfit_batch_get_status(cl, id, st, err, sizeof err), 0, "%s", err);
        if (!strcmp(st->status, "completed") || !strcmp(st->status, "cancelled")) return;
        sleep_ms(50);
    }
    cr_assert_fail("batch %s stuck: %lld done, %lld failed of %lld", id, (long long)st->done, (long long)st->failed,
                   (long long)st->total);
}

static void wait_finished(qfit_batch_client *cl, const char *id, qfit_batch_status *st)
{
    wait_finished_s(cl, id, st, FAKE_WAIT_S);
}

static char *gen_line(const char *cid, const char *model, const char *prompt)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "{\"custom_id\":\"%s\",\"method\":\"POST\",\"url\":\"/api/generate\",\"body\":"
             "{\"model\":\"%s\",\"prompt\":\"%s\",\"stream\":true}}\n", cid, model, prompt);
    return buf;
}

static json_t *read_results(qfit_batch_client *cl, const char *id, size_t *n)
{
    char err[512], path[4200];
    snprintf(path, sizeof path, "%s/out-%s.jsonl", tu_tmpdir(), id);
    cr_assert_eq(qfit_batch_results(cl, id, path, err, sizeof err), 0, "%s", err);
    size_t len;
    char *text = tu_read_file(path, &len);
    cr_assert_not_null(text);
    json_t *arr = json_array();
    *n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        cr_assert_not_null(j, "output line %zu is not JSON: %s", *n + 1, je.text);
        json_array_append_new(arr, j);
        (*n)++;
    }
    free(text);
    return arr;
}

/* Results in input order; 4xx is a result; 5xx retried then dead-lettered, exactly
 * the failing jobs; stream false forced; the stream emptied once collected. */
Test(batch, worker_results_and_dead_letter, .fini = teardown)
{
    redis_srv r = { 0 };
    redis_start(&r);
    char text[8192] = "", err[512];
    static const char *const prompts[] = { "p0", "fail", "p2", "missing", "p4", "fail", "p6", "p7" };
    for (int i = 0; i < 8; i++) {
        char cid[16];
        snprintf(cid, sizeof cid, "job-%d", i);
        strcat(text, gen_line(cid, i % 2 ? "mb" : "ma", prompts[i]));
    }
    qfit_batch_input *in = qfit_batch_parse(text, strlen(text), NULL, err, sizeof err);
    cr_assert_not_null(in, "%s", err);
    qfit_batch_client *cl = qfit_batch_connect(r.url, err, sizeof err);
    cr_assert_not_null(cl, "%s", err);
    char id[QFIT_BATCH_ID_LEN + 1];
    cr_assert_eq(qfit_batch_submit(cl, in, 0, id, err, sizeof err), 0, "%s", err);
    fake_state fs = { 0 };
    bg_worker w;
    bg_start(&w, r.url, NULL, 0, &fs);   /* no --model: every queued model */
    qfit_batch_status st;
    wait_finished(cl, id, &st);
    bg_stop(&w);
    cr_expect_str_eq(st.status, "completed");
    cr_expect_eq(st.done, 6);
    cr_expect_eq(st.failed, 2);
    cr_expect_eq(st.tokens, 6 * 3);
    cr_expect_eq(atomic_load(&fs.fail5xx), 2 * 3, "each failing job runs max_attempts times (ran %d)", atomic_load(&fs.fail5xx));
    size_t n;
    json_t *out = read_results(cl, id, &n);
    cr_assert_eq(n, 8);
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(out, i);
        char cid[32], rid[64];
        snprintf(cid, sizeof cid, "job-%zu", i);
        snprintf(rid, sizeof rid, "%s-%zu", id, i);
        cr_expect_str_eq(json_string_value(json_object_get(l, "custom_id")), cid, "output out of input order");
        cr_expect_str_eq(json_string_value(json_object_get(l, "id")), rid);
        json_t *resp = json_object_get(l, "response");
        if (!strcmp(prompts[i], "fail")) {
            cr_expect(json_is_null(resp));
            cr_expect_str_eq(json_string_value(json_object_get(json_object_get(l, "error"), "code")), "job_failed");
            continue;
        }
        cr_expect(json_is_null(json_object_get(l, "error")));
        cr_expect_eq(json_integer_value(json_object_get(resp, "status_code")),
                     !strcmp(prompts[i], "missing") ? 404 : 200);
        json_t *body = json_object_get(resp, "body");
        cr_expect_str_eq(json_string_value(json_object_get(body, "echo")), prompts[i]);
        cr_expect(json_is_true(json_object_get(body, "stream_false")), "the worker must send \"stream\": false");
    }
    json_decref(out);
    redisContext *c = rconnect(&r);
    redisReply *dead = redisCommand(c, "XRANGE qfit:dead - +");
    cr_assert(dead && dead->type == REDIS_REPLY_ARRAY);
    cr_expect_eq(dead->elements, 2);
    for (size_t i = 0; i < dead->elements; i++) {
        const redisReply *f = dead->element[i]->element[1];
        const char *cid = NULL, *attempts = NULL, *errmsg = NULL;
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (!strcmp(f->element[k]->str, "c")) cid = f->element[k + 1]->str;
            if (!strcmp(f->element[k]->str, "attempts")) attempts = f->element[k + 1]->str;
            if (!strcmp(f->element[k]->str, "error")) errmsg = f->element[k + 1]->str;
        }
        cr_expect(cid && (!strcmp(cid, "job-1") || !strcmp(cid, "job-5")), "dead: %s", cid ? cid : "?");
        cr_expect(attempts && !strcmp(attempts, "3"));
        cr_expect(errmsg && strstr(errmsg, "HTTP 500"), "%s", errmsg ? errmsg : "?");
    }
    freeReplyObject(dead);
    /* memory bounded: every finished job left its stream */
    cr_expect_eq(redis_int(c, "XLEN qfit:q:ma"), 0);
    cr_expect_eq(redis_int(c, "XLEN qfit:q:mb"), 0);
    char ttl[64];
    snprintf(ttl, sizeof ttl, "TTL qfit:batch:%s", id);
    long long left = redis_int(c, ttl);
    cr_expect(left > QFIT_BATCH_DEFAULT_TTL_S - 600 && left <= QFIT_BATCH_DEFAULT_TTL_S,
              "a finished batch must expire after the default TTL (%lld s left)", left);
    redisFree(c);
    qfit_batch_input_free(in);
    qfit_batch_close(cl);
    redis_stop(&r);
}

/* A job taken by a consumer that died is taken over after the visibility timeout. */
Test(batch, reclaim_after_visibility_timeout, .fini = teardown)
{
    redis_srv r = { 0 };
    redis_start(&r);
    char err[512];
    const char *text = gen_line("only", "ma", "p");
    qfit_batch_input *in = qfit_batch_parse(text, strlen(text), NULL, err, sizeof err);
    cr_assert_not_null(in, "%s", err);
    qfit_batch_client *cl = qfit_batch_connect(r.url, err, sizeof err);
    cr_assert_not_null(cl, "%s", err);
    char id[QFIT_BATCH_ID_LEN + 1];
    cr_assert_eq(qfit_batch_submit(cl, in, 0, id, err, sizeof err), 0, "%s", err);
    /* a "worker" takes the job and dies */
    redisContext *c = rconnect(&r);
    redisReply *rep = redisCommand(c, "XREADGROUP GROUP workers ghost COUNT 1 STREAMS qfit:q:ma >");
    cr_assert(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1, "the ghost got no job");
    freeReplyObject(rep);
    fake_state fs = { 0 };
    bg_worker w;
    static const char *const models[] = { "ma" };
    bg_start(&w, r.url, models, 1, &fs);
    qfit_batch_status st;
    wait_finished(cl, id, &st);
    bg_stop(&w);
    cr_expect_eq(st.done, 1);
    cr_expect_eq(atomic_load(&fs.calls), 1);
    size_t n;
    json_t *out = read_results(cl, id, &n);
    cr_expect_eq(n, 1);
    json_decref(out);
    cr_expect_eq(redis_int(c, "XLEN qfit:q:ma"), 0);
    redisFree(c);
    qfit_batch_input_free(in);
    qfit_batch_close(cl);
    redis_stop(&r);
}

/* Whoever can write to the queue cannot reach other routes through a worker: an
 * entry for /api/pull, or naming another model than its queue's, fails unrun. */
Test(batch, worker_refuses_forged_entries, .fini = teardown)
{
    redis_srv r = { 0 };
    redis_start(&r);
    char err[512];
    const char *text = gen_line("real", "ma", "p");
    qfit_batch_input *in = qfit_batch_parse(text, strlen(text), NULL, err, sizeof err);
    cr_assert_not_null(in, "%s", err);
    qfit_batch_client *cl = qfit_batch_connect(r.url, err, sizeof err);
    cr_assert_not_null(cl, "%s", err);
    char id[QFIT_BATCH_ID_LEN + 1];
    cr_assert_eq(qfit_batch_submit(cl, in, 0, id, err, sizeof err), 0, "%s", err);
    redisContext *c = rconnect(&r);
    redisReply *rep = redisCommand(c, "XADD qfit:q:ma * b %s i 1 c pull u /api/pull d {\"model\":\"ma\"}", id);
    freeReplyObject(rep);
    rep = redisCommand(c, "XADD qfit:q:ma * b %s i 2 c other u /api/generate d {\"model\":\"mz\",\"prompt\":\"p\"}", id);
    freeReplyObject(rep);
    rep = redisCommand(c, "HSET qfit:batch:%s total 3", id);
    freeReplyObject(rep);
    fake_state fs = { 0 };
    bg_worker w;
    bg_start(&w, r.url, NULL, 0, &fs);
    qfit_batch_status st;
    wait_finished(cl, id, &st);
    bg_stop(&w);
    cr_expect_eq(atomic_load(&fs.calls), 1, "a forged entry was run");
    cr_expect_eq(st.done, 1);
    cr_expect_eq(st.failed, 2);
    size_t n;
    json_t *out = read_results(cl, id, &n);
    cr_assert_eq(n, 3);
    const char *m1 = json_string_value(json_object_get(json_object_get(json_array_get(out, 1), "error"), "message"));
    const char *m2 = json_string_value(json_object_get(json_object_get(json_array_get(out, 2), "error"), "message"));
    cr_expect(m1 && strstr(m1, "'/api/pull' is not a batch endpoint"), "%s", m1 ? m1 : "?");
    cr_expect(m2 && strstr(m2, "body.model is not 'ma'"), "%s", m2 ? m2 : "?");
    json_decref(out);
    redisFree(c);
    qfit_batch_input_free(in);
    qfit_batch_close(cl);
    redis_stop(&r);
}

static bool only_ma(void *ctx, const char *model) { return !strcmp(model, "ma"); }

/* A worker without --model takes the jobs of the models its store has, and leaves
 * the others queued for the machines that have them. */
Test(batch, worker_takes_only_local_models, .fini = teardown)
{
    redis_srv r = { 0 };
    redis_start(&r);
    char text[1024] = "", err[512];
    strcat(text, gen_line("here", "ma", "p"));
    strcat(text, gen_line("elsewhere", "mz", "p"));
    qfit_batch_input *in = qfit_batch_parse(text, strlen(text), NULL, err, sizeof err);
    cr_assert_not_null(in, "%s", err);
    qfit_batch_client *cl = qfit_batch_connect(r.url, err, sizeof err);
    cr_assert_not_null(cl, "%s", err);
    char id[QFIT_BATCH_ID_LEN + 1];
    cr_assert_eq(qfit_batch_submit(cl, in, 0, id, err, sizeof err), 0, "%s", err);
    fake_state fs = { 0 };
    bg_worker w;
    memset(&w, 0, sizeof w);
    w.cfg = (qfit_batch_worker_config){ .url = r.url, .concurrency = 2, .visibility_ms = 500, .run = fake_run,
                                        .run_ctx = &fs, .has_model = only_ma };
    cr_assert_eq(pthread_create(&w.t, NULL, bg_main, &w), 0);
    qfit_batch_status st = { 0 };
    for (int i = 0; i < FAKE_WAIT_S * 20 && st.done == 0; i++) {
        cr_assert_eq(qfit_batch_get_status(cl, id, &st, err, sizeof err), 0, "%s", err);
        sleep_ms(50);
    }
    sleep_ms(300);
    bg_stop(&w);
    cr_expect_eq(atomic_load(&fs.calls), 1, "a job of a model this store lacks was run");
    redisContext *c = rconnect(&r);
    cr_expect_eq(redis_int(c, "XLEN qfit:q:mz"), 1);
    redisReply *rep = redisCommand(c, "XPENDING qfit:q:mz workers");
    cr_assert(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1);
    cr_expect_eq(rep->element[0]->integer, 0, "the other model's job was taken");
    freeReplyObject(rep);
    redisFree(c);
    qfit_batch_input_free(in);
    qfit_batch_close(cl);
    redis_stop(&r);
}

/* Stop level 2 (a second SIGINT): the running job is cancelled and handed back at
 * once: still pending, idle past the visibility timeout, and another worker takes it
 * without waiting for the (here 60 s) visibility timeout. */
Test(batch, stop_hands_running_job_back, .fini = teardown)
{
    redis_srv r = { 0 };
    redis_start(&r);
    char err[512];
    const char *text = gen_line("slow", "ma", "p");
    qfit_batch_input *in = qfit_batch_parse(text, strlen(text), NULL, err, sizeof err);
    cr_assert_not_null(in, "%s", err);
    qfit_batch_client *cl = qfit_batch_connect(r.url, err, sizeof err);
    cr_assert_not_null(cl, "%s", err);
    char id[QFIT_BATCH_ID_LEN + 1];
    cr_assert_eq(qfit_batch_submit(cl, in, 0, id, err, sizeof err), 0, "%s", err);
    fake_state fs = { 0 };
    atomic_store(&fs.block, 1);
    bg_worker w1, w2;
    bg_start_vis(&w1, r.url, NULL, 0, &fs, 60000);
    for (int i = 0; i < 2000 && atomic_load(&fs.calls) == 0; i++) sleep_ms(5);
    cr_assert_eq(atomic_load(&fs.calls), 1, "the job never started");
    atomic_store(&w1.stop, 2);
    pthread_join(w1.t, NULL);
    cr_expect_eq(w1.rc, 0, "%s", w1.err);
    redisContext *c = rconnect(&r);
    redisReply *rep = redisCommand(c, "XPENDING qfit:q:ma workers - + 10");
    cr_assert(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1, "the job is not pending");
    cr_expect_geq(rep->element[0]->element[2]->integer, 60000, "not claimable at once");
    freeReplyObject(rep);
    redisFree(c);
    bg_start_vis(&w2, r.url, NULL, 0, &fs, 60000);
    qfit_batch_status st = { 0 };
    for (int i = 0; i < 200 && st.done == 0; i++) {   /* 10 s: far below the visibility timeout */
        cr_assert_eq(qfit_batch_get_status(cl, id, &st, err, sizeof err), 0, "%s", err);
        sleep_ms(50);
    }
    bg_stop(&w2);
    cr_expect_eq(st.done, 1, "the handed-back job was not taken over at once");
    cr_expect_eq(atomic_load(&fs.calls), 2);
    qfit_batch_input_free(in);
    qfit_batch_close(cl);
    redis_stop(&r);
}

/* Cancel with no worker running: every job gets a batch_cancelled line at once;
 * a worker started later runs nothing. */
Test(batch, cancel, .fini = teardown)
{
    redis_srv r = { 0 };
    redis_start(&r);
    char text[4096] = "", err[512];
    for (int i = 0; i < 5; i++) {
        char cid[16];
        snprintf(cid, sizeof cid, "c%d", i);
        strcat(text, gen_line(cid, "ma", "p"));
    }
    qfit_batch_input *in = qfit_batch_parse(text, strlen(text), NULL, err, sizeof err);
    cr_assert_not_null(in, "%s", err);
    qfit_batch_client *cl = qfit_batch_connect(r.url, err, sizeof err);
    cr_assert_not_null(cl, "%s", err);
    char id[QFIT_BATCH_ID_LEN + 1];
    cr_assert_eq(qfit_batch_submit(cl, in, 1000, id, err, sizeof err), 0, "%s", err);
    cr_expect_eq(qfit_batch_results(cl, id, NULL, err, sizeof err), -1, "results of an unfinished batch");
    cr_expect(strstr(err, "not finished: 0 of 5"), "%s", err);
    cr_expect_eq(qfit_batch_client_status(cl), QFIT_E_CONFLICT);
    cr_assert_eq(qfit_batch_cancel(cl, id, err, sizeof err), 0, "%s", err);
    cr_expect_eq(qfit_batch_client_status(cl), QFIT_OK);
    qfit_batch_status st;
    cr_assert_eq(qfit_batch_get_status(cl, id, &st, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(st.status, "cancelled");
    cr_expect_eq(st.cancelled, 5);
    cr_expect_eq(qfit_batch_cancel(cl, id, err, sizeof err), -1);
    cr_expect(strstr(err, "already cancelled"), "%s", err);
    cr_expect_eq(qfit_batch_client_status(cl), QFIT_E_CONFLICT);
    redisContext *c = rconnect(&r);
    char ttl[64];
    snprintf(ttl, sizeof ttl, "TTL qfit:batch:%s:out", id);
    long long left = redis_int(c, ttl);
    cr_expect(left > 0 && left <= 1000, "the results must expire after the batch's ttl (%lld s left)", left);
    redisFree(c);
    fake_state fs = { 0 };
    bg_worker w;
    bg_start(&w, r.url, NULL, 0, &fs);
    sleep_ms(300);
    bg_stop(&w);
    cr_expect_eq(atomic_load(&fs.calls), 0, "a cancelled job ran");
    size_t n;
    json_t *out = read_results(cl, id, &n);
    cr_assert_eq(n, 5);
    for (size_t i = 0; i < n; i++)
        cr_expect_str_eq(json_string_value(json_object_get(json_object_get(json_array_get(out, i), "error"), "code")),
                         "batch_cancelled");
    json_decref(out);
    char bad[] = "batch_0000000000000000";
    cr_expect_eq(qfit_batch_get_status(cl, bad, &st, err, sizeof err), -1);
    cr_expect(strstr(err, "no batch batch_0000000000000000"), "%s", err);
    cr_expect_eq(qfit_batch_client_status(cl), QFIT_E_NOT_FOUND);
    cr_expect_eq(qfit_batch_get_status(cl, "batch_XYZ", &st, err, sizeof err), -1);
    cr_expect_eq(qfit_batch_client_status(cl), QFIT_E_INVALID, "%s", err);
    qfit_batch_input_free(in);
    qfit_batch_close(cl);
    redis_stop(&r);
}

/* ---------------------------------------------------------------- end to end */

/* The shared model at two quantizations and a damaged copy (its blob in the store
 * truncated after the import: loading it fails with 500, every time), in a fresh store
 * (QFIT_RELEASE_BIN when there is one: quantizing under ASan is slow). */
static void make_store(const char *dir)
{
    const char *bin = getenv("QFIT_RELEASE_BIN");
    if (!bin || access(bin, X_OK) != 0) bin = tu_qfit_bin();
    const char *f32 = tu_shared_path(F32_MODEL);
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && export QFIT_MODELS=\"$PWD/store\" B='%s' F='%s' && $B quantize \"$F\" q8.gguf Q8_0 && "
             "$B quantize \"$F\" q4.gguf Q4_K_M && $B import q8.gguf kjv-q8 && $B import q4.gguf kjv-q4 && "
             "cp \"$F\" broken.gguf && $B import broken.gguf kjv-broken && "
             "blob=$($B show kjv-broken --modelfile | sed -n 's/^FROM //p') && test \"$(stat -c %%h \"$blob\")\" = 1 && "
             "truncate -s 1000000 \"$blob\"",
             dir, bin, f32);
    int st;
    char *out = tu_run(cmd, &st);
    cr_assert_eq(st, 0, "making the store: %s", out);
    free(out);
}

static pid_t start_worker(const char *dir, const redis_srv *r, const char *name)
{
    char cmd[8192], log[4200];
    snprintf(cmd, sizeof cmd, "env QFIT_MODELS='%s/store' QFIT_NUM_PARALLEL=2 %s worker --redis %s --model kjv-q8 "
             "--model kjv-q4 --model kjv-broken --concurrency 2 --visibility 4 --max-attempts 3",
             dir, tu_qfit_bin(), r->url);
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    return spawn(cmd, log);
}

static int64_t finished(qfit_batch_client *cl, const char *id)
{
    char err[512];
    qfit_batch_status st;
    cr_assert_eq(qfit_batch_get_status(cl, id, &st, err, sizeof err), 0, "%s", err);
    return st.done + st.failed + st.cancelled;
}

static void wait_count(qfit_batch_client *cl, const char *id, int64_t n)
{
    for (int i = 0; i < WAIT_S * 20; i++) {
        if (finished(cl, id) >= n) return;
        sleep_ms(50);
    }
    cr_assert_fail("batch %s: fewer than %lld results after %d s", id, (long long)n, WAIT_S);
}

/* Jobs pending on the consumers of worker process pid (named host-PID-xxxx-tN). */
static long long pending_of(const redis_srv *r, pid_t pid)
{
    static const char *const streams[] = { "qfit:q:kjv-q8", "qfit:q:kjv-q4", "qfit:q:kjv-broken" };
    char tag[32];
    snprintf(tag, sizeof tag, "-%d-", (int)pid);
    redisContext *c = rconnect(r);
    long long n = 0;
    for (size_t s = 0; s < 3; s++) {
        redisReply *rep = redisCommand(c, "XPENDING %s workers", streams[s]);
        if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 4 && rep->element[3]->type == REDIS_REPLY_ARRAY)
            for (size_t k = 0; k < rep->element[3]->elements; k++) {
                const redisReply *cons = rep->element[3]->element[k];
                if (strstr(cons->element[0]->str, tag)) n += strtoll(cons->element[1]->str, NULL, 10);
            }
        if (rep) freeReplyObject(rep);
    }
    redisFree(c);
    return n;
}

#define E2E_JOBS 200
#define E2E_BROKEN_EVERY 40   /* jobs 7, 47, ...: the damaged model (made to fail) */

/* 2 workers x 2 models, 200 jobs; one worker killed with SIGKILL halfway, Redis
 * restarted (AOF) later: every job's result is present exactly once, in input
 * order; the dead-letter stream holds exactly the jobs of the damaged model. */
Test(batch, two_workers_sigkill_and_redis_restart, .fini = teardown, .timeout = 400)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/e2e", tu_tmpdir());
    mkdir(dir, 0755);
    make_store(dir);
    static const char *const urls[] = { "/api/generate", "/v1/completions", "/api/embed", "/v1/embeddings" };
    size_t cap = E2E_JOBS * 256, len = 0;
    char *text = malloc(cap);
    bool broken[E2E_JOBS];
    for (int i = 0; i < E2E_JOBS; i++) {
        broken[i] = i % E2E_BROKEN_EVERY == 7;
        const char *model = broken[i] ? "kjv-broken" : i % 2 ? "kjv-q4" : "kjv-q8";
        const char *u = urls[(i / 2) % 4];
        const char *params = !strcmp(u, "/api/generate") ? ",\"options\":{\"num_predict\":8}"
                             : !strcmp(u, "/v1/completions") ? ",\"max_tokens\":8" : "";
        const char *field = strstr(u, "embed") ? "input" : "prompt";
        len += (size_t)snprintf(text + len, cap - len, "{\"custom_id\":\"job-%03d\",\"method\":\"POST\",\"url\":\"%s\","
                                "\"body\":{\"model\":\"%s\",\"%s\":\"In the beginning %d\"%s}}\n",
                                i, u, model, field, i, params);
    }
    char *path = write_tmp("e2e.jsonl", text);
    free(text);
    redis_srv r = { 0 };
    redis_start(&r);
    char args[8192];
    snprintf(args, sizeof args, "batch submit '%s' --redis %s", path, r.url);
    int st;
    char *out = qfit_cmd(args, &st);
    cr_assert_eq(st, 0, "%s", out);
    char id[QFIT_BATCH_ID_LEN + 1];
    cr_assert_not_null(strstr(out, "batch_"), "%s", out);
    snprintf(id, sizeof id, "%s", strstr(out, "batch_"));
    free(out);
    char err[512];
    qfit_batch_client *cl = qfit_batch_connect(r.url, err, sizeof err);
    cr_assert_not_null(cl, "%s", err);
    qfit_batch_status bs;
    cr_assert_eq(qfit_batch_get_status(cl, id, &bs, err, sizeof err), 0, "'%s': %s", id, err);
    cr_assert_eq(bs.total, E2E_JOBS);

    pid_t a = start_worker(dir, &r, "worker-a");
    pid_t b = start_worker(dir, &r, "worker-b");
    wait_count(cl, id, E2E_JOBS / 2);
    /* killed while it holds a job: that job stays pending until another worker reclaims it */
    long long held = 0;
    for (int i = 0; i < 2000 && !held; i++) {
        held = pending_of(&r, a);
        if (!held) sleep_ms(1);
    }
    kill(a, SIGKILL);
    cr_log_info("worker a killed holding %lld job(s)", held);
    waitpid(a, NULL, 0);
    untrack(a);
    wait_count(cl, id, E2E_JOBS * 3 / 4);
    qfit_batch_close(cl);
    redis_stop(&r);   /* with AOF on: the queue, the pending entries and the results survive */
    redis_start(&r);
    cl = qfit_batch_connect(r.url, err, sizeof err);
    cr_assert_not_null(cl, "%s", err);
    wait_finished_s(cl, id, &bs, WAIT_S);
    cr_expect_str_eq(bs.status, "completed");
    int n_broken = 0;
    for (int i = 0; i < E2E_JOBS; i++) n_broken += broken[i];
    cr_expect_eq(bs.failed, n_broken);
    cr_expect_eq(bs.done, E2E_JOBS - n_broken);

    /* the worker left stops cleanly on SIGTERM (and, under ASan, without a leak) */
    kill(b, SIGTERM);
    int wst;
    cr_assert_eq(waitpid(b, &wst, 0), b);
    untrack(b);
    cr_expect(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "worker b: status %d (see %s/worker-b.log)", wst, dir);
    char logp[4400];
    size_t flen;
    snprintf(logp, sizeof logp, "%s/worker-b.log", dir);
    char *wlog = tu_read_file(logp, &flen);
    cr_assert_not_null(wlog);
    cr_expect(strstr(wlog, "reconnected to Redis"), "worker b never saw Redis restart:\n%s", wlog);
    cr_expect(!strstr(wlog, "AddressSanitizer") && !strstr(wlog, "runtime error"), "%s", wlog);
    free(wlog);

    char outp[4400];
    snprintf(outp, sizeof outp, "%s/out.jsonl", dir);
    snprintf(args, sizeof args, "batch results %s -o '%s' --redis %s", id, outp, r.url);
    out = qfit_cmd(args, &st);
    cr_assert_eq(st, 0, "%s", out);
    free(out);
    char *res = tu_read_file(outp, &flen);
    cr_assert_not_null(res);
    int n = 0;
    for (char *line = strtok(res, "\n"); line; line = strtok(NULL, "\n"), n++) {
        cr_assert_lt(n, E2E_JOBS, "more output lines than jobs");
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        cr_assert_not_null(j, "line %d: %s", n + 1, je.text);
        char cid[32];
        snprintf(cid, sizeof cid, "job-%03d", n);
        cr_expect_str_eq(json_string_value(json_object_get(j, "custom_id")), cid);
        json_t *resp = json_object_get(j, "response");
        if (broken[n]) {
            cr_expect(json_is_null(resp), "line %d", n + 1);
            cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "job_failed");
        } else {
            cr_expect_eq(json_integer_value(json_object_get(resp, "status_code")), 200, "line %d: %s", n + 1, line);
            cr_expect(json_is_null(json_object_get(j, "error")));
            json_t *body = json_object_get(resp, "body");
            const char *u = urls[(n / 2) % 4];
            bool ok = !strcmp(u, "/api/generate") ? json_is_string(json_object_get(body, "response"))
                      : !strcmp(u, "/v1/completions") ? json_is_array(json_object_get(body, "choices"))
                      : !strcmp(u, "/api/embed") ? json_is_array(json_object_get(body, "embeddings"))
                      : json_is_array(json_object_get(body, "data"));
            cr_expect(ok, "line %d: not a %s answer: %.300s", n + 1, u, line);
        }
        json_decref(j);
    }
    free(res);
    cr_expect_eq(n, E2E_JOBS);

    /* the dead-letter stream: exactly the damaged model's jobs, once each */
    redisContext *c = rconnect(&r);
    redisReply *dead = redisCommand(c, "XRANGE qfit:dead - +");
    cr_assert(dead && dead->type == REDIS_REPLY_ARRAY);
    int seen[E2E_JOBS] = { 0 };
    for (size_t i = 0; i < dead->elements; i++) {
        const redisReply *f = dead->element[i]->element[1];
        for (size_t k = 0; k + 1 < f->elements; k += 2)
            if (!strcmp(f->element[k]->str, "i")) {
                int ix = atoi(f->element[k + 1]->str);
                cr_assert(ix >= 0 && ix < E2E_JOBS);
                seen[ix]++;
            }
    }
    cr_expect_eq(dead->elements, (size_t)n_broken);
    for (int i = 0; i < E2E_JOBS; i++) cr_expect_eq(seen[i], broken[i] ? 1 : 0, "job %d: %d dead letters", i, seen[i]);
    freeReplyObject(dead);
    cr_expect_eq(redis_int(c, "XLEN qfit:q:kjv-q8") + redis_int(c, "XLEN qfit:q:kjv-q4") +
                 redis_int(c, "XLEN qfit:q:kjv-broken"), 0, "finished jobs must leave the streams");
    redisFree(c);
    qfit_batch_close(cl);
    redis_stop(&r);
}

/* ---------------------------------------------------------------- qfit_server_call */

static size_t curl_body(char *data, size_t size, size_t n, void *p)
{
    char **buf = p;
    size_t old = *buf ? strlen(*buf) : 0;
    char *nb = realloc(*buf, old + size * n + 1);
    cr_assert_not_null(nb);
    memcpy(nb + old, data, size * n);
    nb[old + size * n] = '\0';
    *buf = nb;
    return size * n;
}

/* The same request through HTTP (libcurl) */
static char *http_call(int port, const char *method, const char *path, const char *body, long *status)
{
    char url[512], *out = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    return out ? out : strdup("");
}

/* An in-process call answers byte for byte what a client gets over HTTP, through
 * the same routes (engine ones included), and collects a streamed answer whole. */
Test(batch, server_call_matches_http)
{
    char root[4200], err[1024];
    snprintf(root, sizeof root, "%s/call-store", tu_tmpdir());
    mkdir(root, 0755);
    qfit_store *store = qfit_store_open(root, err, sizeof err);
    cr_assert_not_null(store, "%s", err);
    qfit_import_opts o = { .link = true };
    bool linked;
    cr_assert_eq(qfit_store_import_gguf(store, tu_shared_path(F32_MODEL), "kjv", &o, &linked, err, sizeof err), 0,
                 "%s", err);
    qfit_sched_config sc;
    qfit_sched_config_init(&sc);
    sc.store = store;
    sc.num_parallel = 2;
    sc.ctx.n_ctx = 256;
    qfit_sched *sched = qfit_sched_new(&sc, err, sizeof err);
    cr_assert_not_null(sched, "%s", err);
    qfit_server_config cfg = { .store_root = root };
    qfit_server *srv = qfit_server_new(&cfg, err, sizeof err);
    cr_assert_not_null(srv, "%s", err);
    qfit_engine_routes *er = qfit_engine_routes_add(srv, sched, err, sizeof err);
    cr_assert_not_null(er, "%s", err);

    /* before the server is started: no socket needed */
    unsigned status;
    char *resp;
    size_t len;
    const char *gen = "{\"model\":\"kjv\",\"prompt\":\"In the beginning\",\"options\":{\"num_predict\":4}}";
    cr_assert_eq(qfit_server_call(srv, "POST", "/api/generate", gen, strlen(gen), NULL, &status, &resp, &len, err,
                                  sizeof err), 0, "%s", err);
    cr_expect_eq(status, 200, "%s", resp);
    int lines = 0;   /* streamed (the default): NDJSON lines, the last one done */
    for (const char *p = resp; (p = strchr(p, '\n')); p++) lines++;
    cr_expect_geq(lines, 2, "%s", resp);
    cr_expect(strstr(resp, "\"done\":true"), "%s", resp);
    cr_expect_eq(len, strlen(resp));
    free(resp);

    cr_assert_eq(qfit_server_start(srv, err, sizeof err), 0, "%s", err);
    static const struct { const char *method, *path, *body; } reqs[] = {
        { "POST", "/v1/embeddings", "{\"model\":\"kjv\",\"input\":[\"hello\",\"world\"]}" },   /* deterministic */
        { "POST", "/api/nope", "{}" },                                /* 404 */
        { "GET", "/api/generate", NULL },                             /* 405 */
        { "POST", "/v1/completions", "{\"model\":\"kjv\"" },          /* 400: bad JSON */
        { "POST", "/api/generate", "{\"model\":\"missing\",\"prompt\":\"x\"}" },   /* 404 model */
        { "GET", "/nowhere", NULL },                                  /* text/plain 404 */
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        long hstatus;
        char *want = http_call(qfit_server_port(srv), reqs[i].method, reqs[i].path, reqs[i].body, &hstatus);
        cr_assert_eq(qfit_server_call(srv, reqs[i].method, reqs[i].path, reqs[i].body,
                                      reqs[i].body ? strlen(reqs[i].body) : 0, NULL, &status, &resp, &len, err,
                                      sizeof err), 0, "%s", err);
        cr_expect_eq((long)status, hstatus, "%s %s", reqs[i].method, reqs[i].path);
        cr_expect_str_eq(resp, want, "%s %s", reqs[i].method, reqs[i].path);
        free(resp);
        free(want);
    }
    /* a raised cancel flag cuts a stream short as a disconnect would (the producer's
     * writes fail, the generation is cancelled, the call returns) */
    atomic_bool cancel = true;
    const char *long_gen = "{\"model\":\"kjv\",\"prompt\":\"x\",\"options\":{\"num_predict\":200}}";
    cr_assert_eq(qfit_server_call(srv, "POST", "/api/generate", long_gen, strlen(long_gen), &cancel, &status, &resp,
                                  &len, err, sizeof err), 0, "%s", err);
    cr_expect_eq(status, 200);
    cr_expect_null(strstr(resp, "\"done\":true"), "the stream was not cut: %s", resp);
    free(resp);
    qfit_server_free(srv);
    qfit_engine_routes_free(er);
    qfit_sched_free(sched);
    qfit_store_close(store);
}

/* ---------------------------------------------------------------- /api/batch */

/* The server's batch API does what `qfit batch` does: submit (a bad line refused with its
 * number, nothing queued), status, results refused while unfinished, cancel, results in
 * input order; an unknown id is 404, a malformed one 400. */
Test(batch, server_batch_api, .fini = teardown)
{
    redis_srv r = { 0 };
    redis_start(&r);
    char err[1024];
    qfit_server_config cfg = { 0 };
    qfit_server *srv = qfit_server_new(&cfg, err, sizeof err);
    cr_assert_not_null(srv, "%s", err);
    qfit_batch_routes *br = qfit_batch_routes_add(srv, r.url, err, sizeof err);
    cr_assert_not_null(br, "%s", err);
    cr_assert_eq(qfit_server_start(srv, err, sizeof err), 0, "%s", err);
    const int port = qfit_server_port(srv);
    long st;

    char *bad = http_call(port, "POST", "/api/batch?model=m1",
                          "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/api/generate\",\"body\":{\"prompt\":\"x\"}}\n"
                          "{\"custom_id\":\"b\",\"method\":\"POST\",\"url\":\"/api/pull\",\"body\":{\"prompt\":\"x\"}}\n", &st);
    cr_expect_eq(st, 400, "%s", bad);
    cr_expect(strstr(bad, "line 2"), "%s", bad);
    free(bad);
    redisContext *rc = rconnect(&r);
    cr_expect_eq(redis_int(rc, "EXISTS qfit:q:m1"), 0, "a refused file queues nothing");

    char *sub = http_call(port, "POST", "/api/batch?model=m1&ttl=1h",
                          "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/api/generate\",\"body\":{\"prompt\":\"x\"}}\n"
                          "{\"custom_id\":\"b\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"y\"}}\n"
                          "{\"custom_id\":\"c\",\"method\":\"POST\",\"url\":\"/api/embed\",\"body\":{\"input\":\"z\"}}\n", &st);
    cr_assert_eq(st, 200, "%s", sub);
    json_t *j = json_loads(sub, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "id"));
    cr_assert(id, "%s", sub);
    cr_expect_eq(json_integer_value(json_object_get(j, "total")), 3);
    char path[128], *out;
    snprintf(path, sizeof path, "/api/batch/%s", id);
    out = http_call(port, "GET", path, NULL, &st);
    cr_expect_eq(st, 200, "%s", out);
    cr_expect(strstr(out, "\"status\":\"queued\"") && strstr(out, "\"total\":3"), "%s", out);
    free(out);
    snprintf(path, sizeof path, "/api/batch/%s/results", id);
    out = http_call(port, "GET", path, NULL, &st);
    cr_expect_eq(st, 409, "results before the end: %s", out);
    free(out);
    snprintf(path, sizeof path, "/api/batch/%s", id);
    out = http_call(port, "DELETE", path, NULL, &st);
    cr_expect_eq(st, 200, "%s", out);
    cr_expect(strstr(out, "\"status\":\"cancelled\"") && strstr(out, "\"cancelled\":3"), "%s", out);
    free(out);
    snprintf(path, sizeof path, "/api/batch/%s/results", id);
    out = http_call(port, "GET", path, NULL, &st);
    cr_expect_eq(st, 200, "%s", out);
    const char *ids[] = { "\"custom_id\":\"a\"", "\"custom_id\":\"b\"", "\"custom_id\":\"c\"" };
    const char *p = out;
    for (int i = 0; i < 3; i++) {   /* one line each, in input order */
        const char *hit = strstr(p, ids[i]);
        cr_expect(hit, "line %d: %s", i + 1, out);
        if (!hit) break;
        p = hit;
    }
    free(out);
    out = http_call(port, "GET", "/api/batch/batch_0123456789abcdef", NULL, &st);
    cr_expect_eq(st, 404, "%s", out);
    free(out);
    out = http_call(port, "GET", "/api/batch/xyz", NULL, &st);
    cr_expect_eq(st, 400, "%s", out);
    free(out);
    json_decref(j);
    free(sub);
    redisFree(rc);
    qfit_server_free(srv);
    qfit_batch_routes_free(br);
}
