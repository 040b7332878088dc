/* test_presets.c - deissn_preset_params(): the fields of each preset for each NFE, that it
 * writes only the sampling fields, that its configurations build samplers, and bad input. */
#include "deissn.h"
#include "testlib.h"

#include <math.h>
#include <string.h>

/* DEISSN_PRESET_BEST as documented in docs/presets.md: per NFE, spacing, order,
 * lower_order_final, tau_end, power, method, corrector. */
typedef struct {
    uint32_t nfe;
    int32_t spacing;
    uint32_t order, lof;
    double tau_end;
    double power;
    int32_t method;
    uint32_t corrector;
} expect_row;

#define TRAIL DEISSN_SPACING_TRAILING
#define EPS DEISSN_METHOD_EPS
#define DATA DEISSN_METHOD_DATA
static const expect_row BEST_EXPECTED[] = {
    {1, TRAIL, 2, 1, 1e-3, 1.0, DATA, 0}, /* below the measured range: the NFE 5 row */
    {4, TRAIL, 2, 1, 1e-3, 1.0, DATA, 0},
    {5, TRAIL, 2, 1, 1e-3, 1.0, DATA, 0},
    {6, TRAIL, 3, 0, 0.0, 1.0, DATA, 0},
    {7, TRAIL, 3, 0, 0.0, 1.0, DATA, 0}, /* between rows: the row below */
    {8, TRAIL, 1, 0, 1e-3, 1.0, EPS, 0},
    {10, DEISSN_SPACING_POWER, 1, 1, 1e-3, 1.5, DATA, 1},
    {12, DEISSN_SPACING_POWER, 1, 1, 1e-3, 1.5, DATA, 1},
    {15, DEISSN_SPACING_LOGSNR, 2, 1, 1e-3, 1.0, DATA, 1},
    {19, DEISSN_SPACING_LOGSNR, 2, 1, 1e-3, 1.0, DATA, 1},
    {20, DEISSN_SPACING_POWER, 3, 0, 0.0, 1.5, EPS, 0},
    {50, DEISSN_SPACING_POWER, 3, 0, 0.0, 1.5, EPS, 0}, /* above: the NFE 20 row */
};

/* Params with every field set to a recognisable non-default value. */
static void marked(deissn_schedule_params *sp, deissn_sampler_params *mp)
{
    deissn_schedule_params_init(sp, DEISSN_SCHEDULE_PARAMS_VERSION);
    deissn_sampler_params_init(mp, DEISSN_SAMPLER_PARAMS_VERSION);
    sp->noise = DEISSN_NOISE_SCALED_LINEAR;
    sp->num_train_steps = 500;
    sp->beta_start = 0.001;
    sp->beta_end = 0.015;
    sp->beta_min = 0.2;
    sp->beta_max = 19;
    sp->spacing = DEISSN_SPACING_KARRAS;
    sp->steps = 77;
    sp->power = 2.5;
    sp->karras_rho = 5;
    sp->tau_min_eval = 0.01;
    sp->tau_end = 0.005;
    mp->order = 1;
    mp->lower_order_final = 1;
    mp->allow_table_mismatch = 1;
}

static void check_untouched(const deissn_schedule_params *sp, const deissn_sampler_params *mp,
                            const char *what)
{
    CHECK(sp->noise == DEISSN_NOISE_SCALED_LINEAR && sp->num_train_steps == 500 &&
              sp->beta_start == 0.001 && sp->beta_end == 0.015 && sp->beta_min == 0.2 &&
              sp->beta_max == 19 && sp->custom == NULL && sp->custom_len == 0 &&
              sp->custom_taus == NULL,
          "%s: a noise-schedule field was changed", what);
    CHECK(mp->allow_table_mismatch == 1, "%s: allow_table_mismatch was changed", what);
}

static void test_reference(void)
{
    for (uint32_t nfe = 1; nfe <= 30; nfe++) {
        deissn_schedule_params sp;
        deissn_sampler_params mp;
        marked(&sp, &mp);
        CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_REFERENCE, nfe, NULL, &sp, &mp, NULL), DEISSN_OK,
                     "reference");
        CHECK(sp.spacing == DEISSN_SPACING_QUADRATIC && sp.steps == nfe && sp.tau_end == 0.0 &&
                  sp.tau_min_eval == 0.0 && sp.power == 1.0 && sp.karras_rho == 7.0,
              "reference nfe %u: schedule fields", nfe);
        CHECK(mp.order == 3 && mp.lower_order_final == 0, "reference nfe %u: order %u lof %u",
              nfe, mp.order, mp.lower_order_final);
        check_untouched(&sp, &mp, "reference");
    }
    /* the reference preset is exactly the structs' defaults */
    deissn_schedule_params sp, dsp;
    deissn_sampler_params mp, dmp;
    deissn_schedule_params_init(&sp, DEISSN_SCHEDULE_PARAMS_VERSION);
    deissn_schedule_params_init(&dsp, DEISSN_SCHEDULE_PARAMS_VERSION);
    deissn_sampler_params_init(&mp, DEISSN_SAMPLER_PARAMS_VERSION);
    deissn_sampler_params_init(&dmp, DEISSN_SAMPLER_PARAMS_VERSION);
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_REFERENCE, 10, NULL, &sp, &mp, NULL), DEISSN_OK, "ref 10");
    CHECK(sp.spacing == dsp.spacing && sp.steps == dsp.steps && sp.power == dsp.power &&
              sp.karras_rho == dsp.karras_rho && sp.tau_min_eval == dsp.tau_min_eval &&
              sp.tau_end == dsp.tau_end, "reference at 10 NFE differs from the defaults");
    CHECK(mp.order == dmp.order && mp.lower_order_final == dmp.lower_order_final,
          "reference sampler differs from the defaults");
}

static void test_best(void)
{
    for (size_t i = 0; i < sizeof BEST_EXPECTED / sizeof BEST_EXPECTED[0]; i++) {
        const expect_row *e = &BEST_EXPECTED[i];
        deissn_schedule_params sp;
        deissn_sampler_params mp;
        marked(&sp, &mp);
        CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_BEST, e->nfe, NULL, &sp, &mp, NULL), DEISSN_OK,
                     "best");
        CHECK(sp.spacing == e->spacing && sp.steps == e->nfe && sp.tau_end == e->tau_end &&
                  sp.power == e->power && sp.karras_rho == 7.0,
              "best nfe %u: spacing %d steps %u tau_end %g", e->nfe, (int)sp.spacing, sp.steps,
              sp.tau_end);
        CHECK(mp.order == e->order && mp.lower_order_final == e->lof && mp.method == e->method &&
                  mp.corrector == e->corrector,
              "best nfe %u: order %u lof %u method %d corrector %u, want %u %u %d %u", e->nfe,
              mp.order, mp.lower_order_final, (int)mp.method, mp.corrector, e->order, e->lof,
              (int)e->method, e->corrector);
        check_untouched(&sp, &mp, "best");
        if (e->spacing == DEISSN_SPACING_LOGSNR && e->nfe > 1) {
            /* N evaluations and tau_end uniform in log-SNR from tau = 1: the last evaluation
             * sits where log-SNR has gone (N-1)/N of the way to tau_end's, on the caller's
             * noise schedule (here scaled_linear, T = 500) */
            deissn_schedule *s = NULL;
            CHECK_STATUS(deissn_schedule_create(&s, &sp), DEISSN_OK, "logsnr schedule");
            double ab1 = deissn_schedule_alpha_bar(s, 1.0), abe =
                deissn_schedule_alpha_bar(s, e->tau_end), abm =
                deissn_schedule_alpha_bar(s, sp.tau_min_eval);
            double l1 = 0.5 * log(ab1 / (1 - ab1)), le = 0.5 * log(abe / (1 - abe));
            double lm = 0.5 * log(abm / (1 - abm));
            double want = l1 + (le - l1) * (e->nfe - 1) / e->nfe;
            CHECK(fabs(lm - want) < 1e-9 && sp.tau_min_eval > e->tau_end,
                  "best nfe %u: tau_min_eval %.17g has log-SNR %.17g, want %.17g", e->nfe,
                  sp.tau_min_eval, lm, want);
            deissn_schedule_free(s);
        } else {
            CHECK(sp.tau_min_eval == 0.0, "best nfe %u: tau_min_eval %g", e->nfe,
                  sp.tau_min_eval);
        }
    }
}

/* Every preset at every NFE 1..40 makes a schedule and a sampler with that many steps. */
static void test_presets_build(void)
{
    for (int32_t preset = DEISSN_PRESET_BEST; preset <= DEISSN_PRESET_REFERENCE; preset++) {
        int ok = 1;
        for (uint32_t nfe = 1; nfe <= 40 && ok; nfe++) {
            deissn_schedule_params sp;
            deissn_sampler_params mp;
            deissn_schedule_params_init(&sp, DEISSN_SCHEDULE_PARAMS_VERSION);
            deissn_sampler_params_init(&mp, DEISSN_SAMPLER_PARAMS_VERSION);
            deissn_schedule *s = NULL;
            deissn_sampler *m = NULL;
            if (deissn_preset_params(preset, nfe, NULL, &sp, &mp, NULL) != DEISSN_OK ||
                deissn_schedule_create(&s, &sp) != DEISSN_OK ||
                deissn_sampler_create(&m, s, NULL, &mp) != DEISSN_OK ||
                deissn_sampler_steps(m) != nfe) {
                CHECK(0, "preset %d nfe %u does not build: %s", (int)preset, nfe,
                      deissn_last_error());
                ok = 0;
            }
            deissn_sampler_free(m);
            deissn_schedule_free(s);
        }
        CHECK(ok, "preset %d builds at every NFE 1..40", (int)preset);
    }
}

static void test_one_struct(void)
{
    deissn_schedule_params sp;
    deissn_sampler_params mp;
    marked(&sp, &mp);
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_BEST, 8, NULL, &sp, NULL, NULL), DEISSN_OK, "no sampler");
    CHECK(sp.steps == 8 && sp.spacing == DEISSN_SPACING_TRAILING, "schedule only");
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_BEST, 8, NULL, NULL, &mp, NULL), DEISSN_OK, "no schedule");
    CHECK(mp.order == 1 && mp.method == DEISSN_METHOD_EPS, "sampler only"); /* the 8 row */
    /* a version-1 struct (an older header's) ends before method and corrector: they are
     * not written */
    deissn_sampler_params v1;
    deissn_sampler_params_init(&v1, DEISSN_SAMPLER_PARAMS_VERSION);
    v1.version = 1;
    v1.method = 77;
    v1.corrector = 77;
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_BEST, 10, NULL, NULL, &v1, NULL), DEISSN_OK, "v1");
    CHECK(v1.order == 1 && v1.method == 77 && v1.corrector == 77,
          "v1 struct: order %u, method %d, corrector %u", v1.order, (int)v1.method, v1.corrector);
    /* without a schedule struct there is no T to check nfe against */
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_REFERENCE, 5000, NULL, NULL, &mp, NULL), DEISSN_OK,
                 "large nfe, sampler only");
}

static void test_errors(void)
{
    deissn_schedule_params sp, sp0;
    deissn_sampler_params mp, mp0;
    marked(&sp, &mp);
    sp0 = sp;
    mp0 = mp;
    CHECK_STATUS(deissn_preset_params(3, 10, NULL, &sp, &mp, NULL), DEISSN_E_INVALID_ARG, "preset 3");
    CHECK(strstr(deissn_last_error(), "preset 3") != NULL, "message: %s", deissn_last_error());
    CHECK_STATUS(deissn_preset_params(-1, 10, NULL, &sp, &mp, NULL), DEISSN_E_INVALID_ARG, "preset -1");
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_BEST, 0, NULL, &sp, &mp, NULL), DEISSN_E_INVALID_ARG,
                 "nfe 0");
    CHECK(strstr(deissn_last_error(), "nfe") != NULL, "message: %s", deissn_last_error());
    /* marked() has T = 500 */
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_BEST, 501, NULL, &sp, &mp, NULL), DEISSN_E_INVALID_ARG,
                 "nfe > T");
    CHECK(strstr(deissn_last_error(), "501") != NULL, "message: %s", deissn_last_error());
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_BEST, 500, NULL, &sp, &mp, NULL), DEISSN_OK, "nfe = T");
    sp = sp0;
    mp = mp0;
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_BEST, 10, NULL, NULL, NULL, NULL), DEISSN_E_INVALID_ARG,
                 "both NULL");
    sp.version = 99;
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_BEST, 10, NULL, &sp, &mp, NULL), DEISSN_E_INVALID_ARG,
                 "schedule version");
    CHECK(mp.order == mp0.order && mp.lower_order_final == mp0.lower_order_final,
          "a failing call changed the sampler params");
    /* a LOGSNR row reads the caller's noise schedule: a bad one fails the call, unchanged */
    sp = sp0;
    mp = mp0;
    sp.beta_start = -1;
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_BEST, 15, NULL, &sp, &mp, NULL), DEISSN_E_INVALID_ARG,
                 "bad noise schedule");
    CHECK(sp.spacing == sp0.spacing && sp.steps == sp0.steps && mp.order == mp0.order,
          "a failing call changed the params");
    sp = sp0;
    mp.version = 0;
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_BEST, 10, NULL, &sp, &mp, NULL), DEISSN_E_INVALID_ARG,
                 "sampler version");
    CHECK(sp.spacing == sp0.spacing && sp.steps == sp0.steps && sp.tau_end == sp0.tau_end &&
              sp.tau_min_eval == sp0.tau_min_eval, "a failing call changed the schedule params");
}

/* TUNED: the table's plan for the NFE or the nearest below; BEST without one; refused on
 * another noise schedule. */
static void test_tuned(void)
{
    deissn_schedule_params lin = DEISSN_SCHEDULE_PARAMS_INIT;
    lin.steps = 1;
    deissn_schedule *s = NULL;
    deissn_schedule_create(&s, &lin);
    const double tau[] = {0.0, 1.0}, r[] = {0.6, 0.8};
    deissn_plan plans[2] = {DEISSN_PLAN_INIT, DEISSN_PLAN_INIT};
    for (int i = 0; i < 2; i++) {
        plans[i].nfe = i ? 10 : 5;
        plans[i].method = i ? DEISSN_METHOD_DATA : DEISSN_METHOD_EPS;
        plans[i].order = (uint32_t)(i + 1);
        plans[i].corrector = (uint32_t)i;
        plans[i].uses_table = (uint32_t)!i;
        plans[i].tau_end = i ? 1e-3 : 0.0;
        for (uint32_t k = 0; k < plans[i].nfe; k++)
            plans[i].taus[k] = pow(1.0 - (double)k / plans[i].nfe, 1.7 + i);
    }
    deissn_normtable_params tp = DEISSN_NORMTABLE_PARAMS_INIT;
    tp.fingerprint = deissn_schedule_fingerprint(s);
    tp.plans = plans;
    tp.n_plans = 2;
    deissn_normtable *t = NULL, *plain = NULL;
    CHECK_STATUS(deissn_normtable_create(&t, tau, r, 2, &tp), DEISSN_OK, "table with plans");
    deissn_normtable_create(&plain, tau, r, 2, NULL);

    const uint32_t asked[] = {10, 12, 7, 5, 3};
    const uint32_t want[] = {10, 10, 5, 5, 0}; /* 0: no plan at or below: BEST */
    for (int i = 0; i < 5; i++) {
        deissn_schedule_params sp = DEISSN_SCHEDULE_PARAMS_INIT;
        deissn_sampler_params mp = DEISSN_SAMPLER_PARAMS_INIT;
        int32_t use = -1;
        CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_TUNED, asked[i], t, &sp, &mp, &use),
                     DEISSN_OK, "tuned");
        if (!want[i]) {
            deissn_schedule_params bp = DEISSN_SCHEDULE_PARAMS_INIT;
            deissn_sampler_params bm = DEISSN_SAMPLER_PARAMS_INIT;
            deissn_preset_params(DEISSN_PRESET_BEST, asked[i], NULL, &bp, &bm, NULL);
            CHECK(sp.spacing == bp.spacing && sp.steps == asked[i] && mp.order == bm.order &&
                      mp.method == bm.method,
                  "TUNED at %u NFE, below every plan, is BEST", asked[i]);
            continue;
        }
        const deissn_plan *pl = want[i] == 10 ? &plans[1] : &plans[0];
        deissn_schedule *made = NULL;
        CHECK_STATUS(deissn_schedule_create(&made, &sp), DEISSN_OK, "the plan's schedule");
        double times[11] = {0};
        deissn_schedule_times(made, times, 11);
        CHECK(sp.spacing == DEISSN_SPACING_CUSTOM && sp.steps == want[i] &&
                  deissn_schedule_steps(made) == want[i] && times[0] == pl->taus[0] &&
                  times[want[i] - 1] == pl->taus[want[i] - 1] && times[want[i]] == pl->tau_end &&
                  mp.method == pl->method && mp.order == pl->order &&
                  mp.corrector == pl->corrector && use == (int32_t)pl->uses_table,
              "TUNED at %u NFE uses the %u-NFE plan: its times, method, order, table use", asked[i],
              want[i]);
        deissn_schedule_free(made);
    }
    deissn_schedule_params sp = DEISSN_SCHEDULE_PARAMS_INIT;
    deissn_sampler_params mp = DEISSN_SAMPLER_PARAMS_INIT;
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_TUNED, 10, plain, &sp, &mp, NULL), DEISSN_OK,
                 "tuned, table without plans");
    CHECK(sp.spacing != DEISSN_SPACING_CUSTOM, "a table without plans gives BEST");
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_TUNED, 10, NULL, &sp, &mp, NULL), DEISSN_OK,
                 "tuned, no table");
    deissn_schedule_params cos, before;
    memset(&cos, 0, sizeof cos); /* padding too: the struct is compared byte for byte */
    deissn_schedule_params_init(&cos, DEISSN_SCHEDULE_PARAMS_VERSION);
    cos.noise = DEISSN_NOISE_SQUAREDCOS_CAP_V2;
    memcpy(&before, &cos, sizeof cos);
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_TUNED, 10, t, &cos, &mp, NULL),
                 DEISSN_E_MISMATCH, "plans tuned on the linear schedule, asked for cosine");
    CHECK(!memcmp(&cos, &before, sizeof cos), "a refused preset leaves the struct alone");
    mp.allow_table_mismatch = 1;
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_TUNED, 10, t, &cos, &mp, NULL), DEISSN_OK,
                 "allow_table_mismatch");
    deissn_normtable_free(t);
    deissn_normtable_free(plain);
    deissn_schedule_free(s);
}

int main(void)
{
    test_reference();
    test_best();
    test_presets_build();
    test_one_struct();
    test_errors();
    test_tuned();
    TEST_SUMMARY();
}
