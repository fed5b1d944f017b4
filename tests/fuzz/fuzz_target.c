/* libFuzzer targets, one per parser; meson builds this file once per target
 * with -DFUZZ_<NAME>. Every input is written to a temporary file and read
 * through the public API, as a user's file would be. Errors are the expected
 * outcome for most inputs; a crash, leak, hang or UB report is a bug. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcal/compare.h"
#include "qcal/datasets.h"
#include "qcal/export.h"
#include "qcal/graph.h"
#include "qcal/results.h"

__attribute__((unused)) static qcal_status drop(void *ctx, qcal_tensor *t) {
  (void)ctx;
  qcal_tensor_free(t);
  return QCAL_OK;
}

/* data as DIR/NAME; the caller removes DIR */
__attribute__((unused)) static int put(char *dir, const char *name, const uint8_t *data,
                                       size_t size, char *path, size_t cap) {
  if (!mkdtemp(dir))
    return -1;
  snprintf(path, cap, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  fwrite(data, 1, size, f);
  return fclose(f);
}

/* An imported graph: prepare with symbolic dims at 1, run small ones once,
 * free. */
/* Prepare and run a graph on zeros; with `save`, prepare it as qcal
 * quantize does (no fusion) and write it back as ONNX, then read that. */
__attribute__((unused)) static void drive_graph(qcal_graph *g, const qcal_graph_opts *o,
                                                const char *save) {
  bool ok = g->ninputs <= 8;
  void *in[8] = {0};
  for (int i = 0; i < g->ninputs && ok; i++) {
    qcal_value *v = &g->values[g->inputs[i]];
    int64_t s[QCAL_MAX_DIMS];
    size_t n = 1;
    for (int d = 0; d < v->ndim; d++)
      s[d] = v->shape[d] > 0 ? v->shape[d] : 1, n *= (size_t)s[d];
    ok = n <= (1u << 16) && qcal_graph_bind_input(g, i, v->ndim, s) == QCAL_OK &&
         (in[i] = calloc(n ? n : 1, 8)) != NULL;
  }
  if (ok && qcal_graph_prepare(g, o) == QCAL_OK) {
    qcal_graph *back;
    if (save && qcal_onnx_save(g, NULL, 0, save) == QCAL_OK &&
        qcal_onnx_load(save, &back) == QCAL_OK)
      qcal_graph_free(back);
    size_t total = 0;
    for (int v = 0; v < g->nvalues; v++)
      total += g->values[v].numel;
    if (total <= (1u << 20))
      qcal_graph_run(g, (const void *const *)in);
  }
  for (int i = 0; i < 8; i++)
    free(in[i]);
  qcal_graph_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char dir[] = "/tmp/qcal_fuzz_XXXXXX", path[128] = "", extra[128] = "";
#if defined(FUZZ_NPY)
  qcal_tensor t;
  if (qcal_npy_parse("fuzz.npy", data, size, &t) == QCAL_OK)
    qcal_tensor_free(&t);
  return 0;
#elif defined(FUZZ_NPZ)
  if (put(dir, "f.npz", data, size, path, sizeof path) == 0)
    qcal_load_tensors(path, drop, NULL);
#elif defined(FUZZ_SAFETENSORS)
  if (put(dir, "f.safetensors", data, size, path, sizeof path) == 0)
    qcal_load_tensors(path, drop, NULL);
#elif defined(FUZZ_TFJS)
  if (put(dir, "model.json", data, size, path, sizeof path) == 0) {
    /* a small weights file for manifests that name w.bin */
    snprintf(extra, sizeof extra, "%s/w.bin", dir);
    FILE *f = fopen(extra, "wb");
    float w[256] = {0};
    if (f) {
      fwrite(w, sizeof w, 1, f);
      fclose(f);
    }
    qcal_graph *g;
    if (qcal_tfjs_graph_load(path, &g) == QCAL_OK)
      drive_graph(g, NULL, NULL);
  }
#elif defined(FUZZ_ONNX)
  qcal_graph *g;
  /* the engines (fp32, qdq, int8) by the first byte; every fourth input is
   * written back through the ONNX writer instead */
  const int pick = size ? data[0] % 4 : 0;
  qcal_graph_opts o = {
      .engine = (qcal_engine)(pick % 3), .no_fuse = pick == 3, .plain_values = pick == 3};
  if (put(dir, "m.onnx", data, size, path, sizeof path) == 0) {
    snprintf(extra, sizeof extra, "%s/back.onnx", dir);
    if (qcal_onnx_load(path, &g) == QCAL_OK)
      drive_graph(g, &o, pick == 3 ? extra : NULL);
  }
#elif defined(FUZZ_RESULTS)
  /* the validating reader, as report, compare and export use it, in this
   * process: libFuzzer must see every fault itself, not the guard's child */
  setenv("QCAL_NO_ISOLATION", "1", 1);
  qcal_results r;
  if (put(dir, "r.h5", data, size, path, sizeof path) == 0 &&
      qcal_results_open(&r, path) == QCAL_OK) {
    for (int id = 0; id < QCAL_TABLE_COUNT; id++) {
      qcal_table *t;
      if (qcal_results_has(&r, (qcal_table_id)id) &&
          qcal_results_read(&r, (qcal_table_id)id, &t) == QCAL_OK)
        qcal_table_free(t);
    }
    qcal_sweep_tables sw;
    if (qcal_results_read_sweep(&r, &sw) == QCAL_OK)
      qcal_sweep_tables_free(&sw);
    char buf[256];
    qcal_results_attr(&r, "qcal_version", buf, sizeof buf);
    uint64_t *c = NULL;
    size_t n;
    if (qcal_results_u64(&r, "/histograms/0/counts", &c, &n) == QCAL_OK)
      free(c);
    FILE *null = fopen("/dev/null", "w");
    qcal_export_opts o = {QCAL_EXPORT_JSON, "max", 99.99, 8, "per-tensor", 8601};
    if (null) {
      qcal_export(&r, &o, null);
      fclose(null);
    }
    qcal_thresholds th = QCAL_THRESHOLDS_DEFAULT;
    qcal_cmp cmp;
    if (qcal_compare(&r, &r, &th, &cmp) == QCAL_OK)
      qcal_cmp_free(&cmp);
    qcal_results_close(&r);
  }
#elif defined(FUZZ_THRESHOLDS)
  qcal_thresholds th = QCAL_THRESHOLDS_DEFAULT;
  if (put(dir, "thresholds.conf", data, size, path, sizeof path) == 0)
    qcal_thresholds_load(path, &th);
#elif defined(FUZZ_IMAGE)
  qcal_tensor t;
  qcal_preproc p = {.height = 33, .width = 33, .channels = 3, .scale = 1.0 / 255};
  if (put(dir, "image.jpg", data, size, path, sizeof path) == 0 &&
      qcal_image_preprocess(path, &p, &t) == QCAL_OK)
    qcal_tensor_free(&t);
#elif defined(FUZZ_IDX)
  /* the same bytes as one IDX file, then as both files of a labelled set */
  qcal_idx x;
  qcal_labelled d;
  if (put(dir, "train-images-idx3-ubyte", data, size, path, sizeof path) == 0) {
    if (qcal_idx_read(path, &x) == QCAL_OK)
      qcal_idx_free(&x);
    snprintf(extra, sizeof extra, "%s/train-labels-idx1-ubyte", dir);
    FILE *f = fopen(extra, "wb");
    if (f) {
      fwrite(data, 1, size, f);
      fclose(f);
      if (qcal_labelled_load(dir, "train", 10, &d) == QCAL_OK)
        qcal_labelled_free(&d);
    }
  }
#else
#error "define one FUZZ_<TARGET>"
#endif
  if (path[0])
    unlink(path);
  if (extra[0])
    unlink(extra);
  rmdir(dir);
  return 0;
}
