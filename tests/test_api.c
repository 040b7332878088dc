/* test_api.c - the public contract: bad input gets its status and a message that names the
 * problem, and a failing call changes nothing. Also versions, status strings, lifetimes. */
#include "deissn.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The last error mentions `word`. */
#define CHECK_MSG(word, what)                                                                  \
    CHECK(strstr(deissn_last_error(), word) != NULL, "%s: message '%s' does not mention '%s'",  \
          what, deissn_last_error(), word)

static deissn_schedule *schedule_with(uint32_t steps, int spacing)
{
    deissn_schedule_params p;
    deissn_schedule_params_init(&p, DEISSN_SCHEDULE_PARAMS_VERSION);
    p.steps = steps;
    p.spacing = spacing;
    deissn_schedule *s = NULL;
    deissn_schedule_create(&s, &p);
    return s;
}

static void test_versions_and_strings(void)
{
    CHECK(deissn_version_number() == DEISSN_VERSION_NUMBER, "library %u vs header %u",
          deissn_version_number(), DEISSN_VERSION_NUMBER);
    CHECK(strcmp(deissn_version_string(), DEISSN_VERSION_STRING) == 0, "version string");
    for (int32_t st = -20; st <= 2; st++) CHECK(deissn_status_string(st) != NULL, "status %d", st);
    CHECK(strcmp(deissn_status_string(DEISSN_E_NONFINITE), "unknown status") != 0, "named");
    CHECK(deissn_last_error() != NULL, "last error never NULL");
}

/* LOGSNR/KARRAS stopping early with no tau_min_eval: tau_end and the N evaluations are N + 1
 * points of the spacing, so tau_1 is one step above tau_end; a rho out of reach is named. */
static void test_early_stop_spacings(void)
{
    for (int sp = DEISSN_SPACING_LOGSNR; sp <= DEISSN_SPACING_KARRAS; sp++) {
        deissn_schedule_params p = DEISSN_SCHEDULE_PARAMS_INIT;
        p.spacing = sp;
        p.steps = 10;
        p.tau_end = 1e-3;
        deissn_schedule *s = NULL;
        CHECK_STATUS(deissn_schedule_create(&s, &p), DEISSN_OK, "early stop, default tau_min_eval");
        double t[11];
        deissn_schedule_times(s, t, 11);
        /* the same spacing with 11 points ending at tau_end, without the early stop */
        deissn_schedule_params q = p;
        q.steps = 11;
        q.tau_end = 0;
        q.tau_min_eval = 1e-3;
        deissn_schedule *r = NULL;
        deissn_schedule_create(&r, &q);
        double u[12];
        deissn_schedule_times(r, u, 12);
        CHECK(t[10] == 1e-3 && fabs(t[9] - u[9]) < 1e-12 && t[9] > 1e-3,
              "spacing %d: tau_1 %.17g is one step above tau_end (11-point grid: %.17g)", sp, t[9],
              u[9]);
        deissn_schedule_free(s);
        deissn_schedule_free(r);
    }
    deissn_schedule_params k = DEISSN_SCHEDULE_PARAMS_INIT;
    k.spacing = DEISSN_SPACING_KARRAS;
    k.karras_rho = 0.001;
    deissn_schedule *s = NULL;
    CHECK_STATUS(deissn_schedule_create(&s, &k), DEISSN_E_INVALID_ARG, "karras rho 0.001");
    CHECK(strstr(deissn_last_error(), "karras_rho") != NULL && !strstr(deissn_last_error(), "nan"),
          "the message names karras_rho, not a NaN time: %s", deissn_last_error());
    k.spacing = DEISSN_SPACING_QUADRATIC;
    k.tau_end = 0.999999999;
    CHECK_STATUS(deissn_schedule_create(&s, &k), DEISSN_E_INVALID_ARG, "tau_end near 1");
    CHECK(strstr(deissn_last_error(), "0.999999999") != NULL, "the value is printed in full: %s",
          deissn_last_error());
}

static void test_schedule_errors(void)
{
    deissn_schedule *s = (deissn_schedule *)&s; /* must be set to NULL on error */
    deissn_schedule_params p;
    CHECK_STATUS(deissn_schedule_create(NULL, NULL), DEISSN_E_INVALID_ARG, "out NULL");
    CHECK_STATUS(deissn_schedule_params_init(NULL, DEISSN_SCHEDULE_PARAMS_VERSION), DEISSN_E_INVALID_ARG, "init NULL");

    deissn_schedule_params_init(&p, DEISSN_SCHEDULE_PARAMS_VERSION);
    p.steps = 0;
    CHECK_STATUS(deissn_schedule_create(&s, &p), DEISSN_E_INVALID_ARG, "zero steps");
    CHECK(s == NULL, "out is NULL after an error");
    CHECK_MSG("steps 0", "zero steps");

    p.steps = 1001;
    CHECK_STATUS(deissn_schedule_create(&s, &p), DEISSN_E_INVALID_ARG, "too many steps");
    CHECK_MSG("1..1000", "too many steps");

    deissn_schedule_params_init(&p, DEISSN_SCHEDULE_PARAMS_VERSION);
    p.version = 99;
    CHECK_STATUS(deissn_schedule_create(&s, &p), DEISSN_E_INVALID_ARG, "bad version");
    CHECK_MSG("version", "bad version");

    deissn_schedule_params_init(&p, DEISSN_SCHEDULE_PARAMS_VERSION);
    p.noise = 42;
    CHECK_STATUS(deissn_schedule_create(&s, &p), DEISSN_E_INVALID_ARG, "unknown noise");
    deissn_schedule_params_init(&p, DEISSN_SCHEDULE_PARAMS_VERSION);
    p.spacing = 42;
    CHECK_STATUS(deissn_schedule_create(&s, &p), DEISSN_E_INVALID_ARG, "unknown spacing");
    CHECK_MSG("spacing 42", "unknown spacing");

    double unsorted[3] = {0.9, 0.5, 0.7};
    deissn_schedule_params_init(&p, DEISSN_SCHEDULE_PARAMS_VERSION);
    p.spacing = DEISSN_SPACING_CUSTOM;
    p.steps = 3;
    p.custom_taus = unsorted;
    CHECK_STATUS(deissn_schedule_create(&s, &p), DEISSN_E_INVALID_ARG, "unsorted custom times");
    CHECK_MSG("strictly decreasing", "unsorted custom times");
    CHECK_MSG("tau[1]", "unsorted custom times");

    double outside[2] = {1.5, 0.5};
    p.steps = 2;
    p.custom_taus = outside;
    CHECK_STATUS(deissn_schedule_create(&s, &p), DEISSN_E_INVALID_ARG, "custom time > 1");
    CHECK_MSG("custom_taus[0]", "custom time > 1");

    p.custom_taus = NULL;
    CHECK_STATUS(deissn_schedule_create(&s, &p), DEISSN_E_INVALID_ARG, "custom without times");

    double ok[2] = {0.8, 0.1};
    p.custom_taus = ok;
    p.tau_end = 0.2;
    CHECK_STATUS(deissn_schedule_create(&s, &p), DEISSN_E_INVALID_ARG, "tau_end above tau_1");
    CHECK_MSG("tau_end", "tau_end above tau_1");
    p.tau_end = 0.05;
    CHECK_STATUS(deissn_schedule_create(&s, &p), DEISSN_OK, "custom times");
    double taus[3];
    CHECK_STATUS(deissn_schedule_times(s, taus, 2), DEISSN_E_SIZE, "times capacity");
    CHECK_STATUS(deissn_schedule_times(s, taus, 3), DEISSN_OK, "times");
    CHECK(taus[0] == 0.8 && taus[1] == 0.1 && taus[2] == 0.05, "custom times kept");
    deissn_schedule_free(s);

    double betas[4] = {0.1, 0.2, 1.5, 0.1};
    deissn_schedule_params_init(&p, DEISSN_SCHEDULE_PARAMS_VERSION);
    p.noise = DEISSN_NOISE_CUSTOM_BETAS;
    p.num_train_steps = 4;
    p.steps = 2;
    p.custom = betas;
    p.custom_len = 4;
    CHECK_STATUS(deissn_schedule_create(&s, &p), DEISSN_E_INVALID_ARG, "beta outside (0,1)");
    CHECK_MSG("betas[2]", "beta outside (0,1)");
    p.custom_len = 3;
    CHECK_STATUS(deissn_schedule_create(&s, &p), DEISSN_E_INVALID_ARG, "custom_len mismatch");
    CHECK_MSG("custom_len", "custom_len mismatch");
    betas[2] = 0.3;
    p.custom_len = 4;
    p.spacing = DEISSN_SPACING_TRAILING;
    CHECK_STATUS(deissn_schedule_create(&s, &p), DEISSN_OK, "custom betas");
    CHECK(fabs(deissn_schedule_alpha_bar(s, 0.5) - 0.9 * 0.8) < 1e-15, "abar at a knot");
    CHECK(fabs(deissn_schedule_alpha_bar(s, 0.625) - 0.72 * (0.5 + 0.5 * 0.7)) < 1e-15,
          "abar between knots is linear in tau");
    deissn_schedule_free(s);

    CHECK(deissn_schedule_steps(NULL) == 0 && isnan(deissn_schedule_alpha_bar(NULL, 0.5)), "NULL getters");
    deissn_schedule_free(NULL);
}

static void test_table_errors(void)
{
    deissn_normtable *t = NULL;
    double tau[3] = {0, 0.5, 1}, r[3] = {0.5, 0.8, 0.8};
    CHECK_STATUS(deissn_normtable_create(NULL, tau, r, 3, NULL), DEISSN_E_INVALID_ARG, "out NULL");
    CHECK_STATUS(deissn_normtable_create(&t, NULL, r, 3, NULL), DEISSN_E_INVALID_ARG, "tau NULL");
    CHECK_STATUS(deissn_normtable_create(&t, tau, r, 1, NULL), DEISSN_E_INVALID_ARG, "one knot");
    double bad_tau[3] = {0, 0.7, 0.5};
    CHECK_STATUS(deissn_normtable_create(&t, bad_tau, r, 3, NULL), DEISSN_E_INVALID_ARG, "unsorted tau");
    CHECK_MSG("knot 2", "unsorted tau");
    double nan_r[3] = {0.5, NAN, 0.8};
    CHECK_STATUS(deissn_normtable_create(&t, tau, nan_r, 3, NULL), DEISSN_E_INVALID_ARG, "NaN r");
    CHECK_MSG("not finite", "NaN r");
    double neg_r[3] = {0.5, -1, 0.8};
    CHECK_STATUS(deissn_normtable_create(&t, tau, neg_r, 3, NULL), DEISSN_E_INVALID_ARG, "negative r");
    CHECK_MSG("not positive", "negative r");
    CHECK(t == NULL, "out NULL after errors");

    CHECK_STATUS(deissn_normtable_create(&t, tau, r, 3, NULL), DEISSN_OK, "table");
    CHECK(deissn_normtable_eval(t, 0.25) == 0.65 && deissn_normtable_eval(t, -1) == 0.5 &&
              deissn_normtable_eval(t, 2) == 0.8,
          "linear interpolation, constant beyond the ends");
    CHECK_STATUS(deissn_normtable_knot(t, 3, NULL, NULL), DEISSN_E_INVALID_ARG, "knot index");
    deissn_normtable_free(t);

    float sa[4] = {1, 1, 1, 1}, ls[4] = {0.8f, 0.8f, 0.8f, 0.5f};
    CHECK_STATUS(deissn_normtable_from_reference(&t, sa, ls, 4, &(deissn_normtable_params){.version = DEISSN_NORMTABLE_PARAMS_VERSION, .clip = 4, .metadata = NULL}), DEISSN_E_INVALID_ARG, "clip >= n");
    CHECK_MSG("clip 4", "clip >= n");
    CHECK_STATUS(deissn_normtable_from_reference(&t, sa, ls, 4, &(deissn_normtable_params){.version = DEISSN_NORMTABLE_PARAMS_VERSION, .clip = 1, .metadata = NULL}), DEISSN_OK, "reference arrays");
    double r0, r1;
    deissn_normtable_knot(t, 0, NULL, &r0);
    deissn_normtable_knot(t, 1, NULL, &r1);
    CHECK(r0 == r1 && fabs(r1 - 0.8) < 1e-7, "reversed and clipped: r0 %g r1 %g", r0, r1);
    deissn_normtable_free(t);

    CHECK_STATUS(deissn_normtable_load(&t, "/nonexistent/table.pt", NULL), DEISSN_E_IO, "missing file");
    CHECK_MSG("/nonexistent/table.pt", "missing file");
    CHECK_STATUS(deissn_normtable_load(&t, "tests/data/deis_sn_golden.json", NULL), DEISSN_E_FORMAT,
                 "not a table");
    CHECK_MSG("deis_sn_golden.json", "not a table");
    CHECK_STATUS(deissn_normtable_load(&t, "tests/data/float64_table.pt", NULL), DEISSN_E_FORMAT,
                 "float64 tensors");
}

static void test_mismatch(void)
{
    /* A 1000-entry reference table carries the linear schedule's fingerprint. */
    static float sa[1000], ls[1000];
    for (int i = 0; i < 1000; i++) sa[i] = ls[i] = 0.9f;
    deissn_normtable *t = NULL;
    deissn_normtable_from_reference(&t, sa, ls, 1000, NULL);
    deissn_schedule_params p;
    deissn_schedule_params_init(&p, DEISSN_SCHEDULE_PARAMS_VERSION);
    deissn_schedule *lin = NULL, *cos = NULL;
    deissn_schedule_create(&lin, &p);
    p.noise = DEISSN_NOISE_SQUAREDCOS_CAP_V2;
    deissn_schedule_create(&cos, &p);
    CHECK(deissn_normtable_fingerprint(t) == deissn_schedule_fingerprint(lin), "reference fingerprint");
    CHECK(deissn_schedule_fingerprint(lin) != deissn_schedule_fingerprint(cos), "fingerprints differ");
    deissn_sampler *s = NULL;
    CHECK_STATUS(deissn_sampler_create(&s, lin, t, NULL), DEISSN_OK, "same schedule");
    deissn_sampler_free(s);
    CHECK_STATUS(deissn_sampler_create(&s, cos, t, NULL), DEISSN_E_MISMATCH, "other schedule");
    CHECK_MSG("allow_table_mismatch", "other schedule");
    deissn_sampler_params pp;
    deissn_sampler_params_init(&pp, DEISSN_SAMPLER_PARAMS_VERSION);
    pp.allow_table_mismatch = 1;
    CHECK_STATUS(deissn_sampler_create(&s, cos, t, &pp), DEISSN_OK, "mismatch allowed");
    deissn_sampler_free(s);
    deissn_schedule_free(lin);
    deissn_schedule_free(cos);
    deissn_normtable_free(t);
}

static void test_sampler_errors(void)
{
    deissn_schedule *sch = schedule_with(3, DEISSN_SPACING_QUADRATIC);
    deissn_sampler *s = NULL;
    deissn_sampler_params pp;
    deissn_sampler_params_init(&pp, DEISSN_SAMPLER_PARAMS_VERSION);
    pp.order = 4;
    CHECK_STATUS(deissn_sampler_create(&s, sch, NULL, &pp), DEISSN_E_INVALID_ARG, "order 4");
    CHECK_MSG("order 4", "order 4");
    CHECK_STATUS(deissn_sampler_create(&s, NULL, NULL, NULL), DEISSN_E_INVALID_ARG, "NULL schedule");
    CHECK_MSG("schedule is NULL", "NULL schedule");
    pp.order = 2;
    pp.version = 7;
    CHECK_STATUS(deissn_sampler_create(&s, sch, NULL, &pp), DEISSN_E_INVALID_ARG, "bad version");
    pp.version = DEISSN_SAMPLER_PARAMS_VERSION;
    CHECK_STATUS(deissn_sampler_create(&s, sch, NULL, &pp), DEISSN_OK, "sampler");
    deissn_schedule_free(sch); /* the sampler keeps it alive */

    float x[8], out[8], x_before[8];
    for (int i = 0; i < 8; i++) x[i] = out[i] = (float)i;
    CHECK_STATUS(deissn_step(NULL, x, out, 8, NULL), DEISSN_E_INVALID_ARG, "NULL sampler");
    CHECK_STATUS(deissn_step(s, NULL, out, 8, NULL), DEISSN_E_INVALID_ARG, "NULL x");
    deissn_step_info bad_info = DEISSN_STEP_INFO_INIT;
    bad_info.version = DEISSN_STEP_INFO_VERSION + 1;
    CHECK_STATUS(deissn_step(s, x, out, 8, &bad_info), DEISSN_E_INVALID_ARG,
                 "an info struct of an unknown version");
    CHECK_STATUS(deissn_step(s, x, out, 0, NULL), DEISSN_E_SIZE, "n = 0");
    CHECK_STATUS(deissn_step(s, x, x + 1, 4, NULL), DEISSN_E_INVALID_ARG, "overlapping buffers");
    CHECK_MSG("overlap", "overlapping buffers");

    /* NaN and Inf: reported with step and element; x and the sampler unchanged. */
    memcpy(x_before, x, sizeof x);
    out[5] = NAN;
    CHECK_STATUS(deissn_step(s, x, out, 8, NULL), DEISSN_E_NONFINITE, "NaN output");
    CHECK_MSG("element 5", "NaN output");
    CHECK_MSG("step 0", "NaN output");
    CHECK(memcmp(x, x_before, sizeof x) == 0, "x unchanged after NaN");
    out[5] = INFINITY;
    CHECK_STATUS(deissn_step(s, x, out, 8, NULL), DEISSN_E_NONFINITE, "Inf output");
    CHECK_MSG("Inf", "Inf output");
    deissn_step_info info = DEISSN_STEP_INFO_INIT;
    CHECK_STATUS(deissn_sampler_next(s, &info), DEISSN_OK, "next");
    CHECK(info.step == 0, "still at step 0 after the failures");
    out[5] = 5;

    /* Size is fixed by the first step. */
    CHECK_STATUS(deissn_step(s, x, out, 8, &info), DEISSN_OK, "step 0");
    CHECK(info.step == 1, "now step 1");
    memcpy(x_before, x, sizeof x);
    CHECK_STATUS(deissn_step(s, x, out, 4, NULL), DEISSN_E_SIZE, "size changed");
    CHECK_MSG("n = 4", "size changed");
    CHECK(memcmp(x, x_before, sizeof x) == 0, "x unchanged after a size error");
    CHECK_STATUS(deissn_step(s, x, out, 8, NULL), DEISSN_OK, "step 1");
    CHECK_STATUS(deissn_step(s, x, out, 8, &info), DEISSN_DONE, "step 2 is the last");
    CHECK(info.step == 3 && info.tau == 0.0, "done: step %u tau %g", info.step, info.tau);
    CHECK_STATUS(deissn_step(s, x, out, 8, NULL), DEISSN_E_STATE, "step after done");
    CHECK_MSG("reset", "step after done");
    CHECK_STATUS(deissn_sampler_next(s, &info), DEISSN_DONE, "next when done");

    /* Reset: a new batch of another size works. */
    CHECK_STATUS(deissn_sampler_reset(s), DEISSN_OK, "reset");
    CHECK_STATUS(deissn_step(s, x, out, 4, NULL), DEISSN_OK, "new batch size after reset");

    deissn_step_coeffs co = DEISSN_STEP_COEFFS_INIT;
    CHECK_STATUS(deissn_sampler_coeffs(s, 3, &co), DEISSN_E_INVALID_ARG, "coeffs index");
    CHECK_STATUS(deissn_sampler_coeffs(s, 2, &co), DEISSN_OK, "coeffs");
    CHECK(co.order == 2 && co.c[3] == 0.0, "order 2 at step 2");
    deissn_sampler_free(s);
    deissn_sampler_free(NULL);
}

/* lower_order_final: the k-th step from the end uses order <= k - 1. */
static void test_lower_order_final(void)
{
    deissn_schedule *sch = schedule_with(6, DEISSN_SPACING_TRAILING);
    deissn_sampler_params pp;
    deissn_sampler_params_init(&pp, DEISSN_SAMPLER_PARAMS_VERSION);
    pp.lower_order_final = 1;
    deissn_sampler *s = NULL;
    deissn_sampler_create(&s, sch, NULL, &pp);
    const uint32_t want[6] = {0, 1, 2, 2, 1, 0};
    for (uint32_t i = 0; i < 6; i++) {
        deissn_step_coeffs co = DEISSN_STEP_COEFFS_INIT;
        deissn_sampler_coeffs(s, i, &co);
        CHECK(co.order == want[i], "step %u: order %u, want %u", i, co.order, want[i]);
    }
    deissn_sampler_free(s);
    deissn_schedule_free(sch);
}

/* Predictions: x0- and v-prediction of the same model give the same samples as eps. */
static void test_predictions(void)
{
    const double sd = 0.5;
    for (int pred = DEISSN_PREDICT_SAMPLE; pred <= DEISSN_PREDICT_V; pred++) {
        deissn_schedule *sch = schedule_with(10, DEISSN_SPACING_QUADRATIC);
        deissn_sampler *a = NULL, *b = NULL;
        deissn_sampler_params bp = DEISSN_SAMPLER_PARAMS_INIT;
        bp.prediction = pred;
        deissn_sampler_create(&a, sch, NULL, NULL);
        deissn_sampler_create(&b, sch, NULL, &bp);
        float xa[16], xb[16], oa[16], ob[16];
        deissn_fill_noise(3, 0, 1, 16, xa);
        memcpy(xb, xa, sizeof xa);
        deissn_step_info info = DEISSN_STEP_INFO_INIT;
        int32_t rc = deissn_sampler_next(a, &info);
        while (rc == DEISSN_OK) {
            double al = info.alpha, si = info.sigma, abar = al * al;
            for (int k = 0; k < 16; k++) {
                double eps = si * xa[k] / (abar * sd * sd + si * si);
                double eb = si * xb[k] / (abar * sd * sd + si * si);
                oa[k] = (float)eps;
                double x0 = (xb[k] - si * eb) / al;
                ob[k] = (float)(pred == DEISSN_PREDICT_SAMPLE ? x0 : al * eb - si * x0);
            }
            rc = deissn_step(a, xa, oa, 16, &info);
            deissn_step(b, xb, ob, 16, NULL);
        }
        double d = 0;
        for (int k = 0; k < 16; k++) d = fmax(d, fabs(xa[k] - xb[k]));
        CHECK(d < 1e-4, "prediction %d differs from eps by %g", pred, d);
        deissn_sampler_free(a);
        deissn_sampler_free(b);
        deissn_schedule_free(sch);
    }
}

/* The full loop with a C callback: errors leave x as it was. */
static int gaussian_cb(void *user, const float *x, const int64_t *shape, uint32_t ndim, double t,
                       float *out)
{
    const deissn_schedule *s = user;
    size_t n = 1;
    for (uint32_t d = 0; d < ndim; d++) n *= (size_t)shape[d];
    double abar = deissn_schedule_alpha_bar(s, (t + 1) / 1000), sigma = sqrt(1 - abar);
    for (size_t i = 0; i < n; i++) out[i] = (float)(sigma * x[i] / (abar * 0.25 + sigma * sigma));
    return 0;
}
static int failing_cb(void *user, const float *x, const int64_t *shape, uint32_t ndim, double t,
                      float *out)
{
    (void)user, (void)x;
    size_t n = 1;
    for (uint32_t d = 0; d < ndim; d++) n *= (size_t)shape[d];
    memset(out, 0, n * sizeof *out);
    return t < 500 ? 7 : 0;
}
static int stop_progress(void *user, uint32_t step, uint32_t steps)
{
    (void)user, (void)steps;
    return step == 2;
}

static void test_sample_loop(void)
{
    deissn_schedule *sch = schedule_with(10, DEISSN_SPACING_QUADRATIC);
    deissn_sampler *s = NULL;
    deissn_sampler_create(&s, sch, NULL, NULL);
    deissn_model *m = NULL, *bad = NULL;
    CHECK_STATUS(deissn_model_from_callback(&m, NULL, NULL, NULL), DEISSN_E_INVALID_ARG, "NULL fn");
    deissn_model_params mp;
    deissn_model_params_init(&mp, DEISSN_MODEL_PARAMS_VERSION);
    mp.time_convention = 7;
    CHECK_STATUS(deissn_model_from_callback(&m, gaussian_cb, sch, &mp), DEISSN_E_INVALID_ARG,
                 "unknown time convention");
    deissn_sampler_params bad_pred = DEISSN_SAMPLER_PARAMS_INIT;
    bad_pred.prediction = 5;
    deissn_sampler *none = NULL;
    CHECK_STATUS(deissn_sampler_create(&none, sch, NULL, &bad_pred), DEISSN_E_INVALID_ARG,
                 "unknown prediction");
    CHECK_STATUS(deissn_model_from_callback(&m, gaussian_cb, sch, NULL), DEISSN_OK, "model");
    CHECK_STATUS(deissn_model_from_callback(&bad, failing_cb, NULL, NULL), DEISSN_OK, "bad model");

    int64_t shape[3] = {2, 3, 4};
    float x[24], before[24];
    deissn_fill_noise(1, 0, 2, 12, x);
    memcpy(before, x, sizeof x);
    CHECK_STATUS(deissn_sample(s, m, x, shape, 0, NULL), DEISSN_E_INVALID_ARG, "ndim 0");
    int64_t neg[3] = {2, -3, 4};
    CHECK_STATUS(deissn_sample(s, m, x, neg, 3, NULL), DEISSN_E_INVALID_ARG, "negative dim");
    CHECK_MSG("shape[1]", "negative dim");
    int64_t huge[3] = {INT64_MAX, INT64_MAX, 4};
    CHECK_STATUS(deissn_sample(s, m, x, huge, 3, NULL), DEISSN_E_SIZE, "overflowing shape");

    CHECK_STATUS(deissn_sample(s, bad, x, shape, 3, NULL), DEISSN_E_CALLBACK, "callback fails");
    CHECK_MSG("returned 7", "callback fails");
    CHECK(memcmp(x, before, sizeof x) == 0, "x restored after a callback error");

    deissn_sample_options opt = DEISSN_SAMPLE_OPTIONS_INIT;
    opt.progress = stop_progress;
    CHECK_STATUS(deissn_sample(s, m, x, shape, 3, &opt), DEISSN_E_CALLBACK, "progress stops");
    CHECK(memcmp(x, before, sizeof x) == 0, "x restored after a stop");

    deissn_sample_stats stats = DEISSN_SAMPLE_STATS_INIT;
    stats.model_seconds = -1;
    opt.stats = &stats;
    CHECK_STATUS(deissn_sample(s, bad, x, shape, 3, &opt), DEISSN_E_CALLBACK, "callback fails");
    CHECK(stats.model_seconds == -1, "stats untouched by a failing call");
    deissn_sample_options timing = DEISSN_SAMPLE_OPTIONS_INIT;
    timing.stats = &stats;
    CHECK_STATUS(deissn_sample(s, m, x, shape, 3, &timing), DEISSN_OK, "sample");
    CHECK(stats.model_seconds >= 0 && stats.sampler_seconds >= 0 && stats.evaluations == 10,
          "stats filled");

    /* The same as driving deissn_step by hand. */
    float y[24], eps[24];
    memcpy(y, before, sizeof y);
    deissn_sampler_reset(s);
    deissn_step_info info = DEISSN_STEP_INFO_INIT;
    int32_t rc = deissn_sampler_next(s, &info);
    while (rc == DEISSN_OK) {
        gaussian_cb(sch, y, shape, 3, info.model_t, eps);
        rc = deissn_step(s, y, eps, 24, &info);
    }
    CHECK(memcmp(x, y, sizeof x) == 0, "deissn_sample equals the step loop bit for bit");

    deissn_model *tm = NULL;
    int32_t has_torch = deissn_has_torch();
    int32_t lrc = deissn_model_load(&tm, "/nonexistent.pt", NULL);
    CHECK(lrc == (has_torch ? DEISSN_E_IO : DEISSN_E_UNSUPPORTED), "load: %d %s", (int)lrc,
          deissn_last_error());
    CHECK_MSG("/nonexistent.pt", "load");

    deissn_model_free(m);
    deissn_model_free(bad);
    deissn_sampler_free(s);
    deissn_schedule_free(sch);
}

/* A plug-in search that failed is answered again with the same status and reasons, without
 * searching again, until $DEISSN_PLUGIN_DIR changes (lib/backends/plugin.c). Seen from
 * outside: a file that appears in the searched directory after the failure is not tried;
 * one in a new $DEISSN_PLUGIN_DIR is. The plug-in name "probe" exists nowhere else. */
static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot create %s", path);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_plugin_failure_is_remembered(void)
{
    const char *kept = getenv("DEISSN_PLUGIN_DIR");
    char *saved = kept ? strdup(kept) : NULL;
    char a[] = "/tmp/deissn-plugin-a-XXXXXX", b[] = "/tmp/deissn-plugin-b-XXXXXX";
    char fa[96], fb[96], first[1024];
    if (!mkdtemp(a) || !mkdtemp(b)) {
        CHECK(0, "mkdtemp failed");
        free(saved);
        return;
    }
    snprintf(fa, sizeof fa, "%s/libdeissn-probe.so.%d", a, DEISSN_ABI);
    snprintf(fb, sizeof fb, "%s/libdeissn-probe.so.%d", b, DEISSN_ABI);
    deissn_model_params mp = DEISSN_MODEL_PARAMS_INIT;
    mp.backend = "probe";
    deissn_model *m = NULL;

    setenv("DEISSN_PLUGIN_DIR", a, 1);
    CHECK_STATUS(deissn_model_load(&m, "model.pt", &mp), DEISSN_E_UNSUPPORTED, "no plug-in");
    CHECK_MSG(fa, "the message names the file looked for in $DEISSN_PLUGIN_DIR");
    CHECK_MSG("model.pt", "the message names the model file");
    snprintf(first, sizeof first, "%s", deissn_last_error());

    /* Not an ELF file: a new search would fail for another reason. */
    write_file(fa, "not a shared object\n");
    for (int i = 0; i < 3; i++) {
        CHECK_STATUS(deissn_model_load(&m, "model.pt", &mp), DEISSN_E_UNSUPPORTED, "again");
        CHECK(strcmp(deissn_last_error(), first) == 0, "call %d: the same reasons as the first "
              "(no new search): '%s', first '%s'", i, deissn_last_error(), first);
    }
    /* Another caller is named, with the same reasons. */
    CHECK_STATUS(deissn_model_load(&m, "other.pt", &mp), DEISSN_E_UNSUPPORTED, "other file");
    const char *tail = strstr(first, "the probe backend");
    const char *now = strstr(deissn_last_error(), "the probe backend");
    CHECK(tail && now && strstr(deissn_last_error(), "other.pt") && strcmp(now, tail) == 0,
          "other caller: '%s'", deissn_last_error());

    /* A new $DEISSN_PLUGIN_DIR: searched again. */
    write_file(fb, "not a shared object either\n");
    setenv("DEISSN_PLUGIN_DIR", b, 1);
    CHECK_STATUS(deissn_model_load(&m, "model.pt", &mp), DEISSN_E_UNSUPPORTED, "new dir");
    CHECK_MSG(fb, "the new $DEISSN_PLUGIN_DIR is searched");
    CHECK(strstr(deissn_last_error(), fa) == NULL, "the old one is not: %s", deissn_last_error());

    if (saved) setenv("DEISSN_PLUGIN_DIR", saved, 1);
    else unsetenv("DEISSN_PLUGIN_DIR");
    free(saved);
    unlink(fa);
    unlink(fb);
    rmdir(a);
    rmdir(b);
}

/* Objects keep their parents alive: free order never matters. */
static void test_lifetimes(void)
{
    double tau[2] = {0, 1}, r[2] = {0.7, 0.8};
    for (int order = 0; order < 2; order++) {
        deissn_schedule *sch = schedule_with(5, DEISSN_SPACING_TRAILING);
        deissn_normtable *t = NULL;
        deissn_normtable_create(&t, tau, r, 2, NULL);
        deissn_sampler *s1 = NULL, *s2 = NULL;
        deissn_sampler_create(&s1, sch, t, NULL);
        deissn_sampler_create(&s2, sch, t, NULL);
        if (order == 0) {
            deissn_schedule_free(sch);
            deissn_normtable_free(t);
            deissn_sampler_free(s1);
            deissn_sampler_free(s2);
        } else {
            deissn_sampler_free(s2);
            deissn_normtable_free(t);
            deissn_schedule_free(sch);
            deissn_step_coeffs co = DEISSN_STEP_COEFFS_INIT;
            CHECK_STATUS(deissn_sampler_coeffs(s1, 4, &co), DEISSN_OK, "parents alive");
            deissn_sampler_free(s1);
        }
    }
}

/* DEISSN_METHOD_LEARNED: weights that are DDIM's give DDIM's samples, step by step and
 * through the loop; coeffs show the weights; what it cannot take is refused. */
static void test_learned(void)
{
    enum { N = 8, W = DEISSN_PLAN_WEIGHTS };
    deissn_schedule *sch = schedule_with(N, DEISSN_SPACING_QUADRATIC);
    double taus[N + 1], w[N * W];
    CHECK_STATUS(deissn_schedule_times(sch, taus, N + 1), DEISSN_OK, "times");
    memset(w, 0, sizeof w);
    for (int i = 0; i < N; i++) {
        double af = sqrt(deissn_schedule_alpha_bar(sch, taus[i]));
        double sf = sqrt(1 - deissn_schedule_alpha_bar(sch, taus[i]));
        double at = sqrt(deissn_schedule_alpha_bar(sch, taus[i + 1]));
        double st = sqrt(1 - deissn_schedule_alpha_bar(sch, taus[i + 1]));
        w[i * W] = at / af;
        w[i * W + 1] = st - w[i * W] * sf;
    }
    deissn_sampler_params ddim = DEISSN_SAMPLER_PARAMS_INIT, lp = DEISSN_SAMPLER_PARAMS_INIT;
    ddim.order = 0;
    lp.method = DEISSN_METHOD_LEARNED;
    lp.weights = w;
    deissn_sampler *a = NULL, *b = NULL;
    CHECK_STATUS(deissn_sampler_create(&a, sch, NULL, &ddim), DEISSN_OK, "DDIM");
    CHECK_STATUS(deissn_sampler_create(&b, sch, NULL, &lp), DEISSN_OK, "learned, DDIM's weights");
    double saved = w[0];
    w[0] = 7; /* the sampler copied them */
    deissn_model_params mp;
    deissn_model_params_init(&mp, DEISSN_MODEL_PARAMS_VERSION);
    mp.time_convention = DEISSN_TIME_TAU;
    deissn_model *m = NULL;
    CHECK_STATUS(deissn_model_from_callback(&m, tl_gaussian_eps, sch, &mp), DEISSN_OK, "model");
    int64_t shape[2] = {4, 6};
    float xa[24], xb[24], eps[24];
    deissn_fill_noise(3, 0, 4, 6, xa);
    memcpy(xb, xa, sizeof xa);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        deissn_step_info ia = DEISSN_STEP_INFO_INIT, ib = DEISSN_STEP_INFO_INIT;
        deissn_sampler_next(a, &ia);
        deissn_sampler_next(b, &ib);
        tl_gaussian_eps(sch, xa, shape, 2, ia.tau, eps);
        deissn_step(a, xa, eps, 24, NULL);
        tl_gaussian_eps(sch, xb, shape, 2, ib.tau, eps);
        deissn_step(b, xb, eps, 24, NULL);
        for (int k = 0; k < 24; k++) worst = fmax(worst, fabs((double)xa[k] - xb[k]));
    }
    CHECK(worst <= 1e-6, "deissn_step: learned with DDIM's weights is DDIM (worst %.3g)", worst);
    deissn_fill_noise(4, 0, 4, 6, xa);
    memcpy(xb, xa, sizeof xa);
    CHECK_STATUS(deissn_sample(a, m, xa, shape, 2, NULL), DEISSN_OK, "sample DDIM");
    CHECK_STATUS(deissn_sample(b, m, xb, shape, 2, NULL), DEISSN_OK, "sample learned");
    worst = 0;
    for (int k = 0; k < 24; k++) worst = fmax(worst, fabs((double)xa[k] - xb[k]));
    CHECK(worst <= 1e-6, "deissn_sample: learned with DDIM's weights is DDIM (worst %.3g)", worst);
    deissn_sampler_free(b);
    b = NULL;
    w[0] = saved;

    /* The coefficients are the weights: psi = w0, c[j] = the weight of eps_{i-j}. */
    for (int k = 0; k < W; k++) w[5 * W + k] = 0.5 + 0.1 * k;
    CHECK_STATUS(deissn_sampler_create(&b, sch, NULL, &lp), DEISSN_OK, "learned, 5 eps terms");
    deissn_step_coeffs co = DEISSN_STEP_COEFFS_INIT;
    CHECK_STATUS(deissn_sampler_coeffs(b, 5, &co), DEISSN_OK, "coeffs of step 5");
    int same = co.psi == w[5 * W] && co.order == 4;
    for (int j = 0; j < 5; j++) same = same && co.c[j] == w[5 * W + 1 + j] && co.r[j] == 1.0;
    CHECK(same, "coeffs: psi %g = w0 %g, c = the eps weights, order %u", co.psi, w[5 * W],
          co.order);
    CHECK_STATUS(deissn_sampler_coeffs(b, 0, &co), DEISSN_OK, "coeffs of step 0");
    CHECK(co.psi == w[0] && co.c[0] == w[1] && co.order == 0, "step 0: psi %g c0 %g", co.psi,
          co.c[0]);
    deissn_sampler_free(b);
    b = NULL;

    /* Refusals. */
    deissn_normtable *t = NULL;
    const double tt[] = {0, 1}, rr[] = {0.5, 0.8};
    deissn_normtable_create(&t, tt, rr, 2, NULL);
    lp.weights = NULL;
    CHECK_STATUS(deissn_sampler_create(&b, sch, NULL, &lp), DEISSN_E_INVALID_ARG, "no weights");
    CHECK_MSG("weights", "no weights");
    lp.weights = w;
    CHECK_STATUS(deissn_sampler_create(&b, sch, t, &lp), DEISSN_E_INVALID_ARG, "a table");
    CHECK_MSG("table", "a table");
    lp.corrector = 1;
    CHECK_STATUS(deissn_sampler_create(&b, sch, NULL, &lp), DEISSN_E_INVALID_ARG, "corrector");
    CHECK_MSG("corrector", "corrector");
    lp.corrector = 0;
    w[2 * W + 3] = NAN;
    CHECK_STATUS(deissn_sampler_create(&b, sch, NULL, &lp), DEISSN_E_INVALID_ARG, "NaN weight");
    CHECK_MSG("step 2", "NaN weight");
    w[2 * W + 3] = 0;
    w[3 * W] = INFINITY;
    CHECK_STATUS(deissn_sampler_create(&b, sch, NULL, &lp), DEISSN_E_INVALID_ARG, "Inf weight");
    CHECK_MSG("step 3", "Inf weight");
    CHECK(b == NULL, "nothing made on error");
    deissn_normtable_free(t);
    deissn_sampler_free(a);
    deissn_model_free(m);
    deissn_schedule_free(sch);
}

int main(void)
{
    test_versions_and_strings();
    test_schedule_errors();
    test_early_stop_spacings();
    test_table_errors();
    test_mismatch();
    test_sampler_errors();
    test_lower_order_final();
    test_predictions();
    test_sample_loop();
    test_learned();
    test_lifetimes();
    test_plugin_failure_is_remembered();
    TEST_SUMMARY();
}
