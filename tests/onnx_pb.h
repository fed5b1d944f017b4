/* Minimal protobuf reading of ONNX TensorProto files and the first node's
 * integer attributes of a ModelProto, for the conformance suite. */
#ifndef QCAL_TESTS_ONNX_PB_H
#define QCAL_TESTS_ONNX_PB_H

#include <stddef.h>
#include <stdint.h>

enum { PB_FLOAT = 1, PB_UINT8 = 2, PB_INT8 = 3, PB_INT32 = 6 };

typedef struct pb_tensor {
  int ndim;
  int64_t dims[8];
  int dtype;
  size_t numel;
  unsigned char *data; /* numel elements of the dtype, little-endian */
} pb_tensor;

/* 0 on success. */
int pb_load_tensor(const char *path, pb_tensor *t);
void pb_free_tensor(pb_tensor *t);
/* A ModelProto file unpacked by the product's generated protobuf-c code, or
 * NULL; free with onnx__model_proto__free_unpacked. */
struct Onnx__ModelProto;
struct Onnx__ModelProto *pb_model_read(const char *path);
/* Value of the integer attribute `name` of the graph's first node; returns 0
 * when found, 1 when absent, -1 on a read error. */
int pb_model_int_attr(const char *path, const char *name, int64_t *value);

#endif
