/* Status codes and the per-thread error context every library call fills in. */
#ifndef QCAL_STATUS_H
#define QCAL_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum qcal_status {
  QCAL_OK = 0,
  QCAL_EINVAL,       /* bad argument or option value */
  QCAL_ENOMEM,       /* allocation failed or size would not fit */
  QCAL_EIO,          /* file could not be opened, read or written */
  QCAL_EFORMAT,      /* file is corrupt or not the expected format */
  QCAL_EDTYPE,       /* unsupported element type */
  QCAL_EDATA,        /* NaN/Inf or otherwise unusable data */
  QCAL_EEMPTY,       /* tensor has no elements */
  QCAL_EUNSUPPORTED, /* feature not available on this machine/build */
  QCAL_EDEVICE,      /* CUDA / cuBLAS failure */
} qcal_status;

/* Short name of a status ("invalid argument", ...). */
const char *qcal_status_str(qcal_status s);

/* Record a formatted message for the calling thread and return s. */
qcal_status qcal_error(qcal_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Message of the last qcal_error() on this thread ("" if none). */
const char *qcal_last_error(void);

/* Clear the calling thread's message. */
void qcal_clear_error(void);

#define QCAL_TRY(expr)                                                                             \
  do {                                                                                             \
    qcal_status qcal_try_s_ = (expr);                                                              \
    if (qcal_try_s_ != QCAL_OK)                                                                    \
      return qcal_try_s_;                                                                          \
  } while (0)

#ifdef __cplusplus
}
#endif
#endif
