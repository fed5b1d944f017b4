/* Results store: column tables and HDF5 files written to a temporary name
 * and renamed on success, so an interrupted run leaves no partial file. */
#ifndef QCAL_RESULTS_H
#define QCAL_RESULTS_H

#include <stddef.h>
#include <stdint.h>

#include "qcal/status.h"

#define QCAL_SCHEMA_VERSION 1

/* An in-memory table of typed columns ('f' double, 'i' int64, 's' string). */
typedef struct qcal_table qcal_table;
qcal_table *qcal_table_new(const char *name, const char *description);
void qcal_table_free(qcal_table *t);
/* Add a column (before the first row); returns its index or -1. */
int qcal_table_col(qcal_table *t, const char *name, char type, const char *units);
int qcal_table_find(const qcal_table *t, const char *name);
/* Append a row of defaults (NaN, 0, ""); returns its index or -1. */
long qcal_table_row(qcal_table *t);
void qcal_table_set_f(qcal_table *t, int col, double v);
void qcal_table_set_i(qcal_table *t, int col, int64_t v);
void qcal_table_set_s(qcal_table *t, int col, const char *v);
size_t qcal_table_rows(const qcal_table *t);
double qcal_table_get_f(const qcal_table *t, long row, int col);
int64_t qcal_table_get_i(const qcal_table *t, long row, int col);
const char *qcal_table_get_s(const qcal_table *t, long row, int col);
const char *qcal_table_name(const qcal_table *t);
char qcal_table_col_type(const qcal_table *t, int c);
const char *qcal_table_col_name(const qcal_table *t, int c);

/* HDF5 results file. */
typedef struct qcal_h5 {
  int64_t file; /* hid_t */
  char path[4096], tmp[4200];
} qcal_h5;

/* Create path's temporary sibling; nothing appears at path until commit. */
qcal_status qcal_h5_create(qcal_h5 *h, const char *path);
qcal_status qcal_h5_attr_str(qcal_h5 *h, const char *obj, const char *name, const char *value);
qcal_status qcal_h5_attr_int(qcal_h5 *h, const char *obj, const char *name, int64_t value);
/* Write a table as group /<name> with one dataset per column (units attrs). */
qcal_status qcal_h5_write_table(qcal_h5 *h, const qcal_table *t);
/* 1-D datasets (parents are created). */
qcal_status qcal_h5_write_f32(qcal_h5 *h, const char *path, const float *v, size_t n,
                              const char *units);
qcal_status qcal_h5_write_u64(qcal_h5 *h, const char *path, const uint64_t *v, size_t n);
/* Close and rename over path. */
qcal_status qcal_h5_commit(qcal_h5 *h);
/* Close and delete the temporary file (safe to call twice). */
void qcal_h5_abort(qcal_h5 *h);
/* The temporary file of the run in progress, for signal handlers. */
const char *qcal_h5_pending(void);

/* Reading a results file back (compare, export, report). Open fails with
 * QCAL_EIO for a missing file, QCAL_EFORMAT for one that is not HDF5 or not
 * qcal's, and QCAL_EUNSUPPORTED for another schema version. */
typedef struct qcal_results {
  int64_t file;
  char path[4096];
} qcal_results;
qcal_status qcal_results_open(qcal_results *r, const char *path);
void qcal_results_close(qcal_results *r);
/* The table stored as group /name, or NULL (qcal_last_error says why). */
qcal_table *qcal_results_table(qcal_results *r, const char *name);
/* 1-D datasets as float32 / uint64 (malloc'ed). */
qcal_status qcal_results_f32(qcal_results *r, const char *path, float **v, size_t *n);
qcal_status qcal_results_u64(qcal_results *r, const char *path, uint64_t **v, size_t *n);
qcal_status qcal_results_attr(qcal_results *r, const char *name, char *buf, size_t cap);

#endif
