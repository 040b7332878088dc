/* normtable.h - the normalization table object r(tau), with its calibration sums and
 * metadata. Internal. */
#ifndef DSN_NORMTABLE_H
#define DSN_NORMTABLE_H

#include "base/base.h"

struct deissn_normtable {
    int refs;
    size_t n;
    double *tau;            /* strictly increasing; the start of the one allocation that holds
                               all the arrays and the metadata (freed through it) */
    double *r;
    int64_t *sums;          /* calibration sums per knot (fixed point, DSN_FIXED_ONE), or NULL */
    uint64_t *counts;       /* with sums: how many values each sum adds up */
    char *metadata;         /* NUL-terminated UTF-8; "" when none */
    size_t metadata_len;
    uint32_t fingerprint;   /* schedule it was made for; 0 = any */
    uint32_t clip;
    uint32_t steps;         /* of the runs that measured it; 0 = unknown */
    uint64_t samples;       /* that those runs made; 0 = unknown */
    deissn_plan *plans;     /* tuned plans in increasing nfe (own allocation), or NULL */
    size_t n_plans;
};

/* Calibration sums are fixed point with 24 fractional bits: each |eps| adds
 * floor(|eps| * DSN_FIXED_ONE). */
#define DSN_FIXED_ONE 16777216.0

/* The most knots a table file may hold (a bound that keeps absurd headers from allocating). */
#define DSN_TABLE_MAX_KNOTS 1000000u

/* The fingerprint of the reference schedule (linear betas, T = 1000), which the reference's
 * tables were made with (tests/test_tables.c checks it against deissn_schedule_fingerprint). */
#define DSN_REFERENCE_FINGERPRINT 0x8cce8094u

/* A table from the reference implementation's arrays (deissn_normtable_from_reference()
 * without the NULL checks); `fn` names the caller or the file in messages. */
int32_t dsn_table_from_reference(deissn_normtable **out, const float *score_abs, const float *Ls,
                                 size_t n, const deissn_normtable_params *params, const char *fn);

/* *out = a checked copy of src with params (NULL: none; any version) applied, as every
 * public function that makes a table describes: the fingerprint if non-zero, the larger of
 * the two clips, the metadata if non-NULL. src is not checked and may be a raw table. */
int32_t dsn_table_derive(deissn_normtable **out, const deissn_normtable *src,
                         const deissn_normtable_params *params, const char *fn);

/* r of a calibration step: the mean of the fixed-point values, in double. */
double dsn_fixed_mean(int64_t sum, uint64_t count);

/* *out = a table with refcount 1 and room for n knots (and sums and counts if with_sums)
 * and a metadata string of meta_len bytes (zeroed, NUL-terminated); every other field is
 * zero. Returns DEISSN_OK, DEISSN_E_SIZE or DEISSN_E_NOMEM (naming fn). */
int32_t dsn_table_alloc(deissn_normtable **out, size_t n, int with_sums, size_t meta_len,
                        const char *fn);

/* Check what a table promises: n >= 2, tau strictly increasing in [0, 1], r finite and > 0,
 * clip < n, metadata UTF-8, and with sums: counts > 0, sums >= 0 and r consistent with them
 * and the clip. On failure frees t and returns `status` with a message naming `what`. */
int32_t dsn_table_check(deissn_normtable *t, int32_t status, const char *what);

/* Check n plans: each valid (nfe 1..DEISSN_PLAN_MAX_NFE, times strictly decreasing in
 * (tau_end, 1], tau_end in [0, 1), a known method, order <= 3, the corrector only with
 * METHOD_DATA, the table only with METHOD_EPS, errors not negative), nfe distinct, n <=
 * DEISSN_NORMTABLE_MAX_PLANS. `status` and `what` as for dsn_table_check(). */
int32_t dsn_plans_check(const deissn_plan *plans, size_t n, int32_t status, const char *what);

/* Give t a sorted copy of plans[0..n) (n 0: none). DEISSN_E_NOMEM naming fn. */
int32_t dsn_table_set_plans(deissn_normtable *t, const deissn_plan *plans, size_t n,
                            const char *fn);

/* Check that s[0..len) is UTF-8 without NUL, at most DEISSN_NORMTABLE_METADATA_MAX bytes. */
int32_t dsn_check_metadata(const char *s, size_t len, int32_t status, const char *what);

#endif
