/* The qcal command end to end: --help, JSON output, and bad input (one line
 * on stderr naming the file and the problem, exit status 2). */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qcal/datasets.h"
#include "tests/common.h"

#include "tests/run_qcal.h"

static const char *save(const char *name, const float *v, int ndim, const int64_t *shape) {
  static char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  qcal_tensor t;
  cr_assert_eq(qcal_tensor_alloc(&t, ndim, shape), QCAL_OK);
  memcpy(t.data, v, t.numel * 4);
  cr_assert_eq(qcal_npy_save(path, &t), QCAL_OK);
  qcal_tensor_free(&t);
  return path;
}

static void write_raw(const char *name, const void *b, size_t n) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  fwrite(b, 1, n, f);
  fclose(f);
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 60);

Test(cli, help_and_usage) {
  cr_assert_eq(qcal("--help"), 0);
  cr_assert_not_null(strstr(out_s, "amax"));
  cr_assert_eq(qcal("amax --help"), 0);
  cr_assert_not_null(strstr(out_s, "--percentile"));
  cr_assert_not_null(strstr(out_s, "--skip-zeros"));
  expect_bad("", "missing command", NULL);
  cr_assert_eq(qcal("frobnicate"), 2);
  expect_bad("amax", "expected one .npy file", NULL);
}

Test(cli, amax_json_reports_every_metric) {
  float v[8] = {1, 2, 3, 10, -1, -2, -3, -10};
  int64_t s[2] = {2, 4};
  char args[512];
  const char *p = save("w.npy", v, 2, s);
  snprintf(args, sizeof args, "amax %s --method max --bits 2 --format json", p);
  cr_assert_eq(qcal(args), 0, "%s", err_s);
  const char *keys[] = {"\"amax\":[10.0]",     "\"mse\"",       "\"sqnr_db\"",
                        "\"max_abs_err\"",     "\"cosine\"",    "\"clip_fraction\":0.0",
                        "\"clip_mse\":0.0",    "\"round_mse\"", "\"collect_seconds\"",
                        "\"compute_seconds\"", "\"mse\":3.5",   "\"max_abs_err\":3.0"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    cr_assert_not_null(strstr(out_s, keys[i]), "missing %s in %s", keys[i], out_s);
  /* per-channel along the last axis: 4 channels with |max| 1, 2, 3, 10 */
  snprintf(args, sizeof args, "amax %s --method max --axis -1 --format json", p);
  cr_assert_eq(qcal(args), 0, "%s", err_s);
  cr_assert_not_null(strstr(out_s, "\"amax\":[1.0,2.0,3.0,10.0]"), "%s", out_s);
  snprintf(args, sizeof args, "amax %s --method percentile --percentile 60 --bins 4 --start-bin 1",
           p);
  cr_assert_eq(qcal(args), 0, "%s", err_s);
  cr_assert_not_null(strstr(out_s, "amax         2.5"), "%s",
                     out_s); /* counts [4,2,0,2] on edges 0,2.5,5,7.5,10: cdf .5,.75 */
}

Test(cli, all_zero_tensor_is_valid) {
  float v[4] = {0, 0, 0, 0};
  int64_t s[1] = {4};
  char args[512];
  const char *methods[] = {"max", "entropy", "mse", "percentile"};
  const char *p = save("z.npy", v, 1, s);
  for (int m = 0; m < 4; m++) {
    snprintf(args, sizeof args, "amax %s --method %s --format json", p, methods[m]);
    cr_assert_eq(qcal(args), 0, "%s: %s", methods[m], err_s);
    cr_assert_not_null(strstr(out_s, "\"amax\":[0.0]"), "%s: %s", methods[m], out_s);
  }
}

Test(cli, bad_input_one_line_exit_2) {
  float v[6] = {1, 2, 3, 4, 5, 6};
  int64_t s[2] = {2, 3};
  char args[600], path[300];
  const char *good = save("good.npy", v, 2, s);
  char goodp[200];
  snprintf(goodp, sizeof goodp, "%s", good);

  snprintf(path, sizeof path, "%s/missing.npy", dir);
  snprintf(args, sizeof args, "amax %s", path);
  expect_bad(args, path, "cannot open");

  write_raw("corrupt.npy", "this is not numpy", 17);
  snprintf(path, sizeof path, "%s/corrupt.npy", dir);
  snprintf(args, sizeof args, "amax %s", path);
  expect_bad(args, path, "bad magic");

  /* truncated: the good file less its last 5 bytes */
  FILE *f = fopen(goodp, "rb");
  unsigned char buf[512];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  write_raw("trunc.npy", buf, n - 5);
  snprintf(path, sizeof path, "%s/trunc.npy", dir);
  snprintf(args, sizeof args, "amax %s", path);
  expect_bad(args, path, "promises 24 bytes");

  /* header that lies: shape (2, 4) over 24 bytes of data */
  char *sh = memmem(buf, n, "(2, 3)", 6);
  cr_assert_not_null(sh);
  sh[4] = '4';
  write_raw("lies.npy", buf, n);
  snprintf(path, sizeof path, "%s/lies.npy", dir);
  snprintf(args, sizeof args, "amax %s", path);
  expect_bad(args, path, "promises 32 bytes");

  /* unsupported dtype */
  char *d = memmem(buf, n, "<f4", 3);
  sh[4] = '3';
  d[1] = 'i';
  write_raw("int.npy", buf, n);
  snprintf(path, sizeof path, "%s/int.npy", dir);
  snprintf(args, sizeof args, "amax %s", path);
  expect_bad(args, path, "dtype '<i4'");

  /* empty tensor */
  int64_t s0[2] = {0, 3};
  qcal_tensor t;
  cr_assert_eq(qcal_tensor_alloc(&t, 2, s0), QCAL_OK);
  snprintf(path, sizeof path, "%s/empty.npy", dir);
  cr_assert_eq(qcal_npy_save(path, &t), QCAL_OK);
  qcal_tensor_free(&t);
  snprintf(args, sizeof args, "amax %s", path);
  expect_bad(args, path, "empty");

  /* NaN and Inf */
  float bad[6] = {1, 2, NAN, 4, 5, 6};
  const char *pn = save("nan.npy", bad, 2, s);
  snprintf(args, sizeof args, "amax %s", pn);
  expect_bad(args, pn, "NaN at flat index 2");
  bad[2] = 3;
  bad[5] = -INFINITY;
  const char *pi = save("inf.npy", bad, 2, s);
  snprintf(args, sizeof args, "amax %s --method max", pi);
  expect_bad(args, pi, "Inf at flat index 5");

  /* options out of range */
  snprintf(args, sizeof args, "amax %s --axis 2", goodp);
  expect_bad(args, goodp, "axis 2 out of range");
  snprintf(args, sizeof args, "amax %s --axis -3", goodp);
  expect_bad(args, goodp, "axis -3 out of range");
  snprintf(args, sizeof args, "amax %s --bits 17", goodp);
  expect_bad(args, "--bits 17 out of range", NULL);
  snprintf(args, sizeof args, "amax %s --bits 1", goodp);
  expect_bad(args, "--bits 1 out of range", NULL);
  snprintf(args, sizeof args, "amax %s --method percentile --percentile 100.5", goodp);
  expect_bad(args, "--percentile 100.5 out of range", NULL);
  snprintf(args, sizeof args, "amax %s --method kl", goodp);
  expect_bad(args, "'kl' is not one of", NULL);
  snprintf(args, sizeof args, "amax %s --bins", goodp);
  expect_bad(args, "--bins needs a value", NULL);
  snprintf(args, sizeof args, "amax %s --bins 64", goodp); /* start bin 128 > 64 bins */
  expect_bad(args, goodp, "start bin 128");
  snprintf(args, sizeof args, "amax %s --unsigned --full-range", goodp);
  expect_bad(args, "signed grids only", NULL);
  snprintf(args, sizeof args, "amax %s --frob", goodp);
  expect_bad(args, "unknown option '--frob'", NULL);
}

Test(cli, demo_runs_and_shows_per_channel_gain) {
  cr_assert_eq(qcal("demo --size 65536"), 0, "%s", err_s);
  cr_assert_not_null(strstr(out_s, "entropy"));
  cr_assert_not_null(strstr(out_s, "per-channel"));
  double pt = 0, pc = 0;
  const char *a = strstr(out_s, "per-tensor   SQNR"), *b = strstr(out_s, "per-channel  SQNR");
  cr_assert(a && b);
  cr_assert_eq(sscanf(a, "per-tensor SQNR %lf", &pt), 1);
  cr_assert_eq(sscanf(b, "per-channel SQNR %lf", &pc), 1);
  cr_assert_gt(pc, pt + 3.0, "per-channel %g vs per-tensor %g", pc, pt);
}

Test(cli, gemm_and_stream_bad_input) {
  expect_bad("gemm --shapes 0,16,16", "not positive", NULL);
  expect_bad("gemm --shapes 16,16", "not M,N,K", NULL);
  expect_bad("gemm --shapes 2000000,2000000,64 --engine cpu", "needs", "GiB");
  expect_bad("gemm --types int4", "unknown type 'int4'", NULL);
  expect_bad("gemm --engine tpu", "'tpu' is not one of", NULL);
  expect_bad("gemm --reps 3", "--reps 3 out of range", NULL);
  expect_bad("stream --sizes 0", "--sizes '0'", NULL);
  expect_bad("stream --sizes 1000G", "need", "GiB");
  expect_bad("stream --threads -1", "--threads -1 out of range", NULL);
}

/* A figure above the measured peak is flagged, not shown: QCAL_PEAK_SCALE
 * makes every peak sample 100x too low, as a busy machine would. */
Test(cli, gemm_flags_figures_above_the_measured_peak) {
  char args[512];
  snprintf(args, sizeof args,
           "gemm --engine cpu --no-network --sizes 128 --types f32,u8s8s32 -o %s/busy.h5", dir);
  setenv("QCAL_PEAK_SCALE", "0.01", 1);
  int rc = qcal(args);
  unsetenv("QCAL_PEAK_SCALE");
  if (strstr(out_s, "fp32 FMA         not measured"))
    cr_skip_test("this CPU has no AVX-512: no peak loops to compare with");
  cr_assert_eq(rc, 1, "%s", err_s);
  cr_assert_not_null(strstr(err_s, "GEMM figure(s) above 100% of the highest peak sample"), "%s",
                     err_s);
  cr_assert_not_null(strstr(out_s, "      -  peak under-measured: machine busy?"), "%s", out_s);
  cr_assert_not_null(strstr(out_s, "samples, lowest"), "%s", out_s);
  char p[160];
  snprintf(p, sizeof p, "%s/busy.h5", dir);
  hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
  cr_assert_geq(f, 0);
  double pct[8] = {0}; /* one row per type: f32, u8s8s32 */
  hid_t d = H5Dopen2(f, "/gemm/peak_percent", H5P_DEFAULT);
  cr_assert_geq(d, 0);
  cr_assert_geq(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, pct), 0);
  H5Dclose(d);
  cr_assert(isnan(pct[0]), "f32: %g", pct[0]); /* against the FMA peak */
  long long samples[8] = {0};                  /* one row per peak unit (up to 3) */
  d = H5Dopen2(f, "/peaks/samples", H5P_DEFAULT);
  cr_assert_geq(d, 0);
  hid_t sp = H5Dget_space(d);
  hsize_t nrow = 0;
  H5Sget_simple_extent_dims(sp, &nrow, NULL);
  H5Sclose(sp);
  cr_assert(nrow >= 1 && nrow <= 8, "%llu peak rows", (unsigned long long)nrow);
  cr_assert_geq(H5Dread(d, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, samples), 0);
  H5Dclose(d);
  H5Fclose(f);
  cr_assert_geq(samples[0], 5, "3 up front + before and after the one shape");
}

/* The same for stream: out of cache, a kernel above the fastest copy by more
 * than its byte count allows is flagged (32M elements: 256 MiB of fp32
 * copy traffic, beyond 4x any LLC up to 64 MiB). */
Test(cli, stream_flags_figures_above_the_measured_copy) {
  char args[512];
  snprintf(args, sizeof args, "stream --sizes 32M --reps 10 -o %s/sbusy.h5", dir);
  setenv("QCAL_PEAK_SCALE", "0.01", 1);
  int rc = qcal(args);
  unsetenv("QCAL_PEAK_SCALE");
  const char *llc = strstr(out_s, "LLC ");
  if (llc && atof(llc + 4) > 64)
    cr_skip_test("LLC of %.0f MiB: 32M elements are not out of cache here", atof(llc + 4));
  cr_assert_eq(rc, 1, "%s", err_s);
  cr_assert_not_null(strstr(err_s, "stream figure(s) above the fastest copy"), "%s", err_s);
  cr_assert_not_null(strstr(out_s, "copy f32                   "), "%s", out_s);
  cr_assert_not_null(strstr(out_s, "copy under-measured: machine busy? (allowed 100%)"), "%s",
                     out_s);
  cr_assert_not_null(strstr(out_s, "copy limit"), "%s", out_s);
}

Test(cli, gemm_and_stream_write_json_and_hdf5) {
  char args[512];
  snprintf(args, sizeof args,
           "gemm --engine cpu --no-network --sizes 64,96 --types f32,u8s8s32 --json %s/g.json -o "
           "%s/g.h5",
           dir, dir);
  /* 1 only where a figure beat the peak sampled beside it (machine busy) */
  int rc = qcal(args);
  cr_assert(rc == 0 || (rc == 1 && strstr(err_s, "peak under-measured")), "%d: %s", rc, err_s);
  cr_assert_not_null(strstr(out_s, "int8 VPDPBUSD"), "%s", out_s);
  cr_assert(strstr(out_s, "ok  (") || strstr(out_s, "busy?  ("), "%s", out_s); /* int8/f32 */
  char p[128];
  snprintf(p, sizeof p, "%s/g.json", dir);
  FILE *f = fopen(p, "r");
  cr_assert_not_null(f);
  char buf[65536];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  cr_assert_not_null(strstr(buf, "\"benchmarks\""));
  cr_assert_not_null(strstr(buf, "\"name\":\"gemm/cpu/u8s8s32/64x64x64x1\""), "%.400s", buf);
  cr_assert_not_null(strstr(buf, "\"time_unit\":\"ns\""), "%.400s", buf);
  cr_assert_not_null(strstr(buf, "\"aggregate_name\":\"median\""));
  cr_assert_not_null(strstr(buf, "\"GOPS\":"));
  snprintf(args, sizeof args, "stream --sizes 4K,64K --json %s/s.json -o %s/s.h5", dir, dir);
  cr_assert_eq(qcal(args), 0, "%s", err_s);
  cr_assert_not_null(strstr(out_s, "relu s8"), "%s", out_s);
  cr_assert_not_null(strstr(out_s, "GPU harness skipped") || strstr(out_s, "GPU "), "%s", out_s);
  snprintf(p, sizeof p, "%s/s.h5", dir);
  cr_assert_eq(access(p, R_OK), 0);
}
