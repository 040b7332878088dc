/* sampler.c - the plan (coefficients of every step), the eps history and the fused step. */
#include "maths/schedule.h"
#include "maths/coeffs.h"
#include "tables/normtable.h"
#include "sampling/sampler.h"
#include "sampling/kernel.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define MAX_ORDER 3
#define MAX_HIST DSN_MAX_DEPTH /* previous eps a step may read (order 3 + the corrector) */

struct deissn_sampler {
    deissn_schedule *schedule; /* referenced */
    deissn_normtable *table;   /* referenced, or NULL */
    deissn_sampler_params params; /* params.weights points to `weights` (METHOD_LEARNED) */
    double *weights;     /* METHOD_LEARNED: the caller's weights, copied */
    uint32_t steps;
    dsn_step *plan;
    unsigned char *keep; /* keep[i]: a later step uses step i's eps */
    uint32_t slots;      /* history buffers: the largest depth in the plan */
    float *hist[MAX_HIST];
    size_t hist_capacity; /* floats per history buffer */
    size_t numel;         /* fixed by the first step after a reset; 0 before */
    uint32_t next;        /* the next step to take */
};

/* The byte size of each version of deissn_sampler_params: version 1 ends before `method`,
 * version 2 before `prediction`, version 3 right after `prediction` (include/deissn.h). Not
 * offsetof(weights): the pointer's alignment puts padding before it, which a version-3
 * struct (28 bytes, all 4-byte fields) does not have. */
static const size_t params_size[DEISSN_SAMPLER_PARAMS_VERSION + 1] = {
    0, offsetof(deissn_sampler_params, method), offsetof(deissn_sampler_params, prediction),
    offsetof(deissn_sampler_params, prediction) + sizeof(int32_t), sizeof(deissn_sampler_params)};
static const deissn_sampler_params defaults = DEISSN_SAMPLER_PARAMS_INIT;
static const size_t info_size[DEISSN_STEP_INFO_VERSION + 1] = {0, sizeof(deissn_step_info)};
static const size_t coeffs_size[DEISSN_STEP_COEFFS_VERSION + 1] = {0, sizeof(deissn_step_coeffs)};

int32_t deissn_sampler_params_init(deissn_sampler_params *params, uint32_t version)
{
    return dsn_init_versioned(params, &defaults, params_size, version,
                              DEISSN_SAMPLER_PARAMS_VERSION, "deissn_sampler_params_init");
}

int32_t dsn_sampler_params_read(deissn_sampler_params *out, const deissn_sampler_params *params,
                                const char *fn)
{
    return dsn_read_params(out, &defaults, sizeof defaults, params, params_size,
                           DEISSN_SAMPLER_PARAMS_VERSION, fn, "params");
}

void dsn_sampler_params_write(deissn_sampler_params *caller, const deissn_sampler_params *params)
{
    dsn_write_versioned(caller, params, params_size, caller->version);
}

int32_t deissn_sampler_params_by_name(deissn_sampler_params *params, const char *name,
                                      int32_t *uses_table)
{
    const char *fn = "deissn_sampler_params_by_name";
    static const struct {
        const char *name;
        int32_t method, corrector, ddim, table;
    } known[] = {
        {"deis-sn", DEISSN_METHOD_EPS, 0, 0, 1}, {"deis", DEISSN_METHOD_EPS, 0, 0, 0},
        {"ddim", DEISSN_METHOD_EPS, 0, 1, 0},    {"x0", DEISSN_METHOD_DATA, 0, 0, 0},
        {"x0-corrector", DEISSN_METHOD_DATA, 1, 0, 0},
    };
    if (!params || !name)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn, params ? "name" : "params");
    deissn_sampler_params p;
    int32_t rc = dsn_sampler_params_read(&p, params, fn);
    if (rc) return rc;
    if (params->version < 2)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: a version-1 params struct has no method", fn);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(name, known[i].name) != 0) continue;
        p.method = known[i].method;
        p.corrector = (uint32_t)known[i].corrector;
        if (known[i].ddim) p.order = 0;
        dsn_sampler_params_write(params, &p);
        if (uses_table) *uses_table = known[i].table;
        return DEISSN_OK;
    }
    return dsn_error(DEISSN_E_INVALID_ARG, "%s: unknown sampler '%.100s' (known: deis-sn, deis, "
                     "ddim, x0, x0-corrector)", fn, name);
}

/* DDIM, the exact order-0 coefficient without a table:
 * C = alpha_to (sigma_to/alpha_to - sigma_from/alpha_from). */
static double ddim_coeff(const deissn_schedule *s, double from, double to)
{
    double af, sf, at, st;
    dsn_alpha_sigma(s, from, &af, &sf);
    dsn_alpha_sigma(s, to, &at, &st);
    return st - at * (sf / af);
}

/* lambda = log(alpha/sigma) at tau (+inf at tau = 0). */
static double lambda_at(const deissn_schedule *s, double tau)
{
    double alpha, sigma;
    dsn_alpha_sigma(s, tau, &alpha, &sigma);
    return log(alpha) - log(sigma);
}

/* The predictor's coefficients of step i (p = order) on d_{i-j}, j = 0..p. */
static void predictor_coeffs(const deissn_sampler *sp, uint32_t i, uint32_t p,
                             double out[DSN_MAX_NODES])
{
    const deissn_schedule *s = sp->schedule;
    const double *taus = s->taus;
    double nodes[DSN_MAX_NODES];
    memset(out, 0, DSN_MAX_NODES * sizeof *out);
    if (sp->params.method == DEISSN_METHOD_DATA) {
        double alpha_to, sigma_to;
        dsn_alpha_sigma(s, taus[i + 1], &alpha_to, &sigma_to);
        if (sigma_to == 0) { /* lambda = inf: x = alpha x0, order 0 (build_plan set p = 0) */
            out[0] = alpha_to;
            return;
        }
        for (uint32_t j = 0; j <= p; j++) nodes[j] = lambda_at(s, taus[i - j]);
        dsn_coeffs_data(nodes[0], lambda_at(s, taus[i + 1]), alpha_to, nodes, p, out);
    } else if (p == 0 && !sp->table) {
        out[0] = ddim_coeff(s, taus[i], taus[i + 1]);
    } else {
        for (uint32_t j = 0; j <= p; j++) nodes[j] = taus[i - j];
        dsn_coeffs_quadrature(s, sp->table, taus[i], taus[i + 1], nodes, p, 8, out);
    }
}

/* The corrector's coefficients for x at taus[i] (order q, i >= 1) on d_{i-j}, j = 0..q: the
 * step from taus[i-1] to taus[i] through the nodes taus[i], ..., taus[i-q]. */
static void corrector_coeffs(const deissn_sampler *sp, uint32_t i, uint32_t q,
                             double out[DSN_MAX_NODES])
{
    const deissn_schedule *s = sp->schedule;
    double nodes[DSN_MAX_NODES], alpha_to, sigma_to;
    memset(out, 0, DSN_MAX_NODES * sizeof *out);
    for (uint32_t j = 0; j <= q; j++) nodes[j] = lambda_at(s, s->taus[i - j]);
    dsn_alpha_sigma(s, s->taus[i], &alpha_to, &sigma_to);
    dsn_coeffs_data(nodes[1], nodes[0], alpha_to, nodes, q, out);
}

/* Every step's coefficients. Step i goes from taus[i] to taus[i+1] with the predictor
 *   x_{i+1} = psi_i x_i + sum_{j<=p} P_i[j] d_{i-j}        (p = order)
 * where d is eps / r (METHOD_EPS; psi = alpha ratio) or x0 (METHOD_DATA; psi = sigma ratio).
 * With the corrector, x_i is first replaced by the Adams-Moulton value through the new
 * output d_i and the nodes of step i-1's predictor (order q = p_{i-1} + 1):
 *   x_i' = x_i + sum_{j<=q} A_i[j] d_{i-j} - sum_{j<q} P_{i-1}[j] d_{i-1-j}
 * (both start from psi_{i-1} x_{i-1}, so x_{i-1} need not be kept). Substituting gives one
 * update of the same shape, with depth max(p, q):
 *   c[j] = P_i[j] + psi_i (A_i[j] - P_{i-1}[j-1]). */
static void build_plan(deissn_sampler *sp)
{
    const deissn_schedule *s = sp->schedule;
    const double *taus = s->taus;
    uint32_t N = sp->steps;
    int data = sp->params.method == DEISSN_METHOD_DATA;
    double prev_pred[DSN_MAX_NODES] = {0}; /* P_{i-1} */
    sp->slots = 0;
    for (uint32_t i = 0; i < N; i++) {
        dsn_step *st = &sp->plan[i];
        memset(st, 0, sizeof *st);
        if (sp->weights) { /* METHOD_LEARNED: the weights are the step */
            const double *w = sp->weights + (size_t)i * DEISSN_PLAN_WEIGHTS;
            st->tau_from = taus[i];
            st->tau_to = taus[i + 1];
            st->model_t = taus[i] * s->T - 1;
            dsn_alpha_sigma(s, st->tau_from, &st->alpha, &st->sigma);
            st->psi = w[0];
            st->depth = i < DSN_MAX_DEPTH ? i : DSN_MAX_DEPTH;
            while (st->depth > 0 && w[1 + st->depth] == 0) st->depth--;
            st->order = st->depth;
            for (uint32_t j = 0; j <= st->depth; j++) {
                st->c[j] = st->k[j] = w[1 + j];
                st->r[j] = 1.0;
            }
            if (st->depth > sp->slots) sp->slots = st->depth;
            continue;
        }
        st->data = data;
        st->tau_from = taus[i];
        st->tau_to = taus[i + 1];
        st->model_t = taus[i] * s->T - 1;
        double alpha_to, sigma_to;
        dsn_alpha_sigma(s, st->tau_to, &alpha_to, &sigma_to);
        dsn_alpha_sigma(s, st->tau_from, &st->alpha, &st->sigma);
        st->psi = data ? sigma_to / st->sigma : alpha_to / st->alpha;

        uint32_t p = sp->params.order < i ? sp->params.order : i;
        if (sp->params.lower_order_final && p > N - 1 - i) p = N - 1 - i;
        if (data && sigma_to == 0) p = 0; /* no polynomial in lambda reaches lambda = inf */
        st->order = p;
        double pred[DSN_MAX_NODES];
        predictor_coeffs(sp, i, p, pred);
        st->depth = p;
        for (uint32_t j = 0; j <= p; j++) st->c[j] = pred[j];

        if (sp->params.corrector && i > 0) {
            uint32_t q = sp->plan[i - 1].order + 1;
            double corr[DSN_MAX_NODES];
            corrector_coeffs(sp, i, q, corr);
            st->corrector_order = q;
            if (q > st->depth) st->depth = q;
            for (uint32_t j = 0; j <= q; j++)
                st->c[j] += st->psi * (corr[j] - (j > 0 ? prev_pred[j - 1] : 0.0));
        }
        for (uint32_t j = 0; j <= st->depth; j++) {
            st->r[j] = sp->table && !data ? deissn_normtable_eval(sp->table, taus[i - j]) : 1.0;
            st->k[j] = st->c[j] / st->r[j];
        }
        memcpy(prev_pred, pred, sizeof pred);
        if (st->depth > sp->slots) sp->slots = st->depth;
    }
    for (uint32_t i = 0; i < N; i++) {
        sp->keep[i] = 0;
        for (uint32_t later = i + 1; later < N && later <= i + MAX_HIST; later++)
            if (sp->plan[later].depth >= later - i) sp->keep[i] = 1;
    }
}

int32_t deissn_sampler_create(deissn_sampler **out, const deissn_schedule *schedule,
                              const deissn_normtable *table, const deissn_sampler_params *params)
{
    const char *fn = "deissn_sampler_create";
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!schedule) return dsn_error(DEISSN_E_INVALID_ARG, "%s: schedule is NULL", fn);
    deissn_sampler_params p;
    int32_t prc = dsn_sampler_params_read(&p, params, fn);
    if (prc) return prc;
    if (p.prediction < DEISSN_PREDICT_EPSILON || p.prediction > DEISSN_PREDICT_V)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: unknown prediction type %d", fn,
                         (int)p.prediction);
    if (p.method != DEISSN_METHOD_EPS && p.method != DEISSN_METHOD_DATA &&
        p.method != DEISSN_METHOD_LEARNED)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: method %d is not DEISSN_METHOD_EPS (0), "
                         "DEISSN_METHOD_DATA (1) or DEISSN_METHOD_LEARNED (2)", fn, (int)p.method);
    if (p.method == DEISSN_METHOD_LEARNED && (!p.weights || table || p.corrector))
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: DEISSN_METHOD_LEARNED %s", fn,
                         !p.weights ? "needs params->weights (a tuned plan's)"
                         : table    ? "takes no table (its weights include the scale)"
                                    : "takes no corrector");
    if (p.method != DEISSN_METHOD_LEARNED) p.weights = NULL; /* not read, not kept */
    for (uint32_t i = 0; p.weights && i < schedule->steps && i + 2 < DEISSN_PLAN_WEIGHTS; i++)
        for (uint32_t j = i + 2; j < DEISSN_PLAN_WEIGHTS; j++)
            if (p.weights[(size_t)i * DEISSN_PLAN_WEIGHTS + j] != 0)
                return dsn_error(DEISSN_E_INVALID_ARG, "%s: params->weights of step %u give "
                                 "weight %u to an eps from before step 0 (step %u has x and %u "
                                 "eps terms)", fn, i, j, i, i + 1);
    if (p.corrector > 1)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: corrector %u is not 0 or 1", fn, p.corrector);
    if (p.corrector && p.method != DEISSN_METHOD_DATA)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: the corrector needs DEISSN_METHOD_DATA (on "
                         "eps it is unstable near tau = 0)", fn);
    if (p.order > MAX_ORDER)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: order %u is not supported (0..%d)", fn, p.order,
                         MAX_ORDER);
    if (table && !p.allow_table_mismatch && table->fingerprint != 0 &&
        table->fingerprint != schedule->fingerprint)
        return dsn_error(DEISSN_E_MISMATCH,
                         "%s: the table was made for a noise schedule with fingerprint %08x, this "
                         "schedule's is %08x (set allow_table_mismatch to use it anyway)",
                         fn, table->fingerprint, schedule->fingerprint);

    deissn_sampler *sp = dsn_calloc(1, sizeof *sp);
    if (!sp) return dsn_error(DEISSN_E_NOMEM, "%s: out of memory", fn);
    sp->params = p;
    sp->steps = schedule->steps;
    sp->plan = dsn_calloc(sp->steps, sizeof *sp->plan);
    sp->keep = dsn_calloc(sp->steps, 1);
    if (p.weights) {
        sp->weights = dsn_malloc((size_t)sp->steps * DEISSN_PLAN_WEIGHTS * sizeof(double));
        if (sp->weights)
            memcpy(sp->weights, p.weights,
                   (size_t)sp->steps * DEISSN_PLAN_WEIGHTS * sizeof(double));
        sp->params.weights = sp->weights;
    }
    if (!sp->plan || !sp->keep || (p.weights && !sp->weights)) {
        dsn_free(sp->plan);
        dsn_free(sp->keep);
        dsn_free(sp->weights);
        dsn_free(sp);
        return dsn_error(DEISSN_E_NOMEM, "%s: out of memory for %u steps", fn, schedule->steps);
    }
    /* Casting away const only to count a reference: schedules and tables are immutable. */
    sp->schedule = (deissn_schedule *)schedule;
    dsn_ref(&sp->schedule->refs);
    if (table) {
        sp->table = (deissn_normtable *)table;
        dsn_ref(&sp->table->refs);
    }
    build_plan(sp);
    /* Degenerate input (alpha_bar below double precision's reach at a sampling time, times
     * closer than the quadrature can resolve) shows up here: refuse it rather than step
     * with Inf or NaN. */
    for (uint32_t i = 0; i < sp->steps; i++) {
        const dsn_step *st = &sp->plan[i];
        /* psi is 0 only for METHOD_DATA ending at tau = 0 (sigma_to = 0): x = x0 there; a
         * learned step's weights are the caller's, any finite value */
        int finite = isfinite(st->psi) &&
                     (st->psi > 0 || (st->data && st->tau_to == 0) || sp->weights);
        for (int j = 0; j <= DSN_MAX_DEPTH; j++)
            finite = finite && isfinite(st->c[j]) && isfinite(st->k[j]);
        /* x0 = (x - sigma eps) / alpha must stay a float for ordinary x and eps */
        if (finite && st->data && !(st->alpha >= 1e-30)) {
            int32_t rc = dsn_error(DEISSN_E_INVALID_ARG, "%s: DEISSN_METHOD_DATA: alpha is %.3g "
                                   "at step %u (tau %.17g), so the data prediction x0 = (x - "
                                   "sigma eps) / alpha overflows float", fn, st->alpha, i,
                                   st->tau_from);
            deissn_sampler_free(sp);
            return rc;
        }
        if (!finite) {
            int32_t rc = sp->weights
                ? dsn_error(DEISSN_E_INVALID_ARG, "%s: params->weights of step %u are not "
                            "finite", fn, i)
                : dsn_error(DEISSN_E_INVALID_ARG, "%s: the coefficients of step %u (tau "
                            "%.17g to %.17g) are not finite: alpha_bar is 0 there in "
                            "double precision, or the times are too close", fn, i,
                            st->tau_from, st->tau_to);
            deissn_sampler_free(sp);
            return rc;
        }
    }
    *out = sp;
    return DEISSN_OK;
}

void deissn_sampler_free(deissn_sampler *sp)
{
    if (!sp) return;
    for (int j = 0; j < MAX_HIST; j++) dsn_free(sp->hist[j]);
    dsn_free(sp->plan);
    dsn_free(sp->keep);
    dsn_free(sp->weights);
    deissn_schedule_free(sp->schedule);
    deissn_normtable_free(sp->table);
    dsn_free(sp);
}

uint32_t deissn_sampler_steps(const deissn_sampler *sp) { return sp ? sp->steps : 0; }

/* Write where the sampler stands into the caller's info (as far as its version goes). */
static void fill_info(const deissn_sampler *sp, deissn_step_info *out)
{
    const deissn_schedule *s = sp->schedule;
    deissn_step_info info = DEISSN_STEP_INFO_INIT;
    memset(&info, 0, sizeof info); /* padding too: callers may compare the bytes */
    info.step = sp->next;
    info.steps = sp->steps;
    info.tau = s->taus[sp->next];
    info.model_t = info.tau * s->T - 1;
    dsn_alpha_sigma(s, info.tau, &info.alpha, &info.sigma);
    dsn_write_versioned(out, &info, info_size, out->version);
}

int32_t deissn_sampler_next(const deissn_sampler *sp, deissn_step_info *info)
{
    const char *fn = "deissn_sampler_next";
    if (!sp || !info)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn, sp ? "info" : "sampler");
    int32_t rc = dsn_check_version(info->version, DEISSN_STEP_INFO_VERSION, fn, "info");
    if (rc) return rc;
    fill_info(sp, info);
    return sp->next >= sp->steps ? DEISSN_DONE : DEISSN_OK;
}

int32_t deissn_sampler_reset(deissn_sampler *sp)
{
    if (!sp) return dsn_error(DEISSN_E_INVALID_ARG, "deissn_sampler_reset: sampler is NULL");
    sp->next = 0;
    sp->numel = 0;
    return DEISSN_OK;
}

int32_t deissn_sampler_coeffs(const deissn_sampler *sp, uint32_t i, deissn_step_coeffs *out)
{
    const char *fn = "deissn_sampler_coeffs";
    if (!sp || !out)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn, sp ? "out" : "sampler");
    int32_t rc = dsn_check_version(out->version, DEISSN_STEP_COEFFS_VERSION, fn, "out");
    if (rc) return rc;
    if (i >= sp->steps)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: step %u >= steps %u", fn, i, sp->steps);
    const dsn_step *st = &sp->plan[i];
    deissn_step_coeffs c = DEISSN_STEP_COEFFS_INIT;
    memset(&c, 0, sizeof c); /* padding too */
    c.step = i;
    c.order = st->order;
    c.tau_from = st->tau_from;
    c.tau_to = st->tau_to;
    c.model_t = st->model_t;
    c.psi = st->psi;
    for (int j = 0; j < DEISSN_MAX_TERMS; j++) {
        c.c[j] = st->c[j];
        c.r[j] = st->r[j];
    }
    c.corrector_order = st->corrector_order;
    dsn_write_versioned(out, &c, coeffs_size, out->version);
    return DEISSN_OK;
}

const dsn_step *dsn_sampler_plan(const deissn_sampler *sp, uint32_t *n)
{
    *n = sp->steps;
    return sp->plan;
}

const deissn_schedule *dsn_sampler_schedule(const deissn_sampler *sp) { return sp->schedule; }

int32_t dsn_sampler_method(const deissn_sampler *sp) { return sp->params.method; }

void dsn_sampler_mark_done(deissn_sampler *sp) { sp->next = sp->steps; }


void dsn_history_coeffs(const dsn_step *st, int32_t prediction, double *a, double *b)
{
    double alpha = st->alpha, sigma = st->sigma;
    if (st->data) {
        switch (prediction) {
        case DEISSN_PREDICT_SAMPLE:
            *a = 0.0;
            *b = 1.0;
            break;
        case DEISSN_PREDICT_V: /* x0 = alpha x - sigma v */
            *a = alpha;
            *b = -sigma;
            break;
        default: /* x0 = (x - sigma eps) / alpha */
            *a = 1.0 / alpha;
            *b = -sigma / alpha;
            break;
        }
        return;
    }
    dsn_eps_coeffs(prediction, alpha, sigma, a, b);
}

void dsn_eps_coeffs(int32_t prediction, double alpha, double sigma, double *a, double *b)
{
    switch (prediction) {
    case DEISSN_PREDICT_SAMPLE: /* x = alpha x0 + sigma eps */
        *a = 1.0 / sigma;
        *b = -alpha / sigma;
        break;
    case DEISSN_PREDICT_V: /* v = alpha eps - sigma x0 */
        *a = sigma;
        *b = alpha;
        break;
    default:
        *a = 0.0;
        *b = 1.0;
        break;
    }
}

void dsn_update_coeffs(const dsn_step *st, int32_t prediction, dsn_update *u)
{
    memset(u, 0, sizeof *u);
    dsn_history_coeffs(st, prediction, &u->a, &u->b);
    u->cx = st->psi + st->k[0] * u->a;
    u->co = st->k[0] * u->b;
    for (int j = 0; j <= DSN_MAX_DEPTH; j++) u->k[j] = st->k[j];
    u->depth = st->depth;
}

void dsn_sampler_history(const deissn_sampler *sp, uint32_t *slots, const unsigned char **keep)
{
    *slots = sp->slots;
    *keep = sp->keep;
}

int32_t dsn_sampler_prediction(const deissn_sampler *sp) { return sp->params.prediction; }

int32_t deissn_step(deissn_sampler *sp, float *x, const float *model_out, size_t n,
                    deissn_step_info *info)
{
    const char *fn = "deissn_step";
    if (!sp) return dsn_error(DEISSN_E_INVALID_ARG, "%s: sampler is NULL", fn);
    if (!x || !model_out)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn, x ? "model_out" : "x");
    if (info) {
        int32_t rc = dsn_check_version(info->version, DEISSN_STEP_INFO_VERSION, fn, "info");
        if (rc) return rc;
    }
    if (sp->next >= sp->steps)
        return dsn_error(DEISSN_E_STATE, "%s: all %u steps are taken; call deissn_sampler_reset() "
                         "to sample a new batch", fn, sp->steps);
    if (n == 0) return dsn_error(DEISSN_E_SIZE, "%s: n is 0", fn);
    /* Before any pointer arithmetic on n: no object holds more bytes than PTRDIFF_MAX. */
    if (n > PTRDIFF_MAX / sizeof(float))
        return dsn_error(DEISSN_E_SIZE, "%s: n = %zu floats overflow a byte count", fn, n);
    if ((uintptr_t)x < (uintptr_t)(model_out + n) && (uintptr_t)model_out < (uintptr_t)(x + n))
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: x and model_out overlap; pass the model's "
                         "output in a buffer of its own", fn);
    if (sp->numel != 0 && n != sp->numel)
        return dsn_error(DEISSN_E_SIZE, "%s: n = %zu but this batch started with n = %zu (call "
                         "deissn_sampler_reset() for a new batch)", fn, n, sp->numel);

    const dsn_step *st = &sp->plan[sp->next];
    size_t bad = dsn_first_nonfinite(model_out, n);
    if (bad < n)
        return dsn_error(DEISSN_E_NONFINITE, "%s: model output has %s at element %zu (step %u, "
                         "tau %.6g); the state is unchanged", fn,
                         isnan(model_out[bad]) ? "NaN" : "Inf", bad, sp->next, st->tau_from);

    if (sp->numel == 0) {
        /* First step of a batch: make room for the history (kept across resets). */
        if (sp->slots > 0 && n > sp->hist_capacity) {
            size_t bytes;
            if (!dsn_mul_size(n, sizeof(float), &bytes))
                return dsn_error(DEISSN_E_SIZE, "%s: n = %zu overflows", fn, n);
            float *fresh[MAX_HIST] = {0};
            for (uint32_t j = 0; j < sp->slots; j++) {
                fresh[j] = dsn_malloc(bytes);
                if (!fresh[j]) {
                    for (uint32_t q = 0; q < j; q++) dsn_free(fresh[q]);
                    return dsn_error(DEISSN_E_NOMEM, "%s: out of memory for the eps history "
                                     "(%u x %zu floats)", fn, sp->slots, n);
                }
            }
            for (uint32_t j = 0; j < sp->slots; j++) {
                dsn_free(sp->hist[j]);
                sp->hist[j] = fresh[j];
            }
            sp->hist_capacity = n;
        }
        sp->numel = n;
    }

    uint32_t i = sp->next;
    dsn_update u;
    dsn_update_coeffs(st, sp->params.prediction, &u);
    u.x = x;
    u.out = model_out;
    for (uint32_t j = 1; j <= st->depth; j++) u.hist[j - 1] = sp->hist[(i - j) % sp->slots];
    u.save = sp->keep[i] ? sp->hist[i % sp->slots] : NULL;
    dsn_host_update(&u, n);

    sp->next++;
    if (info) fill_info(sp, info);
    return sp->next == sp->steps ? DEISSN_DONE : DEISSN_OK;
}
