/* qcal export: calibration scales for deployment tools. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/cli.h"
#include "qcal/export.h"
#include "qcal/paths.h"

typedef struct {
  const char *method, *format, *granularity, *out;
  double percentile;
  int bits, trt_version;
} export_cfg;

static const char *const methods[] = {"max", "entropy", "mse", "percentile", NULL};
static const char *const formats[] = {"json", "trt-cache", "onnx-scales", NULL};
static const char *const grans[] = {"per-tensor", "per-channel", NULL};

#define O(f) offsetof(export_cfg, f)
static const qcal_opt opts[] = {
    {"method", "M", "max, entropy, mse or percentile", O(method), OPT_CHOICE, 0, 0, methods},
    {"percentile", "P", "which percentile row, for --method percentile", O(percentile), OPT_DOUBLE,
     0, 100, NULL},
    {"format", "F", "json, trt-cache or onnx-scales", O(format), OPT_CHOICE, 0, 0, formats},
    {"bits", "N", "bit width of the rows to export", O(bits), OPT_INT, 2, 16, NULL},
    {"granularity", "G", "per-tensor or per-channel", O(granularity), OPT_CHOICE, 0, 0, grans},
    {"trt-version", "V", "TensorRT version in the cache header (8601 = 8.6.1)", O(trt_version),
     OPT_INT, 1, 999999, NULL},
    {"output", "FILE", "write here instead of stdout (-o)", O(out), OPT_STRING, 0, 0, NULL},
    {NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};
#undef O

static const qcal_cmd_info info = {
    "export",
    "qcal export RESULTS.h5 --method M [--format json|trt-cache|onnx-scales] [--bits N]\n"
    "                   [--granularity per-tensor|per-channel] [--percentile P] [-o FILE]",
    "Export the amax of one method from a sweep: a JSON map tensor -> amax and\n"
    "scale; the TensorRT calibration cache (activations; scale = amax/127 as the\n"
    "hex of its float32 bits; serves TensorRT <= 10 only); or ONNX QuantizeLinear\n"
    "scale / zero-point per tensor.",
    opts,
};

int qcal_cmd_export(int argc, char **argv) {
  export_cfg cfg = {.method = "entropy",
                    .format = "json",
                    .granularity = "per-tensor",
                    .percentile = 99.99,
                    .bits = 8,
                    .trt_version = 8601};
  const char *pos[1];
  int npos, r = qcal_opts_parse(&info, &cfg, argc, argv, pos, 1, &npos);
  if (r)
    return r > 0 ? QCAL_EXIT_OK : QCAL_EXIT_USAGE;
  if (npos != 1)
    return qcal_die("export: expected one results file (see qcal export --help)");
  if (!strcmp(cfg.format, "trt-cache") && (strcmp(cfg.granularity, "per-tensor") || cfg.bits != 8))
    return qcal_die("export: the TensorRT cache holds 8-bit per-tensor scales only");
  qcal_export_opts o = {!strcmp(cfg.format, "json")        ? QCAL_EXPORT_JSON
                        : !strcmp(cfg.format, "trt-cache") ? QCAL_EXPORT_TRT
                                                           : QCAL_EXPORT_ONNX,
                        cfg.method,
                        cfg.percentile,
                        cfg.bits,
                        cfg.granularity,
                        cfg.trt_version};
  if (cfg.out && qcal_output_check(cfg.out, pos, 1) != QCAL_OK)
    return qcal_die("export: %s", qcal_last_error());
  qcal_results res;
  qcal_status st = qcal_results_open(&res, pos[0]);
  if (st != QCAL_OK)
    return qcal_die_status(st);
  /* the whole export is built in memory: nothing reaches stdout or the file
   * unless it succeeds */
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  if (!mem) {
    qcal_results_close(&res);
    return qcal_die("export: out of memory");
  }
  st = qcal_export(&res, &o, mem);
  qcal_results_close(&res);
  if (fclose(mem) != 0 && st == QCAL_OK)
    st = qcal_error(QCAL_ENOMEM, "export: out of memory");
  if (st == QCAL_OK && !cfg.out) {
    if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0)
      st = qcal_error(QCAL_EIO, "export: cannot write to stdout");
  } else if (st == QCAL_OK) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", cfg.out, (long)getpid());
    FILE *out = fopen(tmp, "w");
    int ok = out && fwrite(text, 1, len, out) == len;
    ok = out && fclose(out) == 0 && ok && rename(tmp, cfg.out) == 0;
    if (!ok) {
      st = qcal_error(QCAL_EIO, "%s: cannot write: %s", cfg.out, strerror(errno));
      unlink(tmp);
    }
  }
  free(text);
  return st == QCAL_OK ? QCAL_EXIT_OK : qcal_die_status(st);
}
