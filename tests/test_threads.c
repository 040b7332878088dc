/* test_threads.c - what include/deissn.h promises about threads:
 *   - schedules, tables and (thread-safe callback) models are shared by any number of threads,
 *     each with a sampler of its own, and every thread gets, bit for bit, what one thread
 *     alone gets for the same batch;
 *   - reference counts survive threads creating and freeing dependants of shared parents
 *     concurrently, and the last of them to go, whichever thread frees it, destroys them;
 *   - deissn_last_error() is per thread;
 *   - plug-in searches from many threads at once, the first of which fails and is remembered
 *     (lib/backends/plugin.c), give every thread the same answer and message.
 * Threads only record what they see; the checks run on the main thread afterwards. Run it
 * under ThreadSanitizer with `make tsan`. Links the library's objects, to read refcounts. */
#include "maths/schedule.h"
#include "maths/coeffs.h"
#include "tables/normtable.h"
#include "sampling/sampler.h"
#include "backends/model.h"
#include "testlib.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define NTHREADS 8
#define BATCH 3
#define DIM 200
#define NUMEL (BATCH * DIM)
#define ROUNDS 4
#define CHURN 300

static deissn_schedule *g_schedule;
static deissn_normtable *g_table;
static deissn_model *g_model;

/* Batch k of the run: its noise, then `how` (0: deissn_sample, 1: deissn_step by hand). */
static int32_t sample_batch(deissn_sampler *s, uint32_t k, int how, float *x)
{
    int32_t rc = deissn_fill_noise(2024, (uint64_t)k * BATCH, BATCH, DIM, x);
    if (rc) return rc;
    if (how == 0) {
        const int64_t shape[2] = {BATCH, DIM};
        return deissn_sample(s, g_model, x, shape, 2, NULL);
    }
    float out[NUMEL];
    const int64_t shape[2] = {BATCH, DIM};
    deissn_step_info info = DEISSN_STEP_INFO_INIT;
    rc = deissn_sampler_reset(s);
    if (rc == DEISSN_OK) rc = deissn_sampler_next(s, &info);
    while (rc == DEISSN_OK) {
        if (tl_gaussian_eps(g_schedule, x, shape, 2, info.tau, out)) return DEISSN_E_CALLBACK;
        rc = deissn_step(s, x, out, NUMEL, &info);
    }
    return rc == DEISSN_DONE ? DEISSN_OK : rc;
}

/* ---- 1. shared parents, one sampler per thread, bit-identical results -------------------- */

typedef struct {
    uint32_t id;
    int32_t rc[ROUNDS];
    float x[ROUNDS][NUMEL];
} sample_job;

static void *sample_thread(void *arg)
{
    sample_job *job = arg;
    deissn_sampler *s = NULL;
    int32_t rc = deissn_sampler_create(&s, g_schedule, g_table, NULL);
    for (int r = 0; r < ROUNDS; r++) {
        /* Thread i samples batches i, i + 8, ... alternating deissn_sample and deissn_step. */
        job->rc[r] = rc ? rc : sample_batch(s, job->id + NTHREADS * (uint32_t)r, (r + (int)job->id) & 1,
                                            job->x[r]);
    }
    deissn_sampler_free(s);
    return NULL;
}

static void test_shared_sampling(void)
{
    static float want[NTHREADS * ROUNDS][NUMEL];
    static sample_job jobs[NTHREADS];
    deissn_sampler *s = NULL;
    CHECK_STATUS(deissn_sampler_create(&s, g_schedule, g_table, NULL), DEISSN_OK, "sampler");
    for (uint32_t k = 0; k < NTHREADS * ROUNDS; k++)
        CHECK_STATUS(sample_batch(s, k, 0, want[k]), DEISSN_OK, "single-thread reference");
    deissn_sampler_free(s);
    /* The reference is not trivially equal to the noise (the test could not fail otherwise). */
    float noise[NUMEL];
    deissn_fill_noise(2024, 0, BATCH, DIM, noise);
    CHECK(memcmp(noise, want[0], sizeof noise) != 0, "sampling changed x");

    pthread_t th[NTHREADS];
    for (uint32_t i = 0; i < NTHREADS; i++) {
        jobs[i].id = i;
        CHECK(pthread_create(&th[i], NULL, sample_thread, &jobs[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
    for (uint32_t i = 0; i < NTHREADS; i++) {
        for (uint32_t r = 0; r < ROUNDS; r++) {
            CHECK(jobs[i].rc[r] == DEISSN_OK, "thread %u round %u: status %d", i, r,
                  (int)jobs[i].rc[r]);
            CHECK(memcmp(jobs[i].x[r], want[i + NTHREADS * r], sizeof want[0]) == 0,
                  "thread %u round %u: batch %u differs from the single-thread result", i, r,
                  i + NTHREADS * r);
        }
    }
}

/* ---- 2. reference counts under concurrent create/free ------------------------------------ */

typedef struct {
    int failures;
    deissn_sampler *last; /* freed by the thread itself at the very end (part 3) */
} churn_job;

static pthread_barrier_t g_barrier;

static void *churn_thread(void *arg)
{
    churn_job *job = arg;
    for (int i = 0; i < CHURN; i++) {
        deissn_sampler *s = NULL;
        deissn_model *m = NULL;
        deissn_sampler_params p = DEISSN_SAMPLER_PARAMS_INIT;
        p.order = (uint32_t)i % 4;
        if (deissn_sampler_create(&s, g_schedule, i % 2 ? g_table : NULL, &p) != DEISSN_OK)
            job->failures++;
        if (deissn_model_from_callback(&m, tl_gaussian_eps, g_schedule, NULL) != DEISSN_OK)
            job->failures++;
        deissn_sampler_free(s);
        deissn_model_free(m);
    }
    /* Part 3: every thread holds a sampler when main drops its references, then they race to
     * free the last ones. */
    pthread_barrier_wait(&g_barrier); /* main: all samplers exist */
    pthread_barrier_wait(&g_barrier); /* main: its own references are gone */
    deissn_step_coeffs co = DEISSN_STEP_COEFFS_INIT;
    if (deissn_sampler_coeffs(job->last, deissn_sampler_steps(job->last) - 1, &co) != DEISSN_OK ||
        !(co.r[0] > 0))
        job->failures++;
    deissn_sampler_free(job->last);
    return NULL;
}

static void test_refcounts(void)
{
    static churn_job jobs[NTHREADS];
    pthread_t th[NTHREADS];
    CHECK(pthread_barrier_init(&g_barrier, NULL, NTHREADS + 1) == 0, "barrier");
    deissn_schedule *sch = g_schedule;
    deissn_normtable *tab = g_table;
    for (int i = 0; i < NTHREADS; i++) {
        jobs[i].failures = 0;
        jobs[i].last = NULL;
        CHECK_STATUS(deissn_sampler_create(&jobs[i].last, sch, tab, NULL), DEISSN_OK, "sampler");
        CHECK(pthread_create(&th[i], NULL, churn_thread, &jobs[i]) == 0, "pthread_create");
    }
    pthread_barrier_wait(&g_barrier);
    /* Every churned sampler and model is freed: only main and the 8 kept samplers remain. */
    CHECK(__atomic_load_n(&sch->refs, __ATOMIC_SEQ_CST) == 1 + NTHREADS,
          "schedule refs %d after the churn, want %d", sch->refs, 1 + NTHREADS);
    CHECK(__atomic_load_n(&tab->refs, __ATOMIC_SEQ_CST) == 1 + NTHREADS,
          "table refs %d after the churn, want %d", tab->refs, 1 + NTHREADS);
    CHECK(__atomic_load_n(&g_model->refs, __ATOMIC_SEQ_CST) == 1, "model refs %d", g_model->refs);
    /* Drop main's references: the threads' samplers keep the parents alive, and whichever
     * thread frees the last one destroys them (ASan/valgrind see a leak or a double free). */
    deissn_schedule_free(sch);
    deissn_normtable_free(tab);
    g_schedule = NULL;
    g_table = NULL;
    pthread_barrier_wait(&g_barrier);
    for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < NTHREADS; i++)
        CHECK(jobs[i].failures == 0, "thread %d: %d failed calls", i, jobs[i].failures);
    pthread_barrier_destroy(&g_barrier);
}

/* ---- 4. deissn_last_error() is per thread ---------------------------------------------- */

typedef struct {
    int id;
    int32_t rc;
    char before[256]; /* this thread's message before it failed anything */
    char mine[256];   /* right after its own failure */
    char after[256];  /* after every other thread failed too */
} error_job;

static void *error_thread(void *arg)
{
    error_job *job = arg;
    snprintf(job->before, sizeof job->before, "%s", deissn_last_error());
    /* A message unique to this thread: the step index names it. */
    deissn_sampler *s = NULL;
    deissn_schedule *sch = NULL;
    deissn_schedule_create(&sch, NULL);
    deissn_sampler_create(&s, sch, NULL, NULL);
    deissn_step_coeffs co = DEISSN_STEP_COEFFS_INIT;
    job->rc = deissn_sampler_coeffs(s, 7000u + (uint32_t)job->id, &co);
    snprintf(job->mine, sizeof job->mine, "%s", deissn_last_error());
    pthread_barrier_wait(&g_barrier);
    /* every thread has failed now: this one's message must still be its own */
    snprintf(job->after, sizeof job->after, "%s", deissn_last_error());
    deissn_sampler_free(s);
    deissn_schedule_free(sch);
    return NULL;
}

static void test_last_error_per_thread(void)
{
    static error_job jobs[NTHREADS];
    pthread_t th[NTHREADS];
    deissn_sampler_create(NULL, NULL, NULL, NULL); /* main's own error */
    char main_msg[256];
    snprintf(main_msg, sizeof main_msg, "%s", deissn_last_error());
    CHECK(strstr(main_msg, "out is NULL") != NULL, "main's message: '%s'", main_msg);
    CHECK(pthread_barrier_init(&g_barrier, NULL, NTHREADS) == 0, "barrier");
    for (int i = 0; i < NTHREADS; i++) {
        jobs[i].id = i;
        CHECK(pthread_create(&th[i], NULL, error_thread, &jobs[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&g_barrier);
    for (int i = 0; i < NTHREADS; i++) {
        char want[32];
        snprintf(want, sizeof want, "step %d ", 7000 + i);
        CHECK(jobs[i].before[0] == '\0', "thread %d starts with main's message: '%s'", i,
              jobs[i].before);
        CHECK(jobs[i].rc == DEISSN_E_INVALID_ARG, "thread %d: status %d", i, (int)jobs[i].rc);
        CHECK(strstr(jobs[i].mine, want) != NULL, "thread %d: '%s' lacks '%s'", i, jobs[i].mine,
              want);
        CHECK(strcmp(jobs[i].after, jobs[i].mine) == 0,
              "thread %d: its message changed to '%s' when the others failed", i, jobs[i].after);
    }
    CHECK(strcmp(deissn_last_error(), main_msg) == 0, "main's message changed to '%s'",
          deissn_last_error());
}

/* ---- 4. concurrent plug-in searches ----------------------------------------------------- */

typedef struct {
    int32_t has_torch[ROUNDS], rc[ROUNDS];
    char msg[ROUNDS][1024];
} plugin_job;

static void *plugin_thread(void *arg)
{
    plugin_job *job = arg;
    deissn_model_params mp = DEISSN_MODEL_PARAMS_INIT;
    mp.backend = "nosuch_backend"; /* a plug-in that exists nowhere */
    pthread_barrier_wait(&g_barrier);
    for (int r = 0; r < ROUNDS; r++) {
        job->has_torch[r] = deissn_has_torch();
        deissn_model *m = NULL;
        job->rc[r] = deissn_model_load(&m, "model.pt", &mp);
        snprintf(job->msg[r], sizeof job->msg[r], "%s", deissn_last_error());
    }
    return NULL;
}

static void test_plugin_searches(void)
{
    static plugin_job jobs[NTHREADS];
    pthread_t th[NTHREADS];
    CHECK(pthread_barrier_init(&g_barrier, NULL, NTHREADS) == 0, "barrier");
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_create(&th[i], NULL, plugin_thread, &jobs[i]) == 0, "pthread_create");
    for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&g_barrier);
    int32_t has_torch = deissn_has_torch();
    for (int i = 0; i < NTHREADS; i++)
        for (int r = 0; r < ROUNDS; r++) {
            CHECK(jobs[i].has_torch[r] == has_torch, "thread %d round %d: has_torch %d, main %d",
                  i, r, (int)jobs[i].has_torch[r], (int)has_torch);
            CHECK(jobs[i].rc[r] == DEISSN_E_UNSUPPORTED, "thread %d round %d: status %d", i, r,
                  (int)jobs[i].rc[r]);
            CHECK(strstr(jobs[i].msg[r], "libdeissn-nosuch_backend.so") != NULL &&
                  strcmp(jobs[i].msg[r], jobs[0].msg[0]) == 0,
                  "thread %d round %d: '%s', thread 0: '%s'", i, r, jobs[i].msg[r],
                  jobs[0].msg[0]);
        }
}

int main(void)
{
    deissn_schedule_params sp = DEISSN_SCHEDULE_PARAMS_INIT;
    sp.steps = 12;
    CHECK_STATUS(deissn_schedule_create(&g_schedule, &sp), DEISSN_OK, "schedule");
    double tau[4] = {0.0, 0.1, 0.5, 1.0}, r[4] = {0.55, 0.7, 0.79, 0.8};
    CHECK_STATUS(deissn_normtable_create(&g_table, tau, r, 4, NULL), DEISSN_OK, "table");
    deissn_model_params mp = DEISSN_MODEL_PARAMS_INIT;
    mp.time_convention = DEISSN_TIME_TAU;
    CHECK_STATUS(deissn_model_from_callback(&g_model, tl_gaussian_eps, g_schedule, &mp), DEISSN_OK,
                 "model");
    if (!g_schedule || !g_table || !g_model) TEST_SUMMARY();

    test_shared_sampling();
    test_refcounts(); /* frees the schedule and the table */
    deissn_model_free(g_model);
    test_last_error_per_thread();
    test_plugin_searches();
    TEST_SUMMARY();
}
