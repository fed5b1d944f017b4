/* qcal sweep: the tensors swept, the configurations, and the results. */
#ifndef QCAL_BENCH_SWEEP_H
#define QCAL_BENCH_SWEEP_H

#include <regex.h>
#include <stdbool.h>

#include "qcal/calib.h"
#include "qcal/metrics.h"
#include "qcal/model.h"
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

typedef struct sweep_cfg {
  const char *out, *model, *images, *filter, *bits_spec;
  int bits[16], nbits;
  int calib_images, held_images, input_size, jobs, seed, synthetic_size, file_axis;
  int quick, no_network, no_synthetic;
} sweep_cfg;

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
  qcal_model model;
  bool have_model;
  int nimages;
  qcal_tensor *images; /* [nimages] inputs */
  char (*image_names)[256];
  char (*image_status)[256];
  int *image_ok;
  int ncalib, nheld; /* usable images in each split */
  int *calib_idx, *held_idx;
  qcal_tensor **fp32_acts; /* held-out FP32 activations [nheld][nlayers] */
  /* timings */
  double t_load, t_forward, t_collect, t_compute, t_e2e;
  qcal_table *e2e, *sens;
} sweep_state;

bool qcal_sweep_selected(const sweep_state *s, const char *name);
qcal_status qcal_sweep_add_item(sweep_state *s, const sweep_item *it);
qcal_status qcal_sweep_network_items(sweep_state *s);
qcal_status qcal_sweep_synthetic_items(sweep_state *s);
qcal_status qcal_sweep_file_items(sweep_state *s, const char *spec);
qcal_status qcal_sweep_calibrate(sweep_state *s);
qcal_status qcal_sweep_e2e(sweep_state *s);
/* Find the row of (item, method label, granularity, bits); NULL if absent. */
const sweep_row *qcal_sweep_find(const sweep_state *s, int item, const char *label,
                                 bool per_channel, int bits);
void qcal_sweep_free(sweep_state *s);

#endif
