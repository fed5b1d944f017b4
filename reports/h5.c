/* HDF5 writer: every call checked (file:line and the call), temporary name,
 * rename on commit. */
#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reports/table_internal.h"

static char g_pending[4200]; /* read by signal handlers */

const char *qcal_h5_pending(void) {
  return g_pending[0] ? g_pending : NULL;
}

#define QH5(call)                                                                                  \
  do {                                                                                             \
    if ((call) < 0) {                                                                              \
      st = qcal_error(QCAL_EIO, "%s:%d: %s failed", __FILE__, __LINE__, #call);                    \
      goto done;                                                                                   \
    }                                                                                              \
  } while (0)

qcal_status qcal_h5_create(qcal_h5 *h, const char *path) {
  memset(h, 0, sizeof *h);
  h->file = -1;
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors come back as statuses */
  if (snprintf(h->path, sizeof h->path, "%s", path) >= (int)sizeof h->path)
    return qcal_error(QCAL_EINVAL, "output path too long");
  snprintf(h->tmp, sizeof h->tmp, "%s.tmp.%ld", path, (long)getpid());
  /* the 1.8+ file format: compact object headers and indexed groups keep a
   * file with 10^5 histogram groups fast to write and to read */
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl >= 0)
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
  hid_t f = H5Fcreate(h->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl >= 0 ? fapl : H5P_DEFAULT);
  if (fapl >= 0)
    H5Pclose(fapl);
  if (f < 0)
    return qcal_error(QCAL_EIO, "%s: cannot create (%s)", h->tmp, strerror(errno));
  h->file = f;
  snprintf(g_pending, sizeof g_pending, "%s", h->tmp);
  return QCAL_OK;
}

static hid_t lcpl(void) {
  hid_t p = H5Pcreate(H5P_LINK_CREATE);
  if (p >= 0)
    H5Pset_create_intermediate_group(p, 1);
  return p;
}

static qcal_status attr_write(hid_t obj, const char *name, hid_t type, const void *v) {
  qcal_status st = QCAL_OK;
  hid_t sp = H5Screate(H5S_SCALAR), a = -1;
  QH5(sp);
  QH5(a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT));
  QH5(H5Awrite(a, type, v));
done:
  if (a >= 0)
    H5Aclose(a);
  if (sp >= 0)
    H5Sclose(sp);
  return st;
}

static hid_t str_type(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t >= 0) {
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
  }
  return t;
}

static hid_t open_obj(qcal_h5 *h, const char *obj) {
  return H5Oopen((hid_t)h->file, obj, H5P_DEFAULT);
}

qcal_status qcal_h5_attr_str(qcal_h5 *h, const char *obj, const char *name, const char *value) {
  qcal_status st = QCAL_OK;
  hid_t o = -1, t = -1;
  QH5(o = open_obj(h, obj));
  QH5(t = str_type());
  st = attr_write(o, name, t, &value);
done:
  if (t >= 0)
    H5Tclose(t);
  if (o >= 0)
    H5Oclose(o);
  return st;
}

qcal_status qcal_h5_attr_int(qcal_h5 *h, const char *obj, const char *name, int64_t value) {
  qcal_status st = QCAL_OK;
  hid_t o = -1;
  QH5(o = open_obj(h, obj));
  st = attr_write(o, name, H5T_NATIVE_INT64, &value);
done:
  if (o >= 0)
    H5Oclose(o);
  return st;
}

/* One 1-D dataset holding parts[0] .. parts[nparts-1] end to end, written
 * part by part (no concatenated copy in memory). */
static qcal_status write_concat(qcal_h5 *h, const char *path, hid_t ftype, hid_t mtype,
                                const void *const *parts, const size_t *lens, size_t nparts,
                                const char *units) {
  qcal_status st = QCAL_OK;
  hsize_t total = 0;
  for (size_t i = 0; i < nparts; i++)
    total += lens[i];
  hsize_t dims[1] = {total};
  hid_t sp = -1, ds = -1, lp = -1, dcpl = -1, fs = -1, ms = -1;
  QH5(sp = H5Screate_simple(1, dims, NULL));
  QH5(lp = lcpl());
  QH5(dcpl = H5Pcreate(H5P_DATASET_CREATE));
  if (total >= 1024) {
    hsize_t chunk[1] = {total < 65536 ? total : 65536};
    QH5(H5Pset_chunk(dcpl, 1, chunk));
    QH5(H5Pset_shuffle(dcpl));
    QH5(H5Pset_deflate(dcpl, 1));
  }
  QH5(ds = H5Dcreate2((hid_t)h->file, path, ftype, sp, lp, dcpl, H5P_DEFAULT));
  QH5(fs = H5Dget_space(ds));
  hsize_t off = 0;
  for (size_t i = 0; i < nparts; i++) {
    if (!lens[i])
      continue;
    hsize_t n = lens[i];
    QH5(ms = H5Screate_simple(1, &n, NULL));
    QH5(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &n, NULL));
    QH5(H5Dwrite(ds, mtype, ms, fs, H5P_DEFAULT, parts[i]));
    H5Sclose(ms);
    ms = -1;
    off += n;
  }
  if (units && *units) {
    hid_t t = str_type();
    QH5(t);
    st = attr_write(ds, "units", t, &units);
    H5Tclose(t);
  }
done:
  if (ms >= 0)
    H5Sclose(ms);
  if (fs >= 0)
    H5Sclose(fs);
  if (ds >= 0)
    H5Dclose(ds);
  if (dcpl >= 0)
    H5Pclose(dcpl);
  if (lp >= 0)
    H5Pclose(lp);
  if (sp >= 0)
    H5Sclose(sp);
  if (st != QCAL_OK)
    qcal_error(st, "%s: writing %s: %s", h->path, path, qcal_last_error());
  return st;
}

static qcal_status write_1d(qcal_h5 *h, const char *path, hid_t ftype, hid_t mtype, const void *v,
                            size_t n, const char *units) {
  return write_concat(h, path, ftype, mtype, &v, &n, 1, units);
}

qcal_status qcal_h5_write_f32(qcal_h5 *h, const char *path, const float *v, size_t n,
                              const char *units) {
  return write_1d(h, path, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, v, n, units);
}

qcal_status qcal_h5_write_u64(qcal_h5 *h, const char *path, const uint64_t *v, size_t n) {
  return write_1d(h, path, H5T_STD_U64LE, H5T_NATIVE_UINT64, v, n, NULL);
}

qcal_status qcal_h5_write_u64_concat(qcal_h5 *h, const char *path, const uint64_t *const *parts,
                                     const size_t *lens, size_t nparts) {
  return write_concat(h, path, H5T_STD_U64LE, H5T_NATIVE_UINT64, (const void *const *)parts, lens,
                      nparts, NULL);
}

qcal_status qcal_h5_write_f32_concat(qcal_h5 *h, const char *path, const float *const *parts,
                                     const size_t *lens, size_t nparts, const char *units) {
  return write_concat(h, path, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, (const void *const *)parts, lens,
                      nparts, units);
}

qcal_status qcal_h5_write_table(qcal_h5 *h, const qcal_table *t) {
  char path[256];
  qcal_status st = QCAL_OK;
  size_t n = qcal_table_rows(t);
  for (int c = 0; c < qcal_table_ncols(t) && st == QCAL_OK; c++) {
    snprintf(path, sizeof path, "/%s/%s", qcal_table_name(t), qcal_table_col_name(t, c));
    const char *units = qcal_table_col_units(t, c);
    switch (qcal_table_col_type(t, c)) {
    case 'f':
      st =
          write_1d(h, path, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, qcal_table_col_data(t, c), n, units);
      break;
    case 'i':
      st = write_1d(h, path, H5T_STD_I64LE, H5T_NATIVE_INT64, qcal_table_col_data(t, c), n, units);
      break;
    default: {
      const char **s = malloc((n ? n : 1) * sizeof *s);
      if (!s)
        return qcal_error(QCAL_ENOMEM, "out of memory");
      for (size_t r = 0; r < n; r++)
        s[r] = qcal_table_get_s(t, (long)r, c);
      hid_t ty = str_type();
      st = ty < 0 ? qcal_error(QCAL_EIO, "H5Tcopy failed") : write_1d(h, path, ty, ty, s, n, units);
      if (ty >= 0)
        H5Tclose(ty);
      free(s);
    }
    }
  }
  if (st == QCAL_OK && qcal_table_ncols(t)) {
    snprintf(path, sizeof path, "/%s", qcal_table_name(t));
    st = qcal_h5_attr_str(h, path, "description", qcal_table_description(t));
  }
  return st;
}

qcal_status qcal_h5_commit(qcal_h5 *h) {
  if (h->file < 0)
    return qcal_error(QCAL_EIO, "%s: results file is not open", h->path);
  herr_t e = H5Fclose((hid_t)h->file);
  h->file = -1;
  if (e < 0) {
    qcal_h5_abort(h);
    return qcal_error(QCAL_EIO, "%s: closing the HDF5 file failed", h->path);
  }
  if (rename(h->tmp, h->path) != 0) {
    int err = errno;
    qcal_h5_abort(h);
    return qcal_error(QCAL_EIO, "%s: cannot rename results into place: %s", h->path, strerror(err));
  }
  g_pending[0] = '\0';
  return QCAL_OK;
}

void qcal_h5_abort(qcal_h5 *h) {
  if (h->file >= 0)
    H5Fclose((hid_t)h->file);
  h->file = -1;
  if (h->tmp[0])
    unlink(h->tmp);
  g_pending[0] = '\0';
}
