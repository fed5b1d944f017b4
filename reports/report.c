/* qcal report: figures through gnuplot (a script and a data file per figure,
 * PNG via pngcairo and SVG, noenhanced text), a static HTML page and a
 * Markdown summary. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qcal/calib.h"
#include "qcal/escape.h"
#include "qcal/paths.h"
#include "qcal/report.h"
#include "qcal/results.h"
#include "reports/report_internal.h"

FILE *qcal_rep_open(const rep *r, const char *name) {
  char p[4400];
  snprintf(p, sizeof p, "%s/%s", r->dir, name);
  return fopen(p, "w");
}

char *qcal_rep_esc_slot(void) {
  static char slots[ESC_SLOTS][4 * QCAL_SCHEMA_STR_MAX + 64];
  static int next;
  next = (next + 1) % ESC_SLOTS;
  return slots[next];
}

/* PNG then SVG of the same plot commands. */
void qcal_rep_terms(FILE *gp, const char *stem, int w, int h, const char *plot) {
  fprintf(gp,
          "set terminal pngcairo noenhanced size %d,%d font 'sans,10'\nset output '%s.png'\n%s\n",
          w, h, stem, plot);
  fprintf(gp,
          "set terminal svg noenhanced size %d,%d font 'sans,10' background '#ffffff'\nset output "
          "'%s.svg'\n%s\n",
          w, h, stem, plot);
  fprintf(gp, "unset arrow\nunset label\n");
}

/* gnuplot without a shell: an argument vector, the report folder as its
 * working directory, its output into SCRIPT.log. */
static qcal_status spawn_gnuplot(const char *dir, const char *script, int *not_found) {
  char log[128];
  snprintf(log, sizeof log, "%s.log", script);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addchdir_np(&fa, dir);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  char *argv[] = {"gnuplot", (char *)script, NULL};
  pid_t pid;
  int e = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (not_found)
    *not_found = e == ENOENT;
  if (e != 0)
    return qcal_error(QCAL_EUNSUPPORTED, "cannot start gnuplot: %s", strerror(e));
  int ws;
  while (waitpid(pid, &ws, 0) < 0)
    if (errno != EINTR)
      return qcal_error(QCAL_EIO, "waiting for gnuplot: %s", strerror(errno));
  if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
    /* the folder is removed on failure: its log's last line goes in the message */
    char p[4400], line[512] = "", last[512] = "";
    snprintf(p, sizeof p, "%s/%s", dir, log);
    FILE *f = fopen(p, "r");
    while (f && fgets(line, sizeof line, f))
      if (line[strspn(line, " \t\r\n")])
        snprintf(last, sizeof last, "%s", line);
    if (f)
      fclose(f);
    last[strcspn(last, "\r\n")] = '\0';
    return qcal_error(QCAL_EIO, "gnuplot failed on %s: %s", script, last);
  }
  return QCAL_OK;
}

qcal_status qcal_rep_gnuplot(rep *r, const char *script, int nfigs) {
  QCAL_TRY(spawn_gnuplot(r->dir, script, NULL));
  r->figs += nfigs;
  return QCAL_OK;
}

/* title and what are text: a figure of a file's network names them */
void qcal_rep_figure(rep *r, const char *stem, const char *title, const char *what) {
  fprintf(r->html,
          "<figure><a href=\"%s.svg\"><img src=\"%s.svg\" alt=\"%s\"></a>"
          "<figcaption><b>%s.</b> %s</figcaption></figure>\n",
          stem, stem, H(title), H(title), H(what));
}

/* Figures of per-tensor histograms drawn at most: a sweep of 10^5 file
 * members still reports in seconds; the page says how many were left out. */
#define MAX_HIST_FIGURES 64
/* gemm, peaks and stream tables come from small benchmark runs */
#define MAX_BENCH_ROWS 100000

static const char *row_label(const qcal_table *res, long row, char *lab, size_t cap) {
  const char *m = qcal_table_get_s(res, row, QCAL_COL(RESULTS, method));
  if (!strcmp(m, "percentile"))
    snprintf(lab, cap, "pct%g", qcal_table_get_f(res, row, QCAL_COL(RESULTS, percentile)));
  else
    snprintf(lab, cap, "%s", m);
  return lab;
}

/* The /results row of (tensor, method label, granularity, bits), or -1;
 * only that tensor's rows are scanned. */
static long find_row(const qcal_sweep_tables *sw, size_t tensor, const char *label,
                     const char *gran, int bits) {
  const qcal_table *res = sw->results;
  for (size_t k = sw->first[tensor]; k < sw->first[tensor + 1]; k++) {
    long row = (long)sw->row_of[k];
    char lab[48];
    if (qcal_table_get_i(res, row, QCAL_COL(RESULTS, bits)) == bits &&
        !strcmp(qcal_table_get_s(res, row, QCAL_COL(RESULTS, granularity)), gran) &&
        !strcmp(row_label(res, row, lab, sizeof lab), label))
      return row;
  }
  return -1;
}

static double sqnr_of(const qcal_sweep_tables *sw, size_t tensor, const char *label,
                      const char *gran, int bits) {
  long row = find_row(sw, tensor, label, gran, bits);
  return row < 0 ? NAN : qcal_table_get_f(sw->results, row, QCAL_COL(RESULTS, sqnr_db));
}

static double amax_of(const qcal_sweep_tables *sw, size_t tensor, const char *label, int bits) {
  long row = find_row(sw, tensor, label, "per-tensor", bits);
  return row < 0 ? NAN : qcal_table_get_f(sw->results, row, QCAL_COL(RESULTS, amax));
}

/* 8 if swept, else the first bit width */
static int main_bits(const qcal_table *res) {
  const int c_b = QCAL_COL(RESULTS, bits);
  int b = qcal_table_rows(res) ? (int)qcal_table_get_i(res, 0, c_b) : 8;
  for (size_t i = 0; i < qcal_table_rows(res); i++)
    if (qcal_table_get_i(res, (long)i, c_b) == 8)
      return 8;
  return b;
}

/* "Conv2d_3_depthwise/weight" -> "Conv2d_3_depthwise",
 * "layer1/layer1.0/conv1/input" -> "layer1/layer1.0/conv1" */
static const char *layer_of(const char *name, char *buf, size_t cap) {
  snprintf(buf, cap, "%s", name);
  char *sl = strrchr(buf, '/');
  if (sl)
    *sl = '\0';
  return buf;
}

/* Any network: each output's SQNR per configuration (top-1 agreement for
 * class scores), and per-layer sensitivity by the worst output. */
static qcal_status output_figures(rep *r, qcal_results *f, size_t nt) {
  qcal_table *e = NULL, *sn = NULL;
  qcal_status st = QCAL_OK;
  if (qcal_results_has(f, QCAL_TABLE_E2E_OUTPUTS))
    st = qcal_results_read(f, QCAL_TABLE_E2E_OUTPUTS, &e);
  if (!st && qcal_results_has(f, QCAL_TABLE_SENSITIVITY_OUTPUTS))
    st = qcal_results_read(f, QCAL_TABLE_SENSITIVITY_OUTPUTS, &sn);
  const int c_l = QCAL_COL(SENSITIVITY_OUTPUTS, layer);
  for (size_t i = 0; !st && sn && i < qcal_table_rows(sn); i++)
    if (qcal_table_get_i(sn, (long)i, c_l) >= (int64_t)nt)
      st = qcal_error(QCAL_EFORMAT,
                      "%s: /sensitivity_outputs/layer: row %zu names layer %lld of %zu", f->path, i,
                      (long long)qcal_table_get_i(sn, (long)i, c_l), nt);
  if (!st && e && qcal_table_rows(e)) {
    const int c_a = QCAL_COL(E2E_OUTPUTS, act_method),
              c_w = QCAL_COL(E2E_OUTPUTS, weight_granularity), c_o = QCAL_COL(E2E_OUTPUTS, output),
              c_q = QCAL_COL(E2E_OUTPUTS, sqnr_db), c_t = QCAL_COL(E2E_OUTPUTS, top1_agreement);
    /* outputs in order of first appearance (at most 4 drawn) */
    const char *outs[4];
    int no = 0;
    for (size_t i = 0; i < qcal_table_rows(e) && no < 4; i++) {
      const char *o = qcal_table_get_s(e, (long)i, c_o);
      bool seen = false;
      for (int k = 0; k < no; k++)
        seen = seen || !strcmp(outs[k], o);
      if (!seen)
        outs[no++] = o;
    }
    FILE *d = qcal_rep_open(r, "e2e_outputs.dat");
    if (!d)
      st = qcal_error(QCAL_EIO, "%s: cannot write e2e_outputs.dat", r->dir);
    fprintf(r->html, "<h3>End to end on the held-out photos, per output</h3>\n<table><tr>"
                     "<th>activations</th><th>weights</th><th>output</th><th>SQNR dB</th>"
                     "<th>cosine</th><th>top-1 agreement</th></tr>\n");
    fprintf(r->md, "## End to end per output (held-out photos)\n\n| activations | weights | "
                   "output | SQNR dB | cosine | top-1 |\n|---|---|---|---|---|---|\n");
    size_t cfg = 0;
    for (size_t i = 0; d && i < qcal_table_rows(e);) {
      const int c_r = QCAL_COL(E2E_OUTPUTS, repair);
      const char *am = qcal_table_get_s(e, (long)i, c_a), *rp = qcal_table_get_s(e, (long)i, c_r);
      char wg[200]; /* the weights, and their repairs (sweep --repair) */
      snprintf(wg, sizeof wg, "%s%s%s", qcal_table_get_s(e, (long)i, c_w), *rp ? " + " : "", rp);
      const char *wg0 = qcal_table_get_s(e, (long)i, c_w);
      double q[4] = {NAN, NAN, NAN, NAN}, top = NAN;
      for (; i < qcal_table_rows(e) && !strcmp(am, qcal_table_get_s(e, (long)i, c_a)) &&
             !strcmp(wg0, qcal_table_get_s(e, (long)i, c_w)) &&
             !strcmp(rp, qcal_table_get_s(e, (long)i, c_r));
           i++) {
        const char *o = qcal_table_get_s(e, (long)i, c_o);
        double v = qcal_table_get_f(e, (long)i, c_q), t = qcal_table_get_f(e, (long)i, c_t),
               cs = qcal_table_get_f(e, (long)i, QCAL_COL(E2E_OUTPUTS, cosine));
        for (int k = 0; k < no; k++)
          if (!strcmp(outs[k], o))
            q[k] = v;
        if (isnan(top) && !isnan(t))
          top = 100 * t;
        fprintf(r->html, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%.2f</td><td>%.5f</td><td>",
                H(am), H(wg), H(o), v, cs);
        fprintf(r->md, "| %s | %s | %s | %.2f | %.5f | ", M(am), M(wg), M(o), v, cs);
        if (isnan(t)) {
          fprintf(r->html, "-</td></tr>\n");
          fprintf(r->md, "- |\n");
        } else {
          fprintf(r->html, "%.1f%%</td></tr>\n", 100 * t);
          fprintf(r->md, "%.1f%% |\n", 100 * t);
        }
      }
      fprintf(d, "%zu \"%s / %s\" %.4f %.4f %.4f %.4f %.4f\n", cfg++, D(am), D(wg), q[0], q[1],
              q[2], q[3], top);
    }
    fprintf(r->html, "</table>\n");
    fprintf(r->md, "\n");
    if (d)
      fclose(d);
    FILE *gp = d ? qcal_rep_open(r, "e2e_outputs.gp") : NULL;
    if (d && !gp)
      st = qcal_error(QCAL_EIO, "%s: cannot write e2e_outputs.gp", r->dir);
    if (gp) {
      static const char *const colors[4] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"};
      char plot[4096];
      size_t u = (size_t)snprintf(
          plot, sizeof plot,
          "set title 'End to end vs FP32: SQNR per output (bars), top-1 agreement (points, right "
          "axis)'\nset ylabel 'SQNR dB'\nset yrange [*<0:*]\nset y2label 'top-1 %%'\nset y2range "
          "[0:105]\nset y2tics\n"
          "set xtics rotate by -60 font 'sans,8'\nset style fill solid 0.8\nset boxwidth %.3f\n"
          "set key outside bottom center horizontal noenhanced\nplot ",
          0.8 / no);
      for (int k = 0; k < no && u < sizeof plot; k++)
        u += (size_t)snprintf(plot + u, sizeof plot - u,
                              "%s'e2e_outputs.dat' using ($1%+.3f):%d%s with boxes lc rgb '%s' "
                              "title '%s'",
                              k ? ", " : "", -0.4 + 0.8 * (k + 0.5) / no, 3 + k,
                              k ? "" : ":xtic(2)", colors[k], GN(outs[k], 60));
      if (u < sizeof plot)
        snprintf(plot + u, sizeof plot - u,
                 ", '' using 1:7 axes x1y2 with points pt 7 ps 1.2 lc rgb 'black' title "
                 "'top-1 agreement'");
      qcal_rep_terms(gp, "e2e_outputs", 1100, 550, plot);
      fclose(gp);
      st = qcal_rep_gnuplot(r, "e2e_outputs.gp", 1);
      qcal_rep_figure(
          r, "e2e_outputs", "End-to-end PTQ fidelity per output",
          "The network with fake-quant at every layer input and weight, against FP32 on "
          "the held-out photos, output by output.");
    }
  }
  if (!st && sn && qcal_table_rows(sn)) {
    const int c_n = QCAL_COL(SENSITIVITY_OUTPUTS, layer_name),
              c_w = QCAL_COL(SENSITIVITY_OUTPUTS, weight_granularity),
              c_q = QCAL_COL(SENSITIVITY_OUTPUTS, sqnr_db),
              c_op = QCAL_COL(SENSITIVITY_OUTPUTS, op);
    double *worst = malloc(2 * nt * sizeof *worst);
    long *name_row = malloc(nt * sizeof *name_row);
    FILE *d = worst && name_row ? qcal_rep_open(r, "sensitivity_outputs.dat") : NULL;
    if (!d)
      st = qcal_error(QCAL_EIO, "%s: cannot write sensitivity_outputs.dat", r->dir);
    for (size_t k = 0; d && k < nt; k++)
      worst[2 * k] = worst[2 * k + 1] = NAN, name_row[k] = -1;
    for (size_t i = 0; d && i < qcal_table_rows(sn); i++) {
      int64_t l = qcal_table_get_i(sn, (long)i, c_l);
      int g = !strcmp(qcal_table_get_s(sn, (long)i, c_w), "per-channel");
      double v = qcal_table_get_f(sn, (long)i, c_q);
      if (isnan(worst[2 * l + g]) || v < worst[2 * l + g])
        worst[2 * l + g] = v;
      name_row[l] = (long)i;
    }
    for (size_t l = 0; d && l < nt; l++)
      if (name_row[l] >= 0)
        fprintf(d, "%zu \"%s%s\" %.4f %.4f\n", l, D(qcal_table_get_s(sn, name_row[l], c_n)),
                !strcmp(qcal_table_get_s(sn, name_row[l], c_op), "depthwise") ? " (dw)" : "",
                worst[2 * l], worst[2 * l + 1]);
    free(worst), free(name_row);
    if (d)
      fclose(d);
    FILE *gp = d ? qcal_rep_open(r, "sensitivity_outputs.gp") : NULL;
    if (d && !gp)
      st = qcal_error(QCAL_EIO, "%s: cannot write sensitivity_outputs.gp", r->dir);
    if (gp) {
      const char *plot =
          "set title 'Per-layer sensitivity: worst output SQNR when only that layer is quantized "
          "(entropy activations, max weights)'\n"
          "set ylabel 'worst output SQNR dB'\nset yrange [*<0:*]\nset xtics rotate by -60 font "
          "'sans,7' noenhanced\n"
          "set style fill solid 0.8\nset boxwidth 0.4\nset key top left\n"
          "plot 'sensitivity_outputs.dat' using ($1-0.2):3:xtic(2) with boxes lc rgb '#d62728' "
          "title 'per-tensor weights', '' using ($1+0.2):4 with boxes lc rgb '#1f77b4' title "
          "'per-channel weights'";
      qcal_rep_terms(gp, "sensitivity_outputs", 1100, 500, plot);
      fclose(gp);
      st = qcal_rep_gnuplot(r, "sensitivity_outputs.gp", 1);
      qcal_rep_figure(r, "sensitivity_outputs", "Per-layer sensitivity (any network)",
                      "Lower bars are the layers whose quantization hurts the worst output most.");
    }
  }
  qcal_table_free(e), qcal_table_free(sn);
  return st;
}

static qcal_status sweep_figures(rep *r, qcal_results *f) {
  qcal_sweep_tables sw;
  QCAL_TRY(qcal_results_read_sweep(f, &sw));
  const qcal_table *res = sw.results, *ten = sw.tensors;
  if (!qcal_table_rows(res) || !sw.ntensors) {
    qcal_sweep_tables_free(&sw);
    return qcal_error(QCAL_EFORMAT, "%s: the sweep tables hold no rows: nothing to draw", f->path);
  }
  qcal_table *e2e = NULL, *sens = NULL;
  qcal_status st = QCAL_OK;
  if (qcal_results_has(f, QCAL_TABLE_E2E))
    st = qcal_results_read(f, QCAL_TABLE_E2E, &e2e);
  if (st == QCAL_OK && qcal_results_has(f, QCAL_TABLE_SENSITIVITY))
    st = qcal_results_read(f, QCAL_TABLE_SENSITIVITY, &sens);
  for (size_t i = 0; st == QCAL_OK && sens && i < qcal_table_rows(sens); i++)
    if (qcal_table_get_i(sens, (long)i, QCAL_COL(SENSITIVITY, layer)) >= (int64_t)sw.ntensors)
      st = qcal_error(QCAL_EFORMAT,
                      "%s: /sensitivity/layer: row %zu names layer %lld of %zu "
                      "tensors",
                      f->path, i,
                      (long long)qcal_table_get_i(sens, (long)i, QCAL_COL(SENSITIVITY, layer)),
                      sw.ntensors);
  const size_t nt = sw.ntensors;
  /* the activation tensor of each layer, found once */
  long *act_of_layer = malloc(nt * sizeof *act_of_layer);
  if (st == QCAL_OK && !act_of_layer)
    st = qcal_error(QCAL_ENOMEM, "out of memory");
  for (size_t l = 0; act_of_layer && l < nt; l++)
    act_of_layer[l] = -1;
  for (size_t u = 0; st == QCAL_OK && u < nt; u++) {
    int64_t l = qcal_table_get_i(ten, (long)u, QCAL_COL(TENSORS, layer));
    if (l >= 0 && !strcmp(qcal_table_get_s(ten, (long)u, QCAL_COL(TENSORS, kind)), "activation"))
      act_of_layer[l] = (long)u;
  }
  if (st != QCAL_OK) {
    free(act_of_layer);
    qcal_table_free(e2e), qcal_table_free(sens);
    qcal_sweep_tables_free(&sw);
    return st;
  }
  const int bits = main_bits(res);
  const int k_name = QCAL_COL(TENSORS, name), k_kind = QCAL_COL(TENSORS, kind),
            k_op = QCAL_COL(TENSORS, op), k_layer = QCAL_COL(TENSORS, layer);
  fprintf(r->html, "<h2>Calibration sweep: %s</h2>\n", H(f->path));

  /* recommendations */
  fprintf(r->html,
          "<h3>Recommended method per layer (%d-bit, highest SQNR)</h3>\n<table>\n"
          "<tr><th>layer</th><th>op</th><th>weights: best</th><th>dB</th><th>per-tensor max dB</th>"
          "<th>per-channel max dB</th><th>activations: best (per tensor)</th><th>dB</th></tr>\n",
          bits);
  fprintf(r->md,
          "## Recommended method per layer (%d-bit)\n\n| layer | op | weights | dB | per-tensor "
          "max | per-channel max | activations | dB |\n|---|---|---|---|---|---|---|---|\n",
          bits);
  for (size_t t = 0; t < nt; t++) {
    if (strcmp(qcal_table_get_s(ten, (long)t, k_kind), "weight"))
      continue;
    int64_t layer = qcal_table_get_i(ten, (long)t, k_layer);
    long a = layer >= 0 ? act_of_layer[layer] : -1;
    double bw = -INFINITY, ba = -INFINITY;
    char lw[48] = "-", la[32] = "-";
    for (int m = 0; m < QCAL_METHOD_CONFIG_COUNT; m++)
      for (int g = 0; g < 2; g++) {
        double v =
            sqnr_of(&sw, t, qcal_method_configs[m].label, g ? "per-channel" : "per-tensor", bits);
        if (v > bw)
          bw = v, snprintf(lw, sizeof lw, "%s / %s", qcal_method_configs[m].label,
                           g ? "per-channel" : "per-tensor");
      }
    for (int m = 0; a >= 0 && m < QCAL_METHOD_CONFIG_COUNT; m++) {
      double v = sqnr_of(&sw, (size_t)a, qcal_method_configs[m].label, "per-tensor", bits);
      if (v > ba)
        ba = v, snprintf(la, sizeof la, "%s", qcal_method_configs[m].label);
    }
    char lname[QCAL_SCHEMA_STR_MAX + 1];
    layer_of(qcal_table_get_s(ten, (long)t, k_name), lname, sizeof lname);
    const char *op = qcal_table_get_s(ten, (long)t, k_op);
    double pt = sqnr_of(&sw, t, "max", "per-tensor", bits),
           pc = sqnr_of(&sw, t, "max", "per-channel", bits);
    fprintf(r->html,
            "<tr%s><td>%s</td><td>%s</td><td>%s</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%s</"
            "td><td>%.2f</td></tr>\n",
            !strcmp(op, "depthwise") ? " class=\"dw\"" : "", H(lname), H(op), lw, bw, pt, pc, la,
            ba);
    fprintf(r->md, "| %s | %s | %s | %.2f | %.2f | %.2f | %s | %.2f |\n", M(lname), M(op), lw, bw,
            pt, pc, la, ba);
  }
  fprintf(r->html, "</table>\n");
  fprintf(r->md, "\n");

  /* 1. heatmaps */
  for (int kind = 0; kind < 2 && st == QCAL_OK; kind++) {
    const char *k = kind ? "activation" : "weight", *gran = kind ? "per-tensor" : "per-channel";
    char dat[80], stem[64];
    snprintf(stem, sizeof stem, "heatmap_%ss", k);
    snprintf(dat, sizeof dat, "%s.dat", stem);
    FILE *d = qcal_rep_open(r, dat), *gp = NULL;
    if (!d) {
      st = qcal_error(QCAL_EIO, "%s: cannot write %s", r->dir, dat);
      break;
    }
    static char ytics[1 << 16];
    size_t yu = 0;
    ytics[0] = '\0';
    int rows = 0, total = 0;
    for (size_t t = 0; t < nt; t++)
      total += !strcmp(qcal_table_get_s(ten, (long)t, k_kind), k);
    for (size_t t = 0; t < nt; t++) { /* the first layer on top */
      if (strcmp(qcal_table_get_s(ten, (long)t, k_kind), k))
        continue;
      int y = total - 1 - rows;
      for (int m = 0; m < QCAL_METHOD_CONFIG_COUNT; m++)
        fprintf(d, "%d %d %.4f\n", m, y, sqnr_of(&sw, t, qcal_method_configs[m].label, gran, bits));
      fprintf(d, "\n");
      if (yu < sizeof ytics - 600)
        yu += (size_t)snprintf(ytics + yu, sizeof ytics - yu, "%s'%s' %d", rows ? ", " : "",
                               GN(qcal_table_get_s(ten, (long)t, k_name), 200), y);
      rows++;
    }
    fclose(d);
    if (!rows)
      continue;
    char gpn[80];
    static char plot[(1 << 16) + 4096];
    snprintf(gpn, sizeof gpn, "%s.gp", stem);
    gp = qcal_rep_open(r, gpn);
    if (!gp) {
      st = qcal_error(QCAL_EIO, "%s: cannot write %s", r->dir, gpn);
      break;
    }
    snprintf(plot, sizeof plot,
             "set title '%s SQNR (dB), %d-bit, %s'\nset xtics ('max' 0, 'entropy' 1, 'mse' 2, "
             "'pct99.9' 3, 'pct99.99' 4, 'pct99.999' 5)\n"
             "set ytics (%s)\nset yrange [-0.5:%d.5]\nset xrange [-0.5:5.5]\nset palette defined "
             "(0 '#b2182b', 0.5 '#f7f7f7', 1 '#2166ac')\n"
             "set cblabel 'SQNR dB'\nplot '%s' using 1:2:3 with image pixels notitle, '' using "
             "1:2:(sprintf('%%.1f',$3)) with labels font 'sans,7' notitle",
             k, bits, gran, ytics, rows - 1, dat);
    qcal_rep_terms(gp, stem, 900, 120 + 18 * (rows < 2000 ? rows : 2000), plot);
    fclose(gp);
    if ((st = qcal_rep_gnuplot(r, gpn, 1)) != QCAL_OK)
      break;
    char what[256];
    snprintf(what, sizeof what,
             "Every layer (rows) by every method (columns): the %s %s SQNR on %s data.", gran, k,
             kind ? "held-out" : "the same");
    qcal_rep_figure(r, stem, kind ? "Activations: layers x methods" : "Weights: layers x methods",
                    what);
  }

  /* 2. per-tensor vs per-channel weights */
  if (st == QCAL_OK) {
    FILE *d = qcal_rep_open(r, "granularity.dat");
    int n = 0;
    if (!d)
      st = qcal_error(QCAL_EIO, "%s: cannot write granularity.dat", r->dir);
    for (size_t t = 0; t < nt && d; t++) {
      if (strcmp(qcal_table_get_s(ten, (long)t, k_kind), "weight"))
        continue;
      char lname[QCAL_SCHEMA_STR_MAX + 1];
      layer_of(qcal_table_get_s(ten, (long)t, k_name), lname, sizeof lname);
      int dw = !strcmp(qcal_table_get_s(ten, (long)t, k_op), "depthwise");
      fprintf(d, "%d \"%s%s\" %.4f %.4f %d\n", n++, D(lname), dw ? " (dw)" : "",
              sqnr_of(&sw, t, "max", "per-tensor", bits),
              sqnr_of(&sw, t, "max", "per-channel", bits), dw ? 7 : 8);
    }
    if (d)
      fclose(d);
    FILE *gp = n ? qcal_rep_open(r, "granularity.gp") : NULL;
    if (n && !gp)
      st = qcal_error(QCAL_EIO, "%s: cannot write granularity.gp", r->dir);
    if (gp) {
      char plot[2048];
      snprintf(
          plot, sizeof plot,
          "set title 'Weights, max calibration, %d-bit: per-tensor (bars; red = depthwise) vs "
          "per-channel (points)'\n"
          "set ylabel 'SQNR dB'\nset yrange [0:*]\nset xtics rotate by -60 font 'sans,8'\nset "
          "style fill solid 0.8\nset boxwidth 0.7\nset key top left\n"
          "set linetype 7 lc rgb '#d62728'\nset linetype 8 lc rgb '#9e9e9e'\n"
          "plot 'granularity.dat' using 1:3:5:xtic(2) with boxes lc variable title 'per-tensor', "
          "'' using 1:4 with linespoints pt 7 lc rgb '#1f77b4' title 'per-channel'",
          bits);
      qcal_rep_terms(gp, "granularity", 1100, 500, plot);
      fclose(gp);
      st = qcal_rep_gnuplot(r, "granularity.gp", 1);
      qcal_rep_figure(
          r, "granularity", "Per-tensor vs per-channel weights",
          "Per-tensor weight quantization collapses on the BN-folded depthwise layers "
          "(red), whose channel ranges differ by up to 80x; per-channel recovers them.");
    }
  }

  /* 3 + 4. histograms and the range-vs-rounding trade-off per tensor */
  FILE *gh = st == QCAL_OK ? qcal_rep_open(r, "histograms.gp") : NULL,
       *gt = gh ? qcal_rep_open(r, "tradeoff.gp") : NULL;
  if (st == QCAL_OK && (!gh || !gt))
    st = qcal_error(QCAL_EIO, "%s: cannot write the histogram scripts", r->dir);
  int nh = 0;
  size_t with_hist = 0;
  const double qmax = (double)((1 << (bits - 1)) - 1);
  fprintf(r->html,
          "<h3>Histograms of |x| and the range-vs-rounding trade-off</h3>\n<p>For every tensor: "
          "the |x| histogram (log scale) with each method's amax, and the clip / rounding / total "
          "error against amax (%d-bit), each method's choice marked. Click for the SVG.</p>\n<div "
          "class=\"grid\">\n",
          bits);
  for (size_t t = 0; t < nt && st == QCAL_OK && gh && gt; t++) {
    if (!qcal_results_has_histogram(f, &sw, t))
      continue; /* a tensor without a histogram has no figure */
    with_hist++;
    if (nh >= MAX_HIST_FIGURES)
      continue;
    uint64_t *cnt = NULL;
    float *edges = NULL;
    size_t nb = 0;
    if ((st = qcal_results_histogram(f, &sw, t, &cnt, &edges, &nb)) != QCAL_OK)
      break;
    char dh[64], dt[64];
    snprintf(dh, sizeof dh, "hist_%zu.dat", t);
    snprintf(dt, sizeof dt, "tradeoff_%zu.dat", t);
    FILE *a = qcal_rep_open(r, dh), *b = qcal_rep_open(r, dt);
    if (!a || !b)
      st = qcal_error(QCAL_EIO, "%s: cannot write %s", r->dir, dh);
    double total = 0;
    for (size_t i = 0; i < nb; i++)
      total += (double)cnt[i];
    for (size_t i = 0; a && i < nb; i++)
      if (cnt[i])
        fprintf(a, "%.8g %llu\n", 0.5 * (edges[i] + edges[i + 1]), (unsigned long long)cnt[i]);
    const double hi = edges[nb] > 0 ? edges[nb] : 1;
    for (int g = 1; b && g <= 200 && total > 0; g++) { /* clip: (c-a)^2; round: step^2/12 */
      double am = hi * g / 200.0, step = am / qmax, clip = 0, rnd = 0;
      for (size_t i = 0; i < nb; i++) {
        double c = 0.5 * (edges[i] + edges[i + 1]);
        if (c > am)
          clip += (double)cnt[i] * (c - am) * (c - am);
        else
          rnd += (double)cnt[i] * step * step / 12.0;
      }
      fprintf(b, "%.8g %.8g %.8g %.8g\n", am, clip / total, rnd / total, (clip + rnd) / total);
    }
    if (a)
      fclose(a);
    if (b)
      fclose(b);
    free(cnt), free(edges);
    if (st != QCAL_OK)
      break;
    char marks[2048] = "";
    size_t mu = 0;
    for (int m = 0; m < QCAL_METHOD_CONFIG_COUNT; m++) {
      double am = amax_of(&sw, t, qcal_method_configs[m].label, bits);
      if (!isfinite(am))
        continue;
      mu += (size_t)snprintf(
          marks + mu, sizeof marks - mu,
          "set arrow from %.8g, graph 0 to %.8g, graph 1 nohead lt %d lw 1.5\n"
          "set label '%s' at %.8g, graph %.2f rotate by 90 right font 'sans,8' tc lt %d\n",
          am, am, m + 1, qcal_method_configs[m].label, am, 0.97 - 0.1 * m, m + 1);
    }
    const char *name = qcal_table_get_s(ten, (long)t, k_name);
    char stem[64], plot[4096 + 2 * QCAL_SCHEMA_STR_MAX];
    snprintf(stem, sizeof stem, "hist_%zu", t);
    snprintf(plot, sizeof plot,
             "%sset title '%s: histogram of |x|'\nset format y '%%g'\nset logscale y\nset xlabel "
             "'|x|'\nset ylabel 'count'\n"
             "plot '%s' using 1:2 with impulses lc rgb '#555555' notitle\nunset logscale y\n",
             marks, G(name), dh);
    qcal_rep_terms(gh, stem, 700, 400, plot);
    snprintf(stem, sizeof stem, "tradeoff_%zu", t);
    snprintf(plot, sizeof plot,
             "%sset title '%s: range vs rounding (%d-bit)'\nset format y '%%g'\nset logscale "
             "y\nset xlabel 'amax'\nset ylabel 'mean squared error'\nset key top center\n"
             "plot '%s' using 1:2 with lines lw 2 lc rgb '#d62728' title 'clip', '' using 1:3 with "
             "lines lw 2 lc rgb '#1f77b4' title 'rounding', "
             "'' using 1:4 with lines lw 3 lc rgb 'black' title 'total'\nunset logscale y\n",
             marks, G(name), bits, dt);
    qcal_rep_terms(gt, stem, 700, 400, plot);
    fprintf(r->html,
            "<div><a href=\"hist_%zu.svg\"><img src=\"hist_%zu.png\" alt=\"histogram %s\"></a>"
            "<a href=\"tradeoff_%zu.svg\"><img src=\"tradeoff_%zu.png\" alt=\"trade-off "
            "%s\"></a><br>%s</div>\n",
            t, t, H(name), t, t, H(name), H(name));
    nh++;
  }
  fprintf(r->html, "</div>\n");
  if (with_hist > (size_t)nh && st == QCAL_OK)
    fprintf(r->html,
            "<p>Histograms of the first %d tensors; %zu more are in the results file.</p>\n", nh,
            with_hist - (size_t)nh);
  if (gh)
    fclose(gh);
  if (gt)
    fclose(gt);
  if (st == QCAL_OK && nh) {
    st = qcal_rep_gnuplot(r, "histograms.gp", nh);
    if (st == QCAL_OK)
      st = qcal_rep_gnuplot(r, "tradeoff.gp", nh);
  }

  /* 5. SQNR against bits */
  if (st == QCAL_OK) {
    FILE *d = qcal_rep_open(r, "bits.dat");
    if (!d)
      st = qcal_error(QCAL_EIO, "%s: cannot write bits.dat", r->dir);
    int bl[16], nbits = 0;
    for (size_t i = 0; i < qcal_table_rows(res) && nbits < 16; i++) {
      int b = (int)qcal_table_get_i(res, (long)i, QCAL_COL(RESULTS, bits)), seen = 0;
      for (int k = 0; k < nbits; k++)
        seen |= bl[k] == b;
      if (!seen)
        bl[nbits++] = b;
    }
    for (int k = 0; d && k < nbits; k++) {
      fprintf(d, "%d", bl[k]);
      for (int m = 0; m < QCAL_METHOD_CONFIG_COUNT; m++) {
        double s = 0;
        int n = 0;
        for (size_t t = 0; t < nt; t++) {
          const char *kind = qcal_table_get_s(ten, (long)t, k_kind);
          double v = sqnr_of(&sw, t, qcal_method_configs[m].label, "per-tensor", bl[k]);
          if (strcmp(kind, "weight") && isfinite(v))
            s += v, n++;
        }
        fprintf(d, " %.4f", n ? s / n : NAN);
      }
      fprintf(d, "\n");
    }
    if (d)
      fclose(d);
    FILE *gp = d ? qcal_rep_open(r, "bits.gp") : NULL;
    if (d && !gp)
      st = qcal_error(QCAL_EIO, "%s: cannot write bits.gp", r->dir);
    if (gp) {
      char plot[2048], labels[256] = "";
      for (int m = 0; m < QCAL_METHOD_CONFIG_COUNT; m++)
        snprintf(labels + strlen(labels), sizeof labels - strlen(labels), "%s%s", m ? " " : "",
                 qcal_method_configs[m].label);
      snprintf(plot, sizeof plot,
               "set title 'Mean per-tensor SQNR of activations and test tensors against bit "
               "width'\nset xlabel 'bits'\nset ylabel 'SQNR dB'\nset key top left\n"
               "plot for [m=2:%d] 'bits.dat' using 1:m with linespoints lw 2 pt 7 title "
               "word('%s', m-1)",
               QCAL_METHOD_CONFIG_COUNT + 1, labels);
      qcal_rep_terms(gp, "bits", 800, 450, plot);
      fclose(gp);
      st = qcal_rep_gnuplot(r, "bits.gp", 1);
      qcal_rep_figure(r, "bits", "SQNR against bits",
                      nbits > 1
                          ? "About 6 dB per bit while rounding dominates; the methods separate "
                            "where clipping matters."
                          : "Only one bit width was swept (qcal sweep --bits 2-8 draws the "
                            "curve).");
    }
  }

  /* 6. end to end and sensitivity */
  if (st == QCAL_OK && e2e && qcal_table_rows(e2e)) {
    const int c_a = QCAL_COL(E2E, act_method), c_w = QCAL_COL(E2E, weight_granularity),
              c_h = QCAL_COL(E2E, heatmap_sqnr_db), c_o = QCAL_COL(E2E, offset_sqnr_db),
              c_k = QCAL_COL(E2E, keypoint_agreement),
              c_kc = QCAL_COL(E2E, keypoint_agreement_confident);
    FILE *d = qcal_rep_open(r, "e2e.dat");
    if (!d)
      st = qcal_error(QCAL_EIO, "%s: cannot write e2e.dat", r->dir);
    fprintf(
        r->html,
        "<h3>End to end on the held-out "
        "photos</h3>\n<table><tr><th>activations</th><th>weights</th><th>heatmap dB</th><th>offset "
        "dB</th><th>keypoints (all)</th><th>keypoints (confident)</th></tr>\n");
    fprintf(r->md, "## End to end (held-out photos)\n\n| activations | weights | heatmap dB | "
                   "offset dB | keypoints | confident |\n|---|---|---|---|---|---|\n");
    for (size_t i = 0; d && i < qcal_table_rows(e2e); i++) {
      long row = (long)i;
      const char *am = qcal_table_get_s(e2e, row, c_a), *wg = qcal_table_get_s(e2e, row, c_w);
      double h = qcal_table_get_f(e2e, row, c_h), o = qcal_table_get_f(e2e, row, c_o),
             k = 100 * qcal_table_get_f(e2e, row, c_k), kc = 100 * qcal_table_get_f(e2e, row, c_kc);
      fprintf(d, "%zu \"%s / %s\" %.4f %.4f %.4f %.4f\n", i, D(am), D(wg), h, o, k, kc);
      fprintf(r->html,
              "<tr><td>%s</td><td>%s</td><td>%.2f</td><td>%.2f</td><td>%.1f%%</td><td>%.1f%%</td></"
              "tr>\n",
              H(am), H(wg), h, o, k, kc);
      fprintf(r->md, "| %s | %s | %.2f | %.2f | %.1f%% | %.1f%% |\n", M(am), M(wg), h, o, k, kc);
    }
    fprintf(r->html, "</table>\n");
    fprintf(r->md, "\n");
    if (d)
      fclose(d);
    FILE *gp = d ? qcal_rep_open(r, "e2e.gp") : NULL;
    if (d && !gp)
      st = qcal_error(QCAL_EIO, "%s: cannot write e2e.gp", r->dir);
    if (gp) {
      const char *plot =
          "set title 'End to end vs FP32: output SQNR (bars) and keypoint agreement (points, "
          "right axis)'\n"
          "set ylabel 'SQNR dB'\nset y2label 'agreement %'\nset y2range [0:105]\nset y2tics\nset "
          "xtics rotate by -60 font 'sans,8'\n"
          "set style fill solid 0.8\nset boxwidth 0.35\nset key outside bottom center horizontal\n"
          "plot 'e2e.dat' using ($1-0.18):3:xtic(2) with boxes lc rgb '#1f77b4' title 'heatmap "
          "SQNR', "
          "'' using ($1+0.18):4 with boxes lc rgb '#ff7f0e' title 'offset SQNR', "
          "'' using 1:5 axes x1y2 with points pt 7 ps 1.2 lc rgb 'black' title 'keypoints (all)', "
          "'' using 1:6 axes x1y2 with points pt 9 ps 1.4 lc rgb '#2ca02c' title 'keypoints "
          "(confident)'";
      qcal_rep_terms(gp, "e2e", 1100, 550, plot);
      fclose(gp);
      st = qcal_rep_gnuplot(r, "e2e.gp", 1);
      qcal_rep_figure(r, "e2e", "End-to-end PTQ fidelity",
                      "The network with fake-quant at every convolution input and weight, against "
                      "FP32 on the held-out photos.");
    }
  }
  if (st == QCAL_OK && sens && qcal_table_rows(sens)) {
    const int c_l = QCAL_COL(SENSITIVITY, layer), c_n = QCAL_COL(SENSITIVITY, layer_name),
              c_w = QCAL_COL(SENSITIVITY, weight_granularity),
              c_h = QCAL_COL(SENSITIVITY, heatmap_sqnr_db), c_op = QCAL_COL(SENSITIVITY, op);
    /* per-channel SQNR of each layer, found once (layers < tensors, checked) */
    double *pc_of = malloc(nt * sizeof *pc_of);
    FILE *d = pc_of ? qcal_rep_open(r, "sensitivity.dat") : NULL;
    if (!d)
      st = qcal_error(QCAL_EIO, "%s: cannot write sensitivity.dat", r->dir);
    for (size_t l = 0; pc_of && l < nt; l++)
      pc_of[l] = NAN;
    for (size_t j = 0; d && j < qcal_table_rows(sens); j++)
      if (!strcmp(qcal_table_get_s(sens, (long)j, c_w), "per-channel"))
        pc_of[qcal_table_get_i(sens, (long)j, c_l)] = qcal_table_get_f(sens, (long)j, c_h);
    for (size_t i = 0; d && i < qcal_table_rows(sens); i++) {
      long row = (long)i;
      if (strcmp(qcal_table_get_s(sens, row, c_w), "per-tensor"))
        continue;
      int64_t l = qcal_table_get_i(sens, row, c_l);
      fprintf(d, "%lld \"%s%s\" %.4f %.4f\n", (long long)l, D(qcal_table_get_s(sens, row, c_n)),
              !strcmp(qcal_table_get_s(sens, row, c_op), "depthwise") ? " (dw)" : "",
              qcal_table_get_f(sens, row, c_h), pc_of[l]);
    }
    free(pc_of);
    if (d)
      fclose(d);
    FILE *gp = d ? qcal_rep_open(r, "sensitivity.gp") : NULL;
    if (d && !gp)
      st = qcal_error(QCAL_EIO, "%s: cannot write sensitivity.gp", r->dir);
    if (gp) {
      const char *plot =
          "set title 'Per-layer sensitivity: heatmap SQNR when only that layer is quantized "
          "(entropy activations, max weights)'\n"
          "set ylabel 'heatmap SQNR dB'\nset xtics rotate by -60 font 'sans,8'\nset style fill "
          "solid 0.8\nset boxwidth 0.4\nset key top left\n"
          "plot 'sensitivity.dat' using ($1-0.2):3:xtic(2) with boxes lc rgb '#d62728' title "
          "'per-tensor weights', "
          "'' using ($1+0.2):4 with boxes lc rgb '#1f77b4' title 'per-channel weights'";
      qcal_rep_terms(gp, "sensitivity", 1100, 500, plot);
      fclose(gp);
      st = qcal_rep_gnuplot(r, "sensitivity.gp", 1);
      qcal_rep_figure(r, "sensitivity", "Per-layer sensitivity",
                      "Lower bars are the layers whose quantization hurts the output most.");
    }
  }
  /* the per-output figures where no task module drew its own */
  if (st == QCAL_OK && !e2e)
    st = output_figures(r, f, nt);
  free(act_of_layer);
  qcal_table_free(e2e), qcal_table_free(sens);
  qcal_sweep_tables_free(&sw);
  return st;
}

/* A benchmark table, read only if present; too many rows is an error. */
static qcal_status bench_table(qcal_results *f, qcal_table_id id, qcal_table **t) {
  *t = NULL;
  if (!qcal_results_has(f, id))
    return QCAL_OK;
  QCAL_TRY(qcal_results_read(f, id, t));
  if (qcal_table_rows(*t) > MAX_BENCH_ROWS) {
    size_t n = qcal_table_rows(*t);
    qcal_table_free(*t);
    *t = NULL;
    return qcal_error(QCAL_EFORMAT, "%s: /%s holds %zu rows, more than a report draws (%d)",
                      f->path, qcal_schema_tables[id].name, n, MAX_BENCH_ROWS);
  }
  return QCAL_OK;
}

static qcal_status gemm_figures(rep *r, qcal_results *f) {
  qcal_table *g, *pk = NULL;
  QCAL_TRY(bench_table(f, QCAL_TABLE_GEMM, &g));
  if (!g)
    return QCAL_OK;
  qcal_status st = bench_table(f, QCAL_TABLE_PEAKS, &pk);
  FILE *d = st == QCAL_OK ? qcal_rep_open(r, "gemm.dat") : NULL;
  if (st == QCAL_OK && !d)
    st = qcal_error(QCAL_EIO, "%s: cannot write gemm.dat", r->dir);
  if (st != QCAL_OK) {
    qcal_table_free(g), qcal_table_free(pk);
    return st;
  }
  const int c_e = QCAL_COL(GEMM, engine), c_t = QCAL_COL(GEMM, type), c_l = QCAL_COL(GEMM, shape),
            c_m = QCAL_COL(GEMM, m), c_g = QCAL_COL(GEMM, gops), c_p = QCAL_COL(GEMM, peak_percent),
            c_s = QCAL_COL(GEMM, status);
  const size_t ng = qcal_table_rows(g);
  const char *types[4] = {"f32", "bf16", "u8s8s32", "s8s8s32"};
  fprintf(r->html,
          "<h2>GEMM throughput: "
          "%s</h2>\n<table><tr><th>engine</th><th>type</th><th>shape</th><th>GOPS</th><th>%% of "
          "peak</th><th>check</th></tr>\n",
          H(f->path));
  fprintf(r->md,
          "## GEMM (%s)\n\n| engine | type | shape | GOPS | %% peak | check "
          "|\n|---|---|---|---|---|---|\n",
          M(f->path));
  for (int t = 0; t < 4; t++) {
    fprintf(d, "# %s\n", types[t]);
    for (size_t i = 0; i < ng; i++) {
      long row = (long)i;
      if (strcmp(qcal_table_get_s(g, row, c_t), types[t]) ||
          !strstr(qcal_table_get_s(g, row, c_l), "^3") ||
          strcmp(qcal_table_get_s(g, row, c_e), "cpu-onednn"))
        continue;
      fprintf(d, "%lld %.4f\n", (long long)qcal_table_get_i(g, row, c_m),
              qcal_table_get_f(g, row, c_g));
    }
    fprintf(d, "\n\n");
  }
  for (size_t i = 0; i < ng; i++) {
    long row = (long)i;
    const char *e = qcal_table_get_s(g, row, c_e), *ty = qcal_table_get_s(g, row, c_t),
               *sh = qcal_table_get_s(g, row, c_l), *ck = qcal_table_get_s(g, row, c_s);
    double gops = qcal_table_get_f(g, row, c_g), pct = qcal_table_get_f(g, row, c_p);
    char pcts[32] = "-"; /* NaN: not measured, or flagged above 100% (the check says) */
    if (!isnan(pct))
      snprintf(pcts, sizeof pcts, "%.1f", pct);
    fprintf(r->html,
            "<tr><td>%s</td><td>%s</td><td>%s</td><td>%.1f</td><td>%s</td><td>%s</td></tr>\n", H(e),
            H(ty), H(sh), gops, pcts, H(ck));
    fprintf(r->md, "| %s | %s | %s | %.1f | %s | %s |\n", M(e), M(ty), M(sh), gops, pcts, M(ck));
  }
  fprintf(r->html, "</table>\n");
  fprintf(r->md, "\n");
  /* speedup int8 / f32 per square size: the f32 row of the same shape label
   * (square sizes are few; MAX_BENCH_ROWS bounds the scan) */
  fprintf(d, "# speedup\n");
  int nsp = 0, nsq = 0; /* speed-up points; square-size rows (gnuplot refuses empty plots) */
  for (size_t i = 0; i < ng; i++) {
    long row = (long)i;
    if (!strstr(qcal_table_get_s(g, row, c_l), "^3") ||
        strcmp(qcal_table_get_s(g, row, c_e), "cpu-onednn"))
      continue;
    nsq++;
    if (strcmp(qcal_table_get_s(g, row, c_t), "u8s8s32"))
      continue;
    for (size_t j = 0; j < ng; j++)
      if (!strcmp(qcal_table_get_s(g, (long)j, c_t), "f32") &&
          !strcmp(qcal_table_get_s(g, (long)j, c_l), qcal_table_get_s(g, row, c_l))) {
        fprintf(d, "%lld %.4f\n", (long long)qcal_table_get_i(g, row, c_m),
                qcal_table_get_f(g, row, c_g) / qcal_table_get_f(g, (long)j, c_g));
        nsp++;
        break;
      }
  }
  fclose(d);
  if (!nsq) { /* layer shapes only: the table says it all */
    qcal_table_free(g), qcal_table_free(pk);
    return QCAL_OK;
  }
  char peaks[1024] = "";
  size_t pu = 0;
  for (size_t i = 0; pk && i < qcal_table_rows(pk) && pu < sizeof peaks - 200; i++)
    pu += (size_t)snprintf(peaks + pu, sizeof peaks - pu,
                           ", %.4f with lines dt 2 lw 2 title 'peak %s'",
                           qcal_table_get_f(pk, (long)i, QCAL_COL(PEAKS, gops)),
                           GN(qcal_table_get_s(pk, (long)i, QCAL_COL(PEAKS, unit)), 40));
  FILE *gp = qcal_rep_open(r, "gemm.gp");
  if (!gp) {
    qcal_table_free(g), qcal_table_free(pk);
    return qcal_error(QCAL_EIO, "%s: cannot write gemm.gp", r->dir);
  }
  char plot[4096];
  snprintf(plot, sizeof plot,
           "set title 'oneDNN GEMM throughput against the peak measured in the same run'\nset "
           "logscale x 2\nset xlabel 'M = N = K'\n"
           "set ylabel 'GOPS'\nset key outside right\nset yrange [0:*]\n"
           "plot for [i=0:3] 'gemm.dat' index i using 1:2 with linespoints lw 2 pt 7 title "
           "word('f32 bf16 u8s8s32 s8s8s32', i+1)%s",
           peaks);
  qcal_rep_terms(gp, "gemm_gops", 1000, 500, plot);
  if (nsp)
    qcal_rep_terms(
        gp, "gemm_speedup", 800, 400,
        "set title 'int8 (u8s8s32) / fp32 GEMM speed-up'\nset logscale x 2\nset xlabel 'M = N "
        "= K'\nset ylabel 'speed-up'\nset yrange [0:5]\n"
        "plot 'gemm.dat' index 4 using 1:2 with linespoints lw 2 pt 7 title 'measured', 4 with "
        "lines dt 2 title 'VNNI/FMA peak ratio'");
  fclose(gp);
  st = qcal_rep_gnuplot(r, "gemm.gp", nsp ? 2 : 1);
  qcal_rep_figure(r, "gemm_gops", "GEMM GOPS against size",
                  "Each type with the register-resident peak of its instruction as a dashed line.");
  if (nsp)
    qcal_rep_figure(r, "gemm_speedup", "INT8 over FP32", "The int8/fp32 GEMM speed-up by size.");
  qcal_table_free(g), qcal_table_free(pk);
  return st;
}

static qcal_status stream_figures(rep *r, qcal_results *f) {
  qcal_table *s;
  QCAL_TRY(bench_table(f, QCAL_TABLE_STREAM, &s));
  if (!s)
    return QCAL_OK;
  const int c_k = QCAL_COL(STREAM, kernel), c_n = QCAL_COL(STREAM, elements),
            c_b = QCAL_COL(STREAM, bytes), c_g = QCAL_COL(STREAM, gbps),
            c_e = QCAL_COL(STREAM, engine), c_p = QCAL_COL(STREAM, copy_percent),
            c_x = QCAL_COL(STREAM, speedup_vs_fp32);
  int64_t nmax = 0;
  for (size_t i = 0; i < qcal_table_rows(s); i++)
    if (!strcmp(qcal_table_get_s(s, (long)i, c_e), "cpu") &&
        qcal_table_get_i(s, (long)i, c_n) > nmax)
      nmax = qcal_table_get_i(s, (long)i, c_n);
  if (nmax <= 0) {
    qcal_table_free(s);
    return qcal_error(QCAL_EFORMAT, "%s: /stream holds no CPU rows with elements: nothing to draw",
                      f->path);
  }
  double copy = 0;
  FILE *d = qcal_rep_open(r, "roofline.dat");
  if (!d) {
    qcal_table_free(s);
    return qcal_error(QCAL_EIO, "%s: cannot write roofline.dat", r->dir);
  }
  fprintf(r->html,
          "<h2>Bandwidth-bound kernels: %s</h2>\n<p>At %lld elements (the largest "
          "size):</p>\n<table><tr><th>kernel</th><th>GB/s</th><th>%% of "
          "copy</th><th>int8/fp32</th></tr>\n",
          H(f->path), (long long)nmax);
  fprintf(
      r->md,
      "## Stream (%lld elements)\n\n| kernel | GB/s | %% copy | int8/fp32 |\n|---|---|---|---|\n",
      (long long)nmax);
  for (size_t i = 0; i < qcal_table_rows(s); i++) {
    long row = (long)i;
    if (strcmp(qcal_table_get_s(s, row, c_e), "cpu") || qcal_table_get_i(s, row, c_n) != nmax)
      continue;
    const char *kn = qcal_table_get_s(s, row, c_k);
    double bpe = qcal_table_get_f(s, row, c_b) / (double)nmax, gbs = qcal_table_get_f(s, row, c_g);
    if (!strcmp(kn, "copy f32")) /* the roof: the fastest copy sample (gbps / its percent) */
      copy = isfinite(qcal_table_get_f(s, row, c_p)) && qcal_table_get_f(s, row, c_p) > 0
                 ? 100 * gbs / qcal_table_get_f(s, row, c_p)
                 : gbs;
    /* one operation per element: intensity = 1 / bytes per element */
    if (bpe > 0)
      fprintf(d, "%.6f %.6f \"%s\"\n", 1.0 / bpe, gbs / bpe, D(kn));
    char x[32] = "";
    if (isfinite(qcal_table_get_f(s, row, c_x)))
      snprintf(x, sizeof x, "%.2fx", qcal_table_get_f(s, row, c_x));
    char pct[80] = ""; /* NaN: flagged above the copy limit (status) */
    if (isfinite(qcal_table_get_f(s, row, c_p)))
      snprintf(pct, sizeof pct, "%.1f", qcal_table_get_f(s, row, c_p));
    else
      snprintf(pct, sizeof pct, "- (%s)", qcal_table_get_s(s, row, QCAL_COL(STREAM, status)));
    fprintf(r->html, "<tr><td>%s</td><td>%.2f</td><td>%s</td><td>%s</td></tr>\n", H(kn), gbs,
            H(pct), x);
    fprintf(r->md, "| %s | %.2f | %s | %s |\n", M(kn), gbs, M(pct), x);
  }
  fprintf(r->html, "</table>\n");
  fprintf(r->md, "\n");
  fclose(d);
  FILE *gp = qcal_rep_open(r, "roofline.gp");
  if (!gp) {
    qcal_table_free(s);
    return qcal_error(QCAL_EIO, "%s: cannot write roofline.gp", r->dir);
  }
  char plot[2048];
  snprintf(plot, sizeof plot,
           "set title 'Roofline of the stream kernels (largest size) against the fastest STREAM "
           "copy sample (%.1f GB/s)'\n"
           "set logscale xy\nset xlabel 'elements per byte moved'\nset ylabel 'G elements / "
           "s'\nset key top left\nset xrange [0.05:1]\n"
           "plot %.6f*x with lines lw 2 lc rgb 'black' title 'bandwidth roof (copy)', "
           "'roofline.dat' using 1:2 with points pt 7 ps 1.5 lc rgb '#1f77b4' title 'kernels', "
           "'' using 1:2:3 with labels offset 1,0.6 left font 'sans,8' notitle",
           copy, copy);
  qcal_rep_terms(gp, "roofline", 900, 550, plot);
  fclose(gp);
  qcal_status st = qcal_rep_gnuplot(r, "roofline.gp", 1);
  qcal_rep_figure(
      r, "roofline", "Stream roofline",
      "int8-to-int8 kernels move a quarter of the bytes and sit 4x further up the roof; "
      "conversions are capped by the bytes they still move.");
  qcal_table_free(s);
  return st;
}

/* gnuplot on PATH, found without a shell. */
static int have_gnuplot(void) {
  const char *path = getenv("PATH");
  if (!path)
    return 0;
  char buf[4200];
  for (const char *p = path; *p;) {
    size_t n = strcspn(p, ":");
    snprintf(buf, sizeof buf, "%.*s/gnuplot", (int)n, p);
    if (n && access(buf, X_OK) == 0)
      return 1;
    p += n + (p[n] == ':');
  }
  return 0;
}

#define MARKER ".qcal-report"

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)ftw;
  return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static void rm_tree(const char *dir) {
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* An existing output folder is replaced only when it is an earlier report
 * (or empty): -o must never delete a folder of the user's. */
static qcal_status check_report_dir(const char *dir, int *exists) {
  struct stat sb;
  *exists = 0;
  if (lstat(dir, &sb) != 0) {
    if (errno != ENOENT)
      return qcal_error(QCAL_EIO, "%s: %s", dir, strerror(errno));
  } else {
    if (!S_ISDIR(sb.st_mode))
      return qcal_error(QCAL_EINVAL, "%s: exists and is not a folder (report -o takes a folder)",
                        dir);
    *exists = 1;
    char m[4400];
    snprintf(m, sizeof m, "%s/%s", dir, MARKER);
    DIR *d = opendir(dir);
    int entries = 0;
    for (struct dirent *e; d && (e = readdir(d));)
      entries += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
      closedir(d);
    if (entries && access(m, F_OK) != 0)
      return qcal_error(QCAL_EINVAL,
                        "%s: folder exists and is not a qcal report (no %s); choose a new "
                        "folder, it is never overwritten",
                        dir, MARKER);
  }
  /* the parent must take the temporary folder */
  char parent[4200];
  if (qcal_parent_dir(dir, parent, sizeof parent) != QCAL_OK || access(parent, W_OK | X_OK) != 0)
    return qcal_error(QCAL_EIO, "%s: cannot create the report there: %s", dir, strerror(errno));
  return QCAL_OK;
}

static const qcal_table_id drawn[] = {
    QCAL_TABLE_RESULTS,     QCAL_TABLE_GEMM,          QCAL_TABLE_STREAM, QCAL_TABLE_ZOO,
    QCAL_TABLE_MODEL_BENCH, QCAL_TABLE_ARCHITECTURES, QCAL_TABLE_QAT};

qcal_status qcal_report_build(const char *const *files, int nfiles, const char *dir_in,
                              qcal_report_out *out) {
  memset(out, 0, sizeof *out);
  if (nfiles > 8)
    return qcal_error(QCAL_EINVAL, "at most 8 results files");
  char dir[4096];
  if (snprintf(dir, sizeof dir, "%s", dir_in) >= (int)sizeof dir || !dir[0])
    return qcal_error(QCAL_EINVAL, "report: output folder name is empty or too long");
  for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--)
    dir[n - 1] = '\0';
  int exists;
  QCAL_TRY(check_report_dir(dir, &exists));
  if (!have_gnuplot())
    return qcal_error(QCAL_EUNSUPPORTED, "gnuplot is not installed (apt-get install gnuplot-nox)");
  qcal_results f[8];
  for (int i = 0; i < nfiles; i++) {
    qcal_status st = qcal_results_open(&f[i], files[i]);
    int any = 0;
    for (size_t k = 0; st == QCAL_OK && k < sizeof drawn / sizeof drawn[0]; k++)
      any |= qcal_results_has(&f[i], drawn[k]);
    if (st == QCAL_OK && !any) {
      qcal_results_close(&f[i]);
      st = qcal_error(
          QCAL_EFORMAT,
          "%s: holds no sweep, gemm, stream, zoo or bench-model table: nothing to report",
          files[i]);
    }
    if (st != QCAL_OK) {
      for (int k = 0; k < i; k++)
        qcal_results_close(&f[k]);
      return st;
    }
  }
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid());
  rm_tree(tmp); /* a leftover of an earlier process with this pid */
  if (mkdir(tmp, 0755) != 0) {
    for (int k = 0; k < nfiles; k++)
      qcal_results_close(&f[k]);
    return qcal_error(QCAL_EIO, "%s: cannot create: %s", tmp, strerror(errno));
  }
  rep r = {tmp, qcal_rep_open(&(rep){tmp, 0, 0, 0}, "index.html"),
           qcal_rep_open(&(rep){tmp, 0, 0, 0}, "summary.md"), 0};
  qcal_status st =
      r.html && r.md ? QCAL_OK : qcal_error(QCAL_EIO, "%s: cannot write the pages", tmp);
  if (st == QCAL_OK) {
    fprintf(r.html,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>qcal "
            "report</title>\n<style>\n"
            "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
            "table{border-collapse:collapse;margin:1em 0;font-size:90%%}td,th{border:1px solid "
            "#ccc;padding:3px 8px;text-align:right}"
            "td:first-child,th:first-child{text-align:left}tr.dw{background:#fde8e8}figure{margin:"
            "1.5em 0}"
            "figure img{max-width:100%%;border:1px solid "
            "#eee}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:"
            "8px;font-size:80%%}"
            ".grid img{width:49%%}\n</style></head><body>\n<h1>qcal report</h1>\n");
    fprintf(r.md, "# qcal report\n\n");
    for (int i = 0; i < nfiles; i++) {
      char ver[64] = "?", commit[64] = "?", date[64] = "?", cpu[256] = "?", gpu[512] = "?";
      /* provenance is informative: a missing attribute shows as '?', a
       * malformed one fails */
      const char *names[] = {"qcal_version", "git_commit", "date", "cpu_model", "gpu"};
      char *bufs[] = {ver, commit, date, cpu, gpu};
      size_t caps[] = {sizeof ver, sizeof commit, sizeof date, sizeof cpu, sizeof gpu};
      for (int k = 0; k < 5 && st == QCAL_OK; k++) {
        qcal_status a = qcal_results_attr(&f[i], names[k], bufs[k], caps[k]);
        if (a != QCAL_OK && strstr(qcal_last_error(), "no attribute") == NULL)
          st = a;
      }
      fprintf(r.html, "<p><b>%s</b>: qcal %s (%s), %s, CPU %s, GPU %s</p>\n", H(files[i]), H(ver),
              H(commit), H(date), H(cpu), H(gpu));
      fprintf(r.md, "- %s: qcal %s (%s), %s, CPU %s, GPU %s\n", M(files[i]), M(ver), M(commit),
              M(date), M(cpu), M(gpu));
    }
    fprintf(r.md, "\n");
  }
  for (int i = 0; i < nfiles && st == QCAL_OK; i++) {
    if (qcal_results_has(&f[i], QCAL_TABLE_RESULTS))
      st = sweep_figures(&r, &f[i]);
    if (st == QCAL_OK)
      st = gemm_figures(&r, &f[i]);
    if (st == QCAL_OK)
      st = stream_figures(&r, &f[i]);
    if (st == QCAL_OK)
      st = qcal_rep_zoo(&r, &f[i]);
    if (st == QCAL_OK)
      st = qcal_rep_model_bench(&r, &f[i]);
    if (st == QCAL_OK)
      st = qcal_rep_architectures(&r, &f[i]);
    if (st == QCAL_OK)
      st = qcal_rep_qat(&r, &f[i]);
  }
  if (st == QCAL_OK && r.figs == 0)
    st = qcal_error(QCAL_EFORMAT, "%s: no figure could be drawn from the given files", files[0]);
  if (r.html) {
    fprintf(r.html,
            "<p>%d figures, each as PNG and SVG, with their gnuplot scripts and data files beside "
            "them.</p>\n</body></html>\n",
            r.figs);
    if (fclose(r.html) != 0 && st == QCAL_OK)
      st = qcal_error(QCAL_EIO, "%s/index.html: write failed", tmp);
  }
  if (r.md && fclose(r.md) != 0 && st == QCAL_OK)
    st = qcal_error(QCAL_EIO, "%s/summary.md: write failed", tmp);
  for (int k = 0; k < nfiles; k++)
    qcal_results_close(&f[k]);
  if (st == QCAL_OK) {
    FILE *m = qcal_rep_open(&r, MARKER);
    if (!m || fputs("written by qcal report; qcal replaces this folder as a whole\n", m) < 0)
      st = qcal_error(QCAL_EIO, "%s: cannot write %s", tmp, MARKER);
    if (m)
      fclose(m);
  }
  /* into place: swap with an earlier report atomically, then delete it */
  if (st == QCAL_OK) {
    if (!exists) {
      if (rename(tmp, dir) != 0)
        st =
            qcal_error(QCAL_EIO, "%s: cannot move the report into place: %s", dir, strerror(errno));
    } else if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) != 0) {
      char old[4300];
      snprintf(old, sizeof old, "%s.old.%ld", dir, (long)getpid());
      if (rename(dir, old) != 0 || rename(tmp, dir) != 0) {
        st =
            qcal_error(QCAL_EIO, "%s: cannot move the report into place: %s", dir, strerror(errno));
        rename(old, dir);
      } else {
        rm_tree(old);
      }
    }
  }
  rm_tree(tmp); /* the failed report, or the earlier one after the swap */
  if (st != QCAL_OK)
    return st;
  out->figures = r.figs;
  snprintf(out->html, sizeof out->html, "%s/index.html", dir);
  snprintf(out->md, sizeof out->md, "%s/summary.md", dir);
  return QCAL_OK;
}
