/* ONNX export: the graph IR (imported, or prepared: folded constants and
 * BatchNormalization, static shapes) written as a ModelProto through the
 * protobuf-c code generated from Debian's onnx.proto, with QuantizeLinear /
 * DequantizeLinear pairs inserted in front of chosen readers. The file is
 * written whole to a temporary name and renamed, so a failed export leaves
 * nothing behind. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph/internal.h"
#include "onnx.pb-c.h"
#include "qcal/escape.h"

/* Every allocation of one export, freed together. */
typedef struct arena {
  void **p;
  size_t n, cap;
} arena;

static void *ar_alloc(arena *a, size_t bytes) {
  if (a->n == a->cap) {
    size_t nc = a->cap ? 2 * a->cap : 256;
    void **np = realloc(a->p, nc * sizeof *np);
    if (!np)
      return NULL;
    a->p = np, a->cap = nc;
  }
  void *m = calloc(1, bytes ? bytes : 1);
  if (m)
    a->p[a->n++] = m;
  return m;
}

static char *ar_str(arena *a, const char *s) {
  char *d = ar_alloc(a, strlen(s) + 1);
  if (d)
    strcpy(d, s);
  return d;
}

static void ar_free(arena *a) {
  for (size_t i = 0; i < a->n; i++)
    free(a->p[i]);
  free(a->p);
}

#define NEW(a, T, init)                                                                            \
  ({                                                                                               \
    T *m_ = ar_alloc(a, sizeof(T));                                                                \
    if (m_)                                                                                        \
      *m_ = (T)init;                                                                               \
    m_;                                                                                            \
  })

static int onnx_dtype(qcal_dtype t) {
  switch (t) {
  case QCAL_DT_F32:
    return ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  case QCAL_DT_I64:
    return ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
  case QCAL_DT_I32:
    return ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
  case QCAL_DT_I8:
    return ONNX__TENSOR_PROTO__DATA_TYPE__INT8;
  case QCAL_DT_U8:
    return ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
  default:
    return ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
  }
}

/* A tensor (raw little-endian bytes, as x86 holds them). */
static Onnx__TensorProto *tensor(arena *a, const char *name, qcal_dtype dt, int ndim,
                                 const int64_t *shape, const void *data, size_t numel) {
  Onnx__TensorProto *t = NEW(a, Onnx__TensorProto, ONNX__TENSOR_PROTO__INIT);
  if (!t || !(t->name = ar_str(a, name)))
    return NULL;
  t->has_data_type = 1;
  t->data_type = onnx_dtype(dt);
  t->n_dims = (size_t)ndim;
  if (!(t->dims = ar_alloc(a, (size_t)(ndim ? ndim : 1) * sizeof *t->dims)))
    return NULL;
  memcpy(t->dims, shape, (size_t)ndim * sizeof *t->dims);
  size_t bytes = numel * qcal_dtype_size(dt);
  t->has_raw_data = 1;
  t->raw_data.len = bytes;
  if (!(t->raw_data.data = ar_alloc(a, bytes)))
    return NULL;
  if (bytes)
    memcpy(t->raw_data.data, data, bytes);
  return t;
}

static Onnx__ValueInfoProto *value_info(arena *a, const char *name, const qcal_value *v) {
  Onnx__ValueInfoProto *vi = NEW(a, Onnx__ValueInfoProto, ONNX__VALUE_INFO_PROTO__INIT);
  Onnx__TypeProto *tp = NEW(a, Onnx__TypeProto, ONNX__TYPE_PROTO__INIT);
  Onnx__TypeProto__Tensor *tt = NEW(a, Onnx__TypeProto__Tensor, ONNX__TYPE_PROTO__TENSOR__INIT);
  Onnx__TensorShapeProto *sh = NEW(a, Onnx__TensorShapeProto, ONNX__TENSOR_SHAPE_PROTO__INIT);
  if (!vi || !tp || !tt || !sh || !(vi->name = ar_str(a, name)))
    return NULL;
  vi->type = tp;
  tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  tp->tensor_type = tt;
  tt->has_elem_type = 1;
  tt->elem_type = onnx_dtype(v->dtype);
  tt->shape = sh;
  sh->n_dim = (size_t)v->ndim;
  if (!(sh->dim = ar_alloc(a, (size_t)(v->ndim ? v->ndim : 1) * sizeof *sh->dim)))
    return NULL;
  for (int d = 0; d < v->ndim; d++) {
    Onnx__TensorShapeProto__Dimension *dm =
        NEW(a, Onnx__TensorShapeProto__Dimension, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT);
    if (!dm)
      return NULL;
    if (v->shape[d] >= 0) {
      dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      dm->dim_value = v->shape[d];
    } else {
      char p[32];
      snprintf(p, sizeof p, "d%d", d);
      dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      if (!(dm->dim_param = ar_str(a, p)))
        return NULL;
    }
    sh->dim[d] = dm;
  }
  return vi;
}

/* Growing pointer list. */
typedef struct plist {
  void **p;
  size_t n, cap;
} plist;

static int push(plist *l, void *x) {
  if (!x)
    return -1;
  if (l->n == l->cap) {
    size_t nc = l->cap ? 2 * l->cap : 64;
    void **np = realloc(l->p, nc * sizeof *np);
    if (!np)
      return -1;
    l->p = np, l->cap = nc;
  }
  l->p[l->n++] = x;
  return 0;
}

typedef struct wctx {
  const qcal_graph *g;
  arena a;
  plist nodes, inits, ins, outs;
  char **vname;  /* file name of each value */
  bool *written; /* constant already an initializer */
  int opset;
} wctx;

static Onnx__NodeProto *node_new(wctx *c, const char *op, const char *name, int nin,
                                 const char *const *in, int nout, const char *const *out) {
  Onnx__NodeProto *np = NEW(&c->a, Onnx__NodeProto, ONNX__NODE_PROTO__INIT);
  if (!np || !(np->op_type = ar_str(&c->a, op)) || !(np->name = ar_str(&c->a, name)))
    return NULL;
  np->input = ar_alloc(&c->a, (size_t)(nin ? nin : 1) * sizeof(char *));
  np->output = ar_alloc(&c->a, (size_t)(nout ? nout : 1) * sizeof(char *));
  if (!np->input || !np->output)
    return NULL;
  np->n_input = (size_t)nin, np->n_output = (size_t)nout;
  for (int i = 0; i < nin; i++)
    if (!(np->input[i] = ar_str(&c->a, in[i] ? in[i] : "")))
      return NULL;
  for (int i = 0; i < nout; i++)
    if (!(np->output[i] = ar_str(&c->a, out[i])))
      return NULL;
  return np;
}

static int attr_push(wctx *c, Onnx__NodeProto *np, Onnx__AttributeProto *at) {
  Onnx__AttributeProto **na =
      ar_alloc(&c->a, (np->n_attribute + 1) * sizeof *na); /* few attributes per node */
  if (!na || !at)
    return -1;
  if (np->n_attribute)
    memcpy(na, np->attribute, np->n_attribute * sizeof *na);
  na[np->n_attribute++] = at;
  np->attribute = na;
  return 0;
}

static Onnx__AttributeProto *attr_int(wctx *c, const char *name, int64_t v) {
  Onnx__AttributeProto *at = NEW(&c->a, Onnx__AttributeProto, ONNX__ATTRIBUTE_PROTO__INIT);
  if (!at || !(at->name = ar_str(&c->a, name)))
    return NULL;
  at->has_type = 1, at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  at->has_i = 1, at->i = v;
  return at;
}

static Onnx__AttributeProto *attr_copy(wctx *c, const qcal_attr *q) {
  Onnx__AttributeProto *at = NEW(&c->a, Onnx__AttributeProto, ONNX__ATTRIBUTE_PROTO__INIT);
  if (!at || !(at->name = ar_str(&c->a, q->name)))
    return NULL;
  at->has_type = 1;
  switch (q->type) {
  case QCAL_ATTR_INT:
    at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    at->has_i = 1, at->i = q->i;
    break;
  case QCAL_ATTR_FLOAT:
    at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    at->has_f = 1, at->f = q->f;
    break;
  case QCAL_ATTR_INTS:
    at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    at->n_ints = (size_t)q->n;
    if (!(at->ints = ar_alloc(&c->a, (size_t)(q->n ? q->n : 1) * sizeof *at->ints)))
      return NULL;
    memcpy(at->ints, q->ints, (size_t)q->n * sizeof *at->ints);
    break;
  case QCAL_ATTR_FLOATS:
    at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
    at->n_floats = (size_t)q->n;
    if (!(at->floats = ar_alloc(&c->a, (size_t)(q->n ? q->n : 1) * sizeof *at->floats)))
      return NULL;
    memcpy(at->floats, q->floats, (size_t)q->n * sizeof *at->floats);
    break;
  case QCAL_ATTR_STRING:
    at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    at->has_s = 1;
    at->s.len = strlen(q->s);
    if (!(at->s.data = (uint8_t *)ar_str(&c->a, q->s)))
      return NULL;
    break;
  case QCAL_ATTR_TENSOR: {
    const qcal_value *v = &c->g->values[q->i];
    at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    if (!(at->t = tensor(&c->a, v->name, v->dtype, v->ndim, v->shape, v->data, v->numel)))
      return NULL;
    break;
  }
  }
  return at;
}

/* A file name no value of the graph and no earlier export name has. */
static char *fresh_name(wctx *c, const char *base, const char *suffix) {
  char buf[1200];
  for (int k = 0;; k++) {
    if (k)
      snprintf(buf, sizeof buf, "%.1000s%s_%d", base, suffix, k);
    else
      snprintf(buf, sizeof buf, "%.1000s%s", base, suffix);
    if (qcal_graph_find(c->g, buf) >= 0)
      continue;
    bool used = false;
    for (size_t i = 0; i < c->inits.n && !used; i++)
      used = !strcmp(((Onnx__TensorProto *)c->inits.p[i])->name, buf);
    for (size_t i = 0; i < c->nodes.n && !used; i++) {
      const Onnx__NodeProto *np = c->nodes.p[i];
      used = !strcmp(np->name, buf);
      for (size_t o = 0; o < np->n_output && !used; o++)
        used = !strcmp(np->output[o], buf);
    }
    if (!used)
      return ar_str(&c->a, buf);
  }
}

static qcal_status oom(void) {
  return qcal_error(QCAL_ENOMEM, "out of memory");
}

/* Inputs ONNX types as int64 (shapes, axes, pads, slice bounds), which TF.js
 * graphs hold as int32: written widened. */
static bool int64_slot(qcal_graph_op op, int slot) {
  switch (op) {
  case QCAL_GOP_Reshape:
  case QCAL_GOP_Expand:
  case QCAL_GOP_Pad:
  case QCAL_GOP_Squeeze:
  case QCAL_GOP_Unsqueeze:
  case QCAL_GOP_Split:
  case QCAL_GOP_ReduceSum:
  case QCAL_GOP_ReduceMean:
  case QCAL_GOP_ReduceMax:
    return slot == 1;
  case QCAL_GOP_Slice:
    return slot >= 1;
  case QCAL_GOP_Resize:
    return slot == 3;
  case QCAL_GOP_ConstantOfShape:
    return slot == 0;
  default:
    return false;
  }
}

static qcal_status init_value(wctx *c, int v, bool widen) {
  if (v < 0 || c->written[v] || c->g->values[v].kind != QCAL_VAL_CONST)
    return QCAL_OK;
  const qcal_value *val = &c->g->values[v];
  c->written[v] = true;
  if (widen && val->dtype == QCAL_DT_I32) {
    int64_t *w = ar_alloc(&c->a, (val->numel ? val->numel : 1) * sizeof *w);
    if (!w)
      return oom();
    for (size_t k = 0; k < val->numel; k++)
      w[k] = ((const int32_t *)val->data)[k];
    if (push(&c->inits,
             tensor(&c->a, c->vname[v], QCAL_DT_I64, val->ndim, val->shape, w, val->numel)))
      return oom();
    return QCAL_OK;
  }
  if (push(&c->inits,
           tensor(&c->a, c->vname[v], val->dtype, val->ndim, val->shape, val->data, val->numel)))
    return oom();
  return QCAL_OK;
}

/* A constant int64 initializer made for an opset-13 input form. */
static char *ints_init(wctx *c, const char *base, const char *suffix, const int64_t *x, int n) {
  char *nm = fresh_name(c, base, suffix);
  int64_t shape[1] = {n};
  if (!nm || push(&c->inits, tensor(&c->a, nm, QCAL_DT_I64, 1, shape, x, (size_t)n)))
    return NULL;
  return nm;
}

/* Opset < 13 forms that opset 13 moved from attributes to inputs. */
static qcal_status upgrade(wctx *c, const qcal_node *n, const char **in, int *nin, bool *skip) {
  const char *an = NULL;
  int slot = 1;
  switch (n->op) {
  case QCAL_GOP_Squeeze:
  case QCAL_GOP_Unsqueeze:
  case QCAL_GOP_ReduceSum:
    an = "axes";
    break;
  case QCAL_GOP_Split:
    an = "split";
    break;
  case QCAL_GOP_Softmax:
  case QCAL_GOP_Upsample: {
    char d[160];
    return qcal_error(QCAL_EUNSUPPORTED,
                      "%s: %s: opset %d semantics cannot be written at opset 13; re-export the "
                      "model at opset 13 or later",
                      c->g->path, qcal_node_desc(c->g, n, d, sizeof d), c->g->opset);
  }
  default:
    return QCAL_OK;
  }
  for (int k = 0; k < n->nattr; k++)
    if (!strcmp(n->attr[k].name, an) && n->attr[k].type == QCAL_ATTR_INTS) {
      skip[k] = true;
      while (*nin < slot)
        in[(*nin)++] = "";
      if (!(in[slot] = ints_init(c, n->name, an[0] == 'a' ? "_axes" : "_split", n->attr[k].ints,
                                 n->attr[k].n)))
        return oom();
      *nin = slot + 1;
    }
  return QCAL_OK;
}

static qcal_status emit_qdq(wctx *c, const qcal_qdq *q, char **dq_name) {
  const char *base = c->vname[q->value];
  size_t ns = (size_t)q->nscale;
  int8_t *zp = ar_alloc(&c->a, ns);
  char *sn = fresh_name(c, base, "_scale");
  if (!zp || !sn)
    return oom();
  int64_t shape[1] = {(int64_t)ns};
  int sd = q->axis == QCAL_PER_TENSOR ? 0 : 1;
  if (push(&c->inits, tensor(&c->a, sn, QCAL_DT_F32, sd, shape, q->scale, ns)))
    return oom();
  char *zn = fresh_name(c, base, "_zero_point");
  if (!zn || push(&c->inits, tensor(&c->a, zn, QCAL_DT_I8, sd, shape, zp, ns)))
    return oom();
  char *qn = fresh_name(c, base, "_quantized");
  char *qnode = fresh_name(c, base, "_QuantizeLinear");
  if (!qn || !qnode)
    return oom();
  const char *qin[3] = {base, sn, zn};
  Onnx__NodeProto *qp = node_new(c, "QuantizeLinear", qnode, 3, qin, 1, (const char *const *)&qn);
  if (!qp || push(&c->nodes, qp))
    return oom();
  char *dn = fresh_name(c, base, "_dequantized");
  char *dnode = fresh_name(c, base, "_DequantizeLinear");
  if (!dn || !dnode)
    return oom();
  const char *din[3] = {qn, sn, zn};
  Onnx__NodeProto *dp = node_new(c, "DequantizeLinear", dnode, 3, din, 1, (const char *const *)&dn);
  if (!dp || push(&c->nodes, dp))
    return oom();
  if (sd && (attr_push(c, qp, attr_int(c, "axis", q->axis)) ||
             attr_push(c, dp, attr_int(c, "axis", q->axis))))
    return oom();
  *dq_name = dn;
  return QCAL_OK;
}

const char *qcal_onnx_value_name(const qcal_graph *g, int v, char *buf, size_t cap) {
  const qcal_value *val = &g->values[v];
  const char *m = qcal_value_model_name(g, val, buf, cap);
  if (!strcmp(m, val->name))
    return m;
  /* a derived value keeps its IR name where its model name is taken */
  if (qcal_graph_find(g, m) >= 0)
    return val->name;
  char ob[1100];
  for (int u = 0; u < v; u++)
    if (!strcmp(qcal_value_model_name(g, &g->values[u], ob, sizeof ob), m))
      return val->name;
  return m;
}

/* Max(x, a constant of zeros no larger than x): a Relu (graph/pass_absorb.c
 * writes every Relu it may shift so; one it did not shift is written back). */
static bool zero_floor(const qcal_graph *g, const qcal_node *n) {
  if (n->op != QCAL_GOP_Max || n->nin != 2 || n->in[0] < 0 || n->in[1] < 0)
    return false;
  const qcal_value *x = &g->values[n->in[0]], *f = &g->values[n->in[1]];
  if (f->kind != QCAL_VAL_CONST || f->dtype != QCAL_DT_F32 || !f->data ||
      g->values[n->out[0]].numel != x->numel)
    return false;
  for (size_t e = 0; e < f->numel; e++)
    if (((const float *)f->data)[e] != 0.0f)
      return false;
  return true;
}

static qcal_status build(wctx *c, const qcal_qdq *q, int nq, Onnx__ModelProto *m) {
  const qcal_graph *g = c->g;
  c->opset = g->opset < 13 ? 13 : g->opset;
  for (int v = 0; v < g->nvalues; v++) {
    char nb[1100];
    if (!(c->vname[v] = ar_str(&c->a, qcal_onnx_value_name(g, v, nb, sizeof nb))))
      return oom();
  }
  for (int k = 0; k < nq; k++)
    if (q[k].value < 0 || q[k].value >= g->nvalues || q[k].nscale < 1 ||
        (q[k].axis != QCAL_PER_TENSOR &&
         (q[k].axis < 0 || q[k].axis >= g->values[q[k].value].ndim ||
          g->values[q[k].value].shape[q[k].axis] != q[k].nscale)))
      return qcal_error(QCAL_EINVAL, "%s: Q/DQ point %d does not fit its value", g->path, k);
  char **dq = ar_alloc(&c->a, (size_t)(nq ? nq : 1) * sizeof *dq);
  if (!dq)
    return oom();
  for (int i = 0; i < g->ninputs; i++) {
    int v = g->inputs[i];
    if (push(&c->ins, value_info(&c->a, c->vname[v], &g->values[v])))
      return oom();
  }
  for (int i = 0; i < g->nnodes; i++) {
    const qcal_node *n = &g->nodes[i];
    if (n->dead)
      continue;
    if (n->x.act != QCAL_ACT_NONE || n->x.sum_in >= 0) {
      char d[160];
      return qcal_error(QCAL_EINVAL,
                        "%s: %s carries a fused activation; export needs a graph "
                        "prepared without fusion",
                        g->path, qcal_node_desc(g, n, d, sizeof d));
    }
    if (qcal_op_infos[n->op].flags & QCAL_OPF_LOWERED) {
      char d[160];
      return qcal_error(QCAL_EINVAL,
                        "%s: %s is an execution op of engine int8; export needs a graph "
                        "prepared for the qdq engine",
                        g->path, qcal_node_desc(g, n, d, sizeof d));
    }
    const char *in[1100];
    int nin = n->nin;
    const char *op = qcal_op_infos[n->op].name;
    if (zero_floor(g, n)) /* bias absorption's form where nothing was absorbed */
      op = "Relu", nin = 1;
    if (nin > 1024)
      return qcal_error(QCAL_EFORMAT, "%s: node '%s' has too many inputs", g->path, n->name);
    for (int k = 0; k < nin; k++) {
      int v = n->in[k];
      in[k] = v >= 0 ? c->vname[v] : "";
      QCAL_TRY(init_value(c, v, int64_slot(n->op, k)));
      for (int p = 0; p < nq && v >= 0; p++) {
        bool reads = false;
        for (int r = 0; r < q[p].nreaders; r++)
          reads |= q[p].reader_node[r] == i && q[p].reader_slot[r] == k;
        if (!reads || q[p].value != v)
          continue;
        if (!dq[p])
          QCAL_TRY(emit_qdq(c, &q[p], &dq[p]));
        in[k] = dq[p];
      }
    }
    bool skip[256] = {0};
    if (g->opset < 13)
      QCAL_TRY(upgrade(c, n, in, &nin, skip));
    const char *out[64];
    int nout = n->nout > 64 ? 64 : n->nout;
    for (int k = 0; k < nout; k++)
      out[k] = n->out[k] >= 0 ? c->vname[n->out[k]] : "";
    Onnx__NodeProto *np = node_new(c, op, n->name, nin, in, nout, out);
    if (!np || push(&c->nodes, np))
      return oom();
    for (int k = 0; k < n->nattr; k++) {
      if (k < 256 && skip[k])
        continue;
      /* attributes the op never reads (legacy ones refused at import) */
      if (attr_push(c, np, attr_copy(c, &n->attr[k])))
        return oom();
    }
  }
  for (int i = 0; i < g->noutputs; i++) {
    int v = g->outputs[i];
    QCAL_TRY(init_value(c, v, false)); /* an output folded to a constant */
    if (push(&c->outs, value_info(&c->a, c->vname[v], &g->values[v])))
      return oom();
  }
  Onnx__GraphProto *gp = NEW(&c->a, Onnx__GraphProto, ONNX__GRAPH_PROTO__INIT);
  Onnx__OperatorSetIdProto *os =
      NEW(&c->a, Onnx__OperatorSetIdProto, ONNX__OPERATOR_SET_ID_PROTO__INIT);
  Onnx__OperatorSetIdProto **osl = ar_alloc(&c->a, sizeof *osl);
  if (!gp || !os || !osl || !(os->domain = ar_str(&c->a, "")) ||
      !(gp->name = ar_str(&c->a, "qcal")) || !(m->producer_name = ar_str(&c->a, "qcal")))
    return oom();
  os->has_version = 1, os->version = c->opset;
  osl[0] = os;
  m->has_ir_version = 1, m->ir_version = 8;
  m->n_opset_import = 1, m->opset_import = osl;
  m->graph = gp;
  gp->n_node = c->nodes.n, gp->node = (Onnx__NodeProto **)c->nodes.p;
  gp->n_initializer = c->inits.n, gp->initializer = (Onnx__TensorProto **)c->inits.p;
  gp->n_input = c->ins.n, gp->input = (Onnx__ValueInfoProto **)c->ins.p;
  gp->n_output = c->outs.n, gp->output = (Onnx__ValueInfoProto **)c->outs.p;
  return QCAL_OK;
}

qcal_status qcal_onnx_save(const qcal_graph *g, const qcal_qdq *q, int nq, const char *path) {
  char pb[600];
  struct stat sb;
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
    return qcal_error(QCAL_EINVAL, "%s: is a folder; give a file name for the ONNX model",
                      qcal_escape_text(path, pb, sizeof pb));
  wctx c = {.g = g};
  Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
  c.vname = calloc((size_t)g->nvalues + 1, sizeof *c.vname);
  c.written = calloc((size_t)g->nvalues + 1, sizeof *c.written);
  qcal_status st = c.vname && c.written ? build(&c, q, nq, &m) : oom();
  uint8_t *buf = NULL;
  size_t len = 0;
  if (!st) {
    len = onnx__model_proto__get_packed_size(&m);
    if (!(buf = malloc(len ? len : 1)))
      st = oom();
    else if (onnx__model_proto__pack(&m, buf) != len)
      st = qcal_error(QCAL_ENOMEM, "%s: protobuf packing failed", path);
  }
  if (!st) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    bool ok = f && fwrite(buf, 1, len, f) == len;
    ok = f && fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
      st = qcal_error(QCAL_EIO, "%s: cannot write: %s", qcal_escape_text(path, pb, sizeof pb),
                      strerror(errno));
      unlink(tmp);
    }
  }
  free(buf);
  free(c.nodes.p), free(c.inits.p), free(c.ins.p), free(c.outs.p);
  free(c.vname), free(c.written);
  ar_free(&c.a);
  return st;
}
