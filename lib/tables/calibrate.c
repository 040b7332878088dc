/* calibrate.c - measuring r(tau): exact fixed-point sums of |eps| per step, merged freely.
 *
 * Every |eps| is added as the integer floor(|eps| * 2^24). Integer addition is associative,
 * so the sums do not depend on how samples were split into batches, threads, processes or
 * machines, nor on the order of merging: a calibration is reproducible bit for bit. */
#include "maths/schedule.h"
#include "tables/normtable.h"
#include "tables/calibrate.h"
#include "sampling/sampler.h"

#include <math.h>
#include <string.h>

struct deissn_calibrator {
    uint32_t steps;
    uint32_t fingerprint; /* of the schedule the runs use */
    uint64_t samples;
    double *taus;         /* step i's evaluation time (decreasing); the start of the one
                             allocation holding taus, sums and counts */
    int64_t *sums;
    uint64_t *counts;
};

/* |eps| below this keeps floor(|eps| * 2^24) below 2^63. */
#define FIXED_LIMIT 549755813888.0 /* 2^39 */

static int32_t calibrator_alloc(deissn_calibrator **out, uint32_t steps, const char *fn)
{
    *out = NULL;
    deissn_calibrator *c = dsn_calloc(1, sizeof *c);
    unsigned char *block = dsn_calloc(steps, 3 * 8);
    if (!c || !block) {
        dsn_free(c);
        dsn_free(block);
        return dsn_error(DEISSN_E_NOMEM, "%s: out of memory for %u steps", fn, steps);
    }
    c->steps = steps;
    c->taus = (double *)block;
    c->sums = (int64_t *)(c->taus + steps);
    c->counts = (uint64_t *)(c->sums + steps);
    *out = c;
    return DEISSN_OK;
}

int32_t deissn_calibrator_create(deissn_calibrator **out, const deissn_schedule *s)
{
    const char *fn = "deissn_calibrator_create";
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!s) return dsn_error(DEISSN_E_INVALID_ARG, "%s: schedule is NULL", fn);
    if (s->steps < 2)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: the schedule has %u step(s); a table needs "
                         "at least 2", fn, s->steps);
    deissn_calibrator *c;
    int32_t rc = calibrator_alloc(&c, s->steps, fn);
    if (rc) return rc;
    memcpy(c->taus, s->taus, s->steps * sizeof(double));
    c->fingerprint = s->fingerprint;
    *out = c;
    return DEISSN_OK;
}

int32_t deissn_calibrator_from_table(deissn_calibrator **out, const deissn_normtable *t)
{
    const char *fn = "deissn_calibrator_from_table";
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!t) return dsn_error(DEISSN_E_INVALID_ARG, "%s: table is NULL", fn);
    if (!t->sums)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: the table has no calibration sums (it was "
                         "made from plain values), so it cannot be merged", fn);
    /* Tables with sums come from deissn_calibrator_finish() or a checked file: n fits. */
    uint32_t steps = (uint32_t)t->n;
    deissn_calibrator *c;
    int32_t rc = calibrator_alloc(&c, steps, fn);
    if (rc) return rc;
    for (uint32_t i = 0; i < steps; i++) { /* knots increase in tau, steps decrease */
        size_t k = steps - 1 - i;
        c->taus[i] = t->tau[k];
        c->sums[i] = t->sums[k];
        c->counts[i] = t->counts[k];
    }
    c->fingerprint = t->fingerprint;
    c->samples = t->samples;
    *out = c;
    return DEISSN_OK;
}

void deissn_calibrator_free(deissn_calibrator *c)
{
    if (!c) return;
    dsn_free(c->taus);
    dsn_free(c);
}

uint32_t deissn_calibrator_steps(const deissn_calibrator *c) { return c ? c->steps : 0; }

/* ---- adding, all or nothing -------------------------------------------------------------- */

/* Add sums[i] and counts[i] (or count_each when counts is NULL) to every step, and samples:
 * checked first, so that an overflow anywhere changes nothing. */
static int32_t add_arrays(deissn_calibrator *c, const int64_t *sums, const uint64_t *counts,
                          uint64_t count_each, uint64_t samples, const char *fn)
{
    for (uint32_t i = 0; i < c->steps; i++) {
        uint64_t n = counts ? counts[i] : count_each;
        if (sums[i] > INT64_MAX - c->sums[i] || n > UINT64_MAX - c->counts[i])
            return dsn_error(DEISSN_E_SIZE, "%s: the %s of step %u (tau %.6g) would overflow",
                             fn, sums[i] > INT64_MAX - c->sums[i] ? "int64 sum" : "count", i,
                             c->taus[i]);
    }
    if (samples > UINT64_MAX - c->samples)
        return dsn_error(DEISSN_E_SIZE, "%s: the sample count would overflow", fn);
    for (uint32_t i = 0; i < c->steps; i++) {
        c->sums[i] += sums[i];
        c->counts[i] += counts ? counts[i] : count_each;
    }
    c->samples += samples;
    return DEISSN_OK;
}

int32_t dsn_calibrator_add_run(deissn_calibrator *c, const int64_t *sums, uint64_t count,
                               uint64_t samples, const char *fn)
{
    return add_arrays(c, sums, NULL, count, samples, fn);
}

int32_t dsn_fixed_sum(const float *eps, size_t n, uint32_t step, int64_t *sum, const char *fn)
{
    int64_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        double a = fabs((double)eps[i]);
        if (!(a < FIXED_LIMIT)) {
            if (!isfinite(a))
                return dsn_error(DEISSN_E_NONFINITE, "%s: eps has %s at element %zu of step %u",
                                 fn, isnan(a) ? "NaN" : "Inf", i, step);
            return dsn_error(DEISSN_E_SIZE, "%s: |eps| = %g at element %zu of step %u is too "
                             "large for the fixed-point sum", fn, a, i, step);
        }
        int64_t v = (int64_t)(a * DSN_FIXED_ONE); /* exact product; truncation = floor */
        if (v > INT64_MAX - acc)
            return dsn_error(DEISSN_E_SIZE, "%s: the int64 sum of step %u overflows", fn, step);
        acc += v;
    }
    *sum = acc;
    return DEISSN_OK;
}

int32_t dsn_fixed_sum_fits(double max_abs, size_t n, uint32_t step, const char *fn)
{
    if (max_abs < FIXED_LIMIT) {
        uint64_t top = (uint64_t)(max_abs * DSN_FIXED_ONE);
        if (top == 0 || n <= (uint64_t)INT64_MAX / top) return DEISSN_OK;
    }
    return dsn_error(DEISSN_E_SIZE, "%s: |eps| up to %g over %zu values at step %u could "
                     "overflow the int64 fixed-point sum", fn, max_abs, n, step);
}

int32_t deissn_calibrator_add(deissn_calibrator *c, uint32_t step, const float *eps, size_t n,
                              uint64_t samples)
{
    const char *fn = "deissn_calibrator_add";
    if (!c || !eps)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn, c ? "eps" : "calibrator");
    if (step >= c->steps)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: step %u >= steps %u", fn, step, c->steps);
    int64_t sum;
    int32_t rc = dsn_fixed_sum(eps, n, step, &sum, fn);
    if (rc) return rc;
    if (sum > INT64_MAX - c->sums[step] || n > UINT64_MAX - c->counts[step])
        return dsn_error(DEISSN_E_SIZE, "%s: the %s of step %u would overflow", fn,
                         sum > INT64_MAX - c->sums[step] ? "int64 sum" : "count", step);
    if (samples > UINT64_MAX - c->samples)
        return dsn_error(DEISSN_E_SIZE, "%s: the sample count would overflow", fn);
    c->sums[step] += sum;
    c->counts[step] += n;
    c->samples += samples;
    return DEISSN_OK;
}

/* Same steps at the same times for the same noise schedule; else DEISSN_E_MISMATCH. */
static int32_t check_same_steps(const deissn_calibrator *c, uint32_t steps, const double *taus,
                                uint32_t fingerprint, const char *other, const char *fn)
{
    if (steps != c->steps)
        return dsn_error(DEISSN_E_MISMATCH, "%s: the calibrator has %u steps, %s has %u", fn,
                         c->steps, other, steps);
    if (fingerprint != c->fingerprint)
        return dsn_error(DEISSN_E_MISMATCH, "%s: the calibrator's noise schedule has fingerprint "
                         "%08x, %s's %08x", fn, c->fingerprint, other, fingerprint);
    for (uint32_t i = 0; i < steps; i++)
        if (taus[i] != c->taus[i])
            return dsn_error(DEISSN_E_MISMATCH, "%s: step %u is at tau %.17g in the calibrator, "
                             "at %.17g in %s", fn, i, c->taus[i], taus[i], other);
    return DEISSN_OK;
}

int32_t dsn_calibrator_check_sampler(const deissn_calibrator *c, const deissn_sampler *sp,
                                     const char *fn)
{
    if (dsn_sampler_method(sp) != DEISSN_METHOD_EPS)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: options->calibrator needs a sampler with "
                         "DEISSN_METHOD_EPS: it records eps, and this one steps on x0", fn);
    const deissn_schedule *s = dsn_sampler_schedule(sp);
    return check_same_steps(c, s->steps, s->taus, s->fingerprint, "the sampler's schedule", fn);
}

int32_t deissn_calibrator_merge(deissn_calibrator *dst, const deissn_calibrator *src)
{
    const char *fn = "deissn_calibrator_merge";
    if (!dst || !src)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn, dst ? "src" : "dst");
    if (dst == src)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: src and dst are the same calibrator", fn);
    int32_t rc = check_same_steps(dst, src->steps, src->taus, src->fingerprint, "src", fn);
    if (rc) return rc;
    return add_arrays(dst, src->sums, src->counts, 0, src->samples, fn);
}

int32_t deissn_calibrator_get_sums(const deissn_calibrator *c, int64_t *sums, uint64_t *counts,
                                   size_t capacity, uint64_t *samples)
{
    const char *fn = "deissn_calibrator_get_sums";
    if (!c) return dsn_error(DEISSN_E_INVALID_ARG, "%s: calibrator is NULL", fn);
    if ((sums || counts) && capacity < c->steps)
        return dsn_error(DEISSN_E_SIZE, "%s: capacity %zu < steps %u", fn, capacity, c->steps);
    if (sums) memcpy(sums, c->sums, c->steps * sizeof *sums);
    if (counts) memcpy(counts, c->counts, c->steps * sizeof *counts);
    if (samples) *samples = c->samples;
    return DEISSN_OK;
}

int32_t deissn_calibrator_add_sums(deissn_calibrator *c, const int64_t *sums,
                                   const uint64_t *counts, size_t n, uint64_t samples)
{
    const char *fn = "deissn_calibrator_add_sums";
    if (!c || !sums || !counts)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn,
                         !c ? "calibrator" : !sums ? "sums" : "counts");
    if (n != c->steps)
        return dsn_error(DEISSN_E_SIZE, "%s: n = %zu but the calibrator has %u steps", fn, n,
                         c->steps);
    for (uint32_t i = 0; i < c->steps; i++)
        if (sums[i] < 0)
            return dsn_error(DEISSN_E_INVALID_ARG, "%s: sums[%u] = %lld is negative", fn, i,
                             (long long)sums[i]);
    return add_arrays(c, sums, counts, 0, samples, fn);
}

int32_t deissn_calibrator_finish(deissn_normtable **out, const deissn_calibrator *c,
                                 const deissn_normtable_params *params)
{
    const char *fn = "deissn_calibrator_finish";
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!c) return dsn_error(DEISSN_E_INVALID_ARG, "%s: calibrator is NULL", fn);
    for (uint32_t i = 0; i < c->steps; i++)
        if (c->counts[i] == 0)
            return dsn_error(DEISSN_E_STATE, "%s: step %u (tau %.6g) has no values yet", fn, i,
                             c->taus[i]);
    deissn_normtable *t;
    int32_t rc = dsn_table_alloc(&t, c->steps, 1, 0, fn);
    if (rc) return rc;
    uint32_t n = c->steps;
    for (uint32_t k = 0; k < n; k++) { /* knot k is step n - 1 - k */
        uint32_t i = n - 1 - k;
        t->tau[k] = c->taus[i];
        t->sums[k] = c->sums[i];
        t->counts[k] = c->counts[i];
        t->r[k] = dsn_fixed_mean(c->sums[i], c->counts[i]);
    }
    t->fingerprint = c->fingerprint;
    t->steps = n;
    t->samples = c->samples;
    rc = dsn_table_derive(out, t, params, fn);
    deissn_normtable_free(t);
    return rc;
}
