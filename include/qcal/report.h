/* qcal report: gnuplot figures (PNG and SVG), one static HTML page and a
 * Markdown summary from sweep, gemm and stream results files. */
#ifndef QCAL_REPORT_H
#define QCAL_REPORT_H

#include "qcal/status.h"

typedef struct qcal_report_out {
  int figures; /* figure files written (PNG + SVG pairs count once) */
  char html[4200], md[4200];
} qcal_report_out;

/* QCAL_EUNSUPPORTED when gnuplot is not installed. */
qcal_status qcal_report_build(const char *const *files, int nfiles, const char *dir,
                              qcal_report_out *out);

#endif
