/* The element-wise spans of the training ops (graph/train_simd.h), cloned
 * for AVX-512, AVX2 and the baseline; GCC and clang pick at load time. */
#include "graph/train_simd.h"
#include "graph/simd.h"

static inline double qcal_lanes_total(const float *acc) {
  double s = 0;
  for (int j = 0; j < QCAL_LANES; j++)
    s += acc[j];
  return s;
}

/* y[i] += a * x[i] */
QCAL_SIMD_CLONES static void qcal_span_axpy_clones(float *restrict y, const float *restrict x,
                                                   float a, size_t n) {
  for (size_t i = 0; i < n; i++)
    y[i] += a * x[i];
}

/* sum x[i] * y[i] */
QCAL_SIMD_CLONES static double qcal_span_dot_clones(const float *restrict x,
                                                    const float *restrict y, size_t n) {
  float acc[QCAL_LANES] = {0};
  size_t i = 0;
  for (; i + QCAL_LANES <= n; i += QCAL_LANES)
    for (int j = 0; j < QCAL_LANES; j++)
      acc[j] += x[i + j] * y[i + j];
  for (; i < n; i++)
    acc[i % QCAL_LANES] += x[i] * y[i];
  return qcal_lanes_total(acc);
}

/* sum x[i] */
QCAL_SIMD_CLONES static double qcal_span_sum_clones(const float *restrict x, size_t n) {
  float acc[QCAL_LANES] = {0};
  size_t i = 0;
  for (; i + QCAL_LANES <= n; i += QCAL_LANES)
    for (int j = 0; j < QCAL_LANES; j++)
      acc[j] += x[i + j];
  for (; i < n; i++)
    acc[i % QCAL_LANES] += x[i];
  return qcal_lanes_total(acc);
}

/* sum (x[i] - m)^2 */
QCAL_SIMD_CLONES static double qcal_span_sumsq_dev_clones(const float *restrict x, float m,
                                                          size_t n) {
  float acc[QCAL_LANES] = {0};
  size_t i = 0;
  for (; i + QCAL_LANES <= n; i += QCAL_LANES)
    for (int j = 0; j < QCAL_LANES; j++) {
      float d = x[i + j] - m;
      acc[j] += d * d;
    }
  for (; i < n; i++) {
    float d = x[i] - m;
    acc[i % QCAL_LANES] += d * d;
  }
  return qcal_lanes_total(acc);
}

/* sum g[i] * (x[i] - m) * s */
QCAL_SIMD_CLONES static double qcal_span_dot_norm_clones(const float *restrict g,
                                                         const float *restrict x, float m, float s,
                                                         size_t n) {
  float acc[QCAL_LANES] = {0};
  size_t i = 0;
  for (; i + QCAL_LANES <= n; i += QCAL_LANES)
    for (int j = 0; j < QCAL_LANES; j++)
      acc[j] += g[i + j] * ((x[i + j] - m) * s);
  for (; i < n; i++)
    acc[i % QCAL_LANES] += g[i] * ((x[i] - m) * s);
  return qcal_lanes_total(acc);
}

/* y[i] = x[i] * a + b */
QCAL_SIMD_CLONES static void qcal_span_affine_clones(float *restrict y, const float *restrict x,
                                                     float a, float b, size_t n) {
  for (size_t i = 0; i < n; i++)
    y[i] = x[i] * a + b;
}

/* BatchNormalization's input gradient:
 * q[i] += k * (g[i] - mg - (x[i] - m) * s * mgx) */
QCAL_SIMD_CLONES static void qcal_span_bn_dx_clones(float *restrict q, const float *restrict g,
                                                    const float *restrict x, float k, float mg,
                                                    float m, float s, float mgx, size_t n) {
  for (size_t i = 0; i < n; i++)
    q[i] += k * (g[i] - mg - (x[i] - m) * s * mgx);
}

/* y[i] = clamp(x[i], lo, hi) */
QCAL_SIMD_CLONES static void qcal_span_clamp_clones(float *restrict y, const float *restrict x,
                                                    float lo, float hi, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float v = x[i] < lo ? lo : x[i];
    y[i] = v > hi ? hi : v;
  }
}

/* dx[i] += dy[i] where lo < x[i] < hi */
QCAL_SIMD_CLONES static void qcal_span_clamp_bwd_clones(float *restrict dx, const float *restrict x,
                                                        const float *restrict dy, float lo,
                                                        float hi, size_t n) {
  for (size_t i = 0; i < n; i++)
    dx[i] += ((x[i] > lo) & (x[i] < hi)) ? dy[i] : 0.0f;
}

/* y[i] = a[i] + b[i] */
QCAL_SIMD_CLONES static void qcal_span_add_clones(float *restrict y, const float *restrict a,
                                                  const float *restrict b, size_t n) {
  for (size_t i = 0; i < n; i++)
    y[i] = a[i] + b[i];
}

void qcal_span_axpy(float *restrict y, const float *restrict x, float a, size_t n) {
  qcal_span_axpy_clones(y, x, a, n);
}
double qcal_span_dot(const float *restrict x, const float *restrict y, size_t n) {
  return qcal_span_dot_clones(x, y, n);
}
double qcal_span_sum(const float *restrict x, size_t n) {
  return qcal_span_sum_clones(x, n);
}
double qcal_span_sumsq_dev(const float *restrict x, float m, size_t n) {
  return qcal_span_sumsq_dev_clones(x, m, n);
}
double qcal_span_dot_norm(const float *restrict g, const float *restrict x, float m, float s,
                          size_t n) {
  return qcal_span_dot_norm_clones(g, x, m, s, n);
}
void qcal_span_affine(float *restrict y, const float *restrict x, float a, float b, size_t n) {
  qcal_span_affine_clones(y, x, a, b, n);
}
void qcal_span_bn_dx(float *restrict q, const float *restrict g, const float *restrict x, float k,
                     float mg, float m, float s, float mgx, size_t n) {
  qcal_span_bn_dx_clones(q, g, x, k, mg, m, s, mgx, n);
}
void qcal_span_clamp(float *restrict y, const float *restrict x, float lo, float hi, size_t n) {
  qcal_span_clamp_clones(y, x, lo, hi, n);
}
void qcal_span_clamp_bwd(float *restrict dx, const float *restrict x, const float *restrict dy,
                         float lo, float hi, size_t n) {
  qcal_span_clamp_bwd_clones(dx, x, dy, lo, hi, n);
}
void qcal_span_add(float *restrict y, const float *restrict a, const float *restrict b, size_t n) {
  qcal_span_add_clones(y, a, b, n);
}
