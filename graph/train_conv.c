/* Conv for training: group 1 as im2col and one sgemm over the whole batch
 * (columns [C*kh*kw][N*OH*OW]), depthwise by direct loops. Forward keeps
 * the columns; backward gives dW = dY x cols^T, dX = col2im(W^T x dY) and
 * db = the sums of dY. Every reduction runs in a fixed order, so a step is
 * the same bits for a given thread count. */
#include <cblas.h>
#include <string.h>

#include "graph/train_internal.h"

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
  *d = (conv_dims){.n = x->shape[0], .c = x->shape[1], .m = w->shape[0], .h = x->shape[2],
                   .w = x->shape[3], .oh = ge.out[0], .ow = ge.out[1], .kh = ge.k[0],
                   .kw = ge.k[1], .sh = ge.s[0], .sw = ge.s[1], .dh = ge.d[0], .dw = ge.d[1],
                   .ph = ge.pb[0], .pw = ge.pb[1]};
  d->depthwise = group > 1 && group == d->c && d->m == d->c;
  if (group != 1 && !d->depthwise)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED,
                           "training supports group 1 and depthwise convolutions, not group %lld",
                           (long long)group);
  return QCAL_OK;
}

/* cols[(c*kh + ky)*kw + kx][b*P + oy*OW + ox] = x[b][c][iy][ix] (0 outside). */
static void im2col(const conv_dims *d, const float *x, float *cols) {
  const int64_t P = d->oh * d->ow, K = d->c * d->kh * d->kw, NP = d->n * P;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < K; r++) {
    int64_t c = r / (d->kh * d->kw), ky = r / d->kw % d->kh, kx = r % d->kw;
    float *row = cols + r * NP;
    for (int64_t b = 0; b < d->n; b++) {
      const float *xp = x + (b * d->c + c) * d->h * d->w;
      for (int64_t oy = 0; oy < d->oh; oy++) {
        int64_t iy = oy * d->sh - d->ph + ky * d->dh;
        float *o = row + b * P + oy * d->ow;
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
}

/* dx += col2im(dcols); one thread per input channel, so no two write the
 * same element and the order of the sums is fixed. */
static void col2im(const conv_dims *d, const float *dcols, float *dx) {
  const int64_t P = d->oh * d->ow, NP = d->n * P;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < d->c; c++)
    for (int64_t ky = 0; ky < d->kh; ky++)
      for (int64_t kx = 0; kx < d->kw; kx++) {
        const float *row = dcols + ((c * d->kh + ky) * d->kw + kx) * NP;
        for (int64_t b = 0; b < d->n; b++) {
          float *xp = dx + (b * d->c + c) * d->h * d->w;
          for (int64_t oy = 0; oy < d->oh; oy++) {
            int64_t iy = oy * d->sh - d->ph + ky * d->dh;
            if (iy < 0 || iy >= d->h)
              continue;
            const float *o = row + b * P + oy * d->ow;
            for (int64_t ox = 0; ox < d->ow; ox++) {
              int64_t ix = ox * d->sw - d->pw + kx * d->dw;
              if (ix >= 0 && ix < d->w)
                xp[iy * d->w + ix] += o[ox];
            }
          }
        }
      }
}

static qcal_status oom(qcal_train *t, qcal_node *n) {
  return qcal_node_error(t->g, n, QCAL_ENOMEM, "out of memory for training buffers");
}

static void depthwise_fwd(const conv_dims *d, const float *x, const float *w, const float *bias,
                          float *y) {
#pragma omp parallel for schedule(static)
  for (int64_t bc = 0; bc < d->n * d->c; bc++) {
    int64_t c = bc % d->c;
    const float *xp = x + bc * d->h * d->w, *k = w + c * d->kh * d->kw;
    float *yp = y + bc * d->oh * d->ow;
    for (int64_t oy = 0; oy < d->oh; oy++)
      for (int64_t ox = 0; ox < d->ow; ox++) {
        float s = bias ? bias[c] : 0.0f;
        for (int64_t ky = 0; ky < d->kh; ky++) {
          int64_t iy = oy * d->sh - d->ph + ky * d->dh;
          if (iy < 0 || iy >= d->h)
            continue;
          for (int64_t kx = 0; kx < d->kw; kx++) {
            int64_t ix = ox * d->sw - d->pw + kx * d->dw;
            if (ix >= 0 && ix < d->w)
              s += xp[iy * d->w + ix] * k[ky * d->kw + kx];
          }
        }
        yp[oy * d->ow + ox] = s;
      }
  }
}

static void depthwise_bwd(const conv_dims *d, const float *x, const float *w, const float *dy,
                          float *dx, float *dw, float *db) {
  const int64_t HW = d->h * d->w, OHW = d->oh * d->ow;
  if (dx) {
#pragma omp parallel for schedule(static)
    for (int64_t bc = 0; bc < d->n * d->c; bc++) {
      int64_t c = bc % d->c;
      const float *k = w + c * d->kh * d->kw, *g = dy + bc * OHW;
      float *xp = dx + bc * HW;
      for (int64_t oy = 0; oy < d->oh; oy++)
        for (int64_t ky = 0; ky < d->kh; ky++) {
          int64_t iy = oy * d->sh - d->ph + ky * d->dh;
          if (iy < 0 || iy >= d->h)
            continue;
          for (int64_t ox = 0; ox < d->ow; ox++) {
            float gv = g[oy * d->ow + ox];
            for (int64_t kx = 0; kx < d->kw; kx++) {
              int64_t ix = ox * d->sw - d->pw + kx * d->dw;
              if (ix >= 0 && ix < d->w)
                xp[iy * d->w + ix] += gv * k[ky * d->kw + kx];
            }
          }
        }
    }
  }
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < d->c; c++) {
    float *k = dw ? dw + c * d->kh * d->kw : NULL;
    double bsum = 0;
    for (int64_t b = 0; b < d->n; b++) {
      const float *xp = x + (b * d->c + c) * HW, *g = dy + (b * d->c + c) * OHW;
      for (int64_t ky = 0; k && ky < d->kh; ky++)
        for (int64_t kx = 0; kx < d->kw; kx++) {
          float s = 0;
          for (int64_t oy = 0; oy < d->oh; oy++) {
            int64_t iy = oy * d->sh - d->ph + ky * d->dh;
            if (iy < 0 || iy >= d->h)
              continue;
            for (int64_t ox = 0; ox < d->ow; ox++) {
              int64_t ix = ox * d->sw - d->pw + kx * d->dw;
              if (ix >= 0 && ix < d->w)
                s += xp[iy * d->w + ix] * g[oy * d->ow + ox];
            }
          }
          k[ky * d->kw + kx] += s;
        }
      for (int64_t p = 0; db && p < OHW; p++)
        bsum += g[p];
    }
    if (db)
      db[c] += (float)bsum;
  }
}

qcal_status qcal_tfwd_conv(qcal_train *t, qcal_node *n) {
  conv_dims d;
  QCAL_TRY(dims(t, n, &d));
  const float *x = qcal_tx(t, n, 0), *w = qcal_tx(t, n, 1), *bias = qcal_tx(t, n, 2);
  float *y = qcal_ty(t, n, 0);
  if (d.depthwise) {
    depthwise_fwd(&d, x, w, bias, y);
    return QCAL_OK;
  }
  const int64_t P = d.oh * d.ow, K = d.c * d.kh * d.kw, NP = d.n * P;
  float *cols = qcal_train_scratch(t, n, 0, (size_t)(K * NP) * sizeof(float));
  float *ym = qcal_train_scratch(t, n, 1, (size_t)(d.m * NP) * sizeof(float));
  if (!cols || !ym)
    return oom(t, n);
  im2col(&d, x, cols);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d.m, (int)NP, (int)K, 1.0f, w,
              (int)K, cols, (int)NP, 0.0f, ym, (int)NP);
  /* [M][N*P] -> [N][M][P] with the bias */
#pragma omp parallel for schedule(static)
  for (int64_t bm = 0; bm < d.n * d.m; bm++) {
    int64_t b = bm / d.m, m = bm % d.m;
    const float *src = ym + m * NP + b * P;
    float *dst = y + bm * P, bv = bias ? bias[m] : 0.0f;
    for (int64_t p = 0; p < P; p++)
      dst[p] = src[p] + bv;
  }
  return QCAL_OK;
}

qcal_status qcal_bwd_conv(qcal_train *t, qcal_node *n) {
  conv_dims d;
  QCAL_TRY(dims(t, n, &d));
  const float *x = qcal_tx(t, n, 0), *w = qcal_tx(t, n, 1), *dy = qcal_tdy(t, n, 0);
  float *dx = qcal_tdx(t, n, 0), *dw = qcal_tdx(t, n, 1), *db = qcal_tdx(t, n, 2);
  if (d.depthwise) {
    depthwise_bwd(&d, x, w, dy, dx, dw, db);
    return QCAL_OK;
  }
  const int64_t P = d.oh * d.ow, K = d.c * d.kh * d.kw, NP = d.n * P;
  float *cols = qcal_train_scratch(t, n, 0, (size_t)(K * NP) * sizeof(float));
  float *dym = qcal_train_scratch(t, n, 1, (size_t)(d.m * NP) * sizeof(float));
  if (!cols || !dym)
    return oom(t, n);
  /* dY [N][M][P] -> [M][N*P] */
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < d.m; m++) {
    double s = 0;
    for (int64_t b = 0; b < d.n; b++) {
      const float *src = dy + (b * d.m + m) * P;
      float *dst = dym + m * NP + b * P;
      for (int64_t p = 0; p < P; p++) {
        dst[p] = src[p];
        s += src[p];
      }
    }
    if (db)
      db[m] += (float)s;
  }
  if (dw)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d.m, (int)K, (int)NP, 1.0f, dym,
                (int)NP, cols, (int)NP, 1.0f, dw, (int)K);
  if (dx) {
    /* the columns are not needed again this step: their buffer takes dcols */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)NP, (int)d.m, 1.0f, w,
                (int)K, dym, (int)NP, 0.0f, cols, (int)NP);
    col2im(&d, cols, dx);
  }
  return QCAL_OK;
}
