/* CUDA status checks: record file:line and the call, then unwind. */
#ifndef QCAL_CUDA_CHECK_H
#define QCAL_CUDA_CHECK_H

#include <cuda_runtime.h>

#include "qcal/status.h"

#define QCAL_CUDA_CHECK(call)                                                                      \
  do {                                                                                             \
    cudaError_t e_ = (call);                                                                       \
    if (e_ != cudaSuccess) {                                                                       \
      st = qcal_error(QCAL_EDEVICE, "%s:%d: %s failed: %s", __FILE__, __LINE__, #call,             \
                      cudaGetErrorString(e_));                                                     \
      goto done;                                                                                   \
    }                                                                                              \
  } while (0)

#endif
