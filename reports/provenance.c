/* Provenance attributes of a results file: tool, commit, date, machine,
 * compiler. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "qcal/cuda.h"
#include "qcal/kernels.h"
#include "qcal/results.h"
#include "qcal_config.h"

static void cpuinfo_field(const char *key, char *out, size_t cap) {
  snprintf(out, cap, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f)
    return;
  char line[8192];
  size_t kl = strlen(key);
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, key, kl)) {
      char *v = strchr(line, ':');
      if (v) {
        v += 1 + (v[1] == ' ');
        v[strcspn(v, "\n")] = '\0';
        snprintf(out, cap, "%s", v);
      }
      break;
    }
  fclose(f);
}

qcal_status qcal_write_provenance(qcal_h5 *h, const char *config_json) {
  char model[256], flags[8192], date[64], gpu[512];
  cpuinfo_field("model name", model, sizeof model);
  cpuinfo_field("flags", flags, sizeof flags);
  time_t now = time(NULL);
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  if (qcal_cuda_available() == QCAL_OK)
    snprintf(gpu, sizeof gpu, "CUDA device present");
  else
    snprintf(gpu, sizeof gpu, "none (%s)", qcal_last_error());
  QCAL_TRY(qcal_h5_attr_int(h, "/", "schema_version", QCAL_SCHEMA_VERSION));
  QCAL_TRY(qcal_h5_attr_str(h, "/", "qcal_version", QCAL_VERSION));
  QCAL_TRY(qcal_h5_attr_str(h, "/", "git_commit", QCAL_GIT_COMMIT));
  QCAL_TRY(qcal_h5_attr_str(h, "/", "date", date));
  QCAL_TRY(qcal_h5_attr_str(h, "/", "cpu_model", model));
  QCAL_TRY(qcal_h5_attr_str(h, "/", "cpu_flags", flags));
  QCAL_TRY(qcal_h5_attr_str(h, "/", "kernels", qcal_kernels()->isa));
  QCAL_TRY(qcal_h5_attr_str(h, "/", "gpu", gpu));
  QCAL_TRY(qcal_h5_attr_str(h, "/", "compiler", QCAL_COMPILER));
  return qcal_h5_attr_str(h, "/", "config", config_json);
}

qcal_status qcal_results_save(const char *path, const char *config_json,
                              const qcal_table *const *tables, int ntables) {
  qcal_h5 h;
  QCAL_TRY(qcal_h5_create(&h, path));
  qcal_status st = qcal_write_provenance(&h, config_json);
  for (int i = 0; i < ntables && st == QCAL_OK; i++)
    st = qcal_h5_write_table(&h, tables[i]);
  if (st != QCAL_OK) {
    qcal_h5_abort(&h);
    return st;
  }
  return qcal_h5_commit(&h);
}
