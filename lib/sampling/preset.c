/* preset.c - named sampling configurations per NFE (docs/presets.md has the measurements). */
#include "maths/schedule.h"
#include "sampling/sampler.h"
#include "tables/normtable.h"

#include <stddef.h>

/* One row of DEISSN_PRESET_BEST: the configuration `tools/eval/search.py --choose --stage
 * _select` picked for `nfe` model evaluations (the lowest worst-case ratio to the best of
 * DPM-Solver++ and UniPC over the two evaluation models, on 256 samples; docs/presets.md).
 * Rows are in increasing nfe; an nfe between two rows takes the row below it, below the first
 * row the first, above the last the last. */
typedef struct best_row {
    uint32_t nfe;
    int32_t spacing;
    double power;           /* DEISSN_SPACING_POWER only */
    uint32_t order;
    uint32_t lower_order_final;
    double tau_end;
    int32_t method;         /* deissn_method */
    uint32_t corrector;
} best_row;

static const best_row BEST[] = {
    /* nfe  spacing                  power order lof tau_end method              corrector */
    {5, DEISSN_SPACING_TRAILING, 1.0, 2, 1, 1e-3, DEISSN_METHOD_DATA, 0},
    {6, DEISSN_SPACING_TRAILING, 1.0, 3, 0, 0.0, DEISSN_METHOD_DATA, 0},
    {8, DEISSN_SPACING_TRAILING, 1.0, 1, 0, 1e-3, DEISSN_METHOD_EPS, 0},
    {10, DEISSN_SPACING_POWER, 1.5, 1, 1, 1e-3, DEISSN_METHOD_DATA, 1},
    {15, DEISSN_SPACING_LOGSNR, 1.0, 2, 1, 1e-3, DEISSN_METHOD_DATA, 1},
    {20, DEISSN_SPACING_POWER, 1.5, 3, 0, 0.0, DEISSN_METHOD_EPS, 0},
};

/* A LOGSNR row that stops at tau_end > 0 spaces its nfe evaluations and tau_end uniformly in
 * log-SNR from tau = 1 (DPM-Solver's grid), so its last evaluation, tau_min_eval, is one
 * log-SNR step above tau_end: the next-to-last evaluation of the LOGSNR spacing with nfe + 1
 * steps down to tau_end, on the caller's noise schedule. */
static int32_t logsnr_min_eval(const deissn_schedule_params *caller, uint32_t nfe,
                               double tau_end, double *out)
{
    deissn_schedule_params p = *caller;
    p.spacing = DEISSN_SPACING_LOGSNR;
    p.steps = nfe + 1;
    p.tau_min_eval = tau_end;
    p.tau_end = 0.0;
    p.custom_taus = NULL;
    deissn_schedule *s = NULL;
    int32_t rc = deissn_schedule_create(&s, &p);
    if (rc != DEISSN_OK) return rc;
    *out = s->taus[nfe - 1];
    deissn_schedule_free(s);
    return DEISSN_OK;
}

static const best_row *best_for(uint32_t nfe)
{
    const best_row *row = &BEST[0];
    for (size_t i = 0; i < sizeof BEST / sizeof BEST[0]; i++)
        if (BEST[i].nfe <= nfe) row = &BEST[i];
    return row;
}

/* The table's plan for nfe, or the nearest tuned nfe below it; NULL when it has none. */
static const deissn_plan *tuned_for(const deissn_normtable *t, uint32_t nfe)
{
    const deissn_plan *best = NULL;
    for (size_t i = 0; t && i < t->n_plans; i++)
        if (t->plans[i].nfe <= nfe) best = &t->plans[i]; /* sorted by nfe */
    return best;
}

/* DEISSN_E_MISMATCH unless the noise schedule of `caller` is the one the table was made for. */
static int32_t check_plan_schedule(const deissn_normtable *t, const deissn_schedule_params *caller,
                                   const char *fn)
{
    if (!t->fingerprint) return DEISSN_OK;
    deissn_schedule_params p = *caller;
    p.spacing = DEISSN_SPACING_TRAILING;
    p.steps = 1;
    p.tau_end = 0;
    p.custom_taus = NULL;
    deissn_schedule *s = NULL;
    int32_t rc = deissn_schedule_create(&s, &p);
    if (rc) return rc;
    uint32_t f = s->fingerprint;
    deissn_schedule_free(s);
    if (f != t->fingerprint)
        return dsn_error(DEISSN_E_MISMATCH, "%s: the table's plans were tuned for a noise schedule "
                         "with fingerprint %08x, this one's is %08x (set allow_table_mismatch to "
                         "use them anyway)", fn, t->fingerprint, f);
    return DEISSN_OK;
}

int32_t deissn_preset_params(int32_t preset, uint32_t nfe, const deissn_normtable *table,
                             deissn_schedule_params *schedule, deissn_sampler_params *sampler,
                             int32_t *use_table)
{
    const char *fn = "deissn_preset_params";
    if (!schedule && !sampler)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: schedule and sampler are both NULL", fn);
    if (preset != DEISSN_PRESET_BEST && preset != DEISSN_PRESET_REFERENCE &&
        preset != DEISSN_PRESET_TUNED)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: unknown preset %d (DEISSN_PRESET_BEST = 0, "
                         "DEISSN_PRESET_REFERENCE = 1, DEISSN_PRESET_TUNED = 2)", fn, (int)preset);
    /* Both structs are the caller's, of the version they carry: read and written through
     * copies of the current layout, so nothing past that version is touched. */
    deissn_schedule_params caller_schedule;
    deissn_sampler_params caller_sampler;
    int32_t rc = DEISSN_OK;
    if (schedule) rc = dsn_schedule_params_read(&caller_schedule, schedule, fn);
    if (rc == DEISSN_OK && sampler) rc = dsn_sampler_params_read(&caller_sampler, sampler, fn);
    if (rc != DEISSN_OK) return rc;
    if (nfe == 0)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: nfe must be at least 1", fn);
    if (schedule && nfe > caller_schedule.num_train_steps)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: nfe %u is above the %u training steps of "
                         "the schedule", fn, nfe, caller_schedule.num_train_steps);

    /* the reference's configuration: the structs' defaults */
    deissn_schedule_params sp = DEISSN_SCHEDULE_PARAMS_INIT;
    deissn_sampler_params mp = DEISSN_SAMPLER_PARAMS_INIT;
    int32_t wants_table = 1;
    const deissn_plan *plan = preset == DEISSN_PRESET_TUNED ? tuned_for(table, nfe) : NULL;
    if (plan) {
        if (schedule && !(sampler && caller_sampler.allow_table_mismatch)) {
            rc = check_plan_schedule(table, &caller_schedule, fn);
            if (rc) return rc;
        }
        sp.spacing = DEISSN_SPACING_CUSTOM;
        sp.custom_taus = plan->taus;
        sp.tau_end = plan->tau_end;
        nfe = plan->nfe;
        mp.order = plan->order;
        mp.lower_order_final = plan->lower_order_final;
        mp.method = plan->method;
        mp.corrector = plan->corrector;
        if (plan->method == DEISSN_METHOD_LEARNED) {
            if (sampler && sampler->version < 4)
                return dsn_error(DEISSN_E_INVALID_ARG, "%s: the table's %u-NFE plan is "
                                 "DEISSN_METHOD_LEARNED, whose weights need a version-4 "
                                 "deissn_sampler_params (this one is version %u)", fn,
                                 plan->nfe, sampler->version);
            mp.weights = &plan->weights[0][0];
        }
        wants_table = (int32_t)plan->uses_table;
    } else if (preset != DEISSN_PRESET_REFERENCE) { /* BEST, and TUNED without a plan */
        const best_row *row = best_for(nfe);
        sp.spacing = row->spacing;
        if (row->spacing == DEISSN_SPACING_POWER) sp.power = row->power;
        sp.tau_end = row->tau_end;
        mp.order = row->order;
        mp.lower_order_final = row->lower_order_final;
        mp.method = row->method;
        mp.corrector = row->corrector;
        wants_table = row->method == DEISSN_METHOD_EPS;
    }
    if (schedule && sp.spacing == DEISSN_SPACING_LOGSNR && sp.tau_end > 0 && nfe > 1) {
        rc = logsnr_min_eval(&caller_schedule, nfe, sp.tau_end, &sp.tau_min_eval);
        if (rc != DEISSN_OK) return rc; /* the caller's noise schedule is invalid */
    }
    if (schedule) {
        caller_schedule.spacing = sp.spacing;
        caller_schedule.steps = nfe;
        caller_schedule.power = sp.power;
        caller_schedule.karras_rho = sp.karras_rho;
        caller_schedule.tau_min_eval = sp.tau_min_eval;
        caller_schedule.tau_end = sp.tau_end;
        caller_schedule.custom_taus = sp.custom_taus;
        dsn_schedule_params_write(schedule, &caller_schedule);
    }
    if (sampler) {
        caller_sampler.order = mp.order;
        caller_sampler.lower_order_final = mp.lower_order_final;
        caller_sampler.method = mp.method;
        caller_sampler.corrector = mp.corrector;
        caller_sampler.weights = mp.weights;
        dsn_sampler_params_write(sampler, &caller_sampler);
    }
    if (use_table) *use_table = wants_table;
    return DEISSN_OK;
}
