/* model.h - the model object and its backend. Internal: shared by lib/ and the shim. */
#ifndef DSN_MODEL_H
#define DSN_MODEL_H

#include "base/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The value the model gets as its time argument at time tau. */
double dsn_model_time(int32_t convention, const deissn_schedule *schedule, double tau);

typedef struct dsn_model_ops {
    /* Run the whole sampling loop (deissn_sample() after argument checks, the calibrator's
     * included). The sampler is reset; x is prod(shape) floats in host memory; on error x
     * and options->calibrator must be unchanged. */
    int32_t (*sample)(deissn_model *model, deissn_sampler *sampler, float *x,
                      const int64_t *shape, uint32_t ndim, size_t numel,
                      deissn_sample_options *options);
    /* Release impl. */
    void (*destroy)(void *impl);
} dsn_model_ops;

struct deissn_model {
    int refs;                  /* atomic via dsn_ref/dsn_unref */
    const dsn_model_ops *ops;
    void *impl;
    deissn_model_params params; /* params.device points into device_buf */
    char device_buf[32];
};

/* Allocate a model with refcount 1 and the given ops/impl; params are validated and copied.
 * On failure impl is NOT destroyed (the caller still owns it). */
int32_t dsn_model_new(deissn_model **out, const dsn_model_ops *ops, void *impl,
                      const deissn_model_params *params, const char *fn);

/* Implemented by the shim (shim/torch_model.cpp) when the library is built with libtorch. */
int32_t dsn_torch_model_load(deissn_model **out, const char *path,
                             const deissn_model_params *params);

#ifdef __cplusplus
}
#endif

#endif
