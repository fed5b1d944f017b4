/* A tiny TF.js graph model written by the tests: conv 3x3/2 (3->4, ReLU6),
 * depthwise 3x3/1 (4, ReLU6), conv 1x1 (4->5) named like PoseNet's heatmap
 * head. Weights are seeded so every run writes the same files. */
#ifndef QCAL_TESTS_TINY_MODEL_H
#define QCAL_TESTS_TINY_MODEL_H

#include <stdio.h>
#include <string.h>

#include "qcal/datasets.h"

#define TINY_CONV0 (3 * 3 * 3 * 4)
#define TINY_DW (3 * 3 * 4)
#define TINY_HEAD (4 * 5)
#define TINY_FLOATS (TINY_CONV0 + 4 + TINY_DW + 4 + TINY_HEAD + 5)

static const char *tiny_json_fmt =
    "{\"format\":\"graph-model\",\"modelTopology\":{\"node\":["
    "{\"name\":\"image\",\"op\":\"Placeholder\",\"attr\":{\"dtype\":{\"type\":\"DT_FLOAT\"},"
    "\"shape\":{\"shape\":{\"dim\":[{\"size\":"
    "\"1\"},{\"size\":\"-1\"},{\"size\":\"-1\"},{\"size\":\"3\"}]}}}},"
    "{\"name\":\"w0\",\"op\":\"Const\"},{\"name\":\"b0\",\"op\":\"Const\"},"
    "{\"name\":\"MobilenetV1/Conv2d_0/"
    "Relu6\",\"op\":\"_FusedConv2D\",\"input\":[\"image\",\"w0\",\"b0\"],"
    "\"attr\":{\"strides\":{\"list\":{\"i\":[\"1\",\"2\",\"2\",\"1\"]}},\"padding\":{\"s\":"
    "\"U0FNRQ==\"},"
    "\"data_format\":{\"s\":\"TkhXQw==\"},\"fused_ops\":{\"list\":{\"s\":[\"Qmlhc0FkZA==\","
    "\"UmVsdTY=\"]}}}},"
    "{\"name\":\"MobilenetV1/Conv2d_1_depthwise/conv\",\"op\":\"%s\",\"input\":[\"MobilenetV1/"
    "Conv2d_0/Relu6\",\"w1\",\"b1\"],"
    "\"attr\":{\"strides\":{\"list\":{\"i\":[\"1\",\"1\",\"1\",\"1\"]}},\"padding\":{\"s\":"
    "\"U0FNRQ==\"},"
    "\"dilations\":{\"list\":{\"i\":[\"1\",\"%d\",\"%d\",\"1\"]}},"
    "\"fused_ops\":{\"list\":{\"s\":[\"Qmlhc0FkZA==\",\"UmVsdTY=\"]}}}},"
    "{\"name\":\"MobilenetV1/heatmap_2/BiasAdd\",\"op\":\"_FusedConv2D\",\"input\":[\"MobilenetV1/"
    "Conv2d_1_depthwise/conv\",\"w2\",\"b2\"],"
    "\"attr\":{\"strides\":{\"list\":{\"i\":[\"1\",\"1\",\"1\",\"1\"]}},\"padding\":{\"s\":"
    "\"VkFMSUQ=\"},"
    "\"fused_ops\":{\"list\":{\"s\":[\"Qmlhc0FkZA==\"]}}}}"
    "]},\"weightsManifest\":[{\"paths\":[\"tiny.bin\"],\"weights\":["
    "{\"name\":\"w0\",\"shape\":[3,3,3,4],\"dtype\":\"float32\"},{\"name\":\"b0\",\"shape\":[4],"
    "\"dtype\":\"float32\"},"
    "{\"name\":\"w1\",\"shape\":[3,3,4,1],\"dtype\":\"float32\"},{\"name\":\"b1\",\"shape\":[4],"
    "\"dtype\":\"float32\"},"
    "{\"name\":\"w2\",\"shape\":[1,1,%d,5],\"dtype\":\"float32\"},{\"name\":\"b2\",\"shape\":[5],"
    "\"dtype\":\"float32\"}]}]}";

/* Write dir/tiny.json and dir/tiny.bin; variants break one thing each. */
typedef struct {
  const char *dw_op; /* "FusedDepthwiseConv2dNative" */
  int dilation;      /* 1 */
  int head_cin;      /* 4 */
  long bin_delta;    /* bytes added to (or cut from) the .bin */
} tiny_variant;
#define TINY_OK ((tiny_variant){"FusedDepthwiseConv2dNative", 1, 4, 0})

static float tiny_weights[TINY_FLOATS + 64];

static void tiny_write(const char *dir, tiny_variant v) {
  char path[512];
  snprintf(path, sizeof path, "%s/tiny.json", dir);
  FILE *f = fopen(path, "w");
  fprintf(f, tiny_json_fmt, v.dw_op, v.dilation, v.dilation, v.head_cin);
  fclose(f);
  qcal_rng r;
  qcal_rng_seed(&r, 1234);
  size_t n = TINY_FLOATS - 4 * 5 + (size_t)v.head_cin * 5;
  for (size_t i = 0; i < n + 64; i++)
    tiny_weights[i] = (float)(0.5 * qcal_rng_normal(&r));
  snprintf(path, sizeof path, "%s/tiny.bin", dir);
  f = fopen(path, "wb");
  fwrite(tiny_weights, 1, n * 4 + (size_t)v.bin_delta, f);
  fclose(f);
}

#endif
