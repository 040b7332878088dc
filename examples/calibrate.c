/* deissn-calibrate - make, tune, merge and export normalization tables r(tau).
 *
 *   deissn-calibrate --model M [--nfe 3-25] [--grid-steps 400] [--fit 128] [--holdout 256]
 *                    [--batch B] [--seed S] [--shape 1,32,32] [model settings] [--out M.dsn]
 *       tunes the model (deissn_tune, docs/tuning.md): solves its ODE accurately from fit +
 *       holdout seeds, calibrates r(tau) from those evaluations, and learns for every NFE of
 *       the range the sampling plan with the lowest error on the fit seeds, measured on the
 *       holdout seeds; writes the table with the plans (deissn-sample then uses them).
 *   deissn-calibrate --model M [the tuning options] --part K/N --out part-K.dref
 *   deissn-calibrate --model M [the same options] --references part-1.dref ... --out M.dsn
 *       the same tuning across N processes or machines (docs/tuning.md): each --part run
 *       solves its share of the reference trajectories (whole batches) and writes it; the
 *       --references run merges the parts and searches. The table is the one-process run's,
 *       byte for byte.
 *   deissn-calibrate --model M --samples N [--batch B] [--steps 1000] [--seed S] [--clip C]
 *                    [--shape 1,32,32] [--threads T] [--device cpu|cuda[:N]]
 *                    [--metadata TEXT] [--out table.dsn]
 *       samples N images with 1000-step DDIM (order 0, trailing spacing, to tau = 0) and
 *       records the mean |eps| of the model at every step. Sample k's noise depends only on
 *       (seed, k), and the sums are exact integers, so --batch changes nothing that libdeissn
 *       computes (only what the model itself may round differently).
 *   deissn-calibrate --merge a.dsn b.dsn ... [--force-merge] [--clip C] [--metadata TEXT]
 *                    --out c.dsn
 *       adds up the calibration sums of tables made with the same steps (bit-exact), after
 *       checking from the record of the run in each table's metadata (docs/tables.md) that
 *       they come from the same model, shape and steps and from samples that do not overlap.
 *   deissn-calibrate --csv table.dsn|table.pt [--clip C] --out table.csv
 *       writes the knots as CSV (tau,r[,sum,count]) for plotting; --clip applies to .pt files.
 */
#include "deissn.h"
#include "tool.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* The ranges of the numeric options. */
#define MAX_SAMPLES (1ull << 40) /* so that samples * steps (the progress) cannot wrap */
#define MAX_FIRST (1ull << 62) /* first + samples cannot wrap */
#define MAX_BATCH (1u << 20)
#define MAX_STEPS 100000u
#define MAX_THREADS 1024u
#define MAX_DIM 65536        /* per dimension of --shape */
#define MAX_NUMEL (1u << 30) /* values per sample */

typedef struct {
    const char *model, *out, *device, *metadata, *csv;
    const char *run_option; /* the first option given that only a calibration run uses */
    const char *samples_option; /* the first option given that only a --samples run uses */
    const char *tune_option;    /* the first option given that only tuning uses */
    const char **merge, **refs;
    int n_merge, n_refs, has_clip, force_merge;
    unsigned part, parts;     /* --part K/N: 1 <= K <= N; 0: none */
    unsigned steps, clip, threads, nfe_min, nfe_max, grid_steps, fit, holdout;
    unsigned long long seed, samples, batch, first;
    int64_t shape[3];
    tool_model settings;
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: deissn-calibrate --model M [--nfe 3-25] [--grid-steps 400] [--fit 128]\n"
            "                        [--holdout 256] [--batch B] [--seed S] [--shape C,H,W]\n"
            "                        [model settings] [--part K/N | --references R...]\n"
            "                        [--out table.dsn]\n"
            "       deissn-calibrate --model M --samples N [--first K] [--batch B] [--steps 1000]\n"
            "                        [--seed S] [--clip C] [--shape C,H,W] [--threads T]\n"
            "                        [--device D] [--metadata TEXT] [--out table.dsn]\n"
            "       deissn-calibrate --merge a.dsn b.dsn ... [--force-merge] [--clip C]\n"
            "                        [--metadata TEXT] --out c.dsn\n"
            "       deissn-calibrate --csv table.dsn|table.pt [--clip C] --out table.csv\n"
            "  --model FILE     TorchScript model, forward(x, t). Alone: tune it (the table and\n"
            "                   the plans for --nfe; docs/tuning.md); with --samples: only\n"
            "                   calibrate r(tau) with 1000-step DDIM runs (mergeable parts)\n"
            "  --nfe A-B        the NFE range to tune (default 3-25)\n"
            "  --grid-steps N   evaluation times of the reference solves (default 400)\n"
            "  --fit N          reference trajectories that choose the plans (default 128:\n"
            "                   half search, half confirm each plan against BEST)\n"
            "  --holdout N      further trajectories that only measure them (default 256)\n"
            "  --part K/N       only solve part K of N of the reference trajectories (whole\n"
            "                   batches) and write them to --out (default part-K-of-N.dref)\n"
            "  --references R.. tune from the parts' files, merged (the same tuning options):\n"
            "                   the table of one run, byte for byte\n"
            "  --noise NAME, --train-steps T, --beta-start B, --beta-end B, --prediction NAME,\n"
            "  --time NAME      the model's settings, by the library's names (default linear,\n"
            "                   1000, epsilon, model_index); recorded in the table\n"
            "  --samples N      how many samples to average over\n"
            "  --batch B        samples per model call (default 64; does not change the result)\n"
            "  --steps N        steps of the calibration runs (default 1000)\n"
            "  --first K        the first sample's index (default 0): the run is samples\n"
            "                   K .. K+N-1, so parts made with other K can be merged\n"
            "  --seed S         noise seed (default 0)\n"
            "  --clip C         knots nearest tau = 0 set to the next one's value (default 0;\n"
            "                   --merge: the first table's)\n"
            "  --shape C,H,W    sample shape (default 1,32,32)\n"
            "  --threads T      libtorch intra-op threads (default 1; 0: libtorch's choice)\n"
            "  --device D       cpu (default), cuda, cuda:N\n"
            "  --metadata TEXT  a note stored in the table with the record of the run\n"
            "                   (docs/tables.md)\n"
            "  --force-merge    merge tables of different runs (model, shape, steps...);\n"
            "                   overlapping samples are refused all the same\n"
            "  --out FILE       output (default table.dsn; --csv: required)\n");
}

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->steps = 1000;
    o->batch = 64;
    o->threads = 1;
    o->nfe_min = 3, o->nfe_max = 25, o->grid_steps = 400, o->fit = 128, o->holdout = 256;
    o->settings = (tool_model)TOOL_MODEL_UNSET;
    o->shape[0] = 1, o->shape[1] = 32, o->shape[2] = 32;
    o->merge = calloc((size_t)argc, sizeof *o->merge);
    o->refs = calloc((size_t)argc, sizeof *o->refs);
    if (!o->merge || !o->refs) return 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--force-merge")) {
            o->force_merge = 1;
            continue;
        }
        if (!strcmp(a, "--merge") || !strcmp(a, "--references")) {
            int is_merge = a[2] == 'm', *n = is_merge ? &o->n_merge : &o->n_refs;
            const char **list = is_merge ? o->merge : o->refs;
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) list[(*n)++] = argv[++i];
            if (*n == 0) {
                fprintf(stderr, "deissn-calibrate: %s needs %s files\n", a,
                        is_merge ? "table" : "reference");
                return 0;
            }
            if (!is_merge && !o->tune_option) o->tune_option = a;
            if (!is_merge && !o->run_option) o->run_option = a;
            continue;
        }
        if (!v) {
            fprintf(stderr, "deissn-calibrate: %s needs a value\n", a);
            return 0;
        }
        i++;
        static const char *const run_only[] = {"--samples", "--first", "--batch", "--steps",
                                               "--seed", "--shape", "--threads", "--device",
                                               "--nfe", "--grid-steps", "--fit", "--holdout",
                                               "--part", "--noise", "--train-steps", "--beta-start",
                                               "--beta-end", "--prediction", "--time"};
        for (size_t k = 0; k < sizeof run_only / sizeof *run_only; k++)
            if (!o->run_option && !strcmp(a, run_only[k])) o->run_option = run_only[k];
        static const char *const samples_only[] = {"--first", "--steps", "--clip"};
        for (size_t k = 0; k < sizeof samples_only / sizeof *samples_only; k++)
            if (!o->samples_option && !strcmp(a, samples_only[k])) o->samples_option = a;
        static const char *const tune_only[] = {"--nfe", "--grid-steps", "--fit", "--holdout",
                                                "--part"};
        for (size_t k = 0; k < sizeof tune_only / sizeof *tune_only; k++)
            if (!o->tune_option && !strcmp(a, tune_only[k])) o->tune_option = a;
        if (tool_model_option(&o->settings, a, v)) continue;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--device")) o->device = v;
        else if (!strcmp(a, "--metadata")) o->metadata = v;
        else if (!strcmp(a, "--csv")) o->csv = v;
        else if (!strcmp(a, "--samples")) o->samples = tool_parse_u64(a, v, 1, MAX_SAMPLES);
        else if (!strcmp(a, "--batch")) o->batch = tool_parse_u64(a, v, 1, MAX_BATCH);
        else if (!strcmp(a, "--seed")) o->seed = tool_parse_u64(a, v, 0, UINT64_MAX);
        else if (!strcmp(a, "--first")) o->first = tool_parse_u64(a, v, 0, MAX_FIRST);
        else if (!strcmp(a, "--steps")) o->steps = (unsigned)tool_parse_u64(a, v, 2, MAX_STEPS);
        else if (!strcmp(a, "--clip")) {
            o->clip = (unsigned)tool_parse_u64(a, v, 0, MAX_STEPS - 1);
            o->has_clip = 1;
        } else if (!strcmp(a, "--threads"))
            o->threads = (unsigned)tool_parse_u64(a, v, 0, MAX_THREADS);
        else if (!strcmp(a, "--shape")) tool_parse_shape(a, v, MAX_DIM, MAX_NUMEL, o->shape);
        else if (!strcmp(a, "--grid-steps"))
            o->grid_steps = (unsigned)tool_parse_u64(a, v, 8, MAX_STEPS);
        else if (!strcmp(a, "--fit")) o->fit = (unsigned)tool_parse_u64(a, v, 1, 1u << 20);
        else if (!strcmp(a, "--holdout")) o->holdout = (unsigned)tool_parse_u64(a, v, 0, 1u << 20);
        else if (!strcmp(a, "--part")) {
            const char *slash = strchr(v, '/');
            char k[32];
            if (!slash || (size_t)(slash - v) >= sizeof k)
                tool_die(2, "--part: '%s' is not K/N (part K of N, 1 <= K <= N)", v);
            memcpy(k, v, (size_t)(slash - v));
            k[slash - v] = '\0';
            o->parts = (unsigned)tool_parse_u64("--part (of N)", slash + 1, 1, 1u << 20);
            o->part = (unsigned)tool_parse_u64("--part (K)", k, 1, o->parts);
        }
        else if (!strcmp(a, "--nfe")) {
            const char *dash = strchr(v, '-');
            char lo[32];
            if (!dash || (size_t)(dash - v) >= sizeof lo)
                tool_die(2, "--nfe: '%s' is not a range A-B", v);
            memcpy(lo, v, (size_t)(dash - v));
            lo[dash - v] = '\0';
            o->nfe_min = (unsigned)tool_parse_u64("--nfe (from)", lo, 2, DEISSN_PLAN_MAX_NFE);
            o->nfe_max = (unsigned)tool_parse_u64("--nfe (to)", dash + 1, o->nfe_min,
                                                  DEISSN_PLAN_MAX_NFE);
        }
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

/* ---- the record of the run, in the table's metadata (docs/tables.md) ----------------------
 *
 * "key=value" lines, the first "deissn-calibration=1". Values are escaped ("\\" and "\n")
 * so that a path or a note cannot start a line of its own. The keys of IDENTITY must be the
 * same in tables that --merge adds up; "samples" lists the samples a table holds as
 * SEED:FIRST-END ranges (END exclusive), which must not overlap. */

static const char *const identity[] = {"model_bytes", "model_crc32", "shape", "noise_fingerprint",
                                       "spacing", "sampler", "steps"};
#define N_IDENTITY (sizeof identity / sizeof *identity)

typedef struct {
    char text[DEISSN_NORMTABLE_METADATA_MAX + 1];
    size_t len;
    int full; /* something did not fit */
} record;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void record_add(record *r, const char *key, const char *fmt, ...)
{
    char *p = r->text + r->len;
    size_t cap = sizeof r->text - r->len;
    int k = snprintf(p, cap, "%s=", key), v = -1;
    if (k >= 0 && (size_t)k < cap) {
        va_list ap;
        va_start(ap, fmt);
        v = vsnprintf(p + k, cap - (size_t)k, fmt, ap);
        va_end(ap);
    }
    if (v < 0 || (size_t)k + (size_t)v + 1 >= cap) {
        r->full = 1;
        p[0] = '\0';
        return;
    }
    p[k + v] = '\n';
    p[k + v + 1] = '\0';
    r->len += (size_t)k + (size_t)v + 1;
}

/* key=value with value escaped: "\\" and "\n", and "\xHH" for each byte that is not UTF-8
 * (table metadata must be UTF-8; a path need not be). */
static void record_add_escaped(record *r, const char *key, const char *value)
{
    size_t cap = sizeof r->text - r->len, k = strlen(key);
    char *p = r->text + r->len;
    if (k + 2 > cap) {
        r->full = 1;
        return;
    }
    memcpy(p, key, k);
    p[k++] = '=';
    for (const unsigned char *v = (const unsigned char *)value; *v && !r->full;) {
        int n = tool_utf8_len(v);
        if (k + 6 > cap) r->full = 1; /* the longest escape, "\n" and the NUL must fit */
        else if (*v == '\\' || *v == '\n') p[k++] = '\\', p[k++] = *v == '\n' ? 'n' : '\\';
        else if (n == 0) k += (size_t)sprintf(p + k, "\\x%02x", *v);
        else memcpy(p + k, v, (size_t)n), k += (size_t)n;
        v += n ? n : 1;
    }
    if (r->full) {
        p[0] = '\0';
        return;
    }
    p[k++] = '\n';
    p[k] = '\0';
    r->len += k;
}


/* Samples SEED:FIRST-END of one table; `part` is the index of its file. */
typedef struct {
    unsigned long long seed, first, end;
    int part;
} range;

/* Append the ranges of "samples" in `meta` to *rs (capacity grows); -1 if malformed. */
static int parse_ranges(const char *meta, int part, range **rs, size_t *n, size_t *cap)
{
    char v[DEISSN_NORMTABLE_METADATA_MAX + 1];
    if (!tool_record_get(meta, "samples", v, sizeof v)) return -1;
    for (char *p = v; *p;) {
        range r = {0, 0, 0, part};
        char *end;
        int used = 0;
        if (sscanf(p, "%llu:%llu-%llu%n", &r.seed, &r.first, &r.end, &used) != 3 ||
            r.first >= r.end)
            return -1;
        end = p + used;
        if (*end != ',' && *end != '\0') return -1;
        if (*n == *cap) {
            size_t c = *cap ? 2 * *cap : 16;
            range *grown = realloc(*rs, c * sizeof *grown);
            if (!grown) tool_die(1, "out of memory");
            *rs = grown;
            *cap = c;
        }
        (*rs)[(*n)++] = r;
        p = *end ? end + 1 : end;
    }
    return 0;
}

static int range_order(const void *a, const void *b)
{
    const range *x = a, *y = b;
    if (x->seed != y->seed) return x->seed < y->seed ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* Sort rs; exit with a message naming both files if two ranges overlap; add the union (touching
 * ranges joined) to the record as "samples". */
static void merge_ranges(range *rs, size_t n, const char *const *files, record *out)
{
    qsort(rs, n, sizeof *rs, range_order);
    for (size_t i = 1; i < n; i++)
        if (rs[i].seed == rs[i - 1].seed && rs[i].first < rs[i - 1].end)
            tool_die(1, "--merge: %s and %s hold the same samples (seed %llu, samples %llu-%llu "
                     "and %llu-%llu); each sample may be counted once", files[rs[i - 1].part],
                     files[rs[i].part], rs[i].seed, rs[i - 1].first, rs[i - 1].end - 1,
                     rs[i].first, rs[i].end - 1);
    char text[DEISSN_NORMTABLE_METADATA_MAX + 1];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned long long end = rs[i].end;
        size_t j = i;
        while (j + 1 < n && rs[j + 1].seed == rs[i].seed && rs[j + 1].first == end)
            end = rs[++j].end;
        int w = snprintf(text + len, sizeof text - len, "%s%llu:%llu-%llu", len ? "," : "",
                         rs[i].seed, rs[i].first, end);
        if (w < 0 || (size_t)w >= sizeof text - len) tool_die(1, "--merge: too many sample ranges");
        len += (size_t)w;
        i = j;
    }
    record_add(out, "samples", "%s", text);
}

/* The size and CRC-32 of the file at path (the model's fingerprint); 0 on success. */
static int file_fingerprint(const char *path, unsigned long long *size, uint32_t *crc)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    unsigned char buf[1 << 16];
    uLong c = crc32(0L, Z_NULL, 0);
    size_t got;
    *size = 0;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        c = crc32(c, buf, (uInt)got);
        *size += got;
    }
    int bad = ferror(f);
    fclose(f);
    *crc = (uint32_t)c;
    return bad ? -1 : 0;
}

/* ---- the three modes --------------------------------------------------------------------- */

/* The record lines every run writes: the model file, the shape, the model's settings. */
static int record_model(record *meta, const options *o, const deissn_schedule_params *sp)
{
    unsigned long long model_bytes = 0;
    uint32_t model_crc = 0;
    if (file_fingerprint(o->model, &model_bytes, &model_crc) != 0) {
        fprintf(stderr, "deissn-calibrate: --model %s: cannot read it for its fingerprint: %s\n",
                o->model, strerror(errno));
        return 1;
    }
    deissn_schedule *s = NULL;
    deissn_schedule_create(&s, sp);
    record_add(meta, "deissn-calibration", "1");
    record_add_escaped(meta, "model", o->model);
    record_add(meta, "model_bytes", "%llu", model_bytes);
    record_add(meta, "model_crc32", "%08x", (unsigned)model_crc);
    record_add(meta, "shape", "%lld,%lld,%lld", (long long)o->shape[0], (long long)o->shape[1],
               (long long)o->shape[2]);
    record_add(meta, "noise_fingerprint", "%08x", s ? (unsigned)deissn_schedule_fingerprint(s) : 0u);
    deissn_schedule_free(s);
    const tool_model *m = &o->settings;
    record_add(meta, "noise", "%s", deissn_enum_name(DEISSN_ENUM_NOISE, m->noise));
    record_add(meta, "train_steps", "%u", m->train_steps);
    if (m->beta_start > 0) record_add(meta, "beta_start", "%.17g", m->beta_start);
    if (m->beta_end > 0) record_add(meta, "beta_end", "%.17g", m->beta_end);
    record_add(meta, "prediction", "%s", deissn_enum_name(DEISSN_ENUM_PREDICTION, m->prediction));
    record_add(meta, "time", "%s", deissn_enum_name(DEISSN_ENUM_TIME, m->time));
    return 0;
}

typedef struct {
    double start, last;
    int tty;
    unsigned nfe;         /* 0: solving the reference; else the NFE being searched */
    double search_start;
    unsigned steps_done, steps_all; /* the search's sampling steps (sum of NFEs) */
    double seconds[DEISSN_PLAN_MAX_NFE + 1]; /* search time per NFE (index NFE) */
} tune_progress;

/* The solve's progress is the library's; the search's is this tool's: one NFE at a time, the
 * library's progress within it, and the time per sampling step of the NFEs done (a step of
 * any NFE costs about the same). */
static int on_tune(void *user, uint32_t done, uint32_t total)
{
    tune_progress *p = user;
    double now = tool_now();
    if (done != total && now - p->last < (p->tty ? 0.2 : 10.0)) return 0;
    p->last = now;
    double el = now - p->start, frac = total ? (double)done / total : 1;
    if (!p->nfe) {
        fprintf(stderr, p->tty ? "\rreference: %u/%u (%.0f%%) %.0f s, ETA %.0f s   "
                : "reference: %u/%u (%.0f%%) %.0f s, ETA %.0f s\n", done, total, 100 * frac, el,
                frac > 0 ? el * (1 - frac) / frac : 0);
        return 0;
    }
    double f = (p->steps_done + frac * p->nfe) / p->steps_all, sel = now - p->search_start;
    fprintf(stderr, p->tty ? "\rsearch: NFE %u, %.0f%% %.0f s, ETA %.0f s   "
            : "search: NFE %u, %.0f%% %.0f s, ETA %.0f s\n", p->nfe, 100 * f, el,
            f > 0 ? sel * (1 - f) / f : 0);
    return 0;
}

/* --part K/N: solve whole batches K-1 .. of N equal shares, write the reference's bytes. */
static int solve_part(const options *o, deissn_model *model, const deissn_schedule_params *sp,
                      const deissn_tune_params *tp, const tune_progress *prog)
{
    uint64_t total = (uint64_t)o->fit + o->holdout, batches = (total + o->batch - 1) / o->batch;
    uint64_t first = batches * (o->part - 1) / o->parts * o->batch;
    uint64_t last = batches * o->part / o->parts * o->batch;
    if (last > total) last = total;
    if (last <= first)
        tool_die(2, "--part %u/%u: the run's %llu batches of %llu leave this part none", o->part,
                 o->parts, (unsigned long long)batches, o->batch);
    char name[64];
    snprintf(name, sizeof name, "part-%u-of-%u.dref", o->part, o->parts);
    const char *out = o->out ? o->out : name;
    deissn_reference *ref = NULL;
    int32_t rc = deissn_reference_solve(&ref, model, sp, o->shape, 3, tp, first, last - first);
    if (rc != DEISSN_OK) return tool_fail(prog->tty ? "\nsolving the part" : "solving the part", rc);
    size_t n = 0;
    deissn_reference_to_bytes(ref, NULL, 0, &n);
    unsigned char *bytes = malloc(n ? n : 1);
    if (!bytes) tool_die(1, "out of memory for %zu bytes", n);
    rc = deissn_reference_to_bytes(ref, bytes, n, &n);
    deissn_reference_free(ref);
    if (rc != DEISSN_OK) return tool_fail("serialising the part", rc);
    tool_write_file("--out", out, bytes, n);
    free(bytes);
    if (prog->tty) fputc('\n', stderr);
    fprintf(stderr, "deissn-calibrate: wrote %s in %.0f s: reference trajectories %llu..%llu of "
            "%llu (%zu bytes)\n", out, tool_now() - prog->start, (unsigned long long)first,
            (unsigned long long)last - 1, (unsigned long long)total, n);
    return 0;
}

/* --references: the parts' files, merged. */
static int32_t read_references(const options *o, deissn_reference **out)
{
    deissn_reference **parts = calloc((size_t)o->n_refs, sizeof *parts);
    if (!parts) tool_die(1, "out of memory");
    int32_t rc = DEISSN_OK;
    for (int i = 0; i < o->n_refs && rc == DEISSN_OK; i++) {
        size_t n;
        unsigned char *bytes = tool_read_file("--references", o->refs[i], &n);
        rc = deissn_reference_from_bytes(&parts[i], bytes, n);
        free(bytes);
        if (rc != DEISSN_OK)
            fprintf(stderr, "deissn-calibrate: --references %s: %s\n", o->refs[i],
                    deissn_last_error());
    }
    if (rc == DEISSN_OK)
        rc = deissn_reference_merge(out, (const deissn_reference *const *)parts,
                                    (size_t)o->n_refs);
    for (int i = 0; i < o->n_refs; i++) deissn_reference_free(parts[i]);
    free(parts);
    return rc;
}

static int tune(const options *o)
{
    const char *out = o->out ? o->out : "table.dsn";
    deissn_schedule_params sp = DEISSN_SCHEDULE_PARAMS_INIT;
    deissn_model_params mp = DEISSN_MODEL_PARAMS_INIT;
    deissn_tune_params tp = DEISSN_TUNE_PARAMS_INIT;
    tool_model_apply(&o->settings, &sp, NULL, &mp);
    mp.device = o->device;
    mp.num_threads = (int32_t)o->threads;
    tp.nfe_min = o->nfe_min;
    tp.nfe_max = o->nfe_max;
    tp.grid_steps = o->grid_steps;
    tp.fit_samples = o->fit;
    tp.holdout_samples = o->holdout;
    tp.batch = (uint32_t)o->batch;
    tp.seed = o->seed;
    tp.prediction = o->settings.prediction;
    double t0 = tool_now();
    tune_progress prog = {t0, 0, isatty(STDERR_FILENO), 0, 0, 0, 0, {0}};
    for (unsigned n = o->nfe_min; n <= o->nfe_max; n++) prog.steps_all += n;
    tp.progress = on_tune;
    tp.progress_user = &prog;

    static record meta; /* 64 KiB */
    if (record_model(&meta, o, &sp)) return 1;
    record_add(&meta, "spacing", "tune-grid");
    record_add(&meta, "sampler", "deis3");
    record_add(&meta, "steps", "%u", o->grid_steps);
    record_add(&meta, "samples", "%llu:0-%llu", o->seed, (unsigned long long)o->fit + o->holdout);
    record_add(&meta, "sample_count", "%llu", (unsigned long long)o->fit + o->holdout);
    record_add(&meta, "clip", "0");
    record_add(&meta, "tuned_nfe", "%u-%u", o->nfe_min, o->nfe_max);
    record_add(&meta, "tuned_fit", "%u", o->fit);
    record_add(&meta, "libdeissn", "%s", deissn_version_string());
    if (o->metadata) record_add_escaped(&meta, "note", o->metadata);
    if (meta.full) tool_die(2, "--metadata: the record and the note do not fit in a table");

    deissn_model *model = NULL;
    deissn_normtable *tuned = NULL, *table = NULL;
    int32_t rc;
    int status = 1;
    if ((rc = deissn_model_load(&model, o->model, &mp)) != DEISSN_OK)
        return tool_fail("loading the model", rc);
    if (o->part) {
        status = solve_part(o, model, &sp, &tp, &prog);
        deissn_model_free(model);
        return status;
    }
    /* The reference, then the search one NFE at a time (each NFE's search is independent of
     * the others', so the plans are deissn_tune()'s) to time each; the table is the first
     * search's (the reference's calibration) with every NFE's plan. */
    deissn_reference *ref = NULL;
    deissn_plan *plans = calloc(o->nfe_max - o->nfe_min + 1, sizeof *plans);
    if (!plans) tool_die(1, "out of memory");
    if (o->n_refs && (rc = read_references(o, &ref)) != DEISSN_OK)
        status = tool_fail("merging the references", rc);
    else if (!ref && (rc = deissn_reference_solve(&ref, model, &sp, o->shape, 3, &tp, 0, 0)))
        status = tool_fail(prog.tty ? "\nsolving the reference" : "solving the reference", rc);
    prog.search_start = tool_now();
    for (unsigned n = o->nfe_min; ref && !rc && n <= o->nfe_max; n++) {
        deissn_tune_params one = tp;
        one.nfe_min = one.nfe_max = n;
        prog.nfe = n;
        double t = tool_now();
        deissn_normtable *got = NULL;
        rc = deissn_tune_reference(&got, model, &sp, NULL, ref, &one);
        if (rc) {
            status = tool_fail(prog.tty ? "\ntuning" : "tuning", rc);
            break;
        }
        prog.seconds[n] = tool_now() - t;
        prog.steps_done += n;
        plans[n - o->nfe_min] = (deissn_plan)DEISSN_PLAN_INIT;
        deissn_normtable_plan(got, 0, &plans[n - o->nfe_min]);
        if (!tuned) tuned = got;
        else deissn_normtable_free(got);
    }
    if (rc == DEISSN_OK) {
        deissn_normtable_params label = {.version = DEISSN_NORMTABLE_PARAMS_VERSION,
                                         .metadata = meta.text, .plans = plans,
                                         .n_plans = o->nfe_max - o->nfe_min + 1};
        if ((rc = deissn_normtable_copy(&table, tuned, &label)) != DEISSN_OK)
            status = tool_fail("labelling the table", rc);
        else if ((rc = deissn_normtable_save(table, out)) != DEISSN_OK)
            status = tool_fail("saving the table", rc);
        else
            status = 0;
    }
    if (status == 0) {
        if (prog.tty) fputc('\n', stderr);
        fprintf(stderr, "deissn-calibrate: wrote %s in %.0f s: r(tau) from %u reference solves, "
                "plans for NFE %u-%u (held-out RMSE on %u samples; BEST's on the same; the "
                "search's time per NFE):\n", out, tool_now() - prog.start, o->fit + o->holdout,
                o->nfe_min, o->nfe_max, o->holdout);
        for (size_t i = 0; i < deissn_normtable_plan_count(table); i++) {
            deissn_plan pl = DEISSN_PLAN_INIT;
            deissn_normtable_plan(table, i, &pl);
            char order[32] = "weights    "; /* a learned plan has weights, not an order */
            if (pl.method != DEISSN_METHOD_LEARNED)
                snprintf(order, sizeof order, "order %u%s", pl.order,
                         pl.lower_order_final ? " lof" : "    ");
            fprintf(stderr, "  NFE %2u  %-12s %s, tau_end %-6g RMSE %-7.4g [%.4g, %.4g]  "
                    "BEST %-7.4g (%.3gx)  %.1f s\n", pl.nfe,
                    pl.method == DEISSN_METHOD_LEARNED ? "learned"
                    : pl.method == DEISSN_METHOD_DATA  ? (pl.corrector ? "x0-corrector" : "x0")
                    : pl.uses_table                    ? "deis-sn"
                                                       : "deis",
                    order, pl.tau_end, pl.error,
                    pl.error_low, pl.error_high, pl.best_error,
                    pl.best_error > 0 ? pl.error / pl.best_error : 0.0,
                    pl.nfe <= DEISSN_PLAN_MAX_NFE ? prog.seconds[pl.nfe] : 0.0);
        }
    }
    free(plans);
    deissn_reference_free(ref);
    deissn_normtable_free(table);
    deissn_normtable_free(tuned);
    deissn_model_free(model);
    return status;
}

static int calibrate(const options *o)
{
    const char *out = o->out ? o->out : "table.dsn";
    deissn_schedule_params sp = DEISSN_SCHEDULE_PARAMS_INIT;
    sp.spacing = DEISSN_SPACING_TRAILING;
    sp.steps = o->steps;
    deissn_sampler_params pp = DEISSN_SAMPLER_PARAMS_INIT;
    pp.order = 0; /* DDIM: the eps the model gives along the ODE, nothing extrapolated */
    deissn_model_params mp = DEISSN_MODEL_PARAMS_INIT;
    tool_model_apply(&o->settings, &sp, &pp, &mp);
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
    else if ((rc = deissn_schedule_create(&s, &sp)) != DEISSN_OK)
        status = tool_fail("schedule", rc);
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
        if ((rc = deissn_fill_noise(o->seed, o->first + first, (size_t)b, numel, x)) != DEISSN_OK ||
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

    static record meta; /* 64 KiB */
    if (status == 0 && record_model(&meta, o, &sp)) status = 1;
    record_add(&meta, "spacing", "trailing");
    record_add(&meta, "sampler", "ddim");
    record_add(&meta, "steps", "%u", o->steps);
    record_add(&meta, "samples", "%llu:%llu-%llu", o->seed, o->first, o->first + o->samples);
    record_add(&meta, "sample_count", "%llu", o->samples);
    record_add(&meta, "clip", "%u", o->clip);
    record_add(&meta, "libdeissn", "%s", deissn_version_string());
    if (o->metadata) record_add_escaped(&meta, "note", o->metadata);
    if (status == 0 && meta.full) {
        fprintf(stderr, "deissn-calibrate: --metadata: the record of the run and the note do not "
                        "fit in the %d bytes a table's metadata holds\n",
                DEISSN_NORMTABLE_METADATA_MAX);
        status = 2;
    }
    if (status == 0 &&
        (rc = deissn_calibrator_finish(&table, cal, &(deissn_normtable_params){.version = DEISSN_NORMTABLE_PARAMS_VERSION, .clip = o->clip, .metadata = meta.text})))
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

/* Exit unless the tables `files` are parts of one run (or --force-merge), and the samples
 * they hold are disjoint; put the merged run's record (without clip and sample_count, which
 * the caller adds) into *out. */
static void check_parts(const options *o, deissn_normtable *const *parts, record *out)
{
    const char *const *files = o->merge;
    for (int i = 0; i < o->n_merge; i++)
        for (int j = 0; j < i; j++)
            if (tool_same_file(files[i], files[j]))
                tool_die(1, "--merge: %s and %s are the same file; each part may be counted once",
                         files[j], files[i]);
    char first[DEISSN_NORMTABLE_METADATA_MAX + 1], value[DEISSN_NORMTABLE_METADATA_MAX + 1];
    const char *meta0 = deissn_normtable_metadata(parts[0]);
    record_add(out, "deissn-calibration", "1");
    if (tool_record_get(meta0, "model", value, sizeof value)) record_add(out, "model", "%s", value);
    int recorded = 1;
    for (int i = 0; i < o->n_merge; i++)
        if (!tool_record_get(deissn_normtable_metadata(parts[i]), "samples", value, sizeof value)) {
            if (!o->force_merge)
                tool_die(1, "--merge: %s has no record of the run that made it (an older "
                         "deissn-calibrate, or another program, made it), so it cannot be "
                         "checked; --force-merge merges it anyway", files[i]);
            recorded = 0;
        }
    for (size_t k = 0; k < N_IDENTITY; k++) {
        int have0 = tool_record_get(meta0, identity[k], first, sizeof first), mixed = !have0;
        for (int i = 1; i < o->n_merge; i++) {
            const char *meta = deissn_normtable_metadata(parts[i]);
            int have = tool_record_get(meta, identity[k], value, sizeof value);
            if (have0 && have && !strcmp(first, value)) continue;
            if (!o->force_merge)
                tool_die(1, "--merge: %s and %s are from different runs: %s is %s in %s and %s in "
                         "%s (--force-merge merges them anyway)", files[0], files[i], identity[k],
                         have0 ? first : "(none)", files[0], have ? value : "(none)", files[i]);
            mixed = 1;
        }
        record_add(out, identity[k], "%s", mixed ? "mixed" : first);
    }
    range *rs = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; recorded && i < o->n_merge; i++)
        if (parse_ranges(deissn_normtable_metadata(parts[i]), i, &rs, &n, &cap) != 0)
            tool_die(1, "--merge: %s: its record's samples= line is malformed", files[i]);
    if (recorded) merge_ranges(rs, n, files, out);
    free(rs);
}

static int merge(const options *o)
{
    if (!o->out) {
        fprintf(stderr, "deissn-calibrate: --merge needs --out\n");
        return 2;
    }
    deissn_normtable **parts = calloc((size_t)o->n_merge, sizeof *parts);
    deissn_calibrator *total = NULL;
    deissn_normtable *table = NULL;
    int status = parts ? 0 : 1;
    int32_t rc;
    for (int i = 0; status == 0 && i < o->n_merge; i++)
        if ((rc = deissn_normtable_load(&parts[i], o->merge[i], NULL)) != DEISSN_OK)
            status = tool_fail(o->merge[i], rc);
    static record meta; /* 64 KiB */
    if (status == 0) check_parts(o, parts, &meta);
    for (int i = 0; status == 0 && i < o->n_merge; i++) {
        deissn_calibrator *c = NULL;
        if ((rc = deissn_calibrator_from_table(&c, parts[i])) != DEISSN_OK)
            status = tool_fail(o->merge[i], rc);
        else if (total && (rc = deissn_calibrator_merge(total, c)) != DEISSN_OK)
            status = tool_fail(o->merge[i], rc);
        if (status == 0 && !total) {
            total = c;
            c = NULL;
        }
        deissn_calibrator_free(c);
    }
    deissn_normtable_info info = DEISSN_NORMTABLE_INFO_INIT;
    if (status == 0) {
        unsigned long long samples = 0;
        for (int i = o->n_merge - 1; i >= 0; i--) {
            deissn_normtable_get_info(parts[i], &info);
            samples += info.samples;
        }
        unsigned clip = o->has_clip ? o->clip : info.clip; /* the first table's */
        record_add(&meta, "sample_count", "%llu", samples);
        record_add(&meta, "clip", "%u", clip);
        record_add(&meta, "libdeissn", "%s", deissn_version_string());
        record_add(&meta, "merged_from", "%d", o->n_merge);
        if (o->metadata) record_add_escaped(&meta, "note", o->metadata);
        if (meta.full) {
            fprintf(stderr, "deissn-calibrate: --merge: the merged record does not fit in the %d "
                            "bytes a table's metadata holds\n", DEISSN_NORMTABLE_METADATA_MAX);
            status = 1;
        } else if ((rc = deissn_calibrator_finish(&table, total, &(deissn_normtable_params){.version = DEISSN_NORMTABLE_PARAMS_VERSION, .clip = clip, .metadata = meta.text})) != DEISSN_OK)
            status = tool_fail("making the table", rc);
    }
    if (status == 0 && (rc = deissn_normtable_save(table, o->out)) != DEISSN_OK)
        status = tool_fail("saving the table", rc);
    if (status == 0) {
        deissn_normtable_get_info(table, &info);
        fprintf(stderr, "deissn-calibrate: merged %d tables into %s (%llu samples)\n",
                o->n_merge, o->out, (unsigned long long)info.samples);
    }
    deissn_normtable_free(table);
    for (int i = 0; parts && i < o->n_merge; i++) deissn_normtable_free(parts[i]);
    free(parts);
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
    int32_t rc = deissn_normtable_load(&t, o->csv, &(deissn_normtable_params){.version = DEISSN_NORMTABLE_PARAMS_VERSION, .clip = o->clip, .metadata = NULL});
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
    } else if (o.model && o.samples == 0 && o.samples_option) {
        fprintf(stderr, "deissn-calibrate: %s applies to a --samples run, not to tuning\n",
                o.samples_option);
        status = 2;
    } else if (o.model && o.samples > 0 && o.tune_option) {
        fprintf(stderr, "deissn-calibrate: %s applies to tuning (--model without --samples)\n",
                o.tune_option);
        status = 2;
    } else if (!o.model && o.run_option) { /* options that would be silently ignored */
        fprintf(stderr, "deissn-calibrate: %s applies to a calibration run (--model), not to "
                        "%s\n", o.run_option, o.csv ? "--csv" : "--merge");
        status = 2;
    } else if (o.part && o.n_refs) {
        fprintf(stderr, "deissn-calibrate: --part solves a part, --references tunes from the "
                        "parts: give one of them\n");
        status = 2;
    } else if (!o.n_merge && o.force_merge) {
        fprintf(stderr, "deissn-calibrate: --force-merge applies to --merge only\n");
        status = 2;
    } else if (o.csv && o.metadata) {
        fprintf(stderr, "deissn-calibrate: --metadata does not apply to --csv (CSV has none)\n");
        status = 2;
    } else {
        /* No output may be an input (--csv t.dsn --out t.dsn would replace the table). */
        tool_file out = {"--out", o.out ? o.out : o.model && !o.part ? "table.dsn" : NULL};
        tool_check_outputs(&out, 1, &(tool_file){"--model", o.model}, 1);
        tool_check_outputs(&out, 1, &(tool_file){"--csv", o.csv}, 1);
        for (int i = 0; i < o.n_merge; i++)
            tool_check_outputs(&out, 1, &(tool_file){"--merge", o.merge[i]}, 1);
        for (int i = 0; i < o.n_refs; i++)
            tool_check_outputs(&out, 1, &(tool_file){"--references", o.refs[i]}, 1);
        if (out.path) tool_check_writable("--out", out.path);
        if (o.model) tool_model_defaults(&o.settings);
        status = o.model ? (o.samples ? calibrate(&o) : tune(&o)) : o.n_merge ? merge(&o)
                                                                            : export_csv(&o);
    }
    free(o.merge);
    free(o.refs);
    return status;
}
