/* Pass: nodes in topological order (Kahn's algorithm), every input produced
 * before it is read. A value no node, input or initializer produces, or a
 * cycle, is an error naming the node. */
#include <stdlib.h>

#include "graph/internal.h"
#include "qcal/escape.h"

qcal_status qcal_pass_sort(qcal_graph *g, const qcal_graph_opts *o) {
  (void)o;
  int nn = g->nnodes, nv = g->nvalues;
  int *prod = malloc((size_t)(nv ? nv : 1) * sizeof *prod);
  int *indeg = calloc((size_t)(nn ? nn : 1), sizeof *indeg);
  int *order = malloc((size_t)(nn ? nn : 1) * sizeof *order);
  int *users_n = calloc((size_t)(nv ? nv : 1), sizeof *users_n);
  qcal_status st = QCAL_OK;
  if (!prod || !indeg || !order || !users_n) {
    st = qcal_error(QCAL_ENOMEM, "out of memory");
    goto done;
  }
  for (int v = 0; v < nv; v++)
    prod[v] = -1;
  /* dead nodes (folded, a trainer's detached loss) take no part; they go last */
  for (int i = 0; i < nn; i++)
    for (int o = 0; o < g->nodes[i].nout && !g->nodes[i].dead; o++) {
      int v = g->nodes[i].out[o];
      if (v < 0)
        continue;
      if (prod[v] >= 0 || g->values[v].kind != QCAL_VAL_ACT) {
        st = qcal_node_error(g, &g->nodes[i], QCAL_EFORMAT,
                             "writes '%s', which another node, an input or an initializer "
                             "already defines",
                             g->values[v].name);
        goto done;
      }
      prod[v] = i;
    }
  for (int i = 0; i < nn; i++)
    for (int k = 0; k < g->nodes[i].nin && !g->nodes[i].dead; k++) {
      int v = g->nodes[i].in[k];
      if (v < 0)
        continue;
      if (g->values[v].kind == QCAL_VAL_ACT && prod[v] < 0) {
        st = qcal_node_error(g, &g->nodes[i], QCAL_EFORMAT,
                             "reads '%s', which no node, input or initializer produces",
                             g->values[v].name);
        goto done;
      }
      if (prod[v] >= 0)
        indeg[i]++;
    }
  for (int k = 0; k < g->noutputs; k++) {
    int v = g->outputs[k];
    if (g->values[v].kind == QCAL_VAL_ACT && prod[v] < 0) {
      char name[96];
      st = qcal_error(QCAL_EFORMAT, "%s: graph output '%s' is produced by no node", g->path,
                      qcal_escape_text(g->values[v].name, name, sizeof name));
      goto done;
    }
  }
  /* consumers per value: CSR over (value -> nodes) */
  int *start = calloc((size_t)nv + 1, sizeof *start), *adj = NULL;
  if (!start) {
    st = qcal_error(QCAL_ENOMEM, "out of memory");
    goto done;
  }
  int total = 0;
  for (int i = 0; i < nn; i++)
    for (int k = 0; k < g->nodes[i].nin && !g->nodes[i].dead; k++)
      if (g->nodes[i].in[k] >= 0)
        start[g->nodes[i].in[k] + 1]++, total++;
  for (int v = 0; v < nv; v++)
    start[v + 1] += start[v];
  adj = malloc((size_t)(total ? total : 1) * sizeof *adj);
  if (!adj) {
    free(start);
    st = qcal_error(QCAL_ENOMEM, "out of memory");
    goto done;
  }
  for (int i = 0; i < nn; i++)
    for (int k = 0; k < g->nodes[i].nin && !g->nodes[i].dead; k++) {
      int v = g->nodes[i].in[k];
      if (v >= 0)
        adj[start[v] + users_n[v]++] = i;
    }
  int head = 0, tail = 0;
  for (int i = 0; i < nn; i++)
    if (!indeg[i] && !g->nodes[i].dead)
      order[tail++] = i;
  while (head < tail) {
    int i = order[head++];
    for (int o = 0; o < g->nodes[i].nout; o++) {
      int v = g->nodes[i].out[o];
      if (v < 0)
        continue;
      for (int e = start[v]; e < start[v + 1]; e++)
        if (--indeg[adj[e]] == 0)
          order[tail++] = adj[e];
    }
  }
  free(start);
  free(adj);
  for (int i = 0; i < nn; i++)
    if (g->nodes[i].dead)
      order[tail++] = i;
  if (tail < nn) {
    for (int i = 0; i < nn; i++)
      if (indeg[i] > 0) {
        st = qcal_node_error(g, &g->nodes[i], QCAL_EFORMAT,
                             "is part of a cycle (its inputs depend on its own output)");
        goto done;
      }
  }
  qcal_node *sorted = malloc((size_t)(nn ? nn : 1) * sizeof *sorted);
  if (!sorted) {
    st = qcal_error(QCAL_ENOMEM, "out of memory");
    goto done;
  }
  for (int i = 0; i < nn; i++)
    sorted[i] = g->nodes[order[i]];
  free(g->nodes);
  g->nodes = sorted;
  g->cap_nodes = nn;
done:
  free(prod);
  free(indeg);
  free(order);
  free(users_n);
  return st;
}
