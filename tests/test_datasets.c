/* Datasets: the file readers (and their malformed inputs), the synthetic
 * generators, the photo loader, and a TF.js model on the graph IR (with fake
 * quantization) against a direct convolution written here independently. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <stdlib.h>
#include <zip.h>

#include "qcal/datasets.h"
#include "qcal/graph.h"
#include "tests/common.h"
#include "tests/tiny_model.h"

/* FNV-1a of the first 4 float32 samples of gaussian(seed 1), recorded when the
 * generator was written. */
#define GOLDEN_GAUSSIAN_FNV 0x7dbfc6afu

static char dir[64];
static void setup(void) {
  tmpdir_make(dir, sizeof dir, "ds");
  cr_assert_neq(dir[0], 0);
}
static void teardown(void) {
  cr_assert_eq(tmpdir_remove(dir), 0);
}
TestSuite(readers, .init = setup, .fini = teardown);
TestSuite(tfjs, .init = setup, .fini = teardown);

typedef struct {
  qcal_tensor t[8];
  int n;
} bag;

static qcal_status collect(void *ctx, qcal_tensor *t) {
  bag *b = ctx;
  cr_assert_lt(b->n, 8);
  b->t[b->n++] = *t;
  return QCAL_OK;
}

static void bag_free(bag *b) {
  for (int i = 0; i < b->n; i++)
    qcal_tensor_free(&b->t[i]);
  b->n = 0;
}

static const char *pathf(const char *name) {
  static char p[256];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return p;
}

/* .npy bytes of a small float32 tensor, via the writer */
static unsigned char *npy_bytes(const float *v, int64_t n, size_t *len) {
  qcal_tensor t;
  int64_t shape[1] = {n};
  cr_assert_eq(qcal_tensor_alloc(&t, 1, shape), QCAL_OK);
  memcpy(t.data, v, (size_t)n * 4);
  cr_assert_eq(qcal_npy_save(pathf("tmp.npy"), &t), QCAL_OK);
  qcal_tensor_free(&t);
  unsigned char *b;
  cr_assert_eq(qcal_read_file(pathf("tmp.npy"), &b, len), QCAL_OK);
  return b;
}

static void zip_put(zip_t *z, const char *name, unsigned char *buf, size_t len, int method) {
  zip_source_t *s = zip_source_buffer(z, buf, len, 1);
  zip_int64_t i = zip_file_add(z, name, s, ZIP_FL_OVERWRITE);
  cr_assert_geq(i, 0);
  cr_assert_eq(zip_set_file_compression(z, (zip_uint64_t)i, method, 0), 0);
}

Test(readers, npz_stored_and_deflated) {
  const float a[3] = {1, -2, 3}, b[5] = {0.5f, 0.25f, 0, 0, 9};
  size_t la, lb;
  unsigned char *ba = npy_bytes(a, 3, &la), *bb = npy_bytes(b, 5, &lb);
  int err;
  zip_t *z = zip_open(pathf("x.npz"), ZIP_CREATE | ZIP_TRUNCATE, &err);
  cr_assert_not_null(z);
  zip_put(z, "a.npy", ba, la, ZIP_CM_STORE);
  zip_put(z, "b.npy", bb, lb, ZIP_CM_DEFLATE);
  cr_assert_eq(zip_close(z), 0);
  bag g = {0};
  cr_assert_eq(qcal_load_tensors(pathf("x.npz"), collect, &g), QCAL_OK, "%s", qcal_last_error());
  cr_assert_eq(g.n, 2);
  cr_assert_str_eq(g.t[0].name, "x.npz:a");
  cr_assert_eq(g.t[0].data[1], -2.0f);
  cr_assert_str_eq(g.t[1].name, "x.npz:b");
  cr_assert_eq(g.t[1].data[4], 9.0f);
  bag_free(&g);
  char spec[300];
  snprintf(spec, sizeof spec, "%s:b", pathf("x.npz"));
  cr_assert_eq(qcal_load_tensors(spec, collect, &g), QCAL_OK);
  cr_assert_eq(g.n, 1);
  cr_assert_eq(g.t[0].numel, 5);
  bag_free(&g);
  snprintf(spec, sizeof spec, "%s:nope", pathf("x.npz"));
  cr_assert_eq(qcal_load_tensors(spec, collect, &g), QCAL_EINVAL);
  cr_assert_not_null(strstr(qcal_last_error(), "no array 'nope'"));
}

Test(readers, npz_malformed) {
  FILE *f = fopen(pathf("bad.npz"), "wb");
  fputs("PK\003\004 definitely not a zip archive", f);
  fclose(f);
  bag g = {0};
  cr_assert_eq(qcal_load_tensors(pathf("bad.npz"), collect, &g), QCAL_EFORMAT);
  cr_assert_not_null(strstr(qcal_last_error(), pathf("bad.npz")));
  /* a member that is not a valid .npy */
  int err;
  zip_t *z = zip_open(pathf("m.npz"), ZIP_CREATE | ZIP_TRUNCATE, &err);
  char *junk = strdup("\x93NUMPY\x01\x00\x10\x00{'descr': '<i4'");
  zip_put(z, "j.npy", (unsigned char *)junk, strlen(junk), ZIP_CM_DEFLATE);
  zip_close(z);
  cr_assert_eq(qcal_load_tensors(pathf("m.npz"), collect, &g), QCAL_EFORMAT);
  cr_assert_not_null(strstr(qcal_last_error(), "m.npz:j"), "%s", qcal_last_error());
  cr_assert_eq(g.n, 0);
}

Test(readers, hdf5_any_float_dataset) {
  hid_t f = H5Fcreate(pathf("d.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t dims[2] = {2, 3};
  hid_t sp = H5Screate_simple(2, dims, NULL);
  hid_t lp = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lp, 1);
  double d[6] = {1, 2, 3, 4, 5, -6};
  hid_t ds = H5Dcreate2(f, "g/w", H5T_IEEE_F64LE, sp, lp, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, d);
  H5Dclose(ds);
  int iv[6] = {0};
  ds = H5Dcreate2(f, "ints", H5T_STD_I32LE, sp, lp, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, iv);
  H5Dclose(ds);
  H5Pclose(lp);
  H5Sclose(sp);
  H5Fclose(f);
  bag g = {0};
  cr_assert_eq(qcal_load_tensors(pathf("d.h5"), collect, &g), QCAL_OK, "%s", qcal_last_error());
  cr_assert_eq(g.n, 1); /* the int dataset is not a float tensor */
  cr_assert_str_eq(g.t[0].name, "d.h5:g/w");
  cr_assert_eq(g.t[0].shape[1], 3);
  cr_assert_eq(g.t[0].data[5], -6.0f);
  bag_free(&g);
  char spec[300];
  snprintf(spec, sizeof spec, "%s:g/missing", pathf("d.h5"));
  cr_assert_eq(qcal_load_tensors(spec, collect, &g), QCAL_EINVAL);
  cr_assert_not_null(strstr(qcal_last_error(), "unknown HDF5 dataset 'g/missing'"));
  snprintf(spec, sizeof spec, "%s:ints", pathf("d.h5"));
  cr_assert_eq(qcal_load_tensors(spec, collect, &g), QCAL_EDTYPE);
  FILE *fp = fopen(pathf("fake.h5"), "wb");
  fputs("not hdf5", fp);
  fclose(fp);
  cr_assert_eq(qcal_load_tensors(pathf("fake.h5"), collect, &g), QCAL_EFORMAT);
}

/* safetensors: 8-byte header length, JSON header, data */
static void write_st(const char *name, const char *hdr, const void *data, size_t n, long lie) {
  FILE *f = fopen(pathf(name), "wb");
  uint64_t hl = strlen(hdr) + (uint64_t)lie;
  fwrite(&hl, 8, 1, f);
  fputs(hdr, f);
  fwrite(data, 1, n, f);
  fclose(f);
}

Test(readers, safetensors_f32_f16_bf16) {
  unsigned char data[16];
  float f32[2] = {1.5f, -2.0f};
  uint16_t f16[2] = {0x3c00, 0xc200};  /* 1, -3 */
  uint16_t bf16[2] = {0x3f80, 0x4040}; /* 1, 3 */
  memcpy(data, f32, 8);
  memcpy(data + 8, f16, 4);
  memcpy(data + 12, bf16, 4);
  write_st("m.safetensors",
           "{\"__metadata__\":{\"x\":\"y\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_"
           "offsets\":[0,8]},"
           "\"h\":{\"dtype\":\"F16\",\"shape\":[1,2],\"data_offsets\":[8,12]},"
           "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]}}",
           data, 16, 0);
  bag g = {0};
  cr_assert_eq(qcal_load_tensors(pathf("m.safetensors"), collect, &g), QCAL_OK, "%s",
               qcal_last_error());
  cr_assert_eq(g.n, 3);
  for (int i = 0; i < 3; i++) {
    const char *n = strchr(g.t[i].name, ':') + 1;
    if (!strcmp(n, "a"))
      cr_assert(g.t[i].data[0] == 1.5f && g.t[i].data[1] == -2.0f);
    else if (!strcmp(n, "h"))
      cr_assert(g.t[i].ndim == 2 && g.t[i].data[0] == 1.0f && g.t[i].data[1] == -3.0f);
    else
      cr_assert(g.t[i].data[0] == 1.0f && g.t[i].data[1] == 3.0f, "bf16 %g %g",
                (double)g.t[i].data[0], (double)g.t[i].data[1]);
  }
  bag_free(&g);
}

Test(readers, safetensors_malformed) {
  unsigned char data[8] = {0};
  bag g = {0};
  write_st("len.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
           data, 8, 1000);
  cr_assert_eq(qcal_load_tensors(pathf("len.safetensors"), collect, &g), QCAL_EFORMAT);
  write_st("off.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
           data, 8, 0);
  cr_assert_eq(qcal_load_tensors(pathf("off.safetensors"), collect, &g), QCAL_EFORMAT);
  cr_assert_not_null(strstr(qcal_last_error(), "offsets"));
  write_st("dt.safetensors", "{\"a\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
           data, 8, 0);
  cr_assert_eq(qcal_load_tensors(pathf("dt.safetensors"), collect, &g), QCAL_EDTYPE);
  /* found by fuzzing: fields of the wrong JSON type */
  write_st("ty.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":0}}", data,
           8, 0);
  cr_assert_eq(qcal_load_tensors(pathf("ty.safetensors"), collect, &g), QCAL_EFORMAT);
  write_st("ty2.safetensors", "{\"a\":{\"dtype\":7,\"shape\":{},\"data_offsets\":[0,8]}}", data, 8,
           0);
  cr_assert_eq(qcal_load_tensors(pathf("ty2.safetensors"), collect, &g), QCAL_EFORMAT);
  write_st("ty3.safetensors", "{\"a\":5}", data, 8, 0);
  cr_assert_eq(qcal_load_tensors(pathf("ty3.safetensors"), collect, &g), QCAL_EFORMAT);
  write_st("js.safetensors", "{\"a\": [", data, 8, 0);
  cr_assert_eq(qcal_load_tensors(pathf("js.safetensors"), collect, &g), QCAL_EFORMAT);
  cr_assert_eq(qcal_load_tensors(pathf("x.bin"), collect, &g), QCAL_EFORMAT);
  cr_assert_eq(g.n, 0);
}

Test(synthetic, reproducible_bit_for_bit) {
  for (size_t d = 0; d < qcal_synthetic_count; d++) {
    qcal_tensor a, b, c;
    cr_assert_eq(qcal_synthetic_make(qcal_synthetic[d].name, 42, 10007, &a), QCAL_OK);
    cr_assert_eq(qcal_synthetic_make(qcal_synthetic[d].name, 42, 10007, &b), QCAL_OK);
    cr_assert_eq(qcal_synthetic_make(qcal_synthetic[d].name, 43, 10007, &c), QCAL_OK);
    cr_assert_eq(memcmp(a.data, b.data, a.numel * 4), 0, "%s", qcal_synthetic[d].name);
    cr_assert_neq(memcmp(a.data, c.data, a.numel * 4), 0, "%s", qcal_synthetic[d].name);
    qcal_tensor_free(&a), qcal_tensor_free(&b), qcal_tensor_free(&c);
  }
  /* a golden value: the generator may not drift between versions */
  qcal_tensor g;
  cr_assert_eq(qcal_synthetic_make("gaussian", 1, 4, &g), QCAL_OK);
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < 16; i++)
    h = (h ^ ((const unsigned char *)g.data)[i]) * 16777619u;
  cr_assert_eq(h, GOLDEN_GAUSSIAN_FNV, "gaussian(seed 1) changed: fnv %#x", h);
  qcal_tensor_free(&g);
}

Test(synthetic, distributions_have_their_moments) {
  const size_t n = 1 << 20;
  struct {
    const char *name;
    double mean, var, tol;
  } want[] = {
      {"gaussian", 0, 1, 0.01},       {"laplace", 0, 2, 0.03},
      {"uniform", 0, 1.0 / 3, 0.005}, {"half-normal", 0.7978845608, 1 - 2 / 3.14159265358979, 0.01},
      {"bimodal", 0, 4.25, 0.03},
  };
  for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
    qcal_tensor t;
    cr_assert_eq(qcal_synthetic_make(want[k].name, 7, n, &t), QCAL_OK);
    double m = 0, v = 0;
    for (size_t i = 0; i < n; i++)
      m += t.data[i];
    m /= (double)n;
    for (size_t i = 0; i < n; i++)
      v += (t.data[i] - m) * (t.data[i] - m);
    v /= (double)n;
    cr_assert_float_eq(m, want[k].mean, want[k].tol, "%s mean %g", want[k].name, m);
    cr_assert_float_eq(v, want[k].var, 4 * want[k].tol, "%s var %g", want[k].name, v);
    qcal_tensor_free(&t);
  }
  qcal_tensor o;
  cr_assert_eq(qcal_synthetic_make("outliers", 3, n, &o), QCAL_OK);
  size_t far = 0;
  for (size_t i = 0; i < n; i++)
    far += fabsf(o.data[i]) == 40.0f;
  cr_assert(far > n / 20000 && far < n / 5000, "outliers: %zu at 40 sigma", far); /* 0.01% */
  qcal_tensor_free(&o);
}

Test(synthetic, channel_variants_span_up_to_100x) {
  qcal_tensor t;
  cr_assert_eq(qcal_synthetic_channels("gaussian", 5, 64, 8192, 100.0, &t), QCAL_OK);
  cr_assert_eq(t.ndim, 2);
  double lo = 1e30, hi = 0;
  for (int c = 0; c < 64; c++) {
    double s = 0;
    for (int i = 0; i < 8192; i++)
      s += (double)t.data[c * 8192 + i] * t.data[c * 8192 + i];
    s = sqrt(s / 8192);
    lo = s < lo ? s : lo;
    hi = s > hi ? s : hi;
  }
  cr_assert(hi <= 1.05 && lo >= 0.0095, "channel std in [%g, %g]", lo, hi);
  cr_assert_gt(hi / lo, 20.0, "spread only %g", hi / lo);
  qcal_tensor_free(&t);
}

/* ---- TF.js model on the graph IR, and the photo loader */

/* Direct NHWC convolution, TF SAME/VALID padding, written without im2col or
 * BLAS: the independent computation. */
static void direct_conv(const float *in, int h, int w, int cin, const float *wt, const float *b,
                        int k, int stride, int same, int cout, int depthwise, int relu6, float *out,
                        int *oh_, int *ow_) {
  int oh = same ? (h + stride - 1) / stride : (h - k) / stride + 1;
  int ow = same ? (w + stride - 1) / stride : (w - k) / stride + 1;
  int pt = same ? ((oh - 1) * stride + k - h) / 2 : 0,
      pl = same ? ((ow - 1) * stride + k - w) / 2 : 0;
  if (pt < 0)
    pt = 0;
  if (pl < 0)
    pl = 0;
  for (int y = 0; y < oh; y++)
    for (int x = 0; x < ow; x++)
      for (int co = 0; co < cout; co++) {
        double acc = b[co];
        for (int i = 0; i < k; i++)
          for (int j = 0; j < k; j++) {
            int iy = y * stride + i - pt, ix = x * stride + j - pl;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
              continue;
            if (depthwise)
              acc += (double)in[(iy * w + ix) * cin + co] * wt[(i * k + j) * cin + co];
            else
              for (int ci = 0; ci < cin; ci++)
                acc +=
                    (double)in[(iy * w + ix) * cin + ci] * wt[((i * k + j) * cin + ci) * cout + co];
          }
        if (relu6)
          acc = acc < 0 ? 0 : acc > 6 ? 6 : acc;
        out[(y * ow + x) * cout + co] = (float)acc;
      }
  *oh_ = oh;
  *ow_ = ow;
}

/* The three weighted nodes of the tiny model, in order. */
static void tiny_layers(const qcal_graph *g, int node[3]) {
  qcal_qpoint *qp;
  int nq, n = 0;
  cr_assert_eq(qcal_graph_qpoints(g, false, &qp, &nq), QCAL_OK);
  for (int k = 0; k < nq; k++)
    if (qp[k].kind == QCAL_QP_WEIGHT) {
      cr_assert_lt(n, 3);
      node[n++] = qp[k].node;
    }
  free(qp);
  cr_assert_eq(n, 3);
}

/* NCHW value [1, C, H, W] against NHWC want [H, W, C] */
static void expect_nchw(qcal_graph *g, int v, const float *want, int H, int W, int C,
                        const char *what) {
  const qcal_value *val = &g->values[v];
  cr_assert(val->ndim == 4 && val->shape[1] == C && val->shape[2] == H && val->shape[3] == W,
            "%s: shape", what);
  float *got = malloc(val->numel * sizeof *got);
  cr_assert_eq(qcal_graph_read(g, v, got), QCAL_OK);
  for (int c = 0; c < C; c++)
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        float a = got[((size_t)c * H + y) * W + x], b = want[((size_t)y * W + x) * C + c];
        cr_assert_float_eq(a, b, 1e-5 * (1 + fabsf(b)), "%s (%d,%d,%d): %g vs %g", what, y, x, c,
                           (double)a, (double)b);
      }
  free(got);
}

Test(tfjs, graph_matches_direct_convolution_and_fake_quant) {
  tiny_write(dir, TINY_OK);
  qcal_graph *g;
  cr_assert_eq(qcal_tfjs_graph_load(pathf("tiny.json"), &g), QCAL_OK, "%s", qcal_last_error());
  int64_t shape[4] = {1, 9, 8, 3}; /* odd sizes: TF SAME pads the extra row after */
  cr_assert_eq(qcal_graph_bind_input(g, 0, 4, shape), QCAL_OK, "%s", qcal_last_error());
  qcal_graph_opts go = {.plain_values = true};
  cr_assert_eq(qcal_graph_prepare(g, &go), QCAL_OK, "%s", qcal_last_error());
  int node[3];
  tiny_layers(g, node);
  cr_assert_eq(qcal_attr_int(&g->nodes[node[1]], "group", 1), 4, "depthwise");
  qcal_tensor img;
  cr_assert_eq(qcal_tensor_alloc(&img, 4, shape), QCAL_OK);
  qcal_rng r;
  qcal_rng_seed(&r, 99);
  for (size_t i = 0; i < img.numel; i++)
    img.data[i] = (float)(2 * qcal_rng_uniform(&r) - 1);
  const void *in[1] = {img.data};
  cr_assert_eq(qcal_graph_run(g, in), QCAL_OK, "%s", qcal_last_error());
  /* the same network by direct convolution from the raw weight file */
  const float *w0 = tiny_weights, *b0 = w0 + TINY_CONV0, *w1 = b0 + 4, *b1 = w1 + TINY_DW,
              *w2 = b1 + 4, *b2 = w2 + TINY_HEAD;
  float a0[5 * 4 * 4], a1[5 * 4 * 4], a2[5 * 4 * 5];
  int oh, ow;
  direct_conv(img.data, 9, 8, 3, w0, b0, 3, 2, 1, 4, 0, 1, a0, &oh, &ow);
  cr_assert(oh == 5 && ow == 4);
  direct_conv(a0, 5, 4, 4, w1, b1, 3, 1, 1, 4, 1, 1, a1, &oh, &ow);
  direct_conv(a1, 5, 4, 4, w2, b2, 1, 1, 0, 5, 0, 0, a2, &oh, &ow);
  expect_nchw(g, g->nodes[node[0]].out[0], a0, 5, 4, 4, "conv");
  expect_nchw(g, g->nodes[node[1]].out[0], a1, 5, 4, 4, "depthwise");
  /* the graph output is NHWC, as TF.js gives it */
  const qcal_value *y = &g->values[g->outputs[0]];
  cr_assert_eq(y->numel, 100);
  for (size_t i = 0; i < 100; i++)
    cr_assert_float_eq(((const float *)y->data)[i], a2[i], 1e-5 * (1 + fabsf(a2[i])), "head %zu",
                       i);
  int clipped = 0;
  for (size_t i = 0; i < 80; i++)
    clipped += a0[i] == 0.0f || a0[i] == 6.0f;
  cr_assert_gt(clipped, 0); /* ReLU6 was exercised */
  /* fake quantization while running: the first conv's input at 2 bits
   * (s = 1: the grid {-1, 0, 1}), then its weight per channel as well */
  float one = 1.0f;
  qcal_graph_fq fq = {node[0], 0, QCAL_PER_TENSOR, &one, {2, false, false}};
  cr_assert_eq(qcal_graph_fake_quant(g, &fq, 1), QCAL_OK, "%s", qcal_last_error());
  cr_assert_eq(qcal_graph_run(g, in), QCAL_OK);
  qcal_tensor img_q;
  cr_assert_eq(qcal_tensor_alloc(&img_q, 4, shape), QCAL_OK);
  for (size_t i = 0; i < img.numel; i++)
    img_q.data[i] = rintf(img.data[i]);
  direct_conv(img_q.data, 9, 8, 3, w0, b0, 3, 2, 1, 4, 0, 1, a0, &oh, &ow);
  expect_nchw(g, g->nodes[node[0]].out[0], a0, 5, 4, 4, "fake-quant input");
  float wq[TINY_CONV0], amax[4];
  for (int c = 0; c < 4; c++) { /* HWIO: channel c is every 4th */
    amax[c] = 0;
    for (int k = c; k < TINY_CONV0; k += 4)
      amax[c] = fmaxf(amax[c], fabsf(w0[k]));
  }
  for (int k = 0; k < TINY_CONV0; k++) /* 8 bits narrow: s = 127 / amax */
    wq[k] = rintf(w0[k] * (127.0f / amax[k % 4])) / (127.0f / amax[k % 4]);
  qcal_graph_fq two[2] = {fq, {node[0], 1, 0, amax, {8, false, false}}};
  cr_assert_eq(qcal_graph_fake_quant(g, two, 2), QCAL_OK, "%s", qcal_last_error());
  cr_assert_eq(qcal_graph_run(g, in), QCAL_OK);
  direct_conv(img_q.data, 9, 8, 3, wq, b0, 3, 2, 1, 4, 0, 1, a0, &oh, &ow);
  expect_nchw(g, g->nodes[node[0]].out[0], a0, 5, 4, 4, "fake-quant weight");
  /* cleared: float again, and the depthwise conv never saw any of it */
  cr_assert_eq(qcal_graph_fake_quant(g, NULL, 0), QCAL_OK);
  cr_assert_eq(qcal_graph_run(g, in), QCAL_OK);
  direct_conv(img.data, 9, 8, 3, w0, b0, 3, 2, 1, 4, 0, 1, a0, &oh, &ow);
  expect_nchw(g, g->nodes[node[0]].out[0], a0, 5, 4, 4, "cleared");
  /* per-channel fake quantization of an activation is refused */
  qcal_graph_fq bad = {node[1], 0, 1, amax, {8, false, false}};
  cr_assert_eq(qcal_graph_fake_quant(g, &bad, 1), QCAL_EUNSUPPORTED);
  qcal_graph_free(g);
  qcal_tensor_free(&img);
  qcal_tensor_free(&img_q);
}

/* load, bind [1, 9, 8, 3] and prepare; the status of the first failure */
static qcal_status tiny_try(void) {
  qcal_graph *g;
  qcal_status st = qcal_tfjs_graph_load(pathf("tiny.json"), &g);
  if (st)
    return st;
  int64_t shape[4] = {1, 9, 8, 3};
  qcal_graph_opts go = {0};
  if (!(st = qcal_graph_bind_input(g, 0, 4, shape)))
    st = qcal_graph_prepare(g, &go);
  qcal_graph_free(g);
  return st;
}

Test(tfjs, malformed_models_are_rejected) {
  tiny_variant bad_size = TINY_OK;
  bad_size.bin_delta = -8;
  tiny_write(dir, bad_size);
  cr_assert_eq(tiny_try(), QCAL_EFORMAT);
  cr_assert_not_null(strstr(qcal_last_error(), "weight 'b2' needs 20 bytes"), "%s",
                     qcal_last_error());
  bad_size.bin_delta = 4;
  tiny_write(dir, bad_size);
  cr_assert_eq(tiny_try(), QCAL_EFORMAT);
  cr_assert_not_null(strstr(qcal_last_error(), "tiny.json"), "%s", qcal_last_error());
  tiny_variant op = TINY_OK;
  op.dw_op = "Conv3D";
  tiny_write(dir, op);
  cr_assert_eq(tiny_try(), QCAL_EUNSUPPORTED);
  cr_assert_not_null(strstr(qcal_last_error(), "Conv3D"), "%s", qcal_last_error());
  cr_assert_not_null(strstr(qcal_last_error(), "Conv2d_1_depthwise"), "%s", qcal_last_error());
  tiny_variant shape = TINY_OK;
  shape.head_cin = 3; /* the head's filter disagrees with its input */
  tiny_write(dir, shape);
  qcal_status st = tiny_try();
  cr_assert(st == QCAL_EFORMAT, "status %d: %s", st, qcal_last_error());
  cr_assert_not_null(strstr(qcal_last_error(), "heatmap_2"), "%s", qcal_last_error());
  /* found by fuzzing: wrong JSON types where arrays and strings belong */
  const char *odd[] = {
      "{\"modelTopology\":{\"node\":5},\"weightsManifest\":[]}",
      "{\"modelTopology\":{\"node\":[{\"name\":\"x\",\"op\":\"_FusedConv2D\",\"input\":[1,2,3],"
      "\"attr\":{\"padding\":{\"s\":\"U0FNRQ==\"},\"fused_ops\":{\"list\":{\"s\":[7]}}}}]},"
      "\"weightsManifest\":[{\"paths\":[\"tiny.bin\"],\"weights\":[]}]}",
      "{\"modelTopology\":{\"node\":[{\"name\":\"x\",\"op\":\"_FusedConv2D\",\"input\":\"abc\"}]},"
      "\"weightsManifest\":{\"paths\":3}}",
  };
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
    FILE *o = fopen(pathf("tiny.json"), "w");
    fputs(odd[i], o);
    fclose(o);
    st = tiny_try();
    cr_assert(st == QCAL_EFORMAT || st == QCAL_EUNSUPPORTED, "case %zu: %d", i, st);
  }
  FILE *f = fopen(pathf("tiny.json"), "w");
  fputs("{\"modelTopology\": {\"node\": [", f);
  fclose(f);
  cr_assert_eq(tiny_try(), QCAL_EFORMAT);
  cr_assert_eq(qcal_tfjs_graph_load(pathf("none.json"), &(qcal_graph *){NULL}), QCAL_EIO);
}

/* PoseNet's convention: p / 127.5 - 1, NHWC */
static qcal_status load_posenet_style(const char *path, int size, qcal_tensor *t) {
  qcal_preproc p = {
      .height = size, .width = size, .channels = 3, .scale = 1.0 / 127.5, .offset = -1.0};
  return qcal_image_preprocess(path, &p, t);
}

Test(tfjs, image_loader_resizes_and_normalises) {
  /* a 4x2 binary PPM: left half black, right half white */
  FILE *f = fopen(pathf("p.ppm"), "wb");
  fprintf(f, "P6\n4 2\n255\n");
  for (int y = 0; y < 2; y++)
    for (int x = 0; x < 4; x++)
      for (int c = 0; c < 3; c++)
        fputc(x < 2 ? 0 : 255, f);
  fclose(f);
  qcal_tensor t;
  cr_assert_eq(load_posenet_style(pathf("p.ppm"), 16, &t), QCAL_OK, "%s", qcal_last_error());
  cr_assert_eq(t.shape[1], 16);
  cr_assert_eq(t.data[0], -1.0f);                /* black -> -1 */
  cr_assert_eq(t.data[(0 * 16 + 15) * 3], 1.0f); /* white -> +1 */
  qcal_tensor_free(&t);
  f = fopen(pathf("broken.png"), "wb");
  fputs("\x89PNG\r\n\x1a\n garbage", f);
  fclose(f);
  cr_assert_eq(load_posenet_style(pathf("broken.png"), 16, &t), QCAL_EFORMAT);
  cr_assert_not_null(strstr(qcal_last_error(), "broken.png"));
}

/* Inputs libFuzzer found (tests/fuzz/regressions/image-*): a PGM whose header
 * gives a zero height, and a 16-bit PGM whose conversion in Debian's
 * stb_image reads past its buffer. Both are refused before decoding. */
Test(tfjs, image_loader_refuses_the_fuzz_regressions) {
  const char *root = getenv("QCAL_SOURCE_ROOT");
  cr_assert_not_null(root);
  const char *files[] = {"image-zero-height.pgm", "image-16bit-pnm.pgm"};
  const char *why[] = {"0 pixels", "16-bit images are not supported"};
  for (int i = 0; i < 2; i++) {
    char p[4200];
    snprintf(p, sizeof p, "%s/tests/fuzz/regressions/%s", root, files[i]);
    qcal_tensor t;
    cr_assert_eq(load_posenet_style(p, 33, &t), QCAL_EFORMAT, "%s accepted", files[i]);
    cr_assert_not_null(strstr(qcal_last_error(), files[i]), "%s", qcal_last_error());
    cr_assert(strstr(qcal_last_error(), why[i]) || strstr(qcal_last_error(), "cannot decode"), "%s",
              qcal_last_error());
  }
  /* a header that claims 100000 x 100000 pixels is refused before decoding */
  FILE *f = fopen(pathf("huge.pgm"), "wb");
  fputs("P5\n100000 100000\n255\n", f);
  fputc(0, f);
  fclose(f);
  qcal_tensor t;
  cr_assert_eq(load_posenet_style(pathf("huge.pgm"), 33, &t), QCAL_EFORMAT);
  cr_assert_not_null(strstr(qcal_last_error(), "megapixels"), "%s", qcal_last_error());
}
