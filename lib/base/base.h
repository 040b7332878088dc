/* base.h - what every module of lib/ uses: errors, allocation, reference counts, checked
 * sizes, files and the clock. Internal: never installed. */
#ifndef DSN_BASE_H
#define DSN_BASE_H

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

/* Versioned structs (include/deissn.h): sizes[v] is the byte size of version v, for v =
 * 1..current (sizes[0] unused); the current one is sizeof. dsn_check_version() refuses 0 and
 * versions newer than `current`, naming `fn` and `what` ("params", "info", ...). */
int32_t dsn_check_version(uint32_t version, uint32_t current, const char *fn, const char *what);
/* Copy what version `version` has of src (a caller's struct of that version) over dst (the
 * library's current struct, holding the defaults): an older struct reads as far as it goes. */
void dsn_read_versioned(void *dst, const void *src, const size_t *sizes, uint32_t version);
/* Write version `version` of src (the library's current struct) into dst (the caller's),
 * keeping dst's version field: nothing past that version's fields is touched. */
void dsn_write_versioned(void *dst, const void *src, const size_t *sizes, uint32_t version);

/* The body of every reader of a caller's input struct: *out = defaults (the current struct,
 * `size` bytes), then the caller's `params` (NULL: none) read as far as its version goes;
 * DEISSN_E_INVALID_ARG naming fn and `what` for a version this library does not know. */
int32_t dsn_read_params(void *out, const void *defaults, size_t size, const void *params,
                        const size_t *sizes, uint32_t current, const char *fn, const char *what);

/* The body of every *_init(p, version): version checked, then version `version` of
 * `defaults` (the current struct) written to dst with dst->version = version. */
int32_t dsn_init_versioned(void *dst, const void *defaults, const size_t *sizes,
                           uint32_t version, uint32_t current, const char *fn);

/* Seconds from a monotonic clock. */
double dsn_now(void);

/* The largest file dsn_read_file() accepts. */
#define DSN_MAX_FILE_SIZE ((size_t)256 << 20)

/* Read a whole file into *buf (allocated with dsn_malloc, released with dsn_free; never NULL
 * on success, even for an empty file) and its size into *len.
 * Returns DEISSN_OK; DEISSN_E_IO (cannot open or read: the message gives the path and the
 * system's reason); DEISSN_E_FORMAT (larger than DSN_MAX_FILE_SIZE); DEISSN_E_NOMEM;
 * DEISSN_E_INVALID_ARG (a NULL argument). On error *buf is NULL and *len 0. */
int32_t dsn_read_file(const char *path, unsigned char **buf, size_t *len);

#ifdef __cplusplus
}
#endif

#endif
