/* FakeQuantize: quantize-dequantize in a symmetric format (qcal_qformat:
 * "bits", "unsigned", "full_range"), one amax (input 1) per tensor or one
 * per channel of "axis". Backward is the straight-through estimator of
 * pytorch-quantization: the gradient passes where |x| <= amax and is zero
 * outside. With "learn" the amax is a parameter, its gradient LSQ's
 * (Esser et al. 2020) for the step amax / qmax: inside the range
 * (round(x/step) - x/step) / qmax, outside sign(x), scaled by
 * 1 / sqrt(elements per amax * qmax). */
#include <math.h>
#include <string.h>

#include "graph/train_internal.h"

typedef struct fq_params {
  qcal_qformat fmt;
  int axis;             /* -1: per tensor */
  int64_t ch;           /* amax values */
  int64_t outer, inner; /* element i is in channel (i / inner) % ch */
} fq_params;

static qcal_status params(qcal_graph *g, qcal_node *n, fq_params *p) {
  const qcal_value *x = qcal_in(g, n, 0), *a = qcal_in(g, n, 1);
  p->fmt = (qcal_qformat){(int)qcal_attr_int(n, "bits", 8), qcal_attr_int(n, "unsigned", 0) != 0,
                          qcal_attr_int(n, "full_range", 0) != 0};
  (void)qcal_attr_int(n, "learn", 0);
  if (qcal_qformat_check(p->fmt) != QCAL_OK)
    return qcal_node_error(g, n, QCAL_EINVAL, "%s", qcal_last_error());
  int64_t axis = qcal_attr_int(n, "axis", -1);
  p->ch = 1;
  p->inner = (int64_t)x->numel;
  p->axis = -1;
  if (a->numel > 1 || axis >= 0) {
    if (axis < 0 || axis >= x->ndim)
      return qcal_node_error(g, n, QCAL_EINVAL, "per-channel amax needs an axis below %d", x->ndim);
    p->axis = (int)axis;
    p->ch = x->shape[axis];
    p->inner = 1;
    for (int d = p->axis + 1; d < x->ndim; d++)
      p->inner *= x->shape[d];
  }
  if (a->numel != (size_t)p->ch)
    return qcal_node_error(g, n, QCAL_EFORMAT, "%zu amax values for %lld channels", a->numel,
                           (long long)p->ch);
  p->outer = p->ch > 0 && p->inner > 0 ? (int64_t)x->numel / (p->ch * p->inner) : 0;
  return QCAL_OK;
}

qcal_status qcal_infer_fakequantize(qcal_graph *g, qcal_node *n) {
  QCAL_TRY(qcal_want_f32(g, n, 0));
  QCAL_TRY(qcal_want_f32(g, n, 1));
  const qcal_value *x = qcal_in(g, n, 0), *a = qcal_in(g, n, 1);
  if (a->kind != QCAL_VAL_CONST)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "amax must be a constant");
  fq_params p;
  QCAL_TRY(params(g, n, &p));
  return qcal_set_out(g, n, 0, QCAL_DT_F32, x->ndim, x->shape);
}

/* Through the dispatched quantize kernels (kernels/kernels.inc), which
 * share qcal_fake_quant_one's arithmetic. */
static qcal_status fq_run(const fq_params *p, const float *x, const float *amax, float *y) {
  qcal_layout l = {(size_t)p->outer, (size_t)p->ch, (size_t)p->inner};
  return qcal_fake_quant(&l, x, amax, p->fmt, y);
}

qcal_status qcal_fwd_fakequantize(qcal_graph *g, qcal_node *n) {
  fq_params p;
  QCAL_TRY(params(g, n, &p));
  qcal_status st =
      fq_run(&p, qcal_in(g, n, 0)->data, qcal_in(g, n, 1)->data, qcal_out(g, n, 0)->data);
  return st ? qcal_node_error(g, n, st, "%s", qcal_last_error()) : QCAL_OK;
}

qcal_status qcal_tfwd_fakequantize(qcal_train *t, qcal_node *n) {
  fq_params p;
  QCAL_TRY(params(t->g, n, &p));
  const qcal_value *xv = qcal_in(t->g, n, 0);
  const float *x = qcal_tx(t, n, 0);
  float *y = qcal_ty(t, n, 0);
  if (t->observe) { /* calibration: collect, pass through */
    QCAL_TRY(t->observe(t->observe_ctx, (int)(n - t->g->nodes), x, xv->ndim, xv->shape));
    memcpy(y, x, xv->numel * sizeof(float));
    return QCAL_OK;
  }
  qcal_status st = fq_run(&p, x, qcal_tx(t, n, 1), y);
  return st ? qcal_node_error(t->g, n, st, "%s", qcal_last_error()) : QCAL_OK;
}

qcal_status qcal_bwd_fakequantize(qcal_train *t, qcal_node *n) {
  fq_params p;
  QCAL_TRY(params(t->g, n, &p));
  const float *x = qcal_tx(t, n, 0), *amax = qcal_tx(t, n, 1), *dy = qcal_tdy(t, n, 0);
  float *dx = qcal_tdx(t, n, 0), *da = qcal_tdx(t, n, 1);
  const float qmax = qcal_qformat_qmax(p.fmt);
  const double lsq = 1.0 / sqrt((double)(p.outer * p.inner) * qmax);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < p.ch; c++) {
    const float a = amax[c], lo = p.fmt.is_unsigned ? 0.0f : -a;
    const float s = qcal_quant_scale(p.fmt, a);
    double ga = 0;
    for (int64_t o = 0; o < p.outer; o++) {
      const int64_t base = (o * p.ch + c) * p.inner;
      for (int64_t i = 0; i < p.inner; i++) {
        float xv = x[base + i], g = dy[base + i];
        bool inside = xv >= lo && xv <= a;
        if (dx && inside)
          dx[base + i] += g;
        if (da) {
          if (inside) {
            float v = xv * s;
            ga += g * ((rintf(v) - v) / qmax);
          } else {
            ga += g * (xv > 0 ? 1.0 : (p.fmt.is_unsigned ? 0.0 : -1.0));
          }
        }
      }
    }
    if (da)
      da[c] += (float)(ga * lsq);
  }
  return QCAL_OK;
}
