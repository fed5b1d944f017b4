/* Tensor allocation, validation and the per-channel layout. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qcal/tensor.h"

void *qcal_alloc(size_t bytes) {
  size_t rounded = (bytes + 63) & ~(size_t)63;
  if (rounded < bytes)
    return NULL;
  return aligned_alloc(64, rounded ? rounded : 64);
}

void qcal_free(void *p) {
  free(p);
}

qcal_status qcal_mul_size(size_t a, size_t b, size_t *out) {
  if (a && b > SIZE_MAX / a)
    return qcal_error(QCAL_ENOMEM, "size overflow (%zu x %zu)", a, b);
  *out = a * b;
  return QCAL_OK;
}

qcal_status qcal_tensor_alloc(qcal_tensor *t, int ndim, const int64_t *shape) {
  memset(t, 0, sizeof *t);
  if (ndim < 0 || ndim > QCAL_MAX_DIMS)
    return qcal_error(QCAL_EINVAL, "%d dimensions (at most %d supported)", ndim, QCAL_MAX_DIMS);
  size_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return qcal_error(QCAL_EINVAL, "negative dimension %lld", (long long)shape[i]);
    QCAL_TRY(qcal_mul_size(n, (size_t)shape[i], &n));
    t->shape[i] = shape[i];
  }
  size_t bytes;
  QCAL_TRY(qcal_mul_size(n, sizeof(float), &bytes));
  t->data = qcal_alloc(bytes);
  if (!t->data)
    return qcal_error(QCAL_ENOMEM, "cannot allocate %zu bytes", bytes);
  t->ndim = ndim;
  t->numel = n;
  return QCAL_OK;
}

void qcal_tensor_free(qcal_tensor *t) {
  qcal_free(t->data);
  t->data = NULL;
  t->numel = 0;
}

qcal_status qcal_tensor_check(const qcal_tensor *t) {
  if (t->numel == 0)
    return qcal_error(QCAL_EEMPTY, "tensor has no elements");
  for (size_t i = 0; i < t->numel; i++)
    if (!isfinite(t->data[i]))
      return qcal_error(QCAL_EDATA, "%s at flat index %zu", isnan(t->data[i]) ? "NaN" : "Inf", i);
  return QCAL_OK;
}

qcal_status qcal_layout_make(int ndim, const int64_t *shape, int axis, qcal_layout *out) {
  size_t numel = 1;
  for (int i = 0; i < ndim; i++)
    QCAL_TRY(qcal_mul_size(numel, (size_t)shape[i], &numel));
  if (axis == QCAL_PER_TENSOR) {
    *out = (qcal_layout){1, 1, numel};
    return QCAL_OK;
  }
  if (axis < -ndim || axis >= ndim)
    return qcal_error(QCAL_EINVAL, "axis %d out of range for a %d-dimensional tensor", axis, ndim);
  if (axis < 0)
    axis += ndim;
  size_t outer = 1, inner = 1;
  for (int i = 0; i < axis; i++)
    outer *= (size_t)shape[i];
  for (int i = axis + 1; i < ndim; i++)
    inner *= (size_t)shape[i];
  *out = (qcal_layout){outer, (size_t)shape[axis], inner};
  return QCAL_OK;
}

qcal_status qcal_layout_bind_batch(const qcal_tensor *t, int axis, size_t *channels, void **state,
                                   size_t elem_size, qcal_layout *l) {
  QCAL_TRY(qcal_layout_make(t->ndim, t->shape, axis, l));
  if (*channels == 0) {
    if (l->channels == 0)
      return qcal_error(QCAL_EEMPTY, "channel axis has length 0");
    *state = calloc(l->channels, elem_size);
    if (!*state)
      return qcal_error(QCAL_ENOMEM, "cannot allocate state for %zu channels", l->channels);
    *channels = l->channels;
  } else if (l->channels != *channels) {
    return qcal_error(QCAL_EINVAL, "batch has %zu channels on axis %d, earlier batches had %zu",
                      l->channels, axis, *channels);
  }
  return QCAL_OK;
}
