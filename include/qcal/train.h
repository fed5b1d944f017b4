/* Training on the graph IR (graph/train.c), in the manner of llm.c: each op
 * of graph/ops.inc has a training forward that keeps what its backward
 * needs and a backward that adds the gradient of each input; gradients live
 * beside the parameters (float constants that ops train: convolution and
 * Gemm weights and biases, BatchNormalization's scale and bias, learned
 * FakeQuantize amax). Activations are NCHW float32, one batch at a time.
 *
 * A trainer attaches a SoftmaxCrossEntropyLoss node to the graph's first
 * output (the logits, [N, classes]) reading a labels input; qcal_train_free
 * detaches it again, so the graph can then be written as the model alone. */
#ifndef QCAL_TRAIN_H
#define QCAL_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "qcal/graph.h"

typedef struct qcal_train qcal_train;

/* Prepare g for training at batch sizes up to max_batch: check, sort,
 * shape inference with input 0's first dim set to the batch (constant
 * sub-graphs folded), buffers, the loss node. Every live node's op must
 * have a backward (the error names the first that has none). */
qcal_status qcal_train_new(qcal_graph *g, int max_batch, qcal_train **out);
void qcal_train_free(qcal_train *t);

/* Forward over a batch of n (<= max_batch) inputs x (input 0's shape with n
 * as its first dim). training: BatchNormalization uses and updates batch
 * statistics. With labels (n class indices), the loss too (*loss, may be
 * NULL). The logits then stay readable through qcal_train_logits. */
qcal_status qcal_train_forward(qcal_train *t, int n, const float *x, const int64_t *labels,
                               bool training, float *loss);
/* Gradients of the last forward's mean loss into every parameter (set, not
 * accumulated). Needs a training forward with labels. */
qcal_status qcal_train_backward(qcal_train *t);
/* [n, classes] of the last forward; *classes gets the class count. */
const float *qcal_train_logits(const qcal_train *t, int *classes);

/* Parameters, in the graph's node order. */
typedef struct qcal_param {
  int value;   /* the constant in the graph */
  int node;    /* the first node that trains it */
  float *data; /* the constant's elements, updated in place */
  float *grad;
  float *m, *v; /* optimizer state (momentum / Adam moments) */
  size_t numel;
  bool decay;    /* weight decay applies (weights; not biases, norms, amax) */
  bool frozen;   /* left alone by the optimizer */
  bool positive; /* kept above 0 (a learned amax) */
} qcal_param;
int qcal_train_nparams(const qcal_train *t);
qcal_param *qcal_train_param(qcal_train *t, int k);

/* While set, every FakeQuantize passes its input through unchanged and
 * calls fn with the values it reads (calibration); NULL stops it. */
typedef qcal_status (*qcal_train_observe_fn)(void *ctx, int node, const float *x, int ndim,
                                             const int64_t *shape);
void qcal_train_observe(qcal_train *t, qcal_train_observe_fn fn, void *ctx);

/* The optimizer step over every parameter that is not frozen. */
typedef enum qcal_optim_kind { QCAL_OPTIM_SGD, QCAL_OPTIM_ADAM } qcal_optim_kind;
typedef struct qcal_optim {
  qcal_optim_kind kind;
  float momentum;     /* SGD (0.9) */
  float beta1, beta2; /* Adam (0.9, 0.999) */
  float eps;          /* Adam (1e-8) */
  float weight_decay; /* L2 on decay parameters (SGD: added to the gradient; Adam: decoupled) */
  long step;          /* steps taken (Adam's bias correction) */
} qcal_optim;
void qcal_optim_step(qcal_train *t, qcal_optim *o, float lr);

#endif
