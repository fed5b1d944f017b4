/* Method table: name -> amax computation. */
#include <string.h>

#include "qcal/calib.h"

const qcal_method_info qcal_methods[] = {
    {"max", "running max of |x|", NULL},
    {"entropy", "minimise KL(P||Q) over the |x| histogram", qcal_amax_entropy},
    {"mse", "minimise the histogram-weighted squared error", qcal_amax_mse},
    {"percentile", "the given percentile of |x| (99.99)", qcal_amax_percentile},
};
const size_t qcal_method_count = sizeof qcal_methods / sizeof qcal_methods[0];

const qcal_method_config qcal_method_configs[QCAL_METHOD_CONFIG_COUNT] = {
    {"max", "max", 0},
    {"entropy", "entropy", 0},
    {"mse", "mse", 0},
    {"pct99.9", "percentile", 99.9},
    {"pct99.99", "percentile", 99.99},
    {"pct99.999", "percentile", 99.999},
};

const qcal_method_info *qcal_method_find(const char *name) {
  for (size_t i = 0; i < qcal_method_count; i++)
    if (!strcmp(qcal_methods[i].name, name))
      return &qcal_methods[i];
  return NULL;
}

const qcal_method_config *qcal_method_config_find(const char *label) {
  for (int k = 0; k < QCAL_METHOD_CONFIG_COUNT; k++)
    if (!strcmp(qcal_method_configs[k].label, label))
      return &qcal_method_configs[k];
  return NULL;
}
