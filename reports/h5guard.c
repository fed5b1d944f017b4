/* Crash isolation for results files. qcal's reader checks everything it can
 * before libhdf5 reads, but libhdf5 1.10 itself segfaults, hangs or allocates
 * without bound on some corrupt internal structures (global heaps, object
 * headers; tests/fuzz/regressions/results-hdf5-*). So every results file is
 * first read whole in a child process (qcal_isolated); only a file the child
 * read cleanly is read again in this process. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcal/isolate.h"
#include "reports/table_internal.h"

/* Everything a consumer may read: every table present, the sweep's cross
 * references and histograms, the provenance attributes and samples. */
static qcal_status read_everything(qcal_results *r) {
  qcal_status st = QCAL_OK;
  for (int id = 0; id < QCAL_TABLE_COUNT && st == QCAL_OK; id++) {
    qcal_table *t = NULL;
    if (qcal_results_has(r, (qcal_table_id)id))
      st = qcal_results_read(r, (qcal_table_id)id, &t);
    qcal_table_free(t);
  }
  if (st == QCAL_OK && qcal_results_has(r, QCAL_TABLE_RESULTS)) {
    qcal_sweep_tables sw;
    st = qcal_results_read_sweep(r, &sw); /* histogram slices checked there */
    if (st == QCAL_OK && r->version >= 2)
      st = qcal_results_scan(r, "/histogram_counts", 0);
    if (st == QCAL_OK && r->version >= 2)
      st = qcal_results_scan(r, "/histogram_edges", 1);
    for (size_t t = 0; st == QCAL_OK && r->version < 2 && t < sw.ntensors; t++) {
      uint64_t *c;
      float *e;
      size_t nb;
      if (qcal_results_has_histogram(r, &sw, t) &&
          (st = qcal_results_histogram(r, &sw, t, &c, &e, &nb)) == QCAL_OK)
        free(c), free(e);
    }
    qcal_sweep_tables_free(&sw);
  }
  static const char *const attrs[] = {"qcal_version", "git_commit", "date",
                                      "cpu_model",    "cpu_flags",  "kernels",
                                      "gpu",          "compiler",   "config"};
  for (size_t i = 0; i < sizeof attrs / sizeof attrs[0] && st == QCAL_OK; i++) {
    char buf[256];
    qcal_status a = qcal_results_attr(r, attrs[i], buf, sizeof buf);
    if (a != QCAL_OK && !strstr(qcal_last_error(), "no attribute"))
      st = a;
  }
  if (st == QCAL_OK && qcal_results_has(r, QCAL_TABLE_SAMPLES)) {
    float *s = NULL;
    size_t n;
    st = qcal_results_f32(r, "/samples_seconds", &s, &n);
    free(s);
  }
  return st;
}

static qcal_status read_everything_cb(void *r) {
  return read_everything(r);
}

qcal_status qcal_results_guard(qcal_results *r) {
  /* generous: reading is I/O bound; a hang is what this catches */
  const unsigned limit = 60 + (unsigned)(r->file_size >> 24);
  /* a file can make libhdf5 allocate what it claims: cap the child's heap */
  return qcal_isolated(r->path, read_everything_cb, r, limit,
                       64.0 * (double)r->file_size + (double)(1u << 30));
}
