/* The execution plan: one buffer per live activation (reshape-like ops alias
 * their input), then nodes in order. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

typedef struct plan {
  int nbufs;
  void **bufs;
} plan;

void qcal_plan_free(qcal_graph *g) {
  plan *p = g->plan;
  if (!p)
    return;
  for (int i = 0; i < p->nbufs; i++)
    qcal_free(p->bufs[i]);
  free(p->bufs);
  free(p);
  g->plan = NULL;
}

static bool aliases(qcal_graph_op op) {
  return op == QCAL_GOP_Reshape || op == QCAL_GOP_Flatten || op == QCAL_GOP_Squeeze ||
         op == QCAL_GOP_Unsqueeze || op == QCAL_GOP_Identity || op == QCAL_GOP_Dropout;
}

static qcal_status alloc_value(qcal_graph *g, plan *p, qcal_value *v) {
  size_t bytes = v->numel * qcal_dtype_size(v->dtype);
  void *b = qcal_alloc(bytes ? bytes : 64);
  if (!b)
    return qcal_error(QCAL_ENOMEM, "%s: out of memory for '%s' (%zu bytes)", g->path, v->name,
                      bytes);
  p->bufs[p->nbufs++] = b;
  v->data = b;
  return QCAL_OK;
}

qcal_status qcal_plan_make(qcal_graph *g) {
  qcal_plan_free(g);
  plan *p = calloc(1, sizeof *p);
  if (!p)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  g->plan = p;
  p->bufs = calloc((size_t)g->nvalues + 1, sizeof *p->bufs);
  if (!p->bufs)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  for (int k = 0; k < g->ninputs; k++)
    QCAL_TRY(alloc_value(g, p, &g->values[g->inputs[k]]));
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *n = &g->nodes[i];
    if (n->dead)
      continue;
    for (int o = 0; o < n->nout; o++) {
      qcal_value *v = qcal_out(g, n, o);
      if (!v || v->kind == QCAL_VAL_CONST)
        continue;
      if (o == 0 && aliases(n->op) && qcal_in(g, n, 0)->numel == v->numel)
        v->data = qcal_in(g, n, 0)->data;
      else
        QCAL_TRY(alloc_value(g, p, v));
    }
  }
  return QCAL_OK;
}

qcal_status qcal_graph_run(qcal_graph *g, const void *const *inputs) {
  if (!g->prepared)
    return qcal_error(QCAL_EINVAL, "%s: graph not prepared", g->path);
  if (g->threads > 0)
    omp_set_num_threads(g->threads);
  for (int k = 0; k < g->ninputs; k++) {
    qcal_value *v = &g->values[g->inputs[k]];
    memcpy(v->data, inputs[k], v->numel * qcal_dtype_size(v->dtype));
  }
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *n = &g->nodes[i];
    if (n->dead)
      continue;
    if (aliases(n->op) && qcal_out(g, n, 0)->data == qcal_in(g, n, 0)->data)
      continue;
    QCAL_TRY(qcal_op_fwd[n->op](g, n));
  }
  return QCAL_OK;
}
