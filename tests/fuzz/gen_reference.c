/* gen_reference.c - writes the seeds of fuzz_reference into a directory (`make fuzz-seeds`
 * writes tests/fuzz/corpus/reference): small references (grid_steps 8..12, 2..4 fit
 * trajectories, samples of 2..4 values, so a few KB each) solved on the model of
 * reference_model.h, whole or as parts merged, with each prediction type; an incomplete part;
 * one without calibration sums; two truncations; and two in fuzz_reference's CRC form ('C',
 * then the bytes, whose CRC-32 the harness recomputes). The library is deterministic, so the
 * same library writes the same bytes. */
#include "reference_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static deissn_model *model;
static deissn_schedule_params noise;

static void check(int32_t rc, const char *what)
{
    if (rc == DEISSN_OK) return;
    fprintf(stderr, "gen_reference: %s: %s\n", what, deissn_last_error());
    exit(1);
}

typedef struct run {
    const char *name;
    uint32_t grid, fit, holdout, batch;
    int32_t prediction;
    uint64_t seed;
    int64_t shape[2];
    uint32_t ndim;
    uint64_t cuts[3]; /* solved as parts [0, c0), [c0, c1), ...; 0 ends the list */
} run;

static void write_file(const char *dir, const char *name, const void *prefix, size_t np,
                       const void *data, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(prefix, 1, np, f) != np || fwrite(data, 1, n, f) != n || fclose(f)) {
        fprintf(stderr, "gen_reference: cannot write %s\n", path);
        exit(1);
    }
    printf("%s: %zu bytes\n", path, np + n);
}

/* The bytes of trajectories first .. first + count - 1 (count 0: to the end) of r, solved in
 * the parts r->cuts gives within them and merged in reverse order. */
static unsigned char *solve(const run *r, uint64_t first, uint64_t count, size_t *size)
{
    deissn_tune_params tp = DEISSN_TUNE_PARAMS_INIT;
    tp.grid_steps = r->grid;
    tp.fit_samples = r->fit;
    tp.holdout_samples = r->holdout;
    tp.batch = r->batch;
    tp.prediction = r->prediction;
    tp.seed = r->seed;
    uint64_t end = count ? first + count : (uint64_t)r->fit + r->holdout, at = first;
    deissn_reference *parts[4] = {NULL, NULL, NULL, NULL}, *whole = NULL;
    size_t n = 0;
    for (int i = 0; at < end; i++) {
        uint64_t to = i < 3 && r->cuts[i] > at && r->cuts[i] < end ? r->cuts[i] : end;
        check(deissn_reference_solve(&parts[n++], model, &noise, r->shape, r->ndim, &tp, at,
                                     to - at), "solve");
        at = to;
    }
    const deissn_reference *rev[4];
    for (size_t i = 0; i < n; i++) rev[i] = parts[n - 1 - i];
    check(deissn_reference_merge(&whole, rev, n), "merge");
    check(deissn_reference_to_bytes(whole, NULL, 0, size), "size");
    unsigned char *buf = malloc(*size);
    if (!buf) exit(1);
    check(deissn_reference_to_bytes(whole, buf, *size, size), "bytes");
    deissn_reference_free(whole);
    for (size_t i = 0; i < n; i++) deissn_reference_free(parts[i]);
    return buf;
}

static void put_crc(unsigned char *buf, size_t size)
{
    uLong crc = crc32(0L, buf, (uInt)(size - 4));
    for (int i = 0; i < 4; i++) buf[size - 4 + i] = (unsigned char)(crc >> (8 * i));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_reference DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    deissn_schedule *sched = NULL;
    check(ref_model_make(&model, &sched, &noise), "model");
    static const run runs[] = {
        {"eps-s8-fit2.ref", 8, 2, 1, 4, DEISSN_PREDICT_EPSILON, 0, {2}, 1, {0}},
        {"eps-s8-fit2-batch1-merged.ref", 8, 2, 1, 1, DEISSN_PREDICT_EPSILON, 0, {2}, 1, {1}},
        {"x0-s10-fit3-2x2-merged.ref", 10, 3, 2, 2, DEISSN_PREDICT_SAMPLE, 7, {2, 2}, 2, {2}},
        {"v-s12-fit4-3parts.ref", 12, 4, 0, 3, DEISSN_PREDICT_V, 3, {3}, 1, {1, 3}},
    };
    size_t n;
    unsigned char *b;
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        b = solve(&runs[i], 0, 0, &n);
        write_file(dir, runs[i].name, "", 0, b, n);
        if (i == 0 || i == 2) { /* the CRC form */
            char name[256];
            snprintf(name, sizeof name, "crc-%.*s.bin", (int)(strlen(runs[i].name) - 4),
                     runs[i].name);
            write_file(dir, name, "C", 1, b, n);
        }
        if (i == 0) {
            write_file(dir, "truncated-header.ref", "", 0, b, 100);
            write_file(dir, "truncated-end.ref", "", 0, b, n - 1);
            /* no calibration: the sums and counts (after the header and the 5 times) zeroed */
            memset(b + 152 + 5 * 8, 0, 2 * 8 * runs[0].grid);
            put_crc(b, n);
            write_file(dir, "no-calibration.ref", "", 0, b, n);
        }
        free(b);
    }
    b = solve(&runs[2], 2, 3, &n); /* a part: trajectories 2..4 of 0..4 */
    write_file(dir, "part-x0-s10.ref", "", 0, b, n);
    free(b);
    deissn_model_free(model);
    deissn_schedule_free(sched);
    return 0;
}
