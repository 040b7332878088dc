/* tablefile.h - libdeissn's table file format (docs/table-format.md): parse and write.
 * Internal. */
#ifndef DSN_TABLEFILE_H
#define DSN_TABLEFILE_H

#include "tables/normtable.h"

/* Parse a table file held in memory (docs/table-format.md); `what` names it in messages.
 * Any input is safe. On error *out is NULL and nothing is left allocated. */
int32_t dsn_table_parse(const unsigned char *buf, size_t len, const char *what,
                        deissn_normtable **out);

/* Whether buf starts with the table file magic. */
int dsn_table_magic(const unsigned char *buf, size_t len);

#endif
