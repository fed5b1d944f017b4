/* Results store: tables and the HDF5 writer, read back with libhdf5; the
 * temporary-name-then-rename contract. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcal/results.h"
#include "tests/common.h"

static char dir[64];
static void setup(void) {
  tmpdir_make(dir, sizeof dir, "res");
  cr_assert_neq(dir[0], 0);
}
static void teardown(void) {
  cr_assert_eq(tmpdir_remove(dir), 0);
}
TestSuite(results, .init = setup, .fini = teardown);

static int exists(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0;
}

static int count_files(void) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "ls -A %s | wc -l", dir);
  return shell_count(cmd);
}

static void read_attr_str(hid_t obj, const char *name, char *out, size_t cap) {
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  cr_assert_geq(a, 0, "no attribute %s", name);
  hid_t t = H5Aget_type(a);
  char *v = NULL;
  cr_assert_geq(H5Aread(a, t, &v), 0);
  snprintf(out, cap, "%s", v);
  H5free_memory(v);
  H5Tclose(t);
  H5Aclose(a);
}

Test(results, table_round_trip_through_hdf5) {
  char path[128];
  snprintf(path, sizeof path, "%s/r.h5", dir);
  qcal_table *t = qcal_table_new("results", "test table");
  int cs = qcal_table_col(t, "tensor", 's', NULL), cf = qcal_table_col(t, "sqnr_db", 'f', "dB"),
      ci = qcal_table_col(t, "bits", 'i', "bit");
  cr_assert_eq(qcal_table_col(t, "bad", 'x', NULL), -1);
  const char *names[3] = {"conv/weight", "dw/input", "ünïcode"};
  for (int r = 0; r < 3; r++) {
    cr_assert_eq(qcal_table_row(t), r);
    qcal_table_set_s(t, cs, names[r]);
    if (r != 1)
      qcal_table_set_f(t, cf, 40.5 + r);
    qcal_table_set_i(t, ci, 8 - r);
  }
  cr_assert_eq(qcal_table_col(t, "late", 'f', NULL), -1); /* no columns after rows */
  qcal_h5 h;
  cr_assert_eq(qcal_h5_create(&h, path), QCAL_OK);
  cr_assert(!exists(path), "results visible before commit");
  cr_assert_not_null(qcal_h5_pending());
  cr_assert_eq(qcal_h5_attr_int(&h, "/", "schema_version", QCAL_SCHEMA_VERSION), QCAL_OK);
  cr_assert_eq(qcal_h5_attr_str(&h, "/", "config", "{\"bits\":[8]}"), QCAL_OK);
  cr_assert_eq(qcal_h5_write_table(&h, t), QCAL_OK, "%s", qcal_last_error());
  uint64_t counts[5] = {1, 2, 3, 4, (uint64_t)1 << 40};
  float edges[6] = {0, 1, 2, 3, 4, 5};
  cr_assert_eq(qcal_h5_write_u64(&h, "/histograms/0/counts", counts, 5), QCAL_OK);
  cr_assert_eq(qcal_h5_write_f32(&h, "/histograms/0/edges", edges, 6, "value"), QCAL_OK);
  cr_assert_eq(qcal_h5_commit(&h), QCAL_OK);
  cr_assert(exists(path));
  cr_assert_null(qcal_h5_pending());
  cr_assert_eq(count_files(), 1, "temporary file left behind");
  qcal_table_free(t);

  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  cr_assert_geq(f, 0);
  int64_t ver = 0;
  hid_t a = H5Aopen(f, "schema_version", H5P_DEFAULT);
  H5Aread(a, H5T_NATIVE_INT64, &ver);
  H5Aclose(a);
  cr_assert_eq(ver, QCAL_SCHEMA_VERSION);
  char buf[256];
  read_attr_str(f, "config", buf, sizeof buf);
  cr_assert_str_eq(buf, "{\"bits\":[8]}");
  double sq[3];
  hid_t ds = H5Dopen2(f, "/results/sqnr_db", H5P_DEFAULT);
  cr_assert_geq(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, sq), 0);
  read_attr_str(ds, "units", buf, sizeof buf);
  cr_assert_str_eq(buf, "dB");
  H5Dclose(ds);
  cr_assert(sq[0] == 40.5 && isnan(sq[1]) && sq[2] == 42.5);
  int64_t bits[3];
  ds = H5Dopen2(f, "/results/bits", H5P_DEFAULT);
  H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, bits);
  H5Dclose(ds);
  cr_assert(bits[0] == 8 && bits[2] == 6);
  char *s[3];
  ds = H5Dopen2(f, "/results/tensor", H5P_DEFAULT);
  hid_t ty = H5Dget_type(ds);
  cr_assert_geq(H5Dread(ds, ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, s), 0);
  for (int r = 0; r < 3; r++) {
    cr_assert_str_eq(s[r], names[r]);
    H5free_memory(s[r]);
  }
  H5Tclose(ty);
  H5Dclose(ds);
  uint64_t c2[5];
  ds = H5Dopen2(f, "/histograms/0/counts", H5P_DEFAULT);
  H5Dread(ds, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, c2);
  H5Dclose(ds);
  cr_assert_eq(c2[4], (uint64_t)1 << 40);
  hid_t g = H5Gopen2(f, "/results", H5P_DEFAULT);
  read_attr_str(g, "description", buf, sizeof buf);
  cr_assert_str_eq(buf, "test table");
  H5Gclose(g);
  H5Fclose(f);
}

Test(results, abort_leaves_nothing_and_keeps_earlier_results) {
  char path[128];
  snprintf(path, sizeof path, "%s/keep.h5", dir);
  FILE *fp = fopen(path, "w");
  fputs("earlier results", fp);
  fclose(fp);
  qcal_h5 h;
  cr_assert_eq(qcal_h5_create(&h, path), QCAL_OK);
  float v[2] = {1, 2};
  cr_assert_eq(qcal_h5_write_f32(&h, "/x", v, 2, NULL), QCAL_OK);
  cr_assert_eq(count_files(), 2);
  qcal_h5_abort(&h);
  qcal_h5_abort(&h); /* twice is harmless */
  cr_assert_eq(count_files(), 1);
  char buf[64] = "";
  fp = fopen(path, "r");
  cr_assert_not_null(fgets(buf, sizeof buf, fp));
  fclose(fp);
  cr_assert_str_eq(buf, "earlier results");
  /* a write into a path that cannot exist fails cleanly */
  cr_assert_eq(qcal_h5_create(&h, "/nonexistent-dir/x.h5"), QCAL_EIO);
}

#include "qcal/compare.h"
#include "qcal/export.h"

Test(results, trt_cache_line_hand_computed) {
  char line[128];
  /* 1.0/127 = 0.007874016 = 0x3c010204 (sign 0, exponent 120, mantissa 0x010204) */
  qcal_trt_cache_line("image", 1.0f, line, sizeof line);
  cr_assert_str_eq(line, "image: 3c010204");
  /* 127/127 = 1.0 = 0x3f800000; amax 0 gives scale 0 */
  qcal_trt_cache_line("t", 127.0f, line, sizeof line);
  cr_assert_str_eq(line, "t: 3f800000");
  qcal_trt_cache_line("z", 0.0f, line, sizeof line);
  cr_assert_str_eq(line, "z: 00000000");
}

Test(results, mann_whitney_two_sided) {
  /* fully separated samples of 5: U = 0, mean 12.5, var 25*11/12,
   * z = (12.5 - 0.5) / 4.7871 = 2.5067, p = erfc(z / sqrt 2) = 0.012186 */
  double x[5] = {1, 2, 3, 4, 5}, y[5] = {6, 7, 8, 9, 10};
  cr_assert_float_eq(qcal_mann_whitney_p(x, 5, y, 5), 0.012186, 2e-6);
  cr_assert_float_eq(qcal_mann_whitney_p(y, 5, x, 5), 0.012186, 2e-6);
  /* identical samples: no evidence */
  cr_assert_float_eq(qcal_mann_whitney_p(x, 5, x, 5), 1.0, 1e-12);
  /* all values tied: zero variance -> p = 1 */
  double t[4] = {3, 3, 3, 3};
  cr_assert_eq(qcal_mann_whitney_p(t, 2, t + 2, 2), 1.0);
}

Test(results, thresholds_file) {
  char path[128];
  snprintf(path, sizeof path, "%s/t.conf", dir);
  FILE *f = fopen(path, "w");
  fputs("# comment\nsqnr_db_drop = 0.25\n\n  min_effect = 0.1 # trailing\n", f);
  fclose(f);
  qcal_thresholds t = QCAL_THRESHOLDS_DEFAULT;
  cr_assert_eq(qcal_thresholds_load(path, &t), QCAL_OK, "%s", qcal_last_error());
  cr_assert(t.sqnr_db_drop == 0.25 && t.min_effect == 0.1 && t.alpha == 0.05 && t.amax_rel == 1e-6);
  f = fopen(path, "w");
  fputs("sqnr = 1\n", f);
  fclose(f);
  cr_assert_eq(qcal_thresholds_load(path, &t), QCAL_EFORMAT);
  cr_assert_not_null(strstr(qcal_last_error(), ":1:"));
}
