/* QuantizeLinear / DequantizeLinear (per tensor and per axis, int8 and
 * uint8; DequantizeLinear also int32 with zero point 0), on the affine
 * kernels the conformance suite already checks against ONNX. */
#include <math.h>
#include <string.h>

#include "graph/internal.h"
#include "qcal/kernels.h"
#include "qcal/quant.h"

static qcal_status qdq_layout(qcal_graph *g, qcal_node *n, qcal_layout *l) {
  const qcal_value *x = qcal_in(g, n, 0), *s = qcal_in(g, n, 1), *z = qcal_in(g, n, 2);
  if (s->dtype != QCAL_DT_F32)
    return qcal_node_error(g, n, QCAL_EDTYPE, "scale is %s, expected float32",
                           qcal_dtype_name(s->dtype));
  if (s->ndim > 1)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "blocked quantization (scale of rank %d)",
                           s->ndim);
  if (z && z->numel != s->numel)
    return qcal_node_error(g, n, QCAL_EFORMAT, "zero point has %zu elements, scale %zu", z->numel,
                           s->numel);
  int64_t axis = qcal_attr_int(n, "axis", 1);
  (void)qcal_attr_int(n, "saturate", 1);
  if (s->ndim == 0 || (s->numel == 1 && x->ndim == 0)) {
    *l = (qcal_layout){1, 1, x->numel};
    return QCAL_OK;
  }
  int a;
  QCAL_TRY(qcal_norm_axis(g, n, axis, x->ndim, &a));
  if (x->shape[a] != (int64_t)s->numel)
    return qcal_node_error(g, n, QCAL_EFORMAT, "scale has %zu elements for dim %d of size %lld",
                           s->numel, a, (long long)x->shape[a]);
  if (qcal_layout_make(x->ndim, x->shape, a, l))
    return qcal_node_error(g, n, QCAL_EFORMAT, "bad axis");
  return QCAL_OK;
}

qcal_status qcal_infer_qdq(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0), *z = qcal_in(g, n, 2);
  qcal_layout l;
  QCAL_TRY(qdq_layout(g, n, &l));
  if (n->op == QCAL_GOP_QuantizeLinear) {
    QCAL_TRY(qcal_want_f32(g, n, 0));
    qcal_dtype dt = z ? z->dtype : QCAL_DT_U8;
    if (dt != QCAL_DT_U8 && dt != QCAL_DT_I8)
      return qcal_node_error(g, n, QCAL_EDTYPE, "zero point is %s; int8 and uint8 supported",
                             qcal_dtype_name(dt));
    return qcal_set_out(g, n, 0, dt, x->ndim, x->shape);
  }
  if (x->dtype != QCAL_DT_U8 && x->dtype != QCAL_DT_I8 && x->dtype != QCAL_DT_I32)
    return qcal_node_error(g, n, QCAL_EDTYPE, "input is %s; int8, uint8 and int32 supported",
                           qcal_dtype_name(x->dtype));
  if (z && z->dtype != x->dtype)
    return qcal_node_error(g, n, QCAL_EDTYPE, "zero point is %s, input %s",
                           qcal_dtype_name(z->dtype), qcal_dtype_name(x->dtype));
  return qcal_set_out(g, n, 0, QCAL_DT_F32, x->ndim, x->shape);
}

/* The engines' hot Q/DQ nodes, per tensor: QuantizeLinear on the dispatched
 * f32_q8_quantize_div kernels (ONNX's division; the f32_q8_quantize kernels
 * multiply by an inverse scale instead), DequantizeLinear with zero point 0
 * (y = q * scale) on the s8/u8_f32_dequantize kernels. */
static void qdq_fast(bool quant, const void *x, size_t n, float s, float zp, bool s8, void *y) {
  const qcal_kernel_table *kt = qcal_kernels();
  const size_t chunk = 16384;
  const long nchunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (nchunks > 4)
  for (long c = 0; c < nchunks; c++) {
    size_t a = (size_t)c * chunk, m = n - a < chunk ? n - a : chunk;
    if (quant)
      kt->f32_q8_quantize_div(m, (const float *)x + a, s, zp, s8, (char *)y + a);
    else if (s8)
      kt->s8_f32_dequantize(m, (const int8_t *)x + a, (float *)y + a, &s, false);
    else
      kt->u8_f32_dequantize(m, (const uint8_t *)x + a, (float *)y + a, &s, false);
  }
}

qcal_status qcal_fwd_qdq(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0), *s = qcal_in(g, n, 1), *z = qcal_in(g, n, 2);
  qcal_value *y = qcal_out(g, n, 0);
  qcal_layout l;
  QCAL_TRY(qdq_layout(g, n, &l));
  const float *sd = s->data;
  if (x->dtype == QCAL_DT_I32) { /* DequantizeLinear of int32 (bias) */
    const int32_t *xd = x->data, *zd = z ? z->data : NULL;
    float *yd = y->data;
    for (size_t o = 0; o < l.outer; o++)
      for (size_t c = 0; c < l.channels; c++)
        for (size_t i = 0; i < l.inner; i++) {
          size_t k = (o * l.channels + c) * l.inner + i;
          yd[k] = (float)(xd[k] - (zd ? zd[c] : 0)) * sd[c];
        }
    return QCAL_OK;
  }
  /* 8-bit: the affine kernels take one zero point per channel */
  bool q = n->op == QCAL_GOP_QuantizeLinear;
  qcal_int8_type t = (q ? y->dtype : x->dtype) == QCAL_DT_I8 ? QCAL_S8 : QCAL_U8;
  float zp0 = z && l.channels == 1 ? (float)qcal_value_get(z, 0) : 0.0f;
  if (q && y->fmt) { /* the plan hands a channels-last output only to a per-tensor Q */
    const int64_t N = x->shape[0], C = x->shape[1], HW = x->shape[2] * x->shape[3];
    const size_t chunk = 4096;
    const long nchunks = (long)((HW + (int64_t)chunk - 1) / (int64_t)chunk);
    qcal_f32_q8_quantize_div_planes_fn *fn = qcal_kernels()->f32_q8_quantize_div_planes;
#pragma omp parallel for collapse(2) schedule(static) if (N * nchunks > 4)
    for (int64_t nn = 0; nn < N; nn++)
      for (long k = 0; k < nchunks; k++) {
        size_t a = (size_t)k * chunk, m = (size_t)HW - a < chunk ? (size_t)HW - a : chunk;
        fn(m, (int)C, (const float *)x->data + (size_t)(nn * C * HW) + a, (size_t)HW, sd[0], zp0,
           t == QCAL_S8, (uint8_t *)y->data + (size_t)((nn * HW) + (int64_t)a) * (size_t)C);
      }
    return QCAL_OK;
  }
  if (l.channels == 1 && sd[0] > 0 && isfinite(sd[0]) && (q || zp0 == 0)) {
    qdq_fast(q, x->data, x->numel, sd[0], zp0, t == QCAL_S8, y->data);
    return QCAL_OK;
  }
  const void *zp = z ? z->data : NULL;
  uint8_t *zbuf = NULL;
  if (!zp) {
    zbuf = qcal_alloc(l.channels);
    if (!zbuf)
      return qcal_node_error(g, n, QCAL_ENOMEM, "out of memory");
    memset(zbuf, 0, l.channels);
    zp = zbuf;
  }
  qcal_status st = q ? qcal_affine_quantize(&l, x->data, sd, zp, t, y->data)
                     : qcal_affine_dequantize(&l, x->data, sd, zp, t, y->data);
  qcal_free(zbuf);
  return st ? qcal_node_error(g, n, st, "%s", qcal_last_error()) : QCAL_OK;
}
