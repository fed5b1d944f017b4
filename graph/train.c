/* The trainer: buffers for every value and its gradient, the training
 * forward over the live nodes in order and the backward in reverse, each
 * through the op list's columns (graph/ops.inc). */
#include <cblas.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/train_internal.h"

static const qcal_train_fn tfwd_of[QCAL_GOP_COUNT] = {
#define QCAL_OP(id, name, min_in, max_in, min_out, max_out, flags, infer, fwd, wslot, waxis, tfwd, \
                bwd)                                                                               \
  [QCAL_GOP_##id] = tfwd,
#include "graph/ops.inc"
#undef QCAL_OP
};
static const qcal_train_fn bwd_of[QCAL_GOP_COUNT] = {
#define QCAL_OP(id, name, min_in, max_in, min_out, max_out, flags, infer, fwd, wslot, waxis, tfwd, \
                bwd)                                                                               \
  [QCAL_GOP_##id] = bwd,
#include "graph/ops.inc"
#undef QCAL_OP
};

bool qcal_op_trainable(qcal_graph_op op) {
  return op >= 0 && op < QCAL_GOP_COUNT && bwd_of[op] != qcal_train_none;
}

qcal_status qcal_train_none(qcal_train *t, qcal_node *n) {
  return qcal_node_error(t->g, n, QCAL_EUNSUPPORTED, "this op has no backward pass (training)");
}

void *qcal_train_scratch(qcal_train *t, const qcal_node *n, int k, size_t bytes) {
  qcal_train_buf *b = &t->saved[n - t->g->nodes][k];
  if (b->bytes < bytes) {
    qcal_free(b->p);
    b->bytes = 0;
    if (!(b->p = qcal_alloc(bytes)))
      return NULL;
    b->bytes = bytes;
  }
  return b->p;
}

/* Inputs that are trained: weights and biases of Conv and Gemm, the scale
 * and bias of BatchNormalization, a FakeQuantize amax marked "learn". */
static bool trained_slot(qcal_node *n, int slot, bool *decay, bool *positive) {
  *decay = false;
  *positive = n->op == QCAL_GOP_FakeQuantize;
  switch (n->op) {
  case QCAL_GOP_Conv:
  case QCAL_GOP_Gemm:
    *decay = slot == 1;
    return slot == 1 || slot == 2;
  case QCAL_GOP_BatchNormalization:
    return slot == 1 || slot == 2;
  case QCAL_GOP_FakeQuantize:
    return slot == 1 && qcal_attr_int(n, "learn", 0) != 0;
  default:
    return false;
  }
}

static qcal_status attach_loss(qcal_train *t) {
  qcal_graph *g = t->g;
  char name[64];
  for (int k = 0;; k++) {
    snprintf(name, sizeof name, "qcal.labels%d", k);
    if (qcal_graph_find(g, name) < 0)
      break;
  }
  int64_t shp[1] = {-1};
  QCAL_TRY(qcal_graph_add_value(g, name, QCAL_VAL_INPUT, QCAL_DT_I64, 1, shp, &t->labels));
  QCAL_TRY(qcal_graph_add_input(g, t->labels));
  snprintf(name, sizeof name, "qcal.loss%d", t->labels);
  QCAL_TRY(qcal_graph_add_value(g, name, QCAL_VAL_ACT, QCAL_DT_F32, 0, NULL, &t->loss));
  int in[2] = {t->logits, t->labels};
  QCAL_TRY(qcal_graph_add_node(g, QCAL_GOP_SoftmaxCrossEntropyLoss, name, 2, in, 1, &t->loss,
                               &t->loss_node));
  return qcal_graph_add_output(g, t->loss);
}

/* The input's and the labels' first dim set to n. */
static qcal_status bind_batch(qcal_train *t, int n) {
  qcal_graph *g = t->g;
  const qcal_value *x = &g->values[t->input];
  int64_t shp[QCAL_MAX_DIMS];
  memcpy(shp, x->shape, sizeof shp);
  shp[0] = n;
  QCAL_TRY(qcal_graph_resize_input(g, 0, x->ndim, shp));
  int64_t ls[1] = {n};
  return qcal_graph_resize_input(g, 1, 1, ls);
}

/* Another batch size: the new shapes inferred node by node. */
static qcal_status set_batch(qcal_train *t, int n) {
  qcal_graph *g = t->g;
  QCAL_TRY(bind_batch(t, n));
  for (int i = 0; i < g->nnodes; i++)
    if (!g->nodes[i].dead)
      QCAL_TRY(qcal_op_infer[g->nodes[i].op](g, &g->nodes[i]));
  t->batch = n;
  return QCAL_OK;
}

static qcal_status prepare(qcal_train *t) {
  qcal_graph *g = t->g;
  if (g->ninputs != 1 || g->noutputs < 1)
    return qcal_error(QCAL_EINVAL, "%s: training needs one input and the logits as output 0",
                      g->path);
  t->input = g->inputs[0];
  t->logits = g->outputs[0];
  if (g->values[t->input].dtype != QCAL_DT_F32 || g->values[t->input].ndim < 2)
    return qcal_error(QCAL_EINVAL, "%s: training needs a float input [N, ...]", g->path);
  QCAL_TRY(attach_loss(t));
  const qcal_value *x = &g->values[t->input];
  for (int d = 1; d < x->ndim; d++)
    if (x->shape[d] < 1)
      return qcal_error(QCAL_EINVAL, "%s: input dim %d is symbolic; training needs it fixed",
                        g->path, d);
  QCAL_TRY(bind_batch(t, t->max_batch));
  t->batch = t->max_batch;
  qcal_graph_opts o = {0};
  QCAL_TRY(qcal_pass_check(g, &o));
  QCAL_TRY(qcal_pass_sort(g, &o));
  QCAL_TRY(qcal_pass_infer_fold(g, &o));
  qcal_graph_link(g);
  for (int i = 0; i < g->nnodes; i++) /* the sort moved it */
    if (!g->nodes[i].dead && g->nodes[i].out[0] == t->loss)
      t->loss_node = i;
  const qcal_value *lg = &g->values[t->logits];
  if (lg->ndim != 2)
    return qcal_error(QCAL_EINVAL, "%s: output 0 ('%s') must be the logits [N, classes]", g->path,
                      lg->name);
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *n = &g->nodes[i];
    if (!n->dead && (tfwd_of[n->op] == qcal_train_none || bwd_of[n->op] == qcal_train_none))
      return qcal_train_none(t, n);
  }
  return QCAL_OK;
}

static qcal_status alloc_values(qcal_train *t) {
  qcal_graph *g = t->g;
  int nv = g->nvalues;
  t->x = calloc((size_t)nv, sizeof *t->x);
  t->dx = calloc((size_t)nv, sizeof *t->dx);
  t->saved = calloc((size_t)g->nnodes, sizeof *t->saved);
  if (!t->x || !t->dx || !t->saved)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  /* the input's buffer: the caller's batch is copied in */
  size_t in_bytes = g->values[t->input].numel * sizeof(float);
  if (!(t->x[t->input] = qcal_alloc(in_bytes ? in_bytes : 1)))
    return qcal_error(QCAL_ENOMEM, "out of memory");
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *n = &g->nodes[i];
    if (n->dead)
      continue;
    for (int k = 0; k < n->nin; k++) {
      int v = n->in[k];
      qcal_value *val = v >= 0 ? &g->values[v] : NULL;
      if (!val || val->dtype != QCAL_DT_F32)
        continue;
      bool decay, positive;
      if (val->kind == QCAL_VAL_CONST) {
        t->x[v] = val->data;
        if (trained_slot(n, k, &decay, &positive) && !t->dx[v]) {
          if (!(t->dx[v] = qcal_alloc(val->numel * sizeof(float))))
            return qcal_error(QCAL_ENOMEM, "out of memory");
          qcal_param *p = realloc(t->params, (size_t)(t->nparams + 1) * sizeof *p);
          if (!p)
            return qcal_error(QCAL_ENOMEM, "out of memory");
          t->params = p;
          p[t->nparams++] = (qcal_param){.value = v,
                                         .node = i,
                                         .data = val->data,
                                         .grad = t->dx[v],
                                         .numel = val->numel,
                                         .decay = decay,
                                         .positive = positive};
        }
      }
    }
    bool alias = tfwd_of[n->op] == qcal_tfwd_alias;
    for (int o = 0; o < n->nout; o++) {
      int v = n->out[o];
      if (v < 0)
        continue;
      qcal_value *val = &g->values[v];
      if (val->dtype != QCAL_DT_F32)
        return qcal_node_error(g, n, QCAL_EDTYPE, "training needs float outputs, not %s",
                               qcal_dtype_name(val->dtype));
      if (alias) {
        t->x[v] = t->x[n->in[0]];
        t->dx[v] = t->dx[n->in[0]];
        continue;
      }
      size_t bytes = (val->numel ? val->numel : 1) * sizeof(float);
      if (!(t->x[v] = qcal_alloc(bytes)) || !(t->dx[v] = qcal_alloc(bytes)))
        return qcal_error(QCAL_ENOMEM, "out of memory for '%s' (%zu bytes)", val->name, bytes);
    }
  }
  for (int k = 0; k < t->nparams; k++) {
    qcal_param *p = &t->params[k];
    if (!(p->m = qcal_alloc(p->numel * sizeof(float))) ||
        !(p->v = qcal_alloc(p->numel * sizeof(float))))
      return qcal_error(QCAL_ENOMEM, "out of memory");
    memset(p->m, 0, p->numel * sizeof(float));
    memset(p->v, 0, p->numel * sizeof(float));
  }
  return QCAL_OK;
}

qcal_status qcal_train_new(qcal_graph *g, int max_batch, qcal_train **out) {
  *out = NULL;
  if (max_batch < 1)
    return qcal_error(QCAL_EINVAL, "batch size %d: must be at least 1", max_batch);
  if (g->prepared)
    return qcal_error(QCAL_EINVAL, "%s: a prepared graph cannot be trained", g->path);
  /* the trainer's GEMMs split over the OpenMP team themselves */
  openblas_set_num_threads(1);
#if defined(__x86_64__) || defined(__i386__)
  /* Denormals flushed to zero in every thread of the team, as oneDNN's
   * kernels do: weights that quantize to nearly nothing (4-bit per-tensor)
   * otherwise made activations denormal and an epoch 3x slower. */
#pragma omp parallel
  _mm_setcsr(_mm_getcsr() | 0x8040);
#endif
  qcal_train *t = calloc(1, sizeof *t);
  if (!t)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  t->g = g;
  t->max_batch = max_batch;
  t->loss_node = t->labels = t->loss = -1;
  qcal_status st = prepare(t);
  if (st == QCAL_OK)
    st = alloc_values(t);
  if (st != QCAL_OK) {
    qcal_train_free(t);
    return st;
  }
  *out = t;
  return QCAL_OK;
}

/* Detach the loss: its node dead, the labels and loss off the lists. */
static void detach(qcal_train *t) {
  qcal_graph *g = t->g;
  if (t->loss_node >= 0) {
    g->nodes[t->loss_node].dead = true;
    g->values[t->loss].is_output = false;
  }
  int w = 0;
  for (int k = 0; k < g->ninputs; k++)
    if (g->inputs[k] != t->labels)
      g->inputs[w++] = g->inputs[k];
  g->ninputs = w;
  w = 0;
  for (int k = 0; k < g->noutputs; k++)
    if (g->outputs[k] != t->loss)
      g->outputs[w++] = g->outputs[k];
  g->noutputs = w;
  qcal_graph_link(g);
}

void qcal_train_free(qcal_train *t) {
  if (!t)
    return;
  qcal_graph *g = t->g;
  detach(t);
  for (int v = 0; v < g->nvalues && t->x; v++) {
    bool own = g->values[v].kind != QCAL_VAL_CONST;
    int prod = g->values[v].producer;
    bool aliased = prod >= 0 && tfwd_of[g->nodes[prod].op] == qcal_tfwd_alias;
    if (own && !aliased) {
      qcal_free(t->x[v]);
      qcal_free(t->dx[v]);
    }
  }
  for (int k = 0; k < t->nparams; k++) {
    qcal_free(t->params[k].grad);
    qcal_free(t->params[k].m);
    qcal_free(t->params[k].v);
  }
  for (int i = 0; t->saved && i < g->nnodes; i++)
    for (int k = 0; k < QCAL_TRAIN_BUFS; k++)
      qcal_free(t->saved[i][k].p);
  free(t->saved);
  free(t->params);
  free(t->x);
  free(t->dx);
  free(t);
}

qcal_status qcal_train_forward(qcal_train *t, int n, const float *x, const int64_t *labels,
                               bool training, float *loss) {
  qcal_graph *g = t->g;
  if (n < 1 || n > t->max_batch)
    return qcal_error(QCAL_EINVAL, "batch of %d: the trainer takes 1 to %d", n, t->max_batch);
  if (n != t->batch)
    QCAL_TRY(set_batch(t, n));
  memcpy(t->x[t->input], x, g->values[t->input].numel * sizeof(float));
  t->training = training;
  t->have_loss = false;
  t->label_data = labels;
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *nd = &g->nodes[i];
    if (nd->dead || (i == t->loss_node && !labels))
      continue;
    QCAL_TRY(tfwd_of[nd->op](t, nd));
  }
  if (labels) {
    t->have_loss = training;
    if (loss)
      *loss = t->x[t->loss][0];
  }
  return QCAL_OK;
}

qcal_status qcal_train_backward(qcal_train *t) {
  qcal_graph *g = t->g;
  if (!t->have_loss)
    return qcal_error(QCAL_EINVAL, "%s: backward needs a training forward with labels", g->path);
  for (int v = 0; v < g->nvalues; v++)
    if (t->dx[v]) {
      const qcal_value *val = &g->values[v];
      memset(t->dx[v], 0, (val->numel ? val->numel : 1) * sizeof(float));
    }
  t->dx[t->loss][0] = 1.0f;
  for (int i = g->nnodes - 1; i >= 0; i--) {
    qcal_node *nd = &g->nodes[i];
    if (!nd->dead)
      QCAL_TRY(bwd_of[nd->op](t, nd));
  }
  return QCAL_OK;
}

const float *qcal_train_logits(const qcal_train *t, int *classes) {
  *classes = (int)t->g->values[t->logits].shape[1];
  return t->x[t->logits];
}

int qcal_train_nparams(const qcal_train *t) {
  return t->nparams;
}
qcal_param *qcal_train_param(qcal_train *t, int k) {
  return k >= 0 && k < t->nparams ? &t->params[k] : NULL;
}

void qcal_train_observe(qcal_train *t, qcal_train_observe_fn fn, void *ctx) {
  t->observe = fn;
  t->observe_ctx = ctx;
}
