/* Execution engines for Q/DQ models (qcal_graph_opts.engine). Each is a
 * sequence of the passes in graph/passes.inc (its column there):
 *   qdq  - every QuantizeLinear / DequantizeLinear runs as written, in float;
 *   fp32 - Q/DQ pairs removed (strip-qdq): the float model the Q/DQ model
 *          was made from;
 *   int8 - the lower-int8-* passes replace Q/DQ patterns with the int8 ops
 *          of graph/ops.inc (Int8Conv, Int8Gemm, Int8Add, Int8MaxPool,
 *          Int8GlobalAveragePool) that read and write the int8 tensors. */
#include <string.h>

#include "graph/internal.h"

const char *const qcal_engine_names[] = {"qdq", "fp32", "int8", NULL};

qcal_engine qcal_engine_find(const char *name) {
  for (int k = 0; name && qcal_engine_names[k]; k++)
    if (!strcmp(name, qcal_engine_names[k]))
      return (qcal_engine)k;
  return QCAL_ENGINE_QDQ;
}

const char *qcal_node_kind(const qcal_graph *g, const qcal_node *n, char *buf, size_t cap) {
  switch (n->op) {
  case QCAL_GOP_Conv:
  case QCAL_GOP_Int8Conv:
    return qcal_conv_depthwise(g, n) ? "depthwise" : "conv";
  case QCAL_GOP_ConvTranspose:
    return "conv-transpose";
  case QCAL_GOP_Gemm:
  case QCAL_GOP_Int8Gemm:
    return "gemm";
  case QCAL_GOP_MatMul:
    return "matmul";
  case QCAL_GOP_Add:
  case QCAL_GOP_Int8Add:
    return "add";
  case QCAL_GOP_MaxPool:
  case QCAL_GOP_AveragePool:
  case QCAL_GOP_GlobalAveragePool:
  case QCAL_GOP_GlobalMaxPool:
  case QCAL_GOP_Int8MaxPool:
  case QCAL_GOP_Int8GlobalAveragePool:
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

qcal_status qcal_infer_lowered(qcal_graph *g, qcal_node *n) {
  return qcal_node_error(g, n, QCAL_EUNSUPPORTED,
                         "is an execution op that only qcal's own passes make; a model cannot "
                         "hold it");
}
