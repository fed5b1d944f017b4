/* Error metrics against hand-computed values, and accumulator merging. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "qcal/metrics.h"
#include "tests/common.h"

Test(metrics, hand_computed_split) {
  /* x = [1,2,3,10], amax 3, 2-bit narrow grid {-1,0,1}: s = 1/3,
   * xhat = [0,3,3,3], err = [1,-1,0,7]; 10 is clipped.
   * clip_mse = 49/4, round_mse = 2/4, sqnr = 10 log10(114/51),
   * cosine = 45 / sqrt(114 * 27), clip_fraction = 1/4. */
  qcal_tensor t;
  int64_t shape[1] = {4};
  cr_assert_eq(qcal_tensor_alloc(&t, 1, shape), QCAL_OK);
  const float x[4] = {1, 2, 3, 10};
  memcpy(t.data, x, sizeof x);
  float amax = 3.0f;
  qcal_error_stats s;
  qcal_error_stats_init(&s);
  cr_assert_eq(
      qcal_error_stats_tensor(&s, &t, QCAL_PER_TENSOR, &amax, (qcal_qformat){2, false, false}),
      QCAL_OK);
  qcal_metrics m;
  qcal_error_stats_finish(&s, &m);
  cr_assert_float_eq(m.clip_mse, 12.25, 1e-12);
  cr_assert_float_eq(m.round_mse, 0.5, 1e-12);
  cr_assert_float_eq(m.mse, 12.75, 1e-12);
  cr_assert_float_eq(m.sqnr_db, 10 * log10(114.0 / 51.0), 1e-9);
  cr_assert_float_eq(m.max_abs_err, 7.0, 1e-12);
  cr_assert_float_eq(m.cosine, 45.0 / sqrt(114.0 * 27.0), 1e-12);
  cr_assert_float_eq(m.clip_fraction, 0.25, 1e-15);
  cr_assert_eq(m.n, 4);
  qcal_tensor_free(&t);
}

Test(metrics, combine_equals_single_pass) {
  enum { N = 10001 };
  float *x = malloc(N * 4), *xh = malloc(N * 4);
  qcal_rng r;
  qcal_rng_seed(&r, 9);
  for (int i = 0; i < N; i++) {
    x[i] = (float)qcal_rng_normal(&r);
    xh[i] = x[i] + (float)(0.01 * qcal_rng_normal(&r));
  }
  qcal_error_stats all, a, b;
  qcal_error_stats_init(&all), qcal_error_stats_init(&a), qcal_error_stats_init(&b);
  qcal_error_stats_update(&all, N, x, xh, 2.0f);
  qcal_error_stats_update(&a, 4000, x, xh, 2.0f);
  qcal_error_stats_update(&b, N - 4000, x + 4000, xh + 4000, 2.0f);
  qcal_error_stats_combine(&a, &b);
  qcal_metrics ma, mb;
  qcal_error_stats_finish(&all, &ma);
  qcal_error_stats_finish(&a, &mb);
  cr_assert_eq(ma.n, mb.n);
  cr_assert_float_eq(ma.mse, mb.mse, 1e-12 * ma.mse);
  cr_assert_float_eq(ma.clip_mse, mb.clip_mse, 1e-12 * ma.mse);
  cr_assert_float_eq(ma.sqnr_db, mb.sqnr_db, 1e-9);
  cr_assert_eq(ma.max_abs_err, mb.max_abs_err);
  cr_assert_eq(ma.clip_fraction, mb.clip_fraction);
  cr_assert_gt(ma.clip_fraction, 0.03); /* ~4.6% of N(0,1) beyond 2 */
  cr_assert_lt(ma.clip_fraction, 0.06);
  free(x), free(xh);
}

Test(metrics, per_channel_matches_scalar_loop) {
  /* [3, 5, 7] tensor, channels on the last axis (inner = 1) and axis 1 */
  qcal_tensor t;
  int64_t shape[3] = {3, 5, 7};
  cr_assert_eq(qcal_tensor_alloc(&t, 3, shape), QCAL_OK);
  qcal_rng r;
  qcal_rng_seed(&r, 4);
  for (size_t i = 0; i < t.numel; i++)
    t.data[i] = (float)qcal_rng_normal(&r);
  float amax[7] = {0.5f, 1, 1.5f, 2, 2.5f, 0, 3};
  for (int k = 0; k < 2; k++) {
    int axis = k ? 1 : -1, C = k ? 5 : 7;
    qcal_error_stats s;
    qcal_error_stats_init(&s);
    cr_assert_eq(qcal_error_stats_tensor(&s, &t, axis, amax, QCAL_QFORMAT_INT8), QCAL_OK);
    double sse = 0, clip = 0;
    for (size_t i = 0; i < t.numel; i++) {
      int c = k ? (int)((i / 7) % 5) : (int)(i % 7);
      (void)C;
      float sc = qcal_quant_scale(QCAL_QFORMAT_INT8, amax[c]);
      float q = sc == 0 ? 0 : rintf(fminf(fmaxf(t.data[i] * sc, -127), 127));
      double e = (double)t.data[i] - (sc == 0 ? 0.0 : (double)(q / sc));
      sse += e * e;
      clip += fabsf(t.data[i]) > amax[c];
    }
    qcal_metrics m;
    qcal_error_stats_finish(&s, &m);
    cr_assert_float_eq(m.mse, sse / (double)t.numel, 1e-12, "axis %d", axis);
    cr_assert_float_eq(m.clip_fraction, clip / (double)t.numel, 1e-15, "axis %d", axis);
  }
  qcal_tensor_free(&t);
}

Test(metrics, exact_and_zero_cases) {
  qcal_tensor t;
  int64_t shape[1] = {3};
  cr_assert_eq(qcal_tensor_alloc(&t, 1, shape), QCAL_OK);
  t.data[0] = 0, t.data[1] = 0, t.data[2] = 0;
  float amax = 0;
  qcal_error_stats s;
  qcal_error_stats_init(&s);
  cr_assert_eq(qcal_error_stats_tensor(&s, &t, QCAL_PER_TENSOR, &amax, QCAL_QFORMAT_INT8), QCAL_OK);
  qcal_metrics m;
  qcal_error_stats_finish(&s, &m);
  cr_assert(isinf(m.sqnr_db) && m.sqnr_db > 0);
  cr_assert_eq(m.mse, 0.0);
  cr_assert_eq(m.cosine, 1.0);
  cr_assert_eq(m.clip_fraction, 0.0);
  qcal_tensor_free(&t);
}
