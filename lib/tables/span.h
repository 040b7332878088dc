/* span.h - bytes of untrusted input and how the .pt reader looks at them: comparisons,
 * bounded printable quotes for messages, little-endian loads. Internal to zip.c, pickle.c and
 * ptfile.c. */
#ifndef DSN_SPAN_H
#define DSN_SPAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Bytes of the input, not NUL-terminated. */
typedef struct span {
    const char *p;
    size_t n;
} span;

static inline int span_is(span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static inline int span_cmp(span a, span b)
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

static inline const char *quote(qbuf *q, span s)
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

static inline uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif
