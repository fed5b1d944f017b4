/* Shared by the report's parts (reports/report*.c): the report being
 * written, its files and figures, and escaping for each target. */
#ifndef QCAL_REPORT_INTERNAL_H
#define QCAL_REPORT_INTERNAL_H

#include <stdio.h>

#include "qcal/escape.h"
#include "qcal/results.h"

typedef struct {
  const char *dir;
  FILE *html, *md;
  int figs;
} rep;

/* A file in the report folder, opened for writing. */
FILE *qcal_rep_open(const rep *r, const char *name);
/* PNG then SVG of the same plot commands. */
void qcal_rep_terms(FILE *gp, const char *stem, int w, int h, const char *plot);
/* Run gnuplot on a script of the folder; nfigs figures more on success. */
qcal_status qcal_rep_gnuplot(rep *r, const char *script, int nfigs);
void qcal_rep_figure(rep *r, const char *stem, const char *title, const char *what);

/* Short-lived escaped copies for one printf: H(x), M(x), G(x), D(x). */
#define ESC_SLOTS 8
char *qcal_rep_esc_slot(void);
#define H(x) qcal_escape_html((x), qcal_rep_esc_slot(), 4 * QCAL_SCHEMA_STR_MAX + 64)
#define M(x) qcal_escape_md((x), qcal_rep_esc_slot(), 4 * QCAL_SCHEMA_STR_MAX + 64)
#define G(x) qcal_escape_gnuplot((x), qcal_rep_esc_slot(), 4 * QCAL_SCHEMA_STR_MAX + 64)
#define D(x) qcal_escape_data((x), qcal_rep_esc_slot(), 4 * QCAL_SCHEMA_STR_MAX + 64)
/* A gnuplot string of at most n bytes: cut by the escaper, which never splits
 * a '' pair (a printf precision on the escaped text can, and the literal then
 * runs on into the script) */
#define GN(x, n) qcal_escape_gnuplot((x), qcal_rep_esc_slot(), (size_t)(n) + 1)

/* The zoo section (zoo, zoo_networks) and whole-model benchmarks
 * (model_bench, model_layers): reports/report_zoo.c. */
qcal_status qcal_rep_zoo(rep *r, qcal_results *f);
qcal_status qcal_rep_model_bench(rep *r, qcal_results *f);
/* The architecture benchmark (architectures): reports/report_arch.c. */
qcal_status qcal_rep_architectures(rep *r, qcal_results *f);
/* Quantization-aware training (qat, qat_curves): reports/report_qat.c. */
qcal_status qcal_rep_qat(rep *r, qcal_results *f);

#endif
