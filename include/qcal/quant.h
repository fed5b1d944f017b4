/* Symmetric (pytorch-quantization / TensorRT) and affine (ONNX) quantizers. */
#ifndef QCAL_QUANT_H
#define QCAL_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qcal/status.h"
#include "qcal/tensor.h"

/* Integer grid of a symmetric quantizer.
 * signed narrow: [-(2^(b-1)-1), 2^(b-1)-1]; signed full: [-2^(b-1), 2^(b-1)-1]
 * unsigned: [0, 2^b-1]. */
typedef struct qcal_qformat {
  int bits;         /* 2..16 */
  bool is_unsigned; /* grid [0, 2^b - 1] */
  bool full_range;  /* signed only: include -2^(b-1) */
} qcal_qformat;

#define QCAL_QFORMAT_INT8 ((qcal_qformat){8, false, false})
#define QCAL_AMAX_EPSILON (1.0f / (float)(1 << 24))

qcal_status qcal_qformat_check(qcal_qformat f);
/* Largest positive grid value: 2^(b-1)-1, or 2^b-1 unsigned. */
float qcal_qformat_qmax(qcal_qformat f);
float qcal_qformat_qmin(qcal_qformat f);

/* Quantize scale s = qmax / amax in float32; 0 when amax <= 2^-24 so that
 * everything quantizes to 0 without dividing by zero. */
float qcal_quant_scale(qcal_qformat f, float amax);
/* Scale used to dequantize: s, or 1 where s is 0. */
float qcal_dequant_scale(qcal_qformat f, float amax);

/* Scalar fake-quant of one value: rint(clamp(x*s)) / s_dq, NaN -> 0. The
 * definition every kernel and the mse calibrator share. */
float qcal_fake_quant_one(float x, float s, float s_dq, float qmin, float qmax);

/* Tensor-level operations on a layout. amax has layout->channels entries.
 * y of quantize holds bytes: int8 for signed formats, uint8 for unsigned.
 * bits must be <= 8 for quantize/dequantize. */
qcal_status qcal_quantize(const qcal_layout *l, const float *x, const float *amax, qcal_qformat f,
                          void *y);
qcal_status qcal_dequantize(const qcal_layout *l, const void *q, const float *amax, qcal_qformat f,
                            float *y);
qcal_status qcal_fake_quant(const qcal_layout *l, const float *x, const float *amax, qcal_qformat f,
                            float *y);

/* ONNX QuantizeLinear / DequantizeLinear (opset 13):
 *   y = saturate(round_half_even(x / scale) + zero_point)
 *   x = (y - zero_point) * scale
 * with one scale/zero point per channel of the layout. */
typedef enum qcal_int8_type { QCAL_S8, QCAL_U8 } qcal_int8_type;
qcal_status qcal_affine_quantize(const qcal_layout *l, const float *x, const float *scale,
                                 const void *zero_point, qcal_int8_type t, void *y);
qcal_status qcal_affine_dequantize(const qcal_layout *l, const void *q, const float *scale,
                                   const void *zero_point, qcal_int8_type t, float *y);

/* Reference 8-bit GEMM: C[m][n] = sum_k (A[m][k] - za) * (B[k][n] - zb),
 * row-major with leading dimensions, exact int32 accumulation. Matches ONNX
 * MatMulInteger. */
void qcal_gemm_q8_s32__ref(size_t m, size_t n, size_t k, const void *a, qcal_int8_type ta,
                           size_t lda, int32_t za, const void *b, qcal_int8_type tb, size_t ldb,
                           int32_t zb, int32_t *c, size_t ldc);

#endif
