/* tool.h - what deissn-sample, deissn-calibrate and deissn-inspect share (examples/tool.c):
 * messages and exits, timing, checked number parsing, size products that cannot wrap, the
 * same-file check and JSON strings. Not part of libdeissn; only the tools link it.
 *
 * Every message starts with the tool's name (tool_name, set first thing in main) and names
 * the option or file it is about. A bad command line exits with status 2, a failure of the
 * run with status 1. */
#ifndef DEISSN_TOOL_H
#define DEISSN_TOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* "deissn-sample" etc.: the first word of every message. */
extern const char *tool_name;

/* Print "tool_name: <message>\n" to stderr and exit(status). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3), noreturn))
#endif
void tool_die(int status, const char *fmt, ...);

/* Print "tool_name: what: <deissn_last_error()> (<status string>)" to stderr; returns 1, the
 * exit status of a failed run. */
int tool_fail(const char *what, int32_t rc);

/* Seconds on a monotonic clock. */
double tool_now(void);

/* The whole of `s` as a decimal integer in [min, max]: no sign (a '-' is refused, not
 * wrapped), no exponent, no trailing characters, no overflow. Otherwise exits with status 2:
 * "tool_name: OPT: 'S' is not a whole number in MIN..MAX". */
uint64_t tool_parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max);

/* The whole of `s` as a finite number (strtod syntax) with lo <= x <= hi, or lo < x < hi for
 * the ends given as open (open_lo, open_hi). Otherwise exits with status 2, naming OPT and
 * the interval. */
double tool_parse_double(const char *opt, const char *s, double lo, int open_lo, double hi,
                         int open_hi);

/* "C,H,W": exactly three whole numbers in 1..max_dim, separated by single commas, and a
 * product of at most max_numel values. Otherwise exits with status 2. */
void tool_parse_shape(const char *opt, const char *s, int64_t max_dim, uint64_t max_numel,
                      int64_t shape[3]);

/* *out = a * b; returns 0 (and leaves *out alone) if the product does not fit in size_t. */
int tool_mul_size(size_t a, size_t b, size_t *out);

/* One file a tool reads or writes, for tool_check_outputs(). */
typedef struct tool_file {
    const char *option; /* "--out", "--model", "--merge" ... */
    const char *path;   /* NULL: not given */
} tool_file;

/* Write n bytes to `path` whole or not at all: into a temporary file beside it, then renamed
 * over it. Exit with status 1 and the system's reason (naming `what`) on failure. */
void tool_write_file(const char *what, const char *path, const void *data, size_t n);

/* Read the whole file at `path` into a malloc'd buffer (*n bytes); exit with status 1 and
 * the system's reason (naming `what`) on failure. */
unsigned char *tool_read_file(const char *what, const char *path, size_t *n);

/* 1 if a and b are the same existing file (same st_dev and st_ino, so links and other
 * spellings of a path count), else 0. stat() follows symbolic links. */
int tool_same_file(const char *a, const char *b);

/* Exit with status 2 when one of the n_out outputs is the same file as one of the n_in
 * inputs: "tool_name: --out X is the same file as --model Y; refusing to overwrite an
 * input". An output that does not exist yet is fine. */
void tool_check_outputs(const tool_file *out, size_t n_out, const tool_file *in, size_t n_in);

/* Exit with status 1 unless `path` (the value of option OPT) can be written, so that a long
 * run does not fail at its end: an existing path must be writable and not a directory, a new
 * one needs a directory that exists and is writable. The message gives the system's reason.
 * Nothing is created. */
void tool_check_writable(const char *opt, const char *path);

/* The length (1-4) of the valid UTF-8 sequence at p, or 0 if there is none (a NUL, a stray
 * continuation byte, an overlong form, a surrogate, a code point above U+10FFFF). */
int tool_utf8_len(const unsigned char *p);

/* Write s as a JSON string, quotes included: '"', '\\' and control characters escaped
 * (\u00XX), valid UTF-8 as it is, each byte that is not UTF-8 as \ufffd, so the output is
 * always valid JSON. */
void tool_json_string(FILE *f, const char *s);

/* ---- the record of a run in a table's metadata: "key=value" lines (docs/tables.md) ------ */

#define TOOL_RECORD_HEADER "deissn-calibration=1\n"

/* The raw (still escaped) value of `key` in the record `meta` into buf; 0 if the record or
 * the key is absent. */
int tool_record_get(const char *meta, const char *key, char *buf, size_t cap);

/* ---- the model's settings: noise schedule, prediction, time convention ------------------- */

#include "deissn.h"

/* What the tools know about a model beyond its file; -1 / 0: not given. */
typedef struct tool_model {
    int32_t noise, prediction, time; /* deissn_noise, deissn_prediction, deissn_time_convention */
    uint32_t train_steps;
    double beta_start, beta_end;     /* 0: the noise schedule's default */
} tool_model;

#define TOOL_MODEL_UNSET { -1, -1, -1, 0, 0.0, 0.0 }

/* Consume --noise, --prediction, --time (library names: deissn_enum_value), --train-steps,
 * --beta-start, --beta-end; 1 if opt was one of them (a bad value exits with status 2). */
int tool_model_option(tool_model *m, const char *opt, const char *value);

/* Take what the table's record says about its model (noise, prediction, time, train_steps,
 * beta_start, beta_end) where the command line said nothing; exit with status 2, naming the
 * option, the recorded value and the table, where it said something else. */
void tool_model_from_record(tool_model *m, const char *meta, const char *table);

/* Fill what is still unset with the library's defaults (linear, epsilon, model_index, 1000). */
void tool_model_defaults(tool_model *m);

/* Copy the settings into the library's params (any pointer may be NULL). */
void tool_model_apply(const tool_model *m, deissn_schedule_params *s, deissn_sampler_params *p,
                      deissn_model_params *mp);

#endif
