/* reference.h - a tuning run's reference (deissn_reference, include/deissn.h): the run it
 * belongs to and what the plan search reads of its trajectories, in sums that are exact, so
 * that parts solved anywhere merge into the bits of one solve. Internal. */
#ifndef DSN_REFERENCE_H
#define DSN_REFERENCE_H

#include "base/base.h"

/* A 128-bit fixed-point number, hi + lo / 2^64. Each trajectory's dot product (a double) is
 * added truncated to a multiple of 2^-64: integer addition, so sums do not depend on the
 * order or grouping of the trajectories. */
typedef struct dsn_fix128 {
    int64_t hi;
    uint64_t lo;
} dsn_fix128;

/* A dot product's magnitude above this is refused (DEISSN_E_NONFINITE): it keeps the sum of
 * up to DSN_REF_MAX_FIT of them below 2^62. */
#define DSN_GRAM_LIMIT 1099511627776.0 /* 2^40 */
#define DSN_REF_MAX_FIT 1048576u       /* 2^20 fit trajectories */
#define DSN_REF_MAX_GRID 4000u         /* grid steps: a Gram matrix of 128 MB */

/* What fixes a tuning run: the deissn_tune_params fields that shape the reference, the noise
 * schedule's fingerprint and the sample shape. Parts of one run agree on all of it. */
typedef struct dsn_tune_run {
    uint32_t fingerprint;  /* of the reference grid's schedule */
    uint32_t grid_steps;   /* S */
    uint32_t n_nodes;      /* M: the recorded grid times (dsn_ref_node()) */
    uint32_t fit, holdout; /* trajectories 0..fit-1 fit, then the hold-out ones */
    uint32_t choose;       /* trajectories 0..choose-1 search (the Gram sums), choose..fit-1
                              confirm */
    uint32_t batch;
    int32_t prediction;
    uint64_t seed;
    uint32_t ndim;
    int64_t shape[DEISSN_MAX_NDIM]; /* ndim dims, the rest 0 */
    uint64_t numel;        /* D, their product */
} dsn_tune_run;

struct deissn_reference {
    dsn_tune_run run;
    uint64_t first, count; /* the trajectories held */
    double *node_taus;     /* M recorded times, decreasing; the start of the one allocation
                              that holds every array below */
    int64_t *cal_sums;     /* S calibration sums (fixed point, deissn_calibrator's) */
    uint64_t *cal_counts;  /* S value counts */
    uint64_t cal_samples;
    dsn_fix128 *gram;      /* nb = 2M + 1 basis vectors (x at nodes 0..M-1, x(0), eps at nodes
                              0..M-1): packed upper triangle, row a holds b = a..nb-1, summed
                              over the held trajectories below `choose` */
    float *ends;           /* 3 x count x D: x(node_taus[0]), x(node_taus[M-1]), x(0) */
    float *path;           /* (M + 1) x n_path x D, right after `ends`: x at every recorded
                              time and x(0) of the held searching trajectories (the targets
                              of the learned plans' fit) */
    uint64_t n_path;       /* the held trajectories below run.choose */
};

/* Where grid step s (0..S-1) of the reference solve records: its node, or -1 (tau = 1 and
 * every other time, so that the last grid time is one of them). */
long dsn_ref_node(uint32_t s, uint32_t S);

/* The grid of the reference solves: S times tau_last + (1 - tau_last) u^1.5, u uniform from
 * 1 to 0, tau_last = 1 / num_train_steps. */
void dsn_ref_grid(double *grid, uint32_t S, uint32_t num_train_steps);

/* Packed size of the Gram sums for nb basis vectors. */
static inline size_t dsn_gram_packed(size_t nb) { return nb * (nb + 1) / 2; }

/* Add one trajectory's dot products to the packed sums: vecs[a] (a < nb) is its basis vector
 * a, of D floats. DEISSN_E_NONFINITE (naming fn) for a product beyond DSN_GRAM_LIMIT or not
 * finite; acc is then partly changed (callers discard it). */
int32_t dsn_gram_add(dsn_fix128 *acc, const float *const *vecs, size_t nb, size_t D,
                     const char *fn);

/* The packed sums as a full symmetric nb x nb matrix of doubles. */
void dsn_gram_unpack(double *G, const dsn_fix128 *acc, size_t nb);

/* *out = an empty reference for `run` holding trajectories [first, first + count), every
 * array zeroed. DEISSN_E_SIZE / DEISSN_E_NOMEM naming fn. */
int32_t dsn_ref_alloc(deissn_reference **out, const dsn_tune_run *run, uint64_t first,
                      uint64_t count, const char *fn);

/* Read a caller's tune params into *p (defaults for what its version lacks) and check them,
 * the sample shape and the noise schedule; *run = the run they describe and *sched = the
 * reference grid's schedule (the caller frees it). Messages name fn. */
int32_t dsn_tune_prepare(deissn_tune_params *p, dsn_tune_run *run, deissn_schedule **sched,
                         const deissn_schedule_params *noise, const int64_t *sample_shape,
                         uint32_t sample_ndim, const deissn_tune_params *params, const char *fn);

#endif
