/* coeffs.c - tAB-DEIS coefficients by piecewise Gauss-Legendre quadrature.
 *
 * For the step from tau_from to tau_to (< tau_from) with interpolation nodes nodes[0..p]
 * (the predictor's: tau_from and the earlier evaluation times; the corrector's: tau_to too):
 *   C_j = integral_{tau_from}^{tau_to} alpha(tau_to)/alpha(tau) * g2/2 * r(tau)/sigma(tau)
 *         * l_j(tau) dtau,         g2/2 = -alpha_bar'/(2 alpha_bar)
 * The integrand is smooth between the knots of alpha_bar (piecewise linear for discrete
 * schedules) and of the table, so we integrate piece by piece. Inside a discrete piece
 * 1 - alpha_bar = q (tau - tau0) is linear, and substituting tau = tau0 + u^2 cancels the
 * 1/sigma factor exactly: the tau -> 0 singularity disappears instead of being approximated.
 */
#include "maths/schedule.h"
#include "maths/coeffs.h"

#include <math.h>

/* Gauss-Legendre nodes and weights on [-1, 1] for the rules the library uses. */
typedef struct { int n; const double *x, *w; } gl_rule;

static const double gl4_x[] = {-0.8611363115940526, -0.3399810435848563, 0.3399810435848563,
                               0.8611363115940526};
static const double gl4_w[] = {0.3478548451374538, 0.6521451548625461, 0.6521451548625461,
                               0.3478548451374538};
static const double gl8_x[] = {-0.9602898564975363, -0.7966664774136267, -0.5255324099163290,
                               -0.1834346424956498, 0.1834346424956498,  0.5255324099163290,
                               0.7966664774136267,  0.9602898564975363};
static const double gl8_w[] = {0.1012285362903763, 0.2223810344533745, 0.3137066458778873,
                               0.3626837833783620, 0.3626837833783620, 0.3137066458778873,
                               0.2223810344533745, 0.1012285362903763};
static const double gl16_x[] = {
    -0.9894009349916499, -0.9445750230732326, -0.8656312023878318, -0.7554044083550030,
    -0.6178762444026438, -0.4580167776572274, -0.2816035507792589, -0.0950125098376374,
    0.0950125098376374,  0.2816035507792589,  0.4580167776572274,  0.6178762444026438,
    0.7554044083550030,  0.8656312023878318,  0.9445750230732326,  0.9894009349916499};
static const double gl16_w[] = {
    0.0271524594117541, 0.0622535239386479, 0.0951585116824928, 0.1246289712555339,
    0.1495959888165767, 0.1691565193950025, 0.1826034150449236, 0.1894506104550685,
    0.1894506104550685, 0.1826034150449236, 0.1691565193950025, 0.1495959888165767,
    0.1246289712555339, 0.0951585116824928, 0.0622535239386479, 0.0271524594117541};

static gl_rule rule_for(int n)
{
    if (n <= 4) return (gl_rule){4, gl4_x, gl4_w};
    if (n <= 8) return (gl_rule){8, gl8_x, gl8_w};
    return (gl_rule){16, gl16_x, gl16_w};
}

/* Continuous schedules have no knots; pieces are at most this wide. */
#define CONTINUOUS_PIECE (1.0 / 64)

typedef struct {
    const deissn_schedule *s;
    const deissn_normtable *t;
    const double *nodes;
    double denom[DSN_MAX_NODES]; /* prod_{m != j} (nodes[j] - nodes[m]) */
    uint32_t p;
    gl_rule rule;
    double acc[DSN_MAX_NODES];
} ctx;

static size_t table_n(const deissn_normtable *t) { return t ? t->n : 2; }

static double table_r(const deissn_normtable *t, double tau, size_t m)
{
    /* m: the table interval holding the piece, so no search per node */
    if (!t) return 1.0;
    if (tau <= t->tau[0]) return t->r[0];
    if (tau >= t->tau[t->n - 1]) return t->r[t->n - 1];
    double f = (tau - t->tau[m]) / (t->tau[m + 1] - t->tau[m]);
    return t->r[m] + (t->r[m + 1] - t->r[m]) * f;
}

/* Add weight * l_j(tau) to acc[j] for every basis polynomial. */
static void accumulate(ctx *c, double tau, double weight)
{
    const double *nd = c->nodes;
    for (uint32_t j = 0; j <= c->p; j++) {
        double l = 1.0;
        for (uint32_t m = 0; m <= c->p; m++)
            if (m != j) l *= tau - nd[m];
        c->acc[j] += weight * l / c->denom[j];
    }
}

/* Discrete piece [a, b] inside knot interval k, table interval m. */
static void piece_discrete(ctx *c, double a, double b, uint32_t k, size_t m)
{
    const deissn_schedule *s = c->s;
    double tk = (double)k / s->T;
    double q = (s->abar[k] - s->abar[k + 1]) * s->T; /* -d alpha_bar / d tau > 0 */
    double om_k = s->one_minus_abar[k];
    double tau0 = tk - om_k / q; /* where the linear 1 - alpha_bar reaches 0 */
    const gl_rule *R = &c->rule;

    if (a - tau0 <= 4 * (b - a)) {
        /* tau = tau0 + u^2: sigma = sqrt(q) u, dtau = 2u du, so the integrand
         * q/(2 abar^1.5 sigma) r l dtau becomes sqrt(q) r l / abar^1.5 du. */
        double ua = sqrt(a - tau0 > 0 ? a - tau0 : 0), ub = sqrt(b - tau0);
        double h = 0.5 * (ub - ua), mid = 0.5 * (ub + ua), sq = sqrt(q);
        for (int i = 0; i < R->n; i++) {
            double u = mid + h * R->x[i];
            double tau = tau0 + u * u;
            double abar = 1.0 - q * u * u;
            double f = sq * table_r(c->t, tau, m) / (abar * sqrt(abar));
            accumulate(c, tau, h * R->w[i] * f);
        }
    } else if (s->abar[k] - q * (a - tk) > 1.25 * (s->abar[k] - q * (b - tk))) {
        /* alpha_bar falls steeply towards 0 (the end of the cosine schedule): with
         * v = alpha_bar^-1/2 the factor alpha_bar^-1.5 dtau becomes 2/q dv, and the integrand
         * q/(2 abar^1.5 sigma) r l dtau becomes r l / sigma dv. */
        double va = 1.0 / sqrt(s->abar[k] - q * (a - tk));
        double vend = 1.0 / sqrt(s->abar[k] - q * (b - tk));
        /* 1/sigma = (1 - v^-2)^-1/2 still bends near small v: sub-pieces of ratio <= 2 */
        while (va < vend) {
            double vb = 2 * va < vend ? 2 * va : vend;
            double h = 0.5 * (vb - va), mid = 0.5 * (vb + va);
            for (int i = 0; i < R->n; i++) {
                double v = mid + h * R->x[i];
                double drop = s->abar[k] - 1.0 / (v * v); /* alpha_bar_k - alpha_bar(tau) */
                double tau = tk + drop / q;
                double f = table_r(c->t, tau, m) / sqrt(om_k + drop);
                accumulate(c, tau, h * R->w[i] * f);
            }
            va = vb;
        }
    } else {
        double h = 0.5 * (b - a), mid = 0.5 * (b + a);
        for (int i = 0; i < R->n; i++) {
            double tau = mid + h * R->x[i];
            double x = tau - tk;
            double abar = s->abar[k] - q * x;
            double sigma = sqrt(om_k + q * x);
            double f = 0.5 * q * table_r(c->t, tau, m) / (abar * sqrt(abar) * sigma);
            accumulate(c, tau, h * R->w[i] * f);
        }
    }
}

/* Continuous VP piece [a, b], table interval m. */
static void piece_continuous(ctx *c, double a, double b, size_t m)
{
    const deissn_schedule *s = c->s;
    const gl_rule *R = &c->rule;
    int subst = a <= 4 * (b - a); /* near tau = 0, where sigma ~ sqrt(beta_min tau) */
    double lo = subst ? sqrt(a) : a, hi = subst ? sqrt(b) : b;
    double h = 0.5 * (hi - lo), mid = 0.5 * (hi + lo);
    for (int i = 0; i < R->n; i++) {
        double v = mid + h * R->x[i];
        double tau = subst ? v * v : v;
        double L = s->beta_min * tau + 0.5 * (s->beta_max - s->beta_min) * tau * tau;
        double dL = s->beta_min + (s->beta_max - s->beta_min) * tau;
        double alpha = exp(-0.5 * L), sigma = sqrt(-expm1(-L));
        /* -abar'/(2 abar) = dL/2; times 1/(alpha sigma) */
        double f = 0.5 * dL * table_r(c->t, tau, m) / (alpha * sigma);
        if (subst) f *= 2 * v;
        accumulate(c, tau, h * R->w[i] * f);
    }
}

/* Index of the first table knot above tau (n when none). */
static size_t first_knot_above(const deissn_normtable *t, double tau)
{
    size_t lo = 0, hi = t->n; /* answer in [lo, hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->tau[mid] > tau) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

void dsn_coeffs_quadrature(const deissn_schedule *s, const deissn_normtable *table,
                           double tau_from, double tau_to, const double *nodes, uint32_t p,
                           int gl_points, double out[DSN_MAX_NODES])
{
    ctx c = {.s = s, .t = table, .nodes = nodes, .p = p, .rule = rule_for(gl_points)};
    for (uint32_t j = 0; j <= p; j++) {
        c.denom[j] = 1.0;
        for (uint32_t m = 0; m <= p; m++)
            if (m != j) c.denom[j] *= nodes[j] - nodes[m];
    }

    double a = tau_to, end = tau_from;
    size_t ti = table ? first_knot_above(table, a) : 0; /* next table knot */
    uint32_t k = 0;                                       /* knot interval of alpha_bar */
    if (s->abar) {
        double f = floor(a * s->T);
        k = f < 0 ? 0 : (f >= s->T ? s->T - 1 : (uint32_t)f);
        while (k > 0 && (double)k / s->T > a) k--;
        while (k + 1 < s->T && (double)(k + 1) / s->T <= a) k++;
    }
    while (a < end) {
        double b = end;
        if (s->abar) {
            double knot = (double)(k + 1) / s->T;
            if (knot < b) b = knot;
        } else {
            /* Near tau = 0 sigma ~ sqrt(beta_min tau + ...) has a branch point at
             * tau = -beta_min/(beta_max - beta_min) as well as at 0: pieces grow
             * geometrically from there so both stay far away relative to each piece. */
            double w = a < 1e-4 ? 1e-4 - a : (a < CONTINUOUS_PIECE ? a : CONTINUOUS_PIECE);
            if (a + w < b) b = a + w;
        }
        if (table && ti < table->n && table->tau[ti] < b) b = table->tau[ti];
        /* the table interval holding [a, b], clamped to the table's ends */
        size_t m = ti == 0 ? 0 : (ti >= table_n(table) ? table_n(table) - 2 : ti - 1);
        if (s->abar) piece_discrete(&c, a, b, k, m);
        else piece_continuous(&c, a, b, m);
        a = b;
        if (s->abar && k + 1 < s->T && a >= (double)(k + 1) / s->T) k++;
        while (table && ti < table->n && table->tau[ti] <= a) ti++;
    }

    /* The integral runs from tau_from down to tau_to: the sign flips. */
    double alpha_to, sigma_to;
    dsn_alpha_sigma(s, tau_to, &alpha_to, &sigma_to);
    for (uint32_t j = 0; j < DSN_MAX_NODES; j++) out[j] = j <= p ? -alpha_to * c.acc[j] : 0.0;
}

void dsn_coeffs_data(double lambda_from, double lambda_to, double alpha_to, const double *nodes,
                     uint32_t p, double out[DSN_MAX_NODES])
{
    double denom[DSN_MAX_NODES], acc[DSN_MAX_NODES] = {0};
    for (uint32_t j = 0; j <= p; j++) {
        denom[j] = 1.0;
        for (uint32_t m = 0; m <= p; m++)
            if (m != j) denom[j] *= nodes[j] - nodes[m];
    }
    /* e^-u falls by e per unit of u: Gauss-Legendre 8 on pieces of width <= 1 integrates it
     * times a polynomial of degree <= 4 to ~1e-15. */
    double h = lambda_to - lambda_from;
    int pieces = (int)ceil(h);
    if (pieces < 1) pieces = 1;
    double w = h / pieces;
    const gl_rule R = rule_for(8);
    for (int k = 0; k < pieces; k++) {
        double mid = (k + 0.5) * w, half = 0.5 * w;
        for (int i = 0; i < R.n; i++) {
            double u = mid + half * R.x[i];
            double lam = lambda_to - u, weight = half * R.w[i] * exp(-u);
            for (uint32_t j = 0; j <= p; j++) {
                double l = 1.0;
                for (uint32_t m = 0; m <= p; m++)
                    if (m != j) l *= lam - nodes[m];
                acc[j] += weight * l / denom[j];
            }
        }
    }
    for (uint32_t j = 0; j < DSN_MAX_NODES; j++) out[j] = j <= p ? alpha_to * acc[j] : 0.0;
}
