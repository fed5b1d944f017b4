/* End-to-end PTQ fidelity on the graph IR: the network with fake
 * quantization at every layer's input activations (per tensor, each
 * activation method) and weights (max calibration, per tensor or per
 * channel), run on the held-out photos and compared output by output with
 * FP32 (SQNR, cosine, top-1 agreement for class scores); and each layer's
 * sensitivity when it alone is quantized. A task module (PoseNet) adds its
 * own metrics to the e2e and sensitivity tables. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/task.h"
#include "qcal/outmetric.h"
#include "qcal/progress.h"
#include "qcal/quantize.h"
#include "qcal/sweep.h"

typedef struct {
  double sig, err, dot, nb; /* sum a^2, (a-b)^2, ab, b^2 over FP32 a, quantized b */
  long top1, n;
  qcal_om_acc om; /* the primary output's task metric */
} out_acc;

/* Per image, an output is a class-score vector when its elements lie along
 * one dim (e.g. [1, 7], [1, 1, 1, 7]) of at least 2. */
static bool class_scores(const qcal_value *v) {
  if (v->ndim < 2 || v->shape[0] != 1)
    return false;
  int64_t big = 0;
  for (int d = 1; d < v->ndim; d++)
    big = v->shape[d] > big ? v->shape[d] : big;
  return big >= 2 && (size_t)big == v->numel;
}

static size_t argmax(const float *x, size_t n) {
  size_t b = 0;
  for (size_t i = 1; i < n; i++)
    if (x[i] > x[b])
      b = i;
  return b;
}

typedef struct {
  out_acc *acc; /* [noutputs] */
  void *task_acc;
  float **q; /* [noutputs] quantized outputs of one image */
} run_ctx;

/* Compare the graph's outputs (as the last run left them) with held-out
 * image h's FP32 outputs, into acc[noutputs] and the task's accumulator;
 * with om, the primary output's task metric too (the e2e rows carry it, the
 * sensitivity rows do not). */
static qcal_status accumulate(sweep_state *s, qcal_graph *g, int h, float **q, out_acc *acc,
                              void *task_acc, bool om) {
  for (int o = 0; o < g->noutputs; o++) {
    const qcal_value *v = &g->values[g->outputs[o]];
    const float *a = s->fp32_out[h][o];
    if (!a)
      continue;
    QCAL_TRY(qcal_graph_read(g, g->outputs[o], q[o]));
    const float *b = q[o];
    out_acc *c = &acc[o];
    for (size_t i = 0; i < v->numel; i++) {
      double d = (double)a[i] - b[i];
      c->sig += (double)a[i] * a[i];
      c->err += d * d;
      c->dot += (double)a[i] * b[i];
      c->nb += (double)b[i] * b[i];
    }
    if (class_scores(v)) {
      c->top1 += argmax(a, v->numel) == argmax(b, v->numel);
      c->n++;
    }
  }
  if (om && s->om_output >= 0)
    qcal_om_update((qcal_outmetric)s->om, g, s->fp32_out[h], q, s->om_output, s->om_side,
                   &acc[s->om_output].om);
  if (s->task)
    s->task->accumulate(s->task_ctx, g, s->fp32_out[h], q, task_acc);
  return QCAL_OK;
}

/* The held-out photos through the graph as its fake quantization stands. */
static qcal_status run_held(sweep_state *s, run_ctx *r) {
  qcal_graph *g = s->graph;
  memset(r->acc, 0, (size_t)g->noutputs * sizeof *r->acc);
  if (s->task)
    memset(r->task_acc, 0, s->task->acc_size);
  for (int h = 0; h < s->nheld; h++) {
    const void *in[1] = {s->images[s->held_idx[h]].data};
    QCAL_TRY(qcal_graph_run(g, in));
    QCAL_TRY(accumulate(s, g, h, r->q, r->acc, r->task_acc, true));
  }
  return QCAL_OK;
}

_Static_assert(QCAL_COL(E2E_OUTPUTS, cosine) == QCAL_COL(E2E_OUTPUTS, sqnr_db) + 1 &&
                   QCAL_COL(E2E_OUTPUTS, top1_agreement) == QCAL_COL(E2E_OUTPUTS, sqnr_db) + 2 &&
                   QCAL_COL(SENSITIVITY_OUTPUTS, cosine) ==
                       QCAL_COL(SENSITIVITY_OUTPUTS, sqnr_db) + 1 &&
                   QCAL_COL(SENSITIVITY_OUTPUTS, top1_agreement) ==
                       QCAL_COL(SENSITIVITY_OUTPUTS, sqnr_db) + 2,
               "the per-output metrics are adjacent columns (schema.inc)");

static double sqnr(double sig, double err) {
  return err > 0 ? 10 * log10(sig / err) : INFINITY;
}

static double cosine(const out_acc *c) {
  return c->sig > 0 && c->nb > 0 ? c->dot / sqrt(c->sig * c->nb) : NAN;
}

/* Append the fake quantization of layer l: input activations with the
 * `label` rows (per tensor; NULL label: float), the weight by max (wmode 0:
 * float, 1 per tensor, 2 per channel). */
static void layer_fq(const sweep_state *s, int l, const char *label, int wmode, int bits, int wbits,
                     qcal_graph_fq *fq, int *n) {
  const sweep_layer *L = &s->layers[l];
  const qcal_qformat fmt = {bits, false, false}, wfmt = {wbits, false, false};
  for (int a = 0; a < L->nacts && label; a++) {
    const sweep_row *r =
        L->act_item[a] >= 0 ? qcal_sweep_find(s, L->act_item[a], label, false, bits) : NULL;
    if (r)
      fq[(*n)++] = (qcal_graph_fq){L->node, L->act_slot[a], QCAL_PER_TENSOR, r->amax, fmt};
  }
  if (wmode && L->weight_item >= 0) {
    const sweep_row *r = qcal_sweep_find(s, L->weight_item, "max", wmode == 2, wbits);
    if (r)
      fq[(*n)++] = (qcal_graph_fq){L->node, L->weight_slot,
                                   wmode == 2 ? L->weight_axis : QCAL_PER_TENSOR, r->amax, wfmt};
  }
}

/* The key columns each configuration's rows share in the e2e and
 * sensitivity tables, task and per-output alike (same schema positions). */
_Static_assert(QCAL_COL(E2E, act_method) == QCAL_COL(E2E_OUTPUTS, act_method) &&
                   QCAL_COL(E2E, weight_granularity) == QCAL_COL(E2E_OUTPUTS, weight_granularity) &&
                   QCAL_COL(E2E, bits) == QCAL_COL(E2E_OUTPUTS, bits) &&
                   QCAL_COL(SENSITIVITY, layer) == QCAL_COL(SENSITIVITY_OUTPUTS, layer) &&
                   QCAL_COL(SENSITIVITY, layer_name) == QCAL_COL(SENSITIVITY_OUTPUTS, layer_name) &&
                   QCAL_COL(SENSITIVITY, op) == QCAL_COL(SENSITIVITY_OUTPUTS, op) &&
                   QCAL_COL(SENSITIVITY, weight_granularity) ==
                       QCAL_COL(SENSITIVITY_OUTPUTS, weight_granularity),
               "e2e and sensitivity tables start with the same key columns (schema.inc)");

static void new_e2e_row(qcal_table *t, const char *act, const char *weights, int bits) {
  qcal_table_row(t);
  qcal_table_set_s(t, QCAL_COL(E2E, act_method), act);
  qcal_table_set_s(t, QCAL_COL(E2E, weight_granularity), weights);
  qcal_table_set_i(t, QCAL_COL(E2E, bits), bits);
}

static void new_sens_row(qcal_table *t, int l, const sweep_layer *ly, const char *gran) {
  qcal_table_row(t);
  qcal_table_set_i(t, QCAL_COL(SENSITIVITY, layer), l);
  qcal_table_set_s(t, QCAL_COL(SENSITIVITY, layer_name), ly->name);
  qcal_table_set_s(t, QCAL_COL(SENSITIVITY, op), ly->op);
  qcal_table_set_s(t, QCAL_COL(SENSITIVITY, weight_granularity), gran);
}

/* One output's metrics into the current row (columns sqnr_db, cosine,
 * top1_agreement at c, c + 1, c + 2 in both per-output tables). */
static void set_metrics(qcal_table *t, int c, const out_acc *a) {
  qcal_table_set_f(t, c, sqnr(a->sig, a->err));
  qcal_table_set_f(t, c + 1, cosine(a));
  qcal_table_set_f(t, c + 2, a->n ? (double)a->top1 / (double)a->n : NAN);
}

/* The task metric of output o in an E2E_OUTPUTS row. */
static void set_task(const sweep_state *s, qcal_table *t, int o, const out_acc *a) {
  if (o != s->om_output)
    return;
  qcal_table_set_s(t, QCAL_COL(E2E_OUTPUTS, task_metric), qcal_om_list[s->om].name);
  qcal_table_set_f(t, QCAL_COL(E2E_OUTPUTS, task_value),
                   qcal_om_value((qcal_outmetric)s->om, &a->om));
}

int qcal_sweep_e2e_bits(const sweep_state *s) {
  int bits = s->cfg.bits[0];
  for (int b = 0; b < s->cfg.nbits; b++)
    if (s->cfg.bits[b] == 8 || (bits != 8 && s->cfg.bits[b] > bits))
      bits = s->cfg.bits[b];
  return bits;
}

qcal_status qcal_sweep_e2e(sweep_state *s) {
  if (!s->have_model || s->nheld == 0)
    return QCAL_OK;
  double t0 = qcal_now();
  qcal_graph *g = s->graph;
  const int L = s->nlayers, no = g->noutputs, bits = qcal_sweep_e2e_bits(s);
  run_ctx r = {calloc((size_t)no + 1, sizeof(out_acc)), NULL,
               calloc((size_t)no + 1, sizeof(float *))};
  qcal_graph_fq *fq = malloc((size_t)(3 * L + 1) * sizeof *fq);
  qcal_status st = r.acc && r.q && fq ? QCAL_OK : qcal_error(QCAL_ENOMEM, "out of memory");
  for (int o = 0; o < no && !st; o++)
    if (s->fp32_out[0][o] && !(r.q[o] = malloc(g->values[g->outputs[o]].numel * sizeof(float) + 1)))
      st = qcal_error(QCAL_ENOMEM, "out of memory");
  if (!st && s->task && !(r.task_acc = calloc(1, s->task->acc_size)))
    st = qcal_error(QCAL_ENOMEM, "out of memory");

  s->e2e_outputs = qcal_table_new_schema(QCAL_TABLE_E2E_OUTPUTS);
  s->sens_outputs = qcal_table_new_schema(QCAL_TABLE_SENSITIVITY_OUTPUTS);
  if (s->task) {
    s->e2e = qcal_table_new_schema(QCAL_TABLE_E2E);
    s->sens = qcal_table_new_schema(QCAL_TABLE_SENSITIVITY);
  }
  static const char *const wnames[] = {"float", "per-tensor", "per-channel"};
  /* activation method (or float) x weights (float, per-tensor, per-channel),
   * without the all-float case; zoo mode then the same with 4-bit weights
   * (weights quantized), on fewer methods */
  const int nconf = (QCAL_METHOD_CONFIG_COUNT + 1) * 3 - 1;
  bool w4 = false;
  for (int b = 0; b < s->cfg.nbits; b++)
    w4 |= s->cfg.zoo && s->cfg.bits[b] == 4 && bits == 8;
  if (w4)
    s->e2e_w4a8 = qcal_table_new_schema(QCAL_TABLE_E2E_OUTPUTS);
  qcal_progress prog;
  qcal_progress_start(&prog, "end-to-end", (size_t)((w4 ? 2 : 1) * nconf + 2 * L));
  for (int c = 0; c < (w4 ? 2 : 1) * nconf && !st; c++) {
    const int cc = c % nconf, wbits = c < nconf ? bits : 4;
    const int method = (cc + 1) / 3 - 1, wmode = (cc + 1) % 3; /* skips (float, float) */
    const char *label = method < 0 ? "float" : qcal_method_configs[method].label;
    if ((wbits != bits && wmode == 0) ||
        (s->cfg.zoo && method >= 0 && qcal_method_configs[method].percentile > 0 &&
         qcal_method_configs[method].percentile != 99.99)) {
      qcal_progress_step(&prog, 1);
      continue; /* zoo: one percentile; 4-bit runs quantize the weights */
    }
    int n = 0;
    for (int l = 0; l < L; l++)
      layer_fq(s, l, method < 0 ? NULL : label, wmode, bits, wbits, fq, &n);
    st = qcal_graph_fake_quant(g, fq, n);
    if (!st)
      st = run_held(s, &r);
    for (int o = 0; o < no && !st; o++) {
      if (!s->fp32_out[0][o])
        continue;
      qcal_table *t = wbits == bits ? s->e2e_outputs : s->e2e_w4a8;
      new_e2e_row(t, label, wnames[wmode], wbits);
      qcal_table_set_s(t, QCAL_COL(E2E_OUTPUTS, output), g->values[g->outputs[o]].name);
      set_metrics(t, QCAL_COL(E2E_OUTPUTS, sqnr_db), &r.acc[o]);
      set_task(s, t, o, &r.acc[o]);
      qcal_table_set_i(t, QCAL_COL(E2E_OUTPUTS, images), s->nheld);
    }
    if (!st && s->task && wbits == bits) {
      qcal_table *t = s->e2e;
      new_e2e_row(t, label, wnames[wmode], bits);
      qcal_table_set_i(t, QCAL_COL(E2E, images), s->nheld);
      s->task->e2e_row(s->task_ctx, r.task_acc, t);
    }
    qcal_progress_step(&prog, 1);
  }
  /* sensitivity: one layer at a time. Per held-out photo, FP32 once, then
   * the layers from last to first, each run only from its own node: what
   * lies before it still holds FP32 (the seed's cached forward pass) */
  const int no1 = no ? no : 1;
  out_acc *sacc = calloc((size_t)(2 * L * no1), sizeof *sacc);
  char *tacc = s->task ? calloc((size_t)(2 * L), s->task->acc_size) : NULL;
  bool *used = calloc((size_t)(2 * L + 1), sizeof *used);
  if (!st && (!sacc || !used || (s->task && !tacc)))
    st = qcal_error(QCAL_ENOMEM, "out of memory");
  for (int h = 0; h < s->nheld && !st; h++) {
    const void *in[1] = {s->images[s->held_idx[h]].data};
    st = qcal_graph_fake_quant(g, NULL, 0);
    if (!st)
      st = qcal_graph_run(g, in);
    for (int l = L - 1; l >= 0 && !st; l--)
      for (int pc = s->cfg.zoo ? 1 : 0; pc < 2 && !st; pc++) {
        int n = 0, k = 2 * l + pc;
        layer_fq(s, l, "entropy", pc ? 2 : 1, bits, bits, fq, &n);
        if (n == 0)
          continue;
        used[k] = true;
        st = qcal_graph_fake_quant(g, fq, n);
        if (!st)
          st = qcal_graph_run_from(g, in, s->layers[l].node);
        if (!st)
          st = accumulate(s, g, h, r.q, sacc + (size_t)k * no1,
                          tacc ? tacc + (size_t)k * s->task->acc_size : NULL, false);
      }
    /* the sensitivity share of the bar, spread over the photos */
    qcal_progress_step(&prog, (size_t)(2 * L) * (size_t)(h + 1) / (size_t)s->nheld -
                                  (size_t)(2 * L) * (size_t)h / (size_t)s->nheld);
  }
  for (int l = 0; l < L && !st; l++)
    for (int pc = 0; pc < 2; pc++) {
      const int k = 2 * l + pc;
      if (!used[k])
        continue;
      const out_acc *acc = sacc + (size_t)k * no1;
      const sweep_layer *ly = &s->layers[l];
      const char *gran = pc ? "per-channel" : "per-tensor";
      for (int o = 0; o < no; o++) {
        if (!s->fp32_out[0][o])
          continue;
        qcal_table *t = s->sens_outputs;
        new_sens_row(t, l, ly, gran);
        qcal_table_set_s(t, QCAL_COL(SENSITIVITY_OUTPUTS, output), g->values[g->outputs[o]].name);
        set_metrics(t, QCAL_COL(SENSITIVITY_OUTPUTS, sqnr_db), &acc[o]);
      }
      if (s->task) {
        new_sens_row(s->sens, l, ly, gran);
        s->task->sens_row(s->task_ctx, tacc + (size_t)k * s->task->acc_size, s->sens);
      }
    }
  free(sacc), free(tacc), free(used);
  qcal_progress_end(&prog);
  qcal_status cl = qcal_graph_fake_quant(g, NULL, 0);
  st = st ? st : cl;
  for (int o = 0; r.q && o < no; o++)
    free(r.q[o]);
  free(r.q), free(r.acc), free(r.task_acc), free(fq);
  s->t_e2e += qcal_now() - t0;
  return st;
}

typedef struct {
  sweep_state *s;
  run_ctx *r;
} repaired_ctx;

static qcal_status repaired_each(void *ctx, int i, qcal_graph *g) {
  repaired_ctx *c = ctx;
  return accumulate(c->s, g, i, c->r->q, c->r->acc, c->r->task_acc, true);
}

/* One repaired configuration: the quantize engine on the sweep's split,
 * then its rows. */
static qcal_status repaired_one(sweep_state *s, qcal_sweep_repair *rc, run_ctx *r, qcal_tensor *cal,
                                qcal_tensor *held) {
  const qcal_method_config *mc = &qcal_method_configs[rc->method];
  qcal_quantize_cfg qc = {.model = s->model_path,
                          .method = mc->method,
                          .percentile = mc->percentile,
                          .weights_per_tensor = !rc->per_channel,
                          .bits = 8,
                          .wbits = rc->wbits,
                          .placement = QCAL_PLACE_WEIGHTED,
                          .threads = s->cfg.jobs,
                          .pre = s->cfg.pre,
                          .repair = rc->repair,
                          .target_db = rc->target_db,
                          .ada = s->cfg.ada,
                          .calib_set = cal,
                          .ncalib_set = s->ncalib,
                          .held_set = held,
                          .nheld_set = s->nheld};
  qcal_quantized q;
  qcal_status st = qcal_quantize_calibrate(&qc, &q);
  qcal_graph *g = q.g;
  memset(r->acc, 0, (size_t)s->graph->noutputs * sizeof *r->acc);
  if (s->task)
    memset(r->task_acc, 0, s->task->acc_size);
  if (!st && g->noutputs != s->graph->noutputs)
    st = qcal_error(QCAL_EINVAL, "%s: the quantize engine sees %d outputs, the sweep %d",
                    s->model_path, g->noutputs, s->graph->noutputs);
  repaired_ctx c = {s, r};
  if (!st)
    st = qcal_quantize_run(&q, &qc, held, s->nheld, repaired_each, &c);
  char label[160];
  qcal_repair_text(rc->repair, rc->target_db, label, sizeof label);
  const char *wg = rc->per_channel ? "per-channel" : "per-tensor";
  const bool w4 = s->e2e_w4a8 && rc->wbits != 8;
  rc->worst_db = INFINITY;
  rc->task_value = s->om_output >= 0 && !st
                       ? qcal_om_value((qcal_outmetric)s->om, &r->acc[s->om_output].om)
                       : NAN;
  for (int o = 0; o < s->graph->noutputs && !st; o++) {
    if (!s->fp32_out[0][o])
      continue;
    qcal_table *t = w4 ? s->e2e_w4a8 : s->e2e_outputs;
    new_e2e_row(t, mc->label, wg, rc->wbits);
    qcal_table_set_s(t, QCAL_COL(E2E_OUTPUTS, output), s->graph->values[s->graph->outputs[o]].name);
    set_metrics(t, QCAL_COL(E2E_OUTPUTS, sqnr_db), &r->acc[o]);
    set_task(s, t, o, &r->acc[o]);
    qcal_table_set_i(t, QCAL_COL(E2E_OUTPUTS, images), s->nheld);
    qcal_table_set_s(t, QCAL_COL(E2E_OUTPUTS, repair), label);
    double db = sqnr(r->acc[o].sig, r->acc[o].err);
    rc->worst_db = db < rc->worst_db ? db : rc->worst_db;
  }
  if (!st && s->task && !w4) {
    new_e2e_row(s->e2e, mc->label, wg, rc->wbits);
    qcal_table_set_i(s->e2e, QCAL_COL(E2E, images), s->nheld);
    qcal_table_set_s(s->e2e, QCAL_COL(E2E, repair), label);
    s->task->e2e_row(s->task_ctx, r->task_acc, s->e2e);
  }
  if (!st) { /* the report outlives q */
    rc->rep = q.rep;
    memset(&q.rep, 0, sizeof q.rep);
  }
  qcal_quantized_free(&q);
  return st;
}

qcal_status qcal_sweep_e2e_repaired(sweep_state *s, qcal_sweep_repair *rc, int n) {
  if (!s->have_model || s->nheld == 0 || n == 0)
    return QCAL_OK;
  if (!s->e2e_outputs)
    return qcal_error(QCAL_EINVAL, "the repaired rows come after the end-to-end runs");
  double t0 = qcal_now();
  qcal_graph *g = s->graph;
  const int no = g->noutputs;
  run_ctx r = {calloc((size_t)no + 1, sizeof(out_acc)), NULL,
               calloc((size_t)no + 1, sizeof(float *))};
  /* the split as the engine takes it: views of the sweep's photos */
  qcal_tensor *cal = calloc((size_t)s->ncalib + 1, sizeof *cal);
  qcal_tensor *held = calloc((size_t)s->nheld + 1, sizeof *held);
  qcal_status st = r.acc && r.q && cal && held ? QCAL_OK : qcal_error(QCAL_ENOMEM, "out of memory");
  for (int o = 0; o < no && !st; o++)
    if (s->fp32_out[0][o] && !(r.q[o] = malloc(g->values[g->outputs[o]].numel * sizeof(float) + 1)))
      st = qcal_error(QCAL_ENOMEM, "out of memory");
  if (!st && s->task && !(r.task_acc = calloc(1, s->task->acc_size)))
    st = qcal_error(QCAL_ENOMEM, "out of memory");
  for (int k = 0; k < s->ncalib && !st; k++)
    cal[k] = s->images[s->calib_idx[k]];
  for (int k = 0; k < s->nheld && !st; k++)
    held[k] = s->images[s->held_idx[k]];
  qcal_progress prog;
  qcal_progress_start(&prog, "repaired end-to-end", (size_t)n);
  for (int i = 0; i < n && !st; i++) {
    st = repaired_one(s, &rc[i], &r, cal, held);
    qcal_progress_step(&prog, 1);
  }
  qcal_progress_end(&prog);
  for (int o = 0; r.q && o < no; o++)
    free(r.q[o]);
  free(r.q), free(r.acc), free(r.task_acc), free(cal), free(held);
  s->t_e2e += qcal_now() - t0;
  return st;
}
