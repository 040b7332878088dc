/* bench_step.c - the C side of `make bench`: coefficient setup time and the cost of
 * deissn_step() against memcpy of the same bytes, medians over repeated runs.
 *
 *   build/bench/bench_step [REPS [TABLE]]      (make bench; make bench-smoke uses REPS 3)
 *
 * Setup: deissn_sampler_create() for 10, 20, 50 quadratic steps, order 3, with the table TABLE
 * (a .dsn or reference .pt file; default the shipped model's, else no table), timed in C so
 * no binding overhead is included. bench/bench.py times the same calls through ctypes next to
 * the reference's Riemann-sum method.
 *
 * Step: a step of depth p reads x, the model output and p history buffers and writes x and
 * the history slot: (p + 4) * n * 4 bytes (DEIS-SN order 3: p = 3; METHOD_DATA order 3 with
 * the corrector: p = 4, and the output converted to x0 on the way). memcpy of B bytes moves
 * 2B (read + write). We report the bytes a step moves per second as a fraction of memcpy's
 * bytes per second. */
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

static double median(double *t, int n)
{
    qsort(t, n, sizeof(double), cmp);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static int reps = 41;

static void bench_setup(const deissn_normtable *table, uint32_t steps)
{
    deissn_schedule_params sp = DEISSN_SCHEDULE_PARAMS_INIT;
    sp.steps = steps;
    deissn_schedule *sch;
    if (deissn_schedule_create(&sch, &sp) != DEISSN_OK) {
        fprintf(stderr, "bench_step: %s\n", deissn_last_error());
        exit(1);
    }
    double *t = malloc(reps * sizeof(double));
    for (int r = 0; r < reps; r++) {
        deissn_sampler *s;
        double t0 = now();
        int32_t rc = deissn_sampler_create(&s, sch, table, NULL); /* order 3 */
        t[r] = now() - t0;
        if (rc != DEISSN_OK) {
            fprintf(stderr, "bench_step: %s\n", deissn_last_error());
            exit(1);
        }
        deissn_sampler_free(s);
    }
    printf("setup  %2u steps, order 3, %s  %8.1f us\n", steps, table ? "table   " : "no table",
           median(t, reps) * 1e6);
    free(t);
    deissn_schedule_free(sch);
}

static void bench_step(const char *name, size_t n, int data)
{
    deissn_schedule_params sp = DEISSN_SCHEDULE_PARAMS_INIT;
    sp.spacing = DEISSN_SPACING_TRAILING;
    sp.steps = 1000;
    deissn_sampler_params pp = DEISSN_SAMPLER_PARAMS_INIT; /* order 3 */
    if (data) {
        pp.method = DEISSN_METHOD_DATA;
        pp.corrector = 1;
    }
    const size_t moves = data ? 8 : 7; /* n-float arrays a step reads and writes */
    deissn_schedule *sch;
    deissn_sampler *s;
    deissn_schedule_create(&sch, &sp);
    deissn_sampler_create(&s, sch, NULL, &pp);
    float *x = malloc(n * 4), *out = malloc(n * 4), *dst = malloc(n * moves * 4),
          *src = malloc(n * moves * 4);
    deissn_fill_noise(1, 0, 1, n, x);
    deissn_fill_noise(2, 0, 1, n, out);
    memset(src, 1, n * moves * 4);
    memset(dst, 0, n * moves * 4); /* touch the pages before timing */
    double *t_step = malloc(reps * sizeof(double)), *t_copy = malloc(reps * sizeof(double));
    for (int r = 0; r < reps + 4; r++) {
        /* 4 steps of warm-up so that every timed step is order 3 (1000 steps: no reset needed
         * for reps < 996) */
        if (r > 0 && r % 996 == 0) deissn_sampler_reset(s);
        double t0 = now();
        deissn_step(s, x, out, n, NULL);
        double t1 = now();
        memcpy(dst, src, n * moves * 4 / 2); /* moves that many bytes: half read, half written */
        double t2 = now();
        if (r >= 4) {
            t_step[r - 4] = t1 - t0;
            t_copy[r - 4] = t2 - t1;
        }
        for (size_t i = 0; i < n; i += 4096) x[i] *= 0.5f; /* keep values tame */
    }
    double bytes = (double)moves * n * 4, ts = median(t_step, reps), tc = median(t_copy, reps);
    printf("step   %-14s %-8s %9zu floats  step %8.1f us %6.2f GB/s   memcpy %8.1f us %6.2f "
           "GB/s   step/memcpy speed %.2f\n", name, data ? "x0+corr" : "DEIS-SN", n, ts * 1e6,
           bytes / ts / 1e9, tc * 1e6, bytes / tc / 1e9, tc / ts);
    free(x); free(out); free(dst); free(src); free(t_step); free(t_copy);
    deissn_sampler_free(s);
    deissn_schedule_free(sch);
}

int main(int argc, char **argv)
{
    if (argc > 1) reps = atoi(argv[1]);
    if (reps < 1) reps = 1;
    const char *path = argc > 2 ? argv[2] : "models/fmnist_unet.dsn";
    deissn_normtable *table = NULL;
    if (deissn_normtable_load(&table, path, NULL) != DEISSN_OK)
        printf("(no table: %s)\n", deissn_last_error());
    printf("bench_step (C): medians of %d runs; a step moves 7 (DEIS-SN, order 3) or 8 (x0 + "
           "corrector, order 3) x the state's bytes\n", reps);
    const uint32_t steps[] = {10, 20, 50};
    for (int i = 0; i < 3; i++) bench_setup(table, steps[i]);
    for (int data = 0; data < 2; data++) {
        bench_step("64x3x32x32", 64 * 3 * 32 * 32, data);
        bench_step("4x4x128x128", 4 * 4 * 128 * 128, data);
        bench_step("16x4x128x128", 16 * 4 * 128 * 128, data);
    }
    deissn_normtable_free(table);
    return 0;
}
