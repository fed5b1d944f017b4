/* The element-wise spans of the training ops, one function each with
 * restrict pointers and clones for AVX-512, AVX2 and the baseline (GCC
 * picks at load time): without them the loops ran scalar, with a branch
 * per element. Sums keep 16 partial lanes and add them in a fixed order,
 * so the result does not depend on the clone: the same bits on every
 * machine for a given thread count. */
#ifndef QCAL_TRAIN_SIMD_H
#define QCAL_TRAIN_SIMD_H

#include <stddef.h>

enum { QCAL_LANES = 16 };

/* y[i] += a * x[i] */
void qcal_span_axpy(float *restrict y, const float *restrict x, float a, size_t n);
/* sum x[i] * y[i] */
double qcal_span_dot(const float *restrict x, const float *restrict y, size_t n);
/* sum x[i] */
double qcal_span_sum(const float *restrict x, size_t n);
/* sum (x[i] - m)^2 */
double qcal_span_sumsq_dev(const float *restrict x, float m, size_t n);
/* sum g[i] * (x[i] - m) * s */
double qcal_span_dot_norm(const float *restrict g, const float *restrict x, float m, float s,
                          size_t n);
/* y[i] = x[i] * a + b */
void qcal_span_affine(float *restrict y, const float *restrict x, float a, float b, size_t n);
/* BatchNormalization's input gradient:
 * q[i] += k * (g[i] - mg - (x[i] - m) * s * mgx) */
void qcal_span_bn_dx(float *restrict q, const float *restrict g, const float *restrict x, float k,
                     float mg, float m, float s, float mgx, size_t n);
/* y[i] = clamp(x[i], lo, hi) */
void qcal_span_clamp(float *restrict y, const float *restrict x, float lo, float hi, size_t n);
/* dx[i] += dy[i] where lo < x[i] < hi */
void qcal_span_clamp_bwd(float *restrict dx, const float *restrict x, const float *restrict dy,
                         float lo, float hi, size_t n);
/* y[i] = a[i] + b[i] */
void qcal_span_add(float *restrict y, const float *restrict a, const float *restrict b, size_t n);

/* [lo, hi) of n for this thread of the team */
#define QCAL_THREAD_SPAN(n, lo, hi)                                                                \
  size_t lo = (size_t)(n) * (size_t)omp_get_thread_num() / (size_t)omp_get_num_threads();          \
  size_t hi = (size_t)(n) * (size_t)(omp_get_thread_num() + 1) / (size_t)omp_get_num_threads()

#endif
