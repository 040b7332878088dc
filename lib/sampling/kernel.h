/* kernel.h - the host's vector operations: the fused step update and the finiteness check.
 * deissn_step() and the callback backend both run these, so the step API and the sampling
 * loop do the same arithmetic. Internal. */
#ifndef DSN_KERNEL_H
#define DSN_KERNEL_H

#include "backends/backend.h"
#include "base/base.h"

/* The update u (backend.h) on host float32 buffers of n values. */
void dsn_host_update(const dsn_update *u, size_t n);

/* Index of the first NaN or Inf of v[0..n), or n. */
size_t dsn_first_nonfinite(const float *v, size_t n);

#endif
