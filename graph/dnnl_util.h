/* The process-wide oneDNN CPU engine and stream the graph ops share, and a
 * status check that names the failing call. */
#ifndef QCAL_GRAPH_DNNL_UTIL_H
#define QCAL_GRAPH_DNNL_UTIL_H

#include <dnnl.h>

#include "qcal/status.h"

qcal_status qcal_dnnl_get(dnnl_engine_t *eng, dnnl_stream_t *strm);

/* Inside a function with `qcal_status st` and a `done:` label. */
#define QCAL_DNNL(call)                                                                            \
  do {                                                                                             \
    dnnl_status_t e_ = (call);                                                                     \
    if (e_ != dnnl_success) {                                                                      \
      st = qcal_error(e_ == dnnl_unimplemented ? QCAL_EUNSUPPORTED : QCAL_EINVAL,                  \
                      "oneDNN: %s failed (status %d)", #call, (int)e_);                            \
      goto done;                                                                                   \
    }                                                                                              \
  } while (0)

/* Execute with up to 8 (arg, memory) pairs and wait. */
qcal_status qcal_dnnl_exec(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args);
/* Plain memory over a caller-owned pointer. */
qcal_status qcal_dnnl_mem(const dnnl_memory_desc_t *md, void *ptr, dnnl_memory_t *out);
/* Reorder primitive from one desc to another (NULL when equal). */
qcal_status qcal_dnnl_reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                              dnnl_primitive_t *out);

#endif
