/* qcal quantize: calibrate a model on photos and write it as a Q/DQ ONNX
 * model for TensorRT's explicit quantization (and ONNX Runtime); with
 * --method none, the float model (a TF.js -> ONNX converter). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/cli.h"
#include "qcal/escape.h"
#include "qcal/quantize.h"

typedef struct {
  const char *model_unused, *images, *method, *weights, *placement, *out, *trt_cache, *json;
  const char *repair, *ada_dump;
  double percentile, target_db;
  int bits, wbits, calib, threads, ada_iters;
  qcal_preproc_opts pre;
} quantize_cli;

static const char *const methods[] = {"none", "max", "entropy", "mse", "percentile", NULL};
static const char *const wgrans[] = {"per-channel", "per-tensor", NULL};

#define O(f) offsetof(quantize_cli, f)
static const qcal_opt opts[] = {
    {"images", "DIR", "calibration photos (JPEG, PNG, ...)", O(images), OPT_STRING, 0, 0, NULL},
    {"method", "M", "activation calibrator: max, entropy, mse, percentile, or none (float model)",
     O(method), OPT_CHOICE, 0, 0, methods},
    {"percentile", "P", "with --method percentile", O(percentile), OPT_DOUBLE, 50, 100, NULL},
    {"weights", "G", "weight scales per-channel (output channel) or per-tensor", O(weights),
     OPT_CHOICE, 0, 0, wgrans},
    {"placement", "P", "trt (weighted layers + residual Add, Concat, pooling, SE Mul) or weighted",
     O(placement), OPT_CHOICE, 0, 0, qcal_placement_names},
    {"bits", "N", "bit width (ONNX int8: 8)", O(bits), OPT_INT, 2, 16, NULL},
    {"weight-bits", "N", "weights on the narrow N-bit grid, held in int8 (default: --bits)",
     O(wbits), OPT_INT, 2, 8, NULL},
    {"repair", "LIST",
     "repairs, comma-separated: cle (cross-layer equalization), bias (high-bias absorption, then "
     "empirical bias correction), adaround (learned rounding), bias-bn (analytic bias correction "
     "from BatchNorm statistics, no photos); docs/repair.md gives the order they run in",
     O(repair), OPT_STRING, 0, 0, NULL},
    {"target-db", "D",
     "keep the fewest layers in float so the worst output reaches D dB SQNR on "
     "held-out photos (with --calib 0, half the photos calibrate and half are held out)",
     O(target_db), OPT_DOUBLE, 1, 200, NULL},
    {"adaround-iters", "N", "AdaRound: Adam steps per layer", O(ada_iters), OPT_INT, 1, 1000000,
     NULL},
    {"adaround-dump", "FILE", "AdaRound: write each layer's problem and answer (test oracle)",
     O(ada_dump), OPT_STRING, 0, 0, NULL},
    {"calib", "N", "calibrate on N photos (0: all; the same split as sweep --calib N)", O(calib),
     OPT_INT, 0, 100000, NULL},
    {"threads", "N", "threads (0: all cores)", O(threads), OPT_INT, 0, 1024, NULL},
    QCAL_PREPROC_OPTIONS(quantize_cli, pre),
    {"output", "OUT.onnx", "the Q/DQ ONNX model (-o, required)", O(out), OPT_STRING, 0, 0, NULL},
    {"trt-cache", "FILE", "also write the activation scales as a TensorRT calibration cache",
     O(trt_cache), OPT_STRING, 0, 0, NULL},
    {"json", "FILE", "also write every scale as JSON (qcal export's format)", O(json), OPT_STRING,
     0, 0, NULL},
    {NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};
#undef O

static const qcal_cmd_info info = {
    "quantize",
    "qcal quantize MODEL --images DIR [--method max|entropy|mse|percentile|none]\n"
    "              [--percentile P] [--weights per-channel|per-tensor] [--bits 8] [--calib N]\n"
    "              [--placement trt|weighted] [preprocessing options] -o OUT.onnx\n"
    "              [--trt-cache FILE] [--json FILE]",
    "Calibrate MODEL (ONNX, or a TF.js model.json, written out as ONNX) on photos and\n"
    "write it with QuantizeLinear/DequantizeLinear pairs where TensorRT's explicit\n"
    "quantization expects them (docs/quantize.md): symmetric int8, zero point 0,\n"
    "activations per tensor, weights per output channel (axis 0; ConvTranspose 1),\n"
    "scale = amax/127 as pytorch-quantization exports it. BatchNormalization is\n"
    "folded into the convolution before it and the input shape is fixed to the\n"
    "calibration size. Opset 13 or the model's own, if later. Build a TensorRT\n"
    "engine with: trtexec --onnx=OUT.onnx --int8.",
    opts,
};

/* A side file written to a temporary name, renamed only when the model is
 * written too (nothing half-written, no earlier file lost). */
typedef qcal_status (*side_writer)(const qcal_quantized *, const qcal_quantize_cfg *, FILE *);
static qcal_status write_side(const char *path, char *tmp, size_t cap, side_writer w,
                              const qcal_quantized *q, const qcal_quantize_cfg *c) {
  char pb[600];
  snprintf(tmp, cap, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f)
    return qcal_error(QCAL_EIO, "%s: cannot write: %s", qcal_escape_text(path, pb, sizeof pb),
                      strerror(errno));
  qcal_status st = w(q, c, f);
  if (fclose(f) != 0 && !st)
    st = qcal_error(QCAL_EIO, "%s: cannot write", qcal_escape_text(path, pb, sizeof pb));
  if (st)
    unlink(tmp);
  return st;
}

int qcal_cmd_quantize(int argc, char **argv) {
  quantize_cli c = {.method = "entropy",
                    .weights = "per-channel",
                    .placement = "trt",
                    .percentile = 99.99,
                    .bits = 8,
                    .target_db = NAN,
                    .ada_iters = QCAL_ADAROUND_OPTS_DEFAULT.iters,
                    .pre = {.scale = NAN, .offset = NAN}};
  const char *pos[1];
  int npos, r = qcal_opts_parse(&info, &c, argc, argv, pos, 1, &npos);
  if (r)
    return r > 0 ? QCAL_EXIT_OK : QCAL_EXIT_USAGE;
  if (npos != 1)
    return qcal_die("quantize: expected one MODEL (see qcal quantize --help)");
  if (!c.out)
    return qcal_die("quantize: give the output model with -o OUT.onnx");
  bool none = !strcmp(c.method, "none");
  if (!none && !c.images)
    return qcal_die("quantize: give the calibration photos with --images DIR");
  if (none && (c.trt_cache || c.json))
    return qcal_die("quantize: --method none writes the float model; it has no scales for "
                    "--trt-cache or --json");
  unsigned repair = 0;
  if (c.repair && qcal_repair_parse(c.repair, &repair))
    return qcal_die_status(QCAL_EINVAL);
  if (none && ((repair & ~(1u << QCAL_REPAIR_CLE)) || !isnan(c.target_db)))
    return qcal_die("quantize: --method none writes the float model: of the repairs only cle "
                    "applies to it (bias, adaround and --target-db need calibration)");
  const char *ins[2] = {pos[0], c.images};
  if (qcal_check_outputs("quantize", c.out, c.json, ins, c.images ? 2 : 1) ||
      (c.trt_cache && qcal_check_outputs("quantize", c.trt_cache, NULL, ins, c.images ? 2 : 1)))
    return QCAL_EXIT_USAGE;
  qcal_quantize_cfg cfg = {.model = pos[0],
                           .images = c.images,
                           .method = c.method,
                           .percentile = c.percentile,
                           .weights_per_tensor = !strcmp(c.weights, "per-tensor"),
                           .bits = c.bits,
                           .calib = c.calib,
                           .threads = c.threads,
                           .pre = c.pre,
                           .wbits = c.wbits,
                           .repair = repair,
                           .target_db = c.target_db,
                           .ada = QCAL_ADAROUND_OPTS_DEFAULT,
                           .adaround_dump = c.ada_dump};
  cfg.ada.iters = c.ada_iters;
  for (int k = 0; k < QCAL_PLACE_COUNT; k++)
    if (!strcmp(c.placement, qcal_placement_names[k]))
      cfg.placement = (qcal_placement)k;
  /* the model goes to a temporary name, is run and checked there, and
   * takes its place last, with its side files */
  char t_model[4200], t_cache[4200] = "", t_json[4200] = "";
  snprintf(t_model, sizeof t_model, "%s.tmp.%ld", c.out, (long)getpid());
  qcal_quantized q;
  double check_db = INFINITY;
  qcal_status st = qcal_quantize_to_file(&cfg, t_model, &q, &check_db);
  if (!st && c.trt_cache)
    st = write_side(c.trt_cache, t_cache, sizeof t_cache, qcal_quantize_write_trt_cache, &q, &cfg);
  if (!st && c.json)
    st = write_side(c.json, t_json, sizeof t_json, qcal_quantize_write_json, &q, &cfg);
  if (!st && ((*t_cache && rename(t_cache, c.trt_cache)) || (*t_json && rename(t_json, c.json)) ||
              rename(t_model, c.out)))
    st = qcal_error(QCAL_EIO, "cannot rename a written file into place: %s", strerror(errno));
  if (st) {
    unlink(t_model);
    if (*t_cache)
      unlink(t_cache);
    if (*t_json)
      unlink(t_json);
    qcal_quantized_free(&q);
    return qcal_die_status(st);
  }
  int acts = 0, weights = 0;
  for (int k = 0; k < q.npts; k++)
    q.pts[k].weight ? weights++ : acts++;
  char shown[1200];
  if (none) {
    printf("wrote %s: the float model (opset %d)%s\n", qcal_escape_text(c.out, shown, sizeof shown),
           q.g->opset < 13 ? 13 : q.g->opset, repair ? ", equalized" : "");
    qcal_repair_report_print(&q.rep, stdout);
  } else {
    char agree[48] = "exactly";
    if (!isinf(check_db))
      snprintf(agree, sizeof agree, "at %.1f dB", check_db);
    printf("wrote %s: %d activation and %d weight Q/DQ pairs (%s, weights %s, %d-bit, placement "
           "%s), calibrated on %d photos in %.1f s; run as written, it reproduces the fake-quant "
           "simulation of the same points %s (first photo)\n",
           qcal_escape_text(c.out, shown, sizeof shown), acts, weights, c.method, c.weights,
           c.wbits ? c.wbits : c.bits, c.placement, q.ncalib,
           q.t_load + q.t_forward + q.t_calib + q.rep.seconds[0] + q.rep.seconds[1] +
               q.rep.seconds[2] + q.rep.seconds[3],
           agree);
    qcal_repair_report_print(&q.rep, stdout);
  }
  qcal_quantized_free(&q);
  return QCAL_EXIT_OK;
}
