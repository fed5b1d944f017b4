/* Checks shared by the histogram methods. */
#ifndef QCAL_CALIBRATORS_COMMON_H
#define QCAL_CALIBRATORS_COMMON_H

#include "qcal/calib.h"

static inline qcal_status qcal_check_hist_method(const qcal_histogram *h, const qcal_calib_opts *o,
                                                 const char *method) {
  QCAL_TRY(qcal_qformat_check(o->fmt));
  if (!h || h->nbins < 2 || !h->counts || !h->edges)
    return qcal_error(QCAL_EINVAL, "%s: no histogram collected", method);
  if (o->stride < 1)
    return qcal_error(QCAL_EINVAL, "%s: stride must be >= 1", method);
  return QCAL_OK;
}

#endif
