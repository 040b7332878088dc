/* loop.c - deissn_sample(): the one sampling loop, for every backend.
 *
 * The state, a copy of it for the model, the model's output and the history live where the
 * model runs (backend buffers); the caller's x is read once at the start and written once at
 * the end, only on success, so a failure leaves x, the calibrator and the stats as they were.
 * Per step: copy the state for the model (a forward that writes into its input cannot touch
 * the sampling), evaluate, check the output is finite, update (the plan's coefficients,
 * double arithmetic), check the new state is finite (a huge finite output can overflow it),
 * add the calibration sum, report progress. */
#include "backends/model.h"
#include "maths/schedule.h"
#include "sampling/sampler.h"
#include "tables/calibrate.h"
#include "tables/normtable.h"

#include <math.h>
#include <string.h>

static const size_t options_size[DEISSN_SAMPLE_OPTIONS_VERSION + 1] = {
    0, sizeof(deissn_sample_options)};
static const size_t stats_size[DEISSN_SAMPLE_STATS_VERSION + 1] = {0, sizeof(deissn_sample_stats)};

int32_t deissn_sample_options_init(deissn_sample_options *options, uint32_t version)
{
    static const deissn_sample_options defaults = DEISSN_SAMPLE_OPTIONS_INIT;
    return dsn_init_versioned(options, &defaults, options_size, version,
                              DEISSN_SAMPLE_OPTIONS_VERSION, "deissn_sample_options_init");
}

/* The buffers of one run on the model's device. */
typedef struct {
    const dsn_backend *be;
    void *impl;
    void *x, *x_in, *out, *ecopy;
    void *hist[DSN_MAX_DEPTH];
} run_buffers;

static void release_all(run_buffers *r)
{
    void *all[] = {r->x, r->x_in, r->out, r->ecopy, r->hist[0], r->hist[1], r->hist[2],
                   r->hist[3]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) r->be->release(r->impl, all[i]);
}

static int32_t check_finite(run_buffers *r, const void *buf, size_t n, uint32_t step,
                            const dsn_step *st, int state, const char *fn)
{
    size_t at = n;
    float value = 0.0f;
    int32_t rc = r->be->first_nonfinite(r->impl, buf, n, &at, &value);
    if (rc || at >= n) return rc;
    if (state)
        return dsn_error(DEISSN_E_NONFINITE, "%s: the state became %s at element %zu in step %u "
                         "(tau %.6g to %.6g): the model's output is too large for float32", fn,
                         isnan(value) ? "NaN" : "Inf", at, step, st->tau_from, st->tau_to);
    return dsn_error(DEISSN_E_NONFINITE, "%s: the model output has %s at element %zu (step %u, "
                     "tau %.6g)", fn, isnan(value) ? "NaN" : "Inf", at, step, st->tau_from);
}

/* What a recorder gets: host copies of the state the model was evaluated at and of the eps
 * there (the sampler's history conversion, whatever the prediction), per step. */
typedef struct {
    dsn_record_fn fn;
    void *user;
    float *x, *eps; /* host buffers of numel floats */
} recorder;

static int32_t run(deissn_model *m, deissn_sampler *sp, run_buffers *r, float *x,
                   const int64_t *shape, uint32_t ndim, size_t numel,
                   const deissn_sample_options *opt, int64_t *sums, recorder *rec,
                   double *model_s)
{
    const char *fn = "deissn_sample";
    const dsn_backend *be = r->be;
    uint32_t n = 0, slots = 0;
    const dsn_step *plan = dsn_sampler_plan(sp, &n);
    const unsigned char *keep = NULL;
    dsn_sampler_history(sp, &slots, &keep);
    const deissn_schedule *schedule = dsn_sampler_schedule(sp);
    int32_t prediction = dsn_sampler_prediction(sp);

    int32_t rc = be->alloc(r->impl, numel, &r->x);
    if (!rc) rc = be->alloc(r->impl, numel, &r->x_in);
    if (!rc) rc = be->alloc(r->impl, numel, &r->out);
    for (uint32_t j = 0; !rc && j < slots; j++) rc = be->alloc(r->impl, numel, &r->hist[j]);
    if (!rc && (sums || rec)) rc = be->alloc(r->impl, numel, &r->ecopy);
    if (!rc) rc = be->upload(r->impl, r->x, x, numel);

    for (uint32_t i = 0; !rc && i < n; i++) {
        const dsn_step *st = &plan[i];
        rc = be->copy(r->impl, r->x_in, r->x, numel);
        if (rc) break;
        dsn_forward f = {r->x_in, r->out, shape, ndim, numel,
                         dsn_model_time(m->params.time_convention, schedule, st->tau_from), i, 0,
                         NULL};
        double t0 = dsn_now();
        rc = be->forward(r->impl, &f);
        *model_s += dsn_now() - t0;
        if (!rc) rc = check_finite(r, r->out, numel, i, st, 0, fn);
        if (rc) break;

        dsn_update u;
        dsn_update_coeffs(st, prediction, &u);
        u.x = r->x;
        u.out = r->out;
        for (uint32_t j = 1; j <= st->depth; j++) u.hist[j - 1] = r->hist[(i - j) % slots];
        u.save = keep[i] ? r->hist[i % slots] : NULL;
        int direct = u.a == 0.0 && u.b == 1.0; /* eps is the output itself */
        u.ecopy = (sums || rec) && !direct ? r->ecopy : NULL;
        if (rec) rc = be->download(r->impl, rec->x, r->x, numel);
        if (!rc) rc = be->update(r->impl, &u, numel);
        if (!rc && rec) rc = be->download(r->impl, rec->eps, direct ? r->out : r->ecopy, numel);
        if (!rc && rec && rec->fn(rec->user, i, rec->x, rec->eps, numel))
            rc = dsn_error(DEISSN_E_CALLBACK, "%s: the recorder stopped at step %u", fn, i);
        if (!rc) rc = check_finite(r, r->x, numel, i, st, 1, fn);

        if (!rc && sums) {
            /* The host's floor(|eps| * 2^24) summed in int64 (calibrate.c), on the device:
             * a device sum cannot report overflow, so the largest value bounds it first. */
            const void *eps = direct ? r->out : r->ecopy;
            double top = 0.0;
            rc = be->max_abs(r->impl, eps, numel, &top);
            if (!rc) rc = dsn_fixed_sum_fits(top, numel, i, fn);
            if (!rc) rc = be->fixed_sum(r->impl, eps, numel, DSN_FIXED_ONE, &sums[i]);
        }
        int stop = !rc && opt->progress ? opt->progress(opt->progress_user, i, n) : 0;
        if (stop)
            rc = dsn_error(DEISSN_E_CALLBACK, "%s: the progress callback returned %d after step "
                           "%u: sampling stopped", fn, stop, i);
    }
    return rc;
}

int32_t deissn_sample(deissn_sampler *sp, deissn_model *m, float *x, const int64_t *shape,
                      uint32_t ndim, const deissn_sample_options *options)
{
    return dsn_sample_recorded(sp, m, x, shape, ndim, options, NULL, NULL);
}

int32_t dsn_sample_recorded(deissn_sampler *sp, deissn_model *m, float *x, const int64_t *shape,
                            uint32_t ndim, const deissn_sample_options *options,
                            dsn_record_fn record, void *record_user)
{
    const char *fn = "deissn_sample";
    if (!sp || !m || !x || !shape)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn,
                         !sp ? "sampler" : !m ? "model" : !x ? "x" : "shape");
    static const deissn_sample_options defaults = DEISSN_SAMPLE_OPTIONS_INIT;
    deissn_sample_options opt;
    int32_t vrc = dsn_read_params(&opt, &defaults, sizeof opt, options, options_size,
                                  DEISSN_SAMPLE_OPTIONS_VERSION, fn, "options");
    if (!vrc && opt.stats)
        vrc = dsn_check_version(opt.stats->version, DEISSN_SAMPLE_STATS_VERSION, fn,
                                "options->stats");
    if (vrc) return vrc;
    if (ndim < 1 || ndim > DEISSN_MAX_NDIM)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: ndim %u must be in 1..%d", fn, ndim,
                         DEISSN_MAX_NDIM);
    size_t numel = 1;
    for (uint32_t d = 0; d < ndim; d++) {
        if (shape[d] <= 0)
            return dsn_error(DEISSN_E_INVALID_ARG, "%s: shape[%u] = %lld must be positive", fn, d,
                             (long long)shape[d]);
        if ((uint64_t)shape[d] > SIZE_MAX || !dsn_mul_size(numel, (size_t)shape[d], &numel))
            return dsn_error(DEISSN_E_SIZE, "%s: the element count of the shape overflows", fn);
    }
    size_t bytes;
    if (!dsn_mul_size(numel, sizeof(float), &bytes) || bytes > PTRDIFF_MAX)
        return dsn_error(DEISSN_E_SIZE, "%s: %zu floats overflow a byte count", fn, numel);
    deissn_calibrator *cal = opt.calibrator;
    if (cal) {
        int32_t rc = dsn_calibrator_check_sampler(cal, sp, fn);
        if (rc) return rc;
    }

    /* Calibration: each step's sum, added to the calibrator only once everything worked. */
    int64_t *sums = cal ? dsn_calloc(deissn_sampler_steps(sp), sizeof *sums) : NULL;
    if (cal && !sums) return dsn_error(DEISSN_E_NOMEM, "%s: out of memory", fn);
    run_buffers r;
    memset(&r, 0, sizeof r);
    r.be = m->backend;
    r.impl = m->impl;
    double t_model = 0.0, t_start = dsn_now();
    deissn_sampler_reset(sp);
    recorder rec = {record, record_user, NULL, NULL};
    int32_t rc = DEISSN_OK;
    if (record) {
        rec.x = dsn_malloc(bytes);
        rec.eps = dsn_malloc(bytes);
        if (!rec.x || !rec.eps) rc = dsn_error(DEISSN_E_NOMEM, "%s: out of memory", fn);
    }
    if (!rc) rc = run(m, sp, &r, x, shape, ndim, numel, &opt, sums, record ? &rec : NULL,
                      &t_model);
    dsn_free(rec.x);
    dsn_free(rec.eps);
    /* The one copy back. With a calibrator, through a host buffer of the loop's, so that x
     * and the calibrator change together or not at all. */
    float *result = NULL;
    if (!rc && cal) {
        result = dsn_malloc(bytes);
        if (!result) rc = dsn_error(DEISSN_E_NOMEM, "%s: out of memory for the result", fn);
    }
    if (!rc) rc = r.be->download(r.impl, result ? result : x, r.x, numel);
    release_all(&r);
    if (!rc && cal) rc = dsn_calibrator_add_run(cal, sums, numel, (uint64_t)shape[0], fn);
    if (!rc && result) memcpy(x, result, bytes);
    dsn_free(result);
    dsn_free(sums);
    if (rc) {
        deissn_sampler_reset(sp);
        return rc;
    }
    dsn_sampler_mark_done(sp);
    if (opt.stats) {
        deissn_sample_stats st;
        memset(&st, 0, sizeof st); /* padding too */
        st.evaluations = deissn_sampler_steps(sp);
        st.model_seconds = t_model;
        st.sampler_seconds = dsn_now() - t_start - t_model;
        dsn_write_versioned(opt.stats, &st, stats_size, opt.stats->version);
    }
    return DEISSN_OK;
}
