/* A folder of photos: the image files in it, sorted by name, and the
 * interleaved calibration / held-out split that sweep, quantize and zoo
 * share (so that `--calib N` picks the same photos in each). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "qcal/datasets.h"

static int image_ext(const char *n) {
  const char *d = strrchr(n, '.');
  if (!d)
    return 0;
  const char *ok[] = {".jpg", ".jpeg", ".png", ".bmp", ".gif",
                      ".tga", ".ppm",  ".pgm", ".JPG", ".PNG"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (!strcmp(d, ok[i]))
      return 1;
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

qcal_status qcal_image_dir(const char *dir, char ***names, int *count) {
  *names = NULL;
  *count = 0;
  DIR *d = opendir(dir);
  if (!d)
    return qcal_error(
        QCAL_EIO, "%s: cannot open image folder (run scripts/fetch-data.sh, or pass --images DIR)",
        dir);
  char **l = NULL;
  int n = 0, cap = 0;
  struct dirent *e;
  qcal_status st = QCAL_OK;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.' && image_ext(e->d_name)) {
      if (n == cap) {
        int ncap = cap ? 2 * cap : 32;
        char **nl = realloc(l, (size_t)ncap * sizeof *l);
        if (!nl) {
          st = qcal_error(QCAL_ENOMEM, "out of memory");
          break;
        }
        l = nl;
        cap = ncap;
      }
      if (!(l[n] = strdup(e->d_name))) {
        st = qcal_error(QCAL_ENOMEM, "out of memory");
        break;
      }
      n++;
    }
  closedir(d);
  if (st) {
    qcal_image_dir_free(l, n);
    return st;
  }
  if (n)
    qsort(l, (size_t)n, sizeof *l, cmp_str);
  *names = l;
  *count = n;
  return QCAL_OK;
}

void qcal_image_dir_free(char **names, int n) {
  for (int i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

void qcal_image_split(const int *ok, int n, int ncal, int held_max, int *calib, int *ncalib,
                      int *held, int *nheld) {
  int usable = 0, k = 0, nh = 0;
  for (int i = 0; i < n; i++)
    usable += ok[i] != 0;
  *ncalib = 0;
  for (int i = 0; i < n; i++)
    if (ok[i]) {
      /* every other photo, until the rest are all needed for calibration */
      if (*ncalib < ncal && (k % 2 == 0 || usable - k <= ncal - *ncalib))
        calib[(*ncalib)++] = i;
      else if (held && (held_max == 0 || nh < held_max))
        held[nh++] = i;
      k++;
    }
  if (nheld)
    *nheld = nh;
}
