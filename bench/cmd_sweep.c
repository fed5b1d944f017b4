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

#include "analysis/task.h"
#include "bench/cli.h"
#include "qcal/escape.h"
#include "qcal/paths.h"
#include "qcal/sweep.h"

static const char *const conv_engines[] = {"reference", "onednn", NULL};

#define O(f) offsetof(sweep_cfg, f)
static const qcal_opt opts[] = {
    {"output", "FILE.h5", "results file (-o)", O(out), OPT_STRING, 0, 0, NULL},
    {"model", "PATH", "ONNX model, TF.js model.json, or a folder holding one", O(model), OPT_STRING,
     0, 0, NULL},
    {"images", "DIR", "folder of photos (split into calibration / held-out)", O(images), OPT_STRING,
     0, 0, NULL},
    {"bits", "LIST", "bit widths: 8, 2-8, 4,8 ...", O(bits_spec), OPT_STRING, 0, 0, NULL},
    {"calib", "N", "calibration images (0: half, the rest are held out)", O(calib_images), OPT_INT,
     0, 100000, NULL},
    {"held", "N", "held-out images (0: all that are not calibration images)", O(held_images),
     OPT_INT, 0, 100000, NULL},
    {"jobs", "N", "threads (0: all cores)", O(jobs), OPT_INT, 0, 1024, NULL},
    {"filter", "REGEX", "only tensors whose name matches (POSIX extended)", O(filter), OPT_STRING,
     0, 0, NULL},
    {"synthetic-size", "N", "samples per synthetic distribution", O(synthetic_size), OPT_INT, 1024,
     1 << 26, NULL},
    {"seed", "S", "synthetic generator seed", O(seed), OPT_INT, 0, 2147483647, NULL},
    {"file-axis", "A", "per-channel axis of tensors from files", O(file_axis), OPT_INT, -8, 7,
     NULL},
    {"no-network", NULL, "skip the model (tensor files and synthetic data only)", O(no_network),
     OPT_FLAG, 0, 0, NULL},
    {"no-synthetic", NULL, "skip the synthetic suite", O(no_synthetic), OPT_FLAG, 0, 0, NULL},
    {"conv", "ENGINE",
     "convolutions: reference (im2col + BLAS, the same bits on every CPU) or onednn (faster; "
     "8-bit end-to-end numbers then move with the ISA)",
     O(conv), OPT_CHOICE, 0, 0, conv_engines},
    {"quick", NULL,
     "4 images, input 129 (PoseNet; others keep theirs), smaller synthetic tensors (CI)", O(quick),
     OPT_FLAG, 0, 0, NULL},
    {"repair", "LIST",
     "the end-to-end runs again with repaired weights: cle, bias, adaround, bias-bn (docs/repair.md); "
     "each activation method x weight granularity at 8 bits",
     O(repair_spec), OPT_STRING, 0, 0, NULL},
    {"adaround-iters", "N", "AdaRound: Adam steps per layer (default 1000)", O(ada_iters), OPT_INT,
     1, 1000000, NULL},
    QCAL_PREPROC_OPTIONS(sweep_cfg, pre),
    {NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};
#undef O

static const qcal_cmd_info info = {
    "sweep",
    "qcal sweep [FILES...] [-o FILE.h5] [--bits LIST] [--jobs N] [--filter REGEX] [--model MODEL]\n"
    "                  [--images DIR] [--calib N] [--held N] [--no-network] [--no-synthetic]\n"
    "                  [--quick] [--repair LIST] [--adaround-iters N]\n"
    "                  [--input-size H[,W]] [--layout nchw|nhwc] [--channels 1|3]\n"
    "                  [--mean R,G,B --std R,G,B | --scale S --offset O]",
    "Sweep calibration methods (max, entropy, mse, percentile 99.9/99.99/99.999),\n"
    "granularity (per tensor, per channel) and bit widths over every quantization\n"
    "point of a network (each Conv, ConvTranspose, Gemm and MatMul's weight and\n"
    "input activations; PoseNet MobileNetV1 by default, or any ONNX / TF.js MODEL;\n"
    "activations calibrated on one split of the photos, measured on the other), the\n"
    "synthetic suite, and FILES (.npy, .npz, .h5[:dataset], .safetensors[:name]).\n"
    "Then run the network with fake-quant end to end (per output SQNR, cosine and\n"
    "top-1 agreement against FP32) and one layer at a time (sensitivity). Photos are\n"
    "preprocessed as the options say, else by the model's known defaults, else by\n"
    "its declared input and p / 255. With --repair, the end-to-end runs are made\n"
    "again on the same split with cross-layer equalization, bias correction and/or\n"
    "AdaRound (docs/repair.md), as rows whose repair column names them. Results go\n"
    "to one HDF5 file (docs/results.md).",
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
  if (c->repair) {
    char rp[160];
    qcal_repair_text(c->repair, NAN, rp, sizeof rp);
    json_object_object_add(o, "repair", json_object_new_string(rp));
    if (c->repair & (1u << QCAL_REPAIR_ADAROUND))
      json_object_object_add(o, "adaround_iters", json_object_new_int(c->ada.iters));
  }
  json_object_object_add(o, "heldout_images", json_object_new_int(s->nheld));
  json_object *cal = json_object_new_array(), *held = json_object_new_array();
  for (int i = 0; i < s->ncalib; i++)
    json_object_array_add(cal, json_object_new_string(s->image_names[s->calib_idx[i]]));
  for (int i = 0; i < s->nheld; i++)
    json_object_array_add(held, json_object_new_string(s->image_names[s->held_idx[i]]));
  json_object_object_add(o, "calibration_split", cal);
  json_object_object_add(o, "heldout_split", held);
  if (s->have_model) {
    char pre[256];
    qcal_preproc_describe(&s->pre, pre, sizeof pre);
    json_object_object_add(o, "model_file", json_object_new_string(s->model_path));
    json_object_object_add(o, "preprocessing", json_object_new_string(pre));
    json_object_object_add(o, "input_size", json_object_new_int(s->pre.height));
    json_object_object_add(o, "input_width", json_object_new_int(s->pre.width));
    json_object_object_add(o, "task", s->task ? json_object_new_string(s->task->name) : NULL);
  }
  json_object_object_add(o, "jobs", json_object_new_int(c->jobs));
  json_object_object_add(o, "filter", c->filter ? json_object_new_string(c->filter) : NULL);
  json_object_object_add(o, "synthetic", json_object_new_boolean(!c->no_synthetic));
  json_object_object_add(o, "conv", json_object_new_string(c->conv));
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

static double row_sqnr(const sweep_row *r) {
  return r ? r->m.sqnr_db : NAN;
}

/* Per configuration, each output's SQNR (top-1 agreement for class scores). */
static void print_outputs(const sweep_state *s) {
  const qcal_table *t = s->e2e_outputs;
  const int no = s->graph->noutputs < 4 ? s->graph->noutputs : 4;
  char shown[256];
  printf("\nend to end on %d held-out photos (%d-bit); SQNR dB per output (top-1 agreement for "
         "class scores):\n%-10s %-12s",
         s->nheld, qcal_sweep_e2e_bits(s), "act", "weights");
  for (int o = 0; o < no; o++) {
    const char *n =
        qcal_escape_text(s->graph->values[s->graph->outputs[o]].name, shown, sizeof shown);
    size_t l = strlen(n);
    printf(" %14.14s", l > 14 ? n + l - 14 : n);
  }
  printf("\n");
  const int c_o = QCAL_COL(E2E_OUTPUTS, output), c_q = QCAL_COL(E2E_OUTPUTS, sqnr_db),
            c_t = QCAL_COL(E2E_OUTPUTS, top1_agreement);
  for (size_t r = 0; r < qcal_table_rows(t);) {
    printf("%-10s %-12s", qcal_table_get_s(t, (long)r, QCAL_COL(E2E_OUTPUTS, act_method)),
           qcal_table_get_s(t, (long)r, QCAL_COL(E2E_OUTPUTS, weight_granularity)));
    const char *am = qcal_table_get_s(t, (long)r, QCAL_COL(E2E_OUTPUTS, act_method)),
               *wg = qcal_table_get_s(t, (long)r, QCAL_COL(E2E_OUTPUTS, weight_granularity)),
               *rp = qcal_table_get_s(t, (long)r, QCAL_COL(E2E_OUTPUTS, repair));
    for (int o = 0;
         r < qcal_table_rows(t) &&
         !strcmp(am, qcal_table_get_s(t, (long)r, QCAL_COL(E2E_OUTPUTS, act_method))) &&
         !strcmp(wg, qcal_table_get_s(t, (long)r, QCAL_COL(E2E_OUTPUTS, weight_granularity))) &&
         !strcmp(rp, qcal_table_get_s(t, (long)r, QCAL_COL(E2E_OUTPUTS, repair)));
         o++, r++) {
      if (o >= no)
        continue;
      double top = qcal_table_get_f(t, (long)r, c_t);
      (void)c_o;
      if (!isnan(top))
        printf(" %6.2f (%4.0f%%)", qcal_table_get_f(t, (long)r, c_q), 100 * top);
      else
        printf(" %14.2f", qcal_table_get_f(t, (long)r, c_q));
    }
    printf("%s%s\n", *rp ? "  repaired: " : "", rp);
  }
}

/* The three most sensitive layers per weight granularity: by the task's
 * headline output (PoseNet: heatmap) or else by the worst output SQNR. */
static void print_sensitive(const sweep_state *s) {
  const qcal_table *t = s->sens ? s->sens : s->sens_outputs;
  if (!t || !qcal_table_rows(t))
    return;
  const bool task = s->sens != NULL;
  const int c_g = task ? QCAL_COL(SENSITIVITY, weight_granularity)
                       : QCAL_COL(SENSITIVITY_OUTPUTS, weight_granularity);
  const int c_l = task ? QCAL_COL(SENSITIVITY, layer) : QCAL_COL(SENSITIVITY_OUTPUTS, layer);
  const int c_v =
      task ? QCAL_COL(SENSITIVITY, heatmap_sqnr_db) : QCAL_COL(SENSITIVITY_OUTPUTS, sqnr_db);
  printf("\nmost sensitive layers (only that layer quantized: its weights by max, per tensor or "
         "per channel as the row says, and its input activations by entropy; %s dB):\n",
         task ? "heatmap" : "worst output");
  const int L = s->nlayers;
  double *score = malloc((size_t)(2 * L + 1) * sizeof *score);
  if (!score)
    return;
  for (int k = 0; k < 2 * L; k++)
    score[k] = NAN;
  for (size_t r = 0; r < qcal_table_rows(t); r++) {
    int64_t l = qcal_table_get_i(t, (long)r, c_l);
    int g = !strcmp(qcal_table_get_s(t, (long)r, c_g), "per-channel");
    double v = qcal_table_get_f(t, (long)r, c_v);
    if (l >= 0 && l < L && (isnan(score[2 * l + g]) || v < score[2 * l + g]))
      score[2 * l + g] = v;
  }
  for (int g = 0; g < 2; g++) {
    printf("  weights %-12s", g ? "per-channel" : "per-tensor");
    int used[3] = {-1, -1, -1};
    for (int k = 0; k < 3; k++) {
      int best = -1;
      for (int l = 0; l < L; l++)
        if (!isnan(score[2 * l + g]) && l != used[0] && l != used[1] &&
            (best < 0 || score[2 * l + g] < score[2 * best + g]))
          best = l;
      if (best < 0)
        break;
      used[k] = best;
      char shown[256];
      printf("  %s%s %.1f", qcal_escape_text(s->layers[best].name, shown, sizeof shown),
             !strcmp(s->layers[best].op, "depthwise") ? "*" : "", score[2 * best + g]);
    }
    printf("\n");
  }
  free(score);
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
    for (int l = 0; l < s->nlayers; l++) {
      const sweep_layer *L = &s->layers[l];
      int iw = L->weight_item, ia = L->act_item[0];
      if (iw < 0 && ia < 0)
        continue;
      char name[64], bw[64] = "-", ba[32] = "-";
      char shown[256];
      const bool dw = !strcmp(L->op, "depthwise");
      snprintf(name, sizeof name, "%.21s%s", qcal_escape_text(L->name, shown, sizeof shown),
               dw ? "*" : "");
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
  if (!s->e2e && s->e2e_outputs && qcal_table_rows(s->e2e_outputs))
    print_outputs(s);
  print_sensitive(s);
  int skipped = 0;
  for (int i = 0; i < s->nimages; i++)
    if (!s->image_ok[i])
      printf("%sskipped image: %s\n", skipped++ ? "" : "\n", s->image_status[i] + 9);
  double total = s->t_load + s->t_forward + s->t_collect + s->t_compute + s->t_e2e;
  printf("\nstages: load %.2f s, forward %.2f s, collect %.2f s, compute %.2f s, end-to-end %.2f s"
         " (total %.2f s)\n",
         s->t_load, s->t_forward, s->t_collect, s->t_compute, s->t_e2e, total);
}

/* --repair: every activation method x weight granularity of the e2e runs
 * again, repaired. */
static qcal_status sweep_repaired(sweep_state *s) {
  if (!s->have_model || s->nheld == 0)
    return QCAL_OK;
  const int bits = qcal_sweep_e2e_bits(s);
  if (bits != 8)
    return qcal_error(QCAL_EINVAL,
                      "--repair: the repaired runs are W8A8 (ONNX int8) and --bits '%s' leaves "
                      "the end-to-end runs at %d bits; include 8",
                      s->cfg.bits_spec, bits);
  qcal_sweep_repair rc[2 * QCAL_METHOD_CONFIG_COUNT];
  int n = 0;
  for (int m = 0; m < QCAL_METHOD_CONFIG_COUNT; m++)
    for (int pc = 0; pc < 2; pc++)
      rc[n++] = (qcal_sweep_repair){
          .method = m, .per_channel = pc, .wbits = 8, .repair = s->cfg.repair, .target_db = NAN};
  qcal_status st = qcal_sweep_e2e_repaired(s, rc, n);
  for (int i = 0; i < n; i++)
    qcal_repair_report_free(&rc[i].rep);
  return st;
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
                   .seed = 1,
                   .synthetic_size = 1 << 20,
                   .conv = "reference",
                   .pre = {.scale = NAN, .offset = NAN}};
  const char *files[256];
  int nfiles;
  int r = qcal_opts_parse(&info, &cfg, argc, argv, files, 256, &nfiles);
  if (r)
    return r > 0 ? QCAL_EXIT_OK : QCAL_EXIT_USAGE;
  if (parse_bits(&cfg) != 0)
    return qcal_die("sweep: --bits '%s' is not a list of widths in 2..16 (e.g. 8, 2-8, 4,8)",
                    cfg.bits_spec);
  cfg.pre.quick = cfg.quick;
  cfg.ada = QCAL_ADAROUND_OPTS_DEFAULT;
  if (cfg.ada_iters)
    cfg.ada.iters = cfg.ada_iters;
  if (cfg.repair_spec && qcal_repair_parse(cfg.repair_spec, &cfg.repair))
    return qcal_die("sweep: %s", qcal_last_error());
  if (cfg.ada_iters && !(cfg.repair & (1u << QCAL_REPAIR_ADAROUND)))
    return qcal_die("sweep: --adaround-iters needs --repair with adaround");
  if (cfg.repair && cfg.no_network)
    return qcal_die("sweep: --repair repairs a network's weights; --no-network leaves none");
  if (cfg.quick) {
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
  if (st == QCAL_OK && cfg.repair)
    st = sweep_repaired(&s);
  char *cj = st == QCAL_OK ? config_json(&s, files, nfiles) : NULL;
  if (st == QCAL_OK)
    st = qcal_sweep_write(&s, out, cj);
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
