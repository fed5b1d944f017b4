/* The validating reader of results files. Nothing is read before its class,
 * rank, dims and stored size are checked; every table follows schema.inc. */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "reports/table_internal.h"

/* deflate cannot expand more than ~1032:1; a dataset that declares more
 * elements than its stored bytes could hold was never written (or lies) */
#define MAX_EXPANSION 1100u
#define MAX_ELEMENTS ((hsize_t)1 << 31)

static qcal_status bad(const qcal_results *r, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static qcal_status bad(const qcal_results *r, const char *what, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return qcal_error(QCAL_EFORMAT, "%s: %s: %s", r->path, what, msg);
}

/* A string attribute of obj into buf (any string class, scalar or one
 * element, at most ATTR_MAX bytes: the config attribute lists every input
 * file). 1 if absent. */
#define ATTR_MAX (1 << 20)
static int read_str_attr(const qcal_results *r, hid_t obj, const char *objname, const char *name,
                         char *buf, size_t cap, qcal_status *st) {
  *st = QCAL_OK;
  if (H5Aexists(obj, name) <= 0)
    return 1;
  char what[300];
  snprintf(what, sizeof what, "attribute %s%s%s", objname, strcmp(objname, "/") ? "/" : "", name);
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1,
        sp = a >= 0 ? H5Aget_space(a) : -1, mt = -1;
  hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
  if (a < 0 || t < 0 || sp < 0) {
    *st = bad(r, what, "cannot be opened");
  } else if (H5Tget_class(t) != H5T_STRING) {
    *st = bad(r, what, "is not a string");
  } else if (np != 1) {
    *st = bad(r, what, "holds %lld values, expected one string", (long long)np);
  } else if (H5Tis_variable_str(t) > 0) {
    char *v = NULL;
    mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(t));
    if (H5Aread(a, mt, &v) < 0 || !v)
      *st = bad(r, what, "cannot be read");
    else if (strlen(v) > ATTR_MAX)
      *st = bad(r, what, "is longer than %d bytes", ATTR_MAX);
    else
      snprintf(buf, cap, "%s", v);
    if (v)
      H5free_memory(v);
  } else {
    size_t n = H5Tget_size(t);
    char *v = n <= ATTR_MAX ? calloc(n + 1, 1) : NULL;
    mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, n + 1);
    H5Tset_cset(mt, H5Tget_cset(t));
    if (n > ATTR_MAX)
      *st = bad(r, what, "is longer than %d bytes", ATTR_MAX);
    else if (!v || H5Aread(a, mt, v) < 0)
      *st = bad(r, what, "cannot be read");
    else
      snprintf(buf, cap, "%s", v);
    free(v);
  }
  if (mt >= 0)
    H5Tclose(mt);
  if (sp >= 0)
    H5Sclose(sp);
  if (t >= 0)
    H5Tclose(t);
  if (a >= 0)
    H5Aclose(a);
  return 0;
}

qcal_status qcal_results_open(qcal_results *r, const char *path) {
  memset(r, 0, sizeof *r);
  r->file = -1;
  snprintf(r->path, sizeof r->path, "%s", path);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  struct stat sb;
  if (stat(path, &sb) != 0)
    return qcal_error(QCAL_EIO, "%s: cannot open: %s", path, strerror(errno));
  if (!S_ISREG(sb.st_mode))
    return qcal_error(QCAL_EIO, "%s: not a regular file", path);
  r->file_size = (uint64_t)sb.st_size;
  if (H5Fis_hdf5(path) <= 0)
    return qcal_error(QCAL_EFORMAT, "%s: not an HDF5 file", path);
  hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (h < 0)
    return qcal_error(QCAL_EFORMAT, "%s: cannot open as HDF5", path);
  r->file = h;
  if (H5Aexists(h, "schema_version") <= 0) {
    qcal_results_close(r);
    return qcal_error(QCAL_EFORMAT, "%s: not a qcal results file (no schema_version attribute)",
                      path);
  }
  int64_t v = 0;
  hid_t a = H5Aopen(h, "schema_version", H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1,
        sp = a >= 0 ? H5Aget_space(a) : -1;
  int is_int = t >= 0 && H5Tget_class(t) == H5T_INTEGER,
      one = sp >= 0 && H5Sget_simple_extent_npoints(sp) == 1;
  herr_t e = is_int && one ? H5Aread(a, H5T_NATIVE_INT64, &v) : -1;
  if (sp >= 0)
    H5Sclose(sp);
  if (t >= 0)
    H5Tclose(t);
  if (a >= 0)
    H5Aclose(a);
  if (!is_int || !one || e < 0) {
    qcal_results_close(r);
    return qcal_error(QCAL_EFORMAT, "%s: attribute schema_version is not one integer", path);
  }
  if (v < QCAL_SCHEMA_MIN_VERSION || v > QCAL_SCHEMA_VERSION) {
    qcal_results_close(r);
    return qcal_error(QCAL_EUNSUPPORTED,
                      "%s: schema version %lld, this qcal reads versions %d to %d", path,
                      (long long)v, QCAL_SCHEMA_MIN_VERSION, QCAL_SCHEMA_VERSION);
  }
  r->version = (int)v;
  qcal_status st = qcal_results_guard(r);
  if (st != QCAL_OK)
    qcal_results_close(r);
  return st;
}

void qcal_results_close(qcal_results *r) {
  if (r->file >= 0)
    H5Fclose((hid_t)r->file);
  r->file = -1;
}

qcal_status qcal_results_attr(qcal_results *r, const char *name, char *buf, size_t cap) {
  qcal_status st;
  if (read_str_attr(r, (hid_t)r->file, "/", name, buf, cap, &st))
    return qcal_error(QCAL_EFORMAT, "%s: no attribute '%s'", r->path, name);
  return st;
}

static int is_kind(hid_t file, const char *path, H5O_type_t want) {
  if (H5Lexists(file, path, H5P_DEFAULT) <= 0)
    return 0;
  H5O_info_t info;
  return H5Oget_info_by_name2(file, path, &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0 &&
         info.type == want;
}

/* Open a 1-D dataset of class cls, its length checked against its stored
 * bytes and the file size. */
static qcal_status open_1d(qcal_results *r, const char *path, H5T_class_t cls, hid_t *ds_out,
                           hsize_t *n_out) {
  *ds_out = -1;
  if (!is_kind((hid_t)r->file, path, H5O_TYPE_DATASET))
    return bad(r, path, "missing (or not a dataset)");
  hid_t ds = H5Dopen2((hid_t)r->file, path, H5P_DEFAULT);
  if (ds < 0)
    return bad(r, path, "cannot be opened");
  hid_t t = H5Dget_type(ds), sp = H5Dget_space(ds);
  qcal_status st = QCAL_OK;
  H5T_class_t c = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
  int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  hsize_t n = 0;
  const char *want = cls == H5T_FLOAT     ? "floating point"
                     : cls == H5T_INTEGER ? "integer"
                                          : "string";
  if (c != cls)
    st = bad(r, path, "is not %s", want);
  else if (cls == H5T_STRING && H5Tis_variable_str(t) <= 0)
    st = bad(r, path, "holds fixed-length strings, expected variable-length");
  else if (nd != 1)
    st = bad(r, path, "has rank %d, expected 1", nd);
  else if (H5Sget_simple_extent_dims(sp, &n, NULL) != 1)
    st = bad(r, path, "has unreadable dims");
  else if (n > MAX_ELEMENTS)
    st = bad(r, path, "declares %llu elements, more than %llu", (unsigned long long)n,
             (unsigned long long)MAX_ELEMENTS);
  if (st == QCAL_OK && n) {
    const hsize_t stored = H5Dget_storage_size(ds);
    const size_t es = H5Tget_size(t);
    if (stored == 0)
      st = bad(r, path, "declares %llu elements but stores none", (unsigned long long)n);
    else if (stored > r->file_size)
      st = bad(r, path, "claims %llu stored bytes in a file of %llu", (unsigned long long)stored,
               (unsigned long long)r->file_size);
    else if (es == 0 || n > stored * MAX_EXPANSION / es + 1)
      st = bad(r, path, "declares %llu elements, more than its %llu stored bytes hold",
               (unsigned long long)n, (unsigned long long)stored);
  }
  if (t >= 0)
    H5Tclose(t);
  if (sp >= 0)
    H5Sclose(sp);
  if (st != QCAL_OK) {
    H5Dclose(ds);
    return st;
  }
  *ds_out = ds;
  *n_out = n;
  return QCAL_OK;
}

static qcal_status read_numbers(qcal_results *r, const char *path, H5T_class_t cls, hid_t mem,
                                size_t es, void **v, size_t *n) {
  *v = NULL;
  *n = 0;
  hid_t ds;
  hsize_t d;
  QCAL_TRY(open_1d(r, path, cls, &ds, &d));
  void *buf = malloc(d ? d * es : 1);
  herr_t e = buf ? H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : -1;
  H5Dclose(ds);
  if (e < 0) {
    free(buf);
    return buf ? bad(r, path, "cannot be read (corrupt data)")
               : qcal_error(QCAL_ENOMEM, "%s: %s: out of memory", r->path, path);
  }
  *v = buf;
  *n = (size_t)d;
  return QCAL_OK;
}

qcal_status qcal_results_f32(qcal_results *r, const char *path, float **v, size_t *n) {
  return read_numbers(r, path, H5T_FLOAT, H5T_NATIVE_FLOAT, 4, (void **)v, n);
}

qcal_status qcal_results_u64(qcal_results *r, const char *path, uint64_t **v, size_t *n) {
  return read_numbers(r, path, H5T_INTEGER, H5T_NATIVE_UINT64, 8, (void **)v, n);
}

int qcal_results_has(qcal_results *r, qcal_table_id id) {
  return H5Lexists((hid_t)r->file, qcal_schema_tables[id].name, H5P_DEFAULT) > 0;
}

/* Read one schema column of n rows into table column c. */
static qcal_status read_column(qcal_results *r, qcal_table *t, int c, const qcal_schema_column *k,
                               const char *path, hid_t ds, size_t n) {
  void *dst = qcal_table_col_data_mut(t, c);
  herr_t e = 0;
  if (k->type == 'f' && n)
    e = H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst);
  else if (k->type == 'i' && n)
    e = H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst);
  else if (n) {
    char **s = calloc(n, sizeof *s);
    hid_t mt = H5Tcopy(H5T_C_S1), ft = H5Dget_type(ds);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(ft));
    H5Tclose(ft);
    e = s ? H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) : -1;
    qcal_status st = QCAL_OK;
    for (size_t i = 0; e >= 0 && i < n; i++) {
      if (st == QCAL_OK && s[i] && strlen(s[i]) > QCAL_SCHEMA_STR_MAX)
        st = bad(r, path, "row %zu is a string longer than %d bytes", i, QCAL_SCHEMA_STR_MAX);
      if (st == QCAL_OK)
        ((char **)dst)[i] = strdup(s[i] ? s[i] : "");
    }
    if (s && e >= 0) {
      hid_t sp = H5Dget_space(ds);
      H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, s);
      H5Sclose(sp);
    }
    H5Tclose(mt);
    free(s);
    if (st != QCAL_OK)
      return st;
  }
  if (e < 0)
    return bad(r, path, "cannot be read (corrupt data)");
  for (size_t i = 0; i < n && k->type != 's'; i++) {
    double v = k->type == 'f' ? ((double *)dst)[i] : (double)((int64_t *)dst)[i];
    if (!isnan(v) && (v < k->lo || v > k->hi))
      return bad(r, path, "row %zu holds %.17g, outside %.10g .. %.10g", i, v, k->lo, k->hi);
    if (k->type == 'i' && isnan(v))
      return bad(r, path, "row %zu is not a number", i);
  }
  /* units, when present, must be a string */
  char units[64];
  qcal_status st;
  read_str_attr(r, ds, path, "units", units, sizeof units, &st);
  return st;
}

qcal_status qcal_results_read(qcal_results *r, qcal_table_id id, qcal_table **out) {
  *out = NULL;
  const qcal_schema_table *tb = &qcal_schema_tables[id];
  char gpath[80];
  snprintf(gpath, sizeof gpath, "/%s", tb->name);
  if (!qcal_results_has(r, id))
    return bad(r, gpath, "table missing");
  if (!is_kind((hid_t)r->file, gpath, H5O_TYPE_GROUP))
    return bad(r, gpath, "is not a group of columns");
  const int nc = qcal_schema_ncols(id);
  hid_t ds[48];
  hsize_t n[48];
  qcal_status st = QCAL_OK;
  int opened = 0;
  size_t rows = 0;
  int have_rows = 0;
  for (; opened < nc && st == QCAL_OK; opened++) {
    const qcal_schema_column *k = &qcal_schema_columns[tb->first + opened];
    ds[opened] = -1;
    if (k->since > r->version)
      continue; /* an older file: the column keeps its default */
    char path[160];
    snprintf(path, sizeof path, "%s/%s", gpath, k->name);
    st = open_1d(r, path,
                 k->type == 'f'   ? H5T_FLOAT
                 : k->type == 'i' ? H5T_INTEGER
                                  : H5T_STRING,
                 &ds[opened], &n[opened]);
    if (st == QCAL_OK && have_rows && n[opened] != rows)
      st = bad(r, path, "has %llu rows, %s/%s has %zu", (unsigned long long)n[opened], gpath,
               qcal_schema_columns[tb->first].name, rows);
    if (st == QCAL_OK && !have_rows)
      rows = (size_t)n[opened], have_rows = 1;
    if (st != QCAL_OK && ds[opened] >= 0) {
      H5Dclose(ds[opened]);
      ds[opened] = -1;
    }
  }
  qcal_table *t = NULL;
  if (st == QCAL_OK) {
    t = qcal_table_new_schema(id);
    for (size_t i = 0; t && i < rows; i++)
      if (qcal_table_row(t) < 0) {
        qcal_table_free(t);
        t = NULL;
      }
    if (!t)
      st = qcal_error(QCAL_ENOMEM, "%s: %s: out of memory", r->path, gpath);
  }
  for (int c = 0; c < opened; c++) {
    const qcal_schema_column *k = &qcal_schema_columns[tb->first + c];
    if (st == QCAL_OK && ds[c] < 0 && k->type == 'i') /* newer than the file */
      for (size_t i = 0; i < rows; i++)
        ((int64_t *)qcal_table_col_data_mut(t, c))[i] = -1;
    if (st == QCAL_OK && ds[c] >= 0) {
      char path[160];
      snprintf(path, sizeof path, "%s/%s", gpath, k->name);
      st = read_column(r, t, c, k, path, ds[c], rows);
    }
    if (ds[c] >= 0)
      H5Dclose(ds[c]);
  }
  if (st != QCAL_OK) {
    qcal_table_free(t);
    return st;
  }
  *out = t;
  return QCAL_OK;
}

void qcal_sweep_tables_free(qcal_sweep_tables *s) {
  qcal_table_free(s->tensors);
  qcal_table_free(s->results);
  free(s->amax);
  free(s->first);
  free(s->row_of);
  memset(s, 0, sizeof *s);
}

/* Length of a flat 1-D dataset, checked like a column; 0 when absent. */
static qcal_status flat_len(qcal_results *r, const char *path, H5T_class_t cls, hsize_t *n) {
  *n = 0;
  if (H5Lexists((hid_t)r->file, path, H5P_DEFAULT) <= 0)
    return QCAL_OK;
  hid_t ds;
  QCAL_TRY(open_1d(r, path, cls, &ds, n));
  H5Dclose(ds);
  return QCAL_OK;
}

static qcal_status check_histogram_slices(qcal_results *r, const qcal_table *ten) {
  hsize_t nc, ne;
  QCAL_TRY(flat_len(r, "/histogram_counts", H5T_INTEGER, &nc));
  QCAL_TRY(flat_len(r, "/histogram_edges", H5T_FLOAT, &ne));
  for (size_t t = 0; t < qcal_table_rows(ten); t++) {
    const int64_t off = qcal_table_get_i(ten, (long)t, QCAL_COL(TENSORS, histogram_offset)),
                  eoff = qcal_table_get_i(ten, (long)t, QCAL_COL(TENSORS, histogram_edge_offset)),
                  bins = qcal_table_get_i(ten, (long)t, QCAL_COL(TENSORS, histogram_bins));
    if (off < 0)
      continue;
    if (bins < 1 || eoff < 0 || (uint64_t)off > nc || (uint64_t)bins > nc - (uint64_t)off ||
        (uint64_t)eoff > ne || (uint64_t)bins + 1 > ne - (uint64_t)eoff)
      return bad(r, "/tensors/histogram_offset",
                 "row %zu: %lld bins at counts[%lld] and edges[%lld] lie outside the %llu counts "
                 "and %llu edges",
                 t, (long long)bins, (long long)off, (long long)eoff, (unsigned long long)nc,
                 (unsigned long long)ne);
  }
  return QCAL_OK;
}

/* n elements from off of a 1-D dataset (off + n checked against its dims). */
static qcal_status read_slice(qcal_results *r, const char *path, H5T_class_t cls, hid_t mem,
                              size_t es, hsize_t off, hsize_t n, void **out) {
  *out = NULL;
  hid_t ds;
  hsize_t len;
  QCAL_TRY(open_1d(r, path, cls, &ds, &len));
  if (off > len || n > len - off) {
    H5Dclose(ds);
    return bad(r, path, "slice [%llu, +%llu) lies outside its %llu elements",
               (unsigned long long)off, (unsigned long long)n, (unsigned long long)len);
  }
  void *buf = malloc(n ? n * es : 1);
  hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(1, &n, NULL);
  herr_t e = buf && fs >= 0 && ms >= 0 &&
                     H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &n, NULL) >= 0
                 ? H5Dread(ds, mem, ms, fs, H5P_DEFAULT, buf)
                 : -1;
  if (ms >= 0)
    H5Sclose(ms);
  if (fs >= 0)
    H5Sclose(fs);
  H5Dclose(ds);
  if (e < 0) {
    free(buf);
    return bad(r, path, "cannot be read (corrupt data)");
  }
  *out = buf;
  return QCAL_OK;
}

qcal_status qcal_results_scan(qcal_results *r, const char *path, int is_float) {
  if (H5Lexists((hid_t)r->file, path, H5P_DEFAULT) <= 0)
    return QCAL_OK;
  hid_t ds;
  hsize_t len;
  QCAL_TRY(open_1d(r, path, is_float ? H5T_FLOAT : H5T_INTEGER, &ds, &len));
  const hsize_t step = (hsize_t)1 << 20;
  uint64_t *buf = malloc(step * 8);
  hid_t fs = H5Dget_space(ds);
  qcal_status st = buf && fs >= 0 ? QCAL_OK : qcal_error(QCAL_ENOMEM, "%s: out of memory", r->path);
  for (hsize_t off = 0; st == QCAL_OK && off < len; off += step) {
    hsize_t n = len - off < step ? len - off : step;
    hid_t ms = H5Screate_simple(1, &n, NULL);
    if (ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &n, NULL) < 0 ||
        H5Dread(ds, is_float ? H5T_NATIVE_FLOAT : H5T_NATIVE_UINT64, ms, fs, H5P_DEFAULT, buf) < 0)
      st = bad(r, path, "cannot be read (corrupt data)");
    if (ms >= 0)
      H5Sclose(ms);
  }
  if (fs >= 0)
    H5Sclose(fs);
  H5Dclose(ds);
  free(buf);
  return st;
}

int qcal_results_has_histogram(qcal_results *r, const qcal_sweep_tables *s, size_t t) {
  if (r->version >= 2)
    return qcal_table_get_i(s->tensors, (long)t, QCAL_COL(TENSORS, histogram_offset)) >= 0;
  char p[64];
  snprintf(p, sizeof p, "/histograms/%zu", t);
  return H5Lexists((hid_t)r->file, "/histograms", H5P_DEFAULT) > 0 &&
         H5Lexists((hid_t)r->file, p, H5P_DEFAULT) > 0;
}

qcal_status qcal_results_histogram(qcal_results *r, const qcal_sweep_tables *s, size_t t,
                                   uint64_t **counts, float **edges, size_t *nbins) {
  *counts = NULL, *edges = NULL, *nbins = 0;
  char pc[80], pe[80];
  size_t nb = 0, ne = 0;
  qcal_status st = QCAL_OK;
  if (r->version >= 2) {
    const int64_t off = qcal_table_get_i(s->tensors, (long)t, QCAL_COL(TENSORS, histogram_offset)),
                  eoff = qcal_table_get_i(s->tensors, (long)t,
                                          QCAL_COL(TENSORS, histogram_edge_offset));
    nb = (size_t)qcal_table_get_i(s->tensors, (long)t, QCAL_COL(TENSORS, histogram_bins));
    if (off < 0)
      return QCAL_OK;
    snprintf(pc, sizeof pc, "/histogram_counts");
    snprintf(pe, sizeof pe, "/histogram_edges");
    st = read_slice(r, pc, H5T_INTEGER, H5T_NATIVE_UINT64, 8, (hsize_t)off, nb, (void **)counts);
    if (st == QCAL_OK)
      st = read_slice(r, pe, H5T_FLOAT, H5T_NATIVE_FLOAT, 4, (hsize_t)eoff, nb + 1, (void **)edges);
    ne = nb + 1;
  } else {
    snprintf(pc, sizeof pc, "/histograms/%zu", t);
    if (H5Lexists((hid_t)r->file, "/histograms", H5P_DEFAULT) <= 0 ||
        H5Lexists((hid_t)r->file, pc, H5P_DEFAULT) <= 0)
      return QCAL_OK; /* a tensor without a histogram */
    snprintf(pc, sizeof pc, "/histograms/%zu/counts", t);
    snprintf(pe, sizeof pe, "/histograms/%zu/edges", t);
    st = qcal_results_u64(r, pc, counts, &nb);
    if (st == QCAL_OK)
      st = qcal_results_f32(r, pe, edges, &ne);
    if (st == QCAL_OK && (nb == 0 || ne != nb + 1))
      st = bad(r, pe, "%zu edges for %zu bins, expected bins + 1", ne, nb);
  }
  for (size_t i = 0; st == QCAL_OK && i < ne; i++)
    if (!isfinite((*edges)[i]) || (i && (*edges)[i] < (*edges)[i - 1]))
      st = bad(r, pe, "edge %zu of tensor %zu is not finite and ascending", i, t);
  if (st != QCAL_OK) {
    free(*counts), free(*edges);
    *counts = NULL, *edges = NULL;
    return st;
  }
  *nbins = nb;
  return QCAL_OK;
}

qcal_status qcal_results_read_sweep(qcal_results *r, qcal_sweep_tables *s) {
  memset(s, 0, sizeof *s);
  qcal_status st = qcal_results_read(r, QCAL_TABLE_TENSORS, &s->tensors);
  if (st == QCAL_OK)
    st = qcal_results_read(r, QCAL_TABLE_RESULTS, &s->results);
  if (st == QCAL_OK)
    st = qcal_results_f32(r, "/amax_values", &s->amax, &s->namax);
  if (st != QCAL_OK) {
    qcal_sweep_tables_free(s);
    return st;
  }
  const size_t nt = qcal_table_rows(s->tensors), nr = qcal_table_rows(s->results);
  s->ntensors = nt, s->nrows = nr;
  for (size_t i = 0; i < s->namax && st == QCAL_OK; i++)
    if (!isfinite(s->amax[i]) || s->amax[i] < 0)
      st = bad(r, "/amax_values", "element %zu is %g, not a finite non-negative amax", i,
               (double)s->amax[i]);
  for (size_t t = 0; t < nt && st == QCAL_OK; t++)
    if (qcal_table_get_i(s->tensors, (long)t, QCAL_COL(TENSORS, layer)) >= (int64_t)nt)
      st = bad(r, "/tensors/layer", "row %zu names layer %lld of %zu tensors", t,
               (long long)qcal_table_get_i(s->tensors, (long)t, QCAL_COL(TENSORS, layer)), nt);
  s->first = calloc(nt + 1, sizeof *s->first);
  s->row_of = malloc((nr ? nr : 1) * sizeof *s->row_of);
  if (st == QCAL_OK && (!s->first || !s->row_of))
    st = qcal_error(QCAL_ENOMEM, "%s: out of memory", r->path);
  for (size_t i = 0; i < nr && st == QCAL_OK; i++) {
    const long row = (long)i;
    const int64_t t = qcal_table_get_i(s->results, row, QCAL_COL(RESULTS, tensor_id)),
                  l = qcal_table_get_i(s->results, row, QCAL_COL(RESULTS, layer)),
                  off = qcal_table_get_i(s->results, row, QCAL_COL(RESULTS, amax_offset)),
                  ch = qcal_table_get_i(s->results, row, QCAL_COL(RESULTS, channels));
    if (t >= (int64_t)nt)
      st = bad(r, "/results/tensor_id", "row %zu names tensor %lld of %zu", i, (long long)t, nt);
    else if (l >= (int64_t)nt)
      st = bad(r, "/results/layer", "row %zu names layer %lld of %zu tensors", i, (long long)l, nt);
    else if ((uint64_t)off > s->namax || (uint64_t)ch > s->namax - (uint64_t)off)
      st = bad(r, "/results/amax_offset",
               "row %zu: amax_values[%lld : %lld + %lld] lies outside its %zu values", i,
               (long long)off, (long long)off, (long long)ch, s->namax);
    else
      s->first[t + 1]++;
  }
  if (st == QCAL_OK && r->version >= 2) /* histogram slices inside the flat arrays */
    st = check_histogram_slices(r, s->tensors);
  if (st == QCAL_OK) { /* counting sort of the rows by tensor */
    for (size_t t = 0; t < nt; t++)
      s->first[t + 1] += s->first[t];
    size_t *fill = calloc(nt + 1, sizeof *fill);
    if (!fill)
      st = qcal_error(QCAL_ENOMEM, "%s: out of memory", r->path);
    for (size_t i = 0; fill && i < nr; i++) {
      size_t t = (size_t)qcal_table_get_i(s->results, (long)i, QCAL_COL(RESULTS, tensor_id));
      s->row_of[s->first[t] + fill[t]++] = i;
    }
    free(fill);
  }
  if (st != QCAL_OK)
    qcal_sweep_tables_free(s);
  return st;
}
