/* fuzz_api.c - libFuzzer target for the public API with parameters decoded from the input:
 * noise schedule (custom betas/alpha_bar included), T, steps, spacing (custom times included),
 * power, Karras rho, tau_min_eval, tau_end, a normalisation table of any shape, order,
 * lower_order_final, and an allocation to fail (the fuzz build has fault injection).
 *
 * Build and run with `make fuzz` / `make fuzz-run FUZZ_SECONDS=60` (see docs/reliability.md).
 *
 * Invariants, each a __builtin_trap() when violated:
 *   - every call returns one of its documented statuses; an error leaves a message, and a
 *     NULL output handle;
 *   - a schedule's times are strictly decreasing from <= 1 to tau_end;
 *   - a sampler's coefficients are finite, and its orders respect `order`, the warm-up and
 *     lower_order_final;
 *   - order 0 without a table is DDIM: c0 = sigma_to - alpha_to sigma_from / alpha_from and
 *     psi = alpha_to / alpha_from, recomputed here from deissn_schedule_alpha_bar(), to 1e-9
 *     of the size of the terms;
 *   - deissn_step with bounded finite eps keeps x finite whenever the coefficients bound it
 *     below FLT_MAX (the harness computes that bound), and DONE comes after exactly N steps. */
#include "deissn.h"
#include "base/base.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                               \
    do {                                                                                       \
        if (!(c)) __builtin_trap();                                                            \
    } while (0)

typedef struct {
    const uint8_t *p;
    size_t n;
} reader;

static uint8_t u8(reader *r)
{
    if (!r->n) return 0;
    r->n--;
    return *r->p++;
}
static uint32_t u16(reader *r) { return (uint32_t)u8(r) | (uint32_t)u8(r) << 8; }
static uint32_t u32(reader *r) { return u16(r) | u16(r) << 16; }
static double raw_double(reader *r)
{
    uint64_t b = (uint64_t)u32(r) | (uint64_t)u32(r) << 32;
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}
/* A double, mostly from the interesting range of the parameter, sometimes anything. */
static double pick(reader *r, double lo, double hi)
{
    static const double special[] = {0.0, -0.0, 1.0, -1.0, 1e-300, 1e-12, 1e-8, 0.5, 2.0, 7.0,
                                     1e300, NAN, INFINITY, -INFINITY, DBL_MIN, 0.999999999};
    uint8_t k = u8(r);
    if (k < 16) return special[k];
    if (k < 24) return raw_double(r);
    return lo + (hi - lo) * ((double)u32(r) / 4294967295.0);
}

/* The statuses a call may return (plus DEISSN_E_NOMEM, which any may). */
static void check_status(int32_t rc, const int32_t *allowed, size_t n_allowed)
{
    if (rc == DEISSN_OK) return;
    int ok = rc == DEISSN_E_NOMEM;
    for (size_t i = 0; i < n_allowed; i++) ok |= rc == allowed[i];
    CHECK(ok);
    CHECK(deissn_last_error()[0] != '\0');
}

static double sqrt_pos(double v) { return v > 0 ? sqrt(v) : 0.0; }

static void fuzz_sampling(reader *r, const deissn_schedule *s, deissn_normtable *table)
{
    uint32_t N = deissn_schedule_steps(s);
    deissn_sampler_params sp = DEISSN_SAMPLER_PARAMS_INIT;
    uint8_t b = u8(r);
    sp.order = b % 5; /* 4: invalid */
    sp.lower_order_final = (b >> 3) & 1;
    sp.allow_table_mismatch = (b >> 4) & 1;
    if (b & 0x80) sp.version = 7;
    uint8_t m = u8(r);
    sp.method = m % 3; /* 2: invalid */
    sp.corrector = (m >> 2) & 1; /* refused with METHOD_EPS */
    int data = sp.method == DEISSN_METHOD_DATA;
    int use_table = table && (b & 0x20);
    deissn_sampler *smp = (deissn_sampler *)&smp;
    int32_t rc = deissn_sampler_create(&smp, s, use_table ? table : NULL, &sp);
    static const int32_t create_st[] = {DEISSN_E_INVALID_ARG, DEISSN_E_MISMATCH};
    check_status(rc, create_st, 2);
    if (rc != DEISSN_OK) {
        CHECK(smp == NULL);
        /* valid params fail only for a table, for memory, or for a schedule whose times make
         * the coefficients overflow (documented: DEISSN_E_INVALID_ARG naming the step) */
        CHECK(sp.order > 3 || sp.version != DEISSN_SAMPLER_PARAMS_VERSION || use_table ||
              sp.method > 1 || (sp.corrector && !data) || rc == DEISSN_E_NOMEM ||
              strstr(deissn_last_error(), "not finite") ||
              strstr(deissn_last_error(), "overflows float"));
        return;
    }
    CHECK(sp.order <= 3 && sp.version == DEISSN_SAMPLER_PARAMS_VERSION && sp.method <= 1 &&
          (data || !sp.corrector));
    CHECK(deissn_sampler_steps(smp) == N);

    /* Coefficients: finite, orders as promised, order 0 without a table = DDIM. */
    double ksum[64], psis[64];
    uint32_t prev_order = 0;
    for (uint32_t i = 0; i < N; i++) {
        deissn_step_coeffs co = DEISSN_STEP_COEFFS_INIT;
        CHECK(deissn_sampler_coeffs(smp, i, &co) == DEISSN_OK);
        CHECK(co.step == i && co.tau_from > co.tau_to);
        CHECK(co.order <= sp.order && co.order <= i);
        if (sp.lower_order_final) CHECK(co.order <= N - 1 - i);
        CHECK(isfinite(co.psi) && (co.psi > 0 || (data && co.tau_to == 0)));
        /* the corrector of x_from is one order above the previous step's predictor */
        CHECK(co.corrector_order == (sp.corrector && i > 0 ? prev_order + 1 : 0));
        prev_order = co.order;
        uint32_t depth = co.corrector_order > co.order ? co.corrector_order : co.order;
        double ks = 0;
        for (uint32_t j = 0; j < DEISSN_MAX_TERMS; j++) {
            CHECK(isfinite(co.c[j]) && isfinite(co.r[j]));
            if (j > depth) CHECK(co.c[j] == 0);
            else {
                CHECK(co.r[j] > 0 && (!data || co.r[j] == 1));
                ks += fabs(co.c[j] / co.r[j]);
            }
        }
        if (i < 64) ksum[i] = ks, psis[i] = co.psi;
        if (co.order == 0 && !use_table && !data) {
            double abf = deissn_schedule_alpha_bar(s, co.tau_from);
            double abt = deissn_schedule_alpha_bar(s, co.tau_to);
            double af = sqrt(abf), at = sqrt(abt), sf = sqrt_pos(1 - abf), st = sqrt_pos(1 - abt);
            double ddim = st - at * (sf / af);
            /* Here sigma = sqrt(1 - alpha_bar) inherits alpha_bar's rounding (~1e-16), which
             * matters when sigma is tiny (the library keeps 1 - alpha_bar exactly): allow
             * for that error, min(sqrt(d), d / (2 sigma)), on top of 1e-9 relative. */
            const double d = 4.4e-16;
            double ef = fmin(sqrt(d), d / (2 * sf)), et = fmin(sqrt(d), d / (2 * st));
            CHECK(fabs(co.c[0] - ddim) <= 1e-9 * (st + at * sf / af) + et + at / af * ef);
            CHECK(fabs(co.psi - at / af) <= 1e-12 * (at / af));
        }
    }

    /* A few steps (all of them for short plans) with bounded finite eps. */
    size_t n = 1 + u8(r) % 16;
    float x[16], out[16];
    for (size_t i = 0; i < n; i++) x[i] = (float)((int)u8(r) - 128) / 16.0f;
    double bound = 8.0, emax = 0;
    deissn_step_info info = DEISSN_STEP_INFO_INIT;
    rc = deissn_sampler_next(smp, &info);
    CHECK(rc == DEISSN_OK && info.step == 0 && info.steps == N);
    uint32_t taken = 0;
    while (rc == DEISSN_OK && taken < 12) {
        for (size_t i = 0; i < n; i++) {
            out[i] = (float)((int)u8(r) - 128) / 12.8f; /* |eps| <= 10 */
            emax = fmax(emax, fabs(out[i]));
        }
        rc = deissn_step(smp, x, out, n, &info);
        static const int32_t step_st[] = {DEISSN_DONE};
        check_status(rc, step_st, 1);
        if (rc < 0) break; /* only NOMEM (first step): x unchanged, try again below */
        taken++;
        if (taken <= 64 && !data) { /* the bound holds for eps; x0 divides by alpha */
            bound = psis[taken - 1] * bound + ksum[taken - 1] * 10.0;
            if (bound < FLT_MAX / 4)
                for (size_t i = 0; i < n; i++) CHECK(isfinite(x[i]));
        }
        CHECK(info.step == taken);
        CHECK((rc == DEISSN_DONE) == (taken == N));
    }
    if (rc == DEISSN_DONE) {
        CHECK(deissn_step(smp, x, out, n, NULL) == DEISSN_E_STATE);
        CHECK(deissn_sampler_reset(smp) == DEISSN_OK);
        CHECK(deissn_sampler_next(smp, &info) == DEISSN_OK && info.step == 0);
    }
    (void)emax;
    deissn_sampler_free(smp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = {data, size};
    uint8_t fault = u8(&r);
    /* An allocation to fail: every call below must cope (documented NOMEM, nothing leaked). */
    if (fault & 0x80) dsn_fail_after(fault & 0x3f);
    else dsn_fail_after(-1);

    /* ---- schedule ---- */
    deissn_schedule_params p = DEISSN_SCHEDULE_PARAMS_INIT;
    uint8_t b = u8(&r);
    p.noise = b % 7; /* 6: invalid */
    if (b & 0x80) p.version = 2;
    uint32_t tsel = u16(&r);
    p.num_train_steps = (tsel & 0x8000) ? tsel % 3 : 1 + tsel % 1500;
    double custom[1500];
    if (p.noise == DEISSN_NOISE_CUSTOM_BETAS || p.noise == DEISSN_NOISE_CUSTOM_ALPHAS_CUMPROD) {
        uint8_t mode = u8(&r);
        uint32_t T = p.num_train_steps;
        double acc = 1.0;
        for (uint32_t k = 0; k < T && k < 1500; k++) {
            if (mode & 1) custom[k] = pick(&r, 0, 1); /* anything */
            else if (p.noise == DEISSN_NOISE_CUSTOM_BETAS) custom[k] = 1e-4 + 0.05 * (u8(&r) / 255.0);
            else custom[k] = acc *= 1.0 - (1e-4 + 0.05 * (u8(&r) / 255.0));
        }
        p.custom = (mode & 2) ? NULL : custom;
        p.custom_len = (mode & 4) ? T + 1 : T;
        if (T > 1500) p.custom = NULL;
    }
    if (u8(&r) & 1) {
        p.beta_start = pick(&r, 1e-5, 0.05);
        p.beta_end = pick(&r, 1e-3, 0.5);
    }
    if (p.noise == DEISSN_NOISE_CONTINUOUS_VP && (u8(&r) & 1)) {
        p.beta_min = pick(&r, 0.01, 1);
        p.beta_max = pick(&r, 1, 50);
    }
    p.spacing = u8(&r) % 9; /* 8: invalid */
    p.steps = u16(&r) % (p.num_train_steps + 2);
    if (p.steps > 64 && (u8(&r) & 1)) p.steps %= 64;
    p.power = pick(&r, 0.2, 5);
    p.karras_rho = pick(&r, 0.5, 12);
    p.tau_min_eval = (u8(&r) & 1) ? pick(&r, 1e-6, 0.1) : 0;
    p.tau_end = (u8(&r) & 1) ? pick(&r, 0, 0.01) : 0;
    double taus[64];
    if (p.spacing == DEISSN_SPACING_CUSTOM) {
        uint8_t mode = u8(&r);
        double t = 1.0;
        for (uint32_t k = 0; k < p.steps && k < 64; k++) {
            if (mode & 1) taus[k] = pick(&r, 0, 1);
            else taus[k] = t, t *= (u8(&r) + 1) / 257.0; /* decreasing, maybe very fast */
        }
        p.custom_taus = (mode & 2) || p.steps > 64 ? NULL : taus;
    }
    deissn_schedule *s = (deissn_schedule *)&s;
    int32_t rc = deissn_schedule_create(&s, &p);
    static const int32_t sched_st[] = {DEISSN_E_INVALID_ARG};
    check_status(rc, sched_st, 1);
    if (rc != DEISSN_OK) {
        CHECK(s == NULL);
        dsn_fail_after(-1);
        return 0;
    }
    uint32_t N = deissn_schedule_steps(s);
    CHECK(N == p.steps && N >= 1 && N <= 1000000);
    double *t = malloc((N + 1) * sizeof *t);
    CHECK(t != NULL);
    CHECK(deissn_schedule_times(s, t, N) == DEISSN_E_SIZE);
    CHECK(deissn_schedule_times(s, t, N + 1) == DEISSN_OK);
    CHECK(t[0] <= 1.0 && t[N] == p.tau_end);
    for (uint32_t k = 0; k < N; k++) CHECK(t[k] > t[k + 1]);
    for (uint32_t k = 0; k <= N; k += 1 + N / 8) {
        double ab = deissn_schedule_alpha_bar(s, t[k]);
        CHECK(ab > 0 && ab <= 1);
    }
    free(t);

    /* ---- table: any shape ---- */
    deissn_normtable *table = NULL;
    uint8_t tb = u8(&r);
    if (tb & 1) {
        size_t n = tb >> 1; /* 0..127 knots */
        double tau[127], rv[127];
        double acc = 0;
        for (size_t i = 0; i < n; i++) {
            uint8_t m = u8(&r);
            if (m < 8) tau[i] = pick(&r, 0, 1), rv[i] = pick(&r, 0, 2);
            else {
                tau[i] = acc;
                acc += m / 255.0 / (n ? n : 1);
                rv[i] = 0.3 + u8(&r) / 255.0;
            }
        }
        deissn_normtable_params tp = DEISSN_NORMTABLE_PARAMS_INIT;
        tp.fingerprint = (u8(&r) & 1) ? deissn_schedule_fingerprint(s) : u32(&r) & 0xff;
        tp.clip = u8(&r) % 4;
        rc = deissn_normtable_create(&table, tau, rv, n, &tp);
        static const int32_t table_st[] = {DEISSN_E_INVALID_ARG};
        check_status(rc, table_st, 1);
        if (rc != DEISSN_OK) CHECK(table == NULL);
        else {
            CHECK(deissn_normtable_size(table) == n);
            for (int i = 0; i <= 8; i++) {
                double v = deissn_normtable_eval(table, i / 8.0);
                CHECK(isfinite(v) && v > 0);
            }
        }
    }

    fuzz_sampling(&r, s, table);
    dsn_fail_after(-1);
    deissn_schedule_free(s);
    deissn_normtable_free(table);
    return 0;
}
