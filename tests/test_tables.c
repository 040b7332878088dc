/* test_tables.c - normalization tables: the native file format, the reference's .pt files,
 * calibration (exact merging, the analytic Gaussian model, the TorchScript device loop) and
 * corrupt input.
 *
 * Public API only (plus zlib, to craft files with correct CRCs). Run from the repository
 * root. The reference tables are read from $DEISSN_SEED_TABLES (default
 * ../shared/seed-tables) and skipped, by name, where absent; the TorchScript model from
 * $DEISSN_TEST_MODELS (default tests/models). */
#include "deissn.h"
#include "testlib.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#define PI 3.14159265358979323846

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int which;
    which = (which + 1) % 4;
    snprintf(buf[which], sizeof buf[which], "%s/%s", tmpdir, name);
    return buf[which];
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

static int write_bytes(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(p, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static unsigned char *read_bytes(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(n > 0 ? (size_t)n : 1);
    *len = p ? fread(p, 1, (size_t)n, f) : 0;
    fclose(f);
    return p;
}

static deissn_schedule *trailing_schedule(uint32_t steps)
{
    deissn_schedule_params p = DEISSN_SCHEDULE_PARAMS_INIT;
    p.spacing = DEISSN_SPACING_TRAILING;
    p.steps = steps;
    deissn_schedule *s = NULL;
    int32_t rc = deissn_schedule_create(&s, &p);
    CHECK(rc == DEISSN_OK, "schedule: %s", deissn_last_error());
    return s;
}

/* Two tables hold the same knots, facts, metadata and sums, bit for bit. */
static int same_table(const deissn_normtable *a, const deissn_normtable *b)
{
    deissn_normtable_info ia = DEISSN_NORMTABLE_INFO_INIT, ib = DEISSN_NORMTABLE_INFO_INIT;
    memset(&ia, 0, sizeof ia); /* padding, should the struct ever get any */
    memset(&ib, 0, sizeof ib);
    ia.version = ib.version = DEISSN_NORMTABLE_INFO_VERSION;
    if (deissn_normtable_get_info(a, &ia) || deissn_normtable_get_info(b, &ib)) return 0;
    if (memcmp(&ia, &ib, sizeof ia) != 0) return 0; /* the library zeroes any padding */
    if (strcmp(deissn_normtable_metadata(a), deissn_normtable_metadata(b))) return 0;
    for (size_t i = 0; i < ia.n_knots; i++) {
        double ta, ra, tb, rb;
        deissn_normtable_knot(a, i, &ta, &ra);
        deissn_normtable_knot(b, i, &tb, &rb);
        if (memcmp(&ta, &tb, sizeof ta) || memcmp(&ra, &rb, sizeof ra)) return 0;
    }
    if (!ia.has_sums) return 1;
    deissn_calibrator *ca = NULL, *cb = NULL;
    int same = deissn_calibrator_from_table(&ca, a) == DEISSN_OK &&
               deissn_calibrator_from_table(&cb, b) == DEISSN_OK;
    size_t n = ia.n_knots;
    int64_t *sa = calloc(n, 8), *sb = calloc(n, 8);
    uint64_t *na = calloc(n, 8), *nb = calloc(n, 8), sma = 0, smb = 0;
    same = same && deissn_calibrator_get_sums(ca, sa, na, n, &sma) == DEISSN_OK &&
           deissn_calibrator_get_sums(cb, sb, nb, n, &smb) == DEISSN_OK &&
           !memcmp(sa, sb, n * 8) && !memcmp(na, nb, n * 8) && sma == smb;
    free(sa), free(sb), free(na), free(nb);
    deissn_calibrator_free(ca);
    deissn_calibrator_free(cb);
    return same;
}

/* ---- the analytic Gaussian model: data ~ N(0, s^2), s = 0.5 ------------------------------ */

typedef struct {
    const deissn_schedule *schedule;
    int fail_at_t_below; /* > 0: return an error once t drops below this */
} gauss_ctx;

static int gauss_fn(void *user, const float *x, const int64_t *shape, uint32_t ndim, double t,
                    float *out)
{
    const gauss_ctx *g = user;
    if (g->fail_at_t_below > 0 && t < g->fail_at_t_below) return 7;
    size_t n = 1;
    for (uint32_t d = 0; d < ndim; d++) n *= (size_t)shape[d];
    double abar = deissn_schedule_alpha_bar(g->schedule, (t + 1) / 1000.0);
    double sigma2 = 1 - abar, k = sqrt(sigma2) / (abar * 0.25 + sigma2);
    for (size_t i = 0; i < n; i++) out[i] = (float)(k * x[i]);
    return 0;
}

/* Calibrate `batch` samples (from first_sample on) of `dim` values through deissn_sample. */
static int32_t calibrate_batch(deissn_calibrator *cal, deissn_sampler *sp, deissn_model *m,
                               uint64_t first_sample, int64_t batch, int64_t dim)
{
    int64_t shape[2] = {batch, dim};
    float *x = malloc((size_t)(batch * dim) * sizeof *x);
    deissn_fill_noise(42, first_sample, (size_t)batch, (size_t)dim, x);
    deissn_sample_options opt = DEISSN_SAMPLE_OPTIONS_INIT;
    opt.calibrator = cal;
    int32_t rc = deissn_sample(sp, m, x, shape, 2, &opt);
    free(x);
    return rc;
}

/* ---- round trips ------------------------------------------------------------------------- */

static void test_round_trip(void)
{
    deissn_schedule *s = trailing_schedule(6);
    deissn_calibrator *cal = NULL;
    CHECK_STATUS(deissn_calibrator_create(&cal, s), DEISSN_OK, "calibrator_create");
    float eps[5] = {0.5f, -1.25f, 3.0e-8f, 2.0f, -0.0f};
    for (uint32_t i = 0; i < 6; i++) {
        eps[0] += 0.125f;
        CHECK_STATUS(deissn_calibrator_add(cal, i, eps, 5, i == 0 ? 3 : 0), DEISSN_OK, "add");
    }
    const char *meta = "model: gaussian \xce\xb5 (s = 0.5), sha256 0123abcd";
    deissn_normtable *t = NULL, *back = NULL;
    CHECK_STATUS(deissn_calibrator_finish(&t, cal, &(deissn_normtable_params){.version = DEISSN_NORMTABLE_PARAMS_VERSION, .clip = 2, .metadata = meta}), DEISSN_OK, "finish");
    deissn_normtable_info info = DEISSN_NORMTABLE_INFO_INIT;
    CHECK_STATUS(deissn_normtable_get_info(t, &info), DEISSN_OK, "get_info");
    CHECK(info.n_knots == 6 && info.clip == 2 && info.steps == 6 && info.samples == 3 &&
          info.has_sums == 1 && info.fingerprint == deissn_schedule_fingerprint(s),
          "info %zu %u %u %llu %d %08x", info.n_knots, info.clip, info.steps,
          (unsigned long long)info.samples, info.has_sums, info.fingerprint);
    /* r is the mean of the truncated fixed-point values: step 5 (tau 1/6, knot 0 before the
     * clip) saw 0.5 + 6/8, 1.25, 3e-8 (0 after truncation: 3e-8 * 2^24 = 0.503), 2, 0. */
    double r0, r2, tau0, taus[7];
    deissn_normtable_knot(t, 0, &tau0, &r0);
    deissn_normtable_knot(t, 2, NULL, &r2);
    deissn_schedule_times(s, taus, 7);
    CHECK(tau0 == taus[5], "knot 0 is at the last step's tau: %.17g vs %.17g", tau0, taus[5]);
    CHECK(r0 == r2, "the clip copies knot 2 into knots 0 and 1");
    double r5;
    deissn_normtable_knot(t, 5, NULL, &r5); /* step 0: eps[0] = 0.625 */
    CHECK(r5 == (0.625 + 1.25 + 0 + 2 + 0) / 5, "r of step 0 = %.17g", r5);
    CHECK(!strcmp(deissn_normtable_metadata(t), meta), "metadata kept");

    const char *path = tmp_path("cal.dsn");
    CHECK_STATUS(deissn_normtable_save(t, path), DEISSN_OK, "save");
    CHECK_STATUS(deissn_normtable_load(&back, path, NULL), DEISSN_OK, "load native");
    CHECK(back && same_table(t, back), "save/load round trip is bit-exact (sums included)");

    /* Relabel, plain tables, and a CSV. */
    deissn_normtable *relabel = NULL;
    CHECK_STATUS(deissn_normtable_copy(&relabel, back, &(deissn_normtable_params){.version = DEISSN_NORMTABLE_PARAMS_VERSION, .clip = 0, .metadata = ""}), DEISSN_OK, "relabel");
    CHECK(relabel && deissn_normtable_metadata(relabel)[0] == '\0', "metadata removed");
    deissn_normtable_free(relabel);
    CHECK_STATUS(deissn_normtable_copy(&relabel, back, &(deissn_normtable_params){.version = DEISSN_NORMTABLE_PARAMS_VERSION, .clip = 0, .metadata = "\xc0\xaf"}),
                 DEISSN_E_INVALID_ARG, "overlong UTF-8 metadata");
    CHECK(relabel == NULL, "*out NULL on error");

    double tau[3] = {0, 0.5, 1}, r[3] = {-1, 0.7, 0.8};
    deissn_normtable_params p = DEISSN_NORMTABLE_PARAMS_INIT;
    deissn_normtable *plain = NULL, *plain_back = NULL;
    CHECK_STATUS(deissn_normtable_create(&plain, tau, r, 3, &p), DEISSN_E_INVALID_ARG,
                 "negative r without a clip");
    p.clip = 1;
    p.fingerprint = 0xdeadbeef;
    p.metadata = "plain";
    CHECK_STATUS(deissn_normtable_create(&plain, tau, r, 3, &p), DEISSN_OK, "create_ex");
    CHECK(deissn_normtable_eval(plain, 0) == 0.7, "clip applied by create_ex");
    CHECK(deissn_normtable_fingerprint(plain) == 0xdeadbeef, "fingerprint set by create_ex");
    CHECK_STATUS(deissn_normtable_save(plain, tmp_path("plain.dsn")), DEISSN_OK, "save plain");
    CHECK_STATUS(deissn_normtable_load(&plain_back, tmp_path("plain.dsn"), NULL), DEISSN_OK,
                 "load plain");
    CHECK(plain_back && same_table(plain, plain_back), "plain round trip is bit-exact");
    deissn_calibrator *none = NULL;
    CHECK_STATUS(deissn_calibrator_from_table(&none, plain), DEISSN_E_INVALID_ARG,
                 "a plain table has no sums to merge");

    CHECK_STATUS(deissn_normtable_export_csv(t, tmp_path("cal.csv")), DEISSN_OK, "csv");
    size_t len = 0;
    unsigned char *csv = read_bytes(tmp_path("cal.csv"), &len);
    CHECK(csv && len > 16 && !memcmp(csv, "tau,r,sum,count\n", 16), "csv header");
    int lines = 0;
    for (size_t i = 0; csv && i < len; i++) lines += csv[i] == '\n';
    CHECK(lines == 7, "csv has a header and 6 rows (%d lines)", lines);
    free(csv);

    CHECK_STATUS(deissn_normtable_save(t, tmp_path("no/such/dir/x.dsn")), DEISSN_E_IO,
                 "save into a missing directory");
    CHECK(strstr(deissn_last_error(), "no/such/dir") != NULL, "message names the file");

    deissn_normtable_free(relabel);
    deissn_normtable_free(plain);
    deissn_normtable_free(plain_back);
    deissn_normtable_free(back);
    deissn_normtable_free(t);
    deissn_calibrator_free(cal);
    deissn_schedule_free(s);
}

/* ---- the reference's tables -------------------------------------------------------------- */

/* Expected values from the reference's own recipe, computed independently with torch:
 *   /usr/bin/python3 -c "import torch; d = torch.load('../shared/seed-tables/
 *     cifar10_Ls_score_abs.pt', map_location='cpu'); r = (d['score_abs'].double() *
 *     d['Ls'].double()).flip(0); r[:5] = r[5]; print([repr(r[i].item()) for i in ...])"
 * (clip 1 and lsunchurch_Ls_score_abs.pt for LSUN Church). */
typedef struct {
    const char *file;
    uint32_t clip;
    int index[7];
    double r[7];
    int mid_index[3]; /* r at the middle of knots i and i+1: (r[i] + r[i+1]) / 2 */
    double mid[3];
} ref_case;

static const ref_case ref_cases[] = {
    {"cifar10_Ls_score_abs.pt", 5, {0, 1, 5, 6, 10, 500, 999},
     {0.647062431688461, 0.647062431688461, 0.647062431688461, 0.6558959064057035,
      0.6809159215561067, 0.7970221453319439, 0.7981004380276531},
     {2, 5, 700}, {0.647062431688461, 0.6514791690470823, 0.798853004614525}},
    {"lsunchurch_Ls_score_abs.pt", 1, {0, 1, 2, 10, 500, 998, 999},
     {0.6182672543212675, 0.6182672543212675, 0.6381555748303214,
      0.705982739398241, 0.7962869652062565, 0.7975190909328234, 0.797606206299811},
     {2, 1, 700}, {0.6462697427325104, 0.6282114145757944, 0.7977519767249159}},
};

static void test_reference_tables(void)
{
    const char *dir = env_or("DEISSN_SEED_TABLES", "../shared/seed-tables");
    deissn_schedule *linear = trailing_schedule(10);
    for (size_t c = 0; c < sizeof ref_cases / sizeof ref_cases[0]; c++) {
        const ref_case *rc = &ref_cases[c];
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, rc->file);
        if (access(path, R_OK) != 0) {
            SKIP(rc->file, "%s is not readable (set DEISSN_SEED_TABLES)", path);
            continue;
        }
        deissn_normtable *t = NULL, *back = NULL;
        CHECK_STATUS(deissn_normtable_load(&t, path, &(deissn_normtable_params){.version = DEISSN_NORMTABLE_PARAMS_VERSION, .clip = rc->clip}), DEISSN_OK, rc->file);
        if (!t) continue;
        deissn_normtable_info info = DEISSN_NORMTABLE_INFO_INIT;
        deissn_normtable_get_info(t, &info);
        CHECK(info.n_knots == 1000 && info.clip == rc->clip && info.steps == 1000 &&
              info.samples == 0 && !info.has_sums &&
              info.fingerprint == deissn_schedule_fingerprint(linear),
              "%s: info", rc->file);
        for (int i = 0; i < 7; i++) {
            double tau, r;
            deissn_normtable_knot(t, (size_t)rc->index[i], &tau, &r);
            CHECK(r == rc->r[i], "%s: knot %d: r %.17g, want %.17g", rc->file, rc->index[i], r,
                  rc->r[i]);
            CHECK(tau == rc->index[i] / 999.0, "%s: knot %d at tau j/999", rc->file,
                  rc->index[i]);
            CHECK(deissn_normtable_eval(t, rc->index[i] / 999.0) == rc->r[i],
                  "%s: eval at knot %d", rc->file, rc->index[i]);
        }
        for (int i = 0; i < 3; i++) {
            double got = deissn_normtable_eval(t, (rc->mid_index[i] + 0.5) / 999.0);
            CHECK(tl_close(got, rc->mid[i], 1e-15, 0), "%s: eval between knots %d and %d: "
                  "%.17g, want %.17g", rc->file, rc->mid_index[i], rc->mid_index[i] + 1, got,
                  rc->mid[i]);
        }
        CHECK(deissn_normtable_eval(t, 0) == deissn_normtable_eval(t, rc->clip / 999.0),
              "%s: clipped knots hold r[clip]", rc->file);
        CHECK_STATUS(deissn_normtable_save(t, tmp_path("ref.dsn")), DEISSN_OK, "save reference");
        CHECK_STATUS(deissn_normtable_load(&back, tmp_path("ref.dsn"), NULL), DEISSN_OK,
                     "load saved reference");
        CHECK(back && same_table(t, back), "%s: native copy is bit-exact", rc->file);
        deissn_normtable_free(back);
        deissn_normtable_free(t);
    }
    deissn_schedule_free(linear);
}

/* ---- calibration: merging, errors, the Gaussian ------------------------------------------ */

static void test_merge_exact(void)
{
    deissn_schedule *s = trailing_schedule(25);
    gauss_ctx g = {s, 0};
    deissn_model *m = NULL;
    deissn_sampler *sp = NULL;
    deissn_sampler_params pp = DEISSN_SAMPLER_PARAMS_INIT;
    pp.order = 2;
    deissn_model_from_callback(&m, gauss_fn, &g, NULL);
    deissn_sampler_create(&sp, s, NULL, &pp);
    deissn_calibrator *full = NULL, *a = NULL, *b = NULL;
    deissn_calibrator_create(&full, s);
    deissn_calibrator_create(&a, s);
    deissn_calibrator_create(&b, s);

    CHECK_STATUS(calibrate_batch(full, sp, m, 0, 10, 33), DEISSN_OK, "full batch");
    CHECK_STATUS(calibrate_batch(a, sp, m, 0, 3, 33), DEISSN_OK, "first part");
    CHECK_STATUS(calibrate_batch(b, sp, m, 3, 7, 33), DEISSN_OK, "second part");
    CHECK_STATUS(deissn_calibrator_merge(a, b), DEISSN_OK, "merge");
    deissn_normtable *tf = NULL, *tm = NULL, *tb = NULL, *back = NULL;
    deissn_calibrator_finish(&tf, full, &(deissn_normtable_params){.version = DEISSN_NORMTABLE_PARAMS_VERSION, .clip = 1, .metadata = "m"});
    deissn_calibrator_finish(&tm, a, &(deissn_normtable_params){.version = DEISSN_NORMTABLE_PARAMS_VERSION, .clip = 1, .metadata = "m"});
    CHECK(tf && tm && same_table(tf, tm), "3 + 7 samples merged = 10 samples, bit for bit");
    deissn_normtable_info info = DEISSN_NORMTABLE_INFO_INIT;
    deissn_normtable_get_info(tm, &info);
    CHECK(info.samples == 10 && info.steps == 25, "samples %llu", (unsigned long long)info.samples);

    /* The same through files: part b saved and loaded, then merged into a fresh part a. */
    deissn_calibrator *a2 = NULL, *bf = NULL;
    deissn_calibrator_create(&a2, s);
    calibrate_batch(a2, sp, m, 0, 3, 33);
    deissn_calibrator_finish(&tb, b, NULL);
    deissn_normtable_save(tb, tmp_path("b.dsn"));
    CHECK_STATUS(deissn_normtable_load(&back, tmp_path("b.dsn"), NULL), DEISSN_OK, "load part");
    CHECK_STATUS(deissn_calibrator_from_table(&bf, back), DEISSN_OK, "from_table");
    CHECK_STATUS(deissn_calibrator_merge(a2, bf), DEISSN_OK, "merge from file");
    deissn_normtable_free(tm);
    tm = NULL;
    deissn_calibrator_finish(&tm, a2, &(deissn_normtable_params){.version = DEISSN_NORMTABLE_PARAMS_VERSION, .clip = 1, .metadata = "m"});
    CHECK(tm && same_table(tf, tm), "merging through a file is bit-exact too");

    /* Raw sums, as a distributed reduction would use them. */
    int64_t sums[25];
    uint64_t counts[25], samples;
    deissn_calibrator *raw = NULL;
    deissn_calibrator_create(&raw, s);
    CHECK_STATUS(deissn_calibrator_get_sums(full, sums, counts, 25, &samples), DEISSN_OK, "get");
    CHECK_STATUS(deissn_calibrator_get_sums(full, sums, counts, 24, &samples), DEISSN_E_SIZE,
                 "get: small capacity");
    CHECK_STATUS(deissn_calibrator_add_sums(raw, sums, counts, 25, samples), DEISSN_OK, "add_sums");
    deissn_normtable_free(tm);
    tm = NULL;
    deissn_calibrator_finish(&tm, raw, &(deissn_normtable_params){.version = DEISSN_NORMTABLE_PARAMS_VERSION, .clip = 1, .metadata = "m"});
    CHECK(tm && same_table(tf, tm), "raw sums give the same table");

    /* Everything that must fail, and leave the calibrator as it was. */
    deissn_schedule *other = trailing_schedule(24);
    deissn_calibrator *wrong = NULL;
    deissn_sampler *sp_other = NULL;
    deissn_calibrator_create(&wrong, other);
    deissn_sampler_create(&sp_other, other, NULL, NULL);
    CHECK_STATUS(deissn_calibrator_merge(full, wrong), DEISSN_E_MISMATCH, "merge other steps");
    CHECK_STATUS(calibrate_batch(full, sp_other, m, 0, 2, 4), DEISSN_E_MISMATCH,
                 "sampler with other steps");
    CHECK_STATUS(deissn_calibrator_merge(full, full), DEISSN_E_INVALID_ARG, "merge into itself");
    g.fail_at_t_below = 500;
    CHECK_STATUS(calibrate_batch(full, sp, m, 0, 2, 4), DEISSN_E_CALLBACK, "failing model");
    g.fail_at_t_below = 0;
    float bad[3] = {1, NAN, 2};
    CHECK_STATUS(deissn_calibrator_add(full, 3, bad, 3, 1), DEISSN_E_NONFINITE, "NaN eps");
    CHECK(strstr(deissn_last_error(), "element 1 of step 3") != NULL, "names step and element: %s",
          deissn_last_error());
    bad[1] = 1e12f;
    CHECK_STATUS(deissn_calibrator_add(full, 3, bad, 3, 1), DEISSN_E_SIZE, "huge eps");
    CHECK_STATUS(deissn_calibrator_add(full, 25, bad, 1, 1), DEISSN_E_INVALID_ARG, "step >= N");
    int64_t big[25];
    for (int i = 0; i < 25; i++) big[i] = INT64_MAX - 5;
    CHECK_STATUS(deissn_calibrator_add_sums(full, big, counts, 25, 0), DEISSN_E_SIZE,
                 "sum overflow");
    CHECK(strstr(deissn_last_error(), "step 0") != NULL, "names the step: %s",
          deissn_last_error());
    big[0] = -1;
    CHECK_STATUS(deissn_calibrator_add_sums(full, big, counts, 25, 0), DEISSN_E_INVALID_ARG,
                 "negative sum");
    int64_t after[25];
    uint64_t after_counts[25], after_samples;
    deissn_calibrator_get_sums(full, after, after_counts, 25, &after_samples);
    CHECK(!memcmp(after, sums, sizeof sums) && !memcmp(after_counts, counts, sizeof counts) &&
          after_samples == samples, "failed calls changed nothing");

    deissn_normtable *none = NULL;
    CHECK_STATUS(deissn_calibrator_finish(&none, wrong, NULL), DEISSN_E_STATE,
                 "finish with no values");
    CHECK_STATUS(deissn_calibrator_finish(&none, full, &(deissn_normtable_params){.version = DEISSN_NORMTABLE_PARAMS_VERSION, .clip = 25, .metadata = NULL}), DEISSN_E_INVALID_ARG,
                 "clip >= steps");

    deissn_normtable_free(tf);
    deissn_normtable_free(tm);
    deissn_normtable_free(tb);
    deissn_normtable_free(back);
    deissn_calibrator_free(full);
    deissn_calibrator_free(a);
    deissn_calibrator_free(b);
    deissn_calibrator_free(a2);
    deissn_calibrator_free(bf);
    deissn_calibrator_free(raw);
    deissn_calibrator_free(wrong);
    deissn_sampler_free(sp);
    deissn_sampler_free(sp_other);
    deissn_model_free(m);
    deissn_schedule_free(s);
    deissn_schedule_free(other);
}

/* Along the exact probability-flow ODE of data ~ N(0, s^2), x(tau) ~ N(0, abar s^2 + sigma^2)
 * and eps = sigma x / (abar s^2 + sigma^2) ~ N(0, v), v = sigma^2 / (abar s^2 + sigma^2): so
 * r(tau) = E|eps| = sqrt(2 v / pi). With M independent values per step, the standard error
 * of the mean of |eps| is sqrt(v (1 - 2/pi) / M); 1000 DDIM steps follow the ODE closely. */
static void test_gaussian_calibration(void)
{
    enum { STEPS = 1000, BATCH = 512, DIM = 256 };
    deissn_schedule *s = trailing_schedule(STEPS);
    gauss_ctx g = {s, 0};
    deissn_model *m = NULL;
    deissn_sampler *sp = NULL;
    deissn_sampler_params pp = DEISSN_SAMPLER_PARAMS_INIT;
    pp.order = 0;
    deissn_model_from_callback(&m, gauss_fn, &g, NULL);
    deissn_sampler_create(&sp, s, NULL, &pp);
    deissn_calibrator *cal = NULL;
    deissn_calibrator_create(&cal, s);
    CHECK_STATUS(calibrate_batch(cal, sp, m, 0, BATCH, DIM), DEISSN_OK, "gaussian calibration");
    deissn_normtable *t = NULL;
    CHECK_STATUS(deissn_calibrator_finish(&t, cal, NULL), DEISSN_OK, "finish");
    double worst = 0;
    size_t worst_at = 0;
    for (size_t k = 0; t && k < STEPS; k++) {
        double tau, r;
        deissn_normtable_knot(t, k, &tau, &r);
        double abar = deissn_schedule_alpha_bar(s, tau), sigma2 = 1 - abar;
        double v = sigma2 / (abar * 0.25 + sigma2);
        double z = fabs(r - sqrt(2 * v / PI)) / sqrt(v * (1 - 2 / PI) / (BATCH * DIM));
        if (z > worst) worst = z, worst_at = k;
    }
    printf("# gaussian calibration: worst |r - sqrt(2v/pi)| = %.2f standard errors (knot %zu)\n",
           worst, worst_at);
    /* 1000 correlated knots: allow 5 standard errors. */
    CHECK(worst < 5, "r(tau) off by %.2f standard errors at knot %zu", worst, worst_at);
    deissn_normtable_free(t);
    deissn_calibrator_free(cal);
    deissn_sampler_free(sp);
    deissn_model_free(m);
    deissn_schedule_free(s);
}

/* ---- the TorchScript device loop --------------------------------------------------------- */

/* gaussian_eps.pt's arithmetic exactly: t arrives as float32, alpha_bar is interpolated
 * through float32 knots in float64, and the output is rounded once to float32. */
static int torch_like_fn(void *user, const float *x, const int64_t *shape, uint32_t ndim,
                         double t, float *out)
{
    const gauss_ctx *g = user;
    size_t n = 1;
    for (uint32_t d = 0; d < ndim; d++) n *= (size_t)shape[d];
    double pos = ((double)(float)t + 1.0) / 1000.0 * 1000.0;
    pos = pos < 0 ? 0 : pos > 1000 ? 1000 : pos;
    double k = floor(pos) > 999 ? 999 : floor(pos), frac = pos - k;
    double a0 = (float)deissn_schedule_alpha_bar(g->schedule, k / 1000.0);
    double a1 = (float)deissn_schedule_alpha_bar(g->schedule, (k + 1) / 1000.0);
    double abar = a0 * (1.0 - frac) + a1 * frac, sigma2 = 1.0 - abar, sigma = sqrt(sigma2);
    for (size_t i = 0; i < n; i++) out[i] = (float)(sigma * (double)x[i] / (abar * 0.25 + sigma2));
    return 0;
}

static void test_torch_calibration(void)
{
    if (!deissn_has_torch()) {
        SKIP("torch calibration", "this build has no libtorch");
        return;
    }
    char path[600];
    snprintf(path, sizeof path, "%s/gaussian_eps.pt", env_or("DEISSN_TEST_MODELS", "tests/models"));
    deissn_model *tm = NULL, *cm = NULL;
    if (deissn_model_load(&tm, path, NULL) != DEISSN_OK) {
        SKIP("torch calibration", "%s: %s", path, deissn_last_error());
        return;
    }
    enum { STEPS = 50 };
    deissn_schedule *s = trailing_schedule(STEPS);
    gauss_ctx g = {s, 0};
    deissn_model_from_callback(&cm, torch_like_fn, &g, NULL);
    deissn_sampler *sp = NULL;
    deissn_sampler_create(&sp, s, NULL, NULL);
    deissn_calibrator *dev = NULL, *host = NULL;
    deissn_calibrator_create(&dev, s);
    deissn_calibrator_create(&host, s);
    CHECK_STATUS(calibrate_batch(dev, sp, tm, 0, 6, 200), DEISSN_OK, "torch loop");
    CHECK_STATUS(calibrate_batch(host, sp, cm, 0, 6, 200), DEISSN_OK, "host loop");
    int64_t sd[STEPS], sh[STEPS];
    uint64_t cd[STEPS], ch[STEPS], nd, nh;
    deissn_calibrator_get_sums(dev, sd, cd, STEPS, &nd);
    deissn_calibrator_get_sums(host, sh, ch, STEPS, &nh);
    CHECK(!memcmp(cd, ch, sizeof cd) && nd == nh && nd == 6, "counts and samples agree");
    /* Step 0 sees the same x and the same eps in both loops, so the sums must be equal to
     * the bit; after it the loops round the update differently (float32 in libtorch, one
     * fused double expression on the host), so the states drift apart by ~1e-7. */
    CHECK(sd[0] == sh[0], "step 0: device sum %lld, host sum %lld", (long long)sd[0],
          (long long)sh[0]);
    double worst = 0;
    for (int i = 0; i < STEPS; i++) {
        double rel = fabs((double)(sd[i] - sh[i])) / (double)sh[i];
        if (rel > worst) worst = rel;
    }
    printf("# torch calibration: step 0 sums equal; worst relative difference %.2g\n", worst);
    CHECK(worst < 1e-4, "device and host sums differ by %.2g", worst);
    deissn_calibrator_free(dev);
    deissn_calibrator_free(host);
    deissn_sampler_free(sp);
    deissn_model_free(tm);
    deissn_model_free(cm);
    deissn_schedule_free(s);
}

/* ---- corrupt input ----------------------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_double(unsigned char *p, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    put64(p, v);
}

/* Write a table file following docs/table-format.md, CRCs right, from a raw payload. */
static void craft(const char *path, uint32_t version, uint32_t flags, const unsigned char *raw,
                  size_t raw_len)
{
    uLongf comp_len = compressBound(raw_len);
    unsigned char *file = malloc(44 + comp_len);
    compress2(file + 44, &comp_len, raw, raw_len, 9);
    memcpy(file, "\x89" "DSNTBL\n", 8);
    put32(file + 8, version);
    put32(file + 12, flags);
    put64(file + 16, comp_len);
    put64(file + 24, raw_len);
    put32(file + 32, (uint32_t)crc32(0, raw, (uInt)raw_len));
    put32(file + 36, (uint32_t)crc32(0, file + 44, (uInt)comp_len));
    put32(file + 40, (uint32_t)crc32(0, file, 40));
    write_bytes(path, file, 44 + comp_len);
    free(file);
}

/* A payload of n knots (tau = i/(n-1), r = 0.5 + i) with sums consistent with r. */
static size_t payload(unsigned char *raw, uint64_t n_field, size_t n, int sums,
                      const char *meta)
{
    size_t m = strlen(meta), p = 32;
    put64(raw, n_field);
    put32(raw + 8, 0);
    put32(raw + 12, 0x1234);
    put64(raw + 16, 4);
    put32(raw + 24, (uint32_t)n);
    put32(raw + 28, (uint32_t)m);
    for (size_t i = 0; i < n; i++, p += 8) put_double(raw + p, (double)i / (double)(n - 1));
    for (size_t i = 0; i < n; i++, p += 8) put_double(raw + p, 0.5 + (double)i);
    if (sums) {
        for (size_t i = 0; i < n; i++, p += 8) put64(raw + p, (uint64_t)((1 + 2 * i) << 23) * 4);
        for (size_t i = 0; i < n; i++, p += 8) put64(raw + p, 4);
    }
    memcpy(raw + p, meta, m);
    return p + m;
}

/* Loading `path` fails with `want`, a message that names the file, and no table. */
static void expect_load_error(const char *path, int32_t want, const char *what,
                              const char *message_part)
{
    deissn_normtable *t = (deissn_normtable *)&t; /* must be overwritten with NULL */
    int32_t rc = deissn_normtable_load(&t, path, NULL);
    CHECK(rc == want && t == NULL && strstr(deissn_last_error(), path) != NULL &&
          (!message_part || strstr(deissn_last_error(), message_part) != NULL),
          "%s: status %d (want %d), message: %s", what, (int)rc, (int)want, deissn_last_error());
    if (rc == DEISSN_OK) deissn_normtable_free(t);
}

/* Absurd sizes must be refused before any allocation: in a child whose address space is
 * capped 64 MiB above what it uses now, every load must still say DEISSN_E_FORMAT (an
 * allocation attempt would say DEISSN_E_NOMEM). */
static void absurd_sizes_under_cap(const char *const *paths, int n)
{
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "vgpreload")) {
        SKIP("address-space cap", "running under valgrind");
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        long pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        if (!f || fscanf(f, "%ld", &pages) != 1) _exit(3);
        fclose(f);
        rlim_t cap = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)64 << 20);
        struct rlimit rl = {cap, cap};
        if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(3);
        for (int i = 0; i < n; i++) {
            deissn_normtable *t = NULL;
            if (deissn_normtable_load(&t, paths[i], NULL) != DEISSN_E_FORMAT) _exit(1);
        }
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "absurd sizes under a 64 MiB cap: child status %d", status);
}

static void test_corrupt(void)
{
    /* A small valid file to damage. */
    double tau[4] = {0, 0.25, 0.5, 1}, r[4] = {0.5, 0.6, 0.7, 0.8};
    deissn_normtable_params p = DEISSN_NORMTABLE_PARAMS_INIT;
    p.metadata = "tiny";
    deissn_normtable *t = NULL;
    deissn_normtable_create(&t, tau, r, 4, &p);
    const char *good = tmp_path("good.dsn"), *bad = tmp_path("bad.dsn");
    deissn_normtable_save(t, good);
    deissn_normtable_free(t);
    size_t len = 0;
    unsigned char *file = read_bytes(good, &len);
    CHECK(file && len > 44, "small file written (%zu bytes)", len);
    if (!file) return;

    int ok = 1;
    for (size_t cut = 0; cut < len; cut++) {
        deissn_normtable *x = NULL;
        write_bytes(bad, file, cut);
        int32_t rc = deissn_normtable_load(&x, bad, NULL);
        if (rc != DEISSN_E_FORMAT || x || !strstr(deissn_last_error(), bad)) {
            ok = 0;
            printf("FAIL truncated to %zu bytes: %d %s\n", cut, (int)rc, deissn_last_error());
            deissn_normtable_free(x);
        }
    }
    CHECK(ok, "every truncation of a %zu-byte file is refused", len);

    ok = 1;
    for (size_t i = 0; i < len; i++) {
        deissn_normtable *x = NULL;
        file[i] ^= (unsigned char)(1u << (i % 8));
        write_bytes(bad, file, len);
        file[i] ^= (unsigned char)(1u << (i % 8));
        int32_t rc = deissn_normtable_load(&x, bad, NULL);
        if (rc != DEISSN_E_FORMAT || x) {
            ok = 0;
            printf("FAIL bit %zu of byte %zu flipped: %d %s\n", i % 8, i, (int)rc,
                   deissn_last_error());
            deissn_normtable_free(x);
        }
    }
    CHECK(ok, "every flipped bit is caught");

    memcpy(file + 1, "XSN", 3);
    write_bytes(bad, file, len);
    expect_load_error(bad, DEISSN_E_FORMAT, "wrong magic", "89 58 53 4e");
    memcpy(file + 1, "DSN", 3);
    unsigned char trail[4096];
    memcpy(trail, file, len);
    trail[len] = 0;
    write_bytes(bad, trail, len + 1);
    expect_load_error(bad, DEISSN_E_FORMAT, "trailing byte", "trailing");
    write_bytes(bad, "PK\003\004garbage", 11);
    expect_load_error(bad, DEISSN_E_FORMAT, "a broken zip", NULL);
    write_bytes(bad, "", 0);
    expect_load_error(bad, DEISSN_E_FORMAT, "empty file", "empty");
    expect_load_error(tmp_path("missing.dsn"), DEISSN_E_IO, "missing file", NULL);

    /* Crafted files, CRCs correct: only the checks on sizes and values can catch them. */
    static unsigned char raw[1 << 16];
    size_t n = payload(raw, 4, 4, 1, "ok");
    craft(bad, 1, 1, raw, n);
    deissn_normtable *x = NULL;
    CHECK_STATUS(deissn_normtable_load(&x, bad, NULL), DEISSN_OK, "a crafted valid file");
    deissn_normtable_info info = DEISSN_NORMTABLE_INFO_INIT;
    deissn_normtable_get_info(x, &info);
    CHECK(x && info.has_sums && info.fingerprint == 0x1234 && info.samples == 4 &&
          deissn_normtable_eval(x, 1) == 3.5, "crafted file read as written");
    deissn_normtable_free(x);

    craft(bad, 2, 1, raw, n);
    expect_load_error(bad, DEISSN_E_FORMAT, "future version", "newer");
    craft(bad, 1, 9, raw, n);
    expect_load_error(bad, DEISSN_E_FORMAT, "unknown flag 8", "0x00000009");
    craft(bad, 1, 5, raw, n);
    expect_load_error(bad, DEISSN_E_FORMAT, "FLAG_HAS_WEIGHTS without FLAG_HAS_PLANS", "flags");
    craft(bad, 1, 0, raw, n);
    expect_load_error(bad, DEISSN_E_FORMAT, "sums present, flag absent", "cannot hold");

    const char *absurd[4] = {tmp_path("absurd0.dsn"), tmp_path("absurd1.dsn"),
                             tmp_path("absurd2.dsn"), tmp_path("absurd3.dsn")};
    n = payload(raw, (uint64_t)1 << 40, 4, 1, "");
    craft(absurd[0], 1, 1, raw, n);
    expect_load_error(absurd[0], DEISSN_E_FORMAT, "2^40 knots", "knots");
    n = payload(raw, 1000000, 4, 1, "");
    craft(absurd[1], 1, 1, raw, n);
    expect_load_error(absurd[1], DEISSN_E_FORMAT, "a million knots in a small payload",
                      "cannot hold");
    /* Header lengths: an uncompressed size of 2^62, then one of 30 MB from 60 bytes. */
    unsigned char *h = read_bytes(good, &len);
    put64(h + 24, (uint64_t)1 << 62);
    put32(h + 40, (uint32_t)crc32(0, h, 40));
    write_bytes(absurd[2], h, len);
    expect_load_error(absurd[2], DEISSN_E_FORMAT, "2^62-byte payload", "impossible");
    put64(h + 24, 30u << 20);
    put32(h + 40, (uint32_t)crc32(0, h, 40));
    write_bytes(absurd[3], h, len);
    expect_load_error(absurd[3], DEISSN_E_FORMAT, "30 MB from a few bytes", "impossible");
    free(h);
    absurd_sizes_under_cap(absurd, 4);

    /* Values. */
    n = payload(raw, 4, 4, 0, "");
    put_double(raw + 32 + 32 + 8, NAN);
    craft(bad, 1, 0, raw, n);
    expect_load_error(bad, DEISSN_E_FORMAT, "NaN r", "knot 1");
    put_double(raw + 32 + 32 + 8, -0.25);
    craft(bad, 1, 0, raw, n);
    expect_load_error(bad, DEISSN_E_FORMAT, "negative r", "not positive");
    n = payload(raw, 4, 4, 0, "");
    put_double(raw + 32 + 16, 0.1);
    craft(bad, 1, 0, raw, n);
    expect_load_error(bad, DEISSN_E_FORMAT, "unsorted tau", "increasing");
    n = payload(raw, 4, 4, 1, "");
    put64(raw + 32 + 64 + 8, 12345);
    craft(bad, 1, 1, raw, n);
    expect_load_error(bad, DEISSN_E_FORMAT, "r that its sums contradict", "calibration sum");
    n = payload(raw, 4, 4, 1, "");
    put64(raw + 32 + 96, 0);
    craft(bad, 1, 1, raw, n);
    expect_load_error(bad, DEISSN_E_FORMAT, "a zero count", "count is 0");
    n = payload(raw, 4, 4, 0, "bad \xff utf-8");
    craft(bad, 1, 0, raw, n);
    expect_load_error(bad, DEISSN_E_FORMAT, "metadata not UTF-8", "UTF-8");
    n = payload(raw, 4, 4, 0, "");
    put32(raw + 8, 4);
    craft(bad, 1, 0, raw, n);
    expect_load_error(bad, DEISSN_E_FORMAT, "clip >= knots", "clip");
    n = payload(raw, 1, 1, 0, "");
    craft(bad, 1, 0, raw, n);
    expect_load_error(bad, DEISSN_E_FORMAT, "a single knot", "knots");
    free(file);
}

/* Tuned plans: kept by copies, saved and loaded bit for bit, refused when invalid, in a file
 * or from a caller; a table without plans still reads as before. */
static deissn_plan make_plan(uint32_t nfe, int32_t method)
{
    deissn_plan p = DEISSN_PLAN_INIT;
    p.nfe = nfe;
    p.method = method;
    p.order = 2;
    p.corrector = method == DEISSN_METHOD_DATA;
    p.uses_table = method == DEISSN_METHOD_EPS;
    p.samples = 256;
    p.tau_end = 1e-3;
    for (uint32_t k = 0; k < nfe; k++) p.taus[k] = 1.0 - 0.99 * k / nfe;
    for (uint32_t k = 0; method == DEISSN_METHOD_LEARNED && k < nfe; k++) /* x, k + 1 eps */
        for (uint32_t j = 0; j < DEISSN_PLAN_WEIGHTS && j <= k + 1; j++)
            p.weights[k][j] = 0.9 - 0.1 * j + 1e-3 * k;
    if (method == DEISSN_METHOD_LEARNED) p.corrector = 0;
    p.error = 0.05 + 0.001 * nfe;
    p.error_low = p.error * 0.9;
    p.error_high = p.error * 1.1;
    p.best_error = p.error * 1.3;
    return p;
}

static void test_plans(const char *dir)
{
    const double tau[] = {0.0, 0.5, 1.0}, r[] = {0.5, 0.7, 0.8};
    deissn_normtable *t = NULL, *tp = NULL, *back = NULL, *none = NULL;
    CHECK_STATUS(deissn_normtable_create(&t, tau, r, 3, NULL), DEISSN_OK, "plain table");
    CHECK(deissn_normtable_plan_count(t) == 0, "a new table has no plans");
    /* One of each method; the learned ones carry weights (the longest, all 64 rows). */
    deissn_plan plans[5] = {make_plan(10, DEISSN_METHOD_DATA), make_plan(5, DEISSN_METHOD_EPS),
                            make_plan(DEISSN_PLAN_MAX_NFE - 1, DEISSN_METHOD_DATA),
                            make_plan(7, DEISSN_METHOD_LEARNED),
                            make_plan(DEISSN_PLAN_MAX_NFE, DEISSN_METHOD_LEARNED)};
    deissn_normtable_params p = DEISSN_NORMTABLE_PARAMS_INIT;
    p.plans = plans;
    p.n_plans = 5;
    CHECK_STATUS(deissn_normtable_copy(&tp, t, &p), DEISSN_OK, "a copy with plans");
    CHECK(deissn_normtable_plan_count(tp) == 5, "five plans");
    deissn_plan learned = DEISSN_PLAN_INIT;
    CHECK_STATUS(deissn_normtable_plan(tp, 1, &learned), DEISSN_OK, "plan 1");
    CHECK(learned.nfe == 7 && !memcmp(learned.weights, plans[3].weights, sizeof learned.weights),
          "a learned plan keeps its weights");
    deissn_plan got = DEISSN_PLAN_INIT;
    CHECK_STATUS(deissn_normtable_plan(tp, 0, &got), DEISSN_OK, "plan 0");
    CHECK(got.nfe == 5 && !memcmp(got.taus, plans[1].taus, sizeof got.taus),
          "plans are kept in increasing nfe, values as given");
    CHECK_STATUS(deissn_normtable_plan(tp, 5, &got), DEISSN_E_INVALID_ARG, "plan 5 of 5");
    char path[1024];
    snprintf(path, sizeof path, "%s/plans.dsn", dir);
    CHECK_STATUS(deissn_normtable_save(tp, path), DEISSN_OK, "save with plans");
    CHECK_STATUS(deissn_normtable_load(&back, path, NULL), DEISSN_OK, "load with plans");
    int same = back && deissn_normtable_plan_count(back) == 5;
    for (size_t i = 0; same && i < 5; i++) {
        deissn_plan a = DEISSN_PLAN_INIT, b = DEISSN_PLAN_INIT;
        deissn_normtable_plan(tp, i, &a);
        deissn_normtable_plan(back, i, &b);
        same = !memcmp(&a, &b, sizeof a);
    }
    CHECK(same, "plans, learned weights too, round-trip through a file bit for bit");
    /* A further copy keeps them unless told otherwise; an empty list removes them. */
    deissn_normtable_params keep = DEISSN_NORMTABLE_PARAMS_INIT;
    keep.metadata = "relabelled";
    deissn_normtable_free(back);
    back = NULL;
    CHECK_STATUS(deissn_normtable_copy(&back, tp, &keep), DEISSN_OK, "relabel");
    CHECK(deissn_normtable_plan_count(back) == 5, "a relabelled copy keeps the plans");
    deissn_normtable_params drop = DEISSN_NORMTABLE_PARAMS_INIT;
    drop.plans = plans;
    drop.n_plans = 0;
    CHECK_STATUS(deissn_normtable_copy(&none, tp, &drop), DEISSN_OK, "drop the plans");
    CHECK(deissn_normtable_plan_count(none) == 0, "n_plans 0 removes them");
    /* A version-1 params struct (no plans field) keeps the source's. */
    deissn_normtable_params v1;
    deissn_normtable_params_init(&v1, 1);
    deissn_normtable_free(none);
    none = NULL;
    CHECK_STATUS(deissn_normtable_copy(&none, tp, &v1), DEISSN_OK, "version-1 params");
    CHECK(deissn_normtable_plan_count(none) == 5, "version-1 params keep the plans");

    deissn_plan wrong[2] = {make_plan(8, DEISSN_METHOD_DATA), make_plan(8, DEISSN_METHOD_EPS)};
    p.plans = wrong;
    p.n_plans = 2;
    deissn_normtable *x = NULL;
    CHECK_STATUS(deissn_normtable_copy(&x, t, &p), DEISSN_E_INVALID_ARG, "two plans, one nfe");
    wrong[1].nfe = 9;
    wrong[1].taus[3] = wrong[1].taus[2];
    CHECK_STATUS(deissn_normtable_copy(&x, t, &p), DEISSN_E_INVALID_ARG, "repeated time");
    CHECK(strstr(deissn_last_error(), "plan 1 (nfe 9)") != NULL, "the message names the plan: %s",
          deissn_last_error());
    wrong[1] = make_plan(9, DEISSN_METHOD_EPS);
    wrong[1].corrector = 1;
    CHECK_STATUS(deissn_normtable_copy(&x, t, &p), DEISSN_E_INVALID_ARG, "corrector with eps");
    wrong[1] = make_plan(9, DEISSN_METHOD_EPS);
    wrong[1].error = NAN;
    CHECK_STATUS(deissn_normtable_copy(&x, t, &p), DEISSN_E_INVALID_ARG, "NaN error");
    wrong[1] = make_plan(9, DEISSN_METHOD_EPS);
    wrong[1].taus[0] = 1.5;
    CHECK_STATUS(deissn_normtable_copy(&x, t, &p), DEISSN_E_INVALID_ARG, "time above 1");
    wrong[1] = make_plan(9, DEISSN_METHOD_EPS);
    wrong[1].nfe = DEISSN_PLAN_MAX_NFE + 1;
    CHECK_STATUS(deissn_normtable_copy(&x, t, &p), DEISSN_E_INVALID_ARG, "nfe above the maximum");
    wrong[1] = make_plan(9, DEISSN_METHOD_EPS);
    wrong[1].weights[0][0] = 1;
    CHECK_STATUS(deissn_normtable_copy(&x, t, &p), DEISSN_E_INVALID_ARG, "weights, not learned");
    CHECK(strstr(deissn_last_error(), "weights") != NULL, "the message names the weights: %s",
          deissn_last_error());
    wrong[1] = make_plan(9, DEISSN_METHOD_LEARNED);
    wrong[1].weights[9][2] = 1;
    CHECK_STATUS(deissn_normtable_copy(&x, t, &p), DEISSN_E_INVALID_ARG, "weights past nfe");
    wrong[1] = make_plan(9, DEISSN_METHOD_LEARNED);
    wrong[1].weights[4][1] = NAN;
    CHECK_STATUS(deissn_normtable_copy(&x, t, &p), DEISSN_E_INVALID_ARG, "NaN weight");
    wrong[1] = make_plan(9, DEISSN_METHOD_LEARNED);
    wrong[1].corrector = 1;
    CHECK_STATUS(deissn_normtable_copy(&x, t, &p), DEISSN_E_INVALID_ARG, "learned, corrector");
    CHECK(x == NULL, "nothing made on error");

    /* Every truncation and every flipped bit of a file with plans is refused. */
    FILE *f = fopen(path, "rb");
    unsigned char file[1 << 16];
    size_t len = f ? fread(file, 1, sizeof file, f) : 0;
    if (f) fclose(f);
    int refused = 1;
    char cut[1100];
    snprintf(cut, sizeof cut, "%s/plans_cut.dsn", dir);
    for (size_t k = 0; k < len; k++) {
        f = fopen(cut, "wb");
        fwrite(file, 1, k, f);
        fclose(f);
        deissn_normtable *y = NULL;
        if (deissn_normtable_load(&y, cut, NULL) != DEISSN_E_FORMAT || y) refused = 0;
        deissn_normtable_free(y);
    }
    CHECK(refused, "all %zu truncations of a table with plans are refused", len);
    refused = 1;
    for (size_t k = 0; k < len * 8; k += 7) {
        file[k / 8] ^= (unsigned char)(1u << (k % 8));
        f = fopen(cut, "wb");
        fwrite(file, 1, len, f);
        fclose(f);
        file[k / 8] ^= (unsigned char)(1u << (k % 8));
        deissn_normtable *y = NULL;
        if (deissn_normtable_load(&y, cut, NULL) != DEISSN_E_FORMAT || y) refused = 0;
        deissn_normtable_free(y);
    }
    CHECK(refused, "every 7th flipped bit of a table with plans is refused");
    /* The header's flags: without FLAG_HAS_WEIGHTS (an older writer's file, or a bit lost)
     * the learned plans are refused; with an unknown one the file is (an older reader's
     * view of a newer file). The header's CRC is made right, so only the flag checks see. */
    uint32_t flags = (uint32_t)file[12] | (uint32_t)file[13] << 8;
    CHECK(flags == (2u | 4u) || flags == (1u | 2u | 4u), "a table with a learned plan has "
          "FLAG_HAS_WEIGHTS (flags 0x%x)", flags);
    const struct { uint32_t flags; const char *message, *what; } headers[] = {
        {flags & ~4u, "METHOD_LEARNED", "a learned plan, FLAG_HAS_WEIGHTS cleared"},
        {flags | 8u, "unknown flags", "an unknown flag 8"},
        {(flags & ~2u), "flags", "FLAG_HAS_WEIGHTS without FLAG_HAS_PLANS"}};
    for (size_t h = 0; h < sizeof headers / sizeof headers[0]; h++) {
        unsigned char head[44];
        memcpy(head, file, 44);
        put32(head + 12, headers[h].flags);
        put32(head + 40, (uint32_t)crc32(0, head, 40));
        f = fopen(cut, "wb");
        fwrite(head, 1, 44, f);
        fwrite(file + 44, 1, len - 44, f);
        fclose(f);
        expect_load_error(cut, DEISSN_E_FORMAT, headers[h].what, headers[h].message);
    }
    remove(cut);
    remove(path);
    deissn_normtable_free(t);
    deissn_normtable_free(tp);
    deissn_normtable_free(back);
    deissn_normtable_free(none);
}

/* ---- where saving writes (deissn_normtable_save, deissn_normtable_export_csv) ------------ */

/* A 3-knot table labelled `label`, so that tests can tell saves apart. */
static deissn_normtable *labelled(const char *label)
{
    double tau[3] = {0, 0.5, 1}, r[3] = {0.6, 0.7, 0.8};
    deissn_normtable_params p = DEISSN_NORMTABLE_PARAMS_INIT;
    p.metadata = label;
    deissn_normtable *t = NULL;
    deissn_normtable_create(&t, tau, r, 3, &p);
    return t;
}

/* The metadata of the table in `path`, or "(unreadable)". */
static const char *label_of(const char *path)
{
    static char buf[64];
    deissn_normtable *t = NULL;
    snprintf(buf, sizeof buf, "(unreadable)");
    if (deissn_normtable_load(&t, path, NULL) == DEISSN_OK)
        snprintf(buf, sizeof buf, "%s", deissn_normtable_metadata(t));
    deissn_normtable_free(t);
    return buf;
}

/* How many entries of tmpdir/sub have "deissn-tmp" in their name. */
static int temporaries_in(const char *sub)
{
    char dir[700];
    int n = 0;
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, sub);
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        n += strstr(e->d_name, "deissn-tmp") != NULL;
    if (d) closedir(d);
    return n;
}

static void test_save_targets(void)
{
    deissn_normtable *one = labelled("one"), *two = labelled("two");
    struct stat st;
    mkdir(tmp_path("save"), 0777);
    mkdir(tmp_path("save/links"), 0777);

    /* A symbolic link (relative, from another directory): the target is updated, the link
     * stays, and the temporary is made next to the target, not next to the link. */
    /* (tmp_path() reuses 4 buffers: keep copies) */
    char real[512], link[512], dangling[512], ro[512], csv[512], fifo[512], other[512];
    snprintf(real, sizeof real, "%s", tmp_path("save/real.dsn"));
    snprintf(link, sizeof link, "%s", tmp_path("save/links/link.dsn"));
    CHECK_STATUS(deissn_normtable_save(one, real), DEISSN_OK, "save the target");
    CHECK(symlink("../real.dsn", link) == 0, "symlink");
    CHECK_STATUS(deissn_normtable_save(two, link), DEISSN_OK, "save through a link");
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "the link is still a link");
    CHECK(!strcmp(label_of(real), "two"), "the link's target was updated: %s", label_of(real));
    CHECK_STATUS(deissn_normtable_export_csv(one, link), DEISSN_OK, "csv through a link");
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "the link is still a link after csv");
    /* a dangling link: its target is created */
    snprintf(dangling, sizeof dangling, "%s", tmp_path("save/links/dangling.dsn"));
    CHECK(symlink("../created.dsn", dangling) == 0, "symlink");
    CHECK_STATUS(deissn_normtable_save(one, dangling), DEISSN_OK, "save through a dangling link");
    CHECK(lstat(dangling, &st) == 0 && S_ISLNK(st.st_mode) &&
              !strcmp(label_of(tmp_path("save/created.dsn")), "one"),
          "the dangling link's target was created");

    /* The mode of an existing file is kept (a 0400 table stays 0400), for both functions. */
    snprintf(ro, sizeof ro, "%s", tmp_path("save/readonly.dsn"));
    snprintf(csv, sizeof csv, "%s", tmp_path("save/private.csv"));
    CHECK_STATUS(deissn_normtable_save(one, ro), DEISSN_OK, "save");
    chmod(ro, 0400);
    CHECK_STATUS(deissn_normtable_save(two, ro), DEISSN_OK, "save over a 0400 file");
    CHECK(stat(ro, &st) == 0 && (st.st_mode & 07777) == 0400, "mode %04o, want 0400",
          (unsigned)(st.st_mode & 07777));
    CHECK(!strcmp(label_of(ro), "two"), "the 0400 file was rewritten: %s", label_of(ro));
    CHECK_STATUS(deissn_normtable_export_csv(one, csv), DEISSN_OK, "csv");
    chmod(csv, 0640);
    CHECK_STATUS(deissn_normtable_export_csv(two, csv), DEISSN_OK, "csv over a 0640 file");
    CHECK(stat(csv, &st) == 0 && (st.st_mode & 07777) == 0640, "csv mode %04o, want 0640",
          (unsigned)(st.st_mode & 07777));
    CHECK(temporaries_in("save") == 0 && temporaries_in("save/links") == 0,
          "no temporary left after the saves (%d, %d)", temporaries_in("save"),
          temporaries_in("save/links"));

    /* A FIFO is written, not replaced: a reader gets the bytes a regular save writes. */
    snprintf(fifo, sizeof fifo, "%s", tmp_path("save/fifo"));
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    int rd = open(fifo, O_RDONLY | O_NONBLOCK);
    CHECK(rd >= 0, "open the FIFO for reading");
    CHECK_STATUS(deissn_normtable_save(two, fifo), DEISSN_OK, "save into a FIFO");
    CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO is still a FIFO");
    unsigned char got[4096];
    ssize_t n = rd >= 0 ? read(rd, got, sizeof got) : -1;
    size_t want_len = 0;
    unsigned char *want = read_bytes(ro, &want_len); /* `two`, saved to a regular file */
    CHECK(want && n == (ssize_t)want_len && !memcmp(got, want, want_len),
          "the FIFO's reader got the table (%zd bytes, want %zu)", n, want_len);
    free(want);
    if (rd >= 0) close(rd);
    /* /dev/null stays the device. Only where a save that replaced it would fail (not root):
     * as root, a broken save would replace the machine's /dev/null. */
    if (geteuid() != 0) {
        CHECK_STATUS(deissn_normtable_save(two, "/dev/null"), DEISSN_OK, "save to /dev/null");
        CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode), "/dev/null is a device");
    } else {
        SKIP("test_tables: save to /dev/null", "running as root, where a broken save would "
             "replace the device; the FIFO above is the same code path");
    }

    /* Stale temporaries: one of a process that no longer exists is removed by the next save
     * of that name; one of a live process (init) and one of another name are kept. */
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);
    char stale[64], live[64];
    snprintf(stale, sizeof stale, "save/.real.dsn.deissn-tmp-%ld-0", (long)child);
    snprintf(live, sizeof live, "save/.real.dsn.deissn-tmp-1-0");
    snprintf(other, sizeof other, "%s", tmp_path("save/.other.dsn.deissn-tmp-999999999-0"));
    CHECK(write_bytes(tmp_path(stale), "x", 1) && write_bytes(tmp_path(live), "x", 1) &&
              write_bytes(other, "x", 1), "plant temporaries");
    CHECK_STATUS(deissn_normtable_save(one, real), DEISSN_OK, "save");
    CHECK(access(tmp_path(stale), F_OK) != 0, "the dead process's temporary was removed");
    CHECK(access(tmp_path(live), F_OK) == 0, "a live process's temporary was kept");
    CHECK(access(other, F_OK) == 0, "another file's temporary was kept");

    deissn_normtable_free(one);
    deissn_normtable_free(two);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/deissn-tables-XXXXXX", env_or("TMPDIR", "/tmp"));
    if (!mkdtemp(tmpdir)) {
        printf("FAIL cannot create a temporary directory\n0 passed, 1 failed\n");
        return 1;
    }
    test_round_trip();
    test_reference_tables();
    test_merge_exact();
    test_gaussian_calibration();
    test_torch_calibration();
    test_corrupt();
    test_plans(tmpdir);

    test_save_targets();

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
    TEST_SUMMARY();
}
