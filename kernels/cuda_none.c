/* Build without CUDA: every GPU entry point reports why it cannot run. */
#include "qcal/cuda.h"

static qcal_status none(void) {
  return qcal_error(QCAL_EUNSUPPORTED,
                    "qcal was built without CUDA (nvcc not found or -Dcuda=disabled)");
}

qcal_status qcal_cuda_available(void) {
  return none();
}

qcal_status qcal_f32_q8_quantize__cuda(size_t n, const float *x, uint8_t *q, const float *scale,
                                       bool per_elem, float qmin, float qmax) {
  (void)n, (void)x, (void)q, (void)scale, (void)per_elem, (void)qmin, (void)qmax;
  return none();
}

qcal_status qcal_s8_f32_dequantize__cuda(size_t n, const int8_t *q, float *y, const float *dq_scale,
                                         bool per_elem) {
  (void)n, (void)q, (void)y, (void)dq_scale, (void)per_elem;
  return none();
}

qcal_status qcal_f32_f32_fakequant__cuda(size_t n, const float *x, float *y, const float *scale,
                                         const float *dq_scale, bool per_elem, float qmin,
                                         float qmax) {
  (void)n, (void)x, (void)y, (void)scale, (void)dq_scale, (void)per_elem, (void)qmin, (void)qmax;
  return none();
}

qcal_status qcal_cuda_device_query(qcal_cuda_device *d) {
  (void)d;
  return none();
}

qcal_status qcal_cuda_gemm(const char *type, int64_t m, int64_t n, int64_t k, int reps,
                           qcal_cuda_gemm_run *out) {
  (void)type, (void)m, (void)n, (void)k, (void)reps, (void)out;
  return none();
}

qcal_status qcal_cuda_stream(const char *kernel, size_t n, int reps, qcal_cuda_stream_run *out) {
  (void)kernel, (void)n, (void)reps, (void)out;
  return none();
}
