/* sampler.h - the sampler's plan (the coefficients of every step) and its fused host step.
 * Internal: shared by lib/ and the backends. */
#ifndef DSN_SAMPLER_H
#define DSN_SAMPLER_H

#include "backends/backend.h"
#include "base/base.h"

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

/* d = *a * x + *b * model_out: the model's prediction at step st converted into what the
 * sampler's history holds (eps, or x0 for METHOD_DATA): the one place where predictions are
 * converted. */
void dsn_history_coeffs(const dsn_step *st, int32_t prediction, double *a, double *b);
/* eps = *a * x + *b * model_out for a model predicting `prediction` at (alpha, sigma). */
void dsn_eps_coeffs(int32_t prediction, double alpha, double sigma, double *a, double *b);
/* The sampler's deissn_method. */
int32_t dsn_sampler_method(const deissn_sampler *sampler);

/* The sampler's params.prediction. */
int32_t dsn_sampler_prediction(const deissn_sampler *sampler);

/* Mark the sampler as having completed all its steps (the sampling loop, which keeps its
 * history on the model's device, does the arithmetic itself). */
void dsn_sampler_mark_done(deissn_sampler *sampler);

/* The coefficients of step st's fused update for a model predicting `prediction` (buffers
 * left NULL): the one place where a plan step becomes an update, for deissn_step() and the
 * loop alike. */
void dsn_update_coeffs(const dsn_step *st, int32_t prediction, dsn_update *u);

/* The history a loop needs: `slots` buffers, step i's entry kept (in slot i % slots) when
 * keep[i] is set, step i reading step i - j's from slot (i - j) % slots. */
void dsn_sampler_history(const deissn_sampler *sampler, uint32_t *slots,
                         const unsigned char **keep);

/* *out = the caller's params (NULL: defaults) as the current version; and back. */
int32_t dsn_sampler_params_read(deissn_sampler_params *out, const deissn_sampler_params *params,
                                const char *fn);
void dsn_sampler_params_write(deissn_sampler_params *caller, const deissn_sampler_params *params);

#ifdef __cplusplus
}
#endif

#endif
