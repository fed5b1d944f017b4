/* What the ops and passes share while a graph is prepared: the op tables,
 * node errors, output shapes, constant inputs; and binding the graph's
 * inputs before qcal_graph_prepare (graph/passes.c) runs the pass list. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "qcal/escape.h"

const qcal_op_fn qcal_op_infer[QCAL_GOP_COUNT] = {
#define QCAL_OP(id, name, min_in, max_in, min_out, max_out, flags, infer, fwd, wslot, waxis, tfwd, \
                bwd)                                                                               \
  [QCAL_GOP_##id] = infer,
#include "graph/ops.inc"
#undef QCAL_OP
};
const qcal_op_fn qcal_op_fwd[QCAL_GOP_COUNT] = {
#define QCAL_OP(id, name, min_in, max_in, min_out, max_out, flags, infer, fwd, wslot, waxis, tfwd, \
                bwd)                                                                               \
  [QCAL_GOP_##id] = fwd,
#include "graph/ops.inc"
#undef QCAL_OP
};

qcal_status qcal_node_error(qcal_graph *g, const qcal_node *n, qcal_status st, const char *fmt,
                            ...) {
  char msg[512], desc[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return qcal_error(st, "%s: %s: %s", g->path, qcal_node_desc(g, n, desc, sizeof desc), msg);
}

qcal_status qcal_set_out(qcal_graph *g, const qcal_node *n, int i, qcal_dtype dt, int ndim,
                         const int64_t *shape) {
  qcal_value *v = qcal_out(g, n, i);
  if (!v)
    return QCAL_OK;
  if (ndim > QCAL_MAX_DIMS)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "output has %d dims (at most %d)", ndim,
                           QCAL_MAX_DIMS);
  size_t numel = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0)
      return qcal_node_error(g, n, QCAL_EFORMAT, "output dim %d is negative (%lld)", d,
                             (long long)shape[d]);
    if (qcal_mul_size(numel, (size_t)shape[d], &numel) || numel > ((size_t)1 << 40))
      return qcal_node_error(g, n, QCAL_ENOMEM, "output would hold more than 2^40 elements");
  }
  v->dtype = dt;
  v->ndim = ndim;
  if (ndim > 0) /* a scalar may pass no shape */
    memcpy(v->shape, shape, (size_t)ndim * sizeof *shape);
  v->numel = numel;
  return QCAL_OK;
}

qcal_status qcal_want_f32(qcal_graph *g, const qcal_node *n, int i) {
  const qcal_value *v = qcal_in(g, n, i);
  if (v && v->dtype != QCAL_DT_F32)
    return qcal_node_error(g, n, QCAL_EDTYPE, "input %d ('%s') is %s; only float32 is supported", i,
                           v->name, qcal_dtype_name(v->dtype));
  return QCAL_OK;
}

qcal_status qcal_const_ints(qcal_graph *g, const qcal_node *n, int i, int64_t *out, int max,
                            int *count) {
  const qcal_value *v = qcal_in(g, n, i);
  if (!v) {
    *count = 0;
    return QCAL_OK;
  }
  if (v->kind != QCAL_VAL_CONST)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED,
                           "input %d ('%s') must be constant once the input shape is fixed", i,
                           v->name);
  if (v->dtype != QCAL_DT_I64 && v->dtype != QCAL_DT_I32)
    return qcal_node_error(g, n, QCAL_EDTYPE, "input %d ('%s') is %s, expected int64", i, v->name,
                           qcal_dtype_name(v->dtype));
  if (v->numel > (size_t)max)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "input %d ('%s') has %zu elements (at most %d)",
                           i, v->name, v->numel, max);
  for (size_t k = 0; k < v->numel; k++)
    out[k] =
        v->dtype == QCAL_DT_I64 ? ((const int64_t *)v->data)[k] : ((const int32_t *)v->data)[k];
  *count = (int)v->numel;
  return QCAL_OK;
}

qcal_status qcal_const_float(qcal_graph *g, const qcal_node *n, int i, float def, float *out) {
  const qcal_value *v = qcal_in(g, n, i);
  *out = def;
  if (!v)
    return QCAL_OK;
  if (v->kind != QCAL_VAL_CONST)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "input %d ('%s') must be a constant", i,
                           v->name);
  if (v->numel != 1)
    return qcal_node_error(g, n, QCAL_EFORMAT, "input %d ('%s') must be a scalar", i, v->name);
  *out = (float)qcal_value_get(v, 0);
  return QCAL_OK;
}

qcal_status qcal_norm_axis(qcal_graph *g, const qcal_node *n, int64_t axis, int ndim, int *out) {
  if (axis < -ndim || axis >= (ndim ? ndim : 1))
    return qcal_node_error(g, n, QCAL_EFORMAT, "axis %lld is out of range for rank %d",
                           (long long)axis, ndim);
  *out = (int)(axis < 0 ? axis + ndim : axis);
  return QCAL_OK;
}

double qcal_value_get(const qcal_value *v, size_t k) {
  switch (v->dtype) {
  case QCAL_DT_F32:
    return ((const float *)v->data)[k];
  case QCAL_DT_I64:
    return (double)((const int64_t *)v->data)[k];
  case QCAL_DT_I32:
    return ((const int32_t *)v->data)[k];
  case QCAL_DT_I8:
    return ((const int8_t *)v->data)[k];
  case QCAL_DT_U8:
  case QCAL_DT_BOOL:
    return ((const uint8_t *)v->data)[k];
  default:
    return 0;
  }
}

void qcal_value_put(qcal_value *v, size_t k, double x) {
  switch (v->dtype) {
  case QCAL_DT_F32:
    ((float *)v->data)[k] = (float)x;
    break;
  case QCAL_DT_I64:
    ((int64_t *)v->data)[k] = (int64_t)x;
    break;
  case QCAL_DT_I32:
    ((int32_t *)v->data)[k] = (int32_t)x;
    break;
  case QCAL_DT_I8:
    ((int8_t *)v->data)[k] = (int8_t)x;
    break;
  case QCAL_DT_U8:
    ((uint8_t *)v->data)[k] = (uint8_t)x;
    break;
  case QCAL_DT_BOOL:
    ((uint8_t *)v->data)[k] = x != 0;
    break;
  default:
    break;
  }
}

void qcal_strides(int ndim, const int64_t *shape, int64_t *st) {
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    st[d] = s;
    s *= shape[d];
  }
}

static qcal_status bind(qcal_graph *g, int i, int ndim, const int64_t *shape, bool any) {
  if (i < 0 || i >= g->ninputs)
    return qcal_error(QCAL_EINVAL, "%s: no input %d", g->path, i);
  qcal_value *v = &g->values[g->inputs[i]];
  char want[160] = "[", *p = want + 1;
  for (int d = 0; d < v->ndim; d++) {
    if (v->shape[d] < 0)
      p += snprintf(p, (size_t)(want + sizeof want - p), "%s?", d ? "," : "");
    else
      p += snprintf(p, (size_t)(want + sizeof want - p), "%s%lld", d ? "," : "",
                    (long long)v->shape[d]);
  }
  snprintf(p, (size_t)(want + sizeof want - p), "]");
  bool ok = ndim == v->ndim;
  for (int d = 0; ok && d < ndim; d++)
    ok = shape[d] >= 0 && (any || v->shape[d] < 0 || v->shape[d] == shape[d]);
  if (!ok) {
    char got[160] = "[", *q = got + 1, name[96];
    for (int d = 0; d < ndim && d < QCAL_MAX_DIMS; d++)
      q += snprintf(q, (size_t)(got + sizeof got - q), "%s%lld", d ? "," : "", (long long)shape[d]);
    snprintf(q, (size_t)(got + sizeof got - q), "]");
    return qcal_error(QCAL_EINVAL, "%s: input '%s' expects shape %s, got %s", g->path,
                      qcal_escape_text(v->name, name, sizeof name), want, got);
  }
  size_t numel = 1;
  for (int d = 0; d < ndim; d++) {
    v->shape[d] = shape[d];
    if (qcal_mul_size(numel, (size_t)shape[d], &numel))
      return qcal_error(QCAL_ENOMEM, "%s: input shape too large", g->path);
  }
  v->numel = numel;
  return QCAL_OK;
}

qcal_status qcal_graph_bind_input(qcal_graph *g, int i, int ndim, const int64_t *shape) {
  return bind(g, i, ndim, shape, false);
}

qcal_status qcal_graph_resize_input(qcal_graph *g, int i, int ndim, const int64_t *shape) {
  if (g->prepared)
    return qcal_error(QCAL_EINVAL, "%s: input %d resized after prepare", g->path, i);
  return bind(g, i, ndim, shape, true);
}

qcal_status qcal_graph_freeze_input(qcal_graph *g, int i, const void *data) {
  if (i < 0 || i >= g->ninputs || g->prepared)
    return qcal_error(QCAL_EINVAL, "%s: cannot freeze input %d", g->path, i);
  qcal_value *v = &g->values[g->inputs[i]];
  for (int d = 0; d < v->ndim; d++)
    if (v->shape[d] < 0)
      return qcal_error(QCAL_EINVAL, "%s: bind input %d's shape before freezing it", g->path, i);
  size_t bytes = v->numel * qcal_dtype_size(v->dtype);
  void *c = qcal_alloc(bytes ? bytes : 1);
  if (!c)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  if (bytes)
    memcpy(c, data, bytes);
  v->data = c;
  v->kind = QCAL_VAL_CONST;
  memmove(g->inputs + i, g->inputs + i + 1, (size_t)(g->ninputs - i - 1) * sizeof *g->inputs);
  g->ninputs--;
  return QCAL_OK;
}
