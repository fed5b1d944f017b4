/* The calibration sweep proper: per item and granularity, collect once (max
 * and histogram), then every method and bit width, measured on the held-out
 * data. Items run in parallel; rows come out in item order. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "qcal/progress.h"
#include "qcal/sweep.h"

typedef struct {
  sweep_row *rows;
  size_t n, cap;
  double collect_s, compute_s;
} item_out;

static qcal_status push(item_out *o, const sweep_row *r) {
  if (o->n == o->cap) {
    size_t cap = o->cap ? 2 * o->cap : 32;
    sweep_row *n = realloc(o->rows, cap * sizeof *n);
    if (!n)
      return qcal_error(QCAL_ENOMEM, "out of memory");
    o->rows = n;
    o->cap = cap;
  }
  o->rows[o->n++] = *r;
  return QCAL_OK;
}

static qcal_status run_item(sweep_state *s, int idx, item_out *out) {
  sweep_item *it = &s->items[idx];
  const qcal_tensor *eval = it->eval.numel ? &it->eval : &it->calib;
  qcal_status st = qcal_tensor_check(&it->calib);
  if (st == QCAL_OK && eval != &it->calib)
    st = qcal_tensor_check(eval);
  for (int gran = 0; gran < 2 && st == QCAL_OK; gran++) {
    if (gran == 1 && it->axis == QCAL_PER_TENSOR)
      break;
    const int axis = gran ? it->axis : QCAL_PER_TENSOR;
    qcal_max_collector mc;
    qcal_hist_collector hc;
    qcal_hist_opts ho = QCAL_HIST_OPTS_DEFAULT;
    ho.threads = 1; /* parallel across items instead */
    qcal_max_collector_init(&mc, axis);
    st = qcal_hist_collector_init(&hc, axis, &ho);
    double t0 = qcal_now();
    if (st == QCAL_OK)
      st = qcal_max_collector_collect(&mc, &it->calib);
    double t_max = qcal_now() - t0;
    t0 = qcal_now();
    if (st == QCAL_OK && !(s->cfg.zoo && it->kind == ITEM_WEIGHT))
      st = qcal_hist_collector_collect(&hc, &it->calib);
    double t_hist = qcal_now() - t0;
    out->collect_s += t_max + t_hist;
    if (st == QCAL_OK && gran == 0 && hc.hist)
      st = qcal_histogram_copy(&it->hist, &hc.hist[0]);
    const bool weight = it->kind == ITEM_WEIGHT;
    for (int b = 0; b < s->cfg.nbits && st == QCAL_OK; b++) {
      if (s->cfg.zoo && !weight && (gran == 1 || s->cfg.bits[b] != 8))
        continue; /* zoo: activations per tensor at 8 bits only */
      for (int m = 0; m < QCAL_METHOD_CONFIG_COUNT && st == QCAL_OK; m++) {
        const qcal_method_config *sm = &qcal_method_configs[m];
        const qcal_method_info *mi = qcal_method_find(sm->method);
        if (s->cfg.zoo && weight && mi->from_hist)
          continue; /* zoo: weights by max */
        qcal_calib_opts co = QCAL_CALIB_OPTS_DEFAULT;
        co.fmt.bits = s->cfg.bits[b];
        if (sm->percentile > 0)
          co.percentile = sm->percentile;
        sweep_row r = {idx, m, s->cfg.bits[b], gran == 1, mc.channels, NULL, {0}, 0, 0};
        r.amax = malloc(mc.channels * sizeof *r.amax);
        if (!r.amax) {
          st = qcal_error(QCAL_ENOMEM, "out of memory");
          break;
        }
        t0 = qcal_now();
        if (!mi->from_hist) {
          memcpy(r.amax, mc.amax, mc.channels * sizeof *r.amax);
          r.collect_s = t_max;
        } else {
          r.collect_s = t_hist;
          for (size_t c = 0; c < hc.channels && st == QCAL_OK; c++)
            st = mi->from_hist(&hc.hist[c], &co, &r.amax[c]);
        }
        r.compute_s = qcal_now() - t0;
        out->compute_s += r.compute_s;
        qcal_error_stats es;
        qcal_error_stats_init(&es);
        if (st == QCAL_OK && !s->cfg.zoo)
          st = qcal_error_stats_tensor(&es, eval, axis, r.amax, co.fmt);
        qcal_error_stats_finish(&es, &r.m);
        if (st == QCAL_OK)
          st = push(out, &r);
        else
          free(r.amax);
      }
    }
    qcal_max_collector_free(&mc);
    qcal_hist_collector_free(&hc);
  }
  if (st != QCAL_OK) {
    char msg[1100];
    snprintf(msg, sizeof msg, "%s", qcal_last_error());
    st = qcal_error(st, "%s: %s", it->name, msg);
  }
  return st;
}

qcal_status qcal_sweep_calibrate(sweep_state *s) {
  item_out *outs = calloc((size_t)(s->nitems ? s->nitems : 1), sizeof *outs);
  if (!outs)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  qcal_progress prog;
  qcal_progress_start(&prog, "calibrate", (size_t)s->nitems);
  qcal_status st = QCAL_OK;
  char err[1200] = "";
  const int jobs = s->cfg.jobs > 0 ? s->cfg.jobs : omp_get_num_procs();
  double t0 = qcal_now();
#pragma omp parallel for num_threads(jobs) schedule(dynamic, 1)
  for (int i = 0; i < s->nitems; i++) {
    qcal_status local;
#pragma omp atomic read
    local = st;
    if (local != QCAL_OK)
      continue;
    local = run_item(s, i, &outs[i]);
#pragma omp critical
    {
      if (local != QCAL_OK && st == QCAL_OK) {
        st = local;
        snprintf(err, sizeof err, "%s", qcal_last_error());
      }
      qcal_progress_step(&prog, 1);
    }
  }
  double wall = qcal_now() - t0;
  qcal_progress_end(&prog);
  /* split the wall time between the stages in proportion to their CPU time */
  double c = 0, k = 0;
  for (int i = 0; i < s->nitems; i++)
    c += outs[i].collect_s, k += outs[i].compute_s;
  s->t_collect += c + k > 0 ? wall * c / (c + k) : 0;
  s->t_compute += c + k > 0 ? wall * k / (c + k) : wall;
  size_t total = 0;
  for (int i = 0; i < s->nitems; i++)
    total += outs[i].n;
  s->rows = malloc((total ? total : 1) * sizeof *s->rows);
  s->item_first = malloc(((size_t)s->nitems + 1) * sizeof *s->item_first);
  for (int i = 0; i < s->nitems; i++) {
    if (s->item_first)
      s->item_first[i] = s->nrows;
    if (s->rows && outs[i].n) /* a failed item has no rows (and no buffer) */
      memcpy(s->rows + s->nrows, outs[i].rows, outs[i].n * sizeof *s->rows);
    s->nrows += outs[i].n;
    free(outs[i].rows);
  }
  if (s->item_first)
    s->item_first[s->nitems] = s->nrows;
  free(outs);
  if (st != QCAL_OK)
    return qcal_error(st, "%s", err);
  return s->rows && s->item_first ? QCAL_OK : qcal_error(QCAL_ENOMEM, "out of memory");
}

const sweep_row *qcal_sweep_find(const sweep_state *s, int item, const char *label,
                                 bool per_channel, int bits) {
  if (item < 0 || item >= s->nitems || !s->item_first)
    return NULL;
  for (size_t r = s->item_first[item]; r < s->item_first[item + 1]; r++) {
    const sweep_row *w = &s->rows[r];
    if (w->item == item && w->per_channel == per_channel && w->bits == bits &&
        !strcmp(qcal_method_configs[w->method].label, label))
      return w;
  }
  return NULL;
}
