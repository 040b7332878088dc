/* zip.h - the zip archive reader under the .pt reader: the central directory walked with
 * every offset checked. Internal. */
#ifndef DSN_ZIP_H
#define DSN_ZIP_H

#include "tables/span.h"

typedef struct zip_entry {
    span name;
    const unsigned char *data;
    size_t size;
} zip_entry;

typedef struct zip_archive {
    zip_entry *entries; /* sorted by name, for zip_find() */
    size_t count;
    span prefix;        /* the directory of the first entry, as torch takes it */
} zip_archive;

/* Read the central directory of the archive buf[0..len) into *z: entries sorted by name, their
 * data pointing into buf (only stored entries, as torch.save writes them, are accepted).
 * z->entries is allocated; the caller frees it with dsn_free(), also after an error.
 * DEISSN_E_FORMAT naming `what`, the entry and the problem; DEISSN_E_NOMEM. */
int32_t dsn_zip_open(zip_archive *z, const unsigned char *buf, size_t len, const char *what);

/* The entry whose name is the concatenation of parts[0..nparts), or NULL. */
const zip_entry *dsn_zip_find(const zip_archive *z, const span *parts, size_t nparts);

#endif
