/* fuzz_ptfile.c - libFuzzer target for the torch.save reader (lib/tables/ptfile.c, zip.c,
 * pickle.c).
 *
 * `make fuzz` builds it (with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, which lets the fuzzer
 * past the CRC checks) and `make fuzz-run` runs it on the seeds in tests/fuzz/corpus/ptfile.
 *
 * Beyond not crashing, it checks the contract: an error leaves a message and a zeroed dict;
 * a success gives tensors whose every value can be read and whose keys can be found. */
#include "deissn.h"
#include "tables/ptfile.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dsn_pt_dict d;
    int32_t rc = dsn_pt_parse(data, size, "fuzz.pt", &d);
    size_t i, j;

    if (rc != DEISSN_OK) {
        if (rc >= 0 || deissn_last_error()[0] == '\0' || d.items != NULL || d.count != 0)
            abort();
        return 0;
    }
    for (i = 0; i < d.count; i++) {
        volatile float sink = 0.0f;
        if (dsn_pt_find(&d, d.items[i].key) != &d.items[i] ||
            strlen(d.items[i].key) > DSN_PT_MAX_KEY)
            abort();
        for (j = 0; j < d.items[i].numel; j++)
            sink += d.items[i].data[j];
        (void)sink;
    }
    dsn_pt_dict_free(&d);
    return 0;
}
