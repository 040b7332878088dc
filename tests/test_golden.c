/* test_golden.c - every case of tests/data/deis_sn_golden.json (copied from the reference
 * data in shared/reference): sampling times, Psi and C against the exact values (float64
 * adaptive quadrature) and the reference implementation's own values, and the trajectories
 * on the analytic Gaussian model through deissn_step().
 *
 * Cases with a table read the reference .pt tables from $DEISSN_SEED_TABLES (default
 * ../shared/seed-tables) and are skipped, by name, when absent. */
#include "deissn.h"
#include "testlib.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>

#define GOLDEN "tests/data/deis_sn_golden.json"

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = '\0';
    fclose(f);
    return buf;
}

static double num(const cJSON *o, const char *key) { return cJSON_GetObjectItem(o, key)->valuedouble; }

/* The analytic model: data ~ N(0, s^2 I) gives eps(x, tau) = sigma x / (abar s^2 + sigma^2). */
static void gaussian_eps(const deissn_schedule *s, double tau, double std, const float *x,
                         float *eps, size_t n)
{
    double abar = deissn_schedule_alpha_bar(s, tau), sigma = sqrt(1 - abar);
    for (size_t i = 0; i < n; i++)
        eps[i] = (float)(sigma * x[i] / (abar * std * std + sigma * sigma));
}

static int spacing_of(const char *name)
{
    if (!strcmp(name, "quadratic")) return DEISSN_SPACING_QUADRATIC;
    if (!strcmp(name, "trailing")) return DEISSN_SPACING_TRAILING;
    if (!strcmp(name, "linspace")) return DEISSN_SPACING_LINSPACE;
    if (!strcmp(name, "leading")) return DEISSN_SPACING_LEADING;
    return -1;
}

/* Worst relative errors over all cases, printed at the end for the record. */
static double worst_exact_c, worst_seed_c, worst_exact_traj, worst_seed_traj;

static void run_case(int ci, const cJSON *c, const char *tables_dir)
{
    char name[128];
    const char *spacing = cJSON_GetObjectItem(c, "spacing")->valuestring;
    const cJSON *table_j = cJSON_GetObjectItem(c, "table");
    const char *table_name = cJSON_IsString(table_j) ? table_j->valuestring : NULL;
    int nfe = (int)num(c, "nfe"), order = (int)num(c, "order");
    snprintf(name, sizeof name, "case %d (%s, nfe %d, order %d, table %s)", ci, spacing, nfe, order,
             table_name ? table_name : "none");

    deissn_normtable *table = NULL;
    if (table_name) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s_Ls_score_abs.pt", tables_dir, table_name);
        FILE *f = fopen(path, "rb");
        if (!f) {
            SKIP(name, "reference table %s is absent (set DEISSN_SEED_TABLES)", path);
            return;
        }
        fclose(f);
        uint32_t clip = (uint32_t)num(c, "clip_normalizer_steps");
        CHECK_STATUS(deissn_normtable_load(&table, path, &(deissn_normtable_params){.version = DEISSN_NORMTABLE_PARAMS_VERSION, .clip = clip, .metadata = NULL}), DEISSN_OK, path);
        if (!table) return;
    }

    deissn_schedule_params sp;
    deissn_schedule_params_init(&sp, DEISSN_SCHEDULE_PARAMS_VERSION);
    sp.spacing = spacing_of(spacing);
    sp.steps = (uint32_t)nfe;
    deissn_schedule *sched = NULL;
    CHECK_STATUS(deissn_schedule_create(&sched, &sp), DEISSN_OK, name);

    deissn_sampler_params pp;
    deissn_sampler_params_init(&pp, DEISSN_SAMPLER_PARAMS_VERSION);
    pp.order = (uint32_t)order;
    deissn_sampler *s = NULL;
    CHECK_STATUS(deissn_sampler_create(&s, sched, table, &pp), DEISSN_OK, name);
    if (!s) goto out;

    const cJSON *steps = cJSON_GetObjectItem(c, "steps");
    CHECK(cJSON_GetArraySize(steps) == nfe, "%s: golden has %d steps", name, cJSON_GetArraySize(steps));
    for (int i = 0; i < nfe; i++) {
        const cJSON *st = cJSON_GetArrayItem(steps, i);
        deissn_step_coeffs co = DEISSN_STEP_COEFFS_INIT;
        deissn_sampler_coeffs(s, (uint32_t)i, &co);
        /* The reference stores the times of integer spacings in float32 (0.949999988 for
         * 0.95) but its exact coefficients use the float64 times, as we do: 1e-7. */
        CHECK(tl_close(co.tau_from, num(st, "t_from"), 1e-7, 1e-12), "%s step %d: tau_from %.17g want %.17g",
              name, i, co.tau_from, num(st, "t_from"));
        CHECK(tl_close(co.tau_to, num(st, "t_to"), 1e-7, 1e-12), "%s step %d: tau_to %.17g want %.17g", name,
              i, co.tau_to, num(st, "t_to"));
        CHECK(tl_close(co.model_t, num(st, "model_t"), 1e-12, 1), "%s step %d: model_t %.17g want %.17g",
              name, i, co.model_t, num(st, "model_t"));
        CHECK(tl_close(co.psi, num(st, "exact_psi"), 1e-6, 0), "%s step %d: psi %.17g want %.17g", name, i,
              co.psi, num(st, "exact_psi"));
        const cJSON *ec = cJSON_GetObjectItem(st, "exact_C"), *sc = cJSON_GetObjectItem(st, "seed_C");
        int nc = cJSON_GetArraySize(ec);
        CHECK(nc == (int)co.order + 1, "%s step %d: order %u, golden has %d coefficients", name, i,
              co.order, nc);
        /* Coefficients of higher order can be tiny next to C_0 (they multiply differences):
         * measure errors relative to the step's largest coefficient. */
        double scale = 0;
        for (int j = 0; j < nc; j++) {
            double e = fabs(cJSON_GetArrayItem(ec, j)->valuedouble);
            if (e > scale) scale = e;
        }
        for (int j = 0; j < nc && j < 4; j++) {
            double want = cJSON_GetArrayItem(ec, j)->valuedouble;
            double seed = cJSON_GetArrayItem(sc, j)->valuedouble;
            double e_exact = fabs(co.c[j] - want) / scale, e_seed = fabs(co.c[j] - seed) / scale;
            if (e_exact > worst_exact_c) worst_exact_c = e_exact;
            if (e_seed > worst_seed_c) worst_seed_c = e_seed;
            CHECK(e_exact <= 1e-9, "%s step %d: C[%d] = %.17g, exact %.17g (rel %.3g)", name, i, j,
                  co.c[j], want, e_exact);
            CHECK(e_seed <= 2e-2, "%s step %d: C[%d] = %.17g, seed %.17g (rel %.3g)", name, i, j,
                  co.c[j], seed, e_seed);
        }
    }

    /* Trajectory on the analytic Gaussian model. */
    const cJSON *xi = cJSON_GetObjectItem(c, "x_init");
    const cJSON *et = cJSON_GetObjectItem(c, "exact_trajectory");
    const cJSON *stj = cJSON_GetObjectItem(c, "seed_trajectory");
    double std = num(c, "analytic_gaussian_std");
    size_t n = (size_t)cJSON_GetArraySize(xi);
    float x[16], eps[16];
    for (size_t k = 0; k < n && k < 16; k++) x[k] = (float)cJSON_GetArrayItem(xi, (int)k)->valuedouble;
    deissn_step_info info = DEISSN_STEP_INFO_INIT;
    int32_t rc = deissn_sampler_next(s, &info);
    for (int i = 0; i < nfe && rc == DEISSN_OK; i++) {
        gaussian_eps(sched, info.tau, std, x, eps, n);
        rc = deissn_step(s, x, eps, n, &info);
        CHECK(rc == (i == nfe - 1 ? DEISSN_DONE : DEISSN_OK), "%s step %d: status %d", name, i, (int)rc);
        const cJSON *ew = cJSON_GetArrayItem(et, i), *sw = cJSON_GetArrayItem(stj, i);
        double xmax = 0;
        for (size_t k = 0; k < n; k++) {
            double w = fabs(cJSON_GetArrayItem(ew, (int)k)->valuedouble);
            if (w > xmax) xmax = w;
        }
        for (size_t k = 0; k < n; k++) {
            double we = cJSON_GetArrayItem(ew, (int)k)->valuedouble;
            double ws = cJSON_GetArrayItem(sw, (int)k)->valuedouble;
            double e_exact = fabs(x[k] - we) / xmax, e_seed = fabs(x[k] - ws) / xmax;
            if (e_exact > worst_exact_traj) worst_exact_traj = e_exact;
            if (e_seed > worst_seed_traj) worst_seed_traj = e_seed;
            CHECK(e_exact <= 1e-6, "%s step %d x[%zu] = %.9g, exact %.9g (rel %.3g)", name, i, k,
                  x[k], we, e_exact);
            CHECK(e_seed <= 2e-3, "%s step %d x[%zu] = %.9g, seed %.9g (rel %.3g)", name, i, k, x[k],
                  ws, e_seed);
        }
    }
out:
    deissn_sampler_free(s);
    deissn_schedule_free(sched);
    deissn_normtable_free(table);
}

int main(void)
{
    const char *tables = getenv("DEISSN_SEED_TABLES");
    if (!tables) tables = "../shared/seed-tables";
    char *text = read_text(GOLDEN);
    CHECK(text != NULL, "cannot read %s (run from the repository root)", GOLDEN);
    if (!text) TEST_SUMMARY();
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *cases = cJSON_GetObjectItem(root, "cases");
    CHECK(cJSON_GetArraySize(cases) > 0, "no cases in %s", GOLDEN);
    int ci = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) run_case(ci++, c, tables);
    cJSON_Delete(root);
    printf("# %d golden cases; worst relative error: C %.3g vs exact, %.3g vs reference; "
           "trajectory %.3g vs exact, %.3g vs reference\n",
           ci, worst_exact_c, worst_seed_c, worst_exact_traj, worst_seed_traj);
    TEST_SUMMARY();
}
