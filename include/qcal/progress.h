/* Monotonic time, medians and the terminal progress bar that long-running
 * engines (sweep, zoo) report through. */
#ifndef QCAL_PROGRESS_H
#define QCAL_PROGRESS_H

#include <stddef.h>

double qcal_now(void);                   /* monotonic seconds */
double qcal_median(double *v, size_t n); /* sorts v */

/* A progress bar on stderr when it is a terminal, silent otherwise. */
typedef struct qcal_progress {
  const char *label;
  size_t total, done;
  int tty;
  double last;
} qcal_progress;
void qcal_progress_start(qcal_progress *p, const char *label, size_t total);
void qcal_progress_step(qcal_progress *p, size_t n);
void qcal_progress_end(qcal_progress *p);

#endif
