/* Matching the Q/DQ patterns the engine passes rewrite: producers, live
 * nodes of an op, symmetric Q/DQ parameters, readers, int8 weights. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "qcal/quant.h"

int qcal_producer_of(qcal_graph *g, int v) {
  return v >= 0 ? g->values[v].producer : -1;
}

qcal_node *qcal_live_op(qcal_graph *g, int node, qcal_graph_op op) {
  if (node < 0 || g->nodes[node].dead || g->nodes[node].op != op)
    return NULL;
  return &g->nodes[node];
}

/* Q/DQ scale and zero point: constant, per tensor or one per channel, zero
 * points all 0. */
bool qcal_qdq_sym_params(qcal_graph *g, const qcal_node *n, const float **scale, size_t *count) {
  const qcal_value *s = qcal_in(g, n, 1), *z = qcal_in(g, n, 2);
  if (!s || s->kind != QCAL_VAL_CONST || s->dtype != QCAL_DT_F32 || s->numel == 0)
    return false;
  if (z) {
    if (z->kind != QCAL_VAL_CONST)
      return false;
    for (size_t k = 0; k < z->numel; k++)
      if (qcal_value_get(z, k) != 0)
        return false;
  }
  for (size_t k = 0; k < s->numel; k++)
    if (!(((const float *)s->data)[k] > 0) || !isfinite(((const float *)s->data)[k]))
      return false;
  *scale = s->data;
  *count = s->numel;
  return true;
}

size_t qcal_count_readers(qcal_graph *g, int v, int *only) {
  size_t c = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const qcal_node *n = &g->nodes[i];
    if (n->dead)
      continue;
    for (int k = 0; k < n->nin; k++)
      if (n->in[k] == v)
        c++, *only = i;
    if (n->x.sum_in == v)
      c++, *only = i;
  }
  return c;
}

/* The int8 weight of DQ node dw: a constant int8 tensor, or a constant float
 * tensor through QuantizeLinear (quantized once here, by the affine kernel
 * QuantizeLinear runs on). Returns a new constant's index, or -1. */
qcal_status qcal_int8_weight(qcal_graph *g, qcal_node *dw, const float *ws, size_t nws,
                             int want_axis, int *out) {
  *out = -1;
  int src = dw->in[0];
  const qcal_value *w = &g->values[src];
  int axis = (int)qcal_attr_int(dw, "axis", 1);
  if (nws > 1 && axis != want_axis)
    return QCAL_OK;
  if (w->kind == QCAL_VAL_CONST && w->dtype == QCAL_DT_I8) {
    *out = src;
    return QCAL_OK;
  }
  qcal_node *q = qcal_live_op(g, qcal_producer_of(g, src), QCAL_GOP_QuantizeLinear);
  const float *qs;
  size_t nqs;
  if (!q || !qcal_qdq_sym_params(g, q, &qs, &nqs) || nqs != nws ||
      g->values[q->out[0]].dtype != QCAL_DT_I8)
    return QCAL_OK;
  if (nqs > 1 && qcal_attr_int(q, "axis", 1) != want_axis)
    return QCAL_OK;
  for (size_t k = 0; k < nqs; k++)
    if (qs[k] != ws[k])
      return QCAL_OK;
  const qcal_value *wf = &g->values[q->in[0]];
  if (wf->kind != QCAL_VAL_CONST || wf->dtype != QCAL_DT_F32 || wf->ndim < 1 ||
      (want_axis != 0 && (wf->ndim != 2 || want_axis != 1)))
    return QCAL_OK;
  /* ONNX QuantizeLinear's own kernel, on the weight's channel axis */
  qcal_layout l;
  if (qcal_layout_make(wf->ndim, wf->shape, nws > 1 ? want_axis : QCAL_PER_TENSOR, &l) ||
      l.channels != nws)
    return QCAL_OK;
  int8_t *d = qcal_alloc(wf->numel ? wf->numel : 1), *zp = calloc(nws, 1);
  qcal_status st = d && zp ? qcal_affine_quantize(&l, wf->data, ws, zp, QCAL_S8, d)
                           : qcal_error(QCAL_ENOMEM, "out of memory");
  free(zp);
  if (st) {
    qcal_free(d);
    return st;
  }
  char name[600];
  snprintf(name, sizeof name, "%.500s#s8", wf->name);
  int64_t shape[QCAL_MAX_DIMS];
  int ndim = wf->ndim;
  memcpy(shape, wf->shape, sizeof shape);
  for (int k = 0; qcal_graph_find(g, name) >= 0 && k < 1000; k++)
    snprintf(name, sizeof name, "%.500s#s8.%d", wf->name, k);
  st = qcal_graph_add_const(g, name, QCAL_DT_I8, ndim, shape, d, out);
  if (st)
    qcal_free(d);
  return st;
}

/* The DequantizeLinear node n reads its input 0 through, when it takes a
 * 4-D int8 (s8 or u8) tensor with one scale (*s) and zero point 0. */
qcal_node *qcal_int8_dq_input(qcal_graph *g, const qcal_node *n, const float **s) {
  qcal_node *d = qcal_live_op(g, qcal_producer_of(g, n->in[0]), QCAL_GOP_DequantizeLinear);
  size_t ns;
  if (!d || !qcal_qdq_sym_params(g, d, s, &ns) || ns != 1)
    return NULL;
  const qcal_value *a = qcal_in(g, d, 0);
  return (a->dtype == QCAL_DT_I8 || a->dtype == QCAL_DT_U8) && a->ndim == 4 ? d : NULL;
}

qcal_status qcal_int8_weighted(qcal_graph *g, int i, qcal_graph_op op, int want_axis, bool fits,
                               bool *done) {
  *done = false;
  qcal_node *n = &g->nodes[i];
  qcal_node *dx = qcal_live_op(g, qcal_producer_of(g, n->in[0]), QCAL_GOP_DequantizeLinear);
  qcal_node *dw = qcal_live_op(g, qcal_producer_of(g, n->in[1]), QCAL_GOP_DequantizeLinear);
  if (!dx || !dw)
    return QCAL_OK;
  g->int8_candidates++;
  const float *xs, *ws;
  size_t nxs, nws;
  const qcal_dtype xt = qcal_in(g, dx, 0)->dtype;
  const int64_t nout = g->values[n->out[0]].shape[1];
  if (!fits || !qcal_qdq_sym_params(g, dx, &xs, &nxs) || nxs != 1 ||
      (xt != QCAL_DT_I8 && xt != QCAL_DT_U8) || !qcal_qdq_sym_params(g, dw, &ws, &nws) ||
      (nws != 1 && (int64_t)nws != nout))
    return QCAL_OK;
  int wq;
  QCAL_TRY(qcal_int8_weight(g, dw, ws, nws, want_axis, &wq)); /* adds a value: nodes stay */
  if (wq < 0)
    return QCAL_OK;
  float *os = malloc((size_t)(nout > 0 ? nout : 1) * sizeof *os);
  if (!os)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  for (int64_t c = 0; c < nout; c++)
    os[c] = xs[0] * ws[nws > 1 ? c : 0];
  qcal_status st = qcal_node_set_floats(n, "scales", os, (int)nout);
  free(os);
  QCAL_TRY(st);
  n->op = op;
  n->in[0] = dx->in[0];
  n->in[1] = wq;
  *done = true;
  return QCAL_OK;
}

qcal_status qcal_lower_each(qcal_graph *g, qcal_graph_op op,
                            qcal_status (*lower)(qcal_graph *g, int i)) {
  for (int i = 0; i < g->nnodes; i++)
    if (!g->nodes[i].dead && g->nodes[i].op == op)
      QCAL_TRY(lower(g, i));
  return QCAL_OK;
}
