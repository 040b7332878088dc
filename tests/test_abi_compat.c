/* test_abi_compat.c - the struct versioning protocol, as an old caller sees it.
 *
 * A program built against an older header holds that header's (smaller) structs. This test
 * keeps its own frozen copy of every layout that ever shipped, places canary bytes right
 * after it, and checks that the library reads and writes nothing past the version the struct
 * carries: *_init(p, v) fills exactly version v, consumers read only that far (a field read
 * from the canary would hold 0xAB bytes and be refused), and output structs are written only
 * as far as their version. Under `make asan` the structs sit in exact-size heap blocks, so an
 * access past them is also reported by the sanitizer. When a struct grows, add its old layout
 * here; never edit one that shipped. */
#include "deissn.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- frozen layouts ---------------------------------------------------------------------- */

typedef struct { /* deissn_sampler_params version 1 (0.2.0's version 1) */
    uint32_t version, order, lower_order_final, allow_table_mismatch;
} sampler_params_v1;
typedef struct { /* version 2 (0.2.0) */
    uint32_t version, order, lower_order_final, allow_table_mismatch;
    int32_t method;
    uint32_t corrector;
} sampler_params_v2;
typedef struct { /* version 3 (0.3.0) */
    uint32_t version, order, lower_order_final, allow_table_mismatch;
    int32_t method;
    uint32_t corrector;
    int32_t prediction;
} sampler_params_v3;
typedef struct { /* deissn_plan version 1 (0.3.0) */
    uint32_t version, nfe;
    int32_t method;
    uint32_t order, corrector, lower_order_final, uses_table, samples;
    double tau_end;
    double taus[64];
    double error, error_low, error_high, best_error;
} plan_v1;
typedef struct { /* deissn_schedule_params version 1 */
    uint32_t version;
    int32_t noise;
    uint32_t num_train_steps;
    double beta_start, beta_end, beta_min, beta_max;
    const double *custom;
    size_t custom_len;
    int32_t spacing;
    uint32_t steps;
    double power, karras_rho, tau_min_eval, tau_end;
    const double *custom_taus;
} schedule_params_v1;
typedef struct { /* deissn_normtable_params version 1 */
    uint32_t version, fingerprint, clip;
    const char *metadata;
} normtable_params_v1;
typedef struct { /* deissn_model_params version 1 (0.3.0) */
    uint32_t version;
    int32_t time_convention;
    const char *backend, *device;
    int32_t dtype, num_threads;
} model_params_v1;
typedef struct { /* deissn_sample_stats version 1 */
    uint32_t version, evaluations;
    double model_seconds, sampler_seconds;
} sample_stats_v1;
typedef struct { /* deissn_sample_options version 1 (0.3.0) */
    uint32_t version;
    deissn_progress_fn progress;
    void *progress_user;
    sample_stats_v1 *stats;
    deissn_calibrator *calibrator;
} sample_options_v1;
typedef struct { /* deissn_step_info version 1 */
    uint32_t version, step, steps;
    double tau, model_t, alpha, sigma;
} step_info_v1;
typedef struct { /* deissn_step_coeffs version 1 */
    uint32_t version, step, order;
    double tau_from, tau_to, model_t, psi, c[5], r[5];
    uint32_t corrector_order;
} step_coeffs_v1;
typedef struct { /* deissn_normtable_info version 1 */
    uint32_t version;
    size_t n_knots;
    uint64_t samples;
    uint32_t steps, clip, fingerprint;
    int32_t has_sums;
} normtable_info_v1;

/* ---- the canary -------------------------------------------------------------------------- */

#define CANARY_BYTES 64
#define FILL 0xAB

/* A caller's struct of `size` bytes followed by the canary, in one exact-size heap block. */
static unsigned char *caller_struct(size_t size)
{
    unsigned char *p = malloc(size + CANARY_BYTES);
    if (!p) abort();
    memset(p, FILL, size + CANARY_BYTES);
    return p;
}

static int canary_intact(const unsigned char *p, size_t size)
{
    for (size_t i = 0; i < CANARY_BYTES; i++)
        if (p[size + i] != FILL) return 0;
    return 1;
}

/* The current header's struct must still start with each older layout. */
#define SAME_PREFIX(old, cur) CHECK(sizeof(old) <= sizeof(cur), #old " fits in " #cur)

static deissn_schedule *schedule10(void)
{
    deissn_schedule *s = NULL;
    deissn_schedule_create(&s, NULL);
    return s;
}

static void test_sampler_params(void)
{
    static const size_t sizes[] = {0, sizeof(sampler_params_v1), sizeof(sampler_params_v2),
                                   sizeof(sampler_params_v3), sizeof(deissn_sampler_params)};
    SAME_PREFIX(sampler_params_v3, deissn_sampler_params);
    CHECK(DEISSN_SAMPLER_PARAMS_VERSION == 4, "sampler params: this test knows versions 1..4");
    deissn_schedule *sch = schedule10();
    for (uint32_t v = 1; v <= 4; v++) {
        unsigned char *p = caller_struct(sizes[v]);
        CHECK_STATUS(deissn_sampler_params_init((deissn_sampler_params *)p, v), DEISSN_OK,
                     "sampler params init");
        sampler_params_v1 head;
        memcpy(&head, p, sizeof head);
        CHECK(head.version == v && head.order == 3 && head.lower_order_final == 0 &&
                  canary_intact(p, sizes[v]),
              "deissn_sampler_params_init(p, %u) writes version %u's %zu bytes and no more", v, v,
              sizes[v]);
        /* The consumer reads no further: a byte of the canary read as `method` or
         * `prediction` would be refused. */
        deissn_sampler *s = NULL;
        CHECK_STATUS(deissn_sampler_create(&s, sch, NULL, (deissn_sampler_params *)p), DEISSN_OK,
                     "a struct followed by 0xAB bytes is read as far as its version goes");
        deissn_sampler_free(s);
        /* Presets write only what the version has. */
        CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_BEST, 10, NULL, NULL, (deissn_sampler_params *)p, NULL),
                     DEISSN_OK, "preset into an older struct");
        CHECK(canary_intact(p, sizes[v]), "deissn_preset_params writes nothing past version %u",
              v);
        if (v >= 2) {
            CHECK_STATUS(deissn_sampler_params_by_name((deissn_sampler_params *)p, "x0", NULL),
                         DEISSN_OK, "by name into an older struct");
            CHECK(canary_intact(p, sizes[v]),
                  "deissn_sampler_params_by_name writes nothing past version %u", v);
        }
        free(p);
    }
    deissn_sampler_params cur;
    CHECK_STATUS(deissn_sampler_params_init(&cur, 0), DEISSN_E_INVALID_ARG, "version 0 refused");
    CHECK_STATUS(deissn_sampler_params_init(&cur, 5), DEISSN_E_INVALID_ARG, "version 5 refused");
    CHECK(strstr(deissn_last_error(), "1..4") != NULL, "a newer version is refused naming the "
          "range: %s", deissn_last_error());
    deissn_schedule_free(sch);
}

static void test_schedule_and_table_params(void)
{
    SAME_PREFIX(schedule_params_v1, deissn_schedule_params);
    unsigned char *p = caller_struct(sizeof(schedule_params_v1));
    CHECK_STATUS(deissn_schedule_params_init((deissn_schedule_params *)p, 1), DEISSN_OK,
                 "schedule params init");
    CHECK(canary_intact(p, sizeof(schedule_params_v1)), "schedule params init stays in version 1");
    deissn_schedule *s = NULL;
    CHECK_STATUS(deissn_schedule_create(&s, (deissn_schedule_params *)p), DEISSN_OK,
                 "schedule from a version-1 struct");
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_BEST, 12, NULL, (deissn_schedule_params *)p, NULL, NULL),
                 DEISSN_OK, "preset into a version-1 schedule struct");
    CHECK(canary_intact(p, sizeof(schedule_params_v1)), "preset writes nothing past version 1");
    free(p);

    SAME_PREFIX(normtable_params_v1, deissn_normtable_params);
    p = caller_struct(sizeof(normtable_params_v1));
    CHECK_STATUS(deissn_normtable_params_init((deissn_normtable_params *)p, 1), DEISSN_OK,
                 "table params init");
    CHECK(canary_intact(p, sizeof(normtable_params_v1)), "table params init stays in version 1");
    const double tau[] = {0, 1}, r[] = {0.5, 0.8};
    deissn_normtable *t = NULL;
    CHECK_STATUS(deissn_normtable_create(&t, tau, r, 2, (deissn_normtable_params *)p), DEISSN_OK,
                 "table from a version-1 params struct");
    free(p);

    unsigned char *info = caller_struct(sizeof(normtable_info_v1));
    uint32_t one = 1;
    memcpy(info, &one, 4);
    CHECK_STATUS(deissn_normtable_get_info(t, (deissn_normtable_info *)info), DEISSN_OK,
                 "table info version 1");
    normtable_info_v1 got;
    memcpy(&got, info, sizeof got);
    CHECK(got.version == 1 && got.n_knots == 2 && canary_intact(info, sizeof got),
          "deissn_normtable_get_info writes version 1 and no more");
    free(info);
    deissn_normtable_free(t);
    deissn_schedule_free(s);
}

/* A current-layout plan of `nfe` steps, valid for the table. */
static deissn_plan plan_of(uint32_t nfe, int32_t method)
{
    deissn_plan p = DEISSN_PLAN_INIT;
    p.nfe = nfe;
    p.method = method;
    p.order = 2;
    p.samples = 16;
    p.tau_end = 1e-3;
    for (uint32_t k = 0; k < nfe; k++) p.taus[k] = 1.0 - 0.9 * k / nfe;
    p.error = p.error_low = p.error_high = p.best_error = 0.1;
    for (uint32_t k = 0; method == DEISSN_METHOD_LEARNED && k < nfe; k++) {
        p.weights[k][0] = 1.0;
        p.weights[k][1] = -0.1;
    }
    return p;
}

/* deissn_plan version 1: read (a table's params.plans, with version 1's stride) and written
 * (deissn_normtable_plan) only as far as version 1 goes. */
static void test_plans_v1(void)
{
    SAME_PREFIX(plan_v1, deissn_plan);
    CHECK(DEISSN_PLAN_VERSION == 2, "plans: this test knows versions 1..2");
    /* Two version-1 plans in one exact-size block followed by the canary: read with
     * version 1's stride, the second starts where a version-1 array has it. */
    unsigned char *arr = caller_struct(2 * sizeof(plan_v1));
    plan_v1 old[2];
    for (int i = 0; i < 2; i++) {
        deissn_plan cur = plan_of(i ? 9 : 5, i ? DEISSN_METHOD_DATA : DEISSN_METHOD_EPS);
        memcpy(&old[i], &cur, sizeof old[i]);
        old[i].version = 1;
    }
    memcpy(arr, old, sizeof old);
    const double tau[] = {0, 1}, r[] = {0.5, 0.8};
    deissn_normtable_params tp = DEISSN_NORMTABLE_PARAMS_INIT;
    tp.plans = (const deissn_plan *)(const void *)arr;
    tp.n_plans = 2;
    deissn_normtable *t = NULL;
    CHECK_STATUS(deissn_normtable_create(&t, tau, r, 2, &tp), DEISSN_OK,
                 "a table from an array of version-1 plans");
    CHECK(deissn_normtable_plan_count(t) == 2, "two plans");
    unsigned char *out = caller_struct(sizeof(plan_v1));
    for (size_t i = 0; t && i < 2; i++) {
        memset(out, FILL, sizeof(plan_v1) + CANARY_BYTES);
        uint32_t one = 1;
        memcpy(out, &one, 4);
        CHECK_STATUS(deissn_normtable_plan(t, i, (deissn_plan *)(void *)out), DEISSN_OK,
                     "a plan into a version-1 struct");
        plan_v1 got;
        memcpy(&got, out, sizeof got);
        CHECK(got.version == 1 && got.nfe == old[i].nfe && got.method == old[i].method &&
                  !memcmp(got.taus, old[i].taus, sizeof got.taus) &&
                  got.best_error == old[i].best_error && canary_intact(out, sizeof got),
              "plan %zu: read with version 1's stride, written back as version 1 and no more "
              "(nfe %u, want %u)", i, got.nfe, old[i].nfe);
        deissn_plan cur = DEISSN_PLAN_INIT;
        deissn_normtable_plan(t, i, &cur);
        int zero = 1;
        for (int k = 0; k < DEISSN_PLAN_MAX_NFE; k++)
            for (int j = 0; j < DEISSN_PLAN_WEIGHTS; j++) zero &= cur.weights[k][j] == 0;
        CHECK(zero, "what a version-1 plan lacks (weights) reads as 0");
    }
    /* An array whose plans disagree on the version is refused, naming the plan. */
    old[1].version = 2;
    memcpy(arr, old, sizeof old);
    deissn_normtable *u = NULL;
    CHECK_STATUS(deissn_normtable_create(&u, tau, r, 2, &tp), DEISSN_E_INVALID_ARG,
                 "plans of two versions in one array");
    CHECK(u == NULL && strstr(deissn_last_error(), "plans[1]") != NULL,
          "the message names the plan: %s", deissn_last_error());
    free(out);
    free(arr);
    deissn_normtable_free(t);
}

/* deissn_preset_params(TUNED) into a version-3 sampler struct, which has no `weights`: a
 * learned plan is refused, naming version 4, and nothing is written; other plans work. */
static void test_tuned_into_v3(void)
{
    const double tau[] = {0, 1}, r[] = {0.5, 0.8};
    deissn_plan plans[2] = {plan_of(6, DEISSN_METHOD_LEARNED), plan_of(8, DEISSN_METHOD_DATA)};
    deissn_normtable_params tp = DEISSN_NORMTABLE_PARAMS_INIT;
    tp.plans = plans;
    tp.n_plans = 2;
    deissn_normtable *t = NULL;
    CHECK_STATUS(deissn_normtable_create(&t, tau, r, 2, &tp), DEISSN_OK, "a table, learned plan");
    unsigned char *sp = caller_struct(sizeof(sampler_params_v3));
    unsigned char before[sizeof(sampler_params_v3) + CANARY_BYTES];
    deissn_sampler_params_init((deissn_sampler_params *)(void *)sp, 3);
    memcpy(before, sp, sizeof before);
    deissn_schedule_params sch, sch_before;
    memset(&sch, 0, sizeof sch); /* the padding too: the whole struct is compared below */
    deissn_schedule_params_init(&sch, DEISSN_SCHEDULE_PARAMS_VERSION);
    memcpy(&sch_before, &sch, sizeof sch);
    int32_t use_table = 7;
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_TUNED, 6, t, &sch,
                                      (deissn_sampler_params *)(void *)sp, &use_table),
                 DEISSN_E_INVALID_ARG, "TUNED, a learned plan, a version-3 sampler struct");
    CHECK(strstr(deissn_last_error(), "version-4") != NULL &&
              strstr(deissn_last_error(), "version 3") != NULL,
          "the message names the versions: %s", deissn_last_error());
    CHECK(!memcmp(sp, before, sizeof before) && !memcmp(&sch, &sch_before, sizeof sch) &&
              use_table == 7, "a refused preset writes nothing");
    CHECK_STATUS(deissn_preset_params(DEISSN_PRESET_TUNED, 8, t, &sch,
                                      (deissn_sampler_params *)(void *)sp, &use_table),
                 DEISSN_OK, "TUNED, a DATA plan, a version-3 sampler struct");
    sampler_params_v3 got;
    memcpy(&got, sp, sizeof got);
    CHECK(got.version == 3 && got.method == DEISSN_METHOD_DATA && got.order == 2 &&
              sch.steps == 8 && sch.custom_taus && sch.custom_taus[7] == plans[1].taus[7],
          "the plan's method and order");
    CHECK(canary_intact(sp, sizeof got), "TUNED writes nothing past version 3");
    free(sp);
    deissn_normtable_free(t);
}

static int model_fn(void *user, const float *x, const int64_t *shape, uint32_t ndim, double t,
                    float *out)
{
    (void)user, (void)t;
    size_t n = 1;
    for (uint32_t d = 0; d < ndim; d++) n *= (size_t)shape[d];
    for (size_t i = 0; i < n; i++) out[i] = 0.5f * x[i];
    return 0;
}

static void test_model_sample_and_outputs(void)
{
    SAME_PREFIX(model_params_v1, deissn_model_params);
    SAME_PREFIX(sample_options_v1, deissn_sample_options);
    unsigned char *mp = caller_struct(sizeof(model_params_v1));
    CHECK_STATUS(deissn_model_params_init((deissn_model_params *)mp, 1), DEISSN_OK,
                 "model params init");
    CHECK(canary_intact(mp, sizeof(model_params_v1)), "model params init stays in version 1");
    deissn_model *m = NULL;
    CHECK_STATUS(deissn_model_from_callback(&m, model_fn, NULL, (deissn_model_params *)mp),
                 DEISSN_OK, "model from a version-1 params struct");
    free(mp);

    deissn_schedule *sch = schedule10();
    deissn_sampler *s = NULL;
    deissn_sampler_create(&s, sch, NULL, NULL);
    unsigned char *opt = caller_struct(sizeof(sample_options_v1));
    unsigned char *stats = caller_struct(sizeof(sample_stats_v1));
    CHECK_STATUS(deissn_sample_options_init((deissn_sample_options *)opt, 1), DEISSN_OK,
                 "options init");
    CHECK(canary_intact(opt, sizeof(sample_options_v1)), "options init stays in version 1");
    uint32_t one = 1;
    memcpy(stats, &one, 4);
    sample_options_v1 o;
    memcpy(&o, opt, sizeof o);
    o.stats = (sample_stats_v1 *)stats;
    memcpy(opt, &o, sizeof o);
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t shape[2] = {2, 4};
    CHECK_STATUS(deissn_sample(s, m, x, shape, 2, (deissn_sample_options *)opt), DEISSN_OK,
                 "sample with version-1 options");
    sample_stats_v1 st;
    memcpy(&st, stats, sizeof st);
    CHECK(st.version == 1 && st.evaluations == 10 && canary_intact(stats, sizeof st) &&
              canary_intact(opt, sizeof o),
          "deissn_sample writes version-1 stats and no more");
    free(opt);
    free(stats);

    unsigned char *info = caller_struct(sizeof(step_info_v1));
    memcpy(info, &one, 4);
    deissn_sampler_reset(s);
    CHECK_STATUS(deissn_sampler_next(s, (deissn_step_info *)info), DEISSN_OK, "next, version 1");
    step_info_v1 si;
    memcpy(&si, info, sizeof si);
    CHECK(si.version == 1 && si.steps == 10 && si.tau == 1.0 && canary_intact(info, sizeof si),
          "deissn_sampler_next writes version 1 and no more");
    float out[8] = {0};
    CHECK_STATUS(deissn_step(s, x, out, 8, (deissn_step_info *)info), DEISSN_OK,
                 "step, version-1 info");
    CHECK(canary_intact(info, sizeof si), "deissn_step writes version-1 info and no more");
    free(info);

    unsigned char *co = caller_struct(sizeof(step_coeffs_v1));
    memcpy(co, &one, 4);
    CHECK_STATUS(deissn_sampler_coeffs(s, 2, (deissn_step_coeffs *)co), DEISSN_OK, "coeffs v1");
    step_coeffs_v1 c;
    memcpy(&c, co, sizeof c);
    CHECK(c.version == 1 && c.step == 2 && c.order == 2 && canary_intact(co, sizeof c),
          "deissn_sampler_coeffs writes version 1 and no more");
    /* An output struct of a version the library does not know is refused, untouched. */
    uint32_t nine = 9;
    memcpy(co, &nine, 4);
    memset(co + 4, FILL, sizeof c - 4);
    CHECK_STATUS(deissn_sampler_coeffs(s, 2, (deissn_step_coeffs *)co), DEISSN_E_INVALID_ARG,
                 "coeffs version 9 refused");
    int untouched = 1;
    for (size_t i = 4; i < sizeof c; i++) untouched &= co[i] == FILL;
    CHECK(untouched, "a refused output struct is not written");
    free(co);
    deissn_sampler_free(s);
    deissn_schedule_free(sch);
    deissn_model_free(m);
}

int main(void)
{
    test_sampler_params();
    test_schedule_and_table_params();
    test_plans_v1();
    test_tuned_into_v3();
    test_model_sample_and_outputs();
    TEST_SUMMARY();
}
