/* The execution plan: one buffer per live activation (reshape-like ops alias
 * their input), then nodes in order. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph/internal.h"

typedef struct plan {
  int nbufs;
  void **bufs;
} plan;

void qcal_plan_free(qcal_graph *g) {
  plan *p = g->plan;
  if (!p)
    return;
  for (int i = 0; i < p->nbufs; i++)
    qcal_free(p->bufs[i]);
  free(p->bufs);
  free(p);
  g->plan = NULL;
}

static bool aliases(qcal_graph_op op) {
  return op == QCAL_GOP_Reshape || op == QCAL_GOP_Flatten || op == QCAL_GOP_Squeeze ||
         op == QCAL_GOP_Unsqueeze || op == QCAL_GOP_Identity || op == QCAL_GOP_Dropout;
}

static qcal_status alloc_value(qcal_graph *g, plan *p, qcal_value *v, size_t blocked) {
  size_t bytes = v->numel * qcal_dtype_size(v->dtype);
  bytes = blocked > bytes ? blocked : bytes;
  void *b = qcal_alloc(bytes ? bytes : 64);
  if (!b)
    return qcal_error(QCAL_ENOMEM, "%s: out of memory for '%s' (%zu bytes)", g->path, v->name,
                      bytes);
  p->bufs[p->nbufs++] = b;
  v->data = b;
  return QCAL_OK;
}

/* A MaxPool can take its input's layout when it is channels last, or (in
 * float) a block layout over whole blocks. */
static bool pool_takes(qcal_graph *g, const qcal_node *n, const void *fmt) {
  const qcal_value *x = qcal_in(g, n, 0);
  if ((n->op != QCAL_GOP_MaxPool && n->op != QCAL_GOP_Int8MaxPool) || x->ndim != 4 || !fmt)
    return false;
  if (qcal_fmt_nhwc(fmt))
    return true;
  int B = qcal_fmt_cblock(fmt);
  return n->op == QCAL_GOP_MaxPool && B > 0 && x->shape[1] % B == 0;
}

/* ... and write the layout a convolution reading its output wants, when
 * that is the same kind. */
static const void *pool_out_fmt(qcal_graph *g, const qcal_node *n, const void **src) {
  const qcal_value *x = qcal_in(g, n, 0);
  for (int r = 0; r < g->nnodes; r++) {
    const qcal_node *c = &g->nodes[r];
    if (c->dead || !qcal_op_conv2d(c->op) || c->in[0] != n->out[0] || !src[r])
      continue;
    if (qcal_fmt_nhwc(x->fmt) ? qcal_fmt_nhwc(src[r])
                              : qcal_fmt_cblock(src[r]) == qcal_fmt_cblock(x->fmt))
      return src[r];
  }
  return NULL;
}

/* The layout a per-tensor QuantizeLinear of a plain 4-D float value can
 * write: channels last, when every reader is a convolution that reads it so. */
static const void *q_out_fmt(qcal_graph *g, const qcal_node *n, const void **src) {
  const qcal_value *x = qcal_in(g, n, 0), *s = qcal_in(g, n, 1);
  if (x->fmt || x->ndim != 4 || x->dtype != QCAL_DT_F32 || !s || s->numel != 1)
    return NULL;
  const void *want = NULL;
  for (int r = 0; r < g->nnodes; r++) {
    const qcal_node *c = &g->nodes[r];
    if (c->dead)
      continue;
    for (int k = 0; k < c->nin; k++)
      if (c->in[k] == n->out[0]) {
        if (!qcal_op_conv2d(c->op) || k != 0 || !src[r] || !qcal_fmt_nhwc(src[r]) ||
            (want && !qcal_fmt_equal(want, src[r])))
          return NULL;
        want = src[r];
      }
    if (c->x.sum_in == n->out[0])
      return NULL;
  }
  return want;
}

/* The layout node n's output takes on, in *want (NULL: plain), for the
 * nodes that pass one on; false for every other node.
 * - a per-channel Mul (SE block): its blocked input's layout;
 * - MaxPool: the layout a convolution reading its output wants, when the
 *   pool can read its input's;
 * - a network input's per-tensor QuantizeLinear: channels last, when int8
 *   convolutions that read it so are its readers;
 * - an int8 Add (engine int8): any layout its two inputs share, when that
 *   layout has no padding. */
static bool passed_fmt(qcal_graph *g, const qcal_node *n, const void **src, const void **want) {
  *want = NULL;
  if (n->op == QCAL_GOP_Mul) {
    int xi = qcal_mul_channel_scale(g, n);
    if (xi >= 0 && qcal_fmt_cblock(qcal_in(g, n, xi)->fmt))
      *want = qcal_in(g, n, xi)->fmt;
  } else if (n->op == QCAL_GOP_MaxPool || n->op == QCAL_GOP_Int8MaxPool) {
    if (pool_takes(g, n, qcal_in(g, n, 0)->fmt))
      *want = pool_out_fmt(g, n, src);
  } else if (n->op == QCAL_GOP_QuantizeLinear) {
    *want = q_out_fmt(g, n, src);
  } else if (n->op == QCAL_GOP_Int8Add) {
    const qcal_value *a = qcal_in(g, n, 0), *b = qcal_in(g, n, 1);
    if (a->fmt && qcal_fmt_equal(a->fmt, b->fmt) && qcal_fmt_bytes(a->fmt) == a->numel)
      *want = a->fmt;
  } else {
    return false;
  }
  return true;
}

/* Blocked layouts between convolutions: a Conv output stays in the layout
 * its primitive writes when every reader can take it (a Conv reading that
 * layout as input or fused residual, a per-channel Mul, GlobalAveragePool,
 * MaxPool),
 * so no reorder runs between them. Everything else sees plain NCHW. */
static qcal_status choose_layouts(qcal_graph *g, size_t *bytes) {
  int nv = g->nvalues;
  const void **src = calloc((size_t)g->nnodes + 1, sizeof *src);
  const void **dst = calloc((size_t)g->nnodes + 1, sizeof *dst);
  if (!src || !dst) {
    free(src), free(dst);
    return qcal_error(QCAL_ENOMEM, "out of memory");
  }
  for (int v = 0; v < nv; v++)
    g->values[v].fmt = NULL;
  qcal_status st = QCAL_OK;
  for (int i = 0; i < g->nnodes && !st; i++) {
    qcal_node *n = &g->nodes[i];
    if (n->dead || (!qcal_op_conv2d(n->op) && n->op != QCAL_GOP_ConvTranspose) ||
        (g->reference_conv && qcal_conv_ref_supported(g, n)))
      continue;
    size_t db;
    st = qcal_conv_plan(g, n, &src[i], &dst[i], &db);
    if (!st && !g->plain_values && qcal_op_conv2d(n->op)) {
      qcal_value *y = qcal_out(g, n, 0);
      if (!y->is_output) {
        y->fmt = dst[i];
        bytes[n->out[0]] = db;
      }
    }
  }
  /* Mul, MaxPool, the input's Q and the int8 Add pass layouts on
   * (passed_fmt); GlobalAveragePool reads them. A reader that cannot take a
   * layout makes the value plain again, until nothing changes. */
  bool *forced = calloc((size_t)nv + 1, sizeof *forced); /* demoted for good */
  if (!forced)
    st = qcal_error(QCAL_ENOMEM, "out of memory");
  for (bool changed = true; changed && !st;) {
    changed = false;
    for (int i = 0; i < g->nnodes && !g->plain_values; i++) {
      qcal_node *n = &g->nodes[i];
      const void *want;
      if (n->dead || !passed_fmt(g, n, src, &want))
        continue;
      qcal_value *y = qcal_out(g, n, 0);
      if (y->is_output || forced[n->out[0]])
        want = NULL;
      if (y->fmt != want) {
        y->fmt = want;
        if (want)
          bytes[n->out[0]] = qcal_fmt_bytes(want);
        changed = true;
      }
    }
    for (int i = 0; i < g->nnodes; i++) {
      qcal_node *n = &g->nodes[i];
      if (n->dead)
        continue;
      bool conv = qcal_op_conv2d(n->op);
      int mul_x = n->op == QCAL_GOP_Mul ? qcal_mul_channel_scale(g, n) : -1;
      for (int k = 0; k < n->nin; k++) {
        qcal_value *v = qcal_in(g, n, k);
        if (!v || !v->fmt)
          continue;
        bool ok = (conv && k == 0 && qcal_fmt_equal(v->fmt, src[i])) ||
                  (n->op == QCAL_GOP_GlobalAveragePool && qcal_fmt_cblock(v->fmt)) ||
                  (n->op == QCAL_GOP_Int8GlobalAveragePool && qcal_fmt_nhwc(v->fmt)) ||
                  (k == mul_x && qcal_out(g, n, 0)->fmt == v->fmt) ||
                  (n->op == QCAL_GOP_Int8Add && qcal_fmt_equal(qcal_out(g, n, 0)->fmt, v->fmt)) ||
                  (k == 0 && pool_takes(g, n, v->fmt));
        if (!ok) {
          v->fmt = NULL;
          forced[n->in[k]] = true;
          changed = true;
        }
      }
      if (n->x.sum_in >= 0) {
        qcal_value *v = &g->values[n->x.sum_in];
        if (v->fmt && !(conv && qcal_fmt_equal(v->fmt, dst[i]))) {
          v->fmt = NULL;
          forced[n->x.sum_in] = true;
          changed = true;
        }
      }
    }
  }
  free(forced);
  free(src);
  free(dst);
  return st;
}

qcal_status qcal_pass_plan(qcal_graph *g, const qcal_graph_opts *o) {
  (void)o;
  qcal_plan_free(g);
  plan *p = calloc(1, sizeof *p);
  if (!p)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  g->plan = p;
  p->bufs = calloc((size_t)g->nvalues + 1, sizeof *p->bufs);
  size_t *bytes = calloc((size_t)g->nvalues + 1, sizeof *bytes);
  qcal_status st = p->bufs && bytes ? QCAL_OK : qcal_error(QCAL_ENOMEM, "out of memory");
  if (!st)
    st = choose_layouts(g, bytes);
  for (int k = 0; k < g->ninputs && !st; k++)
    st = alloc_value(g, p, &g->values[g->inputs[k]], 0);
  for (int i = 0; i < g->nnodes && !st; i++) {
    qcal_node *n = &g->nodes[i];
    if (n->dead)
      continue;
    for (int o = 0; o < n->nout && !st; o++) {
      qcal_value *v = qcal_out(g, n, o);
      if (!v || v->kind == QCAL_VAL_CONST)
        continue;
      if (o == 0 && aliases(n->op) && qcal_in(g, n, 0)->numel == v->numel && !qcal_in(g, n, 0)->fmt)
        v->data = qcal_in(g, n, 0)->data;
      else
        st = alloc_value(g, p, v, v->fmt ? bytes[n->out[o]] : 0);
    }
  }
  free(bytes);
  return st;
}

qcal_status qcal_graph_run(qcal_graph *g, const void *const *inputs) {
  return qcal_graph_run_from(g, inputs, 0);
}

qcal_status qcal_graph_run_from(qcal_graph *g, const void *const *inputs, int first) {
  if (!g->prepared)
    return qcal_error(QCAL_EINVAL, "%s: graph not prepared", g->path);
  if (first < 0 || first > g->nnodes || (first == 0 && !inputs))
    return qcal_error(QCAL_EINVAL, "%s: run from node %d: no such node (or no inputs)", g->path,
                      first);
  if (g->threads > 0)
    omp_set_num_threads(g->threads);
  for (int k = 0; k < g->ninputs && first == 0; k++) {
    qcal_value *v = &g->values[g->inputs[k]];
    memcpy(v->data, inputs[k], v->numel * qcal_dtype_size(v->dtype));
  }
  /* QCAL_PROFILE=1: time per op type to stderr (a diagnostic, not a benchmark) */
  static int prof = -1;
  if (prof < 0)
    prof = getenv("QCAL_PROFILE") ? atoi(getenv("QCAL_PROFILE")) : 0;
  double op_s[QCAL_GOP_COUNT] = {0};
  int op_n[QCAL_GOP_COUNT] = {0};
  for (int i = first; i < g->nnodes; i++) {
    qcal_node *n = &g->nodes[i];
    if (n->dead)
      continue;
    if (aliases(n->op) && qcal_out(g, n, 0)->data == qcal_in(g, n, 0)->data && !qcal_out(g, n, 1))
      continue;
    struct timespec t0, t1;
    if (prof || g->node_seconds)
      clock_gettime(CLOCK_MONOTONIC, &t0);
    qcal_status st = qcal_fq_enter(g, i);
    if (!st)
      st = qcal_op_fwd[n->op](g, n);
    qcal_fq_leave(g, i);
    if (st)
      return st;
    if (g->node_seconds) {
      clock_gettime(CLOCK_MONOTONIC, &t1);
      g->node_seconds[i] +=
          (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    }
    if (prof) {
      clock_gettime(CLOCK_MONOTONIC, &t1);
      double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
      op_s[n->op] += dt;
      if (prof > 2 || (prof > 1 && dt > 1e-4)) /* 2: each node over 0.1 ms; 3: all */
        fprintf(stderr, "profile: %-20s %8.3f ms  %s\n", qcal_op_infos[n->op].name, dt * 1e3,
                n->name);
      op_n[n->op]++;
    }
  }
  if (prof)
    for (int k = 0; k < QCAL_GOP_COUNT; k++)
      if (op_n[k])
        fprintf(stderr, "profile: %-20s %4d nodes %8.3f ms\n", qcal_op_infos[k].name, op_n[k],
                op_s[k] * 1e3);
  return QCAL_OK;
}
