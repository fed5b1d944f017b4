/* The model-zoo PTQ benchmark (analysis/zoo.c): every network of the zoo
 * list (analysis/zoo.inc) calibrated on one split of the photos and
 * measured end to end on the other, at W8A8 and W4A8 with weights per
 * tensor and per channel and activations by each method; the most
 * sensitive layer; and a recommended configuration per network. */
#ifndef QCAL_ZOO_H
#define QCAL_ZOO_H

#include "qcal/repair.h"
#include "qcal/results.h"
#include "qcal/status.h"

typedef struct qcal_zoo_cfg {
  const char *models; /* folder of the TF.js models (model NAME.json each) */
  const char *images;
  const char *people; /* photos of people: the face networks' crops (NULL: none) */
  const char *hands;  /* more photos with hands, cropped with people's for the hand networks */
  const char *only;   /* comma-separated subset, or NULL */
  int calib, held;    /* photos per split */
  int jobs;
  /* --repair / --target-db: per network, the best configurations again with
   * the repairs (0: none), and mixed precision (NaN: none) */
  unsigned repair;
  double target_db;
  qcal_adaround_opts ada;
} qcal_zoo_cfg;

extern const char *const qcal_zoo_names[];
extern const char *const qcal_zoo_about[];
extern const char *const qcal_zoo_crop[]; /* "" or a crop kind (analysis/zoo.inc) */
extern const int qcal_zoo_count;

/* Run the zoo; *zoo and *networks are the ZOO and ZOO_NETWORKS tables. A
 * network that fails is a row with its error in status; the run goes on. */
qcal_status qcal_zoo_run(const qcal_zoo_cfg *cfg, qcal_table **zoo, qcal_table **networks);

#endif
