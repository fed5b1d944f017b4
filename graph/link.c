/* Producers and live consumer counts of every value; nodes nobody needs
 * are dropped. Run after every pass (graph/passes.c). */
#include "graph/internal.h"

void qcal_graph_link(qcal_graph *g) {
  for (int v = 0; v < g->nvalues; v++) {
    g->values[v].producer = -1;
    g->values[v].consumers = 0;
  }
  for (int k = 0; k < g->noutputs; k++)
    g->values[g->outputs[k]].is_output = true;
  /* backwards: a node is live when one of its outputs is consumed */
  for (int i = g->nnodes - 1; i >= 0; i--) {
    qcal_node *n = &g->nodes[i];
    if (n->dead)
      continue;
    bool live = false;
    for (int o = 0; o < n->nout; o++) {
      const qcal_value *v = qcal_out(g, n, o);
      live |= v && (v->consumers > 0 || v->is_output);
    }
    if (!live) {
      n->dead = true;
      continue;
    }
    for (int k = 0; k < n->nin; k++)
      if (n->in[k] >= 0)
        g->values[n->in[k]].consumers++;
    if (n->x.sum_in >= 0)
      g->values[n->x.sum_in].consumers++;
  }
  for (int i = 0; i < g->nnodes; i++)
    if (!g->nodes[i].dead)
      for (int o = 0; o < g->nodes[i].nout; o++)
        if (g->nodes[i].out[o] >= 0)
          g->values[g->nodes[i].out[o]].producer = i;
}

/* The single live node reading value v (and which input), or -1. */
int qcal_sole_consumer(const qcal_graph *g, int v, int *slot) {
  const qcal_value *val = &g->values[v];
  if (val->is_output || val->consumers != 1)
    return -1;
  for (int i = 0; i < g->nnodes; i++) {
    const qcal_node *n = &g->nodes[i];
    if (n->dead)
      continue;
    for (int k = 0; k < n->nin; k++)
      if (n->in[k] == v) {
        if (slot)
          *slot = k;
        return i;
      }
  }
  return -1;
}
