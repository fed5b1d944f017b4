/* BatchNormalization for training. Training mode normalises with the
 * batch's mean and (biased) variance and moves the running statistics
 * (inputs 3 and 4) toward the batch's, ONNX's momentum m:
 * running = running * m + batch * (1 - m), the variance unbiased as
 * PyTorch keeps it. Otherwise the running statistics are used and
 * backward treats them as constants. One thread per channel: every sum
 * runs in a fixed order. */
#include <math.h>

#include <omp.h>

#include "graph/train_internal.h"
#include "graph/train_simd.h"

typedef struct bn_dims {
  int64_t n, c, hw;
  float eps, momentum;
} bn_dims;

static qcal_status dims(qcal_train *t, qcal_node *n, bn_dims *d) {
  const qcal_value *x = qcal_in(t->g, n, 0);
  if (x->ndim < 2)
    return qcal_node_error(t->g, n, QCAL_EUNSUPPORTED, "training needs an input [N, C, ...]");
  d->n = x->shape[0];
  d->c = x->shape[1];
  d->hw = (int64_t)x->numel / (d->n * d->c);
  d->eps = qcal_attr_float(n, "epsilon", 1e-5f);
  d->momentum = qcal_attr_float(n, "momentum", 0.9f);
  (void)qcal_attr_int(n, "training_mode", 0);
  return QCAL_OK;
}

qcal_status qcal_tfwd_batchnorm(qcal_train *t, qcal_node *n) {
  bn_dims d;
  QCAL_TRY(dims(t, n, &d));
  const float *x = qcal_tx(t, n, 0), *gam = qcal_tx(t, n, 1), *bet = qcal_tx(t, n, 2);
  float *rmean = qcal_tx(t, n, 3), *rvar = qcal_tx(t, n, 4), *y = qcal_ty(t, n, 0);
  /* saved: mean and 1/std per channel, and the mode they came from */
  float *st = qcal_train_scratch(t, n, 0, (size_t)(2 * d.c + 1) * sizeof(float));
  if (!st)
    return qcal_node_error(t->g, n, QCAL_ENOMEM, "out of memory");
  const bool train = t->training;
  st[2 * d.c] = train ? 1.0f : 0.0f;
  const int64_t per = d.n * d.hw;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < d.c; c++) {
    double mean, var;
    if (train) {
      double s = 0, s2 = 0;
      for (int64_t b = 0; b < d.n; b++)
        s += qcal_span_sum(x + (b * d.c + c) * d.hw, (size_t)d.hw);
      mean = s / (double)per;
      for (int64_t b = 0; b < d.n; b++)
        s2 += qcal_span_sumsq_dev(x + (b * d.c + c) * d.hw, (float)mean, (size_t)d.hw);
      var = s2 / (double)per;
      double unbiased = per > 1 ? s2 / (double)(per - 1) : var;
      rmean[c] = (float)(rmean[c] * d.momentum + mean * (1.0 - d.momentum));
      rvar[c] = (float)(rvar[c] * d.momentum + unbiased * (1.0 - d.momentum));
    } else {
      mean = rmean[c];
      var = rvar[c];
    }
    float inv = (float)(1.0 / sqrt(var + d.eps)), mu = (float)mean;
    st[c] = mu;
    st[d.c + c] = inv;
    float a = gam[c] * inv, b0 = bet[c] - mu * a;
    for (int64_t b = 0; b < d.n; b++)
      qcal_span_affine(y + (b * d.c + c) * d.hw, x + (b * d.c + c) * d.hw, a, b0, (size_t)d.hw);
  }
  return QCAL_OK;
}

qcal_status qcal_bwd_batchnorm(qcal_train *t, qcal_node *n) {
  bn_dims d;
  QCAL_TRY(dims(t, n, &d));
  const float *x = qcal_tx(t, n, 0), *gam = qcal_tx(t, n, 1), *dy = qcal_tdy(t, n, 0);
  float *dx = qcal_tdx(t, n, 0), *dg = qcal_tdx(t, n, 1), *dbeta = qcal_tdx(t, n, 2);
  const float *st = t->saved[n - t->g->nodes][0].p;
  const bool train = st[2 * d.c] != 0;
  const double per = (double)(d.n * d.hw);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < d.c; c++) {
    const float mu = st[c], inv = st[d.c + c];
    double sdy = 0, sdyx = 0; /* sum dy, sum dy * xhat */
    for (int64_t b = 0; b < d.n; b++) {
      const float *p = x + (b * d.c + c) * d.hw, *g = dy + (b * d.c + c) * d.hw;
      sdy += qcal_span_sum(g, (size_t)d.hw);
      sdyx += qcal_span_dot_norm(g, p, mu, inv, (size_t)d.hw);
    }
    if (dg)
      dg[c] += (float)sdyx;
    if (dbeta)
      dbeta[c] += (float)sdy;
    if (!dx)
      continue;
    const float k = gam[c] * inv;
    const float mdy = train ? (float)(sdy / per) : 0.0f, mdyx = train ? (float)(sdyx / per) : 0.0f;
    for (int64_t b = 0; b < d.n; b++) {
      const int64_t o = (b * d.c + c) * d.hw;
      qcal_span_bn_dx(dx + o, dy + o, x + o, k, mdy, mu, inv, mdyx, (size_t)d.hw);
    }
  }
  return QCAL_OK;
}
