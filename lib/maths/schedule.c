/* schedule.c - noise schedules (alpha_bar(tau)) and sampling-time spacings. */
#include "maths/schedule.h"

#include <math.h>
#include <string.h>
#include <zlib.h>

#define MAX_TRAIN_STEPS 1000000u
#define MAX_CONTINUOUS_STEPS 1000000u

/* ---- alpha_bar ------------------------------------------------------------------------ */

static double continuous_L(const deissn_schedule *s, double tau)
{
    return s->beta_min * tau + 0.5 * (s->beta_max - s->beta_min) * tau * tau;
}

/* The knot interval [k/T, (k+1)/T] holding tau, clamped to 0..T-1. */
static uint32_t knot_index(const deissn_schedule *s, double tau)
{
    double f = floor(tau * s->T);
    if (f < 0) return 0;
    if (f >= s->T) return s->T - 1;
    uint32_t k = (uint32_t)f;
    /* tau*T can round across a knot; make sure k/T <= tau < (k+1)/T. */
    if ((double)k / s->T > tau && k > 0) k--;
    else if (k + 1 < s->T && (double)(k + 1) / s->T <= tau) k++;
    return k;
}

static double clamp01(double tau) { return tau < 0 ? 0 : (tau > 1 ? 1 : tau); }

double dsn_abar(const deissn_schedule *s, double tau)
{
    tau = clamp01(tau);
    if (!s->abar) return exp(-continuous_L(s, tau));
    uint32_t k = knot_index(s, tau);
    double x = tau * s->T - k;
    /* x is 1 only at tau = 1: take the knot itself, which abar[k] + (abar[k+1] - abar[k])
     * would round to 0 when alpha_bar_T is below abar[T-1] * 2^-53. */
    if (x >= 1) return s->abar[k + 1];
    return s->abar[k] + (s->abar[k + 1] - s->abar[k]) * x;
}

void dsn_alpha_sigma(const deissn_schedule *s, double tau, double *alpha, double *sigma)
{
    tau = clamp01(tau);
    double abar, om; /* om = 1 - abar, without cancellation */
    if (!s->abar) {
        double L = continuous_L(s, tau);
        abar = exp(-L);
        om = -expm1(-L);
    } else {
        uint32_t k = knot_index(s, tau);
        double x = tau * s->T - k;
        double d = s->abar[k + 1] - s->abar[k];
        abar = x >= 1 ? s->abar[k + 1] : s->abar[k] + d * x; /* as in dsn_abar */
        om = x >= 1 ? s->one_minus_abar[k + 1] : s->one_minus_abar[k] - d * x;
    }
    *alpha = sqrt(abar);
    *sigma = sqrt(om > 0 ? om : 0);
}

double deissn_schedule_alpha_bar(const deissn_schedule *s, double tau)
{
    return s ? dsn_abar(s, tau) : NAN;
}

/* tau with alpha_bar(tau) = target (alpha_bar is strictly decreasing). */
static double tau_of_abar(const deissn_schedule *s, double target)
{
    if (!s->abar) {
        /* beta_min tau + (beta_max - beta_min)/2 tau^2 = -log(target) */
        double a = 0.5 * (s->beta_max - s->beta_min), b = s->beta_min, c = log(target);
        if (a == 0) return -c / b;
        /* stable root of a tau^2 + b tau + c = 0, c <= 0 */
        return (2 * -c) / (b + sqrt(b * b - 4 * a * c));
    }
    uint32_t lo = 0, hi = s->T; /* abar[lo] >= target >= abar[hi] */
    if (target >= s->abar[0]) return 0;
    if (target <= s->abar[s->T]) return 1;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->abar[mid] >= target) lo = mid;
        else hi = mid;
    }
    double frac = (s->abar[lo] - target) / (s->abar[lo] - s->abar[hi]);
    return ((double)lo + frac) / s->T;
}

/* ---- building alpha_bar knots --------------------------------------------------------- */

/* numpy.linspace(start, stop, num)[i]: start + i*step, the last one exactly stop. */
static double np_linspace(double start, double stop, uint32_t num, uint32_t i)
{
    if (num == 1) return start;
    if (i == num - 1) return stop;
    return start + (double)i * ((stop - start) / (double)(num - 1));
}

static double cos_abar(double t)
{
    double c = cos((t + 0.008) / 1.008 * 3.14159265358979323846 / 2);
    return c * c;
}

/* Fill s->abar (T + 1 knots) for the discrete schedules; returns a status. */
static int32_t build_knots(deissn_schedule *s, const deissn_schedule_params *p)
{
    const char *fn = "deissn_schedule_create";
    uint32_t T = s->T;
    s->abar = dsn_malloc(((size_t)T + 1) * sizeof(double));
    s->one_minus_abar = dsn_malloc(((size_t)T + 1) * sizeof(double));
    if (!s->abar || !s->one_minus_abar)
        return dsn_error(DEISSN_E_NOMEM, "%s: out of memory for %u knots", fn, T);
    s->abar[0] = 1.0;

    if (p->noise == DEISSN_NOISE_CUSTOM_ALPHAS_CUMPROD) {
        for (uint32_t k = 0; k < T; k++) {
            double a = p->custom[k];
            if (!(a > 0 && a <= 1))
                return dsn_error(DEISSN_E_INVALID_ARG,
                                 "%s: custom alphas_cumprod[%u] = %.17g is outside (0, 1]", fn, k, a);
            s->abar[k + 1] = a;
        }
    } else if (p->noise == DEISSN_NOISE_CUSTOM_BETAS) {
        double acc = 1.0;
        for (uint32_t k = 0; k < T; k++) {
            double b = p->custom[k];
            if (!(b > 0 && b < 1))
                return dsn_error(DEISSN_E_INVALID_ARG, "%s: custom betas[%u] = %.17g is outside (0, 1)",
                                 fn, k, b);
            acc *= 1.0 - b;
            s->abar[k + 1] = acc;
        }
    } else {
        /* The reference makes betas in float32 and multiplies 1 - beta in float32, in order;
         * reproduce that bit for bit (it is what makes results match). */
        double b0 = p->beta_start, b1 = p->beta_end;
        if (p->noise == DEISSN_NOISE_LINEAR) {
            if (b0 == 0) b0 = 1e-4;
            if (b1 == 0) b1 = 0.02;
        } else if (p->noise == DEISSN_NOISE_SCALED_LINEAR) {
            if (b0 == 0) b0 = 0.00085;
            if (b1 == 0) b1 = 0.012;
        }
        if (p->noise != DEISSN_NOISE_SQUAREDCOS_CAP_V2 &&
            !(b0 > 0 && b0 < 1 && b1 > 0 && b1 < 1))
            return dsn_error(DEISSN_E_INVALID_ARG,
                             "%s: beta_start %.17g and beta_end %.17g must be in (0, 1)", fn, b0, b1);
        float acc = 1.0f;
        for (uint32_t k = 0; k < T; k++) {
            float beta;
            if (p->noise == DEISSN_NOISE_LINEAR) {
                beta = (float)np_linspace(b0, b1, T, k);
            } else if (p->noise == DEISSN_NOISE_SCALED_LINEAR) {
                float v = (float)np_linspace(sqrt(b0), sqrt(b1), T, k);
                beta = v * v;
            } else {
                double b = 1.0 - cos_abar((double)(k + 1) / T) / cos_abar((double)k / T);
                beta = (float)(b < 0.999 ? b : 0.999);
            }
            acc = acc * (1.0f - beta);
            s->abar[k + 1] = acc;
        }
    }
    for (uint32_t k = 0; k <= T; k++) {
        if (k > 0 && !(s->abar[k] < s->abar[k - 1]))
            return dsn_error(DEISSN_E_INVALID_ARG,
                             "%s: alpha_bar is not strictly decreasing at training step %u "
                             "(%.17g after %.17g); betas this small vanish in float32",
                             fn, k, s->abar[k], s->abar[k - 1]);
        if (!(s->abar[k] > 0))
            return dsn_error(DEISSN_E_INVALID_ARG, "%s: alpha_bar reaches 0 at training step %u",
                             fn, k);
        s->one_minus_abar[k] = 1.0 - s->abar[k];
    }
    return DEISSN_OK;
}

/* ---- spacings -------------------------------------------------------------------------- */

/* numpy.arange(T, 0, -T/N)[k], rounded half to even like numpy.round. */
static double rounded_arange(uint32_t T, uint32_t N, uint32_t k)
{
    double step = -(double)T / (double)N;
    return nearbyint((double)T + (double)k * step);
}

/* Fill s->taus[0..N-1] = tau_N..tau_1 (s->taus[N] = tau_end is set by the caller). */
static int32_t build_times(deissn_schedule *s, const deissn_schedule_params *p)
{
    const char *fn = "deissn_schedule_create";
    uint32_t N = s->steps, T = s->T;
    double *tau = s->taus;
    double tmin = p->tau_min_eval > 0 ? p->tau_min_eval : 1.0 / T;

    switch (p->spacing) {
    case DEISSN_SPACING_QUADRATIC:
        for (uint32_t k = 0; k < N; k++) {
            double v = rounded_arange(T, N, k) / T;
            double t = v * v * T - 1;
            tau[k] = (t + 1) / T;
        }
        break;
    case DEISSN_SPACING_TRAILING:
        for (uint32_t k = 0; k < N; k++) {
            double t = rounded_arange(T, N, k) - 1;
            tau[k] = (t + 1) / T;
        }
        break;
    case DEISSN_SPACING_LINSPACE:
        for (uint32_t k = 0; k < N; k++) {
            double t = floor(np_linspace(0, (double)T - 1, N, N - 1 - k));
            tau[k] = (t + 1) / T;
        }
        break;
    case DEISSN_SPACING_LEADING:
        for (uint32_t k = 0; k < N; k++) {
            double t = (double)(N - 1 - k) * (double)(T / N);
            tau[k] = (t + 1) / T;
        }
        break;
    case DEISSN_SPACING_POWER:
        if (!(p->power > 0 && isfinite(p->power)))
            return dsn_error(DEISSN_E_INVALID_ARG, "%s: power %.17g must be > 0", fn, p->power);
        for (uint32_t k = 0; k < N; k++) {
            double f = pow((double)(N - k) / N, p->power);
            tau[k] = p->tau_end + (1 - p->tau_end) * f;
        }
        break;
    case DEISSN_SPACING_LOGSNR:
    case DEISSN_SPACING_KARRAS: {
        /* Stopping early (tau_end > 0) without a tau_min_eval: the N evaluations and tau_end
         * are N + 1 points uniform in the spacing's variable, so tau_1 is one step above
         * tau_end (DPM-Solver's grid). Otherwise the N evaluations end at tau_min_eval. */
        int to_end = !(p->tau_min_eval > 0) && p->tau_end > 0;
        double last = to_end ? p->tau_end : tmin;
        if (!(tmin > 0 && tmin < 1))
            return dsn_error(DEISSN_E_INVALID_ARG, "%s: tau_min_eval %.17g must be in (0, 1)", fn,
                             tmin);
        /* Work in rho = sigma/alpha = exp(-lambda); alpha_bar = 1 / (1 + rho^2). */
        double a1, s1, a0, s0;
        dsn_alpha_sigma(s, 1.0, &a1, &s1);
        dsn_alpha_sigma(s, last, &a0, &s0);
        double rmax = s1 / a1, rmin = s0 / a0;
        uint32_t intervals = to_end ? N : N - 1;
        for (uint32_t k = 0; k < N; k++) {
            double f = intervals == 0 ? 0.0 : (double)k / intervals, rho;
            if (p->spacing == DEISSN_SPACING_LOGSNR) {
                rho = exp(log(rmax) + f * (log(rmin) - log(rmax)));
            } else {
                double ir = 1.0 / p->karras_rho;
                if (!(p->karras_rho > 0 && isfinite(p->karras_rho)))
                    return dsn_error(DEISSN_E_INVALID_ARG, "%s: karras_rho %.17g must be > 0", fn,
                                     p->karras_rho);
                rho = pow(pow(rmax, ir) + f * (pow(rmin, ir) - pow(rmax, ir)), p->karras_rho);
                if (!(isfinite(rho) && rho > 0))
                    return dsn_error(DEISSN_E_INVALID_ARG, "%s: karras_rho %.17g is out of reach: "
                                     "(sigma/alpha)^(1/rho) overflows double between tau 1 and "
                                     "%.17g (use a rho of about 1 to 100)", fn, p->karras_rho,
                                     last);
            }
            tau[k] = k == 0 ? 1.0
                            : (k == N - 1 && !to_end ? tmin
                                                     : tau_of_abar(s, 1.0 / (1.0 + rho * rho)));
        }
        break;
    }
    case DEISSN_SPACING_CUSTOM:
        if (!p->custom_taus)
            return dsn_error(DEISSN_E_INVALID_ARG, "%s: spacing CUSTOM needs custom_taus", fn);
        for (uint32_t k = 0; k < N; k++) {
            double t = p->custom_taus[k];
            if (!(t > 0 && t <= 1))
                return dsn_error(DEISSN_E_INVALID_ARG,
                                 "%s: custom_taus[%u] = %.17g is outside (0, 1]", fn, k, t);
            tau[k] = t;
        }
        break;
    default:
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: unknown spacing %d", fn, (int)p->spacing);
    }

    for (uint32_t k = 0; k < N; k++) {
        double next = k + 1 < N ? tau[k + 1] : p->tau_end;
        if (!(tau[k] > next)) {
            if (k + 1 < N)
                return dsn_error(DEISSN_E_INVALID_ARG,
                                 "%s: sampling times are not strictly decreasing: tau[%u] = %.17g, "
                                 "tau[%u] = %.17g (too many steps for this spacing?)",
                                 fn, k, tau[k], k + 1, next);
            return dsn_error(DEISSN_E_INVALID_ARG,
                             "%s: tau_end %.17g must be below the last evaluation time %.17g", fn,
                             p->tau_end, tau[k]);
        }
    }
    return DEISSN_OK;
}

/* ---- the object ------------------------------------------------------------------------ */

/* The byte size of each version of deissn_schedule_params (include/deissn.h). */
static const size_t params_size[DEISSN_SCHEDULE_PARAMS_VERSION + 1] = {
    0, sizeof(deissn_schedule_params)};
static const deissn_schedule_params defaults = DEISSN_SCHEDULE_PARAMS_INIT;

int32_t deissn_schedule_params_init(deissn_schedule_params *params, uint32_t version)
{
    return dsn_init_versioned(params, &defaults, params_size, version,
                              DEISSN_SCHEDULE_PARAMS_VERSION, "deissn_schedule_params_init");
}

int32_t dsn_schedule_params_read(deissn_schedule_params *out, const deissn_schedule_params *params,
                                 const char *fn)
{
    return dsn_read_params(out, &defaults, sizeof defaults, params, params_size,
                           DEISSN_SCHEDULE_PARAMS_VERSION, fn, "params");
}

void dsn_schedule_params_write(deissn_schedule_params *caller, const deissn_schedule_params *params)
{
    dsn_write_versioned(caller, params, params_size, caller->version);
}

uint32_t dsn_fingerprint_of(const deissn_schedule *s)
{
    /* float32 values, little-endian: stable across platforms and libm rounding. */
    unsigned char buf[4];
    uLong crc = crc32(0L, Z_NULL, 0);
    uint32_t T = s->T;
    for (int i = 0; i < 4; i++) buf[i] = (unsigned char)(T >> (8 * i));
    crc = crc32(crc, buf, 4);
    for (uint32_t k = 0; k <= T; k++) {
        float f = (float)dsn_abar(s, (double)k / T);
        uint32_t bits;
        memcpy(&bits, &f, 4);
        for (int i = 0; i < 4; i++) buf[i] = (unsigned char)(bits >> (8 * i));
        crc = crc32(crc, buf, 4);
    }
    return (uint32_t)crc;
}

static int32_t validate(const deissn_schedule_params *p)
{
    const char *fn = "deissn_schedule_create";
    if (p->noise < DEISSN_NOISE_LINEAR || p->noise > DEISSN_NOISE_CONTINUOUS_VP)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: unknown noise schedule %d", fn, (int)p->noise);
    if (p->num_train_steps < 1 || p->num_train_steps > MAX_TRAIN_STEPS)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: num_train_steps %u must be in 1..%u", fn,
                         p->num_train_steps, MAX_TRAIN_STEPS);
    if ((p->noise == DEISSN_NOISE_CUSTOM_BETAS || p->noise == DEISSN_NOISE_CUSTOM_ALPHAS_CUMPROD)) {
        if (!p->custom)
            return dsn_error(DEISSN_E_INVALID_ARG, "%s: custom noise schedule needs `custom`", fn);
        if (p->custom_len != p->num_train_steps)
            return dsn_error(DEISSN_E_INVALID_ARG,
                             "%s: custom_len %zu must equal num_train_steps %u", fn,
                             p->custom_len, p->num_train_steps);
    }
    if (p->noise == DEISSN_NOISE_CONTINUOUS_VP &&
        !(p->beta_min > 0 && p->beta_max >= p->beta_min && isfinite(p->beta_max)))
        return dsn_error(DEISSN_E_INVALID_ARG,
                         "%s: continuous VP needs 0 < beta_min <= beta_max (got %.17g, %.17g)", fn,
                         p->beta_min, p->beta_max);
    if (p->noise == DEISSN_NOISE_CONTINUOUS_VP && !(exp(-0.5 * (p->beta_min + p->beta_max)) > 0))
        return dsn_error(DEISSN_E_INVALID_ARG,
                         "%s: continuous VP with beta_min %.17g, beta_max %.17g: alpha_bar(1) = "
                         "exp(-%g) is 0 in double precision", fn, p->beta_min, p->beta_max,
                         0.5 * (p->beta_min + p->beta_max));
    uint32_t max_steps = p->noise == DEISSN_NOISE_CONTINUOUS_VP &&
                                 p->spacing >= DEISSN_SPACING_POWER
                             ? MAX_CONTINUOUS_STEPS
                             : p->num_train_steps;
    if (p->steps < 1 || p->steps > max_steps)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: steps %u must be in 1..%u", fn, p->steps,
                         max_steps);
    if (!(p->tau_end >= 0 && p->tau_end < 1))
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: tau_end %.17g must be in [0, 1)", fn, p->tau_end);
    return DEISSN_OK;
}

int32_t deissn_schedule_create(deissn_schedule **out, const deissn_schedule_params *params)
{
    const char *fn = "deissn_schedule_create";
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    deissn_schedule_params copy;
    const deissn_schedule_params *p = &copy;
    int32_t rc = dsn_schedule_params_read(&copy, params, fn);
    if (rc == DEISSN_OK) rc = validate(p);
    if (rc) return rc;

    deissn_schedule *s = dsn_calloc(1, sizeof *s);
    if (!s) return dsn_error(DEISSN_E_NOMEM, "%s: out of memory", fn);
    s->refs = 1;
    s->noise = p->noise;
    s->T = p->num_train_steps;
    s->beta_min = p->beta_min;
    s->beta_max = p->beta_max;
    s->steps = p->steps;
    if (p->noise != DEISSN_NOISE_CONTINUOUS_VP) rc = build_knots(s, p);
    if (!rc) {
        s->taus = dsn_malloc(((size_t)s->steps + 1) * sizeof(double));
        if (!s->taus) rc = dsn_error(DEISSN_E_NOMEM, "%s: out of memory for %u times", fn, s->steps);
    }
    if (!rc) rc = build_times(s, p);
    if (rc) {
        s->refs = 1;
        deissn_schedule_free(s);
        return rc;
    }
    s->taus[s->steps] = p->tau_end;
    s->fingerprint = dsn_fingerprint_of(s);
    *out = s;
    return DEISSN_OK;
}

void deissn_schedule_free(deissn_schedule *s)
{
    if (!s || !dsn_unref(&s->refs)) return;
    dsn_free(s->abar);
    dsn_free(s->one_minus_abar);
    dsn_free(s->taus);
    dsn_free(s);
}

uint32_t deissn_schedule_steps(const deissn_schedule *s) { return s ? s->steps : 0; }
uint32_t deissn_schedule_num_train_steps(const deissn_schedule *s) { return s ? s->T : 0; }
uint32_t deissn_schedule_fingerprint(const deissn_schedule *s) { return s ? s->fingerprint : 0; }

int32_t deissn_schedule_times(const deissn_schedule *s, double *taus, size_t capacity)
{
    const char *fn = "deissn_schedule_times";
    if (!s) return dsn_error(DEISSN_E_INVALID_ARG, "%s: schedule is NULL", fn);
    if (!taus) return dsn_error(DEISSN_E_INVALID_ARG, "%s: taus is NULL", fn);
    if (capacity < (size_t)s->steps + 1)
        return dsn_error(DEISSN_E_SIZE, "%s: capacity %zu < steps + 1 = %u", fn, capacity,
                         s->steps + 1);
    memcpy(taus, s->taus, ((size_t)s->steps + 1) * sizeof(double));
    return DEISSN_OK;
}
