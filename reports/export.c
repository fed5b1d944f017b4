/* Exports of calibrated scales: JSON, the TensorRT calibration cache, and
 * ONNX QuantizeLinear scale / zero-point lists. */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcal/export.h"

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

void qcal_trt_cache_line(const char *tensor, float amax, char *out, size_t cap) {
  float scale = amax / 127.0f;
  snprintf(out, cap, "%s: %08x", tensor, f32_bits(scale));
}

json_object *qcal_export_json_entry(const char *kind, const char *graph_tensor, const float *a,
                                    size_t ch, float qmax) {
  json_object *e = json_object_new_object();
  json_object_object_add(e, "kind", json_object_new_string(kind));
  json_object_object_add(e, "graph_tensor", json_object_new_string(graph_tensor));
  if (ch == 1) {
    json_object_object_add(e, "amax", json_object_new_double(a[0]));
    json_object_object_add(e, "scale", json_object_new_double(a[0] / qmax));
    return e;
  }
  json_object *amax = json_object_new_array(), *scale = json_object_new_array();
  for (size_t c = 0; c < ch; c++) {
    json_object_array_add(amax, json_object_new_double(a[c]));
    json_object_array_add(scale, json_object_new_double(a[c] / qmax));
  }
  json_object_object_add(e, "amax", amax);
  json_object_object_add(e, "scale", scale);
  return e;
}

qcal_status qcal_export(qcal_results *r, const qcal_export_opts *o, FILE *out) {
  qcal_sweep_tables sw;
  qcal_status st = qcal_results_read_sweep(r, &sw);
  const qcal_table *res = sw.results, *ten = sw.tensors;
  const float *am = sw.amax;
  json_object *root = NULL, *list = NULL;
  int rows = 0;
  if (st == QCAL_OK) {
    const int c_t = QCAL_COL(RESULTS, tensor_id), c_m = QCAL_COL(RESULTS, method),
              c_p = QCAL_COL(RESULTS, percentile), c_g = QCAL_COL(RESULTS, granularity),
              c_b = QCAL_COL(RESULTS, bits), c_ch = QCAL_COL(RESULTS, channels),
              c_off = QCAL_COL(RESULTS, amax_offset);
    const int k_kind = QCAL_COL(TENSORS, kind), k_graph = QCAL_COL(TENSORS, graph_tensor),
              k_axis = QCAL_COL(TENSORS, channel_axis), k_name = QCAL_COL(TENSORS, name);
    if (o->format == QCAL_EXPORT_TRT)
      fprintf(out, "TRT-%d-%s\n", o->trt_version,
              !strcmp(o->method, "max") ? "MinMaxCalibration" : "EntropyCalibration2");
    if (o->format == QCAL_EXPORT_JSON) {
      root = json_object_new_object();
      json_object_object_add(root, "method", json_object_new_string(o->method));
      if (!strcmp(o->method, "percentile"))
        json_object_object_add(root, "percentile", json_object_new_double(o->percentile));
      json_object_object_add(root, "bits", json_object_new_int(o->bits));
      json_object_object_add(root, "granularity", json_object_new_string(o->granularity));
      list = json_object_new_object();
    } else if (o->format == QCAL_EXPORT_ONNX) {
      list = json_object_new_array();
    }
    const float qmax = (float)((1 << (o->bits - 1)) - 1);
    for (size_t i = 0; i < qcal_table_rows(res); i++) {
      long row = (long)i;
      if (strcmp(qcal_table_get_s(res, row, c_m), o->method) ||
          qcal_table_get_i(res, row, c_b) != o->bits ||
          strcmp(qcal_table_get_s(res, row, c_g), o->granularity))
        continue;
      if (!strcmp(o->method, "percentile") &&
          fabs(qcal_table_get_f(res, row, c_p) - o->percentile) > 1e-9)
        continue;
      long t = (long)qcal_table_get_i(res, row, c_t);
      const char *kind = qcal_table_get_s(ten, t, k_kind);
      if (o->format == QCAL_EXPORT_TRT && strcmp(kind, "activation") && strcmp(kind, "file"))
        continue; /* the cache holds activation ranges only */
      const char *gname = qcal_table_get_s(ten, t, k_graph);
      size_t ch = (size_t)qcal_table_get_i(res, row, c_ch),
             off = (size_t)qcal_table_get_i(res, row, c_off);
      const float *a = am + off;
      rows++;
      if (o->format == QCAL_EXPORT_TRT) {
        char line[600];
        qcal_trt_cache_line(gname, a[0], line, sizeof line);
        fprintf(out, "%s\n", line);
        continue;
      }
      if (o->format == QCAL_EXPORT_JSON) {
        json_object_object_add(list, qcal_table_get_s(ten, t, k_name),
                               qcal_export_json_entry(kind, gname, a, ch, qmax));
      } else {
        json_object *scale = json_object_new_array();
        for (size_t c = 0; c < ch; c++)
          json_object_array_add(scale, json_object_new_double(a[c] / qmax));
        json_object *e = json_object_new_object();
        json_object *zp = json_object_new_array();
        for (size_t c = 0; c < ch; c++)
          json_object_array_add(zp, json_object_new_int(0));
        json_object_object_add(e, "tensor", json_object_new_string(gname));
        json_object_object_add(e, "y_scale", ch == 1 ? json_object_new_double(a[0] / qmax) : scale);
        json_object_object_add(e, "y_zero_point", ch == 1 ? json_object_new_int(0) : zp);
        json_object_object_add(e, "zero_point_type", json_object_new_string("int8"));
        json_object_object_add(
            e, "axis", ch == 1 ? NULL : json_object_new_int((int)qcal_table_get_i(ten, t, k_axis)));
        if (ch == 1)
          json_object_put(zp), json_object_put(scale);
        json_object_array_add(list, e);
      }
    }
    if (rows == 0) {
      st = qcal_error(QCAL_EINVAL, "%s: no results for method %s, %d bits, %s", r->path, o->method,
                      o->bits, o->granularity);
      goto done;
    }
    if (o->format == QCAL_EXPORT_JSON) {
      json_object_object_add(root, "tensors", list);
      list = NULL;
      fprintf(out, "%s\n",
              json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
    } else if (o->format == QCAL_EXPORT_ONNX) {
      fprintf(out, "%s\n",
              json_object_to_json_string_ext(list, JSON_C_TO_STRING_PRETTY |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
    }
  }
done:
  if (root)
    json_object_put(root);
  if (list)
    json_object_put(list);
  qcal_sweep_tables_free(&sw);
  return st;
}
