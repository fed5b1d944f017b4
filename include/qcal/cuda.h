/* CUDA kernels (compiled when nvcc is found). Every call checks each CUDA
 * status and returns QCAL_EDEVICE with file:line and the failing call, or
 * QCAL_EUNSUPPORTED when there is no device or no CUDA build. Arrays are
 * host pointers; the wrappers move data to and from the device. */
#ifndef QCAL_CUDA_H
#define QCAL_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qcal/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* QCAL_OK when a CUDA device can be used; otherwise the reason is in
 * qcal_last_error(). */
qcal_status qcal_cuda_available(void);

/* Same contracts as the CPU micro-kernels in qcal/kernels.h. */
qcal_status qcal_f32_q8_quantize__cuda(size_t n, const float *x, uint8_t *q, const float *scale,
                                       bool per_elem, float qmin, float qmax);
qcal_status qcal_s8_f32_dequantize__cuda(size_t n, const int8_t *q, float *y, const float *dq_scale,
                                         bool per_elem);
qcal_status qcal_f32_f32_fakequant__cuda(size_t n, const float *x, float *y, const float *scale,
                                         const float *dq_scale, bool per_elem, float qmin,
                                         float qmax);

typedef struct qcal_cuda_device {
  char name[256];
  int sm_count, clock_khz, cc_major, cc_minor;
  double mem_gib;
} qcal_cuda_device;
qcal_status qcal_cuda_device_query(qcal_cuda_device *d);

/* One cuBLASLt GEMM, "TN" (A transposed), timed with CUDA events over
 * rotating buffers after a warm-up. type: int8 (s8 x s8 -> s32, compute
 * 32I), fp16, bf16 (fp32 accumulate), tf32, fp32 (pedantic: no emulation,
 * no down-conversion), fp8 (E4M3 -> bf16, sm_89+). A cuBLAS
 * NOT_SUPPORTED comes back as QCAL_EUNSUPPORTED with the reason. */
typedef struct qcal_cuda_gemm_run {
  double samples[256]; /* seconds per repetition */
  int nsamples;
  double max_rel_err; /* sampled check against a host reference */
  int checked;        /* entries checked */
  char algo[64];
} qcal_cuda_gemm_run;
qcal_status qcal_cuda_gemm(const char *type, int64_t m, int64_t n, int64_t k, int reps,
                           qcal_cuda_gemm_run *out);

/* Device-resident bandwidth kernels (kernel: copy, triad, quantize,
 * dequantize, relu_f32, relu_s8, add_f32, add_s8) over n elements, timed
 * with CUDA events; ok says the result matched the host reference. */
typedef struct qcal_cuda_stream_run {
  double samples[1000];
  int nsamples;
  int ok;
} qcal_cuda_stream_run;
qcal_status qcal_cuda_stream(const char *kernel, size_t n, int reps, qcal_cuda_stream_run *out);

#ifdef __cplusplus
}
#endif
#endif
