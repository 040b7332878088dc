/* ptfile.h - read torch.save archives (dicts of float32 tensors) without libtorch.
 *
 * Internal to libdeissn. The reference implementation ships its normalisation tables as
 * torch.save files; this reader lets the C core load them with libc and zlib only, on any
 * machine, whatever device the tensors were saved from. docs/pt-format.md describes the
 * subset of the format that is read and what is rejected. */
#ifndef DSN_PTFILE_H
#define DSN_PTFILE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The longest dict key kept (longer keys are rejected), not counting the NUL. */
#define DSN_PT_MAX_KEY 63

typedef struct dsn_pt_tensor {
    char key[DSN_PT_MAX_KEY + 1]; /* the dict key, NUL-terminated */
    float *data;                  /* numel values in C order, host byte order */
    size_t numel;                 /* product of the sizes (1 for a 0-D tensor) */
} dsn_pt_tensor;

/* The tensors in the order of the file's dict. All of them live in one allocation owned by
 * the dict (items[] followed by the storages), so the data of tensors that share a storage
 * in the file (views) overlaps here too, as it does in torch. */
typedef struct dsn_pt_dict {
    dsn_pt_tensor *items;
    size_t count;
} dsn_pt_dict;

/* Parse a torch.save archive held in memory: a dict mapping string keys to contiguous float32
 * tensors of any rank. `what` names the source in messages (the file path). The storage
 * location ('cpu', 'cuda:0', ...) is ignored: only the bytes are read.
 * Returns DEISSN_OK; DEISSN_E_FORMAT (anything that is not such an archive: the message
 * names `what`, the entry, key or pickle offset, and the problem); DEISSN_E_NOMEM;
 * DEISSN_E_INVALID_ARG (out NULL, or buf NULL with len > 0). On error *out is zeroed and
 * nothing is left allocated. Any input is safe: nothing outside buf[0..len) is read. */
int32_t dsn_pt_parse(const unsigned char *buf, size_t len, const char *what, dsn_pt_dict *out);

/* The tensor stored under `key`, or NULL if absent (or d is NULL). */
const dsn_pt_tensor *dsn_pt_find(const dsn_pt_dict *d, const char *key);

/* Release what dsn_pt_parse() allocated and zero *d. Accepts NULL and a zeroed dict. */
void dsn_pt_dict_free(dsn_pt_dict *d);

#ifdef __cplusplus
}
#endif

#endif
