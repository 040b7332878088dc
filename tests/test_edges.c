/* test_edges.c - numerics and sizes at the edges of the public API:
 *   - NaN/Inf from the model inside deissn_sample(): reported with the step, x unchanged;
 *   - sizes whose byte counts overflow are refused before any memory is touched
 *     (deissn_step, deissn_sample, deissn_fill_noise);
 *   - 1-step and T-step plans for every spacing, with every order;
 *   - tau_end near 0 and the cosine schedule (alpha_bar(1) ~ 1e-9 ... 1e-4): finite
 *     coefficients and finite samples on the analytic Gaussian model; no Inf appears. */
#include "deissn.h"
#include "testlib.h"

#include <float.h>
#include <string.h>

#define CHECK_MSG(word, what)                                                                  \
    CHECK(strstr(deissn_last_error(), word) != NULL, "%s: message '%s' does not mention '%s'",  \
          what, deissn_last_error(), word)

/* The analytic eps of data ~ N(0, 0.5^2 I), at tau (DEISSN_TIME_TAU); optionally poisoned. */
typedef struct {
    const deissn_schedule *schedule;
    int poison_call; /* the call (0-based) that returns `poison`, -1: none */
    float poison;
    size_t poison_at;
    int calls;
} gauss;

static int gaussian_eps(void *user, const float *x, const int64_t *shape, uint32_t ndim,
                        double tau, float *out)
{
    gauss *g = user;
    size_t n = 1;
    for (uint32_t d = 0; d < ndim; d++) n *= (size_t)shape[d];
    double abar = deissn_schedule_alpha_bar(g->schedule, tau), sigma = sqrt(1 - abar);
    for (size_t i = 0; i < n; i++) out[i] = (float)(sigma * x[i] / (abar * 0.25 + sigma * sigma));
    if (g->calls++ == g->poison_call) out[g->poison_at] = g->poison;
    return 0;
}

static int all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

static deissn_schedule *make_schedule(int noise, int spacing, uint32_t steps, double tau_end,
                                      int32_t *rc)
{
    deissn_schedule_params p = DEISSN_SCHEDULE_PARAMS_INIT;
    p.noise = noise;
    p.spacing = spacing;
    p.steps = steps;
    p.tau_end = tau_end;
    double *custom = NULL;
    if (spacing == DEISSN_SPACING_CUSTOM) {
        custom = malloc(steps * sizeof *custom);
        for (uint32_t k = 0; k < steps; k++) custom[k] = 1.0 - (double)k / steps * (1 - 1e-3);
        p.custom_taus = custom;
        if (tau_end >= 1e-3) p.tau_end = 0;
    }
    deissn_schedule *s = NULL;
    *rc = deissn_schedule_create(&s, &p);
    free(custom);
    return s;
}

/* Every coefficient of every order finite; sampling the analytic model gives finite x (near
 * the data scale for orders 0 and 1). */
static void check_schedule(const deissn_schedule *s, const char *what)
{
    uint32_t N = deissn_schedule_steps(s);
    double tau[3] = {0.0, 0.5, 1.0}, r[3] = {0.55, 0.79, 0.8};
    deissn_normtable *table = NULL;
    deissn_normtable_create(&table, tau, r, 3, NULL);
    deissn_model_params mp = DEISSN_MODEL_PARAMS_INIT;
    mp.time_convention = DEISSN_TIME_TAU;
    gauss g = {s, -1, 0, 0, 0};
    deissn_model *m = NULL;
    deissn_model_from_callback(&m, gaussian_eps, &g, &mp);
    for (uint32_t order = 0; order <= 3; order++) {
        for (int with_table = 0; with_table < 2; with_table++) {
            deissn_sampler_params sp = DEISSN_SAMPLER_PARAMS_INIT;
            sp.order = order;
            deissn_sampler *smp = NULL;
            int32_t rc = deissn_sampler_create(&smp, s, with_table ? table : NULL, &sp);
            CHECK(rc == DEISSN_OK, "%s order %u table %d: sampler: %s", what, order, with_table,
                  deissn_last_error());
            if (rc) continue;
            int bad = 0;
            for (uint32_t i = 0; i < N && !bad; i++) {
                deissn_step_coeffs co = DEISSN_STEP_COEFFS_INIT;
                deissn_sampler_coeffs(smp, i, &co);
                bad = !isfinite(co.psi) || !(co.psi >= 1.0);
                for (int j = 0; j < 4; j++) bad |= !isfinite(co.c[j]) || !isfinite(co.r[j]);
                CHECK(!bad, "%s order %u table %d: step %u: psi %g c %g %g %g %g", what, order,
                      with_table, i, co.psi, co.c[0], co.c[1], co.c[2], co.c[3]);
            }
            float x[64];
            deissn_fill_noise(5, 0, 4, 16, x);
            const int64_t shape[2] = {4, 16};
            g.calls = 0;
            rc = deissn_sample(smp, m, x, shape, 2, NULL);
            CHECK(rc == DEISSN_OK, "%s order %u table %d: sample: %s", what, order, with_table,
                  deissn_last_error());
            CHECK(all_finite(x, 64), "%s order %u table %d: non-finite sample", what, order,
                  with_table);
            /* data ~ N(0, 0.25): orders 0 and 1 land near it. (Orders 2 and 3 may not: the
             * Adams-Bashforth extrapolation over the very uneven steps that logSNR and Karras
             * spacings make on the cosine schedule amplifies errors up to 1e4-fold, a
             * property of the method, not of the code.) */
            double mx = 0;
            for (int i = 0; i < 64; i++) mx = fmax(mx, fabs(x[i]));
            if (order <= 1)
                CHECK(mx < 10, "%s order %u table %d: max |x| %g", what, order, with_table, mx);
            CHECK((uint32_t)g.calls == N, "%s: %d model calls for %u steps", what, g.calls, N);
            deissn_sampler_free(smp);
        }
    }
    deissn_model_free(m);
    deissn_normtable_free(table);
}

static void test_nonfinite_in_sample(void)
{
    deissn_schedule *s = NULL;
    deissn_schedule_params p = DEISSN_SCHEDULE_PARAMS_INIT;
    p.steps = 8;
    deissn_schedule_create(&s, &p);
    deissn_sampler *smp = NULL;
    deissn_sampler_create(&smp, s, NULL, NULL);
    deissn_model_params mp = DEISSN_MODEL_PARAMS_INIT;
    mp.time_convention = DEISSN_TIME_TAU;
    const float poisons[3] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 8; k++) {
        gauss g = {s, k, poisons[k % 3], (size_t)(7 * k + 3), 0};
        deissn_model *m = NULL;
        deissn_model_from_callback(&m, gaussian_eps, &g, &mp);
        float x[3 * 40], before[3 * 40];
        deissn_fill_noise(11, 0, 3, 40, x);
        memcpy(before, x, sizeof x);
        const int64_t shape[3] = {3, 5, 8};
        char what[64], step[32], elem[32];
        snprintf(what, sizeof what, "%s at step %d", k % 3 ? "Inf" : "NaN", k);
        CHECK_STATUS(deissn_sample(smp, m, x, shape, 3, NULL), DEISSN_E_NONFINITE, what);
        snprintf(step, sizeof step, "step %d", k);
        snprintf(elem, sizeof elem, "element %d", 7 * k + 3);
        CHECK_MSG(step, what);
        CHECK_MSG(elem, what);
        CHECK_MSG(k % 3 ? "Inf" : "NaN", what);
        CHECK(memcmp(x, before, sizeof x) == 0, "%s: x changed", what);
        CHECK(g.calls == k + 1, "%s: the model was called %d times", what, g.calls);
        /* the sampler is still usable: the same call without the poison succeeds */
        g.poison_call = -1;
        CHECK_STATUS(deissn_sample(smp, m, x, shape, 3, NULL), DEISSN_OK, what);
        CHECK(all_finite(x, 120), "%s: retry finite", what);
        deissn_model_free(m);
    }
    deissn_sampler_free(smp);
    deissn_schedule_free(s);
}

static void test_overflowing_sizes(void)
{
    deissn_schedule *s = NULL;
    deissn_schedule_create(&s, NULL);
    deissn_sampler *smp = NULL;
    deissn_sampler_create(&smp, s, NULL, NULL);
    /* Small buffers with a huge n: the call must not read them (ASan would see it). */
    float x[4] = {1, 2, 3, 4}, out[4] = {0, 0, 0, 0};
    const size_t huge[] = {SIZE_MAX, SIZE_MAX / 2, SIZE_MAX / 2 + 1, SIZE_MAX / 4 + 1,
                           (size_t)PTRDIFF_MAX / 4 + 1};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "deissn_step n = %zu", huge[i]);
        CHECK_STATUS(deissn_step(smp, x, out, huge[i], NULL),
                     DEISSN_E_SIZE, what);
        CHECK_MSG("overflow", what);
        deissn_step_info info = DEISSN_STEP_INFO_INIT;
        CHECK(deissn_sampler_next(smp, &info) == DEISSN_OK && info.step == 0, "%s: stepped",
              what);
    }
    CHECK(x[0] == 1 && x[3] == 4, "x untouched");
    /* The state is fine afterwards: a real step works. */
    CHECK_STATUS(deissn_step(smp, x, out, 4, NULL), DEISSN_OK, "step");
    CHECK_STATUS(deissn_step(smp, x, out, SIZE_MAX / 2, NULL),
                 DEISSN_E_SIZE, "huge n after the batch size is fixed");

    /* deissn_sample: element counts and byte counts that overflow. */
    gauss g = {s, -1, 0, 0, 0};
    deissn_model *m = NULL;
    deissn_model_from_callback(&m, gaussian_eps, &g, NULL);
    const int64_t shapes[][3] = {{INT64_MAX, 2, 1}, {(int64_t)1 << 32, (int64_t)1 << 32, 1},
                                 {(int64_t)1 << 31, (int64_t)1 << 31, 4},
                                 {(int64_t)1 << 61, 1, 1}, {(int64_t)1 << 30, (int64_t)1 << 31, 1},
                                 {1, 1, INT64_MAX}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "deissn_sample shape {%lld, %lld, %lld}",
                 (long long)shapes[i][0], (long long)shapes[i][1], (long long)shapes[i][2]);
        CHECK_STATUS(deissn_sample(smp, m, x, shapes[i], 3, NULL), DEISSN_E_SIZE, what);
        CHECK_MSG("overflow", what);
    }
    CHECK(g.calls == 0, "the model was called for an overflowing shape");
    CHECK(x[0] != 0 && all_finite(x, 4), "x untouched");

    /* deissn_fill_noise: the count overflows, or its byte count does. */
    float canary[4] = {42, 42, 42, 42};
    const size_t pairs[][2] = {{SIZE_MAX / 2, 4}, {SIZE_MAX, SIZE_MAX}, {SIZE_MAX / 4 + 1, 1},
                               {1, SIZE_MAX / 4 + 1}, {(size_t)1 << 32, (size_t)1 << 32}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "deissn_fill_noise %zu x %zu", pairs[i][0], pairs[i][1]);
        CHECK_STATUS(deissn_fill_noise(1, 0, pairs[i][0], pairs[i][1], canary), DEISSN_E_SIZE,
                     what);
    }
    CHECK(canary[0] == 42 && canary[3] == 42, "deissn_fill_noise wrote before refusing");
    CHECK_STATUS(deissn_fill_noise(1, 0, 0, SIZE_MAX, NULL), DEISSN_OK, "no samples, NULL out");
    CHECK_STATUS(deissn_fill_noise(1, UINT64_MAX, 1, 4, canary), DEISSN_OK, "last sample index");
    CHECK(all_finite(canary, 4) && canary[0] != 42, "noise of the last sample index");

    deissn_model_free(m);
    deissn_sampler_free(smp);
    deissn_schedule_free(s);
}

static const char *spacing_name[] = {"quadratic", "trailing", "linspace", "leading",
                                     "power",     "logsnr",   "karras",   "custom"};

/* 1 step and T steps work for every spacing (finite everything, times strictly decreasing);
 * T + 1 steps are refused. */
static void test_extreme_step_counts(void)
{
    const uint32_t T = 1000;
    for (int sp = DEISSN_SPACING_QUADRATIC; sp <= DEISSN_SPACING_CUSTOM; sp++) {
        char what[64];
        int32_t rc;
        snprintf(what, sizeof what, "%s, 1 step", spacing_name[sp]);
        deissn_schedule *s = make_schedule(DEISSN_NOISE_LINEAR, sp, 1, 0, &rc);
        CHECK(rc == DEISSN_OK, "%s: %s", what, deissn_last_error());
        if (s) check_schedule(s, what);
        deissn_schedule_free(s);

        snprintf(what, sizeof what, "%s, T steps", spacing_name[sp]);
        s = make_schedule(DEISSN_NOISE_LINEAR, sp, T, 0, &rc);
        CHECK(rc == DEISSN_OK, "%s: %s", what, deissn_last_error());
        if (s) {
            double taus[1001];
            deissn_schedule_times(s, taus, 1001);
            int ok = 1;
            for (uint32_t k = 0; k < T; k++) ok &= taus[k] > taus[k + 1];
            CHECK(ok && taus[T] == 0, "%s: times not strictly decreasing to 0", what);
            check_schedule(s, what);
        }
        deissn_schedule_free(s);
    }
    int32_t rc;
    deissn_schedule *s = make_schedule(DEISSN_NOISE_LINEAR, DEISSN_SPACING_TRAILING, T + 1, 0, &rc);
    CHECK(s == NULL && rc == DEISSN_E_INVALID_ARG, "T + 1 steps accepted");
    CHECK_MSG("1..1000", "T + 1 steps");
}

/* tau_end near 0, and schedules whose alpha_bar(1) is tiny. */
static void test_small_times(void)
{
    const double ends[] = {1e-12, 1e-8, 1e-5};
    const int noises[] = {DEISSN_NOISE_LINEAR, DEISSN_NOISE_SQUAREDCOS_CAP_V2,
                          DEISSN_NOISE_CONTINUOUS_VP};
    const char *noise_name[] = {"linear", "cosine", "continuous VP"};
    const int spacings[] = {DEISSN_SPACING_POWER, DEISSN_SPACING_LOGSNR, DEISSN_SPACING_KARRAS,
                            DEISSN_SPACING_TRAILING, DEISSN_SPACING_QUADRATIC};
    for (size_t n = 0; n < 3; n++) {
        for (size_t e = 0; e < 3; e++) {
            for (size_t sp = 0; sp < sizeof spacings / sizeof spacings[0]; sp++) {
                for (uint32_t steps = 2; steps <= 20; steps *= 3) {
                    char what[96];
                    snprintf(what, sizeof what, "%s, %s, %u steps, tau_end %g", noise_name[n],
                             spacing_name[spacings[sp]], steps, ends[e]);
                    int32_t rc;
                    deissn_schedule *s = make_schedule(noises[n], spacings[sp], steps, ends[e], &rc);
                    CHECK(rc == DEISSN_OK, "%s: %s", what, deissn_last_error());
                    if (s) check_schedule(s, what);
                    deissn_schedule_free(s);
                }
            }
        }
    }
    /* The cosine schedule really is extreme at tau = 1 (this is what the test is about). */
    int32_t rc;
    deissn_schedule *cos = make_schedule(DEISSN_NOISE_SQUAREDCOS_CAP_V2, 0, 10, 0, &rc);
    double a1 = deissn_schedule_alpha_bar(cos, 1.0);
    CHECK(a1 > 0 && a1 < 1e-4, "cosine alpha_bar(1) = %g", a1);
    printf("# cosine alpha_bar(1) = %.3g\n", a1);
    deissn_schedule_free(cos);
}

/* Model outputs near the float32 limit: the sampler either completes with finite x or says
 * why; it never leaves an Inf in x with DEISSN_OK. */
static int huge_eps(void *user, const float *x, const int64_t *shape, uint32_t ndim, double tau,
                    float *out)
{
    (void)user, (void)x, (void)tau;
    size_t n = 1;
    for (uint32_t d = 0; d < ndim; d++) n *= (size_t)shape[d];
    for (size_t i = 0; i < n; i++) out[i] = i % 2 ? FLT_MAX : -FLT_MAX;
    return 0;
}

static void test_no_silent_inf(void)
{
    deissn_schedule *s = NULL;
    deissn_schedule_create(&s, NULL);
    for (uint32_t order = 0; order <= 3; order++) {
        deissn_sampler_params sp = DEISSN_SAMPLER_PARAMS_INIT;
        sp.order = order;
        deissn_sampler *smp = NULL;
        deissn_sampler_create(&smp, s, NULL, &sp);
        deissn_model *m = NULL;
        deissn_model_from_callback(&m, huge_eps, NULL, NULL);
        float x[8], before[8];
        deissn_fill_noise(3, 0, 1, 8, x);
        memcpy(before, x, sizeof x);
        const int64_t shape[1] = {8};
        int32_t rc = deissn_sample(smp, m, x, shape, 1, NULL);
        char what[48];
        snprintf(what, sizeof what, "eps = +-FLT_MAX, order %u", order);
        /* psi x + C eps overflows float32 on the first step */
        CHECK_STATUS(rc, DEISSN_E_NONFINITE, what);
        CHECK_MSG("step 0", what);
        CHECK(memcmp(x, before, sizeof x) == 0, "%s: x changed on error", what);
        deissn_model_free(m);
        deissn_sampler_free(smp);
    }
    deissn_schedule_free(s);
}

int main(void)
{
    test_nonfinite_in_sample();
    test_overflowing_sizes();
    test_extreme_step_counts();
    test_small_times();
    test_no_silent_inf();
    TEST_SUMMARY();
}
