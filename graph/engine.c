/* Execution engines for Q/DQ models (qcal_graph_opts.engine), as passes
 * over the prepared graph:
 *   qdq  - every QuantizeLinear / DequantizeLinear runs as written, in float;
 *   fp32 - Q/DQ pairs removed: the float model the Q/DQ model was made from;
 *   int8 - a convolution that reads DQ(int8 activation) and DQ(int8 weight)
 *          reads the int8 tensors themselves and runs as a oneDNN int8
 *          primitive (s8/u8 x s8, int32 accumulation, per-channel scales,
 *          fused activation); when a QuantizeLinear is its only reader, it
 *          writes that int8 tensor directly (requantization fused).
 * Nodes left without readers are removed by the caller (link_values). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "qcal/quant.h"

const char *const qcal_engine_names[] = {"qdq", "fp32", "int8", NULL};

qcal_engine qcal_engine_find(const char *name) {
  for (int k = 0; name && qcal_engine_names[k]; k++)
    if (!strcmp(name, qcal_engine_names[k]))
      return (qcal_engine)k;
  return QCAL_ENGINE_QDQ;
}

static int producer_of(qcal_graph *g, int v) {
  return v >= 0 ? g->values[v].producer : -1;
}

static qcal_node *live_op(qcal_graph *g, int node, qcal_graph_op op) {
  if (node < 0 || g->nodes[node].dead || g->nodes[node].op != op)
    return NULL;
  return &g->nodes[node];
}

/* Q/DQ scale and zero point: constant, per tensor or one per channel, zero
 * points all 0. */
static bool sym_params(qcal_graph *g, const qcal_node *n, const float **scale, size_t *count) {
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

/* Replace every read of value `from` (node inputs, fused sums, graph
 * outputs stay) by value `to`. */
static void reroute(qcal_graph *g, int from, int to) {
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *n = &g->nodes[i];
    if (n->dead)
      continue;
    for (int k = 0; k < n->nin; k++)
      if (n->in[k] == from)
        n->in[k] = to;
    if (n->sum_in == from)
      n->sum_in = to;
  }
}

qcal_status qcal_engine_fp32(qcal_graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *d = live_op(g, i, QCAL_GOP_DequantizeLinear);
    if (!d)
      continue;
    qcal_node *q = live_op(g, producer_of(g, d->in[0]), QCAL_GOP_QuantizeLinear);
    if (!q || g->values[d->out[0]].is_output)
      continue;
    reroute(g, d->out[0], q->in[0]);
  }
  return QCAL_OK;
}

static size_t count_readers(qcal_graph *g, int v, int *only) {
  size_t c = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const qcal_node *n = &g->nodes[i];
    if (n->dead)
      continue;
    for (int k = 0; k < n->nin; k++)
      if (n->in[k] == v)
        c++, *only = i;
    if (n->sum_in == v)
      c++, *only = i;
  }
  return c;
}

/* The int8 weight of DQ node dw: a constant int8 tensor, or a constant float
 * tensor through QuantizeLinear (quantized once here, by the affine kernel
 * QuantizeLinear runs on). Returns a new constant's index, or -1. */
static qcal_status int8_weight(qcal_graph *g, qcal_node *dw, const float *ws, size_t nws,
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
  qcal_node *q = live_op(g, producer_of(g, src), QCAL_GOP_QuantizeLinear);
  const float *qs;
  size_t nqs;
  if (!q || !sym_params(g, q, &qs, &nqs) || nqs != nws || g->values[q->out[0]].dtype != QCAL_DT_I8)
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

/* Gemm(DQ(a), DQ(w)) with scales per output channel (axis 0 of w [N, K]
 * with transB, as PyTorch's Linear; axis 1 of w [K, N] without, as TF.js's
 * dense), alpha = beta = 1, no transA: an integer GEMM (graph/op_matmul.c)
 * with float output. */
static qcal_status lower_gemm(qcal_graph *g, int i, int *lowered, int *candidates) {
  qcal_node *n = &g->nodes[i];
  qcal_node *dx = live_op(g, producer_of(g, n->in[0]), QCAL_GOP_DequantizeLinear);
  qcal_node *dw = live_op(g, producer_of(g, n->in[1]), QCAL_GOP_DequantizeLinear);
  if (!dx || !dw)
    return QCAL_OK;
  (*candidates)++;
  const float *xs, *ws;
  size_t nxs, nws;
  const qcal_value *xq = qcal_in(g, dx, 0);
  const int64_t nout = g->values[n->out[0]].shape[1];
  const bool tb = qcal_attr_int(n, "transB", 0);
  if (qcal_attr_int(n, "transA", 0) || qcal_attr_float(n, "alpha", 1) != 1 ||
      qcal_attr_float(n, "beta", 1) != 1 || !sym_params(g, dx, &xs, &nxs) || nxs != 1 ||
      (xq->dtype != QCAL_DT_I8 && xq->dtype != QCAL_DT_U8) || !sym_params(g, dw, &ws, &nws) ||
      (nws != 1 && (int64_t)nws != nout))
    return QCAL_OK;
  int wq;
  QCAL_TRY(int8_weight(g, dw, ws, nws, tb ? 0 : 1, &wq));
  n = &g->nodes[i];
  if (wq < 0)
    return QCAL_OK;
  float *os = malloc((size_t)nout * sizeof *os);
  if (!os)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  for (int64_t c = 0; c < nout; c++)
    os[c] = xs[0] * ws[nws > 1 ? c : 0];
  n->in[0] = dx->in[0];
  n->in[1] = wq;
  n->qscale = os;
  (*lowered)++;
  return QCAL_OK;
}

/* Add(DQ(a), DQ(b)) [-> Relu] -> Q over int8 tensors of one shape: one
 * int8 pass (graph/op_int8.c). */
static void lower_add(qcal_graph *g, int i) {
  qcal_node *n = &g->nodes[i];
  qcal_node *da = live_op(g, producer_of(g, n->in[0]), QCAL_GOP_DequantizeLinear);
  qcal_node *db = live_op(g, producer_of(g, n->in[1]), QCAL_GOP_DequantizeLinear);
  const float *sa, *sb, *sy;
  size_t na, nb, ny;
  if (!da || !db || n->sum_in >= 0 || !sym_params(g, da, &sa, &na) ||
      !sym_params(g, db, &sb, &nb) || na != 1 || nb != 1)
    return;
  const qcal_value *aq = qcal_in(g, da, 0), *bq = qcal_in(g, db, 0), *y = qcal_out(g, n, 0);
  if (aq->dtype != QCAL_DT_I8 || bq->dtype != QCAL_DT_I8 || aq->numel != y->numel ||
      bq->numel != y->numel || y->is_output)
    return;
  int reader = -1, relu = -1;
  if (count_readers(g, n->out[0], &reader) != 1)
    return;
  if (live_op(g, reader, QCAL_GOP_Relu)) {
    relu = reader;
    if (g->values[g->nodes[relu].out[0]].is_output ||
        count_readers(g, g->nodes[relu].out[0], &reader) != 1)
      return;
  }
  qcal_node *q = live_op(g, reader, QCAL_GOP_QuantizeLinear);
  if (!q || !sym_params(g, q, &sy, &ny) || ny != 1 || g->values[q->out[0]].dtype != QCAL_DT_I8 ||
      g->values[q->out[0]].is_output)
    return;
  float *sc = malloc(2 * sizeof *sc);
  if (!sc)
    return; /* out of memory: the Add stays in float */
  sc[0] = sa[0], sc[1] = sb[0];
  n->qscale = sc;
  n->qyscale = sy[0];
  n->qyzero = 0;
  n->act = relu >= 0 ? QCAL_ACT_RELU : QCAL_ACT_NONE;
  n->in[0] = da->in[0];
  n->in[1] = db->in[0];
  n->out[0] = q->out[0];
  q->dead = true;
  if (relu >= 0)
    g->nodes[relu].dead = true;
}

/* The DequantizeLinear node n reads its input 0 through, when it takes a
 * 4-D int8 (s8 or u8) tensor with one scale (*s) and zero point 0. */
static qcal_node *int8_dq_input(qcal_graph *g, const qcal_node *n, const float **s) {
  qcal_node *d = live_op(g, producer_of(g, n->in[0]), QCAL_GOP_DequantizeLinear);
  size_t ns;
  if (!d || !sym_params(g, d, s, &ns) || ns != 1)
    return NULL;
  const qcal_value *a = qcal_in(g, d, 0);
  return (a->dtype == QCAL_DT_I8 || a->dtype == QCAL_DT_U8) && a->ndim == 4 ? d : NULL;
}

/* GlobalAveragePool(DQ(a)) over an int8 tensor, per-tensor scale: the
 * average of the codes, summed exactly as integers, times the scale. */
static qcal_status lower_gap(qcal_graph *g, int i) {
  qcal_node *n = &g->nodes[i];
  const float *s;
  qcal_node *d = int8_dq_input(g, n, &s);
  if (!d)
    return QCAL_OK;
  if (!(n->qscale = malloc(sizeof *n->qscale)))
    return qcal_error(QCAL_ENOMEM, "out of memory");
  n->qscale[0] = s[0];
  n->in[0] = d->in[0];
  return QCAL_OK;
}

/* MaxPool(DQ(a)) -> Q over an int8 tensor, per-tensor scales, zero points
 * 0: the max of the codes is the code of the max (the scale is positive);
 * it is then requantized to the Q's scale as DQ and Q would. */
static qcal_status lower_maxpool(qcal_graph *g, int i) {
  qcal_node *n = &g->nodes[i];
  const float *s, *ys;
  size_t nys;
  qcal_node *d = int8_dq_input(g, n, &s);
  int y = n->out[0], reader = -1;
  if (!d || n->nout != 1 || g->values[y].is_output || count_readers(g, y, &reader) != 1)
    return QCAL_OK;
  qcal_node *q = live_op(g, reader, QCAL_GOP_QuantizeLinear);
  if (!q || q->in[0] != y || !sym_params(g, q, &ys, &nys) || nys != 1 ||
      g->values[q->out[0]].dtype != QCAL_DT_I8 || g->values[q->out[0]].is_output)
    return QCAL_OK;
  if (!(n->qscale = malloc(sizeof *n->qscale)))
    return qcal_error(QCAL_ENOMEM, "out of memory");
  n->qscale[0] = s[0];
  n->qyscale = ys[0];
  n->in[0] = d->in[0];
  n->out[0] = q->out[0];
  q->dead = true;
  return QCAL_OK;
}

/* An int8 convolution output after ReLU or a Clip at >= 0 holds 0..127:
 * the same bytes as u8. When only int8 convolutions and DequantizeLinear
 * read it, it is stored as u8 (the readers' u8 x s8 kernels skip the
 * compensation s8 inputs need); the writer clamps to 127 as the s8 Q did. */
static void as_u8(qcal_graph *g, int i) {
  qcal_node *n = &g->nodes[i];
  if (n->dead || n->op != QCAL_GOP_Conv || !n->qscale || !(n->qyscale > 0) || n->qyzero != 0)
    return;
  bool nonneg = (n->act == QCAL_ACT_RELU && n->act_alpha == 0) ||
                (n->act == QCAL_ACT_CLIP && n->act_alpha >= 0);
  int y = n->out[0];
  if (!nonneg || g->values[y].dtype != QCAL_DT_I8 || g->values[y].is_output)
    return;
  for (int k = 0; k < g->nnodes; k++) {
    const qcal_node *r = &g->nodes[k];
    if (r->dead)
      continue;
    for (int s = 0; s < r->nin; s++)
      if (r->in[s] == y && !(r->op == QCAL_GOP_DequantizeLinear && s == 0) &&
          !(r->op == QCAL_GOP_Conv && r->qscale && s == 0) &&
          !((r->op == QCAL_GOP_GlobalAveragePool || r->op == QCAL_GOP_MaxPool) && r->qscale))
        return;
    if (r->sum_in == y)
      return;
  }
  g->values[y].dtype = QCAL_DT_U8;
  n->qy_u8 = true;
}

qcal_status qcal_engine_int8(qcal_graph *g, int *lowered, int *candidates) {
  *lowered = *candidates = 0;
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *n = &g->nodes[i];
    if (n->dead || n->op != QCAL_GOP_Conv)
      continue;
    qcal_node *dx = live_op(g, producer_of(g, n->in[0]), QCAL_GOP_DequantizeLinear);
    qcal_node *dw = live_op(g, producer_of(g, n->in[1]), QCAL_GOP_DequantizeLinear);
    if (!dx || !dw)
      continue;
    (*candidates)++;
    const float *xs, *ws;
    size_t nxs, nws;
    const qcal_value *xq = qcal_in(g, dx, 0);
    int64_t cout = g->values[n->out[0]].shape[1];
    if (!sym_params(g, dx, &xs, &nxs) || nxs != 1 ||
        (xq->dtype != QCAL_DT_I8 && xq->dtype != QCAL_DT_U8) || !sym_params(g, dw, &ws, &nws) ||
        (nws != 1 && (int64_t)nws != cout))
      continue;
    int wq;
    QCAL_TRY(int8_weight(g, dw, ws, nws, 0, &wq));
    n = &g->nodes[i]; /* adding a constant may move the value array, not nodes */
    if (wq < 0)
      continue;
    float *os = malloc((size_t)cout * sizeof *os);
    if (!os)
      return qcal_error(QCAL_ENOMEM, "out of memory");
    for (int64_t c = 0; c < cout; c++)
      os[c] = xs[0] * ws[nws > 1 ? c : 0];
    n->in[0] = dx->in[0];
    n->in[1] = wq;
    n->qscale = os;
    n->qyscale = 0;
    n->qyzero = 0;
    /* requantization fused: the only reader is a per-tensor QuantizeLinear */
    int y = n->out[0], reader = -1;
    if (!g->values[y].is_output && n->sum_in < 0 && count_readers(g, y, &reader) == 1) {
      qcal_node *q = live_op(g, reader, QCAL_GOP_QuantizeLinear);
      const float *ys;
      size_t nys;
      if (q && q->in[0] == y && sym_params(g, q, &ys, &nys) && nys == 1 &&
          !g->values[q->out[0]].is_output) {
        n->qyscale = ys[0];
        n->out[0] = q->out[0];
        q->dead = true;
      }
    }
    (*lowered)++;
  }
  for (int i = 0; i < g->nnodes; i++)
    if (!g->nodes[i].dead && g->nodes[i].op == QCAL_GOP_Gemm && !g->nodes[i].qscale)
      QCAL_TRY(lower_gemm(g, i, lowered, candidates));
  for (int i = 0; i < g->nnodes; i++)
    if (!g->nodes[i].dead && g->nodes[i].op == QCAL_GOP_Add && !g->nodes[i].qscale)
      lower_add(g, i);
  for (int i = 0; i < g->nnodes; i++)
    if (!g->nodes[i].dead && g->nodes[i].op == QCAL_GOP_GlobalAveragePool && !g->nodes[i].qscale)
      QCAL_TRY(lower_gap(g, i));
  for (int i = 0; i < g->nnodes; i++)
    if (!g->nodes[i].dead && g->nodes[i].op == QCAL_GOP_MaxPool && !g->nodes[i].qscale)
      QCAL_TRY(lower_maxpool(g, i));
  for (int i = 0; i < g->nnodes; i++)
    as_u8(g, i);
  return QCAL_OK;
}

const char *qcal_node_kind(const qcal_graph *g, const qcal_node *n, char *buf, size_t cap) {
  switch (n->op) {
  case QCAL_GOP_Conv:
    return qcal_conv_depthwise(g, n) ? "depthwise" : "conv";
  case QCAL_GOP_ConvTranspose:
    return "conv-transpose";
  case QCAL_GOP_Gemm:
    return "gemm";
  case QCAL_GOP_MatMul:
    return "matmul";
  case QCAL_GOP_Add:
    return "add";
  case QCAL_GOP_MaxPool:
  case QCAL_GOP_AveragePool:
  case QCAL_GOP_GlobalAveragePool:
  case QCAL_GOP_GlobalMaxPool:
    return "pool";
  case QCAL_GOP_QuantizeLinear:
    return "quantize";
  case QCAL_GOP_DequantizeLinear:
    return "dequantize";
  default: {
    size_t k = 0;
    for (const char *p = qcal_op_infos[n->op].name; *p && k + 1 < cap; p++)
      buf[k++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    buf[k] = 0;
    return buf;
  }
  }
}
