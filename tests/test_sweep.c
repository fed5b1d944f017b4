/* qcal sweep end to end on a tiny TF.js model and generated photos, the
 * results file it writes, and its bad-input contract. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/stat.h>

#include "qcal/datasets.h"
#include "qcal/sweep.h"
#include "tests/run_qcal.h"
#include "tests/tiny_model.h"

TestSuite(sweep, .init = setup, .fini = teardown, .timeout = 120);

static const char *pathf(const char *name) {
  static char p[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
  return p[k];
}

static int exists(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0;
}

static long h5_rows(const char *file, const char *dataset) {
  hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
  cr_assert_geq(f, 0, "cannot open %s", file);
  hid_t d = H5Dopen2(f, dataset, H5P_DEFAULT);
  cr_assert_geq(d, 0, "no %s in %s", dataset, file);
  hid_t s = H5Dget_space(d);
  hsize_t n = 0;
  H5Sget_simple_extent_dims(s, &n, NULL);
  H5Sclose(s);
  H5Dclose(d);
  H5Fclose(f);
  return (long)n;
}

/* count files named *.tmp.* in the test folder (left-over partial results) */
static int tmp_files(void) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "find %s -name '*.tmp.*' | wc -l", dir);
  return shell_count(cmd);
}

/* Photos: n binary PPMs with seeded noise, plus an undecodable PNG. */
static void write_photos(int n, int broken) {
  char d[256];
  snprintf(d, sizeof d, "%s/img", dir);
  mkdir(d, 0755);
  qcal_rng r;
  qcal_rng_seed(&r, 5);
  for (int i = 0; i < n; i++) {
    char p[300];
    snprintf(p, sizeof p, "%s/p%02d.ppm", d, i);
    FILE *f = fopen(p, "wb");
    fprintf(f, "P6\n40 30\n255\n");
    for (int k = 0; k < 40 * 30 * 3; k++)
      fputc((int)(qcal_rng_next(&r) % 256), f);
    fclose(f);
  }
  if (broken) {
    char p[300];
    snprintf(p, sizeof p, "%s/zz_broken.png", d);
    FILE *f = fopen(p, "wb");
    fputs("\x89PNG\r\n\x1a\n not really", f);
    fclose(f);
  }
}

static void save_npy(const char *name, int64_t r, int64_t c, float scale) {
  qcal_tensor t;
  int64_t shape[2] = {r, c};
  cr_assert_eq(qcal_tensor_alloc(&t, 2, shape), QCAL_OK);
  qcal_rng g;
  qcal_rng_seed(&g, 77);
  for (size_t i = 0; i < t.numel; i++)
    t.data[i] = (float)(qcal_rng_normal(&g) * scale * (double)(1 + (int64_t)i / c));
  cr_assert_eq(qcal_npy_save(pathf(name), &t), QCAL_OK);
  qcal_tensor_free(&t);
}

Test(sweep, synthetic_and_files_only) {
  save_npy("w.npy", 4, 1000, 0.1f);
  char args[1024];
  snprintf(args, sizeof args, "sweep --no-network --synthetic-size 4096 -o %s %s", pathf("out.h5"),
           pathf("w.npy"));
  cr_assert_eq(qcal(args), 0, "%s", err_s);
  cr_assert_not_null(strstr(out_s, "results: "));
  cr_assert_not_null(strstr(out_s, "synthetic/gaussian"));
  cr_assert_not_null(strstr(out_s, "file/w"));
  /* 8 per-tensor-only distributions x 6 methods + 2 channel variants and 1
   * file x 6 methods x 2 granularities */
  cr_assert_eq(h5_rows(pathf("out.h5"), "/results/sqnr_db"), 8 * 6 + 3 * 12);
  cr_assert_eq(h5_rows(pathf("out.h5"), "/tensors/name"), 11);
  /* every tensor's 2048-bin histogram, end to end (schema 2) */
  cr_assert_eq(h5_rows(pathf("out.h5"), "/histogram_counts"), 11 * 2048);
  cr_assert_eq(h5_rows(pathf("out.h5"), "/histogram_edges"), 11 * 2049);
  cr_assert_eq(tmp_files(), 0);
  /* a bits range multiplies the rows */
  snprintf(args, sizeof args,
           "sweep --no-network --synthetic-size 4096 --bits 2-4,8 "
           "--filter 'gaussian$' -o %s",
           pathf("bits.h5"));
  cr_assert_eq(qcal(args), 0, "%s", err_s);
  cr_assert_eq(h5_rows(pathf("bits.h5"), "/results/bits"), 4 * 6);
}

Test(sweep, tiny_network_end_to_end) {
  tiny_write(dir, TINY_OK);
  write_photos(5, 1);
  char args[1024];
  snprintf(args, sizeof args,
           "sweep --model %s --images %s/img --input-size 33 --no-synthetic -o %s",
           pathf("tiny.json"), dir, pathf("net.h5"));
  cr_assert_eq(qcal(args), 0, "%s", err_s);
  cr_assert_not_null(strstr(err_s, "warning: skipping"), "%s", err_s);
  cr_assert_not_null(strstr(err_s, "zz_broken.png"), "%s", err_s);
  cr_assert_not_null(strstr(out_s, "Conv2d_1_depthwise*"), "%s", out_s);
  cr_assert_not_null(strstr(out_s, "end to end on 2 held-out photos"), "%s", out_s);
  cr_assert_not_null(strstr(out_s, "stages: load"), "%s", out_s);
  cr_assert_not_null(strstr(out_s, "skipped image: "), "%s", out_s);
  cr_assert_not_null(strstr(out_s, "zz_broken.png"), "%s", out_s);
  const char *f = pathf("net.h5");
  cr_assert_eq(h5_rows(f, "/tensors/name"), 6); /* 3 layers x (weight, input) */
  cr_assert_eq(h5_rows(f, "/results/sqnr_db"), 6 * 12);
  cr_assert_eq(h5_rows(f, "/images/status"), 6);
  cr_assert_eq(h5_rows(f, "/e2e/heatmap_sqnr_db"), 7 * 3 - 1);
  cr_assert_eq(h5_rows(f, "/sensitivity/layer"), 3 * 2);
  /* the per-output tables of any network: one output here */
  cr_assert_eq(h5_rows(f, "/e2e_outputs/sqnr_db"), 7 * 3 - 1);
  cr_assert_eq(h5_rows(f, "/sensitivity_outputs/sqnr_db"), 3 * 2);
  cr_assert_eq(h5_rows(f, "/timing/seconds"), 5);
  /* the filter selects tensors by name */
  snprintf(args, sizeof args,
           "sweep --model %s --images %s/img --input-size 33 --no-synthetic --filter depthwise "
           "-o %s",
           pathf("tiny.json"), dir, pathf("dw.h5"));
  cr_assert_eq(qcal(args), 0, "%s", err_s);
  cr_assert_eq(h5_rows(pathf("dw.h5"), "/tensors/name"), 2);
}

Test(sweep, bad_input_leaves_earlier_results_untouched) {
  write_photos(4, 0);
  FILE *fp = fopen(pathf("keep.h5"), "w");
  fputs("earlier results", fp);
  fclose(fp);
  char args[1024], base[512];
  snprintf(base, sizeof base, "--images %s/img --input-size 33 --no-synthetic -o %s", dir,
           pathf("keep.h5"));

  tiny_variant v = TINY_OK;
  v.bin_delta = -12;
  tiny_write(dir, v);
  snprintf(args, sizeof args, "sweep --model %s %s", pathf("tiny.json"), base);
  expect_bad(args, "tiny.bin", "weight 'b2' needs");

  v = TINY_OK;
  v.head_cin = 3;
  tiny_write(dir, v);
  expect_bad(args, "tiny.json", "does not fit 4 input channels");

  fp = fopen(pathf("tiny.json"), "w");
  fputs("{ this is not json", fp);
  fclose(fp);
  expect_bad(args, "tiny.json", "not JSON");

  tiny_write(dir, TINY_OK);
  save_npy("w.npy", 2, 10, 1.0f);
  hid_t h = H5Fcreate(pathf("d.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(h);
  snprintf(args, sizeof args, "sweep --model %s %s %s:missing", pathf("tiny.json"), base,
           pathf("d.h5"));
  expect_bad(args, "d.h5", "unknown HDF5 dataset 'missing'");

  /* a NaN in the network's weights: one line, no null memcpy (UBSan) */
  tiny_write(dir, TINY_OK);
  fp = fopen(pathf("tiny.bin"), "r+b");
  const float nan = NAN;
  fwrite(&nan, sizeof nan, 1, fp);
  fclose(fp);
  snprintf(args, sizeof args, "sweep --model %s %s", pathf("tiny.json"), base);
  expect_bad(args, "NaN", NULL);
  tiny_write(dir, TINY_OK);

  /* the output is never one of the inputs */
  snprintf(args, sizeof args, "sweep --no-network --no-synthetic %s -o %s", pathf("w.npy"),
           pathf("w.npy"));
  expect_bad(args, "must end in .h5", NULL);
  snprintf(args, sizeof args, "sweep --no-network --no-synthetic %s:missing -o %s", pathf("d.h5"),
           pathf("d.h5"));
  expect_bad(args, "refusing to overwrite", NULL);

  snprintf(args, sizeof args, "sweep --model %s --images %s/none %s", pathf("tiny.json"), dir,
           "--input-size 33 --no-synthetic -o x.h5");
  expect_bad(args, "none", "cannot open image folder");
  /* preprocessing options are checked against the model */
  snprintf(args, sizeof args, "sweep --model %s --images %s/img --no-synthetic -o %s %s",
           pathf("tiny.json"), dir, pathf("x.h5"), "--input-size 33 --mean 0.5 --std 0.5");
  expect_bad(args, "--mean and --std need 3 comma-separated values", NULL);
  snprintf(args, sizeof args, "sweep --model %s --images %s/img --no-synthetic -o %s %s",
           pathf("tiny.json"), dir, pathf("x.h5"), "--input-size 0");
  expect_bad(args, "--input-size expects H or H,W", NULL);
  snprintf(args, sizeof args, "sweep --model %s --images %s/img --no-synthetic -o %s %s",
           pathf("tiny.json"), dir, pathf("x.h5"), "--input-size 33 --channels 1");
  expect_bad(args, "has 3 channels, not 1", NULL);
  snprintf(args, sizeof args, "sweep --model %s --images %s/img --no-synthetic -o %s",
           pathf("tiny.json"), dir, pathf("x.h5"));
  expect_bad(args, "input size is symbolic", NULL);
  snprintf(args, sizeof args, "sweep --no-network --bits 1-8 -o %s", pathf("x.h5"));
  expect_bad(args, "--bits '1-8'", NULL);
  snprintf(args, sizeof args, "sweep --no-network --filter '(' -o %s", pathf("x.h5"));
  expect_bad(args, "--filter '('", NULL);
  snprintf(args, sizeof args, "sweep --no-network --filter nomatch -o %s", pathf("x.h5"));
  expect_bad(args, "nothing to sweep", NULL);
  expect_bad("sweep --no-network -o results.txt", "must end in .h5", NULL);

  char buf[64] = "";
  fp = fopen(pathf("keep.h5"), "r");
  cr_assert_not_null(fgets(buf, sizeof buf, fp));
  fclose(fp);
  cr_assert_str_eq(buf, "earlier results");
  cr_assert(!exists(pathf("x.h5")));
  cr_assert_eq(tmp_files(), 0);
}

Test(sweep, interrupt_leaves_no_partial_file) {
  const char *bin = getenv("QCAL_BIN");
  cr_assert_not_null(bin);
  pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    execl(bin, bin, "sweep", "--no-network", "--synthetic-size", "16000000", "--bits", "2-8", "-o",
          pathf("int.h5"), (char *)NULL);
    _exit(99);
  }
  usleep(800 * 1000);
  kill(pid, SIGINT);
  int st;
  waitpid(pid, &st, 0);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 130, "status %d", st);
  cr_assert(!exists(pathf("int.h5")));
  cr_assert_eq(tmp_files(), 0);
}

/* Layer display names from scope paths (analysis/names.c). */
Test(sweep, layer_names_drop_the_shared_root_and_cut_where_unique) {
  static const char *const names[] = {
      "MobilenetV1/MobilenetV1/Conv2d_0/Relu6",
      "MobilenetV1/MobilenetV1/Conv2d_1_depthwise/BatchNorm/batchnorm/add_1/conv",
      "MobilenetV1/heatmap_2/BiasAdd",
      "MobilenetV1/offset_2/BiasAdd",
  };
  static const char *const want[] = {"Conv2d_0", "Conv2d_1_depthwise", "heatmap_2", "offset_2"};
  static const char *const torch[] = {"/conv1/Conv",
                                      "/layer1/layer1.0/conv1/Conv",
                                      "/layer1/layer1.0/conv2/Conv",
                                      "/layer1/layer1.1/conv1/Conv",
                                      "/fc/Gemm",
                                      "",
                                      "dup",
                                      "dup",
                                      "dup"};
  static const char *const twant[] = {"conv1",
                                      "layer1/layer1.0/conv1",
                                      "layer1/layer1.0/conv2",
                                      "layer1/layer1.1",
                                      "fc",
                                      "Conv_5",
                                      "dup",
                                      "dup#2",
                                      "dup#3"};
  for (int set = 0; set < 2; set++) {
    const char *const *in = set ? torch : names, *const *exp = set ? twant : want;
    int n = set ? 9 : 4;
    qcal_graph *g;
    cr_assert_eq(qcal_graph_new("names", &g), QCAL_OK);
    int nodes[9];
    for (int i = 0; i < n; i++) {
      char vn[16];
      snprintf(vn, sizeof vn, "v%d", i);
      int v;
      int64_t one = 1;
      cr_assert_eq(qcal_graph_add_value(g, vn, QCAL_VAL_ACT, QCAL_DT_F32, 1, &one, &v), QCAL_OK);
      cr_assert_eq(qcal_graph_add_node(g, QCAL_GOP_Conv, in[i], 0, NULL, 1, &v, &nodes[i]),
                   QCAL_OK);
    }
    char(*out)[160] = calloc(9, sizeof *out);
    qcal_layer_names(g, nodes, n, out);
    for (int i = 0; i < n; i++)
      cr_assert_str_eq(out[i], exp[i], "'%s' -> '%s', want '%s'", in[i], out[i], exp[i]);
    free(out);
    qcal_graph_free(g);
  }
}
