/* Column access for the writers in reports/. */
#ifndef QCAL_REPORTS_TABLE_INTERNAL_H
#define QCAL_REPORTS_TABLE_INTERNAL_H

#include "qcal/results.h"

int qcal_table_ncols(const qcal_table *t);
const char *qcal_table_col_name(const qcal_table *t, int c);
const char *qcal_table_col_units(const qcal_table *t, int c);
char qcal_table_col_type(const qcal_table *t, int c);
const void *qcal_table_col_data(const qcal_table *t, int c);
void *qcal_table_col_data_mut(qcal_table *t, int c);
const char *qcal_table_description(const qcal_table *t);
/* Read a whole 1-D dataset in slices (integer or float), checking only
 * that it reads; absent is fine. */
qcal_status qcal_results_scan(qcal_results *r, const char *path, int is_float);
/* Read the whole file once in a child process (h5guard.c). */
qcal_status qcal_results_guard(qcal_results *r);

#endif
