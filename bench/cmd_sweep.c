/* qcal sweep: calibrate every layer of the real network, the synthetic suite
 * and any files, write one HDF5 file, print a summary. */
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "bench/cli.h"
#include "bench/sweep.h"
#include "qcal/escape.h"
#include "qcal/paths.h"

qcal_status qcal_write_provenance(qcal_h5 *h, const char *config_json);

#define O(f) offsetof(sweep_cfg, f)
static const qcal_opt opts[] = {
    {"output", "FILE.h5", "results file (-o)", O(out), OPT_STRING, 0, 0, NULL},
    {"model", "PATH", "TF.js model.json or its folder", O(model), OPT_STRING, 0, 0, NULL},
    {"images", "DIR", "folder of photos (split into calibration / held-out)", O(images), OPT_STRING,
     0, 0, NULL},
    {"bits", "LIST", "bit widths: 8, 2-8, 4,8 ...", O(bits_spec), OPT_STRING, 0, 0, NULL},
    {"calib", "N", "calibration images (0: half, the rest are held out)", O(calib_images), OPT_INT,
     0, 100000, NULL},
    {"held", "N", "held-out images (0: all that are not calibration images)", O(held_images),
     OPT_INT, 0, 100000, NULL},
    {"input-size", "S", "network input S x S", O(input_size), OPT_INT, 33, 1025, NULL},
    {"jobs", "N", "threads (0: all cores)", O(jobs), OPT_INT, 0, 1024, NULL},
    {"filter", "REGEX", "only tensors whose name matches (POSIX extended)", O(filter), OPT_STRING,
     0, 0, NULL},
    {"synthetic-size", "N", "samples per synthetic distribution", O(synthetic_size), OPT_INT, 1024,
     1 << 26, NULL},
    {"seed", "S", "synthetic generator seed", O(seed), OPT_INT, 0, 2147483647, NULL},
    {"file-axis", "A", "per-channel axis of tensors from files", O(file_axis), OPT_INT, -8, 7,
     NULL},
    {"no-network", NULL, "skip the real network", O(no_network), OPT_FLAG, 0, 0, NULL},
    {"no-synthetic", NULL, "skip the synthetic suite", O(no_synthetic), OPT_FLAG, 0, 0, NULL},
    {"quick", NULL, "4 images, input 129, smaller synthetic tensors (CI)", O(quick), OPT_FLAG, 0, 0,
     NULL},
    {NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};
#undef O

static const qcal_cmd_info info = {
    "sweep",
    "qcal sweep [FILES...] [-o FILE.h5] [--bits LIST] [--jobs N] [--filter REGEX] [--model PATH]\n"
    "                  [--images DIR] [--calib N] [--held N] [--input-size S] [--no-network]\n"
    "                  [--no-synthetic] [--quick]",
    "Sweep calibration methods (max, entropy, mse, percentile 99.9/99.99/99.999),\n"
    "granularity (per tensor, per channel) and bit widths over every layer's weights\n"
    "and input activations of PoseNet MobileNetV1 (calibrated on one split of the\n"
    "photos, measured on the other), the synthetic suite, and FILES (.npy, .npz,\n"
    ".h5[:dataset], .safetensors[:name]). Then run the network with fake-quant\n"
    "end to end. Results go to one HDF5 file (docs/results.md).",
    opts,
};

static void on_signal(int sig) {
  const char *p = qcal_h5_pending();
  if (p)
    unlink(p);
  static const char msg[] = "\nqcal: interrupted; no results file written\n";
  ssize_t r = write(2, msg, sizeof msg - 1);
  (void)r;
  _exit(128 + sig);
}

static int parse_bits(sweep_cfg *c) {
  const char *p = c->bits_spec;
  c->nbits = 0;
  while (*p) {
    char *end;
    long a = strtol(p, &end, 10), b = a;
    if (end == p)
      return -1;
    p = end;
    if (*p == '-') {
      b = strtol(p + 1, &end, 10);
      if (end == p + 1)
        return -1;
      p = end;
    }
    if (a < 2 || b > 16 || a > b)
      return -1;
    for (long v = a; v <= b; v++) {
      if (c->nbits == 16)
        return -1;
      c->bits[c->nbits++] = (int)v;
    }
    if (*p == ',')
      p++;
    else if (*p)
      return -1;
  }
  return c->nbits ? 0 : -1;
}

static char *config_json(const sweep_state *s, const char **files, int nfiles) {
  json_object *o = json_object_new_object();
  const sweep_cfg *c = &s->cfg;
  json_object_object_add(o, "model", c->no_network ? NULL : json_object_new_string(c->model));
  json_object_object_add(o, "images", c->no_network ? NULL : json_object_new_string(c->images));
  json_object *b = json_object_new_array();
  for (int i = 0; i < c->nbits; i++)
    json_object_array_add(b, json_object_new_int(c->bits[i]));
  json_object_object_add(o, "bits", b);
  json_object_object_add(o, "calib_images", json_object_new_int(s->ncalib));
  json_object_object_add(o, "heldout_images", json_object_new_int(s->nheld));
  json_object *cal = json_object_new_array(), *held = json_object_new_array();
  for (int i = 0; i < s->ncalib; i++)
    json_object_array_add(cal, json_object_new_string(s->image_names[s->calib_idx[i]]));
  for (int i = 0; i < s->nheld; i++)
    json_object_array_add(held, json_object_new_string(s->image_names[s->held_idx[i]]));
  json_object_object_add(o, "calibration_split", cal);
  json_object_object_add(o, "heldout_split", held);
  json_object_object_add(o, "input_size", json_object_new_int(c->input_size));
  json_object_object_add(o, "jobs", json_object_new_int(c->jobs));
  json_object_object_add(o, "filter", c->filter ? json_object_new_string(c->filter) : NULL);
  json_object_object_add(o, "synthetic", json_object_new_boolean(!c->no_synthetic));
  json_object_object_add(o, "synthetic_size", json_object_new_int(c->synthetic_size));
  json_object_object_add(o, "seed", json_object_new_int(c->seed));
  json_object_object_add(o, "file_axis", json_object_new_int(c->file_axis));
  json_object *f = json_object_new_array();
  for (int i = 0; i < nfiles; i++)
    json_object_array_add(f, json_object_new_string(files[i]));
  json_object_object_add(o, "files", f);
  json_object *m = json_object_new_array();
  for (int i = 0; i < QCAL_METHOD_CONFIG_COUNT; i++)
    json_object_array_add(m, json_object_new_string(qcal_method_configs[i].label));
  json_object_object_add(o, "methods", m);
  json_object_object_add(o, "histogram_bins", json_object_new_int(2048));
  char *r = strdup(
      json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put(o);
  return r;
}

static qcal_status write_results(sweep_state *s, const char *path, const char *cfg_json) {
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
    qcal_table_set_s(tt, t_op,
                     it->layer < 0                                     ? ""
                     : s->model.layers[it->layer].op == QCAL_OP_DWCONV ? "depthwise"
                                                                       : "conv");
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

static double row_sqnr(const sweep_row *r) {
  return r ? r->m.sqnr_db : NAN;
}

static void print_summary(const sweep_state *s) {
  int bits = s->cfg.bits[0];
  for (int b = 0; b < s->cfg.nbits; b++)
    if (s->cfg.bits[b] == 8)
      bits = 8;
  printf("\n%d-bit SQNR (dB) on %s data. W: weights (max calibration), A: input activations\n"
         "(per tensor, best method on the held-out photos). * marks depthwise layers.\n\n",
         bits, s->have_model ? "held-out" : "the same");
  if (s->have_model) {
    printf("%-22s %9s %9s  %-22s %-10s %7s\n", "layer", "W tensor", "W channel", "best W", "best A",
           "A dB");
    for (int l = 0; l < s->model.nlayers; l++) {
      int iw = -1, ia = -1;
      for (int i = 0; i < s->nitems; i++) {
        if (s->items[i].layer != l)
          continue;
        if (s->items[i].kind == ITEM_WEIGHT)
          iw = i;
        else if (s->items[i].kind == ITEM_ACTIVATION)
          ia = i;
      }
      if (iw < 0 && ia < 0)
        continue;
      char name[64], bw[64] = "-", ba[32] = "-";
      char shown[256];
      snprintf(name, sizeof name, "%.20s%s",
               qcal_escape_text(s->items[iw >= 0 ? iw : ia].name, shown, sizeof shown),
               s->model.layers[l].op == QCAL_OP_DWCONV ? "*" : "");
      char *slash = strchr(name, '/');
      if (slash)
        *slash = s->model.layers[l].op == QCAL_OP_DWCONV ? '*' : '\0', slash[1] = '\0';
      double wt = NAN, wc = NAN, best = -INFINITY, ab = -INFINITY;
      if (iw >= 0) {
        wt = row_sqnr(qcal_sweep_find(s, iw, "max", false, bits));
        wc = row_sqnr(qcal_sweep_find(s, iw, "max", true, bits));
        for (size_t r = s->item_first[iw]; r < s->item_first[iw + 1]; r++)
          if (s->rows[r].bits == bits && s->rows[r].m.sqnr_db > best) {
            best = s->rows[r].m.sqnr_db;
            snprintf(bw, sizeof bw, "%s/%s %.1f", qcal_method_configs[s->rows[r].method].label,
                     s->rows[r].per_channel ? "channel" : "tensor", best);
          }
      }
      if (ia >= 0)
        for (size_t r = s->item_first[ia]; r < s->item_first[ia + 1]; r++)
          if (s->rows[r].bits == bits && !s->rows[r].per_channel && s->rows[r].m.sqnr_db > ab) {
            ab = s->rows[r].m.sqnr_db;
            snprintf(ba, sizeof ba, "%s", qcal_method_configs[s->rows[r].method].label);
          }
      printf("%-22s %9.2f %9.2f  %-22s %-10s %7.2f\n", name, wt, wc, bw, ba, ab);
    }
    printf("\n");
  }
  int header = 0;
  for (int i = 0; i < s->nitems; i++) {
    if (s->items[i].kind != ITEM_SYNTHETIC && s->items[i].kind != ITEM_FILE)
      continue;
    if (!header++)
      printf("%-34s %-12s %8s   %s\n", "tensor", "best", "dB",
             "per-tensor max / per-channel max dB");
    double best = -INFINITY;
    const char *bl = "-", *bg = "";
    for (size_t r = s->item_first[i]; r < s->item_first[i + 1]; r++)
      if (s->rows[r].bits == bits && s->rows[r].m.sqnr_db > best) {
        best = s->rows[r].m.sqnr_db;
        bl = qcal_method_configs[s->rows[r].method].label;
        bg = s->rows[r].per_channel ? "/ch" : "";
      }
    char lab[32], pc[32] = "-";
    snprintf(lab, sizeof lab, "%s%s", bl, bg);
    const sweep_row *rc = qcal_sweep_find(s, i, "max", true, bits);
    if (rc)
      snprintf(pc, sizeof pc, "%.2f", rc->m.sqnr_db);
    char shown[256];
    printf("%-34.34s %-12s %8.2f   %.2f / %s\n",
           qcal_escape_text(s->items[i].name, shown, sizeof shown), lab, best,
           row_sqnr(qcal_sweep_find(s, i, "max", false, bits)), pc);
  }
  if (s->e2e && qcal_table_rows(s->e2e)) {
    printf("\nend to end on %d held-out photos (%d-bit); keypoints: argmax agreement, all / those "
           "FP32 scores >= 0.5 (%lld):\n%-10s %-12s %12s %12s %10s %10s\n",
           s->nheld, (int)qcal_table_get_i(s->e2e, 0, QCAL_COL(E2E, bits)),
           (long long)qcal_table_get_i(s->e2e, 0, QCAL_COL(E2E, confident_keypoints)), "act",
           "weights", "heatmap dB", "offset dB", "all", "confident");
    for (size_t r = 0; r < qcal_table_rows(s->e2e); r++)
      printf("%-10s %-12s %12.2f %12.2f %9.1f%% %9.1f%%\n",
             qcal_table_get_s(s->e2e, (long)r, QCAL_COL(E2E, act_method)),
             qcal_table_get_s(s->e2e, (long)r, QCAL_COL(E2E, weight_granularity)),
             qcal_table_get_f(s->e2e, (long)r, QCAL_COL(E2E, heatmap_sqnr_db)),
             qcal_table_get_f(s->e2e, (long)r, QCAL_COL(E2E, offset_sqnr_db)),
             100 * qcal_table_get_f(s->e2e, (long)r, QCAL_COL(E2E, keypoint_agreement)),
             100 * qcal_table_get_f(s->e2e, (long)r, QCAL_COL(E2E, keypoint_agreement_confident)));
  }
  if (s->sens && qcal_table_rows(s->sens)) {
    printf("\nmost sensitive layers (only that layer quantized; heatmap dB):\n");
    const qcal_table *t = s->sens;
    const int c_h = QCAL_COL(SENSITIVITY, heatmap_sqnr_db),
              c_g = QCAL_COL(SENSITIVITY, weight_granularity),
              c_n = QCAL_COL(SENSITIVITY, layer_name), c_o = QCAL_COL(SENSITIVITY, op);
    for (int g = 0; g < 2; g++) {
      const char *gran = g ? "per-channel" : "per-tensor";
      printf("  weights %-12s", gran);
      long used[3] = {-1, -1, -1};
      for (int k = 0; k < 3; k++) {
        long best = -1;
        for (size_t r = 0; r < qcal_table_rows(t); r++) {
          if (strcmp(qcal_table_get_s(t, (long)r, c_g), gran) || (long)r == used[0] ||
              (long)r == used[1])
            continue;
          if (best < 0 || qcal_table_get_f(t, (long)r, c_h) < qcal_table_get_f(t, best, c_h))
            best = (long)r;
        }
        if (best < 0)
          break;
        used[k] = best;
        printf("  %s%s %.1f", qcal_table_get_s(t, best, c_n),
               !strcmp(qcal_table_get_s(t, best, c_o), "depthwise") ? "*" : "",
               qcal_table_get_f(t, best, c_h));
      }
      printf("\n");
    }
  }
  int skipped = 0;
  for (int i = 0; i < s->nimages; i++)
    if (!s->image_ok[i])
      printf("%sskipped image: %s\n", skipped++ ? "" : "\n", s->image_status[i] + 9);
  double total = s->t_load + s->t_forward + s->t_collect + s->t_compute + s->t_e2e;
  printf("\nstages: load %.2f s, forward %.2f s, collect %.2f s, compute %.2f s, end-to-end %.2f s"
         " (total %.2f s)\n",
         s->t_load, s->t_forward, s->t_collect, s->t_compute, s->t_e2e, total);
}

int qcal_cmd_sweep(int argc, char **argv) {
  static sweep_state s;
  memset(&s, 0, sizeof s);
  char cache[4096], model[4200], images[4200];
  qcal_cache_dir(cache, sizeof cache);
  snprintf(model, sizeof model, "%s/posenet/posenet.json", cache);
  snprintf(images, sizeof images, "%s/images", cache);
  sweep_cfg cfg = {.model = model,
                   .images = images,
                   .bits_spec = "8",
                   .input_size = 257,
                   .seed = 1,
                   .synthetic_size = 1 << 20};
  const char *files[256];
  int nfiles;
  int r = qcal_opts_parse(&info, &cfg, argc, argv, files, 256, &nfiles);
  if (r)
    return r > 0 ? QCAL_EXIT_OK : QCAL_EXIT_USAGE;
  if (parse_bits(&cfg) != 0)
    return qcal_die("sweep: --bits '%s' is not a list of widths in 2..16 (e.g. 8, 2-8, 4,8)",
                    cfg.bits_spec);
  if (cfg.quick) {
    cfg.input_size = cfg.input_size == 257 ? 129 : cfg.input_size;
    cfg.synthetic_size = cfg.synthetic_size == (1 << 20) ? 1 << 16 : cfg.synthetic_size;
  }
  s.cfg = cfg;
  if (cfg.filter) {
    int e = regcomp(&s.filter, cfg.filter, REG_EXTENDED | REG_NOSUB);
    if (e) {
      char buf[256];
      regerror(e, &s.filter, buf, sizeof buf);
      return qcal_die("sweep: --filter '%s': %s", cfg.filter, buf);
    }
    s.has_filter = true;
  }
  char outbuf[128];
  const char *out = cfg.out;
  if (!out) {
    time_t now = time(NULL);
    strftime(outbuf, sizeof outbuf, "qcal-sweep-%Y%m%d-%H%M%S.h5", localtime(&now));
    out = outbuf;
  }
  size_t ol = strlen(out);
  if (ol < 4 || (strcmp(out + ol - 3, ".h5") && strcmp(out + ol - 5, ".hdf5")))
    return qcal_die("sweep: output '%s' must end in .h5 or .hdf5", out);
  { /* the output is never one of the inputs (FILE or FILE:NAME) */
    const char *ins[258];
    char parts[256][512];
    int nin = 0;
    for (int i = 0; i < nfiles; i++) {
      snprintf(parts[i], sizeof parts[i], "%s", files[i]);
      struct stat sb;
      char *colon = strrchr(parts[i], ':');
      if (stat(parts[i], &sb) != 0 && colon)
        *colon = '\0';
      ins[nin++] = parts[i];
    }
    if (!cfg.no_network)
      ins[nin++] = cfg.model;
    if (qcal_output_check(out, ins, nin) != QCAL_OK)
      return qcal_die("sweep: %s", qcal_last_error());
  }
  if (cfg.jobs > 0)
    openblas_set_num_threads(cfg.jobs); /* the forward pass's GEMMs too */
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);

  qcal_status st = QCAL_OK;
  if (!cfg.no_network) {
    if (cfg.quick && cfg.calib_images == 0)
      s.cfg.calib_images = 2; /* 2 calibration + 2 held-out photos */
    if (cfg.quick && cfg.held_images == 0)
      s.cfg.held_images = 2;
    st = qcal_sweep_network_items(&s);
  }
  if (st == QCAL_OK && !cfg.no_synthetic)
    st = qcal_sweep_synthetic_items(&s);
  for (int i = 0; i < nfiles && st == QCAL_OK; i++)
    st = qcal_sweep_file_items(&s, files[i]);
  if (st == QCAL_OK && s.nitems == 0)
    st = qcal_error(QCAL_EINVAL, "nothing to sweep (filter '%s' matched no tensor)",
                    cfg.filter ? cfg.filter : "");
  if (st == QCAL_OK)
    st = qcal_sweep_calibrate(&s);
  if (st == QCAL_OK)
    st = qcal_sweep_e2e(&s);
  char *cj = st == QCAL_OK ? config_json(&s, files, nfiles) : NULL;
  if (st == QCAL_OK)
    st = write_results(&s, out, cj);
  free(cj);
  if (st != QCAL_OK) {
    int rc = qcal_die_status(st);
    qcal_sweep_free(&s);
    return rc;
  }
  print_summary(&s);
  printf("results: %s\n", out);
  qcal_sweep_free(&s);
  return QCAL_EXIT_OK;
}
