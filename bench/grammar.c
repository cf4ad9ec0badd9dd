/* Grammar mask cost per generated token at a large vocabulary.
 *   bench/grammar [-n N_VOCAB] [-r ROUNDS]
 * A synthetic vocabulary of n_vocab (default 152064, Qwen2.5's size) byte
 * strings shaped like a BPE vocabulary: words with and without a leading space,
 * capitalised, digit runs, punctuation and JSON pieces ({" ": ", etc.),
 * whitespace runs, accented and CJK characters, emoji, and tokens that split a
 * UTF-8 character. Each path drives a matcher through a target document: at
 * every step qfit_grammar_matcher_mask() is timed, then the longest allowed
 * token that continues the document is accepted (a stand-in for sampling).
 * Reports the mean, median, 90th percentile and maximum mask time per token
 * (us), the number of masks over 1 ms, and the first mask (cold caches) apart.
 * Times are the thread's CPU time (CLOCK_THREAD_CPUTIME_ID). Single thread.
 * Build: make release && cc -O2 -Iinclude bench/grammar.c build/release/libqfit.a -ljansson -lm -o build/bench/grammar */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qfit/grammar.h"
#include "qfit/schema.h"

/* thread CPU time: a mask is short enough that wall-clock time on a shared
 * machine mostly measures preemption */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint32_t rng = 2463534242u;
static uint32_t xr(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static const char *const syll[] = { "a", "e", "i", "o", "u", "th", "an", "er", "in", "on", "re", "st", "en", "at", "nd",
                                    "ing", "ion", "ed", "es", "or", "ar", "al", "ic", "ly", "ment", "tion", "pre", "con",
                                    "qu", "x", "z", "k", "b", "d", "g", "m", "p", "s", "t", "w", "y", "l", "n", "r" };
static const char *const punct[] = { "{", "}", "[", "]", "\"", ":", ",", ".", "{\"", "\":", "\",", "\":\"", "\"}", "\"]",
                                     "},", "],", "(", ")", ";", "!", "?", "'", "-", "_", "/", "\\", "\\n", "\\\"", "=",
                                     "==", "->", "::", "#", "*", "**", "+", "<", ">", "&", "|", "%", "$", "@", "`", "~" };
static const char *const utf8[] = { "é", "è", "ü", "ñ", "ç", "ö", "中", "文", "的", "是", "日本", "語", "한", "국", "😀", "🙂",
                                    "—", "“", "”", "…", "€", "→", "α", "β", "π", "Ж", "д" };

/* one synthetic token into buf, its length */
static size_t make_token(char *buf, size_t cap, int i)
{
    size_t n = 0;
    const uint32_t kind = xr() % 100;
    if (i < 256) { buf[0] = (char)i; return 1; }   /* byte tokens */
    if (kind < 60) {   /* words */
        if (xr() % 2) buf[n++] = ' ';
        const int parts = 1 + (int)(xr() % 4);
        for (int k = 0; k < parts; k++) {
            const char *s = syll[xr() % (sizeof syll / sizeof *syll)];
            const size_t l = strlen(s);
            if (n + l >= cap) break;
            memcpy(buf + n, s, l);
            n += l;
        }
        if (xr() % 5 == 0 && buf[n > 1 ? (buf[0] == ' ') : 0] >= 'a') buf[buf[0] == ' '] = (char)(buf[buf[0] == ' '] - 32);
    } else if (kind < 70) {   /* digits */
        const int d = 1 + (int)(xr() % 3);
        if (xr() % 3 == 0) buf[n++] = ' ';
        for (int k = 0; k < d; k++) buf[n++] = (char)('0' + xr() % 10);
    } else if (kind < 82) {   /* punctuation, JSON pieces */
        const int parts = 1 + (int)(xr() % 2);
        if (xr() % 3 == 0) buf[n++] = ' ';
        for (int k = 0; k < parts; k++) {
            const char *s = punct[xr() % (sizeof punct / sizeof *punct)];
            memcpy(buf + n, s, strlen(s));
            n += strlen(s);
        }
    } else if (kind < 88) {   /* whitespace runs */
        const int w = 1 + (int)(xr() % 8);
        for (int k = 0; k < w; k++) buf[n++] = xr() % 4 ? ' ' : '\n';
    } else if (kind < 97) {   /* non-ASCII */
        if (xr() % 2) buf[n++] = ' ';
        const int parts = 1 + (int)(xr() % 2);
        for (int k = 0; k < parts; k++) {
            const char *s = utf8[xr() % (sizeof utf8 / sizeof *utf8)];
            memcpy(buf + n, s, strlen(s));
            n += strlen(s);
        }
    } else {   /* a UTF-8 character cut in two */
        const char *s = utf8[xr() % (sizeof utf8 / sizeof *utf8)];
        const size_t l = strlen(s), cut = 1 + xr() % (l - 1 ? l - 1 : 1);
        if (xr() % 2) { memcpy(buf, s, cut); n = cut; }
        else { memcpy(buf, s + cut, l - cut); n = l - cut; }
    }
    return n;
}

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void run(const char *name, const char *gbnf, const char *doc, const qfit_grammar_vocab *v, char **toks,
                size_t *lens, int n_vocab, int rounds)
{
    char err[512];
    qfit_grammar *g = qfit_grammar_parse(gbnf, strlen(gbnf), err, sizeof err);
    if (!g) { fprintf(stderr, "%s: %s\n", name, err); exit(1); }
    qfit_grammar_matcher *m = qfit_grammar_matcher_new(g, err, sizeof err);
    uint8_t *allowed = malloc((size_t)n_vocab);
    enum { MAX_STEPS = 100000 };
    static double t[MAX_STEPS];
    int n = 0;
    double first = 0, allowed_sum = 0;
    for (int r = 0; r < rounds; r++) {
        qfit_grammar_matcher_reset(m);
        size_t at = 0;
        const size_t len = strlen(doc);
        while (at < len && n < MAX_STEPS) {
            const double t0 = now();
            const int64_t c = qfit_grammar_matcher_mask(m, v, allowed);
            const double dt = now() - t0;
            if (c < 0) { fprintf(stderr, "%s: %s\n", name, qfit_grammar_matcher_error(m)); exit(1); }
            if (r == 0 && at == 0) first = dt;
            else t[n++] = dt;
            allowed_sum += (double)c;
            int best = -1;
            for (int i = 0; i < n_vocab; i++)
                if (allowed[i] && lens[i] <= len - at && !memcmp(toks[i], doc + at, lens[i]) &&
                    (best < 0 || lens[i] > lens[best]))
                    best = i;
            if (best < 0) { fprintf(stderr, "%s: no token continues the document at %zu\n", name, at); exit(1); }
            if (qfit_grammar_matcher_accept(m, toks[best], lens[best]) != 1) { fprintf(stderr, "%s: accept\n", name); exit(1); }
            at += lens[best];
        }
    }
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    double sum = 0;
    int over = 0;
    for (int k = 0; k < n; k++) sum += t[k], over += t[k] > 1e-3;
    printf("| %-34s | %6d | %9.0f | %9.1f | %9.1f | %9.1f | %9.1f | %9.1f | %5d |\n", name, n, allowed_sum / (n + 1),
           first * 1e6, sum / n * 1e6, t[n / 2] * 1e6, t[n * 9 / 10] * 1e6, t[n - 1] * 1e6, over);
    free(allowed);
    qfit_grammar_matcher_free(m);
    qfit_grammar_free(g);
}

int main(int argc, char **argv)
{
    int n_vocab = 152064, rounds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-n")) n_vocab = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-r")) rounds = atoi(argv[i + 1]);
        else { fprintf(stderr, "usage: bench/grammar [-n N_VOCAB] [-r ROUNDS]\n"); return 2; }
    }
    if (n_vocab < 512 || rounds < 1) { fprintf(stderr, "n_vocab must be >= 512, rounds >= 1\n"); return 2; }
    char **toks = malloc((size_t)n_vocab * sizeof *toks);
    size_t *lens = malloc((size_t)n_vocab * sizeof *lens);
    char buf[128];
    /* make sure every ASCII character and the documents' pieces exist */
    for (int i = 0; i < n_vocab; i++) {
        lens[i] = make_token(buf, sizeof buf - 16, i);
        toks[i] = malloc(lens[i] + 1);
        memcpy(toks[i], buf, lens[i]);
    }
    char err[512];
    const double tb = now();
    qfit_grammar_vocab *v = qfit_grammar_vocab_new(n_vocab, (const char *const *)toks, lens, err, sizeof err);
    if (!v) { fprintf(stderr, "%s\n", err); return 1; }
    printf("n_vocab %d, vocabulary trie built in %.1f ms, %d rounds per path, single thread\n\n", n_vocab,
           (now() - tb) * 1e3, rounds);
    printf("| %-34s | %6s | %9s | %9s | %9s | %9s | %9s | %9s | %5s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
           "path", "tokens", "allowed", "first us", "mean us", "median us", "p90 us", "max us", ">1ms");
    const char *doc = "{\"name\": \"Aaron ben Amram\", \"age\": 83, \"tribe\": \"Levi\", \"tags\": [\"priest\", \"elder\"], "
                      "\"note\": \"Exodus 4:14 — “thy brother” é 中文 😀\", \"alive\": false, \"kids\": [{\"name\": \"Nadab\", "
                      "\"age\": 40}, {\"name\": \"Eleazar\", \"age\": 38}]}";
    run("JSON, any value (--format json)", qfit_schema_any_json_gbnf(), doc, v, toks, lens, n_vocab, rounds);
    const char *schema = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\","
                         "\"minimum\":0,\"maximum\":150},\"tribe\":{\"enum\":[\"Judah\",\"Levi\",\"Dan\"]},\"tags\":{\"type\":"
                         "\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":8},\"note\":{\"type\":\"string\"},\"alive\":"
                         "{\"type\":\"boolean\"},\"kids\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
                         "\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"}},\"required\":[\"name\",\"age\"]}}},"
                         "\"required\":[\"name\",\"age\",\"tribe\"]}";
    char *gbnf = qfit_schema_to_gbnf(schema, strlen(schema), err, sizeof err);
    if (!gbnf) { fprintf(stderr, "%s\n", err); return 1; }
    run("JSON Schema (object, enum, arrays)", gbnf, doc, v, toks, lens, n_vocab, rounds);
    free(gbnf);
    run("GBNF: free text [^\\n]* \"\\n\"", "root ::= [^\\n]* \"\\n\"\n",
        "And God said, Let there be light: and there was light. “é 中文 😀” 12345 {\"json\": [1, 2]}\n", v, toks, lens,
        n_vocab, rounds);
    qfit_grammar_vocab_free(v);
    for (int i = 0; i < n_vocab; i++) free(toks[i]);
    free(toks);
    free(lens);
    return 0;
}
