/* BatchNormalization (when it cannot be folded), LayerNormalization,
 * Softmax and the reductions. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "graph/internal.h"

qcal_status qcal_infer_batchnorm(qcal_graph *g, qcal_node *n) {
  for (int k = 0; k < 5; k++)
    QCAL_TRY(qcal_want_f32(g, n, k));
  const qcal_value *x = qcal_in(g, n, 0);
  (void)qcal_attr_float(n, "epsilon", 1e-5f);
  (void)qcal_attr_float(n, "momentum", 0.9f);
  if (qcal_attr_int(n, "training_mode", 0))
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "attribute 'training_mode' = 1");
  /* opset < 9 legacy: spatial = 1 is the per-channel op; is_test = 1 inference */
  if (qcal_attr_int(n, "spatial", 1) != 1)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "attribute 'spatial' = 0");
  if (qcal_attr_int(n, "is_test", 1) != 1)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "attribute 'is_test' = 0 (training)");
  if (qcal_node_attr(n, "consumed_inputs"))
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "attribute 'consumed_inputs' (opset 1)");
  if (x->ndim < 2)
    return qcal_node_error(g, n, QCAL_EFORMAT, "input must have rank >= 2");
  for (int k = 1; k < 5; k++) {
    const qcal_value *p = qcal_in(g, n, k);
    if (p->numel != (size_t)x->shape[1])
      return qcal_node_error(g, n, QCAL_EFORMAT, "input %d must have %lld elements", k,
                             (long long)x->shape[1]);
  }
  return qcal_set_out(g, n, 0, QCAL_DT_F32, x->ndim, x->shape);
}

qcal_status qcal_fwd_batchnorm(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  const float *sc = qcal_in(g, n, 1)->data, *bi = qcal_in(g, n, 2)->data;
  const float *mu = qcal_in(g, n, 3)->data, *var = qcal_in(g, n, 4)->data;
  float eps = qcal_attr_float(n, "epsilon", 1e-5f);
  int64_t c = x->shape[1], inner = 1;
  for (int d = 2; d < x->ndim; d++)
    inner *= x->shape[d];
  int64_t outer = x->shape[0];
  const float *xd = x->data;
  float *yd = qcal_out(g, n, 0)->data;
#pragma omp parallel for collapse(2) if (x->numel > 65536)
  for (int64_t o = 0; o < outer; o++)
    for (int64_t ch = 0; ch < c; ch++) {
      float s = sc[ch] / sqrtf(var[ch] + eps), t = bi[ch] - mu[ch] * s;
      const float *xp = xd + (o * c + ch) * inner;
      float *yp = yd + (o * c + ch) * inner;
      for (int64_t i = 0; i < inner; i++)
        yp[i] = xp[i] * s + t;
    }
  return QCAL_OK;
}

/* ---- LayerNormalization: normalise over dims [axis, rank) */
qcal_status qcal_infer_layernorm(qcal_graph *g, qcal_node *n) {
  for (int k = 0; k < 3; k++)
    QCAL_TRY(qcal_want_f32(g, n, k));
  const qcal_value *x = qcal_in(g, n, 0);
  int axis;
  QCAL_TRY(qcal_norm_axis(g, n, qcal_attr_int(n, "axis", -1), x->ndim, &axis));
  (void)qcal_attr_float(n, "epsilon", 1e-5f);
  if (qcal_attr_int(n, "stash_type", 1) != 1)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "attribute 'stash_type' must be 1 (float)");
  size_t inner = 1;
  for (int d = axis; d < x->ndim; d++)
    inner *= (size_t)x->shape[d];
  for (int k = 1; k < 3; k++) {
    const qcal_value *p = qcal_in(g, n, k);
    if (p && p->numel != inner && p->numel != 1)
      return qcal_node_error(g, n, QCAL_EFORMAT, "input %d has %zu elements, expected %zu", k,
                             p->numel, inner);
  }
  QCAL_TRY(qcal_set_out(g, n, 0, QCAL_DT_F32, x->ndim, x->shape));
  int64_t rs[QCAL_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++)
    rs[d] = d < axis ? x->shape[d] : 1;
  QCAL_TRY(qcal_set_out(g, n, 1, QCAL_DT_F32, x->ndim, rs));
  return qcal_set_out(g, n, 2, QCAL_DT_F32, x->ndim, rs);
}

qcal_status qcal_fwd_layernorm(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0), *sv = qcal_in(g, n, 1), *bv = qcal_in(g, n, 2);
  qcal_value *y = qcal_out(g, n, 0), *mv = qcal_out(g, n, 1), *iv = qcal_out(g, n, 2);
  int axis;
  QCAL_TRY(qcal_norm_axis(g, n, qcal_attr_int(n, "axis", -1), x->ndim, &axis));
  float eps = qcal_attr_float(n, "epsilon", 1e-5f);
  size_t inner = 1;
  for (int d = axis; d < x->ndim; d++)
    inner *= (size_t)x->shape[d];
  size_t rows = inner ? x->numel / inner : 0;
  const float *xd = x->data, *sd = sv->data, *bd = bv ? bv->data : NULL;
  float *yd = y->data;
#pragma omp parallel for if (x->numel > 65536)
  for (size_t r = 0; r < rows; r++) {
    const float *xp = xd + r * inner;
    double mean = 0, var = 0;
    for (size_t i = 0; i < inner; i++)
      mean += xp[i];
    mean /= (double)inner;
    for (size_t i = 0; i < inner; i++)
      var += (xp[i] - mean) * (xp[i] - mean);
    var /= (double)inner;
    float inv = (float)(1.0 / sqrt(var + eps)), m = (float)mean;
    for (size_t i = 0; i < inner; i++) {
      float s = sd[sv->numel == 1 ? 0 : i], b = bd ? bd[bv->numel == 1 ? 0 : i] : 0;
      yd[r * inner + i] = (xp[i] - m) * inv * s + b;
    }
    if (mv)
      ((float *)mv->data)[r] = m;
    if (iv)
      ((float *)iv->data)[r] = inv;
  }
  return QCAL_OK;
}

/* ---- Softmax: opset >= 13 over one axis; before, over the flattened
 * dims [axis, rank) */
static void softmax_dims(const qcal_graph *g, const qcal_value *x, int axis, size_t *outer,
                         size_t *len, size_t *inner) {
  *outer = 1, *len = 1, *inner = 1;
  for (int d = 0; d < axis; d++)
    *outer *= (size_t)x->shape[d];
  for (int d = axis; d < x->ndim; d++) /* opset < 13: all trailing dims are one row */
    *(g->opset >= 13 && d > axis ? inner : len) *= (size_t)x->shape[d];
}

qcal_status qcal_infer_softmax(qcal_graph *g, qcal_node *n) {
  QCAL_TRY(qcal_want_f32(g, n, 0));
  const qcal_value *x = qcal_in(g, n, 0);
  int axis;
  QCAL_TRY(qcal_norm_axis(g, n, qcal_attr_int(n, "axis", g->opset >= 13 ? -1 : 1), x->ndim, &axis));
  return qcal_set_out(g, n, 0, QCAL_DT_F32, x->ndim, x->shape);
}

qcal_status qcal_fwd_softmax(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  int axis;
  QCAL_TRY(qcal_norm_axis(g, n, qcal_attr_int(n, "axis", g->opset >= 13 ? -1 : 1), x->ndim, &axis));
  size_t outer, len, inner;
  softmax_dims(g, x, axis, &outer, &len, &inner);
  const float *xd = x->data;
  float *yd = qcal_out(g, n, 0)->data;
#pragma omp parallel for collapse(2) if (x->numel > 65536)
  for (size_t o = 0; o < outer; o++)
    for (size_t i = 0; i < inner; i++) {
      const float *xp = xd + o * len * inner + i;
      float *yp = yd + o * len * inner + i;
      float mx = -INFINITY;
      for (size_t k = 0; k < len; k++)
        mx = xp[k * inner] > mx ? xp[k * inner] : mx;
      double sum = 0;
      for (size_t k = 0; k < len; k++) {
        float e = expf(xp[k * inner] - mx);
        yp[k * inner] = e;
        sum += e;
      }
      float inv = (float)(1.0 / sum);
      for (size_t k = 0; k < len; k++)
        yp[k * inner] *= inv;
    }
  return QCAL_OK;
}

/* ---- ReduceMean / ReduceSum / ReduceMax */
static qcal_status reduce_axes(qcal_graph *g, qcal_node *n, const qcal_value *x, bool *red,
                               bool *any) {
  int64_t ax[QCAL_MAX_DIMS];
  int na = 0;
  bool from_input = n->op == QCAL_GOP_ReduceSum && g->opset >= 13;
  if (from_input) {
    QCAL_TRY(qcal_const_ints(g, n, 1, ax, QCAL_MAX_DIMS, &na));
  } else {
    na = qcal_attr_ints(n, "axes", ax, QCAL_MAX_DIMS);
    if (na < 0)
      return qcal_node_error(g, n, QCAL_EFORMAT, "attribute 'axes' is malformed");
    if (qcal_in(g, n, 1))
      return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "axes as an input needs opset 18");
  }
  int64_t noop = qcal_attr_int(n, "noop_with_empty_axes", 0);
  for (int d = 0; d < x->ndim; d++)
    red[d] = na == 0 && !noop;
  for (int k = 0; k < na; k++) {
    int a;
    QCAL_TRY(qcal_norm_axis(g, n, ax[k], x->ndim, &a));
    red[a] = true;
  }
  *any = false;
  for (int d = 0; d < x->ndim; d++)
    *any |= red[d];
  return QCAL_OK;
}

qcal_status qcal_infer_reduce(qcal_graph *g, qcal_node *n) {
  QCAL_TRY(qcal_want_f32(g, n, 0));
  const qcal_value *x = qcal_in(g, n, 0);
  bool red[QCAL_MAX_DIMS], any;
  QCAL_TRY(reduce_axes(g, n, x, red, &any));
  bool keep = qcal_attr_int(n, "keepdims", 1) != 0;
  int64_t shape[QCAL_MAX_DIMS];
  int r = 0;
  for (int d = 0; d < x->ndim; d++)
    if (!red[d])
      shape[r++] = x->shape[d];
    else if (keep)
      shape[r++] = 1;
  return qcal_set_out(g, n, 0, QCAL_DT_F32, r, shape);
}

qcal_status qcal_fwd_reduce(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  qcal_value *y = qcal_out(g, n, 0);
  bool red[QCAL_MAX_DIMS], any;
  QCAL_TRY(reduce_axes(g, n, x, red, &any));
  int64_t xs[QCAL_MAX_DIMS], ys[QCAL_MAX_DIMS], ysh[QCAL_MAX_DIMS];
  qcal_strides(x->ndim, x->shape, xs);
  for (int d = 0; d < x->ndim; d++)
    ysh[d] = red[d] ? 1 : x->shape[d];
  qcal_strides(x->ndim, ysh, ys);
  /* trailing axes reduced: contiguous rows (LayerNorm decompositions) */
  int first = x->ndim;
  while (first > 0 && red[first - 1])
    first--;
  bool trailing = any;
  for (int d = 0; d < first; d++)
    trailing &= !red[d];
  if (trailing) {
    size_t len = 1;
    for (int d = first; d < x->ndim; d++)
      len *= (size_t)x->shape[d];
    size_t rows = len ? x->numel / len : 0;
    const float *xd = x->data;
    float *yd = y->data;
    bool mx = n->op == QCAL_GOP_ReduceMax, mean = n->op == QCAL_GOP_ReduceMean;
#pragma omp parallel for if (x->numel > 65536)
    for (size_t r = 0; r < rows; r++) {
      const float *xp = xd + r * len;
      double acc = mx ? -INFINITY : 0;
      for (size_t i = 0; i < len; i++)
        acc = mx ? (xp[i] > acc ? xp[i] : acc) : acc + xp[i];
      yd[r] = (float)(mean ? acc / (double)len : acc);
    }
    return QCAL_OK;
  }
  double *acc = qcal_alloc((y->numel ? y->numel : 1) * sizeof *acc);
  if (!acc)
    return qcal_node_error(g, n, QCAL_ENOMEM, "out of memory");
  bool mx = n->op == QCAL_GOP_ReduceMax;
  for (size_t i = 0; i < y->numel; i++)
    acc[i] = mx ? -INFINITY : 0;
  const float *xd = x->data;
  for (size_t k = 0; k < x->numel; k++) {
    size_t rem = k, o = 0;
    for (int d = 0; d < x->ndim; d++) {
      size_t i = rem / (size_t)xs[d];
      rem %= (size_t)xs[d];
      if (!red[d])
        o += i * (size_t)ys[d];
    }
    acc[o] = mx ? (xd[k] > acc[o] ? xd[k] : acc[o]) : acc[o] + xd[k];
  }
  size_t cnt = y->numel ? x->numel / y->numel : 1;
  float *yd = y->data;
  for (size_t i = 0; i < y->numel; i++)
    yd[i] = (float)(n->op == QCAL_GOP_ReduceMean ? acc[i] / (double)cnt : acc[i]);
  qcal_free(acc);
  return QCAL_OK;
}
