/* PoseNet's task metrics: heatmap and offset SQNR, and keypoint agreement
 * (per keypoint, does the quantized heatmap peak at the FP32 position; all
 * keypoints, and those FP32 scores >= 0.5). A graph is PoseNet's when it
 * has NHWC outputs named *heatmap* [1, H, W, K] and *offset* [1, H, W, 2K]. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/task.h"

typedef struct {
  int heat, off; /* output indices */
} posenet_ctx;

typedef struct {
  double sig_h, err_h, sig_o, err_o;
  long match, total;
  long cmatch, ctotal; /* keypoints FP32 scores >= 0.5 */
} posenet_acc;

static int output_named(const qcal_graph *g, const char *part) {
  int found = -1;
  for (int k = 0; k < g->noutputs; k++) {
    const qcal_value *v = &g->values[g->outputs[k]];
    if (v->dtype == QCAL_DT_F32 && v->ndim == 4 && v->shape[0] == 1 && strstr(v->name, part))
      found = found < 0 ? k : -2; /* two candidates: not PoseNet's layout */
  }
  return found;
}

static void *bind(const qcal_graph *g) {
  int h = output_named(g, "heatmap"), o = output_named(g, "offset");
  if (h < 0)
    return NULL;
  const qcal_value *vh = &g->values[g->outputs[h]];
  if (o >= 0) {
    const qcal_value *vo = &g->values[g->outputs[o]];
    if (vo->shape[1] != vh->shape[1] || vo->shape[2] != vh->shape[2] ||
        vo->shape[3] != 2 * vh->shape[3])
      o = -1;
  }
  posenet_ctx *c = malloc(sizeof *c);
  if (c)
    c->heat = h, c->off = o < 0 ? -1 : o;
  return c;
}

static void energy(const float *a, const float *b, size_t n, double *sig, double *err) {
  for (size_t i = 0; i < n; i++) {
    double d = (double)a[i] - b[i];
    *sig += (double)a[i] * a[i];
    *err += d * d;
  }
}

static void accumulate(const void *cv, const qcal_graph *g, float *const *ref, float *const *q,
                       void *av) {
  const posenet_ctx *c = cv;
  posenet_acc *f = av;
  const qcal_value *vh = &g->values[g->outputs[c->heat]];
  const float *a = ref[c->heat], *b = q[c->heat];
  energy(a, b, vh->numel, &f->sig_h, &f->err_h);
  const int K = (int)vh->shape[3];
  const size_t P = vh->numel / (size_t)K;
  for (int k = 0; k < K; k++) {
    size_t ba = 0, bb = 0;
    for (size_t p = 1; p < P; p++) {
      if (a[p * K + k] > a[ba * K + k])
        ba = p;
      if (b[p * K + k] > b[bb * K + k])
        bb = p;
    }
    f->match += ba == bb;
    f->total++;
    if (a[ba * K + k] >= 0.0f) { /* sigmoid(logit) >= 0.5 */
      f->cmatch += ba == bb;
      f->ctotal++;
    }
  }
  if (c->off >= 0)
    energy(ref[c->off], q[c->off], g->values[g->outputs[c->off]].numel, &f->sig_o, &f->err_o);
}

static double sqnr(double sig, double err) {
  return err > 0 ? 10 * log10(sig / err) : INFINITY;
}

static void e2e_row(const void *cv, const void *av, qcal_table *t) {
  (void)cv;
  const posenet_acc *f = av;
  qcal_table_set_f(t, QCAL_COL(E2E, heatmap_sqnr_db), sqnr(f->sig_h, f->err_h));
  qcal_table_set_f(t, QCAL_COL(E2E, offset_sqnr_db), sqnr(f->sig_o, f->err_o));
  qcal_table_set_f(t, QCAL_COL(E2E, keypoint_agreement),
                   f->total ? (double)f->match / (double)f->total : NAN);
  qcal_table_set_f(t, QCAL_COL(E2E, keypoint_agreement_confident),
                   f->ctotal ? (double)f->cmatch / (double)f->ctotal : NAN);
  qcal_table_set_i(t, QCAL_COL(E2E, confident_keypoints), f->ctotal);
}

static void sens_row(const void *cv, const void *av, qcal_table *t) {
  (void)cv;
  const posenet_acc *f = av;
  qcal_table_set_f(t, QCAL_COL(SENSITIVITY, heatmap_sqnr_db), sqnr(f->sig_h, f->err_h));
  qcal_table_set_f(t, QCAL_COL(SENSITIVITY, offset_sqnr_db), sqnr(f->sig_o, f->err_o));
  qcal_table_set_f(t, QCAL_COL(SENSITIVITY, keypoint_agreement),
                   f->total ? (double)f->match / (double)f->total : NAN);
  qcal_table_set_f(t, QCAL_COL(SENSITIVITY, keypoint_agreement_confident),
                   f->ctotal ? (double)f->cmatch / (double)f->ctotal : NAN);
}

const qcal_task qcal_task_posenet = {
    "posenet", bind, free, sizeof(posenet_acc), accumulate, e2e_row, sens_row,
};
