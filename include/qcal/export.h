/* Calibration exports from a sweep's results file. */
#ifndef QCAL_EXPORT_H
#define QCAL_EXPORT_H

#include <stdio.h>

#include "qcal/results.h"

typedef enum { QCAL_EXPORT_JSON, QCAL_EXPORT_TRT, QCAL_EXPORT_ONNX } qcal_export_format;

typedef struct qcal_export_opts {
  qcal_export_format format;
  const char *method;      /* max, entropy, mse, percentile */
  double percentile;       /* with method percentile */
  int bits;                /* 8 */
  const char *granularity; /* per-tensor or per-channel */
  int trt_version;         /* e.g. 8601 for TensorRT 8.6.1 */
} qcal_export_opts;

/* One TensorRT cache line: "<tensor>: <hex of the float32 scale amax/127>". */
void qcal_trt_cache_line(const char *tensor, float amax, char *out, size_t cap);
/* One tensor of the JSON export: {kind, graph_tensor, amax, scale} (scalars
 * for one channel, lists otherwise). */
struct json_object;
struct json_object *qcal_export_json_entry(const char *kind, const char *graph_tensor,
                                           const float *amax, size_t channels, float qmax);
qcal_status qcal_export(qcal_results *r, const qcal_export_opts *o, FILE *out);

#endif
