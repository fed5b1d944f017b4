/* Results store: tables and the HDF5 writer, read back with libhdf5; the
 * temporary-name-then-rename contract. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcal/escape.h"
#include "qcal/paths.h"
#include "qcal/results.h"
#include "reports/table_internal.h"
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

/* A minimal valid sweep file written through the schema tables: two tensors,
 * one results row each, their amax values and histograms. */
static void write_sweep(const char *path, int64_t tensor_id, int64_t amax_offset, float amax0) {
  qcal_h5 h;
  cr_assert_eq(qcal_h5_create(&h, path), QCAL_OK);
  cr_assert_eq(qcal_h5_attr_int(&h, "/", "schema_version", QCAL_SCHEMA_VERSION), QCAL_OK);
  qcal_table *t = qcal_table_new_schema(QCAL_TABLE_TENSORS);
  for (int i = 0; i < 2; i++) {
    qcal_table_row(t);
    qcal_table_set_s(t, QCAL_COL(TENSORS, name), i ? "b" : "a");
    qcal_table_set_s(t, QCAL_COL(TENSORS, kind), "file");
    qcal_table_set_i(t, QCAL_COL(TENSORS, layer), -1);
    qcal_table_set_i(t, QCAL_COL(TENSORS, channel_axis), -1);
    qcal_table_set_i(t, QCAL_COL(TENSORS, channels), 1);
    qcal_table_set_i(t, QCAL_COL(TENSORS, histogram_bins), 2);
    qcal_table_set_i(t, QCAL_COL(TENSORS, histogram_offset), 2 * i);
    qcal_table_set_i(t, QCAL_COL(TENSORS, histogram_edge_offset), 3 * i);
  }
  cr_assert_eq(qcal_h5_write_table(&h, t), QCAL_OK);
  qcal_table_free(t);
  t = qcal_table_new_schema(QCAL_TABLE_RESULTS);
  for (int i = 0; i < 2; i++) {
    qcal_table_row(t);
    qcal_table_set_i(t, QCAL_COL(RESULTS, tensor_id), i ? 1 : tensor_id);
    qcal_table_set_i(t, QCAL_COL(RESULTS, layer), -1);
    qcal_table_set_s(t, QCAL_COL(RESULTS, method), "max");
    qcal_table_set_s(t, QCAL_COL(RESULTS, granularity), "per-tensor");
    qcal_table_set_i(t, QCAL_COL(RESULTS, bits), 8);
    qcal_table_set_i(t, QCAL_COL(RESULTS, channels), 1);
    qcal_table_set_i(t, QCAL_COL(RESULTS, amax_offset), i ? 1 : amax_offset);
    qcal_table_set_f(t, QCAL_COL(RESULTS, amax), 1.0);
  }
  cr_assert_eq(qcal_h5_write_table(&h, t), QCAL_OK);
  qcal_table_free(t);
  float am[2] = {amax0, 2.0f}, e0[3] = {0, 0.5f, 1}, e1[3] = {0, 1, 2};
  uint64_t c0[2] = {3, 1}, c1[2] = {0, 4};
  cr_assert_eq(qcal_h5_write_f32(&h, "/amax_values", am, 2, "value"), QCAL_OK);
  const uint64_t *cp[2] = {c0, c1};
  const float *ep[2] = {e0, e1};
  size_t cl[2] = {2, 2}, el[2] = {3, 3};
  cr_assert_eq(qcal_h5_write_u64_concat(&h, "/histogram_counts", cp, cl, 2), QCAL_OK);
  cr_assert_eq(qcal_h5_write_f32_concat(&h, "/histogram_edges", ep, el, 2, "value"), QCAL_OK);
  cr_assert_eq(qcal_h5_commit(&h), QCAL_OK);
}

Test(results, validating_reader_follows_the_schema) {
  char path[128];
  snprintf(path, sizeof path, "%s/s.h5", dir);
  write_sweep(path, 0, 0, 1.5f);
  qcal_results r;
  cr_assert_eq(qcal_results_open(&r, path), QCAL_OK, "%s", qcal_last_error());
  cr_assert_eq(r.version, QCAL_SCHEMA_VERSION);
  qcal_sweep_tables sw;
  cr_assert_eq(qcal_results_read_sweep(&r, &sw), QCAL_OK, "%s", qcal_last_error());
  /* columns in schema order; rows grouped by tensor */
  cr_assert_str_eq(qcal_table_col_name(sw.results, QCAL_COL(RESULTS, sqnr_db)), "sqnr_db");
  cr_assert_eq(sw.first[1] - sw.first[0], 1);
  cr_assert_eq(sw.amax[0], 1.5f);
  uint64_t *c;
  float *e;
  size_t nb;
  cr_assert_eq(qcal_results_histogram(&r, &sw, 1, &c, &e, &nb), QCAL_OK, "%s", qcal_last_error());
  cr_assert(nb == 2 && c[1] == 4 && e[2] == 2.0f);
  free(c), free(e);
  qcal_sweep_tables_free(&sw);
  qcal_table *missing;
  cr_assert_eq(qcal_results_read(&r, QCAL_TABLE_GEMM, &missing), QCAL_EFORMAT);
  cr_assert_null(missing);
  cr_assert_not_null(strstr(qcal_last_error(), "/gemm: table missing"));
  qcal_results_close(&r);
}

Test(results, validating_reader_rejects_bad_indices_and_values) {
  struct {
    int64_t tid, off;
    float a0;
    const char *needle;
  } cases[] = {{2, 0, 1.5f, "/results/tensor_id"},
               {-1, 0, 1.5f, "/results/tensor_id"},
               {0, 2, 1.5f, "/results/amax_offset"},
               {0, 0, NAN, "/amax_values"},
               {0, 0, -1.0f, "/amax_values"}};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    char path[128];
    snprintf(path, sizeof path, "%s/bad%zu.h5", dir, k);
    write_sweep(path, cases[k].tid, cases[k].off, cases[k].a0);
    qcal_results r;
    /* the guard reads the whole file first: it fails at open */
    qcal_status st = qcal_results_open(&r, path);
    cr_assert_eq(st, QCAL_EFORMAT, "case %zu accepted", k);
    cr_assert_not_null(strstr(qcal_last_error(), cases[k].needle), "case %zu: %s", k,
                       qcal_last_error());
    cr_assert_not_null(strstr(qcal_last_error(), path));
  }
}

Test(results, outputs_are_never_inputs) {
  char in[128], link[160], out[128], sub[160];
  snprintf(in, sizeof in, "%s/in.h5", dir);
  snprintf(link, sizeof link, "%s/alias.h5", dir);
  snprintf(out, sizeof out, "%s/out.h5", dir);
  snprintf(sub, sizeof sub, "%s/nodir/out.h5", dir);
  FILE *f = fopen(in, "w");
  fputs("x", f);
  fclose(f);
  cr_assert_eq(symlink("in.h5", link), 0);
  const char *ins[1] = {in};
  cr_assert_eq(qcal_output_check(in, ins, 1), QCAL_EINVAL);
  cr_assert_eq(qcal_output_check(link, ins, 1), QCAL_EINVAL, "a link to the input");
  cr_assert_not_null(strstr(qcal_last_error(), "refusing to overwrite"));
  cr_assert_eq(qcal_output_check(dir, ins, 1), QCAL_EINVAL, "a folder");
  cr_assert_eq(qcal_output_check(sub, ins, 1), QCAL_EINVAL, "a missing folder");
  cr_assert_eq(qcal_output_check(out, ins, 1), QCAL_OK, "%s", qcal_last_error());
  unlink(link);
  unlink(in);
}

Test(results, names_are_escaped_for_every_output) {
  char b[64];
  cr_assert_str_eq(qcal_escape_gnuplot("w'; system('x')\nplot", b, sizeof b),
                   "w''; system(''x'')?plot");
  cr_assert_str_eq(qcal_escape_data("a\"b\tc", b, sizeof b), "a'b?c");
  cr_assert_str_eq(qcal_escape_html("<script>'&\"", b, sizeof b), "&lt;script&gt;&#39;&amp;&quot;");
  cr_assert_str_eq(qcal_escape_md("a|b<i>_c\n", b, sizeof b), "a\\|b&lt;i&gt;\\_c ");
  /* a small buffer truncates, never overruns, and never splits an escape */
  char t[8];
  cr_assert_str_eq(qcal_escape_gnuplot("''''''''", t, sizeof t), "''''''");
  cr_assert_str_eq(qcal_escape_html("&&&", t, sizeof t), "&amp;");
}
