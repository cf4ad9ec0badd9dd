/* Internal to src/toolcall: do not include from other modules.
 * Shared between the stream parser (toolcall.c) and the schema checker
 * (toolschema.c). */
#ifndef QFIT_TOOLCALL_INT_H
#define QFIT_TOOLCALL_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Walk a schema and report the first keyword the validator does not support
 * ("PATH: unsupported schema keyword \"k\""), or a malformed value of a
 * supported one. 0 when the whole schema can be checked. */
int tc_schema_check(const json_t *schema, const char *path, char *err, size_t err_len);

#endif
