/* qfit — grammar-constrained generation: GBNF grammars (llama.cpp's syntax), a
 * matcher that advances over UTF-8 bytes, and token masks over a vocabulary.
 *
 * GBNF as accepted here:
 *   name ::= alternatives        one rule per definition; a rule ends at the end of
 *                                its line (newlines are allowed after '|' and
 *                                inside parentheses); names are [A-Za-z0-9_-]+
 *   a b                          sequence;  a | b  alternatives;  ( ... ) group
 *   "text"                       literal (escapes \n \r \t \\ \" \[ \] \xHH \uHHHH \UHHHHHHHH)
 *   [a-z0-9_] [^"\\]             character class, ranges, negation, the same escapes
 *   .                            any character
 *   x* x+ x? x{m} x{m,} x{m,n} x{,n}   repetition (m, n <= 10000)
 *   # comment                    to the end of the line
 * A rule named "root" is required (it is the start symbol). A reference to an
 * undefined rule, a rule defined twice and left recursion (a rule that can reach
 * itself, without consuming a character, from a place where something follows:
 * r ::= r "a", or through empty-able prefixes) are errors naming the rule and its
 * line:column. A rule that reaches itself only in last position (r ::= ("a"?)*)
 * is fine: the matcher follows such references without growing its stacks.
 * Unused rules are allowed. Limits (errors, never a crash): groups
 * nested more than QFIT_GRAMMAR_MAX_NESTING deep, more than QFIT_GRAMMAR_MAX_ELEMENTS
 * compiled elements, grammar text over QFIT_GRAMMAR_MAX_TEXT bytes.
 *
 * The matcher keeps the set of parse stacks that are alive after the bytes
 * accepted so far (a pushdown automaton; stacks are shared, deduplicated and
 * bounded: more than QFIT_GRAMMAR_MAX_STACKS alive stacks or a stack deeper than
 * QFIT_GRAMMAR_MAX_DEPTH is an error of the matcher, never "allow anything").
 * Characters are Unicode code points; a token may end inside a UTF-8 character
 * (the matcher keeps the partial character). Invalid UTF-8 is never accepted.
 *
 * Token masks: qfit_grammar_vocab holds the vocabulary's byte strings in a trie,
 * so tokens sharing a prefix are checked once; transitions are memoised per
 * matcher state, and a subtree whose bytes all loop back to the same state (text
 * inside a JSON string, for example) is accepted without being walked.
 *
 * Ownership: qfit_grammar and qfit_grammar_vocab are immutable after creation and
 * may be shared by several threads and matchers; they must outlive the matchers
 * that use them. A matcher belongs to one sequence and is not thread-safe (even
 * the "const-looking" queries update its caches).
 * Errors: NULL / -1 with a message in err (or qfit_grammar_matcher_error).
 * Core module: libc only.
 */
#ifndef QFIT_GRAMMAR_H
#define QFIT_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QFIT_GRAMMAR_MAX_TEXT      (16u << 20)   /* bytes of GBNF text */
#define QFIT_GRAMMAR_MAX_ELEMENTS  (4u << 20)    /* compiled elements (after repetitions) */
#define QFIT_GRAMMAR_MAX_NESTING   256           /* nested ( ) groups */
#define QFIT_GRAMMAR_MAX_REPEAT    10000         /* m and n of x{m,n} */
#define QFIT_GRAMMAR_MAX_STACKS    4096          /* alive parse stacks in a matcher state */
#define QFIT_GRAMMAR_MAX_DEPTH     4096          /* frames in one parse stack */

typedef struct qfit_grammar qfit_grammar;
typedef struct qfit_grammar_matcher qfit_grammar_matcher;
typedef struct qfit_grammar_vocab qfit_grammar_vocab;

/* Parse and compile GBNF text (len bytes, need not be NUL-terminated). NULL with
 * "line L, column C: what" in err on a syntax error or a limit. */
qfit_grammar *qfit_grammar_parse(const char *text, size_t len, char *err, size_t err_len);
void qfit_grammar_free(qfit_grammar *g);

/* A matcher at the start of g's root rule. NULL on out of memory or when the
 * first expansion exceeds a limit (message in err). */
qfit_grammar_matcher *qfit_grammar_matcher_new(const qfit_grammar *g, char *err, size_t err_len);
void qfit_grammar_matcher_free(qfit_grammar_matcher *m);
/* Back to the start (caches are kept). 0, or -1 on error. */
int qfit_grammar_matcher_reset(qfit_grammar_matcher *m);
/* Advance over n bytes: 1 accepted (state advanced), 0 rejected (state
 * unchanged), -1 error (a limit or out of memory: qfit_grammar_matcher_error;
 * the matcher is then only good for qfit_grammar_matcher_reset or free). */
int qfit_grammar_matcher_accept(qfit_grammar_matcher *m, const char *bytes, size_t n);
/* Would these bytes be accepted? 1 / 0 / -1 as above; the state is unchanged. */
int qfit_grammar_matcher_accepts(qfit_grammar_matcher *m, const char *bytes, size_t n);
/* The root rule can end here (an end-of-generation token may be allowed). */
bool qfit_grammar_matcher_complete(const qfit_grammar_matcher *m);
/* Some more input can be accepted (false: generation must stop here). */
bool qfit_grammar_matcher_can_continue(const qfit_grammar_matcher *m);
/* The message of the last -1 ("" if none). */
const char *qfit_grammar_matcher_error(const qfit_grammar_matcher *m);

/* The vocabulary as byte strings: bytes[i] (lens[i] bytes) is token i's text.
 * Tokens with no bytes (control tokens, end-of-generation) are never allowed by
 * a mask: the caller decides about end-of-generation (allowed only when the
 * matcher is complete). The strings are copied. NULL on out of memory or bad
 * arguments (message in err). Memory: about 40 bytes per trie node. */
qfit_grammar_vocab *qfit_grammar_vocab_new(int32_t n_vocab, const char *const *bytes, const size_t *lens,
                                           char *err, size_t err_len);
void qfit_grammar_vocab_free(qfit_grammar_vocab *v);
int32_t qfit_grammar_vocab_size(const qfit_grammar_vocab *v);

/* allowed[i] = 1 if token i's bytes are accepted from the current state, else 0
 * (n_vocab entries). Returns the number of allowed tokens, -1 on error (a limit
 * reached while exploring: the mask is then all zeros). The state is unchanged. */
int64_t qfit_grammar_matcher_mask(qfit_grammar_matcher *m, const qfit_grammar_vocab *v, uint8_t *allowed);

#ifdef __cplusplus
}
#endif
#endif
