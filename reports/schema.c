/* The results schema as data, and its Markdown and JSON renderings. */
#include "qcal/schema.h"

#include <json-c/json.h>
#include <string.h>

const qcal_schema_column qcal_schema_columns[QCAL_SCHEMA_COLUMNS] = {
#define QCAL_TABLE(ID, name, desc)
#define QCAL_COLUMN(T, C, type, units, lo, hi, since, doc)                                         \
  {QCAL_TABLE_##T, #C, units, doc, type, (double)(lo), (double)(hi), since},
#include "qcal/schema.inc"
#undef QCAL_TABLE
#undef QCAL_COLUMN
};

const qcal_schema_table qcal_schema_tables[QCAL_TABLE_COUNT] = {
#define QCAL_TABLE(ID, name, desc) {name, desc, QCAL_SC_##ID##__FIRST},
#define QCAL_COLUMN(T, C, type, units, lo, hi, since, doc)
#include "qcal/schema.inc"
#undef QCAL_TABLE
#undef QCAL_COLUMN
};

int qcal_schema_ncols(qcal_table_id t) {
  const int end = t + 1 < QCAL_TABLE_COUNT ? qcal_schema_tables[t + 1].first : QCAL_SCHEMA_COLUMNS;
  return end - qcal_schema_tables[t].first;
}

int qcal_schema_find(const char *name) {
  for (int t = 0; t < QCAL_TABLE_COUNT; t++)
    if (!strcmp(qcal_schema_tables[t].name, name))
      return t;
  return -1;
}

static const char *type_name(char t) {
  return t == 'f' ? "float64" : t == 'i' ? "int64" : "string";
}

void qcal_schema_print_md(FILE *out) {
  fprintf(out, "| table | column | type | units | accepted | meaning |\n"
               "|---|---|---|---|---|---|\n");
  for (int t = 0; t < QCAL_TABLE_COUNT; t++) {
    const qcal_schema_table *tb = &qcal_schema_tables[t];
    for (int c = tb->first; c < tb->first + qcal_schema_ncols((qcal_table_id)t); c++) {
      const qcal_schema_column *k = &qcal_schema_columns[c];
      char range[64] = "";
      if (k->type != 's')
        snprintf(range, sizeof range, "%s%.10g .. %.10g", k->type == 'f' ? "NaN, " : "",
                 k->lo <= -1e300 ? -INFINITY : k->lo, k->hi >= 1e300 ? INFINITY : k->hi);
      else
        snprintf(range, sizeof range, "<= %d bytes", QCAL_SCHEMA_STR_MAX);
      char since[32] = "";
      if (k->since > 1)
        snprintf(since, sizeof since, " (since version %d)", k->since);
      fprintf(out, "| `/%s` | `%s` | %s | %s | %s | %s%s |\n", tb->name, k->name,
              type_name(k->type), k->units, range, k->doc, since);
    }
  }
}

void qcal_schema_print_json(FILE *out) {
  json_object *root = json_object_new_object();
  for (int t = 0; t < QCAL_TABLE_COUNT; t++) {
    const qcal_schema_table *tb = &qcal_schema_tables[t];
    json_object *o = json_object_new_object(), *cols = json_object_new_array();
    json_object_object_add(o, "description", json_object_new_string(tb->description));
    for (int c = tb->first; c < tb->first + qcal_schema_ncols((qcal_table_id)t); c++) {
      const qcal_schema_column *k = &qcal_schema_columns[c];
      json_object *e = json_object_new_object();
      json_object_object_add(e, "name", json_object_new_string(k->name));
      json_object_object_add(e, "type", json_object_new_string(type_name(k->type)));
      json_object_object_add(e, "units", json_object_new_string(k->units));
      json_object_object_add(e, "since", json_object_new_int(k->since));
      if (k->type != 's') {
        json_object_object_add(e, "min", k->lo <= -1e300 ? NULL : json_object_new_double(k->lo));
        json_object_object_add(e, "max", k->hi >= 1e300 ? NULL : json_object_new_double(k->hi));
      }
      json_object_array_add(cols, e);
    }
    json_object_object_add(o, "columns", cols);
    json_object_object_add(root, tb->name, o);
  }
  fprintf(out, "%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY));
  json_object_put(root);
}
