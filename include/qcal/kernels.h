/* Micro-kernel signatures, the kernel list and capability dispatch.
 * Callers use qcal_kernels(); tests and benchmarks walk the list in
 * kernels/kernels.inc to reach every variant. */
#ifndef QCAL_KERNELS_H
#define QCAL_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* q[i] = clamp(rint(x[i] * s), qmin, qmax) as bytes (int8 or uint8 bit
 * pattern); NaN -> 0. s = scale[0], or scale[i] when per_elem. */
typedef void qcal_f32_q8_quantize_fn(size_t n, const float *x, uint8_t *q, const float *scale,
                                     bool per_elem, float qmin, float qmax);
/* y[i] = q[i] * step, step = amax / qmax (the ONNX / TensorRT scale) */
typedef void qcal_s8_f32_dequantize_fn(size_t n, const int8_t *q, float *y, const float *dq_scale,
                                       bool per_elem);
typedef void qcal_u8_f32_dequantize_fn(size_t n, const uint8_t *q, float *y, const float *dq_scale,
                                       bool per_elem);
/* y[i] = clamp(rint(x[i] * s), qmin, qmax) / s_dq; NaN -> 0 */
typedef void qcal_f32_f32_fakequant_fn(size_t n, const float *x, float *y, const float *scale,
                                       const float *dq_scale, bool per_elem, float qmin,
                                       float qmax);
/* max |x[i]| (0 for n == 0); inputs are finite */
typedef float qcal_f32_absmax_fn(size_t n, const float *x);
/* torch.histc binning of |x| over [0, range] with nbins bins:
 *   b = (int)((|x| * nbins) / range), clamped to nbins-1; |x| > range skipped;
 *   skip_zeros drops |x| == 0. range > 0. Counts are added to bins[0..nbins). */
typedef void qcal_f32_histogram_fn(size_t n, const float *x, uint32_t nbins, float range,
                                   bool skip_zeros, uint64_t *bins);
/* sum_k cnt[k] * (fq(c[k]) - c[k])^2 with fq as in fakequant (s_dq = s). */
typedef double qcal_f32_hist_sse_fn(size_t n, const float *c, const double *cnt, float s,
                                    float qmin, float qmax);

/* sum_g X[g] - S[g] * log(S[g] / m[g]): the KL numerator of the entropy
 * calibrator over merged groups. Callers pass S = m = 1, X = 0 for groups
 * that contribute nothing, so every term is finite. */
typedef double qcal_f64_kl_groups_fn(size_t n, const double *S, const double *m, const double *X);

/* Bandwidth-bound kernels of `qcal stream` (n elements each). */
typedef void qcal_f32_copy_fn(size_t n, const float *a, float *b);
/* a = b + s * c (mul then add, no FMA, so that every variant agrees) */
typedef void qcal_f32_triad_fn(size_t n, const float *b, const float *c, float s, float *a);
/* y = clamp(rint((float)x * scale), qmin, qmax): int32 accumulators to int8 */
typedef void qcal_s32_s8_requantize_fn(size_t n, const int32_t *x, int8_t *y, float scale,
                                       float qmin, float qmax);
typedef void qcal_f32_relu_fn(size_t n, const float *x, float *y);
typedef void qcal_s8_relu_fn(size_t n, const int8_t *x, int8_t *y);
typedef void qcal_f32_add_fn(size_t n, const float *a, const float *b, float *y);
/* saturating int8 add of two tensors on the same scale */
typedef void qcal_s8_add_fn(size_t n, const int8_t *a, const int8_t *b, int8_t *y);

/* The int8 engine's element-wise steps, with ONNX's arithmetic (x / scale,
 * round half to even, saturate), bit for bit what the nodes they stand for
 * compute:
 * QuantizeLinear per tensor: y = saturate(rint(x / s) + zp), NaN -> zp,
 * into s8 (s8) or u8 bytes. */
typedef void qcal_f32_q8_quantize_div_fn(size_t n, const float *x, float s, float zp, bool s8,
                                         void *y);
/* The same into channels last: C planes of n values (plane c at x + c *
 * stride) into y[i * C + c] (a network's input, quantized straight into
 * the layout its first convolution reads). */
typedef void qcal_f32_q8_quantize_div_planes_fn(size_t n, int C, const float *x, size_t stride,
                                                float s, float zp, bool s8, void *y);
/* Add(DQ(a), DQ(b)) [-> Relu] -> Q over s8 codes:
 * y = saturate(rint(act(a * sa + b * sb) / sy) + zy), the products rounded
 * before the sum (no fused multiply-add). */
typedef void qcal_s8_s8_add_requant_fn(size_t n, const int8_t *a, const int8_t *b, float sa,
                                       float sb, float sy, float zy, bool relu, int8_t *y);
/* Codes from one scale to another as DQ then Q would (MaxPool between):
 * y = saturate(rint((q * sa) / sy)), q u8 (u8) or s8. */
typedef void qcal_q8_s8_rescale_fn(size_t n, const uint8_t *q, bool u8, float sa, float sy,
                                   int8_t *y);

enum {
  QCAL_ISA_REF = 0,
  QCAL_ISA_AVX2 = 1u << 0,    /* AVX2 + FMA */
  QCAL_ISA_AVX512 = 1u << 1,  /* F, BW, DQ, VL */
  QCAL_ISA_VNNI = 1u << 2,    /* AVX-512 VNNI */
  QCAL_ISA_BF16 = 1u << 3,    /* AVX-512 BF16 */
  QCAL_ISA_AVXVNNI = 1u << 4, /* VEX-encoded VNNI */
};

/* Declare every variant: qcal_<family>__<isa>. */
#define QCAL_KERNEL(family, isa, features) qcal_##family##_fn qcal_##family##__##isa;
#include "kernels/kernels.inc"
#undef QCAL_KERNEL

typedef struct qcal_kernel_table {
  const char *isa; /* name of the widest ISA selected */
  qcal_f32_q8_quantize_fn *f32_q8_quantize;
  qcal_s8_f32_dequantize_fn *s8_f32_dequantize;
  qcal_u8_f32_dequantize_fn *u8_f32_dequantize;
  qcal_f32_f32_fakequant_fn *f32_f32_fakequant;
  qcal_f32_absmax_fn *f32_absmax;
  qcal_f32_histogram_fn *f32_histogram;
  qcal_f32_hist_sse_fn *f32_hist_sse;
  qcal_f64_kl_groups_fn *f64_kl_groups;
  qcal_f32_copy_fn *f32_copy;
  qcal_f32_triad_fn *f32_triad;
  qcal_s32_s8_requantize_fn *s32_s8_requantize;
  qcal_f32_relu_fn *f32_relu;
  qcal_s8_relu_fn *s8_relu;
  qcal_f32_add_fn *f32_add;
  qcal_s8_add_fn *s8_add;
  qcal_f32_q8_quantize_div_fn *f32_q8_quantize_div;
  qcal_f32_q8_quantize_div_planes_fn *f32_q8_quantize_div_planes;
  qcal_s8_s8_add_requant_fn *s8_s8_add_requant;
  qcal_q8_s8_rescale_fn *q8_s8_rescale;
} qcal_kernel_table;

/* CPU features of this machine (QCAL_ISA_* bits), detected once. */
unsigned qcal_cpu_features(void);
/* Features allowed after the QCAL_ARCH override (ref|avx2|avx512). */
unsigned qcal_isa_enabled(void);
/* The dispatched table, built once: the best variant per family whose
 * features the CPU has, starting from the reference kernels. */
const qcal_kernel_table *qcal_kernels(void);

/* One row per kernel variant, for tests and benchmarks. */
typedef struct qcal_kernel_entry {
  const char *family;
  const char *isa;
  unsigned features;
  void (*fn)(void); /* cast to qcal_<family>_fn */
} qcal_kernel_entry;
extern const qcal_kernel_entry qcal_kernel_list[];
extern const size_t qcal_kernel_count;

#endif
