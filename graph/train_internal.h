/* What the training ops of graph/ops.inc share (graph/train_*.c). */
#ifndef QCAL_TRAIN_INTERNAL_H
#define QCAL_TRAIN_INTERNAL_H

#include "graph/internal.h"
#include "qcal/train.h"

typedef qcal_status (*qcal_train_fn)(qcal_train *t, qcal_node *n);
#define QCAL_OP(id, name, min_in, max_in, min_out, max_out, flags, infer, fwd, wslot, waxis, tfwd, \
                bwd)                                                                               \
  qcal_status tfwd(qcal_train *t, qcal_node *n);                                                   \
  qcal_status bwd(qcal_train *t, qcal_node *n);
#include "graph/ops.inc"
#undef QCAL_OP

enum { QCAL_TRAIN_BUFS = 4 };
typedef struct qcal_train_buf {
  void *p;
  size_t bytes;
} qcal_train_buf;

struct qcal_train {
  qcal_graph *g;
  int max_batch, batch;
  float **x;  /* per value: its elements (constants: the graph's own) */
  float **dx; /* per value: its gradient, NULL where none is needed */
  qcal_train_buf (*saved)[QCAL_TRAIN_BUFS]; /* per node: what backward needs */
  bool training;
  qcal_train_observe_fn observe;
  void *observe_ctx;
  int input, logits, labels, loss, loss_node;
  int nparams;
  qcal_param *params;
  const int64_t *label_data; /* the last forward's labels */
  bool have_loss;            /* the last training forward computed the loss */
};

/* Input / output i of n and their gradients (NULL when absent or when no
 * gradient flows there). */
static inline float *qcal_tx(qcal_train *t, const qcal_node *n, int i) {
  return i < n->nin && n->in[i] >= 0 ? t->x[n->in[i]] : NULL;
}
static inline float *qcal_ty(qcal_train *t, const qcal_node *n, int i) {
  return t->x[n->out[i]];
}
static inline float *qcal_tdx(qcal_train *t, const qcal_node *n, int i) {
  return i < n->nin && n->in[i] >= 0 ? t->dx[n->in[i]] : NULL;
}
static inline float *qcal_tdy(qcal_train *t, const qcal_node *n, int i) {
  return t->dx[n->out[i]];
}
/* Row-major sgemm split over the OpenMP team, OpenBLAS serial in each
 * part (graph/train_ops.c). */
void qcal_train_sgemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
                      const float *b, int ldb, float beta, float *c, int ldc);
/* Buffer k of node n, at least `bytes` (kept between steps). */
void *qcal_train_scratch(qcal_train *t, const qcal_node *n, int k, size_t bytes);

#endif
