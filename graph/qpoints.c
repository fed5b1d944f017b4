/* Quantization points by value: the input activation and weight of every
 * weighted op, and optionally the inputs of Add, Concat, pooling and Mul
 * where TensorRT's Q/DQ placement puts them (residual Add, SE-block Mul). */
#include <stdlib.h>

#include "graph/internal.h"

static bool weight_like(const qcal_graph *g, int v) {
  if (v < 0)
    return false;
  const qcal_value *val = &g->values[v];
  return val->kind == QCAL_VAL_CONST ||
         (val->producer >= 0 && g->nodes[val->producer].op == QCAL_GOP_DequantizeLinear &&
          g->values[g->nodes[val->producer].in[0]].kind == QCAL_VAL_CONST);
}

static int weight_axis(const qcal_graph *g, qcal_node *n) {
  switch (n->op) {
  case QCAL_GOP_Gemm:
    return qcal_attr_int(n, "transB", 0) ? 0 : 1;
  case QCAL_GOP_MatMul:
    return g->values[n->in[1]].ndim - 1;
  default:
    return qcal_op_infos[n->op].weight_axis;
  }
}

qcal_status qcal_graph_qpoints(const qcal_graph *gc, bool with_optional, qcal_qpoint **pts,
                               int *count) {
  qcal_graph *g = (qcal_graph *)gc; /* attribute reads mark use only */
  int cap = 16, n = 0;
  qcal_qpoint *p = malloc((size_t)cap * sizeof *p);
  if (!p)
    return qcal_error(QCAL_ENOMEM, "out of memory");
#define PUSH(v, node, sl, k, ax)                                                                   \
  do {                                                                                             \
    if (n == cap) {                                                                                \
      qcal_qpoint *np_ = realloc(p, (size_t)(cap *= 2) * sizeof *p);                               \
      if (!np_) {                                                                                  \
        free(p);                                                                                   \
        return qcal_error(QCAL_ENOMEM, "out of memory");                                           \
      }                                                                                            \
      p = np_;                                                                                     \
    }                                                                                              \
    p[n++] = (qcal_qpoint){v, node, sl, k, ax};                                                    \
  } while (0)
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *nd = &g->nodes[i];
    if (nd->dead)
      continue;
    const qcal_op_info *info = &qcal_op_infos[nd->op];
    if (info->weight_slot >= 0) {
      int w = nd->in[info->weight_slot];
      PUSH(nd->in[0], i, 0, QCAL_QP_ACT, QCAL_PER_TENSOR);
      if (weight_like(g, w))
        PUSH(w, i, info->weight_slot, QCAL_QP_WEIGHT, weight_axis(g, nd));
      else /* activation x activation (attention MatMul): both inputs */
        PUSH(w, i, info->weight_slot, QCAL_QP_ACT, QCAL_PER_TENSOR);
      if (with_optional && nd->x.sum_in >= 0)
        PUSH(nd->x.sum_in, i, -1, QCAL_QP_OPTIONAL, QCAL_PER_TENSOR);
      continue;
    }
    if (!with_optional)
      continue;
    /* residual Add (two activations), Concat, and the SE block's channel
     * scale Mul; an Add or Mul with a constant is a bias or scale, and a
     * gating Mul (swish) TensorRT fuses as a pointwise op */
    int live_in = 0;
    for (int k = 0; k < nd->nin; k++)
      live_in += nd->in[k] >= 0 && g->values[nd->in[k]].kind != QCAL_VAL_CONST;
    bool all = (nd->op == QCAL_GOP_Add && live_in == 2) || nd->op == QCAL_GOP_Concat ||
               (nd->op == QCAL_GOP_Mul && live_in == 2 && qcal_mul_channel_scale(g, nd) >= 0);
    bool first = nd->op == QCAL_GOP_MaxPool || nd->op == QCAL_GOP_AveragePool ||
                 nd->op == QCAL_GOP_GlobalAveragePool || nd->op == QCAL_GOP_GlobalMaxPool;
    for (int k = 0; k < nd->nin; k++) {
      int v = nd->in[k];
      if (v < 0 || g->values[v].dtype != QCAL_DT_F32 || g->values[v].kind == QCAL_VAL_CONST)
        continue;
      if (all || (first && k == 0))
        PUSH(v, i, k, QCAL_QP_OPTIONAL, QCAL_PER_TENSOR);
    }
  }
#undef PUSH
  *pts = p;
  *count = n;
  return QCAL_OK;
}
