/* backend.h - the model backend interface: what the one sampling loop (sampling/loop.c) needs
 * from whatever runs the model.
 *
 * A backend evaluates a model on buffers that live where the model runs (host memory for C
 * callbacks, a libtorch device for TorchScript), and performs on those buffers the few vector
 * operations the loop needs: the fused step update, the finiteness check, the calibration
 * sums, copies in and out. Everything else — the order of the steps, progress, cancellation,
 * calibration, the checks of model output and state, timing, failure atomicity — is the
 * loop's, once, for every backend.
 *
 * Plug-ins (a backend in a shared object of its own, libdeissn-NAME.so.DEISSN_ABI, loaded at
 * run time by backends/plugin.c) export one C function, DSN_BACKEND_ENTRY, and see nothing of
 * libdeissn but this header and deissn.h: the library hands them its error function through
 * dsn_host, so a plug-in links only what it wraps (libtorch), never libdeissn itself. A new
 * backend (ONNX Runtime, AOTInductor) is a new plug-in; the core does not change.
 * docs/backends.md describes the contract for plug-in authors.
 *
 * Contract for every operation: return DEISSN_OK or a negative status after calling
 * host->error() with a message; never throw, abort or exit; a failing operation may leave its
 * output buffer in any state (the loop discards it) but nothing else. An operation on n
 * values uses the first n of its buffers, which may have been allocated larger. download
 * writes all of dst or, failing, none of it. */
#ifndef DSN_BACKEND_H
#define DSN_BACKEND_H

#include "deissn.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this interface. A plug-in built against another one is refused when it is
 * loaded. Raise it on any change to the structs below. */
#define DSN_BACKEND_ABI 1

/* History terms a step reads besides its own output (order 3 plus the corrector). */
#define DSN_MAX_DEPTH (DEISSN_MAX_TERMS - 1)

/* What the library lends a plug-in. */
typedef struct dsn_host {
    uint32_t abi; /* DSN_BACKEND_ABI */
    /* Record the message for deissn_last_error() and return `status`. */
    int32_t (*error)(int32_t status, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 2, 3)))
#endif
        ;
} dsn_host;

/* One model evaluation: out = model(x, t) for a batch of shape[0] samples. */
typedef struct dsn_forward {
    const void *x;        /* the state, a buffer of the backend's (the model may write into
                             it: the loop passes a copy) */
    void *out;            /* receives the prediction, as float32 */
    const int64_t *shape; /* ndim sizes, shape[0] the batch */
    uint32_t ndim;
    size_t numel;         /* prod(shape) */
    double t;             /* the time argument, in the model's convention */
    uint32_t step;        /* for messages */
    /* Room for conditioning (a later ABI): further named inputs of the forward. Today
     * always 0 and NULL. */
    uint32_t n_extra;
    const void *const *extra;
} dsn_forward;

/* The fused update of one step, on buffers of n floats, every value computed in double and
 * rounded to float32 once (the C kernel's arithmetic, which the golden trajectories need):
 *   e    = a x + b out                              (the history entry: eps, or x0)
 *   x    = cx x + co out + sum_{j=1..depth} k[j] hist[j-1]
 *   save = e   when save is not NULL (it may be one of the hist buffers this step reads)
 *   ecopy = e  when ecopy is not NULL (never aliases anything else) */
typedef struct dsn_update {
    double a, b, cx, co;
    double k[DSN_MAX_DEPTH + 1]; /* k[0] is folded into cx and co */
    uint32_t depth;
    void *x;
    const void *out;
    const void *hist[DSN_MAX_DEPTH];
    void *save;
    void *ecopy;
} dsn_update;

typedef struct dsn_backend {
    uint32_t abi;         /* DSN_BACKEND_ABI */
    const char *name;     /* "callback", "torch", ... */
    const char *built_with; /* what it wraps, for messages, e.g. "libtorch 2.6.0" */

    /* Open the model file at `path` with params (device, dtype, threads; validated by the
     * library except the device string); *impl is the backend's model. NULL for backends
     * that are not loaded from files (callbacks). */
    int32_t (*load)(void **impl, const char *path, const deissn_model_params *params);
    void (*destroy)(void *impl);

    /* Buffers of n floats on the model's device. */
    int32_t (*alloc)(void *impl, size_t n, void **buf);
    void (*release)(void *impl, void *buf); /* NULL allowed */
    int32_t (*upload)(void *impl, void *dst, const float *src, size_t n);
    int32_t (*download)(void *impl, float *dst, const void *src, size_t n);
    int32_t (*copy)(void *impl, void *dst, const void *src, size_t n);

    /* Evaluate the model; the loop times this call, so it returns when the result is there
     * (a GPU backend synchronises). */
    int32_t (*forward)(void *impl, const dsn_forward *args);

    int32_t (*update)(void *impl, const dsn_update *u, size_t n);
    /* *index = the first element of buf that is NaN or Inf (n when none), *value = it. */
    int32_t (*first_nonfinite)(void *impl, const void *buf, size_t n, size_t *index,
                               float *value);
    /* *max_abs = max |buf[i]|. */
    int32_t (*max_abs)(void *impl, const void *buf, size_t n, double *max_abs);
    /* *sum = sum of floor(|buf[i]| * scale) in int64, exactly; the loop calls it only when
     * max_abs shows that the sum cannot overflow. */
    int32_t (*fixed_sum)(void *impl, const void *buf, size_t n, double scale, int64_t *sum);
} dsn_backend;

/* The one symbol a plug-in exports: check `abi`, keep `host`, and set *backend. */
#define DSN_BACKEND_ENTRY "deissn_backend_entry"
typedef int32_t (*dsn_backend_entry_fn)(uint32_t abi, const dsn_host *host,
                                        const dsn_backend **backend);

#ifdef __cplusplus
}
#endif

#endif
