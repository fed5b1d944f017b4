/* The calibration sweep engine (analysis/): every quantization point of a
 * network (weights, and input activations calibrated on one split of the
 * photos and measured on the other), the synthetic suite and tensors from
 * files, through every method x granularity x bit width; then the network
 * end to end with fake quantization, and each layer's sensitivity. The
 * `qcal sweep` command parses options into sweep_cfg and calls, in order,
 * the network / synthetic / file item builders, qcal_sweep_calibrate,
 * qcal_sweep_e2e and qcal_sweep_write. */
#ifndef QCAL_SWEEP_H
#define QCAL_SWEEP_H

#include <regex.h>
#include <stdbool.h>

#include "qcal/calib.h"
#include "qcal/datasets.h"
#include "qcal/graph.h"
#include "qcal/metrics.h"
#include "qcal/repair.h"
#include "qcal/results.h"

typedef enum { ITEM_WEIGHT, ITEM_ACTIVATION, ITEM_SYNTHETIC, ITEM_FILE } item_kind;
extern const char *const qcal_item_kind_names[];

typedef struct sweep_item {
  char name[256];
  char graph_tensor[256]; /* the tensor's name in the model graph or file */
  item_kind kind;
  int layer;           /* network layer, or -1 */
  qcal_tensor calib;   /* calibrate on this */
  qcal_tensor eval;    /* measure on this (numel 0: the calib tensor) */
  int axis;            /* per-channel axis (QCAL_PER_TENSOR: no per-channel run) */
  qcal_histogram hist; /* per-tensor histogram, kept for the results file */
} sweep_item;

/* One calibrated configuration of one item. */
typedef struct sweep_row {
  int item, method, bits;
  bool per_channel;
  size_t channels;
  float *amax;
  qcal_metrics m;
  double collect_s, compute_s;
} sweep_row;

/* A layer: a node with a quantizable weight or activation x activation
 * MatMul (Conv, ConvTranspose, Gemm, MatMul), in execution order. */
typedef struct sweep_layer {
  char name[160]; /* display name (analysis/names.c) */
  const char *op; /* conv, depthwise, conv-transpose, gemm, matmul */
  int node;
  int nacts;
  int act_slot[2], act_item[2]; /* input activations: node input, sweep item (-1: filtered) */
  int weight_slot, weight_item, weight_axis;
} sweep_layer;

typedef struct sweep_cfg {
  const char *out, *model, *images, *filter, *bits_spec;
  int bits[16], nbits;
  int calib_images, held_images, jobs, seed, synthetic_size, file_axis;
  int quick, no_network, no_synthetic;
  const char *conv; /* "reference" (default: the same bits on every ISA) or "onednn" (fast) */
  /* zoo mode (qcal zoo): only the rows end-to-end runs read (weights by max,
   * activations per tensor at 8 bits), no per-row error metrics, W4A8 runs
   * (weights at 4 bits) into e2e_w4a8, sensitivity per channel only */
  int zoo;
  qcal_preproc_opts pre;
  /* --repair: e2e rows again with repaired weights (qcal_sweep_e2e_repaired) */
  unsigned repair;
  qcal_adaround_opts ada;
  const char *repair_spec; /* the command's --repair LIST and --adaround-iters N */
  int ada_iters;
  /* the primary output and its task metric (analysis/outmetrics.inc), or NULL */
  const char *primary_output, *primary_metric;
} sweep_cfg;

struct qcal_task;

typedef struct sweep_state {
  sweep_cfg cfg;
  regex_t filter;
  bool has_filter;
  sweep_item *items;
  int nitems, cap;
  sweep_row *rows;
  size_t nrows;
  size_t *item_first; /* rows of item i: [item_first[i], item_first[i + 1]) */
  /* network */
  qcal_graph *graph;
  bool have_model;
  char model_path[4200];
  qcal_preproc pre; /* resolved preprocessing */
  sweep_layer *layers;
  int nlayers;
  int nimages;
  qcal_tensor *images; /* [nimages] inputs */
  char (*image_names)[256];
  char (*image_status)[256];
  int *image_ok;
  int ncalib, nheld; /* usable images in each split */
  int *calib_idx, *held_idx;
  float ***fp32_out;            /* held-out FP32 outputs [nheld][noutputs] */
  const struct qcal_task *task; /* the network's task module, or NULL */
  int om, om_output, om_side;   /* primary output's metric, its index (-1: none), input side */
  void *task_ctx;
  /* timings */
  double t_load, t_forward, t_collect, t_compute, t_e2e;
  qcal_table *e2e, *sens;                 /* task metrics (PoseNet keypoints) */
  qcal_table *e2e_outputs, *sens_outputs; /* per output, any network */
  qcal_table *e2e_w4a8;                   /* zoo: E2E_OUTPUTS rows, bits = weight bits (4) */
} sweep_state;

/* A model path as given: the file itself, or a folder holding model.json,
 * model.onnx or posenet.json. Errors when nothing is there. */
qcal_status qcal_model_file(const char *given, char *out, size_t cap);

bool qcal_sweep_selected(const sweep_state *s, const char *name);
qcal_status qcal_sweep_add_item(sweep_state *s, const sweep_item *it);
/* Load the model, its preprocessing and the photos, run FP32 on them and add
 * every quantization point as items. */
qcal_status qcal_sweep_network_items(sweep_state *s);
qcal_status qcal_sweep_synthetic_items(sweep_state *s);
qcal_status qcal_sweep_file_items(sweep_state *s, const char *spec);
qcal_status qcal_sweep_calibrate(sweep_state *s);
qcal_status qcal_sweep_e2e(sweep_state *s);
/* One configuration of the e2e runs made again by the quantize engine
 * (analysis/quantize.c) on the same split, with repairs (docs/repair.md):
 * activations by qcal_method_configs[method] at 8 bits, weights per tensor
 * or per channel at wbits, on the weighted layers as the e2e runs place
 * them; mixed precision when target_db is a number. */
typedef struct qcal_sweep_repair {
  int method;
  bool per_channel;
  int wbits;
  unsigned repair;
  double target_db;
  /* out */
  double worst_db;        /* worst output on the held-out photos */
  double task_value;      /* the primary output's task metric (NaN: none) */
  qcal_repair_report rep; /* what the repairs did (free with qcal_repair_report_free) */
} qcal_sweep_repair;
/* Run each of rc[n] and add its rows (repair column set) to e2e_outputs
 * (8-bit weights) or, in zoo mode, e2e_w4a8, and the task's e2e table. */
qcal_status qcal_sweep_e2e_repaired(sweep_state *s, qcal_sweep_repair *rc, int n);
/* The results file (temporary name, renamed when whole); config_json goes
 * into the provenance. */
qcal_status qcal_sweep_write(sweep_state *s, const char *path, const char *config_json);
/* Find the row of (item, method label, granularity, bits); NULL if absent. */
const sweep_row *qcal_sweep_find(const sweep_state *s, int item, const char *label,
                                 bool per_channel, int bits);
/* The bit width end-to-end runs use: 8 when swept, else the widest. */
int qcal_sweep_e2e_bits(const sweep_state *s);
void qcal_sweep_free(sweep_state *s);

/* Display names of a graph's layers: each node's scope path without the
 * root every layer shares, cut after the first component that tells it
 * apart ("MobilenetV1/MobilenetV1/Conv2d_3_depthwise/BatchNorm/..." ->
 * "Conv2d_3_depthwise"; "/layer1/layer1.0/conv1/Conv" -> "layer1/layer1.0/conv1"). */
void qcal_layer_names(const qcal_graph *g, const int *nodes, int n, char (*out)[160]);

#endif
