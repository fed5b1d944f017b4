/* The training networks of analysis/nets.inc, built as graphs of the IR
 * (ONNX ops, NCHW), with PyTorch's default initialisation drawn from a
 * seeded generator: the same seed gives the same weights on every machine. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graph/internal.h"
#include "qcal/datasets.h"
#include "qcal/qat.h"

typedef struct builder {
  qcal_graph *g;
  uint64_t rng;
  int x; /* the current activation */
  int64_t c, h, w;
  int count; /* layers, for names */
} builder;

static double uniform(builder *b) {
  return (double)(qcal_splitmix64(&b->rng) >> 11) / 9007199254740992.0;
}

static qcal_status add_param(builder *b, const char *name, int ndim, const int64_t *shape,
                             float bound, float fill, int *v) {
  size_t n = 1;
  for (int d = 0; d < ndim; d++)
    n *= (size_t)shape[d];
  float *data = qcal_alloc(n * sizeof(float));
  if (!data)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++)
    data[i] = bound > 0 ? (float)((2.0 * uniform(b) - 1.0) * bound) : fill;
  return qcal_graph_add_const(b->g, name, QCAL_DT_F32, ndim, shape, data, v);
}

static qcal_status add_act(builder *b, const char *name, int *v) {
  return qcal_graph_add_value(b->g, name, QCAL_VAL_ACT, QCAL_DT_F32, 0, NULL, v);
}

static qcal_status node(builder *b, qcal_graph_op op, const char *name, int nin, const int *in,
                        int *out, qcal_node **n) {
  int idx, ins[8], y;
  memcpy(ins, in, (size_t)nin * sizeof *ins); /* `in` may be `out` (&b->x) */
  QCAL_TRY(add_act(b, name, &y));
  QCAL_TRY(qcal_graph_add_node(b->g, op, name, nin, ins, 1, &y, &idx));
  *out = y;
  *n = &b->g->nodes[idx];
  return QCAL_OK;
}

static qcal_status set_ints(qcal_node *n, const char *name, int64_t a, int64_t b2, int count) {
  int64_t v[4] = {a, b2, a, b2};
  return qcal_node_add_attr(
      n, &(qcal_attr){.name = (char *)name, .type = QCAL_ATTR_INTS, .n = count, .ints = v});
}

/* Conv k x k (padding k/2), PyTorch's init: U(+-1/sqrt(fan_in)) for the
 * weight and the bias (kaiming_uniform with a = sqrt(5)). */
static qcal_status conv(builder *b, int64_t cout, int k, int stride, bool depthwise, bool bias) {
  char nm[64], wn[80], bn[80];
  snprintf(nm, sizeof nm, "conv%d", ++b->count);
  snprintf(wn, sizeof wn, "%s.weight", nm);
  snprintf(bn, sizeof bn, "%s.bias", nm);
  int64_t cin_g = depthwise ? 1 : b->c;
  if (depthwise)
    cout = b->c;
  float bound = 1.0f / sqrtf((float)(cin_g * k * k));
  int64_t ws[4] = {cout, cin_g, k, k}, bs[1] = {cout};
  int in[3] = {b->x, -1, -1}, y;
  QCAL_TRY(add_param(b, wn, 4, ws, bound, 0, &in[1]));
  if (bias)
    QCAL_TRY(add_param(b, bn, 1, bs, bound, 0, &in[2]));
  qcal_node *n;
  QCAL_TRY(node(b, QCAL_GOP_Conv, nm, bias ? 3 : 2, in, &y, &n));
  QCAL_TRY(set_ints(n, "kernel_shape", k, k, 2));
  QCAL_TRY(set_ints(n, "strides", stride, stride, 2));
  QCAL_TRY(set_ints(n, "pads", k / 2, k / 2, 4));
  if (depthwise)
    QCAL_TRY(qcal_node_set_int(n, "group", b->c));
  b->x = y;
  b->c = cout;
  b->h = (b->h + 2 * (k / 2) - k) / stride + 1;
  b->w = (b->w + 2 * (k / 2) - k) / stride + 1;
  return QCAL_OK;
}

static qcal_status batchnorm(builder *b) {
  char nm[64], pn[96];
  snprintf(nm, sizeof nm, "bn%d", b->count);
  int64_t s[1] = {b->c};
  const char *part[4] = {"weight", "bias", "running_mean", "running_var"};
  const float fill[4] = {1, 0, 0, 1};
  int in[5] = {b->x};
  for (int k = 0; k < 4; k++) {
    snprintf(pn, sizeof pn, "%s.%s", nm, part[k]);
    QCAL_TRY(add_param(b, pn, 1, s, 0, fill[k], &in[k + 1]));
  }
  qcal_node *n;
  QCAL_TRY(node(b, QCAL_GOP_BatchNormalization, nm, 5, in, &b->x, &n));
  return qcal_node_set_float(n, "epsilon", 1e-5f);
}

/* ReLU, or ReLU6 as Clip(0, 6). */
static qcal_status relu(builder *b, bool six) {
  char nm[64], lo[80], hi[80];
  snprintf(nm, sizeof nm, "relu%d", b->count);
  qcal_node *n;
  if (!six)
    return node(b, QCAL_GOP_Relu, nm, 1, &b->x, &b->x, &n);
  snprintf(lo, sizeof lo, "%s.min", nm);
  snprintf(hi, sizeof hi, "%s.max", nm);
  int in[3] = {b->x};
  QCAL_TRY(add_param(b, lo, 0, NULL, 0, 0.0f, &in[1]));
  QCAL_TRY(add_param(b, hi, 0, NULL, 0, 6.0f, &in[2]));
  return node(b, QCAL_GOP_Clip, nm, 3, in, &b->x, &n);
}

static qcal_status maxpool(builder *b) {
  char nm[64];
  snprintf(nm, sizeof nm, "pool%d", b->count);
  qcal_node *n;
  QCAL_TRY(node(b, QCAL_GOP_MaxPool, nm, 1, &b->x, &b->x, &n));
  QCAL_TRY(set_ints(n, "kernel_shape", 2, 2, 2));
  QCAL_TRY(set_ints(n, "strides", 2, 2, 2));
  b->h /= 2;
  b->w /= 2;
  return QCAL_OK;
}

static qcal_status flatten(builder *b, qcal_graph_op op) {
  qcal_node *n;
  QCAL_TRY(node(b, op, op == QCAL_GOP_Flatten ? "flatten" : "gap", 1, &b->x, &b->x, &n));
  if (op == QCAL_GOP_GlobalAveragePool) {
    b->h = b->w = 1;
    return flatten(b, QCAL_GOP_Flatten);
  }
  b->c *= b->h * b->w;
  b->h = b->w = 1;
  return QCAL_OK;
}

static qcal_status fc(builder *b, int64_t out, const char *nm) {
  char wn[80], bn[80];
  snprintf(wn, sizeof wn, "%s.weight", nm);
  snprintf(bn, sizeof bn, "%s.bias", nm);
  float bound = 1.0f / sqrtf((float)b->c);
  int64_t ws[2] = {out, b->c}, bs[1] = {out};
  int in[3] = {b->x};
  QCAL_TRY(add_param(b, wn, 2, ws, bound, 0, &in[1]));
  QCAL_TRY(add_param(b, bn, 1, bs, bound, 0, &in[2]));
  qcal_node *n;
  QCAL_TRY(node(b, QCAL_GOP_Gemm, nm, 3, in, &b->x, &n));
  QCAL_TRY(qcal_node_set_int(n, "transB", 1));
  b->c = out;
  return QCAL_OK;
}

static qcal_status start(builder *b, const char *name, int rows, int cols, uint64_t seed) {
  QCAL_TRY(qcal_graph_new(name, &b->g));
  b->rng = seed;
  b->c = 1;
  b->h = rows;
  b->w = cols;
  int64_t s[4] = {-1, 1, rows, cols};
  QCAL_TRY(qcal_graph_add_value(b->g, "image", QCAL_VAL_INPUT, QCAL_DT_F32, 4, s, &b->x));
  b->g->opset = 13;
  return qcal_graph_add_input(b->g, b->x);
}

/* Start a graph, add the body, mark the logits as its output; nothing
 * is left behind on failure. */
static qcal_status build(const char *name, int rows, int cols, int classes, uint64_t seed,
                         qcal_status (*body)(builder *b, int classes), qcal_graph **out) {
  builder b = {0};
  qcal_status st = start(&b, name, rows, cols, seed);
  if (st == QCAL_OK)
    st = body(&b, classes);
  if (st == QCAL_OK)
    st = qcal_graph_add_output(b.g, b.x);
  if (st != QCAL_OK) {
    qcal_graph_free(b.g);
    return st;
  }
  *out = b.g;
  return QCAL_OK;
}

static qcal_status cnn_body(builder *b, int classes) {
  const int64_t width[2] = {16, 32};
  for (int k = 0; k < 2; k++) {
    QCAL_TRY(conv(b, width[k], 3, 1, false, true));
    QCAL_TRY(relu(b, false));
    QCAL_TRY(maxpool(b));
  }
  QCAL_TRY(flatten(b, QCAL_GOP_Flatten));
  QCAL_TRY(fc(b, 128, "fc1"));
  qcal_node *n;
  QCAL_TRY(node(b, QCAL_GOP_Relu, "relu_fc1", 1, &b->x, &b->x, &n));
  return fc(b, classes, "fc2");
}

qcal_status qcal_net_cnn(int rows, int cols, int classes, uint64_t seed, qcal_graph **out) {
  return build("cnn", rows, cols, classes, seed, cnn_body, out);
}

/* Conv (depthwise: cout is ignored), BatchNorm, ReLU6. */
static qcal_status conv_bn_relu6(builder *b, int64_t cout, int k, int stride, bool depthwise) {
  QCAL_TRY(conv(b, cout, k, stride, depthwise, false));
  QCAL_TRY(batchnorm(b));
  return relu(b, true);
}

/* Stem conv, then (depthwise 3x3, pointwise 1x1) blocks, each conv with
 * BatchNorm and ReLU6, as MobileNet v1 at Fashion-MNIST's scale. */
static qcal_status mobilenet_body(builder *b, int classes) {
  static const struct {
    int64_t out;
    int stride;
  } blocks[] = {{32, 1}, {64, 2}, {64, 1}, {128, 2}, {128, 1}};
  QCAL_TRY(conv_bn_relu6(b, 16, 3, 1, false));
  for (size_t k = 0; k < sizeof blocks / sizeof *blocks; k++) {
    QCAL_TRY(conv_bn_relu6(b, 0, 3, blocks[k].stride, true));
    QCAL_TRY(conv_bn_relu6(b, blocks[k].out, 1, 1, false));
  }
  QCAL_TRY(flatten(b, QCAL_GOP_GlobalAveragePool));
  return fc(b, classes, "fc");
}

qcal_status qcal_net_mobilenet(int rows, int cols, int classes, uint64_t seed, qcal_graph **out) {
  return build("mobilenet", rows, cols, classes, seed, mobilenet_body, out);
}

const qcal_net_info qcal_nets[] = {
#define QCAL_NET(id, name, help, fn, epochs, lr) {name, help, fn, epochs, lr},
#include "analysis/nets.inc"
#undef QCAL_NET
    {NULL, NULL, NULL, 0, 0}};

const qcal_net_info *qcal_net_find(const char *name) {
  for (const qcal_net_info *n = qcal_nets; n->name; n++)
    if (!strcmp(n->name, name))
      return n;
  return NULL;
}
