/* model.c - model handles (C callbacks; TorchScript through the shim) and deissn_sample(). */
#include "maths/schedule.h"
#include "sampling/sampler.h"
#include "tables/calibrate.h"
#include "backends/model.h"

#include <math.h>
#include <string.h>

int32_t deissn_model_params_init(deissn_model_params *params)
{
    if (!params) return dsn_error(DEISSN_E_INVALID_ARG, "deissn_model_params_init: params is NULL");
    deissn_model_params d = DEISSN_MODEL_PARAMS_INIT;
    *params = d;
    return DEISSN_OK;
}

double dsn_model_time(int32_t convention, const deissn_schedule *s, double tau)
{
    switch (convention) {
    case DEISSN_TIME_TAU: return tau;
    case DEISSN_TIME_TAU_1000: return tau * 1000.0;
    case DEISSN_TIME_SIGMA: {
        double alpha, sigma;
        dsn_alpha_sigma(s, tau, &alpha, &sigma);
        return sigma / alpha;
    }
    default: return tau * s->T - 1;
    }
}

int32_t dsn_model_new(deissn_model **out, const dsn_model_ops *ops, void *impl,
                      const deissn_model_params *params, const char *fn)
{
    *out = NULL;
    deissn_model_params p = DEISSN_MODEL_PARAMS_INIT;
    if (params) {
        if (params->version != DEISSN_MODEL_PARAMS_VERSION)
            return dsn_error(DEISSN_E_INVALID_ARG, "%s: params->version %u is not %u (initialise "
                             "params with deissn_model_params_init)", fn, params->version,
                             DEISSN_MODEL_PARAMS_VERSION);
        p = *params;
    }
    if (p.prediction < DEISSN_PREDICT_EPSILON || p.prediction > DEISSN_PREDICT_V)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: unknown prediction type %d", fn,
                         (int)p.prediction);
    if (p.time_convention < DEISSN_TIME_MODEL_INDEX || p.time_convention > DEISSN_TIME_SIGMA)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: unknown time convention %d", fn,
                         (int)p.time_convention);
    if (p.dtype < DEISSN_DTYPE_FLOAT32 || p.dtype > DEISSN_DTYPE_BFLOAT16)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: unknown dtype %d", fn, (int)p.dtype);
    if (p.num_threads < 0)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: num_threads %d is negative", fn,
                         (int)p.num_threads);
    const char *dev = p.device ? p.device : "cpu";
    size_t len = strlen(dev);
    deissn_model *m = dsn_calloc(1, sizeof *m);
    if (!m) return dsn_error(DEISSN_E_NOMEM, "%s: out of memory", fn);
    if (len >= sizeof m->device_buf) {
        dsn_free(m);
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: device name '%.40s' is too long", fn, dev);
    }
    memcpy(m->device_buf, dev, len + 1);
    p.device = m->device_buf;
    m->refs = 1;
    m->ops = ops;
    m->impl = impl;
    m->params = p;
    *out = m;
    return DEISSN_OK;
}

void deissn_model_free(deissn_model *m)
{
    if (!m || !dsn_unref(&m->refs)) return;
    if (m->ops->destroy) m->ops->destroy(m->impl);
    dsn_free(m);
}

/* ---- C callback models: the host loop ------------------------------------------------- */

typedef struct {
    deissn_model_fn fn;
    void *user;
} callback_impl;

/* Index of the first NaN or Inf of v[0..n), or n. */
static size_t first_nonfinite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return i;
    return n;
}

static int32_t callback_sample(deissn_model *m, deissn_sampler *sp, float *x, const int64_t *shape,
                               uint32_t ndim, size_t numel, deissn_sample_options *opt)
{
    const char *fn = "deissn_sample";
    const callback_impl *cb = m->impl;
    size_t bytes = numel * sizeof(float); /* checked by deissn_sample */
    deissn_calibrator *cal = opt ? opt->calibrator : NULL;
    float *out = dsn_malloc(bytes), *backup = dsn_malloc(bytes);
    /* Calibration: this batch's eps at each step, and the sums kept until the end. */
    float *eps = cal ? dsn_malloc(bytes) : NULL;
    int64_t *sums = cal ? dsn_calloc(deissn_sampler_steps(sp), sizeof *sums) : NULL;
    if (!out || !backup || (cal && (!eps || !sums))) {
        dsn_free(out);
        dsn_free(backup);
        dsn_free(eps);
        dsn_free(sums);
        return dsn_error(DEISSN_E_NOMEM, "%s: out of memory for a batch of %zu floats", fn, numel);
    }
    memcpy(backup, x, bytes); /* so that a failure leaves x as it was */
    const deissn_schedule *s = dsn_sampler_schedule(sp);
    double t_model = 0, t_total = dsn_now();
    deissn_step_info info;
    int32_t rc = deissn_sampler_reset(sp);
    if (rc == DEISSN_OK) rc = deissn_sampler_next(sp, &info);
    while (rc == DEISSN_OK) {
        double t0 = dsn_now();
        int urc = cb->fn(cb->user, x, shape, ndim, dsn_model_time(m->params.time_convention, s,
                                                                  info.tau), out);
        t_model += dsn_now() - t0;
        if (urc != 0) {
            rc = dsn_error(DEISSN_E_CALLBACK, "%s: the model callback returned %d at step %u "
                           "(tau %.6g)", fn, urc, info.step, info.tau);
            break;
        }
        uint32_t step = info.step;
        rc = dsn_step_eps(sp, x, out, numel, m->params.prediction, &info, eps);
        if (rc >= 0) {
            /* Finite but huge outputs (|eps| near FLT_MAX) can overflow the update: say so
             * here rather than hand the model an Inf or return one as a sample. */
            size_t bad = first_nonfinite(x, numel);
            if (bad < numel)
                rc = dsn_error(DEISSN_E_NONFINITE, "%s: the state became %s at element %zu in "
                               "step %u: the model output is too large for float32", fn,
                               isnan(x[bad]) ? "NaN" : "Inf", bad, step);
        }
        if (rc >= 0 && cal) {
            int32_t frc = dsn_fixed_sum(eps, numel, step, &sums[step], fn);
            if (frc != DEISSN_OK) rc = frc;
        }
        if (rc >= 0 && opt && opt->progress && opt->progress(opt->progress_user, step, info.steps)) {
            rc = dsn_error(DEISSN_E_CALLBACK, "%s: the progress callback stopped sampling after "
                           "step %u", fn, step);
        }
    }
    if (rc >= 0 && cal) rc = dsn_calibrator_add_run(cal, sums, numel, (uint64_t)shape[0], fn);
    if (rc < 0) memcpy(x, backup, bytes);
    else rc = DEISSN_OK;
    if (opt) {
        opt->model_seconds = t_model;
        opt->sampler_seconds = dsn_now() - t_total - t_model;
    }
    dsn_free(out);
    dsn_free(backup);
    dsn_free(eps);
    dsn_free(sums);
    return rc;
}

static void callback_destroy(void *impl) { dsn_free(impl); }

static const dsn_model_ops callback_ops = {callback_sample, callback_destroy};

int32_t deissn_model_from_callback(deissn_model **out, deissn_model_fn fn, void *user,
                                   const deissn_model_params *params)
{
    const char *name = "deissn_model_from_callback";
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", name);
    *out = NULL;
    if (!fn) return dsn_error(DEISSN_E_INVALID_ARG, "%s: fn is NULL", name);
    callback_impl *cb = dsn_malloc(sizeof *cb);
    if (!cb) return dsn_error(DEISSN_E_NOMEM, "%s: out of memory", name);
    cb->fn = fn;
    cb->user = user;
    int32_t rc = dsn_model_new(out, &callback_ops, cb, params, name);
    if (rc) dsn_free(cb);
    return rc;
}

#ifndef DEISSN_WITH_TORCH
int32_t dsn_torch_model_load(deissn_model **out, const char *path,
                             const deissn_model_params *params)
{
    (void)out;
    (void)params;
    return dsn_error(DEISSN_E_UNSUPPORTED, "deissn_model_load: %s: this libdeissn was built "
                     "without libtorch, so it cannot load TorchScript models (rebuild with "
                     "WITH_TORCH=1)", path);
}
int32_t deissn_has_torch(void) { return 0; }
#endif

int32_t deissn_model_load(deissn_model **out, const char *path, const deissn_model_params *params)
{
    const char *fn = "deissn_model_load";
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!path) return dsn_error(DEISSN_E_INVALID_ARG, "%s: path is NULL", fn);
    return dsn_torch_model_load(out, path, params);
}

#define MAX_NDIM 8

int32_t deissn_sample(deissn_sampler *sp, deissn_model *m, float *x, const int64_t *shape,
                      uint32_t ndim, deissn_sample_options *options)
{
    const char *fn = "deissn_sample";
    if (!sp || !m || !x || !shape)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn,
                         !sp ? "sampler" : !m ? "model" : !x ? "x" : "shape");
    if (options && options->version != DEISSN_SAMPLE_OPTIONS_VERSION)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: options->version %u is not %u", fn,
                         options->version, DEISSN_SAMPLE_OPTIONS_VERSION);
    if (ndim < 1 || ndim > MAX_NDIM)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: ndim %u must be in 1..%d", fn, ndim, MAX_NDIM);
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
    if (options && options->calibrator) {
        int32_t rc = dsn_calibrator_check_sampler(options->calibrator, sp, fn);
        if (rc) return rc;
    }
    return m->ops->sample(m, sp, x, shape, ndim, numel, options);
}
