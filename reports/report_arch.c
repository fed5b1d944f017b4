/* The architecture benchmark's section (table /architectures, written by
 * scripts/bench-architectures.sh): FP32 against ONNX Runtime and INT8
 * against FP32 per network, with their geometric means, and one figure of
 * both ratios. */
#include <math.h>

#include "qcal/metrics.h"
#include "reports/report_internal.h"

#define MAX_ARCH_ROWS 1000

/* Geometric mean of the finite positive values of column c. */
static double geomean(const qcal_table *t, int c) {
  double s = 0;
  int n = 0;
  for (size_t i = 0; i < qcal_table_rows(t); i++) {
    double v = qcal_table_get_f(t, (long)i, c);
    if (isfinite(v) && v > 0)
      s += log(v), n++;
  }
  return n ? exp(s / n) : NAN;
}

static void ratio_text(double v, char *buf, size_t cap) {
  snprintf(buf, cap, isfinite(v) ? "%.2fx" : "-", v);
}

static qcal_status arch_figure(rep *r, const qcal_table *t) {
  FILE *d = qcal_rep_open(r, "architectures.dat"), *gp = qcal_rep_open(r, "architectures.gp");
  if (d && gp) {
    for (size_t i = 0; i < qcal_table_rows(t); i++) {
      long k = (long)i;
      fprintf(d, "%zu \"%s\" %.4f %.4f\n", i,
              D(qcal_table_get_s(t, k, QCAL_COL(ARCHITECTURES, model))),
              qcal_table_get_f(t, k, QCAL_COL(ARCHITECTURES, fp32_vs_ort)),
              qcal_table_get_f(t, k, QCAL_COL(ARCHITECTURES, int8_speedup)));
    }
    qcal_rep_terms(gp, "architectures", 1000, 460,
                   "set title 'torchvision architectures: qcal FP32 / ONNX Runtime FP32 (lower is "
                   "better), INT8 speed-up over FP32 (higher is better)'\n"
                   "set ylabel 'ratio'\nset yrange [0:*]\nset style data histograms\n"
                   "set style fill solid 0.6\nset boxwidth 0.8\nset key top left\n"
                   "set xtics rotate by 40 right\nset grid ytics\n"
                   "plot 'architectures.dat' using 3:xtic(2) title 'qcal FP32 / ORT FP32', "
                   "'' using 4 title 'INT8 speed-up over FP32', 1 with lines dt 2 notitle");
  }
  if (d)
    fclose(d);
  if (gp)
    fclose(gp);
  qcal_status st = d && gp ? qcal_rep_gnuplot(r, "architectures.gp", 1)
                           : qcal_error(QCAL_EIO, "%s: cannot write architectures.gp", r->dir);
  if (!st)
    qcal_rep_figure(r, "architectures", "torchvision architectures",
                    "Per network: qcal's FP32 time over ONNX Runtime's, and the INT8 engine's "
                    "speed-up over FP32 on the model qcal quantize wrote.");
  return st;
}

qcal_status qcal_rep_architectures(rep *r, qcal_results *f) {
  if (!qcal_results_has(f, QCAL_TABLE_ARCHITECTURES))
    return QCAL_OK;
  qcal_table *t = NULL;
  qcal_status st = qcal_results_read(f, QCAL_TABLE_ARCHITECTURES, &t);
  if (!st && qcal_table_rows(t) > MAX_ARCH_ROWS)
    st =
        qcal_error(QCAL_EFORMAT, "%s: /architectures holds more rows than a report draws", f->path);
  if (st) {
    qcal_table_free(t);
    return st;
  }
  fprintf(r->html,
          "<h2>torchvision architectures: %s</h2>\n<table><tr><th>network</th><th>family</th>"
          "<th>threads</th><th>qcal FP32 ms</th><th>ORT FP32 ms</th><th>qcal/ORT</th>"
          "<th>INT8 ms</th><th>INT8/FP32 speed-up</th><th>INT8 vs Q/DQ dB</th></tr>\n",
          H(f->path));
  fprintf(r->md,
          "## torchvision architectures (%s)\n\n| network | family | threads | qcal FP32 ms | ORT "
          "FP32 ms | qcal/ORT | INT8 ms | INT8/FP32 speed-up | INT8 vs Q/DQ dB |\n"
          "|---|---|---|---|---|---|---|---|---|\n",
          M(f->path));
  for (size_t i = 0; i < qcal_table_rows(t); i++) {
    long k = (long)i;
    char vo[32], sp[32], db[32];
    ratio_text(qcal_table_get_f(t, k, QCAL_COL(ARCHITECTURES, fp32_vs_ort)), vo, sizeof vo);
    ratio_text(qcal_table_get_f(t, k, QCAL_COL(ARCHITECTURES, int8_speedup)), sp, sizeof sp);
    qcal_db_text(qcal_table_get_f(t, k, QCAL_COL(ARCHITECTURES, int8_vs_qdq_db)), db, sizeof db);
    const char *m = qcal_table_get_s(t, k, QCAL_COL(ARCHITECTURES, model)),
               *fam = qcal_table_get_s(t, k, QCAL_COL(ARCHITECTURES, family));
    long long th = (long long)qcal_table_get_i(t, k, QCAL_COL(ARCHITECTURES, threads));
    double f32 = 1e3 * qcal_table_get_f(t, k, QCAL_COL(ARCHITECTURES, fp32_seconds)),
           ort = 1e3 * qcal_table_get_f(t, k, QCAL_COL(ARCHITECTURES, ort_fp32_seconds)),
           i8 = 1e3 * qcal_table_get_f(t, k, QCAL_COL(ARCHITECTURES, int8_seconds));
    fprintf(r->html,
            "<tr><td>%s</td><td>%s</td><td>%lld</td><td>%.2f</td><td>%.2f</td><td>%s</td>"
            "<td>%.2f</td><td>%s</td><td>%s</td></tr>\n",
            H(m), H(fam), th, f32, ort, vo, i8, sp, db);
    fprintf(r->md, "| %s | %s | %lld | %.2f | %.2f | %s | %.2f | %s | %s |\n", M(m), M(fam), th,
            f32, ort, vo, i8, sp, db);
  }
  char gv[32], gs[32];
  ratio_text(geomean(t, QCAL_COL(ARCHITECTURES, fp32_vs_ort)), gv, sizeof gv);
  ratio_text(geomean(t, QCAL_COL(ARCHITECTURES, int8_speedup)), gs, sizeof gs);
  fprintf(r->html,
          "<tr><td><b>geometric mean</b></td><td></td><td></td><td></td><td></td><td>%s</td>"
          "<td></td><td>%s</td><td></td></tr>\n</table>\n",
          gv, gs);
  fprintf(r->md, "| geometric mean | | | | | %s | | %s | |\n\n", gv, gs);
  st = arch_figure(r, t);
  qcal_table_free(t);
  return st;
}
