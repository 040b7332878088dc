/* preset.c - named sampling configurations per NFE (docs/presets.md has the measurements). */
#include "internal.h"

#include <stddef.h>

/* One row of DEISSN_PRESET_BEST: the configuration chosen by tools/eval/search.py for `nfe`
 * model evaluations. Rows are in increasing nfe; an nfe between two rows takes the row
 * below it, below the first row the first, above the last the last. */
typedef struct best_row {
    uint32_t nfe;
    int32_t spacing;
    double power;           /* DEISSN_SPACING_POWER only */
    uint32_t order;
    uint32_t lower_order_final;
    double tau_end;
} best_row;

static const best_row BEST[] = {
    /* nfe  spacing                 power order lof tau_end */
    {5, DEISSN_SPACING_TRAILING, 1.0, 3, 1, 0.0},
    {6, DEISSN_SPACING_TRAILING, 1.0, 3, 1, 0.0},
    {8, DEISSN_SPACING_TRAILING, 1.0, 3, 1, 0.0},
    {10, DEISSN_SPACING_TRAILING, 1.0, 3, 1, 0.0},
    {15, DEISSN_SPACING_TRAILING, 1.0, 3, 1, 0.0},
    {20, DEISSN_SPACING_POWER, 1.5, 3, 0, 0.0},
};

static const best_row *best_for(uint32_t nfe)
{
    const best_row *row = &BEST[0];
    for (size_t i = 0; i < sizeof BEST / sizeof BEST[0]; i++)
        if (BEST[i].nfe <= nfe) row = &BEST[i];
    return row;
}

int32_t deissn_preset_params(int32_t preset, uint32_t nfe, deissn_schedule_params *schedule,
                             deissn_sampler_params *sampler)
{
    const char *fn = "deissn_preset_params";
    if (!schedule && !sampler)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: schedule and sampler are both NULL", fn);
    if (preset != DEISSN_PRESET_BEST && preset != DEISSN_PRESET_REFERENCE)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: unknown preset %d (DEISSN_PRESET_BEST = 0, "
                         "DEISSN_PRESET_REFERENCE = 1)", fn, (int)preset);
    if (schedule && schedule->version != DEISSN_SCHEDULE_PARAMS_VERSION)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: schedule->version %u is not %u (initialise "
                         "it with deissn_schedule_params_init)", fn, schedule->version,
                         DEISSN_SCHEDULE_PARAMS_VERSION);
    if (sampler && sampler->version != DEISSN_SAMPLER_PARAMS_VERSION)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: sampler->version %u is not %u (initialise "
                         "it with deissn_sampler_params_init)", fn, sampler->version,
                         DEISSN_SAMPLER_PARAMS_VERSION);
    if (nfe == 0)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: nfe must be at least 1", fn);
    if (schedule && nfe > schedule->num_train_steps)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: nfe %u is above the %u training steps of "
                         "the schedule", fn, nfe, schedule->num_train_steps);

    /* the reference's configuration: the structs' defaults */
    deissn_schedule_params sp = DEISSN_SCHEDULE_PARAMS_INIT;
    deissn_sampler_params mp = DEISSN_SAMPLER_PARAMS_INIT;
    if (preset == DEISSN_PRESET_BEST) {
        const best_row *row = best_for(nfe);
        sp.spacing = row->spacing;
        if (row->spacing == DEISSN_SPACING_POWER) sp.power = row->power;
        sp.tau_end = row->tau_end;
        mp.order = row->order;
        mp.lower_order_final = row->lower_order_final;
    }
    if (schedule) {
        schedule->spacing = sp.spacing;
        schedule->steps = nfe;
        schedule->power = sp.power;
        schedule->karras_rho = sp.karras_rho;
        schedule->tau_min_eval = sp.tau_min_eval;
        schedule->tau_end = sp.tau_end;
    }
    if (sampler) {
        sampler->order = mp.order;
        sampler->lower_order_final = mp.lower_order_final;
    }
    return DEISSN_OK;
}
