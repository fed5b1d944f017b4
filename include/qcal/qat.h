/* Quantization-aware training on a labelled image set (analysis/qat*.c):
 * train a network in FP32 (or take an ONNX classifier), calibrate it with
 * every method and weight granularity at each bit width (PTQ), then
 * fine-tune with fake quantization from the best calibration (QAT), as
 * NVIDIA's recipe does; every stage's test top-1 into one table. */
#ifndef QCAL_QAT_H
#define QCAL_QAT_H

#include <stdbool.h>
#include <stdint.h>

#include "qcal/graph.h"
#include "qcal/results.h"
#include "qcal/train.h"

/* ---- the networks (analysis/nets.inc) */
typedef qcal_status (*qcal_net_fn)(int rows, int cols, int classes, uint64_t seed,
                                   qcal_graph **out);
typedef struct qcal_net_info {
  const char *name, *help;
  qcal_net_fn build;
  int epochs; /* FP32 training epochs by default */
  double lr;  /* SGD peak learning rate (batch 128) */
} qcal_net_info;
#define QCAL_NET(id, name, help, fn, epochs, lr)                                                   \
  qcal_status fn(int rows, int cols, int classes, uint64_t seed, qcal_graph **out);
#include "analysis/nets.inc"
#undef QCAL_NET
extern const qcal_net_info qcal_nets[]; /* NULL-terminated */
const qcal_net_info *qcal_net_find(const char *name);

/* ---- fake quantization in a trainable graph (analysis/qat_graph.c) */
typedef struct qcal_qat_config {
  int wbits, abits;
  bool per_channel; /* weights; activations are per tensor */
  bool learn_amax;
  /* activations that cannot be negative (after Relu, Clip(0, ...) and the
   * pools and reshapes of them) on the unsigned grid [0, 2^b - 1] when
   * abits < 8; 8-bit activations keep TensorRT's signed int8 */
  bool unsigned_acts;
  int input_bits; /* the network input's activation bits (0: abits) */
} qcal_qat_config;

/* BatchNormalization folded into the convolutions before it (the weights
 * that are deployed are the weights that are fake-quantized), then a
 * FakeQuantize node on the activation input and the weight of every Conv
 * and Gemm, at the points TensorRT quantizes. g must not be prepared. */
qcal_status qcal_qat_insert(qcal_graph *g);
/* Set every FakeQuantize node's format, granularity and learn flag; amax
 * stays as it is (set it with qcal_qat_set_amax). */
qcal_status qcal_qat_configure(qcal_graph *g, const qcal_qat_config *c);
/* Weight amax of every weight FakeQuantize: max |w| per channel or per
 * tensor, as the graph is configured. */
qcal_status qcal_qat_weight_amax(qcal_graph *g);
/* FakeQuantize nodes on activations, in node order: *nodes is malloc'ed. */
qcal_status qcal_qat_act_nodes(const qcal_graph *g, int **nodes, int *n);
/* Write the graph with each FakeQuantize as a QuantizeLinear /
 * DequantizeLinear pair (symmetric int8, scale amax / 127): the model
 * TensorRT or ONNX Runtime runs. 8-bit formats only. */
qcal_status qcal_qat_save_onnx(qcal_graph *g, const char *path);

/* ---- the experiment (analysis/qat.c) */
typedef struct qcal_qat_bits {
  int w, a;
} qcal_qat_bits;
#define QCAL_QAT_MAX_BITS 16

typedef struct qcal_qat_cfg {
  const char *data;  /* folder of the IDX files */
  const char *model; /* an ONNX classifier to fine-tune instead of the nets, or NULL */
  const char *nets;  /* comma-separated (default: all of analysis/nets.inc) */
  int epochs;        /* FP32 epochs (0: the net's default; ignored for a model) */
  double qat_epochs; /* QAT epochs per configuration */
  qcal_qat_bits bits[QCAL_QAT_MAX_BITS];
  int nbits;
  int batch;
  double lr;     /* FP32 peak learning rate (0: default) */
  double qat_lr; /* QAT initial learning rate (0: lr / 100 as NVIDIA's recipe) */
  qcal_optim_kind optim;
  bool step_schedule; /* learning rate x0.1 at 50% and 75% of the steps instead of cosine */
  uint64_t seed;
  int val;                     /* validation images carved from the training set */
  int calib;                   /* calibration images (from the training split) */
  int train_limit, test_limit; /* use only this many (0: all): --quick */
  bool learn_amax;
  bool unsigned_acts;     /* qcal_qat_config.unsigned_acts */
  int input_bits;         /* qcal_qat_config.input_bits */
  const char *save;       /* folder for the ONNX models, or NULL */
  const char *dump_grads; /* instead of training: one batch's gradients into this .npz */
  int threads;            /* for the table (the caller sets the thread count) */
  void (*log)(void *ctx, const char *line);
  void *log_ctx;
} qcal_qat_cfg;

/* A qat-stage row of the QAT table beside its network's FP32 top-1 and the
 * best PTQ top-1 of the same bits and granularity (NaN where absent): a
 * line of the summary qcal qat prints and the report draws. */
typedef struct qcal_qat_summary {
  const char *net, *gran;
  long long wb, ab;
  double fp32, ptq, qat;
} qcal_qat_summary;
qcal_qat_summary qcal_qat_summarize(const qcal_table *t, long row);

/* Run it; *results and *curves are the QAT and QAT_CURVES tables. */
qcal_status qcal_qat_run(const qcal_qat_cfg *cfg, qcal_table **results, qcal_table **curves);

#endif
