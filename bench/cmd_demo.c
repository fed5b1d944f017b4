/* qcal demo: every method on generated distributions, one table. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "bench/cli.h"
#include "qcal/datasets.h"
#include "qcal/kernels.h"

typedef struct {
  int size, seed, bits;
} demo_cfg;

#define O(f) offsetof(demo_cfg, f)
static const qcal_opt opts[] = {
    {"size", "N", "samples per distribution", O(size), OPT_INT, 1024, 1 << 26, NULL},
    {"seed", "S", "generator seed", O(seed), OPT_INT, 0, 2147483647, NULL},
    {"bits", "B", "bit width", O(bits), OPT_INT, 2, 16, NULL},
    {NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};
#undef O

static const qcal_cmd_info info = {
    "demo",
    "qcal demo [--size N] [--seed S] [--bits B]",
    "Compare max, entropy, mse and percentile calibration (per tensor) on seeded\n"
    "synthetic distributions, then per-tensor vs per-channel on BN-folded-like\n"
    "weights whose channel ranges differ by up to 100x.",
    opts,
};

enum { NCONF = QCAL_METHOD_CONFIG_COUNT };
static const qcal_method_config *const configs = qcal_method_configs;

int qcal_cmd_demo(int argc, char **argv) {
  demo_cfg cfg = {1 << 20, 1, 8};
  const char *pos[1];
  int npos, r = qcal_opts_parse(&info, &cfg, argc, argv, pos, 0, &npos);
  if (r)
    return r > 0 ? QCAL_EXIT_OK : QCAL_EXIT_USAGE;

  printf("qcal demo: %d samples per distribution, %d-bit signed narrow range, "
         "kernels %s\n\n",
         cfg.size, cfg.bits, qcal_kernels()->isa);
  printf("%-12s %-11s %12s %9s %9s %11s %11s %9s\n", "distribution", "method", "amax", "SQNR dB",
         "clip %", "clip mse", "round mse", "time ms");
  qcal_progress prog;
  qcal_progress_start(&prog, "demo", qcal_synthetic_count * NCONF + 2);
  for (size_t d = 0; d < qcal_synthetic_count; d++) {
    qcal_tensor t;
    qcal_status st =
        qcal_synthetic_make(qcal_synthetic[d].name, (uint64_t)cfg.seed, (size_t)cfg.size, &t);
    if (st != QCAL_OK)
      return qcal_die_status(st);
    qcal_metrics m[NCONF];
    float amax[NCONF];
    double ms[NCONF];
    int best = 0;
    for (int c = 0; c < NCONF; c++) {
      qcal_calib_request req = {qcal_method_find(configs[c].method), QCAL_PER_TENSOR,
                                QCAL_HIST_OPTS_DEFAULT, QCAL_CALIB_OPTS_DEFAULT};
      req.calib.fmt.bits = cfg.bits;
      if (configs[c].percentile > 0)
        req.calib.percentile = configs[c].percentile;
      qcal_calib_result res;
      if ((st = qcal_evaluate(&t, &req, &res, &m[c])) != QCAL_OK) {
        qcal_progress_end(&prog);
        qcal_tensor_free(&t);
        return qcal_die_status(st);
      }
      amax[c] = res.amax[0];
      ms[c] = 1e3 * (res.collect_s + res.compute_s);
      qcal_calib_result_free(&res);
      if (m[c].sqnr_db > m[best].sqnr_db)
        best = c;
      qcal_progress_step(&prog, 1);
    }
    qcal_progress_end(&prog);
    for (int c = 0; c < NCONF; c++)
      printf("%-12s %-11s %12.6g %8.2f%s %9.4f %11.4g %11.4g %9.2f\n",
             c ? "" : qcal_synthetic[d].name, configs[c].label, (double)amax[c], m[c].sqnr_db,
             c == best ? "*" : " ", 100.0 * m[c].clip_fraction, m[c].clip_mse, m[c].round_mse,
             ms[c]);
    qcal_tensor_free(&t);
  }
  printf("(* best SQNR per distribution; clip + round = total mse)\n\n");

  /* Depthwise-like weights: 32 channels whose scales span 100x. */
  enum { CH = 32, PER = 4096 };
  qcal_tensor w;
  int64_t shape[2] = {CH, PER};
  qcal_status st = qcal_tensor_alloc(&w, 2, shape);
  if (st != QCAL_OK)
    return qcal_die_status(st);
  qcal_rng rng;
  qcal_rng_seed(&rng, (uint64_t)cfg.seed);
  for (int c = 0; c < CH; c++) {
    double scale = pow(100.0, -qcal_rng_uniform(&rng));
    for (int i = 0; i < PER; i++)
      w.data[c * PER + i] = (float)(scale * qcal_rng_normal(&rng));
  }
  printf("per-tensor vs per-channel, max calibration, weights [%d, %d] with "
         "channel scales log-uniform over 100x:\n",
         CH, PER);
  for (int axis_i = 0; axis_i < 2; axis_i++) {
    qcal_calib_request req = {qcal_method_find("max"), axis_i ? 0 : QCAL_PER_TENSOR,
                              QCAL_HIST_OPTS_DEFAULT, QCAL_CALIB_OPTS_DEFAULT};
    req.calib.fmt.bits = cfg.bits;
    qcal_calib_result res;
    qcal_metrics m;
    if ((st = qcal_evaluate(&w, &req, &res, &m)) != QCAL_OK) {
      qcal_tensor_free(&w);
      return qcal_die_status(st);
    }
    printf("  %-12s SQNR %6.2f dB\n", axis_i ? "per-channel" : "per-tensor", m.sqnr_db);
    qcal_calib_result_free(&res);
  }
  qcal_tensor_free(&w);
  return QCAL_EXIT_OK;
}
