/* |x| histogram collection with torch.histc binning (the default path of
 * pytorch-quantization's HistogramCalibrator), 64-bit counts, threaded. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "qcal/calib.h"
#include "qcal/kernels.h"

enum { PAR_MIN = 1 << 16 }; /* below this, one thread is faster */

static int thread_count(const qcal_hist_opts *o, size_t n) {
  if (n < PAR_MIN)
    return 1;
  int t = o->threads > 0 ? o->threads : omp_get_max_threads();
  return t < 1 ? 1 : t;
}

static float absmax_par(const float *x, size_t n, int nt) {
  const qcal_kernel_table *k = qcal_kernels();
  float m = 0.0f;
#pragma omp parallel for num_threads(nt) reduction(max : m) schedule(static)
  for (int t = 0; t < nt; t++) {
    size_t lo = n * (size_t)t / (size_t)nt, hi = n * (size_t)(t + 1) / (size_t)nt;
    float v = k->f32_absmax(hi - lo, x + lo);
    m = v > m ? v : m;
  }
  return m;
}

static qcal_status bin_par(const float *x, size_t n, uint32_t nbins, float range, bool skip_zeros,
                           int nt, uint64_t *counts) {
  const qcal_kernel_table *k = qcal_kernels();
  if (nt == 1) {
    k->f32_histogram(n, x, nbins, range, skip_zeros, counts);
    return QCAL_OK;
  }
  uint64_t *local = calloc((size_t)nt * nbins, sizeof(uint64_t));
  if (!local)
    return qcal_error(QCAL_ENOMEM, "cannot allocate %d x %u histogram bins", nt, nbins);
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num();
    size_t lo = n * (size_t)t / (size_t)nt, hi = n * (size_t)(t + 1) / (size_t)nt;
    k->f32_histogram(hi - lo, x + lo, nbins, range, skip_zeros, local + (size_t)t * nbins);
  }
  for (int t = 0; t < nt; t++)
    for (uint32_t b = 0; b < nbins; b++)
      counts[b] += local[(size_t)t * nbins + b];
  free(local);
  return QCAL_OK;
}

/* torch.linspace(0, hi, nbins + 1) in float32, scalar formula. */
static void linspace_edges(float *e, uint32_t nbins, float hi) {
  const float step = hi / (float)nbins;
  const uint32_t steps = nbins + 1, halfway = steps / 2;
  for (uint32_t k = 0; k < steps; k++)
    e[k] = k < halfway ? step * (float)k : hi - step * (float)(steps - k - 1);
}

static qcal_status resize(qcal_histogram *h, uint32_t nbins) {
  uint64_t *c = realloc(h->counts, (size_t)nbins * sizeof *c);
  if (!c)
    return qcal_error(QCAL_ENOMEM, "cannot allocate %u histogram bins", nbins);
  h->counts = c;
  float *e = realloc(h->edges, ((size_t)nbins + 1) * sizeof *e);
  if (!e)
    return qcal_error(QCAL_ENOMEM, "cannot allocate %u histogram edges", nbins);
  h->edges = e;
  if (nbins > h->nbins)
    memset(c + h->nbins, 0, (size_t)(nbins - h->nbins) * sizeof *c);
  h->nbins = nbins;
  return QCAL_OK;
}

/* Keep the bin width, append bins up to xmax (torch.arange(0, xmax + w, w)
 * edges). Unlike the reference, never ends below xmax, so no element is lost. */
static qcal_status grow(qcal_histogram *h, float xmax) {
  const float width = h->edges[1] - h->edges[0];
  float need = ceilf(xmax / width);
  uint32_t nb = h->nbins;
  if (need > (float)nb)
    nb = need >= (float)QCAL_MAX_BINS ? QCAL_MAX_BINS + 1 : (uint32_t)need;
  while (nb <= QCAL_MAX_BINS && (float)((double)nb * width) < xmax)
    nb++;
  if (nb > QCAL_MAX_BINS)
    return qcal_error(QCAL_EINVAL,
                      "batch max %g needs more than %u bins of width %g "
                      "(first batch max was %g)",
                      (double)xmax, QCAL_MAX_BINS, (double)width, (double)h->edges[h->nbins]);
  QCAL_TRY(resize(h, nb));
  for (uint32_t k = 0; k <= nb; k++)
    h->edges[k] = (float)((double)k * (double)width);
  return QCAL_OK;
}

qcal_status qcal_histogram_collect(qcal_histogram *h, const float *x, size_t n,
                                   const qcal_hist_opts *o) {
  if (o->nbins < 2 || o->nbins > QCAL_MAX_BINS)
    return qcal_error(QCAL_EINVAL, "bins %u out of range (2..%u)", o->nbins, QCAL_MAX_BINS);
  const int nt = thread_count(o, n);
  const float xmax = absmax_par(x, n, nt);
  if (h->nbins == 0 || h->edges[h->nbins] == 0.0f) {
    /* First batch, or everything so far was 0: (re)start at [0, xmax]. Zeros
     * already counted stay in bin 0, which holds 0 under any range. */
    uint64_t zeros = h->nbins ? h->counts[0] : 0;
    h->nbins = 0;
    QCAL_TRY(resize(h, o->nbins));
    memset(h->counts, 0, (size_t)o->nbins * sizeof *h->counts);
    h->counts[0] = zeros;
    linspace_edges(h->edges, o->nbins, xmax);
    if (xmax == 0.0f) { /* all zero: nothing else to bin */
      if (!o->skip_zeros)
        h->counts[0] += n;
      return QCAL_OK;
    }
  } else if (xmax > h->edges[h->nbins]) {
    QCAL_TRY(grow(h, xmax));
  }
  return bin_par(x, n, h->nbins, h->edges[h->nbins], o->skip_zeros, nt, h->counts);
}

void qcal_histogram_free(qcal_histogram *h) {
  free(h->counts);
  free(h->edges);
  memset(h, 0, sizeof *h);
}

qcal_status qcal_histogram_copy(qcal_histogram *dst, const qcal_histogram *src) {
  memset(dst, 0, sizeof *dst);
  QCAL_TRY(resize(dst, src->nbins));
  memcpy(dst->counts, src->counts, (size_t)src->nbins * sizeof *src->counts);
  memcpy(dst->edges, src->edges, ((size_t)src->nbins + 1) * sizeof *src->edges);
  return QCAL_OK;
}

qcal_status qcal_hist_collector_init(qcal_hist_collector *c, int axis, const qcal_hist_opts *o) {
  memset(c, 0, sizeof *c);
  c->opts = o ? *o : QCAL_HIST_OPTS_DEFAULT;
  c->axis = axis;
  if (c->opts.nbins < 2 || c->opts.nbins > QCAL_MAX_BINS)
    return qcal_error(QCAL_EINVAL, "bins %u out of range (2..%u)", c->opts.nbins, QCAL_MAX_BINS);
  return QCAL_OK;
}

/* Copy channel ch of a layout into contiguous scratch; returns the span. */
const float *qcal_gather_channel(const qcal_layout *l, const float *x, size_t ch, float *scratch) {
  if (l->outer == 1)
    return x + ch * l->inner;
  for (size_t o = 0; o < l->outer; o++)
    memcpy(scratch + o * l->inner, x + (o * l->channels + ch) * l->inner, l->inner * sizeof(float));
  return scratch;
}

qcal_status qcal_hist_collector_collect(qcal_hist_collector *c, const qcal_tensor *t) {
  qcal_layout l;
  QCAL_TRY(
      qcal_layout_bind_batch(t, c->axis, &c->channels, (void **)&c->hist, sizeof *c->hist, &l));
  size_t per = l.outer * l.inner;
  if (l.outer > 1 && per > c->scratch_len) {
    qcal_free(c->scratch);
    c->scratch = qcal_alloc(per * sizeof(float));
    if (!c->scratch)
      return qcal_error(QCAL_ENOMEM, "cannot allocate %zu floats", per);
    c->scratch_len = per;
  }
  for (size_t ch = 0; ch < l.channels; ch++) {
    const float *span = qcal_gather_channel(&l, t->data, ch, c->scratch);
    QCAL_TRY(qcal_histogram_collect(&c->hist[ch], span, per, &c->opts));
  }
  return QCAL_OK;
}

void qcal_hist_collector_free(qcal_hist_collector *c) {
  for (size_t i = 0; i < c->channels; i++)
    qcal_histogram_free(&c->hist[i]);
  free(c->hist);
  qcal_free(c->scratch);
  memset(c, 0, sizeof *c);
}
