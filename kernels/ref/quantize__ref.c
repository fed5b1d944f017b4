/* Portable scalar quantization kernels: the source of truth. */
#include "kernels/scalar.h"
#include "qcal/kernels.h"

void qcal_f32_q8_quantize__ref(size_t n, const float *x, uint8_t *q, const float *scale,
                               bool per_elem, float qmin, float qmax) {
  for (size_t i = 0; i < n; i++) {
    float s = scale[per_elem ? i : 0];
    q[i] = (uint8_t)(int32_t)qcal_round_clamp(x[i] * s, qmin, qmax);
  }
}

void qcal_s8_f32_dequantize__ref(size_t n, const int8_t *q, float *y, const float *dq_scale,
                                 bool per_elem) {
  for (size_t i = 0; i < n; i++)
    y[i] = (float)q[i] * dq_scale[per_elem ? i : 0];
}

void qcal_u8_f32_dequantize__ref(size_t n, const uint8_t *q, float *y, const float *dq_scale,
                                 bool per_elem) {
  for (size_t i = 0; i < n; i++)
    y[i] = (float)q[i] * dq_scale[per_elem ? i : 0];
}

void qcal_f32_f32_fakequant__ref(size_t n, const float *x, float *y, const float *scale,
                                 const float *dq_scale, bool per_elem, float qmin, float qmax) {
  for (size_t i = 0; i < n; i++) {
    size_t c = per_elem ? i : 0;
    y[i] = qcal_round_clamp(x[i] * scale[c], qmin, qmax) / dq_scale[c];
  }
}
