/* qcal report: figures, an HTML page and a Markdown summary. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "bench/cli.h"
#include "qcal/report.h"

typedef struct {
  const char *out;
} report_cfg;

static const qcal_opt opts[] = {
    {"output", "DIR", "report folder (-o; default: <first file>-report)", offsetof(report_cfg, out),
     OPT_STRING, 0, 0, NULL},
    {NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};

static const qcal_cmd_info info = {
    "report",
    "qcal report RESULTS.h5 [GEMM.h5] [STREAM.h5] [-o DIR]",
    "Draw every figure of the given results files with gnuplot (PNG and SVG, with\n"
    "the script and data of each figure), and write index.html (static, no\n"
    "scripts) and summary.md (for a CI job summary).",
    opts,
};

int qcal_cmd_report(int argc, char **argv) {
  report_cfg cfg = {0};
  const char *pos[8];
  int npos, r = qcal_opts_parse(&info, &cfg, argc, argv, pos, 8, &npos);
  if (r)
    return r > 0 ? QCAL_EXIT_OK : QCAL_EXIT_USAGE;
  if (npos < 1)
    return qcal_die("report: expected at least one results file (see qcal report --help)");
  char dir[4200];
  if (cfg.out) {
    snprintf(dir, sizeof dir, "%s", cfg.out);
  } else {
    snprintf(dir, sizeof dir, "%s", pos[0]);
    char *dot = strrchr(dir, '.');
    if (dot && !strchr(dot, '/'))
      *dot = '\0';
    strncat(dir, "-report", sizeof dir - strlen(dir) - 1);
  }
  qcal_report_out out;
  qcal_status st = qcal_report_build(pos, npos, dir, &out);
  if (st != QCAL_OK)
    return qcal_die_status(st);
  printf("report: %s (%d figures; summary %s)\n", out.html, out.figures, out.md);
  return QCAL_EXIT_OK;
}
