/* CUDA kernels against the scalar reference, bit for bit. Skipped with the
 * reason when no device (or no CUDA build) is present. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "qcal/cuda.h"
#include "qcal/kernels.h"
#include "qcal/quant.h"
#include "tests/common.h"

static void need_device(void) {
  if (qcal_cuda_available() != QCAL_OK)
    cr_skip_test("GPU harness skipped: %s", qcal_last_error());
}

Test(cuda, quantize_fakequant_dequantize_match_ref) {
  need_device();
  const qcal_qformat fmts[] = {
      {8, false, false}, {8, false, true}, {8, true, false}, {3, false, false}};
  for (size_t f = 0; f < 4; f++)
    for (size_t si = 0; si < N_TEST_SIZES; si++)
      for (int pe = 0; pe < 2; pe++) {
        size_t n = test_sizes[si];
        float *x = malloc((n + 1) * 4), *s = malloc((n + 1) * 4), *d = malloc((n + 1) * 4);
        float *a = malloc((n + 1) * 4), *b = malloc((n + 1) * 4);
        uint8_t *qa = malloc(n + 1), *qb = malloc(n + 1);
        fill_special(x, n, 3 + n, qcal_quant_scale(fmts[f], 2.0f));
        for (size_t i = 0; i <= n; i++) {
          float am = pe ? (float)(0.5 + (double)(i % 6)) : 2.0f;
          s[i] = qcal_quant_scale(fmts[f], am);
          d[i] = qcal_dequant_scale(fmts[f], am);
        }
        float lo = qcal_qformat_qmin(fmts[f]), hi = qcal_qformat_qmax(fmts[f]);
        qcal_f32_q8_quantize__ref(n, x, qa, s, pe, lo, hi);
        cr_assert_eq(qcal_f32_q8_quantize__cuda(n, x, qb, s, pe, lo, hi), QCAL_OK, "%s",
                     qcal_last_error());
        cr_assert(n == 0 || !memcmp(qa, qb, n), "quantize n=%zu pe=%d", n, pe);
        qcal_f32_f32_fakequant__ref(n, x, a, s, d, pe, lo, hi);
        cr_assert_eq(qcal_f32_f32_fakequant__cuda(n, x, b, s, d, pe, lo, hi), QCAL_OK, "%s",
                     qcal_last_error());
        for (size_t i = 0; i < n; i++)
          cr_assert_eq(f2u(a[i]), f2u(b[i]), "fakequant n=%zu i=%zu", n, i);
        if (!fmts[f].is_unsigned) {
          qcal_s8_f32_dequantize__ref(n, (const int8_t *)qa, a, d, pe);
          cr_assert_eq(qcal_s8_f32_dequantize__cuda(n, (const int8_t *)qa, b, d, pe), QCAL_OK);
          for (size_t i = 0; i < n; i++)
            cr_assert_eq(f2u(a[i]), f2u(b[i]), "dequantize n=%zu i=%zu", n, i);
        }
        free(x), free(s), free(d), free(a), free(b), free(qa), free(qb);
      }
}

Test(cuda, unavailable_device_is_reported_not_fatal) {
  if (qcal_cuda_available() == QCAL_OK)
    cr_skip_test("a device is present");
  float x = 1, s = 1;
  uint8_t q;
  cr_assert_eq(qcal_f32_q8_quantize__cuda(1, &x, &q, &s, false, -127, 127), QCAL_EUNSUPPORTED);
  cr_assert_neq(qcal_last_error()[0], 0);
}

Test(cuda, stream_kernels_match_host_reference) {
  need_device();
  const char *k[] = {"copy",     "triad",   "quantize", "dequantize",
                     "relu_f32", "relu_s8", "add_f32",  "add_s8"};
  for (int i = 0; i < 8; i++) {
    qcal_cuda_stream_run run;
    cr_assert_eq(qcal_cuda_stream(k[i], 1 << 20, 3, &run), QCAL_OK, "%s: %s", k[i],
                 qcal_last_error());
    cr_assert(run.ok, "%s disagrees with the host reference", k[i]);
    cr_assert_eq(run.nsamples, 3);
  }
  qcal_cuda_stream_run run;
  cr_assert_eq(qcal_cuda_stream("nope", 16, 1, &run), QCAL_EINVAL);
}

Test(cuda, cublaslt_gemm_int8_is_exact_and_floats_close) {
  need_device();
  const char *t[] = {"int8", "fp16", "bf16", "tf32", "fp32", "fp8"};
  for (int i = 0; i < 6; i++) {
    qcal_cuda_gemm_run run;
    qcal_status st = qcal_cuda_gemm(t[i], 256, 128, 64, 3, &run);
    if (st == QCAL_EUNSUPPORTED)
      continue; /* reported as "not supported", e.g. fp8 before sm_89 */
    cr_assert_eq(st, QCAL_OK, "%s: %s", t[i], qcal_last_error());
    cr_assert_gt(run.checked, 0);
    cr_assert_leq(run.max_rel_err, i == 0 ? 0.0 : 1e-2, "%s error %g", t[i], run.max_rel_err);
  }
}
