/* model.h - the model object: a backend (backend.h) and the backend's model. Internal. */
#ifndef DSN_MODEL_H
#define DSN_MODEL_H

#include "backends/backend.h"
#include "base/base.h"

struct deissn_model {
    int refs;                  /* atomic via dsn_ref/dsn_unref */
    const dsn_backend *backend;
    void *impl;                /* the backend's model */
    deissn_model_params params; /* validated; device and backend point into the buffers */
    char device_buf[32];
    char backend_buf[32];
};

/* *out = the caller's params (NULL: defaults), validated, as the current version. */
int32_t dsn_model_params_read(deissn_model_params *out, const deissn_model_params *params,
                              const char *fn);

/* Allocate a model with refcount 1 around backend and impl, with params (already read by
 * dsn_model_params_read) copied. On failure impl is NOT destroyed (the caller still owns
 * it). */
int32_t dsn_model_new(deissn_model **out, const dsn_backend *backend, void *impl,
                      const deissn_model_params *params, const char *fn);

/* The value the model gets as its time argument at time tau. */
double dsn_model_time(int32_t convention, const deissn_schedule *schedule, double tau);

/* The backend of C callback models (backends/callback.c): host buffers. */
const dsn_backend *dsn_callback_backend(void);

/* The plug-in backend called `name` (backends/plugin.c), loaded on first use and kept for
 * the life of the process. DEISSN_E_UNSUPPORTED, with where it looked and why it failed,
 * when it cannot be loaded; DEISSN_E_INVALID_ARG for a name that is not a plain word. */
int32_t dsn_plugin_backend(const char *name, const dsn_backend **out, const char *fn);

/* deissn_sample() that hands `record` host copies of the state each step evaluated the
 * model at, and of the eps there, after the step (the tuner's reference runs). A non-zero
 * return stops the sampling with DEISSN_E_CALLBACK. record NULL: deissn_sample(). */
typedef int (*dsn_record_fn)(void *user, uint32_t step, const float *x, const float *eps,
                             size_t n);
int32_t dsn_sample_recorded(deissn_sampler *sampler, deissn_model *model, float *x,
                            const int64_t *shape, uint32_t ndim,
                            const deissn_sample_options *options, dsn_record_fn record,
                            void *record_user);

#endif
