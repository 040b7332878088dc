/* reference.c - deissn_reference: the reference solves of a tuning run (on the model, through
 * the one sampling loop), recorded as the search needs them in exact sums; merging parts;
 * the bytes they travel as (docs/reference-format.md). */
#include "tune/reference.h"

#include "backends/model.h"
#include "base/bytes.h"
#include "maths/schedule.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the grid and the exact Gram sums ---------------------------------------------------- */

long dsn_ref_node(uint32_t s, uint32_t S)
{
    uint32_t first = S - 1 - 2 * ((S - 2) / 2);
    if (s == 0) return 0;
    if (s < first || (s - first) % 2) return -1;
    return 1 + (long)((s - first) / 2);
}

void dsn_ref_grid(double *grid, uint32_t S, uint32_t num_train_steps)
{
    double tau_last = 1.0 / (double)num_train_steps;
    for (uint32_t s = 0; s < S; s++)
        grid[s] = tau_last + (1.0 - tau_last) * pow(1.0 - (double)s / (S - 1), 1.5);
}

/* The largest |hi| of a Gram sum: a solve stays far below it (the limits on fit and grid),
 * the reader refuses more, and a merge whose sum would exceed it is refused. */
#define GRAM_HI_MAX (INT64_C(1) << 62)

static void fix_add(dsn_fix128 *a, dsn_fix128 b)
{
    uint64_t lo = a->lo + b.lo;
    /* two's complement: wrap-around is the carry. With both |hi| <= GRAM_HI_MAX the true sum
     * lies in [-2^63, 2^63 + 1]; every value of it beyond GRAM_HI_MAX wraps to a hi beyond
     * GRAM_HI_MAX too, so checking the result's hi detects the overflow. */
    a->hi = (int64_t)((uint64_t)a->hi + (uint64_t)b.hi + (lo < b.lo));
    a->lo = lo;
}

static dsn_fix128 fix_of(double v)
{
    double h = floor(v);
    dsn_fix128 f = {(int64_t)h, (uint64_t)ldexp(v - h, 64)}; /* v - h in [0, 1): exact */
    return f;
}

int32_t dsn_gram_add(dsn_fix128 *acc, const float *const *vecs, size_t nb, size_t D,
                     const char *fn)
{
    size_t at = 0;
    for (size_t a = 0; a < nb; a++)
        for (size_t b = a; b < nb; b++, at++) {
            const float *u = vecs[a], *w = vecs[b];
            double s = 0;
            for (size_t i = 0; i < D; i++) s += (double)u[i] * (double)w[i];
            if (!(fabs(s) <= DSN_GRAM_LIMIT))
                return dsn_error(DEISSN_E_NONFINITE, "%s: a recorded state's squared norm is "
                                 "%g, beyond the 2^40 the exact sums hold", fn, s);
            fix_add(&acc[at], fix_of(s));
        }
    return DEISSN_OK;
}

void dsn_gram_unpack(double *G, const dsn_fix128 *acc, size_t nb)
{
    size_t at = 0;
    for (size_t a = 0; a < nb; a++)
        for (size_t b = a; b < nb; b++, at++)
            G[a * nb + b] = G[b * nb + a] = (double)acc[at].hi + ldexp((double)acc[at].lo, -64);
}

/* ---- the object ---------------------------------------------------------------------------- */

/* How many of the held trajectories [first, first + count) search (are below choose). */
static uint64_t n_path(const dsn_tune_run *run, uint64_t first, uint64_t count)
{
    if (first >= run->choose) return 0;
    return (first + count < run->choose ? first + count : run->choose) - first;
}

/* Byte sizes of the arrays of a reference: times, calibration, Gram, ends, paths; and *total
 * their sum. 0 on overflow. */
#define REF_ARRAYS 5
static int ref_sizes(const dsn_tune_run *run, uint64_t first, uint64_t count,
                     size_t sz[REF_ARRAYS], size_t *total)
{
    size_t M = run->n_nodes, S = run->grid_steps, nb = 2 * (size_t)M + 1, e, q;
    uint64_t np = n_path(run, first, count);
    sz[0] = M * sizeof(double);
    sz[1] = S * (sizeof(int64_t) + sizeof(uint64_t));
    sz[2] = dsn_gram_packed(nb) * sizeof(dsn_fix128);
    if (count > SIZE_MAX / 3 || !dsn_mul_size((size_t)count * 3, (size_t)run->numel, &e) ||
        !dsn_mul_size(e, sizeof(float), &sz[3]) ||
        !dsn_mul_size((size_t)np * (M + 1), (size_t)run->numel, &q) ||
        !dsn_mul_size(q, sizeof(float), &sz[4]))
        return 0;
    *total = 0;
    for (int i = 0; i < REF_ARRAYS; i++) {
        if (sz[i] > SIZE_MAX - 64 - *total) return 0;
        *total += sz[i];
    }
    return 1;
}

int32_t dsn_ref_alloc(deissn_reference **out, const dsn_tune_run *run, uint64_t first,
                      uint64_t count, const char *fn)
{
    *out = NULL;
    size_t sz[REF_ARRAYS], total;
    if (!ref_sizes(run, first, count, sz, &total))
        return dsn_error(DEISSN_E_SIZE, "%s: %llu trajectories of %llu values overflow", fn,
                         (unsigned long long)count, (unsigned long long)run->numel);
    deissn_reference *r = dsn_calloc(1, sizeof *r);
    unsigned char *block = dsn_calloc(1, total ? total : 1);
    if (!r || !block) {
        dsn_free(r);
        dsn_free(block);
        return dsn_error(DEISSN_E_NOMEM, "%s: no memory for a reference of %llu trajectories "
                         "(%zu bytes)", fn, (unsigned long long)count, total);
    }
    r->run = *run;
    r->first = first;
    r->count = count;
    r->node_taus = (double *)block;
    r->cal_sums = (int64_t *)(block + sz[0]);
    r->cal_counts = (uint64_t *)(r->cal_sums + run->grid_steps);
    r->gram = (dsn_fix128 *)(block + sz[0] + sz[1]);
    r->ends = (float *)(block + sz[0] + sz[1] + sz[2]);
    r->path = (float *)(block + sz[0] + sz[1] + sz[2] + sz[3]);
    r->n_path = n_path(run, first, count);
    *out = r;
    return DEISSN_OK;
}

void deissn_reference_free(deissn_reference *ref)
{
    if (!ref) return;
    dsn_free(ref->node_taus);
    dsn_free(ref);
}

int32_t deissn_reference_range(const deissn_reference *ref, uint64_t *first, uint64_t *count,
                               uint64_t *total)
{
    if (!ref) return dsn_error(DEISSN_E_INVALID_ARG, "deissn_reference_range: ref is NULL");
    if (first) *first = ref->first;
    if (count) *count = ref->count;
    if (total) *total = (uint64_t)ref->run.fit + ref->run.holdout;
    return DEISSN_OK;
}

/* ---- the run -------------------------------------------------------------------------------- */

static const size_t params_size[DEISSN_TUNE_PARAMS_VERSION + 1] = {0, sizeof(deissn_tune_params)};
static const deissn_tune_params tune_defaults = DEISSN_TUNE_PARAMS_INIT;

int32_t deissn_tune_params_init(deissn_tune_params *params, uint32_t version)
{
    return dsn_init_versioned(params, &tune_defaults, params_size, version,
                              DEISSN_TUNE_PARAMS_VERSION, "deissn_tune_params_init");
}

int32_t dsn_tune_prepare(deissn_tune_params *p, dsn_tune_run *run, deissn_schedule **sched,
                         const deissn_schedule_params *noise, const int64_t *sample_shape,
                         uint32_t sample_ndim, const deissn_tune_params *params, const char *fn)
{
    *sched = NULL;
    if (!sample_shape) return dsn_error(DEISSN_E_INVALID_ARG, "%s: sample_shape is NULL", fn);
    if (sample_ndim < 1 || sample_ndim >= DEISSN_MAX_NDIM)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: sample_ndim %u must be in 1..%d", fn,
                         sample_ndim, DEISSN_MAX_NDIM - 1);
    int32_t rc = dsn_read_params(p, &tune_defaults, sizeof *p, params, params_size,
                                 DEISSN_TUNE_PARAMS_VERSION, fn, "params");
    if (rc) return rc;
    if (p->grid_steps < 8 || p->grid_steps > DSN_REF_MAX_GRID)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: grid_steps %u must be in 8..%u", fn,
                         p->grid_steps, DSN_REF_MAX_GRID);
    if (p->fit_samples < 1 || p->fit_samples > DSN_REF_MAX_FIT)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: fit_samples %u must be in 1..%u", fn,
                         p->fit_samples, DSN_REF_MAX_FIT);
    if (p->holdout_samples > UINT32_MAX - p->fit_samples)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: holdout_samples %u is too large", fn,
                         p->holdout_samples);
    if (p->batch < 1) return dsn_error(DEISSN_E_INVALID_ARG, "%s: batch must be at least 1", fn);
    if (p->prediction < DEISSN_PREDICT_EPSILON || p->prediction > DEISSN_PREDICT_V)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: unknown prediction type %d", fn,
                         (int)p->prediction);
    memset(run, 0, sizeof *run);
    run->numel = 1;
    for (uint32_t d = 0; d < sample_ndim; d++) {
        size_t numel = (size_t)run->numel;
        if (sample_shape[d] <= 0 || !dsn_mul_size(numel, (size_t)sample_shape[d], &numel))
            return dsn_error(DEISSN_E_INVALID_ARG, "%s: sample_shape[%u] = %lld", fn, d,
                             (long long)sample_shape[d]);
        run->numel = numel;
        run->shape[d] = sample_shape[d];
    }
    deissn_schedule_params sp;
    rc = dsn_schedule_params_read(&sp, noise, fn);
    if (rc) return rc;
    double *grid = dsn_malloc(p->grid_steps * sizeof(double));
    if (!grid) return dsn_error(DEISSN_E_NOMEM, "%s: no memory", fn);
    dsn_ref_grid(grid, p->grid_steps, sp.num_train_steps);
    sp.spacing = DEISSN_SPACING_CUSTOM;
    sp.steps = p->grid_steps;
    sp.custom_taus = grid;
    sp.tau_end = 0.0;
    rc = deissn_schedule_create(sched, &sp);
    dsn_free(grid);
    if (rc) return rc;
    run->fingerprint = (*sched)->fingerprint;
    run->grid_steps = p->grid_steps;
    run->n_nodes = (uint32_t)dsn_ref_node(p->grid_steps - 1, p->grid_steps) + 1;
    run->fit = p->fit_samples;
    run->holdout = p->holdout_samples;
    /* half the fit trajectories search, the other half confirm (deissn_tune_params) */
    run->choose = p->fit_samples - p->fit_samples / 2;
    run->batch = p->batch;
    run->prediction = p->prediction;
    run->seed = p->seed;
    run->ndim = sample_ndim;
    return DEISSN_OK;
}

/* ---- the solve ---------------------------------------------------------------------------- */

typedef struct solve_ctx {
    deissn_reference *ref;
    float *rec;        /* the batch's basis vectors, vector a of trajectory i at (a*b + i)*D,
                          or NULL when the batch holds no searching trajectory */
    size_t b, k0;      /* this batch's size and first trajectory */
    uint64_t done, total;
    const deissn_tune_params *par;
} solve_ctx;

static int record(void *user, uint32_t step, const float *x, const float *eps, size_t n)
{
    solve_ctx *c = user;
    deissn_reference *r = c->ref;
    size_t D = (size_t)r->run.numel, M = r->run.n_nodes, at = c->k0 - (size_t)r->first;
    long m = dsn_ref_node(step, r->run.grid_steps);
    if (m == 0) memcpy(r->ends + at * D, x, n * sizeof(float));
    if (m == (long)M - 1) memcpy(r->ends + ((size_t)r->count + at) * D, x, n * sizeof(float));
    if (m >= 0 && c->rec) {
        memcpy(c->rec + (size_t)m * c->b * D, x, n * sizeof(float));
        memcpy(c->rec + (M + 1 + (size_t)m) * c->b * D, eps, n * sizeof(float));
    }
    c->done++;
    return c->par->progress &&
           c->par->progress(c->par->progress_user, (uint32_t)c->done, (uint32_t)c->total);
}

#define FN_SOLVE "deissn_reference_solve"

int32_t deissn_reference_solve(deissn_reference **out, deissn_model *model,
                               const deissn_schedule_params *noise, const int64_t *sample_shape,
                               uint32_t sample_ndim, const deissn_tune_params *params,
                               uint64_t first, uint64_t count)
{
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", FN_SOLVE);
    *out = NULL;
    if (!model) return dsn_error(DEISSN_E_INVALID_ARG, "%s: model is NULL", FN_SOLVE);
    deissn_tune_params p;
    dsn_tune_run run;
    deissn_schedule *sched = NULL;
    int32_t rc = dsn_tune_prepare(&p, &run, &sched, noise, sample_shape, sample_ndim, params,
                                  FN_SOLVE);
    if (rc) return rc;
    uint64_t K = (uint64_t)run.fit + run.holdout;
    if (first >= K || (count && count > K - first)) {
        deissn_schedule_free(sched);
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: trajectories %llu..%llu are not all in the "
                         "run's 0..%llu", FN_SOLVE, (unsigned long long)first,
                         (unsigned long long)(first + (count ? count : 1) - 1),
                         (unsigned long long)(K - 1));
    }
    if (count == 0) count = K - first;

    deissn_reference *r = NULL;
    deissn_sampler *smp = NULL;
    deissn_calibrator *cal = NULL;
    float *batch = NULL, *rec = NULL;
    const float **vecs = NULL;
    size_t D = (size_t)run.numel, M = run.n_nodes, nb = 2 * M + 1, B = run.batch;
    rc = dsn_ref_alloc(&r, &run, first, count, FN_SOLVE);
    deissn_sampler_params mp = DEISSN_SAMPLER_PARAMS_INIT; /* DEIS order 3, no table */
    mp.prediction = run.prediction;
    if (!rc) rc = deissn_sampler_create(&smp, sched, NULL, &mp);
    if (!rc) rc = deissn_calibrator_create(&cal, sched);
    if (!rc) {
        for (uint32_t s = 0; s < run.grid_steps; s++)
            if (dsn_ref_node(s, run.grid_steps) >= 0)
                r->node_taus[dsn_ref_node(s, run.grid_steps)] = sched->taus[s];
        size_t rs;
        batch = dsn_malloc(B * D * sizeof(float));
        vecs = dsn_malloc(nb * sizeof *vecs);
        if (first < run.choose && dsn_mul_size(nb * B, D * sizeof(float), &rs))
            rec = dsn_malloc(rs);
        if (!batch || !vecs || (first < run.choose && !rec))
            rc = dsn_error(DEISSN_E_NOMEM, "%s: no memory for a batch of %zu trajectories x "
                           "%zu recorded vectors x %zu values", FN_SOLVE, B, nb, D);
    }
    /* Batches start at multiples of B, as a whole solve's do (the header's promise). */
    uint64_t end = first + count, n_batches = 0;
    for (uint64_t k = first; k < end; k = (k / B + 1) * B) n_batches++;
    solve_ctx sc = {r, NULL, 0, 0, 0, n_batches * run.grid_steps, &p};
    int64_t shape[DEISSN_MAX_NDIM];
    for (uint32_t d = 0; d < run.ndim; d++) shape[d + 1] = run.shape[d];
    for (uint64_t k0 = first; !rc && k0 < end; k0 = (k0 / B + 1) * B) {
        uint64_t k1 = (k0 / B + 1) * B < end ? (k0 / B + 1) * B : end;
        size_t b = (size_t)(k1 - k0);
        shape[0] = (int64_t)b;
        sc.b = b;
        sc.k0 = (size_t)k0;
        sc.rec = k0 < run.choose ? rec : NULL;
        rc = deissn_fill_noise(run.seed, k0, b, D, batch);
        deissn_sample_options so = DEISSN_SAMPLE_OPTIONS_INIT;
        so.calibrator = cal;
        if (!rc) rc = dsn_sample_recorded(smp, model, batch, shape, run.ndim + 1, &so, record,
                                          &sc);
        if (rc) break;
        memcpy(r->ends + (2 * (size_t)count + (size_t)(k0 - first)) * D, batch,
               b * D * sizeof(float)); /* x(0) */
        for (size_t i = 0; sc.rec && i < b && k0 + i < run.choose; i++) {
            for (size_t a = 0; a < nb; a++)
                vecs[a] = a == M ? batch + i * D : rec + (a * b + i) * D;
            for (size_t a = 0; a <= M; a++) /* the path: x at every node, then x(0) */
                memcpy(r->path + (a * (size_t)r->n_path + (size_t)(k0 - first) + i) * D, vecs[a],
                       D * sizeof(float));
            rc = dsn_gram_add(r->gram, vecs, nb, D, FN_SOLVE);
            if (rc) break;
        }
    }
    if (!rc)
        rc = deissn_calibrator_get_sums(cal, r->cal_sums, r->cal_counts, run.grid_steps,
                                        &r->cal_samples);
    dsn_free(batch);
    dsn_free(rec);
    dsn_free(vecs);
    deissn_calibrator_free(cal);
    deissn_sampler_free(smp);
    deissn_schedule_free(sched);
    if (rc) {
        deissn_reference_free(r);
        return rc;
    }
    *out = r;
    return DEISSN_OK;
}

/* ---- merging ------------------------------------------------------------------------------ */

#define FN_MERGE "deissn_reference_merge"

/* DEISSN_OK when a and b are parts of one run, else DEISSN_E_MISMATCH naming the field. */
static int32_t same_run(const deissn_reference *a, const deissn_reference *b, size_t ia,
                        size_t ib, const char *fn)
{
    const dsn_tune_run *x = &a->run, *y = &b->run;
    const char *field = x->fingerprint != y->fingerprint ? "the noise schedule"
                        : x->grid_steps != y->grid_steps ? "grid_steps"
                        : x->fit != y->fit               ? "fit_samples"
                        : x->holdout != y->holdout       ? "holdout_samples"
                        : x->choose != y->choose         ? "the searching trajectories"
                        : x->batch != y->batch           ? "batch"
                        : x->seed != y->seed             ? "seed"
                        : x->prediction != y->prediction ? "prediction"
                        : x->ndim != y->ndim || x->numel != y->numel ||
                                memcmp(x->shape, y->shape, sizeof x->shape)
                            ? "the sample shape"
                        : memcmp(a->node_taus, b->node_taus, x->n_nodes * sizeof(double))
                            ? "the grid times"
                            : NULL;
    if (!field) return DEISSN_OK;
    return dsn_error(DEISSN_E_MISMATCH, "%s: parts %zu and %zu are of different runs: %s "
                     "differ", fn, ia, ib, field);
}

static int cmp_first(const void *a, const void *b)
{
    const deissn_reference *x = *(const deissn_reference *const *)a,
                           *y = *(const deissn_reference *const *)b;
    return x->first < y->first ? -1 : x->first > y->first;
}

int32_t deissn_reference_merge(deissn_reference **out, const deissn_reference *const *parts,
                               size_t n_parts)
{
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", FN_MERGE);
    *out = NULL;
    if (!parts || n_parts == 0)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s", FN_MERGE,
                         parts ? "n_parts is 0" : "parts is NULL");
    for (size_t i = 0; i < n_parts; i++) {
        if (!parts[i]) return dsn_error(DEISSN_E_INVALID_ARG, "%s: parts[%zu] is NULL", FN_MERGE, i);
        int32_t rc = same_run(parts[0], parts[i], 0, i, FN_MERGE);
        if (rc) return rc;
    }
    const deissn_reference **sorted = dsn_malloc(n_parts * sizeof *sorted);
    if (!sorted) return dsn_error(DEISSN_E_NOMEM, "%s: no memory", FN_MERGE);
    memcpy(sorted, parts, n_parts * sizeof *sorted);
    qsort(sorted, n_parts, sizeof *sorted, cmp_first);
    int32_t rc = DEISSN_OK;
    uint64_t count = 0;
    for (size_t i = 0; i < n_parts; i++) {
        uint64_t at = sorted[0]->first + count;
        if (sorted[i]->first != at) {
            rc = dsn_error(DEISSN_E_MISMATCH, "%s: the parts %s trajectories %llu..%llu", FN_MERGE,
                           sorted[i]->first < at ? "overlap in" : "leave out",
                           (unsigned long long)(sorted[i]->first < at ? sorted[i]->first : at),
                           (unsigned long long)(sorted[i]->first < at ? at - 1
                                                                     : sorted[i]->first - 1));
            break;
        }
        count += sorted[i]->count;
    }
    const dsn_tune_run *run = &sorted[0]->run;
    deissn_reference *r = NULL;
    if (!rc) rc = dsn_ref_alloc(&r, run, sorted[0]->first, count, FN_MERGE);
    size_t D = (size_t)run->numel, S = run->grid_steps, ng = dsn_gram_packed(2 * run->n_nodes + 1);
    if (!rc) memcpy(r->node_taus, sorted[0]->node_taus, run->n_nodes * sizeof(double));
    size_t at = 0;
    for (size_t i = 0; !rc && i < n_parts; i++) {
        const deissn_reference *p = sorted[i];
        for (size_t s = 0; s < S && !rc; s++) {
            if (r->cal_sums[s] > INT64_MAX - p->cal_sums[s] ||
                r->cal_counts[s] > UINT64_MAX - p->cal_counts[s])
                rc = dsn_error(DEISSN_E_SIZE, "%s: the calibration sums of step %zu overflow",
                               FN_MERGE, s);
            else {
                r->cal_sums[s] += p->cal_sums[s];
                r->cal_counts[s] += p->cal_counts[s];
            }
        }
        if (!rc && r->cal_samples > UINT64_MAX - p->cal_samples)
            rc = dsn_error(DEISSN_E_SIZE, "%s: the calibration sample count overflows", FN_MERGE);
        if (!rc) r->cal_samples += p->cal_samples;
        for (size_t g = 0; g < ng && !rc; g++) {
            dsn_fix128 sum = r->gram[g];
            fix_add(&sum, p->gram[g]);
            if (sum.hi > GRAM_HI_MAX || sum.hi < -GRAM_HI_MAX)
                rc = dsn_error(DEISSN_E_SIZE, "%s: Gram sum %zu overflows (beyond 2^62)",
                               FN_MERGE, g);
            r->gram[g] = sum;
        }
        if (rc) break;
        for (int e = 0; e < 3; e++)
            memcpy(r->ends + ((size_t)e * count + at) * D, p->ends + (size_t)e * p->count * D,
                   (size_t)p->count * D * sizeof(float));
        for (size_t a = 0; p->n_path && a <= run->n_nodes; a++) /* parts are in order */
            memcpy(r->path + (a * (size_t)r->n_path + at) * D,
                   p->path + a * (size_t)p->n_path * D, (size_t)p->n_path * D * sizeof(float));
        at += (size_t)p->count;
    }
    dsn_free(sorted);
    if (rc) {
        deissn_reference_free(r);
        return rc;
    }
    *out = r;
    return DEISSN_OK;
}

/* ---- bytes (docs/reference-format.md) ----------------------------------------------------- */

static const unsigned char ref_magic[8] = {0x89, 'D', 'S', 'N', 'R', 'E', 'F', '\n'};
#define REF_FORMAT_VERSION 1u
#define REF_HEADER 152u /* the fields before the arrays */

static size_t ref_bytes(const deissn_reference *r)
{
    size_t sz[REF_ARRAYS], total;
    ref_sizes(&r->run, r->first, r->count, sz, &total); /* it fitted when r was made */
    return REF_HEADER + total + 4;
}

int32_t deissn_reference_to_bytes(const deissn_reference *ref, void *buf, size_t capacity,
                                  size_t *size)
{
    const char *fn = "deissn_reference_to_bytes";
    if (!ref || !size || (!buf && capacity))
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn,
                         !ref ? "ref" : !size ? "size" : "buf");
    size_t n = ref_bytes(ref);
    *size = n;
    if (!buf) return DEISSN_OK;
    if (capacity < n)
        return dsn_error(DEISSN_E_SIZE, "%s: capacity %zu is below the %zu bytes", fn, capacity, n);
    const dsn_tune_run *run = &ref->run;
    unsigned char *p = buf;
    memset(p, 0, REF_HEADER);
    memcpy(p, ref_magic, 8);
    dsn_put_u32(p + 8, REF_FORMAT_VERSION);
    dsn_put_u32(p + 12, run->fingerprint);
    dsn_put_u32(p + 16, run->grid_steps);
    dsn_put_u32(p + 20, run->n_nodes);
    dsn_put_u32(p + 24, run->fit);
    dsn_put_u32(p + 28, run->holdout);
    dsn_put_u32(p + 32, run->choose);
    dsn_put_u32(p + 36, run->batch);
    dsn_put_u32(p + 40, (uint32_t)run->prediction);
    dsn_put_u32(p + 44, run->ndim);
    dsn_put_u64(p + 48, run->seed);
    for (int d = 0; d < DEISSN_MAX_NDIM; d++) dsn_put_u64(p + 56 + 8 * d, (uint64_t)run->shape[d]);
    dsn_put_u64(p + 120, ref->first);
    dsn_put_u64(p + 128, ref->count);
    dsn_put_u64(p + 136, ref->cal_samples);
    dsn_put_u64(p + 144, run->numel);
    p += REF_HEADER;
    for (size_t m = 0; m < run->n_nodes; m++, p += 8) dsn_put_f64(p, ref->node_taus[m]);
    for (size_t s = 0; s < run->grid_steps; s++, p += 8) dsn_put_u64(p, (uint64_t)ref->cal_sums[s]);
    for (size_t s = 0; s < run->grid_steps; s++, p += 8) dsn_put_u64(p, ref->cal_counts[s]);
    size_t ng = dsn_gram_packed(2 * (size_t)run->n_nodes + 1);
    for (size_t g = 0; g < ng; g++, p += 16) {
        dsn_put_u64(p, (uint64_t)ref->gram[g].hi);
        dsn_put_u64(p + 8, ref->gram[g].lo);
    }
    size_t ne = 3 * (size_t)ref->count * (size_t)run->numel;
    for (size_t i = 0; i < ne; i++, p += 4) dsn_put_f32(p, ref->ends[i]);
    size_t np = (size_t)ref->n_path * (run->n_nodes + 1) * (size_t)run->numel;
    for (size_t i = 0; i < np; i++, p += 4) dsn_put_f32(p, ref->path[i]);
    dsn_put_u32(p, dsn_crc32(buf, n - 4));
    return DEISSN_OK;
}

#define FN_LOAD "deissn_reference_from_bytes"

int32_t deissn_reference_from_bytes(deissn_reference **out, const void *data, size_t size)
{
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", FN_LOAD);
    *out = NULL;
    if (!data) return dsn_error(DEISSN_E_INVALID_ARG, "%s: data is NULL", FN_LOAD);
    const unsigned char *p = data;
    if (size < 8 || memcmp(p, ref_magic, 8))
        return dsn_error(DEISSN_E_FORMAT, "%s: not a libdeissn tuning reference (its first 8 "
                         "bytes are not \\x89DSNREF\\n)", FN_LOAD);
    if (size < REF_HEADER + 4)
        return dsn_error(DEISSN_E_FORMAT, "%s: truncated: %zu bytes, the header alone takes %u",
                         FN_LOAD, size, REF_HEADER + 4);
    uint32_t version = dsn_get_u32(p + 8);
    if (version != REF_FORMAT_VERSION)
        return dsn_error(DEISSN_E_FORMAT, "%s: format version %u (byte 8); this library reads "
                         "version %u", FN_LOAD, version, REF_FORMAT_VERSION);
    dsn_tune_run run;
    memset(&run, 0, sizeof run);
    run.fingerprint = dsn_get_u32(p + 12);
    run.grid_steps = dsn_get_u32(p + 16);
    run.n_nodes = dsn_get_u32(p + 20);
    run.fit = dsn_get_u32(p + 24);
    run.holdout = dsn_get_u32(p + 28);
    run.choose = dsn_get_u32(p + 32);
    run.batch = dsn_get_u32(p + 36);
    run.prediction = (int32_t)dsn_get_u32(p + 40);
    run.ndim = dsn_get_u32(p + 44);
    run.seed = dsn_get_u64(p + 48);
    uint64_t first = dsn_get_u64(p + 120), count = dsn_get_u64(p + 128);
    uint64_t samples = dsn_get_u64(p + 136);
    run.numel = dsn_get_u64(p + 144);
    /* the run's fields, each as the solve makes them (the byte offset named) */
    const char *bad = NULL;
    unsigned off = 0;
    uint64_t numel = 1;
    if (run.grid_steps < 8 || run.grid_steps > DSN_REF_MAX_GRID) bad = "grid_steps", off = 16;
    else if (run.n_nodes != (uint32_t)dsn_ref_node(run.grid_steps - 1, run.grid_steps) + 1)
        bad = "the recorded times", off = 20;
    else if (run.fit < 1 || run.fit > DSN_REF_MAX_FIT) bad = "fit_samples", off = 24;
    else if (run.holdout > UINT32_MAX - run.fit) bad = "holdout_samples", off = 28;
    else if (run.choose != run.fit - run.fit / 2) /* dsn_tune_prepare()'s, which the search uses */
        bad = "the searching trajectories", off = 32;
    else if (run.batch < 1) bad = "batch", off = 36;
    else if (run.prediction < DEISSN_PREDICT_EPSILON || run.prediction > DEISSN_PREDICT_V)
        bad = "prediction", off = 40;
    else if (run.ndim < 1 || run.ndim >= DEISSN_MAX_NDIM) bad = "the sample's dimensions", off = 44;
    for (int d = 0; !bad && d < DEISSN_MAX_NDIM; d++) {
        uint64_t v = dsn_get_u64(p + 56 + 8 * d);
        run.shape[d] = (int64_t)v;
        if ((d < (int)run.ndim && (v == 0 || v > INT64_MAX / numel)) || (d >= (int)run.ndim && v))
            bad = "the sample shape", off = 56 + 8 * (unsigned)d;
        else if (d < (int)run.ndim)
            numel *= v;
    }
    if (!bad && run.numel != numel) bad = "the sample size", off = 144;
    else if (!bad && (count < 1 || first >= (uint64_t)run.fit + run.holdout ||
                      count > (uint64_t)run.fit + run.holdout - first))
        bad = "the trajectory range", off = 120;
    if (bad)
        return dsn_error(DEISSN_E_FORMAT, "%s: %s at byte %u are not those of a reference",
                         FN_LOAD, bad, off);
    size_t sz[REF_ARRAYS], total;
    if (!ref_sizes(&run, first, count, sz, &total))
        return dsn_error(DEISSN_E_FORMAT, "%s: the sizes in the header overflow", FN_LOAD);
    size_t want = REF_HEADER + total + 4;
    if (size != want)
        return dsn_error(DEISSN_E_FORMAT, "%s: %s: %zu bytes where the header says %zu", FN_LOAD,
                         size < want ? "truncated" : "trailing bytes", size, want);
    uint32_t crc = dsn_get_u32(p + size - 4), have = dsn_crc32(p, size - 4);
    if (crc != have)
        return dsn_error(DEISSN_E_FORMAT, "%s: corrupt: the CRC-32 at byte %zu is %08x, the "
                         "bytes give %08x", FN_LOAD, size - 4, crc, have);
    deissn_reference *r = NULL;
    int32_t rc = dsn_ref_alloc(&r, &run, first, count, FN_LOAD);
    if (rc) return rc;
    r->cal_samples = samples;
    const unsigned char *q = p + REF_HEADER;
    for (size_t m = 0; m < run.n_nodes; m++, q += 8) {
        double t = dsn_get_f64(q);
        r->node_taus[m] = t;
        if (!(t > 0 && t <= 1) || (m && !(t < r->node_taus[m - 1])))
            rc = dsn_error(DEISSN_E_FORMAT, "%s: recorded time %zu (byte %zu) is %.17g: the "
                           "times must decrease in (0, 1]", FN_LOAD, m,
                           (size_t)(q - p), t);
        if (rc) break;
    }
    for (size_t s = 0; !rc && s < run.grid_steps; s++, q += 8) {
        r->cal_sums[s] = (int64_t)dsn_get_u64(q);
        if (r->cal_sums[s] < 0)
            rc = dsn_error(DEISSN_E_FORMAT, "%s: calibration sum %zu (byte %zu) is negative",
                           FN_LOAD, s, (size_t)(q - p));
    }
    for (size_t s = 0; !rc && s < run.grid_steps; s++, q += 8) r->cal_counts[s] = dsn_get_u64(q);
    size_t ng = dsn_gram_packed(2 * (size_t)run.n_nodes + 1);
    for (size_t g = 0; !rc && g < ng; g++, q += 16) {
        r->gram[g].hi = (int64_t)dsn_get_u64(q);
        r->gram[g].lo = dsn_get_u64(q + 8);
        if (r->gram[g].hi > GRAM_HI_MAX || r->gram[g].hi < -GRAM_HI_MAX)
            rc = dsn_error(DEISSN_E_FORMAT, "%s: Gram sum %zu (byte %zu) is beyond 2^62",
                           FN_LOAD, g, (size_t)(q - p));
    }
    /* the ends and the paths follow each other: one array of states */
    size_t ne = (3 * (size_t)count + (size_t)r->n_path * (run.n_nodes + 1)) * (size_t)run.numel;
    for (size_t i = 0; !rc && i < ne; i++, q += 4) {
        r->ends[i] = dsn_get_f32(q);
        if (!isfinite(r->ends[i]))
            rc = dsn_error(DEISSN_E_FORMAT, "%s: a recorded state (byte %zu) is not finite",
                           FN_LOAD, (size_t)(q - p));
    }
    if (rc) {
        deissn_reference_free(r);
        return rc;
    }
    *out = r;
    return DEISSN_OK;
}
