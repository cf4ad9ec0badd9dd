/* qfit — settings from the environment.
 *
 * Every setting has a QFIT_ name and accepts Ollama's OLLAMA_ name as a fallback
 * (QFIT_HOST, else OLLAMA_HOST), so a user's existing Ollama environment keeps
 * working. Values are trimmed of spaces, then of quotes, as Ollama's envconfig does;
 * an empty value counts as unset. Where Ollama quietly uses a default for a value it
 * cannot parse ("1d", port 66000), qfit reports an error.
 *
 *   QFIT_MODELS            store root (qfit/store.h: qfit_store_default_root)
 *   QFIT_KV_CACHE_TYPE     KV cache type     } qfit/model.h:
 *   QFIT_FLASH_ATTENTION   on | off | auto   } qfit_context_params_from_env
 *   QFIT_CONTEXT_LENGTH    default context   }
 *   QFIT_NOPRUNE           keep unused blobs (qfit/store.h)
 *   QFIT_DEBUG             0 | 1 | 2 (also false/true): 1 prints a debug report of each
 *                          context (kernels, threads, cache types, memory planned vs
 *                          allocated), 2 adds trace output where a command has it
 *   QFIT_KEEP_ALIVE        how long a server keeps an idle model: a Go duration ("5m",
 *                          "1h30m", "300ms", "-1m") or integer seconds ("300", "-1");
 *                          negative = forever, 0 = unload at once; default 5m
 *   QFIT_NUM_PARALLEL      sequences per loaded model in a server (1)     } qfit_config_int,
 *   QFIT_MAX_LOADED_MODELS models a server keeps loaded at most (3)       } read by qfit serve
 *   QFIT_MAX_QUEUE         requests a server lets wait at most (512)      }
 *   QFIT_MAX_MEMORY        memory for a server's models: "24G", "512M" (qfit serve; default:
 *                          the planner's budget for this machine)
 *   QFIT_HOST              server address: "127.0.0.1:11434" (default), "0.0.0.0",
 *                          ":8080" (loopback; Ollama binds every interface here),
 *                          "host:port", "[::1]:8080", "::1", "http://h" (port 80),
 *                          "https://h" (port 443); a path suffix is kept; port 0 = any
 *                          free port
 *
 * A value qfit cannot honour is an error naming the variable and the value, never a
 * default used instead (qfit_config_check).
 *
 * Errors: -1 with a message in err[err_len]. Thread-safety: reads the environment
 * (getenv); do not call while another thread changes it. Core module: libc only.
 */
#ifndef QFIT_CONFIG_H
#define QFIT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QFIT_FOREVER_NS INT64_MAX                 /* a negative keep-alive */
#define QFIT_DEFAULT_KEEP_ALIVE_NS (300LL * 1000000000LL)
#define QFIT_DEFAULT_PORT 11434

/* The value of QFIT_<suffix>, else OLLAMA_<suffix>, trimmed, into buf (NULL when both are
 * unset or empty). *which (may be NULL) gets the variable's name (a static string).
 * A value longer than cap - 1 bytes is an error (returns NULL and sets *too_long). */
const char *qfit_env(const char *suffix, char *buf, size_t cap, const char **which, bool *too_long);

/* Go's time.ParseDuration: a signed sequence of decimal numbers with units ns, us, µs,
 * ms, s, m, h ("1h30m", "1.5s", "-2m"); "0" needs no unit. With bare_seconds, a
 * number without a unit is seconds (Ollama's environment form). Negative → QFIT_FOREVER_NS. */
int qfit_parse_duration(const char *s, bool bare_seconds, int64_t *ns, char *err, size_t err_len);

/* QFIT_<suffix> (else OLLAMA_<suffix>) as a decimal integer in [min, max]; def when unset.
 * An unparsable or out-of-range value is an error naming the variable and the range. */
int qfit_config_int(const char *suffix, int min, int max, int def, int *out, char *err, size_t err_len);

/* QFIT_DEBUG: 0 (unset), 1, 2. */
int qfit_config_debug(int *level, char *err, size_t err_len);

/* QFIT_KEEP_ALIVE in nanoseconds (QFIT_FOREVER_NS, 0, or a duration); default 5 minutes. */
int qfit_config_keep_alive(int64_t *ns, char *err, size_t err_len);

typedef struct {
    char scheme[8];      /* "http" or "https" */
    char host[256];      /* name or address ("127.0.0.1" when only a port was given);
                          * an IPv6 address without brackets */
    int  port;
    char path[256];      /* "" or "/..." */
} qfit_host;

/* Parse an OLLAMA_HOST-style address (forms above). */
int qfit_parse_host(const char *s, qfit_host *out, char *err, size_t err_len);
/* QFIT_HOST (default http://127.0.0.1:11434). */
int qfit_config_host(qfit_host *out, char *err, size_t err_len);

/* Validate QFIT_DEBUG, QFIT_KEEP_ALIVE, QFIT_HOST and QFIT_MODELS (the error names the
 * first bad one). The context settings are validated by qfit_context_params_from_env;
 * the CLI calls both before any command runs. */
int qfit_config_check(char *err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif
