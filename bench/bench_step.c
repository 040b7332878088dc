/* bench_step.c - the cost of deissn_step() against memcpy of the same bytes.
 *
 * A step of order p reads x, the model output and p history buffers and writes x and the
 * history slot: (p + 4) * n * 4 bytes. memcpy of B bytes moves 2B (read + write). We report
 * the bytes a step moves per second as a fraction of memcpy's bytes per second, for the shapes
 * of issue 6, medians over repeated runs. */
#include "deissn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define REPS 41

static void bench(const char *name, size_t n)
{
    deissn_schedule_params sp = DEISSN_SCHEDULE_PARAMS_INIT;
    sp.spacing = DEISSN_SPACING_TRAILING;
    sp.steps = 1000;
    deissn_schedule *sch;
    deissn_sampler *s;
    deissn_schedule_create(&sch, &sp);
    deissn_sampler_create(&s, sch, NULL, NULL); /* order 3 */
    float *x = malloc(n * 4), *out = malloc(n * 4), *dst = malloc(n * 7 * 4), *src = malloc(n * 7 * 4);
    deissn_fill_noise(1, 0, 1, n, x);
    deissn_fill_noise(2, 0, 1, n, out);
    memset(src, 1, n * 7 * 4);
    double t_step[REPS], t_copy[REPS];
    for (int r = 0; r < REPS + 4; r++) {
        /* 4 steps of warm-up so that every timed step is order 3 */
        if (r % 900 == 0) deissn_sampler_reset(s);
        double t0 = now();
        deissn_step(s, x, out, n, DEISSN_PREDICT_EPSILON, NULL);
        double t1 = now();
        memcpy(dst, src, n * 7 * 4 / 2); /* moves 7n*4 bytes: half read, half written */
        double t2 = now();
        if (r >= 4) {
            t_step[r - 4] = t1 - t0;
            t_copy[r - 4] = t2 - t1;
        }
        for (size_t i = 0; i < n; i += 4096) x[i] *= 0.5f; /* keep values tame */
    }
    qsort(t_step, REPS, sizeof(double), cmp);
    qsort(t_copy, REPS, sizeof(double), cmp);
    double bytes = 7.0 * n * 4, ts = t_step[REPS / 2], tc = t_copy[REPS / 2];
    printf("%-16s %9zu floats  step %8.1f us  %6.2f GB/s   memcpy %8.1f us  %6.2f GB/s   ratio %.2f\n",
           name, n, ts * 1e6, bytes / ts / 1e9, tc * 1e6, bytes / tc / 1e9, tc / ts);
    free(x); free(out); free(dst); free(src);
    deissn_sampler_free(s);
    deissn_schedule_free(sch);
}

int main(void)
{
    printf("deissn_step, order 3, float32 state (bytes moved = 7 x state), median of %d\n", REPS);
    bench("64x3x32x32", 64 * 3 * 32 * 32);
    bench("4x4x128x128", 4 * 4 * 128 * 128);
    bench("16x4x128x128", 16 * 4 * 128 * 128);
    return 0;
}
