/* errors.c - status strings, the per-thread last error, allocation, reference counts,
 * version. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    case DEISSN_E_MISMATCH: return "table made for another schedule";
    case DEISSN_E_INTERNAL: return "internal error";
    default: return "unknown status";
    }
}

uint32_t deissn_version_number(void) { return DEISSN_VERSION_NUMBER; }
const char *deissn_version_string(void) { return DEISSN_VERSION_STRING; }

/* Fault injection for tests: when DEISSN_FAULT_INJECTION is defined (the test build of the
 * library only), dsn_fail_after(k) makes the k-th following allocation fail. */
#ifdef DEISSN_FAULT_INJECTION
static _Thread_local long fail_countdown = -1;
static _Thread_local long alloc_count;
void dsn_fail_after(long k) { fail_countdown = k; }
long dsn_alloc_count(void) { return alloc_count; }
static int should_fail(void)
{
    alloc_count++;
    if (fail_countdown < 0) return 0;
    if (fail_countdown-- == 0) return 1;
    return 0;
}
#else
#define should_fail() 0
#endif

void *dsn_malloc(size_t size) { return should_fail() ? NULL : malloc(size ? size : 1); }
void *dsn_calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}
void *dsn_realloc(void *ptr, size_t size) { return should_fail() ? NULL : realloc(ptr, size ? size : 1); }
void dsn_free(void *ptr) { free(ptr); }

int dsn_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

void dsn_ref(int *refs) { __atomic_fetch_add(refs, 1, __ATOMIC_RELAXED); }
int dsn_unref(int *refs) { return __atomic_sub_fetch(refs, 1, __ATOMIC_ACQ_REL) == 0; }

double dsn_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
