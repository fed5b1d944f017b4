/* .npy reader: dtypes, byte orders, Fortran order, and every way a file can
 * be wrong. Files are written byte by byte here, independently of the
 * writer under test. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "qcal/datasets.h"
#include "tests/common.h"

static char dir[64];

static void setup(void) {
  tmpdir_make(dir, sizeof dir, "npy");
  cr_assert_neq(dir[0], 0);
}

static void teardown(void) {
  cr_assert_eq(tmpdir_remove(dir), 0);
}

/* Write a v1.0 .npy with the given header dict and raw payload. */
static const char *write_npy(const char *name, const char *dict, const void *data, size_t bytes) {
  static char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  size_t len = strlen(dict), total = 10 + len + 1, pad = (64 - total % 64) % 64;
  size_t hl = len + pad + 1;
  unsigned char pre[10] = {
      0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)hl, (unsigned char)(hl >> 8)};
  fwrite(pre, 1, 10, f);
  fwrite(dict, 1, len, f);
  for (size_t i = 0; i < pad; i++)
    fputc(' ', f);
  fputc('\n', f);
  if (bytes)
    fwrite(data, 1, bytes, f);
  fclose(f);
  return path;
}

TestSuite(npy, .init = setup, .fini = teardown);

Test(npy, float32_c_order) {
  float v[6] = {1, -2, 3.5f, 4, 5, 6};
  const char *p = write_npy("a.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                            v, sizeof v);
  qcal_tensor t;
  cr_assert_eq(qcal_npy_load(p, &t), QCAL_OK);
  cr_assert_eq(t.ndim, 2);
  cr_assert_eq(t.shape[0], 2);
  cr_assert_eq(t.shape[1], 3);
  cr_assert_str_eq(t.name, "a");
  for (int i = 0; i < 6; i++)
    cr_assert_eq(t.data[i], v[i]);
  qcal_tensor_free(&t);
}

Test(npy, float64_float16_bigendian_fortran) {
  double d[3] = {0.1, -2.5, 1e10};
  const char *p =
      write_npy("d.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", d, sizeof d);
  qcal_tensor t;
  cr_assert_eq(qcal_npy_load(p, &t), QCAL_OK);
  cr_assert_eq(t.data[0], 0.1f);
  cr_assert_eq(t.data[2], 1e10f);
  qcal_tensor_free(&t);

  /* float16: 1.0 = 0x3c00, -2.0 = 0xc000, 65504 = 0x7bff, 2^-24 = 0x0001 */
  uint16_t h[4] = {0x3c00, 0xc000, 0x7bff, 0x0001};
  p = write_npy("h.npy", "{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }", h, sizeof h);
  cr_assert_eq(qcal_npy_load(p, &t), QCAL_OK);
  cr_assert_eq(t.data[0], 1.0f);
  cr_assert_eq(t.data[1], -2.0f);
  cr_assert_eq(t.data[2], 65504.0f);
  cr_assert_eq(t.data[3], 0x1p-24f);
  qcal_tensor_free(&t);

  /* big-endian float32 1.5 = 3f c0 00 00 */
  unsigned char be[4] = {0x3f, 0xc0, 0, 0};
  p = write_npy("be.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", be, 4);
  cr_assert_eq(qcal_npy_load(p, &t), QCAL_OK);
  cr_assert_eq(t.data[0], 1.5f);
  qcal_tensor_free(&t);

  /* Fortran order: stored column by column; C order of [[1,2,3],[4,5,6]] */
  float fo[6] = {1, 4, 2, 5, 3, 6};
  p = write_npy("f.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", fo,
                sizeof fo);
  cr_assert_eq(qcal_npy_load(p, &t), QCAL_OK);
  for (int i = 0; i < 6; i++)
    cr_assert_eq(t.data[i], (float)(i + 1));
  qcal_tensor_free(&t);
}

Test(npy, bad_files_are_rejected_with_the_path) {
  float v[4] = {1, 2, 3, 4};
  qcal_tensor t;
  struct {
    const char *name, *dict;
    size_t bytes;
    qcal_status want;
    const char *says;
  } cases[] = {
      {"short.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", 16, QCAL_EFORMAT,
       "promises 20 bytes"},
      {"long.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 16, QCAL_EFORMAT,
       "file has 16"},
      {"int.npy", "{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", 16, QCAL_EDTYPE,
       "'<i4'"},
      {"cplx.npy", "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16, QCAL_EDTYPE,
       "not supported"},
      {"empty.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", 0, QCAL_EEMPTY,
       "empty"},
      {"noshape.npy", "{'descr': '<f4', 'fortran_order': False, }", 16, QCAL_EFORMAT, "shape"},
      {"badshape.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (a,), }", 16,
       QCAL_EFORMAT, "shape"},
      {"huge.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 8), }",
       16, QCAL_EFORMAT, "overflow"},
      {"struct.npy", "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }", 16,
       QCAL_EFORMAT, "descr"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *p = write_npy(cases[i].name, cases[i].dict, v, cases[i].bytes);
    qcal_status s = qcal_npy_load(p, &t);
    cr_assert_eq(s, cases[i].want, "%s: got %d (%s)", cases[i].name, s, qcal_last_error());
    cr_assert_not_null(strstr(qcal_last_error(), p), "%s: message lacks path: %s", cases[i].name,
                       qcal_last_error());
    cr_assert_not_null(strstr(qcal_last_error(), cases[i].says), "%s: %s", cases[i].name,
                       qcal_last_error());
    cr_assert_null(t.data);
  }
  char path[128];
  snprintf(path, sizeof path, "%s/missing.npy", dir);
  cr_assert_eq(qcal_npy_load(path, &t), QCAL_EIO);
  snprintf(path, sizeof path, "%s/magic.npy", dir);
  FILE *f = fopen(path, "wb");
  fputs("PK\x03\x04 not numpy at all", f);
  fclose(f);
  cr_assert_eq(qcal_npy_load(path, &t), QCAL_EFORMAT);
  cr_assert_not_null(strstr(qcal_last_error(), "bad magic"));
  /* header length pointing past the end of the file */
  f = fopen(path, "wb");
  fwrite("\x93NUMPY\x01\x00\xff\x7f{", 1, 11, f);
  fclose(f);
  cr_assert_eq(qcal_npy_load(path, &t), QCAL_EFORMAT);
  cr_assert_not_null(strstr(qcal_last_error(), "truncated header"));
  /* float64 beyond float32 */
  double big[1] = {1e300};
  const char *p =
      write_npy("big.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", big, 8);
  cr_assert_eq(qcal_npy_load(p, &t), QCAL_EDATA);
}

Test(npy, save_then_load_round_trips) {
  qcal_tensor t, u;
  int64_t shape[3] = {2, 1, 3};
  cr_assert_eq(qcal_tensor_alloc(&t, 3, shape), QCAL_OK);
  for (int i = 0; i < 6; i++)
    t.data[i] = (float)i * 0.25f - 1;
  char path[128];
  snprintf(path, sizeof path, "%s/rt.npy", dir);
  cr_assert_eq(qcal_npy_save(path, &t), QCAL_OK);
  cr_assert_eq(qcal_npy_load(path, &u), QCAL_OK);
  cr_assert_eq(u.ndim, 3);
  cr_assert_eq(u.shape[2], 3);
  cr_assert_eq(memcmp(t.data, u.data, 24), 0);
  qcal_tensor_free(&t), qcal_tensor_free(&u);
}
