/* From an imported graph to a runnable one: topological order, dangling and
 * cycle checks, shape inference, constant folding (shape sub-graphs become
 * constants once the input shape is fixed), BatchNormalization folding,
 * fusion, and the execution plan. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "qcal/escape.h"

const qcal_op_fn qcal_op_infer[QCAL_GOP_COUNT] = {
#define QCAL_OP(id, name, min_in, max_in, min_out, max_out, flags, infer, fwd, wslot, waxis)       \
  [QCAL_GOP_##id] = infer,
#include "graph/ops.inc"
#undef QCAL_OP
};
const qcal_op_fn qcal_op_fwd[QCAL_GOP_COUNT] = {
#define QCAL_OP(id, name, min_in, max_in, min_out, max_out, flags, infer, fwd, wslot, waxis)       \
  [QCAL_GOP_##id] = fwd,
#include "graph/ops.inc"
#undef QCAL_OP
};

qcal_status qcal_node_error(qcal_graph *g, const qcal_node *n, qcal_status st, const char *fmt,
                            ...) {
  char msg[512], desc[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return qcal_error(st, "%s: %s: %s", g->path, qcal_node_desc(g, n, desc, sizeof desc), msg);
}

qcal_status qcal_set_out(qcal_graph *g, const qcal_node *n, int i, qcal_dtype dt, int ndim,
                         const int64_t *shape) {
  qcal_value *v = qcal_out(g, n, i);
  if (!v)
    return QCAL_OK;
  if (ndim > QCAL_MAX_DIMS)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "output has %d dims (at most %d)", ndim,
                           QCAL_MAX_DIMS);
  size_t numel = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0)
      return qcal_node_error(g, n, QCAL_EFORMAT, "output dim %d is negative (%lld)", d,
                             (long long)shape[d]);
    if (qcal_mul_size(numel, (size_t)shape[d], &numel) || numel > ((size_t)1 << 40))
      return qcal_node_error(g, n, QCAL_ENOMEM, "output would hold more than 2^40 elements");
  }
  v->dtype = dt;
  v->ndim = ndim;
  memcpy(v->shape, shape, (size_t)ndim * sizeof *shape);
  v->numel = numel;
  return QCAL_OK;
}

qcal_status qcal_want_f32(qcal_graph *g, const qcal_node *n, int i) {
  const qcal_value *v = qcal_in(g, n, i);
  if (v && v->dtype != QCAL_DT_F32)
    return qcal_node_error(g, n, QCAL_EDTYPE, "input %d ('%s') is %s; only float32 is supported", i,
                           v->name, qcal_dtype_name(v->dtype));
  return QCAL_OK;
}

qcal_status qcal_const_ints(qcal_graph *g, const qcal_node *n, int i, int64_t *out, int max,
                            int *count) {
  const qcal_value *v = qcal_in(g, n, i);
  if (!v) {
    *count = 0;
    return QCAL_OK;
  }
  if (v->kind != QCAL_VAL_CONST)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED,
                           "input %d ('%s') must be constant once the input shape is fixed", i,
                           v->name);
  if (v->dtype != QCAL_DT_I64 && v->dtype != QCAL_DT_I32)
    return qcal_node_error(g, n, QCAL_EDTYPE, "input %d ('%s') is %s, expected int64", i, v->name,
                           qcal_dtype_name(v->dtype));
  if (v->numel > (size_t)max)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "input %d ('%s') has %zu elements (at most %d)",
                           i, v->name, v->numel, max);
  for (size_t k = 0; k < v->numel; k++)
    out[k] =
        v->dtype == QCAL_DT_I64 ? ((const int64_t *)v->data)[k] : ((const int32_t *)v->data)[k];
  *count = (int)v->numel;
  return QCAL_OK;
}

qcal_status qcal_const_float(qcal_graph *g, const qcal_node *n, int i, float def, float *out) {
  const qcal_value *v = qcal_in(g, n, i);
  *out = def;
  if (!v)
    return QCAL_OK;
  if (v->kind != QCAL_VAL_CONST)
    return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "input %d ('%s') must be a constant", i,
                           v->name);
  if (v->numel != 1)
    return qcal_node_error(g, n, QCAL_EFORMAT, "input %d ('%s') must be a scalar", i, v->name);
  *out = (float)qcal_value_get(v, 0);
  return QCAL_OK;
}

qcal_status qcal_norm_axis(qcal_graph *g, const qcal_node *n, int64_t axis, int ndim, int *out) {
  if (axis < -ndim || axis >= (ndim ? ndim : 1))
    return qcal_node_error(g, n, QCAL_EFORMAT, "axis %lld is out of range for rank %d",
                           (long long)axis, ndim);
  *out = (int)(axis < 0 ? axis + ndim : axis);
  return QCAL_OK;
}

double qcal_value_get(const qcal_value *v, size_t k) {
  switch (v->dtype) {
  case QCAL_DT_F32:
    return ((const float *)v->data)[k];
  case QCAL_DT_I64:
    return (double)((const int64_t *)v->data)[k];
  case QCAL_DT_I32:
    return ((const int32_t *)v->data)[k];
  case QCAL_DT_I8:
    return ((const int8_t *)v->data)[k];
  case QCAL_DT_U8:
  case QCAL_DT_BOOL:
    return ((const uint8_t *)v->data)[k];
  default:
    return 0;
  }
}

void qcal_value_put(qcal_value *v, size_t k, double x) {
  switch (v->dtype) {
  case QCAL_DT_F32:
    ((float *)v->data)[k] = (float)x;
    break;
  case QCAL_DT_I64:
    ((int64_t *)v->data)[k] = (int64_t)x;
    break;
  case QCAL_DT_I32:
    ((int32_t *)v->data)[k] = (int32_t)x;
    break;
  case QCAL_DT_I8:
    ((int8_t *)v->data)[k] = (int8_t)x;
    break;
  case QCAL_DT_U8:
    ((uint8_t *)v->data)[k] = (uint8_t)x;
    break;
  case QCAL_DT_BOOL:
    ((uint8_t *)v->data)[k] = x != 0;
    break;
  default:
    break;
  }
}

void qcal_strides(int ndim, const int64_t *shape, int64_t *st) {
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    st[d] = s;
    s *= shape[d];
  }
}

static qcal_status bind(qcal_graph *g, int i, int ndim, const int64_t *shape, bool any) {
  if (i < 0 || i >= g->ninputs)
    return qcal_error(QCAL_EINVAL, "%s: no input %d", g->path, i);
  qcal_value *v = &g->values[g->inputs[i]];
  char want[160] = "[", *p = want + 1;
  for (int d = 0; d < v->ndim; d++) {
    if (v->shape[d] < 0)
      p += snprintf(p, (size_t)(want + sizeof want - p), "%s?", d ? "," : "");
    else
      p += snprintf(p, (size_t)(want + sizeof want - p), "%s%lld", d ? "," : "",
                    (long long)v->shape[d]);
  }
  snprintf(p, (size_t)(want + sizeof want - p), "]");
  bool ok = ndim == v->ndim;
  for (int d = 0; ok && d < ndim; d++)
    ok = shape[d] >= 0 && (any || v->shape[d] < 0 || v->shape[d] == shape[d]);
  if (!ok) {
    char got[160] = "[", *q = got + 1, name[96];
    for (int d = 0; d < ndim && d < QCAL_MAX_DIMS; d++)
      q += snprintf(q, (size_t)(got + sizeof got - q), "%s%lld", d ? "," : "", (long long)shape[d]);
    snprintf(q, (size_t)(got + sizeof got - q), "]");
    return qcal_error(QCAL_EINVAL, "%s: input '%s' expects shape %s, got %s", g->path,
                      qcal_escape_text(v->name, name, sizeof name), want, got);
  }
  size_t numel = 1;
  for (int d = 0; d < ndim; d++) {
    v->shape[d] = shape[d];
    if (qcal_mul_size(numel, (size_t)shape[d], &numel))
      return qcal_error(QCAL_ENOMEM, "%s: input shape too large", g->path);
  }
  v->numel = numel;
  return QCAL_OK;
}

qcal_status qcal_graph_bind_input(qcal_graph *g, int i, int ndim, const int64_t *shape) {
  return bind(g, i, ndim, shape, false);
}

qcal_status qcal_graph_resize_input(qcal_graph *g, int i, int ndim, const int64_t *shape) {
  if (g->prepared)
    return qcal_error(QCAL_EINVAL, "%s: input %d resized after prepare", g->path, i);
  return bind(g, i, ndim, shape, true);
}

qcal_status qcal_graph_freeze_input(qcal_graph *g, int i, const void *data) {
  if (i < 0 || i >= g->ninputs || g->prepared)
    return qcal_error(QCAL_EINVAL, "%s: cannot freeze input %d", g->path, i);
  qcal_value *v = &g->values[g->inputs[i]];
  for (int d = 0; d < v->ndim; d++)
    if (v->shape[d] < 0)
      return qcal_error(QCAL_EINVAL, "%s: bind input %d's shape before freezing it", g->path, i);
  size_t bytes = v->numel * qcal_dtype_size(v->dtype);
  void *c = qcal_alloc(bytes ? bytes : 1);
  if (!c)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  if (bytes)
    memcpy(c, data, bytes);
  v->data = c;
  v->kind = QCAL_VAL_CONST;
  memmove(g->inputs + i, g->inputs + i + 1, (size_t)(g->ninputs - i - 1) * sizeof *g->inputs);
  g->ninputs--;
  return QCAL_OK;
}

/* Kahn's algorithm: nodes in an order where every input is produced first.
 * A value no node, input or initializer produces, or a cycle, is an error. */
static qcal_status topo_sort(qcal_graph *g) {
  int nn = g->nnodes, nv = g->nvalues;
  int *prod = malloc((size_t)(nv ? nv : 1) * sizeof *prod);
  int *indeg = calloc((size_t)(nn ? nn : 1), sizeof *indeg);
  int *order = malloc((size_t)(nn ? nn : 1) * sizeof *order);
  int *users_n = calloc((size_t)(nv ? nv : 1), sizeof *users_n);
  qcal_status st = QCAL_OK;
  if (!prod || !indeg || !order || !users_n) {
    st = qcal_error(QCAL_ENOMEM, "out of memory");
    goto done;
  }
  for (int v = 0; v < nv; v++)
    prod[v] = -1;
  for (int i = 0; i < nn; i++)
    for (int o = 0; o < g->nodes[i].nout; o++) {
      int v = g->nodes[i].out[o];
      if (v < 0)
        continue;
      if (prod[v] >= 0 || g->values[v].kind != QCAL_VAL_ACT) {
        st = qcal_node_error(g, &g->nodes[i], QCAL_EFORMAT,
                             "writes '%s', which another node, an input or an initializer "
                             "already defines",
                             g->values[v].name);
        goto done;
      }
      prod[v] = i;
    }
  for (int i = 0; i < nn; i++)
    for (int k = 0; k < g->nodes[i].nin; k++) {
      int v = g->nodes[i].in[k];
      if (v < 0)
        continue;
      if (g->values[v].kind == QCAL_VAL_ACT && prod[v] < 0) {
        st = qcal_node_error(g, &g->nodes[i], QCAL_EFORMAT,
                             "reads '%s', which no node, input or initializer produces",
                             g->values[v].name);
        goto done;
      }
      if (prod[v] >= 0)
        indeg[i]++;
    }
  for (int k = 0; k < g->noutputs; k++) {
    int v = g->outputs[k];
    if (g->values[v].kind == QCAL_VAL_ACT && prod[v] < 0) {
      char name[96];
      st = qcal_error(QCAL_EFORMAT, "%s: graph output '%s' is produced by no node", g->path,
                      qcal_escape_text(g->values[v].name, name, sizeof name));
      goto done;
    }
  }
  /* consumers per value: CSR over (value -> nodes) */
  int *start = calloc((size_t)nv + 1, sizeof *start), *adj = NULL;
  if (!start) {
    st = qcal_error(QCAL_ENOMEM, "out of memory");
    goto done;
  }
  int total = 0;
  for (int i = 0; i < nn; i++)
    for (int k = 0; k < g->nodes[i].nin; k++)
      if (g->nodes[i].in[k] >= 0)
        start[g->nodes[i].in[k] + 1]++, total++;
  for (int v = 0; v < nv; v++)
    start[v + 1] += start[v];
  adj = malloc((size_t)(total ? total : 1) * sizeof *adj);
  if (!adj) {
    free(start);
    st = qcal_error(QCAL_ENOMEM, "out of memory");
    goto done;
  }
  for (int i = 0; i < nn; i++)
    for (int k = 0; k < g->nodes[i].nin; k++) {
      int v = g->nodes[i].in[k];
      if (v >= 0)
        adj[start[v] + users_n[v]++] = i;
    }
  int head = 0, tail = 0;
  for (int i = 0; i < nn; i++)
    if (!indeg[i])
      order[tail++] = i;
  while (head < tail) {
    int i = order[head++];
    for (int o = 0; o < g->nodes[i].nout; o++) {
      int v = g->nodes[i].out[o];
      if (v < 0)
        continue;
      for (int e = start[v]; e < start[v + 1]; e++)
        if (--indeg[adj[e]] == 0)
          order[tail++] = adj[e];
    }
  }
  free(start);
  free(adj);
  if (tail < nn) {
    for (int i = 0; i < nn; i++)
      if (indeg[i] > 0) {
        st = qcal_node_error(g, &g->nodes[i], QCAL_EFORMAT,
                             "is part of a cycle (its inputs depend on its own output)");
        goto done;
      }
  }
  qcal_node *sorted = malloc((size_t)(nn ? nn : 1) * sizeof *sorted);
  if (!sorted) {
    st = qcal_error(QCAL_ENOMEM, "out of memory");
    goto done;
  }
  for (int i = 0; i < nn; i++)
    sorted[i] = g->nodes[order[i]];
  free(g->nodes);
  g->nodes = sorted;
  g->cap_nodes = nn;
done:
  free(prod);
  free(indeg);
  free(order);
  free(users_n);
  return st;
}

/* Producers and live consumer counts; nodes nobody needs are dropped. */
static void link_values(qcal_graph *g) {
  for (int v = 0; v < g->nvalues; v++) {
    g->values[v].producer = -1;
    g->values[v].consumers = 0;
  }
  for (int k = 0; k < g->noutputs; k++)
    g->values[g->outputs[k]].is_output = true;
  /* backwards: a node is live when one of its outputs is consumed */
  for (int i = g->nnodes - 1; i >= 0; i--) {
    qcal_node *n = &g->nodes[i];
    if (n->dead)
      continue;
    bool live = false;
    for (int o = 0; o < n->nout; o++) {
      const qcal_value *v = qcal_out(g, n, o);
      live |= v && (v->consumers > 0 || v->is_output);
    }
    if (!live) {
      n->dead = true;
      continue;
    }
    for (int k = 0; k < n->nin; k++)
      if (n->in[k] >= 0)
        g->values[n->in[k]].consumers++;
    if (n->sum_in >= 0)
      g->values[n->sum_in].consumers++;
  }
  for (int i = 0; i < g->nnodes; i++)
    if (!g->nodes[i].dead)
      for (int o = 0; o < g->nodes[i].nout; o++)
        if (g->nodes[i].out[o] >= 0)
          g->values[g->nodes[i].out[o]].producer = i;
}

/* Run a node whose inputs are all constant; its outputs become constants. */
static qcal_status fold(qcal_graph *g, qcal_node *n) {
  for (int o = 0; o < n->nout; o++) {
    qcal_value *v = qcal_out(g, n, o);
    if (!v)
      continue;
    size_t bytes = v->numel * qcal_dtype_size(v->dtype);
    if (bytes > ((size_t)1 << 30))
      return qcal_node_error(g, n, QCAL_ENOMEM, "folding would make a %zu-byte constant", bytes);
    v->data = qcal_alloc(bytes ? bytes : 1);
    if (!v->data)
      return qcal_node_error(g, n, QCAL_ENOMEM, "out of memory folding %zu bytes", bytes);
    v->kind = QCAL_VAL_CONST;
  }
  QCAL_TRY(qcal_op_fwd[n->op](g, n));
  n->dead = true;
  if (n->exec_free && n->exec)
    n->exec_free(n->exec);
  n->exec = NULL;
  return QCAL_OK;
}

static bool foldable(qcal_graph *g, const qcal_node *n) {
  if (n->op == QCAL_GOP_Shape || n->op == QCAL_GOP_Constant)
    return true;
  if (!(qcal_op_infos[n->op].flags & QCAL_OPF_FOLD))
    return false;
  for (int k = 0; k < n->nin; k++) {
    const qcal_value *v = qcal_in(g, n, k);
    if (v && v->kind != QCAL_VAL_CONST)
      return false;
  }
  return true;
}

qcal_status qcal_graph_prepare(qcal_graph *g, const qcal_graph_opts *o) {
  qcal_graph_opts def = {0};
  if (!o)
    o = &def;
  if (g->prepared)
    return qcal_error(QCAL_EINVAL, "%s: graph already prepared", g->path);
  qcal_fq_free(g);
  g->threads = o->threads;
  g->reference_conv =
      o->reference_conv || (getenv("QCAL_CONV_REF") && *getenv("QCAL_CONV_REF") == '1');
  g->plain_values = o->plain_values || g->reference_conv || getenv("QCAL_PLAIN_VALUES");
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *n = &g->nodes[i];
    const qcal_op_info *info = &qcal_op_infos[n->op];
    int nin = n->nin;
    while (nin > 0 && n->in[nin - 1] < 0)
      nin--;
    int nout = n->nout;
    while (nout > 0 && n->out[nout - 1] < 0)
      nout--;
    if (nin < info->min_in || n->nin > info->max_in || nout < info->min_out || nout > info->max_out)
      return qcal_node_error(
          g, n, n->nin > info->max_in || nout > info->max_out ? QCAL_EUNSUPPORTED : QCAL_EFORMAT,
          "has %d inputs and %d outputs; the op takes %d..%d and %d..%d", n->nin, n->nout,
          info->min_in, info->max_in, info->min_out, info->max_out);
    for (int k = 0; k < info->min_in; k++)
      if (n->in[k] < 0)
        return qcal_node_error(g, n, QCAL_EFORMAT, "required input %d is missing", k);
  }
  for (int k = 0; k < g->ninputs; k++) {
    const qcal_value *v = &g->values[g->inputs[k]];
    for (int d = 0; d < v->ndim; d++)
      if (v->shape[d] < 0) {
        char name[96];
        return qcal_error(QCAL_EINVAL, "%s: input '%s' has a symbolic dim %d; give its shape",
                          g->path, qcal_escape_text(v->name, name, sizeof name), d);
      }
  }
  QCAL_TRY(topo_sort(g));
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *n = &g->nodes[i];
    QCAL_TRY(qcal_op_infer[n->op](g, n));
    for (int a = 0; a < n->nattr; a++)
      if (!n->attr[a].used)
        return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "attribute '%s' is not supported",
                               n->attr[a].name);
    if (foldable(g, n))
      QCAL_TRY(fold(g, n));
  }
  link_values(g);
  if (!o->no_fold_bn)
    QCAL_TRY(qcal_graph_fold_bn(g));
  link_values(g);
  if (o->engine == QCAL_ENGINE_FP32) {
    QCAL_TRY(qcal_engine_fp32(g));
    link_values(g);
  }
  if (!o->no_fuse)
    QCAL_TRY(qcal_graph_fuse(g));
  link_values(g);
  if (o->engine == QCAL_ENGINE_INT8) {
    QCAL_TRY(qcal_engine_int8(g, &g->int8_nodes, &g->int8_candidates));
    link_values(g);
  }
  /* Q/DQ of constant weights the engines left in place run once, here: the
   * fake-quantized weight becomes a constant (the same values every run) */
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < g->nnodes; i++) {
      qcal_node *n = &g->nodes[i];
      if (n->dead || n->op != (pass ? QCAL_GOP_DequantizeLinear : QCAL_GOP_QuantizeLinear))
        continue;
      bool all = true;
      for (int k = 0; k < n->nin; k++)
        all &= !qcal_in(g, n, k) || qcal_in(g, n, k)->kind == QCAL_VAL_CONST;
      if (all && !qcal_out(g, n, 0)->is_output)
        QCAL_TRY(fold(g, n));
    }
    link_values(g);
  }
  QCAL_TRY(qcal_plan_make(g));
  qcal_graph_relocate(g);
  g->prepared = true;
  return QCAL_OK;
}
