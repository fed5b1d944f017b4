/* qcal_graph_prepare: the passes of graph/passes.inc that the engine runs,
 * in order, each followed by linking values again. */
#include <stdlib.h>

#include "graph/internal.h"

const qcal_pass_info qcal_passes[QCAL_PASS_COUNT] = {
#define QCAL_PASS(id, name, engines, fn) [QCAL_PASS_##id] = {name, engines, fn},
#include "graph/passes.inc"
#undef QCAL_PASS
};

unsigned qcal_pass_engine_bit(qcal_engine e) {
  return e == QCAL_ENGINE_FP32   ? QCAL_PASS_FP32
         : e == QCAL_ENGINE_INT8 ? QCAL_PASS_INT8
                                 : QCAL_PASS_QDQ;
}

qcal_status qcal_graph_prepare(qcal_graph *g, const qcal_graph_opts *o) {
  qcal_graph_opts def = {0};
  if (!o)
    o = &def;
  if (g->prepared)
    return qcal_error(QCAL_EINVAL, "%s: graph already prepared", g->path);
  qcal_fq_free(g);
  g->threads = o->threads;
  g->reference_conv =
      o->reference_conv || (getenv("QCAL_CONV_REF") && *getenv("QCAL_CONV_REF") == '1');
  g->plain_values = o->plain_values || g->reference_conv || getenv("QCAL_PLAIN_VALUES");
  g->int8_nodes = g->int8_candidates = 0;
  const unsigned engine = qcal_pass_engine_bit(o->engine);
  for (int p = 0; p < QCAL_PASS_COUNT; p++) {
    if (!(qcal_passes[p].engines & engine))
      continue;
    QCAL_TRY(qcal_passes[p].run(g, o));
    if (p != QCAL_PASS_check && p != QCAL_PASS_sort)
      qcal_graph_link(g);
    qcal_graph_relocate(g); /* sanitizer builds: no element pointer outlives a pass */
  }
  g->prepared = true;
  return QCAL_OK;
}
