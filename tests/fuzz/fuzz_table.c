/* fuzz_table.c - libFuzzer target for the native table reader (lib/tablefile.c).
 *
 * `make fuzz` builds it (with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, which lets the fuzzer
 * past the CRC-32 checks) and `make fuzz-run` runs it on the seeds in tests/fuzz/corpus/table.
 *
 * Mutations of a deflate stream rarely inflate, so an input whose first byte is 'P' is
 * read as a header template (44 bytes) followed by an uncompressed payload, which is
 * compressed here and its lengths patched in: that reaches the checks on the payload's
 * sizes and values. Any other input is parsed as it is.
 *
 * Beyond not crashing, it checks the contract: an error leaves a message and no table; a
 * success gives a table that keeps every promise of dsn_table_check(). */
#include "maths/schedule.h"
#include "maths/coeffs.h"
#include "tables/normtable.h"
#include "tables/tablefile.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static int32_t parse_payload(const uint8_t *data, size_t size, deissn_normtable **t)
{
    enum { HEADER = 44 };
    if (size < 1 + HEADER) return dsn_table_parse(data, size, "fuzz.dsn", t);
    const uint8_t *raw = data + 1 + HEADER;
    uLong raw_len = (uLong)(size - 1 - HEADER);
    uLongf comp_len = compressBound(raw_len);
    uint8_t *file = malloc(HEADER + comp_len);
    if (!file || compress2(file + HEADER, &comp_len, raw, raw_len, 1) != Z_OK) abort();
    memcpy(file, data + 1, HEADER);
    memcpy(file, "\x89" "DSNTBL\n", 8);
    for (int i = 0; i < 8; i++) {
        file[16 + i] = (uint8_t)((uint64_t)comp_len >> (8 * i));
        file[24 + i] = (uint8_t)((uint64_t)raw_len >> (8 * i));
    }
    int32_t rc = dsn_table_parse(file, HEADER + comp_len, "fuzz.dsn", t);
    free(file);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    deissn_normtable *t = (deissn_normtable *)&t;
    int32_t rc = size > 0 && data[0] == 'P' ? parse_payload(data, size, &t)
                                            : dsn_table_parse(data, size, "fuzz.dsn", &t);
    if (rc != DEISSN_OK) {
        if (rc >= 0 || t != NULL || deissn_last_error()[0] == '\0') abort();
        return 0;
    }
    deissn_normtable_info info = DEISSN_NORMTABLE_INFO_INIT;
    if (deissn_normtable_get_info(t, &info) != DEISSN_OK || info.n_knots < 2 ||
        info.clip >= info.n_knots || strlen(deissn_normtable_metadata(t)) != t->metadata_len)
        abort();
    for (size_t i = 0; i < info.n_knots; i++) {
        double tau, r;
        deissn_normtable_knot(t, i, &tau, &r);
        if (!(r > 0) || deissn_normtable_eval(t, tau) != r) abort();
    }
    /* Plans: sorted by nfe and each valid, as the format promises. */
    if (dsn_plans_check(t->plans, t->n_plans, DEISSN_E_FORMAT, "fuzz") != DEISSN_OK) abort();
    for (size_t i = 1; i < t->n_plans; i++)
        if (t->plans[i - 1].nfe >= t->plans[i].nfe) abort();
    if (info.has_sums) {
        deissn_calibrator *c = NULL;
        if (deissn_calibrator_from_table(&c, t) != DEISSN_OK) abort();
        deissn_calibrator_free(c);
    }
    deissn_normtable_free(t);
    return 0;
}
