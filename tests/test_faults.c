/* test_faults.c - allocation failures: every allocation of a whole create / sample / step /
 * reset / free cycle is made to fail in turn, and each time
 *   - the call that met it returns DEISSN_E_NOMEM with a message, its output handle NULL and
 *     its buffers as they were (no allocation failure is swallowed: it must be reported);
 *   - everything created before stays usable: the call, retried, succeeds, and the cycle ends
 *     with the very bits of a cycle that met no failure;
 *   - nothing leaks (ASan and valgrind check that in `make asan` / `make memcheck`).
 * Linked against build/lib/libdeissn_faults.a, the library built with DEISSN_FAULT_INJECTION. */
#include "base/base.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

#define BATCH 2
#define DIM 37
#define NUMEL (BATCH * DIM)

typedef struct {
    deissn_schedule *schedule, *vp;
    deissn_normtable *table, *ref_table;
    deissn_sampler *sampler, *ddim;
    deissn_model *model;
    float x_sample[NUMEL]; /* what deissn_sample made */
    float x_step[NUMEL];   /* what the step loop made */
    float x_again[NUMEL];  /* the step loop after a reset, on other noise */
} cycle;

/* Drive the sampler with deissn_step from where it stands to the end. Resumable: after a
 * failed step the sampler and x are as before, so calling it again goes on. */
static int32_t step_loop(deissn_sampler *s, const deissn_schedule *sch, float *x)
{
    const int64_t shape[2] = {BATCH, DIM};
    float out[NUMEL];
    deissn_step_info info = DEISSN_STEP_INFO_INIT;
    int32_t rc = deissn_sampler_next(s, &info);
    while (rc == DEISSN_OK) {
        tl_gaussian_eps((void *)sch, x, shape, 2, info.tau, out);
        rc = deissn_step(s, x, out, NUMEL, &info);
    }
    return rc == DEISSN_DONE ? DEISSN_OK : rc;
}

enum { OP_SCHEDULE, OP_VP, OP_TABLE, OP_REF_TABLE, OP_SAMPLER, OP_DDIM, OP_MODEL, OP_SAMPLE,
       OP_STEPS, OP_RESET, OP_STEPS_AGAIN, OP_DDIM_STEPS, N_OPS };
static const char *op_names[N_OPS] = {
    "schedule_create", "schedule_create(VP, LOGSNR)", "normtable_create",
    "normtable_from_reference", "sampler_create", "sampler_create(order 0)",
    "model_from_callback", "sample", "step", "sampler_reset", "step after reset",
    "step (order 0)"};

/* The handle an op creates (checked to be NULL after a failure), or NULL. */
static void **created(cycle *c, int op)
{
    switch (op) {
    case OP_SCHEDULE: return (void **)&c->schedule;
    case OP_VP: return (void **)&c->vp;
    case OP_TABLE: return (void **)&c->table;
    case OP_REF_TABLE: return (void **)&c->ref_table;
    case OP_SAMPLER: return (void **)&c->sampler;
    case OP_DDIM: return (void **)&c->ddim;
    case OP_MODEL: return (void **)&c->model;
    default: return NULL;
    }
}

/* The buffer an op writes (checked to be unchanged after a failure), or NULL. */
static float *written(cycle *c, int op)
{
    switch (op) {
    case OP_SAMPLE: return c->x_sample;
    case OP_STEPS: return c->x_step;
    case OP_STEPS_AGAIN: case OP_DDIM_STEPS: return c->x_again;
    default: return NULL;
    }
}

static int32_t run_op(cycle *c, int op)
{
    switch (op) {
    case OP_SCHEDULE: {
        deissn_schedule_params p = DEISSN_SCHEDULE_PARAMS_INIT;
        p.steps = 6;
        return deissn_schedule_create(&c->schedule, &p);
    }
    case OP_VP: {
        deissn_schedule_params p = DEISSN_SCHEDULE_PARAMS_INIT;
        p.noise = DEISSN_NOISE_CONTINUOUS_VP;
        p.spacing = DEISSN_SPACING_LOGSNR;
        p.steps = 4;
        return deissn_schedule_create(&c->vp, &p);
    }
    case OP_TABLE: {
        double tau[3] = {0.0, 0.3, 1.0}, r[3] = {0.6, 0.78, 0.8};
        return deissn_normtable_create(&c->table, tau, r, 3, NULL);
    }
    case OP_REF_TABLE: {
        float sa[8], ls[8];
        for (int i = 0; i < 8; i++) sa[i] = 0.8f - 0.02f * (float)i, ls[i] = 1.0f;
        return deissn_normtable_from_reference(&c->ref_table, sa, ls, 8, &(deissn_normtable_params){.version = DEISSN_NORMTABLE_PARAMS_VERSION, .clip = 1, .metadata = NULL});
    }
    case OP_SAMPLER: return deissn_sampler_create(&c->sampler, c->schedule, c->table, NULL);
    case OP_DDIM: {
        deissn_sampler_params p = DEISSN_SAMPLER_PARAMS_INIT;
        p.order = 0;
        return deissn_sampler_create(&c->ddim, c->vp, NULL, &p);
    }
    case OP_MODEL: {
        deissn_model_params p = DEISSN_MODEL_PARAMS_INIT;
        p.time_convention = DEISSN_TIME_TAU;
        return deissn_model_from_callback(&c->model, tl_gaussian_eps, c->schedule, &p);
    }
    case OP_SAMPLE: {
        const int64_t shape[2] = {BATCH, DIM};
        return deissn_sample(c->sampler, c->model, c->x_sample, shape, 2, NULL);
    }
    case OP_STEPS: return step_loop(c->sampler, c->schedule, c->x_step);
    case OP_RESET: return deissn_sampler_reset(c->sampler);
    case OP_STEPS_AGAIN: return step_loop(c->sampler, c->schedule, c->x_again);
    case OP_DDIM_STEPS: return deissn_sampler_reset(c->ddim) ? DEISSN_E_INTERNAL
                                                             : step_loop(c->ddim, c->vp, c->x_again);
    }
    return DEISSN_E_INTERNAL;
}

static void cycle_free(cycle *c)
{
    /* parents before their children: the children keep them alive */
    deissn_schedule_free(c->schedule);
    deissn_normtable_free(c->table);
    deissn_sampler_free(c->sampler);
    deissn_model_free(c->model);
    deissn_sampler_free(c->ddim);
    deissn_schedule_free(c->vp);
    deissn_normtable_free(c->ref_table);
}

static void cycle_init(cycle *c)
{
    memset(c, 0, sizeof *c);
    deissn_fill_noise(7, 0, BATCH, DIM, c->x_sample);
    memcpy(c->x_step, c->x_sample, sizeof c->x_step);
    deissn_fill_noise(7, BATCH, BATCH, DIM, c->x_again);
}

/* One cycle with allocation k failing (k < 0: none). Returns how many calls failed. */
static int run_cycle(cycle *c, long k, const char *label)
{
    int failures = 0;
    cycle_init(c);
    long first = dsn_alloc_count();
    dsn_fail_after(k);
    for (int op = 0; op < N_OPS; op++) {
        float before[NUMEL];
        float *buf = written(c, op);
        if (buf) memcpy(before, buf, sizeof before);
        int32_t rc = run_op(c, op);
        /* allocation k was made during this op if the count went past it */
        int fired = k >= 0 && dsn_alloc_count() > first + k && failures == 0;
        if (rc == DEISSN_OK) {
            CHECK(!fired, "%s: allocation %ld failed inside %s, which returned OK", label, k,
                  op_names[op]);
            continue;
        }
        failures++;
        CHECK(fired, "%s: %s failed (%d: %s) without the injected failure", label, op_names[op],
              (int)rc, deissn_last_error());
        CHECK(rc == DEISSN_E_NOMEM, "%s: %s returned %d, want DEISSN_E_NOMEM; message: %s", label,
              op_names[op], (int)rc, deissn_last_error());
        CHECK(deissn_last_error()[0] != '\0', "%s: %s left no message", label, op_names[op]);
        void **h = created(c, op);
        if (h) CHECK(*h == NULL, "%s: %s failed but set its output handle", label, op_names[op]);
        if (buf)
            CHECK(memcmp(before, buf, sizeof before) == 0, "%s: %s failed but changed x", label,
                  op_names[op]);
        /* What exists still works: the same call, without the failure, succeeds. */
        dsn_fail_after(-1);
        rc = run_op(c, op);
        CHECK(rc == DEISSN_OK, "%s: %s fails again after the injected failure: %d: %s", label,
              op_names[op], (int)rc, deissn_last_error());
    }
    dsn_fail_after(-1);
    return failures;
}

/* The tuning run's halves: solve two parts, merge, to bytes and back, tune, with allocation
 * k failing (k < 0: none). Returns the status of the first call that failed (DEISSN_OK: none)
 * and, on success, the tuned table's first plan's error. */
static int32_t tune_cycle(deissn_model *m, const deissn_schedule_params *noise, long k,
                          double *error)
{
    deissn_tune_params tp = DEISSN_TUNE_PARAMS_INIT;
    tp.nfe_min = 2;
    tp.nfe_max = 3;
    tp.grid_steps = 12;
    tp.fit_samples = 4;
    tp.holdout_samples = 2;
    tp.batch = 2;
    const int64_t shape[1] = {DIM};
    deissn_reference *a = NULL, *b = NULL, *merged = NULL, *back = NULL;
    deissn_normtable *t = NULL;
    unsigned char *bytes = NULL;
    size_t n = 0;
    dsn_fail_after(k);
    int32_t rc = deissn_reference_solve(&a, m, noise, shape, 1, &tp, 0, 2);
    if (!rc) rc = deissn_reference_solve(&b, m, noise, shape, 1, &tp, 2, 0);
    const deissn_reference *parts[2] = {b, a};
    if (!rc) rc = deissn_reference_merge(&merged, parts, 2);
    if (!rc) rc = deissn_reference_to_bytes(merged, NULL, 0, &n);
    if (!rc && !(bytes = malloc(n))) rc = DEISSN_E_NOMEM; /* the test's own, not injected */
    if (!rc) rc = deissn_reference_to_bytes(merged, bytes, n, &n);
    if (!rc) rc = deissn_reference_from_bytes(&back, bytes, n);
    if (!rc) rc = deissn_tune_reference(&t, m, noise, NULL, back, &tp);
    dsn_fail_after(-1);
    if (rc) {
        CHECK(rc == DEISSN_E_NOMEM && deissn_last_error()[0], "allocation %ld: status %d (%s), "
              "want DEISSN_E_NOMEM", k, (int)rc, deissn_last_error());
        CHECK((!a || !b) || (!merged || !back) || !t, "allocation %ld: a handle was set on "
              "failure", k);
    } else {
        deissn_plan pl = DEISSN_PLAN_INIT;
        deissn_normtable_plan(t, 0, &pl);
        *error = pl.error;
    }
    free(bytes);
    deissn_normtable_free(t);
    deissn_reference_free(back);
    deissn_reference_free(merged);
    deissn_reference_free(b);
    deissn_reference_free(a);
    return rc;
}

static void tune_faults(void)
{
    deissn_schedule_params noise = DEISSN_SCHEDULE_PARAMS_INIT;
    deissn_schedule *s = NULL;
    deissn_schedule_create(&s, &noise);
    deissn_model_params mp = DEISSN_MODEL_PARAMS_INIT;
    mp.time_convention = DEISSN_TIME_TAU;
    deissn_model *m = NULL;
    CHECK_STATUS(deissn_model_from_callback(&m, tl_gaussian_eps, s, &mp), DEISSN_OK, "model");
    double want = 0, got = -1;
    long before = dsn_alloc_count();
    CHECK_STATUS(tune_cycle(m, &noise, -1, &want), DEISSN_OK, "the tuning cycle");
    long count = dsn_alloc_count() - before;
    printf("# %ld allocations in a tuning cycle\n", count);
    /* every allocation of the solves, the merge and the bytes (the first 120), then 80 of the
     * search's, evenly spread (all of them take minutes) */
    int failed = 0, tried = 0;
    long stride = count > 120 ? (count - 120) / 80 + 1 : 1;
    for (long k = 0; k < count; k += k < 120 ? 1 : stride, tried++)
        failed += tune_cycle(m, &noise, k, &got) != DEISSN_OK;
    CHECK(failed == tried, "%d of %d injected failures were reported", failed, tried);
    CHECK(tune_cycle(m, &noise, -1, &got) == DEISSN_OK && got == want,
          "a cycle after the failures did not give the same plan");
    deissn_model_free(m);
    deissn_schedule_free(s);
}

int main(void)
{
    static cycle ref, c;
    /* Count the allocations of a cycle that meets no failure. */
    long before = dsn_alloc_count();
    CHECK(run_cycle(&ref, -1, "reference") == 0, "the reference cycle failed");
    long count = dsn_alloc_count() - before;
    printf("# %ld allocations in a cycle\n", count);
    /* 7 handles + their arrays + the history + deissn_sample's buffers: well over 15 */
    CHECK(count >= 15, "only %ld allocations counted; is fault injection compiled in?", count);
    float noise[NUMEL];
    deissn_fill_noise(7, 0, BATCH, DIM, noise);
    CHECK(memcmp(noise, ref.x_sample, sizeof noise) != 0, "the reference cycle sampled");

    for (long k = 0; k < count; k++) {
        char label[32];
        snprintf(label, sizeof label, "allocation %ld", k);
        int failures = run_cycle(&c, k, label);
        CHECK(failures == 1, "%s: %d calls failed, want exactly 1", label, failures);
        CHECK(memcmp(c.x_sample, ref.x_sample, sizeof c.x_sample) == 0,
              "%s: deissn_sample's result differs from the reference", label);
        CHECK(memcmp(c.x_step, ref.x_step, sizeof c.x_step) == 0,
              "%s: the step loop's result differs from the reference", label);
        CHECK(memcmp(c.x_again, ref.x_again, sizeof c.x_again) == 0,
              "%s: the result after a reset differs from the reference", label);
        cycle_free(&c);
    }
    /* Past the end of the cycle, nothing fails. */
    CHECK(run_cycle(&c, count, "past the end") == 0, "a cycle with allocation %ld failing failed",
          count);
    cycle_free(&c);
    cycle_free(&ref);
    tune_faults();
    TEST_SUMMARY();
}
