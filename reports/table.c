/* Column tables: the in-memory form of every results table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcal/schema.h"
#include "reports/table_internal.h"

typedef struct {
  char name[64], units[32];
  char type;
  void *v; /* double*, int64_t*, char** */
} column;

struct qcal_table {
  char name[64], description[256];
  int ncols;
  column cols[48];
  size_t rows, cap;
};

qcal_table *qcal_table_new(const char *name, const char *description) {
  qcal_table *t = calloc(1, sizeof *t);
  if (t) {
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->description, sizeof t->description, "%s", description ? description : "");
  }
  return t;
}

qcal_table *qcal_table_new_schema(qcal_table_id id) {
  const qcal_schema_table *st = &qcal_schema_tables[id];
  qcal_table *t = qcal_table_new(st->name, st->description);
  for (int c = 0; t && c < qcal_schema_ncols(id); c++) {
    const qcal_schema_column *k = &qcal_schema_columns[st->first + c];
    qcal_table_col(t, k->name, k->type, k->units);
  }
  return t;
}

void qcal_table_free(qcal_table *t) {
  if (!t)
    return;
  for (int c = 0; c < t->ncols; c++) {
    if (t->cols[c].type == 's')
      for (size_t r = 0; r < t->rows; r++)
        free(((char **)t->cols[c].v)[r]);
    free(t->cols[c].v);
  }
  free(t);
}

int qcal_table_col(qcal_table *t, const char *name, char type, const char *units) {
  if (t->rows || t->ncols == 48 || !strchr("fis", type))
    return -1;
  column *c = &t->cols[t->ncols];
  snprintf(c->name, sizeof c->name, "%s", name);
  snprintf(c->units, sizeof c->units, "%s", units ? units : "");
  c->type = type;
  return t->ncols++;
}

int qcal_table_find(const qcal_table *t, const char *name) {
  for (int c = 0; c < t->ncols; c++)
    if (!strcmp(t->cols[c].name, name))
      return c;
  return -1;
}

static size_t width(char type) {
  return type == 'f' ? sizeof(double) : type == 'i' ? sizeof(int64_t) : sizeof(char *);
}

long qcal_table_row(qcal_table *t) {
  if (t->rows == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 64;
    for (int c = 0; c < t->ncols; c++) {
      void *v = realloc(t->cols[c].v, cap * width(t->cols[c].type));
      if (!v)
        return -1;
      t->cols[c].v = v;
    }
    t->cap = cap;
  }
  size_t r = t->rows++;
  for (int c = 0; c < t->ncols; c++) {
    if (t->cols[c].type == 'f')
      ((double *)t->cols[c].v)[r] = NAN;
    else if (t->cols[c].type == 'i')
      ((int64_t *)t->cols[c].v)[r] = 0;
    else
      ((char **)t->cols[c].v)[r] = NULL;
  }
  return (long)r;
}

void qcal_table_set_at_f(qcal_table *t, long row, int col, double v) {
  ((double *)t->cols[col].v)[row] = v;
}
void qcal_table_set_at_i(qcal_table *t, long row, int col, int64_t v) {
  ((int64_t *)t->cols[col].v)[row] = v;
}
void qcal_table_set_at_s(qcal_table *t, long row, int col, const char *v) {
  char **p = &((char **)t->cols[col].v)[row];
  free(*p);
  *p = strdup(v ? v : "");
}
void qcal_table_set_f(qcal_table *t, int col, double v) {
  qcal_table_set_at_f(t, (long)t->rows - 1, col, v);
}
void qcal_table_set_i(qcal_table *t, int col, int64_t v) {
  ((int64_t *)t->cols[col].v)[t->rows - 1] = v;
}
void qcal_table_set_s(qcal_table *t, int col, const char *v) {
  qcal_table_set_at_s(t, (long)t->rows - 1, col, v);
}
size_t qcal_table_rows(const qcal_table *t) {
  return t->rows;
}
double qcal_table_get_f(const qcal_table *t, long row, int col) {
  return ((double *)t->cols[col].v)[row];
}
int64_t qcal_table_get_i(const qcal_table *t, long row, int col) {
  return ((int64_t *)t->cols[col].v)[row];
}
const char *qcal_table_get_s(const qcal_table *t, long row, int col) {
  const char *s = ((char **)t->cols[col].v)[row];
  return s ? s : "";
}
const char *qcal_table_name(const qcal_table *t) {
  return t->name;
}

/* For the HDF5 writer. */
int qcal_table_ncols(const qcal_table *t) {
  return t->ncols;
}
const char *qcal_table_col_name(const qcal_table *t, int c) {
  return t->cols[c].name;
}
const char *qcal_table_col_units(const qcal_table *t, int c) {
  return t->cols[c].units;
}
char qcal_table_col_type(const qcal_table *t, int c) {
  return t->cols[c].type;
}
const void *qcal_table_col_data(const qcal_table *t, int c) {
  return t->cols[c].v;
}
void *qcal_table_col_data_mut(qcal_table *t, int c) {
  return t->cols[c].v;
}
const char *qcal_table_description(const qcal_table *t) {
  return t->description;
}
