/* normtable.c - normalization tables r(tau): creation, checks, evaluation, the reference's
 * arrays. Files (loading and saving) are in tablefile.c. */
#include "tables/normtable.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double dsn_fixed_mean(int64_t sum, uint64_t count)
{
    return (double)sum / DSN_FIXED_ONE / (double)count;
}

int32_t dsn_table_alloc(deissn_normtable **out, size_t n, int with_sums, size_t meta_len,
                        const char *fn)
{
    *out = NULL;
    /* One block: tau, r, [sums, counts,] metadata + NUL. All arrays are 8-byte elements. */
    size_t arrays = with_sums ? 4 : 2, bytes;
    if (!dsn_mul_size(n, arrays * 8, &bytes) || meta_len >= SIZE_MAX - bytes)
        return dsn_error(DEISSN_E_SIZE, "%s: %zu knots overflow", fn, n);
    deissn_normtable *t = dsn_calloc(1, sizeof *t);
    unsigned char *block = dsn_malloc(bytes + meta_len + 1);
    if (!t || !block) {
        dsn_free(t);
        dsn_free(block);
        return dsn_error(DEISSN_E_NOMEM, "%s: out of memory for a table of %zu knots", fn, n);
    }
    t->refs = 1;
    t->n = n;
    t->tau = (double *)block;
    t->r = t->tau + n;
    if (with_sums) {
        t->sums = (int64_t *)(t->r + n);
        t->counts = (uint64_t *)(t->sums + n);
    }
    t->metadata = (char *)block + bytes;
    memset(t->metadata, 0, meta_len + 1);
    t->metadata_len = meta_len;
    *out = t;
    return DEISSN_OK;
}

void deissn_normtable_free(deissn_normtable *t)
{
    if (!t || !dsn_unref(&t->refs)) return;
    dsn_free(t->plans);
    dsn_free(t->tau);
    dsn_free(t);
}

/* The offset of the first byte of s[0..len) that breaks UTF-8 (NUL, a stray continuation
 * byte, a truncated sequence, an overlong form, a surrogate, beyond U+10FFFF), or len. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        size_t more;
        uint32_t cp, min;
        if (c == 0) return i;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) more = 1, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0) more = 2, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0) more = 3, cp = c & 0x07, min = 0x10000;
        else return i;
        if (more >= len - i) return i;
        for (size_t k = 1; k <= more; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += more + 1;
    }
    return len;
}

int32_t dsn_check_metadata(const char *s, size_t len, int32_t status, const char *what)
{
    if (len > DEISSN_NORMTABLE_METADATA_MAX)
        return dsn_error(status, "%s: the metadata is longer than the %u bytes allowed", what,
                         (unsigned)DEISSN_NORMTABLE_METADATA_MAX);
    size_t bad = utf8_invalid_at((const unsigned char *)s, len);
    if (bad < len)
        return dsn_error(status, "%s: the metadata is not UTF-8 text (byte %zu is 0x%02x)", what,
                         bad, (unsigned char)s[bad]);
    return DEISSN_OK;
}

int32_t dsn_table_check(deissn_normtable *t, int32_t status, const char *what)
{
    int32_t rc = DEISSN_OK;
    size_t n = t->n;
    if (n < 2)
        rc = dsn_error(status, "%s: %zu knots, a table needs at least 2", what, n);
    else if (t->clip >= n)
        rc = dsn_error(status, "%s: clip %u must be below the number of knots %zu", what,
                       t->clip, n);
    for (size_t i = 0; rc == DEISSN_OK && i < n; i++) {
        double tau = t->tau[i], r = t->r[i];
        const char *bad = NULL;
        if (!(tau >= 0 && tau <= 1)) bad = "tau outside [0, 1]";
        else if (i > 0 && !(tau > t->tau[i - 1])) bad = "tau not strictly increasing";
        else if (!isfinite(r)) bad = "r is not finite";
        else if (!(r > 0)) bad = "r is not positive";
        else if (t->sums && t->counts[i] == 0) bad = "its calibration count is 0";
        else if (t->sums && t->sums[i] < 0) bad = "its calibration sum is negative";
        else if (t->sums && r != dsn_fixed_mean(t->sums[i >= t->clip ? i : t->clip],
                                                t->counts[i >= t->clip ? i : t->clip]))
            bad = "r does not match its calibration sum and count";
        if (bad)
            rc = dsn_error(status, "%s: knot %zu (tau %.17g, r %.17g): %s", what, i, tau, r, bad);
    }
    if (rc == DEISSN_OK) rc = dsn_check_metadata(t->metadata, t->metadata_len, status, what);
    if (rc != DEISSN_OK) deissn_normtable_free(t);
    return rc;
}

/* Version 1 ends before the plans. */
static const size_t params_size[DEISSN_NORMTABLE_PARAMS_VERSION + 1] = {
    0, offsetof(deissn_normtable_params, plans), sizeof(deissn_normtable_params)};
/* Version 1 ends before the weights. */
static const size_t plan_size[DEISSN_PLAN_VERSION + 1] = {0, offsetof(deissn_plan, weights),
                                                          sizeof(deissn_plan)};

int32_t dsn_plans_check(const deissn_plan *plans, size_t n, int32_t status, const char *what)
{
    if (n > DEISSN_NORMTABLE_MAX_PLANS)
        return dsn_error(status, "%s: %zu plans, a table holds at most %d", what, n,
                         DEISSN_NORMTABLE_MAX_PLANS);
    for (size_t i = 0; i < n; i++) {
        const deissn_plan *p = &plans[i];
        const char *bad = NULL;
        if (p->nfe < 1 || p->nfe > DEISSN_PLAN_MAX_NFE) bad = "nfe outside 1..DEISSN_PLAN_MAX_NFE";
        else if (p->method != DEISSN_METHOD_EPS && p->method != DEISSN_METHOD_DATA &&
                 p->method != DEISSN_METHOD_LEARNED)
            bad = "unknown method";
        else if (p->order > 3) bad = "order above 3";
        else if (p->corrector > 1 || (p->corrector && p->method != DEISSN_METHOD_DATA))
            bad = "the corrector needs METHOD_DATA";
        else if (p->uses_table > 1 || (p->uses_table && p->method != DEISSN_METHOD_EPS))
            bad = "only METHOD_EPS uses the table";
        else if (p->lower_order_final > 1) bad = "lower_order_final is not 0 or 1";
        else if (!(p->tau_end >= 0 && p->tau_end < 1)) bad = "tau_end outside [0, 1)";
        else if (!(p->error >= 0 && p->error_low >= 0 && p->error_high >= 0 &&
                   p->best_error >= 0) || !isfinite(p->error) || !isfinite(p->error_high) ||
                 !isfinite(p->best_error))
            bad = "an error that is negative or not finite";
        for (uint32_t k = 0; !bad && k < DEISSN_PLAN_MAX_NFE; k++)
            for (uint32_t w = 0; !bad && w < DEISSN_PLAN_WEIGHTS; w++)
                if (!isfinite(p->weights[k][w]) ||
                    (p->weights[k][w] != 0 &&
                     (p->method != DEISSN_METHOD_LEARNED || k >= p->nfe || w > k + 1)))
                    bad = "weights that are not finite, or not those of METHOD_LEARNED's steps "
                          "(step k has x and k + 1 eps terms)";
        for (uint32_t k = 0; !bad && k < p->nfe; k++) {
            double hi = k ? p->taus[k - 1] : 1.0;
            if (!(p->taus[k] > p->tau_end && (k ? p->taus[k] < hi : p->taus[k] <= hi)))
                bad = "times not strictly decreasing in (tau_end, 1]";
        }
        for (size_t j = 0; !bad && j < i; j++)
            if (plans[j].nfe == p->nfe) bad = "a second plan for the same nfe";
        if (bad)
            return dsn_error(status, "%s: plan %zu (nfe %u): %s", what, i, p->nfe, bad);
    }
    return DEISSN_OK;
}

/* The caller's n plans, of the version the first one carries (all alike), as current-layout
 * copies (*out, dsn_free; NULL for n 0): what an older plan lacks is zero. */
static int32_t read_plans(const deissn_plan *caller, size_t n, deissn_plan **out, const char *fn)
{
    *out = NULL;
    if (n == 0) return DEISSN_OK;
    if (n > DEISSN_NORMTABLE_MAX_PLANS)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %zu plans, a table holds at most %d", fn, n,
                         DEISSN_NORMTABLE_MAX_PLANS);
    uint32_t version = caller[0].version;
    int32_t rc = dsn_check_version(version, DEISSN_PLAN_VERSION, fn, "params->plans[0]");
    if (rc) return rc;
    deissn_plan *copy = dsn_calloc(n, sizeof *copy);
    if (!copy) return dsn_error(DEISSN_E_NOMEM, "%s: out of memory for %zu plans", fn, n);
    const unsigned char *at = (const unsigned char *)caller;
    for (size_t i = 0; i < n; i++, at += plan_size[version]) {
        const deissn_plan *c = (const deissn_plan *)(const void *)at;
        if (c->version != version) {
            dsn_free(copy);
            return dsn_error(DEISSN_E_INVALID_ARG, "%s: params->plans[%zu] has version %u, "
                             "plans[0] %u: an array of plans shares one version", fn, i,
                             c->version, version);
        }
        dsn_read_versioned(&copy[i], c, plan_size, version);
    }
    *out = copy;
    return DEISSN_OK;
}

static int by_nfe(const void *a, const void *b)
{
    uint32_t x = ((const deissn_plan *)a)->nfe, y = ((const deissn_plan *)b)->nfe;
    return x < y ? -1 : x > y;
}

int32_t dsn_table_set_plans(deissn_normtable *t, const deissn_plan *plans, size_t n,
                            const char *fn)
{
    dsn_free(t->plans);
    t->plans = NULL;
    t->n_plans = 0;
    if (n == 0) return DEISSN_OK;
    t->plans = dsn_malloc(n * sizeof *t->plans);
    if (!t->plans) return dsn_error(DEISSN_E_NOMEM, "%s: out of memory for %zu plans", fn, n);
    memcpy(t->plans, plans, n * sizeof *t->plans);
    for (size_t i = 0; i < n; i++) t->plans[i].version = DEISSN_PLAN_VERSION;
    qsort(t->plans, n, sizeof *t->plans, by_nfe);
    t->n_plans = n;
    return DEISSN_OK;
}

size_t deissn_normtable_plan_count(const deissn_normtable *t) { return t ? t->n_plans : 0; }

int32_t deissn_normtable_plan(const deissn_normtable *t, size_t i, deissn_plan *plan)
{
    const char *fn = "deissn_normtable_plan";
    if (!t || !plan) return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn, t ? "plan" : "table");
    int32_t rc = dsn_check_version(plan->version, DEISSN_PLAN_VERSION, fn, "plan");
    if (rc) return rc;
    if (i >= t->n_plans)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: plan %zu of %zu", fn, i, t->n_plans);
    dsn_write_versioned(plan, &t->plans[i], plan_size, plan->version);
    return DEISSN_OK;
}

int32_t deissn_normtable_params_init(deissn_normtable_params *params, uint32_t version)
{
    static const deissn_normtable_params defaults = DEISSN_NORMTABLE_PARAMS_INIT;
    return dsn_init_versioned(params, &defaults, params_size, version,
                              DEISSN_NORMTABLE_PARAMS_VERSION, "deissn_normtable_params_init");
}

int32_t dsn_table_derive(deissn_normtable **out, const deissn_normtable *src,
                         const deissn_normtable_params *params, const char *fn)
{
    *out = NULL;
    static const deissn_normtable_params defaults = DEISSN_NORMTABLE_PARAMS_INIT;
    deissn_normtable_params p;
    int32_t rc = dsn_read_params(&p, &defaults, sizeof p, params, params_size,
                                 DEISSN_NORMTABLE_PARAMS_VERSION, fn, "params");
    if (rc) return rc;
    uint32_t clip = p.clip > src->clip ? p.clip : src->clip;
    if (clip >= src->n)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: clip %u must be below the number of knots %zu",
                         fn, clip, src->n);
    const char *meta = p.metadata ? p.metadata : src->metadata;
    size_t meta_len = p.metadata ? strnlen(p.metadata, DEISSN_NORMTABLE_METADATA_MAX + 1)
                                 : src->metadata_len;
    rc = dsn_check_metadata(meta, meta_len, DEISSN_E_INVALID_ARG, fn);
    if (rc) return rc;
    deissn_normtable *t;
    rc = dsn_table_alloc(&t, src->n, src->sums != NULL, meta_len, fn);
    if (rc) return rc;
    size_t n = src->n;
    memcpy(t->tau, src->tau, n * sizeof(double));
    memcpy(t->r, src->r, n * sizeof(double));
    if (src->sums) {
        memcpy(t->sums, src->sums, n * sizeof(int64_t));
        memcpy(t->counts, src->counts, n * sizeof(uint64_t));
    }
    for (uint32_t k = 0; k < clip; k++) t->r[k] = t->r[clip];
    if (meta_len) memcpy(t->metadata, meta, meta_len);
    t->fingerprint = p.fingerprint ? p.fingerprint : src->fingerprint;
    t->clip = clip;
    t->steps = src->steps;
    t->samples = src->samples;
    const deissn_plan *plans = src->plans;
    size_t n_plans = p.plans ? p.n_plans : src->n_plans;
    deissn_plan *caller_plans = NULL;
    if (p.plans) rc = read_plans(p.plans, n_plans, &caller_plans, fn);
    if (p.plans) plans = caller_plans;
    if (rc == DEISSN_OK) rc = dsn_plans_check(plans, n_plans, DEISSN_E_INVALID_ARG, fn);
    if (rc == DEISSN_OK) rc = dsn_table_set_plans(t, plans, n_plans, fn);
    dsn_free(caller_plans);
    if (rc != DEISSN_OK) {
        deissn_normtable_free(t);
        return rc;
    }
    rc = dsn_table_check(t, DEISSN_E_INVALID_ARG, fn);
    if (rc == DEISSN_OK) *out = t;
    return rc;
}

int32_t deissn_normtable_create(deissn_normtable **out, const double *tau, const double *r,
                                size_t n, const deissn_normtable_params *params)
{
    const char *fn = "deissn_normtable_create";
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!tau || !r) return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn, tau ? "r" : "tau");
    if (n < 2) return dsn_error(DEISSN_E_INVALID_ARG, "%s: n = %zu, need at least 2 knots", fn, n);
    deissn_normtable *raw;
    int32_t rc = dsn_table_alloc(&raw, n, 0, 0, fn);
    if (rc) return rc;
    memcpy(raw->tau, tau, n * sizeof(double));
    memcpy(raw->r, r, n * sizeof(double));
    rc = dsn_table_derive(out, raw, params, fn);
    deissn_normtable_free(raw);
    return rc;
}

int32_t dsn_table_from_reference(deissn_normtable **out, const float *score_abs, const float *Ls,
                                 size_t n, const deissn_normtable_params *params, const char *fn)
{
    if (n < 2) return dsn_error(DEISSN_E_INVALID_ARG, "%s: n = %zu, need at least 2 entries", fn, n);
    deissn_normtable *raw;
    int32_t rc = dsn_table_alloc(&raw, n, 0, 0, fn);
    if (rc) return rc;
    for (size_t j = 0; j < n; j++) {
        size_t src = n - 1 - j;
        raw->r[j] = (double)score_abs[src] * (double)Ls[src];
        raw->tau[j] = (double)j / (double)(n - 1);
    }
    raw->steps = n <= UINT32_MAX ? (uint32_t)n : 0;
    raw->fingerprint = n == 1000 ? DSN_REFERENCE_FINGERPRINT : 0;
    rc = dsn_table_derive(out, raw, params, fn);
    deissn_normtable_free(raw);
    return rc;
}

int32_t deissn_normtable_from_reference(deissn_normtable **out, const float *score_abs,
                                        const float *Ls, size_t n,
                                        const deissn_normtable_params *params)
{
    const char *fn = "deissn_normtable_from_reference";
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!score_abs || !Ls)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn, score_abs ? "Ls" : "score_abs");
    return dsn_table_from_reference(out, score_abs, Ls, n, params, fn);
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
const char *deissn_normtable_metadata(const deissn_normtable *t) { return t ? t->metadata : ""; }

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

int32_t deissn_normtable_get_info(const deissn_normtable *t, deissn_normtable_info *info)
{
    static const size_t info_size[DEISSN_NORMTABLE_INFO_VERSION + 1] = {
        0, sizeof(deissn_normtable_info)};
    const char *fn = "deissn_normtable_get_info";
    if (!t || !info) return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn, t ? "info" : "table");
    int32_t rc = dsn_check_version(info->version, DEISSN_NORMTABLE_INFO_VERSION, fn, "info");
    if (rc) return rc;
    deissn_normtable_info i;
    memset(&i, 0, sizeof i); /* padding too: callers may compare the bytes */
    i.n_knots = t->n;
    i.clip = t->clip;
    i.fingerprint = t->fingerprint;
    i.steps = t->steps;
    i.samples = t->samples;
    i.has_sums = t->sums != NULL;
    dsn_write_versioned(info, &i, info_size, info->version);
    return DEISSN_OK;
}

int32_t deissn_normtable_copy(deissn_normtable **out, const deissn_normtable *t,
                              const deissn_normtable_params *params)
{
    const char *fn = "deissn_normtable_copy";
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!t) return dsn_error(DEISSN_E_INVALID_ARG, "%s: table is NULL", fn);
    return dsn_table_derive(out, t, params, fn);
}
