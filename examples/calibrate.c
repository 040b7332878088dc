/* deissn-calibrate - make, merge and export normalization tables r(tau).
 *
 *   deissn-calibrate --model M --samples N [--batch B] [--steps 1000] [--seed S] [--clip C]
 *                    [--shape 1,32,32] [--threads T] [--device cpu|cuda[:N]]
 *                    [--metadata TEXT] [--out table.dsn]
 *       samples N images with 1000-step DDIM (order 0, trailing spacing, to tau = 0) and
 *       records the mean |eps| of the model at every step. Sample k's noise depends only on
 *       (seed, k), and the sums are exact integers, so --batch changes nothing that libdeissn
 *       computes (only what the model itself may round differently).
 *   deissn-calibrate --merge a.dsn b.dsn ... [--clip C] [--metadata TEXT] --out c.dsn
 *       adds up the calibration sums of tables made with the same steps (bit-exact).
 *   deissn-calibrate --csv table.dsn|table.pt [--clip C] --out table.csv
 *       writes the knots as CSV (tau,r[,sum,count]) for plotting; --clip applies to .pt files.
 */
#include "deissn.h"
#include "tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The ranges of the numeric options. */
#define MAX_SAMPLES (1ull << 40) /* so that samples * steps (the progress) cannot wrap */
#define MAX_BATCH (1u << 20)
#define MAX_STEPS 100000u
#define MAX_THREADS 1024u
#define MAX_DIM 65536        /* per dimension of --shape */
#define MAX_NUMEL (1u << 30) /* values per sample */

typedef struct {
    const char *model, *out, *device, *metadata, *csv;
    const char **merge;
    int n_merge, has_clip;
    unsigned steps, clip, threads;
    unsigned long long seed, samples, batch;
    int64_t shape[3];
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: deissn-calibrate --model M --samples N [--batch B] [--steps 1000] [--seed S]\n"
            "                        [--clip C] [--shape C,H,W] [--threads T] [--device D]\n"
            "                        [--metadata TEXT] [--out table.dsn]\n"
            "       deissn-calibrate --merge a.dsn b.dsn ... [--clip C] [--metadata TEXT]\n"
            "                        --out c.dsn\n"
            "       deissn-calibrate --csv table.dsn|table.pt [--clip C] --out table.csv\n"
            "  --model FILE     TorchScript eps-prediction model, forward(x, t), t = tau*1000 - 1\n"
            "  --samples N      how many samples to average over\n"
            "  --batch B        samples per model call (default 64; does not change the result)\n"
            "  --steps N        steps of the calibration runs (default 1000)\n"
            "  --seed S         noise seed (default 0)\n"
            "  --clip C         knots nearest tau = 0 set to the next one's value (default 0;\n"
            "                   --merge: the first table's)\n"
            "  --shape C,H,W    sample shape (default 1,32,32)\n"
            "  --threads T      libtorch intra-op threads (default: libtorch's choice)\n"
            "  --device D       cpu (default), cuda, cuda:N\n"
            "  --metadata TEXT  stored in the table (default: the model path and the settings)\n"
            "  --out FILE       output (default table.dsn; --csv: required)\n");
}



static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->steps = 1000;
    o->batch = 64;
    o->shape[0] = 1, o->shape[1] = 32, o->shape[2] = 32;
    o->merge = calloc((size_t)argc, sizeof *o->merge);
    if (!o->merge) return 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--merge")) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                o->merge[o->n_merge++] = argv[++i];
            if (o->n_merge == 0) {
                fprintf(stderr, "deissn-calibrate: --merge needs table files\n");
                return 0;
            }
            continue;
        }
        if (!v) {
            fprintf(stderr, "deissn-calibrate: %s needs a value\n", a);
            return 0;
        }
        i++;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--device")) o->device = v;
        else if (!strcmp(a, "--metadata")) o->metadata = v;
        else if (!strcmp(a, "--csv")) o->csv = v;
        else if (!strcmp(a, "--samples")) o->samples = tool_parse_u64(a, v, 1, MAX_SAMPLES);
        else if (!strcmp(a, "--batch")) o->batch = tool_parse_u64(a, v, 1, MAX_BATCH);
        else if (!strcmp(a, "--seed")) o->seed = tool_parse_u64(a, v, 0, UINT64_MAX);
        else if (!strcmp(a, "--steps")) o->steps = (unsigned)tool_parse_u64(a, v, 2, MAX_STEPS);
        else if (!strcmp(a, "--clip")) {
            o->clip = (unsigned)tool_parse_u64(a, v, 0, MAX_STEPS - 1);
            o->has_clip = 1;
        } else if (!strcmp(a, "--threads"))
            o->threads = (unsigned)tool_parse_u64(a, v, 0, MAX_THREADS);
        else if (!strcmp(a, "--shape")) tool_parse_shape(a, v, MAX_DIM, MAX_NUMEL, o->shape);
        else {
            fprintf(stderr, "deissn-calibrate: unknown option '%s'\n", a);
            return 0;
        }
    }
    return 1;
}

/* ---- progress ---------------------------------------------------------------------------- */

typedef struct {
    int tty;
    double start, last_shown;
    unsigned long long steps_total, steps_before; /* steps of earlier batches */
    unsigned long long samples_done, samples_total;
} progress;

static void show(const progress *p, unsigned long long steps_done)
{
    double el = tool_now() - p->start;
    double frac = (double)steps_done / (double)p->steps_total;
    double rate = el > 0 ? (double)p->samples_total * frac / el : 0;
    double eta = frac > 0 ? el * (1 - frac) / frac : 0;
    if (p->tty) {
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %llu/%llu steps  %.1f samples/s  ETA %.0f s   ", bar, steps_done,
                p->steps_total, rate, eta);
    } else {
        fprintf(stderr, "%llu/%llu samples, %llu/%llu steps, %.1f samples/s, ETA %.0f s\n",
                p->samples_done, p->samples_total, steps_done, p->steps_total, rate, eta);
    }
}

static int on_step(void *user, uint32_t step, uint32_t steps)
{
    progress *p = user;
    /* A few updates a second at most; the terminal is slower than the model. */
    if (p->tty && (step + 1 == steps || tool_now() - p->last_shown > 0.2)) {
        p->last_shown = tool_now();
        show(p, p->steps_before + step + 1);
    }
    return 0;
}

/* ---- the three modes --------------------------------------------------------------------- */

static int calibrate(const options *o)
{
    const char *out = o->out ? o->out : "table.dsn";
    deissn_schedule_params sp = DEISSN_SCHEDULE_PARAMS_INIT;
    sp.spacing = DEISSN_SPACING_TRAILING;
    sp.steps = o->steps;
    deissn_sampler_params pp = DEISSN_SAMPLER_PARAMS_INIT;
    pp.order = 0; /* DDIM: the eps the model gives along the ODE, nothing extrapolated */
    deissn_model_params mp = DEISSN_MODEL_PARAMS_INIT;
    mp.device = o->device;
    mp.num_threads = (int32_t)o->threads;

    deissn_schedule *s = NULL;
    deissn_sampler *sampler = NULL;
    deissn_model *model = NULL;
    deissn_calibrator *cal = NULL;
    deissn_normtable *table = NULL;
    float *x = NULL;
    int status = 1;
    int32_t rc;
    size_t numel = (size_t)(o->shape[0] * o->shape[1] * o->shape[2]); /* each <= 65536 */
    if (numel > SIZE_MAX / sizeof *x / o->batch)
        fprintf(stderr, "deissn-calibrate: a batch of %llu samples of %zu values is too large\n",
                o->batch, numel);
    else if ((rc = deissn_schedule_create(&s, &sp)) != DEISSN_OK) status = tool_fail("schedule", rc);
    else if ((rc = deissn_sampler_create(&sampler, s, NULL, &pp)) != DEISSN_OK)
        status = tool_fail("sampler", rc);
    else if ((rc = deissn_model_load(&model, o->model, &mp)) != DEISSN_OK)
        status = tool_fail("loading the model", rc);
    else if ((rc = deissn_calibrator_create(&cal, s)) != DEISSN_OK)
        status = tool_fail("calibrator", rc);
    else if (!(x = malloc(o->batch * numel * sizeof *x)))
        fprintf(stderr, "deissn-calibrate: out of memory for a batch of %llu\n", o->batch);
    else
        status = 0;

    progress p = {isatty(STDERR_FILENO), tool_now(), 0, (unsigned long long)o->steps * o->samples,
                  0, 0, o->samples};
    deissn_sample_options opt = DEISSN_SAMPLE_OPTIONS_INIT;
    opt.calibrator = cal;
    opt.progress = on_step;
    opt.progress_user = &p;
    for (unsigned long long first = 0; status == 0 && first < o->samples; first += o->batch) {
        unsigned long long b = o->samples - first < o->batch ? o->samples - first : o->batch;
        int64_t shape[4] = {(int64_t)b, o->shape[0], o->shape[1], o->shape[2]};
        if ((rc = deissn_fill_noise(o->seed, first, (size_t)b, numel, x)) != DEISSN_OK ||
            (rc = deissn_sample(sampler, model, x, shape, 4, &opt)) != DEISSN_OK) {
            if (p.tty) fputc('\n', stderr);
            status = tool_fail("sampling", rc);
            break;
        }
        p.samples_done += b;
        p.steps_before += b * o->steps;
        if (!p.tty) show(&p, p.steps_before);
    }
    if (status == 0 && p.tty) fputc('\n', stderr);

    char meta[1024];
    snprintf(meta, sizeof meta, "model %s; %llu samples of shape %lld,%lld,%lld, seed %llu; "
             "DDIM, %u trailing steps; libdeissn %s", o->model, o->samples,
             (long long)o->shape[0], (long long)o->shape[1], (long long)o->shape[2], o->seed,
             o->steps, deissn_version_string());
    if (status == 0 &&
        (rc = deissn_calibrator_finish(&table, cal, o->clip, o->metadata ? o->metadata : meta)))
        status = tool_fail("making the table", rc);
    if (status == 0 && (rc = deissn_normtable_save(table, out)) != DEISSN_OK)
        status = tool_fail("saving the table", rc);
    if (status == 0)
        fprintf(stderr, "deissn-calibrate: wrote %s (%u knots from %llu samples; r %.4f at "
                "tau 1, %.4f at the last step)\n", out, o->steps, o->samples,
                deissn_normtable_eval(table, 1), deissn_normtable_eval(table, 0));
    free(x);
    deissn_normtable_free(table);
    deissn_calibrator_free(cal);
    deissn_model_free(model);
    deissn_sampler_free(sampler);
    deissn_schedule_free(s);
    return status;
}

static int merge(const options *o)
{
    if (!o->out) {
        fprintf(stderr, "deissn-calibrate: --merge needs --out\n");
        return 2;
    }
    deissn_calibrator *total = NULL;
    deissn_normtable *first = NULL, *table = NULL;
    int status = 0;
    int32_t rc;
    for (int i = 0; status == 0 && i < o->n_merge; i++) {
        deissn_normtable *t = NULL;
        deissn_calibrator *c = NULL;
        if ((rc = deissn_normtable_load(&t, o->merge[i], 0)) != DEISSN_OK)
            status = tool_fail(o->merge[i], rc);
        else if ((rc = deissn_calibrator_from_table(&c, t)) != DEISSN_OK)
            status = tool_fail(o->merge[i], rc);
        else if (total && (rc = deissn_calibrator_merge(total, c)) != DEISSN_OK)
            status = tool_fail(o->merge[i], rc);
        if (status == 0 && !total) {
            total = c;
            c = NULL;
            first = t;
            t = NULL;
        }
        deissn_calibrator_free(c);
        deissn_normtable_free(t);
    }
    deissn_normtable_info info = {0};
    if (status == 0) deissn_normtable_get_info(first, &info);
    if (status == 0 &&
        (rc = deissn_calibrator_finish(&table, total, o->has_clip ? o->clip : info.clip,
                                       o->metadata ? o->metadata :
                                       deissn_normtable_metadata(first))) != DEISSN_OK)
        status = tool_fail("making the table", rc);
    if (status == 0 && (rc = deissn_normtable_save(table, o->out)) != DEISSN_OK)
        status = tool_fail("saving the table", rc);
    if (status == 0) {
        deissn_normtable_get_info(table, &info);
        fprintf(stderr, "deissn-calibrate: merged %d tables into %s (%llu samples)\n",
                o->n_merge, o->out, (unsigned long long)info.samples);
    }
    deissn_normtable_free(table);
    deissn_normtable_free(first);
    deissn_calibrator_free(total);
    return status;
}

static int export_csv(const options *o)
{
    if (!o->out) {
        fprintf(stderr, "deissn-calibrate: --csv needs --out\n");
        return 2;
    }
    deissn_normtable *t = NULL;
    int32_t rc = deissn_normtable_load(&t, o->csv, o->clip);
    if (rc != DEISSN_OK) return tool_fail(o->csv, rc);
    rc = deissn_normtable_export_csv(t, o->out);
    deissn_normtable_free(t);
    return rc != DEISSN_OK ? tool_fail(o->out, rc) : 0;
}

int main(int argc, char **argv)
{
    tool_name = "deissn-calibrate";
    options o;
    int status;
    if (!parse_args(argc, argv, &o)) {
        usage(stderr);
        status = 2;
    } else if ((o.n_merge > 0) + (o.csv != NULL) + (o.model != NULL) != 1) {
        fprintf(stderr, "deissn-calibrate: give exactly one of --model, --merge, --csv\n");
        usage(stderr);
        status = 2;
    } else if (o.model && o.samples == 0) {
        fprintf(stderr, "deissn-calibrate: --model needs --samples\n");
        status = 2;
    } else {
        /* No output may be an input (--csv t.dsn --out t.dsn would replace the table). */
        tool_file out = {"--out", o.out ? o.out : o.model ? "table.dsn" : NULL};
        tool_check_outputs(&out, 1, &(tool_file){"--model", o.model}, 1);
        tool_check_outputs(&out, 1, &(tool_file){"--csv", o.csv}, 1);
        for (int i = 0; i < o.n_merge; i++)
            tool_check_outputs(&out, 1, &(tool_file){"--merge", o.merge[i]}, 1);
        if (out.path) tool_check_writable("--out", out.path);
        status = o.model ? calibrate(&o) : o.n_merge ? merge(&o) : export_csv(&o);
    }
    free(o.merge);
    return status;
}
