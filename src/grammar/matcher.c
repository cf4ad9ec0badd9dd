/* The grammar matcher (a pushdown automaton over code points, fed bytes) and
 * token masks over a vocabulary trie.
 *
 * Parse stacks are linked lists of frames (position in el[], parent frame) that
 * are hash-consed: equal stacks are one frame id, so a matcher state is a sorted
 * array of frame ids (the tops), and states themselves are interned. Frame 0 is
 * the empty stack: a state holding it is complete. The top frame of every other
 * stack points at a GE_CHAR element. Transitions (state, byte) -> state are
 * memoised, which makes the trie walk of a mask mostly table lookups. The caches
 * are bounded: past a size they are rebuilt around the current state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/grammar_int.h"

#define DEAD UINT32_MAX          /* no stack survives */
#define FAIL (UINT32_MAX - 1)    /* a limit or out of memory: m->err says which */
#define MAX_WORK (1u << 20)      /* frames explored by one expansion */
#define FAST_MIN_NODES 64        /* trie subtrees at least this big try the loop shortcut */

typedef struct { uint32_t pos, parent, depth; } gframe;

typedef struct {
    uint32_t off, n;        /* tops in m->stk[off .. off + n), sorted (0 = complete) */
    uint32_t pcp;           /* a partial UTF-8 character: its bits so far */
    uint8_t pneed, ptot;    /* continuation bytes still needed, its total length */
    uint8_t loop_done, loop_nonascii;
    uint8_t loop_ascii[16]; /* ASCII bytes b with step(state, b) == state */
} gstate;

typedef struct { uint64_t key; uint32_t val; } tentry;   /* key 0 = empty */

struct qfit_grammar_matcher {
    const qfit_grammar *g;
    gframe *fr; uint32_t n_fr, cap_fr;
    uint32_t *fr_tab; uint32_t fr_tab_cap;          /* ids, UINT32_MAX = empty */
    gstate *st; uint32_t n_st, cap_st;
    uint32_t *st_tab; uint32_t st_tab_cap;
    uint32_t *stk; uint32_t n_stk, cap_stk;
    tentry *tr; uint32_t n_tr, tr_cap;
    tentry *seen; uint32_t seen_cap, seen_n;        /* visited (pos, parent) of one expansion: */
    uint32_t seen_stamp;                            /* entries with val == seen_stamp */
    uint64_t *work; uint32_t n_work, cap_work;
    uint32_t *res; uint32_t n_res, cap_res;
    uint64_t *dfs; uint32_t cap_dfs;                /* (trie node, state) pairs of a mask walk */
    uint32_t cur;
    char err[256];
};

struct qfit_grammar_vocab {
    int32_t n_vocab;
    struct tnode *node;
    uint32_t n_node;
    int32_t *order;     /* token ids sorted by their bytes */
};

typedef struct tnode {
    uint32_t sub_end;                 /* preorder index just past the subtree */
    uint32_t tok_lo, tok_here, tok_hi;/* order[tok_lo, tok_lo + tok_here): end here; [tok_lo, tok_hi): the subtree */
    uint8_t byte, utf8ok, nonascii, pad;
    uint8_t ascii[16];                /* ASCII bytes below this node */
} tnode;

static uint32_t failf(qfit_grammar_matcher *m, const char *msg, unsigned v)
{
    snprintf(m->err, sizeof m->err, msg, v);
    return FAIL;
}

static uint32_t fail_oom(qfit_grammar_matcher *m)
{
    snprintf(m->err, sizeof m->err, "out of memory");
    return FAIL;
}

static int grow(void **a, uint32_t *cap, uint64_t need, size_t sz)
{
    if (need <= *cap) return 0;
    if (need > UINT32_MAX / 2) return -1;
    uint64_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *p = realloc(*a, (size_t)c * sz);
    if (!p) return -1;
    *a = p;
    *cap = (uint32_t)c;
    return 0;
}

static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* ------------------------------------------------- key -> value hash tables */

static uint32_t *tab_find(tentry *t, uint32_t cap, uint64_t key)
{
    if (!cap) return NULL;
    for (uint32_t h = (uint32_t)mix(key) & (cap - 1);; h = (h + 1) & (cap - 1)) {
        if (t[h].key == key) return &t[h].val;
        if (t[h].key == 0) return NULL;
    }
}

static int tab_put(tentry **t, uint32_t *cap, uint32_t *n, uint64_t key, uint32_t val)
{
    if ((*n + 1) * 2 > *cap) {
        const uint32_t nc = *cap ? *cap * 2 : 1024;
        tentry *nt = calloc(nc, sizeof *nt);
        if (!nt) return -1;
        for (uint32_t k = 0; k < *cap; k++) {
            if (!(*t)[k].key) continue;
            uint32_t h = (uint32_t)mix((*t)[k].key) & (nc - 1);
            while (nt[h].key) h = (h + 1) & (nc - 1);
            nt[h] = (*t)[k];
        }
        free(*t);
        *t = nt;
        *cap = nc;
    }
    uint32_t h = (uint32_t)mix(key) & (*cap - 1);
    while ((*t)[h].key && (*t)[h].key != key) h = (h + 1) & (*cap - 1);
    if (!(*t)[h].key) (*n)++;
    (*t)[h] = (tentry){ key, val };
    return 0;
}

/* ------------------------------------------------------------------ frames */

static uint32_t frame(qfit_grammar_matcher *m, uint32_t pos, uint32_t parent)
{
    const uint64_t key = ((uint64_t)pos << 32 | parent) + 1;
    uint32_t h = (uint32_t)mix(key) & (m->fr_tab_cap - 1);
    for (; m->fr_tab[h] != UINT32_MAX; h = (h + 1) & (m->fr_tab_cap - 1)) {
        const gframe *f = &m->fr[m->fr_tab[h]];
        if (f->pos == pos && f->parent == parent) return m->fr_tab[h];
    }
    const uint32_t depth = m->fr[parent].depth + 1;
    if (depth > QFIT_GRAMMAR_MAX_DEPTH) return failf(m, "a parse stack is deeper than %u frames", QFIT_GRAMMAR_MAX_DEPTH);
    if (grow((void **)&m->fr, &m->cap_fr, (uint64_t)m->n_fr + 1, sizeof *m->fr)) return fail_oom(m);
    const uint32_t id = m->n_fr++;
    m->fr[id] = (gframe){ pos, parent, depth };
    m->fr_tab[h] = id;
    if (m->n_fr * 2 > m->fr_tab_cap) {   /* rehash */
        const uint32_t nc = m->fr_tab_cap * 2;
        uint32_t *nt = malloc((size_t)nc * sizeof *nt);
        if (!nt) return fail_oom(m);
        memset(nt, 0xFF, (size_t)nc * sizeof *nt);
        for (uint32_t k = 1; k < m->n_fr; k++) {
            uint32_t j = (uint32_t)mix(((uint64_t)m->fr[k].pos << 32 | m->fr[k].parent) + 1) & (nc - 1);
            while (nt[j] != UINT32_MAX) j = (j + 1) & (nc - 1);
            nt[j] = k;
        }
        free(m->fr_tab);
        m->fr_tab = nt;
        m->fr_tab_cap = nc;
    }
    return id;
}

/* ------------------------------------------------------------------ states */

static uint64_t state_hash(const uint32_t *ids, uint32_t n, uint32_t pcp, uint32_t pneed)
{
    uint64_t h = mix((uint64_t)pcp << 8 | pneed);
    for (uint32_t k = 0; k < n; k++) h = mix(h ^ ids[k]) + k;
    return h;
}

/* the state with tops m->res (sorted, unique) and this partial character */
static uint32_t state_intern(qfit_grammar_matcher *m, uint32_t pcp, uint8_t pneed, uint8_t ptot)
{
    const uint32_t n = m->n_res;
    uint32_t h = (uint32_t)state_hash(m->res, n, pcp, pneed) & (m->st_tab_cap - 1);
    for (; m->st_tab[h] != UINT32_MAX; h = (h + 1) & (m->st_tab_cap - 1)) {
        const gstate *s = &m->st[m->st_tab[h]];
        if (s->n == n && s->pcp == pcp && s->pneed == pneed && s->ptot == ptot &&
            !memcmp(m->stk + s->off, m->res, (size_t)n * sizeof *m->res))
            return m->st_tab[h];
    }
    if (grow((void **)&m->st, &m->cap_st, (uint64_t)m->n_st + 1, sizeof *m->st) ||
        grow((void **)&m->stk, &m->cap_stk, (uint64_t)m->n_stk + n, sizeof *m->stk))
        return fail_oom(m);
    const uint32_t id = m->n_st++;
    gstate *s = &m->st[id];
    memset(s, 0, sizeof *s);
    s->off = m->n_stk;
    s->n = n;
    s->pcp = pcp;
    s->pneed = pneed;
    s->ptot = ptot;
    memcpy(m->stk + m->n_stk, m->res, (size_t)n * sizeof *m->res);
    m->n_stk += n;
    m->st_tab[h] = id;
    if (m->n_st * 2 > m->st_tab_cap) {
        const uint32_t nc = m->st_tab_cap * 2;
        uint32_t *nt = malloc((size_t)nc * sizeof *nt);
        if (!nt) return fail_oom(m);
        memset(nt, 0xFF, (size_t)nc * sizeof *nt);
        for (uint32_t k = 0; k < m->n_st; k++) {
            const gstate *q = &m->st[k];
            uint32_t j = (uint32_t)state_hash(m->stk + q->off, q->n, q->pcp, q->pneed) & (nc - 1);
            while (nt[j] != UINT32_MAX) j = (j + 1) & (nc - 1);
            nt[j] = k;
        }
        free(m->st_tab);
        m->st_tab = nt;
        m->st_tab_cap = nc;
    }
    return id;
}

/* --------------------------------------------------------------- expansion */

/* 1 if (pos, parent) was already visited by this expansion, else marks it (0); -1 on error */
static int seen_mark(qfit_grammar_matcher *m, uint64_t key)
{
    if ((m->seen_n + 1) * 2 > m->seen_cap) {
        const uint32_t nc = m->seen_cap ? m->seen_cap * 2 : 1024;
        tentry *nt = calloc(nc, sizeof *nt);
        if (!nt) { fail_oom(m); return -1; }
        for (uint32_t k = 0; k < m->seen_cap; k++) {
            if (m->seen[k].val != m->seen_stamp) continue;
            uint32_t h = (uint32_t)mix(m->seen[k].key) & (nc - 1);
            while (nt[h].val == m->seen_stamp) h = (h + 1) & (nc - 1);
            nt[h] = m->seen[k];
        }
        free(m->seen);
        m->seen = nt;
        m->seen_cap = nc;
    }
    uint32_t h = (uint32_t)mix(key) & (m->seen_cap - 1);
    for (; m->seen[h].val == m->seen_stamp; h = (h + 1) & (m->seen_cap - 1))
        if (m->seen[h].key == key) return 1;
    m->seen[h] = (tentry){ key, m->seen_stamp };
    m->seen_n++;
    return 0;
}

static int work_push(qfit_grammar_matcher *m, uint32_t pos, uint32_t parent)
{
    const int seen = seen_mark(m, (uint64_t)pos << 32 | parent);
    if (seen) return seen < 0 ? -1 : 0;
    if (m->seen_n >= MAX_WORK) { failf(m, "a grammar expansion visits more than %u frames", MAX_WORK); return -1; }
    if (grow((void **)&m->work, &m->cap_work, (uint64_t)m->n_work + 1, sizeof *m->work)) { fail_oom(m); return -1; }
    m->work[m->n_work++] = (uint64_t)pos << 32 | parent;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Expand the work list until every stack's top is a character (or the stack is
 * empty), then intern the resulting state. */
static uint32_t close_state(qfit_grammar_matcher *m)
{
    const qfit_grammar *g = m->g;
    m->n_res = 0;
    while (m->n_work) {
        const uint64_t w = m->work[--m->n_work];
        const uint32_t pos = (uint32_t)(w >> 32), parent = (uint32_t)w;
        const gelem e = g->el[pos];
        if (e.type == GE_CHAR) {
            const uint32_t id = frame(m, pos, parent);
            if (id == FAIL) return FAIL;
            if (grow((void **)&m->res, &m->cap_res, (uint64_t)m->n_res + 1, sizeof *m->res))
                return fail_oom(m);
            m->res[m->n_res++] = id;
        } else if (e.type == GE_END) {
            if (parent == 0) {
                if (grow((void **)&m->res, &m->cap_res, (uint64_t)m->n_res + 1, sizeof *m->res))
                    return fail_oom(m);
                m->res[m->n_res++] = 0;
            } else if (work_push(m, m->fr[parent].pos, m->fr[parent].parent)) return FAIL;
        } else {
            /* a reference: continue after it when the rule ends (a tail call keeps the parent) */
            uint32_t np = parent;
            if (g->el[pos + 1].type != GE_END && (np = frame(m, pos + 1, parent)) == FAIL) return FAIL;
            const grule *r = &g->rule[e.arg];
            for (uint32_t a = 0; a < r->n_alt; a++)
                if (work_push(m, g->alt[r->first_alt + a], np)) return FAIL;
        }
    }
    if (m->n_res == 0) return DEAD;
    qsort(m->res, m->n_res, sizeof *m->res, cmp_u32);
    uint32_t u = 0;
    for (uint32_t k = 0; k < m->n_res; k++)
        if (u == 0 || m->res[u - 1] != m->res[k]) m->res[u++] = m->res[k];
    m->n_res = u;
    if (u > QFIT_GRAMMAR_MAX_STACKS) return failf(m, "more than %u parse stacks are alive", QFIT_GRAMMAR_MAX_STACKS);
    return state_intern(m, 0, 0, 0);
}

/* a new expansion: empty work list and visited set (stale stamps count as empty) */
static void work_reset(qfit_grammar_matcher *m)
{
    m->n_work = 0;
    m->seen_n = 0;
    if (++m->seen_stamp == 0) {
        if (m->seen) memset(m->seen, 0, (size_t)m->seen_cap * sizeof *m->seen);
        m->seen_stamp = 1;
    }
}

/* the state after code point cp from state s (s may hold a partial character:
 * its stacks are those before the character) */
static uint32_t advance_cp(qfit_grammar_matcher *m, uint32_t s, uint32_t cp)
{
    work_reset(m);
    const gstate st = m->st[s];
    for (uint32_t k = 0; k < st.n; k++) {
        const uint32_t id = m->stk[st.off + k];
        if (id == 0) continue;
        const gframe f = m->fr[id];
        if (gcs_match(m->g, m->g->el[f.pos].arg, cp) && work_push(m, f.pos + 1, f.parent)) return FAIL;
    }
    return close_state(m);
}

/* some code point in [lo, hi] (surrogates excluded) is in char set cs */
static int cs_meets(const qfit_grammar *g, uint32_t cs, uint32_t lo, uint32_t hi)
{
    const gcharset *c = &g->cs[cs];
    const uint32_t *r = g->rng + 2 * (size_t)c->first;
    const uint32_t part[2][2] = { { lo, hi < 0xD7FF ? hi : 0xD7FF }, { lo > 0xE000 ? lo : 0xE000, hi } };
    for (int q = 0; q < 2; q++) {
        const uint32_t a = part[q][0], b = part[q][1];
        if (a > b) continue;
        if (!c->neg) {
            for (uint32_t i = 0; i < c->n; i++)
                if (r[2 * i] <= b && r[2 * i + 1] >= a) return 1;
        } else {   /* find a point of [a, b] outside every range */
            uint64_t x = a;
            for (uint32_t round = 0; round <= c->n && x <= b; round++) {
                uint32_t i = 0;
                while (i < c->n && !(x >= r[2 * i] && x <= r[2 * i + 1])) i++;
                if (i == c->n) return 1;
                x = (uint64_t)r[2 * i + 1] + 1;
            }
        }
    }
    return 0;
}

static const uint32_t utf8_min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
static const uint32_t utf8_max[5] = { 0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF };

/* a partial character: alive if some top can take a character it may become */
static uint32_t partial(qfit_grammar_matcher *m, uint32_t s, uint32_t pcp, uint8_t need, uint8_t tot)
{
    uint32_t lo = pcp << (6 * need), hi = lo | ((1u << (6 * need)) - 1);
    if (lo < utf8_min[tot]) lo = utf8_min[tot];
    if (hi > utf8_max[tot]) hi = utf8_max[tot];
    if (lo > hi || (lo >= 0xD800 && hi <= 0xDFFF)) return DEAD;
    const gstate st = m->st[s];
    int alive = 0;
    for (uint32_t k = 0; k < st.n && !alive; k++) {
        const uint32_t id = m->stk[st.off + k];
        if (id) alive = cs_meets(m->g, m->g->el[m->fr[id].pos].arg, lo, hi);
    }
    if (!alive) return DEAD;
    if (grow((void **)&m->res, &m->cap_res, st.n, sizeof *m->res)) return fail_oom(m);
    memcpy(m->res, m->stk + st.off, (size_t)st.n * sizeof *m->res);
    m->n_res = st.n;
    return state_intern(m, pcp, need, tot);
}

static uint32_t step_uncached(qfit_grammar_matcher *m, uint32_t s, uint8_t b)
{
    const gstate st = m->st[s];
    if (st.pneed == 0) {
        if (b < 0x80) return advance_cp(m, s, b);
        if (b >= 0xC2 && b <= 0xDF) return partial(m, s, b & 0x1Fu, 1, 2);
        if (b >= 0xE0 && b <= 0xEF) return partial(m, s, b & 0x0Fu, 2, 3);
        if (b >= 0xF0 && b <= 0xF4) return partial(m, s, b & 0x07u, 3, 4);
        return DEAD;
    }
    if ((b & 0xC0) != 0x80) return DEAD;
    const uint32_t cp = st.pcp << 6 | (b & 0x3Fu);
    if (st.pneed > 1) return partial(m, s, cp, (uint8_t)(st.pneed - 1), st.ptot);
    if (cp < utf8_min[st.ptot] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return DEAD;
    return advance_cp(m, s, cp);
}

static uint32_t step(qfit_grammar_matcher *m, uint32_t s, uint8_t b)
{
    const uint64_t key = ((uint64_t)s << 8 | b) + 1;
    const uint32_t *v = tab_find(m->tr, m->tr_cap, key);
    if (v) return *v;
    const uint32_t to = step_uncached(m, s, b);
    if (to != FAIL && tab_put(&m->tr, &m->tr_cap, &m->n_tr, key, to)) return fail_oom(m);
    return to;
}

/* ------------------------------------------------------- cache management */

static void clear_caches(qfit_grammar_matcher *m)
{
    m->n_fr = 1;   /* frame 0: the empty stack */
    memset(m->fr_tab, 0xFF, (size_t)m->fr_tab_cap * sizeof *m->fr_tab);
    m->n_st = 0;
    m->n_stk = 0;
    memset(m->st_tab, 0xFF, (size_t)m->st_tab_cap * sizeof *m->st_tab);
    if (m->tr) memset(m->tr, 0, (size_t)m->tr_cap * sizeof *m->tr);
    m->n_tr = 0;
}

static uint32_t initial_state(qfit_grammar_matcher *m)
{
    work_reset(m);
    const grule *r = &m->g->rule[m->g->root];
    for (uint32_t a = 0; a < r->n_alt; a++)
        if (work_push(m, m->g->alt[r->first_alt + a], 0)) return FAIL;
    const uint32_t s = close_state(m);
    if (s != DEAD) return s;
    snprintf(m->err, sizeof m->err, "the grammar accepts nothing");
    return FAIL;
}

/* Rebuild the caches around the current state when they grew large (a long
 * generation): its stacks are copied out, everything else is dropped. */
static int maybe_compact(qfit_grammar_matcher *m)
{
    if (m->n_fr < (1u << 21) && m->n_st < (1u << 19) && m->n_stk < (1u << 23) && m->n_tr < (1u << 22)) return 0;
    const gstate st = m->st[m->cur];
    uint64_t total = 0;
    for (uint32_t k = 0; k < st.n; k++) total += m->fr[m->stk[st.off + k]].depth + 1;
    uint32_t *pos = malloc(((size_t)total + 1) * sizeof *pos);
    if (!pos) { fail_oom(m); return -1; }
    /* each stack as its depth, then its positions bottom first */
    uint32_t np = 0;
    for (uint32_t k = 0; k < st.n; k++) {
        uint32_t id = m->stk[st.off + k];
        const uint32_t d = m->fr[id].depth;
        pos[np] = d;
        for (uint32_t j = d; j > 0; j--, id = m->fr[id].parent) pos[np + j] = m->fr[id].pos;
        np += d + 1;
    }
    clear_caches(m);
    int rc = 0;
    if (grow((void **)&m->res, &m->cap_res, st.n, sizeof *m->res)) rc = (int)fail_oom(m);
    m->n_res = 0;
    for (uint32_t at = 0; !rc && at < np; at += pos[at] + 1) {
        uint32_t id = 0;
        for (uint32_t j = 1; j <= pos[at] && id != FAIL; j++) id = frame(m, pos[at + j], id);
        if (id == FAIL) rc = -1;
        else m->res[m->n_res++] = id;
    }
    free(pos);
    if (rc) return -1;
    qsort(m->res, m->n_res, sizeof *m->res, cmp_u32);
    m->cur = state_intern(m, st.pcp, st.pneed, st.ptot);
    return m->cur == FAIL ? -1 : 0;
}

/* ---------------------------------------------------------------- public */

qfit_grammar_matcher *qfit_grammar_matcher_new(const qfit_grammar *g, char *err, size_t err_len)
{
    qfit_grammar_matcher *m = g ? calloc(1, sizeof *m) : NULL;
    if (!m) {
        if (err && err_len) snprintf(err, err_len, g ? "out of memory" : "no grammar");
        return NULL;
    }
    m->g = g;
    m->fr_tab_cap = 1024;
    m->st_tab_cap = 1024;
    m->fr_tab = malloc(m->fr_tab_cap * sizeof *m->fr_tab);
    m->st_tab = malloc(m->st_tab_cap * sizeof *m->st_tab);
    if (!m->fr_tab || !m->st_tab || grow((void **)&m->fr, &m->cap_fr, 1, sizeof *m->fr)) {
        qfit_grammar_matcher_free(m);
        if (err && err_len) snprintf(err, err_len, "out of memory");
        return NULL;
    }
    m->fr[0] = (gframe){ UINT32_MAX, 0, 0 };
    clear_caches(m);
    m->cur = initial_state(m);
    if (m->cur == FAIL) {
        if (err && err_len) snprintf(err, err_len, "%s", m->err);
        qfit_grammar_matcher_free(m);
        return NULL;
    }
    return m;
}

void qfit_grammar_matcher_free(qfit_grammar_matcher *m)
{
    if (!m) return;
    free(m->fr);
    free(m->fr_tab);
    free(m->st);
    free(m->st_tab);
    free(m->stk);
    free(m->tr);
    free(m->seen);
    free(m->work);
    free(m->res);
    free(m->dfs);
    free(m);
}

int qfit_grammar_matcher_reset(qfit_grammar_matcher *m)
{
    clear_caches(m);
    m->cur = initial_state(m);
    return m->cur == FAIL ? -1 : 0;
}

static int run_bytes(qfit_grammar_matcher *m, const char *bytes, size_t n, int advance)
{
    if (maybe_compact(m)) return -1;
    uint32_t s = m->cur;
    for (size_t k = 0; k < n; k++) {
        s = step(m, s, (uint8_t)bytes[k]);
        if (s == FAIL) return -1;
        if (s == DEAD) return 0;
    }
    if (advance) m->cur = s;
    return 1;
}

int qfit_grammar_matcher_accept(qfit_grammar_matcher *m, const char *bytes, size_t n)
{
    return run_bytes(m, bytes, n, 1);
}

int qfit_grammar_matcher_accepts(qfit_grammar_matcher *m, const char *bytes, size_t n)
{
    return run_bytes(m, bytes, n, 0);
}

bool qfit_grammar_matcher_complete(const qfit_grammar_matcher *m)
{
    const gstate *s = &m->st[m->cur];
    return s->pneed == 0 && s->n > 0 && m->stk[s->off] == 0;
}

bool qfit_grammar_matcher_can_continue(const qfit_grammar_matcher *m)
{
    const gstate *s = &m->st[m->cur];
    return s->pneed > 0 || (s->n > 0 && m->stk[s->off + s->n - 1] != 0);
}

const char *qfit_grammar_matcher_error(const qfit_grammar_matcher *m) { return m->err; }

/* ------------------------------------------------------------ vocabulary */

/* bytes[0..n) is well-formed UTF-8 that may end inside a character */
static int utf8_prefix_ok(const uint8_t *s, size_t n)
{
    size_t k = 0;
    while (k < n) {
        const uint8_t b = s[k];
        if (b < 0x80) { k++; continue; }
        uint8_t lo2 = 0x80, hi2 = 0xBF;   /* the allowed second byte */
        size_t len;
        if (b >= 0xC2 && b <= 0xDF) len = 2;
        else if (b >= 0xE0 && b <= 0xEF) { len = 3; if (b == 0xE0) lo2 = 0xA0; if (b == 0xED) hi2 = 0x9F; }
        else if (b >= 0xF0 && b <= 0xF4) { len = 4; if (b == 0xF0) lo2 = 0x90; if (b == 0xF4) hi2 = 0x8F; }
        else return 0;
        for (size_t j = 1; j < len && k + j < n; j++) {
            const uint8_t c = s[k + j];
            if (j == 1 ? (c < lo2 || c > hi2) : (c & 0xC0) != 0x80) return 0;
        }
        k += len;
    }
    return 1;
}

typedef struct { const uint8_t *s; size_t n; int32_t id; } vtok;

static int cmp_vtok(const void *a, const void *b)
{
    const vtok *x = a, *y = b;
    const size_t n = x->n < y->n ? x->n : y->n;
    const int c = memcmp(x->s, y->s, n);
    if (c) return c;
    if (x->n != y->n) return x->n < y->n ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* a finished node hands its byte and the bytes below it to its parent */
static void trie_close(tnode *nodes, uint32_t child, uint32_t parent, uint32_t n_node, uint32_t tok_hi)
{
    tnode *c = &nodes[child], *p = &nodes[parent];
    c->sub_end = n_node;
    c->tok_hi = tok_hi;
    for (int k = 0; k < 16; k++) p->ascii[k] |= c->ascii[k];
    if (c->byte < 0x80) p->ascii[c->byte >> 3] |= (uint8_t)(1u << (c->byte & 7));
    p->nonascii |= c->nonascii | (c->byte >= 0x80);
}

qfit_grammar_vocab *qfit_grammar_vocab_new(int32_t n_vocab, const char *const *bytes, const size_t *lens,
                                           char *err, size_t err_len)
{
    if (n_vocab < 1 || !bytes || !lens) {
        if (err && err_len) snprintf(err, err_len, "qfit_grammar_vocab_new: n_vocab %d or no arrays", (int)n_vocab);
        return NULL;
    }
    qfit_grammar_vocab *v = calloc(1, sizeof *v);
    vtok *t = malloc((size_t)n_vocab * sizeof *t);
    uint32_t *path = NULL;
    uint8_t *copy = NULL;
    uint64_t total = 0;
    if (!v || !t) goto oom;
    v->n_vocab = n_vocab;
    uint32_t n_tok = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        if (lens[i] == 0) continue;
        if (!bytes[i] || lens[i] > 65536) {
            if (err && err_len) snprintf(err, err_len, "token %d: %s", (int)i, bytes[i] ? "longer than 65536 bytes" : "no bytes");
            goto fail;
        }
        t[n_tok++] = (vtok){ (const uint8_t *)bytes[i], lens[i], i };
        total += lens[i];
    }
    qsort(t, n_tok, sizeof *t, cmp_vtok);
    /* nodes <= total bytes + the root; the longest token bounds the path */
    size_t max_len = 0;
    for (uint32_t i = 0; i < n_tok; i++) max_len = t[i].n > max_len ? t[i].n : max_len;
    if (total + 1 > UINT32_MAX / 2) goto oom;
    v->node = calloc((size_t)total + 1, sizeof *v->node);
    v->order = malloc(((size_t)n_tok + 1) * sizeof *v->order);
    path = malloc((max_len + 1) * sizeof *path);
    if (!v->node || !v->order || !path) goto oom;
    uint32_t n_node = 1, depth = 0;   /* path[0..depth]: the nodes of the previous token */
    path[0] = 0;
    v->node[0].utf8ok = 1;
    for (uint32_t i = 0; i < n_tok; i++) {
        v->order[i] = t[i].id;
        size_t lcp = 0;
        if (i > 0) {
            const size_t n = t[i - 1].n < t[i].n ? t[i - 1].n : t[i].n;
            while (lcp < n && t[i - 1].s[lcp] == t[i].s[lcp]) lcp++;
        }
        while (depth > lcp) { trie_close(v->node, path[depth], path[depth - 1], n_node, i); depth--; }
        for (size_t d = lcp; d < t[i].n; d++) {
            tnode *nd = &v->node[n_node];
            nd->byte = t[i].s[d];
            nd->tok_lo = i;
            nd->utf8ok = 1;
            path[++depth] = n_node++;
        }
        v->node[path[depth]].tok_here++;
        for (uint32_t d = 0; d <= depth; d++)
            if (v->node[path[d]].utf8ok && !utf8_prefix_ok(t[i].s + d, t[i].n - d)) v->node[path[d]].utf8ok = 0;
    }
    while (depth > 0) { trie_close(v->node, path[depth], path[depth - 1], n_node, n_tok); depth--; }
    v->node[0].sub_end = n_node;
    v->node[0].tok_hi = n_tok;
    v->n_node = n_node;
    free(path);
    free(t);
    (void)copy;
    return v;
oom:
    if (err && err_len) snprintf(err, err_len, "out of memory");
fail:
    free(path);
    free(t);
    qfit_grammar_vocab_free(v);
    return NULL;
}

void qfit_grammar_vocab_free(qfit_grammar_vocab *v)
{
    if (!v) return;
    free(v->node);
    free(v->order);
    free(v);
}

int32_t qfit_grammar_vocab_size(const qfit_grammar_vocab *v) { return v->n_vocab; }

/* which bytes loop back to state s (computed once per state) */
static int loop_info(qfit_grammar_matcher *m, uint32_t s)
{
    if (m->st[s].loop_done) return 0;
    uint8_t ascii[16] = { 0 };
    for (uint32_t b = 0; b < 0x80; b++) {
        const uint32_t to = step(m, s, (uint8_t)b);
        if (to == FAIL) return -1;
        if (to == s) ascii[b >> 3] |= (uint8_t)(1u << (b & 7));
    }
    /* code points >= 0x80: every character set of the tops is constant between
     * its range boundaries, so one code point per interval decides it */
    enum { MAX_CUTS = 256 };
    uint32_t cut[MAX_CUTS + 4];
    uint32_t nc = 0;
    int nonascii = 1;
    cut[nc++] = 0x80;
    cut[nc++] = 0xD800;
    cut[nc++] = 0xE000;
    cut[nc++] = 0x110000;
    const gstate st = m->st[s];
    for (uint32_t k = 0; k < st.n && nonascii; k++) {
        const uint32_t id = m->stk[st.off + k];
        if (!id) continue;
        const gcharset *c = &m->g->cs[m->g->el[m->fr[id].pos].arg];
        for (uint32_t i = 0; i < c->n && nonascii; i++) {
            const uint32_t lo = m->g->rng[2 * (size_t)(c->first + i)], hi1 = m->g->rng[2 * (size_t)(c->first + i) + 1] + 1;
            if (nc + 2 > MAX_CUTS) nonascii = 0;   /* too many: no shortcut */
            if (lo > 0x80 && lo < 0x110000) cut[nc++] = lo;
            if (hi1 > 0x80 && hi1 < 0x110000) cut[nc++] = hi1;
        }
    }
    if (nonascii) qsort(cut, nc, sizeof *cut, cmp_u32);
    for (uint32_t k = 0; k + 1 < nc && nonascii; k++) {
        if (cut[k] == cut[k + 1] || (cut[k] >= 0xD800 && cut[k] < 0xE000)) continue;
        const uint32_t to = advance_cp(m, s, cut[k]);
        if (to == FAIL) return -1;
        nonascii = to == s;
    }
    gstate *w = &m->st[s];
    memcpy(w->loop_ascii, ascii, 16);
    w->loop_nonascii = (uint8_t)nonascii;
    w->loop_done = 1;
    return 0;
}

static uint32_t mark(const qfit_grammar_vocab *v, uint32_t lo, uint32_t hi, uint8_t *allowed)
{
    for (uint32_t i = lo; i < hi; i++) allowed[v->order[i]] = 1;
    return hi - lo;
}

int64_t qfit_grammar_matcher_mask(qfit_grammar_matcher *m, const qfit_grammar_vocab *v, uint8_t *allowed)
{
    memset(allowed, 0, (size_t)v->n_vocab);
    if (maybe_compact(m)) return -1;
    int64_t count = 0;
    uint32_t sp = 0;
    if (grow((void **)&m->dfs, &m->cap_dfs, 1, sizeof *m->dfs)) goto oom;
    m->dfs[sp++] = (uint64_t)0 << 32 | m->cur;
    while (sp) {
        const uint64_t top = m->dfs[--sp];
        const uint32_t n = (uint32_t)(top >> 32), s = (uint32_t)top;
        const tnode *nd = &v->node[n];
        count += mark(v, nd->tok_lo, nd->tok_lo + nd->tok_here, allowed);
        if (nd->sub_end == n + 1) continue;   /* a leaf */
        if (nd->sub_end - n >= FAST_MIN_NODES && nd->utf8ok && m->st[s].pneed == 0) {
            if (loop_info(m, s)) goto fail;
            const gstate *st = &m->st[s];
            int all = !nd->nonascii || st->loop_nonascii;
            for (int k = 0; k < 16 && all; k++) all = (nd->ascii[k] & ~st->loop_ascii[k]) == 0;
            if (all) {   /* every token below stays in s */
                count += mark(v, nd->tok_lo + nd->tok_here, nd->tok_hi, allowed);
                continue;
            }
        }
        for (uint32_t c = n + 1; c < nd->sub_end; c = v->node[c].sub_end) {
            const uint32_t to = step(m, s, v->node[c].byte);
            if (to == FAIL) goto fail;
            if (to == DEAD) continue;
            if (grow((void **)&m->dfs, &m->cap_dfs, (uint64_t)sp + 1, sizeof *m->dfs)) goto oom;
            m->dfs[sp++] = (uint64_t)c << 32 | to;
            nd = &v->node[n];
        }
    }
    return count;
oom:
    fail_oom(m);
fail:
    memset(allowed, 0, (size_t)v->n_vocab);
    return -1;
}
