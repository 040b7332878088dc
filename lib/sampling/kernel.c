/* kernel.c - the fused step update on host memory, and the finiteness check.
 *
 * One pass over memory:  e = a x + b out;  x = cx x + co out + k1 h1 + ... + k4 h4;  save = e
 * (cx = psi + k0 a, co = k0 b). It runs in blocks that fit in L1 so that e can be staged in
 * a local buffer: `save` may be the oldest history buffer that this very step reads. */
#include "sampling/kernel.h"

#include <math.h>
#include <string.h>

#define BLOCK 1024

/* Built for AVX2 too where the compiler supports function multiversioning; the loader picks
 * the variant the CPU runs. Not under ThreadSanitizer: the loader calls the (instrumented)
 * ifunc resolver before the TSan runtime is up, which crashes every program at startup. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
__attribute__((target_clones("avx2", "default")))
#endif
static void block_update(size_t m, float *restrict x, const float *restrict out,
                         const float *restrict h1, const float *restrict h2,
                         const float *restrict h3, const float *restrict h4, float *restrict e,
                         const dsn_update *u)
{
    const double a = u->a, b = u->b, cx = u->cx, co = u->co;
    const double k1 = u->k[1], k2 = u->k[2], k3 = u->k[3], k4 = u->k[4];
    /* e == NULL: the output is eps itself and the caller keeps it as it is. Arithmetic is
     * in double: in float32 the cancellation between psi x and C eps (5.7 x - 4.7 eps on
     * the first step) costs 1e-6 of the trajectory. */
#define KERNEL(HISTORY)                                                                        \
    do {                                                                                       \
        if (e) {                                                                               \
            for (size_t i = 0; i < m; i++) {                                                   \
                double xi = x[i], oi = out[i];                                                 \
                e[i] = (float)(a * xi + b * oi);                                               \
                x[i] = (float)(cx * xi + co * oi HISTORY);                                     \
            }                                                                                  \
        } else {                                                                               \
            for (size_t i = 0; i < m; i++) {                                                   \
                double xi = x[i], oi = out[i];                                                 \
                x[i] = (float)(cx * xi + co * oi HISTORY);                                     \
            }                                                                                  \
        }                                                                                      \
    } while (0)
    switch (u->depth) {
    case 0: KERNEL(); break;
    case 1: KERNEL(+k1 * h1[i]); break;
    case 2: KERNEL(+k1 * h1[i] + k2 * h2[i]); break;
    case 3: KERNEL(+k1 * h1[i] + k2 * h2[i] + k3 * h3[i]); break;
    default: KERNEL(+k1 * h1[i] + k2 * h2[i] + k3 * h3[i] + k4 * h4[i]); break;
    }
#undef KERNEL
}

void dsn_host_update(const dsn_update *u, size_t n)
{
    float *x = u->x;
    const float *out = u->out;
    const float *h[DSN_MAX_DEPTH] = {NULL, NULL, NULL, NULL};
    for (uint32_t j = 0; j < u->depth && j < DSN_MAX_DEPTH; j++) h[j] = u->hist[j];
    float *save = u->save, *ecopy = u->ecopy;
    /* When the model predicts what the history holds, e is its output itself. */
    int direct = u->a == 0.0 && u->b == 1.0;
    int need_e = !direct && (save || ecopy);
    float e[BLOCK];
    for (size_t off = 0; off < n; off += BLOCK) {
        size_t m = n - off < BLOCK ? n - off : BLOCK;
        block_update(m, x + off, out + off, h[0] ? h[0] + off : NULL, h[1] ? h[1] + off : NULL,
                     h[2] ? h[2] + off : NULL, h[3] ? h[3] + off : NULL, need_e ? e : NULL, u);
        const float *src = direct ? out + off : e;
        if (save) memcpy(save + off, src, m * sizeof(float));
        if (ecopy) memcpy(ecopy + off, src, m * sizeof(float));
    }
}

/* Works on the exponent bits, which vectorises (a float comparison reduction would not,
 * without -ffast-math). */
size_t dsn_first_nonfinite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i += BLOCK) {
        size_t m = n - i < BLOCK ? n - i : BLOCK;
        uint32_t bad = 0;
        for (size_t j = 0; j < m; j++) {
            uint32_t bits;
            memcpy(&bits, &v[i + j], 4);
            bad |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
        }
        if (bad) {
            for (size_t j = 0; j < m; j++)
                if (!isfinite(v[i + j])) return i + j;
        }
    }
    return n;
}
