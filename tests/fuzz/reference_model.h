/* reference_model.h - the model of the fuzz_reference seeds: gen_reference.c solves the seeds
 * on it and fuzz_reference.c searches plans with it. Data of independent Gaussian coordinates
 * (standard deviations 0.1, 0.4, 0.7, 1.0, repeating), so eps is exact and cheap:
 *   eps_i(x, tau) = sigma x_i / (abar s_i^2 + sigma^2),  sigma^2 = 1 - abar(tau),
 * called with the model time tau (DEISSN_TIME_TAU) on the default noise schedule (linear,
 * T = 1000, DEISSN_SCHEDULE_PARAMS_INIT). */
#ifndef FUZZ_REFERENCE_MODEL_H
#define FUZZ_REFERENCE_MODEL_H

#include "deissn.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

static int ref_model_fn(void *user, const float *x, const int64_t *shape, uint32_t ndim,
                        double tau, float *out)
{
    size_t n = (size_t)shape[0];
    for (uint32_t d = 1; d < ndim; d++) n *= (size_t)shape[d];
    double ab = deissn_schedule_alpha_bar(user, tau), s2 = 1 - ab;
    for (size_t i = 0; i < n; i++) {
        double sd = 0.1 + 0.3 * (double)(i % 4);
        out[i] = (float)(sqrt(s2) * x[i] / (ab * sd * sd + s2));
    }
    return 0;
}

/* *model and *schedule (the model's user; free both) on the default noise schedule. */
static int32_t ref_model_make(deissn_model **model, deissn_schedule **schedule,
                              deissn_schedule_params *noise)
{
    deissn_schedule_params sp = DEISSN_SCHEDULE_PARAMS_INIT;
    deissn_model_params mp = DEISSN_MODEL_PARAMS_INIT;
    mp.time_convention = DEISSN_TIME_TAU;
    *noise = sp;
    *model = NULL;
    int32_t rc = deissn_schedule_create(schedule, &sp);
    if (!rc) rc = deissn_model_from_callback(model, ref_model_fn, *schedule, &mp);
    return rc;
}

#endif
