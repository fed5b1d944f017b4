/* Conformance with ONNX's own node test vectors (Debian libonnx-testdata):
 * QuantizeLinear, DequantizeLinear (per tensor and per axis) and
 * MatMulInteger for the reference GEMM. Results must match exactly. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "qcal/quant.h"
#include "tests/onnx_pb.h"

#define ONNX_NODE_DIR "/usr/share/libonnx-testdata/data/node"

static pb_tensor load(const char *test, const char *set, const char *file) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s/%s/%s", ONNX_NODE_DIR, test, set, file);
  pb_tensor t;
  cr_assert_eq(pb_load_tensor(path, &t), 0, "cannot read %s (is libonnx-testdata installed?)",
               path);
  return t;
}

static int64_t axis_of(const char *test) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s/model.onnx", ONNX_NODE_DIR, test);
  int64_t axis = 1; /* the operator's default */
  int rc = pb_model_int_attr(path, "axis", &axis);
  cr_assert_geq(rc, 0, "cannot read %s", path);
  return axis;
}

/* Layout for a scale of `scale_n` elements on `axis` of x. */
static qcal_layout layout_for(const pb_tensor *x, size_t scale_n, int64_t axis) {
  qcal_layout l;
  if (scale_n == 1) {
    l = (qcal_layout){1, 1, x->numel};
  } else {
    cr_assert_eq(qcal_layout_make(x->ndim, x->dims, (int)axis, &l), QCAL_OK);
    cr_assert_eq(l.channels, scale_n);
  }
  return l;
}

static int run_sets(const char *test, void (*fn)(const char *, const char *, int64_t)) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", ONNX_NODE_DIR, test);
  DIR *d = opendir(path);
  cr_assert_not_null(d, "missing %s (is libonnx-testdata installed?)", path);
  int64_t axis = axis_of(test);
  struct dirent *e;
  int sets = 0;
  while ((e = readdir(d)))
    if (!strncmp(e->d_name, "test_data_set_", 14)) {
      fn(test, e->d_name, axis);
      sets++;
    }
  closedir(d);
  return sets;
}

static void quantize_set(const char *test, const char *set, int64_t axis) {
  pb_tensor x = load(test, set, "input_0.pb"), s = load(test, set, "input_1.pb"),
            z = load(test, set, "input_2.pb"), y = load(test, set, "output_0.pb");
  cr_assert_eq(x.dtype, PB_FLOAT);
  cr_assert_eq(s.numel, z.numel);
  cr_assert(z.dtype == PB_UINT8 || z.dtype == PB_INT8);
  qcal_int8_type t = z.dtype == PB_INT8 ? QCAL_S8 : QCAL_U8;
  qcal_layout l = layout_for(&x, s.numel, axis);
  unsigned char *out = malloc(x.numel);
  cr_assert_eq(
      qcal_affine_quantize(&l, (const float *)x.data, (const float *)s.data, z.data, t, out),
      QCAL_OK);
  cr_assert_eq(y.numel, x.numel);
  for (size_t i = 0; i < x.numel; i++)
    cr_assert_eq(out[i], y.data[i], "%s/%s element %zu: %d vs %d", test, set, i, out[i], y.data[i]);
  free(out);
  pb_free_tensor(&x), pb_free_tensor(&s), pb_free_tensor(&z), pb_free_tensor(&y);
}

static void dequantize_set(const char *test, const char *set, int64_t axis) {
  pb_tensor x = load(test, set, "input_0.pb"), s = load(test, set, "input_1.pb"),
            z = load(test, set, "input_2.pb"), y = load(test, set, "output_0.pb");
  cr_assert(x.dtype == PB_UINT8 || x.dtype == PB_INT8);
  qcal_int8_type t = x.dtype == PB_INT8 ? QCAL_S8 : QCAL_U8;
  qcal_layout l = layout_for(&x, s.numel, axis);
  float *out = malloc(x.numel * 4);
  cr_assert_eq(qcal_affine_dequantize(&l, x.data, (const float *)s.data, z.data, t, out), QCAL_OK);
  const float *want = (const float *)y.data;
  for (size_t i = 0; i < x.numel; i++)
    cr_assert_eq(out[i], want[i], "%s/%s element %zu: %g vs %g", test, set, i, (double)out[i],
                 (double)want[i]);
  free(out);
  pb_free_tensor(&x), pb_free_tensor(&s), pb_free_tensor(&z), pb_free_tensor(&y);
}

static void matmul_set(const char *test, const char *set, int64_t axis) {
  (void)axis;
  pb_tensor a = load(test, set, "input_0.pb"), b = load(test, set, "input_1.pb"),
            za = load(test, set, "input_2.pb"), zb = load(test, set, "input_3.pb"),
            y = load(test, set, "output_0.pb");
  cr_assert_eq(a.ndim, 2);
  cr_assert_eq(b.ndim, 2);
  cr_assert_eq(za.numel, 1);
  cr_assert_eq(zb.numel, 1);
  size_t m = (size_t)a.dims[0], k = (size_t)a.dims[1], n = (size_t)b.dims[1];
  qcal_int8_type ta = a.dtype == PB_INT8 ? QCAL_S8 : QCAL_U8;
  qcal_int8_type tb = b.dtype == PB_INT8 ? QCAL_S8 : QCAL_U8;
  int32_t zav = ta == QCAL_S8 ? (int8_t)za.data[0] : za.data[0];
  int32_t zbv = tb == QCAL_S8 ? (int8_t)zb.data[0] : zb.data[0];
  int32_t *c = malloc(m * n * 4);
  qcal_gemm_q8_s32__ref(m, n, k, a.data, ta, k, zav, b.data, tb, n, zbv, c, n);
  const int32_t *want = (const int32_t *)y.data;
  cr_assert_eq(y.numel, m * n);
  for (size_t i = 0; i < m * n; i++)
    cr_assert_eq(c[i], want[i], "element %zu: %d vs %d", i, c[i], want[i]);
  free(c);
  pb_free_tensor(&a), pb_free_tensor(&b), pb_free_tensor(&za), pb_free_tensor(&zb),
      pb_free_tensor(&y);
}

Test(onnx, quantizelinear) {
  cr_assert_gt(run_sets("test_quantizelinear", quantize_set), 0);
}
Test(onnx, quantizelinear_axis) {
  cr_assert_gt(run_sets("test_quantizelinear_axis", quantize_set), 0);
}
Test(onnx, dequantizelinear) {
  cr_assert_gt(run_sets("test_dequantizelinear", dequantize_set), 0);
}
Test(onnx, dequantizelinear_axis) {
  cr_assert_gt(run_sets("test_dequantizelinear_axis", dequantize_set), 0);
}
Test(onnx, matmulinteger) {
  cr_assert_gt(run_sets("test_matmulinteger", matmul_set), 0);
}
