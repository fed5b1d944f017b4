/* Pass: every node has as many inputs and outputs as its op takes, with
 * its required inputs present, and every graph input has a fixed shape. */
#include "graph/internal.h"
#include "qcal/escape.h"

qcal_status qcal_pass_check(qcal_graph *g, const qcal_graph_opts *o) {
  (void)o;
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *n = &g->nodes[i];
    const qcal_op_info *info = &qcal_op_infos[n->op];
    int nin = n->nin;
    while (nin > 0 && n->in[nin - 1] < 0)
      nin--;
    int nout = n->nout;
    while (nout > 0 && n->out[nout - 1] < 0)
      nout--;
    if (nin < info->min_in || n->nin > info->max_in || nout < info->min_out || nout > info->max_out)
      return qcal_node_error(
          g, n, n->nin > info->max_in || nout > info->max_out ? QCAL_EUNSUPPORTED : QCAL_EFORMAT,
          "has %d inputs and %d outputs; the op takes %d..%d and %d..%d", n->nin, n->nout,
          info->min_in, info->max_in, info->min_out, info->max_out);
    for (int k = 0; k < info->min_in; k++)
      if (n->in[k] < 0)
        return qcal_node_error(g, n, QCAL_EFORMAT, "required input %d is missing", k);
  }
  for (int k = 0; k < g->ninputs; k++) {
    const qcal_value *v = &g->values[g->inputs[k]];
    for (int d = 0; d < v->ndim; d++)
      if (v->shape[d] < 0) {
        char name[96];
        return qcal_error(QCAL_EINVAL, "%s: input '%s' has a symbolic dim %d; give its shape",
                          g->path, qcal_escape_text(v->name, name, sizeof name), d);
      }
  }
  return QCAL_OK;
}
