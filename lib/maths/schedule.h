/* schedule.h - the noise schedule object: alpha_bar(tau), alpha and sigma, the sampling
 * times, the fingerprint. Internal. */
#ifndef DSN_SCHEDULE_H
#define DSN_SCHEDULE_H

#include "base/base.h"

struct deissn_schedule {
    int refs;
    int32_t noise;
    uint32_t T;             /* training steps; model time is tau*T - 1 */
    double *abar;           /* discrete: T + 1 knots at k/T (abar[0] = 1); NULL if continuous */
    double *one_minus_abar; /* discrete: 1 - abar[k], kept exact for small sigma */
    double beta_min, beta_max; /* continuous VP */
    uint32_t steps;         /* N */
    double *taus;           /* N + 1 times, descending; taus[N] = tau_end */
    uint32_t fingerprint;
};

/* alpha_bar(tau), and alpha, sigma computed without cancellation near tau = 0. */
double dsn_abar(const deissn_schedule *s, double tau);
void dsn_alpha_sigma(const deissn_schedule *s, double tau, double *alpha, double *sigma);

/* *out = the caller's params (NULL: the defaults) as the current version: an older struct
 * reads as far as it goes. DEISSN_E_INVALID_ARG for an unknown version (naming fn). */
int32_t dsn_schedule_params_read(deissn_schedule_params *out, const deissn_schedule_params *params,
                                 const char *fn);

/* Write *params (current layout) into the caller's struct, as far as its version goes. */
void dsn_schedule_params_write(deissn_schedule_params *caller, const deissn_schedule_params *params);

/* Build a fingerprint from T and the alpha_bar values at k/T, k = 0..T. */
uint32_t dsn_fingerprint_of(const deissn_schedule *s);

#endif
