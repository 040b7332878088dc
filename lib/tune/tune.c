/* tune.c - the tuned-plan search (tune.h has the algorithm). Uses the public API only. */
#include "tune/tune.h"

#include "base/base.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FN "dsn_tune_search"
#define MAX_W (2 * DEISSN_MAX_TERMS + 4) /* basis vectors one step's error touches */

typedef struct variant {
    int32_t method;
    uint32_t use_table, corrector, order, lof;
    uint32_t end; /* 0: tau_end = 0 (node M); 1: tau_end = taus[M-1] (node M-1) */
} variant;

/* One candidate plan: grid nodes (or explicit times for a preset), its variant, its scores. */
typedef struct cand {
    variant v;
    uint32_t nodes[DSN_TUNE_MAX_NFE];
    double taus[DSN_TUNE_MAX_NFE];
    double tau_end;
    uint32_t start; /* dsn_tune_start */
    int refined;
    double surrogate, sel_rmse, fit_rmse;
    double w[DSN_TUNE_MAX_NFE][DEISSN_PLAN_WEIGHTS]; /* METHOD_LEARNED: the weights */
} cand;

typedef struct ctx {
    const dsn_tune_reference *ref;
    const dsn_tune_params *par;
    const deissn_schedule_params *noise;
    const deissn_normtable *table;
    const deissn_schedule *sched; /* the noise schedule, for alpha_bar */
    size_t M, K, D, nb;   /* nb = 2M + 1 basis vectors: x_0..x_M, then eps_0..eps_{M-1} */
    const double *G;      /* nb x nb over the searching trajectories (ref->gram) */
    double *alpha, *sigma, *node_tau; /* at nodes 0..M (node M: tau = 0) */
    double n_values;      /* nchoose * D */
    size_t nchoose;       /* fit trajectories 0..nchoose-1 choose; nchoose..n_fit-1 confirm */
    float *x, *e;         /* work buffers: K * D */
    float *hist;          /* the learned fit's eps history: HIST x n_choose x D */
    float *target;        /* its interpolated reference: n_choose x D */
    uint64_t evals;
    int32_t failed;       /* a failure other than a refused plan (no memory), and its message:
                             it ends the search, whatever the candidate's score */
    char failed_message[512];
} ctx;

/* ---- the Gram matrix and the teacher-forced local errors -------------------------------- */

typedef struct wvec {
    size_t n;
    size_t idx[MAX_W];
    double w[MAX_W];
} wvec;

static void wadd(wvec *v, size_t b, double w)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->idx[i] == b) {
            v->w[i] += w;
            return;
        }
    v->idx[v->n] = b;
    v->w[v->n++] = w;
}

static double wrms(const ctx *c, const wvec *v)
{
    double q = 0;
    for (size_t i = 0; i < v->n; i++)
        for (size_t j = 0; j < v->n; j++) q += v->w[i] * v->w[j] * c->G[v->idx[i] * c->nb + v->idx[j]];
    return sqrt(q > 0 ? q / c->n_values : 0);
}

/* ---- plans through the public API -------------------------------------------------------- */

/* A plan the library refuses (times too close: DEISSN_E_INVALID_ARG) is not a candidate;
 * any other failure of make_sampler() is kept in c->failed and ends the search. */
static void note_failure(ctx *c, int32_t rc)
{
    if (rc == DEISSN_E_INVALID_ARG || c->failed) return;
    c->failed = rc;
    snprintf(c->failed_message, sizeof c->failed_message, "%s", deissn_last_error());
}

static int32_t make_sampler(ctx *c, const cand *p, uint32_t nfe, deissn_sampler **out)
{
    deissn_schedule_params sp = *c->noise;
    sp.spacing = DEISSN_SPACING_CUSTOM;
    sp.steps = nfe;
    sp.custom_taus = p->taus;
    sp.tau_end = p->tau_end;
    deissn_schedule *s = NULL;
    int32_t rc = deissn_schedule_create(&s, &sp);
    if (rc != DEISSN_OK) {
        note_failure(c, rc);
        return rc;
    }
    deissn_sampler_params mp;
    deissn_sampler_params_init(&mp, DEISSN_SAMPLER_PARAMS_VERSION);
    mp.order = p->v.order;
    mp.lower_order_final = p->v.lof;
    mp.method = p->v.method;
    mp.corrector = p->v.corrector;
    mp.allow_table_mismatch = 1; /* the caller vouches for its table */
    if (p->v.method == DEISSN_METHOD_LEARNED) mp.weights = &p->w[0][0];
    rc = deissn_sampler_create(out, s, p->v.use_table ? c->table : NULL, &mp);
    deissn_schedule_free(s);
    if (rc != DEISSN_OK) note_failure(c, rc);
    return rc;
}

static void set_times(const ctx *c, cand *p, uint32_t nfe)
{
    for (uint32_t i = 0; i < nfe; i++) p->taus[i] = c->node_tau[p->nodes[i]];
    p->tau_end = p->v.end ? c->node_tau[c->M - 1] : 0.0;
}

/* The surrogate: the sum over the plan's steps of the local RMSE of its actual step from the
 * true state, with the true data at its earlier nodes. INFINITY for a plan the library
 * refuses (times too close). */
static double surrogate(ctx *c, cand *p, uint32_t nfe)
{
    set_times(c, p, nfe);
    deissn_sampler *smp = NULL;
    if (make_sampler(c, p, nfe, &smp) != DEISSN_OK) return INFINITY;
    size_t M = c->M, end = p->v.end ? M - 1 : M;
    double tot = 0;
    for (uint32_t i = 0; i < nfe; i++) {
        deissn_step_coeffs co = DEISSN_STEP_COEFFS_INIT;
        deissn_sampler_coeffs(smp, i, &co);
        size_t from = p->nodes[i], to = i + 1 < nfe ? p->nodes[i + 1] : end;
        wvec v = {0};
        wadd(&v, from, co.psi);
        wadd(&v, to, -1.0);
        for (uint32_t j = 0; j < DEISSN_MAX_TERMS && j <= i; j++) {
            if (co.c[j] == 0) continue;
            size_t nd = p->nodes[i - j];
            if (p->v.method == DEISSN_METHOD_EPS) {
                wadd(&v, M + 1 + nd, co.c[j] / co.r[j]);
            } else { /* x0 = (x - sigma eps) / alpha */
                wadd(&v, nd, co.c[j] / c->alpha[nd]);
                wadd(&v, M + 1 + nd, -co.c[j] * c->sigma[nd] / c->alpha[nd]);
            }
        }
        tot += wrms(c, &v);
    }
    deissn_sampler_free(smp);
    return tot;
}

/* RMSE of a real run of plan p on trajectories [k0, k0 + n) against the reference at its end;
 * per_traj (may be NULL) receives each trajectory's mean squared error. */
static int32_t true_rmse_each(ctx *c, const cand *p, uint32_t nfe, size_t k0, size_t n,
                              double *out, double *per_traj)
{
    deissn_sampler *smp = NULL;
    int32_t rc = make_sampler(c, p, nfe, &smp);
    if (rc != DEISSN_OK) {
        *out = INFINITY;
        for (size_t k = 0; per_traj && k < n; k++) per_traj[k] = INFINITY;
        return DEISSN_OK; /* a plan the library refuses is not a candidate */
    }
    size_t D = c->D, nv = n * D;
    memcpy(c->x, c->ref->start + k0 * D, nv * sizeof(float));
    deissn_step_info info = DEISSN_STEP_INFO_INIT;
    rc = deissn_sampler_next(smp, &info);
    while (rc == DEISSN_OK) {
        int cb = c->par->eval(c->par->user, c->x, n, D, info.tau, c->e);
        c->evals += n;
        if (cb != 0) {
            deissn_sampler_free(smp);
            return dsn_error(DEISSN_E_CALLBACK, "%s: params->eval returned %d at tau %.17g", FN,
                             cb, info.tau);
        }
        rc = deissn_step(smp, c->x, c->e, nv, &info);
    }
    deissn_sampler_free(smp);
    if (rc != DEISSN_DONE) return rc; /* deissn_step left the message */
    const float *want = (p->v.end ? c->ref->last : c->ref->end) + k0 * D;
    double s = 0;
    for (size_t k = 0; k < n; k++) {
        double sk = 0;
        for (size_t i = k * D; i < (k + 1) * D; i++) {
            double d = (double)c->x[i] - (double)want[i];
            sk += d * d;
        }
        if (per_traj) per_traj[k] = sk / (double)D;
        s += sk;
    }
    *out = sqrt(s / (double)nv);
    return DEISSN_OK;
}

static int32_t true_rmse(ctx *c, const cand *p, uint32_t nfe, size_t k0, size_t n, double *out)
{
    return true_rmse_each(c, p, nfe, k0, n, out, NULL);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The 95 % bootstrap interval of the RMSE over n trajectories with mean squared errors mse[]:
 * 2000 resamples with replacement, a fixed generator (the same input gives the same bits). */
static void bootstrap(const double *mse, size_t n, double *low, double *high)
{
    enum { R = 2000 };
    double rmse[R];
    uint64_t g = 0x9e3779b97f4a7c15ull;
    for (int r = 0; r < R; r++) {
        double s = 0;
        for (size_t k = 0; k < n; k++) {
            g ^= g << 13, g ^= g >> 7, g ^= g << 17;
            s += mse[g % n];
        }
        rmse[r] = sqrt(s / (double)n);
    }
    qsort(rmse, R, sizeof rmse[0], cmp_double);
    *low = rmse[(int)(0.025 * R)];
    *high = rmse[(int)(0.975 * R) - 1];
}

/* ---- DP and coordinate descent ------------------------------------------------------------ */

static double ddim_cost(const ctx *c, size_t i, size_t k)
{
    double p = c->alpha[k] / c->alpha[i], q = c->sigma[k] - p * c->sigma[i];
    wvec v = {0};
    wadd(&v, i, p);
    wadd(&v, c->M + 1 + i, q);
    wadd(&v, k, -1.0);
    return wrms(c, &v);
}

/* The nfe nodes 0 = n_0 < ... < n_{nfe-1} < end with the lowest sum of DDIM costs. */
static int32_t dp(const ctx *c, const double *cost, uint32_t nfe, size_t end, uint32_t *nodes)
{
    size_t S = c->M + 1;
    double *D = dsn_malloc((size_t)(nfe + 1) * S * sizeof(double));
    uint32_t *arg = dsn_malloc((size_t)(nfe + 1) * S * sizeof(uint32_t));
    if (!D || !arg) {
        dsn_free(D);
        dsn_free(arg);
        return dsn_error(DEISSN_E_NOMEM, "%s: no memory for the DP", FN);
    }
    for (size_t k = 0; k < S; k++) D[k] = k == 0 ? 0.0 : INFINITY;
    for (uint32_t n = 1; n <= nfe; n++)
        for (size_t k = 0; k < S; k++) {
            double best = INFINITY;
            uint32_t bi = 0;
            for (size_t i = 0; i < k; i++) {
                double v = D[(n - 1) * S + i] + cost[i * S + k];
                if (v < best) {
                    best = v;
                    bi = (uint32_t)i;
                }
            }
            D[n * S + k] = best;
            arg[n * S + k] = bi;
        }
    size_t at = end;
    for (uint32_t n = nfe; n >= 1; n--) {
        at = arg[n * S + at];
        nodes[n - 1] = (uint32_t)at;
    }
    dsn_free(D);
    dsn_free(arg);
    return DEISSN_OK;
}

static void descend(ctx *c, cand *p, uint32_t nfe)
{
    size_t end = p->v.end ? c->M - 1 : c->M;
    p->surrogate = surrogate(c, p, nfe);
    uint32_t step = (uint32_t)(c->M / (4 * (size_t)nfe));
    if (step < 1) step = 1;
    for (;;) {
        for (int sweep = 0; sweep < 4; sweep++) {
            int improved = 0;
            for (uint32_t i = 1; i < nfe; i++) {
                uint32_t lo = p->nodes[i - 1] + 1;
                uint32_t hi = (uint32_t)(i + 1 < nfe ? p->nodes[i + 1] : end) - 1;
                uint32_t orig = p->nodes[i];
                uint32_t tries[2] = {orig >= step ? orig - step : 0, orig + step};
                for (int t = 0; t < 2; t++) {
                    uint32_t cnd = tries[t];
                    if ((t == 0 && orig < step) || cnd < lo || cnd > hi) continue;
                    uint32_t keep = p->nodes[i];
                    p->nodes[i] = cnd;
                    double v = surrogate(c, p, nfe);
                    if (v < p->surrogate) {
                        p->surrogate = v;
                        improved = 1;
                    } else {
                        p->nodes[i] = keep;
                    }
                }
            }
            if (!improved) break;
        }
        if (step == 1) break;
        step /= 2;
    }
    set_times(c, p, nfe);
}

static double lambda_of(const ctx *c, double tau);
static double tau_of_lambda(const ctx *c, double lam);

/* Times of a named grid from the first grid time t0 to the last, tau_last, ending there:
 * g = 0: uniform in tau, 1: power 1.5 in tau, 2: uniform in lambda. */
static void named_times(const ctx *c, int g, uint32_t nfe, cand *p)
{
    double t0 = c->node_tau[0], tl = c->node_tau[c->M - 1];
    double l0 = lambda_of(c, t0), l1 = lambda_of(c, tl);
    for (uint32_t i = 0; i < nfe; i++) {
        double u = (double)(nfe - i) / nfe; /* 1 .. 1/N */
        p->taus[i] = g == 2 ? tau_of_lambda(c, l1 + u * (l0 - l1))
                            : tl + (t0 - tl) * (g == 1 ? pow(u, 1.5) : u);
    }
    p->taus[0] = t0;
    p->tau_end = tl;
}

/* BEST's configuration as a candidate, when its end is one of the two ends. */
static int preset_cand(ctx *c, uint32_t nfe, cand *p)
{
    deissn_schedule_params sp = *c->noise;
    deissn_sampler_params mp;
    deissn_sampler_params_init(&mp, DEISSN_SAMPLER_PARAMS_VERSION);
    if (deissn_preset_params(DEISSN_PRESET_BEST, nfe, NULL, &sp, &mp, NULL) != DEISSN_OK) return 0;
    deissn_schedule *s = NULL;
    int32_t rc = deissn_schedule_create(&s, &sp);
    if (rc != DEISSN_OK) {
        note_failure(c, rc);
        return 0;
    }
    double t[DSN_TUNE_MAX_NFE + 1];
    deissn_schedule_times(s, t, nfe + 1);
    deissn_schedule_free(s);
    memset(p, 0, sizeof *p);
    if (t[nfe] == 0.0) p->v.end = 0;
    else if (fabs(t[nfe] - c->node_tau[c->M - 1]) <= 1e-12) p->v.end = 1;
    else return 0;
    memcpy(p->taus, t, nfe * sizeof(double));
    p->tau_end = t[nfe];
    p->v.method = mp.method;
    p->v.use_table = mp.method == DEISSN_METHOD_EPS && c->table != NULL;
    p->v.corrector = mp.corrector;
    p->v.order = mp.order;
    p->v.lof = mp.lower_order_final;
    p->start = DSN_TUNE_START_PRESET;
    p->surrogate = NAN;
    return 1;
}

/* ---- refinement on the true error -------------------------------------------------------- */

static double lambda_of(const ctx *c, double tau)
{
    double ab = deissn_schedule_alpha_bar(c->sched, tau);
    return 0.5 * (log(ab) - log1p(-ab));
}

/* The tau in (0, 1] with lambda_of(tau) = lam (alpha_bar is decreasing: bisection). */
static double tau_of_lambda(const ctx *c, double lam)
{
    double lo = 0.0, hi = 1.0;
    for (int i = 0; i < 100; i++) {
        double mid = 0.5 * (lo + hi);
        if (lambda_of(c, mid) > lam) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* Coordinate descent of tau_{N-1}..tau_1 (tau_N stays at the start) on the true RMSE over
 * the first n trajectories: each time moves a fraction f (0.25, then 0.08) of the way to a
 * neighbour in lambda (the last one's later neighbour: tau_end, or for tau_end = 0 a virtual
 * node one lambda gap beyond), the earlier neighbour tried first; the first move that lowers
 * the error is kept; one sweep per f. p->sel_rmse holds the error of p->taus on return. */
static int32_t refine(ctx *c, cand *p, uint32_t nfe, size_t n)
{
    static const double fracs[2] = {0.25, 0.08};
    int32_t rc = true_rmse(c, p, nfe, 0, n, &p->sel_rmse);
    if (rc != DEISSN_OK) return rc;
    for (int fi = 0; fi < 2; fi++)
        for (uint32_t i = 1; i < nfe; i++) {
            double li = lambda_of(c, p->taus[i]), lprev = lambda_of(c, p->taus[i - 1]), lnext;
            if (i + 1 < nfe) lnext = lambda_of(c, p->taus[i + 1]);
            else if (p->tau_end > 0) lnext = lambda_of(c, p->tau_end);
            else lnext = li + (li - lprev);
            const double targets[2] = {lprev, lnext};
            for (int t = 0; t < 2; t++) {
                double keep = p->taus[i], v;
                double tau = tau_of_lambda(c, li + fracs[fi] * (targets[t] - li));
                double later = i + 1 < nfe ? p->taus[i + 1] : p->tau_end;
                if (!(tau < p->taus[i - 1] && tau > later)) continue;
                p->taus[i] = tau;
                rc = true_rmse(c, p, nfe, 0, n, &v);
                if (rc != DEISSN_OK) return rc;
                if (v < p->sel_rmse) {
                    p->sel_rmse = v;
                    break;
                }
                p->taus[i] = keep;
            }
        }
    return DEISSN_OK;
}

/* ---- learned plans -------------------------------------------------------------------------- */

#define HIST (DEISSN_PLAN_WEIGHTS - 1) /* eps terms of a learned step */

/* Solve the m x m system A w = g (A symmetric positive semi-definite, destroyed) by Cholesky,
 * with a ridge of 1e-10 of each diagonal entry for the nearly collinear bases (consecutive
 * eps are). 0 when A is not positive definite even so. */
static int solve_spd(double *A, double *g, size_t m, double *w)
{
    for (size_t a = 0; a < m; a++) A[a * m + a] *= 1 + 1e-10;
    for (size_t j = 0; j < m; j++) {
        double d = A[j * m + j];
        for (size_t k = 0; k < j; k++) d -= A[j * m + k] * A[j * m + k];
        if (!(d > 0)) return 0;
        A[j * m + j] = sqrt(d);
        for (size_t i = j + 1; i < m; i++) {
            double v = A[i * m + j];
            for (size_t k = 0; k < j; k++) v -= A[i * m + k] * A[j * m + k];
            A[i * m + j] = v / A[j * m + j];
        }
    }
    for (size_t i = 0; i < m; i++) { /* L y = g, then L^T w = y */
        double v = g[i];
        for (size_t k = 0; k < i; k++) v -= A[i * m + k] * w[k];
        w[i] = v / A[i * m + i];
    }
    for (size_t i = m; i-- > 0;) {
        double v = w[i];
        for (size_t k = i + 1; k < m; k++) v -= A[k * m + i] * w[k];
        w[i] = v / A[i * m + i];
    }
    for (size_t i = 0; i < m; i++)
        if (!isfinite(w[i])) return 0;
    return 1;
}

static double dot(const float *u, const float *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)u[i] * (double)v[i];
    return s;
}

/* The reference at time t of the searching trajectories, into out (n_choose x D): the path
 * at a recorded time, else the cubic through the four recorded times around t (Lagrange in
 * tau; the recorded times are dense enough that this is far below a plan's own errors). */
static const float *path_at(const ctx *c, double t, float *out)
{
    size_t M = c->M, nv = c->nchoose * c->D;
    for (size_t m = 0; m <= M; m++)
        if (c->node_tau[m] == t) return c->ref->path + m * nv;
    size_t m = 0; /* node_tau[m] > t > node_tau[m + 1] */
    while (m + 1 < M && !(c->node_tau[m + 1] < t)) m++;
    size_t lo = m > 0 ? m - 1 : 0;
    if (lo + 3 > M) lo = M - 3;
    double w[4];
    for (int a = 0; a < 4; a++) {
        w[a] = 1;
        for (int b = 0; b < 4; b++)
            if (b != a)
                w[a] *= (t - c->node_tau[lo + b]) / (c->node_tau[lo + a] - c->node_tau[lo + b]);
    }
    const float *v[4];
    for (int a = 0; a < 4; a++) v[a] = c->ref->path + (lo + a) * nv;
    for (size_t k = 0; k < nv; k++)
        out[k] = (float)(w[0] * v[0][k] + w[1] * v[1][k] + w[2] * v[2][k] + w[3] * v[3][k]);
    return out;
}

/* Fit p's learned weights on p's times (p->taus from tau = 1, p->tau_end) by a rollout on the
 * searching trajectories: step i's weights minimise the squared error, to the reference at
 * the step's end, of x_next = w0 x + sum_j w_{1+j} eps_{i-j} computed from the states the
 * learned steps before it made. *fit_rmse: the rollout's RMSE at the end (INFINITY when a
 * system is singular). */
static int32_t fit_learned(ctx *c, cand *p, uint32_t nfe, double *fit_rmse)
{
    size_t n = c->nchoose, D = c->D, nv = n * D;
    float *x = c->x;
    memcpy(x, c->ref->start, nv * sizeof(float));
    memset(p->w, 0, sizeof p->w);
    *fit_rmse = INFINITY;
    for (uint32_t i = 0; i < nfe; i++) {
        float *e = c->hist + (size_t)(i % HIST) * nv;
        int cb = c->par->eval(c->par->user, x, n, D, p->taus[i], e);
        c->evals += n;
        if (cb != 0)
            return dsn_error(DEISSN_E_CALLBACK, "%s: params->eval returned %d at tau %.17g", FN,
                             cb, p->taus[i]);
        const float *y = path_at(c, i + 1 < nfe ? p->taus[i + 1] : p->tau_end, c->target);
        const float *basis[DEISSN_PLAN_WEIGHTS];
        size_t m = 1 + (i + 1 < HIST ? i + 1 : HIST);
        basis[0] = x;
        for (size_t j = 1; j < m; j++) basis[j] = c->hist + (size_t)((i + 1 - j) % HIST) * nv;
        double wts[DEISSN_PLAN_WEIGHTS];
        for (;; m--) { /* drop the oldest eps while the system is singular */
            double A[DEISSN_PLAN_WEIGHTS * DEISSN_PLAN_WEIGHTS], g[DEISSN_PLAN_WEIGHTS];
            for (size_t a = 0; a < m; a++) {
                g[a] = dot(basis[a], y, nv);
                for (size_t b = a; b < m; b++)
                    A[a * m + b] = A[b * m + a] = dot(basis[a], basis[b], nv);
            }
            if (solve_spd(A, g, m, wts)) break;
            if (m == 1) return DEISSN_OK; /* not even x alone: no learned plan here */
        }
        for (size_t a = 0; a < m; a++) p->w[i][a] = wts[a];
        for (size_t k = 0; k < nv; k++) { /* the step, in double and rounded once, as the kernel */
            double v = 0;
            for (size_t a = 0; a < m; a++) v += wts[a] * (double)basis[a][k];
            x[k] = (float)v;
        }
    }
    const float *y = path_at(c, p->tau_end, c->target);
    double se = 0;
    for (size_t k = 0; k < nv; k++) se += ((double)x[k] - y[k]) * ((double)x[k] - y[k]);
    *fit_rmse = sqrt(se / (double)nv);
    return DEISSN_OK;
}

/* ---- the search --------------------------------------------------------------------------- */

static int32_t check_args(dsn_tune_plan *plans, size_t capacity,
                          const deissn_schedule_params *noise, const dsn_tune_reference *ref,
                          const dsn_tune_params *par)
{
    if (!plans) return dsn_error(DEISSN_E_INVALID_ARG, "%s: plans is NULL", FN);
    if (!noise) return dsn_error(DEISSN_E_INVALID_ARG, "%s: noise is NULL", FN);
    if (!ref) return dsn_error(DEISSN_E_INVALID_ARG, "%s: ref is NULL", FN);
    if (!par) return dsn_error(DEISSN_E_INVALID_ARG, "%s: params is NULL", FN);
    if (!par->eval) return dsn_error(DEISSN_E_INVALID_ARG, "%s: params->eval is NULL", FN);
    if (!ref->taus || !ref->start || !ref->last || !ref->end || !ref->gram || !ref->path)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: ref->%s is NULL", FN,
                         !ref->taus ? "taus" : !ref->start ? "start" : !ref->last ? "last"
                         : !ref->end ? "end" : !ref->gram ? "gram" : "path");
    if (ref->n_times < 3)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: ref->n_times %zu is below 3", FN,
                         ref->n_times);
    if (ref->sample_numel == 0)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: ref->sample_numel is 0", FN);
    if (ref->n_fit == 0 || ref->n_fit > ref->n_traj)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: ref->n_fit %zu must be in 1..n_traj (%zu)",
                         FN, ref->n_fit, ref->n_traj);
    if (ref->n_choose == 0 || ref->n_choose > ref->n_fit)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: ref->n_choose %zu must be in 1..n_fit (%zu)",
                         FN, ref->n_choose, ref->n_fit);
    for (size_t m = 0; m < ref->n_times; m++) {
        double t = ref->taus[m];
        if (!(t > 0 && t <= 1) || (m > 0 && !(t < ref->taus[m - 1])))
            return dsn_error(DEISSN_E_INVALID_ARG, "%s: ref->taus[%zu] = %.17g: the times must "
                             "be strictly decreasing in (0, 1]", FN, m, t);
    }
    if (par->nfe_min < 2 || par->nfe_min > par->nfe_max || par->nfe_max > DSN_TUNE_MAX_NFE ||
        par->nfe_max + 2 > ref->n_times)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: NFE range %u..%u must satisfy 2 <= min <= "
                         "max <= %d and max <= n_times - 2 (%zu)", FN, par->nfe_min,
                         par->nfe_max, DSN_TUNE_MAX_NFE, ref->n_times - 2);
    if (par->top == 0) return dsn_error(DEISSN_E_INVALID_ARG, "%s: params->top is 0", FN);
    if (capacity < (size_t)(par->nfe_max - par->nfe_min + 1))
        return dsn_error(DEISSN_E_SIZE, "%s: capacity %zu is below the %u plans of NFE %u..%u",
                         FN, capacity, par->nfe_max - par->nfe_min + 1, par->nfe_min,
                         par->nfe_max);
    size_t t;
    if (!dsn_mul_size(ref->n_traj, ref->sample_numel, &t) || !dsn_mul_size(t, sizeof(float), &t))
        return dsn_error(DEISSN_E_SIZE, "%s: n_traj x sample_numel overflows", FN);
    return DEISSN_OK;
}

static int cand_cmp(const cand *a, const cand *b, int by_fit)
{
    double x = by_fit ? a->fit_rmse : a->sel_rmse, y = by_fit ? b->fit_rmse : b->sel_rmse;
    return x < y; /* strict: ties keep the earlier (stable) */
}

static int32_t search_one(ctx *c, uint32_t nfe, const double *cost, cand *cands, size_t ncap,
                          dsn_tune_plan *out)
{
    const dsn_tune_params *par = c->par;
    size_t nfit = c->nchoose, nconfirm = c->ref->n_fit - c->nchoose;
    size_t nsel = par->n_select == 0 || par->n_select > nfit ? nfit : par->n_select;
    uint64_t evals0 = c->evals;
    size_t n = 0;
    int32_t rc;
    for (uint32_t end = 0; end < 2; end++) {
        uint32_t init[DSN_TUNE_MAX_NFE];
        rc = dp(c, cost, nfe, end ? c->M - 1 : c->M, init);
        if (rc != DEISSN_OK) return rc;
        for (int m = 0; m < 4; m++) {
            if (m == 0 && !c->table) continue;
            for (uint32_t order = 1; order <= 3; order++)
                for (uint32_t lof = 0; lof < 2; lof++) {
                    cand *p = &cands[n++];
                    memset(p, 0, sizeof *p);
                    p->v.method = m < 2 ? DEISSN_METHOD_EPS : DEISSN_METHOD_DATA;
                    p->v.use_table = m == 0;
                    p->v.corrector = m == 3;
                    p->v.order = order;
                    p->v.lof = lof;
                    p->v.end = end;
                    memcpy(p->nodes, init, nfe * sizeof(uint32_t));
                    descend(c, p, nfe);
                    if (isfinite(p->surrogate)) {
                        rc = true_rmse(c, p, nfe, 0, nsel, &p->sel_rmse);
                        if (rc != DEISSN_OK) return rc;
                    } else {
                        p->sel_rmse = INFINITY;
                    }
                }
        }
    }
    /* the peers' grids to the grid's last time (uniform in tau, power 1.5 in tau, uniform in
     * lambda: DPM-Solver's time_uniform and logSNR) with the x0 methods, order 2 and 3,
     * lower_order_final: starts the refinement may do better from than the grid's */
    for (int g = 0; g < 3; g++)
        for (int corr = 0; corr < 2; corr++)
            for (uint32_t order = 2; order <= 3; order++) {
                cand *p = &cands[n++];
                memset(p, 0, sizeof *p);
                p->v = (variant){DEISSN_METHOD_DATA, 0, (uint32_t)corr, order, 1, 1};
                named_times(c, g, nfe, p);
                p->start = DSN_TUNE_START_UNIFORM + (uint32_t)g;
                p->surrogate = NAN;
                rc = true_rmse(c, p, nfe, 0, nsel, &p->sel_rmse);
                if (rc != DEISSN_OK) return rc;
            }
    if (c->failed) return dsn_error(c->failed, "%s", c->failed_message);
    /* the `top` best distinct plans on the selection trajectories, then BEST's */
    size_t chosen[64], nc = 0;
    for (size_t t = 0; t < par->top && t < 63; t++) {
        size_t bi = n;
        for (size_t i = 0; i < n; i++) {
            int used = 0;
            for (size_t j = 0; j < nc; j++)
                if (chosen[j] == i || (cands[chosen[j]].sel_rmse == cands[i].sel_rmse &&
                                       !memcmp(cands[chosen[j]].taus, cands[i].taus,
                                               nfe * sizeof(double))))
                    used = 1;
            if (!used && isfinite(cands[i].sel_rmse) && (bi == n || cand_cmp(&cands[i], &cands[bi], 0)))
                bi = i;
        }
        if (bi == n) break;
        chosen[nc++] = bi;
    }
    if (n < ncap && preset_cand(c, nfe, &cands[n])) chosen[nc++] = n++;
    if (nc == 0)
        return dsn_error(DEISSN_E_NONFINITE, "%s: at NFE %u no candidate plan gave a finite "
                         "error", FN, nfe);
    size_t win = chosen[0];
    for (size_t j = 0; j < nc; j++) {
        cand *p = &cands[chosen[j]];
        rc = true_rmse(c, p, nfe, 0, nfit, &p->fit_rmse);
        if (rc != DEISSN_OK) return rc;
        if (cand_cmp(p, &cands[win], 1)) win = chosen[j];
    }
    /* the true-error refinement from the best two on all fit trajectories (from the best
     * one only above 8 NFE, to bound the cost: there the refinements are most of the
     * evaluations, tools/tune/README.md); a refined plan wins if it is better there than the
     * best so far */
    cand best = cands[win];
    /* above 12 NFE the learned plan is the one chosen nearly always (docs/tuning.md), and the
     * refinement's real runs are most of the search's cost there: none */
    int starts = nfe <= 8 ? 2 : nfe <= 12 ? 1 : 0;
    for (int r2 = 0; r2 < starts && par->n_refine > 0; r2++) {
        size_t from = n;
        for (size_t j = 0; j < nc; j++) /* the (r2+1)-th best */
            if ((r2 == 0 && chosen[j] == win) ||
                (r2 == 1 && chosen[j] != win &&
                 (from == n || cand_cmp(&cands[chosen[j]], &cands[from], 1))))
                from = chosen[j];
        if (from == n) break;
        cand r = cands[from];
        r.refined = 1;
        rc = refine(c, &r, nfe, par->n_refine < nfit ? par->n_refine : nfit);
        if (rc != DEISSN_OK) return rc;
        rc = true_rmse(c, &r, nfe, 0, nfit, &r.fit_rmse);
        if (rc != DEISSN_OK) return rc;
        if (r.fit_rmse < best.fit_rmse) {
            r.surrogate = NAN; /* the times left the grid */
            best = r;
        }
    }
    /* the learned plan on the times of the two best grid plans, of the plan so far and of
     * BEST's configuration: the weights fitted on the searching trajectories, the lowest
     * fit error kept */
    cand lp, bp;
    memset(&lp, 0, sizeof lp);
    double learned_fit = INFINITY;
    int have_bp = preset_cand(c, nfe, &bp);
    const cand *grids[4];
    size_t ng = 0;
    for (int t = 0; t < 2; t++) {
        size_t g = n;
        for (size_t i = 0; i < n; i++) {
            const cand *q = &cands[i];
            if (q->start == DSN_TUNE_START_GRID && isfinite(q->sel_rmse) &&
                (t == 0 || q != grids[0]) && (g == n || q->sel_rmse < cands[g].sel_rmse))
                g = i;
        }
        if (g < n) grids[ng++] = &cands[g];
    }
    grids[ng++] = &best;
    if (have_bp) grids[ng++] = &bp;
    for (size_t t = 0; t < ng; t++) {
        int seen = 0;
        for (size_t u = 0; u < t; u++)
            seen |= grids[u]->tau_end == grids[t]->tau_end &&
                    !memcmp(grids[u]->taus, grids[t]->taus, nfe * sizeof(double));
        if (seen) continue;
        cand q = *grids[t];
        q.v = (variant){DEISSN_METHOD_LEARNED, 0, 0, 0, 0, grids[t]->v.end};
        q.refined = grids[t]->refined;
        q.surrogate = NAN;
        double f;
        rc = fit_learned(c, &q, nfe, &f);
        if (rc != DEISSN_OK) return rc;
        if (f < learned_fit) {
            lp = q;
            learned_fit = f;
        }
    }
    if (isfinite(learned_fit)) {
        rc = true_rmse(c, &lp, nfe, 0, nfit, &lp.fit_rmse); /* through the library's sampler */
        if (rc != DEISSN_OK) return rc;
    }
    /* the confirmation, on fit trajectories that made no choice: the lowest RMSE of the plan
     * so far, the learned plan and BEST's configuration (without them: the lower fit RMSE
     * of the first two, an optimistic choice for the learned plan, which was fitted there) */
    double confirm_mine = NAN, confirm_best = NAN, confirm_learned = NAN;
    int confirmed = 0;
    if (nconfirm > 0) {
        rc = true_rmse(c, &best, nfe, nfit, nconfirm, &confirm_mine);
        if (rc == DEISSN_OK && isfinite(learned_fit))
            rc = true_rmse(c, &lp, nfe, nfit, nconfirm, &confirm_learned);
        if (rc == DEISSN_OK && have_bp && !(best.start == DSN_TUNE_START_PRESET && !best.refined))
            rc = true_rmse(c, &bp, nfe, nfit, nconfirm, &confirm_best);
        if (rc != DEISSN_OK) return rc;
        if (confirm_learned < confirm_mine) {
            best = lp;
            confirm_mine = confirm_learned;
        }
        if (confirm_best < confirm_mine) {
            rc = true_rmse(c, &bp, nfe, 0, nfit, &bp.fit_rmse);
            if (rc != DEISSN_OK) return rc;
            best = bp;
        } else if (isfinite(confirm_best)) {
            confirmed = 1;
        }
    } else if (isfinite(learned_fit) && lp.fit_rmse < best.fit_rmse) {
        best = lp;
    }
    const cand *w = &best;
    memset(out, 0, sizeof *out);
    out->nfe = nfe;
    memcpy(out->taus, w->taus, nfe * sizeof(double));
    out->tau_end = w->tau_end;
    out->method = w->v.method;
    out->use_table = w->v.use_table;
    out->order = w->v.order;
    out->lower_order_final = w->v.lof;
    out->corrector = w->v.corrector;
    if (w->v.method == DEISSN_METHOD_LEARNED) memcpy(out->weights, w->w, sizeof out->weights);
    out->learned_fit_rmse = isfinite(learned_fit) ? lp.fit_rmse : NAN;
    out->learned_confirm_rmse = confirm_learned;
    out->start = w->start;
    out->refined = (uint32_t)w->refined;
    out->surrogate = w->surrogate;
    out->fit_rmse = w->fit_rmse;
    out->fit_samples = nfit;
    out->confirmed = (uint32_t)confirmed;
    out->confirm_rmse = confirm_mine;
    out->confirm_best_rmse = confirm_best;
    out->holdout_rmse = out->holdout_low = out->holdout_high = NAN;
    out->best_holdout_rmse = NAN;
    size_t n_fit_all = c->ref->n_fit;
    if (c->K > n_fit_all) {
        size_t nh = c->K - n_fit_all;
        double *mse = dsn_malloc(nh * sizeof(double));
        if (!mse) return dsn_error(DEISSN_E_NOMEM, "%s: no memory", FN);
        rc = true_rmse_each(c, w, nfe, n_fit_all, nh, &out->holdout_rmse, mse);
        if (rc == DEISSN_OK) bootstrap(mse, nh, &out->holdout_low, &out->holdout_high);
        dsn_free(mse);
        if (rc != DEISSN_OK) return rc;
        out->holdout_samples = nh;
        /* what the fixed preset gives on the same trajectories, for comparison */
        if (preset_cand(c, nfe, &bp)) {
            rc = true_rmse(c, &bp, nfe, n_fit_all, nh, &out->best_holdout_rmse);
            if (rc != DEISSN_OK) return rc;
        }
    }
    out->evaluations = c->evals - evals0;
    if (c->failed) return dsn_error(c->failed, "%s", c->failed_message);
    return DEISSN_OK;
}

int32_t dsn_tune_search(dsn_tune_plan *plans, size_t capacity,
                        const deissn_schedule_params *noise, const deissn_normtable *table,
                        const dsn_tune_reference *ref, const dsn_tune_params *params)
{
    int32_t rc = check_args(plans, capacity, noise, ref, params);
    if (rc != DEISSN_OK) return rc;
    deissn_schedule_params sp = *noise;
    sp.spacing = DEISSN_SPACING_POWER;
    sp.steps = 1;
    sp.tau_end = 0;
    deissn_schedule *sched = NULL;
    rc = deissn_schedule_create(&sched, &sp);
    if (rc != DEISSN_OK) return rc; /* the noise schedule is invalid: its message */

    ctx c = {0};
    c.ref = ref;
    c.par = params;
    c.noise = noise;
    c.table = table;
    c.sched = sched;
    c.M = ref->n_times;
    c.K = ref->n_traj;
    c.D = ref->sample_numel;
    c.nb = 2 * c.M + 1;
    c.nchoose = ref->n_choose;
    c.G = ref->gram;
    c.n_values = (double)c.nchoose * (double)c.D;
    size_t nplans = params->nfe_max - params->nfe_min + 1, S = c.M + 1;
    size_t ncap = 2 * 4 * 3 * 2 + 12 + 1; /* grid variants, named starts, BEST */
    dsn_tune_plan *res = dsn_calloc(nplans, sizeof *res);
    c.alpha = dsn_malloc(3 * S * sizeof(double));
    c.x = dsn_malloc(c.K * c.D * sizeof(float));
    c.e = dsn_malloc(c.K * c.D * sizeof(float));
    c.hist = dsn_malloc((size_t)HIST * c.nchoose * c.D * sizeof(float));
    c.target = dsn_malloc(c.nchoose * c.D * sizeof(float));
    double *cost = dsn_malloc(S * S * sizeof(double));
    cand *cands = dsn_malloc(ncap * sizeof(cand));
    if (!res || !c.alpha || !c.x || !c.e || !c.hist || !c.target || !cost || !cands) {
        rc = dsn_error(DEISSN_E_NOMEM, "%s: no memory for the Gram matrix and the work buffers",
                       FN);
        goto done;
    }
    c.sigma = c.alpha + S;
    c.node_tau = c.alpha + 2 * S;
    for (size_t m = 0; m < S; m++) {
        double t = m < c.M ? ref->taus[m] : 0.0, ab = deissn_schedule_alpha_bar(sched, t);
        c.node_tau[m] = t;
        c.alpha[m] = sqrt(ab);
        c.sigma[m] = sqrt(1 - ab);
    }
    for (size_t i = 0; i < S; i++)
        for (size_t k = 0; k < S; k++)
            cost[i * S + k] = k > i && i < c.M ? ddim_cost(&c, i, k) : INFINITY;
    for (size_t i = 0; i < nplans && rc == DEISSN_OK; i++) {
        uint32_t nfe = params->nfe_min + (uint32_t)i;
        rc = search_one(&c, nfe, cost, cands, ncap, &res[i]);
        if (rc == DEISSN_OK && params->done_nfe && params->done_nfe(params->user, nfe))
            rc = dsn_error(DEISSN_E_CALLBACK, "%s: stopped after NFE %u", FN, nfe);
    }
    if (rc == DEISSN_OK) memcpy(plans, res, nplans * sizeof *res);
done:
    deissn_schedule_free(sched);
    dsn_free(res);
    dsn_free(c.alpha);
    dsn_free(c.x);
    dsn_free(c.e);
    dsn_free(c.hist);
    dsn_free(c.target);
    dsn_free(cost);
    dsn_free(cands);
    return rc;
}
