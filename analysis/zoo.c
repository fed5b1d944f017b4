/* qcal zoo's engine: the sweep engine in zoo mode (only what end-to-end
 * runs need, oneDNN convolutions, W4A8 runs) over every network of
 * analysis/zoo.inc, its per-output rows gathered into one table with a
 * network column, and per network the findings: best configuration at
 * W8A8, what per-tensor weights and 4-bit weights cost, the most sensitive
 * layer, and a recommendation (rule in docs/zoo.md). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcal/crops.h"
#include "qcal/datasets.h"
#include "qcal/outmetric.h"
#include "qcal/progress.h"
#include "qcal/sweep.h"
#include "qcal/zoo.h"

const char *const qcal_zoo_names[] = {
#define QCAL_ZOO(name, about, crop, out, metric) name,
#include "analysis/zoo.inc"
#undef QCAL_ZOO
    NULL};
const char *const qcal_zoo_about[] = {
#define QCAL_ZOO(name, about, crop, out, metric) about,
#include "analysis/zoo.inc"
#undef QCAL_ZOO
    NULL};
const char *const qcal_zoo_crop[] = {
#define QCAL_ZOO(name, about, crop, out, metric) crop,
#include "analysis/zoo.inc"
#undef QCAL_ZOO
    NULL};
static const char *const zoo_primary[] = {
#define QCAL_ZOO(name, about, crop, out, metric) out,
#include "analysis/zoo.inc"
#undef QCAL_ZOO
    NULL};
static const char *const zoo_metric[] = {
#define QCAL_ZOO(name, about, crop, out, metric) metric,
#include "analysis/zoo.inc"
#undef QCAL_ZOO
    NULL};
const int qcal_zoo_count = sizeof qcal_zoo_names / sizeof qcal_zoo_names[0] - 1;

/* Below this worst-output SQNR a configuration has collapsed (1% noise
 * power); within this many dB of the best one it is as good. */
#define COLLAPSE_DB 20.0
#define SAME_DB 3.0

static bool selected(const char *only, const char *name) {
  if (!only)
    return true;
  size_t n = strlen(name);
  for (const char *p = only; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && !strncmp(p, name, n))
      return true;
    p += len + (e ? 1 : 0);
  }
  return false;
}

/* One configuration's figures: worst output SQNR, and the primary output's
 * task metric (NaN: none), and the activation method. */
typedef struct conf {
  double db, task;
  const char *label;
} conf;

/* The verdict's context: the network's metric (-1: worst SQNR) and input. */
typedef struct judge {
  int om, side;
} judge;

/* One configuration of an E2E_OUTPUTS table, unrepaired. */
static conf score(const qcal_table *t, const char *act, const char *wg) {
  conf c = {NAN, NAN, act};
  for (size_t i = 0; t && i < qcal_table_rows(t); i++) {
    long r = (long)i;
    if (*qcal_table_get_s(t, r, QCAL_COL(E2E_OUTPUTS, repair)) ||
        strcmp(qcal_table_get_s(t, r, QCAL_COL(E2E_OUTPUTS, act_method)), act) ||
        strcmp(qcal_table_get_s(t, r, QCAL_COL(E2E_OUTPUTS, weight_granularity)), wg))
      continue;
    double v = qcal_table_get_f(t, r, QCAL_COL(E2E_OUTPUTS, sqnr_db));
    if (isnan(c.db) || v < c.db)
      c.db = v;
    if (*qcal_table_get_s(t, r, QCAL_COL(E2E_OUTPUTS, task_metric)))
      c.task = qcal_table_get_f(t, r, QCAL_COL(E2E_OUTPUTS, task_value));
  }
  return c;
}

/* Whether a configuration still does the task: the primary metric at its
 * threshold, or (no primary) a worst output of at least 20 dB. */
static bool holds(const judge *j, conf c) {
  if (j->om >= 0 && !isnan(c.task))
    return qcal_om_holds((qcal_outmetric)j->om, c.task, j->side);
  return c.db >= COLLAPSE_DB; /* no primary, or nothing it counts (no confident keypoint) */
}

/* a better than b: by the primary metric, then by the worst output. */
static bool better(const judge *j, conf a, conf b) {
  if (isnan(b.db) && isnan(b.task))
    return !isnan(a.db) || !isnan(a.task);
  if (j->om >= 0 && !isnan(a.task) && !isnan(b.task) && a.task != b.task)
    return qcal_om_list[j->om].lower_better ? a.task < b.task : a.task > b.task;
  return a.db > b.db;
}

/* As good as the best: holds where the best holds (primary metric), or
 * within 3 dB of it. */
static bool as_good(const judge *j, conf c, conf best) {
  if (j->om >= 0)
    return holds(j, c) || !holds(j, best);
  return c.db >= best.db - SAME_DB;
}

/* Best activation method for a weight granularity. */
static conf best_of(const judge *j, const qcal_table *t, const char *wg) {
  conf best = {NAN, NAN, ""};
  for (int m = 0; m < QCAL_METHOD_CONFIG_COUNT; m++) {
    conf c = score(t, qcal_method_configs[m].label, wg);
    if (!isnan(c.db) && better(j, c, best))
      best = c;
  }
  return best;
}

/* "landmarks3 0.84 px", "class 1" */
static void task_text(const judge *j, double v, char *out, size_t cap) {
  if (j->om < 0 || isnan(v)) {
    snprintf(out, cap, "-");
    return;
  }
  const qcal_om_info *m = &qcal_om_list[j->om];
  snprintf(out, cap, "%s %.3g%s%s", m->name, v, strcmp(m->unit, "px") ? "" : " ",
           strcmp(m->unit, "px") ? "" : "px");
}

static void copy_rows(qcal_table *zoo, const char *net, const qcal_table *t, int abits) {
  for (size_t i = 0; t && i < qcal_table_rows(t); i++) {
    long r = (long)i;
    qcal_table_row(zoo);
    qcal_table_set_s(zoo, QCAL_COL(ZOO, network), net);
    qcal_table_set_s(zoo, QCAL_COL(ZOO, act_method),
                     qcal_table_get_s(t, r, QCAL_COL(E2E_OUTPUTS, act_method)));
    qcal_table_set_s(zoo, QCAL_COL(ZOO, weight_granularity),
                     qcal_table_get_s(t, r, QCAL_COL(E2E_OUTPUTS, weight_granularity)));
    qcal_table_set_i(zoo, QCAL_COL(ZOO, weight_bits),
                     qcal_table_get_i(t, r, QCAL_COL(E2E_OUTPUTS, bits)));
    qcal_table_set_i(zoo, QCAL_COL(ZOO, act_bits), abits);
    qcal_table_set_s(zoo, QCAL_COL(ZOO, output),
                     qcal_table_get_s(t, r, QCAL_COL(E2E_OUTPUTS, output)));
    qcal_table_set_f(zoo, QCAL_COL(ZOO, sqnr_db),
                     qcal_table_get_f(t, r, QCAL_COL(E2E_OUTPUTS, sqnr_db)));
    qcal_table_set_f(zoo, QCAL_COL(ZOO, cosine),
                     qcal_table_get_f(t, r, QCAL_COL(E2E_OUTPUTS, cosine)));
    qcal_table_set_f(zoo, QCAL_COL(ZOO, top1_agreement),
                     qcal_table_get_f(t, r, QCAL_COL(E2E_OUTPUTS, top1_agreement)));
    qcal_table_set_i(zoo, QCAL_COL(ZOO, images),
                     qcal_table_get_i(t, r, QCAL_COL(E2E_OUTPUTS, images)));
    qcal_table_set_s(zoo, QCAL_COL(ZOO, repair),
                     qcal_table_get_s(t, r, QCAL_COL(E2E_OUTPUTS, repair)));
    qcal_table_set_s(zoo, QCAL_COL(ZOO, task_metric),
                     qcal_table_get_s(t, r, QCAL_COL(E2E_OUTPUTS, task_metric)));
    qcal_table_set_f(zoo, QCAL_COL(ZOO, task_value),
                     qcal_table_get_f(t, r, QCAL_COL(E2E_OUTPUTS, task_value)));
  }
}

/* The layer whose quantization alone lowers the worst output the most. */
static void sensitive(const sweep_state *s, char *name, size_t cap, double *db) {
  const qcal_table *t = s->sens_outputs;
  *db = NAN;
  snprintf(name, cap, "-");
  for (int l = 0; t && l < s->nlayers; l++) {
    double w = NAN;
    for (size_t i = 0; i < qcal_table_rows(t); i++) {
      long r = (long)i;
      if (qcal_table_get_i(t, r, QCAL_COL(SENSITIVITY_OUTPUTS, layer)) != l)
        continue;
      double v = qcal_table_get_f(t, r, QCAL_COL(SENSITIVITY_OUTPUTS, sqnr_db));
      if (isnan(w) || v < w)
        w = v;
    }
    if (!isnan(w) && (isnan(*db) || w < *db)) {
      *db = w;
      snprintf(name, cap, "%s (%s)", s->layers[l].name, s->layers[l].op);
    }
  }
}

static void recommend(char *out, size_t cap, const judge *j, conf pc, conf pt, conf w4, double wo) {
  int u;
  char tv[64];
  conf chosen = pc;
  if (holds(j, w4) && as_good(j, w4, pc)) {
    chosen = w4;
    task_text(j, w4.task, tv, sizeof tv);
    u = snprintf(out, cap, "W4A8 per-channel, %s activations (%s; 4-bit weights cost %.1f dB)",
                 w4.label, tv, pc.db - w4.db);
  } else if (!isnan(pt.db) && as_good(j, pt, pc)) {
    chosen = pt;
    task_text(j, pt.task, tv, sizeof tv);
    u = snprintf(out, cap, "W8A8 per-tensor, %s activations (%s; per-channel: %+.1f dB)", pt.label,
                 tv, pc.db - pt.db);
  } else {
    task_text(j, pc.task, tv, sizeof tv);
    u = snprintf(out, cap, "W8A8 per-channel, %s activations (%s)", pc.label, tv);
  }
  if (u < 0 || (size_t)u >= cap)
    return;
  if (!holds(j, chosen)) {
    if (j->om >= 0)
      snprintf(out + u, cap - (size_t)u,
               "; the task does not hold even at its best (%s %s %.3g %s; weights alone %.1f "
               "dB): the best calibrator is not enough, quantization-aware training",
               qcal_om_list[j->om].what, qcal_om_list[j->om].lower_better ? "<=" : ">=",
               qcal_om_threshold((qcal_outmetric)j->om, j->side), qcal_om_list[j->om].unit, wo);
    else
      snprintf(out + u, cap - (size_t)u,
               "; below %.0f dB even at its best (weights alone %.1f dB): the best calibrator is "
               "not enough, quantization-aware training",
               COLLAPSE_DB, wo);
  }
}

static int method_index(const char *label) {
  const qcal_method_config *mc = qcal_method_config_find(label);
  return mc ? (int)(mc - qcal_method_configs) : 1; /* none found: entropy */
}

/* What the network needed, cheapest first (docs/zoo.md): rpt, rpc the
 * repaired W8A8 runs (NULL: not run), mixed the --target-db run or NULL. */
static void needed(char *out, size_t cap, const judge *j, unsigned repair, conf pt, conf pc,
                   const conf *rpt, const conf *rpc, const qcal_sweep_repair *mixed) {
  char rp[160], tv[64];
  qcal_repair_text(repair, NAN, rp, sizeof rp);
  conf mx = {mixed ? mixed->worst_db : NAN, mixed ? mixed->task_value : NAN, ""};
  if (holds(j, pt))
    task_text(j, pt.task, tv, sizeof tv),
        snprintf(out, cap, "nothing (per-tensor weights: %.1f dB, %s)", pt.db, tv);
  else if (holds(j, pc))
    task_text(j, pc.task, tv, sizeof tv),
        snprintf(out, cap, "per-channel weights (%.1f dB, %s)", pc.db, tv);
  else if (rpt && holds(j, *rpt))
    task_text(j, rpt->task, tv, sizeof tv),
        snprintf(out, cap, "per-tensor weights with %s (%.1f dB, %s)", rp, rpt->db, tv);
  else if (rpc && holds(j, *rpc))
    task_text(j, rpc->task, tv, sizeof tv),
        snprintf(out, cap, "per-channel weights with %s (%.1f dB, %s)", rp, rpc->db, tv);
  else if (mixed && holds(j, mx))
    task_text(j, mx.task, tv, sizeof tv),
        snprintf(out, cap, "%d of %d units in float (%.1f dB, %s, %.0f%% of the weights INT8)",
                 mixed->rep.kept_float, mixed->rep.layers, mx.db, tv,
                 100 * mixed->rep.weight_frac_int8);
  else {
    conf best = pc;
    if (rpc && better(j, *rpc, best))
      best = *rpc;
    if (mixed && better(j, mx, best))
      best = mx;
    task_text(j, best.task, tv, sizeof tv);
    snprintf(out, cap, "training (at best %.1f dB, %s)", best.db, tv);
  }
}

/* The repaired configurations: [0] W8A8 per-channel, [1] per-tensor, [2]
 * W4A8 per-channel (each with its best activation method), [3] mixed
 * precision for the target; their figures into the networks row. */
static qcal_status repaired(const qcal_zoo_cfg *cfg, sweep_state *s, qcal_table *nets,
                            const judge *j, conf pc, conf pt, conf w4) {
  const unsigned rp = cfg->repair;
  qcal_sweep_repair rc[4] = {{.method = method_index(pc.label),
                              .per_channel = true,
                              .wbits = 8,
                              .repair = rp,
                              .target_db = NAN},
                             {.method = method_index(pt.label),
                              .per_channel = false,
                              .wbits = 8,
                              .repair = rp,
                              .target_db = NAN},
                             {.method = method_index(w4.label),
                              .per_channel = true,
                              .wbits = 4,
                              .repair = rp,
                              .target_db = NAN},
                             {.method = method_index(pc.label),
                              .per_channel = true,
                              .wbits = 8,
                              .repair = rp,
                              .target_db = cfg->target_db}};
  const int n = isnan(cfg->target_db) ? 3 : 4;
  qcal_sweep_repair *first = rp ? rc : rc + 3; /* --target-db alone: the mixed run only */
  s->cfg.ada = cfg->ada;
  qcal_status st = qcal_sweep_e2e_repaired(s, first, rp ? n : 1);
  const conf r0 = {rc[0].worst_db, rc[0].task_value, ""},
             r1 = {rc[1].worst_db, rc[1].task_value, ""};
  if (!st) {
    if (rp) {
      qcal_table_set_f(nets, QCAL_COL(ZOO_NETWORKS, repaired_sqnr_db), rc[0].worst_db);
      qcal_table_set_f(nets, QCAL_COL(ZOO_NETWORKS, repaired_per_tensor_sqnr_db), rc[1].worst_db);
      qcal_table_set_f(nets, QCAL_COL(ZOO_NETWORKS, repaired_w4_sqnr_db), rc[2].worst_db);
    }
    if (n == 4) {
      qcal_table_set_f(nets, QCAL_COL(ZOO_NETWORKS, mixed_sqnr_db), rc[3].worst_db);
      qcal_table_set_f(nets, QCAL_COL(ZOO_NETWORKS, mixed_weight_int8), rc[3].rep.weight_frac_int8);
    }
    char need[320];
    needed(need, sizeof need, j, rp, pt, pc, rp ? &r1 : NULL, rp ? &r0 : NULL,
           n == 4 ? &rc[3] : NULL);
    qcal_table_set_s(nets, QCAL_COL(ZOO_NETWORKS, needed), need);
  }
  for (int i = 0; i < 4; i++)
    qcal_repair_report_free(&rc[i].rep);
  return st;
}

/* The crops the zoo made, per kind (include/qcal/crops.h). */
typedef struct zoo_crops {
  char dir[QCAL_CROP_COUNT][4200];
  int n[QCAL_CROP_COUNT];
  bool hands; /* the hand crops include --hands */
} zoo_crops;

static int crop_kind(const char *name) {
  for (int c = 0; c < QCAL_CROP_COUNT; c++)
    if (!strcmp(qcal_crop_names[c], name))
      return c;
  return -1;
}

/* The image files of a folder (0 when it cannot be read). */
static int count_images(const char *dir) {
  char **names;
  int n = 0;
  if (!dir || qcal_image_dir(dir, &names, &n) != QCAL_OK)
    return 0;
  qcal_image_dir_free(names, n);
  return n;
}

/* The photos network k is measured on, the data column saying so, and the
 * split (a small folder: half and half). */
static const char *network_data(const qcal_zoo_cfg *cfg, const zoo_crops *zc, int k, char *data,
                                size_t cap, int *calib, int *held) {
  const char *crop = qcal_zoo_crop[k];
  const int c = crop_kind(crop);
  *calib = cfg->calib, *held = cfg->held;
  const char *dir = NULL;
  int n = 0;
  if (!strcmp(crop, "people") && (n = count_images(cfg->people)) >= 2) {
    snprintf(data, cap, "in domain: %d whole photos of people (%s)", n, cfg->people);
    dir = cfg->people;
  } else if (c >= 0 && (n = zc->n[c]) >= 2) {
    snprintf(data, cap, "in domain: %s crops (%d made from %s%s%s)", crop, n, cfg->people,
             c == QCAL_CROP_HAND && zc->hands ? " and " : "",
             c == QCAL_CROP_HAND && zc->hands ? cfg->hands : "");
    dir = zc->dir[c];
  }
  if (dir) {
    *calib = *calib < n / 2 ? *calib : n / 2;
    *held = *held < n - *calib ? *held : n - *calib;
    return dir;
  }
  if (!strcmp(crop, "people"))
    snprintf(data, cap, "out of domain: photos, few of people (--people has fewer than 2)");
  else
    snprintf(data, cap, "out of domain: whole photos; in use it reads %s crops%s", crop,
             c >= 0 ? " (fewer than 2 made: --people)" : ", which qcal does not make yet");
  return cfg->images;
}

static qcal_status one(const qcal_zoo_cfg *cfg, const zoo_crops *zc, int k, qcal_table *zoo,
                       qcal_table *nets) {
  double t0 = qcal_now();
  sweep_state s;
  memset(&s, 0, sizeof s);
  char model[4200];
  snprintf(model, sizeof model, "%s/%s.json", cfg->models, qcal_zoo_names[k]);
  s.cfg.model = model;
  char data[600];
  s.cfg.images =
      network_data(cfg, zc, k, data, sizeof data, &s.cfg.calib_images, &s.cfg.held_images);
  s.cfg.bits[0] = 4, s.cfg.bits[1] = 8, s.cfg.nbits = 2;
  s.cfg.jobs = cfg->jobs;
  s.cfg.no_synthetic = 1;
  s.cfg.conv = "onednn";
  s.cfg.zoo = 1;
  s.cfg.pre.scale = s.cfg.pre.offset = NAN;
  s.cfg.primary_output = zoo_primary[k];
  s.cfg.primary_metric = zoo_metric[k];
  qcal_status st = qcal_sweep_network_items(&s);
  if (!st)
    st = qcal_sweep_calibrate(&s);
  if (!st)
    st = qcal_sweep_e2e(&s);
  const char *name = qcal_zoo_names[k];
  qcal_table_row(nets);
  qcal_table_set_s(nets, QCAL_COL(ZOO_NETWORKS, network), name);
  qcal_table_set_s(nets, QCAL_COL(ZOO_NETWORKS, data), data);
  judge j = {s.om_output >= 0 ? s.om : -1, s.om_side};
  conf pc = {NAN, NAN, ""}, pt = pc, w4 = pc;
  if (!st) {
    pc = best_of(&j, s.e2e_outputs, "per-channel");
    pt = best_of(&j, s.e2e_outputs, "per-tensor");
    w4 = best_of(&j, s.e2e_w4a8, "per-channel");
    if (cfg->repair || !isnan(cfg->target_db))
      st = repaired(cfg, &s, nets, &j, pc, pt, w4);
  }
  if (st) {
    char msg[1200];
    snprintf(msg, sizeof msg, "error: %s", qcal_last_error());
    qcal_table_set_s(nets, QCAL_COL(ZOO_NETWORKS, status), msg);
  } else {
    copy_rows(zoo, name, s.e2e_outputs, 8);
    copy_rows(zoo, name, s.e2e_w4a8, 8);
    char pre[256], rec[640], lay[256], prim[400];
    qcal_preproc_describe(&s.pre, pre, sizeof pre);
    double wo = score(s.e2e_outputs, "float", "per-channel").db;
    double sdb;
    sensitive(&s, lay, sizeof lay, &sdb);
    recommend(rec, sizeof rec, &j, pc, pt, w4, wo);
    char best[96];
    snprintf(best, sizeof best, "W8A8 per-channel, %s", pc.label);
    if (j.om >= 0)
      snprintf(prim, sizeof prim, "%s: %s, %s (holds at %s %.3g %s)", zoo_primary[k],
               qcal_om_list[j.om].name, qcal_om_list[j.om].what,
               qcal_om_list[j.om].lower_better ? "<=" : ">=",
               qcal_om_threshold((qcal_outmetric)j.om, j.side), qcal_om_list[j.om].unit);
    else
      snprintf(prim, sizeof prim, "none: the worst output's SQNR, 20 dB");
    qcal_table_set_s(nets, QCAL_COL(ZOO_NETWORKS, status), "ok");
    qcal_table_set_s(nets, QCAL_COL(ZOO_NETWORKS, preprocessing), pre);
    qcal_table_set_i(nets, QCAL_COL(ZOO_NETWORKS, layers), s.nlayers);
    qcal_table_set_i(nets, QCAL_COL(ZOO_NETWORKS, calib_images), s.ncalib);
    qcal_table_set_i(nets, QCAL_COL(ZOO_NETWORKS, held_images), s.nheld);
    qcal_table_set_s(nets, QCAL_COL(ZOO_NETWORKS, best_config), best);
    qcal_table_set_f(nets, QCAL_COL(ZOO_NETWORKS, best_sqnr_db), pc.db);
    qcal_table_set_f(nets, QCAL_COL(ZOO_NETWORKS, per_tensor_sqnr_db), pt.db);
    qcal_table_set_f(nets, QCAL_COL(ZOO_NETWORKS, w4_sqnr_db), w4.db);
    qcal_table_set_f(nets, QCAL_COL(ZOO_NETWORKS, weights_only_sqnr_db), wo);
    qcal_table_set_s(nets, QCAL_COL(ZOO_NETWORKS, recommended), rec);
    qcal_table_set_s(nets, QCAL_COL(ZOO_NETWORKS, sensitive_layer), lay);
    qcal_table_set_f(nets, QCAL_COL(ZOO_NETWORKS, sensitive_layer_sqnr_db), sdb);
    qcal_table_set_s(nets, QCAL_COL(ZOO_NETWORKS, primary), prim);
    qcal_table_set_f(nets, QCAL_COL(ZOO_NETWORKS, best_task_value), pc.task);
    qcal_table_set_f(nets, QCAL_COL(ZOO_NETWORKS, per_tensor_task_value), pt.task);
    qcal_table_set_f(nets, QCAL_COL(ZOO_NETWORKS, w4_task_value), w4.task);
  }
  qcal_table_set_f(nets, QCAL_COL(ZOO_NETWORKS, seconds), qcal_now() - t0);
  qcal_sweep_free(&s);
  return QCAL_OK;
}

/* Each crop kind a selected network reads, made once from the people
 * photos into a temporary folder. */
static qcal_status make_crops(const qcal_zoo_cfg *cfg, zoo_crops *zc) {
  struct stat sb;
  if (!cfg->people || stat(cfg->people, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return QCAL_OK; /* the rows say: out of domain */
  for (int c = 0; c < QCAL_CROP_COUNT; c++) {
    bool want = false;
    for (int k = 0; k < qcal_zoo_count; k++)
      want |= selected(cfg->only, qcal_zoo_names[k]) && crop_kind(qcal_zoo_crop[k]) == c;
    if (!want)
      continue;
    const char *tmp = getenv("TMPDIR");
    snprintf(zc->dir[c], sizeof zc->dir[c], "%s/qcal-%s-crops-XXXXXX", tmp && *tmp ? tmp : "/tmp",
             qcal_crop_names[c]);
    if (!mkdtemp(zc->dir[c])) {
      zc->dir[c][0] = 0;
      return qcal_error(QCAL_EIO, "cannot create a folder for the %s crops", qcal_crop_names[c]);
    }
    const char *dirs[2] = {cfg->people, cfg->hands};
    const int nd = c == QCAL_CROP_HAND && cfg->hands && stat(cfg->hands, &sb) == 0 ? 2 : 1;
    zc->hands |= nd > 1;
    const qcal_crop_opts o = QCAL_CROP_OPTS_DEFAULT;
    fprintf(stderr, "zoo: %s crops of %s%s%s\n", qcal_crop_names[c], cfg->people,
            nd > 1 ? " and " : "", nd > 1 ? cfg->hands : "");
    QCAL_TRY(
        qcal_crops_make(cfg->models, (qcal_crop_kind)c, dirs, nd, zc->dir[c], &o, &zc->n[c], NULL));
  }
  return QCAL_OK;
}

static void remove_crops(const zoo_crops *zc) {
  for (int c = 0; c < QCAL_CROP_COUNT; c++) {
    if (!zc->dir[c][0])
      continue;
    DIR *d = opendir(zc->dir[c]);
    struct dirent *e;
    while (d && (e = readdir(d))) {
      char p[4600];
      if (e->d_name[0] == '.')
        continue;
      snprintf(p, sizeof p, "%s/%s", zc->dir[c], e->d_name);
      unlink(p);
    }
    if (d)
      closedir(d);
    rmdir(zc->dir[c]);
  }
}

qcal_status qcal_zoo_run(const qcal_zoo_cfg *cfg, qcal_table **zoo, qcal_table **networks) {
  if (cfg->only)
    for (const char *p = cfg->only; *p;) {
      const char *e = strchr(p, ',');
      size_t len = e ? (size_t)(e - p) : strlen(p);
      bool known = false;
      for (int k = 0; k < qcal_zoo_count; k++)
        known |= strlen(qcal_zoo_names[k]) == len && !strncmp(p, qcal_zoo_names[k], len);
      if (!known)
        return qcal_error(QCAL_EINVAL, "--networks: '%.*s' is not a zoo network (qcal zoo --list)",
                          (int)(len > 80 ? 80 : len), p);
      p += len + (e ? 1 : 0);
    }
  /* inputs every network needs: refused before any runs */
  char **names;
  int nimg;
  QCAL_TRY(qcal_image_dir(cfg->images, &names, &nimg));
  qcal_image_dir_free(names, nimg);
  if (nimg < 2)
    return qcal_error(QCAL_EDATA,
                      "%s: %d images; the zoo needs at least 2 (calibration + "
                      "held-out)",
                      cfg->images, nimg);
  struct stat sb;
  if (stat(cfg->models, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return qcal_error(QCAL_EIO,
                      "%s: no such model folder (run scripts/fetch-models.sh, or pass "
                      "--models DIR)",
                      cfg->models);
  *zoo = qcal_table_new_schema(QCAL_TABLE_ZOO);
  *networks = qcal_table_new_schema(QCAL_TABLE_ZOO_NETWORKS);
  if (!*zoo || !*networks)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  zoo_crops zc;
  memset(&zc, 0, sizeof zc);
  qcal_status st = make_crops(cfg, &zc);
  int total = 0, done = 0;
  for (int k = 0; k < qcal_zoo_count; k++)
    total += selected(cfg->only, qcal_zoo_names[k]);
  for (int k = 0; k < qcal_zoo_count && !st; k++) {
    if (!selected(cfg->only, qcal_zoo_names[k]))
      continue;
    fprintf(stderr, "zoo [%d/%d] %s\n", ++done, total, qcal_zoo_names[k]);
    st = one(cfg, &zc, k, *zoo, *networks);
  }
  remove_crops(&zc);
  return st;
}
