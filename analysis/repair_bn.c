/* Analytic bias correction (Nagel et al. 2019, "Data-Free Quantization",
 * section 4.2): where a layer's input is a Conv output that a folded
 * BatchNormalization set, through Relu / Clip / Max / Min, the input's
 * per-channel mean on the data the network was trained on follows from the
 * BatchNorm's beta and gamma without any photo: with the pre-activation
 * z ~ N(mu, sigma^2) and x = clip(z, lo, hi),
 *   E[x] = lo + g(lo) - g(hi),  g(t) = E[relu(z - t)]
 *        = sigma phi((mu - t) / sigma) + (mu - t) Phi((mu - t) / sigma),
 * and the weight quantization's error of the output's mean, (W_q - W) E[x]
 * per output channel, is subtracted from the bias. The paper's form: the
 * input's own quantization and padding are not modelled (the empirical
 * correction, `bias`, measures both). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/repair_internal.h"

static double relu_mean(double mu, double sd, double t) {
  if (isinf(t))
    return t > 0 ? 0 : INFINITY;
  const double d = mu - t;
  if (!(sd > 0))
    return d > 0 ? d : 0;
  const double u = d / sd;
  return sd * exp(-0.5 * u * u) / sqrt(2 * M_PI) + d * 0.5 * erfc(-u / sqrt(2));
}

double qcal_clipped_normal_mean(double mu, double sd, double lo, double hi) {
  if (isinf(lo) && lo < 0)
    return mu - relu_mean(mu, sd, hi);
  return lo + relu_mean(mu, sd, lo) - relu_mean(mu, sd, hi);
}

/* Per-channel constant c of v (numel 1 or C). */
static double chan(const qcal_value *v, int64_t c) {
  const float *d = v->data;
  return d[v->numel == 1 ? 0 : c];
}

/* The bounds node n (reading a value of C channels and ndim dims) clips
 * channel c to (-inf / inf: none), or false when n is not Relu, Clip or a
 * Max / Min against a per-channel constant. */
static bool clip_of(qcal_graph *g, const qcal_node *n, int ndim, int64_t C, int64_t c, double *l,
                    double *h) {
  *l = -INFINITY, *h = INFINITY;
  if (n->op == QCAL_GOP_Relu) {
    *l = 0;
    return true;
  }
  if (n->op == QCAL_GOP_Clip) {
    qcal_act a;
    float al, be;
    if (!qcal_node_act(g, (qcal_node *)n, &a, &al, &be) || a != QCAL_ACT_CLIP)
      return false;
    *l = al, *h = be;
    return true;
  }
  if ((n->op == QCAL_GOP_Max || n->op == QCAL_GOP_Min) && n->nin == 2 &&
      qcal_per_channel_const(g, n->in[1], ndim, C)) {
    *(n->op == QCAL_GOP_Max ? l : h) = chan(&g->values[n->in[1]], c);
    return true;
  }
  return false;
}

static const rlayer *layer_of(const rstate *s, int node) {
  for (int k = 0; k < s->n; k++)
    if (s->L[k].node == node)
      return &s->L[k];
  return NULL;
}

/* E[x] per channel of value xv (C channels) in m, or false when xv is not a
 * BatchNorm-set Conv output through Relu / Clip / Max / Min. */
static bool input_means(const rstate *s, int xv, int64_t C, double *m) {
  qcal_graph *g = s->q->g;
  double *lo = malloc((size_t)C * sizeof *lo), *hi = malloc((size_t)C * sizeof *hi);
  bool ok = lo && hi;
  for (int64_t c = 0; ok && c < C; c++)
    lo[c] = -INFINITY, hi[c] = INFINITY;
  int v = xv;
  const qcal_bn_stats *bs = NULL;
  while (ok && !bs) {
    const int p = g->values[v].producer;
    if (p < 0) {
      ok = false;
      break;
    }
    const qcal_node *n = &g->nodes[p];
    if (n->op == QCAL_GOP_Conv) {
      for (int k = 0; k < g->nbn && !bs; k++)
        if (g->bn[k].value == v && g->bn[k].channels == C)
          bs = &g->bn[k];
      ok = bs != NULL;
      break;
    }
    for (int64_t c = 0; ok && c < C; c++) { /* bounds applied nearest the input last */
      double l, h;
      if (!(ok = clip_of(g, n, g->values[v].ndim, C, c, &l, &h)))
        break;
      /* clip(clip(z, l, h), lo, hi) with the outer bounds already in lo/hi */
      lo[c] = fmin(fmax(lo[c], l), hi[c]);
      hi[c] = fmax(fmin(hi[c], h), lo[c]);
    }
    v = n->in[0];
  }
  const int a = ok ? g->values[bs->value].producer : -1;
  const rlayer *la = a >= 0 ? layer_of(s, a) : NULL;
  const qcal_node *an = a >= 0 ? &g->nodes[a] : NULL;
  const float *W = la ? la->w0 : an ? g->values[an->in[1]].data : NULL;
  const float *b = la                                    ? la->b0
                   : an && an->nin > 2 && an->in[2] >= 0 ? g->values[an->in[2]].data
                                                         : NULL;
  const size_t per = an ? g->values[an->in[1]].numel / (size_t)C : 0;
  for (int64_t c = 0; ok && c < C; c++) {
    double n2 = 0;
    for (size_t k = 0; k < per; k++)
      n2 += (double)W[(size_t)c * per + k] * W[(size_t)c * per + k];
    /* equalization divided the row by sc, absorption and the like moved the bias */
    const double sc = n2 > 0 ? bs->wnorm[c] / sqrt(n2) : 1;
    const double mu = bs->beta[c] / sc + ((b ? b[c] : 0) - bs->bias[c] / sc);
    m[c] = qcal_clipped_normal_mean(mu, bs->gamma[c] / sc, lo[c], hi[c]);
    ok = isfinite(m[c]);
  }
  free(lo), free(hi);
  return ok;
}

qcal_status repair_bias_bn(rstate *s) {
  qcal_graph *g = s->q->g;
  const qcal_qformat wf = repair_wfmt(s->cfg);
  s->q->rep.bn_layers = 0;
  s->q->rep.bn_statistics = g->nbn;
  qcal_status st = QCAL_OK;
  for (int k = 0; k < s->n && !st; k++) {
    rlayer *l = &s->L[k];
    if (!l->conv || l->bv < 0)
      continue;
    const int xv = g->nodes[l->node].in[0];
    const int64_t C = l->groups * l->Ig, taps = l->Kg / l->Ig;
    double *m = malloc((size_t)C * sizeof *m);
    float *wq = malloc(l->wnumel * sizeof *wq);
    if (!m || !wq) {
      free(m), free(wq);
      return qcal_error(QCAL_ENOMEM, "out of memory");
    }
    if (input_means(s, xv, C, m)) {
      const qcal_quant_point *p = &s->q->pts[l->wpt];
      rlayer_get_w(s, l, wq);
      float *b = g->values[l->bv].data;
      double worst = 0;
      for (int64_t o = 0; o < l->O; o++) {
        const float a = p->amax[p->nscale > 1 ? o : 0];
        const float sc = qcal_quant_scale(wf, a), sd = qcal_dequant_scale(wf, a);
        const int64_t gi = o / l->Og;
        double err = 0;
        for (int64_t e = 0; e < l->Kg; e++) {
          const float w = wq[o * l->Kg + e];
          const float q =
              qcal_fake_quant_one(w, sc, sd, qcal_qformat_qmin(wf), qcal_qformat_qmax(wf));
          err += ((double)q - l->w0[o * l->Kg + e]) * m[gi * l->Ig + e / taps];
        }
        b[o] -= (float)err;
        worst = fmax(worst, fabs(err));
      }
      qcal_graph_const_changed(g, l->bv);
      s->q->rep.bn_layers++;
      s->q->rep.bn_max_shift = fmax(s->q->rep.bn_max_shift, worst);
    }
    free(m), free(wq);
  }
  return st;
}
