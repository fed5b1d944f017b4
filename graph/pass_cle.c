/* Passes for PTQ repair (docs/repair.md).
 *
 * repair-own-parameters: every Conv and Gemm with a constant weight gets
 * weight and bias constants of its own (shared initializers copied, a zero
 * bias where there is none), so that equalization, bias absorption, bias
 * correction and AdaRound change one layer and nothing else.
 *
 * cross-layer-equalization (Nagel et al. 2019, "Data-Free Quantization
 * Through Weight Equalization and Bias Correction", section 4.1): for two
 * convolutions joined by a positively homogeneous activation, output
 * channel c of the first is divided by s_c and input channel c of the
 * second multiplied by it, s_c = sqrt(r1_c / r2_c) with r the channel's
 * largest |weight|, which makes both ranges sqrt(r1_c r2_c). Repeated over
 * all pairs until no scale moves. ReLU, LeakyReLU, PReLU and identity
 * commute with a positive per-channel scale; Clip(0, hi) does once its
 * upper bound is per channel, so it becomes Relu then Min(x, hi / s). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

static bool is_const_f32(const qcal_graph *g, int v) {
  return v >= 0 && g->values[v].kind == QCAL_VAL_CONST && g->values[v].dtype == QCAL_DT_F32;
}

/* A Conv or Gemm (B not transposed... either way) with a constant weight. */
static bool weighted(const qcal_graph *g, const qcal_node *n) {
  return !n->dead && (n->op == QCAL_GOP_Conv || n->op == QCAL_GOP_Gemm) && n->nin >= 2 &&
         is_const_f32(g, n->in[1]) && g->values[n->in[1]].ndim >= 2 &&
         (n->nin < 3 || n->in[2] < 0 || is_const_f32(g, n->in[2]));
}

static int64_t node_group(const qcal_node *n) {
  for (int a = 0; a < n->nattr; a++)
    if (!strcmp(n->attr[a].name, "group") && n->attr[a].type == QCAL_ATTR_INT)
      return n->attr[a].i;
  return 1;
}

static qcal_status fresh_name(const qcal_graph *g, const char *base, const char *suffix, char *buf,
                              size_t cap) {
  for (int k = 0; k < 1000; k++) {
    snprintf(buf, cap, "%s%s%s%.0d", base, suffix, k ? "." : "", k);
    if (qcal_graph_find(g, buf) < 0)
      return QCAL_OK;
  }
  return qcal_error(QCAL_EFORMAT, "%s: no free name for '%s%s'", g->path, base, suffix);
}

/* A float constant of this shape named base+suffix, copied from src (or zero). */
qcal_status qcal_graph_add_f32(qcal_graph *g, const char *base, const char *suffix, int ndim,
                               const int64_t *shape, const float *src, int *idx) {
  size_t n = 1;
  for (int d = 0; d < ndim; d++)
    n *= (size_t)shape[d];
  float *d = qcal_alloc((n ? n : 1) * sizeof *d);
  if (!d)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  if (src)
    memcpy(d, src, n * sizeof *d);
  else
    memset(d, 0, n * sizeof *d);
  char name[600];
  QCAL_TRY(fresh_name(g, base, suffix, name, sizeof name));
  return qcal_graph_add_const(g, name, QCAL_DT_F32, ndim, shape, d, idx);
}

/* Output channels of a weighted node (Gemm: N, by transB). */
static int64_t out_channels(qcal_graph *g, qcal_node *n) {
  const qcal_value *w = &g->values[n->in[1]];
  if (n->op == QCAL_GOP_Gemm)
    return qcal_attr_int(n, "transB", 0) ? w->shape[0] : w->shape[1];
  return w->shape[0];
}

qcal_status qcal_pass_repair_params(qcal_graph *g, const qcal_graph_opts *o) {
  if (!o->repair_params && !o->equalize && !o->absorb_form)
    return QCAL_OK;
  for (int i = 0; i < g->nnodes; i++) {
    if (!weighted(g, &g->nodes[i]))
      continue;
    int w = g->nodes[i].in[1];
    if (g->values[w].consumers > 1) {
      qcal_value wv = g->values[w]; /* add_f32 may move the array */
      int nw;
      QCAL_TRY(qcal_graph_add_f32(g, wv.name, ":own", wv.ndim, wv.shape, wv.data, &nw));
      g->values[w].consumers--;
      g->nodes[i].in[1] = nw;
      g->values[nw].consumers = 1;
    }
    int b = g->nodes[i].nin > 2 ? g->nodes[i].in[2] : -1;
    int64_t oc = out_channels(g, &g->nodes[i]);
    if (b >= 0 && (g->values[b].consumers > 1 || g->values[b].numel != (size_t)oc)) {
      /* shared, or a broadcast Gemm C: one value per output channel */
      qcal_value bv = g->values[b];
      float *full = malloc((size_t)oc * sizeof *full);
      if (!full)
        return qcal_error(QCAL_ENOMEM, "out of memory");
      for (int64_t c = 0; c < oc; c++)
        full[c] = ((const float *)bv.data)[bv.numel == 1 ? 0 : (size_t)c % bv.numel];
      if (g->nodes[i].op == QCAL_GOP_Gemm && bv.numel != (size_t)oc &&
          !(bv.ndim <= 1 || (bv.ndim == 2 && bv.shape[0] == 1))) {
        free(full); /* a C with rows: not a per-channel bias */
        continue;
      }
      int nb;
      qcal_status st = qcal_graph_add_f32(g, bv.name, ":own", 1, &oc, full, &nb);
      free(full);
      QCAL_TRY(st);
      g->values[b].consumers--;
      g->nodes[i].in[2] = nb;
      g->values[nb].consumers = 1;
    } else if (b < 0) {
      if (g->nodes[i].nin < 3) {
        int *in = realloc(g->nodes[i].in, 3 * sizeof *in);
        if (!in)
          return qcal_error(QCAL_ENOMEM, "out of memory");
        g->nodes[i].in = in;
        g->nodes[i].nin = 3;
      }
      char base[560];
      snprintf(base, sizeof base, "%s.bias", g->nodes[i].name[0] ? g->nodes[i].name : "layer");
      int nb;
      QCAL_TRY(qcal_graph_add_f32(g, base, ":repair", 1, &oc, NULL, &nb));
      g->nodes[i].in[2] = nb;
      g->values[nb].consumers = 1;
    }
  }
  return QCAL_OK;
}

/* The channel axis of a per-channel constant of numel C broadcast against
 * a value of ndim dims (axis 1), or a scalar. */
bool qcal_per_channel_const(const qcal_graph *g, int v, int ndim, int64_t c) {
  if (!is_const_f32(g, v))
    return false;
  const qcal_value *s = &g->values[v];
  if (s->numel == 1)
    return true;
  int ax = 1 - (ndim - s->ndim);
  if (s->numel != (size_t)c || ax < 0 || ax >= s->ndim)
    return false;
  return s->shape[ax] == c;
}

static bool clip_bounds(qcal_graph *g, qcal_node *n, float *lo, float *hi) {
  qcal_act a;
  float al, be;
  if (!qcal_node_act(g, n, &a, &al, &be) || a != QCAL_ACT_CLIP)
    return false;
  *lo = al, *hi = be;
  return true;
}

qcal_status qcal_graph_layer_pairs(qcal_graph *g, qcal_layer_pair **pairs, int *npairs) {
  *pairs = NULL, *npairs = 0;
  int cap = 0;
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *a = &g->nodes[i];
    if (!weighted(g, a) || a->op != QCAL_GOP_Conv)
      continue;
    qcal_layer_pair p = {i, -1, -1, -1, QCAL_PAIR_IDENTITY, false};
    int64_t C = g->values[a->in[1]].shape[0];
    int y = a->out[0], slot;
    const int ndim = g->values[y].ndim;
    int c = g->values[y].is_output ? -1 : qcal_sole_consumer(g, y, &slot);
    if (c < 0)
      continue;
    qcal_node *n = &g->nodes[c];
    float lo, hi;
    if (n->op != QCAL_GOP_Conv) {
      if (n->op == QCAL_GOP_Relu || n->op == QCAL_GOP_LeakyRelu)
        p.kind = QCAL_PAIR_RELU;
      else if (n->op == QCAL_GOP_PRelu && slot == 0 && qcal_per_channel_const(g, n->in[1], ndim, C))
        p.kind = QCAL_PAIR_PRELU;
      else if (n->op == QCAL_GOP_Clip && clip_bounds(g, n, &lo, &hi) && lo == 0 && hi > 0)
        p.kind = isinf(hi) ? QCAL_PAIR_RELU : QCAL_PAIR_CLIP;
      else if (n->op == QCAL_GOP_Max && n->nin == 2 && slot == 0 &&
               qcal_per_channel_const(g, n->in[1], ndim, C) &&
               g->values[n->in[1]].numel == (size_t)C)
        p.kind = QCAL_PAIR_RELU, p.floor = true; /* absorption's shifted Relu */
      else
        continue;
      p.act = c;
      y = n->out[0];
      c = g->values[y].is_output ? -1 : qcal_sole_consumer(g, y, &slot);
      if (c < 0)
        continue;
      n = &g->nodes[c];
      if (p.kind == QCAL_PAIR_RELU && n->op == QCAL_GOP_Min && n->nin == 2 && slot == 0 &&
          qcal_per_channel_const(g, n->in[1], ndim, C) && g->values[n->in[1]].numel == (size_t)C) {
        p.min = c, p.kind = QCAL_PAIR_RELU_MIN; /* a Clip an earlier equalization rewrote */
        y = n->out[0];
        c = g->values[y].is_output ? -1 : qcal_sole_consumer(g, y, &slot);
        if (c < 0)
          continue;
        n = &g->nodes[c];
      }
    }
    if (n->op != QCAL_GOP_Conv || slot != 0 || !weighted(g, n))
      continue;
    const qcal_value *w2 = &g->values[n->in[1]];
    if (w2->shape[1] * node_group(n) != C)
      continue;
    p.b = c;
    if (*npairs == cap) {
      cap = cap ? 2 * cap : 16;
      qcal_layer_pair *np = realloc(*pairs, (size_t)cap * sizeof *np);
      if (!np) {
        free(*pairs), *pairs = NULL, *npairs = 0;
        return qcal_error(QCAL_ENOMEM, "out of memory");
      }
      *pairs = np;
    }
    (*pairs)[(*npairs)++] = p;
  }
  return QCAL_OK;
}

/* Clip(x, 0, hi) -> Relu(x) then Min(., hi per channel): the bound can then
 * follow each channel's scale. */
qcal_status qcal_pair_split_clip(qcal_graph *g, qcal_layer_pair *p) {
  qcal_node *n = &g->nodes[p->act];
  float lo = 0, hi = INFINITY;
  clip_bounds(g, n, &lo, &hi);
  int z = n->out[0];
  qcal_value zv = g->values[z];
  int64_t C = g->values[g->nodes[p->a].in[1]].shape[0];
  int64_t cshape[QCAL_MAX_DIMS];
  int cdim = zv.ndim - 1;
  for (int d = 0; d < cdim; d++)
    cshape[d] = d == 0 ? C : 1;
  float *hv = malloc((size_t)C * sizeof *hv);
  if (!hv)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  for (int64_t c = 0; c < C; c++)
    hv[c] = hi;
  int cv, t, m;
  char base[560];
  snprintf(base, sizeof base, "%s", n->name[0] ? n->name : "clip");
  qcal_status st = qcal_graph_add_f32(g, base, ":max", cdim, cshape, hv, &cv);
  free(hv);
  QCAL_TRY(st);
  char tn[600];
  QCAL_TRY(fresh_name(g, zv.name, ":relu", tn, sizeof tn));
  QCAL_TRY(qcal_graph_add_value(g, tn, QCAL_VAL_ACT, QCAL_DT_F32, zv.ndim, zv.shape, &t));
  g->values[t].numel = zv.numel;
  n = &g->nodes[p->act];
  n->op = QCAL_GOP_Relu;
  n->nin = 1;
  qcal_node_clear_attrs(n);
  n->out[0] = t;
  int in[2] = {t, cv};
  char mn[600];
  snprintf(mn, sizeof mn, "%s:max", base);
  QCAL_TRY(qcal_graph_add_node(g, QCAL_GOP_Min, mn, 2, in, 1, &z, &m));
  p->min = m;
  p->kind = QCAL_PAIR_RELU_MIN;
  return QCAL_OK;
}

/* The constants a pass over pairs changes, in double while it iterates:
 * hundreds of sweeps in float would round every weight hundreds of times. */
typedef struct dcopy {
  int v;
  double *d;
} dcopy;
typedef struct dcopies {
  dcopy *e;
  int n, cap;
} dcopies;

static double *dget(qcal_graph *g, dcopies *c, int v) {
  if (v < 0)
    return NULL;
  for (int k = 0; k < c->n; k++)
    if (c->e[k].v == v)
      return c->e[k].d;
  if (c->n == c->cap) {
    int nc = c->cap ? 2 * c->cap : 32;
    dcopy *ne = realloc(c->e, (size_t)nc * sizeof *ne);
    if (!ne)
      return NULL;
    c->e = ne, c->cap = nc;
  }
  const qcal_value *val = &g->values[v];
  double *d = malloc((val->numel ? val->numel : 1) * sizeof *d);
  if (!d)
    return NULL;
  for (size_t i = 0; i < val->numel; i++)
    d[i] = ((const float *)val->data)[i];
  c->e[c->n++] = (dcopy){v, d};
  return d;
}

typedef struct dpair { /* a pair's arrays in double */
  double *W1, *b1, *W2, *mn, *lo;
} dpair;

/* One equalization step of a pair; returns the largest |log s_c|. */
static double equalize(qcal_graph *g, const qcal_layer_pair *p, const dpair *d, double *cum) {
  const qcal_value *w1 = &g->values[g->nodes[p->a].in[1]], *w2 = &g->values[g->nodes[p->b].in[1]];
  double *W1 = d->W1, *W2 = d->W2;
  const int64_t C = w1->shape[0], O2 = w2->shape[0], Ig = w2->shape[1];
  const int64_t groups = C / Ig, Og = O2 / groups;
  const size_t per1 = w1->numel / (size_t)C, per2 = w2->numel / (size_t)O2,
               taps = per2 / (size_t)Ig;
  double worst = 0;
  for (int64_t c = 0; c < C; c++) {
    double r1 = 0, r2 = 0;
    for (size_t k = 0; k < per1; k++)
      r1 = fmax(r1, fabs(W1[(size_t)c * per1 + k]));
    const int64_t gi = c / Ig, li = c % Ig;
    for (int64_t o = gi * Og; o < (gi + 1) * Og; o++)
      for (size_t t = 0; t < taps; t++)
        r2 = fmax(r2, fabs(W2[(size_t)o * per2 + (size_t)li * taps + t]));
    if (!(r1 > 0) || !(r2 > 0) || !isfinite(r1) || !isfinite(r2))
      continue;
    const double s = sqrt(r1 / r2);
    if (s == 1.0)
      continue;
    for (size_t k = 0; k < per1; k++)
      W1[(size_t)c * per1 + k] /= s;
    if (d->b1)
      d->b1[c] /= s;
    if (d->mn)
      d->mn[c] /= s;
    if (d->lo)
      d->lo[c] /= s;
    for (int64_t o = gi * Og; o < (gi + 1) * Og; o++)
      for (size_t t = 0; t < taps; t++)
        W2[(size_t)o * per2 + (size_t)li * taps + t] *= s;
    cum[c] *= s;
    worst = fmax(worst, fabs(log(s)));
  }
  return worst;
}

qcal_status qcal_pass_cle(qcal_graph *g, const qcal_graph_opts *o) {
  memset(&g->cle, 0, sizeof g->cle);
  if (!o->equalize)
    return QCAL_OK;
  for (int i = 0; i < g->nnodes; i++)
    if (!g->nodes[i].dead &&
        (g->nodes[i].op == QCAL_GOP_QuantizeLinear || g->nodes[i].op == QCAL_GOP_DequantizeLinear))
      return QCAL_OK; /* a quantized model's weights are not equalized again */
  qcal_layer_pair *pairs;
  int np;
  QCAL_TRY(qcal_graph_layer_pairs(g, &pairs, &np));
  qcal_status st = QCAL_OK;
  bool added = false;
  size_t nch = 0;
  for (int k = 0; k < np && !st; k++) {
    if (pairs[k].kind == QCAL_PAIR_CLIP) {
      st = qcal_pair_split_clip(g, &pairs[k]);
      g->cle.clips++, added = true;
    }
    nch += (size_t)g->values[g->nodes[pairs[k].a].in[1]].shape[0];
  }
  double *cum = malloc((nch ? nch : 1) * sizeof *cum);
  dpair *dp = calloc((size_t)np + 1, sizeof *dp);
  dcopies dc = {0};
  if (!st && (!cum || !dp))
    st = qcal_error(QCAL_ENOMEM, "out of memory");
  for (int k = 0; k < np && !st; k++) {
    const qcal_node *a = &g->nodes[pairs[k].a], *b = &g->nodes[pairs[k].b];
    dp[k].W1 = dget(g, &dc, a->in[1]);
    dp[k].W2 = dget(g, &dc, b->in[1]);
    dp[k].b1 = a->nin > 2 ? dget(g, &dc, a->in[2]) : NULL;
    dp[k].mn = pairs[k].min >= 0 ? dget(g, &dc, g->nodes[pairs[k].min].in[1]) : NULL;
    dp[k].lo = pairs[k].floor ? dget(g, &dc, g->nodes[pairs[k].act].in[1]) : NULL;
    if (!dp[k].W1 || !dp[k].W2 || (a->nin > 2 && a->in[2] >= 0 && !dp[k].b1) ||
        (pairs[k].min >= 0 && !dp[k].mn) || (pairs[k].floor && !dp[k].lo))
      st = qcal_error(QCAL_ENOMEM, "out of memory");
  }
  for (size_t c = 0; !st && c < nch; c++)
    cum[c] = 1;
  /* converged when no channel's scale moves by 1e-6 in a whole sweep */
  for (int it = 0; !st && np && it < 1000; it++) {
    double worst = 0;
    size_t off = 0;
    for (int k = 0; k < np; k++) {
      worst = fmax(worst, equalize(g, &pairs[k], &dp[k], cum + off));
      off += (size_t)g->values[g->nodes[pairs[k].a].in[1]].shape[0];
    }
    g->cle.iterations = it + 1;
    if (worst < 1e-6)
      break;
  }
  for (size_t c = 0; !st && c < nch; c++)
    g->cle.max_scale = fmax(g->cle.max_scale, fmax(cum[c], 1 / cum[c]));
  g->cle.pairs = np;
  for (int k = 0; k < dc.n; k++) { /* back to float, rounded once */
    qcal_value *v = &g->values[dc.e[k].v];
    for (size_t i = 0; !st && i < v->numel; i++)
      ((float *)v->data)[i] = (float)dc.e[k].d[i];
    free(dc.e[k].d);
  }
  free(dc.e), free(dp);
  free(cum), free(pairs);
  if (!st && added) /* the new Min nodes go after their Relu (before linking, which walks
                       the nodes in order) */
    st = qcal_pass_sort(g, o);
  return st;
}
