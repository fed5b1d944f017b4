/* Fake quantization in a trainable graph: BatchNormalization folded, then
 * FakeQuantize nodes (graph/ops.inc) on the inputs TensorRT quantizes, and
 * their conversion to QuantizeLinear / DequantizeLinear pairs for ONNX. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "qcal/qat.h"

static bool weighted(const qcal_node *n) {
  return !n->dead && (n->op == QCAL_GOP_Conv || n->op == QCAL_GOP_Gemm);
}

/* Output-channel axis of a weighted node's weight: OIHW axis 0, Gemm's
 * [N, K] (transB) axis 0, [K, N] axis 1. */
static int weight_axis(qcal_node *n) {
  return n->op == QCAL_GOP_Gemm && qcal_attr_int(n, "transB", 0) == 0 ? 1 : 0;
}

static qcal_status add_amax(qcal_graph *g, const char *base, size_t count, int *v) {
  char name[600];
  for (int k = 0;; k++) {
    snprintf(name, sizeof name, "%s.amax%.0d", base, k);
    if (qcal_graph_find(g, name) < 0)
      break;
  }
  float *d = qcal_alloc(count * sizeof(float));
  if (!d)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  for (size_t i = 0; i < count; i++)
    d[i] = 1.0f;
  int64_t s[1] = {(int64_t)count};
  return qcal_graph_add_const(g, name, QCAL_DT_F32, 1, s, d, v);
}

static qcal_status set_int_attr(qcal_node *n, const char *name, int64_t v) {
  qcal_attr *a = (qcal_attr *)qcal_node_attr(n, name);
  if (a) {
    a->i = v;
    return QCAL_OK;
  }
  return qcal_node_set_int(n, name, v);
}

/* FakeQuantize on input `slot` of node i. */
static qcal_status insert_one(qcal_graph *g, int i, int slot) {
  int x = g->nodes[i].in[slot], y, amax, idx;
  char name[512];
  snprintf(name, sizeof name, "%s.fq%d", g->nodes[i].name, slot);
  QCAL_TRY(add_amax(g, name, 1, &amax));
  QCAL_TRY(qcal_graph_add_value(g, name, QCAL_VAL_ACT, QCAL_DT_F32, 0, NULL, &y));
  int in[2] = {x, amax};
  QCAL_TRY(qcal_graph_add_node(g, QCAL_GOP_FakeQuantize, name, 2, in, 1, &y, &idx));
  qcal_node *f = &g->nodes[idx];
  QCAL_TRY(qcal_node_set_int(f, "bits", 8));
  QCAL_TRY(qcal_node_set_int(f, "axis", -1));
  QCAL_TRY(qcal_node_set_int(f, "learn", 0));
  QCAL_TRY(qcal_node_set_int(f, "unsigned", 0));
  g->nodes[i].in[slot] = y;
  return QCAL_OK;
}

qcal_status qcal_qat_insert(qcal_graph *g) {
  if (g->prepared)
    return qcal_error(QCAL_EINVAL, "%s: fake quantization needs an unprepared graph", g->path);
  qcal_graph_opts o = {0};
  qcal_graph_link(g);
  QCAL_TRY(qcal_pass_fold_bn(g, &o));
  qcal_graph_link(g);
  for (int i = 0; i < g->nnodes; i++)
    if (!g->nodes[i].dead && g->nodes[i].op == QCAL_GOP_BatchNormalization)
      return qcal_node_error(g, &g->nodes[i], QCAL_EUNSUPPORTED,
                             "QAT folds BatchNormalization into the Conv before it; this one "
                             "has none");
  const int nn = g->nnodes;
  for (int i = 0; i < nn; i++) {
    if (!weighted(&g->nodes[i]))
      continue;
    const qcal_value *w = qcal_in(g, &g->nodes[i], 1);
    if (w->kind != QCAL_VAL_CONST || w->dtype != QCAL_DT_F32)
      return qcal_node_error(g, &g->nodes[i], QCAL_EUNSUPPORTED, "the weight must be a constant");
    QCAL_TRY(insert_one(g, i, 0));
    QCAL_TRY(insert_one(g, i, 1));
  }
  return QCAL_OK;
}

/* The node a FakeQuantize feeds (its one reader) and which input. */
static int reader_of(const qcal_graph *g, int f, int *slot) {
  int y = g->nodes[f].out[0];
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; !g->nodes[i].dead && k < g->nodes[i].nin; k++)
      if (g->nodes[i].in[k] == y) {
        *slot = k;
        return i;
      }
  return -1;
}

static bool is_fq(const qcal_graph *g, int i) {
  return !g->nodes[i].dead && g->nodes[i].op == QCAL_GOP_FakeQuantize;
}
static bool on_weight(const qcal_graph *g, int i) {
  return g->values[g->nodes[i].in[0]].kind == QCAL_VAL_CONST;
}

/* Value v is never negative: a Relu or Clip(>= 0, ...) output, or a pool,
 * reshape or copy of one. */
static bool non_negative(qcal_graph *g, int v, int depth) {
  int p = v >= 0 ? g->values[v].producer : -1;
  if (p < 0 || depth > 64)
    return false;
  qcal_node *n = &g->nodes[p];
  switch (n->op) {
  case QCAL_GOP_Relu:
    return true;
  case QCAL_GOP_Clip: {
    float lo;
    return qcal_const_float(g, n, 1, qcal_attr_float(n, "min", -INFINITY), &lo) == QCAL_OK &&
           lo >= 0;
  }
  case QCAL_GOP_MaxPool:
  case QCAL_GOP_AveragePool:
  case QCAL_GOP_GlobalAveragePool:
  case QCAL_GOP_GlobalMaxPool:
  case QCAL_GOP_Flatten:
  case QCAL_GOP_Reshape:
  case QCAL_GOP_Identity:
    return non_negative(g, n->in[0], depth + 1);
  default:
    return false;
  }
}

qcal_status qcal_qat_configure(qcal_graph *g, const qcal_qat_config *c) {
  qcal_graph_link(g);
  for (int i = 0; i < g->nnodes; i++) {
    if (!is_fq(g, i))
      continue;
    bool w = on_weight(g, i);
    int slot, r = reader_of(g, i, &slot);
    if (r < 0)
      continue;
    int axis = w && c->per_channel ? weight_axis(&g->nodes[r]) : -1;
    size_t count = axis >= 0 ? (size_t)g->values[g->nodes[i].in[0]].shape[axis] : 1;
    if (g->values[g->nodes[i].in[1]].numel != count) {
      int a;
      QCAL_TRY(add_amax(g, g->nodes[i].name, count, &a));
      g->nodes[i].in[1] = a;
    }
    qcal_node *f = &g->nodes[i];
    bool is_input = !w && g->values[f->in[0]].kind == QCAL_VAL_INPUT;
    int abits = is_input && c->input_bits > 0 ? c->input_bits : c->abits;
    QCAL_TRY(set_int_attr(f, "bits", w ? c->wbits : abits));
    QCAL_TRY(set_int_attr(f, "axis", axis));
    QCAL_TRY(set_int_attr(f, "learn", c->learn_amax));
    bool uns = !w && c->unsigned_acts && abits < 8 && non_negative(g, f->in[0], 0);
    QCAL_TRY(set_int_attr(f, "unsigned", uns));
  }
  return QCAL_OK;
}

qcal_status qcal_qat_weight_amax(qcal_graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    if (!is_fq(g, i) || !on_weight(g, i))
      continue;
    const qcal_value *w = qcal_in(g, &g->nodes[i], 0);
    qcal_value *a = qcal_in(g, &g->nodes[i], 1);
    int axis = (int)qcal_attr_int(&g->nodes[i], "axis", -1);
    size_t ch = axis >= 0 ? (size_t)w->shape[axis] : 1, inner = 1;
    for (int d = axis + 1; axis >= 0 && d < w->ndim; d++)
      inner *= (size_t)w->shape[d];
    float *am = a->data;
    for (size_t c = 0; c < ch; c++)
      am[c] = 0;
    const float *wd = w->data;
    for (size_t k = 0; k < w->numel; k++) {
      size_t c = axis >= 0 ? k / inner % ch : 0;
      float v = fabsf(wd[k]);
      am[c] = v > am[c] ? v : am[c];
    }
  }
  return QCAL_OK;
}

qcal_status qcal_qat_act_nodes(const qcal_graph *g, int **nodes, int *n) {
  *nodes = malloc((size_t)(g->nnodes ? g->nnodes : 1) * sizeof **nodes);
  if (!*nodes)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  *n = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (is_fq(g, i) && !on_weight(g, i))
      (*nodes)[(*n)++] = i;
  return QCAL_OK;
}

typedef struct export_state {
  int nq;
  qcal_qdq *q;
  int *fq, *reader, *slot;
  float **scales;
} export_state;

static void restore(qcal_graph *g, export_state *s) {
  for (int k = 0; k < s->nq; k++) {
    g->nodes[s->fq[k]].dead = false;
    g->nodes[s->reader[k]].in[s->slot[k]] = g->nodes[s->fq[k]].out[0];
    free(s->scales[k]);
  }
  free(s->q);
  free(s->fq);
  free(s->reader);
  free(s->slot);
  free(s->scales);
  qcal_graph_link(g);
}

qcal_status qcal_qat_save_onnx(qcal_graph *g, const char *path) {
  int nn = g->nnodes ? g->nnodes : 1;
  export_state s = {0};
  s.q = calloc((size_t)nn, sizeof *s.q);
  s.fq = calloc((size_t)nn, sizeof *s.fq);
  s.reader = calloc((size_t)nn, sizeof *s.reader);
  s.slot = calloc((size_t)nn, sizeof *s.slot);
  s.scales = calloc((size_t)nn, sizeof *s.scales);
  qcal_status st = QCAL_OK;
  if (!s.q || !s.fq || !s.reader || !s.slot || !s.scales)
    st = qcal_error(QCAL_ENOMEM, "out of memory");
  for (int i = 0; st == QCAL_OK && i < g->nnodes; i++) {
    if (!is_fq(g, i))
      continue;
    qcal_node *f = &g->nodes[i];
    int bits = (int)qcal_attr_int(f, "bits", 8), slot;
    if (bits != 8 || qcal_attr_int(f, "unsigned", 0)) {
      st = qcal_error(QCAL_EUNSUPPORTED,
                      "%s: '%s' is %d-bit; ONNX Q/DQ pairs are written for 8-bit formats only",
                      path, f->name, bits);
      break;
    }
    int r = reader_of(g, i, &slot);
    if (r < 0)
      continue;
    const qcal_value *a = qcal_in(g, f, 1);
    float *sc = malloc(a->numel * sizeof *sc);
    if (!sc) {
      st = qcal_error(QCAL_ENOMEM, "out of memory");
      break;
    }
    for (size_t c = 0; c < a->numel; c++) {
      float am = ((const float *)a->data)[c];
      sc[c] = am > QCAL_AMAX_EPSILON ? am / 127.0f : 1.0f;
    }
    int k = s.nq++;
    s.fq[k] = i, s.reader[k] = r, s.slot[k] = slot, s.scales[k] = sc;
    int axis = (int)qcal_attr_int(f, "axis", -1);
    s.q[k] = (qcal_qdq){.value = f->in[0],
                        .axis = axis >= 0 ? axis : QCAL_PER_TENSOR,
                        .nscale = (int)a->numel,
                        .scale = sc,
                        .nreaders = 1,
                        .reader_node = &s.reader[k],
                        .reader_slot = &s.slot[k]};
    g->nodes[r].in[slot] = f->in[0];
    f->dead = true;
  }
  if (st == QCAL_OK) {
    qcal_graph_link(g);
    /* any batch size in the file */
    qcal_value *in = &g->values[g->inputs[0]], *out = &g->values[g->outputs[0]];
    int64_t b_in = in->shape[0], b_out = out->shape[0];
    in->shape[0] = out->shape[0] = -1;
    st = qcal_onnx_save(g, s.q, s.nq, path);
    in->shape[0] = b_in;
    out->shape[0] = b_out;
  }
  restore(g, &s);
  return st;
}
