/* Internal to src/modelfile: do not include from other modules.
 * Message helpers shared by the parameter and Modelfile code. */
#ifndef QFIT_MF_INTERNAL_H
#define QFIT_MF_INTERNAL_H

#include <stddef.h>

#include "qfit/modelfile.h"

/* snprintf into err (when err is not NULL). */
void mf_err(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Append a formatted message to w (when w is not NULL). 0, or -1 when out of memory. */
int  mf_warn(qfit_warnings *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *mf_strdup(const char *s);
/* An array of n elements, with room for one more: it is reallocated (to 2n) only
 * when n is 0 or a power of two, so only arrays grown by this function may be
 * passed. NULL when out of memory (arr is then still valid). */
void *mf_grow(void *arr, size_t n, size_t elem);

#endif
