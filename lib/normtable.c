/* normtable.c - normalization tables r(tau): creation, evaluation, the reference's arrays. */
#include "core.h"
#include "ptfile.h"

#include <math.h>
#include <string.h>

/* The fingerprint of the reference schedule (linear betas, T = 1000), which the reference's
 * tables were made with. Computed once from the schedule itself, not hard-coded. */
static uint32_t reference_fingerprint(void)
{
    deissn_schedule_params p = DEISSN_SCHEDULE_PARAMS_INIT;
    p.steps = 1;
    deissn_schedule *s = NULL;
    if (deissn_schedule_create(&s, &p) != DEISSN_OK) return 0;
    uint32_t f = s->fingerprint;
    deissn_schedule_free(s);
    return f;
}

/* Takes ownership of tau and r (freed on failure). */
static int32_t table_new(deissn_normtable **out, double *tau, double *r, size_t n,
                         uint32_t fingerprint, const char *fn)
{
    for (size_t i = 0; i < n; i++) {
        const char *bad = NULL;
        if (!(tau[i] >= 0 && tau[i] <= 1)) bad = "tau outside [0, 1]";
        else if (i > 0 && !(tau[i] > tau[i - 1])) bad = "tau not strictly increasing";
        else if (!isfinite(r[i])) bad = "r is not finite";
        else if (!(r[i] > 0)) bad = "r is not positive";
        if (bad) {
            int32_t rc = dsn_error(DEISSN_E_INVALID_ARG, "%s: knot %zu (tau %.17g, r %.17g): %s",
                                   fn, i, tau[i], r[i], bad);
            dsn_free(tau);
            dsn_free(r);
            return rc;
        }
    }
    deissn_normtable *t = dsn_calloc(1, sizeof *t);
    if (!t) {
        dsn_free(tau);
        dsn_free(r);
        return dsn_error(DEISSN_E_NOMEM, "%s: out of memory", fn);
    }
    t->refs = 1;
    t->n = n;
    t->tau = tau;
    t->r = r;
    t->fingerprint = fingerprint;
    *out = t;
    return DEISSN_OK;
}

static int32_t alloc_arrays(size_t n, double **tau, double **r, const char *fn)
{
    size_t bytes;
    *tau = *r = NULL;
    if (!dsn_mul_size(n, sizeof(double), &bytes))
        return dsn_error(DEISSN_E_SIZE, "%s: %zu knots overflow", fn, n);
    *tau = dsn_malloc(bytes);
    *r = dsn_malloc(bytes);
    if (!*tau || !*r) {
        dsn_free(*tau);
        dsn_free(*r);
        *tau = *r = NULL;
        return dsn_error(DEISSN_E_NOMEM, "%s: out of memory for %zu knots", fn, n);
    }
    return DEISSN_OK;
}

int32_t deissn_normtable_create(deissn_normtable **out, const double *tau, const double *r,
                                size_t n)
{
    const char *fn = "deissn_normtable_create";
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!tau || !r) return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn, tau ? "r" : "tau");
    if (n < 2) return dsn_error(DEISSN_E_INVALID_ARG, "%s: n = %zu, need at least 2 knots", fn, n);
    double *t2, *r2;
    int32_t rc = alloc_arrays(n, &t2, &r2, fn);
    if (rc) return rc;
    memcpy(t2, tau, n * sizeof(double));
    memcpy(r2, r, n * sizeof(double));
    return table_new(out, t2, r2, n, 0, fn);
}

static int32_t from_reference(deissn_normtable **out, const float *score_abs, const float *Ls,
                              size_t n, uint32_t clip, const char *fn)
{
    if (n < 2) return dsn_error(DEISSN_E_INVALID_ARG, "%s: n = %zu, need at least 2 entries", fn, n);
    if (clip >= n)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: clip %u must be below the length %zu", fn, clip,
                         n);
    double *tau, *r;
    int32_t rc = alloc_arrays(n, &tau, &r, fn);
    if (rc) return rc;
    for (size_t j = 0; j < n; j++) {
        size_t src = n - 1 - j;
        r[j] = (double)score_abs[src] * (double)Ls[src];
        tau[j] = (double)j / (double)(n - 1);
    }
    for (size_t j = 0; j < clip; j++) r[j] = r[clip];
    return table_new(out, tau, r, n, n == 1000 ? reference_fingerprint() : 0, fn);
}

int32_t deissn_normtable_from_reference(deissn_normtable **out, const float *score_abs,
                                        const float *Ls, size_t n, uint32_t clip)
{
    const char *fn = "deissn_normtable_from_reference";
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!score_abs || !Ls)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn, score_abs ? "Ls" : "score_abs");
    return from_reference(out, score_abs, Ls, n, clip, fn);
}

int32_t deissn_normtable_load(deissn_normtable **out, const char *path, uint32_t clip)
{
    const char *fn = "deissn_normtable_load";
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!path) return dsn_error(DEISSN_E_INVALID_ARG, "%s: path is NULL", fn);
    unsigned char *buf = NULL;
    size_t len = 0;
    int32_t rc = dsn_read_file(path, &buf, &len);
    if (rc) return rc;
    dsn_pt_dict d;
    rc = dsn_pt_parse(buf, len, path, &d);
    dsn_free(buf);
    if (rc) return rc;
    const dsn_pt_tensor *sa = dsn_pt_find(&d, "score_abs"), *ls = dsn_pt_find(&d, "Ls");
    if (!sa || !ls)
        rc = dsn_error(DEISSN_E_FORMAT, "%s: no tensor '%s' in the dict (a DEIS-SN table has "
                       "'score_abs' and 'Ls')", path, sa ? "Ls" : "score_abs");
    else if (sa->numel != ls->numel)
        rc = dsn_error(DEISSN_E_FORMAT, "%s: 'score_abs' has %zu values but 'Ls' has %zu", path,
                       sa->numel, ls->numel);
    else
        rc = from_reference(out, sa->data, ls->data, sa->numel, clip, path);
    dsn_pt_dict_free(&d);
    return rc;
}

void deissn_normtable_free(deissn_normtable *t)
{
    if (!t || !dsn_unref(&t->refs)) return;
    dsn_free(t->tau);
    dsn_free(t->r);
    dsn_free(t);
}

double deissn_normtable_eval(const deissn_normtable *t, double tau)
{
    if (!t) return NAN;
    if (tau <= t->tau[0]) return t->r[0];
    if (tau >= t->tau[t->n - 1]) return t->r[t->n - 1];
    size_t lo = 0, hi = t->n - 1; /* tau[lo] <= tau < tau[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->tau[mid] <= tau) lo = mid;
        else hi = mid;
    }
    double f = (tau - t->tau[lo]) / (t->tau[hi] - t->tau[lo]);
    return t->r[lo] + (t->r[hi] - t->r[lo]) * f;
}

size_t deissn_normtable_size(const deissn_normtable *t) { return t ? t->n : 0; }
uint32_t deissn_normtable_fingerprint(const deissn_normtable *t) { return t ? t->fingerprint : 0; }

int32_t deissn_normtable_knot(const deissn_normtable *t, size_t i, double *tau, double *r)
{
    const char *fn = "deissn_normtable_knot";
    if (!t) return dsn_error(DEISSN_E_INVALID_ARG, "%s: table is NULL", fn);
    if (i >= t->n)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: index %zu >= size %zu", fn, i, t->n);
    if (tau) *tau = t->tau[i];
    if (r) *r = t->r[i];
    return DEISSN_OK;
}
