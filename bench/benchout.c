/* Benchmark records, Google Benchmark JSON, HDF5 samples, thread pinning. */
#include <json-c/json.h>
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/benchout.h"

bench_rec *qcal_bench_add(bench_set *b, const char *name, const double *samples, int n) {
  if (b->n == b->cap) {
    int cap = b->cap ? 2 * b->cap : 64;
    bench_rec *r = realloc(b->recs, (size_t)cap * sizeof *r);
    if (!r)
      return NULL;
    b->recs = r;
    b->cap = cap;
  }
  bench_rec *r = &b->recs[b->n];
  memset(r, 0, sizeof *r);
  snprintf(r->name, sizeof r->name, "%s", name);
  r->samples = malloc((size_t)(n ? n : 1) * sizeof *r->samples);
  if (!r->samples)
    return NULL;
  memcpy(r->samples, samples, (size_t)n * sizeof *samples);
  r->nsamples = n;
  double *tmp = malloc((size_t)(n ? n : 1) * sizeof *tmp);
  if (tmp) {
    memcpy(tmp, samples, (size_t)n * sizeof *tmp);
    r->st = qcal_stats_of(tmp, n);
    free(tmp);
  }
  b->n++;
  return r;
}

void qcal_bench_counter(bench_rec *r, const char *key, double v) {
  if (r->ncounters == 8)
    return;
  snprintf(r->counters[r->ncounters], sizeof r->counters[0], "%s", key);
  r->values[r->ncounters++] = v;
}

void qcal_bench_free(bench_set *b) {
  for (int i = 0; i < b->n; i++)
    free(b->recs[i].samples);
  free(b->recs);
  memset(b, 0, sizeof *b);
}

static json_object *entry(const bench_rec *r, const char *run_type, const char *agg, int idx,
                          double seconds) {
  json_object *e = json_object_new_object();
  char name[200];
  snprintf(name, sizeof name, "%s%s%s", r->name, agg ? "_" : "", agg ? agg : "");
  json_object_object_add(e, "name", json_object_new_string(name));
  json_object_object_add(e, "family_index", json_object_new_int(0));
  json_object_object_add(e, "run_name", json_object_new_string(r->name));
  json_object_object_add(e, "run_type", json_object_new_string(run_type));
  json_object_object_add(e, "repetitions", json_object_new_int(r->nsamples));
  json_object_object_add(e, "repetition_index", json_object_new_int(idx));
  json_object_object_add(e, "threads", json_object_new_int(omp_get_max_threads()));
  json_object_object_add(e, "iterations", json_object_new_int(1));
  if (agg)
    json_object_object_add(e, "aggregate_name", json_object_new_string(agg));
  json_object_object_add(e, "real_time", json_object_new_double(seconds * 1e9));
  json_object_object_add(e, "cpu_time", json_object_new_double(seconds * 1e9));
  json_object_object_add(e, "time_unit", json_object_new_string("ns"));
  for (int c = 0; c < r->ncounters; c++)
    if (isfinite(r->values[c]))
      json_object_object_add(e, r->counters[c], json_object_new_double(r->values[c]));
  return e;
}

qcal_status qcal_bench_write_json(const bench_set *b, const char *path, const char *context_json) {
  json_object *root = json_object_new_object();
  json_object *ctx = context_json ? json_tokener_parse(context_json) : NULL;
  json_object_object_add(root, "context", ctx ? ctx : json_object_new_object());
  json_object *arr = json_object_new_array();
  for (int i = 0; i < b->n; i++) {
    const bench_rec *r = &b->recs[i];
    for (int k = 0; k < r->nsamples; k++)
      json_object_array_add(arr, entry(r, "iteration", NULL, k, r->samples[k]));
    double mean = 0, var = 0;
    for (int k = 0; k < r->nsamples; k++)
      mean += r->samples[k] / r->nsamples;
    for (int k = 0; k < r->nsamples; k++)
      var +=
          (r->samples[k] - mean) * (r->samples[k] - mean) / (r->nsamples > 1 ? r->nsamples - 1 : 1);
    json_object_array_add(arr, entry(r, "aggregate", "mean", 0, mean));
    json_object_array_add(arr, entry(r, "aggregate", "median", 0, r->st.median));
    json_object_array_add(arr, entry(r, "aggregate", "stddev", 0, sqrt(var)));
  }
  json_object_object_add(root, "benchmarks", arr);
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  int rc =
      json_object_to_file_ext(tmp, root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
  json_object_put(root);
  if (rc != 0 || rename(tmp, path) != 0) {
    unlink(tmp);
    return qcal_error(QCAL_EIO, "%s: cannot write the benchmark JSON", path);
  }
  return QCAL_OK;
}

qcal_status qcal_bench_write_samples(qcal_h5 *h, const bench_set *b) {
  qcal_table *t = qcal_table_new_schema(QCAL_TABLE_SAMPLES);
  int c_n = QCAL_COL(SAMPLES, name), c_o = QCAL_COL(SAMPLES, offset),
      c_c = QCAL_COL(SAMPLES, count);
  size_t total = 0;
  for (int i = 0; i < b->n; i++)
    total += (size_t)b->recs[i].nsamples;
  float *all = malloc((total ? total : 1) * sizeof *all);
  size_t off = 0;
  for (int i = 0; i < b->n && all; i++) {
    qcal_table_row(t);
    qcal_table_set_s(t, c_n, b->recs[i].name);
    qcal_table_set_i(t, c_o, (int64_t)off);
    qcal_table_set_i(t, c_c, b->recs[i].nsamples);
    for (int k = 0; k < b->recs[i].nsamples; k++)
      all[off++] = (float)b->recs[i].samples[k];
  }
  qcal_status st = all ? qcal_h5_write_table(h, t) : qcal_error(QCAL_ENOMEM, "out of memory");
  if (st == QCAL_OK)
    st = qcal_h5_write_f32(h, "/samples_seconds", all, total, "s");
  free(all);
  qcal_table_free(t);
  return st;
}

void qcal_pin_threads(int nt) {
  omp_set_num_threads(nt);
  int ncpu = omp_get_num_procs();
#pragma omp parallel num_threads(nt)
  {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(omp_get_thread_num() % ncpu, &set);
    sched_setaffinity(0, sizeof set, &set);
  }
}

qcal_status qcal_bench_write_outputs(const bench_set *b, const char *h5_path, const char *json_path,
                                     qcal_table *const *tables, int ntables,
                                     const char *context_json) {
  if (json_path)
    QCAL_TRY(qcal_bench_write_json(b, json_path, context_json));
  if (!h5_path)
    return QCAL_OK;
  qcal_h5 h;
  QCAL_TRY(qcal_h5_create(&h, h5_path));
  qcal_status st = qcal_write_provenance(&h, context_json);
  for (int i = 0; i < ntables && st == QCAL_OK; i++)
    st = qcal_h5_write_table(&h, tables[i]);
  if (st == QCAL_OK)
    st = qcal_bench_write_samples(&h, b);
  if (st != QCAL_OK) {
    qcal_h5_abort(&h);
    return st;
  }
  return qcal_h5_commit(&h);
}
