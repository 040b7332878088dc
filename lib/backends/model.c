/* model.c - model handles: a backend and its model. deissn_model_load() picks the plug-in;
 * the sampling loop that drives any model is sampling/loop.c. */
#include "backends/model.h"
#include "maths/schedule.h"

#include <stdio.h>
#include <string.h>

static const size_t params_size[DEISSN_MODEL_PARAMS_VERSION + 1] = {
    0, sizeof(deissn_model_params)};
static const deissn_model_params defaults = DEISSN_MODEL_PARAMS_INIT;

int32_t deissn_model_params_init(deissn_model_params *params, uint32_t version)
{
    return dsn_init_versioned(params, &defaults, params_size, version,
                              DEISSN_MODEL_PARAMS_VERSION, "deissn_model_params_init");
}

int32_t dsn_model_params_read(deissn_model_params *out, const deissn_model_params *params,
                              const char *fn)
{
    int32_t rc = dsn_read_params(out, &defaults, sizeof defaults, params, params_size,
                                 DEISSN_MODEL_PARAMS_VERSION, fn, "params");
    if (rc) return rc;
    const deissn_model_params *p = out;
    if (p->time_convention < DEISSN_TIME_MODEL_INDEX || p->time_convention > DEISSN_TIME_SIGMA)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: unknown time convention %d", fn,
                         (int)p->time_convention);
    if (p->dtype < DEISSN_DTYPE_FLOAT32 || p->dtype > DEISSN_DTYPE_BFLOAT16)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: unknown dtype %d", fn, (int)p->dtype);
    if (p->num_threads < 0)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: num_threads %d is negative", fn,
                         (int)p->num_threads);
    const char *names[2] = {p->device, p->backend};
    for (int i = 0; i < 2; i++)
        if (names[i] && strlen(names[i]) >= 32)
            return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s name '%.40s...' is too long", fn,
                             i ? "backend" : "device", names[i]);
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

int32_t dsn_model_new(deissn_model **out, const dsn_backend *backend, void *impl,
                      const deissn_model_params *params, const char *fn)
{
    *out = NULL;
    deissn_model *m = dsn_calloc(1, sizeof *m);
    if (!m) return dsn_error(DEISSN_E_NOMEM, "%s: out of memory", fn);
    m->refs = 1;
    m->backend = backend;
    m->impl = impl;
    m->params = *params;
    if (params->device) {
        memcpy(m->device_buf, params->device, strlen(params->device) + 1); /* length checked */
        m->params.device = m->device_buf;
    }
    if (params->backend) {
        memcpy(m->backend_buf, params->backend, strlen(params->backend) + 1);
        m->params.backend = m->backend_buf;
    }
    *out = m;
    return DEISSN_OK;
}

void deissn_model_free(deissn_model *m)
{
    if (!m || !dsn_unref(&m->refs)) return;
    if (m->backend->destroy) m->backend->destroy(m->impl);
    dsn_free(m);
}

int32_t deissn_model_load(deissn_model **out, const char *path, const deissn_model_params *params)
{
    const char *fn = "deissn_model_load";
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!path) return dsn_error(DEISSN_E_INVALID_ARG, "%s: path is NULL", fn);
    deissn_model_params p;
    int32_t rc = dsn_model_params_read(&p, params, fn);
    if (rc) return rc;
    const dsn_backend *backend = NULL;
    char what[512]; /* the messages name the file the plug-in was wanted for */
    snprintf(what, sizeof what, "%s: %.400s", fn, path);
    rc = dsn_plugin_backend(p.backend ? p.backend : "torch", &backend, what);
    if (rc) return rc;
    void *impl = NULL;
    rc = backend->load(&impl, path, &p);
    if (rc) return rc;
    rc = dsn_model_new(out, backend, impl, &p, fn);
    if (rc) backend->destroy(impl);
    return rc;
}

int32_t deissn_has_torch(void)
{
    const dsn_backend *backend;
    return dsn_plugin_backend("torch", &backend, "deissn_has_torch") == DEISSN_OK;
}
