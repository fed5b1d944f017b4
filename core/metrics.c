/* Error metrics: fused statistics over (x, fake-quant(x)). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcal/metrics.h"

void qcal_error_stats_init(qcal_error_stats *s) {
  memset(s, 0, sizeof *s);
}

/* amax[i] when per_elem, else amax[0] for every element. */
static void update_impl(qcal_error_stats *s, size_t n, const float *x, const float *xhat,
                        const float *amax, int per_elem) {
  double x2 = 0, xh2 = 0, dot = 0, sc = 0, sr = 0, mx = s->max_abs_err;
  uint64_t nc = 0;
  for (size_t i = 0; i < n; i++) {
    double a = x[i], b = xhat[i], e = a - b, e2 = e * e;
    x2 += a * a;
    xh2 += b * b;
    dot += a * b;
    if (fabsf(x[i]) > amax[per_elem ? i : 0]) {
      sc += e2;
      nc++;
    } else {
      sr += e2;
    }
    mx = fabs(e) > mx ? fabs(e) : mx;
  }
  s->n += n;
  s->n_clip += nc;
  s->sum_x2 += x2;
  s->sum_xh2 += xh2;
  s->sum_dot += dot;
  s->sse_clip += sc;
  s->sse_round += sr;
  s->max_abs_err = mx;
}

void qcal_error_stats_update(qcal_error_stats *s, size_t n, const float *x, const float *xhat,
                             float amax) {
  update_impl(s, n, x, xhat, &amax, 0);
}

void qcal_error_stats_combine(qcal_error_stats *into, const qcal_error_stats *o) {
  into->n += o->n;
  into->n_clip += o->n_clip;
  into->sum_x2 += o->sum_x2;
  into->sum_xh2 += o->sum_xh2;
  into->sum_dot += o->sum_dot;
  into->sse_clip += o->sse_clip;
  into->sse_round += o->sse_round;
  if (o->max_abs_err > into->max_abs_err)
    into->max_abs_err = o->max_abs_err;
}

void qcal_error_stats_finish(const qcal_error_stats *s, qcal_metrics *m) {
  memset(m, 0, sizeof *m);
  m->n = s->n;
  if (s->n == 0)
    return;
  double n = (double)s->n, sse = s->sse_clip + s->sse_round;
  m->clip_mse = s->sse_clip / n;
  m->round_mse = s->sse_round / n;
  m->mse = m->clip_mse + m->round_mse;
  m->sqnr_db = sse > 0 ? 10.0 * log10(s->sum_x2 / sse) : INFINITY;
  m->max_abs_err = s->max_abs_err;
  if (s->sum_x2 == 0 && s->sum_xh2 == 0)
    m->cosine = 1.0;
  else if (s->sum_x2 == 0 || s->sum_xh2 == 0)
    m->cosine = 0.0;
  else
    m->cosine = s->sum_dot / (sqrt(s->sum_x2) * sqrt(s->sum_xh2));
  m->clip_fraction = (double)s->n_clip / n;
}

qcal_status qcal_error_stats_tensor(qcal_error_stats *s, const qcal_tensor *t, int axis,
                                    const float *amax, qcal_qformat f) {
  qcal_layout l;
  QCAL_TRY(qcal_layout_make(t->ndim, t->shape, axis, &l));
  float *xh = qcal_alloc(t->numel * sizeof(float));
  if (!xh)
    return qcal_error(QCAL_ENOMEM, "cannot allocate %zu floats", t->numel);
  qcal_status st = qcal_fake_quant(&l, t->data, amax, f, xh);
  if (st != QCAL_OK) {
    qcal_free(xh);
    return st;
  }
  const int nt = t->numel < (1u << 16) ? 1 : omp_get_max_threads();
  qcal_error_stats *part = calloc((size_t)nt, sizeof *part);
  if (!part) {
    qcal_free(xh);
    return qcal_error(QCAL_ENOMEM, "cannot allocate statistics");
  }
  /* Tasks: rows of `channels` elements (inner == 1, per-element amax), or
   * chunks of one channel's runs. */
  enum { CHUNK = 1 << 16 };
  const int per_elem = l.inner == 1 && l.channels > 1;
  const size_t chunks = per_elem ? 1 : (l.inner + CHUNK - 1) / CHUNK;
  const size_t tasks = per_elem ? l.outer : l.outer * l.channels * chunks;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (size_t r = 0; r < tasks; r++) {
    qcal_error_stats *p = &part[omp_get_thread_num()];
    if (per_elem) {
      size_t off = r * l.channels;
      update_impl(p, l.channels, t->data + off, xh + off, amax, 1);
    } else {
      size_t run = r / chunks, c0 = (r % chunks) * CHUNK;
      size_t off = run * l.inner + c0;
      size_t len = l.inner - c0 < CHUNK ? l.inner - c0 : CHUNK;
      update_impl(p, len, t->data + off, xh + off, &amax[run % l.channels], 0);
    }
  }
  for (int i = 0; i < nt; i++)
    qcal_error_stats_combine(s, &part[i]);
  free(part);
  qcal_free(xh);
  return QCAL_OK;
}

const char *qcal_db_text(double db, char *buf, size_t cap) {
  if (isnan(db))
    snprintf(buf, cap, "-");
  else if (isinf(db) && db > 0)
    snprintf(buf, cap, "exact");
  else
    snprintf(buf, cap, "%.1f", db);
  return buf;
}
