/* ptfile.c - read torch.save archives (dicts of float32 tensors) without libtorch.
 *
 * A torch.save file (torch >= 1.6) is a zip archive whose entries all sit in one directory,
 * <prefix>/. <prefix>/data.pkl pickles the saved object; each tensor in it is rebuilt by
 * torch._utils._rebuild_tensor_v2 from a storage given as a persistent id, whose key names the
 * entry <prefix>/data/<key> holding the storage's raw bytes. We walk the zip's central
 * directory, run a pickle interpreter that knows only the opcodes torch.save emits for a dict
 * of tensors, and copy the storages out of the archive. docs/pt-format.md has the details.
 *
 * The input comes from outside, so every offset and length read from it is checked against
 * the buffer before use and every resource is bounded (pickle stack, memo, object count).
 * tests/fuzz/fuzz_ptfile.c fuzzes this file. */
#include "tables/ptfile.h"
#include "base/base.h"

#include <errno.h>
#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Storages are decoded through a uint32_t; this also assumes floats and integers share their
 * byte order, which holds on every platform the library supports. */
_Static_assert(sizeof(float) == sizeof(uint32_t) && FLT_MANT_DIG == 24,
               "float must be IEEE 754 binary32");

/* Bounds on what a pickle may make us allocate (about 100 MB at worst). torch.save's pickle
 * of a dict of tensors costs some 31 cells (objects plus container elements) per tensor, so
 * the cell bound allows over 30000 tensors; its stack holds up to 2001 entries (torch, like
 * Python, sets dict items in batches of 1000) and its MARKs nest 3 deep. */
#define PK_MAX_STACK 8192
#define PK_MAX_MARKS 64
#define PK_MAX_MEMO ((uint32_t)1 << 20)
#define PK_MAX_CELLS ((size_t)1 << 20) /* objects plus container elements */

/* Bytes of the input, not NUL-terminated. */
typedef struct span {
    const char *p;
    size_t n;
} span;

static int span_is(span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static int span_cmp(span a, span b)
{
    size_t n = a.n < b.n ? a.n : b.n;
    int c = n ? memcmp(a.p, b.p, n) : 0;
    if (c != 0)
        return c;
    return (a.n > b.n) - (a.n < b.n);
}

/* A printable, bounded copy of untrusted bytes, for messages. */
typedef struct qbuf {
    char s[72];
} qbuf;

static const char *quote(qbuf *q, span s)
{
    const size_t max = sizeof q->s - 1;
    size_t keep = s.n <= max ? s.n : max - 3;
    size_t i;

    for (i = 0; i < keep; i++) {
        unsigned char c = (unsigned char)s.p[i];
        q->s[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (keep < s.n) {
        memcpy(q->s + keep, "...", 3);
        keep += 3;
    }
    q->s[keep] = '\0';
    return q->s;
}

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ------------------------------------------------------------------------------------------ */
/* Zip                                                                                        */
/* ------------------------------------------------------------------------------------------ */

#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_CENTRAL_SIG 0x02014b50u
#define ZIP_EOCD_SIG 0x06054b50u
#define ZIP_LOCAL_SIZE 30u
#define ZIP_CENTRAL_SIZE 46u
#define ZIP_EOCD_SIZE 22u
#define ZIP_MAX_COMMENT 0xffffu

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

static const zip_entry *zip_find(const zip_archive *z, const span *parts, size_t nparts)
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
static int32_t zip_open(zip_archive *z, const unsigned char *buf, size_t len, const char *what)
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

/* ------------------------------------------------------------------------------------------ */
/* Pickle                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef enum pk_kind {
    PK_NONE,
    PK_BOOL,
    PK_INT,
    PK_STR,
    PK_GLOBAL,
    PK_TUPLE,
    PK_DICT,    /* also collections.OrderedDict */
    PK_STORAGE, /* a persistent id naming a storage */
    PK_TENSOR   /* a call of torch._utils._rebuild_tensor_v2, checked when used */
} pk_kind;

static const char *const pk_kind_names[] = {
    "None", "bool", "int", "str", "global", "tuple", "dict", "storage", "tensor",
};

typedef struct pk_obj pk_obj;
struct pk_obj {
    pk_obj *next_alloc;  /* all objects of a parse, to free them together */
    pk_kind kind;
    int64_t num;         /* BOOL, INT; STORAGE: its number of elements */
    span str;            /* STR; GLOBAL: the module; STORAGE: the key */
    span name;           /* GLOBAL: the name */
    const pk_obj *ref;   /* STORAGE: its type (a GLOBAL); TENSOR: its arguments (a TUPLE) */
    pk_obj **items;      /* TUPLE: the elements; DICT: keys and values, interleaved */
    size_t count, cap;
};

typedef struct pk_parser {
    const char *what;
    const unsigned char *buf; /* the pickle */
    size_t len, pos;
    size_t op_pos;            /* offset of the opcode being run */
    pk_obj *objects;
    size_t cells;             /* objects plus container elements, against PK_MAX_CELLS */
    pk_obj **stack;
    size_t sp;
    size_t marks[PK_MAX_MARKS]; /* the stack height at each open MARK */
    size_t nmarks;
    pk_obj **memo;
    size_t memo_len;
} pk_parser;

static void pk_release(pk_parser *p)
{
    while (p->objects) {
        pk_obj *o = p->objects;
        p->objects = o->next_alloc;
        dsn_free(o->items);
        dsn_free(o);
    }
    dsn_free(p->stack);
    dsn_free(p->memo);
}

static int32_t pk_nomem(const pk_parser *p)
{
    return dsn_error(DEISSN_E_NOMEM, "%s: out of memory reading the pickle", p->what);
}

static unsigned pk_opcode(const pk_parser *p)
{
    return p->buf[p->op_pos];
}

static int32_t pk_charge(pk_parser *p, size_t cells)
{
    if (cells > PK_MAX_CELLS - p->cells)
        return dsn_error(DEISSN_E_FORMAT, "%s: the pickle holds more than %zu objects", p->what,
                         PK_MAX_CELLS);
    p->cells += cells;
    return DEISSN_OK;
}

static int32_t pk_new(pk_parser *p, pk_kind kind, pk_obj **out)
{
    pk_obj *o;
    int32_t rc = pk_charge(p, 1);

    if (rc != DEISSN_OK)
        return rc;
    o = dsn_calloc(1, sizeof *o);
    if (!o)
        return pk_nomem(p);
    o->kind = kind;
    o->next_alloc = p->objects;
    p->objects = o;
    *out = o;
    return DEISSN_OK;
}

/* Python keeps a fresh stack per MARK: values below the innermost mark cannot be popped. */
static size_t pk_base(const pk_parser *p)
{
    return p->nmarks ? p->marks[p->nmarks - 1] : 0;
}

static int32_t pk_push(pk_parser *p, pk_obj *o)
{
    if (p->sp == PK_MAX_STACK)
        return dsn_error(DEISSN_E_FORMAT, "%s: the pickle stack grows past %d entries at "
                         "offset %zu", p->what, PK_MAX_STACK, p->op_pos);
    p->stack[p->sp++] = o;
    return DEISSN_OK;
}

/* Check that the opcode being run has n values to take from the stack. */
static int32_t pk_need(const pk_parser *p, size_t n)
{
    if (p->sp - pk_base(p) < n)
        return dsn_error(DEISSN_E_FORMAT, "%s: pickle opcode 0x%02x at offset %zu pops an "
                         "empty stack", p->what, pk_opcode(p), p->op_pos);
    return DEISSN_OK;
}

static int32_t pk_pop(pk_parser *p, pk_obj **out)
{
    int32_t rc = pk_need(p, 1);

    if (rc == DEISSN_OK)
        *out = p->stack[--p->sp];
    return rc;
}

static int32_t pk_pop_mark(pk_parser *p, size_t *height)
{
    if (p->nmarks == 0)
        return dsn_error(DEISSN_E_FORMAT, "%s: pickle opcode 0x%02x at offset %zu has no "
                         "MARK", p->what, pk_opcode(p), p->op_pos);
    *height = p->marks[--p->nmarks];
    return DEISSN_OK;
}

/* The opcode's n argument bytes. */
static int32_t pk_read(pk_parser *p, size_t n, const unsigned char **out)
{
    if (n > p->len - p->pos)
        return dsn_error(DEISSN_E_FORMAT, "%s: pickle opcode 0x%02x at offset %zu is truncated",
                         p->what, pk_opcode(p), p->op_pos);
    *out = p->buf + p->pos;
    p->pos += n;
    return DEISSN_OK;
}

/* A newline-terminated argument (GLOBAL's module and name), without the newline. */
static int32_t pk_read_line(pk_parser *p, span *out)
{
    const unsigned char *start = p->buf + p->pos;
    const unsigned char *nl = memchr(start, '\n', p->len - p->pos);

    if (!nl)
        return dsn_error(DEISSN_E_FORMAT, "%s: pickle opcode 0x%02x at offset %zu is truncated",
                         p->what, pk_opcode(p), p->op_pos);
    out->p = (const char *)start;
    out->n = (size_t)(nl - start);
    p->pos += out->n + 1;
    return DEISSN_OK;
}

static int32_t pk_push_int(pk_parser *p, int64_t v)
{
    pk_obj *o = NULL;
    int32_t rc = pk_new(p, PK_INT, &o);

    if (rc != DEISSN_OK)
        return rc;
    o->num = v;
    return pk_push(p, o);
}

static int32_t pk_push_str(pk_parser *p, size_t n)
{
    const unsigned char *s = NULL;
    pk_obj *o = NULL;
    int32_t rc = pk_read(p, n, &s);

    if (rc == DEISSN_OK)
        rc = pk_new(p, PK_STR, &o);
    if (rc != DEISSN_OK)
        return rc;
    o->str.p = (const char *)s;
    o->str.n = n;
    return pk_push(p, o);
}

/* Replace stack[first..sp) by a tuple of those values. */
static int32_t pk_make_tuple(pk_parser *p, size_t first)
{
    size_t n = p->sp - first;
    pk_obj *t = NULL;
    int32_t rc = pk_charge(p, n);

    if (rc == DEISSN_OK)
        rc = pk_new(p, PK_TUPLE, &t);
    if (rc != DEISSN_OK)
        return rc;
    if (n) {
        t->items = dsn_malloc(n * sizeof *t->items);
        if (!t->items)
            return pk_nomem(p);
        memcpy(t->items, p->stack + first, n * sizeof *t->items);
    }
    t->count = t->cap = n;
    p->sp = first;
    return pk_push(p, t);
}

/* Set the items stack[first..sp) (key, value, key, value...) in the dict stack[first - 1]. */
static int32_t pk_set_items(pk_parser *p, size_t first)
{
    size_t n = p->sp - first;
    pk_obj *d;
    int32_t rc;

    if (first == pk_base(p) || p->stack[first - 1]->kind != PK_DICT || n % 2 != 0)
        return dsn_error(DEISSN_E_FORMAT, "%s: pickle opcode 0x%02x at offset %zu does not "
                         "set key/value pairs in a dict", p->what, pk_opcode(p), p->op_pos);
    d = p->stack[first - 1];
    rc = pk_charge(p, n);
    if (rc != DEISSN_OK || n == 0) {
        p->sp = first;
        return rc;
    }
    if (n > d->cap - d->count) {
        size_t cap = d->cap ? d->cap : 16;
        pk_obj **items;
        while (cap - d->count < n)
            cap *= 2; /* cannot overflow: the count is bounded by PK_MAX_CELLS */
        items = dsn_realloc(d->items, cap * sizeof *items);
        if (!items)
            return pk_nomem(p);
        d->items = items;
        d->cap = cap;
    }
    memcpy(d->items + d->count, p->stack + first, n * sizeof *d->items);
    d->count += n;
    p->sp = first;
    return DEISSN_OK;
}

static int32_t pk_memo_put(pk_parser *p, uint32_t index)
{
    if (p->sp == pk_base(p))
        return dsn_error(DEISSN_E_FORMAT, "%s: pickle opcode 0x%02x at offset %zu memoizes an "
                         "empty stack", p->what, pk_opcode(p), p->op_pos);
    if (index >= PK_MAX_MEMO)
        return dsn_error(DEISSN_E_FORMAT, "%s: pickle memo index %lu at offset %zu is too "
                         "large", p->what, (unsigned long)index, p->op_pos);
    if (index >= p->memo_len) {
        size_t len = p->memo_len ? p->memo_len : 64;
        pk_obj **memo;
        while (len <= index)
            len *= 2;
        memo = dsn_realloc(p->memo, len * sizeof *memo);
        if (!memo)
            return pk_nomem(p);
        memset(memo + p->memo_len, 0, (len - p->memo_len) * sizeof *memo);
        p->memo = memo;
        p->memo_len = len;
    }
    p->memo[index] = p->stack[p->sp - 1];
    return DEISSN_OK;
}

static int32_t pk_memo_get(pk_parser *p, uint32_t index)
{
    if (index >= p->memo_len || !p->memo[index])
        return dsn_error(DEISSN_E_FORMAT, "%s: pickle memo entry %lu used at offset %zu is not "
                         "set", p->what, (unsigned long)index, p->op_pos);
    return pk_push(p, p->memo[index]);
}

/* BINPERSID: torch's persistent ids are ('storage', type, key, location, numel). The location
 * is where the storage lived when saved ('cpu', 'cuda:0'); it does not matter for the bytes. */
static int32_t pk_persistent_id(pk_parser *p)
{
    pk_obj *pid = NULL, *s = NULL;
    pk_obj *const *a;
    int32_t rc = pk_pop(p, &pid);

    if (rc != DEISSN_OK)
        return rc;
    a = pid->items;
    if (pid->kind != PK_TUPLE || pid->count != 5 || a[0]->kind != PK_STR ||
        !span_is(a[0]->str, "storage") || a[1]->kind != PK_GLOBAL || a[2]->kind != PK_STR ||
        a[3]->kind != PK_STR || a[4]->kind != PK_INT || a[4]->num < 0)
        return dsn_error(DEISSN_E_FORMAT, "%s: the persistent id at offset %zu is not a torch "
                         "storage ('storage', type, key, location, size)", p->what, p->op_pos);
    rc = pk_new(p, PK_STORAGE, &s);
    if (rc != DEISSN_OK)
        return rc;
    s->ref = a[1];
    s->str = a[2]->str;
    s->num = a[4]->num;
    return pk_push(p, s);
}

/* REDUCE: only the two calls torch.save makes for a tensor are understood. */
static int32_t pk_reduce(pk_parser *p)
{
    pk_obj *args = NULL, *fn = NULL, *o = NULL;
    qbuf q1, q2;
    int32_t rc = pk_pop(p, &args);

    if (rc == DEISSN_OK)
        rc = pk_pop(p, &fn);
    if (rc != DEISSN_OK)
        return rc;
    if (fn->kind != PK_GLOBAL || args->kind != PK_TUPLE)
        return dsn_error(DEISSN_E_FORMAT, "%s: REDUCE at offset %zu calls a %s with a %s",
                         p->what, p->op_pos, pk_kind_names[fn->kind], pk_kind_names[args->kind]);
    if (span_is(fn->str, "torch._utils") && span_is(fn->name, "_rebuild_tensor_v2")) {
        /* (storage, storage_offset, size, stride, requires_grad, backward_hooks); a seventh
         * argument carries tensor metadata that plain float tensors do not have. */
        if (args->count != 6)
            return dsn_error(DEISSN_E_FORMAT, "%s: _rebuild_tensor_v2 at offset %zu has %zu "
                             "arguments; only plain tensors (6) are supported", p->what,
                             p->op_pos, args->count);
        rc = pk_new(p, PK_TENSOR, &o);
        if (rc != DEISSN_OK)
            return rc;
        o->ref = args;
    } else if (span_is(fn->str, "collections") && span_is(fn->name, "OrderedDict") &&
               args->count == 0) {
        rc = pk_new(p, PK_DICT, &o);
        if (rc != DEISSN_OK)
            return rc;
    } else {
        return dsn_error(DEISSN_E_FORMAT, "%s: the pickle calls %s.%s at offset %zu, which is "
                         "not supported", p->what, quote(&q1, fn->str), quote(&q2, fn->name),
                         p->op_pos);
    }
    return pk_push(p, o);
}

/* Run one opcode; *stop is set by STOP. */
static int32_t pk_step(pk_parser *p, int *stop)
{
    const unsigned char *a = NULL;
    pk_obj *o = NULL;
    size_t first = 0, n, i;
    int32_t rc = DEISSN_OK;

    p->op_pos = p->pos++;
    switch (pk_opcode(p)) {
    case 0x80: /* PROTO */
        rc = pk_read(p, 1, &a);
        if (rc == DEISSN_OK && (a[0] < 2 || a[0] > 5))
            rc = dsn_error(DEISSN_E_FORMAT, "%s: pickle protocol %u is not supported", p->what,
                           (unsigned)a[0]);
        break;
    case 0x95: /* FRAME: framing only groups opcodes for buffered reads; skip the length */
        rc = pk_read(p, 8, &a);
        break;
    case '.': /* STOP */
        if (p->nmarks != 0 || p->sp != 1)
            rc = dsn_error(DEISSN_E_FORMAT, "%s: the pickle stops at offset %zu with %zu "
                           "values and %zu marks on its stack, not 1 and 0", p->what,
                           p->op_pos, p->sp, p->nmarks);
        else if (p->pos != p->len)
            rc = dsn_error(DEISSN_E_FORMAT, "%s: trailing bytes (%zu) follow the pickle's STOP "
                           "at offset %zu", p->what, p->len - p->pos, p->op_pos);
        *stop = 1;
        break;
    case '(': /* MARK */
        if (p->nmarks == PK_MAX_MARKS)
            rc = dsn_error(DEISSN_E_FORMAT, "%s: pickle MARKs nest deeper than %d at offset "
                           "%zu", p->what, PK_MAX_MARKS, p->op_pos);
        else
            p->marks[p->nmarks++] = p->sp;
        break;
    case '}': /* EMPTY_DICT */
        rc = pk_new(p, PK_DICT, &o);
        if (rc == DEISSN_OK)
            rc = pk_push(p, o);
        break;
    case 'N': /* NONE */
    case 0x88: /* NEWTRUE */
    case 0x89: /* NEWFALSE */
        rc = pk_new(p, pk_opcode(p) == 'N' ? PK_NONE : PK_BOOL, &o);
        if (rc == DEISSN_OK) {
            o->num = pk_opcode(p) == 0x88;
            rc = pk_push(p, o);
        }
        break;
    case 'X': /* BINUNICODE */
        rc = pk_read(p, 4, &a);
        if (rc == DEISSN_OK)
            rc = pk_push_str(p, rd32(a));
        break;
    case 0x8c: /* SHORT_BINUNICODE */
        rc = pk_read(p, 1, &a);
        if (rc == DEISSN_OK)
            rc = pk_push_str(p, a[0]);
        break;
    case 'c': /* GLOBAL */
        rc = pk_new(p, PK_GLOBAL, &o);
        if (rc == DEISSN_OK)
            rc = pk_read_line(p, &o->str);
        if (rc == DEISSN_OK)
            rc = pk_read_line(p, &o->name);
        if (rc == DEISSN_OK)
            rc = pk_push(p, o);
        break;
    case 'K': /* BININT1 */
        rc = pk_read(p, 1, &a);
        if (rc == DEISSN_OK)
            rc = pk_push_int(p, a[0]);
        break;
    case 'M': /* BININT2 */
        rc = pk_read(p, 2, &a);
        if (rc == DEISSN_OK)
            rc = pk_push_int(p, rd16(a));
        break;
    case 'J': /* BININT: signed 32-bit */
        rc = pk_read(p, 4, &a);
        if (rc == DEISSN_OK) {
            uint32_t u = rd32(a);
            rc = pk_push_int(p, u <= INT32_MAX ? (int64_t)u : (int64_t)u - ((int64_t)1 << 32));
        }
        break;
    case 0x8a: /* LONG1: little-endian two's complement of n bytes */
        rc = pk_read(p, 1, &a);
        if (rc != DEISSN_OK)
            break;
        n = a[0];
        if (n > 8) {
            rc = dsn_error(DEISSN_E_FORMAT, "%s: pickle integer at offset %zu has %zu bytes; at "
                           "most 8 are supported", p->what, p->op_pos, n);
            break;
        }
        rc = pk_read(p, n, &a);
        if (rc == DEISSN_OK) {
            uint64_t u = 0;
            for (i = 0; i < n; i++)
                u |= (uint64_t)a[i] << (8 * i);
            if (n > 0 && n < 8 && (a[n - 1] & 0x80))
                u |= ~(uint64_t)0 << (8 * n);
            rc = pk_push_int(p, u <= INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1);
        }
        break;
    case 'q': /* BINPUT */
        rc = pk_read(p, 1, &a);
        if (rc == DEISSN_OK)
            rc = pk_memo_put(p, a[0]);
        break;
    case 'r': /* LONG_BINPUT */
        rc = pk_read(p, 4, &a);
        if (rc == DEISSN_OK)
            rc = pk_memo_put(p, rd32(a));
        break;
    case 'h': /* BINGET */
        rc = pk_read(p, 1, &a);
        if (rc == DEISSN_OK)
            rc = pk_memo_get(p, a[0]);
        break;
    case 'j': /* LONG_BINGET */
        rc = pk_read(p, 4, &a);
        if (rc == DEISSN_OK)
            rc = pk_memo_get(p, rd32(a));
        break;
    case ')': /* EMPTY_TUPLE */
        rc = pk_make_tuple(p, p->sp);
        break;
    case 't': /* TUPLE */
        rc = pk_pop_mark(p, &first);
        if (rc == DEISSN_OK)
            rc = pk_make_tuple(p, first);
        break;
    case 0x85: /* TUPLE1 */
    case 0x86: /* TUPLE2 */
    case 0x87: /* TUPLE3 */
        n = pk_opcode(p) - 0x84u;
        rc = pk_need(p, n);
        if (rc == DEISSN_OK)
            rc = pk_make_tuple(p, p->sp - n);
        break;
    case 'Q': /* BINPERSID */
        rc = pk_persistent_id(p);
        break;
    case 'R': /* REDUCE */
        rc = pk_reduce(p);
        break;
    case 's': /* SETITEM */
        rc = pk_need(p, 2);
        if (rc == DEISSN_OK)
            rc = pk_set_items(p, p->sp - 2);
        break;
    case 'u': /* SETITEMS */
        rc = pk_pop_mark(p, &first);
        if (rc == DEISSN_OK)
            rc = pk_set_items(p, first);
        break;
    default:
        rc = dsn_error(DEISSN_E_FORMAT, "%s: pickle opcode 0x%02x at offset %zu is not "
                       "supported", p->what, pk_opcode(p), p->op_pos);
        break;
    }
    return rc;
}

/* Run the pickle buf[0..len); *root is the object it builds, valid until pk_release(). */
static int32_t pk_run(pk_parser *p, const unsigned char *buf, size_t len, const pk_obj **root)
{
    int stop = 0;
    int32_t rc = DEISSN_OK;

    p->buf = buf;
    p->len = len;
    p->stack = dsn_malloc(PK_MAX_STACK * sizeof *p->stack);
    if (!p->stack)
        return pk_nomem(p);
    while (!stop && rc == DEISSN_OK) {
        if (p->pos == p->len)
            return dsn_error(DEISSN_E_FORMAT, "%s: the pickle (%zu bytes) ends without STOP",
                             p->what, p->len);
        rc = pk_step(p, &stop);
    }
    if (rc == DEISSN_OK)
        *root = p->stack[0];
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* From the pickle's dict to dsn_pt_dict                                                      */
/* ------------------------------------------------------------------------------------------ */

/* One tensor of the dict, validated. */
typedef struct pt_item {
    const pk_obj *key;       /* a STR */
    const pk_obj *storage;   /* a STORAGE of float32 */
    size_t offset, numel;    /* in elements of the storage */
    const zip_entry *entry;  /* the storage's bytes */
    size_t base;             /* where the storage starts among the output's floats */
} pt_item;

static const char *storage_dtype(const pk_obj *type)
{
    static const char *const map[][2] = {
        {"FloatStorage", "float32"},    {"DoubleStorage", "float64"},
        {"HalfStorage", "float16"},     {"BFloat16Storage", "bfloat16"},
        {"LongStorage", "int64"},       {"IntStorage", "int32"},
        {"ShortStorage", "int16"},      {"CharStorage", "int8"},
        {"ByteStorage", "uint8"},       {"BoolStorage", "bool"},
        {"ComplexFloatStorage", "complex64"}, {"ComplexDoubleStorage", "complex128"},
    };
    size_t i;

    if (span_is(type->str, "torch"))
        for (i = 0; i < sizeof map / sizeof map[0]; i++)
            if (span_is(type->name, map[i][0]))
                return map[i][1];
    return "unknown";
}

/* Check that `value` is a contiguous float32 tensor and fill it->storage, offset, numel. */
static int32_t pt_check_tensor(const char *what, const char *key, const pk_obj *value,
                               pt_item *it)
{
    pk_obj *const *a;
    const pk_obj *storage, *size, *stride;
    size_t numel = 1, expect = 1, d;
    qbuf q1, q2;

    if (value->kind != PK_TENSOR)
        return dsn_error(DEISSN_E_FORMAT, "%s: the value of '%s' is a %s, not a tensor", what,
                         key, pk_kind_names[value->kind]);
    a = value->ref->items;
    storage = a[0];
    size = a[2];
    stride = a[3];
    if (storage->kind != PK_STORAGE)
        return dsn_error(DEISSN_E_FORMAT, "%s: tensor '%s' is built from a %s, not a storage",
                         what, key, pk_kind_names[storage->kind]);
    if (!span_is(storage->ref->str, "torch") || !span_is(storage->ref->name, "FloatStorage"))
        return dsn_error(DEISSN_E_FORMAT, "%s: tensor '%s' has dtype %s (storage type %s.%s); "
                         "only float32 (torch.FloatStorage) is supported", what, key,
                         storage_dtype(storage->ref), quote(&q1, storage->ref->str),
                         quote(&q2, storage->ref->name));
    if ((uint64_t)storage->num > SIZE_MAX / sizeof(float))
        return dsn_error(DEISSN_E_FORMAT, "%s: the storage of tensor '%s' is too large", what,
                         key);
    if (a[1]->kind != PK_INT || a[1]->num < 0 || a[4]->kind != PK_BOOL ||
        a[5]->kind != PK_DICT || size->kind != PK_TUPLE || stride->kind != PK_TUPLE ||
        size->count != stride->count)
        return dsn_error(DEISSN_E_FORMAT, "%s: tensor '%s' has malformed arguments", what, key);
    for (d = 0; d < size->count; d++) {
        const pk_obj *n = size->items[d], *s = stride->items[d];
        if (n->kind != PK_INT || s->kind != PK_INT || n->num < 0)
            return dsn_error(DEISSN_E_FORMAT, "%s: tensor '%s' has a malformed size or stride",
                             what, key);
        if ((uint64_t)n->num > SIZE_MAX || !dsn_mul_size(numel, (size_t)n->num, &numel))
            return dsn_error(DEISSN_E_FORMAT, "%s: tensor '%s' has too many elements", what,
                             key);
    }
    /* torch's notion of contiguity: the strides of size-1 dimensions do not matter and an
     * empty tensor is always contiguous. */
    for (d = size->count; numel > 0 && d-- > 0;) {
        int64_t n = size->items[d]->num, s = stride->items[d]->num;
        if (n != 1 && (s < 0 || (uint64_t)s != expect))
            return dsn_error(DEISSN_E_FORMAT, "%s: tensor '%s' is not contiguous (dimension %zu "
                             "has stride %lld, expected %zu)", what, key, d, (long long)s,
                             expect);
        expect *= (size_t)n;
    }
    if ((uint64_t)a[1]->num > (uint64_t)storage->num ||
        numel > (size_t)storage->num - (size_t)a[1]->num)
        return dsn_error(DEISSN_E_FORMAT, "%s: tensor '%s' (numel %zu, storage offset %lld) "
                         "does not fit its storage of size %lld", what, key, numel,
                         (long long)a[1]->num, (long long)storage->num);
    it->storage = storage;
    it->offset = (size_t)a[1]->num;
    it->numel = numel;
    return DEISSN_OK;
}

static int item_key_cmp(const void *a, const void *b)
{
    return span_cmp((*(const pt_item *const *)a)->key->str,
                    (*(const pt_item *const *)b)->key->str);
}

static int item_storage_cmp(const void *a, const void *b)
{
    return span_cmp((*(const pt_item *const *)a)->storage->str,
                    (*(const pt_item *const *)b)->storage->str);
}

static void decode_f32(float *dst, const unsigned char *src, size_t n, int big_endian)
{
    size_t i;

    for (i = 0; i < n; i++, src += 4) {
        uint32_t u = big_endian ? (uint32_t)src[0] << 24 | (uint32_t)src[1] << 16 |
                                      (uint32_t)src[2] << 8 | src[3]
                                : rd32(src);
        memcpy(&dst[i], &u, sizeof u);
    }
}

/* Find every storage of items[0..n) in the archive, grouping tensors that share one, and set
 * their `entry` and `base`; *total receives the number of floats of all storages. */
static int32_t pt_locate_storages(const zip_archive *z, pt_item **by_storage, size_t n,
                                  const char *what, size_t *total)
{
    size_t i, j, sum = 0;
    qbuf q1, q2, q3;

    qsort(by_storage, n, sizeof *by_storage, item_storage_cmp);
    for (i = 0; i < n; i = j) {
        const pk_obj *s = by_storage[i]->storage;
        const span parts[3] = {z->prefix, {"/data/", 6}, s->str};
        const zip_entry *e = zip_find(z, parts, 3);
        const char *key = quote(&q1, by_storage[i]->key->str);

        if (!e)
            return dsn_error(DEISSN_E_FORMAT, "%s: tensor '%s' needs zip entry '%s/data/%s', "
                             "which is missing", what, key, quote(&q2, z->prefix),
                             quote(&q3, s->str));
        if ((size_t)s->num * sizeof(float) != e->size)
            return dsn_error(DEISSN_E_FORMAT, "%s: zip entry '%s' is %zu bytes, tensor '%s' "
                             "needs %zu", what, quote(&q2, e->name), e->size, key,
                             (size_t)s->num * sizeof(float));
        for (j = i; j < n && span_cmp(by_storage[j]->storage->str, s->str) == 0; j++) {
            if (by_storage[j]->storage->num != s->num)
                return dsn_error(DEISSN_E_FORMAT, "%s: storage '%s' is declared with %lld and "
                                 "with %lld elements", what, quote(&q2, s->str),
                                 (long long)s->num, (long long)by_storage[j]->storage->num);
            by_storage[j]->entry = e;
            by_storage[j]->base = sum;
        }
        /* Distinct storages are distinct, non-overlapping entries: the sum fits the archive. */
        sum += (size_t)s->num;
    }
    *total = sum;
    return DEISSN_OK;
}

/* Turn the pickle's root object into *out. */
static int32_t pt_build(const zip_archive *z, const pk_obj *root, int big_endian,
                        const char *what, dsn_pt_dict *out)
{
    pt_item *items = NULL, **by_key = NULL, **by_storage;
    dsn_pt_tensor *tensors;
    float *floats;
    size_t n, total = 0, bytes, i;
    qbuf q;
    int32_t rc = DEISSN_OK;

    if (root->kind != PK_DICT)
        return dsn_error(DEISSN_E_FORMAT, "%s: the pickle holds a %s, not a dict of tensors",
                         what, pk_kind_names[root->kind]);
    n = root->count / 2;
    if (n == 0)
        return DEISSN_OK;
    items = dsn_calloc(n, sizeof *items);
    by_key = dsn_calloc(n, 2 * sizeof *by_key);
    if (!items || !by_key) {
        rc = dsn_error(DEISSN_E_NOMEM, "%s: out of memory indexing %zu tensors", what, n);
        goto done;
    }
    by_storage = by_key + n;
    for (i = 0; i < n; i++) {
        const pk_obj *key = root->items[2 * i];
        if (key->kind != PK_STR) {
            rc = dsn_error(DEISSN_E_FORMAT, "%s: dict key %zu is a %s, not a string", what, i,
                           pk_kind_names[key->kind]);
            goto done;
        }
        if (key->str.n > DSN_PT_MAX_KEY || memchr(key->str.p, '\0', key->str.n)) {
            rc = dsn_error(DEISSN_E_FORMAT, "%s: dict key '%s' is longer than %d bytes or "
                           "holds a NUL byte", what, quote(&q, key->str), DSN_PT_MAX_KEY);
            goto done;
        }
        items[i].key = key;
        rc = pt_check_tensor(what, quote(&q, key->str), root->items[2 * i + 1], &items[i]);
        if (rc != DEISSN_OK)
            goto done;
        by_key[i] = by_storage[i] = &items[i];
    }
    qsort(by_key, n, sizeof *by_key, item_key_cmp);
    for (i = 1; i < n; i++) {
        if (span_cmp(by_key[i - 1]->key->str, by_key[i]->key->str) == 0) {
            rc = dsn_error(DEISSN_E_FORMAT, "%s: dict key '%s' appears twice", what,
                           quote(&q, by_key[i]->key->str));
            goto done;
        }
    }
    rc = pt_locate_storages(z, by_storage, n, what, &total);
    if (rc != DEISSN_OK)
        goto done;

    /* One allocation: the tensors, then the storages, so that dsn_pt_dict_free() is one free
     * and views of one storage stay views. */
    tensors = NULL;
    if (dsn_mul_size(total, sizeof(float), &bytes) && bytes <= SIZE_MAX - n * sizeof *tensors)
        tensors = dsn_malloc(n * sizeof *tensors + bytes);
    if (!tensors) {
        rc = dsn_error(DEISSN_E_NOMEM, "%s: out of memory for %zu tensors of %zu floats", what,
                       n, total);
        goto done;
    }
    floats = (float *)(tensors + n);
    for (i = 0; i < n; i++) {
        const pt_item *it = by_storage[i];
        if (i == 0 || span_cmp(by_storage[i - 1]->storage->str, it->storage->str) != 0)
            decode_f32(floats + it->base, it->entry->data, (size_t)it->storage->num,
                       big_endian);
    }
    for (i = 0; i < n; i++) {
        memcpy(tensors[i].key, items[i].key->str.p, items[i].key->str.n);
        tensors[i].key[items[i].key->str.n] = '\0';
        tensors[i].data = floats + items[i].base + items[i].offset;
        tensors[i].numel = items[i].numel;
    }
    out->items = tensors;
    out->count = n;
done:
    dsn_free(items);
    dsn_free(by_key);
    return rc;
}

int32_t dsn_pt_parse(const unsigned char *buf, size_t len, const char *what, dsn_pt_dict *out)
{
    zip_archive z;
    pk_parser p;
    const zip_entry *pkl, *order;
    const pk_obj *root = NULL;
    int big_endian = 0;
    int32_t rc;

    if (!out)
        return dsn_error(DEISSN_E_INVALID_ARG, "dsn_pt_parse: out is NULL");
    memset(out, 0, sizeof *out);
    if (!what)
        what = "torch.save archive";
    if (!buf && len)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: buffer is NULL", what);
    memset(&z, 0, sizeof z);
    memset(&p, 0, sizeof p);
    p.what = what;

    rc = zip_open(&z, buf, len, what);
    if (rc != DEISSN_OK)
        goto done;
    {
        const span pkl_parts[2] = {z.prefix, {"/data.pkl", 9}};
        const span order_parts[2] = {z.prefix, {"/byteorder", 10}};
        qbuf q;

        pkl = zip_find(&z, pkl_parts, 2);
        if (!pkl) {
            rc = dsn_error(DEISSN_E_FORMAT, "%s: no zip entry '%s/data.pkl'; not a torch.save "
                           "archive", what, quote(&q, z.prefix));
            goto done;
        }
        /* torch >= 2.1 records the byte order of the storages; older files are little-endian. */
        order = zip_find(&z, order_parts, 2);
        if (order) {
            span s = {(const char *)order->data, order->size};
            big_endian = span_is(s, "big");
            if (!big_endian && !span_is(s, "little")) {
                rc = dsn_error(DEISSN_E_FORMAT, "%s: unknown byte order '%s'", what,
                               quote(&q, s));
                goto done;
            }
        }
    }
    rc = pk_run(&p, pkl->data, pkl->size, &root);
    if (rc == DEISSN_OK)
        rc = pt_build(&z, root, big_endian, what, out);
done:
    pk_release(&p);
    dsn_free(z.entries);
    return rc;
}

const dsn_pt_tensor *dsn_pt_find(const dsn_pt_dict *d, const char *key)
{
    size_t i;

    if (!d || !key)
        return NULL;
    for (i = 0; i < d->count; i++)
        if (strcmp(d->items[i].key, key) == 0)
            return &d->items[i];
    return NULL;
}

void dsn_pt_dict_free(dsn_pt_dict *d)
{
    if (!d)
        return;
    dsn_free(d->items);
    d->items = NULL;
    d->count = 0;
}
