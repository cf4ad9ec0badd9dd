/* The compiled form of a grammar. Internal to src/grammar: do not include from
 * other modules.
 *
 * Every rule is a list of alternatives; an alternative is a run of elements in
 * el[] ending with an END element. Groups and repetitions are compiled into
 * generated rules (x* becomes R ::= x R | "", and so on), so the matcher only
 * knows three element kinds. */
#ifndef QFIT_GRAMMAR_INT_H
#define QFIT_GRAMMAR_INT_H

#include <stdint.h>

#include "qfit/grammar.h"

enum { GE_END = 0, GE_CHAR = 1, GE_REF = 2 };

typedef struct {
    uint32_t type;   /* GE_* */
    uint32_t arg;    /* GE_CHAR: char set index; GE_REF: rule index */
} gelem;

typedef struct {
    uint32_t first, n;   /* ranges rng[2*first .. 2*(first+n)) as lo, hi pairs (inclusive) */
    uint32_t neg;        /* 1: the complement of the ranges */
} gcharset;

typedef struct {
    uint32_t first_alt, n_alt;   /* alt[first_alt .. first_alt + n_alt): element positions */
    char *name;                  /* NULL for generated rules */
    uint32_t owner;              /* the named rule whose definition made it (itself if named) */
} grule;

struct qfit_grammar {
    gelem *el;
    uint32_t n_el;
    uint32_t *alt;
    uint32_t n_alt;
    grule *rule;
    uint32_t n_rule;
    gcharset *cs;
    uint32_t n_cs;
    uint32_t *rng;
    uint32_t n_rng;   /* pairs */
    uint32_t root;
};

/* cp is in char set cs */
static inline int gcs_match(const struct qfit_grammar *g, uint32_t cs, uint32_t cp)
{
    const gcharset *c = &g->cs[cs];
    const uint32_t *r = g->rng + 2 * (size_t)c->first;
    for (uint32_t i = 0; i < c->n; i++)
        if (cp >= r[2 * i] && cp <= r[2 * i + 1]) return !c->neg;
    return (int)c->neg;
}

#endif
