/* Entropy (KL-divergence) calibration, pytorch-quantization semantics:
 *   bins[0] := bins[1]; candidates i = start_bin..nbins (step stride);
 *   P = bins[:i] with the tail sum added to P[i-1];
 *   Q = bins[:i] merged into L = 2^(b-1+unsigned) groups (numpy digitize over
 *       linspace(0, i, L+1): group(j) = floor(j*L/i)), each group total spread
 *       over its non-empty bins;
 *   amax = edges[i] of the LAST candidate with minimal KL(P||Q).
 * Prefix sums make each candidate O(min(L, i)) instead of O(i):
 *   sum_j P_j log(P_j/Q_j) over a group = sum b log b - S log(S/m),
 * S the group total, m its non-empty bins. */
#include <math.h>
#include <stdlib.h>

#include "calibrators/common.h"
#include "qcal/kernels.h"

/* Relative slack for "reaches the minimum": the prefix-sum form and a direct
 * evaluation differ by rounding only. */
#define KL_TIE_REL 1e-12
#define KL_TIE_ABS 1e-15

qcal_status qcal_amax_entropy(const qcal_histogram *h, const qcal_calib_opts *o, float *amax) {
  QCAL_TRY(qcal_check_hist_method(h, o, "entropy"));
  const uint32_t n = h->nbins;
  if (h->edges[n] == 0.0f) { /* all-zero data */
    *amax = 0.0f;
    return QCAL_OK;
  }
  if (o->start_bin < 1 || o->start_bin > n)
    return qcal_error(QCAL_EINVAL, "entropy: start bin %u outside 1..%u bins", o->start_bin, n);
  const int lg = o->fmt.bits - 1 + (o->fmt.is_unsigned ? 1 : 0);
  const uint64_t L = (uint64_t)1 << lg;

  uint64_t *pre = malloc(((size_t)n + 1) * sizeof *pre);
  uint32_t *nz = malloc(((size_t)n + 1) * sizeof *nz);
  /* prefix of b log b as a double-double (hi + lo), so that differences of
   * large prefixes keep full double precision */
  double *xh = malloc(((size_t)n + 1) * sizeof *xh);
  double *xl = malloc(((size_t)n + 1) * sizeof *xl);
  size_t ncand = (n - o->start_bin) / o->stride + 1;
  size_t G = L < n ? (size_t)L : 1;
  double *kl = malloc(ncand * sizeof *kl);
  double *gS = malloc(3 * G * sizeof *gS);
  if (!pre || !nz || !xh || !xl || !kl || !gS) {
    free(pre), free(nz), free(xh), free(xl), free(kl), free(gS);
    return qcal_error(QCAL_ENOMEM, "entropy: cannot allocate %u bins", n);
  }
  double *gM = gS + G, *gX = gM + G; /* group totals, non-empty counts, sum b log b */
  pre[0] = 0, nz[0] = 0, xh[0] = 0, xl[0] = 0;
  for (uint32_t j = 0; j < n; j++) {
    uint64_t b = h->counts[j == 0 ? 1 : j];
    pre[j + 1] = pre[j] + b;
    nz[j + 1] = nz[j] + (b != 0);
    double v = b ? (double)b * log((double)b) : 0.0;
    double s = xh[j] + v, bv = s - xh[j]; /* two-sum */
    xh[j + 1] = s;
    xl[j + 1] = xl[j] + ((xh[j] - (s - bv)) + (v - bv));
  }
  const qcal_kernel_table *kt = qcal_kernels();
  const double total = (double)pre[n];
  double best = INFINITY;

  size_t ci = 0;
  for (uint64_t i = o->start_bin; i <= n; i += o->stride, ci++) {
    const uint64_t tail = pre[n] - pre[i];
    const uint64_t last = pre[i] - pre[i - 1];
    double sum = 0.0, v;
    if (tail && !last) {
      v = INFINITY; /* P > 0 where Q = 0 */
    } else {
      double qlast = (double)last; /* Q of bin i-1 */
      if (L < i) {
        uint64_t lo = 0;
        for (uint64_t g = 0; g < L; g++) {
          uint64_t hi = ((g + 1) * i + L - 1) >> lg;
          uint32_t m = nz[hi] - nz[lo];
          if (m < 2) { /* one bin: Q == P exactly, contributes 0 */
            gS[g] = 1.0, gM[g] = 1.0, gX[g] = 0.0;
          } else {
            gS[g] = (double)(pre[hi] - pre[lo]);
            gM[g] = (double)m;
            gX[g] = (xh[hi] - xh[lo]) + (xl[hi] - xl[lo]);
          }
          lo = hi;
        }
        sum = kt->f64_kl_groups(L, gS, gM, gX);
        if (gM[L - 1] >= 2.0)
          qlast = gS[L - 1] / gM[L - 1];
      }
      if (tail) {
        double p = (double)last + (double)tail;
        sum += p * log(p / qlast) - (double)last * log((double)last / qlast);
      }
      v = sum / total + log((double)pre[i] / total);
    }
    kl[ci] = v;
    if (v < best)
      best = v;
  }
  double tol = KL_TIE_REL * fabs(best) + KL_TIE_ABS;
  size_t pick = 0;
  for (size_t k = 0; k < ncand; k++)
    if (kl[k] <= best + tol)
      pick = k;
  *amax = h->edges[o->start_bin + pick * o->stride];
  free(pre), free(nz), free(xh), free(xl), free(kl), free(gS);
  return QCAL_OK;
}
