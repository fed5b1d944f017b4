/* Graph rewrites after folding: BatchNormalization into the convolution
 * that feeds it (the model as TensorRT sees it), then activations,
 * residual Adds and SiLU into Conv/Gemm/MatMul (oneDNN post-ops). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

/* The single live node reading value v (and which input), or -1. */
static int sole_consumer(const qcal_graph *g, int v, int *slot) {
  const qcal_value *val = &g->values[v];
  if (val->is_output || val->consumers != 1)
    return -1;
  for (int i = 0; i < g->nnodes; i++) {
    const qcal_node *n = &g->nodes[i];
    if (n->dead)
      continue;
    for (int k = 0; k < n->nin; k++)
      if (n->in[k] == v) {
        if (slot)
          *slot = k;
        return i;
      }
  }
  return -1;
}

static bool is_const(const qcal_graph *g, int v) {
  return v >= 0 && g->values[v].kind == QCAL_VAL_CONST;
}

static qcal_status new_const(qcal_graph *g, int like, const char *suffix, size_t numel,
                             float **data, int *idx) {
  char name[512];
  for (int k = 0;; k++) {
    snprintf(name, sizeof name, "%s%s%s%.0d", g->values[like].name, suffix, k ? "." : "", k);
    if (qcal_graph_find(g, name) < 0)
      break;
  }
  float *d = qcal_alloc(numel * 4);
  if (!d)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  qcal_value tmpl = g->values[like];
  QCAL_TRY(qcal_graph_add_const(g, name, QCAL_DT_F32, tmpl.ndim, tmpl.shape, d, idx));
  *data = d;
  return QCAL_OK;
}

qcal_status qcal_graph_fold_bn(qcal_graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    if (g->nodes[i].dead || g->nodes[i].op != QCAL_GOP_BatchNormalization)
      continue;
    int x = g->nodes[i].in[0];
    int p = g->values[x].producer;
    if (p < 0 || g->nodes[p].op != QCAL_GOP_Conv || g->nodes[p].dead)
      continue;
    if (sole_consumer(g, x, NULL) != i || !is_const(g, g->nodes[p].in[1]))
      continue;
    if (g->nodes[p].nin > 2 && g->nodes[p].in[2] >= 0 && !is_const(g, g->nodes[p].in[2]))
      continue;
    bool params = true;
    for (int k = 1; k < 5; k++)
      params &= is_const(g, g->nodes[i].in[k]);
    if (!params)
      continue;
    int w = g->nodes[p].in[1], b = g->nodes[p].nin > 2 ? g->nodes[p].in[2] : -1;
    int64_t cout = g->values[w].shape[0];
    size_t per = g->values[w].numel / (size_t)cout;
    float eps = qcal_attr_float(&g->nodes[i], "epsilon", 1e-5f);
    float *nw, *nb;
    int wi, bi;
    QCAL_TRY(new_const(g, w, ":bn", g->values[w].numel, &nw, &wi));
    QCAL_TRY(new_const(g, g->nodes[i].in[1], ":bias", (size_t)cout, &nb, &bi));
    const qcal_node *bn = &g->nodes[i];
    const float *ow = g->values[w].data, *ob = b >= 0 ? g->values[b].data : NULL;
    const float *sc = g->values[bn->in[1]].data, *be = g->values[bn->in[2]].data;
    const float *mu = g->values[bn->in[3]].data, *var = g->values[bn->in[4]].data;
    for (int64_t o = 0; o < cout; o++) {
      float s = sc[o] / sqrtf(var[o] + eps);
      for (size_t k = 0; k < per; k++)
        nw[(size_t)o * per + k] = ow[(size_t)o * per + k] * s;
      nb[o] = ((ob ? ob[o] : 0) - mu[o]) * s + be[o];
    }
    qcal_node *cv = &g->nodes[p];
    if (cv->nin < 3) {
      int *in = realloc(cv->in, 3 * sizeof *in);
      if (!in)
        return qcal_error(QCAL_ENOMEM, "out of memory");
      cv->in = in;
      cv->nin = 3;
    }
    cv->in[1] = wi;
    cv->in[2] = bi;
    cv->out[0] = g->nodes[i].out[0];
    g->nodes[i].dead = true;
    g->values[cv->out[0]].producer = p;
  }
  return QCAL_OK;
}

static bool same_shape(const qcal_value *a, const qcal_value *b) {
  if (a->ndim != b->ndim || a->dtype != b->dtype)
    return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d])
      return false;
  return true;
}

/* Producer position of v (-1 for inputs and constants). */
static int pos_of(const qcal_graph *g, int v) {
  return g->values[v].producer;
}

static void relink(qcal_graph *g, int p, int out) {
  g->nodes[p].out[0] = out;
  g->values[out].producer = p;
}

qcal_status qcal_graph_fuse(qcal_graph *g) {
  for (int p = 0; p < g->nnodes; p++) {
    qcal_node *n = &g->nodes[p];
    if (n->dead || (n->op != QCAL_GOP_Conv && n->op != QCAL_GOP_Gemm && n->op != QCAL_GOP_MatMul))
      continue;
    for (bool again = true; again;) {
      again = false;
      int y = n->out[0], slot;
      /* x * gate(x), y read by the gate and by the Mul: SiLU (Sigmoid) and
       * HardSwish as opset < 14 exporters write it (HardSigmoid 1/6, 0.5) */
      if (n->act == QCAL_ACT_NONE && g->values[y].consumers == 2 && !g->values[y].is_output) {
        int s = -1;
        qcal_act gate = QCAL_ACT_NONE;
        for (int i = p + 1; i < g->nnodes && s < 0; i++) {
          qcal_node *c = &g->nodes[i];
          if (c->dead || c->in[0] != y)
            continue;
          if (c->op == QCAL_GOP_Sigmoid) {
            s = i, gate = QCAL_ACT_SWISH;
          } else if (c->op == QCAL_GOP_HardSigmoid &&
                     fabsf(qcal_attr_float(c, "alpha", 0.2f) - 1.0f / 6) < 1e-7f &&
                     qcal_attr_float(c, "beta", 0.5f) == 0.5f) {
            s = i, gate = QCAL_ACT_HARDSWISH;
          }
        }
        if (s >= 0) {
          int so = g->nodes[s].out[0];
          int m = sole_consumer(g, so, &slot);
          if (m >= 0 && g->nodes[m].op == QCAL_GOP_Mul && g->nodes[m].in[1 - slot] == y) {
            n->act = gate;
            g->nodes[s].dead = g->nodes[m].dead = true;
            relink(g, p, g->nodes[m].out[0]);
            g->values[y].consumers = 0;
            again = true;
            continue;
          }
        }
      }
      int c = sole_consumer(g, y, &slot);
      if (c < 0)
        break;
      qcal_node *cn = &g->nodes[c];
      qcal_act a;
      float al, be;
      if (n->act == QCAL_ACT_NONE && qcal_node_act(g, cn, &a, &al, &be)) {
        n->act = a, n->act_alpha = al, n->act_beta = be;
        cn->dead = true;
        relink(g, p, cn->out[0]);
        again = true;
      } else if (n->op == QCAL_GOP_Conv && cn->op == QCAL_GOP_Add && n->act == QCAL_ACT_NONE &&
                 n->sum_in < 0) {
        int z = cn->in[1 - slot];
        if (z == y || !same_shape(&g->values[z], &g->values[y]) || pos_of(g, z) >= p)
          break;
        n->sum_in = z;
        cn->dead = true;
        relink(g, p, cn->out[0]);
        again = true;
      }
      /* counts for the next round */
      if (again) {
        int o = n->out[0];
        g->values[o].consumers = 0;
        for (int i = 0; i < g->nnodes; i++)
          if (!g->nodes[i].dead)
            for (int k = 0; k < g->nodes[i].nin; k++)
              g->values[o].consumers += g->nodes[i].in[k] == o;
      }
    }
  }
  return QCAL_OK;
}
