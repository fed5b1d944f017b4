/* GEMM engines for qcal gemm: oneDNN matmul on the CPU (f32, bf16, u8s8s32,
 * s8s8s32) and cuBLASLt on the GPU (kernels/cuda/gemm_lt.cu). */
#ifndef QCAL_BENCH_GEMM_H
#define QCAL_BENCH_GEMM_H

#include <stdint.h>

#include "qcal/status.h"

typedef enum { GEMM_F32, GEMM_BF16, GEMM_U8S8S32, GEMM_S8S8S32 } gemm_type;
extern const char *const qcal_gemm_type_names[];

typedef struct gemm_shape {
  int64_t m, n, k, batch;
  char label[96]; /* "2048^3", "Conv2d_3_pointwise", ... */
} gemm_shape;

/* One prepared problem: buffers filled with seeded data, weights packed. */
typedef struct cpu_gemm cpu_gemm;
qcal_status qcal_cpu_gemm_create(cpu_gemm **g, gemm_type t, const gemm_shape *s, int threads);
qcal_status qcal_cpu_gemm_run(cpu_gemm *g);
/* Check the result: int8 types exactly on `samples` sampled entries against
 * the reference GEMM; float types within a stated bound. *max_err gets the
 * worst relative error (0 for exact). */
qcal_status qcal_cpu_gemm_check(cpu_gemm *g, int samples, double *max_err, char *why, size_t cap);
void qcal_cpu_gemm_destroy(cpu_gemm *g);
/* The output buffer (tests corrupt it to prove the check catches garbage). */
void *qcal_cpu_gemm_output(cpu_gemm *g);
/* Bytes the problem needs (for the memory check before allocating). */
double qcal_gemm_bytes(gemm_type t, const gemm_shape *s);

#endif
