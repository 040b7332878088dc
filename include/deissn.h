/*
 * deissn.h - libdeissn, the Diffusion Exponential Integrator Sampler with score normalisation.
 *
 * libdeissn samples diffusion models with DEIS (Zhang & Chen, arXiv 2204.13902) and DEIS-SN
 * (Xia et al., arXiv 2311.00157): an exponential integrator that extrapolates the model's
 * noise prediction eps with an Adams-Bashforth polynomial in time, optionally after dividing
 * eps by r(tau), the mean |eps| the model produced at that time in long offline runs (a
 * "normalization table"). See docs/design.md for the maths.
 *
 * This is the only public header. It is C99 and compiles as C and as C++. It reads in the
 * order a user learns: schedules, the sampler and its step loop, presets, models and the
 * whole-sampling call, noise; then tables, calibration and tuning; names last.
 *
 * Quick start: sample with your own network (examples/minimal.c is this, complete):
 *
 *     deissn_schedule_params sp = DEISSN_SCHEDULE_PARAMS_INIT;  // linear noise, T = 1000
 *     deissn_sampler_params pp = DEISSN_SAMPLER_PARAMS_INIT;    // what the model predicts, ...
 *     deissn_preset_params(DEISSN_PRESET_BEST, 10, NULL, &sp, &pp, NULL); // 10 evaluations
 *     deissn_schedule *schedule;  deissn_schedule_create(&schedule, &sp);
 *     deissn_sampler *sampler;    deissn_sampler_create(&sampler, schedule, NULL, &pp);
 *     deissn_step_info at = DEISSN_STEP_INFO_INIT;
 *     int32_t rc = deissn_sampler_next(sampler, &at);
 *     while (rc == DEISSN_OK) {
 *         my_network(x, at.model_t, out);                 // evaluate where the sampler says
 *         rc = deissn_step(sampler, x, out, n, &at);      // DEISSN_DONE: x is the sample
 *     }
 *
 * With a TorchScript file, deissn_model_load() + deissn_sample() run the whole loop on the
 * model's device; with a table from deissn-calibrate (deissn_normtable_load()),
 * DEISSN_PRESET_TUNED samples with the plan tuned on that model.
 *
 * Objects (all opaque, created by *_create / *_load and released by *_free):
 *   deissn_schedule   a noise schedule (alpha_bar(tau)) plus the chosen sampling times.
 *   deissn_sampler    the stepping state machine: coefficients for every step and the
 *                     history (eps, or x0) of the batch being sampled.
 *   deissn_model      something that maps (x, t) to a prediction: a C callback, or a model
 *                     file read by a backend plug-in (TorchScript: libdeissn-torch.so).
 *   deissn_normtable  a normalization table r(tau), with the plans tuned on its model.
 *   deissn_calibrator the sums that a calibration run accumulates.
 *   deissn_reference  what a tuning run's reference solves recorded, to tune across machines.
 *
 * Conventions:
 *   - Every function that can fail returns an int32_t status: DEISSN_OK (0), a negative
 *     DEISSN_E_* error, or a positive non-error state (DEISSN_DONE). On error,
 *     deissn_last_error() holds a message that names the bad argument, file or value.
 *   - Output handles come first, as pointer-to-pointer; on error they are set to NULL.
 *   - The caller owns what it creates and frees it with the matching *_free(), which accepts
 *     NULL. Objects keep what they depend on alive (reference counts), so the order in which
 *     they are freed never matters.
 *   - Structs that cross the ABI carry their layout's version in their first field,
 *     `uint32_t version`, as libgit2's options do. Initialise an input struct with the
 *     matching *_INIT macro or with *_init(p, DEISSN_X_VERSION), which writes only the fields
 *     that version has; then change the fields you need. Output structs (deissn_step_info,
 *     deissn_step_coeffs, deissn_normtable_info, deissn_sample_stats) are initialised the
 *     same way by the caller, and the library writes only the fields of the version they
 *     carry. A later release only appends fields and raises the version; every function
 *     accepts every version from 1 to its own, reads an older struct as far as it goes
 *     (the fields it lacks take their defaults) and never reads or writes past it, so a
 *     program built against an older header keeps working with a newer library of the same
 *     soname. Version 0 or one newer than the library's is refused with
 *     DEISSN_E_INVALID_ARG. tests/test_abi_compat.c holds each older layout and checks this.
 *   - Thread safety: schedules and tables are immutable after creation and may be shared
 *     by any number of threads; so may models (a callback model when its callback is
 *     thread-safe). A sampler, and a calibrator, is used by one thread at a time (this
 *     includes deissn_sample() given options->calibrator). Reference counts are atomic, so
 *     threads may create and free objects that share parents. Every function is otherwise
 *     reentrant; deissn_last_error() is per thread.
 *   - A failing call changes nothing: the objects and buffers it was given are as before.
 *   - Times: tau in [0, 1] is the continuous diffusion time (tau = 1 is pure noise, tau = 0
 *     the data). A discrete model trained with T steps is called at the "model time"
 *     t = tau*T - 1 (the reference implementation's convention; t may be fractional).
 */
#ifndef DEISSN_H
#define DEISSN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(DEISSN_BUILDING_LIBRARY)
#define DEISSN_API __declspec(dllexport)
#elif defined(_WIN32)
#define DEISSN_API __declspec(dllimport)
#elif defined(__GNUC__)
#define DEISSN_API __attribute__((visibility("default")))
#else
#define DEISSN_API
#endif

/* ------------------------------------------------------------------------------------------ */
/* Version                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* The one source of the version: the Makefile, pkg-config, CMake, the Python package and the
 * Rust crates read it from here (tests check that they agree). DEISSN_ABI is the soname's
 * number (libdeissn.so.DEISSN_ABI): it changes only when a program built against an older
 * header could no longer run; additions keep it and go into a new symbol version node
 * (lib/deissn.map, docs/symbols.md). */
#define DEISSN_VERSION_MAJOR 0
#define DEISSN_VERSION_MINOR 4
#define DEISSN_VERSION_PATCH 1
#define DEISSN_VERSION_STRING "0.4.1"
#define DEISSN_ABI 1
/* MAJOR*10000 + MINOR*100 + PATCH, so versions compare as integers. */
#define DEISSN_VERSION_NUMBER \
    (DEISSN_VERSION_MAJOR * 10000 + DEISSN_VERSION_MINOR * 100 + DEISSN_VERSION_PATCH)

/* The version of the library actually loaded (compare with DEISSN_VERSION_NUMBER to detect a
 * header/library mismatch). Thread-safe, never fails. */
DEISSN_API uint32_t deissn_version_number(void);
/* "MAJOR.MINOR.PATCH" of the loaded library; a static string. */
DEISSN_API const char *deissn_version_string(void);
/* Whether TorchScript models can be loaded here: 1 when the torch plug-in
 * (libdeissn-torch.so) can be found and loaded, else 0 (deissn_last_error() then says why).
 * Answered at run time, once per process: the plug-in stays loaded, and a failed search is
 * remembered, so later calls (and deissn_model_load()) answer 0 with the same reasons at
 * once, without a new search; only a change of $DEISSN_PLUGIN_DIR makes it look again.
 * Thread-safe. */
DEISSN_API int32_t deissn_has_torch(void);

/* ------------------------------------------------------------------------------------------ */
/* Status codes (only ever appended)                                                          */
/* ------------------------------------------------------------------------------------------ */

#define DEISSN_OK 0
#define DEISSN_DONE 1                /* deissn_step(): the last step was taken; x is the sample */
#define DEISSN_E_INVALID_ARG (-1)    /* a NULL handle, an out-of-range value, bad params */
#define DEISSN_E_NOMEM (-2)          /* an allocation failed */
#define DEISSN_E_SIZE (-3)           /* a buffer size or shape does not match, or overflows */
#define DEISSN_E_NONFINITE (-4)      /* the model produced NaN or Inf; the state is unchanged */
#define DEISSN_E_STATE (-5)          /* a call out of sequence, e.g. deissn_step() after DONE */
#define DEISSN_E_IO (-6)             /* a file could not be opened, read or written */
#define DEISSN_E_FORMAT (-7)         /* a file is corrupt, truncated or not of the expected kind */
#define DEISSN_E_UNSUPPORTED (-8)    /* not available in this build (no libtorch, no CUDA, ...) */
#define DEISSN_E_MODEL (-9)          /* the model failed or returned the wrong shape or dtype */
#define DEISSN_E_CALLBACK (-10)      /* a caller-supplied callback returned an error */
#define DEISSN_E_MISMATCH (-11)      /* inputs of another noise schedule or run (tables,
                                        calibrators, tuning references) */
#define DEISSN_E_INTERNAL (-12)      /* a bug in libdeissn; please report it */

/* A static, human-readable name for a status code, e.g. "invalid argument". Never NULL. */
DEISSN_API const char *deissn_status_string(int32_t status);

/* The message of the last error on the calling thread, naming the argument, file or value
 * that caused it, e.g. "deissn_step: model output has NaN at element 1234 (step 3, tau
 * 0.64)". Never NULL ("" when no error happened yet). Valid until the next failing call on
 * this thread. Successful calls do not clear it. */
DEISSN_API const char *deissn_last_error(void);

/* ------------------------------------------------------------------------------------------ */
/* Objects                                                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef struct deissn_schedule deissn_schedule;   /* noise schedule + sampling times */
typedef struct deissn_sampler deissn_sampler;     /* coefficients and the step history */
typedef struct deissn_model deissn_model;         /* a C callback or a plug-in's model */
typedef struct deissn_normtable deissn_normtable; /* r(tau), calibration sums, tuned plans */
typedef struct deissn_calibrator deissn_calibrator; /* sums of |eps| while calibrating */
typedef struct deissn_reference deissn_reference;   /* a tuning run's reference solves */

/* ------------------------------------------------------------------------------------------ */
/* Schedules: the noise schedule alpha_bar(tau) and the sampling times                        */
/* ------------------------------------------------------------------------------------------ */

/* How alpha_bar (the cumulative product of 1 - beta) is defined. Discrete schedules have T
 * training steps; alpha_bar(tau) interpolates linearly in tau through the knots
 * (k/T, alpha_bar_k), k = 0..T, with alpha_bar_0 = 1, exactly like the reference code. */
typedef enum deissn_noise {
    DEISSN_NOISE_LINEAR = 0,          /* betas linspace(beta_start, beta_end, T) in float32,
                                         cumulative product in float32 (the reference's) */
    DEISSN_NOISE_SCALED_LINEAR = 1,   /* betas = linspace(sqrt(start), sqrt(end), T)^2 */
    DEISSN_NOISE_SQUAREDCOS_CAP_V2 = 2, /* cosine schedule, betas capped at 0.999 */
    DEISSN_NOISE_CUSTOM_BETAS = 3,    /* `custom` holds T betas in (0, 1) */
    DEISSN_NOISE_CUSTOM_ALPHAS_CUMPROD = 4, /* `custom` holds T values of alpha_bar, decreasing,
                                               in (0, 1] */
    DEISSN_NOISE_CONTINUOUS_VP = 5    /* continuous-time VP-linear: log alpha_bar(tau) =
                                         -(beta_min tau + (beta_max - beta_min) tau^2 / 2);
                                         model time t = tau*T - 1 with T = num_train_steps */
} deissn_noise;

/* How the N model-evaluation times tau_N > ... > tau_1 are chosen. The final time tau_0 is
 * always `tau_end` (0 by default, like the reference; tau_1 must be larger). N = `steps` is
 * the number of model evaluations (NFE). The first four reproduce the reference exactly
 * (numpy rounding included): model times t, then tau = (t + 1) / T. */
typedef enum deissn_spacing {
    DEISSN_SPACING_QUADRATIC = 0, /* t = (round(arange(T, 0, -T/N)) / T)^2 * T - 1 (default) */
    DEISSN_SPACING_TRAILING = 1,  /* t = round(arange(T, 0, -T/N)) - 1 */
    DEISSN_SPACING_LINSPACE = 2,  /* t = int(linspace(0, T - 1, N)), reversed */
    DEISSN_SPACING_LEADING = 3,   /* t = arange(0, N) * (T // N), reversed */
    DEISSN_SPACING_POWER = 4,     /* tau_k = tau_end + (1 - tau_end) (k/N)^power, k = N..1;
                                     power 1 is uniform in tau */
    DEISSN_SPACING_LOGSNR = 5,    /* uniform in log(alpha/sigma) from tau = 1 to tau_min_eval */
    DEISSN_SPACING_KARRAS = 6,    /* EDM: sigma/alpha uniform in its 1/rho-th power from tau = 1
                                     to tau_min_eval (rho = karras_rho) */
    DEISSN_SPACING_CUSTOM = 7     /* `custom_taus` holds tau_N, ..., tau_1 (strictly
                                     decreasing, in (tau_end, 1]) */
} deissn_spacing;

#define DEISSN_SCHEDULE_PARAMS_VERSION 1
typedef struct deissn_schedule_params {
    uint32_t version;            /* DEISSN_SCHEDULE_PARAMS_VERSION */
    int32_t noise;               /* deissn_noise; default DEISSN_NOISE_LINEAR */
    uint32_t num_train_steps;    /* T; default 1000 (also sets model time for continuous) */
    double beta_start;           /* LINEAR/SCALED_LINEAR; 0 = default (1e-4, 0.00085) */
    double beta_end;             /* LINEAR/SCALED_LINEAR; 0 = default (0.02, 0.012) */
    double beta_min;             /* CONTINUOUS_VP; default 0.1 */
    double beta_max;             /* CONTINUOUS_VP; default 20 */
    const double *custom;        /* CUSTOM_*: T values; copied, not kept */
    size_t custom_len;           /* must equal num_train_steps */
    int32_t spacing;             /* deissn_spacing; default DEISSN_SPACING_QUADRATIC */
    uint32_t steps;              /* N, model evaluations, 1..T; default 10 */
    double power;                /* POWER; default 1 (uniform in tau) */
    double karras_rho;           /* KARRAS; default 7 */
    double tau_min_eval;         /* LOGSNR/KARRAS: the last evaluation time tau_1;
                                    0 = default (1/T) */
    double tau_end;              /* tau_0, where sampling stops; default 0. A small value
                                    (e.g. 1e-3) stops early, like many continuous solvers */
    const double *custom_taus;   /* CUSTOM spacing: `steps` values; copied, not kept */
} deissn_schedule_params;

#define DEISSN_SCHEDULE_PARAMS_INIT \
    { DEISSN_SCHEDULE_PARAMS_VERSION, DEISSN_NOISE_LINEAR, 1000, 0.0, 0.0, 0.1, 20.0, NULL, 0, \
      DEISSN_SPACING_QUADRATIC, 10, 1.0, 7.0, 0.0, 0.0, NULL }

/* Fill the fields of `version` (pass DEISSN_SCHEDULE_PARAMS_VERSION) with the defaults, as
 * DEISSN_SCHEDULE_PARAMS_INIT does, and set params->version; nothing past that version's
 * fields is written. Every *_init() function of this header works this way.
 * Returns DEISSN_OK, or DEISSN_E_INVALID_ARG (params NULL, version 0 or newer than the
 * library's: the message gives both). */
DEISSN_API int32_t deissn_schedule_params_init(deissn_schedule_params *params, uint32_t version);

/* Create a schedule: the noise schedule and the N + 1 sampling times.
 * Ownership: the caller owns *out and frees it with deissn_schedule_free(). `params` and the
 *            arrays it points to are copied and may be freed after the call.
 * Threads:   a schedule is immutable; share it freely.
 * Returns:   DEISSN_OK; DEISSN_E_INVALID_ARG (unknown noise or spacing, steps 0 or > T,
 *            betas outside (0, 1), custom times not strictly decreasing, tau_end >= tau_1, a
 *            spacing that produces repeated times, unknown version, ...); DEISSN_E_NOMEM. */
DEISSN_API int32_t deissn_schedule_create(deissn_schedule **out,
                                          const deissn_schedule_params *params);

/* Release a reference to a schedule. NULL is allowed. */
DEISSN_API void deissn_schedule_free(deissn_schedule *schedule);

/* The number of steps N (model evaluations); 0 when schedule is NULL. */
DEISSN_API uint32_t deissn_schedule_steps(const deissn_schedule *schedule);

/* The number of training steps T; 0 when schedule is NULL. */
DEISSN_API uint32_t deissn_schedule_num_train_steps(const deissn_schedule *schedule);

/* Copy the N + 1 sampling times tau_N, ..., tau_0 (descending: taus[0] = tau_N, the first
 * model evaluation; taus[N] = tau_end) into `taus`, which has room for `capacity` values.
 * Returns DEISSN_OK; DEISSN_E_INVALID_ARG (NULL); DEISSN_E_SIZE (capacity < N + 1). */
DEISSN_API int32_t deissn_schedule_times(const deissn_schedule *schedule, double *taus,
                                         size_t capacity);

/* alpha_bar(tau) of the noise schedule, for tau in [0, 1] (clamped outside). NaN when
 * schedule is NULL. alpha(tau) = sqrt(alpha_bar), sigma(tau) = sqrt(1 - alpha_bar). */
DEISSN_API double deissn_schedule_alpha_bar(const deissn_schedule *schedule, double tau);

/* A 32-bit fingerprint of the noise schedule (CRC-32 of its alpha_bar knots rounded to
 * float32, and T), independent of the sampling times. Tables record the fingerprint of the
 * schedule they were made with. 0 when schedule is NULL. */
DEISSN_API uint32_t deissn_schedule_fingerprint(const deissn_schedule *schedule);

/* ------------------------------------------------------------------------------------------ */
/* Samplers                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* What the sampler's polynomial extrapolates. Both integrate the probability-flow ODE's
 * linear part exactly (exponential integrators) and differ in the quantity they assume to be
 * a polynomial over the last few evaluation times. */
typedef enum deissn_method {
    DEISSN_METHOD_EPS = 0,  /* DEIS and DEIS-SN: the noise prediction eps / r(tau), a
                               polynomial in tau (tAB-DEIS); the reference's method */
    DEISSN_METHOD_DATA = 1, /* the data prediction x0 = (x - sigma eps) / alpha, a polynomial
                               in lambda = log(alpha/sigma), integrated exactly: DEIS's
                               coefficients for the quantity DPM-Solver++ and UniPC
                               extrapolate. x0 stays bounded near tau = 0, where eps varies
                               fastest, which also keeps the corrector stable. The table is
                               not used (r normalises eps). A step ending at tau = 0 (lambda =
                               inf) is order 0 there: x = x0 */
    DEISSN_METHOD_LEARNED = 2 /* a linear multistep method whose weights were learned on one
                               model (a tuned plan's, docs/tuning.md): step i computes
                               x_next = w[0] x + w[1] eps_i + ... + w[5] eps_{i-4}, with eps the
                               model's output as eps and w = params->weights + i *
                               DEISSN_PLAN_WEIGHTS (the eps terms older than step 0 are 0).
                               No table, no corrector; order and lower_order_final are
                               ignored */
} deissn_method;

/* What the model predicts, and so how the sampler reads its output. The sampler converts it
 * to what its history holds (eps, or x0) in the same pass that updates the state:  sample (x0): eps = (x - alpha x0) / sigma;
 * v: eps = sigma x + alpha v. */
typedef enum deissn_prediction {
    DEISSN_PREDICT_EPSILON = 0,
    DEISSN_PREDICT_SAMPLE = 1,
    DEISSN_PREDICT_V = 2
} deissn_prediction;

#define DEISSN_SAMPLER_PARAMS_VERSION 4
typedef struct deissn_sampler_params {
    uint32_t version;          /* DEISSN_SAMPLER_PARAMS_VERSION */
    uint32_t order;            /* polynomial order 0..3 (0 with no table is DDIM); default 3.
                                  Step i uses p = min(order, steps already taken) */
    uint32_t lower_order_final; /* 1: the last steps lower their order so that the k-th step
                                   from the end uses at most order k - 1 (the last is order
                                   0), as DPM-Solver does; default 0 (the reference) */
    uint32_t allow_table_mismatch; /* 1: accept a table whose fingerprint differs from the
                                      schedule's; default 0 (DEISSN_E_MISMATCH) */
    /* Version 2 (an older struct is read as far as it goes; the rest take the defaults): */
    int32_t method;     /* deissn_method; default EPS (DEIS / DEIS-SN, the reference) */
    uint32_t corrector; /* 1 (METHOD_DATA only): before each step, correct the state with the
                           model output just evaluated there: an exponential Adams-Moulton
                           step through the predictor's nodes and the new one (one order
                           higher, in the manner of UniPC's UniC). Costs no model evaluation;
                           the last state is not corrected (that would take one more).
                           Refused with METHOD_EPS: there the correction multiplies the error
                           of eps by about sigma_from/sigma_to, which near tau = 0 diverges
                           (docs/presets.md). Default 0 */
    /* Version 3: */
    int32_t prediction; /* deissn_prediction: what the model's output is, for deissn_step()
                           and deissn_sample() alike; default EPSILON */
    /* Version 4: */
    const double *weights; /* METHOD_LEARNED only (required there): steps *
                              DEISSN_PLAN_WEIGHTS weights, step i's at weights + i *
                              DEISSN_PLAN_WEIGHTS (a tuned plan's: deissn_plan.weights);
                              copied by deissn_sampler_create(). Default NULL */
} deissn_sampler_params;

#define DEISSN_SAMPLER_PARAMS_INIT \
    { DEISSN_SAMPLER_PARAMS_VERSION, 3, 0, 0, DEISSN_METHOD_EPS, 0, DEISSN_PREDICT_EPSILON, NULL }

/* Fill the fields of `version` with the defaults (see deissn_schedule_params_init()): a
 * version-1 struct gets order, lower_order_final and allow_table_mismatch only. */
DEISSN_API int32_t deissn_sampler_params_init(deissn_sampler_params *params, uint32_t version);

/* Set the method fields of *params for a sampler known by name: "deis-sn" (METHOD_EPS, give
 * it a table), "deis" (METHOD_EPS, no table), "ddim" (METHOD_EPS, order 0, no table), "x0"
 * (METHOD_DATA), "x0-corrector" (METHOD_DATA with the corrector). Only method,
 * corrector and, for ddim, order are written; *uses_table (may be NULL) says whether the
 * sampler is meant to be given a normalization table (1 for deis-sn only).
 * Returns DEISSN_OK; DEISSN_E_INVALID_ARG (NULL params or name, a version-1 params struct
 * (it has no method), an unknown name: the message lists the names). On error nothing is
 * written. */
DEISSN_API int32_t deissn_sampler_params_by_name(deissn_sampler_params *params,
                                                 const char *name, int32_t *uses_table);

/* Create a sampler that walks `schedule`, normalised by `table` (NULL: plain DEIS; not used
 * with DEISSN_METHOD_DATA). All coefficients are computed here (microseconds to a
 * millisecond), once.
 * Ownership: the caller owns *out and frees it with deissn_sampler_free(); the sampler keeps
 *            `schedule` and `table` alive, so they may be freed first. params may be NULL
 *            (defaults).
 * Threads:   one thread at a time per sampler; schedules and tables may be shared.
 * Returns:   DEISSN_OK; DEISSN_E_INVALID_ARG (NULL schedule, order > 3, unknown version,
 *            method or prediction, corrector without METHOD_DATA, a schedule whose coefficients are not
 *            finite: times too close together, or alpha_bar 0 in double precision; the
 *            message names the step);
 *            DEISSN_E_MISMATCH (the table was made for another noise schedule);
 *            DEISSN_E_NOMEM. On error *out is NULL. */
DEISSN_API int32_t deissn_sampler_create(deissn_sampler **out, const deissn_schedule *schedule,
                                         const deissn_normtable *table,
                                         const deissn_sampler_params *params);

/* Release a sampler and its history (eps, or x0 with METHOD_DATA). NULL is allowed. */
DEISSN_API void deissn_sampler_free(deissn_sampler *sampler);

/* The number of steps N; 0 when sampler is NULL. */
DEISSN_API uint32_t deissn_sampler_steps(const deissn_sampler *sampler);

/* Where a sampler stands: what to evaluate the model at next. An output struct: set
 * `version` (DEISSN_STEP_INFO_INIT) before passing it. */
#define DEISSN_STEP_INFO_VERSION 1
typedef struct deissn_step_info {
    uint32_t version;   /* set by the caller: DEISSN_STEP_INFO_VERSION */
    uint32_t step;      /* index of the next step, 0..N-1 (N when done) */
    uint32_t steps;     /* N */
    double tau;         /* time of the next model evaluation */
    double model_t;     /* tau*T - 1: the reference's model time */
    double alpha;       /* sqrt(alpha_bar(tau)) */
    double sigma;       /* sqrt(1 - alpha_bar(tau)) */
} deissn_step_info;

#define DEISSN_STEP_INFO_INIT { DEISSN_STEP_INFO_VERSION, 0, 0, 0.0, 0.0, 0.0, 0.0 }

/* Fill *info with the time of the next model evaluation (on a fresh sampler: step 0 at
 * tau_N). Returns DEISSN_OK, DEISSN_DONE when all steps are taken (info->step == N, tau =
 * tau_end), or DEISSN_E_INVALID_ARG (NULL; info->version 0 or unknown). */
DEISSN_API int32_t deissn_sampler_next(const deissn_sampler *sampler, deissn_step_info *info);

/* Take one step: the caller evaluated the model at the time deissn_sampler_next() gave, on
 * state `x` (n floats: a whole batch, any shape), and passes its output `model_out` (n
 * floats; what it is, the sampler's params.prediction says). x is updated in place to the state at the next time, in one pass over memory;
 * the sampler keeps what it needs of model_out (its history of eps, or x0), so model_out
 * may be reused at once. The first step fixes n until deissn_sampler_reset().
 * If `info` is not NULL it receives the time of the next evaluation (as deissn_sampler_next).
 * Threads:   one thread at a time per sampler.
 * Returns:   DEISSN_OK: call the model again at info->model_t;
 *            DEISSN_DONE: that was the last step, x holds the sample;
 *            DEISSN_E_INVALID_ARG (NULL, info->version unknown); DEISSN_E_SIZE (n is 0 or differs
 *            from the first step's); DEISSN_E_NONFINITE (model_out has NaN or Inf: the message
 *            gives the step and element; x and the sampler are unchanged, so the caller may
 *            retry); DEISSN_E_STATE (the sampler is already done); DEISSN_E_NOMEM (first step
 *            only: the history is allocated then). */
DEISSN_API int32_t deissn_step(deissn_sampler *sampler, float *x, const float *model_out,
                               size_t n, deissn_step_info *info);

/* Rewind to step 0 for a new batch (of any size), keeping the coefficients and the history
 * memory. Returns DEISSN_OK or DEISSN_E_INVALID_ARG (NULL). */
DEISSN_API int32_t deissn_sampler_reset(deissn_sampler *sampler);

/* The coefficients of one step, for inspection and export. Step i (0-based, in sampling
 * order) goes from tau_from to tau_to:
 *   x_to = psi * x_from + sum_{j=0..4} c[j] * d_j / r_j
 * where x_from is the state the model was evaluated at and d_j the model's prediction at the
 * j-th most recent evaluation time (j = 0: tau_from) as the method uses it: eps (METHOD_EPS;
 * psi = alpha_to/alpha_from) or x0 (METHOD_DATA; psi = sigma_to/sigma_from); r_j is the
 * table's value there (1 without a table, and always with METHOD_DATA). Without the
 * corrector c[j] is the step's own coefficient and 0 for j > order; with it, c also carries
 * the correction of x_from (psi times the corrector's coefficients minus the previous
 * step's), so it can reach j = order + 1. An output struct: set `version`
 * (DEISSN_STEP_COEFFS_INIT) before passing it. */
#define DEISSN_MAX_TERMS 5
#define DEISSN_STEP_COEFFS_VERSION 1
typedef struct deissn_step_coeffs {
    uint32_t version;   /* set by the caller: DEISSN_STEP_COEFFS_VERSION */
    uint32_t step;      /* i */
    uint32_t order;     /* the predictor's order (after warm-up and lower_order_final) */
    double tau_from;
    double tau_to;
    double model_t;     /* tau_from*T - 1 */
    double psi;         /* alpha(tau_to) / alpha(tau_from) */
    double c[DEISSN_MAX_TERMS]; /* on the normalised eps; 0 where unused */
    double r[DEISSN_MAX_TERMS]; /* r at the evaluation times of c[] (1 without a table; 0
                                   unused) */
    uint32_t corrector_order; /* the order of the correction folded into c (0: none) */
} deissn_step_coeffs;

#define DEISSN_STEP_COEFFS_INIT \
    { DEISSN_STEP_COEFFS_VERSION, 0, 0, 0.0, 0.0, 0.0, 0.0, {0}, {0}, 0 }

/* Fill *out with the coefficients of step i (0..N-1).
 * Returns DEISSN_OK; DEISSN_E_INVALID_ARG (NULL, i >= N, out->version unknown). */
DEISSN_API int32_t deissn_sampler_coeffs(const deissn_sampler *sampler, uint32_t i,
                                         deissn_step_coeffs *out);

/* ------------------------------------------------------------------------------------------ */
/* Presets: tested sampling configurations for a number of model evaluations                  */
/* ------------------------------------------------------------------------------------------ */

/* Named configurations of the sampling fields of deissn_schedule_params and
 * deissn_sampler_params (docs/presets.md has the measurements behind them). */
typedef enum deissn_preset {
    DEISSN_PRESET_BEST = 0,      /* the configuration with the lowest error at this NFE in
                                    libdeissn's evaluation on two models (docs/presets.md):
                                    the spacing, order, lower_order_final, tau_end, method
                                    and corrector chosen per NFE */
    DEISSN_PRESET_REFERENCE = 1, /* the reference implementation's DEIS-SN setup, for
                                    reproducing the paper: quadratic spacing, tau_end 0,
                                    order 3, no lower_order_final (the structs' defaults) */
    DEISSN_PRESET_TUNED = 2      /* the plan tuned on this model and stored in its table
                                    (deissn_plan, deissn-calibrate): the table's plan for
                                    this NFE, or for the nearest tuned NFE below it; BEST when
                                    the table has no plans or none at or below this NFE */
} deissn_preset;

/* Set the sampling fields of `schedule` and `sampler` to `preset` for `nfe` model
 * evaluations. Both structs must have been initialised (DEISSN_*_PARAMS_INIT or *_init());
 * only these fields are written, as far as each struct's version has them:
 *   schedule: spacing, steps, power, karras_rho, tau_min_eval, tau_end, custom_taus;
 *   sampler:  order, lower_order_final, method, corrector, weights.
 * Everything else (the noise schedule, T, allow_table_mismatch, prediction) is left as the
 * caller set it, so BEST and REFERENCE combine with any noise schedule; a LOGSNR row that
 * stops at tau_end > 0 computes tau_min_eval from it. `table` (may be NULL) is the table the
 * caller samples with: TUNED reads its plans, and then schedule->custom_taus (and for a
 * METHOD_LEARNED plan sampler->weights, version 4) points into the table (valid while the
 * table lives) and schedule->steps is the plan's NFE, which is below
 * `nfe` when the table has no plan for exactly `nfe`. *use_table (may be NULL) says whether
 * to give the table to deissn_sampler_create(): 1 for the DEIS-SN rows and plans, 0 for the
 * others (they were measured without it). BEST was measured at 5, 6, 8, 10, 15 and 20; an nfe
 * in between uses the row below it (5 below 5, 20 above 20).
 * Threads:   reentrant.
 * Returns:   DEISSN_OK; DEISSN_E_INVALID_ARG (unknown preset, nfe 0 or above
 *            schedule->num_train_steps, a struct of an unknown version, both struct pointers
 *            NULL, a noise schedule deissn_schedule_create() refuses when a row needs it);
 *            DEISSN_E_MISMATCH (TUNED: the table's plans were tuned for another noise
 *            schedule than `schedule` describes, unless sampler->allow_table_mismatch). On
 *            error neither struct is changed. */
DEISSN_API int32_t deissn_preset_params(int32_t preset, uint32_t nfe,
                                        const deissn_normtable *table,
                                        deissn_schedule_params *schedule,
                                        deissn_sampler_params *sampler, int32_t *use_table);

/* ------------------------------------------------------------------------------------------ */
/* Models and the full sampling loop                                                          */
/* ------------------------------------------------------------------------------------------ */

/* A model implemented by the caller: write the prediction for the batch `x` at model time `t`
 * into `out`. `shape` has `ndim` entries, shape[0] is the batch size; x and out hold
 * prod(shape) floats (host memory, C order). `t` is in the model's time convention. Return 0
 * on success; any other value aborts the sampling with DEISSN_E_CALLBACK (the value is
 * reported in the message). */
typedef int (*deissn_model_fn)(void *user, const float *x, const int64_t *shape, uint32_t ndim,
                               double t, float *out);

/* What the model is given as its time argument. */
typedef enum deissn_time_convention {
    DEISSN_TIME_MODEL_INDEX = 0, /* tau*T - 1 (the reference; DDPM-style discrete models) */
    DEISSN_TIME_TAU = 1,         /* tau in [0, 1] */
    DEISSN_TIME_TAU_1000 = 2,    /* tau*1000 (score_sde continuous models) */
    DEISSN_TIME_SIGMA = 3        /* sigma/alpha (EDM/VE-style models) */
} deissn_time_convention;

typedef enum deissn_dtype {
    DEISSN_DTYPE_FLOAT32 = 0,
    DEISSN_DTYPE_FLOAT16 = 1,
    DEISSN_DTYPE_BFLOAT16 = 2
} deissn_dtype;

#define DEISSN_MODEL_PARAMS_VERSION 1
typedef struct deissn_model_params {
    uint32_t version;        /* DEISSN_MODEL_PARAMS_VERSION */
    int32_t time_convention; /* deissn_time_convention; default MODEL_INDEX */
    const char *backend;     /* deissn_model_load(): the plug-in that reads the file, by name
                                ("torch": TorchScript, libdeissn-torch.so); NULL (default):
                                "torch". What the model predicts is a sampler parameter
                                (deissn_sampler_params.prediction) */
    const char *device;      /* plug-ins: "cpu" (default, NULL) or "cuda", "cuda:N" */
    int32_t dtype;           /* plug-ins: deissn_dtype the model runs in; default FLOAT32 */
    int32_t num_threads;     /* torch: intra-op threads. 0 (default): leave libtorch's
                                setting alone (libtorch's own default is every core). The
                                setting is libtorch's and so PROCESS-GLOBAL (with OpenMP
                                builds: per calling thread): a model with num_threads > 0
                                sets it when it samples, for everything in the process that
                                uses libtorch. The tools pass 1 unless told otherwise: on a
                                busy machine one thread is faster than all (docs/benchmarks.md) */
} deissn_model_params;

#define DEISSN_MODEL_PARAMS_INIT \
    { DEISSN_MODEL_PARAMS_VERSION, DEISSN_TIME_MODEL_INDEX, NULL, NULL, DEISSN_DTYPE_FLOAT32, 0 }

/* Fill the fields of `version` with the defaults (see deissn_schedule_params_init()). */
DEISSN_API int32_t deissn_model_params_init(deissn_model_params *params, uint32_t version);

/* Wrap a C callback as a model. `user` is passed back untouched; the caller keeps it valid
 * for the model's lifetime. Only prediction and time_convention of params are used; params
 * may be NULL (defaults).
 * Threads:   the model may be shared by threads if `fn` is thread-safe.
 * Returns:   DEISSN_OK; DEISSN_E_INVALID_ARG (NULL fn, unknown enum value); DEISSN_E_NOMEM. */
DEISSN_API int32_t deissn_model_from_callback(deissn_model **out, deissn_model_fn fn,
                                              void *user, const deissn_model_params *params);

/* Load a model file through a backend plug-in (params->backend; NULL: "torch"). The plug-in
 * is a shared object, libdeissn-NAME.so.DEISSN_ABI, loaded at run time, so that programs that
 * never load a model file do not carry its dependencies (libtorch is some 290 libraries):
 * it is looked for in $DEISSN_PLUGIN_DIR when set, then next to libdeissn.so itself, then on
 * the system's library path, once per process and backend name (see deissn_has_torch(): a
 * failure is remembered until $DEISSN_PLUGIN_DIR changes). docs/backends.md describes the
 * plug-in interface.
 * torch: a TorchScript file (torch.jit.save) whose forward(x, t, ...) takes x of shape
 * [B, ...] and t of shape [B] (float32, in params->time_convention; further arguments must
 * have defaults) and returns a prediction of x's shape. It runs on params->device in
 * params->dtype under inference mode, and is given a copy of the state, so a forward that
 * writes into its input cannot corrupt the sampling.
 * Threads:   a loaded model may be shared by threads.
 * Returns:   DEISSN_OK; DEISSN_E_INVALID_ARG (NULL, bad device string, unknown backend
 *            name); DEISSN_E_IO (file cannot be read); DEISSN_E_MODEL (not TorchScript, no
 *            forward, wrong arity); DEISSN_E_UNSUPPORTED (the plug-in is absent, cannot be
 *            loaded or was built for another libdeissn: the message says which and where it
 *            looked; CUDA or a dtype the device cannot run); DEISSN_E_NOMEM. The message
 *            names the file and the problem. */
DEISSN_API int32_t deissn_model_load(deissn_model **out, const char *path,
                                     const deissn_model_params *params);

/* Release a reference to a model. NULL is allowed. */
DEISSN_API void deissn_model_free(deissn_model *model);

/* Called after each step of deissn_sample() with the step just taken (0-based) and N; return
 * 0 to go on, anything else to stop with DEISSN_E_CALLBACK. */
typedef int (*deissn_progress_fn)(void *user, uint32_t step, uint32_t steps);

/* What a successful deissn_sample() measured. An output struct: set `version`
 * (DEISSN_SAMPLE_STATS_INIT) before passing it. */
#define DEISSN_SAMPLE_STATS_VERSION 1
typedef struct deissn_sample_stats {
    uint32_t version;       /* set by the caller: DEISSN_SAMPLE_STATS_VERSION */
    uint32_t evaluations;   /* model evaluations (= steps) */
    double model_seconds;   /* wall time inside the model's forward */
    double sampler_seconds; /* wall time in everything else: updates, checks, copies */
} deissn_sample_stats;

#define DEISSN_SAMPLE_STATS_INIT { DEISSN_SAMPLE_STATS_VERSION, 0, 0.0, 0.0 }

#define DEISSN_SAMPLE_OPTIONS_VERSION 1
typedef struct deissn_sample_options {
    uint32_t version;             /* DEISSN_SAMPLE_OPTIONS_VERSION */
    deissn_progress_fn progress;  /* NULL: none */
    void *progress_user;
    deissn_sample_stats *stats;   /* NULL: none. Else filled when (and only when) the call
                                     succeeds */
    deissn_calibrator *calibrator; /* NULL: none. Else each step's eps (after conversion from
                                      the model's prediction: what the sampler uses) is added
                                      to it, and the batch size to its samples, once the whole
                                      sampling has succeeded. Its schedule must have the
                                      sampler's step times (DEISSN_E_MISMATCH otherwise), and
                                      the sampler METHOD_EPS (DEISSN_E_INVALID_ARG) */
} deissn_sample_options;

#define DEISSN_SAMPLE_OPTIONS_INIT { DEISSN_SAMPLE_OPTIONS_VERSION, NULL, NULL, NULL, NULL }

/* Fill the fields of `version` with the defaults (see deissn_schedule_params_init()). */
DEISSN_API int32_t deissn_sample_options_init(deissn_sample_options *options, uint32_t version);

/* The most dimensions a sample shape may have (batch included). */
#define DEISSN_MAX_NDIM 8

/* Run a whole sampling: reset `sampler`, then for each step evaluate `model` and take the
 * step. `x` holds the initial noise on entry (prod(shape) floats, shape[0] = batch) and the
 * samples on return. The loop is the same for every model: the state and the history live
 * on the model's device (host memory for a callback model; a plug-in's device otherwise: x
 * is copied there once and back once), the update there is the same arithmetic as
 * deissn_step()'s (double precision, one rounding to float32 per value), and after each
 * step the model output and the new state are checked to be finite. options may be NULL.
 * Threads:   one thread at a time per sampler; the model may be shared.
 * Returns:   DEISSN_OK; DEISSN_E_INVALID_ARG (NULL, ndim 0 or > DEISSN_MAX_NDIM, a dimension
 *            <= 0, an unknown options or stats version); DEISSN_E_SIZE (the element count
 *            overflows; a calibration sum would overflow); DEISSN_E_MISMATCH
 *            (options->calibrator has other step times); DEISSN_E_NONFINITE (the model's
 *            output, or the state after a step, is NaN or Inf: the message names the step,
 *            the element and which); DEISSN_E_MODEL; DEISSN_E_CALLBACK (a callback returned
 *            non-zero: the model's, or the progress callback's to cancel); DEISSN_E_NOMEM.
 *            On error x, options->calibrator and options->stats are left as they were. */
DEISSN_API int32_t deissn_sample(deissn_sampler *sampler, deissn_model *model, float *x,
                                 const int64_t *shape, uint32_t ndim,
                                 const deissn_sample_options *options);

/* ------------------------------------------------------------------------------------------ */
/* Noise                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* Fill out[0 .. n_samples*sample_numel) with standard normal noise for the samples
 * first_sample, first_sample + 1, ...: sample k's values depend only on (seed, k), so a
 * sample is the same whatever the batch it is drawn in, and the same on every platform
 * (counter-based generator, arithmetic with no platform-dependent rounding).
 * Returns DEISSN_OK; DEISSN_E_INVALID_ARG (NULL out); DEISSN_E_SIZE (the count overflows). */
DEISSN_API int32_t deissn_fill_noise(uint64_t seed, uint64_t first_sample, size_t n_samples,
                                     size_t sample_numel, float *out);

/* ------------------------------------------------------------------------------------------ */
/* Normalization tables: r(tau), the mean |eps| of the model at time tau                      */
/* ------------------------------------------------------------------------------------------ */

/* The longest metadata string a table carries, in bytes (not counting the NUL). */
#define DEISSN_NORMTABLE_METADATA_MAX 65535

/* A tuned plan: how to sample one model with exactly `nfe` model evaluations, learned by the
 * calibration run (deissn-calibrate; docs/tuning.md) and stored in the model's table. The
 * times are free (not a named spacing). An output struct when read from a table: set
 * `version` (DEISSN_PLAN_INIT) first. An array of plans given to the library (a table's
 * params) is read with the stride of its first element's version; all must share it. A
 * version-1 plan read from a table can carry method DEISSN_METHOD_LEARNED (2), whose weights
 * only version 2 holds. */
#define DEISSN_PLAN_MAX_NFE 64
#define DEISSN_PLAN_WEIGHTS 6 /* per step of a METHOD_LEARNED plan: x and 5 eps terms */
#define DEISSN_PLAN_VERSION 2
typedef struct deissn_plan {
    uint32_t version;           /* DEISSN_PLAN_VERSION */
    uint32_t nfe;               /* model evaluations, 1..DEISSN_PLAN_MAX_NFE */
    int32_t method;             /* deissn_method */
    uint32_t order;             /* 0..3 */
    uint32_t corrector;         /* 1: METHOD_DATA with the corrector */
    uint32_t lower_order_final; /* as in deissn_sampler_params */
    uint32_t uses_table;        /* 1: METHOD_EPS normalised by the table the plan is in */
    uint32_t samples;           /* held-out samples the errors were measured on */
    double tau_end;             /* where sampling stops */
    double taus[DEISSN_PLAN_MAX_NFE]; /* tau_N > ... > tau_1 > tau_end; the first nfe */
    double error;               /* held-out RMSE of the samples against a converged solution
                                   of the same ODE from the same noise */
    double error_low, error_high; /* its 95 % bootstrap interval */
    double best_error;          /* the same measure, same samples, for DEISSN_PRESET_BEST */
    /* Version 2: */
    double weights[DEISSN_PLAN_MAX_NFE][DEISSN_PLAN_WEIGHTS]; /* METHOD_LEARNED: step i's
                                   weights (deissn_method), the first nfe rows; else 0 */
} deissn_plan;

#define DEISSN_PLAN_INIT \
    { DEISSN_PLAN_VERSION, 0, 0, 0, 0, 0, 0, 0, 0.0, {0}, 0.0, 0.0, 0.0, 0.0, {{0}} }

/* The most plans a table holds. */
#define DEISSN_NORMTABLE_MAX_PLANS 64

/* What a table records beside its knots. Every function that makes a table takes one (NULL:
 * the defaults), so a fingerprint, a clip or metadata is set the same way everywhere; zero
 * and NULL mean "what the source has" (nothing for deissn_normtable_create()). */
#define DEISSN_NORMTABLE_PARAMS_VERSION 2
typedef struct deissn_normtable_params {
    uint32_t version;      /* DEISSN_NORMTABLE_PARAMS_VERSION */
    uint32_t fingerprint;  /* deissn_schedule_fingerprint() of the schedule the values were
                              measured with; 0 (default): the source's (create: unknown,
                              which matches any schedule) */
    uint32_t clip;         /* the `clip` knots nearest tau = 0 take the value of the next one
                              (r[0..clip-1] = r[clip]), as the reference does: the model's
                              output is least reliable there. Applied on top of the source's
                              own clip (the larger one holds); default 0 */
    const char *metadata;  /* UTF-8 text kept with the table (model, settings, command...),
                              at most DEISSN_NORMTABLE_METADATA_MAX bytes; copied, not kept.
                              NULL (default): the source's; "": none */
    /* Version 2: */
    const deissn_plan *plans; /* the table's tuned plans, n_plans of them with distinct nfe
                                 (copied; any order), at most DEISSN_NORMTABLE_MAX_PLANS.
                                 NULL (default): the source's; n_plans 0 with a non-NULL
                                 pointer: none */
    size_t n_plans;
} deissn_normtable_params;

#define DEISSN_NORMTABLE_PARAMS_INIT { DEISSN_NORMTABLE_PARAMS_VERSION, 0, 0, NULL, NULL, 0 }

/* Fill the fields of `version` with the defaults (see deissn_schedule_params_init()). */
DEISSN_API int32_t deissn_normtable_params_init(deissn_normtable_params *params, uint32_t version);

/* Create a table from n >= 2 knots (tau[i], r[i]): tau strictly increasing in [0, 1], r
 * finite and > 0 (after the clip, so clipped knots may hold any value). r(tau) interpolates
 * linearly between knots and is constant beyond the first and last knot.
 * Ownership: the caller owns *out (deissn_normtable_free()); the arrays are copied.
 * Threads:   a table is immutable; share it freely.
 * Returns:   DEISSN_OK; DEISSN_E_INVALID_ARG (NULL array, n < 2, unsorted tau, tau outside
 *            [0, 1], r NaN/Inf/<= 0: the message names the index; an unknown params
 *            version, clip >= n, metadata too long or not UTF-8); DEISSN_E_NOMEM. */
DEISSN_API int32_t deissn_normtable_create(deissn_normtable **out, const double *tau,
                                           const double *r, size_t n,
                                           const deissn_normtable_params *params);

/* Create a table from the reference implementation's arrays (the `score_abs` and `Ls` tensors
 * of its .pt files, n entries each, in sampling order of an n-step trailing run): r =
 * reverse(score_abs * Ls) (the product taken in double), params->clip applied, and entry j
 * placed at tau = j/(n-1). The table records the fingerprint of the reference schedule
 * (linear, T = 1000) when n == 1000 and params->fingerprint is 0.
 * Returns: as deissn_normtable_create(). */
DEISSN_API int32_t deissn_normtable_from_reference(deissn_normtable **out,
                                                   const float *score_abs, const float *Ls,
                                                   size_t n,
                                                   const deissn_normtable_params *params);

/* A copy of `table` with params applied (a new fingerprint, a further clip, new metadata);
 * everything else, calibration sums included, is the same. Tables are immutable, so this is
 * how a loaded or calibrated table is labelled before deissn_normtable_save().
 * Ownership: the caller owns *out; `table` is unchanged.
 * Returns:   DEISSN_OK; DEISSN_E_INVALID_ARG (NULL out or table, params as for
 *            deissn_normtable_create()); DEISSN_E_NOMEM. */
DEISSN_API int32_t deissn_normtable_copy(deissn_normtable **out, const deissn_normtable *table,
                                         const deissn_normtable_params *params);

/* The number of tuned plans the table holds (0 when table is NULL). */
DEISSN_API size_t deissn_normtable_plan_count(const deissn_normtable *table);

/* Plan i (0..count-1, in increasing nfe) into *plan (its version set by the caller).
 * Returns DEISSN_OK; DEISSN_E_INVALID_ARG (NULL, i out of range, plan->version unknown). */
DEISSN_API int32_t deissn_normtable_plan(const deissn_normtable *table, size_t i,
                                         deissn_plan *plan);

/* Release a reference to a table. NULL is allowed. */
DEISSN_API void deissn_normtable_free(deissn_normtable *table);

/* r(tau) by linear interpolation (constant beyond the end knots). NaN when table is NULL. */
DEISSN_API double deissn_normtable_eval(const deissn_normtable *table, double tau);

/* The number of knots; 0 when table is NULL. */
DEISSN_API size_t deissn_normtable_size(const deissn_normtable *table);

/* Knot i: *tau and *r (either may be NULL).
 * Returns DEISSN_OK; DEISSN_E_INVALID_ARG (NULL table, i >= size). */
DEISSN_API int32_t deissn_normtable_knot(const deissn_normtable *table, size_t i, double *tau,
                                         double *r);

/* The fingerprint of the schedule the table was made for (see deissn_schedule_fingerprint());
 * 0 means "unknown": the table is accepted with any schedule. 0 when table is NULL. */
DEISSN_API uint32_t deissn_normtable_fingerprint(const deissn_normtable *table);

/* What is known about how a table was made. An output struct: set `version`
 * (DEISSN_NORMTABLE_INFO_INIT) before passing it. */
#define DEISSN_NORMTABLE_INFO_VERSION 1
typedef struct deissn_normtable_info {
    uint32_t version;     /* set by the caller: DEISSN_NORMTABLE_INFO_VERSION */
    size_t n_knots;       /* deissn_normtable_size() */
    uint64_t samples;     /* samples the sampling runs that measured it made; 0 = unknown */
    uint32_t steps;       /* steps of those runs; 0 = unknown */
    uint32_t clip;        /* how many knots nearest tau = 0 were clipped */
    uint32_t fingerprint; /* deissn_normtable_fingerprint(); 0 = unknown */
    int32_t has_sums;     /* 1: the table keeps the calibration sums it was made from, so it
                             can be merged (deissn_calibrator_from_table()); 0: made from
                             plain values (deissn_normtable_create(), the reference's files) */
} deissn_normtable_info;

#define DEISSN_NORMTABLE_INFO_INIT { DEISSN_NORMTABLE_INFO_VERSION, 0, 0, 0, 0, 0, 0 }

/* Fill *info. The reference's files report steps = their length and samples = 0.
 * Returns DEISSN_OK or DEISSN_E_INVALID_ARG (NULL, info->version unknown). */
DEISSN_API int32_t deissn_normtable_get_info(const deissn_normtable *table,
                                             deissn_normtable_info *info);

/* The table's metadata, a NUL-terminated UTF-8 string ("" when it has none, or when table is
 * NULL). Valid as long as the table lives. */
DEISSN_API const char *deissn_normtable_metadata(const deissn_normtable *table);

/* Write `table` to `path` in libdeissn's own table format (docs/table-format.md: knots,
 * clip, fingerprint, calibration sums, metadata; zlib-compressed, CRC-checked).
 * Where:     a symbolic link is followed (through any chain) and its target written; the
 *            link stays. The bytes go to a temporary ".NAME.deissn-tmp-PID-K" in the
 *            target's directory, which is synced and renamed over the target once complete,
 *            so the target never holds a partial table, even if the process dies. An
 *            existing target keeps its mode (and its owner and group where the process may
 *            set them). Temporaries of the same NAME left by processes that no longer exist
 *            (killed during a save) are removed by the next save. A `path` that exists and
 *            is not a regular file (a FIFO, a character device such as /dev/null,
 *            /dev/stdout on a pipe or terminal) is written directly, without a temporary;
 *            a FIFO's open waits for a reader.
 * Threads:   any number of threads may save the same table (to different paths).
 * Returns:   DEISSN_OK; DEISSN_E_INVALID_ARG (NULL); DEISSN_E_SIZE (more knots than the
 *            format allows, 1000000); DEISSN_E_IO (a directory, cannot create, write, sync
 *            or rename: the message names the file and the system's reason; no temporary
 *            file is left behind); DEISSN_E_NOMEM. */
DEISSN_API int32_t deissn_normtable_save(const deissn_normtable *table, const char *path);

/* Write the knots as CSV for plotting: a header line "tau,r" (or "tau,r,sum,count" for a
 * table with calibration sums), then one line per knot in increasing tau, with 17
 * significant digits (the doubles round-trip). Written where and as deissn_normtable_save()
 * writes (links followed, atomically through a temporary, the mode kept; FIFOs and devices
 * directly).
 * Returns: as deissn_normtable_save(). */
DEISSN_API int32_t deissn_normtable_export_csv(const deissn_normtable *table, const char *path);

/* Load a table from a file, recognised by its first bytes: libdeissn's own format (written
 * by deissn_normtable_save(), read back bit for bit), or the reference implementation's
 * torch.save files (a dict with float32 tensors `score_abs` and `Ls`, read as
 * deissn_normtable_from_reference() does, without libtorch and without a GPU even when the
 * storage is tagged cuda). params (NULL: none) applies as in deissn_normtable_copy(): the
 * reference's files want their clip (5 for CIFAR-10, 1 for LSUN Church).
 * Ownership: the caller owns *out (deissn_normtable_free()).
 * Threads:   reentrant.
 * Returns: DEISSN_OK; DEISSN_E_INVALID_ARG (NULL, params as for deissn_normtable_create());
 *          DEISSN_E_IO (cannot
 *          open or read: the message names the file); DEISSN_E_FORMAT (neither format: the
 *          message names the file and its first bytes; a future format version; truncated,
 *          CRC mismatch, sizes that disagree, values that are not a valid table; no
 *          `score_abs` or `Ls`, not float32: the message names the file and the problem);
 *          DEISSN_E_NOMEM. */
DEISSN_API int32_t deissn_normtable_load(deissn_normtable **out, const char *path,
                                         const deissn_normtable_params *params);

/* ------------------------------------------------------------------------------------------ */
/* Calibration: measuring r(tau) for a model                                                  */
/* ------------------------------------------------------------------------------------------ */

/* A calibrator accumulates, for each step of a (typically 1000-step, trailing) sampling run,
 * the sum of |eps| over every element of every sample and how many elements that was. The
 * sums are exact integers: each |eps| is added as floor(|eps| * 2^24), i.e. in fixed point
 * with 24 fractional bits, truncated (so each value loses less than 6e-8), into an int64;
 * the counts are uint64. Integer sums make merging exact and order-free: however the
 * samples are split into batches, processes or machines, merged calibrators hold the same
 * bits. deissn_calibrator_finish() turns the sums into a table:
 * r = (sum / 2^24) / count, in double, at each step's time.
 * Threads: one thread at a time per calibrator. */

/* Create an empty calibrator for sampling runs over `schedule`'s steps (N >= 2; step i is
 * evaluated at tau_from = deissn_schedule_times()[i]). The calibrator records the
 * schedule's times and fingerprint; it does not keep the schedule.
 * Ownership: the caller owns *out and frees it with deissn_calibrator_free().
 * Returns:   DEISSN_OK; DEISSN_E_INVALID_ARG (NULL, fewer than 2 steps); DEISSN_E_NOMEM. */
DEISSN_API int32_t deissn_calibrator_create(deissn_calibrator **out,
                                            const deissn_schedule *schedule);

/* Create a calibrator holding the sums a table was made from, to merge it with others.
 * Returns: DEISSN_OK; DEISSN_E_INVALID_ARG (NULL; the table has no calibration sums);
 *          DEISSN_E_NOMEM. */
DEISSN_API int32_t deissn_calibrator_from_table(deissn_calibrator **out,
                                                const deissn_normtable *table);

/* Release a calibrator. NULL is allowed. */
DEISSN_API void deissn_calibrator_free(deissn_calibrator *calibrator);

/* The number of steps N; 0 when calibrator is NULL. */
DEISSN_API uint32_t deissn_calibrator_steps(const deissn_calibrator *calibrator);

/* Add the eps (n values, any layout) that a sampling run used at `step`, for callers that run
 * their own loop (deissn_sample() does this itself given options->calibrator). `samples` is
 * added to the number of samples the table is made from: pass the batch size once per batch
 * (e.g. with step 0) and 0 otherwise.
 * Returns: DEISSN_OK; DEISSN_E_INVALID_ARG (NULL, step >= N); DEISSN_E_NONFINITE (NaN or
 *          Inf: the message gives the step and element); DEISSN_E_SIZE (an |eps| >= 2^39,
 *          or the step's int64 sum or a count would overflow: the message gives the step).
 *          On error the calibrator is unchanged. */
DEISSN_API int32_t deissn_calibrator_add(deissn_calibrator *calibrator, uint32_t step,
                                         const float *eps, size_t n, uint64_t samples);

/* Add `src`'s sums, counts and samples to `dst` (src is unchanged; it may not be dst).
 * Returns: DEISSN_OK; DEISSN_E_INVALID_ARG (NULL, src == dst); DEISSN_E_MISMATCH (a
 *          different number of steps, different step times or schedule fingerprint);
 *          DEISSN_E_SIZE (a sum or count would overflow). On error dst is unchanged. */
DEISSN_API int32_t deissn_calibrator_merge(deissn_calibrator *dst,
                                           const deissn_calibrator *src);

/* Copy the raw state out: sums[i] and counts[i] of step i (sampling order, i = 0..N-1;
 * either array may be NULL) and *samples (may be NULL). With deissn_calibrator_add_sums()
 * this lets a caller reduce calibrators across processes itself (e.g. torch.distributed
 * all_reduce of the int64 arrays), bit-exactly.
 * Returns: DEISSN_OK; DEISSN_E_INVALID_ARG (NULL calibrator); DEISSN_E_SIZE (capacity < N
 *          with an array given). */
DEISSN_API int32_t deissn_calibrator_get_sums(const deissn_calibrator *calibrator,
                                              int64_t *sums, uint64_t *counts, size_t capacity,
                                              uint64_t *samples);

/* Add raw sums and counts (n = N values each, sampling order, sums >= 0) and `samples`.
 * Returns: DEISSN_OK; DEISSN_E_INVALID_ARG (NULL, a negative sum); DEISSN_E_SIZE (n != N;
 *          a sum or count would overflow). On error the calibrator is unchanged. */
DEISSN_API int32_t deissn_calibrator_add_sums(deissn_calibrator *calibrator,
                                              const int64_t *sums, const uint64_t *counts,
                                              size_t n, uint64_t samples);

/* Make a table: one knot per step at its time (increasing tau), r = (sum / 2^24) / count,
 * then params applied (NULL: none): params->clip knots nearest tau = 0 clipped, params->
 * metadata recorded, the fingerprint the calibrator's schedule's unless params sets one. The
 * table keeps the sums and counts (so it can be merged later), the samples and the steps.
 * The calibrator is unchanged and may go on accumulating.
 * Ownership: the caller owns *out.
 * Returns:   DEISSN_OK; DEISSN_E_INVALID_ARG (NULL, params as for deissn_normtable_create(),
 *            a step whose r is 0 after the clip); DEISSN_E_STATE (a step has no values yet);
 *            DEISSN_E_NOMEM. On error *out is NULL. */
DEISSN_API int32_t deissn_calibrator_finish(deissn_normtable **out,
                                            const deissn_calibrator *calibrator,
                                            const deissn_normtable_params *params);

/* ------------------------------------------------------------------------------------------ */
/* Tuning: learning the plans that sample one model best                                      */
/* ------------------------------------------------------------------------------------------ */

/* What deissn_tune() measures and searches (docs/tuning.md). */
#define DEISSN_TUNE_PARAMS_VERSION 1
typedef struct deissn_tune_params {
    uint32_t version;         /* DEISSN_TUNE_PARAMS_VERSION */
    uint32_t nfe_min, nfe_max; /* the NFE range to tune, 2 <= min <= max <= 64; default 3, 25 */
    uint32_t grid_steps;      /* evaluation times of the reference solves (DEIS order 3 on
                                 tau = tau_last + (1 - tau_last) u^1.5, u uniform, then the
                                 step to 0); plans choose among every other one; default 400 */
    uint32_t fit_samples;     /* reference trajectories that choose the plans: the first
                                 half searches, the second half only confirms the chosen
                                 plan against BEST, which replaces a plan that is worse
                                 there; default 128 */
    uint32_t holdout_samples; /* further trajectories that only measure them; default 256 */
    uint32_t batch;           /* samples per model evaluation in the reference solves;
                                 default 64 */
    uint64_t seed;            /* trajectory k starts from deissn_fill_noise(seed, k); default 0 */
    int32_t prediction;       /* deissn_prediction: what the model predicts; default EPSILON */
    deissn_progress_fn progress; /* NULL: none. Called with (work done, total work) in
                                    model evaluations of a batch, during the search too
                                    (whose total is an estimate, revised after each NFE:
                                    done never passes it, and the last call has done ==
                                    total); non-zero stops with DEISSN_E_CALLBACK */
    void *progress_user;
} deissn_tune_params;

#define DEISSN_TUNE_PARAMS_INIT \
    { DEISSN_TUNE_PARAMS_VERSION, 3, 25, 400, 128, 256, 64, 0, DEISSN_PREDICT_EPSILON, NULL, NULL }

/* Fill the fields of `version` with the defaults (see deissn_schedule_params_init()). */
DEISSN_API int32_t deissn_tune_params_init(deissn_tune_params *params, uint32_t version);

/* Learn, for each NFE of the range, the plan with the lowest error on `model`: solve the
 * model's probability-flow ODE accurately from fit + holdout seeds (recording the states and
 * eps along the way, and calibrating r(tau) from the same evaluations), search the
 * evaluation times, method, order and final-step policy on the fit trajectories (dynamic
 * programming over the grid on teacher-forced local errors, then real runs and a refinement
 * of the times against the true error), fit a learned plan (DEISSN_METHOD_LEARNED: each
 * step's weights by least squares against the reference, in a rollout), let fit
 * trajectories that made no choice pick among it, the searched plan and BEST, and measure
 * each chosen plan, and BEST, on the hold-out trajectories only. *out is a table that carries the plans: a copy of `table`
 * (its plans replaced; the DEIS-SN candidates use it), or, when table is NULL, the table the
 * reference solves calibrated (their evaluation times as knots, with calibration sums).
 * `noise` is the model's noise schedule (its sampling fields are ignored); sample_shape has
 * sample_ndim dimensions, without the batch. Costs about (fit + holdout) * grid_steps model
 * evaluations for the references and as much again for the search, on the model's device.
 * Ownership: the caller owns *out.
 * Threads:   reentrant; the model is used by this thread only during the call.
 * Returns:   DEISSN_OK; DEISSN_E_INVALID_ARG (NULL, ranges, unknown version);
 *            DEISSN_E_MISMATCH (a table made for another noise schedule); DEISSN_E_MODEL;
 *            DEISSN_E_NONFINITE; DEISSN_E_CALLBACK (the progress callback stopped it);
 *            DEISSN_E_NOMEM. On error *out is NULL. */
DEISSN_API int32_t deissn_tune(deissn_normtable **out, deissn_model *model,
                               const deissn_schedule_params *noise,
                               const deissn_normtable *table, const int64_t *sample_shape,
                               uint32_t sample_ndim, const deissn_tune_params *params);

/* Tuning across processes or machines: deissn_tune() in its two halves. The reference solves
 * (the part of the cost that grows with the fit and hold-out samples) are split by trajectory:
 * each worker solves its share into a deissn_reference, which travels as bytes
 * (deissn_reference_to_bytes); one process merges the parts and runs the search
 * (deissn_tune_reference). A reference keeps only what the search reads, in exact sums: the
 * Gram matrix of the recorded states and eps of the searching trajectories (128-bit fixed
 * point), the calibration sums (deissn_calibrator's), and each trajectory's start and its two
 * possible ends; so merged parts hold the same bits as one solve of every trajectory, in any
 * order of merging, and give the same plans as deissn_tune() with the same params, on the same
 * model, device and library (bindings/python/examples/tune_distributed.py; docs/tuning.md).
 * Its memory: about 8 * grid_steps^2 bytes for the sums, plus 12 bytes per trajectory and
 * sample value, plus 2 * grid_steps bytes per searching trajectory (the first half of the
 * fit ones) and sample value (their paths, the learned plans' targets); a solve also holds one batch's recording, 4 * grid_steps * batch * sample
 * values bytes, while the batch holds searching trajectories.
 * Threads: a reference is immutable once made; any thread may read it. */

/* Solve trajectories first .. first + count - 1 of the reference that deissn_tune() with
 * `params` would solve (count 0: to the last; the run has params->fit_samples +
 * params->holdout_samples trajectories, trajectory k starting from deissn_fill_noise(
 * params->seed, k)); model, noise, sample_shape and sample_ndim as for deissn_tune(). The
 * model is evaluated in batches that start at multiples of params->batch, as one whole solve
 * evaluates them, so a part that starts at such a multiple gives the whole solve's bits even
 * for a model whose output depends on its batch (split work at batch boundaries).
 * params->progress is called with (model evaluations of a batch done, of this part).
 * Ownership: the caller owns *out and frees it with deissn_reference_free().
 * Threads:   reentrant; the model is used by this thread only during the call.
 * Returns:   DEISSN_OK; DEISSN_E_INVALID_ARG (NULL, ranges: first + count beyond the run,
 *            params as for deissn_tune()); DEISSN_E_MODEL; DEISSN_E_NONFINITE (also a state
 *            too large for the exact sums, |x|^2 above 2^40); DEISSN_E_CALLBACK;
 *            DEISSN_E_NOMEM. On error *out is NULL. */
DEISSN_API int32_t deissn_reference_solve(deissn_reference **out, deissn_model *model,
                                          const deissn_schedule_params *noise,
                                          const int64_t *sample_shape, uint32_t sample_ndim,
                                          const deissn_tune_params *params, uint64_t first,
                                          uint64_t count);

/* Merge n_parts >= 1 parts of one run (in any order) into one reference: they must agree on
 * the run (noise schedule, grid_steps, fit and hold-out samples, seed, prediction, batch,
 * sample shape) and their trajectory ranges must be disjoint and together contiguous. The
 * parts are unchanged.
 * Ownership: the caller owns *out.
 * Returns:   DEISSN_OK; DEISSN_E_INVALID_ARG (NULL, n_parts 0); DEISSN_E_MISMATCH (another
 *            run: the message names the field and the parts; overlapping or gapped ranges:
 *            it names the trajectories); DEISSN_E_NOMEM. On error *out is NULL. */
DEISSN_API int32_t deissn_reference_merge(deissn_reference **out,
                                          const deissn_reference *const *parts,
                                          size_t n_parts);

/* The trajectories ref holds, first .. first + count - 1, of the run's total (each pointer
 * may be NULL). A reference deissn_tune_reference() takes has first 0 and count == total.
 * Returns: DEISSN_OK; DEISSN_E_INVALID_ARG (NULL ref). */
DEISSN_API int32_t deissn_reference_range(const deissn_reference *ref, uint64_t *first,
                                          uint64_t *count, uint64_t *total);

/* Serialise ref into buf (capacity bytes; buf may be NULL with capacity 0 to ask the size):
 * *size receives the bytes it takes in either case. The bytes are little-endian, carry a
 * CRC-32 and are the same on every platform (docs/reference-format.md).
 * Returns: DEISSN_OK; DEISSN_E_INVALID_ARG (NULL ref or size, NULL buf with a capacity);
 *          DEISSN_E_SIZE (capacity below *size: nothing written). */
DEISSN_API int32_t deissn_reference_to_bytes(const deissn_reference *ref, void *buf,
                                             size_t capacity, size_t *size);

/* A reference from deissn_reference_to_bytes()'s bytes, checked before use (every size
 * against the length, the CRC-32, the times, the sums, finite states).
 * Ownership: the caller owns *out.
 * Returns:   DEISSN_OK; DEISSN_E_INVALID_ARG (NULL); DEISSN_E_FORMAT (not a reference, a
 *            newer format version, truncated or corrupt bytes: the message names the byte
 *            offset or the field); DEISSN_E_NOMEM. On error *out is NULL. */
DEISSN_API int32_t deissn_reference_from_bytes(deissn_reference **out, const void *data,
                                               size_t size);

/* Release a reference. NULL is allowed. */
DEISSN_API void deissn_reference_free(deissn_reference *ref);

/* The search half of deissn_tune(): plans for params->nfe_min .. nfe_max from a complete
 * reference (first 0, every trajectory), on `model` (the one the reference was solved on;
 * the search runs candidate plans on it), `noise` (the reference's noise schedule) and
 * `table` (as for deissn_tune(); NULL: the table the reference's calibration sums make).
 * params->grid_steps, fit_samples, holdout_samples, seed and prediction must be the
 * reference's (batch is not used); params->progress counts NFEs searched.
 * deissn_tune() is deissn_reference_solve() of every trajectory and then this.
 * Ownership: the caller owns *out.
 * Returns:   DEISSN_OK; DEISSN_E_INVALID_ARG (NULL, ranges, an incomplete reference: its
 *            range named); DEISSN_E_MISMATCH (params, noise or table of another run: the
 *            field named); DEISSN_E_MODEL; DEISSN_E_NONFINITE; DEISSN_E_CALLBACK;
 *            DEISSN_E_NOMEM. On error *out is NULL. */
DEISSN_API int32_t deissn_tune_reference(deissn_normtable **out, deissn_model *model,
                                         const deissn_schedule_params *noise,
                                         const deissn_normtable *table,
                                         const deissn_reference *ref,
                                         const deissn_tune_params *params);

/* ------------------------------------------------------------------------------------------ */
/* Names: one spelling of every enum value, for tools, bindings and configuration files       */
/* ------------------------------------------------------------------------------------------ */

/* The enums of this header that have names. */
typedef enum deissn_enum {
    DEISSN_ENUM_NOISE = 0,      /* deissn_noise: linear, scaled_linear, squaredcos_cap_v2,
                                   custom_betas, custom_alphas_cumprod, continuous_vp */
    DEISSN_ENUM_SPACING = 1,    /* deissn_spacing: quadratic, trailing, linspace, leading,
                                   power, logsnr, karras, custom */
    DEISSN_ENUM_METHOD = 2,     /* deissn_method: eps, data */
    DEISSN_ENUM_PREDICTION = 3, /* deissn_prediction: epsilon, sample, v_prediction */
    DEISSN_ENUM_TIME = 4,       /* deissn_time_convention: model_index, tau, tau_1000, sigma */
    DEISSN_ENUM_DTYPE = 5,      /* deissn_dtype: float32, float16, bfloat16 */
    DEISSN_ENUM_PRESET = 6      /* deissn_preset: best, reference, tuned */
} deissn_enum;

/* The canonical name of `value` of enum `kind` (the spellings above: diffusers' where it has
 * one), a static string; NULL for an unknown kind or value. */
DEISSN_API const char *deissn_enum_name(int32_t kind, int32_t value);

/* The value of enum `kind` named `name`: a canonical name, or an alias users bring from
 * elsewhere (case and '-' vs '_' do not matter): noise "cosine" (squaredcos_cap_v2), "vp"
 * and "continuous" (continuous_vp); spacing "uniform" (power with its default power 1),
 * "log_snr"; method "x0"; prediction "eps", "x0", "v"; time "t", "tau1000"; dtype "fp32",
 * "fp16", "half", "bf16".
 * Returns DEISSN_OK; DEISSN_E_INVALID_ARG (NULL, unknown kind, unknown name: the message lists
 * the names of that enum). On error *value is unchanged. */
DEISSN_API int32_t deissn_enum_value(int32_t kind, const char *name, int32_t *value);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DEISSN_H */
