/* IDX files (the MNIST format): a 4-byte magic (0, 0, element type, number
 * of dims), the dims as big-endian uint32, then the elements. Read through
 * zlib, so the .gz files Debian ships and plain files both work. Only
 * unsigned bytes (type 0x08) are accepted: images and labels use them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "qcal/datasets.h"

/* Larger than any IDX image set in use (MNIST's 60,000 x 28 x 28 is 47 MB):
 * a bound so that a corrupt header cannot ask for the machine's memory. */
#define IDX_MAX_BYTES ((size_t)1 << 31)

/* len bytes, the part from `base` of a `whole` that messages count in */
static qcal_status read_part(gzFile f, const char *path, void *dst, size_t len, const char *what,
                             size_t base, size_t whole) {
  size_t got = 0;
  while (got < len) {
    unsigned chunk = len - got > (1u << 30) ? 1u << 30 : (unsigned)(len - got);
    int r = gzread(f, (char *)dst + got, chunk);
    if (r < 0) {
      int zerr = 0;
      const char *m = gzerror(f, &zerr);
      return qcal_error(QCAL_EFORMAT, "%s: corrupt compressed data (%s)", path, m ? m : "zlib");
    }
    if (r == 0)
      return qcal_error(QCAL_EFORMAT, "%s: truncated: %s ends after %zu of %zu bytes", path, what,
                        base + got, whole);
    got += (size_t)r;
  }
  return QCAL_OK;
}

static qcal_status read_exact(gzFile f, const char *path, void *dst, size_t len, const char *what) {
  return read_part(f, path, dst, len, what, 0, len);
}

static qcal_status parse(gzFile f, const char *path, qcal_idx *out) {
  unsigned char magic[4];
  QCAL_TRY(read_exact(f, path, magic, 4, "the header"));
  if (magic[0] != 0 || magic[1] != 0)
    return qcal_error(QCAL_EFORMAT, "%s: not an IDX file (magic %02x %02x %02x %02x)", path,
                      magic[0], magic[1], magic[2], magic[3]);
  if (magic[2] != 0x08)
    return qcal_error(QCAL_EDTYPE,
                      "%s: IDX element type 0x%02x; only unsigned bytes (0x08) are supported", path,
                      magic[2]);
  if (magic[3] < 1 || magic[3] > QCAL_IDX_MAX_DIMS)
    return qcal_error(QCAL_EFORMAT, "%s: IDX file with %d dims (1 to %d supported)", path, magic[3],
                      QCAL_IDX_MAX_DIMS);
  out->ndim = magic[3];
  size_t total = 1;
  for (int d = 0; d < out->ndim; d++) {
    unsigned char b[4];
    QCAL_TRY(read_exact(f, path, b, 4, "the header"));
    uint32_t v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    if (v == 0)
      return qcal_error(QCAL_EEMPTY, "%s: dim %d is 0 (no elements)", path, d);
    if (v > IDX_MAX_BYTES / total)
      return qcal_error(QCAL_EFORMAT, "%s: dims ask for more than %zu bytes", path, IDX_MAX_BYTES);
    out->dims[d] = v;
    total *= v;
  }
  out->count = total;
  /* the buffer grows with the data read, so a short file that claims
   * gigabytes costs what it holds, not what it claims */
  size_t got = 0, cap = 0;
  while (got < total) {
    size_t want = total - got < ((size_t)1 << 20) ? total - got : (size_t)1 << 20;
    if (got + want > cap) {
      size_t ncap = cap ? cap * 2 : (size_t)1 << 20;
      ncap = ncap < total ? ncap : total;
      uint8_t *p = realloc(out->data, ncap);
      if (!p)
        return qcal_error(QCAL_ENOMEM, "%s: out of memory for %zu bytes", path, ncap);
      out->data = p;
      cap = ncap;
    }
    QCAL_TRY(read_part(f, path, out->data + got, want, "the data", got, total));
    got += want;
  }
  unsigned char extra;
  int r = gzread(f, &extra, 1);
  if (r != 0)
    return qcal_error(QCAL_EFORMAT, "%s: %s after the %zu bytes the header announces", path,
                      r > 0 ? "trailing data" : "corrupt data", total);
  return QCAL_OK;
}

qcal_status qcal_idx_read(const char *path, qcal_idx *out) {
  memset(out, 0, sizeof *out);
  gzFile f = gzopen(path, "rb");
  if (!f)
    return qcal_error(QCAL_EIO, "%s: cannot open: %s", path, strerror(errno ? errno : ENOENT));
  qcal_status st = parse(f, path, out);
  gzclose(f);
  if (st != QCAL_OK)
    qcal_idx_free(out);
  return st;
}

void qcal_idx_free(qcal_idx *x) {
  free(x->data);
  memset(x, 0, sizeof *x);
}

/* DIR/NAME or DIR/NAME.gz, whichever exists (the plain file first). */
static qcal_status find(const char *dir, const char *name, char *path, size_t cap) {
  FILE *f;
  snprintf(path, cap, "%s/%s", dir, name);
  if ((f = fopen(path, "rb")))
    return fclose(f), QCAL_OK;
  snprintf(path, cap, "%s/%s.gz", dir, name);
  if ((f = fopen(path, "rb")))
    return fclose(f), QCAL_OK;
  return qcal_error(QCAL_EIO, "%s: no %s or %s.gz in this folder", dir, name, name);
}

qcal_status qcal_labelled_load(const char *dir, const char *split, int classes,
                               qcal_labelled *out) {
  memset(out, 0, sizeof *out);
  char ipath[4096], lpath[4096], name[64];
  snprintf(name, sizeof name, "%s-images-idx3-ubyte", split);
  QCAL_TRY(find(dir, name, ipath, sizeof ipath));
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte", split);
  QCAL_TRY(find(dir, name, lpath, sizeof lpath));
  qcal_idx im, lb;
  QCAL_TRY(qcal_idx_read(ipath, &im));
  qcal_status st = qcal_idx_read(lpath, &lb);
  if (st != QCAL_OK)
    return qcal_idx_free(&im), st;
  if (im.ndim != 3)
    st = qcal_error(QCAL_EFORMAT, "%s: images need 3 dims [count, rows, cols], not %d", ipath,
                    im.ndim);
  else if (lb.ndim != 1)
    st = qcal_error(QCAL_EFORMAT, "%s: labels need 1 dim [count], not %d", lpath, lb.ndim);
  else if (im.dims[0] != lb.dims[0])
    st = qcal_error(QCAL_EFORMAT, "%s: %lld labels for the %lld images of %s", lpath,
                    (long long)lb.dims[0], (long long)im.dims[0], ipath);
  for (size_t i = 0; st == QCAL_OK && i < lb.count; i++)
    if (lb.data[i] >= classes)
      st = qcal_error(QCAL_EDATA, "%s: label %d of image %zu is not a class 0..%d", lpath,
                      lb.data[i], i, classes - 1);
  if (st != QCAL_OK) {
    qcal_idx_free(&im);
    qcal_idx_free(&lb);
    return st;
  }
  out->n = im.dims[0];
  out->rows = (int)im.dims[1];
  out->cols = (int)im.dims[2];
  out->classes = classes;
  out->pixels = im.data;
  out->labels = lb.data;
  return QCAL_OK;
}

void qcal_labelled_free(qcal_labelled *d) {
  free(d->pixels);
  free(d->labels);
  memset(d, 0, sizeof *d);
}
