// cuBLASLt GEMM harness: thin and standard. Every CUDA and cuBLAS status is
// checked; NOT_SUPPORTED is reported, not fatal. Timing follows the CUTLASS
// profiler / nvbench: warm-up, CUDA events per repetition, and rotating
// buffer sets larger than L2 so that no repetition runs from a warm cache.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/check.h"
#include "qcal/cuda.h"

#define QCAL_CUBLAS_CHECK(call)                                                                    \
  do {                                                                                             \
    cublasStatus_t s_ = (call);                                                                    \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                             \
      st = qcal_error(s_ == CUBLAS_STATUS_NOT_SUPPORTED ? QCAL_EUNSUPPORTED : QCAL_EDEVICE,        \
                      "%s:%d: %s: %s", __FILE__, __LINE__, #call, cublasGetStatusString(s_));      \
      goto done;                                                                                   \
    }                                                                                              \
  } while (0)

extern "C" qcal_status qcal_cuda_device_query(qcal_cuda_device *d) {
  qcal_status st = qcal_cuda_available();
  if (st != QCAL_OK)
    return st;
  cudaDeviceProp p;
  int clk = 0;
  QCAL_CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
  QCAL_CUDA_CHECK(cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, 0));
  snprintf(d->name, sizeof d->name, "%s", p.name);
  d->sm_count = p.multiProcessorCount;
  d->clock_khz = clk;
  d->cc_major = p.major;
  d->cc_minor = p.minor;
  d->mem_gib = (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0);
done:
  return st;
}

typedef struct {
  cudaDataType_t ab, c;
  cublasComputeType_t compute;
  cudaDataType_t scale;
  size_t ab_size, c_size;
} lt_types;

static int types_of(const char *t, lt_types *o) {
  if (!strcmp(t, "int8"))
    *o = {CUDA_R_8I, CUDA_R_32I, CUBLAS_COMPUTE_32I, CUDA_R_32I, 1, 4};
  else if (!strcmp(t, "fp16"))
    *o = {CUDA_R_16F, CUDA_R_16F, CUBLAS_COMPUTE_32F, CUDA_R_32F, 2, 2};
  else if (!strcmp(t, "bf16"))
    *o = {CUDA_R_16BF, CUDA_R_16BF, CUBLAS_COMPUTE_32F, CUDA_R_32F, 2, 2};
  else if (!strcmp(t, "tf32"))
    *o = {CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_32F, 4, 4};
  else if (!strcmp(t, "fp32")) /* pedantic: true FP32, no emulation or down-conversion */
    *o = {CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F_PEDANTIC, CUDA_R_32F, 4, 4};
  else if (!strcmp(t, "fp8"))
    *o = {CUDA_R_8F_E4M3, CUDA_R_16BF, CUBLAS_COMPUTE_32F, CUDA_R_32F, 1, 2};
  else
    return -1;
  return 0;
}

// Small integers in every type: exact products, so the host check is tight.
static void fill_host(void *h, size_t n, cudaDataType_t t, unsigned seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    int v = (int)((seed >> 24) % 7) - 3;
    switch (t) {
    case CUDA_R_8I:
      ((int8_t *)h)[i] = (int8_t)v;
      break;
    case CUDA_R_16F:
      ((__half *)h)[i] = __float2half((float)v);
      break;
    case CUDA_R_16BF:
      ((__nv_bfloat16 *)h)[i] = __float2bfloat16((float)v);
      break;
    case CUDA_R_8F_E4M3:
      ((__nv_fp8_e4m3 *)h)[i] = __nv_fp8_e4m3((float)v);
      break;
    default:
      ((float *)h)[i] = (float)v;
      break;
    }
  }
}

static double host_val(const void *h, size_t i, cudaDataType_t t) {
  switch (t) {
  case CUDA_R_8I:
    return ((const int8_t *)h)[i];
  case CUDA_R_32I:
    return ((const int32_t *)h)[i];
  case CUDA_R_16F:
    return __half2float(((const __half *)h)[i]);
  case CUDA_R_16BF:
    return __bfloat162float(((const __nv_bfloat16 *)h)[i]);
  case CUDA_R_8F_E4M3:
    return (float)((const __nv_fp8_e4m3 *)h)[i];
  default:
    return ((const float *)h)[i];
  }
}

extern "C" qcal_status qcal_cuda_gemm(const char *type, int64_t m, int64_t n, int64_t k, int reps,
                                      qcal_cuda_gemm_run *out) {
  qcal_status st = qcal_cuda_available();
  if (st != QCAL_OK)
    return st;
  memset(out, 0, sizeof *out);
  lt_types ty;
  if (types_of(type, &ty) != 0)
    return qcal_error(QCAL_EINVAL, "unknown GPU GEMM type '%s'", type);
  if (reps < 1 || reps > 256)
    return qcal_error(QCAL_EINVAL, "repetitions %d out of range (1..256)", reps);
  cublasLtHandle_t lt = NULL;
  cublasLtMatmulDesc_t desc = NULL;
  cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
  cublasLtMatmulPreference_t pref = NULL;
  cudaEvent_t e0 = NULL, e1 = NULL;
  void *ws = NULL, *ha = NULL, *hb = NULL, *hc = NULL;
  void *da[8] = {0}, *db[8] = {0}, *dc[8] = {0};
  int nsets = 1;
  cudaDeviceProp prop;
  QCAL_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  if (!strcmp(type, "fp8") && prop.major * 10 + prop.minor < 89) {
    st = qcal_error(QCAL_EUNSUPPORTED, "fp8 needs sm_89 or newer (device is sm_%d%d)", prop.major,
                    prop.minor);
    goto done;
  }
  {
    const size_t sa = (size_t)m * (size_t)k * ty.ab_size, sb = (size_t)k * (size_t)n * ty.ab_size,
                 sc = (size_t)m * (size_t)n * ty.c_size;
    /* rotate through enough buffer sets to exceed 2x L2 */
    size_t per = sa + sb + sc, l2 = (size_t)prop.l2CacheSize;
    nsets = (int)((2 * l2) / (per ? per : 1)) + 1;
    nsets = nsets > 8 ? 8 : nsets;
    size_t freeb = 0, totalb = 0;
    QCAL_CUDA_CHECK(cudaMemGetInfo(&freeb, &totalb));
    while (nsets > 1 && per * (size_t)nsets > freeb / 2)
      nsets--;
    if (per + (32u << 20) > freeb) {
      st = qcal_error(QCAL_ENOMEM, "%lldx%lldx%lld %s needs %.1f GiB, the GPU has %.1f GiB free",
                      (long long)m, (long long)n, (long long)k, type, per / 1073741824.0,
                      freeb / 1073741824.0);
      goto done;
    }
    ha = malloc(sa);
    hb = malloc(sb);
    hc = malloc(sc);
    if (!ha || !hb || !hc) {
      st = qcal_error(QCAL_ENOMEM, "host buffers for the GPU check");
      goto done;
    }
    fill_host(ha, sa / ty.ab_size, ty.ab, 1);
    fill_host(hb, sb / ty.ab_size, ty.ab, 2);
    for (int s = 0; s < nsets; s++) {
      QCAL_CUDA_CHECK(cudaMalloc(&da[s], sa));
      QCAL_CUDA_CHECK(cudaMalloc(&db[s], sb));
      QCAL_CUDA_CHECK(cudaMalloc(&dc[s], sc));
      QCAL_CUDA_CHECK(cudaMemcpy(da[s], ha, sa, cudaMemcpyHostToDevice));
      QCAL_CUDA_CHECK(cudaMemcpy(db[s], hb, sb, cudaMemcpyHostToDevice));
    }
    size_t wsize = prop.major >= 9 ? (32u << 20) : (4u << 20);
    QCAL_CUDA_CHECK(cudaMalloc(&ws, wsize));
    QCAL_CUBLAS_CHECK(cublasLtCreate(&lt));
    QCAL_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, ty.compute, ty.scale));
    cublasOperation_t opT = CUBLAS_OP_T, opN = CUBLAS_OP_N;
    QCAL_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opT, sizeof opT));
    QCAL_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opN, sizeof opN));
    /* column-major: A stored k x m (used transposed), B k x n, C m x n */
    QCAL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, ty.ab, (uint64_t)k, (uint64_t)m, k));
    QCAL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, ty.ab, (uint64_t)k, (uint64_t)n, k));
    QCAL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc, ty.c, (uint64_t)m, (uint64_t)n, m));
    QCAL_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    QCAL_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsize, sizeof wsize));
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    QCAL_CUBLAS_CHECK(
        cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, pref, 1, &heur, &found));
    if (found == 0) {
      st = qcal_error(QCAL_EUNSUPPORTED, "no cuBLASLt algorithm for %s %lldx%lldx%lld", type,
                      (long long)m, (long long)n, (long long)k);
      goto done;
    }
    snprintf(out->algo, sizeof out->algo, "heuristic #0, workspace %zu MiB", wsize >> 20);
    int32_t ione = 1, izero = 0;
    float fone = 1.0f, fzero = 0.0f;
    const void *alpha = ty.scale == CUDA_R_32I ? (const void *)&ione : (const void *)&fone;
    const void *beta = ty.scale == CUDA_R_32I ? (const void *)&izero : (const void *)&fzero;
    QCAL_CUDA_CHECK(cudaEventCreate(&e0));
    QCAL_CUDA_CHECK(cudaEventCreate(&e1));
    for (int w = 0; w < 3; w++) /* warm-up */
      QCAL_CUBLAS_CHECK(cublasLtMatmul(lt, desc, alpha, da[0], la, db[0], lb, beta, dc[0], lc,
                                       dc[0], lc, &heur.algo, ws, wsize, 0));
    QCAL_CUDA_CHECK(cudaDeviceSynchronize());
    for (int r = 0; r < reps; r++) {
      int s = r % nsets;
      QCAL_CUDA_CHECK(cudaEventRecord(e0, 0));
      QCAL_CUBLAS_CHECK(cublasLtMatmul(lt, desc, alpha, da[s], la, db[s], lb, beta, dc[s], lc,
                                       dc[s], lc, &heur.algo, ws, wsize, 0));
      QCAL_CUDA_CHECK(cudaEventRecord(e1, 0));
      QCAL_CUDA_CHECK(cudaEventSynchronize(e1));
      float ms = 0;
      QCAL_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
      out->samples[out->nsamples++] = ms * 1e-3;
    }
    /* check sampled entries against the host (exact products, fp32 sums) */
    QCAL_CUDA_CHECK(cudaMemcpy(hc, dc[0], sc, cudaMemcpyDeviceToHost));
    unsigned seed = 99;
    for (int t = 0; t < 64; t++) {
      seed = seed * 1664525u + 1013904223u;
      int64_t i = (int64_t)(seed % (unsigned)m);
      seed = seed * 1664525u + 1013904223u;
      int64_t j = (int64_t)(seed % (unsigned)n);
      double want = 0, mag = 0;
      for (int64_t p = 0; p < k; p++) {
        double a = host_val(ha, (size_t)(i * k + p), ty.ab),
               b = host_val(hb, (size_t)(j * k + p), ty.ab);
        want += a * b;
        mag += fabs(a * b);
      }
      double got = host_val(hc, (size_t)(j * m + i), ty.c);
      double rel = fabs(got - want) / (mag > 0 ? mag : 1);
      out->max_rel_err = rel > out->max_rel_err ? rel : out->max_rel_err;
      out->checked++;
    }
  }
done:
  if (e0)
    cudaEventDestroy(e0);
  if (e1)
    cudaEventDestroy(e1);
  if (pref)
    cublasLtMatmulPreferenceDestroy(pref);
  if (la)
    cublasLtMatrixLayoutDestroy(la);
  if (lb)
    cublasLtMatrixLayoutDestroy(lb);
  if (lc)
    cublasLtMatrixLayoutDestroy(lc);
  if (desc)
    cublasLtMatmulDescDestroy(desc);
  if (lt)
    cublasLtDestroy(lt);
  for (int s = 0; s < 8; s++) {
    cudaFree(da[s]);
    cudaFree(db[s]);
    cudaFree(dc[s]);
  }
  cudaFree(ws);
  free(ha);
  free(hb);
  free(hc);
  return st;
}
