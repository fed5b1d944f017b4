/* The QAT section (tables /qat and /qat_curves, written by qcal qat): per
 * network and configuration, test top-1 of FP32, the best PTQ calibration
 * and QAT; a figure of those bars per network and one of the training
 * curves (loss, and validation top-1 at each epoch's end). */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "qcal/qat.h"
#include "reports/report_internal.h"

#define MAX_QAT_ROWS 100000
#define MAX_NETS 16

static int nets_of(const qcal_table *t, int col, const char **nets) {
  int n = 0;
  for (size_t i = 0; i < qcal_table_rows(t); i++) {
    const char *v = qcal_table_get_s(t, (long)i, col);
    int k = 0;
    while (k < n && strcmp(nets[k], v))
      k++;
    if (k == n && n < MAX_NETS)
      nets[n++] = v;
  }
  return n;
}

/* A figure's files: STEM.dat for the data, STEM.gp for the script. */
typedef struct figure {
  char stem[64], dat[80];
  FILE *d, *gp;
} figure;

static void figure_open(rep *r, const char *kind, int idx, figure *f) {
  char gp_name[80];
  snprintf(f->stem, sizeof f->stem, "qat_%s_%d", kind, idx);
  snprintf(f->dat, sizeof f->dat, "%s.dat", f->stem);
  snprintf(gp_name, sizeof gp_name, "%s.gp", f->stem);
  f->d = qcal_rep_open(r, f->dat);
  f->gp = qcal_rep_open(r, gp_name);
}

/* Close the files; with a title, run gnuplot and add the figure (none:
 * nothing to draw). */
static qcal_status figure_finish(rep *r, figure *f, const char *title, const char *what) {
  char gp_name[80];
  snprintf(gp_name, sizeof gp_name, "%s.gp", f->stem);
  bool ok = f->d && f->gp;
  if (f->d)
    fclose(f->d);
  if (f->gp)
    fclose(f->gp);
  if (!title)
    return QCAL_OK;
  qcal_status st = ok ? qcal_rep_gnuplot(r, gp_name, 1)
                      : qcal_error(QCAL_EIO, "%s: cannot write %s", r->dir, gp_name);
  if (!st)
    qcal_rep_figure(r, f->stem, title, what);
  return st;
}

static qcal_status accuracy_figure(rep *r, const qcal_table *t, const char *net, int idx) {
  figure f;
  figure_open(r, "accuracy", idx, &f);
  FILE *d = f.d, *gp = f.gp;
  double fp32 = NAN, lo = 100;
  if (d) {
    for (size_t i = 0; i < qcal_table_rows(t); i++) {
      long k = (long)i;
      if (strcmp(qcal_table_get_s(t, k, QCAL_COL(QAT, net)), net) ||
          strcmp(qcal_table_get_s(t, k, QCAL_COL(QAT, stage)), "qat"))
        continue;
      qcal_qat_summary s = qcal_qat_summarize(t, k);
      fp32 = s.fp32;
      char label[96];
      snprintf(label, sizeof label, "W%lldA%lld %s", s.wb, s.ab, s.gran);
      fprintf(d, "\"%s\" %.4f %.4f\n", D(label), s.ptq, s.qat);
      lo = fmin(lo, fmin(isfinite(s.ptq) ? s.ptq : 100, isfinite(s.qat) ? s.qat : 100));
    }
  }
  if (gp) {
    char plot[2048];
    snprintf(plot, sizeof plot,
             "set title '%s: test top-1 after PTQ (best calibration) and QAT; dashed: FP32'\n"
             "set ylabel 'top-1 %%'\nset yrange [%.0f:100]\nset style data histograms\n"
             "set style histogram clustered gap 1\nset style fill solid 0.7\nset key bottom left\n"
             "set grid ytics\nset xtics rotate by 20 right\n"
             "plot '%s' using 2:xtic(1) title 'PTQ', '' using 3 title 'QAT', %.4f with lines "
             "dt 2 lw 2 title 'FP32'",
             GN(net, 200), fmax(0, floor(lo / 5) * 5 - 5), f.dat, isfinite(fp32) ? fp32 : 0.0);
    qcal_rep_terms(gp, f.stem, 900, 420, plot);
  }
  char title[300];
  snprintf(title, sizeof title, "QAT: %s", net);
  return figure_finish(
      r, &f, title,
      "Per bit width and weight granularity: test top-1 of the best PTQ calibration (by "
      "validation top-1) and of QAT started from it, against FP32.");
}

/* One data block per run (gnuplot index k): epoch, loss, validation top-1. */
static qcal_status curves_figure(rep *r, const qcal_table *c, const char *net, int idx) {
  figure f;
  figure_open(r, "curves", idx, &f);
  FILE *d = f.d, *gp = f.gp;
  const char *runs[MAX_NETS];
  int nruns = 0;
  for (size_t i = 0; d && i < qcal_table_rows(c); i++) {
    long k = (long)i;
    if (strcmp(qcal_table_get_s(c, k, QCAL_COL(QAT_CURVES, net)), net))
      continue;
    const char *run = qcal_table_get_s(c, k, QCAL_COL(QAT_CURVES, run));
    if (nruns == 0 || strcmp(runs[nruns - 1], run)) {
      if (nruns == MAX_NETS)
        break;
      if (nruns)
        fprintf(d, "\n\n");
      runs[nruns++] = run;
    }
    fprintf(d, "%.5f %.6f %.4f\n", qcal_table_get_f(c, k, QCAL_COL(QAT_CURVES, epoch)),
            qcal_table_get_f(c, k, QCAL_COL(QAT_CURVES, train_loss)),
            qcal_table_get_f(c, k, QCAL_COL(QAT_CURVES, val_top1)));
  }
  if (gp) {
    char plot[8192];
    int len = snprintf(plot, sizeof plot,
                       "set title '%s: training loss (lines) and validation top-1 (points, right "
                       "axis), FP32 and each QAT run'\nset xlabel 'epoch of the run'\n"
                       "set ylabel 'loss'\nset y2label 'validation top-1 %%'\nset y2tics\n"
                       "set ytics nomirror\nset key outside right\nset grid\nset datafile "
                       "missing 'nan'\nplot ",
                       GN(net, 200));
    for (int k = 0; k < nruns && len < (int)sizeof plot - 600; k++)
      len += snprintf(plot + len, sizeof plot - (size_t)len,
                      "%s'%s' index %d using 1:2 with lines lc %d title '%s', '' index %d using "
                      "1:3 axes x1y2 with points pt 7 lc %d notitle",
                      k ? ", " : "", f.dat, k, k + 1, GN(runs[k], 120), k, k + 1);
    qcal_rep_terms(gp, f.stem, 1000, 460, plot);
  }
  char title[300];
  snprintf(title, sizeof title, "Training curves: %s", net);
  return figure_finish(
      r, &f, nruns ? title : NULL,
      "Mean training loss over each eighth of an epoch and validation top-1 at each "
      "epoch's end, for the FP32 training and every QAT run.");
}

/* Every stage and configuration, as measured (test and validation top-1). */
static void every_row(rep *r, const qcal_table *t) {
  fprintf(r->html, "<h3>Every configuration</h3>\n<table><tr><th>network</th><th>stage</th>"
                   "<th>bits</th><th>weights</th><th>calibrator</th><th>test top-1</th>"
                   "<th>validation top-1</th><th>best</th></tr>\n");
  fprintf(r->md, "Every configuration:\n\n| network | stage | bits | weights | calibrator | test "
                 "top-1 | validation top-1 | best |\n|---|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < qcal_table_rows(t); i++) {
    long k = (long)i;
    const char *net = qcal_table_get_s(t, k, QCAL_COL(QAT, net)),
               *stage = qcal_table_get_s(t, k, QCAL_COL(QAT, stage)),
               *gran = qcal_table_get_s(t, k, QCAL_COL(QAT, granularity)),
               *method = qcal_table_get_s(t, k, QCAL_COL(QAT, method));
    long long wb = (long long)qcal_table_get_i(t, k, QCAL_COL(QAT, bits)),
              ab = (long long)qcal_table_get_i(t, k, QCAL_COL(QAT, act_bits));
    double top1 = qcal_table_get_f(t, k, QCAL_COL(QAT, top1)),
           val = qcal_table_get_f(t, k, QCAL_COL(QAT, val_top1));
    const char *best = qcal_table_get_i(t, k, QCAL_COL(QAT, best)) ? "yes" : "";
    fprintf(r->html,
            "<tr><td>%s</td><td>%s</td><td>W%lldA%lld</td><td>%s</td><td>%s</td><td>%.2f%%</td>"
            "<td>%.2f%%</td><td>%s</td></tr>\n",
            H(net), H(stage), wb, ab, H(gran), H(method), top1, val, best);
    fprintf(r->md, "| %s | %s | W%lldA%lld | %s | %s | %.2f%% | %.2f%% | %s |\n", M(net), M(stage),
            wb, ab, M(gran), M(method), top1, val, best);
  }
  fprintf(r->html, "</table>\n");
  fprintf(r->md, "\n");
}

static qcal_status read_both(qcal_results *f, qcal_table **t, qcal_table **c) {
  QCAL_TRY(qcal_results_read(f, QCAL_TABLE_QAT, t));
  if (qcal_results_has(f, QCAL_TABLE_QAT_CURVES))
    QCAL_TRY(qcal_results_read(f, QCAL_TABLE_QAT_CURVES, c));
  if (qcal_table_rows(*t) > MAX_QAT_ROWS || (*c && qcal_table_rows(*c) > MAX_QAT_ROWS))
    return qcal_error(QCAL_EFORMAT, "%s: /qat holds more rows than a report draws", f->path);
  return QCAL_OK;
}

qcal_status qcal_rep_qat(rep *r, qcal_results *f) {
  if (!qcal_results_has(f, QCAL_TABLE_QAT))
    return QCAL_OK;
  qcal_table *t = NULL, *c = NULL;
  qcal_status st = read_both(f, &t, &c);
  if (!st) {
    fprintf(r->html,
            "<h2>Quantization-aware training: %s</h2>\n<table><tr><th>network</th><th>bits</th>"
            "<th>weights</th><th>FP32</th><th>best PTQ</th><th>QAT</th></tr>\n",
            H(f->path));
    fprintf(r->md,
            "## Quantization-aware training (%s)\n\n| network | bits | weights | FP32 | best PTQ "
            "| QAT |\n|---|---|---|---|---|---|\n",
            M(f->path));
    for (size_t i = 0; i < qcal_table_rows(t); i++) {
      long k = (long)i;
      if (strcmp(qcal_table_get_s(t, k, QCAL_COL(QAT, stage)), "qat"))
        continue;
      qcal_qat_summary s = qcal_qat_summarize(t, k);
      fprintf(r->html,
              "<tr><td>%s</td><td>W%lldA%lld</td><td>%s</td><td>%.2f%%</td><td>%.2f%%</td>"
              "<td>%.2f%%</td></tr>\n",
              H(s.net), s.wb, s.ab, H(s.gran), s.fp32, s.ptq, s.qat);
      fprintf(r->md, "| %s | W%lldA%lld | %s | %.2f%% | %.2f%% | %.2f%% |\n", M(s.net), s.wb, s.ab,
              M(s.gran), s.fp32, s.ptq, s.qat);
    }
    fprintf(r->html, "</table>\n");
    fprintf(r->md, "\n");
    every_row(r, t);
    const char *nets[MAX_NETS];
    int n = nets_of(t, QCAL_COL(QAT, net), nets);
    for (int k = 0; k < n && !st; k++) {
      st = accuracy_figure(r, t, nets[k], k);
      if (!st && c)
        st = curves_figure(r, c, nets[k], k);
    }
  }
  qcal_table_free(t);
  qcal_table_free(c);
  return st;
}
