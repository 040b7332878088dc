/* pickle.c - the pickle interpreter of the .pt reader (ptfile.c). Every read is bounded by the
 * buffer, every resource by the limits in pickle.h. */
#include "tables/pickle.h"
#include "base/base.h"

#include <stdlib.h>
#include <string.h>

static const char *const pk_kind_names[] = {
    "None", "bool", "int", "str", "global", "tuple", "dict", "storage", "tensor",
};

const char *dsn_pickle_kind_name(pk_kind kind) { return pk_kind_names[kind]; }

void dsn_pickle_release(pk_parser *p)
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
                         p->what, p->op_pos, dsn_pickle_kind_name(fn->kind), dsn_pickle_kind_name(args->kind));
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
int32_t dsn_pickle_run(pk_parser *p, const unsigned char *buf, size_t len, const pk_obj **root)
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
