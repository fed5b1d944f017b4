/* MaxPool, AveragePool (pads, strides, dilations, ceil_mode,
 * count_include_pad) and the global pools, in plain C over NCHW planes. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "graph/simd.h"

qcal_status qcal_infer_pool(qcal_graph *g, qcal_node *n) {
  QCAL_TRY(qcal_want_f32(g, n, 0));
  const qcal_value *x = qcal_in(g, n, 0);
  qcal_geom ge;
  QCAL_TRY(qcal_geom_parse(g, n, x, NULL, false, true, &ge));
  if (n->op == QCAL_GOP_MaxPool && qcal_attr_int(n, "storage_order", 0) != 0)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "attribute 'storage_order' = 1");
  if (n->op == QCAL_GOP_AveragePool)
    (void)qcal_attr_int(n, "count_include_pad", 0);
  int64_t shape[4] = {x->shape[0], x->shape[1], ge.out[0], ge.out[1]};
  if (x->ndim == 3)
    shape[2] = ge.out[1];
  return qcal_set_out(g, n, 0, QCAL_DT_F32, x->ndim, shape);
}

/* MaxPool from the layout the convolution before it writes, channels last
 * ([N][H][W][C]) or blocked ([N][C/B][H][W][B]), into the same layout or
 * plain NCHW. Channels last is blocked with B = C: either way a pixel's B
 * lanes are contiguous, so the window loop runs on whole vectors. */
static qcal_status maxpool_lanes(const qcal_value *x, qcal_value *y, const qcal_geom *ge) {
  const int64_t C = x->shape[1];
  const int64_t B = qcal_fmt_nhwc(x->fmt) ? C : qcal_fmt_cblock(x->fmt);
  const bool yb = y->fmt != NULL;
  const int64_t N = x->shape[0], CB = C / B, HW = ge->in[0] * ge->in[1];
  const int64_t OH = ge->out[0], OW = ge->out[1];
  const size_t cap = qcal_geom_taps_cap(ge);
  int64_t *taps_all = malloc(cap * (size_t)omp_get_max_threads() * sizeof *taps_all);
  if (!taps_all)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  const float *xd = x->data;
  float *yd = y->data;
#pragma omp parallel for collapse(3) if (y->numel > 16384)
  for (int64_t nn = 0; nn < N; nn++)
    for (int64_t cb = 0; cb < CB; cb++)
      for (int64_t oy = 0; oy < OH; oy++) {
        const float *xp = xd + (nn * CB + cb) * HW * B;
        int64_t *taps = taps_all + cap * (size_t)omp_get_thread_num();
        for (int64_t ox = 0; ox < OW; ox++) {
          int64_t nt = qcal_geom_taps(ge, oy, ox, taps);
          for (int64_t b0 = 0; b0 < B; b0 += 64) {
            const int64_t nb = B - b0 < 64 ? B - b0 : 64;
            float m[64];
            for (int64_t b = 0; b < nb; b++)
              m[b] = -INFINITY;
            for (int64_t t = 0; t < nt; t++) {
              const float *v = xp + taps[t] * B + b0;
              for (int64_t b = 0; b < nb; b++)
                m[b] = v[b] > m[b] ? v[b] : m[b];
            }
            if (yb)
              memcpy(yd + (((nn * CB + cb) * OH + oy) * OW + ox) * B + b0, m,
                     (size_t)nb * sizeof *m);
            else
              for (int64_t b = 0; b < nb; b++)
                yd[((nn * C + cb * B + b0 + b) * OH + oy) * OW + ox] = m[b];
          }
        }
      }
  free(taps_all);
  return QCAL_OK;
}

/* Output columns [*lo, *hi) whose tap kx lands inside a row of iw. */
static void tap_columns(const qcal_geom *ge, int64_t kx, int64_t *lo, int64_t *hi) {
  const int64_t off = kx * ge->d[1] - ge->pb[1], s = ge->s[1], ow = ge->out[1];
  /* ox * s + off >= 0  and  ox * s + off < iw */
  int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t b = ge->in[1] - off <= 0 ? 0 : (ge->in[1] - off + s - 1) / s;
  *lo = a < ow ? a : ow;
  *hi = b < ow ? b : ow;
  *hi = *hi < *lo ? *lo : *hi;
}

/* MaxPool / AveragePool on plain planes, one output row at a time: each
 * window tap runs along the row's columns it covers (a contiguous,
 * vectorized loop at stride 1), in the window's order, so the sums are
 * those of the tap-by-tap definition. */
QCAL_SIMD_CLONES static void pool_row(const float *xp, const qcal_geom *ge, int64_t oy, bool mx,
                                      const float *cols_pad, float *acc, float *cnt, float *yrow) {
  const int64_t ow = ge->out[1], iw = ge->in[1], s1 = ge->s[1];
  for (int64_t ox = 0; ox < ow; ox++)
    acc[ox] = mx ? -INFINITY : 0, cnt[ox] = 0;
  int64_t rows_pad = 0;
  for (int64_t ky = 0; ky < ge->k[0]; ky++) {
    const int64_t yy = oy * ge->s[0] - ge->pb[0] + ky * ge->d[0];
    rows_pad += yy < ge->in[0] + ge->pe[0];
    if (yy < 0 || yy >= ge->in[0])
      continue;
    const float *row = xp + yy * iw;
    for (int64_t kx = 0; kx < ge->k[1]; kx++) {
      int64_t lo, hi;
      tap_columns(ge, kx, &lo, &hi);
      const float *src = row + kx * ge->d[1] - ge->pb[1];
      if (mx) {
#pragma omp simd
        for (int64_t ox = lo; ox < hi; ox++) {
          const float v = src[ox * s1];
          acc[ox] = v > acc[ox] ? v : acc[ox];
        }
      } else {
#pragma omp simd
        for (int64_t ox = lo; ox < hi; ox++)
          acc[ox] += src[ox * s1], cnt[ox] += 1;
      }
    }
  }
  if (mx) {
    memcpy(yrow, acc, (size_t)ow * sizeof *acc);
    return;
  }
  for (int64_t ox = 0; ox < ow; ox++)
    yrow[ox] = acc[ox] / (cols_pad ? (float)rows_pad * cols_pad[ox] : cnt[ox] ? cnt[ox] : 1);
}

static qcal_status pool_planes(const qcal_value *x, qcal_value *y, const qcal_geom *ge, bool mx,
                               bool incl) {
  const int64_t planes = x->shape[0] * x->shape[1];
  const int64_t ih = ge->in[0], iw = ge->in[1], oh = ge->out[0], ow = ge->out[1];
  const int nt = omp_get_max_threads();
  /* per thread a row of sums and of counts; then, for count_include_pad,
   * each column's taps inside the padded extent (not the ceil-mode
   * overhang beyond it), the same for every row */
  float *scratch = malloc(((size_t)nt * 2 + 1) * (size_t)(ow + 16) * sizeof *scratch);
  if (!scratch)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  float *cols_pad = incl ? scratch + (size_t)nt * 2 * (size_t)(ow + 16) : NULL;
  for (int64_t ox = 0; cols_pad && ox < ow; ox++) {
    int64_t cols = 0;
    for (int64_t kx = 0; kx < ge->k[1]; kx++)
      cols += ox * ge->s[1] - ge->pb[1] + kx * ge->d[1] < iw + ge->pe[1];
    cols_pad[ox] = (float)cols;
  }
  const float *xd = x->data;
  float *yd = y->data;
#pragma omp parallel for schedule(static) if (y->numel > 16384)
  for (int64_t p = 0; p < planes; p++) {
    float *acc = scratch + (size_t)omp_get_thread_num() * 2 * (size_t)(ow + 16);
    for (int64_t oy = 0; oy < oh; oy++)
      pool_row(xd + p * ih * iw, ge, oy, mx, cols_pad, acc, acc + ow + 16, yd + (p * oh + oy) * ow);
  }
  free(scratch);
  return QCAL_OK;
}

qcal_status qcal_fwd_pool(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  qcal_value *y = qcal_out(g, n, 0);
  qcal_geom ge;
  QCAL_TRY(qcal_geom_parse(g, n, x, NULL, false, true, &ge));
  if (x->fmt) { /* the plan hands a channels-last or blocked input only to a 2-D MaxPool */
    qcal_status st = maxpool_lanes(x, y, &ge);
    return st ? qcal_node_error(g, n, st, "%s", qcal_last_error()) : QCAL_OK;
  }
  const bool mx = n->op == QCAL_GOP_MaxPool;
  const bool incl = !mx && qcal_attr_int(n, "count_include_pad", 0) != 0;
  qcal_status st = pool_planes(x, y, &ge, mx, incl);
  return st ? qcal_node_error(g, n, st, "%s", qcal_last_error()) : QCAL_OK;
}

qcal_status qcal_infer_global_pool(qcal_graph *g, qcal_node *n) {
  QCAL_TRY(qcal_want_f32(g, n, 0));
  const qcal_value *x = qcal_in(g, n, 0);
  if (x->ndim < 3)
    return qcal_node_error(g, n, QCAL_EFORMAT, "input must have rank >= 3");
  int64_t shape[QCAL_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++)
    shape[d] = d < 2 ? x->shape[d] : 1;
  return qcal_set_out(g, n, 0, QCAL_DT_F32, x->ndim, shape);
}

/* Global average of a [N][C/B][H][W][B] layout into plain [N, C, 1, 1]. */
static void gap_blocked(const qcal_value *x, float *yd) {
  int B = qcal_fmt_cblock(x->fmt);
  int64_t N = x->shape[0], C = x->shape[1], CB = (C + B - 1) / B, HW = 1;
  for (int d = 2; d < x->ndim; d++)
    HW *= x->shape[d];
  const float *xd = x->data;
#pragma omp parallel for collapse(2) if (x->numel > 65536)
  for (int64_t nn = 0; nn < N; nn++)
    for (int64_t cb = 0; cb < CB; cb++) {
      float acc[64] = {0};
      const float *xp = xd + (nn * CB + cb) * HW * B;
      for (int64_t i = 0; i < HW; i++)
        for (int b = 0; b < B; b++)
          acc[b] += xp[i * B + b];
      for (int b = 0; b < B && cb * B + b < C; b++)
        yd[nn * C + cb * B + b] = acc[b] / (float)HW;
    }
}

qcal_status qcal_fwd_global_pool(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  if (x->fmt) { /* the plan hands a blocked input only to the average */
    gap_blocked(x, qcal_out(g, n, 0)->data);
    return QCAL_OK;
  }
  int64_t planes = x->shape[0] * x->shape[1];
  size_t inner = planes ? x->numel / (size_t)planes : 0;
  bool mx = n->op == QCAL_GOP_GlobalMaxPool;
  const float *xd = x->data;
  float *yd = qcal_out(g, n, 0)->data;
#pragma omp parallel for if (x->numel > 65536)
  for (int64_t p = 0; p < planes; p++) {
    const float *xp = xd + (size_t)p * inner;
    float m = -INFINITY, s = 0;
    for (size_t i = 0; i < inner; i++) {
      m = xp[i] > m ? xp[i] : m;
      s += xp[i];
    }
    yd[p] = mx ? m : s / (float)inner;
  }
  return QCAL_OK;
}
