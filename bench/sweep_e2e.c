/* End-to-end PTQ fidelity: the network with fake-quant at every convolution
 * input and weight, per activation method and weight granularity, on the
 * held-out photos; and each layer's sensitivity when it alone is quantized. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/cli.h"
#include "bench/sweep.h"

void qcal_layer_short_name(const char *full, char *out, size_t cap);

typedef struct {
  double sig_h, err_h, sig_o, err_o;
  long match, total;
  long cmatch, ctotal; /* keypoints FP32 finds with score >= 0.5 */
} fidelity;

/* signal and error energy of b against the reference a */
static void energy(const qcal_tensor *a, const qcal_tensor *b, double *sig, double *err) {
  for (size_t i = 0; i < a->numel; i++) {
    double d = (double)a->data[i] - b->data[i];
    *sig += (double)a->data[i] * a->data[i];
    *err += d * d;
  }
}

static void compare(const qcal_model *m, const qcal_tensor *ref, const qcal_tensor *q,
                    fidelity *f) {
  const int hh = m->heads[QCAL_HEAD_HEATMAP], ho = m->heads[QCAL_HEAD_OFFSET];
  if (hh >= 0) {
    const qcal_tensor *a = &ref[hh], *b = &q[hh];
    energy(a, b, &f->sig_h, &f->err_h);
    const int K = (int)a->shape[3];
    const size_t P = a->numel / (size_t)K;
    for (int k = 0; k < K; k++) {
      size_t ba = 0, bb = 0;
      for (size_t p = 1; p < P; p++) {
        if (a->data[p * K + k] > a->data[ba * K + k])
          ba = p;
        if (b->data[p * K + k] > b->data[bb * K + k])
          bb = p;
      }
      f->match += ba == bb;
      f->total++;
      if (a->data[ba * K + k] >= 0.0f) { /* sigmoid(logit) >= 0.5 */
        f->cmatch += ba == bb;
        f->ctotal++;
      }
    }
  }
  if (ho >= 0)
    energy(&ref[ho], &q[ho], &f->sig_o, &f->err_o);
}

static double sqnr(double sig, double err) {
  return err > 0 ? 10 * log10(sig / err) : INFINITY;
}

/* Index of the sweep item for layer l of the given kind, or -1. */
static int item_of(const sweep_state *s, int l, item_kind kind) {
  for (int i = 0; i < s->nitems; i++)
    if (s->items[i].layer == l && s->items[i].kind == kind)
      return i;
  return -1;
}

/* Run the held-out images through qm from layer `first` (earlier layers from
 * the FP32 cache) and compare with FP32. */
static qcal_status run_held(sweep_state *s, const qcal_model *qm, const float *act_amax, int bits,
                            int first, fidelity *f) {
  const int L = s->model.nlayers;
  qcal_tensor *acts = calloc((size_t)L, sizeof *acts);
  if (!acts)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  qcal_forward_opts o = {act_amax, {bits, false, false}, first};
  qcal_status st = QCAL_OK;
  for (int h = 0; h < s->nheld && st == QCAL_OK; h++) {
    memcpy(acts, s->fp32_acts[h], (size_t)first * sizeof *acts); /* borrowed, read only */
    memset(acts + first, 0, (size_t)(L - first) * sizeof *acts);
    st = qcal_model_forward(qm, &s->images[s->held_idx[h]], &o, acts);
    if (st == QCAL_OK)
      compare(&s->model, s->fp32_acts[h], acts, f);
    for (int l = first; l < L; l++)
      qcal_tensor_free(&acts[l]);
  }
  free(acts);
  return st;
}

qcal_status qcal_sweep_e2e(sweep_state *s) {
  if (!s->have_model || s->nheld == 0)
    return QCAL_OK;
  double t0 = qcal_now();
  const qcal_model *m = &s->model;
  const int L = m->nlayers;
  int bits = s->cfg.bits[0];
  for (int b = 0; b < s->cfg.nbits; b++)
    if (s->cfg.bits[b] == 8 || (bits != 8 && s->cfg.bits[b] > bits))
      bits = s->cfg.bits[b];

  s->e2e = qcal_table_new_schema(QCAL_TABLE_E2E);
  int c_am = QCAL_COL(E2E, act_method);
  int c_wg = QCAL_COL(E2E, weight_granularity);
  int c_b = QCAL_COL(E2E, bits);
  int c_hs = QCAL_COL(E2E, heatmap_sqnr_db);
  int c_os = QCAL_COL(E2E, offset_sqnr_db);
  int c_ka = QCAL_COL(E2E, keypoint_agreement);
  int c_kc = QCAL_COL(E2E, keypoint_agreement_confident);
  int c_kn = QCAL_COL(E2E, confident_keypoints);
  int c_n = QCAL_COL(E2E, images);
  s->sens = qcal_table_new_schema(QCAL_TABLE_SENSITIVITY);
  int d_l = QCAL_COL(SENSITIVITY, layer);
  int d_name = QCAL_COL(SENSITIVITY, layer_name);
  int d_op = QCAL_COL(SENSITIVITY, op);
  int d_wg = QCAL_COL(SENSITIVITY, weight_granularity);
  int d_hs = QCAL_COL(SENSITIVITY, heatmap_sqnr_db);
  int d_os = QCAL_COL(SENSITIVITY, offset_sqnr_db);
  int d_ka = QCAL_COL(SENSITIVITY, keypoint_agreement);
  int d_kc = QCAL_COL(SENSITIVITY, keypoint_agreement_confident);

  float *act = malloc((size_t)L * sizeof *act);
  float **wam = calloc((size_t)L, sizeof *wam);
  qcal_status st = act && wam ? QCAL_OK : qcal_error(QCAL_ENOMEM, "out of memory");
  /* activation method (or float) x weights (float, per-tensor, per-channel),
   * without the all-float case */
  const int nconf = (QCAL_METHOD_CONFIG_COUNT + 1) * 3 - 1;
  qcal_progress prog;
  qcal_progress_start(&prog, "end-to-end", (size_t)(nconf + 2 * L));
  for (int c = 0; c < nconf && st == QCAL_OK; c++) {
    const int method = (c + 1) / 3 - 1, wmode = (c + 1) % 3; /* skips (float, float) */
    const bool pc = wmode == 2;
    const char *label = method < 0 ? "float" : qcal_method_configs[method].label;
    static const char *const wnames[] = {"float", "per-tensor", "per-channel"};
    for (int l = 0; l < L; l++) {
      int ia = item_of(s, l, ITEM_ACTIVATION), iw = item_of(s, l, ITEM_WEIGHT);
      const sweep_row *ra =
          ia >= 0 && method >= 0 ? qcal_sweep_find(s, ia, label, false, bits) : NULL;
      const sweep_row *rw = iw >= 0 && wmode ? qcal_sweep_find(s, iw, "max", pc, bits) : NULL;
      act[l] = ra ? ra->amax[0] : -1.0f;
      wam[l] = rw ? rw->amax : NULL;
    }
    qcal_model qm;
    st = qcal_model_copy(&qm, m);
    if (st == QCAL_OK)
      st = qcal_model_fake_quant_weights(&qm, wam, pc, (qcal_qformat){bits, false, false});
    fidelity f = {0};
    if (st == QCAL_OK)
      st = run_held(s, &qm, act, bits, 0, &f);
    qcal_model_free(&qm);
    qcal_table_row(s->e2e);
    qcal_table_set_s(s->e2e, c_am, label);
    qcal_table_set_s(s->e2e, c_wg, wnames[wmode]);
    qcal_table_set_i(s->e2e, c_b, bits);
    qcal_table_set_f(s->e2e, c_hs, sqnr(f.sig_h, f.err_h));
    qcal_table_set_f(s->e2e, c_os, sqnr(f.sig_o, f.err_o));
    qcal_table_set_f(s->e2e, c_ka, f.total ? (double)f.match / (double)f.total : NAN);
    qcal_table_set_f(s->e2e, c_kc, f.ctotal ? (double)f.cmatch / (double)f.ctotal : NAN);
    qcal_table_set_i(s->e2e, c_kn, f.ctotal);
    qcal_table_set_i(s->e2e, c_n, s->nheld);
    qcal_progress_step(&prog, 1);
  }
  /* sensitivity: one layer at a time; layers before it come from the cache */
  for (int l = 0; l < L && st == QCAL_OK; l++) {
    int ia = item_of(s, l, ITEM_ACTIVATION), iw = item_of(s, l, ITEM_WEIGHT);
    for (int pc = 0; pc < 2 && st == QCAL_OK; pc++) {
      const sweep_row *ra = ia >= 0 ? qcal_sweep_find(s, ia, "entropy", false, bits) : NULL;
      const sweep_row *rw = iw >= 0 ? qcal_sweep_find(s, iw, "max", pc, bits) : NULL;
      qcal_progress_step(&prog, 1);
      if (!ra && !rw)
        continue;
      for (int k = 0; k < L; k++)
        act[k] = -1.0f;
      act[l] = ra ? ra->amax[0] : -1.0f;
      qcal_model qm = *m;
      qm.layers = malloc((size_t)L * sizeof *qm.layers);
      qcal_tensor wq = {0};
      st = qm.layers ? QCAL_OK : qcal_error(QCAL_ENOMEM, "out of memory");
      if (st == QCAL_OK) {
        memcpy(qm.layers, m->layers, (size_t)L * sizeof *qm.layers);
        const qcal_tensor *w = &m->layers[l].weight;
        st = qcal_tensor_alloc(&wq, w->ndim, w->shape);
        if (st == QCAL_OK && rw) {
          qcal_layout lay;
          st = qcal_layout_make(w->ndim, w->shape, pc ? m->layers[l].weight_axis : QCAL_PER_TENSOR,
                                &lay);
          if (st == QCAL_OK)
            st = qcal_fake_quant(&lay, w->data, rw->amax, (qcal_qformat){bits, false, false},
                                 wq.data);
        } else if (st == QCAL_OK) {
          memcpy(wq.data, w->data, w->numel * sizeof(float));
        }
        qm.layers[l].weight = wq;
      }
      fidelity f = {0};
      if (st == QCAL_OK)
        st = run_held(s, &qm, act, bits, l, &f);
      qcal_tensor_free(&wq);
      free(qm.layers);
      char shortn[128];
      qcal_layer_short_name(m->layers[l].name, shortn, sizeof shortn);
      qcal_table_row(s->sens);
      qcal_table_set_i(s->sens, d_l, l);
      qcal_table_set_s(s->sens, d_name, shortn);
      qcal_table_set_s(s->sens, d_op, m->layers[l].op == QCAL_OP_DWCONV ? "depthwise" : "conv");
      qcal_table_set_s(s->sens, d_wg, pc ? "per-channel" : "per-tensor");
      qcal_table_set_f(s->sens, d_hs, sqnr(f.sig_h, f.err_h));
      qcal_table_set_f(s->sens, d_os, sqnr(f.sig_o, f.err_o));
      qcal_table_set_f(s->sens, d_ka, f.total ? (double)f.match / (double)f.total : NAN);
      qcal_table_set_f(s->sens, d_kc, f.ctotal ? (double)f.cmatch / (double)f.ctotal : NAN);
    }
  }
  qcal_progress_end(&prog);
  free(act);
  free(wam);
  s->t_e2e += qcal_now() - t0;
  return st;
}
