/* Training forward and backward of the light ops: Gemm (sgemm), Relu and
 * Clip (ReLU6), the shape ops that only rename (Flatten, Reshape,
 * Identity: their output shares the input's buffers), MaxPool,
 * GlobalAveragePool and Add of equal shapes. Backward adds into the input
 * gradients, which the trainer zeroed. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "graph/train_internal.h"
#include "graph/train_simd.h"

/* ---- Gemm: Y = A B (B [K, M], or [M, K] with transB) + C */
static qcal_status gemm_dims(qcal_train *t, qcal_node *n, int *N, int *K, int *M, bool *tb) {
  qcal_graph *g = t->g;
  if (qcal_attr_int(n, "transA", 0) != 0 || qcal_attr_float(n, "alpha", 1.0f) != 1.0f ||
      qcal_attr_float(n, "beta", 1.0f) != 1.0f)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED,
                           "training supports Gemm with transA 0, alpha 1 and beta 1");
  const qcal_value *a = qcal_in(g, n, 0), *b = qcal_in(g, n, 1), *c = qcal_in(g, n, 2);
  *tb = qcal_attr_int(n, "transB", 0) != 0;
  *N = (int)a->shape[0];
  *K = (int)a->shape[1];
  *M = (int)(*tb ? b->shape[0] : b->shape[1]);
  if (c && c->numel != (size_t)*M)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "training supports a bias of %d values", *M);
  return QCAL_OK;
}

qcal_status qcal_tfwd_gemm(qcal_train *t, qcal_node *n) {
  int N, K, M;
  bool tb;
  QCAL_TRY(gemm_dims(t, n, &N, &K, &M, &tb));
  const float *a = qcal_tx(t, n, 0), *b = qcal_tx(t, n, 1), *c = qcal_tx(t, n, 2);
  float *y = qcal_ty(t, n, 0);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < M; j++)
      y[(size_t)i * M + j] = c ? c[j] : 0.0f;
  qcal_train_sgemm(false, tb, N, M, K, 1.0f, a, K, b, tb ? K : M, 1.0f, y, M);
  return QCAL_OK;
}

qcal_status qcal_bwd_gemm(qcal_train *t, qcal_node *n) {
  int N, K, M;
  bool tb;
  QCAL_TRY(gemm_dims(t, n, &N, &K, &M, &tb));
  const float *a = qcal_tx(t, n, 0), *b = qcal_tx(t, n, 1), *dy = qcal_tdy(t, n, 0);
  float *da = qcal_tdx(t, n, 0), *db = qcal_tdx(t, n, 1), *dc = qcal_tdx(t, n, 2);
  if (da) /* dA [N, K] += dY [N, M] B^T */
    qcal_train_sgemm(false, !tb, N, K, M, 1.0f, dy, M, b, tb ? K : M, 1.0f, da, K);
  if (db) {
    if (tb) /* dB [M, K] += dY^T A */
      qcal_train_sgemm(true, false, M, K, N, 1.0f, dy, M, a, K, 1.0f, db, K);
    else /* dB [K, M] += A^T dY */
      qcal_train_sgemm(true, false, K, M, N, 1.0f, a, K, dy, M, 1.0f, db, M);
  }
  for (int j = 0; dc && j < M; j++) {
    double s = 0;
    for (int i = 0; i < N; i++)
      s += dy[(size_t)i * M + j];
    dc[j] += (float)s;
  }
  return QCAL_OK;
}

/* ---- Relu, Clip */
static qcal_status act_of(qcal_train *t, qcal_node *n, float *lo, float *hi) {
  qcal_act act;
  float alpha = 0, beta = 0;
  if (!qcal_node_act(t->g, n, &act, &alpha, &beta))
    return qcal_node_error(t->g, n, QCAL_EUNSUPPORTED, "training needs constant Clip bounds");
  *lo = act == QCAL_ACT_RELU ? 0.0f : alpha;
  *hi = act == QCAL_ACT_RELU ? INFINITY : beta;
  return QCAL_OK;
}

qcal_status qcal_tfwd_act(qcal_train *t, qcal_node *n) {
  float lo, hi;
  QCAL_TRY(act_of(t, n, &lo, &hi));
  const float *x = qcal_tx(t, n, 0);
  float *y = qcal_ty(t, n, 0);
  size_t len = t->g->values[n->out[0]].numel;
#pragma omp parallel
  {
    QCAL_THREAD_SPAN(len, a, b);
    qcal_span_clamp(y + a, x + a, lo, hi, b - a);
  }
  return QCAL_OK;
}

/* The gradient passes where lo < x < hi (PyTorch's relu and hardtanh). */
qcal_status qcal_bwd_act(qcal_train *t, qcal_node *n) {
  float lo, hi;
  QCAL_TRY(act_of(t, n, &lo, &hi));
  const float *x = qcal_tx(t, n, 0), *dy = qcal_tdy(t, n, 0);
  float *dx = qcal_tdx(t, n, 0);
  size_t len = t->g->values[n->out[0]].numel;
  if (!dx)
    return QCAL_OK;
#pragma omp parallel
  {
    QCAL_THREAD_SPAN(len, a, b);
    qcal_span_clamp_bwd(dx + a, x + a, dy + a, lo, hi, b - a);
  }
  return QCAL_OK;
}

/* ---- Flatten, Reshape, Identity: the trainer aliases their buffers */
qcal_status qcal_tfwd_alias(qcal_train *t, qcal_node *n) {
  (void)t;
  (void)n;
  return QCAL_OK;
}
qcal_status qcal_bwd_alias(qcal_train *t, qcal_node *n) {
  (void)t;
  (void)n;
  return QCAL_OK;
}

/* ---- MaxPool: forward keeps each output's argmax within its plane */
qcal_status qcal_tfwd_maxpool(qcal_train *t, qcal_node *n) {
  qcal_graph *g = t->g;
  const qcal_value *xv = qcal_in(g, n, 0);
  if (xv->ndim != 4)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "training supports 2-D pooling only");
  qcal_geom ge;
  QCAL_TRY(qcal_geom_parse(g, n, xv, NULL, false, true, &ge));
  const int64_t planes = xv->shape[0] * xv->shape[1], H = ge.in[0], W = ge.in[1];
  const int64_t OH = ge.out[0], OW = ge.out[1];
  int32_t *arg = qcal_train_scratch(t, n, 0, (size_t)(planes * OH * OW) * sizeof(int32_t));
  if (!arg)
    return qcal_node_error(g, n, QCAL_ENOMEM, "out of memory");
  const float *x = qcal_tx(t, n, 0);
  float *y = qcal_ty(t, n, 0);
  const int64_t KH = ge.k[0], KW = ge.k[1], SH = ge.s[0], SW = ge.s[1], DH = ge.d[0], DW = ge.d[1];
  const int64_t PH = ge.pb[0], PW = ge.pb[1];
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; p++) {
    const float *xp = x + p * H * W;
    float *yp = y + p * OH * OW;
    int32_t *ap = arg + p * OH * OW;
    for (int64_t oy = 0; oy < OH; oy++)
      for (int64_t ox = 0; ox < OW; ox++) {
        float best = -INFINITY;
        int32_t at = -1;
        for (int64_t ky = 0; ky < KH; ky++) {
          const int64_t iy = oy * SH - PH + ky * DH;
          if (iy < 0 || iy >= H)
            continue;
          for (int64_t kx = 0; kx < KW; kx++) {
            const int64_t ix = ox * SW - PW + kx * DW;
            if (ix < 0 || ix >= W)
              continue;
            const float v = xp[iy * W + ix];
            if (at < 0 || v > best) {
              best = v;
              at = (int32_t)(iy * W + ix);
            }
          }
        }
        yp[oy * OW + ox] = at < 0 ? 0.0f : best;
        ap[oy * OW + ox] = at;
      }
  }
  return QCAL_OK;
}

qcal_status qcal_bwd_maxpool(qcal_train *t, qcal_node *n) {
  qcal_graph *g = t->g;
  const qcal_value *xv = qcal_in(g, n, 0), *yv = qcal_out(g, n, 0);
  float *dx = qcal_tdx(t, n, 0);
  if (!dx)
    return QCAL_OK;
  const int32_t *arg = t->saved[n - g->nodes][0].p;
  const float *dy = qcal_tdy(t, n, 0);
  const int64_t planes = xv->shape[0] * xv->shape[1], HW = xv->shape[2] * xv->shape[3];
  const int64_t OHW = yv->shape[2] * yv->shape[3];
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; p++)
    for (int64_t o = 0; o < OHW; o++)
      if (arg[p * OHW + o] >= 0)
        dx[p * HW + arg[p * OHW + o]] += dy[p * OHW + o];
  return QCAL_OK;
}

/* ---- GlobalAveragePool */
qcal_status qcal_tfwd_gap(qcal_train *t, qcal_node *n) {
  const qcal_value *xv = qcal_in(t->g, n, 0);
  const int64_t planes = xv->shape[0] * xv->shape[1], HW = (int64_t)xv->numel / planes;
  const float *x = qcal_tx(t, n, 0);
  float *y = qcal_ty(t, n, 0);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; p++) {
    double s = 0;
    for (int64_t i = 0; i < HW; i++)
      s += x[p * HW + i];
    y[p] = (float)(s / (double)HW);
  }
  return QCAL_OK;
}

qcal_status qcal_bwd_gap(qcal_train *t, qcal_node *n) {
  const qcal_value *xv = qcal_in(t->g, n, 0);
  float *dx = qcal_tdx(t, n, 0);
  if (!dx)
    return QCAL_OK;
  const int64_t planes = xv->shape[0] * xv->shape[1], HW = (int64_t)xv->numel / planes;
  const float *dy = qcal_tdy(t, n, 0);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; p++) {
    float gv = dy[p] / (float)HW;
    for (int64_t i = 0; i < HW; i++)
      dx[p * HW + i] += gv;
  }
  return QCAL_OK;
}

/* ---- Add of two equal shapes (residual connections) */
static qcal_status add_check(qcal_train *t, qcal_node *n) {
  const qcal_value *a = qcal_in(t->g, n, 0), *b = qcal_in(t->g, n, 1);
  if (a->numel != b->numel || a->ndim != b->ndim ||
      memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof(int64_t)))
    return qcal_node_error(t->g, n, QCAL_EUNSUPPORTED,
                           "training supports Add of two equal shapes only");
  return QCAL_OK;
}

qcal_status qcal_tfwd_add(qcal_train *t, qcal_node *n) {
  QCAL_TRY(add_check(t, n));
  const float *a = qcal_tx(t, n, 0), *b = qcal_tx(t, n, 1);
  float *y = qcal_ty(t, n, 0);
  size_t len = t->g->values[n->out[0]].numel;
#pragma omp parallel
  {
    QCAL_THREAD_SPAN(len, lo, hi);
    qcal_span_add(y + lo, a + lo, b + lo, hi - lo);
  }
  return QCAL_OK;
}

qcal_status qcal_bwd_add(qcal_train *t, qcal_node *n) {
  const float *dy = qcal_tdy(t, n, 0);
  size_t len = t->g->values[n->out[0]].numel;
  for (int k = 0; k < 2; k++) {
    float *dx = qcal_tdx(t, n, k);
    if (!dx)
      continue;
#pragma omp parallel
    {
      QCAL_THREAD_SPAN(len, lo, hi);
      qcal_span_axpy(dx + lo, dy + lo, 1.0f, hi - lo);
    }
  }
  return QCAL_OK;
}

/* C = alpha op(A) op(B) + beta C, row-major, with C's rows (or columns,
 * whichever are more) split over the OpenMP team and a serial OpenBLAS
 * call per part: OpenBLAS's own threads next to an OpenMP team each spin
 * while the other works, which halved the speed on two cores. A part's
 * bits do not depend on the split, so a step is the same for a given
 * thread count. */
void qcal_train_sgemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
                      const float *b, int ldb, float beta, float *c, int ldc) {
  const int nt = omp_get_max_threads();
  const bool rows = m >= n;
  const int len = rows ? m : n;
  const int parts = nt < len ? nt : len;
#pragma omp parallel for schedule(static) num_threads(parts > 0 ? parts : 1)
  for (int p = 0; p < parts; p++) {
    int lo = (int)((int64_t)len * p / parts), hi = (int)((int64_t)len * (p + 1) / parts);
    if (hi <= lo)
      continue;
    const float *ap = a, *bp = b;
    float *cp = c;
    int mm = m, nn = n;
    if (rows) { /* rows lo..hi of C: rows of op(A) */
      ap = ta ? a + lo : a + (size_t)lo * lda;
      cp = c + (size_t)lo * ldc;
      mm = hi - lo;
    } else { /* columns lo..hi of C: columns of op(B) */
      bp = tb ? b + (size_t)lo * ldb : b + lo;
      cp = c + lo;
      nn = hi - lo;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, mm,
                nn, k, alpha, ap, lda, bp, ldb, beta, cp, ldc);
  }
}
