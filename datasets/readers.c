/* Tensor file readers beyond .npy: .npz (libzip), HDF5 datasets (libhdf5),
 * safetensors (json-c header), and the FILE[:NAME] dispatcher. */
#include <hdf5.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

#include "qcal/datasets.h"
#include "qcal/isolate.h"
#include "qcal/paths.h"

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

static void name_tensor(qcal_tensor *t, const char *path, const char *member) {
  const char *base = strrchr(path, '/');
  if (snprintf(t->name, sizeof t->name, "%s:%s", base ? base + 1 : path, member) >=
      (int)sizeof t->name)
    t->name[sizeof t->name - 1] = '\0'; /* long names are cut, not lost */
}

/* ---- .npz */
static qcal_status load_npz(const char *path, const char *want, qcal_tensor_fn fn, void *ctx) {
  struct stat sb;
  const zip_uint64_t file_size = stat(path, &sb) == 0 ? (zip_uint64_t)sb.st_size : 0;
  int err = 0;
  zip_t *z = zip_open(path, ZIP_RDONLY, &err);
  if (!z) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, err);
    qcal_status st = qcal_error(err == ZIP_ER_OPEN || err == ZIP_ER_NOENT ? QCAL_EIO : QCAL_EFORMAT,
                                "%s: not a readable .npz: %s", path, zip_error_strerror(&ze));
    zip_error_fini(&ze);
    return st;
  }
  qcal_status st = QCAL_OK;
  int found = 0;
  zip_int64_t n = zip_get_num_entries(z, 0);
  for (zip_int64_t i = 0; i < n && st == QCAL_OK; i++) {
    zip_stat_t zs;
    if (zip_stat_index(z, (zip_uint64_t)i, 0, &zs) != 0 || !ends_with(zs.name, ".npy"))
      continue;
    char member[256];
    snprintf(member, sizeof member, "%.*s", (int)(strlen(zs.name) - 4), zs.name);
    if (want && strcmp(member, want))
      continue;
    found = 1;
    char label[4400];
    snprintf(label, sizeof label, "%s:%s", path, member);
    /* sizes come from the archive: check them before allocating (deflate
     * cannot expand more than ~1032:1; stored members are their own size) */
    if (!(zs.valid & ZIP_STAT_SIZE) || !(zs.valid & ZIP_STAT_COMP_SIZE) ||
        !(zs.valid & ZIP_STAT_COMP_METHOD) || zs.comp_size > file_size ||
        (zs.comp_method == ZIP_CM_STORE ? zs.size != zs.comp_size
                                        : zs.size / 1032 > zs.comp_size + 1)) {
      st = qcal_error(QCAL_EFORMAT, "%s: member sizes are inconsistent (corrupt archive)", label);
      break;
    }
    /* inflating is bounded by the memory there is, and the member's own
     * .npy header must announce its size before the rest is inflated */
    if ((double)zs.size > 0.5 * qcal_mem_available()) {
      st = qcal_error(QCAL_ENOMEM,
                      "%s: member inflates to %llu bytes, more than half the "
                      "available memory",
                      label, (unsigned long long)zs.size);
      break;
    }
    zip_file_t *zf = zip_fopen_index(z, (zip_uint64_t)i, 0);
    unsigned char *buf = NULL;
    unsigned char head[12 + QCAL_NPY_HEADER_MAX];
    const size_t nhead = zs.size < sizeof head ? (size_t)zs.size : sizeof head;
    size_t total = 0;
    if (!zf || zip_fread(zf, head, nhead) != (zip_int64_t)nhead) {
      st = qcal_error(QCAL_EFORMAT, "%s: cannot inflate member (corrupt archive)", label);
    } else if ((st = qcal_npy_expected_size(label, head, nhead, &total)) != QCAL_OK) {
      /* the header's own message */
    } else if (total != zs.size) {
      st = qcal_error(QCAL_EFORMAT, "%s: header announces %zu bytes, the archive member has %llu",
                      label, total, (unsigned long long)zs.size);
    } else if (!(buf = malloc(zs.size ? zs.size : 1))) {
      st = qcal_error(QCAL_ENOMEM, "%s: cannot allocate %llu bytes", label,
                      (unsigned long long)zs.size);
    } else {
      memcpy(buf, head, nhead);
      const zip_uint64_t rest = zs.size - nhead;
      if (rest && zip_fread(zf, buf + nhead, rest) != (zip_int64_t)rest) {
        st = qcal_error(QCAL_EFORMAT, "%s: cannot inflate member (corrupt archive)", label);
      } else {
        qcal_tensor t;
        st = qcal_npy_parse(label, buf, zs.size, &t);
        if (st == QCAL_OK) {
          name_tensor(&t, path, member);
          st = fn(ctx, &t);
        }
      }
    }
    free(buf);
    if (zf)
      zip_fclose(zf);
  }
  zip_discard(z);
  if (st == QCAL_OK && !found)
    st = qcal_error(QCAL_EINVAL, "%s: no array '%s' in the archive", path, want ? want : "(any)");
  return st;
}

/* ---- HDF5 */
typedef struct {
  const char *path;
  qcal_tensor_fn fn;
  void *ctx;
  qcal_status st;
  int count;
} h5_walk;

static qcal_status h5_read(hid_t file, const char *path, const char *name, qcal_tensor *t) {
  qcal_status st = QCAL_OK;
  memset(t, 0, sizeof *t); /* freed on every error path */
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT), ty = -1, sp = -1;
  if (ds < 0)
    return qcal_error(QCAL_EINVAL, "%s: no dataset '%s'", path, name);
  ty = H5Dget_type(ds);
  sp = H5Dget_space(ds);
  int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  if (ty < 0 || H5Tget_class(ty) != H5T_FLOAT) {
    st = qcal_error(QCAL_EDTYPE, "%s: dataset '%s' is not floating point", path, name);
  } else if (nd < 0 || nd > QCAL_MAX_DIMS) {
    st = qcal_error(QCAL_EFORMAT, "%s: dataset '%s' has an unsupported shape", path, name);
  } else {
    hsize_t dims[QCAL_MAX_DIMS];
    int64_t shape[QCAL_MAX_DIMS];
    H5Sget_simple_extent_dims(sp, dims, NULL);
    /* the declared size must be what the file holds: a never-written dataset
     * reads as its fill value, and deflate expands at most ~1032:1 */
    double n = 1;
    for (int i = 0; i < nd; i++)
      shape[i] = (int64_t)dims[i], n *= (double)dims[i];
    const double stored = (double)H5Dget_storage_size(ds), bytes = n * (double)H5Tget_size(ty);
    if (n > 0 && stored == 0) {
      st = qcal_error(QCAL_EFORMAT, "%s: dataset '%s' declares %.0f elements but stores none", path,
                      name, n);
    } else if (bytes > stored * 1100.0 + 4096) {
      st = qcal_error(QCAL_EFORMAT,
                      "%s: dataset '%s' declares %.0f elements, more than its %.0f stored bytes "
                      "hold",
                      path, name, n, stored);
    } else {
      st = qcal_tensor_alloc(t, nd, shape);
      if (st != QCAL_OK) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", qcal_last_error());
        st = qcal_error(st, "%s: dataset '%s': %s", path, name, msg);
      }
    }
    if (st == QCAL_OK && t->numel == 0)
      st = qcal_error(QCAL_EEMPTY, "%s: dataset '%s' is empty", path, name);
    if (st == QCAL_OK && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t->data) < 0)
      st = qcal_error(QCAL_EFORMAT, "%s: cannot read dataset '%s'", path, name);
    if (st != QCAL_OK)
      qcal_tensor_free(t);
  }
  if (sp >= 0)
    H5Sclose(sp);
  if (ty >= 0)
    H5Tclose(ty);
  H5Dclose(ds);
  return st;
}

static herr_t h5_visit(hid_t obj, const char *name, const H5O_info_t *info, void *data) {
  h5_walk *w = data;
  if (info->type != H5O_TYPE_DATASET || w->st != QCAL_OK)
    return 0;
  hid_t ds = H5Dopen2(obj, name, H5P_DEFAULT);
  hid_t ty = ds >= 0 ? H5Dget_type(ds) : -1;
  int is_float = ty >= 0 && H5Tget_class(ty) == H5T_FLOAT;
  if (ty >= 0)
    H5Tclose(ty);
  if (ds >= 0)
    H5Dclose(ds);
  if (!is_float)
    return 0;
  qcal_tensor t;
  w->st = h5_read(obj, w->path, name, &t);
  if (w->st == QCAL_OK) {
    name_tensor(&t, w->path, name);
    w->st = w->fn(w->ctx, &t);
    w->count++;
  }
  return w->st == QCAL_OK ? 0 : 1;
}

static qcal_status load_h5_direct(const char *path, const char *want, qcal_tensor_fn fn,
                                  void *ctx) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  FILE *probe = fopen(path, "rb");
  if (!probe)
    return qcal_error(QCAL_EIO, "%s: cannot open", path);
  fclose(probe);
  if (H5Fis_hdf5(path) <= 0)
    return qcal_error(QCAL_EFORMAT, "%s: not an HDF5 file", path);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    return qcal_error(QCAL_EFORMAT, "%s: cannot open as HDF5", path);
  qcal_status st;
  if (want) {
    qcal_tensor t;
    st = H5Lexists(f, want, H5P_DEFAULT) > 0
             ? h5_read(f, path, want, &t)
             : qcal_error(QCAL_EINVAL, "%s: unknown HDF5 dataset '%s'", path, want);
    if (st == QCAL_OK) {
      name_tensor(&t, path, want);
      st = fn(ctx, &t);
    }
  } else {
    h5_walk w = {path, fn, ctx, QCAL_OK, 0};
    if (H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, h5_visit, &w, H5O_INFO_BASIC) < 0 &&
        w.st == QCAL_OK)
      w.st = qcal_error(QCAL_EFORMAT, "%s: cannot walk the HDF5 file", path);
    st = w.st;
    if (st == QCAL_OK && w.count == 0)
      st = qcal_error(QCAL_EINVAL, "%s: no floating-point datasets", path);
  }
  H5Fclose(f);
  return st;
}

typedef struct {
  const char *path, *want;
} h5_job;

static qcal_status drop_tensor(void *ctx, qcal_tensor *t) {
  (void)ctx;
  qcal_tensor_free(t);
  return QCAL_OK;
}

static qcal_status h5_dry_run(void *p) {
  const h5_job *j = p;
  return load_h5_direct(j->path, j->want, drop_tensor, NULL);
}

/* libhdf5 can crash or hang on a corrupt file: read it in a child first */
static qcal_status load_h5(const char *path, const char *want, qcal_tensor_fn fn, void *ctx) {
  struct stat sb;
  const double size = stat(path, &sb) == 0 ? (double)sb.st_size : 0;
  h5_job j = {path, want};
  QCAL_TRY(qcal_isolated(path, h5_dry_run, &j, 60 + (unsigned)(size / (1 << 24)),
                         1100.0 * size + (double)(1u << 30)));
  return load_h5_direct(path, want, fn, ctx);
}

/* ---- safetensors */
static float bf16_to_float(uint16_t v) {
  uint32_t b = (uint32_t)v << 16;
  float f;
  memcpy(&f, &b, 4);
  return f;
}

float qcal_half_to_float(uint16_t h);

static qcal_status load_safetensors(const char *path, const char *want, qcal_tensor_fn fn,
                                    void *ctx) {
  unsigned char *buf;
  size_t len;
  QCAL_TRY(qcal_read_file(path, &buf, &len));
  qcal_status st = QCAL_OK;
  json_object *hdr = NULL;
  uint64_t hl = 0;
  if (len < 8) {
    st = qcal_error(QCAL_EFORMAT, "%s: too short for a safetensors header", path);
    goto done;
  }
  for (int i = 7; i >= 0; i--)
    hl = hl << 8 | buf[i];
  if (hl > len - 8 || hl > (1u << 26)) {
    st = qcal_error(QCAL_EFORMAT, "%s: header length %llu exceeds the file", path,
                    (unsigned long long)hl);
    goto done;
  }
  json_tokener *tok = json_tokener_new();
  hdr = json_tokener_parse_ex(tok, (const char *)buf + 8, (int)hl);
  json_tokener_free(tok);
  if (!hdr || !json_object_is_type(hdr, json_type_object)) {
    st = qcal_error(QCAL_EFORMAT, "%s: header is not a JSON object", path);
    goto done;
  }
  const unsigned char *data = buf + 8 + hl;
  size_t dlen = len - 8 - hl;
  int found = 0;
  json_object_object_foreach(hdr, key, val) {
    if (st != QCAL_OK)
      break;
    if (!strcmp(key, "__metadata__") || (want && strcmp(key, want)))
      continue;
    found = 1;
    json_object *dt, *sh, *off;
    if (!json_object_is_type(val, json_type_object) ||
        !json_object_object_get_ex(val, "dtype", &dt) ||
        !json_object_is_type(dt, json_type_string) ||
        !json_object_object_get_ex(val, "shape", &sh) ||
        !json_object_is_type(sh, json_type_array) ||
        !json_object_object_get_ex(val, "data_offsets", &off) ||
        !json_object_is_type(off, json_type_array) || json_object_array_length(off) != 2 ||
        json_object_array_length(sh) > QCAL_MAX_DIMS) {
      st = qcal_error(QCAL_EFORMAT, "%s: tensor '%s' has a malformed header entry", path, key);
      break;
    }
    const char *dtype = json_object_get_string(dt);
    size_t w = !strcmp(dtype, "F32")                               ? 4
               : (!strcmp(dtype, "F16") || !strcmp(dtype, "BF16")) ? 2
                                                                   : 0;
    if (!w) {
      st = qcal_error(QCAL_EDTYPE, "%s: tensor '%s' has dtype %s (need F32, F16 or BF16)", path,
                      key, dtype);
      break;
    }
    int nd = (int)json_object_array_length(sh);
    int64_t shape[QCAL_MAX_DIMS];
    size_t numel = 1;
    for (int d = 0; d < nd; d++) {
      shape[d] = json_object_get_int64(json_object_array_get_idx(sh, (size_t)d));
      if (shape[d] < 0 || qcal_mul_size(numel, (size_t)shape[d], &numel) != QCAL_OK) {
        st = qcal_error(QCAL_EFORMAT, "%s: tensor '%s' has a bad shape", path, key);
        break;
      }
    }
    if (st != QCAL_OK)
      break;
    int64_t b = json_object_get_int64(json_object_array_get_idx(off, 0));
    int64_t e = json_object_get_int64(json_object_array_get_idx(off, 1));
    if (b < 0 || e < b || (size_t)e > dlen || (size_t)(e - b) != numel * w) {
      st = qcal_error(QCAL_EFORMAT,
                      "%s: tensor '%s': offsets [%lld, %lld) disagree with its shape or the file",
                      path, key, (long long)b, (long long)e);
      break;
    }
    if (numel == 0) {
      st = qcal_error(QCAL_EEMPTY, "%s: tensor '%s' is empty", path, key);
      break;
    }
    qcal_tensor t;
    if ((st = qcal_tensor_alloc(&t, nd, shape)) != QCAL_OK)
      break;
    const unsigned char *p = data + b;
    for (size_t i = 0; i < numel; i++) {
      if (w == 4) {
        memcpy(&t.data[i], p + 4 * i, 4);
      } else {
        uint16_t v = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
        t.data[i] = dtype[0] == 'B' ? bf16_to_float(v) : qcal_half_to_float(v);
      }
    }
    name_tensor(&t, path, key);
    st = fn(ctx, &t);
  }
  if (st == QCAL_OK && !found)
    st = qcal_error(QCAL_EINVAL, "%s: no tensor '%s'", path, want ? want : "(any)");
done:
  if (hdr)
    json_object_put(hdr);
  free(buf);
  return st;
}

qcal_status qcal_load_tensors(const char *spec, qcal_tensor_fn fn, void *ctx) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s", spec) >= (int)sizeof path)
    return qcal_error(QCAL_EINVAL, "path too long");
  /* FILE:NAME splits at the first ':' that follows a known extension, so
   * HDF5 names such as "f.h5:group/x" and paths with ':' both work. */
  const char *want = NULL;
  static const char *const exts[] = {".npz", ".h5", ".hdf5", ".safetensors"};
  for (char *c = strchr(path, ':'); c && !want; c = strchr(c + 1, ':'))
    for (size_t e = 0; e < sizeof exts / sizeof exts[0]; e++) {
      size_t el = strlen(exts[e]);
      if ((size_t)(c - path) >= el && !strncmp(c - el, exts[e], el)) {
        *c = '\0';
        want = c + 1;
        break;
      }
    }
  if (ends_with(path, ".npy")) {
    qcal_tensor t;
    QCAL_TRY(qcal_npy_load(path, &t));
    return fn(ctx, &t);
  }
  if (ends_with(path, ".npz"))
    return load_npz(path, want, fn, ctx);
  if (ends_with(path, ".h5") || ends_with(path, ".hdf5"))
    return load_h5(path, want, fn, ctx);
  if (ends_with(path, ".safetensors"))
    return load_safetensors(path, want, fn, ctx);
  return qcal_error(QCAL_EFORMAT, "%s: unknown file type (need .npy, .npz, .h5, .safetensors)",
                    path);
}
