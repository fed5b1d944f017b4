/* The report's zoo section (a networks x configurations heatmap of the worst
 * output SQNR and a recommended configuration per network) and its
 * whole-model benchmark section (latency per engine and per layer type). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "qcal/metrics.h"
#include "reports/report_internal.h"

#define MAX_ZOO_ROWS 1000000
#define MAX_NETS 256

/* Columns of the heatmap: weight bits, granularity, activation method. */
static const struct {
  int wbits;
  const char *wg, *act, *label;
} cols[] = {
    {8, "per-channel", "float", "W8 pc, A float"},   {8, "per-channel", "max", "W8 pc, max"},
    {8, "per-channel", "entropy", "W8 pc, entropy"}, {8, "per-channel", "mse", "W8 pc, mse"},
    {8, "per-channel", "pct99.99", "W8 pc, p99.99"}, {8, "per-tensor", "max", "W8 pt, max"},
    {8, "per-tensor", "entropy", "W8 pt, entropy"},  {8, "per-tensor", "mse", "W8 pt, mse"},
    {8, "per-tensor", "pct99.99", "W8 pt, p99.99"},  {4, "per-channel", "max", "W4 pc, max"},
    {4, "per-channel", "entropy", "W4 pc, entropy"}, {4, "per-channel", "mse", "W4 pc, mse"},
    {4, "per-channel", "pct99.99", "W4 pc, p99.99"}, {4, "per-tensor", "entropy", "W4 pt, entropy"},
};
#define NCOLS ((int)(sizeof cols / sizeof cols[0]))

static double cell(const qcal_table *z, const char *net, int c) {
  double w = NAN;
  for (size_t i = 0; i < qcal_table_rows(z); i++) {
    long r = (long)i;
    if (strcmp(qcal_table_get_s(z, r, QCAL_COL(ZOO, network)), net) ||
        qcal_table_get_i(z, r, QCAL_COL(ZOO, weight_bits)) != cols[c].wbits ||
        strcmp(qcal_table_get_s(z, r, QCAL_COL(ZOO, weight_granularity)), cols[c].wg) ||
        strcmp(qcal_table_get_s(z, r, QCAL_COL(ZOO, act_method)), cols[c].act))
      continue;
    double v = qcal_table_get_f(z, r, QCAL_COL(ZOO, sqnr_db));
    if (isnan(w) || v < w)
      w = v;
  }
  return w;
}

qcal_status qcal_rep_zoo(rep *r, qcal_results *f) {
  if (!qcal_results_has(f, QCAL_TABLE_ZOO) || !qcal_results_has(f, QCAL_TABLE_ZOO_NETWORKS))
    return QCAL_OK;
  qcal_table *z = NULL, *n = NULL;
  qcal_status st = qcal_results_read(f, QCAL_TABLE_ZOO, &z);
  if (!st)
    st = qcal_results_read(f, QCAL_TABLE_ZOO_NETWORKS, &n);
  if (!st && (qcal_table_rows(z) > MAX_ZOO_ROWS || qcal_table_rows(n) > MAX_NETS))
    st = qcal_error(QCAL_EFORMAT, "%s: the zoo tables hold more rows than a report draws", f->path);
  FILE *d = st ? NULL : qcal_rep_open(r, "zoo.dat");
  if (!st && !d)
    st = qcal_error(QCAL_EIO, "%s: cannot write zoo.dat", r->dir);
  if (st) {
    qcal_table_free(z), qcal_table_free(n);
    return st;
  }
  const size_t nn = qcal_table_rows(n);
  int drawn = 0;
  char ytics[16384] = "", b1[32], b2[32], b3[32], b4[32];
  size_t yu = 0;
  for (size_t i = 0; i < nn; i++) {
    const char *net = qcal_table_get_s(n, (long)i, QCAL_COL(ZOO_NETWORKS, network));
    if (strcmp(qcal_table_get_s(n, (long)i, QCAL_COL(ZOO_NETWORKS, status)), "ok"))
      continue;
    for (int c = 0; c < NCOLS; c++) {
      double v = cell(z, net, c);
      /* NaN (not run) as gnuplot's missing value; the colour scale clips */
      fprintf(d, "%d %d %s\n", c, drawn,
              isnan(v)   ? "NaN"
              : isinf(v) ? "60"
                         : qcal_db_text(v, b1, 32));
    }
    fprintf(d, "\n");
    if (yu < sizeof ytics - 200)
      yu += (size_t)snprintf(ytics + yu, sizeof ytics - yu, "%s'%s' %d", drawn ? ", " : "",
                             GN(net, 60), drawn);
    drawn++;
  }
  fclose(d);
  fprintf(r->html, "<h2>Model zoo: which networks survive post-training quantization</h2>\n");
  fprintf(r->md, "## Model zoo (%s)\n\n", M(f->path));
  if (drawn) {
    char xtics[4096] = "";
    size_t xu = 0;
    for (int c = 0; c < NCOLS; c++)
      xu += (size_t)snprintf(xtics + xu, sizeof xtics - xu, "%s'%s' %d", c ? ", " : "",
                             cols[c].label, c);
    FILE *gp = qcal_rep_open(r, "zoo.gp");
    if (!gp) {
      qcal_table_free(z), qcal_table_free(n);
      return qcal_error(QCAL_EIO, "%s: cannot write zoo.gp", r->dir);
    }
    static char plot[32768];
    snprintf(
        plot, sizeof plot,
        "set title 'Worst-output SQNR against FP32 (dB), held-out photos'\n"
        "set xtics (%s) rotate by 40 right\nset ytics (%s)\nset yrange [%d.5:-0.5]\n"
        "set xrange [-0.5:%d.5]\nset cbrange [0:50]\nset cblabel 'dB'\n"
        "set palette defined (0 '#b2182b', 20 '#f4a582', 30 '#fddbc7', 40 '#92c5de', 50 "
        "'#2166ac')\nset datafile missing 'NaN'\nunset key\n"
        "plot 'zoo.dat' using 1:2:3 with image pixels, '' using 1:2:(sprintf('%%.0f', $3)) with "
        "labels font 'sans,7'",
        xtics, ytics, drawn - 1, NCOLS - 1);
    qcal_rep_terms(gp, "zoo_heatmap", 1100, 160 + 22 * drawn, plot);
    fclose(gp);
    st = qcal_rep_gnuplot(r, "zoo.gp", 1);
    qcal_rep_figure(r, "zoo_heatmap", "Networks x configurations",
                    "Each cell is the network's worst output SQNR against FP32 over the held-out "
                    "photos: W8/W4 weight bits, pc/pt per channel/per tensor, then the activation "
                    "calibrator (8-bit activations). Red has collapsed (below 20 dB).");
  }
  fprintf(r->html, "<table><tr><th>network</th><th>best W8A8 dB</th><th>per-tensor dB</th>"
                   "<th>W4A8 dB</th><th>weights only dB</th><th>most sensitive layer</th>"
                   "<th>recommended</th></tr>\n");
  fprintf(r->md, "| network | best W8A8 dB | per-tensor dB | W4A8 dB | weights only dB | most "
                 "sensitive layer | recommended |\n|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < nn; i++) {
    long k = (long)i;
    const char *net = qcal_table_get_s(n, k, QCAL_COL(ZOO_NETWORKS, network));
    const char *status = qcal_table_get_s(n, k, QCAL_COL(ZOO_NETWORKS, status));
    if (strcmp(status, "ok")) {
      fprintf(r->html, "<tr><td>%s</td><td colspan=\"6\">%s</td></tr>\n", H(net), H(status));
      fprintf(r->md, "| %s | %s | | | | | |\n", M(net), M(status));
      continue;
    }
    qcal_db_text(qcal_table_get_f(n, k, QCAL_COL(ZOO_NETWORKS, best_sqnr_db)), b1, 32);
    qcal_db_text(qcal_table_get_f(n, k, QCAL_COL(ZOO_NETWORKS, per_tensor_sqnr_db)), b2, 32);
    qcal_db_text(qcal_table_get_f(n, k, QCAL_COL(ZOO_NETWORKS, w4_sqnr_db)), b3, 32);
    qcal_db_text(qcal_table_get_f(n, k, QCAL_COL(ZOO_NETWORKS, weights_only_sqnr_db)), b4, 32);
    const char *lay = qcal_table_get_s(n, k, QCAL_COL(ZOO_NETWORKS, sensitive_layer));
    const char *rec = qcal_table_get_s(n, k, QCAL_COL(ZOO_NETWORKS, recommended));
    fprintf(r->html,
            "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
            "</tr>\n",
            H(net), b1, b2, b3, b4, H(lay), H(rec));
    fprintf(r->md, "| %s | %s | %s | %s | %s | %s | %s |\n", M(net), b1, b2, b3, b4, M(lay),
            M(rec));
  }
  fprintf(r->html, "</table>\n");
  fprintf(r->md, "\n");
  qcal_table_free(z), qcal_table_free(n);
  return st;
}

qcal_status qcal_rep_model_bench(rep *r, qcal_results *f) {
  if (!qcal_results_has(f, QCAL_TABLE_MODEL_BENCH))
    return QCAL_OK;
  qcal_table *b = NULL, *l = NULL;
  qcal_status st = qcal_results_read(f, QCAL_TABLE_MODEL_BENCH, &b);
  if (!st && qcal_results_has(f, QCAL_TABLE_MODEL_LAYERS))
    st = qcal_results_read(f, QCAL_TABLE_MODEL_LAYERS, &l);
  if (!st && (qcal_table_rows(b) > MAX_ZOO_ROWS || (l && qcal_table_rows(l) > MAX_ZOO_ROWS)))
    st = qcal_error(QCAL_EFORMAT, "%s: the model tables hold more rows than a report draws",
                    f->path);
  if (st) {
    qcal_table_free(b), qcal_table_free(l);
    return st;
  }
  fprintf(r->html,
          "<h2>Whole-network latency: %s</h2>\n<table><tr><th>model</th><th>engine</th>"
          "<th>input</th><th>threads</th><th>median ms</th><th>min ms</th>"
          "<th>vs fp32</th><th>int8 vs qdq dB</th></tr>\n",
          H(f->path));
  fprintf(r->md,
          "## Whole-network latency (%s)\n\n| model | engine | input | threads | median ms "
          "| min ms | vs fp32 | int8 vs qdq dB |\n|---|---|---|---|---|---|---|---|\n",
          M(f->path));
  for (size_t i = 0; i < qcal_table_rows(b); i++) {
    long k = (long)i;
    char x[32], q[32];
    double sp = qcal_table_get_f(b, k, QCAL_COL(MODEL_BENCH, speedup_vs_fp32));
    snprintf(x, sizeof x, isnan(sp) ? "-" : "%.2fx", sp);
    qcal_db_text(qcal_table_get_f(b, k, QCAL_COL(MODEL_BENCH, sqnr_vs_qdq_db)), q, sizeof q);
    const char *m = qcal_table_get_s(b, k, QCAL_COL(MODEL_BENCH, model)),
               *e = qcal_table_get_s(b, k, QCAL_COL(MODEL_BENCH, engine)),
               *in = qcal_table_get_s(b, k, QCAL_COL(MODEL_BENCH, input_shape));
    long long th = (long long)qcal_table_get_i(b, k, QCAL_COL(MODEL_BENCH, threads));
    double med = 1e3 * qcal_table_get_f(b, k, QCAL_COL(MODEL_BENCH, median_seconds)),
           mn = 1e3 * qcal_table_get_f(b, k, QCAL_COL(MODEL_BENCH, min_seconds));
    fprintf(r->html,
            "<tr><td>%s</td><td>%s</td><td>%s</td><td>%lld</td><td>%.3f</td><td>%.3f</td>"
            "<td>%s</td><td>%s</td></tr>\n",
            H(m), H(e), H(in), th, med, mn, x, q);
    fprintf(r->md, "| %s | %s | %s | %lld | %.3f | %.3f | %s | %s |\n", M(m), M(e), M(in), th, med,
            mn, x, q);
  }
  fprintf(r->html, "</table>\n");
  fprintf(r->md, "\n");
  FILE *d = qcal_rep_open(r, "model_bench.dat"), *gp = qcal_rep_open(r, "model_bench.gp");
  if (d && gp) {
    for (size_t i = 0; i < qcal_table_rows(b); i++) {
      long k = (long)i;
      fprintf(d, "%zu \"%s %s\" %.4f\n", i, D(qcal_table_get_s(b, k, QCAL_COL(MODEL_BENCH, model))),
              D(qcal_table_get_s(b, k, QCAL_COL(MODEL_BENCH, engine))),
              1e3 * qcal_table_get_f(b, k, QCAL_COL(MODEL_BENCH, median_seconds)));
    }
    qcal_rep_terms(gp, "model_bench", 900, 420,
                   "set title 'Whole-network latency per engine (median)'\nset ylabel 'ms'\n"
                   "set yrange [0:*]\nset style fill solid 0.6\nset boxwidth 0.7\nunset key\n"
                   "set xtics rotate by 30 right\n"
                   "plot 'model_bench.dat' using 1:3:xtic(2) with boxes");
  }
  if (d)
    fclose(d);
  if (gp)
    fclose(gp);
  st = d && gp ? qcal_rep_gnuplot(r, "model_bench.gp", 1)
               : qcal_error(QCAL_EIO, "%s: cannot write model_bench.gp", r->dir);
  if (!st)
    qcal_rep_figure(r, "model_bench", "Whole-network latency",
                    "Median latency of each engine on each model (qcal bench-model).");
  if (!st && l && qcal_table_rows(l)) {
    fprintf(r->html, "<table><tr><th>model</th><th>engine</th><th>layer type</th><th>nodes</th>"
                     "<th>ms</th><th>share</th><th>vs fp32</th></tr>\n");
    fprintf(r->md, "| model | engine | layer type | nodes | ms | share | vs fp32 |\n"
                   "|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < qcal_table_rows(l); i++) {
      long k = (long)i;
      char x[32];
      double sp = qcal_table_get_f(l, k, QCAL_COL(MODEL_LAYERS, speedup_vs_fp32));
      snprintf(x, sizeof x, isnan(sp) ? "-" : "%.2fx", sp);
      const char *m = qcal_table_get_s(l, k, QCAL_COL(MODEL_LAYERS, model)),
                 *e = qcal_table_get_s(l, k, QCAL_COL(MODEL_LAYERS, engine)),
                 *t = qcal_table_get_s(l, k, QCAL_COL(MODEL_LAYERS, layer_type));
      long long nd = (long long)qcal_table_get_i(l, k, QCAL_COL(MODEL_LAYERS, nodes));
      double ms = 1e3 * qcal_table_get_f(l, k, QCAL_COL(MODEL_LAYERS, median_seconds)),
             sh = qcal_table_get_f(l, k, QCAL_COL(MODEL_LAYERS, share_percent));
      fprintf(r->html,
              "<tr><td>%s</td><td>%s</td><td>%s</td><td>%lld</td><td>%.3f</td><td>%.1f%%</td>"
              "<td>%s</td></tr>\n",
              H(m), H(e), H(t), nd, ms, sh, x);
      fprintf(r->md, "| %s | %s | %s | %lld | %.3f | %.1f%% | %s |\n", M(m), M(e), M(t), nd, ms, sh,
              x);
    }
    fprintf(r->html, "</table>\n");
    fprintf(r->md, "\n");
  }
  qcal_table_free(b), qcal_table_free(l);
  return st;
}
