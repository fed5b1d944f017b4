/* Timers, medians and the terminal progress bar. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "qcal/progress.h"

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
