/* Calibrate + measure, the unit of work of the demo and the sweeps. */
#include "bench/cli.h"

qcal_status qcal_evaluate(const qcal_tensor *t, const qcal_calib_request *r, qcal_calib_result *res,
                          qcal_metrics *m) {
  QCAL_TRY(qcal_calibrate(t, r, res));
  qcal_error_stats es;
  qcal_error_stats_init(&es);
  qcal_status st = qcal_error_stats_tensor(&es, t, r->axis, res->amax, r->calib.fmt);
  if (st != QCAL_OK) {
    qcal_calib_result_free(res);
    return st;
  }
  qcal_error_stats_finish(&es, m);
  return QCAL_OK;
}
