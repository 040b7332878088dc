/* tune.h - tuned sampling plans (issue #14): learn, per NFE, the sampling plan with the
 * lowest error on one model from reference trajectories of that model. Internal (not
 * installed); the public API it is meant to back is sketched in tools/tune/README.md.
 *
 * A plan is everything deissn_schedule_params / deissn_sampler_params leave open for a given
 * NFE N: the evaluation times tau_N > ... > tau_1 (free, on the reference grid), the end time
 * tau_end (0 or the grid's last time), the method (DEIS-SN = METHOD_EPS with the table, DEIS
 * = METHOD_EPS without, METHOD_DATA with or without the corrector), the order (1..3) and
 * lower_order_final.
 *
 * The search, per NFE (every candidate plan is run through the public API: a CUSTOM-spacing
 * schedule, deissn_sampler_create, deissn_sampler_coeffs, deissn_step):
 *   1. Gram matrix G of the recorded vectors (x and eps at every grid time, x at 0) over the
 *      fit trajectories. Every step of every method is linear in those vectors, so the
 *      teacher-forced local error of a step (from the true state, with the true history at
 *      the plan's earlier nodes, to the true state at the next node) is a quadratic form in
 *      G: no model evaluation.
 *   2. Dynamic programming over the grid (GITS, arXiv 2405.11326): for each end, the N
 *      nodes from the first grid time minimising the sum of the local RMSEs of the order-0
 *      exponential step (DDIM; the same for both methods).
 *   3. For each variant (method x order x lower_order_final x end): coordinate descent over
 *      the grid nodes of the plan's surrogate error, the sum over its steps of the local
 *      RMSE of its actual steps (its coefficients, its history); node moves of s grid
 *      points, s halving from grid/(4N) to 1, a move kept when it lowers the surrogate.
 *   4. Every variant's plan is run for real (params->eval) on the first n_select fit
 *      trajectories and scored by the RMSE to the reference at its end; the `top` best
 *      distinct plans, and the BEST preset's configuration when its end time is one of the
 *      two ends, are run on all fit trajectories; the lowest fit RMSE is the plan.
 *      Also candidates: the peers' grids from taus[0] to taus[M-1] (uniform in tau, power
 *      1.5, uniform in lambda) with METHOD_DATA, with and without the corrector, order 2
 *      and 3, lower_order_final (12 plans, run on the n_select trajectories like the rest).
 *   5. Refinement on the true error, from each of the best two plans on all fit
 *      trajectories: coordinate descent of tau_{N-1}..tau_1 in lambda = log(alpha/sigma) on
 *      the first n_refine fit trajectories (each time moved 25 %, then 8 %, of the way to a
 *      neighbour, the earlier first; the first move that lowers the RMSE kept); a refined
 *      plan wins if it is better than the best so far on all fit trajectories.
 *   6. A learned plan (DEISSN_METHOD_LEARNED): on the times of the two best grid plans, the
 *      weights of each step fitted by least squares to the reference at the step's end on
 *      the searching trajectories, in a rollout (step i on the states the learned steps
 *      before it produced, so it corrects the error they made); the one with the lower
 *      error there is a candidate.
 *   7. The confirmation: on the confirming fit trajectories (which made no choice), the
 *      lowest RMSE of the plan so far, the learned plan and BEST's configuration wins.
 *   8. Its RMSE is then measured on the hold-out trajectories (n_fit..K-1), never used for
 *      any choice.
 * The reference trajectories: tune/reference.h. Deterministic: the same input gives the same plans, bit for bit (no threads, fixed
 * order, ties broken by the order of the variants). */
#ifndef DEISSN_TUNE_H
#define DEISSN_TUNE_H

#include "deissn.h"

#include <stddef.h>
#include <stdint.h>

#define DSN_TUNE_MAX_NFE 64

/* The model: eps for n_samples states x (n_samples * sample_numel floats) at time tau, into
 * eps_out. Return 0 on success; anything else stops the search with DEISSN_E_CALLBACK. */
typedef int (*dsn_tune_eval_fn)(void *user, const float *x, size_t n_samples,
                                size_t sample_numel, double tau, float *eps_out);

/* What the search reads of the reference trajectories of the probability-flow ODE, solved
 * accurately (deissn_reference, tune/reference.h): the Gram matrix of the recorded vectors of
 * the searching trajectories, and every trajectory's start and ends. Host arrays. */
typedef struct dsn_tune_reference {
    size_t n_times;       /* M >= 3 */
    const double *taus;   /* M grid times, strictly decreasing in (0, 1]; taus[0] is where
                             the trajectories start (the noise), taus[M-1] the other end */
    size_t n_traj;        /* K */
    size_t sample_numel;  /* D */
    const float *start;   /* K * D: x(taus[0]) of trajectory k at start[k*D] */
    const float *last;    /* K * D: x(taus[M-1]) */
    const float *end;     /* K * D: x(0) */
    const float *path;    /* (M + 1) * n_choose * D: x at every grid time and x(0) of the
                             searching trajectories, x(taus[m]) of trajectory k at
                             path[(m*n_choose + k)*D] (the learned plans' targets) */
    const double *gram;   /* (2M+1)^2, symmetric: the dot products, summed over trajectories
                             0..n_choose-1, of x(taus[0..M-1]), x(0), eps(taus[0..M-1]) (in
                             that order: basis vector b <= M is x at node b, node M being 0,
                             b > M the model's eps at node b - M - 1) */
    size_t n_choose;      /* trajectories 0..n_choose-1 search (>= 1); n_choose..n_fit-1 only
                             confirm the chosen plan against DEISSN_PRESET_BEST's
                             configuration, and BEST replaces a plan that is worse there:
                             choosing among some fifty plans by their error on the same
                             trajectories is optimistic (per-sample errors are heavy-tailed),
                             fresh trajectories are not */
    size_t n_fit;         /* trajectories n_fit..K-1 only measure the plan (may be none) */
} dsn_tune_reference;

typedef struct dsn_tune_params {
    uint32_t nfe_min, nfe_max; /* 2 <= nfe_min <= nfe_max <= min(DSN_TUNE_MAX_NFE, M - 2) */
    uint32_t n_select;         /* fit trajectories every variant runs on (0 or > n_fit: all) */
    uint32_t top;              /* plans then run on all fit trajectories (>= 1) */
    uint32_t n_refine;         /* fit trajectories of the true-error refinement (0: none) */
    dsn_tune_eval_fn eval;     /* the model (required) */
    void *user;
    /* Called after each NFE's search with that NFE (may be NULL); non-zero stops the search
     * with DEISSN_E_CALLBACK. */
    int (*done_nfe)(void *user, uint32_t nfe);
} dsn_tune_params;

/* Where a plan's times started. */
typedef enum dsn_tune_start {
    DSN_TUNE_START_GRID = 0,    /* the DP and the surrogate descent, on the grid */
    DSN_TUNE_START_PRESET = 1,  /* DEISSN_PRESET_BEST's times and configuration */
    DSN_TUNE_START_UNIFORM = 2, /* uniform in tau from taus[0] to taus[M-1] (x0 methods) */
    DSN_TUNE_START_POWER15 = 3, /* power 1.5 in tau, the same ends */
    DSN_TUNE_START_LOGSNR = 4   /* uniform in lambda, the same ends */
} dsn_tune_start;

typedef struct dsn_tune_plan {
    uint32_t nfe;
    double taus[DSN_TUNE_MAX_NFE]; /* tau_N, ..., tau_1 (nfe values) */
    double tau_end;
    int32_t method;                /* deissn_method */
    uint32_t use_table;            /* METHOD_EPS with the table (DEIS-SN) */
    uint32_t order;
    uint32_t lower_order_final;
    uint32_t corrector;
    uint32_t start;                /* dsn_tune_start: where the times came from */
    uint32_t refined;              /* 1: then the true-error refinement moved them */
    uint32_t confirmed;            /* 1: the confirmation trajectories kept the plan over
                                      BEST's configuration; 0: none, or BEST replaced it */
    double weights[DSN_TUNE_MAX_NFE][DEISSN_PLAN_WEIGHTS]; /* METHOD_LEARNED: per step */
    double learned_fit_rmse;       /* the learned plan's RMSE on the searching trajectories
                                      it was fitted on (NaN: none was fitted) */
    double learned_confirm_rmse;   /* and on the confirming ones (NaN: none) */
    double confirm_rmse, confirm_best_rmse; /* the plan's and BEST's RMSE there (NaN: none) */
    double surrogate;              /* sum of teacher-forced local RMSEs (NaN for a preset) */
    double fit_rmse;               /* RMSE to the reference at tau_end, on the fit
                                      trajectories that choose (not the confirming ones) */
    size_t fit_samples;
    double holdout_rmse;           /* the same on the hold-out trajectories (NaN if none) */
    double holdout_low, holdout_high; /* its 95 % bootstrap interval (NaN if none) */
    double best_holdout_rmse;      /* DEISSN_PRESET_BEST's on the same hold-out trajectories
                                      (NaN if none, or its end is not one of the grid's) */
    size_t holdout_samples;
    uint64_t evaluations;          /* sample-evaluations of the model this NFE's search made */
} dsn_tune_plan;

/* Search plans for nfe_min..nfe_max; plans[i] is the plan for nfe_min + i.
 * `noise` gives the noise schedule (its sampling fields are ignored); `table` (may be NULL:
 * no DEIS-SN candidates) is the model's normalization table.
 * Returns DEISSN_OK; DEISSN_E_INVALID_ARG (NULL, sizes, unsorted times, NFE range, no eval:
 * the message names the argument); DEISSN_E_SIZE (capacity below the NFE count, sizes that
 * overflow); DEISSN_E_CALLBACK (eval failed); DEISSN_E_NONFINITE; DEISSN_E_NOMEM. On error
 * `plans` is left untouched. */
int32_t dsn_tune_search(dsn_tune_plan *plans, size_t capacity,
                        const deissn_schedule_params *noise, const deissn_normtable *table,
                        const dsn_tune_reference *ref, const dsn_tune_params *params);

#endif
