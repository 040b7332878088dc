/* alloc.c - every allocation of the library (with fault injection for tests), reference
 * counts, overflow-checked sizes. */
#include "base/base.h"

#include <stdlib.h>

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
