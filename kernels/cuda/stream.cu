// Device-resident bandwidth kernels for qcal stream, each checked against a
// host reference on the first elements after timing.
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cuda/check.h"
#include "qcal/cuda.h"

__global__ void k_copy(size_t n, const float *a, float *b) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    b[i] = a[i];
}
__global__ void k_triad(size_t n, const float *b, const float *c, float s, float *a) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    a[i] = __fadd_rn(b[i], __fmul_rn(s, c[i]));
}
__global__ void k_quant(size_t n, const float *x, int8_t *q, float s) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    float v = __fmul_rn(x[i], s);
    v = v != v ? 0.0f : v;
    v = v > -127.0f ? v : -127.0f;
    v = v < 127.0f ? v : 127.0f;
    q[i] = (int8_t)rintf(v);
  }
}
__global__ void k_dequant(size_t n, const int8_t *q, float *y, float s) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    y[i] = __fmul_rn((float)q[i], s);
}
__global__ void k_relu_f(size_t n, const float *x, float *y) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
__global__ void k_relu_q(size_t n, const int8_t *x, int8_t *y) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    y[i] = x[i] > 0 ? x[i] : 0;
}
__global__ void k_add_f(size_t n, const float *a, const float *b, float *y) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    y[i] = __fadd_rn(a[i], b[i]);
}
__global__ void k_add_q(size_t n, const int8_t *a, const int8_t *b, int8_t *y) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    int v = a[i] + b[i];
    y[i] = (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
  }
}

static int launch(const char *k, size_t n, float *fa, float *fb, float *fc, int8_t *qa, int8_t *qb,
                  int8_t *qc, int grid) {
  if (!strcmp(k, "copy"))
    k_copy<<<grid, 256>>>(n, fa, fb);
  else if (!strcmp(k, "triad"))
    k_triad<<<grid, 256>>>(n, fb, fc, 0.5f, fa);
  else if (!strcmp(k, "quantize"))
    k_quant<<<grid, 256>>>(n, fa, qb, 31.75f);
  else if (!strcmp(k, "dequantize"))
    k_dequant<<<grid, 256>>>(n, qa, fb, 1.0f / 31.75f);
  else if (!strcmp(k, "relu_f32"))
    k_relu_f<<<grid, 256>>>(n, fa, fb);
  else if (!strcmp(k, "relu_s8"))
    k_relu_q<<<grid, 256>>>(n, qa, qb);
  else if (!strcmp(k, "add_f32"))
    k_add_f<<<grid, 256>>>(n, fa, fc, fb);
  else if (!strcmp(k, "add_s8"))
    k_add_q<<<grid, 256>>>(n, qa, qc, qb);
  else
    return -1;
  return 0;
}

extern "C" qcal_status qcal_cuda_stream(const char *kernel, size_t n, int reps,
                                        qcal_cuda_stream_run *out) {
  qcal_status st = qcal_cuda_available();
  if (st != QCAL_OK)
    return st;
  memset(out, 0, sizeof *out);
  if (reps < 1 || reps > 1000)
    return qcal_error(QCAL_EINVAL, "repetitions %d out of range", reps);
  float *fa = NULL, *fb = NULL, *fc = NULL;
  int8_t *qa = NULL, *qb = NULL, *qc = NULL;
  cudaEvent_t e0 = NULL, e1 = NULL;
  enum { CHECK = 4096 };
  float hf[CHECK], hr[CHECK];
  int8_t hq[CHECK], hqr[CHECK];
  int sms = 0;
  QCAL_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  QCAL_CUDA_CHECK(cudaMalloc(&fa, n * 4));
  QCAL_CUDA_CHECK(cudaMalloc(&fb, n * 4));
  QCAL_CUDA_CHECK(cudaMalloc(&fc, n * 4));
  QCAL_CUDA_CHECK(cudaMalloc(&qa, n));
  QCAL_CUDA_CHECK(cudaMalloc(&qb, n));
  QCAL_CUDA_CHECK(cudaMalloc(&qc, n));
  for (int i = 0; i < CHECK; i++) {
    hf[i] = (float)((i % 17) - 8) * 0.25f;
    hq[i] = (int8_t)((i % 251) - 125);
  }
  QCAL_CUDA_CHECK(cudaMemset(fa, 0, n * 4));
  QCAL_CUDA_CHECK(cudaMemset(fb, 0, n * 4));
  QCAL_CUDA_CHECK(cudaMemset(fc, 0, n * 4));
  QCAL_CUDA_CHECK(cudaMemset(qa, 0, n));
  QCAL_CUDA_CHECK(cudaMemset(qc, 0, n));
  QCAL_CUDA_CHECK(cudaMemcpy(fa, hf, sizeof hf, cudaMemcpyHostToDevice));
  QCAL_CUDA_CHECK(cudaMemcpy(qa, hq, sizeof hq, cudaMemcpyHostToDevice));
  QCAL_CUDA_CHECK(cudaEventCreate(&e0));
  QCAL_CUDA_CHECK(cudaEventCreate(&e1));
  {
    int grid = sms * 8;
    if (launch(kernel, n, fa, fb, fc, qa, qb, qc, grid) != 0) {
      st = qcal_error(QCAL_EINVAL, "unknown GPU stream kernel '%s'", kernel);
      goto done;
    }
    QCAL_CUDA_CHECK(cudaGetLastError());
    for (int r = 0; r < reps; r++) {
      QCAL_CUDA_CHECK(cudaEventRecord(e0, 0));
      launch(kernel, n, fa, fb, fc, qa, qb, qc, grid);
      QCAL_CUDA_CHECK(cudaGetLastError());
      QCAL_CUDA_CHECK(cudaEventRecord(e1, 0));
      QCAL_CUDA_CHECK(cudaEventSynchronize(e1));
      float ms = 0;
      QCAL_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
      out->samples[out->nsamples++] = ms * 1e-3;
    }
    /* host reference on the first CHECK elements (fc, qc are zero there) */
    out->ok = 1;
    if (!strcmp(kernel, "quantize") || !strcmp(kernel, "relu_s8") || !strcmp(kernel, "add_s8")) {
      QCAL_CUDA_CHECK(cudaMemcpy(hqr, qb, sizeof hqr, cudaMemcpyDeviceToHost));
      for (int i = 0; i < CHECK; i++) {
        float v = hf[i] * 31.75f;
        v = v > -127.0f ? (v < 127.0f ? v : 127.0f) : -127.0f;
        int8_t want = !strcmp(kernel, "quantize")  ? (int8_t)rintf(v)
                      : !strcmp(kernel, "relu_s8") ? (hq[i] > 0 ? hq[i] : 0)
                                                   : hq[i];
        out->ok &= hqr[i] == want;
      }
    } else {
      float *dst = !strcmp(kernel, "triad") ? fa : fb;
      QCAL_CUDA_CHECK(cudaMemcpy(hr, dst, sizeof hr, cudaMemcpyDeviceToHost));
      for (int i = 0; i < CHECK; i++) {
        float want = !strcmp(kernel, "copy") || !strcmp(kernel, "add_f32") ? hf[i]
                     : !strcmp(kernel, "relu_f32")   ? (hf[i] > 0 ? hf[i] : 0.0f)
                     : !strcmp(kernel, "dequantize") ? (float)hq[i] * (1.0f / 31.75f)
                                                     : 0.0f; /* triad: b + 0.5 * c with b = c = 0 */
        out->ok &= hr[i] == want;
      }
    }
  }
done:
  if (e0)
    cudaEventDestroy(e0);
  if (e1)
    cudaEventDestroy(e1);
  cudaFree(fa), cudaFree(fb), cudaFree(fc), cudaFree(qa), cudaFree(qb), cudaFree(qc);
  return st;
}
