/* tool.c - the helpers the command-line tools share (tool.h). */
#include "tool.h"

#include "deissn.h"

#include <errno.h>
#include <stddef.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *tool_name = "deissn";

void tool_die(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", tool_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(status);
}

int tool_fail(const char *what, int32_t rc)
{
    fprintf(stderr, "%s: %s: %s (%s)\n", tool_name, what, deissn_last_error(),
            deissn_status_string(rc));
    return 1;
}

double tool_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint64_t tool_parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max)
{
    uint64_t v = 0;
    int ok = s[0] != '\0';
    for (const char *p = s; ok && *p; p++) {
        unsigned d = (unsigned)(*p - '0');
        ok = d <= 9 && v <= (UINT64_MAX - d) / 10;
        v = v * 10 + d;
    }
    if (!ok || v < min || v > max)
        tool_die(2, "%s: '%s' is not a whole number in %llu..%llu", opt, s,
                 (unsigned long long)min, (unsigned long long)max);
    return v;
}

double tool_parse_double(const char *opt, const char *s, double lo, int open_lo, double hi,
                         int open_hi)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    int ok = end != s && *end == '\0' && errno != ERANGE && isfinite(v) &&
             (open_lo ? v > lo : v >= lo) && (open_hi ? v < hi : v <= hi);
    if (!ok)
        tool_die(2, "%s: '%s' is not a number in %c%.17g, %.17g%c", opt, s, open_lo ? '(' : '[',
                 lo, hi, open_hi ? ')' : ']');
    return v;
}

void tool_parse_shape(const char *opt, const char *s, int64_t max_dim, uint64_t max_numel,
                      int64_t shape[3])
{
    const char *p = s;
    uint64_t numel = 1;
    int ok = 1;
    for (int d = 0; ok && d < 3; d++) {
        const char *comma = strchr(p, ',');
        size_t len = d < 2 ? (comma ? (size_t)(comma - p) : 0) : strlen(p);
        int64_t v = 0;
        ok = len > 0 && len <= 18;
        for (size_t k = 0; ok && k < len; k++) {
            ok = p[k] >= '0' && p[k] <= '9';
            v = v * 10 + (p[k] - '0');
        }
        ok = ok && v >= 1 && v <= max_dim && numel <= max_numel / (uint64_t)v;
        if (ok) {
            numel *= (uint64_t)v;
            shape[d] = v;
            p += len + 1;
        }
    }
    if (!ok)
        tool_die(2, "%s: '%s' is not C,H,W (three whole numbers in 1..%lld, at most %llu "
                 "values in all)", opt, s, (long long)max_dim, (unsigned long long)max_numel);
}

int tool_mul_size(size_t a, size_t b, size_t *out)
{
    if (b != 0 && a > SIZE_MAX / b) return 0;
    *out = a * b;
    return 1;
}

int tool_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

void tool_check_outputs(const tool_file *out, size_t n_out, const tool_file *in, size_t n_in)
{
    for (size_t i = 0; i < n_out; i++)
        for (size_t j = 0; j < n_in; j++)
            if (tool_same_file(out[i].path, in[j].path))
                tool_die(2, "%s %s is the same file as %s %s; refusing to overwrite an input",
                         out[i].option, out[i].path, in[j].option, in[j].path);
}

void tool_write_file(const char *what, const char *path, const void *data, size_t n)
{
    size_t len = strlen(path);
    char *tmp = malloc(len + 32);
    if (!tmp) tool_die(1, "out of memory");
    snprintf(tmp, len + 32, "%s.tmp-%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(data, 1, n, f) == n;
    int err = errno;
    if (f && fclose(f) != 0 && ok) ok = 0, err = errno;
    if (ok && rename(tmp, path) != 0) ok = 0, err = errno;
    if (!ok) {
        if (f) remove(tmp);
        tool_die(1, "%s %s: %s", what, path, strerror(err));
    }
    free(tmp);
}

unsigned char *tool_read_file(const char *what, const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) tool_die(1, "%s %s: %s", what, path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (!buf) tool_die(1, "%s %s: out of memory", what, path);
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap) break;
        unsigned char *more = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
        if (!more) free(buf);
        buf = more;
        cap *= 2;
    }
    if (ferror(f)) tool_die(1, "%s %s: %s", what, path, strerror(errno));
    fclose(f);
    *n = len;
    return buf;
}

void tool_check_writable(const char *opt, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) tool_die(1, "%s %s: is a directory", opt, path);
        if (access(path, W_OK) != 0) tool_die(1, "%s %s: %s", opt, path, strerror(errno));
        return;
    }
    if (errno != ENOENT) tool_die(1, "%s %s: %s", opt, path, strerror(errno));
    /* A new file: its directory must be there and writable. */
    size_t len = strlen(path);
    char *dir = malloc(len + 2);
    if (!dir) tool_die(1, "out of memory");
    memcpy(dir, path, len + 1);
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else slash[slash == dir] = '\0'; /* "/x" -> "/" */
    int ok = stat(dir, &st) == 0 && (S_ISDIR(st.st_mode) || (errno = ENOTDIR, 0)) &&
             access(dir, W_OK | X_OK) == 0;
    if (!ok) tool_die(1, "%s %s: cannot create it in %s: %s", opt, path, dir, strerror(errno));
    free(dir);
}

int tool_utf8_len(const unsigned char *p)
{
    unsigned c = p[0], n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                                      : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0) return 0;
    uint32_t cp = n == 1 ? c : c & (0x3fu >> (n - 1));
    for (unsigned k = 1; k < n; k++) {
        if ((p[k] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (p[k] & 0x3fu);
    }
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return (int)n;
}

void tool_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int n = tool_utf8_len(p);
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\u%04x", *p);
        else if (n == 0) fputs("\\ufffd", f); /* not UTF-8: the replacement character */
        else fwrite(p, 1, (size_t)n, f);
        p += n ? n : 1;
    }
    fputc('"', f);
}

/* ---- the record of a run in a table's metadata (docs/tables.md) ------------------------- */

/* The raw (still escaped) value of `key` in the record `meta` into buf; 0 if the record or
 * the key is absent. */
int tool_record_get(const char *meta, const char *key, char *buf, size_t cap)
{
    if (strncmp(meta, TOOL_RECORD_HEADER, strlen(TOOL_RECORD_HEADER)) != 0) return 0;
    size_t klen = strlen(key);
    for (const char *line = meta; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len > klen && !strncmp(line, key, klen) && line[klen] == '=') {
            size_t vlen = len - klen - 1 < cap - 1 ? len - klen - 1 : cap - 1;
            memcpy(buf, line + klen + 1, vlen);
            buf[vlen] = '\0';
            return 1;
        }
        line += len + (nl != NULL);
    }
    return 0;
}

int tool_model_option(tool_model *m, const char *opt, const char *value)
{
    static const struct {
        const char *opt;
        int32_t kind;
        size_t at;
    } named[] = {
        {"--noise", DEISSN_ENUM_NOISE, offsetof(tool_model, noise)},
        {"--prediction", DEISSN_ENUM_PREDICTION, offsetof(tool_model, prediction)},
        {"--time", DEISSN_ENUM_TIME, offsetof(tool_model, time)},
    };
    for (size_t k = 0; k < sizeof named / sizeof *named; k++) {
        if (strcmp(opt, named[k].opt)) continue;
        int32_t v;
        if (deissn_enum_value(named[k].kind, value, &v) != DEISSN_OK)
            tool_die(2, "%s: %s", opt, deissn_last_error());
        memcpy((char *)m + named[k].at, &v, sizeof v);
        return 1;
    }
    if (!strcmp(opt, "--train-steps")) m->train_steps = (uint32_t)tool_parse_u64(opt, value, 1, 100000);
    else if (!strcmp(opt, "--beta-start")) m->beta_start = tool_parse_double(opt, value, 0, 1, 1, 1);
    else if (!strcmp(opt, "--beta-end")) m->beta_end = tool_parse_double(opt, value, 0, 1, 1, 1);
    else return 0;
    return 1;
}

void tool_model_defaults(tool_model *m)
{
    if (m->noise < 0) m->noise = DEISSN_NOISE_LINEAR;
    if (m->prediction < 0) m->prediction = DEISSN_PREDICT_EPSILON;
    if (m->time < 0) m->time = DEISSN_TIME_MODEL_INDEX;
    if (m->train_steps == 0) m->train_steps = 1000;
}

/* The record's keys for the model settings, and how each is compared. */
void tool_model_from_record(tool_model *m, const char *meta, const char *table)
{
    char v[256];
    static const struct {
        const char *key;
        int32_t kind;
        size_t at;
    } named[] = {
        {"noise", DEISSN_ENUM_NOISE, offsetof(tool_model, noise)},
        {"prediction", DEISSN_ENUM_PREDICTION, offsetof(tool_model, prediction)},
        {"time", DEISSN_ENUM_TIME, offsetof(tool_model, time)},
    };
    for (size_t k = 0; k < sizeof named / sizeof *named; k++) {
        int32_t rec, *cur = (int32_t *)((char *)m + named[k].at);
        if (!tool_record_get(meta, named[k].key, v, sizeof v)) continue;
        if (deissn_enum_value(named[k].kind, v, &rec) != DEISSN_OK)
            tool_die(1, "--table %s: its record has %s=%s, which this libdeissn does not know",
                     table, named[k].key, v);
        if (*cur >= 0 && *cur != rec)
            tool_die(2, "--%s %s differs from %s=%s recorded in the table %s (it was made for "
                     "that model; drop the option or pass another table)", named[k].key,
                     deissn_enum_name(named[k].kind, *cur), named[k].key, v, table);
        *cur = rec;
    }
    if (tool_record_get(meta, "train_steps", v, sizeof v)) {
        uint32_t t = (uint32_t)strtoul(v, NULL, 10);
        if (m->train_steps && m->train_steps != t)
            tool_die(2, "--train-steps %u differs from train_steps=%s recorded in the table %s",
                     m->train_steps, v, table);
        m->train_steps = t;
    }
    const char *beta_keys[2] = {"beta_start", "beta_end"};
    double *betas[2] = {&m->beta_start, &m->beta_end};
    for (int k = 0; k < 2; k++) {
        if (!tool_record_get(meta, beta_keys[k], v, sizeof v)) continue;
        double b = strtod(v, NULL);
        if (*betas[k] > 0 && *betas[k] != b)
            tool_die(2, "--%s %.17g differs from %s=%s recorded in the table %s",
                     k ? "beta-end" : "beta-start", *betas[k], beta_keys[k], v, table);
        *betas[k] = b;
    }
}

void tool_model_apply(const tool_model *m, deissn_schedule_params *s, deissn_sampler_params *p,
                      deissn_model_params *mp)
{
    if (s) {
        s->noise = m->noise;
        s->num_train_steps = m->train_steps;
        s->beta_start = m->beta_start;
        s->beta_end = m->beta_end;
    }
    if (p) p->prediction = m->prediction;
    if (mp) mp->time_convention = m->time;
}
