/* error.c - status strings, the per-thread last error, the library version. */
#include "base/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[1024];

int32_t dsn_error(int32_t status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

const char *deissn_last_error(void) { return last_error; }

const char *deissn_status_string(int32_t status)
{
    switch (status) {
    case DEISSN_OK: return "ok";
    case DEISSN_DONE: return "done";
    case DEISSN_E_INVALID_ARG: return "invalid argument";
    case DEISSN_E_NOMEM: return "out of memory";
    case DEISSN_E_SIZE: return "size mismatch or overflow";
    case DEISSN_E_NONFINITE: return "non-finite model output";
    case DEISSN_E_STATE: return "call out of sequence";
    case DEISSN_E_IO: return "I/O error";
    case DEISSN_E_FORMAT: return "corrupt or unexpected file format";
    case DEISSN_E_UNSUPPORTED: return "not supported by this build";
    case DEISSN_E_MODEL: return "model error";
    case DEISSN_E_CALLBACK: return "callback error";
    case DEISSN_E_MISMATCH: return "made for another noise schedule or run";
    case DEISSN_E_INTERNAL: return "internal error";
    default: return "unknown status";
    }
}

uint32_t deissn_version_number(void) { return DEISSN_VERSION_NUMBER; }
const char *deissn_version_string(void) { return DEISSN_VERSION_STRING; }

int32_t dsn_check_version(uint32_t version, uint32_t current, const char *fn, const char *what)
{
    if (version >= 1 && version <= current) return DEISSN_OK;
    return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s->version is %u; this libdeissn (%s) reads "
                     "versions 1..%u (initialise the struct with its _INIT macro or _init "
                     "function)", fn, what, version, DEISSN_VERSION_STRING, current);
}

void dsn_read_versioned(void *dst, const void *src, const size_t *sizes, uint32_t version)
{
    uint32_t keep;
    memcpy(&keep, dst, sizeof keep); /* the library's own (current) version */
    memcpy(dst, src, sizes[version]);
    memcpy(dst, &keep, sizeof keep);
}

void dsn_write_versioned(void *dst, const void *src, const size_t *sizes, uint32_t version)
{
    /* Every versioned struct starts with its uint32_t version, which stays the caller's. */
    memcpy((char *)dst + sizeof(uint32_t), (const char *)src + sizeof(uint32_t),
           sizes[version] - sizeof(uint32_t));
}

int32_t dsn_read_params(void *out, const void *defaults, size_t size, const void *params,
                        const size_t *sizes, uint32_t current, const char *fn, const char *what)
{
    memcpy(out, defaults, size);
    if (!params) return DEISSN_OK;
    uint32_t version;
    memcpy(&version, params, sizeof version);
    int32_t rc = dsn_check_version(version, current, fn, what);
    if (rc == DEISSN_OK) dsn_read_versioned(out, params, sizes, version);
    return rc;
}

int32_t dsn_init_versioned(void *dst, const void *defaults, const size_t *sizes,
                           uint32_t version, uint32_t current, const char *fn)
{
    if (!dst) return dsn_error(DEISSN_E_INVALID_ARG, "%s: the struct pointer is NULL", fn);
    if (version < 1 || version > current)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: version %u is not one this libdeissn (%s) "
                         "knows (1..%u)", fn, version, DEISSN_VERSION_STRING, current);
    memcpy(dst, &version, sizeof version);
    dsn_write_versioned(dst, defaults, sizes, version);
    return DEISSN_OK;
}
