/* Max calibrator: running max of |x|, per tensor or per channel. */
#include <stdlib.h>
#include <string.h>

#include "qcal/calib.h"
#include "qcal/kernels.h"

qcal_status qcal_max_collector_init(qcal_max_collector *c, int axis) {
  memset(c, 0, sizeof *c);
  c->axis = axis;
  return QCAL_OK;
}

qcal_status qcal_max_collector_collect(qcal_max_collector *c, const qcal_tensor *t) {
  qcal_layout l;
  QCAL_TRY(
      qcal_layout_bind_batch(t, c->axis, &c->channels, (void **)&c->amax, sizeof *c->amax, &l));
  const qcal_kernel_table *k = qcal_kernels();
  if (l.inner == 1 && l.channels > 1) {
    for (size_t o = 0; o < l.outer; o++)
      for (size_t ch = 0; ch < l.channels; ch++) {
        float a = t->data[o * l.channels + ch];
        a = a < 0 ? -a : a;
        c->amax[ch] = a > c->amax[ch] ? a : c->amax[ch];
      }
    return QCAL_OK;
  }
  for (size_t o = 0; o < l.outer; o++)
    for (size_t ch = 0; ch < l.channels; ch++) {
      float a = k->f32_absmax(l.inner, t->data + (o * l.channels + ch) * l.inner);
      c->amax[ch] = a > c->amax[ch] ? a : c->amax[ch];
    }
  return QCAL_OK;
}

void qcal_max_collector_free(qcal_max_collector *c) {
  free(c->amax);
  memset(c, 0, sizeof *c);
}
