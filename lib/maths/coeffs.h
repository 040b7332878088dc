/* coeffs.h - the exponential integrator's step coefficients: quadrature on eps / r(tau)
 * (DEIS, DEIS-SN) and the closed form on x0 (METHOD_DATA). Internal. */
#ifndef DSN_COEFFS_H
#define DSN_COEFFS_H

#include "maths/schedule.h"
#include "tables/normtable.h"

/* Interpolation nodes per step: a predictor of order 3 has 4, its corrector 5. */
#define DSN_MAX_NODES DEISSN_MAX_TERMS

/* METHOD_DATA: the coefficients c[0..p] of the step from lambda_from to lambda_to (> from,
 * finite) on the data prediction x0 at the distinct log-SNRs nodes[0..p]:
 *   c_j = alpha_to * integral_0^h e^-u l_j(lambda_to - u) du,   h = lambda_to - lambda_from,
 * l_j the Lagrange basis in lambda. Exact for the probability-flow ODE whatever the noise
 * schedule: in lambda, x/sigma changes by the integral of e^lambda x0. c[j] = 0 for j > p. */
void dsn_coeffs_data(double lambda_from, double lambda_to, double alpha_to, const double *nodes,
                     uint32_t p, double c[DSN_MAX_NODES]);

/* The coefficients c[0..p] (p < DSN_MAX_NODES) of the step from tau_from down to tau_to, on
 * the normalised eps at the distinct times nodes[0..p] (any order; the predictor's are
 * tau_from and earlier evaluation times, the corrector's add tau_to), by piecewise
 * Gauss-Legendre quadrature (gl_points per piece: 8 normally; tests use others to check
 * convergence). table may be NULL (r = 1). c[j] = 0 for j > p. */
void dsn_coeffs_quadrature(const deissn_schedule *s, const deissn_normtable *table,
                           double tau_from, double tau_to, const double *nodes, uint32_t p,
                           int gl_points, double c[DSN_MAX_NODES]);

#endif
