/* Reading qcal results files back into tables. */
#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reports/table_internal.h"

qcal_status qcal_results_open(qcal_results *r, const char *path) {
  memset(r, 0, sizeof *r);
  r->file = -1;
  snprintf(r->path, sizeof r->path, "%s", path);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  FILE *f = fopen(path, "rb");
  if (!f)
    return qcal_error(QCAL_EIO, "%s: cannot open: %s", path, strerror(errno));
  fclose(f);
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
  hid_t a = H5Aopen(h, "schema_version", H5P_DEFAULT);
  herr_t e = a >= 0 ? H5Aread(a, H5T_NATIVE_INT64, &v) : -1;
  if (a >= 0)
    H5Aclose(a);
  if (e < 0 || v != QCAL_SCHEMA_VERSION) {
    qcal_results_close(r);
    return qcal_error(QCAL_EUNSUPPORTED, "%s: schema version %lld, this qcal reads version %d",
                      path, (long long)v, QCAL_SCHEMA_VERSION);
  }
  return QCAL_OK;
}

void qcal_results_close(qcal_results *r) {
  if (r->file >= 0)
    H5Fclose((hid_t)r->file);
  r->file = -1;
}

qcal_status qcal_results_attr(qcal_results *r, const char *name, char *buf, size_t cap) {
  hid_t a = H5Aopen((hid_t)r->file, name, H5P_DEFAULT);
  if (a < 0)
    return qcal_error(QCAL_EFORMAT, "%s: no attribute '%s'", r->path, name);
  hid_t t = H5Aget_type(a);
  char *v = NULL;
  herr_t e = H5Aread(a, t, &v);
  if (e >= 0 && v)
    snprintf(buf, cap, "%s", v);
  if (v)
    H5free_memory(v);
  H5Tclose(t);
  H5Aclose(a);
  return e < 0 ? qcal_error(QCAL_EFORMAT, "%s: cannot read attribute '%s'", r->path, name)
               : QCAL_OK;
}

typedef struct {
  char name[64], units[32];
  char type;
  void *v;
  size_t n;
} rcol;

typedef struct {
  rcol cols[48];
  int n;
  hid_t g;
  int bad;
} walk;

static herr_t visit(hid_t g, const char *name, const H5L_info_t *info, void *data) {
  (void)info;
  walk *w = data;
  if (w->n == 48)
    return 0;
  hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
  if (ds < 0)
    return 0; /* a sub-group: not a column */
  rcol *c = &w->cols[w->n];
  memset(c, 0, sizeof *c);
  snprintf(c->name, sizeof c->name, "%s", name);
  hid_t sp = H5Dget_space(ds), ty = H5Dget_type(ds);
  hsize_t n = 0;
  H5Sget_simple_extent_dims(sp, &n, NULL);
  c->n = (size_t)n;
  H5T_class_t cls = H5Tget_class(ty);
  herr_t e = -1;
  if (cls == H5T_FLOAT) {
    c->type = 'f';
    c->v = malloc((n ? n : 1) * sizeof(double));
    e = c->v ? H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->v) : -1;
  } else if (cls == H5T_INTEGER) {
    c->type = 'i';
    c->v = malloc((n ? n : 1) * sizeof(int64_t));
    e = c->v ? H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->v) : -1;
  } else if (cls == H5T_STRING && H5Tis_variable_str(ty) > 0) {
    c->type = 's';
    c->v = calloc(n ? n : 1, sizeof(char *));
    e = c->v ? H5Dread(ds, ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->v) : -1;
  }
  if (e >= 0 && H5Aexists(ds, "units") > 0) {
    hid_t a = H5Aopen(ds, "units", H5P_DEFAULT), at = H5Aget_type(a);
    char *u = NULL;
    if (H5Aread(a, at, &u) >= 0 && u) {
      snprintf(c->units, sizeof c->units, "%s", u);
      H5free_memory(u);
    }
    H5Tclose(at);
    H5Aclose(a);
  }
  H5Tclose(ty);
  H5Sclose(sp);
  H5Dclose(ds);
  if (e < 0) {
    free(c->v);
    w->bad = 1;
    return 1;
  }
  w->n++;
  return 0;
}

qcal_table *qcal_results_table(qcal_results *r, const char *name) {
  hid_t g = H5Lexists((hid_t)r->file, name, H5P_DEFAULT) > 0
                ? H5Gopen2((hid_t)r->file, name, H5P_DEFAULT)
                : -1;
  if (g < 0) {
    qcal_error(QCAL_EFORMAT, "%s: no table '%s'", r->path, name);
    return NULL;
  }
  walk w = {.n = 0, .g = g};
  H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, visit, &w);
  H5Gclose(g);
  qcal_table *t = NULL;
  size_t rows = w.n ? w.cols[0].n : 0;
  int ok = !w.bad;
  for (int c = 0; c < w.n; c++)
    ok &= w.cols[c].n == rows;
  if (ok) {
    t = qcal_table_new(name, NULL);
    for (int c = 0; t && c < w.n; c++)
      qcal_table_col(t, w.cols[c].name, w.cols[c].type, w.cols[c].units);
    for (size_t i = 0; t && i < rows; i++) {
      qcal_table_row(t);
      for (int c = 0; c < w.n; c++) {
        if (w.cols[c].type == 'f')
          qcal_table_set_f(t, c, ((double *)w.cols[c].v)[i]);
        else if (w.cols[c].type == 'i')
          qcal_table_set_i(t, c, ((int64_t *)w.cols[c].v)[i]);
        else
          qcal_table_set_s(t, c, ((char **)w.cols[c].v)[i]);
      }
    }
  } else {
    qcal_error(QCAL_EFORMAT, "%s: table '%s' is malformed (columns of unequal length)", r->path,
               name);
  }
  for (int c = 0; c < w.n; c++) {
    if (w.cols[c].type == 's')
      for (size_t i = 0; i < w.cols[c].n; i++)
        H5free_memory(((char **)w.cols[c].v)[i]);
    free(w.cols[c].v);
  }
  return t;
}

static qcal_status read_1d(qcal_results *r, const char *path, hid_t mt, size_t es, void **v,
                           size_t *n) {
  *v = NULL;
  *n = 0;
  if (H5Lexists((hid_t)r->file, path, H5P_DEFAULT) <= 0)
    return qcal_error(QCAL_EFORMAT, "%s: no dataset '%s'", r->path, path);
  hid_t ds = H5Dopen2((hid_t)r->file, path, H5P_DEFAULT);
  if (ds < 0)
    return qcal_error(QCAL_EFORMAT, "%s: '%s' is not a dataset", r->path, path);
  hid_t sp = H5Dget_space(ds);
  hsize_t d = 0;
  H5Sget_simple_extent_dims(sp, &d, NULL);
  H5Sclose(sp);
  *v = malloc(d ? d * es : 1);
  herr_t e = *v ? H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, *v) : -1;
  H5Dclose(ds);
  if (e < 0) {
    free(*v);
    *v = NULL;
    return qcal_error(QCAL_EFORMAT, "%s: cannot read '%s'", r->path, path);
  }
  *n = (size_t)d;
  return QCAL_OK;
}

qcal_status qcal_results_f32(qcal_results *r, const char *path, float **v, size_t *n) {
  return read_1d(r, path, H5T_NATIVE_FLOAT, 4, (void **)v, n);
}

qcal_status qcal_results_u64(qcal_results *r, const char *path, uint64_t **v, size_t *n) {
  return read_1d(r, path, H5T_NATIVE_UINT64, 8, (void **)v, n);
}
