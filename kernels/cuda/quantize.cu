// CUDA quantize / dequantize / fake-quant. Same operation order as the
// reference kernels: mul, NaN->0, max, min, rint (half to even), divide.
// __fmul_rn / __fdiv_rn keep nvcc from contracting or approximating.
#include <cuda_runtime.h>

#include "kernels/cuda/check.h"
#include "qcal/cuda.h"

static __device__ __forceinline__ float round_clamp(float v, float qmin, float qmax) {
  if (v != v)
    v = 0.0f;
  v = v > qmin ? v : qmin;
  v = v < qmax ? v : qmax;
  return rintf(v);
}

static __global__ void quantize_k(size_t n, const float *x, uint8_t *q, const float *s,
                                  bool per_elem, float qmin, float qmax) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    float v = round_clamp(__fmul_rn(x[i], s[per_elem ? i : 0]), qmin, qmax);
    q[i] = (uint8_t)(int32_t)v;
  }
}

static __global__ void dequantize_k(size_t n, const int8_t *q, float *y, const float *d,
                                    bool per_elem) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    y[i] = __fmul_rn((float)q[i], d[per_elem ? i : 0]);
}

static __global__ void fakequant_k(size_t n, const float *x, float *y, const float *s,
                                   const float *d, bool per_elem, float qmin, float qmax) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    size_t c = per_elem ? i : 0;
    y[i] = __fdiv_rn(round_clamp(__fmul_rn(x[i], s[c]), qmin, qmax), d[c]);
  }
}

static unsigned grid_for(size_t n) {
  size_t g = (n + 255) / 256;
  return (unsigned)(g < 65535 ? (g ? g : 1) : 65535);
}

extern "C" qcal_status qcal_cuda_available(void) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess)
    return qcal_error(QCAL_EUNSUPPORTED, "no usable CUDA device: %s", cudaGetErrorString(e));
  if (count == 0)
    return qcal_error(QCAL_EUNSUPPORTED, "no CUDA device present");
  return QCAL_OK;
}

// Copy n elements of size es to a new device buffer.
static cudaError_t upload(void **dst, const void *src, size_t bytes) {
  cudaError_t e = cudaMalloc(dst, bytes ? bytes : 1);
  if (e == cudaSuccess && bytes)
    e = cudaMemcpy(*dst, src, bytes, cudaMemcpyHostToDevice);
  return e;
}

extern "C" qcal_status qcal_f32_q8_quantize__cuda(size_t n, const float *x, uint8_t *q,
                                                  const float *scale, bool per_elem, float qmin,
                                                  float qmax) {
  qcal_status st = qcal_cuda_available();
  void *dx = nullptr, *dq = nullptr, *ds = nullptr;
  if (st != QCAL_OK)
    return st;
  QCAL_CUDA_CHECK(upload(&dx, x, n * sizeof(float)));
  QCAL_CUDA_CHECK(upload(&ds, scale, (per_elem ? n : 1) * sizeof(float)));
  QCAL_CUDA_CHECK(cudaMalloc(&dq, n ? n : 1));
  quantize_k<<<grid_for(n), 256>>>(n, (const float *)dx, (uint8_t *)dq, (const float *)ds, per_elem,
                                   qmin, qmax);
  QCAL_CUDA_CHECK(cudaGetLastError());
  QCAL_CUDA_CHECK(cudaDeviceSynchronize());
  if (n)
    QCAL_CUDA_CHECK(cudaMemcpy(q, dq, n, cudaMemcpyDeviceToHost));
done:
  cudaFree(dx);
  cudaFree(dq);
  cudaFree(ds);
  return st;
}

extern "C" qcal_status qcal_s8_f32_dequantize__cuda(size_t n, const int8_t *q, float *y,
                                                    const float *dq_scale, bool per_elem) {
  qcal_status st = qcal_cuda_available();
  void *dq = nullptr, *dy = nullptr, *dd = nullptr;
  if (st != QCAL_OK)
    return st;
  QCAL_CUDA_CHECK(upload(&dq, q, n));
  QCAL_CUDA_CHECK(upload(&dd, dq_scale, (per_elem ? n : 1) * sizeof(float)));
  QCAL_CUDA_CHECK(cudaMalloc(&dy, (n ? n : 1) * sizeof(float)));
  dequantize_k<<<grid_for(n), 256>>>(n, (const int8_t *)dq, (float *)dy, (const float *)dd,
                                     per_elem);
  QCAL_CUDA_CHECK(cudaGetLastError());
  QCAL_CUDA_CHECK(cudaDeviceSynchronize());
  if (n)
    QCAL_CUDA_CHECK(cudaMemcpy(y, dy, n * sizeof(float), cudaMemcpyDeviceToHost));
done:
  cudaFree(dq);
  cudaFree(dy);
  cudaFree(dd);
  return st;
}

extern "C" qcal_status qcal_f32_f32_fakequant__cuda(size_t n, const float *x, float *y,
                                                    const float *scale, const float *dq_scale,
                                                    bool per_elem, float qmin, float qmax) {
  qcal_status st = qcal_cuda_available();
  void *dx = nullptr, *dy = nullptr, *ds = nullptr, *dd = nullptr;
  if (st != QCAL_OK)
    return st;
  QCAL_CUDA_CHECK(upload(&dx, x, n * sizeof(float)));
  QCAL_CUDA_CHECK(upload(&ds, scale, (per_elem ? n : 1) * sizeof(float)));
  QCAL_CUDA_CHECK(upload(&dd, dq_scale, (per_elem ? n : 1) * sizeof(float)));
  QCAL_CUDA_CHECK(cudaMalloc(&dy, (n ? n : 1) * sizeof(float)));
  fakequant_k<<<grid_for(n), 256>>>(n, (const float *)dx, (float *)dy, (const float *)ds,
                                    (const float *)dd, per_elem, qmin, qmax);
  QCAL_CUDA_CHECK(cudaGetLastError());
  QCAL_CUDA_CHECK(cudaDeviceSynchronize());
  if (n)
    QCAL_CUDA_CHECK(cudaMemcpy(y, dy, n * sizeof(float), cudaMemcpyDeviceToHost));
done:
  cudaFree(dx);
  cudaFree(dy);
  cudaFree(ds);
  cudaFree(dd);
  return st;
}
