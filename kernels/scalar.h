/* Scalar building blocks shared by the reference kernels and the SIMD tails.
 * Each mirrors one SIMD instruction sequence exactly, so tails and bodies
 * agree bit for bit. */
#ifndef QCAL_KERNELS_SCALAR_H
#define QCAL_KERNELS_SCALAR_H

#include <math.h>
#include <stdint.h>

/* NaN -> 0, then max/min with x86 MAXPS/MINPS operand semantics
 * ((a > b) ? a : b), then round half to even. */
static inline float qcal_round_clamp(float v, float qmin, float qmax) {
  if (v != v)
    v = 0.0f;
  v = v > qmin ? v : qmin;
  v = v < qmax ? v : qmax;
  return rintf(v);
}

/* torch.histc bin of a = |x| over [0, range]; -1 when not counted. */
static inline int64_t qcal_hist_bin(float a, float nf, float range, uint32_t nbins,
                                    int skip_zeros) {
  if (a > range || (skip_zeros && a == 0.0f))
    return -1;
  float v = (a * nf) / range;
  return v < nf ? (int64_t)v : (int64_t)nbins - 1;
}

#endif
