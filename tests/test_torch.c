/* test_torch.c - TorchScript models through the public API (needs a libtorch build).
 *
 * Usage: test_torch [models_dir]   (default: $DEISSN_TEST_MODELS, else tests/models)
 * The models are written by tests/models/make_test_models.py. Without libtorch in the build
 * every check is reported as skipped.
 *
 * The reference for the TorchScript path is the callback path: the same analytic Gaussian
 * model (data ~ N(0, s^2 I), s = 0.5) computed here in double. Both must agree to 1e-5. */
#include "deissn.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int n_pass, n_fail, n_skip;
static char models[1024];

static void check(int ok, const char *name, const char *fmt, ...) {
    if (ok) {
        printf("ok   %s\n", name);
        n_pass++;
        return;
    }
    printf("FAIL %s: ", name);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    n_fail++;
}

static void skip(const char *name, const char *why) {
    printf("SKIP %s: %s\n", name, why);
    n_skip++;
}

static const char *model_path(const char *file) {
    static char buf[2][1200];
    static int which;
    which ^= 1;
    snprintf(buf[which], sizeof buf[which], "%s/%s", models, file);
    return buf[which];
}

/* ---- the analytic model, in C ---------------------------------------------------------- */

typedef struct {
    const deissn_schedule *schedule;
    int prediction;
} gauss_ctx;

static int gauss_fn(void *user, const float *x, const int64_t *shape, uint32_t ndim, double t,
                    float *out) {
    const gauss_ctx *g = user;
    size_t n = 1;
    for (uint32_t d = 0; d < ndim; d++) n *= (size_t)shape[d];
    /* Same formula as the TorchScript model, from the model time t = tau*1000 - 1. */
    double abar = deissn_schedule_alpha_bar(g->schedule, (t + 1.0) / 1000.0);
    double sigma2 = 1.0 - abar, sigma = sqrt(sigma2), alpha = sqrt(abar);
    for (size_t i = 0; i < n; i++) {
        double eps = sigma * x[i] / (abar * 0.25 + sigma2);
        double o = eps;
        if (g->prediction == DEISSN_PREDICT_SAMPLE) o = (x[i] - sigma * eps) / alpha;
        if (g->prediction == DEISSN_PREDICT_V) o = (eps - sigma * x[i]) / alpha;
        out[i] = (float)o;
    }
    return 0;
}

/* ---- helpers --------------------------------------------------------------------------- */

static deissn_schedule *make_schedule(uint32_t steps) {
    deissn_schedule_params sp = DEISSN_SCHEDULE_PARAMS_INIT;
    sp.steps = steps;
    deissn_schedule *s = NULL;
    if (deissn_schedule_create(&s, &sp) != DEISSN_OK) {
        fprintf(stderr, "schedule: %s\n", deissn_last_error());
        exit(2);
    }
    return s;
}

static deissn_normtable *make_table(void) {
    const double tau[] = {0.0, 0.05, 0.2, 0.6, 1.0};
    const double r[] = {0.55, 0.70, 0.79, 0.80, 0.798};
    deissn_normtable *t = NULL;
    if (deissn_normtable_create(&t, tau, r, 5, NULL) != DEISSN_OK) {
        fprintf(stderr, "table: %s\n", deissn_last_error());
        exit(2);
    }
    return t;
}

static deissn_sampler *make_method_sampler(const deissn_schedule *s, const deissn_normtable *t,
                                           uint32_t order, int32_t method, uint32_t corrector,
                                           int32_t prediction) {
    deissn_sampler_params pp = DEISSN_SAMPLER_PARAMS_INIT;
    pp.prediction = prediction;
    pp.order = order;
    pp.method = method;
    pp.corrector = corrector;
    deissn_sampler *smp = NULL;
    if (deissn_sampler_create(&smp, s, t, &pp) != DEISSN_OK) {
        fprintf(stderr, "sampler: %s\n", deissn_last_error());
        exit(2);
    }
    return smp;
}

static deissn_sampler *make_sampler(const deissn_schedule *s, const deissn_normtable *t,
                                    uint32_t order) {
    return make_method_sampler(s, t, order, DEISSN_METHOD_EPS, 0, DEISSN_PREDICT_EPSILON);
}

static int32_t load_threads(deissn_model **m, const char *path, const char *device, int dtype,
                            int32_t num_threads) {
    deissn_model_params mp = DEISSN_MODEL_PARAMS_INIT;
    mp.num_threads = num_threads;
    mp.device = device;
    mp.dtype = dtype;
    return deissn_model_load(m, path, &mp);
}

static int32_t load(deissn_model **m, const char *path, const char *device, int dtype) {
    return load_threads(m, path, device, dtype, 0);
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}

static int contains(const char *s, const char *needle) { return strstr(s, needle) != NULL; }

/* ---- checks ---------------------------------------------------------------------------- */

static const int64_t SHAPE[4] = {3, 1, 4, 4};
#define NUMEL 48

static void test_matches_callback(void) {
    static const struct {
        int prediction;
        const char *file;
    } preds[] = {{DEISSN_PREDICT_EPSILON, "gaussian_eps.pt"},
                 {DEISSN_PREDICT_SAMPLE, "gaussian_x0.pt"},
                 {DEISSN_PREDICT_V, "gaussian_v.pt"}};
    deissn_schedule *sched = make_schedule(10);
    deissn_normtable *table = make_table();
    for (size_t p = 0; p < 3; p++) {
        deissn_model *tm = NULL, *cm = NULL;
        gauss_ctx ctx = {sched, preds[p].prediction};
        deissn_model_params mp = DEISSN_MODEL_PARAMS_INIT;
        int32_t st = load(&tm, model_path(preds[p].file), NULL, DEISSN_DTYPE_FLOAT32);
        check(st == DEISSN_OK && tm != NULL, preds[p].file, "load: %d %s", st,
              deissn_last_error());
        if (st != DEISSN_OK) continue;
        if (deissn_model_from_callback(&cm, gauss_fn, &ctx, &mp) != DEISSN_OK) {
            check(0, "callback model", "%s", deissn_last_error());
            deissn_model_free(tm);
            continue;
        }
        /* 0-3: DDIM, then DEIS-SN orders 1-3 with the table; 4-7: METHOD_DATA orders 0-3,
         * with the corrector from order 1 on (the device loop keeps x0 and folds the
         * correction into one more history term). */
        for (uint32_t run = 0; run < 8; run++) {
            uint32_t order = run % 4, data = run >= 4;
            deissn_sampler *smp =
                make_method_sampler(sched, data || !order ? NULL : table, order,
                                    data ? DEISSN_METHOD_DATA : DEISSN_METHOD_EPS,
                                    data && order > 0, preds[p].prediction);
            float xt[NUMEL], xc[NUMEL];
            deissn_fill_noise(42, 0, 3, 16, xt);
            memcpy(xc, xt, sizeof xt);
            deissn_sample_stats stats = DEISSN_SAMPLE_STATS_INIT;
            deissn_sample_options opt = DEISSN_SAMPLE_OPTIONS_INIT;
            opt.stats = &stats;
            int32_t s1 = deissn_sample(smp, tm, xt, SHAPE, 4, &opt);
            int32_t s2 = deissn_sample(smp, cm, xc, SHAPE, 4, NULL);
            double d = max_abs_diff(xt, xc, NUMEL);
            char name[160];
            snprintf(name, sizeof name, "%s %s order %u == callback path [max |diff| %.2g]",
                     preds[p].file, data ? (order ? "x0 + corrector" : "x0")
                                         : order ? "DEIS-SN" : "DDIM", order, d);
            check(s1 == DEISSN_OK && s2 == DEISSN_OK && d <= 1e-5, name,
                  "status %d/%d, max |diff| %.3g (%s)", s1, s2, d, deissn_last_error());
            if (run == 3 && p == 0)
                check(stats.model_seconds > 0.0 && stats.sampler_seconds >= 0.0 &&
                          stats.evaluations == 10,
                      "sample stats report model and sampler time", "model %g, sampler %g",
                      stats.model_seconds, stats.sampler_seconds);
            deissn_sampler_free(smp);
        }
        deissn_model_free(tm);
        deissn_model_free(cm);
    }
    deissn_normtable_free(table);
    deissn_schedule_free(sched);
}

static void expect_load_error(const char *what, const char *path, const char *device,
                              int dtype, int32_t want, const char *needle) {
    deissn_model *m = (deissn_model *)1;
    int32_t st = load(&m, path, device, dtype);
    const char *msg = deissn_last_error();
    char name[1400];
    snprintf(name, sizeof name, "%s [%s]", what, msg);
    check(st == want && m == NULL && msg[0] != '\0' && contains(msg, needle), name,
          "status %d (want %d), out %p, message \"%s\" (want \"%s\" in it)", st, want,
          (void *)m, msg, needle);
    if (st == DEISSN_OK) deissn_model_free(m);
}

/* A model that loads but fails while sampling: status, message, and x untouched. */
static void expect_sample_error(const char *file, int32_t want, const char *needle) {
    deissn_model *m = NULL;
    char name[1400];
    snprintf(name, sizeof name, "%s loads", file);
    if (load(&m, model_path(file), NULL, DEISSN_DTYPE_FLOAT32)) {
        check(0, name, "load failed: %s", deissn_last_error());
        return;
    }
    deissn_schedule *sched = make_schedule(10);
    deissn_sampler *smp = make_sampler(sched, NULL, 2);
    float x[NUMEL], x0[NUMEL];
    deissn_fill_noise(7, 0, 3, 16, x);
    memcpy(x0, x, sizeof x);
    int32_t st = deissn_sample(smp, m, x, SHAPE, 4, NULL);
    const char *msg = deissn_last_error();
    snprintf(name, sizeof name, "%s fails sampling with %s [%s]", file,
             deissn_status_string(want), msg);
    check(st == want && contains(msg, needle) && memcmp(x, x0, sizeof x) == 0, name,
          "status %d (want %d), message \"%s\" (want \"%s\"), x %s", st, want, msg, needle,
          memcmp(x, x0, sizeof x) ? "CHANGED" : "unchanged");
    deissn_sampler_free(smp);
    deissn_schedule_free(sched);
    deissn_model_free(m);
}

static int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static unsigned char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(len > 0 ? (size_t)len : 1);
    *n = buf ? fread(buf, 1, (size_t)len, f) : 0;
    fclose(f);
    return buf;
}

static void test_bad_models(const char *tmpdir) {
    char path[1200];
    expect_load_error("missing file -> IO naming it", model_path("does_not_exist.pt"), NULL,
                      DEISSN_DTYPE_FLOAT32, DEISSN_E_IO, "does_not_exist.pt");
    expect_load_error("directory -> IO", models, NULL, DEISSN_DTYPE_FLOAT32, DEISSN_E_IO,
                      models);
    expect_load_error("no_forward.pt -> MODEL", model_path("no_forward.pt"), NULL,
                      DEISSN_DTYPE_FLOAT32, DEISSN_E_MODEL, "forward");
    expect_load_error("wrong_arity.pt -> MODEL naming the arity", model_path("wrong_arity.pt"),
                      NULL, DEISSN_DTYPE_FLOAT32, DEISSN_E_MODEL, "1 input");
    expect_load_error("not_a_model.pt (torch.save'd tensor) -> MODEL",
                      model_path("not_a_model.pt"), NULL, DEISSN_DTYPE_FLOAT32, DEISSN_E_MODEL,
                      "not_a_model.pt");
    snprintf(path, sizeof path, "%s/deissn_random_%d.pt", tmpdir, (int)getpid());
    unsigned char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)(i * 2654435761u >> 13);
    write_file(path, junk, sizeof junk);
    expect_load_error("random bytes -> MODEL", path, NULL, DEISSN_DTYPE_FLOAT32, DEISSN_E_MODEL,
                      "deissn_random_");
    remove(path);

    expect_sample_error("wrong_shape.pt", DEISSN_E_MODEL, "shape");
    expect_sample_error("wrong_dtype.pt", DEISSN_E_MODEL, "int64");
    expect_sample_error("returns_nan.pt", DEISSN_E_NONFINITE, "step");
    /* Finite outputs that overflow: the state after the update is checked on this path too
     * (it once returned Inf samples with status OK), and a float64 output beyond float32 is
     * named as such rather than as a NaN the model never produced. */
    expect_sample_error("huge_output.pt", DEISSN_E_NONFINITE, "the state became");
    expect_sample_error("float64_huge.pt", DEISSN_E_NONFINITE, "overflows float32");
    expect_load_error("needs_cond.pt -> MODEL naming the argument without a default",
                      model_path("needs_cond.pt"), NULL, DEISSN_DTYPE_FLOAT32, DEISSN_E_MODEL,
                      "'c'");
}

/* Models that misbehave in ways the sampler must not notice: one that writes into its
 * inputs (it gets a copy of the state and a fresh time tensor), one whose forward has a
 * further argument with a default. Both must give gaussian_eps.pt's samples, bit for bit. */
static void test_harmless_models(void) {
    deissn_schedule *sched = make_schedule(10);
    deissn_normtable *table = make_table();
    deissn_model *ref = NULL;
    if (load(&ref, model_path("gaussian_eps.pt"), NULL, DEISSN_DTYPE_FLOAT32)) {
        check(0, "load gaussian_eps.pt", "%s", deissn_last_error());
        return;
    }
    const char *files[] = {"edits_input.pt", "default_arg.pt"};
    for (int f = 0; f < 2; f++) {
        deissn_model *m = NULL;
        int32_t st = load(&m, model_path(files[f]), NULL, DEISSN_DTYPE_FLOAT32);
        check(st == DEISSN_OK, files[f], "load: %s", deissn_last_error());
        if (st) continue;
        for (uint32_t order = 0; order <= 3; order++) {
            deissn_sampler *smp = make_sampler(sched, order ? table : NULL, order);
            float a[NUMEL], b[NUMEL];
            deissn_fill_noise(11, 0, 3, 16, a);
            memcpy(b, a, sizeof a);
            int32_t s1 = deissn_sample(smp, ref, a, SHAPE, 4, NULL);
            int32_t s2 = deissn_sample(smp, m, b, SHAPE, 4, NULL);
            char name[200];
            snprintf(name, sizeof name, "%s, order %u: the same samples as gaussian_eps.pt",
                     files[f], order);
            check(s1 == DEISSN_OK && s2 == DEISSN_OK && memcmp(a, b, sizeof a) == 0, name,
                  "status %d/%d, max |diff| %.3g (%s)", s1, s2, max_abs_diff(a, b, NUMEL),
                  deissn_last_error());
            deissn_sampler_free(smp);
        }
        deissn_model_free(m);
    }
    deissn_model_free(ref);
    deissn_normtable_free(table);
    deissn_schedule_free(sched);
}

static void test_truncated(const char *tmpdir) {
    size_t n = 0;
    unsigned char *data = read_file(model_path("gaussian_eps.pt"), &n);
    if (!data || n < 100) {
        check(0, "truncated files", "cannot read gaussian_eps.pt");
        free(data);
        return;
    }
    char path[1200], name[128];
    snprintf(path, sizeof path, "%s/deissn_trunc_%d.pt", tmpdir, (int)getpid());
    /* 0 bytes, then 10 cuts spread over the file, the last one byte short of the end. */
    for (int k = 0; k <= 10; k++) {
        size_t len = k == 10 ? n - 1 : n * (size_t)k / 10;
        write_file(path, data, len);
        snprintf(name, sizeof name, "truncated at %zu of %zu bytes -> MODEL", len, n);
        expect_load_error(name, path, NULL, DEISSN_DTYPE_FLOAT32, DEISSN_E_MODEL, "deissn_trunc_");
    }
    remove(path);
    free(data);
}

static void test_devices(void) {
    const char *eps = model_path("gaussian_eps.pt");
    expect_load_error("device \"gpu\" -> INVALID_ARG", eps, "gpu", DEISSN_DTYPE_FLOAT32,
                      DEISSN_E_INVALID_ARG, "gpu");
    expect_load_error("device \"cuda:x\" -> INVALID_ARG", eps, "cuda:x", DEISSN_DTYPE_FLOAT32,
                      DEISSN_E_INVALID_ARG, "cuda:x");
    expect_load_error("float16 on cpu -> UNSUPPORTED", eps, "cpu", DEISSN_DTYPE_FLOAT16,
                      DEISSN_E_UNSUPPORTED, "float16");

    /* Only meaningful where CUDA is absent; elsewhere "cuda" must load. */
    deissn_model *m = NULL;
    int32_t st = load(&m, eps, "cuda", DEISSN_DTYPE_FLOAT32);
    if (st == DEISSN_OK)
        skip("device \"cuda\" -> UNSUPPORTED", "CUDA is available here");
    else {
        char name[1200];
        snprintf(name, sizeof name, "device \"cuda\" -> UNSUPPORTED without CUDA [%s]",
                 deissn_last_error());
        check(st == DEISSN_E_UNSUPPORTED && contains(deissn_last_error(), "CUDA"), name,
              "status %d", st);
    }
    deissn_model_free(m);

    /* bfloat16 runs on the CPU; its answer is close to float32's (3 significant digits). */
    m = NULL;
    st = load(&m, eps, "cpu", DEISSN_DTYPE_BFLOAT16);
    if (st != DEISSN_OK) {
        check(0, "bfloat16 on cpu", "load: %d %s", st, deissn_last_error());
        return;
    }
    /* The float32 reference, loaded with num_threads = 1 (which must not change results). */
    deissn_model *f = NULL;
    st = load_threads(&f, eps, "cpu", DEISSN_DTYPE_FLOAT32, 1);
    check(st == DEISSN_OK, "load with num_threads = 1", "%d %s", st, deissn_last_error());
    deissn_schedule *sched = make_schedule(10);
    deissn_sampler *smp = make_sampler(sched, NULL, 2);
    float xb[NUMEL], xf[NUMEL];
    deissn_fill_noise(3, 0, 3, 16, xb);
    memcpy(xf, xb, sizeof xb);
    int32_t s1 = deissn_sample(smp, m, xb, SHAPE, 4, NULL);
    int32_t s2 = deissn_sample(smp, f, xf, SHAPE, 4, NULL);
    double d = max_abs_diff(xb, xf, NUMEL);
    char name[80];
    snprintf(name, sizeof name, "bfloat16 on cpu close to float32 [max |diff| %.2g]", d);
    check(s1 == DEISSN_OK && s2 == DEISSN_OK && d < 0.05, name,
          "status %d/%d, max |diff| %g (%s)", s1, s2, d, deissn_last_error());
    deissn_sampler_free(smp);
    deissn_schedule_free(sched);
    deissn_model_free(m);
    deissn_model_free(f);
}

static int stop_at_3(void *user, uint32_t step, uint32_t steps) {
    (void)steps;
    ++*(int *)user;
    return step == 3 ? 17 : 0;
}

static int count_steps(void *user, uint32_t step, uint32_t steps) {
    (void)step;
    (void)steps;
    ++*(int *)user;
    return 0;
}

static void test_progress_and_determinism(void) {
    deissn_model *m = NULL;
    if (load(&m, model_path("gaussian_eps.pt"), NULL,
             DEISSN_DTYPE_FLOAT32)) {
        check(0, "load gaussian_eps.pt", "%s", deissn_last_error());
        return;
    }
    deissn_schedule *sched = make_schedule(10);
    deissn_normtable *table = make_table();
    deissn_sampler *smp = make_sampler(sched, table, 3);

    float x[NUMEL], x0[NUMEL];
    deissn_fill_noise(5, 0, 3, 16, x);
    memcpy(x0, x, sizeof x);
    int calls = 0;
    deissn_sample_options opt = DEISSN_SAMPLE_OPTIONS_INIT;
    opt.progress = stop_at_3;
    opt.progress_user = &calls;
    int32_t st = deissn_sample(smp, m, x, SHAPE, 4, &opt);
    check(st == DEISSN_E_CALLBACK && calls == 4 && memcmp(x, x0, sizeof x) == 0 &&
              contains(deissn_last_error(), "17"),
          "progress returning 17 at step 3 -> CALLBACK, x unchanged",
          "status %d, %d calls, x %s, \"%s\"", st, calls,
          memcmp(x, x0, sizeof x) ? "CHANGED" : "unchanged", deissn_last_error());
    calls = 0;
    opt.progress = count_steps;
    st = deissn_sample(smp, m, x, SHAPE, 4, &opt);
    check(st == DEISSN_OK && calls == 10, "progress called once per step", "status %d, %d calls",
          st, calls);

    /* Repeatable, and independent of the batch: sample k is the same in batches of 4 and 16. */
    enum { BIG = 16, SMALL = 4, FIRST = 9, PER = 16 };
    static float a[BIG * PER], b[BIG * PER], c[SMALL * PER];
    const int64_t big[4] = {BIG, 1, 4, 4}, small[4] = {SMALL, 1, 4, 4};
    deissn_fill_noise(1234, 0, BIG, PER, a);
    memcpy(b, a, sizeof a);
    deissn_fill_noise(1234, FIRST, SMALL, PER, c);
    int32_t s1 = deissn_sample(smp, m, a, big, 4, NULL);
    int32_t s2 = deissn_sample(smp, m, b, big, 4, NULL);
    int32_t s3 = deissn_sample(smp, m, c, small, 4, NULL);
    check(s1 == DEISSN_OK && s2 == DEISSN_OK && memcmp(a, b, sizeof a) == 0,
          "same seed and model: bit-identical runs", "status %d/%d", s1, s2);
    check(s3 == DEISSN_OK && memcmp(a + FIRST * PER, c, sizeof c) == 0,
          "samples 9..12 identical in batches of 16 and 4", "status %d, max |diff| %g", s3,
          max_abs_diff(a + FIRST * PER, c, SMALL * PER));

    deissn_sampler_free(smp);
    deissn_normtable_free(table);
    deissn_schedule_free(sched);
    deissn_model_free(m);
}

/* One model shared by threads, each with its own sampler (the header's promise). */
typedef struct {
    deissn_model *model;
    const deissn_schedule *schedule;
    float x[NUMEL];
    int32_t status;
} thread_job;

static void *thread_main(void *arg) {
    thread_job *job = arg;
    deissn_sampler *smp = make_sampler(job->schedule, NULL, 3);
    for (int rep = 0; rep < 5 && job->status == DEISSN_OK; rep++) {
        deissn_fill_noise(99, 0, 3, 16, job->x);
        job->status = deissn_sample(smp, job->model, job->x, SHAPE, 4, NULL);
    }
    deissn_sampler_free(smp);
    return NULL;
}

static void test_threads(void) {
    enum { NT = 4 };
    deissn_model *m = NULL;
    if (load(&m, model_path("gaussian_eps.pt"), NULL,
             DEISSN_DTYPE_FLOAT32)) {
        check(0, "load gaussian_eps.pt", "%s", deissn_last_error());
        return;
    }
    deissn_schedule *sched = make_schedule(10);
    static thread_job jobs[NT + 1];
    pthread_t th[NT];
    for (int i = 0; i <= NT; i++) jobs[i] = (thread_job){m, sched, {0}, DEISSN_OK};
    thread_main(&jobs[NT]); /* the serial reference */
    int started = 0;
    for (; started < NT; started++)
        if (pthread_create(&th[started], NULL, thread_main, &jobs[started]) != 0) break;
    int ok = started == NT && jobs[NT].status == DEISSN_OK;
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        ok = ok && jobs[i].status == DEISSN_OK &&
             memcmp(jobs[i].x, jobs[NT].x, sizeof jobs[i].x) == 0;
    }
    check(ok, "one model shared by 4 threads: same results as serial", "%d threads started, "
          "status %d/%d/%d/%d", started, jobs[0].status, jobs[1].status, jobs[2].status,
          jobs[3].status);
    deissn_schedule_free(sched);
    deissn_model_free(m);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : getenv("DEISSN_TEST_MODELS");
    snprintf(models, sizeof models, "%s", dir ? dir : "tests/models");
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";

    if (!deissn_has_torch()) {
        skip("all TorchScript checks", "library built without libtorch");
    } else {
        struct stat st;
        if (stat(model_path("gaussian_eps.pt"), &st) != 0) {
            fprintf(stderr, "no test models in %s (run tests/models/make_test_models.py)\n",
                    models);
            return 2;
        }
        test_matches_callback();
        test_bad_models(tmp);
        test_harmless_models();
        test_truncated(tmp);
        test_devices();
        test_progress_and_determinism();
        test_threads();
    }
    if (n_skip)
        printf("%d passed, %d failed, %d skipped\n", n_pass, n_fail, n_skip);
    else
        printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
