/* PTQ repair (analysis/repair*.c, docs/repair.md): what post-training
 * quantization breaks, fixed without labels on the calibration photos.
 * The repairs of analysis/repairs.inc run in its order on a model that
 * qcal_quantize_calibrate has prepared:
 *   cle       cross-layer equalization (the graph pass; before calibration)
 *   bias      high-bias absorption (before calibration), then empirical
 *             bias correction (after AdaRound)
 *   adaround  learned up/down rounding of every weight
 *   bias-bn   analytic bias correction from folded BatchNorm statistics
 * and, with a target, mixed precision: the fewest layers kept in float so
 * that the worst output reaches target_db on held-out photos. */
#ifndef QCAL_REPAIR_H
#define QCAL_REPAIR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "qcal/graph.h"
#include "qcal/status.h"

/* QCAL_REPAIR(id, name, help) */
#define QCAL_REPAIRS(X)                                                                            \
  X(CLE, "cle", "cross-layer equalization of layer pairs (Nagel et al. 2019, 4.1)")                \
  X(BIAS, "bias",                                                                                  \
    "high-bias absorption into the next layer (Nagel et al. 2019, 4.1) and empirical bias "        \
    "correction (4.2)")                                                                            \
  X(ADAROUND, "adaround", "learned rounding of each weight (Nagel et al. 2020, AdaRound)")         \
  X(BIAS_BN, "bias-bn",                                                                            \
    "analytic bias correction from the statistics of folded BatchNorms, without photos "           \
    "(Nagel et al. 2019, 4.2)")
typedef enum qcal_repair_id {
#define X(id, name, help) QCAL_REPAIR_##id,
  QCAL_REPAIRS(X)
#undef X
      QCAL_REPAIR_COUNT
} qcal_repair_id;
extern const char *const qcal_repair_names[QCAL_REPAIR_COUNT + 1];
extern const char *const qcal_repair_help[QCAL_REPAIR_COUNT];
/* E[clip(z, lo, hi)] for z ~ N(mu, sd^2) (lo may be -inf, hi inf). */
double qcal_clipped_normal_mean(double mu, double sd, double lo, double hi);
/* "cle,bias" -> bit mask (1 << id); an unknown name is an error naming it. */
qcal_status qcal_repair_parse(const char *list, unsigned *mask);
/* The mask back as "cle,bias", with ",target-db=D" when target_db is a number. */
void qcal_repair_text(unsigned mask, double target_db, char *buf, size_t cap);

typedef struct qcal_adaround_opts {
  int iters;     /* Adam steps per layer (default 1000) */
  float lr;      /* Adam learning rate on V (default 0.01) */
  float lambda;  /* rounding regulariser weight (default 0.01) */
  float beta_hi; /* annealed from beta_hi to beta_lo ... */
  float beta_lo; /* ... after warm_up of the steps (defaults 20, 2, 0.2) */
  float warm_up;
  int max_positions; /* input positions per layer sampled into its Gram matrix (0: all) */
} qcal_adaround_opts;
#define QCAL_ADAROUND_OPTS_DEFAULT ((qcal_adaround_opts){1000, 0.01f, 0.01f, 20, 2, 0.2f, 0})

/* What the repairs did, for the command's summary and --json. */
typedef struct qcal_repair_report {
  unsigned mask;
  qcal_cle_report cle;
  int absorbed_pairs;    /* pairs whose first layer gave up bias */
  double absorbed_max;   /* the largest bias moved */
  int bias_layers;       /* layers whose bias was corrected */
  double bias_max_shift; /* the largest correction of one output channel's mean */
  int bn_layers;         /* bias-bn: layers whose bias was corrected analytically */
  int bn_statistics;     /* folded BatchNormalizations whose statistics the model carried */
  double bn_max_shift;   /* the largest correction of one output channel's mean */
  int adaround_layers;
  long adaround_weights,
      adaround_flipped; /* weights rounded, and rounded the other way than nearest */
  double adaround_loss_nearest, adaround_loss; /* summed layer reconstruction errors */
  /* mixed precision */
  double target_db;       /* NaN: none */
  double search_db;       /* what the search aimed at: the target, or above it when the file
                             as written fell short (qcal_quantize_to_file) */
  double file_db;         /* the written file on the held-out photos, qcal's Q/DQ engine
                             (NaN: not measured) */
  int tries;              /* searches run (qcal_quantize_to_file) */
  double reached_db;      /* worst output on the held-out photos, as chosen */
  double all_int8_db;     /* the same with every layer quantized */
  int layers, kept_float; /* weighted layers, and those left in float */
  char **kept_names;      /* kept_float node names */
  double weight_frac_int8, mac_frac_int8;
  int held;          /* held-out photos it was measured on */
  double seconds[4]; /* absorb+bias, adaround, bias correction, mixed precision */
} qcal_repair_report;
void qcal_repair_report_free(qcal_repair_report *r);
/* The report as a json-c object (struct json_object *), for --json. */
struct json_object *qcal_repair_report_json(const qcal_repair_report *r);
/* One line per repair that ran, for the command's summary. */
void qcal_repair_report_print(const qcal_repair_report *r, FILE *out);

/* AdaRound of one layer (analysis/repair_adaround.c): weight rows w
 * [O x Kg] in `groups` groups (row o in group o / (O / groups)), the Gram
 * matrix H [groups][Kg][Kg] of its input summed over P positions, amax per
 * row (namax = O) or one. out gets the rounded weight (dequantized, on the
 * grid); curve, when not NULL, the loss of each step; the reconstruction
 * error with nearest and with the learned rounding (nearest is kept where
 * it reconstructs better); how many weights rounded the other way. */
qcal_status qcal_adaround(const float *w, int64_t O, int64_t Kg, int64_t groups, const float *H,
                          double P, const float *amax, int namax, qcal_qformat f,
                          const qcal_adaround_opts *opt, float *out, float *curve,
                          double *loss_nearest, double *loss_final, long *flipped);

#endif
