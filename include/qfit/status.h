/* qfit — what kind of failure a library error is (beside its message), so that
 * callers (the server's HTTP status, the CLI's exit code) decide by kind, never by
 * matching message text. Header only; every module may use it. */
#ifndef QFIT_STATUS_H
#define QFIT_STATUS_H

typedef enum {
    QFIT_OK = 0,
    QFIT_E_INVALID,       /* an invalid argument or request */
    QFIT_E_NOT_FOUND,     /* a named thing does not exist (a batch id, a file) */
    QFIT_E_CONFLICT,      /* not in a state that allows it (a batch not finished, already cancelled) */
    QFIT_E_IO,            /* a file, socket or service failed (disk, Redis) */
    QFIT_E_FORMAT,        /* malformed data */
    QFIT_E_UNSUPPORTED,   /* valid, but qfit cannot do it */
    QFIT_E_NOMEM,         /* out of memory */
    QFIT_E_CONTEXT_FULL,  /* the context cannot hold the tokens */
    QFIT_E_CANCELLED,     /* stopped on request */
    QFIT_E_INTERNAL,      /* a bug (a kernel refused its arguments, ...) */
} qfit_status;

static inline const char *qfit_status_name(qfit_status s)
{
    switch (s) {
    case QFIT_OK: return "ok";
    case QFIT_E_INVALID: return "invalid argument";
    case QFIT_E_NOT_FOUND: return "not found";
    case QFIT_E_CONFLICT: return "conflict";
    case QFIT_E_IO: return "I/O error";
    case QFIT_E_FORMAT: return "bad format";
    case QFIT_E_UNSUPPORTED: return "unsupported";
    case QFIT_E_NOMEM: return "out of memory";
    case QFIT_E_CONTEXT_FULL: return "context full";
    case QFIT_E_CANCELLED: return "cancelled";
    case QFIT_E_INTERNAL: return "internal error";
    }
    return "unknown";
}

#endif
