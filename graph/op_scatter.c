/* ScatterND (opset 11/13, reduction none): a copy of data with the slices
 * that indices [..., k] name replaced by updates. Exporters write it for
 * masked assignments (Swin's shifted-window attention mask), where it folds
 * at prepare; any dtype. Indices are checked against data's shape. */
#include <string.h>

#include "graph/internal.h"
#include "qcal/escape.h"

qcal_status qcal_infer_scatter_nd(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0), *idx = qcal_in(g, n, 1), *u = qcal_in(g, n, 2);
  const char *red = qcal_attr_str(n, "reduction", "none");
  if (strcmp(red, "none")) {
    char esc[96];
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "reduction '%s' is not supported",
                           qcal_escape_text(red, esc, sizeof esc));
  }
  if (idx->dtype != QCAL_DT_I64)
    return qcal_node_error(g, n, QCAL_EDTYPE, "indices are %s, expected int64",
                           qcal_dtype_name(idx->dtype));
  if (u->dtype != x->dtype)
    return qcal_node_error(g, n, QCAL_EDTYPE, "updates are %s, data %s", qcal_dtype_name(u->dtype),
                           qcal_dtype_name(x->dtype));
  int q = idx->ndim;
  int64_t k = q ? idx->shape[q - 1] : 0;
  if (q < 1 || k < 1 || k > x->ndim)
    return qcal_node_error(g, n, QCAL_EFORMAT, "indices' last dim (%lld) must be 1..%d",
                           (long long)k, x->ndim);
  /* updates: indices.shape[:-1] + data.shape[k:] */
  bool ok = u->ndim == q - 1 + x->ndim - (int)k;
  for (int d = 0; ok && d < q - 1; d++)
    ok = u->shape[d] == idx->shape[d];
  for (int d = (int)k; ok && d < x->ndim; d++)
    ok = u->shape[q - 1 + d - k] == x->shape[d];
  if (!ok)
    return qcal_node_error(g, n, QCAL_EFORMAT, "updates' shape does not fit indices and data");
  return qcal_set_out(g, n, 0, x->dtype, x->ndim, x->shape);
}

qcal_status qcal_fwd_scatter_nd(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0), *idx = qcal_in(g, n, 1), *u = qcal_in(g, n, 2);
  qcal_value *y = qcal_out(g, n, 0);
  const size_t es = qcal_dtype_size(x->dtype);
  if (y->data != x->data)
    memcpy(y->data, x->data, x->numel * es);
  const int k = (int)idx->shape[idx->ndim - 1];
  int64_t st[QCAL_MAX_DIMS];
  qcal_strides(x->ndim, x->shape, st);
  const size_t slice = k < x->ndim ? (size_t)st[k - 1] : 1;
  const size_t count = idx->numel / (size_t)k;
  const int64_t *id = idx->data;
  for (size_t s = 0; s < count; s++) {
    int64_t off = 0;
    for (int d = 0; d < k; d++) {
      int64_t i = id[s * (size_t)k + (size_t)d];
      if (i < 0)
        i += x->shape[d];
      if (i < 0 || i >= x->shape[d])
        return qcal_node_error(g, n, QCAL_EFORMAT, "index %lld is out of range for dim %d (%lld)",
                               (long long)id[s * (size_t)k + (size_t)d], d, (long long)x->shape[d]);
      off += i * st[d];
    }
    memcpy((char *)y->data + (size_t)off * es, (const char *)u->data + s * slice * es, slice * es);
  }
  return QCAL_OK;
}
