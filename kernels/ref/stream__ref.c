/* Portable scalar bandwidth kernels: the references for qcal stream. */
#include "kernels/scalar.h"
#include "qcal/kernels.h"

void qcal_f32_copy__ref(size_t n, const float *a, float *b) {
  for (size_t i = 0; i < n; i++)
    b[i] = a[i];
}

void qcal_f32_triad__ref(size_t n, const float *b, const float *c, float s, float *a) {
  for (size_t i = 0; i < n; i++) {
    float t = s * c[i];
    a[i] = b[i] + t;
  }
}

void qcal_s32_s8_requantize__ref(size_t n, const int32_t *x, int8_t *y, float scale, float qmin,
                                 float qmax) {
  for (size_t i = 0; i < n; i++)
    y[i] = (int8_t)(int32_t)qcal_round_clamp((float)x[i] * scale, qmin, qmax);
}

void qcal_f32_relu__ref(size_t n, const float *x, float *y) {
  for (size_t i = 0; i < n; i++)
    y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void qcal_s8_relu__ref(size_t n, const int8_t *x, int8_t *y) {
  for (size_t i = 0; i < n; i++)
    y[i] = x[i] > 0 ? x[i] : 0;
}

void qcal_f32_add__ref(size_t n, const float *a, const float *b, float *y) {
  for (size_t i = 0; i < n; i++)
    y[i] = a[i] + b[i];
}

void qcal_s8_add__ref(size_t n, const int8_t *a, const int8_t *b, int8_t *y) {
  for (size_t i = 0; i < n; i++) {
    int v = a[i] + b[i];
    y[i] = (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
  }
}
