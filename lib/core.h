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
    double *tau;            /* strictly increasing; the start of the one allocation that holds
                               all the arrays and the metadata (freed through it) */
    double *r;
    int64_t *sums;          /* calibration sums per knot (fixed point, DSN_FIXED_ONE), or NULL */
    uint64_t *counts;       /* with sums: how many values each sum adds up */
    char *metadata;         /* NUL-terminated UTF-8; "" when none */
    size_t metadata_len;
    uint32_t fingerprint;   /* schedule it was made for; 0 = any */
    uint32_t clip;
    uint32_t steps;         /* of the runs that measured it; 0 = unknown */
    uint64_t samples;       /* that those runs made; 0 = unknown */
};

/* Calibration sums are fixed point with 24 fractional bits: each |eps| adds
 * floor(|eps| * DSN_FIXED_ONE). */
#define DSN_FIXED_ONE 16777216.0

/* The most knots a table file may hold (a bound that keeps absurd headers from allocating). */
#define DSN_TABLE_MAX_KNOTS 1000000u

/* r of a calibration step: the mean of the fixed-point values, in double. */
double dsn_fixed_mean(int64_t sum, uint64_t count);

/* *out = a table with refcount 1 and room for n knots (and sums and counts if with_sums)
 * and a metadata string of meta_len bytes (zeroed, NUL-terminated); every other field is
 * zero. Returns DEISSN_OK, DEISSN_E_SIZE or DEISSN_E_NOMEM (naming fn). */
int32_t dsn_table_alloc(deissn_normtable **out, size_t n, int with_sums, size_t meta_len,
                        const char *fn);

/* Check what a table promises: n >= 2, tau strictly increasing in [0, 1], r finite and > 0,
 * clip < n, metadata UTF-8, and with sums: counts > 0, sums >= 0 and r consistent with them
 * and the clip. On failure frees t and returns `status` with a message naming `what`. */
int32_t dsn_table_check(deissn_normtable *t, int32_t status, const char *what);

/* Check that s[0..len) is UTF-8 without NUL, at most DEISSN_NORMTABLE_METADATA_MAX bytes. */
int32_t dsn_check_metadata(const char *s, size_t len, int32_t status, const char *what);

/* Parse a table file held in memory (docs/table-format.md); `what` names it in messages.
 * Any input is safe. On error *out is NULL and nothing is left allocated. */
int32_t dsn_table_parse(const unsigned char *buf, size_t len, const char *what,
                        deissn_normtable **out);

/* Whether buf starts with the table file magic. */
int dsn_table_magic(const unsigned char *buf, size_t len);

/* alpha_bar(tau), and alpha, sigma computed without cancellation near tau = 0. */
double dsn_abar(const deissn_schedule *s, double tau);
void dsn_alpha_sigma(const deissn_schedule *s, double tau, double *alpha, double *sigma);

/* Interpolation nodes per step: a predictor of order 3 has 4, its corrector 5. */
#define DSN_MAX_NODES DEISSN_MAX_TERMS

/* The coefficients c[0..p] (p < DSN_MAX_NODES) of the step from tau_from down to tau_to, on
 * the normalised eps at the distinct times nodes[0..p] (any order; the predictor's are
 * tau_from and earlier evaluation times, the corrector's add tau_to), by piecewise
 * Gauss-Legendre quadrature (gl_points per piece: 8 normally; tests use others to check
 * convergence). table may be NULL (r = 1). c[j] = 0 for j > p. */
/* METHOD_DATA: the coefficients c[0..p] of the step from lambda_from to lambda_to (> from,
 * finite) on the data prediction x0 at the distinct log-SNRs nodes[0..p]:
 *   c_j = alpha_to * integral_0^h e^-u l_j(lambda_to - u) du,   h = lambda_to - lambda_from,
 * l_j the Lagrange basis in lambda. Exact for the probability-flow ODE whatever the noise
 * schedule: in lambda, x/sigma changes by the integral of e^lambda x0. c[j] = 0 for j > p. */
void dsn_coeffs_data(double lambda_from, double lambda_to, double alpha_to, const double *nodes,
                     uint32_t p, double c[DSN_MAX_NODES]);

void dsn_coeffs_quadrature(const deissn_schedule *s, const deissn_normtable *table,
                           double tau_from, double tau_to, const double *nodes, uint32_t p,
                           int gl_points, double c[DSN_MAX_NODES]);

/* Build a fingerprint from T and the alpha_bar values at k/T, k = 0..T. */
uint32_t dsn_fingerprint_of(const deissn_schedule *s);

#endif
