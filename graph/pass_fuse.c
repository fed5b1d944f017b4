/* Pass: activations (Relu, LeakyRelu, Clip, Sigmoid, HardSwish), SiLU and
 * HardSwish written as x * gate(x), and residual Adds fused into the
 * Conv/Gemm/MatMul before them (oneDNN post-ops). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

static bool same_shape(const qcal_value *a, const qcal_value *b) {
  if (a->ndim != b->ndim || a->dtype != b->dtype)
    return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d])
      return false;
  return true;
}

/* Producer position of v (-1 for inputs and constants). */
static int pos_of(const qcal_graph *g, int v) {
  return g->values[v].producer;
}

static void relink(qcal_graph *g, int p, int out) {
  g->nodes[p].out[0] = out;
  g->values[out].producer = p;
}

qcal_status qcal_pass_fuse(qcal_graph *g, const qcal_graph_opts *o) {
  if (o->no_fuse)
    return QCAL_OK;
  for (int p = 0; p < g->nnodes; p++) {
    qcal_node *n = &g->nodes[p];
    if (n->dead || (n->op != QCAL_GOP_Conv && n->op != QCAL_GOP_Gemm && n->op != QCAL_GOP_MatMul))
      continue;
    for (bool again = true; again;) {
      again = false;
      int y = n->out[0], slot;
      /* x * gate(x), y read by the gate and by the Mul: SiLU (Sigmoid) and
       * HardSwish as opset < 14 exporters write it (HardSigmoid 1/6, 0.5) */
      if (n->x.act == QCAL_ACT_NONE && g->values[y].consumers == 2 && !g->values[y].is_output) {
        int s = -1;
        qcal_act gate = QCAL_ACT_NONE;
        for (int i = p + 1; i < g->nnodes && s < 0; i++) {
          qcal_node *c = &g->nodes[i];
          if (c->dead || c->in[0] != y)
            continue;
          if (c->op == QCAL_GOP_Sigmoid) {
            s = i, gate = QCAL_ACT_SWISH;
          } else if (c->op == QCAL_GOP_HardSigmoid &&
                     fabsf(qcal_attr_float(c, "alpha", 0.2f) - 1.0f / 6) < 1e-7f &&
                     qcal_attr_float(c, "beta", 0.5f) == 0.5f) {
            s = i, gate = QCAL_ACT_HARDSWISH;
          }
        }
        if (s >= 0) {
          int so = g->nodes[s].out[0];
          int m = qcal_sole_consumer(g, so, &slot);
          if (m >= 0 && g->nodes[m].op == QCAL_GOP_Mul && g->nodes[m].in[1 - slot] == y) {
            n->x.act = gate;
            g->nodes[s].dead = g->nodes[m].dead = true;
            relink(g, p, g->nodes[m].out[0]);
            g->values[y].consumers = 0;
            again = true;
            continue;
          }
        }
      }
      int c = qcal_sole_consumer(g, y, &slot);
      if (c < 0)
        break;
      qcal_node *cn = &g->nodes[c];
      qcal_act a;
      float al, be;
      if (n->x.act == QCAL_ACT_NONE && qcal_node_act(g, cn, &a, &al, &be)) {
        n->x.act = a, n->x.act_alpha = al, n->x.act_beta = be;
        cn->dead = true;
        relink(g, p, cn->out[0]);
        again = true;
      } else if (n->op == QCAL_GOP_Conv && cn->op == QCAL_GOP_Add && n->x.act == QCAL_ACT_NONE &&
                 n->x.sum_in < 0) {
        int z = cn->in[1 - slot];
        if (z == y || !same_shape(&g->values[z], &g->values[y]) || pos_of(g, z) >= p)
          break;
        n->x.sum_in = z;
        cn->dead = true;
        relink(g, p, cn->out[0]);
        again = true;
      }
      /* counts for the next round */
      if (again) {
        int o = n->out[0];
        g->values[o].consumers = 0;
        for (int i = 0; i < g->nnodes; i++)
          if (!g->nodes[i].dead)
            for (int k = 0; k < g->nodes[i].nin; k++)
              g->values[o].consumers += g->nodes[i].in[k] == o;
      }
    }
  }
  return QCAL_OK;
}
