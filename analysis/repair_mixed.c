/* Mixed precision for a target SQNR. A unit is a node that reads through
 * Q/DQ pairs: a weighted layer (its weight and input) or, with TensorRT's
 * placement, a residual Add, Concat, pooling or Mul (its inputs). Each
 * unit's sensitivity is the worst output's SQNR on the held-out photos
 * with that unit alone quantized (as qcal sweep measures it); units are
 * then kept in float, most sensitive first, and the fewest that bring the
 * whole quantized model to the target are found by doubling then
 * bisection, each candidate measured end to end. A unit kept in float
 * loses its Q/DQ readers, and a weighted layer gets its float weight and
 * bias back. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/repair_internal.h"
#include "qcal/metrics.h"
#include "qcal/progress.h"

typedef struct held_set {
  qcal_tensor *imgs;
  int n;
  float **ref; /* [n * noutputs]: the original float model's outputs */
} held_set;

/* Photo i's outputs after a run, added to es[noutputs]. */
static qcal_status add_outputs(qcal_graph *g, const held_set *h, int i, float *buf,
                               qcal_error_stats *es) {
  const int no = g->noutputs;
  for (int o = 0; o < no; o++) {
    const float *r = h->ref[(size_t)i * (size_t)no + (size_t)o];
    if (!r)
      continue;
    QCAL_TRY(qcal_graph_read(g, g->outputs[o], buf));
    qcal_error_stats_update(&es[o], g->values[g->outputs[o]].numel, r, buf, INFINITY);
  }
  return QCAL_OK;
}

/* The lowest output SQNR of es[noutputs]. */
static double worst_output(const qcal_graph *g, const held_set *h, const qcal_error_stats *es) {
  double db = INFINITY;
  for (int o = 0; o < g->noutputs; o++) {
    if (!h->ref[o])
      continue;
    qcal_metrics m;
    qcal_error_stats_finish(&es[o], &m);
    db = m.sqnr_db < db ? m.sqnr_db : db;
  }
  return db;
}

/* Worst output SQNR over the held photos of the graph as it is (fq set). */
static qcal_status held_db(qcal_graph *g, const held_set *h, float *buf, double *db) {
  const int no = g->noutputs;
  qcal_error_stats *es = calloc((size_t)no + 1, sizeof *es);
  if (!es)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  for (int o = 0; o < no; o++)
    qcal_error_stats_init(&es[o]);
  qcal_status st = QCAL_OK;
  for (int i = 0; i < h->n && !st; i++) {
    const void *in[1] = {h->imgs[i].data};
    st = qcal_graph_run(g, in);
    if (!st)
      st = add_outputs(g, h, i, buf, es);
  }
  *db = st ? 0 : worst_output(g, h, es);
  free(es);
  return st;
}

/* Units in float[] get their float parameters, the others `cur`. */
static void set_params(rstate *s, const bool *flt, float **cur_w, float **cur_b) {
  qcal_graph *g = s->q->g;
  for (int u = 0; u < s->nunits; u++) {
    if (s->units[u].layer < 0)
      continue;
    const int k = s->units[u].layer;
    const rlayer *l = &s->L[k];
    const bool f = flt[u];
    rlayer_put_w(s, l, f ? l->w0 : cur_w[k]);
    if (l->bv >= 0) {
      memcpy(g->values[l->bv].data, f ? l->b0 : cur_b[k], (size_t)l->O * sizeof(float));
      qcal_graph_const_changed(g, l->bv);
    }
  }
}

static qcal_status eval_set(rstate *s, const held_set *h, const bool *flt, float **cw, float **cb,
                            float *buf, double *db) {
  qcal_graph *g = s->q->g;
  bool *fn = calloc((size_t)g->nnodes + 1, sizeof *fn);
  if (!fn)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  for (int u = 0; u < s->nunits; u++)
    fn[s->units[u].node] = flt[u];
  set_params(s, flt, cw, cb);
  qcal_graph_fq *fq;
  int nfq;
  qcal_status st = repair_fq_list(s, fn, &fq, &nfq);
  if (!st)
    st = qcal_graph_fake_quant(g, fq, nfq);
  if (!st)
    st = held_db(g, h, buf, db);
  qcal_status cl = qcal_graph_fake_quant(g, NULL, 0);
  free(fq), free(fn);
  return st ? st : cl;
}

static const double *sort_key;
static int by_key(const void *a, const void *b) {
  double x = sort_key[*(const int *)a], y = sort_key[*(const int *)b];
  return (x > y) - (x < y);
}

/* Unit k alone quantized, the rest float: one float run per photo, then
 * each unit from last to first, run only from its own node. */
static qcal_status sensitivities(rstate *s, const held_set *h, float *buf, double *sens) {
  qcal_graph *g = s->q->g;
  const int no = g->noutputs, L = s->nunits;
  qcal_error_stats *es = calloc((size_t)(L * no) + 1, sizeof *es);
  qcal_graph_fq *all;
  int nall;
  if (!es)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  qcal_status st = repair_fq_list(s, NULL, &all, &nall);
  qcal_graph_fq *one = st ? NULL : malloc(((size_t)nall + 1) * sizeof *one);
  if (!st && !one)
    st = qcal_error(QCAL_ENOMEM, "out of memory");
  for (int k = 0; k < L * no; k++)
    qcal_error_stats_init(&es[k]);
  qcal_progress prog;
  qcal_progress_start(&prog, "layer sensitivity", (size_t)h->n);
  for (int i = 0; i < h->n && !st; i++) {
    const void *in[1] = {h->imgs[i].data};
    st = qcal_graph_fake_quant(g, NULL, 0);
    if (!st)
      st = qcal_graph_run(g, in);
    for (int k = L - 1; k >= 0 && !st; k--) {
      int n1 = 0;
      for (int e = 0; e < nall; e++)
        if (all[e].node == s->units[k].node)
          one[n1++] = all[e];
      st = qcal_graph_fake_quant(g, one, n1);
      if (!st)
        st = qcal_graph_run_from(g, in, s->units[k].node);
      if (!st)
        st = add_outputs(g, h, i, buf, es + (size_t)k * (size_t)no);
    }
    qcal_progress_step(&prog, 1);
  }
  qcal_progress_end(&prog);
  for (int k = 0; k < L && !st; k++)
    sens[k] = worst_output(g, h, es + (size_t)k * (size_t)no);
  qcal_status cl = qcal_graph_fake_quant(g, NULL, 0);
  free(es), free(all), free(one);
  return st ? st : cl;
}

/* Drop the Q/DQ readers of layers kept in float, and points left unread. */
static void drop_float_points(rstate *s, const bool *fn) {
  qcal_quantized *q = s->q;
  int w = 0;
  for (int k = 0; k < q->npts; k++) {
    qcal_quant_point *p = &q->pts[k];
    int r = 0;
    for (int j = 0; j < p->nreaders; j++)
      if (!fn[p->reader_node[j]]) {
        p->reader_node[r] = p->reader_node[j];
        p->reader_slot[r++] = p->reader_slot[j];
      }
    p->nreaders = r;
    if (r == 0) {
      free(p->amax), free(p->scale), free(p->reader_node), free(p->reader_slot);
      continue;
    }
    q->pts[w++] = *p;
  }
  q->npts = w;
}

static int by_node(const void *a, const void *b) {
  return ((const runit *)a)->node - ((const runit *)b)->node;
}

/* Every node that reads through a pair, in node order. */
static qcal_status find_units(rstate *s) {
  const qcal_quantized *q = s->q;
  bool *seen = calloc((size_t)q->g->nnodes + 1, sizeof *seen);
  int cap = 0;
  for (int k = 0; k < q->npts; k++)
    cap += q->pts[k].nreaders;
  s->units = calloc((size_t)cap + 1, sizeof *s->units);
  s->nunits = 0;
  if (!seen || !s->units) {
    free(seen);
    return qcal_error(QCAL_ENOMEM, "out of memory");
  }
  for (int k = 0; k < q->npts; k++)
    for (int j = 0; j < q->pts[k].nreaders; j++) {
      int nd = q->pts[k].reader_node[j];
      if (seen[nd])
        continue;
      seen[nd] = true;
      s->units[s->nunits++] = (runit){nd, -1};
    }
  qsort(s->units, (size_t)s->nunits, sizeof *s->units, by_node);
  for (int u = 0; u < s->nunits; u++)
    for (int k = 0; k < s->n; k++)
      if (s->L[k].node == s->units[u].node)
        s->units[u].layer = k;
  free(seen);
  return QCAL_OK;
}

qcal_status repair_mixed(rstate *s, qcal_tensor *imgs, int nheld, float **ref) {
  qcal_graph *g = s->q->g;
  qcal_repair_report *r = &s->q->rep;
  QCAL_TRY(find_units(s));
  const int L = s->nunits;
  held_set h = {imgs, nheld, ref};
  size_t omax = 0;
  for (int o = 0; o < g->noutputs; o++)
    omax = g->values[g->outputs[o]].numel > omax ? g->values[g->outputs[o]].numel : omax;
  float *buf = malloc((omax + 1) * sizeof *buf);
  float **cw = calloc((size_t)s->n + 1, sizeof *cw), **cb = calloc((size_t)s->n + 1, sizeof *cb);
  double *sens = calloc((size_t)L + 1, sizeof *sens);
  int *order = malloc(((size_t)L + 1) * sizeof *order);
  bool *flt = calloc((size_t)L + 1, sizeof *flt);
  qcal_status st =
      buf && cw && cb && sens && order && flt ? QCAL_OK : qcal_error(QCAL_ENOMEM, "out of memory");
  for (int k = 0; k < L && !st; k++)
    order[k] = k;
  for (int k = 0; k < s->n && !st; k++) { /* the repaired parameters */
    const rlayer *l = &s->L[k];
    cw[k] = malloc(l->wnumel * sizeof **cw);
    cb[k] = malloc((size_t)l->O * sizeof **cb);
    if (!cw[k] || !cb[k]) {
      st = qcal_error(QCAL_ENOMEM, "out of memory");
      break;
    }
    rlayer_get_w(s, l, cw[k]);
    if (l->bv >= 0)
      memcpy(cb[k], g->values[l->bv].data, (size_t)l->O * sizeof **cb);
  }
  r->layers = L, r->held = nheld;
  if (!st) { /* sensitivities on the float parameters */
    for (int k = 0; k < L; k++)
      flt[k] = true;
    set_params(s, flt, cw, cb);
    st = sensitivities(s, &h, buf, sens);
    memset(flt, 0, (size_t)L * sizeof *flt);
  }
  if (!st) {
    sort_key = sens;
    qsort(order, (size_t)L, sizeof *order, by_key);
  }
  /* db(k): the k most sensitive layers in float */
  double db0 = 0, best = -INFINITY;
  int chosen = 0;
  if (!st)
    st = eval_set(s, &h, flt, cw, cb, buf, &db0);
  r->all_int8_db = db0;
  best = db0;
  if (!st && !(db0 >= r->search_db)) {
    int lo = 0, hi = -1;
    double hi_db = 0;
    qcal_progress prog;
    qcal_progress_start(&prog, "mixed precision", 0);
    for (int k = 1; !st; k = k * 2 < L ? k * 2 : L) {
      memset(flt, 0, (size_t)L * sizeof *flt);
      for (int j = 0; j < k; j++)
        flt[order[j]] = true;
      double d;
      st = eval_set(s, &h, flt, cw, cb, buf, &d);
      qcal_progress_step(&prog, 1);
      if (!st && d >= r->search_db) {
        hi = k, hi_db = d;
        break;
      }
      lo = k, best = d;
      if (k == L)
        break;
    }
    while (!st && hi > lo + 1) {
      int mid = (lo + hi) / 2;
      memset(flt, 0, (size_t)L * sizeof *flt);
      for (int j = 0; j < mid; j++)
        flt[order[j]] = true;
      double d;
      st = eval_set(s, &h, flt, cw, cb, buf, &d);
      qcal_progress_step(&prog, 1);
      if (st)
        break;
      if (d >= r->search_db)
        hi = mid, hi_db = d;
      else
        lo = mid;
    }
    qcal_progress_end(&prog);
    chosen = hi >= 0 ? hi : L;
    best = hi >= 0 ? hi_db : best;
  }
  r->reached_db = best;
  memset(flt, 0, (size_t)L * sizeof *flt);
  for (int j = 0; j < chosen; j++)
    flt[order[j]] = true;
  if (!st)
    set_params(s, flt, cw, cb);
  double wall = 0, wq8 = 0, mall = 0, mq8 = 0;
  r->kept_names = chosen ? calloc((size_t)chosen, sizeof *r->kept_names) : NULL;
  bool *fn = calloc((size_t)g->nnodes + 1, sizeof *fn);
  if (!st && (!fn || (chosen && !r->kept_names)))
    st = qcal_error(QCAL_ENOMEM, "out of memory");
  for (int k = 0; k < L && !st; k++) {
    const rlayer *l = s->units[k].layer >= 0 ? &s->L[s->units[k].layer] : NULL;
    const double wn = l ? (double)l->wnumel : 0, mc = l ? (double)l->macs : 0;
    wall += wn, mall += mc;
    if (flt[k]) {
      fn[s->units[k].node] = true;
      r->kept_names[r->kept_float++] = strdup(g->nodes[s->units[k].node].name);
    } else {
      wq8 += wn, mq8 += mc;
    }
  }
  r->weight_frac_int8 = wall > 0 ? wq8 / wall : 1;
  r->mac_frac_int8 = mall > 0 ? mq8 / mall : 1;
  if (!st)
    drop_float_points(s, fn);
  for (int k = 0; k < s->n; k++)
    free(cw ? cw[k] : NULL), free(cb ? cb[k] : NULL);
  free(buf), free(cw), free(cb), free(sens), free(order), free(flt), free(fn);
  free(s->units);
  s->units = NULL, s->nunits = 0;
  return st;
}
