/* qfit tokenizer — vocabulary, SentencePiece-style and byte-level BPE
 * tokenization (WordPiece words are cut in wpm.c), special-token partitioning
 * and detokenization, following the behaviour of llama.cpp's llama-vocab (so
 * that ids match token for token).
 */
#include <limits.h>
#include <stdio.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* ================================================================ strtab */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;            /* FNV-1a, 64 bit */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char) s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

int tok_strtab_build(tok_strtab *st, const char *const *strs, const size_t *lens, int64_t n,
                     bool dup_keep_first, int64_t *n_dups)
{
    memset(st, 0, sizeof *st);
    if (n_dups) *n_dups = 0;
    uint64_t total = 0;
    for (int64_t i = 0; i < n; i++) total += (lens ? lens[i] : strlen(strs[i])) + 1;
    uint64_t slots = 16;
    while (slots < (uint64_t) n * 2 + 16) slots <<= 1;
    st->blob = malloc(total ? total : 1);
    st->off = malloc(sizeof *st->off * (size_t) (n ? n : 1));
    st->len = malloc(sizeof *st->len * (size_t) (n ? n : 1));
    st->slot = calloc(slots, sizeof *st->slot);
    if (!st->blob || !st->off || !st->len || !st->slot) { tok_strtab_free(st); return -1; }
    st->mask = slots - 1;
    st->n = n;
    uint64_t o = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t l = lens ? lens[i] : strlen(strs[i]);
        if (l > UINT32_MAX - 1) { tok_strtab_free(st); return -1; }
        if (l) memcpy(st->blob + o, strs[i], l);
        st->blob[o + l] = 0;
        st->off[i] = o;
        st->len[i] = (uint32_t) l;
        o += l + 1;
        uint64_t h = hash_bytes(st->blob + st->off[i], l) & st->mask;
        for (;;) {
            int32_t s = st->slot[h];
            if (s == 0) { st->slot[h] = (int32_t) (i + 1); break; }
            int64_t j = s - 1;
            if (st->len[j] == l && memcmp(st->blob + st->off[j], st->blob + st->off[i], l) == 0) {
                if (n_dups) (*n_dups)++;
                if (!dup_keep_first) st->slot[h] = (int32_t) (i + 1);
                break;
            }
            h = (h + 1) & st->mask;
        }
    }
    return 0;
}

void tok_strtab_free(tok_strtab *st)
{
    free(st->blob);
    free(st->off);
    free(st->len);
    free(st->slot);
    memset(st, 0, sizeof *st);
}

int64_t tok_strtab_find(const tok_strtab *st, const char *key, size_t len)
{
    if (!st->slot) return -1;
    uint64_t h = hash_bytes(key, len) & st->mask;
    for (;;) {
        int32_t s = st->slot[h];
        if (s == 0) return -1;
        int64_t j = s - 1;
        if (st->len[j] == len && memcmp(st->blob + st->off[j], key, len) == 0) return j;
        h = (h + 1) & st->mask;
    }
}

int64_t tok_strtab_longest_prefix(const tok_strtab *st, const char *key, size_t max_len,
                                  uint64_t *scratch, size_t *match_len)
{
    if (!st->slot) return -1;
    /* hash_bytes() of every prefix in one pass */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < max_len; i++) {
        h ^= (unsigned char) key[i];
        h *= 1099511628211ull;
        scratch[i] = h ^ (h >> 29);
    }
    for (size_t len = max_len; len > 0; len--) {
        uint64_t slot = scratch[len - 1] & st->mask;
        for (;;) {
            int32_t s = st->slot[slot];
            if (s == 0) break;
            int64_t j = s - 1;
            if (st->len[j] == len && memcmp(st->blob + st->off[j], key, len) == 0) {
                *match_len = len;
                return j;
            }
            slot = (slot + 1) & st->mask;
        }
    }
    return -1;
}

/* ================================================================ helpers */

void tok_ids_push(id_vec *o, int32_t id)
{
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 256;
        int32_t *t = realloc(o->v, nc * sizeof *t);
        if (!t) { o->oom = true; return; }
        o->v = t;
        o->cap = nc;
    }
    o->v[o->n++] = id;
}

typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} byte_buf;

static void buf_put(byte_buf *b, const void *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *t = realloc(b->p, nc);
        if (!t) { b->oom = true; return; }
        b->p = t;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

/* llama.cpp's UTF-8 length from the lead byte only (no validation) */
static size_t utf8_len_lead(unsigned char c)
{
    static const uint8_t lut[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
    return lut[c >> 4];
}

static size_t utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) { o[0] = (char) cp; return 1; }
    if (cp < 0x800) { o[0] = (char) (0xC0 | (cp >> 6)); o[1] = (char) (0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char) (0xE0 | (cp >> 12));
        o[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char) (0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char) (0xF0 | (cp >> 18));
    o[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char) (0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes one code point the way llama.cpp's unicode_cpt_from_utf8 does
 * (continuation bytes checked, overlongs/surrogates accepted); returns false on
 * an invalid sequence (the caller substitutes U+FFFD and skips one byte). */
static bool utf8_decode(const unsigned char *s, size_t n, size_t *i, uint32_t *cp)
{
    size_t k = *i;
    unsigned char c = s[k];
    if (!(c & 0x80)) { *cp = c; *i = k + 1; return true; }
    if (!(c & 0x40)) return false;
    if (!(c & 0x20)) {
        if (k + 1 >= n || (s[k + 1] & 0xC0) != 0x80) return false;
        *cp = ((uint32_t) (c & 0x1F) << 6) | (s[k + 1] & 0x3F);
        *i = k + 2;
        return true;
    }
    if (!(c & 0x10)) {
        if (k + 2 >= n || (s[k + 1] & 0xC0) != 0x80 || (s[k + 2] & 0xC0) != 0x80) return false;
        *cp = ((uint32_t) (c & 0x0F) << 12) | ((uint32_t) (s[k + 1] & 0x3F) << 6) | (s[k + 2] & 0x3F);
        *i = k + 3;
        return true;
    }
    if (!(c & 0x08)) {
        if (k + 3 >= n || (s[k + 1] & 0xC0) != 0x80 || (s[k + 2] & 0xC0) != 0x80 || (s[k + 3] & 0xC0) != 0x80)
            return false;
        *cp = ((uint32_t) (c & 0x07) << 18) | ((uint32_t) (s[k + 1] & 0x3F) << 12) |
              ((uint32_t) (s[k + 2] & 0x3F) << 6) | (s[k + 3] & 0x3F);
        *i = k + 4;
        return true;
    }
    return false;
}

static inline int32_t vocab_find(const qfit_tokenizer *t, const char *s, size_t n)
{
    return (int32_t) tok_strtab_find(&t->vocab, s, n);
}

/* SPM byte fallback: "<0xXX>", else the byte itself as a token, else unk */
static int32_t spm_byte_token(const qfit_tokenizer *t, unsigned char b)
{
    static const char hex[] = "0123456789ABCDEF";
    char s[6] = { '<', '0', 'x', hex[b >> 4], hex[b & 15], '>' };
    int32_t id = vocab_find(t, s, 6);
    if (id >= 0) return id;
    id = vocab_find(t, (const char *) &b, 1);
    if (id >= 0) return id;
    return t->unk;
}

/* ================================================================ heap */

typedef struct {
    float   score;   /* SPM: higher first */
    int32_t rank;    /* BPE: lower first */
    int32_t left, right;
    uint32_t size;
} bigram;

typedef struct {
    bigram *v;
    size_t n, cap;
    bool bpe;
    bool oom;
} bigram_heap;

/* true if a must come out before b */
static inline bool bg_before(const bigram_heap *h, const bigram *a, const bigram *b)
{
    if (h->bpe) {
        if (a->rank != b->rank) return a->rank < b->rank;
    } else {
        if (a->score != b->score) return a->score > b->score;
    }
    return a->left < b->left;
}

static void heap_push(bigram_heap *h, bigram b)
{
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 256;
        bigram *t = realloc(h->v, nc * sizeof *t);
        if (!t) { h->oom = true; return; }
        h->v = t;
        h->cap = nc;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bg_before(h, &b, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = b;
}

static bigram heap_pop(bigram_heap *h)
{
    bigram top = h->v[0];
    bigram last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const bigram *mv = &last;
        if (l < h->n && bg_before(h, &h->v[l], mv)) { m = l; mv = &h->v[l]; }
        if (r < h->n && bg_before(h, &h->v[r], mv)) { m = r; mv = &h->v[r]; }
        if (m == i) break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n) h->v[i] = last;
    return top;
}

/* ================================================================ symbols */

typedef struct {
    size_t  *start;
    uint32_t *n;
    int32_t *prev, *next;
    size_t   count, cap;
} symbols;

static int sym_reserve(symbols *s, size_t need)
{
    if (need <= s->cap) return 0;
    size_t nc = s->cap ? s->cap : 256;
    while (nc < need) nc *= 2;
    size_t *a = realloc(s->start, nc * sizeof *a);
    if (!a) return -1;
    s->start = a;
    uint32_t *b = realloc(s->n, nc * sizeof *b);
    if (!b) return -1;
    s->n = b;
    int32_t *c = realloc(s->prev, nc * sizeof *c);
    if (!c) return -1;
    s->prev = c;
    int32_t *d = realloc(s->next, nc * sizeof *d);
    if (!d) return -1;
    s->next = d;
    s->cap = nc;
    return 0;
}

static void sym_free(symbols *s)
{
    free(s->start);
    free(s->n);
    free(s->prev);
    free(s->next);
}

/* Splits text into UTF-8 symbols by lead byte (llama.cpp's rule). */
static int sym_split(symbols *s, size_t len, const char *text)
{
    if (len >= INT32_MAX) return -1;
    if (sym_reserve(s, len)) return -1;
    s->count = 0;
    size_t off = 0;
    while (off < len) {
        size_t l = utf8_len_lead((unsigned char) text[off]);
        if (l > len - off) l = len - off;
        size_t i = s->count++;
        s->start[i] = off;
        s->n[i] = (uint32_t) l;
        s->prev[i] = (int32_t) i - 1;
        off += l;
        s->next[i] = off == len ? -1 : (int32_t) i + 1;
    }
    return 0;
}

typedef struct {
    symbols     sym;
    bigram_heap heap;
    byte_buf    a, b;     /* scratch text */
    tok_span   *spans;
} session;

static void session_free(session *s)
{
    sym_free(&s->sym);
    free(s->heap.v);
    free(s->a.p);
    free(s->b.p);
    free(s->spans);
}

/* ================================================================ SPM */

static void spm_try_bigram(const qfit_tokenizer *t, session *ss, const char *text, int32_t left, int32_t right)
{
    if (left < 0 || right < 0) return;
    symbols *s = &ss->sym;
    size_t n = (size_t) s->n[left] + s->n[right];
    int32_t id = vocab_find(t, text + s->start[left], n);
    if (id < 0) return;
    bigram b = { .score = t->score[id], .rank = 0, .left = left, .right = right, .size = (uint32_t) n };
    heap_push(&ss->heap, b);
}

/* text: already normalised (spaces as U+2581) */
static int spm_session(const qfit_tokenizer *t, session *ss, const char *text, size_t len, id_vec *out)
{
    symbols *s = &ss->sym;
    if (sym_split(s, len, text)) return -1;
    if (s->count == 0) return 0;
    ss->heap.n = 0;
    ss->heap.bpe = false;
    for (size_t i = 1; i < s->count; i++) spm_try_bigram(t, ss, text, (int32_t) i - 1, (int32_t) i);
    while (ss->heap.n) {
        bigram b = heap_pop(&ss->heap);
        uint32_t ln = s->n[b.left], rn = s->n[b.right];
        if (ln == 0 || rn == 0 || ln + rn != b.size) continue;   /* stale */
        s->n[b.left] = ln + rn;
        s->n[b.right] = 0;
        s->next[b.left] = s->next[b.right];
        if (s->next[b.right] >= 0) s->prev[s->next[b.right]] = b.left;
        spm_try_bigram(t, ss, text, s->prev[b.left], b.left);
        spm_try_bigram(t, ss, text, b.left, s->next[b.left]);
    }
    if (ss->heap.oom) return -1;
    for (int32_t i = 0; i != -1; i = s->next[i]) {
        const char *p = text + s->start[i];
        int32_t id = vocab_find(t, p, s->n[i]);
        if (id >= 0) { tok_ids_push(out, id); continue; }
        for (uint32_t j = 0; j < s->n[i]; j++) {
            int32_t bt = spm_byte_token(t, (unsigned char) p[j]);
            if (bt >= 0) tok_ids_push(out, bt);
        }
    }
    return out->oom ? -1 : 0;
}

/* ================================================================ BPE */

static int32_t bpe_rank(const qfit_tokenizer *t, session *ss, const char *l, size_t ln, const char *r, size_t rn)
{
    byte_buf *k = &ss->b;
    k->n = 0;
    buf_put(k, l, ln);
    buf_put(k, " ", 1);
    buf_put(k, r, rn);
    if (k->oom) return -1;
    return (int32_t) tok_strtab_find(&t->merges, k->p, k->n);
}

static void bpe_try_bigram(const qfit_tokenizer *t, session *ss, const char *word, int32_t left, int32_t right)
{
    if (left < 0 || right < 0) return;
    symbols *s = &ss->sym;
    int32_t rank = bpe_rank(t, ss, word + s->start[left], s->n[left], word + s->start[right], s->n[right]);
    if (rank < 0) return;
    bigram b = { .score = 0, .rank = rank, .left = left, .right = right,
                 .size = s->n[left] + s->n[right] };
    heap_push(&ss->heap, b);
}

static int bpe_word(const qfit_tokenizer *t, session *ss, const char *word, size_t len, id_vec *out)
{
    if (t->ignore_merges) {
        int32_t id = vocab_find(t, word, len);
        if (id >= 0) { tok_ids_push(out, id); return 0; }
    }
    symbols *s = &ss->sym;
    if (sym_split(s, len, word)) return -1;
    if (s->count == 0) return 0;
    ss->heap.n = 0;
    ss->heap.bpe = true;
    for (size_t i = 1; i < s->count; i++) bpe_try_bigram(t, ss, word, (int32_t) i - 1, (int32_t) i);
    while (ss->heap.n) {
        bigram b = heap_pop(&ss->heap);
        uint32_t ln = s->n[b.left], rn = s->n[b.right];
        if (ln == 0 || rn == 0 || ln + rn != b.size) continue;   /* outdated */
        s->n[b.left] = ln + rn;
        s->n[b.right] = 0;
        s->next[b.left] = s->next[b.right];
        if (s->next[b.right] >= 0) s->prev[s->next[b.right]] = b.left;
        bpe_try_bigram(t, ss, word, s->prev[b.left], b.left);
        bpe_try_bigram(t, ss, word, b.left, s->next[b.left]);
    }
    if (ss->heap.oom || ss->b.oom) return -1;
    for (int32_t i = 0; i != -1; i = s->next[i]) {
        const char *p = word + s->start[i];
        int32_t id = vocab_find(t, p, s->n[i]);
        if (id >= 0) { tok_ids_push(out, id); continue; }
        /* llama.cpp looks every byte up as a one-byte token and drops misses */
        for (uint32_t j = 0; j < s->n[i]; j++) {
            int32_t bt = vocab_find(t, p + j, 1);
            if (bt >= 0) tok_ids_push(out, bt);
        }
    }
    return out->oom ? -1 : 0;
}

static int bpe_session(const qfit_tokenizer *t, session *ss, const char *text, size_t len, id_vec *out)
{
    /* 1. code points as llama.cpp reads them, re-encoded; a second copy with
     *    surrogates replaced (same byte length) is what PCRE2 matches on. */
    byte_buf *canon = &ss->a;
    canon->n = 0;
    const unsigned char *u = (const unsigned char *) text;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        if (!utf8_decode(u, len, &i, &cp)) { cp = 0xFFFD; i++; }
        if (cp > 0x10FFFF) cp = 0xFFFD;
        char e[4];
        buf_put(canon, e, utf8_put(e, cp));
    }
    if (canon->oom) return -1;
    char *subject = malloc(canon->n + 1);
    if (!subject) return -1;
    memcpy(subject, canon->p, canon->n + 1);
    for (size_t k = 0; k + 2 < canon->n; k++) {
        unsigned char c = (unsigned char) subject[k];
        if (c == 0xED && ((unsigned char) subject[k + 1] & 0xE0) == 0xA0) {
            subject[k] = (char) 0xEF; subject[k + 1] = (char) 0xBF; subject[k + 2] = (char) 0xBD;
            k += 2;
        }
    }
    /* 2. pre-tokenize */
    free(ss->spans);
    ss->spans = NULL;
    size_t n_spans = 0;
    int rc = tok_pretok_split(t->pretok, subject, canon->n, &ss->spans, &n_spans);
    free(subject);
    if (rc) return -1;
    /* 3. byte-encode each word, then merge */
    byte_buf word = { 0 };
    for (size_t w = 0; w < n_spans && rc == 0; w++) {
        word.n = 0;
        const unsigned char *p = (const unsigned char *) canon->p + ss->spans[w].off;
        for (size_t k = 0; k < ss->spans[w].len; k++) buf_put(&word, t->b2u[p[k]], strlen(t->b2u[p[k]]));
        if (word.oom) { rc = -1; break; }
        rc = bpe_word(t, ss, word.p, word.n, out);
    }
    free(word.p);
    return rc;
}

/* ================================================================ special partition */

typedef struct {
    int32_t tok;     /* -1: raw text */
    size_t off, len;
} fragment;

typedef struct {
    fragment *v;
    size_t n, cap;
    bool oom;
} frag_vec;

static void frag_push(frag_vec *f, int32_t tok, size_t off, size_t len)
{
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 16;
        fragment *t = realloc(f->v, nc * sizeof *t);
        if (!t) { f->oom = true; return; }
        f->v = t;
        f->cap = nc;
    }
    f->v[f->n++] = (fragment) { tok, off, len };
}

static int partition(const qfit_tokenizer *t, const char *text, size_t len, bool parse_special, frag_vec *out)
{
    frag_vec cur = { 0 }, nxt = { 0 };
    if (len) frag_push(&cur, -1, 0, len);
    for (int64_t k = 0; k < t->n_special && !cur.oom; k++) {
        int32_t id = t->special[k];
        if (!parse_special && (t->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN))) continue;
        const char *st = t->vocab.blob + t->vocab.off[id];
        size_t sl = t->vocab.len[id];
        if (sl == 0) continue;
        nxt.n = 0;
        for (size_t f = 0; f < cur.n; f++) {
            fragment fr = cur.v[f];
            if (fr.tok >= 0) { frag_push(&nxt, fr.tok, 0, 0); continue; }
            size_t pos = fr.off, end = fr.off + fr.len;
            while (pos < end) {
                const char *m = memmem(text + pos, end - pos, st, sl);
                if (!m) break;
                size_t mo = (size_t) (m - text), left = mo;
                if (t->attr[id] & TOK_ATTR_LSTRIP)   /* ASCII whitespace, as llama.cpp's isspace */
                    while (left > pos && isspace((unsigned char) text[left - 1])) left--;
                if (left > pos) frag_push(&nxt, -1, pos, left - pos);
                frag_push(&nxt, id, 0, 0);
                pos = mo + sl;
                if (t->attr[id] & TOK_ATTR_RSTRIP)
                    while (pos < end && isspace((unsigned char) text[pos])) pos++;
            }
            if (pos < end) frag_push(&nxt, -1, pos, end - pos);
        }
        frag_vec tmp = cur;
        cur = nxt;
        nxt = tmp;
        if (cur.oom || nxt.oom) cur.oom = true;
    }
    free(nxt.v);
    if (cur.oom) { free(cur.v); return -1; }
    *out = cur;
    return 0;
}

/* ================================================================ tokenize */

static int tokenize_impl(const qfit_tokenizer *t, const char *text, size_t len, bool add_special,
                         bool parse_special, id_vec *out)
{
    if (!t || (!text && len)) return -1;
    frag_vec frags = { 0 };
    if (partition(t, text, len, parse_special, &frags)) return -1;
    session ss = { 0 };
    int rc = 0;
    if (t->model == QFIT_TOK_SPM) {
        bool prev_special = true;
        if (add_special && t->add_bos && t->bos >= 0) tok_ids_push(out, t->bos);
        for (size_t f = 0; f < frags.n && rc == 0; f++) {
            const fragment *fr = &frags.v[f];
            if (fr->tok >= 0) { tok_ids_push(out, fr->tok); prev_special = true; continue; }
            byte_buf *b = &ss.a;
            b->n = 0;
            if (t->add_space_prefix && prev_special) buf_put(b, "\xE2\x96\x81", 3);
            const char *p = text + fr->off;
            size_t run = 0;
            for (size_t k = 0; k < fr->len; k++) {
                if (p[k] == ' ') {
                    if (k > run) buf_put(b, p + run, k - run);
                    buf_put(b, "\xE2\x96\x81", 3);
                    run = k + 1;
                }
            }
            if (fr->len > run) buf_put(b, p + run, fr->len - run);
            if (b->oom) { rc = -1; break; }
            /* the session reuses ss.b only for BPE; SPM text lives in ss.a */
            rc = spm_session(t, &ss, b->p, b->n, out);
            prev_special = false;
        }
        if (rc == 0 && add_special && t->add_eos && t->eos >= 0) tok_ids_push(out, t->eos);
    } else if (t->model == QFIT_TOK_WPM) {
        /* llama.cpp adds [CLS] (bos) and [SEP] whenever add_special is set, whatever
         * add_bos_token / add_sep_token say; construction checks both ids exist */
        if (add_special) tok_ids_push(out, t->bos);
        for (size_t f = 0; f < frags.n && rc == 0; f++) {
            const fragment *fr = &frags.v[f];
            if (fr->tok >= 0) { tok_ids_push(out, fr->tok); continue; }
            rc = tok_wpm_fragment(t, text + fr->off, fr->len, out);
        }
        if (rc == 0 && add_special) tok_ids_push(out, t->sep);
    } else {
        if (add_special && t->add_bos && t->bos >= 0) tok_ids_push(out, t->bos);
        for (size_t f = 0; f < frags.n && rc == 0; f++) {
            const fragment *fr = &frags.v[f];
            if (fr->tok >= 0) { tok_ids_push(out, fr->tok); continue; }
            rc = bpe_session(t, &ss, text + fr->off, fr->len, out);
        }
        if (rc == 0 && add_special && t->add_eos && t->eos >= 0) tok_ids_push(out, t->eos);
    }
    session_free(&ss);
    free(frags.v);
    if (out->oom) rc = -1;
    return rc;
}

int64_t qfit_tokenize(const qfit_tokenizer *t, const char *text, size_t len,
                      bool add_special, bool parse_special, int32_t *out, size_t cap)
{
    id_vec v = { 0 };
    if (tokenize_impl(t, text, len, add_special, parse_special, &v)) { free(v.v); return -1; }
    size_t k = v.n < cap ? v.n : cap;
    if (k && out) memcpy(out, v.v, k * sizeof *out);
    free(v.v);
    return (int64_t) v.n;
}

int qfit_tokenize_alloc(const qfit_tokenizer *t, const char *text, size_t len,
                        bool add_special, bool parse_special, int32_t **out_ids, size_t *n)
{
    id_vec v = { 0 };
    *out_ids = NULL;
    *n = 0;
    if (tokenize_impl(t, text, len, add_special, parse_special, &v)) { free(v.v); return -1; }
    *out_ids = v.v;
    *n = v.n;
    return 0;
}

/* ================================================================ pieces */

/* Appends the piece of id to b (llama_token_to_piece without the lstrip). */
static void piece_append(const qfit_tokenizer *t, int32_t id, bool special, byte_buf *b)
{
    if (id < 0 || id >= t->n_vocab) return;
    uint8_t a = t->attr[id];
    if (!special && (a & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL))) return;
    const char *s = t->vocab.blob + t->vocab.off[id];
    size_t n = t->vocab.len[id];
    if (a & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL | TOK_ATTR_USER)) { buf_put(b, s, n); return; }
    if (a & TOK_ATTR_NORMAL) {
        if (t->model != QFIT_TOK_BPE) {   /* SPM and WPM: "▁" is a space */
            size_t run = 0;
            for (size_t k = 0; k + 2 < n;) {
                if (s[k] == '\xE2' && s[k + 1] == '\x96' && s[k + 2] == '\x81') {
                    if (k > run) buf_put(b, s + run, k - run);
                    buf_put(b, " ", 1);
                    k += 3;
                    run = k;
                } else {
                    k++;
                }
            }
            if (n > run) buf_put(b, s + run, n - run);
        } else {
            /* map each code point back to its byte */
            const unsigned char *u = (const unsigned char *) s;
            size_t i = 0;
            while (i < n) {
                size_t st = i;
                uint32_t cp;
                if (!utf8_decode(u, n, &i, &cp)) { cp = 0xFFFD; i++; }
                if (cp < 324 && t->u2b[cp] >= 0) {
                    char c = (char) t->u2b[cp];
                    buf_put(b, &c, 1);
                } else {
                    /* llama.cpp writes "[UNK_BYTE_0x<hex of the char>" + the token text + "]" */
                    char e[4], hx[16];
                    size_t el = utf8_put(e, cp > 0x10FFFF ? 0xFFFD : cp);
                    (void) st;
                    buf_put(b, "[UNK_BYTE_0x", 12);
                    for (size_t k = 0; k < el; k++) {
                        snprintf(hx, sizeof hx, "%02x", (unsigned char) e[k]);
                        buf_put(b, hx, 2);
                    }
                    buf_put(b, s, n);
                    buf_put(b, "]", 1);
                }
            }
        }
        return;
    }
    if (a & TOK_ATTR_BYTE) {
        char c = 0;
        if (n >= 5) {
            char hx[3] = { s[3], s[4], 0 };
            c = (char) strtol(hx, NULL, 16);
        }
        buf_put(b, &c, 1);
    }
}

size_t qfit_token_to_piece(const qfit_tokenizer *t, int32_t id, char *buf, size_t cap, int lstrip, bool special)
{
    byte_buf b = { 0 };
    piece_append(t, id, special, &b);
    size_t skip = 0;
    while ((int) skip < lstrip && skip < b.n && b.p[skip] == ' ') skip++;
    size_t n = b.n - skip;
    if (buf && cap && n) memcpy(buf, b.p + skip, n < cap ? n : cap);
    free(b.p);
    return n;
}

static void clean_spaces(byte_buf *b)
{
    char *x = b->p;
    size_t total = b->n;
    if (!x || total == 0) return;
    /* " ?", " !", " .", " ," lose their space */
    size_t n1 = total, o = 1;
    for (size_t i = 1; i < n1; i++) {
        char c = x[i];
        if (x[i - 1] == ' ' && (c == '?' || c == '!' || c == '.' || c == ',')) o--;
        x[o++] = c;
    }
    /* " ' " -> "'" */
    size_t n2 = o;
    o = 1;
    for (size_t i = 1; i < n2; i++) {
        char c = x[i];
        if (c == '\'' && i + 1 < n2 && x[i - 1] == ' ' && x[i + 1] == ' ') {
            o--;
            x[++i] = 0;
        }
        x[o++] = c;
    }
    /* " 's", " 'm", " 're", " 've" lose their space */
    size_t n3 = o;
    o = 1;
    for (size_t i = 1; i < n3; i++) {
        char c = x[i];
        if (x[i - 1] == ' ' && c == '\'' && i + 1 < n3) {
            char c1 = x[i + 1];
            if (c1 == 's' || c1 == 'm') o--;
            else if (c1 != 't' && c1 != 'd' && i + 2 < n3) {
                char c2 = x[i + 2];
                if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e')) o--;
            }
        }
        x[o++] = c;
    }
    b->n = o;
    x[o] = 0;
}

static int detok_impl(const qfit_tokenizer *t, const int32_t *ids, size_t n, bool remove_special,
                      bool unparse_special, byte_buf *b)
{
    bool remove_space = t->add_space_prefix;
    if (remove_special && t->add_bos && n > 0 && ids[0] == t->bos) {
        remove_space = false;
        ids++;
        n--;
    }
    if (remove_special && t->add_eos && n > 0 && ids[n - 1] == t->eos) n--;
    byte_buf piece = { 0 };
    for (size_t i = 0; i < n; i++) {
        piece.n = 0;
        piece_append(t, ids[i], unparse_special, &piece);
        size_t skip = (remove_space && piece.n > 0 && piece.p[0] == ' ') ? 1 : 0;
        remove_space = false;
        if (piece.n > skip) buf_put(b, piece.p + skip, piece.n - skip);
    }
    free(piece.p);
    if (piece.oom || b->oom) return -1;
    if (t->clean_spaces) clean_spaces(b);
    return 0;
}

size_t qfit_detokenize(const qfit_tokenizer *t, const int32_t *ids, size_t n, char *buf, size_t cap,
                       bool remove_special, bool unparse_special)
{
    byte_buf b = { 0 };
    if (detok_impl(t, ids, n, remove_special, unparse_special, &b)) { free(b.p); return 0; }
    if (buf && cap && b.n) memcpy(buf, b.p, b.n < cap ? b.n : cap);
    free(b.p);
    return b.n;
}

char *qfit_detokenize_alloc(const qfit_tokenizer *t, const int32_t *ids, size_t n,
                            bool remove_special, bool unparse_special, size_t *len)
{
    byte_buf b = { 0 };
    buf_put(&b, "", 0);
    if (b.oom || detok_impl(t, ids, n, remove_special, unparse_special, &b)) { free(b.p); return NULL; }
    if (len) *len = b.n;
    return b.p;
}

/* ================================================================ construction */

void qfit_tokenizer_params_init(qfit_tokenizer_params *p, qfit_tok_model model)
{
    memset(p, 0, sizeof *p);
    p->model = model;
    p->pre = NULL;
    p->pad = p->eot = p->eom = p->sep = p->mask = QFIT_TOKEN_NONE;
    if (model == QFIT_TOK_SPM) {
        p->bos = 1; p->eos = 2; p->unk = 0;
    } else if (model == QFIT_TOK_WPM) {
        /* llama.cpp's defaults for "bert": [CLS] 101, [UNK] 100, [SEP] 102, [PAD] 0, [MASK] 103 */
        p->bos = 101; p->eos = QFIT_TOKEN_NONE; p->unk = 100; p->sep = 102; p->pad = 0; p->mask = 103;
    } else {
        p->bos = 11; p->eos = 11; p->unk = QFIT_TOKEN_NONE;
    }
    p->add_bos = p->add_eos = p->add_sep = p->add_space_prefix = -1;
    p->lowercase = p->strip_accents = -1;
}

static const char *const eot_names[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
    "<end_of_utterance>", NULL
};
static const char *const eom_names[] = { "<|eom_id|>", NULL };
/* fim tokens: only their CONTROL marking matters here (and eog for pad/rep/sep) */
static const char *const fim_names[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>",
    "\xe2\x96\x81<PRE>",
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "hole\xef\xbd\x9c>", "<SUF>",
    "\xe2\x96\x81<SUF>",
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>",
    "\xe2\x96\x81<MID>",
    NULL
};
static const char *const fim_eog_names[] = {
    "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]",   /* "[PAD]": Kimi-K2's; BERT's [PAD] too */
    "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>",
    "<|file_sep|>", NULL
};
static const char *const eog_names[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>", NULL
};

static const char *const harmony_user_names[] = { "<|channel|>", "<|message|>", "<|start|>", "<|constrain|>", NULL };

static bool name_in(const char *s, size_t n, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == n && memcmp(*list, s, n) == 0) return true;
    return false;
}

typedef struct {
    uint32_t len;
    int32_t  id;
} special_key;

static int cmp_special(const void *a, const void *b)
{
    const special_key *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void build_byte_maps(qfit_tokenizer *t)
{
    int n = 0;
    for (int i = 0; i < 324; i++) t->u2b[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        uint32_t cp = self ? (uint32_t) b : (uint32_t) (256 + n++);
        size_t l = utf8_put(t->b2u[b], cp);
        t->b2u[b][l] = 0;
        t->u2b[cp] = (int16_t) b;
    }
}

qfit_tokenizer *qfit_tokenizer_new(const qfit_tokenizer_params *p, char *err, size_t err_len)
{
    char dummy[8];
    if (!err) { err = dummy; err_len = sizeof dummy; }
    if (!p) { snprintf(err, err_len, "no tokenizer parameters"); return NULL; }
    if (p->model != QFIT_TOK_SPM && p->model != QFIT_TOK_BPE && p->model != QFIT_TOK_WPM) {
        snprintf(err, err_len, "unsupported tokenizer model %d", (int) p->model);
        return NULL;
    }
    if (p->n_vocab <= 0 || p->n_vocab >= INT32_MAX / 2 || !p->tokens) {
        snprintf(err, err_len, "invalid vocabulary size %lld", (long long) p->n_vocab);
        return NULL;
    }
    if (p->n_merges < 0 || p->n_merges >= INT32_MAX / 2 || (p->n_merges > 0 && !p->merges)) {
        snprintf(err, err_len, "invalid merge count %lld", (long long) p->n_merges);
        return NULL;
    }
    qfit_tokenizer *t = calloc(1, sizeof *t);
    if (!t) { snprintf(err, err_len, "out of memory"); return NULL; }
    t->model = p->model;
    t->n_vocab = (int32_t) p->n_vocab;
    const int64_t nv = p->n_vocab;

    const char *pre = (p->pre && *p->pre) ? p->pre : "default";
    const char *const *rx = NULL;
    int n_rx = 0;
    unsigned pre_flags = 0;
    if (t->model == QFIT_TOK_BPE) {
        if (!tok_pre_lookup(pre, &rx, &n_rx, &pre_flags)) {
            snprintf(err, err_len, "unknown pre-tokenizer type '%s' (tokenizer.ggml.pre)", pre);
            goto fail;
        }
        snprintf(t->pre, sizeof t->pre, "%s", pre);
        t->pretok = tok_pretok_new(rx, n_rx, err, err_len);
        if (!t->pretok) goto fail;
        t->ignore_merges = pre_flags & TOK_PRE_IGNORE_MERGES;
        t->clean_spaces = !(pre_flags & TOK_PRE_NO_CLEAN);
    }

    /* vocabulary; empty strings become "[EMPTY_i]" as in llama.cpp */
    {
        const char **strs = malloc(sizeof *strs * (size_t) nv);
        size_t *lens = malloc(sizeof *lens * (size_t) nv);
        char (*empty)[32] = NULL;
        int64_t n_empty = 0;
        for (int64_t i = 0; strs && lens && i < nv; i++) {
            strs[i] = p->tokens[i];
            lens[i] = p->token_lens ? p->token_lens[i] : (p->tokens[i] ? strlen(p->tokens[i]) : 0);
            if (!p->tokens[i] || lens[i] == 0) {
                /* llama.cpp renames it "[EMPTY_<i>]"; a WordPiece vocabulary with an
                 * empty piece is broken, so say so */
                if (t->model == QFIT_TOK_WPM) {
                    snprintf(err, err_len, "token %lld of the WordPiece vocabulary is empty", (long long) i);
                    free(strs);
                    free(lens);
                    goto fail;
                }
                n_empty++;
            }
            if (lens[i] > t->max_token_len) t->max_token_len = lens[i];
        }
        if (strs && lens && n_empty) {
            empty = calloc((size_t) n_empty, sizeof *empty);
            int64_t k = 0;
            for (int64_t i = 0; empty && i < nv; i++) {
                if (p->tokens[i] && lens[i]) continue;
                snprintf(empty[k], sizeof empty[k], "[EMPTY_%d]", (int) i);
                strs[i] = empty[k];
                lens[i] = strlen(empty[k]);
                k++;
            }
        }
        int rc = (!strs || !lens || (n_empty && !empty)) ? -1
                 : tok_strtab_build(&t->vocab, strs, lens, nv, false, NULL);
        free(strs);
        free(lens);
        free(empty);
        if (rc) { snprintf(err, err_len, "out of memory building the vocabulary"); goto fail; }
    }
    t->score = calloc((size_t) nv, sizeof *t->score);
    t->type = calloc((size_t) nv, sizeof *t->type);
    t->attr = calloc((size_t) nv, sizeof *t->attr);
    t->eog = calloc((size_t) nv, sizeof *t->eog);
    if (!t->score || !t->type || !t->attr || !t->eog) { snprintf(err, err_len, "out of memory"); goto fail; }
    for (int64_t i = 0; i < nv; i++) {
        t->score[i] = p->scores ? p->scores[i] : 0.0f;
        int32_t ty = p->types ? p->types[i] : QFIT_TOKEN_TYPE_NORMAL;
        t->type[i] = ty;
        switch (ty) {
        case QFIT_TOKEN_TYPE_UNKNOWN:      t->attr[i] = TOK_ATTR_UNKNOWN; break;
        case QFIT_TOKEN_TYPE_UNUSED:       t->attr[i] = TOK_ATTR_UNUSED; break;
        case QFIT_TOKEN_TYPE_NORMAL:       t->attr[i] = TOK_ATTR_NORMAL; break;
        case QFIT_TOKEN_TYPE_CONTROL:      t->attr[i] = TOK_ATTR_CONTROL; break;
        case QFIT_TOKEN_TYPE_USER_DEFINED: t->attr[i] = TOK_ATTR_USER; break;
        case QFIT_TOKEN_TYPE_BYTE:         t->attr[i] = TOK_ATTR_BYTE; break;
        default:                           t->attr[i] = 0; break;
        }
    }

    /* merges: keys are the merge strings themselves; lookups build "left right".
     * Only strings that llama.cpp splits into a usable pair are kept. */
    if (t->model == QFIT_TOK_BPE && p->n_merges > 0) {
        const int64_t nm = p->n_merges;
        const char **strs = malloc(sizeof *strs * (size_t) nm);
        size_t *lens = malloc(sizeof *lens * (size_t) nm);
        if (!strs || !lens) { free(strs); free(lens); snprintf(err, err_len, "out of memory"); goto fail; }
        for (int64_t i = 0; i < nm; i++) {
            const char *m = p->merges[i] ? p->merges[i] : "";
            size_t l = p->merge_lens ? p->merge_lens[i] : strlen(m);
            const char *sp = l > 1 ? memchr(m + 1, ' ', l - 1) : NULL;
            if (!sp || m[0] == ' ') { m = ""; l = 0; }   /* never matched by a lookup */
            strs[i] = m;
            lens[i] = l;
        }
        int rc = tok_strtab_build(&t->merges, strs, lens, nm, true, NULL);
        free(strs);
        free(lens);
        if (rc) { snprintf(err, err_len, "out of memory building the merges"); goto fail; }
    }

    /* settings */
    t->lowercase = t->strip_accents = true;
    if (t->model == QFIT_TOK_SPM) {
        t->add_bos = true; t->add_eos = false; t->add_space_prefix = true; t->clean_spaces = false;
    } else if (t->model == QFIT_TOK_WPM) {
        t->add_bos = true; t->add_eos = false; t->add_sep = true; t->add_space_prefix = false; t->clean_spaces = true;
    } else {
        t->add_bos = (pre_flags & TOK_PRE_ADD_BOS) != 0; t->add_eos = false; t->add_space_prefix = false;
    }
    if (p->add_bos >= 0) t->add_bos = p->add_bos != 0;
    if (p->add_eos >= 0) t->add_eos = p->add_eos != 0;
    if (p->add_sep >= 0) t->add_sep = p->add_sep != 0;
    if (p->add_space_prefix >= 0) t->add_space_prefix = p->add_space_prefix != 0;
    /* llama.cpp: strip_accents follows lowercase unless given (Hugging Face's
     * BertNormalizer strip_accents = None) */
    if (p->lowercase >= 0) t->lowercase = t->strip_accents = p->lowercase != 0;
    if (p->strip_accents >= 0) t->strip_accents = p->strip_accents != 0;

#define CHECK_ID(x) ((x) >= 0 && (x) < t->n_vocab ? (x) : QFIT_TOKEN_NONE)
    t->bos = CHECK_ID(p->bos);
    t->eos = CHECK_ID(p->eos);
    t->unk = CHECK_ID(p->unk);
    t->pad = CHECK_ID(p->pad);
    t->eot = CHECK_ID(p->eot);
    t->eom = CHECK_ID(p->eom);
    t->sep = CHECK_ID(p->sep);
    t->mask = CHECK_ID(p->mask);
#undef CHECK_ID
    if (t->add_bos && t->bos < 0) { snprintf(err, err_len, "add_bos_token is true, but bos_token_id is not set"); goto fail; }
    if (t->add_eos && t->eos < 0) { snprintf(err, err_len, "add_eos_token is true, but eos_token_id is not set"); goto fail; }
    if (t->add_sep && t->sep < 0) { snprintf(err, err_len, "add_sep_token is true, but seperator_token_id is not set"); goto fail; }
    if (t->model == QFIT_TOK_WPM) {
        /* llama.cpp would write id -1 for an unmatched word, and asserts on a
         * missing [CLS] / [SEP] when adding special tokens */
        if (t->unk < 0) {
            snprintf(err, err_len, "WordPiece vocabulary without an unknown token (tokenizer.ggml.unknown_token_id "
                     "is %d, vocabulary size %d)", (int) p->unk, (int) t->n_vocab);
            goto fail;
        }
        if (t->bos < 0 || t->sep < 0) {
            snprintf(err, err_len, "WordPiece vocabulary without %s (tokenizer.ggml.%s is %d, vocabulary size %d)",
                     t->bos < 0 ? "a [CLS] token" : "a [SEP] token",
                     t->bos < 0 ? "bos_token_id" : "seperator_token_id",
                     (int) (t->bos < 0 ? p->bos : p->sep), (int) t->n_vocab);
            goto fail;
        }
    }

    /* text-based detection of eot/eom/fim/eog tokens (they become CONTROL) */
    for (int32_t i = 0; i < t->n_vocab; i++) {
        const char *s = t->vocab.blob + t->vocab.off[i];
        size_t n = t->vocab.len[i];
        if (t->eot < 0 && name_in(s, n, eot_names)) { t->eot = i; t->attr[i] |= TOK_ATTR_CONTROL; }
        if (t->eom < 0 && name_in(s, n, eom_names)) { t->eom = i; t->attr[i] |= TOK_ATTR_CONTROL; }
        if (name_in(s, n, fim_names)) t->attr[i] |= TOK_ATTR_CONTROL;
        if (name_in(s, n, fim_eog_names)) { t->attr[i] |= TOK_ATTR_CONTROL; t->eog[i] = 1; }
        if (name_in(s, n, eog_names)) { t->attr[i] |= TOK_ATTR_CONTROL; t->eog[i] = 1; }
    }
    if (t->eos >= 0) t->eog[t->eos] = 1;
    if (t->eot >= 0) t->eog[t->eot] = 1;
    if (t->eom >= 0) t->eog[t->eom] = 1;

    /* gpt-oss (o200k_harmony) as llama.cpp loads it: <|channel|>, <|message|>, <|start|> and
     * <|constrain|> become user-defined (matched in any text, always rendered); when <|return|>
     * and <|call|> end generation, <|end|> does not, and becomes user-defined too */
    int32_t harmony_end = QFIT_TOKEN_NONE;
    bool harmony_return = false, harmony_call = false;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        const char *s = t->vocab.blob + t->vocab.off[i];
        size_t n = t->vocab.len[i];
        if (name_in(s, n, harmony_user_names)) t->attr[i] = TOK_ATTR_USER;
        if (!t->eog[i]) continue;
        if (n == 10 && memcmp(s, "<|return|>", 10) == 0) harmony_return = true;
        else if (n == 8 && memcmp(s, "<|call|>", 8) == 0) harmony_call = true;
        else if (n == 7 && memcmp(s, "<|end|>", 7) == 0) harmony_end = i;
    }
    if (harmony_return && harmony_call && harmony_end >= 0) {
        t->eog[harmony_end] = 0;
        t->attr[harmony_end] = TOK_ATTR_USER;
    }

    /* whitespace stripping next to special tokens (llama.cpp's per-model rules) */
    if (p->strip == QFIT_TOK_STRIP_PHI3) {
        for (int32_t i = 0; i < t->n_vocab; i++)
            if (t->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_USER | TOK_ATTR_UNKNOWN)) t->attr[i] |= TOK_ATTR_RSTRIP;
        static const char *const need[] = { "</s>", "<unk>", "<s>", "<|endoftext|>" };
        for (size_t k = 0; k < sizeof need / sizeof need[0]; k++) {
            const int32_t id = vocab_find(t, need[k], strlen(need[k]));
            if (id < 0) {
                snprintf(err, err_len, "a phi3 vocabulary without '%s' (llama.cpp sets its whitespace stripping "
                         "by name and refuses such a file too)", need[k]);
                goto fail;
            }
            if (k == 0) t->attr[id] |= TOK_ATTR_RSTRIP;
            else t->attr[id] &= (uint8_t) ~TOK_ATTR_RSTRIP;
        }
    } else if (p->strip == QFIT_TOK_STRIP_MASK) {
        const int32_t id = vocab_find(t, "<mask>", 6);
        if (id < 0) {   /* llama.cpp only warns here: the text is tokenized without the rule */
            snprintf(err, err_len, "this vocabulary should have a '<mask>' token (reconvert the model)");
            goto fail;
        }
        t->attr[id] |= TOK_ATTR_LSTRIP;
    }

    /* special tokens, longest text first */
    t->special = malloc(sizeof *t->special * (size_t) nv);
    if (!t->special) { snprintf(err, err_len, "out of memory"); goto fail; }
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_USER | TOK_ATTR_UNKNOWN)) t->special[t->n_special++] = i;
    if (t->n_special > 1) {
        special_key *keys = malloc(sizeof *keys * (size_t) t->n_special);
        if (!keys) { snprintf(err, err_len, "out of memory"); goto fail; }
        for (int64_t k = 0; k < t->n_special; k++)
            keys[k] = (special_key) { t->vocab.len[t->special[k]], t->special[k] };
        qsort(keys, (size_t) t->n_special, sizeof *keys, cmp_special);
        for (int64_t k = 0; k < t->n_special; k++) t->special[k] = keys[k].id;
        free(keys);
    }

    if (t->model == QFIT_TOK_BPE) build_byte_maps(t);

    /* newline token */
    t->nl = QFIT_TOKEN_NONE;
    if (t->model == QFIT_TOK_WPM) {
        t->nl = t->pad;   /* llama.cpp: the padding token */
    } else if (t->model == QFIT_TOK_SPM) {
        t->nl = spm_byte_token(t, '\n');
        if (t->nl < 0 || t->nl == t->unk) {
            int32_t a = vocab_find(t, "<0x0A>", 6), b = vocab_find(t, "\n", 1);
            t->nl = a >= 0 ? a : b >= 0 ? b : t->pad;
        }
    } else {
        int32_t nl[4];
        int64_t k = qfit_tokenize(t, "\n", 1, false, false, nl, 4);
        t->nl = k > 0 ? nl[0] : t->pad;
    }
    return t;
fail:
    qfit_tokenizer_free(t);
    return NULL;
}

void qfit_tokenizer_free(qfit_tokenizer *t)
{
    if (!t) return;
    tok_strtab_free(&t->vocab);
    tok_strtab_free(&t->merges);
    free(t->score);
    free(t->type);
    free(t->attr);
    free(t->eog);
    free(t->special);
    tok_pretok_free(t->pretok);
    free(t);
}

/* ================================================================ accessors */

qfit_tok_model qfit_tokenizer_model(const qfit_tokenizer *t) { return t->model; }
const char *qfit_tokenizer_pre(const qfit_tokenizer *t) { return t->pre; }
int32_t qfit_tokenizer_n_vocab(const qfit_tokenizer *t) { return t->n_vocab; }
int32_t qfit_tokenizer_bos(const qfit_tokenizer *t) { return t->bos; }
int32_t qfit_tokenizer_eos(const qfit_tokenizer *t) { return t->eos; }
int32_t qfit_tokenizer_eot(const qfit_tokenizer *t) { return t->eot; }
int32_t qfit_tokenizer_eom(const qfit_tokenizer *t) { return t->eom; }
int32_t qfit_tokenizer_unk(const qfit_tokenizer *t) { return t->unk; }
int32_t qfit_tokenizer_pad(const qfit_tokenizer *t) { return t->pad; }
int32_t qfit_tokenizer_nl(const qfit_tokenizer *t) { return t->nl; }
int32_t qfit_tokenizer_sep(const qfit_tokenizer *t) { return t->sep; }
int32_t qfit_tokenizer_cls(const qfit_tokenizer *t) { return t->model == QFIT_TOK_WPM ? t->bos : QFIT_TOKEN_NONE; }
int32_t qfit_tokenizer_mask(const qfit_tokenizer *t) { return t->mask; }
bool qfit_tokenizer_add_sep(const qfit_tokenizer *t) { return t->add_sep; }
bool qfit_tokenizer_add_bos(const qfit_tokenizer *t) { return t->add_bos; }
bool qfit_tokenizer_add_eos(const qfit_tokenizer *t) { return t->add_eos; }
bool qfit_tokenizer_add_space_prefix(const qfit_tokenizer *t) { return t->add_space_prefix; }

bool qfit_tokenizer_is_eog(const qfit_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab && t->eog[id];
}

bool qfit_tokenizer_is_control(const qfit_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab && (t->attr[id] & TOK_ATTR_CONTROL);
}

const char *qfit_tokenizer_token_text(const qfit_tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->vocab.len[id];
    return t->vocab.blob + t->vocab.off[id];
}

float qfit_tokenizer_token_score(const qfit_tokenizer *t, int32_t id)
{
    return (id >= 0 && id < t->n_vocab) ? t->score[id] : 0.0f;
}

qfit_token_type qfit_tokenizer_token_type(const qfit_tokenizer *t, int32_t id)
{
    return (id >= 0 && id < t->n_vocab) ? (qfit_token_type) t->type[id] : QFIT_TOKEN_TYPE_UNDEFINED;
}

int32_t qfit_tokenizer_find(const qfit_tokenizer *t, const char *text, size_t len)
{
    return vocab_find(t, text, len);
}
