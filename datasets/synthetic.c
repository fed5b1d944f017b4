/* Seeded synthetic distributions (xoshiro256** + our own transforms), so a
 * name and a seed give the same tensor bit for bit on every run. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "qcal/datasets.h"

uint64_t qcal_splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void qcal_rng_seed(qcal_rng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++)
    r->s[i] = qcal_splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

uint64_t qcal_rng_next(qcal_rng *r) {
  uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return out;
}

double qcal_rng_uniform(qcal_rng *r) {
  return (double)(qcal_rng_next(r) >> 11) * 0x1.0p-53;
}

double qcal_rng_normal(qcal_rng *r) { /* Marsaglia polar method */
  double u, v, s;
  do {
    u = 2.0 * qcal_rng_uniform(r) - 1.0;
    v = 2.0 * qcal_rng_uniform(r) - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  return u * sqrt(-2.0 * log(s) / s);
}

static double laplace(qcal_rng *r) {
  double u = qcal_rng_uniform(r) - 0.5;
  return u < 0 ? log1p(2.0 * u) : -log1p(-2.0 * u);
}

static double student_t3(qcal_rng *r) {
  double z = qcal_rng_normal(r), c = 0;
  for (int i = 0; i < 3; i++) {
    double g = qcal_rng_normal(r);
    c += g * g;
  }
  return z / sqrt(c / 3.0);
}

typedef double (*sampler)(qcal_rng *r);
static double s_gauss(qcal_rng *r) {
  return qcal_rng_normal(r);
}
static double s_uniform(qcal_rng *r) {
  return 2.0 * qcal_rng_uniform(r) - 1.0;
}
static double s_halfnormal(qcal_rng *r) {
  return fabs(qcal_rng_normal(r));
}
static double s_outliers(qcal_rng *r) { /* 0.01% at +-40 sigma */
  double z = qcal_rng_normal(r);
  if (qcal_rng_uniform(r) < 1e-4)
    return z < 0 ? -40.0 : 40.0;
  return z;
}
static double s_bimodal(qcal_rng *r) {
  double z = 0.5 * qcal_rng_normal(r);
  return qcal_rng_uniform(r) < 0.5 ? z - 2.0 : z + 2.0;
}
static double s_lognormal(qcal_rng *r) {
  return exp(qcal_rng_normal(r));
}

const qcal_synthetic_info qcal_synthetic[] = {
    {"gaussian", "N(0, 1)"},
    {"laplace", "Laplace(0, 1)"},
    {"student-t", "Student t, 3 degrees of freedom"},
    {"uniform", "U(-1, 1)"},
    {"half-normal", "|N(0, 1)| (post-ReLU)"},
    {"outliers", "N(0, 1) with 0.01% outliers at +-40 sigma"},
    {"bimodal", "N(+-2, 0.5^2), equal weights"},
    {"log-normal", "exp(N(0, 1))"},
};
/* Same order as qcal_synthetic. */
static const sampler samplers[] = {s_gauss,      laplace,    student_t3, s_uniform,
                                   s_halfnormal, s_outliers, s_bimodal,  s_lognormal};
const size_t qcal_synthetic_count = sizeof samplers / sizeof samplers[0];

qcal_status qcal_synthetic_make(const char *name, uint64_t seed, size_t n, qcal_tensor *out) {
  for (size_t i = 0; i < qcal_synthetic_count; i++) {
    if (strcmp(qcal_synthetic[i].name, name))
      continue;
    int64_t shape[1] = {(int64_t)n};
    QCAL_TRY(qcal_tensor_alloc(out, 1, shape));
    qcal_rng r;
    qcal_rng_seed(&r, seed);
    for (size_t k = 0; k < n; k++)
      out->data[k] = (float)samplers[i](&r);
    snprintf(out->name, sizeof out->name, "%s", name);
    return QCAL_OK;
  }
  return qcal_error(QCAL_EINVAL, "unknown distribution '%s'", name);
}

qcal_status qcal_synthetic_channels(const char *name, uint64_t seed, size_t channels, size_t per,
                                    double ratio, qcal_tensor *out) {
  if (!(ratio >= 1.0))
    return qcal_error(QCAL_EINVAL, "channel ratio %g must be >= 1", ratio);
  size_t n;
  QCAL_TRY(qcal_mul_size(channels, per, &n));
  QCAL_TRY(qcal_synthetic_make(name, seed, n, out));
  out->ndim = 2;
  out->shape[0] = (int64_t)channels;
  out->shape[1] = (int64_t)per;
  qcal_rng r;
  qcal_rng_seed(&r, seed ^ 0x5ca1e5ull);
  for (size_t c = 0; c < channels; c++) {
    float s = (float)pow(ratio, -qcal_rng_uniform(&r));
    for (size_t i = 0; i < per; i++)
      out->data[c * per + i] *= s;
  }
  snprintf(out->name, sizeof out->name, "%s-channels", name);
  return QCAL_OK;
}
