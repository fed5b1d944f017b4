/* Helpers shared by the Criterion suites. */
#ifndef QCAL_TESTS_COMMON_H
#define QCAL_TESTS_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcal/datasets.h"

/* XNNPACK-style sizes: 0, 1, tile-1/tile/tile+1 for 8/16/32/64 lanes,
 * multiples and odd primes. */
static const size_t test_sizes[] = {0,  1,  2,  3,  7,   8,   9,   15,  16,  17,  31,   32,   33,
                                    47, 63, 64, 65, 127, 128, 129, 251, 256, 509, 1021, 4096, 4099};
#define N_TEST_SIZES (sizeof test_sizes / sizeof test_sizes[0])

static inline uint32_t f2u(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

/* Random values with specials mixed in: exact halves on the grid, +-0,
 * NaN, +-Inf, huge and tiny values. scale is the quantizer scale. */
static inline void fill_special(float *x, size_t n, uint64_t seed, float s) {
  qcal_rng r;
  qcal_rng_seed(&r, seed);
  for (size_t i = 0; i < n; i++) {
    uint64_t k = qcal_rng_next(&r) % 16;
    double z = qcal_rng_normal(&r);
    switch (k) {
    case 0:
      x[i] = ((float)(int)(z * 40) + 0.5f) / s;
      break; /* ties */
    case 1:
      x[i] = (k & 1) ? -0.0f : 0.0f;
      break;
    case 2:
      x[i] = NAN;
      break;
    case 3:
      x[i] = (z < 0 ? -1.0f : 1.0f) * INFINITY;
      break;
    case 4:
      x[i] = (float)(z * 1e30);
      break;
    case 5:
      x[i] = (float)(z * 1e-30);
      break;
    default:
      x[i] = (float)(z * 60.0) / s;
      break;
    }
  }
}

/* A private scratch directory per test. */
static inline void tmpdir_make(char *dir, size_t cap, const char *tag) {
  snprintf(dir, cap, "/tmp/qcal_%s_XXXXXX", tag);
  if (!mkdtemp(dir))
    dir[0] = '\0';
}

static inline int tmpdir_remove(const char *dir) {
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd);
}

/* The integer a shell command prints (e.g. "... | wc -l"); -1 on failure. */
static inline int shell_count(const char *cmd) {
  FILE *p = popen(cmd, "r");
  int n = -1;
  if (p) {
    if (fscanf(p, "%d", &n) != 1)
      n = -1;
    pclose(p);
  }
  return n;
}

#endif
