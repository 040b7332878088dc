/* zip.c - the zip archive reader of the .pt reader (ptfile.c): the central directory, every
 * offset and length checked against the buffer before use. */
#include "tables/zip.h"
#include "base/base.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_CENTRAL_SIG 0x02014b50u
#define ZIP_EOCD_SIG 0x06054b50u
#define ZIP_LOCAL_SIZE 30u
#define ZIP_CENTRAL_SIZE 46u
#define ZIP_EOCD_SIZE 22u
#define ZIP_MAX_COMMENT 0xffffu

static int entry_cmp(const void *a, const void *b)
{
    return span_cmp(((const zip_entry *)a)->name, ((const zip_entry *)b)->name);
}

/* Compare `name` with the concatenation of parts[0..nparts), byte-wise like span_cmp. */
static int name_cmp(span name, const span *parts, size_t nparts)
{
    size_t pos = 0, i;

    for (i = 0; i < nparts; i++) {
        size_t rest = name.n - pos;
        size_t n = parts[i].n < rest ? parts[i].n : rest;
        int c = n ? memcmp(name.p + pos, parts[i].p, n) : 0;
        if (c != 0)
            return c;
        if (parts[i].n > rest)
            return -1;
        pos += n;
    }
    return pos < name.n;
}

const zip_entry *dsn_zip_find(const zip_archive *z, const span *parts, size_t nparts)
{
    size_t lo = 0, hi = z->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(z->entries[mid].name, parts, nparts);
        if (c == 0)
            return &z->entries[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Check one central directory record `c` (its fixed part and name are inside the buffer) and
 * fill *e from it and from its local header. `*data_total` sums the entry sizes so far. */
static int32_t zip_entry_load(const unsigned char *buf, size_t cd_off, const unsigned char *c,
                              const char *what, size_t *data_total, zip_entry *e)
{
    const unsigned char *local;
    uint16_t flags = rd16(c + 8), method = rd16(c + 10), name_len = rd16(c + 28);
    uint32_t crc = rd32(c + 16), csize = rd32(c + 20), size = rd32(c + 24);
    uint32_t local_off = rd32(c + 42);
    size_t data_off;
    qbuf q;

    e->name.p = (const char *)c + ZIP_CENTRAL_SIZE;
    e->name.n = name_len;
    if (csize == 0xffffffffu || size == 0xffffffffu || local_off == 0xffffffffu)
        return dsn_error(DEISSN_E_FORMAT, "%s: zip entry '%s' needs zip64 extensions, which "
                         "are not supported", what, quote(&q, e->name));
    if (flags & 1u)
        return dsn_error(DEISSN_E_FORMAT, "%s: zip entry '%s' is encrypted", what,
                         quote(&q, e->name));
    if (method != 0)
        return dsn_error(DEISSN_E_FORMAT, "%s: zip entry '%s' is compressed (method %u); only "
                         "stored (uncompressed) entries are supported", what,
                         quote(&q, e->name), (unsigned)method);
    if (csize != size)
        return dsn_error(DEISSN_E_FORMAT, "%s: zip entry '%s' is stored but has a compressed "
                         "size of %lu bytes and a size of %lu", what, quote(&q, e->name),
                         (unsigned long)csize, (unsigned long)size);

    /* The local header's own sizes and CRC may be zero (torch writes them after the data, in
     * a data descriptor), so only its name and extra field lengths are taken from it. */
    if (local_off > cd_off || cd_off - local_off < ZIP_LOCAL_SIZE ||
        rd32(buf + local_off) != ZIP_LOCAL_SIG)
        return dsn_error(DEISSN_E_FORMAT, "%s: zip entry '%s' has no local header at offset "
                         "%lu", what, quote(&q, e->name), (unsigned long)local_off);
    local = buf + local_off;
    data_off = (size_t)local_off + ZIP_LOCAL_SIZE + rd16(local + 26) + rd16(local + 28);
    if (data_off > cd_off || size > cd_off - data_off)
        return dsn_error(DEISSN_E_FORMAT, "%s: zip entry '%s' (%lu bytes at offset %zu) runs "
                         "past the end of the entries", what, quote(&q, e->name),
                         (unsigned long)size, data_off);
    if (rd16(local + 26) != name_len ||
        (name_len && memcmp(local + ZIP_LOCAL_SIZE, e->name.p, name_len) != 0))
        return dsn_error(DEISSN_E_FORMAT, "%s: the local header of zip entry '%s' names "
                         "another entry", what, quote(&q, e->name));
    /* Entries cannot share bytes, so their sizes add up to at most the central directory's
     * offset. Checking that bounds the work (CRCs, copies) by the size of the archive, whatever
     * the directory claims. */
    if (size > cd_off - *data_total)
        return dsn_error(DEISSN_E_FORMAT, "%s: zip entries overlap (at entry '%s')", what,
                         quote(&q, e->name));
    *data_total += size;
    e->data = buf + data_off;
    e->size = size;

#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION /* let the fuzzer past the checksums */
    {
        uint32_t actual = (uint32_t)crc32(0L, e->data, (uInt)size);
        if (actual != crc)
            return dsn_error(DEISSN_E_FORMAT, "%s: zip entry '%s' is corrupt (CRC-32 %08lx, "
                             "expected %08lx)", what, quote(&q, e->name),
                             (unsigned long)actual, (unsigned long)crc);
    }
#else
    (void)crc;
#endif
    return DEISSN_OK;
}

/* Index the archive in buf[0..len). On success z->entries must be released with dsn_free. */
int32_t dsn_zip_open(zip_archive *z, const unsigned char *buf, size_t len, const char *what)
{
    const unsigned char *eocd;
    size_t at, lowest, count, cd_off, cd_size, cd_end, pos, data_total = 0, i;
    const char *slash;
    qbuf q;

    if (len < ZIP_EOCD_SIZE)
        return dsn_error(DEISSN_E_FORMAT, "%s: not a torch.save archive (%zu bytes is too "
                         "short for a zip file)", what, len);
    /* The end of central directory record is followed only by its comment, so it is found by
     * searching backwards; requiring the comment to end the file skips signature bytes that
     * happen to sit inside a comment. */
    lowest = len - ZIP_EOCD_SIZE > ZIP_MAX_COMMENT ? len - ZIP_EOCD_SIZE - ZIP_MAX_COMMENT : 0;
    for (at = len - ZIP_EOCD_SIZE;; at--) {
        if (rd32(buf + at) == ZIP_EOCD_SIG && len - at - ZIP_EOCD_SIZE == rd16(buf + at + 20))
            break;
        if (at == lowest)
            return dsn_error(DEISSN_E_FORMAT, "%s: not a torch.save archive (no zip end of "
                             "central directory record)", what);
    }
    eocd = buf + at;
    count = rd16(eocd + 10);
    cd_size = rd32(eocd + 12);
    cd_off = rd32(eocd + 16);
    /* torch writes zip64 records too, but also a classic record that is complete whenever the
     * archive is below 4 GiB and 65535 entries: only its saturated fields mean zip64. */
    if (rd16(eocd + 8) == 0xffffu || count == 0xffffu || cd_size == 0xffffffffu ||
        cd_off == 0xffffffffu)
        return dsn_error(DEISSN_E_FORMAT, "%s: the zip archive needs zip64 extensions (4 GiB "
                         "or 65535 entries), which are not supported", what);
    if (rd16(eocd + 4) != 0 || rd16(eocd + 6) != 0 || rd16(eocd + 8) != count)
        return dsn_error(DEISSN_E_FORMAT, "%s: multi-volume zip archives are not supported",
                         what);
    if (cd_off > at || cd_size > at - cd_off)
        return dsn_error(DEISSN_E_FORMAT, "%s: the zip central directory (%zu bytes at offset "
                         "%zu) lies outside the archive", what, cd_size, cd_off);
    if (count == 0)
        return dsn_error(DEISSN_E_FORMAT, "%s: the zip archive is empty", what);

    z->entries = dsn_malloc(count * sizeof *z->entries);
    if (!z->entries)
        return dsn_error(DEISSN_E_NOMEM, "%s: out of memory indexing %zu zip entries", what,
                         count);
    z->count = count;
    cd_end = cd_off + cd_size;
    for (pos = cd_off, i = 0; i < count; i++) {
        const unsigned char *c = buf + pos;
        size_t record;
        int32_t rc;

        if (cd_end - pos < ZIP_CENTRAL_SIZE || rd32(c) != ZIP_CENTRAL_SIG)
            return dsn_error(DEISSN_E_FORMAT, "%s: zip central directory record %zu (offset "
                             "%zu) is truncated or corrupt", what, i, pos);
        record = ZIP_CENTRAL_SIZE + (size_t)rd16(c + 28) + rd16(c + 30) + rd16(c + 32);
        if (cd_end - pos < record)
            return dsn_error(DEISSN_E_FORMAT, "%s: zip central directory record %zu (offset "
                             "%zu) is truncated", what, i, pos);
        rc = zip_entry_load(buf, cd_off, c, what, &data_total, &z->entries[i]);
        if (rc != DEISSN_OK)
            return rc;
        pos += record;
    }
    if (pos != cd_end)
        return dsn_error(DEISSN_E_FORMAT, "%s: the zip central directory has %zu stray bytes "
                         "after its %zu records", what, cd_end - pos, count);

    /* Like torch's reader, take the archive's directory from its first entry. */
    slash = z->entries[0].name.n ? memchr(z->entries[0].name.p, '/', z->entries[0].name.n)
                                 : NULL;
    if (!slash)
        return dsn_error(DEISSN_E_FORMAT, "%s: zip entry '%s' is not in a directory; not a "
                         "torch.save archive", what, quote(&q, z->entries[0].name));
    z->prefix.p = z->entries[0].name.p;
    z->prefix.n = (size_t)(slash - z->entries[0].name.p);

    qsort(z->entries, count, sizeof *z->entries, entry_cmp);
    for (i = 1; i < count; i++)
        if (span_cmp(z->entries[i - 1].name, z->entries[i].name) == 0)
            return dsn_error(DEISSN_E_FORMAT, "%s: zip entry '%s' appears twice", what,
                             quote(&q, z->entries[i].name));
    return DEISSN_OK;
}
