/* bytes.h - little-endian fields and the CRC-32 of the library's own binary formats (table
 * files, tuning references): the same bytes on every platform. Internal. */
#ifndef DSN_BYTES_H
#define DSN_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

static inline void dsn_put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static inline void dsn_put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t dsn_get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static inline uint64_t dsn_get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static inline void dsn_put_f64(unsigned char *p, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof v);
    dsn_put_u64(p, v);
}

static inline double dsn_get_f64(const unsigned char *p)
{
    uint64_t v = dsn_get_u64(p);
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

static inline void dsn_put_f32(unsigned char *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, sizeof v);
    dsn_put_u32(p, v);
}

static inline float dsn_get_f32(const unsigned char *p)
{
    uint32_t v = dsn_get_u32(p);
    float f;
    memcpy(&f, &v, sizeof f);
    return f;
}

/* zlib's CRC-32 of len bytes (any length: crc32() takes a uInt). */
static inline uint32_t dsn_crc32(const unsigned char *p, size_t len)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    while (len > 0) {
        uInt chunk = len > 0x40000000u ? 0x40000000u : (uInt)len;
        crc = crc32(crc, p, chunk);
        p += chunk;
        len -= chunk;
    }
    return (uint32_t)crc;
}

#endif
