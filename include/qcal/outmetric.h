/* Task metrics of a network's primary output (analysis/outmetric.c, the
 * list in analysis/outmetrics.inc): landmark error in pixels of the input,
 * top-1 agreement, embedding cosine, mask and box IoU... computed from the
 * FP32 and the quantized outputs of each photo, beside the per-output SQNR
 * every output gets. */
#ifndef QCAL_OUTMETRIC_H
#define QCAL_OUTMETRIC_H

#include <stdbool.h>

#include "qcal/graph.h"

typedef enum qcal_outmetric {
#define QCAL_OUTMETRIC(id, name, what, unit, lower, holds, side) QCAL_OM_##id,
#include "analysis/outmetrics.inc"
#undef QCAL_OUTMETRIC
  QCAL_OM_COUNT
} qcal_outmetric;

typedef struct qcal_om_info {
  const char *name, *what, *unit;
  bool lower_better;
  double holds, per_side;
} qcal_om_info;
extern const qcal_om_info qcal_om_list[QCAL_OM_COUNT];
/* By name; -1 when unknown. */
int qcal_om_find(const char *name);

typedef struct qcal_om_acc {
  double sum, sum2;
  long n;
} qcal_om_acc;

/* One photo: g's outputs in FP32 (ref) and quantized (q), plain C order
 * (NULL where not float); o the primary output; side the input's longer
 * side in pixels. */
void qcal_om_update(qcal_outmetric m, const qcal_graph *g, float *const *ref, float *const *q,
                    int o, int side, qcal_om_acc *acc);
double qcal_om_value(qcal_outmetric m, const qcal_om_acc *acc);
/* Whether value still does the task (NaN: unknown, false). */
bool qcal_om_holds(qcal_outmetric m, double value, int side);
/* The threshold in the metric's unit. */
double qcal_om_threshold(qcal_outmetric m, int side);

#endif
