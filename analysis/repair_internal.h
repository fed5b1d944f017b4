/* Shared state of the repairs (analysis/repair*.c): the weighted layers of
 * a calibrated model, their original float parameters, and what a
 * fake-quantized pass over photos gathers about each layer's input. */
#ifndef QCAL_REPAIR_INTERNAL_H
#define QCAL_REPAIR_INTERNAL_H

#include "graph/internal.h"
#include "qcal/quantize.h"
#include "qcal/repair.h"

typedef struct rlayer {
  int node;      /* Conv or Gemm */
  int wpt, apt;  /* its weight and input points in q->pts (-1: none) */
  int wv, bv;    /* weight and bias values (bv -1: none) */
  bool conv, wt; /* wt: a Gemm weight stored [K, N] (transB = 0) */
  int64_t O, groups, Og, Kg, Ig;
  qcal_geom ge;
  float *w0, *b0; /* the float model's weight as [O x Kg] rows, and bias */
  size_t wnumel, macs;
  /* gathered on a pass (gather_inputs) */
  size_t positions;
  double *sum_x, *sum_q; /* [groups * Kg] column sums of the input, unquantized / quantized */
  float *H;              /* [groups][Kg][Kg] Gram matrix of the quantized input, or NULL */
} rlayer;

typedef struct runit { /* mixed precision: a node reading through pairs */
  int node, layer;     /* layer: index in L, or -1 */
} runit;

typedef struct rstate {
  qcal_quantized *q;
  const qcal_quantize_cfg *cfg;
  rlayer *L;
  int n;
  runit *units;
  int nunits;
} rstate;

qcal_status repair_layers(rstate *s, qcal_quantized *q, const qcal_quantize_cfg *cfg);
void repair_layers_free(rstate *s);
/* Layer l's weight as [O x Kg] rows (from the graph constant) / back into it. */
void rlayer_get_w(const rstate *s, const rlayer *l, float *w);
void rlayer_put_w(rstate *s, const rlayer *l, const float *w);
/* The fake-quant list of every point except readers in float[] (a node
 * mask, may be NULL); *fq malloc'ed. */
qcal_status repair_fq_list(const rstate *s, const bool *float_node, qcal_graph_fq **fq, int *n);
/* One pass over photos with every point fake-quantized: column sums of
 * each layer's input (and its Gram matrix when gram). */
qcal_status gather_inputs(rstate *s, qcal_tensor *imgs, int n, bool gram, const char *what);
/* Weight format of a point. */
qcal_qformat repair_wfmt(const qcal_quantize_cfg *cfg);
qcal_qformat repair_afmt(const qcal_quantize_cfg *cfg);

qcal_status repair_absorb(rstate *s, qcal_tensor *imgs, int n);
qcal_status repair_bias(rstate *s, qcal_tensor *imgs, int n);
qcal_status repair_adaround(rstate *s, qcal_tensor *imgs, int n);
qcal_status repair_bias_bn(rstate *s);
qcal_status repair_mixed(rstate *s, qcal_tensor *held, int nheld, float **ref);

#endif
