/* A convolutional network read from a TF.js graph model (PoseNet
 * MobileNetV1), and its NHWC forward pass with optional fake-quantization at
 * every convolution input. */
#ifndef QCAL_MODEL_H
#define QCAL_MODEL_H

#include <stdbool.h>

#include "qcal/quant.h"
#include "qcal/tensor.h"

typedef enum qcal_op { QCAL_OP_CONV, QCAL_OP_DWCONV } qcal_op;

typedef struct qcal_layer {
  char name[192];
  qcal_op op;
  int input;          /* producing layer, or -1 for the network input */
  int kh, kw;         /* kernel */
  int cin, cout;      /* depthwise: cout == cin (multiplier 1) */
  int stride;         /* same in both directions */
  bool same_pad;      /* TF "SAME" (else "VALID") */
  bool relu6;         /* fused ReLU6 after the bias */
  int weight_axis;    /* output-channel axis of weight: 3 (HWIO) or 2 (depthwise) */
  qcal_tensor weight; /* conv [kh, kw, cin, cout]; depthwise [kh, kw, c, 1] */
  qcal_tensor bias;   /* [cout] */
} qcal_layer;

typedef struct qcal_model {
  int nlayers;
  qcal_layer *layers;
  int in_channels;
  char input_name[192]; /* the graph's input placeholder */
  int heads[4]; /* layer indices of heatmap, offset, displacement_fwd, _bwd (-1 if absent) */
} qcal_model;

enum { QCAL_HEAD_HEATMAP, QCAL_HEAD_OFFSET, QCAL_HEAD_DISP_FWD, QCAL_HEAD_DISP_BWD };

/* Read model.json (+ the weights files its manifest names, next to it). */
qcal_status qcal_tfjs_load(const char *json_path, qcal_model *m);
void qcal_model_free(qcal_model *m);
/* Deep copy (weights included). */
qcal_status qcal_model_copy(qcal_model *dst, const qcal_model *src);
/* Fake-quantize every layer's weights in place with amax per layer: amax[l]
 * holds one value per output channel when per_channel, else one; a NULL
 * amax[l] leaves that layer in float. */
qcal_status qcal_model_fake_quant_weights(qcal_model *m, float *const *amax, bool per_channel,
                                          qcal_qformat f);

/* Forward pass on one image [1, H, W, C]. acts[l] receives layer l's output
 * (allocated here; free with qcal_acts_free). When act_amax is not NULL and
 * act_amax[l] >= 0, layer l's input is fake-quantized per tensor with it.
 * Layers below `first` are taken from acts as given (a cached pass), so a
 * change confined to layers >= first recomputes only those. */
typedef struct qcal_forward_opts {
  const float *act_amax; /* [nlayers] or NULL; < 0 means keep float */
  qcal_qformat fmt;
  int first;
} qcal_forward_opts;

qcal_status qcal_model_forward(const qcal_model *m, const qcal_tensor *image,
                               const qcal_forward_opts *o, qcal_tensor *acts);
void qcal_acts_free(const qcal_model *m, qcal_tensor *acts);
/* The tensor that layer l reads: the image or a producer's output. */
const qcal_tensor *qcal_layer_input(const qcal_model *m, int l, const qcal_tensor *image,
                                    const qcal_tensor *acts);

/* NHWC kernels of the forward pass, exposed for tests. out is [oh, ow, cout]. */
void qcal_conv2d_nhwc(const float *in, int h, int w, const qcal_layer *L, float *out, int oh,
                      int ow, float *scratch);
void qcal_dwconv2d_nhwc(const float *in, int h, int w, const qcal_layer *L, float *out, int oh,
                        int ow);
/* TF output size and leading padding for one dimension. */
void qcal_tf_pad(int in, int k, int stride, bool same, int *out, int *pad_before);

/* Load an image with stb_image, resize (bilinear) to size x size RGB and map
 * to [-1, 1] (x / 127.5 - 1), as PoseNet expects. Result [1, size, size, 3]. */
qcal_status qcal_image_load(const char *path, int size, qcal_tensor *out);

#endif
