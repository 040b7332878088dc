/* testlib.h - a minimal test harness: CHECK prints one line per failure, SKIP names what is
 * skipped and why, and TEST_SUMMARY prints "N passed, N failed[, N skipped]". */
#ifndef DEISSN_TESTLIB_H
#define DEISSN_TESTLIB_H

#include "deissn.h"

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

/* A deissn_model_fn: the analytic eps of data ~ N(0, 0.5^2 I), eps = sigma x / (abar 0.25 +
 * sigma^2), for a model called with tau (DEISSN_TIME_TAU); `user` is the schedule. A pure
 * function of its arguments, so thread-safe. */
static inline int tl_gaussian_eps(void *user, const float *x, const int64_t *shape,
                                  uint32_t ndim, double tau, float *out)
{
    const deissn_schedule *s = (const deissn_schedule *)user;
    size_t n = 1;
    for (uint32_t d = 0; d < ndim; d++) n *= (size_t)shape[d];
    double abar = deissn_schedule_alpha_bar(s, tau), sigma = sqrt(1 - abar);
    for (size_t i = 0; i < n; i++) out[i] = (float)(sigma * x[i] / (abar * 0.25 + sigma * sigma));
    return 0;
}

#define TEST_SUMMARY()                                                                         \
    do {                                                                                       \
        if (tl_skipped) printf("%d passed, %d failed, %d skipped\n", tl_passed, tl_failed,     \
                               tl_skipped);                                                    \
        else printf("%d passed, %d failed\n", tl_passed, tl_failed);                           \
        return tl_failed ? 1 : 0;                                                              \
    } while (0)

#endif
