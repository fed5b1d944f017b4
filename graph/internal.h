/* Shared by the graph subsystem: op function prototypes (from ops.inc) and
 * helpers for reading inputs and setting outputs. */
#ifndef QCAL_GRAPH_INTERNAL_H
#define QCAL_GRAPH_INTERNAL_H

#include <math.h>
#include <stdbool.h>

#include "qcal/graph.h"

typedef qcal_status (*qcal_op_fn)(qcal_graph *g, qcal_node *n);

#define QCAL_OP(id, name, min_in, max_in, min_out, max_out, flags, infer, fwd, wslot, waxis, tfwd, \
                bwd)                                                                               \
  qcal_status infer(qcal_graph *g, qcal_node *n);                                                  \
  qcal_status fwd(qcal_graph *g, qcal_node *n);
#include "graph/ops.inc"
#undef QCAL_OP

/* ---- the pass list (graph/passes.inc) */
enum { QCAL_PASS_QDQ = 1, QCAL_PASS_FP32 = 2, QCAL_PASS_INT8 = 4 };
typedef qcal_status (*qcal_pass_fn)(qcal_graph *g, const qcal_graph_opts *o);
#define QCAL_PASS(id, name, engines, fn) qcal_status fn(qcal_graph *g, const qcal_graph_opts *o);
#include "graph/passes.inc"
#undef QCAL_PASS
typedef enum qcal_pass_id {
#define QCAL_PASS(id, name, engines, fn) QCAL_PASS_##id,
#include "graph/passes.inc"
#undef QCAL_PASS
  QCAL_PASS_COUNT
} qcal_pass_id;
typedef struct qcal_pass_info {
  const char *name;
  unsigned engines; /* QCAL_PASS_QDQ | ... */
  qcal_pass_fn run;
} qcal_pass_info;
extern const qcal_pass_info qcal_passes[QCAL_PASS_COUNT];
/* The engines column bit of an engine. */
unsigned qcal_pass_engine_bit(qcal_engine e);
/* Producers and live consumer counts; nodes nobody needs marked dead. */
void qcal_graph_link(qcal_graph *g);

/* ---- shared by the repair passes (graph/pass_cle.c, graph/pass_absorb.c) */
/* A float constant of this shape named base+suffix (a fresh name), copied
 * from src (or zero). */
qcal_status qcal_graph_add_f32(qcal_graph *g, const char *base, const char *suffix, int ndim,
                               const int64_t *shape, const float *src, int *idx);
/* v is a float constant of one value per channel (c of them, on axis 1 of
 * a value of ndim dims), or a scalar. */
bool qcal_per_channel_const(const qcal_graph *g, int v, int ndim, int64_t c);
/* A pair's Clip(0, hi) becomes Relu then Min(., hi per channel). */
qcal_status qcal_pair_split_clip(qcal_graph *g, qcal_layer_pair *p);
/* The single live node reading value v (and which input, into *slot when
 * slot is not NULL), or -1; a graph output has none. */
int qcal_sole_consumer(const qcal_graph *g, int v, int *slot);
/* Run a node whose inputs are all constant; its outputs become constants. */
qcal_status qcal_fold_node(qcal_graph *g, qcal_node *n);

extern const qcal_op_fn qcal_op_infer[QCAL_GOP_COUNT];
extern const qcal_op_fn qcal_op_fwd[QCAL_GOP_COUNT];

/* Input i of n, or NULL when absent. */
static inline qcal_value *qcal_in(qcal_graph *g, const qcal_node *n, int i) {
  return i < n->nin && n->in[i] >= 0 ? &g->values[n->in[i]] : NULL;
}
static inline qcal_value *qcal_out(qcal_graph *g, const qcal_node *n, int i) {
  return i < n->nout && n->out[i] >= 0 ? &g->values[n->out[i]] : NULL;
}

/* "MODEL: Op node 'name': message" with status st. */
/* Sanitizer builds (QCAL_MOVE_ARRAYS): move the value and node arrays, so
 * that a pointer into them kept across a pass or across qcal_graph_prepare
 * faults under ASan. A no-op otherwise. */
void qcal_graph_relocate(qcal_graph *g);
qcal_status qcal_node_error(qcal_graph *g, const qcal_node *n, qcal_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Drop every attribute of n. */
void qcal_node_clear_attrs(qcal_node *n);
/* Set an output's dtype and shape (checks the element count fits). */
qcal_status qcal_set_out(qcal_graph *g, const qcal_node *n, int i, qcal_dtype dt, int ndim,
                         const int64_t *shape);
/* Input i must be float32 (or absent when optional). */
qcal_status qcal_want_f32(qcal_graph *g, const qcal_node *n, int i);
/* A constant integer (int64/int32) input read into out[max]; *count gets its
 * length. Errors when the input is not constant after folding. */
qcal_status qcal_const_ints(qcal_graph *g, const qcal_node *n, int i, int64_t *out, int max,
                            int *count);
/* A constant scalar float input (or def when absent). */
qcal_status qcal_const_float(qcal_graph *g, const qcal_node *n, int i, float def, float *out);
/* Normalise an axis against ndim (negative counts from the end). */
qcal_status qcal_norm_axis(qcal_graph *g, const qcal_node *n, int64_t axis, int ndim, int *out);
/* Store x into element k of v in its dtype (qcal_value_get reads). */
void qcal_value_put(qcal_value *v, size_t k, double x);
/* Strides (elements) of a C-order shape. */
void qcal_strides(int ndim, const int64_t *shape, int64_t *st);

/* Conv: create the primitive now and report the layouts it reads and writes
 * (oneDNN memory descs) and the bytes its dst needs. */
qcal_status qcal_conv_plan(qcal_graph *g, qcal_node *n, const void **src_fmt, const void **dst_fmt,
                           size_t *dst_bytes);
bool qcal_fmt_equal(const void *a, const void *b);
/* Bytes of a buffer in execution layout fmt; fmt's elements into plain C
 * order. */
size_t qcal_fmt_bytes(const void *fmt);
qcal_status qcal_fmt_to_plain(const void *fmt, const void *src, float *dst);
/* Reference convolution (graph/conv_ref.c): group 1 or depthwise, 1-D/2-D. */
bool qcal_conv_ref_supported(qcal_graph *g, qcal_node *n);
qcal_status qcal_conv_ref_fwd(qcal_graph *g, qcal_node *n);
/* Swap fake-quantized inputs in around node i's execution (graph/fakequant.c). */
qcal_status qcal_fq_enter(qcal_graph *g, int i);
void qcal_fq_leave(qcal_graph *g, int i);
void qcal_fq_free(qcal_graph *g);
/* Channel block B of a [N][C/B][H][W][B] layout (nChw8c, nChw16c), else 0. */
int qcal_fmt_cblock(const void *fmt);
/* A dense channels-last layout (acdb: [N][H][W][C]). */
bool qcal_fmt_nhwc(const void *fmt);
/* Mul(x, s) with x 4-D and s one value per channel ([N or 1, C, 1, 1]):
 * which input is x (0 or 1), or -1. */
int qcal_mul_channel_scale(qcal_graph *g, const qcal_node *n);

/* The parameters of an int8 op (ops.inc), from its attributes; a float
 * that is absent reads 0 (y_scale 0: the output is float). */
typedef struct qcal_int8_params {
  const float *scales; /* "scales": accumulator to float, per output channel */
  int nscales;
  float a_scale, b_scale; /* Int8Add's inputs, Int8MaxPool/GAP's input (a_scale) */
  float y_scale;          /* the output's grid: y = round(v / y_scale) */
  int y_max;              /* "y_max": a non-negative s8 output stored as u8, clamped here */
} qcal_int8_params;
void qcal_int8_params_get(const qcal_node *n, qcal_int8_params *p);
/* Attributes the passes set (copied). */
qcal_status qcal_node_set_float(qcal_node *n, const char *name, float f);
qcal_status qcal_node_set_floats(qcal_node *n, const char *name, const float *f, int count);
qcal_status qcal_node_set_int(qcal_node *n, const char *name, int64_t i);
/* Matching Q/DQ patterns (graph/qdq_match.c). */
/* The node producing value v (-1 for none, inputs and constants). */
int qcal_producer_of(qcal_graph *g, int v);
/* Node `node` when it is live and of op `op`, else NULL. */
qcal_node *qcal_live_op(qcal_graph *g, int node, qcal_graph_op op);
/* A Q/DQ node's scale and zero point are constant, the scales positive and
 * finite, the zero points all 0: *scale and *count are its scales. */
bool qcal_qdq_sym_params(qcal_graph *g, const qcal_node *n, const float **scale, size_t *count);
/* How many live reads value v has (inputs and fused sums); *only is the
 * last reader's index. */
size_t qcal_count_readers(qcal_graph *g, int v, int *only);
/* The int8 weight of DQ node dw with scales ws: its constant int8 input, or
 * a new constant quantized from QuantizeLinear's float constant; *out is
 * -1 when the pattern does not hold. Adds a value. */
qcal_status qcal_int8_weight(qcal_graph *g, qcal_node *dw, const float *ws, size_t nws,
                             int want_axis, int *out);
/* The DequantizeLinear that node n reads its input 0 through, when it takes
 * a 4-D s8/u8 tensor with one scale (*s) and zero point 0; else NULL. */
qcal_node *qcal_int8_dq_input(qcal_graph *g, const qcal_node *n, const float **s);
/* Weighted node i (Conv, Gemm: output channels on dim 1) reading DQ(x)
 * with one scale and zero point 0 (x int8 or uint8) and DQ(w) with one
 * scale per output channel or per tensor: counted as an int8 candidate and,
 * when `fits` (the op's own conditions) and the weight is int8 or quantizes
 * to int8 on want_axis (qcal_int8_weight), it becomes op reading the int8
 * tensors, with "scales" s_x * s_w[c]; *done says whether it did. */
qcal_status qcal_int8_weighted(qcal_graph *g, int i, qcal_graph_op op, int want_axis, bool fits,
                               bool *done);
/* lower(g, i) for every live node i of op `op`: a lowering pass's loop. */
qcal_status qcal_lower_each(qcal_graph *g, qcal_graph_op op,
                            qcal_status (*lower)(qcal_graph *g, int i));
/* Conv or its int8 lowering. */
static inline bool qcal_op_conv2d(qcal_graph_op op) {
  return op == QCAL_GOP_Conv || op == QCAL_GOP_Int8Conv;
}

void qcal_plan_free(qcal_graph *g);

/* The fused activation node n computes (Relu, LeakyRelu, Sigmoid,
 * HardSwish, Clip with constant bounds); false for any other node. */
bool qcal_node_act(qcal_graph *g, qcal_node *n, qcal_act *act, float *alpha, float *beta);
static inline float qcal_hswish(float x) {
  float r = x + 3.0f;
  r = r < 0 ? 0 : r > 6 ? 6 : r;
  return x * r / 6.0f;
}
/* One element through a fused activation (serial callers). */
static inline float qcal_act_one(qcal_act act, float alpha, float beta, float x) {
  switch (act) {
  case QCAL_ACT_RELU:
    return x < 0 ? x * alpha : x;
  case QCAL_ACT_CLIP:
    return x < alpha ? alpha : x > beta ? beta : x;
  case QCAL_ACT_SIGMOID:
    return 1.0f / (1.0f + expf(-x));
  case QCAL_ACT_HARDSWISH:
    return qcal_hswish(x);
  case QCAL_ACT_SWISH:
    return x / (1.0f + expf(-x));
  default:
    return x;
  }
}
/* Apply a fused activation in place. */
void qcal_act_apply(qcal_act act, float alpha, float beta, float *x, size_t n);
/* The same from x into y (x == y allowed), one pass over the team. */
void qcal_act_apply_to(qcal_act act, float alpha, float beta, const float *x, float *y, size_t n);
/* memcpy of n floats split over the team. */
void qcal_copy_f32(const float *x, float *y, size_t n);

#endif

/* Spatial geometry of Conv, ConvTranspose and pooling; 1-D is 2-D with a
 * unit height. */
typedef struct qcal_geom {
  int64_t k[2], s[2], d[2], pb[2], pe[2], in[2], out[2], opad[2];
} qcal_geom;
/* Read kernel_shape (or ksize[] when the op takes it from the weight),
 * strides, dilations, pads, auto_pad (and ceil_mode for pooling,
 * output_padding / output_shape for ConvTranspose) for x's spatial dims. */
qcal_status qcal_geom_parse(qcal_graph *g, qcal_node *n, const qcal_value *x, const int64_t *ksize,
                            bool transpose, bool pool, qcal_geom *o);
/* The input pixels (y * in[1] + x) inside output (oy, ox)'s 2-D window,
 * padding left out; taps holds qcal_geom_taps_cap. Returns how many. */
int64_t qcal_geom_taps(const qcal_geom *ge, int64_t oy, int64_t ox, int64_t *taps);
/* At most min(k, in) distinct rows times as many columns: bounded by the
 * input's size, however large the (untrusted) kernel. */
size_t qcal_geom_taps_cap(const qcal_geom *ge);
