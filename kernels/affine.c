/* ONNX QuantizeLinear / DequantizeLinear (opset 13) reference semantics. */
#include <math.h>

#include "qcal/kernels.h"
#include "qcal/quant.h"

static int32_t zp_at(const void *zp, qcal_int8_type t, size_t c) {
  if (!zp)
    return 0;
  return t == QCAL_S8 ? ((const int8_t *)zp)[c] : ((const uint8_t *)zp)[c];
}

static qcal_status check_scales(const qcal_layout *l, const float *scale) {
  for (size_t c = 0; c < l->channels; c++)
    if (!(scale[c] > 0.0f) || isinf(scale[c]))
      return qcal_error(QCAL_EINVAL, "scale[%zu] = %g must be finite and > 0", c, (double)scale[c]);
  return QCAL_OK;
}

qcal_status qcal_affine_quantize(const qcal_layout *l, const float *x, const float *scale,
                                 const void *zero_point, qcal_int8_type t, void *y) {
  QCAL_TRY(check_scales(l, scale));
  /* each channel's run: ONNX's x / scale, round half to even, NaN to the
   * zero point, saturate (the f32_q8_quantize_div kernels) */
  qcal_f32_q8_quantize_div_fn *q = qcal_kernels()->f32_q8_quantize_div;
  for (size_t o = 0; o < l->outer; o++)
    for (size_t c = 0; c < l->channels; c++) {
      size_t base = (o * l->channels + c) * l->inner;
      q(l->inner, x + base, scale[c], (float)zp_at(zero_point, t, c), t == QCAL_S8,
        (uint8_t *)y + base);
    }
  return QCAL_OK;
}

qcal_status qcal_affine_dequantize(const qcal_layout *l, const void *q, const float *scale,
                                   const void *zero_point, qcal_int8_type t, float *y) {
  QCAL_TRY(check_scales(l, scale));
  for (size_t o = 0; o < l->outer; o++)
    for (size_t c = 0; c < l->channels; c++) {
      int32_t zp = zp_at(zero_point, t, c);
      size_t base = (o * l->channels + c) * l->inner;
      for (size_t i = 0; i < l->inner; i++) {
        int32_t v = t == QCAL_S8 ? ((const int8_t *)q)[base + i] : ((const uint8_t *)q)[base + i];
        y[base + i] = (float)(v - zp) * scale[c];
      }
    }
  return QCAL_OK;
}
