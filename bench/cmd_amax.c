/* qcal amax: calibrate one .npy tensor, print amax and the error metrics. */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bench/cli.h"
#include "qcal/calib.h"
#include "qcal/datasets.h"
#include "qcal/kernels.h"
#include "qcal/metrics.h"

typedef struct {
  const char *method, *format, *axis;
  double percentile;
  int bits, is_unsigned, full_range, bins, start_bin, stride, skip_zeros, repeat, threads;
} amax_cfg;

static const char *const methods[] = {"max", "entropy", "mse", "percentile", NULL};
static const char *const formats[] = {"text", "json", NULL};

#define O(f) offsetof(amax_cfg, f)
static const qcal_opt opts[] = {
    {"method", "M", "max, entropy, mse or percentile", O(method), OPT_CHOICE, 0, 0, methods},
    {"percentile", "P", "percentile for --method percentile", O(percentile), OPT_DOUBLE, 0, 100,
     NULL},
    {"bits", "N", "bit width", O(bits), OPT_INT, 2, 16, NULL},
    {"unsigned", NULL, "unsigned grid [0, 2^N - 1]", O(is_unsigned), OPT_FLAG, 0, 0, NULL},
    {"full-range", NULL, "signed grid includes -2^(N-1)", O(full_range), OPT_FLAG, 0, 0, NULL},
    {"axis", "A", "per-channel along axis A (negative counts from the end)", O(axis), OPT_STRING, 0,
     0, NULL},
    {"bins", "B", "histogram bins of the first batch", O(bins), OPT_INT, 2, QCAL_MAX_BINS, NULL},
    {"start-bin", "S", "first candidate bin (entropy, mse)", O(start_bin), OPT_INT, 1,
     QCAL_MAX_BINS, NULL},
    {"stride", "K", "candidate step (entropy, mse)", O(stride), OPT_INT, 1, QCAL_MAX_BINS, NULL},
    {"skip-zeros", NULL, "leave exact zeros out of the histogram", O(skip_zeros), OPT_FLAG, 0, 0,
     NULL},
    {"repeat", "R", "repeat collect+compute R times, report the median", O(repeat), OPT_INT, 1,
     100000, NULL},
    {"threads", "N", "threads for histogram collection (0: all)", O(threads), OPT_INT, 0, 1024,
     NULL},
    {"format", "F", "text or json", O(format), OPT_CHOICE, 0, 0, formats},
    {NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};
#undef O

static const qcal_cmd_info info = {
    "amax",
    "qcal amax FILE.npy [--method M] [--percentile P] [--bits N] [--unsigned] [--full-range]\n"
    "                 [--axis A] [--bins B] [--start-bin S] [--stride K] [--skip-zeros]\n"
    "                 [--repeat R] [--format json|text]",
    "Calibrate one tensor (.npy: float16/32/64, C or Fortran order) with the\n"
    "semantics of NVIDIA's pytorch-quantization, then report amax (per tensor or\n"
    "per channel) and the fake-quantization error it gives. Times exclude file I/O.",
    opts,
};

static json_object *jnum(double v) {
  return isfinite(v) ? json_object_new_double(v) : NULL; /* null: infinite */
}

/* 0, -1 when not an integer, -2 when no tensor has that axis */
static int parse_axis(const char *s, int *axis) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (end == s || *end || errno)
    return -1;
  if (v < -QCAL_MAX_DIMS || v >= QCAL_MAX_DIMS)
    return -2;
  *axis = (int)v;
  return 0;
}

int qcal_cmd_amax(int argc, char **argv) {
  amax_cfg cfg = {"entropy", "text", NULL, 99.99, 8, 0, 0, 2048, 128, 1, 0, 1, 0};
  const char *pos[1];
  int npos;
  int r = qcal_opts_parse(&info, &cfg, argc, argv, pos, 1, &npos);
  if (r)
    return r > 0 ? QCAL_EXIT_OK : QCAL_EXIT_USAGE;
  if (npos != 1)
    return qcal_die("amax: expected one .npy file (see qcal amax --help)");
  const char *path = pos[0];
  int axis = QCAL_PER_TENSOR;
  const int ax = cfg.axis ? parse_axis(cfg.axis, &axis) : 0;
  if (ax == -1)
    return qcal_die("amax: --axis expects an integer, got '%s'", cfg.axis);
  if (ax == -2)
    return qcal_die("amax: --axis %s is out of range (tensors have at most %d dims)", cfg.axis,
                    QCAL_MAX_DIMS);
  if (cfg.is_unsigned && cfg.full_range)
    return qcal_die("amax: --full-range applies to signed grids only");

  qcal_tensor t;
  qcal_status st = qcal_npy_load(path, &t);
  if (st != QCAL_OK)
    return qcal_die_status(st);
  if ((st = qcal_tensor_check(&t)) != QCAL_OK) {
    char msg[1100];
    snprintf(msg, sizeof msg, "%s", qcal_last_error());
    qcal_tensor_free(&t);
    return qcal_die("%s: %s", path, msg);
  }
  qcal_layout l;
  if ((st = qcal_layout_make(t.ndim, t.shape, axis, &l)) != QCAL_OK) {
    char msg[1100];
    snprintf(msg, sizeof msg, "%s", qcal_last_error());
    qcal_tensor_free(&t);
    return qcal_die("%s: --axis: %s", path, msg);
  }

  qcal_calib_request req = {
      .method = qcal_method_find(cfg.method),
      .axis = axis,
      .hist = {(uint32_t)cfg.bins, cfg.skip_zeros != 0, cfg.threads},
      .calib = {{cfg.bits, cfg.is_unsigned != 0, cfg.full_range != 0},
                (uint32_t)cfg.start_bin,
                (uint32_t)cfg.stride,
                cfg.percentile},
  };
  double *tc = malloc((size_t)cfg.repeat * sizeof *tc);
  double *tk = malloc((size_t)cfg.repeat * sizeof *tk);
  qcal_calib_result res = {0};
  for (int i = 0; i < cfg.repeat && st == QCAL_OK; i++) {
    qcal_calib_result_free(&res);
    st = qcal_calibrate(&t, &req, &res);
    tc[i] = res.collect_s;
    tk[i] = res.compute_s;
  }
  qcal_error_stats es;
  qcal_error_stats_init(&es);
  if (st == QCAL_OK)
    st = qcal_error_stats_tensor(&es, &t, axis, res.amax, req.calib.fmt);
  if (st != QCAL_OK) {
    char msg[1100];
    snprintf(msg, sizeof msg, "%s", qcal_last_error());
    free(tc), free(tk);
    qcal_calib_result_free(&res);
    qcal_tensor_free(&t);
    return qcal_die("%s: %s", path, msg);
  }
  qcal_metrics m;
  qcal_error_stats_finish(&es, &m);
  double collect = qcal_median(tc, (size_t)cfg.repeat);
  double compute = qcal_median(tk, (size_t)cfg.repeat);

  if (!strcmp(cfg.format, "json")) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "file", json_object_new_string(path));
    json_object_object_add(o, "tensor", json_object_new_string(t.name));
    json_object *shape = json_object_new_array();
    for (int d = 0; d < t.ndim; d++)
      json_object_array_add(shape, json_object_new_int64(t.shape[d]));
    json_object_object_add(o, "shape", shape);
    json_object_object_add(o, "method", json_object_new_string(cfg.method));
    json_object_object_add(
        o, "granularity",
        json_object_new_string(axis == QCAL_PER_TENSOR ? "per-tensor" : "per-channel"));
    json_object_object_add(o, "axis", axis == QCAL_PER_TENSOR ? NULL : json_object_new_int(axis));
    json_object_object_add(o, "bits", json_object_new_int(cfg.bits));
    json_object_object_add(o, "unsigned", json_object_new_boolean(cfg.is_unsigned));
    json_object_object_add(o, "full_range", json_object_new_boolean(cfg.full_range));
    if (!strcmp(cfg.method, "percentile"))
      json_object_object_add(o, "percentile", json_object_new_double(cfg.percentile));
    if (res.nbins)
      json_object_object_add(o, "bins", json_object_new_int64(res.nbins));
    json_object *a = json_object_new_array();
    for (size_t c = 0; c < res.channels; c++)
      json_object_array_add(a, json_object_new_double(res.amax[c]));
    json_object_object_add(o, "amax", a);
    json_object_object_add(o, "mse", jnum(m.mse));
    json_object_object_add(o, "sqnr_db", jnum(m.sqnr_db));
    json_object_object_add(o, "max_abs_err", jnum(m.max_abs_err));
    json_object_object_add(o, "cosine", jnum(m.cosine));
    json_object_object_add(o, "clip_fraction", jnum(m.clip_fraction));
    json_object_object_add(o, "clip_mse", jnum(m.clip_mse));
    json_object_object_add(o, "round_mse", jnum(m.round_mse));
    json_object_object_add(o, "collect_seconds", json_object_new_double(collect));
    json_object_object_add(o, "compute_seconds", json_object_new_double(compute));
    json_object_object_add(o, "repeat", json_object_new_int(cfg.repeat));
    json_object_object_add(o, "kernels", json_object_new_string(qcal_kernels()->isa));
    puts(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
  } else {
    printf("tensor       %s  (", t.name);
    for (int d = 0; d < t.ndim; d++)
      printf("%s%lld", d ? ", " : "", (long long)t.shape[d]);
    printf(")\nmethod       %s, %s, %d-bit %s%s\n", cfg.method,
           axis == QCAL_PER_TENSOR ? "per-tensor" : "per-channel", cfg.bits,
           cfg.is_unsigned ? "unsigned" : "signed", cfg.full_range ? " full-range" : "");
    if (res.channels == 1) {
      printf("amax         %.9g\n", (double)res.amax[0]);
    } else {
      printf("amax         %zu channels:", res.channels);
      for (size_t c = 0; c < res.channels; c++)
        printf("%s%.9g", c % 8 ? " " : "\n  ", (double)res.amax[c]);
      printf("\n");
    }
    printf("sqnr_db      %.4f\nmse          %.6g  (clip %.6g + round %.6g)\n"
           "max_abs_err  %.6g\ncosine       %.9f\nclip         %.6f%%\n"
           "time         collect %.3f ms, compute %.3f ms (median of %d)\n",
           m.sqnr_db, m.mse, m.clip_mse, m.round_mse, m.max_abs_err, m.cosine,
           100.0 * m.clip_fraction, 1e3 * collect, 1e3 * compute, cfg.repeat);
  }
  free(tc), free(tk);
  qcal_calib_result_free(&res);
  qcal_tensor_free(&t);
  return QCAL_EXIT_OK;
}
