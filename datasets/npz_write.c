/* .npz output (a stored zip of .npy members) through libzip, written to a
 * temporary name and renamed so that a failure leaves nothing behind. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include "qcal/datasets.h"

qcal_status qcal_npz_save(const char *path, int n, const char *const *names,
                          unsigned char *const *npy, const size_t *npy_len) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  int err = 0;
  zip_t *z = zip_open(tmp, ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (!z)
    return qcal_error(QCAL_EIO, "%s: cannot create (libzip error %d)", path, err);
  for (int i = 0; i < n; i++) {
    char member[1200];
    snprintf(member, sizeof member, "%.1000s.npy", names[i]);
    zip_source_t *s = zip_source_buffer(z, npy[i], npy_len[i], 0);
    zip_int64_t idx = s ? zip_file_add(z, member, s, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE) : -1;
    if (idx < 0) {
      if (s)
        zip_source_free(s);
      zip_discard(z);
      unlink(tmp);
      return qcal_error(QCAL_EIO, "%s: cannot add member %d", path, i);
    }
    zip_set_file_compression(z, (zip_uint64_t)idx, ZIP_CM_STORE, 0);
  }
  if (zip_close(z) != 0) {
    qcal_status st = qcal_error(QCAL_EIO, "%s: write failed: %s", path, zip_strerror(z));
    zip_discard(z);
    unlink(tmp);
    return st;
  }
  if (rename(tmp, path) != 0) {
    qcal_status st = qcal_error(QCAL_EIO, "%s: cannot rename: %s", path, strerror(errno));
    unlink(tmp);
    return st;
  }
  return QCAL_OK;
}
