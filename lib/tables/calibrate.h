/* calibrate.h - calibration inside the sampling loop: fixed-point sums of |eps| per step,
 * kept until the whole sampling has succeeded, then added to the calibrator. Internal. */
#ifndef DSN_CALIBRATE_H
#define DSN_CALIBRATE_H

#include "base/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A sampling loop computes each step's fixed-point sum of |eps|, keeps them, and adds them
 * all to the calibrator only once the whole sampling has succeeded. */

/* DEISSN_OK if the calibrator's steps are the sampler's, else DEISSN_E_MISMATCH. */
int32_t dsn_calibrator_check_sampler(const deissn_calibrator *c, const deissn_sampler *sampler,
                                     const char *fn);
/* *sum = sum of floor(|eps[i]| * 2^24) over n floats, exactly. DEISSN_E_NONFINITE for NaN or
 * Inf, DEISSN_E_SIZE when the int64 sum would overflow (messages name the step). */
int32_t dsn_fixed_sum(const float *eps, size_t n, uint32_t step, int64_t *sum, const char *fn);
/* For loops that sum on a device, where overflow cannot be seen: DEISSN_OK when n values of
 * |eps| <= max_abs cannot overflow the int64 sum, else DEISSN_E_SIZE. */
int32_t dsn_fixed_sum_fits(double max_abs, size_t n, uint32_t step, const char *fn);
/* Add one run: sums[i] to step i, `count` values to every step, `samples` samples; all or
 * nothing (DEISSN_E_SIZE on overflow). */
int32_t dsn_calibrator_add_run(deissn_calibrator *c, const int64_t *sums, uint64_t count,
                               uint64_t samples, const char *fn);

#ifdef __cplusplus
}
#endif

#endif
