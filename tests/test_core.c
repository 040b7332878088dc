/* test_core.c - the maths: DDIM closed form, quadrature accuracy, convergence order on an
 * analytic Gaussian-mixture model, constant tables, spacings, noise. */
#include "maths/schedule.h"
#include "maths/coeffs.h"
#include "tables/normtable.h"
#include "deissn.h"
#include "testlib.h"

#include <string.h>

static deissn_schedule *make_schedule(int noise, int spacing, uint32_t steps, double tau_end)
{
    deissn_schedule_params p;
    deissn_schedule_params_init(&p, DEISSN_SCHEDULE_PARAMS_VERSION);
    p.noise = noise;
    p.spacing = spacing;
    p.steps = steps;
    p.tau_end = tau_end;
    deissn_schedule *s = NULL;
    int32_t rc = deissn_schedule_create(&s, &p);
    CHECK(rc == DEISSN_OK, "schedule noise %d spacing %d steps %u: %s", noise, spacing, steps,
          deissn_last_error());
    return s;
}

/* Order 0 without a table is DDIM: the closed form the sampler uses must agree with the
 * quadrature to 1e-12, on every schedule, so both are checked against each other. */
static void test_ddim_closed_form(void)
{
    const int noises[] = {DEISSN_NOISE_LINEAR, DEISSN_NOISE_SCALED_LINEAR,
                          DEISSN_NOISE_SQUAREDCOS_CAP_V2, DEISSN_NOISE_CONTINUOUS_VP};
    double worst = 0;
    for (size_t ni = 0; ni < sizeof noises / sizeof *noises; ni++) {
        for (int spacing = DEISSN_SPACING_QUADRATIC; spacing <= DEISSN_SPACING_KARRAS; spacing++) {
            deissn_schedule *s = make_schedule(noises[ni], spacing, 10, 0);
            deissn_sampler_params pp;
            deissn_sampler_params_init(&pp, DEISSN_SAMPLER_PARAMS_VERSION);
            pp.order = 0;
            deissn_sampler *sp = NULL;
            deissn_sampler_create(&sp, s, NULL, &pp);
            for (uint32_t i = 0; s && sp && i < 10; i++) {
                deissn_step_coeffs co = DEISSN_STEP_COEFFS_INIT;
                deissn_sampler_coeffs(sp, i, &co);
                double af = sqrt(deissn_schedule_alpha_bar(s, co.tau_from));
                double at = sqrt(deissn_schedule_alpha_bar(s, co.tau_to));
                double sf = sqrt(1 - af * af), st = sqrt(1 - at * at);
                double ddim = at * (st / at - sf / af);
                double quad[DSN_MAX_NODES];
                dsn_coeffs_quadrature(s, NULL, co.tau_from, co.tau_to, &co.tau_from, 0, 8, quad);
                /* this naive formula loses ~1e-12 to cancellation in 1 - alpha^2 near tau = 0 */
                double e1 = fabs(co.c[0] - ddim) / fabs(ddim);
                double e2 = fabs(quad[0] - co.c[0]) / fabs(co.c[0]);
                if (e2 > worst) worst = e2;
                CHECK(e1 <= 1e-10, "noise %d spacing %d step %u: C %.17g, DDIM %.17g", noises[ni],
                      spacing, i, co.c[0], ddim);
                /* At the end of the cosine schedule alpha_bar falls 1000-fold inside one knot
                 * interval, so alpha_bar(tau) itself is only good to ~1e-12 there. */
                double tol = noises[ni] == DEISSN_NOISE_SQUAREDCOS_CAP_V2 ? 1e-11 : 1e-12;
                CHECK(e2 <= tol, "noise %d spacing %d step %u: quadrature %.17g, DDIM %.17g",
                      noises[ni], spacing, i, quad[0], co.c[0]);
                CHECK(fabs(co.psi - at / af) <= 1e-15 * co.psi, "psi");
            }
            deissn_sampler_free(sp);
            deissn_schedule_free(s);
        }
    }
    printf("# DDIM closed form vs quadrature: worst relative difference %.3g\n", worst);
}

/* Quadrature with 8 points per piece against 16 points: both converge to the same integral,
 * so their difference bounds the error (the target is 1e-10). */
/* METHOD_DATA order 1 against its closed form. With x0 linear in lambda through the last two
 * evaluations (lambda_i and lambda_{i-1}, r = lambda_i - lambda_{i-1}) and h = lambda_to -
 * lambda_i, the step's integrals are alpha_to (1 - e^-h) and alpha_to (h - 1 + e^-h) / r:
 *   D0 = alpha_to (1 - e^-h) + alpha_to (h - 1 + e^-h) / r,   D1 = -alpha_to (h - 1 + e^-h) / r
 * (the exact weights behind DPM-Solver++(2M)); psi = sigma_to / sigma_from. */
static void test_data_closed_form(void)
{
    const int noises[] = {DEISSN_NOISE_LINEAR, DEISSN_NOISE_SQUAREDCOS_CAP_V2,
                          DEISSN_NOISE_CONTINUOUS_VP};
    double worst = 0;
    for (size_t ni = 0; ni < 3; ni++) {
        deissn_schedule *s = make_schedule(noises[ni], DEISSN_SPACING_TRAILING, 12, 1e-3);
        deissn_sampler_params pp;
        deissn_sampler_params_init(&pp, DEISSN_SAMPLER_PARAMS_VERSION);
        pp.order = 1;
        pp.method = DEISSN_METHOD_DATA;
        deissn_sampler *sp = NULL;
        CHECK_STATUS(deissn_sampler_create(&sp, s, NULL, &pp), DEISSN_OK, "data sampler");
        for (uint32_t i = 1; sp && i < 12; i++) {
            deissn_step_coeffs co = DEISSN_STEP_COEFFS_INIT, prev = DEISSN_STEP_COEFFS_INIT;
            deissn_sampler_coeffs(sp, i, &co);
            deissn_sampler_coeffs(sp, i - 1, &prev);
            double lam[3], al[3], sg[3], taus[3] = {prev.tau_from, co.tau_from, co.tau_to};
            for (int k = 0; k < 3; k++) {
                double ab = deissn_schedule_alpha_bar(s, taus[k]);
                al[k] = sqrt(ab);
                sg[k] = sqrt(1 - ab);
                lam[k] = log(al[k] / sg[k]);
            }
            double h = lam[2] - lam[1], r = lam[1] - lam[0], em = -expm1(-h);
            double d1 = -al[2] * (h - em) / r, d0 = al[2] * em - d1;
            double e = fmax(fabs(co.c[0] - d0), fabs(co.c[1] - d1)) / fabs(d0);
            if (e > worst) worst = e;
            CHECK(co.order == 1 && e < 1e-9 && fabs(co.psi - sg[2] / sg[1]) < 1e-9 * co.psi,
                  "noise %d step %u: D = %.17g %.17g, closed form %.17g %.17g", noises[ni], i,
                  co.c[0], co.c[1], d0, d1);
        }
        deissn_sampler_free(sp);
        deissn_schedule_free(s);
    }
    printf("# METHOD_DATA order 1 vs closed form: worst relative difference %.3g\n", worst);
}

static void test_quadrature_convergence(void)
{
    double knots_tau[5] = {0, 0.1, 0.4, 0.7, 1}, knots_r[5] = {0.5, 0.8, 0.79, 0.8, 0.81};
    deissn_normtable *t = NULL;
    deissn_normtable_create(&t, knots_tau, knots_r, 5, NULL);
    const int noises[] = {DEISSN_NOISE_LINEAR, DEISSN_NOISE_SQUAREDCOS_CAP_V2,
                          DEISSN_NOISE_CONTINUOUS_VP};
    double worst = 0;
    for (size_t ni = 0; ni < 3; ni++) {
        for (double tau_end = 0; tau_end < 0.001; tau_end += 0.0005) {
            deissn_schedule *s = make_schedule(noises[ni], DEISSN_SPACING_LOGSNR, 7, tau_end);
            double taus[8];
            deissn_schedule_times(s, taus, 8);
            for (int i = 3; i < 7; i++) {
                double nodes[4] = {taus[i], taus[i - 1], taus[i - 2], taus[i - 3]};
                for (int with_table = 0; with_table < 2; with_table++) {
                    double c8[DSN_MAX_NODES], c16[DSN_MAX_NODES];
                    dsn_coeffs_quadrature(s, with_table ? t : NULL, taus[i], taus[i + 1], nodes, 3, 8, c8);
                    dsn_coeffs_quadrature(s, with_table ? t : NULL, taus[i], taus[i + 1], nodes, 3, 16, c16);
                    double scale = 0;
                    for (int j = 0; j < 4; j++) scale = fmax(scale, fabs(c16[j]));
                    for (int j = 0; j < 4; j++) {
                        double e = fabs(c8[j] - c16[j]) / scale;
                        if (e > worst) worst = e;
                        CHECK(e <= 1e-11, "noise %d step %d C%d: 8 points %.17g, 16 points %.17g",
                              noises[ni], i, j, c8[j], c16[j]);
                    }
                }
            }
            deissn_schedule_free(s);
        }
    }
    deissn_normtable_free(t);
    printf("# quadrature, 8 vs 16 Gauss-Legendre points per piece: worst %.3g\n", worst);
}

/* A constant table r = c only rescales eps: the steps are the same as plain DEIS. With c a
 * power of two every operation scales exactly, so the samples are bit-identical; with another
 * c they agree to rounding. */
static void test_constant_table(void)
{
    double tau[2] = {0, 1};
    for (int ci = 0; ci < 2; ci++) {
        double c = ci == 0 ? 2.0 : 0.8;
        double r[2] = {c, c};
        deissn_normtable *t = NULL;
        deissn_normtable_create(&t, tau, r, 2, NULL);
        for (uint32_t order = 0; order <= 3; order++) {
            deissn_schedule *s = make_schedule(DEISSN_NOISE_LINEAR, DEISSN_SPACING_QUADRATIC, 10, 0);
            deissn_sampler_params pp;
            deissn_sampler_params_init(&pp, DEISSN_SAMPLER_PARAMS_VERSION);
            pp.order = order;
            deissn_sampler *a = NULL, *b = NULL;
            deissn_sampler_create(&a, s, NULL, &pp);
            deissn_sampler_create(&b, s, t, &pp);
            float xa[64], xb[64], eps[64];
            deissn_fill_noise(7, 0, 1, 64, xa);
            memcpy(xb, xa, sizeof xa);
            int32_t ra = DEISSN_OK, rb = DEISSN_OK;
            double maxdiff = 0;
            for (int step = 0; ra == DEISSN_OK && rb == DEISSN_OK; step++) {
                deissn_step_info info = DEISSN_STEP_INFO_INIT;
                deissn_sampler_next(a, &info);
                for (int k = 0; k < 64; k++) eps[k] = (float)sin(3 * xa[k] + info.tau);
                ra = deissn_step(a, xa, eps, 64, NULL);
                for (int k = 0; k < 64; k++) eps[k] = (float)sin(3 * xb[k] + info.tau);
                rb = deissn_step(b, xb, eps, 64, NULL);
            }
            for (int k = 0; k < 64; k++) {
                double d = fabs(xa[k] - xb[k]);
                if (d > maxdiff) maxdiff = d;
            }
            CHECK(ra == DEISSN_DONE && rb == DEISSN_DONE, "both finish");
            if (c == 2.0)
                CHECK(memcmp(xa, xb, sizeof xa) == 0, "r = 2, order %u: not bit-identical (max diff %g)",
                      order, maxdiff);
            else
                CHECK(maxdiff <= 1e-5, "r = 0.8, order %u: max diff %g", order, maxdiff);
            deissn_sampler_free(a);
            deissn_sampler_free(b);
            deissn_schedule_free(s);
        }
        deissn_normtable_free(t);
    }
}

/* ---- convergence order on a Gaussian mixture --------------------------------------------
 * Data: 1-D mixture of N(mu_m, s^2) with weights w_m. At time tau the marginal is a mixture of
 * N(alpha mu_m, alpha^2 s^2 + sigma^2), and eps = -sigma * d/dx log p. The reference solution
 * integrates the probability-flow ODE in DDIM form, d(x/alpha)/d(sigma/alpha) = eps, with
 * classical RK4 in rho = sigma/alpha on a fine grid: an independent solver. */

static const double mix_mu[3] = {-1.2, 0.3, 1.5}, mix_w[3] = {0.3, 0.5, 0.2}, mix_s = 0.25;

static double mixture_eps(double x, double alpha, double sigma)
{
    double num = 0, den = 0;
    for (int m = 0; m < 3; m++) {
        double v = alpha * alpha * mix_s * mix_s + sigma * sigma, d = x - alpha * mix_mu[m];
        double pdf = mix_w[m] * exp(-0.5 * d * d / v) / sqrt(v);
        num += pdf * (-d / v);
        den += pdf;
    }
    return -sigma * num / den;
}

/* tau for rho = sigma/alpha on the continuous VP schedule (beta 0.1..20). */
static double tau_of_rho(double rho)
{
    double L = log1p(rho * rho); /* -log abar */
    double a = 0.5 * (20 - 0.1), b = 0.1;
    return 2 * L / (b + sqrt(b * b + 4 * a * L));
}

static double reference_solution(double x1, double tau_end)
{
    double abar1 = exp(-(0.1 + 0.5 * 19.9)), abar0 = exp(-(0.1 * tau_end + 0.5 * 19.9 * tau_end * tau_end));
    double rho1 = sqrt((1 - abar1) / abar1), rho0 = sqrt((1 - abar0) / abar0);
    int n = 20000;
    double y = x1 / sqrt(abar1 / 1.0) * 1.0, h = (rho0 - rho1) / n;
    y = x1 * sqrt(1 + rho1 * rho1); /* x / alpha */
    for (int i = 0; i < n; i++) {
        double r = rho1 + i * h;
#define F(rr, yy) mixture_eps((yy) / sqrt(1 + (rr) * (rr)), 1 / sqrt(1 + (rr) * (rr)), \
                              (rr) / sqrt(1 + (rr) * (rr)))
        double k1 = F(r, y), k2 = F(r + h / 2, y + h / 2 * k1), k3 = F(r + h / 2, y + h / 2 * k2),
               k4 = F(r + h, y + h * k3);
        y += h / 6 * (k1 + 2 * k2 + 2 * k3 + k4);
    }
    (void)tau_of_rho;
    return y / sqrt(1 + rho0 * rho0);
}

/* The largest error of a sampler ({method, order, corrector}) on the mixture from x1[0..n)
 * (n <= 16) at `steps` steps of `spacing` to tau_end, against want[]. */
static double mixture_error(const uint32_t cfg[3], int spacing, uint32_t steps, double tau_end,
                            const double *x1, const double *want, int n)
{
    deissn_schedule *s = make_schedule(DEISSN_NOISE_CONTINUOUS_VP, spacing, steps, tau_end);
    deissn_sampler_params pp;
    deissn_sampler_params_init(&pp, DEISSN_SAMPLER_PARAMS_VERSION);
    pp.method = (int32_t)cfg[0];
    pp.order = cfg[1];
    pp.corrector = cfg[2];
    deissn_sampler *sp = NULL;
    int32_t rc = deissn_sampler_create(&sp, s, NULL, &pp);
    CHECK(rc == DEISSN_OK, "method %u: %s", cfg[0], deissn_last_error());
    float x[16], eps[16];
    for (int k = 0; k < n; k++) x[k] = (float)x1[k];
    deissn_step_info info = DEISSN_STEP_INFO_INIT;
    rc = sp ? deissn_sampler_next(sp, &info) : DEISSN_E_INVALID_ARG;
    while (rc == DEISSN_OK) {
        for (int k = 0; k < n; k++) eps[k] = (float)mixture_eps(x[k], info.alpha, info.sigma);
        rc = deissn_step(sp, x, eps, (size_t)n, &info);
    }
    CHECK(rc == DEISSN_DONE, "method %u: %s", cfg[0], deissn_last_error());
    double err = 0;
    for (int k = 0; k < n; k++) err = fmax(err, fabs(x[k] - want[k]));
    deissn_sampler_free(sp);
    deissn_schedule_free(s);
    return err;
}

static void test_convergence_order(void)
{
    enum { NX = 8 };
    const double tau_end = 0.1;
    double x1[NX], want[NX];
    for (int k = 0; k < NX; k++) {
        x1[k] = -2.0 + 4.0 * k / (NX - 1);
        want[k] = reference_solution(x1[k], tau_end);
    }
    /* The state is float32, so errors stop falling near 1e-6: the highest orders use the
     * coarser grids. The corrector raises the order by one. */
    const uint32_t steps[] = {32, 64, 128, 256};
    /* {method, order, corrector}: eps orders 0-3; x0 orders 0-3; x0 with the corrector 0-2 */
    static const uint32_t cases[][3] = {
        {DEISSN_METHOD_EPS, 0, 0},  {DEISSN_METHOD_EPS, 1, 0},  {DEISSN_METHOD_EPS, 2, 0},
        {DEISSN_METHOD_EPS, 3, 0},  {DEISSN_METHOD_DATA, 0, 0}, {DEISSN_METHOD_DATA, 1, 0},
        {DEISSN_METHOD_DATA, 2, 0}, {DEISSN_METHOD_DATA, 3, 0}, {DEISSN_METHOD_DATA, 0, 1},
        {DEISSN_METHOD_DATA, 1, 1}, {DEISSN_METHOD_DATA, 2, 1}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        uint32_t method = cases[ci][0], order = cases[ci][1], corrector = cases[ci][2];
        uint32_t expect = order + 1 + corrector;
        double err[4] = {0, 0, 0, 0};
        int first = 0, npts = expect >= 4 ? 3 : 4; /* 32..256 or 32..128 steps */
        for (int si = first; si < first + npts; si++)
            err[si] = mixture_error(cases[ci], DEISSN_SPACING_POWER, steps[si], tau_end, x1,
                                    want, NX);
        /* least-squares slope of log err against log h */
        double sx = 0, sy = 0, sxx = 0, sxy = 0;
        for (int si = first; si < first + npts; si++) {
            double lx = log(1.0 / steps[si]), ly = log(err[si]);
            sx += lx; sy += ly; sxx += lx * lx; sxy += lx * ly;
        }
        double slope = (npts * sxy - sx * sy) / (npts * sxx - sx * sx);
        printf("# %s order %u%s: max error %.3g %.3g %.3g %.3g at 32..256 steps, slope %.2f "
               "(expect %u)\n", method == DEISSN_METHOD_DATA ? "x0 " : "eps", order,
               corrector ? " + corrector" : "", err[0], err[1], err[2], err[3], slope, expect);
        /* Warm-up steps of lower order keep the slope a little under the order at these
         * sizes. */
        double below = expect >= 4 ? 0.6 : 0.35; /* the 3-point fits of order 4 */
        CHECK(slope > expect - below && slope < expect + 0.7,
              "method %u order %u corrector %u: convergence slope %.2f, expected about %u",
              method, order, corrector, slope, expect);
    }
}

/* Both methods sample to tau = 0 (where METHOD_DATA's last step is order 0, x = x0) and
 * converge there: from 64 to 256 trailing steps the error falls at least 3-fold (the
 * order-0 last step bounds METHOD_DATA to first order at tau = 0). */
static void test_methods_reach_tau_0(void)
{
    enum { NX = 8 };
    static const uint32_t cfg[][3] = {{DEISSN_METHOD_EPS, 3, 0}, {DEISSN_METHOD_DATA, 3, 0},
                                      {DEISSN_METHOD_DATA, 2, 1}};
    double x1[NX], want[NX];
    for (int k = 0; k < NX; k++) {
        x1[k] = -2.0 + 4.0 * k / (NX - 1);
        want[k] = reference_solution(x1[k], 0.0);
    }
    for (size_t c = 0; c < 3; c++) {
        double e64 = mixture_error(cfg[c], DEISSN_SPACING_TRAILING, 64, 0.0, x1, want, NX);
        double e256 = mixture_error(cfg[c], DEISSN_SPACING_TRAILING, 256, 0.0, x1, want, NX);
        printf("# to tau = 0, method %u order %u corrector %u: error %.3g (64 steps), %.3g "
               "(256)\n", cfg[c][0], cfg[c][1], cfg[c][2], e64, e256);
        CHECK(e64 < 3e-2 && e256 < e64 / 3, "method %u order %u corrector %u: error %.3g, "
              "%.3g at tau = 0", cfg[c][0], cfg[c][1], cfg[c][2], e64, e256);
    }
}

static void test_spacings(void)
{
    const int noises[] = {DEISSN_NOISE_LINEAR, DEISSN_NOISE_SCALED_LINEAR,
                          DEISSN_NOISE_SQUAREDCOS_CAP_V2, DEISSN_NOISE_CONTINUOUS_VP};
    for (size_t ni = 0; ni < 4; ni++) {
        for (int spacing = DEISSN_SPACING_QUADRATIC; spacing <= DEISSN_SPACING_KARRAS; spacing++) {
            /* quadratic rounds arange(T, 0, -T/N): it repeats times beyond N ~ sqrt(T)*... */
            const uint32_t counts[] = {1, 2, 10, 50, 1000};
            for (size_t c = 0; c < 5; c++) {
                deissn_schedule_params p;
                deissn_schedule_params_init(&p, DEISSN_SCHEDULE_PARAMS_VERSION);
                p.noise = noises[ni];
                p.spacing = spacing;
                p.steps = counts[c];
                deissn_schedule *s = NULL;
                int32_t rc = deissn_schedule_create(&s, &p);
                if (rc != DEISSN_OK) {
                    /* Only the quadratic spacing may legitimately repeat times (it rounds before
                     * squaring); it must then say so. */
                    CHECK(spacing == DEISSN_SPACING_QUADRATIC && rc == DEISSN_E_INVALID_ARG &&
                              strstr(deissn_last_error(), "strictly decreasing"),
                          "noise %d spacing %d steps %u: %s", noises[ni], spacing, counts[c],
                          deissn_last_error());
                    continue;
                }
                double taus[1001];
                deissn_schedule_times(s, taus, 1001);
                CHECK(taus[counts[c]] == 0.0, "tau_0 = %g", taus[counts[c]]);
                CHECK(spacing == DEISSN_SPACING_LINSPACE || spacing == DEISSN_SPACING_LEADING ||
                          fabs(taus[0] - 1.0) < 1e-12,
                      "spacing %d starts at tau %.17g", spacing, taus[0]);
                deissn_sampler *sp = NULL;
                CHECK_STATUS(deissn_sampler_create(&sp, s, NULL, NULL), DEISSN_OK, "sampler");
                for (uint32_t i = 0; sp && i < counts[c]; i++) {
                    deissn_step_coeffs co = DEISSN_STEP_COEFFS_INIT;
                    deissn_sampler_coeffs(sp, i, &co);
                    int finite = isfinite(co.psi);
                    for (int j = 0; j < 4; j++) finite = finite && isfinite(co.c[j]);
                    CHECK(finite, "noise %d spacing %d steps %u step %u: non-finite coefficient",
                          noises[ni], spacing, counts[c], i);
                    if (!finite) break;
                }
                deissn_sampler_free(sp);
                deissn_schedule_free(s);
            }
        }
    }
    /* Karras: rho = sigma/alpha is uniform in rho^(1/7). */
    deissn_schedule *s = make_schedule(DEISSN_NOISE_LINEAR, DEISSN_SPACING_KARRAS, 12, 0);
    double taus[13], prev = 0;
    deissn_schedule_times(s, taus, 13);
    for (int k = 0; k < 12; k++) {
        double ab = deissn_schedule_alpha_bar(s, taus[k]);
        double q = pow(sqrt((1 - ab) / ab), 1.0 / 7);
        if (k >= 2) CHECK(fabs((prev - q) - (pow(sqrt((1 - deissn_schedule_alpha_bar(s, taus[0])) / deissn_schedule_alpha_bar(s, taus[0])), 1.0 / 7) - pow(sqrt((1 - deissn_schedule_alpha_bar(s, taus[1])) / deissn_schedule_alpha_bar(s, taus[1])), 1.0 / 7))) < 1e-9,
                          "karras step %d not uniform", k);
        prev = q;
    }
    deissn_schedule_free(s);
}

static void test_noise(void)
{
    enum { N = 5, D = 1001 };
    static float batch[N * D], one[D];
    CHECK_STATUS(deissn_fill_noise(42, 10, N, D, batch), DEISSN_OK, "fill batch");
    for (int k = 0; k < N; k++) {
        deissn_fill_noise(42, 10 + (uint64_t)k, 1, D, one);
        CHECK(memcmp(one, batch + k * D, sizeof one) == 0, "sample %d differs between batch and single", k);
    }
    static float big[1 << 20];
    deissn_fill_noise(1, 0, 1, 1 << 20, big);
    double m1 = 0, m2 = 0, m4 = 0;
    for (int i = 0; i < (1 << 20); i++) {
        m1 += big[i];
        m2 += (double)big[i] * big[i];
        m4 += (double)big[i] * big[i] * big[i] * big[i];
    }
    m1 /= 1 << 20; m2 /= 1 << 20; m4 /= 1 << 20;
    printf("# noise moments over 2^20 values: mean %.4f, var %.4f, 4th %.4f\n", m1, m2, m4);
    CHECK(fabs(m1) < 0.005 && fabs(m2 - 1) < 0.01 && fabs(m4 - 3) < 0.05,
          "moments %g %g %g are not those of N(0, 1)", m1, m2, m4);
    deissn_fill_noise(2, 0, 1, 1 << 20, big);
    CHECK(memcmp(big, batch, sizeof batch) != 0, "different seeds give different noise");
}

int main(void)
{
    test_ddim_closed_form();
    test_quadrature_convergence();
    test_data_closed_form();
    test_constant_table();
    test_convergence_order();
    test_methods_reach_tau_0();
    test_spacings();
    test_noise();
    TEST_SUMMARY();
}
