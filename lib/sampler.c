/* sampler.c - the plan (coefficients of every step), the eps history and the fused step. */
#include "core.h"
#include "model.h"

#include <math.h>
#include <string.h>

#define MAX_ORDER 3

struct deissn_sampler {
    deissn_schedule *schedule; /* referenced */
    deissn_normtable *table;   /* referenced, or NULL */
    deissn_sampler_params params;
    uint32_t steps;
    dsn_step *plan;
    unsigned char *keep; /* keep[i]: a later step uses step i's eps */
    uint32_t slots;      /* history buffers: the largest order in the plan */
    float *hist[MAX_ORDER];
    size_t hist_capacity; /* floats per history buffer */
    size_t numel;         /* fixed by the first step after a reset; 0 before */
    uint32_t next;        /* the next step to take */
};

int32_t deissn_sampler_params_init(deissn_sampler_params *params)
{
    if (!params)
        return dsn_error(DEISSN_E_INVALID_ARG, "deissn_sampler_params_init: params is NULL");
    deissn_sampler_params d = DEISSN_SAMPLER_PARAMS_INIT;
    *params = d;
    return DEISSN_OK;
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

static void build_plan(deissn_sampler *sp)
{
    const deissn_schedule *s = sp->schedule;
    const double *taus = s->taus;
    uint32_t N = sp->steps;
    sp->slots = 0;
    for (uint32_t i = 0; i < N; i++) {
        dsn_step *st = &sp->plan[i];
        uint32_t p = sp->params.order < i ? sp->params.order : i;
        if (sp->params.lower_order_final && p > N - 1 - i) p = N - 1 - i;
        double nodes[4];
        for (uint32_t j = 0; j <= p; j++) nodes[j] = taus[i - j];
        memset(st, 0, sizeof *st);
        st->tau_from = taus[i];
        st->tau_to = taus[i + 1];
        st->model_t = taus[i] * s->T - 1;
        st->order = p;
        double alpha_to, sigma_to;
        dsn_alpha_sigma(s, st->tau_to, &alpha_to, &sigma_to);
        dsn_alpha_sigma(s, st->tau_from, &st->alpha, &st->sigma);
        st->psi = alpha_to / st->alpha;
        if (p == 0 && !sp->table) st->c[0] = ddim_coeff(s, st->tau_from, st->tau_to);
        else dsn_coeffs_quadrature(s, sp->table, st->tau_to, nodes, p, 8, st->c);
        for (uint32_t j = 0; j <= p; j++) {
            st->r[j] = sp->table ? deissn_normtable_eval(sp->table, nodes[j]) : 1.0;
            st->k[j] = st->c[j] / st->r[j];
        }
        if (p > sp->slots) sp->slots = p;
    }
    for (uint32_t i = 0; i < N; i++) {
        sp->keep[i] = 0;
        for (uint32_t later = i + 1; later < N && later <= i + MAX_ORDER; later++)
            if (sp->plan[later].order >= later - i) sp->keep[i] = 1;
    }
}

int32_t deissn_sampler_create(deissn_sampler **out, const deissn_schedule *schedule,
                              const deissn_normtable *table, const deissn_sampler_params *params)
{
    const char *fn = "deissn_sampler_create";
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!schedule) return dsn_error(DEISSN_E_INVALID_ARG, "%s: schedule is NULL", fn);
    deissn_sampler_params p = DEISSN_SAMPLER_PARAMS_INIT;
    if (params) {
        if (params->version != DEISSN_SAMPLER_PARAMS_VERSION)
            return dsn_error(DEISSN_E_INVALID_ARG, "%s: params->version %u is not %u (initialise "
                             "params with deissn_sampler_params_init)", fn, params->version,
                             DEISSN_SAMPLER_PARAMS_VERSION);
        p = *params;
    }
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
    if (!sp->plan || !sp->keep) {
        dsn_free(sp->plan);
        dsn_free(sp->keep);
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
        int finite = isfinite(st->psi) && st->psi > 0;
        for (int j = 0; j < 4; j++) finite = finite && isfinite(st->c[j]) && isfinite(st->k[j]);
        if (!finite) {
            int32_t rc = dsn_error(DEISSN_E_INVALID_ARG, "%s: the coefficients of step %u (tau "
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
    for (int j = 0; j < MAX_ORDER; j++) dsn_free(sp->hist[j]);
    dsn_free(sp->plan);
    dsn_free(sp->keep);
    deissn_schedule_free(sp->schedule);
    deissn_normtable_free(sp->table);
    dsn_free(sp);
}

uint32_t deissn_sampler_steps(const deissn_sampler *sp) { return sp ? sp->steps : 0; }

static void fill_info(const deissn_sampler *sp, deissn_step_info *info)
{
    const deissn_schedule *s = sp->schedule;
    info->step = sp->next;
    info->steps = sp->steps;
    info->tau = s->taus[sp->next];
    info->model_t = info->tau * s->T - 1;
    dsn_alpha_sigma(s, info->tau, &info->alpha, &info->sigma);
}

int32_t deissn_sampler_next(const deissn_sampler *sp, deissn_step_info *info)
{
    const char *fn = "deissn_sampler_next";
    if (!sp || !info)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn, sp ? "info" : "sampler");
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
    if (i >= sp->steps)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: step %u >= steps %u", fn, i, sp->steps);
    const dsn_step *st = &sp->plan[i];
    out->step = i;
    out->order = st->order;
    out->tau_from = st->tau_from;
    out->tau_to = st->tau_to;
    out->model_t = st->model_t;
    out->psi = st->psi;
    for (int j = 0; j < 4; j++) {
        out->c[j] = st->c[j];
        out->r[j] = st->r[j];
    }
    return DEISSN_OK;
}

const dsn_step *dsn_sampler_plan(const deissn_sampler *sp, uint32_t *n)
{
    *n = sp->steps;
    return sp->plan;
}

const deissn_schedule *dsn_sampler_schedule(const deissn_sampler *sp) { return sp->schedule; }

void dsn_sampler_mark_done(deissn_sampler *sp) { sp->next = sp->steps; }

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

/* ---- the fused update -------------------------------------------------------------------
 * One pass over memory:  e = a x + b out;  x = cx x + co out + k1 h1 + k2 h2 + k3 h3;  save = e
 * (cx = psi + k0 a, co = k0 b). It runs in blocks that fit in L1 so that e can be staged in
 * a local buffer: `save` may be the oldest history buffer that this very step reads. */

#define BLOCK 1024

typedef struct {
    double a, b, cx, co, k[MAX_ORDER + 1];
} kcoef;

/* Built for AVX2 too where the compiler supports function multiversioning; the loader picks
 * the variant the CPU runs. Not under ThreadSanitizer: the loader calls the (instrumented)
 * ifunc resolver before the TSan runtime is up, which crashes every program at startup. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
__attribute__((target_clones("avx2", "default")))
#endif
static void block_update(size_t m, float *restrict x, const float *restrict out,
                         const float *restrict h1, const float *restrict h2,
                         const float *restrict h3, float *restrict e, const kcoef *kc, uint32_t p)
{
    const double a = kc->a, b = kc->b, cx = kc->cx, co = kc->co;
    const double k1 = kc->k[1], k2 = kc->k[2], k3 = kc->k[3];
    /* e == NULL: the output is eps itself and the caller keeps it as it is. Arithmetic is
     * in double: in float32 the cancellation between psi x and C eps (5.7 x - 4.7 eps on
     * the first step) costs 1e-6 of the trajectory. */
#define KERNEL(HISTORY)                                                                        \
    do {                                                                                       \
        if (e) {                                                                               \
            for (size_t i = 0; i < m; i++) {                                                   \
                double xi = x[i], oi = out[i];                                                 \
                e[i] = (float)(a * xi + b * oi);                                               \
                x[i] = (float)(cx * xi + co * oi HISTORY);                                     \
            }                                                                                  \
        } else {                                                                               \
            for (size_t i = 0; i < m; i++) {                                                   \
                double xi = x[i], oi = out[i];                                                 \
                x[i] = (float)(cx * xi + co * oi HISTORY);                                     \
            }                                                                                  \
        }                                                                                      \
    } while (0)
    switch (p) {
    case 0: KERNEL(); break;
    case 1: KERNEL(+k1 * h1[i]); break;
    case 2: KERNEL(+k1 * h1[i] + k2 * h2[i]); break;
    default: KERNEL(+k1 * h1[i] + k2 * h2[i] + k3 * h3[i]); break;
    }
#undef KERNEL
}

/* Index of the first non-finite value of v[0..n), or n. Works on the exponent bits, which
 * vectorises (a float comparison reduction would not, without -ffast-math). */
static size_t first_nonfinite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i += BLOCK) {
        size_t m = n - i < BLOCK ? n - i : BLOCK;
        uint32_t bad = 0;
        for (size_t j = 0; j < m; j++) {
            uint32_t bits;
            memcpy(&bits, &v[i + j], 4);
            bad |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
        }
        if (bad) {
            for (size_t j = 0; j < m; j++)
                if (!isfinite(v[i + j])) return i + j;
        }
    }
    return n;
}

int32_t deissn_step(deissn_sampler *sp, float *x, const float *model_out, size_t n,
                    int32_t prediction, deissn_step_info *info)
{
    return dsn_step_eps(sp, x, model_out, n, prediction, info, NULL);
}

int32_t dsn_step_eps(deissn_sampler *sp, float *x, const float *model_out, size_t n,
                     int32_t prediction, deissn_step_info *info, float *eps_out)
{
    const char *fn = "deissn_step";
    if (!sp) return dsn_error(DEISSN_E_INVALID_ARG, "%s: sampler is NULL", fn);
    if (!x || !model_out)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn, x ? "model_out" : "x");
    if (prediction < DEISSN_PREDICT_EPSILON || prediction > DEISSN_PREDICT_V)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: unknown prediction type %d", fn, (int)prediction);
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
    size_t bad = first_nonfinite(model_out, n);
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
            float *fresh[MAX_ORDER] = {0};
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

    uint32_t i = sp->next, p = st->order;
    kcoef kc;
    dsn_eps_coeffs(prediction, st->alpha, st->sigma, &kc.a, &kc.b);
    kc.cx = st->psi + st->k[0] * kc.a;
    kc.co = st->k[0] * kc.b;
    for (int j = 0; j <= MAX_ORDER; j++) kc.k[j] = st->k[j];
    const float *h[MAX_ORDER] = {NULL, NULL, NULL};
    for (uint32_t j = 1; j <= p; j++) h[j - 1] = sp->hist[(i - j) % sp->slots];
    float *save = sp->keep[i] ? sp->hist[i % sp->slots] : NULL;

    /* For eps predictions the history keeps the model output itself. */
    int eps_direct = prediction == DEISSN_PREDICT_EPSILON;
    float e[BLOCK];
    for (size_t off = 0; off < n; off += BLOCK) {
        size_t m = n - off < BLOCK ? n - off : BLOCK;
        block_update(m, x + off, model_out + off, h[0] ? h[0] + off : NULL,
                     h[1] ? h[1] + off : NULL, h[2] ? h[2] + off : NULL, eps_direct ? NULL : e,
                     &kc, p);
        if (save) memcpy(save + off, eps_direct ? model_out + off : e, m * sizeof(float));
        if (eps_out) memcpy(eps_out + off, eps_direct ? model_out + off : e, m * sizeof(float));
    }

    sp->next++;
    if (info) fill_info(sp, info);
    return sp->next == sp->steps ? DEISSN_DONE : DEISSN_OK;
}
