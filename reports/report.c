/* qcal report: figures through gnuplot (a script and a data file per figure,
 * PNG via pngcairo and SVG, noenhanced text), a static HTML page and a
 * Markdown summary. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qcal/calib.h"
#include "qcal/report.h"
#include "qcal/results.h"

typedef struct {
  const char *dir;
  FILE *html, *md;
  int figs;
} rep;

static FILE *openf(const rep *r, const char *name) {
  char p[4400];
  snprintf(p, sizeof p, "%s/%s", r->dir, name);
  return fopen(p, "w");
}

/* PNG then SVG of the same plot commands. */
static void terms(FILE *gp, const char *stem, int w, int h, const char *plot) {
  fprintf(gp,
          "set terminal pngcairo noenhanced size %d,%d font 'sans,10'\nset output '%s.png'\n%s\n",
          w, h, stem, plot);
  fprintf(gp,
          "set terminal svg noenhanced size %d,%d font 'sans,10' background '#ffffff'\nset output "
          "'%s.svg'\n%s\n",
          w, h, stem, plot);
  fprintf(gp, "unset arrow\nunset label\n");
}

static qcal_status run_gnuplot(rep *r, const char *script, int nfigs) {
  char cmd[9000];
  snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot '%s' > '%s.log' 2>&1", r->dir, script, script);
  int st = system(cmd);
  if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    return qcal_error(QCAL_EIO, "gnuplot failed on %s/%s (see %s/%s.log)", r->dir, script, r->dir,
                      script);
  r->figs += nfigs;
  return QCAL_OK;
}

static void figure_html(rep *r, const char *stem, const char *title, const char *what) {
  fprintf(r->html,
          "<figure><a href=\"%s.svg\"><img src=\"%s.svg\" alt=\"%s\"></a>"
          "<figcaption><b>%s.</b> %s</figcaption></figure>\n",
          stem, stem, title, title, what);
}

/* The /results row of (tensor, method label, granularity, bits), or -1.
 * Labels are the sweep's: max, entropy, mse, pct99.9, ... */
static long find_row(const qcal_table *res, long tensor, const char *label, const char *gran,
                     int bits) {
  int c_t = qcal_table_find(res, "tensor_id"), c_m = qcal_table_find(res, "method"),
      c_p = qcal_table_find(res, "percentile"), c_g = qcal_table_find(res, "granularity"),
      c_b = qcal_table_find(res, "bits");
  for (size_t i = 0; i < qcal_table_rows(res); i++) {
    long row = (long)i;
    if (qcal_table_get_i(res, row, c_t) != tensor || qcal_table_get_i(res, row, c_b) != bits ||
        strcmp(qcal_table_get_s(res, row, c_g), gran))
      continue;
    const char *m = qcal_table_get_s(res, row, c_m);
    char lab[32];
    if (!strcmp(m, "percentile"))
      snprintf(lab, sizeof lab, "pct%g", qcal_table_get_f(res, row, c_p));
    else
      snprintf(lab, sizeof lab, "%s", m);
    if (!strcmp(lab, label))
      return row;
  }
  return -1;
}

static double sqnr_of(const qcal_table *res, long tensor, const char *label, const char *gran,
                      int bits) {
  long row = find_row(res, tensor, label, gran, bits);
  return row < 0 ? NAN : qcal_table_get_f(res, row, qcal_table_find(res, "sqnr_db"));
}

static double amax_of(const qcal_table *res, long tensor, const char *label, int bits) {
  long row = find_row(res, tensor, label, "per-tensor", bits);
  return row < 0 ? NAN : qcal_table_get_f(res, row, qcal_table_find(res, "amax"));
}

/* 8 if swept, else the first bit width */
static int main_bits(const qcal_table *res) {
  int c_b = qcal_table_find(res, "bits");
  int b = qcal_table_rows(res) ? (int)qcal_table_get_i(res, 0, c_b) : 8;
  for (size_t i = 0; i < qcal_table_rows(res); i++)
    if (qcal_table_get_i(res, (long)i, c_b) == 8)
      return 8;
  return b;
}

static qcal_status sweep_figures(rep *r, qcal_results *f) {
  qcal_table *res = qcal_results_table(f, "results"), *ten = qcal_results_table(f, "tensors");
  if (!res || !ten) {
    qcal_table_free(res), qcal_table_free(ten);
    return qcal_error(QCAL_EFORMAT, "%s: no sweep tables", f->path);
  }
  const int bits = main_bits(res);
  const int k_name = qcal_table_find(ten, "name"), k_kind = qcal_table_find(ten, "kind"),
            k_op = qcal_table_find(ten, "op"), k_layer = qcal_table_find(ten, "layer");
  const long nt = (long)qcal_table_rows(ten);
  qcal_status st = QCAL_OK;
  fprintf(r->html, "<h2>Calibration sweep: %s</h2>\n", f->path);

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
  for (long t = 0; t < nt; t++) {
    if (strcmp(qcal_table_get_s(ten, t, k_kind), "weight"))
      continue;
    long a = -1;
    for (long u = 0; u < nt; u++)
      if (!strcmp(qcal_table_get_s(ten, u, k_kind), "activation") &&
          qcal_table_get_i(ten, u, k_layer) == qcal_table_get_i(ten, t, k_layer))
        a = u;
    double bw = -INFINITY, ba = -INFINITY;
    char lw[48] = "-", la[32] = "-";
    for (int m = 0; m < QCAL_METHOD_CONFIG_COUNT; m++)
      for (int g = 0; g < 2; g++) {
        double v =
            sqnr_of(res, t, qcal_method_configs[m].label, g ? "per-channel" : "per-tensor", bits);
        if (v > bw)
          bw = v, snprintf(lw, sizeof lw, "%s / %s", qcal_method_configs[m].label,
                           g ? "per-channel" : "per-tensor");
      }
    for (int m = 0; a >= 0 && m < QCAL_METHOD_CONFIG_COUNT; m++) {
      double v = sqnr_of(res, a, qcal_method_configs[m].label, "per-tensor", bits);
      if (v > ba)
        ba = v, snprintf(la, sizeof la, "%s", qcal_method_configs[m].label);
    }
    char lname[256];
    snprintf(lname, sizeof lname, "%s", qcal_table_get_s(ten, t, k_name));
    char *sl = strchr(lname, '/');
    if (sl)
      *sl = '\0';
    const char *op = qcal_table_get_s(ten, t, k_op);
    double pt = sqnr_of(res, t, "max", "per-tensor", bits),
           pc = sqnr_of(res, t, "max", "per-channel", bits);
    fprintf(r->html,
            "<tr%s><td>%s</td><td>%s</td><td>%s</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%s</"
            "td><td>%.2f</td></tr>\n",
            !strcmp(op, "depthwise") ? " class=\"dw\"" : "", lname, op, lw, bw, pt, pc, la, ba);
    fprintf(r->md, "| %s | %s | %s | %.2f | %.2f | %.2f | %s | %.2f |\n", lname, op, lw, bw, pt, pc,
            la, ba);
  }
  fprintf(r->html, "</table>\n");
  fprintf(r->md, "\n");

  /* 1. heatmaps */
  for (int kind = 0; kind < 2 && st == QCAL_OK; kind++) {
    const char *k = kind ? "activation" : "weight", *gran = kind ? "per-tensor" : "per-channel";
    char dat[80], stem[64];
    snprintf(stem, sizeof stem, "heatmap_%ss", k);
    snprintf(dat, sizeof dat, "%s.dat", stem);
    FILE *d = openf(r, dat), *gp = NULL;
    char ytics[16384] = "";
    size_t yu = 0;
    int rows = 0, total = 0;
    for (long t = 0; t < nt; t++)
      total += !strcmp(qcal_table_get_s(ten, t, k_kind), k);
    for (long t = 0; t < nt && d; t++) { /* the first layer on top */
      if (strcmp(qcal_table_get_s(ten, t, k_kind), k))
        continue;
      int y = total - 1 - rows;
      for (int m = 0; m < QCAL_METHOD_CONFIG_COUNT; m++)
        fprintf(d, "%d %d %.4f\n", m, y, sqnr_of(res, t, qcal_method_configs[m].label, gran, bits));
      fprintf(d, "\n");
      if (yu < sizeof ytics - 300)
        yu += (size_t)snprintf(ytics + yu, sizeof ytics - yu, "%s\"%s\" %d", rows ? ", " : "",
                               qcal_table_get_s(ten, t, k_name), y);
      rows++;
    }
    if (d)
      fclose(d);
    if (!rows)
      continue;
    char gpn[80], plot[20000];
    snprintf(gpn, sizeof gpn, "%s.gp", stem);
    gp = openf(r, gpn);
    if (!gp)
      return qcal_error(QCAL_EIO, "%s: cannot write %s", r->dir, gpn);
    snprintf(plot, sizeof plot,
             "set title '%s SQNR (dB), %d-bit, %s'\nset xtics ('max' 0, 'entropy' 1, 'mse' 2, "
             "'pct99.9' 3, 'pct99.99' 4, 'pct99.999' 5)\n"
             "set ytics (%s)\nset yrange [-0.5:%d.5]\nset xrange [-0.5:5.5]\nset palette defined "
             "(0 '#b2182b', 0.5 '#f7f7f7', 1 '#2166ac')\n"
             "set cblabel 'SQNR dB'\nplot '%s' using 1:2:3 with image notitle, '' using "
             "1:2:(sprintf('%%.1f',$3)) with labels font 'sans,7' notitle",
             k, bits, gran, ytics, rows - 1, dat);
    terms(gp, stem, 900, 120 + 18 * rows, plot);
    fclose(gp);
    if ((st = run_gnuplot(r, gpn, 1)) != QCAL_OK)
      break;
    char what[256];
    snprintf(what, sizeof what,
             "Every layer (rows) by every method (columns): the %s %s SQNR on %s data.", gran, k,
             kind ? "held-out" : "the same");
    figure_html(r, stem, kind ? "Activations: layers x methods" : "Weights: layers x methods",
                what);
  }

  /* 2. per-tensor vs per-channel weights */
  if (st == QCAL_OK) {
    FILE *d = openf(r, "granularity.dat");
    int n = 0;
    for (long t = 0; t < nt && d; t++) {
      if (strcmp(qcal_table_get_s(ten, t, k_kind), "weight"))
        continue;
      char lname[256];
      snprintf(lname, sizeof lname, "%s", qcal_table_get_s(ten, t, k_name));
      char *sl = strchr(lname, '/');
      if (sl)
        *sl = '\0';
      int dw = !strcmp(qcal_table_get_s(ten, t, k_op), "depthwise");
      fprintf(d, "%d \"%s%s\" %.4f %.4f %d\n", n++, lname, dw ? " (dw)" : "",
              sqnr_of(res, t, "max", "per-tensor", bits),
              sqnr_of(res, t, "max", "per-channel", bits), dw ? 7 : 8);
    }
    if (d)
      fclose(d);
    if (n) {
      FILE *gp = openf(r, "granularity.gp");
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
      terms(gp, "granularity", 1100, 500, plot);
      fclose(gp);
      st = run_gnuplot(r, "granularity.gp", 1);
      figure_html(r, "granularity", "Per-tensor vs per-channel weights",
                  "Per-tensor weight quantization collapses on the BN-folded depthwise layers "
                  "(red), whose channel ranges differ by up to 80x; per-channel recovers them.");
    }
  }

  /* 3 + 4. histograms and the range-vs-rounding trade-off per tensor */
  FILE *gh = st == QCAL_OK ? openf(r, "histograms.gp") : NULL,
       *gt = gh ? openf(r, "tradeoff.gp") : NULL;
  int nh = 0;
  const double qmax = (double)((1 << (bits - 1)) - 1);
  fprintf(r->html,
          "<h3>Histograms of |x| and the range-vs-rounding trade-off</h3>\n<p>For every tensor: "
          "the |x| histogram (log scale) with each method's amax, and the clip / rounding / total "
          "error against amax (%d-bit), each method's choice marked. Click for the SVG.</p>\n<div "
          "class=\"grid\">\n",
          bits);
  for (long t = 0; t < nt && gh && gt; t++) {
    char path[64];
    snprintf(path, sizeof path, "/histograms/%ld/counts", t);
    uint64_t *cnt = NULL;
    float *edges = NULL;
    size_t nb = 0, ne = 0;
    if (qcal_results_u64(f, path, &cnt, &nb) != QCAL_OK) {
      st = QCAL_OK; /* a tensor without a histogram has no figure */
      continue;
    }
    snprintf(path, sizeof path, "/histograms/%ld/edges", t);
    if (qcal_results_f32(f, path, &edges, &ne) != QCAL_OK || ne != nb + 1) {
      free(cnt), free(edges);
      continue;
    }
    char dh[64], dt[64];
    snprintf(dh, sizeof dh, "hist_%ld.dat", t);
    snprintf(dt, sizeof dt, "tradeoff_%ld.dat", t);
    FILE *a = openf(r, dh), *b = openf(r, dt);
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
    char marks[2048] = "";
    size_t mu = 0;
    for (int m = 0; m < QCAL_METHOD_CONFIG_COUNT; m++) {
      double am = amax_of(res, t, qcal_method_configs[m].label, bits);
      if (!isfinite(am))
        continue;
      mu += (size_t)snprintf(
          marks + mu, sizeof marks - mu,
          "set arrow from %.8g, graph 0 to %.8g, graph 1 nohead lt %d lw 1.5\n"
          "set label '%s' at %.8g, graph %.2f rotate by 90 right font 'sans,8' tc lt %d\n",
          am, am, m + 1, qcal_method_configs[m].label, am, 0.97 - 0.1 * m, m + 1);
    }
    const char *name = qcal_table_get_s(ten, t, k_name);
    char stem[64], plot[4096];
    snprintf(stem, sizeof stem, "hist_%ld", t);
    snprintf(plot, sizeof plot,
             "%sset title '%s: histogram of |x|'\nset format y '%%g'\nset logscale y\nset xlabel "
             "'|x|'\nset ylabel 'count'\n"
             "plot '%s' using 1:2 with impulses lc rgb '#555555' notitle\nunset logscale y\n",
             marks, name, dh);
    terms(gh, stem, 700, 400, plot);
    snprintf(stem, sizeof stem, "tradeoff_%ld", t);
    snprintf(plot, sizeof plot,
             "%sset title '%s: range vs rounding (%d-bit)'\nset format y '%%g'\nset logscale "
             "y\nset xlabel 'amax'\nset ylabel 'mean squared error'\nset key top center\n"
             "plot '%s' using 1:2 with lines lw 2 lc rgb '#d62728' title 'clip', '' using 1:3 with "
             "lines lw 2 lc rgb '#1f77b4' title 'rounding', "
             "'' using 1:4 with lines lw 3 lc rgb 'black' title 'total'\nunset logscale y\n",
             marks, name, bits, dt);
    terms(gt, stem, 700, 400, plot);
    fprintf(r->html,
            "<div><a href=\"hist_%ld.svg\"><img src=\"hist_%ld.png\" alt=\"histogram %s\"></a>"
            "<a href=\"tradeoff_%ld.svg\"><img src=\"tradeoff_%ld.png\" alt=\"trade-off "
            "%s\"></a><br>%s</div>\n",
            t, t, name, t, t, name, name);
    nh++;
  }
  fprintf(r->html, "</div>\n");
  if (gh)
    fclose(gh);
  if (gt)
    fclose(gt);
  if (st == QCAL_OK && nh) {
    st = run_gnuplot(r, "histograms.gp", nh);
    if (st == QCAL_OK)
      st = run_gnuplot(r, "tradeoff.gp", nh);
  }

  /* 5. SQNR against bits */
  if (st == QCAL_OK) {
    FILE *d = openf(r, "bits.dat");
    int c_b = qcal_table_find(res, "bits");
    int bl[16], nbits = 0;
    for (size_t i = 0; i < qcal_table_rows(res) && nbits < 16; i++) {
      int b = (int)qcal_table_get_i(res, (long)i, c_b), seen = 0;
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
        for (long t = 0; t < nt; t++) {
          const char *kind = qcal_table_get_s(ten, t, k_kind);
          double v = sqnr_of(res, t, qcal_method_configs[m].label, "per-tensor", bl[k]);
          if (strcmp(kind, "weight") && isfinite(v))
            s += v, n++;
        }
        fprintf(d, " %.4f", n ? s / n : NAN);
      }
      fprintf(d, "\n");
    }
    if (d)
      fclose(d);
    FILE *gp = openf(r, "bits.gp");
    char plot[2048], labels[256] = "";
    for (int m = 0; m < QCAL_METHOD_CONFIG_COUNT; m++)
      snprintf(labels + strlen(labels), sizeof labels - strlen(labels), "%s%s", m ? " " : "",
               qcal_method_configs[m].label);
    snprintf(
        plot, sizeof plot,
        "set title 'Mean per-tensor SQNR of activations and test tensors against bit "
        "width'\nset xlabel 'bits'\nset ylabel 'SQNR dB'\nset key top left\n"
        "plot for [m=2:%d] 'bits.dat' using 1:m with linespoints lw 2 pt 7 title word('%s', m-1)",
        QCAL_METHOD_CONFIG_COUNT + 1, labels);
    terms(gp, "bits", 800, 450, plot);
    fclose(gp);
    st = run_gnuplot(r, "bits.gp", 1);
    figure_html(r, "bits", "SQNR against bits",
                nbits > 1
                    ? "About 6 dB per bit while rounding dominates; the methods separate where "
                      "clipping matters."
                    : "Only one bit width was swept (qcal sweep --bits 2-8 draws the curve).");
  }

  /* 6. end to end and sensitivity */
  qcal_table *e2e = qcal_results_table(f, "e2e"), *sens = qcal_results_table(f, "sensitivity");
  if (st == QCAL_OK && e2e && qcal_table_rows(e2e)) {
    int c_a = qcal_table_find(e2e, "act_method"), c_w = qcal_table_find(e2e, "weight_granularity"),
        c_h = qcal_table_find(e2e, "heatmap_sqnr_db"), c_o = qcal_table_find(e2e, "offset_sqnr_db"),
        c_k = qcal_table_find(e2e, "keypoint_agreement"),
        c_kc = qcal_table_find(e2e, "keypoint_agreement_confident");
    FILE *d = openf(r, "e2e.dat");
    fprintf(
        r->html,
        "<h3>End to end on the held-out "
        "photos</h3>\n<table><tr><th>activations</th><th>weights</th><th>heatmap dB</th><th>offset "
        "dB</th><th>keypoints (all)</th><th>keypoints (confident)</th></tr>\n");
    fprintf(r->md, "## End to end (held-out photos)\n\n| activations | weights | heatmap dB | "
                   "offset dB | keypoints | confident |\n|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < qcal_table_rows(e2e); i++) {
      long row = (long)i;
      fprintf(d, "%zu \"%s / %s\" %.4f %.4f %.4f %.4f\n", i, qcal_table_get_s(e2e, row, c_a),
              qcal_table_get_s(e2e, row, c_w), qcal_table_get_f(e2e, row, c_h),
              qcal_table_get_f(e2e, row, c_o), 100 * qcal_table_get_f(e2e, row, c_k),
              c_kc >= 0 ? 100 * qcal_table_get_f(e2e, row, c_kc) : NAN);
      fprintf(r->html,
              "<tr><td>%s</td><td>%s</td><td>%.2f</td><td>%.2f</td><td>%.1f%%</td><td>%.1f%%</td></"
              "tr>\n",
              qcal_table_get_s(e2e, row, c_a), qcal_table_get_s(e2e, row, c_w),
              qcal_table_get_f(e2e, row, c_h), qcal_table_get_f(e2e, row, c_o),
              100 * qcal_table_get_f(e2e, row, c_k),
              c_kc >= 0 ? 100 * qcal_table_get_f(e2e, row, c_kc) : NAN);
      fprintf(r->md, "| %s | %s | %.2f | %.2f | %.1f%% | %.1f%% |\n",
              qcal_table_get_s(e2e, row, c_a), qcal_table_get_s(e2e, row, c_w),
              qcal_table_get_f(e2e, row, c_h), qcal_table_get_f(e2e, row, c_o),
              100 * qcal_table_get_f(e2e, row, c_k),
              c_kc >= 0 ? 100 * qcal_table_get_f(e2e, row, c_kc) : NAN);
    }
    fprintf(r->html, "</table>\n");
    fprintf(r->md, "\n");
    fclose(d);
    FILE *gp = openf(r, "e2e.gp");
    const char *plot =
        "set title 'End to end vs FP32: output SQNR (bars) and keypoint agreement (points, right "
        "axis)'\n"
        "set ylabel 'SQNR dB'\nset y2label 'agreement %'\nset y2range [0:105]\nset y2tics\nset "
        "xtics rotate by -60 font 'sans,8'\n"
        "set style fill solid 0.8\nset boxwidth 0.35\nset key outside bottom center horizontal\n"
        "plot 'e2e.dat' using ($1-0.18):3:xtic(2) with boxes lc rgb '#1f77b4' title 'heatmap "
        "SQNR', "
        "'' using ($1+0.18):4 with boxes lc rgb '#ff7f0e' title 'offset SQNR', "
        "'' using 1:5 axes x1y2 with points pt 7 ps 1.2 lc rgb 'black' title 'keypoints (all)', "
        "'' using 1:6 axes x1y2 with points pt 9 ps 1.4 lc rgb '#2ca02c' title 'keypoints "
        "(confident)'";
    terms(gp, "e2e", 1100, 550, plot);
    fclose(gp);
    st = run_gnuplot(r, "e2e.gp", 1);
    figure_html(r, "e2e", "End-to-end PTQ fidelity",
                "The network with fake-quant at every convolution input and weight, against FP32 "
                "on the held-out photos.");
  }
  if (st == QCAL_OK && sens && qcal_table_rows(sens)) {
    int c_l = qcal_table_find(sens, "layer"), c_n = qcal_table_find(sens, "layer_name"),
        c_w = qcal_table_find(sens, "weight_granularity"),
        c_h = qcal_table_find(sens, "heatmap_sqnr_db"), c_op = qcal_table_find(sens, "op");
    FILE *d = openf(r, "sensitivity.dat");
    for (size_t i = 0; i < qcal_table_rows(sens); i++) {
      long row = (long)i;
      if (strcmp(qcal_table_get_s(sens, row, c_w), "per-tensor"))
        continue;
      double pc = NAN;
      for (size_t j = 0; j < qcal_table_rows(sens); j++)
        if (qcal_table_get_i(sens, (long)j, c_l) == qcal_table_get_i(sens, row, c_l) &&
            !strcmp(qcal_table_get_s(sens, (long)j, c_w), "per-channel"))
          pc = qcal_table_get_f(sens, (long)j, c_h);
      fprintf(d, "%lld \"%s%s\" %.4f %.4f\n", (long long)qcal_table_get_i(sens, row, c_l),
              qcal_table_get_s(sens, row, c_n),
              !strcmp(qcal_table_get_s(sens, row, c_op), "depthwise") ? " (dw)" : "",
              qcal_table_get_f(sens, row, c_h), pc);
    }
    fclose(d);
    FILE *gp = openf(r, "sensitivity.gp");
    const char *plot =
        "set title 'Per-layer sensitivity: heatmap SQNR when only that layer is quantized (entropy "
        "activations, max weights)'\n"
        "set ylabel 'heatmap SQNR dB'\nset xtics rotate by -60 font 'sans,8'\nset style fill solid "
        "0.8\nset boxwidth 0.4\nset key top left\n"
        "plot 'sensitivity.dat' using ($1-0.2):3:xtic(2) with boxes lc rgb '#d62728' title "
        "'per-tensor weights', "
        "'' using ($1+0.2):4 with boxes lc rgb '#1f77b4' title 'per-channel weights'";
    terms(gp, "sensitivity", 1100, 500, plot);
    fclose(gp);
    st = run_gnuplot(r, "sensitivity.gp", 1);
    figure_html(r, "sensitivity", "Per-layer sensitivity",
                "Lower bars are the layers whose quantization hurts the output most.");
  }
  qcal_table_free(e2e), qcal_table_free(sens);
  qcal_table_free(res), qcal_table_free(ten);
  return st;
}

static qcal_status gemm_figures(rep *r, qcal_results *f) {
  qcal_table *g = qcal_results_table(f, "gemm"), *pk = qcal_results_table(f, "peaks");
  if (!g)
    return QCAL_OK;
  int c_e = qcal_table_find(g, "engine"), c_t = qcal_table_find(g, "type"),
      c_l = qcal_table_find(g, "shape"), c_m = qcal_table_find(g, "m"),
      c_g = qcal_table_find(g, "gops"), c_p = qcal_table_find(g, "peak_percent"),
      c_s = qcal_table_find(g, "status");
  const char *types[4] = {"f32", "bf16", "u8s8s32", "s8s8s32"};
  FILE *d = openf(r, "gemm.dat");
  fprintf(r->html,
          "<h2>GEMM throughput: "
          "%s</h2>\n<table><tr><th>engine</th><th>type</th><th>shape</th><th>GOPS</th><th>%% of "
          "peak</th><th>check</th></tr>\n",
          f->path);
  fprintf(r->md,
          "## GEMM (%s)\n\n| engine | type | shape | GOPS | %% peak | check "
          "|\n|---|---|---|---|---|---|\n",
          f->path);
  for (int t = 0; t < 4; t++) {
    fprintf(d, "# %s\n", types[t]);
    for (size_t i = 0; i < qcal_table_rows(g); i++) {
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
  for (size_t i = 0; i < qcal_table_rows(g); i++) {
    long row = (long)i;
    fprintf(r->html,
            "<tr><td>%s</td><td>%s</td><td>%s</td><td>%.1f</td><td>%.1f</td><td>%s</td></tr>\n",
            qcal_table_get_s(g, row, c_e), qcal_table_get_s(g, row, c_t),
            qcal_table_get_s(g, row, c_l), qcal_table_get_f(g, row, c_g),
            qcal_table_get_f(g, row, c_p), qcal_table_get_s(g, row, c_s));
    fprintf(r->md, "| %s | %s | %s | %.1f | %.1f | %s |\n", qcal_table_get_s(g, row, c_e),
            qcal_table_get_s(g, row, c_t), qcal_table_get_s(g, row, c_l),
            qcal_table_get_f(g, row, c_g), qcal_table_get_f(g, row, c_p),
            qcal_table_get_s(g, row, c_s));
  }
  fprintf(r->html, "</table>\n");
  fprintf(r->md, "\n");
  /* speedup int8 / f32 per square size */
  fprintf(d, "# speedup\n");
  for (size_t i = 0; i < qcal_table_rows(g); i++) {
    long row = (long)i;
    if (strcmp(qcal_table_get_s(g, row, c_t), "u8s8s32") ||
        !strstr(qcal_table_get_s(g, row, c_l), "^3"))
      continue;
    for (size_t j = 0; j < qcal_table_rows(g); j++)
      if (!strcmp(qcal_table_get_s(g, (long)j, c_t), "f32") &&
          !strcmp(qcal_table_get_s(g, (long)j, c_l), qcal_table_get_s(g, row, c_l)))
        fprintf(d, "%lld %.4f\n", (long long)qcal_table_get_i(g, row, c_m),
                qcal_table_get_f(g, row, c_g) / qcal_table_get_f(g, (long)j, c_g));
  }
  fclose(d);
  char peaks[1024] = "";
  size_t pu = 0;
  if (pk) {
    int p_u = qcal_table_find(pk, "unit"), p_g = qcal_table_find(pk, "gops");
    for (size_t i = 0; i < qcal_table_rows(pk); i++)
      pu += (size_t)snprintf(
          peaks + pu, sizeof peaks - pu, ", %.4f with lines dt 2 lw 2 title 'peak %s'",
          qcal_table_get_f(pk, (long)i, p_g), qcal_table_get_s(pk, (long)i, p_u));
  }
  FILE *gp = openf(r, "gemm.gp");
  char plot[4096];
  snprintf(plot, sizeof plot,
           "set title 'oneDNN GEMM throughput against the peak measured in the same run'\nset "
           "logscale x 2\nset xlabel 'M = N = K'\n"
           "set ylabel 'GOPS'\nset key outside right\nset yrange [0:*]\n"
           "plot for [i=0:3] 'gemm.dat' index i using 1:2 with linespoints lw 2 pt 7 title "
           "word('f32 bf16 u8s8s32 s8s8s32', i+1)%s",
           peaks);
  terms(gp, "gemm_gops", 1000, 500, plot);
  terms(gp, "gemm_speedup", 800, 400,
        "set title 'int8 (u8s8s32) / fp32 GEMM speed-up'\nset logscale x 2\nset xlabel 'M = N = "
        "K'\nset ylabel 'speed-up'\nset yrange [0:5]\n"
        "plot 'gemm.dat' index 4 using 1:2 with linespoints lw 2 pt 7 title 'measured', 4 with "
        "lines dt 2 title 'VNNI/FMA peak ratio'");
  fclose(gp);
  qcal_status st = run_gnuplot(r, "gemm.gp", 2);
  figure_html(r, "gemm_gops", "GEMM GOPS against size",
              "Each type with the register-resident peak of its instruction as a dashed line.");
  figure_html(r, "gemm_speedup", "INT8 over FP32", "The int8/fp32 GEMM speed-up by size.");
  qcal_table_free(g), qcal_table_free(pk);
  return st;
}

static qcal_status stream_figures(rep *r, qcal_results *f) {
  qcal_table *s = qcal_results_table(f, "stream");
  if (!s)
    return QCAL_OK;
  int c_k = qcal_table_find(s, "kernel"), c_n = qcal_table_find(s, "elements"),
      c_b = qcal_table_find(s, "bytes"), c_g = qcal_table_find(s, "gbps"),
      c_e = qcal_table_find(s, "engine"), c_p = qcal_table_find(s, "copy_percent"),
      c_x = qcal_table_find(s, "speedup_vs_fp32");
  int64_t nmax = 0;
  for (size_t i = 0; i < qcal_table_rows(s); i++)
    if (!strcmp(qcal_table_get_s(s, (long)i, c_e), "cpu") &&
        qcal_table_get_i(s, (long)i, c_n) > nmax)
      nmax = qcal_table_get_i(s, (long)i, c_n);
  double copy = 0;
  FILE *d = openf(r, "roofline.dat");
  fprintf(r->html,
          "<h2>Bandwidth-bound kernels: %s</h2>\n<p>At %lld elements (the largest "
          "size):</p>\n<table><tr><th>kernel</th><th>GB/s</th><th>%% of "
          "copy</th><th>int8/fp32</th></tr>\n",
          f->path, (long long)nmax);
  fprintf(
      r->md,
      "## Stream (%lld elements)\n\n| kernel | GB/s | %% copy | int8/fp32 |\n|---|---|---|---|\n",
      (long long)nmax);
  for (size_t i = 0; i < qcal_table_rows(s); i++) {
    long row = (long)i;
    if (strcmp(qcal_table_get_s(s, row, c_e), "cpu") || qcal_table_get_i(s, row, c_n) != nmax)
      continue;
    double bpe = qcal_table_get_f(s, row, c_b) / (double)nmax, gbs = qcal_table_get_f(s, row, c_g);
    if (!strcmp(qcal_table_get_s(s, row, c_k), "copy f32"))
      copy = gbs;
    /* one operation per element: intensity = 1 / bytes per element */
    fprintf(d, "%.6f %.6f \"%s\"\n", 1.0 / bpe, gbs / bpe, qcal_table_get_s(s, row, c_k));
    char x[32] = "";
    if (isfinite(qcal_table_get_f(s, row, c_x)))
      snprintf(x, sizeof x, "%.2fx", qcal_table_get_f(s, row, c_x));
    fprintf(r->html, "<tr><td>%s</td><td>%.2f</td><td>%.1f</td><td>%s</td></tr>\n",
            qcal_table_get_s(s, row, c_k), gbs, qcal_table_get_f(s, row, c_p), x);
    fprintf(r->md, "| %s | %.2f | %.1f | %.2f |\n", qcal_table_get_s(s, row, c_k), gbs,
            qcal_table_get_f(s, row, c_p), qcal_table_get_f(s, row, c_x));
  }
  fprintf(r->html, "</table>\n");
  fprintf(r->md, "\n");
  fclose(d);
  FILE *gp = openf(r, "roofline.gp");
  char plot[2048];
  snprintf(plot, sizeof plot,
           "set title 'Roofline of the stream kernels (largest size) against the measured STREAM "
           "copy (%.1f GB/s)'\n"
           "set logscale xy\nset xlabel 'elements per byte moved'\nset ylabel 'G elements / "
           "s'\nset key top left\nset xrange [0.05:1]\n"
           "plot %.6f*x with lines lw 2 lc rgb 'black' title 'bandwidth roof (copy)', "
           "'roofline.dat' using 1:2 with points pt 7 ps 1.5 lc rgb '#1f77b4' title 'kernels', "
           "'' using 1:2:3 with labels offset 1,0.6 left font 'sans,8' notitle",
           copy, copy);
  terms(gp, "roofline", 900, 550, plot);
  fclose(gp);
  qcal_status st = run_gnuplot(r, "roofline.gp", 1);
  figure_html(r, "roofline", "Stream roofline",
              "int8-to-int8 kernels move a quarter of the bytes and sit 4x further up the roof; "
              "conversions are capped by the bytes they still move.");
  qcal_table_free(s);
  return st;
}

static int have_gnuplot(void) {
  return system("command -v gnuplot >/dev/null 2>&1") == 0;
}

qcal_status qcal_report_build(const char *const *files, int nfiles, const char *dir,
                              qcal_report_out *out) {
  memset(out, 0, sizeof *out);
  if (!have_gnuplot())
    return qcal_error(QCAL_EUNSUPPORTED, "gnuplot is not installed (apt-get install gnuplot-nox)");
  qcal_results f[8];
  if (nfiles > 8)
    return qcal_error(QCAL_EINVAL, "at most 8 results files");
  for (int i = 0; i < nfiles; i++) {
    qcal_status st = qcal_results_open(&f[i], files[i]);
    if (st != QCAL_OK) {
      for (int k = 0; k < i; k++)
        qcal_results_close(&f[k]);
      return st;
    }
  }
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    for (int k = 0; k < nfiles; k++)
      qcal_results_close(&f[k]);
    return qcal_error(QCAL_EIO, "%s: cannot create: %s", dir, strerror(errno));
  }
  rep r = {dir, openf(&(rep){dir, 0, 0, 0}, "index.html"),
           openf(&(rep){dir, 0, 0, 0}, "summary.md"), 0};
  qcal_status st =
      r.html && r.md ? QCAL_OK : qcal_error(QCAL_EIO, "%s: cannot write the pages", dir);
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
      qcal_results_attr(&f[i], "qcal_version", ver, sizeof ver);
      qcal_results_attr(&f[i], "git_commit", commit, sizeof commit);
      qcal_results_attr(&f[i], "date", date, sizeof date);
      qcal_results_attr(&f[i], "cpu_model", cpu, sizeof cpu);
      qcal_results_attr(&f[i], "gpu", gpu, sizeof gpu);
      fprintf(r.html, "<p><b>%s</b>: qcal %s (%s), %s, CPU %s, GPU %s</p>\n", files[i], ver, commit,
              date, cpu, gpu);
      fprintf(r.md, "- `%s`: qcal %s (%s), %s, CPU %s, GPU %s\n", files[i], ver, commit, date, cpu,
              gpu);
    }
    fprintf(r.md, "\n");
  }
  for (int i = 0; i < nfiles && st == QCAL_OK; i++) {
    qcal_table *t = qcal_results_table(&f[i], "results");
    qcal_table_free(t);
    if (t)
      st = sweep_figures(&r, &f[i]);
    if (st == QCAL_OK)
      st = gemm_figures(&r, &f[i]);
    if (st == QCAL_OK)
      st = stream_figures(&r, &f[i]);
  }
  if (r.html) {
    fprintf(r.html,
            "<p>%d figures, each as PNG and SVG, with their gnuplot scripts and data files beside "
            "them.</p>\n</body></html>\n",
            r.figs);
    fclose(r.html);
  }
  if (r.md)
    fclose(r.md);
  for (int k = 0; k < nfiles; k++)
    qcal_results_close(&f[k]);
  out->figures = r.figs;
  snprintf(out->html, sizeof out->html, "%s/index.html", dir);
  snprintf(out->md, sizeof out->md, "%s/summary.md", dir);
  return st;
}
