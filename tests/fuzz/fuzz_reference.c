/* fuzz_reference.c - libFuzzer target for the tuning reference's bytes
 * (deissn_reference_from_bytes, lib/tune/reference.c; docs/reference-format.md).
 *
 * `make fuzz` builds it and `make fuzz-run` runs it on the seeds in
 * tests/fuzz/corpus/reference (written by gen_reference.c, `make fuzz-seeds`).
 *
 * The reader checks a CRC-32, which mutations almost never keep, so an input whose first
 * byte is 'C' is read as the bytes that follow with their last 4 replaced by the CRC-32 of
 * the others: that reaches the checks on the header's fields and the values. Any other input
 * is read as it is.
 *
 * Beyond not crashing, it checks the contract. A refusal is a negative status, *out NULL and
 * a new message from the reader. An accepted reference answers deissn_reference_range() with
 * a range inside its run; gives back exactly its input bytes (the format is canonical: every
 * header field is checked or kept, unused shape slots must be 0, values are kept bit for bit)
 * and tells their size; merged with itself is refused (DEISSN_E_MISMATCH: overlapping
 * trajectories), merged alone is the same bytes; and deissn_tune_reference() on it, for NFE
 * 2..3 with the run's own params on the seeds' model and noise schedule, succeeds with one
 * valid plan per NFE or fails with a negative status other than DEISSN_E_INTERNAL and a new
 * message (most mutations fail fast there: another grid, schedule or an incomplete range). */
#include "reference_model.h"
#include "tune/reference.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static deissn_model *model;
static deissn_schedule *sched;
static deissn_schedule_params noise;

/* A known message in deissn_last_error() (a copy: the library reuses its buffer), so that a
 * failing call is seen to set its own. */
static const char *mark_error(void)
{
    static char mark[256];
    deissn_reference_range(NULL, NULL, NULL, NULL);
    strncpy(mark, deissn_last_error(), sizeof mark - 1);
    return mark;
}

static int new_error(const char *mark, const char *prefix)
{
    const char *e = deissn_last_error();
    return e[0] && strcmp(e, mark) && (!prefix || !strncmp(e, prefix, strlen(prefix)));
}

static void check_bytes(const deissn_reference *ref, const uint8_t *want, size_t n)
{
    size_t size = 0;
    uint8_t *back = malloc(n);
    if (!back || deissn_reference_to_bytes(ref, NULL, 0, &size) || size != n ||
        deissn_reference_to_bytes(ref, back, n - 1, &size) != DEISSN_E_SIZE ||
        deissn_reference_to_bytes(ref, back, n, &size) || size != n || memcmp(back, want, n))
        abort();
    free(back);
}

static void check_tune(const deissn_reference *ref)
{
    deissn_tune_params tp = DEISSN_TUNE_PARAMS_INIT;
    tp.nfe_min = 2;
    tp.nfe_max = 3;
    tp.grid_steps = ref->run.grid_steps;
    tp.fit_samples = ref->run.fit;
    tp.holdout_samples = ref->run.holdout;
    tp.batch = ref->run.batch;
    tp.seed = ref->run.seed;
    tp.prediction = ref->run.prediction;
    const char *mark = mark_error();
    deissn_normtable *t = (deissn_normtable *)&t;
    int32_t rc = deissn_tune_reference(&t, model, &noise, NULL, ref, &tp);
    if (rc != DEISSN_OK) {
        if (rc >= 0 || rc == DEISSN_E_INTERNAL || t != NULL || !new_error(mark, NULL)) abort();
        return;
    }
    if (!t || deissn_normtable_plan_count(t) != 2) abort();
    for (size_t i = 0; i < 2; i++) {
        deissn_plan plan = DEISSN_PLAN_INIT;
        if (deissn_normtable_plan(t, i, &plan) || plan.nfe != 2 + i) abort();
    }
    deissn_normtable_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!model && ref_model_make(&model, &sched, &noise)) abort();
    const uint8_t *in = data;
    uint8_t *copy = NULL;
    if (size > 0 && data[0] == 'C') {
        size--;
        copy = malloc(size ? size : 1);
        if (!copy) abort();
        memcpy(copy, data + 1, size);
        if (size >= 4) {
            uLong crc = crc32(0L, copy, (uInt)(size - 4));
            for (int i = 0; i < 4; i++) copy[size - 4 + i] = (uint8_t)(crc >> (8 * i));
        }
        in = copy;
    }
    const char *mark = mark_error();
    deissn_reference *ref = (deissn_reference *)&ref;
    int32_t rc = deissn_reference_from_bytes(&ref, in, size);
    if (rc != DEISSN_OK) {
        if (rc >= 0 || ref != NULL || !new_error(mark, "deissn_reference_from_bytes")) abort();
        free(copy);
        return 0;
    }
    uint64_t first = 0, count = 0, total = 0;
    if (!ref || deissn_reference_range(ref, &first, &count, &total) || count < 1 ||
        first >= total || count > total - first)
        abort();
    check_bytes(ref, in, size);

    const deissn_reference *parts[2] = {ref, ref};
    deissn_reference *merged = (deissn_reference *)&merged;
    mark = mark_error();
    if (deissn_reference_merge(&merged, parts, 2) != DEISSN_E_MISMATCH || merged != NULL ||
        !new_error(mark, "deissn_reference_merge"))
        abort();
    if (deissn_reference_merge(&merged, parts, 1) || !merged) abort();
    check_bytes(merged, in, size);
    deissn_reference_free(merged);

    static int tune = -1;
    if (tune < 0) tune = getenv("FUZZ_REFERENCE_TUNE") && atoi(getenv("FUZZ_REFERENCE_TUNE")) > 0;
    if (tune) check_tune(ref);
    deissn_reference_free(ref);
    free(copy);
    return 0;
}
