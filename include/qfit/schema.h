/* qfit — JSON Schema -> GBNF grammar (include/qfit/grammar.h), for structured
 * output. The grammar accepts only JSON text that validates against the schema
 * (a subset of the valid documents: it never accepts an invalid one). A schema
 * keyword, value, format or pattern construct that cannot be honoured is an
 * error naming it and its JSON pointer; nothing is ever ignored silently.
 *
 * Supported:
 *   type (a name or an array of names), properties, required,
 *   additionalProperties (absent or false: no extra properties are generated;
 *   true or a schema: extra properties after the declared ones, with names
 *   other than the declared ones), items (a schema, or an array = prefixItems), prefixItems
 *   (all generated), minItems, maxItems, enum, const, anyOf, oneOf (generated as
 *   anyOf: give it disjoint alternatives), allOf (merged: properties and
 *   required are united, other keywords must agree), $ref to "#" or a JSON
 *   pointer in the same document ($defs, definitions; recursion allowed),
 *   minLength, maxLength, pattern, format (date, time, date-time, uuid),
 *   minimum, maximum, exclusiveMinimum, exclusiveMaximum (type integer only; a
 *   bound on a number is refused), and the annotations $schema, $id, $comment,
 *   title, description, default, examples, deprecated, readOnly, writeOnly.
 *   {} and true accept any JSON value; false is refused.
 * Generated text (a subset of the valid documents, chosen so a sampled document
 * ends): properties in the order the schema declares them, whitespace limited to
 * one optional space, integers up to 16 digits, numbers with at most 16
 * fraction digits and a 2-digit exponent, strings without \u escapes (so without
 * control characters other than \b \f \n \r \t).
 *
 * pattern (ECMA-262 syntax, the documented subset): literals, escapes (\. \\ \/
 * \- \n \t \r \f \v \d \D \w \W \s \S \xHH \uHHHH), ".", classes [...] with
 * ranges, negation and those escapes, groups (...) and (?:...), alternation |,
 * quantifiers * + ? {m} {m,} {m,n} (m, n <= 1000; lazy forms match the same
 * strings), ^ at the start and $ at the end (an unanchored side matches any
 * text, as JSON Schema's search semantics say). Refused: backreferences,
 * lookaround, \b \B, named groups, anchors elsewhere, Unicode property escapes.
 *
 * Limits (errors): schema text over QFIT_SCHEMA_MAX_BYTES, schemas nested more
 * than QFIT_SCHEMA_MAX_DEPTH levels, a grammar over QFIT_SCHEMA_MAX_GRAMMAR bytes,
 * a $ref cycle that consumes nothing ("a": {"$ref": "#/$defs/a"}).
 *
 * Thread-safety: reentrant (no shared state). Ownership: the returned text is
 * malloc'd, the caller frees it. Errors: NULL with a message in err.
 * Depends on jansson (not part of the core grammar engine).
 */
#ifndef QFIT_SCHEMA_H
#define QFIT_SCHEMA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QFIT_SCHEMA_MAX_BYTES   (1u << 20)    /* 1 MiB of schema text */
#define QFIT_SCHEMA_MAX_DEPTH   64            /* nested schemas */
#define QFIT_SCHEMA_MAX_GRAMMAR (4u << 20)    /* bytes of generated GBNF */

/* GBNF text for the schema (len bytes of JSON). NULL with a message such as
 * "unsupported keyword 'uniqueItems' at /properties/tags" in err. */
char *qfit_schema_to_gbnf(const char *schema, size_t len, char *err, size_t err_len);

/* GBNF text for any JSON value (format "json"); static, do not free. */
const char *qfit_schema_any_json_gbnf(void);

#ifdef __cplusplus
}
#endif
#endif
