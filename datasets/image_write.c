/* PNG output via stb_image_write (Debian libstb-dev): the crops that
 * qcal crops and the zoo write. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include "qcal/datasets.h"

qcal_status qcal_image_write_png(const char *path, const unsigned char *px, int w, int h) {
  char tmp[4200];
  if (snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid()) >= (int)sizeof tmp)
    return qcal_error(QCAL_EINVAL, "%s: path too long", path);
  if (!stbi_write_png(tmp, w, h, 3, px, w * 3)) {
    unlink(tmp);
    return qcal_error(QCAL_EIO, "%s: cannot write PNG", path);
  }
  if (rename(tmp, path) != 0) {
    unlink(tmp);
    return qcal_error(QCAL_EIO, "%s: cannot write PNG", path);
  }
  return QCAL_OK;
}
