/* noise.c - deterministic Gaussian noise that is the same on every platform.
 *
 * Sample k of seed s draws from its own SplitMix64 stream keyed by (s, k), so its values do
 * not depend on the batch it is drawn in. Normals come from Marsaglia's polar method, whose
 * only transcendental is a logarithm; we compute it here from +, *, / and frexp (all exact or
 * correctly rounded in IEEE 754), never from the platform's libm, and this file is compiled
 * with -ffp-contract=off so no compiler fuses operations differently on another machine. */
#include "base/base.h"

#include <math.h>

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct {
    uint64_t state;
} stream;

static uint64_t next_u64(stream *g)
{
    g->state += 0x9E3779B97F4A7C15ull;
    return mix64(g->state);
}

/* Uniform in (-1, 1), 53 random bits. */
static double next_signed_unit(stream *g)
{
    double u = ((double)(next_u64(g) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    return 2.0 * u - 1.0;
}

/* Natural log of x > 0 (finite), to about 1 ulp, the same everywhere. */
static double portable_log(double x)
{
    int e;
    double m = frexp(x, &e); /* x = m 2^e, m in [0.5, 1) */
    if (m < 0.70710678118654752440) {
        m *= 2.0;
        e -= 1;
    }
    /* log m = 2 atanh(t), t = (m - 1)/(m + 1), |t| < 0.172 */
    double t = (m - 1.0) / (m + 1.0), t2 = t * t;
    double sum = 1.0 / 25;
    for (int k = 11; k >= 0; k--) sum = 1.0 / (2 * k + 1) + t2 * sum;
    return 2.0 * t * sum + (double)e * 0.69314718055994530942;
}

int32_t deissn_fill_noise(uint64_t seed, uint64_t first_sample, size_t n_samples,
                          size_t sample_numel, float *out)
{
    const char *fn = "deissn_fill_noise";
    size_t total;
    if (!dsn_mul_size(n_samples, sample_numel, &total) || !dsn_mul_size(total, sizeof(float), &total))
        return dsn_error(DEISSN_E_SIZE, "%s: %zu samples x %zu values overflow", fn, n_samples,
                         sample_numel);
    if (!out && total > 0) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    for (size_t k = 0; k < n_samples; k++) {
        stream g = {mix64(seed ^ 0x6A09E667F3BCC908ull) ^ mix64(first_sample + k + 0x3C6EF372FE94F82Bull)};
        float *o = out + k * sample_numel;
        size_t i = 0;
        while (i < sample_numel) {
            double u, v, s;
            do {
                u = next_signed_unit(&g);
                v = next_signed_unit(&g);
                s = u * u + v * v;
            } while (s >= 1.0 || s == 0.0);
            double f = sqrt(-2.0 * portable_log(s) / s);
            o[i++] = (float)(u * f);
            if (i < sample_numel) o[i++] = (float)(v * f);
        }
    }
    return DEISSN_OK;
}
