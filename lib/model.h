/* model.h - the model object and the sampler's plan, shared by lib/ and the libtorch shim.
 * Internal: never installed. */
#ifndef DEISSN_MODEL_H
#define DEISSN_MODEL_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One step of a sampler's plan: everything a sampling loop needs, on whatever device.
 *   d        = a * x + b * model_out     (dsn_history_coeffs(): the prediction -> eps, or x0
 *                                        when data is set)
 *   x_next   = psi * x + sum_{j<=depth} k[j] * eps_j   (eps_0 is this step's, eps_j the j-th
 *                                                       previous one)
 * k[j] = c[j] / r[j] folds the normalisation into the coefficients. With the corrector the
 * sum also carries the correction of x (see build_plan() in sampler.c), so depth can exceed
 * order by one. */
#define DSN_MAX_DEPTH (DEISSN_MAX_TERMS - 1) /* history terms a step reads */
typedef struct dsn_step {
    double tau_from, tau_to;
    double model_t;   /* tau_from*T - 1 */
    double alpha, sigma; /* at tau_from */
    double psi;
    uint32_t data;    /* METHOD_DATA: the history holds x0 (else eps) */
    uint32_t order;   /* the predictor's polynomial order */
    uint32_t corrector_order; /* the corrector's for x at tau_from (0: no correction) */
    uint32_t depth;   /* k[0..depth] are used */
    double c[DSN_MAX_DEPTH + 1]; /* coefficients on the normalised eps */
    double r[DSN_MAX_DEPTH + 1]; /* table values at the evaluation times (1 without a table,
                                    0 unused) */
    double k[DSN_MAX_DEPTH + 1]; /* c[j] / r[j]: coefficients on the raw eps */
} dsn_step;

/* The plan of a sampler: n steps. Valid as long as the sampler lives. */
const dsn_step *dsn_sampler_plan(const deissn_sampler *sampler, uint32_t *n);
const deissn_schedule *dsn_sampler_schedule(const deissn_sampler *sampler);

/* The value the model gets as its time argument at time tau. */
double dsn_model_time(int32_t convention, const deissn_schedule *schedule, double tau);

/* d = *a * x + *b * model_out: the model's prediction at step st converted into what the
 * sampler's history holds (eps, or x0 for METHOD_DATA): the one place where predictions are
 * converted. */
void dsn_history_coeffs(const dsn_step *st, int32_t prediction, double *a, double *b);
/* The sampler's deissn_method. */
int32_t dsn_sampler_method(const deissn_sampler *sampler);

/* Mark the sampler as having completed all its steps (used by device-side loops that do the
 * arithmetic themselves). */
void dsn_sampler_mark_done(deissn_sampler *sampler);

/* deissn_step() that also copies the eps it used (after conversion from the prediction)
 * into eps_out (n floats) when eps_out is not NULL. */
int32_t dsn_step_eps(deissn_sampler *sampler, float *x, const float *model_out, size_t n,
                     int32_t prediction, deissn_step_info *info, float *eps_out);

/* ---- calibration inside deissn_sample() (lib/calibrate.c) --------------------------------
 * A sampling loop computes each step's fixed-point sum of |eps|, keeps them, and adds them
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

typedef struct dsn_model_ops {
    /* Run the whole sampling loop (deissn_sample() after argument checks, the calibrator's
     * included). The sampler is reset; x is prod(shape) floats in host memory; on error x
     * and options->calibrator must be unchanged. */
    int32_t (*sample)(deissn_model *model, deissn_sampler *sampler, float *x,
                      const int64_t *shape, uint32_t ndim, size_t numel,
                      deissn_sample_options *options);
    /* Release impl. */
    void (*destroy)(void *impl);
} dsn_model_ops;

struct deissn_model {
    int refs;                  /* atomic via dsn_ref/dsn_unref */
    const dsn_model_ops *ops;
    void *impl;
    deissn_model_params params; /* params.device points into device_buf */
    char device_buf[32];
};

/* Allocate a model with refcount 1 and the given ops/impl; params are validated and copied.
 * On failure impl is NOT destroyed (the caller still owns it). */
int32_t dsn_model_new(deissn_model **out, const dsn_model_ops *ops, void *impl,
                      const deissn_model_params *params, const char *fn);

/* Seconds from a monotonic clock. */
double dsn_now(void);

/* Implemented by the shim (shim/torch_model.cpp) when the library is built with libtorch. */
int32_t dsn_torch_model_load(deissn_model **out, const char *path,
                             const deissn_model_params *params);

#ifdef __cplusplus
}
#endif

#endif
