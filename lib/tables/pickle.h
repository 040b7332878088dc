/* pickle.h - the pickle interpreter of the .pt reader: only the opcodes torch.save emits for a
 * dict of tensors, with the stack, memo and object count bounded. Internal. */
#ifndef DSN_PICKLE_H
#define DSN_PICKLE_H

#include "tables/span.h"

/* Bounds on what a pickle may make us allocate (about 100 MB at worst). torch.save's pickle
 * of a dict of tensors costs some 31 cells (objects plus container elements) per tensor, so
 * the cell bound allows over 30000 tensors; its stack holds up to 2001 entries (torch, like
 * Python, sets dict items in batches of 1000) and its MARKs nest 3 deep. */
#define PK_MAX_STACK 8192
#define PK_MAX_MARKS 64
#define PK_MAX_MEMO ((uint32_t)1 << 20)
#define PK_MAX_CELLS ((size_t)1 << 20) /* objects plus container elements */

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

/* "None", "int", "dict", ... for messages. */
const char *dsn_pickle_kind_name(pk_kind kind);

/* Run the pickle buf[0..len) with parser p (zeroed, p->what set); *root is the object it
 * leaves. DEISSN_E_FORMAT naming p->what and the offset. */
int32_t dsn_pickle_run(pk_parser *p, const unsigned char *buf, size_t len, const pk_obj **root);

/* Release everything the parser allocated (the objects die with it). */
void dsn_pickle_release(pk_parser *p);

#endif
