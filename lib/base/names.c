/* names.c - the one spelling of every named enum value, and the aliases users bring from
 * diffusers and elsewhere. The tools and the bindings ask here instead of keeping tables of
 * their own. */
#include "base/base.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name; /* canonical: what deissn_enum_name() returns */
    int32_t value;
} name_entry;

typedef struct {
    const char *alias;
    const char *name; /* the canonical name it stands for */
} alias_entry;

#define END {NULL, 0}

static const name_entry noise_names[] = {
    {"linear", DEISSN_NOISE_LINEAR},
    {"scaled_linear", DEISSN_NOISE_SCALED_LINEAR},
    {"squaredcos_cap_v2", DEISSN_NOISE_SQUAREDCOS_CAP_V2},
    {"custom_betas", DEISSN_NOISE_CUSTOM_BETAS},
    {"custom_alphas_cumprod", DEISSN_NOISE_CUSTOM_ALPHAS_CUMPROD},
    {"continuous_vp", DEISSN_NOISE_CONTINUOUS_VP},
    END};
static const name_entry spacing_names[] = {
    {"quadratic", DEISSN_SPACING_QUADRATIC}, {"trailing", DEISSN_SPACING_TRAILING},
    {"linspace", DEISSN_SPACING_LINSPACE},   {"leading", DEISSN_SPACING_LEADING},
    {"power", DEISSN_SPACING_POWER},         {"logsnr", DEISSN_SPACING_LOGSNR},
    {"karras", DEISSN_SPACING_KARRAS},       {"custom", DEISSN_SPACING_CUSTOM},
    END};
static const name_entry method_names[] = {
    {"eps", DEISSN_METHOD_EPS}, {"data", DEISSN_METHOD_DATA}, {"learned", DEISSN_METHOD_LEARNED},
    END};
static const name_entry prediction_names[] = {
    {"epsilon", DEISSN_PREDICT_EPSILON},
    {"sample", DEISSN_PREDICT_SAMPLE},
    {"v_prediction", DEISSN_PREDICT_V},
    END};
static const name_entry time_names[] = {
    {"model_index", DEISSN_TIME_MODEL_INDEX}, {"tau", DEISSN_TIME_TAU},
    {"tau_1000", DEISSN_TIME_TAU_1000},       {"sigma", DEISSN_TIME_SIGMA},
    END};
static const name_entry dtype_names[] = {
    {"float32", DEISSN_DTYPE_FLOAT32}, {"float16", DEISSN_DTYPE_FLOAT16},
    {"bfloat16", DEISSN_DTYPE_BFLOAT16}, END};
static const name_entry preset_names[] = {
    {"best", DEISSN_PRESET_BEST}, {"reference", DEISSN_PRESET_REFERENCE},
    {"tuned", DEISSN_PRESET_TUNED}, END};

static const alias_entry noise_aliases[] = {
    {"cosine", "squaredcos_cap_v2"}, {"vp", "continuous_vp"}, {"continuous", "continuous_vp"},
    {NULL, NULL}};
static const alias_entry spacing_aliases[] = {
    {"uniform", "power"}, {"log_snr", "logsnr"}, {NULL, NULL}};
static const alias_entry method_aliases[] = {{"x0", "data"}, {NULL, NULL}};
static const alias_entry prediction_aliases[] = {
    {"eps", "epsilon"}, {"x0", "sample"}, {"v", "v_prediction"}, {NULL, NULL}};
static const alias_entry time_aliases[] = {
    {"t", "model_index"}, {"tau1000", "tau_1000"}, {NULL, NULL}};
static const alias_entry dtype_aliases[] = {
    {"fp32", "float32"}, {"fp16", "float16"}, {"half", "float16"}, {"bf16", "bfloat16"},
    {NULL, NULL}};
static const alias_entry no_aliases[] = {{NULL, NULL}};

static const struct {
    const char *what;
    const name_entry *names;
    const alias_entry *aliases;
} enums[] = {
    [DEISSN_ENUM_NOISE] = {"noise schedule", noise_names, noise_aliases},
    [DEISSN_ENUM_SPACING] = {"spacing", spacing_names, spacing_aliases},
    [DEISSN_ENUM_METHOD] = {"method", method_names, method_aliases},
    [DEISSN_ENUM_PREDICTION] = {"prediction type", prediction_names, prediction_aliases},
    [DEISSN_ENUM_TIME] = {"time convention", time_names, time_aliases},
    [DEISSN_ENUM_DTYPE] = {"dtype", dtype_names, dtype_aliases},
    [DEISSN_ENUM_PRESET] = {"preset", preset_names, no_aliases},
};
#define N_ENUMS ((int32_t)(sizeof enums / sizeof enums[0]))

const char *deissn_enum_name(int32_t kind, int32_t value)
{
    if (kind < 0 || kind >= N_ENUMS) return NULL;
    for (const name_entry *e = enums[kind].names; e->name; e++)
        if (e->value == value) return e->name;
    return NULL;
}

/* Names compare without regard to case, '-' and '_' being the same. */
static int same_name(const char *a, const char *b)
{
    for (;; a++, b++) {
        char ca = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a == '-' ? '_' : *a;
        char cb = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b == '-' ? '_' : *b;
        if (ca != cb) return 0;
        if (ca == '\0') return 1;
    }
}

int32_t deissn_enum_value(int32_t kind, const char *name, int32_t *value)
{
    const char *fn = "deissn_enum_value";
    if (!name || !value)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn, name ? "value" : "name");
    if (kind < 0 || kind >= N_ENUMS)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: unknown enum kind %d", fn, (int)kind);
    const char *canonical = name;
    for (const alias_entry *a = enums[kind].aliases; a->alias; a++)
        if (same_name(name, a->alias)) canonical = a->name;
    for (const name_entry *e = enums[kind].names; e->name; e++) {
        if (same_name(canonical, e->name)) {
            *value = e->value;
            return DEISSN_OK;
        }
    }
    char list[512] = "";
    size_t at = 0;
    for (const name_entry *e = enums[kind].names; e->name && at < sizeof list; e++)
        at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", at ? ", " : "", e->name);
    return dsn_error(DEISSN_E_INVALID_ARG, "unknown %s '%.100s' (known: %s)", enums[kind].what,
                     name, list);
}
