/* system.c - what the library asks of the operating system: whole-file reads and a
 * monotonic clock. */
#include "base/base.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

double dsn_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------------------------------ */

int32_t dsn_read_file(const char *path, unsigned char **buf, size_t *len)
{
    FILE *f;
    unsigned char *data = NULL;
    size_t size = 0, cap = 0;
    int32_t rc = DEISSN_OK;

    if (!buf || !len)
        return dsn_error(DEISSN_E_INVALID_ARG, "dsn_read_file: NULL output");
    *buf = NULL;
    *len = 0;
    if (!path)
        return dsn_error(DEISSN_E_INVALID_ARG, "dsn_read_file: path is NULL");
    f = fopen(path, "rb");
    if (!f)
        return dsn_error(DEISSN_E_IO, "%s: cannot open: %s", path, strerror(errno));
    /* Read to the end rather than trusting a size from fseek/ftell, which fails on pipes and
     * overflows long on some platforms; one byte past the limit tells a file that is too big. */
    for (;;) {
        size_t got;
        if (size == cap) {
            size_t next = cap ? cap * 2 : (size_t)64 << 10;
            unsigned char *grown;
            if (cap > DSN_MAX_FILE_SIZE) {
                rc = dsn_error(DEISSN_E_FORMAT, "%s: the file is larger than %zu MiB", path,
                               DSN_MAX_FILE_SIZE >> 20);
                break;
            }
            if (next > DSN_MAX_FILE_SIZE + 1)
                next = DSN_MAX_FILE_SIZE + 1;
            grown = dsn_realloc(data, next);
            if (!grown) {
                rc = dsn_error(DEISSN_E_NOMEM, "%s: out of memory reading the file", path);
                break;
            }
            data = grown;
            cap = next;
        }
        errno = 0;
        got = fread(data + size, 1, cap - size, f);
        size += got;
        if (got == 0) {
            if (ferror(f))
                rc = dsn_error(DEISSN_E_IO, "%s: cannot read: %s", path,
                               strerror(errno ? errno : EIO));
            break;
        }
    }
    fclose(f);
    if (rc != DEISSN_OK) {
        dsn_free(data);
        return rc;
    }
    *buf = data;
    *len = size;
    return DEISSN_OK;
}
