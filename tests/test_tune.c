/* test_tune.c - the tuned-plan search (lib/tune/tune.h) on an analytic model: data with
 * independent Gaussian coordinates of standard deviations s_d from 0.02 to 1, so that eps
 * changes fast near tau = 0 in some coordinates and slowly in others, as an image model's
 * does. Its probability-flow ODE has the exact solution
 *   x_d(tau) = x_d(1) sqrt(abar(tau) s_d^2 + sigma(tau)^2) / sqrt(abar(1) s_d^2 + sigma(1)^2),
 * so the reference trajectories are exact. */
#include "deissn.h"
#include "testlib.h"
#include "tune/reference.h"
#include "tune/tune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define D 8
#define K 24
#define NFIT 16
#define M 60
static const double SD[D] = {0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0};

typedef struct model {
    deissn_schedule *s;
    int fail_at;  /* the call that fails (0: none) */
    int calls;
} model;

static double abar(const model *m, double tau) { return deissn_schedule_alpha_bar(m->s, tau); }

static void eps_of(const model *m, const float *x, size_t n, double tau, float *out)
{
    double ab = abar(m, tau), s2 = 1 - ab;
    for (size_t k = 0; k < n; k++)
        for (size_t d = 0; d < D; d++)
            out[k * D + d] = (float)(sqrt(s2) * x[k * D + d] / (ab * SD[d] * SD[d] + s2));
}

static int eval_cb(void *user, const float *x, size_t n, size_t numel, double tau, float *out)
{
    model *m = user;
    if (numel != D) return 7;
    if (m->fail_at && ++m->calls == m->fail_at) return 42;
    eps_of(m, x, n, tau, out);
    return 0;
}

static double exact_scale(const model *m, size_t d, double tau)
{
    double a1 = abar(m, 1.0), at = abar(m, tau);
    return sqrt(at * SD[d] * SD[d] + 1 - at) / sqrt(a1 * SD[d] * SD[d] + 1 - a1);
}

typedef struct fixture {
    model m;
    double taus[M];
    float x[(M + 1) * K * D], eps[M * K * D], x1[K * D];
    double G[(2 * M + 1) * (2 * M + 1)];
    float path[(M + 1) * NFIT * D];
    dsn_fix128 gram_sums[(2 * M + 1) * (2 * M + 2) / 2];
    deissn_normtable *table;
    dsn_tune_reference ref;
    deissn_schedule_params noise;
} fixture;

/* f->ref with the Gram matrix over the first n_choose trajectories, made as the reference
 * solves make it (exact sums, tune/reference.h). */
static void set_choose(fixture *f, size_t n_choose)
{
    const size_t nb = 2 * M + 1;
    memset(f->gram_sums, 0, sizeof f->gram_sums);
    for (size_t k = 0; k < n_choose; k++) {
        const float *vecs[2 * M + 1];
        for (size_t b = 0; b < nb; b++)
            vecs[b] = b <= M ? f->x + (b * K + k) * D : f->eps + ((b - M - 1) * K + k) * D;
        CHECK_STATUS(dsn_gram_add(f->gram_sums, vecs, nb, D, "test"), DEISSN_OK, "gram");
    }
    dsn_gram_unpack(f->G, f->gram_sums, nb);
    for (size_t m = 0; m <= M; m++)
        memcpy(f->path + m * n_choose * D, f->x + m * K * D, n_choose * D * sizeof(float));
    f->ref = (dsn_tune_reference){M, f->taus, K, D, f->x, f->x + (M - 1) * K * D,
                                  f->x + M * K * D, f->path, f->G, n_choose, NFIT};
}

static void setup(fixture *f)
{
    memset(&f->m, 0, sizeof f->m);
    deissn_schedule_params_init(&f->noise, DEISSN_SCHEDULE_PARAMS_VERSION);
    f->noise.steps = 1;
    f->noise.spacing = DEISSN_SPACING_POWER;
    CHECK_STATUS(deissn_schedule_create(&f->m.s, &f->noise), DEISSN_OK, "schedule");
    CHECK_STATUS(deissn_fill_noise(5, 0, K, D, f->x1), DEISSN_OK, "noise");
    for (size_t i = 0; i < M; i++) {
        double u = 1.0 - (double)i / (M - 1);
        f->taus[i] = 1e-3 + (1 - 1e-3) * pow(u, 1.5);
    }
    double kt[M], kr[M];
    for (size_t i = 0; i <= M; i++) {
        double tau = i < M ? f->taus[i] : 0.0, sum = 0;
        for (size_t k = 0; k < K; k++)
            for (size_t d = 0; d < D; d++)
                f->x[(i * K + k) * D + d] = (float)(f->x1[k * D + d] * exact_scale(&f->m, d, tau));
        if (i == M) break;
        eps_of(&f->m, f->x + i * K * D, K, tau, f->eps + i * K * D);
        for (size_t j = 0; j < K * D; j++) sum += fabs(f->eps[i * K * D + j]);
        kt[M - 1 - i] = tau;
        kr[M - 1 - i] = sum / (K * D);
    }
    CHECK_STATUS(deissn_normtable_create(&f->table, kt, kr, M, NULL), DEISSN_OK, "table");
    set_choose(f, NFIT);
}

static void teardown(fixture *f)
{
    deissn_normtable_free(f->table);
    deissn_schedule_free(f->m.s);
}

static dsn_tune_params params_for(fixture *f, uint32_t lo, uint32_t hi)
{
    dsn_tune_params p = {lo, hi, 8, 3, 8, eval_cb, &f->m, NULL};
    return p;
}

/* RMSE on the hold-out trajectories of a named configuration against the exact solution. */
static double holdout_rmse(fixture *f, const deissn_schedule_params *sp,
                           const deissn_sampler_params *mp, const deissn_normtable *table)
{
    deissn_schedule *s = NULL;
    deissn_sampler *smp = NULL;
    if (deissn_schedule_create(&s, sp) != DEISSN_OK ||
        deissn_sampler_create(&smp, s, table, mp) != DEISSN_OK) {
        deissn_schedule_free(s);
        return INFINITY;
    }
    double t[DSN_TUNE_MAX_NFE + 1];
    deissn_schedule_times(s, t, sp->steps + 1);
    size_t n = K - NFIT;
    float x[K * D], e[K * D];
    memcpy(x, f->x1 + NFIT * D, n * D * sizeof(float));
    deissn_step_info info = DEISSN_STEP_INFO_INIT;
    int32_t rc = deissn_sampler_next(smp, &info);
    while (rc == DEISSN_OK) {
        eps_of(&f->m, x, n, info.tau, e);
        rc = deissn_step(smp, x, e, n * D, &info);
    }
    double err = 0;
    for (size_t k = 0; k < n; k++)
        for (size_t d = 0; d < D; d++) {
            double want = f->x1[(NFIT + k) * D + d] * exact_scale(&f->m, d, t[sp->steps]);
            err += (x[k * D + d] - want) * (x[k * D + d] - want);
        }
    deissn_sampler_free(smp);
    deissn_schedule_free(s);
    return sqrt(err / (double)(n * D));
}

/* The tuned plan beats every named spacing (with every order, lower_order_final, method and
 * corrector, stopping at the
 * plan's tau_end, scored against the exact solution there) on the hold-out trajectories, reports its hold-out error, and reproduces that error when run again. */
static void test_tuned_beats_named(fixture *f)
{
    dsn_tune_plan plans[3];
    dsn_tune_params p = params_for(f, 4, 6);
    CHECK_STATUS(dsn_tune_search(plans, 3, &f->noise, f->table, &f->ref, &p), DEISSN_OK,
                 "search");
    const int spacings[] = {DEISSN_SPACING_QUADRATIC, DEISSN_SPACING_TRAILING,
                            DEISSN_SPACING_POWER, DEISSN_SPACING_LOGSNR, DEISSN_SPACING_KARRAS};
    for (int i = 0; i < 3; i++) {
        const dsn_tune_plan *pl = &plans[i];
        CHECK(pl->nfe == (uint32_t)(4 + i), "nfe %u", pl->nfe);
        CHECK(pl->holdout_samples == K - NFIT && pl->fit_samples == NFIT, "samples %zu %zu",
              pl->holdout_samples, pl->fit_samples);
        CHECK(isfinite(pl->holdout_rmse) && pl->holdout_rmse > 0, "holdout %g", pl->holdout_rmse);
        CHECK(pl->evaluations > 0, "evaluations");
        int sorted = pl->taus[0] == f->taus[0] || pl->start == DSN_TUNE_START_PRESET;
        for (uint32_t j = 1; j < pl->nfe; j++) sorted &= pl->taus[j] < pl->taus[j - 1];
        sorted &= pl->tau_end < pl->taus[pl->nfe - 1];
        CHECK(sorted, "NFE %u: times not decreasing", pl->nfe);

        /* the plan run again through the public API gives the reported hold-out error */
        deissn_schedule_params sp = f->noise;
        sp.spacing = DEISSN_SPACING_CUSTOM;
        sp.steps = pl->nfe;
        sp.custom_taus = pl->taus;
        sp.tau_end = pl->tau_end;
        deissn_sampler_params mp;
        deissn_sampler_params_init(&mp, DEISSN_SAMPLER_PARAMS_VERSION);
        mp.order = pl->order;
        mp.lower_order_final = pl->lower_order_final;
        mp.method = pl->method;
        mp.corrector = pl->corrector;
        mp.weights = pl->method == DEISSN_METHOD_LEARNED ? &pl->weights[0][0] : NULL;
        double again = holdout_rmse(f, &sp, &mp, pl->use_table ? f->table : NULL);
        CHECK(tl_close(again, pl->holdout_rmse, 1e-5, 0), "NFE %u: hold-out %.6g, rerun %.6g",
              pl->nfe, pl->holdout_rmse, again);

        double best_named = INFINITY;
        for (size_t si = 0; si < sizeof spacings / sizeof *spacings; si++)
            for (int method = 0; method < 4; method++) /* DEIS, DEIS-SN, x0, x0 + corrector */
                for (uint32_t order = 1; order <= 6; order++) {
                    sp = f->noise;
                    sp.spacing = spacings[si];
                    sp.steps = pl->nfe;
                    sp.tau_end = pl->tau_end; /* the same end, the same reference */
                    if (pl->tau_end > 0) sp.tau_min_eval = 2 * pl->tau_end;
                    deissn_sampler_params_init(&mp, DEISSN_SAMPLER_PARAMS_VERSION);
                    mp.order = (order + 1) / 2;
                    mp.lower_order_final = order % 2;
                    mp.method = method >= 2 ? DEISSN_METHOD_DATA : DEISSN_METHOD_EPS;
                    mp.corrector = method == 3;
                    double r = holdout_rmse(f, &sp, &mp, method == 1 ? f->table : NULL);
                    if (r < best_named) best_named = r;
                }
        printf("# NFE %u: tuned hold-out RMSE %.3g (method %d%s order %u%s%s, tau_end %g, start "
               "%u%s), best named spacing %.3g\n", pl->nfe, pl->holdout_rmse, pl->method,
               pl->use_table ? "+table" : "", pl->order, pl->lower_order_final ? " lof" : "",
               pl->corrector ? " corr" : "", pl->tau_end, pl->start,
               pl->refined ? " refined" : "", best_named);
        CHECK(pl->holdout_rmse < best_named, "NFE %u: tuned %.4g, best named %.4g", pl->nfe,
              pl->holdout_rmse, best_named);
    }

    /* deterministic: the same input gives the same plans, bit for bit */
    dsn_tune_plan again[3];
    CHECK_STATUS(dsn_tune_search(again, 3, &f->noise, f->table, &f->ref, &p), DEISSN_OK,
                 "search again");
    CHECK(memcmp(plans, again, sizeof plans) == 0, "two searches differ");
}

/* Without a table there are no DEIS-SN candidates; without the refinement a grid plan keeps
 * grid times; the hold-out error is still measured. */
static void test_no_table_no_refine(fixture *f)
{
    dsn_tune_plan plan;
    dsn_tune_params p = params_for(f, 5, 5);
    p.n_refine = 0;
    CHECK_STATUS(dsn_tune_search(&plan, 1, &f->noise, NULL, &f->ref, &p), DEISSN_OK, "search");
    CHECK(plan.use_table == 0, "a plan with the table, and no table was given");
    CHECK(plan.refined == 0, "refined with n_refine 0");
    int on_grid = plan.start != DSN_TUNE_START_GRID;
    for (uint32_t j = 0; plan.start == DSN_TUNE_START_GRID && j < plan.nfe; j++) {
        int found = 0;
        for (size_t m = 0; m < M; m++) found |= plan.taus[j] == f->taus[m];
        on_grid = found;
        if (!found) break;
    }
    CHECK(on_grid, "times off the grid without the refinement");
    CHECK(isfinite(plan.holdout_rmse) && plan.holdout_samples == K - NFIT, "hold-out %g",
          plan.holdout_rmse);
}

/* With confirmation trajectories, every plan either beat BEST's configuration there or is
 * BEST's configuration. */
static void test_confirmation(fixture *f)
{
    dsn_tune_params p = params_for(f, 4, 6);
    set_choose(f, NFIT - NFIT / 2);
    dsn_tune_plan plans[3];
    CHECK_STATUS(dsn_tune_search(plans, 3, &f->noise, f->table, &f->ref, &p), DEISSN_OK,
                 "search with confirmation");
    set_choose(f, NFIT);
    for (int i = 0; i < 3; i++) {
        const dsn_tune_plan *pl = &plans[i];
        int kept = pl->confirmed && pl->confirm_rmse <= pl->confirm_best_rmse;
        int replaced = !pl->confirmed && pl->start == DSN_TUNE_START_PRESET && !pl->refined;
        CHECK(kept || replaced, "NFE %u: the plan was confirmed against BEST (%g vs %g) or is "
              "BEST's (confirmed %u, start %u)", pl->nfe, pl->confirm_rmse,
              pl->confirm_best_rmse, pl->confirmed, pl->start);
        CHECK(pl->fit_samples == NFIT - NFIT / 2, "NFE %u: chosen on %zu trajectories", pl->nfe,
              pl->fit_samples);
    }
}

static void test_bad_args(fixture *f)
{
    dsn_tune_plan plans[2], keep[2];
    memset(plans, 0x5a, sizeof plans);
    memcpy(keep, plans, sizeof plans);
    dsn_tune_params p = params_for(f, 4, 5);
    struct {
        const char *what, *needle;
        int32_t status;
    } cases[] = {
        {"NULL plans", "plans", DEISSN_E_INVALID_ARG},
        {"NULL eval", "params->eval", DEISSN_E_INVALID_ARG},
        {"n_fit 0", "n_fit", DEISSN_E_INVALID_ARG},
        {"n_fit > n_traj", "n_fit", DEISSN_E_INVALID_ARG},
        {"unsorted taus", "ref->taus[3]", DEISSN_E_INVALID_ARG},
        {"nfe range", "NFE range", DEISSN_E_INVALID_ARG},
        {"capacity", "capacity", DEISSN_E_SIZE},
        {"NULL start", "ref->start", DEISSN_E_INVALID_ARG},
        {"top 0", "params->top", DEISSN_E_INVALID_ARG},
        {"eval fails", "returned 42", DEISSN_E_CALLBACK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        dsn_tune_reference r = f->ref;
        dsn_tune_params q = p;
        double taus[M];
        memcpy(taus, f->taus, sizeof taus);
        size_t cap = 2;
        dsn_tune_plan *out = plans;
        f->m.fail_at = 0;
        f->m.calls = 0;
        switch (i) {
        case 0: out = NULL; break;
        case 1: q.eval = NULL; break;
        case 2: r.n_fit = 0; break;
        case 3: r.n_fit = K + 1; break;
        case 4: taus[3] = taus[2]; r.taus = taus; break;
        case 5: q.nfe_max = M; break;
        case 6: cap = 1; break;
        case 7: r.start = NULL; break;
        case 8: q.top = 0; break;
        case 9: f->m.fail_at = 50; break;
        }
        int32_t rc = dsn_tune_search(out, cap, &f->noise, f->table, &r, &q);
        CHECK_STATUS(rc, cases[i].status, cases[i].what);
        CHECK(strstr(deissn_last_error(), cases[i].needle) != NULL, "%s: message \"%s\"",
              cases[i].what, deissn_last_error());
        CHECK(memcmp(plans, keep, sizeof plans) == 0, "%s: plans changed", cases[i].what);
    }
    f->m.fail_at = 0;
}

/* deissn_tune() end to end, through a callback model: the plans it stores are valid, carry
 * their hold-out error and BEST's, and a user who samples the hold-out seeds with
 * DEISSN_PRESET_TUNED from the saved table gets exactly the error the plan records. */
static int model_fn(void *user, const float *x, const int64_t *shape, uint32_t ndim, double t,
                    float *out)
{
    (void)ndim;
    eps_of(user, x, (size_t)shape[0], t, out);
    return 0;
}

/* The analytic model as a deissn_model (callback, t = tau). */
static deissn_model *callback_model(fixture *f)
{
    deissn_model_params mp = DEISSN_MODEL_PARAMS_INIT;
    mp.time_convention = DEISSN_TIME_TAU;
    deissn_model *m = NULL;
    CHECK_STATUS(deissn_model_from_callback(&m, model_fn, &f->m, &mp), DEISSN_OK, "model");
    return m;
}

/* A deissn_tune() run of 16 fit trajectories, NFE 4..nfe_max. */
static deissn_tune_params tune_run(uint32_t nfe_max, uint32_t grid, uint32_t holdout,
                                   uint32_t batch, uint64_t seed)
{
    deissn_tune_params tp = DEISSN_TUNE_PARAMS_INIT;
    tp.nfe_min = 4;
    tp.nfe_max = nfe_max;
    tp.grid_steps = grid;
    tp.fit_samples = 16;
    tp.holdout_samples = holdout;
    tp.batch = batch;
    tp.seed = seed;
    return tp;
}

static void test_deissn_tune(fixture *f)
{
    deissn_model *m = callback_model(f);
    deissn_tune_params tp = tune_run(7, 120, 40, 16, 5);
    int64_t shape[1] = {D};
    deissn_normtable *t = NULL;
    CHECK_STATUS(deissn_tune(&t, m, &f->noise, NULL, shape, 1, &tp), DEISSN_OK, "deissn_tune");
    CHECK(deissn_normtable_plan_count(t) == 4, "one plan per NFE 4..7: %zu",
          deissn_normtable_plan_count(t));
    deissn_normtable_info info = DEISSN_NORMTABLE_INFO_INIT;
    deissn_normtable_get_info(t, &info);
    CHECK(info.has_sums && info.n_knots == 120 && info.samples == 56,
          "the reference solves calibrated the table: %zu knots, %llu samples", info.n_knots,
          (unsigned long long)info.samples);
    int wins = 0;
    for (size_t i = 0; i < deissn_normtable_plan_count(t); i++) {
        deissn_plan pl = DEISSN_PLAN_INIT;
        deissn_normtable_plan(t, i, &pl);
        CHECK(pl.nfe == 4 + i && pl.samples == 40 && pl.error > 0 && pl.error_low <= pl.error &&
                  pl.error <= pl.error_high && pl.best_error > 0,
              "plan %zu: nfe %u, %u hold-out samples, error %g in [%g, %g], BEST %g", i, pl.nfe,
              pl.samples, pl.error, pl.error_low, pl.error_high, pl.best_error);
        wins += pl.error < pl.best_error;
        printf("# deissn_tune NFE %u: hold-out RMSE %.4g [%.4g, %.4g], BEST %.4g\n", pl.nfe,
               pl.error, pl.error_low, pl.error_high, pl.best_error);

        /* What a user gets: TUNED from the table, the hold-out seeds, deissn_sample; against
         * the tuner's own reference, which this analytic model knows exactly. */
        deissn_schedule_params sp = f->noise;
        deissn_sampler_params smp_p = DEISSN_SAMPLER_PARAMS_INIT;
        int32_t use = 0;
        deissn_preset_params(DEISSN_PRESET_TUNED, pl.nfe, t, &sp, &smp_p, &use);
        deissn_schedule *s = NULL;
        deissn_sampler *smp = NULL;
        deissn_schedule_create(&s, &sp);
        CHECK_STATUS(deissn_sampler_create(&smp, s, use ? t : NULL, &smp_p), DEISSN_OK, "TUNED");
        static float x[40 * D];
        deissn_fill_noise(5, 16, 40, D, x);
        int64_t bshape[2] = {40, D};
        CHECK_STATUS(deissn_sample(smp, m, x, bshape, 2, NULL), DEISSN_OK, "sample TUNED");
        /* the reference: DEIS-3 on the tuner's grid, as it solved it */
        deissn_schedule_params rp = f->noise;
        double grid[120];
        for (int g = 0; g < 120; g++) grid[g] = 1e-3 + (1 - 1e-3) * pow(1.0 - g / 119.0, 1.5);
        rp.spacing = DEISSN_SPACING_CUSTOM;
        rp.steps = 120;
        rp.custom_taus = grid;
        rp.tau_end = 0;
        deissn_schedule *rs = NULL;
        deissn_sampler *rsmp = NULL;
        deissn_schedule_create(&rs, &rp);
        deissn_sampler_create(&rsmp, rs, NULL, NULL);
        /* The reference at the plan's end: x(0) after the whole grid, or x(tau_last), the
         * state at the last grid time (the last step taken by hand stops there). */
        static float y[40 * D];
        deissn_fill_noise(5, 16, 40, D, y);
        if (pl.tau_end == 0) {
            deissn_sample(rsmp, m, y, bshape, 2, NULL);
        } else {
            float e[40 * D];
            deissn_step_info si = DEISSN_STEP_INFO_INIT;
            deissn_sampler_next(rsmp, &si);
            while (si.step < 119) {
                eps_of(&f->m, y, 40, si.tau, e);
                deissn_step(rsmp, y, e, 40 * D, &si);
            }
        }
        double se = 0;
        for (size_t k = 0; k < 40 * D; k++) se += (x[k] - (double)y[k]) * (x[k] - (double)y[k]);
        double rmse = sqrt(se / (40 * D));
        CHECK(fabs(rmse - pl.error) <= 1e-6 * pl.error, "NFE %u: sampling with TUNED gives the "
              "recorded hold-out error: %.9g vs %.9g", pl.nfe, rmse, pl.error);
        deissn_sampler_free(smp);
        deissn_sampler_free(rsmp);
        deissn_schedule_free(s);
        deissn_schedule_free(rs);
    }
    CHECK(wins >= 3, "the tuned plan beats BEST on the hold-out seeds at %d of 4 NFE", wins);

    tp.nfe_min = 9;
    tp.nfe_max = 8;
    deissn_normtable *bad = NULL;
    CHECK_STATUS(deissn_tune(&bad, m, &f->noise, NULL, shape, 1, &tp), DEISSN_E_INVALID_ARG,
                 "an empty NFE range");
    CHECK(bad == NULL, "nothing made on error");
    deissn_normtable_free(t);
    deissn_model_free(m);
}

/* The progress: the solve and the search in one unit (model evaluations of a batch), done
 * never past the total and never back, the end reported as done == total, the search
 * counted by its evaluations (it is most of the work) and reported inside each NFE. */
typedef struct {
    uint32_t calls, last_done, last_total, past, back, stop_after;
    uint32_t max_total_in_solve, search_calls;
} progress_log;

static int log_progress(void *user, uint32_t done, uint32_t total)
{
    progress_log *g = user;
    g->past += done > total;
    g->back += g->calls && done < g->last_done;
    g->calls++;
    g->last_done = done;
    g->last_total = total;
    return g->stop_after && g->calls >= g->stop_after;
}

static void test_tune_progress(fixture *f)
{
    deissn_model *m = callback_model(f);
    deissn_tune_params tp = tune_run(7, 120, 40, 16, 5);
    int64_t shape[1] = {D};
    progress_log g = {0};
    tp.progress = log_progress;
    tp.progress_user = &g;
    deissn_normtable *t = NULL;
    CHECK_STATUS(deissn_tune(&t, m, &f->noise, NULL, shape, 1, &tp), DEISSN_OK, "with progress");
    uint32_t solve = (56 + 15) / 16 * 120; /* batches x grid steps */
    CHECK(g.past == 0 && g.back == 0, "done passed the total %u times, went back %u times",
          g.past, g.back);
    CHECK(g.last_done == g.last_total, "the last call reports the end: %u of %u", g.last_done,
          g.last_total);
    /* the search's evaluations: at least one per sampling step of every trajectory of every
     * NFE 4..7 (22 steps), in batches of 16 */
    CHECK(g.last_total >= solve + 22 * 56 / 16, "the search counted by its evaluations: total "
          "%u (the solve %u)", g.last_total, solve);
    CHECK(g.calls > solve + 4, "reported inside the search's NFEs: %u calls", g.calls);
    deissn_normtable_free(t);

    /* a stop asked for inside the search's first NFE */
    progress_log stop = {0};
    stop.stop_after = solve + 2;
    tp.progress_user = &stop;
    t = (deissn_normtable *)1;
    CHECK_STATUS(deissn_tune(&t, m, &f->noise, NULL, shape, 1, &tp), DEISSN_E_CALLBACK,
                 "stopped by the progress");
    CHECK(t == NULL && strstr(deissn_last_error(), "deissn_tune: stopped by the progress "
                              "callback while searching NFE 4"), "message \"%s\"",
          deissn_last_error());
    deissn_model_free(m);
}

/* ---- deissn_reference: parts, merging, bytes --------------------------------------------- */

static unsigned char *bytes_of(const deissn_reference *r, size_t *n)
{
    CHECK_STATUS(deissn_reference_to_bytes(r, NULL, 0, n), DEISSN_OK, "size of the bytes");
    unsigned char *b = malloc(*n);
    CHECK_STATUS(deissn_reference_to_bytes(r, b, *n, n), DEISSN_OK, "to bytes");
    return b;
}

static deissn_tune_params small_run(void)
{
    return tune_run(6, 60, 24, 8, 9);
}

/* Parts solved separately and merged in any order hold the bytes of one whole solve, split
 * at batch boundaries or not (this model's output does not depend on its batch; the sums are
 * exact), survive their bytes, and give deissn_tune()'s plans bit for bit. */
static void test_reference_parts(fixture *f)
{
    deissn_model *m = callback_model(f);
    deissn_tune_params tp = small_run();
    int64_t shape[1] = {D};
    deissn_reference *whole = NULL;
    CHECK_STATUS(deissn_reference_solve(&whole, m, &f->noise, shape, 1, &tp, 0, 0), DEISSN_OK,
                 "the whole reference");
    uint64_t first = 9, count = 9, total = 9;
    deissn_reference_range(whole, &first, &count, &total);
    CHECK(first == 0 && count == 40 && total == 40, "range %llu+%llu of %llu",
          (unsigned long long)first, (unsigned long long)count, (unsigned long long)total);
    size_t nw;
    unsigned char *bw = bytes_of(whole, &nw);

    /* at batch boundaries (8), and across them: 0-4 | 5-20 | 21-39 */
    static const uint64_t cuts[2][4] = {{0, 8, 24, 40}, {0, 5, 21, 40}};
    for (int c = 0; c < 2; c++) {
        deissn_reference *part[3] = {NULL, NULL, NULL}, *merged = NULL;
        for (int i = 0; i < 3; i++)
            CHECK_STATUS(deissn_reference_solve(&part[i], m, &f->noise, shape, 1, &tp,
                                                cuts[c][i], cuts[c][i + 1] - cuts[c][i]),
                         DEISSN_OK, "a part");
        const deissn_reference *order[3] = {part[2], part[0], part[1]};
        CHECK_STATUS(deissn_reference_merge(&merged, order, 3), DEISSN_OK, "merge");
        size_t nm;
        unsigned char *bm = bytes_of(merged, &nm);
        CHECK(nm == nw && memcmp(bm, bw, nw) == 0, "cuts %d: the merged parts' bytes are not "
              "the whole solve's", c);
        free(bm);
        deissn_reference_free(merged);
        for (int i = 0; i < 3; i++) deissn_reference_free(part[i]);
    }

    /* the bytes back, tuned: deissn_tune()'s plans, bit for bit */
    deissn_reference *back = NULL;
    CHECK_STATUS(deissn_reference_from_bytes(&back, bw, nw), DEISSN_OK, "from bytes");
    deissn_normtable *t1 = NULL, *t2 = NULL;
    CHECK_STATUS(deissn_tune_reference(&t1, m, &f->noise, NULL, back, &tp), DEISSN_OK,
                 "tune from the reference");
    CHECK_STATUS(deissn_tune(&t2, m, &f->noise, NULL, shape, 1, &tp), DEISSN_OK, "deissn_tune");
    CHECK(deissn_normtable_plan_count(t1) == 3 && deissn_normtable_plan_count(t2) == 3,
          "plans %zu, %zu", deissn_normtable_plan_count(t1), deissn_normtable_plan_count(t2));
    for (size_t i = 0; i < 3; i++) {
        deissn_plan a = DEISSN_PLAN_INIT, b = DEISSN_PLAN_INIT;
        deissn_normtable_plan(t1, i, &a);
        deissn_normtable_plan(t2, i, &b);
        CHECK(memcmp(&a, &b, sizeof a) == 0, "plan %zu differs from deissn_tune()'s", i);
    }
    deissn_normtable_info i1 = DEISSN_NORMTABLE_INFO_INIT, i2 = DEISSN_NORMTABLE_INFO_INIT;
    deissn_normtable_get_info(t1, &i1);
    deissn_normtable_get_info(t2, &i2);
    CHECK(i1.n_knots == i2.n_knots && i1.samples == 40 && i2.samples == 40 &&
              deissn_normtable_eval(t1, 0.3) == deissn_normtable_eval(t2, 0.3),
          "the calibrated tables differ");
    deissn_normtable_free(t1);
    deissn_normtable_free(t2);
    deissn_reference_free(back);
    free(bw);
    deissn_reference_free(whole);
    deissn_model_free(m);
}

/* Every bad input: a status, a message naming it, nothing made. */
static void test_reference_errors(fixture *f)
{
    deissn_model *m = callback_model(f);
    deissn_tune_params tp = small_run();
    int64_t shape[1] = {D};
    deissn_reference *a = NULL, *b = NULL, *c = NULL, *r = (deissn_reference *)1;
    CHECK_STATUS(deissn_reference_solve(&r, m, &f->noise, shape, 1, &tp, 40, 1),
                 DEISSN_E_INVALID_ARG, "first beyond the run");
    CHECK(r == NULL && strstr(deissn_last_error(), "0..39"), "message \"%s\"", deissn_last_error());
    CHECK_STATUS(deissn_reference_solve(&r, m, &f->noise, shape, 1, &tp, 30, 11),
                 DEISSN_E_INVALID_ARG, "count beyond the run");
    CHECK_STATUS(deissn_reference_solve(&a, m, &f->noise, shape, 1, &tp, 0, 16), DEISSN_OK, "a");
    CHECK_STATUS(deissn_reference_solve(&b, m, &f->noise, shape, 1, &tp, 10, 30), DEISSN_OK, "b");
    deissn_tune_params other = tp;
    other.seed = 10;
    CHECK_STATUS(deissn_reference_solve(&c, m, &f->noise, shape, 1, &other, 16, 24), DEISSN_OK,
                 "c");
    const deissn_reference *ab[2] = {a, b}, *ac[2] = {a, c};
    r = (deissn_reference *)1;
    CHECK_STATUS(deissn_reference_merge(&r, ab, 2), DEISSN_E_MISMATCH, "overlapping parts");
    CHECK(r == NULL && strstr(deissn_last_error(), "overlap in trajectories 10..15"),
          "message \"%s\"", deissn_last_error());
    CHECK_STATUS(deissn_reference_merge(&r, ac, 2), DEISSN_E_MISMATCH, "another run");
    CHECK(strstr(deissn_last_error(), "seed"), "message \"%s\"", deissn_last_error());
    CHECK_STATUS(deissn_reference_merge(&r, NULL, 2), DEISSN_E_INVALID_ARG, "NULL parts");
    CHECK_STATUS(deissn_reference_merge(&r, ab, 0), DEISSN_E_INVALID_ARG, "no parts");

    /* tuning wants every trajectory, of the same run */
    deissn_normtable *t = (deissn_normtable *)1;
    CHECK_STATUS(deissn_tune_reference(&t, m, &f->noise, NULL, b, &tp), DEISSN_E_INVALID_ARG,
                 "an incomplete reference");
    CHECK(t == NULL && strstr(deissn_last_error(), "10..39"), "message \"%s\"",
          deissn_last_error());
    deissn_reference *whole = NULL;
    const deissn_reference *parts[2] = {a, NULL};
    CHECK_STATUS(deissn_reference_solve(&whole, m, &f->noise, shape, 1, &tp, 16, 0), DEISSN_OK,
                 "the rest");
    parts[1] = whole;
    deissn_reference *full = NULL;
    CHECK_STATUS(deissn_reference_merge(&full, parts, 2), DEISSN_OK, "a + the rest");
    deissn_tune_params q = tp;
    q.holdout_samples = 23;
    CHECK_STATUS(deissn_tune_reference(&t, m, &f->noise, NULL, full, &q), DEISSN_E_MISMATCH,
                 "other params");
    CHECK(strstr(deissn_last_error(), "params->holdout_samples"), "message \"%s\"",
          deissn_last_error());
    deissn_schedule_params cos = f->noise;
    cos.noise = DEISSN_NOISE_SQUAREDCOS_CAP_V2;
    CHECK_STATUS(deissn_tune_reference(&t, m, &cos, NULL, full, &tp), DEISSN_E_MISMATCH,
                 "another noise schedule");
    CHECK(strstr(deissn_last_error(), "noise"), "message \"%s\"", deissn_last_error());

    /* bytes: too small a buffer writes nothing; every truncation and a flip in every 97th
     * byte is refused (the CRC-32, or the checks before it) */
    size_t n;
    unsigned char *bytes = bytes_of(full, &n);
    unsigned char small[64];
    memset(small, 0x5a, sizeof small);
    size_t got = 0;
    CHECK_STATUS(deissn_reference_to_bytes(full, small, sizeof small, &got), DEISSN_E_SIZE,
                 "capacity");
    int untouched = got == n;
    for (size_t i = 0; i < sizeof small; i++) untouched &= small[i] == 0x5a;
    CHECK(untouched, "a short buffer was written, or the size not given");
    int refused = 1;
    for (size_t len = 0; len < n; len += len < 200 ? 1 : 509) {
        r = NULL;
        refused &= deissn_reference_from_bytes(&r, bytes, len) == DEISSN_E_FORMAT && !r;
    }
    CHECK(refused, "a truncated reference was read");
    refused = 1;
    for (size_t at = 0; at < n; at += 97) {
        bytes[at] ^= 0x10;
        r = NULL;
        refused &= deissn_reference_from_bytes(&r, bytes, n) == DEISSN_E_FORMAT && !r;
        bytes[at] ^= 0x10;
    }
    CHECK(refused, "a corrupt reference was read");
    bytes[8] = 2;
    CHECK_STATUS(deissn_reference_from_bytes(&r, bytes, n), DEISSN_E_FORMAT, "version 2");
    CHECK(strstr(deissn_last_error(), "format version 2"), "message \"%s\"", deissn_last_error());
    bytes[8] = 1;
    /* a searching count other than the run's (the first half of the fit trajectories, which
     * deissn_tune_reference() searches), with its paths and its CRC-32 to match: it read the
     * paths of trajectories the reference did not hold (fuzz_reference) */
    size_t path_bytes = ((size_t)full->run.n_nodes + 1) * D * sizeof(float);
    CHECK(bytes[32] == 8, "the run searches 8 trajectories");
    bytes[32] = 7;
    memmove(bytes + n - 4 - path_bytes, bytes + n - 4, 4);
    size_t n7 = n - path_bytes;
    uLong crc = crc32(0L, bytes, (uInt)(n7 - 4));
    for (int i = 0; i < 4; i++) bytes[n7 - 4 + i] = (unsigned char)(crc >> (8 * i));
    r = (deissn_reference *)1;
    CHECK_STATUS(deissn_reference_from_bytes(&r, bytes, n7), DEISSN_E_FORMAT,
                 "another searching count");
    CHECK(r == NULL && strstr(deissn_last_error(), "searching trajectories at byte 32"),
          "message \"%s\"", deissn_last_error());
    if (r) deissn_reference_free(r);
    free(bytes);

    /* parts whose Gram sums are each within the format's 2^62 but whose sum is not: the merge
     * is refused (it wrapped into a wrong sum), not written */
    deissn_reference *big[2] = {NULL, NULL};
    const deissn_reference *src[2] = {a, whole};
    size_t gram_at = 152 + (size_t)full->run.n_nodes * 8 + 2 * (size_t)full->run.grid_steps * 8;
    for (int k = 0; k < 2; k++) {
        size_t nk;
        unsigned char *bk = bytes_of(src[k], &nk);
        for (int i = 0; i < 8; i++) bk[gram_at + i] = i == 7 ? 0x40 : 0; /* hi = 2^62 */
        uLong ck = crc32(0L, bk, (uInt)(nk - 4));
        for (int i = 0; i < 4; i++) bk[nk - 4 + i] = (unsigned char)(ck >> (8 * i));
        CHECK_STATUS(deissn_reference_from_bytes(&big[k], bk, nk), DEISSN_OK, "a Gram sum of 2^62");
        free(bk);
    }
    if (big[0] && big[1]) {
        const deissn_reference *both[2] = {big[0], big[1]};
        r = (deissn_reference *)1;
        CHECK_STATUS(deissn_reference_merge(&r, both, 2), DEISSN_E_SIZE, "Gram sums past 2^62");
        CHECK(r == NULL && strstr(deissn_last_error(), "Gram sum 0 overflows"), "message \"%s\"",
              deissn_last_error());
    }
    deissn_reference_free(big[0]);
    deissn_reference_free(big[1]);
    deissn_reference_free(full);
    deissn_reference_free(whole);
    deissn_reference_free(a);
    deissn_reference_free(b);
    deissn_reference_free(c);
    deissn_model_free(m);
}

int main(void)
{
    static fixture f;
    setup(&f);
    test_tuned_beats_named(&f);
    test_no_table_no_refine(&f);
    test_bad_args(&f);
    test_confirmation(&f);
    test_deissn_tune(&f);
    test_tune_progress(&f);
    test_reference_parts(&f);
    test_reference_errors(&f);
    teardown(&f);
    TEST_SUMMARY();
}
