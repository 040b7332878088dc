/* deissn-sample - sample images from a TorchScript diffusion model with libdeissn and write a
 * PNG grid. With no options it uses the model and table shipped in models/ and the plan tuned
 * for that model at 10 model evaluations (DEISSN_PRESET_TUNED).
 *
 *   deissn-sample [--model M] [--table T] [--steps 10] [--preset tuned|best|reference]
 *                 [--sampler deis-sn|deis|x0|x0-corrector|ddim] [--order 3] [--spacing NAME]
 *                 [--lower-order-final] [--corrector] [--seed S] [-n 64]
 *                 [--batch B] [--shape 1,32,32] [--threads T] [--device cpu|cuda[:N]]
 *                 [--noise NAME] [--prediction NAME] [--time NAME] [--train-steps T]
 *                 [--beta-start B] [--beta-end B] [--out samples.png] */
#include "deissn.h"
#include "tool.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef DEISSN_DATADIR
#define DEISSN_DATADIR "/usr/local/share/deissn"
#endif
#define DEFAULT_MODEL "fmnist_unet.pt"
#define DEFAULT_TABLE "fmnist_unet.dsn"

#define UNSET (-1)
/* The ranges of the numeric options. */
#define MAX_STEPS 1000u     /* the shipped model's training steps, the schedule's default */
#define MAX_THREADS 1024u
#define MAX_DIM 65536       /* per dimension of --shape */
#define MAX_NUMEL (1u << 30) /* values per sample */

typedef struct {
    const char *model, *table, *out, *device, *sampler, *preset;
    int spacing, order, lower_order_final, corrector; /* UNSET: the preset's */
    unsigned steps, threads;
    unsigned long long seed;
    long long n, batch;
    int64_t shape[3];
    tool_model settings; /* what the model predicts, its noise schedule (and the table's) */
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: deissn-sample [options]\n"
            "  --model FILE        TorchScript model, forward(x, t) (default: the shipped %s)\n"
            "  --table FILE        its table from deissn-calibrate (.dsn: r(tau), tuned plans,\n"
            "                      the model's settings) or a reference .pt (default: the\n"
            "                      shipped table when the model is the shipped one)\n"
            "  --steps N           model evaluations (default 10)\n"
            "  --preset NAME       tuned (default when the table has plans: the plan tuned on\n"
            "                      this model for N steps, or the nearest below), best (the\n"
            "                      fixed preset, docs/presets.md; the default without plans)\n"
            "                      or reference (the paper's DEIS-SN: quadratic, order 3);\n"
            "                      the options below override it\n"
            "  --sampler NAME      deis-sn (eps / r(tau), needs a table), deis (eps), x0 (the\n"
            "                      data prediction), x0-corrector, ddim (order 0); default:\n"
            "                      the preset's\n"
            "  --order K           polynomial order 0-3\n"
            "  --spacing NAME      quadratic, trailing, linspace, leading, power (uniform),\n"
            "                      logsnr, karras\n"
            "  --lower-order-final lower the order on the final steps\n"
            "  --corrector         correct each state with the new evaluation (x0 only)\n"
            "  --seed S            noise seed (default 0); sample k depends only on (S, k)\n"
            "  -n N                number of samples (default 64)\n"
            "  --batch B           samples per model call (default: all)\n"
            "  --shape C,H,W       sample shape (default 1,32,32)\n"
            "  --threads T         libtorch intra-op threads (default 1; 0: libtorch's choice,\n"
            "                      all cores, slower than one on a busy machine)\n"
            "  --device D          cpu (default), cuda, cuda:N\n"
            "  --noise NAME        the model's noise schedule: linear (default), scaled_linear,\n"
            "                      squaredcos_cap_v2 (cosine), continuous_vp\n"
            "  --train-steps T     its training steps (default 1000)\n"
            "  --beta-start B, --beta-end B   linear/scaled_linear betas (default: the schedule's)\n"
            "  --prediction NAME   what the model predicts: epsilon (default), sample (x0),\n"
            "                      v_prediction (v)\n"
            "  --time NAME         its time argument: model_index (tau*T - 1, default), tau,\n"
            "                      tau_1000, sigma\n"
            "                      (a table from deissn-calibrate records these: given, they\n"
            "                      must agree with it; not given, they are taken from it)\n"
            "  --out FILE          PNG grid to write (default samples.png)\n",
            DEFAULT_MODEL);
}

/* The shipped file `name`: $DEISSN_DATADIR, the source tree next to this binary
 * (build/bin/../../models), then the install directory. Returns a static buffer or NULL. */
static const char *find_data(const char *argv0, const char *name)
{
    static char path[2][4096];
    static int which;
    char *p = path[which++ & 1];
    const char *env = getenv("DEISSN_DATADIR");
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) len = (ssize_t)snprintf(exe, sizeof exe, "%s", argv0);
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    else strcpy(exe, ".");
    const char *candidates[3][2] = {{env, ""}, {exe, "/../../models"}, {DEISSN_DATADIR, "/models"}};
    for (int i = 0; i < 3; i++) {
        if (!candidates[i][0]) continue;
        char raw[4096];
        snprintf(raw, sizeof raw, "%s%s/%s", candidates[i][0], candidates[i][1], name);
        if (access(raw, R_OK) == 0) return realpath(raw, p) ? p : strcpy(p, raw);
    }
    return NULL;
}

#define GRID_PAD 2                /* pixels between and around the samples */
#define MAX_IMAGE_SIDE 1000000ll  /* wider or taller PNGs exceed libpng's default read limits */

/* How n samples of shape (c, h, w) are laid out: a near-square grid of cols x rows cells with
 * GRID_PAD-pixel gutters, width x height pixels of c bytes. */
typedef struct {
    long long cols, rows;
    unsigned width, height;
    size_t bytes;
} grid;

/* Fill *g; -1 with a message when the image would be larger than PNG allows here. n * c * h *
 * w has been checked to fit in size_t, so cols * cols does not overflow. */
static int grid_layout(long long n, const int64_t *shape, grid *g)
{
    long long cols = (long long)sqrt((double)n);
    while (cols * cols < n) cols++;
    while (cols > 1 && (cols - 1) * (cols - 1) >= n) cols--;
    long long rows = (n + cols - 1) / cols;
    long long W = cols * (shape[2] + GRID_PAD) + GRID_PAD;
    long long H = rows * (shape[1] + GRID_PAD) + GRID_PAD;
    size_t px;
    if (W > MAX_IMAGE_SIDE || H > MAX_IMAGE_SIDE || !tool_mul_size((size_t)W, (size_t)H, &px) ||
        !tool_mul_size(px, (size_t)shape[0], &g->bytes)) {
        fprintf(stderr, "deissn-sample: a grid of %lld samples of %lldx%lld is %lldx%lld pixels; "
                        "at most %lld a side can be written (lower -n)\n", n,
                (long long)shape[2], (long long)shape[1], W, H, MAX_IMAGE_SIDE);
        return -1;
    }
    g->cols = cols;
    g->rows = rows;
    g->width = (unsigned)W;
    g->height = (unsigned)H;
    return 0;
}

/* Lay n samples of shape (c, h, w), values in [-1, 1], out as *g says and write them as an
 * 8-bit gray (c = 1) or RGB (c = 3) PNG with libpng. */
static int write_grid(const char *path, const float *x, long long n, const int64_t *shape,
                      const grid *g)
{
    int c = (int)shape[0], h = (int)shape[1], w = (int)shape[2], pad = GRID_PAD;
    long long cols = g->cols;
    unsigned W = g->width, H = g->height;
    unsigned char *img = calloc(g->bytes, 1);
    png_bytep *rowp = malloc(H * sizeof *rowp);
    FILE *f = img && rowp ? fopen(path, "wb") : NULL;
    if (!f) {
        fprintf(stderr, "deissn-sample: --out %s: %s\n", path,
                img && rowp ? strerror(errno) : "out of memory for the image");
        free(img);
        free(rowp);
        return -1;
    }
    for (long long k = 0; k < n; k++) {
        size_t gx = (size_t)(k % cols) * (size_t)(w + pad) + pad;
        size_t gy = (size_t)(k / cols) * (size_t)(h + pad) + pad;
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int xx = 0; xx < w; xx++) {
                    float v = x[((k * c + ch) * h + y) * w + xx];
                    float u = (v + 1.0f) * 127.5f + 0.5f;
                    img[((gy + (size_t)y) * W + gx + (size_t)xx) * (size_t)c + (size_t)ch] =
                        (unsigned char)(u < 0 ? 0 : u > 255 ? 255 : u);
                }
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = -1;
    if (info && !setjmp(png_jmpbuf(png))) {
        png_init_io(png, f);
        png_set_IHDR(png, info, W, H, 8, c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        for (unsigned y = 0; y < H; y++) rowp[y] = img + (size_t)y * W * c;
        png_write_info(png, info);
        png_write_image(png, rowp);
        png_write_end(png, NULL);
        rc = 0;
    }
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) rc = -1;
    if (rc) fprintf(stderr, "deissn-sample: writing %s failed\n", path);
    free(img);
    free(rowp);
    return rc;
}

static int parse(int argc, char **argv, options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--lower-order-final")) {
            o->lower_order_final = 1;
            continue;
        }
        if (!strcmp(a, "--corrector")) {
            o->corrector = 1;
            continue;
        }
        static const char *const valued[] = {"--model", "--table", "--out", "--device",
                                             "--sampler", "--steps", "--order", "--threads",
                                             "--preset",
                                             "--seed", "-n", "--batch", "--shape", "--spacing"};
        if (v && tool_model_option(&o->settings, a, v)) {
            i++;
            continue;
        }
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof *valued; k++) known |= !strcmp(a, valued[k]);
        if (!known) {
            fprintf(stderr, "deissn-sample: unknown option '%s' (see --help)\n", a);
            return -1;
        }
        if (!v) {
            fprintf(stderr, "deissn-sample: %s needs a value (see --help)\n", a);
            return -1;
        }
        i++;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--table")) o->table = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--device")) o->device = v;
        else if (!strcmp(a, "--sampler")) o->sampler = v;
        else if (!strcmp(a, "--steps")) o->steps = (unsigned)tool_parse_u64(a, v, 1, MAX_STEPS);
        else if (!strcmp(a, "--preset")) o->preset = v;
        else if (!strcmp(a, "--order")) o->order = (int)tool_parse_u64(a, v, 0, 3);
        else if (!strcmp(a, "--threads"))
            o->threads = (unsigned)tool_parse_u64(a, v, 0, MAX_THREADS);
        else if (!strcmp(a, "--seed")) o->seed = tool_parse_u64(a, v, 0, UINT64_MAX);
        else if (!strcmp(a, "-n")) o->n = (long long)tool_parse_u64(a, v, 1, INT64_MAX);
        else if (!strcmp(a, "--batch")) o->batch = (long long)tool_parse_u64(a, v, 0, INT64_MAX);
        else if (!strcmp(a, "--shape")) tool_parse_shape(a, v, MAX_DIM, MAX_NUMEL, o->shape);
        else if (!strcmp(a, "--spacing")) {
            int32_t sp;
            if (deissn_enum_value(DEISSN_ENUM_SPACING, v, &sp) != DEISSN_OK ||
                sp == DEISSN_SPACING_CUSTOM) {
                fprintf(stderr, "deissn-sample: --spacing: %s\n", sp == DEISSN_SPACING_CUSTOM
                        ? "custom times come from a tuned plan (--preset tuned)"
                        : deissn_last_error());
                return -1;
            }
            o->spacing = sp;
        }
    }
    deissn_sampler_params probe = DEISSN_SAMPLER_PARAMS_INIT;
    if (o->sampler && deissn_sampler_params_by_name(&probe, o->sampler, NULL) != DEISSN_OK) {
        fprintf(stderr, "deissn-sample: --sampler: %s\n", deissn_last_error());
        return -1;
    }
    int32_t preset;
    if (o->preset && deissn_enum_value(DEISSN_ENUM_PRESET, o->preset, &preset) != DEISSN_OK) {
        fprintf(stderr, "deissn-sample: --preset: %s\n", deissn_last_error());
        return -1;
    }
    /* DDIM is order 0: an explicit other order contradicts it. */
    if (o->sampler && !strcmp(o->sampler, "ddim") && o->order != UNSET && o->order != 0) {
        fprintf(stderr, "deissn-sample: --sampler ddim is order 0; drop --order %d or pass "
                        "another --sampler\n", o->order);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    tool_name = "deissn-sample";
    options o = {.out = "samples.png", .device = "cpu", .spacing = UNSET, .order = UNSET,
                 .lower_order_final = UNSET, .corrector = UNSET, .steps = 10, .threads = 1,
                 .n = 64, .shape = {1, 32, 32}, .settings = TOOL_MODEL_UNSET};
    if (parse(argc, argv, &o)) return 2;

    int shipped_model = o.model == NULL;
    if (shipped_model && !(o.model = find_data(argv[0], DEFAULT_MODEL))) {
        fprintf(stderr, "deissn-sample: the shipped model %s was not found (set DEISSN_DATADIR "
                        "or pass --model)\n", DEFAULT_MODEL);
        return 1;
    }
    if (shipped_model && !o.table && !(o.table = find_data(argv[0], DEFAULT_TABLE))) {
        fprintf(stderr, "deissn-sample: the shipped table %s was not found\n", DEFAULT_TABLE);
        return 1;
    }
    const tool_file outputs[] = {{"--out", o.out}};
    const tool_file inputs[] = {{"--model", o.model}, {"--table", o.table}};
    tool_check_outputs(outputs, 1, inputs, 2);
    tool_check_writable("--out", o.out);

    /* The table first: it says what the model is (its record) and holds the tuned plans. */
    int32_t rc;
    double t_load = tool_now();
    deissn_normtable *table = NULL;
    if (o.table && (rc = deissn_normtable_load(&table, o.table, NULL)) != DEISSN_OK)
        return tool_fail("loading the table", rc);
    if (table) tool_model_from_record(&o.settings, deissn_normtable_metadata(table), o.table);
    tool_model_defaults(&o.settings);

    /* The preset, then what the command line says explicitly. */
    deissn_schedule_params sp = DEISSN_SCHEDULE_PARAMS_INIT;
    deissn_sampler_params pp = DEISSN_SAMPLER_PARAMS_INIT;
    deissn_model_params mp = DEISSN_MODEL_PARAMS_INIT;
    tool_model_apply(&o.settings, &sp, &pp, &mp);
    int32_t preset = deissn_normtable_plan_count(table) ? DEISSN_PRESET_TUNED : DEISSN_PRESET_BEST;
    if (o.preset) deissn_enum_value(DEISSN_ENUM_PRESET, o.preset, &preset); /* checked in parse */
    if (preset == DEISSN_PRESET_TUNED && !deissn_normtable_plan_count(table)) {
        fprintf(stderr, "deissn-sample: --preset tuned needs a table with plans (deissn-calibrate "
                        "--model M --out M.dsn makes one)%s%s\n", o.table ? "; this one has none: " : "",
                o.table ? o.table : "");
        return 2;
    }
    int32_t use_table = 0;
    if ((rc = deissn_preset_params(preset, o.steps, table, &sp, &pp, &use_table)) != DEISSN_OK)
        return tool_fail("preset", rc);
    deissn_plan plan = DEISSN_PLAN_INIT;
    if (sp.spacing == DEISSN_SPACING_CUSTOM) /* a tuned plan: which one, for the report */
        for (size_t i = 0; i < deissn_normtable_plan_count(table); i++) {
            deissn_normtable_plan(table, i, &plan);
            if (plan.nfe == sp.steps) break;
        }
    if (o.sampler) deissn_sampler_params_by_name(&pp, o.sampler, &use_table);
    if (pp.method == DEISSN_METHOD_LEARNED && o.spacing != UNSET) {
        fprintf(stderr, "deissn-sample: --spacing: the plan tuned for %u NFE is learned, and its "
                        "weights hold for its own times only (or choose --sampler)\n", sp.steps);
        return 2;
    }
    if (o.spacing != UNSET) sp.spacing = o.spacing;
    if (o.order != UNSET) pp.order = (uint32_t)o.order;
    if (o.lower_order_final != UNSET) pp.lower_order_final = (uint32_t)o.lower_order_final;
    if (o.corrector != UNSET) pp.corrector = (uint32_t)o.corrector;
    if (use_table && !table) {
        fprintf(stderr, "deissn-sample: --sampler deis-sn with your own model needs --table "
                        "(make one with deissn-calibrate), or use --sampler deis\n");
        return 2;
    }
    if (o.shape[0] != 1 && o.shape[0] != 3) {
        fprintf(stderr, "deissn-sample: --shape %lld,%lld,%lld: a PNG holds 1 (gray) or 3 (RGB) "
                        "channels, not %lld\n", (long long)o.shape[0], (long long)o.shape[1],
                (long long)o.shape[2], (long long)o.shape[0]);
        return 2;
    }

    /* Every size before the first allocation or model call: n samples of `per` floats, and
     * the grid they are drawn in. per <= MAX_NUMEL (tool_parse_shape). */
    size_t per = (size_t)(o.shape[0] * o.shape[1] * o.shape[2]), x_bytes, values;
    if (!tool_mul_size((size_t)o.n, per, &values) ||
        !tool_mul_size(values, sizeof(float), &x_bytes)) {
        fprintf(stderr, "deissn-sample: -n %lld samples of %lldx%lldx%lld floats do not fit in "
                        "memory (more than %zu bytes)\n", o.n, (long long)o.shape[0],
                (long long)o.shape[1], (long long)o.shape[2], SIZE_MAX);
        return 2;
    }
    grid g;
    if (grid_layout(o.n, o.shape, &g)) return 2;
    float *x = malloc(x_bytes);
    if (!x) {
        fprintf(stderr, "deissn-sample: out of memory for %lld samples (%zu bytes)\n", o.n,
                x_bytes);
        return 1;
    }

    mp.device = o.device;
    mp.num_threads = (int32_t)o.threads;
    deissn_model *model = NULL;
    if ((rc = deissn_model_load(&model, o.model, &mp)) != DEISSN_OK)
        return tool_fail("loading the model", rc);
    t_load = tool_now() - t_load;

    deissn_schedule *schedule = NULL;
    deissn_sampler *sampler = NULL;
    double t_setup = tool_now();
    if ((rc = deissn_schedule_create(&schedule, &sp)) != DEISSN_OK)
        return tool_fail("schedule", rc);
    if ((rc = deissn_sampler_create(&sampler, schedule, use_table ? table : NULL, &pp)) !=
        DEISSN_OK)
        return tool_fail("sampler", rc);
    t_setup = tool_now() - t_setup;

    long long batch = o.batch > 0 && o.batch < o.n ? o.batch : o.n;
    double model_s = 0, sampler_s = 0, t_total = tool_now();
    for (long long first = 0; first < o.n; first += batch) {
        long long b = o.n - first < batch ? o.n - first : batch;
        float *xb = x + (size_t)first * per;
        deissn_fill_noise(o.seed, (uint64_t)first, (size_t)b, per, xb);
        int64_t shape[4] = {b, o.shape[0], o.shape[1], o.shape[2]};
        deissn_sample_stats stats = DEISSN_SAMPLE_STATS_INIT;
        deissn_sample_options so = DEISSN_SAMPLE_OPTIONS_INIT;
        so.stats = &stats;
        if ((rc = deissn_sample(sampler, model, xb, shape, 4, &so)) != DEISSN_OK)
            return tool_fail("sampling", rc);
        model_s += stats.model_seconds;
        sampler_s += stats.sampler_seconds;
    }
    t_total = tool_now() - t_total;

    if (write_grid(o.out, x, o.n, o.shape, &g)) return 1;
    printf("deissn-sample (libdeissn %s)\n", deissn_version_string());
    printf("  model    %s (%s)\n", o.model, o.device);
    char spacing[64];
    if (sp.spacing == DEISSN_SPACING_POWER)
        snprintf(spacing, sizeof spacing, "power %.17g spacing", sp.power);
    else if (sp.spacing == DEISSN_SPACING_CUSTOM)
        snprintf(spacing, sizeof spacing, "tuned times");
    else snprintf(spacing, sizeof spacing, "%s spacing", deissn_enum_name(DEISSN_ENUM_SPACING, sp.spacing));
    const int learned = pp.method == DEISSN_METHOD_LEARNED; /* no order: the weights are all */
    const char *method = learned                         ? "learned (the plan's weights)"
                         : pp.method == DEISSN_METHOD_DATA ? "x0 (data prediction)"
                         : pp.order == 0 && !use_table   ? "DDIM"
                         : use_table                      ? "DEIS-SN"
                                                          : "DEIS";
    char order[32] = "";
    if (!learned) snprintf(order, sizeof order, ", order %u", pp.order);
    printf("  sampler  %s%s, %s, %u model evaluations%s%s (preset %s)\n", method, order,
           spacing, sp.steps, pp.lower_order_final && !learned ? ", lower order at the end" : "",
           pp.corrector ? ", corrector" : "", deissn_enum_name(DEISSN_ENUM_PRESET, preset));
    if (sp.spacing == DEISSN_SPACING_CUSTOM && plan.nfe)
        printf("  plan     tuned for %u NFE%s: held-out RMSE %.4g [%.4g, %.4g] on %u samples, "
               "BEST %.4g there\n", plan.nfe, plan.nfe != o.steps ? " (the nearest below)" : "",
               plan.error, plan.error_low, plan.error_high, plan.samples, plan.best_error);
    if (table) printf("  table    %s%s\n", o.table, use_table ? "" : " (not used by this sampler)");
    printf("  samples  %lld x %lldx%lldx%lld, seed %llu, batch %lld\n", o.n, (long long)o.shape[0],
           (long long)o.shape[1], (long long)o.shape[2], o.seed, batch);
    printf("  time     %.3f s sampling: model %.3f s (%.1f%%), sampler %.3f ms (%.2f%%); "
           "coefficients %.3f ms; loading %.3f s\n",
           t_total, model_s, 100 * model_s / t_total, 1e3 * sampler_s, 100 * sampler_s / t_total,
           1e3 * t_setup, t_load);
    printf("  wrote    %s (%ux%u)\n", o.out, g.width, g.height);
    free(x);
    deissn_sampler_free(sampler);
    deissn_schedule_free(schedule);
    deissn_normtable_free(table);
    deissn_model_free(model);
    return 0;
}
