/* deissn-inspect - print a sampler's per-step plan as JSON: times, Psi and the C_ij.
 *
 *   deissn-inspect [--schedule NAME] [--spacing NAME] [--steps 10] [--order 3]
 *                  [--table FILE [--clip 0]] [--preset tuned|best|reference]
 *                  [--lower-order-final] [--tau-end 0] [--method eps|data] [--corrector]
 *                  [--power 1] [--rho 7] [--train-steps 1000]
 *
 * Names are the library's (deissn_enum_value: linear, scaled_linear, squaredcos_cap_v2 or
 * cosine, ...). --preset applies a preset for --steps NFE (tuned: the table's plan) before the
 * other options. A table with tuned plans also gets them printed ("plans"), each with its
 * held-out error and BEST's, and a learned plan (method "learned") with its weights
 * ("weights": nfe rows of DEISSN_PLAN_WEIGHTS, step j's weights of x and of the newest to the
 * oldest eps). --method learned needs weights, so it comes only from --preset tuned.
 *
 * --table reads any table file deissn_normtable_load() knows (libdeissn's .dsn, the
 * reference's .pt; --clip applies to .pt); --table-pt is an older name for it.
 *
 * With --table, the JSON also carries the table's sample count and metadata (table_samples,
 * table_metadata: for deissn-calibrate's tables, the record of the run, docs/tables.md).
 * Every string is escaped, so the output always parses.
 *
 * This is how users check and export the coefficients the library computes. */
#include "deissn.h"
#include "tool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The schedule's limit on steps and training steps. */
#define MAX_STEPS 1000000u

/* The value of enum `kind` named `v` (the library's names and aliases), or exit 2. */
static int32_t named(int32_t kind, const char *opt, const char *v)
{
    int32_t x;
    if (deissn_enum_value(kind, v, &x) != DEISSN_OK) tool_die(2, "%s: %s", opt, deissn_last_error());
    return x;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: deissn-inspect [--schedule linear|scaled_linear|squaredcos_cap_v2|...]\n"
               "         [--spacing quadratic|trailing|linspace|leading|power|logsnr|karras]\n"
               "         [--steps N] [--order 0-3] [--table FILE] [--clip N]\n"
               "         [--preset tuned|best|reference]\n"
               "         [--lower-order-final] [--tau-end T] [--power P] [--rho R]\n"
               "         [--method eps|data] [--corrector]\n"
               "         [--train-steps T]\n"
               "Prints the per-step plan (model_t, tau_from, tau_to, psi, C) as JSON.\n");
}

int main(int argc, char **argv)
{
    tool_name = "deissn-inspect";
    deissn_schedule_params sp;
    deissn_sampler_params pp;
    deissn_schedule_params_init(&sp, DEISSN_SCHEDULE_PARAMS_VERSION);
    deissn_sampler_params_init(&pp, DEISSN_SAMPLER_PARAMS_VERSION);
    const char *table_path = NULL;
    unsigned clip = 0;
    int clip_given = 0;
    int32_t preset = -1; /* none: the options as given */

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--lower-order-final")) {
            pp.lower_order_final = 1;
            takes_value = 0;
        } else if (!strcmp(a, "--corrector")) {
            pp.corrector = 1;
            takes_value = 0;
        } else if (!v) {
            fprintf(stderr, "deissn-inspect: %s needs a value\n", a);
            usage(stderr);
            return 2;
        } else if (!strcmp(a, "--schedule") || !strcmp(a, "--noise")) {
            sp.noise = named(DEISSN_ENUM_NOISE, a, v);
        } else if (!strcmp(a, "--spacing")) {
            sp.spacing = named(DEISSN_ENUM_SPACING, a, v);
        } else if (!strcmp(a, "--preset")) {
            preset = named(DEISSN_ENUM_PRESET, a, v);
        } else if (!strcmp(a, "--steps")) {
            sp.steps = (uint32_t)tool_parse_u64(a, v, 1, MAX_STEPS);
        } else if (!strcmp(a, "--method")) {
            pp.method = named(DEISSN_ENUM_METHOD, a, v);
        } else if (!strcmp(a, "--order")) {
            pp.order = (uint32_t)tool_parse_u64(a, v, 0, 3);
        } else if (!strcmp(a, "--table") || !strcmp(a, "--table-pt")) {
            table_path = v;
        } else if (!strcmp(a, "--clip")) {
            clip = (unsigned)tool_parse_u64(a, v, 0, UINT32_MAX);
            clip_given = 1;
        } else if (!strcmp(a, "--tau-end")) {
            sp.tau_end = tool_parse_double(a, v, 0, 0, 1, 1);
        } else if (!strcmp(a, "--power")) {
            sp.power = tool_parse_double(a, v, 0, 1, INFINITY, 1);
        } else if (!strcmp(a, "--rho")) {
            sp.karras_rho = tool_parse_double(a, v, 0, 1, INFINITY, 1);
        } else if (!strcmp(a, "--train-steps")) {
            sp.num_train_steps = (uint32_t)tool_parse_u64(a, v, 1, MAX_STEPS);
        } else {
            fprintf(stderr, "deissn-inspect: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i += takes_value;
    }

    if (clip_given && !table_path) {
        fprintf(stderr, "deissn-inspect: --clip applies to a --table, and none was given\n");
        return 2;
    }
    deissn_normtable *table = NULL;
    deissn_schedule *sched = NULL;
    deissn_sampler *s = NULL;
    int32_t rc;
    if (table_path && (rc = deissn_normtable_load(&table, table_path, &(deissn_normtable_params){.version = DEISSN_NORMTABLE_PARAMS_VERSION, .clip = clip, .metadata = NULL})) != DEISSN_OK)
        return tool_fail("loading the table", rc);
    int32_t use_table = 1;
    if (preset >= 0 &&
        (rc = deissn_preset_params(preset, sp.steps, table, &sp, &pp, &use_table)) != DEISSN_OK)
        return tool_fail("preset", rc);
    if ((rc = deissn_schedule_create(&sched, &sp)) != DEISSN_OK)
        return tool_fail("schedule", rc);
    double t0 = tool_now();
    rc = deissn_sampler_create(&s, sched, use_table ? table : NULL, &pp);
    double setup_us = (tool_now() - t0) * 1e6;
    if (rc != DEISSN_OK) return tool_fail("sampler", rc);

    uint32_t n = deissn_sampler_steps(s);
    /* Every string goes through tool_json_string(): a path may hold any byte. */
    char library[64];
    snprintf(library, sizeof library, "libdeissn %s", deissn_version_string());
    printf("{\n  \"library\": ");
    tool_json_string(stdout, library);
    printf(",\n  \"schedule\": ");
    tool_json_string(stdout, deissn_enum_name(DEISSN_ENUM_NOISE, sp.noise));
    printf(", \"spacing\": ");
    tool_json_string(stdout, deissn_enum_name(DEISSN_ENUM_SPACING, sp.spacing));
    printf(", \"steps\": %u, \"order\": %u,\n  \"table\": ", n, pp.order);
    if (table_path) tool_json_string(stdout, table_path);
    else printf("null");
    if (table) {
        deissn_normtable_info info = DEISSN_NORMTABLE_INFO_INIT;
        deissn_normtable_get_info(table, &info);
        printf(", \"table_samples\": %llu, \"table_metadata\": ",
               (unsigned long long)info.samples);
        tool_json_string(stdout, deissn_normtable_metadata(table));
    }
    printf(", \"clip\": %u, \"lower_order_final\": %s,\n", clip,
           pp.lower_order_final ? "true" : "false");
    printf("  \"method\": \"%s\", \"corrector\": %s,\n",
           deissn_enum_name(DEISSN_ENUM_METHOD, pp.method), pp.corrector ? "true" : "false");
    if (preset >= 0) {
        printf("  \"preset\": ");
        tool_json_string(stdout, deissn_enum_name(DEISSN_ENUM_PRESET, preset));
        printf(", \"table_used\": %s,\n", use_table && table ? "true" : "false");
    }
    if (deissn_normtable_plan_count(table)) { /* the table's tuned plans, and what each is worth */
        printf("  \"plans\": [\n");
        for (size_t k = 0; k < deissn_normtable_plan_count(table); k++) {
            deissn_plan pl = DEISSN_PLAN_INIT;
            deissn_normtable_plan(table, k, &pl);
            printf("    {\"nfe\": %u, \"method\": \"%s\", \"order\": %u, \"corrector\": %s, "
                   "\"lower_order_final\": %s, \"uses_table\": %s, \"tau_end\": %.17g, "
                   "\"heldout_rmse\": %.17g, \"heldout_interval\": [%.17g, %.17g], "
                   "\"heldout_samples\": %u, \"best_rmse\": %.17g, \"taus\": [",
                   pl.nfe, deissn_enum_name(DEISSN_ENUM_METHOD, pl.method), pl.order,
                   pl.corrector ? "true" : "false", pl.lower_order_final ? "true" : "false",
                   pl.uses_table ? "true" : "false", pl.tau_end, pl.error, pl.error_low,
                   pl.error_high, pl.samples, pl.best_error);
            for (uint32_t j = 0; j < pl.nfe; j++) printf("%s%.17g", j ? ", " : "", pl.taus[j]);
            printf("]");
            if (pl.method == DEISSN_METHOD_LEARNED) { /* step j's weights of x, eps_j, ... */
                printf(", \"weights\": [");
                for (uint32_t j = 0; j < pl.nfe; j++) {
                    printf("%s[", j ? ", " : "");
                    for (int w = 0; w < DEISSN_PLAN_WEIGHTS; w++)
                        printf("%s%.17g", w ? ", " : "", pl.weights[j][w]);
                    printf("]");
                }
                printf("]");
            }
            printf("}%s\n", k + 1 < deissn_normtable_plan_count(table) ? "," : "");
        }
        printf("  ],\n");
    }
    printf("  \"schedule_fingerprint\": \"%08x\", \"setup_microseconds\": %.1f,\n",
           deissn_schedule_fingerprint(sched), setup_us);
    printf("  \"steps_plan\": [\n");
    for (uint32_t i = 0; i < n; i++) {
        deissn_step_coeffs c = DEISSN_STEP_COEFFS_INIT;
        deissn_sampler_coeffs(s, i, &c);
        printf("    {\"step\": %u, \"order\": %u, \"corrector_order\": %u, \"model_t\": %.17g, "
               "\"tau_from\": %.17g, \"tau_to\": %.17g, \"psi\": %.17g, \"C\": [",
               i, c.order, c.corrector_order, c.model_t, c.tau_from, c.tau_to, c.psi);
        uint32_t terms = (c.corrector_order > c.order ? c.corrector_order : c.order) + 1;
        for (uint32_t j = 0; j < terms; j++) printf("%s%.17g", j ? ", " : "", c.c[j]);
        printf("], \"r\": [");
        for (uint32_t j = 0; j < terms; j++) printf("%s%.17g", j ? ", " : "", c.r[j]);
        printf("]}%s\n", i + 1 < n ? "," : "");
    }
    printf("  ]\n}\n");
    deissn_sampler_free(s);
    deissn_schedule_free(sched);
    deissn_normtable_free(table);
    return 0;
}
