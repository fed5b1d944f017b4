/* `qcal qat`: FP32 training, PTQ with every calibrator and weight
 * granularity per bit width, and QAT from the best calibration (by
 * validation top-1), on a labelled IDX image set; test top-1 of each into
 * the QAT table, the training curves into QAT_CURVES. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qcal/calib.h"
#include "qcal/datasets.h"
#include "qcal/progress.h"
#include "qcal/qat.h"

/* Fashion-MNIST's pixel mean and deviation (of p / 255), the usual
 * normalisation; any IDX set of the same shape uses them too. */
#define PIX_MEAN 0.2860f
#define PIX_STD 0.3530f
#define CLASSES 10

typedef struct qat_run {
  const qcal_qat_cfg *cfg;
  qcal_labelled train, test;
  int *train_idx, ntrain; /* the training split, after the validation split */
  int *val_idx, nval;
  int *test_idx, ntest;
  float *xb; /* one batch of inputs */
  int64_t *yb;
  qcal_table *res, *cur;
  const char *net;
  double qat_lr; /* this network's QAT learning rate */
} qat_run;

static void say(qat_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(qat_run *r, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (r->cfg->log)
    r->cfg->log(r->cfg->log_ctx, line);
}

static void shuffle(int *v, int n, uint64_t seed) {
  uint64_t s = seed;
  for (int i = n - 1; i > 0; i--) {
    int j = (int)(qcal_splitmix64(&s) % (uint64_t)(i + 1));
    int t = v[i];
    v[i] = v[j];
    v[j] = t;
  }
}

static void gather(qat_run *r, const qcal_labelled *d, const int *idx, int n) {
  const size_t px = (size_t)d->rows * (size_t)d->cols;
  for (int i = 0; i < n; i++) {
    const uint8_t *p = d->pixels + (size_t)idx[i] * px;
    float *x = r->xb + (size_t)i * px;
    for (size_t k = 0; k < px; k++)
      x[k] = ((float)p[k] / 255.0f - PIX_MEAN) / PIX_STD;
    r->yb[i] = d->labels[idx[i]];
  }
}

static qcal_status load_data(qat_run *r) {
  const qcal_qat_cfg *c = r->cfg;
  QCAL_TRY(qcal_labelled_load(c->data, "train", CLASSES, &r->train));
  QCAL_TRY(qcal_labelled_load(c->data, "t10k", CLASSES, &r->test));
  if (r->train.rows != r->test.rows || r->train.cols != r->test.cols)
    return qcal_error(QCAL_EFORMAT, "%s: training images are %dx%d, test images %dx%d", c->data,
                      r->train.rows, r->train.cols, r->test.rows, r->test.cols);
  int n = (int)r->train.n;
  if (c->val < 1 || c->val >= n)
    return qcal_error(QCAL_EINVAL, "--val %d: the training set has %d images", c->val, n);
  int *all = malloc((size_t)n * sizeof *all);
  r->test_idx = malloc(r->test.n * sizeof *r->test_idx);
  if (!all || !r->test_idx)
    return free(all), qcal_error(QCAL_ENOMEM, "out of memory");
  for (int i = 0; i < n; i++)
    all[i] = i;
  shuffle(all, n, c->seed ^ 0x5eed);
  r->val_idx = all;
  r->nval = c->val;
  r->train_idx = all + c->val;
  r->ntrain = n - c->val;
  if (c->train_limit > 0 && c->train_limit < r->ntrain)
    r->ntrain = c->train_limit;
  r->ntest = (int)r->test.n;
  if (c->test_limit > 0 && c->test_limit < r->ntest)
    r->ntest = c->test_limit;
  if (c->test_limit > 0 && c->test_limit < r->nval)
    r->nval = c->test_limit;
  for (int i = 0; i < (int)r->test.n; i++)
    r->test_idx[i] = i;
  if (r->ntrain < c->batch)
    return qcal_error(QCAL_EINVAL, "--batch %d: only %d training images", c->batch, r->ntrain);
  size_t px = (size_t)r->train.rows * (size_t)r->train.cols;
  r->xb = qcal_alloc((size_t)c->batch * px * sizeof(float));
  r->yb = malloc((size_t)c->batch * sizeof *r->yb);
  if (!r->xb || !r->yb)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  return QCAL_OK;
}

/* Top-1 (percent) over a split, in batches, eval mode. */
static qcal_status evaluate(qat_run *r, qcal_train *t, const qcal_labelled *d, const int *idx,
                            int n, double *top1) {
  long correct = 0;
  for (int s = 0; s < n; s += r->cfg->batch) {
    int b = n - s < r->cfg->batch ? n - s : r->cfg->batch;
    gather(r, d, idx + s, b);
    QCAL_TRY(qcal_train_forward(t, b, r->xb, NULL, false, NULL));
    int cls;
    const float *lg = qcal_train_logits(t, &cls);
    for (int i = 0; i < b; i++) {
      int best = 0;
      for (int k = 1; k < cls; k++)
        best = lg[(size_t)i * cls + k] > lg[(size_t)i * cls + best] ? k : best;
      correct += best == r->yb[i];
    }
  }
  *top1 = 100.0 * (double)correct / (double)n;
  return QCAL_OK;
}

static void curve_row(qat_run *r, const char *run, double epoch, double loss, double val,
                      double lr) {
  qcal_table *c = r->cur;
  qcal_table_row(c);
  qcal_table_set_s(c, QCAL_COL(QAT_CURVES, net), r->net);
  qcal_table_set_s(c, QCAL_COL(QAT_CURVES, run), run);
  qcal_table_set_f(c, QCAL_COL(QAT_CURVES, epoch), epoch);
  qcal_table_set_f(c, QCAL_COL(QAT_CURVES, train_loss), loss);
  qcal_table_set_f(c, QCAL_COL(QAT_CURVES, val_top1), val);
  qcal_table_set_f(c, QCAL_COL(QAT_CURVES, lr), lr);
}

/* Train for `epochs` (fractions allowed) with a cosine (or step) schedule
 * from lr0;
 * the validation top-1 at every epoch's end. *epoch_s: the median epoch
 * time (of the whole epochs; a fraction alone is scaled up). */
static qcal_status train(qat_run *r, qcal_train *t, double epochs, double lr0, const char *run,
                         double *epoch_s) {
  const qcal_qat_cfg *c = r->cfg;
  const int per_epoch = r->ntrain / c->batch;
  const long total = (long)ceil(epochs * per_epoch);
  qcal_optim o = {.kind = c->optim,
                  .momentum = 0.9f,
                  .beta1 = 0.9f,
                  .beta2 = 0.999f,
                  .eps = 1e-8f,
                  .weight_decay = c->optim == QCAL_OPTIM_SGD ? 5e-4f : 1e-4f};
  int *order = malloc((size_t)r->ntrain * sizeof *order);
  double *secs = malloc((size_t)(epochs + 2) * sizeof *secs);
  if (!order || !secs)
    return free(order), free(secs), qcal_error(QCAL_ENOMEM, "out of memory");
  const long chunk = per_epoch / 8 > 0 ? per_epoch / 8 : 1;
  double loss_sum = 0, lr = lr0;
  long loss_n = 0;
  int nsecs = 0;
  qcal_status st = QCAL_OK;
  for (long step = 0, ep = 0; step < total && st == QCAL_OK; ep++) {
    for (int i = 0; i < r->ntrain; i++)
      order[i] = r->train_idx[i];
    shuffle(order, r->ntrain, c->seed * 1000003u + (uint64_t)ep);
    long steps = total - step < per_epoch ? total - step : per_epoch;
    char label[160];
    snprintf(label, sizeof label, "%s %s epoch %ld/%ld", r->net, run, ep + 1, (long)ceil(epochs));
    qcal_progress p;
    qcal_progress_start(&p, label, (size_t)steps);
    double t0 = qcal_now();
    for (long k = 0; k < steps && st == QCAL_OK; k++, step++) {
      const double done = (double)step / (double)total;
      lr = c->step_schedule ? lr0 * (done < 0.5    ? 1.0
                                     : done < 0.75 ? 0.1
                                                   : 0.01)
                            : lr0 * 0.5 * (1.0 + cos(M_PI * done));
      gather(r, &r->train, order + k * c->batch, c->batch);
      float loss;
      st = qcal_train_forward(t, c->batch, r->xb, r->yb, true, &loss);
      if (st == QCAL_OK && !isfinite(loss))
        st = qcal_error(QCAL_EDATA,
                        "%s %s: the training loss diverged (%g) at step %ld; "
                        "lower --lr",
                        r->net, run, (double)loss, step);
      if (st == QCAL_OK)
        st = qcal_train_backward(t);
      if (st != QCAL_OK)
        break;
      qcal_optim_step(t, &o, (float)lr);
      loss_sum += loss;
      loss_n++;
      if ((step + 1) % chunk == 0) {
        curve_row(r, run, (double)(step + 1) / per_epoch, loss_sum / (double)loss_n, NAN, lr);
        loss_sum = 0;
        loss_n = 0;
      }
      qcal_progress_step(&p, 1);
    }
    qcal_progress_end(&p);
    double dt = qcal_now() - t0;
    if (st != QCAL_OK)
      break;
    secs[nsecs++] = dt * (double)per_epoch / (double)steps;
    double val;
    st = evaluate(r, t, &r->train, r->val_idx, r->nval, &val);
    if (st == QCAL_OK) {
      curve_row(r, run, (double)step / per_epoch, loss_n ? loss_sum / (double)loss_n : NAN, val,
                lr);
      loss_sum = 0; /* those steps are in this row: not again in the next */
      loss_n = 0;
      say(r, "  %-10s %-22s epoch %ld: %.1f s, validation top-1 %.2f%%", r->net, run, ep + 1, dt,
          val);
    }
  }
  *epoch_s = nsecs ? qcal_median(secs, (size_t)nsecs) : NAN;
  free(order);
  free(secs);
  return st;
}

/* ---- calibration: a max and a histogram collector per activation point,
 * keyed by the FakeQuantize's output value (node indices move when the
 * trainer sorts) */
typedef struct calib_point {
  int value;
  qcal_max_collector mx;
  qcal_hist_collector hist;
} calib_point;
typedef struct calib_set {
  qcal_graph *g;
  int n;
  calib_point *p;
} calib_set;

static qcal_status observe(void *ctx, int node, const float *x, int ndim, const int64_t *shape) {
  calib_set *cs = ctx;
  int v = cs->g->nodes[node].out[0];
  for (int k = 0; k < cs->n; k++) {
    if (cs->p[k].value != v)
      continue;
    qcal_tensor t = {.ndim = ndim, .data = (float *)x};
    t.numel = 1;
    for (int d = 0; d < ndim; d++)
      t.numel *= (size_t)(t.shape[d] = shape[d]);
    snprintf(t.name, sizeof t.name, "%s", cs->g->nodes[node].name);
    QCAL_TRY(qcal_max_collector_collect(&cs->p[k].mx, &t));
    return qcal_hist_collector_collect(&cs->p[k].hist, &t);
  }
  return QCAL_OK; /* a weight's FakeQuantize */
}

static void calib_free(calib_set *cs) {
  for (int k = 0; k < cs->n; k++) {
    qcal_max_collector_free(&cs->p[k].mx);
    qcal_hist_collector_free(&cs->p[k].hist);
  }
  free(cs->p);
  memset(cs, 0, sizeof *cs);
}

static qcal_status calibrate(qat_run *r, qcal_graph *g, calib_set *cs) {
  qcal_train *t;
  QCAL_TRY(qcal_train_new(g, r->cfg->batch, &t));
  int *nodes = NULL, n = 0;
  qcal_status st = qcal_qat_act_nodes(g, &nodes, &n);
  cs->g = g;
  if (st == QCAL_OK && !(cs->p = calloc((size_t)(n ? n : 1), sizeof *cs->p)))
    st = qcal_error(QCAL_ENOMEM, "out of memory");
  qcal_hist_opts ho = QCAL_HIST_OPTS_DEFAULT;
  for (int k = 0; st == QCAL_OK && k < n; k++) {
    cs->p[k].value = g->nodes[nodes[k]].out[0];
    cs->n = k + 1;
    st = qcal_max_collector_init(&cs->p[k].mx, QCAL_PER_TENSOR);
    if (st == QCAL_OK)
      st = qcal_hist_collector_init(&cs->p[k].hist, QCAL_PER_TENSOR, &ho);
  }
  free(nodes);
  qcal_train_observe(t, observe, cs);
  int count = r->cfg->calib < r->ntrain ? r->cfg->calib : r->ntrain;
  for (int s = 0; st == QCAL_OK && s < count; s += r->cfg->batch) {
    int b = count - s < r->cfg->batch ? count - s : r->cfg->batch;
    gather(r, &r->train, r->train_idx + s, b);
    st = qcal_train_forward(t, b, r->xb, NULL, false, NULL);
  }
  qcal_train_free(t);
  return st;
}

/* The activation amax of one method at abits into every activation
 * FakeQuantize. */
static qcal_status set_act_amax(qcal_graph *g, const calib_set *cs, const qcal_method_config *m,
                                int abits) {
  const qcal_method_info *mi = qcal_method_find(m->method);
  qcal_calib_opts co = QCAL_CALIB_OPTS_DEFAULT;
  co.fmt.bits = abits;
  if (m->percentile > 0)
    co.percentile = m->percentile;
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *f = &g->nodes[i];
    if (f->dead || f->op != QCAL_GOP_FakeQuantize)
      continue;
    co.fmt.is_unsigned = qcal_attr_int(f, "unsigned", 0) != 0;
    co.fmt.bits = (int)qcal_attr_int(f, "bits", abits);
    for (int k = 0; k < cs->n; k++)
      if (cs->p[k].value == f->out[0]) {
        float *a = g->values[f->in[1]].data;
        if (!mi->from_hist)
          a[0] = cs->p[k].mx.amax[0];
        else
          QCAL_TRY(mi->from_hist(&cs->p[k].hist.hist[0], &co, a));
      }
  }
  return QCAL_OK;
}

/* ---- the parameters a QAT run starts from */
typedef struct snapshot {
  int n;
  int *value;
  float **data;
} snapshot;

static qcal_status snap_take(qcal_graph *g, snapshot *s) {
  s->value = malloc((size_t)(g->nvalues ? g->nvalues : 1) * sizeof *s->value);
  s->data = calloc((size_t)(g->nvalues ? g->nvalues : 1), sizeof *s->data);
  if (!s->value || !s->data)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  for (int v = 0; v < g->nvalues; v++) {
    const qcal_value *val = &g->values[v];
    if (val->kind != QCAL_VAL_CONST || val->dtype != QCAL_DT_F32 || !val->data)
      continue;
    float *d = malloc((val->numel ? val->numel : 1) * sizeof *d);
    if (!d)
      return qcal_error(QCAL_ENOMEM, "out of memory");
    memcpy(d, val->data, val->numel * sizeof *d);
    s->value[s->n] = v;
    s->data[s->n++] = d;
  }
  return QCAL_OK;
}

static void snap_restore(qcal_graph *g, const snapshot *s) {
  for (int k = 0; k < s->n; k++)
    memcpy(g->values[s->value[k]].data, s->data[k], g->values[s->value[k]].numel * sizeof(float));
}

static void snap_free(snapshot *s) {
  for (int k = 0; k < s->n; k++)
    free(s->data[k]);
  free(s->data);
  free(s->value);
  memset(s, 0, sizeof *s);
}

static long result_row(qat_run *r, const char *stage, const char *method, const char *gran,
                       int wbits, int abits, double top1, double val, double epochs, double secs,
                       double epoch_s) {
  qcal_table *t = r->res;
  long row = qcal_table_row(t);
  qcal_table_set_s(t, QCAL_COL(QAT, net), r->net);
  qcal_table_set_s(t, QCAL_COL(QAT, stage), stage);
  qcal_table_set_s(t, QCAL_COL(QAT, method), method);
  qcal_table_set_s(t, QCAL_COL(QAT, granularity), gran);
  qcal_table_set_i(t, QCAL_COL(QAT, bits), wbits);
  qcal_table_set_i(t, QCAL_COL(QAT, act_bits), abits);
  qcal_table_set_f(t, QCAL_COL(QAT, top1), top1);
  qcal_table_set_f(t, QCAL_COL(QAT, val_top1), val);
  qcal_table_set_i(t, QCAL_COL(QAT, best), 0);
  qcal_table_set_i(t, QCAL_COL(QAT, learn_amax), 0);
  qcal_table_set_f(t, QCAL_COL(QAT, epochs), epochs);
  qcal_table_set_f(t, QCAL_COL(QAT, seconds), secs);
  qcal_table_set_f(t, QCAL_COL(QAT, epoch_seconds), epoch_s);
  qcal_table_set_i(t, QCAL_COL(QAT, threads), r->cfg->threads);
  qcal_table_set_i(t, QCAL_COL(QAT, batch), r->cfg->batch);
  return row;
}

static const char *const gran_name[2] = {"per-tensor", "per-channel"};
/* The calibrators compared: pytorch-quantization's four, percentile at
 * its default 99.99. */
static const char *const methods[] = {"max", "entropy", "mse", "pct99.99"};
enum { NMETHODS = 4 };

/* Test and validation top-1 of the trainer's graph as it stands. */
static qcal_status evaluate_both(qat_run *r, qcal_train *t, double *test, double *val) {
  QCAL_TRY(evaluate(r, t, &r->test, r->test_idx, r->ntest, test));
  return evaluate(r, t, &r->train, r->val_idx, r->nval, val);
}

/* Every method at one bit width and granularity gr, on one trainer (the
 * methods change amax values only); *best the method with the best
 * validation top-1, *best_val that top-1. */
static qcal_status ptq_methods(qat_run *r, qcal_graph *g, const calib_set *cs, qcal_qat_bits b,
                               int gr, int *best, double *best_val) {
  qcal_train *t;
  QCAL_TRY(qcal_train_new(g, r->cfg->batch, &t));
  qcal_status st = QCAL_OK;
  long best_row = -1;
  *best_val = -1;
  for (int m = 0; m < NMETHODS && st == QCAL_OK; m++) {
    double t0 = qcal_now(), test, val;
    st = set_act_amax(g, cs, qcal_method_config_find(methods[m]), b.a);
    if (st == QCAL_OK)
      st = evaluate_both(r, t, &test, &val);
    if (st != QCAL_OK)
      break;
    long row = result_row(r, "ptq", methods[m], gran_name[gr], b.w, b.a, test, val, 0,
                          qcal_now() - t0, NAN);
    say(r, "  %-10s ptq W%dA%d %-11s %-8s test top-1 %6.2f%% (validation %.2f%%)", r->net, b.w, b.a,
        gran_name[gr], methods[m], test, val);
    if (val > *best_val) {
      *best_val = val;
      best_row = row;
      *best = m;
    }
  }
  qcal_train_free(t);
  if (st == QCAL_OK)
    qcal_table_set_at_i(r->res, best_row, QCAL_COL(QAT, best), 1);
  return st;
}

/* PTQ of every method x granularity at one bit width; best[gran] the
 * method with the best validation top-1, best_val[gran] that top-1. */
static qcal_status ptq(qat_run *r, qcal_graph *g, const calib_set *cs, qcal_qat_bits b, int best[2],
                       double best_val[2]) {
  for (int gr = 0; gr < 2; gr++) {
    qcal_qat_config qc = {b.w, b.a, gr == 1, false, r->cfg->unsigned_acts, r->cfg->input_bits};
    QCAL_TRY(qcal_qat_configure(g, &qc));
    QCAL_TRY(qcal_qat_weight_amax(g));
    QCAL_TRY(ptq_methods(r, g, cs, b, gr, &best[gr], &best_val[gr]));
  }
  return QCAL_OK;
}

static qcal_status save_model(qat_run *r, qcal_graph *g, const char *what) {
  if (!r->cfg->save)
    return QCAL_OK;
  char path[4096];
  snprintf(path, sizeof path, "%s/%s-%s.onnx", r->cfg->save, r->net, what);
  QCAL_TRY(qcal_qat_save_onnx(g, path));
  say(r, "  %-10s wrote %s", r->net, path);
  return QCAL_OK;
}

static qcal_status qat(qat_run *r, qcal_graph *g, const calib_set *cs, const snapshot *s,
                       qcal_qat_bits b, int gr, int m) {
  const qcal_qat_cfg *c = r->cfg;
  snap_restore(g, s);
  qcal_qat_config qc = {b.w, b.a, gr == 1, c->learn_amax, c->unsigned_acts, c->input_bits};
  QCAL_TRY(qcal_qat_configure(g, &qc));
  QCAL_TRY(qcal_qat_weight_amax(g));
  QCAL_TRY(set_act_amax(g, cs, qcal_method_config_find(methods[m]), b.a));
  char run[96];
  snprintf(run, sizeof run, "W%dA%d %s", b.w, b.a, gran_name[gr]);
  double t0 = qcal_now(), epoch_s = NAN, test = NAN, val = NAN;
  qcal_train *t;
  QCAL_TRY(qcal_train_new(g, c->batch, &t));
  qcal_status st = train(r, t, c->qat_epochs, r->qat_lr, run, &epoch_s);
  if (st == QCAL_OK)
    st = evaluate_both(r, t, &test, &val);
  qcal_train_free(t);
  QCAL_TRY(st);
  long row = result_row(r, "qat", methods[m], gran_name[gr], b.w, b.a, test, val, c->qat_epochs,
                        qcal_now() - t0, epoch_s);
  qcal_table_set_at_i(r->res, row, QCAL_COL(QAT, learn_amax), c->learn_amax);
  say(r, "  %-10s qat W%dA%d %-11s from %-8s test top-1 %6.2f%% (validation %.2f%%)", r->net, b.w,
      b.a, gran_name[gr], methods[m], test, val);
  if (b.w == 8 && b.a == 8) {
    char what[64];
    snprintf(what, sizeof what, "qat-w8a8-%s", gran_name[gr]);
    QCAL_TRY(save_model(r, g, what));
  }
  return QCAL_OK;
}

/* The first training batch, its loss and every parameter's gradient
 * (members named after the parameters) into an .npz: the check against
 * another framework's autograd on the same model and batch. */
static qcal_status dump_grads(qat_run *r, qcal_graph *g) {
  const qcal_qat_cfg *c = r->cfg;
  qcal_train *t;
  QCAL_TRY(qcal_train_new(g, c->batch, &t));
  gather(r, &r->train, r->train_idx, c->batch);
  float loss;
  qcal_status st = qcal_train_forward(t, c->batch, r->xb, r->yb, true, &loss);
  if (st == QCAL_OK)
    st = qcal_train_backward(t);
  int np = qcal_train_nparams(t), n = 0;
  const char **names = calloc((size_t)np * 2 + 3, sizeof *names);
  unsigned char **npy = calloc((size_t)np * 2 + 3, sizeof *npy);
  size_t *len = calloc((size_t)np * 2 + 3, sizeof *len);
  if (st == QCAL_OK && (!names || !npy || !len))
    st = qcal_error(QCAL_ENOMEM, "out of memory");
  const qcal_value *in = &g->values[g->inputs[0]];
  int64_t xs[QCAL_MAX_DIMS], ys[1] = {c->batch}, none[1];
  memcpy(xs, in->shape, sizeof xs);
  xs[0] = c->batch;
  if (st == QCAL_OK) {
    names[n] = "x";
    st = qcal_npy_encode("<f4", in->ndim, xs, r->xb, in->numel * sizeof(float), &npy[n], &len[n]);
    n++;
  }
  if (st == QCAL_OK) {
    names[n] = "y";
    st = qcal_npy_encode("<i8", 1, ys, r->yb, (size_t)c->batch * sizeof(int64_t), &npy[n], &len[n]);
    n++;
  }
  if (st == QCAL_OK) {
    names[n] = "loss";
    st = qcal_npy_encode("<f4", 0, none, &loss, sizeof loss, &npy[n], &len[n]);
    n++;
  }
  /* "param/NAME" (its value) then "grad/NAME", in the trainer's order */
  char **owned = calloc((size_t)np * 2 + 1, sizeof *owned);
  if (st == QCAL_OK && !owned)
    st = qcal_error(QCAL_ENOMEM, "out of memory");
  for (int k = 0; st == QCAL_OK && k < 2 * np; k++) {
    qcal_param *p = qcal_train_param(t, k / 2);
    const qcal_value *v = &g->values[p->value];
    size_t nl = strlen(v->name) + 8;
    if (!(owned[k] = malloc(nl))) {
      st = qcal_error(QCAL_ENOMEM, "out of memory");
      break;
    }
    snprintf(owned[k], nl, "%s/%s", k % 2 ? "grad" : "param", v->name);
    names[n] = owned[k];
    st = qcal_npy_encode("<f4", v->ndim, v->shape, k % 2 ? p->grad : p->data,
                         p->numel * sizeof(float), &npy[n], &len[n]);
    n++;
  }
  if (st == QCAL_OK)
    st = qcal_npz_save(c->dump_grads, n, names, npy, len);
  if (st == QCAL_OK)
    say(r, "  %-10s loss %.6f; the gradients of %d parameters: %s", r->net, (double)loss, np,
        c->dump_grads);
  for (int k = 0; npy && k < n; k++)
    free(npy[k]);
  for (int k = 0; owned && k < 2 * np; k++)
    free(owned[k]);
  free(owned);
  free(names);
  free(npy);
  free(len);
  qcal_train_free(t);
  return st;
}

/* FP32: train (or take the model as it is), measure, save. */
static qcal_status fp32(qat_run *r, qcal_graph *g, int epochs, double lr) {
  const qcal_qat_cfg *c = r->cfg;
  double t0 = qcal_now(), epoch_s = NAN, test, val;
  qcal_train *t;
  QCAL_TRY(qcal_train_new(g, c->batch, &t));
  qcal_status st = epochs > 0 ? train(r, t, epochs, lr, "fp32", &epoch_s) : QCAL_OK;
  double train_s = qcal_now() - t0;
  if (st == QCAL_OK)
    st = evaluate_both(r, t, &test, &val);
  qcal_train_free(t);
  QCAL_TRY(st);
  result_row(r, "fp32", "float", "float", 32, 32, test, val, epochs, train_s, epoch_s);
  say(r, "  %-10s fp32 %d epochs in %.0f s: test top-1 %.2f%% (validation %.2f%%)", r->net, epochs,
      train_s, test, val);
  return save_model(r, g, "fp32");
}

static qcal_status one_net(qat_run *r, qcal_graph *g, int epochs, double lr) {
  const qcal_qat_cfg *c = r->cfg;
  const qcal_value *in = &g->values[g->inputs[0]];
  if (g->ninputs != 1 || in->ndim != 4 || in->shape[1] != 1 || in->shape[2] != r->train.rows ||
      in->shape[3] != r->train.cols)
    return qcal_error(QCAL_EINVAL, "%s: the model's input must be [N, 1, %d, %d] for %s", g->path,
                      r->train.rows, r->train.cols, c->data);
  if (c->dump_grads)
    return dump_grads(r, g);
  /* NVIDIA's recipe: QAT from 1% of the initial learning rate, annealed */
  r->qat_lr = c->qat_lr > 0 ? c->qat_lr : lr * 0.01;
  QCAL_TRY(fp32(r, g, epochs, lr));
  QCAL_TRY(qcal_qat_insert(g));
  calib_set cs = {0};
  snapshot snap = {0};
  double t0 = qcal_now();
  qcal_status st = calibrate(r, g, &cs);
  if (st == QCAL_OK) {
    say(r, "  %-10s calibrated on %d training images in %.1f s", r->net, c->calib, qcal_now() - t0);
    st = snap_take(g, &snap);
  }
  for (int k = 0; st == QCAL_OK && k < c->nbits; k++) {
    int best[2] = {0, 0};
    double best_val[2];
    qcal_qat_bits b = c->bits[k];
    st = ptq(r, g, &cs, b, best, best_val);
    /* QAT from the best PTQ configuration; at W8A8 from the best of each
     * granularity, both of which TensorRT deploys */
    const bool both = b.w == 8 && b.a == 8;
    const int top = best_val[1] >= best_val[0];
    for (int gr = 1; st == QCAL_OK && gr >= 0 && c->qat_epochs > 0; gr--)
      if (both || gr == top)
        st = qat(r, g, &cs, &snap, b, gr, best[gr]);
    if (st == QCAL_OK)
      snap_restore(g, &snap);
  }
  calib_free(&cs);
  snap_free(&snap);
  return st;
}

/* The FP32 and best-PTQ top-1 of QAT row k's network and configuration. */
qcal_qat_summary qcal_qat_summarize(const qcal_table *t, long k) {
  qcal_qat_summary s = {qcal_table_get_s(t, k, QCAL_COL(QAT, net)),
                        qcal_table_get_s(t, k, QCAL_COL(QAT, granularity)),
                        (long long)qcal_table_get_i(t, k, QCAL_COL(QAT, bits)),
                        (long long)qcal_table_get_i(t, k, QCAL_COL(QAT, act_bits)),
                        NAN,
                        NAN,
                        qcal_table_get_f(t, k, QCAL_COL(QAT, top1))};
  for (size_t j = 0; j < qcal_table_rows(t); j++) {
    long m = (long)j;
    if (strcmp(qcal_table_get_s(t, m, QCAL_COL(QAT, net)), s.net))
      continue;
    const char *st = qcal_table_get_s(t, m, QCAL_COL(QAT, stage));
    if (!strcmp(st, "fp32"))
      s.fp32 = qcal_table_get_f(t, m, QCAL_COL(QAT, top1));
    else if (!strcmp(st, "ptq") && qcal_table_get_i(t, m, QCAL_COL(QAT, best)) &&
             !strcmp(qcal_table_get_s(t, m, QCAL_COL(QAT, granularity)), s.gran) &&
             qcal_table_get_i(t, m, QCAL_COL(QAT, bits)) == s.wb &&
             qcal_table_get_i(t, m, QCAL_COL(QAT, act_bits)) == s.ab)
      s.ptq = qcal_table_get_f(t, m, QCAL_COL(QAT, top1));
  }
  return s;
}

qcal_status qcal_qat_run(const qcal_qat_cfg *cfg, qcal_table **results, qcal_table **curves) {
  *results = *curves = NULL;
  if (cfg->batch < 1 || cfg->nbits < 1 || cfg->calib < 1)
    return qcal_error(QCAL_EINVAL, "qat: batch, bit widths and calibration images must be set");
  qat_run r = {.cfg = cfg};
  r.res = qcal_table_new_schema(QCAL_TABLE_QAT);
  r.cur = qcal_table_new_schema(QCAL_TABLE_QAT_CURVES);
  qcal_status st = r.res && r.cur ? load_data(&r) : qcal_error(QCAL_ENOMEM, "out of memory");
  if (st == QCAL_OK && cfg->model) {
    qcal_graph *g = NULL;
    st = qcal_graph_load(cfg->model, &g);
    const char *slash = strrchr(cfg->model, '/');
    r.net = slash ? slash + 1 : cfg->model;
    if (st == QCAL_OK)
      st = one_net(&r, g, cfg->epochs, cfg->lr > 0 ? cfg->lr : 0.1);
    qcal_graph_free(g);
  }
  const char *list = cfg->nets ? cfg->nets : "";
  while (st == QCAL_OK && !cfg->model && *list) {
    size_t len = strcspn(list, ",");
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), list);
    list += len + (list[len] == ',');
    const qcal_net_info *ni = qcal_net_find(name);
    if (!ni) {
      st = qcal_error(QCAL_EINVAL, "--net '%s': not a network (cnn, mobilenet)", name);
      break;
    }
    qcal_graph *g = NULL;
    st = ni->build(r.train.rows, r.train.cols, CLASSES, cfg->seed, &g);
    r.net = ni->name;
    if (st == QCAL_OK)
      st = one_net(&r, g, cfg->epochs > 0 ? cfg->epochs : ni->epochs,
                   cfg->lr > 0 ? cfg->lr : ni->lr);
    qcal_graph_free(g);
  }
  qcal_labelled_free(&r.train);
  qcal_labelled_free(&r.test);
  free(r.val_idx);
  free(r.test_idx);
  qcal_free(r.xb);
  free(r.yb);
  if (st != QCAL_OK) {
    qcal_table_free(r.res);
    qcal_table_free(r.cur);
    return st;
  }
  *results = r.res;
  *curves = r.cur;
  return QCAL_OK;
}
