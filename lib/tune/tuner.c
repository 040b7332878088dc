/* tuner.c - the plan search on a model's reference (deissn_tune_reference: tune.c's search,
 * run on the model through its backend, the plans attached to a table) and deissn_tune(),
 * the reference solves (reference.c) followed by it. */
#include "backends/model.h"
#include "maths/schedule.h"
#include "sampling/sampler.h"
#include "tables/normtable.h"
#include "tune/reference.h"
#include "tune/tune.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The model as the search sees it: eps for host states, one batch per call. */
typedef struct {
    deissn_model *model;
    const deissn_schedule *schedule;
    const int64_t *shape; /* sample_ndim dims */
    uint32_t ndim;
    int32_t prediction;
    void *x, *out;        /* backend buffers, capacity floats */
    size_t capacity;
    float *host;
    int32_t status;       /* the first failure, and its message */
    char message[512];
    const deissn_tune_params *par;
    /* Progress, in the header's unit (model evaluations of a batch): the work before the
     * search (deissn_tune's solve), then the search's own evaluations. Its total is not known
     * ahead, so it is estimated from the cost per sampling step of the NFEs searched so far
     * (before the first, PRIOR_PER_STEP evaluations of every trajectory per step). */
    uint32_t base;             /* units done before the search */
    uint32_t batch;
    uint64_t searched;         /* samples the search has evaluated */
    uint64_t searched_at_nfe;  /* ... when the last NFE finished */
    uint32_t steps_done, steps_all; /* sampling steps (sum of NFEs) finished, in all */
    double prior;              /* units per step before any NFE finished */
    uint32_t nfe;              /* the NFE being searched, for the message */
    const char *fn;            /* the public function, for messages */
} eval_ctx;

#define PRIOR_PER_STEP 5.0 /* measured on the mixture of tools/tune: 4.3-5.4 evaluations per
                           * trajectory and step (NFE 4, 10, 20 alone), 4.8 over NFE 4-20 */

/* The search's progress units per sampling step before any NFE has been measured. */
static double prior_per_step(uint64_t trajectories, uint32_t batch)
{
    return PRIOR_PER_STEP * (double)trajectories / batch;
}

/* The sampling steps of every NFE of the range: the sum of the NFEs. */
static uint32_t nfe_steps(uint32_t nfe_min, uint32_t nfe_max)
{
    uint32_t steps = 0;
    for (uint32_t n = nfe_min; n <= nfe_max; n++) steps += n;
    return steps;
}

/* Report the progress; non-zero: the caller asked to stop. */
static int report(eval_ctx *e)
{
    if (!e->par->progress) return 0;
    double units = (double)e->searched / e->batch;
    double at_nfe = (double)e->searched_at_nfe / e->batch;
    double rate = e->steps_done ? at_nfe / e->steps_done : e->prior;
    double total = at_nfe + rate * (e->steps_all - e->steps_done);
    uint32_t done = e->base + (uint32_t)units;
    uint32_t all = e->steps_done == e->steps_all ? done
                   : e->base + (uint32_t)ceil(total > units + 1 ? total : units + 1);
    return e->par->progress(e->par->progress_user, done, all);
}

static int nfe_done(void *user, uint32_t nfe)
{
    eval_ctx *e = user;
    e->steps_done += nfe;
    e->searched_at_nfe = e->searched;
    e->nfe = nfe + 1;
    return report(e);
}

static int eval(void *user, const float *x, size_t n_samples, size_t sample_numel, double tau,
                float *eps_out)
{
    eval_ctx *e = user;
    e->searched += n_samples;
    if (report(e)) {
        e->status = dsn_error(DEISSN_E_CALLBACK, "%s: stopped by the progress callback while "
                              "searching NFE %u", e->fn, e->nfe);
        snprintf(e->message, sizeof e->message, "%s", deissn_last_error());
        return 1;
    }
    const dsn_backend *be = e->model->backend;
    void *impl = e->model->impl;
    size_t n = n_samples * sample_numel;
    int64_t shape[DEISSN_MAX_NDIM + 1];
    shape[0] = (int64_t)n_samples;
    for (uint32_t d = 0; d < e->ndim; d++) shape[d + 1] = e->shape[d];
    int32_t rc = DEISSN_OK;
    if (n > e->capacity) {
        if (e->x) be->release(impl, e->x);
        if (e->out) be->release(impl, e->out);
        dsn_free(e->host);
        e->x = e->out = NULL;
        e->capacity = 0;
        e->host = dsn_malloc(n * sizeof(float));
        rc = e->host ? be->alloc(impl, n, &e->x)
                     : dsn_error(DEISSN_E_NOMEM, "%s: no memory", e->fn);
        if (!rc) rc = be->alloc(impl, n, &e->out);
        if (!rc) e->capacity = n;
    }
    if (!rc) rc = be->upload(impl, e->x, x, n);
    dsn_forward f = {e->x, e->out, shape, e->ndim + 1, n,
                     dsn_model_time(e->model->params.time_convention, e->schedule, tau), 0, 0,
                     NULL};
    if (!rc) rc = be->forward(impl, &f);
    if (!rc) rc = be->download(impl, e->host, e->out, n);
    if (rc) {
        e->status = rc;
        snprintf(e->message, sizeof e->message, "%s", deissn_last_error());
        return 1;
    }
    /* the prediction as eps (the conversion deissn_step would make) */
    double alpha, sigma, a, b;
    dsn_alpha_sigma(e->schedule, tau, &alpha, &sigma);
    dsn_eps_coeffs(e->prediction, alpha, sigma, &a, &b);
    for (size_t i = 0; i < n; i++) eps_out[i] = (float)(a * x[i] + b * e->host[i]);
    return 0;
}

#define FN "deissn_tune_reference"

/* deissn_tune_reference() with the progress counted from `done` of `total`. */
static int32_t tune_reference(deissn_normtable **out, deissn_model *model,
                              const deissn_schedule_params *noise, const deissn_normtable *table,
                              const deissn_reference *ref, const deissn_tune_params *params,
                              uint32_t done, const char *fn)
{
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!model || !ref)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn, model ? "ref" : "model");
    deissn_tune_params p;
    dsn_tune_run run;
    deissn_schedule *sched = NULL;
    int32_t rc = dsn_tune_prepare(&p, &run, &sched, noise, ref->run.shape, ref->run.ndim,
                                  params, fn);
    if (rc) return rc;
    const dsn_tune_run *have = &ref->run;
    uint64_t K = (uint64_t)have->fit + have->holdout;
    const char *field = run.fingerprint != have->fingerprint ? "noise (its schedule)"
                        : run.grid_steps != have->grid_steps ? "params->grid_steps"
                        : run.fit != have->fit               ? "params->fit_samples"
                        : run.choose != have->choose         ? "the searching trajectories"
                        : run.holdout != have->holdout       ? "params->holdout_samples"
                        : run.seed != have->seed             ? "params->seed"
                        : run.prediction != have->prediction ? "params->prediction"
                                                             : NULL;
    if (field)
        rc = dsn_error(DEISSN_E_MISMATCH, "%s: %s is not the reference's", fn, field);
    else if (ref->first != 0 || ref->count != K)
        rc = dsn_error(DEISSN_E_INVALID_ARG, "%s: the reference holds trajectories %llu..%llu "
                       "of the run's 0..%llu: merge every part first", fn,
                       (unsigned long long)ref->first,
                       (unsigned long long)(ref->first + ref->count - 1),
                       (unsigned long long)(K - 1));
    else if (table && table->fingerprint && table->fingerprint != run.fingerprint)
        rc = dsn_error(DEISSN_E_MISMATCH, "%s: the table was made for another noise schedule "
                       "(fingerprint %08x, this one %08x)", fn, table->fingerprint,
                       run.fingerprint);
    for (uint32_t g = 0; !rc && g < run.grid_steps; g++) { /* noise gives the reference's grid */
        long m = dsn_ref_node(g, run.grid_steps);
        if (m >= 0 && ref->node_taus[m] != sched->taus[g])
            rc = dsn_error(DEISSN_E_MISMATCH, "%s: noise gives grid time %u = %.17g, the "
                           "reference has %.17g", fn, g, sched->taus[g], ref->node_taus[m]);
    }

    /* the table: the caller's, or the one the reference's calibration sums make */
    deissn_calibrator *cal = NULL;
    deissn_normtable *made = NULL;
    if (!rc && !table) {
        rc = deissn_calibrator_create(&cal, sched);
        if (!rc) rc = deissn_calibrator_add_sums(cal, ref->cal_sums, ref->cal_counts,
                                                 run.grid_steps, ref->cal_samples);
        if (!rc) rc = deissn_calibrator_finish(&made, cal, NULL);
    }
    const deissn_normtable *use = table ? table : made;

    /* the search, its model evaluations through the backend */
    size_t nb = 2 * (size_t)run.n_nodes + 1, D = (size_t)run.numel, Kz = (size_t)K;
    uint32_t nfe_count = p.nfe_max >= p.nfe_min ? p.nfe_max - p.nfe_min + 1 : 0;
    double *G = NULL;
    dsn_tune_plan *found = NULL;
    eval_ctx ec = {model, sched, run.shape, run.ndim, run.prediction, NULL, NULL, 0, NULL, 0,
                   "", &p, done, run.batch, 0, 0, 0, 0,
                   prior_per_step(K, run.batch), p.nfe_min, fn};
    ec.steps_all = nfe_steps(p.nfe_min, p.nfe_max);
    if (!rc) {
        G = dsn_malloc(nb * nb * sizeof(double));
        found = dsn_calloc(nfe_count ? nfe_count : 1, sizeof *found);
        if (!G || !found)
            rc = dsn_error(DEISSN_E_NOMEM, "%s: no memory for the Gram matrix (%zu x %zu)", fn,
                           nb, nb);
    }
    if (!rc) {
        dsn_gram_unpack(G, ref->gram, nb);
        dsn_tune_reference tr = {run.n_nodes, ref->node_taus, Kz, D, ref->ends,
                                 ref->ends + Kz * D, ref->ends + 2 * Kz * D, ref->path, G,
                                 run.choose, run.fit};
        dsn_tune_params tp = {p.nfe_min, p.nfe_max, 8, 3, 8, eval, &ec, nfe_done};
        rc = dsn_tune_search(found, nfe_count, noise, use, &tr, &tp);
        if (rc == DEISSN_E_CALLBACK && ec.status) /* the model's own error, not the search's */
            rc = dsn_error(ec.status, "%s", ec.message);
    }
    deissn_plan *plans = NULL;
    if (!rc) {
        plans = dsn_calloc(nfe_count, sizeof *plans);
        if (!plans) rc = dsn_error(DEISSN_E_NOMEM, "%s: no memory", fn);
    }
    for (uint32_t i = 0; !rc && i < nfe_count; i++) {
        const dsn_tune_plan *f = &found[i];
        deissn_plan *pl = &plans[i];
        pl->version = DEISSN_PLAN_VERSION;
        pl->nfe = f->nfe;
        pl->method = f->method;
        pl->order = f->order;
        pl->corrector = f->corrector;
        pl->lower_order_final = f->lower_order_final;
        pl->uses_table = f->use_table;
        pl->tau_end = f->tau_end;
        memcpy(pl->taus, f->taus, f->nfe * sizeof(double));
        if (f->method == DEISSN_METHOD_LEARNED) memcpy(pl->weights, f->weights, sizeof pl->weights);
        pl->samples = (uint32_t)f->holdout_samples;
        pl->error = isfinite(f->holdout_rmse) ? f->holdout_rmse : f->fit_rmse;
        pl->error_low = isfinite(f->holdout_low) ? f->holdout_low : pl->error;
        pl->error_high = isfinite(f->holdout_high) ? f->holdout_high : pl->error;
        pl->best_error = isfinite(f->best_holdout_rmse) ? f->best_holdout_rmse : 0.0;
    }
    if (!rc) {
        deissn_normtable_params tp = DEISSN_NORMTABLE_PARAMS_INIT;
        tp.plans = plans;
        tp.n_plans = nfe_count;
        rc = dsn_table_derive(out, use, &tp, fn);
    }
    if (ec.x) model->backend->release(model->impl, ec.x);
    if (ec.out) model->backend->release(model->impl, ec.out);
    dsn_free(ec.host);
    dsn_free(plans);
    dsn_free(found);
    dsn_free(G);
    deissn_normtable_free(made);
    deissn_calibrator_free(cal);
    deissn_schedule_free(sched);
    return rc;
}

int32_t deissn_tune_reference(deissn_normtable **out, deissn_model *model,
                              const deissn_schedule_params *noise, const deissn_normtable *table,
                              const deissn_reference *ref, const deissn_tune_params *params)
{
    return tune_reference(out, model, noise, table, ref, params, 0, FN);
}

/* deissn_tune: one progress over the solve and the search, both in model evaluations of a
 * batch; during the solve the search's part is its estimate ahead (prior_per_step). */
typedef struct {
    const deissn_tune_params *caller;
    uint32_t total;
} tune_progress;

static int solve_progress(void *user, uint32_t done, uint32_t total)
{
    (void)total;
    const tune_progress *t = user;
    return t->caller->progress(t->caller->progress_user, done, t->total);
}

int32_t deissn_tune(deissn_normtable **out, deissn_model *model,
                    const deissn_schedule_params *noise, const deissn_normtable *table,
                    const int64_t *sample_shape, uint32_t sample_ndim,
                    const deissn_tune_params *params)
{
    const char *fn = "deissn_tune";
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!model) return dsn_error(DEISSN_E_INVALID_ARG, "%s: model is NULL", fn);
    deissn_tune_params p;
    dsn_tune_run run;
    deissn_schedule *sched = NULL;
    int32_t rc = dsn_tune_prepare(&p, &run, &sched, noise, sample_shape, sample_ndim, params, fn);
    deissn_schedule_free(sched);
    if (rc) return rc;
    /* the search's own check, before the long solve */
    if (p.nfe_min > p.nfe_max || p.nfe_min < 2 || p.nfe_max > DEISSN_PLAN_MAX_NFE ||
        p.nfe_max + 2 > run.n_nodes)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: NFE range %u..%u must satisfy 2 <= min <= "
                         "max <= %d and max <= %u (grid_steps %u)", fn, p.nfe_min, p.nfe_max,
                         DEISSN_PLAN_MAX_NFE, run.n_nodes - 2, run.grid_steps);
    uint64_t K = (uint64_t)run.fit + run.holdout;
    uint32_t solve_work = (uint32_t)(((K + run.batch - 1) / run.batch) * run.grid_steps);
    double search = prior_per_step(K, run.batch) * nfe_steps(p.nfe_min, p.nfe_max);
    tune_progress tprog = {&p, solve_work + (uint32_t)ceil(search)};
    deissn_tune_params sp = p;
    if (p.progress) {
        sp.progress = solve_progress;
        sp.progress_user = &tprog;
    }
    deissn_reference *ref = NULL;
    rc = deissn_reference_solve(&ref, model, noise, sample_shape, sample_ndim, &sp, 0, 0);
    if (!rc) rc = tune_reference(out, model, noise, table, ref, &p, solve_work, fn);
    deissn_reference_free(ref);
    return rc;
}
