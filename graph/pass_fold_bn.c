/* Pass: BatchNormalization folded into the convolution that feeds it (the
 * model as TensorRT sees it): new weight and bias constants, the Conv
 * writes what the BatchNormalization wrote. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

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

/* Keep what analytic bias correction needs of this BatchNormalization. */
static qcal_status keep_stats(qcal_graph *g, int out, int64_t cout, size_t per, const float *gam,
                              const float *be, const float *nb, const float *nw) {
  qcal_bn_stats *nbn = realloc(g->bn, (size_t)(g->nbn + 1) * sizeof *nbn);
  if (!nbn)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  g->bn = nbn;
  qcal_bn_stats *s = &g->bn[g->nbn];
  *s = (qcal_bn_stats){out,
                       cout,
                       malloc((size_t)cout * sizeof(float)),
                       malloc((size_t)cout * sizeof(float)),
                       malloc((size_t)cout * sizeof(float)),
                       malloc((size_t)cout * sizeof(float))};
  g->nbn++;
  if (!s->beta || !s->gamma || !s->bias || !s->wnorm)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  for (int64_t o = 0; o < cout; o++) {
    double n2 = 0;
    for (size_t k = 0; k < per; k++)
      n2 += (double)nw[(size_t)o * per + k] * nw[(size_t)o * per + k];
    s->beta[o] = be[o], s->gamma[o] = fabsf(gam[o]), s->bias[o] = nb[o];
    s->wnorm[o] = (float)sqrt(n2);
  }
  return QCAL_OK;
}

qcal_status qcal_pass_fold_bn(qcal_graph *g, const qcal_graph_opts *o) {
  if (o->no_fold_bn)
    return QCAL_OK;
  for (int i = 0; i < g->nnodes; i++) {
    if (g->nodes[i].dead || g->nodes[i].op != QCAL_GOP_BatchNormalization)
      continue;
    int x = g->nodes[i].in[0];
    int p = g->values[x].producer;
    if (p < 0 || g->nodes[p].op != QCAL_GOP_Conv || g->nodes[p].dead)
      continue;
    if (qcal_sole_consumer(g, x, NULL) != i || !is_const(g, g->nodes[p].in[1]))
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
    if (o->repair_params) /* only the repairs read them */
      QCAL_TRY(keep_stats(g, g->nodes[i].out[0], cout, per, sc, be, nb, nw));
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
