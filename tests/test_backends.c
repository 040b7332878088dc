/* test_backends.c - every backend's vector operations against the host kernel.
 *
 * The sampling loop is the same for every backend, so what can differ between them is only
 * the arithmetic of their operations. Each backend here (the callback backend; the torch
 * plug-in when it can be loaded) runs the fused update at every depth, with the history
 * entry saved over the oldest buffer it reads, and the finiteness check, the largest |value|
 * and the fixed-point sum, on the same random data as lib/sampling/kernel.c; results must be
 * identical bit for bit (both compute in double and round once). A new plug-in is held to
 * this contract by adding its name below. */
#include "backends/model.h"
#include "sampling/kernel.h"
#include "tables/calibrate.h"
#include "tables/normtable.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define N 3001 /* not a multiple of the kernel's block */

static uint64_t rng = 88172645463325252ull;
static double uniform(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static void fill(float *v, double scale)
{
    for (size_t i = 0; i < N; i++) v[i] = (float)((uniform() * 2 - 1) * scale);
}

typedef struct {
    const dsn_backend *be;
    void *impl;
} backend;

static void *put(backend *b, const float *src)
{
    void *buf = NULL;
    if (b->be->alloc(b->impl, N, &buf) || b->be->upload(b->impl, buf, src, N)) return NULL;
    return buf;
}

static void get(backend *b, float *dst, const void *buf) { b->be->download(b->impl, dst, buf, N); }

/* The coefficients of an update of this depth, at random; no buffers yet. */
static dsn_update random_coeffs(uint32_t depth, int direct)
{
    dsn_update u;
    memset(&u, 0, sizeof u);
    u.a = direct ? 0.0 : uniform() - 0.5;
    u.b = direct ? 1.0 : 1.0 + uniform();
    u.cx = 0.5 + uniform() * 5;
    u.co = -4.0 * uniform();
    for (uint32_t j = 1; j <= depth; j++) u.k[j] = uniform() - 0.5;
    u.depth = depth;
    return u;
}

/* One update on the host and on the backend from the same inputs; every output compared. */
static void check_update(backend *b, uint32_t depth, int direct, int with_ecopy)
{
    float x[N], out[N], hist[DSN_MAX_DEPTH][N];
    fill(x, 3.0);
    fill(out, 2.0);
    for (uint32_t j = 0; j < DSN_MAX_DEPTH; j++) fill(hist[j], 1.5);
    dsn_update u = random_coeffs(depth, direct);

    /* backend copies, before the host run changes anything */
    void *bx = put(b, x), *bo = put(b, out), *bh[DSN_MAX_DEPTH] = {0}, *be = NULL;
    for (uint32_t j = 0; j < depth; j++) bh[j] = put(b, hist[j]);
    void *bsave = depth ? bh[depth - 1] : put(b, hist[0]); /* the oldest one it reads */
    if (with_ecopy) be = put(b, hist[0]);
    CHECK(bx && bo && bsave && (!with_ecopy || be), "%s: buffers", b->be->name);

    float hx[N], hsave[N], hecopy[N];
    memcpy(hx, x, sizeof x);
    memcpy(hsave, depth ? hist[depth - 1] : hist[0], sizeof hsave);
    dsn_update hu = u;
    hu.x = hx;
    hu.out = out;
    for (uint32_t j = 0; j < depth; j++) hu.hist[j] = j == depth - 1 ? hsave : hist[j];
    hu.save = hsave;
    hu.ecopy = with_ecopy ? hecopy : NULL;
    dsn_host_update(&hu, N);

    dsn_update du = u;
    du.x = bx;
    du.out = bo;
    for (uint32_t j = 0; j < depth; j++) du.hist[j] = bh[j];
    du.save = bsave;
    du.ecopy = be;
    CHECK_STATUS(b->be->update(b->impl, &du, N), DEISSN_OK, "update");
    float gx[N], gsave[N], gecopy[N];
    get(b, gx, bx);
    get(b, gsave, bsave);
    if (with_ecopy) get(b, gecopy, be);
    CHECK(memcmp(gx, hx, sizeof gx) == 0, "%s update depth %u%s: x is the host kernel's, bit "
          "for bit", b->be->name, depth, direct ? " (eps direct)" : "");
    CHECK(memcmp(gsave, hsave, sizeof gsave) == 0, "%s update depth %u%s: the saved history "
          "entry (over the oldest one read) is the host's", b->be->name, depth,
          direct ? " (eps direct)" : "");
    if (with_ecopy)
        CHECK(memcmp(gecopy, hecopy, sizeof gecopy) == 0, "%s update depth %u: the eps copy "
              "is the host's", b->be->name, depth);
    void *all[] = {bx, bo, bh[0], bh[1], bh[2], bh[3], depth ? NULL : bsave, be};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) b->be->release(b->impl, all[i]);
}

/* A run of steps on the same buffers, as the sampling loop makes them. A backend may keep
 * state from one update to the next (the torch plug-in keeps its float64 scratch and
 * coefficients with x), so every step of the run must still be the host kernel's, bit for
 * bit. Depth, eps-direct and the calibration copy change from step to step, the saved entry
 * goes over the oldest history slot read, and one step uses fewer values than were
 * allocated. */
static void check_run(backend *b)
{
    static float x[N], out[N], hist[DSN_MAX_DEPTH][N], ecopy[N], got[N];
    fill(x, 3.0);
    for (uint32_t j = 0; j < DSN_MAX_DEPTH; j++) fill(hist[j], 1.5);
    memcpy(ecopy, x, sizeof ecopy);
    void *bx = put(b, x), *bo = put(b, x), *be = put(b, x), *bh[DSN_MAX_DEPTH];
    int ok = bx && bo && be;
    for (uint32_t j = 0; j < DSN_MAX_DEPTH; j++) ok &= (bh[j] = put(b, hist[j])) != NULL;
    CHECK(ok, "%s: buffers", b->be->name);
    for (uint32_t step = 0; ok && step < 12; step++) {
        uint32_t depth = step % (DSN_MAX_DEPTH + 1);
        int direct = step % 3 == 1, with_ecopy = step % 2;
        size_t n = step == 7 ? N / 3 : N;
        fill(out, 2.0);
        b->be->upload(b->impl, bo, out, N);
        dsn_update u = random_coeffs(depth, direct);
        dsn_update hu = u, du = u;
        hu.x = x, hu.out = out, du.x = bx, du.out = bo;
        for (uint32_t j = 0; j < depth; j++) {
            uint32_t slot = (step + j) % DSN_MAX_DEPTH;
            hu.hist[j] = hist[slot], du.hist[j] = bh[slot];
        }
        uint32_t save = (step + (depth ? depth - 1 : 0)) % DSN_MAX_DEPTH;
        hu.save = hist[save], du.save = bh[save];
        hu.ecopy = with_ecopy ? ecopy : NULL, du.ecopy = with_ecopy ? be : NULL;
        dsn_host_update(&hu, n);
        CHECK_STATUS(b->be->update(b->impl, &du, n), DEISSN_OK, "update in a run");
        get(b, got, bx);
        CHECK(memcmp(got, x, sizeof got) == 0, "%s run, step %u (depth %u, n %zu): x is the "
              "host kernel's, bit for bit", b->be->name, step, depth, n);
        for (uint32_t j = 0; j < DSN_MAX_DEPTH; j++) {
            get(b, got, bh[j]);
            CHECK(memcmp(got, hist[j], sizeof got) == 0, "%s run, step %u (depth %u, n %zu): "
                  "history slot %u is the host's", b->be->name, step, depth, n, j);
        }
        get(b, got, be);
        CHECK(memcmp(got, ecopy, sizeof got) == 0, "%s run, step %u: the eps copy is the "
              "host's", b->be->name, step);
    }
    void *all[] = {bx, bo, be, bh[0], bh[1], bh[2], bh[3]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) b->be->release(b->impl, all[i]);
}

static void check_reductions(backend *b)
{
    float v[N];
    fill(v, 7.0);
    void *bv = put(b, v);
    size_t at = 0;
    float value = 0;
    CHECK_STATUS(b->be->first_nonfinite(b->impl, bv, N, &at, &value), DEISSN_OK, "finite");
    CHECK(at == N, "%s: all finite reports n, got %zu", b->be->name, at);
    double top = 0, want = 0;
    for (size_t i = 0; i < N; i++) want = fmax(want, fabs((double)v[i]));
    b->be->max_abs(b->impl, bv, N, &top);
    CHECK(top == want, "%s: max |v| %.17g, host %.17g", b->be->name, top, want);
    int64_t sum = 0, host = 0;
    CHECK_STATUS(dsn_fixed_sum(v, N, 0, &host, "test"), DEISSN_OK, "host fixed sum");
    b->be->fixed_sum(b->impl, bv, N, DSN_FIXED_ONE, &sum);
    CHECK(sum == host, "%s: fixed-point sum %lld, host %lld", b->be->name, (long long)sum,
          (long long)host);
    v[1234] = INFINITY;
    v[2000] = NAN;
    b->be->upload(b->impl, bv, v, N);
    b->be->first_nonfinite(b->impl, bv, N, &at, &value);
    CHECK(at == 1234 && isinf(value), "%s: the first non-finite value is found: %zu %g",
          b->be->name, at, value);
    b->be->release(b->impl, bv);
}

static void run(backend *b)
{
    for (uint32_t depth = 0; depth <= DSN_MAX_DEPTH; depth++)
        for (int direct = 0; direct <= 1; direct++) check_update(b, depth, direct, depth % 2);
    check_run(b);
    check_reductions(b);
}

int main(void)
{
    backend cb = {dsn_callback_backend(), NULL};
    run(&cb);

    const dsn_backend *torch = NULL;
    if (dsn_plugin_backend("torch", &torch, "test_backends") != DEISSN_OK) {
        SKIP("torch backend", "the plug-in cannot be loaded: %s", deissn_last_error());
    } else {
        deissn_model_params p = DEISSN_MODEL_PARAMS_INIT;
        backend tb = {torch, NULL};
        int32_t rc = torch->load(&tb.impl, "tests/models/gaussian_eps.pt", &p);
        CHECK_STATUS(rc, DEISSN_OK, "torch backend loads a model");
        if (rc == DEISSN_OK) {
            run(&tb);
            torch->destroy(tb.impl);
        }
    }
    TEST_SUMMARY();
}
