/* The task list (tasks.inc) and its lookup. */
#include "analysis/task.h"

static const qcal_task *const tasks[] = {
#define QCAL_TASK(id) &qcal_task_##id,
#include "analysis/tasks.inc"
#undef QCAL_TASK
};

const qcal_task *qcal_task_find(const qcal_graph *g, void **ctx) {
  for (size_t i = 0; i < sizeof tasks / sizeof tasks[0]; i++)
    if ((*ctx = tasks[i]->bind(g)))
      return tasks[i];
  *ctx = NULL;
  return NULL;
}
