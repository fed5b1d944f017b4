/* Crash isolation for third-party parsers (libhdf5): run a read in a child
 * process first, so that a crash, hang or unbounded allocation inside the
 * library on a corrupt file becomes one error instead of taking qcal down. */
#ifndef QCAL_ISOLATE_H
#define QCAL_ISOLATE_H

#include "qcal/status.h"

/* Run fn(ctx) in a forked child, stderr silenced, under a time limit
 * (seconds; QCAL_READ_TIMEOUT overrides it) and, outside sanitizer builds, a
 * heap limit (bytes, capped at half the available memory). Returns QCAL_OK
 * when fn returned QCAL_OK there, fn's own error when it failed cleanly, and
 * QCAL_EFORMAT naming `what` when the child crashed, hung or ran out of
 * memory. With QCAL_NO_ISOLATION=1 (fuzzing: libFuzzer must see every fault
 * itself) fn runs in this process. Call it before starting threads. */
qcal_status qcal_isolated(const char *what, qcal_status (*fn)(void *), void *ctx, unsigned seconds,
                          double heap_bytes);

#endif
