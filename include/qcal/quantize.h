/* Post-training quantization of a whole model for deployment (analysis/
 * quantize.c): calibrate every quantization point of a network on photos,
 * then write the model as ONNX with QuantizeLinear/DequantizeLinear pairs
 * placed as TensorRT's explicit quantization expects (docs/quantize.md),
 * and the same scales as a TensorRT calibration cache or JSON. */
#ifndef QCAL_QUANTIZE_H
#define QCAL_QUANTIZE_H

#include <stdbool.h>
#include <stdio.h>

#include "qcal/datasets.h"
#include "qcal/graph.h"
#include "qcal/repair.h"

/* Where Q/DQ pairs go, one line per placement: QCAL_PLACEMENT(id, name, optional points, help) */
#define QCAL_PLACEMENTS(X)                                                                         \
  X(TRT, "trt", true,                                                                              \
    "weighted layers, plus residual Add, Concat, pooling and SE-block Mul inputs")                 \
  X(WEIGHTED, "weighted", false, "the input and weight of Conv, ConvTranspose, Gemm, MatMul only")
typedef enum qcal_placement {
#define X(id, name, opt, help) QCAL_PLACE_##id,
  QCAL_PLACEMENTS(X)
#undef X
      QCAL_PLACE_COUNT
} qcal_placement;
extern const char *const qcal_placement_names[QCAL_PLACE_COUNT + 1];

typedef struct qcal_quantize_cfg {
  const char *model;  /* ONNX, TF.js model.json, or a folder holding one */
  const char *images; /* calibration photos */
  const char *method; /* none (float model), max, entropy, mse, percentile */
  double percentile;  /* with percentile */
  bool weights_per_tensor;
  int bits;  /* activations; 8: ONNX int8 */
  int wbits; /* weights (0: bits); below 8 on the narrow grid of that width, held in int8 */
  int calib; /* photos to calibrate on (0: all); the interleaved split sweep uses */
  qcal_placement placement;
  int threads;
  qcal_preproc_opts pre;
  unsigned repair;  /* 1 << qcal_repair_id (docs/repair.md) */
  double target_db; /* mixed precision: NaN for none */
  double margin_db; /* the search aims at target_db + margin_db (qcal_quantize_to_file sets it) */
  qcal_adaround_opts ada;
  const char *adaround_dump; /* test hook: each AdaRound layer's problem and answer */
  /* Photos already preprocessed (the sweep's and the zoo's split), used
   * instead of reading `images`: calibration, and held out (mixed
   * precision measures on them; qcal_quantize_run may run them). Borrowed. */
  const qcal_tensor *calib_set, *held_set;
  int ncalib_set, nheld_set;
} qcal_quantize_cfg;

/* One Q/DQ pair: a value, the nodes reading it through the pair, and its
 * amax (per tensor, or per channel along axis). */
typedef struct qcal_quant_point {
  int value;
  bool weight;
  int axis;
  int nscale;
  float *amax, *scale;
  int nreaders;
  int *reader_node, *reader_slot;
} qcal_quant_point;

typedef struct qcal_quantized {
  qcal_graph *g; /* prepared without fusion: folded BN, static shapes */
  char model_path[4200];
  qcal_preproc pre;
  int ncalib;
  qcal_quant_point *pts;
  int npts;
  double t_load, t_forward, t_calib;
  qcal_repair_report rep;
  qcal_tensor probe; /* the first calibration photo, preprocessed: the check's input */
  qcal_tensor *held; /* with a target: the held-out photos and the float model's outputs on */
  int nheld;         /* them [nheld * noutputs] */
  float **ref;
} qcal_quantized;

qcal_status qcal_quantize_calibrate(const qcal_quantize_cfg *cfg, qcal_quantized *q);
/* The Q/DQ ONNX model (the float model when no point was calibrated). */
qcal_status qcal_quantize_write_onnx(const qcal_quantized *q, const char *path);
/* TensorRT calibration cache (activations) / JSON (every point), as
 * `qcal export` writes them from a sweep. */
qcal_status qcal_quantize_write_trt_cache(const qcal_quantized *q, const qcal_quantize_cfg *cfg,
                                          FILE *out);
qcal_status qcal_quantize_write_json(const qcal_quantized *q, const qcal_quantize_cfg *cfg,
                                     FILE *out);
/* The written Q/DQ file, run as written (engine qdq), against the
 * fake-quant simulation of the same points (qcal_graph_fake_quant, what
 * `qcal sweep` measures) on the first calibration photo: the lowest output
 * SQNR in dB (+inf when identical). */
qcal_status qcal_quantize_check(qcal_quantized *q, const qcal_quantize_cfg *cfg, const char *path,
                                double *db);
/* Run each of imgs[n] through the model as it will be written (its
 * fake-quant simulation: every point, repaired weights, float units of
 * mixed precision) and hand the graph, its outputs fresh, to fn. */
typedef qcal_status (*qcal_quantize_each_fn)(void *ctx, int i, qcal_graph *g);
qcal_status qcal_quantize_run(qcal_quantized *q, const qcal_quantize_cfg *cfg,
                              const qcal_tensor *imgs, int n, qcal_quantize_each_fn fn, void *ctx);
/* The written file (engine qdq) on the held-out photos against the float
 * model: the worst output's SQNR in dB, into q->rep.file_db too. */
qcal_status qcal_quantize_verify(qcal_quantized *q, const qcal_quantize_cfg *cfg, const char *path,
                                 double *db);
/* Calibrate, repair, write the Q/DQ model to path and check it
 * (*check_db: qcal_quantize_check). With a target, the written file is
 * measured on the held-out photos too, and while it falls short of the
 * target (the simulation the search measures and the file differ by float
 * rounding that some networks amplify), the search runs again aiming above
 * what it reached by the shortfall plus 0.25 dB, up to 4 searches or every
 * unit float; q->rep says what the file reached. */
qcal_status qcal_quantize_to_file(const qcal_quantize_cfg *cfg, const char *path, qcal_quantized *q,
                                  double *check_db);
void qcal_quantized_free(qcal_quantized *q);

#endif
