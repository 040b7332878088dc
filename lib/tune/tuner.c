/* tuner.c - deissn_tune(): the reference solves on the model (through the one sampling loop,
 * on the model's device), calibration from the same evaluations, the plan search
 * (tune.c), and the plans attached to a table. */
#include "backends/model.h"
#include "maths/schedule.h"
#include "sampling/sampler.h"
#include "tables/normtable.h"
#include "tune/tune.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const size_t params_size[DEISSN_TUNE_PARAMS_VERSION + 1] = {0, sizeof(deissn_tune_params)};

int32_t deissn_tune_params_init(deissn_tune_params *params, uint32_t version)
{
    static const deissn_tune_params defaults = DEISSN_TUNE_PARAMS_INIT;
    return dsn_init_versioned(params, &defaults, params_size, version,
                              DEISSN_TUNE_PARAMS_VERSION, "deissn_tune_params_init");
}

#define FN "deissn_tune"

/* Where the reference solves record: grid step s goes to node m, or -1 (tau = 1 and every
 * other time, so that the last, tau_last, is one of them). */
static long node_of(uint32_t s, uint32_t S)
{
    uint32_t first = S - 1 - 2 * ((S - 2) / 2);
    if (s == 0) return 0;
    if (s < first || (s - first) % 2) return -1;
    return 1 + (long)((s - first) / 2);
}

typedef struct {
    float *x, *eps;    /* the reference arrays (tune.h's layout) */
    size_t K, D, k0;   /* trajectories, sample size, this batch's first trajectory */
    uint32_t S;
    size_t M;
    uint64_t done, total;
    const deissn_tune_params *par;
} record_ctx;

static int record(void *user, uint32_t step, const float *x, const float *eps, size_t n)
{
    record_ctx *r = user;
    long m = node_of(step, r->S);
    if (m >= 0) {
        memcpy(r->x + ((size_t)m * r->K + r->k0) * r->D, x, n * sizeof(float));
        memcpy(r->eps + ((size_t)m * r->K + r->k0) * r->D, eps, n * sizeof(float));
    }
    r->done++;
    if (r->par->progress && r->par->progress(r->par->progress_user, (uint32_t)r->done,
                                              (uint32_t)r->total))
        return 1;
    return 0;
}

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
    record_ctx *progress; /* the reference solves' count, continued per NFE */
} eval_ctx;

static int nfe_done(void *user, uint32_t nfe)
{
    (void)nfe;
    record_ctx *r = ((eval_ctx *)user)->progress;
    r->done++;
    return r->par->progress && r->par->progress(r->par->progress_user, (uint32_t)r->done,
                                                (uint32_t)r->total);
}

static int eval(void *user, const float *x, size_t n_samples, size_t sample_numel, double tau,
                float *eps_out)
{
    eval_ctx *e = user;
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
        rc = e->host ? be->alloc(impl, n, &e->x) : dsn_error(DEISSN_E_NOMEM, "%s: no memory", FN);
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

int32_t deissn_tune(deissn_normtable **out, deissn_model *model,
                    const deissn_schedule_params *noise, const deissn_normtable *table,
                    const int64_t *sample_shape, uint32_t sample_ndim,
                    const deissn_tune_params *params)
{
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", FN);
    *out = NULL;
    if (!model || !sample_shape)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", FN, model ? "sample_shape" : "model");
    if (sample_ndim < 1 || sample_ndim >= DEISSN_MAX_NDIM)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: sample_ndim %u must be in 1..%d", FN,
                         sample_ndim, DEISSN_MAX_NDIM - 1);
    static const deissn_tune_params defaults = DEISSN_TUNE_PARAMS_INIT;
    deissn_tune_params p;
    int32_t prc = dsn_read_params(&p, &defaults, sizeof p, params, params_size,
                                  DEISSN_TUNE_PARAMS_VERSION, FN, "params");
    if (prc) return prc;
    if (p.grid_steps < 8 || p.grid_steps > 100000)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: grid_steps %u must be in 8..100000", FN,
                         p.grid_steps);
    if (p.fit_samples < 1 || p.batch < 1)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s must be at least 1", FN,
                         p.batch ? "fit_samples" : "batch");
    if (p.prediction < DEISSN_PREDICT_EPSILON || p.prediction > DEISSN_PREDICT_V)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: unknown prediction type %d", FN,
                         (int)p.prediction);
    size_t D = 1;
    for (uint32_t d = 0; d < sample_ndim; d++) {
        if (sample_shape[d] <= 0 || !dsn_mul_size(D, (size_t)sample_shape[d], &D))
            return dsn_error(DEISSN_E_INVALID_ARG, "%s: sample_shape[%u] = %lld", FN, d,
                             (long long)sample_shape[d]);
    }

    /* The grid: tau = tau_last + (1 - tau_last) u^1.5, u uniform from 1 to 0 (tools/tune). */
    deissn_schedule_params sp;
    int32_t rc = dsn_schedule_params_read(&sp, noise, FN);
    if (rc) return rc;
    uint32_t S = p.grid_steps;
    double tau_last = 1.0 / (double)sp.num_train_steps;
    double *grid = dsn_malloc(S * sizeof(double));
    if (!grid) return dsn_error(DEISSN_E_NOMEM, "%s: no memory", FN);
    for (uint32_t s = 0; s < S; s++)
        grid[s] = tau_last + (1.0 - tau_last) * pow(1.0 - (double)s / (S - 1), 1.5);
    sp.spacing = DEISSN_SPACING_CUSTOM;
    sp.steps = S;
    sp.custom_taus = grid;
    sp.tau_end = 0.0;
    deissn_schedule *sched = NULL;
    deissn_sampler *ref_sampler = NULL;
    deissn_calibrator *cal = NULL;
    deissn_normtable *made = NULL;
    deissn_sampler_params mp = DEISSN_SAMPLER_PARAMS_INIT; /* DEIS order 3, no table */
    mp.prediction = p.prediction;
    rc = deissn_schedule_create(&sched, &sp);
    if (!rc && table && table->fingerprint && table->fingerprint != sched->fingerprint)
        rc = dsn_error(DEISSN_E_MISMATCH, "%s: the table was made for another noise schedule "
                       "(fingerprint %08x, this one %08x)", FN, table->fingerprint,
                       sched->fingerprint);
    if (!rc) rc = deissn_sampler_create(&ref_sampler, sched, NULL, &mp);
    if (!rc && !table) rc = deissn_calibrator_create(&cal, sched);

    size_t K = (size_t)p.fit_samples + p.holdout_samples, M = 0;
    for (uint32_t s = 0; s < S; s++) M += node_of(s, S) >= 0;
    size_t xs, es;
    float *X = NULL, *E = NULL, *batch = NULL;
    if (!rc && (!dsn_mul_size((M + 1) * K, D * sizeof(float), &xs) ||
                !dsn_mul_size(M * K, D * sizeof(float), &es)))
        rc = dsn_error(DEISSN_E_SIZE, "%s: the reference of %zu trajectories overflows", FN, K);
    if (!rc) {
        X = dsn_malloc(xs);
        E = dsn_malloc(es);
        batch = dsn_malloc((size_t)p.batch * D * sizeof(float));
        if (!X || !E || !batch)
            rc = dsn_error(DEISSN_E_NOMEM, "%s: no memory for the reference (%zu trajectories x "
                           "%zu times x %zu values)", FN, K, M, D);
    }
    double *node_taus = dsn_malloc(M * sizeof(double));
    if (!rc && !node_taus) rc = dsn_error(DEISSN_E_NOMEM, "%s: no memory", FN);
    for (uint32_t s = 0; !rc && s < S; s++)
        if (node_of(s, S) >= 0) node_taus[node_of(s, S)] = grid[s];

    /* 1. The reference solves, in batches; calibration from the same evaluations. */
    uint32_t nfe_count = p.nfe_max >= p.nfe_min ? p.nfe_max - p.nfe_min + 1 : 0;
    record_ctx rec = {X, E, K, D, 0, S, M, 0, 0, &p};
    rec.total = ((K + p.batch - 1) / p.batch) * (uint64_t)S + nfe_count;
    int64_t shape[DEISSN_MAX_NDIM];
    for (uint32_t d = 0; d < sample_ndim; d++) shape[d + 1] = sample_shape[d];
    for (size_t k0 = 0; !rc && k0 < K; k0 += p.batch) {
        size_t b = K - k0 < p.batch ? K - k0 : p.batch;
        shape[0] = (int64_t)b;
        rc = deissn_fill_noise(p.seed, k0, b, D, batch);
        deissn_sample_options so = DEISSN_SAMPLE_OPTIONS_INIT;
        so.calibrator = cal;
        rec.k0 = k0;
        if (!rc) rc = dsn_sample_recorded(ref_sampler, model, batch, shape, sample_ndim + 1, &so,
                                          record, &rec);
        for (size_t i = 0; !rc && i < b; i++) /* x(0) */
            memcpy(X + (M * K + k0 + i) * D, batch + i * D, D * sizeof(float));
    }
    if (!rc && cal) rc = deissn_calibrator_finish(&made, cal, NULL);
    const deissn_normtable *use = table ? table : made;

    /* 2. The search; 3. the plans into the table. */
    dsn_tune_plan *found = NULL;
    eval_ctx ec = {model, sched, sample_shape, sample_ndim, p.prediction, NULL, NULL, 0, NULL, 0,
                   "", &rec};
    if (!rc) {
        found = dsn_calloc(nfe_count ? nfe_count : 1, sizeof *found);
        if (!found) rc = dsn_error(DEISSN_E_NOMEM, "%s: no memory", FN);
    }
    if (!rc) {
        dsn_tune_reference ref = {M, node_taus, K, D, X, E, p.fit_samples};
        /* Half the fit trajectories choose, the other half confirm against BEST (tune.h). */
        dsn_tune_params tp = {p.nfe_min, p.nfe_max, 8, 3, 8, eval, &ec, nfe_done,
                              p.fit_samples / 2};
        rc = dsn_tune_search(found, nfe_count, &sp, use, &ref, &tp);
        if (rc == DEISSN_E_CALLBACK && ec.status) /* the model's own error, not the search's */
            rc = dsn_error(ec.status, "%s", ec.message);
    }
    deissn_plan *plans = NULL;
    if (!rc) {
        plans = dsn_calloc(nfe_count, sizeof *plans);
        if (!plans) rc = dsn_error(DEISSN_E_NOMEM, "%s: no memory", FN);
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
        rc = dsn_table_derive(out, use, &tp, FN);
    }
    if (ec.x) model->backend->release(model->impl, ec.x);
    if (ec.out) model->backend->release(model->impl, ec.out);
    dsn_free(ec.host);
    dsn_free(plans);
    dsn_free(found);
    dsn_free(node_taus);
    dsn_free(X);
    dsn_free(E);
    dsn_free(batch);
    dsn_free(grid);
    deissn_normtable_free(made);
    deissn_calibrator_free(cal);
    deissn_sampler_free(ref_sampler);
    deissn_schedule_free(sched);
    return rc;
}
