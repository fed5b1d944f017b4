/* Timers, medians and the terminal progress bar. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/cli.h"
#include "qcal/paths.h"

double qcal_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double qcal_median(double *v, size_t n) {
  if (n == 0)
    return 0.0;
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void qcal_progress_start(qcal_progress *p, const char *label, size_t total) {
  p->label = label;
  p->total = total ? total : 1;
  p->done = 0;
  p->tty = isatty(STDERR_FILENO);
  p->last = 0;
  qcal_progress_step(p, 0);
}

void qcal_progress_step(qcal_progress *p, size_t n) {
  p->done += n;
  if (!p->tty)
    return;
  double now = qcal_now();
  if (p->done < p->total && now - p->last < 0.05)
    return;
  p->last = now;
  int width = 30, fill = (int)((double)width * (double)p->done / (double)p->total);
  fprintf(stderr, "\r%-12s [", p->label);
  for (int i = 0; i < width; i++)
    fputc(i < fill ? '#' : '.', stderr);
  fprintf(stderr, "] %zu/%zu", p->done, p->total);
  fflush(stderr);
}

void qcal_progress_end(qcal_progress *p) {
  if (p->tty)
    fprintf(stderr, "\r%*s\r", 70, "");
}

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
