/* The qcal command: sub-command dispatch. */
#include <stdio.h>
#include <string.h>

#include "bench/cli.h"
#include "qcal/kernels.h"
#include "qcal_config.h"

typedef struct {
  const char *name, *summary;
  int (*run)(int argc, char **argv);
} subcmd;

static const subcmd cmds[] = {
    {"amax", "calibrate one .npy tensor and print amax and error metrics", qcal_cmd_amax},
    {"sweep",
     "the main job: calibrate every layer of a model (PoseNet or any ONNX/TF.js) + files, into "
     "HDF5",
     qcal_cmd_sweep},
    {"quantize", "calibrate a model and write it as Q/DQ ONNX (TensorRT explicit quantization)",
     qcal_cmd_quantize},
    {"bench-model", "whole-network latency per engine (fp32, qdq, int8) and per layer type",
     qcal_cmd_bench_model},
    {"zoo", "which real networks survive PTQ: W8A8/W4A8 across the model zoo", qcal_cmd_zoo},
    {"crops", "in-domain data: the zoo's detectors on photos, detections cropped as in use",
     qcal_cmd_crops},
    {"qat", "quantization-aware training: FP32, PTQ and QAT top-1 on Fashion-MNIST", qcal_cmd_qat},
    {"infer", "run an ONNX model on a tensor or photo: outputs, shapes, latency", qcal_cmd_infer},
    {"gemm", "INT8 vs FP32/BF16 GEMM throughput (oneDNN, cuBLASLt) vs measured peak",
     qcal_cmd_gemm},
    {"stream", "bandwidth-bound int8 vs fp32 kernels vs the measured STREAM copy", qcal_cmd_stream},
    {"report", "gnuplot figures, HTML page and Markdown summary of results files", qcal_cmd_report},
    {"compare", "regressions of NEW.h5 against BASE.h5 (quality thresholds, U test)",
     qcal_cmd_compare},
    {"export", "amax/scales for TensorRT (cache), ONNX (QuantizeLinear) or JSON", qcal_cmd_export},
    {"schema", "the tables and columns of a results file (Markdown or JSON)", qcal_cmd_schema},
    {"demo", "compare every method on generated distributions", qcal_cmd_demo},
    {"bench-calib", "benchmark histogram collection and amax search vs memory bandwidth",
     qcal_cmd_bench_calib},
};

static void usage(FILE *out) {
  fprintf(out,
          "usage: qcal <command> [options]\n\n"
          "qcal %s: calibration and quantization-analysis benchmarks.\n\ncommands:\n",
          QCAL_VERSION);
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    fprintf(out, "  %-12s %s\n", cmds[i].name, cmds[i].summary);
  fprintf(out, "  %-12s %s\n", "version", "print version, commit and selected kernels");
  fprintf(out, "\nRun 'qcal <command> --help' for the options of a command.\n"
               "QCAL_ARCH=ref|avx2|avx512 forces a kernel set (A/B checks).\n"
               "Exit status: 0 success, 1 failure, 2 bad input or usage.\n");
}

int main(int argc, char **argv) {
  if (argc < 2)
    return qcal_die("missing command (see qcal --help)");
  const char *c = argv[1];
  if (!strcmp(c, "-h") || !strcmp(c, "--help") || !strcmp(c, "help")) {
    usage(stdout);
    return QCAL_EXIT_OK;
  }
  if (!strcmp(c, "version") || !strcmp(c, "--version")) {
    if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
      printf("usage: qcal version\nPrint the version, git commit, compiler and kernel set.\n");
      return QCAL_EXIT_OK;
    }
    if (argc > 2)
      return qcal_die("version: unexpected argument '%s' (see qcal version --help)", argv[2]);
    printf("qcal %s (commit %s, %s, kernels %s)\n", QCAL_VERSION, QCAL_GIT_COMMIT, QCAL_COMPILER,
           qcal_kernels()->isa);
    return QCAL_EXIT_OK;
  }
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (!strcmp(c, cmds[i].name))
      return cmds[i].run(argc - 1, argv + 1);
  return qcal_die("unknown command '%s' (see qcal --help)", c);
}
