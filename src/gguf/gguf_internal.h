/* Internal helpers shared by the GGUF reader and writer. */
#ifndef QFIT_GGUF_INTERNAL_H
#define QFIT_GGUF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "qfit/gguf.h"

/* Arrays may contain arrays; deeper nesting than this is refused (a file of
 * nested empty arrays would otherwise drive the recursive parser off the stack). */
#define QFIT_GGUF_MAX_NESTING 8

/* ggml keeps tensor names in a 64-byte field (63 characters + NUL). */
#define QFIT_GGUF_MAX_NAME 63

#define QFIT_GGUF_KEY_ALIGNMENT "general.alignment"

/* Little-endian loads from possibly unaligned memory. */
static inline uint16_t qfit_gguf_ld16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t qfit_gguf_ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t qfit_gguf_ld64(const uint8_t *p)
{
    return (uint64_t)qfit_gguf_ld32(p) | ((uint64_t)qfit_gguf_ld32(p + 4) << 32);
}

/* Encoded size of the value of type t at p (at most avail bytes), following
 * nested arrays up to depth QFIT_GGUF_MAX_NESTING. Returns false when the
 * encoding does not fit or is malformed. Used on already-validated data and as
 * a defensive walk; it never reads outside [p, p + avail). */
bool qfit_gguf_value_extent(const uint8_t *p, uint64_t avail, qfit_gguf_type t, int depth,
                            uint64_t *len);

/* Printable, bounded rendering of an untrusted name for messages. */
const char *qfit_gguf_show(char *buf, size_t cap, const char *s, uint64_t len);

#endif
