/* Dense float32 tensors (C order) and the outer x channels x inner view that
 * every per-channel operation uses. */
#ifndef QCAL_TENSOR_H
#define QCAL_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "qcal/status.h"

#define QCAL_MAX_DIMS 8
#define QCAL_PER_TENSOR INT32_MIN /* "axis" value meaning no channel axis */

typedef struct qcal_tensor {
  char name[256];
  int ndim;
  int64_t shape[QCAL_MAX_DIMS];
  size_t numel;
  float *data; /* owned, 64-byte aligned */
} qcal_tensor;

/* A tensor seen as [outer, channels, inner] around one axis. Per-tensor is
 * outer = 1, channels = 1, inner = numel. */
typedef struct qcal_layout {
  size_t outer, channels, inner;
} qcal_layout;

qcal_status qcal_tensor_alloc(qcal_tensor *t, int ndim, const int64_t *shape);
void qcal_tensor_free(qcal_tensor *t);

/* QCAL_EEMPTY for no elements, QCAL_EDATA (with the first bad index) for
 * NaN/Inf. */
qcal_status qcal_tensor_check(const qcal_tensor *t);

/* Normalise axis (negative allowed) and build the layout. axis may be
 * QCAL_PER_TENSOR. */
qcal_status qcal_layout_make(int ndim, const int64_t *shape, int axis, qcal_layout *out);

/* Layout of one batch for a per-channel collector. On the first batch
 * (*channels == 0) it binds the channel count and allocates *state with one
 * zeroed elem_size entry per channel; later batches must agree. */
qcal_status qcal_layout_bind_batch(const qcal_tensor *t, int axis, size_t *channels, void **state,
                                   size_t elem_size, qcal_layout *l);

static inline size_t qcal_layout_numel(const qcal_layout *l) {
  return l->outer * l->channels * l->inner;
}

/* Checked size arithmetic: QCAL_ENOMEM on overflow. */
qcal_status qcal_mul_size(size_t a, size_t b, size_t *out);

/* 64-byte aligned allocation; free with qcal_free. */
void *qcal_alloc(size_t bytes);
void qcal_free(void *p);

#endif
