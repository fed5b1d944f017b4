/* Per-thread error messages with context. */
#include <stdarg.h>
#include <stdio.h>

#include "qcal/status.h"

static _Thread_local char g_msg[1024];

const char *qcal_status_str(qcal_status s) {
  switch (s) {
  case QCAL_OK:
    return "ok";
  case QCAL_EINVAL:
    return "invalid argument";
  case QCAL_ENOMEM:
    return "out of memory";
  case QCAL_EIO:
    return "I/O error";
  case QCAL_EFORMAT:
    return "corrupt or unrecognised file";
  case QCAL_EDTYPE:
    return "unsupported dtype";
  case QCAL_EDATA:
    return "bad data";
  case QCAL_EEMPTY:
    return "empty tensor";
  case QCAL_EUNSUPPORTED:
    return "not supported";
  case QCAL_EDEVICE:
    return "device error";
  }
  return "unknown error";
}

qcal_status qcal_error(qcal_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_msg, sizeof g_msg, fmt, ap);
  va_end(ap);
  return s;
}

const char *qcal_last_error(void) {
  return g_msg;
}

void qcal_clear_error(void) {
  g_msg[0] = '\0';
}
