/* Task metrics of a primary output (analysis/outmetrics.inc): each photo's
 * FP32 and quantized outputs into an accumulator, its value and whether it
 * still does the task. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qcal/crops.h"
#include "qcal/outmetric.h"

const qcal_om_info qcal_om_list[QCAL_OM_COUNT] = {
#define QCAL_OUTMETRIC(id, name, what, unit, lower, holds, side)                                   \
  {name, what, unit, lower, holds, side},
#include "analysis/outmetrics.inc"
#undef QCAL_OUTMETRIC
};

int qcal_om_find(const char *name) {
  for (int m = 0; m < QCAL_OM_COUNT; m++)
    if (!strcmp(qcal_om_list[m].name, name))
      return m;
  return -1;
}

static size_t argmax_strided(const float *x, size_t n, size_t stride) {
  size_t b = 0;
  for (size_t i = 1; i < n; i++)
    if (x[i * stride] > x[b * stride])
      b = i;
  return b;
}

/* Mean x, y distance of keypoints of `stride` values. */
static void landmarks(const float *a, const float *b, size_t numel, size_t stride,
                      qcal_om_acc *acc) {
  for (size_t k = 0; k + 1 < numel; k += stride) {
    const double dx = (double)a[k] - b[k], dy = (double)a[k + 1] - b[k + 1];
    acc->sum += sqrt(dx * dx + dy * dy);
    acc->n++;
  }
}

/* Argmax of each channel of an [1, H, W, K] heatmap whose FP32 peak (through
 * a sigmoid for logits) reaches the library's 0.3, distance in input pixels
 * (a cell is side / H). */
static void heatmap(const qcal_value *v, const float *a, const float *b, int side, bool logits,
                    qcal_om_acc *acc) {
  if (v->ndim != 4)
    return;
  const size_t H = (size_t)v->shape[1], W = (size_t)v->shape[2], K = (size_t)v->shape[3];
  const double cell = (double)side / (double)(H > W ? H : W);
  for (size_t k = 0; k < K; k++) {
    const size_t i = argmax_strided(a + k, H * W, K), j = argmax_strided(b + k, H * W, K);
    const double peak = a[i * K + k];
    if ((logits ? 1.0 / (1.0 + exp(-peak)) : peak) < 0.3)
      continue;
    const double dy = (double)(i / W) - (double)(j / W), dx = (double)(i % W) - (double)(j % W);
    acc->sum += cell * sqrt(dx * dx + dy * dy);
    acc->n++;
  }
}

static void mask(const qcal_value *v, const float *a, const float *b, qcal_om_acc *acc) {
  const bool two = v->ndim == 4 && v->shape[3] == 2;
  const size_t n = two ? v->numel / 2 : v->numel;
  size_t inter = 0, uni = 0;
  for (size_t i = 0; i < n; i++) {
    const bool x = two ? a[2 * i + 1] > a[2 * i] : a[i] > 0.5f;
    const bool y = two ? b[2 * i + 1] > b[2 * i] : b[i] > 0.5f;
    inter += x && y;
    uni += x || y;
  }
  acc->sum += uni ? (double)inter / (double)uni : 1.0;
  acc->n++;
}

/* The top-scoring BlazeFace box of each side, their IoU. */
static void facebox(const qcal_graph *g, float *const *ref, float *const *q, int side,
                    qcal_om_acc *acc) {
  float *ra = NULL, *rb = NULL;
  int na = 0, nb = 0;
  if (qcal_blazeface_rows(g, ref, "", &ra, &na) == QCAL_OK &&
      qcal_blazeface_rows(g, q, "", &rb, &nb) == QCAL_OK && na == nb) {
    float best[2][5] = {{-1}, {-1}};
    for (int i = 0; i < na; i++)
      for (int s = 0; s < 2; s++) {
        float bx[5];
        qcal_blazeface_box((s ? rb : ra) + (size_t)i * 17, side, i, bx);
        if (bx[0] > best[s][0])
          memcpy(best[s], bx, sizeof bx);
      }
    acc->sum += qcal_box_iou(best[0], best[1]);
    acc->n++;
  }
  free(ra), free(rb);
}

void qcal_om_update(qcal_outmetric m, const qcal_graph *g, float *const *ref, float *const *q,
                    int o, int side, qcal_om_acc *acc) {
  const qcal_value *v = &g->values[g->outputs[o]];
  const float *a = ref[o], *b = q[o];
  if (!a || !b)
    return;
  const size_t n = v->numel;
  switch (m) {
  case QCAL_OM_LANDMARKS3:
    landmarks(a, b, n, 3, acc);
    break;
  case QCAL_OM_LANDMARKS5:
    landmarks(a, b, n, 5, acc);
    break;
  case QCAL_OM_HEATMAP:
  case QCAL_OM_HEATMAP_LOGITS:
    heatmap(v, a, b, side, m == QCAL_OM_HEATMAP_LOGITS, acc);
    break;
  case QCAL_OM_CLASS:
    acc->sum += argmax_strided(a, n, 1) == argmax_strided(b, n, 1);
    acc->n++;
    break;
  case QCAL_OM_EMBEDDING: {
    double d = 0, na = 0, nb = 0;
    for (size_t i = 0; i < n; i++)
      d += (double)a[i] * b[i], na += (double)a[i] * a[i], nb += (double)b[i] * b[i];
    acc->sum += na > 0 && nb > 0 ? d / sqrt(na * nb) : (na == nb ? 1.0 : 0.0);
    acc->n++;
    break;
  }
  case QCAL_OM_VALUE:
    for (size_t i = 0; i < n; i++)
      acc->sum += fabs((double)a[i] - b[i]), acc->sum2 += fabs((double)a[i]);
    acc->n++;
    break;
  case QCAL_OM_MASK:
    mask(v, a, b, acc);
    break;
  case QCAL_OM_FACEBOX:
    facebox(g, ref, q, side, acc);
    break;
  case QCAL_OM_ANCHOR:
    if (v->ndim == 3) {
      const size_t rows = (size_t)v->shape[1], cols = (size_t)v->shape[2];
      acc->sum += argmax_strided(a, rows, cols) == argmax_strided(b, rows, cols);
      acc->n++;
    }
    break;
  case QCAL_OM_COUNT:
    break;
  }
}

double qcal_om_value(qcal_outmetric m, const qcal_om_acc *acc) {
  if (!acc->n)
    return NAN;
  if (m == QCAL_OM_VALUE)
    return acc->sum2 > 0 ? acc->sum / acc->sum2 : (acc->sum > 0 ? INFINITY : 0.0);
  return acc->sum / (double)acc->n;
}

double qcal_om_threshold(qcal_outmetric m, int side) {
  const qcal_om_info *i = &qcal_om_list[m];
  return i->per_side > 0 ? i->holds * side : i->holds;
}

bool qcal_om_holds(qcal_outmetric m, double value, int side) {
  if (isnan(value))
    return false;
  const double t = qcal_om_threshold(m, side);
  return qcal_om_list[m].lower_better ? value <= t : value >= t;
}
