/* The tensors a sweep calibrates besides the network's (sweep_net.c): the
 * synthetic suite and files named on the command line; and the sweep state's
 * item list and release. */
#include <dirent.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "analysis/task.h"
#include "qcal/datasets.h"
#include "qcal/escape.h"
#include "qcal/progress.h"
#include "qcal/sweep.h"

const char *const qcal_item_kind_names[] = {"weight", "activation", "synthetic", "file"};

bool qcal_sweep_selected(const sweep_state *s, const char *name) {
  return !s->has_filter || regexec(&s->filter, name, 0, NULL, 0) == 0;
}

qcal_status qcal_sweep_add_item(sweep_state *s, const sweep_item *it) {
  if (s->nitems == s->cap) {
    int cap = s->cap ? 2 * s->cap : 64;
    sweep_item *n = realloc(s->items, (size_t)cap * sizeof *n);
    if (!n)
      return qcal_error(QCAL_ENOMEM, "out of memory");
    s->items = n;
    s->cap = cap;
  }
  s->items[s->nitems++] = *it;
  return QCAL_OK;
}

qcal_status qcal_sweep_synthetic_items(sweep_state *s) {
  double t0 = qcal_now();
  const size_t n = (size_t)s->cfg.synthetic_size;
  qcal_status st = QCAL_OK;
  for (size_t d = 0; d < qcal_synthetic_count && st == QCAL_OK; d++) {
    sweep_item it = {0};
    snprintf(it.name, sizeof it.name, "synthetic/%s", qcal_synthetic[d].name);
    snprintf(it.graph_tensor, sizeof it.graph_tensor, "%s", qcal_synthetic[d].name);
    it.kind = ITEM_SYNTHETIC;
    it.layer = -1;
    it.axis = QCAL_PER_TENSOR;
    if (!qcal_sweep_selected(s, it.name))
      continue;
    st =
        qcal_synthetic_make(qcal_synthetic[d].name, (uint64_t)s->cfg.seed + 7919 * d, n, &it.calib);
    if (st == QCAL_OK)
      st = qcal_sweep_add_item(s, &it);
  }
  /* per-channel variants: 64 channels whose ranges span up to 100x */
  const char *pc[] = {"gaussian", "laplace"};
  for (int k = 0; k < 2 && st == QCAL_OK; k++) {
    sweep_item it = {0};
    snprintf(it.name, sizeof it.name, "synthetic/%s-channels", pc[k]);
    snprintf(it.graph_tensor, sizeof it.graph_tensor, "%s-channels", pc[k]);
    it.kind = ITEM_SYNTHETIC;
    it.layer = -1;
    it.axis = 0;
    if (!qcal_sweep_selected(s, it.name))
      continue;
    st = qcal_synthetic_channels(pc[k], (uint64_t)s->cfg.seed + 104729u * (k + 1), 64,
                                 n / 64 ? n / 64 : 1, 100.0, &it.calib);
    if (st == QCAL_OK)
      st = qcal_sweep_add_item(s, &it);
  }
  s->t_load += qcal_now() - t0;
  return st;
}

static qcal_status add_file_tensor(void *ctx, qcal_tensor *t) {
  sweep_state *s = ctx;
  sweep_item it = {0};
  if (snprintf(it.name, sizeof it.name, "file/%s", t->name) >= (int)sizeof it.name)
    it.name[sizeof it.name - 1] = '\0'; /* long names are cut */
  it.kind = ITEM_FILE;
  snprintf(it.graph_tensor, sizeof it.graph_tensor, "%s", t->name);
  it.layer = -1;
  if (!qcal_sweep_selected(s, it.name)) {
    qcal_tensor_free(t);
    return QCAL_OK;
  }
  qcal_status st = qcal_tensor_check(t);
  if (st != QCAL_OK) {
    char msg[1100];
    snprintf(msg, sizeof msg, "%s", qcal_last_error());
    qcal_tensor_free(t);
    return qcal_error(st, "%s: %s", t->name, msg);
  }
  it.axis = QCAL_PER_TENSOR;
  if (t->ndim >= 2) {
    int a = s->cfg.file_axis < 0 ? s->cfg.file_axis + t->ndim : s->cfg.file_axis;
    if (a < 0 || a >= t->ndim) {
      qcal_tensor_free(t);
      return qcal_error(QCAL_EINVAL, "%s: --file-axis %d out of range for %d dimensions", it.name,
                        s->cfg.file_axis, t->ndim);
    }
    it.axis = a;
  }
  it.calib = *t;
  return qcal_sweep_add_item(s, &it);
}

qcal_status qcal_sweep_file_items(sweep_state *s, const char *spec) {
  double t0 = qcal_now();
  qcal_status st = qcal_load_tensors(spec, add_file_tensor, s);
  s->t_load += qcal_now() - t0;
  return st;
}

void qcal_sweep_free(sweep_state *s) {
  for (int i = 0; i < s->nitems; i++) {
    qcal_tensor_free(&s->items[i].calib);
    qcal_tensor_free(&s->items[i].eval);
    qcal_histogram_free(&s->items[i].hist);
  }
  free(s->items);
  for (size_t r = 0; r < s->nrows; r++)
    free(s->rows[r].amax);
  free(s->rows);
  free(s->item_first);
  if (s->fp32_out) {
    for (int i = 0; i < s->nheld; i++)
      if (s->fp32_out[i]) {
        for (int o = 0; s->graph && o < s->graph->noutputs; o++)
          free(s->fp32_out[i][o]);
        free(s->fp32_out[i]);
      }
    free(s->fp32_out);
  }
  for (int i = 0; i < s->nimages; i++)
    qcal_tensor_free(&s->images[i]);
  free(s->images);
  free(s->image_names);
  free(s->image_status);
  free(s->image_ok);
  free(s->calib_idx);
  free(s->held_idx);
  free(s->layers);
  if (s->task)
    s->task->free(s->task_ctx);
  qcal_graph_free(s->graph);
  if (s->has_filter)
    regfree(&s->filter);
  qcal_table_free(s->e2e);
  qcal_table_free(s->sens);
  qcal_table_free(s->e2e_outputs);
  qcal_table_free(s->e2e_w4a8);
  qcal_table_free(s->sens_outputs);
}
