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

#ifdef __cplusplus
}
#endif
#endif
