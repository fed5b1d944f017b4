/* Conv for training: group 1 as per-image im2col and sgemm, depthwise by
 * padded planes. Forward keeps the columns; backward gives dW = dY x
 * cols^T, dX = col2im(W^T x dY) and db = the sums of dY. Every reduction
 * runs in a fixed order, so a step is the same bits for a given thread
 * count. */
#include <string.h>

#include <cblas.h>
#include <omp.h>

#include "graph/train_internal.h"
#include "graph/train_simd.h"

typedef struct conv_dims {
  int64_t n, c, m, h, w, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw;
  bool depthwise;
} conv_dims;

static qcal_status dims(qcal_train *t, qcal_node *n, conv_dims *d) {
  qcal_graph *g = t->g;
  const qcal_value *x = qcal_in(g, n, 0), *w = qcal_in(g, n, 1);
  if (x->ndim != 4)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "training supports 2-D convolutions only");
  qcal_geom ge;
  QCAL_TRY(qcal_geom_parse(g, n, x, w->shape + 2, false, false, &ge));
  int64_t group = qcal_attr_int(n, "group", 1);
  *d = (conv_dims){.n = x->shape[0],
                   .c = x->shape[1],
                   .m = w->shape[0],
                   .h = x->shape[2],
                   .w = x->shape[3],
                   .oh = ge.out[0],
                   .ow = ge.out[1],
                   .kh = ge.k[0],
                   .kw = ge.k[1],
                   .sh = ge.s[0],
                   .sw = ge.s[1],
                   .dh = ge.d[0],
                   .dw = ge.d[1],
                   .ph = ge.pb[0],
                   .pw = ge.pb[1]};
  d->depthwise = group > 1 && group == d->c && d->m == d->c;
  if (d->depthwise && d->kh * d->kw > 64)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED,
                           "training supports depthwise kernels up to 64 taps, not %lldx%lld",
                           (long long)d->kh, (long long)d->kw);
  if (group != 1 && !d->depthwise)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED,
                           "training supports group 1 and depthwise convolutions, not group %lld",
                           (long long)group);
  return QCAL_OK;
}

/* One image: cols[(c*kh + ky)*kw + kx][oy*OW + ox] = x[c][iy][ix] (0 outside). */
static void im2col(const conv_dims *d, const float *x, float *cols) {
  const int64_t P = d->oh * d->ow, K = d->c * d->kh * d->kw;
  for (int64_t r = 0; r < K; r++) {
    int64_t c = r / (d->kh * d->kw), ky = r / d->kw % d->kh, kx = r % d->kw;
    const float *xp = x + c * d->h * d->w;
    for (int64_t oy = 0; oy < d->oh; oy++) {
      int64_t iy = oy * d->sh - d->ph + ky * d->dh;
      float *o = cols + r * P + oy * d->ow;
      if (iy < 0 || iy >= d->h) {
        memset(o, 0, (size_t)d->ow * sizeof(float));
        continue;
      }
      for (int64_t ox = 0; ox < d->ow; ox++) {
        int64_t ix = ox * d->sw - d->pw + kx * d->dw;
        o[ox] = ix >= 0 && ix < d->w ? xp[iy * d->w + ix] : 0.0f;
      }
    }
  }
}

/* One image: dx += col2im(dcols). */
static void col2im(const conv_dims *d, const float *dcols, float *dx) {
  const int64_t P = d->oh * d->ow;
  for (int64_t c = 0; c < d->c; c++)
    for (int64_t ky = 0; ky < d->kh; ky++)
      for (int64_t kx = 0; kx < d->kw; kx++) {
        const float *row = dcols + ((c * d->kh + ky) * d->kw + kx) * P;
        float *xp = dx + c * d->h * d->w;
        for (int64_t oy = 0; oy < d->oh; oy++) {
          int64_t iy = oy * d->sh - d->ph + ky * d->dh;
          if (iy < 0 || iy >= d->h)
            continue;
          const float *o = row + oy * d->ow;
          for (int64_t ox = 0; ox < d->ow; ox++) {
            int64_t ix = ox * d->sw - d->pw + kx * d->dw;
            if (ix >= 0 && ix < d->w)
              xp[iy * d->w + ix] += o[ox];
          }
        }
      }
}

/* A 1x1 stride-1 unpadded convolution reads its input as the columns. */
static bool pointwise(const conv_dims *d) {
  return d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && d->ph == 0 && d->pw == 0 &&
         d->oh == d->h && d->ow == d->w;
}

static qcal_status oom(qcal_train *t, qcal_node *n) {
  return qcal_node_error(t->g, n, QCAL_ENOMEM, "out of memory for training buffers");
}

/* Depthwise through padded planes: the input plane with its zero border
 * [Hp][Wp], and the stride-1 output laid out on the same row pitch Wp, so
 * each tap (offset ky*dh*Wp + kx*dw) is one long axpy or dot over the whole
 * plane rather than one per row (a row of 28 was mostly call overhead).
 * Strided outputs are read from the stride-1 grid; backward spreads dY
 * onto it. */
typedef struct dw_plane {
  int64_t hp, wp, oh1, ow1, span; /* padded size, stride-1 output, elements per tap */
} dw_plane;

static void dw_plane_of(const conv_dims *d, dw_plane *p) {
  int64_t pe = (d->oh - 1) * d->sh + (d->kh - 1) * d->dh + 1 - d->h - d->ph; /* bottom pad used */
  int64_t pr = (d->ow - 1) * d->sw + (d->kw - 1) * d->dw + 1 - d->w - d->pw;
  p->hp = d->h + d->ph + (pe > 0 ? pe : 0);
  p->wp = d->w + d->pw + (pr > 0 ? pr : 0);
  p->oh1 = p->hp - (d->kh - 1) * d->dh;
  p->ow1 = p->wp - (d->kw - 1) * d->dw;
  p->span = (p->oh1 - 1) * p->wp + p->ow1;
}

/* Where tap (ky, kx) reads in the padded plane. */
static int64_t tap_offset(const conv_dims *d, const dw_plane *p, int64_t ky, int64_t kx) {
  return ky * d->dh * p->wp + kx * d->dw;
}

static void pad_plane(const conv_dims *d, const dw_plane *p, const float *x, float *xp) {
  memset(xp, 0, (size_t)(p->hp * p->wp) * sizeof(float));
  for (int64_t y = 0; y < d->h; y++)
    memcpy(xp + (y + d->ph) * p->wp + d->pw, x + y * d->w, (size_t)d->w * sizeof(float));
}

static qcal_status depthwise_fwd_padded(qcal_train *t, qcal_node *n, const conv_dims *d,
                                        const dw_plane *p, const float *x, const float *w,
                                        const float *bias, float *y) {
  const int nt = omp_get_max_threads();
  const size_t per = (size_t)(p->hp * p->wp + p->hp * p->wp);
  float *scratch = qcal_train_scratch(t, n, 2, per * (size_t)nt * sizeof(float));
  if (!scratch)
    return qcal_node_error(t->g, n, QCAL_ENOMEM, "out of memory");
#pragma omp parallel for schedule(static)
  for (int64_t bc = 0; bc < d->n * d->c; bc++) {
    const int64_t c = bc % d->c;
    float *xp = scratch + per * (size_t)omp_get_thread_num(), *yw = xp + p->hp * p->wp;
    pad_plane(d, p, x + bc * d->h * d->w, xp);
    const float b0 = bias ? bias[c] : 0.0f;
    for (int64_t i = 0; i < p->span; i++)
      yw[i] = b0;
    for (int64_t ky = 0; ky < d->kh; ky++)
      for (int64_t kx = 0; kx < d->kw; kx++)
        qcal_span_axpy(yw, xp + tap_offset(d, p, ky, kx), w[(c * d->kh + ky) * d->kw + kx],
                  (size_t)p->span);
    float *yp = y + bc * d->oh * d->ow;
    for (int64_t oy = 0; oy < d->oh; oy++)
      for (int64_t ox = 0; ox < d->ow; ox++)
        yp[oy * d->ow + ox] = yw[oy * d->sh * p->wp + ox * d->sw];
  }
  return QCAL_OK;
}

/* One thread per channel, the images in order: dW and db sum in a fixed
 * order, and each dX plane is its own. */
static qcal_status depthwise_bwd_padded(qcal_train *t, qcal_node *n, const conv_dims *d,
                                        const dw_plane *p, const float *x, const float *w,
                                        const float *dy, float *dx, float *dw, float *db) {
  const int nt = omp_get_max_threads();
  const size_t plane = (size_t)(p->hp * p->wp), per = 3 * plane;
  float *scratch = qcal_train_scratch(t, n, 3, per * (size_t)nt * sizeof(float));
  if (!scratch)
    return qcal_node_error(t->g, n, QCAL_ENOMEM, "out of memory");
  const int64_t taps = d->kh * d->kw;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < d->c; c++) {
    float *xp = scratch + per * (size_t)omp_get_thread_num(), *gw = xp + plane, *dxp = gw + plane;
    double acc[64], bsum = 0; /* taps of this channel (kernels up to 8 x 8) */
    for (int64_t k = 0; k < taps && k < 64; k++)
      acc[k] = 0;
    for (int64_t b = 0; b < d->n; b++) {
      const int64_t bc = b * d->c + c;
      const float *g = dy + bc * d->oh * d->ow;
      memset(gw, 0, plane * sizeof(float));
      for (int64_t oy = 0; oy < d->oh; oy++)
        for (int64_t ox = 0; ox < d->ow; ox++)
          gw[oy * d->sh * p->wp + ox * d->sw] = g[oy * d->ow + ox];
      if (db)
        bsum += qcal_span_sum(g, (size_t)(d->oh * d->ow));
      if (dw) {
        pad_plane(d, p, x + bc * d->h * d->w, xp);
        for (int64_t ky = 0; ky < d->kh; ky++)
          for (int64_t kx = 0; kx < d->kw; kx++)
            acc[ky * d->kw + kx] += qcal_span_dot(gw, xp + tap_offset(d, p, ky, kx), (size_t)p->span);
      }
      if (dx) {
        memset(dxp, 0, plane * sizeof(float));
        for (int64_t ky = 0; ky < d->kh; ky++)
          for (int64_t kx = 0; kx < d->kw; kx++)
            qcal_span_axpy(dxp + tap_offset(d, p, ky, kx), gw, w[(c * d->kh + ky) * d->kw + kx],
                      (size_t)p->span);
        float *q = dx + bc * d->h * d->w;
        for (int64_t iy = 0; iy < d->h; iy++)
          qcal_span_axpy(q + iy * d->w, dxp + (iy + d->ph) * p->wp + d->pw, 1.0f, (size_t)d->w);
      }
    }
    for (int64_t k = 0; dw && k < taps; k++)
      dw[c * taps + k] += (float)acc[k];
    if (db)
      db[c] += (float)bsum;
  }
  return QCAL_OK;
}

/* Group 1: per image Y[n] (M x P) = W (M x K) cols[n] (K x P) + b, the
 * images split over the team with a serial sgemm each. Forward keeps the
 * columns (a pointwise convolution's are its input). */
qcal_status qcal_tfwd_conv(qcal_train *t, qcal_node *n) {
  conv_dims d;
  QCAL_TRY(dims(t, n, &d));
  const float *x = qcal_tx(t, n, 0), *w = qcal_tx(t, n, 1), *bias = qcal_tx(t, n, 2);
  float *y = qcal_ty(t, n, 0);
  if (d.depthwise) {
    dw_plane pl;
    dw_plane_of(&d, &pl);
    return depthwise_fwd_padded(t, n, &d, &pl, x, w, bias, y);
  }
  const int64_t P = d.oh * d.ow, K = d.c * d.kh * d.kw;
  const bool pw = pointwise(&d);
  float *cols = pw ? NULL : qcal_train_scratch(t, n, 0, (size_t)(K * P * d.n) * sizeof(float));
  if (!pw && !cols)
    return oom(t, n);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < d.n; b++) {
    const float *cb = pw ? x + b * K * P : cols + b * K * P;
    if (!pw)
      im2col(&d, x + b * d.c * d.h * d.w, cols + b * K * P);
    float *yb = y + b * d.m * P;
    for (int64_t m = 0; m < d.m; m++)
      for (int64_t p = 0; p < P; p++)
        yb[m * P + p] = bias ? bias[m] : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d.m, (int)P, (int)K, 1.0f, w,
                (int)K, cb, (int)P, 1.0f, yb, (int)P);
  }
  return QCAL_OK;
}

/* dW = sum_n dY[n] cols[n]^T with the output channels split over the team
 * and the images in order (a fixed sum); dX[n] = col2im(W^T dY[n]) per
 * image. */
qcal_status qcal_bwd_conv(qcal_train *t, qcal_node *n) {
  conv_dims d;
  QCAL_TRY(dims(t, n, &d));
  const float *x = qcal_tx(t, n, 0), *w = qcal_tx(t, n, 1), *dy = qcal_tdy(t, n, 0);
  float *dx = qcal_tdx(t, n, 0), *dw = qcal_tdx(t, n, 1), *db = qcal_tdx(t, n, 2);
  if (d.depthwise) {
    dw_plane pl;
    dw_plane_of(&d, &pl);
    return depthwise_bwd_padded(t, n, &d, &pl, x, w, dy, dx, dw, db);
  }
  const int64_t P = d.oh * d.ow, K = d.c * d.kh * d.kw;
  const bool pw = pointwise(&d);
  const float *cols = pw ? x : t->saved[n - t->g->nodes][0].p;
  const int nt = omp_get_max_threads();
  float *dcols = pw ? NULL : qcal_train_scratch(t, n, 1, (size_t)(K * P * nt) * sizeof(float));
  if (!pw && !dcols)
    return oom(t, n);
  if (db || dw) {
    const int parts = nt < d.m ? nt : (int)d.m;
#pragma omp parallel for schedule(static) num_threads(parts)
    for (int part = 0; part < parts; part++) {
      int64_t lo = d.m * part / parts, hi = d.m * (part + 1) / parts;
      for (int64_t b = 0; b < d.n; b++) {
        const float *g = dy + (b * d.m + lo) * P;
        if (dw)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(hi - lo), (int)K, (int)P, 1.0f,
                      g, (int)P, cols + b * K * P, (int)P, 1.0f, dw + lo * K, (int)K);
      }
      for (int64_t m = lo; db && m < hi; m++) {
        double s = 0;
        for (int64_t b = 0; b < d.n; b++)
          s += qcal_span_sum(dy + (b * d.m + m) * P, (size_t)P);
        db[m] += (float)s;
      }
    }
  }
  if (dx) {
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < d.n; b++) {
      const float *g = dy + b * d.m * P;
      if (pw) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)P, (int)d.m, 1.0f, w,
                    (int)K, g, (int)P, 1.0f, dx + b * K * P, (int)P);
        continue;
      }
      float *dc = dcols + (size_t)omp_get_thread_num() * (size_t)(K * P);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)P, (int)d.m, 1.0f, w,
                  (int)K, g, (int)P, 0.0f, dc, (int)P);
      col2im(&d, dc, dx + b * d.c * d.h * d.w);
    }
  }
  return QCAL_OK;
}
