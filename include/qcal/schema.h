/* The results schema (schema.inc) as C: table and column ids, and the
 * column index of every column in its table. */
#ifndef QCAL_SCHEMA_H
#define QCAL_SCHEMA_H

#include <math.h>
#include <stdio.h>

typedef enum qcal_table_id {
#define QCAL_TABLE(ID, name, desc) QCAL_TABLE_##ID,
#define QCAL_COLUMN(T, C, type, units, lo, hi, since, doc)
#include "qcal/schema.inc"
#undef QCAL_TABLE
#undef QCAL_COLUMN
  QCAL_TABLE_COUNT
} qcal_table_id;

/* Global column numbers; a table's columns are contiguous, starting at its
 * __FIRST marker (the marker after it resets the count). */
enum qcal_schema_col {
#define QCAL_TABLE(ID, name, desc)                                                                 \
  QCAL_SC_##ID##__FIRST, QCAL_SC_##ID##__BACK = QCAL_SC_##ID##__FIRST - 1,
#define QCAL_COLUMN(T, C, type, units, lo, hi, since, doc) QCAL_SC_##T##_##C,
#include "qcal/schema.inc"
#undef QCAL_TABLE
#undef QCAL_COLUMN
  QCAL_SCHEMA_COLUMNS
};

/* Index of column C in table T, as qcal_table_new_schema and the reader lay
 * them out: QCAL_COL(RESULTS, sqnr_db). */
#define QCAL_COL(T, C) ((int)(QCAL_SC_##T##_##C - QCAL_SC_##T##__FIRST))

typedef struct qcal_schema_column {
  qcal_table_id table;
  const char *name, *units, *doc;
  char type;
  double lo, hi;
  int since; /* schema version that added it */
} qcal_schema_column;

typedef struct qcal_schema_table {
  const char *name, *description;
  int first; /* into qcal_schema_columns */
} qcal_schema_table;

extern const qcal_schema_column qcal_schema_columns[QCAL_SCHEMA_COLUMNS];
extern const qcal_schema_table qcal_schema_tables[QCAL_TABLE_COUNT];

/* Columns of a table: qcal_schema_columns[first .. first + ncols). */
int qcal_schema_ncols(qcal_table_id t);
/* The table called name, or -1. */
int qcal_schema_find(const char *name);

/* Longest string a reader accepts in a column or attribute. */
#define QCAL_SCHEMA_STR_MAX 4096

/* The schema as a Markdown table (docs/results.md) or JSON (the oracles). */
void qcal_schema_print_md(FILE *out);
void qcal_schema_print_json(FILE *out);

#endif
