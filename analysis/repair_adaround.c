/* AdaRound (Nagel et al. 2020, "Up or Down? Adaptive Rounding for
 * Post-Training Quantization"), layer by layer as BRECQ's reference code
 * runs it: each weight is floor(w s) + h(V) with the rectified sigmoid
 * h = clip(sigmoid(V) (zeta - gamma) + gamma, 0, 1), zeta 1.1, gamma -0.1,
 * V starting where h equals the weight's fractional part. Adam minimises
 *   sum_o (dW x)_o^2 averaged over input positions
 *     + lambda sum (1 - |2h - 1|^beta)   (after the warm-up)
 * with beta annealed linearly from beta_hi to beta_lo; the weight then
 * rounds up where V >= 0. The reconstruction term is exact over every
 * calibration position through the Gram matrix H = X^T X of the layer's
 * (quantized) input: sum_p |dW x_p|^2 = tr(dW H dW^T). Both sides read the
 * same input, so the loss starts at zero: dW is computed from the change
 * of h since the start (plus any clipping), never as a difference of two
 * nearly equal weights, whose rounding noise Adam would scale up to whole
 * steps during the warm-up. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/repair_internal.h"
#include "qcal/progress.h"

#define ZETA 1.1f
#define GAMMA -0.1f

/* G = D H per group (rows of group gi use H[gi]). */
static void times_gram(const float *D, int64_t O, int64_t Kg, int64_t groups, const float *H,
                       float *G) {
  const int64_t Og = O / groups;
  if (Kg >= 16) {
    for (int64_t gi = 0; gi < groups; gi++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Og, (int)Kg, (int)Kg, 1.0f,
                  D + gi * Og * Kg, (int)Kg, H + gi * Kg * Kg, (int)Kg, 0.0f, G + gi * Og * Kg,
                  (int)Kg);
    return;
  }
  for (int64_t o = 0; o < O; o++) {
    const float *Hg = H + (o / Og) * Kg * Kg, *d = D + o * Kg;
    for (int64_t b = 0; b < Kg; b++) {
      float acc = 0;
      for (int64_t a = 0; a < Kg; a++)
        acc += d[a] * Hg[a * Kg + b];
      G[o * Kg + b] = acc;
    }
  }
}

static double recon_d(const float *D, float *G, int64_t O, int64_t Kg, int64_t groups,
                      const float *H, double P) {
  const size_t n = (size_t)(O * Kg);
  times_gram(D, O, Kg, groups, H, G);
  double acc = 0;
  for (size_t i = 0; i < n; i++)
    acc += (double)D[i] * G[i];
  return acc / P;
}

static double recon(const float *w, const float *wq, float *D, float *G, int64_t O, int64_t Kg,
                    int64_t groups, const float *H, double P) {
  for (size_t i = 0; i < (size_t)(O * Kg); i++)
    D[i] = wq[i] - w[i];
  return recon_d(D, G, O, Kg, groups, H, P);
}

static float soft_h(float v) {
  const float sg = 1.0f / (1.0f + expf(-v));
  return fminf(1.0f, fmaxf(0.0f, sg * (ZETA - GAMMA) + GAMMA));
}

qcal_status qcal_adaround(const float *w, int64_t O, int64_t Kg, int64_t groups, const float *H,
                          double P, const float *amax, int namax, qcal_qformat f,
                          const qcal_adaround_opts *opt, float *out, float *curve,
                          double *loss_nearest, double *loss_final, long *flipped) {
  const size_t n = (size_t)(O * Kg);
  if (O < 1 || Kg < 1 || groups < 1 || O % groups || !(P > 0))
    return qcal_error(QCAL_EINVAL, "adaround: bad layer geometry");
  float *fl = malloc(n * sizeof *fl), *V = malloc(n * sizeof *V), *m = calloc(n, sizeof *m);
  float *v = calloc(n, sizeof *v), *wq = malloc(n * sizeof *wq), *D = malloc(n * sizeof *D);
  float *G = malloc(n * sizeof *G), *sc = malloc((size_t)O * sizeof *sc);
  float *sd = malloc((size_t)O * sizeof *sd), *q0 = malloc(n * sizeof *q0);
  float *c0 = malloc(n * sizeof *c0);
  if (!fl || !V || !m || !v || !wq || !D || !G || !sc || !sd || !q0 || !c0) {
    free(fl), free(V), free(m), free(v), free(wq), free(D), free(G), free(sc), free(sd);
    free(q0), free(c0);
    return qcal_error(QCAL_ENOMEM, "out of memory");
  }
  const float qmin = qcal_qformat_qmin(f), qmax = qcal_qformat_qmax(f);
  for (int64_t o = 0; o < O; o++) {
    const float a = amax[namax > 1 ? o : 0];
    sc[o] = qcal_quant_scale(f, a), sd[o] = qcal_dequant_scale(f, a);
  }
  for (size_t i = 0; i < n; i++) {
    const int64_t o = (int64_t)(i / (size_t)Kg);
    const float ws = w[i] * sc[o];
    fl[i] = floorf(ws);
    const float rest = ws - fl[i];
    V[i] = -logf((ZETA - GAMMA) / (rest - GAMMA) - 1.0f);
    q0[i] = fminf(qmax, fmaxf(qmin, fl[i] + soft_h(V[i]))); /* the start, on the grid's scale */
    c0[i] = fminf(qmax, fmaxf(qmin, ws)) - ws;              /* clipping: 0 inside the grid */
    wq[i] = qcal_fake_quant_one(w[i], sc[o], sd[o], qmin, qmax); /* nearest */
  }
  *loss_nearest = recon(w, wq, D, G, O, Kg, groups, H, P);
  const int T = opt->iters;
  const int warm = (int)(opt->warm_up * (float)T);
  const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  float b1t = 1, b2t = 1;
  for (int t = 0; t < T; t++) {
    const bool reg_on = t >= warm;
    const float rel = T > warm ? (float)(t - warm) / (float)(T - warm) : 1.0f;
    const float beta =
        !reg_on ? opt->beta_hi : opt->beta_lo + (opt->beta_hi - opt->beta_lo) * fmaxf(0, 1 - rel);
    for (size_t i = 0; i < n; i++) { /* the soft-rounded weight's distance from w */
      const int64_t o = (int64_t)(i / (size_t)Kg);
      const float qs = fminf(qmax, fmaxf(qmin, fl[i] + soft_h(V[i])));
      D[i] = ((qs - q0[i]) + c0[i]) / sd[o];
    }
    const double rc = recon_d(D, G, O, Kg, groups, H, P);
    double reg = 0;
    b1t *= b1, b2t *= b2;
    for (size_t i = 0; i < n; i++) {
      const int64_t o = (int64_t)(i / (size_t)Kg);
      const float sg = 1.0f / (1.0f + expf(-V[i]));
      const float hs = sg * (ZETA - GAMMA) + GAMMA;
      const float h = fminf(1.0f, fmaxf(0.0f, hs));
      const float dh = hs >= 0 && hs <= 1 ? (ZETA - GAMMA) * sg * (1 - sg) : 0.0f;
      const float qs = fl[i] + h;
      float gh = qs >= qmin && qs <= qmax ? 2.0f * G[i] / (float)P / sd[o] : 0.0f;
      if (reg_on) {
        const float u = 2 * h - 1, au = fabsf(u);
        reg += 1.0 - pow(au, beta);
        if (au > 0)
          gh += -opt->lambda * beta * powf(au, beta - 1) * (u > 0 ? 1.0f : -1.0f) * 2.0f;
      }
      const float gv = gh * dh;
      m[i] = b1 * m[i] + (1 - b1) * gv;
      v[i] = b2 * v[i] + (1 - b2) * gv * gv;
      const float mh = m[i] / (1 - b1t), vh = v[i] / (1 - b2t);
      V[i] -= opt->lr * mh / (sqrtf(vh) + eps);
    }
    if (curve)
      curve[t] = (float)(rc + opt->lambda * reg);
  }
  long fl_n = 0;
  for (size_t i = 0; i < n; i++) {
    const int64_t o = (int64_t)(i / (size_t)Kg);
    const float q = fminf(qmax, fmaxf(qmin, fl[i] + (V[i] >= 0 ? 1.0f : 0.0f)));
    out[i] = q / sd[o];
    fl_n += out[i] != wq[i]; /* wq: the nearest rounding */
  }
  *flipped = fl_n;
  *loss_final = recon(w, out, D, G, O, Kg, groups, H, P);
  if (*loss_final > *loss_nearest) { /* learning did worse: keep the nearest rounding */
    memcpy(out, wq, n * sizeof *out);
    *loss_final = *loss_nearest, *flipped = 0;
  }
  free(fl), free(V), free(m), free(v), free(wq), free(D), free(G), free(sc), free(sd);
  free(q0), free(c0);
  return QCAL_OK;
}

qcal_status repair_adaround(rstate *s, qcal_tensor *imgs, int n) {
  QCAL_TRY(gather_inputs(s, imgs, n, true, "adaround inputs"));
  const qcal_quantize_cfg *cfg = s->cfg;
  qcal_repair_report *r = &s->q->rep;
  size_t wmax = 0;
  for (int k = 0; k < s->n; k++)
    wmax = s->L[k].wnumel > wmax ? s->L[k].wnumel : wmax;
  float *out = malloc((wmax + 1) * sizeof *out);
  if (!out)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  FILE *dump = NULL;
  qcal_status st = QCAL_OK;
  if (cfg->adaround_dump && !(dump = fopen(cfg->adaround_dump, "wb")))
    st = qcal_error(QCAL_EIO, "cannot write %s", cfg->adaround_dump);
  float *curve = dump ? malloc(((size_t)cfg->ada.iters + 1) * sizeof *curve) : NULL;
  if (dump && !curve && !st)
    st = qcal_error(QCAL_ENOMEM, "out of memory");
  qcal_progress prog;
  qcal_progress_start(&prog, "adaround", (size_t)s->n);
  for (int k = 0; k < s->n && !st; k++) {
    rlayer *l = &s->L[k];
    const qcal_quant_point *p = &s->q->pts[l->wpt];
    double ln, lf;
    long flipped;
    st = qcal_adaround(l->w0, l->O, l->Kg, l->groups, l->H, (double)l->positions, p->amax,
                       p->nscale, repair_wfmt(cfg), &cfg->ada, out, curve, &ln, &lf, &flipped);
    if (st)
      break;
    rlayer_put_w(s, l, out);
    r->adaround_layers++;
    r->adaround_weights += (long)l->wnumel;
    r->adaround_flipped += flipped;
    r->adaround_loss_nearest += ln;
    r->adaround_loss += lf;
    if (dump) { /* one record per layer: O Kg groups P, then w, H, amax, curve, out */
      int64_t hdr[5] = {l->O, l->Kg, l->groups, (int64_t)l->positions, p->nscale};
      size_t hn = (size_t)(l->groups * l->Kg * l->Kg);
      bool ok =
          fwrite(hdr, sizeof hdr, 1, dump) == 1 &&
          fwrite(l->w0, sizeof *out, l->wnumel, dump) == l->wnumel &&
          fwrite(l->H, sizeof *out, hn, dump) == hn &&
          fwrite(p->amax, sizeof *out, (size_t)p->nscale, dump) == (size_t)p->nscale &&
          fwrite(curve, sizeof *out, (size_t)cfg->ada.iters, dump) == (size_t)cfg->ada.iters &&
          fwrite(out, sizeof *out, l->wnumel, dump) == l->wnumel;
      if (!ok)
        st = qcal_error(QCAL_EIO, "cannot write %s", cfg->adaround_dump);
    }
    free(l->H);
    l->H = NULL;
    qcal_progress_step(&prog, 1);
  }
  qcal_progress_end(&prog);
  if (dump && fclose(dump) && !st)
    st = qcal_error(QCAL_EIO, "cannot write %s", cfg->adaround_dump);
  free(out), free(curve);
  return st;
}
