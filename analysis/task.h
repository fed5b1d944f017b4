/* Task modules: metrics of one network family beyond the per-output
 * fidelity every network gets (PoseNet's keypoint agreement). A module
 * recognises its networks by their outputs and fills the task columns of the
 * e2e and sensitivity tables; tasks.inc lists them. */
#ifndef QCAL_ANALYSIS_TASK_H
#define QCAL_ANALYSIS_TASK_H

#include <stddef.h>

#include "qcal/graph.h"
#include "qcal/results.h"

typedef struct qcal_task {
  const char *name;
  /* Context for graph g (prepared), or NULL when g is not this task's. */
  void *(*bind)(const qcal_graph *g);
  void (*free)(void *ctx);
  size_t acc_size; /* accumulator bytes; zeroed before each configuration */
  /* One held-out image: the graph outputs in FP32 (ref) and quantized (q),
   * plain C order, NULL for non-float outputs. */
  void (*accumulate)(const void *ctx, const qcal_graph *g, float *const *ref, float *const *q,
                     void *acc);
  /* The task's columns of the current (last) row of the e2e or sensitivity
   * table. */
  void (*e2e_row)(const void *ctx, const void *acc, qcal_table *t);
  void (*sens_row)(const void *ctx, const void *acc, qcal_table *t);
} qcal_task;

#define QCAL_TASK(id) extern const qcal_task qcal_task_##id;
#include "analysis/tasks.inc"
#undef QCAL_TASK

/* The first task whose bind accepts g (*ctx set), or NULL. */
const qcal_task *qcal_task_find(const qcal_graph *g, void **ctx);

#endif
