/* Collect + compute for one tensor with any method of the table. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qcal/calib.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

qcal_status qcal_calibrate(const qcal_tensor *t, const qcal_calib_request *r,
                           qcal_calib_result *out) {
  memset(out, 0, sizeof *out);
  QCAL_TRY(qcal_tensor_check(t));
  QCAL_TRY(qcal_qformat_check(r->calib.fmt));
  qcal_status st = QCAL_OK;
  if (!r->method->from_hist) {
    qcal_max_collector mc;
    qcal_max_collector_init(&mc, r->axis);
    double t0 = now();
    st = qcal_max_collector_collect(&mc, t);
    out->collect_s = now() - t0;
    if (st == QCAL_OK) {
      out->channels = mc.channels;
      out->amax = mc.amax; /* ownership moves to the result */
      mc.amax = NULL;
    }
    qcal_max_collector_free(&mc);
    return st;
  }
  qcal_hist_collector hc;
  QCAL_TRY(qcal_hist_collector_init(&hc, r->axis, &r->hist));
  double t0 = now();
  st = qcal_hist_collector_collect(&hc, t);
  out->collect_s = now() - t0;
  if (st == QCAL_OK) {
    out->amax = calloc(hc.channels, sizeof *out->amax);
    if (!out->amax)
      st = qcal_error(QCAL_ENOMEM, "cannot allocate %zu channels", hc.channels);
  }
  if (st == QCAL_OK) {
    out->channels = hc.channels;
    out->nbins = hc.hist[0].nbins;
    t0 = now();
    for (size_t c = 0; c < hc.channels && st == QCAL_OK; c++)
      st = r->method->from_hist(&hc.hist[c], &r->calib, &out->amax[c]);
    out->compute_s = now() - t0;
  }
  qcal_hist_collector_free(&hc);
  if (st != QCAL_OK)
    qcal_calib_result_free(out);
  return st;
}

void qcal_calib_result_free(qcal_calib_result *r) {
  free(r->amax);
  memset(r, 0, sizeof *r);
}
