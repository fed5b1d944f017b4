/* The repairs' common parts: the list, the weighted layers of a calibrated
 * model, and a fake-quantized pass that gathers each layer's input
 * statistics (column sums of its im2col matrix, and its Gram matrix for
 * AdaRound). Bias absorption and bias correction live here too. */
#include <cblas.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/repair_internal.h"
#include "qcal/escape.h"
#include "qcal/progress.h"

const char *const qcal_repair_names[QCAL_REPAIR_COUNT + 1] = {
#define X(id, name, help) name,
    QCAL_REPAIRS(X)
#undef X
        NULL};
const char *const qcal_repair_help[QCAL_REPAIR_COUNT] = {
#define X(id, name, help) help,
    QCAL_REPAIRS(X)
#undef X
};

static qcal_status oom(void) {
  return qcal_error(QCAL_ENOMEM, "out of memory");
}

qcal_status qcal_repair_parse(const char *list, unsigned *mask) {
  *mask = 0;
  const char *p = list;
  while (p && *p) {
    size_t len = strcspn(p, ",");
    int found = -1;
    for (int k = 0; k < QCAL_REPAIR_COUNT; k++)
      if (strlen(qcal_repair_names[k]) == len && !strncmp(p, qcal_repair_names[k], len))
        found = k;
    if (found < 0) {
      char names[128] = "";
      for (int k = 0; k < QCAL_REPAIR_COUNT; k++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", k ? ", " : "",
                 qcal_repair_names[k]);
      return qcal_error(QCAL_EINVAL, "--repair: unknown repair '%.*s' (known: %s)",
                        (int)(len > 64 ? 64 : len), p, names);
    }
    *mask |= 1u << found;
    p += len;
    p += *p == ',';
  }
  if (!*mask)
    return qcal_error(QCAL_EINVAL, "--repair: name at least one repair");
  return QCAL_OK;
}

void qcal_repair_text(unsigned mask, double target_db, char *buf, size_t cap) {
  size_t u = 0;
  if (cap)
    buf[0] = 0;
  for (int k = 0; k < QCAL_REPAIR_COUNT && u < cap; k++)
    if (mask & (1u << k)) {
      int w = snprintf(buf + u, cap - u, "%s%s", u ? "," : "", qcal_repair_names[k]);
      u += w > 0 ? (size_t)w : 0;
    }
  if (!isnan(target_db) && u < cap)
    snprintf(buf + u, cap - u, "%starget-db=%g", u ? "," : "", target_db);
}

void qcal_repair_report_free(qcal_repair_report *r) {
  for (int k = 0; r->kept_names && k < r->kept_float; k++)
    free(r->kept_names[k]);
  free(r->kept_names);
  r->kept_names = NULL;
}

qcal_qformat repair_wfmt(const qcal_quantize_cfg *cfg) {
  return (qcal_qformat){cfg->wbits ? cfg->wbits : cfg->bits, false, false};
}
qcal_qformat repair_afmt(const qcal_quantize_cfg *cfg) {
  return (qcal_qformat){cfg->bits, false, false};
}

void rlayer_get_w(const rstate *s, const rlayer *l, float *w) {
  const float *d = s->q->g->values[l->wv].data;
  if (!l->wt) {
    memcpy(w, d, l->wnumel * sizeof *w);
    return;
  }
  for (int64_t k = 0; k < l->Kg; k++) /* [K, N] -> [N, K] */
    for (int64_t o = 0; o < l->O; o++)
      w[o * l->Kg + k] = d[k * l->O + o];
}

void rlayer_put_w(rstate *s, const rlayer *l, const float *w) {
  float *d = s->q->g->values[l->wv].data;
  if (!l->wt)
    memcpy(d, w, l->wnumel * sizeof *w);
  else
    for (int64_t k = 0; k < l->Kg; k++)
      for (int64_t o = 0; o < l->O; o++)
        d[k * l->O + o] = w[o * l->Kg + k];
  qcal_graph_const_changed(s->q->g, l->wv);
}

void repair_layers_free(rstate *s) {
  for (int k = 0; k < s->n; k++) {
    rlayer *l = &s->L[k];
    free(l->w0), free(l->b0), free(l->sum_x), free(l->sum_q), free(l->H);
  }
  free(s->L);
  s->L = NULL, s->n = 0;
}

/* The layers: every weight point's reader that is a Conv or Gemm with its
 * own constant weight (repair-own-parameters gave it one). */
qcal_status repair_layers(rstate *s, qcal_quantized *q, const qcal_quantize_cfg *cfg) {
  memset(s, 0, sizeof *s);
  s->q = q, s->cfg = cfg;
  qcal_graph *g = q->g;
  s->L = calloc((size_t)q->npts + 1, sizeof *s->L);
  if (!s->L)
    return oom();
  for (int k = 0; k < q->npts; k++) {
    const qcal_quant_point *p = &q->pts[k];
    if (!p->weight || p->nreaders != 1)
      continue;
    int ni = p->reader_node[0];
    qcal_node *n = &g->nodes[ni];
    if ((n->op != QCAL_GOP_Conv && n->op != QCAL_GOP_Gemm) || p->reader_slot[0] != 1)
      continue;
    if (n->op == QCAL_GOP_Gemm && qcal_attr_int(n, "transA", 0))
      continue;
    rlayer *l = &s->L[s->n];
    memset(l, 0, sizeof *l);
    l->node = ni, l->wpt = k, l->apt = -1;
    l->wv = n->in[1];
    l->bv = n->nin > 2 ? n->in[2] : -1;
    const qcal_value *w = &g->values[l->wv], *x = &g->values[n->in[0]];
    l->conv = n->op == QCAL_GOP_Conv;
    l->wnumel = w->numel;
    if (l->conv) {
      l->O = w->shape[0];
      l->groups = qcal_attr_int(n, "group", 1);
      l->Og = l->O / l->groups;
      l->Ig = w->shape[1];
      l->Kg = (int64_t)(w->numel / (size_t)l->O);
      QCAL_TRY(qcal_geom_parse(g, n, x, w->shape + 2, false, false, &l->ge));
      if (x->ndim != 4 && x->ndim != 3)
        continue;
    } else {
      l->wt = !qcal_attr_int(n, "transB", 0);
      l->O = l->wt ? w->shape[1] : w->shape[0];
      l->Kg = l->wt ? w->shape[0] : w->shape[1];
      l->groups = 1, l->Og = l->O, l->Ig = l->Kg;
      if (x->ndim != 2)
        continue;
    }
    if (l->bv >= 0 && g->values[l->bv].numel != (size_t)l->O)
      l->bv = -1;
    l->macs = g->values[n->out[0]].numel * (size_t)l->Kg;
    for (int j = 0; j < q->npts; j++)
      for (int r = 0; r < q->pts[j].nreaders; r++)
        if (!q->pts[j].weight && q->pts[j].reader_node[r] == ni && q->pts[j].reader_slot[r] == 0)
          l->apt = j;
    l->w0 = malloc(l->wnumel * sizeof *l->w0);
    l->b0 = calloc((size_t)l->O, sizeof *l->b0);
    if (!l->w0 || !l->b0)
      return oom();
    rlayer_get_w(s, l, l->w0);
    if (l->bv >= 0)
      memcpy(l->b0, g->values[l->bv].data, (size_t)l->O * sizeof *l->b0);
    s->n++;
  }
  return QCAL_OK;
}

qcal_status repair_fq_list(const rstate *s, const bool *float_node, qcal_graph_fq **fq, int *n) {
  const qcal_quantized *q = s->q;
  int cap = 0;
  for (int k = 0; k < q->npts; k++)
    cap += q->pts[k].nreaders;
  *fq = calloc((size_t)cap + 1, sizeof **fq);
  if (!*fq)
    return oom();
  *n = 0;
  for (int k = 0; k < q->npts; k++) {
    const qcal_quant_point *p = &q->pts[k];
    for (int j = 0; j < p->nreaders; j++) {
      if (float_node && float_node[p->reader_node[j]])
        continue;
      (*fq)[(*n)++] = (qcal_graph_fq){p->reader_node[j], p->reader_slot[j],
                                      p->nscale > 1 ? p->axis : QCAL_PER_TENSOR, p->amax,
                                      p->weight ? repair_wfmt(s->cfg) : repair_afmt(s->cfg)};
    }
  }
  return QCAL_OK;
}

/* Group gi of layer l's input x (one photo) as an im2col matrix [P x Kg]
 * (columns in the weight's (channel, kh, kw) order). */
static void im2col(const rlayer *l, const float *x, int64_t gi, float *X) {
  const qcal_geom *ge = &l->ge;
  const int64_t H = ge->in[0], W = ge->in[1], OH = ge->out[0], OW = ge->out[1];
  const int64_t KH = ge->k[0], KW = ge->k[1];
  for (int64_t oh = 0; oh < OH; oh++)
    for (int64_t ow = 0; ow < OW; ow++) {
      float *row = X + (oh * OW + ow) * l->Kg;
      for (int64_t ic = 0; ic < l->Ig; ic++) {
        const float *xc = x + (gi * l->Ig + ic) * H * W;
        for (int64_t kh = 0; kh < KH; kh++) {
          const int64_t ih = oh * ge->s[0] - ge->pb[0] + kh * ge->d[0];
          for (int64_t kw = 0; kw < KW; kw++) {
            const int64_t iw = ow * ge->s[1] - ge->pb[1] + kw * ge->d[1];
            *row++ = ih >= 0 && ih < H && iw >= 0 && iw < W ? xc[ih * W + iw] : 0.0f;
          }
        }
      }
    }
}

static void col_sums(const float *X, int64_t P, int64_t K, double *sum) {
  for (int64_t p = 0; p < P; p++)
    for (int64_t k = 0; k < K; k++)
      sum[k] += X[p * K + k];
}

/* One photo's contribution to layer l: x unquantized, xq quantized. */
static qcal_status gather_layer(rlayer *l, const float *x, const float *xq, size_t xnumel,
                                bool gram, float *X) {
  const int64_t P = l->conv ? l->ge.out[0] * l->ge.out[1] : (int64_t)(xnumel / (size_t)l->Kg);
  for (int64_t gi = 0; gi < l->groups; gi++) {
    for (int pass = 0; pass < 2; pass++) {
      const float *src = pass ? xq : x;
      const float *M = src;
      if (l->conv) {
        im2col(l, src, gi, X);
        M = X;
      }
      col_sums(M, P, l->Kg, (pass ? l->sum_q : l->sum_x) + gi * l->Kg);
      if (pass && gram) {
        float *H = l->H + (size_t)gi * (size_t)(l->Kg * l->Kg);
        if (l->Kg <= 16) {
          for (int64_t p = 0; p < P; p++)
            for (int64_t a = 0; a < l->Kg; a++)
              for (int64_t b = 0; b < l->Kg; b++)
                H[a * l->Kg + b] += M[p * l->Kg + a] * M[p * l->Kg + b];
        } else {
          cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)l->Kg, (int)P, 1.0f, M,
                      (int)l->Kg, 1.0f, H, (int)l->Kg);
        }
      }
    }
  }
  l->positions += (size_t)P;
  return QCAL_OK;
}

qcal_status gather_inputs(rstate *s, qcal_tensor *imgs, int n, bool gram, const char *what) {
  qcal_graph *g = s->q->g;
  size_t xmax = 0, Xmax = 0;
  for (int k = 0; k < s->n; k++) {
    rlayer *l = &s->L[k];
    free(l->sum_x), free(l->sum_q), free(l->H);
    l->H = NULL;
    l->positions = 0;
    const size_t kt = (size_t)(l->groups * l->Kg);
    l->sum_x = calloc(kt, sizeof *l->sum_x);
    l->sum_q = calloc(kt, sizeof *l->sum_q);
    if (gram)
      l->H = calloc(kt * (size_t)l->Kg, sizeof *l->H);
    if (!l->sum_x || !l->sum_q || (gram && !l->H))
      return oom();
    const qcal_value *x = &g->values[g->nodes[l->node].in[0]];
    xmax = x->numel > xmax ? x->numel : xmax;
    size_t P = l->conv ? (size_t)(l->ge.out[0] * l->ge.out[1]) : 0;
    Xmax = P * (size_t)l->Kg > Xmax ? P * (size_t)l->Kg : Xmax;
  }
  qcal_graph_fq *fq;
  int nfq;
  QCAL_TRY(repair_fq_list(s, NULL, &fq, &nfq));
  float *x = malloc((xmax + 1) * sizeof *x), *xq = malloc((xmax + 1) * sizeof *xq);
  float *X = malloc((Xmax + 1) * sizeof *X);
  qcal_status st = x && xq && X ? qcal_graph_fake_quant(g, fq, nfq) : oom();
  const qcal_qformat af = repair_afmt(s->cfg);
  qcal_progress prog;
  qcal_progress_start(&prog, what, (size_t)n);
  for (int i = 0; i < n && !st; i++) {
    const void *in[1] = {imgs[i].data};
    st = qcal_graph_run(g, in);
    for (int k = 0; k < s->n && !st; k++) {
      rlayer *l = &s->L[k];
      const int xv = g->nodes[l->node].in[0];
      const size_t nx = g->values[xv].numel;
      st = qcal_graph_read(g, xv, x);
      if (st)
        break;
      const float *qx = x;
      if (l->apt >= 0) {
        const float a = s->q->pts[l->apt].amax[0];
        const float sc = qcal_quant_scale(af, a), sd = qcal_dequant_scale(af, a);
        const float lo = qcal_qformat_qmin(af), hi = qcal_qformat_qmax(af);
        for (size_t e = 0; e < nx; e++)
          xq[e] = qcal_fake_quant_one(x[e], sc, sd, lo, hi);
        qx = xq;
      }
      st = gather_layer(l, x, qx, nx, gram, X);
    }
    qcal_progress_step(&prog, 1);
  }
  qcal_progress_end(&prog);
  qcal_status cl = qcal_graph_fake_quant(g, NULL, 0);
  st = st ? st : cl;
  for (int k = 0; k < s->n && !st && gram; k++) { /* ssyrk filled the upper triangle */
    rlayer *l = &s->L[k];
    for (int64_t gi = 0; gi < l->groups; gi++) {
      float *H = l->H + (size_t)gi * (size_t)(l->Kg * l->Kg);
      for (int64_t a = 0; a < l->Kg; a++)
        for (int64_t b = 0; b < a; b++)
          H[a * l->Kg + b] = H[b * l->Kg + a];
    }
  }
  free(fq), free(x), free(xq), free(X);
  return st;
}

/* ---- high-bias absorption */

/* Pairs in the form of graph/pass_absorb.c (a Max floor between them):
 * per channel c = the least pre-activation seen on the calibration photos
 * (the paper's beta - 3 gamma, measured, which also covers models whose
 * BatchNorm is already folded), moved from a's bias (and floor and Clip
 * bound) into b's bias as W_b c. Exact on every input; c only decides the
 * range b's input is quantized over. */
qcal_status repair_absorb(rstate *s, qcal_tensor *imgs, int n) {
  qcal_graph *g = s->q->g;
  qcal_layer_pair *pairs;
  int np;
  QCAL_TRY(qcal_graph_layer_pairs(g, &pairs, &np));
  float **mins = calloc((size_t)np + 1, sizeof *mins);
  qcal_status st = mins ? QCAL_OK : oom();
  size_t ymax = 0;
  for (int k = 0; k < np && !st; k++) {
    if (!pairs[k].floor)
      continue;
    const qcal_value *y = &g->values[g->nodes[pairs[k].a].out[0]];
    int64_t C = g->values[g->nodes[pairs[k].a].in[1]].shape[0];
    if (!(mins[k] = malloc((size_t)C * sizeof **mins)))
      st = oom();
    for (int64_t c = 0; !st && c < C; c++)
      mins[k][c] = INFINITY;
    ymax = y->numel > ymax ? y->numel : ymax;
  }
  float *y = malloc((ymax + 1) * sizeof *y);
  if (!st && !y)
    st = oom();
  qcal_progress prog;
  qcal_progress_start(&prog, "bias absorption", (size_t)n);
  for (int i = 0; i < n && !st; i++) { /* the float model's pre-activation minima */
    const void *in[1] = {imgs[i].data};
    st = qcal_graph_run(g, in);
    for (int k = 0; k < np && !st; k++) {
      if (!mins[k])
        continue;
      const qcal_value *yv = &g->values[g->nodes[pairs[k].a].out[0]];
      int64_t C = yv->shape[1];
      size_t hw = yv->numel / (size_t)(yv->shape[0] * C);
      st = qcal_graph_read(g, g->nodes[pairs[k].a].out[0], y);
      for (size_t e = 0; !st && e < yv->numel; e++) {
        int64_t c = (int64_t)((e / hw) % (size_t)C);
        mins[k][c] = fminf(mins[k][c], y[e]);
      }
    }
    qcal_progress_step(&prog, 1);
  }
  qcal_progress_end(&prog);
  for (int k = 0; k < np && !st; k++) {
    if (!mins[k])
      continue;
    qcal_node *a = &g->nodes[pairs[k].a], *b = &g->nodes[pairs[k].b];
    const qcal_value *w2 = &g->values[b->in[1]];
    float *b1 = g->values[a->in[2]].data, *b2 = g->values[b->in[2]].data;
    float *lo = g->values[g->nodes[pairs[k].act].in[1]].data;
    float *mn = pairs[k].min >= 0 ? g->values[g->nodes[pairs[k].min].in[1]].data : NULL;
    const float *W2 = w2->data;
    const int64_t C = g->values[a->in[1]].shape[0], O2 = w2->shape[0], Ig = w2->shape[1];
    const int64_t Og = O2 / (C / Ig);
    const size_t per2 = w2->numel / (size_t)O2, taps = per2 / (size_t)Ig;
    bool any = false;
    for (int64_t c = 0; c < C; c++) {
      /* above the floor (a ReLU's 0) and below any Clip bound: what the
       * activation passes, every photo seen */
      float m = fminf(mins[k][c], mn ? mn[c] : INFINITY) - lo[c];
      if (!(m > 0) || !isfinite(m))
        continue;
      b1[c] -= m, lo[c] -= m;
      if (mn)
        mn[c] -= m;
      const int64_t gi = c / Ig, li = c % Ig;
      for (int64_t o = gi * Og; o < (gi + 1) * Og; o++) {
        double acc = 0;
        for (size_t t = 0; t < taps; t++)
          acc += W2[(size_t)o * per2 + (size_t)li * taps + t];
        b2[o] += (float)(acc * m);
      }
      s->q->rep.absorbed_max = fmax(s->q->rep.absorbed_max, m);
      any = true;
    }
    if (any) {
      s->q->rep.absorbed_pairs++;
      qcal_graph_const_changed(g, a->in[2]);
      qcal_graph_const_changed(g, b->in[2]);
      qcal_graph_const_changed(g, g->nodes[pairs[k].act].in[1]);
      if (mn)
        qcal_graph_const_changed(g, g->nodes[pairs[k].min].in[1]);
    }
  }
  for (int k = 0; k < np; k++)
    free(mins ? mins[k] : NULL);
  free(mins), free(y), free(pairs);
  return st;
}

/* ---- empirical bias correction */

/* The mean output of layer l for input column means m (per group), with
 * weight rows w [O x Kg]. */
static double mean_out(const rlayer *l, const float *w, const double *m, int64_t o) {
  const int64_t gi = o / l->Og;
  double acc = 0;
  for (int64_t k = 0; k < l->Kg; k++)
    acc += (double)w[o * l->Kg + k] * m[gi * l->Kg + k];
  return acc;
}

qcal_status repair_bias(rstate *s, qcal_tensor *imgs, int n) {
  qcal_graph *g = s->q->g;
  size_t wmax = 0;
  for (int k = 0; k < s->n; k++)
    wmax = s->L[k].wnumel > wmax ? s->L[k].wnumel : wmax;
  float *wq = malloc((wmax + 1) * sizeof *wq);
  if (!wq)
    return oom();
  const qcal_qformat wf = repair_wfmt(s->cfg);
  qcal_status st = QCAL_OK;
  /* twice: the second pass sees its inputs with the first's corrections */
  for (int round = 0; round < 2 && !st; round++) {
    st = gather_inputs(s, imgs, n, false, round ? "bias correction (2)" : "bias correction");
    s->q->rep.bias_layers = 0;
    for (int k = 0; k < s->n && !st; k++) {
      rlayer *l = &s->L[k];
      if (l->bv < 0 || !l->positions)
        continue;
      const qcal_quant_point *p = &s->q->pts[l->wpt];
      rlayer_get_w(s, l, wq);
      for (int64_t o = 0; o < l->O; o++) { /* the weight as the quantized model holds it */
        const float a = p->amax[p->nscale > 1 ? o : 0];
        const float sc = qcal_quant_scale(wf, a), sd = qcal_dequant_scale(wf, a);
        for (int64_t e = 0; e < l->Kg; e++)
          wq[o * l->Kg + e] = qcal_fake_quant_one(wq[o * l->Kg + e], sc, sd, qcal_qformat_qmin(wf),
                                                  qcal_qformat_qmax(wf));
      }
      const size_t kt = (size_t)(l->groups * l->Kg);
      double *mx = malloc(kt * sizeof *mx), *mq = malloc(kt * sizeof *mq);
      if (!mx || !mq) {
        free(mx), free(mq);
        st = oom();
        break;
      }
      for (size_t e = 0; e < kt; e++)
        mx[e] = l->sum_x[e] / (double)l->positions, mq[e] = l->sum_q[e] / (double)l->positions;
      float *b = g->values[l->bv].data;
      double spread = 0;
      for (int64_t o = 0; o < l->O; o++) {
        double want = mean_out(l, l->w0, mx, o) + l->b0[o];
        double got = mean_out(l, wq, mq, o) + b[o];
        b[o] -= (float)(got - want);
        spread = fmax(spread, fabs(got - want));
      }
      qcal_graph_const_changed(g, l->bv);
      s->q->rep.bias_max_shift = fmax(s->q->rep.bias_max_shift, spread);
      s->q->rep.bias_layers++;
      free(mx), free(mq);
    }
  }
  free(wq);
  return st;
}

/* ---- the report */

struct json_object *qcal_repair_report_json(const qcal_repair_report *r) {
  json_object *o = json_object_new_object(), *names = json_object_new_array();
  for (int k = 0; k < QCAL_REPAIR_COUNT; k++)
    if (r->mask & (1u << k))
      json_object_array_add(names, json_object_new_string(qcal_repair_names[k]));
  json_object_object_add(o, "repairs", names);
  if (r->mask & (1u << QCAL_REPAIR_CLE)) {
    json_object *c = json_object_new_object();
    json_object_object_add(c, "pairs", json_object_new_int(r->cle.pairs));
    json_object_object_add(c, "iterations", json_object_new_int(r->cle.iterations));
    json_object_object_add(c, "clips_split", json_object_new_int(r->cle.clips));
    json_object_object_add(c, "max_scale", json_object_new_double(r->cle.max_scale));
    json_object_object_add(o, "cle", c);
  }
  if (r->mask & (1u << QCAL_REPAIR_BIAS)) {
    json_object *c = json_object_new_object();
    json_object_object_add(c, "absorbed_pairs", json_object_new_int(r->absorbed_pairs));
    json_object_object_add(c, "absorbed_max", json_object_new_double(r->absorbed_max));
    json_object_object_add(c, "corrected_layers", json_object_new_int(r->bias_layers));
    json_object_object_add(c, "max_correction", json_object_new_double(r->bias_max_shift));
    json_object_object_add(o, "bias", c);
  }
  if (r->mask & (1u << QCAL_REPAIR_BIAS_BN)) {
    json_object *c = json_object_new_object();
    json_object_object_add(c, "batchnorm_statistics", json_object_new_int(r->bn_statistics));
    json_object_object_add(c, "corrected_layers", json_object_new_int(r->bn_layers));
    json_object_object_add(c, "max_correction", json_object_new_double(r->bn_max_shift));
    json_object_object_add(o, "bias_bn", c);
  }
  if (r->mask & (1u << QCAL_REPAIR_ADAROUND)) {
    json_object *c = json_object_new_object();
    json_object_object_add(c, "layers", json_object_new_int(r->adaround_layers));
    json_object_object_add(c, "weights", json_object_new_int64(r->adaround_weights));
    json_object_object_add(c, "flipped", json_object_new_int64(r->adaround_flipped));
    json_object_object_add(c, "loss_nearest", json_object_new_double(r->adaround_loss_nearest));
    json_object_object_add(c, "loss", json_object_new_double(r->adaround_loss));
    json_object_object_add(o, "adaround", c);
  }
  if (!isnan(r->target_db)) {
    json_object *c = json_object_new_object(), *kept = json_object_new_array();
    json_object_object_add(c, "target_db", json_object_new_double(r->target_db));
    json_object_object_add(c, "reached_db", json_object_new_double(r->reached_db));
    json_object_object_add(c, "search_db", json_object_new_double(r->search_db));
    json_object_object_add(c, "searches", json_object_new_int(r->tries));
    if (!isnan(r->file_db))
      json_object_object_add(c, "file_db", json_object_new_double(r->file_db));
    json_object_object_add(c, "all_int8_db", json_object_new_double(r->all_int8_db));
    json_object_object_add(c, "held_out_photos", json_object_new_int(r->held));
    json_object_object_add(c, "layers", json_object_new_int(r->layers));
    for (int k = 0; k < r->kept_float; k++)
      json_object_array_add(kept, json_object_new_string(r->kept_names[k]));
    json_object_object_add(c, "kept_float", kept);
    json_object_object_add(c, "weight_fraction_int8", json_object_new_double(r->weight_frac_int8));
    json_object_object_add(c, "mac_fraction_int8", json_object_new_double(r->mac_frac_int8));
    json_object_object_add(o, "mixed_precision", c);
  }
  return o;
}

void qcal_repair_report_print(const qcal_repair_report *r, FILE *out) {
  if (r->mask & (1u << QCAL_REPAIR_CLE)) {
    if (r->cle.pairs)
      fprintf(out, "  cle: %d layer pairs equalized in %d sweeps, largest channel scale %.3g%s\n",
              r->cle.pairs, r->cle.iterations, r->cle.max_scale,
              r->cle.clips ? " (Clip bounds made per channel)" : "");
    else
      fprintf(out, "  cle: no pair of layers can be equalized in this model (two convolutions "
                   "joined only by ReLU, PReLU, ReLU6/Clip(0, hi) or nothing)\n");
  }
  if (r->mask & (1u << QCAL_REPAIR_BIAS))
    fprintf(out,
            "  bias: %d pairs absorbed high bias (largest %.3g); %d layers' biases corrected "
            "(largest %.3g)\n",
            r->absorbed_pairs, r->absorbed_max, r->bias_layers, r->bias_max_shift);
  if (r->mask & (1u << QCAL_REPAIR_BIAS_BN)) {
    if (r->bn_layers)
      fprintf(out,
              "  bias-bn: %d layers' biases corrected from %d folded BatchNorms' statistics "
              "(largest %.3g)\n",
              r->bn_layers, r->bn_statistics, r->bn_max_shift);
    else
      fprintf(out, "  bias-bn: nothing corrected: %s\n",
              r->bn_statistics ? "no layer reads a BatchNorm-set output through Relu/Clip"
                               : "the model carries no BatchNormalization statistics (folded "
                                 "before export); use bias for the empirical correction");
  }
  if (r->mask & (1u << QCAL_REPAIR_ADAROUND))
    fprintf(out,
            "  adaround: %d layers, %ld of %ld weights rounded the other way than nearest; "
            "reconstruction error %.4g -> %.4g (%.1f s)\n",
            r->adaround_layers, r->adaround_flipped, r->adaround_weights, r->adaround_loss_nearest,
            r->adaround_loss, r->seconds[1]);
  if (!isnan(r->target_db)) {
    const double got = isnan(r->file_db) ? r->reached_db : r->file_db;
    fprintf(out,
            "  target %.1f dB: all int8 %.1f dB; %d of %d units (layers, Add/Concat/pool inputs) "
            "kept in float -> %.1f dB on %d held-out photos (simulated",
            r->target_db, r->all_int8_db, r->kept_float, r->layers, r->reached_db, r->held);
    if (!isnan(r->file_db))
      fprintf(out, "; the file as written: %.1f dB", r->file_db);
    if (r->tries > 1)
      fprintf(out, "; search %d aimed at %.1f dB", r->tries, r->search_db);
    fprintf(out, "); %.1f%% of the weights and %.1f%% of the MACs stay int8%s\n",
            100 * r->weight_frac_int8, 100 * r->mac_frac_int8,
            got >= r->target_db ? "" : " (target not reached)");
    for (int k = 0; k < r->kept_float; k++) {
      char shown[600];
      fprintf(out, "    float: %s\n", qcal_escape_text(r->kept_names[k], shown, sizeof shown));
    }
  }
}
