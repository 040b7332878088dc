/* internal.h - shared by the C core (lib/) and the libtorch shim (shim/); never installed. */
#ifndef DEISSN_INTERNAL_H
#define DEISSN_INTERNAL_H

#include "deissn.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define DSN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DSN_PRINTF(a, b)
#endif

/* Record a message for deissn_last_error() on this thread and return `status`, so that error
 * paths read `return dsn_error(DEISSN_E_INVALID_ARG, "%s: ...", fn, ...);`. */
int32_t dsn_error(int32_t status, const char *fmt, ...) DSN_PRINTF(2, 3);

/* Every allocation of the library goes through these, so that tests can fail the k-th one
 * (fault injection) and count leaks. They behave like malloc/calloc/realloc/free. */
void *dsn_malloc(size_t size);
void *dsn_calloc(size_t count, size_t size);
void *dsn_realloc(void *ptr, size_t size);
void dsn_free(void *ptr);

#ifdef DEISSN_FAULT_INJECTION
/* Test builds only (lib/errors.c): the k-th following allocation on this thread fails
 * (k = 0: the next one), and only that one; k < 0 turns injection off. */
void dsn_fail_after(long k);
/* How many allocations this thread has asked for so far. */
long dsn_alloc_count(void);
#endif

/* Reference counts shared by every handle type (atomic, so handles may be shared by threads). */
void dsn_ref(int *refs);
int dsn_unref(int *refs); /* returns 1 when the count reached 0: destroy the object */

/* Multiply with overflow detection: 0 on overflow, else 1 and *out = a*b. */
int dsn_mul_size(size_t a, size_t b, size_t *out);

#ifdef __cplusplus
}
#endif

#endif
