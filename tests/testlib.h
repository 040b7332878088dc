/* testlib.h - a minimal test harness: CHECK prints one line per failure, SKIP names what is
 * skipped and why, and TEST_SUMMARY prints "N passed, N failed[, N skipped]". */
#ifndef DEISSN_TESTLIB_H
#define DEISSN_TESTLIB_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int tl_passed, tl_failed, tl_skipped;

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (cond) {                                                                            \
            tl_passed++;                                                                       \
        } else {                                                                               \
            tl_failed++;                                                                       \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                             \
            printf(__VA_ARGS__);                                                               \
            printf("\n");                                                                      \
        }                                                                                      \
    } while (0)

/* Check a status code and, for errors, that a message was left. */
#define CHECK_STATUS(got, want, what)                                                          \
    do {                                                                                       \
        int32_t got_ = (got);                                                                  \
        CHECK(got_ == (want), "%s: status %d (%s), want %d; last error: %s", what, (int)got_,  \
              deissn_status_string(got_), (int)(want), deissn_last_error());                   \
        if ((want) < 0 && got_ == (want))                                                      \
            CHECK(deissn_last_error()[0] != '\0', "%s: no error message", what);               \
    } while (0)

/* |got - want| <= tol * max(|want|, floor_) */
static inline int tl_close(double got, double want, double tol, double floor_)
{
    double scale = fabs(want) > floor_ ? fabs(want) : floor_;
    return fabs(got - want) <= tol * scale;
}

#define SKIP(name, ...)                                                                        \
    do {                                                                                       \
        tl_skipped++;                                                                          \
        printf("SKIP %s: ", name);                                                             \
        printf(__VA_ARGS__);                                                                   \
        printf("\n");                                                                          \
    } while (0)

#define TEST_SUMMARY()                                                                         \
    do {                                                                                       \
        if (tl_skipped) printf("%d passed, %d failed, %d skipped\n", tl_passed, tl_failed,     \
                               tl_skipped);                                                    \
        else printf("%d passed, %d failed\n", tl_passed, tl_failed);                           \
        return tl_failed ? 1 : 0;                                                              \
    } while (0)

#endif
