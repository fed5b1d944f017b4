/* Scalar references of the int8 engine's element-wise steps (kernels.h):
 * ONNX's QuantizeLinear division, the int8 residual Add, and the rescale of
 * codes between two scales. */
#include <math.h>

#include "qcal/kernels.h"

static inline float sat(float r, float lo, float hi) {
  return r < lo ? lo : r > hi ? hi : r;
}

void qcal_f32_q8_quantize_div__ref(size_t n, const float *x, float s, float zp, bool s8, void *y) {
  const float lo = s8 ? -128.0f : 0.0f, hi = s8 ? 127.0f : 255.0f;
  for (size_t i = 0; i < n; i++) {
    float r = x[i] / s;
    r = sat(r == r ? rintf(r) + zp : zp, lo, hi);
    if (s8)
      ((int8_t *)y)[i] = (int8_t)r;
    else
      ((uint8_t *)y)[i] = (uint8_t)r;
  }
}

void qcal_f32_q8_quantize_div_planes__ref(size_t n, int C, const float *x, size_t stride, float s,
                                          float zp, bool s8, void *y) {
  for (int c = 0; c < C; c++)
    for (size_t i = 0; i < n; i++) {
      uint8_t b;
      qcal_f32_q8_quantize_div__ref(1, x + (size_t)c * stride + i, s, zp, s8, &b);
      ((uint8_t *)y)[i * (size_t)C + (size_t)c] = b;
    }
}

void qcal_s8_s8_add_requant__ref(size_t n, const int8_t *a, const int8_t *b, float sa, float sb,
                                 float sy, float zy, bool relu, int8_t *y) {
  for (size_t i = 0; i < n; i++) {
    float pa = (float)a[i] * sa, pb = (float)b[i] * sb;
    float v = pa + pb;
    v = relu && v < 0 ? 0 : v;
    y[i] = (int8_t)sat(rintf(v / sy) + zy, -128.0f, 127.0f);
  }
}

void qcal_q8_s8_rescale__ref(size_t n, const uint8_t *q, bool u8, float sa, float sy, int8_t *y) {
  for (size_t i = 0; i < n; i++) {
    float v = (float)(u8 ? (int)q[i] : (int)(int8_t)q[i]) * sa;
    y[i] = (int8_t)sat(rintf(v / sy), -128.0f, 127.0f);
  }
}
