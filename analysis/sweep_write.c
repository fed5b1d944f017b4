/* The sweep's results file: tensors, results, amax values, histograms, the
 * end-to-end and sensitivity tables, images and timings (docs/results.md),
 * written to a temporary name and renamed when whole. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcal/sweep.h"

qcal_status qcal_sweep_write(sweep_state *s, const char *path, const char *cfg_json) {
  qcal_h5 h;
  QCAL_TRY(qcal_h5_create(&h, path));
  qcal_status st = qcal_write_provenance(&h, cfg_json);
  /* tensors */
  qcal_table *tt = qcal_table_new_schema(QCAL_TABLE_TENSORS);
  int t_name = QCAL_COL(TENSORS, name), t_kind = QCAL_COL(TENSORS, kind),
      t_graph = QCAL_COL(TENSORS, graph_tensor), t_layer = QCAL_COL(TENSORS, layer),
      t_op = QCAL_COL(TENSORS, op), t_shape = QCAL_COL(TENSORS, shape),
      t_n = QCAL_COL(TENSORS, numel), t_axis = QCAL_COL(TENSORS, channel_axis),
      t_ch = QCAL_COL(TENSORS, channels), t_ev = QCAL_COL(TENSORS, eval_numel),
      t_bins = QCAL_COL(TENSORS, histogram_bins);
  size_t hist_off = 0, edge_off = 0; /* into /histogram_counts, /histogram_edges */
  for (int i = 0; i < s->nitems; i++) {
    const sweep_item *it = &s->items[i];
    char shape[128] = "";
    size_t u = 0;
    for (int d = 0; d < it->calib.ndim && u < sizeof shape; d++)
      u += (size_t)snprintf(shape + u, sizeof shape - u, "%s%lld", d ? "x" : "",
                            (long long)it->calib.shape[d]);
    qcal_table_row(tt);
    qcal_table_set_s(tt, t_name, it->name);
    qcal_table_set_s(tt, t_kind, qcal_item_kind_names[it->kind]);
    qcal_table_set_s(tt, t_graph, it->graph_tensor);
    qcal_table_set_i(tt, t_layer, it->layer);
    qcal_table_set_s(tt, t_op, it->layer < 0 ? "" : s->layers[it->layer].op);
    qcal_table_set_s(tt, t_shape, shape);
    qcal_table_set_i(tt, t_n, (int64_t)it->calib.numel);
    qcal_table_set_i(tt, t_axis, it->axis == QCAL_PER_TENSOR ? -1 : it->axis);
    qcal_table_set_i(tt, t_ch, it->axis == QCAL_PER_TENSOR ? 1 : it->calib.shape[it->axis]);
    qcal_table_set_i(tt, t_ev, (int64_t)(it->eval.numel ? it->eval.numel : it->calib.numel));
    qcal_table_set_i(tt, t_bins, it->hist.nbins);
    qcal_table_set_i(tt, QCAL_COL(TENSORS, histogram_offset),
                     it->hist.nbins ? (int64_t)hist_off : -1);
    qcal_table_set_i(tt, QCAL_COL(TENSORS, histogram_edge_offset),
                     it->hist.nbins ? (int64_t)edge_off : -1);
    if (it->hist.nbins)
      hist_off += it->hist.nbins, edge_off += it->hist.nbins + 1u;
  }
  if (st == QCAL_OK)
    st = qcal_h5_write_table(&h, tt);
  qcal_table_free(tt);
  /* results + amax values */
  qcal_table *rt = qcal_table_new_schema(QCAL_TABLE_RESULTS);
  int r_t = QCAL_COL(RESULTS, tensor_id), r_name = QCAL_COL(RESULTS, tensor),
      r_kind = QCAL_COL(RESULTS, kind), r_layer = QCAL_COL(RESULTS, layer),
      r_m = QCAL_COL(RESULTS, method), r_p = QCAL_COL(RESULTS, percentile),
      r_g = QCAL_COL(RESULTS, granularity), r_b = QCAL_COL(RESULTS, bits),
      r_ch = QCAL_COL(RESULTS, channels), r_off = QCAL_COL(RESULTS, amax_offset),
      r_a = QCAL_COL(RESULTS, amax), r_amin = QCAL_COL(RESULTS, amax_min),
      r_amax = QCAL_COL(RESULTS, amax_max), r_mse = QCAL_COL(RESULTS, mse),
      r_sq = QCAL_COL(RESULTS, sqnr_db), r_mae = QCAL_COL(RESULTS, max_abs_err),
      r_cos = QCAL_COL(RESULTS, cosine), r_cf = QCAL_COL(RESULTS, clip_fraction),
      r_cm = QCAL_COL(RESULTS, clip_mse), r_rm = QCAL_COL(RESULTS, round_mse),
      r_cs = QCAL_COL(RESULTS, collect_seconds), r_ks = QCAL_COL(RESULTS, compute_seconds);
  size_t nam = 0;
  for (size_t r = 0; r < s->nrows; r++)
    nam += s->rows[r].channels;
  float *am = malloc((nam ? nam : 1) * sizeof *am);
  size_t off = 0;
  for (size_t r = 0; r < s->nrows && am; r++) {
    const sweep_row *w = &s->rows[r];
    const sweep_item *it = &s->items[w->item];
    float lo = w->amax[0], hi = w->amax[0];
    double mean = 0;
    for (size_t c = 0; c < w->channels; c++) {
      lo = fminf(lo, w->amax[c]), hi = fmaxf(hi, w->amax[c]);
      mean += w->amax[c];
    }
    memcpy(am + off, w->amax, w->channels * sizeof *am);
    qcal_table_row(rt);
    qcal_table_set_i(rt, r_t, w->item);
    qcal_table_set_s(rt, r_name, it->name);
    qcal_table_set_s(rt, r_kind, qcal_item_kind_names[it->kind]);
    qcal_table_set_i(rt, r_layer, it->layer);
    qcal_table_set_s(rt, r_m, qcal_method_configs[w->method].method);
    if (qcal_method_configs[w->method].percentile > 0)
      qcal_table_set_f(rt, r_p, qcal_method_configs[w->method].percentile);
    qcal_table_set_s(rt, r_g, w->per_channel ? "per-channel" : "per-tensor");
    qcal_table_set_i(rt, r_b, w->bits);
    qcal_table_set_i(rt, r_ch, (int64_t)w->channels);
    qcal_table_set_i(rt, r_off, (int64_t)off);
    qcal_table_set_f(rt, r_a, w->channels == 1 ? w->amax[0] : mean / (double)w->channels);
    qcal_table_set_f(rt, r_amin, lo);
    qcal_table_set_f(rt, r_amax, hi);
    qcal_table_set_f(rt, r_mse, w->m.mse);
    qcal_table_set_f(rt, r_sq, w->m.sqnr_db);
    qcal_table_set_f(rt, r_mae, w->m.max_abs_err);
    qcal_table_set_f(rt, r_cos, w->m.cosine);
    qcal_table_set_f(rt, r_cf, w->m.clip_fraction);
    qcal_table_set_f(rt, r_cm, w->m.clip_mse);
    qcal_table_set_f(rt, r_rm, w->m.round_mse);
    qcal_table_set_f(rt, r_cs, w->collect_s);
    qcal_table_set_f(rt, r_ks, w->compute_s);
    off += w->channels;
  }
  if (!am && st == QCAL_OK)
    st = qcal_error(QCAL_ENOMEM, "out of memory");
  if (st == QCAL_OK)
    st = qcal_h5_write_table(&h, rt);
  if (st == QCAL_OK)
    st = qcal_h5_write_f32(&h, "/amax_values", am, nam, "value");
  if (st == QCAL_OK)
    st = qcal_h5_attr_str(
        &h, "/amax_values", "description",
        "amax per channel; results row r owns [amax_offset, amax_offset + channels)");
  free(am);
  qcal_table_free(rt);
  /* per-tensor histograms, end to end in two flat datasets (schema 2): one
   * HDF5 object per tensor made a 10^5-tensor sweep spend a minute writing */
  {
    const size_t n = (size_t)s->nitems;
    const uint64_t **cp = malloc((n ? n : 1) * sizeof *cp);
    const float **ep = malloc((n ? n : 1) * sizeof *ep);
    size_t *cl = malloc((n ? n : 1) * sizeof *cl), *el = malloc((n ? n : 1) * sizeof *el);
    if (st == QCAL_OK && (!cp || !ep || !cl || !el))
      st = qcal_error(QCAL_ENOMEM, "out of memory");
    for (size_t i = 0; st == QCAL_OK && i < n; i++) {
      const qcal_histogram *hg = &s->items[i].hist;
      cp[i] = hg->counts, ep[i] = hg->edges;
      cl[i] = hg->nbins, el[i] = hg->nbins ? hg->nbins + 1u : 0;
    }
    if (st == QCAL_OK)
      st = qcal_h5_write_u64_concat(&h, "/histogram_counts", cp, cl, n);
    if (st == QCAL_OK)
      st = qcal_h5_write_f32_concat(&h, "/histogram_edges", ep, el, n, "value");
    if (st == QCAL_OK)
      st = qcal_h5_attr_str(&h, "/histogram_counts", "description",
                            "|x| histograms of all tensors end to end; /tensors row t owns "
                            "[histogram_offset, histogram_offset + histogram_bins)");
    free(cp), free(ep), free(cl), free(el);
  }
  if (st == QCAL_OK && s->e2e)
    st = qcal_h5_write_table(&h, s->e2e);
  if (st == QCAL_OK && s->sens)
    st = qcal_h5_write_table(&h, s->sens);
  if (st == QCAL_OK && s->e2e_outputs)
    st = qcal_h5_write_table(&h, s->e2e_outputs);
  if (st == QCAL_OK && s->sens_outputs)
    st = qcal_h5_write_table(&h, s->sens_outputs);
  if (st == QCAL_OK && s->nimages) {
    qcal_table *it = qcal_table_new_schema(QCAL_TABLE_IMAGES);
    int i_n = QCAL_COL(IMAGES, name), i_s = QCAL_COL(IMAGES, split),
        i_st = QCAL_COL(IMAGES, status);
    for (int i = 0; i < s->nimages; i++) {
      const char *split = "none";
      for (int k = 0; k < s->ncalib; k++)
        if (s->calib_idx[k] == i)
          split = "calibration";
      for (int k = 0; k < s->nheld; k++)
        if (s->held_idx[k] == i)
          split = "held-out";
      qcal_table_row(it);
      qcal_table_set_s(it, i_n, s->image_names[i]);
      qcal_table_set_s(it, i_s, split);
      qcal_table_set_s(it, i_st, s->image_status[i]);
    }
    st = qcal_h5_write_table(&h, it);
    qcal_table_free(it);
  }
  if (st == QCAL_OK) {
    qcal_table *tm = qcal_table_new_schema(QCAL_TABLE_TIMING);
    int m_s = QCAL_COL(TIMING, stage), m_t = QCAL_COL(TIMING, seconds);
    const char *names[] = {"load", "forward", "collect", "compute", "end-to-end"};
    double v[] = {s->t_load, s->t_forward, s->t_collect, s->t_compute, s->t_e2e};
    for (int i = 0; i < 5; i++) {
      qcal_table_row(tm);
      qcal_table_set_s(tm, m_s, names[i]);
      qcal_table_set_f(tm, m_t, v[i]);
    }
    st = qcal_h5_write_table(&h, tm);
    qcal_table_free(tm);
  }
  if (st != QCAL_OK) {
    qcal_h5_abort(&h);
    return st;
  }
  return qcal_h5_commit(&h);
}
