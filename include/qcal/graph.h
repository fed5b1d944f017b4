/* The graph IR: values (graph inputs, constants, intermediate results) and
 * nodes in topological order, each an op of graph/ops.inc with its inputs,
 * outputs and attributes. Importers (ONNX today) build it; qcal_graph_prepare
 * fixes the input shapes, infers every shape, folds constant sub-graphs and
 * BatchNormalization, fuses activations, and plans execution;
 * qcal_graph_run executes it in float32.
 *
 * Layout: 4-D activations are NCHW (ONNX's own order) and weights OIHW. ONNX
 * and TensorRT define per-channel Q/DQ axes on this order (axis 0 of OIHW,
 * axis 1 of NCHW), and shape ops (Reshape, Flatten, Transpose) keep their
 * meaning without rewriting. NHWC importers transpose at import. */
#ifndef QCAL_GRAPH_H
#define QCAL_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qcal/quant.h"
#include "qcal/status.h"
#include "qcal/tensor.h"

typedef enum qcal_dtype {
  QCAL_DT_F32,
  QCAL_DT_I64,
  QCAL_DT_I32,
  QCAL_DT_I8,
  QCAL_DT_U8,
  QCAL_DT_BOOL,
  QCAL_DT_COUNT
} qcal_dtype;

size_t qcal_dtype_size(qcal_dtype t);
const char *qcal_dtype_name(qcal_dtype t);

typedef enum qcal_graph_op {
#define QCAL_OP(id, name, min_in, max_in, min_out, max_out, flags, infer, fwd, wslot, waxis, tfwd, \
                bwd)                                                                               \
  QCAL_GOP_##id,
#include "graph/ops.inc"
#undef QCAL_OP
  QCAL_GOP_COUNT
} qcal_graph_op;

/* Op flags (ops.inc). */
enum {
  QCAL_OPF_FOLD = 1,        /* folded when every input is constant */
  QCAL_OPF_ELEMENTWISE = 2, /* output i depends only on input i (fusable) */
  QCAL_OPF_LOWERED = 4      /* an execution op a pass makes: not in model files */
};

typedef struct qcal_op_info {
  const char *name; /* ONNX op type */
  int min_in, max_in, min_out, max_out;
  int flags;
  int weight_slot; /* input index of a quantizable weight, or -1 */
  int weight_axis; /* its output-channel axis */
} qcal_op_info;
extern const qcal_op_info qcal_op_infos[QCAL_GOP_COUNT];
/* Op by ONNX name; QCAL_GOP_COUNT when not in the list (lowered ops are
 * never found: a model file cannot name them). */
qcal_graph_op qcal_op_find(const char *name);
/* The op has a training forward and a backward (graph/train.c). */
bool qcal_op_trainable(qcal_graph_op op);

typedef enum qcal_value_kind { QCAL_VAL_INPUT, QCAL_VAL_CONST, QCAL_VAL_ACT } qcal_value_kind;

typedef struct qcal_value {
  char *name;
  qcal_value_kind kind;
  qcal_dtype dtype;
  int ndim;
  int64_t shape[QCAL_MAX_DIMS]; /* inputs before prepare: -1 for a symbolic dim */
  size_t numel;
  void *data;        /* constants own theirs; activations point into the plan */
  int producer;      /* node index, -1 for inputs and constants */
  int consumers;     /* live nodes that read it */
  bool is_output;    /* a graph output */
  unsigned data_gen; /* 0: data is the value's own; else the fake-quantized stand-in of
                        that generation (caches of converted weights key on it) */
  const void *fmt;   /* execution layout of data: NULL is plain C order; otherwise a oneDNN
                        blocked layout that only convolutions read (never for outputs, nor
                        with qcal_graph_opts.plain_values) */
} qcal_value;

typedef enum qcal_attr_type {
  QCAL_ATTR_INT,
  QCAL_ATTR_FLOAT,
  QCAL_ATTR_INTS,
  QCAL_ATTR_FLOATS,
  QCAL_ATTR_STRING,
  QCAL_ATTR_TENSOR /* a constant value: `i` is its value index */
} qcal_attr_type;

typedef struct qcal_attr {
  char *name;
  qcal_attr_type type;
  int64_t i;
  float f;
  int n; /* ints / floats length */
  int64_t *ints;
  float *floats;
  char *s;
  bool used; /* read by the op: an attribute no op reads is refused */
} qcal_attr;

/* Fused element-wise activation (applied to a Conv/Gemm/MatMul output). */
typedef enum qcal_act {
  QCAL_ACT_NONE,
  QCAL_ACT_RELU, /* alpha: LeakyRelu slope (0 for Relu) */
  QCAL_ACT_CLIP, /* [alpha, beta] */
  QCAL_ACT_SIGMOID,
  QCAL_ACT_HARDSWISH,
  QCAL_ACT_SWISH /* x * sigmoid(x) */
} qcal_act;

/* What running a node needs beyond the IR, kept beside it as XNNPACK keeps
 * an operator beside its subgraph node: the post-ops the fusion pass chose
 * and the state the plan pass made (a oneDNN primitive, packed weights). */
typedef struct qcal_node_exec {
  qcal_act act; /* fused activation */
  float act_alpha, act_beta;
  int sum_in; /* value added to the output before act (fused Add), or -1 */
  void *state;
  void (*state_free)(void *);
} qcal_node_exec;

/* A node of the IR: an op of graph/ops.inc, its inputs, outputs and
 * attributes (the int8 ops' parameters included); x is execution only. */
typedef struct qcal_node {
  qcal_graph_op op;
  char *name;
  int nin, nout;
  int *in; /* value indices; -1 for an absent optional input */
  int *out;
  int nattr;
  qcal_attr *attr;
  bool dead; /* folded or fused away */
  qcal_node_exec x;
} qcal_node;

/* What cross-layer equalization did (graph/pass_cle.c). */
typedef struct qcal_cle_report {
  int pairs;        /* layer pairs equalized */
  int iterations;   /* sweeps over all pairs until no scale moved */
  int clips;        /* Clip(0, hi) split into Relu and a per-channel Min */
  double max_scale; /* the largest factor applied to a channel (>= 1, either way) */
} qcal_cle_report;

/* The statistics of a BatchNormalization folded into the Conv before it
 * (graph/pass_fold_bn.c), kept for analytic bias correction
 * (docs/repair.md): on the data it was trained on, the Conv's output has
 * per channel mean beta and deviation |gamma|. bias and wnorm are the
 * folded bias and each folded weight row's L2 norm, against which later
 * rescaling (equalization) and shifts (absorption) are read. */
typedef struct qcal_bn_stats {
  int value; /* the Conv's output value */
  int64_t channels;
  float *beta, *gamma, *bias, *wnorm;
} qcal_bn_stats;

typedef struct qcal_graph {
  char *path;     /* the model file, for messages */
  char name_mark; /* an importer's mark before the suffixes of values it derives
                     ("x#nchw", "w#oihw" in TF.js graphs, whose names cannot hold
                     it), 0 when none: qcal_value_model_name strips from it */
  int opset;
  int nvalues, cap_values;
  qcal_value *values;
  int nnodes, cap_nodes;
  qcal_node *nodes;
  int ninputs, noutputs;
  int *inputs, *outputs;
  bool prepared;
  int threads;
  bool plain_values;
  bool reference_conv;
  void *names;                     /* name -> value index */
  int int8_nodes, int8_candidates; /* engine int8: convolutions lowered / reading Q/DQ */
  double *node_seconds;            /* when set (nnodes entries), each run adds each node's time */
  void *plan;                      /* execution buffers (graph/exec.c) */
  void *fq;                        /* fake quantization while running (graph/fakequant.c) */
  unsigned fq_gen; /* the last data generation handed to a fake-quantized constant */
  qcal_cle_report cle;
  qcal_bn_stats *bn; /* one per folded BatchNormalization (prepared with repair_params) */
  int nbn;
} qcal_graph;

/* ---- building (importers, tests) */
qcal_status qcal_graph_new(const char *path, qcal_graph **out);
void qcal_graph_free(qcal_graph *g);
/* Index of the value named `name`, or -1. */
int qcal_graph_find(const qcal_graph *g, const char *name);
/* New value; names must be unique (QCAL_EFORMAT otherwise). */
qcal_status qcal_graph_add_value(qcal_graph *g, const char *name, qcal_value_kind kind,
                                 qcal_dtype dtype, int ndim, const int64_t *shape, int *index);
/* Constant that takes ownership of data (qcal_alloc'ed, numel elements). */
qcal_status qcal_graph_add_const(qcal_graph *g, const char *name, qcal_dtype dtype, int ndim,
                                 const int64_t *shape, void *data, int *index);
/* New node reading/writing the given value indices (copied). */
qcal_status qcal_graph_add_node(qcal_graph *g, qcal_graph_op op, const char *name, int nin,
                                const int *in, int nout, const int *out, int *index);
/* Append value v to the graph's inputs / outputs. */
qcal_status qcal_graph_add_input(qcal_graph *g, int v);
qcal_status qcal_graph_add_output(qcal_graph *g, int v);
/* Attributes are copied. */
qcal_status qcal_node_add_attr(qcal_node *n, const qcal_attr *a);

/* ---- attribute access for ops (marks the attribute used) */
const qcal_attr *qcal_node_attr(qcal_node *n, const char *name);
int64_t qcal_attr_int(qcal_node *n, const char *name, int64_t def);
float qcal_attr_float(qcal_node *n, const char *name, float def);
const char *qcal_attr_str(qcal_node *n, const char *name, const char *def);
/* Integer list into out (at most max); returns its length, 0 when absent,
 * -1 when longer than max or of another type. */
int qcal_attr_ints(qcal_node *n, const char *name, int64_t *out, int max);

/* ---- preparation and execution */
/* How a Q/DQ model executes (graph/engine.c). */
typedef enum qcal_engine {
  QCAL_ENGINE_QDQ,  /* QuantizeLinear / DequantizeLinear as written, in float (default) */
  QCAL_ENGINE_FP32, /* Q/DQ pairs removed: the float model */
  QCAL_ENGINE_INT8  /* convolutions on int8 tensors with oneDNN int8 primitives */
} qcal_engine;

extern const char *const qcal_engine_names[]; /* by qcal_engine, NULL-terminated */
/* By name; QCAL_ENGINE_QDQ for NULL or an unknown name. */
qcal_engine qcal_engine_find(const char *name);

typedef struct qcal_graph_opts {
  int threads; /* 0: keep the OpenMP default */
  qcal_engine engine;
  bool no_fold_bn;     /* keep BatchNormalization as a node */
  bool no_fuse;        /* no activation / Add fusion */
  bool plain_values;   /* every value readable in C order after a run (analysis) */
  bool reference_conv; /* Conv through graph/conv_ref.c (im2col + BLAS): the same bits on
                          every x86 ISA, for analysis that must reproduce (implies
                          plain_values); QCAL_CONV_REF=1 sets it too */
  bool repair_params;  /* every Conv/Gemm gets its own weight and bias constants (a zero bias
                          where none): what the repairs of docs/repair.md change; and
                          fold-batchnorm keeps the statistics bias-bn reads (g->bn) */
  bool equalize;       /* cross-layer equalization (implies repair_params) */
  bool absorb_form;    /* bias absorption's exact form: the Relu (or Clip(0, hi)) between two
                          layers whose second reads no padding becomes Max(x, per-channel
                          floor 0) [then Min(., hi)] (implies repair_params) */
} qcal_graph_opts;

/* Fix input i's shape (symbolic dims take the given size; fixed ones must
 * agree). Call for every input with a symbolic dim before prepare. */
qcal_status qcal_graph_bind_input(qcal_graph *g, int i, int ndim, const int64_t *shape);
/* The same, but fixed dims may change too: a fully convolutional network
 * run at another input size than it declares. Shape inference at prepare
 * then says whether the graph accepts it. */
qcal_status qcal_graph_resize_input(qcal_graph *g, int i, int ndim, const int64_t *shape);
/* Turn bound input i into a constant with these elements (copied), before
 * prepare: shape inputs that a graph takes at run time (Reshape's shape,
 * Resize's sizes) then fold like initializers. Later inputs move down. */
qcal_status qcal_graph_freeze_input(qcal_graph *g, int i, const void *data);
/* Sort, check, infer shapes, fold, fuse and plan. Errors name the node. */
qcal_status qcal_graph_prepare(qcal_graph *g, const qcal_graph_opts *o);
/* Run once; inputs[i] holds input i's data in its dtype and bound shape.
 * Output values then hold their results (valid until the next run). */
qcal_status qcal_graph_run(qcal_graph *g, const void *const *inputs);
/* Run nodes from index `first` on (inputs are copied only when first is 0).
 * Values of nodes before `first` must still hold what an earlier run left:
 * analysis that changes only nodes from `first` on (one layer's fake
 * quantization) skips the rest. */
qcal_status qcal_graph_run_from(qcal_graph *g, const void *const *inputs, int first);

/* Fake quantization while running (analysis: end-to-end fidelity, layer
 * sensitivity): input `slot` of node `node` is read through
 * quantize-dequantize with amax, one value (per tensor) or one per channel
 * along `axis` (constants only). Other readers of the same value see it in
 * float. Replaces any earlier list; n = 0 clears it. amax is copied. */
typedef struct qcal_graph_fq {
  int node, slot;
  int axis; /* QCAL_PER_TENSOR, or the channel axis of a constant input */
  const float *amax;
  qcal_qformat fmt;
} qcal_graph_fq;
qcal_status qcal_graph_fake_quant(qcal_graph *g, const qcal_graph_fq *fq, int n);

/* Value v's elements after a run, in plain C order (reordered from an
 * execution layout where one is used); dst holds v->numel floats. */
qcal_status qcal_graph_read(qcal_graph *g, int v, float *dst);

/* The name a value has in the model file: its IR name without an
 * importer's derived suffix ("image#nchw" -> "image"). */
const char *qcal_value_model_name(const qcal_graph *g, const qcal_value *v, char *buf, size_t cap);

/* The layer type of a node for timing tables: conv, depthwise,
 * conv-transpose, gemm, matmul, add, pool, quantize, dequantize, or the op
 * name in lower case. */
const char *qcal_node_kind(const qcal_graph *g, const qcal_node *n, char *buf, size_t cap);

/* Element k of a value as a double (any dtype). */
double qcal_value_get(const qcal_value *v, size_t k);

/* A depthwise Conv: one group per input channel, one output channel each
 * (group = C_in = C_out > 1). */
bool qcal_conv_depthwise(const qcal_graph *g, const qcal_node *n);

/* Human text for messages: "Conv node 'conv1'". */
const char *qcal_node_desc(const qcal_graph *g, const qcal_node *n, char *buf, size_t len);

/* ---- quantization points, indexed by value */
typedef enum qcal_qpoint_kind {
  QCAL_QP_WEIGHT,  /* the weight of a weighted op (per output channel: axis) */
  QCAL_QP_ACT,     /* the input activation of a weighted op */
  QCAL_QP_OPTIONAL /* an input of Add, Concat, pooling or Mul (TensorRT placement) */
} qcal_qpoint_kind;

typedef struct qcal_qpoint {
  int value; /* the quantized value */
  int node;  /* the node that reads it */
  int slot;  /* which input of that node */
  qcal_qpoint_kind kind;
  int axis; /* output-channel axis for weights; QCAL_PER_TENSOR otherwise */
} qcal_qpoint;

/* Every quantization point of a prepared graph, in node order; optional
 * points only when with_optional. *pts is malloc'ed. */
qcal_status qcal_graph_qpoints(const qcal_graph *g, bool with_optional, qcal_qpoint **pts, int *n);

/* ---- repair (docs/repair.md) */
/* Two convolutions joined by a positively homogeneous activation, whose
 * channels can be rescaled against each other: a's output channel c is
 * b's input channel c and nothing else reads what lies between. */
typedef enum qcal_pair_kind {
  QCAL_PAIR_IDENTITY, /* a feeds b directly */
  QCAL_PAIR_RELU,     /* Relu, LeakyRelu or Clip(0, inf) */
  QCAL_PAIR_PRELU,    /* PRelu with a per-channel or scalar slope */
  QCAL_PAIR_CLIP,     /* Clip(0, hi): equalization splits it */
  QCAL_PAIR_RELU_MIN  /* Relu then Min(., per-channel bound): a split Clip */
} qcal_pair_kind;
typedef struct qcal_layer_pair {
  int a, act, min, b; /* node indices (act, min: -1 when absent) */
  qcal_pair_kind kind;
  bool floor; /* kind RELU / RELU_MIN whose act is Max(., per-channel floor <= 0): the form
                 bias absorption shifts (the pass bias-absorption-form) */
} qcal_layer_pair;
/* The pairs of a linked graph (after preparation, before fusion), *pairs
 * malloc'ed. Indices hold until the node array changes. */
qcal_status qcal_graph_layer_pairs(qcal_graph *g, qcal_layer_pair **pairs, int *n);
/* A constant's elements were changed in place after preparation: converted
 * copies that the engine keeps (packed weights) are made again. */
void qcal_graph_const_changed(qcal_graph *g, int v);

/* ---- importers */
/* An ONNX ModelProto (.onnx); external data files are read from beside it. */
qcal_status qcal_onnx_load(const char *path, qcal_graph **out);
/* The same from bytes in memory (external data relative to `path`'s folder). */
qcal_status qcal_onnx_parse(const char *path, const unsigned char *buf, size_t len,
                            qcal_graph **out);
/* One serialized TensorProto (ONNX test data input_0.pb, ...): dtype,
 * shape and a qcal_alloc'ed copy of its elements. */
qcal_status qcal_onnx_tensor_read(const char *path, qcal_dtype *dtype, int *ndim, int64_t *shape,
                                  void **data, size_t *numel);
/* A TF.js graph model (model.json and the weight files its manifest names,
 * beside it): NHWC input as declared, outputs named by their nodes. */
qcal_status qcal_tfjs_graph_load(const char *path, qcal_graph **out);
/* By extension: .onnx (ONNX) or .json (TF.js graph model). */
qcal_status qcal_graph_load(const char *path, qcal_graph **out);

/* ---- export */
/* A QuantizeLinear/DequantizeLinear pair on `value`, read through by the
 * listed (node, input slot) readers; other readers keep the float value.
 * Symmetric int8, zero point 0: scale = amax / 127 per tensor, or one per
 * channel along `axis`. */
typedef struct qcal_qdq {
  int value;
  int axis; /* QCAL_PER_TENSOR, or the channel axis */
  int nscale;
  const float *scale;
  int nreaders;
  const int *reader_node, *reader_slot;
} qcal_qdq;
/* Write g as an ONNX model (opset max(13, the model's); live nodes only, so
 * a prepared graph is written with its folding; fused activations are
 * refused: prepare with no_fuse) with the Q/DQ pairs inserted. The file
 * appears whole or not at all. */
qcal_status qcal_onnx_save(const qcal_graph *g, const qcal_qdq *q, int nq, const char *path);
/* The name value v has in a file qcal_onnx_save writes: its model name
 * (qcal_value_model_name) unless another value already has it, then its
 * IR name. */
const char *qcal_onnx_value_name(const qcal_graph *g, int v, char *buf, size_t cap);

#endif
