/* Results store: column tables and HDF5 files written to a temporary name
 * and renamed on success, so an interrupted run leaves no partial file. */
#ifndef QCAL_RESULTS_H
#define QCAL_RESULTS_H

#include <stddef.h>
#include <stdint.h>

#include "qcal/schema.h"
#include "qcal/status.h"

/* Version 2 stores the histograms flat (/histogram_counts, /histogram_edges)
 * instead of one group per tensor; version 3 adds the per-output tables of
 * any network (e2e_outputs, sensitivity_outputs). Versions 1 and 2 are still
 * read. */
#define QCAL_SCHEMA_VERSION 6
#define QCAL_SCHEMA_MIN_VERSION 1

/* An in-memory table of typed columns ('f' double, 'i' int64, 's' string). */
typedef struct qcal_table qcal_table;
qcal_table *qcal_table_new(const char *name, const char *description);
/* A table of the schema (schema.inc) with all its columns, in schema order:
 * column QCAL_COL(T, name) is schema column name. */
qcal_table *qcal_table_new_schema(qcal_table_id id);
void qcal_table_free(qcal_table *t);
/* Add a column (before the first row); returns its index or -1. */
int qcal_table_col(qcal_table *t, const char *name, char type, const char *units);
int qcal_table_find(const qcal_table *t, const char *name);
/* Append a row of defaults (NaN, 0, ""); returns its index or -1. */
long qcal_table_row(qcal_table *t);
void qcal_table_set_f(qcal_table *t, int col, double v);
/* The same for an earlier row (filled in once later measurements are in). */
void qcal_table_set_at_f(qcal_table *t, long row, int col, double v);
void qcal_table_set_at_i(qcal_table *t, long row, int col, int64_t v);
void qcal_table_set_at_s(qcal_table *t, long row, int col, const char *v);
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
/* parts[0..nparts) end to end as one 1-D dataset, written part by part. */
qcal_status qcal_h5_write_u64_concat(qcal_h5 *h, const char *path, const uint64_t *const *parts,
                                     const size_t *lens, size_t nparts);
qcal_status qcal_h5_write_f32_concat(qcal_h5 *h, const char *path, const float *const *parts,
                                     const size_t *lens, size_t nparts, const char *units);
/* Close and rename over path. */
qcal_status qcal_h5_commit(qcal_h5 *h);
/* Close and delete the temporary file (safe to call twice). */
void qcal_h5_abort(qcal_h5 *h);
/* The temporary file of the run in progress, for signal handlers. */
const char *qcal_h5_pending(void);

/* Reading a results file back (compare, export, report). Every file is
 * untrusted: each dataset and attribute is checked for class, rank, dims and
 * stored size before it is read, strings for length, values against the
 * schema's ranges, and indices against the tables they point into. Any
 * violation is QCAL_EFORMAT with one line naming the file, the dataset and the
 * problem. Open fails with QCAL_EIO for a missing file, QCAL_EFORMAT for one
 * that is not HDF5 or not qcal's, and QCAL_EUNSUPPORTED for another schema
 * version. */
typedef struct qcal_results {
  int64_t file;
  uint64_t file_size;
  int version; /* the file's schema version */
  char path[4096];
} qcal_results;
qcal_status qcal_results_open(qcal_results *r, const char *path);
void qcal_results_close(qcal_results *r);
/* Whether the file holds table id (its group exists; it may still be
 * malformed, which qcal_results_read reports). */
int qcal_results_has(qcal_results *r, qcal_table_id id);
/* The validated table, columns in schema order (QCAL_COL); *out NULL on
 * error. */
qcal_status qcal_results_read(qcal_results *r, qcal_table_id id, qcal_table **out);
/* 1-D datasets as float32 / uint64 (malloc'ed), checked like columns. */
qcal_status qcal_results_f32(qcal_results *r, const char *path, float **v, size_t *n);
qcal_status qcal_results_u64(qcal_results *r, const char *path, uint64_t **v, size_t *n);
/* A string attribute of the root; QCAL_EFORMAT if missing or not a string. */
qcal_status qcal_results_attr(qcal_results *r, const char *name, char *buf, size_t cap);

/* A sweep's tensors, results and amax values, cross-checked: every tensor_id
 * names a tensor, every layer id is in range, every amax slice lies inside
 * /amax_values and holds finite non-negative values. Rows of tensor t are
 * row_of[first[t] .. first[t + 1]) in file order, so lookups stay linear. */
typedef struct qcal_sweep_tables {
  qcal_table *tensors, *results;
  float *amax;
  size_t namax, ntensors, nrows;
  size_t *first, *row_of;
} qcal_sweep_tables;
qcal_status qcal_results_read_sweep(qcal_results *r, qcal_sweep_tables *s);
/* Tensor t's |x| histogram (either layout), bounds-checked: QCAL_OK with
 * *nbins 0 when the tensor has none. counts[nbins], edges[nbins + 1],
 * malloc'ed; edges finite and ascending. */
int qcal_results_has_histogram(qcal_results *r, const qcal_sweep_tables *s, size_t t);
qcal_status qcal_results_histogram(qcal_results *r, const qcal_sweep_tables *s, size_t t,
                                   uint64_t **counts, float **edges, size_t *nbins);
void qcal_sweep_tables_free(qcal_sweep_tables *s);

/* Provenance attributes of a results file being written: tool version, git
 * commit, date, CPU, GPU, compiler, and the run's configuration (JSON). */
qcal_status qcal_write_provenance(qcal_h5 *h, const char *config_json);
/* A whole results file: provenance, then the tables; it appears at path
 * complete or not at all. */
qcal_status qcal_results_save(const char *path, const char *config_json,
                              const qcal_table *const *tables, int ntables);

#endif
