/* Output paths checked before any work: never one of the inputs, always
 * creatable. */
#ifndef QCAL_PATHS_H
#define QCAL_PATHS_H

#include "qcal/status.h"

#include <stddef.h>

/* The folder that holds path ("." for a bare name, "/" for a top-level one);
 * QCAL_EINVAL when it does not fit. */
qcal_status qcal_parent_dir(const char *path, char *buf, size_t cap);

/* QCAL_EINVAL when out names the same file as an input (device and inode,
 * through links too), is a folder, or lies in a folder that does not exist
 * or is not writable. Inputs that do not exist are skipped. */
qcal_status qcal_output_check(const char *out, const char *const *inputs, int ninputs);

/* Bytes of memory available now (MemAvailable), for checks before large
 * allocations. */
double qcal_mem_available(void);

#endif
