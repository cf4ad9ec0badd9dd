/* Suite `generate`: the generation loop (include/qfit/generate.h) on the shared
 * model and its real tokenizer: greedy output byte-identical to what `qfit run`
 * printed before the loop moved into the library (tests/data/generate), stop
 * strings split across tokens, UTF-8 never split, num_predict, cancellation
 * bounds, context overflow, logprobs, parameter errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/generate.h"
#include "util/testutil.h"

#define MAX_TOK 256

static const char *model_path(void) { return tu_shared_path("models/kjv-llama-7m-f32.gguf"); }

typedef struct {
    char text[16384];
    size_t len;
    int n_chunks;
    bool chunk_split_utf8;         /* a chunk ended inside a UTF-8 character */
    int32_t ids[MAX_TOK];
    char pieces[MAX_TOK][64];
    size_t emitted_at_token[MAX_TOK];   /* text length when token i was reported */
    int n_tok;
    qfit_gen_token tok_info[MAX_TOK];
    int abort_at_token;            /* set the abort flag when this many tokens were seen (0: never) */
    int cancel_text_at;            /* on_text returns nonzero at this chunk (0: never) */
    int abort_at_prefill;          /* set the flag when on_prefill reports this many done (-1: never) */
    bool abort;
    int prefill_calls_after_abort;
    int tokens_after_abort;
} capture;

/* true when s[0..n) ends inside a multi-byte UTF-8 character */
static bool ends_mid_char(const char *s, size_t n)
{
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        unsigned char b = (unsigned char)s[n - back];
        if ((b & 0xC0) == 0x80) continue;
        size_t need = (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 1;
        return need > back;
    }
    return false;
}

static int cap_text(void *u, const char *t, size_t n)
{
    capture *c = u;
    cr_assert_lt(c->len + n, sizeof c->text);
    memcpy(c->text + c->len, t, n);
    c->len += n;
    c->text[c->len] = 0;
    c->n_chunks++;
    if (ends_mid_char(t, n)) c->chunk_split_utf8 = true;
    return c->cancel_text_at && c->n_chunks == c->cancel_text_at;
}

static int cap_token(void *u, const qfit_gen_token *t)
{
    capture *c = u;
    if (c->abort) c->tokens_after_abort++;
    if (c->n_tok < MAX_TOK) {
        c->ids[c->n_tok] = t->id;
        size_t n = t->piece_len < 63 ? t->piece_len : 63;
        memcpy(c->pieces[c->n_tok], t->piece, n);
        c->pieces[c->n_tok][n] = 0;
        c->emitted_at_token[c->n_tok] = c->len;
        c->tok_info[c->n_tok] = *t;
        c->n_tok++;
    }
    if (c->abort_at_token && c->n_tok == c->abort_at_token) c->abort = true;
    return 0;
}

static void cap_prefill(void *u, int done, int total)
{
    capture *c = u;
    if (c->abort) c->prefill_calls_after_abort++;
    if (done == c->abort_at_prefill) c->abort = true;
}

static bool cap_abort(void *u) { return ((capture *)u)->abort; }

static qfit_gen_callbacks callbacks(capture *c)
{
    c->abort_at_prefill = c->abort_at_prefill ? c->abort_at_prefill : -1;
    return (qfit_gen_callbacks){ .on_text = cap_text, .on_token = cap_token, .on_prefill = cap_prefill,
                                 .should_abort = cap_abort, .user = c };
}

typedef struct {
    qfit_model *m;
    qfit_tokenizer *tok;
    qfit_context *c;
} rig;

static rig rig_new(int n_ctx, int n_batch)
{
    rig r;
    char err[512];
    r.m = qfit_model_load(model_path(), err, sizeof err);
    cr_assert_not_null(r.m, "%s", err);
    r.tok = qfit_tokenizer_from_gguf(qfit_model_gguf(r.m), err, sizeof err);
    cr_assert_not_null(r.tok, "%s", err);
    qfit_context_params cp = qfit_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    cp.n_threads = 2;
    r.c = qfit_context_new(r.m, &cp, err, sizeof err);
    cr_assert_not_null(r.c, "%s", err);
    return r;
}

static void rig_free(rig *r)
{
    qfit_context_free(r->c);
    qfit_tokenizer_free(r->tok);
    qfit_model_free(r->m);
}

/* qfit run's defaults (src/cli/cmd_run.c) */
static qfit_gen_params run_params(void)
{
    qfit_gen_params p;
    qfit_gen_params_init(&p);
    p.num_predict = 128;
    p.overflow = QFIT_OVERFLOW_SHIFT;
    p.sampling.top_p = 0.95f;
    p.sampling.min_p = 0.05f;
    p.sampling.seed = 0x5EED;
    return p;
}

static void expect_recorded(const char *file, const char *prompt, int n_ctx, qfit_gen_params p, int want_shifts)
{
    char path[512];
    snprintf(path, sizeof path, "tests/data/generate/%s", file);
    size_t n = 0;
    char *want = tu_read_file(path, &n);
    cr_assert_not_null(want, "%s", path);
    rig r = rig_new(n_ctx, 0);
    capture *cap = calloc(1, sizeof *cap);
    qfit_gen_callbacks cb = callbacks(cap);
    qfit_gen_result res;
    cr_assert_eq(qfit_generate_text(r.c, r.tok, prompt, &p, &cb, &res), 0, "%s", res.error);
    char *got = malloc(strlen(prompt) + cap->len + 2);
    sprintf(got, "%s%s\n", prompt, cap->text);
    cr_expect_eq(strlen(got), n, "%s: %zu bytes vs %zu recorded", file, strlen(got), n);
    cr_expect(strlen(got) == n && memcmp(got, want, n) == 0, "%s differs:\n got: %s\nwant: %.*s", file, got, (int)n,
              want);
    cr_expect_eq(res.n_shifts, want_shifts, "%s: %d shifts", file, res.n_shifts);
    free(got);
    free(cap);
    free(want);
    rig_free(&r);
}

Test(generate, greedy_and_seeded_output_match_recorded_qfit_run, .timeout = 300)
{
    qfit_gen_params p = run_params();
    p.sampling.temperature = 0;
    p.num_predict = 60;
    p.ignore_eos = true;
    expect_recorded("greedy1.txt", "In the beginning God", 0, p, 0);
    p.ignore_eos = false;
    expect_recorded("greedy2.txt", "And the LORD said unto Moses", 0, p, 0);
    p.ignore_eos = true;
    p.sampling.repeat_penalty = 1.3f;
    expect_recorded("greedy_pen.txt", "In the beginning God", 0, p, 0);
    p.sampling.repeat_penalty = 1.0f;
    p.num_predict = 80;
    expect_recorded("greedy_shift.txt", "In the beginning God", 32, p, 4);
    p = run_params();
    p.num_predict = 60;
    p.ignore_eos = true;
    expect_recorded("seeded.txt", "In the beginning God", 0, p, 0);
}

Test(generate, qfit_run_output_unchanged, .timeout = 300)
{
    const struct { const char *file, *args; } cases[] = {
        { "greedy1.txt", "-p 'In the beginning God' -n 60 --temp 0 --ignore-eos" },
        { "greedy_shift.txt", "-p 'In the beginning God' -n 80 --temp 0 --ignore-eos --ctx 32" },
        { "seeded.txt", "-p 'In the beginning God' -n 60 --ignore-eos" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char cmd[2048], path[512];
        snprintf(cmd, sizeof cmd, "{ %s run %s %s --threads 2 2>/dev/null; }", tu_qfit_bin(), model_path(), cases[i].args);
        int st;
        char *out = tu_run(cmd, &st);
        snprintf(path, sizeof path, "tests/data/generate/%s", cases[i].file);
        size_t n;
        char *want = tu_read_file(path, &n);
        cr_assert_not_null(want);
        cr_expect_eq(st, 0);
        cr_expect_str_eq(out, want, "%s", cases[i].file);
        free(out);
        free(want);
    }
}

/* qfit run --stop: stops before the stop string; invalid sampling values are refused by name */
Test(generate, qfit_run_stop_and_invalid_values, .timeout = 300)
{
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "{ %s run %s -p 'In the beginning God' -n 60 --temp 0 --threads 2 --stop ' of the' "
             "--stop 'nothing like this' 2>/dev/null; }", tu_qfit_bin(), model_path());
    char *out = tu_run(cmd, &st);
    cr_expect_eq(st, 0);
    cr_expect_str_eq(out, "In the beginning God, and the glory\n");
    free(out);
    snprintf(cmd, sizeof cmd, "%s run %s -p 'In the beginning God' --typical-p 1.5", tu_qfit_bin(), model_path());
    out = tu_run(cmd, &st);
    cr_expect_neq(st, 0);
    cr_expect_not_null(strstr(out, "invalid value '1.5' for --typical-p"), "%s", out);
    free(out);
}

/* The reference: greedy text of 40 tokens, with each token's piece. */
static capture *reference_run(rig *r, int num_predict)
{
    qfit_gen_params p = run_params();
    p.sampling.temperature = 0;
    p.num_predict = num_predict;
    p.ignore_eos = true;
    capture *cap = calloc(1, sizeof *cap);
    qfit_gen_callbacks cb = callbacks(cap);
    qfit_gen_result res;
    qfit_context_reset(r->c);
    cr_assert_eq(qfit_generate_text(r->c, r->tok, "In the beginning God", &p, &cb, &res), 0, "%s", res.error);
    cr_assert_eq(cap->n_tok, num_predict);
    return cap;
}

static capture *run_with_stops(rig *r, const char *const *stops, int n_stop, int num_predict, qfit_gen_result *res)
{
    qfit_gen_params p = run_params();
    p.sampling.temperature = 0;
    p.num_predict = num_predict;
    p.ignore_eos = true;
    p.stop = stops;
    p.n_stop = n_stop;
    capture *cap = calloc(1, sizeof *cap);
    qfit_gen_callbacks cb = callbacks(cap);
    qfit_context_reset(r->c);
    cr_assert_eq(qfit_generate_text(r->c, r->tok, "In the beginning God", &p, &cb, res), 0, "%s", res->error);
    return cap;
}

Test(generate, stop_strings_split_across_tokens, .timeout = 300)
{
    rig r = rig_new(0, 0);
    const int N = 40;
    capture *ref = reference_run(&r, N);
    /* token offsets in the reference text */
    size_t off[MAX_TOK + 1] = { 0 };
    for (int i = 0; i < N; i++) off[i + 1] = off[i] + strlen(ref->pieces[i]);
    cr_assert_eq(off[N], ref->len);
    /* a stop string spanning three tokens: the end of piece k, piece k+1, the start of piece k+2 */
    int k = 3;
    while (k + 2 < N && (strlen(ref->pieces[k]) < 2 || strlen(ref->pieces[k + 2]) < 2)) k++;
    cr_assert_lt(k + 2, N);
    char stop3[160];
    snprintf(stop3, sizeof stop3, "%s%s%c", ref->pieces[k] + strlen(ref->pieces[k]) - 2, ref->pieces[k + 1],
             ref->pieces[k + 2][0]);
    const char *first = strstr(ref->text, stop3);
    cr_assert_not_null(first);
    const size_t at = (size_t)(first - ref->text);
    int completes = 0;   /* the token whose text completes the first occurrence */
    while (off[completes + 1] < at + strlen(stop3)) completes++;
    cr_log_info("stop '%s' at byte %zu, completed by token %d", stop3, at, completes);
    qfit_gen_result res;
    const char *s1[] = { stop3 };
    capture *cap = run_with_stops(&r, s1, 1, N, &res);
    cr_expect_eq(res.reason, QFIT_GEN_STOP);
    cr_expect_eq(cap->len, at, "emitted %zu bytes, the stop string starts at %zu", cap->len, at);
    cr_expect_eq(memcmp(cap->text, ref->text, at), 0);
    cr_expect_eq(res.eval_count, completes + 1);
    /* nothing that could still become the stop string was shown early: when each
     * token was reported, the text shown so far never reached into the stop string */
    for (int i = 0; i < cap->n_tok; i++)
        cr_expect_leq(cap->emitted_at_token[i], at, "token %d: %zu bytes shown", i, cap->emitted_at_token[i]);
    free(cap);

    /* a partial match that never completes: everything comes out, reason length */
    char partial[200];
    snprintf(partial, sizeof partial, "%s%s\x01zz", ref->pieces[k], ref->pieces[k + 1]);
    const char *s2[] = { partial };
    cap = run_with_stops(&r, s2, 1, N, &res);
    cr_expect_eq(res.reason, QFIT_GEN_LENGTH);
    cr_expect_str_eq(cap->text, ref->text);
    free(cap);

    /* held back at the very end (the last piece starts a stop string): flushed */
    char tail[200];
    snprintf(tail, sizeof tail, "%s#", ref->pieces[N - 1]);
    const char *s3[] = { tail };
    cap = run_with_stops(&r, s3, 1, N, &res);
    cr_expect_eq(res.reason, QFIT_GEN_LENGTH);
    cr_expect_str_eq(cap->text, ref->text);
    cr_expect_leq(cap->emitted_at_token[N - 1], off[N - 1]);
    free(cap);

    /* a stop at the very first token */
    const char *s4[] = { ref->pieces[0] };
    cap = run_with_stops(&r, s4, 1, N, &res);
    cr_expect_eq(res.reason, QFIT_GEN_STOP);
    cr_expect_eq(cap->len, 0, "'%s' shown", cap->text);
    cr_expect_eq(res.eval_count, 1);
    free(cap);

    /* several stop strings: the earliest in the text wins, whatever the list order */
    char late[200];
    snprintf(late, sizeof late, "%s%s", ref->pieces[N - 3], ref->pieces[N - 2]);
    const char *s5[] = { late, stop3 };
    cap = run_with_stops(&r, s5, 2, N, &res);
    const char *late_at = strstr(ref->text, late);
    cr_expect_eq(cap->len, (size_t)(late_at - ref->text) < at ? (size_t)(late_at - ref->text) : at);
    cr_expect_eq(res.reason, QFIT_GEN_STOP);
    free(cap);
    free(ref);
    rig_free(&r);
}

/* qfit_gen driven with forced tokens (one-hot logits), no model: byte tokens that
 * build UTF-8 characters (the SPM vocabulary's <0xE2> ... tokens) */
static int32_t byte_token(const qfit_tokenizer *tok, unsigned char b)
{
    char name[8];
    snprintf(name, sizeof name, "<0x%02X>", b);
    int32_t id = qfit_tokenizer_find(tok, name, strlen(name));
    cr_assert_neq(id, QFIT_TOKEN_NONE, "%s", name);
    return id;
}

static capture *force(const qfit_tokenizer *tok, const int32_t *ids, int n, const char *const *stops, int n_stop,
                      qfit_gen_reason *reason)
{
    const int nv = qfit_tokenizer_n_vocab(tok);
    qfit_gen_params p;
    qfit_gen_params_init(&p);
    p.sampling.temperature = 0;
    p.stop = stops;
    p.n_stop = n_stop;
    capture *cap = calloc(1, sizeof *cap);
    qfit_gen_callbacks cb = callbacks(cap);
    char err[256];
    qfit_gen *g = qfit_gen_new(tok, nv, 512, &p, &cb, err, sizeof err);
    cr_assert_not_null(g, "%s", err);
    float *row = malloc(sizeof(float) * (size_t)nv);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < nv; j++) row[j] = 0;
        row[ids[i]] = 10;
        int32_t t = qfit_gen_step(g, row);
        if (t < 0) break;
        cr_assert_eq(t, ids[i]);
    }
    qfit_gen_finish(g, QFIT_GEN_LENGTH);
    *reason = qfit_gen_reason_of(g);
    free(row);
    qfit_gen_free(g);
    return cap;
}

Test(generate, utf8_never_split_and_stops_inside_characters)
{
    char err[512];
    qfit_model *m = qfit_model_load(model_path(), err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    qfit_tokenizer *tok = qfit_tokenizer_from_gguf(qfit_model_gguf(m), err, sizeof err);
    cr_assert_not_null(tok);
    const int32_t in = qfit_tokenizer_find(tok, "\xe2\x96\x81In", 5);   /* "▁In" */
    cr_assert_neq(in, QFIT_TOKEN_NONE);
    /* " In€é€" as byte tokens */
    const int32_t ids[] = { in, byte_token(tok, 0xE2), byte_token(tok, 0x82), byte_token(tok, 0xAC),
                            byte_token(tok, 0xC3), byte_token(tok, 0xA9), byte_token(tok, 0xE2),
                            byte_token(tok, 0x82), byte_token(tok, 0xAC) };
    const int n = (int)(sizeof ids / sizeof *ids);
    qfit_gen_reason why;
    capture *cap = force(tok, ids, n, NULL, 0, &why);
    cr_expect_str_eq(cap->text, " In\xe2\x82\xac\xc3\xa9\xe2\x82\xac");
    cr_expect(!cap->chunk_split_utf8, "a chunk ended inside a character");
    cr_expect_eq(cap->n_chunks, 4, "%d chunks", cap->n_chunks);   /* " In", "€", "é", "€" */
    cr_expect_eq(why, QFIT_GEN_LENGTH);
    free(cap);
    /* a stop string that starts like "€" and then differs: "€" is held, then released */
    const char *st1[] = { "\xe2\x82\xac!" };
    cap = force(tok, ids, n, st1, 1, &why);
    cr_expect_str_eq(cap->text, " In\xe2\x82\xac\xc3\xa9\xe2\x82\xac");
    cr_expect(!cap->chunk_split_utf8);
    free(cap);
    /* a stop string ending in the middle of the multi-byte tokens: "é€" */
    const char *st2[] = { "\xc3\xa9\xe2\x82\xac" };
    cap = force(tok, ids, n, st2, 1, &why);
    cr_expect_str_eq(cap->text, " In\xe2\x82\xac");
    cr_expect_eq(why, QFIT_GEN_STOP);
    cr_expect_eq(cap->n_tok, n);
    free(cap);
    /* a character cut off by the end is flushed as it is (documented) */
    cap = force(tok, ids, 3, NULL, 0, &why);
    cr_expect_str_eq(cap->text, " In\xe2\x82");
    free(cap);
    qfit_tokenizer_free(tok);
    qfit_model_free(m);
}

Test(generate, num_predict_gives_reason_length, .timeout = 300)
{
    rig r = rig_new(0, 0);
    capture *ref = reference_run(&r, 12);
    for (int np = 0; np <= 5; np += 5) {
        qfit_gen_params p = run_params();
        p.sampling.temperature = 0;
        p.num_predict = np;
        capture *cap = calloc(1, sizeof *cap);
        qfit_gen_callbacks cb = callbacks(cap);
        qfit_gen_result res;
        qfit_context_reset(r.c);
        cr_assert_eq(qfit_generate_text(r.c, r.tok, "In the beginning God", &p, &cb, &res), 0, "%s", res.error);
        cr_expect_eq(res.reason, QFIT_GEN_LENGTH);
        cr_expect_str_eq(qfit_gen_reason_name(res.reason), "length");
        cr_expect_eq(res.eval_count, np);
        size_t want = 0;
        for (int i = 0; i < np; i++) want += strlen(ref->pieces[i]);
        cr_expect_eq(cap->len, want);
        cr_expect_eq(strncmp(cap->text, ref->text, want), 0);
        /* timings: nanoseconds, consistent */
        cr_expect_gt(res.prompt_eval_ns, 0);
        cr_expect_eq(res.prompt_eval_count, 6);
        cr_expect_geq(res.total_ns, res.prompt_eval_ns + res.eval_ns);
        cr_expect_eq(res.seed, 0x5EED);
        free(cap);
    }
    /* load_ns passes through into the total */
    qfit_gen_params p = run_params();
    p.num_predict = 1;
    p.load_ns = 5000000000ull;
    qfit_gen_result res;
    qfit_context_reset(r.c);
    cr_assert_eq(qfit_generate_text(r.c, r.tok, "In the beginning God", &p, NULL, &res), 0, "%s", res.error);
    cr_expect_eq(res.load_ns, 5000000000ull);
    cr_expect_gt(res.total_ns, 5000000000ull);
    free(ref);
    rig_free(&r);
}

static int32_t *long_prompt(const qfit_tokenizer *tok, size_t want)
{
    size_t n = 0;
    char *text = tu_read_file(tu_shared_path("models/kjv-llama-7m-val.txt"), &n);
    cr_assert_not_null(text);
    if (n > 20000) n = 20000;
    int32_t *ids;
    size_t n_ids;
    cr_assert_eq(qfit_tokenize_alloc(tok, text, n, true, false, &ids, &n_ids), 0);
    cr_assert_geq(n_ids, want);
    free(text);
    return ids;
}

Test(generate, cancelled_prefill_stops_within_one_micro_batch, .timeout = 300)
{
    rig r = rig_new(64, 4);
    int32_t *ids = long_prompt(r.tok, 32);   /* 8 micro-batches of 4 */
    capture *cap = calloc(1, sizeof *cap);
    cap->abort_at_prefill = 8;   /* the flag arrives after the 2nd micro-batch */
    qfit_gen_callbacks cb = callbacks(cap);
    qfit_gen_params p = run_params();
    qfit_gen_result res;
    cr_assert_eq(qfit_generate(r.c, r.tok, ids, 32, &p, &cb, &res), 0, "%s", res.error);
    cr_expect_eq(res.reason, QFIT_GEN_CANCELLED);
    const int decoded_after = (qfit_context_n_past(r.c) - 8 + 3) / 4;   /* micro-batches after the abort */
    cr_expect_leq(decoded_after, 1, "%d micro-batches decoded after the abort (n_past %d)", decoded_after,
                  qfit_context_n_past(r.c));
    cr_expect_eq(res.prompt_eval_count, qfit_context_n_past(r.c));
    cr_expect_eq(res.eval_count, 0);
    cr_expect_eq(cap->len, 0);
    free(cap);
    /* uncancelled: all 8 micro-batches */
    qfit_context_reset(r.c);
    cap = calloc(1, sizeof *cap);
    cb = callbacks(cap);
    p.num_predict = 2;
    cr_assert_eq(qfit_generate(r.c, r.tok, ids, 32, &p, &cb, &res), 0, "%s", res.error);
    cr_expect_eq(res.prompt_eval_count, 32);
    cr_expect_eq(res.reason, QFIT_GEN_LENGTH);
    free(cap);
    free(ids);
    rig_free(&r);
}

Test(generate, cancelled_generation_makes_at_most_one_more_token, .timeout = 300)
{
    rig r = rig_new(0, 0);
    capture *cap = calloc(1, sizeof *cap);
    cap->abort_at_token = 5;
    qfit_gen_callbacks cb = callbacks(cap);
    qfit_gen_params p = run_params();
    p.ignore_eos = true;
    qfit_gen_result res;
    cr_assert_eq(qfit_generate_text(r.c, r.tok, "In the beginning God", &p, &cb, &res), 0, "%s", res.error);
    cr_expect_eq(res.reason, QFIT_GEN_CANCELLED);
    cr_expect_str_eq(qfit_gen_reason_name(res.reason), "cancelled");
    cr_expect_leq(cap->tokens_after_abort, 1, "%d tokens after the abort", cap->tokens_after_abort);
    cr_expect_leq(res.eval_count, 6);
    free(cap);
    /* a streaming callback that refuses more text cancels too */
    cap = calloc(1, sizeof *cap);
    cap->cancel_text_at = 3;
    cb = callbacks(cap);
    qfit_context_reset(r.c);
    cr_assert_eq(qfit_generate_text(r.c, r.tok, "In the beginning God", &p, &cb, &res), 0, "%s", res.error);
    cr_expect_eq(res.reason, QFIT_GEN_CANCELLED);
    cr_expect_eq(cap->n_chunks, 3);
    cr_expect_eq(res.eval_count, cap->n_tok);
    cr_expect_leq(cap->n_tok, 4);
    free(cap);
    rig_free(&r);
}

Test(generate, prompt_longer_than_the_context_names_both_numbers, .timeout = 300)
{
    rig r = rig_new(32, 0);
    int32_t *ids = long_prompt(r.tok, 40);
    qfit_gen_params p = run_params();
    qfit_gen_result res;
    for (int pol = 0; pol < 2; pol++) {
        p.overflow = pol ? QFIT_OVERFLOW_SHIFT : QFIT_OVERFLOW_ERROR;
        cr_expect_eq(qfit_generate(r.c, r.tok, ids, 40, &p, NULL, &res), -1);
        cr_expect_eq(res.reason, QFIT_GEN_ERROR);
        cr_expect_not_null(strstr(res.error, "40 tokens"), "%s", res.error);
        cr_expect_not_null(strstr(res.error, "32"), "%s", res.error);
        cr_expect_eq(res.status, QFIT_E_CONTEXT_FULL);
        cr_expect_eq(qfit_context_n_past(r.c), 0);
    }
    cr_expect_eq(qfit_generate(r.c, r.tok, ids, 0, &p, NULL, &res), -1);
    cr_expect_not_null(strstr(res.error, "empty"), "%s", res.error);
    cr_expect_eq(res.status, QFIT_E_INVALID);
    /* ERROR policy: generation that fills the context ends with reason length */
    p.overflow = QFIT_OVERFLOW_ERROR;
    p.num_predict = 100;
    p.ignore_eos = true;
    cr_assert_eq(qfit_generate(r.c, r.tok, ids, 10, &p, NULL, &res), 0, "%s", res.error);
    cr_expect_eq(res.reason, QFIT_GEN_LENGTH);
    cr_expect(res.context_full);
    cr_expect_eq(res.eval_count, 32 - 10 + 1);
    free(ids);
    rig_free(&r);
}

Test(generate, logprobs_of_the_chosen_token, .timeout = 300)
{
    rig r = rig_new(0, 0);
    /* the first token's logits, computed independently */
    int32_t *ids;
    size_t n;
    cr_assert_eq(qfit_tokenize_alloc(r.tok, "In the beginning God", 20, true, false, &ids, &n), 0);
    cr_assert_eq(qfit_decode(r.c, ids, (int)n, (int)n - 1), 0);
    const int nv = qfit_model_hparams(r.m)->n_vocab;
    double *lsm = malloc(sizeof(double) * (size_t)nv);
    const float *l = qfit_get_logits(r.c, 0);
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < nv; i++) if (l[i] > mx) mx = l[i];
    for (int i = 0; i < nv; i++) sum += exp(l[i] - mx);
    for (int i = 0; i < nv; i++) lsm[i] = l[i] - mx - log(sum);
    qfit_context_reset(r.c);
    for (int temp = 0; temp < 2; temp++) {
        qfit_gen_params p = run_params();
        p.sampling.temperature = temp ? 1.0f : 0.0f;
        p.num_predict = 8;
        p.logprobs = true;
        p.top_logprobs = 5;
        capture *cap = calloc(1, sizeof *cap);
        qfit_gen_callbacks cb = callbacks(cap);
        qfit_gen_result res;
        qfit_context_reset(r.c);
        cr_assert_eq(qfit_generate(r.c, r.tok, ids, n, &p, &cb, &res), 0, "%s", res.error);
        const qfit_gen_token *t0 = &cap->tok_info[0];
        cr_expect_leq(fabs(t0->logprob - lsm[t0->id]), 1e-4, "first token %d: %g vs %g", t0->id, t0->logprob,
                      lsm[t0->id]);
        for (int k = 0; k < cap->n_tok; k++) {
            const qfit_gen_token *t = &cap->tok_info[k];
            cr_assert_eq(t->n_top, 5);
            double mass = 0;
            bool chosen_in_top = false;
            for (int i = 0; i < 5; i++) {
                mass += exp(t->top[i].logprob);
                if (i) cr_expect_geq(t->top[i - 1].logprob, t->top[i].logprob);
                if (t->top[i].id == t->id) {
                    chosen_in_top = true;
                    cr_expect_eq(t->top[i].logprob, t->logprob);
                }
                cr_expect_leq(t->top[i].logprob, 0.0f);
            }
            cr_expect_leq(mass, 1.0 + 1e-5);
            cr_expect_leq(t->logprob, t->top[0].logprob);
            if (!temp) cr_expect(chosen_in_top && t->top[0].id == t->id, "greedy token %d is not the top one", k);
            if (!chosen_in_top) cr_expect_leq(t->logprob, t->top[4].logprob);
        }
        if (!temp) {   /* the first alternatives are the largest of the independent log-softmax */
            for (int i = 0; i < 5; i++)
                cr_expect_leq(fabs(cap->tok_info[0].top[i].logprob - lsm[cap->tok_info[0].top[i].id]), 1e-4);
        }
        free(cap);
    }
    free(lsm);
    free(ids);
    rig_free(&r);
}

Test(generate, invalid_parameters_name_the_field)
{
    char err[512];
    qfit_model *m = qfit_model_load(model_path(), err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    qfit_tokenizer *tok = qfit_tokenizer_from_gguf(qfit_model_gguf(m), err, sizeof err);
    const int nv = qfit_tokenizer_n_vocab(tok);
    const char *empty[] = { "" };
    for (int c = 0; c < 6; c++) {
        qfit_gen_params p;
        qfit_gen_params_init(&p);
        const char *want;
        switch (c) {
        case 0: p.top_logprobs = 21; p.logprobs = true; want = "top_logprobs 21 must be between 0 and 20"; break;
        case 1: p.top_logprobs = 3; want = "top_logprobs 3 needs logprobs"; break;
        case 2: p.num_predict = -2; want = "num_predict -2"; break;
        case 3: p.stop = empty; p.n_stop = 1; want = "stop[0] is empty"; break;
        case 4: p.sampling.top_p = 1.5f; want = "top_p 1.5 is outside [0, 1]"; break;
        default: p.n_keep = -1; want = "n_keep -1"; break;
        }
        err[0] = 0;
        qfit_gen *g = qfit_gen_new(tok, nv, 512, &p, NULL, err, sizeof err);
        cr_expect_null(g, "case %d accepted", c);
        qfit_gen_free(g);
        cr_expect_not_null(strstr(err, want), "case %d: '%s' (want '%s')", c, err, want);
    }
    qfit_tokenizer_free(tok);
    qfit_model_free(m);
}

/* A prompt whose start is already in the context (a reused prefix, as a chat's next
 * turn): with params.history holding that prefix, the penalties see the whole prompt and
 * the output equals a fresh run on the whole prompt; without it they do not (the case
 * is chosen so that the difference shows: a repetitive prompt, repeat_penalty 1.8 over the
 * whole context), so the test would catch a history that is ignored. */
Test(generate, reused_prefix_counts_in_the_penalty_window, .timeout = 300)
{
    rig r = rig_new(256, 64);
    static const char TEXT[] = "and the children of Israel, and the children of Israel, and the children of "
                               "Israel, and the children of Israel, and the children of";
    int32_t *ids;
    size_t n;
    cr_assert_eq(qfit_tokenize_alloc(r.tok, TEXT, strlen(TEXT), true, false, &ids, &n), 0);
    qfit_gen_params p;
    qfit_gen_params_init(&p);
    p.sampling.temperature = 0.0f;
    p.sampling.repeat_penalty = 1.8f;
    p.sampling.repeat_last_n = -1;
    p.num_predict = 16;
    qfit_gen_result res;
    capture fresh = { 0 }, with = { 0 }, without = { 0 };
    qfit_gen_callbacks cb = callbacks(&fresh);
    cr_assert_eq(qfit_generate(r.c, r.tok, ids, n, &p, &cb, &res), 0, "%s", res.error);
    const size_t k = n - 3;   /* the prefix already cached */
    for (int pass = 0; pass < 2; pass++) {
        capture *cap = pass == 0 ? &with : &without;
        qfit_context_reset(r.c);
        cr_assert_eq(qfit_decode(r.c, ids, (int)k, (int)k), 0);
        qfit_gen_params q = p;
        q.history = pass == 0 ? ids : NULL;
        q.n_history = pass == 0 ? k : 0;
        cb = callbacks(cap);
        cr_assert_eq(qfit_generate(r.c, r.tok, ids + k, n - k, &q, &cb, &res), 0, "%s", res.error);
    }
    cr_assert_eq(with.n_tok, fresh.n_tok);
    cr_expect_arr_eq(with.ids, fresh.ids, (size_t)fresh.n_tok * sizeof(int32_t),
                     "with the history: \"%s\" vs fresh \"%s\"", with.text, fresh.text);
    cr_expect(without.n_tok != fresh.n_tok || memcmp(without.ids, fresh.ids, (size_t)fresh.n_tok * sizeof(int32_t)),
              "the case shows no difference without the history: it would not catch one ignored");
    free(ids);
    rig_free(&r);
}
