/* callback.c - the backend of C callback models: host buffers, the host kernel, and a call
 * of the caller's function for each evaluation. */
#include "backends/model.h"
#include "sampling/kernel.h"
#include "tables/calibrate.h"

#include <math.h>
#include <string.h>

typedef struct {
    deissn_model_fn fn;
    void *user;
} callback_model;

static int32_t cb_alloc(void *impl, size_t n, void **buf)
{
    (void)impl;
    *buf = dsn_malloc(n * sizeof(float)); /* n * 4 checked by the loop */
    if (!*buf) return dsn_error(DEISSN_E_NOMEM, "deissn_sample: out of memory for %zu floats", n);
    return DEISSN_OK;
}

static void cb_release(void *impl, void *buf)
{
    (void)impl;
    dsn_free(buf);
}

static int32_t cb_copy(void *impl, void *dst, const void *src, size_t n)
{
    (void)impl;
    memcpy(dst, src, n * sizeof(float));
    return DEISSN_OK;
}

static int32_t cb_upload(void *impl, void *dst, const float *src, size_t n)
{
    return cb_copy(impl, dst, src, n);
}

static int32_t cb_download(void *impl, float *dst, const void *src, size_t n)
{
    return cb_copy(impl, dst, src, n);
}

static int32_t cb_forward(void *impl, const dsn_forward *f)
{
    const callback_model *cb = impl;
    int rc = cb->fn(cb->user, f->x, f->shape, f->ndim, f->t, f->out);
    if (rc != 0)
        return dsn_error(DEISSN_E_CALLBACK, "deissn_sample: the model callback returned %d at "
                         "step %u (t %.17g)", rc, f->step, f->t);
    return DEISSN_OK;
}

static int32_t cb_update(void *impl, const dsn_update *u, size_t n)
{
    (void)impl;
    dsn_host_update(u, n);
    return DEISSN_OK;
}

static int32_t cb_first_nonfinite(void *impl, const void *buf, size_t n, size_t *index,
                                  float *value)
{
    (void)impl;
    const float *v = buf;
    *index = dsn_first_nonfinite(v, n);
    *value = *index < n ? v[*index] : 0.0f;
    return DEISSN_OK;
}

static int32_t cb_max_abs(void *impl, const void *buf, size_t n, double *max_abs)
{
    (void)impl;
    const float *v = buf;
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(v[i]);
        if (!(a <= m)) m = a; /* NaN wins, so that it is seen */
    }
    *max_abs = m;
    return DEISSN_OK;
}

static int32_t cb_fixed_sum(void *impl, const void *buf, size_t n, double scale, int64_t *sum)
{
    (void)impl;
    const float *v = buf;
    int64_t acc = 0;
    for (size_t i = 0; i < n; i++) acc += (int64_t)(fabs((double)v[i]) * scale);
    *sum = acc;
    return DEISSN_OK;
}

static void cb_destroy(void *impl) { dsn_free(impl); }

static const dsn_backend callback_backend = {
    DSN_BACKEND_ABI, "callback",   "the caller's C function", NULL,     cb_destroy,
    cb_alloc,        cb_release,   cb_upload,                 cb_download, cb_copy,
    cb_forward,      cb_update,    cb_first_nonfinite,        cb_max_abs, cb_fixed_sum,
};

const dsn_backend *dsn_callback_backend(void) { return &callback_backend; }

int32_t deissn_model_from_callback(deissn_model **out, deissn_model_fn fn, void *user,
                                   const deissn_model_params *params)
{
    const char *name = "deissn_model_from_callback";
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", name);
    *out = NULL;
    if (!fn) return dsn_error(DEISSN_E_INVALID_ARG, "%s: fn is NULL", name);
    deissn_model_params p;
    int32_t rc = dsn_model_params_read(&p, params, name);
    if (rc) return rc;
    callback_model *cb = dsn_malloc(sizeof *cb);
    if (!cb) return dsn_error(DEISSN_E_NOMEM, "%s: out of memory", name);
    cb->fn = fn;
    cb->user = user;
    rc = dsn_model_new(out, &callback_backend, cb, &p, name);
    if (rc) dsn_free(cb);
    return rc;
}
