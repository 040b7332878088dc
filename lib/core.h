/* core.h - the structures of schedules and tables, shared inside lib/. Internal. */
#ifndef DEISSN_CORE_H
#define DEISSN_CORE_H

#include "internal.h"

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

struct deissn_normtable {
    int refs;
    size_t n;
    double *tau;            /* strictly increasing */
    double *r;
    uint32_t fingerprint;   /* schedule it was made for; 0 = any */
};

/* alpha_bar(tau), and alpha, sigma computed without cancellation near tau = 0. */
double dsn_abar(const deissn_schedule *s, double tau);
void dsn_alpha_sigma(const deissn_schedule *s, double tau, double *alpha, double *sigma);

/* The coefficients c[0..p] of the step from tau_from = nodes[0] to tau_to, on the normalised
 * eps at nodes[0..p] (nodes[j] = the j-th most recent evaluation time, increasing), by
 * piecewise Gauss-Legendre quadrature (gl_points per piece: 8 normally; tests use others to
 * check convergence). table may be NULL (r = 1). */
void dsn_coeffs_quadrature(const deissn_schedule *s, const deissn_normtable *table,
                           double tau_to, const double *nodes, uint32_t p, int gl_points,
                           double c[4]);

/* Build a fingerprint from T and the alpha_bar values at k/T, k = 0..T. */
uint32_t dsn_fingerprint_of(const deissn_schedule *s);

#endif
