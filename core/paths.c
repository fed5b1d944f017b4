/* Output path checks shared by every command that writes a file. */
#include "qcal/paths.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

double qcal_mem_available(void) {
  FILE *f = fopen("/proc/meminfo", "r");
  char line[256];
  double kb = 0;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1)
      break;
  if (f)
    fclose(f);
  if (kb > 0)
    return kb * 1024.0;
  return (double)sysconf(_SC_AVPHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
}

qcal_status qcal_parent_dir(const char *path, char *buf, size_t cap) {
  if (snprintf(buf, cap, "%s", path) >= (int)cap)
    return QCAL_EINVAL;
  char *sl = strrchr(buf, '/');
  if (sl == buf)
    sl[1] = '\0';
  else if (sl)
    *sl = '\0';
  else
    snprintf(buf, cap, ".");
  return QCAL_OK;
}

qcal_status qcal_output_check(const char *out, const char *const *inputs, int ninputs) {
  if (!out || !*out)
    return qcal_error(QCAL_EINVAL, "output path is empty");
  struct stat so;
  if (stat(out, &so) == 0) {
    if (S_ISDIR(so.st_mode))
      return qcal_error(QCAL_EINVAL, "%s: output is a folder, expected a file name", out);
    for (int i = 0; i < ninputs; i++) {
      struct stat si;
      if (inputs[i] && stat(inputs[i], &si) == 0 && si.st_dev == so.st_dev &&
          si.st_ino == so.st_ino)
        return qcal_error(QCAL_EINVAL, "%s: output is the input %s; refusing to overwrite it", out,
                          inputs[i]);
    }
  }
  char dir[4200];
  if (qcal_parent_dir(out, dir, sizeof dir) != QCAL_OK)
    return qcal_error(QCAL_EINVAL, "output path too long");
  struct stat sd;
  if (stat(dir, &sd) != 0 || !S_ISDIR(sd.st_mode))
    return qcal_error(QCAL_EINVAL, "%s: folder %s does not exist", out, dir);
  if (access(dir, W_OK | X_OK) != 0)
    return qcal_error(QCAL_EINVAL, "%s: cannot create files in %s: %s", out, dir, strerror(errno));
  return QCAL_OK;
}
