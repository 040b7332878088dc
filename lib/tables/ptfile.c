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
 * The zip reader is zip.c, the pickle interpreter pickle.c; this file turns the pickled dict
 * into tensors. tests/fuzz/fuzz_ptfile.c fuzzes the three. */
#include "tables/ptfile.h"
#include "tables/pickle.h"
#include "tables/zip.h"
#include "base/base.h"

#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Storages are decoded through a uint32_t; this also assumes floats and integers share their
 * byte order, which holds on every platform the library supports. */
_Static_assert(sizeof(float) == sizeof(uint32_t) && FLT_MANT_DIG == 24,
               "float must be IEEE 754 binary32");

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
                         key, dsn_pickle_kind_name(value->kind));
    a = value->ref->items;
    storage = a[0];
    size = a[2];
    stride = a[3];
    if (storage->kind != PK_STORAGE)
        return dsn_error(DEISSN_E_FORMAT, "%s: tensor '%s' is built from a %s, not a storage",
                         what, key, dsn_pickle_kind_name(storage->kind));
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
        const zip_entry *e = dsn_zip_find(z, parts, 3);
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
                         what, dsn_pickle_kind_name(root->kind));
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
                           dsn_pickle_kind_name(key->kind));
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

    rc = dsn_zip_open(&z, buf, len, what);
    if (rc != DEISSN_OK)
        goto done;
    {
        const span pkl_parts[2] = {z.prefix, {"/data.pkl", 9}};
        const span order_parts[2] = {z.prefix, {"/byteorder", 10}};
        qbuf q;

        pkl = dsn_zip_find(&z, pkl_parts, 2);
        if (!pkl) {
            rc = dsn_error(DEISSN_E_FORMAT, "%s: no zip entry '%s/data.pkl'; not a torch.save "
                           "archive", what, quote(&q, z.prefix));
            goto done;
        }
        /* torch >= 2.1 records the byte order of the storages; older files are little-endian. */
        order = dsn_zip_find(&z, order_parts, 2);
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
    rc = dsn_pickle_run(&p, pkl->data, pkl->size, &root);
    if (rc == DEISSN_OK)
        rc = pt_build(&z, root, big_endian, what, out);
done:
    dsn_pickle_release(&p);
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
