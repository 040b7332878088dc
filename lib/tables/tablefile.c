/* tablefile.c - table files: libdeissn's own format (docs/table-format.md), written
 * atomically and read defensively, the CSV export, and loading either format (the
 * reference's torch.save files through ptfile.c).
 *
 * A file is a 40-byte header followed by one zlib stream (the payload). The header carries
 * both lengths, so every size is checked against the file and against the counts inside
 * before anything is allocated. CRC-32s over the header, the compressed bytes and the
 * uncompressed payload catch every corruption, even the bits deflate ignores (the padding
 * of its last byte), before the checks on values. */
#include "base/bytes.h"
#include "tables/normtable.h"
#include "tables/tablefile.h"
#include "tables/ptfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const unsigned char magic[8] = {0x89, 'D', 'S', 'N', 'T', 'B', 'L', '\n'};

#define FORMAT_VERSION 1u
#define FLAG_HAS_SUMS 1u
#define FLAG_HAS_PLANS 2u
#define FLAG_HAS_WEIGHTS 4u /* some plan is METHOD_LEARNED: its record ends with its weights */
#define PLAN_FIXED 64u /* a plan record's fields before its times */
#define HEADER_SIZE 44u
#define PAYLOAD_FIXED 32u /* the payload's fields before the arrays */
/* deflate cannot compress better than 1032:1, so a header that claims more lies. */
#define MAX_RATIO 1032u

int dsn_table_magic(const unsigned char *buf, size_t len)
{
    return len >= sizeof magic && !memcmp(buf, magic, sizeof magic);
}

/* A plan's record: the fixed fields, its times, and a METHOD_LEARNED plan's weights. */
static size_t plan_record_size(const deissn_plan *pl)
{
    size_t per_step = 8 * (1 + (pl->method == DEISSN_METHOD_LEARNED ? DEISSN_PLAN_WEIGHTS : 0));
    return PLAN_FIXED + per_step * pl->nfe;
}

/* ---- writing ----------------------------------------------------------------------------- */

static int32_t write_all(int fd, const unsigned char *p, size_t len, const char *path,
                         const char *fn)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return dsn_error(DEISSN_E_IO, "%s: %s: write failed: %s", fn, path,
                             w < 0 ? strerror(errno) : "no progress");
        p += w;
        len -= (size_t)w;
    }
    return DEISSN_OK;
}

/* Write a then b to the file descriptor fd, named `path` in messages. */
static int32_t write_both(int fd, const unsigned char *a, size_t alen, const unsigned char *b,
                          size_t blen, const char *path, const char *fn)
{
    int32_t rc = write_all(fd, a, alen, path, fn);
    return rc == DEISSN_OK ? write_all(fd, b, blen, path, fn) : rc;
}

/* `path` with its symbolic links followed (up to 40; a relative link is relative to its own
 * directory), into a dsn_malloc'd *out. The end of the chain need not exist. */
static int32_t follow_links(const char *path, char **out, const char *fn)
{
    size_t len = strlen(path);
    char *cur = dsn_malloc(len + 1);
    if (!cur) return dsn_error(DEISSN_E_NOMEM, "%s: out of memory", fn);
    memcpy(cur, path, len + 1);
    for (int hops = 0;; hops++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) break;
        if (hops == 40) {
            dsn_free(cur);
            return dsn_error(DEISSN_E_IO, "%s: %s: more than 40 symbolic links", fn, path);
        }
        size_t cap = (size_t)st.st_size + 1 > 256 ? (size_t)st.st_size + 1 : 256;
        char *link = NULL;
        ssize_t got;
        for (;;) { /* st_size may be 0 or stale: grow until the link fits */
            dsn_free(link);
            if (!(link = dsn_malloc(cap))) break;
            got = readlink(cur, link, cap);
            if (got < 0 || (size_t)got < cap) break;
            cap *= 2;
        }
        if (!link || got < 0) {
            int32_t rc = link ? dsn_error(DEISSN_E_IO, "%s: %s: cannot read the symbolic link %s: "
                                          "%s", fn, path, cur, strerror(errno))
                              : dsn_error(DEISSN_E_NOMEM, "%s: out of memory", fn);
            dsn_free(link);
            dsn_free(cur);
            return rc;
        }
        link[got] = '\0';
        const char *slash = strrchr(cur, '/');
        size_t dir = link[0] == '/' || !slash ? 0 : (size_t)(slash - cur) + 1;
        char *next = dsn_malloc(dir + (size_t)got + 1);
        if (next) {
            memcpy(next, cur, dir);
            memcpy(next + dir, link, (size_t)got + 1);
        }
        dsn_free(link);
        dsn_free(cur);
        if (!(cur = next)) return dsn_error(DEISSN_E_NOMEM, "%s: out of memory", fn);
    }
    *out = cur;
    return DEISSN_OK;
}

/* Remove the temporaries "PREFIX<pid>-<k>" in `dir` that processes which no longer exist
 * left behind (killed during a save). Best effort: errors are ignored. */
static void remove_stale_temporaries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d) return;
    size_t plen = strlen(prefix), dlen = strlen(dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, plen) != 0) continue;
        char *end;
        errno = 0;
        long pid = strtol(e->d_name + plen, &end, 10);
        if (errno || pid <= 0 || *end != '-' || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours to tell */
        char *full = dsn_malloc(dlen + strlen(e->d_name) + 2);
        if (!full) break;
        sprintf(full, "%s/%s", dir, e->d_name);
        unlink(full);
        dsn_free(full);
    }
    closedir(d);
}

/* Write a then b to `path`.
 * - An existing path that is not a regular file (a FIFO, a character device, /dev/stdout) is
 *   written directly: it cannot be replaced, and should not be.
 * - Otherwise symbolic links are followed to the target, and the bytes go to a temporary
 *   ".NAME.deissn-tmp-PID-K" next to the target, which is synced and renamed over it: readers
 *   see the old file or the complete new one, never a part. A target that exists keeps its
 *   mode (and its owner and group where the process may set them). Temporaries of this name
 *   whose process no longer exists (killed during a save) are removed first. */
static int32_t write_atomic(const char *path, const unsigned char *a, size_t alen,
                            const unsigned char *b, size_t blen, const char *fn)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return dsn_error(DEISSN_E_IO, "%s: %s: is a directory", fn, path);
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        int fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
            return dsn_error(DEISSN_E_IO, "%s: %s: cannot open it for writing: %s", fn, path,
                             strerror(errno));
        int32_t rc = write_both(fd, a, alen, b, blen, path, fn);
        if (close(fd) != 0 && rc == DEISSN_OK)
            rc = dsn_error(DEISSN_E_IO, "%s: %s: close failed: %s", fn, path, strerror(errno));
        return rc;
    }

    static unsigned counter; /* tells apart temporaries of threads of this process */
    char *target = NULL;
    int32_t rc = follow_links(path, &target, fn);
    if (rc != DEISSN_OK) return rc;
    int exists = stat(target, &st) == 0;
    /* dir/.NAME.deissn-tmp-PID-K; NAME shortened so that the temporary's name stays within
     * NAME_MAX (255) */
    const char *slash = strrchr(target, '/');
    const char *base = slash ? slash + 1 : target;
    size_t dlen = slash ? (size_t)(slash - target) : 0, blen_name = strlen(base);
    if (blen_name > 200) blen_name = 200;
    size_t cap = dlen + blen_name + 64;
    char *tmp = dsn_malloc(cap), *dir = dsn_malloc(dlen + 2);
    if (!tmp || !dir) {
        dsn_free(tmp);
        dsn_free(dir);
        dsn_free(target);
        return dsn_error(DEISSN_E_NOMEM, "%s: out of memory", fn);
    }
    if (!slash || dlen == 0) strcpy(dir, slash ? "/" : ".");
    else memcpy(dir, target, dlen), dir[dlen] = '\0';
    char prefix[220];
    snprintf(prefix, sizeof prefix, ".%.*s.deissn-tmp-", (int)blen_name, base);
    remove_stale_temporaries(dir, prefix);
    int fd = -1;
    for (int attempt = 0; fd < 0 && attempt < 100; attempt++) {
        unsigned k = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        snprintf(tmp, cap, "%.*s%s%ld-%u", slash ? (int)dlen + 1 : 0, target, prefix,
                 (long)getpid(), k);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    dsn_free(dir);
    if (fd < 0) {
        rc = dsn_error(DEISSN_E_IO, "%s: %s: cannot create a temporary file next to it: %s", fn,
                       target, strerror(errno));
        dsn_free(tmp);
        dsn_free(target);
        return rc;
    }
    if (exists) {
        /* the owner first: changing it clears set-user-ID bits that the mode then restores */
        if ((st.st_uid != geteuid() || st.st_gid != getegid()) &&
            fchown(fd, st.st_uid, st.st_gid) != 0) {
            /* not permitted: the file becomes the caller's, as any rewrite would */
        }
        if (fchmod(fd, st.st_mode & 07777) != 0)
            rc = dsn_error(DEISSN_E_IO, "%s: %s: cannot give the new file the mode %04o: %s", fn,
                           target, (unsigned)(st.st_mode & 07777), strerror(errno));
    }
    if (rc == DEISSN_OK) rc = write_both(fd, a, alen, b, blen, target, fn);
    if (rc == DEISSN_OK && fsync(fd) != 0)
        rc = dsn_error(DEISSN_E_IO, "%s: %s: fsync failed: %s", fn, target, strerror(errno));
    if (close(fd) != 0 && rc == DEISSN_OK)
        rc = dsn_error(DEISSN_E_IO, "%s: %s: close failed: %s", fn, target, strerror(errno));
    if (rc == DEISSN_OK && rename(tmp, target) != 0)
        rc = dsn_error(DEISSN_E_IO, "%s: %s: cannot rename the temporary file over it: %s", fn,
                       target, strerror(errno));
    if (rc != DEISSN_OK) unlink(tmp);
    dsn_free(tmp);
    dsn_free(target);
    return rc;
}

int32_t deissn_normtable_save(const deissn_normtable *t, const char *path)
{
    const char *fn = "deissn_normtable_save";
    if (!t || !path)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn, t ? "path" : "table");
    if (t->n > DSN_TABLE_MAX_KNOTS)
        return dsn_error(DEISSN_E_SIZE, "%s: %s: %zu knots, the format holds at most %u", fn,
                         path, t->n, DSN_TABLE_MAX_KNOTS);
    size_t arrays = t->sums ? 4 : 2;
    size_t raw_len = PAYLOAD_FIXED + t->n * arrays * 8 + t->metadata_len;
    if (t->n_plans) {
        raw_len += 4;
        for (size_t i = 0; i < t->n_plans; i++) raw_len += plan_record_size(&t->plans[i]);
    }
    uLong comp_cap = compressBound((uLong)raw_len);
    unsigned char *raw = dsn_malloc(raw_len), *comp = dsn_malloc(comp_cap);
    if (!raw || !comp) {
        dsn_free(raw);
        dsn_free(comp);
        return dsn_error(DEISSN_E_NOMEM, "%s: out of memory for %zu bytes", fn, raw_len);
    }
    dsn_put_u64(raw, t->n);
    dsn_put_u32(raw + 8, t->clip);
    dsn_put_u32(raw + 12, t->fingerprint);
    dsn_put_u64(raw + 16, t->samples);
    dsn_put_u32(raw + 24, t->steps);
    dsn_put_u32(raw + 28, (uint32_t)t->metadata_len);
    unsigned char *p = raw + PAYLOAD_FIXED;
    for (size_t i = 0; i < t->n; i++, p += 8) dsn_put_f64(p, t->tau[i]);
    for (size_t i = 0; i < t->n; i++, p += 8) dsn_put_f64(p, t->r[i]);
    if (t->sums) {
        for (size_t i = 0; i < t->n; i++, p += 8) dsn_put_u64(p, (uint64_t)t->sums[i]);
        for (size_t i = 0; i < t->n; i++, p += 8) dsn_put_u64(p, t->counts[i]);
    }
    memcpy(p, t->metadata, t->metadata_len);
    p += t->metadata_len;
    if (t->n_plans) {
        dsn_put_u32(p, (uint32_t)t->n_plans);
        p += 4;
        for (size_t i = 0; i < t->n_plans; i++) {
            const deissn_plan *pl = &t->plans[i];
            dsn_put_u32(p, pl->nfe);
            dsn_put_u32(p + 4, (uint32_t)pl->method);
            dsn_put_u32(p + 8, pl->order);
            dsn_put_u32(p + 12, pl->corrector | pl->lower_order_final << 1 | pl->uses_table << 2);
            dsn_put_u32(p + 16, pl->samples);
            dsn_put_u32(p + 20, 0);
            dsn_put_f64(p + 24, pl->tau_end);
            dsn_put_f64(p + 32, pl->error);
            dsn_put_f64(p + 40, pl->error_low);
            dsn_put_f64(p + 48, pl->error_high);
            dsn_put_f64(p + 56, pl->best_error);
            p += PLAN_FIXED;
            for (uint32_t k = 0; k < pl->nfe; k++, p += 8) dsn_put_f64(p, pl->taus[k]);
            for (uint32_t k = 0; pl->method == DEISSN_METHOD_LEARNED && k < pl->nfe; k++)
                for (int w = 0; w < DEISSN_PLAN_WEIGHTS; w++, p += 8)
                    dsn_put_f64(p, pl->weights[k][w]);
        }
    }

    int32_t rc = DEISSN_OK;
    uLongf comp_len = comp_cap;
    if (compress2(comp, &comp_len, raw, (uLong)raw_len, Z_BEST_COMPRESSION) != Z_OK)
        rc = dsn_error(DEISSN_E_INTERNAL, "%s: %s: zlib failed to compress %zu bytes", fn, path,
                       raw_len);
    if (rc == DEISSN_OK) {
        unsigned char h[HEADER_SIZE];
        memcpy(h, magic, sizeof magic);
        dsn_put_u32(h + 8, FORMAT_VERSION);
        int learned = 0;
        for (size_t i = 0; i < t->n_plans; i++) learned |= t->plans[i].method == DEISSN_METHOD_LEARNED;
        dsn_put_u32(h + 12, (t->sums ? FLAG_HAS_SUMS : 0) | (t->n_plans ? FLAG_HAS_PLANS : 0) |
                            (learned ? FLAG_HAS_WEIGHTS : 0));
        dsn_put_u64(h + 16, comp_len);
        dsn_put_u64(h + 24, raw_len);
        dsn_put_u32(h + 32, dsn_crc32(raw, raw_len));
        dsn_put_u32(h + 36, dsn_crc32(comp, comp_len));
        dsn_put_u32(h + 40, dsn_crc32(h, 40));
        rc = write_atomic(path, h, sizeof h, comp, comp_len, fn);
    }
    dsn_free(raw);
    dsn_free(comp);
    return rc;
}

int32_t deissn_normtable_export_csv(const deissn_normtable *t, const char *path)
{
    const char *fn = "deissn_normtable_export_csv";
    if (!t || !path)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: %s is NULL", fn, t ? "path" : "table");
    /* Per line: two %.17g doubles (<= 24 chars each), two 20-digit integers, separators. */
    enum { LINE_MAX_CHARS = 4 * 25 + 8 };
    size_t cap;
    if (!dsn_mul_size(t->n + 1, LINE_MAX_CHARS, &cap))
        return dsn_error(DEISSN_E_SIZE, "%s: %zu knots overflow", fn, t->n);
    char *text = dsn_malloc(cap);
    if (!text) return dsn_error(DEISSN_E_NOMEM, "%s: out of memory for %zu bytes", fn, cap);
    size_t len = (size_t)snprintf(text, cap, t->sums ? "tau,r,sum,count\n" : "tau,r\n");
    for (size_t i = 0; i < t->n; i++) {
        if (t->sums)
            len += (size_t)snprintf(text + len, cap - len, "%.17g,%.17g,%lld,%llu\n", t->tau[i],
                                    t->r[i], (long long)t->sums[i],
                                    (unsigned long long)t->counts[i]);
        else
            len += (size_t)snprintf(text + len, cap - len, "%.17g,%.17g\n", t->tau[i], t->r[i]);
    }
    int32_t rc = write_atomic(path, (const unsigned char *)text, len, NULL, 0, fn);
    dsn_free(text);
    return rc;
}

/* ---- reading ----------------------------------------------------------------------------- */

/* The plans section (docs/table-format.md): exactly `len` bytes at p. */
static int32_t parse_plans(const unsigned char *p, uint64_t len, int has_weights,
                           const char *what, deissn_plan **out, uint32_t *count)
{
    *out = NULL;
    *count = 0;
    uint32_t n = dsn_get_u32(p);
    if (n < 1 || n > DEISSN_NORMTABLE_MAX_PLANS)
        return dsn_error(DEISSN_E_FORMAT, "%s: %u plans (a table holds 1 to %d)", what, n,
                         DEISSN_NORMTABLE_MAX_PLANS);
    deissn_plan *plans = dsn_calloc(n, sizeof *plans);
    if (!plans) return dsn_error(DEISSN_E_NOMEM, "%s: out of memory for %u plans", what, n);
    uint64_t at = 4;
    int32_t rc = DEISSN_OK;
    for (uint32_t i = 0; rc == DEISSN_OK && i < n; i++) {
        deissn_plan *pl = &plans[i];
        if (len - at < PLAN_FIXED) {
            rc = dsn_error(DEISSN_E_FORMAT, "%s: plan %u is cut off at byte %llu of the plans",
                           what, i, (unsigned long long)at);
            break;
        }
        const unsigned char *q = p + at;
        pl->version = DEISSN_PLAN_VERSION;
        pl->nfe = dsn_get_u32(q);
        pl->method = (int32_t)dsn_get_u32(q + 4);
        pl->order = dsn_get_u32(q + 8);
        uint32_t flags = dsn_get_u32(q + 12);
        pl->corrector = flags & 1;
        pl->lower_order_final = flags >> 1 & 1;
        pl->uses_table = flags >> 2 & 1;
        pl->samples = dsn_get_u32(q + 16);
        pl->tau_end = dsn_get_f64(q + 24);
        pl->error = dsn_get_f64(q + 32);
        pl->error_low = dsn_get_f64(q + 40);
        pl->error_high = dsn_get_f64(q + 48);
        pl->best_error = dsn_get_f64(q + 56);
        if ((flags >> 3) != 0 || dsn_get_u32(q + 20) != 0)
            rc = dsn_error(DEISSN_E_FORMAT, "%s: plan %u: reserved bits set", what, i);
        else if (pl->nfe < 1 || pl->nfe > DEISSN_PLAN_MAX_NFE)
            rc = dsn_error(DEISSN_E_FORMAT, "%s: plan %u: nfe %u (1 to %d)", what, i, pl->nfe,
                           DEISSN_PLAN_MAX_NFE);
        else if (pl->method == DEISSN_METHOD_LEARNED && !has_weights)
            rc = dsn_error(DEISSN_E_FORMAT, "%s: plan %u is METHOD_LEARNED, and the header does "
                           "not announce weights", what, i);
        else if (len - at < plan_record_size(pl))
            rc = dsn_error(DEISSN_E_FORMAT, "%s: plan %u: its %u times%s are cut off", what, i,
                           pl->nfe, pl->method == DEISSN_METHOD_LEARNED ? " and weights" : "");
        if (rc != DEISSN_OK) break;
        for (uint32_t k = 0; k < pl->nfe; k++) pl->taus[k] = dsn_get_f64(q + PLAN_FIXED + 8 * k);
        const unsigned char *w = q + PLAN_FIXED + 8 * (size_t)pl->nfe;
        for (uint32_t k = 0; pl->method == DEISSN_METHOD_LEARNED && k < pl->nfe; k++)
            for (int j = 0; j < DEISSN_PLAN_WEIGHTS; j++, w += 8) pl->weights[k][j] = dsn_get_f64(w);
        at += plan_record_size(pl);
    }
    if (rc == DEISSN_OK && at != len)
        rc = dsn_error(DEISSN_E_FORMAT, "%s: %llu bytes after the last plan", what,
                       (unsigned long long)(len - at));
    if (rc == DEISSN_OK) rc = dsn_plans_check(plans, n, DEISSN_E_FORMAT, what);
    if (rc != DEISSN_OK) {
        dsn_free(plans);
        return rc;
    }
    *out = plans;
    *count = n;
    return DEISSN_OK;
}

int32_t dsn_table_parse(const unsigned char *buf, size_t len, const char *what,
                        deissn_normtable **out)
{
    *out = NULL;
    if (!dsn_table_magic(buf, len))
        return dsn_error(DEISSN_E_FORMAT, "%s: not a libdeissn table file (wrong magic)", what);
    if (len < HEADER_SIZE)
        return dsn_error(DEISSN_E_FORMAT, "%s: truncated: %zu bytes, the header alone has %u",
                         what, len, HEADER_SIZE);
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION /* let the fuzzer past the checksums */
    if (dsn_crc32(buf, 40) != dsn_get_u32(buf + 40))
        return dsn_error(DEISSN_E_FORMAT, "%s: the header is corrupt (CRC-32 %08x, expected "
                         "%08x)", what, dsn_crc32(buf, 40), dsn_get_u32(buf + 40));
#endif
    uint32_t version = dsn_get_u32(buf + 8), flags = dsn_get_u32(buf + 12);
    uint64_t comp_len = dsn_get_u64(buf + 16), raw_len = dsn_get_u64(buf + 24);
    if (version != FORMAT_VERSION)
        return dsn_error(DEISSN_E_FORMAT, "%s: table format version %u; this libdeissn reads "
                         "version %u%s", what, version, FORMAT_VERSION,
                         version > FORMAT_VERSION ? " (the file is newer: upgrade libdeissn)" : "");
    if (flags & ~(FLAG_HAS_SUMS | FLAG_HAS_PLANS | FLAG_HAS_WEIGHTS) ||
        ((flags & FLAG_HAS_WEIGHTS) && !(flags & FLAG_HAS_PLANS)))
        return dsn_error(DEISSN_E_FORMAT, "%s: unknown flags 0x%08x in the header", what, flags);
    if (comp_len != len - HEADER_SIZE)
        return dsn_error(DEISSN_E_FORMAT, "%s: %s: the header announces %llu bytes of payload, "
                         "the file has %zu", what, comp_len > len - HEADER_SIZE ? "truncated" :
                         "trailing bytes", (unsigned long long)comp_len, len - HEADER_SIZE);
    int has_sums = (flags & FLAG_HAS_SUMS) != 0, has_plans = (flags & FLAG_HAS_PLANS) != 0;
    uint64_t max_plans = has_plans ? 4 + (uint64_t)DEISSN_NORMTABLE_MAX_PLANS *
                                             (PLAN_FIXED + 8 * DEISSN_PLAN_MAX_NFE *
                                              (1 + DEISSN_PLAN_WEIGHTS)) : 0;
    uint64_t max_raw = PAYLOAD_FIXED + (uint64_t)DSN_TABLE_MAX_KNOTS * (has_sums ? 32 : 16) +
                       DEISSN_NORMTABLE_METADATA_MAX + max_plans;
    if (raw_len < PAYLOAD_FIXED || raw_len > max_raw || raw_len / MAX_RATIO > comp_len)
        return dsn_error(DEISSN_E_FORMAT, "%s: an uncompressed payload of %llu bytes is "
                         "impossible (from %llu compressed bytes; at most %llu)", what,
                         (unsigned long long)raw_len, (unsigned long long)comp_len,
                         (unsigned long long)max_raw);
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    if (dsn_crc32(buf + HEADER_SIZE, (size_t)comp_len) != dsn_get_u32(buf + 36))
        return dsn_error(DEISSN_E_FORMAT, "%s: the compressed payload is corrupt (CRC-32 %08x, "
                         "expected %08x)", what, dsn_crc32(buf + HEADER_SIZE, (size_t)comp_len),
                         dsn_get_u32(buf + 36));
#endif

    unsigned char *raw = dsn_malloc((size_t)raw_len);
    if (!raw)
        return dsn_error(DEISSN_E_NOMEM, "%s: out of memory for %llu bytes", what,
                         (unsigned long long)raw_len);
    uLongf got = (uLongf)raw_len;
    uLong used = (uLong)comp_len;
    int zrc = uncompress2(raw, &got, buf + HEADER_SIZE, &used);
    int32_t rc = DEISSN_OK;
    if (zrc != Z_OK || got != raw_len || used != comp_len)
        rc = dsn_error(DEISSN_E_FORMAT, "%s: the payload is corrupt (zlib: %s)", what,
                       zrc != Z_OK ? zError(zrc) : got != raw_len ? "wrong length" :
                       "trailing bytes");
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    else if (dsn_crc32(raw, (size_t)raw_len) != dsn_get_u32(buf + 32))
        rc = dsn_error(DEISSN_E_FORMAT, "%s: the payload is corrupt (CRC-32 %08x, expected "
                       "%08x)", what, dsn_crc32(raw, (size_t)raw_len), dsn_get_u32(buf + 32));
#endif
    uint64_t n = dsn_get_u64(raw);
    uint32_t meta_len = dsn_get_u32(raw + 28);
    if (rc == DEISSN_OK && (n < 2 || n > DSN_TABLE_MAX_KNOTS))
        rc = dsn_error(DEISSN_E_FORMAT, "%s: %llu knots (a table has 2 to %u)", what,
                       (unsigned long long)n, DSN_TABLE_MAX_KNOTS);
    uint64_t base = PAYLOAD_FIXED + n * (has_sums ? 32 : 16) + (uint64_t)meta_len;
    if (rc == DEISSN_OK && (has_plans ? raw_len < base + 4 : raw_len != base))
        rc = dsn_error(DEISSN_E_FORMAT, "%s: a payload of %llu bytes cannot hold %llu knots%s "
                       "and %u bytes of metadata%s", what, (unsigned long long)raw_len,
                       (unsigned long long)n, has_sums ? " with sums" : "", meta_len,
                       has_plans ? " and plans" : "");
    deissn_plan *plans = NULL;
    uint32_t n_plans = 0;
    if (rc == DEISSN_OK && has_plans)
        rc = parse_plans(raw + base, raw_len - base, (flags & FLAG_HAS_WEIGHTS) != 0, what,
                         &plans, &n_plans);
    deissn_normtable *t = NULL;
    if (rc == DEISSN_OK) rc = dsn_table_alloc(&t, (size_t)n, has_sums, meta_len, what);
    if (rc == DEISSN_OK) {
        t->clip = dsn_get_u32(raw + 8);
        t->fingerprint = dsn_get_u32(raw + 12);
        t->samples = dsn_get_u64(raw + 16);
        t->steps = dsn_get_u32(raw + 24);
        const unsigned char *p = raw + PAYLOAD_FIXED;
        for (size_t i = 0; i < n; i++, p += 8) t->tau[i] = dsn_get_f64(p);
        for (size_t i = 0; i < n; i++, p += 8) t->r[i] = dsn_get_f64(p);
        if (has_sums) {
            for (size_t i = 0; i < n; i++, p += 8) t->sums[i] = (int64_t)dsn_get_u64(p);
            for (size_t i = 0; i < n; i++, p += 8) t->counts[i] = dsn_get_u64(p);
        }
        memcpy(t->metadata, p, meta_len);
        rc = dsn_table_set_plans(t, plans, n_plans, what);
        if (rc == DEISSN_OK) rc = dsn_table_check(t, DEISSN_E_FORMAT, what);
        else deissn_normtable_free(t);
    }
    dsn_free(plans);
    dsn_free(raw);
    if (rc == DEISSN_OK) *out = t;
    return rc;
}

/* ---- loading: either format, recognised by its first bytes ------------------------------ */

static int32_t load_pt(deissn_normtable **out, const unsigned char *buf, size_t len,
                       const char *path, const deissn_normtable_params *params)
{
    dsn_pt_dict d;
    int32_t rc = dsn_pt_parse(buf, len, path, &d);
    if (rc) return rc;
    const dsn_pt_tensor *sa = dsn_pt_find(&d, "score_abs"), *ls = dsn_pt_find(&d, "Ls");
    if (!sa || !ls)
        rc = dsn_error(DEISSN_E_FORMAT, "%s: no tensor '%s' in the dict (a DEIS-SN table has "
                       "'score_abs' and 'Ls')", path, sa ? "Ls" : "score_abs");
    else if (sa->numel != ls->numel)
        rc = dsn_error(DEISSN_E_FORMAT, "%s: 'score_abs' has %zu values but 'Ls' has %zu", path,
                       sa->numel, ls->numel);
    else
        rc = dsn_table_from_reference(out, sa->data, ls->data, sa->numel, params, path);
    dsn_pt_dict_free(&d);
    return rc;
}

int32_t deissn_normtable_load(deissn_normtable **out, const char *path,
                              const deissn_normtable_params *params)
{
    const char *fn = "deissn_normtable_load";
    if (!out) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!path) return dsn_error(DEISSN_E_INVALID_ARG, "%s: path is NULL", fn);
    unsigned char *buf = NULL;
    size_t len = 0;
    int32_t rc = dsn_read_file(path, &buf, &len);
    if (rc) return rc;
    if (dsn_table_magic(buf, len)) {
        deissn_normtable *t = NULL;
        rc = dsn_table_parse(buf, len, path, &t);
        if (rc == DEISSN_OK && params) {
            rc = dsn_table_derive(out, t, params, fn);
            deissn_normtable_free(t);
        } else if (rc == DEISSN_OK) {
            *out = t;
        }
    } else if (len >= 4 && !memcmp(buf, "PK\003\004", 4)) {
        rc = load_pt(out, buf, len, path, params);
    } else {
        char first[8 * 3 + 1] = "";
        for (size_t i = 0, at = 0; i < len && i < 8; i++)
            at += (size_t)snprintf(first + at, sizeof first - at, "%s%02x", i ? " " : "", buf[i]);
        rc = len == 0 ? dsn_error(DEISSN_E_FORMAT, "%s: the file is empty", path)
                      : dsn_error(DEISSN_E_FORMAT, "%s: not a normalization table: it starts with "
                                  "bytes %s, neither libdeissn's table format (89 44 53 4e ...) "
                                  "nor a torch.save zip (50 4b 03 04)", path, first);
    }
    dsn_free(buf);
    return rc;
}
