/* Training: the IDX reader and its malformed files; every backward op
 * against central finite differences of the loss; FakeQuantize's
 * straight-through and LSQ gradients against a computation written here;
 * bit-identical training for a given thread count. PyTorch autograd is the
 * other oracle (tests/oracle/check_train.py). */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <zlib.h>

#include "qcal/datasets.h"
#include "qcal/graph.h"
#include "qcal/qat.h"
#include "qcal/train.h"
#include "tests/common.h"

static char dir[64];
static void setup(void) {
  tmpdir_make(dir, sizeof dir, "train");
  cr_assert_neq(dir[0], 0);
}
static void teardown(void) {
  cr_assert_eq(tmpdir_remove(dir), 0);
}
TestSuite(idx, .init = setup, .fini = teardown);

/* ---- IDX files */
static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* An IDX file: magic (0, 0, type, ndim), dims, then `extra` more or fewer
 * data bytes than the dims announce; gzip-compressed when gz. */
static void write_idx(const char *path, int type, int ndim, const uint32_t *dims, long extra,
                      bool gz) {
  unsigned char buf[4096];
  size_t len = 0, count = 1;
  buf[len++] = 0, buf[len++] = 0, buf[len++] = (unsigned char)type,
  buf[len++] = (unsigned char)ndim;
  for (int d = 0; d < ndim; d++, len += 4) {
    put_be32(buf + len, dims[d]);
    count *= dims[d];
  }
  size_t data = (size_t)((long)count + extra);
  cr_assert_lt(len + data, sizeof buf);
  for (size_t i = 0; i < data; i++)
    buf[len++] = (unsigned char)(i * 7 % 10);
  if (gz) {
    gzFile f = gzopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(gzwrite(f, buf, (unsigned)len), (int)len);
    gzclose(f);
  } else {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
  }
}

Test(idx, reads_plain_and_gzip) {
  uint32_t dims[3] = {2, 3, 4};
  char path[256];
  for (int gz = 0; gz < 2; gz++) {
    snprintf(path, sizeof path, "%s/a%d", dir, gz);
    write_idx(path, 0x08, 3, dims, 0, gz);
    qcal_idx x;
    cr_assert_eq(qcal_idx_read(path, &x), QCAL_OK, "%s", qcal_last_error());
    cr_assert_eq(x.ndim, 3);
    cr_assert_eq(x.dims[0], 2);
    cr_assert_eq(x.dims[2], 4);
    cr_assert_eq(x.count, 24);
    for (size_t i = 0; i < 24; i++)
      cr_assert_eq(x.data[i], i * 7 % 10);
    qcal_idx_free(&x);
  }
}

Test(idx, bad_files_name_the_file_and_problem) {
  static const struct {
    const char *name;
    int type, ndim;
    uint32_t dims[3];
    long extra;
    bool gz;
    qcal_status want;
    const char *says;
  } cases[] = {
      {"float", 0x0D, 1, {4}, 0, false, QCAL_EDTYPE, "element type 0x0d"},
      {"trunc", 0x08, 3, {2, 3, 4}, -5, false, QCAL_EFORMAT, "truncated"},
      {"trunc.gz", 0x08, 3, {2, 3, 4}, -1, true, QCAL_EFORMAT, "truncated"},
      {"trail", 0x08, 1, {4}, 3, false, QCAL_EFORMAT, "trailing data"},
      /* 2e9 bytes claimed, 5 there: an error, not a 2 GB allocation */
      {"huge",
       0x08,
       3,
       {40000, 200, 250},
       5 - 2000000000L,
       false,
       QCAL_EFORMAT,
       "ends after 5 of 2000000000 bytes"},
      {"zero", 0x08, 2, {0, 4}, 0, false, QCAL_EEMPTY, "dim 0 is 0"},
      {"dims", 0x08, 0, {0}, 0, false, QCAL_EFORMAT, "0 dims"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, cases[k].name);
    write_idx(path, cases[k].type, cases[k].ndim, cases[k].dims, cases[k].extra, cases[k].gz);
    qcal_idx x;
    cr_assert_eq(qcal_idx_read(path, &x), cases[k].want, "%s: %s", cases[k].name,
                 qcal_last_error());
    cr_assert_not_null(strstr(qcal_last_error(), path), "%s", qcal_last_error());
    cr_assert_not_null(strstr(qcal_last_error(), cases[k].says), "%s", qcal_last_error());
    cr_assert_null(x.data);
  }
  char path[256];
  FILE *f = fopen(strcat(strcpy(path, dir), "/magic"), "wb");
  fwrite("\x01\x02\x08\x01\x00\x00\x00\x01\x05", 1, 9, f);
  fclose(f);
  qcal_idx x;
  cr_assert_eq(qcal_idx_read(path, &x), QCAL_EFORMAT);
  cr_assert_not_null(strstr(qcal_last_error(), "not an IDX file"));
  /* a gzip header followed by garbage */
  f = fopen(strcat(strcpy(path, dir), "/bad.gz"), "wb");
  fwrite("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage-garbage-garbage", 1, 33, f);
  fclose(f);
  cr_assert_neq(qcal_idx_read(path, &x), QCAL_OK);
  cr_assert_not_null(strstr(qcal_last_error(), path));
  cr_assert_eq(qcal_idx_read(strcat(strcpy(path, dir), "/none"), &x), QCAL_EIO);
}

static void write_set(const char *split, uint32_t n_img, uint32_t n_lab, int label_max) {
  char path[256];
  uint32_t im[3] = {n_img, 2, 2}, lb[1] = {n_lab};
  snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, split);
  write_idx(path, 0x08, 3, im, 0, true);
  snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, split);
  /* labels i * 7 % 10, capped below label_max+1 unless a bad one is wanted */
  write_idx(path, 0x08, 1, lb, 0, false);
  (void)label_max;
}

Test(idx, labelled_sets_check_counts_and_labels) {
  qcal_labelled d;
  write_set("train", 5, 5, 9);
  cr_assert_eq(qcal_labelled_load(dir, "train", 10, &d), QCAL_OK, "%s", qcal_last_error());
  cr_assert_eq(d.n, 5);
  cr_assert_eq(d.rows, 2);
  cr_assert_eq(d.labels[3], 1);
  qcal_labelled_free(&d);
  /* labels up to 9 (i * 7 % 10) do not fit 8 classes */
  cr_assert_eq(qcal_labelled_load(dir, "train", 8, &d), QCAL_EDATA);
  cr_assert_not_null(strstr(qcal_last_error(), "not a class 0..7"), "%s", qcal_last_error());
  write_set("t10k", 5, 4, 9);
  cr_assert_eq(qcal_labelled_load(dir, "t10k", 10, &d), QCAL_EFORMAT);
  cr_assert_not_null(strstr(qcal_last_error(), "4 labels for the 5 images"), "%s",
                     qcal_last_error());
  cr_assert_eq(qcal_labelled_load(dir, "valid", 10, &d), QCAL_EIO);
  cr_assert_not_null(strstr(qcal_last_error(), "valid-images-idx3-ubyte"));
}

/* ---- graphs built here, one op family at a time */
typedef struct gb {
  qcal_graph *g;
  qcal_rng rng;
  int count;
} gb;

static int gb_const(gb *b, int ndim, const int64_t *shape, float scale, float fill) {
  size_t n = 1;
  for (int d = 0; d < ndim; d++)
    n *= (size_t)shape[d];
  float *v = qcal_alloc(n * sizeof(float));
  cr_assert_not_null(v);
  for (size_t i = 0; i < n; i++)
    v[i] = scale > 0 ? (float)((2 * qcal_rng_uniform(&b->rng) - 1) * scale) : fill;
  char name[32];
  snprintf(name, sizeof name, "c%d", b->count++);
  int idx;
  cr_assert_eq(qcal_graph_add_const(b->g, name, QCAL_DT_F32, ndim, shape, v, &idx), QCAL_OK);
  return idx;
}

static qcal_node *gb_node(gb *b, qcal_graph_op op, int nin, const int *in, int *out) {
  char name[32];
  snprintf(name, sizeof name, "n%d", b->count++);
  int y, idx;
  cr_assert_eq(qcal_graph_add_value(b->g, name, QCAL_VAL_ACT, QCAL_DT_F32, 0, NULL, &y), QCAL_OK);
  cr_assert_eq(qcal_graph_add_node(b->g, op, name, nin, in, 1, &y, &idx), QCAL_OK);
  *out = y;
  return &b->g->nodes[idx];
}

static void set_int(qcal_node *n, const char *name, int64_t v) {
  cr_assert_eq(
      qcal_node_add_attr(n, &(qcal_attr){.name = (char *)name, .type = QCAL_ATTR_INT, .i = v}),
      QCAL_OK);
}

static void gb_ints(qcal_node *n, const char *name, int count, int64_t a, int64_t c) {
  int64_t v[4] = {a, c, a, c};
  cr_assert_eq(
      qcal_node_add_attr(
          n, &(qcal_attr){.name = (char *)name, .type = QCAL_ATTR_INTS, .n = count, .ints = v}),
      QCAL_OK);
}

static int gb_input(gb *b, int ndim, const int64_t *shape) {
  cr_assert_eq(qcal_graph_new("test", &b->g), QCAL_OK);
  qcal_rng_seed(&b->rng, 42);
  int x;
  cr_assert_eq(qcal_graph_add_value(b->g, "x", QCAL_VAL_INPUT, QCAL_DT_F32, ndim, shape, &x),
               QCAL_OK);
  cr_assert_eq(qcal_graph_add_input(b->g, x), QCAL_OK);
  return x;
}

static int gb_conv(gb *b, int x, int64_t cin, int64_t cout, int k, int stride, int group,
                   bool bias) {
  int64_t ws[4] = {cout, cin / group, k, k}, bs[1] = {cout};
  int in[3] = {x, gb_const(b, 4, ws, 0.5f, 0), bias ? gb_const(b, 1, bs, 0.2f, 0) : -1};
  int y;
  qcal_node *n = gb_node(b, QCAL_GOP_Conv, bias ? 3 : 2, in, &y);
  gb_ints(n, "kernel_shape", 2, k, k);
  gb_ints(n, "strides", 2, stride, stride);
  gb_ints(n, "pads", 4, k / 2, k / 2);
  if (group > 1)
    set_int(n, "group", group);
  return y;
}

static int gb_bn(gb *b, int x, int64_t c) {
  int64_t s[1] = {c};
  int in[5] = {x, gb_const(b, 1, s, 0, 0), gb_const(b, 1, s, 0.3f, 0), gb_const(b, 1, s, 0, 0),
               gb_const(b, 1, s, 0, 1)};
  float *gamma = b->g->values[in[1]].data;
  for (int64_t i = 0; i < c; i++)
    gamma[i] = 0.5f + 0.25f * (float)i;
  int y;
  gb_node(b, QCAL_GOP_BatchNormalization, 5, in, &y);
  return y;
}

static int gb_clip(gb *b, int x, float lo, float hi) {
  int in[3] = {x, gb_const(b, 0, NULL, 0, lo), gb_const(b, 0, NULL, 0, hi)}, y;
  gb_node(b, QCAL_GOP_Clip, 3, in, &y);
  return y;
}

static int gb_unary(gb *b, qcal_graph_op op, int x) {
  int y;
  qcal_node *n = gb_node(b, op, 1, &x, &y);
  if (op == QCAL_GOP_MaxPool) {
    gb_ints(n, "kernel_shape", 2, 2, 2);
    gb_ints(n, "strides", 2, 2, 2);
  }
  return y;
}

static int gb_gemm(gb *b, int x, int64_t k, int64_t m, bool trans_b) {
  int64_t ws[2] = {trans_b ? m : k, trans_b ? k : m}, bs[1] = {m};
  int in[3] = {x, gb_const(b, 2, ws, 0.5f, 0), gb_const(b, 1, bs, 0.2f, 0)}, y;
  qcal_node *n = gb_node(b, QCAL_GOP_Gemm, 3, in, &y);
  if (trans_b)
    set_int(n, "transB", 1);
  return y;
}

static void gb_output(gb *b, int y) {
  cr_assert_eq(qcal_graph_add_output(b->g, y), QCAL_OK);
}

/* Every parameter's gradient against central differences of the training
 * loss (a sample of up to 24 elements each): the relative error of the
 * sampled vector stays under tol. Returns how many parameters it checked. */
static int fd_check(qcal_graph *g, int batch, size_t in_numel, double tol) {
  qcal_train *t;
  cr_assert_eq(qcal_train_new(g, batch, &t), QCAL_OK, "%s", qcal_last_error());
  float *x = malloc(in_numel * sizeof *x);
  int64_t y[64];
  qcal_rng r;
  qcal_rng_seed(&r, 7);
  for (size_t i = 0; i < in_numel; i++)
    x[i] = (float)(2 * qcal_rng_uniform(&r) - 1);
  for (int i = 0; i < batch; i++)
    y[i] = (int64_t)(qcal_rng_next(&r) % 3);
  float loss;
  cr_assert_eq(qcal_train_forward(t, batch, x, y, true, &loss), QCAL_OK, "%s", qcal_last_error());
  cr_assert_eq(qcal_train_backward(t), QCAL_OK, "%s", qcal_last_error());
  int np = qcal_train_nparams(t);
  for (int k = 0; k < np; k++) {
    qcal_param *p = qcal_train_param(t, k);
    float *grad = malloc(p->numel * sizeof *grad);
    memcpy(grad, p->grad, p->numel * sizeof *grad);
    double num = 0, den = 0, gn = 0;
    size_t step = p->numel > 24 ? p->numel / 24 : 1;
    for (size_t i = 0; i < p->numel; i += step) {
      /* small enough that no ReLU or Clip kink is crossed, large enough for float */
      const float w = p->data[i], eps = 3e-4f;
      float lp, lm;
      p->data[i] = w + eps;
      cr_assert_eq(qcal_train_forward(t, batch, x, y, true, &lp), QCAL_OK);
      p->data[i] = w - eps;
      cr_assert_eq(qcal_train_forward(t, batch, x, y, true, &lm), QCAL_OK);
      p->data[i] = w;
      double fd = ((double)lp - (double)lm) / (2.0 * eps);
      num += (fd - grad[i]) * (fd - grad[i]);
      den += fd * fd;
      gn += (double)grad[i] * grad[i];
    }
    double rel = sqrt(num) / fmax(sqrt(fmax(den, gn)), 1e-6);
    cr_assert_lt(rel, tol, "parameter %d ('%s', %zu elements): relative error %.3g (|g| %.3g)", k,
                 g->values[p->value].name, p->numel, rel, sqrt(gn));
    cr_assert_gt(gn, 0, "parameter %d has no gradient", k);
    free(grad);
  }
  qcal_train_free(t);
  free(x);
  return np;
}

TestSuite(grad);

/* Conv (3x3 stride 1 and 2, bias), Relu, MaxPool, Flatten, Gemm (transB) */
Test(grad, conv_relu_maxpool_gemm) {
  gb b = {0};
  int64_t s[4] = {-1, 2, 6, 6};
  int x = gb_input(&b, 4, s);
  x = gb_conv(&b, x, 2, 4, 3, 1, 1, true);
  x = gb_unary(&b, QCAL_GOP_Relu, x);
  x = gb_unary(&b, QCAL_GOP_MaxPool, x);
  x = gb_conv(&b, x, 4, 5, 3, 2, 1, true);
  x = gb_unary(&b, QCAL_GOP_Flatten, x);
  x = gb_gemm(&b, x, 5 * 2 * 2, 3, true);
  gb_output(&b, x);
  cr_assert_eq(fd_check(b.g, 4, 4 * 2 * 6 * 6, 2e-2), 6);
  qcal_graph_free(b.g);
}

/* 1x1 Conv, BatchNormalization (batch statistics), Clip (ReLU6),
 * depthwise Conv stride 1 and 2, Add, GlobalAveragePool, Gemm */
Test(grad, depthwise_batchnorm_clip_add_gap) {
  gb b = {0};
  int64_t s[4] = {-1, 3, 6, 6};
  int x = gb_input(&b, 4, s);
  int a = gb_clip(&b, gb_bn(&b, gb_conv(&b, x, 3, 4, 1, 1, 1, false), 4), 0, 6);
  int c = gb_clip(&b, gb_bn(&b, gb_conv(&b, a, 4, 4, 3, 1, 4, true), 4), 0, 6);
  int in[2] = {a, c}, y;
  gb_node(&b, QCAL_GOP_Add, 2, in, &y);
  y = gb_conv(&b, y, 4, 4, 3, 2, 4, false);
  y = gb_unary(&b, QCAL_GOP_GlobalAveragePool, y);
  y = gb_unary(&b, QCAL_GOP_Flatten, y);
  y = gb_gemm(&b, y, 4, 3, true);
  gb_output(&b, y);
  cr_assert_eq(fd_check(b.g, 6, 6 * 3 * 6 * 6, 2e-2), 10);
  qcal_graph_free(b.g);
}

/* Depthwise 3x3 with dilation 2, stride 2 and unequal pads (7x7 input):
 * the padded-plane path at its edges */
Test(grad, depthwise_dilated_strided) {
  gb b = {0};
  int64_t s[4] = {-1, 3, 7, 7};
  int x = gb_conv(&b, gb_input(&b, 4, s), 3, 3, 1, 1, 1, false);
  int64_t ws[4] = {3, 1, 3, 3}, bs[1] = {3};
  int in[3] = {x, gb_const(&b, 4, ws, 0.5f, 0), gb_const(&b, 1, bs, 0.2f, 0)}, y;
  qcal_node *n = gb_node(&b, QCAL_GOP_Conv, 3, in, &y);
  gb_ints(n, "kernel_shape", 2, 3, 3);
  gb_ints(n, "strides", 2, 2, 2);
  gb_ints(n, "dilations", 2, 2, 2);
  gb_ints(n, "pads", 4, 2, 1);
  set_int(n, "group", 3);
  y = gb_unary(&b, QCAL_GOP_Flatten, y);
  y = gb_gemm(&b, y, 3 * 4 * 3, 3, true); /* 4 x 3 outputs: pads 2, 1 */
  gb_output(&b, y);
  /* its input gradient is checked through the 1x1 Conv before it */
  cr_assert_eq(fd_check(b.g, 4, 4 * 3 * 7 * 7, 2e-2), 5);
  qcal_graph_free(b.g);
}

/* Gemm with B [K, N] (no transB) into Relu and a second Gemm */
Test(grad, gemm_plain_layout) {
  gb b = {0};
  int64_t s[2] = {-1, 6};
  int x = gb_input(&b, 2, s);
  x = gb_unary(&b, QCAL_GOP_Relu, gb_gemm(&b, x, 6, 5, false));
  x = gb_gemm(&b, x, 5, 3, false);
  gb_output(&b, x);
  cr_assert_eq(fd_check(b.g, 5, 5 * 6, 2e-2), 4);
  qcal_graph_free(b.g);
}

/* An op without a backward is named when training starts. */
Test(grad, op_without_backward_is_refused) {
  gb b = {0};
  int64_t s[2] = {-1, 6};
  int x = gb_input(&b, 2, s);
  x = gb_unary(&b, QCAL_GOP_Sigmoid, gb_gemm(&b, x, 6, 3, true));
  gb_output(&b, x);
  qcal_train *t;
  cr_assert_eq(qcal_train_new(b.g, 4, &t), QCAL_EUNSUPPORTED);
  cr_assert_not_null(strstr(qcal_last_error(), "Sigmoid node"), "%s", qcal_last_error());
  cr_assert_not_null(strstr(qcal_last_error(), "no backward"), "%s", qcal_last_error());
  qcal_graph_free(b.g);
}

/* FakeQuantize between two Gemms, 4-bit, amax learned: the gradients of
 * the first Gemm (through the straight-through estimator: passed where
 * |y| <= amax) and of amax (LSQ) against the same computation written out
 * here. */
Test(grad, fakequantize_ste_and_lsq) {
  enum { N = 6, K = 5, M = 4, C = 3 };
  gb b = {0};
  int64_t s[2] = {-1, K};
  int x = gb_input(&b, 2, s);
  int y1 = gb_gemm(&b, x, K, M, true);
  const int w1 = b.g->nodes[b.g->nnodes - 1].in[1], b1 = b.g->nodes[b.g->nnodes - 1].in[2];
  int64_t one[1] = {1};
  int amax = gb_const(&b, 1, one, 0, 0.6f), q;
  int in[2] = {y1, amax};
  qcal_node *f = gb_node(&b, QCAL_GOP_FakeQuantize, 2, in, &q);
  set_int(f, "bits", 4);
  set_int(f, "axis", -1);
  set_int(f, "learn", 1);
  int lg = gb_gemm(&b, q, M, C, true);
  const int w2 = b.g->nodes[b.g->nnodes - 1].in[1], b2 = b.g->nodes[b.g->nnodes - 1].in[2];
  gb_output(&b, lg);
  float xin[N * K];
  int64_t lab[N];
  qcal_rng r;
  qcal_rng_seed(&r, 3);
  for (int i = 0; i < N * K; i++)
    xin[i] = (float)(2 * qcal_rng_uniform(&r) - 1);
  for (int i = 0; i < N; i++)
    lab[i] = i % C;
  const float *W1 = b.g->values[w1].data, *B1 = b.g->values[b1].data;
  const float *W2 = b.g->values[w2].data, *B2 = b.g->values[b2].data;
  const float A = 0.6f, S = 7.0f / A;
  /* forward and backward by hand */
  float Y1[N][M], Q[N][M], dQ[N][M];
  double dW1[M][K] = {{0}}, dB1[M] = {0}, dA = 0;
  int inside = 0, clipped = 0;
  for (int n = 0; n < N; n++) {
    for (int m = 0; m < M; m++) {
      float acc = B1[m];
      for (int k = 0; k < K; k++)
        acc += xin[n * K + k] * W1[m * K + k];
      Y1[n][m] = acc;
      Q[n][m] = qcal_fake_quant_one(acc, S, S, -7, 7);
    }
    double z[C], mx = -1e30, sum = 0;
    for (int c = 0; c < C; c++) {
      z[c] = B2[c];
      for (int m = 0; m < M; m++)
        z[c] += (double)Q[n][m] * W2[c * M + m];
      mx = fmax(mx, z[c]);
    }
    for (int c = 0; c < C; c++)
      sum += exp(z[c] - mx);
    for (int m = 0; m < M; m++) {
      double g = 0;
      for (int c = 0; c < C; c++)
        g += ((exp(z[c] - mx) / sum - (c == lab[n])) / N) * W2[c * M + m];
      dQ[n][m] = (float)g;
    }
  }
  for (int n = 0; n < N; n++)
    for (int m = 0; m < M; m++) {
      float v = Y1[n][m];
      bool in_range = fabsf(v) <= A;
      inside += in_range, clipped += !in_range;
      double g = in_range ? dQ[n][m] : 0;
      dB1[m] += g;
      for (int k = 0; k < K; k++)
        dW1[m][k] += g * xin[n * K + k];
      dA += dQ[n][m] * (in_range ? (rintf(v * S) - v * S) / 7.0 : (v > 0 ? 1 : -1));
    }
  dA /= sqrt((double)(N * M) * 7.0);
  cr_assert_gt(inside, 0);
  cr_assert_gt(clipped, 0, "amax should clip some values for the test to mean something");
  qcal_train *t;
  cr_assert_eq(qcal_train_new(b.g, N, &t), QCAL_OK, "%s", qcal_last_error());
  float loss;
  cr_assert_eq(qcal_train_forward(t, N, xin, lab, true, &loss), QCAL_OK);
  cr_assert_eq(qcal_train_backward(t), QCAL_OK);
  int seen = 0;
  for (int k = 0; k < qcal_train_nparams(t); k++) {
    qcal_param *p = qcal_train_param(t, k);
    if (p->value == w1) {
      for (int m = 0; m < M; m++)
        for (int kk = 0; kk < K; kk++)
          cr_assert_float_eq(p->grad[m * K + kk], dW1[m][kk], 1e-5, "dW1[%d][%d]", m, kk);
      seen++;
    } else if (p->value == b1) {
      for (int m = 0; m < M; m++)
        cr_assert_float_eq(p->grad[m], dB1[m], 1e-5);
      seen++;
    } else if (p->value == amax) {
      cr_assert(p->positive && !p->decay);
      cr_assert_float_eq(p->grad[0], dA, 1e-5, "d amax %g, expected %g", p->grad[0], dA);
      seen++;
    }
  }
  cr_assert_eq(seen, 3);
  qcal_train_free(t);
  qcal_graph_free(b.g);
}

/* The same seed and thread count train to the same bits. */
static void train_steps(int threads, float *out, size_t *count) {
  omp_set_num_threads(threads);
  qcal_graph *g;
  cr_assert_eq(qcal_net_mobilenet(12, 12, 10, 5, &g), QCAL_OK);
  qcal_train *t;
  cr_assert_eq(qcal_train_new(g, 16, &t), QCAL_OK, "%s", qcal_last_error());
  qcal_optim o = {.kind = QCAL_OPTIM_SGD, .momentum = 0.9f, .weight_decay = 5e-4f};
  float x[16 * 144];
  int64_t y[16];
  qcal_rng r;
  qcal_rng_seed(&r, 11);
  for (int step = 0; step < 6; step++) {
    for (int i = 0; i < 16 * 144; i++)
      x[i] = (float)qcal_rng_uniform(&r);
    for (int i = 0; i < 16; i++)
      y[i] = (int64_t)(qcal_rng_next(&r) % 10);
    float loss;
    cr_assert_eq(qcal_train_forward(t, 16, x, y, true, &loss), QCAL_OK);
    cr_assert_eq(qcal_train_backward(t), QCAL_OK);
    qcal_optim_step(t, &o, 0.05f);
  }
  *count = 0;
  for (int k = 0; k < qcal_train_nparams(t); k++) {
    qcal_param *p = qcal_train_param(t, k);
    memcpy(out + *count, p->data, p->numel * sizeof(float));
    *count += p->numel;
  }
  qcal_train_free(t);
  qcal_graph_free(g);
}

Test(grad, training_is_bit_identical_per_thread_count) {
  static float a[200000], b2[200000];
  size_t na, nb;
  for (int threads = 1; threads <= 2; threads++) {
    train_steps(threads, a, &na);
    train_steps(threads, b2, &nb);
    cr_assert_eq(na, nb);
    cr_assert_gt(na, 1000);
    cr_assert_eq(memcmp(a, b2, na * sizeof(float)), 0, "%d threads: two runs differ", threads);
  }
}

/* The optimizer step against its formulas, element by element: SGD with
 * momentum and weight decay on the weight (not the bias), Adam with bias
 * correction and decoupled decay, a learned amax kept above zero. */
Test(grad, optimizer_steps_follow_their_formulas) {
  gb b = {0};
  int64_t s[2] = {-1, 2};
  int x = gb_input(&b, 2, s);
  int y = gb_gemm(&b, x, 2, 2, true);
  const int w = b.g->nodes[b.g->nnodes - 1].in[1];
  gb_output(&b, y);
  for (int kind = 0; kind < 2; kind++) {
    qcal_train *t;
    cr_assert_eq(qcal_train_new(b.g, 2, &t), QCAL_OK, "%s", qcal_last_error());
    qcal_optim o = {.kind = kind ? QCAL_OPTIM_ADAM : QCAL_OPTIM_SGD,
                    .momentum = 0.9f,
                    .beta1 = 0.9f,
                    .beta2 = 0.999f,
                    .eps = 1e-8f,
                    .weight_decay = 0.1f};
    cr_assert_eq(qcal_train_nparams(t), 2);
    float w0[4], m[4] = {0}, v[4] = {0};
    qcal_param *pw = NULL, *pb = NULL;
    for (int k = 0; k < 2; k++) {
      qcal_param *p = qcal_train_param(t, k);
      if (p->value == w)
        pw = p;
      else
        pb = p;
    }
    cr_assert(pw && pb && pw->decay && !pb->decay);
    memcpy(w0, pw->data, sizeof w0);
    const float bias0 = pb->data[0];
    for (int step = 1; step <= 3; step++) {
      for (int i = 0; i < 4; i++)
        pw->grad[i] = 0.1f * (float)(i + 1) * (float)step;
      for (int i = 0; i < 2; i++)
        pb->grad[i] = 0.5f;
      qcal_optim_step(t, &o, 0.01f);
      for (int i = 0; i < 4; i++) {
        float g = 0.1f * (float)(i + 1) * (float)step;
        if (kind == 0) {
          m[i] = 0.9f * m[i] + (g + 0.1f * w0[i]);
          w0[i] -= 0.01f * m[i];
        } else {
          m[i] = 0.9f * m[i] + 0.1f * g;
          v[i] = 0.999f * v[i] + 0.001f * g * g;
          float mh = m[i] / (1.0f - powf(0.9f, (float)step)),
                vh = v[i] / (1.0f - powf(0.999f, (float)step));
          w0[i] -= 0.01f * (mh / (sqrtf(vh) + 1e-8f) + 0.1f * w0[i]);
        }
        cr_assert_float_eq(pw->data[i], w0[i], 1e-6, "%s step %d w[%d]: %g vs %g",
                           kind ? "adam" : "sgd", step, i, pw->data[i], w0[i]);
      }
    }
    /* the bias moved without decay: SGD 0.5 * (1 + 1.9 + 2.71) * 0.01 */
    if (kind == 0)
      cr_assert_float_eq(pb->data[0], bias0 - 0.01f * 0.5f * (1 + 1.9f + 2.71f), 1e-6);
    qcal_train_free(t);
  }
  qcal_graph_free(b.g);
}
