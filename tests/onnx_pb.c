/* ONNX test data through the product's own protobuf-c importer. */
#include "tests/onnx_pb.h"

#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"
#include "qcal/datasets.h"
#include "qcal/graph.h"

static int onnx_code(qcal_dtype t) {
  switch (t) {
  case QCAL_DT_F32:
    return PB_FLOAT;
  case QCAL_DT_U8:
    return PB_UINT8;
  case QCAL_DT_I8:
    return PB_INT8;
  case QCAL_DT_I32:
    return PB_INT32;
  case QCAL_DT_I64:
    return 7;
  default:
    return 9;
  }
}

int pb_load_tensor(const char *path, pb_tensor *t) {
  memset(t, 0, sizeof *t);
  qcal_dtype dt;
  void *data;
  if (qcal_onnx_tensor_read(path, &dt, &t->ndim, t->dims, &data, &t->numel))
    return -1;
  t->dtype = onnx_code(dt);
  t->data = data;
  return 0;
}

void pb_free_tensor(pb_tensor *t) {
  qcal_free(t->data);
  t->data = NULL;
}

Onnx__ModelProto *pb_model_read(const char *path) {
  unsigned char *buf;
  size_t len;
  if (qcal_read_file(path, &buf, &len))
    return NULL;
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
  free(buf);
  return m;
}

int pb_model_int_attr(const char *path, const char *name, int64_t *value) {
  Onnx__ModelProto *m = pb_model_read(path);
  if (!m)
    return -1;
  int rc = 1;
  if (m->graph && m->graph->n_node > 0) {
    const Onnx__NodeProto *n = m->graph->node[0];
    for (size_t k = 0; k < n->n_attribute; k++)
      if (n->attribute[k]->name && !strcmp(n->attribute[k]->name, name) && n->attribute[k]->has_i) {
        *value = n->attribute[k]->i;
        rc = 0;
      }
  }
  onnx__model_proto__free_unpacked(m, NULL);
  return rc;
}
