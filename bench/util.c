/* The data cache folder and the output-path checks of the benchmarks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/cli.h"
#include "qcal/paths.h"

/* Data cache, as scripts/fetch-data.sh chooses it. */
const char *qcal_cache_dir(char *buf, size_t cap) {
  const char *c = getenv("QCAL_CACHE"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
  if (c && *c)
    snprintf(buf, cap, "%s", c);
  else if (x && *x)
    snprintf(buf, cap, "%s/qcal", x);
  else
    snprintf(buf, cap, "%s/.cache/qcal", h ? h : ".");
  return buf;
}

int qcal_check_outputs(const char *cmd, const char *h5, const char *json, const char *const *inputs,
                       int ninputs) {
  const char *outs[2] = {h5, json};
  for (int i = 0; i < 2; i++) {
    if (!outs[i])
      continue;
    const char *all[17];
    int n = 0;
    for (int k = 0; k < ninputs && n < 16; k++)
      all[n++] = inputs[k];
    if (outs[1 - i])
      all[n++] = outs[1 - i];
    if ((outs[1 - i] && !strcmp(outs[0], outs[1])) || qcal_output_check(outs[i], all, n) != QCAL_OK)
      return qcal_die("%s: %s", cmd,
                      outs[1 - i] && !strcmp(outs[0], outs[1]) ? "-o and --json name the same file"
                                                               : qcal_last_error());
  }
  return 0;
}
