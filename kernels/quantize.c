/* Tensor-level symmetric quantizers: per-channel scales over a layout, then
 * the dispatched micro-kernels on contiguous runs. */
#include <math.h>
#include <string.h>

#include "kernels/scalar.h"
#include "qcal/kernels.h"
#include "qcal/quant.h"

qcal_status qcal_qformat_check(qcal_qformat f) {
  if (f.bits < 2 || f.bits > 16)
    return qcal_error(QCAL_EINVAL, "bits %d out of range (2..16)", f.bits);
  if (f.is_unsigned && f.full_range)
    return qcal_error(QCAL_EINVAL, "full range applies to signed formats only");
  return QCAL_OK;
}

float qcal_qformat_qmax(qcal_qformat f) {
  return (float)((1 << (f.bits - 1 + (f.is_unsigned ? 1 : 0))) - 1);
}

float qcal_qformat_qmin(qcal_qformat f) {
  if (f.is_unsigned)
    return 0.0f;
  return f.full_range ? -qcal_qformat_qmax(f) - 1.0f : -qcal_qformat_qmax(f);
}

float qcal_quant_scale(qcal_qformat f, float amax) {
  if (!(amax > QCAL_AMAX_EPSILON))
    return 0.0f;
  return qcal_qformat_qmax(f) / amax;
}

float qcal_dequant_scale(qcal_qformat f, float amax) {
  float s = qcal_quant_scale(f, amax);
  return s == 0.0f ? 1.0f : s;
}

float qcal_fake_quant_one(float x, float s, float s_dq, float qmin, float qmax) {
  return qcal_round_clamp(x * s, qmin, qmax) / s_dq;
}

/* Scales per channel; checks amax. */
static qcal_status make_scales(const qcal_layout *l, const float *amax, qcal_qformat f, float **s,
                               float **sdq) {
  QCAL_TRY(qcal_qformat_check(f));
  for (size_t c = 0; c < l->channels; c++)
    if (!(amax[c] >= 0.0f) || isinf(amax[c]))
      return qcal_error(QCAL_EINVAL, "amax[%zu] = %g is not a finite value >= 0", c,
                        (double)amax[c]);
  size_t n = l->channels ? l->channels : 1;
  *s = qcal_alloc(n * sizeof(float));
  *sdq = qcal_alloc(n * sizeof(float));
  if (!*s || !*sdq) {
    qcal_free(*s);
    qcal_free(*sdq);
    return qcal_error(QCAL_ENOMEM, "cannot allocate %zu scales", n);
  }
  for (size_t c = 0; c < l->channels; c++) {
    (*s)[c] = qcal_quant_scale(f, amax[c]);
    (*sdq)[c] = qcal_dequant_scale(f, amax[c]);
  }
  return QCAL_OK;
}

/* Walk the layout: runs of `inner` elements with one scale, or, when
 * inner == 1, rows of `channels` elements with one scale each. */
#define FOR_RUNS(l, CALL_ROW, CALL_RUN)                                                            \
  do {                                                                                             \
    if ((l)->inner == 1 && (l)->channels > 1) {                                                    \
      for (size_t o = 0; o < (l)->outer; o++) {                                                    \
        size_t off = o * (l)->channels, len = (l)->channels;                                       \
        CALL_ROW;                                                                                  \
      }                                                                                            \
    } else {                                                                                       \
      for (size_t o = 0; o < (l)->outer; o++)                                                      \
        for (size_t c = 0; c < (l)->channels; c++) {                                               \
          size_t off = (o * (l)->channels + c) * (l)->inner, len = (l)->inner;                     \
          CALL_RUN;                                                                                \
        }                                                                                          \
    }                                                                                              \
  } while (0)

qcal_status qcal_quantize(const qcal_layout *l, const float *x, const float *amax, qcal_qformat f,
                          void *y) {
  if (f.bits > 8)
    return qcal_error(QCAL_EINVAL, "quantize to bytes needs bits <= 8 (got %d); use fake-quant",
                      f.bits);
  float *s, *sdq;
  QCAL_TRY(make_scales(l, amax, f, &s, &sdq));
  const qcal_kernel_table *k = qcal_kernels();
  float qmin = qcal_qformat_qmin(f), qmax = qcal_qformat_qmax(f);
  uint8_t *q = y;
  FOR_RUNS(l, k->f32_q8_quantize(len, x + off, q + off, s, true, qmin, qmax),
           k->f32_q8_quantize(len, x + off, q + off, s + c, false, qmin, qmax));
  qcal_free(s);
  qcal_free(sdq);
  return QCAL_OK;
}

qcal_status qcal_dequantize(const qcal_layout *l, const void *qv, const float *amax, qcal_qformat f,
                            float *y) {
  if (f.bits > 8)
    return qcal_error(QCAL_EINVAL, "dequantize from bytes needs bits <= 8 (got %d)", f.bits);
  float *s, *sdq;
  QCAL_TRY(make_scales(l, amax, f, &s, &sdq));
  /* dequantize multiplies by the step amax / qmax (ONNX, TensorRT) */
  for (size_t c = 0; c < l->channels; c++)
    sdq[c] = s[c] == 0.0f ? 0.0f : amax[c] / qcal_qformat_qmax(f);
  const qcal_kernel_table *k = qcal_kernels();
  if (f.is_unsigned) {
    const uint8_t *q = qv;
    FOR_RUNS(l, k->u8_f32_dequantize(len, q + off, y + off, sdq, true),
             k->u8_f32_dequantize(len, q + off, y + off, sdq + c, false));
  } else {
    const int8_t *q = qv;
    FOR_RUNS(l, k->s8_f32_dequantize(len, q + off, y + off, sdq, true),
             k->s8_f32_dequantize(len, q + off, y + off, sdq + c, false));
  }
  qcal_free(s);
  qcal_free(sdq);
  return QCAL_OK;
}

qcal_status qcal_fake_quant(const qcal_layout *l, const float *x, const float *amax, qcal_qformat f,
                            float *y) {
  float *s, *sdq;
  QCAL_TRY(make_scales(l, amax, f, &s, &sdq));
  const qcal_kernel_table *k = qcal_kernels();
  float qmin = qcal_qformat_qmin(f), qmax = qcal_qformat_qmax(f);
  FOR_RUNS(l, k->f32_f32_fakequant(len, x + off, y + off, s, sdq, true, qmin, qmax),
           k->f32_f32_fakequant(len, x + off, y + off, s + c, sdq + c, false, qmin, qmax));
  qcal_free(s);
  qcal_free(sdq);
  return QCAL_OK;
}
