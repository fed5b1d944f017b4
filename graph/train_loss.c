/* SoftmaxCrossEntropyLoss (ONNX opset 12): scores [N, C], labels [N] of
 * class indices, the mean of -log softmax(scores)[label]. Training keeps
 * the probabilities; backward gives (p - onehot(label)) / N. */
#include <math.h>
#include <string.h>

#include "graph/train_internal.h"

qcal_status qcal_infer_sce(qcal_graph *g, qcal_node *n) {
  QCAL_TRY(qcal_want_f32(g, n, 0));
  const qcal_value *x = qcal_in(g, n, 0), *l = qcal_in(g, n, 1);
  const char *red = qcal_attr_str(n, "reduction", "mean");
  if (strcmp(red, "mean") != 0)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "reduction '%s' (only mean)", red);
  if (qcal_node_attr(n, "ignore_index") || qcal_in(g, n, 2))
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "ignore_index and weights are not supported");
  if (x->ndim != 2 || l->ndim != 1)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED,
                           "scores of %d dims: only [N, C] with labels [N] is supported", x->ndim);
  if (l->shape[0] != x->shape[0])
    return qcal_node_error(g, n, QCAL_EFORMAT, "%lld labels for %lld rows of scores",
                           (long long)l->shape[0], (long long)x->shape[0]);
  if (l->dtype != QCAL_DT_I64 && l->dtype != QCAL_DT_I32)
    return qcal_node_error(g, n, QCAL_EDTYPE, "labels must be int64 or int32, not %s",
                           qcal_dtype_name(l->dtype));
  return qcal_set_out(g, n, 0, QCAL_DT_F32, 0, NULL);
}

/* Softmax of each row into p (may be NULL) and the mean loss into *loss. */
static qcal_status sce(qcal_graph *g, qcal_node *n, const float *x, int64_t rows, int64_t cls,
                       const qcal_value *lv, const int64_t *labels, float *p, float *loss) {
  double total = 0;
  for (int64_t r = 0; r < rows; r++) {
    int64_t y = labels ? labels[r] : (int64_t)qcal_value_get(lv, (size_t)r);
    if (y < 0 || y >= cls)
      return qcal_node_error(g, n, QCAL_EDATA, "label %lld of row %lld is not a class 0..%lld",
                             (long long)y, (long long)r, (long long)cls - 1);
    const float *xr = x + r * cls;
    float mx = xr[0];
    for (int64_t c = 1; c < cls; c++)
      mx = xr[c] > mx ? xr[c] : mx;
    double s = 0;
    for (int64_t c = 0; c < cls; c++)
      s += exp((double)(xr[c] - mx));
    for (int64_t c = 0; p && c < cls; c++)
      p[r * cls + c] = (float)(exp((double)(xr[c] - mx)) / s);
    total += log(s) - (double)(xr[y] - mx);
  }
  *loss = (float)(total / (double)rows);
  return QCAL_OK;
}

qcal_status qcal_fwd_sce(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  return sce(g, n, x->data, x->shape[0], x->shape[1], qcal_in(g, n, 1), NULL, NULL,
             qcal_out(g, n, 0)->data);
}

qcal_status qcal_tfwd_sce(qcal_train *t, qcal_node *n) {
  const qcal_value *x = qcal_in(t->g, n, 0);
  float *p = qcal_train_scratch(t, n, 0, x->numel * sizeof(float));
  if (!p)
    return qcal_node_error(t->g, n, QCAL_ENOMEM, "out of memory");
  return sce(t->g, n, qcal_tx(t, n, 0), x->shape[0], x->shape[1], NULL, t->label_data, p,
             qcal_ty(t, n, 0));
}

qcal_status qcal_bwd_sce(qcal_train *t, qcal_node *n) {
  const qcal_value *x = qcal_in(t->g, n, 0);
  float *dx = qcal_tdx(t, n, 0);
  if (!dx)
    return QCAL_OK;
  const float *p = t->saved[n - t->g->nodes][0].p;
  const int64_t rows = x->shape[0], cls = x->shape[1];
  const float k = qcal_tdy(t, n, 0)[0] / (float)rows;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cls; c++)
      dx[r * cls + c] += k * (p[r * cls + c] - (c == t->label_data[r] ? 1.0f : 0.0f));
  return QCAL_OK;
}
