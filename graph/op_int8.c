/* Ops on int8 tensors (engine int8).
 * A residual Add whose two inputs were dequantized and whose result (after
 * an optional Relu) is quantized again runs as one pass over the int8 bytes:
 *   y = saturate(round(act(a * sa + b * sb) / sy) + zy)
 * the same float arithmetic as DQ, Add, Relu and Q one after the other.
 * GlobalAveragePool of a dequantized tensor sums the codes as integers
 * (exact) and scales once: y = sum(q) * s / (H * W).
 * MaxPool between DQ and Q takes the max of the codes and rescales it.
 * The element-wise arithmetic is in the kernel list (s8_s8_add_requant,
 * q8_s8_rescale). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "qcal/kernels.h"

qcal_status qcal_fwd_add_int8(qcal_graph *g, qcal_node *n) {
  const qcal_value *a = qcal_in(g, n, 0), *b = qcal_in(g, n, 1);
  qcal_value *y = qcal_out(g, n, 0);
  const size_t chunk = 16384, total = y->numel;
  const long nchunks = (long)((total + chunk - 1) / chunk);
  const bool relu = n->x.act == QCAL_ACT_RELU;
  const qcal_kernel_table *kt = qcal_kernels();
  qcal_int8_params q;
  qcal_int8_params_get(n, &q);
#pragma omp parallel for schedule(static) if (nchunks > 4)
  for (long c = 0; c < nchunks; c++) {
    size_t o = (size_t)c * chunk, m = total - o < chunk ? total - o : chunk;
    kt->s8_s8_add_requant(m, (const int8_t *)a->data + o, (const int8_t *)b->data + o, q.a_scale,
                          q.b_scale, q.y_scale, 0, relu, (int8_t *)y->data + o);
  }
  return QCAL_OK;
}

/* Sum of n codes (u8 when u, else s8). */
static int64_t sum_codes(const uint8_t *p, size_t n, bool u) {
  int64_t s = 0;
  for (size_t i = 0; i < n; i++)
    s += u ? (int64_t)p[i] : (int64_t)(int8_t)p[i];
  return s;
}

qcal_status qcal_fwd_gap_int8(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  float *y = qcal_out(g, n, 0)->data;
  const int64_t N = x->shape[0], C = x->shape[1], HW = x->shape[2] * x->shape[3];
  const uint8_t *xd = x->data;
  const bool u = x->dtype == QCAL_DT_U8;
  qcal_int8_params q;
  qcal_int8_params_get(n, &q);
  const float s = q.a_scale, hw = (float)HW;
  if (x->fmt) { /* [N][H][W][C]: whole pixels, channels in int32 lanes */
#pragma omp parallel for if (x->numel > 65536)
    for (int64_t nn = 0; nn < N; nn++) {
      int32_t acc[4096];
      for (int64_t c0 = 0; c0 < C; c0 += 4096) {
        int64_t cn = C - c0 < 4096 ? C - c0 : 4096;
        memset(acc, 0, (size_t)cn * sizeof *acc);
        for (int64_t p = 0; p < HW; p++) {
          const uint8_t *row = xd + (nn * HW + p) * C + c0;
          if (u)
            for (int64_t c = 0; c < cn; c++)
              acc[c] += row[c];
          else
            for (int64_t c = 0; c < cn; c++)
              acc[c] += (int8_t)row[c];
        }
        for (int64_t c = 0; c < cn; c++)
          y[nn * C + c0 + c] = (float)acc[c] * s / hw;
      }
    }
    return QCAL_OK;
  }
#pragma omp parallel for if (x->numel > 65536)
  for (int64_t p = 0; p < N * C; p++)
    y[p] = (float)sum_codes(xd + p * HW, (size_t)HW, u) * s / hw;
  return QCAL_OK;
}

/* The window max of one output row's codes, channels last (the C codes of
 * a pixel contiguous, so the byte compares vectorize), into m [OW][C]. */
static void maxpool8_row_nhwc(const uint8_t *x, int64_t C, int64_t OW, const qcal_geom *ge,
                              int64_t oy, bool u, int64_t *taps, uint8_t *m) {
  for (int64_t ox = 0; ox < OW; ox++) {
    uint8_t *mp = m + ox * C;
    memset(mp, u ? 0 : 0x80, (size_t)C);
    int64_t nt = qcal_geom_taps(ge, oy, ox, taps);
    for (int64_t t = 0; t < nt; t++) {
      const uint8_t *v = x + taps[t] * C;
      if (u)
        for (int64_t c = 0; c < C; c++)
          mp[c] = v[c] > mp[c] ? v[c] : mp[c];
      else
        for (int64_t c = 0; c < C; c++)
          mp[c] = (int8_t)v[c] > (int8_t)mp[c] ? v[c] : mp[c];
    }
  }
}

qcal_status qcal_fwd_maxpool_int8(qcal_graph *g, qcal_node *n) {
  const qcal_value *x = qcal_in(g, n, 0);
  qcal_value *y = qcal_out(g, n, 0);
  qcal_geom ge;
  QCAL_TRY(qcal_geom_parse(g, n, x, NULL, false, true, &ge));
  const int64_t N = x->shape[0], C = x->shape[1], HW = ge.in[0] * ge.in[1];
  const int64_t OH = ge.out[0], OW = ge.out[1];
  const bool u = x->dtype == QCAL_DT_U8, xl = x->fmt != NULL, yl = y->fmt != NULL;
  qcal_int8_params q;
  qcal_int8_params_get(n, &q);
  const float sa = q.a_scale, sy = q.y_scale;
  const uint8_t *xd = x->data;
  int8_t *yd = y->data;
  qcal_q8_s8_rescale_fn *rescale = qcal_kernels()->q8_s8_rescale;
  const size_t cap = qcal_geom_taps_cap(&ge), row = (size_t)(OW * C);
  /* per thread: the window's taps and (channels last) a row of maxima */
  const size_t each = cap * sizeof(int64_t) + row;
  char *scratch = malloc(each * (size_t)omp_get_max_threads());
  if (!scratch)
    return qcal_node_error(g, n, QCAL_ENOMEM, "out of memory");
#pragma omp parallel for collapse(2) if (y->numel > 65536)
  for (int64_t nn = 0; nn < N; nn++)
    for (int64_t oy = 0; oy < OH; oy++) {
      char *mine = scratch + each * (size_t)omp_get_thread_num();
      int64_t *taps = (int64_t *)mine;
      if (xl && yl) { /* channels last on both sides: a row of maxima, then its rescale */
        uint8_t *mr = (uint8_t *)mine + cap * sizeof(int64_t);
        maxpool8_row_nhwc(xd + nn * HW * C, C, OW, &ge, oy, u, taps, mr);
        rescale(row, mr, u, sa, sy, yd + (size_t)(nn * OH + oy) * row);
        continue;
      }
      for (int64_t ox = 0; ox < OW; ox++) {
        int64_t nt = qcal_geom_taps(&ge, oy, ox, taps);
        for (int64_t c = 0; c < C; c++) {
          uint8_t m = u ? 0 : 0x80;
          for (int64_t t = 0; t < nt; t++) {
            uint8_t b = xd[xl ? (nn * HW + taps[t]) * C + c : (nn * C + c) * HW + taps[t]];
            m = (u ? b > m : (int8_t)b > (int8_t)m) ? b : m;
          }
          int64_t o = yl ? ((nn * OH + oy) * OW + ox) * C + c : ((nn * C + c) * OH + oy) * OW + ox;
          rescale(1, &m, u, sa, sy, yd + o);
        }
      }
    }
  free(scratch);
  return QCAL_OK;
}
