/* Shared by the JSON Schema converter's files. Internal to src/schema: do not
 * include from other modules. */
#ifndef QFIT_SCHEMA_INT_H
#define QFIT_SCHEMA_INT_H

#include <stddef.h>

/* a growing text buffer; oom set once an allocation failed (the text is then
 * incomplete and must not be used) */
typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

void sb_put(sbuf *b, const char *s, size_t n);
void sb_str(sbuf *b, const char *s);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* a GBNF string literal for bytes s[0..n) */
void sb_literal(sbuf *b, const char *s, size_t n);

/* Append to out a GBNF expression matching the JSON-encoded form of strings
 * that match the ECMA-262 pattern (the subset in include/qfit/schema.h); char_rule
 * names the rule of one JSON string character. 0, or -1 with a message naming
 * the construct and its offset in err. */
int schema_pattern_gbnf(const char *pattern, sbuf *out, const char *char_rule, char *err, size_t err_len);

#endif
