/* .npy reader/writer (NumPy format versions 1.0, 2.0 and 3.0). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcal/datasets.h"

#define FAIL(st, ...) (st_ = qcal_error(st, __VA_ARGS__))

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t')
    p++;
  return p;
}

/* Value text after 'key': in the header dict, or NULL. */
static const char *find_key(const char *hdr, const char *key) {
  char pat[32];
  snprintf(pat, sizeof pat, "'%s'", key);
  const char *p = strstr(hdr, pat);
  if (!p) {
    snprintf(pat, sizeof pat, "\"%s\"", key);
    p = strstr(hdr, pat);
  }
  if (!p)
    return NULL;
  p = skip_ws(p + strlen(pat));
  if (*p != ':')
    return NULL;
  return skip_ws(p + 1);
}

float qcal_half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else { /* subnormal: value = man * 2^-24 */
      float v = (float)man * 0x1p-24f;
      return sign ? -v : v;
    }
  } else {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static void swap_bytes(unsigned char *p, size_t n, size_t w) {
  for (size_t i = 0; i < n; i++, p += w)
    for (size_t a = 0, b = w - 1; a < b; a++, b--) {
      unsigned char t = p[a];
      p[a] = p[b];
      p[b] = t;
    }
}

typedef struct npy_header {
  char kind;    /* 'f' */
  size_t width; /* bytes per element */
  int swap;     /* stored big-endian */
  int fortran;
  int ndim;
  int64_t shape[QCAL_MAX_DIMS];
} npy_header;

static qcal_status parse_header(const char *path, const char *h, npy_header *o) {
  qcal_status st_ = QCAL_OK;
  memset(o, 0, sizeof *o);
  const char *d = find_key(h, "descr");
  if (!d || (*d != '\'' && *d != '"'))
    return FAIL(QCAL_EFORMAT,
                "%s: header has no 'descr' string (structured dtypes are not supported)", path);
  char q = *d++;
  const char *end = strchr(d, q);
  if (!end || end - d > 16)
    return FAIL(QCAL_EFORMAT, "%s: malformed 'descr' in header", path);
  char descr[20];
  memcpy(descr, d, (size_t)(end - d));
  descr[end - d] = '\0';
  const char *t = descr;
  int big = 0;
  if (*t == '<' || *t == '=' || *t == '|')
    t++;
  else if (*t == '>')
    big = 1, t++;
  if (t[0] != 'f' || (strcmp(t + 1, "2") && strcmp(t + 1, "4") && strcmp(t + 1, "8")))
    return FAIL(QCAL_EDTYPE, "%s: dtype '%s' is not supported (need float16, float32 or float64)",
                path, descr);
  o->kind = 'f';
  o->width = (size_t)(t[1] - '0');
  o->swap = big;

  const char *f = find_key(h, "fortran_order");
  if (!f)
    return FAIL(QCAL_EFORMAT, "%s: header has no 'fortran_order'", path);
  if (!strncmp(f, "True", 4))
    o->fortran = 1;
  else if (strncmp(f, "False", 5))
    return FAIL(QCAL_EFORMAT, "%s: 'fortran_order' is neither True nor False", path);

  const char *s = find_key(h, "shape");
  if (!s || *s != '(')
    return FAIL(QCAL_EFORMAT, "%s: header has no 'shape' tuple", path);
  s++;
  for (;;) {
    s = skip_ws(s);
    if (*s == ')')
      break;
    if (o->ndim == QCAL_MAX_DIMS)
      return FAIL(QCAL_EFORMAT, "%s: more than %d dimensions", path, QCAL_MAX_DIMS);
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (e == s || errno || v < 0)
      return FAIL(QCAL_EFORMAT, "%s: malformed 'shape' in header", path);
    o->shape[o->ndim++] = v;
    s = skip_ws(e);
    if (*s == 'L')
      s = skip_ws(s + 1);
    if (*s == ',')
      s++;
    else if (*s != ')')
      return FAIL(QCAL_EFORMAT, "%s: malformed 'shape' in header", path);
  }
  return QCAL_OK;
}

/* Fortran order -> C order. */
static qcal_status to_c_order(qcal_tensor *t) {
  if (t->ndim < 2)
    return QCAL_OK;
  float *dst = qcal_alloc(t->numel * sizeof(float));
  if (!dst)
    return qcal_error(QCAL_ENOMEM, "cannot allocate %zu floats", t->numel);
  size_t fstride[QCAL_MAX_DIMS], idx[QCAL_MAX_DIMS] = {0};
  fstride[0] = 1;
  for (int d = 1; d < t->ndim; d++)
    fstride[d] = fstride[d - 1] * (size_t)t->shape[d - 1];
  for (size_t i = 0; i < t->numel; i++) {
    size_t off = 0;
    for (int d = 0; d < t->ndim; d++)
      off += idx[d] * fstride[d];
    dst[i] = t->data[off];
    for (int d = t->ndim - 1; d >= 0; d--) {
      if (++idx[d] < (size_t)t->shape[d])
        break;
      idx[d] = 0;
    }
  }
  qcal_free(t->data);
  t->data = dst;
  return QCAL_OK;
}

/* Parse the header in buf[0 .. len) (len may stop after it): the element
 * layout, where the data starts and how many bytes it has. */
static qcal_status npy_header_of(const char *path, const unsigned char *buf, size_t len,
                                 npy_header *h, size_t *data_off, size_t *bytes) {
  if (len < 10 || memcmp(buf, "\x93NUMPY", 6))
    return qcal_error(QCAL_EFORMAT, "%s: not a .npy file (bad magic)", path);
  size_t hlen, hoff;
  if (buf[6] == 1) {
    hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    hoff = 10;
  } else if (buf[6] == 2 || buf[6] == 3) {
    if (len < 12)
      return qcal_error(QCAL_EFORMAT, "%s: truncated header", path);
    hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    hoff = 12;
  } else {
    return qcal_error(QCAL_EFORMAT, "%s: unsupported .npy version %d.%d", path, buf[6], buf[7]);
  }
  if (hlen > QCAL_NPY_HEADER_MAX)
    return qcal_error(QCAL_EFORMAT, "%s: header of %zu bytes (at most %d)", path, hlen,
                      QCAL_NPY_HEADER_MAX);
  if (hoff + hlen > len)
    return qcal_error(QCAL_EFORMAT, "%s: truncated header (%zu bytes announced, file is %zu bytes)",
                      path, hlen, len);
  char *hdr = malloc(hlen + 1);
  if (!hdr)
    return qcal_error(QCAL_ENOMEM, "%s: out of memory", path);
  memcpy(hdr, buf + hoff, hlen);
  hdr[hlen] = '\0';
  qcal_status st = QCAL_OK;
  if (strlen(hdr) != hlen || hdr[0] != '{')
    st = qcal_error(QCAL_EFORMAT, "%s: header is not a dictionary", path);
  else
    st = parse_header(path, hdr, h);
  free(hdr);
  if (st != QCAL_OK)
    return st;
  size_t numel = 1;
  for (int i = 0; i < h->ndim; i++)
    if (qcal_mul_size(numel, (size_t)h->shape[i], &numel) != QCAL_OK)
      return qcal_error(QCAL_EFORMAT, "%s: shape in header overflows", path);
  if (qcal_mul_size(numel, h->width, bytes) != QCAL_OK || *bytes > SIZE_MAX - hoff - hlen)
    return qcal_error(QCAL_EFORMAT, "%s: shape in header overflows", path);
  *data_off = hoff + hlen;
  return QCAL_OK;
}

qcal_status qcal_npy_expected_size(const char *path, const unsigned char *prefix, size_t len,
                                   size_t *total) {
  npy_header h;
  size_t off, bytes;
  QCAL_TRY(npy_header_of(path, prefix, len, &h, &off, &bytes));
  *total = off + bytes;
  return QCAL_OK;
}

qcal_status qcal_npy_parse(const char *path, const unsigned char *buf, size_t len,
                           qcal_tensor *out) {
  qcal_status st_ = QCAL_OK;
  memset(out, 0, sizeof *out);
  npy_header h;
  size_t data_off, bytes;
  QCAL_TRY(npy_header_of(path, buf, len, &h, &data_off, &bytes));
  const size_t numel = h.width ? bytes / h.width : 0;
  size_t have = len - data_off;
  const unsigned char *raw = buf + data_off;
  if (have != bytes) {
    FAIL(QCAL_EFORMAT,
         "%s: header promises %zu bytes of data (shape x %zu-byte elements), file has %zu", path,
         bytes, h.width, have);
    goto done;
  }
  if (numel == 0) {
    FAIL(QCAL_EEMPTY, "%s: tensor is empty (0 elements)", path);
    goto done;
  }
  if ((st_ = qcal_tensor_alloc(out, h.ndim, h.shape)) != QCAL_OK) {
    FAIL(st_, "%s: cannot allocate %zu elements", path, numel);
    goto done;
  }
  for (size_t i = 0; i < numel; i++) {
    unsigned char e[8];
    memcpy(e, raw + i * h.width, h.width);
    if (h.swap)
      swap_bytes(e, 1, h.width);
    if (h.width == 8) {
      double v;
      memcpy(&v, e, 8);
      if (isfinite(v) && fabs(v) > 3.4028234663852886e38) {
        FAIL(QCAL_EDATA, "%s: value %g at flat index %zu does not fit float32", path, v, i);
        goto done;
      }
      out->data[i] = (float)v;
    } else if (h.width == 4) {
      memcpy(&out->data[i], e, 4);
    } else {
      uint16_t v;
      memcpy(&v, e, 2);
      out->data[i] = qcal_half_to_float(v);
    }
  }
  if (h.fortran && (st_ = to_c_order(out)) != QCAL_OK)
    goto done;
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  snprintf(out->name, sizeof out->name, "%s", base);
  char *dot = strrchr(out->name, '.');
  if (dot && !strcmp(dot, ".npy"))
    *dot = '\0';
done:
  if (st_ != QCAL_OK)
    qcal_tensor_free(out);
  return st_;
}

qcal_status qcal_read_file(const char *path, unsigned char **buf, size_t *len) {
  *buf = NULL;
  *len = 0;
  FILE *fp = fopen(path, "rb");
  if (!fp)
    return qcal_error(QCAL_EIO, "%s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    fclose(fp);
    return qcal_error(QCAL_EIO, "%s: not a regular file", path);
  }
  size_t n = (size_t)sb.st_size;
  *buf = malloc(n ? n : 1);
  if (!*buf || fread(*buf, 1, n, fp) != n) {
    fclose(fp);
    free(*buf);
    *buf = NULL;
    return qcal_error(QCAL_EIO, "%s: cannot read %zu bytes", path, n);
  }
  fclose(fp);
  *len = n;
  return QCAL_OK;
}

qcal_status qcal_npy_load(const char *path, qcal_tensor *out) {
  unsigned char *buf;
  size_t len;
  memset(out, 0, sizeof *out);
  QCAL_TRY(qcal_read_file(path, &buf, &len));
  qcal_status st = qcal_npy_parse(path, buf, len, out);
  free(buf);
  return st;
}

qcal_status qcal_npy_save(const char *path, const qcal_tensor *t) {
  unsigned char *img;
  size_t len;
  QCAL_TRY(
      qcal_npy_encode("<f4", t->ndim, t->shape, t->data, t->numel * sizeof(float), &img, &len));
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *fp = fopen(tmp, "wb");
  if (!fp) {
    free(img);
    return qcal_error(QCAL_EIO, "%s: cannot create: %s", path, strerror(errno));
  }
  int ok = fwrite(img, 1, len, fp) == len;
  ok = (fclose(fp) == 0) && ok;
  free(img);
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return qcal_error(QCAL_EIO, "%s: write failed: %s", path, strerror(errno));
  }
  return QCAL_OK;
}

qcal_status qcal_npy_element_width(const char *path, const unsigned char *buf, size_t len,
                                   size_t *width) {
  npy_header h;
  size_t off, bytes;
  QCAL_TRY(npy_header_of(path, buf, len, &h, &off, &bytes));
  *width = h.width;
  return QCAL_OK;
}

/* A .npy (version 1.0) image in memory: header + data. */
qcal_status qcal_npy_encode(const char *descr, int ndim, const int64_t *shape, const void *data,
                            size_t bytes, unsigned char **out, size_t *out_len) {
  char dict[512], sh[256] = "";
  size_t used = 0;
  for (int i = 0; i < ndim && used < sizeof sh - 32; i++)
    used += (size_t)snprintf(sh + used, sizeof sh - used, "%lld,%s", (long long)shape[i],
                             i + 1 < ndim ? " " : "");
  if (ndim > 1)
    sh[used - 1] = '\0';
  int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                     descr, sh);
  int total = 10 + len + 1, pad = (64 - total % 64) % 64;
  size_t hlen = (size_t)len + (size_t)pad + 1, n = 10 + hlen + bytes;
  unsigned char *b = malloc(n);
  if (!b)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  memcpy(b, "\x93NUMPY\x01\x00", 8);
  b[8] = (unsigned char)(hlen & 0xff);
  b[9] = (unsigned char)(hlen >> 8);
  memcpy(b + 10, dict, (size_t)len);
  memset(b + 10 + len, ' ', (size_t)pad);
  b[10 + hlen - 1] = '\n';
  if (bytes)
    memcpy(b + 10 + hlen, data, bytes);
  *out = b;
  *out_len = n;
  return QCAL_OK;
}
